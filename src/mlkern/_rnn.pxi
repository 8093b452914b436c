# Recurrent layers (mlkern.layers rnn/lstm/gru and their backward): the time
# loops.  Included from _kernels.pyx after _layers.pxi (it uses _gemm,
# _blas_one/_blas_restore, _dense_gz_strip and the thread policy).
#
# Blocks.  The hidden units are cut into P blocks of hb units (P = 1 or 2,
# fixed by the shape alone: rnn_blocks).  The caller permutes the gate rows
# of W_ih, W_hh and the biases so that block b's gates lie side by side
# (columns G*j0 .. G*j1 of every gate array, gate k of unit j at
# G*j0 + k*w + j - j0): a block's gates then come from one GEMM and go
# through one fused gate kernel (mlk_rnn_tmpl.h) on the thread that owns
# the block, with no other synchronisation than the end of the step.
#
# Forward, per step and block: (at the start of a chunk of steps) the input
# projection of the chunk, x W_ih^T + the folded biases, for the block's
# columns; S = h_{t-1} W_hh^T for the block's columns; the gate kernel,
# which writes the activations over the projection (the saved array with
# return_saved), h_t, c_t and what the backward needs.
# Backward, per step and block: dh_t for the block's units = the GEMM of
# all of dG_{t+1} with the block's columns of W_hh (+ z dh for GRU, from
# the gate kernel), then the gate kernel of step t for the block.  After
# the loop, per block: the block's rows of grad W_ih and grad W_hh (GEMMs
# over all T*N rows), the bias sums (float64, each column by one thread in
# row order) and one panel of rows of grad x.
#
# Threads: one OpenMP region per step with one block per thread (at most P
# threads), each calling OpenBLAS at one thread; 1 thread when P = 1 or
# OpenBLAS's thread-local count cannot be set.  Every GEMM call and every
# kernel call is the same for any thread count (the partition is the
# shape's), so the results are bitwise identical for 1 and 2 threads.

# multiply-adds of one step's h W_hh^T from which the hidden units are cut
# in two blocks (and the step runs on two threads)
cdef Py_ssize_t _RNN_PAR_WORK = 1 << 17
DEF _RNN_MIN_H = 32
# the per-step GEMMs (few rows of h or dG against all of W_hh) are cut into
# panels of 32 or 16 rows of W_hh when that keeps rows * N * K within
# _RNN_SUB_MNK: OpenBLAS then takes its small-matrix kernels, which do not
# pack W_hh at every call (measured with SciPy's OpenBLAS 0.3.30 on Zen 4,
# N=32 H=256 f32: LSTM forward h W_hh^T 0.24 -> 0.17 ms a step, backward
# dG W_hh 0.26 -> 0.17 ms); 0 turns it off
cdef Py_ssize_t _RNN_SUB_MNK = 1000000

RNN_OPS = {"rnn_tanh": MLK_RNN_TANH_FWD, "rnn_relu": MLK_RNN_RELU_FWD, "lstm": MLK_LSTM_FWD,
           "gru": MLK_GRU_FWD}
RNN_BWD_OPS = {"rnn_tanh": MLK_RNN_TANH_BWD, "rnn_relu": MLK_RNN_RELU_BWD,
               "lstm": MLK_LSTM_BWD, "gru": MLK_GRU_BWD}


