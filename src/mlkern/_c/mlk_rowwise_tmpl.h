/*
 * mlk_rowwise_tmpl.h -- the softmax family and argmax along one axis,
 * written once over MLK_T / MLK_F / MLK_K (instantiated by mlk_kernels_body.h
 * for float32 and float64 at every ISA level, like mlk_kernels_tmpl.h).
 *
 * The array is seen as (outer, n, inner), C-contiguous, reduced over n.
 *   Row mode (inner == 1): each row is contiguous; the passes vectorise
 *     along the row.  Rows shorter than MLK_RW_SHORT are taken in blocks of
 *     up to MLK_RW_CB rows, transposed into an L1 buffer and run through the
 *     column kernel, so that the loops vectorise across rows instead.
 *   Column mode (inner > 1): element (o, j, c) is at o*n*ld + j*ld + c.  The
 *     reduced axis is walked with stride ld and the loops vectorise across
 *     the contiguous columns c, with per-column accumulators on the stack
 *     (no transposed copy).  Columns are taken MLK_RW_CB at a time.
 *
 * Numerics (the row primitives of mlk_row.h, shared with the cross-entropy):
 *   m = max of the row (NaN ignored here; a NaN still reaches the sum).
 *   e_j = 2^S e^{x_j - m}, R as in mlk_row.h, sums accumulated in double
 *   softmax      y_j = e_j * (1 / sum e)
 *   logsumexp    m + log1p(R)
 *   log_softmax  (x_j - m) - log1p(R)
 * Rows whose max is not finite (+inf, or every element -inf/NaN) follow
 * scipy.special: softmax NaN; logsumexp +inf, or -inf for an all -inf row,
 * or NaN if the row holds a NaN; log_softmax x_j - logsumexp with the
 * shift taken as 0 (so [inf, 0] -> [nan, -inf]).  These rows are rare and
 * are patched after the branch-free main loops by a scalar routine.
 *
 * `restrict` is used although an output may equal an input (in-place):
 * every pass reads and writes the same index, never a partial overlap.
 */
#include "mlk_row.h"
#include "mlk_argmax_simd.h"

static void MLK_F(mlk_rw_logsm_special)(const MLK_T *x, MLK_T *y, intptr_t n, intptr_t ld, MLK_T m) {
    const MLK_T L = MLK_F(mlk_rw_lse_special)(x, n, ld, m);
    for (intptr_t j = 0; j < n; j++) y[j * ld] = x[j * ld] - L;
}

/* ---- row mode, long rows ------------------------------------------------ */

static void MLK_F(mlk_rw_softmax_row)(const MLK_T *restrict x, MLK_T *restrict y, intptr_t n) {
    const MLK_T m = MLK_F(mlk_rw_max)(x, n);
    double cnt;
    const double s = MLK_F(mlk_rw_expsum)(x, n, m, y, 1, 0, 0, 0, NULL, &cnt);
    const MLK_T r = (MLK_T)(1.0 / s);
    for (intptr_t j = 0; j < n; j++) y[j] *= r;
}

/* logsumexp (y[r]) or log_softmax (rows of y) of `rows` contiguous rows of
   n: R per row, then log1p of a block of rows as one vector loop (a scalar
   log1p per row costs more than the rest of a 128-element row) */
