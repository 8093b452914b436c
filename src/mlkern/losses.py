"""Losses (SPEC.md, "Losses"): the cross-entropy family, nll_loss, the
pointwise losses (mse, rmse, mae, l1_loss, l2_loss, quadratic_cost, huber,
binary_cross_entropy, binary_cross_entropy_with_logits), kl_div, and the
l1/l2 penalties -- each with ``_grad`` and (the losses) ``_with_grad``.

``cross_entropy_with_grad`` with integer labels is one fused kernel per row
(``_c/mlk_loss_tmpl.h``): the max, the exponentials and their sum, the loss
and the gradient ``softmax - target`` scaled, reading the logits once from
memory and writing the gradient once.  It allocates nothing the size of the
logits besides the gradient, which may be the logits' own buffer
(``out=logits``).  Per-row losses are summed in a fixed order, so the loss
does not depend on the thread count.

Probability targets (a float ``target`` of the logits' shape) go through
the row-wise kernels (``log_softmax``) and NumPy, unfused.

The pointwise losses are one kernel (``mlk_ploss`` in the same C file):
loss, per-element loss and scaled gradient in one pass over pred and
target, the sum taken per block of 2048 elements at fixed positions and
the blocks added in order here, so the loss does not depend on the thread
count.  ``kl_div`` has its own row kernel (``mlk_kl``).  ``nll_loss`` is a
gather and a scatter, in NumPy.
"""
import math
import operator

import numpy as np

from . import _elementwise as _ew
from ._validation import (_as_layout, as_float_array, check_out, check_real, compute_dtype,
                          finish, flat, result_array)
from .rowwise import check_axis, log_softmax, softmax

__all__ = [
    "cross_entropy", "cross_entropy_grad", "cross_entropy_with_grad",
    "nll_loss", "nll_loss_grad", "nll_loss_with_grad",
    "mse", "mse_grad", "mse_with_grad",
    "rmse", "rmse_grad", "rmse_with_grad",
    "mae", "mae_grad", "mae_with_grad",
    "l1_loss", "l1_loss_grad", "l1_loss_with_grad",
    "l2_loss", "l2_loss_grad", "l2_loss_with_grad",
    "quadratic_cost", "quadratic_cost_grad", "quadratic_cost_with_grad",
    "huber", "huber_grad", "huber_with_grad",
    "binary_cross_entropy", "binary_cross_entropy_grad", "binary_cross_entropy_with_grad",
    "binary_cross_entropy_with_logits", "binary_cross_entropy_with_logits_grad",
    "binary_cross_entropy_with_logits_with_grad",
    "kl_div", "kl_div_grad", "kl_div_with_grad",
    "l1_penalty", "l1_penalty_grad", "l2_penalty", "l2_penalty_grad",
]

_REDUCTIONS = ("mean", "sum", "none")


def _check_reduction(reduction, fname):
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{fname}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _ignore_index(ignore_index, fname):
    v = operator.index(ignore_index)
    if not -2**63 <= v < 2**63:
        raise ValueError(f"{fname}: ignore_index must fit in int64, got {v}")
    return v


def _labels(target, shape, n, ignore_index, fname):
    lab = np.asarray(target)
    if lab.dtype.kind not in "iu":
        raise TypeError(f"{fname}: integer class labels expected for target, got dtype {lab.dtype}")
    if lab.shape != shape:
        raise ValueError(f"{fname}: target must have the logits' shape without the class axis, "
                         f"{shape}, got {lab.shape}")
    if lab.dtype.kind == "u" and lab.size and lab.max() > np.iinfo(np.int64).max:
        bad = int(np.flatnonzero(lab > np.iinfo(np.int64).max)[0])
        raise ValueError(f"{fname}: target label {lab.flat[bad]} at index "
                         f"{np.unravel_index(bad, shape)} is outside [0, {n})")
    lab = np.require(lab, np.int64, ["C", "A"])      # aligned too: the kernel reads it
    bad_mask = ((lab < 0) | (lab >= n)) & (lab != ignore_index)
    if bad_mask.any():
        bad = int(np.flatnonzero(bad_mask)[0])
        raise ValueError(f"{fname}: target label {lab.flat[bad]} at index "
                         f"{np.unravel_index(bad, shape)} is outside [0, {n}) and is not "
                         f"ignore_index ({ignore_index})")
    return lab


def _weights(weight, n, dtype, fname):
    if weight is None:
        return None
    w = np.asarray(weight)
    if w.dtype.kind not in "biuf":
        raise TypeError(f"{fname}: weight must be real, got dtype {w.dtype}")
    if w.shape != (n,):
        raise ValueError(f"{fname}: weight must have shape ({n},) (one per class), got {w.shape}")
    return np.require(w, dtype, ["C", "A"])           # aligned too: the kernel reads it


def _sample_weight(sample_weight, shape, fname):
    if sample_weight is None:
        return None
    sw = np.asarray(sample_weight)
    if sw.dtype.kind not in "biuf":
        raise TypeError(f"{fname}: sample_weight must be real, got dtype {sw.dtype}")
    if sw.shape != shape:
        raise ValueError(f"{fname}: sample_weight must have the target's shape {shape}, got {sw.shape}")
    return sw.astype(np.float64).reshape(-1)


def _prepare(logits, target, axis, reduction, weight, ignore_index, label_smoothing,
             sample_weight, fname):
    z, rdt = as_float_array(logits, "logits")
    ax = check_axis(axis, z.ndim, fname)
    _check_reduction(reduction, fname)
    eps = check_real(label_smoothing, "label_smoothing", nonnegative=True)
    if eps > 1:
        raise ValueError(f"{fname}: label_smoothing must be in [0, 1], got {label_smoothing!r}")
    ignore_index = _ignore_index(ignore_index, fname)
    n = z.shape[ax]
    return z, rdt, ax, n, eps, ignore_index


def _coefficients(lab, n, w, sw, eps, ignore_index, reduction):
    """(a, b, c) per sample (see mlk_loss_tmpl.h), as a (rows, 3) array, or
    one (3,) triple for every sample when there are neither sample nor
    class weights (then nothing rows-sized is allocated here)."""
    if w is None and sw is None:
        denom = float(np.count_nonzero(lab != ignore_index)) if reduction == "mean" else 1.0
        with np.errstate(divide="ignore", invalid="ignore"):
            s = np.float64(1.0) / np.float64(denom)
        return _ew.xent_coef(float(s), 1.0, 1.0, eps, n), denom
    valid = lab != ignore_index
    safe = np.where(valid, lab, 0)
    wy = w.astype(np.float64)[safe] if w is not None else np.ones(lab.shape, np.float64)
    s = np.where(valid, 1.0, 0.0) if sw is None else np.where(valid, sw, 0.0)
    denom = float(np.sum(s * wy))
    if reduction == "mean":
        with np.errstate(divide="ignore", invalid="ignore"):
            s = s / denom
    W = float(np.sum(w, dtype=np.float64)) if w is not None else float(n)
    coef = _ew.xent_coef(s, wy, W / n, eps, n)
    coef[~valid] = 0.0
    return coef, denom


def _xent(fname, logits, target, axis, reduction, weight, ignore_index, label_smoothing,
          sample_weight, want_loss, want_grad, out):
    # the common case (C-contiguous float logits, classes last, int64 labels,
    # no weights, out= None or a direct C-contiguous array) is checked and run
    # in one C call: a few us less
    # per call for small batches; anything else takes the full path below
    if (weight is None and sample_weight is None
            and (reduction == "mean" or reduction == "sum") and type(reduction) is str
            and type(ignore_index) is int and -2**63 <= ignore_index < 2**63
            and type(label_smoothing) in (float, int) and 0 <= label_smoothing <= 1):
        r = _ew.xent_fast(logits, target, axis, ignore_index, float(label_smoothing),
                          reduction == "mean", want_grad, out)
        if r is not None:
            loss, g = r
            res_loss = logits.dtype.type(np.sum(loss))    # pairwise, as the full path
            if want_loss and want_grad:
                return res_loss, g
            return res_loss if want_loss else g
    z, rdt, ax, n, eps, ignore_index = _prepare(logits, target, axis, reduction, weight,
                                                ignore_index, label_smoothing, sample_weight,
                                                fname)
    tgt = np.asarray(target)
    if tgt.dtype.kind == "f" and tgt.shape == z.shape:
        return _xent_probs(fname, z, rdt, tgt, ax, n, reduction, weight, eps, sample_weight,
                           want_loss, want_grad, out)
    rshape = z.shape[:ax] + z.shape[ax + 1:]
    lab = _labels(target, rshape, n, ignore_index, fname)
    w = _weights(weight, n, z.dtype, fname)
    sw = _sample_weight(sample_weight, rshape, fname)
    if out is not None:
        check_out(out, z.shape, rdt)
    if n == 0:
        raise ValueError(f"{fname}: the class axis is empty")
    last = ax == z.ndim - 1
    zc = z if (last and z.flags.c_contiguous) else np.ascontiguousarray(np.moveaxis(z, ax, -1))
    rows = lab.size
    with np.errstate(all="ignore"):    # a mean over nothing: 0/0, reported as NaN below
        coef, denom = _coefficients(lab.reshape(-1), n, w, sw, eps, ignore_index, reduction)
    g = None
    if want_grad:
        if (out is not None and last and out.dtype == zc.dtype and out.flags.c_contiguous
                and out.flags.aligned and out.dtype.isnative
                and (out.ctypes.data == zc.ctypes.data or not np.may_share_memory(out, zc))):
            g = out
        else:
            g = np.empty(zc.shape, zc.dtype)
    loss = np.empty(rows, np.float64)
    _ew.xent_raw(zc, lab.reshape(-1), coef, ignore_index, w, g, loss, rows, n)
    res_loss = None
    if want_loss:
        if reduction == "none":
            res_loss = loss.reshape(rshape).astype(rdt)
        elif reduction == "mean" and not denom:
            res_loss = rdt.type(np.nan)       # nothing counted (all ignored): 0/0, as PyTorch
        elif rows == 0:
            res_loss = rdt.type(0.0)
        else:
            res_loss = rdt.type(np.sum(loss))   # pairwise, in a fixed order
    res_grad = None
    if want_grad:
        if not last:
            g = np.moveaxis(g, -1, ax)
        if out is not None:
            if g is not out:
                np.copyto(out, g, casting="unsafe")
            res_grad = out
        else:
            res_grad = g if g.dtype == rdt else g.astype(rdt)
    if want_loss and want_grad:
        return res_loss, res_grad
    return res_loss if want_loss else res_grad


