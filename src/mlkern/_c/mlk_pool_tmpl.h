/*
 * mlk_pool_tmpl.h -- max and average pooling (mlkern.layers), forward and
 * backward, written once over MLK_T / MLK_F / MLK_K (instantiated by
 * mlk_kernels_body.h for float32 and float64 at every ISA level).
 *
 * Geometry (mlk_pool_geom): input (H, W) per image, output (OH, OW), kernel
 * (kh, kw), stride, padding, dilation; 1-D pooling is H = OH = kh = 1.  The
 * caller (_pool.pxi) has checked every window to hold at least one
 * in-bounds tap and every size to be consistent.
 *
 * Layouts and work units (a call processes the units [u0, u1)):
 *   NCHW: a unit is one (n, c) plane of H*W inputs / OH*OW outputs.
 *   NHWC forward: a unit is one output row (n, oh) of OW*C values; the loops
 *     vectorise across the C contiguous channels.
 *   NHWC backward: a unit is (n, channel block of g->cb channels); the unit
 *     owns those channels of image n in grad_x.
 * Backward units own whole regions of grad_x (zeroed by the unit first) and
 * scatter into them in output order: the result does not depend on how the
 * units are shared out among threads (bitwise identical for any count).
 *
 * Max: m = (v > m || isnan(v)) ? v : m over the taps in row-major order,
 * starting from the first in-bounds tap (PyTorch's rule: NaN propagates,
 * the first maximum wins among equal values, a later NaN moves the index).
 * The NCHW forward without indices is separable: each input row is reduced
 * over the kw taps of each output column first (hbuf, strided loads), then
 * kh such rows are reduced per output row (contiguous, vectorised).  The
 * order equals the row-major order (ties, and so +-0, resolve the same way).
 * Average: the sum of the in-bounds taps divided by
 * (count_include_pad ? the window clipped to the padded input : the
 * in-bounds taps), both a product of a row and a column factor (PyTorch).
 */

#ifndef MLK_PMAX
#define MLK_PCB 32   /* NHWC: channels per block (32: gcc vectorises the blend, 16 f64 it unrolls) */
#define MLK_PMAX(m, v) ((((v) > (m)) | ((v) != (v))) ? (v) : (m))
#endif

/* first in-bounds tap and the number of in-bounds taps of output o along
   one axis (start o*s - p, k taps d apart, extent L) */
MLK_INLINE void MLK_F(mlk_pool_taps)(intptr_t o, intptr_t s, intptr_t p, intptr_t k, intptr_t d,
                                     intptr_t L, intptr_t *first, intptr_t *n) {
    intptr_t start = o * s - p, j0 = 0, j1 = k;
    if (start < 0) j0 = (-start + d - 1) / d;
    if (start + (k - 1) * d >= L) {
        j1 = (L - 1 - start) / d + 1;           /* taps with start + j d <= L - 1 */
        if (L - 1 - start < 0) j1 = 0;
    }
    *first = start + j0 * d;
    *n = j1 > j0 ? j1 - j0 : 0;
}

/* the average pool divisor factor of output o along one axis */
MLK_INLINE intptr_t MLK_F(mlk_pool_div)(intptr_t o, intptr_t s, intptr_t p, intptr_t k, intptr_t L,
                                        int cip) {
    intptr_t a = o * s - p, b = a + k;
    if (b > L + p) b = L + p;
    if (cip) return b - a;
    if (a < 0) a = 0;
    if (b > L) b = L;
    return b - a;
}

/* ---- max, NCHW ------------------------------------------------------------ */

