"""Elementwise activations: ``f``, ``f_grad`` and ``f_backward`` for each.

Every function follows docs/contract.rst's conventions: float32/float64 kept,
integers and bools computed in float64, float16 computed in float32 and
returned as float16, complex refused with ``TypeError``; any layout
(a C-contiguous input is never copied); ``out=`` checked and allowed to
alias the input; 0-d input gives a NumPy scalar, as NumPy's ufuncs do.

The math of each function is written once, in C, and shared by the value,
the derivative and the backward kernel (docs/implementation.rst).
``f_backward(grad_output, saved)`` is the fused vector-Jacobian product
``grad_output * f'(x)``; ``saved`` is the forward output ``y`` for sigmoid,
tanh, elu and noisy_relu, the input ``x`` for the others.  The backward is
literally that product, so a NaN in ``grad_output`` stays NaN, and
``inf * 0`` is NaN.

Dask: called with a ``dask.array`` argument, each function returns a lazy
dask array equal bit for bit to the eager result (``noisy_relu``'s noise is
keyed by the global index); ``out=`` is refused then (docs/dask.rst).
"""
from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any, Literal, TypeVar, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import _docs
from . import _kernels as _ew
from ._ops import BINARY, UNARY
from ._validation import (any_dask, as_float_array, binary_slow, check_out, check_real, compute_dtype, finish,
                          result_array, unary_slow)

__all__ = [
    "sigmoid", "sigmoid_grad", "sigmoid_backward",
    "tanh", "tanh_grad", "tanh_backward",
    "relu", "relu_grad", "relu_backward",
    "leaky_relu", "leaky_relu_grad", "leaky_relu_backward",
    "prelu", "prelu_grad", "prelu_backward",
    "elu", "elu_grad", "elu_backward",
    "softplus", "softplus_grad", "softplus_backward",
    "silu", "silu_grad", "silu_backward",
    "swish", "swish_grad", "swish_backward",
    "log_sigmoid", "log_sigmoid_grad", "log_sigmoid_backward",
    "gelu", "gelu_grad", "gelu_backward",
    "noisy_relu", "noisy_relu_backward",
]

# float arrays keep their dtype (_F); anything else array-like computes in
# float64 (float16 -> float32 -> float16)
_F = TypeVar("_F", bound=np.floating[Any])
_Scalar = float | int | np.floating[Any] | np.integer[Any]

# op codes, by name from the op table (_c/mlk_kernels.h)
_SIGMOID, _SIGMOID_GRAD = UNARY["sigmoid"], UNARY["sigmoid_grad"]
_TANH, _TANH_GRAD = UNARY["tanh"], UNARY["tanh_grad"]
_RELU, _RELU_GRAD = UNARY["relu"], UNARY["relu_grad"]
_LEAKY, _LEAKY_GRAD = UNARY["leaky_relu"], UNARY["leaky_relu_grad"]
_ELU, _ELU_GRAD = UNARY["elu"], UNARY["elu_grad"]
_SOFTPLUS, _SOFTPLUS_GRAD = UNARY["softplus"], UNARY["softplus_grad"]
_SILU, _SILU_GRAD = UNARY["silu"], UNARY["silu_grad"]
_LOGSIG, _LOGSIG_GRAD = UNARY["log_sigmoid"], UNARY["log_sigmoid_grad"]
_GELU, _GELU_GRAD = UNARY["gelu"], UNARY["gelu_grad"]
_GELU_TANH, _GELU_TANH_GRAD = UNARY["gelu_tanh"], UNARY["gelu_tanh_grad"]
_NOISY_RELU = UNARY["noisy_relu"]
_B_SIGMOID, _B_TANH = BINARY["sigmoid_backward"], BINARY["tanh_backward"]
_B_RELU, _B_LEAKY = BINARY["relu_backward"], BINARY["leaky_relu_backward"]
_B_ELU, _B_SOFTPLUS = BINARY["elu_backward"], BINARY["softplus_backward"]
_B_SILU, _B_LOGSIG = BINARY["silu_backward"], BINARY["log_sigmoid_backward"]
_B_GELU, _B_GELU_TANH = BINARY["gelu_backward"], BINARY["gelu_tanh_backward"]

# each function: the fast entry (a C-contiguous float array; None for
# anything else), then the checks and the raw kernel (_validation)
_unary = _ew.unary
_binary = _ew.binary


# ---------------------------------------------------------------- sigmoid
@overload
def sigmoid(x: NDArray[_F], *, out: NDArray[_F] | None = ...) -> NDArray[_F]: ...
@overload
def sigmoid(x: NDArray[np.integer[Any] | np.bool], *,
            out: NDArray[np.float64] | None = ...) -> NDArray[np.float64]: ...
@overload
def sigmoid(x: _F, *, out: None = ...) -> _F: ...
@overload
def sigmoid(x: float | np.integer[Any], *, out: None = ...) -> np.float64: ...
@overload
def sigmoid(x: Sequence[Any], *, out: NDArray[Any] | None = ...) -> NDArray[np.floating[Any]]: ...
@_docs.doc()
def sigmoid(x: ArrayLike, *, out: NDArray[Any] | None = None) -> Any:
    """Logistic sigmoid, ``1 / (1 + exp(-x))``.

    Parameters
    ----------
    x : array_like
    {out}

    Returns
    -------
    ndarray (or NumPy scalar for 0-d input)

    Notes
    -----
    float64 corrects the roundings of ``1 + e`` and of the quotient.

    Formula: ``y = 1/(1+e^{-x})``.  Derivative: ``y (1 - y)``.
    Stability: with ``e = exp(-|x|)`` (never overflows), ``y = 1/(1+e)`` for
    ``x >= 0`` and ``e/(1+e)`` for ``x < 0``, so the left tail keeps its
    relative accuracy down to the subnormals and ``sigmoid(-1000) = 0`` with no
    overflow warning.

    Examples
    --------
    >>> import mlkern
    >>> float(mlkern.sigmoid(0.0))
    0.5
    >>> float(mlkern.sigmoid(-1000.0))
    0.0
    """
    r = _unary(_SIGMOID, x, out)
    return unary_slow(_SIGMOID, x, out) if r is None else r


@overload
def sigmoid_grad(x: NDArray[_F], *, out: NDArray[_F] | None = ...) -> NDArray[_F]: ...
@overload
def sigmoid_grad(x: NDArray[np.integer[Any] | np.bool], *,
                 out: NDArray[np.float64] | None = ...) -> NDArray[np.float64]: ...
@overload
def sigmoid_grad(x: _F, *, out: None = ...) -> _F: ...
@overload
def sigmoid_grad(x: float | np.integer[Any], *, out: None = ...) -> np.float64: ...
@overload
def sigmoid_grad(x: Sequence[Any], *,
                 out: NDArray[Any] | None = ...) -> NDArray[np.floating[Any]]: ...
@_docs.doc()
def sigmoid_grad(x: ArrayLike, *, out: NDArray[Any] | None = None) -> Any:
    """Derivative of :func:`sigmoid`, ``sigmoid(x) * (1 - sigmoid(x))``, from x.

    Parameters
    ----------
    {x}
    {out}

    Returns
    -------
    {returns_x}

    Notes
    -----
    Formula: ``sigmoid'(x) = y (1 - y)``, ``y = sigmoid(x)``.  Evaluated as
    ``e / (1 + e)^2`` with ``e = exp(-|x|)`` (symmetric, accurate in both tails
    where ``y (1 - y)`` would cancel; no exponential overflows).  float64
    corrects the roundings of ``1 + e``, of its square and of the quotient;
    float32 is evaluated in float64 and rounded once.  NaN stays NaN;
    ``sigmoid_grad(+-inf) = 0``.

    Examples
    --------
    >>> import mlkern
    >>> float(mlkern.sigmoid_grad(0.0))
    0.25
    >>> float(mlkern.sigmoid_grad(40.0))      # no 1 - y cancellation
    4.248354255291589e-18
    """
    r = _unary(_SIGMOID_GRAD, x, out)
    return unary_slow(_SIGMOID_GRAD, x, out) if r is None else r


@overload
def sigmoid_backward(grad_output: NDArray[_F], y: ArrayLike, *,
                     out: NDArray[_F] | None = ...) -> NDArray[_F]: ...
@overload
def sigmoid_backward(grad_output: NDArray[np.integer[Any] | np.bool], y: ArrayLike, *,
                     out: NDArray[np.float64] | None = ...) -> NDArray[np.float64]: ...
@overload
def sigmoid_backward(grad_output: _F, y: _Scalar, *, out: None = ...) -> _F: ...
@overload
def sigmoid_backward(grad_output: float | np.integer[Any], y: _Scalar, *,
                     out: None = ...) -> np.float64: ...
@overload
def sigmoid_backward(grad_output: Sequence[Any], y: ArrayLike, *,
                     out: NDArray[Any] | None = ...) -> NDArray[np.floating[Any]]: ...
