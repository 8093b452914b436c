"""Calculus helpers (SPEC.md, "Calculus"): central-difference gradients,
a gradient checker, and the derivative of an activation by name.

These are pure NumPy (each ``numerical_grad`` evaluates ``f`` twice per
coordinate); they exist to test analytic gradients, not to train.
"""
import numbers

import numpy as np

__all__ = ["numerical_grad", "gradcheck", "derivative", "GradcheckError"]


class GradcheckError(AssertionError):
    """Raised by :func:`gradcheck`; ``index``, ``analytic`` and ``numerical``
    hold the worst element."""

    def __init__(self, msg, index, analytic, numerical):
        super().__init__(msg)
        self.index = index
        self.analytic = analytic
        self.numerical = numerical


def _point(x):
    a = np.array(x, copy=True, order="C")      # C order: reshape(-1) below is a view
    if a.dtype.kind in "biu":
        a = a.astype(np.float64)
    if a.dtype.kind != "f":
        raise TypeError(f"x: expected a real array, got dtype {a.dtype}")
    return a


def numerical_grad(f, x, *, eps=None):
    """Partial derivatives of a scalar-valued ``f`` at ``x`` by central
    differences, one coordinate at a time holding the others constant:
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


def gradcheck(f, grad_f, x, *, rtol=1e-5, atol=1e-8):
    """Compare an analytic gradient with :func:`numerical_grad`.

    Returns True when ``|analytic - numerical| <= atol + rtol |numerical|``
    everywhere; otherwise raises :class:`GradcheckError` naming the worst
    element's index and both values.

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


def derivative(name):
    """The elementwise derivative function of an activation by name:
    ``derivative("sigmoid")`` is :func:`mlkern.sigmoid_grad`.

    Examples
    --------
    >>> import mlkern
    >>> mlkern.calculus.derivative("tanh")(0.0)
    np.float64(1.0)
    """
    from . import activations

    if not isinstance(name, str):
        raise TypeError(f"name: expected a string, got {type(name).__name__}")
    if name in _NO_GRAD:
        raise ValueError(_NO_GRAD[name])
    fn = getattr(activations, name + "_grad", None)
    if fn is None or name + "_grad" not in activations.__all__:
        names = sorted(n[:-5] for n in activations.__all__ if n.endswith("_grad"))
        raise ValueError(f"derivative: unknown activation {name!r}; known: {', '.join(names)}")
    return fn
