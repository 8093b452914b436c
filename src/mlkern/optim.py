"""Optimisers (docs/contract.rst, "Optimisers"): fused in-place step functions and
the classes that hold parameters and state.

Each step function is one pass over memory: the parameter, the gradient
and the state are read once, the parameter and the state written once, in
the parameter's own buffer.  float32 and float64, in parallel above the
work threshold; each element is updated on its own, so the result does
not depend on the thread count.  The order of operations is PyTorch's
(``torch.optim`` with ``foreach=False``), so trajectories agree with it to
rounding where the conventions agree.

Parameters and state arrays must be NumPy arrays of one float dtype and
one shape, writeable, C-contiguous and distinct: mlkern never updates a
silent copy (which would lose the update) and raises instead.  The gradient
must have the parameter's shape and dtype; it may have any layout (a
non-contiguous gradient is copied once).  Dask arrays are refused with
``TypeError`` (the update is in place; compute a dask gradient first).

Weight decay is coupled (``g + weight_decay * param``) everywhere, except
in :class:`AdamW` / ``adam_step(..., decoupled=True)``, where the
parameter is first multiplied by ``1 - lr * weight_decay``.
"""
from __future__ import annotations

import math
import numbers
import operator
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, ClassVar, SupportsIndex, TypeVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import _docs
from . import _kernels as _ew
from ._ops import OPTIM
from ._validation import (check_distinct, check_lr, check_nonneg, check_param, check_unit,
                          step_checks)

__all__ = [
    "sgd_step", "momentum_step", "nesterov_step", "adagrad_step", "adadelta_step",
    "rmsprop_step", "adam_step",
    "Optimizer", "SGD", "Momentum", "Nesterov", "Adagrad", "Adadelta", "RMSprop", "Adam",
    "AdamW", "minibatches",
]

_P = TypeVar("_P", bound=NDArray[Any])
# a learning rate: a number, or a function of the 1-based step number
_LR = float | Callable[[int], float]

# op codes, by name from the op table (_c/mlk_kernels.h, MLK_O_*)
_SGD, _MOMENTUM, _NESTEROV = OPTIM["sgd"], OPTIM["momentum"], OPTIM["nesterov"]
_ADAGRAD, _ADADELTA, _RMSPROP = OPTIM["adagrad"], OPTIM["adadelta"], OPTIM["rmsprop"]
_ADAM, _ADAMW = OPTIM["adam"], OPTIM["adamw"]


def _run(op, fname, param, grad, states, names, **hyper):
    s1 = states[0] if states else None
    s2 = states[1] if len(states) > 1 else None
    if not _ew.optim_fast_ok(param, grad, s1, s2):       # the common case in one C call
        param, grad = step_checks(param, grad, states, names, fname)
    _ew.optim_raw(op, param, grad, s1, s2, **hyper)
    return param


# The kernel arguments of each rule, validated: (op, hyper-parameters).
# Shared by the step functions and the classes (which build them once per step).
def _sgd_k(f, lr, weight_decay):
    return _SGD, dict(lr=check_lr(lr, f), wd=check_nonneg(weight_decay, "weight_decay", f))


def _momentum_k(f, op, lr, momentum, weight_decay):
    return op, dict(lr=check_lr(lr, f), mom=check_unit(momentum, "momentum", f),
                       wd=check_nonneg(weight_decay, "weight_decay", f))


def _adagrad_k(f, lr, eps, weight_decay):
    return _ADAGRAD, dict(lr=check_lr(lr, f), eps=check_nonneg(eps, "eps", f),
                             wd=check_nonneg(weight_decay, "weight_decay", f))


def _adadelta_k(f, lr, rho, eps, weight_decay):
    return _ADADELTA, dict(lr=check_lr(lr, f), beta1=check_unit(rho, "rho", f, closed=True),
                              eps=check_nonneg(eps, "eps", f), wd=check_nonneg(weight_decay, "weight_decay", f))


def _rmsprop_k(f, lr, alpha, eps, weight_decay):
    return _RMSPROP, dict(lr=check_lr(lr, f), beta2=check_unit(alpha, "alpha", f, closed=True),
                             eps=check_nonneg(eps, "eps", f), wd=check_nonneg(weight_decay, "weight_decay", f))


@_docs.doc()
def sgd_step(param: _P, grad: ArrayLike, *, lr: float, weight_decay: float = 0.0) -> _P:
    """One SGD step in place: ``param -= lr * (grad + weight_decay * param)``.

    Parameters
    ----------
    {param}
    {grad_param}
    {lr}
    {weight_decay}

    Returns
    -------
    {returns_param}

    Notes
    -----
    Formula: ``param -= lr g``, with
    ``g = grad + weight_decay * param`` (coupled weight decay).

    {optim_pass}

    Examples
    --------
    >>> import numpy as np, mlkern.optim as opt
    >>> p = np.array([1.0, 2.0])
    >>> opt.sgd_step(p, np.array([0.5, -1.0]), lr=0.1).tolist()
    [0.95, 2.1]
    """
    f = "sgd_step"
    op, hyper = _sgd_k(f, lr, weight_decay)
    return _run(op, f, param, grad, (), (), **hyper)


