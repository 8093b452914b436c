/*
 * mlk_loss_tmpl.h -- the fused cross-entropy over rows of logits, written
 * once over MLK_T / MLK_F / MLK_K on the row primitives of mlk_row.h (max,
 * exponentials with the maxima counted, log1p(R), short-row transposes).
 *
 * For a row z of n logits with label y, and per-row coefficients (a, b, c)
 * (mlk_xent_coef in mlk_row.h: from the reduction, the sample weight, the
 * class weights w and the label smoothing eps):
 *   loss = a lse(z) - b z_y - c sum_j w_j z_j
 *   grad = a softmax(z) - b onehot(y) - c w
 * eps = 0 and no class weights give a = b = s, c = 0: s (lse - z_y) and
 * s (p - onehot).
 *
 * One row: the max (read from memory), then the exponentials stored into
 * the gradient row with their sum (from L1/L2), then the gradient written
 * in place.  The logits are read once from memory and the gradient written
 * once; the gradient row may be the logits row (out=logits).  A row with
 * label ignore (ignore_index), or a = b = c = 0, gets a zero gradient and
 * loss 0 without reading its logits by the label.  coef is (rows, 3) with
 * cstride 3, or one (a, b, c) for every row with cstride 0 (no per-sample
 * or class weights: nothing rows-sized to allocate).
 */

/* a row that counts nothing: labelled ignore_index, or a = b = c = 0 */
MLK_INLINE int MLK_F(mlk_xent_skip)(int64_t y, int64_t ignore, const double *cr) {
    return y == ignore || (cr[0] == 0 && cr[1] == 0 && cr[2] == 0);
}

/* one gradient element from its stored exponential e (the sentinel -1 for
   a maximal element, whose exponential is the scale), q = a / sum and
   cw = c w_j: a softmax - c w (the label's -b is subtracted after) */
MLK_INLINE MLK_T MLK_F(mlk_xent_g)(MLK_T e, MLK_T q, MLK_T cw) {
    return (e < 0 ? MLK_RW_SCALE : e) * q - cw;
}

/* loss of one row from its max m, L = log1p(R), z_y and sum w z */
MLK_INLINE double MLK_F(mlk_xent_loss)(double a, double b, double c, MLK_T m, MLK_T L,
                                       MLK_T zy, double wz) {
    /* b ((m - z_y) + L) + (a - b) lse - c sum w z: exact-ish when a = b */
    const double lse = (double)m + (double)L;
    return b * (((double)m - (double)zy) + (double)L) + (a - b) * lse - c * wz;
}

static void MLK_F(mlk_xent_short)(const MLK_T *restrict z, const int64_t *restrict lab,
                                  const double *restrict coef, intptr_t cstride, int64_t ignore,
                                  const MLK_T *restrict w, MLK_T *restrict g,
                                  double *restrict loss, intptr_t rows, intptr_t n);

