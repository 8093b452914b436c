"""mlkern on Dask arrays: every array function called with a ``dask.array``
argument returns a lazy dask array (docs/dask.rst).

The one module that knows about Dask.  It is imported only when a call's
argument is a dask array (``_validation.any_dask`` looks at the type's
module name, in the slow path of each family: the NumPy fast paths never
reach it), and it imports ``dask.array`` inside its functions.

How each family is spread over the chunks:

* elementwise (activations, ``*_grad``, ``*_backward``, ``prelu``):
  ``map_blocks`` / ``blockwise`` of the NumPy function on each block, so the
  result is the eager call's bit for bit.  ``noisy_relu`` passes each
  block's global C-order index to the kernel (``offset``): its noise is the
  whole array's, as in the eager call with the same seed.
* row-wise functions, ``cross_entropy*``, ``nll_loss*``, ``kl_div*``: the
  reduced axis must be in one chunk (``ValueError`` at call time naming the
  axis and ``x.rechunk({axis: -1})``); then one block call per chunk.
  ``argmax(axis=None)`` is a global reduction (each block's first maximum
  with its global index, then the first of those).
* losses: ``"mean"`` divides by the *global* count or weight.  When it is
  known at call time it is a number (no labels: the count of rows; labels
  and weights in NumPy: added on the client); else one small task per
  chunk of the labels or weights (the big array is never read for it)
  gives that chunk's share, and every chunk's task adds the shares itself
  (no aggregation task to wait for).  Each chunk is computed with the
  global denominator, so its gradient is the eager one, and gives the
  float64 sum of its losses; one task adds the sums (and divides).
  ``X_with_grad`` computes ``(loss part, grad)`` in one kernel call per
  chunk; the loss alone or the gradient alone is one task per chunk.
  ``rmse*_grad`` needs the global rmse first (a first pass for the loss).
* reductions inside a function (``prelu_backward``'s ``grad_alpha``): the
  float64 per-channel sums of each chunk, added across chunks.

* layers: ``dense`` one task per chunk of x's leading axes (the feature
  axis in one chunk), ``embedding`` one per chunk of the indices; the
  weights one chunk each (one key, sent once to a worker).
* ``mlkern.nn`` models (``Layer.forward``, the one entry): one task per
  chunk of the batch axis, every other axis in one chunk; the model is one
  key (a delayed object).  The output's shape, dtype and batch axis come
  from running the model on batches of 1 and 2 zero rows at call time (its
  attributes restored afterwards: a recurrent layer's h_n is untouched).

``out=`` is refused with dask input (``TypeError``): a dask array is not
written in place.  The optimisers update NumPy arrays in place and refuse
dask arrays (their ``TypeError`` asks for a ``numpy.ndarray``).
"""
import math

import numpy as np

from . import _kernels as _ew
from ._ops import UNARY
from ._validation import any_dask

_NOISY_RELU = UNARY["noisy_relu"]


def _da():
    import dask.array as da
    return da


def _no_out(out, fname):
    if out is not None:
        raise TypeError(f"{fname}: out= is not supported with dask input (dask arrays are "
                        "computed lazily, never written in place: use the returned array)")


def _like(a, chunks):
    """a as a dask array with `chunks` (None: as it is, or one chunk)."""
    da = _da()
    if not any_dask(a):
        return da.from_array(np.asarray(a), chunks=-1 if chunks is None else chunks)
    if chunks is not None and a.chunks != tuple(chunks):
        return a.rechunk(chunks)
    return a


def _pair(x, y, names, fname):
    """Two same-shape arguments as dask arrays with x's chunks."""
    xs, ys = np.shape(x), np.shape(y)
    if tuple(xs) != tuple(ys):
        pre = f"{fname}: " if fname else ""
        raise ValueError(f"{pre}{names[0]} and {names[1]} must have the same shape, got "
                         f"{tuple(xs)} and {tuple(ys)}")
    if not any_dask(x):
        x = _like(x, y.chunks)
    return x, _like(y, x.chunks)


def _whole_axis(x, ax, fname, name):
    nc = len(x.chunks[ax])
    if nc > 1:
        raise ValueError(f"{fname}: the reduced axis {ax} of {name} is split over {nc} chunks; "
                         f"it must be in one chunk: {name}.rechunk({{{ax}: -1}})")


# the fan-in of the sums of per-chunk scalars (loss parts, counts, weights):
# up to this many chunks are added by one task (Dask's default adds 4 per axis
# per level: more tasks, more small transfers between workers, each costing
# the event loops a few ms of CPU; the inputs are scalars)
_FAN_IN = 64


def _ssum(a, axis=None):
    """The sum of a (small: per-chunk scalars) with a flat aggregation."""
    axes = range(a.ndim) if axis is None else (axis if isinstance(axis, tuple) else (axis,))
    return a.sum(axis=axis, split_every=dict.fromkeys(axes, _FAN_IN))


def _meta(nd, dt):
    return np.empty((0,) * nd, dt)


def _ones(chunks):
    """The chunks of an array with one element per block."""
    return tuple((1,) * len(c) for c in chunks)


def _apply(*blocks, _f, **kw):
    return np.asarray(_f(*blocks, **kw))


def _first(t, nd):
    """A block's loss part (a float: as an array of one element per axis)."""
    v = t[0] if isinstance(t, tuple) else t
    if isinstance(v, np.ndarray) or np.ndim(v):
        return np.asarray(v)
    return np.full((1,) * nd, v, np.float64)


def _second(t):
    return t[1]


def _first_of(blocks):
    """The per-row losses of a block whose class axis (one chunk) is dropped."""
    t = blocks[0] if isinstance(blocks, list) else blocks
    return np.asarray(t[0])


def _row_losses(pairs, ind, rind, rdt):
    return _da().blockwise(_first_of, rind, pairs, ind, dtype=rdt, meta=_meta(len(rind), rdt))


def _split(pairs, nd, rdt, want_grad, loss_chunks=None, loss_dtype=np.float64):
    """The (loss, grad) of a collection of per-block results (loss parts
    summed to a lazy float64 scalar unless loss_chunks is given)."""
    if loss_chunks is None:
        parts = pairs.map_blocks(_first, nd=nd, chunks=_ones(pairs.chunks), dtype=np.float64,
                                 meta=_meta(nd, np.float64))
        loss = _ssum(parts)
    else:
        loss = pairs.map_blocks(_first, nd=nd, chunks=loss_chunks, dtype=loss_dtype,
                                meta=_meta(len(loss_chunks), loss_dtype))
    grad = pairs.map_blocks(_second, dtype=rdt, meta=_meta(nd, rdt)) if want_grad else None
    return loss, grad


def _parts_grad(pairs, nd, rdt):
    """The per-block float64 loss sums (chunks of one element per block) and
    the gradient of a collection of (loss sum, grad) blocks: a small task
    each, the one-pass kernel's result shared, never copied."""
    parts = pairs.map_blocks(_first, nd=nd, chunks=_ones(pairs.chunks), dtype=np.float64,
                             meta=_meta(nd, np.float64))
    return parts, pairs.map_blocks(_second, dtype=rdt, meta=_meta(nd, rdt))


