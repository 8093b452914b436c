# Convolutions (mlkern.layers.conv1d / conv2d and their backwards): im2col
# of a tile of output pixels into a per-thread buffer, then one OpenBLAS GEMM
# per tile and group (_gemm of _layers.pxi, at one OpenBLAS thread inside
# mlkern's team).  conv1d is conv2d with H = 1.  Included from _kernels.pyx
# after _layers.pxi.
#
# Layouts.  NCHW: y_n[C_out, P] = W[C_out, K] . col[K, P], col rows
# (c, i, j) of contiguous pixel runs.  NHWC: y[P, C_out] = col[P, K] . Wr^T,
# Wr the weight repacked once per call to (C_out, kh, kw, C_in/groups), so a
# col row is kh*kw contiguous channel copies.  A 1x1 convolution with stride
# 1 and no padding needs no im2col: the input itself is the col matrix.
#
# Work partition (fixed by the shape, never by the thread count, so every
# result is bitwise identical for any number of threads):
# - forward: units of Pt output pixels (NCHW: tiles within one image; NHWC:
#   tiles of the N*P output rows), shared out dynamically;
# - backward: U = min(N, _CONV_UNITS) blocks of consecutive images; each
#   block accumulates its own grad_weight partial (image and tile order) and
#   writes grad_x of its images (col2im into images only it owns: no
#   atomics); the partials are then summed in block order.  grad_bias: one
#   channel (or strip of channels) per unit, float64 sums in row order.
# Scratch (per call): one col tile (and one gcol tile in the backward) per
# thread, Pt sized so a tile is about _CONV_TILE_BYTES (half the 2 MiB L2;
# measured best among 128 KiB - 2 MiB on (32,64,56,56) 3x3) and at most 1.5
# input images (0.75 each in the backward), plus U - 1
# grad_weight partials; allocated as NumPy arrays (visible to tracemalloc).

from cython.parallel cimport parallel, threadid

cdef Py_ssize_t _CONV_TILE_BYTES = 1 << 20
cdef Py_ssize_t _CONV_UNITS = 8
DEF _CONV_MIN_TILE = 16

cdef struct _cv:
    Py_ssize_t N, C, H, W, O, kh, kw, sh, sw, ph, pw, dh, dw, G, Ho, Wo
    Py_ssize_t Cg, Og, K, P, Pt
    int nhwc
    int direct


def set_conv_tuning(Py_ssize_t tile_bytes=0, Py_ssize_t units=0):
    """The col tile size and the number of grad_weight blocks of the
    backward (for measurements); 0 keeps a value.  Returns the old ones."""
    global _CONV_TILE_BYTES, _CONV_UNITS
    old = (_CONV_TILE_BYTES, _CONV_UNITS)
    if tile_bytes > 0:
        _CONV_TILE_BYTES = tile_bytes
    if units > 0:
        _CONV_UNITS = units
    return old


cdef inline void _valid_range(Py_ssize_t off, Py_ssize_t s, Py_ssize_t n, Py_ssize_t a0,
                              Py_ssize_t a1, Py_ssize_t *lo, Py_ssize_t *hi) noexcept nogil:
    """[lo, hi) = the a in [a0, a1) with 0 <= a*s + off < n (lo <= hi)."""
    cdef Py_ssize_t l, h
    l = 0 if off >= 0 else (-off + s - 1) // s
    h = 0 if n - 1 - off < 0 else (n - 1 - off) // s + 1
    if l < a0:
        l = a0
    if h > a1:
        h = a1
    if h < l:
        h = l
    lo[0] = l
    hi[0] = h


