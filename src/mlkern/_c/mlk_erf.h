/*
 * mlk_erf.h -- branch-free, vectorisable erf, erfc, normal CDF and PDF.
 *
 * Same rules as mlk_math.h, whose exp building blocks it reuses: every
 * function is `static inline`, selects instead of branches, no tables, no
 * calls, no int64<->double conversions, no 64-bit arithmetic shifts.
 *
 * Method (float64; float32 is the same in float32 arithmetic, degrees in
 * brackets):
 *   For a >= 0, erfc(a) = e^{-a^2} P(t) / (1 + 2a), t = (a - K)/(a + K),
 *     K = 3.5 [2.5], P of degree 22 [11] fitted (relative minimax, mpmath)
 *     to (1 + 2a) erfcx(a) on 0 <= a <= 27.5 [10.5], i.e. ONE piece from 0
 *     to underflow.  P is evaluated as 4 [2] interleaved Horner chains.
 *     Two divisions (t, and P/(1+2a)); everything that rounds on the way is
 *     carried in a low part: the error of t (TwoSum on a -+ K, exact
 *     division remainder) times an approximate P'(t), the last Horner step,
 *     1 + 2a, and the division remainder.
 *   e^{-a^2}: a^2 = hi + lo exactly (fma with __FMA__, Veltkamp/Dekker
 *     otherwise); lo is folded into the reduced argument of one exp
 *     reduction, the result R + Rlo is multiplied in before the 2^n scaling
 *     (float64: with R*r error-free), which is split in two so that the
 *     result rounds once, also when it is subnormal.
 *   erfc(x < 0) = 2 - erfc(-x).
 *   erf(x) = x + x y(x^2), y of degree 8 [4], for |x| < 0.5;
 *            sign(x) (1 - erfc|x|) above.
 *   ndtr(x) = Phi(x): h = e^{-a^2/2} P(t) / (1 + a), a = |x|, with its own P
 *     fitted to (1 + a) erfcx(a/sqrt2)/2 directly in a (no rounded a/sqrt2
 *     anywhere), Phi = h for x < 0, 1 - h for x >= 0.
 *   npdf(x) = e^{-x^2/2}/sqrt(2 pi), same exponential, constant as hi + lo.
 *
 * Accuracy (max error in ULP of the correctly rounded result, 10^6 points
 * each against mpmath, baseline x86-64 and -march=x86-64-v3 builds):
 *   float64: erf 1.2, erfc 1.4, ndtr 1.3, npdf 0.8;
 *   float32: erf 1.2, erfc 2.1, ndtr 1.9, npdf 1.2;
 * relative also in the tails down to underflow: erfc(x) > 0 up to
 * x ~ 26.55 [10.05], ndtr(x) > 0 down to x ~ -38.47 [-14.1] (subnormal
 * results rounded once).  Inputs are clamped at |x| = 28 / 40 [10.5 / 14.5]
 * where the results are 0 (or 1, 2).  Special values: NaN -> NaN,
 * erf(+-inf) = +-1, erfc(+inf) = 0, erfc(-inf) = 2, ndtr(-inf) = 0,
 * ndtr(+inf) = 1, npdf(+-inf) = 0, erf(-0.0) = -0.0.
 */
#ifndef MLK_ERF_H
#define MLK_ERF_H

#include "mlk_math.h"

/* ------------------------------------------------------------------ */
/* float64 helpers                                                     */
/* ------------------------------------------------------------------ */

/* min(a, c) for a >= 0 and c > 0 finite (a = NaN gives c: the callers put
 * NaN back at the end).  Integer arithmetic rather than a select: gcc turns
 * `a > c ? c : a` into a branch and then threads the constant c through the
 * whole function, which after if-conversion costs dozens of blends. */
MLK_INLINE double mlk_minpos_f64(double a, double c) {
    uint64_t b = mlk_bits64(a);
    uint64_t cb = mlk_bits64(c);
    uint64_t m = 0 - ((cb - b) >> 63);     /* all ones when a > c */
    return mlk_from_bits64((b & ~m) | (cb & m));
}


