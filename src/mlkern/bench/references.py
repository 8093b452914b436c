"""Float64 references of mlkern's functions: plain NumPy (SciPy when it is
importable), shared by the benchmark harness (its value check) and the test
suite (``tests/reference.py`` imports them from here).

Independent of mlkern: nothing here calls an mlkern kernel, so a reference
can never agree with a kernel by sharing its code.  Accurate to a few
float64 ULP (far below the float32 budgets and within float64's
``rtol ~ 1e-14``), except where a docstring says otherwise.

Conventions follow the contract: NaN in gives NaN out, +-inf follow the
mathematical limit (silu(-inf) = -0.0, tanh_grad(+-inf) = 0).  Row-wise
functions reduce along ``axis`` (default the last).
"""
import math

import numpy as np

try:  # optional: the NumPy fallbacks below give the same values, slower or in fewer cases
    import scipy.special as _sc
except ImportError:  # pragma: no cover - depends on the environment
    _sc = None

SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)     # the float64 constant of gelu(tanh)
GELU_K1 = 0.044715
INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
INV_SQRT_2 = 1.0 / math.sqrt(2.0)


def nan_keep(x, r):
    """r with NaN wherever x is NaN (the contract's 'NaN in, NaN out')."""
    r = np.array(r, dtype=np.float64, copy=True)
    x = np.asarray(x, dtype=np.float64)
    if r.ndim == 0:
        return np.float64(np.nan) if np.isnan(x) else r[()]
    r[np.isnan(x)] = np.nan
    return r


def errstate():
    """np.errstate(all="ignore"): references compute through inf and NaN."""
    return np.errstate(all="ignore")


def _along(f, x, axis):
    """f applied along the last axis of x moved from ``axis`` (and back)."""
    if axis in (-1, np.ndim(x) - 1):
        return f(x)
    return np.moveaxis(f(np.moveaxis(x, axis, -1)), -1, axis)


# ---------------------------------------------------------------- elementwise
def expit(x):
    """Logistic sigmoid keeping the subnormal left tail (scipy's expit flushes
    it: expit(-720) is 0 there, while the true value 2e-313 is representable)."""
    x = np.asarray(x, np.float64)
    with errstate():
        e = np.exp(-np.abs(x))
        return nan_keep(x, np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)))


def sigmoid(x):
    return expit(x)


def sigmoid_grad_from_y(y):
    y = np.asarray(y, np.float64)
    return y * (1.0 - y)


def tanh(x):
    return np.tanh(np.asarray(x, np.float64))


def tanh_grad_from_y(y):
    y = np.asarray(y, np.float64)
    return 1.0 - y * y


def relu(x):
    x = np.asarray(x, np.float64)
    return nan_keep(x, np.where(x > 0, x, 0.0))


def relu_grad(x):
    x = np.asarray(x, np.float64)
    return nan_keep(x, np.where(x > 0, 1.0, 0.0))


def elu(x, alpha=1.0):
    x = np.asarray(x, np.float64)
    with errstate():
        return np.where(x > 0, x, alpha * np.expm1(x))


def elu_grad_from_y(y, alpha=1.0):
    y = np.asarray(y, np.float64)
    return nan_keep(y, np.where(y > 0, 1.0, y + alpha))


def softplus(x, beta=1.0, threshold=None):
    x = np.asarray(x, np.float64)
    with errstate():
        z = beta * x
        r = (np.maximum(z, 0.0) + np.log1p(np.exp(-np.abs(z)))) / beta
        if threshold is not None:
            r = np.where(z > threshold, x, r)
    return r


def softplus_grad(x, beta=1.0, threshold=None):
    x = np.asarray(x, np.float64)
    with errstate():
        z = beta * x
        r = expit(z)
        if threshold is not None:
            r = np.where(z > threshold, 1.0, r)
    return nan_keep(x, r)


def silu(x, beta=1.0):
    x = np.asarray(x, np.float64)
    with errstate():
        z = beta * x
        e = np.exp(-np.abs(z))
        r = np.where(z >= 0, x / (1.0 + e), x * e / (1.0 + e))
        r = np.where(np.isinf(z) & (z < 0), np.copysign(0.0, x), r)
    return nan_keep(x, r)


def silu_grad(x, beta=1.0):
    x = np.asarray(x, np.float64)
    with errstate():
        z = beta * x
        s, sn = expit(z), expit(-z)
        t = np.where(sn == 0, 0.0, z * s * sn)
        r = np.where(s == 0, 0.0, s + t)
    return nan_keep(x, r)


def log_sigmoid(x):
    x = np.asarray(x, np.float64)
    if _sc is not None:
        return _sc.log_expit(x)
    with errstate():                               # pragma: no cover - without SciPy
        return -np.logaddexp(0.0, -x)


