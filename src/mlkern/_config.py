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
from __future__ import annotations

import contextlib
import operator
import os
import threading
from collections.abc import Iterator
from typing import SupportsIndex

from . import _kernels as _ew


def get_num_threads() -> int:
    """Number of threads the next large mlkern call will use at most.

    Returns
    -------
    int
        The team size for the calling thread, >= 1.

    Notes
    -----
    By default OpenMP's default (``OMP_NUM_THREADS``, else the CPU count) in
    the main thread and 1 in other threads; what :func:`set_num_threads` or
    :func:`threads` set; lowered by an active
    ``threadpoolctl.threadpool_limits``; 1 in a child of ``os.fork()``.
    Work below about 32k simple operations runs on the calling thread
    whatever this says.

    Examples
    --------
    >>> import mlkern
    >>> with mlkern.threads(1):
    ...     mlkern.get_num_threads()
    1
    """
    return _ew.effective_threads()


def set_num_threads(n: SupportsIndex | None) -> int | None:
    """Use ``n`` threads in mlkern kernels, or follow OpenMP's default again with ``n=None``.

    Parameters
    ----------
    n : int or None
        The number of threads, 1 <= n <= 2**20; ``None`` goes back to the
        default.

    Returns
    -------
    int or None
        The previous setting (``None`` when it was the default).

    Notes
    -----
    Called in the main thread it sets the process-wide count (and the main
    thread's OpenMP default, which ``threadpoolctl`` sees); called in any
    other thread it sets that thread's own count only.  In a forked child
    the setting is recorded but calls stay serial.  A non-integer ``n``
    raises ``TypeError``, one out of range ``ValueError``.

    Examples
    --------
    >>> import mlkern
    >>> prev = mlkern.set_num_threads(3)
    >>> mlkern.get_num_threads()
    3
    >>> mlkern.set_num_threads(prev)
    3
    """
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
def threads(n: SupportsIndex | None) -> Iterator[None]:
    """Context manager: ``with mlkern.threads(n): ...`` runs mlkern with n threads.

    Parameters
    ----------
    n : int or None
        As :func:`set_num_threads`.

    Returns
    -------
    context manager
        Sets the count on entry and restores the previous setting (and the
        calling thread's OpenMP default) on exit, also on an exception.

    Notes
    -----
    In the main thread it sets the process-wide count for the block; in
    any other thread, that thread's own count only.

    Examples
    --------
    >>> import mlkern
    >>> with mlkern.threads(1):
    ...     mlkern.get_num_threads()
    1
    """
    omp_before = _ew.omp_max_threads()
    prev = set_num_threads(n)
    try:
        yield
    finally:
        if threading.current_thread() is not threading.main_thread():
            _restore_thread(prev, omp_before)
        else:
            _restore_main(prev, omp_before)


def _restore_thread(prev: int | None, omp_before: int) -> None:
    _ew.set_thread_threads(0)
    _ew.set_omp_threads(omp_before)       # this thread's OpenMP default as it was
    if prev is not None:
        _ew.set_thread_threads(prev)


def _restore_main(prev: int | None, omp_before: int) -> None:
    _ew.set_user_threads(0)
    if prev is not None:
        _ew.set_user_threads(prev)
    else:
        # restore this thread's OpenMP default as it was
        _ew.set_user_threads(omp_before)
        _ew.set_user_threads(0)


def _after_fork_in_child() -> None:
    _ew.set_fork_serial(1)


_ew.set_main_ident(threading.main_thread().ident)  # type: ignore[arg-type]  # started: an int


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _init_dispatch() -> str:
    level = os.environ.get("MLKERN_CPU", "").strip().lower()
    if level in ("", "best", "auto", "native"):
        level = ""
    return _ew.dispatch_init(level)


def simd_level() -> str:
    """The SIMD level of the kernels in use ("baseline", "x86-64-v3" or "x86-64-v4").

    Returns
    -------
    str
        The level chosen at import: the best the CPU supports among the
        levels built, or the one ``MLKERN_CPU`` asks for.

    Examples
    --------
    >>> from mlkern import _config
    >>> _config.simd_level() in ("baseline", "x86-64-v3", "x86-64-v4")
    True
    """
    return _ew.dispatch_level()
