"""Row-wise functions along one axis: the softmax family and argmax.

Every function follows docs/contract.rst's conventions (float32/float64 kept,
integers and bools computed in float64, float16 computed in float32 and
returned as float16, complex refused; any layout; ``out=`` checked and
allowed to alias the input) and takes any ``axis``, negative included.  A
0-d input raises ``ValueError`` (there is no axis to reduce), as NumPy's
reductions do.

Layouts: a C-contiguous input is used as it is, whatever the axis (no
transposed copy), an F-contiguous input through its (C-contiguous)
transpose; any other layout is copied once, to C order.

The math: max, then one fused exp-and-sum pass (sums in float64, float32
included), then the scale (docs/implementation.rst).
Non-finite rows follow ``scipy.special``: a row with a +inf, or of all
-inf, gives NaN in softmax; logsumexp gives +inf, -inf for an all -inf or
empty row, NaN when the row holds a NaN; log_softmax is x - logsumexp(x)
with scipy's shift of 0 for such rows (``[inf, 0] -> [nan, -inf]``).  A NaN
makes only its own row NaN.

Dask: with a ``dask.array`` input the result is a lazy dask array; the
reduced axis must be in one chunk (else ``ValueError`` naming
``x.rechunk({axis: -1})``); ``argmax(axis=None)`` reduces across chunks
(docs/dask.rst).
"""
from __future__ import annotations

import math
from typing import Any, SupportsIndex, TypeVar, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import _docs
from . import _kernels as _ew
from ._ops import ROWWISE
from ._validation import (_as_layout, any_dask, as_float_array, as_float_pair, check_axis, check_out,
                          compute_dtype, finish, result_array, writable_direct)

__all__ = ["softmax", "log_softmax", "logsumexp", "softmax_backward",
           "log_softmax_backward", "softmax_jacobian", "argmax"]

# float arrays keep their dtype; anything else array-like computes in float64
_F = TypeVar("_F", bound=np.floating[Any])

# op codes, by name from the op table (_c/mlk_kernels.h)
_SOFTMAX, _LOG_SOFTMAX = ROWWISE["softmax"], ROWWISE["log_softmax"]
_LOGSUMEXP = ROWWISE["logsumexp"]
_SOFTMAX_BWD, _LOG_SOFTMAX_BWD = ROWWISE["softmax_backward"], ROWWISE["log_softmax_backward"]

_I64 = np.dtype(np.int64)


def _oriented(arr, axis):
    """A C-contiguous view of the C- or F-contiguous arr, the axis in that
    view, and whether the view is the transpose."""
    if arr.flags.c_contiguous:
        return arr, axis, False
    return arr.T, arr.ndim - 1 - axis, True


def _dims(shape, axis):
    return math.prod(shape[:axis]), shape[axis], math.prod(shape[axis + 1:])


def _reduced_out(out, w, ax, keepdims, tr, dtype):
    """The user's out= as the kernel's (outer, inner) C-contiguous target
    in the working orientation, or None if it cannot take it directly."""
    if out is None or out.dtype != dtype:
        return None
    ov = np.squeeze(out, axis=ax) if keepdims else out
    if tr:
        ov = ov.T
    if not ov.flags.c_contiguous or not writable_direct(ov, w):
        return None
    return ov


def _finish_reduced(wres, direct, out, tr, ax, keepdims, rdt):
    """A reduction's result from the kernel's (outer, inner) array: back in
    the input's orientation, the axis kept if asked, into out= or as a new
    array of dtype rdt (a NumPy scalar when 0-d)."""
    if direct is not None:
        return out
    res = wres.T if tr else wres
    if keepdims:
        res = np.expand_dims(res, ax)
    if out is not None:
        np.copyto(out, res, casting="unsafe")
        return out
    if res.dtype != rdt:
        res = res.astype(rdt)
    return res[()] if res.ndim == 0 else res


