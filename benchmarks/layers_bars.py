"""The bars of issue 14 (mlkern.layers), measured: run ``python benchmarks/layers_bars.py``.

Medians of interleaved runs (each repeat times every contender once, in
turn), float32 and float64, mlkern's thread count T = 1 and 2 (PyTorch's and
NumPy's BLAS set to the same count).  Prints one line per case with the
ratios the issue asks for, and the load average before and after (the
figures mean little on a loaded machine).  Run it as

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/layers_bars.py [--quick]

Contenders:
* mlkern: ``dense(x, w, b, activation="relu")``; forward+backward:
  ``dense(..., return_saved=True)`` then ``dense_backward`` (grad_x too);
  embedding: ``embedding`` then ``embedding_backward``.
* PyTorch (if installed): ``relu(F.linear(x, w, b))``; autograd of the same
  (x, w and b requiring grad); ``F.embedding`` + backward (dense gradient).
* bare NumPy GEMM ``x @ w.T`` (OpenBLAS at T threads), and "whole" -- the
  other threading design: the whole-matrix GEMM with OpenBLAS at T threads
  into the output, then bias and relu over it (``y += b``; mlkern.relu in
  place).
"""
import os
import statistics
import sys
import time

import numpy as np

import mlkern
from mlkern import layers as L

try:
    import torch
    import torch.nn.functional as F
except ImportError:        # PyTorch is optional
    torch = None
from threadpoolctl import threadpool_limits

QUICK = "--quick" in sys.argv
REPEATS = 7 if QUICK else 15


def _per_call(fn, budget=0.05):
    """Seconds per call of fn, from a loop of calls lasting about `budget`."""
    fn()
    n = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        dt = time.perf_counter() - t0
        if dt >= budget or n >= 1 << 20:
            return dt / n
        n = max(n * 2, int(n * budget / max(dt, 1e-9)))


def interleaved(contenders, repeats=REPEATS, budget=0.03):
    """{name: median seconds per call}; every repeat runs every contender once."""
    times = {k: [] for k in contenders}
    for fn in contenders.values():
        fn()
    for _ in range(repeats):
        for k, fn in contenders.items():
            times[k].append(_per_call(fn, budget))
    return {k: statistics.median(v) for k, v in times.items()}


def _fmt(s):
    return f"{s * 1e6:9.1f} us" if s < 1e-3 else f"{s * 1e3:9.3f} ms"


def dense_cases(dt, T):
    rng = np.random.default_rng(0)
    rows = []
    for M, K, N in ((1, 512, 512), (32, 512, 512), (256, 1024, 1024)):
        x = rng.standard_normal((M, K)).astype(dt)
        w = (rng.standard_normal((N, K)) / np.sqrt(K)).astype(dt)
        b = rng.standard_normal(N).astype(dt)
        g = rng.standard_normal((M, N)).astype(dt)
        yw = np.empty((M, N), dt)

        def whole():
            np.matmul(x, w.T, out=yw)
            np.add(yw, b, out=yw)
            return mlkern.relu(yw, out=yw)

        c = {"mlkern": lambda: L.dense(x, w, b, activation="relu"),
             "gemm": lambda: x @ w.T,
             "whole": whole}

        def mk_fb():
            y, s = L.dense(x, w, b, activation="relu", return_saved=True)
            return L.dense_backward(g, x, w, activation="relu", saved=s)

        fb = {"mlkern": mk_fb}
        if torch is not None:
            xt, wt, bt, gt = (torch.from_numpy(a) for a in (x, w, b, g))
            c["torch"] = lambda: torch.relu(F.linear(xt, wt, bt))
            xr, wr, br = (a.clone().requires_grad_(True) for a in (xt, wt, bt))

            def tfb():
                xr.grad = wr.grad = br.grad = None
                torch.relu(F.linear(xr, wr, br)).backward(gt)
            fb["torch"] = tfb
        with torch_threads(T):
            fwd = interleaved(c)
            fwdbwd = interleaved(fb)
        rows.append(((M, K, N), fwd, fwdbwd))
    return rows


class torch_threads:
    def __init__(self, T):
        self.T = T

    def __enter__(self):
        self.lim = threadpool_limits(self.T, user_api="blas")
        if torch is not None:
            self.old = torch.get_num_threads()
            torch.set_num_threads(self.T)
        mlkern.set_num_threads(self.T)

    def __exit__(self, *a):
        self.lim.restore_original_limits()
        if torch is not None:
            torch.set_num_threads(self.old)


def embedding_case(dt, T):
    rng = np.random.default_rng(1)
    V, D, n = 50_000, 256, 4096
    w = rng.standard_normal((V, D)).astype(dt)
    idx = rng.integers(0, V, n)
    g = rng.standard_normal((n, D)).astype(dt)
    c = {"mlkern": lambda: (L.embedding(idx, w), L.embedding_backward(g, idx, V))}
    if torch is not None:
        wt = torch.from_numpy(w).clone().requires_grad_(True)
        it, gt = torch.from_numpy(idx), torch.from_numpy(g)

        def tfb():
            wt.grad = None
            F.embedding(it, wt).backward(gt)
        c["torch"] = tfb
    with torch_threads(T):
        r = interleaved(c, budget=0.1)
    mlkern.set_num_threads(1)
    g1 = L.embedding_backward(g, idx, V)
    mlkern.set_num_threads(2)
    g2 = L.embedding_backward(g, idx, V)
    return r, bool(np.array_equal(g1, g2)) and g1.tobytes() == g2.tobytes()


def main():
    print(f"mlkern {mlkern.__version__} ({mlkern.__file__}), SIMD {mlkern._config.simd_level()},"
          f" torch {getattr(torch, '__version__', 'absent')}, numpy {np.__version__}")
    print("load average before:", os.getloadavg())
    for T in (1, 2):
        for dt in (np.float32, np.float64):
            name = np.dtype(dt).name
            for shape, fwd, fb in dense_cases(dt, T):
                line = f"T={T} {name} dense+relu fwd {shape}: mlkern {_fmt(fwd['mlkern'])}"
                line += f" gemm {_fmt(fwd['gemm'])} whole {_fmt(fwd['whole'])}"
                line += f"  x gemm {fwd['gemm'] / fwd['mlkern']:.2f} x whole {fwd['whole'] / fwd['mlkern']:.2f}"
                if "torch" in fwd:
                    line += f"  torch {_fmt(fwd['torch'])} x torch {fwd['torch'] / fwd['mlkern']:.2f}"
                print(line)
                line = f"T={T} {name} dense+relu fwd+bwd {shape}: mlkern {_fmt(fb['mlkern'])}"
                if "torch" in fb:
                    line += f"  torch {_fmt(fb['torch'])} x torch {fb['torch'] / fb['mlkern']:.2f}"
                print(line)
            r, same = embedding_case(dt, T)
            line = f"T={T} {name} embedding fwd+bwd (50000x256, 4096): mlkern {_fmt(r['mlkern'])}"
            if "torch" in r:
                line += f"  torch {_fmt(r['torch'])} x torch {r['torch'] / r['mlkern']:.2f}"
            print(line + f"  bitwise T1 == T2: {same}")
            sys.stdout.flush()
    print("load average after:", os.getloadavg())


if __name__ == "__main__":
    main()