def _result(want_loss, want_grad, loss, grad):
    if want_loss and want_grad:
        return loss, grad
    return loss if want_loss else grad


# ---------------------------------------------------------------- elementwise
def _unary_block(blk, params):
    from ._validation import unary_slow
    return np.asarray(unary_slow(*params[:1], blk, None, *params[1:]))


def _noisy_block(blk, params, gshape, block_info=None):
    """noisy_relu of one block with the whole array's noise: each run of
    elements contiguous in the global C order gets its global index."""
    from ._validation import as_float_array, finish
    op, a, b, c, seed = params
    arr, rdt = as_float_array(blk, "x", order="C")
    res = np.empty(arr.shape, arr.dtype)
    nd = arr.ndim
    if arr.size:
        loc = block_info[0]["array-location"] if nd else []
        j = nd                                  # axes j.. are whole in the block
        while j > 0 and tuple(loc[j - 1]) == (0, gshape[j - 1]):
            j -= 1
        lead = max(j - 1, 0)                    # a run: axis j-1 (partial) and the rest
        for idx in np.ndindex(*arr.shape[:lead]):
            start = tuple(loc[d][0] + idx[d] for d in range(lead)) + \
                tuple(loc[d][0] for d in range(lead, nd))
            off = int(np.ravel_multi_index(start, gshape)) if nd else 0
            src, dst = (arr[idx], res[idx]) if lead else (arr, res)   # views, never copies
            _ew.unary_raw(op, src.reshape(-1), dst.reshape(-1), a, b, c, seed, off)
    return np.asarray(finish(res, None, rdt, False))


def unary(op, x, out, a, b, c, seed):
    from ._validation import compute_dtype
    _no_out(out, "x")
    _, rdt = compute_dtype(x.dtype, "x")
    if op == _NOISY_RELU:
        return x.map_blocks(_noisy_block, params=(op, a, b, c, seed), gshape=x.shape,
                            dtype=rdt, meta=_meta(x.ndim, rdt))
    return x.map_blocks(_unary_block, params=(op, a, b, c, seed), dtype=rdt,
                        meta=_meta(x.ndim, rdt))


def _binary_block(g, s, params):
    from ._validation import binary_slow
    op, a, b, c, saved = params
    return np.asarray(binary_slow(op, g, s, None, a, b, c, saved=saved))


def binary(op, g, s, out, a, b, c, saved):
    from ._validation import compute_dtype
    _no_out(out, "grad_output")
    g, s = _pair(g, s, ("grad_output", saved), None)
    rdt = np.promote_types(compute_dtype(g.dtype, "grad_output")[1],
                           compute_dtype(s.dtype, saved)[1])
    return _da().map_blocks(_binary_block, g, s, params=(op, a, b, c, saved), dtype=rdt,
                            meta=_meta(g.ndim, rdt))


def _alpha_arg(x, alpha):
    """prelu's alpha as a blockwise argument: a (C,) dask array chunked like
    x's channel axis, or a scalar."""
    a = alpha if any_dask(alpha) else np.asarray(alpha)
    if a.dtype.kind not in "biuf":
        raise TypeError(f"alpha: expected a real number or a 1-D real array, got dtype {a.dtype}")
    if a.ndim > 1:
        raise ValueError(f"alpha: expected a scalar or a 1-D array, got shape {a.shape}")
    if x.ndim >= 2:
        C = x.shape[1]
        if a.size not in (1, C):
            raise ValueError(f"alpha: expected 1 or {C} values (one per channel on axis 1 of x, "
                             f"shape {x.shape}), got {a.size}")
        a = a.reshape(-1)
        if a.shape[0] == 1 and C != 1:
            a = (_da() if any_dask(a) else np).broadcast_to(a, (C,))
        return _like(a, (x.chunks[1],)), (1,)
    if a.size != 1:
        raise ValueError(f"alpha: x has {x.ndim} dimension(s), so there is no channel axis "
                         f"and alpha must hold one value, got {a.size}")
    return _like(a.reshape(()), None), ()


def prelu(x, alpha, out, grad):
    from . import activations as act
    from ._validation import compute_dtype
    _no_out(out, "prelu_grad" if grad else "prelu")
    x = _like(x, None)
    _, rdt = compute_dtype(x.dtype, "x")
    a, aind = _alpha_arg(x, alpha)
    ind = tuple(range(x.ndim))
    return _da().blockwise(_apply, ind, x, ind, a, aind, _f=act.prelu_grad if grad else act.prelu,
                           dtype=rdt, meta=_meta(x.ndim, rdt))


def _prelu_bwd_block(g, x, a):
    from . import activations as act
    gx, ga, _, _, _ = act._prelu_backward_parts(g, x, a, None)
    if x.ndim >= 2:
        part = ga.reshape((1, -1) + (1,) * (x.ndim - 2))
    else:
        part = np.full((1,) * x.ndim, ga.sum())
    return part, gx


def prelu_backward(grad_output, x, alpha, out):
    from ._validation import compute_dtype
    _no_out(out, "prelu_backward")
    ashape = np.shape(alpha)
    g, x = _pair(grad_output, x, ("grad_output", "x"), None)
    compute_dtype(g.dtype, "grad_output")
    _, rdt = compute_dtype(x.dtype, "x")
    a, aind = _alpha_arg(x, alpha)
    nd = x.ndim
    ind = tuple(range(nd))
    pairs = _da().blockwise(_prelu_bwd_block, ind, g, ind, x, ind, a, aind, dtype=object,
                            meta=_meta(nd, object))
    if nd >= 2:
        pchunks = (_ones(x.chunks)[0], x.chunks[1]) + _ones(x.chunks)[2:]
    else:
        pchunks = _ones(x.chunks)
    parts, gx = _split(pairs, nd, rdt, True, loss_chunks=pchunks)
    C = x.shape[1] if nd >= 2 else 1
    ga = (_ssum(parts, axis=tuple(i for i in range(nd) if i != 1)) if nd >= 2
          else _ssum(parts).reshape(1))
    if len(ashape) == 0:
        galpha = ga.sum().astype(rdt)
    elif ashape[0] == 1 and C != 1:
        galpha = ga.sum().reshape(1).astype(rdt)
    else:
        galpha = ga.astype(rdt)
    return gx, galpha


# ---------------------------------------------------------------- row-wise
def rowwise(op, fname, x, axis, out):
    from . import rowwise as rw
    from ._validation import check_axis, compute_dtype
    _no_out(out, fname)
    _, rdt = compute_dtype(x.dtype, "x")
    ax = check_axis(axis, x.ndim, fname)
    _whole_axis(x, ax, fname, "x")
    return x.map_blocks(_apply, _f=getattr(rw, fname), axis=ax, dtype=rdt, meta=_meta(x.ndim, rdt))