void MLK_K(mlk_xent)(const MLK_T *restrict z, const int64_t *restrict lab,
                     const double *restrict coef, intptr_t cstride, int64_t ignore,
                     const MLK_T *restrict w, MLK_T *restrict g, double *restrict loss,
                     intptr_t rows, intptr_t n) {
    if (n < MLK_RW_SHORT && rows > 1) {     /* short rows: vectorised across rows */
        MLK_F(mlk_xent_short)(z, lab, coef, cstride, ignore, w, g, loss, rows, n);
        return;
    }
    for (intptr_t r = 0; r < rows; r++) {
        const MLK_T *zr = z + r * n;
        MLK_T *gr = g ? g + r * n : NULL;
        const double *cr = coef + cstride * r;
        const double a = cr[0], b = cr[1], c = cr[2];
        if (MLK_F(mlk_xent_skip)(lab[r], ignore, cr)) {
            if (gr) for (intptr_t j = 0; j < n; j++) gr[j] = 0;
            loss[r] = 0.0;
            continue;
        }
        const int64_t y = lab[r];
        const MLK_T zy = zr[y];
        const MLK_T m = MLK_F(mlk_rw_max)(zr, n);
        double wz = 0.0;
        if (c != 0) {
            if (w) {
#pragma omp simd reduction(+:wz)
                for (intptr_t j = 0; j < n; j++) wz += (double)(w[j] * zr[j]);
            } else {
#pragma omp simd reduction(+:wz)
                for (intptr_t j = 0; j < n; j++) wz += (double)zr[j];
            }
        }
        if (!MLK_F(mlk_rw_finite)(m)) {
            /* +inf / all -inf / NaN rows: logsumexp as scipy, a NaN gradient */
            const MLK_T lse = MLK_F(mlk_rw_lse_special)(zr, n, 1, m);
            loss[r] = a * (double)lse - b * (double)zy - c * wz;
            if (gr) for (intptr_t j = 0; j < n; j++) gr[j] = (MLK_T)NAN;
            continue;
        }
        if (!gr) {
            const MLK_T L = MLK_F(mlk_log1p)(MLK_F(mlk_rw_row_rest)(zr, n, m, 0, NULL));
            loss[r] = MLK_F(mlk_xent_loss)(a, b, c, m, L, zy, wz);
            continue;
        }
        /* exponentials into the gradient row, summed blockwise from L1.
           A maximal element (e exactly the scale) is stored as the sentinel
           -1, so that the same sum gives R to full relative precision (the
           rest, minus one per sentinel) and the final pass can restore it,
           even in place, where z is gone. */
        double cnt;
        const double acc = MLK_F(mlk_rw_expsum)(zr, n, m, gr, 1, 1, (MLK_T)-1, 0, NULL, &cnt);
        const MLK_T L = MLK_F(mlk_rw_log_rest)(acc, cnt);
        loss[r] = MLK_F(mlk_xent_loss)(a, b, c, m, L, zy, wz);
        const MLK_T q = (MLK_T)(a / (acc + cnt * (double)MLK_RW_SCALE));
        if (c != 0) {
            const MLK_T cc = (MLK_T)c;
            if (w) {
                for (intptr_t j = 0; j < n; j++) gr[j] = MLK_F(mlk_xent_g)(gr[j], q, cc * w[j]);
            } else {
                for (intptr_t j = 0; j < n; j++) gr[j] = MLK_F(mlk_xent_g)(gr[j], q, cc);
            }
        } else {
            for (intptr_t j = 0; j < n; j++) gr[j] = MLK_F(mlk_xent_g)(gr[j], q, 0);
        }
        gr[y] -= (MLK_T)b;
    }
}

/* Short rows (n < MLK_RW_SHORT), where a row gives the vector loops
 * nothing to work on: a block of up to MLK_RW_CB rows is transposed into an
 * L1 buffer (n x nr) and the row kernel's math above runs vectorised across
 * the rows -- the max, the exponentials with the maximal elements marked by
 * the sentinel -1, R and L = log1p(R), the loss, the gradient -- and the
 * gradient is transposed back.  Rows whose max is not finite are left to
 * the row kernel (their logits are still intact when g is z). */
