"""The examples in the public docstrings run and give what they show."""
import doctest

import pytest

import mlkern
import mlkern.activations
import mlkern.rowwise
import mlkern.losses
import mlkern.optim
import mlkern.calculus
import mlkern._config
from mlkern import _docs
import mlkern.nn


@pytest.mark.parametrize("module", [mlkern, mlkern.activations, mlkern.rowwise, mlkern.losses,
                                    mlkern.optim, mlkern.calculus, mlkern._config, mlkern.nn],
                         ids=lambda m: m.__name__)
def test_docstring_examples(module):
    res = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert res.attempted > 0, "no examples found"
    assert res.failed == 0


def test_every_public_function_documents_formula_derivative_or_trick():
    mods = [(mlkern, mlkern.activations.__all__ + mlkern.rowwise.__all__ + mlkern.losses.__all__),
            (mlkern.optim, [n for n in mlkern.optim.__all__ if n != "Optimizer"]),
            (mlkern.calculus, [n for n in mlkern.calculus.__all__ if n != "GradcheckError"])]
    for mod, name in ((m, n) for m, names in mods for n in names):
        doc = getattr(mod, name).__doc__ or ""
        assert len(doc.strip()) > 40, name
        assert ">>>" in doc, f"{name}: no example"


# ------------------------------------------------------- the user guide's tables vs the API
import inspect  # noqa: E402
import pathlib  # noqa: E402
import re  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
README = ROOT / "README.md"
FUNCTIONS = DOCS / "functions.rst"          # the user guide page that holds the function tables
_TABLES = {  # section title of docs/functions.rst -> (columns holding a formula, column holding the stability facts)
    "Activations": ((1, 2), 3),
    "Row-wise functions": ((1,), 2),
    "Losses": ((1, 2), 3),
}
# unicode and markup of the tables written the way docstrings write it
_CANON = [("−", "-"), ("·", ""), ("⊙", ""), ("σ", "sigmoid"), ("Φ", "phi"), ("φ", "phi"),
          ("α", "alpha"), ("β", "beta"), ("δ", "delta"), ("Σ", "sum"), ("√", "sqrt"), ("²", "^2"),
          ("³", "^3"), ("½", "1/2"), ("≥", ">="), ("≤", "<="), ("→", "->"), ("∂", "d"), ("≪", "<<"), ("π", "pi"), ("′", "'")]
_SECTION = re.compile(r"^\s*([A-Z][A-Za-z ]+)\n\s*-{3,}\s*$", re.M)


def _canon(s):
    for a, b in _CANON:
        s = s.replace(a, b)
    return re.sub(r"[\s`\\{}*]", "", s).lower()


def _rst_text(path):
    """A page's text with its ``literals`` written `literal` (one backtick),
    so cells and sentences read as the docstrings' markup-free text does."""
    return re.sub(r"``(.+?)``", r"`\1`", path.read_text(encoding="utf-8"))


def _rst_sections(text):
    """{section title: body} of a page (titles underlined with - or =)."""
    parts = re.split(r"^(\S[^\n]*)\n[-=]{3,}[ \t]*$", text, flags=re.M)
    return {parts[i].strip(): parts[i + 1] for i in range(1, len(parts), 2)}


def _list_table(body):
    """Rows (lists of cells) of the first ``.. list-table::`` of a section
    body; a cell may continue on more-indented lines."""
    i = body.index(".. list-table::")
    rows = []
    for line in body[i:].splitlines()[1:]:
        if line.strip() and not line.startswith("   "):
            break
        m = re.match(r"^   (\*| ) - (.*)$", line)
        if m:
            if m.group(1) == "*":
                rows.append([])
            rows[-1].append(m.group(2).strip())
        elif rows and line.startswith("       ") and line.strip():
            rows[-1][-1] += " " + line.strip()
    return [["" if c == ".." else c for c in r] for r in rows]


def _doc_tables():
    """{section: [row cells]} of the three function tables of docs/functions.rst
    (header row dropped)."""
    sections = _rst_sections(_rst_text(FUNCTIONS))
    out = {}
    for heading in _TABLES:
        rows = _list_table(sections[heading])
        assert rows and rows[0][0] == "function", (heading, rows[:1])
        out[heading] = rows[1:]
    return out


