/*
 * mlk_simd_f64.h -- float64 activation kernels written with intrinsics for
 * the x86-64-v4 (AVX-512) and x86-64-v3 (AVX2+FMA) objects.  The portable C
 * of mlk_act_tmpl.h / mlk_math.h stays the baseline and the reference: the
 * algorithms here are the same where it matters (same selects for NaN,
 * infinities and signed zeros, the same compensated quotients), and the
 * results agree with the scalar ones to 1-2 ULP (benchmarks/ulp_table.py;
 * more only where the function itself is ill-conditioned, e.g. silu_grad
 * next to its zero at x = -1.28, inside the tests' conditioned budgets).
 * What the intrinsics buy, measured on a Sapphire Rapids core:
 *  - AVX-512 exp from a 16-entry table 2^(j/16) (vpermt2pd, the index read
 *    straight from the rounding shift) and a degree-7 polynomial instead of
 *    degree 12: 6 FMAs fewer, and the result rounded once (0.5 + 0.02 ULP);
 *  - masked operations and a rarely taken branch for the far tails instead
 *    of selects on every element (silu, silu_grad);
 *  - elu's e^x - 1 from the same table with an error-free assembly (half
 *    the operations of mlk_expm1_f64);
 *  - quotients: one division and the exact-residual correction of
 *    mlk_div_fix_f64 (the divider runs beside the FMA ports; vrcp14pd with
 *    Newton steps measured no faster), vrcp14pd + one Newton step where a
 *    2^-28 reciprocal is enough (tanh; a second quotient in log1p);
 *  - masked tails instead of scalar remainder loops;
 *  - gelu(approximate="tanh") (AVX-512 only): the table exp with the
 *    rounding error of u2 folded into its reduced argument, E rounded once
 *    instead of carried as a pair (mlk_gelu_tanh_f64).
 * AVX2 (v3) keeps mlk_math.h's exp and expm1 algorithms (no cheap 16-entry
 * permute) and divides; written out here they still run 1.3-2.5x faster
 * than gcc's vectorisation of the scalar code (elu, silu, sigmoid).
 *
 * Included by mlk_kernels_tmpl.h in its float64 instantiation only (the
 * per-ISA objects set __AVX512F__ / __AVX2__); it defines
 * mlk_simd_unary_f64 / mlk_simd_binary_f64, which run the ops they have
 * through the same blocked map bodies as the scalar kernels (aligned head,
 * L1 blocking, streamed stores) and return 0 for the others (and for
 * parameters they do not specialise), which then take the portable loop.
 * The tails of a block are masked loads/stores, not scalar loops.
 */
#ifndef MLK_SIMD_F64_H
#define MLK_SIMD_F64_H
#include <immintrin.h>

#if defined(_MSC_VER) && !defined(__clang__)
/* MSVC builds the portable kernels only (see setup.py): nothing here */
#elif defined(__AVX512F__) && defined(__AVX512DQ__)
#define MLK_SIMD_F64 512
#define MLK_VN 8
typedef __m512d mlk_vd;
typedef __mmask8 mlk_vm;
#define v_set(c) _mm512_set1_pd(c)
#define v_add _mm512_add_pd
#define v_sub _mm512_sub_pd
#define v_mul _mm512_mul_pd
#define v_fma _mm512_fmadd_pd              /* a b + c */
#define v_fms _mm512_fmsub_pd              /* a b - c */
#define v_fnma _mm512_fnmadd_pd            /* c - a b */
#define v_max _mm512_max_pd                /* second operand if either is NaN */
#define v_min _mm512_min_pd
#define m_lt(a, b) _mm512_cmp_pd_mask(a, b, _CMP_LT_OQ)
#define m_le(a, b) _mm512_cmp_pd_mask(a, b, _CMP_LE_OQ)
#define m_gt(a, b) _mm512_cmp_pd_mask(a, b, _CMP_GT_OQ)
#define m_ge(a, b) _mm512_cmp_pd_mask(a, b, _CMP_GE_OQ)
#define m_nge(a, b) _mm512_cmp_pd_mask(a, b, _CMP_NGE_UQ)           /* a < b or NaN */
#define m_eq(a, b) _mm512_cmp_pd_mask(a, b, _CMP_EQ_OQ)
#define m_unord(a) _mm512_cmp_pd_mask(a, a, _CMP_UNORD_Q)
#define v_sel(m, a, b) _mm512_mask_blend_pd(m, b, a)   /* m ? a : b */
#define v_and(a, b) _mm512_and_pd(a, b)
#define v_or(a, b) _mm512_or_pd(a, b)
#define v_andnot(a, b) _mm512_andnot_pd(a, b)          /* ~a & b */
/* 2^(n + bias) from the bits of the rounding shift (low bits hold n) */
#define v_pow2_bits(kd, bias) \
    _mm512_castsi512_pd(_mm512_slli_epi64(_mm512_add_epi64(_mm512_castpd_si512(kd), \
                                                           _mm512_set1_epi64(bias)), 52))
#define v_rcp_approx(d) _mm512_rcp14_pd(d)            /* |rel. error| < 2^-14 */
#define v_mask_mul(src, m, a, b) _mm512_mask_mul_pd(src, m, a, b)   /* m ? a b : src */
#define v_maskz_fms(m, a, b, c) _mm512_maskz_fmsub_pd(m, a, b, c)   /* m ? a b - c : 0 */
#define m_or(a, b) ((mlk_vm)((a) | (b)))
#define m_andn(a, b) ((mlk_vm)(~(a) & (b)))                        /* ~a & b */
#define m_any(m) ((m) != 0)
MLK_INLINE mlk_vm mlk_v_tailmask(intptr_t k) { return (mlk_vm)((1u << k) - 1u); }
#define v_load(p) _mm512_loadu_pd(p)
#define v_store(p, v) _mm512_storeu_pd(p, v)
#define v_load_tail(p, k) _mm512_maskz_loadu_pd(mlk_v_tailmask(k), p)
#define v_store_tail(p, v, k) _mm512_mask_storeu_pd(p, mlk_v_tailmask(k), v)

