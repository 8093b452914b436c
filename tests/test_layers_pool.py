"""mlkern.layers pooling: max_pool1d/2d, avg_pool1d/2d and their backwards.

References: a float64 NumPy loop over the windows (PyTorch's definitions,
written out: NaN wins, the first maximum wins among equal values, ceil_mode
windows that would start in the right padding are dropped, the
count_include_pad divisor), 4th-order central finite differences for the
gradients, and PyTorch (optional) with autograd for the backwards.
"""
import itertools

import numpy as np
import pytest

import mlkern
import mlkern.layers as L
from reference import fd4_grad

F32, F64 = np.float32, np.float64


# ---------------------------------------------------------------- float64 reference
def _out_size(n, k, s, p, d, ceil):
    num = n + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil else 0)
    o = num // s + 1
    if ceil and (o - 1) * s >= n + p:
        o -= 1
    return o


def ref_pool2d(x, kind, k, s=None, p=0, d=1, ceil=False, cip=True):
    """x (N, C, H, W) -> (y float64, indices int64) by a loop over the windows."""
    k = (k, k) if np.isscalar(k) else tuple(k)
    s = k if s is None else ((s, s) if np.isscalar(s) else tuple(s))
    p = (p, p) if np.isscalar(p) else tuple(p)
    d = (d, d) if np.isscalar(d) else tuple(d)
    N, C, H, W = x.shape
    OH, OW = (_out_size(n, k[i], s[i], p[i], d[i], ceil) for i, n in enumerate((H, W)))
    y = np.empty((N, C, OH, OW))
    idx = np.zeros((N, C, OH, OW), np.int64)
    x = x.astype(F64)
    for n, c, oh, ow in itertools.product(range(N), range(C), range(OH), range(OW)):
        taps = [(oh * s[0] - p[0] + i * d[0], ow * s[1] - p[1] + j * d[1])
                for i in range(k[0]) for j in range(k[1])]
        inb = [(h, w) for h, w in taps if 0 <= h < H and 0 <= w < W]
        if kind == "max":
            m, best = -np.inf, inb[0][0] * W + inb[0][1]
            for h, w in inb:
                v = x[n, c, h, w]
                if v > m or np.isnan(v):
                    m, best = v, h * W + w
            y[n, c, oh, ow], idx[n, c, oh, ow] = m, best
        else:
            hs, ws = oh * s[0] - p[0], ow * s[1] - p[1]
            he, we = min(hs + k[0], H + p[0]), min(ws + k[1], W + p[1])
            div = (he - hs) * (we - ws) if cip else len(inb)
            y[n, c, oh, ow] = sum(x[n, c, h, w] for h, w in inb) / div
    return y, idx


def _nhwc(a):
    return np.ascontiguousarray(np.moveaxis(a, 1, -1))


def _nchw(a):
    return np.ascontiguousarray(np.moveaxis(a, -1, 1))


def _call2d(fn, x, layout, *args, **kw):
    """fn on the NCHW array x given in `layout`; result(s) back in NCHW."""
    r = fn(_nhwc(x) if layout == "NHWC" else x, *args, layout=layout, **kw)
    conv = _nchw if layout == "NHWC" else (lambda a: a)
    return tuple(conv(a) for a in r) if isinstance(r, tuple) else conv(r)


# (kernel_size, stride, padding, dilation, ceil_mode), shapes (H, W)
MAX_CASES = [
    (3, 2, 1, 1, False), (2, None, 0, 1, False), (3, 1, 1, 1, False), ((3, 2), (1, 2), (1, 1), 1, True),
    (3, 2, 1, 2, False), ((2, 3), 3, (1, 0), (2, 1), True), (1, 1, 0, 1, False), (4, 3, 2, 1, True),
    (5, 2, 2, 1, False),
]
SHAPES = [(2, 3, 9, 11), (1, 2, 7, 7), (3, 1, 5, 16), (2, 40, 8, 6)]


def _data(shape, dt, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dt)


@pytest.mark.parametrize("case", MAX_CASES)
@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("dt", [F32, F64])
def test_max_pool2d_vs_reference(case, layout, dt):
    k, s, p, d, ceil = case
    for shape in SHAPES:
        x = _data(shape, dt)
        ry, ri = ref_pool2d(x, "max", k, s, p, d, ceil)
        y = _call2d(L.max_pool2d, x, layout, k, s, p, d, ceil_mode=ceil)
        y2, i2 = _call2d(L.max_pool2d, x, layout, k, s, p, d, ceil_mode=ceil, return_indices=True)
        assert y.dtype == dt and i2.dtype == np.int64
        np.testing.assert_array_equal(y, ry.astype(dt))
        np.testing.assert_array_equal(y2, ry.astype(dt))
        np.testing.assert_array_equal(i2, ri)