/* one input row reduced over the column taps: h[ow] for ow in [0, OW) */
static void MLK_F(mlk_pool_hmax)(const MLK_T *restrict xr, MLK_T *restrict h, const mlk_pool_geom *g) {
    const intptr_t W = g->W, OW = g->OW, s = g->sw, p = g->pw, k = g->kw, d = g->dw;
    /* interior columns: every tap in bounds */
    intptr_t a = (p + s - 1) / s, b;
    intptr_t last = W - 1 - (k - 1) * d + p;   /* ow*s <= last */
    b = last < 0 ? 0 : last / s + 1;
    if (b > OW) b = OW;
    if (a > b) a = b;
    for (intptr_t ow = 0; ow < a; ow++) {
        intptr_t f, n;
        MLK_F(mlk_pool_taps)(ow, s, p, k, d, W, &f, &n);
        MLK_T m = xr[f];
        for (intptr_t j = 1; j < n; j++) { MLK_T v = xr[f + j * d]; m = MLK_PMAX(m, v); }
        h[ow] = m;
    }
    if (b > a) {
        const MLK_T *restrict x0 = xr - p;
        if (s == 2 && k == 3 && d == 1) {
            for (intptr_t ow = a; ow < b; ow++) {
                MLK_T m = x0[2 * ow], v1 = x0[2 * ow + 1], v2 = x0[2 * ow + 2];
                m = MLK_PMAX(m, v1);
                h[ow] = MLK_PMAX(m, v2);
            }
        } else if (s == 2 && k == 2 && d == 1) {
            for (intptr_t ow = a; ow < b; ow++) {
                MLK_T m = x0[2 * ow], v1 = x0[2 * ow + 1];
                h[ow] = MLK_PMAX(m, v1);
            }
        } else {
            for (intptr_t ow = a; ow < b; ow++) h[ow] = x0[ow * s];
            for (intptr_t j = 1; j < k; j++) {
                const MLK_T *restrict xj = x0 + j * d;
                for (intptr_t ow = a; ow < b; ow++) { MLK_T m = h[ow], v = xj[ow * s]; h[ow] = MLK_PMAX(m, v); }
            }
        }
    }
    for (intptr_t ow = b; ow < OW; ow++) {
        intptr_t f, n;
        MLK_F(mlk_pool_taps)(ow, s, p, k, d, W, &f, &n);
        MLK_T m = xr[f];
        for (intptr_t j = 1; j < n; j++) { MLK_T v = xr[f + j * d]; m = MLK_PMAX(m, v); }
        h[ow] = m;
    }
}

static void MLK_F(mlk_pool_max_plane)(const MLK_T *restrict x, MLK_T *restrict y, MLK_T *restrict hbuf,
                                      const mlk_pool_geom *g) {
    const intptr_t OW = g->OW;
    /* which input rows some output row reads: all of them unless the stride skips rows */
    for (intptr_t ih = 0; ih < g->H; ih++) MLK_F(mlk_pool_hmax)(x + ih * g->W, hbuf + ih * OW, g);
    for (intptr_t oh = 0; oh < g->OH; oh++) {
        intptr_t f, n;
        MLK_F(mlk_pool_taps)(oh, g->sh, g->ph, g->kh, g->dh, g->H, &f, &n);
        MLK_T *restrict yr = y + oh * OW;
        const MLK_T *restrict h0 = hbuf + f * OW;
        if (n == 1) {
            for (intptr_t ow = 0; ow < OW; ow++) yr[ow] = h0[ow];
        } else {
            const MLK_T *restrict h1 = h0 + g->dh * OW;
            for (intptr_t ow = 0; ow < OW; ow++) { MLK_T m = h0[ow], v = h1[ow]; yr[ow] = MLK_PMAX(m, v); }
            for (intptr_t j = 2; j < n; j++) {
                const MLK_T *restrict hj = h0 + j * g->dh * OW;
                for (intptr_t ow = 0; ow < OW; ow++) { MLK_T m = yr[ow], v = hj[ow]; yr[ow] = MLK_PMAX(m, v); }
            }
        }
    }
}

/* one output with its index by a direct scan of the window */
MLK_INLINE void MLK_F(mlk_pool_max_one)(const MLK_T *restrict x, MLK_T *restrict y, int64_t *restrict idx,
                                        intptr_t fh, intptr_t nh, intptr_t ow, const mlk_pool_geom *g) {
    const intptr_t W = g->W;
    intptr_t fw, nw;
    MLK_F(mlk_pool_taps)(ow, g->sw, g->pw, g->kw, g->dw, W, &fw, &nw);
    int64_t best = fh * W + fw;
    MLK_T m = x[best];
    for (intptr_t i = 0; i < nh; i++) {
        const intptr_t r = (fh + i * g->dh) * W;
        for (intptr_t j = 0; j < nw; j++) {
            const intptr_t q = r + fw + j * g->dw;
            const MLK_T v = x[q];
            if (v > m || v != v) { m = v; best = q; }
        }
    }
    *y = m;
    *idx = best;
}