def log_sigmoid_grad(x):
    return expit(-np.asarray(x, np.float64))


def npdf(x):
    x = np.asarray(x, np.float64)
    with errstate():
        return np.exp(-0.5 * x * x) * INV_SQRT_2PI


def ndtr(x):
    """The standard normal CDF (SciPy's ndtr; math.erfc per element without
    SciPy).  SciPy rounds -x/sqrt(2) first: ~x^2 ULP in the left tail, which
    the test suite corrects with mpmath."""
    x = np.asarray(x, np.float64)
    if _sc is not None:
        return _sc.ndtr(x)
    erfc = np.frompyfunc(lambda v: 0.5 * math.erfc(-v * INV_SQRT_2), 1, 1)  # pragma: no cover
    return erfc(x).astype(np.float64)                                         # pragma: no cover


def gelu(x):
    x = np.asarray(x, np.float64)
    with errstate():
        p = ndtr(x)
        r = np.where(p == 0, np.copysign(0.0, x), x * p)
    return nan_keep(x, r)


def gelu_grad(x):
    x = np.asarray(x, np.float64)
    with errstate():
        d = npdf(x)
        r = ndtr(x) + np.where(d == 0, 0.0, x * d)
    return nan_keep(x, r)


def gelu_tanh_u2(x):
    """2 u of gelu(tanh): 0.5 x (1 + tanh u) = x expit(2 u)."""
    return 2.0 * SQRT_2_OVER_PI * (x + GELU_K1 * x ** 3)


def gelu_tanh(x):
    x = np.asarray(x, np.float64)
    with errstate():
        u2 = gelu_tanh_u2(x)
        r = x * expit(u2)      # = 0.5 x (1 + tanh(u))
        r = np.where(expit(u2) == 0, np.copysign(0.0, x), r)
    return nan_keep(x, r)


def gelu_tanh_grad(x):
    x = np.asarray(x, np.float64)
    with errstate():
        u2 = gelu_tanh_u2(x)
        du2 = 2.0 * SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_K1 * x * x)
        s, sn = expit(u2), expit(-u2)
        t = x * du2 * s * sn
        t = np.where((s == 0) | (sn == 0), 0.0, t)
        r = s + t
    return nan_keep(x, r)


# ---------------------------------------------------------------- row-wise functions
# Finite rows use the careful form
#   m = max, d = x - m, T = sum_{j != k} e^{d_j} (k the first argmax),
#   L = log1p(T), softmax = e^d / (1 + T), log_softmax = d - L, logsumexp = m + L,
# which is accurate to a few float64 ULP apart from the rounding of d (the
# log(sum) form loses the relative accuracy of L when T is tiny, e.g. the max
# element of log_softmax([0, -40])).  Rows with a NaN or an infinity take SciPy's
# values (the contract's semantics for non-finite input are SciPy's); a -inf
# beside a finite max is e^-inf = 0 in the careful form.

def _rows_f64(x):
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 0:
        raise ValueError("row-wise reference: 0-d input")
    return x


def rowwise_parts(x):
    """(m, d, e, T, L) of the careful form along the last axis, float64, for
    rows of finite values (non-empty); keepdims shapes for m, T, L."""
    x = _rows_f64(x)
    with errstate():
        k = np.argmax(x, axis=-1)[..., None]
        m = np.take_along_axis(x, k, axis=-1)
        d = x - m
        e = np.exp(d)
        eo = e.copy()
        np.put_along_axis(eo, k, 0.0, axis=-1)
        T = eo.sum(axis=-1, keepdims=True)
        L = np.log1p(T)
    return m, d, e, T, L


def _nonfinite_rows(x):
    """Rows the careful form does not cover: a NaN, a +inf, or all -inf (a -inf
    next to a finite max is just e^-inf = 0)."""
    return np.isnan(x).any(axis=-1) | (x == np.inf).any(axis=-1) | (x == -np.inf).all(axis=-1)


def _plain_lse(x):
    """SciPy's logsumexp along the last axis (keepdims), or the max-shifted
    NumPy form without SciPy."""
    if _sc is not None:
        return _sc.logsumexp(x, axis=-1, keepdims=True)
    m = np.max(x, axis=-1, keepdims=True)                           # pragma: no cover
    m = np.where(np.isfinite(m), m, 0.0)                            # pragma: no cover
    return m + np.log(np.sum(np.exp(x - m), axis=-1, keepdims=True))  # pragma: no cover


def _plain_softmax(x):
    """SciPy's softmax along the last axis (NaN rows for non-finite input as
    SciPy gives them), or exp(x - logsumexp) without SciPy."""
    if _sc is not None:
        return _sc.softmax(x, axis=-1)
    return np.exp(x - _plain_lse(x))                                # pragma: no cover


