# Layers (mlkern.layers): dense = GEMM (OpenBLAS through SciPy's cython_blas)
# with a fused bias + activation epilogue per output tile, its backward, and
# the embedding gather / deterministic scatter-add.  Included from
# _kernels.pyx: it shares _max_threads(), the dispatch table (mlk_kt) and
# the fast-path checks (_fast_ok, _same_shape).
#
# Threads.  Every BLAS call runs at ONE OpenBLAS thread (the calling thread
# sets OpenBLAS's thread-local count with openblas_set_num_threads_local(1)
# and restores it afterwards); the parallelism is mlkern's own: the output
# is split into one panel per thread of mlkern's team (_max_threads()), each
# thread calling the GEMM on its panel.  A call therefore never has more
# busy threads than mlkern's count, and no OpenBLAS pool thread is woken (an
# OpenBLAS worker spins for a long while after a threaded call, which would
# overlap the next OpenMP region).  The function pointer is resolved once at
# import by mlkern.layers (ctypes, in SciPy's bundled libscipy_openblas) and
# handed over with set_blas_local(); without it (another BLAS) the GEMMs run
# with the BLAS library's own setting.

from libc.string cimport memcpy, memset
from libc.stdlib cimport calloc
from cpython.pycapsule cimport PyCapsule_GetPointer, PyCapsule_GetName

ctypedef int (*_blas_local_fn)(int) noexcept nogil
ctypedef void (*_sgemm_fn)(char *, char *, int *, int *, int *, float *, float *, int *,
                           float *, int *, float *, float *, int *) noexcept nogil
ctypedef void (*_dgemm_fn)(char *, char *, int *, int *, int *, double *, double *, int *,
                           double *, int *, double *, double *, int *) noexcept nogil
ctypedef void (*_sgemv_fn)(char *, int *, int *, float *, float *, int *, float *, int *,
                           float *, float *, int *) noexcept nogil
ctypedef void (*_dgemv_fn)(char *, int *, int *, double *, double *, int *, double *, int *,
                           double *, double *, int *) noexcept nogil
cdef _blas_local_fn _blas_local = NULL
cdef _sgemv_fn _sgemv = NULL
cdef _dgemv_fn _dgemv = NULL
# SciPy's cython_blas sgemm/dgemm, taken from its capsules when mlkern.layers
# is imported (no cimport: `import mlkern` does not import scipy.linalg)
cdef _sgemm_fn _sgemm = NULL
cdef _dgemm_fn _dgemm = NULL

# bytes of one output tile the epilogue works on while it is in cache, and
# the fewest rows of a tile (each tile packs W again: >= 256 rows keep that
# below a few per cent)
cdef Py_ssize_t _TILE_BYTES = 4 << 20
DEF _MIN_TILE_ROWS = 256
# multiply-adds below which dense runs on the calling thread only
cdef Py_ssize_t _DENSE_PAR_WORK = 1 << 17
# the forward's panels: at most one per _COL_UNIT columns (M < N) or
# _ROW_UNIT rows (M >= N), at most _MAX_PANELS, at most one per thread
cdef Py_ssize_t _COL_UNIT = 64
cdef Py_ssize_t _ROW_UNIT = 32
cdef Py_ssize_t _MAX_PANELS = 8
# tokens (x row bytes) below which the embedding gather is serial
DEF EMB_PAR_BYTES = 1 << 18


def set_blas(object sgemm_capsule, object dgemm_capsule, object sgemv_capsule,
             object dgemv_capsule, intptr_t local_addr):
    """SciPy's cython_blas sgemm/dgemm/sgemv/dgemv (the capsules of its
    __pyx_capi__) and the address of OpenBLAS's
    openblas_set_num_threads_local (0: none)."""
    global _blas_local, _sgemm, _dgemm, _sgemv, _dgemv
    _sgemm = <_sgemm_fn>PyCapsule_GetPointer(sgemm_capsule, PyCapsule_GetName(sgemm_capsule))
    _dgemm = <_dgemm_fn>PyCapsule_GetPointer(dgemm_capsule, PyCapsule_GetName(dgemm_capsule))
    _sgemv = <_sgemv_fn>PyCapsule_GetPointer(sgemv_capsule, PyCapsule_GetName(sgemv_capsule))
    _dgemv = <_dgemv_fn>PyCapsule_GetPointer(dgemv_capsule, PyCapsule_GetName(dgemv_capsule))
    _blas_local = <_blas_local_fn>local_addr


