/*
 * mlk_kernels.h -- the array kernels Cython calls, and the run-time dispatch.
 *
 * Every kernel works on one contiguous chunk; the Cython layer owns the
 * split into chunks, the prange and the GIL release.  Each kernel is
 * compiled three times (mlk_kernels_baseline.c for the portable x86-64 /
 * generic baseline, mlk_kernels_v3.c with -march=x86-64-v3, i.e. AVX2+FMA,
 * mlk_kernels_v4.c with -march=x86-64-v4, AVX-512) from the
 * same source (mlk_kernels_tmpl.h); mlk_dispatch.c picks one set of function
 * pointers at import, or the baseline when MLKERN_CPU=baseline.
 */
#ifndef MLK_KERNELS_H
#define MLK_KERNELS_H
#include <stdint.h>

/* unary ops: y = f(x) */
enum {
    MLK_SIGMOID = 0, MLK_SIGMOID_GRAD, MLK_TANH, MLK_TANH_GRAD,
    MLK_RELU, MLK_RELU_GRAD, MLK_LEAKY_RELU, MLK_LEAKY_RELU_GRAD,
    MLK_ELU, MLK_ELU_GRAD, MLK_SOFTPLUS, MLK_SOFTPLUS_GRAD,
    MLK_SILU, MLK_SILU_GRAD, MLK_LOG_SIGMOID, MLK_LOG_SIGMOID_GRAD,
    MLK_GELU, MLK_GELU_GRAD, MLK_GELU_TANH, MLK_GELU_TANH_GRAD,
    MLK_NOISY_RELU,
    /* elementary functions, exposed for accuracy tests */
    MLK_EXP, MLK_EXPM1, MLK_LOG, MLK_LOG1P, MLK_ERF, MLK_ERFC, MLK_NDTR, MLK_NPDF,
    MLK_COPY,
    MLK_N_UNARY
};

/* binary ops: out = g * f'(.) from the saved tensor s (x or y) */
enum {
    MLK_SIGMOID_BWD = 0,   /* s = y */
    MLK_TANH_BWD,          /* s = y */
    MLK_RELU_BWD,          /* s = x (also noisy_relu, s = y) */
    MLK_LEAKY_RELU_BWD,    /* s = x */
    MLK_ELU_BWD,           /* s = y */
    MLK_SOFTPLUS_BWD, MLK_SILU_BWD, MLK_LOG_SIGMOID_BWD,
    MLK_GELU_BWD, MLK_GELU_TANH_BWD,
    MLK_N_BINARY
};

/* row-wise ops along one axis (mlk_rowwise_tmpl.h) */
enum {
    MLK_SOFTMAX = 0, MLK_LOG_SOFTMAX, MLK_LOGSUMEXP,
    MLK_SOFTMAX_BWD,        /* a = grad_output, b = y (softmax output) */
    MLK_LOG_SOFTMAX_BWD,    /* a = grad_output, b = y (log_softmax output) */
    MLK_N_ROWWISE
};
/* or-ed into a row-wise op: the output is large, write it with
   non-temporal stores where the kernel can (mlk_stream.h) */
#define MLK_RW_STREAM 0x100

typedef struct {
    double a, b, c;        /* op parameters (alpha/slope, beta, threshold, sigma) */
    uint64_t seed;         /* noisy_relu key */
    int64_t offset;        /* index of the chunk's first element in the whole array */
} mlk_params;

typedef void (*mlk_unary_f32_fn)(int op, const float *x, float *y, intptr_t n, const mlk_params *p);
typedef void (*mlk_unary_f64_fn)(int op, const double *x, double *y, intptr_t n, const mlk_params *p);
typedef void (*mlk_binary_f32_fn)(int op, const float *g, const float *s, float *y, intptr_t n, const mlk_params *p);
typedef void (*mlk_binary_f64_fn)(int op, const double *g, const double *s, double *y, intptr_t n, const mlk_params *p);
/* prelu over (outer, C, inner) blocks, alpha[C] */
typedef void (*mlk_prelu_f32_fn)(const float *x, float *y, const float *alpha, intptr_t outer, intptr_t C, intptr_t inner);
typedef void (*mlk_prelu_f64_fn)(const double *x, double *y, const double *alpha, intptr_t outer, intptr_t C, intptr_t inner);
/* prelu backward: grad_x, and grad_alpha[C] accumulated in double */
typedef void (*mlk_prelu_bwd_f32_fn)(const float *g, const float *x, const float *alpha, float *gx, double *galpha, intptr_t outer, intptr_t C, intptr_t inner);
typedef void (*mlk_prelu_bwd_f64_fn)(const double *g, const double *x, const double *alpha, double *gx, double *galpha, intptr_t outer, intptr_t C, intptr_t inner);

/* row-wise: `outer` slabs of (n x cols) with row stride ld (see mlk_rowwise_tmpl.h) */
typedef void (*mlk_rowwise_f32_fn)(int op, const float *a, const float *b, float *y, intptr_t outer, intptr_t n, intptr_t cols, intptr_t ld);
typedef void (*mlk_rowwise_f64_fn)(int op, const double *a, const double *b, double *y, intptr_t outer, intptr_t n, intptr_t cols, intptr_t ld);
typedef void (*mlk_argmax_f32_fn)(const float *x, int64_t *out, intptr_t outer, intptr_t n, intptr_t cols, intptr_t ld);
typedef void (*mlk_argmax_f64_fn)(const double *x, int64_t *out, intptr_t outer, intptr_t n, intptr_t cols, intptr_t ld);

