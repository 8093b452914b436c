"""The losses beyond cross-entropy (SPEC.md, "Losses"): the pointwise losses
mse, rmse, mae, l1_loss, l2_loss, quadratic_cost, huber,
binary_cross_entropy, binary_cross_entropy_with_logits; nll_loss; kl_div;
the penalties l1_penalty / l2_penalty; each with ``_grad`` and (losses)
``_with_grad``.

References (independent of mlkern's implementation).
* Float64 NumPy transcriptions of the formulas of the contract, written
  here (``pw_terms``, ``nll_ref``, ``kl_ref``, ``penalty_ref``), reduced by
  ``reduce_ref`` (np.average semantics for the weighted mean).
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
import inspect
import math
import os
import re

import numpy as np
import pytest

import mlkern

try:
    from hypothesis import HealthCheck, assume, given, settings, strategies as st
    import hypothesis.extra.numpy as hnp
    HAVE_HYPOTHESIS = True
except ImportError:  # pragma: no cover
    HAVE_HYPOTHESIS = False

F16, F32, F64 = np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)
EPS = {F16: 2.0 ** -11, F32: 2.0 ** -24, F64: 2.0 ** -53}
TINY_SUB = {F16: 2.0 ** -24, F32: 2.0 ** -149, F64: 2.0 ** -1074}
DTYPES = [np.float32, np.float64]
DT_IDS = ["f32", "f64"]
REDUCTIONS = ["mean", "sum", "none"]
K = 8.0

SOFTPLUS_M37 = 8.533047625744065e-17      # mpmath: log1p(exp(-37)) = sigma(-37) to 16 digits


def fn(name):
    return getattr(mlkern, name)


def _torch():
    return pytest.importorskip("torch")


def _dtypes(x):
    """(compute dtype, result dtype) of mlkern for an input array x (the contract)."""
    dt = np.asarray(x).dtype
    if dt.kind == "f" and dt.itemsize == 2:
        return F32, F16
    if dt.kind == "f":
        d = np.dtype(dt.newbyteorder("="))
        return d, d
    return F64, F64


# ================================================================ float64 references
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


def _ulp(ref, dt):
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


# ================================================================ comparisons
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
    tol = np.broadcast_to(np.asarray(tol, np.float64), y64.shape) + 2 * _ulp(ref, rdt)
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


def same(a, b):
    """Bit-for-bit (NaN == NaN), same dtype and shape."""
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b, equal_nan=True)


_UNDER_SANITIZER = bool(os.environ.get("MLKERN_UNDER_SANITIZER"))


def same_loss(a, b):
    """f(...) against f_with_grad(...)[0]: bit for bit in a release build,
    where both run the same kernel loop.  In the ASan/UBSan build
    (tools/sanitize.sh) the instrumentation can leave one specialisation of
    that loop unvectorised, which changes the order of the float64 sum in
    its last bit: there, within 1e-13."""
    if not _UNDER_SANITIZER:
        return same(a, b)
    a, b = np.asarray(a), np.asarray(b)
    return (a.dtype == b.dtype and a.shape == b.shape
            and np.allclose(a, b, rtol=1e-13, atol=0, equal_nan=True))


# ================================================================ the pointwise cases
def _pw_vec(n):
    """A per-class pos_weight along the last axis (exact in float16)."""
    return 0.25 * (1 + np.arange(n) % 8)


class Case:
    def __init__(self, id_, name, params=None, pw=None):
        self.id, self.name, self.params, self.pw = id_, name, dict(params or {}), pw

    def kw(self, shape):
        kw = dict(self.params)
        if self.pw == "vec":
            kw["pos_weight"] = _pw_vec(shape[-1]) if len(shape) else 1.5
        elif self.pw == "lead":
            # one per index of the leading axis, broadcast over the rest
            kw["pos_weight"] = (_pw_vec(shape[0])[::-1].reshape((shape[0],) + (1,) * (len(shape) - 1))
                                if len(shape) else 0.75)
        elif self.pw is not None:
            kw["pos_weight"] = self.pw
        return kw

    @property
    def reductions(self):
        return ["mean"] if self.name == "rmse" else REDUCTIONS

    @property
    def default(self):
        return "sum" if self.name in ("l1_loss", "l2_loss", "quadratic_cost") else "mean"

    @property
    def arg(self):
        return {"binary_cross_entropy": "prob",
                "binary_cross_entropy_with_logits": "logits"}.get(self.name, "pred")

    def f(self, p, t, **kw):
        return fn(self.name)(p, t, **self.kw(np.shape(p)), **kw)

    def grad(self, p, t, **kw):
        return fn(self.name + "_grad")(p, t, **self.kw(np.shape(p)), **kw)

    def with_grad(self, p, t, **kw):
        return fn(self.name + "_with_grad")(p, t, **self.kw(np.shape(p)), **kw)

    def expected(self, p, t, reduction="mean", sample_weight=None, k=K, careful=True):
        return pw_expected(self.name, p, t, reduction, sample_weight, k=k, careful=careful,
                           **self.kw(np.shape(p)))

    def data(self, rng, shape, dtype=np.float64, kinks=False):
        """(pred, target) away from kinks and clamps (kinks=True: with some
        exact ties d = 0 for the absolute-value losses)."""
        name = self.name
        if name == "binary_cross_entropy":
            p = rng.uniform(0.05, 0.95, shape)
            t = rng.uniform(0.0, 1.0, shape)
            m = rng.random(shape)
            t = np.where(m < 0.2, 0.0, np.where(m > 0.8, 1.0, t))
        elif name == "binary_cross_entropy_with_logits":
            p = 3.0 * rng.standard_normal(shape)
            t = rng.uniform(0.0, 1.0, shape)
            m = rng.random(shape)
            t = np.where(m < 0.25, 0.0, np.where(m > 0.75, 1.0, t))
        elif name in ("mae", "l1_loss", "huber"):
            t = 2.0 * rng.standard_normal(shape)
            if name == "huber":
                dl = self.params.get("delta", 1.0)
                mag = np.where(rng.random(shape) < 0.5, rng.uniform(0.05 * dl, 0.9 * dl, shape),
                               rng.uniform(1.1 * dl, 4.0 * dl, shape))
            else:
                mag = rng.uniform(0.1, 2.0, shape)
            p = t + np.where(rng.random(shape) < 0.5, -1.0, 1.0) * mag
        else:
            p = 2.0 * rng.standard_normal(shape)
            t = 2.0 * rng.standard_normal(shape)
        p = np.asarray(p).astype(dtype)
        t = np.asarray(t).astype(dtype)
        if kinks and name in ("mae", "l1_loss", "huber") and p.size >= 3:
            t.flat[1] = p.flat[1]
            t.flat[-1] = p.flat[-1]
        return p, t

    def __repr__(self):
        return self.id


CASES = [
    Case("mse", "mse"),
    Case("rmse", "rmse"),
    Case("mae", "mae"),
    Case("l1_loss", "l1_loss"),
    Case("l2_loss", "l2_loss"),
    Case("quadratic_cost", "quadratic_cost"),
    Case("huber", "huber"),
    Case("huber[0.5]", "huber", {"delta": 0.5}),
    Case("huber[3]", "huber", {"delta": 3.0}),
    Case("bce", "binary_cross_entropy"),
    Case("bce_logits", "binary_cross_entropy_with_logits"),
    Case("bce_logits[pw=2.5]", "binary_cross_entropy_with_logits", pw=2.5),
    Case("bce_logits[pw=vec]", "binary_cross_entropy_with_logits", pw="vec"),
    Case("bce_logits[pw=lead]", "binary_cross_entropy_with_logits", pw="lead"),
]
CASE_IDS = [c.id for c in CASES]
CASES_BY_ID = {c.id: c for c in CASES}
# one case per function name (validation tests)
NAME_CASES = [CASES_BY_ID[i] for i in ("mse", "rmse", "mae", "l1_loss", "l2_loss", "quadratic_cost",
                                       "huber", "bce", "bce_logits")]
NAME_IDS = [c.id for c in NAME_CASES]
SHAPES = [(7,), (5, 6), (3, 4, 5)]


def _sw(rng, n, zero=True):
    w = rng.uniform(0.2, 3.0, n)
    if zero and n >= 3:
        w[1] = 0.0
    return w


def run3(case, p, t, **kw):
    """(f, f_grad, f_with_grad) results; checks with_grad == (f, f_grad) bit for bit."""
    loss = case.f(p, t, **kw)
    grad = case.grad(p, t, **kw)
    lw, gw = case.with_grad(p, t, **kw)
    assert same_loss(np.asarray(lw), np.asarray(loss)) and type(lw) is type(loss), \
        f"{case.id} {kw.get('reduction')}: with_grad loss {lw!r} != f {loss!r}"
    assert same(gw, grad), f"{case.id} {kw.get('reduction')}: with_grad grad != f_grad"
    return loss, grad


def check_pw(case, p, t, reduction, sw=None, what="", k=K, ref=None):
    """Run the three functions, check types, shapes and values against the
    float64 reference (or ref = (loss, grad) from torch)."""
    kw = {"reduction": reduction}
    if sw is not None:
        kw["sample_weight"] = sw
    loss, grad = run3(case, p, t, **kw)
    cdt, rdt = _dtypes(p)
    check_loss_type(loss, rdt, reduction, np.shape(p), what)
    check_grad_type(grad, rdt, np.shape(p), what)
    L, G, lt, gt = case.expected(p, t, reduction, sw, k=k, careful=ref is None)
    if ref is not None:
        L, G = ref
    assert_close(loss, L, lt, rdt, what=f"{what} loss")
    assert_close(grad, G, gt, rdt, what=f"{what} grad")
    return loss, grad


# ================================================================ exports
ALL_NAMES = [n + s for n in ("mse", "rmse", "mae", "l1_loss", "l2_loss", "quadratic_cost", "huber",
                             "binary_cross_entropy", "binary_cross_entropy_with_logits", "nll_loss",
                             "kl_div")
             for s in ("", "_grad", "_with_grad")] + \
    ["l1_penalty", "l2_penalty", "l1_penalty_grad", "l2_penalty_grad"]


def test_exports():
    import mlkern.losses as L
    missing = [n for n in ALL_NAMES if not callable(getattr(mlkern, n, None))]
    assert not missing, f"missing from mlkern: {missing}"
    missing = [n for n in ALL_NAMES if not callable(getattr(L, n, None)) or n not in L.__all__]
    assert not missing, f"missing from mlkern.losses (or its __all__): {missing}"
    assert all(getattr(L, n) is getattr(mlkern, n) for n in ALL_NAMES)


# ================================================================ pointwise: values
@pytest.mark.parametrize("weighted", [False, True], ids=["plain", "sw"])
@pytest.mark.parametrize("dt", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_pointwise_vs_reference(case, dt, weighted):
    rng = np.random.default_rng(hash(case.id) % 2 ** 32)
    for shape in SHAPES:
        p, t = case.data(rng, shape, dt, kinks=True)
        sw = _sw(rng, shape[0]) if weighted else None
        for red in case.reductions:
            check_pw(case, p, t, red, sw, what=f"{case.id} {np.dtype(dt)} {shape} {red} sw={weighted}")


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_default_reduction(case):
    rng = np.random.default_rng(3)
    p, t = case.data(rng, (4, 5))
    d = case.default
    assert same(case.f(p, t), case.f(p, t, reduction=d)), f"{case.id}: default reduction is not {d!r}"
    assert same(case.grad(p, t), case.grad(p, t, reduction=d))
    a, b = case.with_grad(p, t), case.with_grad(p, t, reduction=d)
    assert same(a[0], b[0]) and same(a[1], b[1])


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_with_grad_identical(case):
    """f_with_grad == (f, f_grad) bit for bit, for every reduction, with and
    without sample_weight, float32/float64, NaN included."""
    rng = np.random.default_rng(5)
    for dt in DTYPES:
        for shape in ((9,), (4, 7), (2, 3, 4)):
            p, t = case.data(rng, shape, dt, kinks=True)
            if case.name != "binary_cross_entropy":
                p.flat[2] = np.nan
            t.flat[-2] = np.nan
            for sw in (None, _sw(rng, shape[0])):
                for red in case.reductions:
                    run3(case, p, t, reduction=red, sample_weight=sw)
                    p2, t2 = case.data(rng, shape, dt)
                    run3(case, p2, t2, reduction=red, sample_weight=sw)


def test_spelled_out_quadratic_family():
    p = np.array([1.0, 2.0, 3.0])
    t = np.array([0.0, 2.0, 5.0])                   # d = [1, 0, -2]
    d = p - t
    exp = {"mse": (5 / 3, 2 * d / 3), "mae": (1.0, np.sign(d) / 3), "l1_loss": (3.0, np.sign(d)),
           "l2_loss": (5.0, 2 * d), "quadratic_cost": (2.5, d),
           "rmse": (math.sqrt(5 / 3), d / (3 * math.sqrt(5 / 3)))}
    for name, (l, g) in exp.items():
        loss, grad = fn(name + "_with_grad")(p, t)
        assert type(loss) is np.float64
        assert loss == pytest.approx(l, rel=4 * EPS[F64], abs=0), name
        np.testing.assert_allclose(grad, g, rtol=4 * EPS[F64], atol=0, err_msg=name)
        assert fn(name)(p, t) == loss
    # sign(0) = 0 exactly
    assert mlkern.mae_grad(p, t)[1] == 0.0 and mlkern.l1_loss_grad(p, t)[1] == 0.0
    # sample_weight on the leading axis, broadcast over the rest: np.average
    P = np.array([[1.0, 4.0], [2.0, -1.0], [0.5, 0.5]])
    T = np.array([[0.0, 2.0], [2.0, 1.0], [0.0, 1.5]])
    w = np.array([1.0, 3.0, 0.5])
    D = P - T
    Wb = np.repeat(w[:, None], 2, 1)
    assert mlkern.mse(P, T, sample_weight=w) == pytest.approx(np.average(D ** 2, weights=Wb), rel=1e-15)
    np.testing.assert_allclose(mlkern.mse_grad(P, T, sample_weight=w), 2 * Wb * D / Wb.sum(), rtol=1e-15)
    assert mlkern.mae(P, T, sample_weight=w) == pytest.approx(np.average(abs(D), weights=Wb), rel=1e-15)
    assert mlkern.l2_loss(P, T, sample_weight=w) == pytest.approx(np.sum(Wb * D ** 2), rel=1e-15)
    np.testing.assert_allclose(mlkern.l2_loss(P, T, sample_weight=w, reduction="none"), Wb * D ** 2,
                               rtol=1e-15)
    np.testing.assert_allclose(mlkern.quadratic_cost_grad(P, T, sample_weight=w, reduction="none"), Wb * D,
                               rtol=1e-15)
    r = math.sqrt(np.average(D ** 2, weights=Wb))
    assert mlkern.rmse(P, T, sample_weight=w) == pytest.approx(r, rel=1e-15)
    np.testing.assert_allclose(mlkern.rmse_grad(P, T, sample_weight=w), Wb * D / (Wb.sum() * r), rtol=1e-14)
    # int and list sample_weight
    assert mlkern.mse(P, T, sample_weight=[1, 3, 2]) == pytest.approx(
        np.average(D ** 2, weights=np.repeat([[1], [3], [2]], 2, 1)), rel=1e-15)


@pytest.mark.parametrize("dt", DTYPES, ids=DT_IDS)
def test_rmse_zero(dt):
    """rmse = 0 (pred == target): loss 0, gradient 0 everywhere (not NaN)."""
    p = np.array([[1.0, -2.0, 3.5], [0.0, 7.0, 1e-3]], dt)
    for sw in (None, [2.0, 0.5]):
        loss, grad = mlkern.rmse_with_grad(p, p.copy(), sample_weight=sw)
        assert loss == 0 and type(loss) is np.dtype(dt).type
        assert np.array_equal(grad, np.zeros_like(p)), grad
        assert np.array_equal(mlkern.rmse_grad(p, p.copy(), sample_weight=sw), np.zeros_like(p))


def test_huber_spelled_out():
    d = np.array([0.5, 1.0, 2.0, -3.0, -1.0, 0.0, -0.25])
    t = np.linspace(-1, 1, d.size)
    p = t + d
    dd = p - t                                          # the rounded differences
    ad = np.abs(dd)
    exp = np.where(ad <= 1, 0.5 * dd * dd, ad - 0.5)
    loss = mlkern.huber(p, t, reduction="none")
    np.testing.assert_allclose(loss, exp, rtol=4 * EPS[F64])
    np.testing.assert_allclose(loss, [0.125, 0.5, 1.5, 2.5, 0.5, 0.0, 0.03125], rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(mlkern.huber_grad(p, t, reduction="none"), np.clip(dd, -1, 1), rtol=4 * EPS[F64])
    assert mlkern.huber(p, t) == pytest.approx(exp.mean(), rel=1e-15)
    # delta = 2: 0.5 d^2 up to |d| = 2, then 2 (|d| - 1)
    l2 = mlkern.huber([0.0, 0.0, 0.0], [1.0, 2.0, -5.0], delta=2.0, reduction="none")
    np.testing.assert_allclose(l2, [0.5, 2.0, 8.0], rtol=1e-15)
    np.testing.assert_allclose(mlkern.huber_grad([0.0, 0.0, 0.0], [1.0, 2.0, -5.0], delta=2.0,
                                                 reduction="sum"), [-1.0, -2.0, 2.0], rtol=1e-15)
    # a huge delta is 0.5 mse; a tiny delta is delta * mae (up to delta^2 / 2)
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal(50), rng.standard_normal(50)
    assert mlkern.huber(a, b, delta=1e6) == pytest.approx(0.5 * np.mean((a - b) ** 2), rel=1e-14)
    assert mlkern.huber(a, b, delta=1e-9) == pytest.approx(1e-9 * (np.mean(np.abs(a - b)) - 0.5e-9), rel=1e-12)


def test_bce_clamp_values():
    """p = 0 or 1: the PyTorch clamp; no inf/NaN; gradient (p-t)/max(p(1-p), 1e-12)."""
    for dt in DTYPES:
        p = np.array([0.0, 1.0, 1.0, 0.0], dt)
        t = np.array([1.0, 0.0, 1.0, 0.0], dt)
        loss, grad = mlkern.binary_cross_entropy_with_grad(p, t, reduction="none")
        assert np.array_equal(loss, np.array([100.0, 100.0, 0.0, 0.0], dt)), loss
        e12 = float(np.asarray(1e-12, dt))
        np.testing.assert_allclose(grad, [-1 / e12, 1 / e12, 0.0, 0.0], rtol=4 * EPS[np.dtype(dt)])
        assert mlkern.binary_cross_entropy(p, t) == 50.0
        assert mlkern.binary_cross_entropy(p, t, reduction="sum") == 200.0
        # soft target at the clamp: 0.3 * 100 + 0.7 * 0
        assert mlkern.binary_cross_entropy(np.array([0.0], dt), np.array([0.25], dt)) == 25.0
        assert np.all(np.isfinite(mlkern.binary_cross_entropy_grad(p, t)))


def test_bce_near_one():
    """float32 p = 1 - 2^-24 with t = 1: a finite small loss -log(p) = 2^-24
    (to first order), the gradient -1/p; the mirror p = 2^-24, t = 0."""
    p = np.array([1.0 - 2.0 ** -24], np.float32)
    loss, grad = mlkern.binary_cross_entropy_with_grad(p, np.ones(1, np.float32))
    assert type(loss) is np.float32 and np.isfinite(loss) and loss > 0
    exact = -math.log1p(-2.0 ** -24)                # 5.960464655174746e-08
    assert loss == pytest.approx(exact, rel=4 * EPS[F32]), loss
    assert grad[0] == pytest.approx(-1.0 / float(p[0]), rel=4 * EPS[F32]), grad
    loss0, grad0 = mlkern.binary_cross_entropy_with_grad(np.array([2.0 ** -24], np.float32),
                                                         np.zeros(1, np.float32))
    assert np.isfinite(loss0) and loss0 == pytest.approx(exact, rel=4 * EPS[F32])
    assert grad0[0] == pytest.approx(1.0 / (1.0 - 2.0 ** -24), rel=4 * EPS[F32])
    # float64: p = 1 - 2^-53
    p64 = np.array([1.0 - 2.0 ** -53])
    l64, g64 = mlkern.binary_cross_entropy_with_grad(p64, np.ones(1))
    assert l64 == pytest.approx(2.0 ** -53, rel=4 * EPS[F64])
    # p (1 - p) = 2^-53 < 1e-12: the clamp, (p - 1) / 1e-12
    assert g64[0] == pytest.approx(-(2.0 ** -53) / 1e-12, rel=4 * EPS[F64])
    # the other float32 values next to 1 and 0 stay finite with either target
    for v in (1.0 - 2.0 ** -24, 1.0 - 2.0 ** -23, 2.0 ** -149, 2.0 ** -126, 1e-30):
        for tv in (0.0, 1.0, 0.5):
            r = mlkern.binary_cross_entropy_with_grad(np.array([v], np.float32), np.array([tv], np.float32))
            assert np.isfinite(r[0]) and np.isfinite(r[1]).all(), (v, tv, r)


def _mp_logit_loss(y, z, pw=1.0):
    import mpmath
    with mpmath.workdps(50):
        y, z, pw = mpmath.mpf(y), mpmath.mpf(z), mpmath.mpf(pw)
        sp = lambda v: mpmath.log1p(mpmath.exp(v))       # noqa: E731  softplus
        c = 1 + (pw - 1) * y
        loss = (1 - y) * z + c * sp(-z)
        grad = (1 - y) - c / (1 + mpmath.exp(z))
        return float(loss), float(grad)


SKLEARN_Z = [-1e20, -1000.0, -37.5, -37.0, -36.9, 37.0, 37.5, 232.8, 232.9, 1000.0, 1e20]


@pytest.mark.parametrize("pw", [None, 2.5], ids=["plain", "pw2.5"])
def test_bce_logits_extreme_table(pw):
    """scikit-learn's HalfBinomialLoss extreme values (test_loss_on_specific_values),
    y in {0, 1} x every z, against the exact values (mpmath, 50 digits): rtol 1e-15,
    0 only where the exact value rounds to 0."""
    z = np.array([v for v in SKLEARN_Z for _ in (0, 1)])
    y = np.array([float(k) for _ in SKLEARN_Z for k in (0, 1)])
    exp = [_mp_logit_loss(yy, zz, 1.0 if pw is None else pw) for yy, zz in zip(y, z)]
    el = np.array([e[0] for e in exp])
    eg = np.array([e[1] for e in exp])
    kw = {} if pw is None else {"pos_weight": pw}
    loss, grad = mlkern.binary_cross_entropy_with_logits_with_grad(z, y, reduction="none", **kw)
    if pw is None:
        tol_l = 1e-15 * np.abs(el) + (el == 0) * 1e-300
        tol_g = 1e-15 * np.abs(eg) + (eg == 0) * 1e-300
    else:
        # t = 1: pw softplus(-z), nothing cancels; t = 0: the contract's
        # z + softplus(-z) (and 1 - sigma(-z)) cancel for z < 0 -- an absolute
        # eps |z| there
        rel = 2e-15
        ab = np.where(y == 1, 0.0, 2 * EPS[F64] * (1 + np.abs(z)))
        tol_l = rel * np.abs(el) + ab + (el == 0) * 1e-300
        tol_g = rel * np.abs(eg) + np.where(y == 1, 0.0, 2 * EPS[F64]) + (eg == 0) * 1e-300
    for name, got, ref, tol in (("loss", loss, el, tol_l), ("grad", grad, eg, tol_g)):
        ok = np.abs(got - ref) <= tol
        assert ok.all(), f"{name}: " + _report(ok, y=y, z=z, got=got, exact=ref)
    if pw is None:
        # the spelled-out values of the contract
        assert loss[SKLEARN_Z.index(-37.0) * 2] == pytest.approx(SOFTPLUS_M37, rel=1e-15)
        assert grad[SKLEARN_Z.index(37.0) * 2 + 1] == pytest.approx(-SOFTPLUS_M37, rel=1e-15)
        assert loss[SKLEARN_Z.index(-1e20) * 2 + 1] == 1e20 and loss[SKLEARN_Z.index(1e20) * 2] == 1e20
        g = mlkern.binary_cross_entropy_with_logits_grad(np.array([37.0]), np.array([1.0]), reduction="sum")
        assert g[0] == pytest.approx(-8.533047625744065e-17, rel=1e-15), g


def test_bce_logits_matches_bce_of_sigmoid():
    """Consistency: bce_with_logits(z, t) = bce(sigmoid(z), t) for moderate z
    (and pos_weight = 1 is no pos_weight)."""
    rng = np.random.default_rng(8)
    z = rng.uniform(-6, 6, (6, 5))
    t = rng.uniform(0, 1, (6, 5))
    p = _sigmoid(z)
    for red in REDUCTIONS:
        a = mlkern.binary_cross_entropy_with_logits(z, t, reduction=red)
        b = mlkern.binary_cross_entropy(p, t, reduction=red)
        np.testing.assert_allclose(a, b, rtol=1e-12)
        c = mlkern.binary_cross_entropy_with_logits(z, t, reduction=red, pos_weight=1.0)
        np.testing.assert_allclose(c, a, rtol=1e-13)
        # gradient chain rule: dbce/dp * sigma'(z)
        gz = mlkern.binary_cross_entropy_with_logits_grad(z, t, reduction=red)
        gp = mlkern.binary_cross_entropy_grad(p, t, reduction=red)
        np.testing.assert_allclose(gz, gp * p * (1 - p), rtol=1e-11, atol=1e-15)


def test_pos_weight_spelled_out():
    """l = (1-t) z + (1 + (pw-1) t) softplus(-z), per class along the last axis."""
    z = np.array([[0.0, 1.0, -2.0], [3.0, -1.0, 0.5]])
    t = np.array([[1.0, 0.0, 0.5], [1.0, 1.0, 0.0]])
    pw = np.array([2.0, 0.5, 3.0])
    c = 1 + (pw - 1) * t
    el = (1 - t) * z + c * _softplus(-z)
    eg = (1 - t) - c * _sigmoid(-z)
    loss, grad = mlkern.binary_cross_entropy_with_logits_with_grad(z, t, pos_weight=pw, reduction="none")
    np.testing.assert_allclose(loss, el, rtol=1e-14)
    np.testing.assert_allclose(grad, eg, rtol=1e-14, atol=1e-16)
    assert loss[0, 0] == pytest.approx(2 * math.log(2), rel=1e-15)
    # (2, 1) pos_weight broadcasting along the leading axis; a scalar array
    pw2 = np.array([[2.0], [0.5]])
    c2 = 1 + (pw2 - 1) * t
    np.testing.assert_allclose(mlkern.binary_cross_entropy_with_logits(z, t, pos_weight=pw2, reduction="none"),
                               (1 - t) * z + c2 * _softplus(-z), rtol=1e-14)
    np.testing.assert_allclose(mlkern.binary_cross_entropy_with_logits(z, t, pos_weight=np.array(2.0)),
                               np.mean((1 - t) * z + (1 + t) * _softplus(-z)), rtol=1e-14)
    # pos_weight is not modified and the mean divides by N, not by pos_weight
    pwc = pw.copy()
    assert mlkern.binary_cross_entropy_with_logits(z, t, pos_weight=pw) == pytest.approx(el.mean(), rel=1e-14)
    assert np.array_equal(pw, pwc)


# ================================================================ pointwise: torch
def torch_pointwise(case, p, t, reduction, sw=None):
    """(loss, grad) float64 from torch.nn.functional + autograd in p's dtype;
    sample_weight applied by hand to torch's per-element losses."""
    torch = _torch()
    F = torch.nn.functional
    x = torch.tensor(p, requires_grad=True)
    tt = torch.tensor(t)
    kw = case.kw(p.shape)

    def per(red):
        n = case.name
        if n in ("mse", "rmse", "l2_loss"):
            return F.mse_loss(x, tt, reduction=red)
        if n == "quadratic_cost":
            return 0.5 * F.mse_loss(x, tt, reduction=red)
        if n in ("mae", "l1_loss"):
            return F.l1_loss(x, tt, reduction=red)
        if n == "huber":
            return F.huber_loss(x, tt, reduction=red, delta=kw.get("delta", 1.0))
        if n == "binary_cross_entropy":
            return F.binary_cross_entropy(x, tt, reduction=red)
        pw = kw.get("pos_weight")
        pw = None if pw is None else torch.as_tensor(np.ascontiguousarray(pw), dtype=x.dtype)
        return F.binary_cross_entropy_with_logits(x, tt, reduction=red, pos_weight=pw)

    if sw is None:
        loss = per("mean" if case.name == "rmse" else reduction)
        if case.name == "rmse":
            loss = torch.sqrt(loss)
    else:
        W = torch.tensor(_bcast_w(sw, p.shape).copy(), dtype=x.dtype)
        l = per("none") * W
        if reduction != "none":
            l = l.sum()
        if reduction == "mean":
            l = l / W.sum()
        loss = torch.sqrt(l) if case.name == "rmse" else l
    (loss.sum() if reduction == "none" else loss).backward()
    ln = loss.detach().numpy().astype(np.float64)
    return (ln if reduction == "none" else float(ln)), x.grad.numpy().astype(np.float64)


