"""kl_div, kl_div_grad, kl_div_with_grad (docs/contract.rst, "Losses") against the float64
reference ``kl_ref`` (tests/reference.py), torch.nn.functional.kl_div and
scipy.special.rel_entr when installed, pinned values, finite differences;
empty, NaN, dtypes, layouts, argument errors and hypothesis.
Error budget: see tests/loss_checks.py.
"""
import math

import numpy as np
import pytest

import mlkern
from loss_checks import (
    assert_close, assert_fd, _both, check_grad_type, check_loss_type, DT_IDS, DTYPES, _dtypes, EPS,
    F16, F32, F64, fn, K, _layouts, REDUCTIONS, run_loss3, same_array, _simplex, _torch,
)
from reference import kl_ref

try:
    from hypothesis import HealthCheck, assume, given, settings, strategies as st
    import hypothesis.extra.numpy as hnp
    HAVE_HYPOTHESIS = True
except ImportError:  # pragma: no cover
    HAVE_HYPOTHESIS = False


# ================================================================ kl_div
KL_FUNCS = ("kl_div", "kl_div_grad", "kl_div_with_grad")


def run_kl(p, q, axis=-1, **kw):
    return run_loss3("kl_div", p, q, axis, **kw)


def check_kl(p, q, axis=-1, what="", ref=None, k=K, **kw):
    loss, grad = run_kl(p, q, axis, **kw)
    cdt, rdt = _dtypes(q)
    red = kw.get("reduction", "mean")
    rshape = tuple(s for i, s in enumerate(np.shape(q)) if i != axis % np.ndim(q))
    check_loss_type(loss, rdt, red, rshape, what)
    check_grad_type(grad, rdt, np.shape(q), what)
    L, G, lt, gt = kl_ref(p, q, axis, k=k, **kw)
    if ref is not None:
        L, G = ref
    assert_close(loss, L, lt, rdt, what=what + " loss")
    assert_close(grad, G, gt, rdt, what=what + " grad")
    return loss, grad


KL_LAYOUTS = {"1d": ((7,), -1), "2d": ((9, 6), -1), "2d-axis0": ((6, 9), 0), "3d-axis1": ((3, 5, 4), 1),
              "3d": ((3, 4, 5), -1)}


@pytest.mark.parametrize("weighted", [False, True], ids=["plain", "sw"])
@pytest.mark.parametrize("log_q", [False, True], ids=["q", "log_q"])
@pytest.mark.parametrize("layout", list(KL_LAYOUTS))
@pytest.mark.parametrize("dt", DTYPES, ids=DT_IDS)
def test_kl_vs_reference(dt, layout, log_q, weighted):
    shape, axis = KL_LAYOUTS[layout]
    rshape = tuple(s for i, s in enumerate(shape) if i != axis % len(shape))
    p = _simplex(1 + len(layout), shape, axis, zeros=0.25).astype(dt)
    q = _simplex(2 + len(layout), shape, axis).astype(dt)
    qa = np.log(q) if log_q else q
    sw = np.random.default_rng(3).uniform(0.0, 2.0, rshape) if weighted else None
    for red in REDUCTIONS:
        check_kl(p, qa, axis, log_q=log_q, reduction=red, sample_weight=sw,
                 what=f"kl {np.dtype(dt)} {layout} log_q={log_q} sw={weighted} {red}")


@pytest.mark.parametrize("log_q", [False, True], ids=["q", "log_q"])
@pytest.mark.parametrize("dt", DTYPES, ids=DT_IDS)
def test_kl_vs_torch(dt, log_q):
    """torch.nn.functional.kl_div(log_q, p) (reversed argument order), 2-D: batchmean/sum."""
    torch = _torch()
    F = torch.nn.functional
    p = _simplex(11, (8, 5), zeros=0.2).astype(dt)
    q = _simplex(12, (8, 5)).astype(dt)
    for red, tred in (("mean", "batchmean"), ("sum", "sum"), ("none", "none")):
        x = torch.tensor(np.log(q), requires_grad=True)
        tl = F.kl_div(x, torch.tensor(p), reduction=tred)
        if red == "none":
            tl = tl.sum(-1)
        (tl.sum() if red == "none" else tl).backward()
        gl = x.grad.numpy().astype(np.float64)             # d/d log q
        ref = (tl.detach().numpy().astype(np.float64), gl if log_q else gl / q.astype(np.float64))
        if red != "none":
            ref = (float(ref[0]), ref[1])
        check_kl(p, np.log(q) if log_q else q, log_q=log_q, reduction=red, ref=ref, k=2 * K,
                 what=f"kl {np.dtype(dt)} {red} vs torch")


