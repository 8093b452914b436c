/*
 * mlk_argmax_simd.h -- argmax of one contiguous row with AVX-512 / AVX2
 * intrinsics (the v4 / v3 objects; the baseline keeps the portable loops
 * of mlk_rowwise_tmpl.h, which are the reference these are tested against:
 * tests/test_rowwise.py compares every level with np.argmax).
 *
 * NumPy's semantics: the first maximum, a NaN counts as larger than every
 * number and the first NaN wins.  The row is scanned in blocks of
 * MLK_AM_BLK elements; each block's max is taken with four independent
 * accumulators (the max instruction's latency is the bound of one chain),
 * maxps(v, acc) ignoring a NaN v (it returns its second operand then), and
 * the block's NaNs are caught by an unordered compare of two vectors at a
 * time.  Only the first block that raises the running max is remembered and
 * rescanned from cache for the first index equal to the max; a block with a
 * NaN ends the scan (its first NaN is the answer).  The tail of a block is
 * read with masked loads (AVX-512) or scalar code (AVX2).
 *
 * mlk_argmax_simd_f32 / _f64 exist only when MLK_HAVE_ARGMAX_SIMD is defined.
 */
#ifndef MLK_ARGMAX_SIMD_H
#define MLK_ARGMAX_SIMD_H

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#include <stdint.h>
#define MLK_HAVE_ARGMAX_SIMD 1
#define MLK_AM_BLK 2048

/* first j in [b0, e) with x[j] NaN (a scalar scan: a NaN row is rare) */
#define MLK_AM_FIND_NAN(T)                                                       \
    static intptr_t mlk_am_find_nan_##T(const T *x, intptr_t b0, intptr_t e) {   \
        for (intptr_t j = b0; j < e; j++)                                        \
            if (x[j] != x[j]) return j;                                          \
        return b0;                                                               \
    }
MLK_AM_FIND_NAN(float)
MLK_AM_FIND_NAN(double)

#if defined(__AVX512F__)
/* V vector type, W lanes, S intrinsic suffix (ps / pd), M mask type */
#define MLK_AM_DEFINE(NAME, T, V, W, S, M, MASKLOAD)                                          \
    static intptr_t NAME##_find(const T *x, intptr_t b0, intptr_t e, T v) {                   \
        const V vv = _mm512_set1_##S(v);                                                      \
        intptr_t j = b0;                                                                      \
        for (; j + W <= e; j += W) {                                                          \
            const M k = _mm512_cmp_##S##_mask(_mm512_loadu_##S(x + j), vv, _CMP_EQ_OQ);       \
            if (k) return j + __builtin_ctz((unsigned)k);                                     \
        }                                                                                     \
        for (; j < e; j++)                                                                    \
            if (x[j] == v) return j;                                                          \
        return -1;                                                                            \
    }                                                                                         \
    static int64_t NAME(const T *x, intptr_t n) {                                             \
        const V ninf = _mm512_set1_##S(-INFINITY);                                            \
        T best = -INFINITY;                                                                   \
        intptr_t bblk = 0;                                                                    \
        for (intptr_t b0 = 0; b0 < n; b0 += MLK_AM_BLK) {                                     \
            const intptr_t e = b0 + MLK_AM_BLK < n ? b0 + MLK_AM_BLK : n;                     \
            V m0 = ninf, m1 = ninf, m2 = ninf, m3 = ninf;                                     \
            M nan = 0;                                                                        \
            intptr_t j = b0;                                                                  \
            for (; j + 4 * W <= e; j += 4 * W) {                                              \
                const V v0 = _mm512_loadu_##S(x + j), v1 = _mm512_loadu_##S(x + j + W);       \
                const V v2 = _mm512_loadu_##S(x + j + 2 * W);                                 \
                const V v3 = _mm512_loadu_##S(x + j + 3 * W);                                 \
                m0 = _mm512_max_##S(v0, m0);                                                  \
                m1 = _mm512_max_##S(v1, m1);                                                  \
                m2 = _mm512_max_##S(v2, m2);                                                  \
                m3 = _mm512_max_##S(v3, m3);                                                  \
                nan |= _mm512_cmp_##S##_mask(v0, v1, _CMP_UNORD_Q) |                          \
                       _mm512_cmp_##S##_mask(v2, v3, _CMP_UNORD_Q);                           \
            }                                                                                 \
            for (; j < e; j += W) {                                                           \
                const intptr_t r = e - j < W ? e - j : W;                                     \
                const M lm = (M)(r == W ? (M)~(M)0 : (M)(((uint32_t)1 << r) - 1));            \
                const V v0 = MASKLOAD(ninf, lm, x + j);                                       \
                m0 = _mm512_max_##S(v0, m0);                                                  \
                nan |= _mm512_cmp_##S##_mask(v0, v0, _CMP_UNORD_Q);                           \
            }                                                                                 \
            if (nan) return mlk_am_find_nan_##T(x, b0, e);                                    \
            m0 = _mm512_max_##S(_mm512_max_##S(m0, m1), _mm512_max_##S(m2, m3));              \
            const T bm = _mm512_reduce_max_##S(m0);                                           \
            if (bm > best) { best = bm; bblk = b0; }                                          \
        }                                                                                     \
        const intptr_t e = bblk + MLK_AM_BLK < n ? bblk + MLK_AM_BLK : n;                     \
        const intptr_t j = NAME##_find(x, bblk, e, best);                                     \
        return j < 0 ? 0 : j;    /* an all -inf row: index 0 */                               \
    }
