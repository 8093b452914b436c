"""pytest-benchmark suite: the fused losses (loss and gradient from one
call, mean reduction) against NumPy, PyTorch and scikit-learn (when
importable).

Cross-entropy, shapes (4096, 1000) and (256, 32000), logits ~ 2 N(0,1),
labels uniform; groups ``ce_loss_grad-<shape>-<dtype>-T<threads>`` (loss
and gradient) and ``ce_loss-...`` (loss only).  Peers:

* mlkern ``cross_entropy_with_grad(z, y, out=g)`` / ``cross_entropy(z, y)``;
* NumPy: log-softmax with ``out=`` (max, subtract, exp, sum, log), the loss
  by ``take_along_axis``, the gradient ``softmax - onehot`` scaled;
* PyTorch: ``F.cross_entropy`` forward + ``backward()`` (autograd; it
  allocates) and the forward alone;
* scikit-learn ``HalfMultinomialLoss().loss_gradient`` / ``.loss`` (float
  labels, ``sample_weight = 1/N`` for the mean; ``n_threads=T``).

Elementwise losses at ``--bench-sizes`` (default 1e3,1e5,1e7); groups
``bcel_loss_grad-<n>-<dtype>-T<threads>`` and ``mse_loss_grad-...``; the
cases and most peers are :data:`mlkern.bench.LOSS_CASES` (shared with
``python -m mlkern bench --functions losses``):

* ``bcel_loss_grad``: mlkern ``binary_cross_entropy_with_logits_with_grad(z,
  t, out=g)``, z ~ 4 N(0,1), soft targets t ~ U[0,1); NumPy out= chain
  max(z,0) - z t + log1p(exp(-|z|)) (summed by ``np.add.reduce``), grad
  (expit(z) - t)/N with ``scipy.special.expit(out=)`` (and the 4-pass
  1/(1+exp(-z))); torch ``aten.binary_cross_entropy_with_logits.out`` +
  ``sigmoid/sub/mul(out=)`` ([a]: the loss op is a composite that makes
  n-sized temporaries) and autograd ``F.binary_cross_entropy_with_logits``
  forward + backward ([a]);
* ``mse_loss_grad``: mlkern ``mse_with_grad(p, t, out=g)``, p, t ~ N(0,1);
  NumPy ``subtract(p, t, out=g); dot(g, g)/N; g *= 2/N`` (np.dot's
  OpenBLAS limited to T threads with threadpoolctl); torch
  ``aten.mse_loss`` ([a]: even its out= form makes an n-sized temporary) +
  ``aten.mse_loss_backward.grad_input``, autograd
  ``F.mse_loss`` forward + backward ([a]), and the gradient alone
  ``sub(out=)``, ``mul(out=)`` (no loss);
* ``roof_rrw-<n>-<dtype>-T<threads>`` (only where an input is >= 32 MiB,
  out of L3): a read-read-write pass over the same bytes as these two
  losses (3 n itemsize), ``np.add(a, b, out=c)`` (one thread) and
  ``torch.add(a, b, out=c)`` on ``torch.from_numpy`` views with
  ``set_num_threads(T)``; the faster one is the roof for both losses.

Threads: ``mlkern.threads(T)``; torch ``set_num_threads(T)``.  The
elementwise groups run all T=1 benchmarks first, then T=2 by runtime
(NumPy, mlkern, torch), so that parallel calls of two OpenMP runtimes are
not interleaved; ``extra_info`` holds ns_per_el and gbps (3 n itemsize /
median).

Each benchmark checks its values once against a float64 NumPy reference
(all elements), so ``--benchmark-disable`` is a correctness pass: the loss
within rel. 1e-5 (float32) / 1e-12 (float64) for mlkern and the
cross-entropy peers, within 2e-4 / 1e-8 (``mlkern.bench.TOL``) for the
elementwise peers (NumPy's float32 ``np.dot`` over 1e7 terms is off by
~3e-5); the gradient within 2e-4 / 1e-8 of max|reference gradient|.
``--bench-sizes``, ``--bench-dtypes``, ``--bench-threads`` and
``--bench-no-torch`` of the conftest apply.

    python -m pytest benchmarks/bench_losses.py -k "ce_loss_grad and 4096x1000"
    python -m pytest benchmarks/bench_losses.py -k "1e7" --benchmark-columns=median,iqr,rounds
"""
import re

import numpy as np
import pytest

