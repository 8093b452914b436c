# Loss drivers (included by the extension's .pyx): the fused cross-entropy's
# split over rows.  Kernel: _c/mlk_loss_tmpl.h; its coefficients:
# mlk_xent_coef (_c/mlk_row.h, through xent_coef below); checks: losses.py.
# Per-row losses go to a float64 array that the caller sums in a fixed
# order, so the result does not depend on the thread count.

cdef extern from "mlk_row.h" nogil:
    void mlk_xent_coef(double s, double wy, double wmean, double eps, double n, double *abc)


def xent_coef(s, wy, double wmean, double eps, Py_ssize_t n):
    """The cross-entropy's (a, b, c) (mlk_xent_coef): for float s and wy one
    (3,) float64 triple; for float64 arrays s and wy (rows,) a (rows, 3) array."""
    cdef double[::1] sv, wv
    cdef double[:, ::1] cv
    cdef Py_ssize_t r, rows
    cdef cnp.ndarray res
    if not isinstance(s, np.ndarray):
        res = np.empty(3, np.float64)
        mlk_xent_coef(s, wy, wmean, eps, <double>n, <double *>cnp.PyArray_DATA(res))
        return res
    sv = np.ascontiguousarray(s, np.float64)
    wv = np.ascontiguousarray(wy, np.float64)
    rows = sv.shape[0]
    if wv.shape[0] != rows:
        raise ValueError("internal: xent_coef needs s and wy of one length")
    res = np.empty((rows, 3), np.float64)
    cv = res
    with nogil:
        for r in range(rows):
            mlk_xent_coef(sv[r], wv[r], wmean, eps, <double>n, &cv[r, 0])
    return res

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
    if _is_f64(z, "xent_raw"):
        with nogil:
            _run_xent(<const double *>cnp.PyArray_DATA(z), pl, pc, cs, ignore, <const double *>pw,
                      <double *>pg, ploss, rows, n)
    else:
        with nogil:
            _run_xent(<const float *>cnp.PyArray_DATA(z), pl, pc, cs, ignore, <const float *>pw,
                      <float *>pg, ploss, rows, n)
    return loss


# ------------------------------------------------------------------------
# pointwise losses (mse, mae, huber, bce, bce with logits, penalties) and
# the KL divergence: kernels in _c/mlk_loss_tmpl.h, checks and reductions in
# losses.py.  The pointwise loss is summed per block of LBLK elements at
# fixed global positions (bsum), and the blocks are added in order by the
# caller, so the total does not depend on the thread count.
# ------------------------------------------------------------------------

DEF LBLK = 2048         # = MLK_LBLK

cdef inline void _call_ploss(int op, const real *p, const real *t, real *lo, real *g,
                             double *bsum, Py_ssize_t i0, Py_ssize_t i1,
                             const mlk_lparams *lp) noexcept nogil:
    if real is float:
        mlk_kt.ploss_f32(op, p, t, lo, g, bsum, i0, i1, lp)
    else:
        mlk_kt.ploss_f64(op, p, t, lo, g, bsum, i0, i1, lp)

