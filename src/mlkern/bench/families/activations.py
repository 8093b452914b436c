"""Activations (elementwise, forward and backward) and the copy roof.

Inputs: x ~ 3 N(0,1) and g ~ N(0,1) per (n, dtype), float32 the float64
draw rounded; the backward of sigmoid, tanh and elu takes the forward
output y (the float64 forward rounded), the others x.  Peers: NumPy/SciPy
expressions with ``out=`` (all single-threaded) and torch's ``out=`` /
``grad_input=`` ATen ops.  GB/s counts 2 n itemsize (forward) or 3 n
itemsize (backward).
"""
import numpy as np

from .. import references as R
from ..cases import ELEMENTWISE, Case, Family, check_elementwise, register
from ..peers import aten, import_torch, mlkern_impl, numpy_peer, sps, torch_peer, Impl

_K = R.SQRT_2_OVER_PI            # sqrt(2/pi)
_C = R.GELU_K1
_INV_SQRT_2PI = R.INV_SQRT_2PI

# --- numpy / scipy expressions (all single-threaded, out= where possible)
@numpy_peer("scipy.special.expit", needs="scipy")
def _np_expit(ins, o):
    x, = ins
    return lambda: sps.expit(x, out=o)


@numpy_peer("1/(1+exp(-x)) 4-pass")
def _np_sigmoid4(ins, o):
    x, = ins
    neg, exp, add, rec = np.negative, np.exp, np.add, np.reciprocal

    def f():
        neg(x, out=o)
        exp(o, out=o)
        add(o, 1, out=o)
        rec(o, out=o)
    return f


@numpy_peer("np.tanh")
def _np_tanh(ins, o):
    x, = ins
    return lambda: np.tanh(x, out=o)


@numpy_peer("np.maximum(x,0)")
def _np_relu(ins, o):
    x, = ins
    return lambda: np.maximum(x, 0, out=o)


@numpy_peer("np.logaddexp(0,x)")
def _np_softplus(ins, o):
    x, = ins
    return lambda: np.logaddexp(0, x, out=o)


@numpy_peer("x*expit(x)", needs="scipy")
def _np_silu_expit(ins, o):
    x, = ins
    expit, mul = sps.expit, np.multiply

    def f():
        expit(x, out=o)
        mul(x, o, out=o)
    return f


@numpy_peer("x/(1+exp(-x)) 4-pass")
def _np_silu4(ins, o):
    x, = ins
    neg, exp, add, div = np.negative, np.exp, np.add, np.divide

    def f():
        neg(x, out=o)
        exp(o, out=o)
        add(o, 1, out=o)
        div(x, o, out=o)
    return f


@numpy_peer("where(x>0,x,expm1(x)) via copyto")
def _np_elu(ins, o):
    x, = ins
    m = np.empty(x.shape, dtype=bool)
    gt, expm1, copyto = np.greater, np.expm1, np.copyto

    def f():
        gt(x, 0, out=m)
        expm1(x, out=o)
        copyto(o, x, where=m)
    return f


@numpy_peer("x*ndtr(x)", needs="scipy")
def _np_gelu(ins, o):
    x, = ins
    ndtr, mul = sps.ndtr, np.multiply

    def f():
        ndtr(x, out=o)
        mul(x, o, out=o)
    return f


@numpy_peer("0.5x(1+tanh(k(x+cx^3)))")
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


@numpy_peer("scipy.special.log_expit", needs="scipy")
def _np_log_expit(ins, o):
    x, = ins
    return lambda: sps.log_expit(x, out=o)


@numpy_peer("-logaddexp(0,-x)")
def _np_log_sigmoid(ins, o):
    x, = ins
    neg, lae = np.negative, np.logaddexp

    def f():
        neg(x, out=o)
        lae(0, o, out=o)
        neg(o, out=o)
    return f


@numpy_peer("np.copyto")
def _np_copy(ins, o):
    x, = ins
    return lambda: np.copyto(o, x)


# --- numpy backward expressions: ins = (g, saved)
@numpy_peer("g*y*(1-y)")
def _np_sigmoid_bwd(ins, o):
    g, y = ins
    sub, mul = np.subtract, np.multiply

    def f():
        sub(1, y, out=o)
        mul(o, y, out=o)
        mul(o, g, out=o)
    return f


@numpy_peer("g*(1-y*y)")
def _np_tanh_bwd(ins, o):
    g, y = ins
    sub, mul = np.subtract, np.multiply

    def f():
        mul(y, y, out=o)
        sub(1, o, out=o)
        mul(o, g, out=o)
    return f