import mlkern
from mlkern import bench as B
from mlkern.bench import references as R

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
    """(logits, labels, float64 mean loss, float64 gradient), drawn once."""
    key = (shape, dt)
    if key not in _DATA:
        rng = np.random.default_rng(0)
        z = (2 * rng.standard_normal(shape)).astype(dt)
        y = rng.integers(0, shape[1], shape[0])
        loss, grad = R.cross_entropy_ref(z, y, axis=1)
        _DATA[key] = (z, y, loss, grad)
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


def _loss_impls(shape, dt, threads, no_torch):
    """Loss-only peers of the cross-entropy (``ce_loss`` groups)."""
    z, y, rl, rg = _data(shape, dt)
    n = shape[0]
    tmp = np.empty_like(z)

    def np_loss():
        m = z.max(axis=1, keepdims=True)
        np.subtract(z, m, out=tmp)
        np.exp(tmp, out=tmp)
        s = tmp.sum(axis=1)
        return np.mean(np.log(s) + m[:, 0] - np.take_along_axis(z, y[:, None], 1)[:, 0]), None
    out = {"mlkern": lambda: (mlkern.cross_entropy(z, y), None),
           "numpy log-softmax": np_loss}
    if torch is not None and not no_torch:
        tz, ty = torch.from_numpy(z), torch.from_numpy(y)
        out["torch F.cross_entropy fwd [a]"] = lambda: (F.cross_entropy(tz, ty), None)
    if HalfMultinomialLoss is not None:
        lo = HalfMultinomialLoss(n_classes=shape[1])
        yf = y.astype(dt)
        sw = np.full(n, 1.0 / n, dt)
        lout = np.empty(n, dt)

        def skl():
            lo.loss(y_true=yf, raw_prediction=z, sample_weight=sw, loss_out=lout, n_threads=threads)
            return lout.sum(), None
        out["sklearn HalfMultinomialLoss.loss"] = skl
    return out


def pytest_generate_tests(metafunc):
    if "ce_case" in metafunc.fixturenames:
        cases = _cases(metafunc.config)
        impl_names = ["mlkern", "numpy softmax-onehot", "torch F.cross_entropy fwd+bwd [a]",
                      "sklearn HalfMultinomialLoss.loss_gradient"]
        params = [(c, name) for c in cases for name in impl_names]
        metafunc.parametrize("ce_case", params,
                             ids=[f"{s[0]}x{s[1]}-{d}-T{t}-{name.split()[0]}"
                                  for (s, d, t), name in params])
    if "ce_loss_case" in metafunc.fixturenames:
        cases = _cases(metafunc.config)
        impl_names = ["mlkern", "numpy log-softmax", "torch F.cross_entropy fwd [a]",
                      "sklearn HalfMultinomialLoss.loss"]
        params = [(c, name) for c in cases for name in impl_names]
        metafunc.parametrize("ce_loss_case", params,
                             ids=[f"{s[0]}x{s[1]}-{d}-T{t}-{name.split()[0]}"
                                  for (s, d, t), name in params])
    if "el_unit" in metafunc.fixturenames:
        units = _el_units(metafunc.config)
        metafunc.parametrize("el_unit", units, ids=[_el_id(u) for u in units])


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


def test_ce_loss(benchmark, ce_loss_case, request):
    (shape, dname, threads), name = ce_loss_case
    dt = DT[dname]
    impls = _loss_impls(shape, dt, threads, request.config.getoption("--bench-no-torch"))
    if name not in impls:
        pytest.skip(f"{name} not available")
    benchmark.group = f"ce_loss-{shape[0]}x{shape[1]}-{dname}-T{threads}"
    z, _, rl, _ = _data(shape, dt)
    if torch is not None:
        torch.set_num_threads(threads)
    with mlkern.threads(threads):
        res = benchmark(impls[name])
    if benchmark.stats is not None and getattr(benchmark.stats, "stats", None) is not None:
        benchmark.extra_info["ns_per_el"] = benchmark.stats.stats.median / z.size * 1e9
    _check(res[0], None, rl, None, dt)


# ------------------------------------------------------------------ elementwise losses and the roof
EL_GROUPS = {"bcel_loss_grad": "bce_with_logits_with_grad", "mse_loss_grad": "mse_with_grad"}
ROOF = "roof_rrw"
_EL_INPUTS = B.Inputs()       # module-level cache: one draw (and float64 reference) per size/dtype
_STRICT_LOSS = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-12}   # mlkern's loss


@B.torch_peer("torch grad only: sub, mul(2/N) (out=)")
def _t_mse_grad_only(ins, o):
    p, t = ins
    s = 2.0 / p.numel()

    def f():
        torch.sub(p, t, out=o)
        torch.mul(o, s, out=o)
        return None, o
    return f


