"""Accuracy of mlkern's math layer and activations in ULP, measured on
>= 10^6 points per function and dtype, for every SIMD level this CPU runs.

    python benchmarks/ulp_table.py                 # all levels, 10^6 points (about 2 min idle)
    python benchmarks/ulp_table.py --points 100000 --levels baseline

Functions: the math layer (exp ... npdf) and every activation forward and
``*_grad`` of mlkern (prelu with alpha = 0.25, leaky_relu at its default
slope; noisy_relu is random and has no reference).  The float64 functions
with an mpmath reference are measured on ``--mp-points`` points (default
3 * 10^5, evaluated on all CPUs): the same kinds of points, fewer of them.

Reference values:
* float64: x87 80-bit ``np.longdouble`` evaluation (64-bit significand, libm's
  expl/log1pl/...; its own error ~2^-63, i.e. ~1e-3 of a float64 ULP) for the
  exp/log family and the activations built from them; mpmath (40 digits) for
  erf, erfc, ndtr, npdf, gelu and gelu_tanh (whose constants sqrt(2/pi) and
  0.044715 must be exact), which have no long-double NumPy routine.
* float32: the same long-double/mpmath reference (far more precise than
  needed).
The error of a result y is |y - ref| / ulp(ref), ulp the spacing of the
target dtype at the correctly rounded reference (subnormal spacing below the
normal range).  The derivatives that are a sum of two terms with a root
between them (silu_grad, gelu_grad, gelu_tanh_grad) are measured in ULP of
the larger of |ref| and the summands' magnitude (as the tests judge them: no
kernel keeps relative accuracy at the root of a cancelling sum), and
gelu_tanh_grad per unit of the condition number of its rounded argument
u2 = 2k(x + c x^3), |u2| (1 + 3 c x^2) / (1 + c x^2) (the tests' ``cond``; in
the left tail the result ~ x e^{u2} amplifies u2's rounding |u2| times).  Points: uniform over the whole domain, a dense normal sample
around 0, log-uniform magnitudes down to the subnormals, and the special
values of the tests; results that overflow are skipped.
"""
import argparse
import json
import os
import subprocess
import sys

import numpy as np

LD = np.longdouble


def _ld_sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _ld_softplus(x):
    return np.where(x > 0, x + np.log1p(np.exp(-x)), np.log1p(np.exp(x)))


def _ld_silu_grad(x):
    s = _ld_sigmoid(x)
    return s * (1 + x * (1 - s))


def _ld_silu_grad_mag(x):
    s = _ld_sigmoid(x)
    return s + abs(x * s * (1 - s))


REFS_LD = {
    "exp": np.exp, "expm1": np.expm1, "log": np.log, "log1p": np.log1p, "tanh": np.tanh,
    "sigmoid": _ld_sigmoid,
    "softplus": _ld_softplus,
    "log_sigmoid": lambda x: -_ld_softplus(-x),
    "silu": lambda x: x * _ld_sigmoid(x),
    "elu": lambda x: np.where(x > 0, x, np.expm1(x)),
    "sigmoid_grad": lambda x: np.exp(-abs(x)) / (1 + np.exp(-abs(x))) ** 2,
    "tanh_grad": lambda x: 4 * np.exp(-2 * abs(x)) / (1 + np.exp(-2 * abs(x))) ** 2,
    "relu": lambda x: np.where(x > 0, x, 0 * x),
    "prelu": lambda x: np.where(x > 0, x, LD(ALPHA) * x),
    "relu_grad": lambda x: np.where(x > 0, LD(1), LD(0)),
    "prelu_grad": lambda x: np.where(x > 0, LD(1), LD(ALPHA)),
    "elu_grad": lambda x: np.where(x > 0, LD(1), np.exp(x)),
    "softplus_grad": _ld_sigmoid,
    "silu_grad": _ld_silu_grad,
    "log_sigmoid_grad": lambda x: _ld_sigmoid(-x),
}
MP_FUNCS = ("erf", "erfc", "ndtr", "npdf", "gelu", "gelu_tanh", "gelu_grad", "gelu_tanh_grad")
ALPHA = 0.25            # prelu's slope here


def _np_gelu_tanh_parts(x):
    """(s, t) of gelu_tanh' = s + t in float64: s = sigmoid(2u), t its
    product term (for the summand magnitude)."""
    import scipy.special as sc
    k = np.sqrt(2 / np.pi)
    u2 = 2 * k * (x + 0.044715 * x ** 3)
    du2 = 2 * k * (1 + 3 * 0.044715 * x * x)
    s, sn = sc.expit(u2), sc.expit(-u2)
    t = np.where((s == 0) | (sn == 0), 0.0, x * du2 * s * sn)
    return s, t