@numpy_peer("g*(x>0)")
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


@numpy_peer("s=expit(x); g*s*(1+x(1-s))", needs="scipy")
def _np_silu_bwd(ins, o):
    g, x = ins
    t = np.empty_like(o)
    expit = sps.expit

    def f():
        expit(x, out=o)
        _silu_bwd_from_s(g, x, o, t)
    return f


@numpy_peer("s=1/(1+exp(-x)); g*s*(1+x(1-s))")
def _np_silu_bwd4(ins, o):
    g, x = ins
    t = np.empty_like(o)
    sig = _np_sigmoid4.make((x,), o)

    def f():
        sig()
        _silu_bwd_from_s(g, x, o, t)
    return f


@numpy_peer("g*(ndtr(x)+x*npdf(x))", needs="scipy")
def _np_gelu_bwd(ins, o):
    g, x = ins
    t = np.empty_like(o)
    ndtr, mul, add, exp = sps.ndtr, np.multiply, np.add, np.exp

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


@numpy_peer("g*d/dx[gelu tanh form]")
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


@numpy_peer("g*expit(x)", needs="scipy")
def _np_softplus_bwd(ins, o):
    g, x = ins
    expit, mul = sps.expit, np.multiply

    def f():
        expit(x, out=o)
        mul(o, g, out=o)
    return f


@numpy_peer("g/(1+exp(-x)) 4-pass")
def _np_softplus_bwd4(ins, o):
    g, x = ins
    neg, exp, add, div = np.negative, np.exp, np.add, np.divide

    def f():
        neg(x, out=o)
        exp(o, out=o)
        add(o, 1, out=o)
        div(g, o, out=o)
    return f


@numpy_peer("g*min(y+1,1)")
def _np_elu_bwd(ins, o):
    g, y = ins
    add, mn, mul = np.add, np.minimum, np.multiply

    def f():
        add(y, 1, out=o)
        mn(o, 1, out=o)
        mul(o, g, out=o)
    return f


@numpy_peer("g*expit(-x)", needs="scipy")
def _np_log_sigmoid_bwd(ins, o):
    g, x = ins
    neg, expit, mul = np.negative, sps.expit, np.multiply

    def f():
        neg(x, out=o)
        expit(o, out=o)
        mul(o, g, out=o)
    return f


@numpy_peer("g/(1+exp(x)) 3-pass")
def _np_log_sigmoid_bwd3(ins, o):
    g, x = ins
    exp, add, div = np.exp, np.add, np.divide

    def f():
        exp(x, out=o)
        add(o, 1, out=o)
        div(g, o, out=o)
    return f


# --- torch (ops with an out= / grad_input= variant)
@torch_peer("torch.sigmoid(out=)")
def _t_sigmoid(ins, o):
    x, = ins
    op = import_torch().sigmoid
    return lambda: op(x, out=o)


@torch_peer("torch.tanh(out=)")
def _t_tanh(ins, o):
    x, = ins
    op = import_torch().tanh
    return lambda: op(x, out=o)


@torch_peer("torch.clamp_min(out=)")
def _t_relu(ins, o):
    x, = ins
    op = import_torch().clamp_min
    return lambda: op(x, 0, out=o)


@torch_peer("aten.softplus.out(1,20)")
def _t_softplus(ins, o):
    x, = ins
    op = aten().softplus.out
    return lambda: op(x, 1, 20, out=o)


@torch_peer("aten.silu.out")
def _t_silu(ins, o):
    x, = ins
    op = aten().silu.out
    return lambda: op(x, out=o)


@torch_peer("aten.elu.out")
def _t_elu(ins, o):
    x, = ins
    op = aten().elu.out
    return lambda: op(x, 1.0, 1, 1, out=o)


@torch_peer("aten.gelu.out(none)")
def _t_gelu(ins, o):
    x, = ins
    op = aten().gelu.out
    return lambda: op(x, approximate="none", out=o)


@torch_peer("aten.gelu.out(tanh)")
def _t_gelu_tanh(ins, o):
    x, = ins
    op = aten().gelu.out
    return lambda: op(x, approximate="tanh", out=o)


@torch_peer("aten.log_sigmoid.out")
def _t_log_sigmoid(ins, o):
    x, = ins
    op = aten().log_sigmoid.out
    return lambda: op(x, out=o)


@torch_peer("Tensor.copy_")
def _t_copy(ins, o):
    x, = ins
    return lambda: o.copy_(x)


