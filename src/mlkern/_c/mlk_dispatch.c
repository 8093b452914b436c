/*
 * mlk_dispatch.c -- run-time choice of the kernel set, and OpenMP shims.
 *
 * Levels: baseline (the compiler's default target), x86-64-v3 (AVX2+FMA)
 * and x86-64-v4 (AVX-512); the best the CPU supports is used unless
 * MLKERN_CPU names another.
 *
 * Why one object per level instead of gcc target_clones: the level must be
 * forceable from the environment (MLKERN_CPU=baseline, so the test suite
 * covers the fallback), must be reported by show_config(), and the inline
 * math has to be compiled for the same level as the loop it sits in.  A
 * table of function pointers chosen once at import does all three; the
 * call through a pointer costs nothing next to a kernel call.
 */
#include <string.h>
#include "mlk_kernels.h"
#ifdef _OPENMP
#include <omp.h>
#endif

#define MLK_DECLARE(isa) \
    void mlk_unary_f32_##isa(int, const float *, float *, intptr_t, const mlk_params *); \
    void mlk_unary_f64_##isa(int, const double *, double *, intptr_t, const mlk_params *); \
    void mlk_binary_f32_##isa(int, const float *, const float *, float *, intptr_t, const mlk_params *); \
    void mlk_binary_f64_##isa(int, const double *, const double *, double *, intptr_t, const mlk_params *); \
    void mlk_prelu_f32_##isa(const float *, float *, const float *, intptr_t, intptr_t, intptr_t, int); \
    void mlk_prelu_f64_##isa(const double *, double *, const double *, intptr_t, intptr_t, intptr_t, int); \
    void mlk_prelu_bwd_f32_##isa(const float *, const float *, const float *, float *, double *, intptr_t, intptr_t, intptr_t); \
    void mlk_prelu_bwd_f64_##isa(const double *, const double *, const double *, double *, double *, intptr_t, intptr_t, intptr_t); \
    void mlk_rowwise_f32_##isa(int, const float *, const float *, float *, intptr_t, intptr_t, intptr_t, intptr_t); \
    void mlk_rowwise_f64_##isa(int, const double *, const double *, double *, intptr_t, intptr_t, intptr_t, intptr_t); \
    void mlk_argmax_f32_##isa(const float *, int64_t *, intptr_t, intptr_t, intptr_t, intptr_t); \
    void mlk_argmax_f64_##isa(const double *, int64_t *, intptr_t, intptr_t, intptr_t, intptr_t); \
    void mlk_xent_f32_##isa(const float *, const int64_t *, const double *, intptr_t, int64_t, const float *, float *, double *, intptr_t, intptr_t); \
    void mlk_xent_f64_##isa(const double *, const int64_t *, const double *, intptr_t, int64_t, const double *, double *, double *, intptr_t, intptr_t); \
    void mlk_ploss_f32_##isa(int, const float *, const float *, float *, float *, double *, intptr_t, intptr_t, const mlk_lparams *); \
    void mlk_ploss_f64_##isa(int, const double *, const double *, double *, double *, double *, intptr_t, intptr_t, const mlk_lparams *); \
    void mlk_kl_f32_##isa(const float *, const float *, int, float *, const double *, double, double *, intptr_t, intptr_t); \
    void mlk_kl_f64_##isa(const double *, const double *, int, double *, const double *, double, double *, intptr_t, intptr_t); \
    void mlk_optim_f32_##isa(int, float *, const float *, float *, float *, intptr_t, const mlk_oparams *); \
    void mlk_optim_f64_##isa(int, double *, const double *, double *, double *, intptr_t, const mlk_oparams *); \
    void mlk_pool_f32_##isa(int, const float *, float *, int64_t *, intptr_t, intptr_t, const mlk_pool_geom *, float *); \
    void mlk_pool_f64_##isa(int, const double *, double *, int64_t *, intptr_t, intptr_t, const mlk_pool_geom *, double *); \
    void mlk_rnn_f32_##isa(int, const mlk_rnn_args *); \
    void mlk_rnn_f64_##isa(int, const mlk_rnn_args *); \
    int mlk_rowlong_f32_##isa(int, int, const float *, const float *, float *, intptr_t, double *); \
    int mlk_rowlong_f64_##isa(int, int, const double *, const double *, double *, intptr_t, double *);

#define MLK_TABLE(isa) { mlk_unary_f32_##isa, mlk_unary_f64_##isa, mlk_binary_f32_##isa, \
    mlk_binary_f64_##isa, mlk_prelu_f32_##isa, mlk_prelu_f64_##isa, \
    mlk_prelu_bwd_f32_##isa, mlk_prelu_bwd_f64_##isa, mlk_rowwise_f32_##isa, \
    mlk_rowwise_f64_##isa, mlk_argmax_f32_##isa, mlk_argmax_f64_##isa, \
    mlk_xent_f32_##isa, mlk_xent_f64_##isa, mlk_ploss_f32_##isa, mlk_ploss_f64_##isa, \
    mlk_kl_f32_##isa, mlk_kl_f64_##isa, mlk_optim_f32_##isa, mlk_optim_f64_##isa, \
    mlk_pool_f32_##isa, mlk_pool_f64_##isa, \
    mlk_rnn_f32_##isa, mlk_rnn_f64_##isa, mlk_rowlong_f32_##isa, mlk_rowlong_f64_##isa }

