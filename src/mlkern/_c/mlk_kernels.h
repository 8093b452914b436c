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

/* ---- the op table: every op of every family, once ----------------------
 * X(CODE, name, cost, "params"): the enum constant MLK_<CODE>, the op's
 * name (exported to Python by the extension's op_table()), its cost (work
 * per element for the thread threshold, read by the Cython drivers: 1 a
 * simple op (relu, copy), 4 one exp/log) and the names of the parameters
 * it reads, comma-separated.  Unary and binary ops: by position, the
 * fields a, b, c, seed of mlk_params (an empty slot: a field not read);
 * losses and optimisers: the names of the mlk_lparams / mlk_oparams fields
 * they read.  The enums below and the tables mlk_*_ops[] (mlk_dispatch.c)
 * are generated from these lists. */

/* unary ops: y = f(x) (mlk_params a, b, c, seed) */
#define MLK_UNARY_OPS(X) \
    X(SIGMOID,          sigmoid,          4,  "") \
    X(SIGMOID_GRAD,     sigmoid_grad,     5,  "") \
    X(TANH,             tanh,             5,  "") \
    X(TANH_GRAD,        tanh_grad,        5,  "") \
    X(RELU,             relu,             1,  "") \
    X(RELU_GRAD,        relu_grad,        1,  "") \
    X(LEAKY_RELU,       leaky_relu,       1,  "negative_slope") \
    X(LEAKY_RELU_GRAD,  leaky_relu_grad,  1,  "negative_slope") \
    X(ELU,              elu,              4,  "alpha") \
    X(ELU_GRAD,         elu_grad,         4,  "alpha") \
    X(SOFTPLUS,         softplus,         8,  ",beta,threshold") \
    X(SOFTPLUS_GRAD,    softplus_grad,    4,  ",beta,threshold") \
    X(SILU,             silu,             5,  ",beta") \
    X(SILU_GRAD,        silu_grad,        5,  ",beta") \
    X(LOG_SIGMOID,      log_sigmoid,      8,  "") \
    X(LOG_SIGMOID_GRAD, log_sigmoid_grad, 4,  "") \
    X(GELU,             gelu,             10, "") \
    X(GELU_GRAD,        gelu_grad,        10, "") \
    X(GELU_TANH,        gelu_tanh,        10, "") \
    X(GELU_TANH_GRAD,   gelu_tanh_grad,   10, "") \
    X(NOISY_RELU,       noisy_relu,       12, "sigma,,,seed") \
    /* elementary functions, exposed for accuracy tests (mlkern._math) */ \
    X(EXP,              exp,              4,  "") \
    X(EXPM1,            expm1,            4,  "") \
    X(LOG,              log,              4,  "") \
    X(LOG1P,            log1p,            4,  "") \
    X(ERF,              erf,              4,  "") \
    X(ERFC,             erfc,             4,  "") \
    X(NDTR,             ndtr,             4,  "") \
    X(NPDF,             npdf,             4,  "") \
    /* out = x: the benchmarks' memory-roof meter */ \
    X(COPY,             copy,             1,  "")

/* binary ops: out = g * f'(.) from the saved tensor s (x or y) */
#define MLK_BINARY_OPS(X) \
    X(SIGMOID_BWD,      sigmoid_backward,     1,  "")                  /* s = y */ \
    X(TANH_BWD,         tanh_backward,        1,  "")                  /* s = y */ \
    X(RELU_BWD,         relu_backward,        1,  "")  /* s = x (also noisy_relu, s = y) */ \
    X(LEAKY_RELU_BWD,   leaky_relu_backward,  1,  "negative_slope")    /* s = x */ \
    X(ELU_BWD,          elu_backward,         1,  "alpha")             /* s = y */ \
    X(SOFTPLUS_BWD,     softplus_backward,    4,  ",beta,threshold") \
    X(SILU_BWD,         silu_backward,        5,  ",beta") \
    X(LOG_SIGMOID_BWD,  log_sigmoid_backward, 4,  "") \
    X(GELU_BWD,         gelu_backward,        10, "") \
    X(GELU_TANH_BWD,    gelu_tanh_backward,   10, "")

/* row-wise ops along one axis (mlk_rowwise_tmpl.h) */
#define MLK_ROWWISE_OPS(X) \
    X(SOFTMAX,          softmax,              4,  "") \
    X(LOG_SOFTMAX,      log_softmax,          4,  "") \
    X(LOGSUMEXP,        logsumexp,            4,  "") \
    X(SOFTMAX_BWD,      softmax_backward,     1,  "")  /* a = grad_output, b = y (softmax output) */ \
    X(LOG_SOFTMAX_BWD,  log_softmax_backward, 4,  "")  /* a = grad_output, b = y (log_softmax output) */