#elif defined(__AVX2__) && defined(__FMA__)
#define MLK_SIMD_F64 256
#define MLK_VN 4
typedef __m256d mlk_vd;
typedef __m256d mlk_vm;
#define v_set(c) _mm256_set1_pd(c)
#define v_add _mm256_add_pd
#define v_sub _mm256_sub_pd
#define v_mul _mm256_mul_pd
#define v_fma _mm256_fmadd_pd
#define v_fms _mm256_fmsub_pd
#define v_fnma _mm256_fnmadd_pd
#define v_max _mm256_max_pd
#define v_min _mm256_min_pd
#define m_lt(a, b) _mm256_cmp_pd(a, b, _CMP_LT_OQ)
#define m_le(a, b) _mm256_cmp_pd(a, b, _CMP_LE_OQ)
#define m_gt(a, b) _mm256_cmp_pd(a, b, _CMP_GT_OQ)
#define m_ge(a, b) _mm256_cmp_pd(a, b, _CMP_GE_OQ)
#define m_nge(a, b) _mm256_cmp_pd(a, b, _CMP_NGE_UQ)
#define m_eq(a, b) _mm256_cmp_pd(a, b, _CMP_EQ_OQ)
#define m_unord(a) _mm256_cmp_pd(a, a, _CMP_UNORD_Q)
#define v_sel(m, a, b) _mm256_blendv_pd(b, a, m)
#define v_and(a, b) _mm256_and_pd(a, b)
#define v_or(a, b) _mm256_or_pd(a, b)
#define v_andnot(a, b) _mm256_andnot_pd(a, b)
#define v_pow2_bits(kd, bias) \
    _mm256_castsi256_pd(_mm256_slli_epi64(_mm256_add_epi64(_mm256_castpd_si256(kd), \
                                                           _mm256_set1_epi64x(bias)), 52))
/* vrcpps on the float conversion: 12 bits, for d in the float range (the
   callers' d are in [1, 4]; NaN stays NaN) */
#define v_rcp_approx(d) _mm256_cvtps_pd(_mm_rcp_ps(_mm256_cvtpd_ps(d)))
#define v_mask_mul(src, m, a, b) v_sel(m, _mm256_mul_pd(a, b), src)
#define v_maskz_fms(m, a, b, c) _mm256_and_pd(m, _mm256_fmsub_pd(a, b, c))
#define m_or(a, b) _mm256_or_pd(a, b)
#define m_andn(a, b) _mm256_andnot_pd(a, b)
#define m_any(m) (_mm256_movemask_pd(m) != 0)
MLK_INLINE __m256i mlk_v_tailmask(intptr_t k) {
    return _mm256_cmpgt_epi64(_mm256_set1_epi64x((long long)k), _mm256_setr_epi64x(0, 1, 2, 3));
}
#define v_load(p) _mm256_loadu_pd(p)
#define v_store(p, v) _mm256_storeu_pd(p, v)
#define v_load_tail(p, k) _mm256_maskload_pd(p, mlk_v_tailmask(k))
#define v_store_tail(p, v, k) _mm256_maskstore_pd(p, mlk_v_tailmask(k), v)
#endif

#ifdef MLK_SIMD_F64
#define v_abs(a) v_andnot(v_set(-0.0), a)

/* ---- reciprocals and the corrected quotient --------------------------- */
/* 1/d to ~2^-40 (14-bit guess, one cubic Newton step; AVX2: 12 -> 2^-34
   plus a quadratic step), d > 0; NaN propagates */
/* 1/d correctly rounded (the divider: one element per ~2 cycles at every
   width, but it runs beside the FMA ports; in these loops of ~35 other
   operations per vector it measured as fast as vrcp14pd plus Newton steps,
   so the single-quotient kernels divide, as the scalar code does) */
#if MLK_SIMD_F64 == 512
MLK_INLINE mlk_vd mlk_v_recip(mlk_vd d) { return _mm512_div_pd(v_set(1.0), d); }
/* 1/d to 2^-28 without the divider (vrcp14pd, one Newton step): for a
   second quotient in one kernel, or one whose correction needs only that */
MLK_INLINE mlk_vd mlk_v_recip28(mlk_vd d) {
    mlk_vd y = v_rcp_approx(d);
    return v_fma(y, v_fnma(d, y, v_set(1.0)), y);
}
#else
MLK_INLINE mlk_vd mlk_v_recip(mlk_vd d) { return _mm256_div_pd(v_set(1.0), d); }
MLK_INLINE mlk_vd mlk_v_recip28(mlk_vd d) { return _mm256_div_pd(v_set(1.0), d); }
#endif
/* (num + numerr)/(d + derr) as mlk_div_fix_f64 from rd ~ 1/d (an ulp, or
   2^-28): q = num rd, its residual q d - num one FMA (exact, or exact to
   ~2^-81 of q), and one correction leaves the rounding of the last operation
   (plus 2^-56 relative from a 2^-28 rd).  The residual is subtracted so that
   q = -0 stays -0. */
MLK_INLINE mlk_vd mlk_v_div_fix(mlk_vd num, mlk_vd numerr, mlk_vd d, mlk_vd derr, mlk_vd rd) {
    mlk_vd q = v_mul(num, rd);
    mlk_vd nres = v_fma(q, derr, v_sub(v_fms(q, d, num), numerr));
    return v_fnma(nres, rd, q);
}
MLK_INLINE mlk_vd mlk_v_div_fix0(mlk_vd num, mlk_vd d, mlk_vd derr, mlk_vd rd) {
    mlk_vd q = v_mul(num, rd);
    mlk_vd nres = v_fma(q, derr, v_fms(q, d, num));
    return v_fnma(nres, rd, q);
}

