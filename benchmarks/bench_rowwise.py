"""pytest-benchmark suite: mlkern's row-wise functions against NumPy/SciPy and PyTorch.

One benchmark group per function x shape x dtype x threads, named like
``softmax-4096x1000-f32-T1`` (``...-64x1000x64ax1-...`` when the reduction
is over axis 1).  Functions: softmax, log_softmax, logsumexp, argmax,
softmax_backward (y*(g - sum(g*y))) and log_softmax_backward
(g - exp(y)*sum(g)).  In each group:

* mlkern, with a preallocated ``out=``;
* SciPy's allocating ``scipy.special.softmax / log_softmax / logsumexp``
  (marked ``[a]``) and the best NumPy expression with ``out=`` (e.g.
  softmax: ``maximum.reduce(keepdims, out=)`` -> ``subtract(out=)`` ->
  ``exp(out=)`` -> ``add.reduce(out=)`` -> ``reciprocal`` -> ``multiply(out=)``;
  logsumexp needs one x-sized temporary, allocated once outside the
  timing; ``np.argmax(out=)``; ``np.vecdot`` for the softmax backward's
  row dot);
* when ``import torch`` works, ATen's out= ops on tensors made with
  ``torch.from_numpy`` (no copy is timed): ``aten._softmax.out``,
  ``aten._log_softmax.out``, ``torch.logsumexp(out=)``,
  ``torch.argmax(out=)``, ``aten._softmax_backward_data.out`` and
  ``aten._log_softmax_backward_data.out`` (grad_output, output, dim,
  input_dtype).

Shapes (the issue's list): (4096, 1000), (256, 32000), (1000000, 10) and
(64, 128) over the last axis, (64, 1000, 64) over axis 1.  Choose others
with ``MLKERN_BENCH_SHAPES`` (or a ``--bench-shapes`` option, if the
conftest defines one), a comma list like ``4096x1000,64x1000x64:1`` or
``smoke`` (64x128 and 16x1000x16:1).  ``--bench-dtypes``,
``--bench-threads`` and ``--bench-no-torch`` of the conftest apply;
``--bench-sizes`` (element counts of the elementwise suite) does not.
Examples::

    python -m pytest benchmarks/bench_rowwise.py --benchmark-disable -q   # correctness pass
    python -m pytest benchmarks/bench_rowwise.py -k "softmax and 4096x1000 and T1"
    MLKERN_BENCH_SHAPES=smoke python -m pytest benchmarks/bench_rowwise.py

Inputs: logits x ~ 2 N(0,1), g ~ N(0,1), generated once per shape and
dtype (float32 = the float64 draw rounded); y = the float64 softmax /
log_softmax of x, rounded.  Threads: ``mlkern.threads(T)``; torch
``set_num_threads(T)`` (checked); NumPy/SciPy are single-threaded
whatever T.  All T=1 benchmarks run first, then T=2: NumPy/SciPy, all
mlkern, all torch, so parallel calls of the two OpenMP runtimes are not
interleaved.  ``extra_info`` holds ns_per_el (median time / elements of
the input) and gbps (PEERS.md's byte model: softmax family 2 N itemsize,
logsumexp (N + rows) itemsize, argmax N itemsize + 8 rows, backwards
3 N itemsize).

Every benchmark checks its output once, after timing, against a float64
reference on a strided subset of the rows: max abs error / max(1,
max|ref|) <= 2e-4 (float32) or 1e-8 (float64); argmax must give the same
index (or a tied value).  So ``--benchmark-disable`` (each body runs
once) is a quick correctness pass.  An mlkern function missing from the
build is skipped, visibly.  The case registry lives in
:mod:`mlkern.bench` (:data:`~mlkern.bench.ROW_CASES`, :mod:`mlkern.bench.families.rowwise`), shared with
``python -m mlkern bench``.
"""
import os
import re

import numpy as np
import pytest

import mlkern
from mlkern import bench as B

_INPUTS = B.Inputs()       # module-level cache: one draw per shape/dtype


