"""nll_loss, nll_loss_grad, nll_loss_with_grad (docs/contract.rst, "Losses") against the
float64 reference ``nll_ref`` (tests/reference.py), torch.nn.functional.nll_loss
when installed, cross-entropy of log_softmax, finite differences; empty,
all-ignored, NaN, dtypes, layouts, out= and argument errors.
Error budget: see tests/loss_checks.py.
"""
import re

import numpy as np
import pytest

import mlkern
from loss_checks import (
    assert_close, assert_fd, check_grad_type, check_loss_type, DT_IDS, DTYPES, _dtypes, EPS, F16, F32,
    F64, fn, K, _layouts, _log_probs, REDUCTIONS, run_loss3, same_array, _torch,
)
from reference import nll_ref


# ================================================================ nll_loss
NLL_FUNCS = ("nll_loss", "nll_loss_grad", "nll_loss_with_grad")

NLL_OPTIONS = {
    "plain": {},
    "weight": {"weight": True},
    "ignore": {"ignore": -100},
    "ignore0": {"ignore_index": 0},
    "ignore_neg1": {"ignore_index": -1, "ignore": -1},
    "sample_weight": {"sample_weight": True},
    "all": {"weight": True, "ignore": -100, "sample_weight": True},
}


def _nll_case(opt, seed, rshape, C):
    """(kwargs, labels) for an NLL_OPTIONS entry."""
    spec = NLL_OPTIONS[opt]
    rng = np.random.default_rng(seed + 5)
    lab = rng.integers(0, C, rshape)
    kw = {}
    if spec.get("weight"):
        kw["weight"] = rng.uniform(0.2, 2.0, C)
    if "ignore_index" in spec:
        kw["ignore_index"] = spec["ignore_index"]
    if "ignore" in spec and lab.size >= 2:
        mask = rng.random(rshape) < 0.3
        mask.flat[0] = True
        mask.flat[-1] = False
        lab = np.where(mask, spec["ignore"], lab)
    if spec.get("sample_weight"):
        kw["sample_weight"] = rng.uniform(0.0, 3.0, rshape)
    return kw, lab


def run_nll(lp, lab, axis=-1, **kw):
    return run_loss3("nll_loss", lp, lab, axis, **kw)


def check_nll(lp, lab, axis=-1, what="", ref=None, k=K, **kw):
    loss, grad = run_nll(lp, lab, axis, **kw)
    cdt, rdt = _dtypes(lp)
    red = kw.get("reduction", "mean")
    check_loss_type(loss, rdt, red, np.shape(lab), what)
    check_grad_type(grad, rdt, np.shape(lp), what)
    L, G, lt, gt = nll_ref(lp, lab, axis, k=k, **kw)
    if ref is not None:
        L, G = ref
    assert_close(loss, L, lt, rdt, what=what + " loss")
    assert_close(grad, G, gt, rdt, what=what + " grad")
    return loss, grad


def torch_nll(lp, lab, axis=-1, reduction="mean", weight=None, ignore_index=-100, sample_weight=None):
    torch = _torch()
    F = torch.nn.functional
    x = torch.tensor(np.moveaxis(lp, axis, 1) if lp.ndim > 1 else lp, requires_grad=True)
    tt = torch.tensor(np.asarray(lab, np.int64))
    wt = None if weight is None else torch.tensor(np.asarray(weight)).to(x.dtype)
    if sample_weight is None:
        loss = F.nll_loss(x, tt, weight=wt, ignore_index=ignore_index, reduction=reduction)
    else:
        per = F.nll_loss(x, tt, weight=wt, ignore_index=ignore_index, reduction="none")
        s = torch.tensor(np.asarray(sample_weight, np.float64)).to(x.dtype)
        loss = per * s
        if reduction != "none":
            loss = loss.sum()
        if reduction == "mean":
            valid = tt != ignore_index
            wy = torch.ones_like(s) if wt is None else wt[torch.where(valid, tt, 0)]
            loss = loss / (s * wy * valid).sum()
    (loss.sum() if reduction == "none" else loss).backward()
    g = x.grad.numpy().astype(np.float64)
    g = np.moveaxis(g, 1, axis) if lp.ndim > 1 else g
    ln = loss.detach().numpy().astype(np.float64)
    return (ln if reduction == "none" else float(ln)), g


