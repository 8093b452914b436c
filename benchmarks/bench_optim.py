"""pytest-benchmark suite: the fused in-place Adam step against NumPy and
PyTorch, with a memory roof measured in the same run.

Groups ``adam_step-<n>-<dtype>-T<threads>`` (default n = 10**7 parameters;
``MLKERN_BENCH_OPTIM_SIZES``, e.g. ``1e6,1e7``), lr = 1e-3, the other
hyper-parameters at their defaults (beta1 0.9, beta2 0.999, eps 1e-8, no
weight decay).  Data: param, grad ~ N(0,1), drawn once per size and dtype;
m = v = 0 at the start.  The gradient stays fixed and every call is the
next step of the same run (its own step counter, or torch's), so m, v and
the bias corrections evolve as in training.  Peers:

* mlkern ``adam_step(p, g, m, v, step=k, lr=1e-3)`` (one pass, in place);
* NumPy, ``out=`` ufuncs and one preallocated temporary, no allocation per
  call, 12 in-place passes (``m += (1-b1)(g-m)``: 3, ``v = b2 v +
  (1-b2) g*g``: 4, ``p -= s m / (sqrt(v) + e)`` with the bias corrections
  folded into s and e: 5) -- over the whole arrays, and the same passes
  over 65 536-element blocks (the block's five arrays stay in cache, so
  memory sees one read of p, g, m, v and one write of p, m, v); the faster
  is the NumPy figure.  NumPy is single-threaded whatever T;
* PyTorch ``torch.optim.Adam([t], lr=1e-3, fused=True).step()`` (CPU fused
  Adam, torch >= 2.4; if the fused constructor or first step raises, the
  peer is ``foreach=True`` and labelled so), ``foreach=True`` ([a]: makes
  n-sized temporaries) and ``foreach=False`` (the per-tensor reference
  loop, [a]).  ``t = torch.from_numpy(p)``, ``t.grad =
  torch.from_numpy(g)`` (zero-copy, set once); torch allocates its own
  exp_avg / exp_avg_sq at the first step.

``roof-<n>-<dtype>-T<threads>`` (where an array is >= 32 MiB, out of L3):
the memory roof as PEERS.md defines it, the best GB/s of a copy (read 1,
write 1: ``np.copyto``, mlkern's copy kernel (``mlkern.bench.COPY``), ``Tensor.copy_``) and a
triad-like add (read 2, write 1: ``np.add(a, b, out=c)``,
``torch.add(a, b, out=c)``) at the same dtype and T.  ``%roof`` of a peer =
its effective GB/s (7 n itemsize / median: p, g, m, v read, p, m, v
written) / that best.  ``roof_inplace-...`` (information, not the roof):
``np.add(a, b, out=a)`` and ``a.add_(b)``, read 2, write 1 into a line
just read -- the access pattern of an in-place optimiser, whose writes need
no write-allocate read, which is why fused Adam can exceed the roof.

``extra_info``: n, dtype, threads, runtime, bytes (ideal bytes per call),
ns_per_el (median / n) and gbps (bytes / median).

Threads: ``mlkern.threads(T)``; torch ``set_num_threads(T)`` (checked).
All T=1 benchmarks run first, then T >= 2 by runtime (NumPy, mlkern,
torch), so that parallel calls of two OpenMP runtimes are not interleaved
(PEERS.md, pitfall 2).  Every timed callable is warmed (first call and
>= 0.05 s thrown away) before pytest-benchmark times it.

Correctness: each benchmark first runs its peer once on a separate small
instance (100 003 elements: above mlkern's threshold for a parallel
split) for 3 steps with a new gradient per step, under the same thread
setting, and compares with a float64 NumPy transcription of the update: m
and v within 2e-4 (float32) / 1e-8 (float64) of their max, p within that
of max(1, max|p|), and the update p - p0 elementwise within that of
max|update| plus 3 spacings of p0 (the rounding of p itself).  The roof
peers are compared with a + b / a.  So ``--benchmark-disable`` is a
correctness pass.  ``--bench-dtypes``, ``--bench-threads`` and
``--bench-no-torch`` of the conftest apply.

    PYTHONPATH=src python -m pytest benchmarks/bench_optim.py --benchmark-disable -q
    PYTHONPATH=src python -m pytest benchmarks/bench_optim.py \\
        --benchmark-columns=median,iqr,rounds --benchmark-sort=name
"""
import os
import re
import time

import numpy as np
import pytest

import mlkern
from mlkern import bench as B
from mlkern.bench.families import optim as OPT   # the Adam case: peers, check, constants

try:
    import torch
except Exception:  # pragma: no cover
    torch = None