/* ---- e^x for x <= 0, scaled by 2^512 (mlk_expneg_scaled_f64) ---------- */
/* q1 = (q - 1/2)/r, the fit without its constant term (mlk_expq1_f64) */
MLK_INLINE mlk_vd mlk_v_expq1(mlk_vd r) {
    mlk_vd q = v_set(2.0914898727175524234e-9);
    q = v_fma(q, r, v_set(2.5105513541847084876e-8));
    q = v_fma(q, r, v_set(2.7557273132896040925e-7));
    q = v_fma(q, r, v_set(2.7557254685728802533e-6));
    q = v_fma(q, r, v_set(0.000024801587325951109373));
    q = v_fma(q, r, v_set(0.00019841269875385479525));
    q = v_fma(q, r, v_set(0.0013888888888883632605));
    q = v_fma(q, r, v_set(0.0083333333333259731077));
    q = v_fma(q, r, v_set(0.041666666666666669842));
    q = v_fma(q, r, v_set(0.16666666666666671113));
    return q;
}
MLK_INLINE mlk_vd mlk_v_expq(mlk_vd r) { return v_fma(mlk_v_expq1(r), r, v_set(0.5)); }
#if MLK_SIMD_F64 == 512
/* AVX-512: x = (16 n + j) ln2/16 + r, |r| <= ln2/32, e^x = 2^n 2^(j/16) e^r.
 * 2^(j/16) = T_j (1 + l_j) from two 16-entry tables picked by vpermt2pd (the
 * index is the low 4 bits of the rounding shift's integer, read as is); the
 * entries hold the bits of T_j minus j 2^48 plus the bias 512 2^52, so that
 * adding k 2^48 (k = 16 n + j) gives the bits of 2^(n+512) T_j -- a normal
 * number for every x >= -1060.  e^r - 1 = r + r^2 q(r), q the Taylor
 * polynomial to r^5 (truncation 1.2e-18); the result 2^(n+512) T_j (1 + t),
 * t = l_j + r + r^2 q, is rounded once (one FMA): 0.5 + 0.02 ULP, no r
 * rounding carried (|r| is 16 times smaller than in mlk_math.h's scheme).
 * 6 polynomial FMAs instead of 11. */
static const uint64_t mlk_v_exp16_bits[16] __attribute__((aligned(64))) = {
    0x5ff0000000000000ULL, 0x5fefb5586cf9890fULL, 0x5fef72b83c7d517bULL, 0x5fef387a6e756238ULL,
    0x5fef06fe0a31b715ULL, 0x5feedea64c123422ULL, 0x5feebfdad5362a27ULL, 0x5feeab07dd485429ULL,
    0x5feea09e667f3bcdULL, 0x5feea11473eb0187ULL, 0x5feeace5422aa0dbULL, 0x5feec49182a3f090ULL,
    0x5feee89f995ad3adULL, 0x5fef199bdd85529cULL, 0x5fef5818dcfba487ULL, 0x5fefa4afa2a490daULL};
static const double mlk_v_exp16_lo[16] __attribute__((aligned(64))) = {
    0.0, 8.189317638195515e-17, -2.7939114859515733e-17, 7.826573258636076e-17,
    3.3484623336251524e-17, 3.750854201303127e-17, 1.9572585293112036e-17, 5.68648095791174e-17,
    -6.835808657661922e-17, -2.3591094770850053e-17, 5.1548301170786783e-17, 1.5341410053603723e-17,
    4.875160526227062e-17, 1.685487290628973e-17, 1.790126907604513e-17, -5.545065618639427e-17};
/* the same bits without the bias (2^n T_j, for x >= -700: no subnormal scale) */
static const uint64_t mlk_v_exp16_bits0[16] __attribute__((aligned(64))) = {
    0x3ff0000000000000ULL, 0x3fefb5586cf9890fULL, 0x3fef72b83c7d517bULL, 0x3fef387a6e756238ULL,
    0x3fef06fe0a31b715ULL, 0x3feedea64c123422ULL, 0x3feebfdad5362a27ULL, 0x3feeab07dd485429ULL,
    0x3feea09e667f3bcdULL, 0x3feea11473eb0187ULL, 0x3feeace5422aa0dbULL, 0x3feec49182a3f090ULL,
    0x3feee89f995ad3adULL, 0x3fef199bdd85529cULL, 0x3fef5818dcfba487ULL, 0x3fefa4afa2a490daULL};
/* the table step: S = 2^n T_j from bits (biased or not; kd ~ x 16/ln2 + the
   rounding shift, whose integer's low 4 bits are j), l_j into *tl */
MLK_INLINE mlk_vd mlk_v_exp16_scale(mlk_vd kd, const uint64_t *bits, mlk_vd *tl) {
    __m512i ki = _mm512_castpd_si512(kd);
    __m512i sb = _mm512_permutex2var_epi64(_mm512_load_si512((const void *)bits), ki,
                                           _mm512_load_si512((const void *)(bits + 8)));
    *tl = _mm512_permutex2var_pd(_mm512_load_pd(mlk_v_exp16_lo), ki, _mm512_load_pd(mlk_v_exp16_lo + 8));
    return _mm512_castsi512_pd(_mm512_add_epi64(sb, _mm512_slli_epi64(ki, 48)));
}
/* q(r) = (e^r - 1 - r)/r^2 to r^5 (Taylor; |r| <= ln2/32) */
MLK_INLINE mlk_vd mlk_v_exp16_q(mlk_vd r) {
    mlk_vd q = v_set(1.0 / 5040);
    q = v_fma(q, r, v_set(1.0 / 720));
    q = v_fma(q, r, v_set(1.0 / 120));
    q = v_fma(q, r, v_set(1.0 / 24));
    q = v_fma(q, r, v_set(1.0 / 6));
    return v_fma(q, r, v_set(0.5));
}
/* S (1 + t) rounded once, for xc in the range of the table bits */
MLK_INLINE mlk_vd mlk_v_exp16(mlk_vd xc, const uint64_t *bits) {
    mlk_vd kd = v_fma(xc, v_set(23.083120654223414), v_set(MLK_SHIFT64));   /* 16/ln2 */
    mlk_vd tl;
    mlk_vd s = mlk_v_exp16_scale(kd, bits, &tl);
    kd = v_sub(kd, v_set(MLK_SHIFT64));
    mlk_vd r = v_fnma(kd, v_set(MLK_LN2HI_64 / 16), xc);   /* exact */
    r = v_fnma(kd, v_set(MLK_LN2LO_64 / 16), r);
    mlk_vd t = v_add(r, v_fma(v_mul(r, r), mlk_v_exp16_q(r), tl));
    return v_fma(s, t, s);
}
/* e^x for x in [-700, 700] (NaN kept), unscaled (the bias-free table) */
MLK_INLINE mlk_vd mlk_v_exp_mid(mlk_vd xc) { return mlk_v_exp16(xc, mlk_v_exp16_bits0); }
/* keep0: exactly 0 below -1060 (callers that test E == 0 or use E scaled);
   without it E is 2^512 e^-1060 there, which still unscales to 0; keep0 = 2:
   no clamp at all, the caller replaces every lane below -1060 */
