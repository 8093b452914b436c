"""Cross-entropy (docs/contract.rst, "Losses"): cross_entropy, cross_entropy_grad,
cross_entropy_with_grad.

References.
* ``R.cross_entropy_ref`` (tests/reference.py): float64 NumPy in the
  target-distribution form -sum_j u_j log_softmax(z)_j, gradient
  (sum u) softmax - u, with the careful log1p-form log_softmax of the
  row-wise tests.  It does not share the implementation's (a, b, c)
  coefficient form; the tests mean something without PyTorch.
* ``torch.nn.functional.cross_entropy`` + autograd (float32 and float64,
  same dtype as mlkern), when torch is installed.
* 4th-order central finite differences of mlkern's own loss (float64).
* Spelled-out values (mpmath: log1p(e^-40) = 4.248354255291589e-18).

Error budget (absolute, float64, per sample before the reduction's scale).
eps is the working precision's unit roundoff, B = 4 + log2 n for a row of n
classes (the contract's row-sum bound):
  loss_i:     eps B sum_j |u_j| (|z_j| + |m| + L + 1)
  grad_ij:    eps B ((sum_j |u_j|) p_j (1 + |z_j - m|) + |u_j|)
m the row max, L = lse - m, p = softmax.  The |z| terms are the roundings of
z_y, m and sum w z that a loss lse - z_y keeps absolutely; the |z_j - m|
term is the rounding of z - m amplified by exp (as in test_rowwise.py).
A sample's budget is scaled by |coef_i|; a reduced loss gets the sum of the
scaled budgets plus 2 ULP of the result.  float64 against the float64
reference gets 2 B; against torch (same dtype) 3 B and the |z| + |lse|
amplification of torch's exp(log_softmax) in the gradient.  float16 computes in float32: the float32
budget plus 2 float16 ULP of the result.
"""
import math
import re

import numpy as np
import pytest

import mlkern
import reference as R
from loss_checks import DT_IDS, DTYPES, EPS, F16, F32, F64, fn, REDUCTIONS, _report, _torch

try:
    from hypothesis import given, settings, strategies as st
    HAVE_HYPOTHESIS = True
except ImportError:  # pragma: no cover
    HAVE_HYPOTHESIS = False

LSE_0_M40 = 4.248354255291589e-18     # mpmath: log1p(exp(-40))

FUNCS = ("cross_entropy", "cross_entropy_grad", "cross_entropy_with_grad")


# ---------------------------------------------------------------- data
def _logits(seed, shape, dtype=np.float64, scale=3.0):
    rng = np.random.default_rng(seed)
    return (scale * rng.standard_normal(shape)).astype(dtype)


def _weight(seed, n):
    return np.random.default_rng(seed + 99).uniform(0.2, 2.0, n)


def _labels(seed, shape, n, ignore_frac=0.0, ignore_index=-100):
    rng = np.random.default_rng(seed + 7)
    lab = rng.integers(0, n, shape)
    if ignore_frac:
        mask = rng.random(shape) < ignore_frac
        mask.flat[0] = True                # at least one ignored
        mask.flat[-1] = False              # and one counted
        lab = np.where(mask, ignore_index, lab)
    return lab


def _probs(seed, shape, axis=-1):
    rng = np.random.default_rng(seed + 13)
    t = rng.random(shape) ** 3
    return t / t.sum(axis=axis, keepdims=True)


# option sets for label targets: (kwargs of mlkern, fraction ignored)
OPTIONS = {
    "plain": ({}, 0.0),
    "weight": ({"weight": True}, 0.0),
    "ignore": ({}, 0.3),
    "ignore0": ({"ignore_index": 0}, 0.0),            # an in-range ignore_index
    "smooth": ({"label_smoothing": 0.1}, 0.0),
    "smooth_weight": ({"label_smoothing": 0.25, "weight": True}, 0.0),
    "all": ({"label_smoothing": 0.3, "weight": True, "ignore_index": -7}, 0.3),
}


def _case(opt, seed, shape, n, axis=-1):
    """(kwargs, labels) for an OPTIONS entry; labels have shape `shape`."""
    kw, frac = OPTIONS[opt]
    kw = dict(kw)
    if kw.pop("weight", False):
        kw["weight"] = _weight(seed, n)
    lab = _labels(seed, shape, n, frac, kw.get("ignore_index", -100))
    return kw, lab


# ---------------------------------------------------------------- budgets and comparisons
def _budgets(logits, target, axis, dt, ref_factor, torch_ref=False, **kw):
    """(per-sample loss budget, gradient budget with the class axis last, coef)
    in the notation of the module docstring, times ref_factor (the
    reference's own error: 2 for float64 NumPy with float64 results, 3 for
    torch in the working precision); rows with a NaN or +-inf get 0 (their
    values are compared for the exact non-finite pattern).  torch_ref: torch's
    p = exp(log_softmax) carries the absolute error eps (|z_j| + |lse|) of its
    log_softmax, relative in p, so its gradient gets p_j (|z_j| + |m| + L) more."""
    dt = np.dtype(dt)
    z, u, coef, valid = R.cross_entropy_terms(logits, target, axis, **kw)
    n = z.shape[-1]
    eps = EPS[F32] if dt == F16 else EPS[dt]
    B = (4.0 + math.log2(max(n, 1))) * ref_factor
    with np.errstate(all="ignore"):
        fin = np.isfinite(z).all(-1)
        zf = np.where(fin[..., None], z, 0.0)
        m = zf.max(-1, keepdims=True) if n else np.zeros(z.shape[:-1] + (1,))
        lse = R.logsumexp_ref(zf, keepdims=True) if z.size else m
        L = lse - m
        p = R.softmax_ref(zf) if z.size else zf
        au = np.abs(u)
        lt = eps * B * np.sum(au * (np.abs(zf) + np.abs(m) + L + 1.0), -1)
        amp = 1.0 + np.abs(zf - m) + ((np.abs(zf) + np.abs(m) + L) if torch_ref else 0.0)
        gt = eps * B * (au.sum(-1, keepdims=True) * p * amp + au)
        c = np.abs(np.nan_to_num(coef))
    return lt * c, gt * c[..., None], coef


def assert_close(y, ref, tol, what=""):
    """|y - ref| <= tol where ref is finite; the same NaN / infinity elsewhere."""
    y64 = np.asarray(y).astype(np.float64)
    ref = np.broadcast_to(np.asarray(ref, np.float64), y64.shape)
    tol = np.broadcast_to(np.asarray(tol, np.float64), y64.shape)
    with np.errstate(all="ignore"):
        err = np.abs(y64 - ref)
        ok = np.where(np.isfinite(ref), err <= tol, (y64 == ref) | (np.isnan(y64) & np.isnan(ref)))
    assert ok.all(), f"{what}: " + _report(ok, y=y64, ref=ref, err=err, tol=tol)


def check_result(loss, grad, logits, target, axis=-1, ref=None, what="", **kw):
    """mlkern's loss (scalar or 'none' array) and grad against ref = (loss, grad)
    (the float64 NumPy reference by default, else torch's in the same dtype)
    within the budget."""
    x = np.asarray(logits)
    dt = x.dtype if x.dtype.kind == "f" else F64
    if ref is None:
        ref = R.cross_entropy_ref(x, target, axis, **kw)
        factor = 2.0 if dt == F64 else 1.0
    else:
        factor = 3.0
    rl, rg = ref
    lt, gt, _ = _budgets(x, target, axis, dt, factor, torch_ref=factor == 3.0, **kw)
    red = kw.get("reduction", "mean")
    if loss is not None:
        if red == "none":
            assert isinstance(loss, np.ndarray) and loss.dtype == dt, (type(loss), getattr(loss, "dtype", None))
            assert loss.shape == np.shape(rl), (loss.shape, np.shape(rl))
            assert_close(loss, rl, lt + 2 * R.ulp_spacing(rl, dt), what=f"{what} loss[none]")
        else:
            assert type(loss) is dt.type, f"{what}: loss type {type(loss)}, expected {dt.type}"
            tol = float(np.sum(lt)) + 2 * float(R.ulp_spacing(rl, dt)) + 4 * EPS[F64] * abs(np.nan_to_num(rl))
            assert_close(loss, rl, tol, what=f"{what} loss[{red}]")
    if grad is not None:
        assert isinstance(grad, np.ndarray) and grad.dtype == dt and grad.shape == x.shape, \
            (type(grad), getattr(grad, "dtype", None), getattr(grad, "shape", None))
        gm = np.moveaxis(np.asarray(grad), axis, -1)
        rgm = np.moveaxis(np.asarray(rg, np.float64), axis, -1)
        assert_close(gm, rgm, gt + 2 * R.ulp_spacing(rgm, dt), what=f"{what} grad")


