"""Plain NumPy/SciPy (float64) and mpmath (arbitrary precision) reference
implementations of every mlkern activation, its derivative and its backward.

The NumPy versions the benchmark harness also uses live in
:mod:`mlkern.bench.references` (installed with mlkern, so that ``python -m
mlkern bench`` checks its values from a wheel) and are imported from there;
that module calls no mlkern kernel, so the references stay independent of
the code under test.  The NumPy versions are used for random-input
comparisons (they are accurate to a few float64 ULP, which is far below the
float32 budgets and within the float64 ``rtol ~ 1e-14``); the mpmath
versions are the truth for the ULP and tail tests.

Conventions follow SPEC.md: NaN in gives NaN out, +-inf follow the
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
