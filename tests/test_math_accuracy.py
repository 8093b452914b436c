"""ULP budgets of the C math layer (``mlkern._math.evaluate``) and of the
activations built on it, against mpmath (mp.dps = 40).

The error of y at x is |y - f(x)| / ulp, with f(x) from mpmath for the
exactly representable input x and ulp the spacing of the target dtype at the
correctly rounded reference (math.ulp for float64, numpy.spacing in
float32; for subnormal results the subnormal spacing 2^-1074 / 2^-149).

Budgets (mlk_math.h's header and SPEC): float64 exp/expm1/log/log1p <= 1 ULP,
tanh/erf/erfc/ndtr/npdf <= 2 ULP; float32 <= 3 ULP; the activations sigmoid,
softplus, silu, gelu, elu, log_sigmoid, tanh_grad, sigmoid_grad <= 2 ULP
(float64) / <= 3 ULP (float32).
"""
import math
import zlib

import mpmath
import numpy as np
import pytest

import mlkern
from mlkern import _math
import reference as R

mpmath.mp.dps = 40

MATH_ULP64 = {"exp": 1, "expm1": 1, "log": 1, "log1p": 1, "tanh": 2, "erf": 2, "erfc": 2, "ndtr": 2, "npdf": 2}
F32_ULP = 3
ACT_ULP = {np.dtype(np.float64): 2, np.dtype(np.float32): 3}

N64 = 20000   # points per float64 function (plus the fixed grids below)
N32 = 12000


def _lu(rng, lo, hi, n, sign=None):
    """log-uniform magnitudes in [10^lo, 10^hi], random or fixed sign."""
    m = 10.0 ** rng.uniform(lo, hi, n)
    if sign is None:
        return m * rng.choice([-1.0, 1.0], n)
    return sign * m


def _domain(name, dt, rng):
    """Points covering the range, the tails and the tiny arguments of a math function."""
    f64 = dt == np.float64
    n = N64 if f64 else N32
    q = n // 4
    if name == "exp":
        lo, hi = (-745.13, 709.78) if f64 else (-103.97, 88.72)
        sub = (-745.13, -708.4) if f64 else (-103.97, -87.33)
        parts = [rng.uniform(lo, hi, 2 * q), rng.uniform(*sub, q), _lu(rng, -300 if f64 else -38, 0, q)]
    elif name == "expm1":
        hi = 709.78 if f64 else 88.72
        parts = [rng.uniform(-50, hi, q), rng.uniform(-1, 1, q), _lu(rng, -300 if f64 else -38, 0, 2 * q)]
    elif name == "log":
        e_lo, e_hi = (-1074, 1024) if f64 else (-149, 128)
        parts = [2.0 ** rng.uniform(e_lo, e_hi, 2 * q), 1.0 + rng.uniform(-0.25, 0.25, q),
                 1.0 + _lu(rng, -15 if f64 else -7, -1, q)]
    elif name == "log1p":
        top = 307 if f64 else 38
        parts = [_lu(rng, -300 if f64 else -38, top, q, 1.0), -_lu(rng, -300 if f64 else -38, 0, q, 1.0) * 0.999,
                 -1.0 + 2.0 ** rng.uniform(-52 if f64 else -23, -1, q), rng.uniform(-0.5, 1.0, q)]
    elif name == "tanh":
        top = 25.0 if f64 else 12.0
        parts = [rng.uniform(-top, top, 2 * q), rng.uniform(-1, 1, q), _lu(rng, -300 if f64 else -38, 0, q)]
    elif name == "erf":
        top = 6.0 if f64 else 4.5
        parts = [rng.uniform(-top, top, 2 * q), rng.uniform(-1, 1, q), _lu(rng, -300 if f64 else -38, 0, q)]
    elif name == "erfc":
        hi = 27.2 if f64 else 10.0
        parts = [rng.uniform(-6, hi, 2 * q), rng.uniform(-1, 1, q), rng.uniform(hi - 5, hi, q)]
    elif name == "ndtr":
        lo = -38.4 if f64 else -14.0
        parts = [rng.uniform(lo, 8.5, 2 * q), rng.uniform(-1, 1, q), rng.uniform(lo, lo + 8, q)]
    elif name == "npdf":
        top = 38.5 if f64 else 14.0
        parts = [rng.uniform(-top, top, 2 * q), rng.uniform(-1, 1, q), rng.uniform(top - 6, top, q)]
    else:  # pragma: no cover
        raise KeyError(name)
    return np.concatenate(parts).astype(dt)