def run_all(logits, target, axis=-1, **kw):
    """The three functions on the same input: (loss of cross_entropy, grad of
    cross_entropy_grad, loss and grad of cross_entropy_with_grad).  The two
    gradients come from the same kernel and must be identical."""
    loss = mlkern.cross_entropy(logits, target, axis, **kw)
    grad = mlkern.cross_entropy_grad(logits, target, axis, **kw)
    lw, gw = mlkern.cross_entropy_with_grad(logits, target, axis, **kw)
    assert np.array_equal(grad, gw, equal_nan=True), "cross_entropy_grad != cross_entropy_with_grad[1]"
    assert gw.dtype == grad.dtype
    return loss, grad, lw, gw


def check_all(logits, target, axis=-1, ref=None, what="", **kw):
    loss, grad, lw, gw = run_all(logits, target, axis, **kw)
    check_result(loss, grad, logits, target, axis, ref=ref, what=what + " [cross_entropy/_grad]", **kw)
    check_result(lw, None, logits, target, axis, ref=ref, what=what + " [with_grad]", **kw)
    return loss, grad


# ---------------------------------------------------------------- torch
def torch_ref(logits, target, axis=-1, reduction="mean", weight=None, ignore_index=-100,
              label_smoothing=0.0, sample_weight=None):
    """(loss, grad) from torch.nn.functional.cross_entropy + autograd, in the
    logits' dtype, returned as float64 NumPy (loss as in mlkern: scalar or the
    'none' array; grad of the sum for 'none').  sample_weight: torch has none;
    the loss is sum_i s_i l_i (/ sum_i s_i w_{y_i} for mean, over the counted
    samples) from torch's per-sample losses."""
    torch = _torch()
    F = torch.nn.functional
    x = np.asarray(logits)
    xt = torch.tensor(np.moveaxis(x, axis, 1) if x.ndim > 1 else x, requires_grad=True)
    t = np.asarray(target)
    prob = t.dtype.kind == "f" and t.shape == x.shape
    if prob:
        tt = torch.tensor(np.moveaxis(t, axis, 1) if x.ndim > 1 else t).to(xt.dtype)
    else:
        tt = torch.tensor(t.astype(np.int64))
    wt = None if weight is None else torch.tensor(np.asarray(weight)).to(xt.dtype)
    kw = dict(weight=wt, ignore_index=ignore_index, label_smoothing=label_smoothing)
    if sample_weight is None:
        loss = F.cross_entropy(xt, tt, reduction=reduction, **kw)
        (loss.sum() if reduction == "none" else loss).backward()
    else:
        per = F.cross_entropy(xt, tt, reduction="none", **kw)
        s = torch.tensor(np.asarray(sample_weight, np.float64)).to(xt.dtype)
        loss = per * s
        if reduction != "none":
            loss = loss.sum()
        if reduction == "mean":
            if prob:
                den = s.sum()
            else:
                valid = tt != ignore_index
                wy = torch.ones_like(s) if wt is None else wt[torch.where(valid, tt, 0)]
                den = (s * wy * valid).sum()
            loss = loss / den
        (loss.sum() if reduction == "none" else loss).backward()
    g = xt.grad.detach().numpy().astype(np.float64)
    g = np.moveaxis(g, 1, axis) if x.ndim > 1 else g
    ln = loss.detach().numpy().astype(np.float64)
    return (ln if reduction == "none" else float(ln)), g


# ================================================================ against torch and the reference
# ignore_index=0 with C = 1 ignores every sample: test_all_ignored
@pytest.mark.parametrize("C,opt", [(C, o) for C in (1, 2, 7, 1000) for o in OPTIONS
                                   if not (C == 1 and o == "ignore0")])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dt", DTYPES, ids=DT_IDS)
def test_2d_vs_reference_and_torch(dt, reduction, C, opt):
    N = 12 if C == 1000 else 33
    seed = 10 * C + len(opt)
    x = _logits(seed, (N, C), dt)
    kw, lab = _case(opt, seed, (N,), C)
    kw["reduction"] = reduction
    what = f"{np.dtype(dt)} ({N}, {C}) {reduction} {opt}"
    check_all(x, lab, **kw, what=what + " vs numpy")
    try:
        import torch  # noqa: F401
    except ImportError:
        return
    ref = torch_ref(x, lab, **kw)
    loss, grad, lw, _ = run_all(x, lab, **kw)
    check_result(loss, grad, x, lab, ref=ref, what=what + " vs torch", **kw)
    check_result(lw, None, x, lab, ref=ref, what=what + " vs torch [with_grad]", **kw)


