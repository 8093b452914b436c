"""Max ULP error of softmax, log_softmax and logsumexp on random rows.

The reference is computed in long double (x86 80-bit: 11 more bits than
float64) from the float64/float32 input, with the same max-shift and the
log1p form; errors are in units of the last place of the reference value
rounded to the working dtype.  Two tables: against the exact shift
x - m, and against the shift rounded to the working precision.  The first
includes the error of rounding x - m itself, which e^{x-m} amplifies by
|x - m| (up to ~100 ULP for x ~ 30 N(0,1)); every working-precision softmax
(SciPy's, PyTorch's) has it.  The second is the kernel's own error.  Rows: n in {10, 1000, 32000}, x ~ s N(0,1)
for s in {2, 30}, along the last axis and along axis 0 (column kernel).

    PYTHONPATH=src python benchmarks/ulp_rowwise.py [--rows 200]
"""
import argparse

import numpy as np

import mlkern

LD = np.longdouble


def ref(x, axis, rounded_shift=False):
    xl = x.astype(LD)
    m = np.max(xl, axis=axis, keepdims=True)
    d = xl - m
    if rounded_shift:   # x - m rounded to the working dtype, as every kernel does
        d = (x - np.max(x, axis=axis, keepdims=True)).astype(LD)
    e = np.exp(d)
    s = np.sum(e, axis=axis, keepdims=True)
    rest = np.sum(np.where(d == 0, 0, e), axis=axis, keepdims=True) + \
        (np.sum(d == 0, axis=axis, keepdims=True) - 1)
    L = np.log1p(rest)
    return e / s, d - L, np.squeeze(m + L, axis=axis)


def ulp_err(got, want, dt):
    want_r = want.astype(dt)
    # ulp of the rounded reference; tiny values: the smallest subnormal
    sp = np.spacing(np.abs(want_r)).astype(LD)
    sp = np.maximum(sp, LD(np.finfo(dt).smallest_subnormal))
    return np.abs(got.astype(LD) - want) / sp


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=200)
    a = ap.parse_args()
    print(f"SIMD level {mlkern.show_config(file=open('/dev/null', 'w'))['simd_level']}")
    for rs in (False, True):
        print("\nreference shift:", "rounded x - m" if rs else "exact x - m")
        table(a, rs)


def table(a, rs):
    rng = np.random.default_rng(0)
    print("| function | dtype | axis | max ULP (n=10) | n=1000 | n=32000 |")
    print("|---|---|---|---|---|---|")
    res = {}
    for dt in (np.float64, np.float32):
        for axis in (-1, 0):
            row = {"softmax": [], "log_softmax": [], "logsumexp": []}
            for n in (10, 1000, 32000):
                rows = max(4, a.rows * 1000 // max(n, 1000))
                worst = {k: 0.0 for k in row}
                for s in (2.0, 30.0):
                    x = (s * rng.standard_normal((rows, n))).astype(dt)
                    if axis == 0:
                        x = np.ascontiguousarray(x.T)
                    p, lp, lse = ref(x, axis, rs)
                    for k, got, want in (("softmax", mlkern.softmax(x, axis=axis), p),
                                         ("log_softmax", mlkern.log_softmax(x, axis=axis), lp),
                                         ("logsumexp", mlkern.logsumexp(x, axis=axis), lse)):
                        worst[k] = max(worst[k], float(np.max(ulp_err(got, want, dt))))
                for k in row:
                    row[k].append(worst[k])
            for k, v in row.items():
                print(f"| {k} | {np.dtype(dt).name} | {axis} | " + " | ".join(f"{u:.2f}" for u in v) + " |")
                res[(k, np.dtype(dt).name, axis)] = v
    return res


if __name__ == "__main__":
    main()