@pytest.mark.parametrize("weighted", [False, True], ids=["plain", "sw"])
@pytest.mark.parametrize("dt", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_pointwise_vs_torch(case, dt, weighted):
    _torch()
    rng = np.random.default_rng(11 + len(case.id))
    for shape in ((13,), (4, 6), (2, 3, 5)):
        p, t = case.data(rng, shape, dt)
        sw = _sw(rng, shape[0]) if weighted else None
        for red in case.reductions:
            ref = torch_pointwise(case, p, t, red, sw)
            check_pw(case, p, t, red, sw, k=2 * K, ref=ref,
                     what=f"{case.id} {np.dtype(dt)} {shape} {red} sw={weighted} vs torch")


def test_bce_clamp_vs_torch():
    torch = _torch()
    F = torch.nn.functional
    for dt in DTYPES:
        p = np.array([0.0, 1.0, 1.0, 0.0, 1e-50 if dt == np.float64 else 1e-40, 0.5, 1 - 2.0 ** -24], dt)
        t = np.array([1.0, 0.0, 1.0, 0.0, 1.0, 0.5, 1.0], dt)
        for red in REDUCTIONS:
            x = torch.tensor(p, requires_grad=True)
            tl = F.binary_cross_entropy(x, torch.tensor(t), reduction=red)
            (tl.sum() if red == "none" else tl).backward()
            loss, grad = mlkern.binary_cross_entropy_with_grad(p, t, reduction=red)
            np.testing.assert_allclose(np.asarray(loss, np.float64), tl.detach().numpy(), rtol=8 * EPS[np.dtype(dt)])
            # torch's clamp constant is the float32 1e-12 (9.99999996e-13) even in float64
            np.testing.assert_allclose(grad, x.grad.numpy(), rtol=max(8 * EPS[np.dtype(dt)], 1e-8))


def test_bce_logits_extreme_vs_torch():
    torch = _torch()
    F = torch.nn.functional
    z = np.array([v for v in SKLEARN_Z for _ in (0, 1)])
    y = np.array([float(k) for _ in SKLEARN_Z for k in (0, 1)])
    loss, grad = mlkern.binary_cross_entropy_with_logits_with_grad(z, y, reduction="none")
    x = torch.tensor(z, requires_grad=True)
    tl = F.binary_cross_entropy_with_logits(x, torch.tensor(y), reduction="none")
    tl.sum().backward()
    # neither torch's loss (z + softplus(-z) for t = 0, z < 0; 7.9e-102 for
    # t = 1, z = 232.8) nor its gradient sigma(z) - t is exact: eps |z| absolute
    ok = np.abs(loss - tl.detach().numpy()) <= 1e-15 * np.abs(loss) + 2 * EPS[F64] * (1 + np.abs(z))
    assert ok.all(), _report(ok, y=y, z=z, got=loss, torch=tl.detach().numpy())
    np.testing.assert_allclose(grad, x.grad.numpy(), rtol=0, atol=2 * EPS[F64])


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


@pytest.mark.parametrize("weighted", [False, True], ids=["plain", "sw"])
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_pointwise_finite_differences(case, weighted):
    rng = np.random.default_rng(21 + len(case.id))
    h = 2.0 ** -13 if case.name == "binary_cross_entropy" else 2.0 ** -10
    for shape in ((6,), (3, 4)):
        p, t = case.data(rng, shape)
        sw = _sw(rng, shape[0]) if weighted else None
        for red in case.reductions:
            kw = {"reduction": red, "sample_weight": sw}
            F = (lambda x: np.sum(case.f(x, t, **kw))) if red == "none" else (lambda x: case.f(x, t, **kw))
            assert_fd(case.grad(p, t, **kw), F, p, h, f"{case.id} {shape} {red} sw={weighted}")


# ================================================================ empty, NaN, infinities
@pytest.mark.parametrize("dt", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_empty(case, dt):
    """mean -> NaN, sum -> 0, none -> empty; gradients empty of pred's shape."""
    rdt = np.dtype(dt)
    for shape in ((0,), (0, 3), (2, 0), (3, 0, 2)):
        p = np.empty(shape, dt)
        t = np.empty(shape, dt)
        for sw in (None, np.ones(shape[0])):
            for red in case.reductions:
                loss, grad = run3(case, p, t, reduction=red, sample_weight=sw)
                check_grad_type(grad, rdt, shape, f"{case.id} {shape} {red}")
                check_loss_type(loss, rdt, red, shape, f"{case.id} {shape} {red}")
                if red == "mean":
                    assert np.isnan(loss), f"{case.id} {shape}: mean of nothing {loss!r}, expected NaN"
                elif red == "sum":
                    assert loss == 0, f"{case.id} {shape}: sum of nothing {loss!r}"


@pytest.mark.parametrize("dt", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_nan_propagation(case, dt):
    """NaN in pred (BCE's prob included: NaN is not out of range) or target:
    NaN loss, NaN gradient at that position, other positions as without it."""
    rng = np.random.default_rng(31)
    shape = (4, 5)
    p, t = case.data(rng, shape, dt)
    pn, tn = p.copy(), t.copy()
    pn[1, 2] = np.nan
    tn[3, 0] = np.nan
    bad = np.zeros(shape, bool)
    bad[1, 2] = bad[3, 0] = True
    for sw in (None, _sw(rng, 4, zero=False)):
        for red in case.reductions:
            kw = {"reduction": red, "sample_weight": sw}
            loss, grad = run3(case, pn, tn, **kw)
            l0, g0 = run3(case, p, t, **kw)
            assert np.isnan(grad[bad]).all(), f"{case.id} {red}: gradient at the NaN: {grad[bad]}"
            if case.name != "rmse":
                np.testing.assert_allclose(grad[~bad], g0[~bad], rtol=4 * EPS[np.dtype(dt)], atol=0,
                                           err_msg=f"{case.id} {red}: other positions changed")
            if red == "none":
                assert np.isnan(loss[bad]).all()
                np.testing.assert_allclose(loss[~bad], l0[~bad], rtol=4 * EPS[np.dtype(dt)], atol=0)
            else:
                assert np.isnan(loss), f"{case.id} {red}: {loss!r}"
    # NaN only in the target / only in the prediction, 1-D
    for a, b in ((np.array([np.nan, 0.5], dt), np.array([0.5, 0.5], dt)),
                 (np.array([0.25, 0.5], dt), np.array([0.5, np.nan], dt))):
        loss, grad = case.with_grad(a, b)
        pos = np.isnan(a) | np.isnan(b)
        assert np.isnan(loss) and np.isnan(grad[pos]).all(), (case.id, a, b, loss, grad)


def test_infinities_follow_the_limit():
    """Infinite differences: the loss is +inf, the bounded gradients keep their limit."""
    inf = np.inf
    p = np.array([inf, -inf, 0.0])
    t = np.array([0.0, 1.0, 0.0])
    assert mlkern.mae(p, t) == inf and mlkern.mse(p, t) == inf and mlkern.huber(p, t) == inf
    np.testing.assert_array_equal(mlkern.mae_grad(p, t), [1 / 3, -1 / 3, 0.0])
    np.testing.assert_array_equal(mlkern.l1_loss_grad(p, t), [1.0, -1.0, 0.0])
    np.testing.assert_array_equal(mlkern.huber_grad(p, t, delta=2.0, reduction="sum"), [2.0, -2.0, 0.0])
    np.testing.assert_array_equal(mlkern.mse_grad(p, t, reduction="sum"), [inf, -inf, 0.0])


def test_logits_infinite_limits():
    """SPEC's general rule (+-inf follow the mathematical limit where it
    exists), for hard targets: l(+inf, 0) = l(-inf, 1) = +inf, l(+inf, 1) =
    l(-inf, 0) = 0; gradient sigma(z) - t = 1, -1, 0, 0."""
    inf = np.inf
    z = np.array([inf, -inf, inf, -inf])
    y = np.array([0.0, 1.0, 1.0, 0.0])
    loss, grad = mlkern.binary_cross_entropy_with_logits_with_grad(z, y, reduction="none")
    np.testing.assert_array_equal(loss, [inf, inf, 0.0, 0.0])
    np.testing.assert_array_equal(grad, [1.0, -1.0, 0.0, 0.0])


# ================================================================ dtypes
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_result_dtypes(case):
    """float32 stays, float64 stays, int/bool compute in float64, float16 computes
    in float32 and returns float16; target converted to the result dtype."""
    rng = np.random.default_rng(41)
    bce = case.name == "binary_cross_entropy"
    # values exact in float16 (so the reference is the same however target is converted)
    pf, tf = case.data(rng, (5, 4))
    pf = (np.round(pf * 64) / 64).astype(np.float16).astype(np.float64)
    tf = (np.round(tf * 64) / 64).astype(np.float16).astype(np.float64)
    if bce:
        pf = np.clip(pf, 1 / 64, 1 - 1 / 64)
    pi = (np.array([[0, 1, 1, 0], [1, 0, 1, 1], [0, 0, 1, 0]]) if bce else
          np.array([[0, 3, -2, 5], [7, 1, 1, 0], [2, -4, 3, 1]]))
    ti = np.array([[0, 1, 0, 0], [1, 1, 1, 0], [0, 1, 1, 1]])
    combos = [(pf.astype(np.float16), tf.astype(np.float16), F16),
              (pf.astype(np.float16), tf, F16),
              (pf.astype(np.float32), tf, F32),
              (pf.astype(np.float32), tf.astype(np.float16), F32),
              (pf, tf.astype(np.float32), F64),
              (pi.astype(np.int32), ti.astype(np.float32), F64),
              (pi.astype(np.int64), ti, F64),
              (pi.astype(np.uint8) if bce else pi.astype(np.int8), ti.astype(np.int16), F64),
              (pi.astype(bool) if bce else pi.astype(np.int16), ti.astype(bool), F64),
              (pf.astype(np.float32), np.ones(pf.shape, np.int64), F32),
              (pf.astype(">f8"), tf.astype(">f4"), F64)]
    for p, t, rdt in combos:
        for red in case.reductions:
            what = f"{case.id} {p.dtype}/{t.dtype} {red}"
            loss, grad = run3(case, p, t, reduction=red)
            check_loss_type(loss, rdt, red, p.shape, what)
            check_grad_type(grad, rdt, p.shape, what)
            L, G, lt, gt = case.expected(p, t, red)
            assert_close(loss, L, lt, rdt, what=what + " loss")
            assert_close(grad, G, gt, rdt, what=what + " grad")


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_float16_values(case):
    rng = np.random.default_rng(42)
    p, t = case.data(rng, (40, 3))
    p = p.astype(np.float16)
    t = t.astype(np.float16)
    if case.name == "binary_cross_entropy":
        p = np.clip(p, np.float16(0.01), np.float16(0.99))
    for sw in (None, _sw(rng, 40)):
        for red in case.reductions:
            check_pw(case, p, t, red, sw, what=f"f16 {case.id} {red}")


@pytest.mark.parametrize("case", NAME_CASES, ids=NAME_IDS)
def test_zero_dim(case):
    p, t = case.data(np.random.default_rng(43), ())
    for dt in DTYPES:
        a, b = np.asarray(p, dt), np.asarray(t, dt)
        for red in case.reductions:
            check_pw(case, a, b, red, what=f"0-d {case.id} {red}")
        # Python floats
        loss, grad = case.with_grad(float(p), float(t))
        assert type(loss) is np.float64 and np.shape(grad) == ()


# ================================================================ layouts, out=
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


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_layouts(case):
    rng = np.random.default_rng(51)
    p0, t0 = case.data(rng, (6, 5))
    sw0 = _sw(rng, 6)
    for dt in DTYPES:
        p0d, t0d = p0.astype(dt), t0.astype(dt)
        for red in case.reductions:
            L0, G0 = case.with_grad(p0d, t0d, reduction=red, sample_weight=sw0)
            for (np_, p), (nt, t), (ns, sw) in zip(_layouts(p0d), _layouts(t0d)[::-1], _layouts(sw0)):
                pc, tc, swc = p.copy(), t.copy(), sw.copy()
                what = f"{case.id} {np.dtype(dt)} {red} pred={np_} target={nt} sw={ns}"
                loss, grad = run3(case, p, t, reduction=red, sample_weight=sw)
                assert same(p, pc) and same(t, tc) and same(sw, swc), f"{what}: an input was modified"
                rdt = np.dtype(dt)
                _, _, lt, _ = case.expected(p0d, t0d, red, sw0)
                assert_close(loss, L0, lt, rdt, what=what + " loss vs C layout")
                np.testing.assert_allclose(grad, G0, rtol=4 * EPS[rdt], atol=0, err_msg=what + " grad")


@pytest.mark.parametrize("dt", [np.float16, np.float32, np.float64], ids=["f16", "f32", "f64"])
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_out(case, dt):
    """out= is returned, may be pred itself (in place) or any layout; the
    values are those without out=; the loss of with_grad is unaffected."""
    rng = np.random.default_rng(61)
    p, t = case.data(rng, (5, 4), dt)
    sw = _sw(rng, 5)
    for red in case.reductions:
        kw = {"reduction": red, "sample_weight": sw}
        L, G = case.with_grad(p, t, **kw)
        G2 = case.grad(p, t, **kw)
        for name, o in (("new", np.empty_like(p)), ("F", np.empty(p.shape, dt, order="F")),
                        ("strided", np.empty((5, 8), dt)[:, ::2]), ("negative", np.empty_like(p)[::-1, ::-1])):
            r = case.grad(p, t, out=o, **kw)
            assert r is o, f"{case.id} {name}: grad returned a new array, not out"
            assert same(o, G2), f"{case.id} {red} out={name}: values differ"
            o2 = np.full_like(o, np.nan)
            o2 = o2 if name != "strided" else np.full((5, 8), np.nan, dt)[:, ::2]
            lw, gw = case.with_grad(p, t, out=o2, **kw)
            assert gw is o2 and same(gw, G) and same(np.asarray(lw), np.asarray(L)), \
                f"{case.id} {red} with_grad out={name}"
        # in place: out = pred
        for f in ("grad", "with_grad"):
            x = p.copy()
            r = getattr(case, f)(x, t, out=x, **kw)
            g = r if f == "grad" else r[1]
            assert g is x, f"{case.id} {f}: out=pred not returned"
            assert same(x, G), f"{case.id} {red} {f}: in-place gradient differs"
            if f == "with_grad":
                assert same(np.asarray(r[0]), np.asarray(L)), f"{case.id} {red}: in-place loss differs"
        # out = target (aliasing the other input)
        y = t.copy()
        g = case.grad(p, y, out=y, **kw)
        assert g is y and same(y, G), f"{case.id} {red}: out=target differs"


@pytest.mark.parametrize("case", NAME_CASES, ids=NAME_IDS)
def test_out_errors(case):
    rng = np.random.default_rng(62)
    p, t = case.data(rng, (3, 4))
    for f in (case.grad, case.with_grad):
        with pytest.raises(ValueError, match="out"):
            f(p, t, out=np.empty((4, 3)))
        with pytest.raises(ValueError, match="out"):
            f(p, t, out=np.empty(12))
        with pytest.raises(TypeError, match="out"):
            f(p, t, out=np.empty((3, 4), np.float32))
        with pytest.raises(TypeError, match="out"):
            f(p.astype(np.float16), t, out=np.empty((3, 4), np.float32))
        with pytest.raises(TypeError, match="out"):
            f(p.astype(np.int64), t, out=np.empty((3, 4), np.float32))
        ro = np.empty((3, 4))
        ro.setflags(write=False)
        with pytest.raises(ValueError, match="out"):
            f(p, t, out=ro)
        with pytest.raises(TypeError, match="out"):
            f(p, t, out=[[0.0] * 4] * 3)


# ================================================================ threads
@pytest.mark.parametrize("dt", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_threads_bit_identical(case, dt):
    """10^6 elements: the same loss and gradient bit for bit with 1 and 2
    threads, for every reduction, with and without sample_weight; and the value."""
    rng = np.random.default_rng(71)
    p, t = case.data(rng, (1000, 1000), dt)
    sw = rng.uniform(0.5, 2.0, 1000)
    for w in (None, sw):
        for red in case.reductions:
            kw = {"reduction": red, "sample_weight": w}
            res = {}
            for n in (1, 2):
                with mlkern.threads(n):
                    res[n] = (case.f(p, t, **kw), case.grad(p, t, **kw)) + tuple(case.with_grad(p, t, **kw))
            for n in (2,):
                for a, b, what in zip(res[1], res[n], ("f", "f_grad", "with_grad[0]", "with_grad[1]")):
                    assert same(np.asarray(a), np.asarray(b)), \
                        f"{case.id} {np.dtype(dt)} {red} sw={w is not None}: {what} differs, 1 vs {n} threads"
            if red == "mean" and w is not None:
                L, _, lt, _ = case.expected(p, t, red, w)
                assert_close(res[1][0], L, lt, np.dtype(dt), what=f"{case.id} 10^6 {red} loss")


# ================================================================ pointwise: validation
def _both(a, b):
    """A regex matching a message that names both a and b (whole words)."""
    return rf"(?s)(?=.*\b{a}\b)(?=.*\b{b}\b)"


def _funcs(case):
    return [("f", case.f), ("grad", case.grad), ("with_grad", case.with_grad)]


@pytest.mark.parametrize("case", NAME_CASES, ids=NAME_IDS)
def test_shape_mismatch(case):
    p, t = case.data(np.random.default_rng(81), (3, 4))
    for fname, f in _funcs(case):
        for a, b in ((p, t[:, :3]), (p, t.T), (p[:, :1], t), (p, t[None]), (p[0], t), (p, t.ravel()),
                     (p, np.float64(0.5)), (np.float64(0.5), t)):
            with pytest.raises(ValueError, match=_both(case.arg, "target")):
                f(a, b)


@pytest.mark.parametrize("case", NAME_CASES, ids=NAME_IDS)
def test_bad_reduction(case):
    p, t = case.data(np.random.default_rng(82), (3, 4))
    bad = ["avg", "Mean", "", "batchmean", "elementwise_mean", None, 0]
    if case.name == "rmse":
        bad += ["sum", "none"]
    for fname, f in _funcs(case):
        for red in bad:
            with pytest.raises(ValueError, match="reduction"):
                f(p, t, reduction=red)


@pytest.mark.parametrize("case", NAME_CASES, ids=NAME_IDS)
def test_bad_sample_weight(case):
    p, t = case.data(np.random.default_rng(83), (3, 4))
    for fname, f in _funcs(case):
        for sw in (np.ones(4), np.ones(2), np.ones((3, 4)), np.ones((3, 1)), np.ones(12), [], 1.0):
            with pytest.raises(ValueError, match="sample_weight"):
                f(p, t, sample_weight=sw)
        # 0-d prediction: there is no leading axis to weight
        with pytest.raises(ValueError, match="sample_weight"):
            f(p[0, 0], t[0, 0], sample_weight=np.ones(1))
        with pytest.raises(TypeError, match="sample_weight"):
            f(p, t, sample_weight=np.ones(3, complex))


@pytest.mark.parametrize("case", NAME_CASES, ids=NAME_IDS)
def test_complex_object_string(case):
    p, t = case.data(np.random.default_rng(84), (3, 4))
    arg = rf"\b{case.arg}\b"
    for fname, f in _funcs(case):
        for a, b, name in ((p.astype(complex), t, arg), (p, t.astype(complex), "target"),
                           (p.astype(object), t, arg), (np.full((3, 4), "0.5"), t, arg),
                           (p, np.full((3, 4), "0.5"), "target"), (1j, 0.5, arg),
                           (p.astype(np.complex64), t.astype(np.complex64), "complex|" + arg)):
            with pytest.raises(TypeError, match=name):
                f(a, b)


def test_bad_delta():
    p, t = np.zeros(3), np.ones(3)
    for f in (mlkern.huber, mlkern.huber_grad, mlkern.huber_with_grad):
        for d in (0.0, -0.0, -1.0, -1e-300, math.nan, -math.inf):
            with pytest.raises(ValueError, match="delta"):
                f(p, t, delta=d)
        f(p, t, delta=1e-300)
        f(p, t, delta=2)


def test_bce_prob_out_of_range():
    t = np.array([0.0, 1.0, 0.5])
    for f in (mlkern.binary_cross_entropy, mlkern.binary_cross_entropy_grad,
              mlkern.binary_cross_entropy_with_grad):
        for bad in (1.0000001, 1 + 2.0 ** -52, -1e-300, -2.0 ** -1074, 2.0, -1.0, math.inf, -math.inf):
            with pytest.raises(ValueError, match="prob"):
                f(np.array([0.5, bad, 0.25]), t)
        with pytest.raises(ValueError, match="prob"):
            f(np.array([0.5, 1 + 2.0 ** -23, 0.25], np.float32), t.astype(np.float32))
        with pytest.raises(ValueError, match="prob"):
            f(np.array([[0.5, 0.5, 0.5], [0.1, 0.2, -0.5]]).T[:, 1], t)      # strided
        with pytest.raises(ValueError, match="prob"):
            f(np.array([2, 0, 1]), t)                                     # int
        # the ends and NaN are fine
        f(np.array([0.0, 1.0, np.nan]), t)
        f(np.array([-0.0, 1.0, 0.5]), t)


def test_pos_weight_errors():
    z = np.zeros((4, 3))
    t = np.ones((4, 3))
    for f in (mlkern.binary_cross_entropy_with_logits, mlkern.binary_cross_entropy_with_logits_grad,
              mlkern.binary_cross_entropy_with_logits_with_grad):
        for pw in (np.ones(4), np.ones(2), np.ones((3, 3)), np.ones((4, 3, 1)).reshape(1, 4, 3, 1)):
            with pytest.raises(ValueError, match="pos_weight"):
                f(z, t, pos_weight=pw)
        with pytest.raises(TypeError, match="pos_weight"):
            f(z, t, pos_weight=np.ones(3, complex))
        f(z, t, pos_weight=np.ones((4, 1)))
        f(z, t, pos_weight=np.ones((1, 3)))
        f(z, t, pos_weight=2)


def test_inputs_not_modified():
    rng = np.random.default_rng(85)
    for case in CASES:
        p, t = case.data(rng, (4, 3))
        sw = _sw(rng, 4)
        pc, tc, swc = p.copy(), t.copy(), sw.copy()
        for red in case.reductions:
            run3(case, p, t, reduction=red, sample_weight=sw)
        assert same(p, pc) and same(t, tc) and same(sw, swc), case.id


# ================================================================ nll_loss
NLL_FUNCS = ("nll_loss", "nll_loss_grad", "nll_loss_with_grad")


def _log_probs(seed, shape, axis=-1, dtype=np.float64):
    rng = np.random.default_rng(seed)
    z = 2.0 * rng.standard_normal(shape)
    m = z.max(axis=axis, keepdims=True)
    lp = z - m - np.log(np.sum(np.exp(z - m), axis=axis, keepdims=True))
    return lp.astype(dtype)


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
    loss = mlkern.nll_loss(lp, lab, axis, **kw)
    grad = mlkern.nll_loss_grad(lp, lab, axis, **kw)
    lw, gw = mlkern.nll_loss_with_grad(lp, lab, axis, **kw)
    assert same_loss(np.asarray(lw), np.asarray(loss)) and type(lw) is type(loss), "nll_loss_with_grad[0] != nll_loss"
    assert same(gw, grad), "nll_loss_with_grad[1] != nll_loss_grad"
    return loss, grad


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
    assert mlkern.nll_loss_grad(lp, lab, sample_weight=s, out=o) is o and same(o, G)
    x = lp.copy()
    L, g = mlkern.nll_loss_with_grad(x, lab, sample_weight=s, out=x)
    assert g is x and same(x, G) and L == mlkern.nll_loss(lp, lab, sample_weight=s)
    with pytest.raises(ValueError, match="out"):
        mlkern.nll_loss_grad(lp, lab, out=np.empty((5, 6)))
    with pytest.raises(TypeError, match="out"):
        mlkern.nll_loss_grad(lp, lab, out=np.empty((6, 5), np.float32))
    for name, v in _layouts(lp):
        c = v.copy()
        l1, g1 = mlkern.nll_loss_with_grad(v, lab, sample_weight=s)
        assert same(v, c)
        np.testing.assert_allclose(l1, L, rtol=1e-14)
        np.testing.assert_allclose(g1, G, rtol=4 * EPS[F64], atol=0, err_msg=name)
    # non-contiguous labels and sample weights; other label dtypes; lists
    big = np.zeros(12, np.int64)
    big[::2] = lab
    sb = np.zeros(12)
    sb[::2] = s
    assert mlkern.nll_loss(lp, big[::2], sample_weight=sb[::2]) == pytest.approx(L, rel=1e-14)
    for dt in (np.int8, np.int32, np.uint8, np.uint64):
        assert same(mlkern.nll_loss(lp, lab.astype(dt), reduction="none"), mlkern.nll_loss(lp, lab, reduction="none"))
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


# ================================================================ kl_div
KL_FUNCS = ("kl_div", "kl_div_grad", "kl_div_with_grad")


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


def run_kl(p, q, axis=-1, **kw):
    loss = mlkern.kl_div(p, q, axis, **kw)
    grad = mlkern.kl_div_grad(p, q, axis, **kw)
    lw, gw = mlkern.kl_div_with_grad(p, q, axis, **kw)
    assert same_loss(np.asarray(lw), np.asarray(loss)) and type(lw) is type(loss), "kl_div_with_grad[0] != kl_div"
    assert same(gw, grad), "kl_div_with_grad[1] != kl_div_grad"
    return loss, grad


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
        assert same(a, ac) and same(b, bc), "kl_div modified an input"
        np.testing.assert_allclose(l1, L, rtol=1e-14)
        np.testing.assert_allclose(g1, G, rtol=4 * EPS[F64], atol=0, err_msg=f"{n1}/{n2}")
    o = np.empty_like(q)
    assert mlkern.kl_div_grad(p, q, out=o) is o and same(o, G)
    x = q.copy()
    l2, g2 = mlkern.kl_div_with_grad(p, x, out=x)
    assert g2 is x and same(x, G) and l2 == L


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


# ================================================================ penalties
def _pen(kind):
    return fn(kind + "_penalty"), fn(kind + "_penalty_grad")


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
    assert g(w, 0.7, out=o) is o and same(o, G)
    x = w.copy()
    assert g(x, 0.7, out=x) is x and same(x, G)
    s = np.empty(6)[::2]
    assert g(w, 0.7, out=s) is s and same(s, G)
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
        assert f(v, 0.3) == pytest.approx(L0, rel=1e-14) and same(v, c)
        np.testing.assert_allclose(g(v, 0.3), G0, rtol=2 * EPS[F64], atol=0, err_msg=name)


# ================================================================ nll / kl / penalties: threads
def test_threads_bit_identical_nll_kl_penalties():
    rng = np.random.default_rng(111)
    n, C = 100_000, 10
    lp = _log_probs(111, (n, C))
    lab = rng.integers(0, C, n)
    lab[::7] = -100
    w = rng.uniform(0.5, 2.0, C)
    s = rng.uniform(0.0, 2.0, n)
    p = _simplex(112, (n, C), zeros=0.1)
    q = _simplex(113, (n, C))
    W = rng.standard_normal(10 ** 6)
    calls = []
    for red in REDUCTIONS:
        for kw in ({}, {"weight": w, "sample_weight": s}):
            calls.append((f"nll {red} {list(kw)}", lambda red=red, kw=kw: (
                mlkern.nll_loss(lp, lab, reduction=red, **kw), *mlkern.nll_loss_with_grad(lp, lab, reduction=red, **kw),
                mlkern.nll_loss_grad(lp, lab, reduction=red, **kw))))
        for kw in ({}, {"sample_weight": s}, {"log_q": True}):
            qq = np.log(q) if kw.get("log_q") else q
            calls.append((f"kl {red} {list(kw)}", lambda red=red, kw=kw, qq=qq: (
                mlkern.kl_div(p, qq, reduction=red, **kw), *mlkern.kl_div_with_grad(p, qq, reduction=red, **kw),
                mlkern.kl_div_grad(p, qq, reduction=red, **kw))))
    for kind in ("l1", "l2"):
        f, g = _pen(kind)
        calls.append((kind, lambda f=f, g=g: (f(W, 0.3), g(W, 0.3))))
    for what, call in calls:
        with mlkern.threads(1):
            a = call()
        with mlkern.threads(2):
            b = call()
        for x, y in zip(a, b):
            assert same(np.asarray(x), np.asarray(y)), f"{what}: differs between 1 and 2 threads"
    # the values of the big inputs
    L, _, lt, _ = nll_ref(lp, lab, weight=w, sample_weight=s)
    assert_close(mlkern.nll_loss(lp, lab, weight=w, sample_weight=s), L, lt, F64, what="nll 10^6")
    L, _, lt, _ = kl_ref(p, q)
    assert_close(mlkern.kl_div(p, q), L, lt, F64, what="kl 10^6")
    L, _, lt, _ = penalty_ref("l2", W, 0.3)
    assert_close(mlkern.l2_penalty(W, 0.3), L, lt, F64, what="l2_penalty 10^6")
    W32 = W.astype(np.float32)
    L, _, lt, _ = penalty_ref("l1", W32, 0.3)
    assert_close(mlkern.l1_penalty(W32, 0.3), L, lt, F32, what="l1_penalty float32 10^6")


# ================================================================ hypothesis
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

    @st.composite
    def pw_inputs(draw, case):
        dt = np.dtype(draw(st.sampled_from(DTYPES)))
        shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5))
        bce = case.name == "binary_cross_entropy"
        logits = case.name == "binary_cross_entropy_with_logits"
        pk = "prob" if bce else "any"
        tk = "unit" if (bce or logits) and draw(st.booleans()) else "any"
        p = draw(hnp.arrays(dt, shape, elements=_elements(dt, pk)))
        if bce and draw(st.integers(0, 9)) == 0 and p.size:
            # an out-of-range probability somewhere
            p.flat[draw(st.integers(0, p.size - 1))] = draw(st.sampled_from(
                [1.5, -0.5, math.inf, -math.inf, 1.0 + float(np.finfo(dt).eps), -float(np.finfo(dt).tiny)]))
        t = draw(hnp.arrays(dt, shape, elements=_elements(dt, "unit" if bce else tk)))
        red = draw(st.sampled_from(case.reductions))
        sw = None
        if len(shape) >= 1 and draw(st.booleans()):
            # zero or normal-sized weights (a subnormal weight times BCE's 1e12
            # gradient shows the weight's own rounding, not the loss's)
            sw = draw(hnp.arrays(np.float64, shape[0], elements=st.one_of(st.just(0.0), st.floats(1e-3, 10.0))))
            if sw.size:
                sw[0] = max(sw[0], 0.5)      # a positive weight sum (0/0 is not in the contract)
        return p, t, red, sw

    def _safe_positions(case, p, t, red, sw):
        """Positions where the value comparison is meaningful: finite inputs and
        every intermediate of the reference far from the dtype's overflow."""
        cdt, rdt = _dtypes(p)
        big = float(np.finfo(rdt).max) / 64
        kw = case.kw(np.shape(p))
        pw = kw.get("pos_weight")
        l, g, ml, mg = pw_terms(case.name, p.astype(np.float64), t.astype(np.float64),
                                delta=kw.get("delta", 1.0), pos_weight=pw)
        W = _bcast_w(sw, np.shape(p))
        with np.errstate(all="ignore"):
            vals = [np.abs(p.astype(np.float64)), np.abs(t.astype(np.float64)),
                    np.abs(p.astype(np.float64) - t.astype(np.float64)),
                    W * ml, W * mg, np.abs(g), ml]
            ok = np.ones(np.shape(p), bool)
            for v in vals:
                ok &= np.isfinite(v) & (v <= big)
        return ok, W, ml

    def hyp_check_pointwise(case, p, t, red, sw):
        kw = {"reduction": red, "sample_weight": sw}
        cdt, rdt = _dtypes(p)
        if case.name == "binary_cross_entropy":
            pf = p.astype(np.float64)
            if np.any(~np.isnan(pf) & ((pf < 0) | (pf > 1))):
                for f in (case.f, case.grad, case.with_grad):
                    with pytest.raises(ValueError, match="prob"):
                        f(p, t, **kw)
                return
        with np.errstate(all="ignore"):
            loss, grad = run3(case, p, t, **kw)
        what = f"{case.id} {rdt} {p.shape} {red} sw={sw}"
        check_loss_type(loss, rdt, red, p.shape, what)
        check_grad_type(grad, rdt, p.shape, what)
        nan_in = np.isnan(p) | np.isnan(t)
        # NaN in, NaN out at that position
        if nan_in.any():
            assert np.isnan(np.asarray(grad)[nan_in]).all(), f"{what}: gradient at a NaN input not NaN"
            if red == "none":
                assert np.isnan(np.asarray(loss)[nan_in]).all(), f"{what}: loss at a NaN input not NaN"
            else:
                assert np.isnan(loss), f"{what}: loss {loss!r} with a NaN input"
        ok, W, ml = _safe_positions(case, p, t, red, sw)
        if case.name == "rmse":
            if not ok.all():
                return
            # the root of an underflowed mean is not comparable (0 or the tiny root)
            m = np.sum(W * ml) / max(np.sum(W), 1e-300)
            if p.size and not (m > float(np.finfo(cdt).tiny) * 2 ** 30):
                return
        L, G, lt, gt = case.expected(p, t, red, sw)
        if red == "none":
            assert_close(loss, L, lt, rdt, what=what + " loss", mask=ok)
        elif ok.all() and np.sum(W * ml) <= float(np.finfo(rdt).max) / 64:
            assert_close(loss, L, lt, rdt, what=what + " loss")
        if ok.all() or case.name != "rmse":
            assert_close(grad, G, gt, rdt, what=what + " grad", mask=ok)

    HYP = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))

    @pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
    def test_hypothesis_pointwise(case):
        @HYP
        @given(pw_inputs(case))
        def inner(args):
            hyp_check_pointwise(case, *args)
        inner()

    FINITE_CASES = [c for c in CASES if c.name in ("mse", "mae", "huber", "binary_cross_entropy_with_logits")]

    @pytest.mark.parametrize("case", FINITE_CASES, ids=[c.id for c in FINITE_CASES])
    def test_hypothesis_finite_in_finite_out(case):
        """float64, finite inputs whose intermediate values are representable:
        every loss and gradient is finite (no overflow, no inf - inf, no 0 * inf)."""
        bound = 1e150 if case.name == "mse" else 1e300
        logits = case.name == "binary_cross_entropy_with_logits"
        fin = st.one_of(st.floats(-bound, bound), st.floats(-40, 40),
                        st.sampled_from([0.0, -0.0, 5e-324, -5e-324, 2.2250738585072014e-308, bound, -bound]))
        tel = st.one_of(st.floats(0.0, 1.0), st.sampled_from([0.0, 1.0])) if logits else fin

        @HYP
        @given(shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=5), data=st.data())
        def inner(shape, data):
            p = data.draw(hnp.arrays(np.float64, shape, elements=fin))
            t = data.draw(hnp.arrays(np.float64, shape, elements=tel))
            sw = data.draw(st.one_of(st.none(), hnp.arrays(np.float64, shape[0], elements=st.floats(0.5, 2.0)))) \
                if len(shape) else None
            red = data.draw(st.sampled_from(case.reductions))
            loss, grad = run3(case, p, t, reduction=red, sample_weight=sw)
            assert np.isfinite(loss).all(), f"{case.id} {red}: loss {loss!r}\n p={p!r}\n t={t!r}"
            assert np.isfinite(grad).all(), f"{case.id} {red}: grad {grad!r}\n p={p!r}\n t={t!r}"
        inner()

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