@pytest.mark.parametrize("opt", ["plain", "weight", "ignore", "smooth_weight", "all"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("axis", [1, -1])
@pytest.mark.parametrize("dt", DTYPES, ids=DT_IDS)
def test_3d_class_axis_vs_reference_and_torch(dt, axis, reduction, opt):
    """(N, C, d) with the class axis 1 (torch's layout) and (N, d, C) with axis -1."""
    N, C, d = 5, 7, 6
    shape = (N, C, d) if axis == 1 else (N, d, C)
    seed = 300 + len(opt) + axis
    x = _logits(seed, shape, dt)
    kw, lab = _case(opt, seed, (N, d), C)
    kw["reduction"] = reduction
    what = f"{np.dtype(dt)} {shape} axis={axis} {reduction} {opt}"
    loss, grad = check_all(x, lab, axis, **kw, what=what + " vs numpy")
    if reduction == "none":
        assert loss.shape == (N, d)
    # the same samples as a 2-D (N*d, C) batch give the same loss (up to the sum's rounding)
    x2 = np.moveaxis(x, axis, -1).reshape(-1, C)
    l2, g2 = mlkern.cross_entropy_with_grad(x2, lab.reshape(-1), **kw)
    lt, _, _ = _budgets(x, lab, axis, dt, 2.0, **kw)
    if reduction == "none":
        assert_close(loss.reshape(-1), l2, lt.reshape(-1) + 2 * R.ulp_spacing(l2, dt), what=what + " vs 2-D")
    else:
        assert_close(loss, l2, lt.sum() + 4 * R.ulp_spacing(l2, dt), what=what + " vs 2-D")
    assert np.array_equal(np.moveaxis(grad, axis, -1).reshape(-1, C), g2), "3-D grad != 2-D grad"
    try:
        import torch  # noqa: F401
    except ImportError:
        return
    ref = torch_ref(x, lab, axis, **kw)
    check_result(loss, grad, x, lab, axis, ref=ref, what=what + " vs torch", **kw)


@pytest.mark.parametrize("weighted", [False, True], ids=["noweight", "weight"])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("layout", ["2d", "3d-axis1", "3d-axis-1"])
@pytest.mark.parametrize("dt", DTYPES, ids=DT_IDS)
def test_probability_targets(dt, layout, reduction, smoothing, weighted):
    shape, axis = {"2d": ((17, 9), -1), "3d-axis1": ((4, 9, 5), 1), "3d-axis-1": ((4, 5, 9), -1)}[layout]
    C = shape[axis]
    x = _logits(400 + len(layout), shape, dt)
    t = _probs(400, shape, axis).astype(dt)
    kw = {"reduction": reduction, "label_smoothing": smoothing}
    if weighted:
        kw["weight"] = _weight(4, C)
    what = f"{np.dtype(dt)} probs {shape} axis={axis} {reduction} eps={smoothing} w={weighted}"
    loss, grad = check_all(x, t, axis, **kw, what=what + " vs numpy")
    # a one-hot probability target is the label target (without weights:
    # the mean of weighted label targets divides by sum w_y instead of N)
    lab = np.argmax(t, axis=axis)
    oh = np.moveaxis(np.eye(C)[lab], -1, axis).astype(dt)
    kw1 = dict(kw, weight=None)
    lp, gp = mlkern.cross_entropy_with_grad(x, oh, axis, **kw1)
    ll, gl = mlkern.cross_entropy_with_grad(x, lab, axis, **kw1)
    lt, gt, _ = _budgets(x, lab, axis, dt, 2.0, **kw1)
    assert_close(lp, ll, (lt if reduction == "none" else lt.sum()) + 4 * R.ulp_spacing(ll, dt), what=what + " onehot")
    glm = np.moveaxis(gl, axis, -1)
    assert_close(np.moveaxis(gp, axis, -1), glm, 2 * gt + 2 * R.ulp_spacing(glm, dt), what=what + " onehot grad")
    try:
        import torch  # noqa: F401
    except ImportError:
        return
    ref = torch_ref(x, t, axis, **kw)
    check_result(loss, grad, x, t, axis, ref=ref, what=what + " vs torch", **kw)


def test_probability_targets_mean_divides_by_samples():
    """Spelled out: weighted probability targets, mean = sum_i l_i / N (not / sum w)."""
    x = np.array([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]])
    t = np.array([[0.2, 0.5, 0.3], [1.0, 0.0, 0.0]])
    w = np.array([0.5, 2.0, 3.0])
    ls = x - np.log(np.exp(x).sum(1, keepdims=True))
    per = -(w * t * ls).sum(1)
    assert mlkern.cross_entropy(x, t, weight=w) == pytest.approx(per.mean(), rel=1e-14)
    assert mlkern.cross_entropy(x, t, weight=w, reduction="sum") == pytest.approx(per.sum(), rel=1e-14)
    np.testing.assert_allclose(mlkern.cross_entropy(x, t, weight=w, reduction="none"), per, rtol=1e-14)


# ---------------------------------------------------------------- ignore_index
@pytest.mark.parametrize("kw", [{}, {"weight": [0.5, 2.0, 1.0]}, {"label_smoothing": 0.2},
                                {"weight": [0.5, 2.0, 1.0], "label_smoothing": 0.2},
                                {"sample_weight": [1.0, 2.0, 3.0, 4.0]}],
                         ids=["plain", "weight", "smooth", "smooth_weight", "sample_weight"])
@pytest.mark.parametrize("dt", DTYPES, ids=DT_IDS)
def test_all_ignored(dt, kw):
    """Every sample ignored: mean is 0/0 = NaN (as torch), sum 0, none zeros,
    and the gradient is 0 (torch's) for every reduction."""
    x = _logits(5, (4, 3), dt)
    lab = np.full(4, -100)
    for red in REDUCTIONS:
        loss, grad, lw, gw = run_all(x, lab, reduction=red, **kw)
        assert np.array_equal(grad, np.zeros_like(x)), (red, grad)
        if red == "mean":
            assert type(loss) is np.dtype(dt).type and type(lw) is np.dtype(dt).type
            assert np.isnan(loss), f"mean over no counted samples: {loss!r}, expected NaN (torch)"
            assert np.isnan(lw), f"with_grad mean over no counted samples: {lw!r}, expected NaN"
        elif red == "sum":
            assert loss == 0 and lw == 0
        else:
            assert np.array_equal(loss, np.zeros(4, dt)) and np.array_equal(lw, np.zeros(4, dt))
    try:
        import torch  # noqa: F401
    except ImportError:
        return
    tl, tg = torch_ref(x, lab, reduction="mean", **kw)
    assert math.isnan(tl) and np.array_equal(tg, np.zeros(x.shape))


def test_ignored_rows_count_for_nothing():
    """An ignored sample's logits (even NaN or huge) change nothing; the rest
    equals the batch without it."""
    x = _logits(6, (6, 5))
    lab = np.array([1, -100, 4, 0, -100, 2])
    keep = lab != -100
    for kw in ({}, {"weight": _weight(6, 5)}, {"label_smoothing": 0.3, "weight": _weight(7, 5)}):
        for red in REDUCTIONS:
            loss, grad = mlkern.cross_entropy_with_grad(x, lab, reduction=red, **kw)
            lk, gk = mlkern.cross_entropy_with_grad(x[keep], lab[keep], reduction=red, **kw)
            xb = x.copy()
            xb[~keep] = [1e30, np.nan, -np.inf, 3.0, 0.0]
            lb, gb = mlkern.cross_entropy_with_grad(xb, lab, reduction=red, **kw)
            assert np.array_equal(grad[~keep], np.zeros((2, 5))) and np.array_equal(gb[~keep], np.zeros((2, 5)))
            np.testing.assert_allclose(grad[keep], gk, rtol=1e-14, atol=1e-17)
            assert np.array_equal(gb, grad)
            if red == "none":
                assert np.array_equal(loss[~keep], [0.0, 0.0]) and np.array_equal(lb[~keep], [0.0, 0.0])
                np.testing.assert_allclose(loss[keep], lk, rtol=1e-14)
                assert np.array_equal(lb, loss)
            else:
                assert lb == loss and loss == pytest.approx(lk, rel=1e-14)


def test_ignore_index_in_range_and_custom():
    x = _logits(8, (5, 4))
    # ignore_index = 2 (a valid class): its samples are dropped
    lab = np.array([2, 0, 2, 3, 1])
    r = mlkern.cross_entropy(x, lab, ignore_index=2, reduction="none")
    assert r[0] == 0 and r[2] == 0 and (r[[1, 3, 4]] > 0).all()
    ref = mlkern.cross_entropy(x[[1, 3, 4]], lab[[1, 3, 4]])
    assert mlkern.cross_entropy(x, lab, ignore_index=2) == pytest.approx(ref, rel=1e-14)
    # a custom negative ignore_index: -100 is then an error, -1 is not
    lab2 = np.array([-1, 0, 1, 3, -1])
    assert mlkern.cross_entropy(x, lab2, ignore_index=-1) == pytest.approx(
        mlkern.cross_entropy(x[1:4], lab2[1:4]), rel=1e-14)
    with pytest.raises(ValueError, match="-100"):
        mlkern.cross_entropy(x, np.array([-100, 0, 1, 3, 0]), ignore_index=-1)
    # an ignore_index beyond the classes
    assert mlkern.cross_entropy(x, np.array([9, 0, 1, 3, 9]), ignore_index=9) == pytest.approx(
        mlkern.cross_entropy(x[1:4], lab2[1:4]), rel=1e-14)


def test_empty_batch():
    for dt in DTYPES:
        x = np.empty((0, 4), dt)
        lab = np.empty(0, np.int64)
        lm, gm = mlkern.cross_entropy_with_grad(x, lab)
        assert type(lm) is np.dtype(dt).type and np.isnan(lm)
        assert gm.shape == (0, 4) and gm.dtype == dt
        assert mlkern.cross_entropy(x, lab, reduction="sum") == 0
        ln = mlkern.cross_entropy(x, lab, reduction="none")
        assert ln.shape == (0,) and ln.dtype == dt


# ---------------------------------------------------------------- sample_weight
# ignore_index does not apply to probability targets
@pytest.mark.parametrize("target,opt", [(t, o) for t in ("labels", "probs")
                                        for o in ("plain", "weight", "ignore", "smooth_weight", "all")
                                        if not (t == "probs" and o in ("ignore", "all"))])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dt", DTYPES, ids=DT_IDS)
def test_sample_weight(dt, reduction, target, opt):
    """mean = sum s w_y l / sum s w_y over counted samples (labels), sum s l / sum s
    (probabilities); sum = sum s l; none = s l."""
    N, C = 23, 6
    seed = 500 + len(opt)
    x = _logits(seed, (N, C), dt)
    kw, lab = _case(opt, seed, (N,), C)
    s = np.random.default_rng(seed).uniform(0.0, 3.0, N)
    s[3] = 0.0
    if target == "probs":
        tgt = _probs(seed, (N, C)).astype(dt)
    else:
        tgt = lab
    kw.update(reduction=reduction, sample_weight=s)
    what = f"{np.dtype(dt)} sample_weight {reduction} {opt} {target}"
    loss, grad = check_all(x, tgt, **kw, what=what + " vs numpy")
    # the formula spelled out from the unweighted per-sample losses
    kw0 = dict(kw, sample_weight=None, reduction="none")
    per = mlkern.cross_entropy(x.astype(np.float64), tgt, **kw0)
    if target == "labels":
        valid = lab != kw.get("ignore_index", -100)
        w = kw.get("weight")
        wy = np.where(valid, (np.ones(C) if w is None else w)[np.where(valid, lab, 0)], 0.0)
        # per already carries w_y (torch's 'none'); the mean's denominator is sum s w_y
        den = np.sum(s * wy)
    else:
        den = np.sum(s)
    expect = {"none": s * per, "sum": np.sum(s * per), "mean": np.sum(s * per) / den}[reduction]
    tol = 64 * EPS[np.dtype(dt)] * np.sum(np.abs(expect)) + 1e-300
    np.testing.assert_allclose(np.asarray(loss, np.float64), expect, rtol=0, atol=tol, err_msg=what)
    try:
        import torch  # noqa: F401
    except ImportError:
        return
    ref = torch_ref(x, tgt, **kw)
    check_result(loss, grad, x, tgt, ref=ref, what=what + " vs torch", **kw)


def test_sample_weight_3d_and_validation():
    x = _logits(9, (3, 4, 5))
    lab = _labels(9, (3, 5), 4)
    s = np.random.default_rng(9).uniform(0.5, 2, (3, 5))
    loss, grad = mlkern.cross_entropy_with_grad(x, lab, 1, sample_weight=s)
    check_result(loss, grad, x, lab, 1, sample_weight=s, what="3-D sample_weight")
    # unit sample weights change nothing
    l1, g1 = mlkern.cross_entropy_with_grad(x, lab, 1, sample_weight=np.ones((3, 5)))
    l0, g0 = mlkern.cross_entropy_with_grad(x, lab, 1)
    assert l1 == pytest.approx(l0, rel=1e-15) and np.allclose(g1, g0, rtol=1e-15, atol=0)
    for bad in (np.ones(15), np.ones((3, 4)), np.ones((3, 5, 1)), np.ones((5, 3))):
        for f in FUNCS:
            with pytest.raises(ValueError):
                fn(f)(x, lab, 1, sample_weight=bad)
    with pytest.raises(ValueError):
        mlkern.cross_entropy(x, _probs(1, x.shape, 1), 1, sample_weight=np.ones(3))


# ---------------------------------------------------------------- finite differences
FD_CONFIGS = [
    ("plain-mean", (4, 5), -1, "labels", {}),
    ("plain-sum", (4, 5), -1, "labels", {"reduction": "sum"}),
    ("none", (4, 5), -1, "labels", {"reduction": "none"}),
    ("weight-ignore", (5, 4), -1, "labels", {"weight": [0.3, 1.5, 2.0, 0.7], "ignore": True}),
    ("smooth", (4, 5), -1, "labels", {"label_smoothing": 0.2}),
    ("smooth-weight-sum", (4, 5), -1, "labels",
     {"label_smoothing": 0.35, "weight": [0.3, 1.5, 2.0, 0.7, 1.1], "reduction": "sum"}),
    ("all-sample-weight", (5, 4), -1, "labels",
     {"label_smoothing": 0.1, "weight": [0.3, 1.5, 2.0, 0.7], "ignore": True,
      "sample_weight": [0.5, 2.0, 1.0, 0.0, 3.0]}),
    ("3d-axis1", (2, 4, 3), 1, "labels", {"label_smoothing": 0.1, "weight": [0.3, 1.5, 2.0, 0.7]}),
    ("C=1", (3, 1), -1, "labels", {"label_smoothing": 0.5}),
    ("C=2", (4, 2), -1, "labels", {"reduction": "sum"}),
    ("probs", (4, 5), -1, "probs", {}),
    ("probs-smooth-weight", (4, 5), -1, "probs",
     {"label_smoothing": 0.3, "weight": [0.3, 1.5, 2.0, 0.7, 1.1], "sample_weight": [1.0, 0.5, 2.0, 1.5]}),
    ("probs-3d-axis0", (5, 2, 3), 0, "probs", {"reduction": "none"}),
]


@pytest.mark.parametrize("cfg", FD_CONFIGS, ids=[c[0] for c in FD_CONFIGS])
def test_gradient_finite_differences(cfg):
    """grad against 4th-order central differences of mlkern's own loss (float64):
    f' = (f(x-2h) - 8 f(x-h) + 8 f(x+h) - f(x+2h)) / 12h, error O(h^4)."""
    _, shape, axis, kind, kw = cfg
    kw = dict(kw)
    x = _logits(len(cfg[0]), shape, scale=1.5)
    C = shape[axis]
    rshape = tuple(s for i, s in enumerate(shape) if i != axis % len(shape))
    if kind == "probs":
        tgt = _probs(3, shape, axis)
    else:
        tgt = _labels(3, rshape, C, 0.3 if kw.pop("ignore", False) else 0.0)
    if "sample_weight" in kw:
        kw["sample_weight"] = np.asarray(kw["sample_weight"]).reshape(rshape)
    red = kw.get("reduction", "mean")

    def f(z):
        r = mlkern.cross_entropy(z, tgt, axis, **kw)
        return float(np.sum(r)) if red == "none" else float(r)

    g = mlkern.cross_entropy_grad(x, tgt, axis, **kw)
    h = 1e-3
    num = np.empty_like(x)
    for idx in np.ndindex(x.shape):
        v = []
        for k in (-2, -1, 1, 2):
            xp = x.copy()
            xp[idx] += k * h
            v.append(f(xp))
        num[idx] = (v[0] - 8 * v[1] + 8 * v[2] - v[3]) / (12 * h)
    scale = max(1.0, abs(f(x)))
    np.testing.assert_allclose(g, num, rtol=1e-7, atol=2e-9 * scale, err_msg=cfg[0])
    # the loss is shift-invariant per sample (sum_j (U p_j - u_j) = 0): every
    # gradient row sums to 0
    np.testing.assert_allclose(np.sum(g, axis=axis), 0.0, atol=1e-14)


# ---------------------------------------------------------------- pinned numerics
@pytest.mark.parametrize("fname", ["cross_entropy", "cross_entropy_with_grad"])
def test_multinomial_row(fname):
    """z = [1e4, 0, 7e-7]: loss (label 0) = log1p(e^-1e4 + e^(7e-7-1e4)) ~ e^-1e4 = 0
    in float64; label 1: 1e4; label 2: 1e4 - 7e-7; gradient softmax - onehot
    with softmax = [1, 0, 0] (e^-1e4 underflows)."""
    row = [1e4, 0.0, 7e-7]
    expect = {0: 0.0, 1: 1e4, 2: 1e4 - 7e-7}
    for y in range(3):
        r = fn(fname)(np.array([row]), [y])
        loss = r[0] if fname.endswith("with_grad") else r
        assert type(loss) is np.float64
        if expect[y] == 0:
            assert 0.0 <= loss <= 1e-300, (y, loss)
        else:
            assert loss == pytest.approx(expect[y], rel=1e-12, abs=0), (y, loss)
        nr = mlkern.cross_entropy(np.array([row] * 3), [0, 1, 2], reduction="none")
        assert nr[y] == loss or (expect[y] != 0 and nr[y] == pytest.approx(expect[y], rel=1e-12))
        g = mlkern.cross_entropy_grad(np.array([row]), [y])
        e = np.array([[1.0, 0.0, 0.0]])
        e[0, y] -= 1.0
        assert np.array_equal(g, e), (y, g)
    # float32 (7e-7 is lost beside 1e4: all to float32 rounding)
    for y in range(3):
        l32 = mlkern.cross_entropy(np.array([row], np.float32), [y])
        assert type(l32) is np.float32
        assert l32 == pytest.approx(expect[y], rel=4 * EPS[F32], abs=1e-30)


def test_zero_minus40_row():
    """z = [0, -40], label 0: loss = log1p(e^-40) = 4.248354255291589e-18 to
    relative accuracy (not 0, not the absolute error of a log(sum) form);
    gradient [p_0 - 1, p_1] = [-e^-40/(1+e^-40), e^-40/(1+e^-40)]."""
    x = np.array([[0.0, -40.0]])
    for f in ("cross_entropy", "cross_entropy_with_grad"):
        r = fn(f)(x, [0])
        loss = r[0] if f.endswith("with_grad") else r
        assert loss == pytest.approx(LSE_0_M40, rel=1e-12, abs=0), (f, loss)
    assert mlkern.cross_entropy(x, [0], reduction="none")[0] == pytest.approx(LSE_0_M40, rel=1e-12, abs=0)
    assert mlkern.cross_entropy(x, [0], reduction="sum") == pytest.approx(LSE_0_M40, rel=1e-12, abs=0)
    g = mlkern.cross_entropy_grad(x, [0])
    p1 = math.exp(-40) / (1 + math.exp(-40))       # = 4.2483542552915889e-18 (log1p(t) ~ t/(1+t) here)
    assert g[0, 1] == pytest.approx(p1, rel=1e-12, abs=0), g
    # p_0 - 1: the exact value is -p1; the rounding of softmax(z)_0 = 1 - 4e-18 to
    # 1.0 (torch's p - onehot) leaves at most 1 ULP of 1
    assert -p1 * (1 + 1e-12) <= g[0, 0] <= 0.0 or abs(g[0, 0]) <= EPS[F64], g
    # label 1: loss = 40 + log1p(e^-40) = 40.0 in float64, gradient [1, -1] to rounding
    l1, g1 = mlkern.cross_entropy_with_grad(x, [1])
    assert l1 == pytest.approx(40.0, rel=1e-15)
    np.testing.assert_allclose(g1, [[1.0, -1.0]], rtol=2 * EPS[F64])
    # the same in a batch, along axis 0, and in float32
    X = np.array([[0.0, -40.0], [-40.0, 0.0], [7.0, -33.0]])
    np.testing.assert_allclose(mlkern.cross_entropy(X, [0, 1, 0], reduction="none"), [LSE_0_M40] * 3,
                               rtol=1e-12, atol=0)
    np.testing.assert_allclose(mlkern.cross_entropy(X.T.copy(), [0, 1, 0], 0, reduction="none"),
                               [LSE_0_M40] * 3, rtol=1e-12, atol=0)
    l32 = mlkern.cross_entropy(x.astype(np.float32), [0])
    assert type(l32) is np.float32 and l32 == pytest.approx(LSE_0_M40, rel=8 * EPS[F32], abs=0)


@pytest.mark.parametrize("dt", DTYPES, ids=DT_IDS)
def test_huge_logits_finite(dt):
    """Logits +-1e30: finite loss and gradient for every label, reduction,
    weights and smoothing; the values of the exact cases spelled out."""
    row = [1e30, -1e30, 0.0, 5.0]
    X = np.array([row] * 4, dt)
    lab = np.arange(4)
    for kw in ({}, {"label_smoothing": 0.1}, {"weight": [0.5, 2.0, 1.0, 3.0], "label_smoothing": 0.3},
               {"sample_weight": [1.0, 2.0, 0.5, 1.0]}):
        for red in REDUCTIONS:
            loss, grad = mlkern.cross_entropy_with_grad(X, lab, reduction=red, **kw)
            assert np.isfinite(loss).all() and np.isfinite(grad).all(), (kw, red, loss, grad)
            assert np.isfinite(mlkern.cross_entropy(X, lab, reduction=red, **kw)).all()
            check_result(loss, grad, X, lab, reduction=red, what=f"huge {kw} {red}", **kw)
    loss = mlkern.cross_entropy(X, lab, reduction="none")
    np.testing.assert_allclose(loss, [0.0, 2e30, 1e30, 1e30], rtol=4 * EPS[np.dtype(dt)])
    g = mlkern.cross_entropy_grad(X, lab, reduction="sum")
    expect = np.array([[1.0, 0, 0, 0]] * 4) - np.eye(4)
    assert np.array_equal(g, expect.astype(dt)), g
    # and a row of huge negatives only (the max -1e30)
    Y = np.array([[-1e30, -1e30 - 1e15 if dt == np.float64 else -1.1e30]], dt)
    ly, gy = mlkern.cross_entropy_with_grad(Y, [0])
    assert np.isfinite(ly) and np.isfinite(gy).all()


@pytest.mark.parametrize("dt", DTYPES, ids=DT_IDS)
def test_nan_in_one_row(dt):
    """NaN in one row: 'none' NaN in that sample only, mean/sum NaN; the
    gradient NaN in that row only, the other rows unchanged."""
    for shape, axis, bad in (((6, 7), -1, (2, 3)), ((3, 5, 4), 1, (1, 2, 3)), ((4, 1000), -1, (3, 999))):
        x = _logits(11, shape, dt)
        C = shape[axis]
        rshape = tuple(s for i, s in enumerate(shape) if i != axis % len(shape))
        lab = _labels(11, rshape, C)
        xn = x.copy()
        xn[bad] = np.nan
        row = tuple(b for i, b in enumerate(bad) if i != axis % len(shape))
        for kw in ({}, {"weight": _weight(1, C), "label_smoothing": 0.2}):
            ln = mlkern.cross_entropy(xn, lab, axis, reduction="none", **kw)
            l0 = mlkern.cross_entropy(x, lab, axis, reduction="none", **kw)
            mask = np.zeros(rshape, bool)
            mask[row] = True
            assert np.isnan(ln[row]) and np.array_equal(ln[~mask], l0[~mask]), (shape, kw)
            for red in ("mean", "sum"):
                assert np.isnan(mlkern.cross_entropy(xn, lab, axis, reduction=red, **kw))
                lw, gw = mlkern.cross_entropy_with_grad(xn, lab, axis, reduction=red, **kw)
                assert np.isnan(lw)
                g0 = mlkern.cross_entropy_grad(x, lab, axis, reduction=red, **kw)
                gm, g0m = np.moveaxis(gw, axis, -1), np.moveaxis(g0, axis, -1)
                assert np.isnan(gm[row]).all(), f"the NaN row's gradient: {gm[row]}"
                assert np.array_equal(gm[~mask], g0m[~mask]), "rows without NaN changed"


def test_infinite_logits():
    """-inf at another class costs nothing, -inf at the label gives +inf;
    +inf in a row gives NaN (as torch: log_softmax of +inf is NaN)."""
    inf = np.inf
    for dt in DTYPES:
        x = np.array([[0.0, -inf, 1.0]], dt)
        loss, g = mlkern.cross_entropy_with_grad(x, [2])
        assert loss == pytest.approx(np.log1p(np.exp(-1.0)), rel=8 * EPS[np.dtype(dt)])
        np.testing.assert_allclose(g, [[1 / (1 + np.e), 0.0, -1 / (1 + np.e)]], rtol=8 * EPS[np.dtype(dt)])
        assert mlkern.cross_entropy(x, [1]) == inf
        # +inf at the label: inf - inf; elsewhere lse - z_y = +inf (torch's values);
        # the gradient NaN (softmax of a row with +inf is NaN, SPEC row-wise)
        xi = np.array([[0.0, inf]], dt)
        assert np.isnan(mlkern.cross_entropy(xi, [1]))
        assert mlkern.cross_entropy(xi, [0]) == inf
        assert np.isnan(mlkern.cross_entropy_grad(xi, [1])).all()
        assert np.isnan(mlkern.cross_entropy_grad(xi, [0])).all()
    try:
        import torch  # noqa: F401
    except ImportError:
        return
    x = np.array([[0.0, -inf, 1.0], [2.0, 0.0, -inf]])
    lab = np.array([2, 0])
    loss, g = mlkern.cross_entropy_with_grad(x, lab)
    tl, tg = torch_ref(x, lab)
    assert loss == pytest.approx(tl, rel=1e-14) and np.allclose(g, tg, rtol=1e-14, atol=1e-300)


def test_docstring_values():
    assert mlkern.cross_entropy([[0.0, 0.0]], [1]) == math.log(2)
    assert mlkern.cross_entropy_grad([[0.0, 0.0]], [1]).tolist() == [[0.5, -0.5]]
    loss, g = mlkern.cross_entropy_with_grad([[0.0, 0.0]], [0])
    assert loss == math.log(2) and g.tolist() == [[-0.5, 0.5]]


def test_spelled_out_smoothing_with_weight():
    """PyTorch's weighted label smoothing on one sample: (1-eps) w_y (lse - z_y)
    + eps/n sum_j w_j (lse - z_j), mean divided by w_y."""
    z = np.array([[1.0, -0.5, 2.0]])
    w = np.array([0.5, 2.0, 1.5])
    eps, y = 0.3, 1
    lse = math.log(sum(math.exp(v) for v in z[0]))
    s = (1 - eps) * w[y] * (lse - z[0, y]) + eps / 3 * sum(w[j] * (lse - z[0, j]) for j in range(3))
    assert mlkern.cross_entropy(z, [y], weight=w, label_smoothing=eps, reduction="sum") == pytest.approx(s, rel=1e-14)
    assert mlkern.cross_entropy(z, [y], weight=w, label_smoothing=eps) == pytest.approx(s / w[y], rel=1e-14)
    p = np.exp(z[0] - lse)
    u = (1 - eps) * w[y] * (np.arange(3) == y) + eps / 3 * w
    np.testing.assert_allclose(mlkern.cross_entropy_grad(z, [y], weight=w, label_smoothing=eps, reduction="sum"),
                               [u.sum() * p - u], rtol=1e-14)


# ---------------------------------------------------------------- validation
@pytest.mark.parametrize("fname", FUNCS)
def test_label_out_of_range(fname):
    x = _logits(12, (5, 4))
    with pytest.raises(ValueError):                     # label == C
        fn(fname)(x, np.array([0, 1, 4, 3, 2]))
    # values that do not occur elsewhere in a message (C = 4, index 2, -100)
    for bad in (5, 12345, -1, -101, np.iinfo(np.int64).max):
        lab = np.array([0, 1, bad, 3, 2])
        with pytest.raises(ValueError, match=rf"(?<![\d-]){re.escape(str(bad))}(?!\d)"):
            fn(fname)(x, lab)
    # uint64 beyond int64
    lab = np.array([0, 1, 2**63 + 5, 3, 2], np.uint64)
    with pytest.raises(ValueError, match=str(2**63 + 5)):
        fn(fname)(x, lab)
    # the ignore_index itself is fine, also when it is the only out-of-range label
    fn(fname)(x, np.array([0, -100, 2, 3, 1]))
    fn(fname)(x, np.array([0, 7, 2, 3, 1]), ignore_index=7)
    # 3-D, class axis 1
    x3 = _logits(12, (2, 4, 3))
    with pytest.raises(ValueError, match=r"(?<!\d)9(?!\d)"):
        fn(fname)(x3, np.array([[0, 1, 2], [3, 9, 0]]), 1)


@pytest.mark.parametrize("fname", FUNCS)
def test_target_shape_and_dtype_errors(fname):
    x = _logits(13, (5, 4))
    for bad in (np.zeros(4, np.int64), np.zeros(6, np.int64), np.zeros((5, 1), np.int64),
                np.zeros((5, 4), np.int64), np.zeros((1, 5), np.int64), np.int64(0)):
        with pytest.raises(ValueError):
            fn(fname)(x, bad)
    # float labels of the target's shape (not the logits'): not integer labels
    for bad in (np.zeros(5), np.array([0.0, 1.0, 2.0, 3.0, 1.5]), np.zeros(4), np.zeros((5, 3)),
                np.zeros((4, 5))):
        with pytest.raises((TypeError, ValueError)):
            fn(fname)(x, bad)
    # 3-D: labels with the class axis still in, or the wrong axis removed
    x3 = _logits(13, (2, 4, 3))
    with pytest.raises(ValueError):
        fn(fname)(x3, np.zeros((2, 4), np.int64), 1)
    with pytest.raises(ValueError):
        fn(fname)(x3, np.zeros((4, 3), np.int64), 1)


@pytest.mark.parametrize("fname", FUNCS)
def test_parameter_errors(fname):
    x = _logits(14, (5, 4))
    lab = np.array([0, 1, 2, 3, 0])
    for w in (np.ones(3), np.ones(5), np.ones((4, 1)), np.ones((1, 4)), []):
        with pytest.raises(ValueError):
            fn(fname)(x, lab, weight=w)
    with pytest.raises(ValueError):
        fn(fname)(x, _probs(1, x.shape), weight=np.ones(5))
    for red in ("avg", "Mean", "", "batchmean", None):
        with pytest.raises((ValueError, TypeError)) as ei:
            fn(fname)(x, lab, reduction=red)
        if isinstance(red, str):
            assert ei.type is ValueError
    for eps in (-0.1, -1e-300, 1.0000001, 2.0, math.nan):
        with pytest.raises(ValueError):
            fn(fname)(x, lab, label_smoothing=eps)
        with pytest.raises(ValueError):
            fn(fname)(x, _probs(2, x.shape), label_smoothing=eps)
    for eps in (0.0, 1.0, 1):
        fn(fname)(x, lab, label_smoothing=eps)
    for ax in (2, -3, 10):
        with pytest.raises(ValueError, match="axis"):
            fn(fname)(x, lab, axis=ax)
    x3 = _logits(14, (2, 3, 4))
    with pytest.raises(ValueError, match="axis"):
        fn(fname)(x3, np.zeros((2, 3), np.int64), axis=3)
    with pytest.raises(ValueError):
        fn(fname)(np.float64(1.0), 0)
    with pytest.raises(TypeError):
        fn(fname)(x.astype(np.complex128), lab)


def test_label_smoothing_one():
    """eps = 1: the target is uniform, the label does not matter."""
    x = _logits(15, (6, 5))
    a = mlkern.cross_entropy_with_grad(x, np.zeros(6, np.int64), label_smoothing=1.0)
    b = mlkern.cross_entropy_with_grad(x, np.array([4, 3, 2, 1, 0, 1]), label_smoothing=1.0)
    assert a[0] == pytest.approx(b[0], rel=1e-14) and np.allclose(a[1], b[1], rtol=1e-13, atol=1e-17)
    u = mlkern.cross_entropy_with_grad(x, np.full(x.shape, 0.2))
    assert a[0] == pytest.approx(u[0], rel=1e-14) and np.allclose(a[1], u[1], rtol=1e-13, atol=1e-17)


# ---------------------------------------------------------------- dtypes
@pytest.mark.parametrize("fname", FUNCS)
def test_result_dtypes(fname):
    lab = np.array([0, 2, 1])
    base = np.array([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0], [2.0, 2.0, 2.0]])
    for dt, rdt in ((np.float16, F16), (np.float32, F32), (np.float64, F64), (np.int32, F64),
                    (np.int64, F64), (np.uint8, F64), (np.bool_, F64)):
        x = base.astype(dt)
        for red in REDUCTIONS:
            r = fn(fname)(x, lab, reduction=red)
            loss, grad = (r if fname.endswith("with_grad") else
                          (r, None) if fname == "cross_entropy" else (None, r))
            if loss is not None:
                if red == "none":
                    assert isinstance(loss, np.ndarray) and loss.dtype == rdt and loss.shape == (3,)
                else:
                    assert type(loss) is rdt.type, (dt, red, type(loss))
            if grad is not None:
                assert isinstance(grad, np.ndarray) and grad.dtype == rdt and grad.shape == (3, 3), (dt, grad)
            # values: the float64 reference of the (exactly representable) input
            check_result(loss, grad, x, lab, reduction=red, what=f"{np.dtype(dt)} {red}")


