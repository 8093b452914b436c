/*
 * mlk_kernels_tmpl.h -- array kernels over one contiguous chunk, written once;
 * mlk_kernels_body.h instantiates them for float32/float64 (MLK_T, MLK_F) and
 * the ISA file names them (MLK_K).  Each `case` is its own simple loop that
 * gcc vectorises (check: build with MLKERN_VEC_REPORT=1).
 *
 * The pointers may be equal (in-place) but never partially overlap: the
 * Python layer guarantees it, so `restrict` is used for vectorisation.
 */
#ifdef _OPENMP
#include <omp.h>
#endif

/* read one element per 64-byte line of x[0..n) so the block is in L1.  The
 * loads are OR-ed as integers: no floating-point dependency chain (a float
 * sum cost ~15 % of a silu over data already in cache). */
MLK_INLINE void MLK_F(mlk_touch)(const MLK_T *x, intptr_t n) {
    uint32_t acc = 0;
    for (intptr_t i = 0; i < n; i += 64 / (intptr_t)sizeof(MLK_T)) {
        uint32_t u;
        memcpy(&u, x + i, 4);
        acc |= u;
    }
    volatile uint32_t sink = acc;   /* keeps the loads; one store per block */
    (void)sink;
}

/* elements before y + h is 64-byte aligned (0 when n is small or y is not
 * element-aligned): unaligned 512-bit stores cost 3-7 % of a compute-bound
 * map (NumPy's data is 16 bytes off a line) */
MLK_INLINE intptr_t MLK_F(mlk_head)(const MLK_T *y, intptr_t n) {
    const uintptr_t mis = (uintptr_t)y & 63;
    const intptr_t h = (intptr_t)((64 - mis) & 63) / (intptr_t)sizeof(MLK_T);
    return n < 1024 || mis % sizeof(MLK_T) ? 0 : h;
}

/* Outputs of at least MLK_STREAM_MIN bytes (this chunk times the threads of
 * the team) are computed block by block into an L1 buffer and written with
 * non-temporal stores (mlk_stream.h), as the row-wise backward kernels do:
 * such an output does not stay in cache anyway, and the store then costs one
 * pass over memory instead of two (no read-for-ownership of the lines). */
#ifndef MLK_STREAM_MIN
#define MLK_STREAM_MIN ((intptr_t)24 << 20)
#endif
MLK_INLINE int MLK_F(mlk_stream_out)(intptr_t n) {
    intptr_t nbytes = n * (intptr_t)sizeof(MLK_T);
#ifdef _OPENMP
    nbytes *= omp_get_num_threads();
#endif
    return nbytes >= MLK_STREAM_MIN;
}

/* Plain map: memory-bound ops (relu, copy); the hardware prefetcher keeps up. */
#define MLK_MAP(EXPR) { \
    if (MLK_F(mlk_stream_out)(n)) { \
        MLK_T buf_[MLK_BLOCK]; \
        for (intptr_t i0 = 0; i0 < n; i0 += MLK_BLOCK) { \
            const intptr_t e = n - i0 > MLK_BLOCK ? i0 + MLK_BLOCK : n; \
            for (intptr_t i = i0; i < e; i++) { const MLK_T v = x[i]; buf_[i - i0] = (EXPR); } \
            MLK_F(mlk_stream_copy)(y + i0, buf_, e - i0); \
        } \
        mlk_stream_fence(); \
    } else { \
        for (intptr_t i = 0; i < n; i++) { const MLK_T v = x[i]; y[i] = (EXPR); } \
    } } break

/* Compute-bound map.  Over a chunk of more than MLK_TOUCH_MIN bytes (out of
 * cache) it runs blocked: each block of x is first pulled into L1 by a cheap
 * strided read (one load per cache line), then computed from cache; out of
 * cache the long vectorised body otherwise stalls on DRAM (the measurement:
 * docs/implementation.rst).  In cache the strided read only costs (10-15 %
 * of a silu at 10^5 and 10^6 elements), so smaller chunks run the plain loop.
 * Both start with a short head that aligns the stores (mlk_head). */