static void MLK_F(mlk_pool_max_plane_idx)(const MLK_T *restrict x, MLK_T *restrict y,
                                          int64_t *restrict idx, const mlk_pool_geom *g) {
    const intptr_t W = g->W, OW = g->OW, s = g->sw, p = g->pw, k = g->kw, d = g->dw;
    /* interior columns (every column tap in bounds): vectorised across ow */
    intptr_t a = (p + s - 1) / s, b;
    intptr_t last = W - 1 - (k - 1) * d + p;
    b = last < 0 ? 0 : last / s + 1;
    if (b > OW) b = OW;
    if (a > b) a = b;
    for (intptr_t oh = 0; oh < g->OH; oh++) {
        intptr_t fh, nh;
        MLK_F(mlk_pool_taps)(oh, g->sh, g->ph, g->kh, g->dh, g->H, &fh, &nh);
        MLK_T *restrict yr = y + oh * OW;
        int64_t *restrict ir = idx + oh * OW;
        for (intptr_t ow = 0; ow < a; ow++) MLK_F(mlk_pool_max_one)(x, yr + ow, ir + ow, fh, nh, ow, g);
        for (intptr_t i = 0; i < nh; i++) {
            for (intptr_t j = 0; j < k; j++) {
                const int64_t off = (fh + i * g->dh) * W - p + j * d;
                const MLK_T *restrict xq = x + off;
                if (i == 0 && j == 0) {
                    for (intptr_t ow = a; ow < b; ow++) { yr[ow] = xq[ow * s]; ir[ow] = off + ow * s; }
                } else {
                    for (intptr_t ow = a; ow < b; ow++) {
                        const MLK_T m = yr[ow], v = xq[ow * s];
                        const int t = (v > m) | (v != v);
                        yr[ow] = t ? v : m;
                        ir[ow] = t ? off + ow * s : ir[ow];
                    }
                }
            }
        }
        for (intptr_t ow = b; ow < OW; ow++) MLK_F(mlk_pool_max_one)(x, yr + ow, ir + ow, fh, nh, ow, g);
    }
}

/* ---- max, NHWC: one output row (n, oh) ------------------------------------ */

static void MLK_F(mlk_pool_max_row_nhwc)(const MLK_T *restrict x, MLK_T *restrict y,
                                         int64_t *restrict idx, intptr_t oh, const mlk_pool_geom *g) {
    const intptr_t C = g->C, W = g->W;
    intptr_t fh, nh;
    MLK_F(mlk_pool_taps)(oh, g->sh, g->ph, g->kh, g->dh, g->H, &fh, &nh);
    for (intptr_t ow = 0; ow < g->OW; ow++) {
        intptr_t fw, nw;
        MLK_F(mlk_pool_taps)(ow, g->sw, g->pw, g->kw, g->dw, W, &fw, &nw);
        MLK_T *restrict yo = y + ow * C;
        int64_t *restrict io = idx ? idx + ow * C : NULL;
        const MLK_T *restrict x0 = x + (fh * W + fw) * C;
        intptr_t cs = 0;
        if (!io) {
            /* blocks of MLK_PCB channels accumulated in registers */
            for (; cs + MLK_PCB <= C; cs += MLK_PCB) {
                MLK_T acc[MLK_PCB];
                for (int c = 0; c < MLK_PCB; c++) acc[c] = x0[cs + c];
                for (intptr_t i = 0; i < nh; i++) {
                    for (intptr_t j = (i == 0); j < nw; j++) {
                        const MLK_T *restrict xq = x + ((fh + i * g->dh) * W + fw + j * g->dw) * C + cs;
                        for (int c = 0; c < MLK_PCB; c++) { MLK_T v = xq[c]; acc[c] = MLK_PMAX(acc[c], v); }
                    }
                }
                for (int c = 0; c < MLK_PCB; c++) yo[cs + c] = acc[c];
            }
            if (cs == C) continue;
            yo += cs;
            x0 += cs;
        }
        const intptr_t Ct = C - cs;
        for (intptr_t c = 0; c < Ct; c++) yo[c] = x0[c];
        if (io) {
            const int64_t q0 = fh * W + fw;
            for (intptr_t c = 0; c < C; c++) io[c] = q0;
        }
        for (intptr_t i = 0; i < nh; i++) {
            for (intptr_t j = (i == 0); j < nw; j++) {
                const int64_t q = (fh + i * g->dh) * W + fw + j * g->dw;
                const MLK_T *restrict xq = x + q * C + cs;
                if (io) {
                    for (intptr_t c = 0; c < C; c++) {
                        const MLK_T m = yo[c], v = xq[c];
                        const int t = (v > m) | (v != v);
                        yo[c] = t ? v : m;
                        io[c] = t ? q : io[c];
                    }
                } else {
                    for (intptr_t c = 0; c < Ct; c++) { MLK_T m = yo[c], v = xq[c]; yo[c] = MLK_PMAX(m, v); }
                }
            }
        }
    }
}