def _xent_probs(fname, z, rdt, t, ax, n, reduction, weight, eps, sample_weight, want_loss,
                want_grad, out):
    """Probability targets: loss = -sum_j w_j t'_j log_softmax(z)_j with
    t' = (1 - eps) t + eps/n; grad = (sum_j w_j t'_j) softmax(z) - w t'."""
    rshape = z.shape[:ax] + z.shape[ax + 1:]
    if t.dtype.kind not in "biuf":
        raise TypeError(f"{fname}: target must be real")
    if out is not None:
        check_out(out, z.shape, rdt)
    if n == 0:                       # as for class labels (and eps / n is undefined)
        raise ValueError(f"{fname}: the class axis is empty")
    tt = t.astype(z.dtype, copy=False)
    if eps:
        tt = (1.0 - eps) * tt + eps / n
    w = _weights(weight, n, z.dtype, fname)
    shape_w = [1] * z.ndim
    shape_w[ax] = n
    wt = tt * w.reshape(shape_w) if w is not None else tt
    sw = _sample_weight(sample_weight, rshape, fname)
    s = np.ones(rshape, np.float64) if sw is None else sw.reshape(rshape)
    with np.errstate(divide="ignore", invalid="ignore"):   # nothing counted: NaN, as PyTorch
        scale = float(np.float64(1.0) / np.sum(s)) if reduction == "mean" else 1.0
    res_loss = res_grad = None
    if want_loss:
        per = -np.sum(wt.astype(np.float64) * log_softmax(z, axis=ax), axis=ax) * s
        if reduction == "none":
            res_loss = per.astype(rdt)
        else:
            with np.errstate(invalid="ignore"):     # 0 * inf when nothing counted: NaN
                res_loss = rdt.type(np.sum(per) * scale)
    if want_grad:
        p = softmax(z, axis=ax)
        with np.errstate(invalid="ignore"):
            coef = (np.expand_dims(s, ax) * scale)
            g = (np.sum(wt, axis=ax, keepdims=True) * p - wt) * coef
        if out is not None:
            np.copyto(out, g, casting="unsafe")
            res_grad = out
        else:
            res_grad = g.astype(rdt)
    if want_loss and want_grad:
        return res_loss, res_grad
    return res_loss if want_loss else res_grad


_DOC_ARGS = """
    Parameters
    ----------
    logits : array_like
        Unnormalised scores, classes along ``axis``.
    target : array_like
        Integer class labels with the logits' shape without ``axis``, or
        probabilities with the logits' shape.
    axis : int, optional
        The class axis (default -1).
    reduction : {"mean", "sum", "none"}
        "mean" divides by the summed weights of the samples that are not
        ``ignore_index`` (as PyTorch); "none" gives one loss per sample.
    weight : array_like, optional
        One weight per class.
    ignore_index : int, optional
        Label whose samples count for nothing (default -100).
    label_smoothing : float, optional
        eps in [0, 1]: the target is (1 - eps) onehot + eps/n (PyTorch's).
    sample_weight : array_like, optional
        One weight per sample (the target's shape); it multiplies the class
        weight.
"""


def cross_entropy(logits, target, axis=-1, *, reduction="mean", weight=None, ignore_index=-100,
                  label_smoothing=0.0, sample_weight=None):
    """Cross-entropy from logits: ``-sum_i t_i log softmax(z)_i``.

    {args}
    Returns
    -------
    scalar of the logits' float dtype, or an array for ``reduction="none"``

    Notes
    -----
    Formula: ``-sum t log softmax(z)``; gradient ``softmax(z) - t``.

    Integer labels: ``lse(z) - z_y`` per sample, lse in the log1p form, so
    a confident right answer keeps a tiny, accurate loss.

    Examples
    --------
    >>> import mlkern
    >>> float(mlkern.cross_entropy([[0.0, 0.0]], [1]))
    0.6931471805599453
    """
    return _xent("cross_entropy", logits, target, axis, reduction, weight, ignore_index,
                 label_smoothing, sample_weight, True, False, None)


def cross_entropy_grad(logits, target, axis=-1, *, reduction="mean", weight=None,
                       ignore_index=-100, label_smoothing=0.0, sample_weight=None, out=None):
    """Gradient of :func:`cross_entropy` with respect to the logits: ``softmax(z) - target``.

    Weighted and scaled like the loss.

    {args}    out : ndarray, optional
        The gradient's array (the logits' shape and dtype); may be the
        logits themselves.

    Returns
    -------
    grad : ndarray
        The logits' shape and float dtype (``out`` if given).

    Notes
    -----
    Formula: ``s (softmax(z) - onehot(y))`` per sample, ``s`` the sample
    weight divided by the mean's denominator (1 for ``"sum"`` and ``"none"``;
    ``"none"`` gives the gradient of the sum of the per-sample losses).  With
    class weights ``w`` and label smoothing ``eps`` (PyTorch's definition) it
    is ``a softmax(z) - b onehot(y) - c w`` with ``a = s ((1 - eps) w_y +
    eps W/n)``, ``b = s (1 - eps) w_y``, ``c = s eps/n``, ``W = sum w``.

    Integer labels: one fused kernel per row takes the max ``m``, stores the
    exponentials ``e^{z_j - m}`` in the gradient row while summing them in
    float64, then scales them by one reciprocal of the sum and subtracts
    ``b`` at the label: no exponential overflows and the logits are read
    once from memory.  Samples labelled ``ignore_index`` get a zero
    gradient; a row whose max is not finite gets NaN.  Probability targets
    ``t``: ``(sum_j w_j t'_j) softmax(z) - w t'``, ``t' = (1 - eps) t +
    eps/n``, through :func:`softmax` and NumPy (unfused).

    Examples
    --------
    >>> import mlkern
    >>> mlkern.cross_entropy_grad([[0.0, 0.0]], [1]).tolist()
    [[0.5, -0.5]]
    """
    return _xent("cross_entropy_grad", logits, target, axis, reduction, weight, ignore_index,
                 label_smoothing, sample_weight, False, True, out)


def cross_entropy_with_grad(logits, target, axis=-1, *, reduction="mean", weight=None,
                            ignore_index=-100, label_smoothing=0.0, sample_weight=None, out=None):
    """``(cross_entropy, cross_entropy_grad)`` from one fused pass.

    {args}    out : ndarray, optional
        The gradient's array; ``out=logits`` overwrites the logits with the
        gradient and allocates nothing of their size.

    Returns
    -------
    loss : scalar or ndarray
        A NumPy scalar of ``logits``'s float dtype (an array for ``reduction="none"``),
        as :func:`cross_entropy` returns it.
    grad : ndarray
        As :func:`cross_entropy_grad`.

    Notes
    -----
    Formula: loss ``-sum t log softmax(z)``, gradient ``softmax(z) - t``
    (weighted and scaled as in :func:`cross_entropy_grad`).  With integer
    labels both come from the one kernel pass of :func:`cross_entropy_grad`:
    the row's loss is ``(m - z_y) + log1p(R)``, ``R`` the sum of the
    exponentials of the non-maximal logits, from the same exponentials as the
    gradient.  Per-row losses are summed in a fixed order, so the loss does
    not depend on the thread count.

    Examples
    --------
    >>> import mlkern
    >>> loss, g = mlkern.cross_entropy_with_grad([[0.0, 0.0]], [0])
    >>> float(loss), g.tolist()
    (0.6931471805599453, [[-0.5, 0.5]])
    """
    return _xent("cross_entropy_with_grad", logits, target, axis, reduction, weight,
                 ignore_index, label_smoothing, sample_weight, True, True, out)


for _f in (cross_entropy, cross_entropy_grad, cross_entropy_with_grad):
    _f.__doc__ = _f.__doc__.replace("    {args}", _DOC_ARGS.strip("\n") + "\n")
del _f


# ---------------------------------------------------------------------------
# nll_loss: a gather (loss) and a scatter (gradient) along the class axis
# ---------------------------------------------------------------------------

def _nll(fname, log_probs, target, axis, reduction, weight, ignore_index, sample_weight,
         want_loss, want_grad, out):
    lp, rdt = as_float_array(log_probs, "log_probs")
    ax = check_axis(axis, lp.ndim, fname)
    _check_reduction(reduction, fname)
    ignore_index = _ignore_index(ignore_index, fname)
    n = lp.shape[ax]
    rshape = lp.shape[:ax] + lp.shape[ax + 1:]
    lab = _labels(target, rshape, n, ignore_index, fname)
    w = _weights(weight, n, np.float64, fname)
    sw = _sample_weight(sample_weight, rshape, fname)
    if out is not None:
        check_out(out, lp.shape, rdt)
    if n == 0:
        raise ValueError(f"{fname}: the class axis is empty")
    valid = lab != ignore_index
    safe = np.where(valid, lab, 0)
    s = valid.astype(np.float64)
    if w is not None:
        s *= w[safe]
    if sw is not None:
        s *= sw.reshape(rshape)
    denom = float(np.sum(s))
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = float(np.float64(1.0) / np.float64(denom)) if reduction == "mean" else 1.0
    lpm = np.moveaxis(lp, ax, -1)
    res_loss = res_grad = None
    if want_loss:
        picked = np.take_along_axis(lpm, safe[..., None], -1)[..., 0].astype(np.float64)
        per = np.where(s != 0, -(s * picked), 0.0)        # ignored samples: 0, never NaN
        if reduction == "none":
            res_loss = per.astype(rdt)
        elif reduction == "mean" and not denom:
            res_loss = rdt.type(np.nan)                   # nothing counted: 0/0, as PyTorch
        else:
            res_loss = rdt.type(np.sum(per) * scale)
    if want_grad:
        g = out if out is not None else np.empty(lp.shape, rdt)
        g[...] = 0
        with np.errstate(invalid="ignore"):
            vals = np.where(s != 0, -(s * scale), 0.0).astype(rdt)
        np.put_along_axis(np.moveaxis(g, ax, -1), safe[..., None], vals[..., None], -1)
        res_grad = g
    if want_loss and want_grad:
        return res_loss, res_grad
    return res_loss if want_loss else res_grad


