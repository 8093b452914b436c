"""pytest-benchmark suite: mlkern.layers against the bare NumPy GEMM and PyTorch.

Groups named like ``dense_relu-fwd-f32-256x1024x1024-T1``; in each group
mlkern (public names only: ``mlkern.layers.dense`` / ``dense_backward`` /
``embedding`` / ``embedding_backward``), the bare NumPy GEMM ``x @ w.T``
(forward groups; OpenBLAS at T threads through threadpoolctl) and, when
``import torch`` works, PyTorch (``relu(F.linear(x, w, b))``, its autograd,
``F.embedding`` + backward).  Threads: ``mlkern.threads(T)``,
``torch.set_num_threads(T)``.  Each benchmark checks its result once
against a float64 NumPy reference, so ``python -m pytest
benchmarks/bench_layers.py --benchmark-disable -q`` is a correctness pass.
The issue-14 bars are measured by ``benchmarks/layers_bars.py`` (interleaved
medians).
"""
import numpy as np
import pytest

import mlkern
from mlkern import layers as L

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # optional peer
    torch = None

DENSE = [(1, 512, 512), (32, 512, 512), (256, 1024, 1024)]
DTYPES = {"f32": np.float32, "f64": np.float64}
THREADS = [1, 2]


def _dense_data(shape, dt):
    M, K, N = shape
    rng = np.random.default_rng(0)
    x = rng.standard_normal((M, K)).astype(dt)
    w = (rng.standard_normal((N, K)) / np.sqrt(K)).astype(dt)
    b = rng.standard_normal(N).astype(dt)
    g = rng.standard_normal((M, N)).astype(dt)
    return x, w, b, g


def _tol(dt):
    return 2e-4 if dt == np.float32 else 1e-10


class _threads:
    def __init__(self, T):
        self.T = T

    def __enter__(self):
        from threadpoolctl import threadpool_limits

        self.m = mlkern.threads(self.T)
        self.m.__enter__()
        self.lim = threadpool_limits(self.T, user_api="blas")
        if torch is not None:
            self.old = torch.get_num_threads()
            torch.set_num_threads(self.T)

    def __exit__(self, *a):
        self.lim.restore_original_limits()
        if torch is not None:
            torch.set_num_threads(self.old)
        self.m.__exit__(*a)


def _close(got, want, dt):
    got = np.asarray(got, np.float64)
    assert np.abs(got - want).max() <= _tol(dt) * max(1.0, np.abs(want).max())


@pytest.mark.parametrize("T", THREADS)
@pytest.mark.parametrize("dtn", list(DTYPES))
@pytest.mark.parametrize("shape", DENSE, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("impl", ["mlkern", "numpy_gemm", "torch"])
def test_dense_relu_forward(benchmark, impl, shape, dtn, T):
    dt = DTYPES[dtn]
    x, w, b, _ = _dense_data(shape, dt)
    benchmark.group = f"dense_relu-fwd-{dtn}-{'x'.join(map(str, shape))}-T{T}"
    ref = x.astype(np.float64) @ w.astype(np.float64).T
    if impl == "mlkern":
        fn = lambda: L.dense(x, w, b, activation="relu")  # noqa: E731
        ref = np.maximum(ref + b, 0)
    elif impl == "numpy_gemm":
        fn = lambda: x @ w.T  # noqa: E731
    else:
        if torch is None:
            pytest.skip("torch not installed")
        xt, wt, bt = (torch.from_numpy(a) for a in (x, w, b))
        fn = lambda: torch.relu(F.linear(xt, wt, bt))  # noqa: E731
        ref = np.maximum(ref + b, 0)
    with _threads(T):
        r = benchmark(fn)
    _close(r.numpy() if torch is not None and isinstance(r, torch.Tensor) else r, ref, dt)


@pytest.mark.parametrize("T", THREADS)
@pytest.mark.parametrize("dtn", list(DTYPES))
@pytest.mark.parametrize("shape", DENSE, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("impl", ["mlkern", "torch"])
def test_dense_relu_forward_backward(benchmark, impl, shape, dtn, T):
    dt = DTYPES[dtn]
    x, w, b, g = _dense_data(shape, dt)
    benchmark.group = f"dense_relu-fwdbwd-{dtn}-{'x'.join(map(str, shape))}-T{T}"
    if impl == "mlkern":
        def fn():
            y, s = L.dense(x, w, b, activation="relu", return_saved=True)
            return L.dense_backward(g, x, w, activation="relu", saved=s)[1]
    else:
        if torch is None:
            pytest.skip("torch not installed")
        xt, wt, bt = (torch.from_numpy(a).clone().requires_grad_(True) for a in (x, w, b))
        gt = torch.from_numpy(g)

        def fn():
            xt.grad = wt.grad = bt.grad = None
            torch.relu(F.linear(xt, wt, bt)).backward(gt)
            return wt.grad.numpy()
    with _threads(T):
        gw = benchmark(fn)
    z = x.astype(np.float64) @ w.astype(np.float64).T + b
    _close(gw, (g * (z > 0)).T @ x.astype(np.float64), dt)


@pytest.mark.parametrize("T", THREADS)
@pytest.mark.parametrize("dtn", list(DTYPES))
@pytest.mark.parametrize("impl", ["mlkern", "torch"])
def test_embedding_forward_backward(benchmark, impl, dtn, T):
    dt = DTYPES[dtn]
    rng = np.random.default_rng(1)
    V, D, n = 50_000, 256, 4096
    w = rng.standard_normal((V, D)).astype(dt)
    idx = rng.integers(0, V, n)
    g = rng.standard_normal((n, D)).astype(dt)
    benchmark.group = f"embedding-fwdbwd-{dtn}-50000x256-4096-T{T}"
    if impl == "mlkern":
        def fn():
            L.embedding(idx, w)
            return L.embedding_backward(g, idx, V)
    else:
        if torch is None:
            pytest.skip("torch not installed")
        wt = torch.from_numpy(w).clone().requires_grad_(True)
        it, gt = torch.from_numpy(idx), torch.from_numpy(g)

        def fn():
            wt.grad = None
            F.embedding(it, wt).backward(gt)
            return wt.grad.numpy()
    with _threads(T):
        gw = benchmark(fn)
    want = np.zeros((V, D))
    np.add.at(want, idx, g.astype(np.float64))
    _close(gw, want, dt)
