"""Plain NumPy/SciPy (float64) and mpmath (arbitrary precision) reference
implementations shared by the test files: every mlkern activation, its
derivative and its backward; the row-wise functions; cross-entropy; the
pointwise losses, nll_loss, kl_div and the penalties (with their error
budgets); ``ulp_spacing`` and the ULP helpers.

The NumPy versions the benchmark harness also uses live in
:mod:`mlkern.bench.references` (installed with mlkern, so that ``python -m
mlkern bench`` checks its values from a wheel) and are imported from there;
that module calls no mlkern kernel, so the references stay independent of
the code under test.  The NumPy versions are used for random-input
comparisons (they are accurate to a few float64 ULP, which is far below the
float32 budgets and within the float64 ``rtol ~ 1e-14``); the mpmath
versions are the truth for the ULP and tail tests.

Conventions follow docs/contract.rst: NaN in gives NaN out, +-inf follow the
mathematical limit (silu(-inf) = -0.0, gelu_grad(+inf) = 1, tanh_grad(+-inf)
= 0).
"""
import math

import mpmath
import numpy as np
import scipy.special as sc
from mlkern.bench import references as _shared
# the float64 references shared with the benchmark harness (one definition each)
from mlkern.bench.references import (  # noqa: F401
    GELU_K1, INV_SQRT_2PI, SQRT_2_OVER_PI, cross_entropy_ref, cross_entropy_terms, elu,
    elu_grad_from_y, expit, log_sigmoid, log_sigmoid_grad, log_softmax_backward_ref,
    log_softmax_ref, logsumexp_ref, npdf, relu, relu_grad, rowwise_parts, sigmoid,
    sigmoid_grad_from_y, silu, silu_grad, softmax_backward_ref, softmax_ref, softplus,
    softplus_grad, tanh, tanh_grad_from_y)
from mlkern.bench.references import gelu_tanh_u2 as _u2  # noqa: F401
from mlkern.bench.references import gelu_tanh, gelu_tanh_grad  # noqa: F401
from mlkern.bench.references import errstate as _errstate
from mlkern.bench.references import nan_keep as _nan_keep


# ---------------------------------------------------------------- NumPy (float64)
def sigmoid_grad(x):
    x = np.asarray(x, np.float64)
    with _errstate():
        e = np.exp(-np.abs(x))
        return _nan_keep(x, e / (1.0 + e) / (1.0 + e))


def tanh_grad(x):
    x = np.asarray(x, np.float64)
    with _errstate():
        # sech x = 2 e^-|x| / (1 + e^-2|x|): no overflow of cosh, subnormal tail kept
        e = np.exp(-np.abs(x))
        sech = 2.0 * e / (1.0 + e * e)
        return _nan_keep(x, sech * sech)


def leaky_relu(x, negative_slope=0.01):
    x = np.asarray(x, np.float64)
    with _errstate():
        return np.where(x > 0, x, negative_slope * x)


def leaky_relu_grad(x, negative_slope=0.01):
    x = np.asarray(x, np.float64)
    return _nan_keep(x, np.where(x > 0, 1.0, negative_slope))


def _alpha_b(x, alpha):
    """alpha broadcast against x along axis 1 (prelu's channel axis)."""
    a = np.asarray(alpha, np.float64).reshape(-1)
    if x.ndim < 2 or a.size == 1:
        return a.reshape(()) if a.size == 1 else a
    return a.reshape((1, -1) + (1,) * (x.ndim - 2))


def prelu(x, alpha):
    x = np.asarray(x, np.float64)
    a = _alpha_b(x, alpha)
    with _errstate():
        return np.where(x > 0, x, a * x)


def prelu_grad(x, alpha):
    x = np.asarray(x, np.float64)
    a = _alpha_b(x, alpha)
    return _nan_keep(x, np.broadcast_to(np.where(x > 0, 1.0, a), x.shape))