static void MLK_F(mlk_rw_log_rows)(int op, const MLK_T *restrict x, MLK_T *restrict y,
                                   intptr_t rows, intptr_t n) {
    MLK_T m[MLK_RW_RB], L[MLK_RW_RB];
    MLK_T R[MLK_RW_RB];
    /* rows per block: the block's output is still in L2 for the last pass */
    intptr_t rb = 16384 / n;
    rb = rb < 1 ? 1 : (rb > MLK_RW_RB ? MLK_RW_RB : rb);
    for (intptr_t r0 = 0; r0 < rows; r0 += rb) {
        const intptr_t nr = rows - r0 < rb ? rows - r0 : rb;
        int bad = 0;
        for (intptr_t r = 0; r < nr; r++) {
            const MLK_T *xr = x + (r0 + r) * n;
            const MLK_T mr = MLK_F(mlk_rw_max)(xr, n);
            m[r] = mr;
            if (!MLK_F(mlk_rw_finite)(mr)) { bad = 1; R[r] = 0; continue; }
            R[r] = op == MLK_LOG_SOFTMAX ? MLK_F(mlk_rw_row_rest)(xr, n, mr, 1, y + (r0 + r) * n)
                                         : MLK_F(mlk_rw_row_rest)(xr, n, mr, 0, NULL);
        }
        for (intptr_t r = 0; r < nr; r++) L[r] = MLK_F(mlk_log1p)(R[r]);
        if (op == MLK_LOGSUMEXP) {
            for (intptr_t r = 0; r < nr; r++) y[r0 + r] = m[r] + L[r];
        } else {
            for (intptr_t r = 0; r < nr; r++) {
                MLK_T *yr = y + (r0 + r) * n;
                const MLK_T q = L[r];
                for (intptr_t j = 0; j < n; j++) yr[j] -= q;     /* (x - m) - L */
            }
        }
        if (bad) {
            for (intptr_t r = 0; r < nr; r++) {
                if (MLK_F(mlk_rw_finite)(m[r])) continue;
                const MLK_T *xr = x + (r0 + r) * n;
                if (op == MLK_LOGSUMEXP)
                    y[r0 + r] = MLK_F(mlk_rw_lse_special)(xr, n, 1, m[r]);
                else
                    MLK_F(mlk_rw_logsm_special)(xr, y + (r0 + r) * n, n, 1, m[r]);
            }
        }
    }
}

/* ---- column mode: vectorised across the contiguous inner columns -------- */

/* one (n x cb) slab: element (j, c) at x[j*ld + c]; logsumexp writes y[c] */
static void MLK_F(mlk_rw_cols)(int op, const MLK_T *restrict x, MLK_T *restrict y,
                               intptr_t n, intptr_t cb, intptr_t ld) {
    MLK_T m[MLK_RW_CB];
    double acc[MLK_RW_CB];
    double cnt[MLK_RW_CB];
    MLK_T q[MLK_RW_CB];
    double cmp[MLK_RW_CB];
    MLK_T fa[MLK_RW_CB], fc[MLK_RW_CB];
    MLK_F(mlk_rw_col_max)(x, m, n, cb, ld);
    if (op == MLK_SOFTMAX) {
        MLK_F(mlk_rw_col_expsum)(x, y, m, n, cb, ld, 1, 0, 0, acc, cnt, cmp, fa, fc);
        for (intptr_t c = 0; c < cb; c++) q[c] = (MLK_T)(1.0 / acc[c]);
        for (intptr_t j = 0; j < n; j++) {
            MLK_T *yr = y + j * ld;
            for (intptr_t c = 0; c < cb; c++) yr[c] *= q[c];
        }
        return;
    }
    MLK_F(mlk_rw_col_expsum)(x, NULL, m, n, cb, ld, 0, 1, 0, acc, cnt, cmp, fa, fc);
    for (intptr_t c = 0; c < cb; c++) q[c] = MLK_F(mlk_rw_log_rest)(acc[c], cnt[c]);
    if (op == MLK_LOGSUMEXP) {
        for (intptr_t c = 0; c < cb; c++) y[c] = m[c] + q[c];
        for (intptr_t c = 0; c < cb; c++)
            if (!MLK_F(mlk_rw_finite)(m[c])) y[c] = MLK_F(mlk_rw_lse_special)(x + c, n, ld, m[c]);
        return;
    }
    /* a column whose max is not finite gives x - L, L its scipy logsumexp:
       shift 0 and q = L, decided before anything is written (y may be x) */
    for (intptr_t c = 0; c < cb; c++)
        if (!MLK_F(mlk_rw_finite)(m[c])) {
            q[c] = MLK_F(mlk_rw_lse_special)(x + c, n, ld, m[c]);
            m[c] = 0;
        }
    for (intptr_t j = 0; j < n; j++) {
        const MLK_T *xr = x + j * ld;
        MLK_T *yr = y + j * ld;
        for (intptr_t c = 0; c < cb; c++) yr[c] = (xr[c] - m[c]) - q[c];
    }
}

