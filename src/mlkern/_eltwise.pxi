# Elementwise drivers (included by the extension's .pyx): one chunk per
# thread, the prange, the GIL release, and the fast entry points.  The math
# is in _c/mlk_act_tmpl.h over _c/mlk_math.h, the loops over one chunk in
# _c/mlk_kernels_tmpl.h.
#
# unary / binary take a C-contiguous float32/float64 array (and a directly
# writable out=) straight to the kernel and return None for anything else:
# the Python caller then validates (mlkern._validation.unary_slow /
# binary_slow) and calls unary_raw / binary_raw.

cdef inline void _call_unary(int op, const real *x, real *y, Py_ssize_t n,
                             const mlk_params *p) noexcept nogil:
    if real is float:
        mlk_kt.unary_f32(op, x, y, n, p)
    else:
        mlk_kt.unary_f64(op, x, y, n, p)

cdef inline void _call_binary(int op, const real *g, const real *s, real *y,
                              Py_ssize_t n, const mlk_params *p) noexcept nogil:
    if real is float:
        mlk_kt.binary_f32(op, g, s, y, n, p)
    else:
        mlk_kt.binary_f64(op, g, s, y, n, p)

cdef int _run_unary(int op, const real *x, real *y, Py_ssize_t n,
                    mlk_params *p) noexcept nogil:
    cdef int nt = _threads_for(n, mlk_unary_ops[op].cost)
    cdef Py_ssize_t chunk, k, m
    cdef mlk_params *pp
    if nt <= 1:
        _call_unary(op, x, y, n, p)
        return 0
    pp = <mlk_params *>malloc(nt * sizeof(mlk_params))
    if pp == NULL:
        return -1
    chunk = _chunk_size(n, nt)
    for k in range(nt):
        pp[k] = p[0]
        pp[k].offset = p.offset + k * chunk
    for k in prange(nt, num_threads=nt, schedule='static'):
        m = _chunk_len(n, chunk, k)
        if m > 0:
            _call_unary(op, x + k * chunk, y + k * chunk, m, &pp[k])
    free(pp)
    return 0

cdef void _run_binary(int op, const real *g, const real *s, real *y, Py_ssize_t n,
                      const mlk_params *p) noexcept nogil:
    cdef int nt = _threads_for(n, mlk_binary_ops[op].cost)
    cdef Py_ssize_t chunk, k, m
    if nt <= 1:
        _call_binary(op, g, s, y, n, p)
        return
    chunk = _chunk_size(n, nt)
    for k in prange(nt, num_threads=nt, schedule='static'):
        m = _chunk_len(n, chunk, k)
        if m > 0:
            _call_binary(op, g + k * chunk, s + k * chunk, y + k * chunk, m, p)


def unary(int op, x, out=None, double a=0.0, double b=0.0, double c=0.0, uint64_t seed=0):
    """y = f_op(x) for a C-contiguous float32/float64 x (not 0-d) and out=
    None or directly writable; None for any other call."""
    cdef cnp.ndarray xa, oa
    cdef int tn = _float_tn(x)
    if tn < 0 or cnp.PyArray_NDIM(<cnp.ndarray>x) == 0:
        return None
    xa = <cnp.ndarray>x
    if out is None:
        oa = cnp.PyArray_EMPTY(cnp.PyArray_NDIM(xa), cnp.PyArray_DIMS(xa), tn, 0)
    elif _out_ok(out, xa, tn):
        oa = <cnp.ndarray>out
    else:
        return None
    return unary_raw(op, xa, oa, a, b, c, seed)


def unary_raw(int op, cnp.ndarray xa, cnp.ndarray oa, double a=0.0, double b=0.0,
              double c=0.0, uint64_t seed=0, int64_t offset=0):
    """Kernel call on two arrays whose memory is contiguous in the same order
    (same shape, same float dtype).  No checks beyond that: callers validate.
    offset: the global index of xa's first element (noisy_relu's noise is
    keyed by it: a block of a larger array gets the whole array's noise)."""
    cdef mlk_params p
    cdef Py_ssize_t n = cnp.PyArray_SIZE(xa)
    cdef int rc = 0
    if op < 0 or op >= MLK_N_UNARY:
        raise ValueError("unknown elementwise op")
    p.a = a
    p.b = b
    p.c = c
    p.seed = seed
    p.offset = offset
    if _is_f64(xa, "unary_raw"):
        with nogil:
            rc = _run_unary(op, <const double *>cnp.PyArray_DATA(xa),
                            <double *>cnp.PyArray_DATA(oa), n, &p)
    else:
        with nogil:
            rc = _run_unary(op, <const float *>cnp.PyArray_DATA(xa),
                            <float *>cnp.PyArray_DATA(oa), n, &p)
    if rc != 0:
        raise MemoryError()
    return oa


