# Locally connected layers (mlkern.layers): unshared weights, "valid"
# padding, 1-D (H = 1) and 2-D, NCHW and NHWC.  Included from _kernels.pyx
# after _layers.pxi (it uses _gemm, _blas_one/_blas_restore, _team).
#
# Forward: per output position p = (oh, ow) one GEMM
#   Y_p (N, C_out) = P_p (N, C_in kH kW) W_p^T + b_p,
# P_p the input patches of p gathered into a per-thread buffer (column order
# (c, i, j): the weight's), Y_p written to the output through a buffer.
# Work units are the positions; every unit's GEMM has the same shape for any
# thread count, so the result is bitwise identical for 1 and 2 threads.
# Backward: (1) per position, grad_W_p = G_p^T P_p (one GEMM whose inner
# dimension is the batch) and grad_b_p = the column sums of G_p (float64, in
# image order); (2) grad_x by image blocks of a size fixed by N alone: for
# each block and each position gP = G_p W_p (a GEMM), added into the block's
# images of grad_x in position order.  A block owns its images (zeroed
# first): race-free where windows overlap (stride < kernel), and bitwise
# identical for any thread count.

ctypedef struct _lc_geom:
    Py_ssize_t N, C, H, W, Co, OH, OW, kh, kw, sh, sw
    Py_ssize_t xN, xC, xH, xW      # element strides of x (and grad_x)
    Py_ssize_t yN, yC, yH, yW      # element strides of y (and grad_output)


cdef inline void _lc_gather(const real *x, real *P, Py_ssize_t n0, Py_ssize_t n1, Py_ssize_t oh,
                            Py_ssize_t ow, const _lc_geom *g) noexcept nogil:
    """P[n - n0, (c kh + i) kw + j] = x[n, c, oh sh + i, ow sw + j]."""
    cdef Py_ssize_t n, c, i, j, q, CK = g.C * g.kh * g.kw
    cdef const real *xb
    cdef real *pr
    for n in range(n0, n1):
        pr = P + (n - n0) * CK
        q = 0
        for c in range(g.C):
            for i in range(g.kh):
                xb = x + n * g.xN + c * g.xC + (oh * g.sh + i) * g.xH + ow * g.sw * g.xW
                if g.xW == 1:
                    for j in range(g.kw):
                        pr[q + j] = xb[j]
                else:
                    for j in range(g.kw):
                        pr[q + j] = xb[j * g.xW]
                q += g.kw


cdef inline void _lc_scatter(real *gx, const real *gP, Py_ssize_t n0, Py_ssize_t n1, Py_ssize_t oh,
                             Py_ssize_t ow, const _lc_geom *g) noexcept nogil:
    """grad_x[n, c, oh sh + i, ow sw + j] += gP[n - n0, (c kh + i) kw + j]."""
    cdef Py_ssize_t n, c, i, j, q, CK = g.C * g.kh * g.kw
    cdef real *xb
    cdef const real *pr
    for n in range(n0, n1):
        pr = gP + (n - n0) * CK
        q = 0
        for c in range(g.C):
            for i in range(g.kh):
                xb = gx + n * g.xN + c * g.xC + (oh * g.sh + i) * g.xH + ow * g.sw * g.xW
                for j in range(g.kw):
                    xb[j * g.xW] += pr[q + j]
                q += g.kw


cdef void _lc_fwd_units(const real *x, const real *w, const real *b, real *y, real *P, real *Y,
                        Py_ssize_t u0, Py_ssize_t u1, const _lc_geom *g) noexcept nogil:
    cdef Py_ssize_t p, n, o, oh, ow, CK = g.C * g.kh * g.kw, Co = g.Co
    cdef real beta
    cdef real *yb
    cdef int prev = _blas_one()
    for p in range(u0, u1):
        oh = p // g.OW
        ow = p % g.OW
        beta = 0
        if b != NULL:
            for n in range(g.N):
                memcpy(Y + n * Co, b + p * Co, Co * sizeof(real))
            beta = 1
        if CK > 0:
            _lc_gather(x, P, 0, g.N, oh, ow, g)
            _gemm(c'T', c'N', <int>Co, <int>g.N, <int>CK, 1, w + p * Co * CK, <int>CK, P, <int>CK,
                  beta, Y, <int>Co)
        elif b == NULL:
            memset(Y, 0, g.N * Co * sizeof(real))
        for n in range(g.N):
            yb = y + n * g.yN + oh * g.yH + ow * g.yW
            if g.yC == 1:
                memcpy(yb, Y + n * Co, Co * sizeof(real))
            else:
                for o in range(Co):
                    yb[o * g.yC] = Y[n * Co + o]
    _blas_restore(prev)