def prelu_grad_alpha(g, x, alpha):
    """d/dalpha sum(g * prelu(x, alpha)), reduced to alpha's shape."""
    x = np.asarray(x, np.float64)
    g = np.asarray(g, np.float64)
    a = np.asarray(alpha)
    contrib = np.where(x > 0, 0.0, g * x)
    if a.ndim == 0:
        return contrib.sum()
    if x.ndim < 2:
        return np.array([contrib.sum()])
    axes = (0,) + tuple(range(2, x.ndim))
    s = contrib.sum(axis=axes)
    if a.size == 1:
        return np.array([s.sum()])
    return s


def elu_grad(x, alpha=1.0):
    x = np.asarray(x, np.float64)
    with _errstate():
        return _nan_keep(x, np.where(x > 0, 1.0, alpha * np.exp(x)))


def silu_grad_mag(x, beta=1.0):
    """Size of the summands of silu' (for an absolute tolerance near its root)."""
    x = np.asarray(x, np.float64)
    with _errstate():
        z = beta * x
        s, sn = expit(z), expit(-z)
        return np.nan_to_num(np.abs(s) + np.abs(z * s * sn))


def _mp_left_tail(x, r, f, lo=-2.0):
    """Replace r where lo > x > -40 by the mpmath value f(x): scipy's ndtr
    rounds -x/sqrt(2) first, which costs ~x^2 ULP in the left tail."""
    m = (x < lo) & (x > -40.0)
    if m.any():
        r = np.array(r, dtype=np.float64, copy=True)
        r[m] = [float(f(mpmath.mpf(float(v)))) for v in x[m]]
    return r


def gelu(x):
    """The shared x ndtr(x), with mpmath in the left tail."""
    x = np.asarray(x, np.float64)
    r = _mp_left_tail(x, _shared.gelu(x), lambda v: v * mpmath.ncdf(v))
    return _nan_keep(x, r)


def gelu_grad(x):
    """The shared ndtr(x) + x npdf(x), with mpmath in the left tail."""
    x = np.asarray(x, np.float64)
    r = _mp_left_tail(x, _shared.gelu_grad(x), lambda v: mpmath.ncdf(v) + v * mpmath.npdf(v))
    return _nan_keep(x, r)


def gelu_grad_mag(x):
    x = np.asarray(x, np.float64)
    with _errstate():
        d = npdf(x)
        return np.nan_to_num(sc.ndtr(x) + np.where(d == 0, 0.0, np.abs(x * d)))


def gelu_tanh_grad_mag(x):
    x = np.asarray(x, np.float64)
    with _errstate():
        u2 = _u2(x)
        du2 = 2.0 * SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_K1 * x * x)
        s, sn = expit(u2), expit(-u2)
        t = np.where((s == 0) | (sn == 0), 0.0, np.abs(x * du2 * s * sn))
        return np.nan_to_num(s + t)


def gelu_tanh_cond(x):
    """Error amplification of gelu(tanh) from rounding its argument u in the
    working precision: |u| (the tail is ~ x e^{2u})."""
    x = np.asarray(x, np.float64)
    with _errstate():
        return np.nan_to_num(np.abs(_u2(x)) * (1 + 3 * GELU_K1 * x * x) / (1 + GELU_K1 * x * x),
                             posinf=1e300)


def relu_grad_from_y(y):
    """noisy_relu_backward's derivative from the output: 1 where y > 0."""
    return relu_grad(y)


# ---------------------------------------------------------------- mpmath (exact)
mp = mpmath.mp


def _mpf(v):
    return mpmath.mpf(float(v))


def mp_sigmoid(x):
    return 1 / (1 + mpmath.exp(-x))


def mp_sigmoid_grad(x):
    e = mpmath.exp(-abs(x))
    return e / (1 + e) ** 2


def mp_tanh_grad(x):
    return mpmath.sech(x) ** 2


def mp_softplus(x, beta=1.0, threshold=None):
    z = beta * x
    if threshold is not None and z > threshold:
        return x
    # log(1 + e^z) = max(z, 0) + log1p(e^-|z|)
    return (max(z, 0) + mpmath.log1p(mpmath.exp(-abs(z)))) / beta


