"""The elementary functions of the C math layer (``_c/mlk_math.h``,
``_c/mlk_erf.h``) as array functions, for accuracy tests and the ULP table,
and the parallel copy kernel that serves as the benchmarks' memory-roof
meter (built and threaded exactly like the activation kernels).

Not public API: the names may change.
"""
from . import _elementwise as _ew

# op codes: must match the enum in _c/mlk_kernels.h
OPS = {"tanh": 2, "exp": 21, "expm1": 22, "log": 23, "log1p": 24,
       "erf": 25, "erfc": 26, "ndtr": 27, "npdf": 28}
_COPY = 29
NAMES = tuple(OPS)


def evaluate(name, x, *, out=None):
    """Apply the math-layer function ``name`` elementwise (float32/float64)."""
    try:
        op = OPS[name]
    except KeyError:
        raise ValueError(f"name: unknown function {name!r}; one of {', '.join(NAMES)}") from None
    return _ew.unary(op, x, out, 0.0, 0.0, 0.0, 4)


def copy(x, *, out=None):
    """out[...] = x with the elementwise driver (chunked prange above the
    threshold): the roof meter for memory-bound kernels."""
    return _ew.unary(_COPY, x, out, 0.0, 0.0, 0.0, 1)
