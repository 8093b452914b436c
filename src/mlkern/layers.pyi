# Type stubs for mlkern.layers.
from typing import Any, Literal, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["dense", "dense_backward", "embedding", "embedding_backward"]

@overload
def dense(x: ArrayLike, weight: ArrayLike, bias: ArrayLike | None = None, *,
          activation: str | None = None, out: NDArray[Any] | None = None,
          return_saved: Literal[False] = False, **activation_params: Any) -> NDArray[Any]: ...
@overload
def dense(x: ArrayLike, weight: ArrayLike, bias: ArrayLike | None = None, *,
          activation: str | None = None, out: NDArray[Any] | None = None,
          return_saved: Literal[True], **activation_params: Any
          ) -> tuple[NDArray[Any], NDArray[Any] | None]: ...
def dense_backward(grad_output: ArrayLike, x: ArrayLike, weight: ArrayLike, *,
                   has_bias: bool = True, activation: str | None = None,
                   saved: ArrayLike | None = None, needs_input_grad: bool = True,
                   **activation_params: Any
                   ) -> tuple[NDArray[Any] | None, NDArray[Any], NDArray[Any] | None]: ...
def embedding(indices: ArrayLike, weight: ArrayLike, *, padding_idx: int | None = None,
              out: NDArray[Any] | None = None) -> NDArray[Any]: ...
def embedding_backward(grad_output: ArrayLike, indices: ArrayLike, num_embeddings: int, *,
                       padding_idx: int | None = None,
                       out: NDArray[Any] | None = None) -> NDArray[Any]: ...
