/*
 * mlk_math.h -- branch-free, vectorisable elementary functions for mlkern.
 *
 * Every function here is `static inline` and written with selects instead of
 * branches, no table look-ups and no calls, so that gcc (-O3
 * -fno-math-errno -fno-trapping-math, never -ffast-math) vectorises the loops
 * that call them.  Bit casts go through memcpy (vectorised as plain moves);
 * integer work stays in unsigned 64/32-bit adds, logical shifts and masks,
 * which SSE2 and AVX2 both have (no int64<->double conversions, no
 * arithmetic 64-bit shifts).
 *
 * Accuracy (measured against mpmath by benchmarks/ulp_table.py, see README):
 *   float64: exp, expm1, log, log1p <= 1 ULP; tanh <= 2 ULP.
 *   float32: <= 3 ULP (the float32 functions are evaluated in float32).
 *
 * Special values follow C99 Annex F: NaN in -> NaN out, exp(-inf) = 0,
 * exp(+inf) = inf, log(0) = -inf, log(x<0) = NaN, signed zeros kept.
 */
#ifndef MLK_MATH_H
#define MLK_MATH_H

#include <stdint.h>
#include <string.h>
#include <math.h>

#if defined(_MSC_VER) && !defined(__clang__)
#define MLK_INLINE static __forceinline          /* MSVC (Windows wheels) */
#else
#define MLK_INLINE static inline __attribute__((always_inline))
#endif

/* ------------------------------------------------------------------ */
/* bit casts                                                           */
/* ------------------------------------------------------------------ */
MLK_INLINE uint64_t mlk_bits64(double x) { uint64_t u; memcpy(&u, &x, 8); return u; }
MLK_INLINE double mlk_from_bits64(uint64_t u) { double x; memcpy(&x, &u, 8); return x; }
MLK_INLINE uint32_t mlk_bits32(float x) { uint32_t u; memcpy(&u, &x, 4); return u; }
MLK_INLINE float mlk_from_bits32(uint32_t u) { float x; memcpy(&x, &u, 4); return x; }

MLK_INLINE double mlk_abs_f64(double x) { return mlk_from_bits64(mlk_bits64(x) & 0x7fffffffffffffffULL); }
MLK_INLINE float mlk_abs_f32(float x) { return mlk_from_bits32(mlk_bits32(x) & 0x7fffffffU); }
/* |mag| with the sign of sgn */
MLK_INLINE double mlk_copysign_f64(double mag, double sgn) {
    return mlk_from_bits64((mlk_bits64(mag) & 0x7fffffffffffffffULL) | (mlk_bits64(sgn) & 0x8000000000000000ULL));
}
MLK_INLINE float mlk_copysign_f32(float mag, float sgn) {
    return mlk_from_bits32((mlk_bits32(mag) & 0x7fffffffU) | (mlk_bits32(sgn) & 0x80000000U));
}

/* ------------------------------------------------------------------ */
/* error-free transformations                                          */
/* ------------------------------------------------------------------ */
/* a*b - fl(a*b), exactly: one FMA where the ISA has it, Dekker/Veltkamp
 * splitting otherwise (the baseline has no FMA and a call to fma() would
 * be a slow libm call; no contraction can happen there either). */
MLK_INLINE double mlk_prod_err_f64(double a, double b, double p) {
#ifdef __FMA__
    return __builtin_fma(a, b, -p);
#else
    const double C = 134217729.0;        /* 2^27 + 1 */
    double ca = C * a, cb = C * b;
    double ah = ca - (ca - a), al = a - ah;
    double bh = cb - (cb - b), bl = b - bh;
    return ((ah * bh - p) + ah * bl + al * bh) + al * bl;
#endif
}

/* (num + numerr)/(d + derr), correctly rounded to within ~0.1 ULP more than
 * one rounding: the residual of q = num/d is taken exactly (error-free
 * product) and divided by d approximately -- rd ~ 1/d to a few per cent is
 * enough, the correction is itself an ulp-sized term. */
