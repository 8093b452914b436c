# mlkern's Cython API: the numerically stable functions of mlkern for other
# Cython code, with no Python overhead -- in the spirit of
# scipy.special.cython_special.
#
#     # in your .pyx
#     from mlkern.cython_api cimport sigmoid, log1pexp, softmax_rows
#
#     cdef double y = sigmoid(-3.0)          # double version
#     cdef float  z = log1pexp(<float>2.0)   # float version
#
# Build: nothing besides Cython has to be configured.  Cython finds this file
# on sys.path (it is installed with mlkern); the functions are looked up at
# import time from the compiled module mlkern._kernels (its
# __pyx_capi__), so your extension needs no include directory, no mlkern
# headers and no link step against mlkern, only mlkern installed at run
# time.  Importing your module imports mlkern.
#
# Every function is ``noexcept nogil``: call it with or without the GIL,
# inside your own ``prange``.  They are fused over ``floating`` (float or
# double, chosen by the type of ``x``; pick explicitly with ``sigmoid[float]``).
# Results are the same math as the Python functions of the same name
# (mlkern.sigmoid, ...): NaN in -> NaN out, the tails exact (sigmoid(-1000) =
# 0, softplus(-30) = 9.357622968839737e-14, silu(-inf) = -0.0).
#
# Scalar functions -- one inline C call each; compiled for the baseline
# target, so where mlkern's array kernels run at a wider SIMD level
# (x86-64-v3/v4) a scalar result can differ from the array result by the
# functions' stated accuracy (a few ULP, usually 0).  Parameters that are
# not x are double; for float x they are rounded to float first, as the
# array kernels do.
#
#   sigmoid(x), sigmoid_grad(x)            1/(1+e^-x) and y(1-y)
#   tanh(x), tanh_grad(x)                  tanh x and 1-tanh^2 x
#   relu(x), relu_grad(x)                  relu_grad(0) = 0
#   leaky_relu(x, negative_slope), leaky_relu_grad(x, negative_slope)
#   elu(x, alpha), elu_grad(x, alpha)
#   softplus(x), softplus_grad(x)          log(1+e^x) exactly (beta=1, no threshold)
#   log1pexp(x)                            the same as softplus(x)
#   softplus_beta(x, beta, threshold), softplus_beta_grad(x, beta, threshold)
#                                          (1/beta) log(1+e^{beta x}); x where
#                                          beta x > threshold (INFINITY: never);
#                                          beta must be nonzero
#   log_sigmoid(x), log_sigmoid_grad(x)    -softplus(-x) and sigmoid(-x)
#   silu(x), silu_grad(x)                  x sigmoid(x)
#   silu_beta(x, beta), silu_beta_grad(x, beta)    x sigmoid(beta x)
#   gelu(x), gelu_grad(x)                  x Phi(x) (exact erf form)
#   gelu_tanh(x), gelu_tanh_grad(x)        the tanh approximation
#   exp, expm1, log, log1p, erf, erfc, ndtr (= Phi)    mlkern's elementary
#                                          functions (cimport them under
#                                          another name, ``as mlk_exp``, when
#                                          libc.math's are in scope too)
#
# Array kernels on raw pointers -- the same kernels as mlkern's Python API:
# the SIMD level chosen at import (MLKERN_CPU), mlkern's thread count
# (mlkern.set_num_threads / threadpoolctl) and its work threshold below which
# no OpenMP region is entered.  Called from a thread other than the main
# interpreter thread (an OpenMP worker of your own prange included) they run
# on that thread only.  ``out`` may be ``x`` (in place) but must not
# partially overlap an input.  n <= 0 does nothing.  They return 0, or -1 if
# the per-thread parameter block could not be allocated (out untouched).
#
#   <f>_array(const floating *x, floating *out, Py_ssize_t n [, params])
#       for f in sigmoid, sigmoid_grad, tanh, tanh_grad, relu, relu_grad,
#       log_sigmoid, log_sigmoid_grad, gelu, gelu_grad, gelu_tanh,
#       gelu_tanh_grad; leaky_relu(_grad) take (double negative_slope),
#       elu(_grad) (double alpha), silu(_grad) (double beta) and
#       softplus(_grad) (double beta, double threshold) -- threshold INFINITY
#       for none, as the Python default threshold=None.
#   <f>_backward_array(const floating *g, const floating *saved, floating *out,
#                      Py_ssize_t n [, params])
#       out = g * f'(.), fused; saved is the forward *output* y for sigmoid,
#       tanh and elu, the input x for relu, leaky_relu, softplus, silu,
#       log_sigmoid, gelu and gelu_tanh (as the Python f_backward).
#   softmax_rows(x, out, rows, n), log_softmax_rows(x, out, rows, n)
#       along the last axis of a C-contiguous (rows, n) block; out the same
#       shape (may be x).
#   logsumexp_rows(x, out, rows, n)
#       out has rows elements; an empty row (n = 0) gives -inf.

from mlkern._kernels cimport (
    sigmoid, sigmoid_grad, tanh, tanh_grad, relu, relu_grad,
    leaky_relu, leaky_relu_grad, elu, elu_grad,
    softplus, softplus_grad, softplus_beta, softplus_beta_grad, log1pexp,
    log_sigmoid, log_sigmoid_grad, silu, silu_grad, silu_beta, silu_beta_grad,
    gelu, gelu_grad, gelu_tanh, gelu_tanh_grad,
    exp, expm1, log, log1p, erf, erfc, ndtr,
    sigmoid_array, sigmoid_grad_array, tanh_array, tanh_grad_array,
    relu_array, relu_grad_array, leaky_relu_array, leaky_relu_grad_array,
    elu_array, elu_grad_array, softplus_array, softplus_grad_array,
    log_sigmoid_array, log_sigmoid_grad_array, silu_array, silu_grad_array,
    gelu_array, gelu_grad_array, gelu_tanh_array, gelu_tanh_grad_array,
    sigmoid_backward_array, tanh_backward_array, relu_backward_array,
    leaky_relu_backward_array, elu_backward_array, softplus_backward_array,
    silu_backward_array, log_sigmoid_backward_array, gelu_backward_array,
    gelu_tanh_backward_array,
    softmax_rows, log_softmax_rows, logsumexp_rows,
)
