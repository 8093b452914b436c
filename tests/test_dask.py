"""mlkern on Dask arrays (docs/contract.rst, "Scale-out: Dask"; docs/dask.rst).

Every family is checked lazy (a dask array comes back, nothing computed)
and equal to the NumPy call on the whole array, on the threaded scheduler
and on a real ``distributed.LocalCluster`` of two single-threaded worker
processes (loopback only, started and closed in a module fixture).  The
reference is the eager mlkern call, itself tested against float64/mpmath
references in the other test files: elementwise results must be equal bit
for bit, reductions to rounding.
"""
import logging
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

import mlkern

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")

RNG = np.random.default_rng(20261206)


# ------------------------------------------------------------------ schedulers
@pytest.fixture(scope="module")
def cluster_client():
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       host="127.0.0.1", dashboard_address=None,
                                       silence_logs=logging.ERROR, death_timeout=60)
    try:
        client = distributed.Client(cluster, timeout=60, set_as_default=False)
        try:
            yield client
        finally:
            client.close(timeout=30)
    finally:
        cluster.close(timeout=30)


@pytest.fixture(params=["threads", "cluster"])
def compute(request):
    """compute(*collections) -> their values, on one scheduler."""
    if request.param == "threads":
        return lambda *c: dask.compute(*c, scheduler="threads")
    client = request.getfixturevalue("cluster_client")
    return lambda *c: dask.compute(*c, scheduler=client)


def _lazy(v):
    if isinstance(v, tuple):
        return all(_lazy(e) for e in v)
    return isinstance(v, da.Array)


def _flatten(pairs):
    lazies, eagers, names = [], [], []
    for name, lazy, eager in pairs:
        assert _lazy(lazy), f"{name}: expected dask arrays, got {type(lazy)}"
        if isinstance(lazy, tuple):
            for i, (lz, e) in enumerate(zip(lazy, eager)):
                lazies.append(lz)
                eagers.append(e)
                names.append(f"{name}[{i}]")
        else:
            lazies.append(lazy)
            eagers.append(eager)
            names.append(name)
    return lazies, eagers, names


def _check(compute, pairs, exact=True, rtol=1e-12):
    """Compute all lazy results at once; each equals its eager result (bit
    for bit if exact, else to rtol) with the eager dtype and shape."""
    lazies, eagers, names = _flatten(pairs)
    values = compute(*lazies)
    for name, v, e in zip(names, values, eagers):
        v, e = np.asarray(v), np.asarray(e)
        assert v.dtype == e.dtype, (name, v.dtype, e.dtype)
        assert v.shape == e.shape, (name, v.shape, e.shape)
        ex = exact(name) if callable(exact) else exact
        if ex:
            assert np.array_equal(v, e, equal_nan=True), name
        else:
            np.testing.assert_allclose(v, e, rtol=rtol, atol=0, equal_nan=True, err_msg=name)


# ------------------------------------------------------------------ elementwise
_UNARY = ["sigmoid", "tanh", "relu", "leaky_relu", "elu", "softplus", "silu", "swish",
          "log_sigmoid", "gelu"]
_SAVED_Y = {"sigmoid", "tanh", "elu"}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_elementwise_every_activation(compute, dtype):
    x = (RNG.standard_normal((23, 19)) * 4).astype(dtype)
    g = RNG.standard_normal((23, 19)).astype(dtype)
    X = da.from_array(x, chunks=(7, 6))                 # unequal chunks on both axes
    G = da.from_array(g, chunks=(5, 19))                # other chunks: aligned by mlkern
    pairs = []
    for f in _UNARY:
        fw, gr, bw = (getattr(mlkern, f), getattr(mlkern, f + "_grad"),
                      getattr(mlkern, f + "_backward"))
        saved = fw(x) if f in _SAVED_Y else x
        pairs += [(f, fw(X), fw(x)), (f + "_grad", gr(X), gr(x)),
                  (f + "_backward", bw(G, saved), bw(g, saved)),          # dask next to NumPy
                  (f + "_backward2", bw(g, da.from_array(saved, chunks=4)), bw(g, saved))]
    pairs += [("gelu tanh", mlkern.gelu(X, approximate="tanh"), mlkern.gelu(x, approximate="tanh")),
              ("elu alpha", mlkern.elu_grad(X, alpha=0.3), mlkern.elu_grad(x, alpha=0.3)),
              ("leaky slope", mlkern.leaky_relu(X, negative_slope=0.2),
               mlkern.leaky_relu(x, negative_slope=0.2))]
    alpha = np.linspace(0.05, 0.5, 19)
    pairs += [("prelu", mlkern.prelu(X, alpha), mlkern.prelu(x, alpha)),
              ("prelu dask alpha", mlkern.prelu(X, da.from_array(alpha, chunks=10)),
               mlkern.prelu(x, alpha)),
              ("prelu scalar", mlkern.prelu_grad(X, 0.25), mlkern.prelu_grad(x, 0.25)),
              ("int input", mlkern.softplus(da.from_array(np.arange(-9, 9), chunks=5)),
               mlkern.softplus(np.arange(-9, 9))),
              ("float16", mlkern.tanh(X.astype(np.float16)), mlkern.tanh(x.astype(np.float16)))]
    _check(compute, pairs)


@pytest.mark.parametrize("shape,chunks", [((), ()), ((101,), 17), ((9, 11, 13), (4, 5, 13)),
                                          ((9, 11, 13), (2, 11, 6)), ((9, 11, 13), (9, 3, 13))])
def test_noisy_relu_is_the_eager_noise(compute, shape, chunks):
    x = RNG.standard_normal(shape)
    X = da.from_array(x, chunks=chunks)
    y = mlkern.noisy_relu(x, seed=123)
    pairs = [("noisy", mlkern.noisy_relu(X, seed=123), y),
             ("noisy sigma", mlkern.noisy_relu(X.astype(np.float32), sigma=0.7, seed=5),
              mlkern.noisy_relu(x.astype(np.float32), sigma=0.7, seed=5)),
             ("noisy backward", mlkern.noisy_relu_backward(X, y), mlkern.noisy_relu_backward(x, y))]
    _check(compute, pairs)
    # the noise is not the same for another seed (the test can fail)
    if x.size > 1:
        assert not np.array_equal(compute(mlkern.noisy_relu(X, seed=124))[0], y)


@pytest.mark.parametrize("alpha", [0.25, [0.3], np.linspace(0.1, 0.9, 7)])
def test_prelu_backward_reduces_grad_alpha_across_chunks(compute, alpha):
    x = RNG.standard_normal((30, 7, 5))
    g = RNG.standard_normal((30, 7, 5))
    X = da.from_array(x, chunks=(4, 3, 5))
    gx, ga = mlkern.prelu_backward(da.from_array(g, chunks=(6, 7, 2)), X, alpha)
    egx, ega = mlkern.prelu_backward(g, x, alpha)
    _check(compute, [("grad_x", gx, egx)])
    _check(compute, [("grad_alpha", ga, ega)], exact=False)
    # against an independent float64 reference
    neg = x <= 0
    ref = np.sum(np.where(neg, g * x, 0.0), axis=(0, 2))
    ref = ref.sum() if np.ndim(alpha) == 0 or np.size(alpha) == 1 else ref
    np.testing.assert_allclose(np.asarray(compute(ga)[0]).reshape(np.shape(ref)), ref, rtol=1e-12)