#define MLK_MAP_BLK_BODY_L(LOOP, ARG) { \
    const intptr_t h_ = MLK_F(mlk_head)(y, n); \
    LOOP(ARG, y, 0, h_); \
    const int big_ = (n - h_) * (intptr_t)sizeof(MLK_T) > MLK_TOUCH_MIN; \
    if (big_ && MLK_F(mlk_stream_out)(n)) { \
        MLK_T buf_[MLK_BLOCK]; \
        for (intptr_t i0 = h_; i0 < n; i0 += MLK_BLOCK) { \
            const intptr_t e = n - i0 > MLK_BLOCK ? i0 + MLK_BLOCK : n; \
            MLK_F(mlk_touch)(x + i0, e - i0); \
            LOOP(ARG, buf_, i0, e); \
            MLK_F(mlk_stream_copy)(y + i0, buf_, e - i0); \
        } \
        mlk_stream_fence(); \
        return; \
    } \
    const intptr_t bs_ = big_ ? MLK_BLOCK : n; \
    for (intptr_t i0 = h_; i0 < n; i0 += bs_) { \
        const intptr_t e = n - i0 > bs_ ? i0 + bs_ : n; \
        if (big_) MLK_F(mlk_touch)(x + i0, e - i0); \
        LOOP(ARG, y + i0, i0, e); \
    } }
/* LOOP(ARG, dst, i0, e) computes elements [i0, e) into dst[0 .. e - i0):
 * the scalar expression, or a block kernel VFN(x, dst, count, a, b, c) of
 * mlk_simd_f64.h (MLK_DEF_VMAP) */
#define MLK_LOOP_EXPR(EXPR, dst, i0, e) \
    for (intptr_t i = (i0); i < (e); i++) { const MLK_T v = x[i]; (dst)[i - (i0)] = (EXPR); }
#define MLK_LOOP_VEC(VFN, dst, i0, e) VFN(x + (i0), (dst), (e) - (i0), a, b, c)
#define MLK_MAP_BLK_BODY(EXPR) MLK_MAP_BLK_BODY_L(MLK_LOOP_EXPR, EXPR)

/* Each compute-bound map is its own (not inlined) function: inside the one
 * big switch gcc spilled vector registers in several of these loops (silu
 * float32 ran 10 % slower than the same loop alone). */
#if defined(_MSC_VER) && !defined(__clang__)
#define MLK_NOINLINE __declspec(noinline)
#else
#define MLK_NOINLINE __attribute__((noinline))
#endif
#define MLK_DEF_MAP(name, EXPR) \
    static MLK_NOINLINE void MLK_F(mlk_map_##name)(const MLK_T *restrict x, MLK_T *restrict y, \
                                                  intptr_t n, const MLK_T a, const MLK_T b, \
                                                  const MLK_T c) { \
        (void)a; (void)b; (void)c; \
        MLK_MAP_BLK_BODY(EXPR) \
    }
#define MLK_MAP_BLK(name) MLK_F(mlk_map_##name)(x, y, n, a, b, c); break
/* the same map over a SIMD block kernel (mlk_simd_f64.h) */
#define MLK_DEF_VMAP(name, VFN) \
    static MLK_NOINLINE void MLK_F(mlk_map_##name)(const MLK_T *restrict x, MLK_T *restrict y, \
                                                  intptr_t n, const MLK_T a, const MLK_T b, \
                                                  const MLK_T c) { \
        MLK_MAP_BLK_BODY_L(MLK_LOOP_VEC, VFN) \
    }

#ifndef MLK_TOUCH_MIN
#define MLK_TOUCH_MIN (8 << 20)
#endif
#ifndef MLK_BLOCK
#define MLK_BLOCK 2048
#endif

