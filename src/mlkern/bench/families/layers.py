"""Layers (``mlkern.layers``, when this build has it): dense + relu forward,
dense + relu forward + backward, embedding forward + backward.

Sizes: dense (M, K, N) = (1, 512, 512), (32, 512, 512), (256, 1024, 1024);
embedding a 50,000 x 256 table and 4,096 int64 tokens (uniform); smaller
stand-ins in the smoke run (largest ``--sizes`` below 1e6).  Inputs:
x, g ~ N(0,1), weight ~ N(0,1)/sqrt(K), bias ~ 0.1 N(0,1); float32 the
float64 draw rounded.  Peers:

* dense: NumPy ``matmul(x, W.T, out=)``, ``+= b``, ``maximum(out=)``;
  the bare NumPy GEMM ``x @ W.T`` alone (``[gemm]``, checked against the
  GEMM, the floor any dense must meet); torch
  ``F.relu(F.linear(x, W, b))`` ([a]);
* dense forward + backward: NumPy forward as above, then
  ``gz = g * (z > 0)``, ``gz @ W``, ``gz.T @ x``, ``gz.sum(0)``; torch
  autograd (``backward(g)``, [a]);
* embedding forward + backward: NumPy ``take(out=)`` and ``add.at`` into
  a zeroed gradient; torch ``F.embedding`` + autograd ([a]).

NumPy's matmul is OpenBLAS: its peers are timed at T threads (threadpoolctl),
not carried over from T=1.  GFLOP/s = 2 M K N / time (forward), 6 M K N
(forward + backward); embedding GB/s = bytes moved / time.
"""
import numpy as np

from .. import references as R
from ..cases import LAYERS, Case, Family, check_outputs, register
from ..peers import Impl, import_torch, mlkern_function, numpy_peer, torch_peer


def available():
    """mlkern.layers is importable and has the four functions."""
    return all(mlkern_function(f"mlkern.layers:{f}") is not None
               for f in ("dense", "dense_backward", "embedding", "embedding_backward"))


# ------------------------------------------------------------------ inputs
def _dense_inputs(case, cache, p, dtype):
    m, k, n = p.dims

    def draw():
        rng = np.random.default_rng([7, m, k, n])
        x = rng.standard_normal((m, k))
        w = rng.standard_normal((n, k)) / np.sqrt(k)
        b = 0.1 * rng.standard_normal(n)
        g = rng.standard_normal((m, n))
        return x, w, b, g
    x, w, b, g = cache.get(("dense", p, "f8"), draw)
    if dtype != np.float64:
        x, w, b, g = cache.get(("dense", p, dtype.str), lambda: tuple(a.astype(dtype) for a in (x, w, b, g)))
    return (x, w, b) if case.kind == "fwd" else (x, w, b, g)


def _emb_inputs(case, cache, p, dtype):
    v, d, t = p.dims

    def draw():
        rng = np.random.default_rng([8, v, d, t])
        return rng.standard_normal((v, d)), rng.integers(0, v, t), rng.standard_normal((t, d))
    w, idx, g = cache.get(("emb", p, "f8"), draw)
    if dtype != np.float64:
        w, g = cache.get(("emb", p, dtype.str), lambda: (w.astype(dtype), g.astype(dtype)))
    return (idx, w, g)


def _f64(ins):
    return [a.astype(np.float64) if a.dtype.kind == "f" else a for a in ins]


def _dense_fwd_ref(case, p, ins):
    x, w, b = _f64(ins)
    return R.dense_ref(x, w, b, "relu")


def _dense_fb_ref(case, p, ins):
    x, w, b, g = _f64(ins)
    return (R.dense_ref(x, w, b, "relu"),) + R.dense_backward_ref(g, x, w, b, "relu")


def _emb_ref(case, p, ins):
    idx, w, g = _f64(ins)
    return R.embedding_ref(idx, w), R.embedding_backward_ref(g, idx, w.shape[0])


def _dense_out(case, p, dtype):
    m, k, n = p.dims
    return [((m, n), dtype)]


def _emb_out(case, p, dtype):
    v, d, t = p.dims
    return [((t, d), dtype), ((v, d), dtype)]


# ------------------------------------------------------------------ mlkern
def _mk_dense(ins, o):
    dense = mlkern_function("mlkern.layers:dense")
    x, w, b = ins
    return lambda: dense(x, w, b, activation="relu", out=o)


def _mk_dense_fb(ins, o):
    dense = mlkern_function("mlkern.layers:dense")
    dense_backward = mlkern_function("mlkern.layers:dense_backward")
    x, w, b, g = ins

    def f():
        y, saved = dense(x, w, b, activation="relu", out=o, return_saved=True)
        return (y,) + tuple(dense_backward(g, x, w, has_bias=True, activation="relu", saved=saved))
    return f


def _mk_emb(ins, outs):
    embedding = mlkern_function("mlkern.layers:embedding")
    embedding_backward = mlkern_function("mlkern.layers:embedding_backward")
    idx, w, g = ins
    y, gw = outs
    v = w.shape[0]

    def f():
        embedding(idx, w, out=y)
        embedding_backward(g, idx, v, out=gw)
        return y, gw
    return f