MLK_INLINE double mlk_div_fix_f64(double num, double numerr, double d, double derr, double rd) {
    double q = num / d;
    /* minus the residual, so that q = -0 stays -0 (q - (+0) = -0) */
#ifdef __FMA__
    /* q d - num in one FMA: the remainder of a correctly rounded quotient is
       representable, so this is exact (3 operations fewer than the split) */
    double nres = (__builtin_fma(q, d, -num) - numerr) + q * derr;
#else
    double qd = q * d;
    double nres = (((qd - num) + mlk_prod_err_f64(q, d, qd)) - numerr) + q * derr;
#endif
    return q - nres * rd;
}

MLK_INLINE float mlk_prod_err_f32(float a, float b, float p) {
#ifdef __FMA__
    return __builtin_fmaf(a, b, -p);
#else
    const float C = 4097.0f;             /* 2^12 + 1 */
    float ca = C * a, cb = C * b;
    float ah = ca - (ca - a), al = a - ah;
    float bh = cb - (cb - b), bl = b - bh;
    return ((ah * bh - p) + ah * bl + al * bh) + al * bl;
#endif
}

MLK_INLINE float mlk_div_fix_f32(float num, float numerr, float d, float derr, float rd) {
    float q = num / d;
    /* minus the residual, so that q = -0 stays -0 (q - (+0) = -0) */
#ifdef __FMA__
    float nres = (__builtin_fmaf(q, d, -num) - numerr) + q * derr;   /* exact, see _f64 */
#else
    float qd = q * d;
    float nres = (((qd - num) + mlk_prod_err_f32(q, d, qd)) - numerr) + q * derr;
#endif
    return q - nres * rd;
}

/* ------------------------------------------------------------------ */
/* exp and expm1, float64                                              */
/*                                                                     */
/* x = n ln2 + r, |r| <= ln2/2 (n by the 1.5*2^52 rounding trick),     */
/* e^r - 1 = r + r^2 q(r), q a degree-10 Chebyshev fit of              */
/* (e^r - 1 - r)/r^2 (error 1.4e-18).  2^n is applied as 2^n1 * 2^n2    */
/* (n1 = round(n/2)) so that the result rounds once, also when it is   */
/* subnormal and when n = 1024.                                        */
/* ------------------------------------------------------------------ */
#define MLK_SHIFT64 0x1.8p52
#define MLK_LN2HI_64 6.93147180369123816490e-01 /* 32 trailing zero bits */
#define MLK_LN2LO_64 1.90821492927058770002e-10
#define MLK_INVLN2_64 1.44269504088896338700e+00

MLK_INLINE double mlk_expq_f64(double r) {
    double q = 2.0914898727175524234e-9;
    q = q * r + 2.5105513541847084876e-8;
    q = q * r + 2.7557273132896040925e-7;
    q = q * r + 2.7557254685728802533e-6;
    q = q * r + 0.000024801587325951109373;
    q = q * r + 0.00019841269875385479525;
    q = q * r + 0.0013888888888883632605;
    q = q * r + 0.0083333333333259731077;
    q = q * r + 0.041666666666666669842;
    q = q * r + 0.16666666666666671113;
    q = q * r + 0.5;
    return q;
}

/* q1 = (q - 1/2)/r: the same fit without its constant term */
MLK_INLINE double mlk_expq1_f64(double r) {
    double q = 2.0914898727175524234e-9;
    q = q * r + 2.5105513541847084876e-8;
    q = q * r + 2.7557273132896040925e-7;
    q = q * r + 2.7557254685728802533e-6;
    q = q * r + 0.000024801587325951109373;
    q = q * r + 0.00019841269875385479525;
    q = q * r + 0.0013888888888883632605;
    q = q * r + 0.0083333333333259731077;
    q = q * r + 0.041666666666666669842;
    q = q * r + 0.16666666666666671113;
    return q;
}

/* 2^n for an integral double n in [-1022, 1023], built from its bits. */
MLK_INLINE double mlk_pow2i_f64(double n) {
    uint64_t b = mlk_bits64(n + MLK_SHIFT64);   /* low bits hold n */
    return mlk_from_bits64((b + 1023) << 52);
}

/* Reduction shared by exp and expm1: returns r, sets *n (integral). */
/* x = n ln2 + r + rc: r rounded, rc its rounding error (x - n ln2hi is exact) */
MLK_INLINE double mlk_exp_reduce_f64(double x, double *n, double *rc) {
    double kd = x * MLK_INVLN2_64 + MLK_SHIFT64;
    kd -= MLK_SHIFT64;
    *n = kd;
    double rh = x - kd * MLK_LN2HI_64;
    double rl = -(kd * MLK_LN2LO_64);
    double r = rh + rl;
    *rc = (rh - r) + rl;
    return r;
}