static void MLK_F(mlk_xent_short)(const MLK_T *restrict z, const int64_t *restrict lab,
                                  const double *restrict coef, intptr_t cstride, int64_t ignore,
                                  const MLK_T *restrict w, MLK_T *restrict g,
                                  double *restrict loss, intptr_t rows, intptr_t n) {
    MLK_T t[MLK_RW_SBLK];
    MLK_T m[MLK_RW_CB], q[MLK_RW_CB], cc[MLK_RW_CB], zy[MLK_RW_CB];
    double acc[MLK_RW_CB], cnt[MLK_RW_CB], wz[MLK_RW_CB], cmp[MLK_RW_CB];
    MLK_T fa[MLK_RW_CB], fc[MLK_RW_CB];
    unsigned char ok[MLK_RW_CB], sk[MLK_RW_CB];
    const intptr_t rb = MLK_F(mlk_rw_short_rb)(n);
    for (intptr_t r0 = 0; r0 < rows; r0 += rb) {
        const intptr_t nr = MLK_F(mlk_rw_short_in)(z, t, r0, rows, n, rb);
        const int64_t *lb = lab + r0;
        int any_c = 0, n_ok = 0;
        MLK_F(mlk_rw_col_max)(t, m, n, nr, nr);
        for (intptr_t r = 0; r < nr; r++) {
            const double *cr = coef + cstride * (r0 + r);
            sk[r] = (unsigned char)MLK_F(mlk_xent_skip)(lb[r], ignore, cr);
            ok[r] = !sk[r] && MLK_F(mlk_rw_finite)(m[r]);
            n_ok += ok[r];
            zy[r] = ok[r] ? t[lb[r] * nr + r] : (MLK_T)0;
            cc[r] = ok[r] ? (MLK_T)cr[2] : (MLK_T)0;
            any_c |= cc[r] != 0;
            if (!ok[r]) m[r] = 0;               /* keeps the passes below finite */
            wz[r] = 0.0;
        }
        if (n_ok == 0 && g) {
            for (intptr_t r = 0; r < nr; r++) {
                const double *cr = coef + cstride * (r0 + r);
                if (sk[r]) {
                    for (intptr_t j = 0; j < n; j++) g[(r0 + r) * n + j] = 0;
                    loss[r0 + r] = 0.0;
                } else {
                    MLK_K(mlk_xent)(z + (r0 + r) * n, lb + r, cr, cstride, ignore, w,
                                    g + (r0 + r) * n, loss + r0 + r, 1, n);
                }
            }
            continue;
        }
        if (any_c) {
            for (intptr_t j = 0; j < n; j++) {
                const MLK_T *tj = t + j * nr;
                const MLK_T wj = w ? w[j] : (MLK_T)1;
                for (intptr_t r = 0; r < nr; r++) wz[r] += (double)(wj * tj[r]);
            }
        }
        MLK_F(mlk_rw_col_expsum)(t, NULL, m, n, nr, nr, 2, 1, (MLK_T)-1, acc, cnt, cmp, fa, fc);
        for (intptr_t r = 0; r < nr; r++) {
            const double *cr = coef + cstride * (r0 + r);
            const MLK_T L = MLK_F(mlk_rw_log_rest)(acc[r], cnt[r]);
            if (ok[r]) loss[r0 + r] = MLK_F(mlk_xent_loss)(cr[0], cr[1], cr[2], m[r], L, zy[r], wz[r]);
            q[r] = (MLK_T)(cr[0] / (acc[r] + cnt[r] * (double)MLK_RW_SCALE));
        }
        if (!g) {
            for (intptr_t r = 0; r < nr; r++)
                if (!ok[r]) {
                    const double *cr = coef + cstride * (r0 + r);
                    if (sk[r])
                        loss[r0 + r] = 0.0;
                    else
                        MLK_K(mlk_xent)(z + (r0 + r) * n, lb + r, cr, cstride, ignore, w, NULL,
                                        loss + r0 + r, 1, n);
                }
            continue;
        }
        for (intptr_t j = 0; j < n; j++) {
            MLK_T *tj = t + j * nr;
            const MLK_T wj = w ? w[j] : (MLK_T)1;
            for (intptr_t r = 0; r < nr; r++)
                tj[r] = MLK_F(mlk_xent_g)(tj[r], q[r], cc[r] * wj);
        }
        for (intptr_t r = 0; r < nr; r++)
            if (ok[r]) t[lb[r] * nr + r] -= (MLK_T)coef[cstride * (r0 + r) + 1];
        /* back, row by row; the rows left out go through the row kernel */
        for (intptr_t r = 0; r < nr; r++) {
            MLK_T *gr = g + (r0 + r) * n;
            const double *cr = coef + cstride * (r0 + r);
            if (ok[r]) {
                for (intptr_t j = 0; j < n; j++) gr[j] = t[j * nr + r];
            } else if (sk[r]) {
                for (intptr_t j = 0; j < n; j++) gr[j] = 0;
                loss[r0 + r] = 0.0;
            } else {
                MLK_K(mlk_xent)(z + (r0 + r) * n, lb + r, cr, cstride, ignore, w, gr,
                                loss + r0 + r, 1, n);
            }
        }
    }
}