def rowwise_backward(op, fname, grad_output, y, axis, out):
    from . import rowwise as rw
    from ._validation import check_axis, compute_dtype
    _no_out(out, fname)
    g, y = _pair(grad_output, y, ("grad_output", "y"), fname)
    rdt = np.promote_types(compute_dtype(g.dtype, "grad_output")[1], compute_dtype(y.dtype, "y")[1])
    ax = check_axis(axis, g.ndim, fname)
    _whole_axis(g, ax, fname, "grad_output")
    return _da().map_blocks(_apply, g, y, _f=getattr(rw, fname), axis=ax, dtype=rdt,
                            meta=_meta(g.ndim, rdt))


def logsumexp(x, axis, keepdims, out):
    from . import rowwise as rw
    from ._validation import check_axis, compute_dtype
    _no_out(out, "logsumexp")
    _, rdt = compute_dtype(x.dtype, "x")
    ax = check_axis(axis, x.ndim, "logsumexp")
    _whole_axis(x, ax, "logsumexp", "x")
    if keepdims:
        return x.map_blocks(_apply, _f=rw.logsumexp, axis=ax, keepdims=True,
                            chunks=x.chunks[:ax] + ((1,),) + x.chunks[ax + 1:], dtype=rdt,
                            meta=_meta(x.ndim, rdt))
    return x.map_blocks(_apply, _f=rw.logsumexp, axis=ax, drop_axis=ax, dtype=rdt,
                        meta=_meta(x.ndim - 1, rdt))


def softmax_jacobian(p, axis):
    from . import rowwise as rw
    from ._validation import check_axis, compute_dtype
    _, rdt = compute_dtype(p.dtype, "p")
    ax = check_axis(axis, p.ndim, "softmax_jacobian")
    _whole_axis(p, ax, "softmax_jacobian", "p")
    n = p.shape[ax]
    nd = p.ndim
    ind = tuple(range(nd))
    out_ind = tuple(i for i in ind if i != ax) + (nd, nd + 1)
    return _da().blockwise(_apply, out_ind, p, ind, _f=rw.softmax_jacobian, axis=ax,
                           new_axes={nd: n, nd + 1: n}, concatenate=True, dtype=rdt,
                           meta=_meta(nd + 1, rdt))


def _argmax_part(blk, gshape, block_info=None):
    """(value, global C-order index) of the block's first maximum."""
    from . import rowwise as rw
    res = np.empty((1,) * blk.ndim, object)
    if blk.size == 0:
        res[...] = None
        return res
    i = int(rw.argmax(blk, axis=None))
    idx = np.unravel_index(i, blk.shape)
    loc = block_info[0]["array-location"]
    g = int(np.ravel_multi_index(tuple(lo[0] + k for lo, k in zip(loc, idx)), gshape))
    res[(0,) * blk.ndim] = (blk[idx], g)
    return res


def _argmax_pick(parts):
    """The global first maximum from the blocks' (value, index) pairs: a NaN
    wins (the first one), else the largest value, the first of ties."""
    cands = [p for p in parts.ravel() if p is not None]
    nans = [i for v, i in cands if v != v]
    if nans:
        return np.asarray(min(nans), np.int64)
    best = max(v for v, _ in cands)
    return np.asarray(min(i for v, i in cands if v == best), np.int64)


def argmax(x, axis, keepdims, out):
    from . import rowwise as rw
    from ._validation import check_axis, compute_dtype
    _no_out(out, "argmax")
    if x.ndim == 0:
        raise ValueError("argmax: a 0-d input has no axis to reduce")
    if x.dtype.kind not in "biu":
        compute_dtype(x.dtype, "x")
    i64 = np.dtype(np.int64)
    nd = x.ndim
    if axis is None:
        if x.size == 0:
            raise ValueError("argmax: an empty array has no maximum")
        da = _da()
        ind = tuple(range(nd))
        parts = x.map_blocks(_argmax_part, gshape=x.shape, chunks=_ones(x.chunks), dtype=object,
                             meta=_meta(nd, object))
        res = da.blockwise(_argmax_pick, (), parts, ind, concatenate=True, dtype=i64,
                           meta=np.empty((), i64))
        return res.reshape((1,) * nd) if keepdims else res
    ax = check_axis(axis, nd, "argmax")
    if x.shape[ax] == 0:
        raise ValueError("argmax: the reduced axis is empty")
    _whole_axis(x, ax, "argmax", "x")
    if keepdims:
        return x.map_blocks(_apply, _f=rw.argmax, axis=ax, keepdims=True,
                            chunks=x.chunks[:ax] + ((1,),) + x.chunks[ax + 1:], dtype=i64,
                            meta=_meta(nd, i64))
    return x.map_blocks(_apply, _f=rw.argmax, axis=ax, drop_axis=ax, dtype=i64,
                        meta=_meta(nd - 1, i64))


# ---------------------------------------------------------------- losses
def _whole(parts, first=None):
    """Per-block parts (one element per block: loss sums, denominator
    shares) as a blockwise (argument, index) that every task receives
    whole.  Up to _FAN_IN blocks: the parts themselves, with no aggregation
    task (so no extra round trip between the workers before the tasks that
    need their sum): as a list of the blocks' keys (first None: no index is
    contracted, so the task making a chunk's input can still be fused into
    the chunk's task), or on the contracted indices first, first+1, ...
    (an aggregating task: there a list of keys made Dask's optimiser fuse a
    chunk's kernel into each of its two consumers, computing it twice).
    Beyond _FAN_IN blocks: their sum (0-d)."""
    if parts.npartitions <= _FAN_IN:
        if first is not None:
            return parts, tuple(range(first, first + parts.ndim))
        return list(parts.to_delayed(optimize_graph=False).ravel()), None
    return _ssum(parts), ()


def _denom_arg(denom, first=None):
    """The mean's denominator as a blockwise (argument, index): a number as
    it is, per-block parts (a dask array) by _whole."""
    return _whole(denom, first) if any_dask(denom) else (denom, None)


def _added(v):
    """The value of a _whole / _denom_arg argument inside a task: the sum of
    the parts (in the blocks' C order, as _ssum's aggregation), or the
    number."""
    return float(np.sum(np.asarray(v, np.float64)))


def _sum_parts(a):
    """Per-block float64 sums of a (chunks of one element per block)."""
    return a.map_blocks(_fsum_block, chunks=_ones(a.chunks), dtype=np.float64,
                        meta=_meta(a.ndim, np.float64))


def _fsum_block(b):
    return np.full((1,) * b.ndim, np.sum(b.astype(np.float64)))


def _loss_block(parts, denom, mode, reduction, rdt, nan_if_empty):
    v = np.float64(_added(parts))
    if reduction == "mean":
        d = np.float64(_added(denom))
        if mode == "divide":
            with np.errstate(divide="ignore", invalid="ignore"):
                v = v / d
        if nan_if_empty and d == 0:
            v = np.float64(np.nan)
    return np.asarray(v, np.float64).astype(rdt)