def _slope_refs(dt):
    """leaky_relu and its derivative: the default slope 0.01 rounded to the
    dtype (what the kernel multiplies by, as the tests' reference)."""
    a = LD(float(np.dtype(dt).type(0.01)))
    return {"leaky_relu": lambda x: np.where(x > 0, x, a * x),
            "leaky_relu_grad": lambda x: np.where(x > 0, LD(1), a)}


def gelu_tanh_cond(x):
    """Error amplification of gelu(tanh)' from rounding its argument u2 =
    2k(x + c x^3) in the working precision (the tests' cond):
    |u2| (1 + 3 c x^2) / (1 + c x^2), at least 1."""
    x = np.asarray(x, np.float64)
    with np.errstate(all="ignore"):
        u2 = 2 * np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)
        c = np.abs(u2) * (1 + 3 * 0.044715 * x * x) / (1 + 0.044715 * x * x)
    return np.maximum(1.0, np.nan_to_num(c, posinf=1e300))


#: derivatives measured in ULP of their summands' size / per unit of the argument's condition
SUMMANDS = ("silu_grad", "gelu_grad", "gelu_tanh_grad")
CONDITIONED = {"gelu_tanh_grad": gelu_tanh_cond}


def summand_mag(name, x):
    """The magnitude of the two summands of a cancelling derivative (float64),
    or None: the error of these is measured in ULP of max(|ref|, this)."""
    import scipy.special as sc
    x = np.asarray(x, np.float64)
    with np.errstate(all="ignore"):
        if name == "silu_grad":
            return np.nan_to_num(_ld_silu_grad_mag(x.astype(LD)).astype(np.float64))
        if name == "gelu_grad":
            d = np.exp(-x * x / 2) / np.sqrt(2 * np.pi)
            return np.nan_to_num(sc.ndtr(x) + np.where(d == 0, 0.0, np.abs(x * d)))
        if name == "gelu_tanh_grad":
            s, t = _np_gelu_tanh_parts(x)
            return np.nan_to_num(s + np.abs(t))
    return None


def _mp_ref(name):
    import mpmath as mp
    mp.mp.dps = 32
    k = mp.sqrt(2 / mp.pi)
    c = mp.mpf("0.044715")              # exact constants: sqrt(2/pi) and the decimal 0.044715

    def gelu_tanh_grad(v):
        s = 1 / (1 + mp.exp(-2 * k * (v + c * v ** 3)))
        return s + v * 2 * k * (1 + 3 * c * v * v) * s * (1 - s)
    return {"erf": mp.erf, "erfc": mp.erfc,
            "ndtr": lambda v: mp.ncdf(v),
            "npdf": lambda v: mp.npdf(v),
            "gelu": lambda v: v * mp.ncdf(v),
            "gelu_tanh": lambda v: v / (1 + mp.exp(-2 * k * (v + c * v ** 3))),
            "gelu_grad": lambda v: mp.ncdf(v) + v * mp.npdf(v),
            "gelu_tanh_grad": gelu_tanh_grad,
            }[name], mp


def _mp_chunk(job):
    """(hi, lo) of the mpmath reference of ``name`` on the points ``x``."""
    name, x = job
    f, mp = _mp_ref(name)
    hi = np.empty(x.size)
    lo = np.empty(x.size)
    for i, v in enumerate(x):
        r = f(mp.mpf(float(v)))
        hi[i] = float(r)
        lo[i] = float(r - mp.mpf(hi[i])) if np.isfinite(hi[i]) else 0.0
    return hi, lo


def _f64_ref(name, x):
    """float64 references for float32 results (allowed by the budget: their
    own error, <= ~1e-14 relative even for scipy's ndtr in the tail, is far
    below a float32 ulp of 6e-8)."""
    import scipy.special as sc
    xl = x.astype(LD)
    with np.errstate(all="ignore"):
        if name == "erf":
            return sc.erf(x)
        if name == "erfc":
            return sc.erfc(x)
        if name == "ndtr":
            return sc.ndtr(x)
        if name == "npdf":
            return (np.exp(-xl * xl / 2) / np.sqrt(2 * LD(np.pi))).astype(np.float64)
        if name == "gelu":
            return x * sc.ndtr(x)
        if name == "gelu_tanh":
            k = np.sqrt(LD(2) / LD(np.pi))
            return (xl / (1 + np.exp(-2 * k * (xl + LD(0.044715) * xl ** 3)))).astype(np.float64)
        if name == "gelu_grad":
            return sc.ndtr(x) + x * np.exp(-x * x / 2) / np.sqrt(2 * np.pi)
        if name == "gelu_tanh_grad":
            s, t = _np_gelu_tanh_parts(x)
            return s + t
    raise KeyError(name)