cdef void _im2col_nchw(const real *xn, real *col, const _cv *q, Py_ssize_t g,
                       Py_ssize_t p0, Py_ssize_t p1, bint back) noexcept nogil:
    """back == 0: col (K, p1-p0) = the patches of pixels p0:p1 of image xn,
    group g (zeros in the padding).  back == 1: the adjoint, col2im: xn +=
    col scattered back (xn is then the image's gradient)."""
    cdef Py_ssize_t pt = p1 - p0, c, i, j, p, oh, ow0, ow1, ih, off, lo, hi, m, a
    cdef const real *src
    cdef real *xc
    cdef real *dst
    cdef Py_ssize_t HW = q.H * q.W, sw = q.sw
    for c in range(q.Cg):
        xc = <real *>xn + (g * q.Cg + c) * HW
        for i in range(q.kh):
            for j in range(q.kw):
                dst = col + ((c * q.kh + i) * q.kw + j) * pt
                off = j * q.dw - q.pw
                p = p0
                while p < p1:
                    oh = p // q.Wo
                    ow0 = p - oh * q.Wo
                    ow1 = q.Wo
                    if ow1 - ow0 > p1 - p:
                        ow1 = ow0 + (p1 - p)
                    m = ow1 - ow0
                    ih = oh * q.sh - q.ph + i * q.dh
                    if ih < 0 or ih >= q.H:
                        if not back:
                            memset(dst, 0, m * sizeof(real))
                    else:
                        _valid_range(off, sw, q.W, ow0, ow1, &lo, &hi)
                        src = xc + ih * q.W + off
                        if back:
                            if sw == 1:
                                for a in range(lo, hi):
                                    (<real *>src)[a] += dst[a - ow0]
                            else:
                                for a in range(lo, hi):
                                    (<real *>src)[a * sw] += dst[a - ow0]
                        else:
                            if lo > ow0:
                                memset(dst, 0, (lo - ow0) * sizeof(real))
                            if sw == 1:
                                if hi > lo:
                                    memcpy(dst + (lo - ow0), src + lo, (hi - lo) * sizeof(real))
                            else:
                                for a in range(lo, hi):
                                    dst[a - ow0] = src[a * sw]
                            if ow1 > hi:
                                memset(dst + (hi - ow0), 0, (ow1 - hi) * sizeof(real))
                    dst += m
                    p += m


cdef void _im2col_nhwc(const real *x, real *col, const _cv *q, Py_ssize_t g,
                       Py_ssize_t p0, Py_ssize_t p1, bint back) noexcept nogil:
    """Rows p0:p1 of the N*P output pixels (any images): col (p1-p0, K), a
    row = (i, j, c) with the channels c of group g contiguous.  back == 1:
    the adjoint (x += col scattered back)."""
    cdef Py_ssize_t p, n, r, oh, ow, i, j, ih, iw, lo, hi, c, Cg = q.Cg, kw = q.kw
    cdef Py_ssize_t seg = kw * Cg
    cdef real *dst
    cdef real *src
    cdef bint run = q.G == 1 and q.dw == 1
    for p in range(p0, p1):
        n = p // q.P
        r = p - n * q.P
        oh = r // q.Wo
        ow = r - oh * q.Wo
        dst = col + (p - p0) * q.K
        for i in range(q.kh):
            ih = oh * q.sh - q.ph + i * q.dh
            if ih < 0 or ih >= q.H:
                if not back:
                    memset(dst, 0, seg * sizeof(real))
                dst += seg
                continue
            src = <real *>x + ((n * q.H + ih) * q.W) * q.C + g * Cg
            iw = ow * q.sw - q.pw
            if run and iw >= 0 and iw + kw <= q.W:
                # one contiguous run of kw pixels x all channels
                src += iw * q.C
                if back:
                    for c in range(seg):
                        src[c] += dst[c]
                else:
                    memcpy(dst, src, seg * sizeof(real))
                dst += seg
                continue
            _valid_range(iw, q.dw, q.W, 0, kw, &lo, &hi)
            if not back and lo > 0:
                memset(dst, 0, lo * Cg * sizeof(real))
            for j in range(lo, hi):
                if back:
                    for c in range(Cg):
                        src[(iw + j * q.dw) * q.C + c] += dst[j * Cg + c]
                else:
                    memcpy(dst + j * Cg, src + (iw + j * q.dw) * q.C, Cg * sizeof(real))
            if not back and hi < kw:
                memset(dst + hi * Cg, 0, (kw - hi) * Cg * sizeof(real))
            dst += seg


cdef inline Py_ssize_t _conv_tile(Py_ssize_t K, Py_ssize_t P, Py_ssize_t isz,
                                  Py_ssize_t nbytes) noexcept nogil:
    """Output pixels per col tile: about nbytes of col, a multiple of 16 (at
    least 16), at most P."""
    cdef Py_ssize_t t = nbytes // ((K if K > 0 else 1) * isz)
    if t < _CONV_MIN_TILE:
        t = _CONV_MIN_TILE
    t = t & ~(<Py_ssize_t>15)
    if t > P:
        t = P
    return t if t > 0 else 1


# ------------------------------------------------------------------------
# forward
# ------------------------------------------------------------------------

