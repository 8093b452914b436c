# The Cython API of mlkern (included by _kernels.pyx; declared in
# _kernels.pxd, documented in cython_api.pxd, the public interface).
#
# Scalar functions: one call of the inline C math of _c/mlk_act_tmpl.h and
# _c/mlk_math.h, compiled here for the baseline target (the same source as
# the kernels; an array kernel at a higher SIMD level may differ from the
# scalar function by the few ULP the math is accurate to).
#
# Array functions: the same chunked, thread-aware drivers as the Python API
# (_run_unary, _run_binary, _run_rowwise above): the SIMD level chosen at
# import, mlkern's thread count and work threshold, no GIL needed.  They
# return 0, or -1 when the per-thread parameter block could not be allocated
# (nothing written then).
from libc.math cimport INFINITY

cdef extern from "mlk_act.h" nogil:
    double mlk_sigmoid_f64(double x)
    double mlk_sigmoid_grad_f64(double x)
    double mlk_tanh_f64(double x)
    double mlk_tanh_grad_f64(double x)
    double mlk_relu_f64(double x)
    double mlk_relu_grad_f64(double x)
    double mlk_log_sigmoid_f64(double x)
    double mlk_log_sigmoid_grad_f64(double x)
    double mlk_gelu_f64(double x)
    double mlk_gelu_grad_f64(double x)
    double mlk_gelu_tanh_f64(double x)
    double mlk_gelu_tanh_grad_f64(double x)
    double mlk_exp_f64(double x)
    double mlk_expm1_f64(double x)
    double mlk_log_f64(double x)
    double mlk_log1p_f64(double x)
    double mlk_erf_f64(double x)
    double mlk_erfc_f64(double x)
    double mlk_ndtr_f64(double x)
    double mlk_leaky_relu_f64(double x, double a)
    double mlk_leaky_relu_grad_f64(double x, double a)
    double mlk_elu_f64(double x, double a)
    double mlk_elu_grad_f64(double x, double a)
    double mlk_softplus_f64(double x, double beta, double thr)
    double mlk_softplus_grad_f64(double x, double beta, double thr)
    double mlk_silu_f64(double x, double beta)
    double mlk_silu_grad_f64(double x, double beta)
    double mlk_silu1_f64(double x)
    float mlk_sigmoid_f32(float x)
    float mlk_sigmoid_grad_f32(float x)
    float mlk_tanh_f32(float x)
    float mlk_tanh_grad_f32(float x)
    float mlk_relu_f32(float x)
    float mlk_relu_grad_f32(float x)
    float mlk_log_sigmoid_f32(float x)
    float mlk_log_sigmoid_grad_f32(float x)
    float mlk_gelu_f32(float x)
    float mlk_gelu_grad_f32(float x)
    float mlk_gelu_tanh_f32(float x)
    float mlk_gelu_tanh_grad_f32(float x)
    float mlk_exp_f32(float x)
    float mlk_expm1_f32(float x)
    float mlk_log_f32(float x)
    float mlk_log1p_f32(float x)
    float mlk_erf_f32(float x)
    float mlk_erfc_f32(float x)
    float mlk_ndtr_f32(float x)
    float mlk_leaky_relu_f32(float x, float a)
    float mlk_leaky_relu_grad_f32(float x, float a)
    float mlk_elu_f32(float x, float a)
    float mlk_elu_grad_f32(float x, float a)
    float mlk_softplus_f32(float x, float beta, float thr)
    float mlk_softplus_grad_f32(float x, float beta, float thr)
    float mlk_silu_f32(float x, float beta)
    float mlk_silu_grad_f32(float x, float beta)
    float mlk_silu1_f32(float x)

