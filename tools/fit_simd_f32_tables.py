"""Fit the piecewise-polynomial tables of src/mlkern/_c/mlk_simd_f32.h
(mlk_v_gtab_f32, mlk_v_gtab_lo_f32, mlk_v_ttab_f32) and print them as C.

    python tools/fit_simd_f32_tables.py > /tmp/tabs.h

Pieces of [0, 16): entry 0 is [0, 0.15625), then four per octave from
0.15625 by the two leading mantissa bits (the kernels' index is
(bits(a) >> 21) - 496, at least 0).  On each piece a polynomial in
u = a - centre (centre 0 for entry 0) is fitted by weighted least squares
(relative error, a few reweighting passes toward minimax) in float64 against
scipy.special.erfcx (gelu's g(a) = Phi(-a) e^(a^2/2) = erfcx(a/sqrt2)/2) and
np.tanh, rounded to float32, and checked with float32 Horner evaluation (the
max error, in float32 ULP, goes to stderr).  tanh's entry 0 has c0 = 0 (odd
fit, c1 = 1); from 10 on tanh is 1.  mlk_v_gtab_lo_f32 is the float64 c0
minus its float32 rounding.
"""
import sys

import numpy as np
import scipy.special as sc


def intervals(lo_oct=-3, n_oct=7):
    iv = []
    for k in range(n_oct):
        for j in range(4):
            iv.append((2.0 ** (lo_oct + k) * (1 + j / 4), 2.0 ** (lo_oct + k) * (1 + (j + 1) / 4)))
    iv[0] = (0.0, iv[0][1])
    return iv


def fit(f, iv, deg, odd0=False, amax=None):
    """[(centre, float32 coefficients, c0 rounding error)], max float32-Horner ULP"""
    tabs, worst = [], 0.0
    for i, (a, b) in enumerate(iv):
        if amax is not None and a >= amax:
            tabs.append((a, [0.0] * (deg + 1), 0.0))
            continue
        bb = min(b, amax) if amax else b
        c = float(np.float32((a + bb) / 2)) if a > 0 else 0.0
        k = np.arange(4000)
        xs = (a + bb) / 2 + (bb - a) / 2 * np.cos(np.pi * (k + 0.5) / 4000)
        xs = np.concatenate([xs, [max(a, 1e-6), bb]])
        y = f(xs)
        u = xs - c
        w = 1 / np.abs(y)
        p0 = 1 if (i == 0 and odd0) else 0
        V = np.stack([u ** p for p in range(p0, deg + 1)], 1)
        co = np.linalg.lstsq(V * w[:, None], y * w, rcond=None)[0]
        for _ in range(6):
            r = np.abs(V @ co - y) * w
            ww = w * (1 + 50 * r / r.max())
            co = np.linalg.lstsq(V * ww[:, None], y * ww, rcond=None)[0]
        if p0:
            co = np.concatenate([[0.0], co])
        co32 = co.astype(np.float32).astype(np.float64)
        u32 = xs.astype(np.float32) - np.float32(c)
        acc = np.float32(co32[-1]) * np.ones_like(u32)
        for p in range(deg - 1, -1, -1):
            acc = (acc.astype(np.float64) * u32 + co32[p]).astype(np.float32)
        yt = f(xs.astype(np.float32).astype(np.float64))
        err = np.max(np.abs(acc.astype(np.float64) - yt) / np.abs(yt) / 2.0 ** -23)
        worst = max(worst, err)
        tabs.append((c, list(co32), float(co[0]) - float(co32[0])))
        print(f"  [{a:.5g},{bb:.5g}) centre {c:.6g}: {err:.3f} ULP", file=sys.stderr)
    return tabs, worst


def _c(v):
    return repr(float(np.float32(v))) + "f" if v != 0 else "0.0f"


def emit(name, tabs, deg, fill_one=False, iv=None):
    rows = [[t[0] for t in tabs]] + [[t[1][k] for t in tabs] for k in range(deg + 1)]
    if fill_one:
        for i, (a, _) in enumerate(iv):
            if a >= 10.0:
                rows[0][i], rows[1][i] = 0.0, 1.0
    out = [f"static const float {name}[{deg + 2}][32] __attribute__((aligned(64))) = {{"]
    for lab, r in zip(["centre"] + [f"c{k}" for k in range(deg + 1)], rows):
        r = list(r) + [r[-1]] * (32 - len(r))
        out.append(f"    {{ /* {lab} */ {', '.join(_c(v) for v in r)} }},")
    out.append("};")
    return "\n".join(out)


def main():
    iv = intervals()
    g = lambda a: sc.erfcx(a / np.sqrt(2)) / 2  # noqa: E731
    tg, wg = fit(g, iv, 6)
    tt, wt = fit(np.tanh, iv, 5, odd0=True, amax=10.0)
    print(f"/* gelu g: max {wg:.2f} ULP; tanh: max {wt:.2f} ULP (float32 Horner) */")
    print(emit("mlk_v_gtab_f32", tg, 6))
    lo = [t[2] for t in tg]
    lo = lo + [lo[-1]] * (32 - len(lo))
    print("static const float mlk_v_gtab_lo_f32[32] __attribute__((aligned(64))) = { "
          + ", ".join(_c(v) for v in lo) + " };")
    print(emit("mlk_v_ttab_f32", tt, 5, fill_one=True, iv=iv))


if __name__ == "__main__":
    main()