/* ======================================================================
 * Pointwise losses: an elementwise loss l(p, t) and its derivative dl/dp,
 * summed, with the per-element loss ("none") and the scaled gradient
 * written in the same pass.  Ops (mlk_kernels.h, MLK_L_*):
 *   SQ     l = d^2, d = p - t              l' = 2d
 *   ABS    l = |d|                         l' = sign(d) (0 at 0, NaN kept)
 *   HUBER  l = d^2/2 (|d| <= delta), delta (|d| - delta/2) beyond
 *                                          l' = clip(d, -delta, delta)
 *   BCE    l = -(t max(log p, -100) + (1-t) max(log1p(-p), -100))
 *                                          l' = (p - t) / max(p(1-p), 1e-12)
 *   BCEL   logits z = p:  l = c|z| + L log1p(e),  e = exp(-|z|),
 *          c = (1-t) for z >= 0, w t below, L = 1 + (w-1) t, w = pos_weight;
 *          (w = 1: max(z,0) - z t + log1p(e)); c|z| is 0 when c is 0, so
 *          t = 1, z = +inf gives 0, not inf*0.
 *                                          l' = ((1-t) a - w t b) / (1+e),
 *          a = 1, b = e for z >= 0 and a = e, b = 1 below: sigma(z) - t
 *          without the cancellation of 1 - sigma (t = 1, z = 37: -e^-37).
 *   SQ0 / ABS0: the penalties, d = p (t is not read).
 * The array is a run of rows of K elements (the leading axis of the
 * input); row r has weight sw[r] (sample_weight, or 1).  BCEL's pos_weight
 * is either the scalar lp->pws or the array pw with period P along a row
 * (index r*prs + k mod P).  A block of MLK_LBLK consecutive elements (at a
 * global index multiple of MLK_LBLK) has its weighted loss summed into
 * bsum[block]: the caller sums the blocks in order, so the total does not
 * depend on how the range was split over threads.
 *   loss "none":  lo[i] = lscale w_r l_i
 *   gradient:     g[i] = gscale w_r l'_i
 * ==================================================================== */
#ifndef MLK_LBLK
#define MLK_LBLK 2048
#endif

MLK_INLINE MLK_T MLK_F(mlk_l_sq)(MLK_T p, MLK_T t, MLK_T *gd) {
    const MLK_T d = p - t;
    *gd = d + d;
    return d * d;
}
MLK_INLINE MLK_T MLK_F(mlk_l_abs)(MLK_T p, MLK_T t, MLK_T *gd) {
    const MLK_T d = p - t;
    const MLK_T s = d > 0 ? (MLK_T)1 : (MLK_T)-1;
    *gd = d != 0 && d == d ? s : d;               /* 0 -> 0, NaN -> NaN */
    return MLK_F(mlk_abs)(d);
}
MLK_INLINE MLK_T MLK_F(mlk_l_huber)(MLK_T p, MLK_T t, MLK_T delta, MLK_T *gd) {
    const MLK_T d = p - t;
    const MLK_T a = MLK_F(mlk_abs)(d);
    const MLK_T c = d < -delta ? -delta : d;
    *gd = d > delta ? delta : c;                   /* NaN passes through */
    const MLK_T lin = delta * (a - (MLK_T)0.5 * delta);
    return a <= delta ? (MLK_T)0.5 * d * d : lin;       /* NaN: lin is NaN */
}
MLK_INLINE MLK_T MLK_F(mlk_l_bce)(MLK_T p, MLK_T t, MLK_T *gd) {
    MLK_T lp = MLK_F(mlk_log)(p);
    MLK_T lq = MLK_F(mlk_log1p)(-p);
    lp = lp < (MLK_T)-100 ? (MLK_T)-100 : lp;      /* NaN kept */
    lq = lq < (MLK_T)-100 ? (MLK_T)-100 : lq;
    MLK_T den = p * ((MLK_T)1 - p);
    den = den < (MLK_T)1e-12 ? (MLK_T)1e-12 : den;
    *gd = (p - t) / den;
    return -(t * lp + ((MLK_T)1 - t) * lq);
}
MLK_INLINE MLK_T MLK_F(mlk_l_bcel)(MLK_T z, MLK_T t, MLK_T w, MLK_T *gd) {
    const MLK_T az = MLK_F(mlk_abs)(z);
    const MLK_T e = MLK_F(mlk_expneg)(-az);        /* NaN propagates */
    const MLK_T one_t = (MLK_T)1 - t;
    const MLK_T wt = w * t;
    const MLK_T c = z >= 0 ? one_t : wt;
    const MLK_T cz = c * az;
    const MLK_T u = (MLK_T)1 + e;
    const MLK_T ru = (MLK_T)1 / u;                 /* shared by log1p and the gradient */
    const MLK_T lg = MLK_F(mlk_log1p_e)(e, ru);
    const MLK_T L = (MLK_T)1 + (w - (MLK_T)1) * t;
    const MLK_T a = z >= 0 ? (MLK_T)1 : e;
    const MLK_T b = z >= 0 ? e : (MLK_T)1;
    *gd = (one_t * a - wt * b) * ru;
    return (c == 0 ? (MLK_T)0 : cz) + L * lg;
}