@B.numpy_peer("np.add(a, b, out=c)")
def _np_rrw(ins, o):
    a, b = ins
    return lambda: np.add(a, b, out=o)


@B.torch_peer("torch.add(a, b, out=c)")
def _t_rrw(ins, o):
    a, b = ins
    return lambda: torch.add(a, b, out=o)


def _group_impls(prefix):
    if prefix == ROOF:
        return [_np_rrw, _t_rrw]
    case = B.LOSS_CASES_BY_NAME[EL_GROUPS[prefix]]
    extra = [_t_mse_grad_only] if prefix == "mse_loss_grad" else []
    return [case.mlkern] + case.numpy + case.torch + extra


def _el_units(config):
    """(group prefix, impl, dtype, n, T) in run order: T=1 first, then each
    T > 1 by runtime (numpy, mlkern, torch)."""
    sizes = B.parse_sizes(config.getoption("--bench-sizes"))
    dtypes = [np.dtype(DT[d.strip()]) for d in config.getoption("--bench-dtypes").split(",") if d.strip()]
    threads = sorted({int(x) for x in config.getoption("--bench-threads").split(",") if x.strip()})
    runtimes = ("mlkern", "numpy") if config.getoption("--bench-no-torch") else ("mlkern", "numpy", "torch")
    units = []
    for T in threads:
        phases = [runtimes] if T == 1 else [(r,) for r in ("numpy", "mlkern", "torch") if r in runtimes]
        for rts in phases:
            for n in sizes:
                for dtype in dtypes:
                    prefixes = list(EL_GROUPS) + ([ROOF] if n * dtype.itemsize >= B.ROOF_BYTES else [])
                    for prefix in prefixes:
                        units.extend((prefix, i, dtype, n, T) for i in _group_impls(prefix)
                                     if i.runtime in rts)
    return units


def _el_id(unit):
    prefix, impl, dtype, n, T = unit
    slug = re.sub(r"[^A-Za-z0-9.]+", "_", impl.name).strip("_")
    return f"{prefix}-{B.fmt_n(n)}-{B.dtype_tag(dtype)}-T{T}-{impl.runtime}:{slug}"


def test_loss_el(benchmark, el_unit):
    prefix, impl, dtype, n, T = el_unit
    benchmark.group = f"{prefix}-{B.fmt_n(n)}-{B.dtype_tag(dtype)}-T{T}"
    benchmark.name = impl.label
    benchmark.extra_info.update(n=n, dtype=B.dtype_tag(dtype), threads=T, runtime=impl.runtime,
                                impl=impl.name)
    if impl.runtime == "torch" and torch is None:
        pytest.skip("torch is not importable")
    if impl.needs == "scipy":
        pytest.importorskip("scipy.special")
    if impl.runtime == "mlkern" and not impl.available():
        pytest.skip(f"{impl.name} is not in this build of mlkern")
    case = B.LOSS_CASES_BY_NAME[EL_GROUPS.get(prefix, "mse_with_grad")]   # the roof reads mse's inputs
    ins = case.inputs(_EL_INPUTS, n, dtype)
    out = B.new_outputs(case, n, dtype)
    fn = B.prepare(impl, ins, out)
    with np.errstate(all="ignore"):
        if impl.runtime == "mlkern":
            with mlkern.threads(T):
                res = benchmark(fn)
        elif impl.runtime == "torch":
            B.set_torch_threads(T)
            res = benchmark(fn)
        else:                 # NumPy: single-threaded, but for np.dot's OpenBLAS
            with B.blas_threads(T):
                res = benchmark(fn)
    stats = getattr(benchmark, "stats", None)
    if stats is not None and getattr(stats, "stats", None) is not None:
        med = stats.stats.median * 1e9
        benchmark.extra_info["ns_per_el"] = med / n
        benchmark.extra_info["gbps"] = 3 * n * dtype.itemsize / med
    label = f"{benchmark.group} {impl.name}"
    if prefix == ROOF:
        ref = ins[0].astype(np.float64) + ins[1]
        err = np.max(np.abs(np.asarray(res, np.float64) - ref)) / max(1.0, np.max(np.abs(ref)))
        assert err <= B.TOL[dtype], f"{label}: err {err:.3g}"
        return
    r = B.loss_check(ins, res, case.reference(_EL_INPUTS, n, ins),
                     loss_tol=_STRICT_LOSS[dtype] if impl.runtime == "mlkern" else None)
    assert r["ok"], (f"{label}: err {r['err']:.3g} > {r['tol']:g} at {r['where']}: "
                     f"got {r['got']!r}, reference {r['ref']!r}")
