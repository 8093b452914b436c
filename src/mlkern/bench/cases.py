"""The case type, the points a case is timed at, the input cache, the value
checks, the tables and the family registry.

A **case** is one function to time: mlkern's implementation, its NumPy /
SciPy and torch peers, its inputs (``draw``), its float64 reference and its
value check.  A **point** is where it is timed: an element count (int) for
the elementwise table, a :class:`RowShape` for the row-wise and
cross-entropy tables, a :class:`LayerShape` for the layers.  A **table**
(:class:`Table`) is a group of cases timed at the same points and printed
together.  A **family** (:class:`Family`) is one module of
:mod:`mlkern.bench.families` registering its cases: adding a family is one
module.
"""
import math

import numpy as np

from .peers import as_numpy

DTYPES = {"f32": np.float32, "f64": np.float64}
TOL = {np.dtype(np.float32): 2e-4, np.dtype(np.float64): 1e-8}
ROOF_BYTES = 32 * 2**20          # %roof only for main inputs at least this big
CHECK_POINTS = 100_000           # the correctness check looks at <= this many elements


def dtype_tag(dtype):
    return {np.dtype(np.float32): "f32", np.dtype(np.float64): "f64"}[np.dtype(dtype)]


def fmt_n(n):
    e = int(round(math.log10(n))) if n > 0 else 0
    return f"1e{e}" if 10 ** e == n else str(n)


def parse_sizes(s):
    """'1e3,1e5' -> [1000, 100000] (positive integers)."""
    out = []
    for tok in s.split(","):
        tok = tok.strip()
        if tok:
            v = float(tok)
            if v < 1 or v != int(v):
                raise ValueError(f"--sizes: not a positive integer: {tok!r}")
            out.append(int(v))
    return out


# ------------------------------------------------------------------ points
class RowShape:
    """A row-wise case's input shape and the axis reduced over."""
    __slots__ = ("shape", "axis")

    def __init__(self, shape, axis=-1):
        self.shape = tuple(int(s) for s in shape)
        if len(self.shape) < 2 or min(self.shape) < 1:
            raise ValueError(f"--shapes: need a 2-D or higher shape of positive sizes, got {shape!r}")
        nd = len(self.shape)
        if not -nd <= axis < nd:
            raise ValueError(f"--shapes: axis {axis} out of range for shape {self.shape}")
        self.axis = int(axis)

    @property
    def ax(self):
        """The axis as a non-negative index."""
        return self.axis % len(self.shape)

    @property
    def n(self):
        return math.prod(self.shape)

    @property
    def length(self):
        """Elements per row (along the axis)."""
        return self.shape[self.ax]

    @property
    def rows(self):
        return self.n // self.length

    @property
    def lead(self):
        """The shape with the axis removed (a reduction's output shape)."""
        return self.shape[:self.ax] + self.shape[self.ax + 1:]

    @property
    def keepdims_shape(self):
        return self.shape[:self.ax] + (1,) + self.shape[self.ax + 1:]

    @property
    def last(self):
        return self.ax == len(self.shape) - 1

    @property
    def dims(self):
        return "x".join(map(str, self.shape))

    @property
    def spec(self):
        """As given to --shapes: 4096x1000 (last axis) or 64x1000x64:1."""
        return self.dims if self.last else f"{self.dims}:{self.ax}"

    @property
    def tag(self):
        """For benchmark ids: 4096x1000 or 64x1000x64ax1."""
        return self.dims if self.last else f"{self.dims}ax{self.ax}"

    def args(self):
        """The extra argument of an impl's ``make``: the axis."""
        return (self.axis,)

    def _key(self):
        return (self.shape, self.ax)

    def __eq__(self, other):
        return isinstance(other, RowShape) and self._key() == other._key()

    def __hash__(self):
        return hash(self._key())

    def __repr__(self):
        return f"RowShape({self.shape}, axis={self.axis})"