def test_kl_vs_scipy():
    sp = pytest.importorskip("scipy.special")
    stats = pytest.importorskip("scipy.stats")
    p = _simplex(21, (10, 6), zeros=0.3)
    q = _simplex(22, (10, 6))
    per = mlkern.kl_div(p, q, reduction="none")
    np.testing.assert_allclose(per, sp.rel_entr(p, q).sum(-1), rtol=1e-13, atol=1e-16)
    np.testing.assert_allclose(per, stats.entropy(p, q, axis=-1), rtol=1e-13, atol=1e-16)
    np.testing.assert_allclose(mlkern.kl_div(p.T, q.T, 0, reduction="none"), stats.entropy(p.T, q.T, axis=0),
                               rtol=1e-13, atol=1e-16)
    assert mlkern.kl_div(p, q) == pytest.approx(sp.rel_entr(p, q).sum() / 10, rel=1e-13)
    assert mlkern.kl_div(p, q, reduction="sum") == pytest.approx(sp.rel_entr(p, q).sum(), rel=1e-13)


def test_kl_pinned_values():
    # zeros in p: finite, KL = log 2
    p = np.array([0.5, 0.5, 0.0])
    q = np.array([0.25, 0.25, 0.5])
    for dt in DTYPES:
        v = mlkern.kl_div(p.astype(dt), q.astype(dt))
        assert type(v) is np.dtype(dt).type
        assert abs(float(v) - math.log(2)) <= 2 * np.spacing(np.asarray(math.log(2), dt)), v
        g = mlkern.kl_div_grad(p.astype(dt), q.astype(dt))
        np.testing.assert_array_equal(g, np.array([-2.0, -2.0, 0.0], dt))
        gl = mlkern.kl_div_grad(p.astype(dt), np.log(q).astype(dt), log_q=True)
        np.testing.assert_array_equal(gl, -p.astype(dt))
        assert abs(float(mlkern.kl_div(p.astype(dt), np.log(q).astype(dt), log_q=True)) - math.log(2)) <= \
            4 * np.spacing(np.asarray(math.log(2), dt))
    # p == q -> 0; the gradient -1 where p > 0, 0 where p == 0
    P = _simplex(31, (4, 6), zeros=0.3)
    assert mlkern.kl_div(P, P) == pytest.approx(0.0, abs=1e-15)
    assert np.all(np.abs(mlkern.kl_div(P, P, reduction="none")) <= 1e-15)
    g = mlkern.kl_div_grad(P, P, reduction="sum")
    np.testing.assert_allclose(g, np.where(P > 0, -1.0, 0.0), rtol=2 * EPS[F64], atol=0)
    # p == 0 where q == 0 (log q = -inf): the term is exactly 0, whatever q
    p0 = np.array([[0.5, 0.5, 0.0], [0.0, 1.0, 0.0]])
    q0 = np.array([[0.5, 0.5, 0.0], [0.0, 1.0, 0.0]])
    loss, grad = mlkern.kl_div_with_grad(p0, q0, reduction="none")
    assert np.array_equal(loss, [0.0, 0.0]) and np.isfinite(grad).all(), (loss, grad)
    np.testing.assert_array_equal(grad, [[-1.0, -1.0, 0.0], [0.0, -1.0, 0.0]])
    with np.errstate(divide="ignore"):
        lq0 = np.log(q0)
    loss, grad = mlkern.kl_div_with_grad(p0, lq0, log_q=True, reduction="none")
    assert np.array_equal(loss, [0.0, 0.0]) and np.isfinite(grad).all()
    # spelled out with sample_weight: mean = sum w kl / sum w
    pa = np.array([[0.2, 0.8], [0.6, 0.4], [1.0, 0.0]])
    qa = np.array([[0.5, 0.5], [0.3, 0.7], [0.25, 0.75]])
    kl = np.array([sum(a * math.log(a / b) for a, b in zip(r, s) if a > 0) for r, s in zip(pa, qa)])
    w = np.array([1.0, 2.0, 0.5])
    assert mlkern.kl_div(pa, qa, sample_weight=w) == pytest.approx((w * kl).sum() / w.sum(), rel=1e-14)
    assert mlkern.kl_div(pa, qa) == pytest.approx(kl.mean(), rel=1e-14)
    np.testing.assert_allclose(mlkern.kl_div(pa, qa, sample_weight=w, reduction="none"), w * kl, rtol=1e-14)
    np.testing.assert_allclose(mlkern.kl_div_grad(pa, qa, sample_weight=w),
                               w[:, None] * np.where(pa > 0, -pa / qa, 0.0) / w.sum(), rtol=1e-15)
    # mean over rows for 3-D input (rows = all positions but the axis)
    p3 = _simplex(32, (2, 3, 4))
    q3 = _simplex(33, (2, 3, 4))
    assert mlkern.kl_div(p3, q3) == pytest.approx(mlkern.kl_div(p3, q3, reduction="sum") / 6, rel=1e-14)