@_docs.doc(saved="y")
def sigmoid_backward(grad_output: ArrayLike, y: ArrayLike, *,
                     out: NDArray[Any] | None = None) -> Any:
    """Fused backward of :func:`sigmoid` from its output: ``grad_output * y * (1 - y)``.

    Parameters
    ----------
    {grad_output}
    y : array_like
        The forward *output* ``y = sigmoid(x)``.
    {out_backward}

    Returns
    -------
    {returns_backward}

    Notes
    -----
    Formula: ``g sigmoid'(x) = g y (1 - y)``, computed as ``g * (y * (1 - y))``
    in one pass: the vector-Jacobian product, literally a product, so a NaN in
    ``g`` or ``y`` gives NaN.  No stability device is possible from ``y``
    alone: ``1 - y`` is known only to the spacing of the floats below 1, so
    the right tail loses its relative accuracy, and the result is 0 once ``y``
    has rounded to 1 (``x >= 37.5`` in float64); ``grad_output *
    sigmoid_grad(x)`` keeps that tail when ``x`` is at hand.

    Examples
    --------
    >>> import mlkern
    >>> float(mlkern.sigmoid_backward(2.0, 0.5))
    0.5
    >>> float(mlkern.sigmoid_backward(1.0, mlkern.sigmoid(40.0)))
    0.0
    """
    r = _binary(_B_SIGMOID, grad_output, y, out)
    return binary_slow(_B_SIGMOID, grad_output, y, out, saved="y") if r is None else r


# ---------------------------------------------------------------- tanh
@overload
def tanh(x: NDArray[_F], *, out: NDArray[_F] | None = ...) -> NDArray[_F]: ...
@overload
def tanh(x: NDArray[np.integer[Any] | np.bool], *,
         out: NDArray[np.float64] | None = ...) -> NDArray[np.float64]: ...
@overload
def tanh(x: _F, *, out: None = ...) -> _F: ...
@overload
def tanh(x: float | np.integer[Any], *, out: None = ...) -> np.float64: ...
@overload
def tanh(x: Sequence[Any], *, out: NDArray[Any] | None = ...) -> NDArray[np.floating[Any]]: ...
@_docs.doc()
def tanh(x: ArrayLike, *, out: NDArray[Any] | None = None) -> Any:
    """Hyperbolic tangent.

    Parameters
    ----------
    {x}
    {out}

    Returns
    -------
    {returns_x}

    Notes
    -----
    Formula: ``tanh x``.  Derivative: ``1 - y^2``.  Stability: with
    ``t = expm1(-2|x|)``, ``tanh|x| = -t/(t+2)`` for ``|x| < 0.55`` (no
    cancellation near 0) and ``1 - 2e/(1+e)``, ``e = exp(-2|x|)``, above; one
    exponential reduction serves both; the sign is copied from ``x``
    (``tanh(-0.0) = -0.0``).

    Examples
    --------
    >>> import mlkern
    >>> float(mlkern.tanh(0.0)), float(mlkern.tanh(1000.0))
    (0.0, 1.0)
    """
    r = _unary(_TANH, x, out)
    return unary_slow(_TANH, x, out) if r is None else r


@overload
def tanh_grad(x: NDArray[_F], *, out: NDArray[_F] | None = ...) -> NDArray[_F]: ...
@overload
def tanh_grad(x: NDArray[np.integer[Any] | np.bool], *,
              out: NDArray[np.float64] | None = ...) -> NDArray[np.float64]: ...
@overload
def tanh_grad(x: _F, *, out: None = ...) -> _F: ...
@overload
def tanh_grad(x: float | np.integer[Any], *, out: None = ...) -> np.float64: ...
@overload
def tanh_grad(x: Sequence[Any], *,
              out: NDArray[Any] | None = ...) -> NDArray[np.floating[Any]]: ...
@_docs.doc()
def tanh_grad(x: ArrayLike, *, out: NDArray[Any] | None = None) -> Any:
    """Derivative of :func:`tanh`, ``1 - tanh(x)^2``, from x.

    Parameters
    ----------
    {x}
    {out}

    Returns
    -------
    {returns_x}

    Notes
    -----
    Formula: ``tanh'(x) = 1 - y^2``, ``y = tanh x``.  Evaluated as
    ``4e / (1 + e)^2`` with ``e = exp(-2|x|)``: accurate in the tails, where
    ``1 - y^2`` would cancel, and ``tanh_grad(+-inf) = 0``.  float64 corrects
    the roundings of ``1 + e``, of its square and of the quotient; float32 is
    evaluated in float64 and rounded once.  NaN stays NaN.

    Examples
    --------
    >>> import mlkern
    >>> float(mlkern.tanh_grad(0.0))
    1.0
    >>> float(mlkern.tanh_grad(20.0)), float(mlkern.tanh_grad(float("inf")))
    (1.6993417021166355e-17, 0.0)
    """
    r = _unary(_TANH_GRAD, x, out)
    return unary_slow(_TANH_GRAD, x, out) if r is None else r


@overload
def tanh_backward(grad_output: NDArray[_F], y: ArrayLike, *,
                  out: NDArray[_F] | None = ...) -> NDArray[_F]: ...
@overload
def tanh_backward(grad_output: NDArray[np.integer[Any] | np.bool], y: ArrayLike, *,
                  out: NDArray[np.float64] | None = ...) -> NDArray[np.float64]: ...
@overload
def tanh_backward(grad_output: _F, y: _Scalar, *, out: None = ...) -> _F: ...
@overload
def tanh_backward(grad_output: float | np.integer[Any], y: _Scalar, *,
                  out: None = ...) -> np.float64: ...
@overload
def tanh_backward(grad_output: Sequence[Any], y: ArrayLike, *,
                  out: NDArray[Any] | None = ...) -> NDArray[np.floating[Any]]: ...
@_docs.doc(saved="y")
def tanh_backward(grad_output: ArrayLike, y: ArrayLike, *, out: NDArray[Any] | None = None) -> Any:
    """Fused backward of :func:`tanh` from its output: ``grad_output * (1 - y^2)``.

    Parameters
    ----------
    {grad_output}
    y : array_like
        The forward *output* ``y = tanh(x)``.
    {out_backward}

    Returns
    -------
    {returns_backward}

    Notes
    -----
    Formula: ``g tanh'(x) = g (1 - y^2)``, computed as ``g * (1 - y * y)`` in
    one pass (a NaN in ``g`` or ``y`` gives NaN).  From ``y`` alone the right
    and left tails are lost where ``|y|`` has rounded to 1 (the result is then
    0); ``grad_output * tanh_grad(x)`` keeps them.

    Examples
    --------
    >>> import mlkern
    >>> float(mlkern.tanh_backward(1.0, 0.5))
    0.75
    """
    r = _binary(_B_TANH, grad_output, y, out)
    return binary_slow(_B_TANH, grad_output, y, out, saved="y") if r is None else r


# ---------------------------------------------------------------- relu
@overload
def relu(x: NDArray[_F], *, out: NDArray[_F] | None = ...) -> NDArray[_F]: ...
@overload
def relu(x: NDArray[np.integer[Any] | np.bool], *,
         out: NDArray[np.float64] | None = ...) -> NDArray[np.float64]: ...
@overload
def relu(x: _F, *, out: None = ...) -> _F: ...
@overload
def relu(x: float | np.integer[Any], *, out: None = ...) -> np.float64: ...
@overload
def relu(x: Sequence[Any], *, out: NDArray[Any] | None = ...) -> NDArray[np.floating[Any]]: ...
@_docs.doc()
def relu(x: ArrayLike, *, out: NDArray[Any] | None = None) -> Any:
    """Rectified linear unit, ``max(0, x)``; NaN stays NaN.

    Parameters
    ----------
    {x}
    {out}

    Returns
    -------
    {returns_x}

    Notes
    -----
    Formula: ``max(0, x)``.  Derivative: ``1 if x > 0 else 0 (NaN -> NaN)`` (0
    at 0, as PyTorch).

    Examples
    --------
    >>> import mlkern
    >>> mlkern.relu([-1.0, 2.0]).tolist()
    [0.0, 2.0]
    """
    r = _unary(_RELU, x, out)
    return unary_slow(_RELU, x, out) if r is None else r


@overload
def relu_grad(x: NDArray[_F], *, out: NDArray[_F] | None = ...) -> NDArray[_F]: ...
@overload
def relu_grad(x: NDArray[np.integer[Any] | np.bool], *,
              out: NDArray[np.float64] | None = ...) -> NDArray[np.float64]: ...
@overload
def relu_grad(x: _F, *, out: None = ...) -> _F: ...
@overload
def relu_grad(x: float | np.integer[Any], *, out: None = ...) -> np.float64: ...
@overload
def relu_grad(x: Sequence[Any], *,
              out: NDArray[Any] | None = ...) -> NDArray[np.floating[Any]]: ...
@_docs.doc()
def relu_grad(x: ArrayLike, *, out: NDArray[Any] | None = None) -> Any:
    """Derivative of :func:`relu`: 1 where ``x > 0``, else 0; NaN where ``x`` is NaN.

    Parameters
    ----------
    {x}
    {out}

    Returns
    -------
    {returns_x}

    Notes
    -----
    Formula: ``relu'(x) = 1 if x > 0 else 0``, 0 at ``x = 0`` (as PyTorch); a
    NaN input gives NaN (SPEC: no silent zeros).  Exact: a select, no
    arithmetic.

    Examples
    --------
    >>> import mlkern
    >>> mlkern.relu_grad([-1.0, 0.0, 3.0]).tolist()
    [0.0, 0.0, 1.0]
    """
    r = _unary(_RELU_GRAD, x, out)
    return unary_slow(_RELU_GRAD, x, out) if r is None else r


@overload
def relu_backward(grad_output: NDArray[_F], x: ArrayLike, *,
                  out: NDArray[_F] | None = ...) -> NDArray[_F]: ...
