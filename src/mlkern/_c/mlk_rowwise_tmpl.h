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
 * Numerics, shared by every caller:
 *   m = max of the row (NaN ignored here; a NaN still reaches the sum).
 *   e_j = 2^S e^{x_j - m} (mlk_expneg_scaled: exact scale, one rounding).
 *   softmax      y_j = e_j * (1 / sum e)        sums accumulated in double
 *   logsumexp    m + log1p(R),  R = sum_{x_j < m} e^{x_j-m} + (#max - 1)
 *   log_softmax  (x_j - m) - log1p(R)
 * R excludes the maximal elements exactly (their e is 1), so
 * logsumexp([0, -40]) = e^-40 and log_softmax of a dominant element is
 * -R, both to full relative precision (SciPy issue 18295).
 * Rows whose max is not finite (+inf, or every element -inf/NaN) follow
 * scipy.special: softmax NaN; logsumexp +inf, or -inf for an all -inf row,
 * or NaN if the row holds a NaN; log_softmax x_j - logsumexp with the
 * shift taken as 0 (so [inf, 0] -> [nan, -inf]).  These rows are rare and
 * are patched after the branch-free main loops by a scalar routine.
 *
 * `restrict` is used although an output may equal an input (in-place):
 * every pass reads and writes the same index, never a partial overlap.
 */
#ifndef MLK_RW_CB
#define MLK_RW_CB 256          /* columns per block in column mode */
#define MLK_RW_SHORT 64        /* rows shorter than this: block mode */
#define MLK_RW_SBLK 2048       /* elements per block of short rows */
#define MLK_RW_ABLK 256        /* argmax: elements per scan block */
#define MLK_RW_EBLK 1024       /* logsumexp: exponentials buffered per block */
/* Column mode sums: MLK_RW_JB consecutive terms of a column are added in the
 * working precision, and these partial sums in double: at most 3 float32
 * roundings on any term (a row sum within 3 eps + the scale's 1.5), one
 * conversion per 4 elements instead of one per element. */
#define MLK_RW_JB 4
#define MLK_RW_RB 64           /* rows per block of vectorised log1p */
#define MLK_RW_PB 64           /* float64 row sums: block of the compensated sum */
#endif

#define MLK_RW_SCALE MLK_F(MLK_EXPNEG_SCALE)
#define MLK_RW_UNSCALE MLK_F(MLK_EXPNEG_UNSCALE)

/* ---- shared row pieces ------------------------------------------------ */

MLK_INLINE MLK_T MLK_F(mlk_rw_max)(const MLK_T *restrict x, intptr_t n) {
    MLK_T m = (MLK_T)-INFINITY;
#pragma omp simd reduction(max:m)
    for (intptr_t j = 0; j < n; j++) m = x[j] > m ? x[j] : m;
    return m;
}

/* sum in double of a row (float32 included).  The exponentials are
 * stored first and summed by this separate pass from L1/L2: converting
 * inside the exp loop costs more (measured, float32 (4096, 1000) on
 * AVX-512: exp loop with a double sum 0.42 ns/el, exp loop then this pass
 * 0.32, a float sum 0.29 -- but a float sum can be off by n/16 eps). */
MLK_INLINE double MLK_F(mlk_rw_sum)(const MLK_T *restrict y, intptr_t n) {
    if (sizeof(MLK_T) == 4 || n <= MLK_RW_PB) {
        double s = 0.0;
#pragma omp simd reduction(+:s)
        for (intptr_t j = 0; j < n; j++) s += (double)y[j];
        return s;
    }
    /* float64: vector sums of blocks of MLK_RW_PB, and the block sums
       added with a compensation (Neumaier), so that long rows stay within
       eps (4 + log2 n) */
    double s = 0.0, c = 0.0;
    for (intptr_t j0 = 0; j0 < n; j0 += MLK_RW_PB) {
        const intptr_t j1 = j0 + MLK_RW_PB < n ? j0 + MLK_RW_PB : n;
        double b = 0.0;
#pragma omp simd reduction(+:b)
        for (intptr_t j = j0; j < j1; j++) b += (double)y[j];
        const double t = s + b;
        c += s >= b ? (s - t) + b : (b - t) + s;
        s = t;
    }
    return s + c;
}

MLK_INLINE int MLK_F(mlk_rw_finite)(MLK_T m) {
    return m - m == 0;          /* false for +-inf and NaN */
}

/* a row (contiguous, or strided by ld) whose max m is not finite:
   the scipy.special results, computed directly */
static MLK_T MLK_F(mlk_rw_lse_special)(const MLK_T *x, intptr_t n, intptr_t ld, MLK_T m) {
    int nan = 0;
    for (intptr_t j = 0; j < n; j++) nan |= x[j * ld] != x[j * ld];
    if (nan || m != m) return (MLK_T)NAN;
    return m;                   /* +inf, or -inf for an all -inf (or empty) row */
}

static void MLK_F(mlk_rw_logsm_special)(const MLK_T *x, MLK_T *y, intptr_t n, intptr_t ld, MLK_T m) {
    const MLK_T L = MLK_F(mlk_rw_lse_special)(x, n, ld, m);
    for (intptr_t j = 0; j < n; j++) y[j * ld] = x[j * ld] - L;
}

/* ---- row mode, long rows ------------------------------------------------ */

static void MLK_F(mlk_rw_softmax_row)(const MLK_T *restrict x, MLK_T *restrict y, intptr_t n) {
    const MLK_T m = MLK_F(mlk_rw_max)(x, n);
    /* exponentials, then their sum from L1, a block at a time */
    double s = 0.0;
    for (intptr_t j0 = 0; j0 < n; j0 += MLK_RW_EBLK) {
        const intptr_t nb = n - j0 < MLK_RW_EBLK ? n - j0 : MLK_RW_EBLK;
        const MLK_T *xb = x + j0;
        MLK_T *yb = y + j0;
        for (intptr_t j = 0; j < nb; j++) yb[j] = MLK_F(mlk_expneg_scaled)(xb[j] - m);
        s += MLK_F(mlk_rw_sum)(yb, nb);
    }
    const MLK_T r = (MLK_T)(1.0 / s);
    for (intptr_t j = 0; j < n; j++) y[j] *= r;
}

/* R of the row (see the header) for a finite max m; with dout != NULL
   (log_softmax) the shifted row x - m is stored there on the way, so that
   the output's first write overlaps the exponentials */
MLK_INLINE double MLK_F(mlk_rw_rest)(const MLK_T *restrict x, intptr_t n, MLK_T m,
                                    MLK_T *restrict dout) {
    MLK_T buf[MLK_RW_EBLK];
    double acc = 0.0, cnt = 0.0;
    for (intptr_t j0 = 0; j0 < n; j0 += MLK_RW_EBLK) {
        const intptr_t nb = n - j0 < MLK_RW_EBLK ? n - j0 : MLK_RW_EBLK;
        const MLK_T *xb = x + j0;
        MLK_T bc = 0;                       /* counts < 2^24: exact in float */
        if (dout) {
            MLK_T *db = dout + j0;
#pragma omp simd reduction(+:bc)
            for (intptr_t j = 0; j < nb; j++) {
                const MLK_T d = xb[j] - m;
                db[j] = d;
                buf[j] = d == 0 ? (MLK_T)0 : MLK_F(mlk_expneg_scaled)(d);
                bc += d == 0 ? (MLK_T)1 : (MLK_T)0;
            }
        } else {
#pragma omp simd reduction(+:bc)
            for (intptr_t j = 0; j < nb; j++) {
                const MLK_T d = xb[j] - m;
                buf[j] = d == 0 ? (MLK_T)0 : MLK_F(mlk_expneg_scaled)(d);
                bc += d == 0 ? (MLK_T)1 : (MLK_T)0;
            }
        }
        acc += MLK_F(mlk_rw_sum)(buf, nb);
        cnt += (double)bc;
    }
    return acc * (double)MLK_RW_UNSCALE + (cnt - 1.0);
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
            R[r] = (MLK_T)MLK_F(mlk_rw_rest)(xr, n, mr, op == MLK_LOG_SOFTMAX ? y + (r0 + r) * n : NULL);
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

/* acc += fa per column; float64 with a Neumaier compensation in cmp (a
   column is a sequential sum over the reduced axis, whose error would grow
   with n), float32 plainly (the double has 29 spare bits) */
MLK_INLINE void MLK_F(mlk_rw_flush)(double *restrict acc, double *restrict cmp,
                                    const MLK_T *restrict fa, intptr_t cb) {
    if (sizeof(MLK_T) == 4) {
        for (intptr_t c = 0; c < cb; c++) acc[c] += (double)fa[c];
        return;
    }
    for (intptr_t c = 0; c < cb; c++) {
        const double a = acc[c], b = (double)fa[c], t = a + b;
        cmp[c] += a >= b ? (a - t) + b : (b - t) + a;
        acc[c] = t;
    }
}

/* one (n x cb) slab: element (j, c) at x[j*ld + c]; logsumexp writes y[c] */
static void MLK_F(mlk_rw_cols)(int op, const MLK_T *restrict x, MLK_T *restrict y,
                               intptr_t n, intptr_t cb, intptr_t ld) {
    MLK_T m[MLK_RW_CB];
    double acc[MLK_RW_CB];
    double cnt[MLK_RW_CB];
    MLK_T q[MLK_RW_CB];
    for (intptr_t c = 0; c < cb; c++) m[c] = (MLK_T)-INFINITY;
    for (intptr_t j = 0; j < n; j++) {
        const MLK_T *xr = x + j * ld;
        for (intptr_t c = 0; c < cb; c++) m[c] = xr[c] > m[c] ? xr[c] : m[c];
    }
    double cmp[MLK_RW_CB];
    for (intptr_t c = 0; c < cb; c++) { acc[c] = 0.0; cnt[c] = 0.0; cmp[c] = 0.0; }
    MLK_T fa[MLK_RW_CB], fc[MLK_RW_CB];
    if (op == MLK_SOFTMAX) {
        for (intptr_t j0 = 0; j0 < n; j0 += MLK_RW_JB) {
            const intptr_t j1 = j0 + MLK_RW_JB < n ? j0 + MLK_RW_JB : n;
            for (intptr_t c = 0; c < cb; c++) fa[c] = 0;
            for (intptr_t j = j0; j < j1; j++) {
                const MLK_T *xr = x + j * ld;
                MLK_T *yr = y + j * ld;
                for (intptr_t c = 0; c < cb; c++) {
                    const MLK_T e = MLK_F(mlk_expneg_scaled)(xr[c] - m[c]);
                    yr[c] = e;
                    fa[c] += e;
                }
            }
            MLK_F(mlk_rw_flush)(acc, cmp, fa, cb);
        }
        for (intptr_t c = 0; c < cb; c++) q[c] = (MLK_T)(1.0 / (acc[c] + cmp[c]));
        for (intptr_t j = 0; j < n; j++) {
            MLK_T *yr = y + j * ld;
            for (intptr_t c = 0; c < cb; c++) yr[c] *= q[c];
        }
        return;
    }
    for (intptr_t j0 = 0; j0 < n; j0 += MLK_RW_JB) {
        const intptr_t j1 = j0 + MLK_RW_JB < n ? j0 + MLK_RW_JB : n;
        for (intptr_t c = 0; c < cb; c++) { fa[c] = 0; fc[c] = 0; }
        for (intptr_t j = j0; j < j1; j++) {
            const MLK_T *xr = x + j * ld;
            for (intptr_t c = 0; c < cb; c++) {
                const MLK_T d = xr[c] - m[c];
                const MLK_T e = MLK_F(mlk_expneg_scaled)(d);
                fa[c] += d == 0 ? (MLK_T)0 : e;
                fc[c] += d == 0 ? (MLK_T)1 : (MLK_T)0;
            }
        }
        MLK_F(mlk_rw_flush)(acc, cmp, fa, cb);
        for (intptr_t c = 0; c < cb; c++) cnt[c] += (double)fc[c];
    }
    for (intptr_t c = 0; c < cb; c++) acc[c] += cmp[c];
    for (intptr_t c = 0; c < cb; c++)
        q[c] = MLK_F(mlk_log1p)((MLK_T)(acc[c] * (double)MLK_RW_UNSCALE + (cnt[c] - 1.0)));
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

/* ---- row mode, short rows ------------------------------------------------
 * Rows shorter than MLK_RW_SHORT give the vector loops nothing to work on.
 * A block of up to MLK_RW_CB rows is transposed into a stack buffer
 * (n x rows), the column kernel above
 * does the work vectorised across the rows, and the result is transposed
 * back.  Both transposes stay in L1. */
/* nr rows of n -> the (n x nr) buffer t (the strided reads are scalar:
   gcc 12 does not vectorise them, not even for a constant n) */
MLK_INLINE void MLK_F(mlk_rw_tr_in)(const MLK_T *restrict xb, MLK_T *restrict t,
                                    intptr_t nr, intptr_t n) {
    for (intptr_t j = 0; j < n; j++)
        for (intptr_t r = 0; r < nr; r++) t[j * nr + r] = xb[r * n + j];
}

static void MLK_F(mlk_rw_short)(int op, const MLK_T *restrict x, MLK_T *restrict y,
                                intptr_t rows, intptr_t n) {
    MLK_T t[MLK_RW_SBLK];
    MLK_T u[MLK_RW_SBLK];
    intptr_t rb = MLK_RW_SBLK / n;
    if (rb > MLK_RW_CB) rb = MLK_RW_CB;
    for (intptr_t r0 = 0; r0 < rows; r0 += rb) {
        const intptr_t nr = rows - r0 < rb ? rows - r0 : rb;
        const MLK_T *xb = x + r0 * n;
        MLK_F(mlk_rw_tr_in)(xb, t, nr, n);
        if (op == MLK_LOGSUMEXP) {
            MLK_F(mlk_rw_cols)(op, t, y + r0, n, nr, nr);
            continue;
        }
        MLK_F(mlk_rw_cols)(op, t, u, n, nr, nr);
        MLK_T *yb = y + r0 * n;
        for (intptr_t r = 0; r < nr; r++)
            for (intptr_t j = 0; j < n; j++) yb[r * n + j] = u[j * nr + r];
    }
}

/* ---- backward ------------------------------------------------------------ */

/* softmax:      out = y (g - sum g y)
   log_softmax:  out = g - e^y sum g
   The products g y are rounded in the working precision (0.5 eps each)
   and summed in double: one conversion per element, not two. */
static void MLK_F(mlk_rw_bwd_row)(int op, const MLK_T *restrict g, const MLK_T *restrict s,
                                  MLK_T *restrict o, intptr_t n, int stream) {
    double acc = 0.0;
    MLK_T buf[MLK_RW_CB];
    if (op == MLK_SOFTMAX_BWD) {
#pragma omp simd reduction(+:acc)
        for (intptr_t j = 0; j < n; j++) acc += (double)(g[j] * s[j]);
        const MLK_T dot = (MLK_T)acc;
        if (!stream) {
            for (intptr_t j = 0; j < n; j++) o[j] = s[j] * (g[j] - dot);
            return;
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
        const MLK_T sg = (MLK_T)acc;
        if (pos) {
            for (intptr_t j = 0; j < n; j++) o[j] = g[j] - MLK_F(mlk_exp)(s[j]) * sg;
        } else {
            for (intptr_t j = 0; j < n; j++) o[j] = g[j] - MLK_F(mlk_expneg)(s[j]) * sg;
        }
    }
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
        for (intptr_t c = 0; c < cb; c++) q[c] = (MLK_T)acc[c];
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
        for (intptr_t c = 0; c < cb; c++) q[c] = (MLK_T)acc[c];
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
                MLK_F(mlk_rw_bwd_row)(op, a + r * n, b + r * n, y + r * n, n, st);
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
    intptr_t rb = MLK_RW_SBLK / n;
    if (rb > MLK_RW_CB) rb = MLK_RW_CB;
    for (intptr_t r0 = 0; r0 < rows; r0 += rb) {
        const intptr_t nr = rows - r0 < rb ? rows - r0 : rb;
        const MLK_T *xb = x + r0 * n;
        MLK_F(mlk_rw_tr_in)(xb, t, nr, n);
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