def _names(cell):
    """Function names of a first cell: the backticked names before the first
    parenthesis outside backticks (``prelu`` in "`prelu` (`alpha`: ...)",
    ``silu`` and ``swish`` in "`silu` = `swish` (`beta=1`)"), each cut at its
    own ``(`` ("`softmax(x, axis=-1, *, out=None)`")."""
    codes = re.findall(r"`([^`]+)`", cell)
    head = re.sub(r"`[^`]+`", "@", cell).split("(")[0]
    return [re.match(r"[A-Za-z_][A-Za-z0-9_]*", c).group(0) for c in codes[:head.count("@")]]


def _defaults(cell):
    """``name=value`` pairs written in a first cell, inside or outside a
    call's parentheses; "with `k=v`" names an option, not a default."""
    pairs = {}
    for pre, code in re.findall(r"(with )?`([^`]+)`", cell):
        if pre:
            continue
        for k, v in re.findall(r"\b([a-z_]+)=(\"[^\"]*\"|-?[0-9.]+(?:e-?[0-9]+)?|None|True|False)", code):
            pairs[k] = v
    return pairs


def _family(name):
    """The function and its _grad / _backward / _with_grad siblings."""
    return [getattr(mlkern, n) for n in (name, name + "_grad", name + "_backward", name + "_with_grad")
            if hasattr(mlkern, n)]


def _all_rows():
    return [(h, row) for h, rows in _doc_tables().items() for row in rows]


def test_doc_tables_parsed():
    tables = _doc_tables()
    sizes = {h: len(rows) for h, rows in tables.items()}
    assert sizes["Activations"] >= 12 and sizes["Row-wise functions"] >= 7 \
        and sizes["Losses"] >= 10, sizes
    widths = {h: {len(r) for r in rows} for h, rows in tables.items()}
    assert widths == {"Activations": {4}, "Row-wise functions": {3}, "Losses": {4}}, widths


# docs/functions.rst states these naming rules in words; a name derived by one
# of them from a name of the activation / loss table counts as documented
_RULES = {"Activations": ("For each activation `f` there are `f(x)`, `f_grad(x)`",
                          ("_grad", "_backward")),
          "Losses": ("Every loss `f` has `f(...)`, `f_grad(..., out=None)`",
                     ("_grad", "_with_grad"))}
# the user guide: every page but the contract and the generated API reference
_GUIDE = sorted(p for p in DOCS.glob("*.rst") if p.name != "contract.rst")


def _documented_names():
    text = "\n".join(_rst_text(p) for p in _GUIDE)
    tables = _doc_tables()
    derived = set()
    for heading, (sentence, suffixes) in _RULES.items():
        assert sentence in _rst_text(FUNCTIONS), f"docs/functions.rst no longer states the naming rule {sentence!r}"
        for row in tables[heading]:
            for n in _names(row[0]):
                derived.update(n + s for s in suffixes)
    return text, derived


@pytest.mark.parametrize("module", [mlkern, mlkern.optim, mlkern.calculus, mlkern.nn],
                         ids=lambda m: m.__name__)
def test_every_public_name_is_in_the_user_guide(module):
    text, derived = _documented_names()
    literal = [n for n in module.__all__ if re.search(r"\b" + re.escape(n) + r"\b", text)]
    missing = [n for n in module.__all__ if n not in literal and n not in derived]
    assert not missing, f"{module.__name__}.__all__ names absent from the user guide (docs/*.rst): {missing}"
    assert len(literal) >= len(module.__all__) // 3     # not everything by a rule


def test_every_function_in_a_doc_table_exists():
    seen = 0
    for heading, row in _all_rows():
        names = _names(row[0])
        assert names, f"{heading}: no function name in {row[0]!r}"
        for n in names:
            assert n in mlkern.__all__, f"{heading}: docs/functions.rst names {n!r}, not in mlkern.__all__"
            assert callable(getattr(mlkern, n)), n
            seen += 1
    assert seen >= 30


def test_doc_table_defaults_match_signatures():
    checked = 0
    for heading, row in _all_rows():
        for k, v in _defaults(row[0]).items():
            for name in _names(row[0]):
                for f in _family(name):
                    p = inspect.signature(f).parameters
                    if k not in p:
                        continue
                    want = eval(v)  # a literal written in the table  # noqa: S307
                    assert p[k].default == want and type(p[k].default) in (type(want), float), (
                        f"docs/functions.rst ({heading}) says {k}={v} for {name}; "
                        f"{f.__name__} has {k}={p[k].default!r}")
                    checked += 1
    assert checked >= 10          # leaky_relu, elu, softplus, silu, gelu, huber, ... and their siblings


