# Type stubs for mlkern (the package namespace).
from typing import Any

from _typeshed import SupportsWrite

from . import _config as _config
from . import _kernels as _kernels
from . import calculus as calculus
from . import layers as layers
from . import nn as nn
from . import optim as optim
from ._config import get_num_threads as get_num_threads
from ._config import set_num_threads as set_num_threads
from ._config import threads as threads
from .activations import *
from .losses import *
from .rowwise import *

__version__: str

def show_config(file: SupportsWrite[str] | None = None) -> dict[str, Any]: ...
def get_include() -> str: ...

__all__ = [
    'get_num_threads', 'set_num_threads', 'threads', 'show_config', 'sigmoid', 'sigmoid_grad',
    'sigmoid_backward', 'tanh', 'tanh_grad', 'tanh_backward', 'relu', 'relu_grad',
    'relu_backward', 'leaky_relu', 'leaky_relu_grad', 'leaky_relu_backward', 'prelu',
    'prelu_grad', 'prelu_backward', 'elu', 'elu_grad', 'elu_backward', 'softplus',
    'softplus_grad', 'softplus_backward', 'silu', 'silu_grad', 'silu_backward', 'swish',
    'swish_grad', 'swish_backward', 'log_sigmoid', 'log_sigmoid_grad', 'log_sigmoid_backward',
    'gelu', 'gelu_grad', 'gelu_backward', 'noisy_relu', 'noisy_relu_backward', 'softmax',
    'log_softmax', 'logsumexp', 'softmax_backward', 'log_softmax_backward', 'softmax_jacobian',
    'argmax', 'cross_entropy', 'cross_entropy_grad', 'cross_entropy_with_grad', 'nll_loss',
    'nll_loss_grad', 'nll_loss_with_grad', 'mse', 'mse_grad', 'mse_with_grad', 'rmse',
    'rmse_grad', 'rmse_with_grad', 'mae', 'mae_grad', 'mae_with_grad', 'l1_loss',
    'l1_loss_grad', 'l1_loss_with_grad', 'l2_loss', 'l2_loss_grad', 'l2_loss_with_grad',
    'quadratic_cost', 'quadratic_cost_grad', 'quadratic_cost_with_grad', 'huber', 'huber_grad',
    'huber_with_grad', 'binary_cross_entropy', 'binary_cross_entropy_grad',
    'binary_cross_entropy_with_grad', 'binary_cross_entropy_with_logits',
    'binary_cross_entropy_with_logits_grad', 'binary_cross_entropy_with_logits_with_grad',
    'kl_div', 'kl_div_grad', 'kl_div_with_grad', 'l1_penalty', 'l1_penalty_grad', 'l2_penalty',
    'l2_penalty_grad',
]