@overload
def relu_backward(grad_output: NDArray[np.integer[Any] | np.bool], x: ArrayLike, *,
                  out: NDArray[np.float64] | None = ...) -> NDArray[np.float64]: ...
@overload
def relu_backward(grad_output: _F, x: _Scalar, *, out: None = ...) -> _F: ...
@overload
def relu_backward(grad_output: float | np.integer[Any], x: _Scalar, *,
                  out: None = ...) -> np.float64: ...
@overload
def relu_backward(grad_output: Sequence[Any], x: ArrayLike, *,
                  out: NDArray[Any] | None = ...) -> NDArray[np.floating[Any]]: ...
@_docs.doc(saved="x")
def relu_backward(grad_output: ArrayLike, x: ArrayLike, *, out: NDArray[Any] | None = None) -> Any:
    """Fused backward of :func:`relu` from its input: ``grad_output * relu_grad(x)``.

    Parameters
    ----------
    {grad_output}
    {x_saved}
    {out_backward}

    Returns
    -------
    {returns_backward}

    Notes
    -----
    Formula: ``g relu'(x)``, computed as the product ``g * (1 if x > 0 else
    0)``, so NaN in ``x`` or ``g`` gives NaN and ``inf * 0`` (an infinite
    ``g`` where ``x <= 0``) is NaN.

    Examples
    --------
    >>> import mlkern
    >>> mlkern.relu_backward([5.0, 5.0], [-1.0, 1.0]).tolist()
    [0.0, 5.0]
    """
    r = _binary(_B_RELU, grad_output, x, out)
    return binary_slow(_B_RELU, grad_output, x, out, saved="x") if r is None else r


# ---------------------------------------------------------------- leaky relu
@overload
def leaky_relu(x: NDArray[_F], *, negative_slope: float = ...,
               out: NDArray[_F] | None = ...) -> NDArray[_F]: ...
@overload
def leaky_relu(x: NDArray[np.integer[Any] | np.bool], *, negative_slope: float = ...,
               out: NDArray[np.float64] | None = ...) -> NDArray[np.float64]: ...
@overload
def leaky_relu(x: _F, *, negative_slope: float = ..., out: None = ...) -> _F: ...
@overload
def leaky_relu(x: float | np.integer[Any], *, negative_slope: float = ...,
               out: None = ...) -> np.float64: ...
@overload
def leaky_relu(x: Sequence[Any], *, negative_slope: float = ...,
               out: NDArray[Any] | None = ...) -> NDArray[np.floating[Any]]: ...
@_docs.doc()
def leaky_relu(x: ArrayLike, *, negative_slope: float = 0.01,
               out: NDArray[Any] | None = None) -> Any:
    """Leaky ReLU: ``x`` for ``x > 0``, ``negative_slope * x`` otherwise.

    Parameters
    ----------
    {x}
    negative_slope : float, default 0.01
        Slope ``a`` for ``x <= 0``.
    {out}

    Returns
    -------
    {returns_x}

    Notes
    -----
    Formula: ``x if x > 0 else a x``, ``a = negative_slope``.  Derivative: ``1
    or a`` (1 where ``x > 0``).

    Examples
    --------
    >>> import mlkern
    >>> mlkern.leaky_relu([-100.0, 2.0]).tolist()
    [-1.0, 2.0]
    """
    a = check_real(negative_slope, "negative_slope")
    r = _unary(_LEAKY, x, out, a)
    return unary_slow(_LEAKY, x, out, a) if r is None else r


@overload
def leaky_relu_grad(x: NDArray[_F], *, negative_slope: float = ...,
                    out: NDArray[_F] | None = ...) -> NDArray[_F]: ...
@overload
def leaky_relu_grad(x: NDArray[np.integer[Any] | np.bool], *, negative_slope: float = ...,
                    out: NDArray[np.float64] | None = ...) -> NDArray[np.float64]: ...
@overload
def leaky_relu_grad(x: _F, *, negative_slope: float = ..., out: None = ...) -> _F: ...
@overload
def leaky_relu_grad(x: float | np.integer[Any], *, negative_slope: float = ...,
                    out: None = ...) -> np.float64: ...
@overload
def leaky_relu_grad(x: Sequence[Any], *, negative_slope: float = ...,
                    out: NDArray[Any] | None = ...) -> NDArray[np.floating[Any]]: ...
@_docs.doc()
def leaky_relu_grad(x: ArrayLike, *, negative_slope: float = 0.01,
                    out: NDArray[Any] | None = None) -> Any:
    """Derivative of :func:`leaky_relu`: 1 where ``x > 0``, else ``negative_slope``.

    Parameters
    ----------
    {x}
    negative_slope : float, default 0.01
        Slope ``a`` for ``x <= 0``.
    {out}

    Returns
    -------
    {returns_x}

    Notes
    -----
    Formula: ``leaky_relu'(x) = 1 if x > 0 else a``, ``a = negative_slope``
    (``a`` at 0); NaN stays NaN.  Exact: a select.

    Examples
    --------
    >>> import mlkern
    >>> mlkern.leaky_relu_grad([-1.0, 1.0], negative_slope=0.5).tolist()
    [0.5, 1.0]
    """
    a = check_real(negative_slope, "negative_slope")
    r = _unary(_LEAKY_GRAD, x, out, a)
    return unary_slow(_LEAKY_GRAD, x, out, a) if r is None else r


@overload
def leaky_relu_backward(grad_output: NDArray[_F], x: ArrayLike, *, negative_slope: float = ...,
                        out: NDArray[_F] | None = ...) -> NDArray[_F]: ...
@overload
def leaky_relu_backward(grad_output: NDArray[np.integer[Any] | np.bool], x: ArrayLike, *,
                        negative_slope: float = ...,
                        out: NDArray[np.float64] | None = ...) -> NDArray[np.float64]: ...
@overload
def leaky_relu_backward(grad_output: _F, x: _Scalar, *, negative_slope: float = ...,
                        out: None = ...) -> _F: ...
@overload
def leaky_relu_backward(grad_output: float | np.integer[Any], x: _Scalar, *,
                        negative_slope: float = ..., out: None = ...) -> np.float64: ...
@overload
def leaky_relu_backward(grad_output: Sequence[Any], x: ArrayLike, *, negative_slope: float = ...,
                        out: NDArray[Any] | None = ...) -> NDArray[np.floating[Any]]: ...
@_docs.doc(saved="x")
def leaky_relu_backward(grad_output: ArrayLike, x: ArrayLike, *, negative_slope: float = 0.01,
                        out: NDArray[Any] | None = None) -> Any:
    """Fused backward of :func:`leaky_relu` from its input: ``grad_output * (1 or a)``.

    Parameters
    ----------
    {grad_output}
    {x_saved}
    negative_slope : float, default 0.01
        Slope ``a`` for ``x <= 0``, as in the forward call.
    {out_backward}

    Returns
    -------
    {returns_backward}

    Notes
    -----
    Formula: ``g leaky_relu'(x) = g * (1 if x > 0 else a)``, one product per
    element (NaN in ``x`` or ``g`` gives NaN).

    Examples
    --------
    >>> import mlkern
    >>> mlkern.leaky_relu_backward([2.0, 2.0], [-1.0, 1.0], negative_slope=0.5).tolist()
    [1.0, 2.0]
    """
    a = check_real(negative_slope, "negative_slope")
    r = _binary(_B_LEAKY, grad_output, x, out, a)
    return binary_slow(_B_LEAKY, grad_output, x, out, a, saved="x") if r is None else r


# ---------------------------------------------------------------- prelu
def _prelu_setup(x, alpha):
    """(x as C-contiguous compute array, result dtype, alpha as (C,) array,
    alpha's shape, outer, C, inner)."""
    arr, rdt = as_float_array(x, "x", order="C")   # the (outer, C, inner) view
    a = np.asarray(alpha)
    if a.dtype.kind not in "biuf":
        raise TypeError(f"alpha: expected a real number or a 1-D real array, got dtype {a.dtype}")
    if a.ndim > 1:
        raise ValueError(f"alpha: expected a scalar or a 1-D array, got shape {a.shape}")
    ashape = a.shape
    a = np.require(a.reshape(-1), arr.dtype, ["C", "A"])   # aligned: the kernel reads it
    if arr.ndim >= 2:
        C = arr.shape[1]
        if a.size not in (1, C):
            raise ValueError(f"alpha: expected 1 or {C} values (one per channel on axis 1 of x, "
                             f"shape {arr.shape}), got {a.size}")
    else:
        C = 1
        if a.size != 1:
            raise ValueError(f"alpha: x has {arr.ndim} dimension(s), so there is no channel axis "
                             f"and alpha must hold one value, got {a.size}")
    if a.size == 1 and C != 1:
        a = np.full(C, a[0], dtype=arr.dtype)
    if arr.ndim >= 2:
        outer = arr.shape[0]
        inner = int(np.prod(arr.shape[2:], dtype=np.int64))
    else:
        outer, inner = 1, arr.size
    return arr, rdt, a, ashape, outer, C, inner


def _prelu_map(arr, res, a, ashape, outer, C, inner, grad):
    """prelu (grad: its derivative) of arr into res.  One slope for every
    element is leaky_relu's kernel, split over the threads like it (the
    channel kernel splits only the outer axis: a 1-D x ran on one thread)."""
    if len(ashape) == 0 or ashape[0] == 1:
        _ew.unary_raw(_LEAKY_GRAD if grad else _LEAKY, arr, res, float(a[0]))
    else:
        _ew.prelu_raw(arr, res, a, outer, C, inner, grad)


