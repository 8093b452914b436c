/*
 * mlk_row.h -- the row primitives of the softmax family (mlk_rowwise_tmpl.h)
 * and of the cross-entropy (mlk_loss_tmpl.h), written once.
 *
 * Two parts:
 *   - type-free (guarded, plain C): the block sizes and the cross-entropy
 *     coefficients mlk_xent_coef, which the Cython layer includes too;
 *   - per element type (only where MLK_T / MLK_F are defined, i.e. inside
 *     mlk_kernels_body.h, once for float32 and once for float64): max, sum,
 *     the exponentials shifted by the max with the maxima counted, the
 *     log1p(R) finish, the column (strided) forms of the same, the short-row
 *     transposes, and the overflow-safe row sum of the backward.
 *
 * The exponentials: e_j = 2^S e^{x_j - m} (mlk_expneg_scaled: an exact
 * scale, one rounding), m the max of the row.  R = sum_{x_j < m} e^{x_j-m}
 * + (#max - 1) excludes the maximal elements exactly (their e is 1), so
 * that logsumexp = m + log1p(R) and log_softmax of a dominant element, -R,
 * keep full relative precision (SciPy issue 18295).
 *
 * Every primitive is MLK_INLINE and takes its mode as int flags that are
 * constants at each call, so each call compiles to the one simple loop the
 * vectoriser sees today (check: MLKERN_VEC_REPORT=1).
 */
#ifndef MLK_ROW_H
#define MLK_ROW_H

#define MLK_RW_CB 256          /* columns per block in column mode */
#define MLK_RW_SHORT 64        /* rows shorter than this: block mode */
#define MLK_RW_SBLK 2048       /* elements per block of short rows */
#define MLK_RW_ABLK 256        /* argmax: elements per scan block */
#define MLK_RW_EBLK 1024       /* row exponentials buffered per block */
/* Contiguous rows of at least MLK_RW_LONG elements are cut into chunks of
   MLK_RW_LCH (the last one shorter), whose partials are combined in chunk
   order (mlk_rowlong): the cut depends on n only, so the result is the same
   for every team size.  The cut is made by the driver (_rowwise.pxi: ROW_LCH,
   and _long_row_n, which set_long_row changes for tests); these are its
   defaults, for reference. */
#define MLK_RW_LONG 131072
#define MLK_RW_LCH 16384
/* Column mode sums: MLK_RW_JB consecutive terms of a column are added in the
 * working precision, and these partial sums in double: at most 3 float32
 * roundings on any term (a row sum within 3 eps + the scale's 1.5), one
 * conversion per 4 elements instead of one per element. */
#define MLK_RW_JB 4
#define MLK_RW_RB 64           /* rows per block of vectorised log1p */
#define MLK_RW_PB 64           /* float64 row sums: block of the compensated sum */
/* backward row sums (float64): a sum below this is trusted (mlk_rw_bsum_redo) */
#define MLK_RW_BIG 0x1p1020

/* The cross-entropy's coefficients of one row, the only place they are
 * computed (the fast path in _loss.pxi and losses.py's full path call it):
 *   loss = a lse(z) - b z_y - c sum_j w_j z_j
 *   grad = a softmax(z) - b onehot(y) - c w
 * a = s ((1-eps) w_y + eps W/n), written s (w_y + eps (W/n - w_y)) so that it
 * is exactly s without class weights (w_y = W/n = 1); b = s (1-eps) w_y,
 * c = s eps/n; s = the row's sample weight / the mean's denominator,
 * wmean = W/n the mean class weight, eps the label smoothing (PyTorch's
 * definition). */
static inline void mlk_xent_coef(double s, double wy, double wmean, double eps, double n,
                                 double *abc) {
    abc[0] = s * (wy + eps * (wmean - wy));
    abc[1] = s * ((1.0 - eps) * wy);
    abc[2] = s * (eps / n);
}

#endif /* MLK_ROW_H */

#ifdef MLK_T

