"""Models: layers that hold their parameters, composed by the chain rule.

SPEC.md, section "Models -- mlkern.nn".  Each class is thin over the
functional kernels of :mod:`mlkern.layers` and the elementwise activations
(no second copy of any kernel):

* ``layer(x)`` / ``layer.forward(x, training=False)`` computes the output;
  after ``forward(x, training=True)``, ``layer.backward(grad_output)``
  returns the gradient with respect to the input and writes the parameter
  gradients into arrays allocated once (``layer.gradients()``), so an
  :mod:`mlkern.optim` optimiser built on ``layer.parameters()`` takes them
  as they are: ``opt.step(model.gradients())``.  A backward overwrites the
  gradients (it does not accumulate into them as PyTorch's ``.grad`` does).
* ``state_dict()`` / ``load_state_dict(d)`` use PyTorch's names and shapes
  (``0.weight``, ``0.bias``, ``weight``), so ``{k: v.numpy() for k, v in
  torch_model.state_dict().items()}`` loads into the equivalent model;
  loading copies into the existing arrays (an optimiser holding them sees
  the new values) in the model's dtype.
* Inference (``training=False``) in a :class:`Sequential` writes every
  intermediate activation into a workspace kept across calls (one per
  calling thread): once warm, a call allocates its output only.  A
  :class:`Dense` followed by an :class:`Activation` runs as one
  :func:`mlkern.layers.dense` call with the activation fused into the GEMM's
  epilogue, and in training with ``return_saved`` so that its backward is
  the fused :func:`mlkern.layers.dense_backward`.

Design notes

* Parameters are NumPy arrays of the model's dtype (float32 by default),
  initialised as PyTorch does (Linear: ``U(-1/sqrt(in), 1/sqrt(in))`` for
  the weight -- ``kaiming_uniform_(a=sqrt(5))`` -- and the bias; Embedding:
  ``N(0, 1)`` with the ``padding_idx`` row zero), drawn in float64 from
  ``numpy.random.default_rng(seed)`` and rounded to the dtype.
* A training forward keeps references to what the backward needs (the
  input, the fused activation's ``saved``); it allocates its outputs anew
  (they are kept for the backward), so only inference reuses workspaces.
* The workspaces belong to the :class:`Sequential` and to the calling
  thread (``threading.local``): several threads may run inference on one
  model at once.  Training state is per layer: one thread trains a model.
"""
from __future__ import annotations

import inspect
import math
import threading
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from . import activations as _act
from . import layers as _layers
from ._validation import any_dask

__all__ = ["Layer", "Dense", "Embedding", "Activation", "Flatten", "SimpleRNN", "LSTM", "GRU",
           "Conv1D", "Conv2D", "MaxPool1D", "MaxPool2D", "AvgPool1D", "AvgPool2D",
           "LocallyConnected1D", "LocallyConnected2D", "Sequential"]

# the activations a layer fuses (every elementwise activation but prelu, whose
# parameter is learned, and noisy_relu, which draws training noise), and those
# whose backward works from the output y rather than the input
_FUSABLE = ("sigmoid", "tanh", "relu", "leaky_relu", "elu", "softplus", "silu", "swish",
            "log_sigmoid", "gelu")
_FROM_Y = ("sigmoid", "tanh", "elu")


def _check_dtype(dtype: DTypeLike) -> np.dtype[Any]:
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype: expected float32 or float64, got {dtype!r}") from None
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TypeError(f"dtype: expected float32 or float64, got {dt}")
    return dt


def _check_size(value: Any, name: str) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name}: expected an int, got {type(value).__name__}")
    v = int(value)
    if v < 0:
        raise ValueError(f"{name}: must be >= 0, got {v}")
    return v


def _check_activation(name: Any, params: Mapping[str, Any], who: str) -> None:
    """ValueError for a name that is not a fusable activation, TypeError /
    ValueError for its parameters (checked by running it once)."""
    if not isinstance(name, str):
        raise TypeError(f"{who}: expected the name of an activation (str), got {type(name).__name__}")
    if name not in _FUSABLE:
        extra = (" (prelu has a learnable parameter and noisy_relu draws training noise)"
                 if name in ("prelu", "noisy_relu") else "")
        raise ValueError(f"{who}: unknown or unsupported activation {name!r}{extra}; expected one "
                         f"of {list(_FUSABLE)}")
    f = getattr(_act, name)
    allowed = [p for p, v in inspect.signature(f).parameters.items()
               if v.kind is v.KEYWORD_ONLY and p != "out"]
    for k in params:
        if k not in allowed:
            raise TypeError(f"{who}: activation {name!r} takes no parameter {k!r}"
                            + (f" (its parameters: {', '.join(allowed)})" if allowed else ""))
    f(np.zeros(1), **params)           # the activation's own checks of the values


