/*
 * mlk_simd_f32.h -- AVX-512 float32 kernels of the v4 object (issue 19).
 *
 * Included by mlk_kernels_tmpl.h in its float32 pass, only where
 * __AVX512F__ and __AVX512DQ__ are defined (the x86-64-v4 object): the
 * portable C of mlk_math.h / mlk_act_tmpl.h / mlk_erf.h stays the baseline
 * and the v3 code and is the reference these are tested against.
 *
 * The functions follow the portable ones operation for operation, with
 * three changes that keep their accuracy (measured by
 * benchmarks/ulp_table.py and tests/test_activations.py):
 *   - a quotient n/d becomes n * r, r = rcp14(d) refined by one Newton step
 *     (relative error ~2^-28), and where the portable code relies on a
 *     correctly rounded quotient the residual fma(-q, d, n) (exact) is added
 *     back times r;
 *   - 2^n scaling is one vscalefps (rounded once, also into the subnormal
 *     range) instead of two multiplies by powers of 2 built from bits;
 *   - the loops are 16 lanes wide with a masked tail (and a masked head that
 *     aligns the stores to 64 bytes), no scalar remainder.
 * NaN, +-inf and signed zeros are handled by the same selects as in the
 * portable code (blends on compare masks).
 *
 * mlk_simd_unary_f32 / mlk_simd_binary_f32 return 1 when they computed the
 * op (0: the caller runs its portable loop).
 */
#ifndef MLK_SIMD_F32_H
#define MLK_SIMD_F32_H
#if defined(__AVX512F__) && defined(__AVX512DQ__)
#include <immintrin.h>

#define MLK_V1(c) _mm512_set1_ps(c)

/* 1/d to a relative ~2^-28 (d > 0 normal) */
MLK_INLINE __m512 mlk_v_rcp_f32(__m512 d) {
    const __m512 r = _mm512_rcp14_ps(d);
    return _mm512_fmadd_ps(r, _mm512_fnmadd_ps(d, r, MLK_V1(1.0f)), r);
}
/* n/d within ~0.5 ulp + 2^-28 (r ~ 1/d from mlk_v_rcp_f32): one residual step */
MLK_INLINE __m512 mlk_v_div_f32(__m512 n, __m512 d, __m512 r) {
    const __m512 q = _mm512_mul_ps(n, r);
    return _mm512_fmadd_ps(_mm512_fnmadd_ps(q, d, n), r, q);
}
MLK_INLINE __m512 mlk_v_abs_f32(__m512 x) {
    return _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32(0x7fffffff)));
}
/* |mag| with the sign of sgn */
MLK_INLINE __m512 mlk_v_copysign_f32(__m512 mag, __m512 sgn) {
    /* ternary logic: (sgn & 0x80000000) | (mag & 0x7fffffff) */
    return _mm512_castsi512_ps(_mm512_ternarylogic_epi32(_mm512_set1_epi32(0x7fffffff),
                                                         _mm512_castps_si512(mag),
                                                         _mm512_castps_si512(sgn), 0xca));
}
/* the degree-4 q of e^r = 1 + r + r^2 q(r) (mlk_expq_f32) */
MLK_INLINE __m512 mlk_v_expq_f32(__m512 r) {
    __m512 q = MLK_V1(0.00139263918961f);
    q = _mm512_fmadd_ps(q, r, MLK_V1(0.00836334581099f));
    q = _mm512_fmadd_ps(q, r, MLK_V1(0.0416665533626f));
    q = _mm512_fmadd_ps(q, r, MLK_V1(0.166665759854f));
    q = _mm512_fmadd_ps(q, r, MLK_V1(0.5f));
    return q;
}
/* e^x = 2^kd p for x <= 0 (or NaN; x >= -150: below, the caller selects):
 * p = e^r, r = x - kd ln2 (mlk_expneg_scaled_f32 without the scale) */
MLK_INLINE __m512 mlk_v_expneg_p_f32(__m512 x, __m512 *kd) {
    __m512 k = _mm512_fmadd_ps(x, MLK_V1(MLK_INVLN2_32), MLK_V1(MLK_SHIFT32));
    k = _mm512_sub_ps(k, MLK_V1(MLK_SHIFT32));
    __m512 r = _mm512_fnmadd_ps(k, MLK_V1(MLK_LN2HI_32), x);
    r = _mm512_fnmadd_ps(k, MLK_V1(MLK_LN2LO_32), r);
    *kd = k;
    const __m512 rr = _mm512_mul_ps(r, r);
    return _mm512_add_ps(MLK_V1(1.0f), _mm512_fmadd_ps(rr, mlk_v_expq_f32(r), r));
}