/* ---- row mode, short rows: blocks transposed (mlk_row.h), then the column
   kernel above across the rows; both transposes stay in L1 ---------------- */
static void MLK_F(mlk_rw_short)(int op, const MLK_T *restrict x, MLK_T *restrict y,
                                intptr_t rows, intptr_t n) {
    MLK_T t[MLK_RW_SBLK];
    MLK_T u[MLK_RW_SBLK];
    const intptr_t rb = MLK_F(mlk_rw_short_rb)(n);
    for (intptr_t r0 = 0; r0 < rows; r0 += rb) {
        const intptr_t nr = MLK_F(mlk_rw_short_in)(x, t, r0, rows, n, rb);
        if (op == MLK_LOGSUMEXP) {
            MLK_F(mlk_rw_cols)(op, t, y + r0, n, nr, nr);
            continue;
        }
        MLK_F(mlk_rw_cols)(op, t, u, n, nr, nr);
        MLK_F(mlk_rw_tr_out)(u, y + r0 * n, nr, n);
    }
}

/* ---- backward ------------------------------------------------------------ */

/* softmax:      out = y (g - sum g y)
   log_softmax:  out = g - e^y sum g
   The products g y are rounded in the working precision (0.5 eps each)
   and summed in double: one conversion per element, not two.  A float64
   sum that must be summed again (mlk_rw_bsum_redo, mlk_row.h) makes this
   return 1 before anything is written; the caller then passes the sum in
   *sum (the slow call stays out of this per-row function). */
static int MLK_F(mlk_rw_bwd_row)(int op, const MLK_T *restrict g, const MLK_T *restrict s,
                                 MLK_T *restrict o, intptr_t n, int stream, const double *sum) {
    double acc = 0.0;
    MLK_T buf[MLK_RW_CB];
    if (op == MLK_SOFTMAX_BWD) {
        if (sum) {
            acc = *sum;
        } else {
#pragma omp simd reduction(+:acc)
            for (intptr_t j = 0; j < n; j++) acc += (double)(g[j] * s[j]);
            if (MLK_F(mlk_rw_bsum_redo)(acc)) return 1;
        }
        const MLK_T dot = (MLK_T)acc;
        if (!stream) {
            for (intptr_t j = 0; j < n; j++) o[j] = s[j] * (g[j] - dot);
            return 0;
        }
        for (intptr_t j0 = 0; j0 < n; j0 += MLK_RW_CB) {
            const intptr_t nb = n - j0 < MLK_RW_CB ? n - j0 : MLK_RW_CB;
            for (intptr_t j = 0; j < nb; j++) buf[j] = s[j0 + j] * (g[j0 + j] - dot);
            MLK_F(mlk_stream_copy)(o + j0, buf, nb);
        }
    } else {
        /* y is a log-probability (<= 0): e^y by the cheaper mlk_expneg,
           unless some y > 0 (or NaN) was passed; y is read here with g, so
           the second pass finds both rows in L1 */
        int pos = 0;
#pragma omp simd reduction(+:acc) reduction(|:pos)
        for (intptr_t j = 0; j < n; j++) { acc += (double)g[j]; pos |= !(s[j] <= 0); }
        if (sum)
            acc = *sum;
        else if (MLK_F(mlk_rw_bsum_redo)(acc))
            return 1;
        const MLK_T sg = (MLK_T)acc;
        if (pos) {
            for (intptr_t j = 0; j < n; j++) o[j] = g[j] - MLK_F(mlk_exp)(s[j]) * sg;
        } else {
            for (intptr_t j = 0; j < n; j++) o[j] = g[j] - MLK_F(mlk_expneg)(s[j]) * sg;
        }
    }
    return 0;
}

