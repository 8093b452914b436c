/*
 * mlk_loss_tmpl.h -- the fused cross-entropy over rows of logits, written
 * once over MLK_T / MLK_F / MLK_K (after mlk_rowwise_tmpl.h, whose max,
 * sum and log1p-form pieces it reuses).
 *
 * For a row z of n logits with label y, and per-row coefficients (a, b, c)
 * prepared by the Python layer from the reduction, the sample weight, the
 * class weights w and the label smoothing eps (PyTorch's definition):
 *   loss = a lse(z) - b z_y - c sum_j w_j z_j
 *   grad = a softmax(z) - b onehot(y) - c w
 * with a = s((1-eps) w_y + eps W/n), b = s(1-eps) w_y, c = s eps/n,
 * W = sum w, s = sample weight / (the mean's denominator).  eps = 0 and no
 * class weights give a = b = s, c = 0: s (lse - z_y) and s (p - onehot).
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

/* loss of one row from its max m, L = log1p(R), z_y and sum w z */
MLK_INLINE double MLK_F(mlk_xent_loss)(double a, double b, double c, MLK_T m, MLK_T L,
                                       MLK_T zy, double wz) {
    /* b ((m - z_y) + L) + (a - b) lse - c sum w z: exact-ish when a = b */
    const double lse = (double)m + (double)L;
    return b * (((double)m - (double)zy) + (double)L) + (a - b) * lse - c * wz;
}

void MLK_K(mlk_xent)(const MLK_T *restrict z, const int64_t *restrict lab,
                     const double *restrict coef, intptr_t cstride, int64_t ignore,
                     const MLK_T *restrict w, MLK_T *restrict g, double *restrict loss,
                     intptr_t rows, intptr_t n) {
    for (intptr_t r = 0; r < rows; r++) {
        const MLK_T *zr = z + r * n;
        MLK_T *gr = g ? g + r * n : NULL;
        const double *cr = coef + cstride * r;
        const double a = cr[0], b = cr[1], c = cr[2];
        if (lab[r] == ignore || (a == 0 && b == 0 && c == 0)) {
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
            const MLK_T L = MLK_F(mlk_log1p)((MLK_T)MLK_F(mlk_rw_rest)(zr, n, m, NULL));
            loss[r] = MLK_F(mlk_xent_loss)(a, b, c, m, L, zy, wz);
            continue;
        }
        /* exponentials into the gradient row, summed blockwise from L1.
           A maximal element (e exactly the scale) is stored as the sentinel
           -1, so that the same sum gives R to full relative precision (the
           rest, minus one per sentinel) and the final pass can restore it,
           even in place, where z is gone. */
        double acc = 0.0, cnt = 0.0;
        for (intptr_t j0 = 0; j0 < n; j0 += MLK_RW_EBLK) {
            const intptr_t nb = n - j0 < MLK_RW_EBLK ? n - j0 : MLK_RW_EBLK;
            const MLK_T *zb = zr + j0;
            MLK_T *gb = gr + j0;
            MLK_T bc = 0;
#pragma omp simd reduction(+:bc)
            for (intptr_t j = 0; j < nb; j++) {
                const MLK_T d = zb[j] - m;
                gb[j] = d == 0 ? (MLK_T)-1 : MLK_F(mlk_expneg_scaled)(d);
                bc += d == 0 ? (MLK_T)1 : (MLK_T)0;
            }
            acc += MLK_F(mlk_rw_sum)(gb, nb);
            cnt += (double)bc;
        }
        acc += cnt;                                  /* the sentinels removed */
        const MLK_T L = MLK_F(mlk_log1p)((MLK_T)(acc * (double)MLK_RW_UNSCALE + (cnt - 1.0)));
        loss[r] = MLK_F(mlk_xent_loss)(a, b, c, m, L, zy, wz);
        const MLK_T q = (MLK_T)(a / (acc + cnt * (double)MLK_RW_SCALE));
        const MLK_T sc = MLK_RW_SCALE;
        if (c != 0) {
            const MLK_T cc = (MLK_T)c;
            if (w) {
                for (intptr_t j = 0; j < n; j++) gr[j] = (gr[j] < 0 ? sc : gr[j]) * q - cc * w[j];
            } else {
                for (intptr_t j = 0; j < n; j++) gr[j] = (gr[j] < 0 ? sc : gr[j]) * q - cc;
            }
        } else {
            for (intptr_t j = 0; j < n; j++) gr[j] = (gr[j] < 0 ? sc : gr[j]) * q;
        }
        gr[y] -= (MLK_T)b;
    }
}