#define MLK_RW_SCALE MLK_F(MLK_EXPNEG_SCALE)
#define MLK_RW_UNSCALE MLK_F(MLK_EXPNEG_UNSCALE)

/* ---- contiguous rows ---------------------------------------------------- */

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
   the scipy.special logsumexp, computed directly */
static MLK_T MLK_F(mlk_rw_lse_special)(const MLK_T *x, intptr_t n, intptr_t ld, MLK_T m) {
    int nan = 0;
    for (intptr_t j = 0; j < n; j++) nan |= x[j * ld] != x[j * ld];
    if (nan || m != m) return (MLK_T)NAN;
    return m;                   /* +inf, or -inf for an all -inf (or empty) row */
}

/* one block of nb exponentials of a row shifted by its max m into e.  With
   `count` a maximal element (x_j == m, e exactly the scale) is stored as
   `mark` instead and counted (the count is returned: < 2^24, exact in
   float); with `shift` the shifted row x - m is stored into d on the way */
MLK_INLINE MLK_T MLK_F(mlk_rw_exp_block)(const MLK_T *restrict x, MLK_T *restrict e,
                                         MLK_T *restrict d, intptr_t nb, MLK_T m, int count,
                                         int shift, MLK_T mark) {
    if (!count) {
        for (intptr_t j = 0; j < nb; j++) e[j] = MLK_F(mlk_expneg_scaled)(x[j] - m);
        return 0;
    }
    MLK_T bc = 0;
#pragma omp simd reduction(+:bc)
    for (intptr_t j = 0; j < nb; j++) {
        const MLK_T v = x[j] - m;
        if (shift) d[j] = v;
        e[j] = v == 0 ? mark : MLK_F(mlk_expneg_scaled)(v);
        bc += v == 0 ? (MLK_T)1 : (MLK_T)0;
    }
    return bc;
}

/* sum (in double) of the exponentials of the row x (n) shifted by its max m,
   a block of MLK_RW_EBLK at a time: each block's exponentials stored (to the
   row e + j0 when `advance`, else to the buffer e of MLK_RW_EBLK reused by
   every block) and summed back from L1.  With `count` (see
   mlk_rw_exp_block) the maxima are left out of the sum and counted into
   *cnt; with `shift` the row x - m is stored into d. */
MLK_INLINE double MLK_F(mlk_rw_expsum)(const MLK_T *restrict x, intptr_t n, MLK_T m,
                                       MLK_T *restrict e, int advance, int count, MLK_T mark,
                                       int shift, MLK_T *restrict d, double *cnt) {
    double acc = 0.0, c = 0.0;
    for (intptr_t j0 = 0; j0 < n; j0 += MLK_RW_EBLK) {
        const intptr_t nb = n - j0 < MLK_RW_EBLK ? n - j0 : MLK_RW_EBLK;
        MLK_T *eb = advance ? e + j0 : e;
        const MLK_T bc = MLK_F(mlk_rw_exp_block)(x + j0, eb, shift ? d + j0 : NULL, nb, m,
                                                 count, shift, mark);
        acc += MLK_F(mlk_rw_sum)(eb, nb);
        c += (double)bc;
    }
    *cnt = c;
    return acc - c * (double)mark;      /* the marks taken out again */
}

/* R from the sum of the non-maximal exponentials and the count of maxima */
MLK_INLINE MLK_T MLK_F(mlk_rw_rest)(double acc, double cnt) {
    return (MLK_T)(acc * (double)MLK_RW_UNSCALE + (cnt - 1.0));
}

/* log1p(R): logsumexp - m */
MLK_INLINE MLK_T MLK_F(mlk_rw_log_rest)(double acc, double cnt) {
    return MLK_F(mlk_log1p)(MLK_F(mlk_rw_rest)(acc, cnt));
}

/* R of a contiguous row for a finite max m; with `shift` the shifted row
   x - m is stored into d on the way (log_softmax: the output's first write
   overlaps the exponentials) */