DT = B.DTYPES
TOL = B.TOL
ROOF_BYTES = B.ROOF_BYTES     # roof groups only where an array is out of L3
LR, B1, B2, EPS = OPT.LR, OPT.B1, OPT.B2, OPT.EPS
BLOCK = OPT.BLOCK             # NumPy blocked variant: elements per block
CHECK_N = OPT.CHECK_N
CHECK_STEPS = OPT.CHECK_STEPS
WARM_S = 0.05
ADAM_BYTES = OPT.ADAM_BYTES   # x n x itemsize: p, g, m, v read; p, m, v written
ADAM = OPT.CASES[0]


def _sizes():
    return B.parse_sizes(os.environ.get("MLKERN_BENCH_OPTIM_SIZES", "1e7"))


_fmt_n = B.fmt_n
_tag = B.dtype_tag
_set_torch_threads = B.set_torch_threads


_DATA = {}


def _data(n, dt):
    """(p0, g) for n elements of dtype dt, drawn once."""
    key = (n, np.dtype(dt))
    if key not in _DATA:
        rng = np.random.default_rng(n)
        _DATA[key] = (rng.standard_normal(n).astype(dt), rng.standard_normal(n).astype(dt))
    return _DATA[key]


# ------------------------------------------------------------------ Adam peers
# The impls of mlkern.bench's optim family (mlkern, NumPy whole-array and
# blocked, torch fused / foreach / for-loop).  make(p, g, m, v) -> (step,
# state): step() does the next Adam step in place (g is read through the
# reference given, so the check can change its contents between steps);
# state() returns the (m, v) arrays.

class Peer:
    def __init__(self, name, runtime, make, label=None, impl=None):
        self.name, self.runtime, self.make, self.label = name, runtime, make, label or name
        self.impl = impl


def _adam_make(impl):
    def make(p, g, m, v):
        step = B.prepare(impl, (p, g, m, v), None)
        return step, step.state
    return make


ADAM_PEERS = [Peer(i.label, i.runtime, _adam_make(i), impl=i) for i in ADAM.all_impls()]
_FOREACH = next(i for i in ADAM.torch if "foreach=True" in i.name)


def _check_adam(impl, dt, label):
    """The optim family's check: CHECK_STEPS steps on a CHECK_N instance
    against the float64 reference."""
    r = OPT.check_adam(ADAM, None, CHECK_N, (np.empty(1, dt),), None, impl)
    assert r["ok"], (f"{label}: err {r['err']:.3g} > {r['tol']:g} at {r['where']}: "
                     f"got {r['got']!r}, reference {r['ref']!r}")


# ------------------------------------------------------------------ roof peers
# make(a, b, c) -> fn; kind: "copy" (c = a), "add" (c = a + b), "inplace" (a += b)

class RoofPeer(Peer):
    def __init__(self, name, runtime, make, kind):
        super().__init__(name, runtime, make)
        self.kind = kind
        self.bytes = {"copy": 2, "add": 3, "inplace": 3}[kind]


def _mk_mlkern_copy(a, b, c):
    from mlkern.bench import COPY       # mlkern's copy kernel, the roof meter of the harness
    return COPY.mlkern.make((a,), c)


def _tt(*arrays):
    return [torch.from_numpy(x) for x in arrays]


def _mk_t_copy(a, b, c):
    ta, tc = _tt(a, c)
    return lambda: tc.copy_(ta)


def _mk_t_add(a, b, c):
    ta, tb, tc = _tt(a, b, c)
    return lambda: torch.add(ta, tb, out=tc)


def _mk_t_iadd(a, b, c):
    ta, tb = _tt(a, b)
    return lambda: ta.add_(tb)


ROOF_PEERS = {
    "roof": [
        RoofPeer("np.copyto(c, a)", "numpy", lambda a, b, c: lambda: np.copyto(c, a), "copy"),
        RoofPeer("np.add(a, b, out=c)", "numpy", lambda a, b, c: lambda: np.add(a, b, out=c), "add"),
        RoofPeer("mlkern.bench.copy_kernel(a, out=c)", "mlkern", _mk_mlkern_copy, "copy"),
        RoofPeer("torch c.copy_(a)", "torch", _mk_t_copy, "copy"),
        RoofPeer("torch.add(a, b, out=c)", "torch", _mk_t_add, "add"),
    ],
    "roof_inplace": [
        RoofPeer("np.add(a, b, out=a)", "numpy", lambda a, b, c: lambda: np.add(a, b, out=a), "inplace"),
        RoofPeer("torch a.add_(b)", "torch", _mk_t_iadd, "inplace"),
    ],
}


def _check_roof(peer, dt, label):
    rng = np.random.default_rng(7)
    a0 = rng.standard_normal(CHECK_N).astype(dt)
    b = rng.standard_normal(CHECK_N).astype(dt)
    a, c = a0.copy(), np.full_like(a0, np.nan)
    peer.make(a, b, c)()
    got = a if peer.kind == "inplace" else c
    ref = a0.astype(np.float64) + (0 if peer.kind == "copy" else b)
    err = np.max(np.abs(got.astype(np.float64) - ref)) / max(1.0, np.max(np.abs(ref)))
    assert err <= TOL[np.dtype(dt)], f"{label}: err {err:.3g}"