def _loss_of(parts, denom, mode, reduction, rdt, nan_if_empty=False):
    """The lazy 0-d loss in one task from the per-block float64 loss sums
    (`parts`) and the denominator (a number or per-block parts): the parts
    added, "divide": divided by the denominator ("scaled": the parts are
    already divided), NaN for a mean over nothing if nan_if_empty; the
    result dtype rdt.  The sums on contracted indices, the denominator's
    shares as a list of keys (two contracted arrays make Dask warn of the
    product of their block counts)."""
    pa, pi = _whole(parts, 0)
    d, di = _denom_arg(denom) if reduction == "mean" else (1.0, None)
    return _da().blockwise(_loss_block, (), pa, pi, d, di, mode=mode, reduction=reduction,
                           rdt=rdt, nan_if_empty=nan_if_empty, concatenate=True, dtype=rdt,
                           meta=np.empty((), rdt))


def _ploss_block(pb, tb, swb, pwb, denom, root, kw, mode, want_grad):
    from .losses import _pointwise
    pw = kw["pos_weight_scalar"]
    if pwb is None:
        pwb = pw
    if mode == "none":
        return np.asarray(_pointwise(kw["fname"], kw["op"], pb, tb, "none", swb, True, False, None,
                                     names=kw["names"], delta=kw["delta"], pos_weight=pwb,
                                     lscale=kw["lscale"], gmul=kw["gmul"], rmse=kw["rmse"]))
    return _pointwise(kw["fname"], kw["op"], pb, tb, kw["reduction"], swb, True, want_grad, None,
                      names=kw["names"], delta=kw["delta"], pos_weight=pwb, lscale=kw["lscale"],
                      gmul=kw["gmul"], rmse=kw["rmse"] and mode == "grad",
                      _denom=float(denom), _root=None if root is None else float(root),
                      _partial=True)


def _ploss_call(mode, want_grad, p, t, sw, pw, denom, root, kw, rdt):
    nd = p.ndim
    ind = tuple(range(nd))
    args = [p, ind, t, ind,
            sw if sw is not None else None, (0,) if sw is not None else None,
            pw if pw is not None else None, ind if pw is not None else None]
    for v in (denom, root):
        args += [v, () if any_dask(v) else None]
    k = kw
    if mode == "none":
        return _da().blockwise(_ploss_block, ind, *args, kw=k, mode=mode, want_grad=False,
                               dtype=rdt, meta=_meta(nd, rdt))
    return _da().blockwise(_ploss_block, ind, *args, kw=k, mode=mode, want_grad=want_grad,
                           dtype=object, meta=_meta(nd, object))


def pointwise(fname, op, pred, target, reduction, sample_weight, want_loss, want_grad, out, *,
              names, delta, pos_weight, lscale, gmul, rmse):
    from ._validation import compute_dtype
    _no_out(out, fname)
    da = _da()
    p, t = _pair(pred, target, names, fname)
    _, rdt = compute_dtype(p.dtype, names[0])
    compute_dtype(t.dtype, names[1])
    nd = p.ndim
    sw = None
    if sample_weight is not None:
        if nd == 0:
            raise ValueError(f"{fname}: sample_weight needs an input with a leading axis (got a 0-d "
                             "input)")
        if tuple(np.shape(sample_weight)) != (p.shape[0],):
            raise ValueError(f"{fname}: sample_weight must have shape ({p.shape[0]},) (one weight "
                             f"per index of the leading axis), got {tuple(np.shape(sample_weight))}")
        sw = _like(sample_weight, (p.chunks[0],))
    pw = None
    pws = pos_weight
    if pos_weight is not None and (any_dask(pos_weight) or np.size(pos_weight) != 1):
        try:
            ok = np.broadcast_shapes(np.shape(pos_weight), p.shape) == p.shape
        except ValueError:
            ok = False
        if not ok:
            raise ValueError(f"{fname}: pos_weight of shape {np.shape(pos_weight)} does not "
                             f"broadcast to the logits' shape {p.shape}")
        pw = da.broadcast_to(_like(pos_weight, None), p.shape).rechunk(p.chunks)
        pws = None
    kw = dict(fname=fname, op=op, names=names, delta=delta, lscale=lscale, gmul=gmul, rmse=rmse,
              reduction=reduction, pos_weight_scalar=pws)
    if reduction == "mean":
        K = math.prod(p.shape[1:])
        denom = _ssum(sw.astype(np.float64)) * K if sw is not None else float(p.size)
    else:
        denom = 1.0
    loss = grad = None
    if want_loss and reduction == "none":
        loss = _ploss_call("none", False, p, t, sw, pw, denom, None, kw, rdt)
    if rmse and want_grad:
        # the gradient d / (N rmse) needs the whole array's rmse first
        tot, _ = _split(_ploss_call("total", False, p, t, sw, pw, denom, None, kw, rdt), nd,
                        rdt, False)
        root = da.sqrt(tot / denom) if reduction != "none" else da.sqrt(tot)
        _, grad = _split(_ploss_call("grad", True, p, t, sw, pw, denom, root, kw, rdt), nd,
                         rdt, True)
        if want_loss and reduction != "none":
            v = tot / denom if reduction == "mean" else tot
            loss = da.sqrt(v).astype(rdt)
        return _result(want_loss, want_grad, loss, grad)
    if reduction == "none":
        if want_grad:
            _, grad = _split(_ploss_call("total", True, p, t, sw, pw, denom, None, kw, rdt), nd,
                             rdt, True)
        return _result(want_loss, want_grad, loss, grad)
    tot, grad = _split(_ploss_call("total", want_grad, p, t, sw, pw, denom, None, kw, rdt), nd,
                       rdt, want_grad)
    v = tot / denom if reduction == "mean" else tot
    loss = (da.sqrt(v) if rmse else v).astype(rdt)
    return _result(want_loss, want_grad, loss, grad)


def _label_denom_block(lab, swb, wb, ig, n, wdt):
    """One chunk's share of the mean's denominator: sum of s * weight[label]."""
    valid = lab != ig
    if swb is None and wb is None:
        return np.full((1,) * lab.ndim, float(np.count_nonzero(valid)))
    s = np.where(valid, 1.0 if swb is None else swb.astype(np.float64), 0.0)
    if wb is not None:
        safe = np.clip(np.where(valid, lab, 0), 0, n - 1)
        s = s * np.asarray(wb, wdt).astype(np.float64)[safe]
    return np.full((1,) * lab.ndim, float(np.sum(s)))


def _label_denom(target, sample_weight, weight, lab, sw, w, ig, n, wdt, rind):
    """The mean's denominator (sum of s * weight[label] over the counted
    labels): a float computed here when the labels and both weights are
    NumPy arrays (no task, nothing to wait for), else a dask array of
    per-chunk shares (see _whole)."""
    if not any_dask(target, sample_weight, weight):
        swn = None if sample_weight is None else np.asarray(sample_weight)
        wn = None if weight is None else np.asarray(weight)
        return float(_label_denom_block(np.asarray(target), swn, wn, ig, n, wdt).sum())
    args = [lab, rind, sw, rind if sw is not None else None, w, (1000,) if any_dask(w) else None]
    return _da().blockwise(_label_denom_block, rind, *args, ig=ig, n=n, wdt=wdt,
                           adjust_chunks={i: (lambda c: 1) for i in rind}, concatenate=True,
                           dtype=np.float64, meta=_meta(len(rind), np.float64))