def reference(name, dt, x, pool=None):
    """(hi, lo): the reference value as a float64 pair (hi + lo); the mpmath
    ones in chunks on ``pool`` (an Executor) when given."""
    if name in MP_FUNCS and dt == np.float64:
        if pool is None:
            return _mp_chunk((name, x))
        chunks = np.array_split(x, 8 * (os.cpu_count() or 1))
        parts = list(pool.map(_mp_chunk, [(name, c) for c in chunks]))
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    if name in MP_FUNCS:
        return _f64_ref(name, x.astype(np.float64)), np.zeros(x.size)
    with np.errstate(all="ignore"):
        refl = dict(REFS_LD, **_slope_refs(dt))[name](x.astype(LD))
        hi = refl.astype(np.float64)          # beyond float64's range: inf (skipped)
        lo = np.where(np.isfinite(hi), (refl - hi.astype(LD)).astype(np.float64), 0.0)
    return hi, lo


def domain(name, dt, n, rng):
    fmax = 88.0 if dt == np.float32 else 709.0
    lo = {"exp": -fmax - 16, "expm1": -60, "log": None, "log1p": None}.get(name, -fmax - 40)
    hi = {"exp": fmax, "expm1": fmax}.get(name, fmax)
    k = n // 4
    if name in ("log", "log1p"):
        tiny = np.log(np.finfo(dt).smallest_subnormal)
        big = np.log(np.finfo(dt).max)
        mags = np.exp(rng.uniform(tiny, big, 2 * k))
        parts = [mags, rng.uniform(0, 4, k)]
        if name == "log1p":
            parts.append(-np.exp(rng.uniform(tiny, 0, n - 3 * k)))
        else:
            parts.append(rng.uniform(0.5, 2.0, n - 3 * k))
    else:
        if name in MP_FUNCS:
            lo, hi = -40.0, 40.0
        tiny = np.log(np.finfo(dt).smallest_subnormal)
        parts = [rng.uniform(lo, hi, k), rng.standard_normal(k) * 3,
                 np.exp(rng.uniform(tiny, np.log(max(abs(lo), hi)), k)) * rng.choice([-1, 1], k),
                 rng.uniform(-20, 20, n - 3 * k)]
    x = np.concatenate(parts).astype(dt)
    specials = np.array([0.0, -0.0, 1e-300, -1e-300, 5e-324, 30, -30, 37, -37, 88, -88, 89, -89,
                         709, -709, 1, -1, 0.5, -0.5], dtype=np.float64)
    with np.errstate(over="ignore"):
        x = np.concatenate([x, specials.astype(dt)])
    return x[np.isfinite(x)]


def ulp_of(ref, dt):
    r = np.abs(ref).astype(dt)
    with np.errstate(over="ignore"):
        sp = np.spacing(r).astype(np.float64)
    return np.maximum(sp, float(np.finfo(dt).smallest_subnormal))


def mlkern_values(name, x):
    import mlkern
    from mlkern.bench import math_layer
    names, evaluate = math_layer()
    if name in names:
        return evaluate(name, x)
    if name == "gelu_tanh":
        return mlkern.gelu(x, approximate="tanh")
    if name == "gelu_tanh_grad":
        return mlkern.gelu_grad(x, approximate="tanh")
    if name in ("prelu", "prelu_grad"):
        return getattr(mlkern, name)(x, ALPHA)
    return getattr(mlkern, name)(x)


FUNCS = ["exp", "expm1", "log", "log1p", "tanh", "erf", "erfc", "ndtr", "npdf",
         "sigmoid", "softplus", "log_sigmoid", "silu", "elu", "gelu", "gelu_tanh",
         "relu", "leaky_relu", "prelu",
         "sigmoid_grad", "tanh_grad", "relu_grad", "leaky_relu_grad", "prelu_grad", "elu_grad",
         "softplus_grad", "silu_grad", "log_sigmoid_grad", "gelu_grad", "gelu_tanh_grad"]
DTYPES = (np.float64, np.float32)


def inputs(funcs, points, mp_points):
    """The points of every (function, dtype): ``mp_points`` of them for the
    float64 functions with an mpmath reference, ``points`` for the rest."""
    rng = np.random.default_rng(0)
    return {(f, np.dtype(dt).name): domain(f, dt, mp_points if (f in MP_FUNCS and dt == np.float64)
                                           else points, rng)
            for dt in DTYPES for f in funcs}


def child(points, mp_points, funcs, out):
    """Compute mlkern's values for every case at the level of this process."""
    xs = inputs(funcs, points, mp_points)
    np.savez(out, **{f"{f}|{d}": np.asarray(mlkern_values(f, x)) for (f, d), x in xs.items()})