# ------------------------------------------------------------ forward
def _forward(op, fname, x, axis, out):
    r = _ew.rowwise_fast(op, x, axis, out)
    if r is not None:
        return r
    if any_dask(x):
        from . import _dask
        return _dask.rowwise(op, fname, x, axis, out)
    arr, rdt = as_float_array(x, "x")
    ax = check_axis(axis, arr.ndim, fname)
    if out is not None:
        check_out(out, arr.shape, rdt)
    res = result_array(arr, out, rdt)
    w, wax, tr = _oriented(arr, ax)
    if arr.size:
        outer, n, inner = _dims(w.shape, wax)
        _ew.rowwise_raw(op, w, w, res.T if tr else res, outer, n, inner)
    return finish(res, out, rdt, False)


@overload
def softmax(x: NDArray[_F], axis: SupportsIndex = ..., *,
            out: NDArray[_F] | None = ...) -> NDArray[_F]: ...
@overload
def softmax(x: ArrayLike, axis: SupportsIndex = ..., *,
            out: NDArray[Any] | None = ...) -> NDArray[np.floating[Any]]: ...
@_docs.doc()
def softmax(x: ArrayLike, axis: SupportsIndex = -1, *,
            out: NDArray[Any] | None = None) -> NDArray[np.floating[Any]]:
    """Softmax along ``axis``: ``exp(x - max) / sum(exp(x - max))``.

    Parameters
    ----------
    x : array_like
    axis : int, optional
        The axis to normalise over (default -1).  Any axis of a
        C-contiguous input is processed without a transposed copy.
    {out}

    Returns
    -------
    ndarray
        Same shape as ``x``; each row sums to 1 within eps*(4 + log2 n).

    Notes
    -----
    Formula: ``e^{x-m} / sum e^{x-m}, m = max``; the exponentials are stored,
    summed, then scaled by one reciprocal.  float64 row sums are
    compensated, so row sums are 1 within ``eps (4 + log2 n)``.

    The row sums are accumulated in float64 (float32 input included).  A
    row of all ``-inf`` or with a ``+inf`` gives NaN, as SciPy's
    ``scipy.special.softmax`` does; a NaN makes its own row NaN.

    Examples
    --------
    >>> import mlkern
    >>> mlkern.softmax([1000.0, 0.0, 0.0, 0.0]).tolist()
    [1.0, 0.0, 0.0, 0.0]
    >>> [round(v, 6) for v in mlkern.softmax([0.0, 1.0, 2.0]).tolist()]
    [0.090031, 0.244728, 0.665241]
    """
    return _forward(_SOFTMAX, "softmax", x, axis, out)


@overload
def log_softmax(x: NDArray[_F], axis: SupportsIndex = ..., *,
                out: NDArray[_F] | None = ...) -> NDArray[_F]: ...
@overload
def log_softmax(x: ArrayLike, axis: SupportsIndex = ..., *,
                out: NDArray[Any] | None = ...) -> NDArray[np.floating[Any]]: ...
def log_softmax(x: ArrayLike, axis: SupportsIndex = -1, *,
                out: NDArray[Any] | None = None) -> NDArray[np.floating[Any]]:
    """Log of the softmax along ``axis``: ``x - max - log(sum(exp(x - max)))``.

    Parameters
    ----------
    x : array_like
    axis : int, optional
        Default -1.
    out : ndarray, optional
        Result array; may be ``x``.

    Returns
    -------
    ndarray
        Same shape as ``x``; finite wherever the true value is
        representable.

    Notes
    -----
    Formula: ``(x - m) - log1p(R)``, ``R = sum_{x_j < m} e^{x_j - m} + (#max -
    1)``.

    The log term is ``log1p`` of the sum over the non-maximal elements, so
    the log-probability of a dominant element is accurate in relative
    terms (``log_softmax([0, -40])[0]`` is ``-4.248e-18``, not 0).
    Non-finite rows: as ``scipy.special.log_softmax`` (a ``+inf`` entry
    gives NaN there and ``-inf`` elsewhere; an all ``-inf`` row is NaN).

    Examples
    --------
    >>> import mlkern
    >>> mlkern.log_softmax([0.0, -40.0]).tolist()
    [-4.248354255291589e-18, -40.0]
    """
    return _forward(_LOG_SOFTMAX, "log_softmax", x, axis, out)