/* NHWC, the other order (g->cb == 1 in a forward call): the kh rows of the
   output row reduced into vbuf (W*C, plain streams), then each output's kw
   columns of vbuf (for measurements against the direct order above) */
static void MLK_F(mlk_pool_row_nhwc_vs)(int avg, const MLK_T *restrict x, MLK_T *restrict y, intptr_t oh,
                                        const mlk_pool_geom *g, MLK_T *restrict vbuf) {
    const intptr_t C = g->C, W = g->W, WC = W * C;
    intptr_t fh, nh;
    MLK_F(mlk_pool_taps)(oh, g->sh, g->ph, g->kh, avg ? 1 : g->dh, g->H, &fh, &nh);
    const intptr_t dh = avg ? 1 : g->dh, dw = avg ? 1 : g->dw;
    const MLK_T *restrict vb = x + fh * WC;
    if (nh > 1) {
        const MLK_T *restrict r1 = vb + dh * WC;
        if (avg) {
            for (intptr_t j = 0; j < WC; j++) vbuf[j] = vb[j] + r1[j];
        } else {
            for (intptr_t j = 0; j < WC; j++) { MLK_T m = vb[j], v = r1[j]; vbuf[j] = MLK_PMAX(m, v); }
        }
        for (intptr_t i = 2; i < nh; i++) {
            const MLK_T *restrict ri = vb + i * dh * WC;
            if (avg) {
                for (intptr_t j = 0; j < WC; j++) vbuf[j] += ri[j];
            } else {
                for (intptr_t j = 0; j < WC; j++) { MLK_T m = vbuf[j], v = ri[j]; vbuf[j] = MLK_PMAX(m, v); }
            }
        }
        vb = vbuf;
    }
    const intptr_t dvh = avg ? MLK_F(mlk_pool_div)(oh, g->sh, g->ph, g->kh, g->H, g->cip) : 1;
    for (intptr_t ow = 0; ow < g->OW; ow++) {
        intptr_t fw, nw;
        MLK_F(mlk_pool_taps)(ow, g->sw, g->pw, g->kw, dw, W, &fw, &nw);
        MLK_T *restrict yo = y + ow * C;
        const MLK_T *restrict v0 = vb + fw * C;
        for (intptr_t c = 0; c < C; c++) yo[c] = v0[c];
        for (intptr_t j = 1; j < nw; j++) {
            const MLK_T *restrict vj = v0 + j * dw * C;
            if (avg) {
                for (intptr_t c = 0; c < C; c++) yo[c] += vj[c];
            } else {
                for (intptr_t c = 0; c < C; c++) { MLK_T m = yo[c], v = vj[c]; yo[c] = MLK_PMAX(m, v); }
            }
        }
        if (avg) {
            const MLK_T div = (MLK_T)(dvh * MLK_F(mlk_pool_div)(ow, g->sw, g->pw, g->kw, W, g->cip));
            for (intptr_t c = 0; c < C; c++) yo[c] = yo[c] / div;
        }
    }
}

