/*
 * mlk_rng.h -- a counter-based normal generator for noisy_relu.
 * The i-th normal of stream `key` is a pure function of (key, i): murmur3's
 * 64-bit finaliser on two counters gives two 53-bit uniforms, Box-Muller
 * with a polynomial cosine gives the normal.  No state, so any chunking
 * (any thread count) gives the same numbers.
 */
#ifndef MLK_RNG_H
#define MLK_RNG_H
#include "mlk_math.h"

MLK_INLINE uint64_t mlk_mix64(uint64_t z) {
    z ^= z >> 33; z *= 0xff51afd7ed558ccdULL;
    z ^= z >> 33; z *= 0xc4ceb9fe1a85ec53ULL;
    z ^= z >> 33;
    return z;
}

/* cos(2 pi w) for w in [0, 1): reduce to [0, 1/4] by symmetry, then a
   Chebyshev fit in t = w^2 (abs. error 2e-15) */
MLK_INLINE double mlk_cos2pi(double w) {
    double h = w > 0.5 ? 1.0 - w : w;          /* cos(2pi w) = cos(2pi(1-w)) */
    double sgn = h > 0.25 ? -1.0 : 1.0;        /* cos(2pi h) = -cos(2pi(1/2-h)) */
    double u = h > 0.25 ? 0.5 - h : h;
    double t = u * u;
    double c = -1.64522334978930933;
    c = c * t + 7.89655573585155395;
    c = c * t - 26.4258887433436795;
    c = c * t + 60.244630608173755;
    c = c * t - 85.4568170356328663;
    c = c * t + 64.9393940213327172;
    c = c * t - 19.7392088021747436;
    c = c * t + 0.99999999999999806;
    return sgn * c;
}

MLK_INLINE double mlk_normal_at(uint64_t key, uint64_t i) {
    uint64_t a = mlk_mix64(key ^ mlk_mix64(2 * i + 0x9e3779b97f4a7c15ULL));
    uint64_t b = mlk_mix64(key ^ mlk_mix64(2 * i + 1 + 0x9e3779b97f4a7c15ULL));
    double u1 = ((double)(a >> 11) + 1.0) * 0x1p-53;   /* (0, 1] */
    double u2 = (double)(b >> 11) * 0x1p-53;           /* [0, 1) */
    return sqrt(-2.0 * mlk_log_f64(u1)) * mlk_cos2pi(u2);
}
#endif