/* a*a = hi + *lo exactly */
MLK_INLINE double mlk_sqr_split_f64(double a, double *lo) {
    double hi = a * a;
    *lo = mlk_prod_err_f64(a, a, hi);
    return hi;
}

/* t = (a - K)/(a + K) rounded; *tlo = its error, to a few per cent:
 * a -+ K are made exact with TwoSum and the division remainder is exact. */
MLK_INLINE double mlk_tvar_f64(double a, double K, double *tlo) {
    double N = a - K;
    double bb = N - a;
    double Nl = (a - (N - bb)) - (K + bb);
    double D = a + K;
    bb = D - a;
    double Dl = (a - (D - bb)) + (K - bb);
    double t = N / D;
#ifdef __FMA__
    double rem = __builtin_fma(-t, D, N);
#else
    double pr = t * D;
    double rem = (N - pr) - mlk_prod_err_f64(t, D, pr);
#endif
    *tlo = ((rem + Nl) - t * Dl) * ((1.0 - t) * (0.5 / K));   /* 1/D = (1-t)/2K */
    return t;
}

/* R + *Rlo = (c0 + c0lo + t S) / (1 + b) to ~0.1 ulp, b >= 0 exact: the rounding of
 * the last Horner step, of 1 + b and of the division are carried in *Rlo.
 * invp approximates 1/(c0 + t S) to ~15%; tlo is the error of t and dp
 * approximates P'(t), to a few per cent. */
MLK_INLINE double mlk_ratio_f64(double c0, double c0lo, double t, double tlo, double dp, double S, double b, double invp, double *Rlo) {
    double ts = t * S;
    double P = c0 + ts;
    double Plo = ((c0 - P) + ts) + (c0lo + dp * tlo);   /* |ts| < c0 */
    double den = 1.0 + b;
    double bb = den - 1.0;
    double dlo = (1.0 - (den - bb)) + (b - bb);
    double R = P / den;
#ifdef __FMA__
    double rem = __builtin_fma(-R, den, P);
#else
    double pr = R * den;
    double rem = (P - pr) - mlk_prod_err_f64(R, den, pr);
#endif
    double ip = invp * (2.0 - P * invp);   /* 1/P to ~2% */
    *Rlo = ((rem + Plo) - R * dlo) * (R * ip);
    return R;
}

/* (R + Rlo) * e^{-(hi + lo)} for 0 <= hi <= 1600, |lo| <= ulp(hi)/2.
 * e^{-hi-lo} = 2^n e^{r2+rc2}; lo is folded into r with a Fast2Sum; the
 * product R e^{r2+rc2} + Rlo is summed with R r2 error-free and scaled by
 * 2^n1 (exact) and 2^n2 (the only rounding when the result is subnormal). */
MLK_INLINE double mlk_expneg2_mul_f64(double hi, double lo, double R, double Rlo) {
    double n;
    double rc;
    double r = mlk_exp_reduce_f64(-hi, &n, &rc);
    double r2 = r - lo;
    double rc2 = rc + ((r - r2) - lo);
    double w = r2 * r2 * mlk_expq_f64(r2) + rc2;    /* e^{r2+rc2} - 1 = r2 + w */
    double n1 = (n * 0.5 + MLK_SHIFT64) - MLK_SHIFT64;
    double n2 = n - n1;
    /* R (1 + r2 + w) + Rlo with R r2 and R + R r2 error-free */
    double pr = R * r2;
    double pe = mlk_prod_err_f64(R, r2, pr);
    double h = R + pr;                      /* |pr| < R/2: Fast2Sum */
    double he = (R - h) + pr;
    double y = h + ((he + pe) + (R * w + Rlo));
    return (y * mlk_pow2i_f64(n1)) * mlk_pow2i_f64(n2);
}

/* erfc(a) for a >= 0 (a = NaN gives a number, see mlk_minpos_f64):
 * (1 + 2a) erfcx(a) = P(t), t = (a - K)/(a + K), P of degree 22 */