static void MLK_F(mlk_rw_bwd_cols)(int op, const MLK_T *restrict g, const MLK_T *restrict s,
                                   MLK_T *restrict o, intptr_t n, intptr_t cb, intptr_t ld) {
    double acc[MLK_RW_CB];
    MLK_T q[MLK_RW_CB];
    for (intptr_t c = 0; c < cb; c++) acc[c] = 0.0;
    if (op == MLK_SOFTMAX_BWD) {
        for (intptr_t j = 0; j < n; j++) {
            const MLK_T *gr = g + j * ld, *sr = s + j * ld;
            for (intptr_t c = 0; c < cb; c++) acc[c] += (double)(gr[c] * sr[c]);
        }
        for (intptr_t c = 0; c < cb; c++)
            q[c] = (MLK_T)(MLK_F(mlk_rw_bsum_redo)(acc[c]) ? MLK_F(mlk_rw_bsum_safe)(g + c, s + c, n, ld)
                                                           : acc[c]);
        for (intptr_t j = 0; j < n; j++) {
            const MLK_T *gr = g + j * ld, *sr = s + j * ld;
            MLK_T *orow = o + j * ld;
            for (intptr_t c = 0; c < cb; c++) orow[c] = sr[c] * (gr[c] - q[c]);
        }
    } else {
        int pos = 0;
        for (intptr_t j = 0; j < n; j++) {
            const MLK_T *gr = g + j * ld, *sr = s + j * ld;
            for (intptr_t c = 0; c < cb; c++) { acc[c] += (double)gr[c]; pos |= !(sr[c] <= 0); }
        }
        for (intptr_t c = 0; c < cb; c++)
            q[c] = (MLK_T)(MLK_F(mlk_rw_bsum_redo)(acc[c]) ? MLK_F(mlk_rw_bsum_safe)(g + c, NULL, n, ld)
                                                           : acc[c]);
        for (intptr_t j = 0; j < n; j++) {
            const MLK_T *gr = g + j * ld, *sr = s + j * ld;
            MLK_T *orow = o + j * ld;
            if (pos) {
                for (intptr_t c = 0; c < cb; c++) orow[c] = gr[c] - MLK_F(mlk_exp)(sr[c]) * q[c];
            } else {
                for (intptr_t c = 0; c < cb; c++) orow[c] = gr[c] - MLK_F(mlk_expneg)(sr[c]) * q[c];
            }
        }
    }
}

/* ---- long rows cut into chunks (MLK_RW_LONG, MLK_RW_LCH) ------------------
 * phase 0: the partials of one chunk (a, b: its g and y for the backward; n
 *   its length) into st[0..3]:
 *     forward:  st[0] = m_k the chunk's max, st[1] = the sum of its scaled
 *               exponentials e^{x-m_k} 2^S of the non-maximal elements,
 *               st[2] = the count of its maxima (a chunk whose max is not
 *               finite: 0, 0, and st[1] NaN if it holds a NaN);
 *     softmax_backward: st[0] = sum g y; log_softmax_backward: st[0] = sum g,
 *               st[1] = 1 if some y > 0 or NaN (mlk_rw_bwd_row's `pos`).
 *   softmax: the chunk's exponentials e = 2^S e^{x - m_k} are stored into
 *   y, and st[1] sums all of them (maxima included).
 * phase 2: combine the partials of the n chunks (st[4k..4k+3], in chunk
 *   order) into the coefficients of each chunk, written over its partials
 *   st[4k..4k+3] (the row's: st[4n..4n+3], logsumexp); returns 1 if the row
 *   must be done by the whole-row kernel instead: a max that is not finite
 *   (the scipy rules of mlk_rw_lse_special; softmax: NaN, every c_k NaN),
 *   or a float64 backward sum to
 *   redo (mlk_rw_bsum_redo) -- rare rows, done exactly as before.
 *     forward: the row max M; R = sum over the chunks of their exponentials
 *     rescaled by e^{m_k - M} (exactly 1 for the chunks with m_k = M, whose
 *     maxima are counted, so R keeps the relative precision of mlk_row.h's
 *     R), summed with a compensation; then softmax q = 1 / sum e, log_softmax
 *     and logsumexp L = log1p(R); softmax the rescaling c_k of each chunk.
 * phase 1: the outputs of one chunk from its coefficients c = st + 4k
 *   (logsumexp: y[0] = M + L from st + 4n, n ignored).
 * The formulas of each output are those of the whole-row kernel with the
 * row's M and L or sum (softmax: one more rounding, e^{m_k - M} / sum):
 * otherwise only the order of the row sums differs. */