_NLL_ARGS = """
    Parameters
    ----------
    log_probs : array_like
        Log-probabilities, classes along ``axis`` (e.g. ``log_softmax``).
    target : array_like of int
        Class labels, the shape of ``log_probs`` without ``axis``.
    axis : int, optional
        The class axis (default -1; PyTorch's is 1).
    reduction : {"mean", "sum", "none"}
        "mean" divides by the summed weights ``weight[y] * sample_weight`` of
        the samples that are not ``ignore_index`` (NaN if that is 0, as
        PyTorch); "none" gives one loss per sample.
    weight : array_like, optional
        One weight per class.
    ignore_index : int, optional
        Label whose samples count for nothing (default -100).
    sample_weight : array_like, optional
        One weight per sample (the target's shape).
"""


def nll_loss(log_probs, target, axis=-1, *, reduction="mean", weight=None, ignore_index=-100,
             sample_weight=None):
    """Negative log-likelihood: ``-weight[y] * log_probs[y]`` per sample.

    {args}
    Returns
    -------
    scalar of the input's float dtype, or an array for ``reduction="none"``

    Notes
    -----
    Formula: ``-w_y log_probs[y]``; gradient ``-w_y at the label``.

    Derivative: ``-weight[y]`` (scaled by the reduction) at the label,
    0 elsewhere.  Labels are checked before anything is read: one outside
    ``[0, n_classes)`` that is not ``ignore_index`` raises ``ValueError``.

    Examples
    --------
    >>> import numpy as np, mlkern
    >>> float(mlkern.nll_loss(np.log([[0.25, 0.75]]), [1]))
    0.2876820724517809
    """
    return _nll("nll_loss", log_probs, target, axis, reduction, weight, ignore_index,
                sample_weight, True, False, None)


def nll_loss_grad(log_probs, target, axis=-1, *, reduction="mean", weight=None,
                  ignore_index=-100, sample_weight=None, out=None):
    """Gradient of :func:`nll_loss` with respect to ``log_probs``.

    ``-weight[y]`` times the reduction's scale at the label, 0 elsewhere.

    {args}    out : ndarray, optional
        The gradient's array (the shape and dtype of ``log_probs``).

    Returns
    -------
    grad : ndarray
        The shape and float dtype of ``log_probs`` (``out`` if given).

    Notes
    -----
    Formula: ``d loss / d log_probs[i, j] = -s_i w_{y_i}`` at ``j = y_i`` and 0
    elsewhere, ``s_i`` the sample weight (1 without), divided for ``"mean"`` by
    the sum of ``w_y s`` over the counted samples.  A scatter in NumPy: the
    gradient does not depend on the values of ``log_probs`` and is exact.
    Samples labelled ``ignore_index`` get 0.

    Examples
    --------
    >>> import mlkern
    >>> mlkern.nll_loss_grad([[-1.0, -2.0], [-3.0, -4.0]], [1, 0]).tolist()
    [[0.0, -0.5], [-0.5, 0.0]]
    """
    return _nll("nll_loss_grad", log_probs, target, axis, reduction, weight, ignore_index,
                sample_weight, False, True, out)


def nll_loss_with_grad(log_probs, target, axis=-1, *, reduction="mean", weight=None,
                       ignore_index=-100, sample_weight=None, out=None):
    """``(nll_loss, nll_loss_grad)`` from one call.

    {args}    out : ndarray, optional
        The gradient's array.

    Returns
    -------
    loss : scalar or ndarray
        A NumPy scalar of ``log_probs``'s float dtype (an array for ``reduction="none"``),
        as :func:`nll_loss` returns it.
    grad : ndarray
        As :func:`nll_loss_grad`.

    Notes
    -----
    Formula: loss ``-w_y log_probs[y]`` per sample, gradient ``-w_y`` at the
    label (scaled by the reduction): a gather and a scatter along the class
    axis, in NumPy, sharing the label checks and the weights.

    Examples
    --------
    >>> import mlkern
    >>> loss, g = mlkern.nll_loss_with_grad([[-1.0, -2.0]], [1], reduction="sum")
    >>> float(loss), g.tolist()
    (2.0, [[0.0, -1.0]])
    """
    return _nll("nll_loss_with_grad", log_probs, target, axis, reduction, weight, ignore_index,
                sample_weight, True, True, out)


for _f in (nll_loss, nll_loss_grad, nll_loss_with_grad):
    _f.__doc__ = _f.__doc__.replace("    {args}", _NLL_ARGS.strip("\n") + "\n")
del _f


# ---------------------------------------------------------------------------
# pointwise losses: one fused kernel (mlk_ploss)
# ---------------------------------------------------------------------------

# op codes (mlk_kernels.h, MLK_L_*) and their cost for the thread threshold
_SQ, _ABS, _HUBER, _BCE, _BCEL, _SQ0, _ABS0 = range(7)
_COST = {_SQ: 1, _ABS: 1, _HUBER: 1, _BCE: 8, _BCEL: 4, _SQ0: 1, _ABS0: 1}


def _pair(pred, target, names, fname, order):
    """pred and target as arrays of pred's compute dtype, one memory order
    ("C", or "K": F when both are F), each copied at most once."""
    p = np.asarray(pred)
    t = np.asarray(target)
    cdt, rdt = compute_dtype(p.dtype, names[0])
    compute_dtype(t.dtype, names[1])                    # TypeError for complex, object...
    if p.shape != t.shape:
        raise ValueError(f"{fname}: {names[0]} and {names[1]} must have the same shape, got "
                         f"{p.shape} and {t.shape}")
    if order == "K":
        both_f = (p.flags.f_contiguous and t.flags.f_contiguous
                  and not (p.flags.c_contiguous and t.flags.c_contiguous))
        order = "F" if both_f else "C"
    return _as_layout(p, cdt, order), _as_layout(t, cdt, order), rdt


def _row_weights(sample_weight, shape, fname):
    """sample_weight as float64 (shape[0],): one weight per index of the
    leading axis, broadcast over the rest."""
    sw = np.asarray(sample_weight)
    if sw.dtype.kind not in "biuf":
        raise TypeError(f"{fname}: sample_weight must be real, got dtype {sw.dtype}")
    if len(shape) == 0:
        raise ValueError(f"{fname}: sample_weight needs an input with a leading axis (got a 0-d input)")
    if sw.shape != (shape[0],):
        raise ValueError(f"{fname}: sample_weight must have shape ({shape[0]},) (one weight per "
                         f"index of the leading axis), got {sw.shape}")
    return np.require(sw, np.float64, ["C", "A"])     # aligned too: the kernel reads it


def _pos_weight(pos_weight, shape, cdt, rows, fname):
    """(scalar, array, P, prs): pos_weight as a scalar, or as an array read
    with period P along the kernel's rows (row stride prs); rows: the
    kernel runs over rows of prod(shape[1:]) (sample weights), else over
    the whole array as one row."""
    pw = np.asarray(pos_weight)
    if pw.dtype.kind not in "biuf":
        raise TypeError(f"{fname}: pos_weight must be real, got dtype {pw.dtype}")
    try:
        ok = np.broadcast_shapes(pw.shape, shape) == tuple(shape)
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"{fname}: pos_weight of shape {pw.shape} does not broadcast to the "
                         f"logits' shape {tuple(shape)}")
    if pw.size == 1:
        return float(pw.reshape(())), None, 1, 0
    full = (1,) * (len(shape) - pw.ndim) + pw.shape
    j = next(i for i, d in enumerate(full) if d != 1)
    if full[j:] == tuple(shape[j:]) and (j >= 1 or not rows):
        # varies over trailing axes only: one period of prod(shape[j:])
        return 1.0, np.require(pw.reshape(shape[j:]), cdt, ["C", "A"]).reshape(-1), \
            int(np.prod(shape[j:], dtype=np.int64)), 0
    # anything else, with sample weights: the whole array, row by row
    arr = np.require(np.broadcast_to(pw, shape), cdt, ["C", "A"]).reshape(-1)
    if rows:
        K = int(np.prod(shape[1:], dtype=np.int64))
        return 1.0, arr, K, K
    return 1.0, arr, arr.size, 0


def _pointwise(fname, op, pred, target, reduction, sample_weight, want_loss, want_grad, out,
               names=("pred", "target"), delta=1.0, pos_weight=None, lscale=1.0, gmul=1.0,
               rmse=False):
    """The pointwise losses' one driver: checks, then one kernel pass.
    lscale multiplies each element's loss, gmul the gradient (1/2 of
    quadratic_cost); rmse=True takes the root of the mean."""
    # the common case (C-contiguous float arrays of one dtype and shape, no
    # weights but a scalar pos_weight, out= None or direct) is checked in one C
    # call, with the same kernel and the same arithmetic as below
    if (sample_weight is None and not rmse
            and (reduction == "mean" or reduction == "sum") and type(reduction) is str
            and (pos_weight is None or type(pos_weight) is float or type(pos_weight) is int)):
        r = _ew.ploss_fast(op, pred, target, reduction == "mean", want_grad,
                           1.0 if pos_weight is None else float(pos_weight), delta, lscale,
                           gmul, _COST[op], out)
        if r is not None:
            v, g = r
            res_loss = pred.dtype.type(v)
            if want_loss and want_grad:
                return res_loss, g
            return res_loss if want_loss else g
    _check_reduction(reduction, fname)
    structured = sample_weight is not None or (pos_weight is not None
                                               and np.size(pos_weight) != 1)
    p, t, rdt = _pair(pred, target, names, fname, "C" if structured else "K")
    shape = p.shape
    sw = _row_weights(sample_weight, shape, fname) if sample_weight is not None else None
    pws, pwa, P, prs = 1.0, None, 1, 0
    if pos_weight is not None:
        pws, pwa, P, prs = _pos_weight(pos_weight, shape, p.dtype, sw is not None, fname)
    if out is not None:
        check_out(out, shape, rdt)
    n = p.size
    # the kernel's rows: one per index of the leading axis with sample
    # weights, else the whole array is one row
    K = int(np.prod(shape[1:], dtype=np.int64)) if sw is not None else max(n, 1)
    if reduction == "mean":
        denom = (float(np.sum(sw)) * K) if sw is not None else float(n)
    else:
        denom = 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        gscale = float(np.float64(gmul) / np.float64(denom))
    g = result_array(p, out, rdt, t) if want_grad else None
    lo = None
    if want_loss and reduction == "none":
        lo = np.empty_like(p, order="K")
    total = 0.0
    if n:
        root = op == _SQ and rmse
        bsum = _ew.ploss_raw(op, flat(p), flat(t), None if lo is None else flat(lo),
                             None if (g is None or root) else flat(g), sw, K, pwa, P, prs, pws,
                             delta, lscale, gscale, _COST[op])
        total = float(np.sum(bsum)) * lscale
        if root and g is not None:
            # rmse: the gradient d / (N rmse) needs the loss first: a second pass
            with np.errstate(divide="ignore", invalid="ignore"):
                r = math.sqrt(total / denom) if denom else math.nan
                gs = 0.0 if r == 0 else 0.5 / (denom * r)
            _ew.ploss_raw(op, flat(p), flat(t), None, flat(g), sw, K, None, 1, 0, 1.0, 1.0,
                          1.0, gs, _COST[op])
    res_loss = res_grad = None
    if want_loss:
        if reduction == "none":
            res_loss = finish(lo, None, rdt, lo.ndim == 0)
        else:
            with np.errstate(divide="ignore", invalid="ignore"):
                v = np.float64(total) / np.float64(denom)
                res_loss = rdt.type(np.sqrt(v) if rmse else v)
    if want_grad:
        res_grad = finish(g, out, rdt, g.ndim == 0)
    if want_loss and want_grad:
        return res_loss, res_grad
    return res_loss if want_loss else res_grad


