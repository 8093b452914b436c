# What every driver shares (included by the extension's .pyx before the
# drivers): the thread policy and the chunk split, the predicates of the
# fast paths, and the dtype switch of the raw entry points.

# ------------------------------------------------------------------------
# threads and chunks
# ------------------------------------------------------------------------

# Work (elements x cost) below which a call runs on the calling thread with no
# OpenMP region at all.  Cost 1 is a simple op (relu, copy); exp/log count 4
# (each op's cost is in the op table, mlk_kernels.h).
DEF WORK_THRESHOLD = 32768
# Each thread gets at least this many elements (multiple of 64 for alignment).
DEF MIN_CHUNK = 4096

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

cdef inline int _row_threads(Py_ssize_t units, Py_ssize_t total, int cost) noexcept nogil:
    """_threads_for(total, cost), or 1 when there are fewer units (rows,
    blocks) than threads."""
    cdef int nt = _threads_for(total, cost)
    if units < nt:
        return 1
    return nt

cdef inline Py_ssize_t _chunk_size(Py_ssize_t n, int nt) noexcept nogil:
    """Elements per thread when n are split over nt threads: a multiple of
    64 (the chunks start aligned)."""
    return (((n + nt - 1) // nt) + 63) & ~(<Py_ssize_t>63)

cdef inline Py_ssize_t _chunk_len(Py_ssize_t n, Py_ssize_t chunk, Py_ssize_t k) noexcept nogil:
    """Length of chunk k (starting at k * chunk) of n elements; 0 past the end."""
    cdef Py_ssize_t m = n - k * chunk
    if m > chunk:
        return chunk
    return m if m > 0 else 0

# ------------------------------------------------------------------------
# predicates of the fast paths (no Python object is created)
# ------------------------------------------------------------------------

cdef inline bint _fast_ok(object a, int tn):
    """a is an aligned, native, C-contiguous ndarray of type number tn."""
    cdef cnp.ndarray arr
    if type(a) is not cnp.ndarray:
        return False
    arr = <cnp.ndarray>a
    return (cnp.PyArray_TYPE(arr) == tn and cnp.PyArray_IS_C_CONTIGUOUS(arr)
            and cnp.PyArray_ISALIGNED(arr) and not cnp.PyArray_ISBYTESWAPPED(arr))

cdef inline int _float_tn(object x):
    """x's type number if it is a _fast_ok float32/float64 ndarray, else -1."""
    cdef int tn
    if type(x) is not cnp.ndarray:
        return -1
    tn = cnp.PyArray_TYPE(<cnp.ndarray>x)
    if (tn == cnp.NPY_DOUBLE or tn == cnp.NPY_FLOAT) and _fast_ok(x, tn):
        return tn
    return -1

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

cdef inline bint _disjoint(cnp.ndarray a, cnp.ndarray b):
    cdef char *pa = <char *>cnp.PyArray_DATA(a)
    cdef char *pb = <char *>cnp.PyArray_DATA(b)
    return pb + cnp.PyArray_NBYTES(b) <= pa or pa + cnp.PyArray_NBYTES(a) <= pb

cdef inline bint _out_ok(object out, cnp.ndarray like, int tn):
    """The rule "out= can be written directly" (the C side of
    _validation.writable_direct): a writeable _fast_ok array of like's
    shape that is like itself or apart from it."""
    cdef cnp.ndarray o
    if not _fast_ok(out, tn):
        return False
    o = <cnp.ndarray>out
    return cnp.PyArray_ISWRITEABLE(o) and _same_shape(o, like) and _no_partial_overlap(like, o)

# ------------------------------------------------------------------------
# the dtype switch of the raw entry points
# ------------------------------------------------------------------------

cdef inline int _is_f64(cnp.ndarray a, str entry) except -1:
    """1 for float64, 0 for float32; TypeError for anything else."""
    cdef int tn = cnp.PyArray_TYPE(a)
    if tn == cnp.NPY_DOUBLE:
        return 1
    if tn == cnp.NPY_FLOAT:
        return 0
    raise TypeError(f"internal: {entry} needs float32 or float64")
