"""mlkern.nn: the layer classes against the functional layers, PyTorch (optional)
and finite differences; initialisation, state dicts, training with the
optimiser classes, bad input, allocations of a warm inference call."""
import threading
import tracemalloc

import numpy as np
import pytest

import mlkern
import mlkern.layers as L
from reference import fd4_grad
import mlkern.nn as nn
import mlkern.optim as optim

ACTS = ["sigmoid", "tanh", "relu", "leaky_relu", "elu", "softplus", "silu", "swish",
        "log_sigmoid", "gelu"]
PARAMS = {"leaky_relu": {"negative_slope": 0.2}, "elu": {"alpha": 0.7}, "softplus": {"beta": 2.0},
          "silu": {"beta": 1.5}, "gelu": {"approximate": "tanh"}}
FROM_Y = ("sigmoid", "tanh", "elu")


def _rng(seed=0):
    return np.random.default_rng(seed)


# ------------------------------------------------------------ each class vs the functional layers
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("act", [None, "relu", "tanh", "gelu", "leaky_relu"])
@pytest.mark.parametrize("bias", [True, False])
def test_dense_matches_functional(dtype, act, bias):
    params = PARAMS.get(act, {}) if act else {}
    layer = nn.Dense(6, 5, activation=act, bias=bias, dtype=dtype, seed=3, **params)
    x = _rng().standard_normal((4, 3, 6)).astype(dtype)
    y = layer(x)
    ref = L.dense(x, layer.weight, layer.bias, activation=act, **params)
    assert y.dtype == dtype and y.shape == (4, 3, 5)
    np.testing.assert_array_equal(y, ref)
    yt = layer.forward(x, training=True)
    np.testing.assert_array_equal(yt, ref)
    g = _rng(1).standard_normal(y.shape).astype(dtype)
    gw_arr, gb_arr = layer.grad_weight, layer.grad_bias
    gx = layer.backward(g)
    _, saved = L.dense(x, layer.weight, layer.bias, activation=act, return_saved=True, **params)
    rgx, rgw, rgb = L.dense_backward(g, x, layer.weight, has_bias=bias, activation=act, saved=saved,
                                     **params)
    np.testing.assert_array_equal(gx, rgx)
    np.testing.assert_array_equal(layer.gradients()[0], rgw)
    assert layer.gradients()[0] is gw_arr                        # written in place
    if bias:
        np.testing.assert_array_equal(layer.gradients()[1], rgb)
        assert layer.gradients()[1] is gb_arr and len(layer.parameters()) == 2
    else:
        assert layer.bias is None and len(layer.parameters()) == len(layer.gradients()) == 1


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("padding_idx", [None, 2, -1])
def test_embedding_matches_functional(dtype, padding_idx):
    emb = nn.Embedding(7, 3, padding_idx=padding_idx, dtype=dtype, seed=1)
    idx = np.array([[0, 2, 6], [2, 2, 5]])
    y = emb(idx)
    np.testing.assert_array_equal(y, L.embedding(idx, emb.weight, padding_idx=padding_idx))
    assert y.dtype == dtype
    y = emb.forward(idx, training=True)
    g = _rng().standard_normal(y.shape).astype(dtype)
    gw = emb.gradients()[0]
    assert emb.backward(g) is None                                # the input is indices
    assert emb.gradients()[0] is gw
    np.testing.assert_array_equal(gw, L.embedding_backward(g, idx, 7, padding_idx=padding_idx))
    # a second backward overwrites (PyTorch's .grad would accumulate)
    emb.backward(2 * g)
    np.testing.assert_array_equal(gw, L.embedding_backward(2 * g, idx, 7, padding_idx=padding_idx))
    if padding_idx is not None:
        assert not emb.weight[padding_idx].any() and not gw[padding_idx].any()


@pytest.mark.parametrize("name", ACTS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_activation_matches_functions(name, dtype):
    params = PARAMS.get(name, {})
    layer = nn.Activation(name, **params)
    x = (_rng().standard_normal((3, 4)) * 3).astype(dtype)
    f = getattr(mlkern, name)
    fb = getattr(mlkern, name + "_backward")
    np.testing.assert_array_equal(layer(x), f(x, **params))
    y = layer.forward(x, training=True)
    g = _rng(1).standard_normal(x.shape).astype(dtype)
    saved = y if name in FROM_Y else x
    np.testing.assert_array_equal(layer.backward(g), fb(g, saved, **params))
    assert layer.parameters() == [] and layer.gradients() == [] and layer.state_dict() == {}


def test_flatten():
    x = np.arange(2 * 3 * 4 * 5, dtype=np.float64).reshape(2, 3, 4, 5)
    f = nn.Flatten()
    assert f(x).shape == (2, 60)
    np.testing.assert_array_equal(f(x), x.reshape(2, 60))
    assert nn.Flatten(2)(x).shape == (2, 3, 20)
    assert nn.Flatten(-2)(x).shape == (2, 3, 20) and nn.Flatten(-1)(x).shape == (2, 3, 4, 5)
    assert nn.Flatten(0)(x).shape == (120,)
    y = f.forward(x, training=True)
    g = np.arange(y.size, dtype=np.float64).reshape(y.shape)
    np.testing.assert_array_equal(f.backward(g), g.reshape(x.shape))
    with pytest.raises(ValueError, match="start_dim"):
        nn.Flatten(4)(x)
    with pytest.raises(TypeError, match="start_dim"):
        nn.Flatten(1.0)


def _mlp(dtype=np.float64, seed=0):
    return nn.Sequential(nn.Dense(6, 16, dtype=dtype, seed=seed), nn.Activation("relu"),
                         nn.Dense(16, 8, dtype=dtype, seed=seed + 1), nn.Activation("tanh"),
                         nn.Dense(8, 3, activation="gelu", dtype=dtype, seed=seed + 2),
                         nn.Activation("softplus", beta=2.0), nn.Dense(3, 2, dtype=dtype, seed=seed + 3))


def _unfused(model, x):
    """The model's layers one by one, each through its own call (no fusion)."""
    ys = [np.asarray(x)]
    for layer in model:
        ys.append(layer(ys[-1]))
    return ys


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sequential_fused_equals_layer_by_layer(dtype):
    model = _mlp(dtype)
    x = _rng().standard_normal((5, 6)).astype(dtype)
    ref = _unfused(model, x)[-1]
    # the fused epilogue runs the same activation kernels on the same values
    np.testing.assert_array_equal(model(x), ref)
    np.testing.assert_array_equal(model(x), ref)                      # warm: the workspaces
    np.testing.assert_array_equal(model.forward(x, training=True), ref)
    # backward: the chain rule by hand through the functional layers
    g = _rng(1).standard_normal(ref.shape).astype(dtype)
    gx = model.backward(g)
    ys = _unfused(model, x)
    grads = {}
    gg = g
    for i in reversed(range(len(model))):
        layer = model[i]
        if isinstance(layer, nn.Activation):
            f = getattr(mlkern, layer.name + "_backward")
            gg = f(gg, ys[i + 1] if layer.name in FROM_Y else ys[i], **layer.params)
        else:
            _, saved = L.dense(ys[i], layer.weight, layer.bias, activation=layer.activation,
                               return_saved=True, **layer.activation_params)
            gg, gw, gb = L.dense_backward(gg, ys[i], layer.weight, activation=layer.activation,
                                          saved=saved, **layer.activation_params)
            grads[f"{i}.weight"], grads[f"{i}.bias"] = gw, gb
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(gx, gg, rtol=tol, atol=tol)
    names = list(model.state_dict())
    assert names == ["0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias",
                     "6.weight", "6.bias"]
    for k, gr in zip(names, model.gradients()):
        np.testing.assert_allclose(gr, grads[k], rtol=tol, atol=tol, err_msg=k)


def test_sequential_nested_and_indexing():
    inner = nn.Sequential(nn.Dense(4, 4, dtype=np.float64, seed=0), nn.Activation("relu"))
    model = nn.Sequential(inner, nn.Dense(4, 2, dtype=np.float64, seed=1))
    assert list(model.state_dict()) == ["0.0.weight", "0.0.bias", "1.weight", "1.bias"]
    assert len(model) == 2 and model[0] is inner and list(model) == [inner, model[1]]
    x = _rng().standard_normal((3, 4))
    np.testing.assert_array_equal(model(x), model[1](inner(x)))
    y = model.forward(x, training=True)
    assert model.backward(np.ones_like(y)).shape == x.shape
    assert "Dense(4, 2" in repr(model)
    empty = nn.Sequential()
    np.testing.assert_array_equal(empty(x), x)


# ------------------------------------------------------------ PyTorch
def _torch_mlp(torch):
    tnn = torch.nn
    return tnn.Sequential(tnn.Embedding(11, 4, padding_idx=0), tnn.Flatten(),
                          tnn.Linear(12, 16), tnn.ReLU(), tnn.Linear(16, 8), tnn.Tanh(),
                          tnn.Linear(8, 5), tnn.GELU(), tnn.Linear(5, 3)).double()


def _mlkern_mlp():
    return nn.Sequential(nn.Embedding(11, 4, padding_idx=0, dtype=np.float64), nn.Flatten(),
                         nn.Dense(12, 16, dtype=np.float64), nn.Activation("relu"),
                         nn.Dense(16, 8, dtype=np.float64), nn.Activation("tanh"),
                         nn.Dense(8, 5, dtype=np.float64), nn.Activation("gelu"),
                         nn.Dense(5, 3, dtype=np.float64))


def test_pytorch_mlp_through_state_dict():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    tm = _torch_mlp(torch)
    model = _mlkern_mlp()
    sd = {k: v.numpy() for k, v in tm.state_dict().items()}
    assert set(sd) == set(model.state_dict())
    model.load_state_dict(sd)
    idx = _rng().integers(0, 11, (9, 3))
    idx[0, 0] = 0
    y = model(idx)
    ty = tm(torch.from_numpy(idx))
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-12, atol=1e-14)
    # gradients: a loss sum(y * r) through autograd
    r = _rng(1).standard_normal(y.shape)
    y = model.forward(idx, training=True)
    model.backward(r)
    (ty * torch.from_numpy(r)).sum().backward()
    tgrads = {k: p.grad.numpy() for k, p in tm.named_parameters()}
    names = list(model.state_dict())
    assert len(names) == len(model.gradients())
    for k, g in zip(names, model.gradients()):
        np.testing.assert_allclose(g, tgrads[k], rtol=1e-12, atol=1e-14, err_msg=k)
    # and back: mlkern's state dict loads into PyTorch
    tm2 = _torch_mlp(torch)
    tm2.load_state_dict({k: torch.from_numpy(v) for k, v in model.state_dict().items()})
    np.testing.assert_allclose(tm2(torch.from_numpy(idx)).detach().numpy(), model(idx),
                               rtol=1e-12, atol=1e-14)