def blas_local_available():
    return _blas_local != NULL


def set_dense_tuning(Py_ssize_t tile_bytes, Py_ssize_t par_work, Py_ssize_t col_unit=0,
                     Py_ssize_t row_unit=0, Py_ssize_t max_panels=0):
    """Tile size of the fused epilogue, the parallel threshold and the panel
    grid (for measurements); 0 (-1 for par_work) keeps a value.  Returns the
    previous values."""
    global _TILE_BYTES, _DENSE_PAR_WORK, _COL_UNIT, _ROW_UNIT, _MAX_PANELS
    old = (_TILE_BYTES, _DENSE_PAR_WORK, _COL_UNIT, _ROW_UNIT, _MAX_PANELS)
    if tile_bytes > 0:
        _TILE_BYTES = tile_bytes
    if par_work >= 0:
        _DENSE_PAR_WORK = par_work
    if col_unit > 0:
        _COL_UNIT = col_unit
    if row_unit > 0:
        _ROW_UNIT = row_unit
    if max_panels > 0:
        _MAX_PANELS = max_panels
    return old


cdef inline int _blas_one() noexcept nogil:
    if _blas_local != NULL:
        return _blas_local(1)
    return 0


cdef inline void _blas_restore(int prev) noexcept nogil:
    if _blas_local != NULL:
        _blas_local(prev)


cdef inline void _gemm(char ta, char tb, int m, int n, int k, real alpha,
                       const real *a, int lda, const real *b, int ldb, real beta,
                       real *c, int ldc) noexcept nogil:
    """Column-major BLAS gemm: c(m,n) = alpha op(a) op(b) + beta c."""
    if real is float:
        _sgemm(&ta, &tb, &m, &n, &k, &alpha, <float *>a, &lda, <float *>b, &ldb, &beta, c, &ldc)
    else:
        _dgemm(&ta, &tb, &m, &n, &k, &alpha, <double *>a, &lda, <double *>b, &ldb, &beta, c, &ldc)


cdef inline void _gemv(char ta, int m, int n, real alpha, const real *a, int lda,
                       const real *x, real beta, real *y) noexcept nogil:
    """Column-major BLAS gemv with unit strides: y = alpha op(a) x + beta y."""
    cdef int one = 1
    if real is float:
        _sgemv(&ta, &m, &n, &alpha, <float *>a, &lda, <float *>x, &one, &beta, y, &one)
    else:
        _dgemv(&ta, &m, &n, &alpha, <double *>a, &lda, <double *>x, &one, &beta, y, &one)