MLK_DEF_MAP(sigmoid, MLK_F(mlk_sigmoid)(v))
MLK_DEF_MAP(sigmoid_grad, MLK_F(mlk_sigmoid_grad)(v))
MLK_DEF_MAP(tanh, MLK_F(mlk_tanh)(v))
MLK_DEF_MAP(tanh_grad, MLK_F(mlk_tanh_grad)(v))
MLK_DEF_MAP(elu, MLK_F(mlk_elu)(v, a))
MLK_DEF_MAP(elu_grad, MLK_F(mlk_elu_grad)(v, a))
MLK_DEF_MAP(softplus, MLK_F(mlk_softplus)(v, b, c))
MLK_DEF_MAP(softplus_grad, MLK_F(mlk_softplus_grad)(v, b, c))
MLK_DEF_MAP(silu1, MLK_F(mlk_silu1)(v))
MLK_DEF_MAP(silu, MLK_F(mlk_silu)(v, b))
MLK_DEF_MAP(silu_grad, MLK_F(mlk_silu_grad)(v, b))
MLK_DEF_MAP(log_sigmoid, MLK_F(mlk_log_sigmoid)(v))
MLK_DEF_MAP(log_sigmoid_grad, MLK_F(mlk_log_sigmoid_grad)(v))
MLK_DEF_MAP(gelu, MLK_F(mlk_gelu)(v))
MLK_DEF_MAP(gelu_grad, MLK_F(mlk_gelu_grad)(v))
MLK_DEF_MAP(gelu_tanh, MLK_F(mlk_gelu_tanh)(v))
MLK_DEF_MAP(gelu_tanh_grad, MLK_F(mlk_gelu_tanh_grad)(v))
MLK_DEF_MAP(exp, MLK_F(mlk_exp)(v))
MLK_DEF_MAP(expm1, MLK_F(mlk_expm1)(v))
MLK_DEF_MAP(log, MLK_F(mlk_log)(v))
MLK_DEF_MAP(log1p, MLK_F(mlk_log1p)(v))
MLK_DEF_MAP(erf, MLK_F(mlk_erf)(v))
MLK_DEF_MAP(erfc, MLK_F(mlk_erfc)(v))
MLK_DEF_MAP(ndtr, MLK_F(mlk_ndtr)(v))
MLK_DEF_MAP(npdf, MLK_F(mlk_npdf)(v))

/* >>> float64 SIMD kernels of the v3/v4 objects (mlk_simd_f64.h) */
#if MLK_KERNEL_F64 && (defined(__AVX512F__) || defined(__AVX2__))
#include "mlk_simd_f64.h"
#endif
/* <<< */
/* ---- float32 SIMD kernels (issue 19): AVX-512 in the v4 object ---------- */
#if defined(__AVX512F__) && defined(__AVX512DQ__)
#include "mlk_simd_f32.h"     /* first reached in the float32 pass: its helpers exist */
#define MLK_SIMD_F32 1
#endif
/* ------------------------------------------------------------------------ */