@pytest.mark.parametrize("log_q", [False, True], ids=["q", "log_q"])
@pytest.mark.parametrize("weighted", [False, True], ids=["plain", "sw"])
def test_kl_finite_differences(weighted, log_q):
    for shape, axis in (((3, 4), -1), ((3, 2, 3), 1)):
        rshape = tuple(s for i, s in enumerate(shape) if i != axis % len(shape))
        p = _simplex(41, shape, axis, zeros=0.25)
        q = _simplex(42, shape, axis)
        x = np.log(q) if log_q else q
        h = 2.0 ** -12 if log_q else q * 2.0 ** -8
        sw = np.random.default_rng(4).uniform(0.2, 2.0, rshape) if weighted else None
        for red in REDUCTIONS:
            kw = {"log_q": log_q, "reduction": red, "sample_weight": sw}
            F = (lambda v: np.sum(mlkern.kl_div(p, v, axis, **kw))) if red == "none" else \
                (lambda v: mlkern.kl_div(p, v, axis, **kw))
            assert_fd(mlkern.kl_div_grad(p, x, axis, **kw), F, x, h, f"kl {shape} {red} log_q={log_q}")


@pytest.mark.parametrize("dt", DTYPES, ids=DT_IDS)
def test_kl_empty_nan(dt):
    e = np.empty((0, 3), dt)
    lm, gm = mlkern.kl_div_with_grad(e, e)
    assert type(lm) is np.dtype(dt).type and np.isnan(lm) and gm.shape == (0, 3)
    assert mlkern.kl_div(e, e, reduction="sum") == 0
    assert mlkern.kl_div(e, e, reduction="none").shape == (0,)
    p = _simplex(51, (4, 3)).astype(dt)
    q = _simplex(52, (4, 3)).astype(dt)
    qn = q.copy()
    qn[1, 2] = np.nan
    ln, gn = mlkern.kl_div_with_grad(p, qn, reduction="none")
    assert np.isnan(ln[1]) and np.isfinite(np.delete(ln, 1)).all()
    assert np.isnan(gn[1, 2])
    assert np.isnan(mlkern.kl_div(p, qn))
    pn = p.copy()
    pn[2, 0] = np.nan
    assert np.isnan(mlkern.kl_div(pn, q, reduction="none")[2])