cdef extern from "mlk_kernels.h" nogil:
    enum:
        MLK_SIGMOID, MLK_SIGMOID_GRAD, MLK_TANH, MLK_TANH_GRAD,
        MLK_RELU, MLK_RELU_GRAD, MLK_LEAKY_RELU, MLK_LEAKY_RELU_GRAD,
        MLK_ELU, MLK_ELU_GRAD, MLK_SOFTPLUS, MLK_SOFTPLUS_GRAD,
        MLK_SILU, MLK_SILU_GRAD, MLK_LOG_SIGMOID, MLK_LOG_SIGMOID_GRAD,
        MLK_GELU, MLK_GELU_GRAD, MLK_GELU_TANH, MLK_GELU_TANH_GRAD
    enum:
        MLK_SIGMOID_BWD, MLK_TANH_BWD, MLK_RELU_BWD, MLK_LEAKY_RELU_BWD,
        MLK_ELU_BWD, MLK_SOFTPLUS_BWD, MLK_SILU_BWD, MLK_LOG_SIGMOID_BWD,
        MLK_GELU_BWD, MLK_GELU_TANH_BWD
    enum:
        MLK_SOFTMAX, MLK_LOG_SOFTMAX

# ------------------------------------------------------------------------
# scalar functions
# ------------------------------------------------------------------------

cdef floating sigmoid(floating x) noexcept nogil:
    return mlk_sigmoid_f32(x) if floating is float else mlk_sigmoid_f64(x)

cdef floating sigmoid_grad(floating x) noexcept nogil:
    return mlk_sigmoid_grad_f32(x) if floating is float else mlk_sigmoid_grad_f64(x)

cdef floating tanh(floating x) noexcept nogil:
    return mlk_tanh_f32(x) if floating is float else mlk_tanh_f64(x)

cdef floating tanh_grad(floating x) noexcept nogil:
    return mlk_tanh_grad_f32(x) if floating is float else mlk_tanh_grad_f64(x)

cdef floating relu(floating x) noexcept nogil:
    return mlk_relu_f32(x) if floating is float else mlk_relu_f64(x)

cdef floating relu_grad(floating x) noexcept nogil:
    return mlk_relu_grad_f32(x) if floating is float else mlk_relu_grad_f64(x)

cdef floating leaky_relu(floating x, double negative_slope) noexcept nogil:
    if floating is float:
        return mlk_leaky_relu_f32(x, <float>negative_slope)
    else:
        return mlk_leaky_relu_f64(x, negative_slope)

cdef floating leaky_relu_grad(floating x, double negative_slope) noexcept nogil:
    if floating is float:
        return mlk_leaky_relu_grad_f32(x, <float>negative_slope)
    else:
        return mlk_leaky_relu_grad_f64(x, negative_slope)

cdef floating elu(floating x, double alpha) noexcept nogil:
    if floating is float:
        return mlk_elu_f32(x, <float>alpha)
    else:
        return mlk_elu_f64(x, alpha)

cdef floating elu_grad(floating x, double alpha) noexcept nogil:
    if floating is float:
        return mlk_elu_grad_f32(x, <float>alpha)
    else:
        return mlk_elu_grad_f64(x, alpha)

cdef floating softplus_beta(floating x, double beta, double threshold) noexcept nogil:
    if floating is float:
        return mlk_softplus_f32(x, <float>beta, <float>threshold)
    else:
        return mlk_softplus_f64(x, beta, threshold)

cdef floating softplus_beta_grad(floating x, double beta, double threshold) noexcept nogil:
    if floating is float:
        return mlk_softplus_grad_f32(x, <float>beta, <float>threshold)
    else:
        return mlk_softplus_grad_f64(x, beta, threshold)

cdef floating softplus(floating x) noexcept nogil:
    return softplus_beta(x, 1.0, INFINITY)

cdef floating softplus_grad(floating x) noexcept nogil:
    return softplus_beta_grad(x, 1.0, INFINITY)

cdef floating log1pexp(floating x) noexcept nogil:
    return softplus_beta(x, 1.0, INFINITY)

cdef floating log_sigmoid(floating x) noexcept nogil:
    return mlk_log_sigmoid_f32(x) if floating is float else mlk_log_sigmoid_f64(x)

cdef floating log_sigmoid_grad(floating x) noexcept nogil:
    return mlk_log_sigmoid_grad_f32(x) if floating is float else mlk_log_sigmoid_grad_f64(x)

