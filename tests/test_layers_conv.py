"""mlkern.layers: conv1d, conv2d, conv1d_backward, conv2d_backward.

References: a float64 NumPy convolution (explicit sums over the kernel
offsets of the zero-padded input, and their adjoint for the gradients),
4th-order central finite differences for every gradient, PyTorch (optional)
for values and autograd gradients.
"""
import tracemalloc

import numpy as np
import pytest

import mlkern
import mlkern.layers as L
from mlkern import _kernels as _ew
from reference import fd4_grad

F32, F64 = np.float32, np.float64


# ---------------------------------------------------------------- float64 reference
def _tup(v, nd):
    return tuple(v) if isinstance(v, (tuple, list)) else (v,) * nd


def _geom(insize, ks, stride, padding, dilation):
    nd = len(ks)
    st, dil = _tup(stride, nd), _tup(dilation, nd)
    if padding == "valid":
        pads = [(0, 0)] * nd
    elif padding == "same":
        tot = [d * (k - 1) for d, k in zip(dil, ks)]
        pads = [(t // 2, t - t // 2) for t in tot]
    else:
        pads = [(p, p) for p in _tup(padding, nd)]
    outs = tuple((n + a + b - d * (k - 1) - 1) // s + 1
                 for n, (a, b), d, k, s in zip(insize, pads, dil, ks, st))
    return st, dil, pads, outs


def _slices(kidx, dil, st, outs):
    return tuple(slice(k * d, k * d + s * (o - 1) + 1, s) for k, d, s, o in zip(kidx, dil, st, outs))


def ref_conv(x, w, b=None, stride=1, padding=0, dilation=1, groups=1, last=False):
    """float64 forward; x batched, channels last if `last`."""
    x = np.asarray(x, F64)
    w = np.asarray(w, F64)
    nd = w.ndim - 2
    if last:
        x = np.moveaxis(x, -1, 1)
    st, dil, pads, outs = _geom(x.shape[2:], w.shape[2:], stride, padding, dilation)
    xp = np.pad(x, [(0, 0), (0, 0)] + pads)
    N, C = x.shape[:2]
    O, G = w.shape[0], groups
    Cg, Og = C // G, O // G
    y = np.zeros((N, O) + outs)
    for kidx in np.ndindex(*w.shape[2:]):
        xs = xp[(slice(None), slice(None)) + _slices(kidx, dil, st, outs)]
        for g in range(G):
            wk = w[(slice(g * Og, (g + 1) * Og), slice(None)) + kidx]
            y[:, g * Og:(g + 1) * Og] += np.einsum("nc...,oc->no...", xs[:, g * Cg:(g + 1) * Cg], wk)
    if b is not None:
        y += np.asarray(b, F64).reshape((O,) + (1,) * nd)
    return np.moveaxis(y, 1, -1) if last else y


def ref_conv_backward(gy, x, w, stride=1, padding=0, dilation=1, groups=1, last=False):
    """float64 (grad_x, grad_weight, grad_bias): the adjoint of ref_conv."""
    x = np.asarray(x, F64)
    w = np.asarray(w, F64)
    gy = np.asarray(gy, F64)
    nd = w.ndim - 2
    if last:
        x, gy = np.moveaxis(x, -1, 1), np.moveaxis(gy, -1, 1)
    st, dil, pads, outs = _geom(x.shape[2:], w.shape[2:], stride, padding, dilation)
    xp = np.pad(x, [(0, 0), (0, 0)] + pads)
    gxp = np.zeros_like(xp)
    gw = np.zeros_like(w)
    C, O, G = x.shape[1], w.shape[0], groups
    Cg, Og = C // G, O // G
    for kidx in np.ndindex(*w.shape[2:]):
        sl = (slice(None), slice(None)) + _slices(kidx, dil, st, outs)
        xs = xp[sl]
        gxs = gxp[sl]
        for g in range(G):
            osl, csl = slice(g * Og, (g + 1) * Og), slice(g * Cg, (g + 1) * Cg)
            gyg = gy[:, osl]
            gxs[:, csl] += np.einsum("no...,oc->nc...", gyg, w[(osl, slice(None)) + kidx])
            xg = xs[:, csl]
            gw[(osl, slice(None)) + kidx] = np.einsum("nop,ncp->oc", gyg.reshape(gyg.shape[:2] + (-1,)),
                                                      xg.reshape(xg.shape[:2] + (-1,)))
    inner = (slice(None), slice(None)) + tuple(slice(a, a + n) for (a, _), n in zip(pads, x.shape[2:]))
    gx = gxp[inner]
    gb = gy.sum(axis=(0,) + tuple(range(2, 2 + nd)))
    return (np.moveaxis(gx, 1, -1) if last else gx), gw, gb


# ---------------------------------------------------------------- cases
# (nd, N, C_in, C_out, spatial, kernel, stride, padding, dilation, groups)
CASES = [
    (2, 2, 3, 4, (7, 6), (3, 3), 1, 0, 1, 1),
    (2, 2, 3, 4, (7, 6), (3, 3), 1, 1, 1, 1),
    (2, 3, 4, 6, (9, 8), (3, 2), (2, 1), (1, 2), 1, 2),
    (2, 2, 4, 4, (8, 9), (3, 3), 2, "valid", (2, 1), 4),      # depthwise, dilated
    (2, 2, 2, 3, (6, 7), (2, 4), 1, "same", (1, 2), 1),       # even kernel: pad odd on the right
    (2, 2, 6, 4, (5, 5), (1, 1), 1, 0, 1, 2),                 # 1x1 stride 1: no im2col
    (2, 2, 3, 5, (6, 7), (1, 1), 2, 1, 1, 1),                 # 1x1 strided, padded
    (2, 1, 2, 2, (4, 5), (5, 3), 3, (2, 1), 1, 1),            # kernel larger than the input axis
    (1, 2, 3, 4, (11,), (3,), 1, 1, 1, 1),
    (1, 3, 4, 6, (13,), (4,), 2, 2, 2, 2),
    (1, 2, 3, 3, (10,), (5,), 1, "same", 1, 3),
    (1, 2, 4, 2, (9,), (1,), 1, 0, 1, 2),
    (1, 2, 2, 3, (9,), (2,), 3, "valid", 3, 1),
]
IDS = [f"{c[0]}d-s{c[6]}-p{c[7]}-d{c[8]}-g{c[9]}-k{c[5]}" for c in CASES]


def _case(case, dt, last, seed=0, bias=True):
    nd, N, C, O, sp, ks, stride, padding, dil, G = case
    rng = np.random.default_rng(seed)
    xs = (N,) + sp + (C,) if last else (N, C) + sp
    x = rng.standard_normal(xs).astype(dt)
    w = rng.standard_normal((O, C // G) + ks).astype(dt)
    b = rng.standard_normal(O).astype(dt) if bias else None
    kw = dict(stride=stride, padding=padding, dilation=dil, groups=G,
              layout=("NLC" if last else "NCL") if nd == 1 else ("NHWC" if last else "NCHW"))
    return x, w, b, kw


def _fns(nd):
    return (L.conv1d, L.conv1d_backward) if nd == 1 else (L.conv2d, L.conv2d_backward)


def _refkw(kw):
    return dict(stride=kw["stride"], padding=kw["padding"], dilation=kw["dilation"],
                groups=kw["groups"], last=kw["layout"] in ("NLC", "NHWC"))


def _bwdkw(kw):
    return {k: v for k, v in kw.items()}


@pytest.fixture(params=["default", "tiny"])
def tiles(request):
    """The default tile size, and 16-pixel tiles (col tiles split output rows and,
    channels last, images)."""
    if request.param == "default":
        yield
        return
    old = _ew.set_conv_tuning(1, 3)
    try:
        yield
    finally:
        _ew.set_conv_tuning(*old)


@pytest.mark.parametrize("last", [False, True], ids=["first", "last"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_conv_matches_float64_reference(case, last, tiles):
    fwd, bwd = _fns(case[0])
    for dt in (F64, F32):
        x, w, b, kw = _case(case, dt, last)
        y = fwd(x, w, b, **kw)
        ref = ref_conv(x, w, b, **_refkw(kw))
        assert y.dtype == dt and y.shape == ref.shape
        eps = np.finfo(dt).eps
        K = w[0].size
        tol = 8 * eps * np.sqrt(K + 1) * (1 + np.abs(ref).max())
        np.testing.assert_allclose(y, ref, rtol=0, atol=tol)
        g = np.random.default_rng(5).standard_normal(ref.shape).astype(dt)
        gx, gw, gb = bwd(g, x, w, **kw)
        rx, rw, rb = ref_conv_backward(g, x, w, **_refkw(kw))
        for a, r in ((gx, rx), (gw, rw), (gb, rb)):
            assert a.dtype == dt and a.shape == r.shape
            n = max(g.size // max(g.shape[0], 1), 1) * g.shape[0]
            np.testing.assert_allclose(a, r, rtol=0, atol=8 * eps * np.sqrt(n) * (1 + np.abs(r).max()))


@pytest.mark.parametrize("last", [False, True], ids=["first", "last"])
@pytest.mark.parametrize("case", [CASES[i] for i in (1, 2, 3, 4, 5, 9, 10)],
                         ids=[IDS[i] for i in (1, 2, 3, 4, 5, 9, 10)])
def test_conv_gradients_finite_differences(case, last):
    """Every gradient of sum(conv(x, w, b) * G) against 4th-order central differences."""
    fwd, bwd = _fns(case[0])
    nd, N, C, O, sp, ks, stride, padding, dil, G = case
    case = (nd, 1, C, O, tuple(min(s, 6) for s in sp), ks, stride, padding, dil, G)
    x, w, b, kw = _case(case, F64, last, seed=3)
    Gy = np.random.default_rng(4).standard_normal(fwd(x, w, b, **kw).shape)

    def loss():
        return float(np.sum(fwd(x, w, b, **kw) * Gy))
    gx, gw, gb = bwd(Gy, x, w, **kw)
    for a, arr in ((gx, x), (gw, w), (gb, b)):
        np.testing.assert_allclose(a, fd4_grad(loss, arr), rtol=1e-8, atol=1e-8)


def test_conv_unbatched_and_no_bias():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 8, 7))
    w = rng.standard_normal((4, 3, 3, 2))
    y = L.conv2d(x, w, padding=1)
    np.testing.assert_allclose(y, ref_conv(x[None], w, padding=1)[0], rtol=1e-12, atol=1e-12)
    g = rng.standard_normal(y.shape)
    gx, gw, gb = L.conv2d_backward(g, x, w, padding=1, has_bias=False)
    rx, rw, _ = ref_conv_backward(g[None], x[None], w, padding=1)
    assert gb is None and gx.shape == x.shape
    np.testing.assert_allclose(gx, rx[0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gw, rw, rtol=1e-12, atol=1e-12)
    gx, gw2, gb = L.conv2d_backward(g, x, w, padding=1, needs_input_grad=False)
    assert gx is None and gb.shape == (4,)
    assert gw2.tobytes() == gw.tobytes()
    x1 = rng.standard_normal((3, 10))
    w1 = rng.standard_normal((2, 3, 4))
    np.testing.assert_allclose(L.conv1d(x1, w1, layout="NLC" if False else "NCL"),
                               ref_conv(x1[None], w1)[0], rtol=1e-12, atol=1e-12)


def test_conv_integer_input_takes_weight_dtype():
    x = np.arange(2 * 3 * 5 * 5).reshape(2, 3, 5, 5) % 7
    w = np.random.default_rng(0).standard_normal((4, 3, 3, 3)).astype(F32)
    y = L.conv2d(x, w, padding=1)
    assert y.dtype == F32
    np.testing.assert_allclose(y, ref_conv(x, w, padding=1), rtol=1e-5, atol=1e-4)
    gx, gw, gb = L.conv2d_backward(np.ones_like(y), x, w, padding=1)
    assert gx.dtype == gw.dtype == gb.dtype == F32
    y1 = L.conv1d(np.ones((1, 2, 5), np.int8), np.ones((1, 2, 2)))
    assert y1.dtype == F64 and y1.tolist() == [[[4.0] * 4]]


def test_conv_float16_computes_in_float32():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 6, 6)).astype(np.float16)
    w = rng.standard_normal((2, 3, 3, 3)).astype(np.float16)
    y = L.conv2d(x, w)
    assert y.dtype == np.float16
    np.testing.assert_allclose(y, ref_conv(x, w), rtol=2e-3, atol=2e-2)


def test_conv_layouts_strided_inputs():
    """Non-contiguous, F-ordered, read-only inputs give the same result."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 6, 9, 8))
    w = rng.standard_normal((4, 3, 3, 3))
    b = rng.standard_normal(4)
    kw = dict(padding=1, groups=2, stride=(1, 2))
    want = L.conv2d(x, w, b, **kw)
    xf = np.asfortranarray(x)
    wv = np.repeat(w, 2, axis=3)[..., ::2]
    xr = x.copy()
    xr.flags.writeable = False
    for xx, ww in ((xf, w), (x, wv), (xr, w), (x[:, :, :, ::-1][:, :, :, ::-1], np.asfortranarray(w))):
        assert L.conv2d(xx, ww, b, **kw).tobytes() == want.tobytes()
    g = rng.standard_normal(want.shape)
    ref = L.conv2d_backward(g, x, w, **kw)
    got = L.conv2d_backward(np.asfortranarray(g), xf, wv, **kw)
    for a, r in zip(got, ref):
        assert a.tobytes() == r.tobytes()
    assert x.tobytes() == xf.tobytes()      # inputs untouched


# ---------------------------------------------------------------- out=
def test_conv_out():
    rng = np.random.default_rng(2)
    for dt in (F32, F64):
        x = rng.standard_normal((2, 3, 7, 7)).astype(dt)
        w = rng.standard_normal((5, 3, 3, 3)).astype(dt)
        b = rng.standard_normal(5).astype(dt)
        want = L.conv2d(x, w, b, stride=2, padding=1)
        out = np.full(want.shape, np.nan, dt)
        r = L.conv2d(x, w, b, stride=2, padding=1, out=out)
        assert r is out and out.tobytes() == want.tobytes()
        # non-contiguous out
        big = np.full(want.shape[:-1] + (2 * want.shape[-1],), np.nan, dt)
        r = L.conv2d(x, w, b, stride=2, padding=1, out=big[..., ::2])
        assert r.base is big and np.array_equal(big[..., ::2], want)
        with pytest.raises(ValueError, match="out"):
            L.conv2d(x, w, b, stride=2, padding=1, out=np.empty((2, 5, 4, 3), dt))
        with pytest.raises(TypeError, match="out"):
            L.conv2d(x, w, b, stride=2, padding=1, out=np.empty(want.shape, F32 if dt == F64 else F64))
    # out aliasing the input (same shape: 1x1 conv, C_in == C_out, "same")
    x = rng.standard_normal((2, 4, 5, 5))
    w = rng.standard_normal((4, 4, 3, 3))
    want = L.conv2d(x, w, padding="same")
    L.conv2d(x, w, padding="same", out=x)
    assert np.array_equal(x, want)
    x1 = rng.standard_normal((2, 9, 3))
    w1 = rng.standard_normal((4, 3, 2))
    want = L.conv1d(x1, w1, layout="NLC", dilation=2)
    out = np.empty(want.shape)
    assert L.conv1d(x1, w1, layout="NLC", dilation=2, out=out) is out and np.array_equal(out, want)


# ---------------------------------------------------------------- errors
def test_conv_bad_arguments_name_them():
    x = np.zeros((2, 4, 8, 8))
    w = np.zeros((6, 2, 3, 3))
    bad = [
        (dict(x=x.astype(F32)), TypeError, r"x \(float32\)"),
        (dict(bias=np.zeros(6, F32)), TypeError, "bias"),
        (dict(layout="NLC"), ValueError, "layout"),
        (dict(layout="nchw"), ValueError, "layout"),
        (dict(groups=3), ValueError, "groups|channels"),
        (dict(groups=4), ValueError, "groups"),
        (dict(groups=0), ValueError, "groups"),
        (dict(groups=2.0), TypeError, "groups"),
        (dict(groups=True), TypeError, "groups"),
        (dict(stride=0), ValueError, "stride"),
        (dict(stride=(1, 2, 3)), ValueError, "stride"),
        (dict(stride=1.5), TypeError, "stride"),
        (dict(dilation=0), ValueError, "dilation"),
        (dict(padding=-1), ValueError, "padding"),
        (dict(padding="full"), ValueError, "padding"),
        (dict(padding="same", stride=2), ValueError, "same"),
        (dict(padding=(1,)), ValueError, "padding"),
        (dict(weight=np.zeros((6, 2, 9, 3))), ValueError, "kernel"),
        (dict(dilation=5), ValueError, "kernel"),
        (dict(weight=np.zeros((6, 2, 3))), ValueError, "weight"),
        (dict(x=np.zeros((2, 2, 4, 8, 8))), ValueError, "x"),
        (dict(x=np.zeros(8)), ValueError, "x"),
        (dict(bias=np.zeros(5)), ValueError, "bias"),
        (dict(bias=np.zeros((1, 6))), ValueError, "bias"),
        (dict(x=x.astype(complex)), TypeError, "x"),
    ]
    for change, exc, msg in bad:
        kw = dict(x=x, weight=w, bias=np.zeros(6), groups=2)
        kw.update(change)
        with pytest.raises(exc, match=msg):
            L.conv2d(**kw)
        if "bias" not in change:
            kw.pop("bias")
            kw["grad_output"] = np.zeros((2, 6, 6, 6))
            with pytest.raises(exc, match=msg):
                L.conv2d_backward(**kw)
    with pytest.raises(ValueError, match="grad_output"):
        L.conv2d_backward(np.zeros((2, 6, 6, 5)), x, w, groups=2)
    with pytest.raises(TypeError, match="grad_output"):
        L.conv2d_backward(np.zeros((2, 6, 6, 6), F32), x, w, groups=2)
    with pytest.raises(ValueError, match="layout"):
        L.conv1d(np.zeros((1, 2, 5)), np.zeros((1, 2, 2)), layout="NCHW")
    with pytest.raises(ValueError, match="same"):
        L.conv1d_backward(np.zeros((1, 1, 2)), np.zeros((1, 2, 5)), np.zeros((1, 2, 2)),
                          padding="same", stride=2)


def test_conv_empty():
    w = np.ones((3, 2, 3, 3))
    y = L.conv2d(np.zeros((0, 2, 5, 5)), w, np.ones(3))
    assert y.shape == (0, 3, 3, 3)
    gx, gw, gb = L.conv2d_backward(np.zeros((0, 3, 3, 3)), np.zeros((0, 2, 5, 5)), w)
    assert gx.shape == (0, 2, 5, 5) and not gw.any() and gw.shape == w.shape and not gb.any()
    # no input channels: the bias alone
    y = L.conv2d(np.zeros((2, 0, 5, 5)), np.zeros((3, 0, 3, 3)), np.arange(3.0), layout="NCHW")
    assert y.shape == (2, 3, 3, 3) and np.array_equal(y[1, :, 2, 2], [0, 1, 2])
    y = L.conv1d(np.zeros((2, 5, 0)), np.zeros((3, 0, 3)), np.arange(3.0), layout="NLC")
    assert y.shape == (2, 3, 3) and np.array_equal(y[1, 2], [0, 1, 2])
    assert L.conv2d(np.zeros((2, 4, 5, 5)), np.zeros((0, 4, 3, 3))).shape == (2, 0, 3, 3)


# ---------------------------------------------------------------- threads
@pytest.mark.parametrize("last", [False, True], ids=["first", "last"])
def test_conv_threads_bitwise(last):
    """Forward and every gradient bitwise identical at 1 and 2 threads (the
    shapes pass the parallel threshold and have several units of work)."""
    cases = [(2, 6, 16, 24, (20, 18), (3, 3), 1, 1, 1, 1),
             (2, 5, 8, 8, (17, 15), (3, 3), 2, 1, 1, 2),
             (2, 4, 16, 32, (14, 14), (1, 1), 1, 0, 1, 1),
             (1, 9, 16, 16, (300,), (5,), 1, 2, 1, 1)]
    for case in cases:
        for dt in (F32, F64):
            x, w, b, kw = _case(case, dt, last)
            fwd, bwd = _fns(case[0])
            g = np.random.default_rng(9).standard_normal(fwd(x, w, b, **kw).shape).astype(dt)
            res = []
            for T in (1, 2):
                with mlkern.threads(T):
                    res.append((fwd(x, w, b, **kw),) + bwd(g, x, w, **kw))
            for a, c in zip(*res):
                assert a.tobytes() == c.tobytes(), (case, dt)


# ---------------------------------------------------------------- memory
@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_conv_memory_per_call_bounded(layout):
    """Traced extra memory of a forward (beyond its output): at most 2 input
    images per thread, the same for a batch of 8 and of 32 (no whole-batch
    im2col); the backward's beyond its results: 2 images per thread plus
    the grad_weight partials of its fixed blocks (at most 7 weight-sized
    arrays, as many for 8 images as for 32)."""
    rng = np.random.default_rng(0)
    C, O, H = 64, 64, 40
    w = rng.standard_normal((O, C, 3, 3)).astype(F32)
    img = C * H * H * 4
    nt = mlkern.get_num_threads()
    extra = {}
    for N in (8, 32):
        shape = (N, C, H, H) if layout == "NCHW" else (N, H, H, C)
        x = rng.standard_normal(shape).astype(F32)
        y = L.conv2d(x, w, padding=1, layout=layout)
        tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
            y = L.conv2d(x, w, padding=1, layout=layout)
            fwd = tracemalloc.get_traced_memory()[1] - base - y.nbytes
            tracemalloc.reset_peak()
            base = tracemalloc.get_traced_memory()[0]
            r = L.conv2d_backward(y, x, w, padding=1, layout=layout)
            bwd = tracemalloc.get_traced_memory()[1] - base - sum(a.nbytes for a in r)
        finally:
            tracemalloc.stop()
        assert fwd <= 2 * img * nt + w.nbytes, (N, fwd, img)
        assert bwd <= 2 * img * nt + 8 * w.nbytes, (N, bwd, img)
        extra[N] = (fwd, bwd)
    assert extra[32][0] <= extra[8][0] + 4096 and extra[32][1] <= extra[8][1] + 4096, extra


# ---------------------------------------------------------------- PyTorch
TORCH_CASES = CASES + [(2, 4, 16, 32, (23, 21), (3, 3), 1, 1, 1, 1),
                       (2, 3, 8, 16, (40, 40), (3, 3), 2, 1, 1, 1),
                       (1, 4, 32, 16, (200,), (5,), 1, 2, 1, 1)]
TORCH_IDS = [f"{c[0]}d-n{c[1]}-c{c[2]}-o{c[3]}-s{c[6]}-p{c[7]}-d{c[8]}-g{c[9]}-k{c[5]}" for c in TORCH_CASES]


@pytest.mark.parametrize("case", TORCH_CASES, ids=TORCH_IDS)
def test_conv_against_torch(case):
    torch = pytest.importorskip("torch")
    import torch.nn.functional as TF
    nd = case[0]
    fwd, bwd = _fns(nd)
    tfn = TF.conv1d if nd == 1 else TF.conv2d
    for dt in (F64, F32):
        for last in (False, True):
            x, w, b, kw = _case(case, dt, last, seed=11)
            y = fwd(x, w, b, **kw)
            g = np.random.default_rng(12).standard_normal(y.shape).astype(dt)
            gx, gw, gb = bwd(g, x, w, **kw)
            xc = np.moveaxis(x, -1, 1) if last else x
            xt, wt, bt = (torch.tensor(np.ascontiguousarray(a), requires_grad=True) for a in (xc, w, b))
            yt = tfn(xt, wt, bt, stride=kw["stride"], padding=kw["padding"], dilation=kw["dilation"],
                     groups=kw["groups"])
            gt = torch.tensor(np.ascontiguousarray(np.moveaxis(g, -1, 1) if last else g))
            yt.backward(gt)
            yr = yt.detach().numpy()
            gxr = xt.grad.numpy()
            if last:
                yr, gxr = np.moveaxis(yr, 1, -1), np.moveaxis(gxr, 1, -1)
            tol = 1e-12 if dt == F64 else 2e-5
            sc = lambda a: tol * (1 + np.abs(a).max()) * np.sqrt(max(a.size, 1)) ** 0.5
            np.testing.assert_allclose(y, yr, rtol=tol, atol=sc(yr))
            np.testing.assert_allclose(gx, gxr, rtol=tol, atol=sc(gxr))
            np.testing.assert_allclose(gw, wt.grad.numpy(), rtol=tol, atol=sc(wt.grad.numpy()))
            np.testing.assert_allclose(gb, bt.grad.numpy(), rtol=tol, atol=sc(bt.grad.numpy()))