def mp_softplus_grad(x, beta=1.0, threshold=None):
    z = beta * x
    if threshold is not None and z > threshold:
        return mpmath.mpf(1)
    return mp_sigmoid(z)


def mp_silu(x, beta=1.0):
    return x * mp_sigmoid(beta * x)


def mp_silu_grad(x, beta=1.0):
    z = beta * x
    s = mp_sigmoid(z)
    return s + z * s * mp_sigmoid(-z)


def mp_log_sigmoid(x):
    return -(max(-x, 0) + mpmath.log1p(mpmath.exp(-abs(x))))


def mp_log_sigmoid_grad(x):
    return mp_sigmoid(-x)


def mp_ncdf(x):
    # mpmath's erfc overflows for |x| ~ 1e308; far out the value is 0 or 1
    # to any float precision (Phi(-1e4) ~ e^-5e7)
    if x < -1e4:
        return mpmath.mpf(0)
    if x > 1e4:
        return mpmath.mpf(1)
    return mpmath.ncdf(x)


def mp_npdf(x):
    if abs(x) > 1e4:
        return mpmath.mpf(0)
    return mpmath.npdf(x)


def mp_gelu(x):
    return x * mp_ncdf(x)


def mp_gelu_grad(x):
    return mp_ncdf(x) + x * mp_npdf(x)


def mp_elu(x, alpha=1.0):
    return x if x > 0 else alpha * mpmath.expm1(x)


def mp_elu_grad(x, alpha=1.0):
    return mpmath.mpf(1) if x > 0 else alpha * mpmath.exp(x)


def mp_relu(x):
    return x if x > 0 else mpmath.mpf(0)


# math-layer functions of mlkern._math.evaluate
MP_MATH = {
    "exp": mpmath.exp,
    "expm1": mpmath.expm1,
    "log": mpmath.log,
    "log1p": mpmath.log1p,
    "tanh": mpmath.tanh,
    "erf": mpmath.erf,
    "erfc": mpmath.erfc,
    "ndtr": mp_ncdf,
    "npdf": mp_npdf,
}


# ---------------------------------------------------------------- ULP helpers
_FINFO = {np.dtype(np.float32): np.finfo(np.float32), np.dtype(np.float64): np.finfo(np.float64)}
_TINY_SUB = {np.dtype(np.float32): 2.0 ** -149, np.dtype(np.float64): 2.0 ** -1074}
_EMIN = {np.dtype(np.float32): -126, np.dtype(np.float64): -1022}
_MANT = {np.dtype(np.float32): 23, np.dtype(np.float64): 52}


def ulp_of(ref, dtype):
    """Spacing of `dtype` at |ref| (an exact number: mpf or float): 2^(e - p)
    for |ref| in [2^e, 2^(e+1)), the subnormal spacing below the normal range."""
    dtype = np.dtype(dtype)
    r = abs(mpmath.mpf(ref))
    if r == 0:
        return mpmath.mpf(_TINY_SUB[dtype])
    e = int(mpmath.floor(mpmath.log(r, 2)))
    # guard against log2 rounding at exact powers of two
    if mpmath.mpf(2) ** e > r:
        e -= 1
    elif mpmath.mpf(2) ** (e + 1) <= r:
        e += 1
    e = max(e, _EMIN[dtype])
    return mpmath.mpf(2) ** (e - _MANT[dtype])


def overflows(ref, dtype):
    """|ref| rounds to infinity in dtype."""
    fi = _FINFO[np.dtype(dtype)]
    # halfway point between max and the next (virtual) binade value
    lim = mpmath.mpf(float(fi.max)) + ulp_of(float(fi.max), dtype) / 2
    return abs(mpmath.mpf(ref)) >= lim