def rnn_blocks(Py_ssize_t N, Py_ssize_t H, Py_ssize_t G):
    """(P, hb): the hidden units in P blocks of hb units (the last one may
    be shorter); a function of the shape only."""
    cdef Py_ssize_t hb
    if H < _RNN_MIN_H or N * G * H * H < _RNN_PAR_WORK:
        return 1, H
    hb = (((H + 1) // 2) + 15) & ~(<Py_ssize_t>15)
    return (H + hb - 1) // hb, hb


def set_rnn_tuning(Py_ssize_t par_work, Py_ssize_t sub_mnk=-1):
    """The work from which a step is cut in two blocks and the limit of the
    per-step GEMM panels (-1 keeps a value).  Returns the previous values."""
    global _RNN_PAR_WORK, _RNN_SUB_MNK
    old = (_RNN_PAR_WORK, _RNN_SUB_MNK)
    if par_work >= 0:
        _RNN_PAR_WORK = par_work
    if sub_mnk >= 0:
        _RNN_SUB_MNK = sub_mnk
    return old


ctypedef struct _RnnQ:
    int op
    int G
    int P
    int keep
    int gru
    int lstm
    Py_ssize_t T
    Py_ssize_t N
    Py_ssize_t nin
    Py_ssize_t H
    Py_ssize_t GH
    Py_ssize_t hb
    Py_ssize_t chunk
    void *x
    void *wih
    void *whh            # forward: W_hh (GH, H); backward: W_hh^T (H, GH); gate rows permuted
    void *bias
    void *bhn
    void *hs
    void *cs
    void *pbuf           # forward: projection / activations; backward: the activations
    void *sbuf
    void *aux
    void *go
    void *dgi
    void *dgh
    void *d0
    void *d1
    void *dc
    void *gx
    void *gwi
    void *gwh
    double *gbi
    double *gbh


cdef inline void _rgemm(char ta, char tb, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, real alpha,
                        const real *a, Py_ssize_t lda, const real *b, Py_ssize_t ldb, real beta,
                        real *c, Py_ssize_t ldc) noexcept nogil:
    """_gemm that also takes empty shapes: nothing for m or n = 0; for
    k = 0, c = 0 (beta = 0) or c unchanged (beta = 1)."""
    cdef Py_ssize_t j
    if m <= 0 or n <= 0:
        return
    if k <= 0:
        if beta == 0:
            for j in range(n):
                memset(c + j * ldc, 0, m * sizeof(real))
        return
    _gemm(ta, tb, <int>m, <int>n, <int>k, alpha, a, <int>lda, b, <int>ldb, beta, c, <int>ldc)


cdef void _rgemm_tn(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, const real *a, Py_ssize_t lda,
                    const real *b, Py_ssize_t ldb, real beta, real *c, Py_ssize_t ldc) noexcept nogil:
    """Column-major c (m, n) = op(a)^T b + beta c ('T', 'N': a is (k, m)), in
    panels of rows by _RNN_SUB_MNK (a partition fixed by the shape)."""
    cdef Py_ssize_t sr = 0, r = 0
    if 32 * n * k <= _RNN_SUB_MNK:
        sr = 32
    elif 16 * n * k <= _RNN_SUB_MNK:
        sr = 16
    if sr == 0 or m <= sr:
        _rgemm(c'T', c'N', m, n, k, <real>1, a, lda, b, ldb, beta, c, ldc)
        return
    while r < m:
        _rgemm(c'T', c'N', sr if r + sr <= m else m - r, n, k, <real>1, a + r * lda, lda, b, ldb,
               beta, c + r, ldc)
        r += sr


cdef inline void _rnn_kernel(int op, const mlk_rnn_args *a, real *tp) noexcept nogil:
    if real is float:
        mlk_kt.rnn_f32(op, a)
    else:
        mlk_kt.rnn_f64(op, a)


cdef inline Py_ssize_t _blk_width(const _RnnQ *q, Py_ssize_t b) noexcept nogil:
    cdef Py_ssize_t j0 = b * q.hb
    if j0 + q.hb <= q.H:
        return q.hb
    return q.H - j0 if q.H > j0 else 0


cdef void _rnn_fwd_blk(const _RnnQ *q, real *tp, Py_ssize_t t, Py_ssize_t b) noexcept nogil:
    """Step t for block b: the chunk's projection (at a chunk start), the
    recurrent GEMM, the gate kernel."""
    cdef Py_ssize_t w = _blk_width(q, b), j0 = b * q.hb
    cdef Py_ssize_t N = q.N, H = q.H, GH = q.GH, I = q.nin, c0, gw, k, m, i, NH = q.N * q.H
    cdef const real *bias = <const real *>q.bias
    cdef real *pb = <real *>q.pbuf
    cdef real *hs = <real *>q.hs
    cdef real *cs = <real *>q.cs
    cdef real *act
    cdef real *sn
    cdef mlk_rnn_args a
    cdef int prev
    if w <= 0:
        return
    c0 = q.G * j0
    gw = q.G * w
    prev = _blas_one()
    memset(&a, 0, sizeof(a))
    k = t % q.chunk
    if q.keep:
        pb += (t - k) * N * GH          # the chunk's steps of the saved array
    if k == 0:
        m = q.chunk if t + q.chunk <= q.T else q.T - t
        if bias != NULL:
            for i in range(m * N):
                memcpy(pb + i * GH + c0, bias + c0, gw * sizeof(real))
        _rgemm(c'T', c'N', gw, m * N, I, <real>1, <const real *>q.wih + c0 * I, I,
               <const real *>q.x + t * N * I, I, <real>(1 if bias != NULL else 0), pb + c0, GH)
    # the recurrent product, added to the projection (GRU's gate n: W_hn h +
    # b_hn kept apart, in sbuf)
    act = pb + k * N * GH + c0
    if q.gru:
        _rgemm_tn(2 * w, N, H, <const real *>q.whh + c0 * H, H, hs + t * NH, H, <real>1, act, GH)
        sn = <real *>q.sbuf + c0 + 2 * w
        for i in range(N):
            memcpy(sn + i * GH, <const real *>q.bhn + j0, w * sizeof(real))
        _rgemm_tn(w, N, H, <const real *>q.whh + (c0 + 2 * w) * H, H, hs + t * NH, H, <real>1,
                  sn, GH)
    else:
        _rgemm_tn(gw, N, H, <const real *>q.whh + c0 * H, H, hs + t * NH, H, <real>1, act, GH)
    a.N = N
    a.hb = w
    a.ldg = GH
    a.ldh = H
    a.s = <real *>q.sbuf + c0
    a.act = act
    a.hp = hs + t * NH + j0
    a.h = hs + (t + 1) * NH + j0
    if q.lstm:
        a.cp = cs + (t if q.keep else t % 2) * NH + j0
        a.c = cs + (t + 1 if q.keep else (t + 1) % 2) * NH + j0
    else:
        a.cp = NULL
        a.c = NULL
    a.aux = (<real *>q.aux + (t if q.keep else 0) * NH + j0) if q.aux != NULL else NULL
    _rnn_kernel(q.op, &a, tp)
    _blas_restore(prev)


cdef int _rnn_team(const _RnnQ *q) noexcept nogil:
    cdef int nt
    if q.P <= 1 or _blas_local == NULL:
        return 1
    nt = _max_threads()
    return nt if nt < q.P else q.P


cdef void _rnn_fwd_run(const _RnnQ *q, real *tp) noexcept nogil:
    cdef Py_ssize_t t, b
    cdef int nt = _rnn_team(q)
    for t in range(q.T):
        if nt <= 1:
            for b in range(q.P):
                _rnn_fwd_blk(q, tp, t, b)
        else:
            for b in prange(q.P, num_threads=nt, schedule='static'):
                _rnn_fwd_blk(q, tp, t, b)


cdef void _rnn_bwd_blk(const _RnnQ *q, real *tp, Py_ssize_t t, Py_ssize_t b) noexcept nogil:
    """Region t (T-1 down to -1) for block b: dh_t of the block's units from
    dG_{t+1} (t < T-1), then the gate kernel of step t (t >= 0)."""
    cdef Py_ssize_t w = _blk_width(q, b), j0 = b * q.hb
    cdef Py_ssize_t N = q.N, H = q.H, GH = q.GH, c0, NH = q.N * q.H, NG = q.N * q.GH
    cdef real *din
    cdef real *dout
    cdef real *hs = <real *>q.hs
    cdef const real *dgs = <const real *>(q.dgh if q.gru else q.dgi)
    cdef mlk_rnn_args a
    cdef int prev
    if w <= 0:
        return
    c0 = q.G * j0
    # dh_t is in d0 for t = T-1, in d1 for T-2, ...; the GRU kernel writes
    # z dh (the start of dh_{t-1}) into the other one
    if (q.T - 1 - t) % 2 == 0:
        din = <real *>q.d0
        dout = <real *>q.d1
    else:
        din = <real *>q.d1
        dout = <real *>q.d0
    prev = _blas_one()
    if t < q.T - 1:
        _rgemm_tn(w, N, GH, <const real *>q.whh + j0 * GH, GH, dgs + (t + 1) * NG, GH,
                  <real>(1 if q.gru else 0), din + j0, H)
    if t >= 0:
        memset(&a, 0, sizeof(a))
        a.N = N
        a.hb = w
        a.ldg = GH
        a.ldh = H
        a.s = NULL
        a.act = <real *>q.pbuf + t * NG + c0
        a.hp = hs + t * NH + j0
        a.h = hs + (t + 1) * NH + j0
        a.cp = (<real *>q.cs + t * NH + j0) if q.lstm else NULL
        a.c = NULL
        a.aux = (<real *>q.aux + t * NH + j0) if q.aux != NULL else NULL
        a.go = (<const real *>q.go + t * NH + j0) if q.go != NULL else NULL
        a.dh = din + j0
        a.dc = (<real *>q.dc + j0) if q.lstm else NULL
        a.dg = <real *>q.dgi + t * NG + c0
        a.dgh = (<real *>q.dgh + t * NG + c0) if q.gru else NULL
        a.dprev = (dout + j0) if q.gru else NULL
        _rnn_kernel(q.op, &a, tp)
    _blas_restore(prev)


cdef void _rnn_wgrad_blk(const _RnnQ *q, real *tp, Py_ssize_t b) noexcept nogil:
    """Block b's rows of grad W_ih and grad W_hh, its bias sums, and panel b
    of the rows of grad x."""
    cdef Py_ssize_t w = _blk_width(q, b), j0 = b * q.hb
    cdef Py_ssize_t TN = q.T * q.N, I = q.nin, H = q.H, GH = q.GH, c0, gw, step, r0, r1, j
    cdef const real *dgi = <const real *>q.dgi
    cdef int prev = _blas_one()
    step = (TN + q.P - 1) // q.P
    r0 = b * step
    r1 = r0 + step if r0 + step < TN else TN
    if q.gx != NULL and r0 < r1:
        _rgemm(c'N', c'N', I, r1 - r0, GH, <real>1, <const real *>q.wih, I, dgi + r0 * GH, GH,
               <real>0, <real *>q.gx + r0 * I, I)
    if w > 0:
        c0 = q.G * j0
        gw = q.G * w
        _rgemm(c'N', c'T', I, gw, TN, <real>1, <const real *>q.x, I, dgi + c0, GH, <real>0,
               <real *>q.gwi + c0 * I, I)
        _rgemm(c'N', c'T', H, gw, TN, <real>1, <const real *>q.hs, H,
               <const real *>(q.dgh if q.gru else q.dgi) + c0, GH, <real>0,
               <real *>q.gwh + c0 * H, H)
        if q.gbi != NULL:
            _dense_gz_strip(dgi, <const real *>NULL, <real *>NULL, q.gbi, TN, GH, c0, c0 + gw,
                            -1, NULL)
        if q.gbh != NULL:
            # GRU: the r, z sums are those of dgi, the n ones of dgh
            _dense_gz_strip(<const real *>q.dgh, <const real *>NULL, <real *>NULL, q.gbh, TN, GH,
                            c0 + 2 * w, c0 + 3 * w, -1, NULL)
            if q.gbi != NULL:
                for j in range(c0, c0 + 2 * w):
                    q.gbh[j] = q.gbi[j]
            else:
                _dense_gz_strip(dgi, <const real *>NULL, <real *>NULL, q.gbh, TN, GH, c0,
                                c0 + 2 * w, -1, NULL)
    _blas_restore(prev)


cdef void _rnn_bwd_run(const _RnnQ *q, real *tp) noexcept nogil:
    cdef Py_ssize_t t, b
    cdef int nt = _rnn_team(q)
    for t in range(q.T - 1, -2, -1):
        if nt <= 1:
            for b in range(q.P):
                _rnn_bwd_blk(q, tp, t, b)
        else:
            for b in prange(q.P, num_threads=nt, schedule='static'):
                _rnn_bwd_blk(q, tp, t, b)
    if nt <= 1:
        for b in range(q.P):
            _rnn_wgrad_blk(q, tp, b)
    else:
        for b in prange(q.P, num_threads=nt, schedule='static'):
            _rnn_wgrad_blk(q, tp, b)


cdef inline void *_ptr(object a):
    return NULL if a is None else cnp.PyArray_DATA(<cnp.ndarray>a)


cdef int _rnn_q(_RnnQ *q, int op, cnp.ndarray x, cnp.ndarray wih, cnp.ndarray whh,
                cnp.ndarray hs, Py_ssize_t P, Py_ssize_t hb) except -1:
    if _sgemm == NULL:
        raise RuntimeError("mlkern: the BLAS is not set up (import mlkern.layers)")
    memset(q, 0, sizeof(_RnnQ))
    q.op = op
    q.T = cnp.PyArray_DIM(x, 0)
    q.N = cnp.PyArray_DIM(x, 1)
    q.nin = cnp.PyArray_DIM(x, 2)
    q.H = cnp.PyArray_DIM(hs, 2)
    q.GH = cnp.PyArray_DIM(wih, 0)
    q.G = <int>(q.GH // q.H) if q.H > 0 else 1
    q.P = <int>P
    q.hb = hb
    q.gru = op == MLK_GRU_FWD or op == MLK_GRU_BWD
    q.lstm = op == MLK_LSTM_FWD or op == MLK_LSTM_BWD
    if q.T * q.N >= 2147483647 or q.GH >= 2147483647 or q.nin >= 2147483647:
        raise ValueError(f"dimensions (T*N={q.T * q.N}, input_size={q.nin}, {q.GH} gate rows) "
                         "exceed the 32-bit BLAS limit")
    q.x = cnp.PyArray_DATA(x)
    q.wih = cnp.PyArray_DATA(wih)
    q.whh = cnp.PyArray_DATA(whh)
    q.hs = cnp.PyArray_DATA(hs)
    return 0


def rnn_fwd_raw(int op, cnp.ndarray x, cnp.ndarray wih, cnp.ndarray whh, object bias,
                object bhn, cnp.ndarray hs, object cs, cnp.ndarray pbuf, cnp.ndarray sbuf,
                object aux, Py_ssize_t chunk, bint keep, Py_ssize_t P, Py_ssize_t hb):
    """The forward time loop (see the notes above).  x (T, N, I); wih
    (GH, I) and whh (GH, H), their gate rows permuted by block;
    bias (GH,) permuted or None; bhn (H,) for GRU; hs (T+1, N, H) with hs[0]
    = h0; cs (LSTM) (T+1, N, H) with keep, else (2, N, H), cs[0] = c0; pbuf
    (T, N, GH) with keep (the saved activations), else (chunk, N, GH); sbuf
    (N, GH); aux (T or 1, N, H) for LSTM/GRU.  All C-contiguous of one float
    dtype.  Callers validate."""
    cdef _RnnQ q
    _rnn_q(&q, op, x, wih, whh, hs, P, hb)
    q.chunk = chunk if chunk > 0 else 1
    q.keep = keep
    q.bias = _ptr(bias)
    q.bhn = _ptr(bhn)
    q.cs = _ptr(cs)
    q.pbuf = cnp.PyArray_DATA(pbuf)
    q.sbuf = cnp.PyArray_DATA(sbuf)
    q.aux = _ptr(aux)
    if q.T == 0 or q.N == 0 or q.H == 0:
        return None
    if cnp.PyArray_TYPE(x) == cnp.NPY_DOUBLE:
        with nogil:
            _rnn_fwd_run(&q, <double *>NULL)
    else:
        with nogil:
            _rnn_fwd_run(&q, <float *>NULL)
    return None


def rnn_bwd_raw(int op, object go, cnp.ndarray d0, cnp.ndarray d1, object dc, cnp.ndarray hs,
                object cs, cnp.ndarray acts, object aux, cnp.ndarray x, cnp.ndarray wih,
                cnp.ndarray whT, cnp.ndarray dgi, object dgh, object gx, cnp.ndarray gwi,
                cnp.ndarray gwh, object gbi, object gbh, Py_ssize_t P, Py_ssize_t hb):
    """The backward time loop and the weight gradients (see the notes
    above), in the permuted gate order of the forward.  go (T, N, H) or
    None; d0 (N, H) = grad_h_n (zeros for none), d1 (N, H) scratch; dc (N,
    H) = grad_c_n (LSTM), dc_0 on return; hs, cs, acts, aux: the forward's
    saved arrays; whT = W_hh^T (H, GH), permuted; dgi (T, N, GH) and (GRU) dgh
    like it: the gate gradients out; gx like x or None; gwi (GH, I), gwh
    (GH, H); gbi, gbh: float64 (GH,) zeros or None.  Returns the index
    (0 or 1) of the d buffer holding grad_h0."""
    cdef _RnnQ q
    _rnn_q(&q, op, x, wih, whT, hs, P, hb)
    q.chunk = q.T if q.T > 0 else 1
    q.keep = 1
    q.go = _ptr(go)
    q.d0 = cnp.PyArray_DATA(d0)
    q.d1 = cnp.PyArray_DATA(d1)
    q.dc = _ptr(dc)
    q.cs = _ptr(cs)
    q.pbuf = cnp.PyArray_DATA(acts)
    q.aux = _ptr(aux)
    q.dgi = cnp.PyArray_DATA(dgi)
    q.dgh = _ptr(dgh)
    q.gx = _ptr(gx)
    q.gwi = cnp.PyArray_DATA(gwi)
    q.gwh = cnp.PyArray_DATA(gwh)
    q.gbi = <double *>_ptr(gbi)
    q.gbh = <double *>_ptr(gbh)
    if q.H == 0 or q.T == 0:
        return 0
    if cnp.PyArray_TYPE(x) == cnp.NPY_DOUBLE:
        with nogil:
            _rnn_bwd_run(&q, <double *>NULL)
    else:
        with nogil:
            _rnn_bwd_run(&q, <float *>NULL)
    return q.T % 2