/* ---- average ---------------------------------------------------------------- */

static void MLK_F(mlk_pool_avg_plane)(const MLK_T *restrict x, MLK_T *restrict y, MLK_T *restrict hbuf,
                                      const mlk_pool_geom *g) {
    const intptr_t W = g->W, OW = g->OW, s = g->sw, p = g->pw, k = g->kw;
    MLK_T *restrict dw = hbuf + g->H * OW;      /* the column factors of the divisor */
    for (intptr_t ow = 0; ow < OW; ow++) dw[ow] = (MLK_T)MLK_F(mlk_pool_div)(ow, s, p, k, W, g->cip);
    intptr_t a = (p + s - 1) / s, b;
    intptr_t last = W - k + p;
    b = last < 0 ? 0 : last / s + 1;
    if (b > OW) b = OW;
    if (a > b) a = b;
    for (intptr_t ih = 0; ih < g->H; ih++) {
        const MLK_T *restrict xr = x + ih * W;
        MLK_T *restrict h = hbuf + ih * OW;
        for (intptr_t ow = 0; ow < OW; ow++) {
            if (ow == a && b > a) {
                const MLK_T *restrict x0 = xr - p;
                if (s == 2 && k == 3) {
                    for (intptr_t o = a; o < b; o++) h[o] = x0[2 * o] + x0[2 * o + 1] + x0[2 * o + 2];
                } else if (s == k && k == 2) {
                    for (intptr_t o = a; o < b; o++) h[o] = x0[2 * o] + x0[2 * o + 1];
                } else {
                    for (intptr_t o = a; o < b; o++) h[o] = x0[o * s];
                    for (intptr_t j = 1; j < k; j++)
                        for (intptr_t o = a; o < b; o++) h[o] += x0[o * s + j];
                }
                ow = b - 1;
                continue;
            }
            intptr_t f, n;
            MLK_F(mlk_pool_taps)(ow, s, p, k, 1, W, &f, &n);
            MLK_T acc = xr[f];
            for (intptr_t j = 1; j < n; j++) acc += xr[f + j];
            h[ow] = acc;
        }
    }
    for (intptr_t oh = 0; oh < g->OH; oh++) {
        intptr_t f, n;
        MLK_F(mlk_pool_taps)(oh, g->sh, g->ph, g->kh, 1, g->H, &f, &n);
        const MLK_T dh = (MLK_T)MLK_F(mlk_pool_div)(oh, g->sh, g->ph, g->kh, g->H, g->cip);
        MLK_T *restrict yr = y + oh * OW;
        const MLK_T *restrict h0 = hbuf + f * OW;
        for (intptr_t ow = 0; ow < OW; ow++) yr[ow] = h0[ow];
        for (intptr_t i = 1; i < n; i++) {
            const MLK_T *restrict hi = h0 + i * OW;
            for (intptr_t ow = 0; ow < OW; ow++) yr[ow] += hi[ow];
        }
        for (intptr_t ow = 0; ow < OW; ow++) yr[ow] = yr[ow] / (dh * dw[ow]);
    }
}

