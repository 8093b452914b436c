"""Losses (docs/contract.rst, "Losses"): the cross-entropy family, nll_loss, the
pointwise losses (mse, rmse, mae, l1_loss, l2_loss, quadratic_cost, huber,
binary_cross_entropy, binary_cross_entropy_with_logits), kl_div, and the
l1/l2 penalties -- each with ``_grad`` and (the losses) ``_with_grad``.

``cross_entropy_with_grad`` with integer labels is one fused pass per row:
the max, the exponentials and their sum, the loss and the gradient
``softmax - target`` scaled, reading the logits once from memory and
writing the gradient once.  It allocates nothing the size of the logits
besides the gradient, which may be the logits' own buffer
(``out=logits``).  Per-row losses are summed in a fixed order, so the loss
does not depend on the thread count.

Probability targets (a float ``target`` of the logits' shape) go through
the row-wise functions (``log_softmax``) and NumPy, unfused.

The pointwise losses are one pass over pred and target that gives the
loss, the per-element loss and the scaled gradient, the sum taken in
float64 in a fixed order, so the loss does not depend on the thread count.
``kl_div`` is one pass per row.  ``nll_loss`` is a gather and a scatter,
in NumPy.

Dask: with a ``dask.array`` argument a loss is a lazy 0-d array (or, for
``"none"``, a lazy array) with the global reduction -- ``"mean"`` divides by
the whole array's count or weight -- and ``X_with_grad`` computes the loss
part and the gradient of a chunk in one task; the class axis must be in one
chunk (docs/dask.rst).

How the kernels do it: docs/implementation.rst.
"""
from __future__ import annotations

import math
from typing import Any, Literal, SupportsIndex, TypeVar, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import _docs
from . import _kernels as _ew
from ._ops import PLOSS
from ._validation import (any_dask, as_float_array, check_axis, check_delta, check_ignore_index, check_out,
                          check_probs, check_real, check_reduction, class_labels, class_weights,
                          finish, flat, loss_pair, pos_weights, real_array, result_array,
                          row_weights, sample_weights, writable_direct)
from .rowwise import log_softmax, softmax

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

# float arrays keep their dtype (_F); anything else array-like computes in
# float64 (float16 -> float32 -> float16)
_F = TypeVar("_F", bound=np.floating[Any])
_Floating = np.floating[Any]
_FArray = NDArray[np.floating[Any]]


def _xent_params(ndim, axis, reduction, ignore_index, label_smoothing, fname):
    """The checked (axis, label_smoothing, ignore_index) of a cross-entropy call."""
    ax = check_axis(axis, ndim, fname)
    check_reduction(reduction, fname)
    eps = check_real(label_smoothing, "label_smoothing", nonnegative=True)
    if eps > 1:
        raise ValueError(f"{fname}: label_smoothing must be in [0, 1], got {label_smoothing!r}")
    return ax, eps, check_ignore_index(ignore_index, fname)


def _prepare(logits, target, axis, reduction, weight, ignore_index, label_smoothing,
             sample_weight, fname):
    z, rdt = as_float_array(logits, "logits")
    ax, eps, ignore_index = _xent_params(z.ndim, axis, reduction, ignore_index, label_smoothing,
                                         fname)
    n = z.shape[ax]
    return z, rdt, ax, n, eps, ignore_index


def _coefficients(lab, n, w, sw, eps, ignore_index, reduction, gdenom=None):
    """(a, b, c) per sample (see mlk_loss_tmpl.h), as a (rows, 3) array, or
    one (3,) triple for every sample when there are neither sample nor
    class weights (then nothing rows-sized is allocated here).  gdenom: the
    mean's denominator of the whole array when lab is one chunk of it."""
    if w is None and sw is None:
        denom = float(np.count_nonzero(lab != ignore_index)) if reduction == "mean" else 1.0
        if gdenom is not None and reduction == "mean":
            denom = gdenom
        with np.errstate(divide="ignore", invalid="ignore"):
            s = np.float64(1.0) / np.float64(denom)
        return _ew.xent_coef(float(s), 1.0, 1.0, eps, n), denom
    valid = lab != ignore_index
    safe = np.where(valid, lab, 0)
    wy = w.astype(np.float64)[safe] if w is not None else np.ones(lab.shape, np.float64)
    s = np.where(valid, 1.0, 0.0) if sw is None else np.where(valid, sw, 0.0)
    denom = float(np.sum(s * wy)) if gdenom is None else gdenom
    if reduction == "mean":
        with np.errstate(divide="ignore", invalid="ignore"):
            s = s / denom
    W = float(np.sum(w, dtype=np.float64)) if w is not None else float(n)
    coef = _ew.xent_coef(s, wy, W / n, eps, n)
    coef[~valid] = 0.0
    return coef, denom


def _xent(fname, logits, target, axis, reduction, weight, ignore_index, label_smoothing,
          sample_weight, want_loss, want_grad, out, _denom=None, _partial=False):
    # the common case (C-contiguous float logits, classes last, int64 labels,
    # no weights, out= None or a direct C-contiguous array) is checked and run
    # in one C call; anything else takes the full path below.  _denom,
    # _partial: one chunk of a dask array (mlkern._dask): the whole array's
    # mean denominator, and return (float64 sum of the chunk's losses, grad)
    if (weight is None and sample_weight is None and _denom is None
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
    if any_dask(logits, target, weight, sample_weight):
        from . import _dask
        return _dask.xent(fname, logits, target, axis, reduction, weight, ignore_index,
                          label_smoothing, sample_weight, want_loss, want_grad, out)
    z, rdt, ax, n, eps, ignore_index = _prepare(logits, target, axis, reduction, weight,
                                                ignore_index, label_smoothing, sample_weight,
                                                fname)
    tgt = np.asarray(target)
    if tgt.dtype.kind == "f" and tgt.shape == z.shape:
        return _xent_probs(fname, z, rdt, tgt, ax, n, reduction, weight, eps, sample_weight,
                           want_loss, want_grad, out, _denom, _partial)
    rshape = z.shape[:ax] + z.shape[ax + 1:]
    lab = class_labels(target, rshape, n, ignore_index, fname)
    w = class_weights(weight, n, z.dtype, fname)
    sw = sample_weights(sample_weight, rshape, fname)
    if out is not None:
        check_out(out, z.shape, rdt)
    if n == 0:
        raise ValueError(f"{fname}: the class axis is empty")
    last = ax == z.ndim - 1
    zc = z if (last and z.flags.c_contiguous) else np.ascontiguousarray(np.moveaxis(z, ax, -1))
    rows = lab.size
    with np.errstate(all="ignore"):    # a mean over nothing: 0/0, reported as NaN below
        coef, denom = _coefficients(lab.reshape(-1), n, w, sw, eps, ignore_index, reduction,
                                    _denom)
    g = None
    if want_grad:
        if (out is not None and last and out.dtype == zc.dtype and out.flags.c_contiguous
                and writable_direct(out, zc)):
            g = out
        else:
            g = np.empty(zc.shape, zc.dtype)
    loss = np.empty(rows, np.float64)
    _ew.xent_raw(zc, lab.reshape(-1), coef, ignore_index, w, g, loss, rows, n)
    res_loss = None
    if _partial:
        res_loss = float(np.sum(loss))
    elif want_loss:
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
                want_grad, out, _denom=None, _partial=False):
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
    w = class_weights(weight, n, z.dtype, fname)
    shape_w = [1] * z.ndim
    shape_w[ax] = n
    wt = tt * w.reshape(shape_w) if w is not None else tt
    sw = sample_weights(sample_weight, rshape, fname)
    s = np.ones(rshape, np.float64) if sw is None else sw.reshape(rshape)
    total = np.sum(s) if _denom is None else _denom
    with np.errstate(divide="ignore", invalid="ignore"):   # nothing counted: NaN, as PyTorch
        scale = float(np.float64(1.0) / np.float64(total)) if reduction == "mean" else 1.0
    res_loss = res_grad = None
    if want_loss or _partial:
        per = -np.sum(wt.astype(np.float64) * log_softmax(z, axis=ax), axis=ax) * s
        if _partial:
            res_loss = float(np.sum(per))
        elif reduction == "none":
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


@overload
def cross_entropy(logits: NDArray[_F], target: ArrayLike, axis: SupportsIndex = ..., *,
                  reduction: Literal["mean", "sum"] = ..., weight: ArrayLike | None = ...,
                  ignore_index: int = ..., label_smoothing: float = ...,
                  sample_weight: ArrayLike | None = ...) -> _F: ...
@overload
def cross_entropy(logits: NDArray[_F], target: ArrayLike, axis: SupportsIndex = ..., *,
                  reduction: Literal["none"], weight: ArrayLike | None = ...,
                  ignore_index: int = ..., label_smoothing: float = ...,
                  sample_weight: ArrayLike | None = ...) -> NDArray[_F]: ...
@overload
def cross_entropy(logits: ArrayLike, target: ArrayLike, axis: SupportsIndex = ..., *,
                  reduction: Literal["mean", "sum"] = ..., weight: ArrayLike | None = ...,
                  ignore_index: int = ..., label_smoothing: float = ...,
                  sample_weight: ArrayLike | None = ...) -> _Floating: ...
@overload
def cross_entropy(logits: ArrayLike, target: ArrayLike, axis: SupportsIndex = ..., *,
                  reduction: str = ..., weight: ArrayLike | None = ..., ignore_index: int = ...,
                  label_smoothing: float = ...,
                  sample_weight: ArrayLike | None = ...) -> _Floating | _FArray: ...
