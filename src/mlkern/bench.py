"""Speed of mlkern against NumPy/SciPy (and PyTorch when importable).

Run ``python -m mlkern bench`` (``--help`` for the options).  The same case
registry (:data:`CASES`, :class:`Inputs`, :func:`check`) drives the
pytest-benchmark suite in ``benchmarks/bench_activations.py``.

Method (as in the project's peer measurements):

* in-process timing with ``time.perf_counter_ns``; per peer the first call
  and a short warm-up are thrown away, then an inner-loop count ``k`` is
  picked so that one repeat lasts at least ~20 ms; at least 7 repeats;
  the **median** per-call time is reported (min and quartiles in the json);
* at T=1 the peers of one case run **round-robin** (one repeat each in
  turn) so that the VM's speed drift hits them alike; at T=2 each parallel
  peer is timed on its own, and all mlkern T=2 work runs before all torch
  T=2 work (parallel calls of two runtimes are never interleaved);
* NumPy/SciPy are single-threaded: their T=1 time is carried over to the
  T=2 rows and marked ``[1T]``;
* outputs are preallocated and passed with ``out=`` wherever the peer
  allows; peers that allocate are marked ``[a]``;
* every peer's output (and mlkern's) is compared once with a float64
  NumPy/SciPy reference on the same inputs: max abs error /
  max(1, max|ref|) <= 2e-4 (float32) or 1e-8 (float64), else ``[!]``;
* ns/el = median time / elements; GB/s counts the bytes an ideal single
  pass must move (2 n itemsize for a unary map, 3 n itemsize for a
  backward); %roof = GB/s / best copy GB/s at the same dtype and threads,
  for inputs of >= 32 MiB only (out of L3).

Row-wise functions (softmax, log_softmax, logsumexp, argmax,
softmax_backward, log_softmax_backward; registry :data:`ROW_CASES`) get
their own table after the elementwise one, timed the same way, per
function x shape x dtype x threads:

* shapes: ``--shapes`` (``AxB[xC][:axis]``, reduced over the last axis
  unless ``:axis``).  Without ``--shapes`` they follow ``--sizes``: the
  issue's five shapes (:data:`ROW_SHAPES`: 4096x1000, 256x32000,
  1000000x10, 64x128 over the last axis, 64x1000x64 over axis 1) when the
  largest ``--sizes`` value is >= 1e6 (the defaults, quick and full), else
  the smoke set :data:`ROW_SHAPES_SMOKE` (64x128 and 16x1000x16 over
  axis 1, both in cache), so that the CI smoke run ``--sizes 1e3,1e5
  --repeats 3`` stays short (about 25 s more than the elementwise part);
* peers: scipy.special softmax / log_softmax / logsumexp ([a]), the NumPy
  ufunc chain with ``out=`` (logsumexp with one x-sized temporary made
  once), ``np.argmax(out=)``, and torch's out= ATen ops on
  ``torch.from_numpy`` tensors;
* ns/el per element of the input; GB/s by the byte model softmax and
  log_softmax 2 N itemsize, logsumexp (N + rows) itemsize, argmax
  N itemsize + 8 rows, the backwards 3 N itemsize; no %roof;
* select them with ``--functions``: ``softmax`` (with softmax_backward),
  ``softmax_forward``, ``log_softmax``, ``logsumexp``, ``argmax``,
  ``rowwise`` (all of them), ``elementwise`` (none of them); a selection
  without elementwise functions skips the copy roof and the elementwise
  table.  ``--json`` puts them under ``rowwise_records``.

Losses (``--functions losses``; registries :data:`LOSS_CASES` and
:data:`LOSS_ROW_CASES`): a loss and its gradient from one call, mean
reduction, each impl returning ``(loss, grad)``:

* ``bce_with_logits_with_grad`` (z ~ 4 N(0,1), soft targets U[0,1)) and
  ``mse_with_grad`` (pred, target ~ N(0,1)) at ``--sizes``, in the
  elementwise table (GB/s by 3 n itemsize: read pred and target, write
  the gradient; %roof as there).  Peers: the NumPy out= chains
  max(z,0) - z t + log1p(exp(-|z|)) with ``expit`` (or the 4-pass
  sigmoid) for the gradient, and ``g = p - t; dot(g, g)/N; g *= 2/N``
  (np.dot's OpenBLAS limited to one thread with threadpoolctl when it is
  importable); torch's ATen chains (``binary_cross_entropy_with_logits.out``
  + ``sigmoid/sub/mul(out=)``; ``mse_loss`` + ``mse_loss_backward.grad_input``;
  both [a]: the loss ops make n-sized temporaries even in their out= form)
  and autograd (``F.*`` forward + ``backward()``, [a]);
* ``cross_entropy_with_grad`` (logits ~ 2 N(0,1), uniform int64 labels)
  on :data:`LOSS_SHAPES` (4096x1000 and 256x32000), or the smoke shape
  64x1000 when the largest ``--sizes`` is below 1e6, or ``--shapes``; its
  own table after the row-wise one, GB/s by 2 N itemsize + 8 rows.  Peers:
  NumPy softmax - onehot with ``out=``, torch ``F.cross_entropy`` forward
  + backward ([a]);
* the check: loss within TOL relative, gradient within TOL of max|ref
  grad| (the gradient of a mean is ~1/N), against float64 on all
  elements.

Only NumPy is required; SciPy and PyTorch are optional.  This module is
not imported by ``import mlkern``.
"""
import argparse
import json
import math
import os
import platform
import sys
import time

import numpy as np

try:  # optional
    import scipy
    import scipy.special as _sps
except ImportError:  # pragma: no cover - depends on the environment
    scipy = None
    _sps = None

_torch = None          # set by _import_torch()
_TORCH_ERROR = None

_pc = time.perf_counter_ns

DTYPES = {"f32": np.float32, "f64": np.float64}
TOL = {np.dtype(np.float32): 2e-4, np.dtype(np.float64): 1e-8}
ROOF_BYTES = 32 * 2**20          # %roof only for main inputs at least this big
CHECK_POINTS = 100_000           # the correctness check looks at <= this many elements

_K = 0.7978845608028654          # sqrt(2/pi)
_C = 0.044715
_INV_SQRT_2PI = 0.3989422804014327
_INV_SQRT_2 = 0.7071067811865476


def _import_torch():
    """Import torch once; returns the module or None."""
    global _torch, _TORCH_ERROR
    if _torch is None and _TORCH_ERROR is None:
        try:
            import torch
            _torch = torch
        except Exception as e:  # ImportError, or a broken install
            _TORCH_ERROR = f"{type(e).__name__}: {e}"
    return _torch


def set_torch_threads(t):
    """torch.set_num_threads(t) and check that it took (never via threadpoolctl)."""
    torch = _import_torch()
    torch.set_num_threads(t)
    got = torch.get_num_threads()
    if got != t:
        raise RuntimeError(f"torch.get_num_threads() is {got} after set_num_threads({t})")


# ------------------------------------------------------------------ float64 references
def _r_sigmoid(x):
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _r_ndtr(x):
    if _sps is not None:
        return _sps.ndtr(x)
    erfc = np.frompyfunc(math.erfc, 1, 1)
    return 0.5 * erfc(-x * _INV_SQRT_2).astype(np.float64)


def _r_softplus(x):
    return np.logaddexp(0.0, x)


def _r_elu(x):
    return np.where(x > 0, x, np.expm1(np.minimum(x, 0.0)))


def _r_gelu_tanh(x):
    return 0.5 * x * (1.0 + np.tanh(_K * (x + _C * x ** 3)))


def _r_gelu_tanh_grad(x):
    t = np.tanh(_K * (x + _C * x ** 3))
    return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * _K * (1.0 + 3.0 * _C * x * x)


def _r_npdf(x):
    return _INV_SQRT_2PI * np.exp(-0.5 * x * x)


# ------------------------------------------------------------------ the registry
class Impl:
    """One way of computing a case.

    ``make(ins, out)`` gets the inputs and the preallocated output (NumPy
    arrays, or tensors sharing their memory for torch) and returns a
    zero-argument callable that writes the result into ``out``.
    """
    __slots__ = ("name", "runtime", "make", "needs", "allocates")

    def __init__(self, name, runtime, make, needs=None, allocates=False):
        self.name, self.runtime, self.make = name, runtime, make
        self.needs, self.allocates = needs, allocates

    def available(self):
        if self.needs == "scipy":
            return _sps is not None
        if self.needs and self.needs.startswith("mlkern:"):
            # a function that may not be in this build yet (e.g. the row-wise ones)
            import mlkern
            return hasattr(mlkern, self.needs.split(":", 1)[1])
        if self.runtime == "torch":
            return _import_torch() is not None
        return True

    @property
    def label(self):
        return self.name + (" [a]" if self.allocates else "")

    def __repr__(self):
        return f"Impl({self.name!r}, {self.runtime!r})"


class Case:
    """A function to time: mlkern's implementation, its peers, the reference."""

    def __init__(self, name, family, kind, ref, mlkern, numpy, torch=(),
                 saved="x", y_of=None, memory_bound=False):
        self.name, self.family, self.kind = name, family, kind   # kind: fwd, bwd, copy
        self.ref = ref                  # float64 reference: ref(*inputs)
        self.mlkern = mlkern            # Impl
        self.numpy = list(numpy)
        self.torch = list(torch)
        self.saved = saved              # bwd: second input is the forward input x or output y
        self.y_of = y_of                # bwd with saved="y": forward reference
        self.memory_bound = memory_bound

    @property
    def n_inputs(self):
        return 1 if self.kind in ("fwd", "copy") else 2

    @property
    def bytes_per_el(self):
        """Ideal bytes moved per element, per itemsize (read + write)."""
        return self.n_inputs + 1

    def impls(self, runtimes=("mlkern", "numpy", "torch")):
        out = []
        for rt in runtimes:
            group = [self.mlkern] if rt == "mlkern" else getattr(self, rt)
            out.extend(i for i in group if i.available())
        return out

    def __repr__(self):
        return f"Case({self.name!r})"


def _mk(fname, **kw):
    """mlkern.<fname>(*ins, out=out, **kw)."""
    def make(ins, out):
        import mlkern
        f = getattr(mlkern, fname)
        if len(ins) == 1:
            x, = ins
            if kw:
                return lambda: f(x, out=out, **kw)
            return lambda: f(x, out=out)
        g, s = ins
        if kw:
            return lambda: f(g, s, out=out, **kw)
        return lambda: f(g, s, out=out)
    return Impl(f"mlkern.{fname}", "mlkern", make)


def _np(name, needs=None, allocates=False):
    def deco(make):
        return Impl(name, "numpy", make, needs=needs, allocates=allocates)
    return deco


def _tc(name, allocates=False):
    def deco(make):
        return Impl(name, "torch", make, allocates=allocates)
    return deco


def _aten():
    return _import_torch().ops.aten


# --- numpy / scipy expressions (all single-threaded, out= where possible)
@_np("scipy.special.expit", needs="scipy")
def _np_expit(ins, o):
    x, = ins
    return lambda: _sps.expit(x, out=o)


@_np("1/(1+exp(-x)) 4-pass")
def _np_sigmoid4(ins, o):
    x, = ins
    neg, exp, add, rec = np.negative, np.exp, np.add, np.reciprocal

    def f():
        neg(x, out=o)
        exp(o, out=o)
        add(o, 1, out=o)
        rec(o, out=o)
    return f


@_np("np.tanh")
def _np_tanh(ins, o):
    x, = ins
    return lambda: np.tanh(x, out=o)


@_np("np.maximum(x,0)")
def _np_relu(ins, o):
    x, = ins
    return lambda: np.maximum(x, 0, out=o)


@_np("np.logaddexp(0,x)")
def _np_softplus(ins, o):
    x, = ins
    return lambda: np.logaddexp(0, x, out=o)


@_np("x*expit(x)", needs="scipy")
def _np_silu_expit(ins, o):
    x, = ins
    expit, mul = _sps.expit, np.multiply

    def f():
        expit(x, out=o)
        mul(x, o, out=o)
    return f


@_np("x/(1+exp(-x)) 4-pass")
def _np_silu4(ins, o):
    x, = ins
    neg, exp, add, div = np.negative, np.exp, np.add, np.divide

    def f():
        neg(x, out=o)
        exp(o, out=o)
        add(o, 1, out=o)
        div(x, o, out=o)
    return f


@_np("where(x>0,x,expm1(x)) via copyto")
def _np_elu(ins, o):
    x, = ins
    m = np.empty(x.shape, dtype=bool)
    gt, expm1, copyto = np.greater, np.expm1, np.copyto

    def f():
        gt(x, 0, out=m)
        expm1(x, out=o)
        copyto(o, x, where=m)
    return f


@_np("x*ndtr(x)", needs="scipy")
def _np_gelu(ins, o):
    x, = ins
    ndtr, mul = _sps.ndtr, np.multiply

    def f():
        ndtr(x, out=o)
        mul(x, o, out=o)
    return f


@_np("0.5x(1+tanh(k(x+cx^3)))")
def _np_gelu_tanh(ins, o):
    x, = ins
    mul, add, tanh = np.multiply, np.add, np.tanh

    def f():
        mul(x, x, out=o)
        mul(o, _C, out=o)
        add(o, 1, out=o)
        mul(o, x, out=o)
        mul(o, _K, out=o)
        tanh(o, out=o)
        add(o, 1, out=o)
        mul(o, x, out=o)
        mul(o, 0.5, out=o)
    return f


@_np("scipy.special.log_expit", needs="scipy")
def _np_log_expit(ins, o):
    x, = ins
    return lambda: _sps.log_expit(x, out=o)


@_np("-logaddexp(0,-x)")
def _np_log_sigmoid(ins, o):
    x, = ins
    neg, lae = np.negative, np.logaddexp

    def f():
        neg(x, out=o)
        lae(0, o, out=o)
        neg(o, out=o)
    return f


@_np("np.copyto")
def _np_copy(ins, o):
    x, = ins
    return lambda: np.copyto(o, x)