MLK_INLINE double mlk_erfc_pos_f64(double a) {
    a = mlk_minpos_f64(a, 28.0);            /* erfc(28) underflows to 0 */
    double lo;
    double hi = mlk_sqr_split_f64(a, &lo);
    double tlo;
    double t = mlk_tvar_f64(a, 3.5, &tlo);
    double d = -0.421172;
    d = d * t + 0.556586;
    d = d * t + -0.385806;
    d = d * t + 0.265655;
    d = d * t + -0.0300774;
    d = d * t + -0.139042;
    double t2 = t * t;
    double t4 = t2 * t2;
    double p0 = 1.1143417476155551e-08;
    p0 = p0 * t4 + 6.037331759778979e-07;
    p0 = p0 * t4 + 2.4262349637512186e-05;
    p0 = p0 * t4 + -0.00030226779236500835;
    p0 = p0 * t4 + 0.087983153825473;
    p0 = p0 * t4 + -0.1400091801376193;
    double p1 = 2.7066895949212204e-09;
    p1 = p1 * t4 + 4.8649992307443006e-09;
    p1 = p1 * t4 + 2.333547061683337e-06;
    p1 = p1 * t4 + 0.0005643847795103634;
    p1 = p1 * t4 + -0.04882332582405548;
    p1 = p1 * t4 + -0.010555596332215634;
    double p2 = -9.551088044125368e-08;
    p2 = p2 * t4 + -3.817260031146182e-06;
    p2 = p2 * t4 + -0.00012151286136759327;
    p2 = p2 * t4 + 0.019099330932631838;
    p2 = p2 * t4 + 0.0975190951532417;
    double p3 = -8.373008543992889e-09;
    p3 = p3 * t4 + -5.460734062877411e-08;
    p3 = p3 * t4 + -4.2783940935178e-05;
    p3 = p3 * t4 + -0.004215019956193764;
    p3 = p3 * t4 + -0.115089598160352;
    double p = (p0 + t * p1) + t2 * (p2 + t * p3);
    double Rlo;
    double R = mlk_ratio_f64(1.2423492448711544, -1.8098172380070423e-17, t, tlo, d, p, 2.0 * a, 0.8743, &Rlo);
    return mlk_expneg2_mul_f64(hi, lo, R, Rlo);
}

/* ------------------------------------------------------------------ */
/* float64 API                                                         */
/* ------------------------------------------------------------------ */
MLK_INLINE double mlk_erfc_f64(double x) {
    double e = mlk_erfc_pos_f64(mlk_abs_f64(x));
    e = x < 0.0 ? 2.0 - e : e;
    return x != x ? x : e;
}

MLK_INLINE double mlk_erf_f64(double x) {
    double ax = mlk_abs_f64(x);
    double z = x * x;
    double z2 = z * z;
    double p0 = 1.4480408115954572e-06;
    p0 = p0 * z2 + 0.00012052369815872556;
    p0 = p0 * z2 + 0.005223977142797842;
    p0 = p0 * z2 + 0.11283791670881382;
    p0 = p0 * z2 + 0.12837916709551256;
    double p1 = -1.4821680516867568e-05;
    p1 = p1 * z2 + -0.0008548277709691772;
    p1 = p1 * z2 + -0.026866170618540713;
    p1 = p1 * z2 + -0.37612638903182954;
    double p = p0 + z * p1;
    double small = x + x * p;               /* keeps -0.0 */
    double big = mlk_copysign_f64(1.0 - mlk_erfc_pos_f64(ax), x);
    big = x != x ? x : big;
    return ax < 0.5 ? small : big;
}