cdef void _run_ploss(int op, const real *p, const real *t, real *lo, real *g, double *bsum,
                     Py_ssize_t n, const mlk_lparams *lp) noexcept nogil:
    cdef int nt = _threads_for(n, mlk_ploss_ops[op].cost)
    cdef Py_ssize_t nb = (n + LBLK - 1) // LBLK
    cdef Py_ssize_t chunk, k, i0, i1
    if nt <= 1 or nb < nt:
        _call_ploss(op, p, t, lo, g, bsum, 0, n, lp)
        return
    chunk = ((nb + nt - 1) // nt) * LBLK
    for k in prange(nt, num_threads=nt, schedule='static'):
        i0 = k * chunk
        i1 = i0 + chunk
        if i1 > n:
            i1 = n
        if i1 > i0:
            _call_ploss(op, p, t, lo, g, bsum, i0, i1, lp)


def ploss_raw(int op, cnp.ndarray p, cnp.ndarray t, lo, g, sw, Py_ssize_t K, pw,
              Py_ssize_t P, Py_ssize_t prs, double pws=1.0, double delta=1.0,
              double lscale=1.0, double gscale=1.0):
    """Pointwise loss op over C-contiguous p, t of one float dtype (same
    size; t may be p for the penalties).  lo (per-element loss) and g
    (gradient) are None or C-contiguous arrays like p (either may be p or t);
    sw None or float64 (n // K,) row weights; pw None or a C-contiguous array
    of p's dtype read with period P along rows of K (row stride prs).
    Returns the float64 block sums (sum them in order for the total)."""
    cdef Py_ssize_t n = cnp.PyArray_SIZE(p)
    cdef mlk_lparams lp
    cdef cnp.ndarray bs = np.zeros((n + LBLK - 1) // LBLK, np.float64)
    cdef double *pb = <double *>cnp.PyArray_DATA(bs)
    cdef void *plo = NULL
    cdef void *pg = NULL
    if op < 0 or op >= MLK_N_PLOSS:
        raise ValueError("internal: unknown loss op")
    if n == 0:
        return bs
    lp.sw = <const double *>cnp.PyArray_DATA(<cnp.ndarray>sw) if sw is not None else NULL
    lp.K = K
    lp.pw = cnp.PyArray_DATA(<cnp.ndarray>pw) if pw is not None else NULL
    lp.P = P
    lp.prs = prs
    lp.pws = pws
    lp.delta = delta
    lp.lscale = lscale
    lp.gscale = gscale
    if lo is not None:
        plo = cnp.PyArray_DATA(<cnp.ndarray>lo)
    if g is not None:
        pg = cnp.PyArray_DATA(<cnp.ndarray>g)
    if _is_f64(p, "ploss_raw"):
        with nogil:
            _run_ploss(op, <const double *>cnp.PyArray_DATA(p), <const double *>cnp.PyArray_DATA(t),
                       <double *>plo, <double *>pg, pb, n, &lp)
    else:
        with nogil:
            _run_ploss(op, <const float *>cnp.PyArray_DATA(p), <const float *>cnp.PyArray_DATA(t),
                       <float *>plo, <float *>pg, pb, n, &lp)
    return bs


cdef inline void _call_kl(const real *p, const real *q, int log_q, real *g, const double *gsr,
                          double gscale, double *rsum, Py_ssize_t rows,
                          Py_ssize_t n) noexcept nogil:
    if real is float:
        mlk_kt.kl_f32(p, q, log_q, g, gsr, gscale, rsum, rows, n)
    else:
        mlk_kt.kl_f64(p, q, log_q, g, gsr, gscale, rsum, rows, n)

cdef void _run_kl(const real *p, const real *q, int log_q, real *g, const double *gsr,
                  double gscale, double *rsum, Py_ssize_t rows, Py_ssize_t n) noexcept nogil:
    cdef int nt = _row_threads(rows, rows * n, 4)
    cdef Py_ssize_t k, r0, r1
    if nt <= 1:
        _call_kl(p, q, log_q, g, gsr, gscale, rsum, rows, n)
        return
    for k in prange(nt, num_threads=nt, schedule='static'):
        r0 = (rows * k) // nt
        r1 = (rows * (k + 1)) // nt
        if r1 > r0:
            if g != NULL:
                _call_kl(p + r0 * n, q + r0 * n, log_q, g + r0 * n,
                         gsr + r0 if gsr != NULL else gsr, gscale, rsum + r0, r1 - r0, n)
            else:
                _call_kl(p + r0 * n, q + r0 * n, log_q, <real *>NULL,
                         gsr + r0 if gsr != NULL else gsr, gscale, rsum + r0, r1 - r0, n)


def kl_raw(cnp.ndarray p, cnp.ndarray q, bint log_q, g, gsr, double gscale,
           cnp.ndarray rsum, Py_ssize_t rows, Py_ssize_t n):
    """KL rows of C-contiguous p, q (rows, n), one float dtype; g None or an
    array like q (may be q); gsr None or float64 (rows,) gradient row scales
    (times gscale); the row values into float64 rsum (rows,)."""
    cdef void *pg = NULL
    cdef const double *pgs = NULL
    cdef double *pr = <double *>cnp.PyArray_DATA(rsum)
    if rows <= 0 or n <= 0:
        return rsum
    if g is not None:
        pg = cnp.PyArray_DATA(<cnp.ndarray>g)
    if gsr is not None:
        pgs = <const double *>cnp.PyArray_DATA(<cnp.ndarray>gsr)
    if _is_f64(p, "kl_raw"):
        with nogil:
            _run_kl(<const double *>cnp.PyArray_DATA(p), <const double *>cnp.PyArray_DATA(q),
                    log_q, <double *>pg, pgs, gscale, pr, rows, n)
    else:
        with nogil:
            _run_kl(<const float *>cnp.PyArray_DATA(p), <const float *>cnp.PyArray_DATA(q),
                    log_q, <float *>pg, pgs, gscale, pr, rows, n)
    return rsum


def xent_fast(z, target, axis, int64_t ignore, double eps, bint mean, bint want_grad, out=None):
    """cross_entropy's common case in one call: z a C-contiguous aligned
    native float32/float64 array with classes on its last axis (axis -1 or
    ndim-1), target C-contiguous aligned int64 labels of z's shape without
    that axis, every label in [0, n) or equal to `ignore`, at least one
    counted; no class or sample weights (losses.py checks those and
    reduction).  Returns (per-row float64 losses, gradient or None) with the
    coefficients of losses._coefficients, or None when the case does not
    apply (losses.py's full path then decides, with its error messages).
    out: None, or the gradient's array -- z's type and shape, C-contiguous,
    aligned, writeable, and z itself or apart from z and the labels."""
    cdef cnp.ndarray za, la, loss, g = None
    cdef int tn, nd, i
    cdef Py_ssize_t n, rows = 1, r, cnt = 0
    cdef const int64_t *pl
    cdef int64_t v
    cdef double s
    cdef double c[3]
    if type(z) is not cnp.ndarray or type(target) is not cnp.ndarray or type(axis) is not int:
        return None
    za = <cnp.ndarray>z
    la = <cnp.ndarray>target
    tn = cnp.PyArray_TYPE(za)
    nd = cnp.PyArray_NDIM(za)
    if (tn != cnp.NPY_DOUBLE and tn != cnp.NPY_FLOAT) or nd < 1:
        return None
    if not (axis == -1 or axis == nd - 1):
        return None
    if not _fast_ok(za, tn) or not _fast_ok(la, cnp.NPY_INT64) or cnp.PyArray_NDIM(la) != nd - 1:
        return None
    for i in range(nd - 1):
        if cnp.PyArray_DIM(la, i) != cnp.PyArray_DIM(za, i):
            return None
        rows *= cnp.PyArray_DIM(za, i)
    n = cnp.PyArray_DIM(za, nd - 1)
    if n <= 0 or rows <= 0:
        return None
    pl = <const int64_t *>cnp.PyArray_DATA(la)
    with nogil:
        for r in range(rows):
            v = pl[r]
            if v != ignore:
                if v < 0 or v >= n:
                    cnt = -1
                    break
                cnt += 1
    if cnt <= 0:
        return None
    if want_grad and out is not None:
        if not _out_ok(out, za, tn) or not _disjoint(<cnp.ndarray>out, la):
            return None
        g = <cnp.ndarray>out
    s = 1.0 / <double>cnt if mean else 1.0
    mlk_xent_coef(s, 1.0, 1.0, eps, <double>n, c)
    loss = cnp.PyArray_EMPTY(1, <cnp.npy_intp *>&rows, cnp.NPY_DOUBLE, 0)
    if want_grad and g is None:
        g = cnp.PyArray_EMPTY(nd, cnp.PyArray_DIMS(za), tn, 0)
    if tn == cnp.NPY_DOUBLE:
        with nogil:
            _run_xent(<const double *>cnp.PyArray_DATA(za), pl, c, 0, ignore, <const double *>NULL,
                      <double *>cnp.PyArray_DATA(g) if want_grad else <double *>NULL,
                      <double *>cnp.PyArray_DATA(loss), rows, n)
    else:
        with nogil:
            _run_xent(<const float *>cnp.PyArray_DATA(za), pl, c, 0, ignore, <const float *>NULL,
                      <float *>cnp.PyArray_DATA(g) if want_grad else <float *>NULL,
                      <double *>cnp.PyArray_DATA(loss), rows, n)
    return loss, g


def ploss_fast(int op, p, t, bint mean, bint want_grad, double pws, double delta,
               double lscale, double gmul, out=None):
    """The pointwise losses' common case in one call: p and t C-contiguous
    aligned native arrays of one float dtype and one shape, not empty; no
    sample weights, a scalar pos_weight, no out=, reduction mean or sum.
    Returns (loss as a Python float, gradient or None) computed exactly as
    losses._pointwise does, or None when the case does not apply.  out: None,
    or the gradient's array -- p's type and shape, C-contiguous, aligned,
    writeable, and p or t itself or apart from both."""
    cdef cnp.ndarray pa, ta, g = None, bs = None
    cdef int tn, nd
    cdef Py_ssize_t n, nb
    cdef mlk_lparams lp
    cdef double b1 = 0.0
    cdef double *pb
    cdef double denom, total
    if type(p) is not cnp.ndarray or type(t) is not cnp.ndarray:
        return None
    if op < 0 or op >= MLK_N_PLOSS:
        return None
    pa = <cnp.ndarray>p
    ta = <cnp.ndarray>t
    tn = cnp.PyArray_TYPE(pa)
    nd = cnp.PyArray_NDIM(pa)
    if (tn != cnp.NPY_DOUBLE and tn != cnp.NPY_FLOAT) or nd == 0:   # 0-d: a scalar gradient
        return None
    if not _fast_ok(pa, tn) or not _fast_ok(ta, tn) or not _same_shape(pa, ta):
        return None
    n = cnp.PyArray_SIZE(pa)
    if n == 0:
        return None
    if want_grad and out is not None:
        if not _out_ok(out, pa, tn) or not _no_partial_overlap(ta, <cnp.ndarray>out):
            return None
        g = <cnp.ndarray>out
    nb = (n + LBLK - 1) // LBLK
    if nb == 1:
        pb = &b1
    else:
        bs = np.zeros(nb, np.float64)
        pb = <double *>cnp.PyArray_DATA(bs)
    denom = <double>n if mean else 1.0
    lp.sw = NULL
    lp.K = n
    lp.pw = NULL
    lp.P = 1
    lp.prs = 0
    lp.pws = pws
    lp.delta = delta
    lp.lscale = lscale
    lp.gscale = gmul / denom
    if want_grad and g is None:
        g = cnp.PyArray_EMPTY(nd, cnp.PyArray_DIMS(pa), tn, 0)
    if tn == cnp.NPY_DOUBLE:
        with nogil:
            _run_ploss(op, <const double *>cnp.PyArray_DATA(pa), <const double *>cnp.PyArray_DATA(ta),
                       <double *>NULL, <double *>cnp.PyArray_DATA(g) if want_grad else <double *>NULL,
                       pb, n, &lp)
    else:
        with nogil:
            _run_ploss(op, <const float *>cnp.PyArray_DATA(pa), <const float *>cnp.PyArray_DATA(ta),
                       <float *>NULL, <float *>cnp.PyArray_DATA(g) if want_grad else <float *>NULL,
                       pb, n, &lp)
    total = b1 if nb == 1 else float(np.sum(bs))     # the blocks in order, as _pointwise
    return (total * lscale) / denom, g
