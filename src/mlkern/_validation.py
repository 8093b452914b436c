"""Input normalisation for every mlkern function: the one place where
dtypes, layouts and ``out=`` are checked, before any kernel runs.

Conventions (docs/contract.rst, "Conventions for every function"):

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
import math
import numbers
import operator

import numpy as np

from . import _kernels as _ew
from ._ops import UNARY

_F16 = np.dtype(np.float16)
_F32 = np.dtype(np.float32)
_F64 = np.dtype(np.float64)


def any_dask(*args):
    """True if an argument is a dask array (then mlkern._dask takes the call).
    Only the type's module is looked at: dask is never imported here, and
    the NumPy fast paths never reach this check."""
    for a in args:
        if type(a).__module__.startswith("dask.array"):
            return True
    return False


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


def writable_direct(out, *inputs):
    """The rule "out= can be written directly" (the C side: _out_ok in
    _common.pxi): out is native, aligned, in the inputs' memory order, and
    each input is out itself or shares no memory with it."""
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


_writable_direct = writable_direct


def result_array(arr, out, rdt, *others):
    """Where the kernel writes: out itself when it can take the result
    directly (see _writable_direct), else a new array laid out like arr."""
    if out is not None and rdt == arr.dtype and writable_direct(out, arr, *others):
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


_NOISY_RELU = UNARY["noisy_relu"]   # its noise is keyed by the C-order index


def unary_slow(op, x, out, a=0.0, b=0.0, c=0.0, seed=0):
    """The general path of a unary op (after its fast entry returned None):
    any array_like, any layout, out= of any layout; then the raw kernel."""
    if any_dask(x):
        from . import _dask
        return _dask.unary(op, x, out, a, b, c, seed)
    # noisy_relu's noise is keyed by the C-order index: same output for any layout
    arr, rdt = as_float_array(x, "x", order="C" if op == _NOISY_RELU else "K")
    scalar = arr.ndim == 0
    if out is not None:
        check_out(out, arr.shape, rdt)
    res = result_array(arr, out, rdt)
    if arr.size:
        _ew.unary_raw(op, flat(arr), flat(res), a, b, c, seed)
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


def binary_slow(op, g, s, out, a=0.0, b=0.0, c=0.0, saved="saved"):
    """The general path of a backward op (after its fast entry returned
    None); `saved` names s in the messages."""
    if any_dask(g, s):
        from . import _dask
        return _dask.binary(op, g, s, out, a, b, c, saved)
    ga, sa, rdt, _ = as_float_pair(g, s, ("grad_output", saved))
    scalar = ga.ndim == 0
    if out is not None:
        check_out(out, ga.shape, rdt)
    res = result_array(ga, out, rdt, sa)
    if ga.size:
        _ew.binary_raw(op, flat(ga), flat(sa), flat(res), a, b, c)
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


def check_axis(axis, ndim, fname):
    """axis as a non-negative int < ndim; ValueError for a 0-d input or an
    axis out of range, TypeError for a non-integer axis."""
    if ndim == 0:
        raise ValueError(f"{fname}: a 0-d input has no axis to reduce")
    try:
        a = operator.index(axis)
    except TypeError:
        raise TypeError(f"{fname}: axis must be an integer, got {type(axis).__name__}") from None
    if not -ndim <= a < ndim:
        raise ValueError(f"{fname}: axis {axis} is out of range for an array of "
                         f"dimension {ndim}")
    return a % ndim


def real_array(value, name, fname):
    """np.asarray(value); TypeError unless its dtype is real (bool, int, float)."""
    arr = np.asarray(value)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{fname}: {name} must be real, got dtype {arr.dtype}")
    return arr


# ---------------------------------------------------------------------------
# losses: reductions, labels, weights, pairs of inputs
# ---------------------------------------------------------------------------

_REDUCTIONS = ("mean", "sum", "none")


def check_reduction(reduction, fname):
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{fname}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def check_ignore_index(ignore_index, fname):
    v = operator.index(ignore_index)
    if not -2**63 <= v < 2**63:
        raise ValueError(f"{fname}: ignore_index must fit in int64, got {v}")
    return v


def class_labels(target, shape, n, ignore_index, fname):
    lab = np.asarray(target)
    if lab.dtype.kind not in "iu":
        raise TypeError(f"{fname}: integer class labels expected for target, got dtype {lab.dtype}")
    if lab.shape != shape:
        raise ValueError(f"{fname}: target must have the logits' shape without the class axis, "
                         f"{shape}, got {lab.shape}")
    if lab.dtype.kind == "u" and lab.size and lab.max() > np.iinfo(np.int64).max:
        bad = int(np.flatnonzero(lab > np.iinfo(np.int64).max)[0])
        raise ValueError(f"{fname}: target label {lab.flat[bad]} at index "
                         f"{np.unravel_index(bad, shape)} is outside [0, {n})")
    lab = np.require(lab, np.int64, ["C", "A"])      # aligned too: the kernel reads it
    bad_mask = ((lab < 0) | (lab >= n)) & (lab != ignore_index)
    if bad_mask.any():
        bad = int(np.flatnonzero(bad_mask)[0])
        raise ValueError(f"{fname}: target label {lab.flat[bad]} at index "
                         f"{np.unravel_index(bad, shape)} is outside [0, {n}) and is not "
                         f"ignore_index ({ignore_index})")
    return lab


def class_weights(weight, n, dtype, fname):
    if weight is None:
        return None
    w = real_array(weight, "weight", fname)
    if w.shape != (n,):
        raise ValueError(f"{fname}: weight must have shape ({n},) (one per class), got {w.shape}")
    return np.require(w, dtype, ["C", "A"])           # aligned too: the kernel reads it


def sample_weights(sample_weight, shape, fname):
    if sample_weight is None:
        return None
    sw = real_array(sample_weight, "sample_weight", fname)
    if sw.shape != shape:
        raise ValueError(f"{fname}: sample_weight must have the target's shape {shape}, got {sw.shape}")
    return sw.astype(np.float64).reshape(-1)


def loss_pair(pred, target, names, fname, order):
    """pred and target as arrays of pred's compute dtype, one memory order
    ("C", or "K": F when both are F), each copied at most once."""
    p = np.asarray(pred)
    t = np.asarray(target)
    cdt, rdt = compute_dtype(p.dtype, names[0])
    compute_dtype(t.dtype, names[1])                    # TypeError for complex, object...
    if p.shape != t.shape:
        raise ValueError(f"{fname}: {names[0]} and {names[1]} must have the same shape, got "
                         f"{p.shape} and {t.shape}")
    if order == "K":
        both_f = (p.flags.f_contiguous and t.flags.f_contiguous
                  and not (p.flags.c_contiguous and t.flags.c_contiguous))
        order = "F" if both_f else "C"
    return _as_layout(p, cdt, order), _as_layout(t, cdt, order), rdt


def row_weights(sample_weight, shape, fname):
    """sample_weight as float64 (shape[0],): one weight per index of the
    leading axis, broadcast over the rest."""
    sw = real_array(sample_weight, "sample_weight", fname)
    if len(shape) == 0:
        raise ValueError(f"{fname}: sample_weight needs an input with a leading axis (got a 0-d input)")
    if sw.shape != (shape[0],):
        raise ValueError(f"{fname}: sample_weight must have shape ({shape[0]},) (one weight per "
                         f"index of the leading axis), got {sw.shape}")
    return np.require(sw, np.float64, ["C", "A"])     # aligned too: the kernel reads it


def pos_weights(pos_weight, shape, cdt, rows, fname):
    """(scalar, array, P, prs): pos_weight as a scalar, or as an array read
    with period P along the kernel's rows (row stride prs); rows: the
    kernel runs over rows of prod(shape[1:]) (sample weights), else over
    the whole array as one row."""
    pw = real_array(pos_weight, "pos_weight", fname)
    try:
        ok = np.broadcast_shapes(pw.shape, shape) == tuple(shape)
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"{fname}: pos_weight of shape {pw.shape} does not broadcast to the "
                         f"logits' shape {tuple(shape)}")
    if pw.size == 1:
        return float(pw.reshape(())), None, 1, 0
    full = (1,) * (len(shape) - pw.ndim) + pw.shape
    j = next(i for i, d in enumerate(full) if d != 1)
    if full[j:] == tuple(shape[j:]) and (j >= 1 or not rows):
        # varies over trailing axes only: one period of prod(shape[j:])
        return 1.0, np.require(pw.reshape(shape[j:]), cdt, ["C", "A"]).reshape(-1), \
            int(np.prod(shape[j:], dtype=np.int64)), 0
    # anything else, with sample weights: the whole array, row by row
    arr = np.require(np.broadcast_to(pw, shape), cdt, ["C", "A"]).reshape(-1)
    if rows:
        K = int(np.prod(shape[1:], dtype=np.int64))
        return 1.0, arr, K, K
    return 1.0, arr, arr.size, 0


def check_delta(delta, fname):
    d = check_real(delta, "delta")
    if not d > 0:
        raise ValueError(f"{fname}: delta must be > 0, got {delta!r}")
    return d


def check_probs(prob, fname):
    """prob must lie in [0, 1] (NaN passes, as NaN in -> NaN out)."""
    if any_dask(prob):              # checked chunk by chunk, when computed
        return prob.map_blocks(check_probs, fname, dtype=prob.dtype, meta=prob._meta)
    p = np.asarray(prob)
    # scan each distinct element once: a broadcast (stride-0) axis is read at index 0
    q = p[tuple(slice(0, 1) if st == 0 else slice(None) for st in p.strides)] if p.ndim else p
    if q.size and q.dtype.kind == "f":
        lo = np.fmin.reduce(q, axis=None)       # ignores NaN
        hi = np.fmax.reduce(q, axis=None)
        if lo < 0 or hi > 1:
            bad = lo if lo < 0 else hi
            raise ValueError(f"{fname}: prob must be in [0, 1], found {bad}")
    elif q.size and q.dtype.kind in "iu":
        if q.min() < 0 or q.max() > 1:
            raise ValueError(f"{fname}: prob must be in [0, 1], found {q.min() if q.min() < 0 else q.max()}")
    return p


# ---------------------------------------------------------------------------
# optimisers: parameters updated in place, their state, hyper-parameters
# ---------------------------------------------------------------------------

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _updated_array(arr, name, fname):
    if not isinstance(arr, np.ndarray):
        raise TypeError(f"{fname}: {name} must be a numpy.ndarray (updated in place), "
                        f"got {type(arr).__name__}")


def _updated_layout(arr, name, fname, why):
    if not arr.flags.c_contiguous or not arr.flags.aligned:
        raise ValueError(f"{fname}: {name} must be C-contiguous and aligned ({why})")
    if not arr.flags.writeable:
        raise ValueError(f"{fname}: {name} is read-only")


def check_param(param, fname):
    """An optimiser's parameter: a writeable, aligned, C-contiguous native
    float32/float64 ndarray (updated in place: never copied)."""
    _updated_array(param, "param", fname)
    if param.dtype not in _FLOATS or not param.dtype.isnative:
        raise TypeError(f"{fname}: param must be float32 or float64 (native byte order), "
                        f"got dtype {param.dtype}")
    _updated_layout(param, "param", fname, "it is updated in place; a copy would lose the update")
    return param


def check_state(arr, name, param, fname):
    """An optimiser's state array: as param, of param's dtype and shape."""
    _updated_array(arr, name, fname)
    if arr.dtype != param.dtype:
        raise TypeError(f"{fname}: {name} must have param's dtype {param.dtype}, got {arr.dtype}")
    if arr.shape != param.shape:
        raise ValueError(f"{fname}: {name} must have param's shape {param.shape}, got {arr.shape}")
    _updated_layout(arr, name, fname, "it is updated in place")
    return arr


def grad_array(grad, param, fname, states=()):
    """grad as a C-contiguous array of param's dtype: as is when it is param
    itself or shares no memory with param and the states, else one copy."""
    g = np.asarray(grad)
    if g.dtype != param.dtype:
        if g.dtype.kind == "c" or g.dtype.kind not in "biuf":
            raise TypeError(f"{fname}: grad must be real, got dtype {g.dtype}")
        raise TypeError(f"{fname}: grad must have param's dtype {param.dtype}, got {g.dtype}")
    if g.shape != param.shape:
        raise ValueError(f"{fname}: grad must have param's shape {param.shape}, got {g.shape}")
    if g.flags.c_contiguous and g.flags.aligned and g.dtype.isnative:
        same = g.ctypes.data == param.ctypes.data
        if ((same or not np.may_share_memory(g, param))
                and not any(np.may_share_memory(g, s) for s in states)):
            return g
    return np.array(g, dtype=param.dtype, order="C")        # one copy


def check_distinct(arrays, names, fname):
    for i in range(len(arrays)):
        for j in range(i + 1, len(arrays)):
            if arrays[i].size and np.may_share_memory(arrays[i], arrays[j]):
                raise ValueError(f"{fname}: {names[i]} and {names[j]} must not share memory")


def check_lr(lr, fname):
    v = check_real(lr, "lr", nonnegative=True)
    if math.isinf(v):
        raise ValueError(f"{fname}: lr must be finite, got {lr!r}")
    return v


def check_unit(x, name, fname, closed=False):
    v = check_real(x, name)
    if not (0.0 <= v <= 1.0 if closed else 0.0 <= v < 1.0):
        raise ValueError(f"{fname}: {name} must be in [0, 1{']' if closed else ')'}, got {x!r}")
    return v


def check_nonneg(x, name, fname):
    v = check_real(x, name, nonnegative=True)
    if math.isinf(v):
        raise ValueError(f"{fname}: {name} must be finite, got {x!r}")
    return v


def step_checks(param, grad, states, names, fname, gname=None):
    """Every check of one optimiser step (when the fast C check,
    optim_fast_ok, did not pass): param and the state arrays (named by
    names) as they must be, all apart; grad as a C-contiguous array of
    param's dtype, copied once if it must be.  Returns (param, grad)."""
    for arr, name in zip((param, grad, *states), ("param", "grad", *names)):
        if any_dask(arr):
            raise TypeError(f"{fname}: {name} is a dask array; the optimisers update NumPy arrays "
                            "in place and take NumPy arrays only (for a dask gradient: "
                            "grad.compute() first)")
    p = check_param(param, fname)
    sts = [check_state(s, n, p, fname) for s, n in zip(states, names)]
    check_distinct([p] + sts, ["param"] + list(names), fname)
    return p, grad_array(grad, p, gname or fname, sts)
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
    r = np.ascontiguousarray(a, dtype=cdt)
    if not r.flags.aligned:         # ascontiguousarray returns a contiguous misaligned array as it is
        r = r.copy()
    return r


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
    idx = np.asarray(arr, dtype=np.int64, order="C")
    return idx if idx.flags.aligned else idx.copy()     # (asarray keeps a misaligned buffer)


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