class Layer:
    """Base class of the layers: forward, backward, parameters and state dict.

    Subclasses implement the computation; this class gives every layer the
    same interface.  A layer is called as ``layer(x)`` (inference) or
    ``layer.forward(x, training=True)`` before ``layer.backward(g)``.

    Notes
    -----
    ``parameters()`` and ``gradients()`` are lists in the same order; the
    gradient arrays are allocated once, when the layer is built, and each
    backward overwrites them, so an optimiser keeps using the same lists.

    Examples
    --------
    >>> import numpy as np, mlkern.nn as nn
    >>> layer = nn.Dense(3, 2, seed=0)
    >>> isinstance(layer, nn.Layer), [p.shape for p in layer.parameters()]
    (True, [(2, 3), (2,)])
    """

    _training_ctx: Any = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # a subclass that overrides forward (a recurrent layer's takes hx)
        # keeps the one Dask entry of Layer.forward: a dask x goes to
        # mlkern._dask.model (lazy, per batch chunk) when its other
        # arguments are None
        super().__init_subclass__(**kwargs)
        own = cls.__dict__.get("forward")
        if own is None or getattr(own, "_dask_entry", False):
            return

        def forward(self: Any, x: Any, *args: Any, training: Any = False, **kw: Any) -> Any:
            if type(x) is not np.ndarray and any_dask(x):
                if any(a is not None for a in (*args, *kw.values())):
                    raise TypeError(f"{type(self).__name__}.forward: with a dask x, the other "
                                    "arguments must be None (an initial state is not "
                                    "supported on dask arrays)")
                if not isinstance(training, (bool, np.bool_)):
                    raise TypeError(f"training: expected a bool, got {type(training).__name__}")
                from . import _dask
                return _dask.model(self, x, bool(training))
            return own(self, x, *args, training=training, **kw)

        forward.__name__, forward.__qualname__ = own.__name__, own.__qualname__
        forward.__doc__, forward.__module__ = own.__doc__, own.__module__
        forward.__wrapped__ = own  # type: ignore[attr-defined]
        forward._dask_entry = True  # type: ignore[attr-defined]
        cls.forward = forward  # type: ignore[method-assign]

    # ------------------------------------------------------------ the hooks
    def _forward(self, x: Any, training: bool, out: NDArray[Any] | None) -> Any:
        raise NotImplementedError

    def _backward(self, grad_output: Any) -> Any:
        raise NotImplementedError

    def _named(self) -> list[tuple[str, NDArray[Any], NDArray[Any]]]:
        """(name, parameter, gradient) triples, in parameters() order."""
        return []

    # ------------------------------------------------------------ the interface
    def __call__(self, x: ArrayLike) -> NDArray[Any]:
        return self.forward(x)

    def forward(self, x: ArrayLike, *, training: bool = False) -> NDArray[Any]:
        """Compute the layer's output.

        Parameters
        ----------
        x : array_like
            The input (for :class:`Embedding`, integer indices).
        training : bool, default False
            ``True`` keeps what :meth:`backward` needs; ``False`` is the
            inference path (no state kept, workspaces reused).

        Returns
        -------
        ndarray
            The output, a new array (never a workspace of the layer).

        Examples
        --------
        >>> import numpy as np, mlkern.nn as nn
        >>> layer = nn.Activation("relu")
        >>> layer.forward(np.array([-1.0, 2.0])).tolist()
        [0.0, 2.0]
        """
        if not isinstance(training, (bool, np.bool_)):
            raise TypeError(f"training: expected a bool, got {type(training).__name__}")
        if type(x) is not np.ndarray and any_dask(x):   # lazy, a task per batch chunk
            from . import _dask
            return _dask.model(self, x, bool(training))  # type: ignore[no-any-return]
        if training:
            self._training_ctx = None
        y: NDArray[Any] = self._forward(x, bool(training), None)
        return y

    def backward(self, grad_output: ArrayLike) -> NDArray[Any] | None:
        """Back-propagate: the input gradient; stores the parameter gradients.

        Parameters
        ----------
        grad_output : array_like
            Gradient of the loss with respect to the output of the last
            ``forward(x, training=True)``, of that output's shape.

        Returns
        -------
        ndarray or None
            Gradient with respect to that forward's input (``None`` for an
            :class:`Embedding`, whose input is indices).  The parameter
            gradients are written into the arrays of :meth:`gradients`
            (overwritten, not accumulated).

        Examples
        --------
        >>> import numpy as np, mlkern.nn as nn
        >>> layer = nn.Dense(2, 1, bias=False, dtype=np.float64)
        >>> layer.load_state_dict({"weight": np.array([[3.0, -1.0]])})
        >>> y = layer.forward(np.array([[1.0, 2.0]]), training=True)
        >>> layer.backward(np.ones((1, 1))).tolist(), layer.gradients()[0].tolist()
        ([[3.0, -1.0]], [[1.0, 2.0]])
        """
        if self._training_ctx is None:
            raise RuntimeError(f"{type(self).__name__}.backward: call forward(x, training=True) first")
        gx: NDArray[Any] | None = self._backward(grad_output)
        return gx

    def parameters(self) -> list[NDArray[Any]]:
        """The parameter arrays (the layer's own, updated in place by an optimiser).

        Returns
        -------
        list of ndarray
            In the order of :meth:`gradients` and of :meth:`state_dict`.

        Examples
        --------
        >>> import mlkern.nn as nn
        >>> [p.shape for p in nn.Dense(4, 3).parameters()]
        [(3, 4), (3,)]
        """
        return [p for _, p, _ in self._named()]

    def gradients(self) -> list[NDArray[Any]]:
        """The gradient arrays, one per parameter, written by each backward.

        Returns
        -------
        list of ndarray
            ``gradients()[i]`` has the shape and dtype of
            ``parameters()[i]``; the same arrays on every call.

        Examples
        --------
        >>> import mlkern.nn as nn
        >>> layer = nn.Dense(4, 3)
        >>> [g.shape for g in layer.gradients()], layer.gradients()[0] is layer.gradients()[0]
        ([(3, 4), (3,)], True)
        """
        return [g for _, _, g in self._named()]

    def state_dict(self) -> dict[str, NDArray[Any]]:
        """Copies of the parameters under PyTorch's names.

        Returns
        -------
        dict of str to ndarray
            ``{"weight": ..., "bias": ...}`` for a layer, ``"0.weight"``,
            ``"0.bias"``, ... in a :class:`Sequential` (the layer's index in
            it, as ``torch.nn.Sequential``).

        Examples
        --------
        >>> import mlkern.nn as nn
        >>> model = nn.Sequential(nn.Dense(4, 3), nn.Activation("relu"), nn.Dense(3, 2))
        >>> {k: v.shape for k, v in model.state_dict().items()}
        {'0.weight': (3, 4), '0.bias': (3,), '2.weight': (2, 3), '2.bias': (2,)}
        """
        return {k: p.copy() for k, p, _ in self._named()}

    def load_state_dict(self, state_dict: Mapping[str, ArrayLike]) -> None:
        """Copy parameters in, by PyTorch's names; returns None.

        Parameters
        ----------
        state_dict : mapping of str to array_like
            Exactly the keys of :meth:`state_dict`, each of its shape, e.g.
            ``{k: v.numpy() for k, v in torch_model.state_dict().items()}``.
            The values are converted to the model's dtype and copied into the
            existing parameter arrays.

        Raises
        ------
        ValueError
            Missing or unexpected keys, or a shape that differs (the message
            names the key and both shapes); nothing is copied then.
        TypeError
            A value that is not a real numeric array.

        Examples
        --------
        >>> import numpy as np, mlkern.nn as nn
        >>> layer = nn.Dense(2, 1, dtype=np.float64)
        >>> layer.load_state_dict({"weight": [[1.0, 2.0]], "bias": [0.5]})
        >>> layer(np.array([[1.0, 1.0]])).tolist()
        [[3.5]]
        """
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"state_dict: expected a mapping of names to arrays, got "
                            f"{type(state_dict).__name__}")
        named = self._named()
        mine = {k: p for k, p, _ in named}
        missing = [k for k in mine if k not in state_dict]
        unexpected = [k for k in state_dict if k not in mine]
        if missing or unexpected:
            parts = []
            if missing:
                parts.append(f"missing keys {missing}")
            if unexpected:
                parts.append(f"unexpected keys {unexpected}")
            raise ValueError(f"{type(self).__name__}.load_state_dict: " + ", ".join(parts)
                             + f" (expected the keys {list(mine)})")
        values = {}
        for k, p in mine.items():
            v = np.asarray(state_dict[k])
            if v.dtype.kind not in "fiub":
                raise TypeError(f"{type(self).__name__}.load_state_dict: {k!r}: expected a real "
                                f"numeric array, got dtype {v.dtype}")
            if v.shape != p.shape:
                raise ValueError(f"{type(self).__name__}.load_state_dict: {k!r}: shape {v.shape} "
                                 f"in the state dict, {p.shape} in the model")
            values[k] = v
        for k, p in mine.items():
            np.copyto(p, values[k], casting="unsafe")

    def __getstate__(self) -> dict[str, Any]:
        # pickling (a Dask worker gets the model so): no forward state, and a
        # Sequential's per-thread workspaces are made anew
        d = dict(self.__dict__)
        d.pop("_training_ctx", None)
        if "_ws" in d:
            d["_ws"] = None
        return d

    def __setstate__(self, state: dict[str, Any]) -> None:
        if "_ws" in state:
            state = dict(state, _ws=threading.local())
        self.__dict__.update(state)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._repr_args()})"

    def _repr_args(self) -> str:
        return ""


def _uniform(rng: np.random.Generator, bound: float, shape: tuple[int, ...],
             dtype: np.dtype[Any]) -> NDArray[Any]:
    return rng.uniform(-bound, bound, shape).astype(dtype)


class Dense(Layer):
    """Fully connected layer ``y = act(x W^T + b)`` (PyTorch's ``nn.Linear``).

    Parameters
    ----------
    in_features : int
        Size of the input's last axis.
    out_features : int
        Size of the output's last axis.
    activation : str, optional
        An elementwise activation fused into the layer (``"relu"``,
        ``"gelu"``, ...; every one but ``prelu`` and ``noisy_relu``).
    bias : bool, default True
        Whether the layer has a bias.
    dtype : dtype, default float32
        float32 or float64: the parameters' dtype and the computation's.
    seed : int or numpy.random.Generator, optional
        Seeds the initialisation (``numpy.random.default_rng(seed)``).
    **activation_params
        The activation's parameters (``negative_slope=0.1`` for
        ``leaky_relu``, ...).

    Notes
    -----
    Parameters ``weight`` (out_features, in_features) and ``bias``
    (out_features,), PyTorch's layout and names, both initialised from
    ``U(-1/sqrt(in_features), 1/sqrt(in_features))`` as ``nn.Linear``.  The
    forward is one :func:`mlkern.layers.dense` call, the backward one
    :func:`mlkern.layers.dense_backward` call.  The input's last axis holds
    the features; any leading axes are batch axes.

    Examples
    --------
    >>> import numpy as np, mlkern.nn as nn
    >>> layer = nn.Dense(3, 2, activation="relu", seed=0)
    >>> layer(np.ones((5, 3), np.float32)).shape
    (5, 2)
    >>> sorted(layer.state_dict())
    ['bias', 'weight']
    """

    def __init__(self, in_features: int, out_features: int, *, activation: str | None = None,
                 bias: bool = True, dtype: DTypeLike = np.float32,
                 seed: int | np.random.Generator | None = None, **activation_params: Any) -> None:
        n_in = _check_size(in_features, "in_features")
        n_out = _check_size(out_features, "out_features")
        if not isinstance(bias, (bool, np.bool_)):
            raise TypeError(f"bias: expected a bool, got {type(bias).__name__}")
        if activation is None:
            if activation_params:
                raise TypeError(f"activation=None takes no parameters, got {sorted(activation_params)}")
        else:
            _check_activation(activation, activation_params, "activation")
        dt = _check_dtype(dtype)
        rng = np.random.default_rng(seed)
        bound = 1.0 / math.sqrt(n_in) if n_in else 0.0
        self.in_features, self.out_features = n_in, n_out
        self.activation = activation
        self.activation_params = dict(activation_params)
        self.dtype = dt
        self.weight = _uniform(rng, bound, (n_out, n_in), dt)
        self.bias = _uniform(rng, bound, (n_out,), dt) if bias else None
        self.grad_weight = np.zeros_like(self.weight)
        self.grad_bias = None if self.bias is None else np.zeros_like(self.bias)

    def _named(self) -> list[tuple[str, NDArray[Any], NDArray[Any]]]:
        out = [("weight", self.weight, self.grad_weight)]
        if self.bias is not None and self.grad_bias is not None:
            out.append(("bias", self.bias, self.grad_bias))
        return out

    def _forward(self, x: Any, training: bool, out: NDArray[Any] | None,
                 act: str | None = None, act_params: Mapping[str, Any] | None = None) -> Any:
        """act / act_params: an Activation layer fused by a Sequential (only
        when this layer has none of its own)."""
        if act is None:
            act, act_params = self.activation, self.activation_params
        params = act_params or {}
        if not training:
            return _layers.dense(x, self.weight, self.bias, activation=act, out=out, **params)
        xa = np.asarray(x)
        y, saved = _layers.dense(xa, self.weight, self.bias, activation=act, return_saved=True,
                                 **params)
        self._training_ctx = (xa, saved, act, params)
        return y

    def _backward(self, grad_output: Any) -> Any:
        xa, saved, act, params = self._training_ctx
        gx, gw, gb = _layers.dense_backward(grad_output, xa, self.weight,
                                            has_bias=self.bias is not None, activation=act,
                                            saved=saved, **params)
        np.copyto(self.grad_weight, gw)
        if gb is not None and self.grad_bias is not None:
            np.copyto(self.grad_bias, gb)
        return gx

    def _repr_args(self) -> str:
        s = f"{self.in_features}, {self.out_features}"
        if self.activation is not None:
            s += f", activation={self.activation!r}"
            s += "".join(f", {k}={v!r}" for k, v in self.activation_params.items())
        if self.bias is None:
            s += ", bias=False"
        return s + f", dtype={self.dtype.name}"