def ulp_error(y, ref, dtype):
    """|y - ref| in ULPs of dtype at the reference (mpf or float).  Inf/NaN
    handled: 0 if both are the same non-finite, inf otherwise."""
    y = float(y)
    if math.isnan(y):
        return math.inf
    if isinstance(ref, float) and not math.isfinite(ref):
        return 0.0 if y == ref else math.inf
    if overflows(ref, dtype):
        return 0.0 if (math.isinf(y) and (y > 0) == (ref > 0)) else math.inf
    if math.isinf(y):
        return math.inf
    return float(abs(mpmath.mpf(y) - mpmath.mpf(ref)) / ulp_of(ref, dtype))


def ulp_error_array(y, ref64, dtype):
    """Vectorised ULP error of y (dtype) against a float64 reference array
    (only for dtype float32, where float64 is an exact-enough truth)."""
    dtype = np.dtype(dtype)
    y = np.asarray(y, np.float64)
    ref64 = np.asarray(ref64, np.float64)
    with _errstate():
        r = ref64.astype(dtype)
        sp = np.spacing(np.abs(r).astype(dtype)).astype(np.float64)
        # spacing of dtype at the reference; np.spacing at the binade top is
        # the next binade's, use the spacing below |r| for a power of two above ref
        err = np.abs(y - ref64) / sp
        same = (y == ref64) | (np.isnan(y) & np.isnan(ref64))
        err = np.where(same, 0.0, err)
        err = np.where(np.isnan(err), np.inf, err)
    return err


# ---------------------------------------------------------------- row-wise functions
# softmax_ref, log_softmax_ref, logsumexp_ref, softmax_backward_ref,
# log_softmax_backward_ref and rowwise_parts (the careful form, along the last
# axis) are mlkern.bench.references', imported above.

def softmax_jacobian_ref(p):
    """J[..., i, j] = p_i (delta_ij - p_j) for p along the last axis, float64."""
    p = np.asarray(p, np.float64)
    n = p.shape[-1]
    return p[..., :, None] * (np.eye(n) - p[..., None, :])


def mp_row(row):
    """mpmath truth for one finite row (exact float inputs): a dict with the
    mpf values 'lse', 'log_softmax' and 'softmax' (lists), computed with
    log1p so that tiny L = lse - max keeps its relative accuracy (50 digits)."""
    with mpmath.workdps(50):
        xs = [mpmath.mpf(float(v)) for v in row]
        k = max(range(len(xs)), key=lambda i: (xs[i], -i))
        m = xs[k]
        T = mpmath.fsum(mpmath.exp(v - m) for i, v in enumerate(xs) if i != k)
        L = mpmath.log1p(T)
        lse = m + L
        return {"lse": lse,
                "log_softmax": [(v - m) - L for v in xs],
                "softmax": [mpmath.exp((v - m) - L) for v in xs]}


def mp_hi_lo(values):
    """mpf values -> (hi, lo) float64 arrays with hi + lo = value to ~2^-106."""
    with mpmath.workdps(50):
        hi = np.array([float(v) for v in values], dtype=np.float64)
        lo = np.array([float(v - mpmath.mpf(h)) if math.isfinite(h) else 0.0
                       for v, h in zip(values, hi)], dtype=np.float64)
    return hi, lo


# ---------------------------------------------------------------- losses beyond cross-entropy
# Float64 NumPy transcriptions of the contract's formulas for the pointwise
# losses, nll_loss, kl_div and the penalties, each with the error budget of
# an implementation in the dtype mlkern computes in (tests/loss_checks.py's
# docstring explains the budget).
F16, F32, F64 = np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)
EPS = {F16: 2.0 ** -11, F32: 2.0 ** -24, F64: 2.0 ** -53}
TINY_SUB = {F16: 2.0 ** -24, F32: 2.0 ** -149, F64: 2.0 ** -1074}
K = 8.0


def _dtypes(x):
    """(compute dtype, result dtype) of mlkern for an input array x (the contract)."""
    dt = np.asarray(x).dtype
    if dt.kind == "f" and dt.itemsize == 2:
        return F32, F16
    if dt.kind == "f":
        d = np.dtype(dt.newbyteorder("="))
        return d, d
    return F64, F64