void MLK_K(mlk_unary)(int op, const MLK_T *restrict x, MLK_T *restrict y,
                      intptr_t n, const mlk_params *p) {
    const MLK_T a = (MLK_T)p->a, b = (MLK_T)p->b, c = (MLK_T)p->c;
#if MLK_KERNEL_F64 && defined(MLK_SIMD_F64)   /* >>> float64 SIMD kernels <<< */
    if (mlk_simd_unary_f64(op, x, y, n, a, b, c)) return;
#endif
#if defined(MLK_SIMD_F32) && !MLK_KERNEL_F64   /* float32 SIMD kernels (mlk_simd_f32.h) */
    if (sizeof(MLK_T) == 4 && mlk_simd_unary_f32(op, (const float *)x, (float *)y, n, p)) return;
#endif
    switch (op) {
    case MLK_SIGMOID:          MLK_MAP_BLK(sigmoid);
    case MLK_SIGMOID_GRAD:     MLK_MAP_BLK(sigmoid_grad);
    case MLK_TANH:             MLK_MAP_BLK(tanh);
    case MLK_TANH_GRAD:        MLK_MAP_BLK(tanh_grad);
    case MLK_RELU:             MLK_MAP(MLK_F(mlk_relu)(v));
    case MLK_RELU_GRAD:        MLK_MAP(MLK_F(mlk_relu_grad)(v));
    case MLK_LEAKY_RELU:       MLK_MAP(MLK_F(mlk_leaky_relu)(v, a));
    case MLK_LEAKY_RELU_GRAD:  MLK_MAP(MLK_F(mlk_leaky_relu_grad)(v, a));
    case MLK_ELU:              MLK_MAP_BLK(elu);
    case MLK_ELU_GRAD:         MLK_MAP_BLK(elu_grad);
    case MLK_SOFTPLUS:         MLK_MAP_BLK(softplus);
    case MLK_SOFTPLUS_GRAD:    MLK_MAP_BLK(softplus_grad);
    case MLK_SILU:
        if (b == (MLK_T)1) { MLK_MAP_BLK(silu1); }
        MLK_MAP_BLK(silu);
    case MLK_SILU_GRAD:        MLK_MAP_BLK(silu_grad);
    case MLK_LOG_SIGMOID:      MLK_MAP_BLK(log_sigmoid);
    case MLK_LOG_SIGMOID_GRAD: MLK_MAP_BLK(log_sigmoid_grad);
    case MLK_GELU:             MLK_MAP_BLK(gelu);
    case MLK_GELU_GRAD:        MLK_MAP_BLK(gelu_grad);
    case MLK_GELU_TANH:        MLK_MAP_BLK(gelu_tanh);
    case MLK_GELU_TANH_GRAD:   MLK_MAP_BLK(gelu_tanh_grad);
    case MLK_EXP:              MLK_MAP_BLK(exp);
    case MLK_EXPM1:            MLK_MAP_BLK(expm1);
    case MLK_LOG:              MLK_MAP_BLK(log);
    case MLK_LOG1P:            MLK_MAP_BLK(log1p);
    case MLK_ERF:              MLK_MAP_BLK(erf);
    case MLK_ERFC:             MLK_MAP_BLK(erfc);
    case MLK_NDTR:             MLK_MAP_BLK(ndtr);
    case MLK_NPDF:             MLK_MAP_BLK(npdf);
    case MLK_COPY:             MLK_MAP(v);
    case MLK_NOISY_RELU: {
        /* y = max(0, x + s*z), z ~ N(0,1) from a counter-based generator
           keyed by (seed, global index): independent of the chunking, hence
           of the thread count.  s = sigma if given (a >= 0), else sqrt(sigmoid(x)). */
        const double sigma = p->a;
        const uint64_t key = p->seed;
        const uint64_t off = (uint64_t)p->offset;
        for (intptr_t i = 0; i < n; i++) {
            const MLK_T v = x[i];
            double z = mlk_normal_at(key, off + (uint64_t)i);
            double s = sigma >= 0.0 ? sigma : sqrt((double)MLK_F(mlk_sigmoid)(v));
            MLK_T t = (MLK_T)((double)v + s * z);
            y[i] = MLK_F(mlk_relu)(t);
        }
        break;
    }
    default: break;
    }
}
#undef MLK_MAP
#undef MLK_MAP_BLK
#undef MLK_MAP_BLK_BODY
#undef MLK_MAP_BLK_BODY_L
#undef MLK_LOOP_EXPR
#undef MLK_LOOP_VEC
#undef MLK_DEF_VMAP
#undef MLK_DEF_MAP

#define MLK_MAP2(EXPR) { \
    if (MLK_F(mlk_stream_out)(n)) { \
        MLK_T buf_[MLK_BLOCK]; \
        for (intptr_t i0 = 0; i0 < n; i0 += MLK_BLOCK) { \
            const intptr_t e = n - i0 > MLK_BLOCK ? i0 + MLK_BLOCK : n; \
            for (intptr_t i = i0; i < e; i++) { const MLK_T gv = g[i], v = s[i]; buf_[i - i0] = gv * (EXPR); } \
            MLK_F(mlk_stream_copy)(y + i0, buf_, e - i0); \
        } \
        mlk_stream_fence(); \
    } else { \
        for (intptr_t i = 0; i < n; i++) { const MLK_T gv = g[i], v = s[i]; y[i] = gv * (EXPR); } \
    } } break