cdef void _lc_gout(const real *go, real *G, Py_ssize_t n0, Py_ssize_t n1, Py_ssize_t oh,
                   Py_ssize_t ow, const _lc_geom *g) noexcept nogil:
    """G[n - n0, o] = grad_output[n, o, oh, ow]."""
    cdef Py_ssize_t n, o, Co = g.Co
    cdef const real *gb
    for n in range(n0, n1):
        gb = go + n * g.yN + oh * g.yH + ow * g.yW
        if g.yC == 1:
            memcpy(G + (n - n0) * Co, gb, Co * sizeof(real))
        else:
            for o in range(Co):
                G[(n - n0) * Co + o] = gb[o * g.yC]


cdef void _lc_bwd_w_units(const real *go, const real *x, real *gw, real *gb, real *P, real *G,
                          Py_ssize_t u0, Py_ssize_t u1, const _lc_geom *g) noexcept nogil:
    """Positions u0..u1: grad_W_p = G_p^T P_p, grad_b_p = the sums of G_p over the images."""
    cdef Py_ssize_t p, n, o, oh, ow, CK = g.C * g.kh * g.kw, Co = g.Co
    cdef double acc
    cdef int prev = _blas_one()
    for p in range(u0, u1):
        oh = p // g.OW
        ow = p % g.OW
        _lc_gout(go, G, 0, g.N, oh, ow, g)
        if gb != NULL:
            for o in range(Co):
                acc = 0
                for n in range(g.N):
                    acc += G[n * Co + o]
                gb[p * Co + o] = <real>acc
        if CK > 0:
            _lc_gather(x, P, 0, g.N, oh, ow, g)
            _gemm(c'N', c'T', <int>CK, <int>Co, <int>g.N, 1, P, <int>CK, G, <int>Co, 0,
                  gw + p * Co * CK, <int>CK)
    _blas_restore(prev)