_PW_ARGS = """
    Parameters
    ----------
    pred : array_like
        Predictions; the loss, the gradient and ``out`` have its float dtype
        (integers compute in float64, float16 in float32).
    target : array_like
        Targets, the shape of ``pred``; converted to pred's dtype.
    reduction : {"mean", "sum", "none"}
        "mean" divides by the number of elements (or by the summed sample
        weights, each element counting); "none" gives the per-element
        losses, weighted.
    sample_weight : array_like, optional
        One weight per index of the leading axis, broadcast over the rest.
"""
_OUT_G = """    out : ndarray, optional
        The gradient's array (pred's shape and dtype); may be ``pred``.
"""


def _doc(*fns, args=_PW_ARGS):
    for f in fns:
        f.__doc__ = f.__doc__.replace("    {args}", args.strip("\n") + "\n")
        f.__doc__ = f.__doc__.replace("    {out}", _OUT_G.rstrip("\n"))


def mse(pred, target, *, reduction="mean", sample_weight=None):
    """Mean squared error: ``mean((pred - target)**2)``.

    {args}
    Returns
    -------
    scalar of pred's float dtype (an array for ``reduction="none"``)

    Notes
    -----
    Formula: ``mean d^2``, ``d = pred - target``; gradient ``2d/N``.

    Derivative ``2 (pred - target) / N``.  One pass over pred and target;
    the sum is taken in float64 per block of 2048 elements and the blocks
    added in a fixed order, so the loss does not depend on the thread count.

    Examples
    --------
    >>> import mlkern
    >>> float(mlkern.mse([1.0, 2.0, 3.0], [1.0, 2.0, 5.0]))
    1.3333333333333333
    """
    return _pointwise("mse", _SQ, pred, target, reduction, sample_weight, True, False, None)


def mse_grad(pred, target, *, reduction="mean", sample_weight=None, out=None):
    """Gradient of :func:`mse` with respect to pred: ``2 (pred - target) / N``.

    {args}
    {out}

    Returns
    -------
    grad : ndarray (or NumPy scalar for 0-d input)
        The gradient with respect to ``pred``: its shape and float dtype
        (``out`` if given).

    Notes
    -----
    Formula: ``2 d``, ``d = pred - target``.

    Scaled by the reduction: ``1/N`` for ``"mean"`` (N elements; with sample
    weights ``1/(K sum w)``, K the elements per index of the leading axis,
    each element multiplied by its row's weight w), 1 for ``"sum"`` and
    ``"none"`` (``"none"``: the gradient of the sum of the weighted
    per-element losses).

    One kernel pass over pred and target (``mlk_ploss``) writes the
    gradient; the loss, when asked for, is summed in float64 per block of
    2048 elements at fixed positions and the blocks added in order, so it does
    not depend on the thread count.

    Examples
    --------
    >>> import mlkern
    >>> mlkern.mse_grad([1.0, 2.0], [0.0, 0.0]).tolist()
    [1.0, 2.0]
    """
    return _pointwise("mse_grad", _SQ, pred, target, reduction, sample_weight, False, True, out)


def mse_with_grad(pred, target, *, reduction="mean", sample_weight=None, out=None):
    """``(mse, mse_grad)`` from one fused pass.

    pred and target are read once, the gradient written once.

    {args}
    {out}

    Returns
    -------
    loss : scalar or ndarray
        A NumPy scalar of ``pred``'s float dtype (an array for ``reduction="none"``),
        as :func:`mse` returns it.
    grad : ndarray
        As :func:`mse_grad`.

    Notes
    -----
    Formula: loss ``mean d^2``, gradient ``2d/N``, ``d = pred - target``
    (scaling as in :func:`mse_grad`).

    One kernel pass over pred and target (``mlk_ploss``) writes the
    gradient; the loss, when asked for, is summed in float64 per block of
    2048 elements at fixed positions and the blocks added in order, so it does
    not depend on the thread count.

    Examples
    --------
    >>> import mlkern
    >>> loss, g = mlkern.mse_with_grad([1.0, 2.0], [0.0, 0.0])
    >>> float(loss), g.tolist()
    (2.5, [1.0, 2.0])
    """
    return _pointwise("mse_with_grad", _SQ, pred, target, reduction, sample_weight, True, True,
                      out)


def _check_rmse(reduction, fname):
    if reduction != "mean":
        raise ValueError(f"{fname}: reduction must be 'mean' (rmse is the root of a mean), "
                         f"got {reduction!r}")


def rmse(pred, target, *, reduction="mean", sample_weight=None):
    """Root mean squared error: ``sqrt(mse)``.

    {args}
    Returns
    -------
    loss : scalar or ndarray
        A NumPy scalar of the prediction's float dtype (an array for ``reduction="none"``).

    Notes
    -----
    Formula: ``sqrt mse``; gradient ``d/(N rmse), 0 where rmse = 0``.

    Derivative ``(pred - target) / (N rmse)``, 0 everywhere where rmse is 0
    (the subgradient at the minimum).  Only ``reduction="mean"`` is accepted
    (``ValueError`` otherwise).

    Examples
    --------
    >>> import mlkern
    >>> float(mlkern.rmse([3.0, 0.0], [0.0, 4.0]))
    3.5355339059327378
    """
    _check_rmse(reduction, "rmse")
    return _pointwise("rmse", _SQ, pred, target, reduction, sample_weight, True, False, None,
                      rmse=True)


def rmse_grad(pred, target, *, reduction="mean", sample_weight=None, out=None):
    """Gradient of :func:`rmse`: ``(pred - target) / (N rmse)``, 0 where rmse is 0.

    Two passes (the loss first).

    {args}
    {out}

    Returns
    -------
    grad : ndarray (or NumPy scalar for 0-d input)
        The gradient with respect to ``pred``: its shape and float dtype
        (``out`` if given).

    Notes
    -----
    Formula: ``d / (N rmse)``, ``d = pred - target`` (with sample weights
    ``w d / (K sum w rmse)``), and 0 everywhere where rmse is 0 (the
    subgradient at the minimum).  Two kernel passes: the loss first (the sum
    of ``d^2`` in float64 blocks), then the gradient.  Only
    ``reduction="mean"`` is accepted (``ValueError`` otherwise).

    Examples
    --------
    >>> import mlkern
    >>> mlkern.rmse_grad([3.0], [0.0]).tolist()
    [1.0]
    """
    _check_rmse(reduction, "rmse_grad")
    return _pointwise("rmse_grad", _SQ, pred, target, reduction, sample_weight, False, True, out,
                      rmse=True)


def rmse_with_grad(pred, target, *, reduction="mean", sample_weight=None, out=None):
    """``(rmse, rmse_grad)``: a loss pass, then the gradient pass.

    {args}
    {out}

    Returns
    -------
    loss : scalar or ndarray
        A NumPy scalar of ``pred``'s float dtype (an array for ``reduction="none"``),
        as :func:`rmse` returns it.
    grad : ndarray
        As :func:`rmse_grad`.

    Notes
    -----
    Formula: loss ``sqrt mse``, gradient ``d/(N rmse)`` (0 where rmse is 0).
    The gradient needs the loss: a loss pass, then a gradient pass, as in
    :func:`rmse_grad`.  Only ``reduction="mean"`` is accepted.

    Examples
    --------
    >>> import mlkern
    >>> loss, g = mlkern.rmse_with_grad([3.0, -4.0], [0.0, 0.0])
    >>> float(loss), g.tolist()
    (3.5355339059327378, [0.4242640687119285, -0.565685424949238])
    """
    _check_rmse(reduction, "rmse_with_grad")
    return _pointwise("rmse_with_grad", _SQ, pred, target, reduction, sample_weight, True, True,
                      out, rmse=True)


def mae(pred, target, *, reduction="mean", sample_weight=None):
    """Mean absolute error: ``mean(|pred - target|)``.

    {args}
    Returns
    -------
    loss : scalar or ndarray
        A NumPy scalar of the prediction's float dtype (an array for ``reduction="none"``).

    Notes
    -----
    Formula: ``mean |d|``, ``d = pred - target``; gradient ``sign(d) (0 at
    0)``.

    Derivative ``sign(pred - target) / N``, 0 where pred == target (as
    PyTorch's ``l1_loss``), NaN where either is NaN.

    Examples
    --------
    >>> import mlkern
    >>> float(mlkern.mae([1.0, -2.0], [0.0, 0.0]))
    1.5
    """
    return _pointwise("mae", _ABS, pred, target, reduction, sample_weight, True, False, None)


