"""Values, derivatives and backward of every elementwise activation against
the independent reference (tests/reference.py), in the tails against
mpmath, and every derivative against 4th-order central finite differences.
"""
import math
import warnings

import mpmath
import numpy as np
import pytest
import scipy.stats

import mlkern
import reference as R
from conftest import CASES, CASES_BY_ID, CASE_IDS, MP_CASES, FLOAT_DTYPES, CALLABLES, CALLABLE_IDS, random_x

EPS = {np.dtype(np.float32): float(np.finfo(np.float32).eps),
       np.dtype(np.float64): float(np.finfo(np.float64).eps)}
# random-input budgets against the float64 NumPy reference: float64 ~ rtol 1e-14
# (40 ULP, the reference itself is good to a few ULP), float32 a few ULP.
RANDOM_ULP = {np.dtype(np.float32): 4.0, np.dtype(np.float64): 40.0}
# mpmath-truth budgets in the tails (the contract for the activations)
TAIL_ULP = {np.dtype(np.float32): 3.0, np.dtype(np.float64): 2.0}

mpmath.mp.dps = 40


def _report(mask, **cols):
    idx = np.flatnonzero(~np.asarray(mask).ravel())[:8]
    lines = []
    for i in idx:
        lines.append(", ".join(f"{k}={np.asarray(v).ravel()[i]!r}" for k, v in cols.items()))
    return f"{(~np.asarray(mask)).sum()} mismatches, e.g.\n  " + "\n  ".join(lines)


def assert_ulp(y, ref64, x, dtype, budget, cond=None, mag=None, what=""):
    """y (dtype) within budget*cond ULP of the float64 reference, or within a
    few eps of `mag` (the size of cancelling summands) in absolute terms."""
    dtype = np.dtype(dtype)
    y = np.asarray(y)
    assert y.dtype == dtype, (what, y.dtype)
    err = R.ulp_error_array(y, ref64, dtype)
    allowed = budget * (np.ones_like(err) if cond is None else np.asarray(cond, np.float64))
    ok = err <= allowed
    if mag is not None:
        with np.errstate(all="ignore"):
            ok |= np.abs(y.astype(np.float64) - ref64) <= 8 * EPS[dtype] * np.asarray(mag)
    assert ok.all(), f"{what}: " + _report(ok, x=x, y=y, ref=ref64, ulp=err)


# ---------------------------------------------------------------- 1. vs reference
@pytest.mark.parametrize("wide", [False, True], ids=["3N(0,1)", "wide"])
@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_forward_vs_reference(case, dtype, wide, rng):
    x = random_x(rng, 4000, dtype, wide)
    y = case.f(x)
    x64 = x.astype(np.float64)
    assert_ulp(y, case.r(x64), x, dtype, RANDOM_ULP[np.dtype(dtype)], cond=case.c(x64), what=case.id)


@pytest.mark.parametrize("wide", [False, True], ids=["3N(0,1)", "wide"])
@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_grad_vs_reference(case, dtype, wide, rng):
    x = random_x(rng, 4000, dtype, wide)
    g = case.grad(x)
    x64 = x.astype(np.float64)
    assert_ulp(g, case.rg(x64), x, dtype, RANDOM_ULP[np.dtype(dtype)], cond=case.c(x64),
               mag=case.mag(x64), what=case.id + "_grad")


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_backward_is_g_times_derivative_of_saved(case, dtype, rng):
    """f_backward(g, saved) == g * f'(from saved), to rounding (the fused product)."""
    dt = np.dtype(dtype)
    x = random_x(rng, 4000, dtype, wide=True)
    g = rng.standard_normal(x.size).astype(dtype)
    s = case.saved_of(x)
    b = case.backward(g, s)
    assert b.dtype == dt and b.shape == x.shape
    s64 = np.asarray(s, np.float64)
    d = case.rg_saved(s64)
    ref = g.astype(np.float64) * d
    mag = np.abs(g.astype(np.float64)) * (case.mag(s64) if case.saved == "x" else np.abs(d) + 1.0)
    assert_ulp(b, ref, x, dtype, RANDOM_ULP[dt] / 4 + 2, cond=case.c(s64) if case.saved == "x" else None,
               mag=mag, what=case.id + "_backward")


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_backward_equals_g_times_grad(case, dtype, rng):
    """f_backward(g, saved(x)) == g * f'(x): exact relation for x-saved
    functions, to a few eps absolute (the derivative recovered from y) for
    the y-saved ones."""
    dt = np.dtype(dtype)
    x = random_x(rng, 4000, dtype)
    g = rng.standard_normal(x.size).astype(dtype)
    b = case.backward(g, case.saved_of(x)).astype(np.float64)
    x64 = x.astype(np.float64)
    ref = g.astype(np.float64) * case.rg(x64)
    scale = max(1.0, case.params.get("alpha", 1.0))
    tol = 8 * EPS[dt] * (np.abs(ref) + np.abs(g) * (scale if case.saved == "y" else case.mag(x64)))
    if case.saved == "x":
        tol = tol * case.c(x64)
    ok = np.abs(b - ref) <= tol
    assert ok.all(), _report(ok, x=x, g=g, backward=b, ref=ref)