MLK_AM_DEFINE(mlk_argmax_simd_f32, float, __m512, 16, ps, __mmask16, _mm512_mask_loadu_ps)
MLK_AM_DEFINE(mlk_argmax_simd_f64, double, __m512d, 8, pd, __mmask8, _mm512_mask_loadu_pd)

#else /* AVX2 */
#define MLK_AM_DEFINE(NAME, T, V, W, S)                                                       \
    static intptr_t NAME##_find(const T *x, intptr_t b0, intptr_t e, T v) {                   \
        const V vv = _mm256_set1_##S(v);                                                      \
        intptr_t j = b0;                                                                      \
        for (; j + W <= e; j += W) {                                                          \
            const int k = _mm256_movemask_##S(_mm256_cmp_##S(_mm256_loadu_##S(x + j), vv,     \
                                                             _CMP_EQ_OQ));                    \
            if (k) return j + __builtin_ctz((unsigned)k);                                     \
        }                                                                                     \
        for (; j < e; j++)                                                                    \
            if (x[j] == v) return j;                                                          \
        return -1;                                                                            \
    }                                                                                         \
    static int64_t NAME(const T *x, intptr_t n) {                                             \
        const V ninf = _mm256_set1_##S(-INFINITY);                                            \
        T best = -INFINITY;                                                                   \
        intptr_t bblk = 0;                                                                    \
        for (intptr_t b0 = 0; b0 < n; b0 += MLK_AM_BLK) {                                     \
            const intptr_t e = b0 + MLK_AM_BLK < n ? b0 + MLK_AM_BLK : n;                     \
            V m0 = ninf, m1 = ninf, m2 = ninf, m3 = ninf;                                     \
            V nv = _mm256_setzero_##S();                                                      \
            intptr_t j = b0;                                                                  \
            for (; j + 4 * W <= e; j += 4 * W) {                                              \
                const V v0 = _mm256_loadu_##S(x + j), v1 = _mm256_loadu_##S(x + j + W);       \
                const V v2 = _mm256_loadu_##S(x + j + 2 * W);                                 \
                const V v3 = _mm256_loadu_##S(x + j + 3 * W);                                 \
                m0 = _mm256_max_##S(v0, m0);                                                  \
                m1 = _mm256_max_##S(v1, m1);                                                  \
                m2 = _mm256_max_##S(v2, m2);                                                  \
                m3 = _mm256_max_##S(v3, m3);                                                  \
                nv = _mm256_or_##S(nv, _mm256_or_##S(_mm256_cmp_##S(v0, v1, _CMP_UNORD_Q),    \
                                                     _mm256_cmp_##S(v2, v3, _CMP_UNORD_Q)));  \
            }                                                                                 \
            T bm = -INFINITY;                                                                 \
            int tnan = 0;                                                                     \
            for (; j < e; j++) {                                                              \
                bm = x[j] > bm ? x[j] : bm;                                                   \
                tnan |= x[j] != x[j];                                                         \
            }                                                                                 \
            if (tnan || _mm256_movemask_##S(nv)) return mlk_am_find_nan_##T(x, b0, e);        \
            m0 = _mm256_max_##S(_mm256_max_##S(m0, m1), _mm256_max_##S(m2, m3));              \
            T lanes[W];                                                                       \
            _mm256_storeu_##S(lanes, m0);                                                     \
            for (int l = 0; l < W; l++) bm = lanes[l] > bm ? lanes[l] : bm;                   \
            if (bm > best) { best = bm; bblk = b0; }                                          \
        }                                                                                     \
        const intptr_t e = bblk + MLK_AM_BLK < n ? bblk + MLK_AM_BLK : n;                     \
        const intptr_t j = NAME##_find(x, bblk, e, best);                                     \
        return j < 0 ? 0 : j;    /* an all -inf row: index 0 */                               \
    }
MLK_AM_DEFINE(mlk_argmax_simd_f32, float, __m256, 8, ps)
MLK_AM_DEFINE(mlk_argmax_simd_f64, double, __m256d, 4, pd)
#endif

#endif /* AVX-512 or AVX2 */
#endif /* MLK_ARGMAX_SIMD_H */
