"""Losses: a loss and its gradient from one call, mean reduction, each impl
returning ``(loss, grad)``.

* ``bce_with_logits_with_grad`` (z ~ 4 N(0,1), soft targets U[0,1)) and
  ``mse_with_grad`` (pred, target ~ N(0,1)) at ``--sizes``, in the
  elementwise table (GB/s by 3 n itemsize: read pred and target, write
  the gradient).  Peers: the NumPy out= chains max(z,0) - z t +
  log1p(exp(-|z|)) with ``expit`` (or the 4-pass sigmoid) for the
  gradient, and ``g = p - t; dot(g, g)/N; g *= 2/N`` (np.dot's OpenBLAS
  limited to one thread); torch's ATen chains (both [a]: the loss ops make
  n-sized temporaries even in their out= form) and autograd ([a]);
* ``cross_entropy_with_grad`` (logits ~ 2 N(0,1), uniform int64 labels) on
  its own shapes, its own table (GB/s by 2 N itemsize + 8 rows).  Peers:
  NumPy softmax - onehot with ``out=``, torch ``F.cross_entropy`` forward +
  backward ([a]);
* the check: loss within TOL relative, gradient within TOL of max|ref
  grad| (the gradient of a mean is ~1/N), against float64 on all elements.
"""
import numpy as np

from .. import references as R
from ..cases import CROSS_ENTROPY, ELEMENTWISE, Case, Family, RowShape, check_loss, register
from ..peers import aten, import_torch, mlkern_impl, numpy_peer, sps, torch_peer
from .rowwise import _amax, _asum, _kd

# --- numpy (single-threaded; np.dot's OpenBLAS is limited to 1 thread, see _blas_threads)
def _np_bce(sigmoid_name, needs=None):
    def deco(sig):
        @numpy_peer(f"np bce (out=), grad {sigmoid_name}", needs=needs)
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
    sps.expit(z, out=o)


@_np_bce("1/(1+exp(-z))")
def _np_bce_4pass(z, o):
    np.negative(z, out=o)
    np.exp(o, out=o)
    np.add(o, 1, out=o)
    np.reciprocal(o, out=o)


@numpy_peer("np p-t, dot, *2/N (out=)")
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


@numpy_peer("np softmax-onehot (out=)")
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
    @torch_peer(f"autograd {name}", allocates=True)
    def make(ins, o, *axis):
        z, t = ins
        F = import_torch().nn.functional
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


@torch_peer("aten bce + sigmoid(out=)", allocates=True)
def _t_bce_out(ins, o):
    # binary_cross_entropy_with_logits is a composite op: even its .out
    # form allocates n-sized temporaries (3 at 1e6, seen with the profiler)
    z, t = ins
    tm = import_torch()
    op = aten().binary_cross_entropy_with_logits.out
    loss = tm.empty((), dtype=z.dtype)
    n = z.numel()
    sig, sub, mul = tm.sigmoid, tm.sub, tm.mul

    def f():
        op(z, t, None, None, 1, out=loss)
        sig(z, out=o)
        sub(o, t, out=o)
        mul(o, 1.0 / n, out=o)
        return loss, o
    return f


@torch_peer("aten mse + mse_bwd(out=)", allocates=True)
def _t_mse_out(ins, o):
    # aten.mse_loss.out with reduction=mean resizes its out to the input's
    # shape (an n-sized temporary, and a warning per call): the loss is
    # the functional op, which allocates that temporary too
    p, t = ins
    at = aten()
    fwd, bwd = at.mse_loss.default, at.mse_loss_backward.grad_input
    one = import_torch().ones((), dtype=p.dtype)

    def f():
        loss = fwd(p, t, 1)
        bwd(one, p, t, 1, grad_input=o)
        return loss, o
    return f




# ------------------------------------------------------------------ inputs: float32 is the float64 draw rounded
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


def _loss_reference(case, point, ins):
    args = [a.astype(np.float64) if a.dtype.kind == "f" else a for a in ins]
    return case.ref(*args, *((point.axis,) if isinstance(point, RowShape) else ()))


def loss_case(name, ref, fname, numpy, torch, draw, table, nbytes, memory_bound=False):
    """mlkern.<fname>(pred, target[, axis=], out=grad) -> (loss, grad) against its peers."""
    def out_specs(case, point, dtype):
        return [((point,) if isinstance(point, int) else point.shape, dtype)]
    return Case(name, "losses", "loss", ref, mlkern_impl(fname), numpy, torch, table=table,
                group="losses", draw=lambda case, cache, p, dt: cache.get(
                    ("loss", name, p, dt.str), lambda: draw(p, dt)),
                checker=check_loss, out_specs=out_specs, nbytes=nbytes,
                memory_bound=memory_bound, check_result=True, reference=_loss_reference)


_B_3N = lambda n, isz: 3 * n * isz                                # noqa: E731  read pred, target; write grad
_B_CE = lambda rs, isz: 2 * rs.n * isz + 8 * rs.rows              # noqa: E731  read z, write grad, read labels

#: elementwise losses, at --sizes, in the elementwise table
CASES = [
    loss_case("bce_with_logits_with_grad", R.bce_with_logits_mean_ref,
              "binary_cross_entropy_with_logits_with_grad", [_np_bce_expit, _np_bce_4pass],
              [_t_bce_out, _t_bce_autograd], _draw_bce, ELEMENTWISE, _B_3N),
    loss_case("mse_with_grad", R.mse_mean_ref, "mse_with_grad", [_np_mse],
              [_t_mse_out, _t_mse_autograd], _draw_mse, ELEMENTWISE, _B_3N, memory_bound=True),
]
#: row-shaped losses, on the cross-entropy shapes (or --shapes)
ROW_CASES = [
    loss_case("cross_entropy_with_grad", lambda z, y, axis: R.cross_entropy_ref(z, y, axis=axis),
              "cross_entropy_with_grad", [_np_ce], [_t_ce_autograd], _draw_ce, CROSS_ENTROPY, _B_CE),
]

FAMILY = register(Family("losses", CASES + ROW_CASES))
