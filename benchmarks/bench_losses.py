"""pytest-benchmark suite: the fused cross-entropy against NumPy, PyTorch and
scikit-learn (when importable).

Groups ``ce_loss_grad-<shape>-<dtype>-T<threads>`` (loss and gradient of the
mean cross-entropy from logits and int64 labels) and ``ce_loss-...`` (loss
only).  Shapes (4096, 1000) and (256, 32000), logits ~ 2 N(0,1), labels
uniform.  Peers:

* mlkern ``cross_entropy_with_grad(z, y, out=g)`` / ``cross_entropy``;
* NumPy: log-softmax with ``out=`` (max, subtract, exp, sum, log), the loss
  by ``take_along_axis``, the gradient ``softmax - onehot`` scaled;
* PyTorch: ``F.cross_entropy`` forward + ``backward()`` (autograd; it
  allocates) and the forward alone;
* scikit-learn ``HalfMultinomialLoss().loss_gradient`` (float labels,
  ``sample_weight = 1/N`` for the mean; ``n_threads=T``).

Each benchmark checks its loss (rel. 1e-5 f32 / 1e-12 f64) and gradient
once against a float64 NumPy reference, so ``--benchmark-disable`` is a
correctness pass.  ``--bench-dtypes``, ``--bench-threads`` and
``--bench-no-torch`` of the conftest apply.

    python -m pytest benchmarks/bench_losses.py -k "ce_loss_grad and 4096x1000"
"""
import numpy as np
import pytest

import mlkern

try:
    import torch
    import torch.nn.functional as F
except Exception:  # pragma: no cover
    torch = None
try:
    from sklearn._loss.loss import HalfMultinomialLoss
except Exception:  # pragma: no cover
    HalfMultinomialLoss = None

SHAPES = [(4096, 1000), (256, 32000)]
DT = {"f32": np.float32, "f64": np.float64}
_DATA = {}


def _data(shape, dt):
    key = (shape, dt)
    if key not in _DATA:
        rng = np.random.default_rng(0)
        z = (2 * rng.standard_normal(shape)).astype(dt)
        y = rng.integers(0, shape[1], shape[0])
        z64 = z.astype(np.float64)
        m = z64.max(axis=1, keepdims=True)
        lse = m[:, 0] + np.log(np.exp(z64 - m).sum(axis=1))
        loss = float(np.mean(lse - z64[np.arange(shape[0]), y]))
        p = np.exp(z64 - lse[:, None])
        p[np.arange(shape[0]), y] -= 1
        _DATA[key] = (z, y, loss, p / shape[0])
    return _DATA[key]


def _check(loss, grad, ref_loss, ref_grad, dt):
    tol = 1e-5 if dt == np.float32 else 1e-12
    assert abs(float(loss) - ref_loss) <= tol * max(1.0, abs(ref_loss)), (loss, ref_loss)
    if grad is not None:
        gtol = 2e-4 if dt == np.float32 else 1e-8
        err = np.max(np.abs(np.asarray(grad, np.float64) - ref_grad)) / max(1e-30, np.max(np.abs(ref_grad)))
        assert err <= gtol, err


def _np_loss_grad(z, y):
    n = z.shape[0]
    m = z.max(axis=1, keepdims=True)
    g = np.subtract(z, m)
    np.exp(g, out=g)
    s = g.sum(axis=1, keepdims=True)
    lse = np.log(s)[:, 0] + m[:, 0]
    loss = np.mean(lse - z[np.arange(n), y])
    np.multiply(g, 1.0 / (s * n), out=g)
    g[np.arange(n), y] -= 1.0 / n
    return loss, g


def _impls(shape, dt, threads, no_torch):
    z, y, rl, rg = _data(shape, dt)
    g = np.empty_like(z)
    out = {"mlkern": lambda: mlkern.cross_entropy_with_grad(z, y, out=g),
           "numpy softmax-onehot": lambda: _np_loss_grad(z, y)}
    if torch is not None and not no_torch:
        tz = torch.from_numpy(z.copy()).requires_grad_()
        ty = torch.from_numpy(y)

        def tfb():
            tz.grad = None
            loss = F.cross_entropy(tz, ty)
            loss.backward()
            return loss.detach().numpy(), tz.grad.numpy()
        out["torch F.cross_entropy fwd+bwd [a]"] = tfb
    if HalfMultinomialLoss is not None:
        lo = HalfMultinomialLoss(n_classes=shape[1])
        yf = y.astype(dt)
        sw = np.full(shape[0], 1.0 / shape[0], dt)
        lout = np.empty(shape[0], dt)
        gout = np.empty_like(z)

        def skl():
            lo.loss_gradient(y_true=yf, raw_prediction=z, sample_weight=sw, loss_out=lout,
                             gradient_out=gout, n_threads=threads)
            return lout.sum(), gout
        out["sklearn HalfMultinomialLoss.loss_gradient"] = skl
    return out


def _cases(config):
    dts = [d.strip() for d in config.getoption("--bench-dtypes").split(",") if d.strip()]
    ths = [int(t) for t in config.getoption("--bench-threads").split(",") if t.strip()]
    return [(s, d, t) for t in ths for s in SHAPES for d in dts]


def pytest_generate_tests(metafunc):
    if "ce_case" in metafunc.fixturenames:
        cases = _cases(metafunc.config)
        impl_names = ["mlkern", "numpy softmax-onehot", "torch F.cross_entropy fwd+bwd [a]",
                      "sklearn HalfMultinomialLoss.loss_gradient"]
        params = [(c, name) for c in cases for name in impl_names]
        metafunc.parametrize("ce_case", params,
                             ids=[f"{s[0]}x{s[1]}-{d}-T{t}-{name.split()[0]}"
                                  for (s, d, t), name in params])


def test_ce_loss_grad(benchmark, ce_case, request):
    (shape, dname, threads), name = ce_case
    dt = DT[dname]
    impls = _impls(shape, dt, threads, request.config.getoption("--bench-no-torch"))
    if name not in impls:
        pytest.skip(f"{name} not available")
    f = impls[name]
    benchmark.group = f"ce_loss_grad-{shape[0]}x{shape[1]}-{dname}-T{threads}"
    z = _data(shape, dt)[0]
    benchmark.extra_info["ns_per_el"] = None
    if torch is not None:
        torch.set_num_threads(threads)
    with mlkern.threads(threads):
        res = benchmark(f)
    if benchmark.stats is not None and getattr(benchmark.stats, "stats", None) is not None:
        benchmark.extra_info["ns_per_el"] = benchmark.stats.stats.median / z.size * 1e9
    _, _, rl, rg = _data(shape, dt)
    _check(res[0], res[1], rl, rg, dt)