#define MLK_MAP2_BLK_BODY_L(LOOP, ARG) { \
    const intptr_t h_ = MLK_F(mlk_head)(y, n); \
    LOOP(ARG, y, 0, h_); \
    const int big_ = (n - h_) * 2 * (intptr_t)sizeof(MLK_T) > MLK_TOUCH_MIN; \
    if (big_ && MLK_F(mlk_stream_out)(n)) { \
        MLK_T buf_[MLK_BLOCK]; \
        for (intptr_t i0 = h_; i0 < n; i0 += MLK_BLOCK) { \
            const intptr_t e = n - i0 > MLK_BLOCK ? i0 + MLK_BLOCK : n; \
            MLK_F(mlk_touch)(g + i0, e - i0); \
            MLK_F(mlk_touch)(s + i0, e - i0); \
            LOOP(ARG, buf_, i0, e); \
            MLK_F(mlk_stream_copy)(y + i0, buf_, e - i0); \
        } \
        mlk_stream_fence(); \
        return; \
    } \
    const intptr_t bs_ = big_ ? MLK_BLOCK : n; \
    for (intptr_t i0 = h_; i0 < n; i0 += bs_) { \
        const intptr_t e = n - i0 > bs_ ? i0 + bs_ : n; \
        if (big_) { MLK_F(mlk_touch)(g + i0, e - i0); MLK_F(mlk_touch)(s + i0, e - i0); } \
        LOOP(ARG, y + i0, i0, e); \
    } }
#define MLK_LOOP2_EXPR(EXPR, dst, i0, e) \
    for (intptr_t i = (i0); i < (e); i++) { const MLK_T gv = g[i], v = s[i]; (dst)[i - (i0)] = gv * (EXPR); }
#define MLK_LOOP2_VEC(VFN, dst, i0, e) VFN(g + (i0), s + (i0), (dst), (e) - (i0), a, b, c)
#define MLK_MAP2_BLK_BODY(EXPR) MLK_MAP2_BLK_BODY_L(MLK_LOOP2_EXPR, EXPR)

#define MLK_DEF_MAP2(name, EXPR) \
    static MLK_NOINLINE void MLK_F(mlk_map2_##name)(const MLK_T *restrict g, const MLK_T *restrict s, \
                                                   MLK_T *restrict y, intptr_t n, const MLK_T a, \
                                                   const MLK_T b, const MLK_T c) { \
        (void)a; (void)b; (void)c; \
        MLK_MAP2_BLK_BODY(EXPR) \
    }
#define MLK_MAP2_BLK(name) MLK_F(mlk_map2_##name)(g, s, y, n, a, b, c); break
#define MLK_DEF_VMAP2(name, VFN) \
    static MLK_NOINLINE void MLK_F(mlk_map2_##name)(const MLK_T *restrict g, const MLK_T *restrict s, \
                                                   MLK_T *restrict y, intptr_t n, const MLK_T a, \
                                                   const MLK_T b, const MLK_T c) { \
        MLK_MAP2_BLK_BODY_L(MLK_LOOP2_VEC, VFN) \
    }
MLK_DEF_MAP2(softplus_grad, MLK_F(mlk_softplus_grad)(v, b, c))
MLK_DEF_MAP2(silu_grad, MLK_F(mlk_silu_grad)(v, b))
MLK_DEF_MAP2(log_sigmoid_grad, MLK_F(mlk_log_sigmoid_grad)(v))
MLK_DEF_MAP2(gelu_grad, MLK_F(mlk_gelu_grad)(v))
MLK_DEF_MAP2(gelu_tanh_grad, MLK_F(mlk_gelu_tanh_grad)(v))
/* >>> float64 SIMD kernels (mlk_simd_f64.h, its binary maps) */
#if MLK_KERNEL_F64 && defined(MLK_SIMD_F64)
#include "mlk_simd_f64.h"
#endif
/* <<< */