def test_float16_values():
    x = _logits(16, (50, 9), np.float16, scale=2.0)
    for kw in ({}, {"label_smoothing": 0.2, "weight": _weight(2, 9)}):
        lab = _labels(16, (50,), 9)
        for red in REDUCTIONS:
            loss, grad = mlkern.cross_entropy_with_grad(x, lab, reduction=red, **kw)
            check_result(loss, grad, x, lab, reduction=red, what=f"f16 {red}", **kw)
        t = _probs(16, x.shape).astype(np.float16)
        loss, grad = mlkern.cross_entropy_with_grad(x, t, **kw)
        assert type(loss) is np.float16 and grad.dtype == F16
        check_result(loss, grad, x, t, what="f16 probs", **kw)


def test_label_dtypes_and_lists():
    x = _logits(17, (6, 5))
    lab = np.array([0, 4, 2, 3, 1, 4])
    ref = mlkern.cross_entropy_with_grad(x, lab, reduction="none")
    for dt in (np.int8, np.int16, np.int32, np.uint8, np.uint16, np.uint32, np.uint64):
        r = mlkern.cross_entropy_with_grad(x, lab.astype(dt), reduction="none")
        assert np.array_equal(r[0], ref[0]) and np.array_equal(r[1], ref[1]), dt
    r = mlkern.cross_entropy_with_grad(x.tolist(), lab.tolist(), reduction="none", weight=[1.0] * 5)
    assert np.array_equal(r[0], ref[0]) and np.array_equal(r[1], ref[1])
    # a non-contiguous label array
    big = np.zeros(12, np.int64)
    big[::2] = lab
    assert np.array_equal(mlkern.cross_entropy(x, big[::2], reduction="none"), ref[0])
    # bool labels are not integer labels
    with pytest.raises((TypeError, ValueError)):
        mlkern.cross_entropy(x, lab.astype(bool))