# ---------------------------------------------------------------- 2. tails
TAIL64 = [0.0, -0.0, 5e-324, -5e-324, 1e-310, -1e-310, 1e-300, -1e-300, 1e-20, -1e-20, 1e-8, -1e-8,
          0.5, -0.5, 1.0, -1.0, 5.0, -5.0, 18.0, -18.0, 30.0, -30.0, 37.0, -37.0, 37.5, -37.5,
          38.5, -38.5, 88.0, -88.0, 89.0, -89.0, 232.8, -232.8, 709.0, -709.0, 710.0, -710.0,
          740.0, -740.0, 745.0, -745.0, 1000.0, -1000.0, 1e20, -1e20, 1e308, -1e308]
TAIL32 = [0.0, -0.0, 1e-45, -1e-45, 1e-40, -1e-40, 1e-30, -1e-30, 1e-8, -1e-8, 0.5, -0.5, 1.0, -1.0,
          5.0, -5.0, 9.0, -9.0, 10.0, -10.0, 13.0, -13.0, 17.0, -17.0, 30.0, -30.0, 37.0, -37.0,
          88.0, -88.0, 89.0, -89.0, 103.0, -103.0, 104.0, -104.0, 1000.0, -1000.0, 1e20, -1e20,
          3e38, -3e38]
TAILS = {np.dtype(np.float64): np.array(TAIL64), np.dtype(np.float32): np.array(TAIL32, np.float32)}


# Points where an earlier build disagreed with the contract, pinned one by one
# as regression tests (they are also in the grouped tail tests).
# (case id, dtype, kind, x) -> what went wrong
_SILU_HUGE = ("silu(x) for huge negative x returns a tiny nonzero value (float32) or "
              "garbage/NaN (float64) instead of the limit -0.0: the e == 0 guard fails")
_SILU_GRAD_SUB = ("silu_grad with a subnormal result: s = sigmoid(z) is rounded to the "
                  "subnormal grid first and then multiplied by (1 + z(1-s)) ~ z, so the "
                  "result is off by ~|z|/2 subnormal ULPs")
_SOFTPLUS_OVF = "softplus(x, beta=2) overflows in beta*x: inf for a finite true value ~ x"
KNOWN_TAIL = {}
for _id in ("silu", "swish"):
    for _x in (-103.0, -104.0):
        KNOWN_TAIL[(_id, "float32", "grad", _x)] = _SILU_GRAD_SUB
    for _x in (-740.0, -745.0):
        KNOWN_TAIL[(_id, "float64", "grad", _x)] = _SILU_GRAD_SUB
KNOWN_TAIL[("softplus[beta=2]", "float32", "f", float(np.float32(3e38)))] = _SOFTPLUS_OVF
KNOWN_TAIL[("softplus[beta=2]", "float64", "f", 1e308)] = _SOFTPLUS_OVF

# per-kind budgets in the tails: the values at the contract's activation budget,
# the derivatives (sums of two terms) at 4 ULP or a few eps of their summands
TAIL_GRAD_ULP = {np.dtype(np.float32): 4.0, np.dtype(np.float64): 4.0}


def _mp_check(case, xs, y, kind, dtype):
    fn = case.mp if kind == "f" else case.mp_grad
    budget = (TAIL_ULP if kind == "f" else TAIL_GRAD_ULP)[dtype]
    x64 = xs.astype(np.float64)
    cond = case.c(x64)
    mag = case.mag(x64) if kind == "grad" else None
    bad = []
    for i, (x, v) in enumerate(zip(x64, y)):
        ref = fn(mpmath.mpf(float(x)))
        e = R.ulp_error(float(v), ref, dtype)
        if e <= budget * cond[i]:
            continue
        if mag is not None and math.isfinite(float(v)) and \
                abs(mpmath.mpf(float(v)) - ref) <= 8 * EPS[dtype] * mag[i]:
            continue
        bad.append((float(x), float(v), mpmath.nstr(ref, 17), e))
    return bad


@pytest.mark.parametrize("kind", ["f", "grad"])
@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("case", MP_CASES, ids=[c.id for c in MP_CASES])
def test_tails_vs_mpmath(case, dtype, kind):
    dt = np.dtype(dtype)
    xs = TAILS[dt]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(all="raise"):
            y = case.f(xs) if kind == "f" else case.grad(xs)
    assert y.dtype == dt
    bad = _mp_check(case, xs, y, kind, dt)
    assert not bad, f"{case.id} {kind}: (x, mlkern, mpmath, ulp) = {bad}"


@pytest.mark.parametrize("key", [pytest.param(k, id=f"{k[0]}-{k[1]}-{k[2]}({k[3]:g})")
                                 for k in KNOWN_TAIL])
def test_known_tail_regressions(key):
    case_id, dtname, kind, x = key
    case = CASES_BY_ID[case_id]
    dt = np.dtype(dtname)
    xs = np.array([x], dt)
    y = case.f(xs) if kind == "f" else case.grad(xs)
    ref = (case.mp if kind == "f" else case.mp_grad)(mpmath.mpf(x))
    budget = (TAIL_ULP if kind == "f" else TAIL_GRAD_ULP)[dt] * case.c(xs.astype(np.float64))[0]
    e = R.ulp_error(float(y[0]), ref, dt)
    assert e <= budget, f"{case_id} {kind}({x!r}) = {y[0]!r}, mpmath {mpmath.nstr(ref, 17)}, {e} ULP"
    if kind == "f" and float(ref) == 0.0:
        assert np.signbit(y[0]) == (x < 0)


