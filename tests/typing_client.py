"""A client of mlkern's public API, type-checked with ``mypy --strict`` by
tests/test_typing.py (and run as a script there, so the types it asserts
are also the runtime ones).  Every annotation below is what a user writing
strictly typed code would write."""
from __future__ import annotations

import io
from typing import Any

import numpy as np
from numpy.typing import NDArray

import mlkern
import mlkern.calculus
import mlkern.layers
import mlkern.nn
import mlkern.optim
from mlkern.optim import Adam, SGD, minibatches


def activations(x64: NDArray[np.float64], x32: NDArray[np.float32]) -> float:
    y64: NDArray[np.float64] = mlkern.sigmoid(x64)
    y32: NDArray[np.float32] = mlkern.sigmoid(x32)
    g: NDArray[np.float64] = mlkern.sigmoid_backward(np.ones_like(y64), y64)
    mlkern.tanh(x64, out=y64)                      # in place through out=
    s: np.floating[Any] = mlkern.softplus(-30.0)   # a Python float gives a NumPy scalar
    lst: NDArray[np.floating[Any]] = mlkern.relu([1.0, -2.0])
    gel: NDArray[np.float32] = mlkern.gelu(x32, approximate="tanh")
    lr: NDArray[np.float64] = mlkern.leaky_relu_grad(x64, negative_slope=0.2)
    si: NDArray[np.float64] = mlkern.silu(x64, beta=1.5)
    el: NDArray[np.float64] = mlkern.elu_backward(g, mlkern.elu(x64, alpha=0.5), alpha=0.5)
    ls: NDArray[np.float32] = mlkern.log_sigmoid_grad(x32)
    nr: NDArray[np.float64] = mlkern.noisy_relu(x64, seed=3)
    return float(y32.sum() + s + lst.sum() + gel.sum() + lr.sum() + si.sum() + el.sum()
                 + ls.sum() + nr.size)


def softmax_family(z: NDArray[np.float32]) -> float:
    p: NDArray[np.float32] = mlkern.softmax(z, axis=-1)
    lp: NDArray[np.float32] = mlkern.log_softmax(z, -1)
    gb: NDArray[np.float32] = mlkern.softmax_backward(np.ones_like(p), p)
    lgb: NDArray[np.float32] = mlkern.log_softmax_backward(np.ones_like(lp), lp, axis=1)
    lse = mlkern.logsumexp(z, axis=1, keepdims=True)
    am = mlkern.argmax(z, axis=-1)
    jac: NDArray[np.float32] = mlkern.softmax_jacobian(p[:2])
    return float(np.sum(lse) + np.sum(am) + gb.sum() + lgb.sum() + jac.sum())


def losses(logits: NDArray[np.float64], labels: NDArray[np.int64]) -> float:
    loss: np.float64 = mlkern.cross_entropy(logits, labels)
    per_sample: NDArray[np.float64] = mlkern.cross_entropy(logits, labels, reduction="none")
    lval, grad = mlkern.cross_entropy_with_grad(logits, labels, label_smoothing=0.1)
    lval2: np.float64 = lval
    grad2: NDArray[np.float64] = grad
    pred = logits[:, 0]
    target = np.zeros_like(pred)
    m: np.float64 = mlkern.mse(pred, target)
    mg: NDArray[np.float64] = mlkern.mse_grad(pred, target, reduction="sum")
    h, hg = mlkern.huber_with_grad(pred, target, delta=0.5, reduction="none")
    hv: NDArray[np.float64] = h
    b: np.float64 = mlkern.binary_cross_entropy_with_logits(pred, target, pos_weight=2.0)
    kl: np.float64 = mlkern.kl_div(mlkern.softmax(logits), mlkern.softmax(logits))
    pen: np.float64 = mlkern.l2_penalty(pred, 0.01)
    return float(loss + per_sample.sum() + lval2 + grad2.sum() + m + mg.sum() + hv.sum()
                 + hg.sum() + b + kl + pen)


