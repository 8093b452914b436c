# Row-wise drivers (included by the extension's .pyx): the split of an
# (outer, n, inner) C-contiguous array into units of work, the prange, the
# GIL release.  The kernels are in _c/mlk_rowwise_tmpl.h; the checks,
# layouts and out= handling in rowwise.py, which calls these *_raw functions.
#
# A unit is one row (inner == 1) or one (outer index, block of up to
# ROW_CB columns) slab (inner > 1).  Units are split evenly over the team;
# a call below the work threshold (or with fewer units than threads) runs
# on the calling thread with no OpenMP region.

DEF ROW_CB = 256      # columns per unit in column mode (= MLK_RW_CB)
# Outputs of at least this many bytes are written with non-temporal stores
# by the kernels that can (backward rows, softmax rows up to 4096): they
# would not stay in cache, while streaming an output that the last-level
# cache holds across calls loses time (the measurements that set 24 MiB:
# docs/implementation.rst).
cdef Py_ssize_t _stream_bytes = 24 * 1024 * 1024

def set_stream_bytes(Py_ssize_t nbytes):
    """Set the output size from which row-wise kernels stream; returns the old one."""
    global _stream_bytes
    old = _stream_bytes
    _stream_bytes = nbytes
    return old

cdef inline void _call_rowwise(int op, const real *a, const real *b, real *y,
                               Py_ssize_t outer, Py_ssize_t n, Py_ssize_t cols,
                               Py_ssize_t ld) noexcept nogil:
    if real is float:
        mlk_kt.rowwise_f32(op, a, b, y, outer, n, cols, ld)
    else:
        mlk_kt.rowwise_f64(op, a, b, y, outer, n, cols, ld)

cdef inline void _call_argmax(const real *x, int64_t *out, Py_ssize_t outer, Py_ssize_t n,
                              Py_ssize_t cols, Py_ssize_t ld) noexcept nogil:
    if real is float:
        mlk_kt.argmax_f32(x, out, outer, n, cols, ld)
    else:
        mlk_kt.argmax_f64(x, out, outer, n, cols, ld)

cdef void _unit_range(const real *a, const real *b, real *y, int64_t *iy, int op,
                      Py_ssize_t u0, Py_ssize_t u1, Py_ssize_t n, Py_ssize_t inner,
                      Py_ssize_t nblk) noexcept nogil:
    """Units [u0, u1): rows (inner == 1) or column blocks (inner > 1).
    op < 0: argmax into iy."""
    cdef Py_ssize_t u, o, c0, cb, base, ybase
    if inner == 1:
        if op < 0:
            _call_argmax(a + u0 * n, iy + u0, u1 - u0, n, 1, 1)
        elif op == MLK_LOGSUMEXP:
            _call_rowwise(op, a + u0 * n, b, y + u0, u1 - u0, n, 1, 1)
        else:
            _call_rowwise(op, a + u0 * n, b + u0 * n, y + u0 * n, u1 - u0, n, 1, 1)
        return
    for u in range(u0, u1):
        o = u // nblk
        c0 = (u - o * nblk) * ROW_CB
        cb = inner - c0
        if cb > ROW_CB:
            cb = ROW_CB
        base = o * n * inner + c0
        ybase = o * inner + c0
        if op < 0:
            _call_argmax(a + base, iy + ybase, 1, n, cb, inner)
        elif op == MLK_LOGSUMEXP:
            _call_rowwise(op, a + base, b, y + ybase, 1, n, cb, inner)
        else:
            _call_rowwise(op, a + base, b + base, y + base, 1, n, cb, inner)

cdef void _run_rowwise(int op, const real *a, const real *b, real *y, int64_t *iy,
                       Py_ssize_t outer, Py_ssize_t n, Py_ssize_t inner) noexcept nogil:
    """op (MLK_RW_STREAM may be or-ed in; < 0: argmax into iy) over the units."""
    cdef Py_ssize_t nblk = 1, units, per, k, u0, u1
    cdef int nt
    cdef int cost = 1 if op < 0 else mlk_rowwise_ops[op & ~MLK_RW_STREAM].cost
    if inner > 1:
        nblk = (inner + ROW_CB - 1) // ROW_CB
    units = outer * nblk
    nt = _row_threads(units, outer * n * inner, cost)
    if nt <= 1:
        _unit_range(a, b, y, iy, op, 0, units, n, inner, nblk)
        return
    for k in prange(nt, num_threads=nt, schedule='static'):
        u0 = (units * k) // nt
        u1 = (units * (k + 1)) // nt
        if u1 > u0:
            _unit_range(a, b, y, iy, op, u0, u1, n, inner, nblk)