# --- numpy backward expressions: ins = (g, saved)
@_np("g*y*(1-y)")
def _np_sigmoid_bwd(ins, o):
    g, y = ins
    sub, mul = np.subtract, np.multiply

    def f():
        sub(1, y, out=o)
        mul(o, y, out=o)
        mul(o, g, out=o)
    return f


@_np("g*(1-y*y)")
def _np_tanh_bwd(ins, o):
    g, y = ins
    sub, mul = np.subtract, np.multiply

    def f():
        mul(y, y, out=o)
        sub(1, o, out=o)
        mul(o, g, out=o)
    return f


@_np("g*(x>0)")
def _np_relu_bwd(ins, o):
    g, x = ins
    m = np.empty(x.shape, dtype=bool)
    gt, mul = np.greater, np.multiply

    def f():
        gt(x, 0, out=m)
        mul(g, m, out=o)
    return f


def _silu_bwd_from_s(g, x, o, t):
    """o holds s = sigmoid(x): o = g * s * (1 + x * (1 - s))."""
    np.subtract(1, o, out=t)
    np.multiply(t, x, out=t)
    np.add(t, 1, out=t)
    np.multiply(t, o, out=o)
    np.multiply(o, g, out=o)


@_np("s=expit(x); g*s*(1+x(1-s))", needs="scipy")
def _np_silu_bwd(ins, o):
    g, x = ins
    t = np.empty_like(o)
    expit = _sps.expit

    def f():
        expit(x, out=o)
        _silu_bwd_from_s(g, x, o, t)
    return f


@_np("s=1/(1+exp(-x)); g*s*(1+x(1-s))")
def _np_silu_bwd4(ins, o):
    g, x = ins
    t = np.empty_like(o)
    sig = _np_sigmoid4.make((x,), o)

    def f():
        sig()
        _silu_bwd_from_s(g, x, o, t)
    return f


@_np("g*(ndtr(x)+x*npdf(x))", needs="scipy")
def _np_gelu_bwd(ins, o):
    g, x = ins
    t = np.empty_like(o)
    ndtr, mul, add, exp = _sps.ndtr, np.multiply, np.add, np.exp

    def f():
        ndtr(x, out=o)
        mul(x, x, out=t)
        mul(t, -0.5, out=t)
        exp(t, out=t)
        mul(t, _INV_SQRT_2PI, out=t)
        mul(t, x, out=t)
        add(o, t, out=o)
        mul(o, g, out=o)
    return f


@_np("g*d/dx[gelu tanh form]")
def _np_gelu_tanh_bwd(ins, o):
    g, x = ins
    t = np.empty_like(o)
    u = np.empty_like(o)
    mul, add, sub, tanh = np.multiply, np.add, np.subtract, np.tanh

    def f():
        mul(x, x, out=u)                 # u = x^2
        mul(u, _C, out=t)
        add(t, 1, out=t)
        mul(t, x, out=t)
        mul(t, _K, out=t)
        tanh(t, out=t)                   # t = tanh(k (x + c x^3))
        mul(u, 3 * _C * _K, out=u)
        add(u, _K, out=u)                # u = k (1 + 3 c x^2)
        mul(t, t, out=o)
        sub(1, o, out=o)
        mul(o, u, out=o)
        mul(o, x, out=o)                 # x (1 - t^2) k (1 + 3 c x^2)
        add(o, t, out=o)
        add(o, 1, out=o)
        mul(o, 0.5, out=o)
        mul(o, g, out=o)
    return f


@_np("g*expit(x)", needs="scipy")
def _np_softplus_bwd(ins, o):
    g, x = ins
    expit, mul = _sps.expit, np.multiply

    def f():
        expit(x, out=o)
        mul(o, g, out=o)
    return f


@_np("g/(1+exp(-x)) 4-pass")
def _np_softplus_bwd4(ins, o):
    g, x = ins
    neg, exp, add, div = np.negative, np.exp, np.add, np.divide

    def f():
        neg(x, out=o)
        exp(o, out=o)
        add(o, 1, out=o)
        div(g, o, out=o)
    return f


@_np("g*min(y+1,1)")
def _np_elu_bwd(ins, o):
    g, y = ins
    add, mn, mul = np.add, np.minimum, np.multiply

    def f():
        add(y, 1, out=o)
        mn(o, 1, out=o)
        mul(o, g, out=o)
    return f


@_np("g*expit(-x)", needs="scipy")
def _np_log_sigmoid_bwd(ins, o):
    g, x = ins
    neg, expit, mul = np.negative, _sps.expit, np.multiply

    def f():
        neg(x, out=o)
        expit(o, out=o)
        mul(o, g, out=o)
    return f


@_np("g/(1+exp(x)) 3-pass")
def _np_log_sigmoid_bwd3(ins, o):
    g, x = ins
    exp, add, div = np.exp, np.add, np.divide

    def f():
        exp(x, out=o)
        add(o, 1, out=o)
        div(g, o, out=o)
    return f


# --- torch (ops with an out= / grad_input= variant)
@_tc("torch.sigmoid(out=)")
def _t_sigmoid(ins, o):
    x, = ins
    return lambda: _torch.sigmoid(x, out=o)


@_tc("torch.tanh(out=)")
def _t_tanh(ins, o):
    x, = ins
    return lambda: _torch.tanh(x, out=o)


@_tc("torch.clamp_min(out=)")
def _t_relu(ins, o):
    x, = ins
    return lambda: _torch.clamp_min(x, 0, out=o)


@_tc("aten.softplus.out(1,20)")
def _t_softplus(ins, o):
    x, = ins
    op = _aten().softplus.out
    return lambda: op(x, 1, 20, out=o)


@_tc("aten.silu.out")
def _t_silu(ins, o):
    x, = ins
    op = _aten().silu.out
    return lambda: op(x, out=o)


@_tc("aten.elu.out")
def _t_elu(ins, o):
    x, = ins
    op = _aten().elu.out
    return lambda: op(x, 1.0, 1, 1, out=o)


@_tc("aten.gelu.out(none)")
def _t_gelu(ins, o):
    x, = ins
    op = _aten().gelu.out
    return lambda: op(x, approximate="none", out=o)


@_tc("aten.gelu.out(tanh)")
def _t_gelu_tanh(ins, o):
    x, = ins
    op = _aten().gelu.out
    return lambda: op(x, approximate="tanh", out=o)


@_tc("aten.log_sigmoid.out")
def _t_log_sigmoid(ins, o):
    x, = ins
    op = _aten().log_sigmoid.out
    return lambda: op(x, out=o)


@_tc("Tensor.copy_")
def _t_copy(ins, o):
    x, = ins
    return lambda: o.copy_(x)


@_tc("aten.sigmoid_backward")
def _t_sigmoid_bwd(ins, o):
    g, y = ins
    op = _aten().sigmoid_backward.grad_input
    return lambda: op(g, y, grad_input=o)


@_tc("aten.tanh_backward")
def _t_tanh_bwd(ins, o):
    g, y = ins
    op = _aten().tanh_backward.grad_input
    return lambda: op(g, y, grad_input=o)


@_tc("aten.threshold_backward")
def _t_relu_bwd(ins, o):
    g, x = ins
    op = _aten().threshold_backward.grad_input
    return lambda: op(g, x, 0, grad_input=o)


@_tc("aten.silu_backward")
def _t_silu_bwd(ins, o):
    g, x = ins
    op = _aten().silu_backward.grad_input
    return lambda: op(g, x, grad_input=o)


@_tc("aten.gelu_backward(none)")
def _t_gelu_bwd(ins, o):
    g, x = ins
    op = _aten().gelu_backward.grad_input
    return lambda: op(g, x, approximate="none", grad_input=o)


@_tc("aten.gelu_backward(tanh)")
def _t_gelu_tanh_bwd(ins, o):
    g, x = ins
    op = _aten().gelu_backward.grad_input
    return lambda: op(g, x, approximate="tanh", grad_input=o)


@_tc("aten.softplus_backward(1,20)")
def _t_softplus_bwd(ins, o):
    g, x = ins
    op = _aten().softplus_backward.grad_input
    return lambda: op(g, x, 1, 20, grad_input=o)


@_tc("aten.elu_backward(is_result)")
def _t_elu_bwd(ins, o):
    g, y = ins
    op = _aten().elu_backward.grad_input
    return lambda: op(g, 1.0, 1, 1, True, y, grad_input=o)


@_tc("aten.log_sigmoid_backward")
def _t_log_sigmoid_bwd(ins, o):
    g, x = ins
    aten = _aten()
    _, buf = aten.log_sigmoid_forward(x)      # the forward's buffer, outside timing
    op = aten.log_sigmoid_backward.grad_input
    return lambda: op(g, x, buf, grad_input=o)


def _copy_make(ins, o):
    from . import _math
    x, = ins
    return lambda: _math.copy(x, out=o)


COPY = Case("copy", "copy", "copy", lambda x: x.copy(),
            Impl("mlkern._math.copy", "mlkern", _copy_make), [_np_copy], [_t_copy],
            memory_bound=True)

CASES = [
    Case("sigmoid", "sigmoid", "fwd", _r_sigmoid, _mk("sigmoid"),
         [_np_expit, _np_sigmoid4], [_t_sigmoid]),
    Case("tanh", "tanh", "fwd", np.tanh, _mk("tanh"), [_np_tanh], [_t_tanh]),
    Case("relu", "relu", "fwd", lambda x: np.maximum(x, 0.0), _mk("relu"),
         [_np_relu], [_t_relu], memory_bound=True),
    Case("softplus", "softplus", "fwd", _r_softplus, _mk("softplus"),
         [_np_softplus], [_t_softplus]),
    Case("silu", "silu", "fwd", lambda x: x * _r_sigmoid(x), _mk("silu"),
         [_np_silu_expit, _np_silu4], [_t_silu]),
    Case("elu", "elu", "fwd", _r_elu, _mk("elu"), [_np_elu], [_t_elu]),
    Case("gelu", "gelu", "fwd", lambda x: x * _r_ndtr(x), _mk("gelu"),
         [_np_gelu], [_t_gelu]),
    Case("gelu_tanh", "gelu_tanh", "fwd", _r_gelu_tanh, _mk("gelu", approximate="tanh"),
         [_np_gelu_tanh], [_t_gelu_tanh]),
    Case("log_sigmoid", "log_sigmoid", "fwd", lambda x: -np.logaddexp(0.0, -x),
         _mk("log_sigmoid"), [_np_log_expit, _np_log_sigmoid], [_t_log_sigmoid]),
    # backward: (grad_output, saved); saved = forward output y or input x
    Case("sigmoid_backward", "sigmoid", "bwd", lambda g, y: g * y * (1.0 - y),
         _mk("sigmoid_backward"), [_np_sigmoid_bwd], [_t_sigmoid_bwd],
         saved="y", y_of=_r_sigmoid, memory_bound=True),
    Case("tanh_backward", "tanh", "bwd", lambda g, y: g * (1.0 - y * y),
         _mk("tanh_backward"), [_np_tanh_bwd], [_t_tanh_bwd],
         saved="y", y_of=np.tanh, memory_bound=True),
    Case("relu_backward", "relu", "bwd", lambda g, x: g * (x > 0),
         _mk("relu_backward"), [_np_relu_bwd], [_t_relu_bwd], memory_bound=True),
    Case("silu_backward", "silu", "bwd",
         lambda g, x: g * _r_sigmoid(x) * (1.0 + x * _r_sigmoid(-x)),
         _mk("silu_backward"), [_np_silu_bwd, _np_silu_bwd4], [_t_silu_bwd]),
    Case("gelu_backward", "gelu", "bwd", lambda g, x: g * (_r_ndtr(x) + x * _r_npdf(x)),
         _mk("gelu_backward"), [_np_gelu_bwd], [_t_gelu_bwd]),
    Case("gelu_tanh_backward", "gelu_tanh", "bwd", lambda g, x: g * _r_gelu_tanh_grad(x),
         _mk("gelu_backward", approximate="tanh"), [_np_gelu_tanh_bwd], [_t_gelu_tanh_bwd]),
    Case("softplus_backward", "softplus", "bwd", lambda g, x: g * _r_sigmoid(x),
         _mk("softplus_backward"), [_np_softplus_bwd, _np_softplus_bwd4], [_t_softplus_bwd]),
    Case("elu_backward", "elu", "bwd", lambda g, y: g * np.where(y > 0, 1.0, y + 1.0),
         _mk("elu_backward"), [_np_elu_bwd], [_t_elu_bwd],
         saved="y", y_of=_r_elu, memory_bound=True),
    Case("log_sigmoid_backward", "log_sigmoid", "bwd", lambda g, x: g * _r_sigmoid(-x),
         _mk("log_sigmoid_backward"), [_np_log_sigmoid_bwd, _np_log_sigmoid_bwd3],
         [_t_log_sigmoid_bwd]),
]
CASES_BY_NAME = {c.name: c for c in CASES}
FAMILIES = list(dict.fromkeys(c.family for c in CASES))


def select_functions(spec):
    """(elementwise cases, row-wise cases) for a comma list of names.

    A family name ("sigmoid", "softmax", "log_softmax") selects the function
    and its backward, "sigmoid_forward" the function only,
    "sigmoid_backward" the backward only; "forward"/"backward" select all of
    a kind (both registries); "elementwise" (or "activations") all of
    :data:`CASES`, "rowwise" all of :data:`ROW_CASES`, "losses" the
    elementwise :data:`LOSS_CASES` and the row-shaped
    :data:`LOSS_ROW_CASES` (returned with the row-wise cases); None or
    "all" selects everything."""
    if spec is None or spec.strip() in ("", "all"):
        return CASES + LOSS_CASES, ROW_CASES + LOSS_ROW_CASES
    chosen = []
    by_name = {**CASES_BY_NAME, **ROW_CASES_BY_NAME, **LOSS_CASES_BY_NAME}
    every = CASES + ROW_CASES + LOSS_CASES + LOSS_ROW_CASES
    families = FAMILIES + [f for f in ROW_FAMILIES if f not in FAMILIES] + ["losses"]
    for tok in (t.strip() for t in spec.split(",")):
        if not tok:
            continue
        if tok in ("forward", "fwd"):
            hits = [c for c in every if c.kind == "fwd"]
        elif tok in ("backward", "bwd"):
            hits = [c for c in every if c.kind == "bwd"]
        elif tok in ("elementwise", "activations"):
            hits = list(CASES)
        elif tok in ("rowwise", "row-wise", "row_wise"):
            hits = list(ROW_CASES)
        elif tok in families:
            hits = [c for c in every if c.family == tok]
        elif tok.endswith("_forward") and tok[:-len("_forward")] in families:
            hits = [by_name[tok[:-len("_forward")]]]
        elif tok in by_name:
            hits = [by_name[tok]]
        else:
            raise ValueError(f"unknown function {tok!r}; choose from: {', '.join(families)} "
                             "(with its backward), <name>_forward, <name>_backward, "
                             "forward, backward, elementwise, rowwise, losses")
        chosen.extend(c for c in hits if c not in chosen)
    return ([c for c in CASES + LOSS_CASES if c in chosen],
            [c for c in ROW_CASES + LOSS_ROW_CASES if c in chosen])