MLK_INLINE mlk_vd mlk_v_expneg_scaled(mlk_vd x, int keep0, int acc) {
    const mlk_vd lo = v_set(-1060.0);
    mlk_vd xc = keep0 == 2 ? x : v_max(lo, x);        /* NaN kept */
    (void)acc;                                        /* rc is below 0.01 ULP here */
    mlk_vd y = mlk_v_exp16(xc, mlk_v_exp16_bits);
    return keep0 == 1 ? v_sel(m_lt(x, lo), v_set(0.0), y) : y;
}
#else
/* AVX2: mlk_math.h's scheme (degree-10 q; acc: r's rounding carried); the
   last step p s = s + s t is one FMA (one rounding fewer than (1 + t) s) */
MLK_INLINE mlk_vd mlk_v_expneg_scaled(mlk_vd x, int keep0, int acc) {
    const mlk_vd lo = v_set(-1060.0);
    mlk_vd xc = v_max(lo, x);                         /* NaN kept */
    mlk_vd kd = v_fma(xc, v_set(MLK_INVLN2_64), v_set(MLK_SHIFT64));
    mlk_vd s = v_pow2_bits(kd, 1023 + 512);           /* 2^(n+512) */
    kd = v_sub(kd, v_set(MLK_SHIFT64));
    mlk_vd rh = v_fnma(kd, v_set(MLK_LN2HI_64), xc);
    mlk_vd t;
    if (acc) {                                        /* mlk_expneg_scaled_acc_f64 */
        mlk_vd rl = v_mul(kd, v_set(-MLK_LN2LO_64));
        mlk_vd r = v_add(rh, rl);
        mlk_vd rc = v_add(v_sub(rh, r), rl);
        t = v_add(r, v_fma(v_mul(r, r), mlk_v_expq(r), rc));
    } else {
        mlk_vd r = v_fnma(kd, v_set(MLK_LN2LO_64), rh);
        t = v_fma(v_mul(r, r), mlk_v_expq(r), r);
    }
    mlk_vd y = v_fma(s, t, s);
    return keep0 == 1 ? v_sel(m_lt(x, lo), v_set(0.0), y) : y;
}
#endif

/* ---- the activations (see mlk_act_tmpl.h for the scalar twins) -------- */
MLK_INLINE mlk_vd mlk_v_sigmoid(mlk_vd x) {
    mlk_vd e = v_mul(mlk_v_expneg_scaled(v_or(x, v_set(-0.0)), 0, 0), v_set(MLK_EXPNEG_UNSCALE_f64));
    mlk_vd num = v_sel(m_ge(x, v_set(0.0)), v_set(1.0), e);
    mlk_vd d = v_add(v_set(1.0), e);
    mlk_vd derr = v_add(v_sub(v_set(1.0), d), e);
    return mlk_v_div_fix0(num, d, derr, mlk_v_recip(d));   /* NaN through e */
}

/* x sigmoid(x) (mlk_xsig_core_f64 with z = x, no Elo).  The far tails
   (|x| > 1060, where E is exactly 0 in the scalar code, infinities included)
   take a rarely taken branch: x on the right, a signed 0 on the left. */
MLK_INLINE mlk_vd mlk_v_silu1(mlk_vd x) {
    const mlk_vd zero = v_set(0.0);
    mlk_vd nax = v_or(x, v_set(-0.0));
    mlk_vd E = mlk_v_expneg_scaled(nax, 2, 1);                   /* far lanes below */
    mlk_vd e = v_mul(E, v_set(MLK_EXPNEG_UNSCALE_f64));
    mlk_vm neg = m_nge(x, zero);                                /* x < 0 or NaN */
    mlk_vd num = v_mask_mul(x, neg, x, E);
    mlk_vd numerr = v_maskz_fms(neg, x, E, num);
    mlk_vd d = v_add(v_set(1.0), e);
    mlk_vd derr = v_add(v_sub(v_set(1.0), d), e);
    mlk_vd y = mlk_v_div_fix(num, numerr, d, derr, mlk_v_recip(d));
    y = v_mask_mul(y, neg, y, v_set(MLK_EXPNEG_UNSCALE_f64));
    mlk_vm far = m_lt(nax, v_set(-1060.0));
    if (m_any(far))
        y = v_sel(far, v_sel(m_lt(x, zero), v_set(-0.0), x), y);
    return y;
}

/* d/dx x sigmoid(z), z = beta x (mlk_silu_grad): s (1 + z (1 - s)), the
   1 + z (1 - s) in one FMA; far tails (|z| > 1060) and NaN on a rare branch */
MLK_INLINE mlk_vd mlk_v_silu_grad(mlk_vd x, mlk_vd beta) {
    const mlk_vd zero = v_set(0.0), one = v_set(1.0);
    mlk_vd z = v_mul(beta, x);
    mlk_vd naz = v_or(z, v_set(-0.0));
    mlk_vd E = mlk_v_expneg_scaled(naz, 2, 0);                   /* far lanes below */
    mlk_vd e = v_mul(E, v_set(MLK_EXPNEG_UNSCALE_f64));
    mlk_vd r = mlk_v_recip(v_add(one, e));
    mlk_vm pos = m_ge(z, zero);
    mlk_vd ss = v_mul(v_sel(pos, v_set(MLK_EXPNEG_SCALE_f64), E), r);   /* 2^512 s */
    mlk_vd sn = v_sel(pos, v_mul(e, r), r);                               /* 1 - s */
    mlk_vd t = v_sel(m_eq(sn, zero), one, v_fma(z, sn, one));
    mlk_vd g = v_mul(v_mul(ss, t), v_set(MLK_EXPNEG_UNSCALE_f64));
    mlk_vm rare = m_or(m_lt(naz, v_set(-1060.0)), m_unord(x));
    if (m_any(rare)) {
        g = v_sel(m_lt(naz, v_set(-1060.0)), v_sel(m_lt(z, zero), zero, one), g);
        g = v_sel(m_unord(x), x, g);
    }
    return g;
}