def _slug(name):
    return re.sub(r"[^A-Za-z0-9.]+", "_", name).strip("_")


def _parse(spec, conv):
    return [conv(t.strip()) for t in spec.split(",") if t.strip()]


def _shapes(config):
    spec = config.getoption("bench_shapes", default=None) or os.environ.get("MLKERN_BENCH_SHAPES")
    return B.parse_shapes(spec) if spec else list(B.ROW_SHAPES)


def _units(config):
    """(case, impl, dtype, shape, T) in run order (see the module docstring)."""
    shapes = _shapes(config)
    dtypes = [np.dtype(B.DTYPES[t]) for t in _parse(config.getoption("bench_dtypes"), str)]
    threads = sorted(set(_parse(config.getoption("bench_threads"), int)))
    runtimes = ("mlkern", "numpy") if config.getoption("bench_no_torch") else ("mlkern", "numpy", "torch")
    # every impl of the registry, also those whose optional package (or
    # mlkern function) is missing: those are skipped at run time, visibly
    all_impls = lambda c, rts: [i for rt in rts  # noqa: E731
                                for i in ([c.mlkern] if rt == "mlkern" else getattr(c, rt))]
    units = []
    for T in threads:
        phases = [runtimes] if T == 1 else [r for r in (("numpy",), ("mlkern",), ("torch",))
                                             if r[0] in runtimes]
        for rts in phases:
            for rs in shapes:
                for dtype in dtypes:
                    for case in B.ROW_CASES:
                        units.extend((case, impl, dtype, rs, T) for impl in all_impls(case, rts))
    return units


def _id(unit):
    case, impl, dtype, rs, T = unit
    return f"{case.name}-{rs.tag}-{B.dtype_tag(dtype)}-T{T}-{impl.runtime}:{_slug(impl.name)}"


def pytest_generate_tests(metafunc):
    if "unit" in metafunc.fixturenames:
        units = _units(metafunc.config)
        metafunc.parametrize("unit", units, ids=[_id(u) for u in units])


@pytest.fixture(autouse=True)
def _quiet_fp():
    with np.errstate(all="ignore"):
        yield


def test_bench(benchmark, unit):
    case, impl, dtype, rs, T = unit
    benchmark.group = f"{case.name}-{rs.tag}-{B.dtype_tag(dtype)}-T{T}"
    benchmark.name = impl.label
    benchmark.extra_info.update(function=case.name, shape=list(rs.shape), axis=rs.ax,
                                dtype=B.dtype_tag(dtype), n=rs.n, rows=rs.rows, threads=T,
                                runtime=impl.runtime, impl=impl.name)
    if impl.runtime == "torch":
        pytest.importorskip("torch")
    if impl.needs == "scipy":
        pytest.importorskip("scipy.special")
    if impl.runtime == "mlkern" and not impl.available():
        pytest.skip(f"{impl.name} is not in this build of mlkern")

    ins = _INPUTS.for_case(case, rs, dtype)
    out = B.new_outputs(case, rs, dtype)
    fn = B.prepare(impl, ins, out, *rs.args())
    if impl.runtime == "mlkern":
        with mlkern.threads(T):
            res = benchmark(fn)
    elif impl.runtime == "torch":
        B.set_torch_threads(T)
        res = benchmark(fn)
    else:                     # numpy / scipy: single-threaded
        res = benchmark(fn)

    stats = getattr(benchmark, "stats", None)
    if stats is not None and getattr(stats, "stats", None) is not None:
        med = stats.stats.median * 1e9
        benchmark.extra_info["ns_per_el"] = med / rs.n
        benchmark.extra_info["gbps"] = case.nbytes(rs, np.dtype(dtype).itemsize) / med
    got = B.as_numpy(res) if impl.allocates else out
    B.assert_close(case, ins, got, rs, impl,
                   label=f"{case.name} {B.dtype_tag(dtype)} {rs.spec} T={T} {impl.name}")