NLL_LAYOUTS = {"2d": ((11, 6), -1), "3d-axis1": ((4, 5, 3), 1), "3d-axis-1": ((4, 3, 5), -1),
               "2d-axis0": ((6, 9), 0)}


@pytest.mark.parametrize("opt", list(NLL_OPTIONS))
@pytest.mark.parametrize("layout", list(NLL_LAYOUTS))
@pytest.mark.parametrize("dt", DTYPES, ids=DT_IDS)
def test_nll_vs_reference_and_torch(dt, layout, opt):
    shape, axis = NLL_LAYOUTS[layout]
    C = shape[axis]
    rshape = tuple(s for i, s in enumerate(shape) if i != axis % len(shape))
    seed = len(layout) * 10 + len(opt)
    lp = _log_probs(seed, shape, axis, dt)
    kw, lab = _nll_case(opt, seed, rshape, C)
    try:
        import torch  # noqa: F401
        have_torch = True
    except ImportError:
        have_torch = False
    for red in REDUCTIONS:
        what = f"nll {np.dtype(dt)} {layout} {opt} {red}"
        check_nll(lp, lab, axis, reduction=red, what=what, **kw)
        if have_torch:
            ref = torch_nll(lp, lab, axis, reduction=red, **kw)
            check_nll(lp, lab, axis, reduction=red, ref=ref, k=2 * K, what=what + " vs torch", **kw)


def test_nll_spelled_out():
    lp = np.log(np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [0.3, 0.3, 0.4], [0.5, 0.25, 0.25]]))
    lab = np.array([0, 2, -100, 1])
    w = np.array([1.0, 3.0, 0.5])
    per = np.array([-lp[0, 0], -0.5 * lp[1, 2], 0.0, -3.0 * lp[3, 1]])
    den = 1.0 + 0.5 + 3.0
    loss, grad = mlkern.nll_loss_with_grad(lp, lab, weight=w)
    assert loss == pytest.approx(per.sum() / den, rel=1e-15)
    eg = np.zeros((4, 3))
    eg[0, 0], eg[1, 2], eg[3, 1] = -1 / den, -0.5 / den, -3 / den
    np.testing.assert_allclose(grad, eg, rtol=1e-15, atol=0)
    np.testing.assert_allclose(mlkern.nll_loss(lp, lab, weight=w, reduction="none"), per, rtol=1e-15)
    assert mlkern.nll_loss(lp, lab, weight=w, reduction="sum") == pytest.approx(per.sum(), rel=1e-15)
    # sample_weight times the class weight; the mean divides by their sum
    s = np.array([2.0, 1.0, 5.0, 0.5])
    assert mlkern.nll_loss(lp, lab, weight=w, sample_weight=s) == pytest.approx(
        (s * per).sum() / (2.0 + 0.5 + 1.5), rel=1e-15)
    np.testing.assert_allclose(mlkern.nll_loss_grad(lp, lab, weight=w, sample_weight=s, reduction="sum"),
                               eg * den * s[:, None], rtol=1e-15)
    # the ignored sample: 0 loss and 0 gradient whatever its log-probabilities
    lp2 = lp.copy()
    lp2[2] = [np.nan, -np.inf, 1e300]
    l2, g2 = mlkern.nll_loss_with_grad(lp2, lab, weight=w, reduction="none")
    assert l2[2] == 0 and np.array_equal(g2[2], [0.0, 0.0, 0.0])


def test_nll_is_cross_entropy_of_log_softmax():
    """nll_loss(log_softmax(z), y) == cross_entropy(z, y) (with weight, ignore_index)."""
    z = np.random.default_rng(90).standard_normal((20, 7)) * 3
    lab = np.random.default_rng(91).integers(0, 7, 20)
    lab[[3, 11]] = -100
    w = np.random.default_rng(92).uniform(0.5, 2, 7)
    lp = mlkern.log_softmax(z)
    for red in REDUCTIONS:
        np.testing.assert_allclose(mlkern.nll_loss(lp, lab, weight=w, reduction=red),
                                   mlkern.cross_entropy(z, lab, weight=w, reduction=red), rtol=1e-13)