MLK_INLINE double mlk_exp_f64(double x) {
    /* clamp keeps NaN (comparisons with NaN are false) */
    x = x > 710.0 ? 710.0 : x;
    x = x < -746.0 ? -746.0 : x;
    double n;
    double rc;
    double r = mlk_exp_reduce_f64(x, &n, &rc);
    double p = 1.0 + (r + (r * r * mlk_expq_f64(r) + rc));
    double n1 = (n * 0.5 + MLK_SHIFT64) - MLK_SHIFT64;
    double n2 = n - n1;
    return (p * mlk_pow2i_f64(n1)) * mlk_pow2i_f64(n2);
}

/* e^x - 1 = (2^n - 1) + 2^n r + 2^n r^2/2 + 2^n (r^3 q1(r) + rc), with
 * q = 1/2 + r q1.  The three leading terms are added error-free (two
 * TwoSums, r^2 split exactly), so that the cancellation for 0.35 < x < 0.7
 * and the rounding of r^2 do not cost an ulp (1.04 -> < 1 ULP with FMA).
 * For n > 1000 the whole sum is halved and doubled. */
MLK_INLINE double mlk_expm1_f64(double x) {
    double xc = x > 710.0 ? 710.0 : x;
    xc = xc < -60.0 ? -60.0 : xc;          /* e^-60 - 1 rounds to -1 */
    double n;
    double rc;
    double r = mlk_exp_reduce_f64(xc, &n, &rc);
    double big = n > 1000.0 ? 1.0 : 0.0;
    double s = mlk_pow2i_f64(n - big);
    double one = big > 0.0 ? 0.5 : 1.0;
    double a = s - one;                     /* inexact once n > 53 */
    double aerr = (s - a) - one;
    double b = s * r;
    double hi = a + b;
    double bb = hi - a;
    double lo = ((a - (hi - bb)) + (b - bb)) + aerr;
    double r2 = r * r;
    double r2e = mlk_prod_err_f64(r, r, r2);
    double c = s * (0.5 * r2);              /* exact: scaling by powers of 2 */
    double hi2 = hi + c;
    double cc = hi2 - hi;
    double lo2 = (hi - (hi2 - cc)) + (c - cc);
    double t = r2 * r * mlk_expq1_f64(r) + (0.5 * r2e + rc);
    double y = (hi2 + ((lo + lo2) + s * t)) * (1.0 + big);
    return x == 0.0 ? x : y;                /* keeps -0.0 */
}

/* e^x for x <= 0 (or NaN) -- the exponential every activation needs
 * (e^{-|x|}).  Cheaper than mlk_exp_f64: the scale 2^n, n in [-1076, 0],
 * is built directly from the bits of the rounding shift with a bias of 512
 * (always a normal number) and the bias removed by one constant multiply, so
 * the result rounds once, subnormals included.  No rc term: <= 1 ULP is
 * still met on the normal range (0.5 + 2^-5 ULP from the dropped term). */
/* 2^512 e^x, a normal number for every x <= 0 */
MLK_INLINE double mlk_expneg_scaled_f64(double x) {
    double xc = x < -1060.0 ? -1060.0 : x;    /* 2^512 e^-1060 is still normal */
    double kd = xc * MLK_INVLN2_64 + MLK_SHIFT64;
    uint64_t ki = mlk_bits64(kd);
    kd -= MLK_SHIFT64;
    double r = (xc - kd * MLK_LN2HI_64) - kd * MLK_LN2LO_64;
    double p = 1.0 + (r + r * r * mlk_expq_f64(r));
    double s = mlk_from_bits64((ki + (1023 + 512)) << 52);   /* 2^(n+512) */
    return x < -1060.0 ? 0.0 : p * s;         /* exactly 0 below: x E stays 0 */
}
/* the same with the rounding error of r carried (rc): 0.5 + 2^-10 ULP, for
 * x sigmoid(z), whose quotient adds its own roundings */