@overload
def prelu(x: NDArray[_F], alpha: ArrayLike, *, out: NDArray[_F] | None = ...) -> NDArray[_F]: ...
@overload
def prelu(x: NDArray[np.integer[Any] | np.bool], alpha: ArrayLike, *,
          out: NDArray[np.float64] | None = ...) -> NDArray[np.float64]: ...
@overload
def prelu(x: _F, alpha: _Scalar, *, out: None = ...) -> _F: ...
@overload
def prelu(x: float | np.integer[Any], alpha: _Scalar, *, out: None = ...) -> np.float64: ...
@overload
def prelu(x: Sequence[Any], alpha: ArrayLike, *,
          out: NDArray[Any] | None = ...) -> NDArray[np.floating[Any]]: ...
@_docs.doc()
def prelu(x: ArrayLike, alpha: ArrayLike, *, out: NDArray[Any] | None = None) -> Any:
    """Parametric ReLU: ``x`` for ``x > 0``, ``alpha * x`` otherwise.

    Parameters
    ----------
    x : array_like
        Input; with two or more dimensions, axis 1 is the channel axis (as in
        ``torch.nn.functional.prelu``).
    alpha : float or 1-D array_like
        One slope, or one per channel (``x.shape[1]`` values).
    {out}

    Returns
    -------
    ndarray (or NumPy scalar for 0-d input)
        Same shape as ``x``.

    Notes
    -----
    Formula: ``x if x > 0 else alpha x``.

    Derivative: 1 or alpha.  ``prelu_backward`` also returns the gradient with
    respect to alpha, reduced to alpha's shape.

    Examples
    --------
    >>> import mlkern, numpy as np
    >>> mlkern.prelu(np.array([[-1.0, -1.0], [2.0, -2.0]]), [0.1, 0.5]).tolist()
    [[-0.1, -0.5], [2.0, -1.0]]
    """
    if any_dask(x, alpha):
        from . import _dask
        return _dask.prelu(x, alpha, out, False)
    # one float slope: leaky_relu's fast entry.  float() is exact for these types and the kernel
    # casts it to x's dtype as _prelu_setup does (not int: a huge one must reach _prelu_setup's
    # TypeError; not longdouble: two roundings)
    if isinstance(alpha, (float, np.float32, np.float16)):
        r = _unary(_LEAKY, x, out, float(alpha))
        if r is not None:
            return r
    arr, rdt, a, ashape, outer, C, inner = _prelu_setup(x, alpha)
    scalar = arr.ndim == 0
    if out is not None:
        check_out(out, arr.shape, rdt)
    res = result_array(arr, out, rdt)
    if arr.size:
        _prelu_map(arr, res, a, ashape, outer, C, inner, False)
    return finish(res, out, rdt, scalar)


@overload
def prelu_grad(x: NDArray[_F], alpha: ArrayLike, *,
               out: NDArray[_F] | None = ...) -> NDArray[_F]: ...
@overload
def prelu_grad(x: NDArray[np.integer[Any] | np.bool], alpha: ArrayLike, *,
               out: NDArray[np.float64] | None = ...) -> NDArray[np.float64]: ...
@overload
def prelu_grad(x: _F, alpha: _Scalar, *, out: None = ...) -> _F: ...
@overload
def prelu_grad(x: float | np.integer[Any], alpha: _Scalar, *, out: None = ...) -> np.float64: ...
@overload
def prelu_grad(x: Sequence[Any], alpha: ArrayLike, *,
               out: NDArray[Any] | None = ...) -> NDArray[np.floating[Any]]: ...
@_docs.doc()
def prelu_grad(x: ArrayLike, alpha: ArrayLike, *, out: NDArray[Any] | None = None) -> Any:
    """Derivative of :func:`prelu` with respect to x: 1 where ``x > 0``, else alpha.

    Parameters
    ----------
    x : array_like
        Input; with two or more dimensions, axis 1 is the channel axis.
    alpha : float or 1-D array_like
        One slope, or one per channel (``x.shape[1]`` values).
    {out}

    Returns
    -------
    {returns_x}

    Notes
    -----
    Formula: ``prelu'(x) = 1 if x > 0 else alpha_c``, ``alpha_c`` the slope of
    the element's channel (axis 1); NaN stays NaN.  Computed by the backward
    kernel with ``grad_output = 1`` (one kernel, exact: a select).  For the
    gradient with respect to alpha use :func:`prelu_backward`.

    Examples
    --------
    >>> import mlkern
    >>> mlkern.prelu_grad([-1.0, 1.0], 0.25).tolist()
    [0.25, 1.0]
    >>> mlkern.prelu_grad([[-1.0, 2.0], [-3.0, -4.0]], [0.1, 0.2]).tolist()
    [[0.1, 1.0], [0.1, 0.2]]
    """
    if any_dask(x, alpha):
        from . import _dask
        return _dask.prelu(x, alpha, out, True)
    # one float slope: leaky_relu's fast entry.  float() is exact for these types and the kernel
    # casts it to x's dtype as _prelu_setup does (not int: a huge one must reach _prelu_setup's
    # TypeError; not longdouble: two roundings)
    if isinstance(alpha, (float, np.float32, np.float16)):
        r = _unary(_LEAKY_GRAD, x, out, float(alpha))
        if r is not None:
            return r
    arr, rdt, a, ashape, outer, C, inner = _prelu_setup(x, alpha)
    scalar = arr.ndim == 0
    if out is not None:
        check_out(out, arr.shape, rdt)
    res = result_array(arr, out, rdt)
    if arr.size:
        _prelu_map(arr, res, a, ashape, outer, C, inner, True)
    return finish(res, out, rdt, scalar)


def prelu_backward(grad_output: ArrayLike, x: ArrayLike, alpha: ArrayLike, *,
                   out: NDArray[Any] | None = None) -> tuple[Any, Any]:
    """Fused backward of :func:`prelu`: the gradients with respect to x and to alpha.

    Parameters
    ----------
    grad_output : array_like
        ``g``, the gradient with respect to the forward output; x's shape.
    x : array_like
        The forward *input* ``x`` (axis 1 is the channel axis when ``x.ndim >= 2``).
    alpha : float or 1-D array_like
        The slope(s) of the forward call: one, or one per channel.
    out : ndarray, optional
        Result array for ``grad_x`` (same shape and dtype as it); may be
        ``grad_output`` or ``x``.

    Returns
    -------
    grad_x : ndarray
        ``grad_output * (1 if x > 0 else alpha)``.
    grad_alpha : ndarray or scalar
        ``sum(grad_output * x where x <= 0)`` per channel, in alpha's shape
        (accumulated in float64).

    Notes
    -----
    Formula: ``d/dx = g (1 if x > 0 else alpha_c)`` and
    ``d/dalpha_c = sum over the channel's elements with x <= 0 of g x``.  One
    pass over ``g`` and ``x`` computes both; each channel's sum is accumulated
    in float64 and rounded once to x's float dtype.  A scalar alpha gets a
    NumPy scalar, a one-element alpha shared by several channels a
    one-element array (the sum over every channel).

    Examples
    --------
    >>> import mlkern
    >>> gx, ga = mlkern.prelu_backward([1.0, 1.0], [-2.0, 3.0], 0.1)
    >>> gx.tolist(), float(ga)
    ([0.1, 1.0], -2.0)
    """
    if any_dask(grad_output, x, alpha):
        from . import _dask
        return _dask.prelu_backward(grad_output, x, alpha, out)
    gx, ga, ashape, rdt, C = _prelu_backward_parts(grad_output, x, alpha, out)
    return gx, _prelu_galpha(ga, ashape, rdt, C)


def _prelu_backward_parts(grad_output, x, alpha, out):
    """prelu_backward's grad_x and its per-channel float64 sums for alpha
    (with alpha's shape, the result dtype and the number of channels)."""
    arr, rdt, a, ashape, outer, C, inner = _prelu_setup(x, alpha)
    g = np.asarray(grad_output)
    compute_dtype(g.dtype, "grad_output")
    if g.shape != arr.shape:
        raise ValueError(f"grad_output and x must have the same shape, got {g.shape} and {arr.shape}")
    g = np.require(g, arr.dtype, ["C", "A"])
    scalar = arr.ndim == 0
    if out is not None:
        check_out(out, arr.shape, rdt)
    gx = result_array(arr, out, rdt, g)
    ga = np.zeros(C, dtype=np.float64)
    if arr.size:
        _ew.prelu_bwd_raw(g, arr, a, gx, ga, outer, C, inner)
    return finish(gx, out, rdt, scalar), ga, ashape, rdt, C


def _prelu_galpha(ga, ashape, rdt, C):
    """grad_alpha from the per-channel float64 sums ga, in alpha's shape."""
    if len(ashape) == 0:
        galpha = rdt.type(ga.sum())
    elif ashape[0] == 1 and C != 1:
        galpha = np.array([ga.sum()], dtype=rdt)
    else:
        galpha = ga.astype(rdt)
    return galpha


# ---------------------------------------------------------------- elu
@overload
def elu(x: NDArray[_F], *, alpha: float = ..., out: NDArray[_F] | None = ...) -> NDArray[_F]: ...
@overload
def elu(x: NDArray[np.integer[Any] | np.bool], *, alpha: float = ...,
        out: NDArray[np.float64] | None = ...) -> NDArray[np.float64]: ...
