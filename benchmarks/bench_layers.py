"""pytest-benchmark suite: mlkern's layers (``mlkern.layers``) against NumPy
and PyTorch.

One benchmark group per case x size x dtype x threads, named like
``dense_relu-32x512x512-f32-T1`` or ``embedding_fwd_bwd-50000x256_4096-f64-T2``.
The cases, peers, inputs and float64 references are
:mod:`mlkern.bench.families.layers` (shared with ``python -m mlkern bench
--functions layers``):

* ``dense_relu``: mlkern ``dense(x, W, b, activation="relu", out=)``;
  NumPy ``matmul(out=)``, ``+= b``, ``maximum(out=)`` and the bare GEMM
  ``x @ W.T`` (checked against the GEMM alone); torch
  ``F.relu(F.linear(x, W, b))`` ([a]);
* ``dense_relu_fwd_bwd``: the forward with ``return_saved=True`` then
  ``dense_backward``; NumPy's forward and three GEMMs; torch autograd ([a]);
* ``embedding_fwd_bwd``: ``embedding(out=)`` then ``embedding_backward(out=)``;
  NumPy ``take(out=)`` and ``add.at``; torch ``F.embedding`` + autograd ([a]).

Sizes: dense (M, K, N) = (1, 512, 512), (32, 512, 512), (256, 1024, 1024);
embedding a 50,000 x 256 table, 4,096 tokens.  ``MLKERN_BENCH_LAYER_SHAPES=smoke``
takes the small stand-ins of the smoke run.  ``--bench-dtypes``,
``--bench-threads`` and ``--bench-no-torch`` of the conftest apply.
Threads: ``mlkern.threads(T)``; torch ``set_num_threads(T)`` (checked);
NumPy's OpenBLAS limited to T threads (threadpoolctl).  All T=1 benchmarks
run first, then T=2 by runtime (NumPy, mlkern, torch).

Every benchmark checks its results once, after timing, against float64:
each output and gradient within 2e-4 (float32) / 1e-8 (float64) of
max(1, max|reference|).  An mlkern build without ``mlkern.layers`` skips
mlkern's entries, visibly.

    python -m pytest benchmarks/bench_layers.py --benchmark-disable -q   # correctness pass
    python -m pytest benchmarks/bench_layers.py -k "dense_relu and 32x512x512 and T1"
"""
import os
import re

import numpy as np
import pytest

import mlkern
from mlkern import bench as B

_INPUTS = B.Inputs()          # module-level cache: one draw (and reference) per size/dtype


def _slug(name):
    return re.sub(r"[^A-Za-z0-9.]+", "_", name).strip("_")


def _parse(spec, conv):
    return [conv(t.strip()) for t in spec.split(",") if t.strip()]


def _points():
    smoke = os.environ.get("MLKERN_BENCH_LAYER_SHAPES", "").strip().lower() in ("smoke", "quick", "small")
    return list(B.LAYER_SHAPES_SMOKE if smoke else B.LAYER_SHAPES)


def _units(config):
    """(case, impl, dtype, point, T) in run order (see the module docstring)."""
    dtypes = [np.dtype(B.DTYPES[t]) for t in _parse(config.getoption("bench_dtypes"), str)]
    threads = sorted(set(_parse(config.getoption("bench_threads"), int)))
    runtimes = ("mlkern", "numpy") if config.getoption("bench_no_torch") else ("mlkern", "numpy", "torch")
    units = []
    for T in threads:
        phases = [runtimes] if T == 1 else [(r,) for r in ("numpy", "mlkern", "torch") if r in runtimes]
        for rts in phases:
            for p in _points():
                for dtype in dtypes:
                    for case in B.LAYER_CASES:
                        if case.family == p.kind:
                            units.extend((case, impl, dtype, p, T) for impl in case.all_impls(rts))
    return units


def _id(unit):
    case, impl, dtype, p, T = unit
    return f"{case.name}-{_slug(p.spec)}-{B.dtype_tag(dtype)}-T{T}-{impl.runtime}:{_slug(impl.name)}"


def pytest_generate_tests(metafunc):
    if "unit" in metafunc.fixturenames:
        units = _units(metafunc.config)
        metafunc.parametrize("unit", units, ids=[_id(u) for u in units])


