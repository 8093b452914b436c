"""Shared by the loss tests (tests/test_losses*.py): constants, the
comparisons against the float64 references of tests/reference.py, finite
differences and the data generators that several loss files use.

References (independent of mlkern's implementation).
* Float64 NumPy transcriptions of the formulas of the contract, in
  tests/reference.py (``pw_terms``, ``nll_ref``, ``kl_ref``, ``penalty_ref``),
  reduced by ``reduce_rows`` (np.average semantics for the weighted mean).
* Closed-form values spelled out in the tests; mpmath (50 digits) for the
  extreme logits of scikit-learn's HalfBinomialLoss table.
* torch.nn.functional (mse_loss, l1_loss, huber_loss, binary_cross_entropy
  (+ _with_logits, pos_weight), nll_loss, kl_div) + autograd, in the same
  dtype, when torch is installed; scipy.special.rel_entr / scipy.stats.entropy.
* 4th-order central finite differences of mlkern's own loss (float64).

Error budget.  eps is the unit roundoff of the dtype mlkern computes in
(float32 for float16 input).  Every reference returns, besides the value
l_i and the derivative g_i of each element (row, sample), magnitudes
ml_i, mg_i such that an implementation that rounds each operation of the
formula has |error| <= a few eps * ml_i (resp. mg_i); they are |l_i|, |g_i|
for the well-conditioned losses and include the cancelling terms where the
formula has them (z - z t of the logits loss, sigma(z) - t for soft
targets, the two logs of BCE, p (log p - log q) of KL).  Elementwise results
get K eps m_i (K = 8); reduced results get (K + min(N, 64)) eps sum w_i m_i
(divided by the weight sum for "mean"): the summation's rounding, whatever
order it uses, for sums of a few dozen terms, and a blocked/pairwise or
float64-accumulated sum for the 10^6-element tests.  Each comparison also
allows 2 ULP of the result dtype at the reference (the final rounding,
float16 included) and a few subnormal spacings (underflow).  Against torch
K doubles (torch's own rounding).
"""
import math
import os

import numpy as np
import pytest

import mlkern

try:
    from hypothesis import HealthCheck, settings, strategies as st
    HAVE_HYPOTHESIS = True
except ImportError:  # pragma: no cover
    HAVE_HYPOTHESIS = False

from conftest import same_array  # noqa: F401 (the loss tests import it from here)
from reference import EPS, F16, F32, F64, K, TINY_SUB, _dtypes, ulp_spacing  # noqa: F401 (the loss tests import them from here)

DTYPES = [np.float32, np.float64]
DT_IDS = ["f32", "f64"]
REDUCTIONS = ["mean", "sum", "none"]

SOFTPLUS_M37 = 8.533047625744065e-17      # mpmath: log1p(exp(-37)) = sigma(-37) to 16 digits


def fn(name):
    return getattr(mlkern, name)


def _torch():
    return pytest.importorskip("torch")


# ================================================================ comparisons
def run_loss3(name, a, b, axis, **kw):
    """(name(a, b, axis), name_grad(...)); checks name_with_grad(...) gives both
    (the loss as same_loss, the gradient bit for bit)."""
    loss = fn(name)(a, b, axis, **kw)
    grad = fn(name + "_grad")(a, b, axis, **kw)
    lw, gw = fn(name + "_with_grad")(a, b, axis, **kw)
    assert same_loss(np.asarray(lw), np.asarray(loss)) and type(lw) is type(loss), f"{name}_with_grad[0] != {name}"
    assert same_array(gw, grad), f"{name}_with_grad[1] != {name}_grad"
    return loss, grad


def _report(ok, **cols):
    ok = np.asarray(ok)
    idx = np.flatnonzero(~ok.ravel())[:6]
    lines = []
    for i in idx:
        parts = [f"{k}={np.broadcast_to(np.asarray(v), ok.shape).ravel()[i]!r}" for k, v in cols.items()]
        lines.append(", ".join(parts))
    return f"{(~ok).sum()} of {ok.size} mismatches, e.g.\n  " + "\n  ".join(lines)


def assert_close(y, ref, tol, rdt, what="", mask=None):
    """|y - ref| <= tol + 2 ULP(rdt) where ref is finite; the same NaN/inf
    elsewhere.  mask: compare only there."""
    y64 = np.asarray(y).astype(np.float64)
    ref = np.broadcast_to(np.asarray(ref, np.float64), y64.shape)
    tol = np.broadcast_to(np.asarray(tol, np.float64), y64.shape) + 2 * ulp_spacing(ref, rdt)
    with np.errstate(all="ignore"):
        err = np.abs(y64 - ref)
        ok = np.where(np.isfinite(ref), err <= tol, (y64 == ref) | (np.isnan(y64) & np.isnan(ref)))
    if mask is not None:
        ok = ok | ~np.broadcast_to(mask, ok.shape)
    assert ok.all(), f"{what}: " + _report(ok, y=y64, ref=ref, err=err, tol=tol)


def check_loss_type(loss, rdt, reduction, shape, what=""):
    if reduction == "none":
        assert isinstance(loss, (np.ndarray, np.generic)), f"{what}: {type(loss)}"
        assert np.shape(loss) == tuple(shape), f"{what}: none-shape {np.shape(loss)} != {shape}"
        assert loss.dtype == rdt, f"{what}: none dtype {loss.dtype} != {rdt}"
    else:
        assert type(loss) is rdt.type, f"{what}: loss type {type(loss).__name__}, expected {rdt.type.__name__}"