def _table_functions():
    out = []
    for heading, row in _all_rows():
        for n in _names(row[0]):
            if n not in [o[1] for o in out]:
                out.append((heading, n, row))
    return out


@pytest.mark.parametrize("heading,name,row", _table_functions(), ids=lambda v: v if isinstance(v, str) else "")
def test_table_function_docstring_is_numpydoc(heading, name, row):
    f = getattr(mlkern, name)
    doc = inspect.getdoc(f) or ""
    sections = set(_SECTION.findall(doc))
    missing = [s for s in ("Parameters", "Returns", "Notes", "Examples") if s not in sections]
    assert not missing, f"{name}: docstring has no {missing} section(s)"
    params = doc.split("Parameters", 1)[1].split("Returns", 1)[0]
    for p in inspect.signature(f).parameters:
        if p not in ("args", "kwargs"):
            assert re.search(r"^" + re.escape(p) + r"\b", params, re.M), f"{name}: parameter {p!r} undocumented"
    notes = doc.split("Notes", 1)[1]
    if heading == "Activations":
        assert "Derivative" in notes, f"{name}: Notes do not give the derivative"


@pytest.mark.parametrize("module", [mlkern, mlkern.optim, mlkern.calculus], ids=lambda m: m.__name__)
def test_no_docstring_template_placeholder_left(module):
    names = "|".join(["args", "out", "pw", "saved", "p", "loss", "lr_default"] + list(_docs.FRAGMENTS))
    left = [n for n in module.__all__
            if re.search(r"\{(" + names + r")\}", getattr(module, n).__doc__ or "")]
    assert not left, f"unfilled docstring fields ({{out}}, {{x}}, ...) in the docstrings of {left}"


def test_docstring_fields_are_filled_strictly():
    """_docs.doc fills {name} fields (nested, indented to the field's column),
    writes {{name}} as {name}, leaves other braces, and refuses an unknown
    field or a keyword no field uses."""
    def f():
        """Summary with {{kept}} and e^{-x}.

        Parameters
        ----------
        {x}
        {grad_output}
            more: {word}
        """
    f = _docs.doc(saved="y", word="a\nb")(f)
    assert f.__doc__.splitlines()[0] == "Summary with {kept} and e^{-x}."
    assert _docs.FRAGMENTS["x"] in f.__doc__
    assert "same shape as ``y``\n    (no broadcasting)" in f.__doc__
    assert "    more: a\n          b" in f.__doc__
    with pytest.raises(KeyError, match="no_such"):
        _docs.doc()(type("C", (), {"__doc__": "A.\n\n{no_such}\n"}))
    with pytest.raises(TypeError, match="unused"):
        _docs.doc(unused="u")(type("C", (), {"__doc__": "A.\n"}))


def _family_doc(name):
    return "\n".join(inspect.getdoc(f) or "" for f in _family(name))


@pytest.mark.parametrize("heading,name,row", _table_functions(), ids=lambda v: v if isinstance(v, str) else "")
def test_doc_formulas_appear_in_docstrings(heading, name, row):
    """Each formula cell of the row (f(x), f'(x); value; loss, gradient),
    written with ASCII names (σ -> sigmoid, · dropped, spaces dropped), is a
    substring of the docstrings of the function and its siblings."""
    formula_cols, _ = _TABLES[heading]
    doc = _canon(_family_doc(name))
    names = _names(row[0])
    for c in formula_cols:
        part = row[c]
        pieces = [p for p in re.split(r",\s*(?![^(]*\))", part)]
        if len(names) > 1 and len(pieces) == len(names):   # "mean d², Σ d², ½ Σ d²": one per name
            part = pieces[names.index(name)]
        want = _canon(part)
        assert want, (name, row)
        assert want in doc, (f"{name}: docs/functions.rst {heading} column {c} says {part.strip()!r}; "
                             f"not found in the docstrings of {name} and its siblings")


_TRICK_WORDS = ("expm1", "log1p", "erfc", "float64", "compensated", "reciprocal", "PyTorch", "SciPy")