def mae_grad(pred, target, *, reduction="mean", sample_weight=None, out=None):
    """Gradient of :func:`mae`: ``sign(pred - target) / N`` (0 at 0).

    {args}
    {out}

    Returns
    -------
    grad : ndarray (or NumPy scalar for 0-d input)
        The gradient with respect to ``pred``: its shape and float dtype
        (``out`` if given).

    Notes
    -----
    Formula: ``sign(d)``, ``d = pred - target``, 0 where pred == target (as
    PyTorch's ``l1_loss``) and NaN where either is NaN.

    Scaled by the reduction: ``1/N`` for ``"mean"`` (N elements; with sample
    weights ``1/(K sum w)``, K the elements per index of the leading axis,
    each element multiplied by its row's weight w), 1 for ``"sum"`` and
    ``"none"`` (``"none"``: the gradient of the sum of the weighted
    per-element losses).

    One kernel pass over pred and target (``mlk_ploss``) writes the
    gradient; the loss, when asked for, is summed in float64 per block of
    2048 elements at fixed positions and the blocks added in order, so it does
    not depend on the thread count.

    Examples
    --------
    >>> import mlkern
    >>> mlkern.mae_grad([1.0, -2.0, 0.0], [0.0, 0.0, 0.0], reduction="sum").tolist()
    [1.0, -1.0, 0.0]
    """
    return _pointwise("mae_grad", _ABS, pred, target, reduction, sample_weight, False, True, out)


def mae_with_grad(pred, target, *, reduction="mean", sample_weight=None, out=None):
    """``(mae, mae_grad)`` from one fused pass.

    {args}
    {out}

    Returns
    -------
    loss : scalar or ndarray
        A NumPy scalar of ``pred``'s float dtype (an array for ``reduction="none"``),
        as :func:`mae` returns it.
    grad : ndarray
        As :func:`mae_grad`.

    Notes
    -----
    Formula: loss ``mean |d|``, gradient ``sign(d)/N`` (0 at 0), ``d = pred -
    target``.

    One kernel pass over pred and target (``mlk_ploss``) writes the
    gradient; the loss, when asked for, is summed in float64 per block of
    2048 elements at fixed positions and the blocks added in order, so it does
    not depend on the thread count.

    Examples
    --------
    >>> import mlkern
    >>> loss, g = mlkern.mae_with_grad([1.0, -2.0], [0.0, 0.0])
    >>> float(loss), g.tolist()
    (1.5, [0.5, -0.5])
    """
    return _pointwise("mae_with_grad", _ABS, pred, target, reduction, sample_weight, True, True,
                      out)


def l1_loss(pred, target, *, reduction="sum", sample_weight=None):
    """L1 loss: ``sum(|pred - target|)``.

    The default is ``reduction="sum"``; ``"mean"`` is :func:`mae`.

    {args}
    Returns
    -------
    loss : scalar or ndarray
        A NumPy scalar of the prediction's float dtype (an array for ``reduction="none"``).

    Notes
    -----
    Formula: ``sum |d|``, ``d = pred - target``; gradient ``sign(d) (0 at
    0)``.

    Derivative ``sign(pred - target)``, 0 at 0.

    Examples
    --------
    >>> import mlkern
    >>> float(mlkern.l1_loss([1.0, -2.0], [0.0, 0.0]))
    3.0
    """
    return _pointwise("l1_loss", _ABS, pred, target, reduction, sample_weight, True, False, None)


def l1_loss_grad(pred, target, *, reduction="sum", sample_weight=None, out=None):
    """Gradient of :func:`l1_loss`: ``sign(pred - target)`` (0 at 0).

    {args}
    {out}

    Returns
    -------
    grad : ndarray (or NumPy scalar for 0-d input)
        The gradient with respect to ``pred``: its shape and float dtype
        (``out`` if given).

    Notes
    -----
    Formula: ``sign(d)``, ``d = pred - target``, 0 where pred == target and
    NaN where either is NaN (the default reduction is ``"sum"``).

    Scaled by the reduction: ``1/N`` for ``"mean"`` (N elements; with sample
    weights ``1/(K sum w)``, K the elements per index of the leading axis,
    each element multiplied by its row's weight w), 1 for ``"sum"`` and
    ``"none"`` (``"none"``: the gradient of the sum of the weighted
    per-element losses).

    One kernel pass over pred and target (``mlk_ploss``) writes the
    gradient; the loss, when asked for, is summed in float64 per block of
    2048 elements at fixed positions and the blocks added in order, so it does
    not depend on the thread count.

    Examples
    --------
    >>> import mlkern
    >>> mlkern.l1_loss_grad([1.0, -2.0], [0.0, 0.0]).tolist()
    [1.0, -1.0]
    """
    return _pointwise("l1_loss_grad", _ABS, pred, target, reduction, sample_weight, False, True,
                      out)


def l1_loss_with_grad(pred, target, *, reduction="sum", sample_weight=None, out=None):
    """``(l1_loss, l1_loss_grad)`` from one fused pass.

    {args}
    {out}

    Returns
    -------
    loss : scalar or ndarray
        A NumPy scalar of ``pred``'s float dtype (an array for ``reduction="none"``),
        as :func:`l1_loss` returns it.
    grad : ndarray
        As :func:`l1_loss_grad`.

    Notes
    -----
    Formula: loss ``sum |d|``, gradient ``sign(d)`` (0 at 0), ``d = pred -
    target``, for the default ``reduction="sum"``.

    One kernel pass over pred and target (``mlk_ploss``) writes the
    gradient; the loss, when asked for, is summed in float64 per block of
    2048 elements at fixed positions and the blocks added in order, so it does
    not depend on the thread count.

    Examples
    --------
    >>> import mlkern
    >>> loss, g = mlkern.l1_loss_with_grad([1.0, -2.0], [0.0, 0.0])
    >>> float(loss), g.tolist()
    (3.0, [1.0, -1.0])
    """
    return _pointwise("l1_loss_with_grad", _ABS, pred, target, reduction, sample_weight, True,
                      True, out)


def l2_loss(pred, target, *, reduction="sum", sample_weight=None):
    """L2 loss: ``sum((pred - target)**2)``.

    The default is ``reduction="sum"``; ``"mean"`` is :func:`mse`.

    {args}
    Returns
    -------
    loss : scalar or ndarray
        A NumPy scalar of the prediction's float dtype (an array for ``reduction="none"``).

    Notes
    -----
    Formula: ``sum d^2``, ``d = pred - target``; gradient ``2d``.

    Derivative ``2 (pred - target)``.

    Examples
    --------
    >>> import mlkern
    >>> float(mlkern.l2_loss([1.0, -2.0], [0.0, 0.0]))
    5.0
    """
    return _pointwise("l2_loss", _SQ, pred, target, reduction, sample_weight, True, False, None)


def l2_loss_grad(pred, target, *, reduction="sum", sample_weight=None, out=None):
    """Gradient of :func:`l2_loss`: ``2 (pred - target)``.

    {args}
    {out}

    Returns
    -------
    grad : ndarray (or NumPy scalar for 0-d input)
        The gradient with respect to ``pred``: its shape and float dtype
        (``out`` if given).

    Notes
    -----
    Formula: ``2 d``, ``d = pred - target`` (the default reduction is ``"sum"``).

    Scaled by the reduction: ``1/N`` for ``"mean"`` (N elements; with sample
    weights ``1/(K sum w)``, K the elements per index of the leading axis,
    each element multiplied by its row's weight w), 1 for ``"sum"`` and
    ``"none"`` (``"none"``: the gradient of the sum of the weighted
    per-element losses).

    One kernel pass over pred and target (``mlk_ploss``) writes the
    gradient; the loss, when asked for, is summed in float64 per block of
    2048 elements at fixed positions and the blocks added in order, so it does
    not depend on the thread count.

    Examples
    --------
    >>> import mlkern
    >>> mlkern.l2_loss_grad([1.0, -2.0], [0.0, 0.0]).tolist()
    [2.0, -4.0]
    """
    return _pointwise("l2_loss_grad", _SQ, pred, target, reduction, sample_weight, False, True,
                      out)


def l2_loss_with_grad(pred, target, *, reduction="sum", sample_weight=None, out=None):
    """``(l2_loss, l2_loss_grad)`` from one fused pass.

    {args}
    {out}

    Returns
    -------
    loss : scalar or ndarray
        A NumPy scalar of ``pred``'s float dtype (an array for ``reduction="none"``),
        as :func:`l2_loss` returns it.
    grad : ndarray
        As :func:`l2_loss_grad`.

    Notes
    -----
    Formula: loss ``sum d^2``, gradient ``2d``, ``d = pred - target``, for the
    default ``reduction="sum"``.

    One kernel pass over pred and target (``mlk_ploss``) writes the
    gradient; the loss, when asked for, is summed in float64 per block of
    2048 elements at fixed positions and the blocks added in order, so it does
    not depend on the thread count.

    Examples
    --------
    >>> import mlkern
    >>> loss, g = mlkern.l2_loss_with_grad([1.0, -2.0], [0.0, 0.0])
    >>> float(loss), g.tolist()
    (5.0, [2.0, -4.0])
    """
    return _pointwise("l2_loss_with_grad", _SQ, pred, target, reduction, sample_weight, True,
                      True, out)


def quadratic_cost(pred, target, *, reduction="sum", sample_weight=None):
    """Quadratic cost: ``0.5 * sum((pred - target)**2)``.

    The default is ``reduction="sum"``.

    {args}
    Returns
    -------
    loss : scalar or ndarray
        A NumPy scalar of the prediction's float dtype (an array for ``reduction="none"``).

    Notes
    -----
    Formula: ``1/2 sum d^2``, ``d = pred - target``; gradient ``d``.

    Derivative ``pred - target``.

    Examples
    --------
    >>> import mlkern
    >>> float(mlkern.quadratic_cost([1.0, -2.0], [0.0, 0.0]))
    2.5
    """
    return _pointwise("quadratic_cost", _SQ, pred, target, reduction, sample_weight, True, False,
                      None, lscale=0.5, gmul=0.5)