def _int_at_least(value, name, minimum):
    """An int (operator.index, not a bool) >= minimum."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected an int, got bool")
    try:
        v = operator.index(value)
    except TypeError:
        raise TypeError(f"{name}: expected an int, got {type(value).__name__}") from None
    if v < minimum:
        raise ValueError(f"{name}: must be >= {minimum}, got {v}")
    return v


def check_count(value, name):
    """A non-negative int (operator.index), e.g. num_embeddings."""
    return _int_at_least(value, name, 0)


# ---------------------------------------------------------------- convolutions
_CONV_LAYOUTS = {1: ("NCL", "NLC"), 2: ("NCHW", "NHWC")}


def check_layout(layout, nd, fname=None):
    """True for channels last ("NLC"/"NHWC"), False for "NCL"/"NCHW"."""
    first, last = _CONV_LAYOUTS[nd]
    if not isinstance(layout, str) or layout not in (first, last):
        pre = f"{fname}: " if fname else ""
        raise ValueError(f"{pre}layout: expected {first!r} or {last!r}, got {layout!r}")
    return layout == last


def check_spatial(value, nd, name, fname, minimum):
    """An int or a tuple/list of nd ints, each >= minimum, as a tuple."""
    pre = f"{fname}: {name}" if fname else name
    if isinstance(value, (tuple, list)):
        if len(value) != nd:
            raise ValueError(f"{pre}: expected an int or {nd} ints, got {value!r}")
        vals = value
    else:
        vals = (value,) * nd
    res = []
    for v in vals:
        if isinstance(v, (bool, np.bool_)):
            raise TypeError(f"{pre}: expected an int or a tuple of {nd} ints, got bool")
        try:
            i = operator.index(v)
        except TypeError:
            raise TypeError(f"{pre}: expected an int or a tuple of {nd} ints, "
                            f"got {type(v).__name__}") from None
        if i < minimum:
            raise ValueError(f"{pre}: must be >= {minimum}, got {value!r}")
        res.append(i)
    return tuple(res)


def conv_geometry(fname, nd, insize, ksize, stride, padding, dilation):
    """(stride, dilation, left padding, output size), each a tuple per spatial
    axis, of a convolution (PyTorch's rules: "same" pads d*(k-1) in total, the
    odd element on the right, and needs stride 1; "valid" is no padding)."""
    st = check_spatial(stride, nd, "stride", fname, 1)
    dil = check_spatial(dilation, nd, "dilation", fname, 1)
    if isinstance(padding, str):
        if padding == "valid":
            left = total = (0,) * nd
        elif padding == "same":
            if any(s != 1 for s in st):
                raise ValueError(f"{fname}: padding='same' is not supported with stride {stride!r} "
                                 "(PyTorch's rule: strided convolutions take a numeric padding)")
            total = tuple(d * (k - 1) for d, k in zip(dil, ksize))
            left = tuple(t // 2 for t in total)
        else:
            raise ValueError(f"{fname}: padding: expected an int, a tuple of {nd} ints, 'valid' or "
                             f"'same', got {padding!r}")
    else:
        left = check_spatial(padding, nd, "padding", fname, 0)
        total = tuple(2 * p for p in left)
    outs = []
    for i, (n, k, s, d, t) in enumerate(zip(insize, ksize, st, dil, total)):
        span = d * (k - 1) + 1
        if n + t < span:
            raise ValueError(f"{fname}: x and weight: the padded input size {n + t} (axis {i}) is "
                             f"smaller than the dilated kernel size {span} (weight.shape[{2 + i}]={k}, "
                             f"dilation {d})")
        outs.append((n + t - span) // s + 1)
    return st, dil, left, tuple(outs)


def check_groups(groups, fname):
    """groups: a positive int."""
    return _int_at_least(groups, f"{fname}: groups", 1)


# ---------------------------------------------------------------- pooling, locally connected (mlkern.layers)
_LAYOUTS = _CONV_LAYOUTS


def check_flag(value, name):
    """A bool (Python or NumPy)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected a bool, got {type(value).__name__}")
    return bool(value)