def _sigmoid(x):
    x = np.asarray(x, np.float64)
    with np.errstate(all="ignore"):
        e = np.exp(-np.abs(x))
        return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _softplus(x):
    x = np.asarray(x, np.float64)
    with np.errstate(all="ignore"):
        return np.maximum(x, 0.0) + np.log1p(np.exp(-np.abs(x)))


def pw_terms(name, p, t, delta=1.0, pos_weight=None, careful=True):
    """Elementwise float64 (l, dl/dp, ml, mg) of a pointwise loss before the
    reduction (see the module docstring for ml, mg).  careful=False: the
    magnitudes of a naive evaluation (torch's), which cancels in the
    logits loss for t in {0, 1} too."""
    p = np.asarray(p, np.float64)
    t = np.asarray(t, np.float64)
    with np.errstate(all="ignore"):
        d = p - t
        if name in ("mse", "rmse", "l2_loss"):
            l, g = d * d, 2.0 * d
        elif name == "quadratic_cost":
            l, g = 0.5 * d * d, d
        elif name in ("mae", "l1_loss"):
            l, g = np.abs(d), np.sign(d)
        elif name == "huber":
            ad = np.abs(d)
            l = np.where(ad <= delta, 0.5 * d * d, delta * (ad - 0.5 * delta))
            g = np.clip(d, -delta, delta)
        elif name == "binary_cross_entropy":
            lp = np.maximum(np.log(p), -100.0)
            lq = np.maximum(np.log1p(-p), -100.0)
            l = -(t * lp + (1.0 - t) * lq)
            den = np.maximum(p * (1.0 - p), 1e-12)
            g = (p - t) / den
            ml = np.abs(t) * (1.0 + np.abs(lp)) + np.abs(1.0 - t) * (1.0 + np.abs(lq)) + np.abs(l)
            mg = np.abs(g) + (np.abs(p) + np.abs(t)) / den
            return l, g, ml, mg
        elif name == "binary_cross_entropy_with_logits":
            z = p
            exact = ((t == 0.0) | (t == 1.0)) & careful
            if pos_weight is None:
                l = np.maximum(z, 0.0) - z * t + np.log1p(np.exp(-np.abs(z)))
                # sigma(z) - t without cancellation for t in {0, 1}
                g = np.where(z >= 0, (1.0 - t) - _sigmoid(-z), _sigmoid(z) - t)
                # max(z, 0) - z t cancels for soft t; for t in {0, 1} nothing
                # cancels (the contract's accuracy), the error is relative
                ml = np.where(exact, np.abs(l), (1.0 + np.abs(t)) * np.abs(z) + np.abs(l))
                mg = np.where(exact, np.abs(g), 1.0 + np.abs(t) + np.abs(g))
            else:
                pw = np.asarray(pos_weight, np.float64)
                c = 1.0 + (pw - 1.0) * t
                spm = _softplus(-z)
                l = (1.0 - t) * z + c * spm
                g = (1.0 - t) - c * _sigmoid(-z)
                cm = 1.0 + 2.0 * np.abs(pw * t) + np.abs(t)
                # the contract's formula: (1 - t) z + c softplus(-z) cancels for
                # z < 0 unless t = 1; its derivative (1 - t) - c sigma(-z) too
                ml = (1.0 + np.abs(t)) * np.abs(z) + cm * spm + np.abs(l)
                mg = np.where((t == 1.0) & careful, np.abs(g), 1.0 + np.abs(t) + cm * _sigmoid(-z) + np.abs(g))
            return l, g, ml, mg
        else:
            raise KeyError(name)
    return l, g, np.abs(l), np.abs(g)


def _bcast_w(sw, shape):
    """sample_weight (1-D, leading axis) broadcast to shape; ones for None."""
    if sw is None:
        return np.ones(shape)
    w = np.asarray(sw, np.float64)
    return np.broadcast_to(w.reshape(w.shape + (1,) * (len(shape) - 1)), shape)