@pytest.mark.parametrize("heading,name,row", _table_functions(), ids=lambda v: v if isinstance(v, str) else "")
def test_doc_stability_facts_appear_in_docstrings(heading, name, row):
    """The stability column's pinned numbers (e.g. 4.248354255291589e-18)
    and named devices (expm1, log1p, float64 sums, ...) are in the docstrings."""
    _, col = _TABLES[heading]
    cell = row[col].replace("−", "-")
    doc = _family_doc(name)
    if heading == "Losses":           # the losses module documents its shared facts once
        doc += "\n" + (mlkern.losses.__doc__ or "")
    for num in re.findall(r"\d\.\d{6,}e-?\d+", cell):
        assert num in doc, f"{name}: docs/functions.rst value {num} not in the docstrings"
    for w in _TRICK_WORDS:
        if w in cell:
            assert w in doc, f"{name}: the stability note of docs/functions.rst mentions {w}; the docstrings do not"


# ------------------------------------------------- numpydoc sections of every public name
def _public_api():
    """(qualified name, object, module-level?) for every name of the three public __all__
    lists and every public method defined by their classes (aliases once)."""
    out, seen = [], set()
    for mod in (mlkern, mlkern.optim, mlkern.calculus, mlkern.nn):
        for n in mod.__all__:
            obj = getattr(mod, n)
            items = [(f"{mod.__name__}.{n}", obj, True)]
            if inspect.isclass(obj):
                items += [(f"{mod.__name__}.{n}.{k}", v, False) for k, v in vars(obj).items()
                          if not k.startswith("_") and callable(v)]
            for q, o, top in items:
                if id(o) not in seen:
                    seen.add(id(o))
                    out.append((q, o, top))
    return out


_HEADER = re.compile(r"^([A-Z][A-Za-z ]+)\n-{3,}[ \t]*$", re.M)
_PARAM_NAMES = re.compile(r"^(\*{0,2}[A-Za-z_]\w*(?:\s*,\s*\*{0,2}[A-Za-z_]\w*)*)\s*(?::|$)")


def _numpydoc(doc):
    """(summary paragraph, {section title: body}) of a docstring as inspect.getdoc gives it."""
    parts = _HEADER.split(doc)
    return parts[0].strip().split("\n\n")[0], {parts[i]: parts[i + 1]
                                               for i in range(1, len(parts), 2)}


def _param_names(body):
    """Names a Parameters section documents: its unindented lines
    ``name : type``, ``a, b : type`` or ``**kwargs``."""
    names = set()
    for line in body.splitlines():
        m = _PARAM_NAMES.match(line)
        if line and not line[0].isspace() and m:
            names.update(s.strip().lstrip("*") for s in m.group(1).split(","))
    return names


def _signature_params(obj):
    return [p for p in inspect.signature(obj).parameters if p != "self"]


@pytest.mark.parametrize("qualname,obj,top", _public_api(),
                         ids=lambda v: v if isinstance(v, str) else "")
def test_public_docstring_sections(qualname, obj, top):
    """One-line summary; Parameters naming exactly the signature's parameters
    (none if it takes none); Returns (or Yields) unless a class or the
    summary says it returns None; Notes for the module-level names;
    Examples with a doctest."""
    doc = inspect.getdoc(obj) or ""
    assert doc.strip(), f"{qualname}: no docstring"
    summary, sections = _numpydoc(doc)
    assert "\n" not in summary, f"{qualname}: the summary is not one line: {summary!r}"
    params = _signature_params(obj)
    if params:
        assert "Parameters" in sections, f"{qualname}: no Parameters section"
        documented = _param_names(sections["Parameters"])
        missing = [p for p in params if p not in documented]
        assert not missing, f"{qualname}: parameters {missing} not in its Parameters section"
        extra = sorted(documented - set(params))
        assert not extra, f"{qualname}: Parameters documents {extra}, not in the signature"
    if not inspect.isclass(obj) and not {"Returns", "Yields"} & set(sections):
        assert re.search(r"\breturns None\b", summary, re.I), (
            f"{qualname}: no Returns section, and the summary does not say it returns None")
    if top:
        assert "Notes" in sections, f"{qualname}: no Notes section"
    assert "Examples" in sections and ">>>" in sections["Examples"], f"{qualname}: no Examples"


def test_public_api_covers_every_module():
    names = {q for q, _, _ in _public_api()}
    for must in ("mlkern.sigmoid_grad", "mlkern.cross_entropy_with_grad", "mlkern.show_config",
                 "mlkern.threads", "mlkern.optim.Adam", "mlkern.optim.Optimizer.step",
                 "mlkern.optim.Optimizer.load_state_dict", "mlkern.calculus.GradcheckError",
                 "mlkern.nn.Sequential", "mlkern.nn.Layer.backward", "mlkern.nn.Layer.load_state_dict"):
        assert must in names, must
