"""Inputs untouched: every registry function on C, F, strided, negative-stride,
read-only and misaligned inputs, with and without out=; and the auxiliary
arrays (labels, weights, alpha, grad_output, out=) on misaligned buffers --
these pass on x86 even when a kernel reads through the misaligned pointer:
run them under tools/sanitize.sh (ASan + UBSan), which stops on such a load.
(The harness, its options and the summary: tests/fuzz_harness.py.)
"""
import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")

import mlkern  # noqa: E402
import mlkern.layers as ml  # noqa: E402
import mlkern.optim as mopt  # noqa: E402
from fuzz_harness import (  # noqa: E402,F401 (_watchdog: autouse, a hang fails the test)
    compare, PHASE, run_one, STATS, _watchdog,
)
from fuzz_registry import apply_layout, F32, F64, PlainCtx, REGISTRY_NAMES, UNTOUCHED_LAYOUTS  # noqa: E402


# =============================================================================
# c. inputs untouched, every function, every layout
# =============================================================================
@pytest.mark.parametrize("layout", UNTOUCHED_LAYOUTS)
@pytest.mark.parametrize("q", REGISTRY_NAMES)
def test_inputs_untouched(q, layout):
    PHASE[0] = "untouched"
    for dtype, shape in ((F64, (4, 6, 5)), (F32, (3, 7))):
        for out_mode in ("none", "good"):
            ctx = PlainCtx(shape=shape, dtype=dtype, layout=layout, seed=hash((q, layout)) % 2**32)
            r = run_one(q, ctx, out_mode=out_mode, with_reference=True, check_untouched=True)
            if r != "known":
                assert r == "ok", f"{q} raised on a valid {layout} {dtype} input"


def _misaligned(a):
    m = apply_layout(np.asarray(a), "misaligned")
    assert not m.flags.aligned
    return m


def _aux_cases():
    rng = np.random.default_rng(3)
    z = rng.standard_normal((8, 5))
    lab = rng.integers(0, 5, 8)
    t = (z > 0) * 1.0
    x3 = z.reshape(2, 4, 5)
    z32 = z.astype(np.float32)
    w, b = rng.standard_normal((3, 5)), rng.standard_normal(3)
    gy = rng.standard_normal((8, 3))
    zs = z @ w.T + b                                     # dense's saved (pre-activation) for relu
    idx = rng.integers(0, 8, (2, 4))
    ge = rng.standard_normal((2, 4, 5))
    return {
        "cross_entropy(labels)": lambda m: mlkern.cross_entropy_with_grad(z, m(lab)),
        "cross_entropy(weight)": lambda m: mlkern.cross_entropy_with_grad(z, lab, weight=m(np.ones(5))),
        "cross_entropy(sample_weight)": lambda m: mlkern.cross_entropy(z, lab, sample_weight=m(np.ones(8))),
        "nll_loss(labels)": lambda m: mlkern.nll_loss_with_grad(z, m(lab)),
        "mse(sample_weight)": lambda m: mlkern.mse_with_grad(z, 2 * z, sample_weight=m(np.ones(8))),
        "huber(sample_weight)": lambda m: mlkern.huber_with_grad(z, 2 * z, sample_weight=m(np.ones(8))),
        "bce_with_logits(pos_weight)": lambda m: mlkern.binary_cross_entropy_with_logits_with_grad(
            z, t, pos_weight=m(np.linspace(1, 2, 5))),
        "bce_with_logits(pos_weight, sample_weight)": lambda m: (
            mlkern.binary_cross_entropy_with_logits_with_grad(z, t, pos_weight=m(np.linspace(1, 2, 5)),
                                                              sample_weight=m(np.ones(8)))),
        "kl_div(sample_weight)": lambda m: mlkern.kl_div_with_grad(np.full((8, 5), .2), np.full((8, 5), .2),
                                                                   sample_weight=m(np.ones(8))),
        "prelu(alpha)": lambda m: mlkern.prelu(x3, m(np.linspace(.1, .4, 4))),
        "prelu_grad(alpha)": lambda m: mlkern.prelu_grad(x3, m(np.linspace(.1, .4, 4))),
        "prelu_backward(alpha)": lambda m: mlkern.prelu_backward(x3, x3, m(np.linspace(.1, .4, 4))),
        "prelu_backward(grad_output)": lambda m: mlkern.prelu_backward(m(x3), x3, 0.25),
        "adam_step(grad)": lambda m: mopt.adam_step(z.copy(), m(z), np.zeros_like(z), np.zeros_like(z),
                                                    step=1),
        "argmax(out)": lambda m: mlkern.argmax(z, out=m(np.zeros(8, np.int64))),
        "logsumexp(out)": lambda m: mlkern.logsumexp(z, out=m(np.zeros(8))),
        # layers: every array argument and out= on its own misaligned buffer
        "dense(x)": lambda m: ml.dense(m(z), w, b, activation="gelu"),
        "dense(weight)": lambda m: ml.dense(z, m(w), b, activation="softplus"),
        "dense(bias)": lambda m: ml.dense(z, w, m(b), activation="relu"),
        "dense(out)": lambda m: ml.dense(z, w, b, activation="tanh", out=m(np.zeros((8, 3)))),
        "dense(x, float32)": lambda m: ml.dense(m(z32), w.astype(np.float32), activation="silu",
                                                return_saved=True),
        "dense_backward(grad_output)": lambda m: ml.dense_backward(m(gy), z, w, activation="relu", saved=zs),
        "dense_backward(x)": lambda m: ml.dense_backward(gy, m(z), w, activation="relu", saved=zs),
        "dense_backward(weight)": lambda m: ml.dense_backward(gy, z, m(w), activation="relu", saved=zs),
        "dense_backward(saved)": lambda m: ml.dense_backward(gy, z, w, activation="relu", saved=m(zs)),
        "embedding(indices)": lambda m: ml.embedding(m(idx), z, padding_idx=0),
        "embedding(weight)": lambda m: ml.embedding(idx, m(z)),
        "embedding(out)": lambda m: ml.embedding(idx, z, out=m(np.zeros((2, 4, 5)))),
        "embedding_backward(grad_output)": lambda m: ml.embedding_backward(m(ge), idx, 8),
        "embedding_backward(indices)": lambda m: ml.embedding_backward(ge, m(idx), 8, padding_idx=-1),
        "embedding_backward(out)": lambda m: ml.embedding_backward(ge, idx, 8, out=m(np.zeros((8, 5)))),
    }


@pytest.mark.parametrize("case", list(_aux_cases()))
def test_misaligned_auxiliary_arrays(case):
    """Labels, weights, pos_weight, alpha, grad_output and out= arrays on a
    misaligned buffer give the aligned result.  A kernel that is handed the
    misaligned pointer itself (instead of an aligned copy) works on x86 today
    but is undefined behaviour (a vectorised aligned load would fault): the
    UndefinedBehaviorSanitizer run (tools/sanitize.sh) stops on it with
    "load of misaligned address"."""
    f = _aux_cases()[case]
    got = f(_misaligned)
    want = f(np.ascontiguousarray)
    STATS["calls"] += 2
    compare(got if isinstance(got, tuple) else got, want,
            tuple("row" for _ in want) if isinstance(want, tuple) else "row", "normal")
