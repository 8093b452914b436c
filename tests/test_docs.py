"""The examples in the public docstrings run and give what they show."""
import doctest

import pytest

import mlkern
import mlkern.activations
import mlkern.rowwise
import mlkern.losses
import mlkern.optim
import mlkern.calculus


@pytest.mark.parametrize("module", [mlkern, mlkern.activations, mlkern.rowwise, mlkern.losses,
                                    mlkern.optim, mlkern.calculus], ids=lambda m: m.__name__)
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