def select_cases(spec):
    """The elementwise cases of :func:`select_functions` (row-wise names are
    accepted and select nothing here)."""
    return select_functions(spec)[0]


# ------------------------------------------------------------------ inputs and checks
class Inputs:
    """x ~ 3 N(0,1) and g ~ N(0,1) per (n, dtype), generated once; saved
    forward outputs per family.  The same n gives the same values in both
    dtypes (float32 is the float64 draw rounded)."""

    def __init__(self):
        self._cache = {}

    def _get(self, key, fn):
        v = self._cache.get(key)
        if v is None:
            v = self._cache[key] = fn()
        return v

    def x(self, n, dtype):
        dtype = np.dtype(dtype)
        x64 = self._get(("x", n, "f64"),
                        lambda: 3.0 * np.random.default_rng([n, 0]).standard_normal(n))
        if dtype == np.float64:
            return x64
        return self._get(("x", n, dtype.str), lambda: x64.astype(dtype))

    def g(self, n, dtype):
        dtype = np.dtype(dtype)
        return self._get(("g", n, dtype.str),
                         lambda: np.random.default_rng([n, 1]).standard_normal(n).astype(dtype))

    def for_case(self, case, n, dtype):
        """The input tuple of ``case``: (x,) or (g, saved); a loss's (pred, target)."""
        if isinstance(case, LossCase):
            return case.inputs(self, n, dtype)
        x = self.x(n, dtype)
        if case.n_inputs == 1:
            return (x,)
        if case.saved == "y":
            with np.errstate(all="ignore"):
                s = self._get(("y", case.family, n, np.dtype(dtype).str),
                              lambda: case.y_of(self.x(n, np.float64)).astype(dtype))
        else:
            s = x
        return (self.g(n, dtype), s)

    def drop(self):
        """Forget all cached arrays."""
        self._cache.clear()


def new_output(like):
    """A preallocated output, filled with NaN (pages touched, stale values visible)."""
    o = np.empty_like(like)
    o.fill(np.nan)
    return o