@_docs.doc()
def cross_entropy(logits: ArrayLike, target: ArrayLike, axis: SupportsIndex = -1, *,
                  reduction: str = "mean", weight: ArrayLike | None = None,
                  ignore_index: int = -100, label_smoothing: float = 0.0,
                  sample_weight: ArrayLike | None = None) -> Any:
    """Cross-entropy from logits: ``-sum_i t_i log softmax(z)_i``.

    {xent_parameters}

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


@overload
def cross_entropy_grad(logits: NDArray[_F], target: ArrayLike, axis: SupportsIndex = ..., *,
                       reduction: str = ..., weight: ArrayLike | None = ...,
                       ignore_index: int = ..., label_smoothing: float = ...,
                       sample_weight: ArrayLike | None = ...,
                       out: NDArray[_F] | None = ...) -> NDArray[_F]: ...
@overload
def cross_entropy_grad(logits: ArrayLike, target: ArrayLike, axis: SupportsIndex = ..., *,
                       reduction: str = ..., weight: ArrayLike | None = ...,
                       ignore_index: int = ..., label_smoothing: float = ...,
                       sample_weight: ArrayLike | None = ...,
                       out: NDArray[Any] | None = ...) -> _FArray: ...
@_docs.doc()
def cross_entropy_grad(logits: ArrayLike, target: ArrayLike, axis: SupportsIndex = -1, *,
                       reduction: str = "mean", weight: ArrayLike | None = None,
                       ignore_index: int = -100, label_smoothing: float = 0.0,
                       sample_weight: ArrayLike | None = None,
                       out: NDArray[Any] | None = None) -> Any:
    """Gradient of :func:`cross_entropy` with respect to the logits: ``softmax(z) - target``.

    Weighted and scaled like the loss.

    {xent_parameters}
    out : ndarray, optional
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


@overload
def cross_entropy_with_grad(logits: NDArray[_F], target: ArrayLike, axis: SupportsIndex = ..., *,
                            reduction: Literal["mean", "sum"] = ...,
                            weight: ArrayLike | None = ..., ignore_index: int = ...,
                            label_smoothing: float = ..., sample_weight: ArrayLike | None = ...,
                            out: NDArray[_F] | None = ...) -> tuple[_F, NDArray[_F]]: ...
@overload
def cross_entropy_with_grad(logits: NDArray[_F], target: ArrayLike, axis: SupportsIndex = ..., *,
                            reduction: Literal["none"], weight: ArrayLike | None = ...,
                            ignore_index: int = ..., label_smoothing: float = ...,
                            sample_weight: ArrayLike | None = ...,
                            out: NDArray[_F] | None = ...) -> tuple[NDArray[_F], NDArray[_F]]: ...
@overload
def cross_entropy_with_grad(logits: ArrayLike, target: ArrayLike, axis: SupportsIndex = ..., *,
                            reduction: Literal["mean", "sum"] = ...,
                            weight: ArrayLike | None = ..., ignore_index: int = ...,
                            label_smoothing: float = ..., sample_weight: ArrayLike | None = ...,
                            out: NDArray[Any] | None = ...) -> tuple[_Floating, _FArray]: ...
@overload
def cross_entropy_with_grad(
        logits: ArrayLike, target: ArrayLike, axis: SupportsIndex = ..., *, reduction: str = ...,
        weight: ArrayLike | None = ..., ignore_index: int = ..., label_smoothing: float = ...,
        sample_weight: ArrayLike | None = ...,
        out: NDArray[Any] | None = ...) -> tuple[_Floating | _FArray, _FArray]: ...
@_docs.doc(p="logits", loss="cross_entropy")
def cross_entropy_with_grad(logits: ArrayLike, target: ArrayLike, axis: SupportsIndex = -1, *,
                            reduction: str = "mean", weight: ArrayLike | None = None,
                            ignore_index: int = -100, label_smoothing: float = 0.0,
                            sample_weight: ArrayLike | None = None,
                            out: NDArray[Any] | None = None) -> Any:
    """``(cross_entropy, cross_entropy_grad)`` from one fused pass.

    {xent_parameters}
    out : ndarray, optional
        The gradient's array; ``out=logits`` overwrites the logits with the
        gradient and allocates nothing of their size.

    Returns
    -------
    {returns_with_grad}

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


# ---------------------------------------------------------------------------
# nll_loss: a gather (loss) and a scatter (gradient) along the class axis
# ---------------------------------------------------------------------------

def _nll(fname, log_probs, target, axis, reduction, weight, ignore_index, sample_weight,
         want_loss, want_grad, out, _denom=None, _partial=False):
    if any_dask(log_probs, target, weight, sample_weight):
        from . import _dask
        return _dask.nll(fname, log_probs, target, axis, reduction, weight, ignore_index,
                         sample_weight, want_loss, want_grad, out)
    lp, rdt = as_float_array(log_probs, "log_probs")
    ax = check_axis(axis, lp.ndim, fname)
    check_reduction(reduction, fname)
    ignore_index = check_ignore_index(ignore_index, fname)
    n = lp.shape[ax]
    rshape = lp.shape[:ax] + lp.shape[ax + 1:]
    lab = class_labels(target, rshape, n, ignore_index, fname)
    w = class_weights(weight, n, np.float64, fname)
    sw = sample_weights(sample_weight, rshape, fname)
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
    denom = float(np.sum(s)) if _denom is None else _denom
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = float(np.float64(1.0) / np.float64(denom)) if reduction == "mean" else 1.0
    lpm = np.moveaxis(lp, ax, -1)
    res_loss = res_grad = None
    if want_loss or _partial:
        picked = np.take_along_axis(lpm, safe[..., None], -1)[..., 0].astype(np.float64)
        per = np.where(s != 0, -(s * picked), 0.0)        # ignored samples: 0, never NaN
        if _partial:
            res_loss = float(np.sum(per))
        elif reduction == "none":
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


@overload
def nll_loss(log_probs: NDArray[_F], target: ArrayLike, axis: SupportsIndex = ..., *,
             reduction: Literal["mean", "sum"] = ..., weight: ArrayLike | None = ...,
             ignore_index: int = ..., sample_weight: ArrayLike | None = ...) -> _F: ...
@overload
def nll_loss(log_probs: NDArray[_F], target: ArrayLike, axis: SupportsIndex = ..., *,
             reduction: Literal["none"], weight: ArrayLike | None = ..., ignore_index: int = ...,
             sample_weight: ArrayLike | None = ...) -> NDArray[_F]: ...
@overload
def nll_loss(log_probs: ArrayLike, target: ArrayLike, axis: SupportsIndex = ..., *,
             reduction: Literal["mean", "sum"] = ..., weight: ArrayLike | None = ...,
             ignore_index: int = ..., sample_weight: ArrayLike | None = ...) -> _Floating: ...
@overload
def nll_loss(log_probs: ArrayLike, target: ArrayLike, axis: SupportsIndex = ..., *,
             reduction: str = ..., weight: ArrayLike | None = ..., ignore_index: int = ...,
             sample_weight: ArrayLike | None = ...) -> _Floating | _FArray: ...
@_docs.doc()
def nll_loss(log_probs: ArrayLike, target: ArrayLike, axis: SupportsIndex = -1, *,
             reduction: str = "mean", weight: ArrayLike | None = None, ignore_index: int = -100,
             sample_weight: ArrayLike | None = None) -> Any:
    """Negative log-likelihood: ``-weight[y] * log_probs[y]`` per sample.

    {nll_parameters}

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


@overload
def nll_loss_grad(log_probs: NDArray[_F], target: ArrayLike, axis: SupportsIndex = ..., *,
                  reduction: str = ..., weight: ArrayLike | None = ..., ignore_index: int = ...,
                  sample_weight: ArrayLike | None = ...,
                  out: NDArray[_F] | None = ...) -> NDArray[_F]: ...
@overload
def nll_loss_grad(log_probs: ArrayLike, target: ArrayLike, axis: SupportsIndex = ..., *,
                  reduction: str = ..., weight: ArrayLike | None = ..., ignore_index: int = ...,
                  sample_weight: ArrayLike | None = ...,
                  out: NDArray[Any] | None = ...) -> _FArray: ...
@_docs.doc()
def nll_loss_grad(log_probs: ArrayLike, target: ArrayLike, axis: SupportsIndex = -1, *,
                  reduction: str = "mean", weight: ArrayLike | None = None,
                  ignore_index: int = -100, sample_weight: ArrayLike | None = None,
                  out: NDArray[Any] | None = None) -> Any:
    """Gradient of :func:`nll_loss` with respect to ``log_probs``.

    ``-weight[y]`` times the reduction's scale at the label, 0 elsewhere.

    {nll_parameters}
    out : ndarray, optional
        The gradient's array (the shape and dtype of ``log_probs``).

    Returns
    -------
    grad : ndarray
        The shape and float dtype of ``log_probs`` (``out`` if given).

    Notes
    -----
    Formula: ``d loss / d log_probs[i, j] = -s_i w_{{y_i}}`` at ``j = y_i`` and 0
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


@overload
def nll_loss_with_grad(log_probs: NDArray[_F], target: ArrayLike, axis: SupportsIndex = ..., *,
                       reduction: Literal["mean", "sum"] = ..., weight: ArrayLike | None = ...,
                       ignore_index: int = ..., sample_weight: ArrayLike | None = ...,
                       out: NDArray[_F] | None = ...) -> tuple[_F, NDArray[_F]]: ...
@overload
def nll_loss_with_grad(log_probs: NDArray[_F], target: ArrayLike, axis: SupportsIndex = ..., *,
                       reduction: Literal["none"], weight: ArrayLike | None = ...,
                       ignore_index: int = ..., sample_weight: ArrayLike | None = ...,
                       out: NDArray[_F] | None = ...) -> tuple[NDArray[_F], NDArray[_F]]: ...
@overload
def nll_loss_with_grad(log_probs: ArrayLike, target: ArrayLike, axis: SupportsIndex = ..., *,
                       reduction: Literal["mean", "sum"] = ..., weight: ArrayLike | None = ...,
                       ignore_index: int = ..., sample_weight: ArrayLike | None = ...,
                       out: NDArray[Any] | None = ...) -> tuple[_Floating, _FArray]: ...
@overload
def nll_loss_with_grad(log_probs: ArrayLike, target: ArrayLike, axis: SupportsIndex = ..., *,
                       reduction: str = ..., weight: ArrayLike | None = ...,
                       ignore_index: int = ..., sample_weight: ArrayLike | None = ...,
                       out: NDArray[Any] | None = ...) -> tuple[_Floating | _FArray, _FArray]: ...
@_docs.doc(p="log_probs", loss="nll_loss")
def nll_loss_with_grad(log_probs: ArrayLike, target: ArrayLike, axis: SupportsIndex = -1, *,
                       reduction: str = "mean", weight: ArrayLike | None = None,
                       ignore_index: int = -100, sample_weight: ArrayLike | None = None,
                       out: NDArray[Any] | None = None) -> Any:
    """``(nll_loss, nll_loss_grad)`` from one call.

    {nll_parameters}
    out : ndarray, optional
        The gradient's array.

    Returns
    -------
    {returns_with_grad}

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