@pytest.mark.parametrize("layout", ["F", "strided", "negative", "byteswapped", "readonly"])
def test_logit_layouts(layout):
    base = _logits(18, (8, 6))
    lab = _labels(18, (8,), 6)
    if layout == "F":
        x = np.asfortranarray(base)
    elif layout == "strided":
        x = np.zeros((8, 12))
        x[:, ::2] = base
        x = x[:, ::2]
    elif layout == "negative":
        x = np.ascontiguousarray(base[::-1, ::-1])[::-1, ::-1]
    elif layout == "byteswapped":
        x = base.astype(base.dtype.newbyteorder(">" if np.little_endian else "<"))
    else:
        x = base.copy()
        x.setflags(write=False)
    assert np.array_equal(x, base)
    xc = x.copy(order="K")
    for kw in ({}, {"label_smoothing": 0.2, "weight": _weight(3, 6)}):
        for axis, t in ((-1, lab), (0, _labels(19, (6,), 8))):
            if "weight" in kw:
                kw = dict(kw, weight=_weight(3, x.shape[axis]))
            loss, grad = mlkern.cross_entropy_with_grad(x, t, axis, **kw)
            assert grad.dtype == F64 and grad.shape == x.shape
            check_result(loss, grad, base, t, axis, what=f"layout {layout} axis={axis}", **kw)
    assert np.array_equal(x, xc) and x.dtype == xc.dtype, "input modified"