void MLK_K(mlk_binary)(int op, const MLK_T *restrict g, const MLK_T *restrict s,
                       MLK_T *restrict y, intptr_t n, const mlk_params *p) {
    const MLK_T a = (MLK_T)p->a, b = (MLK_T)p->b, c = (MLK_T)p->c;
#if MLK_KERNEL_F64 && defined(MLK_SIMD_F64)   /* >>> float64 SIMD kernels <<< */
    if (mlk_simd_binary_f64(op, g, s, y, n, a, b, c)) return;
#endif
#if defined(MLK_SIMD_F32) && !MLK_KERNEL_F64   /* float32 SIMD kernels (mlk_simd_f32.h) */
    if (sizeof(MLK_T) == 4 && mlk_simd_binary_f32(op, (const float *)g, (const float *)s, (float *)y, n, p))
        return;
#endif
    switch (op) {
    case MLK_SIGMOID_BWD:     MLK_MAP2(MLK_F(mlk_sigmoid_grad_y)(v));
    case MLK_TANH_BWD:        MLK_MAP2(MLK_F(mlk_tanh_grad_y)(v));
    case MLK_RELU_BWD:        MLK_MAP2(MLK_F(mlk_relu_grad)(v));
    case MLK_LEAKY_RELU_BWD:  MLK_MAP2(MLK_F(mlk_leaky_relu_grad)(v, a));
    case MLK_ELU_BWD:         MLK_MAP2(MLK_F(mlk_elu_grad_y)(v, a));
    case MLK_SOFTPLUS_BWD:    MLK_MAP2_BLK(softplus_grad);
    case MLK_SILU_BWD:        MLK_MAP2_BLK(silu_grad);
    case MLK_LOG_SIGMOID_BWD: MLK_MAP2_BLK(log_sigmoid_grad);
    case MLK_GELU_BWD:        MLK_MAP2_BLK(gelu_grad);
    case MLK_GELU_TANH_BWD:   MLK_MAP2_BLK(gelu_tanh_grad);
    default: break;
    }
}
#undef MLK_MAP2
#undef MLK_MAP2_BLK
#undef MLK_MAP2_BLK_BODY
#undef MLK_MAP2_BLK_BODY_L
#undef MLK_LOOP2_EXPR
#undef MLK_LOOP2_VEC
#undef MLK_DEF_VMAP2
#undef MLK_DEF_MAP2

/* y = f(x, alpha_c) over (outer, C, inner) blocks, f = leaky_relu (prelu)
   or, with grad, its derivative (prelu_grad: 1 if x > 0 else alpha_c) */
#define MLK_PRELU_MAP(F, OP) do { \
    if (inner == 1) { \
        for (intptr_t o = 0; o < outer; o++) { \
            const MLK_T *xr = x + o * C; \
            MLK_T *yr = y + o * C; \
            for (intptr_t c = 0; c < C; c++) yr[c] = MLK_F(F)(xr[c], alpha[c]); \
        } \
    } else if (inner < MLK_PRELU_UNARY_MIN) { \
        for (intptr_t o = 0; o < outer; o++) \
            for (intptr_t c = 0; c < C; c++) { \
                const MLK_T a = alpha[c]; \
                const MLK_T *xr = x + (o * C + c) * inner; \
                MLK_T *yr = y + (o * C + c) * inner; \
                for (intptr_t i = 0; i < inner; i++) yr[i] = MLK_F(F)(xr[i], a); \
            } \
    } else { \
        mlk_params p_ = {0}; \
        for (intptr_t o = 0; o < outer; o++) \
            for (intptr_t c = 0; c < C; c++) { \
                p_.a = (double)alpha[c]; \
                MLK_K(mlk_unary)(OP, x + (o * C + c) * inner, y + (o * C + c) * inner, inner, &p_); \
            } \
    } \
} while (0)

/* a channel block of at least this many elements is leaky_relu's own map
   (its SIMD loop, aligned and non-temporal stores) with alpha_c as slope */
#ifndef MLK_PRELU_UNARY_MIN
#define MLK_PRELU_UNARY_MIN 64
#endif

void MLK_K(mlk_prelu)(const MLK_T *restrict x, MLK_T *restrict y, const MLK_T *restrict alpha,
                      intptr_t outer, intptr_t C, intptr_t inner, int grad) {
    if (grad)
        MLK_PRELU_MAP(mlk_leaky_relu_grad, MLK_LEAKY_RELU_GRAD);
    else
        MLK_PRELU_MAP(mlk_leaky_relu, MLK_LEAKY_RELU);
}
#undef MLK_PRELU_MAP

