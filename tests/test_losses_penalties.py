"""The penalties l1_penalty, l2_penalty and their ``_grad`` (docs/contract.rst, "Losses")
against the float64 reference ``penalty_ref`` (tests/reference.py), finite
differences, argument errors, out= and hypothesis.
Error budget: see tests/loss_checks.py.
"""
import math

import numpy as np
import pytest

from loss_checks import (
    assert_close, assert_fd, check_grad_type, DTYPES, _dtypes, _elements, EPS, F64, HYP, _layouts,
    _pen, same_array,
)
from reference import penalty_ref

try:
    from hypothesis import given, strategies as st
    import hypothesis.extra.numpy as hnp
    HAVE_HYPOTHESIS = True
except ImportError:  # pragma: no cover
    HAVE_HYPOTHESIS = False


# ================================================================ penalties
@pytest.mark.parametrize("kind", ["l1", "l2"])
def test_penalty_values(kind):
    f, g = _pen(kind)
    w = np.array([-2.0, 0.0, 3.0])
    v = f(w, 0.5)
    assert type(v) is np.float64 and v == (2.5 if kind == "l1" else 6.5)
    np.testing.assert_array_equal(g(w, 0.5), [-0.5, 0.0, 0.5] if kind == "l1" else [-2.0, 0.0, 3.0])
    assert f(w, 0) == 0 and np.array_equal(g(w, 0.0), np.zeros(3))
    rng = np.random.default_rng(101)
    for dt in (np.float16, np.float32, np.float64, np.int64, np.bool_):
        for shape in ((), (0,), (7,), (3, 4), (2, 3, 5)):
            x = (3 * rng.standard_normal(shape)).astype(dt)
            cdt, rdt = _dtypes(x)
            for lam in (0.0, 0.1, 2, np.float32(0.25)):
                v = f(x, lam)
                gr = g(x, lam)
                assert type(v) is rdt.type, (dt, shape, type(v))
                check_grad_type(gr, rdt, shape, f"{kind} {dt}")
                L, G, lt, gt = penalty_ref(kind, x, lam)
                assert_close(v, L, lt, rdt, what=f"{kind}_penalty {np.dtype(dt)} {shape} {lam}")
                assert_close(gr, G, gt, rdt, what=f"{kind}_penalty_grad {np.dtype(dt)} {shape} {lam}")
    # sign(0) = 0; NaN propagates
    x = np.array([0.0, -0.0, np.nan, 1.0])
    assert np.isnan(f(x, 1.0))
    gr = g(x, 1.0)
    assert gr[0] == 0 and gr[1] == 0 and np.isnan(gr[2]) and gr[3] == (1.0 if kind == "l1" else 2.0)


@pytest.mark.parametrize("kind", ["l1", "l2"])
def test_penalty_finite_differences(kind):
    f, g = _pen(kind)
    rng = np.random.default_rng(102)
    w = rng.uniform(0.2, 2.0, (3, 4)) * rng.choice([-1.0, 1.0], (3, 4))
    assert_fd(g(w, 0.3), lambda x: f(x, 0.3), w, 2.0 ** -10, f"{kind}_penalty")


@pytest.mark.parametrize("kind", ["l1", "l2"])
def test_penalty_validation_and_out(kind):
    f, g = _pen(kind)
    w = np.array([1.0, -2.0, 0.5])
    for fun in (f, g):
        for lam in (-0.1, -1e-300, -1, math.nan, -math.inf):
            with pytest.raises(ValueError, match="lam"):
                fun(w, lam)
        for lam in ("0.1", None, [0.1], object(), 1j, np.array([0.1, 0.2])):
            with pytest.raises(TypeError, match="lam"):
                fun(w, lam)
        with pytest.raises(TypeError, match=r"\bw\b"):
            fun(w.astype(complex), 0.1)
    G = g(w, 0.7)
    o = np.empty(3)
    assert g(w, 0.7, out=o) is o and same_array(o, G)
    x = w.copy()
    assert g(x, 0.7, out=x) is x and same_array(x, G)
    s = np.empty(6)[::2]
    assert g(w, 0.7, out=s) is s and same_array(s, G)
    with pytest.raises(ValueError, match="out"):
        g(w, 0.7, out=np.empty(4))
    with pytest.raises(TypeError, match="out"):
        g(w, 0.7, out=np.empty(3, np.float32))
    ro = np.empty(3)
    ro.setflags(write=False)
    with pytest.raises(ValueError, match="out"):
        g(w, 0.7, out=ro)
    # layouts, read-only input untouched
    W = np.random.default_rng(103).standard_normal((5, 4))
    L0, G0 = f(W, 0.3), g(W, 0.3)
    for name, v in _layouts(W):
        c = v.copy()
        assert f(v, 0.3) == pytest.approx(L0, rel=1e-14) and same_array(v, c)
        np.testing.assert_allclose(g(v, 0.3), G0, rtol=2 * EPS[F64], atol=0, err_msg=name)


# ================================================================ hypothesis
if HAVE_HYPOTHESIS:
    @pytest.mark.parametrize("kind", ["l1", "l2"])
    def test_hypothesis_penalties(kind):
        f, g = _pen(kind)

        @HYP
        @given(dt=st.sampled_from(DTYPES), shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5),
               lam=st.one_of(st.floats(1e-6, 10.0), st.sampled_from([0, 1, 0.5, 0.0])), data=st.data())
        def inner(dt, shape, lam, data):
            w = data.draw(hnp.arrays(dt, shape, elements=_elements(dt)))
            with np.errstate(all="ignore"):
                v = f(w, lam)
                gr = g(w, lam)
            cdt, rdt = _dtypes(w)
            assert type(v) is rdt.type
            check_grad_type(gr, rdt, shape, f"{kind} penalty")
            nan = np.isnan(w)
            if nan.any():
                assert np.isnan(v) and np.isnan(np.asarray(gr)[nan]).all()
            x = np.abs(w.astype(np.float64))
            with np.errstate(all="ignore"):
                ok = np.isfinite(x) & (x * x * max(lam, 1) <= float(np.finfo(rdt).max) / 64 if kind == "l2"
                                       else x * max(lam, 1) <= float(np.finfo(rdt).max) / 64)
            L, G, lt, gt = penalty_ref(kind, w, lam)
            if ok.all() and np.sum(x * (x if kind == "l2" else 1)) * max(lam, 1) <= float(np.finfo(rdt).max) / 64:
                assert_close(v, L, lt, rdt, what=f"{kind}_penalty {w!r} {lam}")
            assert_close(gr, G, gt, rdt, what=f"{kind}_penalty_grad {lam}", mask=ok)
        inner()