MLK_INLINE void MLK_F(mlk_rw_copy4)(double *restrict d, const double *restrict c) {
    d[0] = c[0]; d[1] = c[1]; d[2] = c[2]; d[3] = c[3];
}

int MLK_K(mlk_rowlong)(int op, int phase, const MLK_T *restrict a, const MLK_T *restrict b,
                       MLK_T *restrict y, intptr_t n, double *restrict st) {
    const int stream = (op & MLK_RW_STREAM) != 0;
    op &= ~MLK_RW_STREAM;
    if (phase == 0) {
        st[0] = st[1] = st[2] = st[3] = 0.0;
        if (op == MLK_SOFTMAX_BWD) {
            double acc = 0.0;
#pragma omp simd reduction(+:acc)
            for (intptr_t j = 0; j < n; j++) acc += (double)(a[j] * b[j]);
            st[0] = acc;
        } else if (op == MLK_LOG_SOFTMAX_BWD) {
            double acc = 0.0;
            int pos = 0;
#pragma omp simd reduction(+:acc) reduction(|:pos)
            for (intptr_t j = 0; j < n; j++) { acc += (double)a[j]; pos |= !(b[j] <= 0); }
            st[0] = acc;
            st[1] = pos;
        } else {
            const MLK_T m = MLK_F(mlk_rw_max)(a, n);
            st[0] = (double)m;
            if (MLK_F(mlk_rw_finite)(m)) {
                MLK_T buf[MLK_RW_EBLK];
                double cnt;
                if (op == MLK_SOFTMAX) {
                    /* the exponentials kept in y (phase 1 rescales them),
                       the maxima (exactly 2^S) summed with the rest */
                    st[1] = MLK_F(mlk_rw_expsum)(a, n, m, y, 1, 0, 0, 0, NULL, &cnt);
                } else {
                    st[1] = MLK_F(mlk_rw_expsum)(a, n, m, buf, 0, 1, 0, 0, NULL, &cnt);
                    st[2] = cnt;
                }
            } else {
                int nan = 0;
                for (intptr_t j = 0; j < n; j++) nan |= a[j] != a[j];
                st[1] = nan ? (double)NAN : 0.0;
                if (op == MLK_SOFTMAX)          /* -inf: 0 once rescaled (+inf: NaN) */
                    for (intptr_t j = 0; j < n; j++) y[j] = 0;
            }
        }
        return 0;
    }
    if (phase == 2) {
        double *c = st + 4 * n;
        c[0] = c[1] = c[2] = c[3] = 0.0;
        if (op == MLK_SOFTMAX_BWD || op == MLK_LOG_SOFTMAX_BWD) {
            double acc = 0.0, pos = 0.0;
            for (intptr_t k = 0; k < n; k++) { acc += st[4 * k]; pos += st[4 * k + 1]; }
            if (MLK_F(mlk_rw_bsum_redo)(acc)) return 1;
            c[0] = acc;
            c[1] = pos > 0 ? 1.0 : 0.0;
            for (intptr_t k = 0; k < n; k++) MLK_F(mlk_rw_copy4)(st + 4 * k, c);
            return 0;
        }
        double M = -INFINITY;
        for (intptr_t k = 0; k < n; k++) M = st[4 * k] > M ? st[4 * k] : M;
        if (!(M - M == 0)) {
            if (op != MLK_SOFTMAX) return 1;
            /* softmax: NaN (y may be x, already overwritten by phase 0) */
            for (intptr_t k = 0; k < n; k++) st[4 * k] = (double)NAN;
            return 0;
        }
        double rest = 0.0, cmp = 0.0, cnt = 0.0;
        for (intptr_t k = 0; k < n; k++) {
            const double mk = st[4 * k], acc = st[4 * k + 1] * (double)MLK_RW_UNSCALE;
            double t, f;
            if (mk == M) {
                f = 1.0;
                t = acc;
                cnt += st[4 * k + 2];
            } else if (mk == -INFINITY) {
                f = 0.0;
                t = acc;                        /* 0, or NaN */
            } else {
                /* e^{mk - M}: the difference with its rounding error (TwoSum;
                   exact for float32) */
                const double d = mk - M, bv = d - mk;
                const double err = (mk - (d - bv)) + (-M - bv);
                f = exp(d) * (1.0 + err);
                t = (acc + st[4 * k + 2]) * f;
            }
            st[4 * k + 3] = f;
            const double s1 = rest + t;
            cmp += fabs(rest) >= fabs(t) ? (rest - s1) + t : (t - s1) + rest;
            rest = s1;
        }
        rest += cmp;
        c[0] = M;
        if (op == MLK_SOFTMAX) {
            /* chunk k's stored exponentials e = 2^S e^{x - m_k} become
               (e c_k) 2^-S, c_k = e^{m_k - M} / sum: c_k <= 1, and a c_k
               that is subnormal gives outputs below it, so the rounding
               of c_k costs at most the output's own spacing */
            const double S = rest + cnt;
            for (intptr_t k = 0; k < n; k++) {
                const double ck = (double)(MLK_T)(st[4 * k + 3] / S);
                st[4 * k] = st[4 * k + 1] = st[4 * k + 2] = st[4 * k + 3] = ck;
            }
            return 0;
        }
        const MLK_T R = (MLK_T)(rest + (cnt - 1.0));
        c[1] = (double)MLK_F(mlk_log1p)(R);
        for (intptr_t k = 0; k < n; k++) MLK_F(mlk_rw_copy4)(st + 4 * k, c);
        return 0;
    }
    /* phase 1 */
    const double *c = st;
    if (op == MLK_LOGSUMEXP) {
        y[0] = (MLK_T)c[0] + (MLK_T)c[1];
    } else if (op == MLK_SOFTMAX) {
        const MLK_T q = (MLK_T)c[0];
        for (intptr_t j = 0; j < n; j++) y[j] = (y[j] * q) * MLK_RW_UNSCALE;
    } else if (op == MLK_LOG_SOFTMAX) {
        const MLK_T m = (MLK_T)c[0], L = (MLK_T)c[1];
        for (intptr_t j = 0; j < n; j++) y[j] = (a[j] - m) - L;
    } else if (op == MLK_SOFTMAX_BWD) {
        MLK_F(mlk_rw_bwd_row)(op, a, b, y, n, stream && n >= MLK_RW_CB, c);
        if (stream) mlk_stream_fence();
    } else {
        const MLK_T sg = (MLK_T)c[0];
        if (c[1] != 0) {
            for (intptr_t j = 0; j < n; j++) y[j] = a[j] - MLK_F(mlk_exp)(b[j]) * sg;
        } else {
            for (intptr_t j = 0; j < n; j++) y[j] = a[j] - MLK_F(mlk_expneg)(b[j]) * sg;
        }
    }
    return 0;
}