/* one channel block of prelu_bwd: y = g * leaky_relu'(x, a), and each g*x
   with x <= 0 added in float64 to lane acc[i % MLK_PL].  The lanes make the
   sum a vector sum (one float64 chain per element was the float32 kernel's
   bottleneck, 5 ns per element) in an order fixed by the index alone: the
   same for any thread count or block split (n a multiple of
   MLK_PL except in the last block).  Not inlined: with acc a local array of
   the caller gcc 12 vectorises nothing ("control flow in loop") and the
   scalar code branches on the sign of x. */
#define MLK_PL 16
static MLK_NOINLINE void MLK_F(mlk_prelu_bwd_lanes)(const MLK_T *restrict g, const MLK_T *restrict x, MLK_T a,
                                           MLK_T *restrict y, intptr_t n, double *restrict acc) {
    intptr_t i = 0;
    for (; i + MLK_PL <= n; i += MLK_PL)
        for (int l = 0; l < MLK_PL; l++) {
            const MLK_T xv = x[i + l], gv = g[i + l];
            y[i + l] = gv * MLK_F(mlk_leaky_relu_grad)(xv, a);
            const double pr = (double)gv * (double)xv;   /* both arms computed: a select */
            acc[l] += xv > 0 ? 0.0 : pr;
        }
    for (int l = 0; i + l < n; l++) {
        const MLK_T xv = x[i + l], gv = g[i + l];
        y[i + l] = gv * MLK_F(mlk_leaky_relu_grad)(xv, a);
        acc[l] += xv > 0 ? 0.0 : (double)gv * (double)xv;
    }
}

/* grad_x = g * (x > 0 ? 1 : alpha_c); grad_alpha_c += sum of g*x where x <= 0 */
void MLK_K(mlk_prelu_bwd)(const MLK_T *restrict g, const MLK_T *restrict x,
                          const MLK_T *restrict alpha, MLK_T *restrict gx,
                          double *restrict galpha, intptr_t outer, intptr_t C, intptr_t inner) {
    if (inner == 1) {
        for (intptr_t o = 0; o < outer; o++) {
            const MLK_T *xr = x + o * C, *gr = g + o * C;
            MLK_T *yr = gx + o * C;
            for (intptr_t c = 0; c < C; c++) {
                const MLK_T xv = xr[c], gv = gr[c];
                yr[c] = gv * MLK_F(mlk_leaky_relu_grad)(xv, alpha[c]);
                galpha[c] += xv > 0 ? 0.0 : (double)gv * (double)xv;
            }
        }
    } else {
        for (intptr_t o = 0; o < outer; o++)
            for (intptr_t c = 0; c < C; c++) {
                const MLK_T a = alpha[c];
                const intptr_t base = (o * C + c) * inner;
                const MLK_T *xr = x + base, *gr = g + base;
                MLK_T *yr = gx + base;
                double acc[MLK_PL] = {0.0};
                if (MLK_F(mlk_stream_out)(inner)) {   /* block by block, non-temporal gx */
                    MLK_T buf_[MLK_BLOCK];
                    for (intptr_t i0 = 0; i0 < inner; i0 += MLK_BLOCK) {
                        const intptr_t e = inner - i0 > MLK_BLOCK ? i0 + MLK_BLOCK : inner;
                        MLK_F(mlk_prelu_bwd_lanes)(gr + i0, xr + i0, a, buf_, e - i0, acc);
                        MLK_F(mlk_stream_copy)(yr + i0, buf_, e - i0);
                    }
                    mlk_stream_fence();
                } else {
                    MLK_F(mlk_prelu_bwd_lanes)(gr, xr, a, yr, inner, acc);
                }
                for (int w = MLK_PL / 2; w > 0; w /= 2)   /* fixed pairwise order */
                    for (int l = 0; l < w; l++) acc[l] += acc[l + w];
                galpha[c] += acc[0];
            }
    }
}
#undef MLK_PL