MLK_INLINE MLK_T MLK_F(mlk_rw_row_rest)(const MLK_T *restrict x, intptr_t n, MLK_T m, int shift,
                                        MLK_T *restrict d) {
    MLK_T buf[MLK_RW_EBLK];
    double cnt;
    const double acc = MLK_F(mlk_rw_expsum)(x, n, m, buf, 0, 1, 0, shift, d, &cnt);
    return MLK_F(mlk_rw_rest)(acc, cnt);
}

/* ---- columns: vectorised across cb contiguous columns, (j, c) at x[j*ld + c] -- */

MLK_INLINE void MLK_F(mlk_rw_col_max)(const MLK_T *restrict x, MLK_T *restrict m, intptr_t n,
                                      intptr_t cb, intptr_t ld) {
    for (intptr_t c = 0; c < cb; c++) m[c] = (MLK_T)-INFINITY;
    for (intptr_t j = 0; j < n; j++) {
        const MLK_T *xr = x + j * ld;
        for (intptr_t c = 0; c < cb; c++) m[c] = xr[c] > m[c] ? xr[c] : m[c];
    }
}

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

/* per column c: acc[c] = the sum of the exponentials of the column shifted
   by m[c], MLK_RW_JB terms in the working precision, those in double
   (mlk_rw_flush).  store 1: the exponentials are written to e (element
   (j, c) at e[j*ld + c]), 2: over x itself (e unused), 0: not kept.  With
   `count` the maxima are left out, counted into cnt[c] and stored as `mark`.
   The scratch arrays (cb each) are the caller's: declared here, gcc shares
   their stack slots with the caller's and the frame changes (measured:
   logsumexp of (2000, 40) float32 on AVX-512 0.075 -> 0.084 ms with the
   same loop code; probably 4 KiB aliasing between the accumulators and the
   transposed rows). */
MLK_INLINE void MLK_F(mlk_rw_col_expsum)(const MLK_T *restrict x, MLK_T *restrict e,
                                         const MLK_T *restrict m, intptr_t n, intptr_t cb,
                                         intptr_t ld, int store, int count, MLK_T mark,
                                         double *restrict acc, double *restrict cnt,
                                         double *restrict cmp, MLK_T *restrict fa,
                                         MLK_T *restrict fc) {
    for (intptr_t c = 0; c < cb; c++) { acc[c] = 0.0; cnt[c] = 0.0; cmp[c] = 0.0; }
    for (intptr_t j0 = 0; j0 < n; j0 += MLK_RW_JB) {
        const intptr_t j1 = j0 + MLK_RW_JB < n ? j0 + MLK_RW_JB : n;
        for (intptr_t c = 0; c < cb; c++) { fa[c] = 0; fc[c] = 0; }
        for (intptr_t j = j0; j < j1; j++) {
            const MLK_T *xr = x + j * ld;
            MLK_T *er = store == 2 ? (MLK_T *)xr : store ? e + j * ld : NULL;
            for (intptr_t c = 0; c < cb; c++) {
                const MLK_T d = xr[c] - m[c];
                const MLK_T v = MLK_F(mlk_expneg_scaled)(d);
                const int mx = count && d == 0;
                if (store) er[c] = mx ? mark : v;
                fa[c] += mx ? (MLK_T)0 : v;
                if (count) fc[c] += mx ? (MLK_T)1 : (MLK_T)0;
            }
        }
        MLK_F(mlk_rw_flush)(acc, cmp, fa, cb);
        if (count)
            for (intptr_t c = 0; c < cb; c++) cnt[c] += (double)fc[c];
    }
    for (intptr_t c = 0; c < cb; c++) acc[c] += cmp[c];
}

/* ---- short rows --------------------------------------------------------------
 * Rows shorter than MLK_RW_SHORT give the vector loops nothing to work on.
 * The drivers take blocks of up to mlk_rw_short_rb(n) rows, transposed into
 * an L1 buffer (n x nr) by mlk_rw_short_in; the column primitives above then
 * work vectorised across the rows, and mlk_rw_tr_out transposes back.
 *   for (intptr_t r0 = 0; r0 < rows; r0 += rb) {
 *       const intptr_t nr = mlk_rw_short_in(x, t, r0, rows, n, rb);
 *       ... column work on t (n x nr, ld = nr) ...
 *   }
 */