class LayerShape:
    """A layer's sizes: dense (M, K, N) = (batch, in, out) features, or
    embedding (V, D, tokens) = table rows, row length, lookups."""
    __slots__ = ("kind", "dims")

    def __init__(self, kind, dims):
        if kind not in ("dense", "embedding"):
            raise ValueError(f"LayerShape: kind must be 'dense' or 'embedding', got {kind!r}")
        self.kind, self.dims = kind, tuple(int(d) for d in dims)
        if len(self.dims) != 3 or min(self.dims) < 1:
            raise ValueError(f"LayerShape: three positive sizes, got {dims!r}")

    @property
    def spec(self):
        if self.kind == "dense":
            return "x".join(map(str, self.dims))
        v, d, t = self.dims
        return f"{v}x{d}/{t}"

    tag = spec

    @property
    def n(self):
        """Multiply-adds of the GEMM (dense) or elements looked up (embedding)."""
        a, b, c = self.dims
        return a * b * c if self.kind == "dense" else b * c

    def args(self):
        return ()

    def __eq__(self, other):
        return isinstance(other, LayerShape) and (self.kind, self.dims) == (other.kind, other.dims)

    def __hash__(self):
        return hash((self.kind, self.dims))

    def __repr__(self):
        return f"LayerShape({self.kind!r}, {self.dims})"


def point_args(point):
    """The extra arguments an impl's ``make`` takes at ``point``."""
    return () if isinstance(point, int) else point.args()


# ------------------------------------------------------------------ the case type
class Case:
    """A function to time.

    name, family (the function family: ``--functions sigmoid`` selects
    every case of family "sigmoid"), group (the registry family module:
    "activations", "rowwise", "losses", "layers", "copy"), kind ("fwd",
    "bwd", "loss", "fwd+bwd", "copy"), table (the :class:`Table` it is
    timed and printed in).

    draw(cache, point, dtype)        the input tuple (cached in ``cache``)
    ref(*inputs64[, axis])            float64 reference
    checker(case, cache, point, ins, got, impl) -> dict (ok, err, tol, where, got, ref)
    out_specs(case, point, dtype)     [(shape, dtype)] of the preallocated outputs
    nbytes(point, itemsize)           ideal bytes moved per call (GB/s)
    flops(point)                      floating-point operations per call (GFLOP/s), or None
    check_result                      check what the callable returns (losses, layers),
                                      not ``out``
    """

    def __init__(self, name, family, kind, ref, mlkern, numpy, torch=(), *, table, group,
                 draw, checker, out_specs, nbytes, flops=None, memory_bound=False,
                 check_result=False, saved=None, y_of=None, reduces=False, out_dtype=None,
                 reference=None):
        self.name, self.family, self.kind, self.group = name, family, kind, group
        self.ref = ref
        self.mlkern = mlkern
        self.numpy = list(numpy)
        self.torch = list(torch)
        self.table = table
        self.draw, self.checker, self._out_specs = draw, checker, out_specs
        self._nbytes, self._flops = nbytes, flops
        self.memory_bound = memory_bound
        self.check_result = check_result
        self.saved = saved              # bwd: second input is the forward input x or output y
        self.y_of = y_of                # bwd with saved="y": forward reference
        self.reduces = reduces          # row-wise output without the axis (logsumexp, argmax)
        self.out_dtype = out_dtype      # None: the input's dtype
        self._reference = reference     # (cache, point, ins) -> float64 result (losses, layers)

    @property
    def n_inputs(self):
        return 1 if self.kind in ("fwd", "copy") else 2

    def impls(self, runtimes=("mlkern", "numpy", "torch")):
        out = []
        for rt in runtimes:
            group = [self.mlkern] if rt == "mlkern" else getattr(self, rt)
            out.extend(i for i in group if i.available())
        return out

    def all_impls(self, runtimes=("mlkern", "numpy", "torch")):
        """Every impl, also those whose optional package is missing."""
        return [i for rt in runtimes for i in ([self.mlkern] if rt == "mlkern" else getattr(self, rt))]

    def inputs(self, cache, point, dtype):
        return self.draw(self, cache, point, np.dtype(dtype))

    def out_specs(self, point, dtype):
        return self._out_specs(self, point, np.dtype(dtype))

    def out_shape(self, rs):
        return self.out_specs(rs, np.float64)[0][0]

    def nbytes(self, point, itemsize):
        return self._nbytes(point, itemsize)

    def flops(self, point):
        return None if self._flops is None else self._flops(point)

    def reference(self, cache, point, ins):
        """The float64 result on ``ins``, cached like the inputs."""
        return cache.get(("ref", self.name, point, tuple(a.dtype.str for a in ins)),
                         lambda: self._reference(self, point, ins))

    def check(self, cache, point, ins, got, impl=None):
        return self.checker(self, cache, point, ins, got, impl)

    def __repr__(self):
        return f"Case({self.name!r})"