/* tanh: x + x^3 P(x^2) below 0.55, 1 - 2e/(1+e) above (mlk_tanh_f64); the
   quotient here is corrected (rounding of 1 + e and residual), the scalar
   one is a plain division */
MLK_INLINE mlk_vd mlk_v_tanh(mlk_vd x) {
    mlk_vd ax = v_abs(x);
    mlk_vd t = v_mul(ax, ax);
    mlk_vd P = v_set(-0.000020602765376366341979);
    P = v_fma(P, t, v_set(0.000085113136855776715693));
    P = v_fma(P, t, v_set(-0.00023463474108872371477));
    P = v_fma(P, t, v_set(0.00058893605200740577709));
    P = v_fma(P, t, v_set(-0.0014556618301007160336));
    P = v_fma(P, t, v_set(0.0035921103786890238773));
    P = v_fma(P, t, v_set(-0.0088632343978143548378));
    P = v_fma(P, t, v_set(0.021869488493666941903));
    P = v_fma(P, t, v_set(-0.053968253967434014504));
    P = v_fma(P, t, v_set(0.13333333333332714826));
    P = v_fma(P, t, v_set(-0.33333333333333332561));
    mlk_vd ys = v_fma(ax, v_mul(t, P), ax);
#if MLK_SIMD_F64 == 512
    mlk_vd e = mlk_v_exp_mid(v_max(v_set(-80.0), v_mul(ax, v_set(-2.0))));   /* tanh(40) = 1 */
#else
    mlk_vd e = v_mul(mlk_v_expneg_scaled(v_mul(ax, v_set(-2.0)), 0, 0), v_set(MLK_EXPNEG_UNSCALE_f64));
#endif
    mlk_vd d = v_add(v_set(1.0), e);
    mlk_vd derr = v_add(v_sub(v_set(1.0), d), e);
    /* 1/d to 2^-28 is enough here: the corrected q is within 2^-56 of
       2e/(1 + e) <= 1/2, 1/16 ULP of 1 - q */
    mlk_vd rd = mlk_v_recip28(d);
    mlk_vd q = mlk_v_div_fix0(v_add(e, e), d, derr, rd);
    mlk_vd yl = v_sub(v_set(1.0), q);
    mlk_vd y = v_sel(m_lt(ax, v_set(0.55)), ys, yl);
    return v_or(y, v_and(x, v_set(-0.0)));           /* sign of x; NaN through ys/yl */
}

/* 4^k e/(1+e)^2 from num_s = 4^k E (mlk_bell_f64) */
MLK_INLINE mlk_vd mlk_v_bell(mlk_vd num_s, mlk_vd E) {
    mlk_vd e = v_mul(E, v_set(MLK_EXPNEG_UNSCALE_f64));
    mlk_vd d = v_add(v_set(1.0), e);
    mlk_vd derr = v_add(v_sub(v_set(1.0), d), e);
    mlk_vd D = v_mul(d, d);
    mlk_vd Derr = v_fma(v_add(d, d), derr, v_fms(d, d, D));
    return v_mul(mlk_v_div_fix0(num_s, D, Derr, mlk_v_recip(D)), v_set(MLK_EXPNEG_UNSCALE_f64));
}
MLK_INLINE mlk_vd mlk_v_sigmoid_grad(mlk_vd x) {
    mlk_vd E = mlk_v_expneg_scaled(v_or(x, v_set(-0.0)), 0, 0);
    return mlk_v_bell(E, E);
}
MLK_INLINE mlk_vd mlk_v_tanh_grad(mlk_vd x) {
    mlk_vd E = mlk_v_expneg_scaled(v_mul(v_abs(x), v_set(-2.0)), 0, 0);
    return mlk_v_bell(v_mul(v_set(4.0), E), E);
}

/* log1p(e), e in [0, 1] or NaN (mlk_log1p_unit_f64 with mlk_log_poly_f64) */
MLK_INLINE mlk_vd mlk_v_log1p_unit(mlk_vd e) {
    const mlk_vd one = v_set(1.0);
    mlk_vd u = v_add(one, e);
    /* c = (1 + e - u)/u, the whole result when u rounds to 1: corrected */
    mlk_vd cn = v_sub(e, v_sub(u, one));
    mlk_vd ru = mlk_v_recip28(u);
    mlk_vd c = v_mul(cn, ru);
    c = v_fnma(v_fms(c, u, cn), ru, c);
    mlk_vm hi = m_gt(u, v_set(1.4142135623730951));
    mlk_vd k = v_sel(hi, one, v_set(0.0));
    mlk_vd f = v_sub(v_sel(hi, v_mul(u, v_set(0.5)), u), one);
    mlk_vd s = v_mul(f, mlk_v_recip(v_add(v_set(2.0), f)));
    mlk_vd z = v_mul(s, s);
    mlk_vd w = v_mul(z, z);
    mlk_vd t1 = v_mul(w, v_fma(w, v_fma(w, v_set(1.531383769920937332e-01), v_set(2.222219843214978396e-01)),
                               v_set(3.999999999940941908e-01)));
    mlk_vd t2 = v_mul(z, v_fma(w, v_fma(w, v_fma(w, v_set(1.479819860511658591e-01),
                                                 v_set(1.818357216161805012e-01)),
                                        v_set(2.857142874366239149e-01)),
                               v_set(6.666666666666735130e-01)));
    mlk_vd R = v_add(t2, t1);
    mlk_vd hfsq = v_mul(v_mul(v_set(0.5), f), f);
    mlk_vd inner = v_fma(s, v_add(hfsq, R), v_fma(k, v_set(MLK_LN2LO_64), c));
    return v_fms(k, v_set(MLK_LN2HI_64), v_sub(v_sub(hfsq, inner), f));
}
/* softplus, beta = 1: (x > 0 ? x : 0) + log1p(e^{-|x|}), x above thr */
MLK_INLINE mlk_vd mlk_v_softplus1(mlk_vd x, mlk_vd thr) {
    mlk_vd e = v_mul(mlk_v_expneg_scaled(v_or(x, v_set(-0.0)), 0, 0), v_set(MLK_EXPNEG_UNSCALE_f64));
    mlk_vd m = v_sel(m_gt(x, v_set(0.0)), x, v_set(0.0));
    mlk_vd y = v_add(m, mlk_v_log1p_unit(e));
    return v_sel(m_gt(x, thr), x, y);
}
MLK_INLINE mlk_vd mlk_v_log_sigmoid(mlk_vd x) {
    mlk_vd e = v_mul(mlk_v_expneg_scaled(v_or(x, v_set(-0.0)), 0, 0), v_set(MLK_EXPNEG_UNSCALE_f64));
    mlk_vd m = v_sel(m_lt(x, v_set(0.0)), x, v_set(0.0));
    return v_sub(m, mlk_v_log1p_unit(e));
}
/* softplus' = sigmoid(beta x), 1 above thr */
MLK_INLINE mlk_vd mlk_v_softplus_grad(mlk_vd x, mlk_vd beta, mlk_vd thr) {
    mlk_vd z = v_mul(beta, x);
    return v_sel(m_gt(z, thr), v_set(1.0), mlk_v_sigmoid(z));
}

