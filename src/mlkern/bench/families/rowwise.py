"""Row-wise functions: softmax, log_softmax, logsumexp, argmax and the two
softmax backwards, reduced along one axis of a 2-D or 3-D array.

Inputs: logits x ~ 2 N(0,1) and g ~ N(0,1) per (shape, dtype), float32 the
float64 draw rounded; y = the float64 softmax / log_softmax of x, rounded,
for the backwards.  Peers: scipy.special softmax / log_softmax /
logsumexp ([a]), the NumPy ufunc chain with ``out=`` (logsumexp with one
x-sized temporary made once), ``np.argmax(out=)``, and torch's out= ATen
ops on ``torch.from_numpy`` tensors.  GB/s by the byte model softmax and
log_softmax 2 N itemsize, logsumexp (N + rows) itemsize, argmax
N itemsize + 8 rows, the backwards 3 N itemsize.
"""
import numpy as np

from .. import references as R
from ..cases import ROWWISE, Case, Family, check_rows, register
from ..peers import aten, import_torch, mlkern_impl, numpy_peer, sps, torch_peer

_amax, _asum = np.maximum.reduce, np.add.reduce


# --- numpy / scipy (single-threaded); the out= forms allocate nothing the size of x
@numpy_peer("scipy.special.softmax", needs="scipy", allocates=True)
def _rsp_softmax(ins, o, axis):
    x, = ins
    return lambda: sps.softmax(x, axis=axis)


@numpy_peer("np max,x-m,exp,sum,*1/s (out=)")
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


@numpy_peer("scipy.special.log_softmax", needs="scipy", allocates=True)
def _rsp_log_softmax(ins, o, axis):
    x, = ins
    return lambda: sps.log_softmax(x, axis=axis)


@numpy_peer("np x-(m+log(sum(exp(x-m)))) (out=)")
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


@numpy_peer("scipy.special.logsumexp", needs="scipy", allocates=True)
def _rsp_logsumexp(ins, o, axis):
    x, = ins
    return lambda: sps.logsumexp(x, axis=axis)


@numpy_peer("np m+log(sum(exp(x-m))) (out=)")
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


@numpy_peer("np.argmax(out=)")
def _rnp_argmax(ins, o, axis):
    x, = ins
    return lambda: np.argmax(x, axis=axis, out=o)


@numpy_peer("np y*(g-sum(g*y)) (out=)")
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


@numpy_peer("np y*(g-vecdot(g,y)) (out=)")
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


@numpy_peer("np g-exp(y)*sum(g) (out=)")
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
@torch_peer("aten._softmax.out")
def _rt_softmax(ins, o, axis):
    x, = ins
    op = aten()._softmax.out
    return lambda: op(x, axis, False, out=o)


@torch_peer("aten._log_softmax.out")
def _rt_log_softmax(ins, o, axis):
    x, = ins
    op = aten()._log_softmax.out
    return lambda: op(x, axis, False, out=o)


@torch_peer("torch.logsumexp(out=)")
def _rt_logsumexp(ins, o, axis):
    x, = ins
    lse = import_torch().logsumexp
    return lambda: lse(x, axis, out=o)


@torch_peer("torch.argmax(out=)")
def _rt_argmax(ins, o, axis):
    x, = ins
    am = import_torch().argmax
    return lambda: am(x, axis, out=o)


@torch_peer("aten._softmax_backward_data.out")
def _rt_softmax_bwd(ins, o, axis):
    g, y = ins
    op = aten()._softmax_backward_data.out
    dt = g.dtype
    return lambda: op(g, y, axis, dt, grad_input=o)


@torch_peer("aten._log_softmax_backward_data.out")
def _rt_log_softmax_bwd(ins, o, axis):
    g, y = ins
    op = aten()._log_softmax_backward_data.out
    dt = g.dtype
    return lambda: op(g, y, axis, dt, out=o)