MLK_INLINE double mlk_expneg_scaled_acc_f64(double x) {
    double xc = x < -1060.0 ? -1060.0 : x;    /* 2^512 e^-1060 is still normal */
    double kd = xc * MLK_INVLN2_64 + MLK_SHIFT64;
    uint64_t ki = mlk_bits64(kd);
    kd -= MLK_SHIFT64;
    double rh = xc - kd * MLK_LN2HI_64;
    double rl = -(kd * MLK_LN2LO_64);
    double r = rh + rl;
    double rc = (rh - r) + rl;
    double p = 1.0 + (r + (r * r * mlk_expq_f64(r) + rc));
    double s = mlk_from_bits64((ki + (1023 + 512)) << 52);   /* 2^(n+512) */
    return x < -1060.0 ? 0.0 : p * s;         /* exactly 0 below: x E stays 0 */
}
/* the same as a pair E + *lo: the rounding of 1 + (r + ...) is kept
 * (Fast2Sum) instead of rounded away, so E + *lo is within 2^-10 ULP; for
 * x sigmoid(2u) (gelu_tanh), whose left branch takes e's error whole */
MLK_INLINE double mlk_expneg_scaled_hl_f64(double x, double *lo) {
    double xc = x < -1060.0 ? -1060.0 : x;
    double kd = xc * MLK_INVLN2_64 + MLK_SHIFT64;
    uint64_t ki = mlk_bits64(kd);
    kd -= MLK_SHIFT64;
    double rh = xc - kd * MLK_LN2HI_64;
    double rl = -(kd * MLK_LN2LO_64);
    double r = rh + rl;
    double rc = (rh - r) + rl;
    double t = r + (r * r * mlk_expq_f64(r) + rc);
    double p = 1.0 + t;
    double plo = (1.0 - p) + t;                  /* |t| < 1: Fast2Sum */
    double s = mlk_from_bits64((ki + (1023 + 512)) << 52);   /* 2^(n+512) */
    *lo = x < -1060.0 ? 0.0 : plo * s;           /* exact: s is a power of 2 */
    return x < -1060.0 ? 0.0 : p * s;
}
#define MLK_EXPNEG_UNSCALE_f64 0x1p-512
#define MLK_EXPNEG_SCALE_f64 0x1p512
MLK_INLINE double mlk_expneg_f64(double x) { return mlk_expneg_scaled_f64(x) * MLK_EXPNEG_UNSCALE_f64; }

/* ------------------------------------------------------------------ */
/* log and log1p, float64 (fdlibm's polynomial in s = f/(2+f))          */
/* ------------------------------------------------------------------ */
MLK_INLINE double mlk_log_poly_f64(double f, double k, double c) {
    /* log(1+f) + k ln2 + c for f in [sqrt(.5)-1, sqrt(2)-1] */
    const double Lg1 = 6.666666666666735130e-01, Lg2 = 3.999999999940941908e-01,
                 Lg3 = 2.857142874366239149e-01, Lg4 = 2.222219843214978396e-01,
                 Lg5 = 1.818357216161805012e-01, Lg6 = 1.531383769920937332e-01,
                 Lg7 = 1.479819860511658591e-01;
    double s = f / (2.0 + f);
    double z = s * s;
    double w = z * z;
    double t1 = w * (Lg2 + w * (Lg4 + w * Lg6));
    double t2 = z * (Lg1 + w * (Lg3 + w * (Lg5 + w * Lg7)));
    double R = t2 + t1;
    double hfsq = 0.5 * f * f;
    return k * MLK_LN2HI_64 - ((hfsq - (s * (hfsq + R) + (k * MLK_LN2LO_64 + c))) - f);
}

/* log1p(e) for e in [0, 1] (or NaN): the log1p of softplus and friends.
 * u = 1 + e is in [1, 2], so k is 0 or 1 and no special cases are needed;
 * NaN propagates through c. */
/* the same with the correction c = (1 + e - u)/u supplied (a caller that
 * has 1/u already multiplies instead of dividing) */
MLK_INLINE double mlk_log1p_unit_c_f64(double e, double c) {
    double u = 1.0 + e;
    double hi = u > 1.4142135623730951 ? 1.0 : 0.0;
    double m = hi > 0.0 ? u * 0.5 : u;
    return mlk_log_poly_f64(m - 1.0, hi, c);
}
MLK_INLINE double mlk_log1p_unit_f64(double e) {
    double u = 1.0 + e;
    return mlk_log1p_unit_c_f64(e, (e - (u - 1.0)) / u);
}