cdef floating silu(floating x) noexcept nogil:
    return mlk_silu1_f32(x) if floating is float else mlk_silu1_f64(x)

cdef floating silu_grad(floating x) noexcept nogil:
    return mlk_silu_grad_f32(x, 1.0) if floating is float else mlk_silu_grad_f64(x, 1.0)

cdef floating silu_beta(floating x, double beta) noexcept nogil:
    # as the array kernel: the beta = 1 form where it applies
    if beta == 1.0:
        return silu(x)
    if floating is float:
        return mlk_silu_f32(x, <float>beta)
    else:
        return mlk_silu_f64(x, beta)

cdef floating silu_beta_grad(floating x, double beta) noexcept nogil:
    if floating is float:
        return mlk_silu_grad_f32(x, <float>beta)
    else:
        return mlk_silu_grad_f64(x, beta)

cdef floating gelu(floating x) noexcept nogil:
    return mlk_gelu_f32(x) if floating is float else mlk_gelu_f64(x)

cdef floating gelu_grad(floating x) noexcept nogil:
    return mlk_gelu_grad_f32(x) if floating is float else mlk_gelu_grad_f64(x)

cdef floating gelu_tanh(floating x) noexcept nogil:
    return mlk_gelu_tanh_f32(x) if floating is float else mlk_gelu_tanh_f64(x)

cdef floating gelu_tanh_grad(floating x) noexcept nogil:
    return mlk_gelu_tanh_grad_f32(x) if floating is float else mlk_gelu_tanh_grad_f64(x)

cdef floating exp(floating x) noexcept nogil:
    return mlk_exp_f32(x) if floating is float else mlk_exp_f64(x)

cdef floating expm1(floating x) noexcept nogil:
    return mlk_expm1_f32(x) if floating is float else mlk_expm1_f64(x)

cdef floating log(floating x) noexcept nogil:
    return mlk_log_f32(x) if floating is float else mlk_log_f64(x)

cdef floating log1p(floating x) noexcept nogil:
    return mlk_log1p_f32(x) if floating is float else mlk_log1p_f64(x)

cdef floating erf(floating x) noexcept nogil:
    return mlk_erf_f32(x) if floating is float else mlk_erf_f64(x)

cdef floating erfc(floating x) noexcept nogil:
    return mlk_erfc_f32(x) if floating is float else mlk_erfc_f64(x)

cdef floating ndtr(floating x) noexcept nogil:
    return mlk_ndtr_f32(x) if floating is float else mlk_ndtr_f64(x)

# ------------------------------------------------------------------------
# array kernels on raw pointers
# ------------------------------------------------------------------------
# The drivers take each op's cost (work per element, for the thread
# threshold) from the op table, as for the Python function of the same name.

cdef inline int _unary_ptr(int op, const floating *x, floating *out, Py_ssize_t n,
                           double a, double b, double c) noexcept nogil:
    cdef mlk_params p
    if n <= 0:
        return 0
    p.a = a
    p.b = b
    p.c = c
    p.seed = 0
    p.offset = 0
    return _run_unary(op, x, out, n, &p)

cdef inline int _binary_ptr(int op, const floating *g, const floating *s, floating *out,
                            Py_ssize_t n, double a, double b, double c) noexcept nogil:
    cdef mlk_params p
    if n <= 0:
        return 0
    p.a = a
    p.b = b
    p.c = c
    p.seed = 0
    p.offset = 0
    _run_binary(op, g, s, out, n, &p)
    return 0

cdef int sigmoid_array(const floating *x, floating *out, Py_ssize_t n) noexcept nogil:
    return _unary_ptr(MLK_SIGMOID, x, out, n, 0.0, 0.0, 0.0)

cdef int sigmoid_grad_array(const floating *x, floating *out, Py_ssize_t n) noexcept nogil:
    return _unary_ptr(MLK_SIGMOID_GRAD, x, out, n, 0.0, 0.0, 0.0)