/* ---- the entry point ---------------------------------------------------- */

/* op on `outer` slabs of (n x cols), row stride ld (ld == 1 and cols == 1:
   contiguous rows of n).  a: x (forward) or grad_output (backward); b: the
   saved output (backward only); y: the result (logsumexp: outer x ld, row
   stride ld, already offset to the first column). */
void MLK_K(mlk_rowwise)(int op, const MLK_T *restrict a, const MLK_T *restrict b,
                        MLK_T *restrict y, intptr_t outer, intptr_t n, intptr_t cols,
                        intptr_t ld) {
    const int stream = (op & MLK_RW_STREAM) != 0;
    op &= ~MLK_RW_STREAM;
    const int bwd = op == MLK_SOFTMAX_BWD || op == MLK_LOG_SOFTMAX_BWD;
    if (n <= 0) return;
    if (ld == 1 && cols == 1) {
        if (bwd) {
            /* streaming only pays for softmax_backward (measured: log_softmax_backward
               and the forward ops lost with it); short rows use plain stores */
            const int st = stream && op == MLK_SOFTMAX_BWD && n >= MLK_RW_CB;
            for (intptr_t r = 0; r < outer; r++)
                if (MLK_F(mlk_rw_bwd_row)(op, a + r * n, b + r * n, y + r * n, n, st, NULL)) {
                    const double d = MLK_F(mlk_rw_bsum_safe)(
                        a + r * n, op == MLK_SOFTMAX_BWD ? b + r * n : NULL, n, 1);
                    MLK_F(mlk_rw_bwd_row)(op, a + r * n, b + r * n, y + r * n, n, st, &d);
                }
            if (stream) mlk_stream_fence();
        } else if (n < MLK_RW_SHORT) {
            MLK_F(mlk_rw_short)(op, a, y, outer, n);
        } else if (op == MLK_SOFTMAX) {
            for (intptr_t r = 0; r < outer; r++) MLK_F(mlk_rw_softmax_row)(a + r * n, y + r * n, n);
        } else if (op == MLK_LOG_SOFTMAX) {
            MLK_F(mlk_rw_log_rows)(op, a, y, outer, n);
        } else {
            MLK_F(mlk_rw_log_rows)(op, a, y, outer, n);
        }
        return;
    }
    for (intptr_t o = 0; o < outer; o++) {
        const intptr_t base = o * n * ld;
        for (intptr_t c0 = 0; c0 < cols; c0 += MLK_RW_CB) {
            const intptr_t cb = cols - c0 < MLK_RW_CB ? cols - c0 : MLK_RW_CB;
            if (bwd)
                MLK_F(mlk_rw_bwd_cols)(op, a + base + c0, b + base + c0, y + base + c0, n, cb, ld);
            else if (op == MLK_LOGSUMEXP)
                MLK_F(mlk_rw_cols)(op, a + base + c0, y + o * ld + c0, n, cb, ld);
            else
                MLK_F(mlk_rw_cols)(op, a + base + c0, y + base + c0, n, cb, ld);
        }
    }
}