/* pointwise losses (mlk_loss_tmpl.h; mlk_lparams) */
#define MLK_PLOSS_OPS(X) \
    X(L_SQ,    squared,          1, "") \
    X(L_ABS,   absolute,         1, "") \
    X(L_HUBER, huber,            1, "delta") \
    X(L_BCE,   bce,              8, "") \
    X(L_BCEL,  bce_with_logits,  4, "pos_weight") \
    X(L_SQ0,   squared_penalty,  1, "")   /* penalties: t not read */ \
    X(L_ABS0,  absolute_penalty, 1, "")

/* optimiser steps (mlk_optim_tmpl.h; mlk_oparams) */
#define MLK_OPTIM_OPS(X) \
    X(O_SGD,      sgd,      1, "lr,wd") \
    X(O_MOMENTUM, momentum, 1, "lr,mom,wd") \
    X(O_NESTEROV, nesterov, 1, "lr,mom,wd") \
    X(O_ADAGRAD,  adagrad,  2, "lr,eps,wd") \
    X(O_ADADELTA, adadelta, 2, "lr,beta1,eps,wd") \
    X(O_RMSPROP,  rmsprop,  2, "lr,beta2,eps,wd") \
    X(O_ADAM,     adam,     2, "lr,beta1,beta2,eps,step_size,rbc2,wd") \
    X(O_ADAMW,    adamw,    2, "lr,beta1,beta2,eps,step_size,rbc2,decay")

#define MLK_OP_ENUM_(code, name, cost, params) MLK_##code,
enum { MLK_UNARY_OPS(MLK_OP_ENUM_) MLK_N_UNARY };
enum { MLK_BINARY_OPS(MLK_OP_ENUM_) MLK_N_BINARY };
enum { MLK_ROWWISE_OPS(MLK_OP_ENUM_) MLK_N_ROWWISE };
enum { MLK_PLOSS_OPS(MLK_OP_ENUM_) MLK_N_PLOSS };
enum { MLK_OPTIM_OPS(MLK_OP_ENUM_) MLK_N_OPTIM };

/* one row of an op table: mlk_unary_ops[MLK_SIGMOID].cost == 4 */
typedef struct {
    const char *name;
    int cost;
    const char *params;
} mlk_op_info;
extern const mlk_op_info mlk_unary_ops[MLK_N_UNARY];
extern const mlk_op_info mlk_binary_ops[MLK_N_BINARY];
extern const mlk_op_info mlk_rowwise_ops[MLK_N_ROWWISE];
extern const mlk_op_info mlk_ploss_ops[MLK_N_PLOSS];
extern const mlk_op_info mlk_optim_ops[MLK_N_OPTIM];

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
/* prelu over (outer, C, inner) blocks, alpha[C]; grad != 0: its derivative */
typedef void (*mlk_prelu_f32_fn)(const float *x, float *y, const float *alpha, intptr_t outer, intptr_t C, intptr_t inner, int grad);
typedef void (*mlk_prelu_f64_fn)(const double *x, double *y, const double *alpha, intptr_t outer, intptr_t C, intptr_t inner, int grad);
/* prelu backward: grad_x, and grad_alpha[C] accumulated in double */
typedef void (*mlk_prelu_bwd_f32_fn)(const float *g, const float *x, const float *alpha, float *gx, double *galpha, intptr_t outer, intptr_t C, intptr_t inner);
typedef void (*mlk_prelu_bwd_f64_fn)(const double *g, const double *x, const double *alpha, double *gx, double *galpha, intptr_t outer, intptr_t C, intptr_t inner);

/* row-wise: `outer` slabs of (n x cols) with row stride ld (see mlk_rowwise_tmpl.h) */
typedef void (*mlk_rowwise_f32_fn)(int op, const float *a, const float *b, float *y, intptr_t outer, intptr_t n, intptr_t cols, intptr_t ld);
typedef void (*mlk_rowwise_f64_fn)(int op, const double *a, const double *b, double *y, intptr_t outer, intptr_t n, intptr_t cols, intptr_t ld);
typedef void (*mlk_argmax_f32_fn)(const float *x, int64_t *out, intptr_t outer, intptr_t n, intptr_t cols, intptr_t ld);
typedef void (*mlk_argmax_f64_fn)(const double *x, int64_t *out, intptr_t outer, intptr_t n, intptr_t cols, intptr_t ld);
/* one long row split into chunks: the phases of mlk_rowwise_tmpl.h's mlk_rowlong */
typedef int (*mlk_rowlong_f32_fn)(int op, int phase, const float *a, const float *b, float *y, intptr_t n, double *st);
typedef int (*mlk_rowlong_f64_fn)(int op, int phase, const double *a, const double *b, double *y, intptr_t n, double *st);

