"""Ways of computing a case (:class:`Impl`), the decorators that make them,
and the optional runtimes: PyTorch (imported once, lazily), SciPy, and
threadpoolctl for NumPy's OpenBLAS.
"""
import contextlib

import numpy as np

try:  # optional
    import scipy
    import scipy.special as sps
except ImportError:  # pragma: no cover - depends on the environment
    scipy = None
    sps = None

_torch = None          # set by import_torch()
TORCH_ERROR = None


def import_torch():
    """Import torch once; returns the module or None (the reason in :data:`TORCH_ERROR`)."""
    global _torch, TORCH_ERROR
    if _torch is None and TORCH_ERROR is None:
        try:
            import torch
            _torch = torch
        except Exception as e:  # ImportError, or a broken install
            TORCH_ERROR = f"{type(e).__name__}: {e}"
    return _torch


def torch():
    """The torch module (after :func:`import_torch` succeeded)."""
    return _torch


def aten():
    return import_torch().ops.aten


def set_torch_threads(t):
    """torch.set_num_threads(t) and check that it took (never via threadpoolctl)."""
    tm = import_torch()
    tm.set_num_threads(t)
    got = tm.get_num_threads()
    if got != t:
        raise RuntimeError(f"torch.get_num_threads() is {got} after set_num_threads({t})")


def to_torch(arrays):
    """Tensors sharing memory with the given NumPy arrays."""
    tm = import_torch()
    return tuple(tm.from_numpy(a) for a in arrays)


def as_numpy(res):
    """A result as a NumPy array (a torch tensor's memory), None as None;
    tuples elementwise."""
    if res is None or isinstance(res, np.ndarray):
        return res
    if isinstance(res, tuple):
        return tuple(as_numpy(r) for r in res)
    if hasattr(res, "detach"):        # a torch tensor
        return res.detach().numpy()
    return np.asarray(res)


def blas_threads(n):
    """Limit NumPy's OpenBLAS (np.dot, matmul) to ``n`` threads while
    timing, when threadpoolctl is importable.  OpenBLAS only, keyed by the
    loaded libraries' file paths (threadpoolctl matches limits by path,
    prefix or user_api, not by internal_api; a "blas" limit would also
    reach torch's MKL).  Unlimited, a 2-thread np.dot on a 2-vCPU VM
    stalled for ~8 ms a call while the other vCPU was busy."""
    try:
        from threadpoolctl import threadpool_info, threadpool_limits
    except ImportError:  # pragma: no cover - optional
        return contextlib.nullcontext()
    return threadpool_limits(limits={i["filepath"]: n for i in threadpool_info()
                                     if i["internal_api"] == "openblas"})


class Impl:
    """One way of computing a case.

    ``make(ins, out, *args)`` gets the inputs and the preallocated output
    (NumPy arrays, or tensors sharing their memory for torch; a tuple when
    the case has several outputs; ``args`` is the point's extra argument,
    e.g. the axis of a row-wise case) and returns a zero-argument callable
    that writes the result into ``out`` (or, ``allocates``, returns it).
    ``needs``: "scipy", or "mlkern:<name>" / "mlkern.<module>:<name>" for
    a function that may not be in this build.  ``ref``: the float64
    reference of what this impl computes, when that is not the case's
    (e.g. the bare GEMM beside a dense layer).
    """
    __slots__ = ("name", "runtime", "make", "needs", "allocates", "ref")

    def __init__(self, name, runtime, make, needs=None, allocates=False, ref=None):
        self.name, self.runtime, self.make = name, runtime, make
        self.needs, self.allocates, self.ref = needs, allocates, ref

    def available(self):
        if self.needs == "scipy":
            return sps is not None
        if self.needs and self.needs.startswith("mlkern"):
            return mlkern_function(self.needs) is not None
        if self.runtime == "torch":
            return import_torch() is not None
        return True

    @property
    def label(self):
        return self.name + (" [a]" if self.allocates else "")

    def __repr__(self):
        return f"Impl({self.name!r}, {self.runtime!r})"


def mlkern_function(spec):
    """"mlkern:sigmoid" or "mlkern.layers:dense" -> the function, or None
    when this build does not have it (a missing module is no error)."""
    import importlib
    mod, _, name = spec.partition(":")
    try:
        m = importlib.import_module(mod)
    except ImportError:
        return None
    return getattr(m, name, None)


def mlkern_impl(fname, module="mlkern", label=None, **kw):
    """mlkern.<fname>(*ins, out=out[, axis=axis], **kw): the ``make`` of the
    elementwise, row-wise and loss cases (the callable returns the result)."""
    spec = f"{module}:{fname}"

    def make(ins, out, *axis):
        f = mlkern_function(spec)
        if kw or len(ins) > 2:
            extra = dict(kw, axis=axis[0]) if axis else kw
            return lambda: f(*ins, out=out, **extra)
        if axis:
            ax = axis[0]
            if len(ins) == 1:
                x, = ins
                return lambda: f(x, axis=ax, out=out)
            a, b = ins
            return lambda: f(a, b, axis=ax, out=out)
        if len(ins) == 1:
            x, = ins
            return lambda: f(x, out=out)
        a, b = ins
        return lambda: f(a, b, out=out)
    return Impl(label or f"{module}.{fname}", "mlkern", make, needs=spec)


def numpy_peer(name, needs=None, allocates=False, ref=None):
    """Decorator: a NumPy/SciPy ``make`` as an :class:`Impl`."""
    def deco(make):
        return Impl(name, "numpy", make, needs=needs, allocates=allocates, ref=ref)
    return deco


def torch_peer(name, allocates=False, ref=None):
    """Decorator: a torch ``make`` (gets tensors) as an :class:`Impl`."""
    def deco(make):
        return Impl(name, "torch", make, allocates=allocates, ref=ref)
    return deco


def prepare(impl, ins, out, *args):
    """The timed callable of ``impl`` writing into ``out`` (a NumPy array, a
    tuple of them, or None)."""
    if impl.runtime == "torch":
        tin = to_torch(ins)
        if isinstance(out, tuple):
            tout = to_torch(out)
        else:
            tout = None if out is None else to_torch((out,))[0]
        return impl.make(tin, tout, *args)
    return impl.make(ins, out, *args)


def copy_kernel(x, out):
    """mlkern's parallel copy kernel (the memory-roof meter, built and
    threaded like the activation kernels): out[...] = x."""
    from .. import _math
    return _math.copy(x, out=out)


def math_layer():
    """(names, evaluate) of mlkern's C math layer (exp, expm1, log, log1p,
    tanh, erf, erfc, ndtr, npdf): ``evaluate(name, x)`` applies one
    elementwise, for accuracy tables."""
    from .. import _math
    return tuple(_math.OPS), _math.evaluate
