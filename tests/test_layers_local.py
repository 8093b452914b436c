"""mlkern.layers: locally_connected1d/2d and their backwards.

References: a float64 einsum over the input patches (SPEC's formula written
out), 4th-order central finite differences for every gradient, and PyTorch
(optional): F.unfold + einsum with autograd.
"""
import numpy as np
import pytest

import mlkern
import mlkern.layers as L
from reference import fd4_grad

F32, F64 = np.float32, np.float64


def _patches(x, k, s):
    """x (N, C, H, W) float64 -> (N, OH, OW, C, kh, kw)."""
    N, C, H, W = x.shape
    OH, OW = (H - k[0]) // s[0] + 1, (W - k[1]) // s[1] + 1
    p = np.empty((N, OH, OW, C, k[0], k[1]))
    for h in range(OH):
        for w in range(OW):
            p[:, h, w] = x[:, :, h * s[0]:h * s[0] + k[0], w * s[1]:w * s[1] + k[1]]
    return p


def ref_lc2d(x, w, b, s):
    """NCHW float64 reference: y[n,o,h,w] = sum w[h,w,o,c,i,j] x[n,c,h sh+i,w sw+j] + b[h,w,o]."""
    p = _patches(x.astype(F64), w.shape[4:], s)
    y = np.einsum("nhwcij,hwocij->nohw", p, w.astype(F64))
    if b is not None:
        y += np.moveaxis(b.astype(F64), -1, 0)[None]
    return y


def _data(shape, dt, seed):
    return np.random.default_rng(seed).standard_normal(shape).astype(dt)


def _nhwc(a):
    return np.ascontiguousarray(np.moveaxis(a, 1, -1))


def _nchw(a):
    return np.ascontiguousarray(np.moveaxis(a, -1, 1))


CASES2 = [  # (N, C, H, W), C_out, (kh, kw), stride
    ((2, 3, 7, 6), 4, (3, 2), (1, 1)), ((3, 2, 8, 8), 5, (3, 3), (2, 2)), ((1, 1, 5, 9), 2, (2, 4), (3, 2)),
    ((4, 5, 6, 6), 1, (1, 1), (1, 1)), ((2, 2, 6, 7), 3, (2, 2), (2, 3)),
]


def _w2(xshape, Co, k, s, dt, seed):
    N, C, H, W = xshape
    OH, OW = (H - k[0]) // s[0] + 1, (W - k[1]) // s[1] + 1
    return _data((OH, OW, Co, C) + k, dt, seed), _data((OH, OW, Co), dt, seed + 1)


@pytest.mark.parametrize("case", CASES2)
@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("dt", [F32, F64])
def test_lc2d_vs_einsum(case, layout, dt):
    xs, Co, k, s = case
    x = _data(xs, dt, 1)
    w, b = _w2(xs, Co, k, s, dt, 2)
    tol = 1e-5 if dt == F32 else 1e-12
    for bias in (b, None):
        ref = ref_lc2d(x, w, bias, s)
        y = L.locally_connected2d(_nhwc(x) if layout == "NHWC" else x, w, bias, stride=s, layout=layout)
        assert y.dtype == dt
        y = _nchw(y) if layout == "NHWC" else y
        np.testing.assert_allclose(y, ref, rtol=tol, atol=tol * np.abs(ref).max())


@pytest.mark.parametrize("layout", ["NCL", "NLC"])
@pytest.mark.parametrize("dt", [F32, F64])
def test_lc1d_vs_einsum(layout, dt):
    for (N, C, Ln), Co, K, s in [((2, 3, 11), 4, 3, 1), ((3, 2, 10), 2, 4, 3), ((1, 4, 5), 3, 5, 1), ((2, 1, 9), 1, 2, 2)]:
        x = _data((N, C, Ln), dt, 3)
        Lo = (Ln - K) // s + 1
        w = _data((Lo, Co, C, K), dt, 4)
        b = _data((Lo, Co), dt, 5)
        ref = np.einsum("nlck,locк->nol".replace("к", "k"),
                        np.stack([x[:, :, l * s:l * s + K] for l in range(Lo)], 1).astype(F64), w.astype(F64))
        ref += b.T[None].astype(F64)
        xin = x if layout == "NCL" else np.ascontiguousarray(x.transpose(0, 2, 1))
        y = L.locally_connected1d(xin, w, b, stride=s, layout=layout)
        y = y if layout == "NCL" else y.transpose(0, 2, 1)
        tol = 1e-5 if dt == F32 else 1e-12
        np.testing.assert_allclose(y, ref, rtol=tol, atol=tol * np.abs(ref).max())