_B_SOFTMAX = lambda n, rows, isz: 2 * n * isz        # noqa: E731  read x, write y
_B_LSE = lambda n, rows, isz: n * isz + rows * isz   # noqa: E731  read x, write one per row
_B_ARGMAX = lambda n, rows, isz: n * isz + 8 * rows  # noqa: E731  read x, write int64 per row
_B_BWD = lambda n, rows, isz: 3 * n * isz            # noqa: E731  read g, y, write grad


# ------------------------------------------------------------------ inputs
def row_x(cache, rs, dtype):
    x64 = cache.get(("x", rs.shape, "f8"),
                    lambda: 2.0 * np.random.default_rng([2, *rs.shape]).standard_normal(rs.shape))
    if dtype == np.float64:
        return x64
    return cache.get(("x", rs.shape, dtype.str), lambda: x64.astype(dtype))


def draw_rows(case, cache, rs, dtype):
    """(x,) or (g, y) of a row-wise ``case``."""
    if case.kind == "fwd":
        return (row_x(cache, rs, dtype),)
    y = cache.get(("y", case.family, rs.shape, rs.ax, dtype.str),
                  lambda: case.y_of(row_x(cache, rs, np.dtype(np.float64)), rs.axis)
                  .astype(dtype, copy=False))
    g = cache.get(("g", rs.shape, dtype.str),
                  lambda: np.random.default_rng([3, *rs.shape]).standard_normal(rs.shape)
                  .astype(dtype, copy=False))
    return (g, y)


def _row_out(case, rs, dtype):
    return [(rs.lead if case.reduces else rs.shape, case.out_dtype or dtype)]


def row_case(name, family, kind, ref, numpy, torch, nbytes, y_of=None, reduces=False,
             out_dtype=None):
    """softmax-like ``name``: mlkern.<name>(*ins, axis=, out=) against its peers."""
    return Case(name, family, kind, ref, mlkern_impl(name), numpy, torch, table=ROWWISE,
                group="rowwise", draw=draw_rows, checker=check_rows, out_specs=_row_out,
                nbytes=lambda rs, isz: nbytes(rs.n, rs.rows, isz), saved="y", y_of=y_of,
                reduces=reduces, out_dtype=out_dtype)


def _ref(f):
    """A reference of the last axis as ref(*inputs, axis)."""
    return lambda *a: f(*a[:-1], axis=a[-1])


CASES = [
    row_case("softmax", "softmax", "fwd", _ref(R.softmax_ref), [_rsp_softmax, _rnp_softmax],
             [_rt_softmax], _B_SOFTMAX),
    row_case("log_softmax", "log_softmax", "fwd", _ref(R.log_softmax_ref),
             [_rsp_log_softmax, _rnp_log_softmax], [_rt_log_softmax], _B_SOFTMAX),
    row_case("logsumexp", "logsumexp", "fwd", _ref(R.logsumexp_ref),
             [_rsp_logsumexp, _rnp_logsumexp], [_rt_logsumexp], _B_LSE, reduces=True),
    row_case("argmax", "argmax", "fwd", _ref(R.argmax_ref), [_rnp_argmax], [_rt_argmax], _B_ARGMAX,
             reduces=True, out_dtype=np.int64),
    row_case("softmax_backward", "softmax", "bwd", _ref(R.softmax_backward_ref),
             [_rnp_softmax_bwd] + ([_rnp_softmax_bwd_vecdot] if hasattr(np, "vecdot") else []),
             [_rt_softmax_bwd], _B_BWD, y_of=_ref(R.softmax_ref)),
    row_case("log_softmax_backward", "log_softmax", "bwd", _ref(R.log_softmax_backward_ref),
             [_rnp_log_softmax_bwd], [_rt_log_softmax_bwd], _B_BWD, y_of=_ref(R.log_softmax_ref)),
]

FAMILY = register(Family("rowwise", CASES, aliases=("row-wise", "row_wise")))