# ---------------------------------------------------------------------------
# pointwise losses: one fused kernel (mlk_ploss)
# ---------------------------------------------------------------------------

# op codes, by name from the op table (_c/mlk_kernels.h, MLK_L_*)
_SQ, _ABS, _HUBER = PLOSS["squared"], PLOSS["absolute"], PLOSS["huber"]
_BCE, _BCEL = PLOSS["bce"], PLOSS["bce_with_logits"]
_SQ0, _ABS0 = PLOSS["squared_penalty"], PLOSS["absolute_penalty"]


def _pointwise(fname, op, pred, target, reduction, sample_weight, want_loss, want_grad, out,
               names=("pred", "target"), delta=1.0, pos_weight=None, lscale=1.0, gmul=1.0,
               rmse=False, _denom=None, _root=None, _partial=False):
    """The pointwise losses' one driver: checks, then one kernel pass.
    lscale multiplies each element's loss, gmul the gradient (1/2 of
    quadratic_cost); rmse=True takes the root of the mean.  For one chunk of
    a dask array (mlkern._dask): _denom, _root the whole array's mean
    denominator and rmse; _partial returns (float64 loss total, grad)."""
    # the common case (C-contiguous float arrays of one dtype and shape, no
    # weights but a scalar pos_weight, out= None or direct) is checked in one C
    # call, with the same kernel and the same arithmetic as below
    if (sample_weight is None and not rmse and _denom is None
            and (reduction == "mean" or reduction == "sum") and type(reduction) is str
            and (pos_weight is None or type(pos_weight) is float or type(pos_weight) is int)):
        r = _ew.ploss_fast(op, pred, target, reduction == "mean", want_grad,
                           1.0 if pos_weight is None else float(pos_weight), delta, lscale,
                           gmul, out)
        if r is not None:
            v, g = r
            res_loss = pred.dtype.type(v)
            if want_loss and want_grad:
                return res_loss, g
            return res_loss if want_loss else g
    check_reduction(reduction, fname)
    if any_dask(pred, target, sample_weight, pos_weight):
        from . import _dask
        return _dask.pointwise(fname, op, pred, target, reduction, sample_weight, want_loss,
                               want_grad, out, names=names, delta=delta, pos_weight=pos_weight,
                               lscale=lscale, gmul=gmul, rmse=rmse)
    structured = sample_weight is not None or (pos_weight is not None
                                               and np.size(pos_weight) != 1)
    p, t, rdt = loss_pair(pred, target, names, fname, "C" if structured else "K")
    shape = p.shape
    sw = row_weights(sample_weight, shape, fname) if sample_weight is not None else None
    pws, pwa, P, prs = 1.0, None, 1, 0
    if pos_weight is not None:
        pws, pwa, P, prs = pos_weights(pos_weight, shape, p.dtype, sw is not None, fname)
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
    if _denom is not None and reduction == "mean":
        denom = _denom
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
                             delta, lscale, gscale)
        total = float(np.sum(bsum)) * lscale
        if root and g is not None:
            # rmse: the gradient d / (N rmse) needs the loss first: a second pass
            with np.errstate(divide="ignore", invalid="ignore"):
                r = (math.sqrt(total / denom) if denom else math.nan) if _root is None else _root
                gs = 0.0 if r == 0 else 0.5 / (denom * r)
            _ew.ploss_raw(op, flat(p), flat(t), None, flat(g), sw, K, None, 1, 0, 1.0, 1.0,
                          1.0, gs)
    res_loss = res_grad = None
    if _partial:
        res_loss = total
    elif want_loss:
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


@overload
def mse(pred: NDArray[_F], target: ArrayLike, *, reduction: Literal["mean", "sum"] = ...,
        sample_weight: ArrayLike | None = ...) -> _F: ...
@overload
def mse(pred: NDArray[_F], target: ArrayLike, *, reduction: Literal["none"],
        sample_weight: ArrayLike | None = ...) -> NDArray[_F]: ...
@overload
def mse(pred: ArrayLike, target: ArrayLike, *, reduction: Literal["mean", "sum"] = ...,
        sample_weight: ArrayLike | None = ...) -> _Floating: ...
@overload
def mse(pred: ArrayLike, target: ArrayLike, *, reduction: str = ...,
        sample_weight: ArrayLike | None = ...) -> _Floating | _FArray: ...
@_docs.doc()
def mse(pred: ArrayLike, target: ArrayLike, *, reduction: str = "mean",
        sample_weight: ArrayLike | None = None) -> Any:
    """Mean squared error: ``mean((pred - target)**2)``.

    {pointwise_parameters}

    Returns
    -------
    scalar of pred's float dtype (an array for ``reduction="none"``)

    Notes
    -----
    Formula: ``mean d^2``, ``d = pred - target``; gradient ``2d/N``.

    Derivative ``2 (pred - target) / N``.  One pass over pred and target;
    the sum is taken in float64 in a fixed order, so the loss does not
    depend on the thread count.

    Examples
    --------
    >>> import mlkern
    >>> float(mlkern.mse([1.0, 2.0, 3.0], [1.0, 2.0, 5.0]))
    1.3333333333333333
    """
    return _pointwise("mse", _SQ, pred, target, reduction, sample_weight, True, False, None)


@overload
def mse_grad(pred: NDArray[_F], target: ArrayLike, *, reduction: str = ...,
             sample_weight: ArrayLike | None = ...,
             out: NDArray[_F] | None = ...) -> NDArray[_F]: ...
@overload
def mse_grad(pred: ArrayLike, target: ArrayLike, *, reduction: str = ...,
             sample_weight: ArrayLike | None = ..., out: NDArray[Any] | None = ...) -> _FArray: ...
@_docs.doc()
def mse_grad(pred: ArrayLike, target: ArrayLike, *, reduction: str = "mean",
             sample_weight: ArrayLike | None = None, out: NDArray[Any] | None = None) -> Any:
    """Gradient of :func:`mse` with respect to pred: ``2 (pred - target) / N``.

    {pointwise_parameters}
    {out_pointwise}

    Returns
    -------
    {returns_grad}

    Notes
    -----
    Formula: ``2 d``, ``d = pred - target``.

    {pointwise_scaled}

    {pointwise_pass}

    Examples
    --------
    >>> import mlkern
    >>> mlkern.mse_grad([1.0, 2.0], [0.0, 0.0]).tolist()
    [1.0, 2.0]
    """
    return _pointwise("mse_grad", _SQ, pred, target, reduction, sample_weight, False, True, out)


@overload
def mse_with_grad(pred: NDArray[_F], target: ArrayLike, *, reduction: Literal["mean", "sum"] = ...,
                  sample_weight: ArrayLike | None = ...,
                  out: NDArray[_F] | None = ...) -> tuple[_F, NDArray[_F]]: ...
@overload
def mse_with_grad(pred: NDArray[_F], target: ArrayLike, *, reduction: Literal["none"],
                  sample_weight: ArrayLike | None = ...,
                  out: NDArray[_F] | None = ...) -> tuple[NDArray[_F], NDArray[_F]]: ...
@overload
def mse_with_grad(pred: ArrayLike, target: ArrayLike, *, reduction: Literal["mean", "sum"] = ...,
                  sample_weight: ArrayLike | None = ...,
                  out: NDArray[Any] | None = ...) -> tuple[_Floating, _FArray]: ...
@overload
def mse_with_grad(pred: ArrayLike, target: ArrayLike, *, reduction: str = ...,
                  sample_weight: ArrayLike | None = ...,
                  out: NDArray[Any] | None = ...) -> tuple[_Floating | _FArray, _FArray]: ...
@_docs.doc(loss="mse")
def mse_with_grad(pred: ArrayLike, target: ArrayLike, *, reduction: str = "mean",
                  sample_weight: ArrayLike | None = None, out: NDArray[Any] | None = None) -> Any:
    """``(mse, mse_grad)`` from one fused pass.

    pred and target are read once, the gradient written once.

    {pointwise_parameters}
    {out_pointwise}

    Returns
    -------
    {returns_with_grad}

    Notes
    -----
    Formula: loss ``mean d^2``, gradient ``2d/N``, ``d = pred - target``
    (scaling as in :func:`mse_grad`).

    {pointwise_pass}

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


@overload
def rmse(pred: NDArray[_F], target: ArrayLike, *, reduction: Literal["mean", "sum"] = ...,
         sample_weight: ArrayLike | None = ...) -> _F: ...
@overload
def rmse(pred: ArrayLike, target: ArrayLike, *, reduction: Literal["mean", "sum"] = ...,
         sample_weight: ArrayLike | None = ...) -> _Floating: ...
@overload
def rmse(pred: ArrayLike, target: ArrayLike, *, reduction: str = ...,
         sample_weight: ArrayLike | None = ...) -> _Floating | _FArray: ...
@_docs.doc()
def rmse(pred: ArrayLike, target: ArrayLike, *, reduction: str = "mean",
         sample_weight: ArrayLike | None = None) -> Any:
    """Root mean squared error: ``sqrt(mse)``.

    {pointwise_parameters}

    Returns
    -------
    {returns_loss}

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


