# Optimiser drivers (included by _elementwise.pyx): the split of one fused
# in-place step into one chunk per thread.  Kernel: _c/mlk_optim_tmpl.h;
# checks, hyper-parameters and bias corrections: optim.py.  Every element
# is updated independently, so the result does not depend on the thread
# count.

cdef inline void _call_optim(int op, real *th, const real *g, real *s1, real *s2,
                             Py_ssize_t n, const mlk_oparams *p) noexcept nogil:
    if real is float:
        mlk_kt.optim_f32(op, th, g, s1, s2, n, p)
    else:
        mlk_kt.optim_f64(op, th, g, s1, s2, n, p)

cdef void _run_optim(int op, real *th, const real *g, real *s1, real *s2, Py_ssize_t n,
                     const mlk_oparams *p, int cost) noexcept nogil:
    cdef int nt = _threads_for(n, cost)
    cdef Py_ssize_t chunk, k, start, m
    if nt <= 1:
        _call_optim(op, th, g, s1, s2, n, p)
        return
    chunk = (((n + nt - 1) // nt) + 63) & ~(<Py_ssize_t>63)
    for k in prange(nt, num_threads=nt, schedule='static'):
        start = k * chunk
        m = n - start
        if m > chunk:
            m = chunk
        if m > 0:
            _call_optim(op, th + start, g + start, s1 + start if s1 != NULL else s1,
                        s2 + start if s2 != NULL else s2, m, p)


def optim_raw(int op, cnp.ndarray param, cnp.ndarray grad, s1, s2, double lr, double mom=0.0,
              double wd=0.0, double beta1=0.0, double beta2=0.0, double eps=0.0,
              double step_size=0.0, double rbc2=1.0, double decay=1.0, int cost=2):
    """One in-place step on C-contiguous param, grad (same size and float
    dtype; grad may be param) and the state arrays s1, s2 (or None), which
    optim.py has checked: same size and dtype, C-contiguous, writeable, no
    overlap."""
    cdef int tn = cnp.PyArray_TYPE(param)
    cdef Py_ssize_t n = cnp.PyArray_SIZE(param)
    cdef mlk_oparams p
    cdef void *p1 = NULL
    cdef void *p2 = NULL
    if op < 0 or op >= MLK_N_OPTIM:
        raise ValueError("internal: unknown optimiser op")
    if n == 0:
        return param
    if s1 is not None:
        p1 = cnp.PyArray_DATA(<cnp.ndarray>s1)
    if s2 is not None:
        p2 = cnp.PyArray_DATA(<cnp.ndarray>s2)
    p.lr = lr
    p.mom = mom
    p.wd = wd
    p.beta1 = beta1
    p.beta2 = beta2
    p.eps = eps
    p.step_size = step_size
    p.rbc2 = rbc2
    p.decay = decay
    if tn == cnp.NPY_DOUBLE:
        with nogil:
            _run_optim(op, <double *>cnp.PyArray_DATA(param), <const double *>cnp.PyArray_DATA(grad),
                       <double *>p1, <double *>p2, n, &p, cost)
    elif tn == cnp.NPY_FLOAT:
        with nogil:
            _run_optim(op, <float *>cnp.PyArray_DATA(param), <const float *>cnp.PyArray_DATA(grad),
                       <float *>p1, <float *>p2, n, &p, cost)
    else:
        raise TypeError("internal: optim_raw needs float32 or float64")
    return param


cdef inline bint _carray_like(object a, cnp.ndarray p, bint writeable):
    """a is an ndarray of p's type and shape, C-contiguous, aligned, native
    (and writeable if asked)."""
    cdef cnp.ndarray b
    cdef int i
    if type(a) is not cnp.ndarray:
        return False
    b = <cnp.ndarray>a
    if cnp.PyArray_TYPE(b) != cnp.PyArray_TYPE(p) or cnp.PyArray_NDIM(b) != cnp.PyArray_NDIM(p):
        return False
    for i in range(cnp.PyArray_NDIM(p)):
        if cnp.PyArray_DIM(b, i) != cnp.PyArray_DIM(p, i):
            return False
    if not (cnp.PyArray_ISCARRAY_RO(b) and cnp.PyArray_ISNOTSWAPPED(b)):
        return False
    return cnp.PyArray_ISWRITEABLE(b) or not writeable


cdef inline bint _apart(cnp.ndarray a, cnp.ndarray b):
    """The byte ranges of two C-contiguous arrays do not overlap."""
    cdef char *pa = <char *>cnp.PyArray_DATA(a)
    cdef char *pb = <char *>cnp.PyArray_DATA(b)
    return pa + cnp.PyArray_NBYTES(a) <= pb or pb + cnp.PyArray_NBYTES(b) <= pa


def optim_fast_ok(param, grad, s1, s2):
    """The common case of an optimiser class's step, in one call: param is a
    writeable, aligned, native, C-contiguous float32/float64 ndarray; the
    states (or None) are such arrays of its type and shape, apart from it and
    from each other; grad is an aligned native C-contiguous array of its type
    and shape that is param itself or apart from param and the states.
    False: optim.py's full checks decide (copy or a clear error)."""
    cdef cnp.ndarray p, g
    cdef int tn
    if type(param) is not cnp.ndarray:
        return False
    p = <cnp.ndarray>param
    tn = cnp.PyArray_TYPE(p)
    if tn != cnp.NPY_DOUBLE and tn != cnp.NPY_FLOAT:
        return False
    if not (cnp.PyArray_ISCARRAY(p) and cnp.PyArray_ISNOTSWAPPED(p)):
        return False
    if not _carray_like(grad, p, False):
        return False
    g = <cnp.ndarray>grad
    if cnp.PyArray_SIZE(p) == 0:
        return False              # nothing to do fast; the full checks are cheap here
    if cnp.PyArray_DATA(g) != cnp.PyArray_DATA(p) and not _apart(g, p):
        return False
    if s1 is not None:
        if not _carray_like(s1, p, True) or not _apart(<cnp.ndarray>s1, p) \
                or not _apart(<cnp.ndarray>s1, g):
            return False
    if s2 is not None:
        if not _carray_like(s2, p, True) or not _apart(<cnp.ndarray>s2, p) \
                or not _apart(<cnp.ndarray>s2, g):
            return False
        if s1 is not None and not _apart(<cnp.ndarray>s1, <cnp.ndarray>s2):
            return False
    return True
