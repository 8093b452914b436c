# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Elementwise kernels: the chunking, the prange, the GIL release.

The math lives in C (``_c/mlk_act_tmpl.h`` over ``_c/mlk_math.h``); the loops
over one contiguous chunk in ``_c/mlk_kernels_tmpl.h``, compiled once per
SIMD level and chosen at import (``_c/mlk_dispatch.c``).  This module owns
the split of an array into one chunk per thread, the size threshold below
which no OpenMP region is entered, and the fast path that lets a
C-contiguous float32/float64 array reach the kernel without any copy.
Everything else (dtype conversion, layouts, ``out=`` checks) is in
``_validation.py``, which calls back into ``unary_raw``/``binary_raw``.
"""
cimport numpy as cnp

cdef extern from "pythread.h":
    unsigned long PyThread_get_thread_ident() nogil   # pthread_self: safe without the GIL
import numpy as np
from cython.parallel cimport prange
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
    ctypedef void (*prelu_f32_fn)(const float *, float *, const float *, intptr_t, intptr_t, intptr_t) noexcept nogil
    ctypedef void (*prelu_f64_fn)(const double *, double *, const double *, intptr_t, intptr_t, intptr_t) noexcept nogil
    ctypedef void (*prelu_bwd_f32_fn)(const float *, const float *, const float *, float *, double *, intptr_t, intptr_t, intptr_t) noexcept nogil
    ctypedef void (*prelu_bwd_f64_fn)(const double *, const double *, const double *, double *, double *, intptr_t, intptr_t, intptr_t) noexcept nogil
    ctypedef void (*rowwise_f32_fn)(int, const float *, const float *, float *, intptr_t, intptr_t, intptr_t, intptr_t) noexcept nogil
    ctypedef void (*rowwise_f64_fn)(int, const double *, const double *, double *, intptr_t, intptr_t, intptr_t, intptr_t) noexcept nogil
    ctypedef void (*argmax_f32_fn)(const float *, int64_t *, intptr_t, intptr_t, intptr_t, intptr_t) noexcept nogil
    ctypedef void (*argmax_f64_fn)(const double *, int64_t *, intptr_t, intptr_t, intptr_t, intptr_t) noexcept nogil
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

ctypedef fused real:
    float
    double

# Work (elements x cost) below which a call runs on the calling thread with no
# OpenMP region at all.  Cost 1 is a simple op (relu, copy); exp/log count 4.
DEF WORK_THRESHOLD = 32768
# Each thread gets at least this many elements (multiple of 64 for alignment).
DEF MIN_CHUNK = 4096

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

cdef inline int _max_threads() noexcept nogil:
    """Team size limit for the calling thread: 1 in a forked child; the
    thread's own count if it set one; 1 in any thread other than the main
    one (no oversubscription inside an outer thread pool); else the
    process setting, capped by OpenMP's limit (threadpoolctl)."""
    cdef int omp = mlk_omp_max_threads()
    cdef int tl
    if _fork_serial:
        return 1
    tl = mlk_tl_threads_get()
    if tl > 0:
        return tl if tl < omp else omp
    if _main_ident != 0 and PyThread_get_thread_ident() != _main_ident:
        return 1
    if _user_threads > 0 and _user_threads < omp:
        return _user_threads
    return omp

def effective_threads():
    return _max_threads()

cdef inline int _threads_for(Py_ssize_t n, int cost) noexcept nogil:
    """Team size for n elements of the given cost: 1 (no OpenMP region) below
    the work threshold or when a thread would get less than MIN_CHUNK
    elements, else the whole team -- never a size in between, so the team
    does not churn from call to call (libgomp re-forms a team whose size
    changes)."""
    cdef int nt
    if n * cost < WORK_THRESHOLD:
        return 1
    nt = _max_threads()
    if nt <= 1 or n < <Py_ssize_t>nt * MIN_CHUNK:
        return 1
    return nt

# ------------------------------------------------------------------------
# chunked drivers
# ------------------------------------------------------------------------

cdef inline void _call_unary(int op, const real *x, real *y, Py_ssize_t n,
                             const mlk_params *p) noexcept nogil:
    if real is float:
        mlk_kt.unary_f32(op, x, y, n, p)
    else:
        mlk_kt.unary_f64(op, x, y, n, p)