/* ---- argmax ---------------------------------------------------------------
 * NumPy's semantics: the first maximum; a NaN counts as larger than every
 * number and the first NaN wins.  Long rows: one pass in blocks of
 * MLK_RW_ABLK; each block's max (and whether it holds a NaN) is a
 * branch-free vector reduction, and only the first block that raises the
 * running max is remembered, then rescanned (<= MLK_RW_ABLK elements) for
 * the first index.  A block with a NaN ends the scan.  Short rows and
 * columns: a running (best, index) pair per row / column, updated with
 * selects: take = !(v <= best) && best == best (a NaN v is taken unless a
 * NaN is already held).
 */
/* first j in [b0, e) with x[j] == v, or with x[j] NaN (v NaN), found 16
   elements at a time by a vector "any" test; -1 if none */
static intptr_t MLK_F(mlk_argmax_find)(const MLK_T *restrict x, intptr_t b0, intptr_t e, MLK_T v) {
    if (v != v) {
        for (intptr_t j = b0; j < e; j++)
            if (x[j] != x[j]) return j;
        return -1;
    }
    for (intptr_t s0 = b0; s0 < e; s0 += 16) {
        const intptr_t s1 = s0 + 16 < e ? s0 + 16 : e;
        int hit = 0;
        for (intptr_t j = s0; j < s1; j++) hit |= x[j] == v;
        if (hit)
            for (intptr_t j = s0; j < s1; j++)
                if (x[j] == v) return j;
    }
    return -1;
}