@_docs.doc()
def momentum_step(param: _P, grad: ArrayLike, velocity: NDArray[Any], *, lr: float,
                  momentum: float = 0.9, weight_decay: float = 0.0) -> _P:
    """One momentum step in place: ``v = momentum v + lr g; param -= v``.

    The velocity includes the learning rate (the seeds' form): it is ``lr``
    times PyTorch's momentum buffer, and the trajectory equals
    ``torch.optim.SGD(momentum=momentum)`` with a constant lr.

    Parameters
    ----------
    {param}
    {grad_param}
    velocity : ndarray
        State ``v``, param's shape and dtype, C-contiguous, updated in place
        (start at zeros).
    {lr}
    {momentum}
    {weight_decay}

    Returns
    -------
    {returns_param}

    Notes
    -----
    Formula: ``v = momentum v + lr g; param -= v``, with
    ``g = grad + weight_decay * param`` (coupled weight decay).

    {optim_pass}

    Examples
    --------
    >>> import numpy as np, mlkern.optim as opt
    >>> p, v = np.array([1.0]), np.zeros(1)
    >>> opt.momentum_step(p, np.array([1.0]), v, lr=0.1); opt.momentum_step(p, np.array([1.0]), v, lr=0.1)
    array([0.9])
    array([0.71])
    >>> v.tolist()
    [0.19]
    """
    f = "momentum_step"
    op, hyper = _momentum_k(f, _MOMENTUM, lr, momentum, weight_decay)
    return _run(op, f, param, grad, (velocity,), ("velocity",), **hyper)


@_docs.doc()
def nesterov_step(param: _P, grad: ArrayLike, velocity: NDArray[Any], *, lr: float,
                  momentum: float = 0.9, weight_decay: float = 0.0) -> _P:
    """One Nesterov momentum step in place, in the look-ahead form.

    It needs the gradient at ``param`` only::

        v = momentum v + lr g;   param -= momentum v + lr g

    Derivation: Nesterov's update is ``v' = mu v + lr grad J(theta - mu v)``,
    ``theta' = theta - v'``.  Store the look-ahead point
    ``phi = theta - mu v`` as the parameter instead; then the gradient is
    taken at ``phi`` (``g = grad J(phi)``) and
    ``phi' = theta' - mu v' = phi + mu v - (1 + mu) v' = phi - mu v' - lr g``,
    which is the update above.  It equals ``torch.optim.SGD(momentum=mu,
    nesterov=True)`` with ``v = lr x`` its buffer.

    Parameters
    ----------
    {param}
    {grad_param}
    velocity : ndarray
        State ``v``, param's shape and dtype, C-contiguous, updated in place
        (start at zeros).
    {lr}
    {momentum}
    {weight_decay}

    Returns
    -------
    {returns_param}

    Notes
    -----
    Formula: ``v = momentum v + lr g; param -= momentum v + lr g``, with
    ``g = grad + weight_decay * param`` (coupled weight decay);
    ``lr g`` is computed once.

    {optim_pass}

    Examples
    --------
    >>> import numpy as np, mlkern.optim as opt
    >>> p, v = np.array([1.0]), np.zeros(1)
    >>> opt.nesterov_step(p, np.array([1.0]), v, lr=0.1).tolist()
    [0.81]
    """
    f = "nesterov_step"
    op, hyper = _momentum_k(f, _NESTEROV, lr, momentum, weight_decay)
    return _run(op, f, param, grad, (velocity,), ("velocity",), **hyper)


@_docs.doc()
def adagrad_step(param: _P, grad: ArrayLike, sum_sq: NDArray[Any], *, lr: float,
                 eps: float = 1e-10, weight_decay: float = 0.0) -> _P:
    """One Adagrad step in place: ``G += g**2; param -= lr g / (sqrt(G) + eps)``.

    Parameters
    ----------
    {param}
    {grad_param}
    sum_sq : ndarray
        State G, param's shape and dtype (start at zeros), updated in place.
    {lr}
    eps : float, optional
        Outside the square root (as PyTorch), >= 0 (default 1e-10).
    {weight_decay}

    Returns
    -------
    {returns_param}

    Notes
    -----
    Formula: ``G += g^2; param -= lr g / (sqrt(G) + eps)``, with
    ``g = grad + weight_decay * param`` (coupled weight decay).

    {optim_pass}

    Examples
    --------
    >>> import numpy as np, mlkern.optim as opt
    >>> p, G = np.array([1.0]), np.zeros(1)
    >>> opt.adagrad_step(p, np.array([2.0]), G, lr=0.1).tolist(), G.tolist()
    ([0.900000000005], [4.0])
    """
    f = "adagrad_step"
    op, hyper = _adagrad_k(f, lr, eps, weight_decay)
    return _run(op, f, param, grad, (sum_sq,), ("sum_sq",), **hyper)