@torch_peer("aten.sigmoid_backward")
def _t_sigmoid_bwd(ins, o):
    g, y = ins
    op = aten().sigmoid_backward.grad_input
    return lambda: op(g, y, grad_input=o)


@torch_peer("aten.tanh_backward")
def _t_tanh_bwd(ins, o):
    g, y = ins
    op = aten().tanh_backward.grad_input
    return lambda: op(g, y, grad_input=o)


@torch_peer("aten.threshold_backward")
def _t_relu_bwd(ins, o):
    g, x = ins
    op = aten().threshold_backward.grad_input
    return lambda: op(g, x, 0, grad_input=o)


@torch_peer("aten.silu_backward")
def _t_silu_bwd(ins, o):
    g, x = ins
    op = aten().silu_backward.grad_input
    return lambda: op(g, x, grad_input=o)


@torch_peer("aten.gelu_backward(none)")
def _t_gelu_bwd(ins, o):
    g, x = ins
    op = aten().gelu_backward.grad_input
    return lambda: op(g, x, approximate="none", grad_input=o)


@torch_peer("aten.gelu_backward(tanh)")
def _t_gelu_tanh_bwd(ins, o):
    g, x = ins
    op = aten().gelu_backward.grad_input
    return lambda: op(g, x, approximate="tanh", grad_input=o)


@torch_peer("aten.softplus_backward(1,20)")
def _t_softplus_bwd(ins, o):
    g, x = ins
    op = aten().softplus_backward.grad_input
    return lambda: op(g, x, 1, 20, grad_input=o)


@torch_peer("aten.elu_backward(is_result)")
def _t_elu_bwd(ins, o):
    g, y = ins
    op = aten().elu_backward.grad_input
    return lambda: op(g, 1.0, 1, 1, True, y, grad_input=o)


@torch_peer("aten.log_sigmoid_backward")
def _t_log_sigmoid_bwd(ins, o):
    g, x = ins
    at = aten()
    _, buf = at.log_sigmoid_forward(x)      # the forward's buffer, outside timing
    op = at.log_sigmoid_backward.grad_input
    return lambda: op(g, x, buf, grad_input=o)





# ------------------------------------------------------------------ inputs
def _x(cache, n, dtype):
    x64 = cache.get(("x", n, "f64"), lambda: 3.0 * np.random.default_rng([n, 0]).standard_normal(n))
    if dtype == np.float64:
        return x64
    return cache.get(("x", n, dtype.str), lambda: x64.astype(dtype))


def _g(cache, n, dtype):
    return cache.get(("g", n, dtype.str),
                     lambda: np.random.default_rng([n, 1]).standard_normal(n).astype(dtype))


def draw_unary(case, cache, n, dtype):
    """(x,) for a forward, (g, saved) for a backward; saved = x, or the
    float64 forward output y rounded (``saved="y"``)."""
    x = _x(cache, n, dtype)
    if case.n_inputs == 1:
        return (x,)
    if case.saved == "y":
        with np.errstate(all="ignore"):
            s = cache.get(("y", case.family, n, dtype.str),
                          lambda: case.y_of(_x(cache, n, np.dtype(np.float64))).astype(dtype))
    else:
        s = x
    return (_g(cache, n, dtype), s)


def _out_like_n(case, n, dtype):
    return [((n,), dtype)]


def elementwise_case(name, family, kind, ref, mlkern, numpy, torch=(), saved="x", y_of=None,
                     memory_bound=False, group="activations"):
    """A unary map (kind "fwd"/"copy") or an activation backward ("bwd"):
    n elements in, n out; GB/s by (inputs + 1) n itemsize."""
    nb = 2 if kind in ("fwd", "copy") else 3
    return Case(name, family, kind, ref, mlkern, numpy, torch, table=ELEMENTWISE, group=group,
                draw=draw_unary, checker=check_elementwise, out_specs=_out_like_n,
                nbytes=lambda n, isz: nb * n * isz, memory_bound=memory_bound,
                saved=saved if kind == "bwd" else None, y_of=y_of)


def _copy_make(ins, o):
    from ... import _math      # the roof meter: built and threaded like the activation kernels
    x, = ins
    copy = _math.copy
    return lambda: copy(x, out=o)


#: the memory roof: mlkern's prange copy kernel, np.copyto, Tensor.copy_
COPY = elementwise_case("copy", "copy", "copy", lambda x: x.copy(),
                        Impl("mlkern._math.copy", "mlkern", _copy_make), [_np_copy], [_t_copy],
                        memory_bound=True, group="copy")