@pytest.mark.parametrize("kind", ["f", "grad", "backward"])
@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_tails_no_warnings_and_reference(case, dtype, kind):
    """Extreme finite inputs and +-inf: no FP warnings, no NaN, the limit."""
    dt = np.dtype(dtype)
    xs = np.concatenate([TAILS[dt], np.array([np.inf, -np.inf], dt)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(all="raise"):
            if kind == "f":
                y = case.f(xs)
            elif kind == "grad":
                y = case.grad(xs)
            else:
                y = case.backward(np.ones_like(xs), case.saved_of(xs))
    assert not np.isnan(y).any(), f"{case.id} {kind}: NaN at x={xs[np.isnan(y)]}"
    x64 = xs.astype(np.float64)
    if kind == "f":
        ref = case.r(x64)
    elif kind == "grad":
        ref = case.rg(x64)
    else:
        ref = case.rg_saved(np.asarray(case.saved_of(xs), np.float64))
    fin = np.isfinite(xs)
    # limits at +-inf exactly
    refd = ref[~fin].astype(dt)
    inf_ok = (y[~fin] == refd) | (np.isnan(refd) & np.isnan(y[~fin]))
    assert inf_ok.all(), f"{case.id} {kind} at +-inf: got {y[~fin]}, expected {ref[~fin]}"


def _pin(fn, x, dtype=np.float64, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(all="raise"):
            return fn(np.array([x], dtype=dtype), **kw)[0]


PINNED = [
    # (function, x, expected, check sign bit) -- expected values from mpmath
    ("sigmoid", -1000.0, 0.0, True), ("sigmoid", 1000.0, 1.0, False),
    ("sigmoid", -np.inf, 0.0, False), ("sigmoid", np.inf, 1.0, False),
    ("sigmoid_grad", np.inf, 0.0, False), ("sigmoid_grad", -np.inf, 0.0, False),
    ("softplus", -30.0, 9.357622968839737e-14, False), ("softplus", 1000.0, 1000.0, False),
    ("softplus", np.inf, np.inf, False), ("softplus", -np.inf, 0.0, False),
    ("softplus", -1000.0, 0.0, False),
    ("softplus_grad", np.inf, 1.0, False), ("softplus_grad", -np.inf, 0.0, False),
    ("log_sigmoid", -1000.0, -1000.0, False), ("log_sigmoid", -np.inf, -np.inf, False),
    ("log_sigmoid", np.inf, 0.0, False), ("log_sigmoid", 1000.0, 0.0, False),
    ("log_sigmoid", 30.0, -9.357622968839737e-14, False),
    ("log_sigmoid_grad", -np.inf, 1.0, False), ("log_sigmoid_grad", np.inf, 0.0, False),
    ("silu", -1000.0, -0.0, True), ("silu", -np.inf, -0.0, True), ("silu", np.inf, np.inf, False),
    ("silu", 1000.0, 1000.0, False), ("silu", -0.0, -0.0, True),
    ("silu_grad", np.inf, 1.0, False), ("silu_grad", -np.inf, 0.0, False),
    ("swish", -np.inf, -0.0, True),
    ("tanh", np.inf, 1.0, False), ("tanh", -np.inf, -1.0, False), ("tanh", -0.0, -0.0, True),
    ("tanh", 1e308, 1.0, False), ("tanh", -1e308, -1.0, False), ("tanh", 5e-324, 5e-324, False),
    ("tanh_grad", np.inf, 0.0, False), ("tanh_grad", -np.inf, 0.0, False),
    ("tanh_grad", 1000.0, 0.0, False),
    ("gelu_grad", np.inf, 1.0, False), ("gelu_grad", -np.inf, 0.0, False),
    ("gelu", np.inf, np.inf, False), ("gelu", -np.inf, 0.0, False), ("gelu", -1000.0, 0.0, False),
    ("gelu", -0.0, -0.0, True),
    ("elu", -np.inf, -1.0, False), ("elu_grad", -np.inf, 0.0, False), ("elu", -0.0, -0.0, True),
    ("relu", -np.inf, 0.0, False), ("relu_grad", np.inf, 1.0, False), ("relu_grad", 0.0, 0.0, False),
    ("relu_grad", -0.0, 0.0, False),
    ("leaky_relu", -np.inf, -np.inf, False), ("leaky_relu_grad", -np.inf, 0.01, False),
]


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("name,x,expected,sign", PINNED, ids=[f"{p[0]}({p[1]})" for p in PINNED])
def test_pinned_values(name, x, expected, sign, dtype):
    dt = np.dtype(dtype)
    if np.isfinite(x) and abs(x) > np.finfo(dt).max:
        pytest.skip("not representable in this dtype")
    if dt == np.float32 and expected not in (0.0, 1.0, -1.0, np.inf, -np.inf) and abs(x) < 1e30 \
            and name not in ("leaky_relu_grad",):
        # float32 version of a finite non-trivial value: compare with the float64 value rounded
        if abs(expected) < 1e-30 and expected != 0.0:
            pytest.skip("float64-only value")
    y = _pin(getattr(mlkern, name), x, dt)
    assert y.dtype == dt
    exp = dt.type(expected)
    assert y == exp or (np.isnan(exp) and np.isnan(y)), f"{name}({x!r}) = {y!r}, expected {exp!r}"
    if sign:
        assert np.signbit(y) == np.signbit(exp), f"{name}({x!r}) = {y!r}: sign bit, expected {exp!r}"


def test_pinned_gelu_tanh():
    g = lambda x, **k: mlkern.gelu(x, approximate="tanh", **k)  # noqa: E731
    gg = lambda x, **k: mlkern.gelu_grad(x, approximate="tanh", **k)  # noqa: E731
    for dt in FLOAT_DTYPES:
        assert _pin(g, np.inf, dt) == np.inf
        assert _pin(g, -np.inf, dt) == 0.0
        assert _pin(gg, np.inf, dt) == 1.0
        assert _pin(gg, -np.inf, dt) == 0.0
        assert _pin(g, 0.0, dt) == 0.0


def test_sigmoid_subnormal_tail():
    """sigmoid(-740) is the subnormal true value (not 0), within an ulp of the grid."""
    for x in (-740.0, -744.0, -708.5, -720.25):
        y = _pin(mlkern.sigmoid, x)
        ref = R.mp_sigmoid(mpmath.mpf(x))
        assert y > 0
        assert abs(mpmath.mpf(float(y)) - ref) <= mpmath.mpf(2.0 ** -1074), (x, y, ref)
    y = _pin(mlkern.sigmoid, -100.0, np.float32)
    ref = R.mp_sigmoid(mpmath.mpf(-100))
    assert y > 0 and abs(mpmath.mpf(float(y)) - ref) <= mpmath.mpf(2.0 ** -149) * 1.5, (y, ref)


def test_softplus_pinned_against_mpmath():
    # mpmath: log1p(exp(-30)) -> 9.357622968839737e-14
    ref = mpmath.log1p(mpmath.exp(-30))
    assert float(ref) == 9.357622968839737e-14
    assert float(mlkern.softplus(-30.0)) == 9.357622968839737e-14


HUGE_NEG = [("silu", {}), ("silu", {"beta": 1.5}), ("gelu", {"approximate": "tanh"})]


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("name,params", HUGE_NEG, ids=["silu", "silu[beta=1.5]", "gelu[tanh]"])
def test_huge_negative_limit_is_minus_zero(name, params, dtype):
    """f(x) -> -0.0 for x -> -inf, also at finite huge x (silu(-1000) = -0.0)."""
    fi = np.finfo(dtype)
    x = np.array([-1e4, -1e10, -1e20, -1e30, -float(fi.max) / 10, -float(fi.max)], dtype)
    y = getattr(mlkern, name)(x, **params)
    assert np.array_equal(y, np.zeros_like(x)) and np.signbit(y).all(), f"{name}{params}({x}) = {y}"


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=["f32", "f64"])
def test_softplus_beta_no_intermediate_overflow(dtype):
    """Regression: """ + _SOFTPLUS_OVF + """."""
    fi = np.finfo(dtype)
    x = np.array([float(fi.max) / 1.5], dtype)
    assert mlkern.softplus(x, beta=2.0)[0] == x[0]


# ---------------------------------------------------------------- NaN positions
NAN_X = np.array([np.nan, -3.0, 0.5, np.nan, np.inf, -np.inf, 0.0, -0.0, 40.0, -40.0, np.nan, 1e-310])


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("name,fn", CALLABLES, ids=CALLABLE_IDS)
def test_nan_in_nan_out(name, fn, dtype):
    x = NAN_X.astype(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = fn(x)
    assert np.array_equal(np.isnan(y), np.isnan(x)), f"{name}: x={x}, y={y}"


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_nan_in_grad_output_or_saved(case, dtype):
    x = np.array([-2.0, -0.5, 0.0, 0.5, 2.0, -50.0, 50.0], dtype)
    s = np.asarray(case.saved_of(x))
    g = np.ones_like(x)
    gn = g.copy()
    gn[::2] = np.nan
    b = case.backward(gn, s)
    assert np.array_equal(np.isnan(b), np.isnan(gn)), f"NaN grad_output: {b}"
    sn = s.copy()
    sn[1::2] = np.nan
    b = case.backward(g, sn)
    assert np.array_equal(np.isnan(b), np.isnan(sn)), f"NaN saved: {b}"


def test_relu_grad_nan():
    assert np.isnan(mlkern.relu_grad(np.nan))
    assert np.isnan(mlkern.relu_grad(np.float32(np.nan)))
    assert np.isnan(mlkern.relu(np.nan))
    assert np.isnan(mlkern.relu_backward(np.nan, -1.0))      # NaN gradient is not silenced
    assert np.isnan(mlkern.relu_backward(1.0, np.nan))
    assert np.isnan(mlkern.noisy_relu_backward(1.0, np.nan))


# ---------------------------------------------------------------- 3. finite differences
def _h(x):
    return np.exp2(np.round(np.log2(1e-3 * np.maximum(1.0, np.abs(x)))))


def fd4(f, x):
    h = _h(x)
    return (f(x - 2 * h) - 8 * f(x - h) + 8 * f(x + h) - f(x + 2 * h)) / (12 * h), h


def _fd_points(case, rng, n=600):
    x = np.concatenate([3.0 * rng.standard_normal(n), rng.uniform(-12, 12, n // 3)])
    h = _h(x)
    keep = np.ones(x.size, bool)
    for k in case.kinks:
        keep &= np.abs(x - k) > 6 * h
    return x[keep]


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_grad_vs_finite_differences(case, rng):
    x = _fd_points(case, rng)
    fd, h = fd4(case.f, x)
    g = case.grad(x)
    fx = np.abs(case.f(x))
    atol = 1e-10 * (1.0 + fx / np.maximum(1.0, np.abs(x)))
    ok = np.abs(g - fd) <= 5e-6 * np.abs(fd) + atol
    assert ok.all(), _report(ok, x=x, grad=g, fd=fd)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_backward_vs_finite_differences(case, rng):
    """d/dx_i sum(g * f(x)) = g_i f'(x_i) = f_backward(g, saved)_i."""
    x = _fd_points(case, rng)
    g = rng.standard_normal(x.size)
    fd, h = fd4(lambda t: g * case.f(t), x)
    b = case.backward(g, case.saved_of(x))
    fx = np.abs(g * case.f(x))
    atol = 1e-10 * (1.0 + fx / np.maximum(1.0, np.abs(x))) + 1e-10 * np.abs(g)
    ok = np.abs(b - fd) <= 5e-6 * np.abs(fd) + atol
    assert ok.all(), _report(ok, x=x, g=g, backward=b, fd=fd)


def test_prelu_grad_alpha_finite_differences(rng):
    x = rng.standard_normal((4, 3, 5))
    g = rng.standard_normal(x.shape)
    alpha = np.array([0.1, 0.3, -0.2])
    _, ga = mlkern.prelu_backward(g, x, alpha)
    h = 1e-4
    fd = np.empty(3)
    for c in range(3):
        e = np.zeros(3)
        e[c] = h
        L = lambda a: np.sum(g * mlkern.prelu(x, a))  # noqa: E731
        fd[c] = (L(alpha - 2 * e) - 8 * L(alpha - e) + 8 * L(alpha + e) - L(alpha + 2 * e)) / (12 * h)
    np.testing.assert_allclose(ga, fd, rtol=1e-8, atol=1e-10)


# ---------------------------------------------------------------- 4. parameters
@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("slope", [0.0, 0.01, 0.25, 1.0, 2.0, -0.5])
def test_leaky_relu_slopes(slope, dtype, rng):
    x = random_x(rng, 1000, dtype)
    x64 = x.astype(np.float64)
    s32 = float(np.dtype(dtype).type(slope))
    assert_ulp(mlkern.leaky_relu(x, negative_slope=slope), R.leaky_relu(x64, s32), x, dtype, 1)
    assert_ulp(mlkern.leaky_relu_grad(x, negative_slope=slope), R.leaky_relu_grad(x64, s32), x, dtype, 0)
    g = np.full_like(x, 3.0)
    assert_ulp(mlkern.leaky_relu_backward(g, x, negative_slope=slope), 3.0 * R.leaky_relu_grad(x64, s32),
               x, dtype, 1)


@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0, 1.7, 3.0])
def test_elu_alpha(alpha, rng):
    x = random_x(rng, 1000)
    assert_ulp(mlkern.elu(x, alpha=alpha), R.elu(x, alpha), x, np.float64, 40)
    assert_ulp(mlkern.elu_grad(x, alpha=alpha), R.elu_grad(x, alpha), x, np.float64, 40)
    y = mlkern.elu(x, alpha=alpha)
    b = mlkern.elu_backward(np.ones_like(x), y, alpha=alpha)
    np.testing.assert_allclose(b, R.elu_grad(x, alpha), rtol=1e-13, atol=8e-16 * max(alpha, 1))
    # the piecewise definition, not max(x, a*expm1(x)) (they differ for alpha > 1)
    assert float(mlkern.elu(-0.1, alpha=alpha)) == pytest.approx(alpha * math.expm1(-0.1), rel=1e-15, abs=0)


@pytest.mark.parametrize("beta", [1.0, 2.0, 0.5, 3.7, -1.0, -2.5])
def test_softplus_beta_exact(beta, rng):
    x = random_x(rng, 2000)
    z = np.abs(beta * x)
    assert_ulp(mlkern.softplus(x, beta=beta), R.softplus(x, beta), x, np.float64, 40, cond=np.maximum(1, z))
    assert_ulp(mlkern.softplus_grad(x, beta=beta), R.softplus_grad(x, beta), x, np.float64, 40,
               cond=np.maximum(1, z))
    g = rng.standard_normal(x.size)
    np.testing.assert_allclose(mlkern.softplus_backward(g, x, beta=beta), g * R.softplus_grad(x, beta),
                               rtol=1e-14 * 40, atol=0)


def test_softplus_threshold():
    # threshold=None: exact everywhere
    x = np.array([19.0, 21.0, 25.0, 30.0, 36.0])
    y = mlkern.softplus(x)
    assert (y[:4] > x[:4]).all()
    np.testing.assert_array_equal(y, x + np.log1p(np.exp(-x)))
    assert (mlkern.softplus_grad(x) < 1.0).all()
    # threshold=20: x where beta*x > 20, and the derivative 1 there
    y = mlkern.softplus(x, threshold=20)
    assert y[0] == pytest.approx(19.0 + math.log1p(math.exp(-19.0)), rel=1e-15)
    assert y[0] != 19.0
    np.testing.assert_array_equal(y[1:], x[1:])
    gr = mlkern.softplus_grad(x, threshold=20)
    assert gr[0] < 1.0
    np.testing.assert_array_equal(gr[1:], 1.0)
    np.testing.assert_array_equal(mlkern.softplus_backward(np.full(5, 2.0), x, threshold=20)[1:], 2.0)
    # with beta: the switch is on beta*x
    y = mlkern.softplus(np.array([9.5, 10.5]), beta=2.0, threshold=20.0)
    assert y[1] == 10.5
    assert y[0] == pytest.approx(0.5 * (19.0 + math.log1p(math.exp(-19.0))), rel=1e-15)
    assert float(mlkern.softplus_grad(10.5, beta=2.0, threshold=20.0)) == 1.0
    assert float(mlkern.softplus_grad(9.5, beta=2.0, threshold=20.0)) < 1.0
    # float32 too
    assert mlkern.softplus(np.float32([25.0]), threshold=20)[0] == np.float32(25.0)


@pytest.mark.parametrize("beta", [0.0, 0.5, 1.0, 2.0, -1.0])
def test_silu_beta(beta, rng):
    x = random_x(rng, 2000)
    cond = np.maximum(1, np.abs(beta * x))
    assert_ulp(mlkern.silu(x, beta=beta), R.silu(x, beta), x, np.float64, 40, cond=cond)
    assert_ulp(mlkern.silu_grad(x, beta=beta), R.silu_grad(x, beta), x, np.float64, 40, cond=cond,
               mag=R.silu_grad_mag(x, beta))
    g = rng.standard_normal(x.size)
    b = mlkern.silu_backward(g, x, beta=beta)
    assert_ulp(b, g * R.silu_grad(x, beta), x, np.float64, 48, cond=cond,
               mag=np.abs(g) * R.silu_grad_mag(x, beta))
    if beta == 0.0:
        np.testing.assert_array_equal(mlkern.silu(x, beta=0.0), x / 2)


def test_swish_is_silu(rng):
    x = random_x(rng, 500, wide=True)
    np.testing.assert_array_equal(mlkern.swish(x), mlkern.silu(x))
    np.testing.assert_array_equal(mlkern.swish_grad(x, beta=1.5), mlkern.silu_grad(x, beta=1.5))
    np.testing.assert_array_equal(mlkern.swish_backward(x, x), mlkern.silu_backward(x, x))


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 5), (2, 3, 4, 5)], ids=["2d", "3d", "4d"])
def test_prelu_per_channel(shape, dtype, rng):
    x = rng.standard_normal(shape).astype(dtype)
    alpha = np.array([0.1, -0.3, 0.5], dtype)
    x64 = x.astype(np.float64)
    a64 = alpha.astype(np.float64)
    y = mlkern.prelu(x, alpha)
    assert y.dtype == dtype
    assert_ulp(y, R.prelu(x64, a64), x, dtype, 1)
    assert_ulp(mlkern.prelu_grad(x, alpha), R.prelu_grad(x64, a64), x, dtype, 0)
    g = rng.standard_normal(shape).astype(dtype)
    gx, ga = mlkern.prelu_backward(g, x, alpha)
    assert gx.dtype == dtype and ga.dtype == dtype and ga.shape == (3,)
    assert_ulp(gx, g.astype(np.float64) * R.prelu_grad(x64, a64), x, dtype, 1)
    np.testing.assert_allclose(ga, R.prelu_grad_alpha(g, x64, a64),
                               rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-6)
    # alpha as a list, per channel, is the same
    np.testing.assert_array_equal(mlkern.prelu(x, alpha.tolist()), y)


@pytest.mark.parametrize("alpha", [0.25, [0.1, -0.3, 0.5]], ids=["scalar", "per_channel"])
@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=["f32", "f64"])
def test_prelu_grad_allocates_only_its_result(alpha, dtype, rng):
    """A C-contiguous prelu_grad allocates its result and nothing input-sized
    besides (it used to fill an input-sized ones array for the backward
    kernel: a peak of twice the input); with out= it allocates nothing
    input-sized at all."""
    import tracemalloc
    x = rng.standard_normal((200, 3, 500)).astype(dtype)
    slack = 64 * 1024
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        r = mlkern.prelu_grad(x, alpha)
        _, peak = tracemalloc.get_traced_memory()
        out = np.empty_like(x)
        tracemalloc.reset_peak()
        base, _ = tracemalloc.get_traced_memory()
        mlkern.prelu_grad(x, alpha, out=out)
        _, peak_out = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak <= r.nbytes + slack, (peak, r.nbytes)
    assert peak_out - base <= slack, (peak_out - base, r.nbytes)
    a = np.asarray(alpha, np.float64)
    ref = R.prelu_grad(x.astype(np.float64), a)
    np.testing.assert_array_equal(r, ref.astype(dtype))
    np.testing.assert_array_equal(out, r)