def quadratic_cost_grad(pred, target, *, reduction="sum", sample_weight=None, out=None):
    """Gradient of :func:`quadratic_cost`: ``pred - target``.

    {args}
    {out}

    Returns
    -------
    grad : ndarray (or NumPy scalar for 0-d input)
        The gradient with respect to ``pred``: its shape and float dtype
        (``out`` if given).

    Notes
    -----
    Formula: ``d = pred - target`` (the kernel's ``2d`` times 1/2, exact); the
    default reduction is ``"sum"``.

    Scaled by the reduction: ``1/N`` for ``"mean"`` (N elements; with sample
    weights ``1/(K sum w)``, K the elements per index of the leading axis,
    each element multiplied by its row's weight w), 1 for ``"sum"`` and
    ``"none"`` (``"none"``: the gradient of the sum of the weighted
    per-element losses).

    One kernel pass over pred and target (``mlk_ploss``) writes the
    gradient; the loss, when asked for, is summed in float64 per block of
    2048 elements at fixed positions and the blocks added in order, so it does
    not depend on the thread count.

    Examples
    --------
    >>> import mlkern
    >>> mlkern.quadratic_cost_grad([1.0, -2.0], [0.0, 0.0]).tolist()
    [1.0, -2.0]
    """
    return _pointwise("quadratic_cost_grad", _SQ, pred, target, reduction, sample_weight, False,
                      True, out, lscale=0.5, gmul=0.5)


def quadratic_cost_with_grad(pred, target, *, reduction="sum", sample_weight=None, out=None):
    """``(quadratic_cost, quadratic_cost_grad)`` from one fused pass.

    {args}
    {out}

    Returns
    -------
    loss : scalar or ndarray
        A NumPy scalar of ``pred``'s float dtype (an array for ``reduction="none"``),
        as :func:`quadratic_cost` returns it.
    grad : ndarray
        As :func:`quadratic_cost_grad`.

    Notes
    -----
    Formula: loss ``1/2 sum d^2``, gradient ``d``, ``d = pred - target``, for
    the default ``reduction="sum"``.

    One kernel pass over pred and target (``mlk_ploss``) writes the
    gradient; the loss, when asked for, is summed in float64 per block of
    2048 elements at fixed positions and the blocks added in order, so it does
    not depend on the thread count.

    Examples
    --------
    >>> import mlkern
    >>> loss, g = mlkern.quadratic_cost_with_grad([1.0, -2.0], [0.0, 0.0])
    >>> float(loss), g.tolist()
    (2.5, [1.0, -2.0])
    """
    return _pointwise("quadratic_cost_with_grad", _SQ, pred, target, reduction, sample_weight,
                      True, True, out, lscale=0.5, gmul=0.5)


def _delta(delta, fname):
    d = check_real(delta, "delta")
    if not d > 0:
        raise ValueError(f"{fname}: delta must be > 0, got {delta!r}")
    return d


def huber(pred, target, *, delta=1.0, reduction="mean", sample_weight=None):
    """Huber loss (PyTorch's ``huber_loss``), quadratic near 0 and linear beyond ``delta``.

    ``d**2 / 2`` where ``|d| <= delta``, ``delta (|d| - delta/2)`` beyond,
    d = pred - target.

    {args}    delta : float, optional
        The switch point, > 0 (default 1).

    Returns
    -------
    loss : scalar or ndarray
        A NumPy scalar of the prediction's float dtype (an array for ``reduction="none"``).

    Notes
    -----
    Formula: ``d^2/2 for |d| <= delta, delta (|d| - delta/2) beyond``;
    gradient ``clip(d, -delta, delta)``.

    Derivative ``clip(d, -delta, delta)``.

    Examples
    --------
    >>> import mlkern
    >>> mlkern.huber([0.5, 3.0], [0.0, 0.0], reduction="none").tolist()
    [0.125, 2.5]
    """
    return _pointwise("huber", _HUBER, pred, target, reduction, sample_weight, True, False, None,
                      delta=_delta(delta, "huber"))


def huber_grad(pred, target, *, delta=1.0, reduction="mean", sample_weight=None, out=None):
    """Gradient of :func:`huber`: ``clip(pred - target, -delta, delta)``.

    Scaled by the reduction.

    {args}    delta : float, optional
        The switch point, > 0 (default 1).
    {out}

    Returns
    -------
    grad : ndarray (or NumPy scalar for 0-d input)
        The gradient with respect to ``pred``: its shape and float dtype
        (``out`` if given).

    Notes
    -----
    Formula: ``clip(d, -delta, delta)``, ``d = pred - target`` (NaN passes
    through).

    Scaled by the reduction: ``1/N`` for ``"mean"`` (N elements; with sample
    weights ``1/(K sum w)``, K the elements per index of the leading axis,
    each element multiplied by its row's weight w), 1 for ``"sum"`` and
    ``"none"`` (``"none"``: the gradient of the sum of the weighted
    per-element losses).

    One kernel pass over pred and target (``mlk_ploss``) writes the
    gradient; the loss, when asked for, is summed in float64 per block of
    2048 elements at fixed positions and the blocks added in order, so it does
    not depend on the thread count.

    Examples
    --------
    >>> import mlkern
    >>> mlkern.huber_grad([0.5, 3.0], [0.0, 0.0], reduction="sum").tolist()
    [0.5, 1.0]
    """
    return _pointwise("huber_grad", _HUBER, pred, target, reduction, sample_weight, False, True,
                      out, delta=_delta(delta, "huber_grad"))


def huber_with_grad(pred, target, *, delta=1.0, reduction="mean", sample_weight=None, out=None):
    """``(huber, huber_grad)`` from one fused pass.

    {args}    delta : float, optional
        The switch point, > 0 (default 1).
    {out}

    Returns
    -------
    loss : scalar or ndarray
        A NumPy scalar of ``pred``'s float dtype (an array for ``reduction="none"``),
        as :func:`huber` returns it.
    grad : ndarray
        As :func:`huber_grad`.

    Notes
    -----
    Formula: loss ``d^2/2`` for ``|d| <= delta``, ``delta (|d| - delta/2)``
    beyond; gradient ``clip(d, -delta, delta)``.

    One kernel pass over pred and target (``mlk_ploss``) writes the
    gradient; the loss, when asked for, is summed in float64 per block of
    2048 elements at fixed positions and the blocks added in order, so it does
    not depend on the thread count.

    Examples
    --------
    >>> import mlkern
    >>> loss, g = mlkern.huber_with_grad([0.5, 3.0], [0.0, 0.0], delta=2.0)
    >>> float(loss), g.tolist()
    (2.0625, [0.25, 1.0])
    """
    return _pointwise("huber_with_grad", _HUBER, pred, target, reduction, sample_weight, True,
                      True, out, delta=_delta(delta, "huber_with_grad"))


_BCE_NAMES = ("prob", "target")


def _probs(prob, fname):
    """prob must lie in [0, 1] (NaN passes, as NaN in -> NaN out)."""
    p = np.asarray(prob)
    # scan each distinct element once: a broadcast (stride-0) axis is read at index 0
    q = p[tuple(slice(0, 1) if st == 0 else slice(None) for st in p.strides)] if p.ndim else p
    if q.size and q.dtype.kind == "f":
        lo = np.fmin.reduce(q, axis=None)       # ignores NaN
        hi = np.fmax.reduce(q, axis=None)
        if lo < 0 or hi > 1:
            bad = lo if lo < 0 else hi
            raise ValueError(f"{fname}: prob must be in [0, 1], found {bad}")
    elif q.size and q.dtype.kind in "iu":
        if q.min() < 0 or q.max() > 1:
            raise ValueError(f"{fname}: prob must be in [0, 1], found {q.min() if q.min() < 0 else q.max()}")
    return p


def binary_cross_entropy(prob, target, *, reduction="mean", sample_weight=None):
    """Binary cross-entropy of probabilities: ``-(t log p + (1 - t) log(1 - p))``.

    Each log is clamped at -100 (as PyTorch), so p = 0 or 1 gives a finite loss.

    {args}
    Returns
    -------
    loss : scalar or ndarray
        A NumPy scalar of the prediction's float dtype (an array for ``reduction="none"``).

    Notes
    -----
    Formula: ``-(t log p + (1-t) log(1-p)), each log >= -100``; gradient
    ``(p-t)/max(p(1-p), 1e-12)``.

    ``prob`` must lie in [0, 1] (``ValueError`` otherwise).  log(1 - p) is
    taken as ``log1p(-p)``.  Derivative ``(p - t) / max(p (1 - p), 1e-12)``
    (as PyTorch).  For logits, :func:`binary_cross_entropy_with_logits` is
    the accurate form.

    Examples
    --------
    >>> import mlkern
    >>> mlkern.binary_cross_entropy([0.5, 0.0], [1.0, 1.0], reduction="none").tolist()
    [0.6931471805599453, 100.0]
    """
    return _pointwise("binary_cross_entropy", _BCE, _probs(prob, "binary_cross_entropy"), target,
                      reduction, sample_weight, True, False, None, names=_BCE_NAMES)


def binary_cross_entropy_grad(prob, target, *, reduction="mean", sample_weight=None, out=None):
    """Gradient of :func:`binary_cross_entropy` with respect to prob.

    ``(p - t) / max(p (1 - p), 1e-12)``, scaled by the reduction.

    {args}
    {out}

    Returns
    -------
    grad : ndarray (or NumPy scalar for 0-d input)
        The gradient with respect to ``prob``: its shape and float dtype
        (``out`` if given).

    Notes
    -----
    Formula: ``(p - t) / max(p (1 - p), 1e-12)`` (as PyTorch: the clamp keeps
    ``p = 0`` or ``1`` finite).  ``prob`` must lie in [0, 1] (``ValueError``
    otherwise).  For logits, :func:`binary_cross_entropy_with_logits_grad` is
    the accurate form.

    Scaled by the reduction: ``1/N`` for ``"mean"`` (N elements; with sample
    weights ``1/(K sum w)``, K the elements per index of the leading axis,
    each element multiplied by its row's weight w), 1 for ``"sum"`` and
    ``"none"`` (``"none"``: the gradient of the sum of the weighted
    per-element losses).

    One kernel pass over pred and target (``mlk_ploss``) writes the
    gradient; the loss, when asked for, is summed in float64 per block of
    2048 elements at fixed positions and the blocks added in order, so it does
    not depend on the thread count.

    Examples
    --------
    >>> import mlkern
    >>> mlkern.binary_cross_entropy_grad([0.5], [1.0]).tolist()
    [-2.0]
    """
    return _pointwise("binary_cross_entropy_grad", _BCE,
                      _probs(prob, "binary_cross_entropy_grad"), target, reduction, sample_weight,
                      False, True, out, names=_BCE_NAMES)


