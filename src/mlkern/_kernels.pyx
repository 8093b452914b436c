# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Elementwise kernels: the chunking, the prange, the GIL release.

The math lives in C (``_c/mlk_act_tmpl.h`` over ``_c/mlk_math.h``); the loops
over one contiguous chunk in ``_c/mlk_kernels_tmpl.h``, compiled once per
SIMD level and chosen at import (``_c/mlk_dispatch.c``).  This module owns
the split of an array into one chunk per thread, the size threshold below
which no OpenMP region is entered, and the fast path that lets a
C-contiguous float32/float64 array reach the kernel without any copy.
Everything else (dtype conversion, layouts, ``out=`` checks) is in
``_validation.py``: a fast entry returns None when its call is not of the
common kind, and the Python caller then validates and calls the ``*_raw``
entry.  This module never imports the Python modules of mlkern.

Files: ``_common.pxi`` (thread policy, chunks, fast-path predicates, dtype
switch), ``_eltwise.pxi``, ``_rowwise.pxi``, ``_loss.pxi``,
``_optim.pxi`` (the drivers of each family), ``_capi.pxi`` (the Cython API).
"""
cimport numpy as cnp

cdef extern from "pythread.h":
    unsigned long PyThread_get_thread_ident() nogil   # pthread_self: safe without the GIL
import numpy as np
from cython.parallel cimport prange, parallel, threadid
from libc.stdint cimport uint64_t, int64_t, intptr_t
from libc.stdlib cimport malloc, free

cnp.import_array()

cdef extern from "mlk_kernels.h" nogil:
    ctypedef struct mlk_params:
        double a
        double b
        double c
        uint64_t seed
        int64_t offset
    ctypedef void (*unary_f32_fn)(int, const float *, float *, intptr_t, const mlk_params *) noexcept nogil
    ctypedef void (*unary_f64_fn)(int, const double *, double *, intptr_t, const mlk_params *) noexcept nogil
    ctypedef void (*binary_f32_fn)(int, const float *, const float *, float *, intptr_t, const mlk_params *) noexcept nogil
    ctypedef void (*binary_f64_fn)(int, const double *, const double *, double *, intptr_t, const mlk_params *) noexcept nogil
    ctypedef void (*prelu_f32_fn)(const float *, float *, const float *, intptr_t, intptr_t, intptr_t, int) noexcept nogil
    ctypedef void (*prelu_f64_fn)(const double *, double *, const double *, intptr_t, intptr_t, intptr_t, int) noexcept nogil
    ctypedef void (*prelu_bwd_f32_fn)(const float *, const float *, const float *, float *, double *, intptr_t, intptr_t, intptr_t) noexcept nogil
    ctypedef void (*prelu_bwd_f64_fn)(const double *, const double *, const double *, double *, double *, intptr_t, intptr_t, intptr_t) noexcept nogil
    ctypedef void (*rowwise_f32_fn)(int, const float *, const float *, float *, intptr_t, intptr_t, intptr_t, intptr_t) noexcept nogil
    ctypedef void (*rowwise_f64_fn)(int, const double *, const double *, double *, intptr_t, intptr_t, intptr_t, intptr_t) noexcept nogil
    ctypedef void (*argmax_f32_fn)(const float *, int64_t *, intptr_t, intptr_t, intptr_t, intptr_t) noexcept nogil
    ctypedef void (*argmax_f64_fn)(const double *, int64_t *, intptr_t, intptr_t, intptr_t, intptr_t) noexcept nogil
    ctypedef int (*rowlong_f32_fn)(int, int, const float *, const float *, float *, intptr_t, double *) noexcept nogil
    ctypedef int (*rowlong_f64_fn)(int, int, const double *, const double *, double *, intptr_t, double *) noexcept nogil
    ctypedef void (*xent_f32_fn)(const float *, const int64_t *, const double *, intptr_t, int64_t, const float *, float *, double *, intptr_t, intptr_t) noexcept nogil
    ctypedef void (*xent_f64_fn)(const double *, const int64_t *, const double *, intptr_t, int64_t, const double *, double *, double *, intptr_t, intptr_t) noexcept nogil
    ctypedef struct mlk_lparams:
        const double *sw
        intptr_t K
        const void *pw
        intptr_t P
        intptr_t prs
        double pws
        double delta
        double lscale
        double gscale
    ctypedef void (*ploss_f32_fn)(int, const float *, const float *, float *, float *, double *, intptr_t, intptr_t, const mlk_lparams *) noexcept nogil
    ctypedef void (*ploss_f64_fn)(int, const double *, const double *, double *, double *, double *, intptr_t, intptr_t, const mlk_lparams *) noexcept nogil
    ctypedef void (*kl_f32_fn)(const float *, const float *, int, float *, const double *, double, double *, intptr_t, intptr_t) noexcept nogil
    ctypedef void (*kl_f64_fn)(const double *, const double *, int, double *, const double *, double, double *, intptr_t, intptr_t) noexcept nogil
    ctypedef struct mlk_oparams:
        double lr
        double mom
        double wd
        double beta1
        double beta2
        double eps
        double step_size
        double rbc2
        double decay
    ctypedef void (*optim_f32_fn)(int, float *, const float *, float *, float *, intptr_t, const mlk_oparams *) noexcept nogil
    ctypedef void (*optim_f64_fn)(int, double *, const double *, double *, double *, intptr_t, const mlk_oparams *) noexcept nogil
    ctypedef struct mlk_pool_geom:
        intptr_t H, W, OH, OW, kh, kw, sh, sw, ph, pw, dh, dw, C, cb
        int cip
    ctypedef void (*pool_f32_fn)(int, const float *, float *, int64_t *, intptr_t, intptr_t, const mlk_pool_geom *, float *) noexcept nogil
    ctypedef void (*pool_f64_fn)(int, const double *, double *, int64_t *, intptr_t, intptr_t, const mlk_pool_geom *, double *) noexcept nogil
    ctypedef struct mlk_rnn_args:
        intptr_t N
        intptr_t hb
        intptr_t ldg
        intptr_t ldh
        const void *s
        void *act
        const void *hp
        const void *cp
        void *h
        void *c
        void *aux
        const void *go
        const void *dh
        void *dc
        void *dg
        void *dgh
        void *dprev
    ctypedef void (*mlk_rnn_fn)(int, const mlk_rnn_args *) noexcept nogil
    int MLK_RNN_TANH_FWD
    int MLK_RNN_RELU_FWD
    int MLK_LSTM_FWD
    int MLK_GRU_FWD
    int MLK_RNN_TANH_BWD
    int MLK_RNN_RELU_BWD
    int MLK_LSTM_BWD
    int MLK_GRU_BWD
    ctypedef struct mlk_kernel_table:
        unary_f32_fn unary_f32
        unary_f64_fn unary_f64
        binary_f32_fn binary_f32
        binary_f64_fn binary_f64
        prelu_f32_fn prelu_f32
        prelu_f64_fn prelu_f64
        prelu_bwd_f32_fn prelu_bwd_f32
        prelu_bwd_f64_fn prelu_bwd_f64
        rowwise_f32_fn rowwise_f32
        rowwise_f64_fn rowwise_f64
        argmax_f32_fn argmax_f32
        argmax_f64_fn argmax_f64
        xent_f32_fn xent_f32
        xent_f64_fn xent_f64
        ploss_f32_fn ploss_f32
        ploss_f64_fn ploss_f64
        kl_f32_fn kl_f32
        kl_f64_fn kl_f64
        optim_f32_fn optim_f32
        optim_f64_fn optim_f64
        pool_f32_fn pool_f32
        pool_f64_fn pool_f64
        mlk_rnn_fn rnn_f32
        mlk_rnn_fn rnn_f64
        rowlong_f32_fn rowlong_f32
        rowlong_f64_fn rowlong_f64
    mlk_kernel_table mlk_kt
    int mlk_dispatch_init(const char *level)
    const char *mlk_dispatch_level()
    int mlk_cpu_has_v3()
    int mlk_have_v3_build()
    int mlk_cpu_has_v4()
    int mlk_have_v4_build()
    int mlk_openmp_enabled()
    const char *mlk_compiler()
    int mlk_built_native()
    int mlk_omp_max_threads()
    void mlk_omp_set_num_threads(int n)
    int mlk_tl_threads_get()
    void mlk_tl_threads_set(int n)
    int MLK_N_UNARY
    int MLK_N_BINARY
    int MLK_N_ROWWISE
    int MLK_LOGSUMEXP
    int MLK_RW_STREAM
    int MLK_N_PLOSS
    int MLK_N_OPTIM
    ctypedef struct mlk_op_info:
        const char *name
        int cost
        const char *params
    const mlk_op_info *mlk_unary_ops
    const mlk_op_info *mlk_binary_ops
    const mlk_op_info *mlk_rowwise_ops
    const mlk_op_info *mlk_ploss_ops
    const mlk_op_info *mlk_optim_ops

ctypedef fused real:
    float
    double

cdef int _user_threads = 0      # 0: follow OpenMP (OMP_NUM_THREADS / threadpoolctl)
cdef int _fork_serial = 0       # set in a forked child: run serially
cdef unsigned long _main_ident = 0   # the interpreter's main thread (set by _config)

# ------------------------------------------------------------------------
# configuration
# ------------------------------------------------------------------------

def dispatch_init(level):
    """Select the SIMD level ("" = best, "baseline", "x86-64-v3", "x86-64-v4")."""
    cdef bytes b = level.encode()
    if mlk_dispatch_init(b) != 0:
        raise ValueError(f"MLKERN_CPU={level!r}: unknown level or not supported by this CPU "
                         "(choose 'baseline', 'x86-64-v3' or 'x86-64-v4')")
    return (<bytes>mlk_dispatch_level()).decode()

def dispatch_level():
    return (<bytes>mlk_dispatch_level()).decode()

def cpu_has_v3():
    return bool(mlk_cpu_has_v3())

def have_v3_build():
    return bool(mlk_have_v3_build())

def cpu_has_v4():
    return bool(mlk_cpu_has_v4())

def have_v4_build():
    return bool(mlk_have_v4_build())

def compiler():
    return (<bytes>mlk_compiler()).decode()

def built_native():
    """True if the extension was built with -march=native (MLKERN_NATIVE=1)."""
    return bool(mlk_built_native())

def openmp_enabled():
    return bool(mlk_openmp_enabled())

def omp_max_threads():
    return mlk_omp_max_threads()

def set_user_threads(int n):
    """n > 0: mlkern uses n threads (also set as this thread's OpenMP default,
    so that threadpoolctl sees and can limit it); n = 0: follow OpenMP."""
    global _user_threads
    _user_threads = n
    if n > 0:
        mlk_omp_set_num_threads(n)

def get_user_threads():
    return _user_threads

def set_fork_serial(int flag):
    global _fork_serial
    _fork_serial = flag

def set_main_ident(unsigned long ident):
    global _main_ident
    _main_ident = ident

def set_thread_threads(int n):
    """This thread's own count (n > 0, also its OpenMP default so that
    threadpoolctl sees it), or 0: none (the policy applies again)."""
    mlk_tl_threads_set(n)
    if n > 0:
        mlk_omp_set_num_threads(n)

def set_omp_threads(int n):
    """The calling thread's OpenMP default (omp_set_num_threads)."""
    if n > 0:
        mlk_omp_set_num_threads(n)

