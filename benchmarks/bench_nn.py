"""pytest-benchmark suite: mlkern.nn models against PyTorch.

Groups named like ``mlp784-512-512-10-relu-f32-b64-T1``: the MLP
784-512-512-10 (ReLU) inference of an ``mlkern.nn.Sequential`` (public names
only: ``Dense``, ``Activation``, ``Sequential``; each Dense + ReLU runs as one
fused ``mlkern.layers.dense`` call into a reused workspace) against the same
``torch.nn.Sequential`` under ``torch.inference_mode()`` when ``import
torch`` works (its weights loaded into mlkern through ``state_dict``), and a
training step (forward, backward, Adam) of both.  Threads:
``mlkern.threads(T)``, ``torch.set_num_threads(T)``.  Each benchmark checks
its result once against a float64 NumPy reference, so ``python -m pytest
benchmarks/bench_nn.py --benchmark-disable -q`` is a correctness pass.  The
issue-17 bars are measured by ``benchmarks/nn_bars.py`` (interleaved medians).
"""
import numpy as np
import pytest

import mlkern
nn = pytest.importorskip("mlkern.nn", reason="this mlkern build has no mlkern.nn")
import mlkern.optim as optim

try:
    import torch
except ImportError:  # optional peer
    torch = None

SIZES = (784, 512, 512, 10)
BATCHES = [1, 64]
THREADS = [1, 2]


def mlkern_mlp(dtype=np.float32, sizes=SIZES, seed=0):
    """Sequential(Dense, Activation("relu"), ..., Dense) of the given widths."""
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Dense(a, b, dtype=dtype, seed=seed + i))
        if i < len(sizes) - 2:
            layers.append(nn.Activation("relu"))
    return nn.Sequential(*layers)


def torch_mlp(model, sizes=SIZES):
    """The same MLP in PyTorch, with the weights of the mlkern `model`."""
    mods = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        mods.append(torch.nn.Linear(a, b))
        if i < len(sizes) - 2:
            mods.append(torch.nn.ReLU())
    tm = torch.nn.Sequential(*mods)
    if model.parameters()[0].dtype == np.float64:
        tm = tm.double()
    tm.load_state_dict({k: torch.from_numpy(v) for k, v in model.state_dict().items()})
    return tm


def reference(model, x):
    """float64 NumPy forward of the MLP."""
    y = x.astype(np.float64)
    dense = [layer for layer in model if isinstance(layer, nn.Dense)]
    for i, layer in enumerate(dense):
        y = y @ layer.weight.astype(np.float64).T + layer.bias
        if i < len(dense) - 1:
            y = np.maximum(y, 0)
    return y


class _threads:
    def __init__(self, T):
        self.T = T

    def __enter__(self):
        self.m = mlkern.threads(self.T)
        self.m.__enter__()
        if torch is not None:
            self.old = torch.get_num_threads()
            torch.set_num_threads(self.T)

    def __exit__(self, *a):
        if torch is not None:
            torch.set_num_threads(self.old)
        self.m.__exit__(*a)


def _close(got, want, tol=2e-4):
    got = np.asarray(got, np.float64)
    assert np.abs(got - want).max() <= tol * max(1.0, np.abs(want).max())


@pytest.mark.parametrize("T", THREADS, ids=lambda T: f"T{T}")
@pytest.mark.parametrize("batch", BATCHES, ids=lambda b: f"b{b}")
@pytest.mark.parametrize("impl", ["mlkern", "torch"])
def test_mlp_inference(benchmark, impl, batch, T):
    model = mlkern_mlp()
    x = np.random.default_rng(1).standard_normal((batch, SIZES[0])).astype(np.float32)
    benchmark.group = f"mlp{'-'.join(map(str, SIZES))}-relu-f32-b{batch}-T{T}"
    if impl == "mlkern":
        fn = lambda: model(x)  # noqa: E731
    else:
        if torch is None:
            pytest.skip("torch not installed")
        tm, xt = torch_mlp(model), torch.from_numpy(x)

        def fn():
            with torch.inference_mode():
                return tm(xt).numpy()
    with _threads(T):
        y = benchmark(fn)
    _close(y, reference(model, x))


@pytest.mark.parametrize("T", THREADS, ids=lambda T: f"T{T}")
@pytest.mark.parametrize("impl", ["mlkern", "torch"])
def test_mlp_training_step(benchmark, impl, T):
    batch = 64
    model = mlkern_mlp()
    rng = np.random.default_rng(2)
    x = rng.standard_normal((batch, SIZES[0])).astype(np.float32)
    labels = rng.integers(0, SIZES[-1], batch)
    benchmark.group = f"mlp{'-'.join(map(str, SIZES))}-relu-f32-b{batch}-train-step-T{T}"
    if impl == "mlkern":
        opt = optim.Adam(model.parameters(), lr=1e-4)

        def fn():
            logits = model.forward(x, training=True)
            loss, g = mlkern.cross_entropy_with_grad(logits, labels)
            model.backward(g)
            opt.step(model.gradients())
            return loss
    else:
        if torch is None:
            pytest.skip("torch not installed")
        tm = torch_mlp(model)
        topt = torch.optim.Adam(tm.parameters(), lr=1e-4)
        xt, lt = torch.from_numpy(x), torch.from_numpy(labels)

        def fn():
            topt.zero_grad()
            loss = torch.nn.functional.cross_entropy(tm(xt), lt)
            loss.backward()
            topt.step()
            return float(loss)
    with _threads(T):
        loss = benchmark(fn)
    assert np.isfinite(loss) and 0 < float(loss) < 10
