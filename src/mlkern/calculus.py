"""Calculus helpers (docs/contract.rst, "Calculus"): central-difference gradients,
a gradient checker, and the derivative of an activation by name.

These are pure NumPy (each ``numerical_grad`` evaluates ``f`` twice per
coordinate); they exist to test analytic gradients, not to train.  They are
not array functions in the sense of the Scale-out contract: a dask ``x`` is
refused with a ``TypeError`` (never computed silently); ``derivative(name)``
returns ``mlkern.<name>_grad``, which is lazy on dask arrays.
"""
from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["numerical_grad", "gradcheck", "derivative", "GradcheckError"]


class GradcheckError(AssertionError):
    """Raised by :func:`gradcheck`: an analytic gradient disagrees with the numerical one.

    ``index``, ``analytic`` and ``numerical`` hold the worst element.  A
    subclass of ``AssertionError``, so a failed check reads as a failed test.

    Parameters
    ----------
    msg : str
        The message: the worst index, both values and how many elements failed.
    index : tuple of int
        The worst element's index (``()`` for a 0-d x).
    analytic : float
        ``grad_f(x)`` there.
    numerical : float
        :func:`numerical_grad` there.

    Notes
    -----
    The worst element is the one furthest outside the tolerance
    ``|analytic - numerical| <= atol + rtol |numerical|`` (a NaN counts as
    furthest).

    Examples
    --------
    >>> import numpy as np, mlkern
    >>> try:
    ...     mlkern.calculus.gradcheck(lambda v: float(np.sum(v ** 2)), lambda v: v, [1.0, 3.0])
    ... except mlkern.calculus.GradcheckError as e:
    ...     print(e.index, e.analytic, round(e.numerical, 6))
    (1,) 3.0 6.0
    """

    index: tuple[int, ...]
    analytic: float
    numerical: float

    def __init__(self, msg: str, index: tuple[int, ...], analytic: float,
                 numerical: float) -> None:
        super().__init__(msg)
        self.index = index
        self.analytic = analytic
        self.numerical = numerical


def _point(x: ArrayLike) -> NDArray[np.floating[Any]]:
    if type(x).__module__.startswith("dask."):
        # not an array function: f is evaluated at points near x, in memory
        raise TypeError("x: a dask array; numerical differentiation evaluates f at points near "
                        "x in memory, so it takes a NumPy array: pass x.compute() (docs/dask.rst)")
    a = np.array(x, copy=True, order="C")      # C order: reshape(-1) below is a view
    if a.dtype.kind in "biu":
        a = a.astype(np.float64)
    if a.dtype.kind != "f":
        raise TypeError(f"x: expected a real array, got dtype {a.dtype}")
    return a


def numerical_grad(f: Callable[[NDArray[Any]], Any], x: ArrayLike, *,
                   eps: float | None = None) -> NDArray[np.floating[Any]]:
    """Partial derivatives of a scalar-valued ``f`` at ``x`` by central differences.

    One coordinate at a time, holding the others constant:
    ``(f(x + h e_i) - f(x - h e_i)) / (2 h)``.

    Parameters
    ----------
    f : callable
        ``f(x) -> scalar`` for an array of x's shape.
    x : array_like
        The point (integers are taken as float64; x is not modified).
    eps : float, optional
        The step h.  Default ``cbrt(machine eps) * max(1, |x_i|)`` per
        coordinate (about 6e-6 in float64), which balances the O(h^2)
        truncation error against the rounding of f.

    Returns
    -------
    ndarray of x's shape and float dtype

    Notes
    -----
    Formula: ``df/dx_i ~ (f(x + h e_i) - f(x - h e_i)) / (2 h)``, truncation
    error O(h^2).  The divisor is the step actually taken, ``(x_i + h) -
    (x_i - h)`` as rounded, not ``2 h``, so the rounding of ``x_i +- h`` does
    not bias the quotient; a step that vanishes gives NaN.  The quotients are
    formed in float64 and the result cast to x's float dtype; ``f`` is
    called ``2 x.size`` times on a copy of x.

    Examples
    --------
    >>> import numpy as np, mlkern
    >>> g = mlkern.calculus.numerical_grad(lambda v: float(np.sum(v ** 3)), [1.0, 2.0])
    >>> np.round(g, 6).tolist()
    [3.0, 12.0]
    """
    if not callable(f):
        raise TypeError(f"f: expected a callable, got {type(f).__name__}")
    xa = _point(x)
    if eps is not None:
        if isinstance(eps, bool) or not isinstance(eps, numbers.Real) or not eps > 0:
            raise ValueError(f"eps: must be a positive real number, got {eps!r}")
    base = np.finfo(xa.dtype).eps ** (1.0 / 3.0)
    g = np.empty(xa.shape, np.float64)
    flat = xa.reshape(-1)             # a view: xa is a fresh C-contiguous copy
    gflat = g.reshape(-1)
    for i in range(flat.size):
        xi = flat[i]
        h = float(eps) if eps is not None else base * max(1.0, abs(float(xi)))
        flat[i] = xi + h
        hp = float(flat[i]) - float(xi)         # the step actually taken
        fp = float(f(xa))
        flat[i] = xi - h
        hm = float(xi) - float(flat[i])
        fm = float(f(xa))
        flat[i] = xi
        gflat[i] = (fp - fm) / (hp + hm) if hp + hm > 0 else np.nan   # the step vanished
    return g.astype(xa.dtype)