def new_outputs(case, point, dtype, reuse=None, slot=0):
    """Preallocated outputs of ``case``: NaN-filled (-1 for an integer
    result), a tuple when there are several, None when there are none.
    ``reuse``: a dict keeping the arrays by (shape, dtype, slot) from one
    call to the next (no fresh page faults per case)."""
    outs = []
    for k, (shape, dt) in enumerate(case.out_specs(point, dtype)):
        key = (tuple(shape), np.dtype(dt).str, slot, k)
        o = None if reuse is None else reuse.get(key)
        if o is None:
            o = np.empty(shape, dtype=dt)
            if reuse is not None:
                reuse[key] = o
        o.fill(-1 if o.dtype.kind == "i" else np.nan)
        outs.append(o)
    return outs[0] if len(outs) == 1 else (tuple(outs) if outs else None)


class Inputs:
    """The input cache of a run: every draw (and a loss's or layer's float64
    result) is made once per (case family, point, dtype); float32 inputs are
    the float64 draw rounded."""

    def __init__(self):
        self._cache = {}

    def get(self, key, fn):
        v = self._cache.get(key)
        if v is None:
            v = self._cache[key] = fn()
        return v

    def for_case(self, case, point, dtype):
        return case.inputs(self, point, dtype)

    def drop(self):
        """Forget all cached arrays."""
        self._cache.clear()


# ------------------------------------------------------------------ value checks
def _err(got, ref, den=None):
    """(max abs error / den, index of the worst element); NaN = NaN is no error."""
    with np.errstate(all="ignore"):
        d = np.abs(got - ref)
        d[np.isnan(got) & np.isnan(ref)] = 0.0
        d[np.isnan(d)] = np.inf
        if den is None:
            fin = np.abs(ref[np.isfinite(ref)])
            den = max(1.0, float(fin.max()) if fin.size else 1.0)
    j = int(np.argmax(d)) if d.size else 0
    return (float(d.flat[j] / den) if d.size else 0.0), j