_mk = mlkern_impl

CASES = [
    elementwise_case("sigmoid", "sigmoid", "fwd", R.sigmoid, _mk("sigmoid"),
                     [_np_expit, _np_sigmoid4], [_t_sigmoid]),
    elementwise_case("tanh", "tanh", "fwd", R.tanh, _mk("tanh"), [_np_tanh], [_t_tanh]),
    elementwise_case("relu", "relu", "fwd", R.relu, _mk("relu"), [_np_relu], [_t_relu],
                     memory_bound=True),
    elementwise_case("softplus", "softplus", "fwd", R.softplus, _mk("softplus"),
                     [_np_softplus], [_t_softplus]),
    elementwise_case("silu", "silu", "fwd", R.silu, _mk("silu"),
                     [_np_silu_expit, _np_silu4], [_t_silu]),
    elementwise_case("elu", "elu", "fwd", R.elu, _mk("elu"), [_np_elu], [_t_elu]),
    elementwise_case("gelu", "gelu", "fwd", R.gelu, _mk("gelu"), [_np_gelu], [_t_gelu]),
    elementwise_case("gelu_tanh", "gelu_tanh", "fwd", R.gelu_tanh,
                     _mk("gelu", approximate="tanh", label="mlkern.gelu"),
                     [_np_gelu_tanh], [_t_gelu_tanh]),
    elementwise_case("log_sigmoid", "log_sigmoid", "fwd", R.log_sigmoid, _mk("log_sigmoid"),
                     [_np_log_expit, _np_log_sigmoid], [_t_log_sigmoid]),
    # backward: (grad_output, saved); saved = forward output y or input x
    elementwise_case("sigmoid_backward", "sigmoid", "bwd", lambda g, y: g * R.sigmoid_grad_from_y(y),
                     _mk("sigmoid_backward"), [_np_sigmoid_bwd], [_t_sigmoid_bwd],
                     saved="y", y_of=R.sigmoid, memory_bound=True),
    elementwise_case("tanh_backward", "tanh", "bwd", lambda g, y: g * R.tanh_grad_from_y(y),
                     _mk("tanh_backward"), [_np_tanh_bwd], [_t_tanh_bwd],
                     saved="y", y_of=R.tanh, memory_bound=True),
    elementwise_case("relu_backward", "relu", "bwd", lambda g, x: g * R.relu_grad(x),
                     _mk("relu_backward"), [_np_relu_bwd], [_t_relu_bwd], memory_bound=True),
    elementwise_case("silu_backward", "silu", "bwd", lambda g, x: g * R.silu_grad(x),
                     _mk("silu_backward"), [_np_silu_bwd, _np_silu_bwd4], [_t_silu_bwd]),
    elementwise_case("gelu_backward", "gelu", "bwd", lambda g, x: g * R.gelu_grad(x),
                     _mk("gelu_backward"), [_np_gelu_bwd], [_t_gelu_bwd]),
    elementwise_case("gelu_tanh_backward", "gelu_tanh", "bwd", lambda g, x: g * R.gelu_tanh_grad(x),
                     _mk("gelu_backward", approximate="tanh", label="mlkern.gelu_backward"),
                     [_np_gelu_tanh_bwd], [_t_gelu_tanh_bwd]),
    elementwise_case("softplus_backward", "softplus", "bwd", lambda g, x: g * R.softplus_grad(x),
                     _mk("softplus_backward"), [_np_softplus_bwd, _np_softplus_bwd4],
                     [_t_softplus_bwd]),
    elementwise_case("elu_backward", "elu", "bwd", lambda g, y: g * R.elu_grad_from_y(y),
                     _mk("elu_backward"), [_np_elu_bwd], [_t_elu_bwd],
                     saved="y", y_of=R.elu, memory_bound=True),
    elementwise_case("log_sigmoid_backward", "log_sigmoid", "bwd",
                     lambda g, x: g * R.log_sigmoid_grad(x), _mk("log_sigmoid_backward"),
                     [_np_log_sigmoid_bwd, _np_log_sigmoid_bwd3], [_t_log_sigmoid_bwd]),
]

FAMILY = register(Family("activations", CASES, aliases=("elementwise",)))
ELEMENTWISE.roof_case = COPY
#: the NumPy sigmoid used for the per-call overhead line without SciPy
OVERHEAD_NP_SIGMOID = _np_sigmoid4