MLK_DECLARE(baseline)
static const mlk_kernel_table mlk_table_baseline = MLK_TABLE(baseline);

#if defined(__x86_64__) && defined(MLK_BUILD_V3)
MLK_DECLARE(v3)
static const mlk_kernel_table mlk_table_v3 = MLK_TABLE(v3);
#define MLK_HAVE_V3 1
#else
#define MLK_HAVE_V3 0
#endif

#if defined(__x86_64__) && defined(MLK_BUILD_V4)
MLK_DECLARE(v4)
static const mlk_kernel_table mlk_table_v4 = MLK_TABLE(v4);
#define MLK_HAVE_V4 1
#else
#define MLK_HAVE_V4 0
#endif

/* the op tables, generated from the lists in mlk_kernels.h */
#define MLK_OP_INFO_(code, name, cost, params) {#name, cost, params},
const mlk_op_info mlk_unary_ops[MLK_N_UNARY] = {MLK_UNARY_OPS(MLK_OP_INFO_)};
const mlk_op_info mlk_binary_ops[MLK_N_BINARY] = {MLK_BINARY_OPS(MLK_OP_INFO_)};
const mlk_op_info mlk_rowwise_ops[MLK_N_ROWWISE] = {MLK_ROWWISE_OPS(MLK_OP_INFO_)};
const mlk_op_info mlk_ploss_ops[MLK_N_PLOSS] = {MLK_PLOSS_OPS(MLK_OP_INFO_)};
const mlk_op_info mlk_optim_ops[MLK_N_OPTIM] = {MLK_OPTIM_OPS(MLK_OP_INFO_)};

mlk_kernel_table mlk_kt = MLK_TABLE(baseline);
static const char *mlk_level = "baseline";

int mlk_have_v3_build(void) { return MLK_HAVE_V3; }
int mlk_have_v4_build(void) { return MLK_HAVE_V4; }

int mlk_cpu_has_v4(void) {
#if MLK_HAVE_V4
    __builtin_cpu_init();
    return mlk_cpu_has_v3() && __builtin_cpu_supports("avx512f") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512cd") ? 1 : 0;
#else
    return 0;
#endif
}

int mlk_cpu_has_v3(void) {
#if MLK_HAVE_V3
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
           __builtin_cpu_supports("bmi2") && __builtin_cpu_supports("f16c") ? 1 : 0;
#else
    return 0;
#endif
}

int mlk_dispatch_init(const char *level) {
    int want;   /* 0 baseline, 3 x86-64-v3, 4 x86-64-v4 */
    if (level == NULL || level[0] == '\0' || strcmp(level, "best") == 0)
        want = mlk_cpu_has_v4() ? 4 : (mlk_cpu_has_v3() ? 3 : 0);
    else if (strcmp(level, "baseline") == 0) want = 0;
    else if (strcmp(level, "x86-64-v3") == 0 || strcmp(level, "avx2") == 0) {
        if (!mlk_cpu_has_v3()) return -1;
        want = 3;
    } else if (strcmp(level, "x86-64-v4") == 0 || strcmp(level, "avx512") == 0) {
        if (!mlk_cpu_has_v4()) return -1;
        want = 4;
    } else return -1;
#if MLK_HAVE_V4
    if (want == 4) {
        mlk_kt = mlk_table_v4;
#if MLK_HAVE_V3
        /* the optimiser steps are memory-bound except for Adam/RMSprop/
           Adagrad/Adadelta's sqrt and divide, whose 512-bit forms give no
           more elements per cycle than the 256-bit ones (AMD Zen 4 splits
           them; Intel halves their throughput), so the x86-64-v3 kernels
           are the faster ones (measured: docs/implementation.rst) */
        mlk_kt.optim_f32 = mlk_table_v3.optim_f32;
        mlk_kt.optim_f64 = mlk_table_v3.optim_f64;
#endif
        mlk_level = "x86-64-v4";
        return 0;
    }
#endif
#if MLK_HAVE_V3
    if (want == 3) { mlk_kt = mlk_table_v3; mlk_level = "x86-64-v3"; return 0; }
#endif
    (void)want;
    mlk_kt = mlk_table_baseline;
    mlk_level = "baseline";
    return 0;
}

const char *mlk_dispatch_level(void) { return mlk_level; }

const char *mlk_compiler(void) {
#if defined(__clang__)
    return "clang " __clang_version__;
#elif defined(__GNUC__)
    return "gcc " __VERSION__;
#elif defined(_MSC_VER)
    return "msvc";
#else
    return "unknown";
#endif
}

/* 1 if the build used -march=native (MLKERN_NATIVE=1 in setup.py) */
int mlk_built_native(void) {
#ifdef MLK_NATIVE
    return 1;
#else
    return 0;
#endif
}

/* the calling thread's own thread count (0: none set); see _config.py */
#if defined(_MSC_VER)
static __declspec(thread) int mlk_tl_threads = 0;
#else
static _Thread_local int mlk_tl_threads = 0;
#endif
int mlk_tl_threads_get(void) { return mlk_tl_threads; }
void mlk_tl_threads_set(int n) { mlk_tl_threads = n; }

int mlk_openmp_enabled(void) {
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}

int mlk_omp_max_threads(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

void mlk_omp_set_num_threads(int n) {
#ifdef _OPENMP
    omp_set_num_threads(n);
#else
    (void)n;
#endif
}