def ulp_errors(y, xs, fn, dt):
    """Array of ULP errors of y = f(xs) against the mpmath function fn."""
    dt = np.dtype(dt)
    errs = np.empty(len(xs))
    for i, (x, v) in enumerate(zip(xs.tolist(), np.asarray(y, np.float64).tolist())):
        ref = fn(mpmath.mpf(x))
        if not mpmath.isfinite(ref):
            errs[i] = 0.0 if v == float(ref) else math.inf
            continue
        r = float(ref)
        if dt == np.float64:
            if math.isinf(r):     # rounds to overflow
                errs[i] = 0.0 if v == r else math.inf
                continue
            u = math.ulp(r)
        else:
            r32 = np.float32(r)
            if np.isinf(r32):
                errs[i] = 0.0 if v == float(r32) else math.inf
                continue
            # float32 spacing in the binade of |ref|: [2^(e-1), 2^e) has 2^(e-24)
            u = max(math.ldexp(1.0, math.frexp(abs(r))[1] - 24), 2.0 ** -149) if r != 0 else 2.0 ** -149
        if math.isnan(v) or math.isinf(v):
            errs[i] = math.inf
            continue
        errs[i] = float(abs(mpmath.mpf(v) - ref)) / u
    return errs


def _worst(errs, xs, y):
    i = int(np.argmax(errs))
    return f"max {errs[i]:.3f} ULP at x={xs[i]!r} (y={y[i]!r}); {np.mean(errs > 0.5):.3f} of points > 0.5 ULP"


# ---------------------------------------------------------------- math layer
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("name", list(MATH_ULP64))
def test_math_ulp(name, dtype):
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    dt = np.dtype(dtype)
    xs = _domain(name, dt, rng)
    with np.errstate(all="ignore"):
        y = _math.evaluate(name, xs)
    assert y.dtype == dt and y.shape == xs.shape
    errs = ulp_errors(y, xs, R.MP_MATH[name], dt)
    budget = MATH_ULP64[name] if dt == np.float64 else F32_ULP
    assert errs.max() <= budget, f"{name} {dt}: " + _worst(errs, xs, y)