# the pointwise losses' one-call fast path (C-contiguous float arrays of one
# dtype and shape, no weights, no out=) against the full path, which a list
# target, or an F-ordered pair, takes: bit-identical
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 7, 2048, 2049, 10000])
@pytest.mark.parametrize("name,kw", [("mse", {}), ("mae", {}), ("huber", {"delta": 0.7}),
                                     ("quadratic_cost", {}), ("l1_loss", {}), ("l2_loss", {}),
                                     ("binary_cross_entropy", {}),
                                     ("binary_cross_entropy_with_logits", {}),
                                     ("binary_cross_entropy_with_logits", {"pos_weight": 2.5}),
                                     ("binary_cross_entropy_with_logits", {"pos_weight": 3})])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_pointwise_fast_path_equals_full_path(dtype, n, name, kw, reduction):
    if not hasattr(mlkern, name):
        pytest.skip(f"no {name}")
    rng = np.random.default_rng(n)
    if name == "binary_cross_entropy":
        p = rng.uniform(0, 1, n).astype(dtype)
    else:
        p = (2 * rng.standard_normal(n)).astype(dtype)
    t = rng.uniform(0, 1, n).astype(dtype)
    if "reduction" in inspect.signature(getattr(mlkern, name)).parameters:
        kw = dict(kw, reduction=reduction)
    elif reduction == "sum":
        pytest.skip("no reduction argument")
    f, fg, fwg = (getattr(mlkern, name), getattr(mlkern, name + "_grad"),
                  getattr(mlkern, name + "_with_grad"))
    a, b = f(p, t, **kw), f(p, t.tolist(), **kw)
    # (same_loss: the sanitizer build's loop peeling depends on the alignment)
    assert type(a) is type(b) and a.dtype == dtype and same_loss(a, b)
    ga, gb = fg(p, t, **kw), fg(p, t.tolist(), **kw)
    assert same(ga, gb) and ga.dtype == dtype
    la, gwa = fwg(p, t, **kw)
    assert same_loss(la, a) and same(gwa, ga)
    # 0-d: NumPy scalars, as the full path gives
    l0, g0 = fwg(p[0].reshape(()), t[0].reshape(()), **kw)
    assert isinstance(l0, np.generic) and isinstance(g0, np.generic) and g0.dtype == dtype
    # a 2-D F-ordered pair takes the full path too
    if n == 10000:
        pf, tf = np.asfortranarray(p.reshape(100, 100)), np.asfortranarray(t.reshape(100, 100))
        pc, tc = np.ascontiguousarray(pf), np.ascontiguousarray(tf)
        np.testing.assert_allclose(f(pf, tf, **kw), f(pc, tc, **kw), rtol=1e-6 if dtype == np.float32 else 1e-13)