# ------------------------------------------------------------------ row-wise
def test_rowwise_every_function(compute):
    x = RNG.standard_normal((41, 12)) * 5
    x[3, 4] = np.nan
    x[7, :] = -np.inf
    X = da.from_array(x, chunks=((10, 1, 30), (12,)))
    X0 = da.from_array(x, chunks=((41,), (5, 7)))       # axis 0 whole
    p = mlkern.softmax(x)
    g = RNG.standard_normal(x.shape)
    pairs = [("softmax", mlkern.softmax(X), mlkern.softmax(x)),
             ("log_softmax", mlkern.log_softmax(X), mlkern.log_softmax(x)),
             ("softmax axis 0", mlkern.softmax(X0, axis=0), mlkern.softmax(x, axis=0)),
             ("logsumexp", mlkern.logsumexp(X), mlkern.logsumexp(x)),
             ("logsumexp keepdims", mlkern.logsumexp(X0, axis=0, keepdims=True),
              mlkern.logsumexp(x, axis=0, keepdims=True)),
             ("softmax_backward", mlkern.softmax_backward(da.from_array(g, chunks=(8, 12)), p),
              mlkern.softmax_backward(g, p)),
             ("log_softmax_backward", mlkern.log_softmax_backward(g, da.from_array(p, chunks=(9, 12))),
              mlkern.log_softmax_backward(g, p)),
             ("softmax_jacobian", mlkern.softmax_jacobian(da.from_array(p, chunks=(20, 12))),
              mlkern.softmax_jacobian(p)),
             ("argmax", mlkern.argmax(X), mlkern.argmax(x)),
             ("argmax axis 0", mlkern.argmax(X0, axis=0, keepdims=True),
              mlkern.argmax(x, axis=0, keepdims=True))]
    _check(compute, pairs)


@pytest.mark.parametrize("case", ["ties", "nan", "random", "int"])
def test_argmax_axis_none_is_a_lazy_global_reduction(compute, case):
    x = np.zeros((12, 10))
    if case == "ties":
        # the first maximum in C order is in a later block of the block order
        x[1, 9] = x[5, 0] = x[11, 2] = 3.0
    elif case == "nan":
        x[1, 9] = 5.0
        x[10, 1] = x[4, 7] = np.nan
    elif case == "random":
        x = RNG.standard_normal((12, 10))
    else:
        x = RNG.integers(-2**62, 2**62, (12, 10))
        x[0, 9] = x[9, 0] = 2**62 + 1                       # exact beyond 2**53
    X = da.from_array(x, chunks=(4, 3))
    r = mlkern.argmax(X, axis=None)
    rk = mlkern.argmax(X, axis=None, keepdims=True)
    _check(compute, [("argmax", r, mlkern.argmax(x, axis=None)),
                     ("keepdims", rk, mlkern.argmax(x, axis=None, keepdims=True))])
    assert int(compute(r)[0]) == int(np.argmax(x))          # NumPy's semantics


# ------------------------------------------------------------------ losses
def _weights(n, chunks):
    w = RNG.random(n) + 0.1
    return w, da.from_array(w, chunks=chunks)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_pointwise_losses(compute, reduction):
    x = RNG.standard_normal((37, 6))
    t = RNG.standard_normal((37, 6))
    b = (RNG.random((37, 6)) > 0.5).astype(np.float64)
    X = da.from_array(x, chunks=((1, 30, 6), (4, 2)))       # unequal chunks
    T = da.from_array(t, chunks=(10, 6))
    sw, SW = _weights(37, (20, 17))                         # chunked otherwise: aligned
    pairs = []
    fams = ["mse", "mae", "l1_loss", "l2_loss", "quadratic_cost", "huber"]
    if reduction == "mean":
        fams.append("rmse")
    for f in fams:
        for kw in ({}, {"sample_weight": SW}):
            ekw = {"sample_weight": sw} if kw else {}
            fl, fg, fw = (getattr(mlkern, f), getattr(mlkern, f + "_grad"),
                          getattr(mlkern, f + "_with_grad"))
            name = f + (" sw" if kw else "")
            pairs += [(name, fl(X, T, reduction=reduction, **kw), fl(x, t, reduction=reduction, **ekw)),
                      (name + " grad", fg(X, t, reduction=reduction, **kw),
                       fg(x, t, reduction=reduction, **ekw)),
                      (name + " with_grad", fw(x, T, reduction=reduction, **kw),
                       fw(x, t, reduction=reduction, **ekw))]
    p = mlkern.sigmoid(x)
    pw = np.linspace(0.5, 2.0, 6)
    pairs += [("bce", mlkern.binary_cross_entropy_with_grad(da.from_array(p, chunks=8), b,
                                                            reduction=reduction),
               mlkern.binary_cross_entropy_with_grad(p, b, reduction=reduction)),
              ("bce logits", mlkern.binary_cross_entropy_with_logits_with_grad(
                  X, b, reduction=reduction, pos_weight=pw, sample_weight=SW),
               mlkern.binary_cross_entropy_with_logits_with_grad(
                  x, b, reduction=reduction, pos_weight=pw, sample_weight=sw))]
    # element results and gradients bit for bit unless a weighted mean's
    # denominator (a sum of weights, added per chunk) is involved
    def exact(name):
        if reduction == "none":
            return True
        is_grad = name.endswith(" grad") or name.endswith("[1]")
        weighted = " sw" in name or "bce logits" in name
        return is_grad and not (reduction == "mean" and weighted) and "rmse" not in name
    _check(compute, pairs, exact=exact)


def test_pointwise_gradient_bit_for_bit_with_a_count_denominator(compute):
    x = RNG.standard_normal((50, 3)).astype(np.float32)
    t = RNG.standard_normal((50, 3)).astype(np.float32)
    X = da.from_array(x, chunks=(7, 2))
    pairs = [(f, getattr(mlkern, f + "_grad")(X, t), getattr(mlkern, f + "_grad")(x, t))
             for f in ("mse", "mae", "huber", "l2_loss")]
    _check(compute, pairs)