@pytest.mark.parametrize("case", CASES2[:3] + CASES2[4:])
@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_lc2d_backward_fd4(case, layout):
    xs, Co, k, s = case
    x = _data(xs, F64, 6)
    w, b = _w2(xs, Co, k, s, F64, 7)
    xin = _nhwc(x) if layout == "NHWC" else x
    y = L.locally_connected2d(xin, w, b, stride=s, layout=layout)
    g = _data(y.shape, F64, 8)
    gx, gw, gb = L.locally_connected2d_backward(g, xin, w, stride=s, layout=layout)

    def loss():
        return float(np.sum(g * L.locally_connected2d(xin, w, b, stride=s, layout=layout)))
    for got, arr in ((gx, xin), (gw, w), (gb, b)):
        assert got.shape == arr.shape
        np.testing.assert_allclose(got, fd4_grad(loss, arr), rtol=1e-7, atol=1e-8)


@pytest.mark.parametrize("layout", ["NCL", "NLC"])
def test_lc1d_backward_fd4(layout):
    for (N, C, Ln), Co, K, s in [((2, 3, 9), 2, 3, 1), ((2, 2, 10), 3, 4, 3), ((3, 1, 6), 2, 2, 2)]:
        x = _data((N, C, Ln) if layout == "NCL" else (N, Ln, C), F64, 9)
        Lo = (Ln - K) // s + 1
        w = _data((Lo, Co, C, K), F64, 10)
        b = _data((Lo, Co), F64, 11)
        y = L.locally_connected1d(x, w, b, stride=s, layout=layout)
        g = _data(y.shape, F64, 12)
        gx, gw, gb = L.locally_connected1d_backward(g, x, w, stride=s, layout=layout)

        def loss():
            return float(np.sum(g * L.locally_connected1d(x, w, b, stride=s, layout=layout)))
        for got, arr in ((gx, x), (gw, w), (gb, b)):
            np.testing.assert_allclose(got, fd4_grad(loss, arr), rtol=1e-7, atol=1e-8)


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("dt", [F32, F64])
def test_lc2d_vs_torch_unfold(layout, dt):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    for xs, Co, k, s in CASES2:
        x = _data(xs, dt, 13)
        w, b = _w2(xs, Co, k, s, dt, 14)
        OH, OW = w.shape[:2]
        xt = torch.from_numpy(x).requires_grad_()
        wt = torch.from_numpy(w).requires_grad_()
        bt = torch.from_numpy(b).requires_grad_()
        cols = F.unfold(xt, k, stride=s)                              # (N, C kh kw, OH OW)
        yt = torch.einsum("nkl,lok->nol", cols, wt.reshape(OH * OW, Co, -1)).reshape(xs[0], Co, OH, OW)
        yt = yt + bt.permute(2, 0, 1)[None]
        g = _data(tuple(yt.shape), dt, 15)
        yt.backward(torch.from_numpy(g))
        xin = _nhwc(x) if layout == "NHWC" else x
        gin = _nhwc(g) if layout == "NHWC" else g
        y = L.locally_connected2d(xin, w, b, stride=s, layout=layout)
        gx, gw, gb = L.locally_connected2d_backward(gin, xin, w, stride=s, layout=layout)
        if layout == "NHWC":
            y, gx = _nchw(y), _nchw(gx)
        tol = 2e-5 if dt == F32 else 1e-12
        for a, r in ((y, yt.detach()), (gx, xt.grad), (gw, wt.grad), (gb, bt.grad)):
            r = r.numpy()
            np.testing.assert_allclose(a, r, rtol=tol, atol=tol * (np.abs(r).max() + 1))


def test_flags_dtypes_and_out():
    x = _data((2, 3, 6, 5), F32, 16)
    w, b = _w2(x.shape, 4, (2, 2), (1, 1), F32, 17)
    y = L.locally_connected2d(x, w, b)
    g = np.ones_like(y)
    gx, gw, gb = L.locally_connected2d_backward(g, x, w, has_bias=False, needs_input_grad=False)
    assert gx is None and gb is None and gw.shape == w.shape and gw.dtype == F32
    xi = np.arange(2 * 3 * 6 * 5).reshape(x.shape) % 3                    # counts: the weight's dtype
    yi = L.locally_connected2d(xi, w, b)
    assert yi.dtype == F32
    np.testing.assert_allclose(yi, ref_lc2d(xi.astype(F64), w, b, (1, 1)), rtol=1e-5, atol=1e-5)
    with pytest.raises(TypeError, match="x.*weight|weight.*x"):
        L.locally_connected2d(x.astype(F64), w, b)
    out = np.empty_like(y)
    assert L.locally_connected2d(x, w, b, out=out) is out and np.array_equal(out, y)
    out = np.empty(y.shape[::-1], F32).T
    assert L.locally_connected2d(x, w, b, out=out) is out and np.array_equal(out, y)
    with pytest.raises(ValueError, match="shape"):
        L.locally_connected2d(x, w, b, out=np.empty((2, 4, 5, 5), F32))
    np.testing.assert_array_equal(L.locally_connected2d(np.asfortranarray(x), w, b), y)
    np.testing.assert_array_equal(L.locally_connected2d(x[:, ::-1][:, ::-1], w, b), y)
    xc, wc = x.copy(), w.copy()
    L.locally_connected2d_backward(g, x, w)
    assert np.array_equal(x, xc) and np.array_equal(w, wc)
    # empty batch / no output channels
    assert L.locally_connected2d(x[:0], w, b).shape == (0, 4, 5, 4)
    gx, gw, gb = L.locally_connected2d_backward(np.zeros((0, 4, 5, 4), F32), x[:0], w)
    assert gx.shape == (0, 3, 6, 5) and not gw.any() and not gb.any()
    w0 = w[:, :, :0]
    assert L.locally_connected2d(x, w0).shape == (2, 0, 5, 4)
    gx, gw, gb = L.locally_connected2d_backward(np.zeros((2, 0, 5, 4), F32), x, w0)
    assert not gx.any() and gw.shape == w0.shape


