"""The elementary functions of the C math layer (``_c/mlk_math.h``,
``_c/mlk_erf.h``) as array functions, for accuracy tests and the ULP table,
and the parallel copy kernel that serves as the benchmarks' memory-roof
meter (built and threaded exactly like the activation kernels).

Not public API: the names may change.
"""
from . import _kernels as _ew
from ._ops import UNARY
from ._validation import unary_slow

# {name: op code} of the math-layer functions, from the op table
OPS = {name: UNARY[name] for name in ("tanh", "exp", "expm1", "log", "log1p", "erf", "erfc",
                                      "ndtr", "npdf")}
_COPY = UNARY["copy"]
NAMES = tuple(OPS)


def evaluate(name, x, *, out=None):
    """Apply the math-layer function ``name`` elementwise (float32/float64)."""
    try:
        op = OPS[name]
    except KeyError:
        raise ValueError(f"name: unknown function {name!r}; one of {', '.join(NAMES)}") from None
    r = _ew.unary(op, x, out)
    return unary_slow(op, x, out) if r is None else r


def copy(x, *, out=None):
    """out[...] = x with the elementwise driver (chunked prange above the
    threshold): the roof meter for memory-bound kernels."""
    r = _ew.unary(_COPY, x, out)
    return unary_slow(_COPY, x, out) if r is None else r