def spatial_arg(value, name, nsp, minimum):
    """An int or a tuple of nsp ints (one per spatial axis; a 1-tuple is
    repeated, as PyTorch's pooling), each >= minimum, as a tuple of nsp ints."""
    if isinstance(value, (tuple, list)) and len(value) == 1:
        value = tuple(value) * nsp
    return check_spatial(value, nsp, name, None, minimum)


def pool_out_size(L, k, s, p, d, ceil_mode):
    """PyTorch's pooling_output_shape: a window that would start in the right
    padding is dropped in ceil_mode."""
    num = L + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)
    o = num // s + 1
    if ceil_mode and (o - 1) * s >= L + p:
        o -= 1
    return o


def pool_params(nsp, kernel_size, stride, padding, dilation, ceil_mode):
    """(kernel, stride, padding, dilation, ceil_mode), each a tuple per axis."""
    k = spatial_arg(kernel_size, "kernel_size", nsp, 1)
    s = k if stride is None else spatial_arg(stride, "stride", nsp, 1)
    p = spatial_arg(padding, "padding", nsp, 0)
    d = spatial_arg(dilation, "dilation", nsp, 1)
    for i in range(nsp):
        if 2 * p[i] > k[i]:
            raise ValueError(f"padding: {p[i]} is more than half the kernel size {k[i]} "
                             f"(padding {p}, kernel_size {k})")
    return k, s, p, d, check_flag(ceil_mode, "ceil_mode")