cdef inline void _call_binary(int op, const real *g, const real *s, real *y,
                              Py_ssize_t n, const mlk_params *p) noexcept nogil:
    if real is float:
        mlk_kt.binary_f32(op, g, s, y, n, p)
    else:
        mlk_kt.binary_f64(op, g, s, y, n, p)

cdef int _run_unary(int op, const real *x, real *y, Py_ssize_t n,
                    mlk_params *p, int cost) noexcept nogil:
    cdef int nt = _threads_for(n, cost)
    cdef Py_ssize_t chunk, k, start, m
    cdef mlk_params *pp
    if nt <= 1:
        p.offset = 0
        _call_unary(op, x, y, n, p)
        return 0
    pp = <mlk_params *>malloc(nt * sizeof(mlk_params))
    if pp == NULL:
        return -1
    chunk = (((n + nt - 1) // nt) + 63) & ~(<Py_ssize_t>63)
    for k in range(nt):
        pp[k] = p[0]
        pp[k].offset = k * chunk
    for k in prange(nt, num_threads=nt, schedule='static'):
        start = k * chunk
        m = n - start
        if m > chunk:
            m = chunk
        if m > 0:
            _call_unary(op, x + start, y + start, m, &pp[k])
    free(pp)
    return 0

cdef void _run_binary(int op, const real *g, const real *s, real *y, Py_ssize_t n,
                      const mlk_params *p, int cost) noexcept nogil:
    cdef int nt = _threads_for(n, cost)
    cdef Py_ssize_t chunk, k, start, m
    if nt <= 1:
        _call_binary(op, g, s, y, n, p)
        return
    chunk = (((n + nt - 1) // nt) + 63) & ~(<Py_ssize_t>63)
    for k in prange(nt, num_threads=nt, schedule='static'):
        start = k * chunk
        m = n - start
        if m > chunk:
            m = chunk
        if m > 0:
            _call_binary(op, g + start, s + start, y + start, m, p)

# ------------------------------------------------------------------------
# entry points
# ------------------------------------------------------------------------

cdef inline bint _fast_ok(object a, int tn):
    """a is an aligned, native, C-contiguous ndarray of type number tn."""
    cdef cnp.ndarray arr
    if type(a) is not cnp.ndarray:
        return False
    arr = <cnp.ndarray>a
    return (cnp.PyArray_TYPE(arr) == tn and cnp.PyArray_IS_C_CONTIGUOUS(arr)
            and cnp.PyArray_ISALIGNED(arr) and not cnp.PyArray_ISBYTESWAPPED(arr))

cdef inline bint _same_shape(cnp.ndarray a, cnp.ndarray b):
    cdef int nd = cnp.PyArray_NDIM(a), i
    if cnp.PyArray_NDIM(b) != nd:
        return False
    for i in range(nd):
        if cnp.PyArray_DIM(a, i) != cnp.PyArray_DIM(b, i):
            return False
    return True

cdef inline bint _no_partial_overlap(cnp.ndarray a, cnp.ndarray o):
    """Both C-contiguous with equal size: identical buffers or disjoint ones."""
    cdef char *pa = <char *>cnp.PyArray_DATA(a)
    cdef char *po = <char *>cnp.PyArray_DATA(o)
    cdef Py_ssize_t nb = cnp.PyArray_NBYTES(a)
    return pa == po or po + nb <= pa or pa + nb <= po

cdef inline bint _out_ok(object out, cnp.ndarray like, int tn):
    cdef cnp.ndarray o
    if not _fast_ok(out, tn):
        return False
    o = <cnp.ndarray>out
    return cnp.PyArray_ISWRITEABLE(o) and _same_shape(o, like) and _no_partial_overlap(like, o)

cdef object _slow = None

cdef object _validation():
    global _slow
    if _slow is None:
        from mlkern import _validation as v
        _slow = v
    return _slow


def unary(int op, x, out=None, double a=0.0, double b=0.0, double c=0.0,
          int cost=4, uint64_t seed=0):
    """y = f_op(x).  C-contiguous float32/float64 input (and a matching out)
    goes straight to the kernel; anything else through _validation."""
    cdef cnp.ndarray xa, oa
    cdef int tn
    if type(x) is cnp.ndarray:
        tn = cnp.PyArray_TYPE(<cnp.ndarray>x)
        if (tn == cnp.NPY_DOUBLE or tn == cnp.NPY_FLOAT) and cnp.PyArray_NDIM(<cnp.ndarray>x) > 0 \
                and _fast_ok(x, tn):
            xa = <cnp.ndarray>x
            if out is None:
                oa = cnp.PyArray_EMPTY(cnp.PyArray_NDIM(xa), cnp.PyArray_DIMS(xa), tn, 0)
            elif _out_ok(out, xa, tn):
                oa = <cnp.ndarray>out
            else:
                return _validation().unary_slow(op, x, out, a, b, c, cost, seed)
            unary_raw(op, xa, oa, a, b, c, cost, seed)
            return oa
    return _validation().unary_slow(op, x, out, a, b, c, cost, seed)


def unary_raw(int op, cnp.ndarray xa, cnp.ndarray oa, double a=0.0, double b=0.0,
              double c=0.0, int cost=4, uint64_t seed=0):
    """Kernel call on two arrays whose memory is contiguous in the same order
    (same shape, same float dtype).  No checks beyond that: callers validate."""
    cdef mlk_params p
    cdef Py_ssize_t n = cnp.PyArray_SIZE(xa)
    cdef int tn = cnp.PyArray_TYPE(xa), rc = 0
    if op < 0 or op >= MLK_N_UNARY:
        raise ValueError("unknown elementwise op")
    p.a = a
    p.b = b
    p.c = c
    p.seed = seed
    p.offset = 0
    if tn == cnp.NPY_DOUBLE:
        with nogil:
            rc = _run_unary(op, <const double *>cnp.PyArray_DATA(xa),
                            <double *>cnp.PyArray_DATA(oa), n, &p, cost)
    elif tn == cnp.NPY_FLOAT:
        with nogil:
            rc = _run_unary(op, <const float *>cnp.PyArray_DATA(xa),
                            <float *>cnp.PyArray_DATA(oa), n, &p, cost)
    else:
        raise TypeError("internal: unary_raw needs float32 or float64")
    if rc != 0:
        raise MemoryError()
    return oa


def binary(int op, g, s, out=None, double a=0.0, double b=0.0, double c=0.0, int cost=4,
           str saved_name="saved"):
    """out = g * f_op'(s).  Fast path as for unary."""
    cdef cnp.ndarray ga, sa, oa
    cdef int tn
    if type(g) is cnp.ndarray and type(s) is cnp.ndarray:
        tn = cnp.PyArray_TYPE(<cnp.ndarray>g)
        if (tn == cnp.NPY_DOUBLE or tn == cnp.NPY_FLOAT) and cnp.PyArray_NDIM(<cnp.ndarray>g) > 0 \
                and _fast_ok(g, tn) and _fast_ok(s, tn) \
                and _same_shape(<cnp.ndarray>g, <cnp.ndarray>s):
            ga = <cnp.ndarray>g
            sa = <cnp.ndarray>s
            if out is None:
                oa = cnp.PyArray_EMPTY(cnp.PyArray_NDIM(ga), cnp.PyArray_DIMS(ga), tn, 0)
            elif _out_ok(out, ga, tn) and _no_partial_overlap(sa, <cnp.ndarray>out):
                oa = <cnp.ndarray>out
            else:
                return _validation().binary_slow(op, g, s, out, a, b, c, cost,
                                                 ("grad_output", saved_name))
            binary_raw(op, ga, sa, oa, a, b, c, cost)
            return oa
    return _validation().binary_slow(op, g, s, out, a, b, c, cost, ("grad_output", saved_name))


def binary_raw(int op, cnp.ndarray ga, cnp.ndarray sa, cnp.ndarray oa, double a=0.0,
               double b=0.0, double c=0.0, int cost=4):
    cdef mlk_params p
    cdef Py_ssize_t n = cnp.PyArray_SIZE(ga)
    cdef int tn = cnp.PyArray_TYPE(ga)
    if op < 0 or op >= MLK_N_BINARY:
        raise ValueError("unknown backward op")
    p.a = a
    p.b = b
    p.c = c
    p.seed = 0
    p.offset = 0
    if tn == cnp.NPY_DOUBLE:
        with nogil:
            _run_binary(op, <const double *>cnp.PyArray_DATA(ga), <const double *>cnp.PyArray_DATA(sa),
                        <double *>cnp.PyArray_DATA(oa), n, &p, cost)
    elif tn == cnp.NPY_FLOAT:
        with nogil:
            _run_binary(op, <const float *>cnp.PyArray_DATA(ga), <const float *>cnp.PyArray_DATA(sa),
                        <float *>cnp.PyArray_DATA(oa), n, &p, cost)
    else:
        raise TypeError("internal: binary_raw needs float32 or float64")
    return oa


cdef void _run_prelu(const real *x, real *y, const real *alpha, Py_ssize_t outer,
                     Py_ssize_t C, Py_ssize_t inner) noexcept nogil:
    cdef Py_ssize_t per = C * inner
    cdef int nt = _threads_for(outer * per, 1)
    cdef Py_ssize_t rows, k, o0, m
    if nt <= 1 or outer < nt:
        if real is float:
            mlk_kt.prelu_f32(x, y, alpha, outer, C, inner)
        else:
            mlk_kt.prelu_f64(x, y, alpha, outer, C, inner)
        return
    rows = (outer + nt - 1) // nt
    for k in prange(nt, num_threads=nt, schedule='static'):
        o0 = k * rows
        m = outer - o0
        if m > rows:
            m = rows
        if m > 0:
            if real is float:
                mlk_kt.prelu_f32(x + o0 * per, y + o0 * per, alpha, m, C, inner)
            else:
                mlk_kt.prelu_f64(x + o0 * per, y + o0 * per, alpha, m, C, inner)


def prelu_raw(cnp.ndarray xa, cnp.ndarray oa, cnp.ndarray alpha, Py_ssize_t outer,
              Py_ssize_t C, Py_ssize_t inner):
    """prelu on C-contiguous x viewed as (outer, C, inner); alpha C-contiguous (C,)."""
    cdef int tn = cnp.PyArray_TYPE(xa)
    if tn == cnp.NPY_DOUBLE:
        with nogil:
            _run_prelu(<const double *>cnp.PyArray_DATA(xa), <double *>cnp.PyArray_DATA(oa),
                       <const double *>cnp.PyArray_DATA(alpha), outer, C, inner)
    else:
        with nogil:
            _run_prelu(<const float *>cnp.PyArray_DATA(xa), <float *>cnp.PyArray_DATA(oa),
                       <const float *>cnp.PyArray_DATA(alpha), outer, C, inner)
    return oa


def prelu_bwd_raw(cnp.ndarray ga, cnp.ndarray xa, cnp.ndarray alpha, cnp.ndarray gx,
                  cnp.ndarray galpha, Py_ssize_t outer, Py_ssize_t C, Py_ssize_t inner):
    """grad_x into gx, grad_alpha accumulated into the float64 (C,) galpha.
    Serial: the per-channel sums are then independent of the thread count."""
    cdef int tn = cnp.PyArray_TYPE(xa)
    if tn == cnp.NPY_DOUBLE:
        with nogil:
            mlk_kt.prelu_bwd_f64(<const double *>cnp.PyArray_DATA(ga), <const double *>cnp.PyArray_DATA(xa),
                                 <const double *>cnp.PyArray_DATA(alpha), <double *>cnp.PyArray_DATA(gx),
                                 <double *>cnp.PyArray_DATA(galpha), outer, C, inner)
    else:
        with nogil:
            mlk_kt.prelu_bwd_f32(<const float *>cnp.PyArray_DATA(ga), <const float *>cnp.PyArray_DATA(xa),
                                 <const float *>cnp.PyArray_DATA(alpha), <float *>cnp.PyArray_DATA(gx),
                                 <double *>cnp.PyArray_DATA(galpha), outer, C, inner)
    return gx


include "_rowwise.pxi"
include "_loss.pxi"
include "_optim.pxi"
include "_capi.pxi"
include "_layers.pxi"