def test_global_mean_with_unequal_chunks_and_weights(compute):
    # one tiny chunk with a huge error: a mean of chunk means would be ~50x off
    x = np.zeros(1000)
    x[0] = 100.0
    X = da.from_array(x, chunks=(1, 999))
    sw = np.ones(1000)
    sw[0] = 3.0
    SW = da.from_array(sw, chunks=(500, 500))              # not aligned with X's chunks
    (m, ms) = compute(mlkern.mse(X, np.zeros(1000)),
                      mlkern.mse(X, np.zeros(1000), sample_weight=SW))
    assert float(m) == pytest.approx(100.0**2 / 1000, rel=1e-15)
    assert float(ms) == pytest.approx(3 * 100.0**2 / 1002, rel=1e-15)
    # cross-entropy: unequal chunks, class and sample weights, ignored labels
    z = RNG.standard_normal((61, 5))
    y = RNG.integers(0, 5, 61)
    y[::7] = -100
    w = np.array([0.5, 1.0, 2.0, 3.0, 0.1])
    sw = RNG.random(61)
    Z = da.from_array(z, chunks=((2, 50, 9), (5,)))
    Y = da.from_array(y, chunks=(30, 31))
    loss, grad = mlkern.cross_entropy_with_grad(Z, Y, weight=w, sample_weight=sw)
    eloss, egrad = mlkern.cross_entropy_with_grad(z, y, weight=w, sample_weight=sw)
    lv, gv = compute(loss, grad)
    np.testing.assert_allclose(lv, eloss, rtol=1e-13)
    np.testing.assert_allclose(gv, egrad, rtol=1e-13, atol=1e-300)
    # independent: the weighted mean of -log softmax at the label
    valid = y != -100
    ls = z - np.log(np.sum(np.exp(z), axis=1, keepdims=True))
    s = sw[valid] * w[y[valid]]
    ref = -np.sum(s * ls[valid, y[valid]]) / np.sum(s)
    np.testing.assert_allclose(lv, ref, rtol=1e-12)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_class_losses(compute, reduction):
    z = RNG.standard_normal((45, 7)).astype(np.float32)
    y = RNG.integers(0, 7, 45)
    y[5] = 2
    Z = da.from_array(z, chunks=((3, 40, 2), (7,)))
    Y = da.from_array(y, chunks=(9, 36))
    sw, SW = _weights(45, (15, 30))
    w = np.linspace(0.5, 1.5, 7)
    lp = mlkern.log_softmax(z)
    LP = da.from_array(lp, chunks=(11, 7))
    probs = mlkern.softmax(z[::-1].copy())
    pairs = []
    for kw in ({}, {"weight": w, "ignore_index": 2}, {"sample_weight": SW, "label_smoothing": 0.1}):
        ekw = {k: (sw if k == "sample_weight" else v) for k, v in kw.items()}
        nkw = {k: v for k, v in kw.items() if k != "label_smoothing"}
        nekw = {k: v for k, v in ekw.items() if k != "label_smoothing"}
        for f in ("cross_entropy", "cross_entropy_grad", "cross_entropy_with_grad"):
            pairs.append((f"{f} {sorted(kw)}", getattr(mlkern, f)(Z, Y, reduction=reduction, **kw),
                          getattr(mlkern, f)(z, y, reduction=reduction, **ekw)))
        for f in ("nll_loss", "nll_loss_grad", "nll_loss_with_grad"):
            pairs.append((f"{f} {sorted(kw)}", getattr(mlkern, f)(LP, y, reduction=reduction, **nkw),
                          getattr(mlkern, f)(lp, Y.compute(), reduction=reduction, **nekw)))
    pairs.append(("xent probs", mlkern.cross_entropy_with_grad(Z, da.from_array(probs, chunks=(20, 7)),
                                                               reduction=reduction, sample_weight=SW),
                  mlkern.cross_entropy_with_grad(z, probs, reduction=reduction, sample_weight=sw)))
    q = mlkern.softmax(z)
    for kw in ({}, {"sample_weight": SW}):
        ekw = {"sample_weight": sw} if kw else {}
        for f in ("kl_div", "kl_div_grad", "kl_div_with_grad"):
            pairs.append((f"{f} {sorted(kw)}", getattr(mlkern, f)(da.from_array(probs, chunks=(8, 7)), q,
                                                                  reduction=reduction, **kw),
                          getattr(mlkern, f)(probs, q, reduction=reduction, **ekw)))
    _check(compute, pairs, exact=False, rtol=2e-6)


def test_class_loss_gradient_bit_for_bit_with_a_count_denominator(compute):
    z = RNG.standard_normal((45, 7))
    y = RNG.integers(0, 7, 45)
    Z = da.from_array(z, chunks=((3, 40, 2), (7,)))
    loss, grad = mlkern.cross_entropy_with_grad(Z, y, ignore_index=3)
    eloss, egrad = mlkern.cross_entropy_with_grad(z, y, ignore_index=3)
    _check(compute, [("grad", grad, egrad), ("nll grad", mlkern.nll_loss_grad(Z, y), mlkern.nll_loss_grad(z, y))])
    _check(compute, [("loss", loss, eloss)], exact=False)


def _count_calls(monkeypatch, module, name):
    calls = []
    orig = getattr(module, name)

    def counting(*a, **k):
        calls.append(1)
        return orig(*a, **k)
    monkeypatch.setattr(module, name, counting)
    return calls


@pytest.mark.parametrize("scheduler", ["sync", "threads"])
def test_class_loss_kernel_runs_once_per_chunk(monkeypatch, scheduler):
    """(loss, grad) computed together: each chunk's kernel runs once (the
    loss sums and the gradient share its result; Dask's graph optimiser
    must not fuse the kernel into both of its consumers)."""
    from mlkern import losses
    z = RNG.standard_normal((40, 6)).astype(np.float32)
    y = RNG.integers(0, 6, 40)
    Z = da.from_array(z, chunks=((10, 3, 20, 7), (6,)))
    Y = da.from_array(y, chunks=(13, 27))             # dask labels: the count is lazy
    P = da.from_array(mlkern.softmax(z), chunks=(10, 6))
    for name, mod, fn, args in [("_xent", losses, mlkern.cross_entropy_with_grad, (Z, Y)),
                                ("_nll", losses, mlkern.nll_loss_with_grad, (Z, Y)),
                                ("_kl", losses, mlkern.kl_div_with_grad, (P, Z))]:
        loss, grad = fn(*args)
        calls = _count_calls(monkeypatch, mod, name)
        dask.compute(loss, grad, scheduler=scheduler)
        assert len(calls) == Z.numblocks[0], (name, len(calls))
        monkeypatch.undo()


