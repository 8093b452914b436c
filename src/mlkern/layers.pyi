# Type stubs for mlkern.layers.
from typing import Any, Literal, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["dense", "dense_backward", "embedding", "embedding_backward",
           "rnn_cell", "lstm_cell", "gru_cell", "rnn", "lstm", "gru",
           "rnn_backward", "lstm_backward", "gru_backward"]

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

class RecurrentSaved:
    kind: str
    nonlinearity: str | None
    batch_first: bool
    cdt: np.dtype[Any]
    rdt: np.dtype[Any]
    x: NDArray[Any]
    w_ih: NDArray[Any]
    w_hh: NDArray[Any]
    has_h0: bool
    has_c0: bool
    has_b_ih: bool
    has_b_hh: bool
    hs: NDArray[Any]
    cs: NDArray[Any] | None
    acts: NDArray[Any] | None
    extra: NDArray[Any] | None

_A = NDArray[Any]

def rnn_cell(x: ArrayLike, h: ArrayLike | None, w_ih: ArrayLike, w_hh: ArrayLike,
             b_ih: ArrayLike | None = None, b_hh: ArrayLike | None = None, *,
             nonlinearity: Literal["tanh", "relu"] = "tanh") -> _A: ...
def lstm_cell(x: ArrayLike, h: ArrayLike | None, c: ArrayLike | None, w_ih: ArrayLike,
              w_hh: ArrayLike, b_ih: ArrayLike | None = None,
              b_hh: ArrayLike | None = None) -> tuple[_A, _A]: ...
def gru_cell(x: ArrayLike, h: ArrayLike | None, w_ih: ArrayLike, w_hh: ArrayLike,
             b_ih: ArrayLike | None = None, b_hh: ArrayLike | None = None) -> _A: ...
@overload
def rnn(x: ArrayLike, h0: ArrayLike | None, w_ih: ArrayLike, w_hh: ArrayLike,
        b_ih: ArrayLike | None = None, b_hh: ArrayLike | None = None, *,
        nonlinearity: Literal["tanh", "relu"] = "tanh", batch_first: bool = False,
        return_saved: Literal[False] = False) -> tuple[_A, _A]: ...
@overload
def rnn(x: ArrayLike, h0: ArrayLike | None, w_ih: ArrayLike, w_hh: ArrayLike,
        b_ih: ArrayLike | None = None, b_hh: ArrayLike | None = None, *,
        nonlinearity: Literal["tanh", "relu"] = "tanh", batch_first: bool = False,
        return_saved: Literal[True]) -> tuple[_A, _A, RecurrentSaved]: ...
@overload
def lstm(x: ArrayLike, h0: ArrayLike | None, c0: ArrayLike | None, w_ih: ArrayLike,
         w_hh: ArrayLike, b_ih: ArrayLike | None = None, b_hh: ArrayLike | None = None, *,
         batch_first: bool = False,
         return_saved: Literal[False] = False) -> tuple[_A, tuple[_A, _A]]: ...
@overload
def lstm(x: ArrayLike, h0: ArrayLike | None, c0: ArrayLike | None, w_ih: ArrayLike,
         w_hh: ArrayLike, b_ih: ArrayLike | None = None, b_hh: ArrayLike | None = None, *,
         batch_first: bool = False,
         return_saved: Literal[True]) -> tuple[_A, tuple[_A, _A], RecurrentSaved]: ...
@overload
def gru(x: ArrayLike, h0: ArrayLike | None, w_ih: ArrayLike, w_hh: ArrayLike,
        b_ih: ArrayLike | None = None, b_hh: ArrayLike | None = None, *,
        batch_first: bool = False, return_saved: Literal[False] = False) -> tuple[_A, _A]: ...
@overload
def gru(x: ArrayLike, h0: ArrayLike | None, w_ih: ArrayLike, w_hh: ArrayLike,
        b_ih: ArrayLike | None = None, b_hh: ArrayLike | None = None, *,
        batch_first: bool = False,
        return_saved: Literal[True]) -> tuple[_A, _A, RecurrentSaved]: ...
def rnn_backward(grad_output: ArrayLike | None, grad_h_n: ArrayLike | None,
                 saved: RecurrentSaved
                 ) -> tuple[_A, _A | None, _A, _A, _A | None, _A | None]: ...
def lstm_backward(grad_output: ArrayLike | None, grad_h_n: ArrayLike | None,
                  grad_c_n: ArrayLike | None, saved: RecurrentSaved
                  ) -> tuple[_A, _A | None, _A | None, _A, _A, _A | None, _A | None]: ...
def gru_backward(grad_output: ArrayLike | None, grad_h_n: ArrayLike | None,
                 saved: RecurrentSaved
                 ) -> tuple[_A, _A | None, _A, _A, _A | None, _A | None]: ...

# --- convolutions
__all__ += ["conv1d", "conv2d", "conv1d_backward", "conv2d_backward"]

_Spatial = int | tuple[int, ...]
_Padding = int | tuple[int, ...] | Literal["valid", "same"]

def conv1d(x: ArrayLike, weight: ArrayLike, bias: ArrayLike | None = None, *,
           stride: _Spatial = 1, padding: _Padding = 0, dilation: _Spatial = 1,
           groups: int = 1, layout: Literal["NCL", "NLC"] = "NCL",
           out: NDArray[Any] | None = None) -> NDArray[Any]: ...
def conv2d(x: ArrayLike, weight: ArrayLike, bias: ArrayLike | None = None, *,
           stride: _Spatial = 1, padding: _Padding = 0, dilation: _Spatial = 1,
           groups: int = 1, layout: Literal["NCHW", "NHWC"] = "NCHW",
           out: NDArray[Any] | None = None) -> NDArray[Any]: ...