@overload
def rmse_grad(pred: NDArray[_F], target: ArrayLike, *, reduction: str = ...,
              sample_weight: ArrayLike | None = ...,
              out: NDArray[_F] | None = ...) -> NDArray[_F]: ...
@overload
def rmse_grad(pred: ArrayLike, target: ArrayLike, *, reduction: str = ...,
              sample_weight: ArrayLike | None = ...,
              out: NDArray[Any] | None = ...) -> _FArray: ...
@_docs.doc()
def rmse_grad(pred: ArrayLike, target: ArrayLike, *, reduction: str = "mean",
              sample_weight: ArrayLike | None = None, out: NDArray[Any] | None = None) -> Any:
    """Gradient of :func:`rmse`: ``(pred - target) / (N rmse)``, 0 where rmse is 0.

    Two passes (the loss first).

    {pointwise_parameters}
    {out_pointwise}

    Returns
    -------
    {returns_grad}

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


@overload
def rmse_with_grad(pred: NDArray[_F], target: ArrayLike, *,
                   reduction: Literal["mean", "sum"] = ..., sample_weight: ArrayLike | None = ...,
                   out: NDArray[_F] | None = ...) -> tuple[_F, NDArray[_F]]: ...
@overload
def rmse_with_grad(pred: ArrayLike, target: ArrayLike, *, reduction: Literal["mean", "sum"] = ...,
                   sample_weight: ArrayLike | None = ...,
                   out: NDArray[Any] | None = ...) -> tuple[_Floating, _FArray]: ...
@overload
def rmse_with_grad(pred: ArrayLike, target: ArrayLike, *, reduction: str = ...,
                   sample_weight: ArrayLike | None = ...,
                   out: NDArray[Any] | None = ...) -> tuple[_Floating | _FArray, _FArray]: ...
@_docs.doc(loss="rmse")
def rmse_with_grad(pred: ArrayLike, target: ArrayLike, *, reduction: str = "mean",
                   sample_weight: ArrayLike | None = None, out: NDArray[Any] | None = None) -> Any:
    """``(rmse, rmse_grad)``: a loss pass, then the gradient pass.

    {pointwise_parameters}
    {out_pointwise}

    Returns
    -------
    {returns_with_grad}

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


@overload
def mae(pred: NDArray[_F], target: ArrayLike, *, reduction: Literal["mean", "sum"] = ...,
        sample_weight: ArrayLike | None = ...) -> _F: ...
@overload
def mae(pred: NDArray[_F], target: ArrayLike, *, reduction: Literal["none"],
        sample_weight: ArrayLike | None = ...) -> NDArray[_F]: ...
@overload
def mae(pred: ArrayLike, target: ArrayLike, *, reduction: Literal["mean", "sum"] = ...,
        sample_weight: ArrayLike | None = ...) -> _Floating: ...
@overload
def mae(pred: ArrayLike, target: ArrayLike, *, reduction: str = ...,
        sample_weight: ArrayLike | None = ...) -> _Floating | _FArray: ...