#if MLK_SIMD_F64 == 512
/* e^x - 1 for x <= 0 or NaN (elu's left branch, -0 kept), from the table
 * scheme above: e^x = S (1 + t), S = 2^n T_j (normal: x >= -60), and
 * e^x - 1 = (S - 1) + S r + S (r^2 q + l_j + rc): S - 1 is taken with its
 * rounding error (exact for S >= 1/2), S r is split error-free (FMA), the two leading terms are
 * added by Fast2Sum (|S - 1| >= 0.042 > |S r| once k != 0), so the result
 * rounds about once (the rounding error rc of r is carried: |r| ~ |result|
 * for small k).  About 35 operations against mlk_expm1_f64's 45. */
/* the core on a clamped xc in [-60, 40] (neg: xc <= 0, where S - 1 may round) */
MLK_INLINE mlk_vd mlk_v_expm1_tab(mlk_vd xc, int neg) {
    mlk_vd kd = v_fma(xc, v_set(23.083120654223414), v_set(MLK_SHIFT64));
    mlk_vd tl;
    mlk_vd S = mlk_v_exp16_scale(kd, mlk_v_exp16_bits0, &tl);   /* 2^n T_j */
    kd = v_sub(kd, v_set(MLK_SHIFT64));
    mlk_vd rh = v_fnma(kd, v_set(MLK_LN2HI_64 / 16), xc);     /* exact */
    mlk_vd rl = v_mul(kd, v_set(-MLK_LN2LO_64 / 16));
    mlk_vd r = v_add(rh, rl);
    mlk_vd rc = v_add(v_sub(rh, r), rl);
    mlk_vd q = mlk_v_exp16_q(r);
    mlk_vd c = v_fma(v_mul(r, r), q, v_add(tl, rc));
    mlk_vd A = v_sub(S, v_set(1.0));
    mlk_vd B = v_mul(S, r);
    mlk_vd Be = v_fms(S, r, B);
    mlk_vd sh = v_add(A, B);
    mlk_vd e1 = v_add(v_sub(A, sh), B);
    mlk_vd lo = v_fma(S, c, Be);
    if (neg)
        lo = v_add(lo, v_sub(S, v_add(A, v_set(1.0))));    /* S < 1/2: S - 1 rounds; A + 1 is exact */
    return v_add(sh, v_add(e1, lo));
}
MLK_INLINE mlk_vd mlk_v_expm1_neg(mlk_vd x) {
    mlk_vd xc = v_max(v_set(-60.0), v_min(v_set(0.0), x));   /* NaN kept; e^-60 - 1 = -1 */
    mlk_vd y = mlk_v_expm1_tab(xc, 1);
    return v_sel(m_eq(x, v_set(0.0)), x, y);                  /* keeps -0 */
}
#else
/* AVX2: mlk_expm1_f64 for x <= 0 (or NaN) as is, without its n > 1000 path */
MLK_INLINE mlk_vd mlk_v_expm1_neg(mlk_vd x) {
    const mlk_vd one = v_set(1.0);
    mlk_vd xc = v_max(v_set(-60.0), v_min(v_set(0.0), x));   /* NaN kept; e^-60 - 1 = -1 */
    mlk_vd kd = v_fma(xc, v_set(MLK_INVLN2_64), v_set(MLK_SHIFT64));
    mlk_vd S = v_pow2_bits(kd, 1023);                         /* 2^n, n >= -87 */
    kd = v_sub(kd, v_set(MLK_SHIFT64));
    mlk_vd rh = v_fnma(kd, v_set(MLK_LN2HI_64), xc);
    mlk_vd rl = v_mul(kd, v_set(-MLK_LN2LO_64));
    mlk_vd r = v_add(rh, rl);
    mlk_vd rc = v_add(v_sub(rh, r), rl);
    mlk_vd a = v_sub(S, one);
    mlk_vd aerr = v_sub(v_sub(S, a), one);
    mlk_vd b = v_mul(S, r);
    mlk_vd hi = v_add(a, b);
    mlk_vd bb = v_sub(hi, a);
    mlk_vd lo = v_add(v_add(v_sub(a, v_sub(hi, bb)), v_sub(b, bb)), aerr);
    mlk_vd r2 = v_mul(r, r);
    mlk_vd r2e = v_fms(r, r, r2);
    mlk_vd c = v_mul(S, v_mul(v_set(0.5), r2));
    mlk_vd hi2 = v_add(hi, c);
    mlk_vd cc = v_sub(hi2, hi);
    mlk_vd lo2 = v_add(v_sub(hi, v_sub(hi2, cc)), v_sub(c, cc));
    mlk_vd t = v_fma(v_mul(r2, r), mlk_v_expq1(r), v_fma(v_set(0.5), r2e, rc));
    mlk_vd y = v_add(hi2, v_fma(S, t, v_add(lo, lo2)));
    return v_sel(m_eq(x, v_set(0.0)), x, y);                  /* keeps -0 */
}
#endif
#if MLK_SIMD_F64 == 512
/* gelu(x, approximate="tanh") = x sigmoid(u2) (mlk_gelu_tanh_f64): u2 = 2
 * sqrt(2/pi) x (1 + 0.044715 x^2) with its rounding error u2e by the
 * error-free products of mlk_gelu_u2 (FMA); u2e is folded into the reduced
 * argument of the table exponential, E = 2^512 e^{-|u2|} (rounded once),
 * then mlk_v_silu1's corrected quotient.  x is clamped to [-24, 24] for u2
 * and the left numerator (|u2| <= 1026 < 1060): beyond, the result is x on
 * the right (e < 2^-1400) and a signed 0 on the left (24 e^{-1025} underflows).
 * NaN, +-0, +-inf by fixupimm: x, x, x, -0, +inf. */
