"""The losses module as a whole (docs/contract.rst, "Losses"): every loss exported from
mlkern and mlkern.losses; nll / kl / penalties bit-identical across thread
counts on 10^6-element inputs; the fast paths with out=.  Each family has its
own file: test_losses_cross_entropy.py, test_losses_pointwise.py,
test_losses_nll.py, test_losses_kl.py, test_losses_penalties.py.
"""
import numpy as np
import pytest

import mlkern
from loss_checks import assert_close, F32, F64, _log_probs, _pen, REDUCTIONS, same_array, _simplex
from reference import kl_ref, nll_ref, penalty_ref


# ================================================================ exports
ALL_NAMES = [n + s for n in ("mse", "rmse", "mae", "l1_loss", "l2_loss", "quadratic_cost", "huber",
                             "binary_cross_entropy", "binary_cross_entropy_with_logits", "nll_loss",
                             "kl_div")
             for s in ("", "_grad", "_with_grad")] + \
    ["l1_penalty", "l2_penalty", "l1_penalty_grad", "l2_penalty_grad"]


def test_exports():
    import mlkern.losses as L
    missing = [n for n in ALL_NAMES if not callable(getattr(mlkern, n, None))]
    assert not missing, f"missing from mlkern: {missing}"
    missing = [n for n in ALL_NAMES if not callable(getattr(L, n, None)) or n not in L.__all__]
    assert not missing, f"missing from mlkern.losses (or its __all__): {missing}"
    assert all(getattr(L, n) is getattr(mlkern, n) for n in ALL_NAMES)


# ================================================================ nll / kl / penalties: threads
def test_threads_bit_identical_nll_kl_penalties():
    rng = np.random.default_rng(111)
    n, C = 100_000, 10
    lp = _log_probs(111, (n, C))
    lab = rng.integers(0, C, n)
    lab[::7] = -100
    w = rng.uniform(0.5, 2.0, C)
    s = rng.uniform(0.0, 2.0, n)
    p = _simplex(112, (n, C), zeros=0.1)
    q = _simplex(113, (n, C))
    W = rng.standard_normal(10 ** 6)
    calls = []
    for red in REDUCTIONS:
        for kw in ({}, {"weight": w, "sample_weight": s}):
            calls.append((f"nll {red} {list(kw)}", lambda red=red, kw=kw: (
                mlkern.nll_loss(lp, lab, reduction=red, **kw), *mlkern.nll_loss_with_grad(lp, lab, reduction=red, **kw),
                mlkern.nll_loss_grad(lp, lab, reduction=red, **kw))))
        for kw in ({}, {"sample_weight": s}, {"log_q": True}):
            qq = np.log(q) if kw.get("log_q") else q
            calls.append((f"kl {red} {list(kw)}", lambda red=red, kw=kw, qq=qq: (
                mlkern.kl_div(p, qq, reduction=red, **kw), *mlkern.kl_div_with_grad(p, qq, reduction=red, **kw),
                mlkern.kl_div_grad(p, qq, reduction=red, **kw))))
    for kind in ("l1", "l2"):
        f, g = _pen(kind)
        calls.append((kind, lambda f=f, g=g: (f(W, 0.3), g(W, 0.3))))
    for what, call in calls:
        with mlkern.threads(1):
            a = call()
        with mlkern.threads(2):
            b = call()
        for x, y in zip(a, b):
            assert same_array(np.asarray(x), np.asarray(y)), f"{what}: differs between 1 and 2 threads"
    # the values of the big inputs
    L, _, lt, _ = nll_ref(lp, lab, weight=w, sample_weight=s)
    assert_close(mlkern.nll_loss(lp, lab, weight=w, sample_weight=s), L, lt, F64, what="nll 10^6")
    L, _, lt, _ = kl_ref(p, q)
    assert_close(mlkern.kl_div(p, q), L, lt, F64, what="kl 10^6")
    L, _, lt, _ = penalty_ref("l2", W, 0.3)
    assert_close(mlkern.l2_penalty(W, 0.3), L, lt, F64, what="l2_penalty 10^6")
    W32 = W.astype(np.float32)
    L, _, lt, _ = penalty_ref("l1", W32, 0.3)
    assert_close(mlkern.l1_penalty(W32, 0.3), L, lt, F32, what="l1_penalty float32 10^6")



# the fast paths with out=: a direct array (fresh, the input itself) is
# written by the kernel; anything else (F-ordered, partially overlapping,
# wrong dtype) takes the full path -- the same values or the same error
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("where", ["fresh", "pred", "target", "F", "overlap", "wrong-dtype"])
def test_fast_paths_with_out(dtype, where):
    rng = np.random.default_rng(11)
    p = rng.standard_normal((40, 6)).astype(dtype)
    t = rng.standard_normal((40, 6)).astype(dtype)
    lab = rng.integers(0, 6, 40)
    want_m = mlkern.mse_with_grad(p, t)
    want_x = mlkern.cross_entropy_with_grad(p, lab)

    def make(base):
        if where == "fresh":
            return np.empty_like(base)
        if where == "pred":
            return base
        if where == "target":
            return t
        if where == "F":
            return np.empty(base.shape, base.dtype, order="F")
        return np.empty(base.shape, np.float16)

    for f, want, args in ((mlkern.mse_with_grad, want_m, lambda q: (q, t.copy())),
                          (mlkern.cross_entropy_with_grad, want_x, lambda q: (q, lab))):
        if where == "target" and f is mlkern.cross_entropy_with_grad:
            continue
        q = p.copy()
        if where == "overlap":            # out one element before pred in the same buffer
            buf = np.empty(p.size + 1, dtype)
            buf[1:] = p.reshape(-1)
            q = buf[1:].reshape(p.shape)
        a = args(q)
        if where == "overlap":
            o = buf[:-1].reshape(p.shape)
        elif where == "target":
            o = a[1]
        else:
            o = make(q)
        if where == "wrong-dtype":
            with pytest.raises(TypeError, match="out"):
                f(*a, out=o)
            continue
        loss, g = f(*a, out=o)
        assert g is o
        assert loss == want[0]
        np.testing.assert_array_equal(g, want[1])