def pool_out_shape(fname, spatial, k, s, p, d, ceil_mode):
    """The output's spatial sizes; ValueError when one is below 1 or a window
    holds no input element (dilated taps all in the padding)."""
    outs = []
    for i, L in enumerate(spatial):
        o = pool_out_size(L, k[i], s[i], p[i], d[i], ceil_mode)
        if L < 1 or o < 1:
            raise ValueError(f"{fname}: input size {tuple(spatial)} is too small for kernel_size {k}, "
                             f"dilation {d}, padding {p} (output size {o} along axis {i})")
        for j in range(o):
            start = j * s[i] - p[i]
            if start >= 0:
                break
            j0 = (-start + d[i] - 1) // d[i]
            if j0 >= k[i] or start + j0 * d[i] >= L:
                raise ValueError(f"{fname}: the window of output {j} along spatial axis {i} lies "
                                 f"entirely in the padding (kernel_size {k}, dilation {d}, "
                                 f"padding {p}, input size {tuple(spatial)})")
        outs.append(o)
    return tuple(outs)


def spatial_input(a, name, nsp, last, cdt, fname, batched_only=False):
    """a (an ndarray) as a C-contiguous cdt array of 4 dims -- (N, C, H, W) or
    (N, H, W, C), H = 1 for 1-D -- and (batched, N, C, spatial)."""
    if a.ndim not in ((nsp + 2,) if batched_only else (nsp + 1, nsp + 2)):
        lay = _LAYOUTS[nsp][int(last)]
        want = f"{nsp + 2}-D ({lay})" + ("" if batched_only else f" or {nsp + 1}-D (unbatched)")
        raise ValueError(f"{fname}: {name} must be {want}, got shape {a.shape}")
    return spatial_shape(a.shape, nsp, last) + (layer_array(a, cdt),)