static void MLK_F(mlk_pool_avg_row_nhwc)(const MLK_T *restrict x, MLK_T *restrict y, intptr_t oh,
                                         const mlk_pool_geom *g) {
    const intptr_t C = g->C, W = g->W;
    intptr_t fh, nh;
    MLK_F(mlk_pool_taps)(oh, g->sh, g->ph, g->kh, 1, g->H, &fh, &nh);
    const intptr_t dh = MLK_F(mlk_pool_div)(oh, g->sh, g->ph, g->kh, g->H, g->cip);
    for (intptr_t ow = 0; ow < g->OW; ow++) {
        intptr_t fw, nw;
        MLK_F(mlk_pool_taps)(ow, g->sw, g->pw, g->kw, 1, W, &fw, &nw);
        /* one reciprocal per output pixel, C multiplies (a vector division per
           C-vector costs more than the 9 additions) */
        const MLK_T inv = (MLK_T)1 / (MLK_T)(dh * MLK_F(mlk_pool_div)(ow, g->sw, g->pw, g->kw, W, g->cip));
        MLK_T *restrict yo = y + ow * C;
        intptr_t cs = 0;
        for (; cs + MLK_PCB <= C; cs += MLK_PCB) {
            MLK_T acc[MLK_PCB];
            const MLK_T *restrict x0 = x + (fh * W + fw) * C + cs;
            for (int c = 0; c < MLK_PCB; c++) acc[c] = x0[c];
            for (intptr_t i = 0; i < nh; i++) {
                for (intptr_t j = (i == 0); j < nw; j++) {
                    const MLK_T *restrict xq = x + ((fh + i) * W + fw + j) * C + cs;
                    for (int c = 0; c < MLK_PCB; c++) acc[c] += xq[c];
                }
            }
            for (int c = 0; c < MLK_PCB; c++) yo[cs + c] = acc[c] * inv;
        }
        if (cs < C) {
            const MLK_T *restrict x0 = x + (fh * W + fw) * C;
            for (intptr_t c = cs; c < C; c++) yo[c] = x0[c];
            for (intptr_t i = 0; i < nh; i++) {
                for (intptr_t j = (i == 0); j < nw; j++) {
                    const MLK_T *restrict xq = x + ((fh + i) * W + fw + j) * C;
                    for (intptr_t c = cs; c < C; c++) yo[c] += xq[c];
                }
            }
            for (intptr_t c = cs; c < C; c++) yo[c] = yo[c] * inv;
        }
    }
}

/* ---- backward --------------------------------------------------------------- */

static void MLK_F(mlk_pool_avg_bwd_plane)(const MLK_T *restrict go, MLK_T *restrict gi,
                                          const mlk_pool_geom *g) {
    const intptr_t W = g->W;
    memset(gi, 0, (size_t)(g->H * W) * sizeof(MLK_T));
    for (intptr_t oh = 0; oh < g->OH; oh++) {
        intptr_t fh, nh;
        MLK_F(mlk_pool_taps)(oh, g->sh, g->ph, g->kh, 1, g->H, &fh, &nh);
        const intptr_t dh = MLK_F(mlk_pool_div)(oh, g->sh, g->ph, g->kh, g->H, g->cip);
        for (intptr_t ow = 0; ow < g->OW; ow++) {
            intptr_t fw, nw;
            MLK_F(mlk_pool_taps)(ow, g->sw, g->pw, g->kw, 1, W, &fw, &nw);
            const MLK_T v = go[oh * g->OW + ow]
                / (MLK_T)(dh * MLK_F(mlk_pool_div)(ow, g->sw, g->pw, g->kw, W, g->cip));
            for (intptr_t i = 0; i < nh; i++) {
                MLK_T *restrict r = gi + (fh + i) * W + fw;
                for (intptr_t j = 0; j < nw; j++) r[j] += v;
            }
        }
    }
}

static void MLK_F(mlk_pool_avg_bwd_nhwc)(const MLK_T *restrict go, MLK_T *restrict gi, intptr_t c0,
                                         intptr_t c1, const mlk_pool_geom *g) {
    const intptr_t C = g->C, W = g->W, nc = c1 - c0;
    for (intptr_t q = 0; q < g->H * W; q++) memset(gi + q * C + c0, 0, (size_t)nc * sizeof(MLK_T));
    for (intptr_t oh = 0; oh < g->OH; oh++) {
        intptr_t fh, nh;
        MLK_F(mlk_pool_taps)(oh, g->sh, g->ph, g->kh, 1, g->H, &fh, &nh);
        const intptr_t dh = MLK_F(mlk_pool_div)(oh, g->sh, g->ph, g->kh, g->H, g->cip);
        for (intptr_t ow = 0; ow < g->OW; ow++) {
            intptr_t fw, nw;
            MLK_F(mlk_pool_taps)(ow, g->sw, g->pw, g->kw, 1, W, &fw, &nw);
            const MLK_T div = (MLK_T)(dh * MLK_F(mlk_pool_div)(ow, g->sw, g->pw, g->kw, W, g->cip));
            const MLK_T *restrict gr = go + (oh * g->OW + ow) * C + c0;
            for (intptr_t i = 0; i < nh; i++) {
                for (intptr_t j = 0; j < nw; j++) {
                    MLK_T *restrict r = gi + ((fh + i) * W + fw + j) * C + c0;
                    for (intptr_t c = 0; c < nc; c++) r[c] += gr[c] / div;
                }
            }
        }
    }
}