class Embedding(Layer):
    """Lookup table ``weight[indices]`` (PyTorch's ``nn.Embedding``).

    Parameters
    ----------
    num_embeddings : int
        Rows of the table (the indices lie in ``[0, num_embeddings)``).
    embedding_dim : int
        Size of each row.
    padding_idx : int, optional
        A row that gets no gradient and is initialised to zero (negative
        counts from the end, as PyTorch).
    dtype : dtype, default float32
        float32 or float64.
    seed : int or numpy.random.Generator, optional
        Seeds the initialisation (``numpy.random.default_rng(seed)``).

    Notes
    -----
    Parameter ``weight`` (num_embeddings, embedding_dim), initialised from
    ``N(0, 1)`` as PyTorch, the ``padding_idx`` row zero.  Forward
    :func:`mlkern.layers.embedding`; backward
    :func:`mlkern.layers.embedding_backward` written straight into the
    gradient array.  The input is indices, so :meth:`backward` returns
    ``None``.

    Examples
    --------
    >>> import numpy as np, mlkern.nn as nn
    >>> emb = nn.Embedding(10, 4, padding_idx=0, seed=0)
    >>> emb(np.array([[0, 3], [9, 3]])).shape
    (2, 2, 4)
    >>> bool((emb.weight[0] == 0).all())
    True
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, *, padding_idx: int | None = None,
                 dtype: DTypeLike = np.float32,
                 seed: int | np.random.Generator | None = None) -> None:
        V = _check_size(num_embeddings, "num_embeddings")
        D = _check_size(embedding_dim, "embedding_dim")
        if padding_idx is not None:
            if isinstance(padding_idx, (bool, np.bool_)) or not isinstance(padding_idx, (int, np.integer)):
                raise TypeError(f"padding_idx: expected an int or None, got {type(padding_idx).__name__}")
            if not -V <= padding_idx < V:
                raise ValueError(f"padding_idx: must be in [-{V}, {V}) (num_embeddings={V}), "
                                 f"got {padding_idx}")
            padding_idx = int(padding_idx) % V
        dt = _check_dtype(dtype)
        rng = np.random.default_rng(seed)
        self.num_embeddings, self.embedding_dim = V, D
        self.padding_idx = padding_idx
        self.dtype = dt
        self.weight = rng.standard_normal((V, D)).astype(dt)
        if padding_idx is not None:
            self.weight[padding_idx] = 0
        self.grad_weight = np.zeros_like(self.weight)

    def _named(self) -> list[tuple[str, NDArray[Any], NDArray[Any]]]:
        return [("weight", self.weight, self.grad_weight)]

    def _forward(self, x: Any, training: bool, out: NDArray[Any] | None) -> Any:
        y = _layers.embedding(x, self.weight, padding_idx=self.padding_idx, out=out)
        if training:
            idx = np.array(x)          # a copy: the backward's indices are the forward's
            self._training_ctx = (idx,)
        return y

    def _backward(self, grad_output: Any) -> Any:
        (idx,) = self._training_ctx
        ga = np.asarray(grad_output)
        if ga.dtype.kind == "f" and ga.dtype != self.dtype:
            raise TypeError(f"grad_output: dtype {ga.dtype} differs from the layer's {self.dtype}")
        _layers.embedding_backward(ga, idx, self.num_embeddings, padding_idx=self.padding_idx,
                                   out=self.grad_weight)
        return None

    def _repr_args(self) -> str:
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            s += f", padding_idx={self.padding_idx}"
        return s + f", dtype={self.dtype.name}"


class Activation(Layer):
    """An elementwise activation as a layer (no parameters).

    Parameters
    ----------
    name : str
        ``"sigmoid"``, ``"tanh"``, ``"relu"``, ``"leaky_relu"``, ``"elu"``,
        ``"softplus"``, ``"silu"`` (``"swish"``), ``"log_sigmoid"`` or
        ``"gelu"`` (not ``prelu``, whose parameter is learned, nor
        ``noisy_relu``, which draws training noise).
    **params
        The activation's parameters, as in its function
        (``negative_slope``, ``alpha``, ``beta``, ``threshold``,
        ``approximate``).

    Notes
    -----
    Forward ``mlkern.<name>``, backward ``mlkern.<name>_backward`` (from the
    output for sigmoid, tanh and elu, from the input otherwise).  In a
    :class:`Sequential`, an Activation that follows a :class:`Dense` without
    an activation of its own is fused into that layer's call; it keeps its
    index in the numbering of the state dict (as in ``torch.nn.Sequential``).

    Examples
    --------
    >>> import numpy as np, mlkern.nn as nn
    >>> act = nn.Activation("leaky_relu", negative_slope=0.5)
    >>> y = act.forward(np.array([-2.0, 3.0]), training=True)
    >>> y.tolist(), act.backward(np.ones(2)).tolist()
    ([-1.0, 3.0], [0.5, 1.0])
    """

    def __init__(self, name: str, **params: Any) -> None:
        _check_activation(name, params, "name")
        self.name = name
        self.params = dict(params)
        self._f = getattr(_act, name)
        self._fb = getattr(_act, name + "_backward")
        self._from_y = name in _FROM_Y

    def _forward(self, x: Any, training: bool, out: NDArray[Any] | None) -> Any:
        y = self._f(x, out=out, **self.params)
        if training:
            self._training_ctx = (y if self._from_y else np.asarray(x),)
        return y

    def _backward(self, grad_output: Any) -> Any:
        (saved,) = self._training_ctx
        return self._fb(grad_output, saved, **self.params)

    def _repr_args(self) -> str:
        return repr(self.name) + "".join(f", {k}={v!r}" for k, v in self.params.items())


class Flatten(Layer):
    """Flatten the axes from ``start_dim`` on into one (PyTorch's ``nn.Flatten``).

    Parameters
    ----------
    start_dim : int, default 1
        First axis flattened (negative counts from the end); the axes
        before it (the batch axis) are kept.

    Notes
    -----
    A reshape: a view of a C-contiguous input, no parameters.  Backward
    reshapes the gradient back to the input's shape.

    Examples
    --------
    >>> import numpy as np, mlkern.nn as nn
    >>> nn.Flatten()(np.zeros((2, 3, 4))).shape
    (2, 12)
    """

    def __init__(self, start_dim: int = 1) -> None:
        if isinstance(start_dim, (bool, np.bool_)) or not isinstance(start_dim, (int, np.integer)):
            raise TypeError(f"start_dim: expected an int, got {type(start_dim).__name__}")
        self.start_dim = int(start_dim)

    def _forward(self, x: Any, training: bool, out: NDArray[Any] | None) -> Any:
        xa = np.asarray(x)
        nd = xa.ndim
        s = self.start_dim + nd if self.start_dim < 0 else self.start_dim
        if not 0 <= s < max(nd, 1):
            raise ValueError(f"Flatten: start_dim={self.start_dim} is out of range for an input "
                             f"of {nd} dimensions (shape {xa.shape})")
        y = xa.reshape(xa.shape[:s] + (-1,)) if nd else xa.reshape(1)
        if training:
            self._training_ctx = (xa.shape,)
        if out is not None:
            np.copyto(out, y)
            return out
        return y

    def _backward(self, grad_output: Any) -> Any:
        (shape,) = self._training_ctx
        ga = np.asarray(grad_output)
        if ga.size != math.prod(shape):
            raise ValueError(f"grad_output: {ga.size} elements (shape {ga.shape}) do not reshape "
                             f"to the input's shape {shape}")
        return ga.reshape(shape)

    def _repr_args(self) -> str:
        return "" if self.start_dim == 1 else f"start_dim={self.start_dim}"


# ---------------------------------------------------------------- recurrent layers
_REC: dict[str, tuple[int, Any, Any]] = {"rnn": (1, _layers.rnn, _layers.rnn_backward),
                                          "lstm": (4, _layers.lstm, _layers.lstm_backward),
                                          "gru": (3, _layers.gru, _layers.gru_backward)}


def _check_bool(value: Any, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected a bool, got {type(value).__name__}")
    return bool(value)


class _Recurrent(Layer):
    """The recurrent layers' common part: one :mod:`mlkern.layers` sequence
    call forward (``return_saved`` in training), its ``*_backward`` backward."""

    _kind = "rnn"
    nonlinearity: str | None = None

    def __init__(self, input_size: int, hidden_size: int, *, batch_first: bool = False,
                 bias: bool = True, return_sequences: bool = True, dtype: DTypeLike = np.float32,
                 seed: int | np.random.Generator | None = None) -> None:
        I = _check_size(input_size, "input_size")
        H = _check_size(hidden_size, "hidden_size")
        self.batch_first = _check_bool(batch_first, "batch_first")
        has_bias = _check_bool(bias, "bias")
        self.return_sequences = _check_bool(return_sequences, "return_sequences")
        dt = _check_dtype(dtype)
        G = _REC[self._kind][0]
        rng = np.random.default_rng(seed)
        bound = 1.0 / math.sqrt(H) if H else 0.0
        self.input_size, self.hidden_size, self.dtype = I, H, dt
        # PyTorch's order of the parameters, all from U(-1/sqrt(H), 1/sqrt(H))
        self.weight_ih_l0 = _uniform(rng, bound, (G * H, I), dt)
        self.weight_hh_l0 = _uniform(rng, bound, (G * H, H), dt)
        self.bias_ih_l0 = _uniform(rng, bound, (G * H,), dt) if has_bias else None
        self.bias_hh_l0 = _uniform(rng, bound, (G * H,), dt) if has_bias else None
        self._grads = {k: np.zeros_like(p) for k, p in self._params()}
        self.h_n: NDArray[Any] | None = None
        self.c_n: NDArray[Any] | None = None
        self.grad_h0: NDArray[Any] | None = None
        self.grad_c0: NDArray[Any] | None = None

    def _params(self) -> list[tuple[str, NDArray[Any]]]:
        ps = [("weight_ih_l0", self.weight_ih_l0), ("weight_hh_l0", self.weight_hh_l0)]
        if self.bias_ih_l0 is not None and self.bias_hh_l0 is not None:
            ps += [("bias_ih_l0", self.bias_ih_l0), ("bias_hh_l0", self.bias_hh_l0)]
        return ps

    def _named(self) -> list[tuple[str, NDArray[Any], NDArray[Any]]]:
        return [(k, p, self._grads[k]) for k, p in self._params()]

    def __call__(self, x: ArrayLike, hx: Any = None) -> NDArray[Any]:
        return self.forward(x, hx)

    def forward(self, x: ArrayLike, hx: Any = None, *, training: bool = False) -> NDArray[Any]:
        """Run the layer over a sequence.

        Parameters
        ----------
        x : array_like, shape (T, N, input_size), or (N, T, input_size) with ``batch_first``
            The input sequence.
        hx : array_like or tuple, optional
            The initial state, as PyTorch's: ``h0`` of shape (N, hidden_size)
            (:class:`LSTM`: a tuple ``(h0, c0)``); ``None`` for zeros.
        training : bool, default False
            ``True`` keeps what :meth:`backward` needs.

        Returns
        -------
        ndarray
            The output sequence ``h_1 .. h_T`` (shape (T, N, hidden_size) or
            (N, T, hidden_size)); with ``return_sequences=False`` the last
            hidden state only, (N, hidden_size).  The last states are
            ``layer.h_n`` (and ``layer.c_n`` for an :class:`LSTM`).

        Examples
        --------
        >>> import numpy as np, mlkern.nn as nn
        >>> gru = nn.GRU(3, 5, batch_first=True, seed=0)
        >>> y = gru(np.zeros((2, 7, 3), np.float32))
        >>> y.shape, gru.h_n.shape
        ((2, 7, 5), (2, 5))
        """
        if not isinstance(training, (bool, np.bool_)):
            raise TypeError(f"training: expected a bool, got {type(training).__name__}")
        if training:
            self._training_ctx = None
        y: NDArray[Any] = self._run(x, hx, bool(training), None)
        return y

    def _forward(self, x: Any, training: bool, out: NDArray[Any] | None) -> Any:
        return self._run(x, None, training, out)

    def _split_hx(self, hx: Any) -> tuple[Any, Any]:
        if self._kind != "lstm":
            return hx, None
        if hx is None:
            return None, None
        if not isinstance(hx, (tuple, list)) or len(hx) != 2:
            raise TypeError(f"hx: expected None or a tuple (h0, c0) for an LSTM, got "
                            f"{type(hx).__name__}")
        return hx[0], hx[1]

    def _run(self, x: Any, hx: Any, training: bool, out: NDArray[Any] | None) -> Any:
        h0, c0 = self._split_hx(hx)
        f = _REC[self._kind][1]
        args: tuple[Any, ...] = (x, h0) + ((c0,) if self._kind == "lstm" else ())
        args += (self.weight_ih_l0, self.weight_hh_l0, self.bias_ih_l0, self.bias_hh_l0)
        kw: dict[str, Any] = {"batch_first": self.batch_first, "return_saved": training}
        if self._kind == "rnn":
            kw["nonlinearity"] = self.nonlinearity
        res = f(*args, **kw)
        seq, last = res[0], res[1]
        if self._kind == "lstm":
            self.h_n, self.c_n = last
        else:
            self.h_n = last
        y = seq if self.return_sequences else self.h_n.copy()
        if training:
            self._training_ctx = (res[2], h0 is not None, c0 is not None)
        if out is not None:
            np.copyto(out, y)
            return out
        return y

    def _backward(self, grad_output: Any) -> Any:
        saved, has_h0, has_c0 = self._training_ctx
        fb = _REC[self._kind][2]
        g = np.asarray(grad_output)
        if g.dtype.kind == "f" and g.dtype != self.dtype:
            raise TypeError(f"grad_output: dtype {g.dtype} differs from the layer's {self.dtype}")
        if self.return_sequences:
            incoming: tuple[Any, ...] = (g, None)
        else:
            incoming = (None, g)
        if self._kind == "lstm":
            incoming += (None,)
        try:
            grads = fb(*incoming, saved)
        except ValueError as e:
            raise ValueError(f"{type(self).__name__}.backward: grad_output: {e}") from None
        gx, gh0 = grads[0], grads[1]
        self.grad_h0 = gh0
        rest = grads[2:]
        if self._kind == "lstm":
            self.grad_c0, rest = rest[0], rest[1:]
        for (k, _), gr in zip(self._params(), rest):
            np.copyto(self._grads[k], gr)
        return gx

    def _repr_args(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.nonlinearity not in (None, "tanh"):
            s += f", nonlinearity={self.nonlinearity!r}"
        if self.batch_first:
            s += ", batch_first=True"
        if self.bias_ih_l0 is None:
            s += ", bias=False"
        if not self.return_sequences:
            s += ", return_sequences=False"
        return s + f", dtype={self.dtype.name}"


_REC_NOTES = """
    Notes
    -----
    Parameters under PyTorch's names and shapes: ``weight_ih_l0``
    ({G}*hidden_size, input_size), ``weight_hh_l0`` ({G}*hidden_size,
    hidden_size), ``bias_ih_l0`` and ``bias_hh_l0`` ({G}*hidden_size,){gates},
    all initialised from ``U(-1/sqrt(hidden_size), 1/sqrt(hidden_size))`` as
    PyTorch's, so ``{{k: v.numpy() for k, v in torch_layer.state_dict().items()}}``
    loads as it is.  The forward is one :func:`mlkern.layers.{f}` call
    (``return_saved=True`` in training), the backward one
    :func:`mlkern.layers.{f}_backward` call (backpropagation through time).

    ``layer(x, hx=None)`` returns the output sequence; the last states are
    ``layer.h_n``{cn} (shape (N, hidden_size)).  After a backward,
    ``layer.grad_h0``{gc0} hold the gradients of the initial state given as
    ``hx`` (``None`` when it was not given).

    In a :class:`Sequential`, a recurrent layer is followed by others on the
    whole sequence (a :class:`Dense` acts on the last axis of every step);
    to classify a sequence from its last step -- Keras's default,
    PyTorch's ``output[-1]`` -- build the layer with
    ``return_sequences=False``: it then returns ``h_n`` (N, hidden_size),
    and its backward takes the gradient of ``h_n``.
"""


class SimpleRNN(_Recurrent):
    """Elman RNN over a sequence (PyTorch's ``nn.RNN``, one layer, unidirectional).

    Parameters
    ----------
    input_size : int
        Features of each step of the input.
    hidden_size : int
        Features of the hidden state.
    nonlinearity : {"tanh", "relu"}, default "tanh"
    batch_first : bool, default False
        The input and output are (N, T, features) instead of (T, N, features).
    bias : bool, default True
        Whether the layer has the biases ``b_ih`` and ``b_hh``.
    return_sequences : bool, default True
        ``False``: return the last hidden state only (Keras's default).
    dtype : dtype, default float32
        float32 or float64.
    seed : int or numpy.random.Generator, optional
        Seeds the initialisation (``numpy.random.default_rng(seed)``).
    {notes}
    Examples
    --------
    >>> import numpy as np, mlkern.nn as nn
    >>> rnn = nn.SimpleRNN(4, 3, seed=0)
    >>> y = rnn(np.ones((5, 2, 4), np.float32))
    >>> y.shape, bool((y[-1] == rnn.h_n).all())
    ((5, 2, 3), True)
    >>> sorted(rnn.state_dict())
    ['bias_hh_l0', 'bias_ih_l0', 'weight_hh_l0', 'weight_ih_l0']
    """

    _kind = "rnn"

    def __init__(self, input_size: int, hidden_size: int, *, nonlinearity: str = "tanh",
                 batch_first: bool = False, bias: bool = True, return_sequences: bool = True,
                 dtype: DTypeLike = np.float32,
                 seed: int | np.random.Generator | None = None) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity: expected 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        super().__init__(input_size, hidden_size, batch_first=batch_first, bias=bias,
                         return_sequences=return_sequences, dtype=dtype, seed=seed)


class LSTM(_Recurrent):
    """Long short-term memory over a sequence (PyTorch's ``nn.LSTM``, one layer, unidirectional).

    Parameters
    ----------
    input_size : int
        Features of each step of the input.
    hidden_size : int
        Features of the hidden and cell states.
    batch_first : bool, default False
        The input and output are (N, T, features) instead of (T, N, features).
    bias : bool, default True
        Whether the layer has the biases ``b_ih`` and ``b_hh``.
    return_sequences : bool, default True
        ``False``: return the last hidden state only (Keras's default).
    dtype : dtype, default float32
        float32 or float64.
    seed : int or numpy.random.Generator, optional
        Seeds the initialisation (``numpy.random.default_rng(seed)``).
    {notes}
    Examples
    --------
    >>> import numpy as np, mlkern.nn as nn
    >>> lstm = nn.LSTM(8, 16, batch_first=True, return_sequences=False, seed=0)
    >>> lstm(np.zeros((32, 8, 8), np.float32)).shape, lstm.c_n.shape
    ((32, 16), (32, 16))
    """

    _kind = "lstm"


class GRU(_Recurrent):
    """Gated recurrent unit over a sequence (PyTorch's ``nn.GRU``, one layer, unidirectional).

    Parameters
    ----------
    input_size : int
        Features of each step of the input.
    hidden_size : int
        Features of the hidden state.
    batch_first : bool, default False
        The input and output are (N, T, features) instead of (T, N, features).
    bias : bool, default True
        Whether the layer has the biases ``b_ih`` and ``b_hh``.
    return_sequences : bool, default True
        ``False``: return the last hidden state only (Keras's default).
    dtype : dtype, default float32
        float32 or float64.
    seed : int or numpy.random.Generator, optional
        Seeds the initialisation (``numpy.random.default_rng(seed)``).
    {notes}
    Examples
    --------
    >>> import numpy as np, mlkern.nn as nn
    >>> gru = nn.GRU(3, 5, seed=0)
    >>> [p.shape for p in gru.parameters()]
    [(15, 3), (15, 5), (15,), (15,)]
    """

    _kind = "gru"


for _cls, _G, _f, _gates in ((SimpleRNN, 1, "rnn", ""), (LSTM, 4, "lstm", " (gates i, f, g, o)"),
                             (GRU, 3, "gru", " (gates r, z, n)")):
    _lstm = _cls is LSTM
    _cls.__doc__ = (_cls.__doc__ or "").replace("{notes}", "\n    " + _REC_NOTES.format(
        G=_G, f=_f, gates=_gates, cn=" and ``layer.c_n``" if _lstm else "",
        gc0=" and ``layer.grad_c0``" if _lstm else "").strip() + "\n")
del _cls, _G, _f, _gates, _lstm


# ---------------------------------------------------------------- convolution, pooling, locally connected
_LAYOUTS = {1: ("NCL", "NLC"), 2: ("NCHW", "NHWC")}


def _check_layout(layout: Any, nd: int) -> str:
    first, last = _LAYOUTS[nd]
    if not isinstance(layout, str) or layout not in (first, last):
        raise ValueError(f"layout: expected {first!r} or {last!r}, got {layout!r}")
    return layout


def _check_ksize(value: Any, nd: int, name: str = "kernel_size") -> tuple[int, ...]:
    """An int or nd ints, each >= 1, as a tuple (the weight's spatial shape)."""
    vals = tuple(value) if isinstance(value, (tuple, list)) else (value,) * nd
    if len(vals) != nd:
        raise ValueError(f"{name}: expected an int or {nd} ints, got {value!r}")
    for v in vals:
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
            raise TypeError(f"{name}: expected an int or a tuple of {nd} ints, got {value!r}")
        if v < 1:
            raise ValueError(f"{name}: must be >= 1, got {value!r}")
    return tuple(int(v) for v in vals)


def _act_pair(activation: str | None, params: Mapping[str, Any]) -> tuple[Any, Any, bool]:
    """(forward, backward, backward-from-y) of a fused activation, or Nones."""
    if activation is None:
        if params:
            raise TypeError(f"activation=None takes no parameters, got {sorted(params)}")
        return None, None, False
    _check_activation(activation, params, "activation")
    return getattr(_act, activation), getattr(_act, activation + "_backward"), activation in _FROM_Y


class _Conv(Layer):
    """Conv1D / Conv2D: one :func:`mlkern.layers.conv1d` / ``conv2d`` call
    (then the activation, in place), backward the activation's and
    ``conv*_backward``."""

    _nd = 2

    def _setup(self, in_channels: Any, out_channels: Any, kernel_size: Any, stride: Any,
               padding: Any, dilation: Any, groups: Any, bias: Any, activation: Any, layout: Any,
               dtype: DTypeLike, seed: Any, activation_params: dict[str, Any]) -> None:
        nd = self._nd
        C = _check_size(in_channels, "in_channels")
        O = _check_size(out_channels, "out_channels")
        k = _check_ksize(kernel_size, nd)
        if isinstance(groups, (bool, np.bool_)) or not isinstance(groups, (int, np.integer)):
            raise TypeError(f"groups: expected an int, got {type(groups).__name__}")
        if groups < 1 or C % groups or O % groups:
            raise ValueError(f"groups: must be >= 1 and divide in_channels={C} and "
                             f"out_channels={O}, got {groups}")
        has_bias = _check_bool(bias, "bias")
        self.layout = _check_layout(layout, nd)
        self._f, self._fb, self._from_y = _act_pair(activation, activation_params)
        dt = _check_dtype(dtype)
        self.in_channels, self.out_channels, self.kernel_size = C, O, k
        self.stride, self.padding, self.dilation, self.groups = stride, padding, dilation, int(groups)
        self.activation, self.activation_params = activation, dict(activation_params)
        self.dtype = dt
        fan_in = C // self.groups * math.prod(k)
        bound = 1.0 / math.sqrt(fan_in) if fan_in else 0.0
        rng = np.random.default_rng(seed)
        self.weight = _uniform(rng, bound, (O, C // self.groups) + k, dt)
        self.bias = _uniform(rng, bound, (O,), dt) if has_bias else None
        self.grad_weight = np.zeros_like(self.weight)
        self.grad_bias = None if self.bias is None else np.zeros_like(self.bias)
        self._conv = _layers.conv1d if nd == 1 else _layers.conv2d
        self._conv_b = _layers.conv1d_backward if nd == 1 else _layers.conv2d_backward
        self._kw = {"stride": stride, "padding": padding, "dilation": dilation,
                    "groups": self.groups, "layout": self.layout}
        # the hyper-parameters checked now (by the functional layer, on an empty batch whose
        # spatial size fits any valid padding/dilation) rather than at the first call
        try:
            span = [d * (kk - 1) + 1 for d, kk in zip(_check_ksize(dilation, nd, "dilation"), k)]
        except (TypeError, ValueError):
            span = list(k)
        shape = (0,) + ((C,) + tuple(span) if self.layout in ("NCL", "NCHW") else tuple(span) + (C,))
        self._conv(np.zeros(shape, dt), self.weight, self.bias, **self._kw)

    def _named(self) -> list[tuple[str, NDArray[Any], NDArray[Any]]]:
        out = [("weight", self.weight, self.grad_weight)]
        if self.bias is not None and self.grad_bias is not None:
            out.append(("bias", self.bias, self.grad_bias))
        return out

    def _forward(self, x: Any, training: bool, out: NDArray[Any] | None) -> Any:
        f = self._f
        if not training:
            y = self._conv(x, self.weight, self.bias, out=out, **self._kw)
            return y if f is None else f(y, out=y, **self.activation_params)
        xa = np.asarray(x)
        z = self._conv(xa, self.weight, self.bias, **self._kw)
        saved = None
        if f is None:
            y = z
        elif self._from_y:
            y = saved = f(z, out=z, **self.activation_params)
        else:
            saved, y = z, f(z, **self.activation_params)
        self._training_ctx = (xa, saved)
        return y

    def _backward(self, grad_output: Any) -> Any:
        xa, saved = self._training_ctx
        g = grad_output
        if self._fb is not None:
            ga = np.asarray(g)
            if ga.shape != saved.shape:
                raise ValueError(f"grad_output: expected the output's shape {saved.shape}, got {ga.shape}")
            g = self._fb(ga, saved, **self.activation_params)
        gx, gw, gb = self._conv_b(g, xa, self.weight, has_bias=self.bias is not None, **self._kw)
        np.copyto(self.grad_weight, gw)
        if gb is not None and self.grad_bias is not None:
            np.copyto(self.grad_bias, gb)
        return gx

    def _repr_args(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, {self.kernel_size}"
        for k, d in (("stride", 1), ("padding", 0), ("dilation", 1), ("groups", 1)):
            if getattr(self, k) != d:
                s += f", {k}={getattr(self, k)!r}"
        if self.bias is None:
            s += ", bias=False"
        if self.activation is not None:
            s += f", activation={self.activation!r}"
            s += "".join(f", {k}={v!r}" for k, v in self.activation_params.items())
        if self.layout != _LAYOUTS[self._nd][0]:
            s += f", layout={self.layout!r}"
        return s + f", dtype={self.dtype.name}"


_CONV_DOC = """{summary}

    Parameters
    ----------
    in_channels : int
        Channels of the input.
    out_channels : int
        Channels of the output (filters).
    kernel_size : int or tuple of {nd} ints
        The filters' spatial size.
    stride : int or tuple of {nd} ints, default 1
    padding : int, tuple of {nd} ints, "valid" or "same", default 0
        Zero padding on both sides (``"same"``: the output size of the
        input's, stride 1 only; PyTorch's rules).
    dilation : int or tuple of {nd} ints, default 1
    groups : int, default 1
        Blocked connections: each group of ``in_channels/groups`` input
        channels feeds ``out_channels/groups`` outputs.
    bias : bool, default True
    activation : str, optional
        An elementwise activation applied to the output (``"relu"``, ...;
        every one but ``prelu`` and ``noisy_relu``).
    layout : {{"{l0}", "{l1}"}}, default "{l0}"
        Of the input and output: PyTorch's channels first, or channels last
        (Keras/TF).  The weight has PyTorch's layout either way.
    dtype : dtype, default float32
        float32 or float64.
    seed : int or numpy.random.Generator, optional
        Seeds the initialisation (``numpy.random.default_rng(seed)``).
    **activation_params
        The activation's parameters.

    Notes
    -----
    Parameters ``weight`` (out_channels, in_channels/groups, {kdims}) and
    ``bias`` (out_channels,), PyTorch's names and layout, initialised as
    PyTorch's ``nn.{torch}``: ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` with
    ``fan_in = in_channels/groups * {kprod}``.  Forward one
    :func:`mlkern.layers.{f}` call (the activation then in place), backward
    the activation's and one :func:`mlkern.layers.{f}_backward` call.  The
    hyper-parameters are checked when the layer is built.

    Examples
    --------
{examples}
"""


class Conv1D(_Conv):
    _nd = 1

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int], *,
                 stride: int | tuple[int] = 1, padding: int | str | tuple[int] = 0,
                 dilation: int | tuple[int] = 1, groups: int = 1, bias: bool = True,
                 activation: str | None = None, layout: str = "NCL", dtype: DTypeLike = np.float32,
                 seed: int | np.random.Generator | None = None, **activation_params: Any) -> None:
        self._setup(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                    activation, layout, dtype, seed, activation_params)


class Conv2D(_Conv):
    _nd = 2

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int], *,
                 stride: int | tuple[int, int] = 1, padding: int | str | tuple[int, int] = 0,
                 dilation: int | tuple[int, int] = 1, groups: int = 1, bias: bool = True,
                 activation: str | None = None, layout: str = "NCHW", dtype: DTypeLike = np.float32,
                 seed: int | np.random.Generator | None = None, **activation_params: Any) -> None:
        self._setup(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                    activation, layout, dtype, seed, activation_params)


Conv1D.__doc__ = _CONV_DOC.format(
    summary="1-D convolution layer (PyTorch's ``nn.Conv1d``; cross-correlation).", nd=1, l0="NCL",
    l1="NLC", kdims="kernel_size", kprod="kernel_size", torch="Conv1d", f="conv1d", examples="""\
    >>> import numpy as np, mlkern.nn as nn
    >>> conv = nn.Conv1D(4, 8, 3, padding="same", activation="relu", seed=0)
    >>> conv(np.ones((2, 4, 10), np.float32)).shape
    (2, 8, 10)""")
Conv2D.__doc__ = _CONV_DOC.format(
    summary="2-D convolution layer (PyTorch's ``nn.Conv2d``; cross-correlation).", nd=2, l0="NCHW",
    l1="NHWC", kdims="kH, kW", kprod="kH * kW", torch="Conv2d", f="conv2d", examples="""\
    >>> import numpy as np, mlkern.nn as nn
    >>> conv = nn.Conv2D(1, 16, 3, padding=1, seed=0)
    >>> conv(np.ones((5, 1, 8, 8), np.float32)).shape, conv.weight.shape
    ((5, 16, 8, 8), (16, 1, 3, 3))""")


class _Pool(Layer):
    """Max / average pooling: the functional layer forward (max: with its
    indices in training), its backward backward.  No parameters."""

    _nd = 2
    _max = True

    def _setup(self, kernel_size: Any, stride: Any, padding: Any, dilation: Any, ceil_mode: Any,
               count_include_pad: Any, layout: Any) -> None:
        nd = self._nd
        self.layout = _check_layout(layout, nd)
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.dilation, self.ceil_mode, self.count_include_pad = dilation, ceil_mode, count_include_pad
        name = ("max" if self._max else "avg") + f"_pool{nd}d"
        self._f = getattr(_layers, name)
        self._fb = getattr(_layers, name + "_backward")
        kw: dict[str, Any] = {"stride": stride, "padding": padding, "ceil_mode": ceil_mode,
                              "layout": self.layout}
        if self._max:
            kw["dilation"] = dilation
        else:
            kw["count_include_pad"] = count_include_pad
        self._kw = kw
        # the hyper-parameters checked now, by the functional layer on an input of one window
        k = _check_ksize(kernel_size, nd)
        try:
            span = [d * (kk - 1) + 1 for d, kk in zip(_check_ksize(dilation, nd, "dilation"), k)]
        except (TypeError, ValueError):
            span = list(k)
        self._f(np.zeros((1, 1) + tuple(span)) if self.layout in ("NCL", "NCHW")
                else np.zeros((1,) + tuple(span) + (1,)), kernel_size, **kw)

    def _forward(self, x: Any, training: bool, out: NDArray[Any] | None) -> Any:
        if not training:
            return self._f(x, self.kernel_size, out=out, **self._kw)
        xa = np.asarray(x)
        if self._max:
            y, idx = self._f(xa, self.kernel_size, return_indices=True, **self._kw)
        else:
            y, idx = self._f(xa, self.kernel_size, **self._kw), None
        self._training_ctx = (xa.shape, idx, y.shape)
        return y

    def _backward(self, grad_output: Any) -> Any:
        shape, idx, yshape = self._training_ctx
        ga = np.asarray(grad_output)
        if ga.shape != yshape:
            raise ValueError(f"grad_output: expected the output's shape {yshape}, got {ga.shape}")
        if self._max:
            return self._fb(ga, idx, shape, layout=self.layout)
        kw = {k: v for k, v in self._kw.items()}
        return self._fb(ga, shape, self.kernel_size, **kw)

    def _repr_args(self) -> str:
        s = f"{self.kernel_size!r}"
        if self.stride is not None:
            s += f", stride={self.stride!r}"
        if self.padding != 0:
            s += f", padding={self.padding!r}"
        if self._max and self.dilation != 1:
            s += f", dilation={self.dilation!r}"
        if self.ceil_mode:
            s += ", ceil_mode=True"
        if not self._max and not self.count_include_pad:
            s += ", count_include_pad=False"
        if self.layout != _LAYOUTS[self._nd][0]:
            s += f", layout={self.layout!r}"
        return s


_POOL_CLS_DOC = """{summary}

    Parameters
    ----------
    kernel_size : int or tuple of {nd} ints
        The window.
    stride : int or tuple of {nd} ints, optional
        Default (``None``): ``kernel_size``.
    padding : int or tuple of {nd} ints, default 0
        Implicit padding on both sides ({pad}), at most half the window.{dil}
    ceil_mode : bool, default False
        Round the output size up, as PyTorch.{cip}
    layout : {{"{l0}", "{l1}"}}, default "{l0}"
        Of the input and output.

    Notes
    -----
    No parameters.  Forward :func:`mlkern.layers.{f}` ({how}), backward
    :func:`mlkern.layers.{f}_backward`.  The arguments are checked when the
    layer is built.

    Examples
    --------
    >>> import numpy as np, mlkern.nn as nn
    >>> nn.{cls}(2)(np.arange({n}, dtype=np.float64).reshape({shape})).{show}
    {result}
"""


class MaxPool1D(_Pool):
    _nd = 1

    def __init__(self, kernel_size: int | tuple[int], stride: int | tuple[int] | None = None,
                 padding: int | tuple[int] = 0, dilation: int | tuple[int] = 1, *,
                 ceil_mode: bool = False, layout: str = "NCL") -> None:
        self._setup(kernel_size, stride, padding, dilation, ceil_mode, True, layout)


class MaxPool2D(_Pool):
    _nd = 2

    def __init__(self, kernel_size: int | tuple[int, int], stride: int | tuple[int, int] | None = None,
                 padding: int | tuple[int, int] = 0, dilation: int | tuple[int, int] = 1, *,
                 ceil_mode: bool = False, layout: str = "NCHW") -> None:
        self._setup(kernel_size, stride, padding, dilation, ceil_mode, True, layout)


class AvgPool1D(_Pool):
    _nd = 1
    _max = False

    def __init__(self, kernel_size: int | tuple[int], stride: int | tuple[int] | None = None,
                 padding: int | tuple[int] = 0, *, ceil_mode: bool = False,
                 count_include_pad: bool = True, layout: str = "NCL") -> None:
        self._setup(kernel_size, stride, padding, 1, ceil_mode, count_include_pad, layout)


class AvgPool2D(_Pool):
    _nd = 2
    _max = False

    def __init__(self, kernel_size: int | tuple[int, int], stride: int | tuple[int, int] | None = None,
                 padding: int | tuple[int, int] = 0, *, ceil_mode: bool = False,
                 count_include_pad: bool = True, layout: str = "NCHW") -> None:
        self._setup(kernel_size, stride, padding, 1, ceil_mode, count_include_pad, layout)


for _pcls, _nd_, _mx in ((MaxPool1D, 1, True), (MaxPool2D, 2, True), (AvgPool1D, 1, False),
                        (AvgPool2D, 2, False)):
    _pcls.__doc__ = _POOL_CLS_DOC.format(
        summary=(f"{_nd_}-D {'max' if _mx else 'average'} pooling (PyTorch's "
                 f"``nn.{'Max' if _mx else 'Avg'}Pool{_nd_}d``)."),
        nd=_nd_, l0=_LAYOUTS[_nd_][0], l1=_LAYOUTS[_nd_][1],
        pad="-inf" if _mx else "zeros",
        dil=("\n    dilation : int or tuple of %d ints, default 1\n        Spacing of the window's taps."
             % _nd_) if _mx else "",
        cip="" if _mx else ("\n    count_include_pad : bool, default True\n        Whether the "
                            "padding counts in the divisor."),
        f=("max" if _mx else "avg") + f"_pool{_nd_}d",
        how="with its indices in training, which the backward scatters to" if _mx else "the window means",
        cls=_pcls.__name__, n=8 if _nd_ == 1 else 16, shape="1, 1, 8" if _nd_ == 1 else "1, 1, 4, 4",
        show="tolist()" if _nd_ == 1 else "shape",
        result=(("[[[1.0, 3.0, 5.0, 7.0]]]" if _mx else "[[[0.5, 2.5, 4.5, 6.5]]]") if _nd_ == 1
                else "(1, 1, 2, 2)"))
del _pcls, _nd_, _mx


class _LocallyConnected(Layer):
    """LocallyConnected1D / 2D: unshared weights (Keras's layers, "valid"
    padding), one :func:`mlkern.layers.locally_connected1d` / ``2d`` call."""

    _nd = 1

    def _setup(self, in_channels: Any, out_channels: Any, kernel_size: Any, insize: Any,
               stride: Any, bias: Any, layout: Any, dtype: DTypeLike, seed: Any) -> None:
        nd = self._nd
        C = _check_size(in_channels, "in_channels")
        O = _check_size(out_channels, "out_channels")
        k = _check_ksize(kernel_size, nd)
        s = _check_ksize(stride, nd, "stride")
        name = "input_length" if nd == 1 else "input_shape"
        sp = _check_ksize(insize, nd, name)
        if any(n < kk for n, kk in zip(sp, k)):
            raise ValueError(f"{name}: {insize!r} is smaller than kernel_size {kernel_size!r}")
        outs = tuple((n - kk) // ss + 1 for n, kk, ss in zip(sp, k, s))
        has_bias = _check_bool(bias, "bias")
        self.layout = _check_layout(layout, nd)
        dt = _check_dtype(dtype)
        self.in_channels, self.out_channels, self.kernel_size, self.stride = C, O, k, s
        self.input_size, self.output_size, self.dtype = sp, outs, dt
        fan_in = C * math.prod(k)
        bound = 1.0 / math.sqrt(fan_in) if fan_in else 0.0
        rng = np.random.default_rng(seed)
        self.weight = _uniform(rng, bound, outs + (O, C) + k, dt)
        self.bias = _uniform(rng, bound, outs + (O,), dt) if has_bias else None
        self.grad_weight = np.zeros_like(self.weight)
        self.grad_bias = None if self.bias is None else np.zeros_like(self.bias)
        f = "locally_connected1d" if nd == 1 else "locally_connected2d"
        self._f, self._fb = getattr(_layers, f), getattr(_layers, f + "_backward")
        self._kw = {"stride": s if nd == 2 else s[0], "layout": self.layout}

    def _named(self) -> list[tuple[str, NDArray[Any], NDArray[Any]]]:
        out = [("weight", self.weight, self.grad_weight)]
        if self.bias is not None and self.grad_bias is not None:
            out.append(("bias", self.bias, self.grad_bias))
        return out

    def _forward(self, x: Any, training: bool, out: NDArray[Any] | None) -> Any:
        xa = np.asarray(x)
        b = 1 if xa.ndim == self._nd + 2 else 0          # a batch axis (the functional checks ndim)
        sp = xa.shape[b:b + self._nd] if self.layout in ("NLC", "NHWC") else xa.shape[b + 1:]
        if xa.ndim in (self._nd + 1, self._nd + 2) and tuple(sp) != self.input_size:
            raise ValueError(f"x: spatial size {tuple(sp)} (shape {xa.shape}, layout {self.layout!r}) "
                             f"differs from the layer's {self.input_size}")
        y = self._f(xa, self.weight, self.bias, out=None if training else out, **self._kw)
        if training:
            self._training_ctx = (xa,)
        return y

    def _backward(self, grad_output: Any) -> Any:
        (xa,) = self._training_ctx
        gx, gw, gb = self._fb(grad_output, xa, self.weight, has_bias=self.bias is not None, **self._kw)
        np.copyto(self.grad_weight, gw)
        if gb is not None and self.grad_bias is not None:
            np.copyto(self.grad_bias, gb)
        return gx

    def _repr_args(self) -> str:
        k = self.kernel_size[0] if self._nd == 1 else self.kernel_size
        n = self.input_size[0] if self._nd == 1 else self.input_size
        s = f"{self.in_channels}, {self.out_channels}, {k}, {n}"
        if any(v != 1 for v in self.stride):
            s += f", stride={self.stride[0] if self._nd == 1 else self.stride}"
        if self.bias is None:
            s += ", bias=False"
        if self.layout != _LAYOUTS[self._nd][0]:
            s += f", layout={self.layout!r}"
        return s + f", dtype={self.dtype.name}"


class LocallyConnected1D(_LocallyConnected):
    """1-D locally connected layer: a convolution with unshared weights (Keras's ``LocallyConnected1D``).

    Parameters
    ----------
    in_channels : int
        Channels of the input.
    out_channels : int
        Channels of the output.
    kernel_size : int
        The window.
    input_length : int
        Length L of the input (each output position has its own weights).
    stride : int, default 1
    bias : bool, default True
    layout : {"NCL", "NLC"}, default "NCL"
        Of the input and output.
    dtype : dtype, default float32
        float32 or float64.
    seed : int or numpy.random.Generator, optional
        Seeds the initialisation (``numpy.random.default_rng(seed)``).

    Notes
    -----
    "valid" padding: ``L_out = (L - kernel_size)//stride + 1``.  Parameters
    ``weight`` (L_out, out_channels, in_channels, kernel_size) and ``bias``
    (L_out, out_channels), the layout of
    :func:`mlkern.layers.locally_connected1d`, initialised as a PyTorch
    convolution: ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``, ``fan_in =
    in_channels * kernel_size``.  Forward one
    :func:`mlkern.layers.locally_connected1d` call, backward one
    :func:`mlkern.layers.locally_connected1d_backward` call.

    Examples
    --------
    >>> import numpy as np, mlkern.nn as nn
    >>> lc = nn.LocallyConnected1D(3, 4, 2, 10, stride=2, seed=0)
    >>> lc(np.ones((5, 3, 10), np.float32)).shape, lc.weight.shape
    ((5, 4, 5), (5, 4, 3, 2))
    """

    _nd = 1

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, input_length: int, *,
                 stride: int = 1, bias: bool = True, layout: str = "NCL",
                 dtype: DTypeLike = np.float32, seed: int | np.random.Generator | None = None) -> None:
        self._setup(in_channels, out_channels, kernel_size, input_length, stride, bias, layout,
                    dtype, seed)


class LocallyConnected2D(_LocallyConnected):
    """2-D locally connected layer: a convolution with unshared weights (Keras's ``LocallyConnected2D``).

    Parameters
    ----------
    in_channels : int
        Channels of the input.
    out_channels : int
        Channels of the output.
    kernel_size : int or tuple of 2 ints
        The window.
    input_shape : tuple of 2 ints
        (H, W) of the input (each output position has its own weights).
    stride : int or tuple of 2 ints, default 1
    bias : bool, default True
    layout : {"NCHW", "NHWC"}, default "NCHW"
        Of the input and output.
    dtype : dtype, default float32
        float32 or float64.
    seed : int or numpy.random.Generator, optional
        Seeds the initialisation (``numpy.random.default_rng(seed)``).

    Notes
    -----
    "valid" padding.  Parameters ``weight`` (H_out, W_out, out_channels,
    in_channels, kH, kW) and ``bias`` (H_out, W_out, out_channels), the
    layout of :func:`mlkern.layers.locally_connected2d`, initialised as a
    PyTorch convolution (``fan_in = in_channels * kH * kW``).  Forward one
    :func:`mlkern.layers.locally_connected2d` call, backward one
    :func:`mlkern.layers.locally_connected2d_backward` call.

    Examples
    --------
    >>> import numpy as np, mlkern.nn as nn
    >>> lc = nn.LocallyConnected2D(1, 2, 3, (8, 8), seed=0)
    >>> lc(np.ones((4, 1, 8, 8), np.float32)).shape
    (4, 2, 6, 6)
    """

    _nd = 2

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int],
                 input_shape: tuple[int, int], *, stride: int | tuple[int, int] = 1, bias: bool = True,
                 layout: str = "NCHW", dtype: DTypeLike = np.float32,
                 seed: int | np.random.Generator | None = None) -> None:
        self._setup(in_channels, out_channels, kernel_size, input_shape, stride, bias, layout,
                    dtype, seed)


class Sequential(Layer):
    """Layers applied one after the other; the chain rule backwards.

    Parameters
    ----------
    *layers : Layer
        The layers, in order (a Sequential may hold another).

    Notes
    -----
    The state dict names a parameter by its layer's index, as
    ``torch.nn.Sequential`` (``"0.weight"``, ``"2.bias"``; an Activation or
    a Flatten keeps its index though it has no parameters).  Inference
    writes each intermediate result into a workspace kept across calls (per
    calling thread), so a warm call allocates only its output; a
    :class:`Dense` without an activation followed by an :class:`Activation`
    is one fused :func:`mlkern.layers.dense` call, in training too (with
    ``return_saved``; its backward is the fused
    :func:`mlkern.layers.dense_backward`).

    Examples
    --------
    >>> import numpy as np, mlkern.nn as nn, mlkern.optim as optim, mlkern
    >>> model = nn.Sequential(nn.Dense(2, 8, seed=0), nn.Activation("tanh"),
    ...                       nn.Dense(8, 1, seed=1))
    >>> x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32)
    >>> t = np.array([[0], [1], [1], [0]], np.float32)
    >>> opt = optim.Adam(model.parameters(), lr=0.05)
    >>> for _ in range(300):
    ...     y = model.forward(x, training=True)
    ...     _ = model.backward(mlkern.mse_grad(y, t))
    ...     opt.step(model.gradients())
    >>> bool(mlkern.mse(model(x), t) < 0.01)
    True
    """

    def __init__(self, *layers: Layer) -> None:
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"layers[{i}]: expected an mlkern.nn layer, got {type(layer).__name__}")
        seen: dict[int, str] = {}
        for where, layer in _walk(layers, ""):
            if id(layer) in seen:
                raise ValueError(f"layers: the same {type(layer).__name__} object is at {seen[id(layer)]} "
                                 f"and at {where}; a layer keeps the state of one forward for its "
                                 "backward, so build one layer per position")
            seen[id(layer)] = where
        self.layers: tuple[Layer, ...] = tuple(layers)
        # the plan: (index of the layer, the fused Activation or None); an
        # Activation after a Dense with no activation of its own is fused
        plan: list[tuple[int, Activation | None]] = []
        i = 0
        while i < len(self.layers):
            layer = self.layers[i]
            nxt = self.layers[i + 1] if i + 1 < len(self.layers) else None
            if isinstance(layer, Dense) and layer.activation is None and isinstance(nxt, Activation):
                plan.append((i, nxt))
                i += 2
            else:
                plan.append((i, None))
                i += 1
        self._plan = plan
        # the inference steps: (kind, layer, activation name, its parameters);
        # kind 0 Dense, 2 Activation, 3 Flatten, 1 any other layer
        steps: list[tuple[int, Any, Any, dict[str, Any]]] = []
        for i, act in plan:
            layer = self.layers[i]
            if type(layer) is Dense:
                if act is not None:
                    steps.append((0, layer, act.name, act.params))
                else:
                    steps.append((0, layer, layer.activation, layer.activation_params))
            elif type(layer) is Activation:
                steps.append((2, layer, layer.name, layer.params))
            elif type(layer) is Flatten:
                steps.append((3, layer, None, {}))
            else:
                steps.append((1, layer, None, {}))
        self._steps = steps
        self._ws = threading.local()
        self._trained: list[int] = []

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, i: int) -> Layer:
        return self.layers[i]

    def __iter__(self) -> Iterator[Layer]:
        return iter(self.layers)

    def _named(self) -> list[tuple[str, NDArray[Any], NDArray[Any]]]:
        return [(f"{i}.{k}", p, g) for i, layer in enumerate(self.layers)
                for k, p, g in layer._named()]

    def _forward(self, x: Any, training: bool, out: NDArray[Any] | None) -> Any:
        layers = self.layers
        if training:
            for layer in layers:
                layer._training_ctx = None
            for i, act in self._plan:
                layer = layers[i]
                if act is not None:
                    x = layer._forward(x, True, None, act.name, act.params)  # type: ignore[call-arg]
                else:
                    x = layer._forward(x, True, None)
            self._training_ctx = True
            return x
        return self._infer(x, out)

    def _infer(self, x: Any, out: NDArray[Any] | None) -> Any:
        """Inference: the output of every step but the last goes into a
        workspace of the calling thread, kept while the step's input has the
        same shape and dtype; an unfused Activation after a workspace works in
        place in it."""
        steps = self._steps
        last = len(steps) - 1
        x = np.asarray(x)
        if last < 0:
            return np.asarray(x) if out is None else _copy_into(out, x)
        local = self._ws
        cache: list[Any] | None = getattr(local, "cache", None)
        if cache is None:
            cache = local.cache = [None] * len(steps)
        own = False                    # x is (a view of) a workspace of this model
        for s, (kind, layer, act, params) in enumerate(steps):
            if s == last:
                dst = out
            elif kind == 2 and own:
                dst = x                # the activation in place
            else:
                dst = None
                e = cache[s]
                if e is not None and e[0] == x.shape and e[1] == x.dtype:
                    dst = e[2]
            if kind == 0:              # Dense (+ its own or a fused activation)
                y = _layers.dense(x, layer.weight, layer.bias, activation=act, out=dst, **params)
            elif kind == 2:            # Activation
                y = layer._f(x, out=dst, **params)
            else:
                y = layer._forward(x, False, dst)
            if dst is None and s != last and kind != 3:
                cache[s] = (x.shape, x.dtype, y)
            own = kind != 3 or own     # a Flatten's view is ours if its input was
            x = y
        if out is None and own and steps[last][0] == 3:
            x = np.array(x)            # a Flatten's view of a workspace: the caller gets a copy
        return x

    def _backward(self, grad_output: Any) -> Any:
        g = grad_output
        layers = self.layers
        for i, _ in reversed(self._plan):
            g = layers[i].backward(g)
            if g is None and i != self._plan[0][0]:
                raise RuntimeError(f"Sequential.backward: layer {i} ({type(layers[i]).__name__}) "
                                   "gives no input gradient, so it must be the first layer")
        return g

    def _repr_args(self) -> str:
        return "\n" + "".join(f"  ({i}): {layer!r}\n" for i, layer in enumerate(self.layers))


def _copy_into(out: NDArray[Any], x: Any) -> NDArray[Any]:
    np.copyto(out, x)
    return out


def _walk(layers: tuple[Layer, ...], prefix: str) -> Iterator[tuple[str, Layer]]:
    """(position, layer) of the layers and of those of nested Sequentials."""
    for i, layer in enumerate(layers):
        yield f"layers[{prefix}{i}]", layer
        if isinstance(layer, Sequential):
            yield from _walk(layer.layers, f"{prefix}{i}][")