/* x > 0 finite (normal or subnormal) -> m in [sqrt(.5), sqrt(2)), k with x = m 2^k */
MLK_INLINE double mlk_frexp_f64(double x, double *k) {
    double sub = x < 0x1p-1022 ? 1.0 : 0.0;
    x = sub > 0.0 ? x * 0x1p54 : x;
    uint64_t ix = mlk_bits64(x);
    /* biased exponent as a double, without an int64 -> double conversion */
    double e = mlk_from_bits64((ix >> 52) | 0x4330000000000000ULL) - 0x1p52;
    double m = mlk_from_bits64((ix & 0x000fffffffffffffULL) | 0x3ff0000000000000ULL);
    double hi = m > 1.4142135623730951 ? 1.0 : 0.0;
    m = hi > 0.0 ? m * 0.5 : m;
    *k = e - 1023.0 + hi - 54.0 * sub;
    return m;
}

MLK_INLINE double mlk_log_f64(double x) {
    double k;
    double m = mlk_frexp_f64(x, &k);
    double y = mlk_log_poly_f64(m - 1.0, k, 0.0);
    y = x < 0.0 ? NAN : y;
    y = x == 0.0 ? -INFINITY : y;
    y = x == INFINITY ? INFINITY : y;
    return x != x ? x : y;
}

MLK_INLINE double mlk_log1p_f64(double x) {
    double u = 1.0 + x;
    /* u rounds 1 + x; c = (1 + x - u)/u corrects log(u) to first order */
    double c = (x - (u - 1.0)) / u;
    double k;
    double m = mlk_frexp_f64(u, &k);
    double y = mlk_log_poly_f64(m - 1.0, k, c);
    y = x < -1.0 ? NAN : y;
    y = x == -1.0 ? -INFINITY : y;
    y = x == INFINITY ? INFINITY : y;
    y = x == 0.0 ? x : y;
    return x != x ? x : y;
}

/* tanh: |x| < 0.55: x + x^3 P(x^2), P a degree-10 Chebyshev fit of
 * (tanh(sqrt t) - sqrt t)/t^1.5 (rel. error 5e-18); above: 1 - 2e/(1+e),
 * e = e^{-2|x|} (the subtracted term is < 1/2, so no cancellation).  The
 * sign is copied from x (tanh(-0) = -0); NaN propagates through both arms. */
MLK_INLINE double mlk_tanh_f64(double x) {
    double ax = mlk_abs_f64(x);
    double t = ax * ax;
    double P = -0.000020602765376366341979;
    P = P * t + 0.000085113136855776715693;
    P = P * t - 0.00023463474108872371477;
    P = P * t + 0.00058893605200740577709;
    P = P * t - 0.0014556618301007160336;
    P = P * t + 0.0035921103786890238773;
    P = P * t - 0.0088632343978143548378;
    P = P * t + 0.021869488493666941903;
    P = P * t - 0.053968253967434014504;
    P = P * t + 0.13333333333332714826;
    P = P * t - 0.33333333333333332561;
    double ys = ax + ax * (t * P);
    double e = mlk_expneg_f64(-2.0 * ax);
    double yl = 1.0 - (2.0 * e) / (1.0 + e);
    double y = ax < 0.55 ? ys : yl;
    return mlk_copysign_f64(y, x);
}


/* ------------------------------------------------------------------ */
/* float32: same algorithms in float32 arithmetic                      */
/* ------------------------------------------------------------------ */
#define MLK_SHIFT32 0x1.8p23f
#define MLK_LN2HI_32 0.693145751953125f      /* 12 trailing zero bits */
#define MLK_LN2LO_32 1.428606765330187045e-06f
#define MLK_INVLN2_32 1.44269504088896341f

MLK_INLINE float mlk_expq_f32(float r) {
    float q = 0.00139263918961f;
    q = q * r + 0.00836334581099f;
    q = q * r + 0.0416665533626f;
    q = q * r + 0.166665759854f;
    q = q * r + 0.5f;
    return q;
}

MLK_INLINE float mlk_pow2i_f32(float n) {
    uint32_t b = mlk_bits32(n + MLK_SHIFT32);
    return mlk_from_bits32((b + 127U) << 23);
}