def _plain_log_softmax(x):
    if _sc is not None:
        return _sc.log_softmax(x, axis=-1)
    return x - _plain_lse(x)                                        # pragma: no cover


def _careful(x, finite, plain):
    """A softmax-family reference along the last axis: ``finite(m, d, e, T,
    L)`` on the careful form's parts, ``plain`` (SciPy's) on the rows it does
    not cover."""
    x = _rows_f64(x)
    if x.shape[-1] == 0 or x.size == 0:
        return np.empty(x.shape)
    parts = rowwise_parts(x)
    with errstate():
        r = finite(*parts)
        bad = _nonfinite_rows(x)
        if bad.any():
            r[bad] = plain(x[bad])
    return r


def _softmax_last(x):
    return _careful(x, lambda m, d, e, T, L: e / (1.0 + T), _plain_softmax)


def _log_softmax_last(x):
    return _careful(x, lambda m, d, e, T, L: d - L, _plain_log_softmax)


def _logsumexp_last(x):
    x = _rows_f64(x)
    if x.shape[-1] == 0:
        return np.full(x.shape[:-1] + (1,), -np.inf)
    if x.size == 0:
        return np.empty(x.shape[:-1] + (1,))
    m, d, e, T, L = rowwise_parts(x)
    with errstate():
        r = m + L
        bad = _nonfinite_rows(x)
        if bad.any():
            r[bad] = _plain_lse(x[bad])
    return r


def softmax_ref(x, axis=-1):
    return _along(_softmax_last, np.asarray(x, np.float64), axis)


def log_softmax_ref(x, axis=-1):
    return _along(_log_softmax_last, np.asarray(x, np.float64), axis)


def logsumexp_ref(x, keepdims=False, axis=-1):
    r = _along(_logsumexp_last, np.asarray(x, np.float64), axis)
    return r if keepdims else np.squeeze(r, axis=axis)


def argmax_ref(x, axis=-1):
    return np.argmax(x, axis=axis)


def softmax_backward_ref(g, y, axis=-1):
    """y * (g - sum(g * y)) along ``axis``, float64."""
    g = np.asarray(g, np.float64)
    y = np.asarray(y, np.float64)
    with errstate():
        return y * (g - np.sum(g * y, axis=axis, keepdims=True))


def log_softmax_backward_ref(g, y, axis=-1):
    """g - exp(y) * sum(g) along ``axis``, float64."""
    g = np.asarray(g, np.float64)
    y = np.asarray(y, np.float64)
    with errstate():
        return g - np.exp(y) * np.sum(g, axis=axis, keepdims=True)


# ---------------------------------------------------------------- losses
# Cross-entropy in the "target distribution" form: every sample's loss is
# -sum_j u_j log_softmax(z)_j with the weighted, smoothed target
#   labels:        u = (1 - eps) w_y onehot(y) + (eps / n) w   (0 for ignored samples)
#   probabilities: u = w ((1 - eps) t + eps / n)
# (PyTorch's definitions), whose gradient is (sum_j u_j) softmax(z) - u.
# The reduction scales sample i by coef_i: its sample weight s_i, divided for
# "mean" by sum_i s_i w_{y_i} over the non-ignored samples (labels) or by
# sum_i s_i (probabilities).  "none" is s_i l_i, and the gradient of "none" is
# that of the sum.

def cross_entropy_terms(logits, target, axis=-1, reduction="mean", weight=None,
                        ignore_index=-100, label_smoothing=0.0, sample_weight=None):
    """(z, u, coef, valid): the float64 logits with the class axis last, the
    target distribution u (z's shape), the per-sample scale coef and the mask
    of the samples that count (all of them for probability targets)."""
    z = np.moveaxis(np.asarray(logits).astype(np.float64), axis, -1)
    n = z.shape[-1]
    t = np.asarray(target)
    w = np.ones(n) if weight is None else np.asarray(weight, np.float64)
    eps = float(label_smoothing)
    if t.dtype.kind == "f" and t.shape == np.shape(logits):
        q = (1.0 - eps) * np.moveaxis(t.astype(np.float64), axis, -1) + eps / n
        u = w * q
        valid = np.ones(z.shape[:-1], bool)
        wden = np.ones(z.shape[:-1])
    else:
        lab = t.astype(np.int64)
        valid = lab != ignore_index
        safe = np.where(valid, lab, 0)
        onehot = (np.arange(n) == safe[..., None]).astype(np.float64)
        wy = w[safe]
        u = (1.0 - eps) * wy[..., None] * onehot + (eps / n) * w
        u = np.where(valid[..., None], u, 0.0)
        wden = np.where(valid, wy, 0.0)
    s = np.ones(z.shape[:-1]) if sample_weight is None else np.asarray(sample_weight, np.float64)
    coef = np.where(valid, s, 0.0)
    if reduction == "mean":
        with errstate():
            coef = coef / np.sum(coef * wden)
    return z, u, coef, valid