_PRELU_0D = ("prelu on 0-d input: np.ascontiguousarray makes it shape (1,), so prelu/prelu_grad "
             "return a (1,) array instead of a NumPy scalar and prelu_backward raises "
             "'grad_output and x must have the same shape, got () and (1,)'")


@pytest.mark.parametrize("shape", [(7,), (6, 3), (4, 3, 5), (2, 3, 4, 5),
                                   ()],   # regression: _PRELU_0D
                         ids=["1d", "2d", "3d", "4d", "0d"])
def test_prelu_scalar_alpha(shape, rng):
    x = np.asarray(rng.standard_normal(shape))
    g = np.asarray(rng.standard_normal(shape))
    y = mlkern.prelu(x, 0.2)
    assert np.shape(y) == shape
    np.testing.assert_array_equal(y, R.prelu(x, 0.2))
    np.testing.assert_array_equal(mlkern.prelu_grad(x, 0.2), R.prelu_grad(x, 0.2))
    gx, ga = mlkern.prelu_backward(g, x, 0.2)
    np.testing.assert_array_equal(gx, g * R.prelu_grad(x, 0.2))
    assert np.ndim(ga) == 0
    np.testing.assert_allclose(ga, R.prelu_grad_alpha(g, x, 0.2), rtol=1e-12, atol=1e-14)
    # a length-1 alpha array gives a length-1 grad_alpha
    gx1, ga1 = mlkern.prelu_backward(g, x, np.array([0.2]))
    np.testing.assert_array_equal(gx1, gx)
    assert np.shape(ga1) == (1,)
    np.testing.assert_allclose(ga1[0], ga, rtol=1e-14)


