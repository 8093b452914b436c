# Optimiser drivers (included by the extension's .pyx): the split of one fused
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
                     const mlk_oparams *p) noexcept nogil:
    cdef int nt = _threads_for(n, mlk_optim_ops[op].cost)
    cdef Py_ssize_t chunk, k, start, m
    if nt <= 1:
        _call_optim(op, th, g, s1, s2, n, p)
        return
    chunk = _chunk_size(n, nt)
    for k in prange(nt, num_threads=nt, schedule='static'):
        start = k * chunk
        m = _chunk_len(n, chunk, k)
        if m > 0:
            _call_optim(op, th + start, g + start, s1 + start if s1 != NULL else s1,
                        s2 + start if s2 != NULL else s2, m, p)


def optim_raw(int op, cnp.ndarray param, cnp.ndarray grad, s1, s2, double lr, double mom=0.0,
              double wd=0.0, double beta1=0.0, double beta2=0.0, double eps=0.0,
              double step_size=0.0, double rbc2=1.0, double decay=1.0):
    """One in-place step on C-contiguous param, grad (same size and float
    dtype; grad may be param) and the state arrays s1, s2 (or None), which
    optim.py has checked: same size and dtype, C-contiguous, writeable, no
    overlap."""
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
    if _is_f64(param, "optim_raw"):
        with nogil:
            _run_optim(op, <double *>cnp.PyArray_DATA(param), <const double *>cnp.PyArray_DATA(grad),
                       <double *>p1, <double *>p2, n, &p)
    else:
        with nogil:
            _run_optim(op, <float *>cnp.PyArray_DATA(param), <const float *>cnp.PyArray_DATA(grad),
                       <float *>p1, <float *>p2, n, &p)
    return param


cdef inline bint _state_ok(object s, cnp.ndarray p, cnp.ndarray g, int tn):
    """A state array: writeable, aligned, native, C-contiguous, p's type and
    shape, apart from p and g (_out_ok, _disjoint: _common.pxi)."""
    return (_out_ok(s, p, tn) and _disjoint(<cnp.ndarray>s, p)
            and _disjoint(<cnp.ndarray>s, g))


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
    if (tn != cnp.NPY_DOUBLE and tn != cnp.NPY_FLOAT) or not _fast_ok(p, tn) \
            or not cnp.PyArray_ISWRITEABLE(p):
        return False
    if cnp.PyArray_SIZE(p) == 0:
        return False              # nothing to do fast; the full checks are cheap here
    if not _fast_ok(grad, tn):
        return False
    g = <cnp.ndarray>grad
    if not _same_shape(g, p) or not _no_partial_overlap(p, g):
        return False
    if s1 is not None and not _state_ok(s1, p, g, tn):
        return False
    if s2 is not None:
        if not _state_ok(s2, p, g, tn):
            return False
        if s1 is not None and not _disjoint(<cnp.ndarray>s1, <cnp.ndarray>s2):
            return False
    return True