cdef void _conv_fwd_unit(const real *x, const real *w, const real *bias, real *y, real *col,
                         const _cv *q, Py_ssize_t u) noexcept nogil:
    cdef Py_ssize_t n, t, nt_img, p0, p1, pt, g, o, p
    cdef const real *a
    cdef const real *xn
    cdef real *yn
    cdef int lda
    cdef real beta = 0
    if not q.nhwc:
        nt_img = (q.P + q.Pt - 1) // q.Pt
        n = u // nt_img
        t = u - n * nt_img
        p0 = t * q.Pt
        p1 = p0 + q.Pt if p0 + q.Pt < q.P else q.P
        pt = p1 - p0
        xn = x + n * q.C * q.H * q.W
        yn = y + n * q.O * q.P
        if bias != NULL:
            for o in range(q.O):
                for p in range(p0, p1):
                    yn[o * q.P + p] = bias[o]
            beta = 1
        for g in range(q.G):
            if q.direct:
                a = xn + g * q.Cg * q.P + p0
                lda = <int>q.P
            else:
                _im2col_nchw(xn, col, q, g, p0, p1, 0)
                a = col
                lda = <int>pt
            _gemm(c'N', c'N', <int>pt, <int>q.Og, <int>q.K, 1, a, lda, w + g * q.Og * q.K,
                  <int>q.K, beta, yn + g * q.Og * q.P + p0, <int>q.P)
    else:
        p0 = u * q.Pt
        p1 = p0 + q.Pt if p0 + q.Pt < q.N * q.P else q.N * q.P
        pt = p1 - p0
        if bias != NULL:
            for p in range(p0, p1):
                memcpy(y + p * q.O, bias, q.O * sizeof(real))
            beta = 1
        for g in range(q.G):
            if q.direct:
                a = x + p0 * q.C + g * q.Cg
                lda = <int>q.C
            else:
                _im2col_nhwc(x, col, q, g, p0, p1, 0)
                a = col
                lda = <int>q.K
            _gemm(c'T', c'N', <int>q.Og, <int>pt, <int>q.K, 1, w + g * q.Og * q.K, <int>q.K,
                  a, lda, beta, y + p0 * q.O + g * q.Og, <int>q.O)


cdef void _conv_fwd_run(const real *x, const real *w, const real *bias, real *y, real *scratch,
                        const _cv *q, Py_ssize_t units, int nt) noexcept nogil:
    cdef Py_ssize_t u, tid
    cdef int prev
    cdef real *col
    if nt <= 1:
        prev = _blas_one()
        for u in range(units):
            _conv_fwd_unit(x, w, bias, y, scratch, q, u)
        _blas_restore(prev)
        return
    with parallel(num_threads=nt):
        tid = threadid()
        col = scratch + tid * q.K * q.Pt
        prev = _blas_one()
        for u in prange(units, schedule='dynamic'):
            _conv_fwd_unit(x, w, bias, y, col, q, u)
        _blas_restore(prev)


cdef int _cv_fill(_cv *q, tuple dims, Py_ssize_t isz) except -1:
    (q.N, q.C, q.H, q.W, q.O, q.kh, q.kw, q.sh, q.sw, q.ph, q.pw, q.dh, q.dw, q.G, q.Ho, q.Wo,
     q.nhwc) = dims
    q.Cg = q.C // q.G
    q.Og = q.O // q.G
    q.K = q.Cg * q.kh * q.kw
    q.P = q.Ho * q.Wo
    q.direct = (q.kh == 1 and q.kw == 1 and q.sh == 1 and q.sw == 1 and q.ph == 0 and q.pw == 0
                and q.Ho == q.H and q.Wo == q.W)
    if q.K >= 2147483647 or q.O >= 2147483647 or q.P >= 2147483647 or q.C >= 2147483647:
        raise ValueError(f"conv: dimensions exceed the 32-bit BLAS limit")
    return 0


