# Type stubs for mlkern.optim.  The step functions update `param` (and the
# state arrays) in place and return `param`.
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, ClassVar, SupportsIndex, TypeVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["sgd_step", "momentum_step", "nesterov_step", "adagrad_step", "adadelta_step",
           "rmsprop_step", "adam_step", "Optimizer", "SGD", "Momentum", "Nesterov",
           "Adagrad", "Adadelta", "RMSprop", "Adam", "AdamW", "minibatches"]

_P = TypeVar("_P", bound=NDArray[Any])
# a learning rate: a number, or a function of the 1-based step number
_LR = float | Callable[[int], float]

def sgd_step(param: _P, grad: ArrayLike, *, lr: float, weight_decay: float = 0.0) -> _P: ...
def momentum_step(param: _P, grad: ArrayLike, velocity: NDArray[Any], *, lr: float,
                  momentum: float = 0.9, weight_decay: float = 0.0) -> _P: ...
def nesterov_step(param: _P, grad: ArrayLike, velocity: NDArray[Any], *, lr: float,
                  momentum: float = 0.9, weight_decay: float = 0.0) -> _P: ...
def adagrad_step(param: _P, grad: ArrayLike, sum_sq: NDArray[Any], *, lr: float,
                 eps: float = 1e-10, weight_decay: float = 0.0) -> _P: ...
def adadelta_step(param: _P, grad: ArrayLike, sq_avg: NDArray[Any], delta_avg: NDArray[Any], *,
                  rho: float = 0.9, eps: float = 1e-06, lr: float = 1.0,
                  weight_decay: float = 0.0) -> _P: ...
def rmsprop_step(param: _P, grad: ArrayLike, sq_avg: NDArray[Any], *, lr: float,
                 alpha: float = 0.99, eps: float = 1e-08, weight_decay: float = 0.0) -> _P: ...
def adam_step(param: _P, grad: ArrayLike, m: NDArray[Any], v: NDArray[Any], *,
              step: SupportsIndex, lr: float = 0.001, beta1: float = 0.9, beta2: float = 0.999,
              eps: float = 1e-08, weight_decay: float = 0.0, decoupled: bool = False) -> _P: ...

class Optimizer:
    params: list[NDArray[Any]]
    lr: _LR
    hyper: dict[str, Any]
    step_count: int
    state: list[dict[str, NDArray[Any]]]
    _state_names: ClassVar[tuple[str, ...]]
    def __init__(self, params: NDArray[Any] | Iterable[NDArray[Any]], lr: _LR,
                 **hyper: Any) -> None: ...
    def _kernel(self, lr: float, t: int) -> tuple[int, int, dict[str, float]]: ...
    def _current_lr(self, t: int) -> float: ...
    def step(self, grads: ArrayLike | Sequence[ArrayLike]) -> None: ...
    def zero_state(self) -> None: ...
    def state_dict(self) -> dict[str, Any]: ...
    def load_state_dict(self, d: Mapping[str, Any]) -> None: ...

class SGD(Optimizer):
    def __init__(self, params: NDArray[Any] | Iterable[NDArray[Any]], lr: _LR = 0.001,
                 weight_decay: float = 0.0) -> None: ...

class Momentum(Optimizer):
    def __init__(self, params: NDArray[Any] | Iterable[NDArray[Any]], lr: _LR = 0.001,
                 momentum: float = 0.9, weight_decay: float = 0.0) -> None: ...

class Nesterov(Momentum): ...

class Adagrad(Optimizer):
    def __init__(self, params: NDArray[Any] | Iterable[NDArray[Any]], lr: _LR = 0.01,
                 eps: float = 1e-10, weight_decay: float = 0.0) -> None: ...

class Adadelta(Optimizer):
    def __init__(self, params: NDArray[Any] | Iterable[NDArray[Any]], lr: _LR = 1.0,
                 rho: float = 0.9, eps: float = 1e-06, weight_decay: float = 0.0) -> None: ...

class RMSprop(Optimizer):
    def __init__(self, params: NDArray[Any] | Iterable[NDArray[Any]], lr: _LR = 0.01,
                 alpha: float = 0.99, eps: float = 1e-08, weight_decay: float = 0.0) -> None: ...

class Adam(Optimizer):
    _decoupled: ClassVar[bool]
    def __init__(self, params: NDArray[Any] | Iterable[NDArray[Any]], lr: _LR = 0.001,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-08,
                 weight_decay: float = 0.0) -> None: ...

class AdamW(Adam):
    def __init__(self, params: NDArray[Any] | Iterable[NDArray[Any]], lr: _LR = 0.001,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-08,
                 weight_decay: float = 0.01) -> None: ...

def minibatches(n_samples: SupportsIndex, batch_size: SupportsIndex, *, shuffle: bool = True,
                seed: int | np.random.Generator | None = None) -> Iterator[NDArray[np.int64]]: ...