# ------------------------------------------------------------------ collection

def _units(config):
    """(group prefix, peer, dtype, n, T) in run order: T=1 first, then each
    T > 1 by runtime (numpy, mlkern, torch)."""
    dtypes = [np.dtype(DT[d.strip()]) for d in config.getoption("--bench-dtypes").split(",")
              if d.strip()]
    threads = sorted({int(x) for x in config.getoption("--bench-threads").split(",") if x.strip()})
    runtimes = ("mlkern", "numpy") if config.getoption("--bench-no-torch") else ("mlkern", "numpy", "torch")
    units = []
    for T in threads:
        phases = [runtimes] if T == 1 else [(r,) for r in ("numpy", "mlkern", "torch") if r in runtimes]
        for rts in phases:
            for n in _sizes():
                for dtype in dtypes:
                    groups = [("adam_step", ADAM_PEERS)]
                    if n * dtype.itemsize >= ROOF_BYTES:
                        groups += list(ROOF_PEERS.items())
                    for prefix, peers in groups:
                        units.extend((prefix, pr, dtype, n, T) for pr in peers if pr.runtime in rts)
    return units


def _id(unit):
    prefix, peer, dtype, n, T = unit
    slug = re.sub(r"[^A-Za-z0-9.]+", "_", peer.name).strip("_")
    return f"{prefix}-{_fmt_n(n)}-{_tag(dtype)}-T{T}-{peer.runtime}:{slug}"


def pytest_generate_tests(metafunc):
    if "optim_unit" in metafunc.fixturenames:
        units = _units(metafunc.config)
        metafunc.parametrize("optim_unit", units, ids=[_id(u) for u in units])


def _warm(fn, disabled):
    fn()                                  # first call: first touch, torch state, dispatch
    if disabled:
        return
    t_end = time.perf_counter() + WARM_S
    fn()
    while time.perf_counter() < t_end:
        fn()


def _run(benchmark, peer, T, fn, disabled):
    if peer.runtime == "mlkern":
        with mlkern.threads(T):
            _warm(fn, disabled)
            benchmark(fn)
    elif peer.runtime == "torch":
        _set_torch_threads(T)
        _warm(fn, disabled)
        benchmark(fn)
    else:                                 # NumPy: single-threaded
        _warm(fn, disabled)
        benchmark(fn)


def _in_threads(peer, T, fn):
    if peer.runtime == "mlkern":
        with mlkern.threads(T):
            return fn()
    if peer.runtime == "torch":
        _set_torch_threads(T)
    return fn()


def test_optim(benchmark, optim_unit):
    prefix, peer, dtype, n, T = optim_unit
    tag = _tag(dtype)
    benchmark.group = f"{prefix}-{_fmt_n(n)}-{tag}-T{T}"
    if peer.runtime == "torch" and torch is None:
        pytest.skip("torch is not importable")
    disabled = bool(getattr(benchmark, "disabled", False))
    label = f"{benchmark.group} {peer.name}"
    nbytes = (ADAM_BYTES if prefix == "adam_step" else peer.bytes) * n * dtype.itemsize
    benchmark.extra_info.update(n=n, dtype=tag, threads=T, runtime=peer.runtime, impl=peer.name,
                                bytes=nbytes)
    p0, g0 = _data(n, dtype)
    with np.errstate(all="ignore"):
        if prefix == "adam_step":
            make, name, impl = peer.make, peer.label, peer.impl
            try:
                _in_threads(peer, T, lambda: _check_adam(impl, dtype, label))
            except (RuntimeError, NotImplementedError, ValueError) as exc:
                if "fused=True" not in peer.name:
                    raise
                # torch < 2.4, or no CPU fused kernel for this dtype
                make = _adam_make(_FOREACH)
                name = "torch Adam foreach=True (fused=True raised)"
                benchmark.extra_info["fused_error"] = str(exc)[:200]
                _in_threads(peer, T, lambda: _check_adam(_FOREACH, dtype, label))
            benchmark.name = name
            benchmark.extra_info["impl"] = name
            p, m, v = p0.copy(), np.zeros_like(p0), np.zeros_like(p0)
            fn, _ = make(p, g0, m, v)
        else:
            _in_threads(peer, T, lambda: _check_roof(peer, dtype, label))
            benchmark.name = peer.name
            a = p0.copy() if peer.kind == "inplace" else p0
            c = np.empty_like(p0)
            fn = peer.make(a, g0, c)
        _run(benchmark, peer, T, fn, disabled)
    stats = getattr(benchmark, "stats", None)
    if stats is not None and getattr(stats, "stats", None) is not None:
        med = stats.stats.median
        benchmark.extra_info["ns_per_el"] = med * 1e9 / n
        benchmark.extra_info["gbps"] = nbytes / med / 1e9