def _class_task(fname, logits, target, axis, reduction, weight, ignore_index, sample_weight,
                out, kind):
    """The common set-up of cross_entropy and nll_loss on dask arrays."""
    from ._validation import check_axis, check_ignore_index, check_reduction, compute_dtype
    _no_out(out, fname)
    z = _like(logits, None)
    name = "logits" if kind == "xent" else "log_probs"
    _, rdt = compute_dtype(z.dtype, name)
    nd = z.ndim
    ax = check_axis(axis, nd, fname)
    check_reduction(reduction, fname)
    ig = check_ignore_index(ignore_index, fname)
    _whole_axis(z, ax, fname, name)
    n = z.shape[ax]
    rshape = z.shape[:ax] + z.shape[ax + 1:]
    rchunks = z.chunks[:ax] + z.chunks[ax + 1:]
    ind = tuple(range(nd))
    rind = tuple(i for i in ind if i != ax)
    tdt = target.dtype if any_dask(target) else np.asarray(target).dtype
    probs = kind == "xent" and tdt.kind == "f" and tuple(np.shape(target)) == z.shape
    if probs:
        t, tind = _like(target, z.chunks), ind
    else:
        if tdt.kind not in "iu":
            raise TypeError(f"{fname}: integer class labels expected for target, got dtype {tdt}")
        if tuple(np.shape(target)) != rshape:
            raise ValueError(f"{fname}: target must have the logits' shape without the class "
                             f"axis, {rshape}, got {tuple(np.shape(target))}")
        t, tind = _like(target, rchunks), rind
    for v, vname in ((sample_weight, "sample_weight"), (weight, "weight")):
        vdt = None if v is None else (v.dtype if any_dask(v) else np.asarray(v).dtype)
        if vdt is not None and vdt.kind not in "biuf":     # the eager call's message
            raise TypeError(f"{fname}: {vname} must be real, got dtype {vdt}")
    sw = None
    if sample_weight is not None:
        if tuple(np.shape(sample_weight)) != rshape:
            raise ValueError(f"{fname}: sample_weight must have the target's shape {rshape}, got "
                             f"{tuple(np.shape(sample_weight))}")
        sw = _like(sample_weight, rchunks)
    w = weight
    if weight is not None:
        if tuple(np.shape(weight)) != (n,):
            raise ValueError(f"{fname}: weight must have shape ({n},) (one per class), got "
                             f"{tuple(np.shape(weight))}")
        w = _like(weight, ((n,),)) if any_dask(weight) else np.asarray(weight)
    if n == 0:
        raise ValueError(f"{fname}: the class axis is empty")
    return z, t, tind, sw, w, ig, ax, n, rdt, nd, ind, rind, rshape, probs


def _class_block(zb, tb, swb, wb, denom, kind, fname, ax, reduction, ig, eps, want_loss,
                 want_grad, part=False):
    """One chunk of a class loss: reduction "none" the eager call's result;
    else (the float64 sum of its losses, its gradient) with the whole
    array's denominator, or only the sum (as a one-element-per-axis array,
    part=True), or only the gradient (want_loss False)."""
    from .losses import _nll, _xent
    if kind == "xent":
        args = (fname, zb, tb, ax, reduction, wb, ig, eps, swb)
        f = _xent
    else:
        args = (fname, zb, tb, ax, reduction, wb, ig, swb)
        f = _nll
    if reduction == "none":
        return f(*args, want_loss, want_grad, None)
    r = f(*args, True, want_grad, None, _denom=_added(denom), _partial=True)
    if part:
        return _first(r, zb.ndim)
    return r if want_loss else r[1]


def _class_loss(fname, kind, logits, target, axis, reduction, weight, ignore_index, eps,
                sample_weight, want_loss, want_grad, out):
    """A class loss on dask arrays: one task per chunk of the logits calls
    the eager kernel once, with the whole array's mean denominator, for the
    chunk's gradient and float64 loss sum; the loss is one task adding the
    sums.  The denominator: a number when it is known at call time (no
    labels: the count of rows; labels and weights in NumPy: computed here),
    else one small task per chunk over the labels and weights (never the
    logits) whose shares every chunk's task adds itself (see _whole)."""
    from ._validation import compute_dtype
    da = _da()
    z, t, tind, sw, w, ig, ax, n, rdt, nd, ind, rind, rshape, probs = _class_task(
        fname, logits, target, axis, reduction, weight, ignore_index, sample_weight, out, kind)
    if reduction == "mean":
        if probs:
            denom = _sum_parts(sw) if sw is not None else float(math.prod(rshape))
        else:
            # the class weights as the eager call reads them (xent: in the compute dtype)
            wdt = compute_dtype(z.dtype, "logits")[0] if kind == "xent" else np.float64
            denom = _label_denom(target, sample_weight, weight, t, sw, w, ig, n, wdt, rind)
    else:
        denom = 1.0
    args = [z, ind, t, tind, sw, rind if sw is not None else None,
            w, (ax,) if any_dask(w) else None, *_denom_arg(denom)]
    kw = dict(kind=kind, fname=fname, ax=ax, reduction=reduction, ig=ig, eps=eps)
    if reduction == "none" and want_loss and not want_grad:
        return da.blockwise(_class_block, rind, *args, **kw, want_loss=True, want_grad=False,
                            concatenate=True, dtype=rdt, meta=_meta(nd - 1, rdt))
    if reduction != "none" and not want_loss:            # the gradient alone: one task a chunk
        return da.blockwise(_class_block, ind, *args, **kw, want_loss=False, want_grad=True,
                            concatenate=True, dtype=rdt, meta=_meta(nd, rdt))
    mode = "scaled" if kind == "xent" and not probs else "divide"   # xent: 1/denom in the chunks
    if reduction != "none" and not want_grad:           # the loss alone: the chunks' sums
        parts = da.blockwise(_class_block, ind, *args, **kw, want_loss=True, want_grad=False,
                             part=True, concatenate=True, adjust_chunks=dict.fromkeys(ind, 1),
                             dtype=np.float64, meta=_meta(nd, np.float64))
        return _loss_of(parts, denom, mode, reduction, rdt, nan_if_empty=not probs)
    pairs = da.blockwise(_class_block, ind, *args, **kw, want_loss=want_loss,
                         want_grad=want_grad, dtype=object,
                         meta=_meta(nd, object))
    if reduction == "none":
        if not want_loss:
            return pairs.map_blocks(_identity, dtype=rdt, meta=_meta(nd, rdt))
        return _row_losses(pairs, ind, rind, rdt), pairs.map_blocks(_second, dtype=rdt,
                                                                     meta=_meta(nd, rdt))
    parts, grad = _parts_grad(pairs, nd, rdt)
    return _loss_of(parts, denom, mode, reduction, rdt, nan_if_empty=not probs), grad


def _identity(t):
    return t