def test_pytorch_dense_input_gradient_and_float32_load():
    torch = pytest.importorskip("torch")
    torch.manual_seed(1)
    tm = torch.nn.Sequential(torch.nn.Linear(7, 6), torch.nn.SiLU(), torch.nn.Linear(6, 4, bias=False),
                             torch.nn.Sigmoid()).double()
    model = nn.Sequential(nn.Dense(7, 6, dtype=np.float64), nn.Activation("silu"),
                          nn.Dense(6, 4, bias=False, dtype=np.float64), nn.Activation("sigmoid"))
    model.load_state_dict({k: v.numpy() for k, v in tm.state_dict().items()})
    x = _rng().standard_normal((5, 7))
    tx = torch.from_numpy(x).requires_grad_(True)
    r = _rng(2).standard_normal((5, 4))
    (tm(tx) * torch.from_numpy(r)).sum().backward()
    y = model.forward(x, training=True)
    np.testing.assert_allclose(y, tm(tx).detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(model.backward(r), tx.grad.numpy(), rtol=1e-12, atol=1e-15)
    # float64 values load into a float32 model as float32 (in place)
    m32 = nn.Sequential(nn.Dense(7, 6), nn.Activation("silu"), nn.Dense(6, 4, bias=False),
                        nn.Activation("sigmoid"))
    before = m32.parameters()
    m32.load_state_dict({k: v.numpy() for k, v in tm.state_dict().items()})
    assert all(a is b for a, b in zip(before, m32.parameters()))
    assert all(p.dtype == np.float32 for p in m32.parameters())
    np.testing.assert_allclose(m32(x.astype(np.float32)), y, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------ finite differences

def _fd4(fun, a, h=1e-3):
    return fd4_grad(fun, a, h)


def test_finite_differences_of_a_sequential():
    model = nn.Sequential(nn.Dense(4, 5, dtype=np.float64, seed=0), nn.Activation("tanh"),
                          nn.Dense(5, 4, activation="softplus", dtype=np.float64, seed=1),
                          nn.Flatten(0), nn.Activation("silu"))
    x = _rng().standard_normal((3, 4))
    r = _rng(1).standard_normal(12)

    def loss():
        return float(np.dot(model(x), r))

    model.forward(x, training=True)
    gx = model.backward(r)
    np.testing.assert_allclose(gx, _fd4(loss, x), rtol=1e-7, atol=1e-9)
    for p, g in zip(model.parameters(), model.gradients()):
        np.testing.assert_allclose(g, _fd4(loss, p), rtol=1e-7, atol=1e-9)


# ------------------------------------------------------------ initialisation
def test_seeded_initialisation_reproducible_and_bounded():
    a, b, c = (nn.Dense(400, 300, seed=s) for s in (5, 5, 6))
    np.testing.assert_array_equal(a.weight, b.weight)
    np.testing.assert_array_equal(a.bias, b.bias)
    assert not np.array_equal(a.weight, c.weight)
    bound = 1 / np.sqrt(400)
    for p in (a.weight, a.bias):
        assert p.dtype == np.float32
        assert np.abs(p).max() <= bound
    # U(-k, k): max near k, std k/sqrt(3), mean 0 (120 000 draws)
    w = a.weight.astype(np.float64)
    assert np.abs(w).max() > 0.999 * bound
    assert abs(w.std() - bound / np.sqrt(3)) < 0.01 * bound
    assert abs(w.mean()) < 0.01 * bound
    e1, e2 = nn.Embedding(500, 64, seed=2, dtype=np.float64), nn.Embedding(500, 64, seed=2)
    np.testing.assert_array_equal(e1.weight.astype(np.float32), e2.weight)
    assert abs(e1.weight.mean()) < 0.02 and abs(e1.weight.std() - 1) < 0.02
    rng = np.random.default_rng(9)
    assert nn.Dense(3, 2, seed=rng).weight.shape == (2, 3)      # a Generator is accepted
    # unseeded layers differ
    assert not np.array_equal(nn.Dense(20, 20).weight, nn.Dense(20, 20).weight)


# ------------------------------------------------------------ training with the optimisers
def _spiral(n=300, seed=0):
    rng = np.random.default_rng(seed)
    k = np.repeat(np.arange(3), n // 3)
    t = rng.uniform(0.1, 1.0, n)
    ang = k * 2 * np.pi / 3 + 4 * t + rng.normal(0, 0.1, n)
    x = np.stack([t * np.cos(ang), t * np.sin(ang)], 1).astype(np.float32)
    return x, k


@pytest.mark.parametrize("opt_cls,kw,epochs", [(optim.Adam, {"lr": 0.01}, 300),
                                               (optim.SGD, {"lr": 0.5}, 600)])
def test_optimiser_trains_an_mlp(opt_cls, kw, epochs):
    x, k = _spiral()
    model = nn.Sequential(nn.Dense(2, 32, seed=0), nn.Activation("relu"),
                          nn.Dense(32, 32, activation="tanh", seed=1), nn.Dense(32, 3, seed=2))
    opt = opt_cls(model.parameters(), **kw)
    loss0 = float(mlkern.cross_entropy(model(x), k))
    for _ in range(epochs):
        logits = model.forward(x, training=True)
        _, g = mlkern.cross_entropy_with_grad(logits, k)
        model.backward(g)
        opt.step(model.gradients())
    loss1 = float(mlkern.cross_entropy(model(x), k))
    acc = float((model(x).argmax(1) == k).mean())
    assert loss1 < loss0 / 5, (loss0, loss1)
    assert acc > 0.9, acc


# ------------------------------------------------------------ bad input
def test_bad_constructor_arguments():
    with pytest.raises(TypeError, match="dtype"):
        nn.Dense(3, 2, dtype=np.float16)
    with pytest.raises(TypeError, match="dtype"):
        nn.Embedding(3, 2, dtype=np.int64)
    with pytest.raises(ValueError, match="in_features"):
        nn.Dense(-1, 2)
    with pytest.raises(TypeError, match="out_features"):
        nn.Dense(3, 2.0)
    with pytest.raises(ValueError, match="prelu"):
        nn.Dense(3, 2, activation="prelu")
    with pytest.raises(ValueError, match="noisy_relu"):
        nn.Activation("noisy_relu")
    with pytest.raises(ValueError, match="relux"):
        nn.Activation("relux")
    with pytest.raises(TypeError, match="alpha"):
        nn.Activation("relu", alpha=1.0)
    with pytest.raises(ValueError, match="approximate"):
        nn.Activation("gelu", approximate="fast")
    with pytest.raises(TypeError, match="activation=None"):
        nn.Dense(3, 2, negative_slope=0.1)
    with pytest.raises(ValueError, match="padding_idx"):
        nn.Embedding(5, 2, padding_idx=5)
    with pytest.raises(TypeError, match="layers\\[1\\]"):
        nn.Sequential(nn.Dense(2, 2), np.zeros(3))


def test_bad_forward_backward_input():
    layer = nn.Dense(3, 2)
    with pytest.raises(ValueError, match="features"):
        layer(np.zeros((4, 5), np.float32))
    with pytest.raises(TypeError, match="float64"):
        layer(np.zeros((4, 3)))                      # float64 into a float32 model: no promotion
    with pytest.raises(TypeError, match="complex"):
        layer(np.zeros((4, 3), np.complex64))
    with pytest.raises(RuntimeError, match="training=True"):
        nn.Dense(3, 2).backward(np.zeros((4, 2), np.float32))
    layer.forward(np.zeros((4, 3), np.float32), training=True)
    with pytest.raises(ValueError, match="grad_output"):
        layer.backward(np.zeros((4, 3), np.float32))
    with pytest.raises(TypeError, match="training"):
        layer.forward(np.zeros((4, 3), np.float32), training="yes")
    emb = nn.Embedding(4, 2)
    with pytest.raises(ValueError, match="indices"):
        emb(np.array([0, 4]))
    model = nn.Sequential(nn.Dense(3, 4), nn.Activation("relu"), nn.Dense(4, 2))
    with pytest.raises(ValueError, match="features"):
        model(np.zeros((2, 4), np.float32))
    # an int input takes the model's dtype
    assert model(np.ones((2, 3), np.int64)).dtype == np.float32


def test_load_state_dict_errors_name_the_key_and_shapes():
    model = nn.Sequential(nn.Dense(3, 4), nn.Activation("relu"), nn.Dense(4, 2))
    good = {k: np.zeros(v.shape) for k, v in model.state_dict().items()}
    before = model.state_dict()
    bad = dict(good, **{"2.weight": np.zeros((2, 5))})
    with pytest.raises(ValueError, match=r"'2\.weight'.*\(2, 5\).*\(2, 4\)"):
        model.load_state_dict(bad)
    for k, v in model.state_dict().items():                 # nothing copied
        np.testing.assert_array_equal(v, before[k])
    with pytest.raises(ValueError, match=r"missing keys \['0\.bias'\]"):
        model.load_state_dict({k: v for k, v in good.items() if k != "0.bias"})
    with pytest.raises(ValueError, match=r"unexpected keys \['1\.weight'\]"):
        model.load_state_dict(dict(good, **{"1.weight": np.zeros(3)}))
    with pytest.raises(TypeError, match="complex"):
        model.load_state_dict(dict(good, **{"0.bias": np.zeros(4, np.complex128)}))
    with pytest.raises(TypeError, match="mapping"):
        model.load_state_dict([("0.weight", np.zeros((4, 3)))])
    model.load_state_dict(good)
    assert all(not p.any() and p.dtype == np.float32 for p in model.parameters())


# ------------------------------------------------------------ inference: allocations, threads
@pytest.mark.parametrize("batch", [1, 64])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_warm_inference_allocates_only_the_output(batch, dtype):
    model = nn.Sequential(nn.Dense(100, 256, dtype=dtype, seed=0), nn.Activation("relu"),
                          nn.Dense(256, 256, dtype=dtype, seed=1), nn.Activation("gelu"),
                          nn.Dense(256, 64, activation="tanh", dtype=dtype, seed=2),
                          nn.Activation("softplus"), nn.Dense(64, 10, dtype=dtype, seed=3))
    x = _rng().standard_normal((batch, 100)).astype(dtype)
    ref = _unfused(model, x)[-1]
    for _ in range(3):
        model(x)
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        y = model(x)
        cur, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    out = y.nbytes
    slack = 1024
    assert cur - base <= out + slack, (cur - base, out)
    # the intermediates (256 columns: >= 4x the output) are not allocated again
    assert peak - base <= out + slack, (peak - base, out)
    np.testing.assert_array_equal(y, ref)


def test_inference_from_several_threads():
    model = _mlp(np.float64)
    xs = [_rng(s).standard_normal((8, 6)) for s in range(4)]
    refs = [_unfused(model, x)[-1] for x in xs]
    errors = []

    def run(i):
        for _ in range(50):
            if not np.array_equal(model(xs[i]), refs[i]):
                errors.append(i)

    ts = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors


def test_changing_batch_size_reuses_nothing_stale():
    model = _mlp(np.float32)
    for b in (5, 1, 5, 7, 1):
        x = _rng(b).standard_normal((b, 6)).astype(np.float32)
        np.testing.assert_array_equal(model(x), _unfused(model, x)[-1])
        y = model(x)
        assert y.shape == (b, 2)
        y2 = model(x)
        assert y2 is not y and not np.shares_memory(y, y2)     # outputs are the caller's


def test_dense_and_activation_run_as_one_fused_call(monkeypatch):
    model = nn.Sequential(nn.Dense(5, 6, dtype=np.float64, seed=0), nn.Activation("relu"),
                          nn.Dense(6, 4, activation="tanh", dtype=np.float64, seed=1),
                          nn.Activation("silu"), nn.Dense(4, 3, dtype=np.float64, seed=2),
                          nn.Activation("elu", alpha=0.5))
    calls = []
    real_dense, real_backward = L.dense, L.dense_backward

    def dense(*a, **k):
        calls.append(("dense", k.get("activation"), bool(k.get("return_saved"))))
        return real_dense(*a, **k)

    def dense_backward(*a, **k):
        calls.append(("dense_backward", k.get("activation")))
        return real_backward(*a, **k)

    monkeypatch.setattr(L, "dense", dense)
    monkeypatch.setattr(L, "dense_backward", dense_backward)
    x = _rng().standard_normal((3, 5))
    y = model(x)
    # Dense(relu fused), Dense(own tanh) then silu alone, Dense(elu fused)
    assert calls == [("dense", "relu", False), ("dense", "tanh", False), ("dense", "elu", False)]
    calls.clear()
    np.testing.assert_array_equal(model.forward(x, training=True), y)
    assert calls == [("dense", "relu", True), ("dense", "tanh", True), ("dense", "elu", True)]
    calls.clear()
    model.backward(np.ones_like(y))
    assert calls == [("dense_backward", "elu"), ("dense_backward", "tanh"),
                     ("dense_backward", "relu")]


def test_list_input_and_a_layer_used_twice():
    model = _mlp(np.float64)
    for b in (2, 3, 2):
        x = _rng(b).standard_normal((b, 6))
        np.testing.assert_array_equal(model(x.tolist()), _unfused(model, x)[-1])
    d = nn.Dense(3, 3)
    with pytest.raises(ValueError, match=r"layers\[0\].*layers\[2\]"):
        nn.Sequential(d, nn.Activation("relu"), d)
    with pytest.raises(ValueError, match=r"layers\[1\]\[0\]"):
        nn.Sequential(d, nn.Sequential(d))


# ------------------------------------------------------------ recurrent layers
REC = {"rnn": (nn.SimpleRNN, L.rnn, L.rnn_backward, 1), "lstm": (nn.LSTM, L.lstm, L.lstm_backward, 4),
       "gru": (nn.GRU, L.gru, L.gru_backward, 3)}
REC_NAMES = ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"]


def _rec_layer(kind, I, H, **kw):
    cls = REC[kind][0]
    if kind == "rnn" and "nonlinearity" not in kw:
        kw["nonlinearity"] = "relu"
    elif kind != "rnn":
        kw.pop("nonlinearity", None)
    return cls(I, H, **kw)


def _rec_functional(kind, layer, x, h0=None, c0=None, return_saved=False):
    f = REC[kind][1]
    ps = [layer.weight_ih_l0, layer.weight_hh_l0, layer.bias_ih_l0, layer.bias_hh_l0]
    kw = {"batch_first": layer.batch_first, "return_saved": return_saved}
    if kind == "rnn":
        kw["nonlinearity"] = layer.nonlinearity
    args = [x, h0] + ([c0] if kind == "lstm" else []) + ps
    return f(*args, **kw)


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("return_sequences", [True, False])
def test_recurrent_matches_functional(kind, dtype, batch_first, return_sequences):
    I, H, T, N = 5, 4, 6, 3
    layer = _rec_layer(kind, I, H, batch_first=batch_first, return_sequences=return_sequences,
                       dtype=dtype, seed=2)
    G = REC[kind][3]
    assert [p.shape for p in layer.parameters()] == [(G * H, I), (G * H, H), (G * H,), (G * H,)]
    assert list(layer.state_dict()) == REC_NAMES
    x = _rng().standard_normal((N, T, I) if batch_first else (T, N, I)).astype(dtype)
    res = _rec_functional(kind, layer, x)
    y = layer(x)
    assert y.dtype == dtype
    last = res[1][0] if kind == "lstm" else res[1]
    np.testing.assert_array_equal(y, res[0] if return_sequences else last)
    np.testing.assert_array_equal(layer.h_n, last)
    if kind == "lstm":
        np.testing.assert_array_equal(layer.c_n, res[1][1])
    else:
        assert layer.c_n is None
    # training forward + backward = the functional forward + *_backward
    yt = layer.forward(x, training=True)
    np.testing.assert_array_equal(yt, y)
    g = _rng(1).standard_normal(y.shape).astype(dtype)
    grads_before = layer.gradients()
    gx = layer.backward(g)
    saved = _rec_functional(kind, layer, x, return_saved=True)[-1]
    incoming = [g, None] if return_sequences else [None, g]
    if kind == "lstm":
        incoming.append(None)
    ref = REC[kind][2](*incoming, saved)
    np.testing.assert_array_equal(gx, ref[0])
    off = 3 if kind == "lstm" else 2
    for got, want, before in zip(layer.gradients(), ref[off:], grads_before):
        assert got is before                                     # written in place
        np.testing.assert_array_equal(got, want)
    assert layer.grad_h0 is None and layer.grad_c0 is None      # no hx given


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_recurrent_initial_state_and_its_gradient(kind):
    I, H, T, N = 3, 5, 4, 2
    layer = _rec_layer(kind, I, H, dtype=np.float64, seed=4)
    x = _rng().standard_normal((T, N, I))
    h0, c0 = _rng(1).standard_normal((N, H)), _rng(2).standard_normal((N, H))
    hx = (h0, c0) if kind == "lstm" else h0
    res = _rec_functional(kind, layer, x, h0, c0 if kind == "lstm" else None, return_saved=True)
    np.testing.assert_array_equal(layer(x, hx), res[0])
    y = layer.forward(x, hx, training=True)
    g = _rng(3).standard_normal(y.shape)
    layer.backward(g)
    ref = REC[kind][2](*([g, None, None] if kind == "lstm" else [g, None]), res[-1])
    np.testing.assert_array_equal(layer.grad_h0, ref[1])
    if kind == "lstm":
        np.testing.assert_array_equal(layer.grad_c0, ref[2])
    with pytest.raises(ValueError, match="h0"):
        layer(x, (np.zeros((N + 1, H)), np.zeros((N, H))) if kind == "lstm" else np.zeros((N + 1, H)))
    if kind == "lstm":
        with pytest.raises(TypeError, match="hx"):
            layer(x, h0)


def _torch_rec(torch, kind, I, H, **kw):
    cls = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[kind]
    if kind == "rnn":
        kw["nonlinearity"] = "relu"
    return cls(I, H, **kw).double()


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("bias", [True, False])
def test_recurrent_vs_pytorch_through_state_dict(kind, batch_first, bias):
    torch = pytest.importorskip("torch")
    torch.manual_seed(3)
    I, H, T, N = 4, 6, 7, 3
    tm = _torch_rec(torch, kind, I, H, batch_first=batch_first, bias=bias)
    layer = _rec_layer(kind, I, H, batch_first=batch_first, bias=bias, dtype=np.float64)
    sd = {k: v.numpy() for k, v in tm.state_dict().items()}
    assert list(sd) == list(layer.state_dict())
    layer.load_state_dict(sd)
    x = _rng().standard_normal((N, T, I) if batch_first else (T, N, I))
    h0, c0 = _rng(4).standard_normal((N, H)), _rng(5).standard_normal((N, H))
    tx = torch.from_numpy(x).requires_grad_(True)
    th0 = torch.from_numpy(h0[None]).requires_grad_(True)
    tc0 = torch.from_numpy(c0[None]).requires_grad_(True)
    ty, th = tm(tx, (th0, tc0) if kind == "lstm" else th0)
    y = layer.forward(x, (h0, c0) if kind == "lstm" else h0, training=True)
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-12, atol=1e-14)
    if kind == "lstm":
        np.testing.assert_allclose(layer.h_n, th[0][0].detach().numpy(), rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(layer.c_n, th[1][0].detach().numpy(), rtol=1e-12, atol=1e-14)
    else:
        np.testing.assert_allclose(layer.h_n, th[0].detach().numpy(), rtol=1e-12, atol=1e-14)
    r = _rng(1).standard_normal(y.shape)
    (ty * torch.from_numpy(r)).sum().backward()
    gx = layer.backward(r)
    np.testing.assert_allclose(gx, tx.grad.numpy(), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(layer.grad_h0, th0.grad.numpy()[0], rtol=1e-12, atol=1e-13)
    if kind == "lstm":
        np.testing.assert_allclose(layer.grad_c0, tc0.grad.numpy()[0], rtol=1e-12, atol=1e-13)
    tgrads = {k: p.grad.numpy() for k, p in tm.named_parameters()}
    for k, g in zip(layer.state_dict(), layer.gradients()):
        np.testing.assert_allclose(g, tgrads[k], rtol=1e-12, atol=1e-13, err_msg=k)


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_recurrent_classifier_vs_pytorch(kind):
    """A last-step classifier: Sequential(LSTM(return_sequences=False), Dense) against
    PyTorch's ``fc(lstm(x)[0][:, -1])``."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(7)
    I, H, T, N, C = 8, 10, 8, 5, 4

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.rec = _torch_rec(torch, kind, I, H, batch_first=True)
            self.fc = torch.nn.Linear(H, C).double()

        def forward(self, x):
            return self.fc(self.rec(x)[0][:, -1])

    tm = Net()
    model = nn.Sequential(_rec_layer(kind, I, H, batch_first=True, return_sequences=False,
                                     dtype=np.float64), nn.Dense(H, C, dtype=np.float64))
    rename = {"rec.": "0.", "fc.": "1."}
    sd = {rename[k[:k.index(".") + 1]] + k[k.index(".") + 1:]: v.numpy()
          for k, v in tm.state_dict().items()}
    model.load_state_dict(sd)
    x = _rng().standard_normal((N, T, I))
    tx = torch.from_numpy(x).requires_grad_(True)
    ty = tm(tx)
    for _ in range(2):                                   # inference twice: the workspaces
        np.testing.assert_allclose(model(x), ty.detach().numpy(), rtol=1e-12, atol=1e-14)
    labels = np.arange(N) % C
    logits = model.forward(x, training=True)
    loss, g = mlkern.cross_entropy_with_grad(logits, labels)
    tloss = torch.nn.functional.cross_entropy(ty, torch.from_numpy(labels))
    tloss.backward()
    assert float(loss) == pytest.approx(float(tloss.detach()), rel=1e-12)
    np.testing.assert_allclose(model.backward(g), tx.grad.numpy(), rtol=1e-12, atol=1e-14)
    tgrads = {k: p.grad.numpy() for k, p in tm.named_parameters()}
    for k, gr in zip(model.state_dict(), model.gradients()):
        tk = {"0.": "rec.", "1.": "fc."}[k[:2]] + k[2:]
        np.testing.assert_allclose(gr, tgrads[tk], rtol=1e-12, atol=1e-14, err_msg=k)


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_recurrent_finite_differences_in_a_sequential(kind):
    model = nn.Sequential(_rec_layer(kind, 3, 4, nonlinearity="tanh", dtype=np.float64, seed=0),
                          nn.Dense(4, 2, activation="tanh", dtype=np.float64, seed=1))
    x = _rng().standard_normal((5, 2, 3))
    r = _rng(1).standard_normal((5, 2, 2))

    def loss():
        return float(np.sum(model(x) * r))

    model.forward(x, training=True)
    gx = model.backward(r)
    np.testing.assert_allclose(gx, _fd4(loss, x), rtol=1e-7, atol=1e-9)
    for p, g in zip(model.parameters(), model.gradients()):
        np.testing.assert_allclose(g, _fd4(loss, p), rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_recurrent_seeded_initialisation(kind):
    cls, G = REC[kind][0], REC[kind][3]
    a, b, c = cls(30, 200, seed=1), cls(30, 200, seed=1), cls(30, 200, seed=2)
    for p, q, s in zip(a.parameters(), b.parameters(), c.parameters()):
        np.testing.assert_array_equal(p, q)
        assert not np.array_equal(p, s)
    bound = 1 / np.sqrt(200)
    w = a.weight_hh_l0.astype(np.float64)
    assert w.shape == (G * 200, 200) and w.dtype == np.float64
    assert all(np.abs(p).max() <= bound for p in a.parameters())
    assert np.abs(w).max() > 0.999 * bound
    assert abs(w.std() - bound / np.sqrt(3)) < 0.01 * bound and abs(w.mean()) < 0.01 * bound
    d = cls(3, 4, seed=1, dtype=np.float64)
    assert all(p.dtype == np.float64 for p in d.parameters() + d.gradients())
    e = cls(3, 4, bias=False)
    assert list(e.state_dict()) == REC_NAMES[:2] and len(e.gradients()) == 2


def test_recurrent_trains_with_an_optimiser():
    # the sign of the sum of a sequence: a GRU + Dense classifier learns it
    rng = _rng(0)
    x = rng.standard_normal((200, 6, 1)).astype(np.float32)
    k = (x.sum(axis=(1, 2)) > 0).astype(np.int64)
    model = nn.Sequential(nn.GRU(1, 8, batch_first=True, return_sequences=False, seed=0),
                          nn.Dense(8, 2, seed=1))
    opt = optim.Adam(model.parameters(), lr=0.02)
    loss0 = float(mlkern.cross_entropy(model(x), k))
    for _ in range(150):
        _, g = mlkern.cross_entropy_with_grad(model.forward(x, training=True), k)
        model.backward(g)
        opt.step(model.gradients())
    assert float(mlkern.cross_entropy(model(x), k)) < loss0 / 4
    assert float((model(x).argmax(1) == k).mean()) > 0.9


def test_recurrent_bad_arguments():
    with pytest.raises(ValueError, match="nonlinearity"):
        nn.SimpleRNN(3, 4, nonlinearity="sigmoid")
    with pytest.raises(TypeError, match="batch_first"):
        nn.LSTM(3, 4, batch_first="yes")
    with pytest.raises(TypeError, match="return_sequences"):
        nn.GRU(3, 4, return_sequences=None)
    with pytest.raises(ValueError, match="hidden_size"):
        nn.GRU(3, -4)
    with pytest.raises(TypeError, match="input_size"):
        nn.LSTM(3.0, 4)
    with pytest.raises(TypeError, match="dtype"):
        nn.LSTM(3, 4, dtype=np.int32)
    layer = nn.LSTM(3, 4)
    with pytest.raises(ValueError, match="x must have shape"):
        layer(np.zeros((2, 5, 4), np.float32))
    with pytest.raises(TypeError, match="float64"):
        layer(np.zeros((2, 5, 3)))
    with pytest.raises(RuntimeError, match="training=True"):
        layer.backward(np.zeros((2, 5, 4), np.float32))
    layer.forward(np.zeros((2, 5, 3), np.float32), training=True)
    with pytest.raises(ValueError, match="grad_output"):
        layer.backward(np.zeros((2, 5, 3), np.float32))
    with pytest.raises(TypeError, match="grad_output"):
        layer.backward(np.zeros((2, 5, 4)))
    with pytest.raises(ValueError, match=r"'weight_hh_l0'.*\(16, 5\).*\(16, 4\)"):
        layer.load_state_dict(dict(layer.state_dict(), weight_hh_l0=np.zeros((16, 5))))
    with pytest.raises(ValueError, match=r"missing keys \['bias_hh_l0'\]"):
        layer.load_state_dict({k: v for k, v in layer.state_dict().items() if k != "bias_hh_l0"})
    with pytest.raises(ValueError, match=r"unexpected keys \['bias_ih_l0', 'bias_hh_l0'\]"):
        nn.LSTM(3, 4, bias=False).load_state_dict(layer.state_dict())


# ------------------------------------------------------------ convolution, pooling, locally connected
def _act_fwd_bwd(act, z, g):
    """y = act(z) and the gradient of z, through the activation functions."""
    if act is None:
        return z, g
    y = getattr(mlkern, act)(z)
    return y, getattr(mlkern, act + "_backward")(g, y if act in FROM_Y else z)


@pytest.mark.parametrize("nd", [1, 2])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cfg", [
    dict(), dict(stride=2, padding=1, bias=False, activation="relu"),
    dict(padding="same", dilation=2, groups=2, activation="tanh"),
    dict(stride=(2, 1), padding=(1, 0), activation="gelu"), dict(layout="last", activation="silu"),
    dict(layout="last", groups=2, stride=2, padding="valid")])
def test_conv_matches_functional(nd, dtype, cfg):
    cfg = dict(cfg)
    if nd == 1:
        cfg = {k: (v[0] if isinstance(v, tuple) else v) for k, v in cfg.items()}
    last = cfg.pop("layout", None) == "last"
    layout = ("NLC" if nd == 1 else "NHWC") if last else ("NCL" if nd == 1 else "NCHW")
    act = cfg.pop("activation", None)
    cls, f, fb = ((nn.Conv1D, L.conv1d, L.conv1d_backward) if nd == 1 else
                  (nn.Conv2D, L.conv2d, L.conv2d_backward))
    layer = cls(4, 6, 3, activation=act, layout=layout, dtype=dtype, seed=1, **cfg)
    kw = {k: v for k, v in cfg.items() if k != "bias"}
    kw["layout"] = layout
    sp = (9,) if nd == 1 else (9, 7)
    x = _rng().standard_normal((2,) + (sp + (4,) if last else (4,) + sp)).astype(dtype)
    z = f(x, layer.weight, layer.bias, **kw)
    g = _rng(1).standard_normal(z.shape).astype(dtype)
    yref, gz = _act_fwd_bwd(act, z, g)
    y = layer(x)
    assert y.dtype == dtype
    np.testing.assert_array_equal(y, yref)
    np.testing.assert_array_equal(layer.forward(x, training=True), yref)
    gw_arr = layer.grad_weight
    gx = layer.backward(g)
    rgx, rgw, rgb = fb(gz, x, layer.weight, has_bias=layer.bias is not None, **kw)
    np.testing.assert_array_equal(gx, rgx)
    assert layer.gradients()[0] is gw_arr
    np.testing.assert_array_equal(gw_arr, rgw)
    if layer.bias is not None:
        np.testing.assert_array_equal(layer.gradients()[1], rgb)
    else:
        assert rgb is None and len(layer.parameters()) == 1


@pytest.mark.parametrize("nd", [1, 2])
@pytest.mark.parametrize("cfg", [dict(), dict(stride=2, padding=1, dilation=2, groups=3, bias=False),
                                 dict(padding="same"), dict(layout="last", stride=2)])
def test_conv_vs_pytorch_through_state_dict(nd, cfg):
    torch = pytest.importorskip("torch")
    torch.manual_seed(2)
    cfg = dict(cfg)
    last = cfg.pop("layout", None) == "last"
    layout = ("NLC" if nd == 1 else "NHWC") if last else ("NCL" if nd == 1 else "NCHW")
    tcls = torch.nn.Conv1d if nd == 1 else torch.nn.Conv2d
    tm = tcls(3, 6, 3, **cfg).double()
    layer = (nn.Conv1D if nd == 1 else nn.Conv2D)(3, 6, 3, layout=layout, dtype=np.float64, **cfg)
    sd = {k: v.numpy() for k, v in tm.state_dict().items()}
    assert list(sd) == list(layer.state_dict())
    layer.load_state_dict(sd)
    sp = (11,) if nd == 1 else (10, 8)
    xt = _rng().standard_normal((2, 3) + sp)              # PyTorch's layout
    x = np.ascontiguousarray(np.moveaxis(xt, 1, -1)) if last else xt
    tx = torch.from_numpy(xt).requires_grad_(True)
    ty = tm(tx)
    y = layer.forward(x, training=True)
    yt = np.moveaxis(y, -1, 1) if last else y
    np.testing.assert_allclose(yt, ty.detach().numpy(), rtol=1e-12, atol=1e-13)
    r = _rng(1).standard_normal(yt.shape)
    (ty * torch.from_numpy(r)).sum().backward()
    gx = layer.backward(np.ascontiguousarray(np.moveaxis(r, 1, -1)) if last else r)
    np.testing.assert_allclose(np.moveaxis(gx, -1, 1) if last else gx, tx.grad.numpy(), rtol=1e-12,
                               atol=1e-13)
    tgrads = {k: p.grad.numpy() for k, p in tm.named_parameters()}
    for k, g in zip(layer.state_dict(), layer.gradients()):
        np.testing.assert_allclose(g, tgrads[k], rtol=1e-12, atol=1e-13, err_msg=k)


@pytest.mark.parametrize("cls,args,fan_in", [(nn.Conv2D, (6, 40, (3, 5)), 90), (nn.Conv1D, (8, 30, 7), 56)])
def test_conv_seeded_initialisation(cls, args, fan_in):
    a, b, c = cls(*args, seed=3), cls(*args, seed=3), cls(*args, seed=4)
    for p, q, s in zip(a.parameters(), b.parameters(), c.parameters()):
        np.testing.assert_array_equal(p, q)
        assert not np.array_equal(p, s)
    bound = 1 / np.sqrt(fan_in)
    w = a.weight.astype(np.float64)
    assert all(np.abs(p).max() <= bound for p in a.parameters())
    assert np.abs(w).max() > 0.99 * bound and abs(w.std() - bound / np.sqrt(3)) < 0.03 * bound


def test_conv_bad_arguments():
    with pytest.raises(ValueError, match="groups"):
        nn.Conv2D(4, 6, 3, groups=4)
    with pytest.raises(ValueError, match="kernel_size"):
        nn.Conv2D(4, 6, 0)
    with pytest.raises(ValueError, match="kernel_size"):
        nn.Conv2D(4, 6, (3, 3, 3))
    with pytest.raises(TypeError, match="kernel_size"):
        nn.Conv1D(4, 6, 2.5)
    with pytest.raises(ValueError, match="layout"):
        nn.Conv2D(4, 6, 3, layout="NCL")
    with pytest.raises(ValueError, match="same"):
        nn.Conv2D(4, 6, 3, padding="same", stride=2)
    with pytest.raises(ValueError, match="stride"):
        nn.Conv1D(4, 6, 3, stride=0)
    with pytest.raises(ValueError, match="prelu"):
        nn.Conv2D(4, 6, 3, activation="prelu")
    with pytest.raises(TypeError, match="dtype"):
        nn.Conv2D(4, 6, 3, dtype=np.float16)
    conv = nn.Conv2D(3, 4, 3)
    with pytest.raises(ValueError, match="channels"):
        conv(np.zeros((2, 4, 8, 8), np.float32))
    with pytest.raises(TypeError, match="float64"):
        conv(np.zeros((2, 3, 8, 8)))
    conv.forward(np.zeros((2, 3, 8, 8), np.float32), training=True)
    with pytest.raises(ValueError, match="grad_output"):
        conv.backward(np.zeros((2, 4, 7, 7), np.float32))
    with pytest.raises(ValueError, match=r"'0\.weight'.*\(4, 3, 3, 3\).*\(4, 3, 5, 5\)"):
        nn.Sequential(nn.Conv2D(3, 4, 5)).load_state_dict({"0.weight": np.zeros((4, 3, 3, 3)),
                                                           "0.bias": np.zeros(4)})


def test_conv_trains_with_an_optimiser():
    rng = _rng(0)
    x = rng.standard_normal((120, 1, 6, 6)).astype(np.float32)
    k = (x[:, 0, :3].sum(axis=(1, 2)) > x[:, 0, 3:].sum(axis=(1, 2))).astype(np.int64)
    model = nn.Sequential(nn.Conv2D(1, 4, 3, stride=2, padding=1, activation="relu", seed=0),
                          nn.Flatten(), nn.Dense(36, 2, seed=1))
    opt = optim.Adam(model.parameters(), lr=0.01)
    loss0 = float(mlkern.cross_entropy(model(x), k))
    for _ in range(150):
        _, g = mlkern.cross_entropy_with_grad(model.forward(x, training=True), k)
        model.backward(g)
        opt.step(model.gradients())
    assert float(mlkern.cross_entropy(model(x), k)) < loss0 / 4
    assert float((model(x).argmax(1) == k).mean()) > 0.9


@pytest.mark.parametrize("nd", [1, 2])
@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("cfg", [dict(), dict(stride=1, padding=1, ceil_mode=True), dict(layout="last")])
def test_pool_matches_functional_and_pytorch(nd, kind, cfg):
    cfg = dict(cfg)
    last = cfg.pop("layout", None) == "last"
    layout = ("NLC" if nd == 1 else "NHWC") if last else ("NCL" if nd == 1 else "NCHW")
    name = f"{kind}_pool{nd}d"
    cls = getattr(nn, f"{kind.capitalize()}Pool{nd}D")
    layer = cls(3, layout=layout, **cfg)
    assert layer.parameters() == [] and layer.state_dict() == {}
    sp = (10,) if nd == 1 else (9, 8)
    xt = _rng().standard_normal((2, 3) + sp)
    x = np.ascontiguousarray(np.moveaxis(xt, 1, -1)) if last else xt
    f, fb = getattr(L, name), getattr(L, name + "_backward")
    y = layer(x)
    np.testing.assert_array_equal(y, f(x, 3, layout=layout, **cfg))
    np.testing.assert_array_equal(layer.forward(x, training=True), y)
    g = _rng(1).standard_normal(y.shape)
    gx = layer.backward(g)
    if kind == "max":
        _, idx = f(x, 3, return_indices=True, layout=layout, **cfg)
        np.testing.assert_array_equal(gx, fb(g, idx, x.shape, layout=layout))
    else:
        np.testing.assert_array_equal(gx, fb(g, x.shape, 3, layout=layout, **cfg))
    torch = pytest.importorskip("torch")
    tm = getattr(torch.nn, f"{kind.capitalize()}Pool{nd}d")(3, **cfg)
    tx = torch.from_numpy(xt).requires_grad_(True)
    ty = tm(tx)
    gt = np.moveaxis(g, -1, 1) if last else g
    (ty * torch.from_numpy(np.ascontiguousarray(gt))).sum().backward()
    np.testing.assert_allclose(np.moveaxis(y, -1, 1) if last else y, ty.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(np.moveaxis(gx, -1, 1) if last else gx, tx.grad.numpy(), rtol=1e-12,
                               atol=1e-15)


def _torch_cnn(torch):
    return torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU(),
                               torch.nn.MaxPool2d(2), torch.nn.Conv2d(8, 6, 3, groups=2),
                               torch.nn.Tanh(), torch.nn.AvgPool2d(2, ceil_mode=True),
                               torch.nn.Flatten(), torch.nn.Linear(6, 5)).double()


def _mlkern_cnn(layout="NCHW"):
    return nn.Sequential(nn.Conv2D(1, 8, 3, padding=1, layout=layout, dtype=np.float64),
                         nn.Activation("relu"), nn.MaxPool2D(2, layout=layout),
                         nn.Conv2D(8, 6, 3, groups=2, layout=layout, dtype=np.float64),
                         nn.Activation("tanh"), nn.AvgPool2D(2, ceil_mode=True, layout=layout),
                         nn.Flatten(), nn.Dense(6, 5, dtype=np.float64))


def test_pytorch_cnn_through_state_dict():
    torch = pytest.importorskip("torch")
    torch.manual_seed(4)
    tm = _torch_cnn(torch)
    model = _mlkern_cnn()
    sd = {k: v.numpy() for k, v in tm.state_dict().items()}
    assert list(sd) == list(model.state_dict())
    model.load_state_dict(sd)
    x = _rng().standard_normal((4, 1, 8, 8))
    tx = torch.from_numpy(x).requires_grad_(True)
    ty = tm(tx)
    for _ in range(2):                                   # inference, cold then warm workspaces
        np.testing.assert_allclose(model(x), ty.detach().numpy(), rtol=1e-12, atol=1e-14)
    r = _rng(1).standard_normal(ty.shape)
    (ty * torch.from_numpy(r)).sum().backward()
    y = model.forward(x, training=True)
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(model.backward(r), tx.grad.numpy(), rtol=1e-12, atol=1e-14)
    tgrads = {k: p.grad.numpy() for k, p in tm.named_parameters()}
    for k, g in zip(model.state_dict(), model.gradients()):
        np.testing.assert_allclose(g, tgrads[k], rtol=1e-12, atol=1e-14, err_msg=k)
    # channels last: the same numbers (the weights keep PyTorch's layout)
    m2 = _mlkern_cnn("NHWC")
    m2.load_state_dict(sd)
    xl = np.ascontiguousarray(np.moveaxis(x, 1, -1))
    # Flatten of NHWC orders the features (h, w, c): equal here as the map is 1x1 before it
    np.testing.assert_allclose(m2(xl), ty.detach().numpy(), rtol=1e-12, atol=1e-14)


def test_cnn_inference_reuses_workspaces_correctly():
    model = _mlkern_cnn()
    for b in (3, 1, 3, 5):
        x = _rng(b).standard_normal((b, 1, 8, 8))
        ref = _unfused(model, x)[-1]
        y1, y2 = model(x), model(x)
        np.testing.assert_array_equal(y1, ref)
        np.testing.assert_array_equal(y2, ref)
        assert not np.shares_memory(y1, y2)


def test_cnn_trains_with_an_optimiser():
    rng = _rng(0)
    x = rng.standard_normal((120, 1, 6, 6)).astype(np.float32)
    k = (x[:, 0, :3].sum(axis=(1, 2)) > x[:, 0, 3:].sum(axis=(1, 2))).astype(np.int64)
    model = nn.Sequential(nn.Conv2D(1, 4, 3, padding=1, activation="relu", seed=0), nn.MaxPool2D(2),
                          nn.Flatten(), nn.Dense(36, 2, seed=1))
    opt = optim.Adam(model.parameters(), lr=0.01)
    loss0 = float(mlkern.cross_entropy(model(x), k))
    for _ in range(150):
        _, g = mlkern.cross_entropy_with_grad(model.forward(x, training=True), k)
        model.backward(g)
        opt.step(model.gradients())
    assert float(mlkern.cross_entropy(model(x), k)) < loss0 / 4
    assert float((model(x).argmax(1) == k).mean()) > 0.9


def test_pool_bad_arguments():
    with pytest.raises(ValueError, match="padding"):
        nn.MaxPool2D(2, padding=2)
    with pytest.raises(ValueError, match="layout"):
        nn.AvgPool1D(2, layout="NHWC")
    with pytest.raises(ValueError, match="kernel_size"):
        nn.MaxPool1D(0)
    with pytest.raises(ValueError, match="stride"):
        nn.AvgPool2D(2, stride=0)
    pool = nn.MaxPool2D(2)
    pool.forward(np.zeros((2, 3, 8, 8), np.float32), training=True)
    with pytest.raises(ValueError, match="grad_output"):
        pool.backward(np.zeros((2, 3, 3, 4), np.float32))
    with pytest.raises(RuntimeError, match="training=True"):
        nn.AvgPool1D(2).backward(np.zeros((1, 1, 2)))


def _lc_reference(x, w, b, stride, nd):
    """float64 locally connected layer by loops over the output positions (NC... layout)."""
    x, w = x.astype(np.float64), w.astype(np.float64)
    if nd == 1:
        Lo, O, C, K = w.shape
        y = np.empty((x.shape[0], O, Lo))
        for l in range(Lo):
            patch = x[:, :, l * stride:l * stride + K]
            y[:, :, l] = np.einsum("nck,ock->no", patch, w[l]) + (0 if b is None else b[l])
        return y
    Ho, Wo, O, C, kh, kw = w.shape
    sh, sw = stride
    y = np.empty((x.shape[0], O, Ho, Wo))
    for i in range(Ho):
        for j in range(Wo):
            patch = x[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw]
            y[:, :, i, j] = np.einsum("ncab,ocab->no", patch, w[i, j]) + (0 if b is None else b[i, j])
    return y


@pytest.mark.parametrize("nd", [1, 2])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cfg", [dict(), dict(stride=2, bias=False), dict(layout="last")])
def test_locally_connected_matches_functional_and_reference(nd, dtype, cfg):
    cfg = dict(cfg)
    last = cfg.pop("layout", None) == "last"
    layout = ("NLC" if nd == 1 else "NHWC") if last else ("NCL" if nd == 1 else "NCHW")
    sp = (11,) if nd == 1 else (9, 8)
    cls = nn.LocallyConnected1D if nd == 1 else nn.LocallyConnected2D
    layer = cls(3, 4, 3, sp[0] if nd == 1 else sp, layout=layout, dtype=dtype, seed=0, **cfg)
    s = cfg.get("stride", 1)
    outs = tuple((n - 3) // s + 1 for n in sp)
    assert layer.weight.shape == outs + (4, 3) + (3,) * nd
    assert (layer.bias is None) == (cfg.get("bias") is False)
    xt = _rng().standard_normal((2, 3) + sp).astype(dtype)
    x = np.ascontiguousarray(np.moveaxis(xt, 1, -1)) if last else xt
    f = getattr(L, f"locally_connected{nd}d")
    fb = getattr(L, f"locally_connected{nd}d_backward")
    kw = {"stride": s, "layout": layout}
    y = layer(x)
    np.testing.assert_array_equal(y, f(x, layer.weight, layer.bias, **kw))
    ref = _lc_reference(xt, layer.weight, layer.bias, s if nd == 1 else (s, s), nd)
    np.testing.assert_allclose(np.moveaxis(y, -1, 1) if last else y, ref,
                               rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-5 if dtype == np.float32 else 1e-12)
    layer.forward(x, training=True)
    g = _rng(1).standard_normal(y.shape).astype(dtype)
    gx = layer.backward(g)
    rgx, rgw, rgb = fb(g, x, layer.weight, has_bias=layer.bias is not None, **kw)
    np.testing.assert_array_equal(gx, rgx)
    np.testing.assert_array_equal(layer.gradients()[0], rgw)
    if layer.bias is not None:
        np.testing.assert_array_equal(layer.gradients()[1], rgb)
    with pytest.raises(ValueError, match="spatial size"):
        layer(np.zeros((2, 3) + tuple(n + 1 for n in sp), dtype) if not last else
              np.zeros((2,) + tuple(n + 1 for n in sp) + (3,), dtype))


def test_locally_connected_finite_differences():
    model = nn.Sequential(nn.LocallyConnected2D(2, 3, (2, 3), (5, 6), stride=(1, 2), dtype=np.float64,
                                                seed=0),
                          nn.Activation("tanh"), nn.Flatten(), nn.Dense(3 * 4 * 2, 2, dtype=np.float64))
    x = _rng().standard_normal((3, 2, 5, 6))
    r = _rng(1).standard_normal((3, 2))

    def loss():
        return float(np.sum(model(x) * r))

    model.forward(x, training=True)
    gx = model.backward(r)
    np.testing.assert_allclose(gx, _fd4(loss, x), rtol=1e-7, atol=1e-9)
    for p, g in zip(model.parameters(), model.gradients()):
        np.testing.assert_allclose(g, _fd4(loss, p), rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("cls,args,fan_in", [(nn.LocallyConnected1D, (4, 30, 5, 40), 20),
                                             (nn.LocallyConnected2D, (3, 30, (2, 3), (9, 9)), 18)])
def test_locally_connected_seeded_initialisation(cls, args, fan_in):
    a, b, c = cls(*args, seed=3), cls(*args, seed=3), cls(*args, seed=4)
    for p, q, s in zip(a.parameters(), b.parameters(), c.parameters()):
        np.testing.assert_array_equal(p, q)
        assert not np.array_equal(p, s)
    bound = 1 / np.sqrt(fan_in)
    w = a.weight.astype(np.float64)
    assert all(np.abs(p).max() <= bound for p in a.parameters())
    assert np.abs(w).max() > 0.99 * bound and abs(w.std() - bound / np.sqrt(3)) < 0.03 * bound


def test_locally_connected_bad_arguments():
    with pytest.raises(ValueError, match="input_length"):
        nn.LocallyConnected1D(3, 4, 5, 4)
    with pytest.raises(ValueError, match="input_shape"):
        nn.LocallyConnected2D(3, 4, 3, (8,))
    with pytest.raises(TypeError, match="stride"):
        nn.LocallyConnected1D(3, 4, 2, 8, stride=1.5)
    with pytest.raises(ValueError, match="layout"):
        nn.LocallyConnected2D(3, 4, 3, (8, 8), layout="NCL")