BAD_PARAMS = [
    (lambda: mlkern.gelu([1.0], approximate="foo"), ValueError, "approximate"),
    (lambda: mlkern.gelu_grad([1.0], approximate="foo"), ValueError, "approximate"),
    (lambda: mlkern.gelu_backward([1.0], [1.0], approximate="foo"), ValueError, "approximate"),
    (lambda: mlkern.gelu([1.0], approximate=None), ValueError, "approximate"),
    (lambda: mlkern.softplus([1.0], beta=0), ValueError, "beta"),
    (lambda: mlkern.softplus_grad([1.0], beta=0.0), ValueError, "beta"),
    (lambda: mlkern.softplus_backward([1.0], [1.0], beta=0), ValueError, "beta"),
    (lambda: mlkern.softplus([1.0], beta=np.nan), ValueError, "beta"),
    (lambda: mlkern.softplus([1.0], beta="2"), TypeError, "beta"),
    (lambda: mlkern.softplus([1.0], threshold="20"), TypeError, "threshold"),
    (lambda: mlkern.softplus([1.0], threshold=np.nan), ValueError, "threshold"),
    (lambda: mlkern.noisy_relu([1.0], sigma=-1.0, seed=0), ValueError, "sigma"),
    (lambda: mlkern.noisy_relu([1.0], sigma="a", seed=0), TypeError, "sigma"),
    (lambda: mlkern.noisy_relu([1.0], seed="a"), TypeError, "seed"),
    (lambda: mlkern.noisy_relu([1.0], seed=1.5), TypeError, "seed"),
    (lambda: mlkern.prelu(np.ones((2, 3)), [0.1, 0.2]), ValueError, "alpha"),
    (lambda: mlkern.prelu_grad(np.ones((2, 3)), [0.1, 0.2]), ValueError, "alpha"),
    (lambda: mlkern.prelu_backward(np.ones((2, 3)), np.ones((2, 3)), [0.1, 0.2]), ValueError, "alpha"),
    (lambda: mlkern.prelu(np.ones(4), [0.1, 0.2]), ValueError, "alpha"),
    (lambda: mlkern.prelu(np.ones((2, 3)), np.ones((3, 1))), ValueError, "alpha"),
    (lambda: mlkern.prelu(np.ones((2, 3)), "a"), TypeError, "alpha"),
    (lambda: mlkern.prelu(np.ones((2, 3)), 1j), TypeError, "alpha"),
    (lambda: mlkern.leaky_relu([1.0], negative_slope="a"), TypeError, "negative_slope"),
    (lambda: mlkern.leaky_relu_grad([1.0], negative_slope=None), TypeError, "negative_slope"),
    (lambda: mlkern.leaky_relu_backward([1.0], [1.0], negative_slope=[0.1]), TypeError, "negative_slope"),
    (lambda: mlkern.elu([1.0], alpha="1"), TypeError, "alpha"),
    (lambda: mlkern.elu_grad([1.0], alpha=np.nan), ValueError, "alpha"),
    (lambda: mlkern.silu([1.0], beta=None), TypeError, "beta"),
    (lambda: mlkern.silu_grad([1.0], beta="x"), TypeError, "beta"),
]