/* one run of elements of one row: loss summed (weight applied by the caller),
   lo/g written with the row's scales.  pw: pos_weight for each element of
   the run (BCEL only) or NULL for the scalar pws. */
#define MLK_PL_RUN(EXPR) \
    if (g && lo) { \
        _Pragma("omp simd reduction(+:acc)") \
        for (intptr_t j = 0; j < len; j++) { \
            MLK_T gd; const MLK_T v = p[j], u = t[j]; const MLK_T l = (EXPR); \
            acc += (double)l; lo[j] = ls * l; g[j] = gs * gd; } \
    } else if (g) { \
        _Pragma("omp simd reduction(+:acc)") \
        for (intptr_t j = 0; j < len; j++) { \
            MLK_T gd; const MLK_T v = p[j], u = t[j]; const MLK_T l = (EXPR); \
            acc += (double)l; g[j] = gs * gd; } \
    } else if (lo) { \
        _Pragma("omp simd reduction(+:acc)") \
        for (intptr_t j = 0; j < len; j++) { \
            MLK_T gd; const MLK_T v = p[j], u = t[j]; const MLK_T l = (EXPR); \
            acc += (double)l; lo[j] = ls * l; (void)gd; } \
    } else { \
        _Pragma("omp simd reduction(+:acc)") \
        for (intptr_t j = 0; j < len; j++) { \
            MLK_T gd; const MLK_T v = p[j], u = t[j]; const MLK_T l = (EXPR); \
            acc += (double)l; (void)gd; } \
    } \
    break

MLK_INLINE double MLK_F(mlk_pl_run)(int op, const MLK_T *restrict p, const MLK_T *restrict t,
                                    const MLK_T *restrict pw, MLK_T *restrict lo,
                                    MLK_T *restrict g, intptr_t len, MLK_T ls, MLK_T gs,
                                    MLK_T delta, MLK_T pws) {
    double acc = 0.0;
    switch (op) {
    case MLK_L_SQ:    MLK_PL_RUN(MLK_F(mlk_l_sq)(v, u, &gd));
    case MLK_L_SQ0:   MLK_PL_RUN(((void)u, MLK_F(mlk_l_sq)(v, (MLK_T)0, &gd)));
    case MLK_L_ABS:   MLK_PL_RUN(MLK_F(mlk_l_abs)(v, u, &gd));
    case MLK_L_ABS0:  MLK_PL_RUN(((void)u, MLK_F(mlk_l_abs)(v, (MLK_T)0, &gd)));
    case MLK_L_HUBER: MLK_PL_RUN(MLK_F(mlk_l_huber)(v, u, delta, &gd));
    case MLK_L_BCE:   MLK_PL_RUN(MLK_F(mlk_l_bce)(v, u, &gd));
    case MLK_L_BCEL:
        if (pw) {
            MLK_PL_RUN(MLK_F(mlk_l_bcel)(v, u, pw[j], &gd));
        } else {
            MLK_PL_RUN(MLK_F(mlk_l_bcel)(v, u, pws, &gd));
        }
    default: break;
    }
    return acc;
}
#undef MLK_PL_RUN

/* elements [i0, i1) of the whole array (pointers are to element 0);
   i0 is a multiple of MLK_LBLK, bsum[b] gets block b's weighted sum */