def xent(fname, logits, target, axis, reduction, weight, ignore_index, label_smoothing,
         sample_weight, want_loss, want_grad, out):
    from .losses import _xent_params
    _xent_params(np.ndim(logits), axis, reduction, ignore_index, label_smoothing, fname)
    return _class_loss(fname, "xent", logits, target, axis, reduction, weight, ignore_index,
                       label_smoothing, sample_weight, want_loss, want_grad, out)


def nll(fname, log_probs, target, axis, reduction, weight, ignore_index, sample_weight,
        want_loss, want_grad, out):
    return _class_loss(fname, "nll", log_probs, target, axis, reduction, weight, ignore_index,
                       0.0, sample_weight, want_loss, want_grad, out)


def _kl_block(pb, qb, swb, denom, fname, ax, log_q, reduction, want_loss, want_grad, part=False):
    from .losses import _kl
    if reduction == "none":
        return _kl(fname, pb, qb, ax, log_q, reduction, swb, want_loss, want_grad, None)
    r = _kl(fname, pb, qb, ax, log_q, reduction, swb, True, want_grad, None,
            _denom=_added(denom), _partial=True)
    if part:
        return _first(r, qb.ndim)
    return r if want_loss else r[1]


def kl(fname, p, q, axis, log_q, reduction, sample_weight, want_loss, want_grad, out):
    from ._validation import check_axis, compute_dtype
    _no_out(out, fname)
    da = _da()
    q, p = _pair(q, p, ("q", "p"), fname)
    _, rdt = compute_dtype(q.dtype, "q")
    compute_dtype(p.dtype, "p")
    nd = q.ndim
    ax = check_axis(axis, nd, fname)
    _whole_axis(q, ax, fname, "q")
    rshape = q.shape[:ax] + q.shape[ax + 1:]
    rchunks = q.chunks[:ax] + q.chunks[ax + 1:]
    ind = tuple(range(nd))
    rind = tuple(i for i in ind if i != ax)
    sw = None
    if sample_weight is not None:
        s = tuple(np.shape(sample_weight))
        if s == rshape:
            sw = _like(sample_weight, rchunks)
        elif len(s) == 1 and len(rshape) >= 1 and s[0] == rshape[0]:
            s1 = _like(sample_weight, None).reshape((-1,) + (1,) * (len(rshape) - 1))
            sw = da.broadcast_to(s1, rshape).rechunk(rchunks)
        else:
            raise ValueError(f"{fname}: sample_weight must have shape {rshape} (one weight per "
                             f"row) or ({rshape[0] if rshape else 1},), got {s}")
    if reduction == "mean":
        denom = _sum_parts(sw) if sw is not None else float(math.prod(rshape))
    else:
        denom = 1.0
    args = [p, ind, q, ind, sw, rind if sw is not None else None, *_denom_arg(denom)]
    kw = dict(fname=fname, ax=ax, log_q=log_q, reduction=reduction)
    if reduction == "none" and want_loss and not want_grad:
        return da.blockwise(_kl_block, rind, *args, **kw, want_loss=True, want_grad=False,
                            concatenate=True, dtype=rdt, meta=_meta(nd - 1, rdt))
    if reduction != "none" and not want_loss:
        return da.blockwise(_kl_block, ind, *args, **kw, want_loss=False, want_grad=True,
                            concatenate=True, dtype=rdt, meta=_meta(nd, rdt))
    if reduction != "none" and not want_grad:
        parts = da.blockwise(_kl_block, ind, *args, **kw, want_loss=True, want_grad=False,
                             part=True, concatenate=True, adjust_chunks=dict.fromkeys(ind, 1),
                             dtype=np.float64, meta=_meta(nd, np.float64))
        return _loss_of(parts, denom, "divide", reduction, rdt)
    pairs = da.blockwise(_kl_block, ind, *args, **kw, want_loss=want_loss, want_grad=want_grad,
                         dtype=object, meta=_meta(nd, object))
    if reduction == "none":
        if not want_loss:
            return pairs.map_blocks(_identity, dtype=rdt, meta=_meta(nd, rdt))
        return _row_losses(pairs, ind, rind, rdt), pairs.map_blocks(_second, dtype=rdt,
                                                                     meta=_meta(nd, rdt))
    parts, grad = _parts_grad(pairs, nd, rdt)
    return _loss_of(parts, denom, "divide", reduction, rdt), grad


def _penalty_block(wb, op):
    from ._validation import as_float_array, flat
    wa, _ = as_float_array(wb, "w")
    if not wa.size:
        return np.zeros((1,) * wb.ndim)
    bsum = _ew.ploss_raw(op, flat(wa), flat(wa), None, None, None, 1, None, 1, 0)
    return np.full((1,) * wb.ndim, float(np.sum(bsum)))


def penalty(fname, op, w, lam, want_loss, out):
    from . import losses
    from ._validation import compute_dtype
    _no_out(out, fname)
    _, rdt = compute_dtype(w.dtype, "w")
    if want_loss:
        parts = w.map_blocks(_penalty_block, op=op, chunks=_ones(w.chunks), dtype=np.float64,
                             meta=_meta(w.ndim, np.float64))
        return (lam * _ssum(parts)).astype(rdt)
    return w.map_blocks(_apply, _f=getattr(losses, fname), lam=lam, dtype=rdt,
                        meta=_meta(w.ndim, rdt))


# ---------------------------------------------------------------- layers and models
def _single(a):
    """A (small) parameter array as a dask array of one chunk (a NumPy one
    is wrapped without a copy: one key, shipped once to each worker)."""
    if a is None:
        return None
    if not any_dask(a):
        a = np.asarray(a)
    return _like(a, tuple((s,) for s in a.shape))


def _zeros_like_meta(a):
    """A zero array of a's shape and dtype (a's values are never read)."""
    return np.zeros(np.shape(a), a.dtype if any_dask(a) else np.asarray(a).dtype)


def _dense_block(xb, wb, bb, act, params, pair):
    from . import layers
    r = layers.dense(xb, wb, bb, activation=act, return_saved=pair, **params)
    if not pair:
        return r
    res = np.empty((1,) * xb.ndim, object)
    res[(0,) * xb.ndim] = r
    return res


