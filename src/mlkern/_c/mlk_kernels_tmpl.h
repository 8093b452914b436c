/*
 * mlk_kernels_tmpl.h -- array kernels over one contiguous chunk, written once;
 * mlk_kernels_body.h instantiates them for float32/float64 (MLK_T, MLK_F) and
 * the ISA file names them (MLK_K).  Each `case` is its own simple loop that
 * gcc vectorises (check: build with MLKERN_VEC_REPORT=1).
 *
 * The pointers may be equal (in-place) but never partially overlap: the
 * Python layer guarantees it, so `restrict` is used for vectorisation.
 */

/* Plain map: memory-bound ops (relu, copy); the hardware prefetcher keeps up. */
/* read one element per 64-byte line of x[0..n) so the block is in L1 */
MLK_INLINE void MLK_F(mlk_touch)(const MLK_T *x, intptr_t n) {
    MLK_T acc = 0;
    for (intptr_t i = 0; i < n; i += 64 / (intptr_t)sizeof(MLK_T)) acc += x[i];
    volatile MLK_T sink = acc;   /* keeps the loads; one store per block */
    (void)sink;
}

#define MLK_MAP(EXPR) \
    for (intptr_t i = 0; i < n; i++) { const MLK_T v = x[i]; y[i] = (EXPR); } break

/* Blocked map for compute-bound ops: each block of x is first pulled into L1
 * by a cheap strided read (one load per cache line), then computed from
 * cache.  Out of cache, the long vectorised body otherwise stalls on DRAM
 * (the measurement: docs/implementation.rst). */
#define MLK_MAP_BLK(EXPR) \
    for (intptr_t i0 = 0; i0 < n; i0 += MLK_BLOCK) { \
        const intptr_t e = i0 + MLK_BLOCK < n ? i0 + MLK_BLOCK : n; \
        MLK_F(mlk_touch)(x + i0, e - i0); \
        for (intptr_t i = i0; i < e; i++) { const MLK_T v = x[i]; y[i] = (EXPR); } \
    } break

#ifndef MLK_BLOCK
#define MLK_BLOCK 2048
#endif