void MLK_K(mlk_ploss)(int op, const MLK_T *restrict p, const MLK_T *restrict t,
                      MLK_T *restrict lo, MLK_T *restrict g, double *restrict bsum,
                      intptr_t i0, intptr_t i1, const mlk_lparams *lp) {
    const intptr_t K = lp->K > 0 ? lp->K : 1;
    const MLK_T *pw = (const MLK_T *)lp->pw;
    const intptr_t P = lp->P > 0 ? lp->P : 1;
    const MLK_T delta = (MLK_T)lp->delta, pws = (MLK_T)lp->pws;
    for (intptr_t b0 = i0; b0 < i1; b0 += MLK_LBLK) {
        const intptr_t b1 = b0 + MLK_LBLK < i1 ? b0 + MLK_LBLK : i1;
        double bs = 0.0;
        for (intptr_t i = b0; i < b1;) {
            const intptr_t r = i / K;
            intptr_t e = (r + 1) * K;
            e = e < b1 ? e : b1;                   /* the run stays in row r */
            const intptr_t k = i - r * K;
            const double w = lp->sw ? lp->sw[r] : 1.0;
            const MLK_T ls = (MLK_T)(lp->lscale * w), gs = (MLK_T)(lp->gscale * w);
            const MLK_T *pwr = NULL;
            if (pw) {                              /* and within one period of pos_weight */
                const intptr_t kp = k % P;
                const intptr_t e2 = i + (P - kp);
                e = e < e2 ? e : e2;
                pwr = pw + r * lp->prs + kp;
            }
            const double s = MLK_F(mlk_pl_run)(op, p + i, t + i, pwr, lo ? lo + i : NULL,
                                               g ? g + i : NULL, e - i, ls, gs, delta, pws);
            bs += w * s;
            i = e;
        }
        bsum[b0 / MLK_LBLK] = bs;
    }
}

/* ======================================================================
 * KL divergence along contiguous rows of n: row value sum_j k(p_j, q_j),
 * k = p (log p - log q) = p log(p/q), 0 where p == 0 (whatever q); with
 * log_q, q holds log q.  Gradient with respect to q: -p/q (0 where p == 0),
 * or -p with respect to log q; g row r is scaled by gs[r] (or gscale).
 * ==================================================================== */
MLK_INLINE MLK_T MLK_F(mlk_l_kl)(MLK_T p, MLK_T q, int log_q, MLK_T *gd) {
    const MLK_T lp = MLK_F(mlk_log)(p);
    MLK_T v;
    if (log_q) {
        v = p * (lp - q);
        *gd = -p;
    } else {
        const MLK_T r = p / q;
        /* log(p/q) has one rounding; the difference of logs is the fallback
           when the ratio under/overflows */
        const MLK_T lr = MLK_F(mlk_log)(r);
        const MLK_T ld = lp - MLK_F(mlk_log)(q);
        const int ok = r > (MLK_T)1e-30 && r < (MLK_T)1e30;
        v = p * (ok ? lr : ld);
        *gd = p == 0 ? (MLK_T)0 : -r;
    }
    return p == 0 ? (MLK_T)0 : v;
}

void MLK_K(mlk_kl)(const MLK_T *restrict p, const MLK_T *restrict q, int log_q,
                   MLK_T *restrict g, const double *restrict gsr, double gscale,
                   double *restrict rsum, intptr_t rows, intptr_t n) {
    for (intptr_t r = 0; r < rows; r++) {
        const MLK_T *pr = p + r * n, *qr = q + r * n;
        double acc = 0.0;
        if (g) {
            MLK_T *gr = g + r * n;
            const MLK_T gs = (MLK_T)(gsr ? gsr[r] * gscale : gscale);
            if (log_q) {
#pragma omp simd reduction(+:acc)
                for (intptr_t j = 0; j < n; j++) {
                    MLK_T gd; acc += (double)MLK_F(mlk_l_kl)(pr[j], qr[j], 1, &gd); gr[j] = gs * gd;
                }
            } else {
#pragma omp simd reduction(+:acc)
                for (intptr_t j = 0; j < n; j++) {
                    MLK_T gd; acc += (double)MLK_F(mlk_l_kl)(pr[j], qr[j], 0, &gd); gr[j] = gs * gd;
                }
            }
        } else if (log_q) {
#pragma omp simd reduction(+:acc)
            for (intptr_t j = 0; j < n; j++) { MLK_T gd; acc += (double)MLK_F(mlk_l_kl)(pr[j], qr[j], 1, &gd); }
        } else {
#pragma omp simd reduction(+:acc)
            for (intptr_t j = 0; j < n; j++) { MLK_T gd; acc += (double)MLK_F(mlk_l_kl)(pr[j], qr[j], 0, &gd); }
        }
        rsum[r] = acc;
    }
}