cdef void _lc_bwd_x_units(const real *go, const real *w, real *gx, real *G, real *gP,
                          Py_ssize_t u0, Py_ssize_t u1, Py_ssize_t NB,
                          const _lc_geom *g) noexcept nogil:
    """Image blocks u0..u1 of NB images: zero their grad_x, then for every
    position in order gP = G_p W_p added into it."""
    cdef Py_ssize_t u, p, n0, n1, CK = g.C * g.kh * g.kw, Co = g.Co
    cdef int prev = _blas_one()
    for u in range(u0, u1):
        n0 = u * NB
        n1 = n0 + NB
        if n1 > g.N:
            n1 = g.N
        memset(gx + n0 * g.xN, 0, (n1 - n0) * g.xN * sizeof(real))
        if CK == 0 or Co == 0:
            continue
        for p in range(g.OH * g.OW):
            _lc_gout(go, G, n0, n1, p // g.OW, p % g.OW, g)
            _gemm(c'N', c'N', <int>CK, <int>(n1 - n0), <int>Co, 1, w + p * Co * CK, <int>CK, G,
                  <int>Co, 0, gP, <int>CK)
            _lc_scatter(gx, gP, n0, n1, p // g.OW, p % g.OW, g)
    _blas_restore(prev)


cdef int _lc_set_geom(_lc_geom *g, cnp.ndarray x, Py_ssize_t Co, tuple geom, bint last) except -1:
    """geom = (OH, OW, kh, kw, sh, sw); x 4-D C-contiguous in its layout."""
    g.N = cnp.PyArray_DIM(x, 0)
    if last:
        g.H, g.W, g.C = cnp.PyArray_DIM(x, 1), cnp.PyArray_DIM(x, 2), cnp.PyArray_DIM(x, 3)
    else:
        g.C, g.H, g.W = cnp.PyArray_DIM(x, 1), cnp.PyArray_DIM(x, 2), cnp.PyArray_DIM(x, 3)
    g.Co = Co
    (g.OH, g.OW, g.kh, g.kw, g.sh, g.sw) = geom
    if last:
        g.xN, g.xC, g.xH, g.xW = g.H * g.W * g.C, 1, g.W * g.C, g.C
        g.yN, g.yC, g.yH, g.yW = g.OH * g.OW * Co, 1, g.OW * Co, Co
    else:
        g.xN, g.xC, g.xH, g.xW = g.C * g.H * g.W, g.H * g.W, g.W, 1
        g.yN, g.yC, g.yH, g.yW = Co * g.OH * g.OW, g.OH * g.OW, g.OW, 1
    if g.C * g.kh * g.kw >= 2147483647 or Co >= 2147483647 or g.N >= 2147483647:
        raise ValueError("locally connected: dimensions exceed the 32-bit BLAS limit")
    if _sgemm == NULL:
        raise RuntimeError("mlkern: the BLAS is not set up (import mlkern.layers)")
    return 0


cdef struct _lc_args:
    const void *x
    const void *w
    const void *b
    void *y
    const void *go
    void *gx
    void *gw
    void *gb
    char *buf
    Py_ssize_t bsz, step, units, NB
    int f64


cdef void _lc_run(int phase, const _lc_args *a, const _lc_geom *g, int t) noexcept nogil:
    """Thread t's share of one phase: 0 forward, 1 weight/bias gradients
    (units: positions), 2 input gradient (units: image blocks)."""
    cdef Py_ssize_t u0 = t * a.step, u1 = u0 + a.step, CK = g.C * g.kh * g.kw
    cdef char *bt = a.buf + t * a.bsz
    if u1 > a.units:
        u1 = a.units
    if u0 >= u1:
        return
    if a.f64:
        if phase == 0:
            _lc_fwd_units(<const double *>a.x, <const double *>a.w, <const double *>a.b, <double *>a.y,
                          <double *>bt, <double *>bt + g.N * CK, u0, u1, g)
        elif phase == 1:
            _lc_bwd_w_units(<const double *>a.go, <const double *>a.x, <double *>a.gw, <double *>a.gb,
                            <double *>bt, <double *>bt + g.N * CK, u0, u1, g)
        else:
            _lc_bwd_x_units(<const double *>a.go, <const double *>a.w, <double *>a.gx, <double *>bt,
                            <double *>bt + a.NB * g.Co, u0, u1, a.NB, g)
    else:
        if phase == 0:
            _lc_fwd_units(<const float *>a.x, <const float *>a.w, <const float *>a.b, <float *>a.y,
                          <float *>bt, <float *>bt + g.N * CK, u0, u1, g)
        elif phase == 1:
            _lc_bwd_w_units(<const float *>a.go, <const float *>a.x, <float *>a.gw, <float *>a.gb,
                            <float *>bt, <float *>bt + g.N * CK, u0, u1, g)
        else:
            _lc_bwd_x_units(<const float *>a.go, <const float *>a.w, <float *>a.gx, <float *>bt,
                            <float *>bt + a.NB * g.Co, u0, u1, a.NB, g)


cdef void _lc_phase(int phase, _lc_args *a, const _lc_geom *g, Py_ssize_t units, int nt) noexcept nogil:
    cdef int t
    a.units = units
    a.step = (units + nt - 1) // nt
    if nt <= 1:
        _lc_run(phase, a, g, 0)
    else:
        for t in prange(nt, num_threads=nt, schedule='static'):
            _lc_run(phase, a, g, t)


def lc_raw(cnp.ndarray x, cnp.ndarray w, object bias, object y, object go, object gx,
           object gw, object gb, tuple geom, bint last):
    """Forward (y not None): y = the locally connected layer of x (4-D
    C-contiguous, (N, C, H, W) or (N, H, W, C)), w (OH*OW, C_out, C*kh*kw),
    bias (OH*OW, C_out) or None; y (N, C_out, OH, OW) or (N, OH, OW, C_out).
    Backward (y None): from go (like y), gw (like w), gb (like the bias) or
    None, gx (like x) or None.  geom = (OH, OW, kh, kw, sh, sw).  One float
    dtype, N, OH*OW, C_out > 0; callers validate."""
    cdef _lc_geom g
    cdef _lc_args a
    cdef Py_ssize_t Co = cnp.PyArray_DIM(w, 1), units, CK, nblk
    cdef int nt
    _lc_set_geom(&g, x, Co, geom, last)
    a.f64 = _is_f64(w, "lc_raw")
    a.x = cnp.PyArray_DATA(x)
    a.w = cnp.PyArray_DATA(w)
    a.b = NULL if bias is None else cnp.PyArray_DATA(<cnp.ndarray>bias)
    a.y = NULL if y is None else cnp.PyArray_DATA(<cnp.ndarray>y)
    a.go = NULL if go is None else cnp.PyArray_DATA(<cnp.ndarray>go)
    a.gx = NULL if gx is None else cnp.PyArray_DATA(<cnp.ndarray>gx)
    a.gw = NULL if gw is None else cnp.PyArray_DATA(<cnp.ndarray>gw)
    a.gb = NULL if gb is None else cnp.PyArray_DATA(<cnp.ndarray>gb)
    units = g.OH * g.OW
    CK = g.C * g.kh * g.kw
    # image blocks of grad_x: a size fixed by N alone (at most 16 blocks)
    nblk = g.N if g.N < 16 else 16
    a.NB = (g.N + nblk - 1) // nblk
    nblk = (g.N + a.NB - 1) // a.NB
    nt = _team(g.N * Co * (CK + 1) * units, units if (y is not None or units > nblk) else nblk)
    a.bsz = (g.N * (CK + Co) * (8 if a.f64 else 4) + 63) & ~(<Py_ssize_t>63)
    a.buf = <char *>malloc(a.bsz * nt + 64)
    if a.buf == NULL:
        raise MemoryError()
    with nogil:
        if a.y != NULL:
            _lc_phase(0, &a, &g, units, nt)
        else:
            _lc_phase(1, &a, &g, units, nt if nt <= units else <int>units)
            if a.gx != NULL:
                _lc_phase(2, &a, &g, nblk, nt if nt <= nblk else <int>nblk)
    free(a.buf)
