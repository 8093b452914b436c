"""The softmax family's bars of issue 19, timed interleaved (rounds of the
compared calls one after the other, the median time of each, the median of
the per-round ratios; > 1 means mlkern is faster):

- ``long``: one long row (1, 1e7), mlkern at 1 thread against mlkern at 2
  threads (the ratio t1 / t2; the bar is >= 1.6), every op, f32 and f64;
  also the whole-row kernel (no chunks, 1 thread: the code before the
  split, reached through _kernels.set_long_row) against 2 threads;
- ``argmax``: (4096, 1000) against ``np.argmax(x, axis=-1)`` (bar 1.2);
- ``axis1``: softmax along axis 1 of (64, 1000, 64) against PyTorch (bar 3);
- ``wide``: softmax and log_softmax of (256, 32000) float32 against
  PyTorch (bar 1.2).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/rowwise_bars.py \
        --parts long,argmax,axis1,wide --rounds 15

PyTorch and NumPy run at 1 thread (the peers' bars are 1-thread bars; argmax
is also shown with mlkern at 2 threads against NumPy's one);
mlkern's outputs are preallocated (out=), torch's through the .out overloads.
"""
import argparse
import os
import statistics
import time

import numpy as np


def timeit(f, reps):
    t0 = time.perf_counter()
    for _ in range(reps):
        f()
    return (time.perf_counter() - t0) / reps


def paired(runs, rounds, reps):
    for f in runs:
        timeit(f, reps)
    ts = [[] for _ in runs]
    for _ in range(rounds):
        for k, f in enumerate(runs):
            ts[k].append(timeit(f, reps))
    med = [statistics.median(t) for t in ts]
    ratios = [statistics.median([b / m for m, b in zip(ts[0], t)]) for t in ts[1:]]
    # the ratio of the minima (the least disturbed samples, on a loaded machine)
    ratios += [min(t) / min(ts[0]) for t in ts[1:]]
    return med, ratios


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--parts", default="long,argmax,axis1,wide")
    ap.add_argument("--ops", default="softmax,log_softmax,logsumexp,softmax_backward,"
                                     "log_softmax_backward")
    ap.add_argument("--dtypes", default="f32,f64")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--n-long", type=float, default=1e7)
    a = ap.parse_args()
    import mlkern as M
    from mlkern import _kernels as K
    torch = None
    if any(p in a.parts for p in ("axis1", "wide")):
        import torch
        torch.set_num_threads(1)
    M.set_num_threads(1)
    level = M.show_config(file=open(os.devnull, "w"))["simd_level"]
    print(f"# load average {os.getloadavg()}, level {level}, rounds {a.rounds}")
    rng = np.random.default_rng(0)
    dts = {"f32": np.float32, "f64": np.float64}
    for part in a.parts.split(","):
        for dn in a.dtypes.split(","):
            dt = dts[dn]
            if part == "long":
                n = int(a.n_long)
                x = (rng.standard_normal((1, n)) * 3).astype(dt)
                g = rng.standard_normal((1, n)).astype(dt)
                y = M.softmax(x)
                ly = M.log_softmax(x)
                o = np.empty_like(x)
                lo = np.empty(1, dt)
                calls = {
                    "softmax": lambda: M.softmax(x, out=o),
                    "log_softmax": lambda: M.log_softmax(x, out=o),
                    "logsumexp": lambda: M.logsumexp(x, axis=-1, out=lo),
                    "softmax_backward": lambda: M.softmax_backward(g, y, out=o),
                    "log_softmax_backward": lambda: M.log_softmax_backward(g, ly, out=o),
                }
                for op in a.ops.split(","):
                    f = calls[op]

                    def t1(f=f):
                        with M.threads(1):
                            f()

                    def t2(f=f):
                        with M.threads(2):
                            f()
                    def whole(f=f):             # the whole-row kernel (no chunks), 1 thread
                        old = K.set_long_row(1 << 62)
                        try:
                            with M.threads(1):
                                f()
                        finally:
                            K.set_long_row(old)
                    med, r = paired([t2, t1, whole], a.rounds, 1)
                    print(f"| long {op} (1,{n:.0e}) | {dn} | T=1 {med[1] * 1e9 / n:.3f} ns/el "
                          f"| T=2 {med[0] * 1e9 / n:.3f} ns/el | t1/t2 {r[0]:.2f} (minima {r[2]:.2f}) "
                          f"| whole row T=1 {med[2] * 1e9 / n:.3f} ns/el, whole/t2 {r[1]:.2f} "
                          f"(minima {r[3]:.2f}) |",
                          flush=True)
            elif part == "argmax":
                x = rng.standard_normal((4096, 1000)).astype(dt)
                o = np.empty(4096, np.int64)
                for t in (1, 2):                  # NumPy runs on one thread either way

                    def am(t=t):
                        with M.threads(t):
                            M.argmax(x, axis=-1, out=o)
                    med, r = paired([am, lambda: np.argmax(x, axis=-1, out=o)], a.rounds, 20)
                    print(f"| argmax (4096,1000) mlkern T={t} | {dn} | mlkern {med[0] * 1e3:.3f} ms "
                          f"| numpy {med[1] * 1e3:.3f} ms | numpy/mlkern {r[0]:.2f} "
                          f"(minima {r[1]:.2f}) |", flush=True)
            elif part == "axis1":
                x = rng.standard_normal((64, 1000, 64)).astype(dt)
                o = np.empty_like(x)
                tx, to = torch.from_numpy(x), torch.from_numpy(np.empty_like(x))
                A = torch.ops.aten
                med, r = paired([lambda: M.softmax(x, axis=1, out=o),
                                 lambda: A._softmax.out(tx, 1, False, out=to)], a.rounds, 5)
                print(f"| softmax axis=1 (64,1000,64) | {dn} | mlkern {med[0] * 1e3:.3f} ms "
                      f"| torch {med[1] * 1e3:.3f} ms | torch/mlkern {r[0]:.2f} (minima {r[1]:.2f}) |", flush=True)
            elif part == "wide":
                x = (rng.standard_normal((256, 32000)) * 3).astype(dt)
                o = np.empty_like(x)
                tx, to = torch.from_numpy(x), torch.from_numpy(np.empty_like(x))
                A = torch.ops.aten
                for op, fm, ft in (
                        ("softmax", lambda: M.softmax(x, out=o),
                         lambda: A._softmax.out(tx, 1, False, out=to)),
                        ("log_softmax", lambda: M.log_softmax(x, out=o),
                         lambda: A._log_softmax.out(tx, 1, False, out=to))):
                    med, r = paired([fm, ft], a.rounds, 5)
                    print(f"| {op} (256,32000) | {dn} | mlkern {med[0] * 1e3:.3f} ms "
                          f"| torch {med[1] * 1e3:.3f} ms | torch/mlkern {r[0]:.2f} (minima {r[1]:.2f}) |", flush=True)


if __name__ == "__main__":
    main()