def gradcheck(f: Callable[[NDArray[Any]], Any], grad_f: Callable[[NDArray[Any]], ArrayLike],
              x: ArrayLike, *, rtol: float = 1e-5, atol: float = 1e-8) -> bool:
    """Compare an analytic gradient with :func:`numerical_grad`.

    Parameters
    ----------
    f : callable
        ``f(x) -> scalar``.
    grad_f : callable
        ``grad_f(x) -> array`` of x's shape, the analytic gradient of ``f``;
        called once, on a copy of x.
    x : array_like
        The point (integers are taken as float64).
    rtol : float, optional
        Relative tolerance (default 1e-5).
    atol : float, optional
        Absolute tolerance (default 1e-8).

    Returns
    -------
    bool
        True when ``|analytic - numerical| <= atol + rtol |numerical|``
        everywhere.

    Raises
    ------
    GradcheckError
        Otherwise, naming the worst element's index and both values.
    ValueError
        If ``grad_f`` returns an array of another shape.

    Notes
    -----
    The numerical gradient is :func:`numerical_grad` with its default step
    (central differences, O(h^2)); both gradients are compared in float64.
    A NaN on either side counts as a failure.

    Examples
    --------
    >>> import numpy as np, mlkern
    >>> x = np.array([0.3, -1.2, 2.0])
    >>> mlkern.calculus.gradcheck(lambda v: float(np.sum(mlkern.softplus(v))), mlkern.softplus_grad, x)
    True
    """
    xa = _point(x)
    ga = np.asarray(grad_f(xa.copy()), dtype=np.float64)
    gn = numerical_grad(f, xa).astype(np.float64)
    if ga.shape != gn.shape:
        raise ValueError(f"grad_f: returned shape {ga.shape}, expected x's shape {gn.shape}")
    err = np.abs(ga - gn) - (atol + rtol * np.abs(gn))
    bad = ~(err <= 0)                     # NaN counts as a failure
    if not bad.any():
        return True
    excess = np.where(np.isnan(err), np.inf, err)
    k = int(np.argmax(excess))
    idx = tuple(int(i) for i in np.unravel_index(k, gn.shape)) if gn.ndim else ()
    a, n = float(ga.reshape(-1)[k]), float(gn.reshape(-1)[k])
    raise GradcheckError(f"gradcheck failed at index {idx}: analytic {a!r}, numerical {n!r} "
                         f"({int(bad.sum())} of {bad.size} elements outside rtol={rtol}, "
                         f"atol={atol})", idx, a, n)


_NO_GRAD = {"noisy_relu": "noisy_relu has no elementwise derivative (use noisy_relu_backward)"}


def derivative(name: str) -> Callable[..., Any]:
    """The elementwise derivative function of an activation, by name.

    Parameters
    ----------
    name : str
        An activation of :mod:`mlkern.activations` that has a ``_grad``:
        ``"sigmoid"``, ``"tanh"``, ``"gelu"``, ...

    Returns
    -------
    callable
        ``mlkern.<name>_grad`` itself: ``derivative("sigmoid")`` is
        :func:`mlkern.sigmoid_grad`, with its keyword parameters.

    Raises
    ------
    ValueError
        For an unknown name, and for ``"noisy_relu"`` (no elementwise
        derivative: use ``noisy_relu_backward``).
    TypeError
        If ``name`` is not a string.

    Notes
    -----
    A lookup, no numerics: the returned function is the analytic derivative
    with its own stable evaluation (see each ``_grad`` docstring).

    Examples
    --------
    >>> import mlkern
    >>> mlkern.calculus.derivative("tanh")(0.0)
    np.float64(1.0)
    >>> mlkern.calculus.derivative("sigmoid") is mlkern.sigmoid_grad
    True
    """
    from . import activations

    if not isinstance(name, str):
        raise TypeError(f"name: expected a string, got {type(name).__name__}")
    if name in _NO_GRAD:
        raise ValueError(_NO_GRAD[name])
    fn: Callable[..., Any] | None = getattr(activations, name + "_grad", None)
    if fn is None or name + "_grad" not in activations.__all__:
        names = sorted(n[:-5] for n in activations.__all__ if n.endswith("_grad"))
        raise ValueError(f"derivative: unknown activation {name!r}; known: {', '.join(names)}")
    return fn