/* fused cross-entropy over contiguous rows of n logits (mlk_loss_tmpl.h):
   coef + cstride*r = (a, b, c), w = class weights or NULL, g = gradient or NULL */
typedef void (*mlk_xent_f32_fn)(const float *z, const int64_t *lab, const double *coef, intptr_t cstride, int64_t ignore, const float *w, float *g, double *loss, intptr_t rows, intptr_t n);
typedef void (*mlk_xent_f64_fn)(const double *z, const int64_t *lab, const double *coef, intptr_t cstride, int64_t ignore, const double *w, double *g, double *loss, intptr_t rows, intptr_t n);

/* pointwise losses (mlk_loss_tmpl.h): ops in MLK_PLOSS_OPS above */
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

/* optimiser steps (mlk_optim_tmpl.h): param, grad, state s1, s2; ops in MLK_OPTIM_OPS */
typedef struct {
    double lr, mom, wd;
    double beta1, beta2, eps;  /* Adam's betas; Adadelta's rho is beta1, RMSprop's alpha beta2 */
    double step_size, rbc2;    /* Adam: lr / (1 - b1^t), 1 / sqrt(1 - b2^t) */
    double decay;              /* AdamW: 1 - lr wd */
} mlk_oparams;
typedef void (*mlk_optim_f32_fn)(int op, float *param, const float *grad, float *s1, float *s2, intptr_t n, const mlk_oparams *p);
typedef void (*mlk_optim_f64_fn)(int op, double *param, const double *grad, double *s1, double *s2, intptr_t n, const mlk_oparams *p);

/* pooling (mlk_pool_tmpl.h, mlkern.layers): ops, the geometry, one entry
   over the work units [u0, u1) of a call */
enum { MLK_POOL_MAX_NCHW, MLK_POOL_MAX_NHWC, MLK_POOL_AVG_NCHW, MLK_POOL_AVG_NHWC,
       MLK_POOL_MAXB_NCHW, MLK_POOL_MAXB_NHWC, MLK_POOL_AVGB_NCHW, MLK_POOL_AVGB_NHWC };
typedef struct {
    intptr_t H, W, OH, OW, kh, kw, sh, sw, ph, pw, dh, dw;
    intptr_t C;            /* channels (NHWC) */
    intptr_t cb;           /* NHWC backward: channels per work unit */
    int cip;               /* average: count_include_pad */
} mlk_pool_geom;
typedef void (*mlk_pool_f32_fn)(int op, const float *a, float *b, int64_t *idx, intptr_t u0, intptr_t u1, const mlk_pool_geom *g, float *work);
typedef void (*mlk_pool_f64_fn)(int op, const double *a, double *b, int64_t *idx, intptr_t u0, intptr_t u1, const mlk_pool_geom *g, double *work);
/* recurrent layers (mlk_rnn_tmpl.h): one time step over one block of
   hidden units; the pointers are of the element type (see the template) */
enum { MLK_RNN_TANH_FWD, MLK_RNN_RELU_FWD, MLK_LSTM_FWD, MLK_GRU_FWD,
       MLK_RNN_TANH_BWD, MLK_RNN_RELU_BWD, MLK_LSTM_BWD, MLK_GRU_BWD };
typedef struct {
    intptr_t N, hb;        /* rows, hidden units of the block */
    intptr_t ldg, ldh;     /* row strides of the gate arrays and of the state arrays */
    const void *s;         /* GRU forward: gate n's W_hn h' + b_hn (at gate n's columns) */
    void *act;             /* forward: the pre-activations in, the activations out; backward: the activations */
    const void *hp, *cp;   /* h_{t-1}, c_{t-1} */
    void *h, *c;           /* forward: h_t, c_t out; RNN backward: h_t */
    void *aux;             /* LSTM tanh(c_t), GRU W_hn h' + b_hn (written forward, read backward) */
    const void *go;        /* backward: grad of the output at t, or NULL */
    const void *dh;        /* backward: the gradient of h_t from the later steps */
    void *dc;              /* LSTM backward: dc_t in, dc_{t-1} out */
    void *dg, *dgh;        /* backward: the gate gradients; GRU: dgh those of W_hh */
    void *dprev;           /* GRU backward: z dh, the direct part of dh_{t-1} */
} mlk_rnn_args;
typedef void (*mlk_rnn_fn)(int op, const mlk_rnn_args *a);

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
    mlk_pool_f32_fn pool_f32;
    mlk_pool_f64_fn pool_f64;
    mlk_rnn_fn rnn_f32;
    mlk_rnn_fn rnn_f64;
    mlk_rowlong_f32_fn rowlong_f32;
    mlk_rowlong_f64_fn rowlong_f64;
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