@overload
def elu(x: _F, *, alpha: float = ..., out: None = ...) -> _F: ...
@overload
def elu(x: float | np.integer[Any], *, alpha: float = ..., out: None = ...) -> np.float64: ...
@overload
def elu(x: Sequence[Any], *, alpha: float = ...,
        out: NDArray[Any] | None = ...) -> NDArray[np.floating[Any]]: ...
@_docs.doc()
def elu(x: ArrayLike, *, alpha: float = 1.0, out: NDArray[Any] | None = None) -> Any:
    """Exponential linear unit: ``x`` for ``x > 0``, ``alpha * expm1(x)`` otherwise.

    Parameters
    ----------
    {x}
    alpha : float, default 1
        Scale ``alpha`` of the negative branch.
    {out}

    Returns
    -------
    {returns_x}

    Notes
    -----
    Formula: ``x if x > 0 else alpha expm1(x)``.  Derivative: ``1 or y +
    alpha`` (``alpha e^x = y + alpha`` for ``x <= 0``).
    ``expm1`` keeps small negative ``x`` accurate in relative terms.  (The
    seeds' ``max(x, a(e^x - 1))`` holds only for ``alpha <= 1``; this is the
    piecewise definition.)

    Examples
    --------
    >>> import mlkern
    >>> round(float(mlkern.elu(-1.0)), 12)
    -0.632120558829
    """
    a = check_real(alpha, "alpha")
    r = _unary(_ELU, x, out, a)
    return unary_slow(_ELU, x, out, a) if r is None else r


@overload
def elu_grad(x: NDArray[_F], *, alpha: float = ...,
             out: NDArray[_F] | None = ...) -> NDArray[_F]: ...
@overload
def elu_grad(x: NDArray[np.integer[Any] | np.bool], *, alpha: float = ...,
             out: NDArray[np.float64] | None = ...) -> NDArray[np.float64]: ...
@overload
def elu_grad(x: _F, *, alpha: float = ..., out: None = ...) -> _F: ...
@overload
def elu_grad(x: float | np.integer[Any], *, alpha: float = ..., out: None = ...) -> np.float64: ...
@overload
def elu_grad(x: Sequence[Any], *, alpha: float = ...,
             out: NDArray[Any] | None = ...) -> NDArray[np.floating[Any]]: ...
@_docs.doc()
def elu_grad(x: ArrayLike, *, alpha: float = 1.0, out: NDArray[Any] | None = None) -> Any:
    """Derivative of :func:`elu`: 1 for ``x > 0``, ``alpha * exp(x)`` otherwise.

    Parameters
    ----------
    {x}
    alpha : float, default 1
        Scale ``alpha`` of the negative branch, as in the forward call.
    {out}

    Returns
    -------
    {returns_x}

    Notes
    -----
    Formula: ``elu'(x) = 1 if x > 0 else alpha e^x`` (``= y + alpha`` below 0).
    Computed from ``x`` as ``alpha * exp(min(x, 0))``: the exponential never
    overflows and keeps its relative accuracy in the left tail, where
    ``y + alpha`` cancels (compare :func:`elu_backward`).  NaN stays NaN.

    Examples
    --------
    >>> import mlkern
    >>> float(mlkern.elu_grad(0.0, alpha=2.0))
    2.0
    >>> float(mlkern.elu_grad(-40.0))
    4.248354255291589e-18
    """
    a = check_real(alpha, "alpha")
    r = _unary(_ELU_GRAD, x, out, a)
    return unary_slow(_ELU_GRAD, x, out, a) if r is None else r


@overload
def elu_backward(grad_output: NDArray[_F], y: ArrayLike, *, alpha: float = ...,
                 out: NDArray[_F] | None = ...) -> NDArray[_F]: ...
@overload
def elu_backward(grad_output: NDArray[np.integer[Any] | np.bool], y: ArrayLike, *,
                 alpha: float = ...,
                 out: NDArray[np.float64] | None = ...) -> NDArray[np.float64]: ...
@overload
def elu_backward(grad_output: _F, y: _Scalar, *, alpha: float = ..., out: None = ...) -> _F: ...
@overload
def elu_backward(grad_output: float | np.integer[Any], y: _Scalar, *, alpha: float = ...,
                 out: None = ...) -> np.float64: ...
@overload
def elu_backward(grad_output: Sequence[Any], y: ArrayLike, *, alpha: float = ...,
                 out: NDArray[Any] | None = ...) -> NDArray[np.floating[Any]]: ...
@_docs.doc(saved="y")
def elu_backward(grad_output: ArrayLike, y: ArrayLike, *, alpha: float = 1.0,
                 out: NDArray[Any] | None = None) -> Any:
    """Fused backward of :func:`elu` from its output: ``grad_output * (1 or y + alpha)``.

    Parameters
    ----------
    {grad_output}
    y : array_like
        The forward *output* ``y = elu(x, alpha=alpha)``.
    alpha : float, default 1
        As in the forward call; the form is valid for ``alpha >= 0``.
    {out_backward}

    Returns
    -------
    {returns_backward}

    Notes
    -----
    Formula: ``g elu'(x) = g * (1 if y > 0 else y + alpha)``, because
    ``alpha e^x = alpha expm1(x) + alpha = y + alpha`` for ``x <= 0`` (as
    PyTorch's ``elu_backward(is_result=True)``).  No exponential is taken.
    From ``y`` alone, ``y + alpha`` cancels where ``y`` is close to
    ``-alpha`` (``x << 0``): ``grad_output * elu_grad(x)`` keeps that tail.
    NaN in ``y`` or ``g`` gives NaN.

    Examples
    --------
    >>> import mlkern
    >>> float(mlkern.elu_backward(1.0, -0.5, alpha=1.0))
    0.5
    >>> float(mlkern.elu_backward(1.0, mlkern.elu(-40.0)))     # y rounded to -1
    0.0
    """
    a = check_real(alpha, "alpha")
    r = _binary(_B_ELU, grad_output, y, out, a)
    return binary_slow(_B_ELU, grad_output, y, out, a, saved="y") if r is None else r


# ---------------------------------------------------------------- softplus
def _softplus_params(beta, threshold):
    b = check_real(beta, "beta")
    if b == 0.0:
        raise ValueError("beta: must be nonzero")
    t = float("inf") if threshold is None else check_real(threshold, "threshold")
    return b, t


@overload
def softplus(x: NDArray[_F], *, beta: float = ..., threshold: float | None = ...,
             out: NDArray[_F] | None = ...) -> NDArray[_F]: ...
@overload
def softplus(x: NDArray[np.integer[Any] | np.bool], *, beta: float = ...,
             threshold: float | None = ...,
             out: NDArray[np.float64] | None = ...) -> NDArray[np.float64]: ...
@overload
def softplus(x: _F, *, beta: float = ..., threshold: float | None = ...,
             out: None = ...) -> _F: ...
@overload
def softplus(x: float | np.integer[Any], *, beta: float = ..., threshold: float | None = ...,
             out: None = ...) -> np.float64: ...
@overload
def softplus(x: Sequence[Any], *, beta: float = ..., threshold: float | None = ...,
             out: NDArray[Any] | None = ...) -> NDArray[np.floating[Any]]: ...
@_docs.doc()
def softplus(x: ArrayLike, *, beta: float = 1.0, threshold: float | None = None,
             out: NDArray[Any] | None = None) -> Any:
    """Softplus, ``(1/beta) * log(1 + exp(beta * x))``.

    Parameters
    ----------
    {x}
    beta : float, default 1
    threshold : float or None, default None
        If a number, the result is ``x`` where ``beta * x > threshold``
        (PyTorch's default is 20).  ``None`` keeps the exact value everywhere.
    {out}

    Returns
    -------
    {returns_x}

    Notes
    -----
    Formula: ``(1/beta) log(1 + e^{beta x})``.

    Derivative: ``sigmoid(beta * x)`` (1 above the threshold).  Stability:
    ``max(z, 0) + log1p(exp(-|z|))``, ``z = beta x``: exact in both tails,
    ``softplus(1000) = 1000`` and ``softplus(-30) = 9.357622968839737e-14``.

    Examples
    --------
    >>> import mlkern
    >>> float(mlkern.softplus(1000.0)), float(mlkern.softplus(-30.0))
    (1000.0, 9.357622968839737e-14)
    """
    b, t = _softplus_params(beta, threshold)
    r = _unary(_SOFTPLUS, x, out, 0.0, b, t)
    return unary_slow(_SOFTPLUS, x, out, 0.0, b, t) if r is None else r


@overload
def softplus_grad(x: NDArray[_F], *, beta: float = ..., threshold: float | None = ...,
                  out: NDArray[_F] | None = ...) -> NDArray[_F]: ...
@overload
def softplus_grad(x: NDArray[np.integer[Any] | np.bool], *, beta: float = ...,
                  threshold: float | None = ...,
                  out: NDArray[np.float64] | None = ...) -> NDArray[np.float64]: ...
@overload
def softplus_grad(x: _F, *, beta: float = ..., threshold: float | None = ...,
                  out: None = ...) -> _F: ...
@overload
def softplus_grad(x: float | np.integer[Any], *, beta: float = ..., threshold: float | None = ...,
                  out: None = ...) -> np.float64: ...