@pytest.mark.parametrize("case", [c for c in MAX_CASES if c[3] == 1])
@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("cip", [True, False])
@pytest.mark.parametrize("dt", [F32, F64])
def test_avg_pool2d_vs_reference(case, layout, cip, dt):
    k, s, p, _, ceil = case
    tol = 1e-6 if dt == F32 else 1e-14
    for shape in SHAPES:
        x = _data(shape, dt)
        ry, _ = ref_pool2d(x, "avg", k, s, p, 1, ceil, cip)
        y = _call2d(L.avg_pool2d, x, layout, k, s, p, ceil_mode=ceil, count_include_pad=cip)
        assert y.dtype == dt
        np.testing.assert_allclose(y, ry, rtol=tol, atol=tol)


@pytest.mark.parametrize("layout", ["NCL", "NLC"])
@pytest.mark.parametrize("dt", [F32, F64])
def test_pool1d_vs_reference(layout, dt):
    x = _data((2, 3, 13), dt)
    for k, s, p, d, ceil in [(3, 2, 1, 1, False), (2, None, 0, 1, True), (4, 3, 2, 2, True), (1, 1, 0, 1, False)]:
        x4 = x[:, :, None, :]
        conv = (lambda a: a) if layout == "NCL" else (lambda a: np.ascontiguousarray(a.transpose(0, 2, 1)))
        xin = conv(x)
        ry, ri = ref_pool2d(x4, "max", (1, k), (1, s or k), (0, p), (1, d), ceil)
        y, i = L.max_pool1d(xin, k, s, p, d, ceil_mode=ceil, return_indices=True, layout=layout)
        np.testing.assert_array_equal(y, conv(ry[:, :, 0].astype(dt)))
        np.testing.assert_array_equal(i, conv(ri[:, :, 0]))
        g = _data(y.shape, dt, 5)
        gi = L.max_pool1d_backward(g, i, xin.shape, layout=layout)
        ref = np.zeros(x.shape)
        gn = g if layout == "NCL" else g.transpose(0, 2, 1)
        inn = i if layout == "NCL" else i.transpose(0, 2, 1)
        for n, c, o in np.ndindex(gn.shape):
            ref[n, c, inn[n, c, o]] += gn[n, c, o]
        np.testing.assert_allclose(gi, conv(ref), rtol=1e-6)
        for cip in (True, False):
            ry, _ = ref_pool2d(x4, "avg", (1, k), (1, s or k), (0, p), 1, ceil, cip)
            ya = L.avg_pool1d(xin, k, s, p, ceil_mode=ceil, count_include_pad=cip, layout=layout)
            np.testing.assert_allclose(ya, conv(ry[:, :, 0]), rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------- gradients: finite differences
@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("case", [(3, 2, 1, False, True), (3, 2, 1, True, False), ((2, 3), 1, (1, 1), True, True),
                                  (2, None, 0, False, True)])
def test_avg_pool2d_backward_fd4(layout, case):
    k, s, p, ceil, cip = case
    x = _data((2, 3, 6, 7), F64, 1)
    xin = _nhwc(x) if layout == "NHWC" else x
    y = L.avg_pool2d(xin, k, s, p, ceil_mode=ceil, count_include_pad=cip, layout=layout)
    g = _data(y.shape, F64, 2)
    gi = L.avg_pool2d_backward(g, xin.shape, k, s, p, ceil_mode=ceil, count_include_pad=cip, layout=layout)
    fd = fd4_grad(lambda: float(np.sum(g * L.avg_pool2d(xin, k, s, p, ceil_mode=ceil,
                                                        count_include_pad=cip, layout=layout))), xin)
    np.testing.assert_allclose(gi, fd, rtol=1e-8, atol=1e-9)


@pytest.mark.parametrize("layout", ["NCL", "NLC"])
def test_avg_pool1d_backward_fd4(layout):
    x = _data((2, 3, 11), F64, 3)
    if layout == "NLC":
        x = np.ascontiguousarray(x.transpose(0, 2, 1))
    for k, s, p, ceil, cip in [(3, 2, 1, True, False), (4, 1, 2, False, True)]:
        y = L.avg_pool1d(x, k, s, p, ceil_mode=ceil, count_include_pad=cip, layout=layout)
        g = _data(y.shape, F64, 4)
        gi = L.avg_pool1d_backward(g, x.shape, k, s, p, ceil_mode=ceil, count_include_pad=cip, layout=layout)
        fd = fd4_grad(lambda: float(np.sum(g * L.avg_pool1d(x, k, s, p, ceil_mode=ceil,
                                                            count_include_pad=cip, layout=layout))), x)
        np.testing.assert_allclose(gi, fd, rtol=1e-8, atol=1e-9)


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_max_pool2d_backward_fd4(layout):
    # distinct values far apart: the argmax does not move under the perturbation
    rng = np.random.default_rng(7)
    x = rng.permutation(2 * 3 * 7 * 8).astype(F64).reshape(2, 3, 7, 8) * 0.1
    xin = _nhwc(x) if layout == "NHWC" else x
    for k, s, p, d in [(3, 2, 1, 1), (3, 1, 1, 1), (2, 2, 1, 2)]:
        y, i = L.max_pool2d(xin, k, s, p, d, return_indices=True, layout=layout)
        g = _data(y.shape, F64, 8)
        gi = L.max_pool2d_backward(g, i, xin.shape, layout=layout)
        fd = fd4_grad(lambda: float(np.sum(g * L.max_pool2d(xin, k, s, p, d, layout=layout))), xin, h=1e-3)
        np.testing.assert_allclose(gi, fd, rtol=1e-8, atol=1e-8)


# ---------------------------------------------------------------- PyTorch
@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("dt", [F32, F64])
def test_pool2d_vs_torch(layout, dt):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    for shape in SHAPES:
        x = _data(shape, dt, 11)
        x.reshape(-1)[::17] = x.reshape(-1)[1]       # ties
        for k, s, p, d, ceil in MAX_CASES:
            xt = torch.from_numpy(x).requires_grad_()
            yt, it = F.max_pool2d(xt, k, s, p, d, ceil_mode=ceil, return_indices=True)
            g = _data(tuple(yt.shape), dt, 12)
            yt.backward(torch.from_numpy(g))
            y, i = _call2d(L.max_pool2d, x, layout, k, s, p, d, ceil_mode=ceil, return_indices=True)
            np.testing.assert_array_equal(y, yt.detach().numpy())
            np.testing.assert_array_equal(i, it.numpy())
            gi = L.max_pool2d_backward(_nhwc(g) if layout == "NHWC" else g,
                                       _nhwc(i) if layout == "NHWC" else i,
                                       _nhwc(x).shape if layout == "NHWC" else x.shape, layout=layout)
            gi = _nchw(gi) if layout == "NHWC" else gi
            np.testing.assert_allclose(gi, xt.grad.numpy(), rtol=1e-6 if dt == F32 else 1e-14, atol=1e-6)
            if d != 1:
                continue
            for cip in (True, False):
                xt = torch.from_numpy(x).requires_grad_()
                yt = F.avg_pool2d(xt, k, s, p, ceil_mode=ceil, count_include_pad=cip)
                yt.backward(torch.from_numpy(g))
                y = _call2d(L.avg_pool2d, x, layout, k, s, p, ceil_mode=ceil, count_include_pad=cip)
                tol = 2e-6 if dt == F32 else 1e-13
                np.testing.assert_allclose(y, yt.detach().numpy(), rtol=tol, atol=tol)
                gin = L.avg_pool2d_backward(_nhwc(g) if layout == "NHWC" else g,
                                            _nhwc(x).shape if layout == "NHWC" else x.shape, k, s, p,
                                            ceil_mode=ceil, count_include_pad=cip, layout=layout)
                gin = _nchw(gin) if layout == "NHWC" else gin
                np.testing.assert_allclose(gin, xt.grad.numpy(), rtol=tol, atol=tol)


def test_pool1d_vs_torch():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x = _data((3, 4, 17), F32, 13)
    for k, s, p, d, ceil in [(3, 2, 1, 1, True), (2, None, 0, 1, False), (3, 1, 1, 3, False), (5, 3, 2, 1, True)]:
        yt, it = F.max_pool1d(torch.from_numpy(x), k, s, p, d, ceil_mode=ceil, return_indices=True)
        y, i = L.max_pool1d(x, k, s, p, d, ceil_mode=ceil, return_indices=True)
        np.testing.assert_array_equal(y, yt.numpy())
        np.testing.assert_array_equal(i, it.numpy())
        if d == 1:
            for cip in (True, False):
                at = F.avg_pool1d(torch.from_numpy(x), k, s, p, ceil_mode=ceil, count_include_pad=cip)
                np.testing.assert_allclose(L.avg_pool1d(x, k, s, p, ceil_mode=ceil, count_include_pad=cip),
                                           at.numpy(), rtol=2e-6, atol=2e-6)


# ---------------------------------------------------------------- semantics
@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("dt", [F32, F64])
def test_max_pool_nan(layout, dt):
    x = np.zeros((1, 2, 6, 6), dt)
    x[0, 0, 1, 1] = np.nan
    x[0, 0, 2, 2] = 5.0
    x[0, 1, 4, 4] = np.nan
    x[0, 1, 4, 5] = np.nan
    for ri in (False, True):
        r = _call2d(L.max_pool2d, x, layout, 3, 3, return_indices=ri)
        y = r[0] if ri else r
        assert np.isnan(y[0, 0, 0, 0]) and np.isnan(y[0, 1, 1, 1])
        assert np.isfinite(y[0, 0, 1, 1]) and np.isfinite(y[0, 1, 0, 0])
        if ri:   # PyTorch: a later NaN moves the index (v > m or isnan(v))
            assert r[1][0, 0, 0, 0] == 1 * 6 + 1 and r[1][0, 1, 1, 1] == 4 * 6 + 5
    # a NaN first in the window stays (a raw max instruction would drop it)
    x = np.array([[[np.nan, 1.0, 2.0, -np.inf, -np.inf, np.nan]]], dt)
    y, i = L.max_pool1d(x, 3, return_indices=True)
    assert np.isnan(y).all() and i.tolist() == [[[0, 5]]]
    # -inf everywhere: -inf, the index of the first in-bounds element
    y, i = L.max_pool2d(np.full((1, 1, 3, 3), -np.inf, dt), 2, 2, 1, return_indices=True)
    assert (y == -np.inf).all() and i.tolist() == [[[[0, 1], [3, 4]]]]


def test_ceil_mode_and_count_include_pad():
    x = np.arange(1.0, 6.0).reshape(1, 1, 5)
    # ceil_mode: 3 windows of 2 (the last one of one element), no window starting in the padding
    assert L.max_pool1d(x, 2, ceil_mode=True).tolist() == [[[2.0, 4.0, 5.0]]]
    assert L.max_pool1d(x, 2, 2, 1, ceil_mode=True).shape == (1, 1, 3)   # not 4: it would start at 5
    # count_include_pad: the padding counts, the ceil_mode overhang beyond it does not
    y = L.avg_pool1d(x, 2, 2, 1, ceil_mode=True, count_include_pad=True)
    assert y.tolist() == [[[1 / 2, (2 + 3) / 2, (4 + 5) / 2]]]
    y = L.avg_pool1d(np.arange(1.0, 5.0).reshape(1, 1, 4), 3, 2, 1, ceil_mode=True, count_include_pad=True)
    assert y.tolist() == [[[(1 + 2) / 3, (2 + 3 + 4) / 3, 4 / 2]]]      # last window: 1 element + 1 padding
    y = L.avg_pool1d(np.arange(1.0, 5.0).reshape(1, 1, 4), 3, 2, 1, ceil_mode=True, count_include_pad=False)
    assert y.tolist() == [[[(1 + 2) / 2, (2 + 3 + 4) / 3, 4.0]]]


def test_dtypes_and_unbatched():
    xi = np.arange(32).reshape(2, 4, 4)
    y = L.max_pool2d(xi, 2)                     # unbatched (C, H, W), integers compute in float64
    assert y.dtype == F64 and y.shape == (2, 2, 2)
    np.testing.assert_array_equal(y, L.max_pool2d(xi[None].astype(F64), 2)[0])
    h = L.avg_pool2d(xi.astype(np.float16), 2)
    assert h.dtype == np.float16
    np.testing.assert_allclose(h, L.avg_pool2d(xi.astype(F32), 2), rtol=1e-3)
    y = L.avg_pool1d(np.arange(8.0).reshape(4, 2), 2, layout="NLC")     # unbatched (L, C)
    assert y.tolist() == [[1.0, 2.0], [5.0, 6.0]]
    assert L.avg_pool2d(np.zeros((0, 3, 4, 4), F32), 2).shape == (0, 3, 2, 2)
    assert L.max_pool2d(np.zeros((2, 0, 4, 4), F32), 2, layout="NCHW").shape == (2, 0, 2, 2)
    g = L.max_pool2d_backward(np.zeros((0, 3, 2, 2)), np.zeros((0, 3, 2, 2), np.int8), (0, 3, 4, 4))
    assert g.shape == (0, 3, 4, 4)


def test_layouts_of_input_and_out():
    x = _data((2, 3, 8, 9), F64, 20)
    ref = L.max_pool2d(x, 3, 2, 1)
    np.testing.assert_array_equal(L.max_pool2d(np.asfortranarray(x), 3, 2, 1), ref)
    np.testing.assert_array_equal(L.max_pool2d(x[:, :, ::-1, :][:, :, ::-1, :], 3, 2, 1), ref)
    np.testing.assert_array_equal(L.max_pool2d(x.tolist(), 3, 2, 1), ref)
    ro = x.copy()
    ro.flags.writeable = False
    np.testing.assert_array_equal(L.max_pool2d(ro, 3, 2, 1), ref)
    out = np.empty_like(ref)
    r = L.max_pool2d(x, 3, 2, 1, out=out)
    assert r is out and np.array_equal(out, ref)
    out = np.empty(ref.shape[::-1]).T                      # F-ordered out: through a temporary
    r, i = L.max_pool2d(x, 3, 2, 1, out=out, return_indices=True)
    assert r is out and np.array_equal(out, ref) and i.shape == ref.shape
    out = np.empty((2, 3, 7, 16))[..., ::2]              # strided out
    r = L.avg_pool2d(x, 2, 1, out=out)
    assert r is out and np.array_equal(out, L.avg_pool2d(x, 2, 1))
    with pytest.raises(ValueError, match="shape"):
        L.avg_pool2d(x, 3, 2, 1, out=np.empty((2, 3, 4, 4)))
    with pytest.raises(TypeError, match="dtype"):
        L.avg_pool2d(x, 3, 2, 1, out=np.empty(ref.shape, F32))
    xc = x.copy()
    L.max_pool2d(x, 3, 2, 1, return_indices=True)
    L.avg_pool2d(x, 3, 2, 1)
    assert np.array_equal(x, xc)


def test_threads_bitwise():
    rng = np.random.default_rng(30)
    for dt in (F32, F64):
        for layout, shape in (("NCHW", (4, 16, 40, 40)), ("NHWC", (4, 40, 40, 32)), ("NHWC", (1, 40, 40, 96))):
            x = rng.standard_normal(shape).astype(dt)
            res = []
            for T in (1, 2):
                with mlkern.threads(T):
                    y, i = L.max_pool2d(x, 3, 1, 1, return_indices=True, layout=layout)
                    a = L.avg_pool2d(x, 3, 1, 1, layout=layout)
                    g = np.ones_like(y) * 0.1 + np.arange(y.size).reshape(y.shape) % 7
                    res.append((y, i, a, L.max_pool2d(x, 3, 1, 1, layout=layout),
                                L.max_pool2d_backward(g.astype(dt), i, shape, layout=layout),
                                L.avg_pool2d_backward(g.astype(dt), shape, 3, 1, 1, layout=layout)))
            for j, (u, v) in enumerate(zip(*res)):
                assert u.tobytes() == v.tobytes(), (layout, dt, j)


# ---------------------------------------------------------------- bad arguments
def test_bad_arguments():
    x = np.zeros((1, 2, 6, 6))
    cases = [
        (lambda: L.max_pool2d(x, 3, padding=2), ValueError, "padding"),
        (lambda: L.avg_pool2d(x, 2, padding=(0, 2)), ValueError, "padding"),
        (lambda: L.max_pool2d(x, 0), ValueError, "kernel_size"),
        (lambda: L.max_pool2d(x, (2, 2, 2)), ValueError, "kernel_size"),
        (lambda: L.max_pool2d(x, 2.0), TypeError, "kernel_size"),
        (lambda: L.max_pool2d(x, True), TypeError, "kernel_size"),
        (lambda: L.max_pool2d(x, 2, stride=0), ValueError, "stride"),
        (lambda: L.max_pool2d(x, 2, padding=-1), ValueError, "padding"),
        (lambda: L.max_pool2d(x, 2, dilation=0), ValueError, "dilation"),
        (lambda: L.max_pool2d(x, 2, layout="NCL"), ValueError, "layout"),
        (lambda: L.max_pool1d(x[0], 2, layout="NCHW"), ValueError, "layout"),
        (lambda: L.max_pool2d(x, 2, ceil_mode=1), TypeError, "ceil_mode"),
        (lambda: L.max_pool2d(x, 2, return_indices="yes"), TypeError, "return_indices"),
        (lambda: L.avg_pool2d(x, 2, count_include_pad=None), TypeError, "count_include_pad"),
        (lambda: L.max_pool2d(x[0, 0], 2), ValueError, "x"),
        (lambda: L.max_pool2d(x, 7), ValueError, "too small"),
        (lambda: L.max_pool2d(np.zeros((1, 1, 2, 2)), 2, 1, 1, dilation=3), ValueError, "padding"),
        (lambda: L.max_pool2d(x.astype(complex), 2), TypeError, "complex"),
        (lambda: L.max_pool2d_backward(np.zeros((1, 2, 3, 3)), np.full((1, 2, 3, 3), 36), x.shape),
         ValueError, "indices"),
        (lambda: L.max_pool2d_backward(np.zeros((1, 2, 3, 3)), np.full((1, 2, 3, 3), -1), x.shape),
         ValueError, "indices"),
        (lambda: L.max_pool2d_backward(np.zeros((1, 2, 3, 3)), np.zeros((1, 2, 3, 2), int), x.shape),
         ValueError, "indices"),
        (lambda: L.max_pool2d_backward(np.zeros((1, 2, 3, 3)), np.zeros((1, 2, 3, 3)), x.shape),
         TypeError, "indices"),
        (lambda: L.max_pool2d_backward(np.zeros((1, 3, 3, 3)), np.zeros((1, 3, 3, 3), int), x.shape),
         ValueError, "grad_output"),
        (lambda: L.max_pool2d_backward(np.zeros((1, 2, 3, 3)), np.zeros((1, 2, 3, 3), int), (1, 2, 6)),
         ValueError, "grad_output"),
        (lambda: L.max_pool2d_backward(np.zeros((1, 2, 3, 3)), np.zeros((1, 2, 3, 3), int), "shape"),
         ValueError, "input_shape"),
        (lambda: L.max_pool2d_backward(np.zeros((1, 2, 3, 3)), np.zeros((1, 2, 3, 3), int), (1, 2, -6, 6)),
         ValueError, "input_shape"),
        (lambda: L.avg_pool2d_backward(np.zeros((1, 2, 3, 3)), x.shape, 3), ValueError, "grad_output"),
        (lambda: L.avg_pool2d_backward(np.zeros((1, 2, 3, 3)), x.shape, 2, padding=3), ValueError, "padding"),
        (lambda: L.avg_pool1d_backward(np.zeros((1, 2, 3)), (1, 2, 6), 2, layout="NHWC"), ValueError, "layout"),
    ]
    for f, exc, word in cases:
        with pytest.raises(exc, match=word):
            f()


def test_nhwc_rows_first_order():
    """The measured alternative order of the NHWC forward (mlkern._kernels.set_pool_variant(1):
    the window rows reduced into a row buffer first) gives the same results."""
    from mlkern import _kernels as K
    x = _data((2, 9, 11, 5), F64, 40)
    x[0, 1, 1, 0] = np.nan
    cases = [(3, 2, 1, 1), (2, None, 0, 1), ((3, 2), (1, 2), (1, 1), (2, 1)), (1, 1, 0, 1)]
    ref = [(L.max_pool2d(x, k, s, p, d, layout="NHWC"), L.avg_pool2d(x, k, s, p, layout="NHWC",
                                                                      count_include_pad=False))
           for k, s, p, d in cases]
    old = K.set_pool_variant(1)
    try:
        for (k, s, p, d), (m, a) in zip(cases, ref):
            np.testing.assert_array_equal(L.max_pool2d(x, k, s, p, d, layout="NHWC"), m)
            np.testing.assert_allclose(L.avg_pool2d(x, k, s, p, layout="NHWC", count_include_pad=False), a,
                                       rtol=1e-14, atol=1e-14)
            y, i = L.max_pool2d(x, k, s, p, d, layout="NHWC", return_indices=True)   # the direct kernel
            np.testing.assert_array_equal(y, m)
    finally:
        K.set_pool_variant(old)