def errors(name, dt, x, y, ref, mag=None, cond=None):
    hi, lo = ref
    ok = np.isfinite(hi) & (np.abs(hi) <= float(np.finfo(dt).max))
    y = np.asarray(y, np.float64)
    with np.errstate(all="ignore"):
        err = np.abs((y - hi) - lo)          # y - hi is exact (Sterbenz) near the answer
        e = err / ulp_of(hi if mag is None else np.maximum(np.abs(hi), mag), dt)
        if cond is not None:
            e = e / cond
    # outside the finite range of dt: the result must be the same inf (or NaN)
    over = np.isfinite(hi) & (np.abs(hi) > float(np.finfo(dt).max))
    same = (y == hi) | (np.isnan(y) & np.isnan(hi)) | (over & (y == np.sign(hi) * np.inf))
    e = np.where(ok, e, np.where(same, 0.0, np.inf))
    return e, ok


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=1_000_000)
    ap.add_argument("--mp-points", type=int, default=300_000,
                    help="points of the float64 functions with an mpmath reference "
                         "(at most --points)")
    ap.add_argument("--levels", default="all", help="comma list of MLKERN_CPU levels, or 'all'")
    ap.add_argument("--functions", default=",".join(FUNCS))
    ap.add_argument("--json", default=None, help="write all results here")
    ap.add_argument("--_child", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    funcs = a.functions.split(",")
    unknown = [f for f in funcs if f not in FUNCS]
    if unknown:
        ap.error(f"--functions: unknown {', '.join(unknown)}; choose from {', '.join(FUNCS)}")
    mp_points = min(a.mp_points, a.points)
    if a._child:
        child(a.points, mp_points, funcs, a._child)
        return
    import io
    import time
    from concurrent.futures import ProcessPoolExecutor
    t0 = time.time()
    print(f"# ULP table: {a.points} points ({mp_points} for the float64 mpmath references); "
          f"load average {os.getloadavg()}", flush=True)

    import mlkern
    if a.levels == "all":
        levels = ["baseline"] + mlkern.show_config(file=io.StringIO())["cpu_supports"]
    else:
        levels = a.levels.split(",")
    values = {}
    for lv in levels:                      # mlkern's values, one process per level
        tmp = os.path.abspath(f".ulp_{lv}.npz")
        env = dict(os.environ, MLKERN_CPU=lv)
        subprocess.run([sys.executable, __file__, "--points", str(a.points), "--mp-points",
                        str(mp_points), "--functions", a.functions, "--_child", tmp],
                       env=env, check=True)
        with np.load(tmp) as z:
            values[lv] = {k: z[k] for k in z.files}
        os.remove(tmp)
    xs = inputs(funcs, a.points, mp_points)
    table = {lv: [] for lv in levels}
    pool = ProcessPoolExecutor(os.cpu_count() or 1)
    for (f, d), x in xs.items():           # one reference per case, shared by the levels
        dt = np.dtype(d).type
        ref = reference(f, dt, x, pool)
        mag = summand_mag(f, x)
        cond = CONDITIONED[f](x) if f in CONDITIONED else None
        for lv in levels:
            e, ok = errors(f, dt, x, values[lv][f"{f}|{d}"], ref, mag, cond)
            i = int(np.argmax(e))
            r = {"name": f, "dtype": d, "points": int(x.size), "max_ulp": float(e[i]),
                 "at": float(x[i]), "mean_ulp": float(e[ok].mean())}
            table[lv].append(r)
            print(f"  {lv:10s} {d:8s} {f:13s} max {r['max_ulp']:.3f} ULP (at {r['at']:.6g}), "
                  f"mean {r['mean_ulp']:.3f}, {r['points']} points", flush=True)
    print()
    print("| function | " + " | ".join(f"f64 {lv}" for lv in levels) + " | " +
          " | ".join(f"f32 {lv}" for lv in levels) + " |")
    print("|" + "---|" * (1 + 2 * len(levels)))
    pool.shutdown()
    for f in funcs:
        row = [f + (" (ULP of the summands" + (" / cond)" if f in CONDITIONED else ")")
                    if f in SUMMANDS else "")]
        for dtn in ("float64", "float32"):
            for lv in levels:
                r = next(r for r in table[lv] if r["name"] == f and r["dtype"] == dtn)
                row.append(f"{r['max_ulp']:.2f}")
        print("| " + " | ".join(row) + " |")
    print(f"\n{time.time() - t0:.0f} s; load average at the end {os.getloadavg()}")
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(table, fh, indent=1)


if __name__ == "__main__":
    main()
