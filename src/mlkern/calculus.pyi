# Type stubs for mlkern.calculus.
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["numerical_grad", "gradcheck", "derivative", "GradcheckError"]

class GradcheckError(AssertionError):
    index: tuple[int, ...]
    analytic: float
    numerical: float
    def __init__(self, msg: str, index: tuple[int, ...], analytic: float,
                 numerical: float) -> None: ...

def numerical_grad(f: Callable[[NDArray[Any]], Any], x: ArrayLike, *,
                   eps: float | None = None) -> NDArray[np.floating[Any]]: ...
def gradcheck(f: Callable[[NDArray[Any]], Any], grad_f: Callable[[NDArray[Any]], ArrayLike],
              x: ArrayLike, *, rtol: float = 1e-05, atol: float = 1e-08) -> bool: ...
def derivative(name: str) -> Callable[..., Any]: ...
