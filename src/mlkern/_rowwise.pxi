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
# Contiguous rows of at least _long_row_n elements are cut into chunks of ROW_LCH
# (= MLK_RW_LONG, MLK_RW_LCH of mlk_row.h): the partials of the chunks are
# computed over the team and combined in chunk order, then the outputs are
# written over the team (mlk_rowlong).  The cut depends on n only, so a
# long row gives the same bits at every thread count, and rows split over
# threads or not.
DEF ROW_LCH = 16384
cdef Py_ssize_t _long_row_n = 131072

def set_long_row(Py_ssize_t n):
    """Set the row length from which rows are cut into chunks (tests and
    benchmarks compare the two paths); returns the old one."""
    global _long_row_n
    old = _long_row_n
    _long_row_n = n
    return old
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


cdef inline int _call_long(int op, int phase, const real *a, const real *b, real *y,
                           Py_ssize_t n, double *st) noexcept nogil:
    if real is float:
        return mlk_kt.rowlong_f32(op, phase, a, b, y, n, st)
    else:
        return mlk_kt.rowlong_f64(op, phase, a, b, y, n, st)

cdef void _long_row(int op, const real *a, const real *b, real *y, Py_ssize_t n,
                    double *st, int nt) noexcept nogil:
    """One long row a (b: the saved output of a backward op, else a) into y
    (its row, or its one value for logsumexp) on nt threads; st: 4 (nc + 1)
    doubles, nc = the number of chunks."""
    cdef Py_ssize_t nc = (n + ROW_LCH - 1) // ROW_LCH, k, s0, m
    cdef double *c = st + 4 * nc
    cdef bint lse = (op & ~MLK_RW_STREAM) == MLK_LOGSUMEXP
    if nt > 1:
        for k in prange(nc, num_threads=nt, schedule='static'):
            s0 = k * ROW_LCH
            m = n - s0
            if m > ROW_LCH:
                m = ROW_LCH
            _call_long(op, 0, a + s0, b + s0, y if lse else y + s0, m, st + 4 * k)
    else:
        for k in range(nc):
            s0 = k * ROW_LCH
            m = n - s0
            if m > ROW_LCH:
                m = ROW_LCH
            _call_long(op, 0, a + s0, b + s0, y if lse else y + s0, m, st + 4 * k)
    if _call_long(op, 2, <const real *>NULL, <const real *>NULL, <real *>NULL, nc, st):
        _call_rowwise(op, a, b, y, 1, n, 1, 1)     # a rare row: the whole-row kernel
        return
    if lse:
        _call_long(op, 1, a, b, y, 0, c)
        return
    if nt > 1:
        for k in prange(nc, num_threads=nt, schedule='static'):
            s0 = k * ROW_LCH
            m = n - s0
            if m > ROW_LCH:
                m = ROW_LCH
            _call_long(op, 1, a + s0, b + s0, y + s0, m, st + 4 * k)
    else:
        for k in range(nc):
            s0 = k * ROW_LCH
            m = n - s0
            if m > ROW_LCH:
                m = ROW_LCH
            _call_long(op, 1, a + s0, b + s0, y + s0, m, st + 4 * k)

cdef void _run_long(int op, const real *a, const real *b, real *y, Py_ssize_t outer,
                    Py_ssize_t n, double *st, int nt) noexcept nogil:
    """Contiguous long rows (n >= _long_row_n): rows over the team when there are
    at least as many as threads (each row's chunks on one thread), else each
    row's chunks over the team.  st: nt blocks of 4 (nc + 1) doubles."""
    cdef Py_ssize_t r, nst = 4 * ((n + ROW_LCH - 1) // ROW_LCH + 1), tid
    cdef int lse = (op & ~MLK_RW_STREAM) == MLK_LOGSUMEXP
    if nt > 1 and outer >= nt:
        with parallel(num_threads=nt):
            tid = threadid()
            for r in prange(outer, schedule='static'):
                _long_row(op, a + r * n, b + r * n, (y + r) if lse else (y + r * n),
                          n, st + tid * nst, 1)
        return
    for r in range(outer):
        _long_row(op, a + r * n, b + r * n, (y + r) if lse else (y + r * n), n, st, nt)


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
    if inner == 1 and n >= _long_row_n:
        _rowwise_long(op, a, b, y, outer, n)
        return y
    if _is_f64(a, "rowwise_raw"):
        with nogil:
            _run_rowwise(op, <const double *>cnp.PyArray_DATA(a), <const double *>cnp.PyArray_DATA(b),
                         <double *>cnp.PyArray_DATA(y), NULL, outer, n, inner)
    else:
        with nogil:
            _run_rowwise(op, <const float *>cnp.PyArray_DATA(a), <const float *>cnp.PyArray_DATA(b),
                         <float *>cnp.PyArray_DATA(y), NULL, outer, n, inner)
    return y


cdef _rowwise_long(int op, cnp.ndarray a, cnp.ndarray b, cnp.ndarray y, Py_ssize_t outer,
                   Py_ssize_t n):
    """rowwise_raw's long rows: the team and the partials' scratch, then _run_long."""
    cdef int nt = _threads_for(outer * n, mlk_rowwise_ops[op & ~MLK_RW_STREAM].cost)
    cdef Py_ssize_t nst = 4 * ((n + ROW_LCH - 1) // ROW_LCH + 1)
    cdef double *st = <double *>malloc(<size_t>(nt * nst) * sizeof(double))
    if st == NULL:
        raise MemoryError()
    try:
        if _is_f64(a, "rowwise_raw"):
            with nogil:
                _run_long(op, <const double *>cnp.PyArray_DATA(a),
                          <const double *>cnp.PyArray_DATA(b), <double *>cnp.PyArray_DATA(y),
                          outer, n, st, nt)
        else:
            with nogil:
                _run_long(op, <const float *>cnp.PyArray_DATA(a),
                          <const float *>cnp.PyArray_DATA(b), <float *>cnp.PyArray_DATA(y),
                          outer, n, st, nt)
    finally:
        free(st)


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
