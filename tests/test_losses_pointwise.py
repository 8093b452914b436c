"""The pointwise losses (docs/contract.rst, "Losses"): mse, rmse, mae, l1_loss, l2_loss,
quadratic_cost, huber, binary_cross_entropy, binary_cross_entropy_with_logits,
each with ``_grad`` and ``_with_grad``: values against the float64 references
(tests/reference.py, ``pw_terms``), closed forms, mpmath for the extreme
logits of scikit-learn's HalfBinomialLoss table, torch.nn.functional when
installed, finite differences, empty/NaN/inf, dtypes, layouts, out=, threads,
argument errors, hypothesis, and the one-call fast path.
Error budget: see tests/loss_checks.py.
"""
import inspect
import math

import numpy as np
import pytest

import mlkern
from loss_checks import (
    assert_close, assert_fd, _both, check_grad_type, check_loss_type, DT_IDS, DTYPES, _dtypes,
    _elements, EPS, F16, F32, F64, fn, HYP, K, _layouts, REDUCTIONS, _report, same_array, same_loss,
    SOFTPLUS_M37, _torch,
)
from reference import _bcast_w, pw_expected, pw_terms, _sigmoid, _softplus

try:
    from hypothesis import given, strategies as st
    import hypothesis.extra.numpy as hnp
    HAVE_HYPOTHESIS = True
except ImportError:  # pragma: no cover
    HAVE_HYPOTHESIS = False


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
    assert same_array(gw, grad), f"{case.id} {kw.get('reduction')}: with_grad grad != f_grad"
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
    assert same_array(case.f(p, t), case.f(p, t, reduction=d)), f"{case.id}: default reduction is not {d!r}"
    assert same_array(case.grad(p, t), case.grad(p, t, reduction=d))
    a, b = case.with_grad(p, t), case.with_grad(p, t, reduction=d)
    assert same_array(a[0], b[0]) and same_array(a[1], b[1])


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
                assert same_array(p, pc) and same_array(t, tc) and same_array(sw, swc), f"{what}: an input was modified"
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
            assert same_array(o, G2), f"{case.id} {red} out={name}: values differ"
            o2 = np.full_like(o, np.nan)
            o2 = o2 if name != "strided" else np.full((5, 8), np.nan, dt)[:, ::2]
            lw, gw = case.with_grad(p, t, out=o2, **kw)
            assert gw is o2 and same_array(gw, G) and same_array(np.asarray(lw), np.asarray(L)), \
                f"{case.id} {red} with_grad out={name}"
        # in place: out = pred
        for f in ("grad", "with_grad"):
            x = p.copy()
            r = getattr(case, f)(x, t, out=x, **kw)
            g = r if f == "grad" else r[1]
            assert g is x, f"{case.id} {f}: out=pred not returned"
            assert same_array(x, G), f"{case.id} {red} {f}: in-place gradient differs"
            if f == "with_grad":
                assert same_array(np.asarray(r[0]), np.asarray(L)), f"{case.id} {red}: in-place loss differs"
        # out = target (aliasing the other input)
        y = t.copy()
        g = case.grad(p, y, out=y, **kw)
        assert g is y and same_array(y, G), f"{case.id} {red}: out=target differs"


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
                    assert same_array(np.asarray(a), np.asarray(b)), \
                        f"{case.id} {np.dtype(dt)} {red} sw={w is not None}: {what} differs, 1 vs {n} threads"
            if red == "mean" and w is not None:
                L, _, lt, _ = case.expected(p, t, red, w)
                assert_close(res[1][0], L, lt, np.dtype(dt), what=f"{case.id} 10^6 {red} loss")


# ================================================================ pointwise: validation
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
        assert same_array(p, pc) and same_array(t, tc) and same_array(sw, swc), case.id


# ================================================================ hypothesis
if HAVE_HYPOTHESIS:
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
    assert same_array(ga, gb) and ga.dtype == dtype
    la, gwa = fwg(p, t, **kw)
    assert same_loss(la, a) and same_array(gwa, ga)
    # 0-d: NumPy scalars, as the full path gives
    l0, g0 = fwg(p[0].reshape(()), t[0].reshape(()), **kw)
    assert isinstance(l0, np.generic) and isinstance(g0, np.generic) and g0.dtype == dtype
    # a 2-D F-ordered pair takes the full path too
    if n == 10000:
        pf, tf = np.asfortranarray(p.reshape(100, 100)), np.asfortranarray(t.reshape(100, 100))
        pc, tc = np.ascontiguousarray(pf), np.ascontiguousarray(tf)
        np.testing.assert_allclose(f(pf, tf, **kw), f(pc, tc, **kw), rtol=1e-6 if dtype == np.float32 else 1e-13)
