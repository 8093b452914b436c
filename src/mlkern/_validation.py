"""Input normalisation for every mlkern function: the one place where
dtypes, layouts and ``out=`` are checked, before any kernel runs.

Conventions (SPEC.md, "Conventions for every function"):

* float32 stays float32, float64 stays float64; bool and integer input
  compute in float64; float16 computes in float32 and returns float16;
  complex raises ``TypeError`` (as do object, string and datetime arrays).
* A C-contiguous input is never copied (that case never reaches this module:
  the Cython fast path takes it).  An F-contiguous input is processed in its
  own memory order; any other layout is copied once.
* ``out=`` must have exactly the result's shape and dtype (``ValueError``
  for the shape, ``TypeError`` for the dtype, ``ValueError`` if read-only);
  it may be the input itself.  When it cannot be written directly (other
  layout, partial overlap with an input) the result is computed into a
  temporary and copied into ``out`` once.
"""
import numbers
import operator

import numpy as np

from . import _elementwise as _ew

_F16 = np.dtype(np.float16)
_F32 = np.dtype(np.float32)
_F64 = np.dtype(np.float64)


def compute_dtype(dt, name):
    """(dtype the kernel computes in, dtype of the result) for an input dtype."""
    if dt == _F32 or dt == _F64:
        return dt, dt
    kind = dt.kind
    if kind == "f":
        if dt.itemsize == 2:
            return _F32, _F16
        if dt.itemsize in (4, 8):          # non-native byte order
            d = _F32 if dt.itemsize == 4 else _F64
            return d, d
        raise TypeError(f"{name}: dtype {dt} is not supported (use float32 or float64)")
    if kind in "biu":
        return _F64, _F64
    if kind == "c":
        raise TypeError(f"{name}: complex input is not supported (dtype {dt})")
    raise TypeError(f"{name}: expected a real numeric array, got dtype {dt}")


def _as_layout(arr, cdt, order):
    """arr as an aligned, native cdt array contiguous in `order` ("C", "F", or
    "K" = C or F, whichever it already is), copying at most once."""
    if order == "K":
        order = "F" if (arr.flags.f_contiguous and not arr.flags.c_contiguous) else "C"
        contiguous = arr.flags.c_contiguous or arr.flags.f_contiguous
    else:
        contiguous = arr.flags.c_contiguous if order == "C" else arr.flags.f_contiguous
    if arr.dtype == cdt and arr.flags.aligned and contiguous:
        return arr
    return np.array(arr, dtype=cdt, order=order)


def as_float_array(x, name, order="K"):
    """np.asarray(x) converted to the kernel dtype, contiguous in C or F
    order (or in `order`), copied at most once.  Returns (array, result_dtype)."""
    arr = np.asarray(x)
    cdt, rdt = compute_dtype(arr.dtype, name)
    return _as_layout(arr, cdt, order), rdt


def flat(a):
    """1-D view of a C- or F-contiguous array, in memory order."""
    return a.reshape(-1, order="F" if (a.flags.f_contiguous and not a.flags.c_contiguous) else "C")


def check_out(out, shape, dtype, name="out"):
    """Validate a user-supplied out= array for a result of (shape, dtype)."""
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{name}: expected a numpy.ndarray of shape {tuple(shape)} and dtype "
                        f"{np.dtype(dtype)}, got {type(out).__name__}")
    if out.dtype != dtype:
        raise TypeError(f"{name}: expected dtype {np.dtype(dtype)} (shape {tuple(shape)}), "
                        f"got dtype {out.dtype}")
    if out.shape != tuple(shape):
        raise ValueError(f"{name}: expected shape {tuple(shape)} (dtype {np.dtype(dtype)}), "
                         f"got shape {out.shape}")
    if not out.flags.writeable:
        raise ValueError(f"{name}: array is read-only")
    return out


def _same_order(a, b):
    if a.flags.c_contiguous and b.flags.c_contiguous:
        return True
    return a.flags.f_contiguous and b.flags.f_contiguous


