# Loss drivers (included by _elementwise.pyx): the fused cross-entropy's
# split over rows.  Kernel: _c/mlk_loss_tmpl.h; checks and the reduction's
# coefficients: losses.py.  Per-row losses go to a float64 array that the
# caller sums in a fixed order, so the result does not depend on the
# thread count.

cdef inline void _call_xent(const real *z, const int64_t *lab, const double *coef,
                            Py_ssize_t cs, int64_t ignore, const real *w, real *g,
                            double *loss, Py_ssize_t rows, Py_ssize_t n) noexcept nogil:
    if real is float:
        mlk_kt.xent_f32(z, lab, coef, cs, ignore, w, g, loss, rows, n)
    else:
        mlk_kt.xent_f64(z, lab, coef, cs, ignore, w, g, loss, rows, n)

cdef void _run_xent(const real *z, const int64_t *lab, const double *coef, Py_ssize_t cs,
                    int64_t ignore, const real *w, real *g, double *loss, Py_ssize_t rows,
                    Py_ssize_t n) noexcept nogil:
    cdef int nt = _row_threads(rows, rows * n, 4)
    cdef Py_ssize_t k, r0, r1
    if nt <= 1:
        _call_xent(z, lab, coef, cs, ignore, w, g, loss, rows, n)
        return
    for k in prange(nt, num_threads=nt, schedule='static'):
        r0 = (rows * k) // nt
        r1 = (rows * (k + 1)) // nt
        if r1 > r0:
            if g != NULL:
                _call_xent(z + r0 * n, lab + r0, coef + cs * r0, cs, ignore, w, g + r0 * n,
                           loss + r0, r1 - r0, n)
            else:
                _call_xent(z + r0 * n, lab + r0, coef + cs * r0, cs, ignore, w, <real *>NULL,
                           loss + r0, r1 - r0, n)


def xent_raw(cnp.ndarray z, cnp.ndarray lab, cnp.ndarray coef, int64_t ignore, w, g,
             cnp.ndarray loss, Py_ssize_t rows, Py_ssize_t n):
    """Cross-entropy of C-contiguous float logits z (rows, n) with int64 labels
    (rows,), float64 coef (rows, 3), or (3,) for the same (a, b, c) on every
    row; rows labelled `ignore` count 0; class weights w (n,) of z's dtype or None,
    gradient g like z (may be z) or None; per-row losses into float64 loss.
    Labels of rows whose coef is not all 0 must be in [0, n): losses.py checks."""
    cdef int tn = cnp.PyArray_TYPE(z)
    cdef const int64_t *pl = <const int64_t *>cnp.PyArray_DATA(lab)
    cdef const double *pc = <const double *>cnp.PyArray_DATA(coef)
    cdef double *ploss = <double *>cnp.PyArray_DATA(loss)
    cdef void *pw = NULL
    cdef void *pg = NULL
    cdef Py_ssize_t cs = 3 if cnp.PyArray_NDIM(coef) == 2 else 0
    if rows <= 0 or n <= 0:
        return loss
    if w is not None:
        pw = cnp.PyArray_DATA(<cnp.ndarray>w)
    if g is not None:
        pg = cnp.PyArray_DATA(<cnp.ndarray>g)
    if tn == cnp.NPY_DOUBLE:
        with nogil:
            _run_xent(<const double *>cnp.PyArray_DATA(z), pl, pc, cs, ignore, <const double *>pw,
                      <double *>pg, ploss, rows, n)
    elif tn == cnp.NPY_FLOAT:
        with nogil:
            _run_xent(<const float *>cnp.PyArray_DATA(z), pl, pc, cs, ignore, <const float *>pw,
                      <float *>pg, ploss, rows, n)
    else:
        raise TypeError("internal: xent_raw needs float32 or float64")
    return loss