def binary_cross_entropy_with_grad(prob, target, *, reduction="mean", sample_weight=None,
                                   out=None):
    """``(binary_cross_entropy, binary_cross_entropy_grad)`` from one pass.

    {args}
    {out}

    Returns
    -------
    loss : scalar or ndarray
        A NumPy scalar of ``prob``'s float dtype (an array for ``reduction="none"``),
        as :func:`binary_cross_entropy` returns it.
    grad : ndarray
        As :func:`binary_cross_entropy_grad`.

    Notes
    -----
    Formula: loss ``-(t log p + (1-t) log(1-p))``, each log clamped at -100
    and ``log(1 - p)`` taken as ``log1p(-p)``; gradient ``(p - t) / max(p (1 -
    p), 1e-12)``.

    One kernel pass over pred and target (``mlk_ploss``) writes the
    gradient; the loss, when asked for, is summed in float64 per block of
    2048 elements at fixed positions and the blocks added in order, so it does
    not depend on the thread count.

    Examples
    --------
    >>> import mlkern
    >>> loss, g = mlkern.binary_cross_entropy_with_grad([0.5], [1.0])
    >>> float(loss), g.tolist()
    (0.6931471805599453, [-2.0])
    """
    return _pointwise("binary_cross_entropy_with_grad", _BCE,
                      _probs(prob, "binary_cross_entropy_with_grad"), target, reduction,
                      sample_weight, True, True, out, names=_BCE_NAMES)


_BCEL_NAMES = ("logits", "target")
_POS_W = """    pos_weight : float or array_like, optional
        Weight of the positive term, broadcast against the logits (as
        PyTorch: typically one per class along the last axis).
"""


def binary_cross_entropy_with_logits(logits, target, *, pos_weight=None, reduction="mean",
                                     sample_weight=None):
    """Binary cross-entropy from logits z: ``max(z, 0) - z t + log1p(exp(-|z|))``.

    {args}
    {pw}
    Returns
    -------
    loss : scalar or ndarray
        A NumPy scalar of the prediction's float dtype (an array for ``reduction="none"``).

    Notes
    -----
    Formula: ``max(z,0) - z t + log1p(e^{-|z|})``; gradient ``sigmoid(z) - t =
    ((1-t) a - w t b)/(1+e)`` with ``e = exp(-|z|)``, ``w`` the pos_weight and
    ``a``, ``b`` the sigmoid branches (``1`` and ``e`` or the reverse): one
    exponential and one reciprocal per element.  ``pos_weight`` broadcasts as
    in PyTorch.

    Exact in both tails (no exp overflows; ``z = 1e20, t = 1`` gives 0 and
    ``t = 0`` gives 1e20).  With pos_weight w the loss is
    ``(1 - t) z + (1 + (w - 1) t) softplus(-z)``.  Derivative
    ``sigmoid(z) - t``, computed as ``((1-t) a - w t b) / (1 + e)``
    (e = exp(-|z|), a = 1, b = e for z >= 0 and a = e, b = 1 below), so
    ``t = 1, z = 37`` gives ``-exp(-37)`` rather than 0.

    Examples
    --------
    >>> import mlkern
    >>> mlkern.binary_cross_entropy_with_logits([0.0, -40.0], [1.0, 0.0], reduction="none").tolist()
    [0.6931471805599453, 4.248354255291589e-18]
    """
    return _pointwise("binary_cross_entropy_with_logits", _BCEL, logits, target, reduction,
                      sample_weight, True, False, None, names=_BCEL_NAMES, pos_weight=pos_weight)


def binary_cross_entropy_with_logits_grad(logits, target, *, pos_weight=None, reduction="mean",
                                          sample_weight=None, out=None):
    """Gradient of :func:`binary_cross_entropy_with_logits`: ``sigmoid(z) - t``.

    With respect to the logits; with pos_weight w it is
    ``(1 - t) - (1 + (w - 1) t) sigmoid(-z)``; scaled by the reduction.

    {args}
    {pw}
    {out}

    Returns
    -------
    grad : ndarray (or NumPy scalar for 0-d input)
        The gradient with respect to ``logits``: its shape and float dtype
        (``out`` if given).

    Notes
    -----
    Formula: ``((1 - t) a - w t b) / (1 + e)`` with ``e = exp(-|z|)``, ``w``
    the pos_weight, ``a = 1, b = e`` for ``z >= 0`` and ``a = e, b = 1``
    below.  This is ``sigmoid(z) - t`` (for ``w = 1``) without
    the cancellation of ``1 - sigmoid``: one exponential that never
    overflows and one reciprocal, so ``t = 1, z = 37`` gives ``-exp(-37) /
    (1 + exp(-37))``, not 0.

    Scaled by the reduction: ``1/N`` for ``"mean"`` (N elements; with sample
    weights ``1/(K sum w)``, K the elements per index of the leading axis,
    each element multiplied by its row's weight w), 1 for ``"sum"`` and
    ``"none"`` (``"none"``: the gradient of the sum of the weighted
    per-element losses).

    One kernel pass over pred and target (``mlk_ploss``) writes the
    gradient; the loss, when asked for, is summed in float64 per block of
    2048 elements at fixed positions and the blocks added in order, so it does
    not depend on the thread count.

    Examples
    --------
    >>> import mlkern
    >>> g = mlkern.binary_cross_entropy_with_logits_grad([37.0], [1.0])
    >>> print(f"{g[0]:.12e}")      # -exp(-37)/(1 + exp(-37)), not 0
    -8.533047625744e-17
    """
    return _pointwise("binary_cross_entropy_with_logits_grad", _BCEL, logits, target, reduction,
                      sample_weight, False, True, out, names=_BCEL_NAMES, pos_weight=pos_weight)


def binary_cross_entropy_with_logits_with_grad(logits, target, *, pos_weight=None,
                                               reduction="mean", sample_weight=None, out=None):
    """``(binary_cross_entropy_with_logits, its gradient)`` from one fused pass.

    One exponential and one log1p per element.

    {args}
    {pw}
    {out}

    Returns
    -------
    loss : scalar or ndarray
        A NumPy scalar of ``logits``'s float dtype (an array for ``reduction="none"``),
        as :func:`binary_cross_entropy_with_logits` returns it.
    grad : ndarray
        As :func:`binary_cross_entropy_with_logits_grad`.

    Notes
    -----
    Formula: loss ``c |z| + L log1p(e)``, ``e = exp(-|z|)``, ``c = 1 - t`` for
    ``z >= 0`` and ``w t`` below, ``L = 1 + (w - 1) t`` (``w = 1``:
    ``max(z,0) - z t + log1p(e^{-|z|})``); gradient as in
    :func:`binary_cross_entropy_with_logits_grad`.  The reciprocal
    ``1/(1 + e)`` is shared by the log1p and the gradient.

    One kernel pass over pred and target (``mlk_ploss``) writes the
    gradient; the loss, when asked for, is summed in float64 per block of
    2048 elements at fixed positions and the blocks added in order, so it does
    not depend on the thread count.

    Examples
    --------
    >>> import mlkern
    >>> loss, g = mlkern.binary_cross_entropy_with_logits_with_grad([0.0], [1.0])
    >>> float(loss), g.tolist()
    (0.6931471805599453, [-0.5])
    """
    return _pointwise("binary_cross_entropy_with_logits_with_grad", _BCEL, logits, target,
                      reduction, sample_weight, True, True, out, names=_BCEL_NAMES,
                      pos_weight=pos_weight)


_doc(binary_cross_entropy, binary_cross_entropy_grad, binary_cross_entropy_with_grad,
     binary_cross_entropy_with_logits, binary_cross_entropy_with_logits_grad,
     binary_cross_entropy_with_logits_with_grad)
for _f in (binary_cross_entropy_with_logits, binary_cross_entropy_with_logits_grad,
           binary_cross_entropy_with_logits_with_grad):
    _f.__doc__ = (_f.__doc__.replace("    {pw}", _POS_W.rstrip("\n"))
                  .replace("pred : array_like\n        Predictions;", "logits : array_like\n        Logits;")
                  .replace("``pred``", "``logits``"))
for _f in (binary_cross_entropy, binary_cross_entropy_grad, binary_cross_entropy_with_grad):
    _f.__doc__ = _f.__doc__.replace("pred : array_like\n        Predictions;",
                                    "prob : array_like\n        Probabilities in [0, 1];")
del _f
_doc(mse, mse_grad, mse_with_grad, rmse, rmse_grad, rmse_with_grad, mae, mae_grad, mae_with_grad,
     l1_loss, l1_loss_grad, l1_loss_with_grad, l2_loss, l2_loss_grad, l2_loss_with_grad,
     quadratic_cost, quadratic_cost_grad, quadratic_cost_with_grad, huber, huber_grad,
     huber_with_grad)


# ---------------------------------------------------------------------------
# kl_div: a row kernel (mlk_kl) along the axis
# ---------------------------------------------------------------------------

def _kl(fname, p, q, axis, log_q, reduction, sample_weight, want_loss, want_grad, out):
    _check_reduction(reduction, fname)
    qa, pa, rdt = _pair(q, p, ("q", "p"), fname, "C")
    ax = check_axis(axis, qa.ndim, fname)
    n = qa.shape[ax]
    rshape = qa.shape[:ax] + qa.shape[ax + 1:]
    sw = None
    if sample_weight is not None:
        s = np.asarray(sample_weight)
        if s.dtype.kind not in "biuf":
            raise TypeError(f"{fname}: sample_weight must be real, got dtype {s.dtype}")
        if s.shape == rshape:
            sw = s.astype(np.float64)
        elif s.ndim == 1 and len(rshape) >= 1 and s.shape[0] == rshape[0]:
            sw = np.broadcast_to(s.astype(np.float64).reshape((-1,) + (1,) * (len(rshape) - 1)),
                                 rshape)
        else:
            raise ValueError(f"{fname}: sample_weight must have shape {rshape} (one weight per "
                             f"row) or ({rshape[0] if rshape else 1},), got {s.shape}")
        sw = np.require(sw, np.float64, ["C", "A"]).reshape(-1)
    if out is not None:
        check_out(out, qa.shape, rdt)
    last = ax == qa.ndim - 1
    if not last:
        qa = np.ascontiguousarray(np.moveaxis(qa, ax, -1))
        pa = np.ascontiguousarray(np.moveaxis(pa, ax, -1))
    rows = qa.size // n if n else int(np.prod(rshape, dtype=np.int64))
    if reduction == "mean":
        denom = float(np.sum(sw)) if sw is not None else float(rows)
    else:
        denom = 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        gscale = float(np.float64(1.0) / np.float64(denom))
    g = None
    if want_grad:
        if (out is not None and last and out.flags.c_contiguous and out.flags.aligned
                and out.dtype.isnative and out.dtype == qa.dtype
                and all(out.ctypes.data == a.ctypes.data or not np.may_share_memory(out, a)
                        for a in (qa, pa))):
            g = out
        else:
            g = np.empty(qa.shape, qa.dtype)
    rsum = np.zeros(rows, np.float64)
    _ew.kl_raw(pa, qa, bool(log_q), g, sw, gscale, rsum, rows, n)
    res_loss = res_grad = None
    if want_loss:
        per = rsum * sw if sw is not None else rsum
        if reduction == "none":
            res_loss = per.reshape(rshape).astype(rdt)
            if res_loss.ndim == 0:
                res_loss = res_loss[()]
        else:
            with np.errstate(divide="ignore", invalid="ignore"):
                res_loss = rdt.type(np.float64(np.sum(per)) / np.float64(denom))
    if want_grad:
        if not last:
            g = np.moveaxis(g, -1, ax)
        if out is not None:
            if g is not out:
                np.copyto(out, g, casting="unsafe")
            res_grad = out
        else:
            res_grad = g if g.dtype == rdt else g.astype(rdt)
    if want_loss and want_grad:
        return res_loss, res_grad
    return res_loss if want_loss else res_grad