/* Phi(x) = erfc(-x/sqrt2)/2 */
MLK_INLINE double mlk_ndtr_tail_lin_f64(double x, double m, double q) {
    double a = mlk_abs_f64(x);
    a = mlk_minpos_f64(a, 40.0);            /* Phi(-40) underflows to 0 */
    double lo;
    double hi = mlk_sqr_split_f64(a, &lo);
    /* P(t) = (1 + a) erfcx(a/sqrt2)/2, t = (a - K)/(a + K) */
    double tlo;
    double t = mlk_tvar_f64(a, 4.949747468305833, &tlo);
    double d = 0.233998;
    d = d * t + -0.180927;
    d = d * t + -0.013156;
    d = d * t + 0.072953;
    d = d * t + -0.0895243;
    double t2 = t * t;
    double t4 = t2 * t2;
    double p0 = 3.81565861125661e-09;
    p0 = p0 * t4 + 2.0435250884957901e-07;
    p0 = p0 * t4 + 8.339472540014263e-06;
    p0 = p0 * t4 + -6.460987257257998e-05;
    p0 = p0 * t4 + 0.02445268273231201;
    p0 = p0 * t4 + -0.09186260538748318;
    double p1 = 8.864980621103841e-10;
    p1 = p1 * t4 + -2.4536441363523664e-09;
    p1 = p1 * t4 + 6.025206140598942e-07;
    p1 = p1 * t4 + 0.00018371149560623436;
    p1 = p1 * t4 + -0.014775463307998704;
    p1 = p1 * t4 + 0.03040920170672518;
    double p2 = -3.2465471113071475e-08;
    p2 = p2 * t4 + -1.2952958989669367e-06;
    p2 = p2 * t4 + -4.3645711288973636e-05;
    p2 = p2 * t4 + 0.006131371749499927;
    p2 = p2 * t4 + 0.01085072682057172;
    double p3 = -2.314589040597214e-09;
    p3 = p3 * t4 + 8.864910894498018e-09;
    p3 = p3 * t4 + -1.317188636193041e-05;
    p3 = p3 * t4 + -0.0014510769568252433;
    p3 = p3 * t4 + -0.02686168549604742;
    double p = (p0 + t * p1) + t2 * (p2 + t * p3);
    double Rlo;
    double R = mlk_ratio_f64(0.46197901715148837, -1.3073485736373088e-17, t, tlo, d, p, a, 2.14, &Rlo);
    /* e^{-a^2/2} (m (R + Rlo) + q/sqrt(2 pi)) = m h + q phi(x), error-free up
     * to the final scaling, which is the one rounding (also when subnormal) */
    const double c_hi = 0.3989422804014327, c_lo = -2.49232720227773e-17;
    double mR = m * R;
    double mRlo = mlk_prod_err_f64(m, R, mR) + m * Rlo;
    double qc = q * c_hi;
    double qcl = mlk_prod_err_f64(q, c_hi, qc) + q * c_lo;
    double S = mR + qc;
    double bb = S - mR;
    double Slo = ((mR - (S - bb)) + (qc - bb)) + (mRlo + qcl);   /* TwoSum */
    return mlk_expneg2_mul_f64(0.5 * hi, 0.5 * lo, S, Slo);
}

/* m h(|x|), h(a) = Phi(-a), rounded once */
MLK_INLINE double mlk_ndtr_tail_mul_f64(double x, double m) { return mlk_ndtr_tail_lin_f64(x, m, 0.0); }

/* gelu'(x) = Phi(x) + x phi(x) from one exponential: h + x phi for x < 0,
 * 1 - (h - x phi) above; 0 at -inf, 1 at +inf */
MLK_INLINE double mlk_gelu_erf_grad_f64(double x) {
    double xs = mlk_copysign_f64(mlk_minpos_f64(mlk_abs_f64(x), 40.0), x);
    double t = mlk_ndtr_tail_lin_f64(x, 1.0, x < 0.0 ? xs : -xs);
    double g = x < 0.0 ? t : 1.0 - t;
    double far = x < 0.0 ? -0.0 : 1.0;       /* beyond the clamp: the limits */
    g = mlk_abs_f64(x) >= 40.0 ? far : g;
    return x != x ? x : g;
}

/* Phi(x) = erfc(-x/sqrt2)/2: the tail h(|x|) = Phi(-|x|), Phi = h for x < 0
 * and 1 - h above */
MLK_INLINE double mlk_ndtr_f64(double x) {
    double h = mlk_ndtr_tail_mul_f64(x, 1.0);
    h = x < 0.0 ? h : 1.0 - h;
    return x != x ? x : h;
}

/* gelu(x) = x Phi(x): x h for x < 0 (rounded once, also when subnormal),
 * x - x h for x >= 0 (x h <= x/2: no cancellation); -0 at -inf, x at +inf. */