MLK_INLINE mlk_vd mlk_v_gelu_tanh(mlk_vd x) {
    const mlk_vd one = v_set(1.0);
    const mlk_vd kh = v_set(0.044715), ch = v_set(1.5957691216057308);
    const mlk_vd xc = v_max(v_set(-24.0), v_min(v_set(24.0), x));
    const mlk_vd x2 = v_mul(xc, xc);
    const mlk_vd x2e = v_fms(xc, xc, x2);
    const mlk_vd w = v_mul(kh, x2);
    const mlk_vd we = v_add(v_fms(kh, x2, w), v_fma(kh, x2e, v_mul(v_set(2.1960211427085595e-18), x2)));
    const mlk_vd v = v_add(one, w);
    const mlk_vd vw = v_sub(v, one);                                /* TwoSum */
    const mlk_vd ve = v_add(v_add(v_sub(one, v_sub(v, vw)), v_sub(w, vw)), we);
    const mlk_vd t = v_mul(xc, v);
    const mlk_vd te = v_fma(xc, ve, v_fms(xc, v, t));
    const mlk_vd u2 = v_mul(ch, t);
    const mlk_vd u2e = v_fma(ch, te, v_fma(v_set(-9.96930880911092e-17), t, v_fms(ch, t, u2)));
    const __mmask8 neg = _mm512_movepi64_mask(_mm512_castpd_si512(x));     /* sign bit */
    const mlk_vd nz = v_or(u2, v_set(-0.0));                        /* -|u2| >= -1026 */
    const mlk_vd nu2e = v_sub(v_set(0.0), u2e);
    const mlk_vd nze = _mm512_mask_mov_pd(nu2e, neg, u2e);          /* its error */
    /* mlk_v_exp16 with nze added to the reduced argument */
    mlk_vd kd = v_fma(nz, v_set(23.083120654223414), v_set(MLK_SHIFT64));
    mlk_vd tl;
    const mlk_vd S = mlk_v_exp16_scale(kd, mlk_v_exp16_bits, &tl);
    kd = v_sub(kd, v_set(MLK_SHIFT64));
    mlk_vd r = v_fnma(kd, v_set(MLK_LN2HI_64 / 16), nz);           /* exact */
    r = v_add(r, nze);
    r = v_fnma(kd, v_set(MLK_LN2LO_64 / 16), r);
    const mlk_vd E = v_fma(S, v_add(r, v_fma(v_mul(r, r), mlk_v_exp16_q(r), tl)), S);
    const mlk_vd e = v_mul(E, v_set(MLK_EXPNEG_UNSCALE_f64));
    const mlk_vd num = v_mask_mul(x, neg, xc, E);
    const mlk_vd numerr = v_maskz_fms(neg, xc, E, num);
    const mlk_vd d = v_add(one, e);
    const mlk_vd derr = v_add(v_sub(one, d), e);
    mlk_vd y = mlk_v_div_fix(num, numerr, d, derr, mlk_v_recip(d));
    y = v_mask_mul(y, neg, y, v_set(MLK_EXPNEG_UNSCALE_f64));
    /* QNaN, zero -> x (token 1), SNaN -> QNaN(x) (2), -inf -> -0 (7), +inf -> +inf (5) */
    return _mm512_fixupimm_pd(y, x, _mm512_set1_epi64(0x570121), 0);
}
#endif
/* elu: x above 0, alpha (e^x - 1) below */
MLK_INLINE mlk_vd mlk_v_elu(mlk_vd x, mlk_vd alpha) {
    return v_sel(m_gt(x, v_set(0.0)), x, v_mul(alpha, mlk_v_expm1_neg(x)));
}

/* ---- block kernels: n elements, full vectors then one masked tail ----- */
#define MLK_V_UNARY(name, EXPR) \
    static inline void mlk_vblk_##name##_f64(const double *restrict x, double *restrict y, intptr_t n, \
                                             double a_, double b_, double c_) { \
        const mlk_vd a = v_set(a_), b = v_set(b_), c = v_set(c_); \
        (void)a; (void)b; (void)c; \
        intptr_t i = 0; \
        for (; i + MLK_VN <= n; i += MLK_VN) { mlk_vd v = v_load(x + i); v_store(y + i, (EXPR)); } \
        if (i < n) { mlk_vd v = v_load_tail(x + i, n - i); v_store_tail(y + i, (EXPR), n - i); } \
    }
#define MLK_V_BINARY(name, EXPR) \
    static inline void mlk_vblk2_##name##_f64(const double *restrict g, const double *restrict s, \
                                              double *restrict y, intptr_t n, \
                                              double a_, double b_, double c_) { \
        const mlk_vd a = v_set(a_), b = v_set(b_), c = v_set(c_); \
        (void)a; (void)b; (void)c; \
        intptr_t i = 0; \
        for (; i + MLK_VN <= n; i += MLK_VN) { \
            mlk_vd v = v_load(s + i); v_store(y + i, v_mul(v_load(g + i), (EXPR))); } \
        if (i < n) { mlk_vd v = v_load_tail(s + i, n - i); \
            v_store_tail(y + i, v_mul(v_load_tail(g + i, n - i), (EXPR)), n - i); } \
    }
