"""Accuracy of mlkern's math layer and activations in ULP, measured on
>= 10^6 points per function and dtype, for every SIMD level this CPU runs.

    python benchmarks/ulp_table.py                 # all levels, 10^6 points
    python benchmarks/ulp_table.py --points 100000 --levels baseline

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
normal range).  Points: uniform over the whole domain, a dense normal sample
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


REFS_LD = {
    "exp": np.exp, "expm1": np.expm1, "log": np.log, "log1p": np.log1p, "tanh": np.tanh,
    "sigmoid": _ld_sigmoid,
    "softplus": _ld_softplus,
    "log_sigmoid": lambda x: -_ld_softplus(-x),
    "silu": lambda x: x * _ld_sigmoid(x),
    "elu": lambda x: np.where(x > 0, x, np.expm1(x)),
    "sigmoid_grad": lambda x: np.exp(-abs(x)) / (1 + np.exp(-abs(x))) ** 2,
    "tanh_grad": lambda x: 4 * np.exp(-2 * abs(x)) / (1 + np.exp(-2 * abs(x))) ** 2,
}
MP_FUNCS = ("erf", "erfc", "ndtr", "npdf", "gelu", "gelu_tanh")


def _mp_ref(name):
    import mpmath as mp
    mp.mp.dps = 32
    return {"erf": mp.erf, "erfc": mp.erfc,
            "ndtr": lambda v: mp.ncdf(v),
            "npdf": lambda v: mp.npdf(v),
            "gelu": lambda v: v * mp.ncdf(v),
            # exact constants: sqrt(2/pi) and the decimal 0.044715
            "gelu_tanh": lambda v: v / (1 + mp.exp(-2 * mp.sqrt(2 / mp.pi)
                                                  * (v + mp.mpf("0.044715") * v ** 3))),
            }[name], mp


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
    raise KeyError(name)


def reference(name, dt, x):
    """(hi, lo): the reference value as a float64 pair (hi + lo)."""
    if name in MP_FUNCS and dt == np.float64:
        f, mp = _mp_ref(name)
        hi = np.empty(x.size)
        lo = np.empty(x.size)
        for i, v in enumerate(x):
            r = f(mp.mpf(float(v)))
            hi[i] = float(r)
            lo[i] = float(r - mp.mpf(hi[i])) if np.isfinite(hi[i]) else 0.0
        return hi, lo
    if name in MP_FUNCS:
        return _f64_ref(name, x.astype(np.float64)), np.zeros(x.size)
    with np.errstate(all="ignore"):
        refl = REFS_LD[name](x.astype(LD))
    hi = refl.astype(np.float64)
    with np.errstate(all="ignore"):
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
        if name in ("erf", "erfc", "ndtr", "npdf", "gelu", "gelu_tanh"):
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
    return getattr(mlkern, name)(x)


FUNCS = ["exp", "expm1", "log", "log1p", "tanh", "erf", "erfc", "ndtr", "npdf",
         "sigmoid", "softplus", "log_sigmoid", "silu", "elu", "gelu", "gelu_tanh",
         "sigmoid_grad", "tanh_grad"]
DTYPES = (np.float64, np.float32)


def inputs(funcs, points):
    rng = np.random.default_rng(0)
    return {(f, np.dtype(dt).name): domain(f, dt, points, rng) for dt in DTYPES for f in funcs}


def child(points, funcs, out):
    """Compute mlkern's values for every case at the level of this process."""
    xs = inputs(funcs, points)
    np.savez(out, **{f"{f}|{d}": np.asarray(mlkern_values(f, x)) for (f, d), x in xs.items()})


def errors(name, dt, x, y, ref):
    hi, lo = ref
    ok = np.isfinite(hi) & (np.abs(hi) <= float(np.finfo(dt).max))
    y = np.asarray(y, np.float64)
    with np.errstate(all="ignore"):
        err = np.abs((y - hi) - lo)          # y - hi is exact (Sterbenz) near the answer
        e = err / ulp_of(hi, dt)
    # outside the finite range of dt: the result must be the same inf (or NaN)
    over = np.isfinite(hi) & (np.abs(hi) > float(np.finfo(dt).max))
    same = (y == hi) | (np.isnan(y) & np.isnan(hi)) | (over & (y == np.sign(hi) * np.inf))
    e = np.where(ok, e, np.where(same, 0.0, np.inf))
    return e, ok


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=1_000_000)
    ap.add_argument("--levels", default="all", help="comma list of MLKERN_CPU levels, or 'all'")
    ap.add_argument("--functions", default=",".join(FUNCS))
    ap.add_argument("--json", default=None, help="write all results here")
    ap.add_argument("--_child", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    funcs = a.functions.split(",")
    if a._child:
        child(a.points, funcs, a._child)
        return
    import io

    import mlkern
    if a.levels == "all":
        levels = ["baseline"] + mlkern.show_config(file=io.StringIO())["cpu_supports"]
    else:
        levels = a.levels.split(",")
    values = {}
    for lv in levels:                      # mlkern's values, one process per level
        tmp = os.path.abspath(f".ulp_{lv}.npz")
        env = dict(os.environ, MLKERN_CPU=lv)
        subprocess.run([sys.executable, __file__, "--points", str(a.points), "--functions",
                        a.functions, "--_child", tmp], env=env, check=True)
        with np.load(tmp) as z:
            values[lv] = {k: z[k] for k in z.files}
        os.remove(tmp)
    xs = inputs(funcs, a.points)
    table = {lv: [] for lv in levels}
    for (f, d), x in xs.items():           # one reference per case, shared by the levels
        dt = np.dtype(d).type
        ref = reference(f, dt, x)
        for lv in levels:
            e, ok = errors(f, dt, x, values[lv][f"{f}|{d}"], ref)
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
    for f in funcs:
        row = [f]
        for dtn in ("float64", "float32"):
            for lv in levels:
                r = next(r for r in table[lv] if r["name"] == f and r["dtype"] == dtn)
                row.append(f"{r['max_ulp']:.2f}")
        print("| " + " | ".join(row) + " |")
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(table, fh, indent=1)


if __name__ == "__main__":
    main()
