# Pooling (mlkern.layers): max and average pooling, forward and backward,
# NCHW and NHWC (1-D pooling is the 2-D kernel with H = 1).  Included from
# _kernels.pyx after _layers.pxi.  The loops are C (_c/mlk_pool_tmpl.h,
# compiled per SIMD level, through the dispatch table mlk_kt); this file
# owns the split into work units (planes, output rows, (image, channel
# block)), the thread count and the scratch buffers.  Callers validate
# (shapes, geometry, index range) in mlkern._validation / mlkern.layers.

# elements of work per input element (the thread policy of _common.pxi)
DEF POOL_COST = 2
# the order of the NHWC forward: 0 direct windows, 1 rows first (set_pool_variant)
cdef int _pool_nhwc_order = 0


def set_pool_variant(int order):
    """The order of the NHWC forward kernels (for measurements): 0 each
    window's taps as C-vectors, 1 the window rows reduced first into a row
    buffer.  Returns the previous value."""
    global _pool_nhwc_order
    old = _pool_nhwc_order
    _pool_nhwc_order = order
    return old


cdef inline void _pool_call(int f64, int op, const void *a, void *b, int64_t *idx,
                            Py_ssize_t u0, Py_ssize_t u1, const mlk_pool_geom *g,
                            void *work) noexcept nogil:
    if f64:
        mlk_kt.pool_f64(op, <const double *>a, <double *>b, idx, u0, u1, g, <double *>work)
    else:
        mlk_kt.pool_f32(op, <const float *>a, <float *>b, idx, u0, u1, g, <float *>work)


def pool_raw(int op, cnp.ndarray a, cnp.ndarray b, object idx, tuple geom, bint cip=False):
    """One pooling pass (op: the MLK_POOL_* code of mlk_kernels.h, 0..7).
    a: the input (forward: x; backward: grad_output), b: the result, both
    C-contiguous 4-D of one float dtype in the layout of the op ((N, C, H, W)
    or (N, H, W, C); 1-D pooling has H = 1); idx: C-contiguous int64 indices
    shaped like the output (max: forward writes them when not None, backward
    reads them, checked in range); geom = (H, W, OH, OW, kh, kw, sh, sw, ph,
    pw, dh, dw), checked by the caller.  Returns b."""
    cdef mlk_pool_geom g
    cdef int f64 = _is_f64(b, "pool_raw"), nt, t
    cdef bint nhwc = op in (1, 3, 5, 7), bwd = op >= 4
    cdef Py_ssize_t N, C, units, step, wsize = 0, u0, u1, total
    cdef int64_t *ip = NULL
    cdef char *work = NULL
    cdef const void *ap = cnp.PyArray_DATA(a)
    cdef void *bp = cnp.PyArray_DATA(b)
    cdef size_t isz = 8 if f64 else 4
    (g.H, g.W, g.OH, g.OW, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw) = geom
    g.cip = cip
    N = cnp.PyArray_DIM(b, 0)
    C = cnp.PyArray_DIM(b, 3 if nhwc else 1)
    g.C = C
    g.cb = C
    if idx is not None:
        ip = <int64_t *>cnp.PyArray_DATA(<cnp.ndarray>idx)
    if N == 0 or C == 0 or g.OH * g.OW == 0:
        if bwd:
            memset(bp, 0, cnp.PyArray_NBYTES(b))
        return b
    total = N * C * (g.H * g.W + g.OH * g.OW)
    nt = _threads_for(total, POOL_COST)
    if not nhwc:
        units = N * C
    elif not bwd:
        units = N * g.OH
    else:
        # (image, channel block): blocks only when there are fewer images than threads
        if N < nt and C > 16:
            g.cb = (((C + nt - 1) // nt) + 15) & ~(<Py_ssize_t>15)
        units = N * ((C + g.cb - 1) // g.cb)
    if units < nt:
        nt = <int>units
    if nhwc and not bwd and _pool_nhwc_order == 1:
        g.cb = 1
        wsize = (g.W * C * isz + 63) & ~(<Py_ssize_t>63)
        work = <char *>malloc(wsize * nt + 64)
        if work == NULL:
            raise MemoryError()
    if not nhwc and not bwd:
        wsize = (g.H * g.OW + g.OW) * isz
        wsize = (wsize + 63) & ~(<Py_ssize_t>63)
        work = <char *>malloc(wsize * nt + 64)
        if work == NULL:
            raise MemoryError()
    step = (units + nt - 1) // nt
    with nogil:
        if nt <= 1:
            _pool_call(f64, op, ap, bp, ip, 0, units, &g, work)
        else:
            for t in prange(nt, num_threads=nt, schedule='static'):
                u0 = t * step
                u1 = u0 + step
                if u1 > units:
                    u1 = units
                if u0 < u1:
                    _pool_call(f64, op, ap, bp, ip, u0, u1, &g,
                               (work + t * wsize) if work != NULL else NULL)
    free(work)
    return b
