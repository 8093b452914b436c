"""The examples in the public docstrings run and give what they show."""
import doctest

import pytest

import mlkern
import mlkern.activations
import mlkern.rowwise
import mlkern.losses


@pytest.mark.parametrize("module", [mlkern, mlkern.activations, mlkern.rowwise, mlkern.losses], ids=lambda m: m.__name__)
def test_docstring_examples(module):
    res = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert res.attempted > 0, "no examples found"
    assert res.failed == 0


def test_every_public_function_documents_formula_derivative_or_trick():
    for name in mlkern.activations.__all__ + mlkern.rowwise.__all__ + mlkern.losses.__all__:
        doc = getattr(mlkern, name).__doc__ or ""
        assert len(doc.strip()) > 40, name
        assert ">>>" in doc, f"{name}: no example"