def logsumexp(x: ArrayLike, axis: SupportsIndex = -1, *, keepdims: bool = False,
              out: NDArray[Any] | None = None) -> Any:
    """``log(sum(exp(x)))`` along ``axis``, without overflow or underflow.

    Parameters
    ----------
    x : array_like
    axis : int, optional
        Default -1.
    keepdims : bool, optional
        Keep the reduced axis with length 1.
    out : ndarray, optional
        Result array of the reduced shape (with ``keepdims``, the axis kept).

    Returns
    -------
    ndarray or scalar
        A NumPy scalar of the input's float dtype when the result is 0-d.

    Notes
    -----
    Formula: ``m + log1p(R)`` (``R`` as in :func:`log_softmax`).

    Computed as ``m + log1p(sum_{j != k} exp(x_j - m))``, ``m = x_k`` the
    (first) maximum: ``logsumexp([0, -40])`` is ``4.248354255291589e-18``
    (SciPy issue 18295).  An all ``-inf`` row and an empty row give
    ``-inf``, a ``+inf`` gives ``+inf``, a NaN gives NaN (as SciPy).

    Examples
    --------
    >>> import mlkern
    >>> float(mlkern.logsumexp([0.0, -40.0]))
    4.248354255291589e-18
    >>> float(mlkern.logsumexp([1000.0, 1000.0]))
    1000.6931471805599
    """
    r = _ew.logsumexp_fast(x, axis, keepdims, out)
    if r is not None:
        return r
    if any_dask(x):
        from . import _dask
        return _dask.logsumexp(x, axis, keepdims, out)
    arr, rdt = as_float_array(x, "x")
    ax = check_axis(axis, arr.ndim, "logsumexp")
    rshape = arr.shape[:ax] + arr.shape[ax + 1:]
    oshape = arr.shape[:ax] + (1,) + arr.shape[ax + 1:] if keepdims else rshape
    if out is not None:
        check_out(out, oshape, rdt)
    w, wax, tr = _oriented(arr, ax)
    outer, n, inner = _dims(w.shape, wax)
    direct = _reduced_out(out, w, ax, keepdims, tr, arr.dtype)
    wres = direct if direct is not None else np.empty(w.shape[:wax] + w.shape[wax + 1:], arr.dtype)
    if n == 0:
        wres.fill(-np.inf)
    elif wres.size:
        _ew.rowwise_raw(_LOGSUMEXP, w, w, wres, outer, n, inner)
    return _finish_reduced(wres, direct, out, tr, ax, keepdims, rdt)


# ------------------------------------------------------------ backward
def _backward(op, fname, grad_output, y, axis, out):
    r = _ew.backward_fast(op, grad_output, y, axis, out)
    if r is not None:
        return r
    if any_dask(grad_output, y):
        from . import _dask
        return _dask.rowwise_backward(op, fname, grad_output, y, axis, out)
    ga, ya, rdt, order = as_float_pair(grad_output, y, ("grad_output", "y"), fname)
    ax = check_axis(axis, ga.ndim, fname)
    if out is not None:
        check_out(out, ga.shape, rdt)
    res = result_array(ga, out, rdt, ya)
    if ga.size:
        tr = order == "F"
        gw, yw, rw = (ga.T, ya.T, res.T) if tr else (ga, ya, res)
        wax = ga.ndim - 1 - ax if tr else ax
        outer, n, inner = _dims(gw.shape, wax)
        _ew.rowwise_raw(op, gw, yw, rw, outer, n, inner)
    return finish(res, out, rdt, False)


@overload
def softmax_backward(grad_output: NDArray[_F], y: ArrayLike, axis: SupportsIndex = ..., *,
                     out: NDArray[_F] | None = ...) -> NDArray[_F]: ...
