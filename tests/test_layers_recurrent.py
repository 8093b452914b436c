"""mlkern.layers recurrent layers: rnn/lstm/gru cells, sequences and BPTT.

References: a float64 NumPy re-implementation of PyTorch's formulas
(independent of the library's code path: plain matmuls, no saved state),
4th-order central finite differences for every gradient, PyTorch
(optional, skipped without it) for values and every gradient.
"""
import numpy as np
import pytest

import mlkern
import mlkern.layers as L
from reference import fd4_grad

F32, F64 = np.float32, np.float64
G = {"rnn": 1, "lstm": 4, "gru": 3}


# ---------------------------------------------------------------- references
def _sig(z):
    return 1.0 / (1.0 + np.exp(-z))


def _ref_seq(kind, x, h0, c0, wi, wh, bi, bh, nl="tanh"):
    """float64 forward, time-major: (output, h_n, c_n)."""
    T, N, _ = x.shape
    H = wh.shape[1]
    h = np.zeros((N, H)) if h0 is None else np.asarray(h0, F64)
    c = np.zeros((N, H)) if c0 is None else np.asarray(c0, F64)
    bi = 0 if bi is None else bi
    bh = 0 if bh is None else bh
    outs = []
    for t in range(T):
        gx = x[t] @ wi.T + bi
        gh = h @ wh.T + bh
        if kind == "rnn":
            h = np.tanh(gx + gh) if nl == "tanh" else np.maximum(gx + gh, 0)
        elif kind == "lstm":
            g = gx + gh
            i, f, gg, o = _sig(g[:, :H]), _sig(g[:, H:2 * H]), np.tanh(g[:, 2 * H:3 * H]), _sig(g[:, 3 * H:])
            c = f * c + i * gg
            h = o * np.tanh(c)
        else:
            r = _sig(gx[:, :H] + gh[:, :H])
            z = _sig(gx[:, H:2 * H] + gh[:, H:2 * H])
            n = np.tanh(gx[:, 2 * H:] + r * gh[:, 2 * H:])
            h = (1 - z) * n + z * h
        outs.append(h)
    return np.stack(outs), h, c


def _params(kind, T, N, I, H, dt=F64, seed=0, bias=True, h0=True, c0=True):
    rng = np.random.default_rng(seed)
    g = G[kind]
    p = dict(x=rng.standard_normal((T, N, I)),
             h0=rng.standard_normal((N, H)) if h0 else None,
             c0=rng.standard_normal((N, H)) if (c0 and kind == "lstm") else None,
             wi=rng.standard_normal((g * H, I)) * 0.5, wh=rng.standard_normal((g * H, H)) * 0.5,
             bi=rng.standard_normal(g * H) * 0.5 if bias else None,
             bh=rng.standard_normal(g * H) * 0.5 if bias else None)
    return {k: (None if v is None else v.astype(dt)) for k, v in p.items()}


def _fwd(kind, p, batch_first=False, return_saved=True, nl="tanh"):
    x = p["x"].transpose(1, 0, 2).copy() if batch_first else p["x"]
    if kind == "lstm":
        r = L.lstm(x, p["h0"], p["c0"], p["wi"], p["wh"], p["bi"], p["bh"],
                   batch_first=batch_first, return_saved=return_saved)
        out, (hn, cn) = r[0], r[1]
    else:
        kw = {"nonlinearity": nl} if kind == "rnn" else {}
        r = getattr(L, kind)(x, p["h0"], p["wi"], p["wh"], p["bi"], p["bh"],
                             batch_first=batch_first, return_saved=return_saved, **kw)
        out, hn, cn = r[0], r[1], None
    if batch_first:
        out = out.transpose(1, 0, 2)
    return out, hn, cn, (r[2] if return_saved else None)


def _bwd(kind, go, gh, gc, saved, batch_first=False):
    if go is not None and batch_first:
        go = go.transpose(1, 0, 2).copy()
    if kind == "lstm":
        g = L.lstm_backward(go, gh, gc, saved)
    else:
        g = getattr(L, kind + "_backward")(go, gh, saved)
    g = list(g)
    if batch_first and g[0] is not None:
        g[0] = g[0].transpose(1, 0, 2)
    return g