def _writable_direct(out, *inputs):
    """out can receive the kernel's result directly: native, aligned, same
    memory order as the inputs, and each input is out itself or disjoint."""
    if not out.flags.aligned or not out.dtype.isnative:
        return False
    for a in inputs:
        if not _same_order(a, out):
            return False
        if a.ctypes.data == out.ctypes.data and a.strides == out.strides:
            continue
        if np.may_share_memory(a, out):
            return False
    return True


def result_array(arr, out, rdt, *others):
    """Where the kernel writes: out itself when it can take the result
    directly (see _writable_direct), else a new array laid out like arr."""
    if out is not None and rdt == arr.dtype and _writable_direct(out, arr, *others):
        return out
    return np.empty_like(arr, order="K")


def finish(res, out, rdt, scalar):
    """Cast/copy the kernel result into its final form."""
    if out is not None:
        if res is not out:
            np.copyto(out, res, casting="unsafe")
        return out
    if res.dtype != rdt:
        res = res.astype(rdt)
    if scalar:
        return res[()]
    return res


_NOISY_RELU = 20   # op code (mlk_kernels.h): its noise is keyed by the C-order index


def unary_slow(op, x, out, a, b, c, cost, seed):
    # noisy_relu's noise is keyed by the C-order index: same output for any layout
    arr, rdt = as_float_array(x, "x", order="C" if op == _NOISY_RELU else "K")
    scalar = arr.ndim == 0
    if out is not None:
        check_out(out, arr.shape, rdt)
    res = result_array(arr, out, rdt)
    if arr.size:
        _ew.unary_raw(op, flat(arr), flat(res), a, b, c, cost, seed)
    return finish(res, out, rdt, scalar)


def as_float_pair(g, s, names, fname=None):
    """Two same-shape inputs as float arrays of one compute dtype and one
    memory order (F only if both are F), each copied at most once.
    Returns (g, s, result dtype, order)."""
    ga = np.asarray(g)
    sa = np.asarray(s)
    gdt, grdt = compute_dtype(ga.dtype, names[0])
    sdt, srdt = compute_dtype(sa.dtype, names[1])
    if ga.shape != sa.shape:
        pre = f"{fname}: " if fname else ""
        raise ValueError(f"{pre}{names[0]} and {names[1]} must have the same shape, got "
                         f"{ga.shape} and {sa.shape}")
    cdt = np.promote_types(gdt, sdt)
    rdt = np.promote_types(grdt, srdt)
    if rdt == _F16:
        cdt = _F32
    both_f = ga.flags.f_contiguous and sa.flags.f_contiguous
    both_c = ga.flags.c_contiguous and sa.flags.c_contiguous
    order = "F" if both_f and not both_c else "C"
    return _as_layout(ga, cdt, order), _as_layout(sa, cdt, order), rdt, order


def binary_slow(op, g, s, out, a, b, c, cost, names=("grad_output", "saved")):
    ga, sa, rdt, _ = as_float_pair(g, s, names)
    scalar = ga.ndim == 0
    if out is not None:
        check_out(out, ga.shape, rdt)
    res = result_array(ga, out, rdt, sa)
    if ga.size:
        _ew.binary_raw(op, flat(ga), flat(sa), flat(res), a, b, c, cost)
    return finish(res, out, rdt, scalar)