def ulp_spacing(ref, dt):
    """Spacing of dt at |ref| (float64 array), subnormal spacing near 0."""
    with np.errstate(all="ignore"):
        r = np.abs(np.asarray(ref, np.float64)).astype(dt)
        return np.spacing(r).astype(np.float64)


def pw_expected(name, pred, target, reduction="mean", sample_weight=None, k=K, careful=True, **params):
    """(loss, grad, loss_tol, grad_tol) float64 for mlkern's pointwise loss
    `name` on (pred, target) -- both converted to mlkern's compute dtype first,
    as the contract converts target to pred's dtype."""
    pred = np.asarray(pred)
    cdt, rdt = _dtypes(pred)
    p = pred.astype(cdt).astype(np.float64)
    t = np.asarray(target).astype(cdt).astype(np.float64)
    pw = params.get("pos_weight")
    if pw is not None:
        pw = np.asarray(pw).astype(cdt).astype(np.float64)
    l, g, ml, mg = pw_terms(name, p, t, delta=float(params.get("delta", 1.0)), pos_weight=pw,
                          careful=careful)
    l, g, ml, mg = (np.broadcast_to(a, p.shape) for a in (l, g, ml, mg))
    W = _bcast_w(sample_weight, p.shape)
    eps = EPS[cdt]
    tiny = 4 * TINY_SUB[cdt] + 4 * TINY_SUB[rdt]
    N = p.size
    cap = k + min(N, 64)
    with np.errstate(all="ignore"):
        if reduction == "none":
            return W * l, W * g, k * eps * W * ml + tiny, k * eps * W * mg + tiny
        S = np.sum(W * l)
        Sm = np.sum(W * ml)
        if reduction == "sum":
            return S, W * g, cap * eps * Sm + (N + 4) * tiny, k * eps * W * mg + tiny
        D = np.sum(W)
        if name != "rmse":
            return S / D, W * g / D, cap * eps * Sm / D + (N + 4) * tiny, cap * eps * W * mg / D + tiny
        m = S / D
        tol_m = cap * eps * Sm / D + (N + 4) * tiny
        r = math.sqrt(m) if m == m else math.nan
        tol_r = math.sqrt(m + tol_m) - r + 2 * TINY_SUB[rdt] if m == m else 0.0
        if r > 0:
            G = W * (g / 2.0) / (D * r)
            Gtol = np.abs(G) * (cap * eps + tol_r / r) + tiny
        else:
            G = np.where(np.isnan(W * g), np.nan, 0.0) if r == 0 else np.full(p.shape, np.nan)
            Gtol = np.zeros(p.shape) + tiny
        return r, G, tol_r, Gtol


def reduce_rows(per, gper, mag, gmag, reduction, weights, rshape, k=K, eps=EPS[F64]):
    """Reduction of per-row (per-sample) values `per` (shape rshape) with
    per-row weights `weights` (already including class weights etc.) and the
    gradient contributions gper (rshape + (n,)): (loss, grad, ltol, gtol)."""
    N = per.size
    cap = k + min(N, 64)
    tiny = 8 * TINY_SUB[F64] + 8 * TINY_SUB[F32]
    with np.errstate(all="ignore"):
        if reduction == "none":
            return per, gper, k * eps * mag + tiny, k * eps * gmag + tiny
        S = np.sum(per)
        Sm = np.sum(mag)
        if reduction == "sum":
            return S, gper, cap * eps * Sm + tiny, k * eps * gmag + tiny
        D = np.sum(weights)
        return S / D, gper / D, cap * eps * Sm / abs(D) + tiny, cap * eps * gmag / abs(D) + tiny