/* x = n ln2 + r + rc: r rounded, rc its rounding error (x - n ln2hi is exact) */
MLK_INLINE float mlk_exp_reduce_f32(float x, float *n, float *rc) {
    float kd = x * MLK_INVLN2_32 + MLK_SHIFT32;
    kd -= MLK_SHIFT32;
    *n = kd;
    float rh = x - kd * MLK_LN2HI_32;
    float rl = -(kd * MLK_LN2LO_32);
    float r = rh + rl;
    *rc = (rh - r) + rl;
    return r;
}

MLK_INLINE float mlk_exp_f32(float x) {
    x = x > 89.0f ? 89.0f : x;
    x = x < -104.0f ? -104.0f : x;
    float n;
    float rc;
    float r = mlk_exp_reduce_f32(x, &n, &rc);
    float p = 1.0f + (r + (r * r * mlk_expq_f32(r) + rc));
    float n1 = (n * 0.5f + MLK_SHIFT32) - MLK_SHIFT32;
    float n2 = n - n1;
    return (p * mlk_pow2i_f32(n1)) * mlk_pow2i_f32(n2);
}

MLK_INLINE float mlk_expm1_f32(float x) {
    float xc = x > 89.0f ? 89.0f : x;
    xc = xc < -20.0f ? -20.0f : xc;
    float n;
    float rc;
    float r = mlk_exp_reduce_f32(xc, &n, &rc);
    float big = n > 120.0f ? 1.0f : 0.0f;
    float s = mlk_pow2i_f32(n - big);
    float one = big > 0.0f ? 0.5f : 1.0f;
    float a = s - one;
    float aerr = (s - a) - one;
    float b = s * r;
    float hi = a + b;
    float bb = hi - a;
    float lo = ((a - (hi - bb)) + (b - bb)) + aerr;
    float y = (hi + (lo + s * (r * r * mlk_expq_f32(r) + rc))) * (1.0f + big);
    return x == 0.0f ? x : y;
}


/* 2^64 e^x, a normal number for every x <= 0 */
MLK_INLINE float mlk_expneg_scaled_f32(float x) {
    float xc = x < -131.0f ? -131.0f : x;     /* 2^64 e^-131 is still normal */
    float kd = xc * MLK_INVLN2_32 + MLK_SHIFT32;
    uint32_t ki = mlk_bits32(kd);
    kd -= MLK_SHIFT32;
    float r = (xc - kd * MLK_LN2HI_32) - kd * MLK_LN2LO_32;
    float p = 1.0f + (r + r * r * mlk_expq_f32(r));
    float s = mlk_from_bits32((ki + (127U + 64U)) << 23);      /* 2^(n+64) */
    return x < -131.0f ? 0.0f : p * s;        /* exactly 0 below: x E stays 0 */
}
#define MLK_EXPNEG_UNSCALE_f32 0x1p-64f
#define MLK_EXPNEG_SCALE_f32 0x1p64f
MLK_INLINE float mlk_expneg_f32(float x) { return mlk_expneg_scaled_f32(x) * MLK_EXPNEG_UNSCALE_f32; }

MLK_INLINE float mlk_log_poly_f32(float f, float k, float c) {
    /* fdlibm's float coefficients for log(1+f), s = f/(2+f) */
    const float Lg1 = 6.6666668653e-01f, Lg2 = 4.0000000596e-01f,
                Lg3 = 2.8571429849e-01f, Lg4 = 2.2222198546e-01f;
    float s = f / (2.0f + f);
    float z = s * s;
    float w = z * z;
    float t1 = w * (Lg2 + w * Lg4);
    float t2 = z * (Lg1 + w * Lg3);
    float R = t2 + t1;
    float hfsq = 0.5f * f * f;
    return k * MLK_LN2HI_32 - ((hfsq - (s * (hfsq + R) + (k * MLK_LN2LO_32 + c))) - f);
}

MLK_INLINE float mlk_log1p_unit_c_f32(float e, float c) {
    float u = 1.0f + e;
    float hi = u > 1.41421356f ? 1.0f : 0.0f;
    float m = hi > 0.0f ? u * 0.5f : u;
    return mlk_log_poly_f32(m - 1.0f, hi, c);
}
MLK_INLINE float mlk_log1p_unit_f32(float e) {
    float u = 1.0f + e;
    return mlk_log1p_unit_c_f32(e, (e - (u - 1.0f)) / u);
}

