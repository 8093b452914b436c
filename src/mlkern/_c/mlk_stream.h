/*
 * mlk_stream.h -- copy a buffer (in L1) to its destination with
 * non-temporal stores, for outputs too large to stay in cache: the write
 * then costs one pass over memory instead of two (no read-for-ownership of
 * the destination lines).  The only ISA-specific code of the kernels; the
 * level comes from the compiler flags of the file being compiled.
 * mlk_stream_fence() must follow the last streamed store of a kernel call.
 */
#ifndef MLK_STREAM_H
#define MLK_STREAM_H
#include <stdint.h>
#include <string.h>
#if defined(__SSE2__)
#include <immintrin.h>
#endif

static inline void mlk_stream_fence(void) {
#if defined(__SSE2__)
    _mm_sfence();
#endif
}

#if defined(__AVX512F__)
#define MLK_SV_BYTES 64
#elif defined(__AVX__)
#define MLK_SV_BYTES 32
#else
#define MLK_SV_BYTES 16
#endif

static inline void mlk_stream_copy_f32(float *dst, const float *src, intptr_t n) {
#if defined(__SSE2__)
    intptr_t j = 0;
    while (j < n && ((uintptr_t)(dst + j) & (MLK_SV_BYTES - 1))) { dst[j] = src[j]; j++; }
#if defined(__AVX512F__)
    for (; j + 16 <= n; j += 16) _mm512_stream_ps(dst + j, _mm512_loadu_ps(src + j));
#elif defined(__AVX__)
    for (; j + 8 <= n; j += 8) _mm256_stream_ps(dst + j, _mm256_loadu_ps(src + j));
#else
    for (; j + 4 <= n; j += 4) _mm_stream_ps(dst + j, _mm_loadu_ps(src + j));
#endif
    for (; j < n; j++) dst[j] = src[j];
#else
    memcpy(dst, src, (size_t)n * sizeof(float));
#endif
}

static inline void mlk_stream_copy_f64(double *dst, const double *src, intptr_t n) {
#if defined(__SSE2__)
    intptr_t j = 0;
    while (j < n && ((uintptr_t)(dst + j) & (MLK_SV_BYTES - 1))) { dst[j] = src[j]; j++; }
#if defined(__AVX512F__)
    for (; j + 8 <= n; j += 8) _mm512_stream_pd(dst + j, _mm512_loadu_pd(src + j));
#elif defined(__AVX__)
    for (; j + 4 <= n; j += 4) _mm256_stream_pd(dst + j, _mm256_loadu_pd(src + j));
#else
    for (; j + 2 <= n; j += 2) _mm_stream_pd(dst + j, _mm_loadu_pd(src + j));
#endif
    for (; j < n; j++) dst[j] = src[j];
#else
    memcpy(dst, src, (size_t)n * sizeof(double));
#endif
}
#endif
