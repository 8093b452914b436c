"""Issue-15 pooling bars: max_pool2d and avg_pool2d, kernel 3, stride 2,
padding 1, on x (32, 64, 112, 112), float32 and float64, NCHW and NHWC,
against PyTorch (contiguous and channels_last), at T=1 and T=2 -- each
library in its own process (PyTorch's OpenMP pool spins after a call and
would take a core from mlkern otherwise).  Bars: max_pool2d >= 3x and
avg_pool2d >= 2x PyTorch.  Medians of REPS calls after 3 warm-up calls.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/pool_bars.py          # all, table
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/pool_bars.py mlkern 2 # one process

A line per figure: ``who T dtype op layout median_ms``.  mlkern NCHW is
compared with PyTorch's contiguous tensor, mlkern NHWC with PyTorch's
channels_last tensor (the same memory layout).  Also printed (not a bar):
max_pool2d with return_indices (PyTorch computes the indices anyway).
"""
import os
import subprocess
import sys
import time

import numpy as np

SHAPE = (32, 64, 112, 112)
REPS = int(os.environ.get("POOL_BARS_REPS", "11"))


def med(f, n=REPS):
    for _ in range(3):
        f()
    ts = []
    for _ in range(n):
        t0 = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t0)
    return sorted(ts)[n // 2] * 1e3


def run(who, T):
    rng = np.random.default_rng(0)
    out = []
    for dt in (np.float32, np.float64):
        x = rng.standard_normal(SHAPE).astype(dt)
        xl = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
        if who == "mlkern":
            import mlkern
            from mlkern import layers as L
            mlkern.set_num_threads(T)
            fns = {("max", "NCHW"): lambda: L.max_pool2d(x, 3, 2, 1),
                   ("max", "NHWC"): lambda: L.max_pool2d(xl, 3, 2, 1, layout="NHWC"),
                   ("avg", "NCHW"): lambda: L.avg_pool2d(x, 3, 2, 1),
                   ("avg", "NHWC"): lambda: L.avg_pool2d(xl, 3, 2, 1, layout="NHWC"),
                   ("max+idx", "NCHW"): lambda: L.max_pool2d(x, 3, 2, 1, return_indices=True),
                   ("max+idx", "NHWC"): lambda: L.max_pool2d(xl, 3, 2, 1, return_indices=True, layout="NHWC")}
        else:
            import torch
            import torch.nn.functional as F
            torch.set_num_threads(T)
            xt = torch.from_numpy(x)
            xtl = xt.contiguous(memory_format=torch.channels_last)

            def tf(f, a, **kw):
                def g():
                    with torch.inference_mode():
                        return f(a, 3, 2, 1, **kw)
                return g
            fns = {("max", "NCHW"): tf(F.max_pool2d, xt), ("max", "NHWC"): tf(F.max_pool2d, xtl),
                   ("avg", "NCHW"): tf(F.avg_pool2d, xt), ("avg", "NHWC"): tf(F.avg_pool2d, xtl),
                   ("max+idx", "NCHW"): tf(F.max_pool2d, xt, return_indices=True),
                   ("max+idx", "NHWC"): tf(F.max_pool2d, xtl, return_indices=True)}
        for (op, lay), f in fns.items():
            out.append(f"{who} {T} {np.dtype(dt).name} {op} {lay} {med(f):.2f}")
    return out


def main():
    if len(sys.argv) == 3:
        print("\n".join(run(sys.argv[1], int(sys.argv[2]))), flush=True)
        return
    res = {}
    for T in (1, 2):
        for who in ("mlkern", "torch"):
            p = subprocess.run([sys.executable, __file__, who, str(T)], capture_output=True, text=True,
                               check=True)
            for line in p.stdout.strip().splitlines():
                w, t, dt, op, lay, ms = line.split()
                res[(w, int(t), dt, op, lay)] = float(ms)
    print(f"load average {os.getloadavg()[0]:.2f} (after the run); shape {SHAPE}, k3 s2 p1, medians of {REPS}")
    print(f"{'op':8} {'dtype':8} {'layout':6} {'T':>2} {'mlkern ms':>10} {'torch ms':>10} {'speed-up':>9}  bar")
    for T in (1, 2):
        for dt in ("float32", "float64"):
            for op in ("max", "avg", "max+idx"):
                for lay in ("NCHW", "NHWC"):
                    m, t = res[("mlkern", T, dt, op, lay)], res[("torch", T, dt, op, lay)]
                    bar = {"max": 3.0, "avg": 2.0}.get(op)
                    mark = "" if bar is None else ("ok" if t / m >= bar else f"< {bar:.0f}x")
                    print(f"{op:8} {dt:8} {lay:6} {T:>2} {m:10.1f} {t:10.1f} {t / m:8.2f}x  {mark}")


if __name__ == "__main__":
    main()