def check_grad_type(grad, rdt, shape, what=""):
    # a 0-d input may give a NumPy scalar (as the activations do)
    assert isinstance(grad, np.ndarray) or (shape == () and isinstance(grad, np.generic)), \
        f"{what}: grad is {type(grad)}"
    assert grad.shape == tuple(shape) and grad.dtype == rdt, \
        f"{what}: grad {grad.shape} {grad.dtype}, expected {tuple(shape)} {rdt}"


_UNDER_SANITIZER = bool(os.environ.get("MLKERN_UNDER_SANITIZER"))


def same_loss(a, b):
    """f(...) against f_with_grad(...)[0]: bit for bit in a release build,
    where both run the same kernel loop.  In the ASan/UBSan build
    (tools/sanitize.sh) the instrumentation can leave one specialisation of
    that loop unvectorised, which changes the order of the float64 sum in
    its last bit: there, within 1e-13."""
    if not _UNDER_SANITIZER:
        return same_array(a, b)
    a, b = np.asarray(a), np.asarray(b)
    return (a.dtype == b.dtype and a.shape == b.shape
            and np.allclose(a, b, rtol=1e-13, atol=0, equal_nan=True))


# ================================================================ finite differences
def fd_grad(F, x, h):
    """4th-order central differences (-F(x+2h) + 8F(x+h) - 8F(x-h) + F(x-2h)) / 12h
    of the scalar function F, element by element (h: scalar or x-shaped)."""
    x = np.asarray(x, np.float64)
    hs = np.broadcast_to(np.asarray(h, np.float64), x.shape)
    g = np.empty(x.shape)
    Fmax = 0.0
    for i in np.ndindex(x.shape):
        xx = x.copy()
        vals = []
        for s in (2, 1, -1, -2):
            xx[i] = x[i] + s * hs[i]
            vals.append(float(F(xx)))
        Fmax = max(Fmax, max(abs(v) for v in vals))
        g[i] = (-vals[0] + 8 * vals[1] - 8 * vals[2] + vals[3]) / (12 * hs[i])
    return g, Fmax


def assert_fd(grad, F, x, h, what, rtol=1e-7):
    """mlkern's gradient against the finite differences of its own loss F."""
    fd, Fmax = fd_grad(F, x, h)
    hs = np.broadcast_to(np.asarray(h, np.float64), np.shape(x))
    tol = rtol * np.abs(fd) + 1e-9 * np.max(np.abs(fd), initial=0.0) + 200 * EPS[F64] * Fmax / hs
    err = np.abs(np.asarray(grad, np.float64) - fd)
    ok = err <= tol
    assert ok.all(), f"{what}: " + _report(ok, grad=grad, fd=fd, err=err, tol=tol)


def _layouts(a):
    """(name, view of a's values in another layout) pairs."""
    out = [("C", np.ascontiguousarray(a)), ("F", np.asfortranarray(a))]
    big = np.zeros(tuple(2 * s for s in a.shape), a.dtype)
    big[tuple(slice(None, None, 2) for _ in a.shape)] = a
    out.append(("strided", big[tuple(slice(None, None, 2) for _ in a.shape)]))
    neg = np.ascontiguousarray(a[tuple(slice(None, None, -1) for _ in a.shape)])
    out.append(("negative", neg[tuple(slice(None, None, -1) for _ in a.shape)]))
    ro = a.copy()
    ro.setflags(write=False)
    out.append(("readonly", ro))
    out.append(("transposed-view", np.ascontiguousarray(a.T).T))
    return out


def _both(a, b):
    """A regex matching a message that names both a and b (whole words)."""
    return rf"(?s)(?=.*\b{a}\b)(?=.*\b{b}\b)"


def _log_probs(seed, shape, axis=-1, dtype=np.float64):
    rng = np.random.default_rng(seed)
    z = 2.0 * rng.standard_normal(shape)
    m = z.max(axis=axis, keepdims=True)
    lp = z - m - np.log(np.sum(np.exp(z - m), axis=axis, keepdims=True))
    return lp.astype(dtype)


def _simplex(seed, shape, axis=-1, zeros=0.0):
    """Random distributions along axis; a fraction `zeros` of exact zeros (never a whole row)."""
    rng = np.random.default_rng(seed)
    x = rng.random(shape) ** 2 + 1e-3
    if zeros:
        m = rng.random(shape) < zeros
        x = np.where(m, 0.0, x)
        xm = np.moveaxis(x, axis, -1)
        xm[..., 0] = np.where(xm.sum(-1) == 0, 1.0, xm[..., 0])
    return x / x.sum(axis=axis, keepdims=True)


def _pen(kind):
    return fn(kind + "_penalty"), fn(kind + "_penalty_grad")


if HAVE_HYPOTHESIS:
    def _elements(dt, kind="any"):
        """Floats of dtype dt: moderate, anything finite, and the special values."""
        width = 32 if np.dtype(dt) == F32 else 64
        fi = np.finfo(dt)
        sub = float(fi.smallest_subnormal)
        specials = [0.0, -0.0, math.nan, math.inf, -math.inf, sub, -sub, 3 * sub, float(fi.tiny),
                    float(fi.max), -float(fi.max), 1.0, -1.0]
        if kind == "prob":
            return st.one_of(st.floats(0.0, 1.0, width=width),
                             st.sampled_from([0.0, 1.0, sub, 1.0 - float(fi.eps) / 2, math.nan]))
        if kind == "unit":
            return st.one_of(st.floats(0.0, 1.0, width=width), st.sampled_from([0.0, 1.0, math.nan]))
        return st.one_of(st.floats(-10, 10, width=width),
                         st.floats(width=width, allow_nan=False, allow_infinity=False),
                         st.sampled_from(specials))

    HYP = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