def rowwise_raw(int op, cnp.ndarray a, cnp.ndarray b, cnp.ndarray y, Py_ssize_t outer,
                Py_ssize_t n, Py_ssize_t inner):
    """Row-wise op on C-contiguous arrays of one float dtype viewed as
    (outer, n, inner), reduced over n.  b: the saved output (backward ops),
    else ignored (pass a).  y: same shape as a, or (outer, inner) for
    logsumexp.  No checks beyond the dtype: rowwise.py validates."""
    if op < 0 or op >= MLK_N_ROWWISE:
        raise ValueError("unknown row-wise op")
    if n <= 0 or outer <= 0 or inner <= 0:
        return y
    if op != MLK_LOGSUMEXP and cnp.PyArray_NBYTES(y) >= _stream_bytes:
        op |= MLK_RW_STREAM
    if _is_f64(a, "rowwise_raw"):
        with nogil:
            _run_rowwise(op, <const double *>cnp.PyArray_DATA(a), <const double *>cnp.PyArray_DATA(b),
                         <double *>cnp.PyArray_DATA(y), NULL, outer, n, inner)
    else:
        with nogil:
            _run_rowwise(op, <const float *>cnp.PyArray_DATA(a), <const float *>cnp.PyArray_DATA(b),
                         <float *>cnp.PyArray_DATA(y), NULL, outer, n, inner)
    return y


cdef int64_t _argmax_flat(const real *x, Py_ssize_t n) noexcept nogil:
    """argmax of one long row, split over the team: each thread scans a
    chunk, then the chunks are combined in order (the first chunk holding a
    NaN wins, else the largest value, the earlier chunk on ties)."""
    cdef int nt = _threads_for(n, 1)
    cdef int64_t idx[64]
    cdef Py_ssize_t chunk, k, s0, m
    cdef int64_t best
    cdef real bv, v
    if nt > 64:
        nt = 64
    if nt <= 1:
        _call_argmax(x, idx, 1, n, 1, 1)
        return idx[0]
    chunk = _chunk_size(n, nt)
    for k in prange(nt, num_threads=nt, schedule='static'):
        s0 = k * chunk
        m = _chunk_len(n, chunk, k)
        if m > 0:
            _call_argmax(x + s0, &idx[k], 1, m, 1, 1)
            idx[k] = idx[k] + s0
        else:
            idx[k] = -1
    best = idx[0]
    bv = x[best]
    for k in range(1, nt):
        if idx[k] < 0 or bv != bv:
            break
        v = x[idx[k]]
        if v != v or v > bv:
            best = idx[k]
            bv = v
    return best


def argmax_raw(cnp.ndarray x, cnp.ndarray out, Py_ssize_t outer, Py_ssize_t n, Py_ssize_t inner):
    """argmax over n of C-contiguous float x viewed as (outer, n, inner) into
    the C-contiguous int64 out of shape (outer, inner).  n >= 1."""
    cdef int tn = cnp.PyArray_TYPE(x)
    cdef int64_t *po = <int64_t *>cnp.PyArray_DATA(out)
    if n <= 0:
        raise ValueError("internal: argmax of an empty axis")
    if outer <= 0 or inner <= 0:
        return out
    if outer == 1 and inner == 1:
        with nogil:
            if tn == cnp.NPY_DOUBLE:
                po[0] = _argmax_flat(<const double *>cnp.PyArray_DATA(x), n)
            else:
                po[0] = _argmax_flat(<const float *>cnp.PyArray_DATA(x), n)
        return out
    if _is_f64(x, "argmax_raw"):
        with nogil:
            _run_rowwise(-1, <const double *>cnp.PyArray_DATA(x), <const double *>NULL,
                         <double *>NULL, po, outer, n, inner)
    else:
        with nogil:
            _run_rowwise(-1, <const float *>cnp.PyArray_DATA(x), <const float *>NULL,
                         <float *>NULL, po, outer, n, inner)
    return out


# ------------------------------------------------------------------------
# fast paths: a C-contiguous aligned native float32/float64 input, an int
# axis, and out= either absent or directly writable.  They return None when
# the call is not of that kind, and rowwise.py then takes the general path.
# ------------------------------------------------------------------------

cdef inline bint _row_dims(cnp.ndarray xa, object axis, int *ax, Py_ssize_t *outer,
                           Py_ssize_t *n, Py_ssize_t *inner):
    cdef int nd = cnp.PyArray_NDIM(xa), i
    cdef Py_ssize_t a
    if nd == 0 or type(axis) is not int:
        return False
    if not (-nd <= axis < nd):     # compared as Python ints: a huge axis cannot overflow
        return False               # the slow path raises the ValueError
    a = axis
    if a < 0:
        a += nd
    if a < 0 or a >= nd:
        return False
    ax[0] = <int>a
    outer[0] = 1
    inner[0] = 1
    for i in range(<int>a):
        outer[0] *= cnp.PyArray_DIM(xa, i)
    for i in range(<int>a + 1, nd):
        inner[0] *= cnp.PyArray_DIM(xa, i)
    n[0] = cnp.PyArray_DIM(xa, <int>a)
    return True

