"""pytest-benchmark suite: mlkern activations against NumPy/SciPy and PyTorch.

One benchmark group per function x size x dtype x threads, named like
``sigmoid-f32-1e5-T1``; in each group mlkern (with ``out=``), the NumPy /
SciPy expressions for the same math (``out=`` wherever possible, e.g.
``scipy.special.expit(x, out=o)`` and the 4-pass ``1/(1+exp(-x))``) and,
when ``import torch`` works, PyTorch's ``out=`` / ``grad_input=`` ops
(``torch.sigmoid(out=)``, ``aten.softplus.out``, ``aten.gelu.out``,
``aten.sigmoid_backward``, ``aten.threshold_backward``, ...).  Backward
groups (``sigmoid_backward-...``) time ``f_backward(grad_output, saved)``;
``copy-...`` groups (mlkern's own prange copy kernel vs ``np.copyto`` and
``Tensor.copy_``) give the memory roof.  The cases, peers and reference
formulas live in :mod:`mlkern.bench` (:mod:`mlkern.bench.families.activations`, shared with ``python -m mlkern bench``).

Inputs: x ~ 3 N(0,1), g ~ N(0,1), generated once per size and dtype; the
backward of sigmoid, tanh and elu takes the forward output y.  Outputs are
preallocated.  Threads: ``mlkern.threads(T)``; torch ``set_num_threads(T)``
(checked); NumPy/SciPy are single-threaded whatever T.  All T=1
benchmarks run first, then the T=2 ones with all mlkern benchmarks before
all torch ones, so that parallel calls of the two runtimes are not
interleaved more than necessary.

Every benchmark checks its output once, after timing, against a float64
reference: max abs error / max(1, max|ref|) <= 2e-4 (float32) or 1e-8
(float64).  So ``python -m pytest benchmarks --benchmark-disable -q`` (each
body runs once) is a quick correctness pass.
"""
import re

import numpy as np
import pytest

import mlkern
from mlkern import bench as B

_INPUTS = B.Inputs()          # module-level cache: one draw per size/dtype


def _slug(name):
    return re.sub(r"[^A-Za-z0-9.]+", "_", name).strip("_")


def _parse(spec, conv):
    return [conv(t.strip()) for t in spec.split(",") if t.strip()]


def _units(config):
    """(case, impl, dtype, n, T) in run order (see the module docstring)."""
    sizes = B.parse_sizes(config.getoption("bench_sizes"))
    dtypes = [np.dtype(B.DTYPES[t]) for t in _parse(config.getoption("bench_dtypes"), str)]
    threads = sorted(set(_parse(config.getoption("bench_threads"), int)))
    runtimes = ("mlkern", "numpy") if config.getoption("bench_no_torch") else ("mlkern", "numpy", "torch")
    cases = [B.COPY] + B.CASES
    # every impl of the registry, also those whose optional package is
    # missing: those are skipped at run time, visibly
    all_impls = lambda c, rts: [i for rt in rts  # noqa: E731
                                for i in ([c.mlkern] if rt == "mlkern" else getattr(c, rt))]
    units = []
    for T in threads:
        phases = [runtimes] if T == 1 else [r for r in (("numpy",), ("mlkern",), ("torch",))
                                             if r[0] in runtimes]
        for rts in phases:
            for n in sizes:
                for dtype in dtypes:
                    for case in cases:
                        units.extend((case, impl, dtype, n, T) for impl in all_impls(case, rts))
    return units


def _id(unit):
    case, impl, dtype, n, T = unit
    return f"{case.name}-{B.dtype_tag(dtype)}-{B.fmt_n(n)}-T{T}-{impl.runtime}:{_slug(impl.name)}"


def pytest_generate_tests(metafunc):
    if "unit" in metafunc.fixturenames:
        units = _units(metafunc.config)
        metafunc.parametrize("unit", units, ids=[_id(u) for u in units])


@pytest.fixture(autouse=True)
def _quiet_fp():
    with np.errstate(all="ignore"):
        yield


def test_bench(benchmark, unit):
    case, impl, dtype, n, T = unit
    benchmark.group = f"{case.name}-{B.dtype_tag(dtype)}-{B.fmt_n(n)}-T{T}"
    benchmark.name = impl.label
    benchmark.extra_info.update(function=case.name, dtype=B.dtype_tag(dtype), n=n, threads=T,
                                runtime=impl.runtime, impl=impl.name)
    if impl.runtime == "torch":
        pytest.importorskip("torch")
    if impl.needs == "scipy":
        pytest.importorskip("scipy.special")

    ins = _INPUTS.for_case(case, n, dtype)
    out = B.new_outputs(case, n, dtype)
    if impl.runtime == "mlkern":
        with mlkern.threads(T):
            benchmark(B.prepare(impl, ins, out))
    elif impl.runtime == "torch":
        B.set_torch_threads(T)
        benchmark(B.prepare(impl, ins, out))
    else:                     # numpy / scipy: single-threaded
        benchmark(B.prepare(impl, ins, out))

    stats = getattr(benchmark, "stats", None)
    if stats is not None and getattr(stats, "stats", None) is not None:
        benchmark.extra_info["ns_per_el"] = stats.stats.median * 1e9 / n
    B.assert_close(case, ins, out, label=f"{case.name} {B.dtype_tag(dtype)} n={n} T={T} {impl.name}")