@_docs.doc()
def adadelta_step(param: _P, grad: ArrayLike, sq_avg: NDArray[Any], delta_avg: NDArray[Any], *,
                  rho: float = 0.9, eps: float = 1e-6, lr: float = 1.0,
                  weight_decay: float = 0.0) -> _P:
    """One Adadelta step in place (Zeiler 2012, as PyTorch)::

        S = rho S + (1 - rho) g**2
        d = sqrt(D + eps) / sqrt(S + eps) * g
        D = rho D + (1 - rho) d**2
        param -= lr d

    ``eps`` sits inside both roots; ``lr`` scales the applied update while
    D accumulates the unscaled d**2.

    Parameters
    ----------
    {param}
    {grad_param}
    sq_avg : ndarray
        State S, the running mean of g**2 (start at zeros), updated in place.
    delta_avg : ndarray
        State D, the running mean of d**2 (start at zeros), updated in place.
    rho : float, optional
        In [0, 1] (default 0.9).
    eps : float, optional
        Inside both square roots, >= 0 (default 1e-6).
    lr : float, optional
        Scales the applied update, finite and >= 0 (default 1).
    {weight_decay}

    Returns
    -------
    {returns_param}

    Notes
    -----
    Formula: as above, with ``g = grad + weight_decay * param`` (coupled
    weight decay).

    {optim_pass}

    Examples
    --------
    >>> import numpy as np, mlkern.optim as opt
    >>> p, S, D = np.array([1.0]), np.zeros(1), np.zeros(1)
    >>> round(float(opt.adadelta_step(p, np.array([1.0]), S, D)[0]), 9)
    0.996837738
    """
    f = "adadelta_step"
    op, hyper = _adadelta_k(f, lr, rho, eps, weight_decay)
    return _run(op, f, param, grad, (sq_avg, delta_avg), ("sq_avg", "delta_avg"), **hyper)


@_docs.doc()
def rmsprop_step(param: _P, grad: ArrayLike, sq_avg: NDArray[Any], *, lr: float,
                 alpha: float = 0.99, eps: float = 1e-8, weight_decay: float = 0.0) -> _P:
    """One RMSprop step in place: ``param -= lr g / (sqrt(S) + eps)``, S the running mean of g**2.

    ``S = alpha S + (1 - alpha) g**2; param -= lr g / (sqrt(S) + eps)``.

    Parameters
    ----------
    {param}
    {grad_param}
    sq_avg : ndarray
        State S, param's shape and dtype (start at zeros), updated in place.
    {lr}
    alpha : float, optional
        In [0, 1] (default 0.99).
    eps : float, optional
        Outside the root (as PyTorch), >= 0 (default 1e-8).
    {weight_decay}

    Returns
    -------
    {returns_param}

    Notes
    -----
    Formula: ``S = alpha S + (1 - alpha) g^2; param -= lr g / (sqrt(S) + eps)``, with
    ``g = grad + weight_decay * param`` (coupled weight decay).

    {optim_pass}

    Examples
    --------
    >>> import numpy as np, mlkern.optim as opt
    >>> p, S = np.array([1.0]), np.zeros(1)
    >>> round(float(opt.rmsprop_step(p, np.array([1.0]), S, lr=0.01)[0]), 9)
    0.90000001
    """
    f = "rmsprop_step"
    op, hyper = _rmsprop_k(f, lr, alpha, eps, weight_decay)
    return _run(op, f, param, grad, (sq_avg,), ("sq_avg",), **hyper)


def _adam_hyper(fname, step, lr, beta1, beta2, eps, weight_decay, decoupled):
    if isinstance(step, (bool, np.bool_)) or not isinstance(step, (numbers.Integral, np.integer)):
        raise TypeError(f"{fname}: step must be an integer (the 1-based count of this update), "
                        f"got {type(step).__name__}")
    t = operator.index(step)
    if t < 1:
        raise ValueError(f"{fname}: step must be >= 1 (the 1-based count of this update), got {t}")
    lr = check_lr(lr, fname)
    b1 = check_unit(beta1, "beta1", fname)
    b2 = check_unit(beta2, "beta2", fname)
    eps = check_nonneg(eps, "eps", fname)
    wd = check_nonneg(weight_decay, "weight_decay", fname)
    bc1 = 1.0 - b1 ** t                     # float64, as the contract asks
    bc2 = 1.0 - b2 ** t
    hyper = dict(lr=lr, beta1=b1, beta2=b2, eps=eps, step_size=lr / bc1,
                 rbc2=1.0 / math.sqrt(bc2))
    if decoupled:
        return _ADAMW, dict(hyper, decay=1.0 - lr * wd)
    return _ADAM, dict(hyper, wd=wd)