@overload
def softplus_grad(x: Sequence[Any], *, beta: float = ..., threshold: float | None = ...,
                  out: NDArray[Any] | None = ...) -> NDArray[np.floating[Any]]: ...
@_docs.doc()
def softplus_grad(x: ArrayLike, *, beta: float = 1.0, threshold: float | None = None,
                  out: NDArray[Any] | None = None) -> Any:
    """Derivative of :func:`softplus`: ``sigmoid(beta * x)``, 1 above the threshold.

    Parameters
    ----------
    {x}
    beta : float, default 1
        As in the forward call (nonzero).
    threshold : float or None, default None
        As in the forward call: where ``beta * x > threshold`` the derivative is 1.
    {out}

    Returns
    -------
    {returns_x}

    Notes
    -----
    Formula: ``softplus'(x) = sigmoid(beta x)``; 1 where ``beta * x >
    threshold`` (the forward is ``x`` there).  Evaluated by the sigmoid kernel
    on ``z = beta x``: ``e = exp(-|z|)``, ``1/(1+e)`` or ``e/(1+e)``, so no
    overflow and the left tail keeps its relative accuracy.

    Examples
    --------
    >>> import mlkern
    >>> float(mlkern.softplus_grad(0.0))
    0.5
    """
    b, t = _softplus_params(beta, threshold)
    r = _unary(_SOFTPLUS_GRAD, x, out, 0.0, b, t)
    return unary_slow(_SOFTPLUS_GRAD, x, out, 0.0, b, t) if r is None else r


@overload
def softplus_backward(grad_output: NDArray[_F], x: ArrayLike, *, beta: float = ...,
                      threshold: float | None = ...,
                      out: NDArray[_F] | None = ...) -> NDArray[_F]: ...
@overload
def softplus_backward(grad_output: NDArray[np.integer[Any] | np.bool], x: ArrayLike, *,
                      beta: float = ..., threshold: float | None = ...,
                      out: NDArray[np.float64] | None = ...) -> NDArray[np.float64]: ...
@overload
def softplus_backward(grad_output: _F, x: _Scalar, *, beta: float = ...,
                      threshold: float | None = ..., out: None = ...) -> _F: ...
@overload
def softplus_backward(grad_output: float | np.integer[Any], x: _Scalar, *, beta: float = ...,
                      threshold: float | None = ..., out: None = ...) -> np.float64: ...
@overload
def softplus_backward(grad_output: Sequence[Any], x: ArrayLike, *, beta: float = ...,
                      threshold: float | None = ...,
                      out: NDArray[Any] | None = ...) -> NDArray[np.floating[Any]]: ...
@_docs.doc(saved="x")
def softplus_backward(grad_output: ArrayLike, x: ArrayLike, *, beta: float = 1.0,
                      threshold: float | None = None, out: NDArray[Any] | None = None) -> Any:
    """Fused backward of :func:`softplus` from its input: ``grad_output * sigmoid(beta * x)``.

    Parameters
    ----------
    {grad_output}
    {x_saved}
    beta : float, default 1
        As in the forward call (nonzero).
    threshold : float or None, default None
        As in the forward call: where ``beta * x > threshold`` the derivative is 1.
    {out_backward}

    Returns
    -------
    {returns_backward}

    Notes
    -----
    Formula: ``g softplus'(x) = g sigmoid(beta x)`` (``g`` where ``beta * x >
    threshold``): ``g`` times :func:`softplus_grad`'s stable sigmoid, in one
    pass.

    Examples
    --------
    >>> import mlkern
    >>> float(mlkern.softplus_backward(2.0, 0.0))
    1.0
    """
    b, t = _softplus_params(beta, threshold)
    r = _binary(_B_SOFTPLUS, grad_output, x, out, 0.0, b, t)
    return binary_slow(_B_SOFTPLUS, grad_output, x, out, 0.0, b, t, saved="x") if r is None else r


# ---------------------------------------------------------------- silu
@overload
def silu(x: NDArray[_F], *, beta: float = ..., out: NDArray[_F] | None = ...) -> NDArray[_F]: ...
@overload
def silu(x: NDArray[np.integer[Any] | np.bool], *, beta: float = ...,
         out: NDArray[np.float64] | None = ...) -> NDArray[np.float64]: ...
@overload
def silu(x: _F, *, beta: float = ..., out: None = ...) -> _F: ...
@overload
def silu(x: float | np.integer[Any], *, beta: float = ..., out: None = ...) -> np.float64: ...
@overload
def silu(x: Sequence[Any], *, beta: float = ...,
         out: NDArray[Any] | None = ...) -> NDArray[np.floating[Any]]: ...
@_docs.doc()
def silu(x: ArrayLike, *, beta: float = 1.0, out: NDArray[Any] | None = None) -> Any:
    """SiLU / swish: ``x * sigmoid(beta * x)``.

    Parameters
    ----------
    {x}
    beta : float, default 1
        ``silu(x) = x sigmoid(beta x)``; ``beta = 1`` is SiLU, other values swish-beta.
    {out}

    Returns
    -------
    {returns_x}

    Notes
    -----
    Formula: ``x sigmoid(beta x)``.  Derivative: ``s + beta x s (1 - s), s =
    sigmoid(beta x)``.  The rounding of ``beta x`` is compensated, and ``x e``
    is scaled so that subnormal results are not lost.

    Derivative: ``s + beta x s (1 - s)``, ``s = sigmoid(beta x)``.  Stability:
    one ``exp(-|beta x|)`` and one division, ``x / (1 + e)`` or
    ``x e / (1 + e)``; the limits are exact: ``silu(-inf) = -0.0``,
    ``silu(-1000) = -0.0``, ``silu(inf) = inf``.

    Examples
    --------
    >>> import mlkern
    >>> float(mlkern.silu(-1000.0))
    -0.0
    """
    b = check_real(beta, "beta")
    r = _unary(_SILU, x, out, 0.0, b)
    return unary_slow(_SILU, x, out, 0.0, b) if r is None else r


@overload
def silu_grad(x: NDArray[_F], *, beta: float = ...,
              out: NDArray[_F] | None = ...) -> NDArray[_F]: ...
@overload
def silu_grad(x: NDArray[np.integer[Any] | np.bool], *, beta: float = ...,
              out: NDArray[np.float64] | None = ...) -> NDArray[np.float64]: ...
@overload
def silu_grad(x: _F, *, beta: float = ..., out: None = ...) -> _F: ...
@overload
def silu_grad(x: float | np.integer[Any], *, beta: float = ..., out: None = ...) -> np.float64: ...
@overload
def silu_grad(x: Sequence[Any], *, beta: float = ...,
              out: NDArray[Any] | None = ...) -> NDArray[np.floating[Any]]: ...
@_docs.doc()
def silu_grad(x: ArrayLike, *, beta: float = 1.0, out: NDArray[Any] | None = None) -> Any:
    """Derivative of :func:`silu`: ``s (1 + beta x (1 - s))``, ``s = sigmoid(beta x)``.

    Parameters
    ----------
    {x}
    beta : float, default 1
        As in the forward call.
    {out}

    Returns
    -------
    {returns_x}

    Notes
    -----
    Formula: ``silu'(x) = s + beta x s (1 - s) = s (1 + z sigmoid(-z))``,
    ``z = beta x``.  One ``exp(-|z|)`` and one reciprocal give both ``s`` and
    ``1 - s``, the latter as ``sigmoid(-z)`` (no cancellation); ``s`` is kept
    scaled by a power of 2 until the last multiply, so a subnormal result keeps
    its digits.  0 where ``z = -inf``, 1 where ``z = +inf``; NaN stays NaN.

    Examples
    --------
    >>> import mlkern
    >>> float(mlkern.silu_grad(0.0))
    0.5
    """
    b = check_real(beta, "beta")
    r = _unary(_SILU_GRAD, x, out, 0.0, b)
    return unary_slow(_SILU_GRAD, x, out, 0.0, b) if r is None else r


@overload
def silu_backward(grad_output: NDArray[_F], x: ArrayLike, *, beta: float = ...,
                  out: NDArray[_F] | None = ...) -> NDArray[_F]: ...
@overload
def silu_backward(grad_output: NDArray[np.integer[Any] | np.bool], x: ArrayLike, *,
                  beta: float = ...,
                  out: NDArray[np.float64] | None = ...) -> NDArray[np.float64]: ...
@overload
def silu_backward(grad_output: _F, x: _Scalar, *, beta: float = ..., out: None = ...) -> _F: ...
@overload
def silu_backward(grad_output: float | np.integer[Any], x: _Scalar, *, beta: float = ...,
                  out: None = ...) -> np.float64: ...
@overload
def silu_backward(grad_output: Sequence[Any], x: ArrayLike, *, beta: float = ...,
                  out: NDArray[Any] | None = ...) -> NDArray[np.floating[Any]]: ...
@_docs.doc(saved="x")
def silu_backward(grad_output: ArrayLike, x: ArrayLike, *, beta: float = 1.0,
                  out: NDArray[Any] | None = None) -> Any:
    """Fused backward of :func:`silu` from its input: ``grad_output * silu_grad(x)``.

    Parameters
    ----------
    {grad_output}
    {x_saved}
    beta : float, default 1
        As in the forward call.
    {out_backward}

    Returns
    -------
    {returns_backward}

    Notes
    -----
    Formula: ``g silu'(x) = g s (1 + beta x (1 - s))``, ``s = sigmoid(beta x)``,
    with :func:`silu_grad`'s stable evaluation, in one pass.

    Examples
    --------
    >>> import mlkern
    >>> float(mlkern.silu_backward(2.0, 0.0))
    1.0
    """
    b = check_real(beta, "beta")
    r = _binary(_B_SILU, grad_output, x, out, 0.0, b)
    return binary_slow(_B_SILU, grad_output, x, out, 0.0, b, saved="x") if r is None else r