_KL_ARGS = """
    Parameters
    ----------
    p : array_like
        The target distribution, along ``axis``.
    q : array_like
        The model's distribution (its log if ``log_q``), p's shape; the
        loss and the gradient have q's float dtype.
    axis : int, optional
        The distribution axis (default -1).
    log_q : bool, optional
        q holds log-probabilities (the gradient is then w.r.t. log q).
    reduction : {"mean", "sum", "none"}
        "none": one value per row (the shape without ``axis``); "mean":
        their mean (PyTorch's "batchmean"); "sum": their sum.
    sample_weight : array_like, optional
        One weight per row (the shape without ``axis``, or one per index of
        the leading axis); "mean" is then sum(w kl) / sum(w).
"""
_OUT_KL = """    out : ndarray, optional
        The gradient's array (q's shape and dtype); may be ``q``.
"""


def kl_div(p, q, axis=-1, *, log_q=False, reduction="mean", sample_weight=None):
    """Kullback-Leibler divergence KL(p || q) = ``sum p (log p - log q)`` along ``axis``.

    A term is 0 where p == 0 (0 log 0 = 0).

    {args}
    Returns
    -------
    loss : scalar or ndarray
        A NumPy scalar of the prediction's float dtype (an array for ``reduction="none"``).

    Notes
    -----
    Formula: ``sum p (log p - log q), 0 where p = 0``; gradient ``-p/q (or -p
    w.r.t. log q)``.

    The argument order is the mathematical one: p is the target, q the
    model (the reverse of ``torch.nn.functional.kl_div``).  Each term is
    ``p log(p/q)`` (one rounding in the ratio), or ``p (log p - log q)``
    where the ratio would under/overflow.  Derivative ``-p/q`` (0 where
    p == 0), or ``-p`` with respect to log q.

    Examples
    --------
    >>> import mlkern
    >>> float(mlkern.kl_div([0.5, 0.5, 0.0], [0.25, 0.25, 0.5]))
    0.6931471805599453
    """
    return _kl("kl_div", p, q, axis, log_q, reduction, sample_weight, True, False, None)


def kl_div_grad(p, q, axis=-1, *, log_q=False, reduction="mean", sample_weight=None, out=None):
    """Gradient of :func:`kl_div` with respect to q: ``-p/q`` (0 where p == 0).

    ``-p`` with respect to log q when ``log_q``; scaled by the reduction.

    {args}
    {out}

    Returns
    -------
    grad : ndarray
        q's shape and float dtype (``out`` if given).

    Notes
    -----
    Formula: ``-p/q`` (0 where p == 0), or ``-p`` with respect to log q when
    ``log_q``, times the row's scale: ``w_r / sum w`` for ``"mean"`` (``1 /
    rows`` without sample weights), ``w_r`` (or 1) for ``"sum"`` and
    ``"none"``.  One pass of the row kernel (``mlk_kl``): the ratio ``p/q`` is
    the one the loss takes its log of.

    Examples
    --------
    >>> import mlkern
    >>> mlkern.kl_div_grad([0.5, 0.5, 0.0], [0.25, 0.25, 0.5]).tolist()
    [-2.0, -2.0, 0.0]
    """
    return _kl("kl_div_grad", p, q, axis, log_q, reduction, sample_weight, False, True, out)


def kl_div_with_grad(p, q, axis=-1, *, log_q=False, reduction="mean", sample_weight=None,
                     out=None):
    """``(kl_div, kl_div_grad)`` from one pass over p and q.

    {args}
    {out}

    Returns
    -------
    loss : scalar or ndarray
        A NumPy scalar of ``q``'s float dtype (an array for ``reduction="none"``),
        as :func:`kl_div` returns it.
    grad : ndarray
        As :func:`kl_div_grad`.

    Notes
    -----
    Formula: loss ``sum p (log p - log q)`` per row (0 where p == 0),
    gradient ``-p/q`` (``-p`` w.r.t. log q).  One pass over p and q: each
    term is ``p log(p/q)`` (one rounding in the ratio), or ``p (log p - log
    q)`` where the ratio would under/overflow, summed per row in float64,
    and the gradient written in the same pass.

    Examples
    --------
    >>> import numpy as np, mlkern
    >>> loss, g = mlkern.kl_div_with_grad([0.5, 0.5], np.log([0.25, 0.75]), log_q=True)
    >>> round(float(loss), 12), g.tolist()
    (0.143841036226, [-0.5, -0.5])
    """
    return _kl("kl_div_with_grad", p, q, axis, log_q, reduction, sample_weight, True, True, out)


for _f in (kl_div, kl_div_grad, kl_div_with_grad):
    _f.__doc__ = (_f.__doc__.replace("    {args}", _KL_ARGS.strip("\n") + "\n")
                  .replace("    {out}", _OUT_KL.rstrip("\n")))
del _f


# ---------------------------------------------------------------------------
# penalties: the pointwise kernel with t = w (not read)
# ---------------------------------------------------------------------------

def _penalty(fname, op, w, lam, want_loss, out):
    lam = check_real(lam, "lam", nonnegative=True)
    wa, rdt = as_float_array(w, "w")
    if out is not None:
        check_out(out, wa.shape, rdt)
    if want_loss:
        if not wa.size:
            return rdt.type(0.0)
        bsum = _ew.ploss_raw(op, flat(wa), flat(wa), None, None, None, 1, None, 1, 0,
                             cost=_COST[op])
        return rdt.type(lam * float(np.sum(bsum)))
    g = result_array(wa, out, rdt)
    if wa.size:
        # SQ0 has l' = 2w and ABS0 sign(w): the scale is lam in both cases
        _ew.ploss_raw(op, flat(wa), flat(wa), None, flat(g), None, 1, None, 1, 0, gscale=lam,
                      cost=_COST[op])
    return finish(g, out, rdt, g.ndim == 0)


def l1_penalty(w, lam):
    """L1 penalty ``lam * sum(|w|)``.

    Parameters
    ----------
    w : array_like
        The weights.
    lam : float
        The penalty's strength, >= 0.

    Returns
    -------
    scalar of w's float dtype

    Notes
    -----
    Formula: ``lam sum |w|``; gradient ``lam sign(w)``.

    Derivative ``lam * sign(w)`` (0 at 0): :func:`l1_penalty_grad`.

    Examples
    --------
    >>> import mlkern
    >>> float(mlkern.l1_penalty([1.0, -2.0], 0.5))
    1.5
    """
    return _penalty("l1_penalty", _ABS0, w, lam, True, None)


def l1_penalty_grad(w, lam, *, out=None):
    """Gradient of :func:`l1_penalty`: ``lam * sign(w)`` (0 at 0).

    Parameters
    ----------
    w : array_like
        The weights.
    lam : float
        The penalty's strength, >= 0.
    out : ndarray, optional
        w's shape and float dtype; may be w.

    Returns
    -------
    ndarray (or NumPy scalar for 0-d input)
        w's shape and float dtype (``out`` if given).

    Notes
    -----
    Formula: ``lam sign(w)``, 0 at 0 and NaN where w is NaN: the pointwise
    kernel of :func:`mae_grad` with target 0 (not read), scaled by ``lam``.

    Examples
    --------
    >>> import mlkern
    >>> mlkern.l1_penalty_grad([1.0, -2.0, 0.0], 0.5).tolist()
    [0.5, -0.5, 0.0]
    """
    return _penalty("l1_penalty_grad", _ABS0, w, lam, False, out)


def l2_penalty(w, lam):
    """L2 penalty ``lam * sum(w**2)``.

    Parameters
    ----------
    w : array_like
        The weights.
    lam : float
        The penalty's strength, >= 0.

    Returns
    -------
    scalar of w's float dtype

    Notes
    -----
    Formula: ``lam sum w^2``; gradient ``2 lam w``.

    Derivative ``2 lam w``: :func:`l2_penalty_grad`.

    Examples
    --------
    >>> import mlkern
    >>> float(mlkern.l2_penalty([1.0, -2.0], 0.5))
    2.5
    """
    return _penalty("l2_penalty", _SQ0, w, lam, True, None)


def l2_penalty_grad(w, lam, *, out=None):
    """Gradient of :func:`l2_penalty`: ``2 lam w``.

    Parameters
    ----------
    w : array_like
        The weights.
    lam : float
        The penalty's strength, >= 0.
    out : ndarray, optional
        w's shape and float dtype; may be w.

    Returns
    -------
    ndarray (or NumPy scalar for 0-d input)
        w's shape and float dtype (``out`` if given).

    Notes
    -----
    Formula: ``2 lam w``: the pointwise kernel's ``l' = 2w`` (target 0, not
    read) scaled by ``lam``.

    Examples
    --------
    >>> import mlkern
    >>> mlkern.l2_penalty_grad([1.0, -2.0], 0.5).tolist()
    [1.0, -2.0]
    """
    return _penalty("l2_penalty_grad", _SQ0, w, lam, False, out)
