"""Losses.  This module has, so far, the cross-entropy family; the other
losses of SPEC.md are still to come.

``cross_entropy_with_grad`` with integer labels is one fused kernel per row
(``_c/mlk_loss_tmpl.h``): the max, the exponentials and their sum, the loss
and the gradient ``softmax - target`` scaled, reading the logits once from
memory and writing the gradient once.  It allocates nothing the size of the
logits besides the gradient, which may be the logits' own buffer
(``out=logits``).  Per-row losses are summed in a fixed order, so the loss
does not depend on the thread count.

Probability targets (a float ``target`` of the logits' shape) go through
the row-wise kernels (``log_softmax``) and NumPy, unfused.
"""
import operator

import numpy as np

from . import _elementwise as _ew
from ._validation import as_float_array, check_out, check_real, compute_dtype
from .rowwise import check_axis, log_softmax, softmax

__all__ = ["cross_entropy", "cross_entropy_grad", "cross_entropy_with_grad"]

_REDUCTIONS = ("mean", "sum", "none")


def _check_reduction(reduction, fname):
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{fname}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


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
    lab = np.ascontiguousarray(lab, dtype=np.int64)
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
    return np.ascontiguousarray(w, dtype=dtype)


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
    ignore_index = operator.index(ignore_index)
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
        return np.array([s, s * (1.0 - eps), s * (eps / n)], np.float64), denom
    valid = lab != ignore_index
    safe = np.where(valid, lab, 0)
    wy = w.astype(np.float64)[safe] if w is not None else np.ones(lab.shape, np.float64)
    s = np.where(valid, 1.0, 0.0) if sw is None else np.where(valid, sw, 0.0)
    denom = float(np.sum(s * wy))
    if reduction == "mean":
        with np.errstate(divide="ignore", invalid="ignore"):
            s = s / denom
    W = float(np.sum(w, dtype=np.float64)) if w is not None else float(n)
    coef = np.empty((lab.size, 3), np.float64)
    coef[:, 0] = s * ((1.0 - eps) * wy + eps * W / n)
    coef[:, 1] = s * (1.0 - eps) * wy
    coef[:, 2] = s * (eps / n)
    coef[~valid] = 0.0
    return coef, denom


def _xent(fname, logits, target, axis, reduction, weight, ignore_index, label_smoothing,
          sample_weight, want_loss, want_grad, out):
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
    tt = t.astype(z.dtype, copy=False)
    if eps:
        tt = (1.0 - eps) * tt + eps / n
    w = _weights(weight, n, z.dtype, fname)
    shape_w = [1] * z.ndim
    shape_w[ax] = n
    wt = tt * w.reshape(shape_w) if w is not None else tt
    sw = _sample_weight(sample_weight, rshape, fname)
    s = np.ones(rshape, np.float64) if sw is None else sw.reshape(rshape)
    scale = 1.0 / float(np.sum(s)) if reduction == "mean" else 1.0
    res_loss = res_grad = None
    if want_loss:
        per = -np.sum(wt.astype(np.float64) * log_softmax(z, axis=ax), axis=ax) * s
        if reduction == "none":
            res_loss = per.astype(rdt)
        else:
            res_loss = rdt.type(np.sum(per) * scale)
    if want_grad:
        p = softmax(z, axis=ax)
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
    """Gradient of :func:`cross_entropy` with respect to the logits:
    ``softmax(z) - target``, weighted and scaled like the loss.
    {args}    out : ndarray, optional
        The gradient's array (the logits' shape and dtype); may be the
        logits themselves.

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