@_docs.doc()
def mae(pred: ArrayLike, target: ArrayLike, *, reduction: str = "mean",
        sample_weight: ArrayLike | None = None) -> Any:
    """Mean absolute error: ``mean(|pred - target|)``.

    {pointwise_parameters}

    Returns
    -------
    {returns_loss}

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


@overload
def mae_grad(pred: NDArray[_F], target: ArrayLike, *, reduction: str = ...,
             sample_weight: ArrayLike | None = ...,
             out: NDArray[_F] | None = ...) -> NDArray[_F]: ...
@overload
def mae_grad(pred: ArrayLike, target: ArrayLike, *, reduction: str = ...,
             sample_weight: ArrayLike | None = ..., out: NDArray[Any] | None = ...) -> _FArray: ...
@_docs.doc()
def mae_grad(pred: ArrayLike, target: ArrayLike, *, reduction: str = "mean",
             sample_weight: ArrayLike | None = None, out: NDArray[Any] | None = None) -> Any:
    """Gradient of :func:`mae`: ``sign(pred - target) / N`` (0 at 0).

    {pointwise_parameters}
    {out_pointwise}

    Returns
    -------
    {returns_grad}

    Notes
    -----
    Formula: ``sign(d)``, ``d = pred - target``, 0 where pred == target (as
    PyTorch's ``l1_loss``) and NaN where either is NaN.

    {pointwise_scaled}

    {pointwise_pass}

    Examples
    --------
    >>> import mlkern
    >>> mlkern.mae_grad([1.0, -2.0, 0.0], [0.0, 0.0, 0.0], reduction="sum").tolist()
    [1.0, -1.0, 0.0]
    """
    return _pointwise("mae_grad", _ABS, pred, target, reduction, sample_weight, False, True, out)


@overload
def mae_with_grad(pred: NDArray[_F], target: ArrayLike, *, reduction: Literal["mean", "sum"] = ...,
                  sample_weight: ArrayLike | None = ...,
                  out: NDArray[_F] | None = ...) -> tuple[_F, NDArray[_F]]: ...
@overload
def mae_with_grad(pred: NDArray[_F], target: ArrayLike, *, reduction: Literal["none"],
                  sample_weight: ArrayLike | None = ...,
                  out: NDArray[_F] | None = ...) -> tuple[NDArray[_F], NDArray[_F]]: ...
@overload
def mae_with_grad(pred: ArrayLike, target: ArrayLike, *, reduction: Literal["mean", "sum"] = ...,
                  sample_weight: ArrayLike | None = ...,
                  out: NDArray[Any] | None = ...) -> tuple[_Floating, _FArray]: ...
@overload
def mae_with_grad(pred: ArrayLike, target: ArrayLike, *, reduction: str = ...,
                  sample_weight: ArrayLike | None = ...,
                  out: NDArray[Any] | None = ...) -> tuple[_Floating | _FArray, _FArray]: ...
@_docs.doc(loss="mae")
def mae_with_grad(pred: ArrayLike, target: ArrayLike, *, reduction: str = "mean",
                  sample_weight: ArrayLike | None = None, out: NDArray[Any] | None = None) -> Any:
    """``(mae, mae_grad)`` from one fused pass.

    {pointwise_parameters}
    {out_pointwise}

    Returns
    -------
    {returns_with_grad}

    Notes
    -----
    Formula: loss ``mean |d|``, gradient ``sign(d)/N`` (0 at 0), ``d = pred -
    target``.

    {pointwise_pass}

    Examples
    --------
    >>> import mlkern
    >>> loss, g = mlkern.mae_with_grad([1.0, -2.0], [0.0, 0.0])
    >>> float(loss), g.tolist()
    (1.5, [0.5, -0.5])
    """
    return _pointwise("mae_with_grad", _ABS, pred, target, reduction, sample_weight, True, True,
                      out)


@overload
def l1_loss(pred: NDArray[_F], target: ArrayLike, *, reduction: Literal["mean", "sum"] = ...,
            sample_weight: ArrayLike | None = ...) -> _F: ...
@overload
def l1_loss(pred: NDArray[_F], target: ArrayLike, *, reduction: Literal["none"],
            sample_weight: ArrayLike | None = ...) -> NDArray[_F]: ...
@overload
def l1_loss(pred: ArrayLike, target: ArrayLike, *, reduction: Literal["mean", "sum"] = ...,
            sample_weight: ArrayLike | None = ...) -> _Floating: ...
@overload
def l1_loss(pred: ArrayLike, target: ArrayLike, *, reduction: str = ...,
            sample_weight: ArrayLike | None = ...) -> _Floating | _FArray: ...
@_docs.doc()
def l1_loss(pred: ArrayLike, target: ArrayLike, *, reduction: str = "sum",
            sample_weight: ArrayLike | None = None) -> Any:
    """L1 loss: ``sum(|pred - target|)``.

    The default is ``reduction="sum"``; ``"mean"`` is :func:`mae`.

    {pointwise_parameters}

    Returns
    -------
    {returns_loss}

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


@overload
def l1_loss_grad(pred: NDArray[_F], target: ArrayLike, *, reduction: str = ...,
                 sample_weight: ArrayLike | None = ...,
                 out: NDArray[_F] | None = ...) -> NDArray[_F]: ...
@overload
def l1_loss_grad(pred: ArrayLike, target: ArrayLike, *, reduction: str = ...,
                 sample_weight: ArrayLike | None = ...,
                 out: NDArray[Any] | None = ...) -> _FArray: ...
@_docs.doc()
def l1_loss_grad(pred: ArrayLike, target: ArrayLike, *, reduction: str = "sum",
                 sample_weight: ArrayLike | None = None, out: NDArray[Any] | None = None) -> Any:
    """Gradient of :func:`l1_loss`: ``sign(pred - target)`` (0 at 0).

    {pointwise_parameters}
    {out_pointwise}

    Returns
    -------
    {returns_grad}

    Notes
    -----
    Formula: ``sign(d)``, ``d = pred - target``, 0 where pred == target and
    NaN where either is NaN (the default reduction is ``"sum"``).

    {pointwise_scaled}

    {pointwise_pass}

    Examples
    --------
    >>> import mlkern
    >>> mlkern.l1_loss_grad([1.0, -2.0], [0.0, 0.0]).tolist()
    [1.0, -1.0]
    """
    return _pointwise("l1_loss_grad", _ABS, pred, target, reduction, sample_weight, False, True,
                      out)


@overload
def l1_loss_with_grad(pred: NDArray[_F], target: ArrayLike, *,
                      reduction: Literal["mean", "sum"] = ...,
                      sample_weight: ArrayLike | None = ...,
                      out: NDArray[_F] | None = ...) -> tuple[_F, NDArray[_F]]: ...
@overload
def l1_loss_with_grad(pred: NDArray[_F], target: ArrayLike, *, reduction: Literal["none"],
                      sample_weight: ArrayLike | None = ...,
                      out: NDArray[_F] | None = ...) -> tuple[NDArray[_F], NDArray[_F]]: ...
@overload
def l1_loss_with_grad(pred: ArrayLike, target: ArrayLike, *,
                      reduction: Literal["mean", "sum"] = ...,
                      sample_weight: ArrayLike | None = ...,
                      out: NDArray[Any] | None = ...) -> tuple[_Floating, _FArray]: ...
@overload
def l1_loss_with_grad(pred: ArrayLike, target: ArrayLike, *, reduction: str = ...,
                      sample_weight: ArrayLike | None = ...,
                      out: NDArray[Any] | None = ...) -> tuple[_Floating | _FArray, _FArray]: ...
@_docs.doc(loss="l1_loss")
def l1_loss_with_grad(pred: ArrayLike, target: ArrayLike, *, reduction: str = "sum",
                      sample_weight: ArrayLike | None = None,
                      out: NDArray[Any] | None = None) -> Any:
    """``(l1_loss, l1_loss_grad)`` from one fused pass.

    {pointwise_parameters}
    {out_pointwise}

    Returns
    -------
    {returns_with_grad}

    Notes
    -----
    Formula: loss ``sum |d|``, gradient ``sign(d)`` (0 at 0), ``d = pred -
    target``, for the default ``reduction="sum"``.

    {pointwise_pass}

    Examples
    --------
    >>> import mlkern
    >>> loss, g = mlkern.l1_loss_with_grad([1.0, -2.0], [0.0, 0.0])
    >>> float(loss), g.tolist()
    (3.0, [1.0, -1.0])
    """
    return _pointwise("l1_loss_with_grad", _ABS, pred, target, reduction, sample_weight, True,
                      True, out)


@overload
def l2_loss(pred: NDArray[_F], target: ArrayLike, *, reduction: Literal["mean", "sum"] = ...,
            sample_weight: ArrayLike | None = ...) -> _F: ...
@overload
def l2_loss(pred: NDArray[_F], target: ArrayLike, *, reduction: Literal["none"],
            sample_weight: ArrayLike | None = ...) -> NDArray[_F]: ...
@overload
def l2_loss(pred: ArrayLike, target: ArrayLike, *, reduction: Literal["mean", "sum"] = ...,
            sample_weight: ArrayLike | None = ...) -> _Floating: ...
@overload
def l2_loss(pred: ArrayLike, target: ArrayLike, *, reduction: str = ...,
            sample_weight: ArrayLike | None = ...) -> _Floating | _FArray: ...
@_docs.doc()
def l2_loss(pred: ArrayLike, target: ArrayLike, *, reduction: str = "sum",
            sample_weight: ArrayLike | None = None) -> Any:
    """L2 loss: ``sum((pred - target)**2)``.

    The default is ``reduction="sum"``; ``"mean"`` is :func:`mse`.

    {pointwise_parameters}

    Returns
    -------
    {returns_loss}

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


@overload
def l2_loss_grad(pred: NDArray[_F], target: ArrayLike, *, reduction: str = ...,
                 sample_weight: ArrayLike | None = ...,
                 out: NDArray[_F] | None = ...) -> NDArray[_F]: ...
@overload
def l2_loss_grad(pred: ArrayLike, target: ArrayLike, *, reduction: str = ...,
                 sample_weight: ArrayLike | None = ...,
                 out: NDArray[Any] | None = ...) -> _FArray: ...
@_docs.doc()
def l2_loss_grad(pred: ArrayLike, target: ArrayLike, *, reduction: str = "sum",
                 sample_weight: ArrayLike | None = None, out: NDArray[Any] | None = None) -> Any:
    """Gradient of :func:`l2_loss`: ``2 (pred - target)``.

    {pointwise_parameters}
    {out_pointwise}

    Returns
    -------
    {returns_grad}

    Notes
    -----
    Formula: ``2 d``, ``d = pred - target`` (the default reduction is ``"sum"``).

    {pointwise_scaled}

    {pointwise_pass}

    Examples
    --------
    >>> import mlkern
    >>> mlkern.l2_loss_grad([1.0, -2.0], [0.0, 0.0]).tolist()
    [2.0, -4.0]
    """
    return _pointwise("l2_loss_grad", _SQ, pred, target, reduction, sample_weight, False, True,
                      out)


@overload
def l2_loss_with_grad(pred: NDArray[_F], target: ArrayLike, *,
                      reduction: Literal["mean", "sum"] = ...,
                      sample_weight: ArrayLike | None = ...,
                      out: NDArray[_F] | None = ...) -> tuple[_F, NDArray[_F]]: ...
@overload
def l2_loss_with_grad(pred: NDArray[_F], target: ArrayLike, *, reduction: Literal["none"],
                      sample_weight: ArrayLike | None = ...,
                      out: NDArray[_F] | None = ...) -> tuple[NDArray[_F], NDArray[_F]]: ...
@overload
def l2_loss_with_grad(pred: ArrayLike, target: ArrayLike, *,
                      reduction: Literal["mean", "sum"] = ...,
                      sample_weight: ArrayLike | None = ...,
                      out: NDArray[Any] | None = ...) -> tuple[_Floating, _FArray]: ...
@overload
def l2_loss_with_grad(pred: ArrayLike, target: ArrayLike, *, reduction: str = ...,
                      sample_weight: ArrayLike | None = ...,
                      out: NDArray[Any] | None = ...) -> tuple[_Floating | _FArray, _FArray]: ...
@_docs.doc(loss="l2_loss")
def l2_loss_with_grad(pred: ArrayLike, target: ArrayLike, *, reduction: str = "sum",
                      sample_weight: ArrayLike | None = None,
                      out: NDArray[Any] | None = None) -> Any:
    """``(l2_loss, l2_loss_grad)`` from one fused pass.

    {pointwise_parameters}
    {out_pointwise}

    Returns
    -------
    {returns_with_grad}

    Notes
    -----
    Formula: loss ``sum d^2``, gradient ``2d``, ``d = pred - target``, for the
    default ``reduction="sum"``.

    {pointwise_pass}

    Examples
    --------
    >>> import mlkern
    >>> loss, g = mlkern.l2_loss_with_grad([1.0, -2.0], [0.0, 0.0])
    >>> float(loss), g.tolist()
    (5.0, [2.0, -4.0])
    """
    return _pointwise("l2_loss_with_grad", _SQ, pred, target, reduction, sample_weight, True,
                      True, out)


@overload
def quadratic_cost(pred: NDArray[_F], target: ArrayLike, *,
                   reduction: Literal["mean", "sum"] = ...,
                   sample_weight: ArrayLike | None = ...) -> _F: ...
@overload
def quadratic_cost(pred: NDArray[_F], target: ArrayLike, *, reduction: Literal["none"],
                   sample_weight: ArrayLike | None = ...) -> NDArray[_F]: ...
@overload
def quadratic_cost(pred: ArrayLike, target: ArrayLike, *, reduction: Literal["mean", "sum"] = ...,
                   sample_weight: ArrayLike | None = ...) -> _Floating: ...
@overload
def quadratic_cost(pred: ArrayLike, target: ArrayLike, *, reduction: str = ...,
                   sample_weight: ArrayLike | None = ...) -> _Floating | _FArray: ...
@_docs.doc()
def quadratic_cost(pred: ArrayLike, target: ArrayLike, *, reduction: str = "sum",
                   sample_weight: ArrayLike | None = None) -> Any:
    """Quadratic cost: ``0.5 * sum((pred - target)**2)``.

    The default is ``reduction="sum"``.

    {pointwise_parameters}

    Returns
    -------
    {returns_loss}

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


@overload
def quadratic_cost_grad(pred: NDArray[_F], target: ArrayLike, *, reduction: str = ...,
                        sample_weight: ArrayLike | None = ...,
                        out: NDArray[_F] | None = ...) -> NDArray[_F]: ...
@overload
def quadratic_cost_grad(pred: ArrayLike, target: ArrayLike, *, reduction: str = ...,
                        sample_weight: ArrayLike | None = ...,
                        out: NDArray[Any] | None = ...) -> _FArray: ...
@_docs.doc()
def quadratic_cost_grad(pred: ArrayLike, target: ArrayLike, *, reduction: str = "sum",
                        sample_weight: ArrayLike | None = None,
                        out: NDArray[Any] | None = None) -> Any:
    """Gradient of :func:`quadratic_cost`: ``pred - target``.

    {pointwise_parameters}
    {out_pointwise}

    Returns
    -------
    {returns_grad}

    Notes
    -----
    Formula: ``d = pred - target`` (the kernel's ``2d`` times 1/2, exact); the
    default reduction is ``"sum"``.

    {pointwise_scaled}

    {pointwise_pass}

    Examples
    --------
    >>> import mlkern
    >>> mlkern.quadratic_cost_grad([1.0, -2.0], [0.0, 0.0]).tolist()
    [1.0, -2.0]
    """
    return _pointwise("quadratic_cost_grad", _SQ, pred, target, reduction, sample_weight, False,
                      True, out, lscale=0.5, gmul=0.5)


@overload
def quadratic_cost_with_grad(pred: NDArray[_F], target: ArrayLike, *,
                             reduction: Literal["mean", "sum"] = ...,
                             sample_weight: ArrayLike | None = ...,
                             out: NDArray[_F] | None = ...) -> tuple[_F, NDArray[_F]]: ...
@overload
def quadratic_cost_with_grad(pred: NDArray[_F], target: ArrayLike, *, reduction: Literal["none"],
                             sample_weight: ArrayLike | None = ...,
                             out: NDArray[_F] | None = ...) -> tuple[NDArray[_F], NDArray[_F]]: ...
@overload
def quadratic_cost_with_grad(pred: ArrayLike, target: ArrayLike, *,
                             reduction: Literal["mean", "sum"] = ...,
                             sample_weight: ArrayLike | None = ...,
                             out: NDArray[Any] | None = ...) -> tuple[_Floating, _FArray]: ...
@overload
def quadratic_cost_with_grad(
        pred: ArrayLike, target: ArrayLike, *, reduction: str = ...,
        sample_weight: ArrayLike | None = ...,
        out: NDArray[Any] | None = ...) -> tuple[_Floating | _FArray, _FArray]: ...
@_docs.doc(loss="quadratic_cost")
def quadratic_cost_with_grad(pred: ArrayLike, target: ArrayLike, *, reduction: str = "sum",
                             sample_weight: ArrayLike | None = None,
                             out: NDArray[Any] | None = None) -> Any:
    """``(quadratic_cost, quadratic_cost_grad)`` from one fused pass.

    {pointwise_parameters}
    {out_pointwise}

    Returns
    -------
    {returns_with_grad}

    Notes
    -----
    Formula: loss ``1/2 sum d^2``, gradient ``d``, ``d = pred - target``, for
    the default ``reduction="sum"``.

    {pointwise_pass}

    Examples
    --------
    >>> import mlkern
    >>> loss, g = mlkern.quadratic_cost_with_grad([1.0, -2.0], [0.0, 0.0])
    >>> float(loss), g.tolist()
    (2.5, [1.0, -2.0])
    """
    return _pointwise("quadratic_cost_with_grad", _SQ, pred, target, reduction, sample_weight,
                      True, True, out, lscale=0.5, gmul=0.5)


@overload
def huber(pred: NDArray[_F], target: ArrayLike, *, delta: float = ...,
          reduction: Literal["mean", "sum"] = ...,
          sample_weight: ArrayLike | None = ...) -> _F: ...
@overload
def huber(pred: NDArray[_F], target: ArrayLike, *, delta: float = ..., reduction: Literal["none"],
          sample_weight: ArrayLike | None = ...) -> NDArray[_F]: ...
@overload
def huber(pred: ArrayLike, target: ArrayLike, *, delta: float = ...,
          reduction: Literal["mean", "sum"] = ...,
          sample_weight: ArrayLike | None = ...) -> _Floating: ...
@overload
def huber(pred: ArrayLike, target: ArrayLike, *, delta: float = ..., reduction: str = ...,
          sample_weight: ArrayLike | None = ...) -> _Floating | _FArray: ...
@_docs.doc()
def huber(pred: ArrayLike, target: ArrayLike, *, delta: float = 1.0, reduction: str = "mean",
          sample_weight: ArrayLike | None = None) -> Any:
    """Huber loss (PyTorch's ``huber_loss``), quadratic near 0 and linear beyond ``delta``.

    ``d**2 / 2`` where ``|d| <= delta``, ``delta (|d| - delta/2)`` beyond,
    d = pred - target.

    {pointwise_parameters}
    delta : float, optional
        The switch point, > 0 (default 1).

    Returns
    -------
    {returns_loss}

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
                      delta=check_delta(delta, "huber"))


@overload
def huber_grad(pred: NDArray[_F], target: ArrayLike, *, delta: float = ..., reduction: str = ...,
               sample_weight: ArrayLike | None = ...,
               out: NDArray[_F] | None = ...) -> NDArray[_F]: ...
@overload
def huber_grad(pred: ArrayLike, target: ArrayLike, *, delta: float = ..., reduction: str = ...,
               sample_weight: ArrayLike | None = ...,
               out: NDArray[Any] | None = ...) -> _FArray: ...
@_docs.doc()
def huber_grad(pred: ArrayLike, target: ArrayLike, *, delta: float = 1.0, reduction: str = "mean",
               sample_weight: ArrayLike | None = None, out: NDArray[Any] | None = None) -> Any:
    """Gradient of :func:`huber`: ``clip(pred - target, -delta, delta)``.

    Scaled by the reduction.

    {pointwise_parameters}
    delta : float, optional
        The switch point, > 0 (default 1).
    {out_pointwise}

    Returns
    -------
    {returns_grad}

    Notes
    -----
    Formula: ``clip(d, -delta, delta)``, ``d = pred - target`` (NaN passes
    through).

    {pointwise_scaled}

    {pointwise_pass}

    Examples
    --------
    >>> import mlkern
    >>> mlkern.huber_grad([0.5, 3.0], [0.0, 0.0], reduction="sum").tolist()
    [0.5, 1.0]
    """
    return _pointwise("huber_grad", _HUBER, pred, target, reduction, sample_weight, False, True,
                      out, delta=check_delta(delta, "huber_grad"))


@overload
def huber_with_grad(pred: NDArray[_F], target: ArrayLike, *, delta: float = ...,
                    reduction: Literal["mean", "sum"] = ..., sample_weight: ArrayLike | None = ...,
                    out: NDArray[_F] | None = ...) -> tuple[_F, NDArray[_F]]: ...
@overload
def huber_with_grad(pred: NDArray[_F], target: ArrayLike, *, delta: float = ...,
                    reduction: Literal["none"], sample_weight: ArrayLike | None = ...,
                    out: NDArray[_F] | None = ...) -> tuple[NDArray[_F], NDArray[_F]]: ...
@overload
def huber_with_grad(pred: ArrayLike, target: ArrayLike, *, delta: float = ...,
                    reduction: Literal["mean", "sum"] = ..., sample_weight: ArrayLike | None = ...,
                    out: NDArray[Any] | None = ...) -> tuple[_Floating, _FArray]: ...
@overload
def huber_with_grad(pred: ArrayLike, target: ArrayLike, *, delta: float = ...,
                    reduction: str = ..., sample_weight: ArrayLike | None = ...,
                    out: NDArray[Any] | None = ...) -> tuple[_Floating | _FArray, _FArray]: ...
@_docs.doc(loss="huber")
def huber_with_grad(pred: ArrayLike, target: ArrayLike, *, delta: float = 1.0,
                    reduction: str = "mean", sample_weight: ArrayLike | None = None,
                    out: NDArray[Any] | None = None) -> Any:
    """``(huber, huber_grad)`` from one fused pass.

    {pointwise_parameters}
    delta : float, optional
        The switch point, > 0 (default 1).
    {out_pointwise}

    Returns
    -------
    {returns_with_grad}

    Notes
    -----
    Formula: loss ``d^2/2`` for ``|d| <= delta``, ``delta (|d| - delta/2)``
    beyond; gradient ``clip(d, -delta, delta)``.

    {pointwise_pass}

    Examples
    --------
    >>> import mlkern
    >>> loss, g = mlkern.huber_with_grad([0.5, 3.0], [0.0, 0.0], delta=2.0)
    >>> float(loss), g.tolist()
    (2.0625, [0.25, 1.0])
    """
    return _pointwise("huber_with_grad", _HUBER, pred, target, reduction, sample_weight, True,
                      True, out, delta=check_delta(delta, "huber_with_grad"))


_BCE_NAMES = ("prob", "target")


@overload
def binary_cross_entropy(prob: NDArray[_F], target: ArrayLike, *,
                         reduction: Literal["mean", "sum"] = ...,
                         sample_weight: ArrayLike | None = ...) -> _F: ...
@overload
def binary_cross_entropy(prob: NDArray[_F], target: ArrayLike, *, reduction: Literal["none"],
                         sample_weight: ArrayLike | None = ...) -> NDArray[_F]: ...
@overload
def binary_cross_entropy(prob: ArrayLike, target: ArrayLike, *,
                         reduction: Literal["mean", "sum"] = ...,
                         sample_weight: ArrayLike | None = ...) -> _Floating: ...
@overload
def binary_cross_entropy(prob: ArrayLike, target: ArrayLike, *, reduction: str = ...,
                         sample_weight: ArrayLike | None = ...) -> _Floating | _FArray: ...
@_docs.doc(p="prob", p_param="{prob}")
def binary_cross_entropy(prob: ArrayLike, target: ArrayLike, *, reduction: str = "mean",
                         sample_weight: ArrayLike | None = None) -> Any:
    """Binary cross-entropy of probabilities: ``-(t log p + (1 - t) log(1 - p))``.

    Each log is clamped at -100 (as PyTorch), so p = 0 or 1 gives a finite loss.

    {pointwise_parameters}

    Returns
    -------
    {returns_loss}

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
    return _pointwise("binary_cross_entropy", _BCE, check_probs(prob, "binary_cross_entropy"), target,
                      reduction, sample_weight, True, False, None, names=_BCE_NAMES)


@overload
def binary_cross_entropy_grad(prob: NDArray[_F], target: ArrayLike, *, reduction: str = ...,
                              sample_weight: ArrayLike | None = ...,
                              out: NDArray[_F] | None = ...) -> NDArray[_F]: ...
@overload
def binary_cross_entropy_grad(prob: ArrayLike, target: ArrayLike, *, reduction: str = ...,
                              sample_weight: ArrayLike | None = ...,
                              out: NDArray[Any] | None = ...) -> _FArray: ...
@_docs.doc(p="prob", p_param="{prob}")
def binary_cross_entropy_grad(prob: ArrayLike, target: ArrayLike, *, reduction: str = "mean",
                              sample_weight: ArrayLike | None = None,
                              out: NDArray[Any] | None = None) -> Any:
    """Gradient of :func:`binary_cross_entropy` with respect to prob.

    ``(p - t) / max(p (1 - p), 1e-12)``, scaled by the reduction.

    {pointwise_parameters}
    {out_pointwise}

    Returns
    -------
    {returns_grad}

    Notes
    -----
    Formula: ``(p - t) / max(p (1 - p), 1e-12)`` (as PyTorch: the clamp keeps
    ``p = 0`` or ``1`` finite).  ``prob`` must lie in [0, 1] (``ValueError``
    otherwise).  For logits, :func:`binary_cross_entropy_with_logits_grad` is
    the accurate form.

    {pointwise_scaled}

    {pointwise_pass}

    Examples
    --------
    >>> import mlkern
    >>> mlkern.binary_cross_entropy_grad([0.5], [1.0]).tolist()
    [-2.0]
    """
    return _pointwise("binary_cross_entropy_grad", _BCE,
                      check_probs(prob, "binary_cross_entropy_grad"), target, reduction, sample_weight,
                      False, True, out, names=_BCE_NAMES)


@overload
def binary_cross_entropy_with_grad(prob: NDArray[_F], target: ArrayLike, *,
                                   reduction: Literal["mean", "sum"] = ...,
                                   sample_weight: ArrayLike | None = ...,
                                   out: NDArray[_F] | None = ...) -> tuple[_F, NDArray[_F]]: ...
@overload
def binary_cross_entropy_with_grad(
        prob: NDArray[_F], target: ArrayLike, *, reduction: Literal["none"],
        sample_weight: ArrayLike | None = ...,
        out: NDArray[_F] | None = ...) -> tuple[NDArray[_F], NDArray[_F]]: ...
@overload
def binary_cross_entropy_with_grad(
        prob: ArrayLike, target: ArrayLike, *, reduction: Literal["mean", "sum"] = ...,
        sample_weight: ArrayLike | None = ...,
        out: NDArray[Any] | None = ...) -> tuple[_Floating, _FArray]: ...
@overload
def binary_cross_entropy_with_grad(
        prob: ArrayLike, target: ArrayLike, *, reduction: str = ...,
        sample_weight: ArrayLike | None = ...,
        out: NDArray[Any] | None = ...) -> tuple[_Floating | _FArray, _FArray]: ...
@_docs.doc(p="prob", p_param="{prob}", loss="binary_cross_entropy")
def binary_cross_entropy_with_grad(prob: ArrayLike, target: ArrayLike, *, reduction: str = "mean",
                                   sample_weight: ArrayLike | None = None,
                                   out: NDArray[Any] | None = None) -> Any:
    """``(binary_cross_entropy, binary_cross_entropy_grad)`` from one pass.

    {pointwise_parameters}
    {out_pointwise}

    Returns
    -------
    {returns_with_grad}

    Notes
    -----
    Formula: loss ``-(t log p + (1-t) log(1-p))``, each log clamped at -100
    and ``log(1 - p)`` taken as ``log1p(-p)``; gradient ``(p - t) / max(p (1 -
    p), 1e-12)``.

    {pointwise_pass}

    Examples
    --------
    >>> import mlkern
    >>> loss, g = mlkern.binary_cross_entropy_with_grad([0.5], [1.0])
    >>> float(loss), g.tolist()
    (0.6931471805599453, [-2.0])
    """
    return _pointwise("binary_cross_entropy_with_grad", _BCE,
                      check_probs(prob, "binary_cross_entropy_with_grad"), target, reduction,
                      sample_weight, True, True, out, names=_BCE_NAMES)


_BCEL_NAMES = ("logits", "target")


@overload
def binary_cross_entropy_with_logits(logits: NDArray[_F], target: ArrayLike, *,
                                     pos_weight: ArrayLike | None = ...,
                                     reduction: Literal["mean", "sum"] = ...,
                                     sample_weight: ArrayLike | None = ...) -> _F: ...
@overload
def binary_cross_entropy_with_logits(logits: NDArray[_F], target: ArrayLike, *,
                                     pos_weight: ArrayLike | None = ...,
                                     reduction: Literal["none"],
                                     sample_weight: ArrayLike | None = ...) -> NDArray[_F]: ...
@overload
def binary_cross_entropy_with_logits(logits: ArrayLike, target: ArrayLike, *,
                                     pos_weight: ArrayLike | None = ...,
                                     reduction: Literal["mean", "sum"] = ...,
                                     sample_weight: ArrayLike | None = ...) -> _Floating: ...
@overload
def binary_cross_entropy_with_logits(
        logits: ArrayLike, target: ArrayLike, *, pos_weight: ArrayLike | None = ...,
        reduction: str = ..., sample_weight: ArrayLike | None = ...) -> _Floating | _FArray: ...
@_docs.doc(p="logits", p_param="{logits_pointwise}")
def binary_cross_entropy_with_logits(logits: ArrayLike, target: ArrayLike, *,
                                     pos_weight: ArrayLike | None = None, reduction: str = "mean",
                                     sample_weight: ArrayLike | None = None) -> Any:
    """Binary cross-entropy from logits z: ``max(z, 0) - z t + log1p(exp(-|z|))``.

    {pointwise_parameters}
    {pos_weight}
    Returns
    -------
    {returns_loss}

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


@overload
def binary_cross_entropy_with_logits_grad(logits: NDArray[_F], target: ArrayLike, *,
                                          pos_weight: ArrayLike | None = ..., reduction: str = ...,
                                          sample_weight: ArrayLike | None = ...,
                                          out: NDArray[_F] | None = ...) -> NDArray[_F]: ...
@overload
def binary_cross_entropy_with_logits_grad(logits: ArrayLike, target: ArrayLike, *,
                                          pos_weight: ArrayLike | None = ..., reduction: str = ...,
                                          sample_weight: ArrayLike | None = ...,
                                          out: NDArray[Any] | None = ...) -> _FArray: ...
@_docs.doc(p="logits", p_param="{logits_pointwise}")
def binary_cross_entropy_with_logits_grad(logits: ArrayLike, target: ArrayLike, *,
                                          pos_weight: ArrayLike | None = None,
                                          reduction: str = "mean",
                                          sample_weight: ArrayLike | None = None,
                                          out: NDArray[Any] | None = None) -> Any:
    """Gradient of :func:`binary_cross_entropy_with_logits`: ``sigmoid(z) - t``.

    With respect to the logits; with pos_weight w it is
    ``(1 - t) - (1 + (w - 1) t) sigmoid(-z)``; scaled by the reduction.

    {pointwise_parameters}
    {pos_weight}
    {out_pointwise}

    Returns
    -------
    {returns_grad}

    Notes
    -----
    Formula: ``((1 - t) a - w t b) / (1 + e)`` with ``e = exp(-|z|)``, ``w``
    the pos_weight, ``a = 1, b = e`` for ``z >= 0`` and ``a = e, b = 1``
    below.  This is ``sigmoid(z) - t`` (for ``w = 1``) without
    the cancellation of ``1 - sigmoid``: one exponential that never
    overflows and one reciprocal, so ``t = 1, z = 37`` gives ``-exp(-37) /
    (1 + exp(-37))``, not 0.

    {pointwise_scaled}

    {pointwise_pass}

    Examples
    --------
    >>> import mlkern
    >>> g = mlkern.binary_cross_entropy_with_logits_grad([37.0], [1.0])
    >>> print(f"{g[0]:.12e}")      # -exp(-37)/(1 + exp(-37)), not 0
    -8.533047625744e-17
    """
    return _pointwise("binary_cross_entropy_with_logits_grad", _BCEL, logits, target, reduction,
                      sample_weight, False, True, out, names=_BCEL_NAMES, pos_weight=pos_weight)


@overload
def binary_cross_entropy_with_logits_with_grad(
        logits: NDArray[_F], target: ArrayLike, *, pos_weight: ArrayLike | None = ...,
        reduction: Literal["mean", "sum"] = ..., sample_weight: ArrayLike | None = ...,
        out: NDArray[_F] | None = ...) -> tuple[_F, NDArray[_F]]: ...
@overload
def binary_cross_entropy_with_logits_with_grad(
        logits: NDArray[_F], target: ArrayLike, *, pos_weight: ArrayLike | None = ...,
        reduction: Literal["none"], sample_weight: ArrayLike | None = ...,
        out: NDArray[_F] | None = ...) -> tuple[NDArray[_F], NDArray[_F]]: ...
@overload
def binary_cross_entropy_with_logits_with_grad(
        logits: ArrayLike, target: ArrayLike, *, pos_weight: ArrayLike | None = ...,
        reduction: Literal["mean", "sum"] = ..., sample_weight: ArrayLike | None = ...,
        out: NDArray[Any] | None = ...) -> tuple[_Floating, _FArray]: ...
@overload
def binary_cross_entropy_with_logits_with_grad(
        logits: ArrayLike, target: ArrayLike, *, pos_weight: ArrayLike | None = ...,
        reduction: str = ..., sample_weight: ArrayLike | None = ...,
        out: NDArray[Any] | None = ...) -> tuple[_Floating | _FArray, _FArray]: ...
@_docs.doc(p="logits", p_param="{logits_pointwise}", loss="binary_cross_entropy_with_logits")
def binary_cross_entropy_with_logits_with_grad(logits: ArrayLike, target: ArrayLike, *,
                                               pos_weight: ArrayLike | None = None,
                                               reduction: str = "mean",
                                               sample_weight: ArrayLike | None = None,
                                               out: NDArray[Any] | None = None) -> Any:
    """``(binary_cross_entropy_with_logits, its gradient)`` from one fused pass.

    One exponential and one log1p per element.

    {pointwise_parameters}
    {pos_weight}
    {out_pointwise}

    Returns
    -------
    {returns_with_grad}

    Notes
    -----
    Formula: loss ``c |z| + L log1p(e)``, ``e = exp(-|z|)``, ``c = 1 - t`` for
    ``z >= 0`` and ``w t`` below, ``L = 1 + (w - 1) t`` (``w = 1``:
    ``max(z,0) - z t + log1p(e^{-|z|})``); gradient as in
    :func:`binary_cross_entropy_with_logits_grad`.  The reciprocal
    ``1/(1 + e)`` is shared by the log1p and the gradient.

    {pointwise_pass}

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


# ---------------------------------------------------------------------------
# kl_div: a row kernel (mlk_kl) along the axis
# ---------------------------------------------------------------------------

def _kl(fname, p, q, axis, log_q, reduction, sample_weight, want_loss, want_grad, out,
        _denom=None, _partial=False):
    check_reduction(reduction, fname)
    if any_dask(p, q, sample_weight):
        from . import _dask
        return _dask.kl(fname, p, q, axis, log_q, reduction, sample_weight, want_loss, want_grad,
                        out)
    qa, pa, rdt = loss_pair(q, p, ("q", "p"), fname, "C")
    ax = check_axis(axis, qa.ndim, fname)
    n = qa.shape[ax]
    rshape = qa.shape[:ax] + qa.shape[ax + 1:]
    sw = None
    if sample_weight is not None:
        s = real_array(sample_weight, "sample_weight", fname)
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
    if _denom is not None and reduction == "mean":
        denom = _denom
    with np.errstate(divide="ignore", invalid="ignore"):
        gscale = float(np.float64(1.0) / np.float64(denom))
    g = None
    if want_grad:
        if (out is not None and last and out.dtype == qa.dtype and out.flags.c_contiguous
                and writable_direct(out, qa, pa)):
            g = out
        else:
            g = np.empty(qa.shape, qa.dtype)
    rsum = np.zeros(rows, np.float64)
    _ew.kl_raw(pa, qa, bool(log_q), g, sw, gscale, rsum, rows, n)
    res_loss = res_grad = None
    if _partial:
        res_loss = float(np.sum(rsum * sw if sw is not None else rsum))
    elif want_loss:
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


@overload
def kl_div(p: NDArray[_F], q: ArrayLike, axis: SupportsIndex = ..., *, log_q: bool = ...,
           reduction: Literal["mean", "sum"] = ...,
           sample_weight: ArrayLike | None = ...) -> _F: ...
@overload
def kl_div(p: NDArray[_F], q: ArrayLike, axis: SupportsIndex = ..., *, log_q: bool = ...,
           reduction: Literal["none"], sample_weight: ArrayLike | None = ...) -> NDArray[_F]: ...
@overload
def kl_div(p: ArrayLike, q: ArrayLike, axis: SupportsIndex = ..., *, log_q: bool = ...,
           reduction: Literal["mean", "sum"] = ...,
           sample_weight: ArrayLike | None = ...) -> _Floating: ...
@overload
def kl_div(p: ArrayLike, q: ArrayLike, axis: SupportsIndex = ..., *, log_q: bool = ...,
           reduction: str = ..., sample_weight: ArrayLike | None = ...) -> _Floating | _FArray: ...
@_docs.doc()
def kl_div(p: ArrayLike, q: ArrayLike, axis: SupportsIndex = -1, *, log_q: bool = False,
           reduction: str = "mean", sample_weight: ArrayLike | None = None) -> Any:
    """Kullback-Leibler divergence KL(p || q) = ``sum p (log p - log q)`` along ``axis``.

    A term is 0 where p == 0 (0 log 0 = 0).

    {kl_parameters}

    Returns
    -------
    {returns_loss}

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


@overload
def kl_div_grad(p: NDArray[_F], q: ArrayLike, axis: SupportsIndex = ..., *, log_q: bool = ...,
                reduction: str = ..., sample_weight: ArrayLike | None = ...,
                out: NDArray[_F] | None = ...) -> NDArray[_F]: ...
@overload
def kl_div_grad(p: ArrayLike, q: ArrayLike, axis: SupportsIndex = ..., *, log_q: bool = ...,
                reduction: str = ..., sample_weight: ArrayLike | None = ...,
                out: NDArray[Any] | None = ...) -> _FArray: ...
@_docs.doc()
def kl_div_grad(p: ArrayLike, q: ArrayLike, axis: SupportsIndex = -1, *, log_q: bool = False,
                reduction: str = "mean", sample_weight: ArrayLike | None = None,
                out: NDArray[Any] | None = None) -> Any:
    """Gradient of :func:`kl_div` with respect to q: ``-p/q`` (0 where p == 0).

    ``-p`` with respect to log q when ``log_q``; scaled by the reduction.

    {kl_parameters}
    {out_kl}

    Returns
    -------
    grad : ndarray
        q's shape and float dtype (``out`` if given).

    Notes
    -----
    Formula: ``-p/q`` (0 where p == 0), or ``-p`` with respect to log q when
    ``log_q``, times the row's scale: ``w_r / sum w`` for ``"mean"`` (``1 /
    rows`` without sample weights), ``w_r`` (or 1) for ``"sum"`` and
    ``"none"``.  One pass over p and q: the ratio ``p/q`` is the one the
    loss takes its log of.

    Examples
    --------
    >>> import mlkern
    >>> mlkern.kl_div_grad([0.5, 0.5, 0.0], [0.25, 0.25, 0.5]).tolist()
    [-2.0, -2.0, 0.0]
    """
    return _kl("kl_div_grad", p, q, axis, log_q, reduction, sample_weight, False, True, out)


@overload
def kl_div_with_grad(p: NDArray[_F], q: ArrayLike, axis: SupportsIndex = ..., *, log_q: bool = ...,
                     reduction: Literal["mean", "sum"] = ...,
                     sample_weight: ArrayLike | None = ...,
                     out: NDArray[_F] | None = ...) -> tuple[_F, NDArray[_F]]: ...
@overload
def kl_div_with_grad(p: NDArray[_F], q: ArrayLike, axis: SupportsIndex = ..., *, log_q: bool = ...,
                     reduction: Literal["none"], sample_weight: ArrayLike | None = ...,
                     out: NDArray[_F] | None = ...) -> tuple[NDArray[_F], NDArray[_F]]: ...
@overload
def kl_div_with_grad(p: ArrayLike, q: ArrayLike, axis: SupportsIndex = ..., *, log_q: bool = ...,
                     reduction: Literal["mean", "sum"] = ...,
                     sample_weight: ArrayLike | None = ...,
                     out: NDArray[Any] | None = ...) -> tuple[_Floating, _FArray]: ...
@overload
def kl_div_with_grad(p: ArrayLike, q: ArrayLike, axis: SupportsIndex = ..., *, log_q: bool = ...,
                     reduction: str = ..., sample_weight: ArrayLike | None = ...,
                     out: NDArray[Any] | None = ...) -> tuple[_Floating | _FArray, _FArray]: ...
@_docs.doc(p="q", loss="kl_div")
def kl_div_with_grad(p: ArrayLike, q: ArrayLike, axis: SupportsIndex = -1, *, log_q: bool = False,
                     reduction: str = "mean", sample_weight: ArrayLike | None = None,
                     out: NDArray[Any] | None = None) -> Any:
    """``(kl_div, kl_div_grad)`` from one pass over p and q.

    {kl_parameters}
    {out_kl}

    Returns
    -------
    {returns_with_grad}

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