def test_inputs_not_modified():
    x = _logits(19, (7, 5), np.float32)
    lab = _labels(19, (7,), 5, 0.3)
    w = _weight(19, 5)
    s = np.linspace(0.5, 2, 7)
    t = _probs(19, x.shape).astype(np.float32)
    copies = [a.copy() for a in (x, lab, w, s, t)]
    for f in FUNCS:
        fn(f)(x, lab, weight=w, sample_weight=s, label_smoothing=0.1)
        fn(f)(x, t, weight=w, sample_weight=s, label_smoothing=0.1)
    for a, c in zip((x, lab, w, s, t), copies):
        assert np.array_equal(a, c)


# ---------------------------------------------------------------- out=
@pytest.mark.parametrize("target", ["labels", "probs"])
@pytest.mark.parametrize("shape,axis", [((300, 1000), -1), ((40, 7), -1), ((6, 7, 5), 1), ((7, 30), 0)],
                         ids=["300x1000", "40x7", "3d-axis1", "axis0"])
@pytest.mark.parametrize("dt", DTYPES + [np.float16], ids=DT_IDS + ["f16"])
@pytest.mark.parametrize("fname", ["cross_entropy_grad", "cross_entropy_with_grad"])
def test_out_is_logits_in_place(fname, dt, shape, axis, target):
    x = _logits(20, shape, dt)
    C = shape[axis]
    rshape = tuple(s for i, s in enumerate(shape) if i != axis % len(shape))
    tgt = _labels(20, rshape, C, 0.2) if target == "labels" else _probs(20, shape, axis).astype(dt)
    kw = {"label_smoothing": 0.1, "weight": _weight(20, C)}
    ref = fn(fname)(x, tgt, axis, **kw)
    z = x.copy()
    r = fn(fname)(z, tgt, axis, out=z, **kw)
    if fname == "cross_entropy_with_grad":
        assert isinstance(r, tuple) and r[1] is z
        assert r[0] == ref[0], "loss differs in place"
        ref = ref[1]
    else:
        assert r is z
    assert np.array_equal(z, ref), "in-place gradient differs from out=None"
    # into a separate array too
    o = np.full(shape, -7.0, dt)
    r = fn(fname)(x, tgt, axis, out=o, **kw)
    assert (r[1] if isinstance(r, tuple) else r) is o and np.array_equal(o, ref)
    # and a non-contiguous out
    big = np.zeros(tuple(2 * s for s in shape), dt)
    sl = tuple(slice(None, None, 2) for _ in shape)
    r = fn(fname)(x, tgt, axis, out=big[sl], **kw)
    assert np.array_equal(big[sl], ref)
    mask = np.ones(big.shape, bool)
    mask[sl] = False
    assert (big[mask] == 0).all(), "wrote outside out"