cdef cnp.ndarray _reduced_empty(cnp.ndarray xa, int ax, bint keepdims, int tn):
    cdef cnp.npy_intp dims[64]   # NPY_MAXDIMS is 64 in NumPy 2 (32 before)
    cdef int nd = cnp.PyArray_NDIM(xa), i, k = 0
    for i in range(nd):
        if i == ax:
            if keepdims:
                dims[k] = 1
                k += 1
        else:
            dims[k] = cnp.PyArray_DIM(xa, i)
            k += 1
    return cnp.PyArray_EMPTY(k, dims, tn, 0)

cdef bint _reduced_out_ok(object out, cnp.ndarray xa, int ax, bint keepdims, int tn):
    """out= of a reduction over axis ax can be written directly: writeable,
    _fast_ok, the reduced shape, apart from xa."""
    cdef cnp.ndarray o
    cdef int nd = cnp.PyArray_NDIM(xa), i, k = 0
    if not _fast_ok(out, tn):
        return False
    o = <cnp.ndarray>out
    if not cnp.PyArray_ISWRITEABLE(o):
        return False
    if cnp.PyArray_NDIM(o) != (nd if keepdims else nd - 1):
        return False
    for i in range(nd):
        if i == ax:
            if keepdims:
                if cnp.PyArray_DIM(o, k) != 1:
                    return False
                k += 1
        else:
            if cnp.PyArray_DIM(o, k) != cnp.PyArray_DIM(xa, i):
                return False
            k += 1
    return _disjoint(xa, o)


def rowwise_fast(int op, x, axis, out):
    """softmax / log_softmax (op) of a C-contiguous float array, or None."""
    cdef int tn = _float_tn(x), ax = 0
    cdef Py_ssize_t outer = 0, n = 0, inner = 0
    cdef cnp.ndarray xa, oa
    if tn < 0:
        return None
    xa = <cnp.ndarray>x
    if not _row_dims(xa, axis, &ax, &outer, &n, &inner):
        return None
    if out is None:
        oa = cnp.PyArray_EMPTY(cnp.PyArray_NDIM(xa), cnp.PyArray_DIMS(xa), tn, 0)
    elif _out_ok(out, xa, tn):
        oa = <cnp.ndarray>out
    else:
        return None
    rowwise_raw(op, xa, xa, oa, outer, n, inner)
    return oa


def logsumexp_fast(x, axis, bint keepdims, out):
    cdef int tn = _float_tn(x), ax = 0
    cdef Py_ssize_t outer = 0, n = 0, inner = 0
    cdef cnp.ndarray xa, oa
    if tn < 0:
        return None
    xa = <cnp.ndarray>x
    if not _row_dims(xa, axis, &ax, &outer, &n, &inner) or n == 0:
        return None
    if out is None:
        oa = _reduced_empty(xa, ax, keepdims, tn)
    elif _reduced_out_ok(out, xa, ax, keepdims, tn):
        oa = <cnp.ndarray>out
    else:
        return None
    rowwise_raw(MLK_LOGSUMEXP, xa, xa, oa, outer, n, inner)
    if out is None and cnp.PyArray_NDIM(oa) == 0:
        return oa[()]
    return oa


def backward_fast(int op, g, y, axis, out):
    cdef int tn = _float_tn(g), ax = 0
    cdef Py_ssize_t outer = 0, n = 0, inner = 0
    cdef cnp.ndarray ga, ya, oa
    if tn < 0 or _float_tn(y) != tn:
        return None
    ga = <cnp.ndarray>g
    ya = <cnp.ndarray>y
    if not _same_shape(ga, ya) or not _row_dims(ga, axis, &ax, &outer, &n, &inner):
        return None
    if out is None:
        oa = cnp.PyArray_EMPTY(cnp.PyArray_NDIM(ga), cnp.PyArray_DIMS(ga), tn, 0)
    elif _out_ok(out, ga, tn) and _no_partial_overlap(ya, <cnp.ndarray>out):
        oa = <cnp.ndarray>out
    else:
        return None
    rowwise_raw(op, ga, ya, oa, outer, n, inner)
    return oa


def argmax_fast(x, axis, bint keepdims, out):
    cdef int tn = _float_tn(x), ax = 0
    cdef Py_ssize_t outer = 0, n = 0, inner = 0
    cdef cnp.ndarray xa, oa
    if tn < 0:
        return None
    xa = <cnp.ndarray>x
    if not _row_dims(xa, axis, &ax, &outer, &n, &inner) or n == 0:
        return None
    if out is None:
        oa = _reduced_empty(xa, ax, keepdims, cnp.NPY_INT64)
    elif _reduced_out_ok(out, xa, ax, keepdims, cnp.NPY_INT64):
        oa = <cnp.ndarray>out
    else:
        return None
    argmax_raw(xa, oa, outer, n, inner)
    if out is None and cnp.PyArray_NDIM(oa) == 0:
        return oa[()]
    return oa
