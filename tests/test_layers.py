"""mlkern.layers: dense, dense_backward, embedding, embedding_backward.

References: float64 NumPy (tests/reference.py for the activations), 4th-order
central finite differences for every gradient, PyTorch (optional) for values
and gradients.
"""
import doctest
import inspect
import os
import re
import subprocess
import sys
import time

import numpy as np
import pytest

import mlkern
import mlkern.layers as L
import reference as R
from reference import fd4_grad
from conftest import SRC

try:
    from hypothesis import given, settings
    from hypothesis import strategies as st
except ImportError:  # pragma: no cover
    given = None

F32, F64 = np.float32, np.float64

# name, params, float64 reference f(z), f'(z), saved is y
ACTS = [
    (None, {}, lambda z: z, lambda z: np.ones_like(z), False),
    ("sigmoid", {}, R.sigmoid, R.sigmoid_grad, True),
    ("tanh", {}, R.tanh, R.tanh_grad, True),
    ("relu", {}, R.relu, R.relu_grad, False),
    ("leaky_relu", {}, lambda z: R.leaky_relu(z, 0.01), lambda z: R.leaky_relu_grad(z, 0.01), False),
    ("leaky_relu", {"negative_slope": 0.2}, lambda z: R.leaky_relu(z, 0.2),
     lambda z: R.leaky_relu_grad(z, 0.2), False),
    ("elu", {"alpha": 0.7}, lambda z: R.elu(z, 0.7), lambda z: R.elu_grad(z, 0.7), True),
    ("softplus", {}, R.softplus, R.softplus_grad, False),
    ("softplus", {"beta": 2.0, "threshold": 1.0}, lambda z: R.softplus(z, 2.0, 1.0),
     lambda z: R.softplus_grad(z, 2.0, 1.0), False),
    ("silu", {"beta": 1.5}, lambda z: R.silu(z, 1.5), lambda z: R.silu_grad(z, 1.5), False),
    ("swish", {}, R.silu, R.silu_grad, False),
    ("log_sigmoid", {}, R.log_sigmoid, R.log_sigmoid_grad, False),
    ("gelu", {}, R.gelu, R.gelu_grad, False),
    ("gelu", {"approximate": "tanh"}, R.gelu_tanh, R.gelu_tanh_grad, False),
]
ACT_IDS = [f"{a}{p or ''}" for a, p, *_ in ACTS]
SHAPES = [(1, 5, 7), (3, 4, 5), (16, 33, 17), (40, 30, 20), (2, 300, 400), (300, 64, 48)]