def spatial_shape(shape, nsp, last):
    """(batched, N, C, spatial) of a shape in the layout (N optional)."""
    shape = tuple(shape)
    batched = len(shape) == nsp + 2
    if not batched:
        shape = (1,) + shape
    if last:
        return batched, shape[0], shape[-1], shape[1:-1]
    return batched, shape[0], shape[1], shape[2:]


def as4(a, nsp, last):
    """A C-contiguous array (N?, C, *spatial) / (N?, *spatial, C) viewed as 4-D."""
    batched, N, C, sp = spatial_shape(a.shape, nsp, last)
    if nsp == 1:
        sp = (1,) + tuple(sp)
    return a.reshape((N,) + tuple(sp) + (C,) if last else (N, C) + tuple(sp))


def layout_shape(batched, N, C, spatial, last):
    """The array shape of (N, C, spatial) in the layout (N dropped if unbatched)."""
    s = (N,) + tuple(spatial) + (C,) if last else (N, C) + tuple(spatial)
    return s if batched else s[1:]


def check_shape_arg(input_shape, name, nsp):
    """input_shape: a tuple of nsp + 1 or nsp + 2 non-negative ints."""
    if not isinstance(input_shape, (tuple, list)) or not len(input_shape) in (nsp + 1, nsp + 2):
        raise ValueError(f"{name}: expected a tuple of {nsp + 2} ints (or {nsp + 1}, unbatched), "
                         f"got {input_shape!r}")
    return tuple(check_count(v, name) for v in input_shape)