def test_bench(benchmark, unit):
    case, impl, dtype, p, T = unit
    benchmark.group = f"{case.name}-{_slug(p.spec)}-{B.dtype_tag(dtype)}-T{T}"
    benchmark.name = impl.label
    benchmark.extra_info.update(function=case.name, shape=list(p.dims), dtype=B.dtype_tag(dtype),
                                threads=T, runtime=impl.runtime, impl=impl.name)
    if impl.runtime == "torch":
        pytest.importorskip("torch")
    if not impl.available():
        pytest.skip(f"{impl.name} is not available (mlkern.layers missing from this build?)")
    ins = _INPUTS.for_case(case, p, dtype)
    out = B.new_outputs(case, p, dtype)
    fn = B.prepare(impl, ins, out)
    with np.errstate(all="ignore"):
        if impl.runtime == "mlkern":
            with mlkern.threads(T):
                res = benchmark(fn)
        elif impl.runtime == "torch":
            B.set_torch_threads(T)
            res = benchmark(fn)
        else:                 # NumPy: OpenBLAS at T threads
            with B.blas_threads(T):
                res = benchmark(fn)
    stats = getattr(benchmark, "stats", None)
    if stats is not None and getattr(stats, "stats", None) is not None:
        med = stats.stats.median * 1e9
        fl = case.flops(p)
        if fl is not None:
            benchmark.extra_info["gflops"] = fl / med
        else:
            benchmark.extra_info["gbps"] = case.nbytes(p, dtype.itemsize) / med
    B.assert_close(case, ins, res, p, impl, cache=_INPUTS,
                   label=f"{case.name} {B.dtype_tag(dtype)} {p.spec} T={T} {impl.name}")


# ---------------------------------------------------------------- recurrent layers (issue 16)
# rnn / lstm / gru, forward and forward+backward, mlkern against PyTorch's
# nn.RNN / nn.LSTM / nn.GRU (autograd for the backward), float32 and float64,
# issue 16's shape T=100, N=32, I=H=256 (MLKERN_BENCH_LAYER_SHAPES=smoke:
# T=8, N=4, I=H=32).  Groups like ``lstm_fwd_bwd-100x32x256x256-f32-T1``.
# Forward: the output and h_n; forward+backward: return_saved=True, then the
# backward with grad_output and grad_h_n given (grad_x, grad_h0 and the
# weight and bias gradients computed).  Checked once after timing: mlkern
# against its own float64 run (2e-4 / 1e-8 of max(1, |reference|)) and, with
# PyTorch, PyTorch's result against mlkern's.  All T=1 entries run first.
_REC_KINDS = ("rnn", "lstm", "gru")
_REC_GATES = {"rnn": 1, "lstm": 4, "gru": 3}


def _rec_shape():
    smoke = os.environ.get("MLKERN_BENCH_LAYER_SHAPES", "").strip().lower() in ("smoke", "quick", "small")
    return (8, 4, 32, 32) if smoke else (100, 32, 256, 256)


def _rec_inputs(kind, dt):
    T, N, I, H = _rec_shape()
    g = _REC_GATES[kind]
    rng = np.random.default_rng(16)
    s = 1 / np.sqrt(H)
    d = dict(x=rng.standard_normal((T, N, I)), h0=rng.standard_normal((N, H)),
             c0=rng.standard_normal((N, H)), wi=rng.uniform(-s, s, (g * H, I)),
             wh=rng.uniform(-s, s, (g * H, H)), bi=rng.uniform(-s, s, g * H),
             bh=rng.uniform(-s, s, g * H), go=rng.standard_normal((T, N, H)),
             gh=rng.standard_normal((N, H)))
    return {k: v.astype(dt) for k, v in d.items()}


def _rec_mlkern(kind, mode, d):
    from mlkern import layers as L
    args = ((d["x"], d["h0"], d["c0"]) if kind == "lstm" else (d["x"], d["h0"])) \
        + (d["wi"], d["wh"], d["bi"], d["bh"])
    f = getattr(L, kind)
    if mode == "fwd":
        def run():
            out, hn = f(*args)
            return [out] + (list(hn) if kind == "lstm" else [hn])
        return run
    back = getattr(L, kind + "_backward")

    def run():
        r = f(*args, return_saved=True)
        g = back(d["go"], d["gh"], None, r[2]) if kind == "lstm" else back(d["go"], d["gh"], r[2])
        return [a for a in g if a is not None]
    return run