def _data(M, K, N, dt=F64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((M, K)).astype(dt)
    w = (rng.standard_normal((N, K)) / np.sqrt(max(K, 1))).astype(dt)
    b = rng.standard_normal(N).astype(dt)
    return x, w, b


def _ref(x, w, b, f):
    z = x.astype(F64) @ w.astype(F64).T
    if b is not None:
        z = z + b.astype(F64)
    return z, f(z)


def _tol(dt, K):
    eps = np.finfo(dt).eps
    return 8 * eps * np.sqrt(K + 1) + (4 * eps if dt == F32 else 0)


# ---------------------------------------------------------------- dense forward
@pytest.mark.parametrize("dt", [F32, F64])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("act", ACTS, ids=ACT_IDS)
def test_dense_matches_float64_reference(act, shape, dt):
    name, params, f, _, _ = act
    x, w, b = _data(*shape, dt)
    y = L.dense(x, w, b, activation=name, **params)
    z, ref = _ref(x, w, b, f)
    assert y.dtype == dt and y.shape == ref.shape
    scale = np.abs(x).astype(F64) @ np.abs(w).astype(F64).T + np.abs(b) + 1
    assert np.all(np.abs(y - ref) <= _tol(dt, shape[1]) * scale * 4)


@pytest.mark.parametrize("dt", [F32, F64])
@pytest.mark.parametrize("act", ACTS, ids=ACT_IDS)
def test_dense_saved_is_what_the_backward_takes(act, dt):
    name, params, f, _, from_y = act
    x, w, b = _data(20, 30, 40, dt)
    y, saved = L.dense(x, w, b, activation=name, return_saved=True, **params)
    y2 = L.dense(x, w, b, activation=name, **params)
    assert np.array_equal(y, y2)
    if name is None:
        assert saved is None
    elif from_y:
        assert saved is y
    else:
        z = L.dense(x, w, b)
        assert saved.dtype == dt and np.array_equal(saved, z)
        # the activation applied to saved gives y exactly (same kernels)
        assert np.array_equal(getattr(mlkern, name)(saved, **params), y)


def test_dense_fused_activation_equals_separate_call():
    for dt in (F32, F64):
        x, w, b = _data(70, 50, 90, dt)
        z = L.dense(x, w, b)
        for name, params, *_ in ACTS[1:]:
            assert np.array_equal(L.dense(x, w, b, activation=name, **params),
                                  getattr(mlkern, name)(z, **params)), name


def test_dense_without_bias_and_batch_dims():
    x, w, b = _data(24, 8, 6)
    x3 = x.reshape(2, 3, 4, 8)
    y = L.dense(x3, w)
    assert y.shape == (2, 3, 4, 6)
    np.testing.assert_allclose(y.reshape(24, 6), x @ w.T, rtol=1e-13, atol=1e-13)
    y1 = L.dense(x[0], w, b)
    assert y1.shape == (6,)
    np.testing.assert_allclose(y1, x[0] @ w.T + b, rtol=1e-13, atol=1e-13)


def test_dense_zero_size_dims():
    for dt in (F32, F64):
        x, w, b = _data(0, 5, 4, dt)
        assert L.dense(x, w, b, activation="relu").shape == (0, 4)
        y, s = L.dense(x, w, b, activation="relu", return_saved=True)
        assert y.shape == s.shape == (0, 4)
        # K = 0: y = act(b)
        x0 = np.zeros((3, 0), dt)
        w0 = np.zeros((4, 0), dt)
        b = np.array([-1.0, 0.5, 2.0, -3.0], dt)
        assert np.array_equal(L.dense(x0, w0, b, activation="relu"), np.tile(np.maximum(b, 0), (3, 1)))
        assert np.array_equal(L.dense(x0, w0), np.zeros((3, 4), dt))
        # N = 0
        assert L.dense(np.ones((3, 5), dt), np.zeros((0, 5), dt)).shape == (3, 0)


# ---------------------------------------------------------------- dtypes
def test_dense_dtypes():
    x, w, b = _data(4, 3, 2)
    xi = np.arange(12).reshape(4, 3)
    for dt in (F32, F64):
        y = L.dense(xi, w.astype(dt), b.astype(dt))
        assert y.dtype == dt
        np.testing.assert_allclose(y, xi @ w.astype(dt).astype(F64).T + b.astype(dt),
                                   rtol=1e-5 if dt == F32 else 1e-13)
    yi = L.dense(xi, np.ones((2, 3), np.int32), np.array([1, 2], np.int8))
    assert yi.dtype == F64 and np.array_equal(yi, xi @ np.ones((3, 2)) + [1, 2])
    y16 = L.dense(x.astype(np.float16), w.astype(np.float16), b.astype(np.float16), activation="tanh")
    assert y16.dtype == np.float16
    ref = np.tanh(x.astype(np.float16).astype(F64) @ w.astype(np.float16).astype(F64).T
                  + b.astype(np.float16))
    np.testing.assert_allclose(y16.astype(F64), ref, atol=2e-3)
    yb = L.dense(x.astype(">f8"), w, b)
    np.testing.assert_allclose(yb, x @ w.T + b, rtol=1e-13)


@pytest.mark.parametrize("args", [("x", "weight"), ("x", "bias"), ("weight", "bias")])
def test_dense_mixed_float_dtypes_is_a_type_error_naming_both(args):
    x, w, b = _data(4, 3, 2, F32)
    kw = {"x": x, "weight": w, "bias": b}
    kw[args[1]] = kw[args[1]].astype(F64)
    with pytest.raises(TypeError) as e:
        L.dense(kw["x"], kw["weight"], kw["bias"])
    assert args[0] in str(e.value) and args[1] in str(e.value)
    assert "float32" in str(e.value) and "float64" in str(e.value)


def test_dense_bad_dtypes():
    x, w, b = _data(4, 3, 2)
    with pytest.raises(TypeError, match="x"):
        L.dense(x.astype(complex), w)
    with pytest.raises(TypeError, match="weight"):
        L.dense(x, w.astype(object))
    with pytest.raises(TypeError, match="bias"):
        L.dense(x, w, np.array(["a", "b"]))


# ---------------------------------------------------------------- layouts
def _layouts(a):
    yield "C", a
    yield "F", np.asfortranarray(a)
    big = np.zeros((a.shape[0] * 2, a.shape[1] * 3), a.dtype)
    big[::2, ::3] = a
    yield "strided", big[::2, ::3]
    yield "negative", np.ascontiguousarray(a[::-1, ::-1])[::-1, ::-1]
    ro = a.copy()
    ro.flags.writeable = False
    yield "readonly", ro


@pytest.mark.parametrize("dt", [F32, F64])
def test_dense_layouts(dt):
    x, w, b = _data(9, 7, 5, dt)
    want = L.dense(x, w, b, activation="gelu")
    for lx, xx in _layouts(x):
        for lw, ww in _layouts(w):
            got = L.dense(xx, ww, b, activation="gelu")
            np.testing.assert_allclose(got, want, rtol=4 * np.finfo(dt).eps, atol=4 * np.finfo(dt).eps,
                                       err_msg=f"{lx} {lw}")
    bs = np.zeros(10, dt)
    bs[::2] = b
    np.testing.assert_allclose(L.dense(x, w, bs[::2], activation="gelu"), want,
                               rtol=4 * np.finfo(dt).eps)


def test_dense_inputs_untouched():
    x, w, b = _data(30, 20, 10)
    c = [a.copy() for a in (x, w, b)]
    y, s = L.dense(x, w, b, activation="relu", return_saved=True)
    L.dense_backward(np.ones_like(y), x, w, activation="relu", saved=s)
    for a, a0 in zip((x, w, b), c):
        assert np.array_equal(a, a0)
    s0 = s.copy()
    g = np.ones_like(y)
    L.dense_backward(g, x, w, activation="relu", saved=s)
    assert np.array_equal(s, s0) and np.array_equal(g, np.ones_like(y))


# ---------------------------------------------------------------- out=
@pytest.mark.parametrize("dt", [F32, F64])
def test_dense_out(dt):
    x, w, b = _data(6, 5, 4, dt)
    want = L.dense(x, w, b, activation="silu")
    out = np.full((6, 4), np.nan, dt)
    r = L.dense(x, w, b, activation="silu", out=out)
    assert r is out and np.array_equal(out, want)
    outf = np.full((6, 4), np.nan, dt, order="F")
    assert L.dense(x, w, b, activation="silu", out=outf) is outf
    assert np.array_equal(outf, want)
    with pytest.raises(ValueError, match="out"):
        L.dense(x, w, b, out=np.empty((4, 6), dt))
    with pytest.raises(TypeError, match="out"):
        L.dense(x, w, b, out=np.empty((6, 4), F64 if dt == F32 else F32))
    ro = np.empty((6, 4), dt)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        L.dense(x, w, b, out=ro)
    with pytest.raises(TypeError, match="out"):
        L.dense(x, w, b, out=[[0.0] * 4] * 6)


@pytest.mark.parametrize("dt", [F32, F64])
@pytest.mark.parametrize("M", [1, 5])
def test_dense_out_filled_with_nan_without_bias(M, dt):
    # the GEMM/GEMV must not read an out= it overwrites (0 * NaN)
    x, w, _ = _data(M, 7, 300, dt)
    for act in (None, "relu"):
        out = np.full((M, 300), np.nan, dt)
        L.dense(x, w, activation=act, out=out)
        assert np.isfinite(out).all()
        np.testing.assert_array_equal(out, L.dense(x, w, activation=act))
        y, s = L.dense(x, w, activation=act, out=np.full((M, 300), np.nan, dt), return_saved=True)
        assert np.isfinite(y).all() and (s is None or np.isfinite(s).all())


@pytest.mark.parametrize("dt", [F32, F64])
def test_dense_out_aliasing_an_input(dt):
    x, w, b = _data(6, 4, 4, dt)
    want = L.dense(x, w, b, activation="tanh")
    xc = x.copy()
    assert L.dense(xc, w, b, activation="tanh", out=xc) is xc
    np.testing.assert_array_equal(xc, want)
    wc = w.copy()
    want_w = L.dense(wc, wc, b)
    assert L.dense(wc, wc, b, out=wc) is wc
    np.testing.assert_array_equal(wc, want_w)
    # out overlapping x partially
    buf = np.zeros(6 * 4 + 2, dt)
    buf[:24] = x.ravel()
    xv = buf[:24].reshape(6, 4)
    ov = buf[2:].reshape(6, 4)
    want2 = L.dense(xv.copy(), w, b)
    L.dense(xv, w, b, out=ov)
    np.testing.assert_array_equal(ov, want2)


# ---------------------------------------------------------------- bad input
def test_dense_bad_shapes():
    x, w, b = _data(4, 3, 2)
    with pytest.raises(ValueError, match="x and weight"):
        L.dense(x, w.T)
    with pytest.raises(ValueError, match="weight"):
        L.dense(x, w.ravel())
    with pytest.raises(ValueError, match="bias"):
        L.dense(x, w, np.ones(3))
    with pytest.raises(ValueError, match="bias"):
        L.dense(x, w, np.ones((1, 2)))
    with pytest.raises(ValueError, match="x"):
        L.dense(np.float64(1.0), w)


def test_dense_bad_activations():
    x, w, b = _data(4, 3, 2)
    for name in ("prelu", "noisy_relu", "softmax", "Relu", ""):
        with pytest.raises(ValueError, match="activation"):
            L.dense(x, w, activation=name)
    with pytest.raises(TypeError, match="activation"):
        L.dense(x, w, activation=3)
    with pytest.raises(TypeError, match="alpha"):
        L.dense(x, w, activation="relu", alpha=1.0)
    with pytest.raises(TypeError, match="negative_slope"):
        L.dense(x, w, negative_slope=0.1)
    with pytest.raises(TypeError, match="negative_slope"):
        L.dense(x, w, activation="leaky_relu", negative_slope="0.1")
    with pytest.raises(ValueError, match="negative_slope"):
        L.dense(x, w, activation="leaky_relu", negative_slope=float("nan"))
    with pytest.raises(ValueError, match="approximate"):
        L.dense(x, w, activation="gelu", approximate="erf")
    with pytest.raises(ValueError, match="beta"):
        L.dense(x, w, activation="softplus", beta=0.0)
    with pytest.raises(TypeError, match="threshold"):
        L.dense(x, w, activation="softplus", threshold="big")


# ---------------------------------------------------------------- backward
def _bwd_ref(g, x, w, b, fgrad):
    z, _ = _ref(x, w, b, lambda z: z)
    gz = g.astype(F64) * fgrad(z)
    return gz @ w.astype(F64), gz.T @ x.astype(F64), gz.sum(0)


@pytest.mark.parametrize("dt", [F32, F64])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("act", ACTS, ids=ACT_IDS)
def test_dense_backward_matches_float64_reference(act, shape, dt):
    name, params, _, fgrad, _ = act
    x, w, b = _data(*shape, dt)
    y, s = L.dense(x, w, b, activation=name, return_saved=True, **params)
    g = np.random.default_rng(5).standard_normal(y.shape).astype(dt)
    gx, gw, gb = L.dense_backward(g, x, w, activation=name, saved=s, **params)
    rx, rw, rb = _bwd_ref(g, x, w, b, fgrad)
    assert gx.dtype == gw.dtype == gb.dtype == dt
    eps = np.finfo(dt).eps
    M, K, N = shape
    # the saved pre-activation is rounded to dt: f' of it differs by cond * eps
    amp = 1 if dt == F64 else 50
    for got, want, n in ((gx, rx, N), (gw, rw, M), (gb, rb, M)):
        scale = np.abs(want).max() + 1
        np.testing.assert_allclose(got, want, rtol=0, atol=amp * 8 * eps * np.sqrt(n + 1) * scale * 4)



def _fd4(fun, a, h=1e-3):
    return fd4_grad(fun, a, h)


@pytest.mark.parametrize("act", ACTS, ids=ACT_IDS)
def test_dense_backward_finite_differences(act):
    name, params, *_ = act
    x, w, b = _data(3, 4, 5, F64, seed=11)
    x += 0.05   # keep the pre-activations off the kinks of relu & co.
    G = np.random.default_rng(3).standard_normal((3, 5))

    def loss():
        return float(np.sum(G * L.dense(x, w, b, activation=name, **params)))

    _, s = L.dense(x, w, b, activation=name, return_saved=True, **params)
    z = L.dense(x, w, b)
    assert np.abs(z).min() > 5e-3
    gx, gw, gb = L.dense_backward(G, x, w, activation=name, saved=s, **params)
    for got, arr in ((gx, x), (gw, w), (gb, b)):
        np.testing.assert_allclose(got, _fd4(loss, arr), rtol=1e-7, atol=1e-8)


def test_dense_backward_options():
    x, w, b = _data(7, 6, 5)
    y, s = L.dense(x, w, b, activation="relu", return_saved=True)
    g = np.random.default_rng(0).standard_normal(y.shape)
    gx, gw, gb = L.dense_backward(g, x, w, activation="relu", saved=s)
    gx2, gw2, gb2 = L.dense_backward(g, x, w, activation="relu", saved=s, needs_input_grad=False,
                                     has_bias=False)
    assert gx2 is None and gb2 is None and np.array_equal(gw2, gw)
    # no activation: saved not needed; batch dims
    x3 = x.reshape(7, 1, 6)
    gx3, gw3, gb3 = L.dense_backward(g.reshape(7, 1, 5), x3, w)
    assert gx3.shape == (7, 1, 6)
    np.testing.assert_allclose(gx3.reshape(7, 6), g @ w, rtol=1e-13)
    np.testing.assert_allclose(gw3, g.T @ x, rtol=1e-13)
    np.testing.assert_allclose(gb3, g.sum(0), rtol=1e-13)


def test_dense_backward_zero_size():
    for dt in (F32, F64):
        # M = 0: the weight and bias gradients are zero
        gx, gw, gb = L.dense_backward(np.zeros((0, 4), dt), np.zeros((0, 3), dt), np.ones((4, 3), dt),
                                      activation="relu", saved=np.zeros((0, 4), dt))
        assert gx.shape == (0, 3) and np.array_equal(gw, np.zeros((4, 3))) and np.array_equal(gb, np.zeros(4))
        # K = 0
        g = np.ones((2, 4), dt)
        gx, gw, gb = L.dense_backward(g, np.zeros((2, 0), dt), np.zeros((4, 0), dt))
        assert gx.shape == (2, 0) and gw.shape == (4, 0) and np.array_equal(gb, [2, 2, 2, 2])
        # N = 0
        gx, gw, gb = L.dense_backward(np.zeros((2, 0), dt), np.ones((2, 3), dt), np.zeros((0, 3), dt))
        assert np.array_equal(gx, np.zeros((2, 3))) and gw.shape == (0, 3) and gb.shape == (0,)


def test_dense_backward_bad_input():
    x, w, b = _data(4, 3, 2)
    g = np.ones((4, 2))
    with pytest.raises(ValueError, match="saved"):
        L.dense_backward(g, x, w, activation="relu")
    with pytest.raises(ValueError, match="saved"):
        L.dense_backward(g, x, w, activation="relu", saved=np.ones((4, 3)))
    with pytest.raises(ValueError, match="grad_output"):
        L.dense_backward(np.ones((4, 3)), x, w)
    with pytest.raises(TypeError, match="grad_output"):
        L.dense_backward(g.astype(F32), x, w)
    with pytest.raises(TypeError, match="saved"):
        L.dense_backward(g, x, w, activation="relu", saved=g.astype(F32))
    with pytest.raises(ValueError, match="activation"):
        L.dense_backward(g, x, w, activation="prelu", saved=g)
    with pytest.raises(ValueError, match="x and weight"):
        L.dense_backward(g, x, w.T)


def test_dense_backward_dtypes_and_layouts():
    x, w, b = _data(8, 6, 5)
    y, s = L.dense(x, w, b, activation="silu", return_saved=True)
    g = np.random.default_rng(1).standard_normal(y.shape)
    want = L.dense_backward(g, x, w, activation="silu", saved=s)
    got = L.dense_backward(np.asfortranarray(g), x[:, ::-1][:, ::-1], np.asfortranarray(w),
                           activation="silu", saved=np.asfortranarray(s))
    for a, c in zip(got, want):
        np.testing.assert_allclose(a, c, rtol=1e-14, atol=1e-14)
    h = [a.astype(np.float16) for a in (g, x, w, s)]
    got16 = L.dense_backward(h[0], h[1], h[2], activation="silu", saved=h[3])
    assert all(a.dtype == np.float16 for a in got16)
    ref16 = _bwd_ref(h[0], h[1], h[2], None, lambda z: R.silu_grad(h[3].astype(F64)))
    for a, c in zip(got16, ref16):
        np.testing.assert_allclose(a.astype(F64), c, rtol=2e-2, atol=2e-2)
    xi = np.arange(16).reshape(8, 2)
    gx, gw, gb = L.dense_backward(np.ones((8, 3), F32), xi, np.ones((3, 2), F32))
    assert gx.dtype == gw.dtype == F32


def _misaligned(a):
    """a's values in a C-contiguous array whose data pointer is one byte off alignment."""
    a = np.asarray(a)
    buf = bytearray(a.nbytes + 1)
    m = np.frombuffer(memoryview(buf)[1:], dtype=a.dtype, count=a.size).reshape(a.shape)
    m[...] = a
    assert m.flags.c_contiguous and not m.flags.aligned
    return m


def test_misaligned_inputs_reach_the_kernels_aligned(monkeypatch):
    """Regression (found by the reliability fuzzer under UBSan, tools/sanitize.sh:
    "load of misaligned address" in _dense_gz_strip): a C-contiguous but misaligned
    array was passed to the kernels as it was -- np.ascontiguousarray / np.asarray do
    not copy for alignment -- in dense_backward (grad_output, x, weight, saved),
    dense's slow path, embedding (indices, weight) and embedding_backward
    (grad_output, indices).  Every array a kernel receives must be aligned."""
    seen = []

    def spy(name):
        real = getattr(L._ew, name)

        def f(*args, **kw):
            seen.extend((name, i) for i, a in enumerate(args)
                        if isinstance(a, np.ndarray) and not a.flags.aligned)
            return real(*args, **kw)
        return f

    for name in ("dense_raw", "dense_bwd_raw", "emb_check", "emb_gather", "emb_bwd_raw"):
        monkeypatch.setattr(L._ew, name, spy(name))
    x, w, b = _data(8, 6, 5)
    y, s = L.dense(x, w, b, activation="relu", return_saved=True)
    g = np.random.default_rng(2).standard_normal(y.shape)
    m = _misaligned
    want = L.dense_backward(g, x, w, activation="relu", saved=s)
    got = L.dense_backward(m(g), m(x), m(w), activation="relu", saved=m(s))
    for a, c in zip(got, want):
        np.testing.assert_array_equal(a, c)
    np.testing.assert_array_equal(L.dense(m(x[::2]), m(w), m(b), activation="tanh"),
                                  L.dense(x[::2], w, b, activation="tanh"))
    idx = np.random.default_rng(3).integers(0, 6, (4, 3))
    np.testing.assert_array_equal(L.embedding(m(idx), m(w.T)), L.embedding(idx, w.T))
    ge = np.random.default_rng(4).standard_normal((4, 3, 7))
    np.testing.assert_array_equal(L.embedding_backward(m(ge), m(idx), 6, padding_idx=1),
                                  L.embedding_backward(ge, idx, 6, padding_idx=1))
    assert not seen, f"misaligned arrays reached kernels: {seen}"


# ---------------------------------------------------------------- threads
def test_dense_threads_identical():
    for dt in (F32, F64):
        for shape in ((4, 300, 1000), (600, 200, 300), (64, 512, 256)):
            x, w, b = _data(*shape, dt)
            g = np.random.default_rng(2).standard_normal((shape[0], shape[2])).astype(dt)
            res = []
            for T in (1, 2):
                with mlkern.threads(T):
                    y, s = L.dense(x, w, b, activation="gelu", return_saved=True)
                    res.append((y, s) + L.dense_backward(g, x, w, activation="gelu", saved=s))
            for i, (a, c) in enumerate(zip(*res)):
                if i == 4:      # the bias gradient: each column summed by one thread, in row order
                    assert a.tobytes() == c.tobytes(), (shape, i)
                else:           # the GEMMs: one panel per thread, within the rounding of the sums
                    np.testing.assert_allclose(a, c, rtol=0, atol=64 * np.finfo(dt).eps * np.abs(c).max())


_BUSY = r"""
import os, sys, time, numpy as np, mlkern, mlkern.layers as L
T = int(sys.argv[1])
mlkern.set_num_threads(T)
tick = os.sysconf("SC_CLK_TCK")
def cpu():
    out = {}
    for t in os.listdir("/proc/self/task"):
        try:
            f = open(f"/proc/self/task/{t}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[t] = (int(f[11]) + int(f[12])) / tick
    return out
rng = np.random.default_rng(0)
cases = [(rng.standard_normal((256, 512)).astype(np.float32), rng.standard_normal((512, 512)).astype(np.float32)),
         (rng.standard_normal((4, 1024)), rng.standard_normal((2048, 1024)))]
for x, w in cases:
    y, s = L.dense(x, w, activation="relu", return_saved=True)
    L.dense_backward(y, x, w, activation="relu", saved=s)
time.sleep(0.3)           # let any spinning pool thread go to sleep
c0 = cpu(); t0 = time.perf_counter(); p0 = time.process_time()
while time.perf_counter() - t0 < 1.5:
    for x, w in cases:
        y, s = L.dense(x, w, activation="relu", return_saved=True)
        L.dense_backward(y, x, w, activation="relu", saved=s)
wall = time.perf_counter() - t0; p1 = time.process_time(); c1 = cpu()
busy = sorted(((c1[t] - c0.get(t, 0.0)) / wall for t in c1), reverse=True)
print((p1 - p0) / wall, sum(1 for v in busy if v > 0.15), busy[:4])
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/self/task")
@pytest.mark.parametrize("T", [1, 2])
def test_dense_busy_threads_never_exceed_mlkern_count(T):
    """CPU time per wall second of the process, and the number of threads that
    used more than 15 % of a core, during 1.5 s of dense calls."""
    p = subprocess.run([sys.executable, "-c", _BUSY, str(T)], capture_output=True, text=True,
                       timeout=120, env={**os.environ, "PYTHONPATH": SRC})
    assert p.returncode == 0, p.stderr
    ratio, nbusy, top = p.stdout.split(" ", 2)
    assert float(ratio) <= T + 0.25, p.stdout
    assert int(nbusy) <= T, p.stdout


# ---------------------------------------------------------------- PyTorch
TORCH_ACTS = {
    None: lambda z, p: z,
    "sigmoid": lambda z, p: z.sigmoid(),
    "tanh": lambda z, p: z.tanh(),
    "relu": lambda z, p: z.relu(),
    "leaky_relu": lambda z, p: __import__("torch").nn.functional.leaky_relu(z, p.get("negative_slope", 0.01)),
    "elu": lambda z, p: __import__("torch").nn.functional.elu(z, p.get("alpha", 1.0)),
    "softplus": lambda z, p: __import__("torch").nn.functional.softplus(z, p.get("beta", 1.0),
                                                                       p.get("threshold", 1e30)),
    "silu": lambda z, p: z * (p.get("beta", 1.0) * z).sigmoid(),
    "swish": lambda z, p: z * z.sigmoid(),
    "log_sigmoid": lambda z, p: __import__("torch").nn.functional.logsigmoid(z),
    "gelu": lambda z, p: __import__("torch").nn.functional.gelu(z, approximate=p.get("approximate", "none")),
}


@pytest.mark.parametrize("dt", [F32, F64])
@pytest.mark.parametrize("act", ACTS, ids=ACT_IDS)
def test_dense_against_torch(act, dt):
    torch = pytest.importorskip("torch")
    name, params, *_ = act
    x, w, b = _data(33, 40, 27, dt, seed=7)
    g = np.random.default_rng(8).standard_normal((33, 27)).astype(dt)
    y, s = L.dense(x, w, b, activation=name, return_saved=True, **params)
    gx, gw, gb = L.dense_backward(g, x, w, activation=name, saved=s, **params)
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    yt = TORCH_ACTS[name](torch.nn.functional.linear(xt, wt, bt), params)
    yt.backward(torch.tensor(g))
    tol = 2e-5 if dt == F32 else 1e-12
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=tol, atol=tol)
    for a, t in ((gx, xt), (gw, wt), (gb, bt)):
        np.testing.assert_allclose(a, t.grad.numpy(), rtol=10 * tol, atol=10 * tol)


def test_embedding_against_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    for dt in (F32, F64):
        w = rng.standard_normal((100, 16)).astype(dt)
        idx = rng.integers(0, 100, (12, 30))
        g = rng.standard_normal((12, 30, 16)).astype(dt)
        for pad in (None, 5, -3):
            wt = torch.tensor(w, requires_grad=True)
            yt = torch.nn.functional.embedding(torch.tensor(idx), wt, padding_idx=pad)
            yt.backward(torch.tensor(g))
            assert np.array_equal(L.embedding(idx, w, padding_idx=pad), yt.detach().numpy())
            np.testing.assert_allclose(L.embedding_backward(g, idx, 100, padding_idx=pad), wt.grad.numpy(),
                                       rtol=1e-6 if dt == F32 else 1e-14, atol=1e-6 if dt == F32 else 1e-14)


# ---------------------------------------------------------------- embedding
@pytest.mark.parametrize("idt", [np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32,
                                 np.int64, np.uint64])
def test_embedding_any_integer_dtype(idt):
    w = np.arange(40.0).reshape(10, 4)
    idx = np.array([[3, 0, 9], [9, 9, 1]], idt)
    y = L.embedding(idx, w)
    assert y.shape == (2, 3, 4) and np.array_equal(y, w[idx.astype(np.int64)])
    g = np.arange(24.0).reshape(2, 3, 4)
    ref = np.zeros((10, 4))
    np.add.at(ref, idx.astype(np.int64), g)
    assert np.array_equal(L.embedding_backward(g, idx, 10), ref)


def test_embedding_dtypes_and_layouts():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((20, 6))
    idx = rng.integers(0, 20, 15)
    for dt in (F32, F64, np.float16, ">f8"):
        y = L.embedding(idx, w.astype(dt))
        assert y.dtype == np.dtype(dt).newbyteorder("=") and np.array_equal(y, w.astype(dt)[idx])
    yi = L.embedding(idx, np.arange(40).reshape(20, 2))
    assert yi.dtype == F64 and np.array_equal(yi, np.arange(40.0).reshape(20, 2)[idx])
    for name, ww in _layouts(w):
        assert np.array_equal(L.embedding(idx, ww), w[idx]), name
    assert np.array_equal(L.embedding(idx[::-2], w), w[idx[::-2]])
    assert np.array_equal(L.embedding(np.int64(3), w), w[3])
    assert L.embedding(np.zeros((0, 2), np.int64), w).shape == (0, 2, 6)
    with pytest.raises(TypeError, match="weight"):
        L.embedding(idx, w.astype(complex))
    with pytest.raises(ValueError, match="weight"):
        L.embedding(idx, w.ravel())


def test_embedding_bad_indices():
    w = np.ones((10, 3))
    for bad in (10, -1, 1 << 40):
        with pytest.raises(ValueError, match=rf"indices: index {bad} is out of range"):
            L.embedding(np.array([0, bad, 2]), w)
        with pytest.raises(ValueError, match=rf"indices: index {bad}"):
            L.embedding_backward(np.ones((3, 3)), np.array([0, bad, 2]), 10)
    with pytest.raises(ValueError, match="indices: index 255"):
        L.embedding(np.array([255], np.uint8), w)
    with pytest.raises(ValueError, match="indices"):
        L.embedding(np.array([2**64 - 1], np.uint64), w)
    for bad in (np.array([1.0, 2.0]), np.array([True, False]), np.array(["a"]), [0.5]):
        with pytest.raises(TypeError, match="indices"):
            L.embedding(bad, w)
        with pytest.raises(TypeError, match="indices"):
            L.embedding_backward(np.ones((np.asarray(bad).size, 3)), bad, 10)


def test_embedding_padding_idx():
    w = np.arange(12.0).reshape(4, 3)
    idx = np.array([1, 3, 3, 0])
    g = np.ones((4, 3))
    for pad, row in ((3, 3), (-1, 3), (-4, 0), (0, 0)):
        assert np.array_equal(L.embedding(idx, w, padding_idx=pad), w[idx])
        gw = L.embedding_backward(g, idx, 4, padding_idx=pad)
        want = np.zeros((4, 3))
        np.add.at(want, idx, g)
        want[row] = 0
        assert np.array_equal(gw, want), pad
    for bad in (4, -5, 100):
        with pytest.raises(ValueError, match="padding_idx"):
            L.embedding(idx, w, padding_idx=bad)
        with pytest.raises(ValueError, match="padding_idx"):
            L.embedding_backward(g, idx, 4, padding_idx=bad)
    for bad in (1.0, "1", True):
        with pytest.raises(TypeError, match="padding_idx"):
            L.embedding(idx, w, padding_idx=bad)


def test_embedding_out():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((30, 5))
    idx = rng.integers(0, 30, (4, 6))
    out = np.full((4, 6, 5), np.nan)
    assert L.embedding(idx, w, out=out) is out and np.array_equal(out, w[idx])
    with pytest.raises(ValueError, match="out"):
        L.embedding(idx, w, out=np.empty((24, 5)))
    with pytest.raises(TypeError, match="out"):
        L.embedding(idx, w, out=np.empty((4, 6, 5), F32))
    # out overlapping the weight: through a temporary
    wc = w.copy()
    o = wc[:24].reshape(4, 6, 5)
    L.embedding(idx, wc, out=o)
    assert np.array_equal(o, w[idx])
    # backward: overwritten, not accumulated; any layout
    g = rng.standard_normal((4, 6, 5))
    want = L.embedding_backward(g, idx, 30)
    for o in (np.full((30, 5), 7.0), np.full((5, 30), 7.0).T):
        assert L.embedding_backward(g, idx, 30, out=o) is o
        assert np.array_equal(o, want)
    with pytest.raises(ValueError, match="out"):
        L.embedding_backward(g, idx, 30, out=np.empty((31, 5)))
    with pytest.raises(TypeError, match="out"):
        L.embedding_backward(g, idx, 30, out=np.empty((30, 5), F32))
    ro = np.empty((30, 5))
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        L.embedding_backward(g, idx, 30, out=ro)


def test_embedding_backward_values_and_order():
    rng = np.random.default_rng(4)
    for dt in (F32, F64):
        idx = rng.integers(0, 50, 2000)
        g = rng.standard_normal((2000, 7)).astype(dt)
        got = L.embedding_backward(g, idx, 60)
        # repeated indices accumulate in token order: a sequential float sum per row
        want = np.zeros((60, 7), dt)
        for t in range(2000):
            want[idx[t]] += g[t]
        assert got.dtype == dt and got.tobytes() == want.tobytes()
        assert not got[50:].any()
    # float16 computes in float32, returns float16; integers give float64
    g16 = rng.standard_normal((30, 3)).astype(np.float16)
    i30 = rng.integers(0, 5, 30)
    r16 = L.embedding_backward(g16, i30, 5)
    ref = np.zeros((5, 3))
    np.add.at(ref, i30, g16.astype(F64))
    assert r16.dtype == np.float16 and np.allclose(r16, ref, atol=1e-2, rtol=1e-3)
    ri = L.embedding_backward(np.ones((30, 3), np.int32), i30, 5)
    assert ri.dtype == F64 and np.array_equal(ri, np.bincount(i30, minlength=5)[:, None] * np.ones(3))
    # layouts of grad_output
    g = rng.standard_normal((40, 6))
    i40 = rng.integers(0, 9, 40)
    want = L.embedding_backward(g, i40, 9)
    np.testing.assert_allclose(L.embedding_backward(np.asfortranarray(g), i40, 9), want, rtol=0, atol=0)
    np.testing.assert_allclose(L.embedding_backward(g[::-1][::-1], i40[::-1][::-1], 9), want, atol=0)


def test_embedding_backward_bad_input_and_edges():
    g = np.ones((3, 2))
    idx = np.array([0, 1, 2])
    with pytest.raises(ValueError, match="grad_output"):
        L.embedding_backward(np.ones((3, 2, 1)), idx, 5)
    with pytest.raises(ValueError, match="grad_output"):
        L.embedding_backward(np.ones((4, 2)), idx, 5)
    with pytest.raises(TypeError, match="num_embeddings"):
        L.embedding_backward(g, idx, 5.0)
    with pytest.raises(ValueError, match="num_embeddings"):
        L.embedding_backward(g, idx, -1)
    with pytest.raises(ValueError, match="indices: index 2"):
        L.embedding_backward(g, idx, 2)
    with pytest.raises(TypeError, match="grad_output"):
        L.embedding_backward(g.astype(complex), idx, 5)
    assert L.embedding_backward(np.ones((0, 4)), np.zeros(0, int), 3).tolist() == [[0.0] * 4] * 3
    assert L.embedding_backward(np.ones((3, 0)), idx, 3).shape == (3, 0)
    assert L.embedding_backward(np.ones((0, 2)), np.zeros(0, int), 0).shape == (0, 2)
    i0 = idx.copy()
    g0 = g.copy()
    L.embedding_backward(g, idx, 3)
    assert np.array_equal(i0, idx) and np.array_equal(g0, g)


def test_embedding_finite_differences():
    rng = np.random.default_rng(9)
    w = rng.standard_normal((6, 3))
    idx = np.array([[1, 4, 1], [5, 1, 0]])
    G = rng.standard_normal((2, 3, 3))

    def loss():
        return float(np.sum(G * L.embedding(idx, w)))

    np.testing.assert_allclose(L.embedding_backward(G, idx, 6), _fd4(loss, w), rtol=1e-9, atol=1e-10)


def test_embedding_threads_bitwise():
    rng = np.random.default_rng(1)
    for dt in (F32, F64):
        V, D, n = 5000, 64, 20000
        idx = rng.zipf(1.3, n) % V          # heavy repeats
        g = rng.standard_normal((n, D)).astype(dt)
        w = rng.standard_normal((V, D)).astype(dt)
        res = []
        for T in (1, 2):
            with mlkern.threads(T):
                res.append((L.embedding(idx, w), L.embedding_backward(g, idx, V, padding_idx=0)))
        assert res[0][0].tobytes() == res[1][0].tobytes()
        assert res[0][1].tobytes() == res[1][1].tobytes()
        assert not res[0][1][0].any()


# ---------------------------------------------------------------- docs
def test_layers_docstrings():
    res = doctest.testmod(L, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert res.attempted > 0 and res.failed == 0
    sec = re.compile(r"^\s*([A-Z][A-Za-z ]+)\n\s*-{3,}\s*$", re.M)
    for name in L.__all__:
        f = getattr(L, name)
        doc = inspect.getdoc(f)
        assert {"Parameters", "Returns", "Notes", "Examples"} <= set(sec.findall(doc)), name
        params = doc.split("Parameters", 1)[1].split("Returns", 1)[0]
        for p in inspect.signature(f).parameters:
            assert re.search(r"^\**" + re.escape(p) + r"\b", params, re.M), (name, p)
    assert mlkern.layers is L and "layers" in dir(mlkern) or hasattr(mlkern, "layers")


def test_import_mlkern_does_not_import_scipy():
    code = "import sys, mlkern; print('scipy.linalg' in sys.modules); import mlkern.layers; print('ok')"
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PYTHONPATH": SRC})
    assert p.stdout.split() == ["False", "ok"], p.stdout + p.stderr


# ---------------------------------------------------------------- properties
if given is not None:
    @settings(max_examples=60, deadline=None)
    @given(M=st.integers(0, 40), K=st.integers(0, 40), N=st.integers(0, 40),
           batch=st.sampled_from([(), (2,), (1, 3)]), dt=st.sampled_from([F32, F64]),
           act=st.sampled_from(range(len(ACTS))), bias=st.booleans(), seed=st.integers(0, 2**16))
    def test_dense_property(M, K, N, batch, dt, act, bias, seed):
        name, params, f, fgrad, _ = ACTS[act]
        rng = np.random.default_rng(seed)
        x = rng.standard_normal(batch + (M, K)).astype(dt)
        w = rng.standard_normal((N, K)).astype(dt)
        b = rng.standard_normal(N).astype(dt) if bias else None
        y, s = L.dense(x, w, b, activation=name, return_saved=True, **params)
        x2 = x.reshape(int(np.prod(batch + (M,))), K)
        _, ref = _ref(x2, w, b, f)
        scale = np.abs(x2).astype(F64) @ np.abs(w).astype(F64).T + 1
        assert y.shape == batch + (M, N)
        assert np.all(np.abs(y.reshape(ref.shape) - ref) <= 50 * _tol(dt, K) * scale)
        g = rng.standard_normal(y.shape).astype(dt)
        gx, gw, gb = L.dense_backward(g, x, w, has_bias=bias, activation=name, saved=s, **params)
        assert gx.shape == x.shape and gw.shape == w.shape and (gb is None) == (not bias)

    @settings(max_examples=60, deadline=None)
    @given(n=st.integers(0, 300), V=st.integers(1, 50), D=st.integers(0, 9),
           pad=st.one_of(st.none(), st.integers(-50, 49)), seed=st.integers(0, 2**16))
    def test_embedding_property(n, V, D, pad, seed):
        rng = np.random.default_rng(seed)
        idx = rng.integers(0, V, n)
        g = rng.standard_normal((n, D))
        if pad is not None and not -V <= pad < V:
            with pytest.raises(ValueError, match="padding_idx"):
                L.embedding_backward(g, idx, V, padding_idx=pad)
            return
        got = L.embedding_backward(g, idx, V, padding_idx=pad)
        want = np.zeros((V, D))
        for t in range(n):
            want[idx[t]] += g[t]
        if pad is not None:
            want[pad] = 0
        assert got.tobytes() == want.tobytes()


# ---------------------------------------------------------------- reliability
class TestReliability:
    """Fuzz: random shapes, dtypes, layouts and bad arguments; every call either
    raises ValueError/TypeError or returns the right result, and never
    modifies its inputs."""

    DTYPES = [F32, F64, np.float16, np.int32, np.int64, np.bool_, np.complex128, object]

    def _arr(self, rng, shape, dt):
        a = rng.standard_normal(shape) * 2
        if dt is object:
            return a.astype(object)
        a = a.astype(dt)
        r = rng.integers(0, 3)
        if r == 1 and a.ndim == 2:
            a = np.asfortranarray(a)
        elif r == 2 and a.ndim >= 1:
            a = np.flip(a, axis=-1).copy()[..., ::-1]
        return a

    def test_fuzz_dense(self):
        rng = np.random.default_rng(20261206)
        ok = 0
        for _ in range(400):
            M, K, N = (int(v) for v in rng.integers(0, 12, 3))
            dts = [self.DTYPES[i] for i in rng.integers(0, len(self.DTYPES), 3)]
            if rng.random() < 0.6:
                dts = [dts[0]] * 3
            xs = (M, K) if rng.random() < 0.8 else (M, K + int(rng.integers(1, 3)))
            x = self._arr(rng, xs, dts[0])
            w = self._arr(rng, (N, K), dts[1])
            b = None if rng.random() < 0.3 else self._arr(rng, (N,) if rng.random() < 0.9 else (N + 1,), dts[2])
            name, params, f, fgrad, _ = ACTS[rng.integers(0, len(ACTS))]
            if rng.random() < 0.1:
                name = ["prelu", "bogus", 7][rng.integers(0, 3)]
            if rng.random() < 0.1:
                params = {"alpha": "x"}
            copies = [None if a is None else a.copy() for a in (x, w, b)]
            try:
                y, s = L.dense(x, w, b, activation=name, return_saved=True, **params)
            except (ValueError, TypeError):
                continue
            for a, c in zip((x, w, b), copies):
                assert a is None or np.array_equal(a, c)
            _, ref = _ref(x.astype(F64), w.astype(F64), None if b is None else b.astype(F64), f)
            xa = x.astype(F64)
            scale = np.abs(xa) @ np.abs(w.astype(F64)).T + (0 if b is None else np.abs(b.astype(F64))) + 1
            np.testing.assert_array_less(np.abs(y.astype(F64) - ref), 2e-2 * scale + 1e-300)
            g = np.ones(y.shape, y.dtype)
            gx, gw, gb = L.dense_backward(g, x, w, has_bias=b is not None, activation=name, saved=s, **params)
            assert gx.shape == x.shape and gw.shape == w.shape
            ok += 1
        assert ok > 50

    def test_fuzz_embedding(self):
        rng = np.random.default_rng(7)
        ok = 0
        for _ in range(600):
            V, D, n = int(rng.integers(0, 8)), int(rng.integers(0, 5)), int(rng.integers(0, 12))
            idt = [np.int8, np.uint16, np.int64, F64, np.bool_][rng.integers(0, 5)]
            idx = rng.integers(-2, V + 2, n).astype(idt) if idt is not np.uint16 else rng.integers(0, V + 2, n).astype(idt)
            w = self._arr(rng, (V, D), self.DTYPES[rng.integers(0, len(self.DTYPES))])
            pad = [None, 0, -1, V, -V - 1, 1.5][rng.integers(0, 6)]
            i0, w0 = idx.copy(), w.copy()
            try:
                y = L.embedding(idx, w, padding_idx=pad)
            except (ValueError, TypeError):
                pass
            else:
                assert np.array_equal(y, w.astype(y.dtype)[idx.astype(np.int64)])
                ok += 1
            g = rng.standard_normal((n, D))
            try:
                gw = L.embedding_backward(g, idx, V, padding_idx=pad)
            except (ValueError, TypeError):
                pass
            else:
                want = np.zeros((V, D))
                np.add.at(want, idx.astype(np.int64), g)
                if pad is not None:
                    want[pad] = 0
                np.testing.assert_allclose(gw, want, rtol=1e-14, atol=1e-14)
                ok += 1
            assert np.array_equal(idx, i0) and (w.dtype == object or np.array_equal(w, w0))
        assert ok > 40