cdef int tanh_array(const floating *x, floating *out, Py_ssize_t n) noexcept nogil:
    return _unary_ptr(MLK_TANH, x, out, n, 0.0, 0.0, 0.0)

cdef int tanh_grad_array(const floating *x, floating *out, Py_ssize_t n) noexcept nogil:
    return _unary_ptr(MLK_TANH_GRAD, x, out, n, 0.0, 0.0, 0.0)

cdef int relu_array(const floating *x, floating *out, Py_ssize_t n) noexcept nogil:
    return _unary_ptr(MLK_RELU, x, out, n, 0.0, 0.0, 0.0)

cdef int relu_grad_array(const floating *x, floating *out, Py_ssize_t n) noexcept nogil:
    return _unary_ptr(MLK_RELU_GRAD, x, out, n, 0.0, 0.0, 0.0)

cdef int leaky_relu_array(const floating *x, floating *out, Py_ssize_t n,
                          double negative_slope) noexcept nogil:
    return _unary_ptr(MLK_LEAKY_RELU, x, out, n, negative_slope, 0.0, 0.0)

cdef int leaky_relu_grad_array(const floating *x, floating *out, Py_ssize_t n,
                               double negative_slope) noexcept nogil:
    return _unary_ptr(MLK_LEAKY_RELU_GRAD, x, out, n, negative_slope, 0.0, 0.0)

cdef int elu_array(const floating *x, floating *out, Py_ssize_t n, double alpha) noexcept nogil:
    return _unary_ptr(MLK_ELU, x, out, n, alpha, 0.0, 0.0)

cdef int elu_grad_array(const floating *x, floating *out, Py_ssize_t n, double alpha) noexcept nogil:
    return _unary_ptr(MLK_ELU_GRAD, x, out, n, alpha, 0.0, 0.0)

cdef int softplus_array(const floating *x, floating *out, Py_ssize_t n,
                        double beta, double threshold) noexcept nogil:
    return _unary_ptr(MLK_SOFTPLUS, x, out, n, 0.0, beta, threshold)

cdef int softplus_grad_array(const floating *x, floating *out, Py_ssize_t n,
                             double beta, double threshold) noexcept nogil:
    return _unary_ptr(MLK_SOFTPLUS_GRAD, x, out, n, 0.0, beta, threshold)

cdef int log_sigmoid_array(const floating *x, floating *out, Py_ssize_t n) noexcept nogil:
    return _unary_ptr(MLK_LOG_SIGMOID, x, out, n, 0.0, 0.0, 0.0)

cdef int log_sigmoid_grad_array(const floating *x, floating *out, Py_ssize_t n) noexcept nogil:
    return _unary_ptr(MLK_LOG_SIGMOID_GRAD, x, out, n, 0.0, 0.0, 0.0)

cdef int silu_array(const floating *x, floating *out, Py_ssize_t n, double beta) noexcept nogil:
    return _unary_ptr(MLK_SILU, x, out, n, 0.0, beta, 0.0)

cdef int silu_grad_array(const floating *x, floating *out, Py_ssize_t n, double beta) noexcept nogil:
    return _unary_ptr(MLK_SILU_GRAD, x, out, n, 0.0, beta, 0.0)

cdef int gelu_array(const floating *x, floating *out, Py_ssize_t n) noexcept nogil:
    return _unary_ptr(MLK_GELU, x, out, n, 0.0, 0.0, 0.0)

cdef int gelu_grad_array(const floating *x, floating *out, Py_ssize_t n) noexcept nogil:
    return _unary_ptr(MLK_GELU_GRAD, x, out, n, 0.0, 0.0, 0.0)

cdef int gelu_tanh_array(const floating *x, floating *out, Py_ssize_t n) noexcept nogil:
    return _unary_ptr(MLK_GELU_TANH, x, out, n, 0.0, 0.0, 0.0)

cdef int gelu_tanh_grad_array(const floating *x, floating *out, Py_ssize_t n) noexcept nogil:
    return _unary_ptr(MLK_GELU_TANH_GRAD, x, out, n, 0.0, 0.0, 0.0)