def check_elementwise(case, cache, n, ins, out, impl=None):
    """Compare ``out`` with the float64 reference on a strided subset of the
    inputs: max abs err / max(1, max|ref|) <= TOL."""
    out = np.asarray(out)
    step = max(1, out.size // CHECK_POINTS)
    sl = slice(None, None, step)
    sub = [np.asarray(a).reshape(-1)[sl] for a in ins]
    ref_fn = (impl.ref if impl is not None and impl.ref is not None else case.ref)
    with np.errstate(all="ignore"):
        ref = np.asarray(ref_fn(*(a.astype(np.float64) for a in sub)), dtype=np.float64)
    got = out.reshape(-1)[sl].astype(np.float64)
    err, i = _err(got, ref)
    tol = TOL[np.dtype(out.dtype)]
    inputs = [float(a[i]) for a in sub] if got.size else []
    names = ("x",) if len(ins) == 1 else ("g", "saved")
    inp = ", ".join(f"{k}={v!r}" for k, v in zip(names, inputs))
    return {"ok": bool(err <= tol), "err": err, "tol": tol, "index": i * step, "inputs": inputs,
            "got": float(got[i]) if got.size else None, "ref": float(ref[i]) if got.size else None,
            "where": f"index {i * step} ({inp})"}


def _row_sample(rs):
    """A strided subset of the rows (<= ~CHECK_POINTS elements, >= 8 rows
    where there are): the multi-index over the non-reduced axes."""
    step = max(1, min(max(1, rs.rows // 8), math.ceil(rs.n / CHECK_POINTS)))
    return np.unravel_index(np.arange(0, rs.rows, step), rs.lead)


def _row_where(rs, row, col):
    if row is None:
        return ""
    return f"row {row}" + (f" element {col} along axis {rs.ax}" if col is not None else "")


def check_rows(case, cache, rs, ins, out, impl=None):
    """Compare ``out`` with the float64 reference on a subset of the rows
    (argmax: the same index, or a tied value)."""
    out = np.asarray(out)
    if out.shape != case.out_shape(rs):
        return {"ok": False, "err": float("inf"), "tol": 0.0, "row": None, "col": None,
                "got": f"shape {out.shape}", "ref": f"shape {case.out_shape(rs)}", "where": ""}
    idx = _row_sample(rs)
    rows = [np.moveaxis(np.asarray(a), rs.ax, -1)[idx].astype(np.float64) for a in ins]  # (k, L)
    got = out[idx] if case.reduces else np.moveaxis(out, rs.ax, -1)[idx]
    with np.errstate(all="ignore"):
        ref = case.ref(*rows, -1)
    k = len(idx[0])
    if case.out_dtype is not None and np.dtype(case.out_dtype).kind == "i":     # argmax
        got = got.astype(np.int64)
        x = rows[0]
        r = np.arange(k)
        okv = (got == ref) | ((got >= 0) & (got < rs.length)
                              & (x[r, np.clip(got, 0, rs.length - 1)] == x[r, ref]))  # a tie
        bad = np.flatnonzero(~okv)
        i = int(bad[0]) if bad.size else 0
        row = tuple(int(a[i]) for a in idx)
        return {"ok": not bad.size, "err": float(bad.size) / max(1, k), "tol": 0.0,
                "row": row, "col": None, "got": int(got[i]), "ref": int(ref[i]),
                "where": _row_where(rs, row, None)}
    got = got.astype(np.float64)
    err, j = _err(got, ref)
    wi = np.unravel_index(j, got.shape) if got.size else (0,)
    tol = TOL[np.dtype(out.dtype)]
    row = tuple(int(a[wi[0]]) for a in idx)
    col = int(wi[1]) if got.ndim == 2 else None
    return {"ok": bool(err <= tol), "err": err, "tol": tol, "row": row, "col": col,
            "got": float(got[wi]) if got.size else None, "ref": float(ref[wi]) if got.size else None,
            "where": _row_where(rs, row, col)}


def loss_check(ins, res, ref, loss_tol=None, axis=None):
    """Compare a peer's ``(loss, grad)`` with the float64 ``ref``: the loss
    by relative error (``loss_tol``, default TOL), the gradient by max abs
    error / max|ref grad| (the gradient of a mean is ~1/N: no max(1, .)
    floor).  A loss of None (a gradient-only peer) is not checked.
    ``axis``: the class axis of row-shaped inputs, to find the label."""
    loss, grad = res
    rl, rg = ref
    tol = TOL[np.dtype(ins[0].dtype)]
    lt = tol if loss_tol is None else loss_tol
    lerr = 0.0
    if loss is not None:
        lerr = abs(float(loss) - rl) / max(abs(rl), 1e-300)
        if lerr != lerr:
            lerr = math.inf
    g = np.asarray(as_numpy(grad), dtype=np.float64)
    fin = np.abs(rg[np.isfinite(rg)])
    gerr, j = _err(g, rg, float(fin.max()) if fin.size and fin.max() > 0 else 1.0)
    ok = lerr <= lt and gerr <= tol
    if loss is not None and lerr / lt >= gerr / tol:
        return {"ok": ok, "err": lerr, "tol": lt, "index": None, "inputs": [],
                "got": float(loss), "ref": float(rl), "where": "the loss (relative error)"}
    wi = np.unravel_index(j, g.shape) if g.size else (0,) * g.ndim
    lab = wi if axis is None else wi[:axis % g.ndim] + wi[axis % g.ndim + 1:]
    inp = [float(a[wi] if a.ndim == g.ndim else a[lab]) for a in ins] if g.size else []
    return {"ok": ok, "err": gerr, "tol": tol, "index": j, "inputs": inp,
            "got": float(g.flat[j]) if g.size else None, "ref": float(rg.flat[j]) if g.size else None,
            "where": f"grad[{', '.join(map(str, wi))}] (inputs {', '.join(map(repr, inp))}; "
                     "error / max|ref grad|)"}


def check_loss(case, cache, point, ins, res, impl=None):
    axis = point.axis if isinstance(point, RowShape) else None
    return loss_check(ins, res, case.reference(cache, point, ins), axis=axis)


def check_outputs(case, cache, point, ins, res, impl=None):
    """Several outputs (a layer's result and gradients) against the float64
    ones: each max abs err / max(1, max|ref|) <= TOL; None where the
    reference is None.  The impl's own ``ref`` (e.g. the bare GEMM) when it
    has one."""
    if impl is not None and impl.ref is not None:
        ref = cache.get(("ref", case.name, impl.name, point, tuple(a.dtype.str for a in ins)),
                        lambda: impl.ref(*[a.astype(np.float64) if a.dtype.kind == "f" else a
                                           for a in ins]))
    else:
        ref = case.reference(cache, point, ins)
    res = as_numpy(res)
    if not isinstance(ref, tuple):
        ref, res = (ref,), (res,)
    tol = TOL[np.dtype(ins[0].dtype)] if ins[0].dtype.kind == "f" else TOL[np.dtype(ins[1].dtype)]
    worst = {"ok": True, "err": 0.0, "tol": tol, "got": None, "ref": None, "where": ""}
    if len(res) != len(ref):
        return dict(worst, ok=False, err=math.inf, where=f"{len(res)} results, not {len(ref)}")
    for k, (g, r) in enumerate(zip(res, ref)):
        if r is None:
            continue
        g = np.asarray(g)
        if g.shape != r.shape:
            return dict(worst, ok=False, err=math.inf, where=f"result {k}: shape {g.shape}, not {r.shape}")
        e, j = _err(g.astype(np.float64), r)
        if e >= worst["err"]:
            wi = np.unravel_index(j, r.shape) if r.size else ()
            worst.update(err=e, got=float(g.flat[j]) if g.size else None,
                         ref=float(r.flat[j]) if r.size else None,
                         where=f"result {k} [{', '.join(map(str, wi))}]")
    worst["ok"] = bool(worst["err"] <= tol)
    return worst


# ------------------------------------------------------------------ tables
class Table:
    """Cases timed at the same points and printed in one table.

    points(sizes, shapes) -> the points of a run (``shapes``: parsed
    ``--shapes`` or None); ``prune``: quick mode may skip slow NumPy peers
    at large sizes; ``parallel_numpy``: the NumPy peers use T threads
    (OpenBLAS, limited with threadpoolctl) instead of being single-threaded
    and carried over from T=1; ``roof``: the copy roof (``roof_case``, set
    by the family that owns it) is timed with it.
    """
    roof_case: "Case | None" = None

    def __init__(self, name, points, *, prune=False, parallel_numpy=False, roof=False, title=None,
                 json_key="rowwise_records"):
        self.name, self._points = name, points
        self.prune, self.parallel_numpy, self.roof = prune, parallel_numpy, roof
        self.title, self.json_key = title, json_key

    def points(self, sizes, shapes=None):
        return self._points(sizes, shapes)

    def __repr__(self):
        return f"Table({self.name!r})"


#: the issue's shapes: four over the last axis, one reduced over axis 1
ROW_SHAPES = (RowShape((4096, 1000)), RowShape((256, 32000)), RowShape((1_000_000, 10)),
              RowShape((64, 128)), RowShape((64, 1000, 64), 1))
#: small stand-ins used when no --shapes is given and the largest --sizes
#: value is below 1e6 (the CI smoke run ``--sizes 1e3,1e5``): in cache,
#: one over the last axis, one (256k elements, parallel at T=2) over axis 1
ROW_SHAPES_SMOKE = (RowShape((64, 128)), RowShape((16, 1000, 16), 1))
#: the issue's cross-entropy shapes; the smoke stand-in when the largest --sizes is < 1e6
LOSS_SHAPES = (RowShape((4096, 1000)), RowShape((256, 32000)))
LOSS_SHAPES_SMOKE = (RowShape((64, 1000)),)
#: the layers issue's sizes: dense (M, K, N), embedding (V, D, tokens)
LAYER_SHAPES = (LayerShape("dense", (1, 512, 512)), LayerShape("dense", (32, 512, 512)),
                LayerShape("dense", (256, 1024, 1024)), LayerShape("embedding", (50_000, 256, 4096)))
LAYER_SHAPES_SMOKE = (LayerShape("dense", (1, 128, 128)), LayerShape("dense", (16, 256, 256)),
                      LayerShape("embedding", (1000, 64, 256)))


def _big(sizes):
    return bool(sizes) and max(sizes) >= 10 ** 6


def parse_shapes(spec):
    """'4096x1000,64x1000x64:1' -> [RowShape, ...] (':k' = reduce over axis k,
    default the last); 'default' / 'smoke' name the two built-in sets."""
    out = []
    for tok in spec.split(","):
        tok = tok.strip().lower()
        if not tok:
            continue
        if tok in ("default", "issue", "full"):
            out.extend(s for s in ROW_SHAPES if s not in out)
            continue
        if tok in ("smoke", "quick", "small"):
            out.extend(s for s in ROW_SHAPES_SMOKE if s not in out)
            continue
        dims, _, ax = tok.partition(":")
        try:
            shape = tuple(int(float(d)) for d in dims.split("x"))
            axis = int(ax) if ax else -1
        except ValueError:
            raise ValueError(f"--shapes: cannot read {tok!r}; write e.g. 4096x1000 or 64x1000x64:1") from None
        s = RowShape(shape, axis)
        if s not in out:
            out.append(s)
    return out


def default_row_shapes(sizes):
    """The row-wise shapes when --shapes is not given (see ROW_SHAPES_SMOKE)."""
    return list(ROW_SHAPES) if _big(sizes) else list(ROW_SHAPES_SMOKE)


def default_loss_shapes(sizes):
    """Cross-entropy shapes when --shapes is not given (as default_row_shapes)."""
    return list(LOSS_SHAPES) if _big(sizes) else list(LOSS_SHAPES_SMOKE)


def default_layer_shapes(sizes):
    return list(LAYER_SHAPES) if _big(sizes) else list(LAYER_SHAPES_SMOKE)


ELEMENTWISE = Table("elementwise", lambda sizes, shapes: list(sizes), prune=True, roof=True,
                    json_key="records")
ROWWISE = Table("rowwise", lambda sizes, shapes: list(shapes) if shapes else default_row_shapes(sizes))
CROSS_ENTROPY = Table(
    "cross_entropy", lambda sizes, shapes: list(shapes) if shapes else default_loss_shapes(sizes),
    title="Cross-entropy loss + gradient (mean over the rows, int64 labels): ns/el = "
          "median time / logits; GB/s = (2*N*itemsize + 8*rows) / median time")
LAYERS = Table("layers", lambda sizes, shapes: default_layer_shapes(sizes), parallel_numpy=True,
               json_key="layer_records")
OPTIM = Table("optim", lambda sizes, shapes: list(sizes), json_key="optim_records",
              title="Optimiser step (in place; every call the next step): ns/el = median time / "
                    "parameters; GB/s = 7*n*itemsize / median time")
#: every table, in run and print order
TABLES = (ELEMENTWISE, ROWWISE, CROSS_ENTROPY, LAYERS, OPTIM)


# ------------------------------------------------------------------ the registry
class Family:
    """One module's cases.  ``available()``: False when mlkern lacks the
    family in this build (it is then left out of a run, and said so when it
    was asked for by name); ``aliases``: other names selecting all of it;
    ``in_all``: part of a run without ``--functions`` (or "all")."""

    def __init__(self, name, cases, aliases=(), available=None, unavailable="", in_all=True):
        self.name, self.cases, self.aliases = name, list(cases), tuple(aliases)
        self._available, self.unavailable, self.in_all = available, unavailable, in_all

    def available(self):
        return True if self._available is None else bool(self._available())

    def __repr__(self):
        return f"Family({self.name!r}, {len(self.cases)} cases)"


FAMILIES: "dict[str, Family]" = {}      # name -> Family, in registration order


def register(family):
    """Add a family (its module calls this at import)."""
    if family.name in FAMILIES:
        raise ValueError(f"family {family.name!r} registered twice")
    FAMILIES[family.name] = family
    return family


def all_cases(include_hidden=False):
    """Every registered case, in registration order (the copy roof only
    with ``include_hidden``: it is timed with the elementwise table, never
    selected)."""
    return [c for f in FAMILIES.values() for c in f.cases
            if include_hidden or c.kind != "copy"]


def function_families():
    """The ``--functions`` names that select a function with its backward."""
    return list(dict.fromkeys(c.family for c in all_cases() if c.group not in ("losses",)))


def select(spec):
    """(cases, unavailable) for a comma list of names.

    A function family name ("sigmoid", "softmax", "dense") selects the
    function and its backward, "sigmoid_forward" the function only,
    "sigmoid_backward" the backward only; "forward"/"backward" select all
    of a kind; a registry family ("activations" or "elementwise",
    "rowwise", "losses", "layers", "optim") all of its cases; None or "all"
    selects everything available but the families outside "all" (optim).  Cases of a family that is not available in this
    build are dropped; ``unavailable`` lists those families (with the
    reason) when they were named, not merely implied by "all"."""
    every = all_cases()
    fams = FAMILIES.values()

    def usable(cases, named):
        keep, gone = [], []
        for c in cases:
            fam = FAMILIES[c.group]
            if fam.available():
                keep.append(c)
            elif named and fam not in gone:
                gone.append(fam)
        return keep, [(f.name, f.unavailable) for f in gone]

    if spec is None or spec.strip() in ("", "all"):
        return usable([c for c in every if FAMILIES[c.group].in_all], False)
    by_name = {c.name: c for c in every}
    groups = {a: f for f in fams for a in (f.name,) + f.aliases}
    names = function_families()
    chosen = []
    for tok in (t.strip() for t in spec.split(",")):
        if not tok:
            continue
        if tok in ("forward", "fwd"):
            hits = [c for c in every if c.kind == "fwd"]
        elif tok in ("backward", "bwd"):
            hits = [c for c in every if c.kind == "bwd"]
        elif tok in groups:
            hits = [c for c in groups[tok].cases if c.kind != "copy"]
        elif tok in names:
            hits = [c for c in every if c.family == tok]
        elif tok.endswith("_forward") and tok[:-len("_forward")] in by_name:
            hits = [by_name[tok[:-len("_forward")]]]
        elif tok in by_name:
            hits = [by_name[tok]]
        else:
            raise ValueError(f"unknown function {tok!r}; choose from: {', '.join(names)} "
                             "(with its backward), <name>_forward, <name>_backward, "
                             "forward, backward, " + ", ".join(groups))
        chosen.extend(c for c in hits if c not in chosen)
    return usable([c for c in every if c in chosen], True)