void MLK_K(mlk_unary)(int op, const MLK_T *restrict x, MLK_T *restrict y,
                      intptr_t n, const mlk_params *p) {
    const MLK_T a = (MLK_T)p->a, b = (MLK_T)p->b, c = (MLK_T)p->c;
    switch (op) {
    case MLK_SIGMOID:          MLK_MAP_BLK(MLK_F(mlk_sigmoid)(v));
    case MLK_SIGMOID_GRAD:     MLK_MAP_BLK(MLK_F(mlk_sigmoid_grad)(v));
    case MLK_TANH:             MLK_MAP_BLK(MLK_F(mlk_tanh)(v));
    case MLK_TANH_GRAD:        MLK_MAP_BLK(MLK_F(mlk_tanh_grad)(v));
    case MLK_RELU:             MLK_MAP(MLK_F(mlk_relu)(v));
    case MLK_RELU_GRAD:        MLK_MAP(MLK_F(mlk_relu_grad)(v));
    case MLK_LEAKY_RELU:       MLK_MAP(MLK_F(mlk_leaky_relu)(v, a));
    case MLK_LEAKY_RELU_GRAD:  MLK_MAP(MLK_F(mlk_leaky_relu_grad)(v, a));
    case MLK_ELU:              MLK_MAP_BLK(MLK_F(mlk_elu)(v, a));
    case MLK_ELU_GRAD:         MLK_MAP_BLK(MLK_F(mlk_elu_grad)(v, a));
    case MLK_SOFTPLUS:         MLK_MAP_BLK(MLK_F(mlk_softplus)(v, b, c));
    case MLK_SOFTPLUS_GRAD:    MLK_MAP_BLK(MLK_F(mlk_softplus_grad)(v, b, c));
    case MLK_SILU:
        if (b == (MLK_T)1) { MLK_MAP_BLK(MLK_F(mlk_silu1)(v)); }
        MLK_MAP_BLK(MLK_F(mlk_silu)(v, b));
    case MLK_SILU_GRAD:        MLK_MAP_BLK(MLK_F(mlk_silu_grad)(v, b));
    case MLK_LOG_SIGMOID:      MLK_MAP_BLK(MLK_F(mlk_log_sigmoid)(v));
    case MLK_LOG_SIGMOID_GRAD: MLK_MAP_BLK(MLK_F(mlk_log_sigmoid_grad)(v));
    case MLK_GELU:             MLK_MAP_BLK(MLK_F(mlk_gelu)(v));
    case MLK_GELU_GRAD:        MLK_MAP_BLK(MLK_F(mlk_gelu_grad)(v));
    case MLK_GELU_TANH:        MLK_MAP_BLK(MLK_F(mlk_gelu_tanh)(v));
    case MLK_GELU_TANH_GRAD:   MLK_MAP_BLK(MLK_F(mlk_gelu_tanh_grad)(v));
    case MLK_EXP:              MLK_MAP_BLK(MLK_F(mlk_exp)(v));
    case MLK_EXPM1:            MLK_MAP_BLK(MLK_F(mlk_expm1)(v));
    case MLK_LOG:              MLK_MAP_BLK(MLK_F(mlk_log)(v));
    case MLK_LOG1P:            MLK_MAP_BLK(MLK_F(mlk_log1p)(v));
    case MLK_ERF:              MLK_MAP_BLK(MLK_F(mlk_erf)(v));
    case MLK_ERFC:             MLK_MAP_BLK(MLK_F(mlk_erfc)(v));
    case MLK_NDTR:             MLK_MAP_BLK(MLK_F(mlk_ndtr)(v));
    case MLK_NPDF:             MLK_MAP_BLK(MLK_F(mlk_npdf)(v));
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

#define MLK_MAP2(EXPR) \
    for (intptr_t i = 0; i < n; i++) { const MLK_T gv = g[i], v = s[i]; y[i] = gv * (EXPR); } break

#define MLK_MAP2_BLK(EXPR) \
    for (intptr_t i0 = 0; i0 < n; i0 += MLK_BLOCK) { \
        const intptr_t e = i0 + MLK_BLOCK < n ? i0 + MLK_BLOCK : n; \
        MLK_F(mlk_touch)(g + i0, e - i0); \
        MLK_F(mlk_touch)(s + i0, e - i0); \
        for (intptr_t i = i0; i < e; i++) { const MLK_T gv = g[i], v = s[i]; y[i] = gv * (EXPR); } \
    } break

void MLK_K(mlk_binary)(int op, const MLK_T *restrict g, const MLK_T *restrict s,
                       MLK_T *restrict y, intptr_t n, const mlk_params *p) {
    const MLK_T a = (MLK_T)p->a, b = (MLK_T)p->b, c = (MLK_T)p->c;
    switch (op) {
    case MLK_SIGMOID_BWD:     MLK_MAP2(MLK_F(mlk_sigmoid_grad_y)(v));
    case MLK_TANH_BWD:        MLK_MAP2(MLK_F(mlk_tanh_grad_y)(v));
    case MLK_RELU_BWD:        MLK_MAP2(MLK_F(mlk_relu_grad)(v));
    case MLK_LEAKY_RELU_BWD:  MLK_MAP2(MLK_F(mlk_leaky_relu_grad)(v, a));
    case MLK_ELU_BWD:         MLK_MAP2(MLK_F(mlk_elu_grad_y)(v, a));
    case MLK_SOFTPLUS_BWD:    MLK_MAP2_BLK(MLK_F(mlk_softplus_grad)(v, b, c));
    case MLK_SILU_BWD:        MLK_MAP2_BLK(MLK_F(mlk_silu_grad)(v, b));
    case MLK_LOG_SIGMOID_BWD: MLK_MAP2_BLK(MLK_F(mlk_log_sigmoid_grad)(v));
    case MLK_GELU_BWD:        MLK_MAP2_BLK(MLK_F(mlk_gelu_grad)(v));
    case MLK_GELU_TANH_BWD:   MLK_MAP2_BLK(MLK_F(mlk_gelu_tanh_grad)(v));
    default: break;
    }
}
#undef MLK_MAP2
#undef MLK_MAP2_BLK

/* y = f(x, alpha_c) over (outer, C, inner) blocks, f = leaky_relu (prelu)
   or, with grad, its derivative (prelu_grad: 1 if x > 0 else alpha_c) */
#define MLK_PRELU_MAP(F) do { \
    if (inner == 1) { \
        for (intptr_t o = 0; o < outer; o++) { \
            const MLK_T *xr = x + o * C; \
            MLK_T *yr = y + o * C; \
            for (intptr_t c = 0; c < C; c++) yr[c] = MLK_F(F)(xr[c], alpha[c]); \
        } \
    } else { \
        for (intptr_t o = 0; o < outer; o++) \
            for (intptr_t c = 0; c < C; c++) { \
                const MLK_T a = alpha[c]; \
                const MLK_T *xr = x + (o * C + c) * inner; \
                MLK_T *yr = y + (o * C + c) * inner; \
                for (intptr_t i = 0; i < inner; i++) yr[i] = MLK_F(F)(xr[i], a); \
            } \
    } \
} while (0)

void MLK_K(mlk_prelu)(const MLK_T *restrict x, MLK_T *restrict y, const MLK_T *restrict alpha,
                      intptr_t outer, intptr_t C, intptr_t inner, int grad) {
    if (grad)
        MLK_PRELU_MAP(mlk_leaky_relu_grad);
    else
        MLK_PRELU_MAP(mlk_leaky_relu);
}
#undef MLK_PRELU_MAP

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
                double acc = 0.0;
                for (intptr_t i = 0; i < inner; i++) {
                    const MLK_T xv = xr[i], gv = gr[i];
                    yr[i] = gv * MLK_F(mlk_leaky_relu_grad)(xv, a);
                    acc += xv > 0 ? 0.0 : (double)gv * (double)xv;
                }
                galpha[c] += acc;
            }
    }
}