def binary(int op, g, s, out=None, double a=0.0, double b=0.0, double c=0.0):
    """out = g * f_op'(s) for C-contiguous float arrays of one type and shape
    (not 0-d) and out= None or directly writable; None for any other call."""
    cdef cnp.ndarray ga, sa, oa
    cdef int tn = _float_tn(g)
    if tn < 0 or cnp.PyArray_NDIM(<cnp.ndarray>g) == 0 or _float_tn(s) != tn:
        return None
    ga = <cnp.ndarray>g
    sa = <cnp.ndarray>s
    if not _same_shape(ga, sa):
        return None
    if out is None:
        oa = cnp.PyArray_EMPTY(cnp.PyArray_NDIM(ga), cnp.PyArray_DIMS(ga), tn, 0)
    elif _out_ok(out, ga, tn) and _no_partial_overlap(sa, <cnp.ndarray>out):
        oa = <cnp.ndarray>out
    else:
        return None
    return binary_raw(op, ga, sa, oa, a, b, c)


def binary_raw(int op, cnp.ndarray ga, cnp.ndarray sa, cnp.ndarray oa, double a=0.0,
               double b=0.0, double c=0.0):
    cdef mlk_params p
    cdef Py_ssize_t n = cnp.PyArray_SIZE(ga)
    if op < 0 or op >= MLK_N_BINARY:
        raise ValueError("unknown backward op")
    p.a = a
    p.b = b
    p.c = c
    p.seed = 0
    p.offset = 0
    if _is_f64(ga, "binary_raw"):
        with nogil:
            _run_binary(op, <const double *>cnp.PyArray_DATA(ga), <const double *>cnp.PyArray_DATA(sa),
                        <double *>cnp.PyArray_DATA(oa), n, &p)
    else:
        with nogil:
            _run_binary(op, <const float *>cnp.PyArray_DATA(ga), <const float *>cnp.PyArray_DATA(sa),
                        <float *>cnp.PyArray_DATA(oa), n, &p)
    return oa


# ------------------------------------------------------------------------
# prelu: x viewed as (outer, C, inner), one slope per channel
# ------------------------------------------------------------------------

cdef void _run_prelu(const real *x, real *y, const real *alpha, Py_ssize_t outer,
                     Py_ssize_t C, Py_ssize_t inner, int grad) noexcept nogil:
    cdef Py_ssize_t per = C * inner
    cdef int nt = _threads_for(outer * per, 1)
    cdef Py_ssize_t rows, k, o0, m
    if nt <= 1 or outer < nt:
        if real is float:
            mlk_kt.prelu_f32(x, y, alpha, outer, C, inner, grad)
        else:
            mlk_kt.prelu_f64(x, y, alpha, outer, C, inner, grad)
        return
    rows = (outer + nt - 1) // nt
    for k in prange(nt, num_threads=nt, schedule='static'):
        o0 = k * rows
        m = outer - o0
        if m > rows:
            m = rows
        if m > 0:
            if real is float:
                mlk_kt.prelu_f32(x + o0 * per, y + o0 * per, alpha, m, C, inner, grad)
            else:
                mlk_kt.prelu_f64(x + o0 * per, y + o0 * per, alpha, m, C, inner, grad)


def prelu_raw(cnp.ndarray xa, cnp.ndarray oa, cnp.ndarray alpha, Py_ssize_t outer,
              Py_ssize_t C, Py_ssize_t inner, bint grad=False):
    """prelu (grad: its derivative) on C-contiguous x viewed as (outer, C,
    inner); alpha C-contiguous (C,)."""
    if _is_f64(xa, "prelu_raw"):
        with nogil:
            _run_prelu(<const double *>cnp.PyArray_DATA(xa), <double *>cnp.PyArray_DATA(oa),
                       <const double *>cnp.PyArray_DATA(alpha), outer, C, inner, grad)
    else:
        with nogil:
            _run_prelu(<const float *>cnp.PyArray_DATA(xa), <float *>cnp.PyArray_DATA(oa),
                       <const float *>cnp.PyArray_DATA(alpha), outer, C, inner, grad)
    return oa


def prelu_bwd_raw(cnp.ndarray ga, cnp.ndarray xa, cnp.ndarray alpha, cnp.ndarray gx,
                  cnp.ndarray galpha, Py_ssize_t outer, Py_ssize_t C, Py_ssize_t inner):
    """grad_x into gx, grad_alpha accumulated into the float64 (C,) galpha.
    Serial: the per-channel sums are then independent of the thread count."""
    if _is_f64(xa, "prelu_bwd_raw"):
        with nogil:
            mlk_kt.prelu_bwd_f64(<const double *>cnp.PyArray_DATA(ga), <const double *>cnp.PyArray_DATA(xa),
                                 <const double *>cnp.PyArray_DATA(alpha), <double *>cnp.PyArray_DATA(gx),
                                 <double *>cnp.PyArray_DATA(galpha), outer, C, inner)
    else:
        with nogil:
            mlk_kt.prelu_bwd_f32(<const float *>cnp.PyArray_DATA(ga), <const float *>cnp.PyArray_DATA(xa),
                                 <const float *>cnp.PyArray_DATA(alpha), <float *>cnp.PyArray_DATA(gx),
                                 <double *>cnp.PyArray_DATA(galpha), outer, C, inner)
    return gx