@_docs.doc()
def adam_step(param: _P, grad: ArrayLike, m: NDArray[Any], v: NDArray[Any], *, step: SupportsIndex,
              lr: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8,
              weight_decay: float = 0.0, decoupled: bool = False) -> _P:
    """One Adam (or AdamW) step in place::

        m = beta1 m + (1 - beta1) g       (as m += (1 - beta1)(g - m))
        v = beta2 v + (1 - beta2) g**2
        param -= lr / (1 - beta1**step) * m / (sqrt(v) / sqrt(1 - beta2**step) + eps)

    The bias corrections are computed in float64 and rounded once.
    ``decoupled=True`` is AdamW: ``param *= 1 - lr * weight_decay`` first
    and the gradient is used as is; otherwise weight decay is added to the
    gradient.

    Parameters
    ----------
    {param}
    {grad_param}
    m : ndarray
        The first-moment estimate (start at zeros), updated in place.
    v : ndarray
        The second-moment estimate (start at zeros), updated in place.
    step : int
        The 1-based count of this update (>= 1).
    lr : float, optional
        Learning rate, finite and >= 0 (default 1e-3).
    beta1 : float, optional
        In [0, 1) (default 0.9).
    beta2 : float, optional
        In [0, 1) (default 0.999).
    eps : float, optional
        Added to the bias-corrected ``sqrt(v)``, >= 0 (default 1e-8).
    weight_decay : float, optional
        >= 0 (default 0): coupled, or decoupled with ``decoupled=True``.
    decoupled : bool, optional
        AdamW's decoupled weight decay (default False).

    Returns
    -------
    {returns_param}

    Notes
    -----
    Formula: as above, with ``g = grad + weight_decay * param`` (coupled
    weight decay) unless ``decoupled``.  The first moment is updated as
    ``m += (1 - beta1) (g - m)`` (a lerp: m's rounding does not grow); the
    bias corrections ``1 - beta1**step`` and ``1 - beta2**step``
    are computed in float64 and enter as ``lr / (1 - beta1**step)`` and
    ``1 / sqrt(1 - beta2**step)``, each rounded once to the parameter's dtype.

    {optim_pass}

    Examples
    --------
    >>> import numpy as np, mlkern.optim as opt
    >>> p, m, v = np.array([1.0]), np.zeros(1), np.zeros(1)
    >>> round(float(opt.adam_step(p, np.array([0.5]), m, v, step=1, lr=0.1)[0]), 9)
    0.900000002
    """
    f = "adam_step"
    op, hyper = _adam_hyper(f, step, lr, beta1, beta2, eps, weight_decay, decoupled)
    return _run(op, f, param, grad, (m, v), ("m", "v"), **hyper)


# ---------------------------------------------------------------------------
# classes
# ---------------------------------------------------------------------------