MLK_INLINE double mlk_gelu_erf_f64(double x) {
    /* m = x clamped like the argument: beyond it x h is 0 (-0 for x < 0) */
    double xs = mlk_copysign_f64(mlk_minpos_f64(mlk_abs_f64(x), 40.0), x);
    double xh = mlk_ndtr_tail_mul_f64(x, xs);
    double g = x < 0.0 ? xh : x - xh;
    g = x == 0.0 ? x : g;
    return x != x ? x : g;
}

/* phi(x) = e^{-x^2/2}/sqrt(2 pi) */
MLK_INLINE double mlk_npdf_f64(double x) {
    double a = mlk_abs_f64(x);
    a = mlk_minpos_f64(a, 40.0);
    double lo;
    double hi = mlk_sqr_split_f64(a, &lo);
    double y = mlk_expneg2_mul_f64(0.5 * hi, 0.5 * lo, 0.3989422804014327, -2.49232720227773e-17);
    return x != x ? x : y;
}

/* ------------------------------------------------------------------ */
/* float32: same algorithms in float32 arithmetic                      */
/* ------------------------------------------------------------------ */
MLK_INLINE float mlk_minpos_f32(float a, float c) {
    uint32_t b = mlk_bits32(a);
    uint32_t cb = mlk_bits32(c);
    uint32_t m = 0 - ((cb - b) >> 31);
    return mlk_from_bits32((b & ~m) | (cb & m));
}


MLK_INLINE float mlk_sqr_split_f32(float a, float *lo) {
    float hi = a * a;
    *lo = mlk_prod_err_f32(a, a, hi);
    return hi;
}

/* t = (a - K)/(a + K) rounded; *tlo = its error, to a few per cent:
 * a -+ K are made exact with TwoSum and the division remainder is exact. */
MLK_INLINE float mlk_tvar_f32(float a, float K, float *tlo) {
    float N = a - K;
    float bb = N - a;
    float Nl = (a - (N - bb)) - (K + bb);
    float D = a + K;
    bb = D - a;
    float Dl = (a - (D - bb)) + (K - bb);
    float t = N / D;
#ifdef __FMA__
    float rem = __builtin_fmaf(-t, D, N);
#else
    float pr = t * D;
    float rem = (N - pr) - mlk_prod_err_f32(t, D, pr);
#endif
    *tlo = ((rem + Nl) - t * Dl) * ((1.0f - t) * (0.5f / K));   /* 1/D = (1-t)/2K */
    return t;
}

MLK_INLINE float mlk_ratio_f32(float c0, float c0lo, float t, float tlo, float dp, float S, float b, float invp, float *Rlo) {
    float ts = t * S;
    float P = c0 + ts;
    float Plo = ((c0 - P) + ts) + (c0lo + dp * tlo);
    float den = 1.0f + b;
    float bb = den - 1.0f;
    float dlo = (1.0f - (den - bb)) + (b - bb);
    float R = P / den;
#ifdef __FMA__
    float rem = __builtin_fmaf(-R, den, P);
#else
    float pr = R * den;
    float rem = (P - pr) - mlk_prod_err_f32(R, den, pr);
#endif
    float ip = invp * (2.0f - P * invp);
    *Rlo = ((rem + Plo) - R * dlo) * (R * ip);
    return R;
}

MLK_INLINE float mlk_expneg2_mul_f32(float hi, float lo, float R, float Rlo) {
    float n;
    float rc;
    float r = mlk_exp_reduce_f32(-hi, &n, &rc);
    float r2 = r - lo;
    float rc2 = rc + ((r - r2) - lo);
    float s = r2 + (r2 * r2 * mlk_expq_f32(r2) + rc2);
    float n1 = (n * 0.5f + MLK_SHIFT32) - MLK_SHIFT32;
    float n2 = n - n1;
    float y = R + (R * s + Rlo);
    return (y * mlk_pow2i_f32(n1)) * mlk_pow2i_f32(n2);
}