def conv_fwd_raw(cnp.ndarray x, cnp.ndarray w, object bias, cnp.ndarray y, tuple dims):
    """y = conv(x, w) + bias.  x (N,C,H,W) or (N,H,W,C) (dims[-1] = nhwc), w
    (O, K) in the col's order ((c,i,j) NCHW, (i,j,c) NHWC), bias (O,) or
    None, y the output; all C-contiguous of one float dtype, y apart from
    the inputs; N, O, K > 0.  dims: (N, C, H, W, O, kh, kw, sh, sw, ph, pw,
    dh, dw, G, Ho, Wo, nhwc).  Callers validate."""
    cdef _cv q
    cdef Py_ssize_t isz = cnp.PyArray_ITEMSIZE(y), units, rows, tb
    cdef int nt, tn = cnp.PyArray_TYPE(y)
    cdef cnp.ndarray scratch
    cdef void *bp = NULL
    if _sgemm == NULL:
        raise RuntimeError("mlkern: the BLAS is not set up (import mlkern.layers)")
    _cv_fill(&q, dims, isz)
    rows = q.N * q.P if q.nhwc else q.P
    # a tile of about _CONV_TILE_BYTES, at most 1.5 input images (the extra
    # memory per thread stays below 2 images, unless 16 pixels exceed that)
    tb = 3 * q.C * q.H * q.W * isz // 2
    q.Pt = _conv_tile(q.K, rows, isz, _CONV_TILE_BYTES if _CONV_TILE_BYTES < tb else tb)
    if q.nhwc:
        units = (rows + q.Pt - 1) // q.Pt
    else:
        units = q.N * ((q.P + q.Pt - 1) // q.Pt)
    nt = _team(q.N * q.P * q.O * q.K, units)
    scratch = np.empty(0 if q.direct else nt * q.K * q.Pt, dtype=y.dtype)
    if bias is not None:
        bp = cnp.PyArray_DATA(<cnp.ndarray>bias)
    if tn == cnp.NPY_DOUBLE:
        with nogil:
            _conv_fwd_run(<const double *>cnp.PyArray_DATA(x), <const double *>cnp.PyArray_DATA(w),
                          <const double *>bp, <double *>cnp.PyArray_DATA(y),
                          <double *>cnp.PyArray_DATA(scratch), &q, units, nt)
    else:
        with nogil:
            _conv_fwd_run(<const float *>cnp.PyArray_DATA(x), <const float *>cnp.PyArray_DATA(w),
                          <const float *>bp, <float *>cnp.PyArray_DATA(y),
                          <float *>cnp.PyArray_DATA(scratch), &q, units, nt)
    return y


# ------------------------------------------------------------------------
# backward
# ------------------------------------------------------------------------

cdef void _conv_bwd_block(const real *x, const real *w, const real *gy, real *gwp, real *gx,
                          real *col, real *gcol, const _cv *q, Py_ssize_t n0,
                          Py_ssize_t n1) noexcept nogil:
    """Images n0:n1: gwp (O, K) = their grad_weight (gwp != NULL), and their
    grad_x (gx != NULL), tile by tile (each col tile built once for both)."""
    cdef Py_ssize_t n, p0, p1, pt, g, r0, HWC = q.C * q.H * q.W
    cdef const real *a
    cdef const real *xn
    cdef const real *gyn
    cdef real *gxn
    cdef int lda
    cdef real beta
    cdef bint first = True
    for n in range(n0, n1):
        xn = x + n * HWC
        gyn = gy + n * q.O * q.P
        gxn = NULL
        if gx != NULL:
            gxn = gx + n * HWC
            if not q.direct:
                memset(gxn, 0, HWC * sizeof(real))
        p0 = 0
        while p0 < q.P:
            p1 = p0 + q.Pt if p0 + q.Pt < q.P else q.P
            pt = p1 - p0
            beta = 0 if first else 1
            first = False
            for g in range(q.G):
                if not q.nhwc:
                    if q.direct:
                        a = xn + g * q.Cg * q.P + p0
                        lda = <int>q.P
                    elif gwp != NULL:
                        _im2col_nchw(xn, col, q, g, p0, p1, 0)
                        a = col
                        lda = <int>pt
                    if gwp != NULL:
                        # gW_g^T (K, Og) = col (K, pt) . gy_g (Og, pt)^T
                        _gemm(c'T', c'N', <int>q.K, <int>q.Og, <int>pt, 1, a, lda,
                              gyn + g * q.Og * q.P + p0, <int>q.P, beta, gwp + g * q.Og * q.K,
                              <int>q.K)
                    if gxn != NULL:
                        # gcol (K, pt) = W_g^T gy_g, then col2im
                        if q.direct:
                            _gemm(c'N', c'T', <int>pt, <int>q.K, <int>q.Og, 1,
                                  gyn + g * q.Og * q.P + p0, <int>q.P, w + g * q.Og * q.K,
                                  <int>q.K, 0, gxn + g * q.Cg * q.P + p0, <int>q.P)
                        else:
                            _gemm(c'N', c'T', <int>pt, <int>q.K, <int>q.Og, 1,
                                  gyn + g * q.Og * q.P + p0, <int>q.P, w + g * q.Og * q.K,
                                  <int>q.K, 0, gcol, <int>pt)
                            _im2col_nchw(gxn, gcol, q, g, p0, p1, 1)
                else:
                    r0 = n * q.P + p0
                    if q.direct:
                        a = x + r0 * q.C + g * q.Cg
                        lda = <int>q.C
                    elif gwp != NULL:
                        _im2col_nhwc(x, col, q, g, r0, r0 + pt, 0)
                        a = col
                        lda = <int>q.K
                    if gwp != NULL:
                        # gW_g^T (K, Og) = col^T (K, pt) . gy_g (pt, Og)
                        _gemm(c'N', c'T', <int>q.K, <int>q.Og, <int>pt, 1, a, lda,
                              gy + r0 * q.O + g * q.Og, <int>q.O, beta, gwp + g * q.Og * q.K,
                              <int>q.K)
                    if gx != NULL:
                        if q.direct:
                            _gemm(c'N', c'N', <int>q.K, <int>pt, <int>q.Og, 1, w + g * q.Og * q.K,
                                  <int>q.K, gy + r0 * q.O + g * q.Og, <int>q.O, 0,
                                  gx + r0 * q.C + g * q.Cg, <int>q.C)
                        else:
                            _gemm(c'N', c'N', <int>q.K, <int>pt, <int>q.Og, 1, w + g * q.Og * q.K,
                                  <int>q.K, gy + r0 * q.O + g * q.Og, <int>q.O, 0, gcol, <int>q.K)
                            _im2col_nhwc(gx, gcol, q, g, r0, r0 + pt, 1)
            p0 = p1


cdef void _conv_bwd_run(const real *x, const real *w, const real *gy, real *gw, real *gx,
                        real *parts, real *scratch, const _cv *q, Py_ssize_t U,
                        int nt) noexcept nogil:
    """U blocks of images: block b's grad_weight goes to gw (b = 0) or
    parts[b-1]; then gw += parts in block order."""
    cdef Py_ssize_t b, tid, n0, n1, i, WK = q.O * q.K
    cdef int prev
    cdef real *gwp
    cdef real *col
    cdef real *gcol
    cdef Py_ssize_t per = (q.N + U - 1) // U
    cdef Py_ssize_t tsz = q.K * q.Pt
    if nt <= 1:
        prev = _blas_one()
        for b in range(U):
            n0 = b * per
            n1 = n0 + per if n0 + per < q.N else q.N
            gwp = NULL if gw == NULL else (gw if b == 0 else parts + (b - 1) * WK)
            if n0 < n1:
                _conv_bwd_block(x, w, gy, gwp, gx, scratch, scratch + tsz, q, n0, n1)
        _blas_restore(prev)
    else:
        with parallel(num_threads=nt):
            tid = threadid()
            col = scratch + 2 * tid * tsz
            gcol = col + tsz
            prev = _blas_one()
            for b in prange(U, schedule='dynamic'):
                n0 = b * per
                n1 = n0 + per if n0 + per < q.N else q.N
                gwp = NULL if gw == NULL else (gw if b == 0 else parts + (b - 1) * WK)
                if n0 < n1:
                    _conv_bwd_block(x, w, gy, gwp, gx, col, gcol, q, n0, n1)
            _blas_restore(prev)
    if gw == NULL or U <= 1:
        return
    # the partials in block order (each element: gw + p1 + p2 + ...)
    for b in range(1, U):
        if (b * per) >= q.N:
            break
        gwp = parts + (b - 1) * WK
        for i in range(WK):
            gw[i] = gw[i] + gwp[i]


def conv_bwd_raw(cnp.ndarray gy, cnp.ndarray x, cnp.ndarray w, object gw, object gx,
                 tuple dims):
    """grad_weight gw (O, K) (None: skipped) and grad_x gx like x (None:
    skipped) of conv_fwd_raw's convolution; gy like its y.  All C-contiguous
    of one float dtype; N, O, K > 0.  Callers validate."""
    cdef _cv q
    cdef Py_ssize_t isz = cnp.PyArray_ITEMSIZE(x), U, per, tb, tb2
    cdef int nt, tn = cnp.PyArray_TYPE(x)
    cdef cnp.ndarray scratch, parts
    cdef void *gwp = NULL
    cdef void *gxp = NULL
    if _sgemm == NULL:
        raise RuntimeError("mlkern: the BLAS is not set up (import mlkern.layers)")
    _cv_fill(&q, dims, isz)
    # col and gcol: two tiles per thread, each half the forward's
    tb = 3 * q.C * q.H * q.W * isz // 4
    tb2 = _CONV_TILE_BYTES // 2
    q.Pt = _conv_tile(q.K, q.P, isz, tb2 if tb2 < tb else tb)
    U = q.N if q.N < _CONV_UNITS else _CONV_UNITS
    per = (q.N + U - 1) // U
    U = (q.N + per - 1) // per          # no empty block
    nt = _team(q.N * q.P * q.O * q.K * (2 if gx is not None and gw is not None else 1), U)
    scratch = np.empty(nt * 2 * q.K * q.Pt, dtype=x.dtype)
    parts = np.empty((U - 1) * q.O * q.K if gw is not None else 0, dtype=x.dtype)
    if gw is not None:
        gwp = cnp.PyArray_DATA(<cnp.ndarray>gw)
    if gx is not None:
        gxp = cnp.PyArray_DATA(<cnp.ndarray>gx)
    if tn == cnp.NPY_DOUBLE:
        with nogil:
            _conv_bwd_run(<const double *>cnp.PyArray_DATA(x), <const double *>cnp.PyArray_DATA(w),
                          <const double *>cnp.PyArray_DATA(gy), <double *>gwp, <double *>gxp,
                          <double *>cnp.PyArray_DATA(parts), <double *>cnp.PyArray_DATA(scratch),
                          &q, U, nt)
    else:
        with nogil:
            _conv_bwd_run(<const float *>cnp.PyArray_DATA(x), <const float *>cnp.PyArray_DATA(w),
                          <const float *>cnp.PyArray_DATA(gy), <float *>gwp, <float *>gxp,
                          <float *>cnp.PyArray_DATA(parts), <float *>cnp.PyArray_DATA(scratch),
                          &q, U, nt)
    return gw


cdef void _bias_grad_strip(const real *gy, double *acc, Py_ssize_t N, Py_ssize_t O,
                           Py_ssize_t P, bint nhwc, Py_ssize_t o0, Py_ssize_t o1) noexcept nogil:
    """acc[o0:o1] = the sums of gy over every axis but the channel one, in
    float64, in memory order (one thread per strip)."""
    cdef Py_ssize_t n, o, p, r
    cdef double s
    cdef const real *src
    if nhwc:
        for r in range(N * P):
            src = gy + r * O
            for o in range(o0, o1):
                acc[o] += src[o]
    else:
        for o in range(o0, o1):
            s = 0
            for n in range(N):
                src = gy + (n * O + o) * P
                for p in range(P):
                    s += src[p]
            acc[o] = s


def conv_bias_grad(cnp.ndarray gy, cnp.ndarray gb, Py_ssize_t N, Py_ssize_t O, Py_ssize_t P,
                   bint nhwc):
    """gb (O,) = gy summed over the batch and the pixels (float64 sums, a
    strip of channels per unit: independent of the thread count).  gy
    C-contiguous (N, O, P) or (N, P, O), gb of its dtype."""
    cdef Py_ssize_t S = 16 if nhwc else 1, units = (O + S - 1) // S, k, o0, o1, j
    cdef double *acc = <double *>calloc(O if O > 0 else 1, sizeof(double))
    cdef int nt, tn = cnp.PyArray_TYPE(gy)
    if acc == NULL:
        raise MemoryError()
    nt = _row_threads(units, N * P * O, 1)
    with nogil:
        if tn == cnp.NPY_DOUBLE:
            if nt <= 1:
                _bias_grad_strip(<const double *>cnp.PyArray_DATA(gy), acc, N, O, P, nhwc, 0, O)
            else:
                for k in prange(units, num_threads=nt, schedule='static'):
                    o0 = k * S
                    o1 = o0 + S if o0 + S < O else O
                    _bias_grad_strip(<const double *>cnp.PyArray_DATA(gy), acc, N, O, P, nhwc, o0, o1)
            for j in range(O):
                (<double *>cnp.PyArray_DATA(gb))[j] = acc[j]
        else:
            if nt <= 1:
                _bias_grad_strip(<const float *>cnp.PyArray_DATA(gy), acc, N, O, P, nhwc, 0, O)
            else:
                for k in prange(units, num_threads=nt, schedule='static'):
                    o0 = k * S
                    o1 = o0 + S if o0 + S < O else O
                    _bias_grad_strip(<const float *>cnp.PyArray_DATA(gy), acc, N, O, P, nhwc, o0, o1)
            for j in range(O):
                (<float *>cnp.PyArray_DATA(gb))[j] = <float>acc[j]
    free(acc)
    return gb