/* ---- gelu (exact) and its derivative: mlk_ndtr_tail_lin_fast_f32 ------- */
/* m h(|x|) + q phi(x), h(a) = Phi(-a), rounded once (scalef) */
MLK_INLINE __m512 mlk_v_ndtr_tail_lin_f32(__m512 x, __m512 m, __m512 q) {
    const __m512 K = MLK_V1(3.535534f), one = MLK_V1(1.0f);
    const __m512 a = _mm512_min_ps(mlk_v_abs_f32(x), MLK_V1(14.5f));   /* NaN -> 14.5 */
    const __m512 hi = _mm512_mul_ps(a, a);
    const __m512 lo = _mm512_fmsub_ps(a, a, hi);
    const __m512 tD = _mm512_add_ps(a, K);
    const __m512 t = mlk_v_div_f32(_mm512_sub_ps(a, K), tD, mlk_v_rcp_f32(tD));
    const __m512 t2 = _mm512_mul_ps(t, t);
    __m512 p0 = MLK_V1(-2.1193322e-05f);
    p0 = _mm512_fmadd_ps(p0, t2, MLK_V1(0.00019438198f));
    p0 = _mm512_fmadd_ps(p0, t2, MLK_V1(-0.0014185448f));
    p0 = _mm512_fmadd_ps(p0, t2, MLK_V1(0.010997652f));
    p0 = _mm512_fmadd_ps(p0, t2, MLK_V1(0.037419926f));
    p0 = _mm512_fmadd_ps(p0, t2, MLK_V1(-0.09769923f));
    __m512 p1 = MLK_V1(-2.291593e-05f);
    p1 = _mm512_fmadd_ps(p1, t2, MLK_V1(0.00019626872f));
    p1 = _mm512_fmadd_ps(p1, t2, MLK_V1(-5.382376e-05f));
    p1 = _mm512_fmadd_ps(p1, t2, MLK_V1(-0.030558353f));
    p1 = _mm512_fmadd_ps(p1, t2, MLK_V1(0.0018521087f));
    const __m512 p = _mm512_fmadd_ps(t, p1, p0);
    /* mlk_ratio_f32(c0, c0lo, t, 0, 0, p, a, ...): R + Rlo = (c0 + c0lo + t p)/(1 + a) */
    const __m512 c0 = MLK_V1(0.4780597f);
    const __m512 ts = _mm512_mul_ps(t, p);
    const __m512 P = _mm512_add_ps(c0, ts);
    const __m512 Plo = _mm512_add_ps(_mm512_add_ps(_mm512_sub_ps(c0, P), ts), MLK_V1(-3.406256e-09f));
    const __m512 den = _mm512_add_ps(one, a);
    const __m512 bb = _mm512_sub_ps(den, one);
    const __m512 dlo = _mm512_add_ps(_mm512_sub_ps(one, _mm512_sub_ps(den, bb)), _mm512_sub_ps(a, bb));
    const __m512 rd = mlk_v_rcp_f32(den);
    const __m512 R = _mm512_mul_ps(P, rd);
    const __m512 rem = _mm512_fnmadd_ps(R, den, P);                    /* P - R den, exact */
    const __m512 Rlo = _mm512_mul_ps(_mm512_fnmadd_ps(R, dlo, _mm512_add_ps(rem, Plo)), rd);
    const __m512 S = _mm512_fmadd_ps(m, R, _mm512_mul_ps(q, MLK_V1(0.3989422917366028f)));
    const __m512 Slo = _mm512_mul_ps(m, Rlo);
    /* mlk_expneg2_mul_f32(hi/2, lo/2, S, Slo) */
    const __m512 h2 = _mm512_mul_ps(MLK_V1(-0.5f), hi), l2 = _mm512_mul_ps(MLK_V1(0.5f), lo);
    __m512 kd = _mm512_fmadd_ps(h2, MLK_V1(MLK_INVLN2_32), MLK_V1(MLK_SHIFT32));
    kd = _mm512_sub_ps(kd, MLK_V1(MLK_SHIFT32));
    const __m512 rh = _mm512_fnmadd_ps(kd, MLK_V1(MLK_LN2HI_32), h2);
    const __m512 rl = _mm512_mul_ps(kd, MLK_V1(-MLK_LN2LO_32));
    const __m512 r = _mm512_add_ps(rh, rl);
    const __m512 rc = _mm512_add_ps(_mm512_sub_ps(rh, r), rl);
    const __m512 r2 = _mm512_sub_ps(r, l2);
    const __m512 rc2 = _mm512_add_ps(rc, _mm512_sub_ps(_mm512_sub_ps(r, r2), l2));
    const __m512 s = _mm512_add_ps(r2, _mm512_fmadd_ps(_mm512_mul_ps(r2, r2), mlk_v_expq_f32(r2), rc2));
    const __m512 y = _mm512_add_ps(S, _mm512_fmadd_ps(S, s, Slo));
    return _mm512_scalef_ps(y, kd);
}