@pytest.mark.parametrize("dt", DTYPES, ids=DT_IDS)
def test_nll_all_ignored_and_empty(dt):
    lp = _log_probs(1, (4, 3), dtype=dt)
    lab = np.full(4, -100)
    for kw in ({}, {"weight": [1.0, 2.0, 3.0]}, {"sample_weight": np.ones(4)}):
        for red in REDUCTIONS:
            loss, grad = run_nll(lp, lab, reduction=red, **kw)
            assert np.array_equal(grad, np.zeros_like(lp)), (red, grad)
            if red == "mean":
                assert type(loss) is np.dtype(dt).type and np.isnan(loss), loss
            elif red == "sum":
                assert loss == 0
            else:
                assert np.array_equal(loss, np.zeros(4, dt))
    # zero total weight of the counted samples: mean is NaN too (as torch)
    loss = mlkern.nll_loss(lp, np.array([0, 0, 1, -100]), weight=[0.0, 0.0, 1.0], sample_weight=[1, 1, 0, 1])
    assert np.isnan(loss)
    # empty batch
    e = np.empty((0, 3), dt)
    lab0 = np.empty(0, np.int64)
    lm, gm = mlkern.nll_loss_with_grad(e, lab0)
    assert type(lm) is np.dtype(dt).type and np.isnan(lm) and gm.shape == (0, 3) and gm.dtype == dt
    assert mlkern.nll_loss(e, lab0, reduction="sum") == 0
    assert mlkern.nll_loss(e, lab0, reduction="none").shape == (0,)


@pytest.mark.parametrize("dt", DTYPES, ids=DT_IDS)
def test_nll_nan_at_label(dt):
    lp = _log_probs(2, (5, 4), dtype=dt)
    lab = np.array([0, 1, 2, 3, 0])
    lp[2, 2] = np.nan
    ln = mlkern.nll_loss(lp, lab, reduction="none")
    assert np.isnan(ln[2]) and np.isfinite(np.delete(ln, 2)).all()
    assert np.isnan(mlkern.nll_loss(lp, lab)) and np.isnan(mlkern.nll_loss(lp, lab, reduction="sum"))


@pytest.mark.parametrize("opt", ["plain", "all", "ignore0"])
@pytest.mark.parametrize("layout", ["2d", "3d-axis1"])
def test_nll_finite_differences(layout, opt):
    shape, axis = NLL_LAYOUTS[layout]
    shape = (3, 4) if layout == "2d" else (2, 3, 2)
    C = shape[axis]
    rshape = tuple(s for i, s in enumerate(shape) if i != axis % len(shape))
    lp = _log_probs(3, shape, axis)
    kw, lab = _nll_case(opt, 3, rshape, C)
    for red in REDUCTIONS:
        F = (lambda x: np.sum(mlkern.nll_loss(x, lab, axis, reduction=red, **kw))) if red == "none" else \
            (lambda x: mlkern.nll_loss(x, lab, axis, reduction=red, **kw))
        assert_fd(mlkern.nll_loss_grad(lp, lab, axis, reduction=red, **kw), F, lp, 2.0 ** -10,
                  f"nll {layout} {opt} {red}")


