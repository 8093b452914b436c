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