/* gelu(x) = x Phi(x) (mlk_gelu_erf_f32) */
MLK_INLINE __m512 mlk_v_gelu_f32(__m512 x) {
    const __m512 xs = mlk_v_copysign_f32(_mm512_min_ps(mlk_v_abs_f32(x), MLK_V1(14.5f)), x);
    const __m512 xh = mlk_v_ndtr_tail_lin_f32(x, xs, _mm512_setzero_ps());
    const __mmask16 neg = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ);
    const __mmask16 keep = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_EQ_UQ);  /* 0 or NaN */
    __m512 g = _mm512_mask_blend_ps(neg, _mm512_sub_ps(x, xh), xh);
    return _mm512_mask_blend_ps(keep, g, x);
}

/* gelu'(x) = Phi(x) + x phi(x) (mlk_gelu_erf_grad_f32) */
MLK_INLINE __m512 mlk_v_gelu_grad_f32(__m512 x) {
    const __m512 ax = mlk_v_abs_f32(x);
    const __m512 xs = mlk_v_copysign_f32(_mm512_min_ps(ax, MLK_V1(14.5f)), x);
    const __mmask16 neg = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ);
    const __m512 q = _mm512_mask_blend_ps(neg, _mm512_sub_ps(_mm512_setzero_ps(), xs), xs);
    const __m512 t = mlk_v_ndtr_tail_lin_f32(x, MLK_V1(1.0f), q);
    __m512 g = _mm512_mask_blend_ps(neg, _mm512_sub_ps(MLK_V1(1.0f), t), t);
    const __mmask16 far = _mm512_cmp_ps_mask(ax, MLK_V1(14.5f), _CMP_GE_OQ);
    g = _mm512_mask_blend_ps(far, g, _mm512_mask_blend_ps(neg, MLK_V1(1.0f), MLK_V1(-0.0f)));
    const __mmask16 nan = _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
    return _mm512_mask_blend_ps(nan, g, x);
}

/* ---- the loops ----------------------------------------------------------- */
/* y[0..n) = F(x[0..n)): full vectors, then one masked vector */
#define MLK_V_LOOP1(name, VEXPR) \
    static MLK_NOINLINE void mlk_vloop_##name##_f32(const float *restrict x, float *restrict y, \
                                                   intptr_t n, const float *prm) { \
        (void)prm; \
        intptr_t i = 0; \
        for (; i + 16 <= n; i += 16) { const __m512 v = _mm512_loadu_ps(x + i); \
                                       _mm512_storeu_ps(y + i, (VEXPR)); } \
        if (i < n) { const __mmask16 m_ = (__mmask16)((1u << (n - i)) - 1); \
                     const __m512 v = _mm512_maskz_loadu_ps(m_, x + i); \
                     _mm512_mask_storeu_ps(y + i, m_, (VEXPR)); } \
    }
/* y[0..n) = g * F(s) */
#define MLK_V_LOOP2(name, VEXPR) \
    static MLK_NOINLINE void mlk_vloop2_##name##_f32(const float *restrict g, const float *restrict s, \
                                                    float *restrict y, intptr_t n, const float *prm) { \
        (void)prm; \
        intptr_t i = 0; \
        for (; i + 16 <= n; i += 16) { const __m512 v = _mm512_loadu_ps(s + i); \
                                       _mm512_storeu_ps(y + i, _mm512_mul_ps(_mm512_loadu_ps(g + i), (VEXPR))); } \
        if (i < n) { const __mmask16 m_ = (__mmask16)((1u << (n - i)) - 1); \
                     const __m512 v = _mm512_maskz_loadu_ps(m_, s + i); \
                     _mm512_mask_storeu_ps(y + i, m_, _mm512_mul_ps(_mm512_maskz_loadu_ps(m_, g + i), (VEXPR))); } \
    }
typedef void (*mlk_vloop1_f32)(const float *, float *, intptr_t, const float *);
typedef void (*mlk_vloop2_f32)(const float *, const float *, float *, intptr_t, const float *);