swish = silu
swish_grad = silu_grad
swish_backward = silu_backward


# ---------------------------------------------------------------- log_sigmoid
@overload
def log_sigmoid(x: NDArray[_F], *, out: NDArray[_F] | None = ...) -> NDArray[_F]: ...
@overload
def log_sigmoid(x: NDArray[np.integer[Any] | np.bool], *,
                out: NDArray[np.float64] | None = ...) -> NDArray[np.float64]: ...
@overload
def log_sigmoid(x: _F, *, out: None = ...) -> _F: ...
@overload
def log_sigmoid(x: float | np.integer[Any], *, out: None = ...) -> np.float64: ...
@overload
def log_sigmoid(x: Sequence[Any], *,
                out: NDArray[Any] | None = ...) -> NDArray[np.floating[Any]]: ...
@_docs.doc()
def log_sigmoid(x: ArrayLike, *, out: NDArray[Any] | None = None) -> Any:
    """Log of the logistic sigmoid, ``-softplus(-x)``.

    Parameters
    ----------
    {x}
    {out}

    Returns
    -------
    {returns_x}

    Notes
    -----
    Derivative: ``1 - sigmoid(x) = sigmoid(-x)``.  Stability:
    ``min(x, 0) - log1p(exp(-|x|))``; ``log_sigmoid(-1000) = -1000``.

    Examples
    --------
    >>> import mlkern
    >>> float(mlkern.log_sigmoid(-1000.0))
    -1000.0
    """
    r = _unary(_LOGSIG, x, out)
    return unary_slow(_LOGSIG, x, out) if r is None else r


@overload
def log_sigmoid_grad(x: NDArray[_F], *, out: NDArray[_F] | None = ...) -> NDArray[_F]: ...
@overload
def log_sigmoid_grad(x: NDArray[np.integer[Any] | np.bool], *,
                     out: NDArray[np.float64] | None = ...) -> NDArray[np.float64]: ...
@overload
def log_sigmoid_grad(x: _F, *, out: None = ...) -> _F: ...
@overload
def log_sigmoid_grad(x: float | np.integer[Any], *, out: None = ...) -> np.float64: ...
@overload
def log_sigmoid_grad(x: Sequence[Any], *,
                     out: NDArray[Any] | None = ...) -> NDArray[np.floating[Any]]: ...
@_docs.doc()
def log_sigmoid_grad(x: ArrayLike, *, out: NDArray[Any] | None = None) -> Any:
    """Derivative of :func:`log_sigmoid`: ``sigmoid(-x)``.

    Parameters
    ----------
    {x}
    {out}

    Returns
    -------
    {returns_x}

    Notes
    -----
    Formula: ``log_sigmoid'(x) = 1 - sigmoid(x) = sigmoid(-x)``, evaluated as
    ``sigmoid(-x)`` by the sigmoid kernel (``e = exp(-|x|)``, no overflow), so
    the right tail, where ``1 - sigmoid(x)`` would cancel, stays accurate.
    1 at -inf, 0 at +inf.

    Examples
    --------
    >>> import mlkern
    >>> float(mlkern.log_sigmoid_grad(0.0))
    0.5
    """
    r = _unary(_LOGSIG_GRAD, x, out)
    return unary_slow(_LOGSIG_GRAD, x, out) if r is None else r


@overload
def log_sigmoid_backward(grad_output: NDArray[_F], x: ArrayLike, *,
                         out: NDArray[_F] | None = ...) -> NDArray[_F]: ...
@overload
def log_sigmoid_backward(grad_output: NDArray[np.integer[Any] | np.bool], x: ArrayLike, *,
                         out: NDArray[np.float64] | None = ...) -> NDArray[np.float64]: ...
@overload
def log_sigmoid_backward(grad_output: _F, x: _Scalar, *, out: None = ...) -> _F: ...
@overload
def log_sigmoid_backward(grad_output: float | np.integer[Any], x: _Scalar, *,
                         out: None = ...) -> np.float64: ...
@overload
def log_sigmoid_backward(grad_output: Sequence[Any], x: ArrayLike, *,
                         out: NDArray[Any] | None = ...) -> NDArray[np.floating[Any]]: ...
@_docs.doc(saved="x")
def log_sigmoid_backward(grad_output: ArrayLike, x: ArrayLike, *,
                         out: NDArray[Any] | None = None) -> Any:
    """Fused backward of :func:`log_sigmoid` from its input: ``grad_output * sigmoid(-x)``.

    Parameters
    ----------
    {grad_output}
    {x_saved}
    {out_backward}

    Returns
    -------
    {returns_backward}

    Notes
    -----
    Formula: ``g log_sigmoid'(x) = g sigmoid(-x)``, with
    :func:`log_sigmoid_grad`'s stable sigmoid, in one pass.

    Examples
    --------
    >>> import mlkern
    >>> float(mlkern.log_sigmoid_backward(4.0, 0.0))
    2.0
    """
    r = _binary(_B_LOGSIG, grad_output, x, out)
    return binary_slow(_B_LOGSIG, grad_output, x, out, saved="x") if r is None else r


# ---------------------------------------------------------------- gelu
def _gelu_ops(approximate):
    if approximate == "none":
        return _GELU, _GELU_GRAD, _B_GELU
    if approximate == "tanh":
        return _GELU_TANH, _GELU_TANH_GRAD, _B_GELU_TANH
    raise ValueError(f"approximate: expected 'none' or 'tanh', got {approximate!r}")


@overload
def gelu(x: NDArray[_F], *, approximate: Literal["none", "tanh"] = ...,
         out: NDArray[_F] | None = ...) -> NDArray[_F]: ...
@overload
def gelu(x: NDArray[np.integer[Any] | np.bool], *, approximate: Literal["none", "tanh"] = ...,
         out: NDArray[np.float64] | None = ...) -> NDArray[np.float64]: ...
@overload
def gelu(x: _F, *, approximate: Literal["none", "tanh"] = ..., out: None = ...) -> _F: ...
@overload
def gelu(x: float | np.integer[Any], *, approximate: Literal["none", "tanh"] = ...,
         out: None = ...) -> np.float64: ...
@overload
def gelu(x: Sequence[Any], *, approximate: Literal["none", "tanh"] = ...,
         out: NDArray[Any] | None = ...) -> NDArray[np.floating[Any]]: ...
@_docs.doc()
def gelu(x: ArrayLike, *, approximate: Literal['none', 'tanh'] = "none",
         out: NDArray[Any] | None = None) -> Any:
    """Gaussian error linear unit, ``x * Phi(x)``.

    Parameters
    ----------
    {x}
    approximate : {"none", "tanh"}
        ``"none"``: exact, ``Phi`` the standard normal CDF.  ``"tanh"``:
        ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``.
    {out}

    Returns
    -------
    {returns_x}

    Notes
    -----
    Formula: ``x Phi(x)``; derivative ``Phi(x) + x phi(x)``.  ``Phi`` comes
    from one erfc-type rational times the Gaussian factor.  The tanh form:
    ``1/2 x (1 + tanh u), u = sqrt(2/pi) (x + 0.044715 x^3)``, with derivative
    ``sigmoid(2u) + 2 x u' sigmoid(2u) sigmoid(-2u)``; ``u`` is computed with
    compensated products.

    Derivative: ``Phi(x) + x phi(x)``.  Stability: ``Phi`` is evaluated with
    relative accuracy in the left tail (the Gaussian factor ``exp(-x^2/2)``
    is computed from an exactly split ``x^2``), so ``gelu(-30)`` is the tiny
    true value, not 0 or noise.  The tanh form is evaluated as
    ``x * sigmoid(2u)``, which does not cancel for ``x << 0``.

    Examples
    --------
    >>> import mlkern
    >>> float(mlkern.gelu(0.0)), round(float(mlkern.gelu(1.0)), 12)
    (0.0, 0.841344746069)
    """
    f, _, _ = _gelu_ops(approximate)
    r = _unary(f, x, out)
    return unary_slow(f, x, out) if r is None else r


@overload
def gelu_grad(x: NDArray[_F], *, approximate: Literal["none", "tanh"] = ...,
              out: NDArray[_F] | None = ...) -> NDArray[_F]: ...
@overload
def gelu_grad(x: NDArray[np.integer[Any] | np.bool], *, approximate: Literal["none", "tanh"] = ...,
              out: NDArray[np.float64] | None = ...) -> NDArray[np.float64]: ...
@overload
def gelu_grad(x: _F, *, approximate: Literal["none", "tanh"] = ..., out: None = ...) -> _F: ...
@overload
def gelu_grad(x: float | np.integer[Any], *, approximate: Literal["none", "tanh"] = ...,
              out: None = ...) -> np.float64: ...
@overload
def gelu_grad(x: Sequence[Any], *, approximate: Literal["none", "tanh"] = ...,
              out: NDArray[Any] | None = ...) -> NDArray[np.floating[Any]]: ...
