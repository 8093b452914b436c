# The C-level functions that mlkern._kernels exports to other Cython
# modules (through the module's __pyx_capi__).  Implemented in _capi.pxi.
#
# Do not cimport from here: the public, documented interface is
# mlkern/cython_api.pxd (``from mlkern.cython_api cimport sigmoid``), which
# re-exports these names.  Every declaration here must match _capi.pxi.
from cython cimport floating

# ---- scalar functions (float or double, chosen by the argument type)
cdef floating sigmoid(floating x) noexcept nogil
cdef floating sigmoid_grad(floating x) noexcept nogil
cdef floating tanh(floating x) noexcept nogil
cdef floating tanh_grad(floating x) noexcept nogil
cdef floating relu(floating x) noexcept nogil
cdef floating relu_grad(floating x) noexcept nogil
cdef floating leaky_relu(floating x, double negative_slope) noexcept nogil
cdef floating leaky_relu_grad(floating x, double negative_slope) noexcept nogil
cdef floating elu(floating x, double alpha) noexcept nogil
cdef floating elu_grad(floating x, double alpha) noexcept nogil
cdef floating softplus(floating x) noexcept nogil
cdef floating softplus_grad(floating x) noexcept nogil
cdef floating softplus_beta(floating x, double beta, double threshold) noexcept nogil
cdef floating softplus_beta_grad(floating x, double beta, double threshold) noexcept nogil
cdef floating log1pexp(floating x) noexcept nogil
cdef floating log_sigmoid(floating x) noexcept nogil
cdef floating log_sigmoid_grad(floating x) noexcept nogil
cdef floating silu(floating x) noexcept nogil
cdef floating silu_grad(floating x) noexcept nogil
cdef floating silu_beta(floating x, double beta) noexcept nogil
cdef floating silu_beta_grad(floating x, double beta) noexcept nogil
cdef floating gelu(floating x) noexcept nogil
cdef floating gelu_grad(floating x) noexcept nogil
cdef floating gelu_tanh(floating x) noexcept nogil
cdef floating gelu_tanh_grad(floating x) noexcept nogil
cdef floating exp(floating x) noexcept nogil
cdef floating expm1(floating x) noexcept nogil
cdef floating log(floating x) noexcept nogil
cdef floating log1p(floating x) noexcept nogil
cdef floating erf(floating x) noexcept nogil
cdef floating erfc(floating x) noexcept nogil
cdef floating ndtr(floating x) noexcept nogil

# ---- array kernels on raw pointers: out[i] = f(x[i]), i < n
cdef int sigmoid_array(const floating *x, floating *out, Py_ssize_t n) noexcept nogil
cdef int sigmoid_grad_array(const floating *x, floating *out, Py_ssize_t n) noexcept nogil
cdef int tanh_array(const floating *x, floating *out, Py_ssize_t n) noexcept nogil
cdef int tanh_grad_array(const floating *x, floating *out, Py_ssize_t n) noexcept nogil
cdef int relu_array(const floating *x, floating *out, Py_ssize_t n) noexcept nogil
cdef int relu_grad_array(const floating *x, floating *out, Py_ssize_t n) noexcept nogil
cdef int leaky_relu_array(const floating *x, floating *out, Py_ssize_t n,
                          double negative_slope) noexcept nogil
cdef int leaky_relu_grad_array(const floating *x, floating *out, Py_ssize_t n,
                               double negative_slope) noexcept nogil
cdef int elu_array(const floating *x, floating *out, Py_ssize_t n, double alpha) noexcept nogil
cdef int elu_grad_array(const floating *x, floating *out, Py_ssize_t n, double alpha) noexcept nogil
cdef int softplus_array(const floating *x, floating *out, Py_ssize_t n,
                        double beta, double threshold) noexcept nogil
cdef int softplus_grad_array(const floating *x, floating *out, Py_ssize_t n,
                             double beta, double threshold) noexcept nogil
cdef int log_sigmoid_array(const floating *x, floating *out, Py_ssize_t n) noexcept nogil
cdef int log_sigmoid_grad_array(const floating *x, floating *out, Py_ssize_t n) noexcept nogil
cdef int silu_array(const floating *x, floating *out, Py_ssize_t n, double beta) noexcept nogil
cdef int silu_grad_array(const floating *x, floating *out, Py_ssize_t n, double beta) noexcept nogil
cdef int gelu_array(const floating *x, floating *out, Py_ssize_t n) noexcept nogil
cdef int gelu_grad_array(const floating *x, floating *out, Py_ssize_t n) noexcept nogil
cdef int gelu_tanh_array(const floating *x, floating *out, Py_ssize_t n) noexcept nogil
cdef int gelu_tanh_grad_array(const floating *x, floating *out, Py_ssize_t n) noexcept nogil

# ---- fused backward on raw pointers: out[i] = g[i] * f'(saved[i])
cdef int sigmoid_backward_array(const floating *g, const floating *y, floating *out,
                                Py_ssize_t n) noexcept nogil
cdef int tanh_backward_array(const floating *g, const floating *y, floating *out,
                             Py_ssize_t n) noexcept nogil
cdef int relu_backward_array(const floating *g, const floating *x, floating *out,
                             Py_ssize_t n) noexcept nogil
cdef int leaky_relu_backward_array(const floating *g, const floating *x, floating *out,
                                   Py_ssize_t n, double negative_slope) noexcept nogil
cdef int elu_backward_array(const floating *g, const floating *y, floating *out,
                            Py_ssize_t n, double alpha) noexcept nogil
cdef int softplus_backward_array(const floating *g, const floating *x, floating *out,
                                 Py_ssize_t n, double beta, double threshold) noexcept nogil
cdef int silu_backward_array(const floating *g, const floating *x, floating *out,
                             Py_ssize_t n, double beta) noexcept nogil
cdef int log_sigmoid_backward_array(const floating *g, const floating *x, floating *out,
                                    Py_ssize_t n) noexcept nogil
cdef int gelu_backward_array(const floating *g, const floating *x, floating *out,
                             Py_ssize_t n) noexcept nogil
cdef int gelu_tanh_backward_array(const floating *g, const floating *x, floating *out,
                                  Py_ssize_t n) noexcept nogil

# ---- row-wise kernels on a C-contiguous (rows, n) block
cdef int softmax_rows(const floating *x, floating *out, Py_ssize_t rows,
                      Py_ssize_t n) noexcept nogil
cdef int log_softmax_rows(const floating *x, floating *out, Py_ssize_t rows,
                          Py_ssize_t n) noexcept nogil
cdef int logsumexp_rows(const floating *x, floating *out, Py_ssize_t rows,
                        Py_ssize_t n) noexcept nogil