@pytest.mark.parametrize("fname", ["cross_entropy_grad", "cross_entropy_with_grad"])
def test_out_errors(fname):
    x = _logits(21, (5, 4))
    lab = np.array([0, 1, 2, 3, 0])
    t = _probs(21, x.shape)
    for tgt in (lab, t):
        for bad in (np.empty((4, 5)), np.empty((5, 4, 1)), np.empty(20), np.empty((5,))):
            with pytest.raises(ValueError):
                fn(fname)(x, tgt, out=bad)
        with pytest.raises(TypeError):
            fn(fname)(x, tgt, out=np.empty((5, 4), np.float32))
        with pytest.raises(TypeError):
            fn(fname)(x.astype(np.float32), tgt, out=np.empty((5, 4), np.float64))
        with pytest.raises(TypeError):
            fn(fname)(x.astype(np.float16), tgt, out=np.empty((5, 4), np.float32))
        with pytest.raises(TypeError):
            fn(fname)(x.astype(np.int32), tgt, out=np.empty((5, 4), np.int32))
        with pytest.raises(TypeError):
            fn(fname)(x, tgt, out=[[0.0] * 4] * 5)
        ro = np.empty((5, 4))
        ro.setflags(write=False)
        with pytest.raises(ValueError):
            fn(fname)(x, tgt, out=ro)
    with pytest.raises(TypeError):
        mlkern.cross_entropy(x, lab, out=np.empty((5, 4)))