def nll_ref(log_probs, target, axis=-1, reduction="mean", weight=None, ignore_index=-100,
            sample_weight=None, k=K):
    """(loss, grad, ltol, gtol) float64 of the contract's nll_loss."""
    lp = np.asarray(log_probs)
    cdt, _ = _dtypes(lp)
    x = np.moveaxis(lp.astype(cdt).astype(np.float64), axis, -1)
    C = x.shape[-1]
    lab = np.asarray(target).astype(np.int64)
    valid = lab != ignore_index
    safe = np.where(valid, lab, 0)
    wc = np.ones(C) if weight is None else np.asarray(weight).astype(cdt).astype(np.float64)
    wy = np.where(valid, wc[safe], 0.0)
    s = np.ones(lab.shape) if sample_weight is None else np.asarray(sample_weight, np.float64)
    coef = wy * s
    picked = np.take_along_axis(x, safe[..., None], -1)[..., 0] if x.size else np.zeros(lab.shape)
    with np.errstate(all="ignore"):
        per = np.where(valid, -coef * picked, 0.0)
    gm = np.zeros(x.shape)
    if x.size:
        np.put_along_axis(gm, safe[..., None], np.where(valid, -coef, 0.0)[..., None], -1)
    L, G, lt, gt = reduce_rows(per, gm, np.abs(per), np.abs(gm), reduction, coef, lab.shape,
                               k=k, eps=EPS[cdt])
    return L, np.moveaxis(G, -1, axis), lt, np.moveaxis(np.broadcast_to(gt, gm.shape), -1, axis)


def kl_ref(p, q, axis=-1, log_q=False, reduction="mean", sample_weight=None, k=K):
    """(loss, grad, ltol, gtol) float64 of the contract's kl_div (grad w.r.t. q
    or log q)."""
    q = np.asarray(q)
    cdt, _ = _dtypes(q)
    P = np.moveaxis(np.asarray(p).astype(cdt).astype(np.float64), axis, -1)
    Q = np.moveaxis(q.astype(cdt).astype(np.float64), axis, -1)
    with np.errstate(all="ignore"):
        lq = Q if log_q else np.log(Q)
        lp = np.log(P)
        zero = P == 0
        term = np.where(zero, 0.0, P * (lp - lq))
        mag = np.where(zero, 0.0, np.abs(P) * (np.abs(lp) + np.abs(lq) + 1.0))
        g = np.where(zero, 0.0, -P if log_q else -P / Q)
    rshape = P.shape[:-1]
    W = np.ones(rshape) if sample_weight is None else np.asarray(sample_weight, np.float64)
    row = W * term.sum(-1)
    rmag = W * mag.sum(-1)
    # the row sum's own rounding
    rmag = rmag * (1 + min(P.shape[-1], 64) / k)
    gw = W[..., None] * g
    L, G, lt, gt = reduce_rows(row, gw, rmag, np.abs(gw), reduction, W, rshape, k=k, eps=EPS[cdt])
    return L, np.moveaxis(G, -1, axis), lt, np.moveaxis(np.broadcast_to(gt, gw.shape), -1, axis)


def penalty_ref(kind, w, lam):
    w = np.asarray(w)
    cdt, _ = _dtypes(w)
    x = w.astype(cdt).astype(np.float64)
    lam = float(lam)
    eps = EPS[cdt]
    N = x.size
    with np.errstate(all="ignore"):
        if kind == "l1":
            L, G = lam * np.sum(np.abs(x)), lam * np.sign(x)
            mag = lam * np.sum(np.abs(x))
        else:
            L, G = lam * np.sum(x * x), 2.0 * lam * x
            mag = lam * np.sum(x * x)
    tiny = 4 * TINY_SUB[cdt]
    return L, G, (K + min(N, 64)) * eps * mag + (N + 4) * tiny, K * eps * np.abs(G) + tiny


def fd4_grad(fun, a, h=1e-3):
    """4th-order central differences of the scalar ``fun()`` with respect to
    every element of the array ``a`` (perturbed in place, then restored)."""
    grad = np.empty_like(a)
    for i in np.ndindex(a.shape):
        v = a[i]
        vals = []
        for d in (2, 1, -1, -2):
            a[i] = v + d * h
            vals.append(fun())
        a[i] = v
        grad[i] = (-vals[0] + 8 * vals[1] - 8 * vals[2] + vals[3]) / (12 * h)
    return grad