SPECIAL = [
    ("exp", -np.inf, 0.0), ("exp", np.inf, np.inf), ("exp", 0.0, 1.0), ("exp", -0.0, 1.0),
    ("exp", -1e4, 0.0), ("exp", 1e4, np.inf), ("exp", np.nan, np.nan),
    ("expm1", -0.0, -0.0), ("expm1", 0.0, 0.0), ("expm1", -np.inf, -1.0), ("expm1", np.inf, np.inf),
    ("expm1", -1e4, -1.0), ("expm1", np.nan, np.nan),
    ("log", 0.0, -np.inf), ("log", -0.0, -np.inf), ("log", -1.0, np.nan), ("log", 1.0, 0.0),
    ("log", np.inf, np.inf), ("log", -np.inf, np.nan), ("log", np.nan, np.nan),
    ("log1p", -1.0, -np.inf), ("log1p", -2.0, np.nan), ("log1p", -0.0, -0.0), ("log1p", 0.0, 0.0),
    ("log1p", np.inf, np.inf), ("log1p", np.nan, np.nan),
    ("tanh", -0.0, -0.0), ("tanh", 0.0, 0.0), ("tanh", np.inf, 1.0), ("tanh", -np.inf, -1.0),
    ("tanh", np.nan, np.nan),
    ("erf", np.inf, 1.0), ("erf", -np.inf, -1.0), ("erf", -0.0, -0.0), ("erf", 0.0, 0.0), ("erf", np.nan, np.nan),
    ("erfc", np.inf, 0.0), ("erfc", -np.inf, 2.0), ("erfc", 0.0, 1.0), ("erfc", np.nan, np.nan),
    ("ndtr", -np.inf, 0.0), ("ndtr", np.inf, 1.0), ("ndtr", 0.0, 0.5), ("ndtr", np.nan, np.nan),
    ("npdf", np.inf, 0.0), ("npdf", -np.inf, 0.0), ("npdf", np.nan, np.nan),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("name,x,expected", SPECIAL, ids=[f"{s[0]}({s[1]})" for s in SPECIAL])
def test_math_special_values(name, x, expected, dtype):
    y = _math.evaluate(name, np.array([x], dtype))[0]
    exp = np.dtype(dtype).type(expected)
    if np.isnan(exp):
        assert np.isnan(y), f"{name}({x}) = {y}"
    else:
        assert y == exp, f"{name}({x}) = {y}, expected {exp}"
        assert np.signbit(y) == np.signbit(exp), f"{name}({x}) = {y}: sign"


def test_math_unknown_name():
    with pytest.raises(ValueError, match="name"):
        _math.evaluate("sin", np.ones(3))


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_math_nan_positions(dtype):
    x = np.array([np.nan, 0.5, np.nan, 2.0], dtype)
    for name in MATH_ULP64:
        y = _math.evaluate(name, x)
        assert np.array_equal(np.isnan(y), np.isnan(x)), name


# ---------------------------------------------------------------- activations
def _act_domains(dt):
    """name -> (mlkern callable, mpmath function, {region: (lo, hi)})"""
    f64 = dt == np.float64
    L = 745.0 if f64 else 103.9      # where e^x reaches the last subnormal
    return {
        "sigmoid": (mlkern.sigmoid, R.mp_sigmoid,
                    {"core": (-20, 20), "left": (-L, -20), "right": (20, 40)}),
        "sigmoid_grad": (mlkern.sigmoid_grad, R.mp_sigmoid_grad,
                         {"core": (-20, 20), "left": (-L, -20), "right": (20, L)}),
        "tanh_grad": (mlkern.tanh_grad, R.mp_tanh_grad,
                      {"core": (-10, 10), "tails": (10, L / 2)}),
        "softplus": (mlkern.softplus, R.mp_softplus,
                     {"core": (-20, 20), "left": (-L, -20), "right": (20, 60)}),
        "log_sigmoid": (mlkern.log_sigmoid, R.mp_log_sigmoid,
                        {"core": (-20, 20), "left": (-60, -20), "right": (20, L)}),
        "silu": (mlkern.silu, R.mp_silu,
                 {"core": (-20, 20), "left": (-L + 8, -20), "right": (20, 60)}),
        "elu": (mlkern.elu, R.mp_elu,
                {"core": (-5, 5), "left": (-60, -5), "tiny": None}),
        "gelu": (mlkern.gelu, R.mp_gelu,
                 {"core": (-5, 5), "left": ((-38.4 if f64 else -14.0), -5), "right": (5, 40), "tiny": None}),
    }


ACT_PARAMS = []
for _dt in (np.float32, np.float64):
    for _name, (_f, _mp, _regions) in _act_domains(np.dtype(_dt)).items():
        for _reg in _regions:
            ACT_PARAMS.append(pytest.param(_name, _reg, _dt,
                                           id=f"{_name}-{_reg}-{'f32' if _dt is np.float32 else 'f64'}"))


@pytest.mark.parametrize("name,region,dtype", ACT_PARAMS)
def test_activation_ulp(name, region, dtype):
    dt = np.dtype(dtype)
    f, mp_f, regions = _act_domains(dt)[name]
    rng = np.random.default_rng(zlib.crc32(f"{name}/{region}".encode()))
    n = 2500
    if regions[region] is None:          # tiny arguments of both signs
        xs = _lu(rng, -300 if dt == np.float64 else -37, -3, n).astype(dt)
    else:
        lo, hi = regions[region]
        xs = rng.uniform(lo, hi, n)
        if region == "tails":
            xs = xs * rng.choice([-1.0, 1.0], n)
        xs = xs.astype(dt)
    with np.errstate(all="ignore"):
        y = f(xs)
    errs = ulp_errors(y, xs, mp_f, dt)
    assert errs.max() <= ACT_ULP[dt], f"{name} [{region}] {dt}: " + _worst(errs, xs, y)
