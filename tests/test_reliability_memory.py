"""Memory: RSS stays flat over many calls per kernel family
(``MLKERN_MEM_CALLS``); every registry function given a 2**40- or
2**60-element broadcast view raises MemoryError/ValueError at once.
(The harness, its options and the summary: tests/fuzz_harness.py.)
"""
import gc
import os
import time

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")

import mlkern  # noqa: E402
import mlkern.layers as ml  # noqa: E402
import mlkern.optim as mopt  # noqa: E402
from fuzz_harness import (  # noqa: E402,F401 (_watchdog: autouse, a hang fails the test)
    arm_watchdog, PHASE, REPORT, run_one, STATS, _watchdog,
)
from fuzz_registry import F32, PlainCtx, REGISTRY, REGISTRY_NAMES  # noqa: E402


# =============================================================================
# f. memory
# =============================================================================
def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


MEM_CALLS = int(os.environ.get("MLKERN_MEM_CALLS", "100000"))


def _mem_families():
    rng = np.random.default_rng(5)
    x = rng.standard_normal(64)
    g = rng.standard_normal(64)
    out = np.empty(64)
    z = rng.standard_normal((4, 16))
    lab = rng.integers(0, 16, 4)
    gz = np.empty_like(z)
    t = rng.standard_normal(64)
    p, m, v, gr = x.copy(), np.zeros(64), np.zeros(64), g.copy()
    wd, bd, gd = rng.standard_normal((8, 16)), rng.standard_normal(8), rng.standard_normal((4, 8))
    yd = np.empty((4, 8))
    idx = rng.integers(0, 16, (4, 3))
    ge = rng.standard_normal((4, 3, 16))
    gw = np.empty((16, 16))
    return {
        "sigmoid": lambda: mlkern.sigmoid(x, out=out),
        "sigmoid_backward": lambda: mlkern.sigmoid_backward(g, x, out=out),
        "softmax": lambda: mlkern.softmax(z, out=gz),
        "cross_entropy_with_grad": lambda: mlkern.cross_entropy_with_grad(z, lab, out=gz),
        "mse_with_grad": lambda: mlkern.mse_with_grad(x, t, out=out),
        "adam_step": lambda: mopt.adam_step(p, gr, m, v, step=1, lr=1e-6),
        "sigmoid (allocating)": lambda: mlkern.sigmoid(x),
        "softplus (float16, slow path)": lambda: mlkern.softplus(x.astype(np.float16)[::2]),
        "layers.dense": lambda: ml.dense(z, wd, bd, activation="gelu", out=yd),
        "layers.dense_backward": lambda: ml.dense_backward(gd, z, wd, activation="relu", saved=gd),
        "layers.embedding": lambda: ml.embedding(idx, z.reshape(16, 4)),
        "layers.embedding_backward": lambda: ml.embedding_backward(ge, idx, 16, padding_idx=0, out=gw),
    }


def test_memory_flat_over_many_calls():
    fams = _mem_families()
    for fn in fams.values():               # warm-up: caches, lazy imports, allocator pools
        for _ in range(5000):
            fn()
    gc.collect()
    before = rss_bytes()
    t0 = time.perf_counter()
    per = {}
    for name, fn in fams.items():
        r0 = rss_bytes()
        for _ in range(MEM_CALLS):
            fn()
        per[name] = rss_bytes() - r0
    gc.collect()
    after = rss_bytes()
    dt = time.perf_counter() - t0
    STATS["calls"] += MEM_CALLS * len(fams)
    STATS["calls:memory"] += MEM_CALLS * len(fams)
    mib = 1024 * 1024
    REPORT.append(f"memory: {MEM_CALLS} calls x {len(fams)} families in {dt:.1f} s; RSS "
                  f"{before / mib:.1f} MiB -> {after / mib:.1f} MiB ({(after - before) / mib:+.2f} MiB); "
                  + ", ".join(f"{k} {v / mib:+.2f}" for k, v in per.items()))
    if os.environ.get("MLKERN_UNDER_SANITIZER"):
        pytest.skip("under AddressSanitizer freed memory stays in its quarantine: RSS not comparable")
    assert after - before < 4 * mib, f"RSS grew by {(after - before) / mib:.2f} MiB: {per}"


@pytest.mark.parametrize("q", REGISTRY_NAMES)
def test_memory_huge_requests(q):
    """Every function on an input too large to allocate (a 2**40-element or
    2**60-element broadcast view of a float32 scalar) raises MemoryError or
    ValueError/TypeError -- it does not crash, and does not start computing."""
    spec = REGISTRY[q]
    if spec.kind in ("config", "calculus", "minibatches", "opt_base", "nn_base") and q != "calculus.derivative":
        pytest.skip("takes no array input")
    PHASE[0] = "huge"
    arm_watchdog(120)
    for n in (2**40, 2**60):
        if q.startswith("binary_cross_entropy") and "logits" not in q:
            continue        # known bug bce-huge-scan: minutes of validation first (tested below)
        ctx = _HugeCtx(n)
        r = run_one(q, ctx, with_reference=False, check_untouched=False, huge=True)
        assert r in ("raised", "known"), f"{q} returned on a {n}-element input"


class _HugeCtx(PlainCtx):
    no_shrink = True

    def __init__(self, n):
        super().__init__(shape=(n,), dtype=F32)

    def values(self, k, shape=None):
        return np.float64(0.5)

    def data(self, v, dtype=None, layout=None, broadcast=True):
        return np.broadcast_to(np.float32(v), self.shape)

    def labels(self, rshape, n, ignore):
        return np.broadcast_to(np.int64(0), rshape)


def test_huge_single_examples():
    """The example from the issue, and huge out= / reductions."""
    x = np.broadcast_to(np.float32(1), (2**40,))
    for f in (lambda: mlkern.sigmoid(x), lambda: mlkern.softmax(x), lambda: mlkern.mse(x, x),
              lambda: mlkern.logsumexp(x), lambda: mlkern.argmax(x), lambda: mlkern.l2_penalty(x, 1.0),
              lambda: mlkern.sigmoid(np.broadcast_to(np.float32(1), (2**20, 2**20)))):
        with pytest.raises((MemoryError, ValueError)):
            f()
        STATS["calls"] += 1