@pytest.mark.parametrize("nchunks", [16, 70])       # 70 > the fan-in: the summed denominator
def test_class_losses_dask_labels_and_weights(compute, nchunks):
    """Labels, sample weights and class weights as dask arrays (chunks not
    aligned with the logits'), ignored labels; mean and sum; the loss alone,
    the gradient alone and both: equal to the eager call (the gradient with
    a count denominator bit for bit)."""
    n = 7 * nchunks
    z = RNG.standard_normal((n, 5))
    y = RNG.integers(0, 5, n)
    y[::6] = -100
    sw = RNG.random(n)
    w = np.array([0.5, 1.0, 2.0, 3.0, 0.1])
    rows = (1,) + (7,) * (nchunks - 2) + (13,)
    Z = da.from_array(z, chunks=(rows, (5,)))
    Y = da.from_array(y, chunks=-(-n // 3))
    SW = da.from_array(sw, chunks=-(-n // 2))
    W = da.from_array(w, chunks=2)
    lp = mlkern.log_softmax(z)                  # log-probabilities: no cancelling sums
    LP = da.from_array(lp, chunks=Z.chunks)
    # building the graphs warns of nothing (Dask's PerformanceWarning included)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mlkern.cross_entropy_with_grad(Z, Y, sample_weight=SW, weight=W)
        mlkern.kl_div_with_grad(Z, Z, sample_weight=SW)
    pairs = []
    for reduction in ("mean", "sum"):
        for kw, ekw in [({}, {}), ({"sample_weight": SW, "weight": W}, {"sample_weight": sw, "weight": w}),
                        ({"weight": w, "label_smoothing": 0.2}, {"weight": w, "label_smoothing": 0.2})]:
            tag = f"{reduction} {sorted(kw)}"
            for f in ("cross_entropy", "cross_entropy_grad", "cross_entropy_with_grad"):
                pairs.append((f"{f} {tag}", getattr(mlkern, f)(Z, Y, reduction=reduction, **kw),
                              getattr(mlkern, f)(z, y, reduction=reduction, **ekw)))
            nkw = {k: v for k, v in kw.items() if k != "label_smoothing"}
            nekw = {k: v for k, v in ekw.items() if k != "label_smoothing"}
            pairs.append((f"nll {tag}", mlkern.nll_loss_with_grad(LP, Y, reduction=reduction, **nkw),
                          mlkern.nll_loss_with_grad(lp, y, reduction=reduction, **nekw)))
    _check(compute, pairs, exact=False, rtol=1e-12)
    # a count denominator: the gradient bit for bit, with dask or NumPy labels
    _check(compute, [("grad dask y", mlkern.cross_entropy_grad(Z, Y), mlkern.cross_entropy_grad(z, y)),
                     ("grad numpy y", mlkern.cross_entropy_with_grad(Z, y)[1],
                      mlkern.cross_entropy_grad(z, y)),
                     ("nll grad", mlkern.nll_loss_grad(LP, Y), mlkern.nll_loss_grad(lp, y))])
    # every label ignored: a mean over nothing is NaN, as the eager call
    yi = np.full(n, -100)
    _check(compute, [("all ignored", mlkern.cross_entropy(Z, da.from_array(yi, chunks=n // 2)),
                      mlkern.cross_entropy(z, yi))])


def test_class_losses_compute_nothing_eagerly():
    """The loss alone, the gradient alone and both, with dask labels and
    weights whose compute fails: nothing runs at call time."""
    base = da.from_array(np.full((6, 4), 0.5), chunks=(3, 4))
    Z = base.map_blocks(_boom, dtype=np.float64)
    Y = da.from_array(np.zeros(6, np.int64), chunks=3).map_blocks(_boom, dtype=np.int64)
    SW = da.from_array(np.ones(6), chunks=2).map_blocks(_boom, dtype=np.float64)
    for f in (mlkern.cross_entropy, mlkern.cross_entropy_grad, mlkern.cross_entropy_with_grad,
              mlkern.nll_loss, mlkern.nll_loss_grad, mlkern.nll_loss_with_grad):
        for kw in ({}, {"sample_weight": SW}):
            r = f(Z, Y, **kw)
            assert _lazy(r), (f.__name__, type(r))
            with pytest.raises(Boom):
                dask.compute(r, scheduler="sync")
    for f in (mlkern.kl_div, mlkern.kl_div_grad, mlkern.kl_div_with_grad):
        r = f(Z, Z, sample_weight=SW)
        assert _lazy(r)
        with pytest.raises(Boom):
            dask.compute(r, scheduler="sync")


def test_penalties(compute):
    w = RNG.standard_normal((33, 4))
    W = da.from_array(w, chunks=(5, 3))
    _check(compute, [("l1_penalty_grad", mlkern.l1_penalty_grad(W, 0.1), mlkern.l1_penalty_grad(w, 0.1)),
                     ("l2_penalty_grad", mlkern.l2_penalty_grad(W, 0.1), mlkern.l2_penalty_grad(w, 0.1))])
    _check(compute, [("l1_penalty", mlkern.l1_penalty(W, 0.1), mlkern.l1_penalty(w, 0.1)),
                     ("l2_penalty", mlkern.l2_penalty(W, 0.1), mlkern.l2_penalty(w, 0.1))], exact=False)


# ------------------------------------------------------------------ errors, laziness
_SPLIT = [
    ("softmax", lambda X, y: mlkern.softmax(X)),
    ("log_softmax", lambda X, y: mlkern.log_softmax(X)),
    ("logsumexp", lambda X, y: mlkern.logsumexp(X)),
    ("softmax_backward", lambda X, y: mlkern.softmax_backward(X, X)),
    ("log_softmax_backward", lambda X, y: mlkern.log_softmax_backward(X, X)),
    ("softmax_jacobian", lambda X, y: mlkern.softmax_jacobian(X)),
    ("argmax", lambda X, y: mlkern.argmax(X)),
    ("cross_entropy", lambda X, y: mlkern.cross_entropy(X, y)),
    ("cross_entropy_grad", lambda X, y: mlkern.cross_entropy_grad(X, y)),
    ("cross_entropy_with_grad", lambda X, y: mlkern.cross_entropy_with_grad(X, y)),
    ("nll_loss", lambda X, y: mlkern.nll_loss(X, y)),
    ("nll_loss_grad", lambda X, y: mlkern.nll_loss_grad(X, y)),
    ("nll_loss_with_grad", lambda X, y: mlkern.nll_loss_with_grad(X, y)),
    ("kl_div", lambda X, y: mlkern.kl_div(X, X)),
    ("kl_div_grad", lambda X, y: mlkern.kl_div_grad(X, X)),
    ("kl_div_with_grad", lambda X, y: mlkern.kl_div_with_grad(X, X)),
]


@pytest.mark.parametrize("name,call", _SPLIT, ids=[n for n, _ in _SPLIT])
def test_reduced_axis_split_over_chunks_raises_at_call_time(name, call):
    X = da.from_array(np.full((6, 8), 0.1), chunks=(3, 4))
    y = np.zeros(6, np.int64)
    with pytest.raises(ValueError, match=r"axis 1 .*split over 2 chunks.*rechunk\(\{1: -1\}\)"):
        call(X, y)
    call(X.rechunk({1: -1}), y)          # the remedy works


class Boom(RuntimeError):
    pass


def _boom(block):
    raise Boom("computed")


def _every_call(X, Xr, y):
    """One call of every family on dask input (Xr: classes in one chunk)."""
    return [mlkern.sigmoid(X), mlkern.gelu_grad(X), mlkern.tanh_backward(X, X),
            mlkern.noisy_relu(X, seed=1), mlkern.prelu(X, 0.1), mlkern.prelu_backward(X, X, [0.1] * 8),
            mlkern.softmax(Xr), mlkern.logsumexp(Xr), mlkern.softmax_backward(Xr, Xr),
            mlkern.softmax_jacobian(Xr), mlkern.argmax(Xr), mlkern.argmax(X, axis=None),
            mlkern.mse_with_grad(X, X), mlkern.rmse_with_grad(X, X),
            mlkern.huber(X, X, reduction="none"), mlkern.binary_cross_entropy(X, X),
            mlkern.binary_cross_entropy_with_logits_with_grad(X, X, sample_weight=X[:, 0]),
            mlkern.cross_entropy_with_grad(Xr, y, sample_weight=Xr[:, 0]),
            mlkern.cross_entropy_with_grad(Xr, Xr), mlkern.nll_loss_with_grad(Xr, y),
            mlkern.kl_div_with_grad(Xr, Xr, sample_weight=Xr[:, 0]), mlkern.l2_penalty(X, 0.1)]


def test_no_eager_compute():
    """Every call returns at once on a graph whose compute raises: nothing
    is computed (nor gathered) before the user asks."""
    base = da.from_array(np.full((6, 8), 0.5), chunks=(3, 4))
    X = base.map_blocks(_boom, dtype=np.float64)
    Xr = base.rechunk({1: -1}).map_blocks(_boom, dtype=np.float64)
    y = da.from_array(np.zeros(6, np.int64), chunks=3).map_blocks(_boom, dtype=np.int64)
    results = _every_call(X, Xr, y)
    for r in results:
        assert _lazy(r), type(r)
    with pytest.raises(Boom):
        dask.compute(results[0], scheduler="sync")
    with pytest.raises(Boom):
        dask.compute(results[-2], scheduler="sync")


def test_out_and_optimisers_refuse_dask():
    X = da.from_array(np.ones((4, 4)), chunks=2)
    with pytest.raises(TypeError, match="out= is not supported with dask"):
        mlkern.sigmoid(X, out=np.empty((4, 4)))
    with pytest.raises(TypeError, match="out= is not supported with dask"):
        mlkern.cross_entropy_grad(X, np.zeros(4, np.int64), out=np.empty((4, 4)))
    with pytest.raises(TypeError, match="param"):
        mlkern.optim.sgd_step(X, np.ones((4, 4)), lr=0.1)
    with pytest.raises(TypeError, match=r"grad\.compute\(\)"):
        mlkern.optim.sgd_step(np.ones((4, 4)), X, lr=0.1)


def test_bad_input_errors_name_the_argument():
    X = da.from_array(np.ones((4, 3)), chunks=2)
    with pytest.raises(ValueError, match="grad_output and y must have the same shape"):
        mlkern.sigmoid_backward(X, np.ones((4, 4)))
    with pytest.raises(TypeError, match="complex"):
        mlkern.sigmoid(X.astype(np.complex128))
    with pytest.raises(ValueError, match="sample_weight"):
        mlkern.mse(X, X, sample_weight=np.ones(3))
    with pytest.raises(ValueError, match="target"):
        mlkern.cross_entropy(X.rechunk({1: -1}), np.zeros(3, np.int64))
    with pytest.raises(ValueError, match="alpha"):
        mlkern.prelu(X, [0.1, 0.2])
    # weights that are not real: the eager call's TypeError, at call time
    Xr, y = X.rechunk({1: -1}), np.zeros(4, np.int64)
    for kw in ({"sample_weight": np.array(["a"] * 4)}, {"sample_weight": da.ones(4, chunks=2) * 1j},
               {"weight": np.ones(3, complex)}):
        name = next(iter(kw))
        with pytest.raises(TypeError, match=f"cross_entropy: {name} must be real"):
            mlkern.cross_entropy(Xr, y, **kw)
        with pytest.raises(TypeError, match=f"{name} must be real"):
            mlkern.cross_entropy(Xr.compute(), y, **{k: np.asarray(v) for k, v in kw.items()})
    # data errors surface at compute time, with the eager message
    bad = mlkern.binary_cross_entropy(X * 2, X)
    with pytest.raises(ValueError, match=r"prob must be in \[0, 1\]"):
        bad.compute(scheduler="sync")


def test_dask_is_not_imported_for_numpy_calls():
    code = ("import sys, numpy as np, mlkern\n"
            "mlkern.sigmoid([1.0]); mlkern.softmax([[1.0, 2.0]]); mlkern.mse([1.0], [2.0])\n"
            "mlkern.cross_entropy(np.ones((2, 3)), [0, 1]); mlkern.prelu([1.0], 0.1)\n"
            "assert not [m for m in sys.modules if m == 'dask' or m.startswith('dask.')]\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


# ------------------------------------------------------------------ threads
def _threads_block(block):
    return np.full((1,) * block.ndim, mlkern.get_num_threads(), np.int64)


def test_one_thread_per_task(compute):
    X = da.from_array(np.ones((8, 8)), chunks=4)
    counts = X.map_blocks(_threads_block, chunks=((1, 1), (1, 1)), dtype=np.int64)
    assert np.all(compute(counts)[0] == 1)


def test_cluster_workers_omp_budget(cluster_client):
    env = cluster_client.run(lambda: os.environ.get("OMP_NUM_THREADS"))
    assert len(env) == 2 and all(v == "1" for v in env.values())
    info = cluster_client.run(lambda: __import__("mlkern").show_config(file=open(os.devnull, "w"))
                              ["num_threads"])
    assert all(v == 1 for v in info.values())


# ------------------------------------------------------------------ layers and nn models
import mlkern.nn as nn  # noqa: E402


def _close(compute, pairs, rtol, atol):
    """Like _check for results that go through a GEMM: a chunk's GEMM may
    round differently from the whole array's (OpenBLAS blocks by rows)."""
    lazies, eagers, names = _flatten(pairs)
    for name, v, e in zip(names, compute(*lazies), eagers):
        v, e = np.asarray(v), np.asarray(e)
        assert v.dtype == e.dtype and v.shape == e.shape, (name, v.dtype, e.dtype, v.shape, e.shape)
        np.testing.assert_allclose(v, e, rtol=rtol, atol=atol, err_msg=name)


_TOL = {np.float32: (2e-5, 2e-6), np.float64: (1e-12, 1e-14)}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dense_functional(compute, dtype):
    xn = RNG.standard_normal((23, 7)).astype(dtype)
    x3 = RNG.standard_normal((5, 6, 7)).astype(dtype)
    w = RNG.standard_normal((4, 7)).astype(dtype)
    b = RNG.standard_normal(4).astype(dtype)
    X = da.from_array(xn, chunks=(5, 7))
    X3 = da.from_array(x3, chunks=(2, 4, 7))            # any leading (batch) axes chunked
    dense = mlkern.layers.dense
    pairs = [("plain", dense(X, w, b), dense(xn, w, b)),
             ("3-D", dense(X3, w, b, activation="gelu"), dense(x3, w, b, activation="gelu")),
             ("dask weight", dense(X, da.from_array(w, chunks=2), da.from_array(b, chunks=3)),
              dense(xn, w, b)),
             ("numpy x, dask weight", dense(xn, da.from_array(w, chunks=2)), dense(xn, w))]
    for act, kw in ((None, {}), ("relu", {}), ("sigmoid", {}), ("leaky_relu", {"negative_slope": 0.2})):
        lazy = dense(X, w, b, activation=act, return_saved=True, **kw)
        eager = dense(xn, w, b, activation=act, return_saved=True, **kw)
        assert (lazy[1] is None) == (eager[1] is None)
        pairs.append((f"{act} saved", lazy if eager[1] is not None else lazy[0],
                      eager if eager[1] is not None else eager[0]))
    assert pairs[0][1].chunks == ((5, 5, 5, 5, 3), (4,))
    assert pairs[1][1].chunks == ((2, 2, 1), (4, 2), (4,))
    _close(compute, pairs, *_TOL[dtype])


def test_embedding_functional(compute):
    w = RNG.standard_normal((11, 3)).astype(np.float32)
    idx = RNG.integers(0, 11, (9, 5))
    I = da.from_array(idx, chunks=(4, 2))               # a lookup: every axis may be chunked
    emb = mlkern.layers.embedding
    lazy = emb(I, w, padding_idx=2)
    assert lazy.chunks == ((4, 4, 1), (2, 2, 1), (3,))
    _check(compute, [("embedding", lazy, emb(idx, w, padding_idx=2)),
                     ("dask table", emb(I.astype(np.int32), da.from_array(w, chunks=(4, 3))),
                      emb(idx.astype(np.int32), w)),
                     ("numpy indices", emb(idx, da.from_array(w, chunks=5)), emb(idx, w))])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_layer_backwards(compute, dtype):
    L = mlkern.layers
    x = RNG.standard_normal((4, 6, 5)).astype(dtype)
    w = RNG.standard_normal((3, 5)).astype(dtype)
    X = da.from_array(x, chunks=(3, 4, 5))
    pairs = []
    for act, hb, need in ((None, True, True), ("relu", False, True), ("tanh", True, False),
                          ("gelu", True, True)):
        y, s = L.dense(x, w, activation=act, return_saved=True)
        g = RNG.standard_normal(y.shape).astype(dtype)
        lazy = L.dense_backward(da.from_array(g, chunks=(2, 3, 3)), X, w, has_bias=hb,
                                activation=act, saved=s, needs_input_grad=need)
        eager = L.dense_backward(g, x, w, has_bias=hb, activation=act, saved=s,
                                 needs_input_grad=need)
        assert [v is None for v in lazy] == [v is None for v in eager]
        pairs += [(f"dense_backward {act} {i}", lz, e)
                  for i, (lz, e) in enumerate(zip(lazy, eager)) if e is not None]
    assert pairs[0][1].chunks == X.chunks                # grad_x chunked like x
    idx = RNG.integers(0, 9, (11, 4))
    ge = RNG.standard_normal((11, 4, 3)).astype(dtype)
    pairs.append(("embedding_backward",
                  L.embedding_backward(da.from_array(ge, chunks=(5, 3, 3)),
                                       da.from_array(idx, chunks=(4, 2)), 9, padding_idx=1),
                  L.embedding_backward(ge, idx, 9, padding_idx=1)))
    _close(compute, pairs, *_TOL[dtype])
    with pytest.raises(ValueError, match=r"dense_backward: grad_output must have shape"):
        L.dense_backward(da.ones((4, 6, 2), chunks=2, dtype=dtype), X, w)
    with pytest.raises(ValueError, match=r"saved: required"):
        L.dense_backward(da.ones((4, 6, 3), chunks=2, dtype=dtype), X, w, activation="relu")
    with pytest.raises(ValueError, match=r"dense_backward: the reduced axis 2 of x"):
        L.dense_backward(da.ones((4, 6, 3), chunks=2, dtype=dtype), da.from_array(x, chunks=2), w)
    with pytest.raises(TypeError, match="out= is not supported with dask"):
        L.embedding_backward(da.from_array(ge, chunks=5), idx, 9, out=np.empty((9, 3), dtype))


def _models():
    mlp = nn.Sequential(nn.Dense(7, 6, seed=1), nn.Activation("relu"),
                        nn.Dense(6, 5, activation="tanh", seed=2), nn.Dense(5, 3, seed=3))
    text = nn.Sequential(nn.Embedding(13, 4, padding_idx=0, seed=4), nn.Flatten(),
                         nn.Dense(24, 2, activation="sigmoid", seed=5))
    nested = nn.Sequential(nn.Sequential(nn.Dense(7, 4, seed=6), nn.Activation("gelu")),
                           nn.Dense(4, 2, seed=7))
    return mlp, text, nested


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nn_models_are_lazy_and_equal_to_numpy(compute, dtype):
    mlp, text, nested = _models()
    if dtype == np.float64:
        for m in (mlp, nested):
            for lay in m.layers:
                for sub in getattr(lay, "layers", (lay,)):
                    if isinstance(sub, nn.Dense):
                        sub.weight = sub.weight.astype(np.float64)
                        sub.bias = sub.bias.astype(np.float64)
    xn = RNG.standard_normal((29, 7)).astype(dtype)
    x3 = RNG.standard_normal((6, 3, 7)).astype(dtype)
    ids = RNG.integers(0, 13, (17, 6))
    X = da.from_array(xn, chunks=(8, 7))
    X3 = da.from_array(x3, chunks=(4, 3, 7))
    I = da.from_array(ids, chunks=(5, 6))
    layer = nn.Dense(7, 3, activation="elu", seed=8, dtype=dtype)
    act = nn.Activation("softplus", beta=2.0)
    pairs = [("mlp", mlp(X), mlp(xn)), ("text", text(I), text(ids)),
             ("nested", nested(X), nested(xn)), ("dense 3-D", layer(X3), layer(x3)),
             ("activation", act.forward(X), act.forward(xn)),
             ("embedding", text[0](I), text[0](ids)), ("flatten", nn.Flatten()(X3),
                                                       nn.Flatten()(x3))]
    for name, lazy, _ in pairs:
        assert isinstance(lazy, da.Array), name
        assert lazy.chunks[0] == {"text": I, "embedding": I, "dense 3-D": X3,
                                  "flatten": X3}.get(name, X).chunks[0], name
    _close(compute, pairs, *_TOL[dtype])


class _TimeMajor(nn.Layer):
    """A layer with a (T, N, F) input (batch axis 1, as a recurrent layer with
    batch_first=False) that sums over time, and keeps its last output as
    state (as h_n): the output's batch axis is 0."""
    batch_first = False

    def __init__(self):
        self.last = "untouched"

    def _forward(self, x, training, out):
        self.last = np.asarray(x).sum(axis=0)
        return self.last * 2.0


def test_nn_batch_axis_follows_the_layer_and_state_is_kept():
    layer = _TimeMajor()
    xn = RNG.standard_normal((4, 10, 3))
    X = da.from_array(xn, chunks=(4, 3, 3))
    y = layer(X)
    assert layer.last == "untouched"          # the shape samples left no state behind
    assert y.chunks == ((3, 3, 3, 1), (3,))
    np.testing.assert_array_equal(y.compute(scheduler="threads"), xn.sum(axis=0) * 2.0)
    with pytest.raises(ValueError, match=r"axis 0 .*x\.rechunk\(\{0: -1\}\)"):
        layer(da.from_array(xn, chunks=(2, 5, 3)))


def test_nn_chunk_and_training_errors():
    mlp, text, _ = _models()
    xn = RNG.standard_normal((12, 7)).astype(np.float32)
    with pytest.raises(ValueError, match=r"split over chunks along axis 1.*x\.rechunk\(\{1: -1\}\)"):
        mlp(da.from_array(xn, chunks=(4, 3)))
    mlp(da.from_array(xn, chunks=(4, 3)).rechunk({1: -1}))      # the remedy works
    with pytest.raises(ValueError, match=r"Sequential: .*axis 1"):
        text(da.from_array(RNG.integers(0, 13, (8, 6)), chunks=(4, 3)))
    with pytest.raises(ValueError, match=r"dense: the reduced axis 1 of x is split over 3 chunks"
                                         r".*x\.rechunk\(\{1: -1\}\)"):
        mlkern.layers.dense(da.from_array(xn, chunks=(4, 3)), np.ones((2, 7), np.float32))
    with pytest.raises(TypeError, match=r"training=True is not supported on a dask array"):
        mlp.forward(da.from_array(xn, chunks=4), training=True)
    # the eager call's checks, at call time, naming the argument
    with pytest.raises(ValueError, match="features"):
        mlp(da.from_array(np.ones((4, 5), np.float32), chunks=(2, 5)))
    with pytest.raises(ValueError, match="x and weight"):
        mlkern.layers.dense(da.from_array(xn, chunks=4), np.ones((2, 6), np.float32))
    with pytest.raises(TypeError, match="mixed float"):
        mlkern.layers.dense(da.from_array(xn, chunks=4), np.ones((2, 7)))
    with pytest.raises(ValueError, match="padding_idx"):
        mlkern.layers.embedding(da.from_array(np.zeros(4, np.int64), chunks=2), np.ones((3, 2)),
                                padding_idx=5)
    with pytest.raises(TypeError, match="out= is not supported with dask"):
        mlkern.layers.embedding(da.from_array(np.zeros(4, np.int64), chunks=2), np.ones((3, 2)),
                                out=np.empty((4, 2)))
    with pytest.raises(TypeError, match="out= is not supported with dask"):
        mlkern.layers.dense(da.from_array(xn, chunks=4), np.ones((2, 7), np.float32),
                            out=np.empty((12, 2), np.float32))
    # an index out of range is found in the data: raised by the chunk holding it
    bad = mlkern.layers.embedding(da.from_array(np.array([0, 1, 7, 2]), chunks=2), np.ones((3, 2)))
    with pytest.raises(ValueError, match="7"):
        bad.compute(scheduler="sync")


def test_layers_and_models_compute_nothing_eagerly():
    """A graph whose compute raises: every call returns a dask array at once."""
    mlp, text, _ = _models()
    X = da.from_array(np.ones((6, 7), np.float32), chunks=(3, 7)).map_blocks(_boom, dtype=np.float32)
    I = da.from_array(np.ones((6, 6), np.int64), chunks=3).rechunk({1: -1}).map_blocks(
        _boom, dtype=np.int64)
    w = np.ones((2, 7), np.float32)
    results = [mlp(X), text(I), nn.Activation("relu")(X), nn.Flatten()(X),
               mlkern.layers.dense(X, w), mlkern.layers.embedding(I, np.ones((3, 2))),
               *mlkern.layers.dense(X, w, activation="gelu", return_saved=True),
               *mlkern.layers.dense_backward(X[:, :2], X, w),
               mlkern.layers.embedding_backward(X[:, None, :2].rechunk({2: -1}), I[:, :1], 3),
               mlkern.layers.dense(X, da.from_array(w, chunks=1).map_blocks(_boom, dtype=w.dtype))]
    for r in results:
        assert isinstance(r, da.Array), type(r)
    for r in (results[0], results[1], results[-1]):
        with pytest.raises(Boom):
            r.compute(scheduler="sync")


def test_models_pickle_and_calculus_refuses_dask():
    import pickle
    mlp, _, _ = _models()
    xn = RNG.standard_normal((5, 7)).astype(np.float32)
    mlp(xn)                                       # a warm workspace (not pickled)
    copy = pickle.loads(pickle.dumps(mlp))
    np.testing.assert_array_equal(copy(xn), mlp(xn))
    assert copy.state_dict().keys() == mlp.state_dict().keys()
    X = da.from_array(xn, chunks=2)
    with pytest.raises(TypeError, match=r"x: a dask array.*x\.compute\(\)"):
        mlkern.calculus.numerical_grad(lambda v: float(np.sum(v)), X)
    with pytest.raises(TypeError, match=r"x: a dask array"):
        mlkern.calculus.gradcheck(lambda v: float(np.sum(v)), np.ones_like, X)
    g = mlkern.calculus.derivative("tanh")(X)     # the _grad function itself: lazy
    assert isinstance(g, da.Array)
    np.testing.assert_array_equal(g.compute(scheduler="threads"), mlkern.tanh_grad(xn))


def test_functions_without_a_dask_path_refuse_dask():
    """No silent compute: a TypeError naming the function."""
    L = mlkern.layers
    X = da.from_array(np.ones((4, 3)), chunks=2)
    T = da.from_array(np.ones((5, 4, 3)), chunks=(5, 2, 3))
    w, wh = np.ones((2, 3)), np.ones((2, 2))
    saved = L.rnn(np.ones((5, 4, 3)), None, np.ones((2, 3)), wh, return_saved=True)[2]
    calls = [("rnn", lambda: L.rnn(T, None, w, wh)),
             ("lstm", lambda: L.lstm(T, None, None, np.ones((8, 3)), np.ones((8, 2)))),
             ("gru", lambda: L.gru(T, None, np.ones((6, 3)), np.ones((6, 2)))),
             ("rnn_cell", lambda: L.rnn_cell(X, np.ones((4, 2)), w, wh)),
             ("rnn_backward", lambda: L.rnn_backward(da.ones((5, 4, 2), chunks=2), None, saved))]
    for name, call in calls:
        with pytest.raises(TypeError, match=rf"{name}: dask arrays are not supported here yet"):
            call()


class _WithState(nn.Layer):
    """Overrides forward with an extra argument, as the recurrent layers do
    (forward(x, hx=None, *, training=False); __call__(x, hx=None))."""
    batch_first = True

    def __init__(self):
        self.w = np.arange(1.0, 4.0)
        self.h_n = "untouched"

    def __call__(self, x, hx=None):
        return self.forward(x, hx)

    def forward(self, x, hx=None, *, training=False):
        y = np.asarray(x) * self.w + (0.0 if hx is None else hx)
        self.h_n = y[:, -1]
        return y[:, -1] if not training else y


def test_nn_subclass_overriding_forward_keeps_the_dask_entry():
    layer = _WithState()
    xn = RNG.standard_normal((7, 5, 3))
    X = da.from_array(xn, chunks=(3, 5, 3))
    ys = [layer(X), layer.forward(X), layer.forward(X, None)]
    assert layer.h_n == "untouched"          # building the graph left no state behind
    for y in ys:
        assert isinstance(y, da.Array) and y.chunks == ((3, 3, 1), (3,))
        np.testing.assert_array_equal(y.compute(scheduler="threads"), (xn * layer.w)[:, -1])
    with pytest.raises(TypeError, match="other arguments must be None"):
        layer(X, np.zeros(3))
    with pytest.raises(TypeError, match="training=True is not supported"):
        layer.forward(X, training=True)
    with pytest.raises(TypeError, match="training: expected a bool"):
        layer.forward(X, training=1)
    # NumPy input: the subclass's own forward, unchanged
    np.testing.assert_array_equal(layer(xn, 1.0), (xn * layer.w)[:, -1] + 1.0)
    assert layer.forward(xn, training=True).shape == xn.shape
    assert layer.forward.__doc__ is None and type(layer).forward.__wrapped__ is not None


def _later_models():
    """The recurrent, conv and pooling classes, where this build has them
    (they land in mlkern.nn from other branches)."""
    out = []
    seq = RNG.standard_normal((6, 10, 3)).astype(np.float32)          # (T, N, I)
    img = RNG.standard_normal((9, 2, 8, 8)).astype(np.float32)        # NCHW
    for name in ("SimpleRNN", "LSTM", "GRU"):
        if hasattr(nn, name):
            cls = getattr(nn, name)
            out += [(f"{name} time-major", cls(3, 4, seed=0), seq, (6, 4, 3)),
                    (f"{name} batch_first", cls(3, 4, batch_first=True, seed=0),
                     np.ascontiguousarray(seq.transpose(1, 0, 2)), (4, 6, 3)),
                    (f"{name} last", cls(3, 4, return_sequences=False, seed=0), seq, (6, 4, 3))]
    if hasattr(nn, "Conv2D") and hasattr(nn, "MaxPool2D"):
        out += [("cnn", nn.Sequential(nn.Conv2D(2, 3, 3, seed=0), nn.Activation("relu"),
                                      nn.MaxPool2D(2), nn.Flatten(), nn.Dense(27, 5, seed=1)),
                 img, (4, 2, 8, 8))]
    return out


def test_nn_recurrent_conv_pool_models_if_present(compute):
    cases = _later_models()
    if not cases:
        pytest.skip("this build has no recurrent / conv / pooling classes in mlkern.nn")
    pairs = []
    for name, model, xn, chunks in cases:
        lazy = model(da.from_array(xn, chunks=chunks))
        assert isinstance(lazy, da.Array), name
        pairs.append((name, lazy, model(xn)))
    _close(compute, pairs, *_TOL[np.float32])


# ---------------------------------------------------------------- conv, pooling, locally connected
def _spatial_calls(X2, X1, Xl, w2, b2, w1, wl, bl):
    """(name, lazy call, eager call) of every spatial forward: X2 (N, C, H, W)
    and X1 (N, C, L) chunked along the batch axis, Xl the NHWC twin of X2."""
    L = mlkern.layers
    return [
        ("conv2d", lambda x: L.conv2d(x, w2, b2, padding=1), X2),
        ("conv2d NHWC", lambda x: L.conv2d(x, w2, None, stride=2, layout="NHWC"), Xl),
        ("conv1d", lambda x: L.conv1d(x, w1, padding="same", dilation=2), X1),
        ("max_pool2d", lambda x: L.max_pool2d(x, 3, 2, 1, return_indices=True), X2),
        ("max_pool1d", lambda x: L.max_pool1d(x, 2, ceil_mode=True), X1),
        ("avg_pool2d NHWC", lambda x: L.avg_pool2d(x, 2, layout="NHWC"), Xl),
        ("avg_pool1d", lambda x: L.avg_pool1d(x, 3, 1, 1, count_include_pad=False), X1),
        ("locally_connected2d", lambda x: L.locally_connected2d(x, wl, bl), X2),
    ]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_spatial_layers_lazy_per_batch_chunk(compute, dtype):
    """Each forward is a lazy dask array (one task per batch chunk) equal to
    the eager call bit for bit (the same kernel on the same images)."""
    x2 = RNG.standard_normal((7, 3, 8, 8)).astype(dtype)
    x1 = RNG.standard_normal((7, 3, 12)).astype(dtype)
    xl = np.ascontiguousarray(x2.transpose(0, 2, 3, 1))
    w2, b2 = RNG.standard_normal((4, 3, 3, 3)).astype(dtype), RNG.standard_normal(4).astype(dtype)
    w1 = RNG.standard_normal((5, 3, 3)).astype(dtype)
    wl = RNG.standard_normal((6, 6, 2, 3, 3, 3)).astype(dtype)
    bl = RNG.standard_normal((6, 6, 2)).astype(dtype)
    pairs = []
    for name, call, xn in _spatial_calls(x2, x1, xl, w2, b2, w1, wl, bl):
        xd = da.from_array(xn, chunks=(3,) + xn.shape[1:])
        lazy = call(xd)
        first = lazy[0] if isinstance(lazy, tuple) else lazy
        assert first.chunks[0] == (3, 3, 1), name
        pairs.append((name, lazy, call(xn)))
    _check(compute, pairs)


def test_spatial_layers_errors_and_no_eager_compute():
    L = mlkern.layers
    x = np.ones((4, 2, 5, 5))
    w = np.ones((3, 2, 3, 3))
    X = da.from_array(x, chunks=(2, 2, 5, 5)).map_blocks(_boom, dtype=x.dtype)
    results = [L.conv2d(X, w), L.max_pool2d(X, 2), L.avg_pool2d(X, 2),
               *L.max_pool2d(X, 2, return_indices=True),
               L.locally_connected2d(X, np.ones((3, 3, 1, 2, 3, 3)))]
    for r in results:
        assert isinstance(r, da.Array), type(r)
        with pytest.raises(Boom):
            r.compute(scheduler="sync")
    split = da.from_array(x, chunks=(2, 1, 5, 5))
    with pytest.raises(ValueError, match=r"conv2d: axis 1 of x .*x\.rechunk\(\{1: -1\}\)"):
        L.conv2d(split, w)
    with pytest.raises(ValueError, match=r"max_pool2d: axis 1"):
        L.max_pool2d(split, 2)
    # the eager checks run at call time on a zero sample
    with pytest.raises(ValueError, match="conv2d"):
        L.conv2d(da.from_array(x, chunks=2), np.ones((3, 4, 3, 3)))
    with pytest.raises(TypeError, match="out= is not supported with dask input"):
        L.avg_pool2d(da.from_array(x, chunks=2), 2, out=np.empty((4, 2, 2, 2)))
    g = da.ones((4, 3, 3, 3), chunks=2)
    for name, call in [("conv2d_backward", lambda: L.conv2d_backward(g, x, w)),
                       ("avg_pool2d_backward", lambda: L.avg_pool2d_backward(g, x.shape, 2)),
                       ("locally_connected2d_backward",
                        lambda: L.locally_connected2d_backward(g, x, np.ones((3, 3, 3, 2, 3, 3))))]:
        with pytest.raises(TypeError, match=rf"{name}: dask arrays are not supported here yet"):
            call()