def cross_entropy_ref(logits, target, axis=-1, reduction="mean", weight=None, ignore_index=-100,
                      label_smoothing=0.0, sample_weight=None):
    """float64 (loss, grad) of the cross-entropy: loss a float (mean/sum) or
    the target-shaped array of s_i l_i (none); grad of the logits' shape
    (for "none" the gradient of the sum).  A sample that does not count has
    loss 0 and gradient 0 (an all-ignored "mean" is 0/0 = NaN, its gradient 0,
    as PyTorch)."""
    z, u, coef, valid = cross_entropy_terms(logits, target, axis, reduction, weight, ignore_index,
                                            label_smoothing, sample_weight)
    if z.size == 0:
        per = np.zeros(z.shape[:-1])
        g = np.zeros(z.shape)
    else:
        logp = _log_softmax_last(z)
        p = _softmax_last(z)
        with errstate():
            per = -np.sum(np.where(u == 0, 0.0, u * logp), axis=-1)
            g = np.sum(u, axis=-1, keepdims=True) * p - u
    with errstate():
        per = np.where(valid, per, 0.0)
        g = np.where(valid[..., None], coef[..., None] * g, 0.0)
        if reduction == "none":
            loss = np.where(valid, coef * per, 0.0)
        elif reduction == "sum":
            loss = float(np.sum(coef * per))
        else:   # 0/0 = NaN when nothing counts (the coefficients are NaN then)
            loss = float(np.sum(coef * per)) if valid.any() else math.nan
    return loss, np.moveaxis(g, -1, axis)


def bce_with_logits_mean_ref(z, t):
    """(loss, grad) of binary_cross_entropy_with_logits, mean reduction."""
    z = np.asarray(z, np.float64)
    t = np.asarray(t, np.float64)
    with errstate():
        loss = np.mean(np.maximum(z, 0.0) - z * t + np.log1p(np.exp(-np.abs(z))))
        return float(loss), (expit(z) - t) / z.size


def mse_mean_ref(p, t):
    """(loss, grad) of the mean squared error, mean reduction."""
    d = np.asarray(p, np.float64) - np.asarray(t, np.float64)
    return float(np.mean(d * d)), d * (2.0 / d.size)


# ---------------------------------------------------------------- layers
_ACTS = {None: (lambda z: z, lambda z: np.ones_like(z)), "relu": (relu, relu_grad)}


def dense_ref(x, weight, bias=None, activation=None):
    """act(x W^T + b) in float64 (activation None or "relu")."""
    z = np.asarray(x, np.float64) @ np.asarray(weight, np.float64).T
    if bias is not None:
        z = z + np.asarray(bias, np.float64)
    return _ACTS[activation][0](z)


def dense_backward_ref(grad_output, x, weight, bias=None, activation=None):
    """(grad_x, grad_weight, grad_bias) of :func:`dense_ref` in float64
    (grad_bias None without a bias); x of shape (..., in)."""
    x = np.asarray(x, np.float64)
    w = np.asarray(weight, np.float64)
    z = x @ w.T + (0.0 if bias is None else np.asarray(bias, np.float64))
    gz = np.asarray(grad_output, np.float64) * _ACTS[activation][1](z)
    g2 = gz.reshape(-1, gz.shape[-1])
    x2 = x.reshape(-1, x.shape[-1])
    return gz @ w, g2.T @ x2, (None if bias is None else g2.sum(axis=0))


def embedding_ref(indices, weight):
    """weight[indices] in float64."""
    return np.asarray(weight, np.float64)[np.asarray(indices)]


def embedding_backward_ref(grad_output, indices, num_embeddings, padding_idx=None):
    """The dense (num_embeddings, dim) gradient of weight[indices], float64."""
    g = np.asarray(grad_output, np.float64)
    idx = np.asarray(indices).reshape(-1)
    out = np.zeros((num_embeddings, g.shape[-1]))
    np.add.at(out, idx, g.reshape(idx.size, -1))
    if padding_idx is not None:
        out[padding_idx] = 0.0
    return out


# ---------------------------------------------------------------- optimisers
def adam_ref(p0, grads, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
    """float64 (p, m, v) after ``len(grads)`` Adam steps from p0, m = v = 0
    (PyTorch's update: bias-corrected moments, eps added to sqrt(v_hat))."""
    p = np.asarray(p0, np.float64)
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    for t, g in enumerate(grads, start=1):
        g = np.asarray(g, np.float64)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        p = p - lr / (1 - beta1 ** t) * m / (np.sqrt(v) / math.sqrt(1 - beta2 ** t) + eps)
    return p, m, v