def check(case, ins, out):
    """Compare ``out`` with the float64 reference on (a strided subset of) the
    inputs.  Returns a dict: ok, err (max abs err / max(1, max|ref|)), tol,
    and where the worst element is (index, inputs, got, ref)."""
    out = np.asarray(out)
    n = out.size
    step = max(1, n // CHECK_POINTS)
    sl = slice(None, None, step)
    sub = [np.asarray(a).reshape(-1)[sl] for a in ins]
    with np.errstate(all="ignore"):
        ref = np.asarray(case.ref(*(a.astype(np.float64) for a in sub)), dtype=np.float64)
        got = out.reshape(-1)[sl].astype(np.float64)
        d = np.abs(got - ref)
        both_nan = np.isnan(got) & np.isnan(ref)
        d[both_nan] = 0.0
        d[np.isnan(d)] = np.inf
        finite_ref = np.abs(ref[np.isfinite(ref)])
        den = max(1.0, float(finite_ref.max()) if finite_ref.size else 1.0)
    i = int(np.argmax(d)) if d.size else 0
    err = float(d[i] / den) if d.size else 0.0
    tol = TOL[np.dtype(out.dtype)]
    return {"ok": bool(err <= tol), "err": err, "tol": tol, "index": i * step,
            "inputs": [float(a[i]) for a in sub] if d.size else [],
            "got": float(got[i]) if d.size else None,
            "ref": float(ref[i]) if d.size else None}


def assert_close(case, ins, out, label=""):
    """check() and raise AssertionError with the details on a mismatch."""
    r = check(case, ins, out)
    if not r["ok"]:
        names = ("x",) if case.n_inputs == 1 else ("g", case.saved)
        inp = ", ".join(f"{k}={v!r}" for k, v in zip(names, r["inputs"]))
        raise AssertionError(
            f"{label or case.name}: max abs err / max(1,max|ref|) = {r['err']:.3g} > {r['tol']:g} "
            f"at index {r['index']} ({inp}): got {r['got']!r}, reference {r['ref']!r}")
    return r


def to_torch(arrays):
    """Tensors sharing memory with the given NumPy arrays."""
    torch = _import_torch()
    return tuple(torch.from_numpy(a) for a in arrays)


def prepare(impl, ins, out):
    """The timed callable of ``impl`` writing into ``out`` (a NumPy array)."""
    if impl.runtime == "torch":
        tin = to_torch(ins)
        (tout,) = to_torch((out,))
        return impl.make(tin, tout)
    return impl.make(ins, out)


# ------------------------------------------------------------------ timing
class Settings:
    def __init__(self, full=False, repeats=7):
        self.full = full
        self.repeats = max(1, repeats)
        if full:
            self.warm_ns = 50_000_000
            self.total_ns = 200_000_000
            self.repeat_ns = self.total_ns // 7
        else:
            self.warm_ns = 30_000_000
            self.total_ns = 140_000_000
            self.repeat_ns = 20_000_000


class Timer:
    """Times one zero-argument callable: warm-up, inner count k, repeats."""

    def __init__(self, f, settings, first_done=False):
        self.f, self.s = f, settings
        self.first_done = first_done
        self.k = 1
        self.R = settings.repeats
        self.samples = []

    def warm(self):
        f, pc = self.f, _pc
        if self.first_done and getattr(f, "first_ns", None) is not None:
            first = f.first_ns
        else:
            t0 = pc()
            f()                              # first call: thrown away
            first = pc() - t0
        # quick mode: the first call counts toward the warm-up time, and a
        # first call that alone lasts the warm-up time is the whole warm-up
        if not self.s.full and first >= self.s.warm_ns:
            per = float(first)
        else:
            budget = self.s.warm_ns - (0 if self.s.full else first)
            calls = 0
            t0 = pc()
            el = 0
            while calls == 0 or el < budget:
                f()
                calls += 1
                el = pc() - t0
            per = max(el / calls, 1.0)
        self.k = max(1, math.ceil(self.s.repeat_ns / per))
        self.R = max(self.s.repeats, math.ceil(self.s.total_ns / (self.k * per)))

    def once(self):
        f, k, pc = self.f, self.k, _pc
        r = range(k)
        t0 = pc()
        for _ in r:
            f()
        took = pc() - t0
        self.samples.append(took / k)
        if k > 1 and took > 4 * self.s.repeat_ns:
            # the calls got much slower than in the warm-up (a busy vCPU):
            # shorten the next repeats rather than run for seconds
            self.k = max(1, int(k * self.s.repeat_ns / took))

    @property
    def done(self):
        return len(self.samples) >= self.R

    def stats(self):
        a = np.asarray(self.samples, dtype=np.float64)
        q1, med, q3 = np.percentile(a, [25, 50, 75])
        return {"median_ns": float(med), "min_ns": float(a.min()), "q1_ns": float(q1),
                "q3_ns": float(q3), "repeats": int(a.size), "inner": int(self.k)}


def time_round_robin(funcs, settings, first_done=False):
    """Warm all, then one repeat of each in turn until each has its repeats."""
    timers = [Timer(f, settings, first_done) for f in funcs]
    for t in timers:
        t.warm()
    while not all(t.done for t in timers):
        for t in timers:
            if not t.done:
                t.once()
    return [t.stats() for t in timers]


def time_one(f, settings, first_done=False):
    """Warm-up and repeats of one callable; also the process CPU time / wall
    time over the repeats ("cpu_per_wall": ~T when the T threads kept their
    vCPUs, less when another process took one)."""
    t = Timer(f, settings, first_done)
    t.warm()
    c0, w0 = time.process_time_ns(), _pc()
    while not t.done:
        t.once()
    st = t.stats()
    st["cpu_per_wall"] = (time.process_time_ns() - c0) / max(1, _pc() - w0)
    return st


# ------------------------------------------------------------------ the run
def _parse_sizes(s):
    out = []
    for tok in s.split(","):
        tok = tok.strip()
        if tok:
            v = float(tok)
            if v < 1 or v != int(v):
                raise ValueError(f"--sizes: not a positive integer: {tok!r}")
            out.append(int(v))
    return out


def fmt_n(n):
    e = int(round(math.log10(n))) if n > 0 else 0
    return f"1e{e}" if 10 ** e == n else str(n)


def dtype_tag(dtype):
    return {np.dtype(np.float32): "f32", np.dtype(np.float64): "f64"}[np.dtype(dtype)]


class Record(dict):
    """One measured (case, impl, dtype, n, threads)."""


class Runner:
    def __init__(self, cases, sizes, dtypes, threads, settings, use_torch=True,
                 progress=True, stream=sys.stdout):
        self.cases, self.sizes, self.dtypes, self.threads = cases, sizes, dtypes, threads
        self.s = settings
        self.use_torch = use_torch and _import_torch() is not None
        self.inputs = Inputs()
        self.records = []
        self.mismatches = []
        self.progress = progress
        self.stream = stream
        self._done = 0
        self._total = 0
        self._outs = {}
        self._np_seen = {}      # (case, dtype) -> {impl name: ns/el} at the last size
        self.pruned = []

    # -- helpers
    def _runtimes(self):
        return ("mlkern", "numpy", "torch") if self.use_torch else ("mlkern", "numpy")

    def _tag(self, n):
        """How a unit's size shows in the progress line."""
        return fmt_n(n)

    def _tick(self, what):
        self._done += 1
        if self.progress:
            sys.stderr.write(f"\r  [{self._done:3d}/{self._total}] {what:<48}")
            sys.stderr.flush()

    def _out(self, n, dtype, slot):
        """Reused output buffers (no fresh page faults per case), NaN-filled."""
        key = (n, np.dtype(dtype).str, slot)
        o = self._outs.get(key)
        if o is None:
            o = self._outs[key] = np.empty(n, dtype=dtype)
        o.fill(np.nan)
        return o

    def _setup(self, case, impl, n, dtype, T=1, slot=0):
        ins = self.inputs.for_case(case, n, dtype)
        out = self._out(n, dtype, slot)
        f = prepare(impl, ins, out)
        t0 = _pc()
        res = f()                 # the first call: thrown away (timed for the warm-up)
        first_ns = _pc() - t0
        try:
            f.first_ns = first_ns
        except AttributeError:    # not a Python function: the warm-up times its own first call
            pass
        if isinstance(case, LossCase):
            chk = loss_check(ins, res, case.reference(self.inputs, n, ins))
        else:
            chk = check(case, ins, out)
        del res
        if not chk["ok"]:
            self.mismatches.append({"case": case.name, "impl": impl.name, "dtype": dtype_tag(dtype),
                                    "n": n, "threads": T, **chk})
        return f, chk, out

    def _record(self, case, impl, n, dtype, T, st, chk, carried=False):
        itemsize = np.dtype(dtype).itemsize
        ns_el = st["median_ns"] / n
        rec = Record(function=case.name, kind=case.kind, dtype=dtype_tag(dtype), n=n, threads=T,
                     impl=impl.name, label=impl.label, runtime=impl.runtime,
                     ns_per_el=ns_el, gbps=case.bytes_per_el * itemsize / ns_el,
                     ok=chk["ok"], err=chk["err"], carried_1T=carried,
                     allocates=impl.allocates, **st)
        self.records.append(rec)
        return rec

    # -- phases
    def _numpy_impls(self, case, n, dtype):
        """The numpy/scipy peers to time.  Quick mode, n >= 1e6: only those
        within 1.5x of the best one at the previous (smaller) size."""
        impls = case.impls(("numpy",))
        seen = self._np_seen.get((case.name, dtype_tag(dtype)))
        if self.s.full or n < 10 ** 6 or not seen or len(impls) < 2:
            return impls
        best = min(seen.values())
        keep = [i for i in impls if seen.get(i.name, 0.0) <= 1.5 * best]
        for i in impls:
            if i not in keep:
                self.pruned.append({"case": case.name, "dtype": dtype_tag(dtype), "n": n,
                                    "impl": i.name})
        return keep

    def _remember_numpy(self, case, dtype, impls, stats, n):
        self._np_seen[(case.name, dtype_tag(dtype))] = {
            i.name: st["median_ns"] / n for i, st in zip(impls, stats) if i.runtime == "numpy"}

    def _impls(self, case, n, dtype, runtimes):
        out = []
        for rt in runtimes:
            out.extend(self._numpy_impls(case, n, dtype) if rt == "numpy" else case.impls((rt,)))
        return out

    def _t1_case(self, case, n, dtype):
        impls = self._impls(case, n, dtype, self._runtimes())
        prepared = [self._setup(case, i, n, dtype, 1, slot) for slot, i in enumerate(impls)]
        stats = time_round_robin([p[0] for p in prepared], self.s, first_done=True)
        for impl, (f, chk, out), st in zip(impls, prepared, stats):
            self._record(case, impl, n, dtype, 1, st, chk)
        self._remember_numpy(case, dtype, impls, stats, n)
        return impls, prepared, stats

    def _numpy_only(self, case, n, dtype):
        impls = self._numpy_impls(case, n, dtype)
        prepared = [self._setup(case, i, n, dtype, 1, slot) for slot, i in enumerate(impls)]
        stats = time_round_robin([p[0] for p in prepared], self.s, first_done=True)
        self._remember_numpy(case, dtype, impls, stats, n)
        return list(zip(impls, [p[1] for p in prepared], stats))

    def _units(self):
        """(case, dtype, n) in run order: by n, then dtype, then case; the copy
        roof at 1e7 always, first in its group."""
        big = 10 ** 7
        units = []
        sizes = list(self.sizes) + ([big] if big not in self.sizes else [])
        for n in sizes:
            for dtype in self.dtypes:
                if n == big:
                    units.append((COPY, dtype, n))
                if n in self.sizes:
                    units.extend((c, dtype, n) for c in self.cases)
                if n == big and n in self.sizes and self.cases:
                    # the roof again after the cases: it is the best of both (drift)
                    units.append((COPY, dtype, n))
        return units

    def _each_unit(self):
        """Iterate the units.  Inputs and outputs stay cached for the whole
        run (a few hundred MB at 1e7), so the T=2 phases reuse the T=1 draws."""
        yield from self._units()

    def run(self):
        import mlkern
        units = self._units()
        par = [T for T in self.threads if T != 1]
        blocks = ["mlkern"] + (["torch"] if self.use_torch else [])
        self._total = len(units) * ((1 in self.threads) + len(par) * len(blocks))
        carried = {}    # (case, dtype, n) -> [(impl, chk, stats)] of numpy at T=1
        with np.errstate(all="ignore"):
            # T=1: all runtimes of a case round-robin
            if 1 in self.threads:
                with mlkern.threads(1):
                    for case, dtype, n in self._each_unit():
                        if self.use_torch:
                            set_torch_threads(1)
                        impls, prepared, stats = self._t1_case(case, n, dtype)
                        carried[(case.name, dtype_tag(dtype), n)] = [
                            (i, p[1], st) for i, p, st in zip(impls, prepared, stats)
                            if i.runtime == "numpy"]
                        self._tick(f"{case.name} {dtype_tag(dtype)} {self._tag(n)} T1")
            for T in par:
                # numpy/scipy: single-threaded, T=1 time carried over (measured now if needed)
                for case, dtype, n in (self._each_unit() if 1 not in self.threads else units):
                    key = (case.name, dtype_tag(dtype), n)
                    if key not in carried:
                        carried[key] = self._numpy_only(case, n, dtype)
                    for impl, chk, st in carried[key]:
                        self._record(case, impl, n, dtype, T, st, chk, carried=True)
                # the parallel runtimes one after the other, never interleaved
                for rt in blocks:
                    for case, dtype, n in self._each_unit():
                        for impl in case.impls((rt,)):
                            if rt == "mlkern":
                                with mlkern.threads(T):
                                    f, chk, out = self._setup(case, impl, n, dtype, T)
                                    st = time_one(f, self.s, first_done=True)
                            else:
                                set_torch_threads(T)
                                f, chk, out = self._setup(case, impl, n, dtype, T)
                                st = time_one(f, self.s, first_done=True)
                            self._record(case, impl, n, dtype, T, st, chk)
                            del f, out
                        self._tick(f"{case.name} {dtype_tag(dtype)} {self._tag(n)} T{T} {rt}")
        self.inputs.drop()
        self._outs.clear()
        if self.progress:
            sys.stderr.write("\r" + " " * 64 + "\r")
            sys.stderr.flush()
        mark_stalls(self.records)
        return self.records


def mark_stalls(records):
    """Flag T>1 records with the signature of a stalled parallel region
    (a call of >= 1 ms that is > 1.25x slower than the same peer at T=1):
    on this 2-vCPU VM that is a worker waiting for a busy or descheduled
    vCPU (another process running, or two OpenMP runtimes interleaved)."""
    key = lambda r: (r["function"], r["impl"], r["dtype"], r["n"],  # noqa: E731
                     tuple(r.get("shape") or ()), r.get("axis"))
    t1 = {key(r): r["median_ns"] for r in records if r["threads"] == 1}
    for r in records:
        base = t1.get(key(r))
        slow = (base is not None and r["median_ns"] >= 1e6 and r["median_ns"] > 1.25 * base)
        # the T threads did not keep their vCPUs (another process ran)
        starved = r.get("cpu_per_wall", r["threads"]) < 0.75 * r["threads"]
        r["stalled"] = bool(r["threads"] > 1 and not r["carried_1T"] and (slow or starved))


def measure_overhead(dtypes, settings, use_torch):
    """Per-call time (ns) of a 16-element sigmoid with out=, T=1, round-robin."""
    import mlkern
    rows = []
    with np.errstate(all="ignore"), mlkern.threads(1):
        if use_torch:
            set_torch_threads(1)
        for dtype in dtypes:
            x = (3.0 * np.random.default_rng([16, 0]).standard_normal(16)).astype(dtype)
            outs = [np.empty_like(x) for _ in range(3)]
            funcs = [("mlkern.sigmoid(out=)", lambda: mlkern.sigmoid(x, out=outs[0]))]
            if _sps is not None:
                funcs.append(("scipy.special.expit(out=)", lambda: _sps.expit(x, out=outs[1])))
            else:
                funcs.append(("np 1/(1+exp(-x)) 4-pass", _np_sigmoid4.make((x,), outs[1])))
            if use_torch:
                tx, to = to_torch((x, outs[2]))
                funcs.append(("torch.sigmoid(out=)", lambda: _torch.sigmoid(tx, out=to)))
            stats = time_round_robin([f for _, f in funcs], settings)
            for (name, _), st in zip(funcs, stats):
                rows.append({"dtype": dtype_tag(dtype), "n": 16, "impl": name, **st})
    return rows


# ------------------------------------------------------------------ report
def _best(recs):
    """Fastest record, preferring those that passed the check."""
    if not recs:
        return None
    good = [r for r in recs if r["ok"]]
    return min(good or recs, key=lambda r: r["median_ns"])


def _fmt(v, width=7):
    if v is None:
        return "-".rjust(width)
    if v >= 100:
        s = f"{v:.0f}"
    elif v >= 10:
        s = f"{v:.1f}"
    elif v >= 1:
        s = f"{v:.2f}"
    else:
        s = f"{v:.3f}"
    return s.rjust(width)


def _ratio(peer, mine):
    if peer is None or mine is None:
        return "-"
    return f"{peer['median_ns'] / mine['median_ns']:.2f}x"


def roofs(records):
    """(dtype, threads) -> (best copy GB/s, its impl name), from copy rows at n >= roof size."""
    out = {}
    for r in records:
        if r["function"] != "copy" or r["n"] * np.dtype(DTYPES[r["dtype"]]).itemsize < ROOF_BYTES:
            continue
        if not r["ok"] or r.get("stalled"):
            continue
        key = (r["dtype"], r["threads"])
        if key not in out or r["gbps"] > out[key][0]:
            out[key] = (r["gbps"], r["impl"] + (" [1T]" if r["carried_1T"] else ""))
    return out


def report_overhead(overhead, stream=sys.stdout):
    if overhead:
        print("", file=stream)
        print("Per-call overhead, 16 elements, T=1 (median ns per call):", file=stream)
        for dt in dict.fromkeys(o["dtype"] for o in overhead):
            parts = [f"{o['impl']} {o['median_ns']:.0f} ns" for o in overhead if o["dtype"] == dt]
            print(f"  {dt}: " + ";  ".join(parts), file=stream)


def report(records, mismatches, overhead, info, use_torch, pruned=(), stream=sys.stdout):
    p = lambda *a: print(*a, file=stream)  # noqa: E731
    rf = roofs(records)
    by = {}
    for r in records:
        by.setdefault((r["function"], r["dtype"], r["n"], r["threads"]), []).append(r)

    report_overhead(overhead, stream)

    p("")
    p("Memory roof: copy at 1e7 elements, GB/s (bytes read + written / median time; "
      "best of the runs before and after the cases):")
    for dt in ("f32", "f64"):
        for T in sorted({r["threads"] for r in records}):
            rows = by.get(("copy", dt, 10 ** 7, T))
            if not rows:
                continue
            best = {}
            for r in rows:            # measured before and after the cases: keep the best
                if r["impl"] not in best or r["gbps"] > best[r["impl"]]["gbps"]:
                    best[r["impl"]] = r
            parts = []
            for r in best.values():
                tag = " [1T]" if r["carried_1T"] else ""
                bad = (" [!]" if not r["ok"] else "") + (" [s]" if r.get("stalled") else "")
                parts.append(f"{r['impl']}{tag} {r['gbps']:.1f}{bad}")
            p(f"  {dt} T={T}: " + ";  ".join(parts))

    p("")
    hdr = (f"{'function':<26}{'dtype':<6}{'n':>5}{'T':>3} {'mlkern':>7} {'GB/s':>6} {'%roof':>5} |"
           f" {'numpy/scipy best':<33}{'ns/el':>7} {'speedup':>8}")
    if use_torch:
        hdr += f" | {'torch':<28}{'ns/el':>7} {'speedup':>8}"
    p("ns/el = median time per element; speedup = peer time / mlkern time (> 1: mlkern faster)")
    p("[1T] numpy/scipy T=1 time carried over (single-threaded); [a] peer allocates; "
      "[!] failed the value check;")
    p("[s] T=2 time unusable: >= 1 ms and > 1.25x slower than at T=1, or the process got < 0.75*T "
      "CPUs while timing (another process held a vCPU)")
    p(hdr)
    p("-" * len(hdr))
    order = {c.name: i for i, c in enumerate([COPY] + CASES + LOSS_CASES)}
    keys = sorted((k for k in by if k[0] != "copy"),
                  key=lambda k: (order.get(k[0], 99), k[1], k[2], k[3]))
    prev = None
    for key in keys:
        fn, dt, n, T = key
        rows = by[key]
        mine = _best([r for r in rows if r["runtime"] == "mlkern"])
        npb = _best([r for r in rows if r["runtime"] == "numpy"])
        tb = _best([r for r in rows if r["runtime"] == "torch"])
        if prev is not None and prev != fn:
            p("")
        prev = fn
        roof = ""
        if mine and n * np.dtype(DTYPES[dt]).itemsize >= ROOF_BYTES and (dt, T) in rf:
            roof = f"{100 * mine['gbps'] / rf[(dt, T)][0]:.0f}%"
        bang = lambda r: ("[!]" if r and not r["ok"] else "") + ("[s]" if r and r.get("stalled") else "")  # noqa: E731,E501
        gbps = f"{mine['gbps']:.1f}" if mine else "-"
        line = (f"{fn:<26}{dt:<6}{fmt_n(n):>5}{T:>3} "
                f"{_fmt(mine and mine['ns_per_el'])}{bang(mine)} "
                f"{gbps:>6} {roof:>5} |")
        if npb:
            name = npb["label"] + (" [1T]" if npb["carried_1T"] else "") + (" [!]" if not npb["ok"] else "")
            line += f" {name[:33]:<33}{_fmt(npb['ns_per_el'])} {_ratio(npb, mine):>8}"
        else:
            line += f" {'(none without scipy)':<33}{'-':>7} {'-':>8}"
        if use_torch:
            if tb:
                name = tb["label"] + (" [!]" if not tb["ok"] else "") + (" [s]" if tb.get("stalled") else "")
                line += f" | {name[:28]:<28}{_fmt(tb['ns_per_el'])} {_ratio(tb, mine):>8}"
            else:
                line += f" | {'-':<28}{'-':>7} {'-':>8}"
        p(line)

    # memory-bound kernels against the roof
    mb = [c.name for c in CASES + LOSS_CASES if c.memory_bound]
    lines = []
    for key in keys:
        fn, dt, n, T = key
        if fn not in mb or n * np.dtype(DTYPES[dt]).itemsize < ROOF_BYTES or (dt, T) not in rf:
            continue
        mine = _best([r for r in by[key] if r["runtime"] == "mlkern"])
        tb = _best([r for r in by[key] if r["runtime"] == "torch"])
        if mine is None:
            continue
        roof_gbps, roof_name = rf[(dt, T)]
        s = (f"  {fn:<21}{dt:<5}{fmt_n(n):>5} T={T}: mlkern {mine['gbps']:5.1f} GB/s = "
             f"{100 * mine['gbps'] / roof_gbps:3.0f}% of {roof_gbps:.1f} ({roof_name})")
        if tb:
            s += f"; torch {tb['gbps']:.1f} GB/s = {100 * tb['gbps'] / roof_gbps:.0f}%"
        lines.append(s)
    if lines:
        p("")
        p("Memory-bound kernels, % of the copy roof (same dtype and threads):")
        for s in lines:
            p(s)

    if pruned:
        p("")
        p("Quick mode: numpy/scipy peers not re-timed at large n (> 1.5x the best one at the "
          "previous size):")
        p("  " + "; ".join(f"{q['case']} {q['dtype']} {fmt_n(q['n'])}: {q['impl']}" for q in pruned))

    if mismatches:
        p("")
        p("VALUE MISMATCHES (max abs err / max(1, max|ref|) against the float64 reference):")
        for m in mismatches:
            names = ("x",) if len(m["inputs"]) == 1 else ("g", "saved")
            inp = ", ".join(f"{k}={v!r}" for k, v in zip(names, m["inputs"]))
            where = m.get("where") or f"index {m['index']} ({inp})"
            p(f"  {m['case']} {m['dtype']} n={fmt_n(m['n'])} T={m['threads']} {m['impl']}: err {m['err']:.3g} > "
              f"{m['tol']:g} at {where}: got {m['got']!r}, ref {m['ref']!r}")


def _loadavg():
    try:
        return os.getloadavg()
    except (OSError, AttributeError):
        return None


def machine_info(use_torch):
    import io
    import mlkern
    buf = io.StringIO()
    cfg = mlkern.show_config(file=buf)
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info = {"mlkern": cfg, "show_config_text": buf.getvalue(), "cpu": cpu,
            "cpu_count": os.cpu_count(), "python": platform.python_version(),
            "numpy": np.__version__, "scipy": scipy.__version__ if scipy else None,
            "torch": _torch.__version__ if (use_torch and _torch) else None,
            "torch_error": _TORCH_ERROR, "loadavg_start": _loadavg(),
            "env": {k: os.environ[k] for k in ("OMP_NUM_THREADS", "MLKERN_CPU", "OPENBLAS_CORETYPE",
                                                "OPENBLAS_L2_SIZE", "OMP_WAIT_POLICY")
                    if k in os.environ}}
    return info


# ================================================================== row-wise functions
# softmax, log_softmax, logsumexp, argmax and the two softmax backwards,
# reduced along one axis of a 2-D or 3-D array.  Their own registry
# (ROW_CASES), inputs (RowInputs), check (row_check), runner (RowRunner)
# and table (report_rowwise); timing and threads as for the elementwise
# cases.

class RowShape:
    """A row-wise case's input shape and the axis reduced over."""
    __slots__ = ("shape", "axis")

    def __init__(self, shape, axis=-1):
        self.shape = tuple(int(s) for s in shape)
        if len(self.shape) < 2 or min(self.shape) < 1:
            raise ValueError(f"--shapes: need a 2-D or higher shape of positive sizes, got {shape!r}")
        nd = len(self.shape)
        if not -nd <= axis < nd:
            raise ValueError(f"--shapes: axis {axis} out of range for shape {self.shape}")
        self.axis = int(axis)

    @property
    def ax(self):
        """The axis as a non-negative index."""
        return self.axis % len(self.shape)

    @property
    def n(self):
        return math.prod(self.shape)

    @property
    def length(self):
        """Elements per row (along the axis)."""
        return self.shape[self.ax]

    @property
    def rows(self):
        return self.n // self.length

    @property
    def lead(self):
        """The shape with the axis removed (a reduction's output shape)."""
        return self.shape[:self.ax] + self.shape[self.ax + 1:]

    @property
    def keepdims_shape(self):
        return self.shape[:self.ax] + (1,) + self.shape[self.ax + 1:]

    @property
    def last(self):
        return self.ax == len(self.shape) - 1

    @property
    def dims(self):
        return "x".join(map(str, self.shape))

    @property
    def spec(self):
        """As given to --shapes: 4096x1000 (last axis) or 64x1000x64:1."""
        return self.dims if self.last else f"{self.dims}:{self.ax}"

    @property
    def tag(self):
        """For benchmark ids: 4096x1000 or 64x1000x64ax1."""
        return self.dims if self.last else f"{self.dims}ax{self.ax}"

    def _key(self):
        return (self.shape, self.ax)

    def __eq__(self, other):
        return isinstance(other, RowShape) and self._key() == other._key()

    def __hash__(self):
        return hash(self._key())

    def __repr__(self):
        return f"RowShape({self.shape}, axis={self.axis})"


#: the issue's shapes: four over the last axis, one reduced over axis 1
ROW_SHAPES = (RowShape((4096, 1000)), RowShape((256, 32000)), RowShape((1_000_000, 10)),
              RowShape((64, 128)), RowShape((64, 1000, 64), 1))
#: small stand-ins used when no --shapes is given and the largest --sizes
#: value is below 1e6 (the CI smoke run ``--sizes 1e3,1e5``): in cache,
#: one over the last axis, one (256k elements, parallel at T=2) over axis 1;
#: ~12 s each for both dtypes and T=1,2 in quick mode
ROW_SHAPES_SMOKE = (RowShape((64, 128)), RowShape((16, 1000, 16), 1))


def parse_shapes(spec):
    """'4096x1000,64x1000x64:1' -> [RowShape, ...] (':k' = reduce over axis k,
    default the last); 'default' / 'smoke' name the two built-in sets."""
    out = []
    for tok in spec.split(","):
        tok = tok.strip().lower()
        if not tok:
            continue
        if tok in ("default", "issue", "full"):
            out.extend(s for s in ROW_SHAPES if s not in out)
            continue
        if tok in ("smoke", "quick", "small"):
            out.extend(s for s in ROW_SHAPES_SMOKE if s not in out)
            continue
        dims, _, ax = tok.partition(":")
        try:
            shape = tuple(int(float(d)) for d in dims.split("x"))
            axis = int(ax) if ax else -1
        except ValueError:
            raise ValueError(f"--shapes: cannot read {tok!r}; write e.g. 4096x1000 or 64x1000x64:1") from None
        s = RowShape(shape, axis)
        if s not in out:
            out.append(s)
    return out


def default_row_shapes(sizes):
    """The row-wise shapes when --shapes is not given (see ROW_SHAPES_SMOKE)."""
    return list(ROW_SHAPES) if sizes and max(sizes) >= 10 ** 6 else list(ROW_SHAPES_SMOKE)


# --- float64 references, ref(*inputs, axis)
def _rr_softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _rr_log_softmax(x, axis):
    z = x - x.max(axis=axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))