static int64_t MLK_F(mlk_argmax_long)(const MLK_T *restrict x, intptr_t n) {
#ifdef MLK_HAVE_ARGMAX_SIMD
    return MLK_F(mlk_argmax_simd)(x, n);      /* v3 / v4: mlk_argmax_simd.h */
#endif
    MLK_T best = (MLK_T)-INFINITY;
    intptr_t bblk = 0;
    for (intptr_t b0 = 0; b0 < n; b0 += MLK_RW_ABLK) {
        const intptr_t e = b0 + MLK_RW_ABLK < n ? b0 + MLK_RW_ABLK : n;
        MLK_T bm = (MLK_T)-INFINITY, nan = 0;
#pragma omp simd reduction(max:bm) reduction(max:nan)
        for (intptr_t j = b0; j < e; j++) {
            const MLK_T v = x[j];
            bm = v > bm ? v : bm;
            nan = v != v ? (MLK_T)1 : nan;        /* same-width lanes as bm */
        }
        if (nan > 0) return MLK_F(mlk_argmax_find)(x, b0, e, (MLK_T)NAN);
        if (bm > best) { best = bm; bblk = b0; }
    }
    /* the first element equal to best (an all -inf row: index 0) */
    const intptr_t e = bblk + MLK_RW_ABLK < n ? bblk + MLK_RW_ABLK : n;
    const intptr_t j = MLK_F(mlk_argmax_find)(x, bblk, e, best);
    return j < 0 ? 0 : j;
}

MLK_INLINE int64_t MLK_F(mlk_argmax_short)(const MLK_T *restrict x, intptr_t n) {
    MLK_T best = x[0];
    int64_t bi = 0;
    for (intptr_t j = 1; j < n; j++) {
        const MLK_T v = x[j];
        const int take = !(v <= best) & (best == best);
        best = take ? v : best;
        bi = take ? (int64_t)j : bi;
    }
    return bi;
}

/* cb <= MLK_RW_CB columns, element (j, c) at x[j*ld + c] */
static void MLK_F(mlk_argmax_cols)(const MLK_T *restrict x0, int64_t *restrict out,
                                   intptr_t n, intptr_t cb, intptr_t ld) {
    MLK_T best[MLK_RW_CB];
    int64_t bi[MLK_RW_CB];
    for (intptr_t c = 0; c < cb; c++) { best[c] = x0[c]; bi[c] = 0; }
    for (intptr_t j = 1; j < n; j++) {
        const MLK_T *xr = x0 + j * ld;
        for (intptr_t c = 0; c < cb; c++) {
            const MLK_T v = xr[c], bv = best[c];
            const int take = !(v <= bv) & (bv == bv);
            best[c] = take ? v : bv;
            bi[c] = take ? (int64_t)j : bi[c];
        }
    }
    for (intptr_t c = 0; c < cb; c++) out[c] = bi[c];
}

/* short rows: blocks of rows transposed (as in mlk_rw_short), then the
   column scan across the rows */
static void MLK_F(mlk_argmax_short_rows)(const MLK_T *restrict x, int64_t *restrict out,
                                         intptr_t rows, intptr_t n) {
    MLK_T t[MLK_RW_SBLK];
    const intptr_t rb = MLK_F(mlk_rw_short_rb)(n);
    for (intptr_t r0 = 0; r0 < rows; r0 += rb) {
        const intptr_t nr = MLK_F(mlk_rw_short_in)(x, t, r0, rows, n, rb);
        MLK_F(mlk_argmax_cols)(t, out + r0, n, nr, nr);
    }
}

void MLK_K(mlk_argmax)(const MLK_T *restrict x, int64_t *restrict out, intptr_t outer,
                       intptr_t n, intptr_t cols, intptr_t ld) {
    if (n <= 0) return;
    if (ld == 1 && cols == 1) {
        if (n < MLK_RW_SHORT) {
            MLK_F(mlk_argmax_short_rows)(x, out, outer, n);
        } else if (n < 128) {
            for (intptr_t r = 0; r < outer; r++) out[r] = MLK_F(mlk_argmax_short)(x + r * n, n);
        } else {
            for (intptr_t r = 0; r < outer; r++) out[r] = MLK_F(mlk_argmax_long)(x + r * n, n);
        }
        return;
    }
    for (intptr_t o = 0; o < outer; o++) {
        const MLK_T *xo = x + o * n * ld;
        for (intptr_t c0 = 0; c0 < cols; c0 += MLK_RW_CB) {
            const intptr_t cb = cols - c0 < MLK_RW_CB ? cols - c0 : MLK_RW_CB;
            MLK_F(mlk_argmax_cols)(xo + c0, out + o * ld + c0, n, cb, ld);
        }
    }
}