MLK_INLINE float mlk_erfc_pos_f32(float a) {
    a = mlk_minpos_f32(a, 10.5f);           /* erfc(10.5) underflows to 0 */
    float lo;
    float hi = mlk_sqr_split_f32(a, &lo);
    float tlo;
    float t = mlk_tvar_f32(a, 2.5f, &tlo);
    float d = 0.117334f;
    d = d * t + -0.412783f;
    d = d * t + 0.486577f;
    d = d * t + -0.197791f;
    d = d * t + -0.12291f;
    float t2 = t * t;
    float p0 = -6.0045928e-05f;
    p0 = p0 * t2 + 0.00059676555f;
    p0 = p0 * t2 + -0.004372945f;
    p0 = p0 * t2 + 0.032759923f;
    p0 = p0 * t2 + 0.15762997f;
    p0 = p0 * t2 + -0.122356765f;
    float p1 = -4.875009e-05f;
    p1 = p1 * t2 + 0.00045700313f;
    p1 = p1 * t2 + 0.0009436611f;
    p1 = p1 * t2 + -0.102968745f;
    p1 = p1 * t2 + -0.09902445f;
    float p = p0 + t * p1;
    float Rlo;
    float R = mlk_ratio_f32(1.2648382f, -3.5137788e-08f, t, tlo, d, p, 2.0f * a, 0.8743f, &Rlo);
    return mlk_expneg2_mul_f32(hi, lo, R, Rlo);
}

MLK_INLINE float mlk_erfc_f32(float x) {
    float e = mlk_erfc_pos_f32(mlk_abs_f32(x));
    e = x < 0.0f ? 2.0f - e : e;
    return x != x ? x : e;
}

MLK_INLINE float mlk_erf_f32(float x) {
    float ax = mlk_abs_f32(x);
    float z = x * x;
    float p = 0.00472077f;
    p = p * z + -0.026758814f;
    p = p * z + 0.11282855f;
    p = p * z + -0.3761261f;
    p = p * z + 0.12837917f;
    float small = x + x * p;
    float big = mlk_copysign_f32(1.0f - mlk_erfc_pos_f32(ax), x);
    big = x != x ? x : big;
    return ax < 0.5f ? small : big;
}

MLK_INLINE float mlk_ndtr_tail_lin_f32(float x, float m, float q) {
    float a = mlk_abs_f32(x);
    a = mlk_minpos_f32(a, 14.5f);           /* Phi(-14.5) underflows to 0 */
    float lo;
    float hi = mlk_sqr_split_f32(a, &lo);
    float tlo;
    float t = mlk_tvar_f32(a, 3.535534f, &tlo);
    float d = 0.0415323f;
    d = d * t + -0.123301f;
    d = d * t + 0.116123f;
    d = d * t + 0.00385039f;
    d = d * t + -0.0978548f;
    float t2 = t * t;
    float p0 = -2.1193322e-05f;
    p0 = p0 * t2 + 0.00019438198f;
    p0 = p0 * t2 + -0.0014185448f;
    p0 = p0 * t2 + 0.010997652f;
    p0 = p0 * t2 + 0.037419926f;
    p0 = p0 * t2 + -0.09769923f;
    float p1 = -2.291593e-05f;
    p1 = p1 * t2 + 0.00019626872f;
    p1 = p1 * t2 + -5.382376e-05f;
    p1 = p1 * t2 + -0.030558353f;
    p1 = p1 * t2 + 0.0018521087f;
    float p = p0 + t * p1;
    float Rlo;
    float R = mlk_ratio_f32(0.4780597f, -3.406256e-09f, t, tlo, d, p, a, 2.106f, &Rlo);
    /* e^{-a^2/2} (m (R + Rlo) + q/sqrt(2 pi)) = m h + q phi(x), error-free up
     * to the final scaling, which is the one rounding (also when subnormal) */
    const float c_hi = 0.3989422917366028f, c_lo = -1.1335170135851058e-08f;
    float mR = m * R;
    float mRlo = mlk_prod_err_f32(m, R, mR) + m * Rlo;
    float qc = q * c_hi;
    float qcl = mlk_prod_err_f32(q, c_hi, qc) + q * c_lo;
    float S = mR + qc;
    float bb = S - mR;
    float Slo = ((mR - (S - bb)) + (qc - bb)) + (mRlo + qcl);   /* TwoSum */
    return mlk_expneg2_mul_f32(0.5f * hi, 0.5f * lo, S, Slo);
}