def _rr_logsumexp(x, axis):
    m = x.max(axis=axis, keepdims=True)
    return np.squeeze(m + np.log(np.exp(x - m).sum(axis=axis, keepdims=True)), axis=axis)


def _rr_softmax_bwd(g, y, axis):
    return y * (g - (g * y).sum(axis=axis, keepdims=True))


def _rr_log_softmax_bwd(g, y, axis):
    return g - np.exp(y) * g.sum(axis=axis, keepdims=True)


def _rr_argmax(x, axis):
    return np.argmax(x, axis=axis)


class RowCase(Case):
    """A row-wise function: ins = (x,) forward or (grad_output, y) backward;
    ``make(ins, out, axis)`` of each Impl returns the timed callable."""

    def __init__(self, name, family, kind, ref, mlkern, numpy, torch=(), y_of=None,
                 reduces=False, out_dtype=None, nbytes=None):
        super().__init__(name, family, kind, ref, mlkern, numpy, torch, saved="y", y_of=y_of)
        self.reduces = reduces          # output without the axis (logsumexp, argmax)
        self.out_dtype = out_dtype      # None: the input's dtype
        self._nbytes = nbytes

    def nbytes(self, rs, itemsize):
        """Bytes an ideal single pass must read + write (PEERS.md's model)."""
        return self._nbytes(rs.n, rs.rows, itemsize)

    def out_shape(self, rs):
        return rs.lead if self.reduces else rs.shape

    def __repr__(self):
        return f"RowCase({self.name!r})"


def _mkr(fname):
    """mlkern.<fname>(*ins, axis=axis, out=out)."""
    def make(ins, out, axis):
        import mlkern
        f = getattr(mlkern, fname)
        if len(ins) == 1:
            x, = ins
            return lambda: f(x, axis=axis, out=out)
        g, y = ins
        return lambda: f(g, y, axis=axis, out=out)
    return Impl(f"mlkern.{fname}", "mlkern", make, needs=f"mlkern:{fname}")


_amax, _asum = np.maximum.reduce, np.add.reduce


# --- numpy / scipy (single-threaded); the out= forms allocate nothing the size of x
@_np("scipy.special.softmax", needs="scipy", allocates=True)
def _rsp_softmax(ins, o, axis):
    x, = ins
    return lambda: _sps.softmax(x, axis=axis)


@_np("np max,x-m,exp,sum,*1/s (out=)")
def _rnp_softmax(ins, o, axis):
    x, = ins
    m = np.empty(_kd(x.shape, axis), x.dtype)
    s = np.empty_like(m)
    sub, exp, rec, mul = np.subtract, np.exp, np.reciprocal, np.multiply

    def f():
        _amax(x, axis=axis, keepdims=True, out=m)
        sub(x, m, out=o)
        exp(o, out=o)
        _asum(o, axis=axis, keepdims=True, out=s)
        rec(s, out=s)
        mul(o, s, out=o)
    return f


@_np("scipy.special.log_softmax", needs="scipy", allocates=True)
def _rsp_log_softmax(ins, o, axis):
    x, = ins
    return lambda: _sps.log_softmax(x, axis=axis)


@_np("np x-(m+log(sum(exp(x-m)))) (out=)")
def _rnp_log_softmax(ins, o, axis):
    x, = ins
    m = np.empty(_kd(x.shape, axis), x.dtype)
    s = np.empty_like(m)
    sub, exp, log, add = np.subtract, np.exp, np.log, np.add

    def f():
        _amax(x, axis=axis, keepdims=True, out=m)
        sub(x, m, out=o)
        exp(o, out=o)
        _asum(o, axis=axis, keepdims=True, out=s)
        log(s, out=s)
        add(s, m, out=s)                 # s = logsumexp
        sub(x, s, out=o)
    return f


@_np("scipy.special.logsumexp", needs="scipy", allocates=True)
def _rsp_logsumexp(ins, o, axis):
    x, = ins
    return lambda: _sps.logsumexp(x, axis=axis)


@_np("np m+log(sum(exp(x-m))) (out=)")
def _rnp_logsumexp(ins, o, axis):
    x, = ins
    t = np.empty_like(x)                 # exp(x - m) needs a place; allocated once
    m = np.empty(_kd(x.shape, axis), x.dtype)
    mv = m.reshape(o.shape)
    sub, exp, log, add = np.subtract, np.exp, np.log, np.add

    def f():
        _amax(x, axis=axis, keepdims=True, out=m)
        sub(x, m, out=t)
        exp(t, out=t)
        _asum(t, axis=axis, out=o)
        log(o, out=o)
        add(o, mv, out=o)
    return f


@_np("np.argmax(out=)")
def _rnp_argmax(ins, o, axis):
    x, = ins
    return lambda: np.argmax(x, axis=axis, out=o)


@_np("np y*(g-sum(g*y)) (out=)")
def _rnp_softmax_bwd(ins, o, axis):
    g, y = ins
    s = np.empty(_kd(g.shape, axis), g.dtype)
    mul, sub = np.multiply, np.subtract

    def f():
        mul(g, y, out=o)
        _asum(o, axis=axis, keepdims=True, out=s)
        sub(g, s, out=o)
        mul(o, y, out=o)
    return f


@_np("np y*(g-vecdot(g,y)) (out=)")
def _rnp_softmax_bwd_vecdot(ins, o, axis):
    g, y = ins
    s = np.empty(_kd(g.shape, axis), g.dtype)
    sv = s.reshape(tuple(d for i, d in enumerate(g.shape) if i != axis % g.ndim))
    vecdot, mul, sub = np.vecdot, np.multiply, np.subtract

    def f():
        vecdot(g, y, axis=axis, out=sv)
        sub(g, s, out=o)
        mul(o, y, out=o)
    return f


@_np("np g-exp(y)*sum(g) (out=)")
def _rnp_log_softmax_bwd(ins, o, axis):
    g, y = ins
    s = np.empty(_kd(g.shape, axis), g.dtype)
    exp, mul, sub = np.exp, np.multiply, np.subtract

    def f():
        _asum(g, axis=axis, keepdims=True, out=s)
        exp(y, out=o)
        mul(o, s, out=o)
        sub(g, o, out=o)
    return f


def _kd(shape, axis):
    s = list(shape)
    s[axis] = 1
    return tuple(s)


# --- torch: ATen's out= variants on tensors sharing the NumPy buffers
@_tc("aten._softmax.out")
def _rt_softmax(ins, o, axis):
    x, = ins
    op = _aten()._softmax.out
    return lambda: op(x, axis, False, out=o)


@_tc("aten._log_softmax.out")
def _rt_log_softmax(ins, o, axis):
    x, = ins
    op = _aten()._log_softmax.out
    return lambda: op(x, axis, False, out=o)


@_tc("torch.logsumexp(out=)")
def _rt_logsumexp(ins, o, axis):
    x, = ins
    lse = _torch.logsumexp
    return lambda: lse(x, axis, out=o)


@_tc("torch.argmax(out=)")
def _rt_argmax(ins, o, axis):
    x, = ins
    am = _torch.argmax
    return lambda: am(x, axis, out=o)


@_tc("aten._softmax_backward_data.out")
def _rt_softmax_bwd(ins, o, axis):
    g, y = ins
    op = _aten()._softmax_backward_data.out
    dt = g.dtype
    return lambda: op(g, y, axis, dt, grad_input=o)


@_tc("aten._log_softmax_backward_data.out")
def _rt_log_softmax_bwd(ins, o, axis):
    g, y = ins
    op = _aten()._log_softmax_backward_data.out
    dt = g.dtype
    return lambda: op(g, y, axis, dt, out=o)


_B_SOFTMAX = lambda n, rows, isz: 2 * n * isz        # noqa: E731  read x, write y
_B_LSE = lambda n, rows, isz: n * isz + rows * isz   # noqa: E731  read x, write one per row
_B_ARGMAX = lambda n, rows, isz: n * isz + 8 * rows  # noqa: E731  read x, write int64 per row
_B_BWD = lambda n, rows, isz: 3 * n * isz            # noqa: E731  read g, y, write grad

ROW_CASES = [
    RowCase("softmax", "softmax", "fwd", _rr_softmax, _mkr("softmax"),
            [_rsp_softmax, _rnp_softmax], [_rt_softmax], nbytes=_B_SOFTMAX),
    RowCase("log_softmax", "log_softmax", "fwd", _rr_log_softmax, _mkr("log_softmax"),
            [_rsp_log_softmax, _rnp_log_softmax], [_rt_log_softmax], nbytes=_B_SOFTMAX),
    RowCase("logsumexp", "logsumexp", "fwd", _rr_logsumexp, _mkr("logsumexp"),
            [_rsp_logsumexp, _rnp_logsumexp], [_rt_logsumexp], reduces=True, nbytes=_B_LSE),
    RowCase("argmax", "argmax", "fwd", _rr_argmax, _mkr("argmax"),
            [_rnp_argmax], [_rt_argmax], reduces=True, out_dtype=np.int64, nbytes=_B_ARGMAX),
    RowCase("softmax_backward", "softmax", "bwd", _rr_softmax_bwd, _mkr("softmax_backward"),
            [_rnp_softmax_bwd] + ([_rnp_softmax_bwd_vecdot] if hasattr(np, "vecdot") else []),
            [_rt_softmax_bwd], y_of=_rr_softmax, nbytes=_B_BWD),
    RowCase("log_softmax_backward", "log_softmax", "bwd", _rr_log_softmax_bwd,
            _mkr("log_softmax_backward"), [_rnp_log_softmax_bwd], [_rt_log_softmax_bwd],
            y_of=_rr_log_softmax, nbytes=_B_BWD),
]
ROW_CASES_BY_NAME = {c.name: c for c in ROW_CASES}
ROW_FAMILIES = list(dict.fromkeys(c.family for c in ROW_CASES))