cdef int sigmoid_backward_array(const floating *g, const floating *y, floating *out,
                                Py_ssize_t n) noexcept nogil:
    return _binary_ptr(MLK_SIGMOID_BWD, g, y, out, n, 0.0, 0.0, 0.0)

cdef int tanh_backward_array(const floating *g, const floating *y, floating *out,
                             Py_ssize_t n) noexcept nogil:
    return _binary_ptr(MLK_TANH_BWD, g, y, out, n, 0.0, 0.0, 0.0)

cdef int relu_backward_array(const floating *g, const floating *x, floating *out,
                             Py_ssize_t n) noexcept nogil:
    return _binary_ptr(MLK_RELU_BWD, g, x, out, n, 0.0, 0.0, 0.0)

cdef int leaky_relu_backward_array(const floating *g, const floating *x, floating *out,
                                   Py_ssize_t n, double negative_slope) noexcept nogil:
    return _binary_ptr(MLK_LEAKY_RELU_BWD, g, x, out, n, negative_slope, 0.0, 0.0)

cdef int elu_backward_array(const floating *g, const floating *y, floating *out,
                            Py_ssize_t n, double alpha) noexcept nogil:
    return _binary_ptr(MLK_ELU_BWD, g, y, out, n, alpha, 0.0, 0.0)

cdef int softplus_backward_array(const floating *g, const floating *x, floating *out,
                                 Py_ssize_t n, double beta, double threshold) noexcept nogil:
    return _binary_ptr(MLK_SOFTPLUS_BWD, g, x, out, n, 0.0, beta, threshold)

cdef int silu_backward_array(const floating *g, const floating *x, floating *out,
                             Py_ssize_t n, double beta) noexcept nogil:
    return _binary_ptr(MLK_SILU_BWD, g, x, out, n, 0.0, beta, 0.0)

cdef int log_sigmoid_backward_array(const floating *g, const floating *x, floating *out,
                                    Py_ssize_t n) noexcept nogil:
    return _binary_ptr(MLK_LOG_SIGMOID_BWD, g, x, out, n, 0.0, 0.0, 0.0)

cdef int gelu_backward_array(const floating *g, const floating *x, floating *out,
                             Py_ssize_t n) noexcept nogil:
    return _binary_ptr(MLK_GELU_BWD, g, x, out, n, 0.0, 0.0, 0.0)

cdef int gelu_tanh_backward_array(const floating *g, const floating *x, floating *out,
                                  Py_ssize_t n) noexcept nogil:
    return _binary_ptr(MLK_GELU_TANH_BWD, g, x, out, n, 0.0, 0.0, 0.0)

# ------------------------------------------------------------------------
# row-wise kernels on C-contiguous (rows, n) blocks
# ------------------------------------------------------------------------

cdef inline int _rows_ptr(int op, const floating *x, floating *out, Py_ssize_t rows,
                          Py_ssize_t n) noexcept nogil:
    if rows <= 0 or n <= 0:
        return 0
    if op != MLK_LOGSUMEXP and rows * n * <Py_ssize_t>sizeof(floating) >= _stream_bytes:
        op |= MLK_RW_STREAM
    _run_rowwise(op, x, x, out, NULL, rows, n, 1)
    return 0

cdef int softmax_rows(const floating *x, floating *out, Py_ssize_t rows,
                      Py_ssize_t n) noexcept nogil:
    return _rows_ptr(MLK_SOFTMAX, x, out, rows, n)

cdef int log_softmax_rows(const floating *x, floating *out, Py_ssize_t rows,
                          Py_ssize_t n) noexcept nogil:
    return _rows_ptr(MLK_LOG_SOFTMAX, x, out, rows, n)

cdef int logsumexp_rows(const floating *x, floating *out, Py_ssize_t rows,
                        Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t r
    if rows > 0 and n <= 0:
        for r in range(rows):       # the log of an empty sum
            out[r] = -INFINITY
        return 0
    return _rows_ptr(MLK_LOGSUMEXP, x, out, rows, n)