# ---------------------------------------------------------------- threads
@pytest.mark.parametrize("dt", DTYPES, ids=DT_IDS)
def test_thread_count_does_not_change_results(dt):
    x = _logits(22, (4096, 1000), dt)
    lab = _labels(22, (4096,), 1000, 0.05)
    s = np.random.default_rng(22).uniform(0, 2, 4096)
    for kw in ({}, {"label_smoothing": 0.1, "weight": _weight(22, 1000), "sample_weight": s}):
        res = {}
        for nt in (1, 2):
            with mlkern.threads(nt):
                assert mlkern.get_num_threads() == nt
                res[nt] = (mlkern.cross_entropy(x, lab, **kw),
                           mlkern.cross_entropy_with_grad(x, lab, **kw),
                           mlkern.cross_entropy(x, lab, reduction="none", **kw))
        (l1, (lw1, g1), n1), (l2, (lw2, g2), n2) = res[1], res[2]
        assert l1 == l2 and lw1 == lw2, (kw.keys(), l1, l2, lw1, lw2)
        assert np.array_equal(g1, g2) and np.array_equal(n1, n2)
    # and the values themselves on a slice of the samples ('none' is per sample)
    k = 512
    kwk = dict(kw, sample_weight=s[:k], reduction="none")
    check_result(n1[:k], None, x[:k], lab[:k], **kwk, what="4096x1000 none")


# ---------------------------------------------------------------- property test
if HAVE_HYPOTHESIS:
    @settings(max_examples=60, deadline=None)
    @given(n=st.integers(1, 9), rows=st.integers(1, 6), kind=st.sampled_from(["labels", "probs"]),
           red=st.sampled_from(REDUCTIONS), eps=st.sampled_from([0.0, 0.05, 0.5, 1.0]),
           weighted=st.booleans(), sw=st.booleans(), ignore_frac=st.sampled_from([0.0, 0.5]),
           dt=st.sampled_from(DTYPES), scale=st.sampled_from([0.1, 3.0, 50.0]), seed=st.integers(0, 2**16))
    def test_property_vs_reference(n, rows, kind, red, eps, weighted, sw, ignore_frac, dt, scale, seed):
        x = _logits(seed, (rows, n), dt, scale=scale)
        kw = {"reduction": red, "label_smoothing": eps}
        if weighted:
            kw["weight"] = _weight(seed, n)
        if sw:
            kw["sample_weight"] = np.random.default_rng(seed).uniform(0.1, 2.0, rows)
        if kind == "probs":
            tgt = _probs(seed, (rows, n)).astype(dt)
        else:
            tgt = _labels(seed, (rows,), n, ignore_frac if rows > 1 else 0.0)
        check_all(x, tgt, **kw, what=f"property {np.dtype(dt)} {kind} {kw}")


# --------------------------------------------------------------------------
# cross_entropy's one-call fast path (C-contiguous logits, classes last,
# int64 labels, no weights, no out=) against the full path, which int32
# labels take: bit-identical loss and gradient
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 1), (5, 3), (64, 10), (3, 4, 7), (2, 70), (300, 2)])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("eps", [0.0, 0.3])
def test_xent_fast_path_equals_full_path(dtype, shape, reduction, eps):
    rng = np.random.default_rng(sum(shape))
    z = (3 * rng.standard_normal(shape)).astype(dtype)
    lab = rng.integers(0, shape[-1], shape[:-1])
    lab.reshape(-1)[::4] = -100                          # some ignored rows
    if (lab == -100).all():
        lab.reshape(-1)[0] = 0
    for f in (mlkern.cross_entropy, mlkern.cross_entropy_grad):
        a = f(z, lab, reduction=reduction, label_smoothing=eps)
        b = f(z, lab.astype(np.int32), reduction=reduction, label_smoothing=eps)
        assert type(a) is type(b) and np.asarray(a).dtype == dtype
        np.testing.assert_array_equal(a, b)
    loss, g = mlkern.cross_entropy_with_grad(z, lab, -1, reduction=reduction, label_smoothing=eps)
    l2, g2 = mlkern.cross_entropy_with_grad(z, lab.astype(np.int32), z.ndim - 1,
                                            reduction=reduction, label_smoothing=eps)
    assert loss == l2 and np.array_equal(g, g2) and g.dtype == dtype


def test_xent_fast_path_falls_back_for_errors_and_edge_cases():
    z = np.zeros((3, 4))
    with pytest.raises(ValueError, match="outside"):
        mlkern.cross_entropy(z, np.array([0, 4, 1]))
    with pytest.raises(ValueError, match="outside"):
        mlkern.cross_entropy(z, np.array([0, -1, 1]))
    # every row ignored: NaN mean (0/0, as PyTorch), zero gradient
    loss, g = mlkern.cross_entropy_with_grad(z, np.full(3, -100))
    assert np.isnan(loss) and not g.any()
    # read-only and F-ordered logits give the same result as C logits
    r = np.random.default_rng(1).standard_normal((6, 5))
    lab = np.arange(6) % 5
    ro = r.copy()
    ro.flags.writeable = False
    want = mlkern.cross_entropy_with_grad(r, lab)
    for zz in (ro, np.asfortranarray(r)):
        got = mlkern.cross_entropy_with_grad(zz, lab)
        assert got[0] == want[0] and np.array_equal(got[1], want[1])


# --------------------------------------------------------------------------
# cross-entropy over short rows (n < 64 classes) runs a kernel vectorised
# across blocks of rows; a single row runs the row kernel.  Both must agree,
# rows with +-inf/NaN logits, ignored rows and several blocks included.
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 2, 7, 16, 63, 64])
@pytest.mark.parametrize("variant", ["plain", "smoothing", "weights", "in-place"])
def test_xent_short_rows_match_row_kernel(dtype, n, variant):
    rng = np.random.default_rng(n)
    rows = 700                                        # > 256: several blocks
    z = (4 * rng.standard_normal((rows, n))).astype(dtype)
    lab = rng.integers(0, n, rows)
    lab[5::37] = -100                                 # ignored
    z[7, 0] = np.inf
    z[8, :] = -np.inf
    z[9, -1] = np.nan
    z[10, :] = 3.0                                    # all maximal
    z[11, 0] = 1e30 if dtype == np.float32 else 1e300
    kw = {"reduction": "none"}
    if variant == "smoothing":
        kw["label_smoothing"] = 0.2
    if variant == "weights":
        kw.update(weight=rng.uniform(0.5, 2, n), sample_weight=rng.uniform(0, 2, rows),
                  label_smoothing=0.1)
    if variant == "in-place":
        zz = z.copy()
        loss, g = mlkern.cross_entropy_with_grad(zz, lab, out=zz)
        assert g is zz
        kw = {"reduction": "mean"}
    else:
        loss, g = mlkern.cross_entropy_with_grad(z, lab, **kw)
    for i in range(rows):
        kwi = dict(kw)
        if "sample_weight" in kwi:
            kwi["sample_weight"] = kw["sample_weight"][i:i + 1]
        if variant == "in-place":
            # the mean's 1/count scale: compare the per-row gradient of the sum
            cnt = np.count_nonzero(lab != -100)
            _, gi = mlkern.cross_entropy_with_grad(z[i:i + 1], lab[i:i + 1], reduction="sum")
            gi = (gi / cnt).astype(dtype)
            tol = 8
            scale = 1.0 / cnt          # p_y - 1 cancels: error ~ eps * coefficient
        else:
            li, gi = mlkern.cross_entropy_with_grad(z[i:i + 1], lab[i:i + 1], **kwi)
            np.testing.assert_allclose(loss[i], li[0], rtol=6 * np.finfo(dtype).eps,
                                       atol=6 * np.finfo(dtype).tiny, err_msg=f"row {i}")
            # both kernels are within ~9 eps of an mpmath softmax at the
            # baseline level (no FMA): they may differ by twice that
            tol = 24
            # p_y - 1 cancels: the error is ~ eps times the row's coefficient
            coef = (kw["sample_weight"][i] * kw["weight"].max()) if "weight" in kw else 1.0
            scale = max(np.abs(gi[0]).max(initial=0), coef)
        np.testing.assert_allclose(g[i], gi[0], rtol=tol * np.finfo(dtype).eps,
                                   atol=4 * np.finfo(dtype).eps * scale
                                   if np.isfinite(gi[0]).all() else 0,
                                   err_msg=f"row {i}")