@overload
def softmax_backward(grad_output: ArrayLike, y: ArrayLike, axis: SupportsIndex = ..., *,
                     out: NDArray[Any] | None = ...) -> NDArray[np.floating[Any]]: ...
def softmax_backward(grad_output: ArrayLike, y: ArrayLike, axis: SupportsIndex = -1, *,
                     out: NDArray[Any] | None = None) -> NDArray[np.floating[Any]]:
    """Vector-Jacobian product of softmax: ``y * (g - sum(g * y, axis))``.

    Parameters
    ----------
    grad_output : array_like
        ``g``, the gradient with respect to the softmax output.
    y : array_like
        The softmax output (same shape).
    axis : int, optional
        The axis softmax was taken over (default -1).
    out : ndarray, optional
        Result array; may be ``grad_output`` or ``y``.

    Returns
    -------
    ndarray
        The gradient with respect to the softmax input.

    Notes
    -----
    Formula: ``y * (g - sum g*y)``.

    The row dot product is accumulated in float64.

    Examples
    --------
    >>> import mlkern
    >>> mlkern.softmax_backward([1.0, 0.0], [0.5, 0.5]).tolist()
    [0.25, -0.25]
    """
    return _backward(_SOFTMAX_BWD, "softmax_backward", grad_output, y, axis, out)


@overload
def log_softmax_backward(grad_output: NDArray[_F], y: ArrayLike, axis: SupportsIndex = ..., *,
                         out: NDArray[_F] | None = ...) -> NDArray[_F]: ...
@overload
def log_softmax_backward(grad_output: ArrayLike, y: ArrayLike, axis: SupportsIndex = ..., *,
                         out: NDArray[Any] | None = ...) -> NDArray[np.floating[Any]]: ...
def log_softmax_backward(grad_output: ArrayLike, y: ArrayLike, axis: SupportsIndex = -1, *,
                         out: NDArray[Any] | None = None) -> NDArray[np.floating[Any]]:
    """Vector-Jacobian product of log_softmax: ``g - exp(y) * sum(g, axis)``.

    Parameters
    ----------
    grad_output : array_like
        ``g``, the gradient with respect to the log_softmax output.
    y : array_like
        The log_softmax output (same shape).
    axis : int, optional
        Default -1.
    out : ndarray, optional
        Result array; may be ``grad_output`` or ``y``.

    Returns
    -------
    ndarray

    Notes
    -----
    Formula: ``g - e^y sum g``; ``y`` is the log_softmax output.

    Examples
    --------
    >>> import numpy as np, mlkern
    >>> mlkern.log_softmax_backward([1.0, 0.0], np.log([0.5, 0.5])).tolist()
    [0.5, -0.5]
    """
    return _backward(_LOG_SOFTMAX_BWD, "log_softmax_backward", grad_output, y, axis, out)


@overload
def softmax_jacobian(p: NDArray[_F], axis: SupportsIndex = ...) -> NDArray[_F]: ...
@overload
def softmax_jacobian(p: ArrayLike, axis: SupportsIndex = ...) -> NDArray[np.floating[Any]]: ...
def softmax_jacobian(p: ArrayLike, axis: SupportsIndex = -1) -> NDArray[np.floating[Any]]:
    """The Jacobian of softmax from its output: ``J[..., i, j] = p_i (δ_ij - p_j)``.

    Parameters
    ----------
    p : array_like
        The softmax output.
    axis : int, optional
        The softmax axis (default -1); it is removed and the two new axes
        of length n are appended: the result has shape ``(..., n, n)``.

    Returns
    -------
    ndarray
        Symmetric in its last two axes.  Meant for small n (n^2 memory);
        use :func:`softmax_backward` for gradients.

    Notes
    -----
    Formula: ``J_ij = p_i (δ_ij - p_j)``.

    Examples
    --------
    >>> import mlkern
    >>> mlkern.softmax_jacobian([0.5, 0.5]).tolist()
    [[0.25, -0.25], [-0.25, 0.25]]
    """
    if any_dask(p):
        from . import _dask
        return _dask.softmax_jacobian(p, axis)
    arr, rdt = as_float_array(p, "p")
    ax = check_axis(axis, arr.ndim, "softmax_jacobian")
    q = np.moveaxis(arr, ax, -1)
    n = q.shape[-1]
    jac = np.multiply(q[..., :, None], q[..., None, :])
    np.negative(jac, out=jac)
    idx = np.arange(n)
    jac[..., idx, idx] += q
    return jac.astype(rdt, copy=False)