@pytest.mark.parametrize("call,exc,word", BAD_PARAMS, ids=[f"{i}-{b[2]}" for i, b in enumerate(BAD_PARAMS)])
def test_bad_params_raise_naming_the_parameter(call, exc, word):
    with pytest.raises(exc, match=word):
        call()


# ---------------------------------------------------------------- 5. noisy_relu
def test_noisy_relu_seed_reproducible(rng):
    x = rng.standard_normal(10_000)
    a = mlkern.noisy_relu(x, seed=42)
    b = mlkern.noisy_relu(x, seed=42)
    np.testing.assert_array_equal(a, b)
    c = mlkern.noisy_relu(x, seed=43)
    assert not np.array_equal(a, c)
    assert np.mean(a != c) > 0.4
    # seed=None draws fresh entropy
    assert not np.array_equal(mlkern.noisy_relu(x), mlkern.noisy_relu(x))
    # fixed sigma, same seed: reproducible too
    np.testing.assert_array_equal(mlkern.noisy_relu(x, sigma=0.5, seed=7), mlkern.noisy_relu(x, sigma=0.5, seed=7))


def test_noisy_relu_generator_seed(rng):
    x = rng.standard_normal(1000)
    a = mlkern.noisy_relu(x, seed=np.random.default_rng(3))
    b = mlkern.noisy_relu(x, seed=np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)
    gen = np.random.default_rng(3)
    c1 = mlkern.noisy_relu(x, seed=gen)
    c2 = mlkern.noisy_relu(x, seed=gen)   # the generator advanced: new noise
    assert not np.array_equal(c1, c2)