def check_real(value, name, *, positive=False, nonnegative=False):
    """A real scalar parameter (int, float, NumPy real scalar or 0-d real
    array) as a Python float; NaN is refused."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Real, np.integer, np.floating)):
        raise TypeError(f"{name}: expected a real number, got {type(value).__name__}")
    v = float(value)
    if v != v:
        raise ValueError(f"{name}: must not be NaN")
    if positive and not v > 0:
        raise ValueError(f"{name}: must be > 0, got {value!r}")
    if nonnegative and not v >= 0:
        raise ValueError(f"{name}: must be >= 0, got {value!r}")
    return v


# ---------------------------------------------------------------- layers (mlkern.layers)
def layer_dtype(named):
    """(compute dtype, result dtype) of a layer's float arrays.

    named: (name, ndarray or None) pairs.  The float arrays must share one
    dtype: float32 with float64 (or float16) is a TypeError naming both
    arguments (a layer never promotes silently).  Integer and bool arrays
    take the float dtype of the others, float64 if none is float; float16
    computes in float32 and returns float16; complex and non-numeric arrays
    are refused by compute_dtype."""
    first = None
    same = []
    for name, a in named:
        if a is None:
            continue
        compute_dtype(a.dtype, name)            # complex / object / ... -> TypeError
        if a.dtype.kind == "f":
            dt = a.dtype.newbyteorder("=")
            if first is None:
                first = (name, dt)
            elif dt != first[1]:
                raise TypeError(f"{' and '.join(same)} ({first[1]}) and {name} ({dt}): mixed float "
                                f"dtypes (a layer does not promote; convert one with .astype)")
            same.append(name)
    if first is None:
        return _F64, _F64
    return compute_dtype(first[1], first[0])


def layer_array(a, cdt):
    """a as an aligned, native, C-contiguous cdt array (copied at most once)."""
    if a.dtype == cdt and a.flags.c_contiguous and a.flags.aligned:
        return a
    return np.ascontiguousarray(a, dtype=cdt)


def layer_out(out, shape, rdt, cdt, *inputs):
    """Check out= for a layer result; returns out if the kernel can write it
    directly (C-contiguous, aligned, native, the compute dtype, apart from
    every input), else None (compute into a temporary, then copy)."""
    check_out(out, shape, rdt)
    if rdt != cdt or not (out.flags.c_contiguous and out.flags.aligned and out.dtype.isnative):
        return None
    for a in inputs:
        if a is not None and np.may_share_memory(a, out):
            return None
    return out


def check_indices(indices, name="indices"):
    """An integer array of indices (any integer dtype) as C-contiguous int64;
    bool, float and other dtypes are a TypeError."""
    arr = np.asarray(indices)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{name}: expected an integer array, got dtype {arr.dtype}")
    if arr.dtype.kind == "u" and arr.dtype.itemsize == 8 and arr.size and arr.max() > np.iinfo(np.int64).max:
        raise ValueError(f"{name}: index {int(arr.max())} is out of range")
    return np.asarray(arr, dtype=np.int64, order="C")


def check_index_range(idx, n, name="indices", what="num_embeddings"):
    """Every index of the C-contiguous int64 idx in [0, n), else a ValueError
    naming the argument and the first bad value."""
    bad = _ew.emb_check(idx, n)
    if bad >= 0:
        v = int(idx.reshape(-1)[bad])
        raise ValueError(f"{name}: index {v} is out of range for {what}={n} "
                         f"(valid: 0 <= index < {n})")


def check_padding_idx(padding_idx, n):
    """padding_idx (None or an int in [-n, n)) as a row number in [0, n) or -1."""
    if padding_idx is None:
        return -1
    if isinstance(padding_idx, (bool, np.bool_)):
        raise TypeError("padding_idx: expected an int or None, got bool")
    try:
        p = operator.index(padding_idx)
    except TypeError:
        raise TypeError(f"padding_idx: expected an int or None, got "
                        f"{type(padding_idx).__name__}") from None
    if not -n <= p < n:
        raise ValueError(f"padding_idx: {p} is out of range for num_embeddings={n} "
                         f"(valid: {-n} <= padding_idx < {n})")
    return p + n if p < 0 else p


def check_count(value, name):
    """A non-negative int (operator.index), e.g. num_embeddings."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected an int, got bool")
    try:
        v = operator.index(value)
    except TypeError:
        raise TypeError(f"{name}: expected an int, got {type(value).__name__}") from None
    if v < 0:
        raise ValueError(f"{name}: must be >= 0, got {v}")
    return v