def test_kl_dtypes_and_layouts():
    p = _simplex(61, (5, 4), zeros=0.2)
    q = _simplex(62, (5, 4))
    for pp, qq, rdt in ((p, q.astype(np.float32), F32), (p.astype(np.float32), q, F64),
                        (p.astype(np.float16), q.astype(np.float16), F16)):
        for red in REDUCTIONS:
            loss, grad = run_kl(pp, qq, reduction=red)
            check_loss_type(loss, rdt, red, (5,), f"kl {pp.dtype}/{qq.dtype}")
            check_grad_type(grad, rdt, (5, 4), f"kl {pp.dtype}/{qq.dtype}")
            L, G, lt, gt = kl_ref(pp, qq, reduction=red)
            assert_close(loss, L, lt, rdt, what=f"kl {pp.dtype}/{qq.dtype} {red}")
            assert_close(grad, G, gt, rdt, what=f"kl {pp.dtype}/{qq.dtype} {red} grad")
    L, G = mlkern.kl_div_with_grad(p, q)
    for (n1, a), (n2, b) in zip(_layouts(p), _layouts(q)[::-1]):
        ac, bc = a.copy(), b.copy()
        l1, g1 = mlkern.kl_div_with_grad(a, b)
        assert same_array(a, ac) and same_array(b, bc), "kl_div modified an input"
        np.testing.assert_allclose(l1, L, rtol=1e-14)
        np.testing.assert_allclose(g1, G, rtol=4 * EPS[F64], atol=0, err_msg=f"{n1}/{n2}")
    o = np.empty_like(q)
    assert mlkern.kl_div_grad(p, q, out=o) is o and same_array(o, G)
    x = q.copy()
    l2, g2 = mlkern.kl_div_with_grad(p, x, out=x)
    assert g2 is x and same_array(x, G) and l2 == L


@pytest.mark.parametrize("fname", KL_FUNCS)
def test_kl_validation(fname):
    f = fn(fname)
    p = _simplex(71, (4, 3))
    q = _simplex(72, (4, 3))
    for a, b in ((p, q[:, :2]), (p, q.T), (p[:1], q), (p.ravel(), q)):
        with pytest.raises(ValueError, match=_both("p", "q")):
            f(a, b)
    for red in ("batchmean", "avg", None):
        with pytest.raises(ValueError, match="reduction"):
            f(p, q, reduction=red)
    for ax in (2, -3):
        with pytest.raises(ValueError, match="axis"):
            f(p, q, axis=ax)
    for sw in (np.ones(3), np.ones((4, 3)), np.ones(5)):
        with pytest.raises(ValueError, match="sample_weight"):
            f(p, q, sample_weight=sw)
    with pytest.raises(TypeError, match=r"\bq\b"):
        f(p, q.astype(complex))
    with pytest.raises(TypeError, match=r"\bp\b"):
        f(p.astype(complex), q)
    if fname != "kl_div":
        with pytest.raises(ValueError, match="out"):
            f(p, q, out=np.empty((3, 4)))
        with pytest.raises(TypeError, match="out"):
            f(p, q, out=np.empty((4, 3), np.float32))


# ================================================================ hypothesis
if HAVE_HYPOTHESIS:
    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(dt=st.sampled_from(DTYPES), shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=5),
           log_q=st.booleans(), red=st.sampled_from(REDUCTIONS), data=st.data())
    def test_hypothesis_kl(dt, shape, log_q, red, data):
        """Random distributions (zeros in p, q down to subnormal) along a random axis."""
        axis = data.draw(st.integers(-len(shape), len(shape) - 1))
        pr = data.draw(hnp.arrays(np.float64, shape, elements=st.one_of(st.floats(0, 1), st.just(0.0))))
        qr = data.draw(hnp.arrays(np.float64, shape, elements=st.one_of(st.floats(1e-30, 1), st.just(1.0))))
        p = pr / np.where(pr.sum(axis, keepdims=True) > 0, pr.sum(axis, keepdims=True), 1.0)
        q = qr / qr.sum(axis, keepdims=True)
        p, q = p.astype(dt), q.astype(dt)
        assume(np.all((q > 0) | (p == 0)))
        qa = np.log(q) if log_q else q
        rshape = tuple(s for i, s in enumerate(shape) if i != axis % len(shape))
        sw = data.draw(st.one_of(st.none(), hnp.arrays(np.float64, rshape, elements=st.floats(0.1, 3.0))))
        check_kl(p, qa, axis, log_q=log_q, reduction=red, sample_weight=sw,
                 what=f"kl {np.dtype(dt)} {shape} axis={axis} log_q={log_q} {red}")