/* The drivers: the blocking of MLK_MAP_BLK_BODY / MLK_MAP2_BLK_BODY
 * (mlk_kernels_tmpl.h, same thresholds): an aligning head, then either one
 * pass, or (out of cache) blocks pulled into L1 first (mlk_touch), written
 * with non-temporal stores when the output is large (mlk_stream_out). */
static void mlk_vmap1_f32(mlk_vloop1_f32 f, const float *x, float *y, intptr_t n, const float *prm) {
    const intptr_t h = mlk_head_f32(y, n);
    if (h) f(x, y, h, prm);
    const int big = (n - h) * (intptr_t)sizeof(float) > MLK_TOUCH_MIN;
    if (!big) { f(x + h, y + h, n - h, prm); return; }
    if (mlk_stream_out_f32(n)) {
        float buf[MLK_BLOCK] __attribute__((aligned(64)));
        for (intptr_t i0 = h; i0 < n; i0 += MLK_BLOCK) {
            const intptr_t e = n - i0 > MLK_BLOCK ? MLK_BLOCK : n - i0;
            mlk_touch_f32(x + i0, e);
            f(x + i0, buf, e, prm);
            mlk_stream_copy_f32(y + i0, buf, e);
        }
        mlk_stream_fence();
        return;
    }
    for (intptr_t i0 = h; i0 < n; i0 += MLK_BLOCK) {
        const intptr_t e = n - i0 > MLK_BLOCK ? MLK_BLOCK : n - i0;
        mlk_touch_f32(x + i0, e);
        f(x + i0, y + i0, e, prm);
    }
}
static void mlk_vmap2_f32(mlk_vloop2_f32 f, const float *g, const float *s, float *y, intptr_t n,
                          const float *prm) {
    const intptr_t h = mlk_head_f32(y, n);
    if (h) f(g, s, y, h, prm);
    const int big = (n - h) * 2 * (intptr_t)sizeof(float) > MLK_TOUCH_MIN;
    if (!big) { f(g + h, s + h, y + h, n - h, prm); return; }
    if (mlk_stream_out_f32(n)) {
        float buf[MLK_BLOCK] __attribute__((aligned(64)));
        for (intptr_t i0 = h; i0 < n; i0 += MLK_BLOCK) {
            const intptr_t e = n - i0 > MLK_BLOCK ? MLK_BLOCK : n - i0;
            mlk_touch_f32(g + i0, e);
            mlk_touch_f32(s + i0, e);
            f(g + i0, s + i0, buf, e, prm);
            mlk_stream_copy_f32(y + i0, buf, e);
        }
        mlk_stream_fence();
        return;
    }
    for (intptr_t i0 = h; i0 < n; i0 += MLK_BLOCK) {
        const intptr_t e = n - i0 > MLK_BLOCK ? MLK_BLOCK : n - i0;
        mlk_touch_f32(g + i0, e);
        mlk_touch_f32(s + i0, e);
        f(g + i0, s + i0, y + i0, e, prm);
    }
}

MLK_V_LOOP1(gelu, mlk_v_gelu_f32(v))
MLK_V_LOOP1(gelu_grad, mlk_v_gelu_grad_f32(v))
MLK_V_LOOP2(gelu_grad, mlk_v_gelu_grad_f32(v))

static int mlk_simd_unary_f32(int op, const float *x, float *y, intptr_t n, const mlk_params *p) {
    const float prm[3] = {(float)p->a, (float)p->b, (float)p->c};
    mlk_vloop1_f32 f;
    switch (op) {
    case MLK_GELU:      f = mlk_vloop_gelu_f32; break;
    case MLK_GELU_GRAD: f = mlk_vloop_gelu_grad_f32; break;
    default: return 0;
    }
    mlk_vmap1_f32(f, x, y, n, prm);
    return 1;
}

static int mlk_simd_binary_f32(int op, const float *g, const float *s, float *y, intptr_t n,
                               const mlk_params *p) {
    const float prm[3] = {(float)p->a, (float)p->b, (float)p->c};
    mlk_vloop2_f32 f;
    switch (op) {
    case MLK_GELU_BWD: f = mlk_vloop2_gelu_grad_f32; break;
    default: return 0;
    }
    mlk_vmap2_f32(f, g, s, y, n, prm);
    return 1;
}

#undef MLK_V_LOOP1
#undef MLK_V_LOOP2
#endif /* __AVX512F__ && __AVX512DQ__ */
#endif /* MLK_SIMD_F32_H */