def dense(x, weight, bias, activation, out, return_saved, params):
    """mlkern.layers.dense with a dask argument: one task per chunk of x's
    leading (batch) axes; the feature axis (the last) in one chunk."""
    from . import layers
    _no_out(out, "dense")
    x = _like(x, None)
    if x.ndim < 1:
        raise ValueError("dense: x must have at least 1 dimension (..., in_features), got a scalar")
    # the eager call's checks (shapes, dtypes, activation) on a sample of one row
    sample = np.zeros((1,) * (x.ndim - 1) + x.shape[-1:], x.dtype)
    wz = _zeros_like_meta(weight)
    bz = None if bias is None else _zeros_like_meta(bias)
    rdt = layers.dense(sample, wz, bz, activation=activation, **params).dtype
    _whole_axis(x, x.ndim - 1, "dense", "x")
    nd = x.ndim
    lead = tuple(range(nd - 1))
    xi, wi, bi = lead + (nd - 1,), (nd, nd - 1), (nd,)
    args = [x, xi, _single(weight), wi, _single(bias), bi if bias is not None else None]
    fop, _, from_y = layers._spec(activation, params)[:3]
    keep_z = return_saved and fop >= 0 and not from_y
    da = _da()
    if not keep_z:
        y = da.blockwise(_dense_block, lead + (nd,), *args, act=activation, params=params,
                         pair=False, concatenate=True, dtype=rdt, meta=_meta(nd, rdt))
        return (y, y if fop >= 0 else None) if return_saved else y
    pairs = da.blockwise(_dense_block, lead + (nd,), *args, act=activation, params=params,
                         pair=True, concatenate=True, adjust_chunks={i: 1 for i in lead + (nd,)},
                         dtype=object,
                         meta=_meta(nd, object))
    chunks = x.chunks[:-1] + ((weight.shape[0],),)
    y = pairs.map_blocks(_pair_part, i=0, chunks=chunks, dtype=rdt, meta=_meta(nd, rdt))
    z = pairs.map_blocks(_pair_part, i=1, chunks=chunks, dtype=rdt, meta=_meta(nd, rdt))
    return y, z


def _pair_part(t, i):
    return t.reshape(-1)[0][i]


def _emb_block(ib, wb, padding_idx):
    from . import layers
    return layers.embedding(ib, wb, padding_idx=padding_idx)


def embedding(indices, weight, padding_idx, out):
    """mlkern.layers.embedding with a dask argument: one task per chunk of
    the indices (any axes), the table in one chunk."""
    from . import layers
    _no_out(out, "embedding")
    idx = _like(indices, None)
    # the eager call's checks (dtypes, the table's shape, padding_idx) on no index
    rdt = layers.embedding(np.zeros((0,), idx.dtype), _zeros_like_meta(weight),
                           padding_idx=padding_idx).dtype
    nd = idx.ndim
    ind = tuple(range(nd))
    return _da().blockwise(_emb_block, ind + (nd,), idx, ind, _single(weight), (nd + 1, nd),
                           padding_idx=padding_idx, concatenate=True, dtype=rdt,
                           meta=_meta(nd + 1, rdt))


def _all_layers(layer):
    out = [layer]
    for sub in getattr(layer, "layers", ()):
        out += _all_layers(sub)
    return out


def _batch_axis(layer):
    """The input's batch axis: 0, or 1 for a recurrent layer with
    batch_first=False (a Sequential: its first layer's)."""
    while getattr(layer, "layers", None):
        layer = layer.layers[0]
    return 0 if getattr(layer, "batch_first", True) else 1


def _model_block(xb, layer):
    return np.asarray(layer.forward(xb))


def model(layer, x, training):
    """``layer.forward(x)`` of an mlkern.nn layer or model on a dask array:
    one task per chunk of the batch axis (every other axis in one chunk)."""
    import dask
    name = type(layer).__name__
    if training:
        raise TypeError(f"{name}.forward: training=True is not supported on a dask array (a "
                        "backward needs the forward's state in memory): train on NumPy batches "
                        "(e.g. x[i:j].compute()); inference, model(x), is lazy")
    if x.ndim == 0:
        raise ValueError(f"{name}: a 0-d dask array has no batch axis")
    ax = _batch_axis(layer)
    if ax >= x.ndim:
        raise ValueError(f"{name}: the input needs a batch axis {ax}, got shape {x.shape}")
    split = [i for i in range(x.ndim) if i != ax and len(x.chunks[i]) > 1]
    if split:
        remedy = ", ".join(f"{i}: -1" for i in split)
        raise ValueError(f"{name}: the dask input is split over chunks along axis "
                         f"{', '.join(map(str, split))} (chunks {x.chunks}); a model is applied "
                         f"to each chunk of the batch axis {ax}, so every other axis must be in "
                         f"one chunk: x.rechunk({{{remedy}}})")
    # the output's shape, dtype and batch axis from two small samples (batch 1
    # and 2, zeros), with the layers' attributes restored afterwards
    keep = [(lay, dict(vars(lay))) for lay in _all_layers(layer)]
    try:
        ys = []
        for n in (1, 2):
            shape = x.shape[:ax] + (n,) + x.shape[ax + 1:]
            ys.append(np.asarray(layer.forward(np.zeros(shape, x.dtype))))
    finally:
        for lay, d in keep:
            vars(lay).clear()
            vars(lay).update(d)
    s1, s2 = ys[0].shape, ys[1].shape
    diff = [i for i in range(len(s1)) if len(s1) == len(s2) and s1[i] != s2[i]]
    if len(s1) != len(s2) or len(diff) != 1 or (s1[diff[0]], s2[diff[0]]) != (1, 2):
        raise ValueError(f"{name}: its output (shape {s1} for a batch of 1, {s2} for 2) does not "
                         f"keep the batch axis {ax} of the input, so it cannot be applied to a "
                         "dask array chunk by chunk")
    oax, rdt = diff[0], ys[0].dtype
    out_ind = tuple(ax if i == oax else x.ndim + i for i in range(len(s1)))
    new = {x.ndim + i: s1[i] for i in range(len(s1)) if i != oax}
    lay = dask.delayed(layer, pure=False)
    return _da().blockwise(_model_block, out_ind, x, tuple(range(x.ndim)), lay, None,
                           new_axes=new, concatenate=True, dtype=rdt,
                           meta=_meta(len(s1), rdt))


def _dbwd_block(xb, gb, wb, sb, lead, has_bias, act, params, need_gx):
    from . import layers
    gx, gw, gbias = layers.dense_backward(gb, xb, wb, has_bias=has_bias, activation=act,
                                          saved=sb, needs_input_grad=need_gx, **params)
    res = np.empty((1,) * lead, object)
    res[(0,) * lead] = (gx, gw.astype(np.float64),
                        None if gbias is None else gbias.astype(np.float64))
    return res


def _part_of(t, i, lead):
    """Part i of a block's result tuple, with `lead` axes of one element in front."""
    v = t.reshape(-1)[0][i]
    return v.reshape((1,) * lead + v.shape)