# the fast paths with out=: a direct array (fresh, the input itself) is
# written by the kernel; anything else (F-ordered, partially overlapping,
# wrong dtype) takes the full path -- the same values or the same error
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("where", ["fresh", "pred", "target", "F", "overlap", "wrong-dtype"])
def test_fast_paths_with_out(dtype, where):
    rng = np.random.default_rng(11)
    p = rng.standard_normal((40, 6)).astype(dtype)
    t = rng.standard_normal((40, 6)).astype(dtype)
    lab = rng.integers(0, 6, 40)
    want_m = mlkern.mse_with_grad(p, t)
    want_x = mlkern.cross_entropy_with_grad(p, lab)

    def make(base):
        if where == "fresh":
            return np.empty_like(base)
        if where == "pred":
            return base
        if where == "target":
            return t
        if where == "F":
            return np.empty(base.shape, base.dtype, order="F")
        return np.empty(base.shape, np.float16)

    for f, want, args in ((mlkern.mse_with_grad, want_m, lambda q: (q, t.copy())),
                          (mlkern.cross_entropy_with_grad, want_x, lambda q: (q, lab))):
        if where == "target" and f is mlkern.cross_entropy_with_grad:
            continue
        q = p.copy()
        if where == "overlap":            # out one element before pred in the same buffer
            buf = np.empty(p.size + 1, dtype)
            buf[1:] = p.reshape(-1)
            q = buf[1:].reshape(p.shape)
        a = args(q)
        if where == "overlap":
            o = buf[:-1].reshape(p.shape)
        elif where == "target":
            o = a[1]
        else:
            o = make(q)
        if where == "wrong-dtype":
            with pytest.raises(TypeError, match="out"):
                f(*a, out=o)
            continue
        loss, g = f(*a, out=o)
        assert g is o
        assert loss == want[0]
        np.testing.assert_array_equal(g, want[1])
