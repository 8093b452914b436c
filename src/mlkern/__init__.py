"""mlkern -- numerically stable machine-learning functions and their
derivatives, as typed Cython + OpenMP kernels for the CPU.

>>> import mlkern
>>> float(mlkern.softplus(-30.0))
9.357622968839737e-14
"""
__version__ = "0.1.0"

from . import _config
from ._config import get_num_threads, set_num_threads, threads

_config._init_dispatch()

from .activations import *  # noqa: E402,F401,F403
from .activations import __all__ as _act_all  # noqa: E402
from .rowwise import *  # noqa: E402,F401,F403
from .rowwise import __all__ as _row_all  # noqa: E402
from .losses import *  # noqa: E402,F401,F403
from .losses import __all__ as _loss_all  # noqa: E402
from . import calculus, optim  # noqa: E402,F401


def __getattr__(name):
    # mlkern.layers (and mlkern.nn, built on it) is imported on first use: it
    # imports scipy.linalg (its GEMM), which `import mlkern` alone should not pay for
    if name in ("layers", "nn"):
        import importlib

        return importlib.import_module("." + name, __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def show_config(file=None):
    """Print the version, compiler, OpenMP on/off, thread count and SIMD level in use.

    Parameters
    ----------
    file : file-like, optional
        Where to print (default ``sys.stdout``).

    Returns
    -------
    dict
        The same facts: ``version``, ``compiler``, ``openmp``, ``num_threads``,
        ``simd_level`` (chosen at run time), ``simd_levels_built``,
        ``cpu_supports`` and ``native_build``.

    Notes
    -----
    ``num_threads`` is :func:`get_num_threads` of the calling thread; a
    ``-march=native`` build (``MLKERN_NATIVE=1``) is flagged, as it runs
    only on CPUs like the build machine.

    Examples
    --------
    >>> import io, mlkern
    >>> buf = io.StringIO()
    >>> info = mlkern.show_config(file=buf)
    >>> buf.getvalue().startswith("mlkern " + mlkern.__version__), info["openmp"] in (True, False)
    (True, True)
    >>> sorted(info)[:4]
    ['compiler', 'cpu_supports', 'native_build', 'num_threads']
    """
    import sys

    from . import _kernels as _ew

    info = {
        "version": __version__,
        "compiler": _ew.compiler(),
        "openmp": _ew.openmp_enabled(),
        "num_threads": get_num_threads(),
        "simd_level": _ew.dispatch_level(),
        "simd_levels_built": ["baseline"] + (["x86-64-v3"] if _ew.have_v3_build() else [])
                             + (["x86-64-v4"] if _ew.have_v4_build() else []),
        "cpu_supports": [lv for lv, ok in (("x86-64-v3", _ew.cpu_has_v3()),
                                           ("x86-64-v4", _ew.cpu_has_v4())) if ok],
        "native_build": _ew.built_native(),
    }
    out = sys.stdout if file is None else file
    print(f"mlkern {info['version']}", file=out)
    print(f"  compiler:          {info['compiler']}", file=out)
    print(f"  OpenMP:            {'on' if info['openmp'] else 'off (serial build)'}", file=out)
    print(f"  threads:           {info['num_threads']}", file=out)
    print(f"  SIMD level in use: {info['simd_level']} (built: {', '.join(info['simd_levels_built'])};"
          f" CPU supports: {', '.join(['baseline'] + info['cpu_supports'])})", file=out)
    if info["native_build"]:
        print("  build:             -march=native (MLKERN_NATIVE=1): runs only on CPUs like the"
              " build machine", file=out)
    return info


def get_include():
    """The directory of mlkern's C headers (``mlk_math.h``, ``mlk_act.h``, ...).

    Cython users do not need it: ``from mlkern.cython_api cimport sigmoid``
    works with no include path (see ``mlkern/cython_api.pxd``).  It is for C
    code that wants the inline math itself (gcc or clang; compile with
    ``-O2 -fno-math-errno -fno-trapping-math``, never ``-ffast-math``).

    >>> import os, mlkern
    >>> os.path.isfile(os.path.join(mlkern.get_include(), "mlk_act.h"))
    True
    """
    import os

    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "_c")


__all__ = ["get_num_threads", "set_num_threads", "threads", "show_config", *_act_all, *_row_all, *_loss_all]