def conv1d_backward(grad_output: ArrayLike, x: ArrayLike, weight: ArrayLike, *,
                    has_bias: bool = True, stride: _Spatial = 1, padding: _Padding = 0,
                    dilation: _Spatial = 1, groups: int = 1,
                    layout: Literal["NCL", "NLC"] = "NCL", needs_input_grad: bool = True
                    ) -> tuple[NDArray[Any] | None, NDArray[Any], NDArray[Any] | None]: ...
def conv2d_backward(grad_output: ArrayLike, x: ArrayLike, weight: ArrayLike, *,
                    has_bias: bool = True, stride: _Spatial = 1, padding: _Padding = 0,
                    dilation: _Spatial = 1, groups: int = 1,
                    layout: Literal["NCHW", "NHWC"] = "NCHW", needs_input_grad: bool = True
                    ) -> tuple[NDArray[Any] | None, NDArray[Any], NDArray[Any] | None]: ...
# --- pooling (issue 15)
__all__ += ["max_pool1d", "max_pool2d", "max_pool1d_backward", "max_pool2d_backward",
            "avg_pool1d", "avg_pool2d", "avg_pool1d_backward", "avg_pool2d_backward"]

_Size = int | tuple[int, ...]

@overload
def max_pool1d(x: ArrayLike, kernel_size: _Size, stride: _Size | None = None, padding: _Size = 0,
               dilation: _Size = 1, *, ceil_mode: bool = False, return_indices: Literal[False] = False,
               layout: str = "NCL", out: NDArray[Any] | None = None) -> NDArray[Any]: ...
@overload
def max_pool1d(x: ArrayLike, kernel_size: _Size, stride: _Size | None = None, padding: _Size = 0,
               dilation: _Size = 1, *, ceil_mode: bool = False, return_indices: Literal[True],
               layout: str = "NCL", out: NDArray[Any] | None = None
               ) -> tuple[NDArray[Any], NDArray[np.int64]]: ...
@overload
def max_pool2d(x: ArrayLike, kernel_size: _Size, stride: _Size | None = None, padding: _Size = 0,
               dilation: _Size = 1, *, ceil_mode: bool = False, return_indices: Literal[False] = False,
               layout: str = "NCHW", out: NDArray[Any] | None = None) -> NDArray[Any]: ...
@overload
def max_pool2d(x: ArrayLike, kernel_size: _Size, stride: _Size | None = None, padding: _Size = 0,
               dilation: _Size = 1, *, ceil_mode: bool = False, return_indices: Literal[True],
               layout: str = "NCHW", out: NDArray[Any] | None = None
               ) -> tuple[NDArray[Any], NDArray[np.int64]]: ...
def max_pool1d_backward(grad_output: ArrayLike, indices: ArrayLike, input_shape: tuple[int, ...], *,
                        layout: str = "NCL") -> NDArray[Any]: ...
def max_pool2d_backward(grad_output: ArrayLike, indices: ArrayLike, input_shape: tuple[int, ...], *,
                        layout: str = "NCHW") -> NDArray[Any]: ...
def avg_pool1d(x: ArrayLike, kernel_size: _Size, stride: _Size | None = None, padding: _Size = 0, *,
               ceil_mode: bool = False, count_include_pad: bool = True, layout: str = "NCL",
               out: NDArray[Any] | None = None) -> NDArray[Any]: ...
def avg_pool2d(x: ArrayLike, kernel_size: _Size, stride: _Size | None = None, padding: _Size = 0, *,
               ceil_mode: bool = False, count_include_pad: bool = True, layout: str = "NCHW",
               out: NDArray[Any] | None = None) -> NDArray[Any]: ...
def avg_pool1d_backward(grad_output: ArrayLike, input_shape: tuple[int, ...], kernel_size: _Size,
                        stride: _Size | None = None, padding: _Size = 0, *, ceil_mode: bool = False,
                        count_include_pad: bool = True, layout: str = "NCL") -> NDArray[Any]: ...
def avg_pool2d_backward(grad_output: ArrayLike, input_shape: tuple[int, ...], kernel_size: _Size,
                        stride: _Size | None = None, padding: _Size = 0, *, ceil_mode: bool = False,
                        count_include_pad: bool = True, layout: str = "NCHW") -> NDArray[Any]: ...

# --- locally connected (issue 15)
__all__ += ["locally_connected1d", "locally_connected2d",
            "locally_connected1d_backward", "locally_connected2d_backward"]

def locally_connected1d(x: ArrayLike, weight: ArrayLike, bias: ArrayLike | None = None, *,
                        stride: _Size = 1, layout: str = "NCL",
                        out: NDArray[Any] | None = None) -> NDArray[Any]: ...
def locally_connected2d(x: ArrayLike, weight: ArrayLike, bias: ArrayLike | None = None, *,
                        stride: _Size = 1, layout: str = "NCHW",
                        out: NDArray[Any] | None = None) -> NDArray[Any]: ...
def locally_connected1d_backward(grad_output: ArrayLike, x: ArrayLike, weight: ArrayLike, *,
                                 has_bias: bool = True, stride: _Size = 1, layout: str = "NCL",
                                 needs_input_grad: bool = True
                                 ) -> tuple[NDArray[Any] | None, NDArray[Any], NDArray[Any] | None]: ...
def locally_connected2d_backward(grad_output: ArrayLike, x: ArrayLike, weight: ArrayLike, *,
                                 has_bias: bool = True, stride: _Size = 1, layout: str = "NCHW",
                                 needs_input_grad: bool = True
                                 ) -> tuple[NDArray[Any] | None, NDArray[Any], NDArray[Any] | None]: ...