cdef void _dense_tile(const real *x, const real *w, const real *bias, real *y, real *z,
                      Py_ssize_t m0, Py_ssize_t m1, Py_ssize_t n0, Py_ssize_t n1,
                      Py_ssize_t K, Py_ssize_t N, int op, const mlk_params *p) noexcept nogil:
    """y[m0:m1, n0:n1] = act(x[m0:m1] W[n0:n1]^T + b[n0:n1]).  z: where the
    pre-activation goes (== y when it is not kept); op < 0: no activation."""
    cdef Py_ssize_t i, nb = n1 - n0, mb = m1 - m0
    cdef real beta = 0
    cdef int ld = <int>(K if K > 0 else 1)
    if mb <= 0 or nb <= 0:
        return
    if bias != NULL:
        for i in range(m0, m1):
            memcpy(z + i * N + n0, bias + n0, nb * sizeof(real))
        beta = 1
    if K > 0 and mb == 1:
        # one row: y = W x, a matrix-vector product (column-major W^T' x);
        # beta = 1 on zeros: a gemv with beta = 0 may compute 0 * y (NaN
        # from an uninitialised or NaN-filled out=)
        if bias == NULL:
            memset(z + m0 * N + n0, 0, nb * sizeof(real))
            beta = 1
        _gemv(c'T', <int>K, <int>nb, 1, w + n0 * K, ld, x + m0 * K, beta, z + m0 * N + n0)
    elif K > 0:
        # row-major y(M,N) = x(M,K) W(N,K)^T is column-major y^T = W^T' x^T
        _gemm(c'T', c'N', <int>nb, <int>mb, <int>K, 1, w + n0 * K, ld, x + m0 * K, ld,
              beta, z + m0 * N + n0, <int>N)
    elif bias == NULL:
        for i in range(m0, m1):
            memset(z + i * N + n0, 0, nb * sizeof(real))
    if op >= 0:
        if nb == N:
            _call_unary(op, z + m0 * N, y + m0 * N, mb * N, p)
        else:
            for i in range(m0, m1):
                _call_unary(op, z + i * N + n0, y + i * N + n0, nb, p)


cdef void _dense_panel(const real *x, const real *w, const real *bias, real *y, real *z,
                       Py_ssize_t m0, Py_ssize_t m1, Py_ssize_t n0, Py_ssize_t n1,
                       Py_ssize_t K, Py_ssize_t N, int op, const mlk_params *p) noexcept nogil:
    """One thread's panel, cut into row tiles of about _TILE_BYTES."""
    cdef Py_ssize_t nb = n1 - n0, mb, m
    cdef int prev = _blas_one()
    if nb <= 0:
        _blas_restore(prev)
        return
    mb = _TILE_BYTES // (nb * <Py_ssize_t>sizeof(real))
    if mb < _MIN_TILE_ROWS:
        mb = _MIN_TILE_ROWS
    m = m0
    while m < m1:
        _dense_tile(x, w, bias, y, z, m, m + mb if m + mb < m1 else m1, n0, n1, K, N, op, p)
        m += mb
    _blas_restore(prev)


cdef inline Py_ssize_t _npanels(Py_ssize_t n, Py_ssize_t unit) noexcept nogil:
    """The most panels worth making along an axis of n: the largest power of
    two <= min(_MAX_PANELS, n // unit), at least 1 (a cap on the team)."""
    cdef Py_ssize_t q = n // unit, p = 1
    if q > _MAX_PANELS:
        q = _MAX_PANELS
    while p * 2 <= q:
        p *= 2
    return p


cdef inline int _team(Py_ssize_t work, Py_ssize_t panels) noexcept nogil:
    """Threads for the GEMM panels: 1 below the work threshold, and 1 when
    OpenBLAS's thread-local count cannot be set (another BLAS, or an OpenBLAS
    older than 0.3.27): then the BLAS threads by its own setting and mlkern
    adds no team of its own on top of it."""
    cdef int nt = 1
    if work >= _DENSE_PAR_WORK and panels > 1 and _blas_local != NULL:
        nt = _max_threads()
        if nt > panels:
            nt = <int>panels
    return nt