def optimisers(w: NDArray[np.float64]) -> int:
    opt = Adam([w], lr=1e-2, betas=(0.9, 0.99))
    for batch in minibatches(10, 4, seed=0):
        opt.step([np.full_like(w, float(batch.size))])
    saved: dict[str, Any] = opt.state_dict()
    sgd = SGD(w, lr=lambda t: 0.1 / t)
    sgd.step(np.ones_like(w))
    sgd.zero_state()
    opt.load_state_dict(saved)
    v = np.zeros_like(w)
    w2: NDArray[np.float64] = mlkern.optim.momentum_step(w, np.ones_like(w), v, lr=0.1)
    return opt.step_count + int(w2.size)


def calculus(x: NDArray[np.float64]) -> bool:
    def f(v: NDArray[Any]) -> float:
        return float(np.sum(v ** 2))

    def df(v: NDArray[Any]) -> NDArray[Any]:
        return 2 * v

    g: NDArray[np.floating[Any]] = mlkern.calculus.numerical_grad(f, x)
    d = mlkern.calculus.derivative("tanh")
    return mlkern.calculus.gradcheck(f, df, x) and g.shape == x.shape and callable(d)


def config() -> int:
    prev: int | None = mlkern.set_num_threads(1)
    with mlkern.threads(2):
        n: int = mlkern.get_num_threads()
    mlkern.set_num_threads(prev)
    buf = io.StringIO()
    info: dict[str, Any] = mlkern.show_config(file=buf)
    inc: str = mlkern.get_include()
    assert info["openmp"] in (True, False) and inc
    return n


def layers(x: NDArray[np.float64], w: NDArray[np.float64], idx: NDArray[np.int64]) -> float:
    y: NDArray[Any] = mlkern.layers.dense(x, w, activation="leaky_relu", negative_slope=0.1)
    y2, saved = mlkern.layers.dense(x, w, None, activation="relu", return_saved=True)
    gx, gw, gb = mlkern.layers.dense_backward(y2, x, w, has_bias=False, activation="relu",
                                              saved=saved)
    e: NDArray[Any] = mlkern.layers.embedding(idx, w, padding_idx=-1)
    ge: NDArray[Any] = mlkern.layers.embedding_backward(e, idx, w.shape[0])
    assert gx is not None and gb is None
    return float(y.sum() + gw.sum() + ge.sum())


def models(x: NDArray[np.float32], labels: NDArray[np.int64]) -> float:
    model = mlkern.nn.Sequential(mlkern.nn.Dense(x.shape[1], 8, seed=0), mlkern.nn.Activation("relu"),
                                 mlkern.nn.Dense(8, 3, activation="tanh", seed=1), mlkern.nn.Flatten())
    opt = mlkern.optim.Adam(model.parameters(), lr=0.01)
    logits: NDArray[Any] = model.forward(x, training=True)
    _, g = mlkern.cross_entropy_with_grad(logits, labels)
    gx: NDArray[Any] | None = model.backward(g)
    opt.step(model.gradients())
    sd: dict[str, NDArray[Any]] = model.state_dict()
    model.load_state_dict(sd)
    emb = mlkern.nn.Embedding(5, 2, padding_idx=0, dtype=np.float64)
    e: NDArray[Any] = emb(labels)
    assert gx is not None and len(model) == 4 and isinstance(model[0], mlkern.nn.Layer)
    return float(model(x).sum() + e.sum())


def main() -> None:
    rng = np.random.default_rng(0)
    x64 = rng.standard_normal(100)
    x32 = x64.astype(np.float32)
    print(activations(x64, x32))
    print(softmax_family(rng.standard_normal((4, 5)).astype(np.float32)))
    print(losses(rng.standard_normal((6, 3)), rng.integers(0, 3, 6)))
    print(optimisers(np.zeros(3)))
    assert np.isfinite(models(rng.standard_normal((6, 4)).astype(np.float32), np.array([0, 1, 2, 0, 1, 2])))
    print(calculus(np.array([1.0, 2.0])))
    print(config())
    assert np.isfinite(layers(rng.standard_normal((4, 3)), rng.standard_normal((3, 3)), np.array([0, 2, 2])))


if __name__ == "__main__":
    main()