/* log1p(e) for e in [0, 1] with 1/(1 + e) known (ru): the softplus tail of
 * binary cross-entropy with logits, whose gradient needs ru anyway.
 * float32: e + e^2 P(e), P of degree 9 interpolating (log1p(e)/e - 1)/e at
 * Chebyshev nodes of [0, 1]: no division, no range split (1.6 ULP measured
 * over 3e7 random e, half the time of mlk_log1p_unit_f32); ru unused.
 * float64: mlk_log1p_unit with its correction multiplied by ru (a degree-21
 * polynomial was not faster there). */
MLK_INLINE float mlk_log1p_e_f32(float e, float ru) {
    (void)ru;
    float q = 0.001986696617677808f;
    q = q * e - 0.013187826611101627f;
    q = q * e + 0.04100657254457474f;
    q = q * e - 0.08188040554523468f;
    q = q * e + 0.12377995997667313f;
    q = q * e - 0.16087622940540314f;
    q = q * e + 0.19885820150375366f;
    q = q * e - 0.24986496567726135f;
    q = q * e + 0.33332496881484985f;
    q = q * e - 0.4999997913837433f;
    return e + e * (e * q);                 /* NaN propagates */
}
MLK_INLINE double mlk_log1p_e_f64(double e, double ru) {
    double u = 1.0 + e;
    return mlk_log1p_unit_c_f64(e, (e - (u - 1.0)) * ru);
}

MLK_INLINE float mlk_frexp_f32(float x, float *k) {
    float sub = x < 0x1p-126f ? 1.0f : 0.0f;
    x = sub > 0.0f ? x * 0x1p24f : x;
    uint32_t ix = mlk_bits32(x);
    float e = mlk_from_bits32((ix >> 23) | 0x4b000000U) - 0x1p23f;
    float m = mlk_from_bits32((ix & 0x007fffffU) | 0x3f800000U);
    float hi = m > 1.41421356f ? 1.0f : 0.0f;
    m = hi > 0.0f ? m * 0.5f : m;
    *k = e - 127.0f + hi - 24.0f * sub;
    return m;
}

MLK_INLINE float mlk_log_f32(float x) {
    float k;
    float m = mlk_frexp_f32(x, &k);
    float y = mlk_log_poly_f32(m - 1.0f, k, 0.0f);
    y = x < 0.0f ? NAN : y;
    y = x == 0.0f ? -INFINITY : y;
    y = x == INFINITY ? INFINITY : y;
    return x != x ? x : y;
}

MLK_INLINE float mlk_log1p_f32(float x) {
    float u = 1.0f + x;
    float c = (x - (u - 1.0f)) / u;
    float k;
    float m = mlk_frexp_f32(u, &k);
    float y = mlk_log_poly_f32(m - 1.0f, k, c);
    y = x < -1.0f ? NAN : y;
    y = x == -1.0f ? -INFINITY : y;
    y = x == INFINITY ? INFINITY : y;
    y = x == 0.0f ? x : y;
    return x != x ? x : y;
}

/* float32 tanh: |x| < 0.55: x + x^3 P(x^2), P a degree-4 Chebyshev fit
 * (rel. error 4e-9); above: 1 - 2e/(1+e), e = e^{-2|x|}.  Cheaper than the
 * float64 scheme (no expm1), same <= 2 ULP. */
MLK_INLINE float mlk_tanh_f32(float x) {
    float ax = mlk_abs_f32(x);
    float t = ax * ax;
    float P = -0.00661022783111f;
    P = P * t + 0.0213093886644f;
    P = P * t - 0.0539094288275f;
    P = P * t + 0.13333113729f;
    P = P * t - 0.33333332008f;
    float ys = ax + ax * (t * P);
    float e = mlk_expneg_f32(-2.0f * ax);
    float yl = 1.0f - (2.0f * e) / (1.0f + e);
    float y = ax < 0.55f ? ys : yl;
    return mlk_copysign_f32(y, x);          /* NaN propagates through ys/yl */
}


#endif /* MLK_MATH_H */