@_docs.doc()
def gelu_grad(x: ArrayLike, *, approximate: Literal['none', 'tanh'] = "none",
              out: NDArray[Any] | None = None) -> Any:
    """Derivative of :func:`gelu`: ``Phi(x) + x phi(x)`` (or that of the tanh form).

    Parameters
    ----------
    {x}
    approximate : {"none", "tanh"}
        As in the forward call: the exact GELU or its tanh form.
    {out}

    Returns
    -------
    {returns_x}

    Notes
    -----
    Formula: ``gelu'(x) = Phi(x) + x phi(x)``.  Computed from one exponential:
    with ``h = Phi(-|x|)``, ``h + x phi(x)`` for ``x < 0`` and
    ``1 - (h - x phi(x))`` above, the Gaussian factor taken from an exactly
    split ``x^2``, so the left tail is relatively accurate.  Beyond
    ``|x| = 40`` (float64; 14.5 in float32) the limits are returned: -0.0 on
    the left, 1 on the right.  The tanh form: ``sigmoid(2u) + x (2u')
    sigmoid(2u) sigmoid(-2u)``, ``u = sqrt(2/pi) (x + 0.044715 x^3)``, both
    sigmoids from one exponential.  NaN stays NaN.

    Examples
    --------
    >>> import mlkern
    >>> float(mlkern.gelu_grad(0.0))
    0.5
    >>> float(mlkern.gelu_grad(float("-inf"))), float(mlkern.gelu_grad(float("inf")))
    (-0.0, 1.0)
    """
    _, g, _ = _gelu_ops(approximate)
    r = _unary(g, x, out)
    return unary_slow(g, x, out) if r is None else r


@overload
def gelu_backward(grad_output: NDArray[_F], x: ArrayLike, *,
                  approximate: Literal["none", "tanh"] = ...,
                  out: NDArray[_F] | None = ...) -> NDArray[_F]: ...
@overload
def gelu_backward(grad_output: NDArray[np.integer[Any] | np.bool], x: ArrayLike, *,
                  approximate: Literal["none", "tanh"] = ...,
                  out: NDArray[np.float64] | None = ...) -> NDArray[np.float64]: ...
@overload
def gelu_backward(grad_output: _F, x: _Scalar, *, approximate: Literal["none", "tanh"] = ...,
                  out: None = ...) -> _F: ...
@overload
def gelu_backward(grad_output: float | np.integer[Any], x: _Scalar, *,
                  approximate: Literal["none", "tanh"] = ..., out: None = ...) -> np.float64: ...
@overload
def gelu_backward(grad_output: Sequence[Any], x: ArrayLike, *,
                  approximate: Literal["none", "tanh"] = ...,
                  out: NDArray[Any] | None = ...) -> NDArray[np.floating[Any]]: ...
@_docs.doc(saved="x")
def gelu_backward(grad_output: ArrayLike, x: ArrayLike, *,
                  approximate: Literal['none', 'tanh'] = "none",
                  out: NDArray[Any] | None = None) -> Any:
    """Fused backward of :func:`gelu` from its input: ``grad_output * gelu_grad(x)``.

    Parameters
    ----------
    {grad_output}
    {x_saved}
    approximate : {"none", "tanh"}
        As in the forward call: the exact GELU or its tanh form.
    {out_backward}

    Returns
    -------
    {returns_backward}

    Notes
    -----
    Formula: ``g gelu'(x) = g (Phi(x) + x phi(x))`` (or ``g`` times the tanh
    form's derivative), with :func:`gelu_grad`'s one-exponential evaluation,
    in one pass.

    Examples
    --------
    >>> import mlkern
    >>> float(mlkern.gelu_backward(2.0, 0.0))
    1.0
    """
    _, _, b = _gelu_ops(approximate)
    r = _binary(b, grad_output, x, out)
    return binary_slow(b, grad_output, x, out, saved="x") if r is None else r


# ---------------------------------------------------------------- noisy relu
def _seed_key(seed):
    if seed is None:
        return int(np.random.SeedSequence().generate_state(1, np.uint64)[0])
    if isinstance(seed, np.random.Generator):
        return int(seed.integers(0, 2**63 - 1, dtype=np.int64))
    if isinstance(seed, (bool, np.bool_)):
        raise TypeError("seed: expected an int, a numpy.random.Generator or None, got bool")
    try:
        s = operator.index(seed)
    except TypeError:
        raise TypeError("seed: expected an int, a numpy.random.Generator or None, got "
                        f"{type(seed).__name__}") from None
    # any int is accepted: reduce to 64 bits, then mix so nearby seeds differ
    return int(np.random.SeedSequence(s % 2**64).generate_state(1, np.uint64)[0])


@overload
def noisy_relu(x: NDArray[_F], *, sigma: float | None = ...,
               seed: int | np.random.Generator | None = ...,
               out: NDArray[_F] | None = ...) -> NDArray[_F]: ...
@overload
def noisy_relu(x: NDArray[np.integer[Any] | np.bool], *, sigma: float | None = ...,
               seed: int | np.random.Generator | None = ...,
               out: NDArray[np.float64] | None = ...) -> NDArray[np.float64]: ...
@overload
def noisy_relu(x: _F, *, sigma: float | None = ..., seed: int | np.random.Generator | None = ...,
               out: None = ...) -> _F: ...
@overload
def noisy_relu(x: float | np.integer[Any], *, sigma: float | None = ...,
               seed: int | np.random.Generator | None = ..., out: None = ...) -> np.float64: ...
@overload
def noisy_relu(x: Sequence[Any], *, sigma: float | None = ...,
               seed: int | np.random.Generator | None = ...,
               out: NDArray[Any] | None = ...) -> NDArray[np.floating[Any]]: ...
@_docs.doc()
def noisy_relu(x: ArrayLike, *, sigma: float | None = None,
               seed: int | np.random.Generator | None = None,
               out: NDArray[Any] | None = None) -> Any:
    """Noisy ReLU, ``max(0, x + Y)``, ``Y ~ N(0, s^2)``.

    Parameters
    ----------
    {x}
    sigma : float or None
        Noise standard deviation ``s``.  ``None`` (Nair & Hinton):
        ``s^2 = sigmoid(x)``, the *variance* is the logistic sigmoid of x.
    seed : int, numpy.random.Generator or None
        The same seed gives the same output for any number of threads: the
        noise of element i is a pure function of (seed, i) (a counter-based
        generator, Box-Muller on two hashed 53-bit uniforms).  A Generator is
        asked for one integer; None draws fresh entropy.
    {out}

    Returns
    -------
    {returns_x}

    Notes
    -----
    Formula: ``max(0, x + Y), Y ~ N(0, s^2), s^2 = sigmoid(x) or s = sigma``.
    Derivative: 1 where y > 0 (that is, where the output > 0).

    Training-time only: the backward is :func:`noisy_relu_backward` from the
    output ``y``; there is no ``noisy_relu_grad``.  For float32 input the noise
    is drawn in float64 and the sum rounded once.

    Examples
    --------
    >>> import mlkern
    >>> a = mlkern.noisy_relu([1.0, -5.0, 3.0], seed=0)
    >>> b = mlkern.noisy_relu([1.0, -5.0, 3.0], seed=0)
    >>> bool((a == b).all())
    True
    """
    s = -1.0 if sigma is None else check_real(sigma, "sigma", nonnegative=True)
    key = _seed_key(seed)
    r = _unary(_NOISY_RELU, x, out, s, 0.0, 0.0, key)
    return unary_slow(_NOISY_RELU, x, out, s, 0.0, 0.0, key) if r is None else r


@overload
def noisy_relu_backward(grad_output: NDArray[_F], y: ArrayLike, *,
                        out: NDArray[_F] | None = ...) -> NDArray[_F]: ...
@overload
def noisy_relu_backward(grad_output: NDArray[np.integer[Any] | np.bool], y: ArrayLike, *,
                        out: NDArray[np.float64] | None = ...) -> NDArray[np.float64]: ...
@overload
def noisy_relu_backward(grad_output: _F, y: _Scalar, *, out: None = ...) -> _F: ...
@overload
def noisy_relu_backward(grad_output: float | np.integer[Any], y: _Scalar, *,
                        out: None = ...) -> np.float64: ...
@overload
def noisy_relu_backward(grad_output: Sequence[Any], y: ArrayLike, *,
                        out: NDArray[Any] | None = ...) -> NDArray[np.floating[Any]]: ...
@_docs.doc(saved="y")
def noisy_relu_backward(grad_output: ArrayLike, y: ArrayLike, *,
                        out: NDArray[Any] | None = None) -> Any:
    """Backward of :func:`noisy_relu` from its output: ``grad_output`` where ``y > 0``, else 0.

    Parameters
    ----------
    {grad_output}
    y : array_like
        The forward *output* of :func:`noisy_relu` (the noise is in it).
    {out_backward}

    Returns
    -------
    {returns_backward}

    Notes
    -----
    Formula: ``g * (1 if y > 0 else 0)``: the noisy ReLU passes the gradient
    where its output is positive, treating the noise as a constant.  It is the
    ReLU backward kernel applied to ``y``, so NaN in ``y`` or ``g`` gives NaN.
    There is no ``noisy_relu_grad``: the derivative depends on the noise drawn.

    Examples
    --------
    >>> import mlkern
    >>> mlkern.noisy_relu_backward([3.0, 3.0], [0.0, 2.0]).tolist()
    [0.0, 3.0]
    """
    r = _binary(_B_RELU, grad_output, y, out)
    return binary_slow(_B_RELU, grad_output, y, out, saved="y") if r is None else r