@pytest.mark.parametrize("fname", NLL_FUNCS)
def test_nll_validation(fname):
    f = fn(fname)
    lp = _log_probs(4, (5, 4))
    for bad in (4, 5, 12345, -1, -101):
        lab = np.array([0, 1, bad, 3, 2])
        with pytest.raises(ValueError, match=rf"(?<![\d-]){re.escape(str(bad))}(?!\d)"):
            f(lp, lab)
    f(lp, np.array([0, -100, 2, 3, 1]))
    f(lp, np.array([0, 7, 2, 3, 1]), ignore_index=7)
    for bad in (np.zeros(5), np.array([0.0, 1.0, 2.0, 3.0, 1.0], np.float32)):
        with pytest.raises(TypeError, match="target"):
            f(lp, bad)
    for bad in (np.zeros(4, np.int64), np.zeros(6, np.int64), np.zeros((5, 1), np.int64),
                np.zeros((5, 4), np.int64), np.int64(0)):
        with pytest.raises(ValueError, match="target"):
            f(lp, bad)
    for w in (np.ones(3), np.ones(5), np.ones((4, 1)), []):
        with pytest.raises(ValueError, match="weight"):
            f(lp, np.array([0, 1, 2, 3, 0]), weight=w)
    for sw in (np.ones(4), np.ones((5, 4)), np.ones((5, 1))):
        with pytest.raises(ValueError, match="sample_weight"):
            f(lp, np.array([0, 1, 2, 3, 0]), sample_weight=sw)
    for red in ("avg", "batchmean", None):
        with pytest.raises(ValueError, match="reduction"):
            f(lp, np.array([0, 1, 2, 3, 0]), reduction=red)
    for ax in (2, -3):
        with pytest.raises(ValueError, match="axis"):
            f(lp, np.array([0, 1, 2, 3, 0]), axis=ax)
    with pytest.raises(TypeError, match="log_probs"):
        f(lp.astype(complex), np.array([0, 1, 2, 3, 0]))
    # 3-D with the class axis 1
    lp3 = _log_probs(4, (2, 4, 3), axis=1)
    with pytest.raises(ValueError, match=r"(?<!\d)9(?!\d)"):
        f(lp3, np.array([[0, 1, 2], [3, 9, 0]]), 1)


def test_nll_out_and_layouts():
    lp = _log_probs(5, (6, 5))
    lab = np.array([0, 4, 2, 3, 1, 4])
    s = np.random.default_rng(5).uniform(0.5, 2, 6)
    G = mlkern.nll_loss_grad(lp, lab, sample_weight=s)
    o = np.empty_like(lp)
    assert mlkern.nll_loss_grad(lp, lab, sample_weight=s, out=o) is o and same_array(o, G)
    x = lp.copy()
    L, g = mlkern.nll_loss_with_grad(x, lab, sample_weight=s, out=x)
    assert g is x and same_array(x, G) and L == mlkern.nll_loss(lp, lab, sample_weight=s)
    with pytest.raises(ValueError, match="out"):
        mlkern.nll_loss_grad(lp, lab, out=np.empty((5, 6)))
    with pytest.raises(TypeError, match="out"):
        mlkern.nll_loss_grad(lp, lab, out=np.empty((6, 5), np.float32))
    for name, v in _layouts(lp):
        c = v.copy()
        l1, g1 = mlkern.nll_loss_with_grad(v, lab, sample_weight=s)
        assert same_array(v, c)
        np.testing.assert_allclose(l1, L, rtol=1e-14)
        np.testing.assert_allclose(g1, G, rtol=4 * EPS[F64], atol=0, err_msg=name)
    # non-contiguous labels and sample weights; other label dtypes; lists
    big = np.zeros(12, np.int64)
    big[::2] = lab
    sb = np.zeros(12)
    sb[::2] = s
    assert mlkern.nll_loss(lp, big[::2], sample_weight=sb[::2]) == pytest.approx(L, rel=1e-14)
    for dt in (np.int8, np.int32, np.uint8, np.uint64):
        assert same_array(mlkern.nll_loss(lp, lab.astype(dt), reduction="none"), mlkern.nll_loss(lp, lab, reduction="none"))
    assert mlkern.nll_loss(lp.tolist(), lab.tolist()) == mlkern.nll_loss(lp, lab)


def test_nll_dtypes():
    lp = _log_probs(6, (5, 3))
    lab = np.array([0, 2, 1, 1, 0])
    for x, rdt in ((lp.astype(np.float16), F16), (lp.astype(np.float32), F32), (lp, F64),
                   (np.round(lp * 4).astype(np.int64), F64)):
        for red in REDUCTIONS:
            loss, grad = run_nll(x, lab, reduction=red)
            check_loss_type(loss, rdt, red, (5,), f"nll {x.dtype} {red}")
            check_grad_type(grad, rdt, (5, 3), f"nll {x.dtype} {red}")
            L, G, lt, gt = nll_ref(x, lab, reduction=red)
            assert_close(loss, L, lt, rdt, what=f"nll {x.dtype} {red}")
            assert_close(grad, G, gt, rdt, what=f"nll {x.dtype} {red} grad")