# ------------------------------------------------------------------ NumPy
@numpy_peer("np matmul, +b, maximum (out=)")
def _np_dense(ins, o):
    x, w, b = ins
    wt = w.T
    mm, add, mx = np.matmul, np.add, np.maximum

    def f():
        mm(x, wt, out=o)
        add(o, b, out=o)
        mx(o, 0, out=o)
        return o
    return f


@numpy_peer("np x @ w.T (GEMM only) [gemm]", ref=lambda x, w, b: x @ w.T)
def _np_gemm(ins, o):
    x, w, b = ins
    wt = w.T
    mm = np.matmul
    return lambda: mm(x, wt, out=o)


@numpy_peer("np dense+relu, then 3 GEMMs")
def _np_dense_fb(ins, o):
    x, w, b, g = ins
    wt = w.T
    gz = np.empty_like(o)
    mask = np.empty(o.shape, dtype=bool)
    mm, add, mx, gt, mul = np.matmul, np.add, np.maximum, np.greater, np.multiply

    def f():
        mm(x, wt, out=o)
        add(o, b, out=o)
        gt(o, 0, out=mask)
        mx(o, 0, out=o)
        mul(g, mask, out=gz)
        return o, gz @ w, gz.T @ x, gz.sum(axis=0)
    return f


@numpy_peer("np take(out=), add.at")
def _np_emb(ins, outs):
    idx, w, g = ins
    y, gw = outs
    take, add_at = np.take, np.add.at

    def f():
        take(w, idx, axis=0, out=y)
        gw.fill(0)
        add_at(gw, idx, g)
        return y, gw
    return f


# ------------------------------------------------------------------ torch
@torch_peer("F.relu(F.linear(x, w, b))", allocates=True)
def _t_dense(ins, o):
    F = import_torch().nn.functional
    x, w, b = ins
    lin, relu = F.linear, F.relu
    return lambda: relu(lin(x, w, b))


@torch_peer("autograd relu(linear) + backward", allocates=True)
def _t_dense_fb(ins, o):
    tm = import_torch()
    F = tm.nn.functional
    x, w, b, g = ins
    tx, tw, tb = (a.detach().clone().requires_grad_() for a in (x, w, b))

    def f():
        tx.grad = tw.grad = tb.grad = None
        y = F.relu(F.linear(tx, tw, tb))
        y.backward(g)
        return y.detach(), tx.grad, tw.grad, tb.grad
    return f


@torch_peer("F.embedding + autograd backward", allocates=True)
def _t_emb(ins, outs):
    F = import_torch().nn.functional
    idx, w, g = ins
    tw = w.detach().clone().requires_grad_()

    def f():
        tw.grad = None
        y = F.embedding(idx, tw)
        y.backward(g)
        return y.detach(), tw.grad
    return f


def layer_case(name, family, kind, mlkern, numpy, torch, draw, reference, out_specs, flops=None,
               nbytes=None):
    return Case(name, family, kind, None, mlkern, numpy, torch, table=LAYERS, group="layers",
                draw=draw, checker=check_outputs, out_specs=out_specs,
                nbytes=nbytes or (lambda p, isz: 0.0), flops=flops, check_result=True,
                reference=reference)


def _mk(name, make, fname):
    return Impl(name, "mlkern", make, needs=f"mlkern.layers:{fname}")


def _gemm_flops(mult):
    return lambda p: 2.0 * mult * p.dims[0] * p.dims[1] * p.dims[2]


def _emb_bytes(p, isz):
    v, d, t = p.dims
    # forward: read t rows, write t rows; backward: read the t gradient rows,
    # write the (v, d) gradient; the int64 indices twice
    return (2 * t * d + t * d + v * d) * isz + 16 * t


CASES = [
    layer_case("dense_relu", "dense", "fwd",
               _mk("mlkern.layers.dense(relu)", _mk_dense, "dense"), [_np_dense, _np_gemm],
               [_t_dense], _dense_inputs, _dense_fwd_ref, _dense_out, flops=_gemm_flops(1)),
    layer_case("dense_relu_fwd_bwd", "dense", "fwd+bwd",
               _mk("mlkern.layers.dense(relu)+dense_backward", _mk_dense_fb, "dense_backward"),
               [_np_dense_fb], [_t_dense_fb], _dense_inputs, _dense_fb_ref, _dense_out,
               flops=_gemm_flops(3)),
    layer_case("embedding_fwd_bwd", "embedding", "fwd+bwd",
               _mk("mlkern.layers.embedding+embedding_backward", _mk_emb, "embedding_backward"),
               [_np_emb], [_t_emb], _emb_inputs, _emb_ref, _emb_out, nbytes=_emb_bytes),
]

FAMILY = register(Family("layers", CASES, available=available,
                         unavailable="mlkern.layers is not importable in this build"))