def _rec_torch(kind, mode, d):
    torch = pytest.importorskip("torch")
    T, N, I, H = _rec_shape()
    tdt = torch.float64 if d["x"].dtype == np.float64 else torch.float32
    mod = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[kind](I, H).to(tdt)
    with torch.no_grad():
        for name, key in (("weight_ih_l0", "wi"), ("weight_hh_l0", "wh"), ("bias_ih_l0", "bi"),
                          ("bias_hh_l0", "bh")):
            getattr(mod, name).copy_(torch.from_numpy(d[key]))
    xt, h0t, c0t = (torch.from_numpy(d[k]) for k in ("x", "h0", "c0"))
    got, ght = torch.from_numpy(d["go"]), torch.from_numpy(d["gh"])

    def state(h, c):
        return (h[None], c[None]) if kind == "lstm" else h[None]

    if mode == "fwd":
        def run():
            with torch.no_grad():
                out, hn = mod(xt, state(h0t, c0t))
            hs = list(hn) if kind == "lstm" else [hn]
            return [out.numpy()] + [h[0].numpy() for h in hs]
        return run

    def run():
        xg = xt.clone().requires_grad_()
        hg = h0t.clone().requires_grad_()
        cg = c0t.clone().requires_grad_()
        out, hn = mod(xg, state(hg, cg))
        hn = hn[0] if kind == "lstm" else hn
        ((out * got).sum() + (hn[0] * ght).sum()).backward()
        g = [xg.grad.numpy(), hg.grad.numpy()] + ([cg.grad.numpy()] if kind == "lstm" else [])
        g += [p.grad.numpy() for p in (
            mod.weight_ih_l0, mod.weight_hh_l0, mod.bias_ih_l0, mod.bias_hh_l0)]
        mod.zero_grad(set_to_none=True)
        return g
    return run


def _rec_units(config):
    dtypes = [np.dtype(B.DTYPES[t]) for t in _parse(config.getoption("bench_dtypes"), str)]
    threads = sorted(set(_parse(config.getoption("bench_threads"), int)))
    runtimes = ("mlkern",) if config.getoption("bench_no_torch") else ("mlkern", "torch")
    return [(kind, mode, dt, T, rt) for T in threads for rt in runtimes for dt in dtypes
            for kind in _REC_KINDS for mode in ("fwd", "fwd_bwd")]


def _rec_id(u):
    kind, mode, dt, T, rt = u
    return f"{kind}_{mode}-{'x'.join(map(str, _rec_shape()))}-{B.dtype_tag(dt)}-T{T}-{rt}"


@pytest.fixture(scope="module")
def _rec_refs():
    return {}


def pytest_generate_tests_recurrent(metafunc):     # called from pytest_generate_tests below
    if "rec_unit" in metafunc.fixturenames:
        units = _rec_units(metafunc.config)
        metafunc.parametrize("rec_unit", units, ids=[_rec_id(u) for u in units])


_pgt_dense = pytest_generate_tests


def pytest_generate_tests(metafunc):   # noqa: F811 -- the dense/embedding units and the recurrent ones
    _pgt_dense(metafunc)
    pytest_generate_tests_recurrent(metafunc)


def test_bench_recurrent(benchmark, rec_unit, _rec_refs):
    kind, mode, dt, T, rt = rec_unit
    benchmark.group = f"{kind}_{mode}-{'x'.join(map(str, _rec_shape()))}-{B.dtype_tag(dt)}-T{T}"
    benchmark.name = rt
    benchmark.extra_info.update(function=f"{kind}_{mode}", shape=list(_rec_shape()),
                                dtype=B.dtype_tag(dt), threads=T, runtime=rt)
    d = _rec_inputs(kind, dt)
    if rt == "torch":
        fn = _rec_torch(kind, mode, d)
        B.set_torch_threads(T)
        res = benchmark(fn)
    else:
        if not hasattr(mlkern, "layers") or not hasattr(mlkern.layers, kind):
            pytest.skip(f"mlkern.layers.{kind} is not available in this build")
        fn = _rec_mlkern(kind, mode, d)
        with mlkern.threads(T):
            res = benchmark(fn)
    key = (kind, mode)
    if key not in _rec_refs:
        _rec_refs[key] = _rec_mlkern(kind, mode, _rec_inputs(kind, np.float64))()
    ref = _rec_refs[key]
    rtol = 2e-4 if dt == np.float32 else 1e-8
    assert len(res) == len(ref)
    for a, b in zip(res, ref):
        scale = max(1.0, float(np.abs(b).max()))
        assert np.abs(np.asarray(a, np.float64) - b).max() <= rtol * scale * (5 if mode == "fwd_bwd" else 1), \
            f"{kind} {mode} {B.dtype_tag(dt)} T={T} {rt}"