# ---------------------------------------------------------------------------
# penalties: the pointwise kernel with t = w (not read)
# ---------------------------------------------------------------------------

def _penalty(fname, op, w, lam, want_loss, out):
    lam = check_real(lam, "lam", nonnegative=True)
    if any_dask(w):
        from . import _dask
        return _dask.penalty(fname, op, w, lam, want_loss, out)
    wa, rdt = as_float_array(w, "w")
    if out is not None:
        check_out(out, wa.shape, rdt)
    if want_loss:
        if not wa.size:
            return rdt.type(0.0)
        bsum = _ew.ploss_raw(op, flat(wa), flat(wa), None, None, None, 1, None, 1, 0)
        return rdt.type(lam * float(np.sum(bsum)))
    g = result_array(wa, out, rdt)
    if wa.size:
        # SQ0 has l' = 2w and ABS0 sign(w): the scale is lam in both cases
        _ew.ploss_raw(op, flat(wa), flat(wa), None, flat(g), None, 1, None, 1, 0, gscale=lam)
    return finish(g, out, rdt, g.ndim == 0)


@overload
def l1_penalty(w: NDArray[_F], lam: float) -> _F: ...
@overload
def l1_penalty(w: ArrayLike, lam: float) -> _Floating: ...
@_docs.doc()
def l1_penalty(w: ArrayLike, lam: float) -> Any:
    """L1 penalty ``lam * sum(|w|)``.

    Parameters
    ----------
    {w_penalty}
    {lam}

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


@overload
def l1_penalty_grad(w: NDArray[_F], lam: float, *,
                    out: NDArray[_F] | None = ...) -> NDArray[_F]: ...
@overload
def l1_penalty_grad(w: ArrayLike, lam: float, *, out: NDArray[Any] | None = ...) -> _FArray: ...
@_docs.doc()
def l1_penalty_grad(w: ArrayLike, lam: float, *, out: NDArray[Any] | None = None) -> Any:
    """Gradient of :func:`l1_penalty`: ``lam * sign(w)`` (0 at 0).

    Parameters
    ----------
    {w_penalty}
    {lam}
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


@overload
def l2_penalty(w: NDArray[_F], lam: float) -> _F: ...
@overload
def l2_penalty(w: ArrayLike, lam: float) -> _Floating: ...
@_docs.doc()
def l2_penalty(w: ArrayLike, lam: float) -> Any:
    """L2 penalty ``lam * sum(w**2)``.

    Parameters
    ----------
    {w_penalty}
    {lam}

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


@overload
def l2_penalty_grad(w: NDArray[_F], lam: float, *,
                    out: NDArray[_F] | None = ...) -> NDArray[_F]: ...
@overload
def l2_penalty_grad(w: ArrayLike, lam: float, *, out: NDArray[Any] | None = ...) -> _FArray: ...
@_docs.doc()
def l2_penalty_grad(w: ArrayLike, lam: float, *, out: NDArray[Any] | None = None) -> Any:
    """Gradient of :func:`l2_penalty`: ``2 lam w``.

    Parameters
    ----------
    {w_penalty}
    {lam}
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