def get_thread_threads():
    return mlk_tl_threads_get()

def effective_threads():
    return _max_threads()

# ------------------------------------------------------------------------
# the op table (mlk_kernels.h)
# ------------------------------------------------------------------------

cdef dict _op_family(const mlk_op_info *t, int n):
    cdef int i
    cdef dict d = {}
    for i in range(n):
        d[(<bytes>t[i].name).decode()] = (i, t[i].cost, tuple((<bytes>t[i].params).decode().split(","))
                                          if t[i].params[0] else ())
    return d

def op_table():
    """{family: {name: (code, cost, parameter names)}} for the families
    "unary", "binary", "rowwise", "ploss" and "optim": the op lists of
    mlk_kernels.h.  Parameter names of unary/binary ops are by position the
    fields a, b, c, seed ("" for a field the op does not read)."""
    return {"unary": _op_family(mlk_unary_ops, MLK_N_UNARY),
            "binary": _op_family(mlk_binary_ops, MLK_N_BINARY),
            "rowwise": _op_family(mlk_rowwise_ops, MLK_N_ROWWISE),
            "ploss": _op_family(mlk_ploss_ops, MLK_N_PLOSS),
            "optim": _op_family(mlk_optim_ops, MLK_N_OPTIM)}


include "_common.pxi"
include "_eltwise.pxi"
include "_rowwise.pxi"
include "_loss.pxi"
include "_optim.pxi"
include "_capi.pxi"
include "_layers.pxi"
include "_conv.pxi"
include "_pool.pxi"
include "_local.pxi"
include "_rnn.pxi"