def test_threads_bitwise():
    rng = np.random.default_rng(20)
    for dt in (F32, F64):
        for layout, xs, k, s in (("NCHW", (32, 8, 12, 12), (3, 3), (1, 1)), ("NHWC", (5, 10, 10, 8), (3, 3), (1, 1)),
                                 ("NHWC", (40, 9, 9, 6), (2, 2), (2, 2))):
            x = rng.standard_normal(xs).astype(dt)
            C = xs[1] if layout == "NCHW" else xs[3]
            sp = xs[2:] if layout == "NCHW" else xs[1:3]
            OH, OW = (sp[0] - k[0]) // s[0] + 1, (sp[1] - k[1]) // s[1] + 1
            w = rng.standard_normal((OH, OW, 16, C) + k).astype(dt)
            b = rng.standard_normal((OH, OW, 16)).astype(dt)
            res = []
            for T in (1, 2):
                with mlkern.threads(T):
                    y = L.locally_connected2d(x, w, b, stride=s, layout=layout)
                    g = np.cos(np.arange(y.size)).reshape(y.shape).astype(dt)
                    res.append((y,) + L.locally_connected2d_backward(g, x, w, stride=s, layout=layout))
            for j, (u, v) in enumerate(zip(*res)):
                assert u.tobytes() == v.tobytes(), (layout, dt, j)


def test_bad_arguments():
    x = np.zeros((2, 3, 6, 5))
    w = np.zeros((5, 4, 4, 3, 2, 2))
    b = np.zeros((5, 4, 4))
    L.locally_connected2d(x, w, b)
    cases = [
        (lambda: L.locally_connected2d(x, w[..., 0]), ValueError, "weight"),
        (lambda: L.locally_connected2d(x, w[:, :, :, :2]), ValueError, "channels"),
        (lambda: L.locally_connected2d(x, w[:4]), ValueError, "output size"),
        (lambda: L.locally_connected2d(x, w, stride=2), ValueError, "output size"),
        (lambda: L.locally_connected2d(x, w, b[:, :, :3]), ValueError, "bias"),
        (lambda: L.locally_connected2d(x, w, stride=0), ValueError, "stride"),
        (lambda: L.locally_connected2d(x, w, stride=(1, 1, 1)), ValueError, "stride"),
        (lambda: L.locally_connected2d(x, w, stride=1.0), TypeError, "stride"),
        (lambda: L.locally_connected2d(x, w, layout="NLC"), ValueError, "layout"),
        (lambda: L.locally_connected2d(x[0], w), ValueError, "x"),
        (lambda: L.locally_connected2d(x, w.astype(F32)), TypeError, "weight"),
        (lambda: L.locally_connected2d(x, np.zeros((1, 1, 4, 3, 7, 2))), ValueError, "kernel"),
        (lambda: L.locally_connected2d(x.astype(complex), w), TypeError, "complex"),
        (lambda: L.locally_connected2d_backward(np.zeros((2, 4, 5, 3)), x, w), ValueError, "grad_output"),
        (lambda: L.locally_connected2d_backward(np.zeros((2, 4, 5, 4), F32), x, w), TypeError, "grad_output"),
        (lambda: L.locally_connected1d(x[:, :, 0], np.zeros((4, 2, 3, 3))), ValueError, "output size"),
        (lambda: L.locally_connected1d(x[:, :, 0], np.zeros((4, 2, 3, 3)), layout="NCHW"), ValueError, "layout"),
    ]
    for f, exc, word in cases:
        with pytest.raises(exc, match=word):
            f()