cdef void _dense_run(const real *x, const real *w, const real *bias, real *y, real *z,
                     Py_ssize_t M, Py_ssize_t K, Py_ssize_t N, int op,
                     const mlk_params *p) noexcept nogil:
    """One panel per thread of the team: over N (contiguous rows of W, x
    packed once per panel) when M < N, else over M (W packed once per
    panel).  At one thread: one panel, i.e. the whole GEMM (cut into row
    tiles only when the output exceeds _TILE_BYTES).  Measured: splitting a
    one-thread GEMM into 2 panels costs 5-12 % (see the module notes of
    mlkern.layers), so the grid follows the team size, and the output may
    differ in the last bit between thread counts (the rounding of the
    GEMM's reductions, as SPEC allows)."""
    cdef Py_ssize_t P, step, a0, a1, k
    cdef int nt
    if M < N:
        P = _npanels(N, _COL_UNIT)
    else:
        P = _npanels(M, _ROW_UNIT)
    nt = _team(M * N * (K + 1), P)
    if nt <= 1:
        _dense_panel(x, w, bias, y, z, 0, M, 0, N, K, N, op, p)
        return
    if M < N:
        step = (((N + nt - 1) // nt) + 15) & ~(<Py_ssize_t>15)
    else:
        step = (M + nt - 1) // nt
    for k in prange(nt, num_threads=nt, schedule='static'):
        a0 = k * step
        a1 = a0 + step
        if M < N:
            if a1 > N:
                a1 = N
            if a0 < a1:
                _dense_panel(x, w, bias, y, z, 0, M, a0, a1, K, N, op, p)
        else:
            if a1 > M:
                a1 = M
            if a0 < a1:
                _dense_panel(x, w, bias, y, z, a0, a1, 0, N, K, N, op, p)


def dense_raw(cnp.ndarray x, cnp.ndarray w, object bias, cnp.ndarray y, object z,
              int op, double a=0.0, double b=0.0, double c=0.0):
    """y (M,N) = act(x (M,K) W (N,K)^T + bias); all C-contiguous of one float
    dtype, y apart from the inputs; z: the pre-activation (M,N) or None
    (then the GEMM writes y and the activation works in place).  op < 0:
    no activation.  x and y may have any leading shape (M = the product).
    Callers validate."""
    cdef Py_ssize_t K = cnp.PyArray_DIM(w, 1), N = cnp.PyArray_DIM(w, 0)
    cdef Py_ssize_t M = cnp.PyArray_SIZE(y) // N if N > 0 else 0
    if N == 0:
        return y
    _dense_call(x, w, bias, y, z, M, K, N, op, a, b, c)
    return y


cdef int _dense_call(cnp.ndarray x, cnp.ndarray w, object bias, cnp.ndarray y, object z,
                     Py_ssize_t M, Py_ssize_t K, Py_ssize_t N, int op, double a, double b,
                     double c) except -1:
    cdef mlk_params p
    cdef int tn = cnp.PyArray_TYPE(y)
    if _sgemm == NULL:
        raise RuntimeError("mlkern: the BLAS is not set up (import mlkern.layers)")
    cdef void *bp = NULL
    cdef void *zp = cnp.PyArray_DATA(y)
    if bias is not None:
        bp = cnp.PyArray_DATA(<cnp.ndarray>bias)
    if z is not None:
        zp = cnp.PyArray_DATA(<cnp.ndarray>z)
    if N >= 2147483647 or K >= 2147483647:
        raise ValueError(f"dense: in_features {K} / out_features {N} exceed the 32-bit BLAS limit")
    p.a = a
    p.b = b
    p.c = c
    p.seed = 0
    p.offset = 0
    if tn == cnp.NPY_DOUBLE:
        with nogil:
            _dense_run(<const double *>cnp.PyArray_DATA(x), <const double *>cnp.PyArray_DATA(w),
                       <const double *>bp, <double *>cnp.PyArray_DATA(y), <double *>zp,
                       M, K, N, op, &p)
    else:
        with nogil:
            _dense_run(<const float *>cnp.PyArray_DATA(x), <const float *>cnp.PyArray_DATA(w),
                       <const float *>bp, <float *>cnp.PyArray_DATA(y), <float *>zp,
                       M, K, N, op, &p)
    return 0


def dense_fast(x, w, bias, out, int op, double a, double b, double c, bint keep_z):
    """The fast path of dense: C-contiguous, aligned x (..., K), W (N, K),
    bias (N,) of one float dtype, out None or a direct array apart from
    them.  Returns y, or (y, z) with keep_z (z: the pre-activation), or None
    when the call needs the full validation."""
    cdef cnp.ndarray xa, wa, ya, za
    cdef int tn, nd, i
    cdef cnp.npy_intp dims[32]
    cdef Py_ssize_t M = 1, K, N
    if type(x) is not cnp.ndarray or type(w) is not cnp.ndarray:
        return None
    xa = <cnp.ndarray>x
    wa = <cnp.ndarray>w
    tn = cnp.PyArray_TYPE(xa)
    nd = cnp.PyArray_NDIM(xa)
    if (tn != cnp.NPY_FLOAT and tn != cnp.NPY_DOUBLE) or nd < 1 or nd > 31 \
            or cnp.PyArray_NDIM(wa) != 2 or not _fast_ok(x, tn) or not _fast_ok(w, tn):
        return None
    K = cnp.PyArray_DIM(xa, nd - 1)
    N = cnp.PyArray_DIM(wa, 0)
    if cnp.PyArray_DIM(wa, 1) != K:
        return None
    if bias is not None:
        if not _fast_ok(bias, tn) or cnp.PyArray_NDIM(<cnp.ndarray>bias) != 1 \
                or cnp.PyArray_DIM(<cnp.ndarray>bias, 0) != N:
            return None
    for i in range(nd - 1):
        dims[i] = cnp.PyArray_DIM(xa, i)
        M *= dims[i]
    dims[nd - 1] = N
    if out is None:
        ya = cnp.PyArray_EMPTY(nd, dims, tn, 0)
    else:
        if not _fast_ok(out, tn) or not cnp.PyArray_ISWRITEABLE(<cnp.ndarray>out):
            return None
        ya = <cnp.ndarray>out
        if cnp.PyArray_NDIM(ya) != nd:
            return None
        for i in range(nd):
            if cnp.PyArray_DIM(ya, i) != dims[i]:
                return None
        if cnp.PyArray_SIZE(ya) and not (_disjoint(xa, ya) and _disjoint(wa, ya)
                                         and (bias is None or _disjoint(<cnp.ndarray>bias, ya))):
            return None
    if keep_z:
        za = cnp.PyArray_EMPTY(nd, dims, tn, 0)
        if M and N:
            _dense_call(xa, wa, bias, ya, za, M, K, N, op, a, b, c)
        return ya, za
    if M and N:
        _dense_call(xa, wa, bias, ya, None, M, K, N, op, a, b, c)
    return ya


# ------------------------------------------------------------------------
# dense backward
# ------------------------------------------------------------------------

cdef void _dense_gz_strip(const real *g, const real *s, real *gz, double *acc,
                          Py_ssize_t M, Py_ssize_t N, Py_ssize_t n0, Py_ssize_t n1,
                          int bop, const mlk_params *p) noexcept nogil:
    """Columns n0:n1 of every row: gz = g * act'(s) (bop >= 0) and the
    column sums of gz (acc != NULL), row by row while the row strip is in
    L1.  One thread owns the columns: each sum is taken in row order."""
    cdef Py_ssize_t i, j, nb = n1 - n0
    cdef const real *src
    for i in range(M):
        if bop >= 0:
            _call_binary(bop, g + i * N + n0, s + i * N + n0, gz + i * N + n0, nb, p)
            src = gz + i * N + n0
        else:
            src = g + i * N + n0
        if acc != NULL:
            for j in range(nb):
                acc[n0 + j] += src[j]


cdef void _dense_bwd_gemms(const real *x, const real *w, const real *gg, real *gw, real *gx,
                           Py_ssize_t M, Py_ssize_t K, Py_ssize_t N, Py_ssize_t k,
                           Py_ssize_t Pn, Py_ssize_t Px) noexcept nogil:
    """Panel k of grad_weight (rows of gW: gz[:, n0:n1]^T x, the whole
    reduction over M in one call) and of grad_x (rows when M >= K, else
    columns: gz W[:, k0:k1])."""
    cdef Py_ssize_t step, a0, a1
    cdef int ldk = <int>K, ldn = <int>N
    cdef int prev = _blas_one()
    if k < Pn:
        step = (((N + Pn - 1) // Pn) + 15) & ~(<Py_ssize_t>15)
        a0 = k * step
        a1 = a0 + step
        if a1 > N:
            a1 = N
        if a0 < a1:
            _gemm(c'N', c'T', <int>K, <int>(a1 - a0), <int>M, 1, x, ldk, gg + a0, ldn, 0,
                  gw + a0 * K, ldk)
    if gx != NULL and k < Px:
        if M >= K:
            step = (M + Px - 1) // Px
            a0 = k * step
            a1 = a0 + step
            if a1 > M:
                a1 = M
            if a0 < a1:
                _gemm(c'N', c'N', <int>K, <int>(a1 - a0), <int>N, 1, w, ldk, gg + a0 * N,
                      ldn, 0, gx + a0 * K, ldk)
        else:
            step = (((K + Px - 1) // Px) + 15) & ~(<Py_ssize_t>15)
            a0 = k * step
            a1 = a0 + step
            if a1 > K:
                a1 = K
            if a0 < a1:
                _gemm(c'N', c'N', <int>(a1 - a0), <int>M, <int>N, 1, w + a0, ldk, gg,
                      ldn, 0, gx + a0, ldk)
    _blas_restore(prev)


cdef void _dense_bwd_run(const real *g, const real *x, const real *w, const real *s,
                         real *gz, double *acc, real *gw, real *gx,
                         Py_ssize_t M, Py_ssize_t K, Py_ssize_t N, int bop,
                         const mlk_params *p) noexcept nogil:
    """M, N > 0.  The gz pass over column strips, then the GEMM panels (a
    grid fixed by the shape, as in the forward)."""
    cdef int nt
    cdef Py_ssize_t k, a0, a1, step, Pn, Px, P, Ps
    cdef const real *gg = <const real *>gz if bop >= 0 else g
    if bop >= 0 or acc != NULL:
        Ps = _npanels(N, 64)
        step = (((N + Ps - 1) // Ps) + 15) & ~(<Py_ssize_t>15)
        nt = _threads_for(M * N, 4)     # no BLAS in this pass
        if nt > Ps:
            nt = <int>Ps
        if nt <= 1:
            _dense_gz_strip(g, s, gz, acc, M, N, 0, N, bop, p)
        else:
            for k in prange(Ps, num_threads=nt, schedule='static'):
                a0 = k * step
                a1 = a0 + step
                if a1 > N:
                    a1 = N
                if a0 < a1:
                    _dense_gz_strip(g, s, gz, acc, M, N, a0, a1, bop, p)
    if K == 0:
        return
    # the GEMM grid: one panel per thread (the weight and input gradients
    # may differ in rounding between thread counts; the bias gradient not)
    Pn = _npanels(N, 64)
    Px = _npanels(M, 32) if M >= K else _npanels(K, 64)
    P = Pn if Pn > Px else Px
    nt = _team(M * N * K, P)
    if nt < Pn:
        Pn = nt
    if nt < Px:
        Px = nt
    if gx == NULL:
        Px = 0
    if nt <= 1:
        _dense_bwd_gemms(x, w, gg, gw, gx, M, K, N, 0, Pn, Px)
    else:
        for k in prange(nt, num_threads=nt, schedule='static'):
            _dense_bwd_gemms(x, w, gg, gw, gx, M, K, N, k, Pn, Px)


def dense_bwd_raw(cnp.ndarray g, cnp.ndarray x, cnp.ndarray w, object s, object gz,
                  object gb, cnp.ndarray gw, object gx, int bop, double a=0.0,
                  double b=0.0, double c=0.0):
    """g (M,N), x (M,K), W (N,K) C-contiguous of one float dtype (any leading
    shape, M = the product); s: the saved array (like g) when bop >= 0, with
    gz its (M,N) scratch; gb: the bias gradient (N,) or None; gw (N,K); gx
    like x or None.  M > 0.  Callers validate."""
    cdef mlk_params p
    cdef Py_ssize_t N = cnp.PyArray_DIM(w, 0), K = cnp.PyArray_DIM(w, 1)
    cdef Py_ssize_t M = cnp.PyArray_SIZE(g) // N if N > 0 else 0
    cdef int tn = cnp.PyArray_TYPE(g)
    cdef void *sp = NULL
    cdef void *gzp = NULL
    cdef void *gxp = NULL
    cdef double *acc = NULL
    cdef Py_ssize_t j
    if _sgemm == NULL:
        raise RuntimeError("mlkern: the BLAS is not set up (import mlkern.layers)")
    if N >= 2147483647 or K >= 2147483647 or M >= 2147483647:
        raise ValueError(f"dense_backward: dimensions ({M}, {K}, {N}) exceed the 32-bit BLAS limit")
    if N == 0 or M == 0:
        raise ValueError("internal: dense_bwd_raw needs M, N > 0")
    if bop >= 0:
        sp = cnp.PyArray_DATA(<cnp.ndarray>s)
        gzp = cnp.PyArray_DATA(<cnp.ndarray>gz)
    if gx is not None:
        gxp = cnp.PyArray_DATA(<cnp.ndarray>gx)
    if gb is not None:
        acc = <double *>malloc(N * sizeof(double))
        if acc == NULL:
            raise MemoryError()
        memset(acc, 0, N * sizeof(double))
    p.a = a
    p.b = b
    p.c = c
    p.seed = 0
    p.offset = 0
    if tn == cnp.NPY_DOUBLE:
        with nogil:
            _dense_bwd_run(<const double *>cnp.PyArray_DATA(g), <const double *>cnp.PyArray_DATA(x),
                           <const double *>cnp.PyArray_DATA(w), <const double *>sp, <double *>gzp,
                           acc, <double *>cnp.PyArray_DATA(gw), <double *>gxp, M, K, N, bop, &p)
            if acc != NULL:
                memcpy(cnp.PyArray_DATA(<cnp.ndarray>gb), acc, N * sizeof(double))
    else:
        with nogil:
            _dense_bwd_run(<const float *>cnp.PyArray_DATA(g), <const float *>cnp.PyArray_DATA(x),
                           <const float *>cnp.PyArray_DATA(w), <const float *>sp, <float *>gzp,
                           acc, <float *>cnp.PyArray_DATA(gw), <float *>gxp, M, K, N, bop, &p)
            if acc != NULL:
                for j in range(N):
                    (<float *>cnp.PyArray_DATA(<cnp.ndarray>gb))[j] = <float>acc[j]
    free(acc)
    return gw


# ------------------------------------------------------------------------
# embedding
# ------------------------------------------------------------------------

def emb_check(cnp.ndarray idx, Py_ssize_t V):
    """Position of the first index of the C-contiguous int64 idx outside
    [0, V), or -1."""
    cdef const int64_t *ip = <const int64_t *>cnp.PyArray_DATA(idx)
    cdef Py_ssize_t n = cnp.PyArray_SIZE(idx), t, bad = -1
    cdef uint64_t uv = <uint64_t>V
    with nogil:
        for t in range(n):
            if <uint64_t>ip[t] >= uv:
                bad = t
                break
    return bad


def emb_gather(cnp.ndarray idx, cnp.ndarray w, cnp.ndarray out):
    """out[t] = w[idx[t]] (rows of w.strides[0] bytes): idx C-contiguous int64,
    checked; w and out C-contiguous of one dtype."""
    cdef const int64_t *ip = <const int64_t *>cnp.PyArray_DATA(idx)
    cdef const char *wp = <const char *>cnp.PyArray_DATA(w)
    cdef char *op = <char *>cnp.PyArray_DATA(out)
    cdef Py_ssize_t n = cnp.PyArray_SIZE(idx), t
    cdef Py_ssize_t rb = cnp.PyArray_DIM(w, 1) * cnp.PyArray_ITEMSIZE(w)
    cdef int nt = 1
    if rb == 0 or n == 0:
        return out
    with nogil:
        if n * rb >= EMB_PAR_BYTES:
            nt = _max_threads()
        if nt <= 1:
            for t in range(n):
                memcpy(op + t * rb, wp + ip[t] * rb, rb)
        else:
            for t in prange(n, num_threads=nt, schedule='static'):
                memcpy(op + t * rb, wp + ip[t] * rb, rb)
    return out


cdef void _emb_seg(const real *g, const int64_t *order, const int64_t *start,
                   const int64_t *seg, Py_ssize_t s, Py_ssize_t D, real *out) noexcept nogil:
    """out row seg[s] = the sum of the grad rows of its tokens, in token order."""
    cdef int64_t v = seg[s], q
    cdef real *row = out + v * D
    cdef const real *gr
    cdef Py_ssize_t j
    memcpy(row, g + order[start[v]] * D, D * sizeof(real))
    for q in range(start[v] + 1, start[v + 1]):
        gr = g + order[q] * D
        for j in range(D):
            row[j] = row[j] + gr[j]


cdef int _emb_bwd_run(const real *g, const int64_t *ip, Py_ssize_t n, Py_ssize_t V,
                      Py_ssize_t D, int64_t pad, real *out) noexcept nogil:
    """Counting sort of the token positions by index (stable), then one
    segmented sum per distinct index, the segments shared out among the
    threads: every output row is written by one thread, in token order."""
    cdef int64_t *start = <int64_t *>calloc(V + 1, sizeof(int64_t))
    cdef int64_t *order = <int64_t *>malloc((n if n > 0 else 1) * sizeof(int64_t))
    cdef int64_t *seg = <int64_t *>malloc((n if n > 0 else 1) * sizeof(int64_t))
    cdef int64_t *pos
    cdef Py_ssize_t t, v, nseg = 0, s
    cdef int64_t run
    cdef int nt = 1
    if start == NULL or order == NULL or seg == NULL:
        free(start)
        free(order)
        free(seg)
        return -1
    for t in range(n):
        start[ip[t] + 1] += 1
    for v in range(V):
        if start[v + 1] > 0 and v != pad:
            seg[nseg] = v
            nseg += 1
        start[v + 1] += start[v]
    # pos: the next free slot of each index (only the indices present are set)
    pos = <int64_t *>malloc((V if V > 0 else 1) * sizeof(int64_t))
    if pos == NULL:
        free(start)
        free(order)
        free(seg)
        return -1
    for s in range(nseg):
        pos[seg[s]] = start[seg[s]]
    for t in range(n):
        v = ip[t]
        if v != pad:
            run = pos[v]
            order[run] = t
            pos[v] = run + 1
    free(pos)
    if n * D >= 32768:
        nt = _max_threads()
    if nt <= 1:
        for s in range(nseg):
            _emb_seg(g, order, start, seg, s, D, out)
    else:
        for s in prange(nseg, num_threads=nt, schedule='dynamic', chunksize=8):
            _emb_seg(g, order, start, seg, s, D, out)
    free(start)
    free(order)
    free(seg)
    return 0


def emb_bwd_raw(cnp.ndarray g, cnp.ndarray idx, Py_ssize_t V, int64_t pad, cnp.ndarray out):
    """out (V, D), zero on entry (only the rows of the indices are written):
    out[v] = sum of g[t] over the tokens t with idx[t] == v (v != pad), in
    token order.  g (n, D) C-contiguous float32/float64, idx C-contiguous
    int64 checked in range, pad -1 for none."""
    cdef Py_ssize_t n = cnp.PyArray_SIZE(idx), D = cnp.PyArray_DIM(out, 1)
    cdef int tn = cnp.PyArray_TYPE(out), rc = 0
    cdef const int64_t *ip = <const int64_t *>cnp.PyArray_DATA(idx)
    if D == 0 or n == 0 or V == 0:
        return out
    with nogil:
        if tn == cnp.NPY_DOUBLE:
            rc = _emb_bwd_run(<const double *>cnp.PyArray_DATA(g), ip, n, V, D, pad,
                              <double *>cnp.PyArray_DATA(out))
        else:
            rc = _emb_bwd_run(<const float *>cnp.PyArray_DATA(g), ip, n, V, D, pad,
                              <float *>cnp.PyArray_DATA(out))
    if rc != 0:
        raise MemoryError()
    return out