MLK_V_UNARY(sigmoid, mlk_v_sigmoid(v))
MLK_V_UNARY(sigmoid_grad, mlk_v_sigmoid_grad(v))
MLK_V_UNARY(tanh, mlk_v_tanh(v))
MLK_V_UNARY(tanh_grad, mlk_v_tanh_grad(v))
MLK_V_UNARY(silu1, mlk_v_silu1(v))
MLK_V_UNARY(silu_grad, mlk_v_silu_grad(v, b))
MLK_V_UNARY(softplus1, mlk_v_softplus1(v, c))
MLK_V_UNARY(softplus_grad, mlk_v_softplus_grad(v, b, c))
MLK_V_UNARY(log_sigmoid, mlk_v_log_sigmoid(v))
MLK_V_UNARY(log_sigmoid_grad, mlk_v_sigmoid(v_sub(v_set(0.0), v)))
MLK_V_UNARY(elu, mlk_v_elu(v, a))
#if MLK_SIMD_F64 == 512
MLK_V_UNARY(gelu_tanh, mlk_v_gelu_tanh(v))
#endif
MLK_V_BINARY(silu_grad, mlk_v_silu_grad(v, b))
MLK_V_BINARY(softplus_grad, mlk_v_softplus_grad(v, b, c))
MLK_V_BINARY(log_sigmoid_grad, mlk_v_sigmoid(v_sub(v_set(0.0), v)))
#undef MLK_V_UNARY
#undef MLK_V_BINARY
#endif /* MLK_SIMD_F64 */
#endif /* MLK_SIMD_F64_H */

/* ---- the map functions (every inclusion: the float64 instantiation of
   mlk_kernels_tmpl.h includes this once, where MLK_DEF_VMAP is defined) -- */
#if defined(MLK_SIMD_F64) && defined(MLK_DEF_VMAP) && !defined(MLK_SIMD_F64_MAPS)
#define MLK_SIMD_F64_MAPS
MLK_DEF_VMAP(v_sigmoid, mlk_vblk_sigmoid_f64)
MLK_DEF_VMAP(v_sigmoid_grad, mlk_vblk_sigmoid_grad_f64)
MLK_DEF_VMAP(v_tanh, mlk_vblk_tanh_f64)
MLK_DEF_VMAP(v_tanh_grad, mlk_vblk_tanh_grad_f64)
MLK_DEF_VMAP(v_silu1, mlk_vblk_silu1_f64)
MLK_DEF_VMAP(v_silu_grad, mlk_vblk_silu_grad_f64)
MLK_DEF_VMAP(v_softplus1, mlk_vblk_softplus1_f64)
MLK_DEF_VMAP(v_softplus_grad, mlk_vblk_softplus_grad_f64)
MLK_DEF_VMAP(v_log_sigmoid, mlk_vblk_log_sigmoid_f64)
MLK_DEF_VMAP(v_log_sigmoid_grad, mlk_vblk_log_sigmoid_grad_f64)
MLK_DEF_VMAP(v_elu, mlk_vblk_elu_f64)
#if MLK_SIMD_F64 == 512
MLK_DEF_VMAP(v_gelu_tanh, mlk_vblk_gelu_tanh_f64)
#endif
/* 1 if op ran here; 0: take the portable kernel */
static int mlk_simd_unary_f64(int op, const double *restrict x, double *restrict y, intptr_t n,
                              double a, double b, double c) {
    switch (op) {
    case MLK_SIGMOID:          mlk_map_v_sigmoid_f64(x, y, n, a, b, c); return 1;
    case MLK_SIGMOID_GRAD:     mlk_map_v_sigmoid_grad_f64(x, y, n, a, b, c); return 1;
    case MLK_TANH:             mlk_map_v_tanh_f64(x, y, n, a, b, c); return 1;
    case MLK_TANH_GRAD:        mlk_map_v_tanh_grad_f64(x, y, n, a, b, c); return 1;
    case MLK_SILU:
        if (b != 1.0) return 0;
        mlk_map_v_silu1_f64(x, y, n, a, b, c); return 1;
    case MLK_SILU_GRAD:        mlk_map_v_silu_grad_f64(x, y, n, a, b, c); return 1;
    case MLK_SOFTPLUS:
        if (b != 1.0) return 0;
        mlk_map_v_softplus1_f64(x, y, n, a, b, c); return 1;
    case MLK_SOFTPLUS_GRAD:    mlk_map_v_softplus_grad_f64(x, y, n, a, b, c); return 1;
    case MLK_LOG_SIGMOID:      mlk_map_v_log_sigmoid_f64(x, y, n, a, b, c); return 1;
    case MLK_LOG_SIGMOID_GRAD: mlk_map_v_log_sigmoid_grad_f64(x, y, n, a, b, c); return 1;
    case MLK_ELU:              mlk_map_v_elu_f64(x, y, n, a, b, c); return 1;
#if MLK_SIMD_F64 == 512
    case MLK_GELU_TANH:        mlk_map_v_gelu_tanh_f64(x, y, n, a, b, c); return 1;
#endif
    default: return 0;
    }
}
#endif
#if defined(MLK_SIMD_F64) && defined(MLK_DEF_VMAP2) && !defined(MLK_SIMD_F64_MAPS2)
#define MLK_SIMD_F64_MAPS2
MLK_DEF_VMAP2(v_silu_grad, mlk_vblk2_silu_grad_f64)
MLK_DEF_VMAP2(v_softplus_grad, mlk_vblk2_softplus_grad_f64)
MLK_DEF_VMAP2(v_log_sigmoid_grad, mlk_vblk2_log_sigmoid_grad_f64)
static int mlk_simd_binary_f64(int op, const double *restrict g, const double *restrict s,
                               double *restrict y, intptr_t n, double a, double b, double c) {
    switch (op) {
    case MLK_SILU_BWD:        mlk_map2_v_silu_grad_f64(g, s, y, n, a, b, c); return 1;
    case MLK_SOFTPLUS_BWD:    mlk_map2_v_softplus_grad_f64(g, s, y, n, a, b, c); return 1;
    case MLK_LOG_SIGMOID_BWD: mlk_map2_v_log_sigmoid_grad_f64(g, s, y, n, a, b, c); return 1;
    default: return 0;
    }
}
#endif