def dense_backward(grad_output, x, weight, has_bias, activation, saved, needs_input_grad,
                   params):
    """mlkern.layers.dense_backward with a dask argument: one task per chunk
    of the leading (batch) axes gives grad_x's chunk and float64 partial sums
    of grad_weight and grad_bias, added across chunks."""
    from . import layers
    x = _like(x, None)
    nd = x.ndim
    if nd == 1:
        gx, gw, gb = dense_backward(_like(grad_output, None)[None], x[None], weight, has_bias,
                                    activation, None if saved is None else _like(saved, None)[None],
                                    needs_input_grad, params)
        return (None if gx is None else gx[0]), gw, gb
    wz = _zeros_like_meta(weight)
    if wz.ndim != 2:
        raise ValueError(f"dense_backward: weight must be 2-D (out_features, in_features), got "
                         f"shape {wz.shape}")
    N, K = wz.shape
    shape = x.shape[:-1] + (N,)
    if tuple(np.shape(grad_output)) != shape:
        raise ValueError(f"dense_backward: grad_output must have shape {shape} (x.shape[:-1] + "
                         f"(out_features,)), got {tuple(np.shape(grad_output))}")
    if saved is not None and tuple(np.shape(saved)) != shape:
        raise ValueError(f"dense_backward: saved must have the shape of grad_output {shape}, "
                         f"got {tuple(np.shape(saved))}")
    # the eager call's checks (dtypes, activation, saved required) on one row
    one = (1,) * (nd - 1)
    gdt = grad_output.dtype if any_dask(grad_output) else np.asarray(grad_output).dtype
    sz = None if saved is None else np.zeros(one + (N,), saved.dtype if any_dask(saved)
                                             else np.asarray(saved).dtype)
    _, gw0, _ = layers.dense_backward(np.zeros(one + (N,), gdt), np.zeros(one + (K,), x.dtype),
                                      wz, has_bias=has_bias, activation=activation, saved=sz,
                                      **params)
    rdt = gw0.dtype
    _whole_axis(x, nd - 1, "dense_backward", "x")
    lead = tuple(range(nd - 1))
    gchunks = x.chunks[:-1] + ((N,),)
    g = _like(grad_output, gchunks)
    s = None if saved is None else _like(saved, gchunks)
    da = _da()
    pairs = da.blockwise(_dbwd_block, lead, x, lead + (nd - 1,), g, lead + (nd,),
                         _single(weight), (nd, nd - 1), s, None if s is None else lead + (nd,),
                         lead=nd - 1, has_bias=has_bias, act=activation, params=params,
                         need_gx=needs_input_grad, concatenate=True,
                         adjust_chunks={i: 1 for i in lead}, dtype=object,
                         meta=_meta(nd - 1, object))
    gx = None
    if needs_input_grad:
        gx = pairs.map_blocks(_part_of, i=0, lead=0, new_axis=[nd - 1], chunks=x.chunks,
                              dtype=rdt, meta=_meta(nd, rdt))
    ones = _ones(x.chunks[:-1])
    gw = pairs.map_blocks(_part_of, i=1, lead=nd - 1, new_axis=[nd - 1, nd],
                          chunks=ones + ((N,), (K,)), dtype=np.float64,
                          meta=_meta(nd + 1, np.float64)).sum(axis=lead).astype(rdt)
    gb = None
    if has_bias:
        gb = pairs.map_blocks(_part_of, i=2, lead=nd - 1, new_axis=[nd - 1],
                              chunks=ones + ((N,),), dtype=np.float64,
                              meta=_meta(nd, np.float64)).sum(axis=lead).astype(rdt)
    return gx, gw, gb


def _ebwd_block(ib, gb, V, padding_idx):
    from . import layers
    res = layers.embedding_backward(gb, ib, V, padding_idx=padding_idx).astype(np.float64)
    return res.reshape((1,) * ib.ndim + res.shape)


def embedding_backward(grad_output, indices, num_embeddings, padding_idx, out):
    """mlkern.layers.embedding_backward with a dask argument: each chunk of
    the indices scatters into a float64 (num_embeddings, D) partial; the
    partials are added (memory: one table per chunk being summed)."""
    from . import layers
    from ._validation import check_count
    _no_out(out, "embedding_backward")
    V = check_count(num_embeddings, "num_embeddings")
    idx = _like(indices, None)
    nd = idx.ndim
    gshape = tuple(np.shape(grad_output))
    if len(gshape) != nd + 1 or gshape[:-1] != idx.shape:
        raise ValueError(f"embedding_backward: grad_output must have shape indices.shape + "
                         f"(embedding_dim,) = {idx.shape + ('D',)}, got {gshape}")
    D = gshape[-1]
    gdt = grad_output.dtype if any_dask(grad_output) else np.asarray(grad_output).dtype
    rdt = layers.embedding_backward(np.zeros((0, D), gdt), np.zeros(0, idx.dtype), V,
                                    padding_idx=padding_idx).dtype
    g = _like(grad_output, idx.chunks + ((D,),))
    ind = tuple(range(nd))
    parts = _da().blockwise(_ebwd_block, ind + (nd, nd + 1), idx, ind, g, ind + (nd + 1,),
                            V=V, padding_idx=padding_idx, new_axes={nd: V}, concatenate=True,
                            adjust_chunks={i: 1 for i in ind}, dtype=np.float64,
                            meta=_meta(nd + 2, np.float64))
    return parts.sum(axis=ind).astype(rdt)


def _spatial_block(xb, *params, f, kw, pair):
    r = f(xb, *params, **kw)
    if not pair:
        return r
    res = np.empty((1,) * xb.ndim, object)
    res[(0,) * xb.ndim] = r
    return res


def spatial_layer(fname, f, x, params, kw, nsp, out):
    """A convolution, pooling or locally connected forward with a dask
    argument: one task per chunk of x's batch axis (axis 0 of a batched x),
    the channel and spatial axes in one chunk (an unbatched x in one chunk).
    ``f(x, *params, **kw)`` is the eager forward; it returns an array, or a
    pair (max pooling with ``return_indices=True``)."""
    _no_out(out, fname)
    x = _like(x, None)
    batched = x.ndim == nsp + 2
    for ax in range(1 if batched else 0, x.ndim):
        nc = len(x.chunks[ax])
        if nc > 1:
            what = "a channel or spatial axis" if batched else "an unbatched x"
            raise ValueError(f"{fname}: axis {ax} of x ({what}) is split over {nc} chunks; only the "
                             f"batch axis (0) of a batched x may be: x.rechunk({{{ax}: -1}})")
    # the eager call's checks (shapes, dtypes, parameters) on one zero image
    sample = np.zeros(((1,) + x.shape[1:]) if batched else x.shape, x.dtype)
    r = f(sample, *[None if p is None else _zeros_like_meta(p) for p in params], **kw)
    pair = isinstance(r, tuple)
    nd = x.ndim
    ind = tuple(range(nd))
    args = [x, ind]
    nxt = nd
    for p in params:
        if p is None:
            args += [None, None]
        else:
            p = _single(p)
            args += [p, tuple(range(nxt, nxt + p.ndim))]
            nxt += p.ndim
    first = r[0] if pair else r
    skip = 1 if batched else 0
    chunks = (x.chunks[0],) if batched else ()
    chunks += tuple((s,) for s in first.shape[skip:])
    da = _da()
    if not pair:
        return da.blockwise(_spatial_block, ind, *args, f=f, kw=kw, pair=False, concatenate=True,
                            adjust_chunks={i: first.shape[i] for i in range(skip, nd)},
                            dtype=first.dtype, meta=_meta(nd, first.dtype))
    pairs = da.blockwise(_spatial_block, ind, *args, f=f, kw=kw, pair=True, concatenate=True,
                         adjust_chunks={i: 1 for i in ind}, dtype=object, meta=_meta(nd, object))
    return tuple(pairs.map_blocks(_pair_part, i=i, chunks=chunks, dtype=a.dtype,
                                  meta=_meta(nd, a.dtype)) for i, a in enumerate(r))