/* mlk_ndtr_tail_lin_f32 without carrying the error of t and of the products
 * by m and q (the quotient is still corrected): the float32 gelu/gelu' path,
 * faster, within the 3-ULP budget (measured in README). */
MLK_INLINE float mlk_ndtr_tail_lin_fast_f32(float x, float m, float q) {
    float a = mlk_abs_f32(x);
    a = mlk_minpos_f32(a, 14.5f);
    float lo;
    float hi = mlk_sqr_split_f32(a, &lo);
    float t = (a - 3.535534f) / (a + 3.535534f);
    float t2 = t * t;
    float p0 = -2.1193322e-05f;
    p0 = p0 * t2 + 0.00019438198f;
    p0 = p0 * t2 + -0.0014185448f;
    p0 = p0 * t2 + 0.010997652f;
    p0 = p0 * t2 + 0.037419926f;
    p0 = p0 * t2 + -0.09769923f;
    float p1 = -2.291593e-05f;
    p1 = p1 * t2 + 0.00019626872f;
    p1 = p1 * t2 + -5.382376e-05f;
    p1 = p1 * t2 + -0.030558353f;
    p1 = p1 * t2 + 0.0018521087f;
    float p = p0 + t * p1;
    float Rlo;
    float R = mlk_ratio_f32(0.4780597f, -3.406256e-09f, t, 0.0f, 0.0f, p, a, 2.106f, &Rlo);
    float S = m * R + q * 0.3989422917366028f;
    return mlk_expneg2_mul_f32(0.5f * hi, 0.5f * lo, S, m * Rlo);
}

/* m h(|x|), h(a) = Phi(-a), rounded once */
MLK_INLINE float mlk_ndtr_tail_mul_f32(float x, float m) { return mlk_ndtr_tail_lin_f32(x, m, 0.0f); }

/* gelu'(x) = Phi(x) + x phi(x) from one exponential: h + x phi for x < 0,
 * 1 - (h - x phi) above; 0 at -inf, 1 at +inf */
MLK_INLINE float mlk_gelu_erf_grad_f32(float x) {
    float xs = mlk_copysign_f32(mlk_minpos_f32(mlk_abs_f32(x), 14.5f), x);
    float t = mlk_ndtr_tail_lin_fast_f32(x, 1.0f, x < 0.0f ? xs : -xs);
    float g = x < 0.0f ? t : 1.0f - t;
    float far = x < 0.0f ? -0.0f : 1.0f;       /* beyond the clamp: the limits */
    g = mlk_abs_f32(x) >= 14.5f ? far : g;
    return x != x ? x : g;
}

/* Phi(x) = erfc(-x/sqrt2)/2: the tail h(|x|) = Phi(-|x|), Phi = h for x < 0
 * and 1 - h above */
MLK_INLINE float mlk_ndtr_f32(float x) {
    float h = mlk_ndtr_tail_mul_f32(x, 1.0f);
    h = x < 0.0f ? h : 1.0f - h;
    return x != x ? x : h;
}

/* gelu(x) = x Phi(x): x h for x < 0 (rounded once, also when subnormal),
 * x - x h for x >= 0 (x h <= x/2: no cancellation); -0 at -inf, x at +inf. */
MLK_INLINE float mlk_gelu_erf_f32(float x) {
    /* m = x clamped like the argument: beyond it x h is 0 (-0 for x < 0) */
    float xs = mlk_copysign_f32(mlk_minpos_f32(mlk_abs_f32(x), 14.5f), x);
    float xh = mlk_ndtr_tail_lin_fast_f32(x, xs, 0.0f);
    float g = x < 0.0f ? xh : x - xh;
    g = x == 0.0f ? x : g;
    return x != x ? x : g;
}

MLK_INLINE float mlk_npdf_f32(float x) {
    float a = mlk_abs_f32(x);
    a = mlk_minpos_f32(a, 14.5f);
    float lo;
    float hi = mlk_sqr_split_f32(a, &lo);
    float y = mlk_expneg2_mul_f32(0.5f * hi, 0.5f * lo, 0.3989422917366028f, -1.1335170135851058e-08f);
    return x != x ? x : y;
}

#endif /* MLK_ERF_H */