def test_noisy_relu_threads_bit_identical():
    x = np.linspace(-3, 3, 10 ** 6)
    with mlkern.threads(1):
        a = mlkern.noisy_relu(x, seed=2024)
        a32 = mlkern.noisy_relu(x.astype(np.float32), sigma=0.7, seed=2024)
    with mlkern.threads(2):
        b = mlkern.noisy_relu(x, seed=2024)
        b32 = mlkern.noisy_relu(x.astype(np.float32), sigma=0.7, seed=2024)
    assert np.array_equal(a, b)
    assert np.array_equal(a32, b32)


def test_noisy_relu_fixed_sigma_distribution():
    s = 0.75
    x = np.full(400_000, 50.0)
    y = mlkern.noisy_relu(x, sigma=s, seed=11)
    noise = y - x
    assert abs(noise.mean()) < 5 * s / math.sqrt(x.size)
    assert noise.std() == pytest.approx(s, rel=0.01)
    p = scipy.stats.kstest(noise, scipy.stats.norm(0, s).cdf).pvalue
    assert p > 1e-4, p
    # float32: same law
    y32 = mlkern.noisy_relu(x.astype(np.float32), sigma=s, seed=12)
    assert y32.dtype == np.float32
    assert scipy.stats.kstest(y32.astype(np.float64) - 50.0, scipy.stats.norm(0, s).cdf).pvalue > 1e-4