class RowInputs:
    """x ~ 2 N(0,1) (logits) and g ~ N(0,1) per (shape, dtype), generated
    once; y = the float64 softmax / log_softmax of x, rounded, for the
    backwards.  float32 is the float64 draw rounded."""

    def __init__(self):
        self._cache = {}

    def _get(self, key, fn):
        v = self._cache.get(key)
        if v is None:
            v = self._cache[key] = fn()
        return v

    def x(self, rs, dtype):
        dtype = np.dtype(dtype)
        x64 = self._get(("x", rs.shape, "f8"),
                        lambda: 2.0 * np.random.default_rng([2, *rs.shape]).standard_normal(rs.shape))
        if dtype == np.float64:
            return x64
        return self._get(("x", rs.shape, dtype.str), lambda: x64.astype(dtype))

    def g(self, rs, dtype):
        dtype = np.dtype(dtype)
        return self._get(("g", rs.shape, dtype.str),
                         lambda: np.random.default_rng([3, *rs.shape]).standard_normal(rs.shape)
                         .astype(dtype, copy=False))

    def for_case(self, case, rs, dtype):
        """(x,) or (g, y) of ``case``; a loss's (logits, labels)."""
        if isinstance(case, LossCase):
            return case.inputs(self, rs, dtype)
        if case.kind == "fwd":
            return (self.x(rs, dtype),)
        y = self._get(("y", case.family, rs.shape, rs.ax, np.dtype(dtype).str),
                      lambda: case.y_of(self.x(rs, np.float64), rs.axis).astype(dtype, copy=False))
        return (self.g(rs, dtype), y)

    def drop(self):
        self._cache.clear()


def new_row_output(case, rs, dtype):
    """A preallocated output of ``case``, NaN-filled (-1 for argmax's int64)."""
    o = np.empty(case.out_shape(rs), dtype=case.out_dtype or dtype)
    o.fill(-1 if o.dtype.kind == "i" else np.nan)
    return o