@_docs.doc()
class Optimizer:
    """Base class: a list of parameter arrays, their state, a step count.

    ``step(grads)`` updates every parameter in place from the matching
    gradient; ``state_dict()`` / ``load_state_dict(d)`` save and restore the
    step count, the hyper-parameters and copies of the state arrays (a
    reloaded optimiser continues bit for bit); ``zero_state()`` resets the
    state to zeros and the step count to 0.  ``lr`` is a float or a callable
    of the 1-based step number that returns one.

    Parameters
    ----------
    {params}
    lr : float or callable
        Learning rate, finite and >= 0, or a callable of the 1-based step
        number that returns one (checked at every step).
    **hyper
        The subclass's hyper-parameters, kept in ``self.hyper``.

    Notes
    -----
    The base class is not usable by itself (its :meth:`step` raises
    ``NotImplementedError``); a subclass names its state arrays and the
    kernel of its update rule.  Attributes: ``params`` (the list of arrays),
    ``lr``, ``hyper``, ``step_count`` (steps taken) and ``state`` (one dict of
    state arrays per parameter).

    Examples
    --------
    >>> import numpy as np, mlkern.optim as opt
    >>> w = np.array([1.0])
    >>> o = opt.Momentum([w], lr=0.1)
    >>> isinstance(o, opt.Optimizer), o.step_count, sorted(o.state[0])
    (True, 0, ['velocity'])
    """
    params: list[NDArray[Any]]
    lr: _LR
    hyper: dict[str, Any]
    step_count: int
    state: list[dict[str, NDArray[Any]]]
    _state_names: ClassVar[tuple[str, ...]] = ()

    def __init__(self, params: NDArray[Any] | Iterable[NDArray[Any]], lr: _LR,
                 **hyper: Any) -> None:
        if isinstance(params, np.ndarray):
            params = [params]
        self.params = list(params)
        name = type(self).__name__
        if not self.params:
            raise ValueError(f"{name}: params is empty")
        for i, p in enumerate(self.params):
            check_param(p, f"{name}: params[{i}]")
        check_distinct(self.params, [f"params[{i}]" for i in range(len(self.params))], name)
        if not callable(lr):
            check_lr(lr, name)
        self.lr = lr
        self.hyper = hyper
        self.step_count = 0
        self.state = [{k: np.zeros_like(p) for k in self._state_names} for p in self.params]

    def _kernel(self, lr: float, t: int) -> tuple[int, dict[str, float]]:
        """(op, kernel hyper-parameters) of step t, validated."""
        raise NotImplementedError("Optimizer is a base class: use SGD, Adam, ...")

    def _current_lr(self, t: int) -> float:
        lr = self.lr(t) if callable(self.lr) else self.lr
        return check_lr(lr, type(self).__name__)

    def step(self, grads: ArrayLike | Sequence[ArrayLike]) -> None:
        """Update every parameter in place from ``grads``; returns None.

        Parameters
        ----------
        grads : ndarray or list of array_like
            One gradient per parameter, in the order of ``params`` (one array
            for a single parameter); each of its parameter's shape and dtype.

        Notes
        -----
        The step number ``t = step_count + 1`` gives the learning rate (a
        callable ``lr`` is called with it) and Adam's bias corrections.  Every
        gradient, parameter and state array is checked before any parameter
        moves: a bad one raises and leaves the whole optimiser as it was.
        Then each parameter gets one fused in-place kernel pass, and
        ``step_count`` becomes ``t``.

        Examples
        --------
        >>> import numpy as np, mlkern.optim as opt
        >>> w = np.array([1.0, 2.0])
        >>> o = opt.SGD([w], lr=lambda t: 0.5 / t)
        >>> o.step([np.ones(2)]); o.step([np.ones(2)]); w.tolist(), o.step_count
        ([0.25, 1.25], 2)
        """
        if isinstance(grads, np.ndarray):
            grads = [grads]
        grads = list(grads)  # type: ignore[arg-type]  # an array was wrapped above
        if len(grads) != len(self.params):
            raise ValueError(f"{type(self).__name__}.step: expected {len(self.params)} gradients, "
                             f"got {len(grads)}")
        t = self.step_count + 1
        name = type(self).__name__
        op, hyper = self._kernel(self._current_lr(t), t)
        # every gradient (and parameter and state) is checked before any
        # parameter moves: a bad one leaves the whole optimiser as it was.
        # The common case -- C-contiguous arrays of the parameter's dtype
        # and shape, disjoint -- is checked in one C call per parameter.
        names = self._state_names
        work = []
        for i, (p, g, st) in enumerate(zip(self.params, grads, self.state)):
            s1 = st[names[0]] if names else None
            s2 = st[names[1]] if len(names) > 1 else None
            if not _ew.optim_fast_ok(p, g, s1, s2):
                p, g = step_checks(p, g, list(st.values()), list(st), f"{name}.step: params[{i}]",
                                   f"{name}.step: grads[{i}]")
            work.append((p, g, s1, s2))
        for p, g, s1, s2 in work:
            _ew.optim_raw(op, p, g, s1, s2, **hyper)
        self.step_count = t

    def zero_state(self) -> None:
        """Reset the state arrays to zeros and the step count to 0; returns None.

        The parameters are not touched, and the state arrays keep their identity.

        Examples
        --------
        >>> import numpy as np, mlkern.optim as opt
        >>> w = np.array([1.0])
        >>> o = opt.Momentum([w], lr=0.1)
        >>> o.step([np.ones(1)]); o.zero_state(); o.step_count, o.state[0]["velocity"].tolist()
        (0, [0.0])
        """
        for st in self.state:
            for a in st.values():
                a[...] = 0
        self.step_count = 0

    def state_dict(self) -> dict[str, Any]:
        """A dict with the step count, the hyper-parameters and copies of the state arrays.

        The parameters themselves are not included.

        Returns
        -------
        dict
            ``{"step": int, "lr": float or callable, "hyper": dict, "state":
            [one dict of array copies per parameter]}``, for
            :meth:`load_state_dict`.

        Examples
        --------
        >>> import numpy as np, mlkern.optim as opt
        >>> o = opt.Adam([np.zeros(2)], lr=0.1)
        >>> o.step([np.ones(2)])
        >>> d = o.state_dict()
        >>> d["step"], sorted(d["state"][0]), d["state"][0]["m"].round(9).tolist()
        (1, ['m', 'v'], [0.1, 0.1])
        """
        return {"step": self.step_count, "lr": self.lr, "hyper": dict(self.hyper),
                "state": [{k: a.copy() for k, a in st.items()} for st in self.state]}

    def load_state_dict(self, d: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` saved; returns None.

        Parameters
        ----------
        d : dict
            A :meth:`state_dict` of an optimiser of the same kind over
            parameters of the same shapes.  The arrays are copied into this
            optimiser's own state arrays, which keep their identity.

        Notes
        -----
        The step count, ``lr`` and the hyper-parameters are restored too, so
        the reloaded optimiser continues bit for bit.  A state for a different
        number of parameters, other state names or other shapes raises
        ``ValueError``.

        Examples
        --------
        >>> import numpy as np, mlkern.optim as opt
        >>> a, b = np.array([1.0]), np.array([1.0])
        >>> oa, ob = opt.Adam([a], lr=0.1), opt.Adam([b], lr=0.1)
        >>> oa.step([np.ones(1)]); ob.load_state_dict(oa.state_dict()); b[...] = a
        >>> oa.step([np.ones(1)]); ob.step([np.ones(1)]); bool(a[0] == b[0]), ob.step_count
        (True, 2)
        """
        name = type(self).__name__
        states = d["state"]
        if len(states) != len(self.params):
            raise ValueError(f"{name}.load_state_dict: state for {len(states)} parameters, "
                             f"this optimiser has {len(self.params)}")
        for i, (st, saved) in enumerate(zip(self.state, states)):
            if set(saved) != set(st):
                raise ValueError(f"{name}.load_state_dict: params[{i}] state keys "
                                 f"{sorted(saved)} != {sorted(st)}")
            for k, a in st.items():
                s = np.asarray(saved[k])
                if s.shape != a.shape:
                    raise ValueError(f"{name}.load_state_dict: params[{i}] {k} has shape "
                                     f"{s.shape}, expected {a.shape}")
                np.copyto(a, s, casting="same_kind")
        self.step_count = operator.index(d["step"])
        self.lr = d.get("lr", self.lr)
        self.hyper.update(d.get("hyper", {}))

    def __repr__(self):
        hp = ", ".join(f"{k}={v!r}" for k, v in self.hyper.items())
        return f"{type(self).__name__}(lr={self.lr!r}, {hp}, {len(self.params)} params)"


@_docs.doc(lr_default="1e-3")
class SGD(Optimizer):
    """Plain SGD over a list of arrays (:func:`sgd_step`); coupled weight decay.

    Parameters
    ----------
    {params}
    {lr_schedule}
    {weight_decay}

    Notes
    -----
    Each :meth:`step` applies :func:`sgd_step` to every parameter:
    ``param -= lr g``, ``g = grad + weight_decay * param``.
    State per parameter: none (zeros at the start; see :meth:`state_dict`).

    Examples
    --------
    >>> import numpy as np, mlkern.optim as opt
    >>> w = np.array([1.0, -1.0])
    >>> o = opt.SGD([w], lr=0.5)
    >>> o.step([w.copy()]); w.tolist()
    [0.5, -0.5]
    """

    def __init__(self, params: NDArray[Any] | Iterable[NDArray[Any]], lr: _LR = 1e-3,
                 weight_decay: float = 0.0) -> None:
        check_nonneg(weight_decay, "weight_decay", "SGD")
        super().__init__(params, lr, weight_decay=weight_decay)

    def _kernel(self, lr, t):
        return _sgd_k("SGD.step", lr, self.hyper["weight_decay"])


@_docs.doc(lr_default="1e-3")
class Momentum(Optimizer):
    """SGD with momentum (:func:`momentum_step`; velocity includes lr).

    Parameters
    ----------
    {params}
    {lr_schedule}
    {momentum}
    {weight_decay}

    Notes
    -----
    Each :meth:`step` applies :func:`momentum_step` to every parameter:
    ``v = momentum v + lr g; param -= v``,
    ``g = grad + weight_decay * param``.
    State per parameter: ``velocity`` (zeros at the start; see :meth:`state_dict`).

    Examples
    --------
    >>> import numpy as np, mlkern.optim as opt
    >>> w = np.array([1.0])
    >>> o = opt.Momentum([w], lr=0.1)
    >>> o.step([np.ones(1)]); o.step([np.ones(1)]); w.tolist()
    [0.71]
    """
    _state_names = ("velocity",)

    def __init__(self, params: NDArray[Any] | Iterable[NDArray[Any]], lr: _LR = 1e-3,
                 momentum: float = 0.9, weight_decay: float = 0.0) -> None:
        check_unit(momentum, "momentum", type(self).__name__)
        check_nonneg(weight_decay, "weight_decay", type(self).__name__)
        super().__init__(params, lr, momentum=momentum, weight_decay=weight_decay)

    _op = _MOMENTUM

    def _kernel(self, lr, t):
        h = self.hyper
        return _momentum_k(f"{type(self).__name__}.step", self._op, lr, h["momentum"],
                           h["weight_decay"])


@_docs.doc(lr_default="1e-3")
class Nesterov(Momentum):
    """Nesterov momentum (:func:`nesterov_step`).

    Parameters
    ----------
    {params}
    {lr_schedule}
    {momentum}
    {weight_decay}

    Notes
    -----
    Each :meth:`step` applies :func:`nesterov_step` to every parameter:
    ``v = momentum v + lr g; param -= momentum v + lr g``
    (the look-ahead form).
    State per parameter: ``velocity`` (zeros at the start; see :meth:`state_dict`).

    Examples
    --------
    >>> import numpy as np, mlkern.optim as opt
    >>> w = np.array([1.0])
    >>> o = opt.Nesterov([w], lr=0.1)
    >>> o.step([np.ones(1)]); w.tolist()
    [0.81]
    """

    _op = _NESTEROV


@_docs.doc(lr_default="1e-2")
class Adagrad(Optimizer):
    """Adagrad (:func:`adagrad_step`).

    Parameters
    ----------
    {params}
    {lr_schedule}
    eps : float, optional
        Outside the square root, >= 0 (default 1e-10).
    {weight_decay}

    Notes
    -----
    Each :meth:`step` applies :func:`adagrad_step` to every parameter:
    ``G += g^2; param -= lr g / (sqrt(G) + eps)``.
    State per parameter: ``sum_sq`` (zeros at the start; see :meth:`state_dict`).

    Examples
    --------
    >>> import numpy as np, mlkern.optim as opt
    >>> w = np.array([1.0])
    >>> o = opt.Adagrad([w], lr=0.1)
    >>> o.step([np.array([2.0])]); w.tolist()
    [0.900000000005]
    """
    _state_names = ("sum_sq",)

    def __init__(self, params: NDArray[Any] | Iterable[NDArray[Any]], lr: _LR = 1e-2,
                 eps: float = 1e-10, weight_decay: float = 0.0) -> None:
        check_nonneg(eps, "eps", "Adagrad")
        check_nonneg(weight_decay, "weight_decay", "Adagrad")
        super().__init__(params, lr, eps=eps, weight_decay=weight_decay)

    def _kernel(self, lr, t):
        return _adagrad_k("Adagrad.step", lr, self.hyper["eps"], self.hyper["weight_decay"])


@_docs.doc(lr_default="1")
class Adadelta(Optimizer):
    """Adadelta (:func:`adadelta_step`).

    Parameters
    ----------
    {params}
    {lr_schedule}
    rho : float, optional
        In [0, 1] (default 0.9).
    eps : float, optional
        Inside both square roots, >= 0 (default 1e-6).
    {weight_decay}

    Notes
    -----
    Each :meth:`step` applies :func:`adadelta_step` to every parameter:
    ``S = rho S + (1 - rho) g^2``,
    ``d = sqrt(D + eps) / sqrt(S + eps) g``, ``D = rho D + (1 - rho) d^2``,
    ``param -= lr d``.
    State per parameter: ``sq_avg`` (S) and ``delta_avg`` (D), zeros at the start
    (see :meth:`state_dict`).

    Examples
    --------
    >>> import numpy as np, mlkern.optim as opt
    >>> w = np.array([1.0])
    >>> o = opt.Adadelta([w])
    >>> o.step([np.ones(1)]); round(w[0], 9)
    np.float64(0.996837738)
    """
    _state_names = ("sq_avg", "delta_avg")

    def __init__(self, params: NDArray[Any] | Iterable[NDArray[Any]], lr: _LR = 1.0,
                 rho: float = 0.9, eps: float = 1e-6, weight_decay: float = 0.0) -> None:
        check_unit(rho, "rho", "Adadelta", closed=True)
        check_nonneg(eps, "eps", "Adadelta")
        check_nonneg(weight_decay, "weight_decay", "Adadelta")
        super().__init__(params, lr, rho=rho, eps=eps, weight_decay=weight_decay)

    def _kernel(self, lr, t):
        h = self.hyper
        return _adadelta_k("Adadelta.step", lr, h["rho"], h["eps"], h["weight_decay"])


@_docs.doc(lr_default="1e-2")
class RMSprop(Optimizer):
    """RMSprop (:func:`rmsprop_step`).

    Parameters
    ----------
    {params}
    {lr_schedule}
    alpha : float, optional
        In [0, 1] (default 0.99).
    eps : float, optional
        Outside the square root, >= 0 (default 1e-8).
    {weight_decay}

    Notes
    -----
    Each :meth:`step` applies :func:`rmsprop_step` to every parameter:
    ``S = alpha S + (1 - alpha) g^2;
    param -= lr g / (sqrt(S) + eps)``.
    State per parameter: ``sq_avg`` (zeros at the start; see :meth:`state_dict`).

    Examples
    --------
    >>> import numpy as np, mlkern.optim as opt
    >>> w = np.array([1.0])
    >>> o = opt.RMSprop([w], lr=0.01)
    >>> o.step([np.ones(1)]); round(w[0], 9)
    np.float64(0.90000001)
    """
    _state_names = ("sq_avg",)

    def __init__(self, params: NDArray[Any] | Iterable[NDArray[Any]], lr: _LR = 1e-2,
                 alpha: float = 0.99, eps: float = 1e-8, weight_decay: float = 0.0) -> None:
        check_unit(alpha, "alpha", "RMSprop", closed=True)
        check_nonneg(eps, "eps", "RMSprop")
        check_nonneg(weight_decay, "weight_decay", "RMSprop")
        super().__init__(params, lr, alpha=alpha, eps=eps, weight_decay=weight_decay)

    def _kernel(self, lr, t):
        h = self.hyper
        return _rmsprop_k("RMSprop.step", lr, h["alpha"], h["eps"], h["weight_decay"])


@_docs.doc(lr_default="1e-3")
class Adam(Optimizer):
    """Adam (:func:`adam_step`), coupled weight decay.

    Parameters
    ----------
    {params}
    {lr_schedule}
    betas : tuple of two floats, optional
        ``(beta1, beta2)``, each in [0, 1) (default ``(0.9, 0.999)``).
    eps : float, optional
        Added to the bias-corrected ``sqrt(v)``, >= 0 (default 1e-8).
    {weight_decay}

    Notes
    -----
    Each :meth:`step` applies :func:`adam_step` to every parameter:
    ``m = beta1 m + (1 - beta1) g``, ``v = beta2 v + (1 - beta2)
    g^2``, ``param -= lr / (1 - beta1^t) m / (sqrt(v) / sqrt(1 - beta2^t) + eps)``
    with ``t`` the 1-based step count.
    State per parameter: ``m`` and ``v`` (zeros at the start; see :meth:`state_dict`).

    Examples
    --------
    >>> import numpy as np, mlkern.optim as opt
    >>> w = np.array([1.0])
    >>> o = opt.Adam([w], lr=0.1)
    >>> o.step([np.array([0.5])]); round(w[0], 9)    # eps: 0.1 (1 - 2e-8) moved
    np.float64(0.900000002)
    """
    _state_names = ("m", "v")
    _decoupled: ClassVar[bool] = False

    def __init__(self, params: NDArray[Any] | Iterable[NDArray[Any]], lr: _LR = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0) -> None:
        name = type(self).__name__
        try:
            b1, b2 = betas
        except (TypeError, ValueError):
            raise TypeError(f"{name}: betas must be a pair (beta1, beta2), got {betas!r}") from None
        check_unit(b1, "beta1", name)
        check_unit(b2, "beta2", name)
        check_nonneg(eps, "eps", name)
        check_nonneg(weight_decay, "weight_decay", name)
        super().__init__(params, lr, betas=(b1, b2), eps=eps, weight_decay=weight_decay)

    def _kernel(self, lr, t):
        h = self.hyper
        b1, b2 = h["betas"]
        return _adam_hyper(f"{type(self).__name__}.step", t, lr, b1, b2, h["eps"],
                           h["weight_decay"], self._decoupled)


@_docs.doc(lr_default="1e-3")
class AdamW(Adam):
    """AdamW: Adam with decoupled weight decay (default 0.01, as PyTorch).

    Parameters
    ----------
    {params}
    {lr_schedule}
    betas : tuple of two floats, optional
        ``(beta1, beta2)``, each in [0, 1) (default ``(0.9, 0.999)``).
    eps : float, optional
        Added to the bias-corrected ``sqrt(v)``, >= 0 (default 1e-8).
    weight_decay : float, optional
        Decoupled weight decay, >= 0 (default 0.01).

    Notes
    -----
    Each :meth:`step` applies :func:`adam_step` to every parameter:
    ``adam_step(..., decoupled=True)``: ``param *= 1 - lr weight_decay`` first,
    then the Adam update with the gradient as is.
    State per parameter: ``m`` and ``v`` (zeros at the start; see :meth:`state_dict`).

    Examples
    --------
    >>> import numpy as np, mlkern.optim as opt
    >>> w = np.array([1.0])
    >>> o = opt.AdamW([w], lr=0.1)
    >>> o.step([np.array([0.5])]); round(w[0], 9)
    np.float64(0.899000002)
    """
    _decoupled = True

    def __init__(self, params: NDArray[Any] | Iterable[NDArray[Any]], lr: _LR = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2) -> None:
        super().__init__(params, lr, betas=betas, eps=eps, weight_decay=weight_decay)


def minibatches(n_samples: SupportsIndex, batch_size: SupportsIndex, *, shuffle: bool = True,
                seed: int | np.random.Generator | None = None) -> Iterator[NDArray[np.int64]]:
    """Yield int64 index arrays of mini-batches covering ``range(n_samples)`` once.

    The last batch holds the remainder.

    Parameters
    ----------
    n_samples : int
        The number of samples, >= 0.
    batch_size : int
        The batch size, >= 1.
    shuffle : bool, optional
        Shuffle the order (default True); False gives consecutive slices.
    seed : int or numpy.random.Generator, optional
        The permutation's seed (an int, or a Generator drawn from).

    Yields
    ------
    ndarray of int64
        The indices of one batch: ``batch_size`` of them, fewer in the last.

    Notes
    -----
    With ``shuffle``, one permutation of ``range(n_samples)`` is drawn
    (``Generator.permutation``, from ``seed`` if it is a Generator, else from
    ``numpy.random.default_rng(seed)``) and cut into consecutive batches, so
    every index appears exactly once; the same int seed gives the same
    batches.

    Examples
    --------
    >>> import mlkern.optim as opt
    >>> [b.tolist() for b in opt.minibatches(5, 2, shuffle=False)]
    [[0, 1], [2, 3], [4]]
    """
    for name, v, lo in (("n_samples", n_samples, 0), ("batch_size", batch_size, 1)):
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (numbers.Integral, np.integer)):
            raise TypeError(f"minibatches: {name} must be an integer, got {type(v).__name__}")
        if v < lo:
            raise ValueError(f"minibatches: {name} must be >= {lo}, got {v}")
    n, b = int(n_samples), int(batch_size)
    if shuffle:
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        order = rng.permutation(n).astype(np.int64)
    else:
        order = np.arange(n, dtype=np.int64)
    for i in range(0, n, b):
        yield order[i:i + b]