def test_noisy_relu_sigma_zero_is_relu(rng):
    x = random_x(rng, 1000, wide=True)
    np.testing.assert_array_equal(mlkern.noisy_relu(x, sigma=0.0, seed=1), R.relu(x))


@pytest.mark.parametrize("x0", [3.0, 0.0, 8.0])
def test_noisy_relu_variance_is_sigmoid(x0):
    """sigma=None: Y ~ N(0, sigmoid(x)) -- the *variance* is sigmoid(x).
    y = max(0, x + Y): the positive part is a truncated normal, the mass at 0
    is Phi(-x / s)."""
    n = 400_000
    var = float(R.sigmoid(x0))
    s = math.sqrt(var)
    y = mlkern.noisy_relu(np.full(n, x0), seed=99)
    pos = y[y > 0]
    p0 = scipy.stats.norm.cdf(-x0 / s)
    # the mass at 0
    assert abs((y == 0).mean() - p0) <= 6 * math.sqrt(max(p0 * (1 - p0), 1e-12) / n) + 1e-6
    law = scipy.stats.truncnorm((0.0 - x0) / s, np.inf, loc=x0, scale=s)
    p = scipy.stats.kstest(pos, law.cdf).pvalue
    assert p > 1e-4, f"x={x0}: KS p={p}, sample var of x+Y={np.var(pos)}"


def test_noisy_relu_variance_not_std():
    """At x = -2, s^2 = sigmoid(-2) = 0.119: P(x + Y > 0) = Phi(-5.8) ~ 3e-9, so
    (almost) all outputs are 0; with s = 1 it would be 2.3%."""
    y = mlkern.noisy_relu(np.full(200_000, -2.0), seed=5)
    assert (y > 0).sum() <= 2


def test_noisy_relu_backward(rng):
    g = rng.standard_normal(1000)
    y = mlkern.noisy_relu(rng.standard_normal(1000), seed=1)
    b = mlkern.noisy_relu_backward(g, y)
    np.testing.assert_array_equal(b, np.where(y > 0, g, 0.0))
    assert not hasattr(mlkern, "noisy_relu_grad")
    assert mlkern.noisy_relu_backward(np.float32([2.0]), np.float32([0.0])).dtype == np.float32


def test_noisy_relu_output_dtype_and_nonneg(rng):
    for dt in (np.float32, np.float64):
        x = random_x(rng, 1000, dt)
        y = mlkern.noisy_relu(x, seed=0)
        assert y.dtype == dt and y.shape == x.shape
        assert (y >= 0).all()


# The kernels take other paths for large chunks (mlk_kernels_tmpl.h): above
# 8 MiB a chunk is computed block by block after a strided read, and an
# output of at least 24 MiB is written with non-temporal stores from an L1
# buffer; every chunk of >= 1024 elements starts with a short head that
# aligns the stores.  The values must not depend on the path: the large
# array (1 and 2 threads, and in place) against the same function over
# 100,000-element slices (the plain in-cache loop), bit for bit.
_PATH_IDS = ["relu", "sigmoid", "silu", "gelu[tanh]"]
_PATH_CALLABLES = [(i, f) for i, f in CALLABLES
                   if i.split(".")[0] in _PATH_IDS]


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("name,fn", _PATH_CALLABLES, ids=[i for i, _ in _PATH_CALLABLES])
def test_large_streamed_path_bit_identical(name, fn, dtype):
    n = (28 << 20) // np.dtype(dtype).itemsize + 3      # 28 MiB + a ragged tail
    x = random_x(np.random.default_rng(19), n, dtype, wide=True)
    ref = np.concatenate([fn(x[i:i + 100_000]) for i in range(0, n, 100_000)])
    for t in (1, 2):
        with mlkern.threads(t):
            y = fn(x)
        assert y.dtype == ref.dtype
        np.testing.assert_array_equal(y, ref, err_msg=f"{name} threads={t}")


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("name", ["relu", "sigmoid", "silu", "gelu"])
def test_large_streamed_path_in_place(name, dtype):
    n = (28 << 20) // np.dtype(dtype).itemsize + 5
    x = random_x(np.random.default_rng(23), n, dtype, wide=True)
    f = getattr(mlkern, name)
    ref = f(x)
    y = x.copy()
    assert f(y, out=y) is y
    np.testing.assert_array_equal(y, ref)
    g = np.full(n, 0.75, dtype)
    s = x.copy()
    back = getattr(mlkern, name + "_backward")
    ref_b = back(g, s)
    assert back(g, s, out=g) is g
    np.testing.assert_array_equal(g, ref_b)
