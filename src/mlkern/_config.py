"""Runtime configuration: the one place the thread count comes from.

The team size for a call is ``get_num_threads()``:

* by default OpenMP's own default for the calling thread -- the
  ``OMP_NUM_THREADS`` environment variable, else the number of CPUs;
* ``set_num_threads(n)`` / ``with threads(n):`` set it for mlkern (and as
  the calling thread's OpenMP default, so ``threadpoolctl`` can see it);
* ``threadpoolctl.threadpool_limits(k)`` lowers it while active (it sets
  the OpenMP limit that is read on every call).

Work below about 32k simple operations (exp/log counting 4) runs on the
calling thread without entering an OpenMP region, whatever the setting.
After ``os.fork()`` the child runs every call serially for the rest of its
life: libgomp's thread pool does not survive a fork, and a child that
entered a parallel region would hang in its barrier.  ``set_num_threads``
in a forked child is recorded (``get_num_threads`` still says 1) but does
not re-enable threads.  Worker processes that want parallel kernels use
the "spawn" or "forkserver" start method.

Threads other than the interpreter's main thread (an outer
``ThreadPoolExecutor``, a server's worker threads) run every mlkern call on
one thread, so that an outer pool of k threads does not start k teams of
OpenMP threads.  A thread that wants more says so for itself:
``set_num_threads(n)`` or ``with threads(n):`` called in that thread set
its own count (they set the process-wide count only when called in the main
thread).
"""
import contextlib
import operator
import os
import threading

from . import _elementwise as _ew


def get_num_threads():
    """Number of threads the next large mlkern call will use at most."""
    return _ew.effective_threads()


def set_num_threads(n):
    """Use ``n`` threads (``n >= 1``) in mlkern kernels, or follow OpenMP's
    default again with ``n=None``.  Returns the previous setting
    (``None`` when it was the default)."""
    main = threading.current_thread() is threading.main_thread()
    prev = (_ew.get_user_threads() if main else _ew.get_thread_threads()) or None
    if n is None:
        if main:
            _ew.set_user_threads(0)
        else:
            _ew.set_thread_threads(0)
        return prev
    try:
        k = operator.index(n)
    except TypeError:
        raise TypeError(f"n: expected an integer number of threads, got {type(n).__name__}") from None
    if k < 1:
        raise ValueError(f"n: the number of threads must be >= 1, got {k}")
    if k > 2**20:
        raise ValueError(f"n: the number of threads must be <= 2**20, got {k}")
    if main:
        _ew.set_user_threads(k)
    else:
        _ew.set_thread_threads(k)
    return prev


@contextlib.contextmanager
def threads(n):
    """Context manager: ``with mlkern.threads(1): ...`` runs mlkern with n
    threads (in the calling thread only, when that is not the main thread)."""
    omp_before = _ew.omp_max_threads()
    prev = set_num_threads(n)
    try:
        yield
    finally:
        if threading.current_thread() is not threading.main_thread():
            _restore_thread(prev, omp_before)
        else:
            _restore_main(prev, omp_before)


def _restore_thread(prev, omp_before):
    _ew.set_thread_threads(0)
    _ew.set_omp_threads(omp_before)       # this thread's OpenMP default as it was
    if prev is not None:
        _ew.set_thread_threads(prev)


def _restore_main(prev, omp_before):
    _ew.set_user_threads(0)
    if prev is not None:
        _ew.set_user_threads(prev)
    else:
        # restore this thread's OpenMP default as it was
        _ew.set_user_threads(omp_before)
        _ew.set_user_threads(0)


def _after_fork_in_child():
    _ew.set_fork_serial(1)


_ew.set_main_ident(threading.main_thread().ident)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _init_dispatch():
    level = os.environ.get("MLKERN_CPU", "").strip().lower()
    if level in ("", "best", "auto", "native"):
        level = ""
    return _ew.dispatch_init(level)


def simd_level():
    """The SIMD level of the kernels in use ("baseline", "x86-64-v3" or "x86-64-v4")."""
    return _ew.dispatch_level()