MLK_INLINE intptr_t MLK_F(mlk_rw_short_rb)(intptr_t n) {
    const intptr_t rb = MLK_RW_SBLK / n;
    return rb > MLK_RW_CB ? MLK_RW_CB : rb;
}

/* rows [r0, r0 + nr) of x (rows of n) -> t (n x nr); returns nr (the
   strided reads are scalar: gcc 12 does not vectorise them, not even for
   a constant n) */
MLK_INLINE intptr_t MLK_F(mlk_rw_short_in)(const MLK_T *restrict x, MLK_T *restrict t, intptr_t r0,
                                           intptr_t rows, intptr_t n, intptr_t rb) {
    const intptr_t nr = rows - r0 < rb ? rows - r0 : rb;
    const MLK_T *xb = x + r0 * n;
    for (intptr_t j = 0; j < n; j++)
        for (intptr_t r = 0; r < nr; r++) t[j * nr + r] = xb[r * n + j];
    return nr;
}

/* t (n x nr) -> nr rows of n at yb */
MLK_INLINE void MLK_F(mlk_rw_tr_out)(const MLK_T *restrict t, MLK_T *restrict yb, intptr_t nr,
                                     intptr_t n) {
    for (intptr_t r = 0; r < nr; r++)
        for (intptr_t j = 0; j < n; j++) yb[r * n + j] = t[j * nr + r];
}

/* ---- the backward's row sum ----------------------------------------------
 * softmax_backward sums t_j = g_j y_j, log_softmax_backward t_j = g_j, in
 * double.  In float64 a partial sum can overflow where another order (the
 * row and the column kernels add in different orders) does not, and FMA
 * contraction keeps products exact that a plain multiply rounds to inf: the
 * NaN/inf pattern of the result would depend on the layout and the ISA
 * level.  An overflow leaves the sum +-inf or NaN (it never comes back), so
 * a sum acc that is below MLK_RW_BIG in magnitude is right up to rounding
 * in every order (its true value is finite, far from the range's end), and
 * any other is summed again by mlk_rw_bsum_safe, the same code and order
 * for every layout: the patterns agree, at the cost of one compare per row.
 * float32 needs nothing: its products are rounded in float32 (inf the same
 * in every order) and their double sum cannot overflow. */

/* sum_j g_j s_j (s == NULL: sum_j g_j), elements at stride ld, in index
   order with the exponent kept apart: NaN if a term is NaN or +inf and -inf
   meet, +-inf if a term is infinite or the exact sum overflows, else the
   sum (one rounding per term). */
static double MLK_F(mlk_rw_bsum_safe)(const MLK_T *g, const MLK_T *s, intptr_t n, intptr_t ld) {
    double sp = 0.0;                    /* the terms with a factor inf or NaN */
    double acc = 0.0;                   /* the finite terms, times 2^-E */
    int E = -4000;
    for (intptr_t j = 0; j < n; j++) {
        const double a = (double)g[j * ld], b = s ? (double)s[j * ld] : 1.0;
        if (!(a - a == 0) || !(b - b == 0)) {
            sp += a * b;
            continue;
        }
        int ea, eb;
        const double p = frexp(a, &ea) * frexp(b, &eb);     /* exact scale, |p| < 1 */
        if (p == 0) continue;
        const int e = ea + eb;
        if (e > E) {
            acc = ldexp(acc, E - e);
            E = e;
        }
        acc += ldexp(p, e - E);
    }
    return sp != 0 ? sp : ldexp(acc, E);     /* sp: +-inf or NaN */
}

/* whether the kernel's row sum acc must be summed again (see above) */
MLK_INLINE int MLK_F(mlk_rw_bsum_redo)(double acc) {
    return sizeof(MLK_T) == 8 && !(fabs(acc) < MLK_RW_BIG);
}

#endif /* MLK_T */