/* fused cross-entropy over contiguous rows of n logits (mlk_loss_tmpl.h):
   coef + cstride*r = (a, b, c), w = class weights or NULL, g = gradient or NULL */
typedef void (*mlk_xent_f32_fn)(const float *z, const int64_t *lab, const double *coef, intptr_t cstride, int64_t ignore, const float *w, float *g, double *loss, intptr_t rows, intptr_t n);
typedef void (*mlk_xent_f64_fn)(const double *z, const int64_t *lab, const double *coef, intptr_t cstride, int64_t ignore, const double *w, double *g, double *loss, intptr_t rows, intptr_t n);

/* pointwise losses (mlk_loss_tmpl.h) */
enum {
    MLK_L_SQ = 0, MLK_L_ABS, MLK_L_HUBER, MLK_L_BCE, MLK_L_BCEL,
    MLK_L_SQ0, MLK_L_ABS0,  /* penalties: t not read */
    MLK_N_PLOSS
};
typedef struct {
    const double *sw;      /* weight of each row of K elements, or NULL */
    intptr_t K;
    const void *pw;        /* BCEL pos_weight (element type), period P along a row,
                              row stride prs; NULL: the scalar pws */
    intptr_t P, prs;
    double pws;
    double delta;          /* huber */
    double lscale, gscale; /* per-element loss and gradient scales */
} mlk_lparams;
typedef void (*mlk_ploss_f32_fn)(int op, const float *p, const float *t, float *lo, float *g, double *bsum, intptr_t i0, intptr_t i1, const mlk_lparams *lp);
typedef void (*mlk_ploss_f64_fn)(int op, const double *p, const double *t, double *lo, double *g, double *bsum, intptr_t i0, intptr_t i1, const mlk_lparams *lp);
/* KL divergence over contiguous rows of n */
typedef void (*mlk_kl_f32_fn)(const float *p, const float *q, int log_q, float *g, const double *gsr, double gscale, double *rsum, intptr_t rows, intptr_t n);
typedef void (*mlk_kl_f64_fn)(const double *p, const double *q, int log_q, double *g, const double *gsr, double gscale, double *rsum, intptr_t rows, intptr_t n);

/* optimiser steps (mlk_optim_tmpl.h): param, grad, state s1, s2 */
enum {
    MLK_O_SGD = 0, MLK_O_MOMENTUM, MLK_O_NESTEROV, MLK_O_ADAGRAD, MLK_O_ADADELTA,
    MLK_O_RMSPROP, MLK_O_ADAM, MLK_O_ADAMW,
    MLK_N_OPTIM
};
typedef struct {
    double lr, mom, wd;
    double beta1, beta2, eps;  /* Adam's betas; Adadelta's rho is beta1, RMSprop's alpha beta2 */
    double step_size, rbc2;    /* Adam: lr / (1 - b1^t), 1 / sqrt(1 - b2^t) */
    double decay;              /* AdamW: 1 - lr wd */
} mlk_oparams;
typedef void (*mlk_optim_f32_fn)(int op, float *param, const float *grad, float *s1, float *s2, intptr_t n, const mlk_oparams *p);
typedef void (*mlk_optim_f64_fn)(int op, double *param, const double *grad, double *s1, double *s2, intptr_t n, const mlk_oparams *p);

typedef struct {
    mlk_unary_f32_fn unary_f32;
    mlk_unary_f64_fn unary_f64;
    mlk_binary_f32_fn binary_f32;
    mlk_binary_f64_fn binary_f64;
    mlk_prelu_f32_fn prelu_f32;
    mlk_prelu_f64_fn prelu_f64;
    mlk_prelu_bwd_f32_fn prelu_bwd_f32;
    mlk_prelu_bwd_f64_fn prelu_bwd_f64;
    mlk_rowwise_f32_fn rowwise_f32;
    mlk_rowwise_f64_fn rowwise_f64;
    mlk_argmax_f32_fn argmax_f32;
    mlk_argmax_f64_fn argmax_f64;
    mlk_xent_f32_fn xent_f32;
    mlk_xent_f64_fn xent_f64;
    mlk_ploss_f32_fn ploss_f32;
    mlk_ploss_f64_fn ploss_f64;
    mlk_kl_f32_fn kl_f32;
    mlk_kl_f64_fn kl_f64;
    mlk_optim_f32_fn optim_f32;
    mlk_optim_f64_fn optim_f64;
} mlk_kernel_table;

/* the table in use; set by mlk_dispatch_init */
extern mlk_kernel_table mlk_kt;
/* choose a level: "baseline", "x86-64-v3", "x86-64-v4", or NULL/"" = best supported.
   Returns 0 on success, -1 if the requested level is unknown or unsupported. */
int mlk_dispatch_init(const char *level);
const char *mlk_dispatch_level(void);   /* name of the level in use */
int mlk_cpu_has_v3(void);               /* 1 if this CPU can run the v3 kernels */
int mlk_have_v3_build(void);            /* 1 if the v3 kernels were compiled */
int mlk_cpu_has_v4(void);               /* 1 if this CPU can run the v4 (AVX-512) kernels */
int mlk_have_v4_build(void);

const char *mlk_compiler(void);         /* the compiler that built the kernels */
int mlk_built_native(void);              /* 1: built with -march=native (MLKERN_NATIVE=1) */

/* a thread count set by a thread for itself (0: none), thread-local */
int mlk_tl_threads_get(void);
void mlk_tl_threads_set(int n);

/* OpenMP shims (serial build: 1 thread, no OpenMP) */
int mlk_openmp_enabled(void);
int mlk_omp_max_threads(void);
void mlk_omp_set_num_threads(int n);

#endif