def _row_sample(rs):
    """A strided subset of the rows (<= ~CHECK_POINTS elements, >= 8 rows
    where there are): the multi-index over the non-reduced axes."""
    step = max(1, min(max(1, rs.rows // 8), math.ceil(rs.n / CHECK_POINTS)))
    return np.unravel_index(np.arange(0, rs.rows, step), rs.lead)


def row_check(case, ins, out, rs):
    """Compare ``out`` with the float64 reference on a subset of the rows.
    Returns a dict as :func:`check` does (ok, err, tol) and where the worst
    element is (row = multi-index over the other axes, col, got, ref)."""
    out = np.asarray(out)
    if out.shape != case.out_shape(rs):
        return {"ok": False, "err": float("inf"), "tol": 0.0, "row": None, "col": None,
                "got": f"shape {out.shape}", "ref": f"shape {case.out_shape(rs)}"}
    idx = _row_sample(rs)
    rows = [np.moveaxis(np.asarray(a), rs.ax, -1)[idx].astype(np.float64) for a in ins]  # (k, L)
    got = out[idx] if case.reduces else np.moveaxis(out, rs.ax, -1)[idx]
    with np.errstate(all="ignore"):
        ref = case.ref(*rows, -1)
    k = len(idx[0])
    if case.out_dtype is not None and np.dtype(case.out_dtype).kind == "i":     # argmax
        got = got.astype(np.int64)
        x = rows[0]
        r = np.arange(k)
        okv = (got == ref) | ((got >= 0) & (got < rs.length)
                              & (x[r, np.clip(got, 0, rs.length - 1)] == x[r, ref]))  # a tie
        bad = np.flatnonzero(~okv)
        i = int(bad[0]) if bad.size else 0
        row = tuple(int(a[i]) for a in idx)
        return {"ok": not bad.size, "err": float(bad.size) / max(1, k), "tol": 0.0,
                "row": row, "col": None, "got": int(got[i]), "ref": int(ref[i])}
    got = got.astype(np.float64)
    with np.errstate(all="ignore"):
        d = np.abs(got - ref)
        d[np.isnan(got) & np.isnan(ref)] = 0.0
        d[np.isnan(d)] = np.inf
        fin = np.abs(ref[np.isfinite(ref)])
        den = max(1.0, float(fin.max()) if fin.size else 1.0)
    j = int(np.argmax(d)) if d.size else 0
    wi = np.unravel_index(j, d.shape) if d.size else (0,)
    err = float(d.flat[j] / den) if d.size else 0.0
    tol = TOL[np.dtype(out.dtype)]
    return {"ok": bool(err <= tol), "err": err, "tol": tol,
            "row": tuple(int(a[wi[0]]) for a in idx), "col": int(wi[1]) if d.ndim == 2 else None,
            "got": float(got[wi]) if d.size else None, "ref": float(ref[wi]) if d.size else None}


def _row_where(rs, chk):
    if chk.get("row") is None:
        return ""
    loc = f"row {chk['row']}" + (f" element {chk['col']} along axis {rs.ax}" if chk.get("col") is not None else "")
    return loc


def row_assert_close(case, ins, out, rs, label=""):
    """row_check() and raise AssertionError with the details on a mismatch."""
    r = row_check(case, ins, out, rs)
    if not r["ok"]:
        raise AssertionError(
            f"{label or case.name}: err {r['err']:.3g} > {r['tol']:g} at {_row_where(rs, r)}: "
            f"got {r['got']!r}, reference {r['ref']!r}")
    return r


def _as_numpy(res):
    if res is None or isinstance(res, np.ndarray):
        return res
    if hasattr(res, "numpy"):         # a torch tensor
        return res.numpy()
    return np.asarray(res)


def prepare_row(impl, ins, out, rs):
    """The timed callable of a row-wise ``impl`` writing into ``out`` (or, for
    an allocating peer, returning its result)."""
    if impl.runtime == "torch":
        tin = to_torch(ins)
        (tout,) = to_torch((out,))
        return impl.make(tin, tout, rs.axis)
    return impl.make(ins, out, rs.axis)


def run_row_once(impl, ins, out, rs):
    """Call ``impl`` once; return the array to check (``out``, or the
    allocating peer's result)."""
    f = prepare_row(impl, ins, out, rs)
    res = f()
    return _as_numpy(res) if impl.allocates else out


class RowRunner(Runner):
    """Times ROW_CASES over RowShapes, in the order and with the thread
    handling of :class:`Runner` (T=1 round-robin per case; then the T=2
    blocks mlkern, torch, never interleaved); no copy roof, no pruning."""

    def __init__(self, cases, shapes, dtypes, threads, settings, use_torch=True,
                 progress=True, stream=sys.stdout):
        super().__init__(cases, [], dtypes, threads, settings, use_torch=use_torch,
                         progress=progress, stream=stream)
        self.shapes = list(shapes)
        self.inputs = RowInputs()

    def _tag(self, rs):
        return rs.spec

    def _units(self):
        return [(c, dtype, rs) for rs in self.shapes for dtype in self.dtypes for c in self.cases]

    def _numpy_impls(self, case, rs, dtype):
        return case.impls(("numpy",))

    def _remember_numpy(self, case, dtype, impls, stats, rs):
        pass

    def _row_out(self, case, rs, dtype, slot):
        key = (case.out_shape(rs), np.dtype(case.out_dtype or dtype).str, slot)
        o = self._outs.get(key)
        if o is None:
            o = self._outs[key] = np.empty(key[0], dtype=key[1])
        o.fill(-1 if o.dtype.kind == "i" else np.nan)
        return o

    def _setup(self, case, impl, rs, dtype, T=1, slot=0):
        ins = self.inputs.for_case(case, rs, dtype)
        out = self._row_out(case, rs, dtype, slot)
        f = prepare_row(impl, ins, out, rs)
        t0 = _pc()
        res = f()                 # the first call: thrown away (timed for the warm-up)
        first_ns = _pc() - t0
        try:
            f.first_ns = first_ns
        except AttributeError:
            pass
        if isinstance(case, LossCase):
            chk = loss_check(ins, res, case.reference(self.inputs, rs, ins), axis=rs.axis)
        else:
            chk = row_check(case, ins, _as_numpy(res) if impl.allocates else out, rs)
        del res
        if not chk["ok"]:
            self.mismatches.append({"case": case.name, "impl": impl.name, "dtype": dtype_tag(dtype),
                                    "shape": rs.spec, "threads": T, **chk})
        return f, chk, out

    def _record(self, case, impl, rs, dtype, T, st, chk, carried=False):
        itemsize = np.dtype(dtype).itemsize
        rec = Record(function=case.name, kind=case.kind, rowwise=True, shape=list(rs.shape),
                     axis=rs.ax, spec=rs.spec, dtype=dtype_tag(dtype), n=rs.n, rows=rs.rows,
                     threads=T, impl=impl.name, label=impl.label, runtime=impl.runtime,
                     ns_per_el=st["median_ns"] / rs.n,
                     gbps=case.nbytes(rs, itemsize) / st["median_ns"],
                     ok=chk["ok"], err=chk["err"], carried_1T=carried,
                     allocates=impl.allocates, **st)
        self.records.append(rec)
        return rec


def report_rowwise(records, mismatches, shapes, use_torch, stream=sys.stdout, title=None):
    """The row-wise table: per function x shape x dtype x T, mlkern's ns/el
    and GB/s, the best NumPy/SciPy and torch peer and the speedups."""
    p = lambda *a: print(*a, file=stream)  # noqa: E731
    by = {}
    for r in records:
        by.setdefault((r["function"], r["spec"], r["dtype"], r["threads"]), []).append(r)
    p("")
    if title:
        p(title)
    else:
        p("Row-wise functions, reduced over axis 'ax': ns/el = median time / elements of the input; "
          "GB/s (mlkern's) = ideal bytes / median time")
        p("  (softmax, log_softmax 2*N*itemsize; logsumexp (N + rows)*itemsize; argmax N*itemsize + 8*rows; "
          "*_backward 3*N*itemsize; the peers' GB/s are in --json);")
    p("  speedup = peer time / mlkern time (> 1: mlkern faster); [1T] single-threaded peer's T=1 time; "
      "[a] allocates; [!] value check failed; [s] stalled")
    hdr = (f"{'function':<26}{'shape':>13}{'ax':>3} {'dtype':<5}{'T':>2} {'mlkern':>7}{'':<6} {'GB/s':>6} |"
           f" {'numpy/scipy best':<40}{'ns/el':>7} {'speedup':>8}")
    if use_torch:
        hdr += f" | {'torch':<40}{'ns/el':>7} {'speedup':>8}"
    p(hdr)
    p("-" * len(hdr))
    corder = {c.name: i for i, c in enumerate(ROW_CASES + LOSS_ROW_CASES)}
    sorder = {s.spec: i for i, s in enumerate(shapes)}
    keys = sorted(by, key=lambda k: (corder.get(k[0], 99), sorder.get(k[1], 99), k[2], k[3]))
    bang = lambda r: ("[!]" if r and not r["ok"] else "") + ("[s]" if r and r.get("stalled") else "")  # noqa: E731
    prev = None
    for key in keys:
        fn, spec, dt, T = key
        rows = by[key]
        r0 = rows[0]
        mine = _best([r for r in rows if r["runtime"] == "mlkern"])
        npb = _best([r for r in rows if r["runtime"] == "numpy"])
        tb = _best([r for r in rows if r["runtime"] == "torch" and not r.get("stalled")]
                   or [r for r in rows if r["runtime"] == "torch"])
        if prev is not None and prev != fn:
            p("")
        prev = fn
        gb = lambda r: (f"{r['gbps']:.1f}" if r['gbps'] >= 1 else f"{r['gbps']:.2f}") if r else "-"  # noqa: E731
        line = (f"{fn:<26}{'x'.join(map(str, r0['shape'])):>13}{r0['axis']:>3} {dt:<5}{T:>2} "
                f"{_fmt(mine and mine['ns_per_el'])}{bang(mine):<6} {gb(mine):>6} |")
        if npb:
            name = npb["label"] + (" [1T]" if npb["carried_1T"] else "") + (" [!]" if not npb["ok"] else "")
            line += f" {name[:40]:<40}{_fmt(npb['ns_per_el'])} {_ratio(npb, mine):>8}"
        else:
            line += f" {'(none)':<40}{'-':>7} {'-':>8}"
        if use_torch:
            if tb:
                name = tb["label"] + (" " + bang(tb) if bang(tb) else "")
                line += f" | {name[:40]:<40}{_fmt(tb['ns_per_el'])} {_ratio(tb, mine):>8}"
            else:
                line += f" | {'-':<40}{'-':>7} {'-':>8}"
        p(line)
    if not any(r["runtime"] == "mlkern" for r in records) and records:
        p("  (mlkern has none of these functions in this build: peers only)")
    if mismatches:
        p("")
        p("ROW-WISE VALUE MISMATCHES (max abs err / max(1, max|ref|) against the float64 reference; "
          "argmax: fraction of rows wrong):")
        sh = {s.spec: s for s in shapes}
        for m in mismatches:
            rs = sh.get(m["shape"])
            where = m.get("where") or (_row_where(rs, m) if rs else "")
            p(f"  {m['case']} {m['dtype']} {m['shape']} T={m['threads']} {m['impl']}: err {m['err']:.3g} > "
              f"{m['tol']:g} at {where}: got {m['got']!r}, ref {m['ref']!r}")


# ================================================================== losses
# A loss and its gradient from one call: mlkern's ``*_with_grad`` against
# NumPy out= chains and torch.  Elementwise losses (BCE with logits, MSE)
# run in the elementwise Runner at --sizes; cross-entropy runs in a
# RowRunner on its own shapes (LOSS_SHAPES).  Every impl's callable writes
# the gradient into ``out`` (or, [a], returns its own) and returns
# ``(loss, grad)``; loss_check compares both with a float64 reference.

class LossCase(Case):
    """``draw(key, dtype)`` makes the inputs (pred, target) for a size n or
    a RowShape; ``ref(pred64, target[, axis])`` gives (loss, grad) in
    float64; ``nbytes`` (row-shaped losses) is the ideal-traffic model."""
    out_dtype = None
    reduces = False

    def __init__(self, name, ref, mlkern, numpy, torch, draw, nbytes=None, memory_bound=False):
        super().__init__(name, "losses", "loss", ref, mlkern, numpy, torch,
                         memory_bound=memory_bound)
        self.draw, self._nbytes = draw, nbytes

    def nbytes(self, rs, itemsize):
        return self._nbytes(rs.n, rs.rows, itemsize)

    def out_shape(self, rs):
        return rs.shape

    def inputs(self, cache, key, dtype):
        """The cached inputs of size/shape ``key`` (a Inputs or RowInputs)."""
        return cache._get(("loss", self.name, key, np.dtype(dtype).str),
                          lambda: self.draw(key, np.dtype(dtype)))

    def reference(self, cache, key, ins):
        """(loss, grad) in float64 on the inputs, cached like them."""
        def ref():
            args = [a.astype(np.float64) if a.dtype.kind == "f" else a for a in ins]
            return self.ref(*args, *((key.axis,) if isinstance(key, RowShape) else ()))
        return cache._get(("lossref", self.name, key, ins[0].dtype.str), ref)


def loss_check(ins, res, ref, loss_tol=None, axis=None):
    """Compare a peer's ``(loss, grad)`` with the float64 ``ref``: the loss
    by relative error (``loss_tol``, default TOL), the gradient by max abs
    error / max|ref grad| (the gradient of a mean is ~1/N: no max(1, .)
    floor).  A loss of None (a gradient-only peer) is not checked.  Returns
    a dict as :func:`check` does, with ``where`` naming the worst value
    (``axis``: the class axis of row-shaped inputs, to find the label)."""
    loss, grad = res
    rl, rg = ref
    tol = TOL[np.dtype(ins[0].dtype)]
    lt = tol if loss_tol is None else loss_tol
    lerr = 0.0
    if loss is not None:
        lerr = abs(float(loss) - rl) / max(abs(rl), 1e-300)
        if lerr != lerr:
            lerr = math.inf
    g = np.asarray(_as_numpy(grad), dtype=np.float64)
    with np.errstate(all="ignore"):
        d = np.abs(g - rg)
        d[np.isnan(g) & np.isnan(rg)] = 0.0
        d[np.isnan(d)] = np.inf
        fin = np.abs(rg[np.isfinite(rg)])
        den = float(fin.max()) if fin.size and fin.max() > 0 else 1.0
    j = int(np.argmax(d)) if d.size else 0
    gerr = float(d.flat[j] / den) if d.size else 0.0
    ok = lerr <= lt and gerr <= tol
    if loss is not None and lerr / lt >= gerr / tol:
        return {"ok": ok, "err": lerr, "tol": lt, "index": None, "inputs": [],
                "got": float(loss), "ref": float(rl), "where": "the loss (relative error)"}
    wi = np.unravel_index(j, g.shape) if d.size else (0,) * g.ndim
    lab = wi if axis is None else wi[:axis % g.ndim] + wi[axis % g.ndim + 1:]
    inp = [float(a[wi] if a.ndim == g.ndim else a[lab]) for a in ins] if d.size else []
    return {"ok": ok, "err": gerr, "tol": tol, "index": j, "inputs": inp,
            "got": float(g.flat[j]) if d.size else None, "ref": float(rg.flat[j]) if d.size else None,
            "where": f"grad[{', '.join(map(str, wi))}] (inputs {', '.join(map(repr, inp))}; "
                     "error / max|ref grad|)"}


# --- inputs: float32 is the float64 draw rounded
def _draw_bce(n, dtype):
    """z ~ 4 N(0,1), soft targets t ~ U[0,1)."""
    rng = np.random.default_rng([n, 4])
    return ((4.0 * rng.standard_normal(n)).astype(dtype), rng.random(n).astype(dtype))


def _draw_mse(n, dtype):
    """pred, target ~ N(0,1)."""
    rng = np.random.default_rng([n, 5])
    return (rng.standard_normal(n).astype(dtype), rng.standard_normal(n).astype(dtype))


def _draw_ce(rs, dtype):
    """logits ~ 2 N(0,1), int64 labels uniform over the classes."""
    rng = np.random.default_rng([6, *rs.shape])
    return ((2.0 * rng.standard_normal(rs.shape)).astype(dtype),
            rng.integers(0, rs.length, rs.lead))


# --- float64 references: (loss, grad) of the mean reduction
def _lr_bce(z, t):
    loss = np.mean(np.maximum(z, 0.0) - z * t + np.log1p(np.exp(-np.abs(z))))
    return float(loss), (_r_sigmoid(z) - t) / z.size


def _lr_mse(p, t):
    d = p - t
    return float(np.mean(d * d)), d * (2.0 / d.size)


def _lr_ce(z, y, axis):
    zm = np.moveaxis(z, axis, -1)
    z2 = zm.reshape(-1, zm.shape[-1])
    y2 = y.reshape(-1)
    r = np.arange(y2.size)
    m = z2.max(axis=1, keepdims=True)
    e = np.exp(z2 - m)
    s = e.sum(axis=1, keepdims=True)
    loss = np.mean(np.log(s[:, 0]) + m[:, 0] - z2[r, y2])
    e /= s
    e[r, y2] -= 1.0
    e /= y2.size
    return float(loss), np.moveaxis(e.reshape(zm.shape), -1, axis)


def _mkl(fname):
    """mlkern.<fname>(pred, target[, axis=axis], out=out) -> (loss, grad)."""
    def make(ins, out, *axis):
        import mlkern
        f = getattr(mlkern, fname)
        a, b = ins
        if axis:
            ax = axis[0]
            return lambda: f(a, b, axis=ax, out=out)
        return lambda: f(a, b, out=out)
    return Impl(f"mlkern.{fname}", "mlkern", make, needs=f"mlkern:{fname}")


# --- numpy (single-threaded; np.dot's OpenBLAS is limited to 1 thread, see _blas_threads)
def _np_bce(sigmoid_name, needs=None):
    def deco(sig):
        @_np(f"np bce (out=), grad {sigmoid_name}", needs=needs)
        def make(ins, o):
            z, t = ins
            a, b = np.empty_like(z), np.empty_like(z)
            n = z.size
            scale = o.dtype.type(1.0 / n)

            def f():
                np.abs(z, out=a)
                np.negative(a, out=a)
                np.exp(a, out=a)
                np.log1p(a, out=a)
                np.maximum(z, 0, out=b)
                np.add(a, b, out=a)
                np.multiply(z, t, out=b)
                np.subtract(a, b, out=a)
                loss = np.add.reduce(a) / n
                sig(z, o)
                np.subtract(o, t, out=o)
                np.multiply(o, scale, out=o)
                return loss, o
            return f
        return make
    return deco


@_np_bce("expit", needs="scipy")
def _np_bce_expit(z, o):
    _sps.expit(z, out=o)


@_np_bce("1/(1+exp(-z))")
def _np_bce_4pass(z, o):
    np.negative(z, out=o)
    np.exp(o, out=o)
    np.add(o, 1, out=o)
    np.reciprocal(o, out=o)


@_np("np p-t, dot, *2/N (out=)")
def _np_mse(ins, o):
    p, t = ins
    n = p.size
    scale = o.dtype.type(2.0 / n)
    gr = o.reshape(-1)

    def f():
        np.subtract(p, t, out=o)
        loss = np.dot(gr, gr) / n
        np.multiply(o, scale, out=o)
        return loss, o
    return f


@_np("np softmax-onehot (out=)")
def _np_ce(ins, o, axis):
    z, y = ins
    m = np.empty(_kd(z.shape, axis), z.dtype)
    s = np.empty_like(m)
    yi = np.expand_dims(y, axis)
    n = y.size

    def f():
        _amax(z, axis=axis, keepdims=True, out=m)
        np.subtract(z, m, out=o)
        np.exp(o, out=o)
        _asum(o, axis=axis, keepdims=True, out=s)
        loss = np.add.reduce(np.log(s) + m - np.take_along_axis(z, yi, axis), axis=None) / n
        np.multiply(s, n, out=s)
        np.reciprocal(s, out=s)
        np.multiply(o, s, out=o)
        np.put_along_axis(o, yi, np.take_along_axis(o, yi, axis) - o.dtype.type(1.0 / n), axis)
        return loss, o
    return f


# --- torch: autograd (allocates the gradient and temporaries per call) and out= ATen chains
def _t_autograd(name, loss_fn):
    @_tc(f"autograd {name}", allocates=True)
    def make(ins, o, *axis):
        z, t = ins
        F = _torch.nn.functional
        tz = z.detach().clone().requires_grad_()
        ax = (axis[0] % z.ndim) if axis else 1
        zz = (lambda: tz) if ax == 1 else (lambda: tz.movedim(ax, 1))

        def f():
            tz.grad = None
            loss = getattr(F, loss_fn)(zz(), t)
            loss.backward()
            return loss.detach(), tz.grad
        return f
    return make


_t_bce_autograd = _t_autograd("F.bce_logits", "binary_cross_entropy_with_logits")
_t_mse_autograd = _t_autograd("F.mse_loss", "mse_loss")
_t_ce_autograd = _t_autograd("F.cross_entropy", "cross_entropy")


@_tc("aten bce + sigmoid(out=)", allocates=True)
def _t_bce_out(ins, o):
    # binary_cross_entropy_with_logits is a composite op: even its .out
    # form allocates n-sized temporaries (3 at 1e6, seen with the profiler)
    z, t = ins
    op = _aten().binary_cross_entropy_with_logits.out
    loss = _torch.empty((), dtype=z.dtype)
    n = z.numel()

    def f():
        op(z, t, None, None, 1, out=loss)
        _torch.sigmoid(z, out=o)
        _torch.sub(o, t, out=o)
        _torch.mul(o, 1.0 / n, out=o)
        return loss, o
    return f


@_tc("aten mse + mse_bwd(out=)", allocates=True)
def _t_mse_out(ins, o):
    # aten.mse_loss.out with reduction=mean resizes its out to the input's
    # shape (an n-sized temporary, and a warning per call): the loss is
    # the functional op, which allocates that temporary too
    p, t = ins
    aten = _aten()
    fwd, bwd = aten.mse_loss.default, aten.mse_loss_backward.grad_input
    one = _torch.ones((), dtype=p.dtype)

    def f():
        loss = fwd(p, t, 1)
        bwd(one, p, t, 1, grad_input=o)
        return loss, o
    return f


_B_CE = lambda n, rows, isz: 2 * n * isz + 8 * rows   # noqa: E731  read z, write grad, read labels

#: elementwise losses, at --sizes; byte model 3 n itemsize (read pred, target; write grad)
LOSS_CASES = [
    LossCase("bce_with_logits_with_grad", _lr_bce, _mkl("binary_cross_entropy_with_logits_with_grad"),
             [_np_bce_expit, _np_bce_4pass], [_t_bce_out, _t_bce_autograd], _draw_bce),
    LossCase("mse_with_grad", _lr_mse, _mkl("mse_with_grad"), [_np_mse],
             [_t_mse_out, _t_mse_autograd], _draw_mse, memory_bound=True),
]
#: row-shaped losses, on LOSS_SHAPES (or --shapes)
LOSS_ROW_CASES = [
    LossCase("cross_entropy_with_grad", _lr_ce, _mkl("cross_entropy_with_grad"), [_np_ce],
             [_t_ce_autograd], _draw_ce, nbytes=_B_CE),
]
LOSS_CASES_BY_NAME = {c.name: c for c in LOSS_CASES + LOSS_ROW_CASES}
#: the issue's cross-entropy shapes; the smoke stand-in when the largest --sizes is < 1e6
LOSS_SHAPES = (RowShape((4096, 1000)), RowShape((256, 32000)))
LOSS_SHAPES_SMOKE = (RowShape((64, 1000)),)


def default_loss_shapes(sizes):
    """Cross-entropy shapes when --shapes is not given (as default_row_shapes)."""
    return list(LOSS_SHAPES) if sizes and max(sizes) >= 10 ** 6 else list(LOSS_SHAPES_SMOKE)


def _blas_threads(n):
    """Limit NumPy's OpenBLAS (np.dot) to ``n`` threads while timing, when
    threadpoolctl is importable.  OpenBLAS only, keyed by the loaded
    libraries' file paths (threadpoolctl matches limits by path, prefix or
    user_api, not by internal_api; a "blas" limit would also reach torch's
    MKL).  Unlimited, a 2-thread np.dot on this 2-vCPU VM stalled for ~8 ms
    a call while the other vCPU was busy."""
    try:
        from threadpoolctl import threadpool_info, threadpool_limits
    except ImportError:  # pragma: no cover - optional
        import contextlib
        return contextlib.nullcontext()
    return threadpool_limits(limits={i["filepath"]: n for i in threadpool_info()
                                     if i["internal_api"] == "openblas"})


# --------------------------------------------------------------------- --plot
PLOT_PEERS = ("best", "numpy", "torch")


def _require_matplotlib():
    """Import matplotlib's Agg canvas (no display needed), or raise an
    ImportError that says how to get it."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as e:
        raise ImportError("--plot needs matplotlib, which is not installed: "
                          "pip install 'mlkern[plot]' (or pip install 'matplotlib>=3.5')") from e
    return Figure, FigureCanvasAgg


def speedups(records, peer="best"):
    """{(family, dtype, threads): {line label: [(n, peer time / mlkern time), ...]}}.

    family is "elementwise" or "row-wise / losses"; the line label is the
    function (with " (axis k)" for a reduction over another axis than the
    last).  The peer is the fastest NumPy/SciPy or torch record of the same
    function, size (shape), dtype and threads that passed its check
    (``peer="numpy"`` / ``"torch"``: only that runtime); NumPy's [1T] rows
    count at T>1.  The copy roof and records flagged ``stalled`` (a T>1
    call that waited for a busy vCPU, :func:`mark_stalls`) are left out."""
    if peer not in PLOT_PEERS:
        raise ValueError(f"peer: expected one of {PLOT_PEERS}, got {peer!r}")
    cells = {}
    for r in records:
        if r["function"] == COPY.name:
            continue
        shape = tuple(r.get("shape") or ())
        key = (r["function"], r["dtype"], r["threads"], r["n"], shape, r.get("axis"))
        cells.setdefault(key, []).append(r)
    out = {}
    for (fn, dt, T, n, shape, axis), recs in cells.items():
        recs = [r for r in recs if not r.get("stalled")]      # see mark_stalls: not a speed
        mine = [r for r in recs if r["runtime"] == "mlkern"]
        peers = [r for r in recs if r["runtime"] != "mlkern" and r.get("ok", True)
                 and (peer == "best" or r["runtime"] == peer)]
        if not mine or not peers:
            continue
        best = min(peers, key=lambda r: r["median_ns"])
        family = "row-wise / losses" if shape else "elementwise"
        nd = len(shape)
        label = fn if axis is None or axis in (-1, nd - 1) else f"{fn} (axis {axis})"
        out.setdefault((family, dt, T), {}).setdefault(label, []).append(
            (n, best["median_ns"] / mine[0]["median_ns"]))
    for lines in out.values():
        for pts in lines.values():
            pts.sort()
    return out


def plot(records, path, peer="best", title=None):
    """Draw speed-up vs size: one panel per dtype x threads (a second row of
    panels for the row-wise and loss functions), one line per function,
    log-log axes, y = peer time / mlkern time (above 1: mlkern is faster),
    a line at 1.0.  Writes ``path`` (the format follows its extension, PNG
    by default) and returns it."""
    Figure, FigureCanvasAgg = _require_matplotlib()
    data = speedups(records, peer)
    if not data:
        raise ValueError("nothing to plot: no size has both an mlkern and a peer measurement")
    families = [f for f in ("elementwise", "row-wise / losses") if any(k[0] == f for k in data)]
    cols = sorted({(k[1], k[2]) for k in data}, key=lambda c: (c[1], c[0]))
    fig = Figure(figsize=(1.5 + 5.2 * len(cols), 0.6 + 4.6 * len(families)), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(families), len(cols), squeeze=False, sharey="row")
    import matplotlib as mpl
    cmap = mpl.colormaps["tab20"]
    markers = "osD^v<>ph*XP"
    peer_txt = {"best": "fastest NumPy/SciPy/torch peer", "numpy": "fastest NumPy/SciPy expression",
                "torch": "fastest torch op"}[peer]
    ys = [y for lines in data.values() for pts in lines.values() for _, y in pts]
    lo, hi = min(ys + [1.0]), max(ys + [1.0])
    for i, family in enumerate(families):
        labels = sorted({lab for k, lines in data.items() if k[0] == family for lab in lines})
        style = {lab: (cmap(j % 20), markers[j % len(markers)], "-" if j < 20 else "--")
                 for j, lab in enumerate(labels)}
        handles = {}
        for j, (dt, T) in enumerate(cols):
            ax = axes[i][j]
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.axhline(1.0, color="black", lw=1.2, zorder=1)
            for lab, pts in sorted(data.get((family, dt, T), {}).items()):
                c, m, ls = style[lab]
                xs, yv = zip(*pts)
                (h,) = ax.plot(xs, yv, ls, color=c, marker=m, ms=5, lw=1.4, label=lab, zorder=3)
                handles[lab] = h
            ax.set_title(f"{family}: {dt}, {T} thread{'s' if T != 1 else ''}", fontsize=10)
            ax.grid(True, which="major", alpha=0.35)
            ax.grid(True, which="minor", axis="y", alpha=0.12)
            ax.set_ylim(lo / 1.3, hi * 1.3)
            if i == len(families) - 1:
                ax.set_xlabel("elements of the input (log scale)")
            if j == 0:
                ax.set_ylabel("speed-up: peer time / mlkern time")
            ax.text(0.01, 0.99, "mlkern faster \u2191", transform=ax.transAxes, va="top", ha="left",
                    fontsize=8, color="0.35")
        if handles:
            axes[i][-1].legend([handles[k] for k in labels if k in handles],
                               [k for k in labels if k in handles], loc="upper left",
                               bbox_to_anchor=(1.02, 1.0), fontsize=8, frameon=False,
                               title=family, title_fontsize=9)
    from matplotlib.ticker import FuncFormatter
    fmt = FuncFormatter(lambda v, _: f"{v:g}x")
    for ax in axes.flat:
        ax.yaxis.set_major_formatter(fmt)
        ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}x" if str(v)[0] in "25" else ""))
    n_st = sum(1 for r in records if r.get("stalled"))
    fig.suptitle(title or (f"mlkern speed-up over the {peer_txt} (median times, same run)"
                           + (f"\n({n_st} stalled T>1 measurements left out: the machine was busy)" if n_st else "")),
                 fontsize=12)
    fig.savefig(path, dpi=110, bbox_inches="tight")   # a long title widens the canvas
    return path


def build_parser(parser=None):
    p = parser or argparse.ArgumentParser(prog="python -m mlkern bench",
                                          description="Time mlkern against NumPy/SciPy and PyTorch.")
    p.add_argument("--sizes", help="comma list of element counts (default: 1e5,1e7 quick; "
                                   "1e3,1e5,1e7 full)")
    p.add_argument("--dtypes", default="f32,f64", help="comma list of f32,f64 (default: both)")
    p.add_argument("--threads", default="1,2", help="comma list of thread counts (default: 1,2)")
    p.add_argument("--functions", help="comma list: a name (sigmoid = sigmoid and "
                   "sigmoid_backward), <name>_forward, <name>_backward, 'forward', 'backward', "
                   "'elementwise', 'rowwise', 'losses' (default: all). Names: "
                   f"{', '.join(FAMILIES + [f for f in ROW_FAMILIES if f not in FAMILIES])}; "
                   f"losses: {', '.join(LOSS_CASES_BY_NAME)}")
    p.add_argument("--shapes", help="row-wise (and cross-entropy) shapes, comma list of AxB[xC][:axis] "
                   "(reduce over the last axis unless ':axis'), or 'default' / 'smoke'. Default: "
                   + ",".join(s.spec for s in ROW_SHAPES) + " (cross-entropy "
                   + ",".join(s.spec for s in LOSS_SHAPES) + ") when the largest --sizes value is "
                   ">= 1e6, else the smoke set " + ",".join(s.spec for s in ROW_SHAPES_SMOKE)
                   + " (" + ",".join(s.spec for s in LOSS_SHAPES_SMOKE) + ")")
    p.add_argument("--repeats", type=int, default=7, help="minimum repeats per peer (default 7)")
    p.add_argument("--json", metavar="FILE", help="write every measurement (median, min, quartiles) here")
    p.add_argument("--plot", metavar="FILE", help="draw speed-up vs size per function into FILE (PNG; "
                   "needs matplotlib: pip install 'mlkern[plot]')")
    p.add_argument("--plot-peer", choices=PLOT_PEERS, default="best",
                   help="the peer of the --plot speed-up: the fastest of all (default), NumPy/SciPy "
                        "only, or torch only")
    p.add_argument("--from-json", metavar="FILE", help="do not measure: read the records of an "
                   "earlier --json FILE (for --plot)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", dest="full", action="store_false",
                      help="(default) ~20 ms per repeat, sizes 1e5,1e7")
    mode.add_argument("--full", dest="full", action="store_true",
                      help="the peer-table method: >= 0.2 s per peer, sizes 1e3,1e5,1e7")
    p.add_argument("--no-torch", action="store_true", help="do not import or time PyTorch")
    p.add_argument("--no-overhead", action="store_true", help="skip the per-call overhead line")
    p.add_argument("--no-progress", action="store_true", help="no progress line on stderr")
    p.set_defaults(full=False)
    return p


def main(argv=None, args=None):
    if args is None:
        args = build_parser().parse_args(argv)
    try:
        sizes = _parse_sizes(args.sizes or ("1e3,1e5,1e7" if args.full else "1e5,1e7"))
        dtypes = []
        for t in args.dtypes.split(","):
            t = t.strip()
            if t:
                if t not in DTYPES:
                    raise ValueError(f"--dtypes: unknown {t!r}; use f32, f64")
                dtypes.append(np.dtype(DTYPES[t]))
        threads = sorted({int(t) for t in args.threads.split(",") if t.strip()})
        if not threads or min(threads) < 1:
            raise ValueError("--threads: thread counts must be >= 1")
        cases, row_cases = select_functions(args.functions)
        loss_rows = [c for c in row_cases if isinstance(c, LossCase)]
        row_cases = [c for c in row_cases if c not in loss_rows]
        shapes = (parse_shapes(args.shapes) if getattr(args, "shapes", None)
                  else default_row_shapes(sizes))
        loss_shapes = shapes if getattr(args, "shapes", None) else default_loss_shapes(sizes)
        if (row_cases or loss_rows) and not shapes:
            raise ValueError("--shapes: no shape given")
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if getattr(args, "plot", None):
        try:
            _require_matplotlib()            # before a long run, not after it
        except ImportError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    if getattr(args, "from_json", None):
        if not getattr(args, "plot", None):
            print("error: --from-json only redraws: give --plot FILE", file=sys.stderr)
            return 2
        with open(args.from_json) as fh:
            payload = json.load(fh)
        plot(payload.get("records", []) + payload.get("rowwise_records", []), args.plot,
             peer=args.plot_peer)
        print(f"wrote {args.plot}")
        return 0
    use_torch = not args.no_torch and _import_torch() is not None
    settings = Settings(full=args.full, repeats=args.repeats)

    import mlkern
    info = machine_info(use_torch)
    t_start = time.perf_counter()
    print("mlkern benchmark" + (" (full)" if args.full else " (quick)"))
    sys.stdout.write(info["show_config_text"])
    print(f"  CPU: {info['cpu']}, {info['cpu_count']} CPUs; Python {info['python']}; "
          f"numpy {info['numpy']}; scipy {info['scipy'] or 'not installed'}; torch "
          + (info["torch"] if use_torch else ("disabled" if args.no_torch else "not importable")))
    print((f"  sizes {','.join(fmt_n(n) for n in sizes)}" if cases else "  no elementwise functions")
          + "; dtypes "
          f"{','.join(dtype_tag(d) for d in dtypes)}; threads {','.join(map(str, threads))}; "
          f">= {settings.repeats} repeats of >= {settings.repeat_ns / 1e6:.0f} ms, median")
    if row_cases:
        print(f"  row-wise: {','.join(c.name for c in row_cases)} on shapes "
              f"{','.join(s.spec for s in shapes)} (':k' = reduced over axis k, else the last)")
    if loss_rows:
        print(f"  losses: {','.join(c.name for c in loss_rows)} on shapes "
              f"{','.join(s.spec for s in loss_shapes)}")
    load = _loadavg()
    if load is not None:
        busy = load[0] > 0.5
        print(f"  load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
              + ("  WARNING: other processes are running; timings (T=2 above all) are unreliable"
                 if busy else ""))
    sys.stdout.flush()

    overhead = [] if args.no_overhead else measure_overhead(dtypes, settings, use_torch)
    runner = Runner(cases, sizes, dtypes, threads, settings, use_torch=use_torch,
                    progress=not args.no_progress)
    row_runner = RowRunner(row_cases, shapes, dtypes, threads, settings, use_torch=use_torch,
                           progress=not args.no_progress)
    loss_runner = RowRunner(loss_rows, loss_shapes, dtypes, threads, settings, use_torch=use_torch,
                            progress=not args.no_progress)
    with _blas_threads(1):        # np.dot (the MSE peer): single-threaded like the rest of NumPy
        records = runner.run() if cases else []
        row_records = row_runner.run() if row_cases else []
        loss_records = loss_runner.run() if loss_rows else []
    if cases:
        report(records, runner.mismatches, overhead, info, use_torch, pruned=runner.pruned)
    else:
        report_overhead(overhead)
    if row_cases:
        report_rowwise(row_records, row_runner.mismatches, shapes, use_torch)
    if loss_rows:
        report_rowwise(loss_records, loss_runner.mismatches, loss_shapes, use_torch,
                       title="Cross-entropy loss + gradient (mean over the rows, int64 labels): ns/el = "
                             "median time / logits; GB/s = (2*N*itemsize + 8*rows) / median time")
    elapsed = time.perf_counter() - t_start
    print(f"\n({elapsed:.0f} s)")
    if args.json:
        payload = {"machine": {k: v for k, v in info.items() if k != "show_config_text"},
                   "settings": {"sizes": sizes, "dtypes": [dtype_tag(d) for d in dtypes],
                                "functions": [c.name for c in cases + row_cases + loss_rows],
                                "shapes": [s.spec for s in shapes] if row_cases else [],
                                "loss_shapes": [s.spec for s in loss_shapes] if loss_rows else [],
                                "threads": threads, "full": args.full, "repeats": settings.repeats,
                                "repeat_ns": settings.repeat_ns, "total_ns": settings.total_ns,
                                "warm_ns": settings.warm_ns},
                   "overhead": overhead, "records": records, "mismatches": runner.mismatches,
                   "rowwise_records": row_records + loss_records,
                   "rowwise_mismatches": row_runner.mismatches + loss_runner.mismatches,
                   "pruned_numpy_peers": runner.pruned,
                   "roofs": {f"{d}-T{t}": {"gbps": v[0], "impl": v[1]}
                             for (d, t), v in roofs(records).items()},
                   "elapsed_s": elapsed}
        with open(args.json, "w") as fh:
            json.dump(payload, fh, indent=1)
        print(f"wrote {args.json}")
    if getattr(args, "plot", None):
        try:
            plot(records + row_records + loss_records, args.plot, peer=args.plot_peer)
            print(f"wrote {args.plot}")
        except ValueError as e:
            print(f"error: --plot: {e}", file=sys.stderr)
            return 2
    return 1 if (runner.mismatches or row_runner.mismatches or loss_runner.mismatches) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