# ------------------------------------------------------------ argmax
def argmax(x: ArrayLike, axis: SupportsIndex = -1, *, keepdims: bool = False,
           out: NDArray[Any] | None = None) -> Any:
    """Index of the first maximum along ``axis``, as ``np.argmax``.

    Parameters
    ----------
    x : array_like
    axis : int or None, optional
        Default -1; ``None`` flattens (C order) first.
    keepdims : bool, optional
    out : ndarray of int64, optional
        Result array of the reduced shape.

    Returns
    -------
    ndarray of int64, or np.int64 when the result is 0-d

    Notes
    -----
    Result: the int64 index of the first maximum (``np.argmax`` semantics).

    NumPy's semantics: ties give the first index; NaN counts as the
    maximum and the first NaN wins.  An empty axis raises ``ValueError``.
    Integer and bool input is compared exactly (by ``np.argmax``: a
    float64 conversion would merge large integers); float16 is compared
    in float32, which is exact.  The flattened case is split over threads.

    Examples
    --------
    >>> import mlkern
    >>> int(mlkern.argmax([1.0, 3.0, 3.0, float("nan"), 2.0]))
    3
    >>> mlkern.argmax([[1.0, 2.0], [4.0, 3.0]], axis=0).tolist()
    [1, 1]
    """
    if axis is not None:
        r = _ew.argmax_fast(x, axis, keepdims, out)
        if r is not None:
            return r
    if any_dask(x):
        from . import _dask
        return _dask.argmax(x, axis, keepdims, out)
    arr = np.asarray(x)
    if arr.ndim == 0:
        raise ValueError("argmax: a 0-d input has no axis to reduce")
    if axis is not None:
        ax = check_axis(axis, arr.ndim, "argmax")
        oshape = (arr.shape[:ax] + (1,) + arr.shape[ax + 1:] if keepdims
                  else arr.shape[:ax] + arr.shape[ax + 1:])
        if arr.shape[ax] == 0:
            raise ValueError("argmax: the reduced axis is empty")
    else:
        oshape = (1,) * arr.ndim if keepdims else ()
        if arr.size == 0:
            raise ValueError("argmax: an empty array has no maximum")
    if out is not None:
        check_out(out, oshape, _I64)
    if arr.dtype.kind in "biu":
        res = np.argmax(arr, axis=axis, keepdims=keepdims).astype(_I64, copy=False)
        if out is not None:
            np.copyto(out, res)
            return out
        return res
    cdt, _ = compute_dtype(arr.dtype, "x")
    if axis is None:
        flat = np.ascontiguousarray(arr, dtype=cdt).reshape(-1)
        if not flat.flags.aligned:
            flat = flat.copy()
        r = np.empty(1, _I64)
        _ew.argmax_raw(flat, r, 1, flat.shape[0], 1)
        res = r.reshape(oshape)
        if out is not None:
            np.copyto(out, res)
            return out
        return res[()] if res.ndim == 0 else res
    arr = _as_layout(arr, cdt, "K")
    w, wax, tr = _oriented(arr, ax)
    outer, n, inner = _dims(w.shape, wax)
    direct = _reduced_out(out, w, ax, keepdims, tr, _I64)
    wres = direct if direct is not None else np.empty(w.shape[:wax] + w.shape[wax + 1:], _I64)
    if wres.size:
        _ew.argmax_raw(w, wres, outer, n, inner)
    return _finish_reduced(wres, direct, out, tr, ax, keepdims, _I64)