/* ---- the entry point -------------------------------------------------------- */

void MLK_K(mlk_pool)(int op, const MLK_T *a, MLK_T *b, int64_t *idx, intptr_t u0, intptr_t u1,
                     const mlk_pool_geom *g, MLK_T *work) {
    const intptr_t HW = g->H * g->W, OHW = g->OH * g->OW, C = g->C;
    for (intptr_t u = u0; u < u1; u++) {
        switch (op) {
        case MLK_POOL_MAX_NCHW:
            if (idx) MLK_F(mlk_pool_max_plane_idx)(a + u * HW, b + u * OHW, idx + u * OHW, g);
            else MLK_F(mlk_pool_max_plane)(a + u * HW, b + u * OHW, work, g);
            break;
        case MLK_POOL_AVG_NCHW:
            MLK_F(mlk_pool_avg_plane)(a + u * HW, b + u * OHW, work, g);
            break;
        case MLK_POOL_MAX_NHWC: {
            const intptr_t n = u / g->OH, oh = u % g->OH;
            if (!idx && g->cb == 1 && work) {
                MLK_F(mlk_pool_row_nhwc_vs)(0, a + n * HW * C, b + u * g->OW * C, oh, g, work);
                break;
            }
            MLK_F(mlk_pool_max_row_nhwc)(a + n * HW * C, b + u * g->OW * C,
                                         idx ? idx + u * g->OW * C : NULL, oh, g);
            break;
        }
        case MLK_POOL_AVG_NHWC: {
            const intptr_t n = u / g->OH, oh = u % g->OH;
            if (g->cb == 1 && work) {
                MLK_F(mlk_pool_row_nhwc_vs)(1, a + n * HW * C, b + u * g->OW * C, oh, g, work);
                break;
            }
            MLK_F(mlk_pool_avg_row_nhwc)(a + n * HW * C, b + u * g->OW * C, oh, g);
            break;
        }
        case MLK_POOL_MAXB_NCHW: {
            const MLK_T *restrict go = a + u * OHW;
            const int64_t *restrict ix = idx + u * OHW;
            MLK_T *restrict gi = b + u * HW;
            memset(gi, 0, (size_t)HW * sizeof(MLK_T));
            for (intptr_t o = 0; o < OHW; o++) gi[ix[o]] += go[o];
            break;
        }
        case MLK_POOL_AVGB_NCHW:
            MLK_F(mlk_pool_avg_bwd_plane)(a + u * OHW, b + u * HW, g);
            break;
        case MLK_POOL_MAXB_NHWC: case MLK_POOL_AVGB_NHWC: {
            const intptr_t nb = (C + g->cb - 1) / g->cb;
            const intptr_t n = u / nb, c0 = (u % nb) * g->cb;
            const intptr_t c1 = c0 + g->cb < C ? c0 + g->cb : C;
            if (op == MLK_POOL_AVGB_NHWC) {
                MLK_F(mlk_pool_avg_bwd_nhwc)(a + n * OHW * C, b + n * HW * C, c0, c1, g);
            } else {
                const MLK_T *restrict go = a + n * OHW * C;
                const int64_t *restrict ix = idx + n * OHW * C;
                MLK_T *restrict gi = b + n * HW * C;
                for (intptr_t q = 0; q < HW; q++) memset(gi + q * C + c0, 0, (size_t)(c1 - c0) * sizeof(MLK_T));
                for (intptr_t o = 0; o < OHW; o++)
                    for (intptr_t c = c0; c < c1; c++) gi[ix[o * C + c] * C + c] += go[o * C + c];
            }
            break;
        }
        default:
            break;
        }
    }
}