def _names(kind):
    return ["x", "h0"] + (["c0"] if kind == "lstm" else []) + ["wi", "wh", "bi", "bh"]



def _fd4(fun, a, h=1e-4):
    return fd4_grad(fun, a, h)


KINDS = ["rnn", "lstm", "gru"]


# ---------------------------------------------------------------- forward values
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("h0", [True, False])
def test_forward_matches_float64_reference(kind, bias, h0):
    p = _params(kind, 5, 3, 4, 6, bias=bias, h0=h0, c0=h0)
    out, hn, cn, _ = _fwd(kind, p, return_saved=False)
    ro, rh, rc = _ref_seq(kind, p["x"], p["h0"], p["c0"], p["wi"], p["wh"], p["bi"], p["bh"])
    np.testing.assert_allclose(out, ro, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(hn, rh, rtol=1e-13, atol=1e-14)
    if kind == "lstm":
        np.testing.assert_allclose(cn, rc, rtol=1e-13, atol=1e-14)
    assert out.dtype == F64 and out.flags.c_contiguous


def test_rnn_relu_forward():
    p = _params("rnn", 4, 2, 3, 5)
    out, hn, _, _ = _fwd("rnn", p, nl="relu", return_saved=False)
    ro, rh, _ = _ref_seq("rnn", p["x"], p["h0"], None, p["wi"], p["wh"], p["bi"], p["bh"], "relu")
    np.testing.assert_allclose(out, ro, rtol=1e-13, atol=1e-14)
    assert (out >= 0).all() and (out == 0).any()


@pytest.mark.parametrize("kind", KINDS)
def test_return_saved_does_not_change_the_output(kind):
    p = _params(kind, 6, 3, 4, 5)
    a = _fwd(kind, p, return_saved=False)
    b = _fwd(kind, p, return_saved=True)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    if kind == "lstm":
        np.testing.assert_array_equal(a[2], b[2])


@pytest.mark.parametrize("kind", KINDS)
def test_batch_first(kind):
    p = _params(kind, 4, 3, 2, 5)
    a = _fwd(kind, p)
    b = _fwd(kind, p, batch_first=True)
    np.testing.assert_allclose(a[0], b[0], rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(a[1], b[1], rtol=1e-14, atol=1e-15)
    rng = np.random.default_rng(3)
    go = rng.standard_normal(a[0].shape)
    gh = rng.standard_normal(a[1].shape)
    ga = _bwd(kind, go, gh, gh if kind == "lstm" else None, a[3])
    gb = _bwd(kind, go, gh, gh if kind == "lstm" else None, b[3], batch_first=True)
    for u, v in zip(ga, gb):
        np.testing.assert_allclose(u, v, rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("bias", [True, False])
def test_cells_are_one_step(kind, bias):
    p = _params(kind, 1, 3, 4, 5, bias=bias)
    x = p["x"][0]
    ro, rh, rc = _ref_seq(kind, p["x"], p["h0"], p["c0"], p["wi"], p["wh"], p["bi"], p["bh"])
    if kind == "lstm":
        h, c = L.lstm_cell(x, p["h0"], p["c0"], p["wi"], p["wh"], p["bi"], p["bh"])
        np.testing.assert_allclose(c, rc, rtol=1e-13, atol=1e-14)
        h2, c2 = L.lstm_cell(x, None, None, p["wi"], p["wh"], p["bi"], p["bh"])
        _, rh2, rc2 = _ref_seq(kind, p["x"], None, None, p["wi"], p["wh"], p["bi"], p["bh"])
        np.testing.assert_allclose(c2, rc2, rtol=1e-13, atol=1e-14)
    else:
        h = getattr(L, kind + "_cell")(x, p["h0"], p["wi"], p["wh"], p["bi"], p["bh"])
        h2 = getattr(L, kind + "_cell")(x, None, p["wi"], p["wh"], p["bi"], p["bh"])
        _, rh2, _ = _ref_seq(kind, p["x"], None, None, p["wi"], p["wh"], p["bi"], p["bh"])
    np.testing.assert_allclose(h, rh, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(h2, rh2, rtol=1e-13, atol=1e-14)
    assert h.shape == (3, 5)


def test_rnn_cell_relu():
    p = _params("rnn", 1, 4, 3, 5)
    h = L.rnn_cell(p["x"][0], p["h0"], p["wi"], p["wh"], p["bi"], p["bh"], nonlinearity="relu")
    _, rh, _ = _ref_seq("rnn", p["x"], p["h0"], None, p["wi"], p["wh"], p["bi"], p["bh"], "relu")
    np.testing.assert_allclose(h, rh, rtol=1e-13, atol=1e-14)


# ---------------------------------------------------------------- gradients: finite differences
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("which", ["both", "output", "h_n"])
def test_gradients_finite_differences(kind, which):
    T, N, I, H = 3, 2, 3, 2
    p = _params(kind, T, N, I, H, seed=7)
    rng = np.random.default_rng(11)
    go = rng.standard_normal((T, N, H)) if which != "h_n" else None
    gh = rng.standard_normal((N, H)) if which != "output" else None
    gc = rng.standard_normal((N, H)) if (kind == "lstm" and which == "both") else None

    def loss():
        o, h, c = _ref_seq(kind, p["x"], p["h0"], p["c0"], p["wi"], p["wh"], p["bi"], p["bh"])
        s = 0.0
        if go is not None:
            s += (o * go).sum()
        if gh is not None:
            s += (h * gh).sum()
        if gc is not None:
            s += (c * gc).sum()
        return s

    _, _, _, saved = _fwd(kind, p)
    grads = _bwd(kind, go, gh, gc, saved)
    for name, got in zip(_names(kind), grads):
        np.testing.assert_allclose(got, _fd4(loss, p[name]), rtol=1e-7, atol=1e-9,
                                   err_msg=f"{kind} grad {name}")


def test_rnn_relu_gradients_finite_differences():
    T, N, I, H = 3, 2, 3, 4
    p = _params("rnn", T, N, I, H, seed=5)
    rng = np.random.default_rng(2)
    go = rng.standard_normal((T, N, H))

    def loss():
        return (_ref_seq("rnn", p["x"], p["h0"], None, p["wi"], p["wh"], p["bi"], p["bh"], "relu")[0]
                * go).sum()

    *_, saved = _fwd("rnn", p, nl="relu")
    ref = _ref_seq("rnn", p["x"], p["h0"], None, p["wi"], p["wh"], p["bi"], p["bh"], "relu")[0]
    assert (ref == 0).any() and (np.abs(ref) > 1e-3).any()
    grads = L.rnn_backward(go, None, saved)
    for name, got in zip(_names("rnn"), grads):
        np.testing.assert_allclose(got, _fd4(loss, p[name], h=1e-6), rtol=1e-6, atol=1e-8,
                                   err_msg=f"grad {name}")


# ---------------------------------------------------------------- None rules
@pytest.mark.parametrize("kind", KINDS)
def test_none_rules(kind):
    p = _params(kind, 3, 2, 3, 4, bias=False, h0=False, c0=False)
    out, hn, cn, saved = _fwd(kind, p)
    rng = np.random.default_rng(0)
    go = rng.standard_normal(out.shape)
    g = _bwd(kind, go, None, None, saved)
    n = len(_names(kind))
    assert len(g) == n
    assert g[1] is None
    if kind == "lstm":
        assert g[2] is None
    assert g[-1] is None and g[-2] is None
    assert g[0].shape == p["x"].shape and g[-4].shape == p["wi"].shape and g[-3].shape == p["wh"].shape
    # all incoming gradients None: zero gradients
    z = _bwd(kind, None, None, None, saved)
    for a in z:
        assert a is None or (a == 0).all()
    assert z[0] is not None and z[-4] is not None


@pytest.mark.parametrize("kind", KINDS)
def test_one_bias_only(kind):
    p = _params(kind, 3, 2, 3, 4, seed=4)
    rng = np.random.default_rng(9)
    go = rng.standard_normal((3, 2, 4))
    full = _bwd(kind, go, None, None, _fwd(kind, p)[3])
    for drop in ("bi", "bh"):
        q = dict(p)
        q[drop] = None
        keep = "bh" if drop == "bi" else "bi"
        ro, _, _ = _ref_seq(kind, q["x"], q["h0"], q["c0"], q["wi"], q["wh"], q["bi"], q["bh"])
        out, _, _, saved = _fwd(kind, q)
        np.testing.assert_allclose(out, ro, rtol=1e-13, atol=1e-14)
        g = _bwd(kind, go, None, None, saved)
        assert g[-1 if drop == "bh" else -2] is None
        got = g[-2 if keep == "bi" else -1]

        def loss():
            return (_ref_seq(kind, q["x"], q["h0"], q["c0"], q["wi"], q["wh"], q["bi"], q["bh"])[0]
                    * go).sum()

        np.testing.assert_allclose(got, _fd4(loss, q[keep]), rtol=1e-7, atol=1e-9)
        assert full[0].shape == g[0].shape


# ---------------------------------------------------------------- dtypes
@pytest.mark.parametrize("kind", KINDS)
def test_float32(kind):
    p = _params(kind, 6, 3, 5, 4, dt=F32)
    out, hn, cn, saved = _fwd(kind, p)
    assert out.dtype == F32 and hn.dtype == F32
    p64 = {k: (None if v is None else v.astype(F64)) for k, v in p.items()}
    ro, rh, _ = _ref_seq(kind, p64["x"], p64["h0"], p64["c0"], p64["wi"], p64["wh"], p64["bi"], p64["bh"])
    np.testing.assert_allclose(out, ro, rtol=1e-5, atol=1e-5)
    go = np.random.default_rng(1).standard_normal(out.shape).astype(F32)
    g = _bwd(kind, go, None, None, saved)
    g64 = _bwd(kind, go.astype(F64), None, None, _fwd(kind, p64)[3])
    for a, b in zip(g, g64):
        if b is None:
            assert a is None
            continue
        assert a.dtype == F32
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4 * (np.abs(b).max() + 1))


def test_mixed_float_dtypes_raise_naming_both():
    p = _params("lstm", 2, 2, 3, 4)
    with pytest.raises(TypeError, match="x.*w_hh|w_hh.*x"):
        L.lstm(p["x"], None, None, p["wi"], p["wh"].astype(F32))
    out, hn, cn, saved = _fwd("gru", _params("gru", 2, 2, 3, 4))
    with pytest.raises(TypeError, match="grad_output"):
        L.gru_backward(np.zeros(out.shape, F32), None, saved)


def test_integer_x_takes_the_weight_dtype():
    p = _params("rnn", 3, 2, 3, 4, dt=F32)
    xi = np.arange(18).reshape(3, 2, 3) % 3
    out, hn = L.rnn(xi, None, p["wi"], p["wh"])
    assert out.dtype == F32
    ro, _, _ = _ref_seq("rnn", xi.astype(F64), None, None, p["wi"].astype(F64), p["wh"].astype(F64),
                        None, None)
    np.testing.assert_allclose(out, ro, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- bad input
def test_bad_shapes_name_the_argument():
    p = _params("lstm", 3, 2, 3, 4)
    x, h0, c0, wi, wh, bi, bh = (p[k] for k in ("x", "h0", "c0", "wi", "wh", "bi", "bh"))
    with pytest.raises(ValueError, match="w_hh"):
        L.lstm(x, h0, c0, wi, wh[:, :3], bi, bh)
    with pytest.raises(ValueError, match="w_ih"):
        L.lstm(x, h0, c0, wi[:12], wh, bi, bh)
    with pytest.raises(ValueError, match="b_ih"):
        L.lstm(x, h0, c0, wi, wh, bi[:5], bh)
    with pytest.raises(ValueError, match="b_hh"):
        L.lstm(x, h0, c0, wi, wh, bi, bh[None])
    with pytest.raises(ValueError, match="x"):
        L.lstm(x[:, :, :2], h0, c0, wi, wh, bi, bh)
    with pytest.raises(ValueError, match="x"):
        L.lstm(x[0], h0, c0, wi, wh, bi, bh)
    with pytest.raises(ValueError, match="x.*sequence length"):
        L.lstm(x[:0], h0, c0, wi, wh, bi, bh)
    with pytest.raises(ValueError, match="h0"):
        L.lstm(x, h0[:1], c0, wi, wh, bi, bh)
    with pytest.raises(ValueError, match="c0"):
        L.lstm(x, h0, c0.T, wi, wh, bi, bh)
    with pytest.raises(ValueError, match=r"h0.*batch=3"):
        L.lstm(x, h0, c0, wi, wh, bi, bh, batch_first=True)     # x read as (N=3, T=2, I)
    with pytest.raises(ValueError, match=r"\bh\b"):
        L.gru_cell(x[0], h0[:, :2], np.zeros((12, 3)), np.zeros((12, 4)))
    with pytest.raises(ValueError, match=r"\bc\b"):
        L.lstm_cell(x[0], h0, c0[:1], wi, wh)
    with pytest.raises(ValueError, match="x"):
        L.rnn_cell(x, h0, np.zeros((4, 3)), np.zeros((4, 4)))
    with pytest.raises(ValueError, match="nonlinearity"):
        L.rnn(x, h0, np.zeros((4, 3)), np.zeros((4, 4)), nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="nonlinearity"):
        L.rnn_cell(x[0], h0, np.zeros((4, 3)), np.zeros((4, 4)), nonlinearity="gelu")


def test_backward_bad_input():
    p = _params("lstm", 3, 2, 3, 4)
    out, hn, cn, saved = _fwd("lstm", p)
    with pytest.raises(ValueError, match="grad_output"):
        L.lstm_backward(np.zeros((3, 2, 5)), None, None, saved)
    with pytest.raises(ValueError, match="grad_h_n"):
        L.lstm_backward(None, np.zeros((2, 5)), None, saved)
    with pytest.raises(ValueError, match="grad_c_n"):
        L.lstm_backward(None, None, np.zeros((3, 4)), saved)
    with pytest.raises(TypeError, match="saved"):
        L.gru_backward(None, None, saved)
    with pytest.raises(TypeError, match="saved"):
        L.rnn_backward(None, None, (out, hn))


# ---------------------------------------------------------------- threads
@pytest.mark.parametrize("kind", KINDS)
def test_thread_counts_agree(kind):
    p = _params(kind, 5, 8, 16, 32, seed=3)
    go = np.random.default_rng(0).standard_normal((5, 8, 32))
    old = mlkern.get_num_threads()
    res = []
    try:
        for n in (1, 2):
            mlkern.set_num_threads(n)
            out, hn, cn, saved = _fwd(kind, p)
            res.append([out] + _bwd(kind, go, None, None, saved))
    finally:
        mlkern.set_num_threads(old)
    for a, b in zip(*res):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------- PyTorch (optional)
def _torch_case(kind, dt, bias, with_h0, batch_first, which, seed=0, T=5, N=3, I=4, H=6):
    torch = pytest.importorskip("torch")
    p = _params(kind, T, N, I, H, dt=dt, seed=seed, bias=bias, h0=with_h0, c0=with_h0)
    tdt = torch.float64 if dt == F64 else torch.float32
    mod = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[kind](
        I, H, bias=bias, batch_first=batch_first).to(tdt)
    with torch.no_grad():
        mod.weight_ih_l0.copy_(torch.from_numpy(p["wi"]))
        mod.weight_hh_l0.copy_(torch.from_numpy(p["wh"]))
        if bias:
            mod.bias_ih_l0.copy_(torch.from_numpy(p["bi"]))
            mod.bias_hh_l0.copy_(torch.from_numpy(p["bh"]))
    xin = p["x"].transpose(1, 0, 2).copy() if batch_first else p["x"]
    xt = torch.tensor(xin, requires_grad=True)
    h = torch.tensor(p["h0"][None] if with_h0 else np.zeros((1, N, H), dt), requires_grad=True)
    rng = np.random.default_rng(seed + 1)
    go = rng.standard_normal((T, N, H)).astype(dt) if which in ("both", "output") else None
    gh = rng.standard_normal((N, H)).astype(dt) if which in ("both", "h_n") else None
    gc = rng.standard_normal((N, H)).astype(dt) if (kind == "lstm" and which == "both") else None
    if kind == "lstm":
        c = torch.tensor(p["c0"][None] if with_h0 else np.zeros((1, N, H), dt), requires_grad=True)
        o, (hn, cn) = mod(xt, (h, c))
        inputs = [xt, h, c]
    else:
        o, hn = mod(xt, h)
        cn = None
        inputs = [xt, h]
    ot = o.transpose(0, 1) if batch_first else o
    loss = 0 * o.sum()
    if go is not None:
        loss = loss + (ot * torch.from_numpy(go)).sum()
    if gh is not None:
        loss = loss + (hn[0] * torch.from_numpy(gh)).sum()
    if gc is not None:
        loss = loss + (cn[0] * torch.from_numpy(gc)).sum()
    loss.backward()
    ref = [inputs[0].grad.numpy()]
    ref[0] = ref[0].transpose(1, 0, 2) if batch_first else ref[0]
    ref += [t.grad.numpy()[0] for t in inputs[1:]]
    ref += [mod.weight_ih_l0.grad.numpy(), mod.weight_hh_l0.grad.numpy()]
    ref += [mod.bias_ih_l0.grad.numpy(), mod.bias_hh_l0.grad.numpy()] if bias else [None, None]
    out, hn_m, cn_m, saved = _fwd(kind, p, batch_first=batch_first)
    got = _bwd(kind, go, gh, gc, saved, batch_first=batch_first)
    tol = dict(rtol=1e-12, atol=1e-12) if dt == F64 else dict(rtol=2e-4, atol=2e-5)
    np.testing.assert_allclose(out, ot.detach().numpy(), **tol)
    np.testing.assert_allclose(hn_m, hn.detach().numpy()[0], **tol)
    if kind == "lstm":
        np.testing.assert_allclose(cn_m, cn.detach().numpy()[0], **tol)
    for name, a, b in zip(_names(kind), got, ref):
        if name in ("h0", "c0") and not with_h0:
            assert a is None
            continue
        if b is None:
            assert a is None, name
            continue
        scale = np.abs(b).max() + 1
        t = tol if dt == F64 else dict(rtol=1e-3, atol=1e-4 * scale)
        np.testing.assert_allclose(a, b, err_msg=f"{kind} grad {name}", **t)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("which", ["both", "output", "h_n"])
@pytest.mark.parametrize("bias,with_h0,batch_first", [(True, True, False), (False, False, True),
                                                      (True, False, True), (False, True, False)])
def test_vs_pytorch_float64(kind, which, bias, with_h0, batch_first):
    _torch_case(kind, F64, bias, with_h0, batch_first, which)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("batch_first", [False, True])
def test_vs_pytorch_float32(kind, batch_first):
    _torch_case(kind, F32, True, True, batch_first, "both", seed=5, T=12, N=4, I=16, H=24)


@pytest.mark.parametrize("kind", KINDS)
def test_cells_vs_pytorch(kind):
    torch = pytest.importorskip("torch")
    p = _params(kind, 1, 3, 4, 5, seed=8)
    cell = {"rnn": torch.nn.RNNCell, "lstm": torch.nn.LSTMCell, "gru": torch.nn.GRUCell}[kind](4, 5).double()
    with torch.no_grad():
        cell.weight_ih.copy_(torch.from_numpy(p["wi"]))
        cell.weight_hh.copy_(torch.from_numpy(p["wh"]))
        cell.bias_ih.copy_(torch.from_numpy(p["bi"]))
        cell.bias_hh.copy_(torch.from_numpy(p["bh"]))
    x = torch.from_numpy(p["x"][0])
    h = torch.from_numpy(p["h0"])
    with torch.no_grad():
        if kind == "lstm":
            rh, rc = cell(x, (h, torch.from_numpy(p["c0"])))
            gh, gc = L.lstm_cell(p["x"][0], p["h0"], p["c0"], p["wi"], p["wh"], p["bi"], p["bh"])
            np.testing.assert_allclose(gc, rc.numpy(), rtol=1e-12, atol=1e-13)
        else:
            rh = cell(x, h)
            gh = getattr(L, kind + "_cell")(p["x"][0], p["h0"], p["wi"], p["wh"], p["bi"], p["bh"])
    np.testing.assert_allclose(gh, rh.numpy(), rtol=1e-12, atol=1e-13)


# ---------------------------------------------------------------- memory, chunks, aliasing
@pytest.mark.parametrize("kind", KINDS)
def test_chunked_input_projection(kind, monkeypatch):
    p = _params(kind, 7, 3, 4, 5, seed=12)
    ref = _fwd(kind, p)
    ro, rh, _ = _ref_seq(kind, p["x"], p["h0"], p["c0"], p["wi"], p["wh"], p["bi"], p["bh"])
    go = np.random.default_rng(1).standard_normal(ro.shape)
    gref = _bwd(kind, go, None, None, ref[3])
    # a chunk of 2 steps (7 = 2 + 2 + 2 + 1), and of 1 step
    for nbytes in (2 * 3 * G[kind] * 5 * 8, 1):
        monkeypatch.setattr(L, "_PROJ_BYTES", nbytes)
        out, hn, cn, saved = _fwd(kind, p)
        np.testing.assert_allclose(out, ro, rtol=1e-13, atol=1e-14)
        np.testing.assert_allclose(hn, rh, rtol=1e-13, atol=1e-14)
        for a, b in zip(_bwd(kind, go, None, None, saved), gref):
            np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("kind", KINDS)
def test_forward_scratch_memory_does_not_grow_with_T(kind, monkeypatch):
    import tracemalloc

    # the projection scratch is bounded by _PROJ_BYTES (4 MiB): made small
    # here so that T = 1000 steps of this small size exceed it
    monkeypatch.setattr(L, "_PROJ_BYTES", 16 << 10)
    N, I, H = 2, 8, 16
    peaks = {}
    for T in (100, 1000):
        p = _params(kind, T, N, I, H, dt=F32, seed=1)
        tracemalloc.start()
        _fwd(kind, p, return_saved=False)
        peaks[T] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        # with return_saved: the saved activations grow linearly
        tracemalloc.start()
        r = _fwd(kind, p, return_saved=True)
        peaks[T, "saved"] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert r[3].hs.shape[0] == T + 1
        del r
    step_out = N * H * 4                    # the output (and hs) must grow by this per step
    assert peaks[1000] - peaks[100] < 900 * step_out * 2.5
    # at least the gate activations and the hidden states of every step
    assert peaks[1000, "saved"] - peaks[100, "saved"] > 900 * N * (G[kind] + 1) * H * 4


@pytest.mark.parametrize("kind", KINDS)
def test_output_is_not_the_saved_state(kind):
    p = _params(kind, 4, 2, 3, 5, seed=2)
    out, hn, cn, saved = _fwd(kind, p)
    go = np.random.default_rng(0).standard_normal(out.shape)
    g1 = _bwd(kind, go, None, None, saved)
    out[...] = 1e3                          # an in-place change of the output
    hn[...] = 1e3
    g2 = _bwd(kind, go, None, None, saved)
    for a, b in zip(g1, g2):
        if a is not None:
            np.testing.assert_array_equal(a, b)


def test_float16_computes_in_float32_and_returns_float16():
    p = _params("gru", 3, 2, 3, 4, dt=np.float16, seed=6)
    out, hn, _, saved = _fwd("gru", p)
    assert out.dtype == np.float16 and hn.dtype == np.float16
    p32 = {k: (None if v is None else v.astype(F32)) for k, v in p.items()}
    o32 = _fwd("gru", p32)[0]
    np.testing.assert_array_equal(out, o32.astype(np.float16))
    g = _bwd("gru", np.ones(out.shape, np.float16), None, None, saved)
    g32 = _bwd("gru", np.ones(out.shape, F32), None, None, _fwd("gru", p32)[3])
    for a, b in zip(g, g32):
        assert a.dtype == np.float16
        np.testing.assert_array_equal(a, b.astype(np.float16))


@pytest.mark.parametrize("kind", KINDS)
def test_empty_batch_and_zero_input_size(kind):
    H = 3
    rng = np.random.default_rng(4)
    p = _params(kind, 3, 2, 1, H, seed=4)
    p0 = dict(p, x=np.ones((3, 2, 0)), wi=np.ones((G[kind] * H, 0)))
    p1 = dict(p, x=np.zeros((3, 2, 1)), wi=np.zeros((G[kind] * H, 1)))
    go = rng.standard_normal((3, 2, H))
    r0, r1 = _fwd(kind, p0), _fwd(kind, p1)
    np.testing.assert_array_equal(r0[0], r1[0])
    g0, g1 = _bwd(kind, go, None, None, r0[3]), _bwd(kind, go, None, None, r1[3])
    assert g0[0].shape == (3, 2, 0) and g0[-4].shape == (G[kind] * H, 0)
    for a, b in list(zip(g0, g1))[1:]:
        if a is not None and a.shape == b.shape:
            np.testing.assert_array_equal(a, b)
    pe = dict(p, x=np.ones((3, 0, 1)), h0=None, c0=None)
    out, hn, cn, saved = _fwd(kind, pe)
    assert out.shape == (3, 0, H) and hn.shape == (0, H)
    g = _bwd(kind, np.ones(out.shape), None, None, saved)
    assert g[0].shape == (3, 0, 1) and not g[-4].any() and not g[-1].any()


# ---------------------------------------------------------------- blocks, GEMM panels, threads
class _tuning:
    """The recurrent loops' block threshold and GEMM panel limit, restored on exit."""

    def __init__(self, par_work=-1, sub_mnk=-1):
        self.args = (par_work, sub_mnk)

    def __enter__(self):
        self.old = mlkern._kernels.set_rnn_tuning(*self.args)

    def __exit__(self, *exc):
        mlkern._kernels.set_rnn_tuning(*self.old)


def _all(kind, p, go, gh, gc):
    out, hn, cn, saved = _fwd(kind, p)
    return [out, hn] + ([cn] if kind == "lstm" else []) + _bwd(kind, go, gh, gc, saved)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("H", [40, 64])
def test_blocks_and_gemm_panels(kind, H):
    # two blocks of hidden units (H = 40: blocks of 32 and 8 units), with and
    # without the per-step GEMM panels, against one block and the float64
    # reference
    p = _params(kind, 4, 3, 5, H, seed=21)
    rng = np.random.default_rng(2)
    go, gh = rng.standard_normal((4, 3, H)), rng.standard_normal((3, H))
    gc = rng.standard_normal((3, H)) if kind == "lstm" else None
    assert mlkern._kernels.rnn_blocks(3, H, G[kind]) == (1, H)
    one = _all(kind, p, go, gh, gc)
    ro, rh, _ = _ref_seq(kind, p["x"], p["h0"], p["c0"], p["wi"], p["wh"], p["bi"], p["bh"])
    for sub in (-1, 0):
        with _tuning(0, sub):
            assert mlkern._kernels.rnn_blocks(3, H, G[kind]) == (2, 32)
            res = _all(kind, p, go, gh, gc)
        np.testing.assert_allclose(res[0], ro, rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(res[1], rh, rtol=1e-12, atol=1e-13)
        for a, b in zip(res, one):
            np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dt", [F32, F64])
@pytest.mark.parametrize("forced", [True, False])
def test_thread_counts_bitwise_identical(kind, dt, forced):
    # two blocks (one per thread at 2 threads): forced by the tuning, or by
    # the shape (N * G * H * H >= 2**17 multiply-adds a step)
    N, H = (3, 48) if forced else (32, 64)
    p = _params(kind, 6, N, 7, H, dt=dt, seed=5)
    rng = np.random.default_rng(3)
    go, gh = rng.standard_normal((6, N, H)).astype(dt), rng.standard_normal((N, H)).astype(dt)
    gc = rng.standard_normal((N, H)).astype(dt) if kind == "lstm" else None
    old = mlkern.get_num_threads()
    res = []
    try:
        with _tuning(0 if forced else -1):
            assert mlkern._kernels.rnn_blocks(N, H, G[kind])[0] == 2
            for n in (1, 2):
                mlkern.set_num_threads(n)
                res.append(_all(kind, p, go, gh, gc))
    finally:
        mlkern.set_num_threads(old)
    for a, b in zip(*res):
        np.testing.assert_array_equal(a, b)
