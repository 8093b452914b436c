"""The fuzzer's registry: one line per public name of ``mlkern`` and its public
submodules (``MODULES``), saying how to build a valid call from arrays of any
shape (the builder) and which arguments the fuzzer may corrupt.  Every
reliability test (tests/test_reliability_*.py) runs over ``REGISTRY``; the
harness that makes and checks the calls is tests/fuzz_harness.py.

Adding a public function
------------------------
1. Add one line ``"name": <builder>`` to ``REGISTRY`` below ("optim.name" /
   "calculus.name" / "layers.name" for a submodule's name).  Reuse a builder when the
   function has the shape of an existing family: ``k_unary(**params)`` for
   ``f(x, out=)``, ``k_binary(**params)`` for ``f_backward(grad_output, saved,
   out=)``, ``k_rowwise``/``k_rowwise_bwd``/``k_reduce`` for ``(x, axis)``,
   ``k_xent``/``k_pointwise``/``k_kl``/``k_penalty`` for the losses,
   ``k_step``/``k_opt_class`` for the optimisers, ``k_dense``/``k_embedding``
   for the layers, ``k_recurrent``/``k_cell``/``k_recurrent_backward`` for the
   recurrent ones, ``k_nn_*`` for the ``mlkern.nn`` classes (a class is
   registered through a runner, ``Call(fn=...)``, that builds it from the
   fuzzed constructor arguments and runs inference, a training forward and a
   backward: ``_run_nn``).  The keyword arguments of a
   builder are the hyper-parameters, each a ``P(good, bad, must)``: valid
   values (the first is the plain one), values that may raise, values the call
   must refuse with ValueError/TypeError; reuse the ``P_*`` constants.
2. A new kind of function gets a new builder ``k_<kind>(...)``: a function
   returning ``Spec(kind, build)`` where ``build(ctx)`` draws its arrays and
   parameters from ``ctx`` (``ctx.data(ctx.values(i))``, ``ctx.param(name, P)``,
   ``ctx.axis(ndim)``, ``ctx.labels(...)``, ``ctx.must_raise(why)`` for calls
   docs/contract.rst declares invalid) and returns a ``Call(args, kw, expect, ...)``: the
   expected result (``Arr``/``Tup``/``Is``/``Pred``), the (shape, dtype) out=
   receives, which inputs out= may alias, which arguments are updated in
   place, how results compare across layouts (see ``fuzz_harness.compare``).
3. A new public submodule (as ``mlkern.layers``): add it to ``MODULES``.

``test_registry_covers_public_api`` (tests/test_reliability_fuzz.py) fails
while a public name has no line, or a line names something not public.
"""
import copy
import dataclasses
import io
import math
import warnings

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import strategies as st  # noqa: E402

import mlkern  # noqa: E402
import mlkern.calculus as mcalc  # noqa: E402
import mlkern.layers as mlayers  # noqa: E402
import mlkern.nn as mnn  # noqa: E402
import mlkern.optim as mopt  # noqa: E402

NAN, INF = float("nan"), float("inf")
F16, F32, F64, I64 = (np.dtype(t) for t in ("f2", "f4", "f8", "i8"))

# the modules whose __all__ the registry covers: "" is mlkern, else "optim.sgd_step" style names
MODULES = {"": mlkern, "optim": mopt, "calculus": mcalc, "layers": mlayers, "nn": mnn}


# =============================================================================
# values, dtypes, layouts
# =============================================================================
_F32 = np.finfo(np.float32)
_F64 = np.finfo(np.float64)
SPECIALS = np.array([
    NAN, INF, -INF, 0.0, -0.0, 5e-324, -5e-324, 1e-310, -1e-310, 2.2250738585072014e-308,
    1e-40, -1.4e-45, 1.1754943508222875e-38, _F64.max, -_F64.max, float(_F32.max),
    -float(_F32.max), 65504.0, -65504.0, 1e300, -1e300, 1.0, -1.0, 0.5, 710.0, -745.0, 89.0,
    -104.0, 1000.0, -1000.0, 1e5, -1e5, 20.0, -20.0, 1e-8, -1e-8])

VALUE_MODES = ["normal", "normal", "normal", "mixed", "mixed", "specials", "wide", "small_ints",
               "zeros", "nan", "inf"]
BENIGN_MODES = ("normal", "small_ints", "zeros")     # loss values comparable across layouts


def gen_values(rng, shape, mode):
    """float64 values of `shape` in one of VALUE_MODES."""
    n = int(np.prod(shape, dtype=np.int64))
    if mode == "normal":
        v = 3.0 * rng.standard_normal(n)
    elif mode == "mixed":
        v = 3.0 * rng.standard_normal(n)
        m = rng.random(n) < 0.25
        v[m] = rng.choice(SPECIALS, int(m.sum()))
    elif mode == "specials":
        v = rng.choice(SPECIALS, n)
    elif mode == "wide":
        v = np.exp(rng.uniform(-740.0, 709.0, n)) * rng.choice([-1.0, 1.0], n)
    elif mode == "small_ints":
        v = rng.integers(-3, 4, n).astype(np.float64)
    elif mode == "zeros":
        v = rng.choice([0.0, -0.0], n)
    elif mode == "nan":
        v = np.full(n, NAN)
    elif mode == "inf":
        v = rng.choice([INF, -INF], n)
    else:  # pragma: no cover
        raise AssertionError(mode)
    return v.reshape(shape)


DTYPES = ([F64] * 6 + [F32] * 6
          + [np.dtype(t) for t in ("f2", ">f8", ">f4", "g", "?", "i1", "i2", "i4", "i8", "u1",
                                   "u2", "u4", "u8", "c8", "c16", "O", "U8", "M8[s]", "m8[ms]")])
FLOAT_DTYPES = [F64, F32]


def conv(v, dt):
    """float64 values `v` as a C-contiguous array of dtype `dt`."""
    dt = np.dtype(dt)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        k = dt.kind
        if k == "b":
            return np.asarray(v != 0)
        if k in "iu":
            info = np.iinfo(dt)
            w = np.nan_to_num(v, nan=0.0, posinf=float(info.max), neginf=float(info.min))
            return np.clip(np.round(w), float(info.min), float(info.max) / 2).astype(dt)
        if k == "f":
            return np.asarray(v).astype(dt)
        if k == "c":
            return (np.asarray(v) + 0.5j).astype(dt)
        if k == "O":
            return np.asarray(v).astype(object)
        if k == "U":
            return np.asarray(v).astype(dt)
        if k in "Mm":
            w = np.clip(np.nan_to_num(v, nan=0.0, posinf=0.0, neginf=0.0), -1e9, 1e9)
            return w.astype(np.int64).astype(dt)
        raise AssertionError(dt)  # pragma: no cover


class SubArray(np.ndarray):
    """A trivial ndarray subclass (the fast paths take exact ndarrays only)."""


LAYOUTS = (["C"] * 5 + ["F", "strided", "negstride", "readonly", "misaligned", "permuted",
                        "list", "subclass", "scalar"])
UNTOUCHED_LAYOUTS = ["C", "F", "strided", "negstride", "readonly", "misaligned"]


def misaligned_empty(shape, dt):
    """An uninitialised array whose data pointer is not aligned for dt
    (np.frombuffer over a bytearray memoryview offset by one byte)."""
    dt = np.dtype(dt)
    n = int(np.prod(shape, dtype=np.int64))
    buf = bytearray(n * dt.itemsize + 1)
    return np.frombuffer(memoryview(buf)[1:], dtype=dt, count=n).reshape(shape)


def apply_layout(c, lay):
    """The values of the C-contiguous array `c` in memory layout `lay`."""
    shape = c.shape
    if lay == "F" and c.ndim:          # (np.asfortranarray makes a 0-d array 1-D)
        return np.asfortranarray(c)
    if lay == "strided" and c.ndim:
        big = np.zeros(tuple(2 * d + 1 for d in shape), c.dtype)
        v = big[tuple(slice(1, None, 2) for _ in shape)]
        v[...] = c
        return v
    if lay == "negstride" and c.ndim:
        v = np.flip(np.flip(c).copy())
        assert all(s <= 0 for s, d in zip(v.strides, shape) if d > 1)
        return v
    if lay == "readonly":
        v = c.copy()
        v.setflags(write=False)
        return v
    if lay == "misaligned" and c.size and not c.dtype.hasobject and c.dtype.itemsize > 1:
        v = misaligned_empty(shape, c.dtype)
        v[...] = c
        return v
    if lay == "permuted" and c.ndim >= 2:
        perm = tuple(range(1, c.ndim)) + (0,)
        return np.transpose(np.ascontiguousarray(np.transpose(c, perm)), np.argsort(perm))
    if lay == "list" and 0 < c.size <= 256 and c.dtype.kind in "biufc":
        return c.tolist()
    if lay == "subclass":
        return c.view(SubArray)
    if lay == "scalar" and c.ndim == 0:
        # a Python scalar where it has the same dtype, else a NumPy scalar
        return c.item() if c.dtype in (F64, I64, np.dtype("?")) else c[()]
    return c


def shape_of(a):
    return tuple(np.shape(a))


def rdt(a):
    """The result dtype docs/contract.rst gives for an input: float32/float64 kept (native
    byte order), float16 kept (computed in float32), bool/int -> float64; None
    for the others (they raise TypeError)."""
    try:
        dt = np.asarray(a).dtype
    except Exception:  # pragma: no cover
        return None
    if dt.kind == "f":
        return {2: F16, 4: F32, 8: F64}.get(dt.itemsize)
    if dt.kind in "biu":
        return F64
    return None


def promote(*dts):
    if any(d is None for d in dts):
        return None
    return np.result_type(*dts)


def truth(v):
    try:
        return bool(v)
    except Exception:
        return None


def is_int(v):
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


# =============================================================================
# the call a builder makes, and what its result must look like
# =============================================================================
class Expect:
    """A check of a call's result: Arr (an array or NumPy scalar of a shape and
    dtype), Tup (a tuple of checks), Is (the very object), Pred (a predicate)."""


@dataclasses.dataclass
class Arr(Expect):
    shape: tuple
    dtype: object = None          # None: not determined by the contract
    scalar: object = None         # True: must be a NumPy scalar (np.generic) when out= is not given
    outable: bool = False         # this component is the one out= receives

    def check(self, r, out):
        if self.outable and out is not None:
            assert r is out, f"result is not the out= array ({type(r).__name__})"
            return
        assert isinstance(r, (np.ndarray, np.generic)), f"result of type {type(r).__name__}"
        if self.shape is not None:
            assert tuple(r.shape) == tuple(self.shape), f"result shape {r.shape}, expected {self.shape}"
        if self.dtype is not None:
            assert r.dtype == self.dtype, f"result dtype {r.dtype}, expected {self.dtype}"
        if self.scalar:
            assert isinstance(r, np.generic), f"expected a NumPy scalar, got {type(r).__name__}"


@dataclasses.dataclass
class Tup(Expect):
    parts: tuple

    def check(self, r, out):
        assert isinstance(r, tuple) and len(r) == len(self.parts), f"expected a {len(self.parts)}-tuple"
        for p, x in zip(self.parts, r):
            p.check(x, out)


@dataclasses.dataclass
class Is(Expect):
    obj: object

    def check(self, r, out):
        assert r is self.obj, f"expected the input object back, got {type(r).__name__}"


@dataclasses.dataclass
class Pred(Expect):
    fn: object
    what: str = ""

    def check(self, r, out):
        assert self.fn(r), f"result {r!r:.200} fails: {self.what}"


@dataclasses.dataclass
class Call:
    args: list
    kw: dict
    expect: Expect
    out_like: tuple = None        # (shape, dtype) of the array out= receives
    out_of: object = None         # result -> the component out= receives (default: the result)
    alias: tuple = ()             # positions of inputs that out= may alias (same shape)
    mutable: tuple = ()           # positions updated in place by design (optimisers)
    cmp: object = None            # how results compare with the C-copy call: see compare()
    fn: object = None             # a callable run instead of the registry function
    deterministic: bool = True
    allowed: tuple = ()           # exception types allowed besides ValueError/TypeError
    huge: bool = False            # a deliberately huge request: MemoryError allowed
    atomic: bool = True           # a call that raises leaves `mutable` untouched


# =============================================================================
# contexts: where builders get their arrays and parameters
# =============================================================================
@dataclasses.dataclass
class P:
    """Choices for one argument: `good` valid values (the first is the plain
    one), `bad` values that may raise ValueError/TypeError or not, `must`
    values the call has to refuse (ValueError/TypeError)."""
    good: list
    bad: list = ()
    must: list = ()


WRONG_TYPES = ["0.5", [0.5], 0.5j]
P_SLOPE = P([0.01, 0.0, 0.25, -0.5, 2.0, np.float32(0.1), 1], [NAN, INF, -INF, 1e308, np.array([0.1])],
            WRONG_TYPES + [None])
P_POS = P([1.0, 0.5, 2.0, 1e-3, 50.0], [0.0, -1.0, NAN, INF, 1e308, 5e-324, None], WRONG_TYPES)
P_THRESH = P([None, 20.0, 0.0, -5.0, 1e308], [NAN, INF, -INF], WRONG_TYPES)
P_APPROX = P(["none", "tanh"], [None, "TANH", "exact", "", 1, ["tanh"]])
P_SEED = P([0, 1, 12345, 2**63 + 7, -1, 2**100, np.int64(3), np.uint64(2**64 - 1), "GEN"],
           [None, True], ["1", 1.5, 0.5j])
P_SIGMA = P([None, 0.0, 0.3, 5.0], [-1.0, NAN, INF, 1e308], WRONG_TYPES)
P_ALPHA = P([1.0, 2.0, 0.5, 0.0, -1.0], [NAN, INF, None], WRONG_TYPES)
P_DELTA = P([1.0, 0.5, 1e-3, 100.0], [0.0, -1.0, NAN, INF, 5e-324], WRONG_TYPES + [None])
P_LAM = P([0.1, 0.0, 3.0, 1, np.float32(0.5)], [-1.0, NAN, INF, 1e308], WRONG_TYPES + [None])
P_LR = P([0.1, 1e-3, 0.0, 10.0, np.float32(0.01), 1], [INF, 1e308, NAN],
         [-0.1, -1e-300, -INF, None] + WRONG_TYPES)
P_MOM = P([0.9, 0.0, 0.5], [1.0, -0.1, NAN, 1.5, INF], WRONG_TYPES)
P_EPS = P([1e-8, 0.0, 1e-3], [-1.0, NAN, INF], WRONG_TYPES)
P_WD = P([0.0, 0.01, 1], [-0.01, NAN, INF], WRONG_TYPES)
P_UNIT = P([0.9, 0.0, 0.999], [1.0, -0.1, NAN, 2.0], WRONG_TYPES)
P_CLOSED_UNIT = P([0.9, 0.0, 1.0, 0.99], [-0.1, 1.1, NAN], WRONG_TYPES)
P_STEP = P([1, 2, 1000, np.int64(3), 2**40], [True, 2**70], [0, -1, 1.5, "1", None])
P_BOOL = P([False, True, np.bool_(True)], [None, "yes", 0, 1, np.array([True, False])])
P_REDUCTION = P(["mean", "sum", "none"], [None, 1, "MEAN"], ["avg", ""])
P_RMSE_REDUCTION = P(["mean"], [None, "MEAN"], ["sum", "none", "avg"])
P_SMOOTH = P([0.0, 0.1, 1.0], [-0.1, 1.5, NAN, INF], WRONG_TYPES)
P_IGNORE = P([-100, -1, 0, np.int64(-100)], [2**70, -2**70, 1.5, "x", None])
P_NGRAD_EPS = P([None, 1e-3, 1e-6], [0.0, -1.0, NAN, INF, "x"])
P_TOL = P([2e-2, 1e-5, 0.0], [-1.0, NAN, INF, "x"])


class PlainCtx:
    """Valid, fixed choices: one dtype, one layout, one shape."""
    fuzz = False

    def __init__(self, shape=(3, 5), dtype=F64, layout="C", seed=0, mode="normal"):
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)
        self.layout = layout
        self.mode = mode
        self.rng = np.random.default_rng(seed)
        self.big = False
        self.tainted = False    # a choice that may raise either type
        self.must = []
        self._vals = {}

    # --- arrays
    def values(self, k, shape=None):
        shape = self.shape if shape is None else tuple(shape)
        key = (k, shape)
        if key not in self._vals:
            self._vals[key] = gen_values(self.rng, shape, self.mode)
        return self._vals[key]

    def data(self, v, dtype=None, layout=None, broadcast=True):
        dt = np.dtype(dtype) if dtype is not None else self.dtype
        if dt.kind == "c":
            self.must_raise("complex input", TypeError)
        if rdt(np.empty(0, dt)) is None:
            self.tainted = True
        return apply_layout(conv(v, dt), layout or self.layout)

    def float_dtype(self):
        return self.dtype if self.dtype in (F32, F64) else F64

    def other_shape(self):
        return self.shape

    # --- choices
    def choose(self, name, options):
        return options[0]

    def param(self, name, p):
        return self._resolve(p.good[0])

    def _resolve(self, v):
        if isinstance(v, str) and v == "GEN":
            return np.random.default_rng(7)
        return v

    def axis(self, ndim, none_ok=False):
        if ndim == 0:
            self.must_raise("a 0-d input has no axis")
            return -1
        return -1

    def labels(self, rshape, n, ignore):
        size = int(np.prod(rshape, dtype=np.int64))
        lab = self.rng.integers(0, max(n, 1), size).reshape(rshape)
        return apply_layout(lab, self.layout if self.layout in UNTOUCHED_LAYOUTS else "C")

    def must_raise(self, why, exc=(ValueError, TypeError)):
        self.must.append((why, exc))


class FuzzCtx(PlainCtx):
    """Choices drawn by Hypothesis (and shown in its falsifying example)."""
    fuzz = True

    SMALL_DIMS = [0, 1, 1, 2, 2, 3, 3, 4, 5, 7, 8, 16, 17, 33]
    BIG_SHAPES = [(65537,), (3, 40001), (2, 3, 16411), (262147,), (1, 70001), (70001, 3),
                  (2, 2, 2, 9001)]

    def __init__(self, data):
        self.d = data
        seed = data.draw(st.integers(0, 2**32 - 1), label="numpy seed")
        self.rng = np.random.default_rng(seed)
        self.mode = data.draw(st.sampled_from(VALUE_MODES), label="values")
        self.big = data.draw(st.integers(0, 11), label="big?") == 0
        if self.big:
            self.shape = data.draw(st.sampled_from(self.BIG_SHAPES), label="shape (broadcast view)")
            small = list(self.shape)
            for i in range(len(small)):
                if data.draw(st.booleans(), label=f"axis {i} broadcast") or small[i] > 5000:
                    small[i] = 1
            self.small = tuple(small)
        else:
            ndim = data.draw(st.sampled_from([0, 1, 1, 2, 2, 2, 3, 4]), label="ndim")
            shape = [data.draw(st.sampled_from(self.SMALL_DIMS)) for _ in range(ndim)]
            while int(np.prod(shape, dtype=np.int64)) > 4096:
                shape[shape.index(max(shape))] //= 2
            self.shape = tuple(shape)
            self.small = self.shape
        self.dtype = data.draw(st.sampled_from(DTYPES), label="dtype")
        self.layout = data.draw(st.sampled_from(LAYOUTS), label="layout")
        self.mix = data.draw(st.integers(0, 3), label="per-argument dtype/layout?") == 0
        self.tainted = False
        self.must = []
        self._vals = {}

    def values(self, k, shape=None):
        shape = (self.small if self.big else self.shape) if shape is None else tuple(shape)
        return super().values(k, shape)

    def data(self, v, dtype=None, layout=None, broadcast=True):
        if dtype is None:
            dtype = self.d.draw(st.sampled_from(DTYPES), label="arg dtype") if self.mix else self.dtype
        if layout is None:
            layout = self.d.draw(st.sampled_from(LAYOUTS), label="arg layout") if self.mix else self.layout
        dt = np.dtype(dtype)
        if dt.kind == "c":
            self.must_raise("complex input", TypeError)
        if rdt(np.empty(0, dt)) is None:
            self.tainted = True
        if self.big and broadcast and tuple(np.shape(v)) == self.small:
            return np.broadcast_to(conv(v, dt), self.shape)
        return apply_layout(conv(v, dt), layout)

    def float_dtype(self):
        if self.d.draw(st.integers(0, 9), label="param dtype drawn?") == 0:
            return self.dtype
        return self.dtype if self.dtype in (F32, F64) else F64

    def other_shape(self):
        """The shape of a second same-shape input: sometimes a different one (must raise)."""
        if self.big or self.d.draw(st.integers(0, 9), label="mismatch?") != 0:
            return self.shape
        s = list(self.shape)
        how = self.d.draw(st.sampled_from(["grow", "append", "drop", "swap"]), label="mismatch")
        if how == "grow" and s:
            s[-1] += 1
        elif how == "drop" and s:
            s = s[1:]
        elif how == "swap" and len(s) >= 2 and s[0] != s[-1]:
            s[0], s[-1] = s[-1], s[0]
        else:
            s = s + [2]
        s = tuple(s)
        if s != self.shape:
            self.must_raise(f"shape mismatch {self.shape} vs {s}", ValueError)
        return s

    def choose(self, name, options):
        return self.d.draw(st.sampled_from(options), label=name)

    def param(self, name, p):
        pool = list(p.bad) + list(p.must)
        if pool and self.d.draw(st.integers(0, 4), label=f"{name} invalid?") == 0:
            i = self.d.draw(st.integers(0, len(pool) - 1), label=f"{name} (invalid choice)")
            v = pool[i]
            self.tainted = True
            if i >= len(p.bad):
                self.must_raise(f"{name}={v!r}")
            return self._resolve(v)
        return self._resolve(self.d.draw(st.sampled_from(list(p.good)), label=name))

    def axis(self, ndim, none_ok=False):
        if ndim == 0:
            self.must_raise("a 0-d input has no axis", ValueError)
        kind = self.d.draw(st.sampled_from(["ok"] * 6 + ["np", "range", "huge", "float", "str", "None"]),
                           label="axis kind")
        if kind in ("ok", "np"):
            a = self.d.draw(st.integers(-max(ndim, 1), max(ndim, 1) - 1), label="axis")
            return np.int64(a) if kind == "np" else a
        if kind == "range":
            a = self.d.draw(st.sampled_from([ndim, -ndim - 1, ndim + 5]), label="axis")
            self.must_raise(f"axis {a} out of range for ndim {ndim}", ValueError)
            return a
        if kind == "huge":
            a = self.d.draw(st.sampled_from([2**70, -2**70, 2**31, 2**63]), label="axis")
            self.must_raise(f"axis {a} out of range", ValueError)
            return a
        if kind == "float":
            self.must_raise("axis of a float type")
            return self.d.draw(st.sampled_from([1.5, 0.0, np.float64(-1.0)]), label="axis")
        if kind == "str":
            self.must_raise("axis of str type")
            return "0"
        if not none_ok:
            self.tainted = True     # axis=None: the row-wise functions may raise or flatten
        return None

    def labels(self, rshape, n, ignore):
        d = self.d
        mode = d.draw(st.sampled_from(["valid"] * 5 + ["ignored_some", "all_ignored", "oob_n", "oob_neg",
                                                       "huge", "mismatch"]), label="labels")
        dt = np.dtype(d.draw(st.sampled_from(["i8"] * 4 + ["i4", "i2", "i1", "u1", "u8", "?", "f8"]),
                             label="labels dtype"))
        lay = d.draw(st.sampled_from(["C"] * 3 + ["F", "strided", "negstride", "readonly", "list",
                                                  "misaligned"]), label="labels layout")
        if mode == "mismatch":
            rshape = tuple(rshape) + (2,)
            self.must_raise("labels of the wrong shape", ValueError)
        size = int(np.prod(rshape, dtype=np.int64))
        lab = self.rng.integers(0, max(n, 1), size).astype(object)
        ig = ignore if is_int(ignore) else -100
        if size:
            i = int(self.rng.integers(size))
            if mode == "ignored_some":
                lab[self.rng.random(size) < 0.3] = ig
            elif mode == "all_ignored":
                lab[:] = ig
            elif mode == "oob_n":
                lab[i] = n
            elif mode == "oob_neg":
                lab[i] = -1 if ig != -1 else -2
            elif mode == "huge":
                lab[i] = d.draw(st.sampled_from([2**62, -2**62, 2**63 + 5]), label="huge label")
        if dt.kind == "u":
            lab = np.array([int(x) % 2**(8 * dt.itemsize) for x in lab], dtype=dt)
        elif dt.kind == "i":
            lo, hi = np.iinfo(dt).min, np.iinfo(dt).max
            lab = np.array([min(max(int(x), lo), hi) for x in lab], dtype=dt)
        else:
            lab = np.array([float(x) for x in lab], dtype=np.float64).astype(dt)
        lab = lab.reshape(rshape)
        if dt.kind not in "iu":
            self.tainted = True
        if dt.kind in "iu" and size and mode != "mismatch":
            vals = [int(x) for x in lab.reshape(-1)]
            if any(not (0 <= x < n) and not (is_int(ignore) and x == ignore) for x in vals):
                self.must_raise("a label outside [0, n) that is not ignore_index", ValueError)
        return apply_layout(lab, lay)


# =============================================================================
# builders, one per kind of function
# =============================================================================
@dataclasses.dataclass
class Spec:
    kind: str
    build: object                   # ctx -> Call
    qual: str = ""                  # filled in below: "sigmoid", "optim.sgd_step", ...

    @property
    def func(self):
        mod, _, name = self.qual.rpartition(".")
        return getattr(MODULES[mod], name)


def _params(ctx, pspecs):
    return {k: ctx.param(k, p) for k, p in pspecs.items()}


def k_unary(**pspecs):
    def build(ctx):
        x = ctx.data(ctx.values(0))
        kw = _params(ctx, pspecs)
        shp, dt = shape_of(x), rdt(x)
        det = "seed" not in kw or kw["seed"] is not None
        return Call([x], kw, Arr(shp, dt, scalar=shp == (), outable=True), out_like=(shp, dt),
                    alias=(0,), cmp="elem", deterministic=det)
    return Spec("unary", build)


def k_binary(**pspecs):
    def build(ctx):
        g = ctx.data(ctx.values(0))
        s = ctx.data(ctx.values(1, ctx.other_shape()) if not ctx.big else ctx.values(1))
        kw = _params(ctx, pspecs)
        shp, dt = shape_of(g), promote(rdt(g), rdt(s))
        return Call([g, s], kw, Arr(shp, dt, scalar=shp == (), outable=True), out_like=(shp, dt),
                    alias=(0, 1), cmp="elem")
    return Spec("binary", build)


def _prelu_alpha(ctx, shp):
    C = shp[1] if len(shp) >= 2 else 1
    how = ctx.choose("alpha", ["scalar", "scalar", "per_channel", "one", "list", "wrong_len", "2d",
                               "complex", "nan", "str", "misaligned"])
    if how == "per_channel":
        return np.linspace(0.05, 0.5, C) if len(shp) >= 2 else np.array([0.2])
    if how == "misaligned":
        return apply_layout(np.linspace(0.05, 0.5, C) if len(shp) >= 2 else np.array([0.2]), how)
    if how == "one":
        return np.array([0.3])
    if how == "list":
        return [0.1] * C if len(shp) >= 2 else [0.1]
    if how == "wrong_len":
        ctx.must_raise("alpha of the wrong length", ValueError)
        return np.full(C + 1 if C else 2, 0.2)
    if how == "2d":
        ctx.must_raise("2-D alpha", ValueError)
        return np.full((1, 1), 0.2)
    if how == "complex":
        ctx.must_raise("complex alpha", TypeError)
        return 0.25j
    if how == "nan":
        return NAN
    if how == "str":
        ctx.must_raise("alpha of str type")
        return "0.25"
    return 0.25


def k_prelu(which):
    def build(ctx):
        x = ctx.data(ctx.values(0))
        shp, dt = shape_of(x), rdt(x)
        alpha = _prelu_alpha(ctx, shp)
        if which != "backward":
            return Call([x, alpha], {}, Arr(shp, dt, outable=True), out_like=(shp, dt), alias=(0,),
                        cmp="elem")
        g = ctx.data(ctx.values(1, ctx.other_shape()) if not ctx.big else ctx.values(1))
        ashape = shape_of(alpha)
        return Call([g, x, alpha], {}, Tup((Arr(shp, dt, outable=True), Arr(ashape, dt))),
                    out_like=(shp, dt), out_of=lambda r: r[0], alias=(0, 1), cmp=("elem", "loss"))
    return Spec("prelu", build)


def _axis_info(ctx, shp, none_ok=False):
    """(axis value, the normalised axis or None when the call must fail / flattens)."""
    axis = ctx.axis(len(shp), none_ok)
    if is_int(axis) and -len(shp) <= int(axis) < len(shp):
        return axis, int(axis) % len(shp)
    return axis, None


def k_rowwise():
    def build(ctx):
        x = ctx.data(ctx.values(0))
        shp, dt = shape_of(x), rdt(x)
        axis, _ = _axis_info(ctx, shp)
        return Call([x, axis], {}, Arr(shp, dt, outable=True), out_like=(shp, dt), alias=(0,),
                    cmp="row")
    return Spec("rowwise", build)


def k_rowwise_bwd():
    def build(ctx):
        g = ctx.data(ctx.values(0))
        y = ctx.data(ctx.values(1, ctx.other_shape()) if not ctx.big else ctx.values(1))
        shp, dt = shape_of(g), promote(rdt(g), rdt(y))
        axis, _ = _axis_info(ctx, shp)
        return Call([g, y, axis], {}, Arr(shp, dt, outable=True), out_like=(shp, dt), alias=(0, 1),
                    cmp="row")
    return Spec("rowwise_bwd", build)


def k_jacobian():
    def build(ctx):
        x = ctx.data(ctx.values(0))
        shp, dt = shape_of(x), rdt(x)
        axis, ax = _axis_info(ctx, shp)
        if ax is not None:
            n = shp[ax]
            outer = max(1, int(np.prod(shp, dtype=np.int64)) // max(n, 1))
            cap = max(1, int(math.sqrt(2e6 / outer)))
            if n > cap and not getattr(ctx, "no_shrink", False):   # keep the (..., n, n) result small
                x = np.asarray(x)[(slice(None),) * ax + (slice(0, cap),)]
                shp = shape_of(x)
                n = cap
            rs = shp[:ax] + shp[ax + 1:] + (n, n)
            if int(np.prod(rs, dtype=np.float64)) > 4e6 and not getattr(ctx, "no_shrink", False):
                x = np.asarray(x)[(0,) * len(shp)]        # 0-d: must raise
                ctx.must_raise("0-d input", ValueError)
                rs = None
        else:
            rs = None
        return Call([x, axis], {}, Arr(rs, dt), cmp="row")
    return Spec("jacobian", build)


def k_reduce(argmax=False):
    def build(ctx):
        x = ctx.data(ctx.values(0))
        shp = shape_of(x)
        axis, ax = _axis_info(ctx, shp, none_ok=argmax)
        keep = ctx.param("keepdims", P_BOOL)
        kd = truth(keep)
        dt = I64 if argmax else rdt(x)
        if ax is not None:
            rs = shp[:ax] + ((1,) if kd else ()) + shp[ax + 1:]
            empty = shp[ax] == 0
        elif axis is None and argmax:
            rs = (1,) * len(shp) if kd else ()
            empty = int(np.prod(shp, dtype=np.int64)) == 0
        else:
            rs, empty = None, False
        if argmax and empty and len(shp):
            ctx.must_raise("argmax over an empty axis", ValueError)
        e = Arr(rs if kd is not None else None, dt, scalar=rs == (), outable=True)
        return Call([x, axis], {"keepdims": keep}, e, out_like=(rs, dt) if rs is not None else None,
                    cmp="argmax" if argmax else "row")
    return Spec("reduce", build)


def _class_weights(ctx, n, name="weight"):
    how = ctx.choose(name, ["none"] * 4 + ["ok", "ints", "zeros", "negative", "nan", "wrong_shape",
                                           "complex", "misaligned", "f32"])
    if how == "ok":
        return np.linspace(0.5, 2.0, n)
    if how == "misaligned":
        return apply_layout(np.linspace(0.5, 2.0, n), "misaligned")
    if how == "f32":
        return np.linspace(0.5, 2.0, n, dtype=np.float32)
    if how == "ints":
        return [1] * n
    if how == "zeros":
        return np.zeros(n)
    if how == "negative":
        return -np.ones(n)
    if how == "nan":
        return np.full(n, NAN)
    if how == "wrong_shape":
        ctx.must_raise(f"{name} of the wrong shape", ValueError)
        return np.ones(n + 1)
    if how == "complex":
        ctx.must_raise(f"complex {name}", TypeError)
        return np.ones(n, complex)
    return None


def _sample_weights(ctx, shape, name="sample_weight"):
    how = ctx.choose(name, ["none"] * 4 + ["ok", "zeros", "negative", "nan", "wrong_shape", "complex",
                                           "strided", "misaligned", "ints"])
    if how == "none":
        return None
    if how == "wrong_shape":
        ctx.must_raise(f"{name} of the wrong shape", ValueError)
        return np.ones(tuple(shape) + (3,))
    base = np.linspace(0.5, 2.0, int(np.prod(shape, dtype=np.int64))).reshape(shape)
    if how == "zeros":
        return np.zeros(shape)
    if how == "negative":
        return -base
    if how == "nan":
        return np.full(shape, NAN)
    if how == "complex":
        ctx.must_raise(f"complex {name}", TypeError)
        return base.astype(complex)
    if how in ("strided", "misaligned"):
        return apply_layout(base, how)
    if how == "ints":
        return np.ones(shape, np.int32)
    return base


def _softmax_np(v, ax):
    with np.errstate(all="ignore"):
        e = np.exp(v - np.max(v, axis=ax, keepdims=True)) if v.size else v
        return e / np.sum(e, axis=ax, keepdims=True) if v.size else v


def _loss_call(want, args, kw, loss, grad, out_like, gcmp, alias):
    """The Call of a loss family member: want "loss" (f), "grad" (f_grad, out= the
    gradient) or "both" (f_with_grad: (loss, grad), out= the gradient); gcmp is
    how gradients compare across layouts (see fuzz_harness.compare)."""
    e = {"loss": loss, "grad": grad, "both": Tup((loss, grad))}[want]
    cmp = {"loss": "loss", "grad": gcmp, "both": ("loss", gcmp)}[want]
    return Call(args, kw, e, out_like=out_like if want != "loss" else None,
                out_of=(lambda r: r[1]) if want == "both" else None, alias=alias, cmp=cmp)


def k_xent(want, nll=False):
    def build(ctx):
        z = ctx.data(ctx.values(0))
        shp, dt = shape_of(z), rdt(z)
        axis, ax = _axis_info(ctx, shp)
        n = shp[ax] if ax is not None else 1
        rshape = shp[:ax] + shp[ax + 1:] if ax is not None else shp[:-1]
        kw = {"reduction": ctx.param("reduction", P_REDUCTION),
              "ignore_index": ctx.param("ignore_index", P_IGNORE)}
        if not nll:
            kw["label_smoothing"] = ctx.param("label_smoothing", P_SMOOTH)
        probs = not nll and ax is not None and ctx.choose("target", ["labels"] * 3 + ["probs"]) == "probs"
        if probs:
            v = ctx.values(1)
            t = ctx.data(_softmax_np(v, ax if v.ndim == len(shp) else -1))
            if np.asarray(t).dtype.kind != "f":
                ctx.tainted = True          # an int/bool target of the logits' shape: labels
        else:
            t = ctx.labels(rshape, n, kw["ignore_index"])
        w = _class_weights(ctx, n)
        if w is not None:
            kw["weight"] = w
        sw = _sample_weights(ctx, rshape)
        if sw is not None:
            kw["sample_weight"] = sw
        loss = Arr(rshape, dt) if kw["reduction"] == "none" else Arr((), dt, scalar=True)
        return _loss_call(want, [z, t, axis], kw, loss, Arr(shp, dt, outable=True), (shp, dt), "row", (0,))
    return Spec("xent", build)


def k_pointwise(want, rmse=False, prob=False, delta=False, pos_weight=False):
    def build(ctx):
        v0 = ctx.values(0)
        v1 = ctx.values(1, ctx.other_shape()) if not ctx.big else ctx.values(1)
        if prob:                      # probabilities in [0, 1] (NaN stays NaN)
            with np.errstate(all="ignore"):
                v0 = 1.0 / (1.0 + np.exp(-v0))
                v1 = 1.0 / (1.0 + np.exp(-v1))
            if ctx.choose("prob out of [0, 1]?", [False] * 9 + [True]):
                v0 = v0 * 2.0 - 0.5
                ctx.tainted = True
        p = ctx.data(v0)
        t = ctx.data(v1)
        shp, dt = shape_of(p), rdt(p)
        kw = {"reduction": ctx.param("reduction", P_RMSE_REDUCTION if rmse else P_REDUCTION)}
        if delta:
            kw["delta"] = ctx.param("delta", P_DELTA)
        if pos_weight:
            how = ctx.choose("pos_weight", ["none"] * 3 + ["scalar", "last", "full", "wrong", "nan",
                                                           "complex", "negative", "misaligned"])
            if how == "scalar":
                kw["pos_weight"] = 2.0
            elif how in ("last", "misaligned") and shp:
                kw["pos_weight"] = apply_layout(np.linspace(0.5, 3.0, shp[-1]),
                                                "misaligned" if how == "misaligned" else "C")
            elif how == "full" and shp:
                kw["pos_weight"] = np.full(shp, 1.5) if not ctx.big else np.broadcast_to(1.5, shp)
            elif how == "wrong":
                ctx.must_raise("pos_weight that does not broadcast", ValueError)
                kw["pos_weight"] = np.ones((shp[-1] + 2) if shp else 2)
            elif how == "nan":
                kw["pos_weight"] = NAN
            elif how == "complex":
                ctx.must_raise("complex pos_weight", TypeError)
                kw["pos_weight"] = 1j
            elif how == "negative":
                kw["pos_weight"] = -1.0
        if shp:
            sw = _sample_weights(ctx, shp[:1])
            if sw is not None:
                kw["sample_weight"] = sw
        loss = Arr(shp, dt, scalar=shp == ()) if kw["reduction"] == "none" else Arr((), dt, scalar=True)
        return _loss_call(want, [p, t], kw, loss, Arr(shp, dt, scalar=shp == (), outable=True), (shp, dt),
                          "loss" if rmse else "elem", (0, 1))
    return Spec("pointwise", build)


def k_kl(want):
    def build(ctx):
        v0, v1 = ctx.values(0), ctx.values(1, ctx.other_shape()) if not ctx.big else ctx.values(1)
        shp0 = v0.shape
        log_q = ctx.param("log_q", P_BOOL)
        pv = _softmax_np(v0, -1) if v0.ndim else v0
        qv = _softmax_np(v1, -1) if v1.ndim else v1
        if truth(log_q):
            with np.errstate(all="ignore"):
                qv = np.log(qv)
        p, q = ctx.data(pv), ctx.data(qv)
        shp, dt = shape_of(q), rdt(q)
        del shp0
        axis, ax = _axis_info(ctx, shp)
        rshape = shp[:ax] + shp[ax + 1:] if ax is not None else None
        kw = {"log_q": log_q, "reduction": ctx.param("reduction", P_REDUCTION)}
        if rshape is not None:
            sw = _sample_weights(ctx, rshape)
            if sw is not None:
                kw["sample_weight"] = sw
        loss = Arr(rshape, dt) if kw["reduction"] == "none" else Arr((), dt, scalar=True)
        return _loss_call(want, [p, q, axis], kw, loss, Arr(shp, dt, outable=True), (shp, dt), "elem", (1,))
    return Spec("kl", build)


def k_penalty(want):
    def build(ctx):
        w = ctx.data(ctx.values(0))
        shp, dt = shape_of(w), rdt(w)
        lam = ctx.param("lam", P_LAM)
        if want == "loss":
            return Call([w, lam], {}, Arr((), dt, scalar=True), cmp="loss")
        return Call([w, lam], {}, Arr(shp, dt, scalar=shp == (), outable=True), out_like=(shp, dt),
                    alias=(0,), cmp="elem")
    return Spec("penalty", build)


_STATE_MODES = ["ok"] * 8 + ["shape", "dtype", "F", "readonly", "is_param", "strided", "list"]


def _opt_param(ctx):
    p = _opt_param_1(ctx)
    if not (isinstance(p, np.ndarray) and p.dtype in (F32, F64)):
        ctx.tainted = True        # TypeError for the dtype, or ValueError for the layout first
    return p


def _opt_param_1(ctx):
    pdt = ctx.float_dtype()
    how = ctx.choose("param layout", ["C"] * 6 + ["drawn", "readonly", "F", "strided", "list",
                                                  "misaligned"])
    with np.errstate(all="ignore"):
        v = np.broadcast_to(ctx.values(0), ctx.shape) if ctx.big else ctx.values(0)
        c = conv(v, pdt)
    if how == "C":
        return np.ascontiguousarray(c)
    if how == "drawn":
        return ctx.data(ctx.values(0))
    if how in ("readonly", "list", "misaligned"):
        r = apply_layout(np.ascontiguousarray(c), how)
        if not (isinstance(r, np.ndarray) and r.flags.writeable and r.flags.aligned):
            ctx.must_raise(f"param {how}")
        return r
    r = apply_layout(np.ascontiguousarray(c), how)
    if isinstance(r, np.ndarray) and not r.flags.c_contiguous:
        ctx.must_raise(f"param {how} (not C-contiguous)")
    return r


def _opt_grad(ctx, p):
    pdt = p.dtype if isinstance(p, np.ndarray) else F64
    pshape = shape_of(p)
    how = ctx.choose("grad", ["same_dtype"] * 4 + ["drawn", "is_param", "mismatch"])
    if how == "is_param":
        return p
    if how == "mismatch" and not ctx.big:
        s = ctx.other_shape()
        return ctx.data(ctx.values(1, s), dtype=pdt)
    v = np.broadcast_to(ctx.values(1), pshape) if ctx.big else ctx.values(1, pshape)
    return ctx.data(v, dtype=pdt if how != "drawn" else None)


def _opt_state(ctx, p, name, i):
    how = ctx.choose(name, _STATE_MODES)
    if not isinstance(p, np.ndarray):
        return np.zeros(shape_of(p))
    z = np.zeros(p.shape, p.dtype if p.dtype.kind == "f" else F64)
    if how == "ok":
        return z
    ctx.must_raise(f"{name}: {how}")
    if how == "shape":
        return np.zeros(p.shape + (2,), z.dtype)
    if how == "dtype":
        return z.astype(F32 if z.dtype == F64 else F64)
    if how == "F":
        r = apply_layout(z, "F")
        if r.flags.c_contiguous:
            ctx.must.pop()
        return r
    if how == "readonly":
        z.setflags(write=False)
        return z
    if how == "is_param":
        if p.size == 0:
            ctx.must.pop()          # nothing shared: allowed
        return p
    if how == "strided":
        r = apply_layout(z, "strided")
        if r.flags.c_contiguous:
            ctx.must.pop()
        return r
    return z.tolist()


def k_step(nstates, **hyper):
    def build(ctx):
        p = _opt_param(ctx)
        g = _opt_grad(ctx, p)
        names = ["s1", "s2"][:nstates]
        states = [_opt_state(ctx, p, n, i) for i, n in enumerate(names)]
        kw = _params(ctx, hyper)
        return Call([p, g, *states], kw, Is(p), mutable=tuple([0] + [2 + i for i in range(nstates)]),
                    cmp="elem")
    return Spec("step", build)


def _checked_step(opt, p, grads):
    """opt.step(grads); a step that raises must leave the parameter as it was."""
    before = np.array(p, copy=True) if isinstance(p, np.ndarray) else None
    try:
        opt.step(grads)
    except Exception:
        if before is not None:
            assert before.tobytes() == np.asarray(p).tobytes(), "a step that raised changed the param"
        raise


def _run_optimizer(cls, p, g, **kw):
    opt = cls([p], **kw)
    _checked_step(opt, p, [g])
    _checked_step(opt, p, g if isinstance(g, np.ndarray) else [g])
    sd = opt.state_dict()
    opt.load_state_dict(copy.deepcopy(sd))
    repr(opt)
    opt.zero_state()
    _checked_step(opt, p, [g])
    return p


def _lr_schedule(t):
    return 0.1 / t


def k_opt_class(**hyper):
    def build(ctx):
        p = _opt_param(ctx)
        g = _opt_grad(ctx, p)
        if ctx.choose("lr callable?", [False] * 4 + [True]):
            kw = _params(ctx, {k: v for k, v in hyper.items() if k != "lr"})
            kw["lr"] = _lr_schedule
        else:
            kw = _params(ctx, hyper)
        # three steps: a gradient that is the parameter itself changes between them
        return Call([p, g], kw, Is(p), mutable=(0,), cmp=None if g is p else "elem",
                    fn=_run_optimizer, atomic=False)
    return Spec("opt_class", build)


def _run_optimizer_base(cls, p, g, **kw):
    opt = cls([p], **kw)
    sd = opt.state_dict()
    opt.load_state_dict(sd)
    opt.zero_state()
    repr(opt)
    return p


def k_opt_base():
    def build(ctx):
        p = _opt_param(ctx)
        kw = {"lr": ctx.param("lr", P_LR)}
        return Call([p, None], kw, Is(p), mutable=(0,), fn=_run_optimizer_base)
    return Spec("opt_base", build)


def _run_minibatches(fn, n, b, **kw):
    return list(fn(n, b, **kw))


def k_minibatches():
    def build(ctx):
        n = ctx.param("n_samples", P([0, 1, 5, 100, np.int64(7), 4097], [True, 2**70],
                                     [-1, 1.5, "3", None]))
        b = ctx.param("batch_size", P([1, 2, 3, 64, 1000, np.uint8(5)], [True, 2**70],
                                      [0, -1, 1.5, "2", None]))
        kw = {"shuffle": ctx.param("shuffle", P([True, False], [None, "no", np.bool_(False)])),
              "seed": ctx.param("seed", P([None, 0, 42, "GEN"], [-1, "x", 1.5, 2**200]))}

        def ok(r):
            if not is_int(n) or not is_int(b):
                return True
            return (all(isinstance(a, np.ndarray) and a.dtype == I64 for a in r)
                    and sorted(np.concatenate(r).tolist() if r else []) == list(range(int(n))))
        return Call([n, b], kw, Pred(ok, "batches covering range(n_samples) once"),
                    fn=_run_minibatches, deterministic=kw["seed"] is not None)
    return Spec("minibatches", build)


def _f_softplus_sum(v):
    return float(np.sum(mlkern.softplus(v)))


def k_numerical_grad():
    def build(ctx):
        v = ctx.values(0)
        v = v[tuple(slice(0, 3) for _ in range(v.ndim))]      # <= 81 coordinates
        x = ctx.data(v, broadcast=False)
        f = ctx.choose("f", [_f_softplus_sum] * 4 + ["not callable", lambda v: np.ones(3)])
        if f == "not callable":
            ctx.must_raise("f not callable", TypeError)
        kw = {"eps": ctx.param("eps", P_NGRAD_EPS)}
        xd = np.asarray(x).dtype if not isinstance(x, (list,)) else np.asarray(x).dtype
        dt = xd if xd.kind == "f" else (F64 if xd.kind in "biu" else None)
        return Call([f, x], kw, Arr(shape_of(x), dt), cmp="loss")
    return Spec("calculus", build)


def k_gradcheck():
    def build(ctx):
        v = ctx.values(0)
        v = v[tuple(slice(0, 3) for _ in range(v.ndim))]      # <= 81 coordinates
        x = ctx.data(v, broadcast=False)
        gf = ctx.choose("grad_f", [mlkern.softplus_grad] * 3 + [mlkern.tanh, lambda v: np.zeros(3)])
        kw = {"rtol": ctx.param("rtol", P_TOL), "atol": ctx.param("atol", P_TOL)}
        return Call([_f_softplus_sum, gf, x], kw, Pred(lambda r: r is True, "returns True"),
                    allowed=(mcalc.GradcheckError,))
    return Spec("calculus", build)


_ACT_NAMES = sorted({n[:-5] for n in mlkern.__all__ if n.endswith("_grad") and n[:-5] in mlkern.__all__
                     and not n.startswith(("cross", "nll", "kl", "l1", "l2", "mse", "rmse", "mae",
                                           "huber", "binary", "quadratic"))})


def _run_derivative(fn, name, x):
    return fn(name)(x)


def k_derivative():
    def build(ctx):
        name = ctx.param("name", P(["sigmoid", *_ACT_NAMES], ["noisy_relu", "nope", "sigmoid_grad", ""],
                                   [None, 3]))
        x = ctx.data(ctx.values(0))
        shp = shape_of(x)
        return Call([name, x], {}, Arr(shp, rdt(x)), fn=_run_derivative, cmp="elem")
    return Spec("calculus", build)


def _run_gradcheck_error(cls, msg, idx, a, n):
    e = cls(msg, idx, a, n)
    assert isinstance(e, AssertionError) and e.index == idx and e.analytic == a
    try:
        raise e
    except cls as caught:
        return caught


def k_gradcheck_error():
    def build(ctx):
        return Call(["m", (0, 1), 1.0, 2.0], {}, Pred(lambda r: isinstance(r, mcalc.GradcheckError)),
                    fn=_run_gradcheck_error)
    return Spec("calculus", build)


_P_THREADS = P([1, 2, None, np.int64(2), 3], [2**70, 2**31, True], [0, -1, 1.5, "2", np.float64(2.0)])


def _run_set_num_threads(fn, n):
    x = np.linspace(-3, 3, 70001)
    try:
        prev = fn(n)
        got = mlkern.get_num_threads()
        y = mlkern.sigmoid(x)
        assert n is None or got == int(n), f"get_num_threads() = {got} after set_num_threads({n!r})"
        return (prev, y)
    finally:
        mlkern.set_num_threads(None)


def _run_threads(fn, n):
    x = np.linspace(-3, 3, 70000)
    before = mlkern.get_num_threads()
    try:
        with fn(n):
            got = mlkern.get_num_threads()
            y = mlkern.softmax(x.reshape(7, -1))
        assert n is None or got == int(n)
    finally:
        after = mlkern.get_num_threads()
        mlkern.set_num_threads(None)
    assert after == before, f"threads({n!r}) did not restore the count: {before} -> {after}"
    return y


def _run_get_num_threads(fn):
    n = fn()
    assert isinstance(n, int) and n >= 1
    return n


def _run_show_config(fn):
    buf = io.StringIO()
    info = fn(file=buf)
    assert mlkern.__version__ in buf.getvalue()
    return info


def k_config(which):
    def build(ctx):
        if which == "get":
            return Call([], {}, Pred(lambda r: True), fn=_run_get_num_threads)
        if which == "show":
            return Call([], {}, Pred(lambda r: isinstance(r, dict)), fn=_run_show_config)
        n = ctx.param("n", _P_THREADS)
        run = _run_set_num_threads if which == "set" else _run_threads
        return Call([n], {}, Pred(lambda r: True), fn=run)
    return Spec("config", build)


# --- layers (mlkern.layers): dense, dense_backward, embedding, embedding_backward
_LAYER_ACTS = ["sigmoid", "tanh", "relu", "leaky_relu", "elu", "softplus", "silu", "swish", "log_sigmoid",
               "gelu"]
P_ACTIVATION = P([None, *_LAYER_ACTS], [], ["prelu", "noisy_relu", "junk", "", "RELU", 3, ["relu"]])
_ACT_PARAMS = {"leaky_relu": {"negative_slope": P_SLOPE}, "elu": {"alpha": P_ALPHA},
               "softplus": {"beta": P_POS, "threshold": P_THRESH}, "silu": {"beta": P_POS},
               "swish": {"beta": P_POS}, "gelu": {"approximate": P_APPROX}}


def _layer_rdt(ctx, *arrays):
    """The result dtype of a layer on these float arrays (docs/contract.rst "Layers"): one
    float dtype shared by all (float32 with float64 or float16 is a TypeError, however the
    bytes are ordered), integers/bools take it (float64 if none); None when not determined
    (an argument of a dtype that raises anyway)."""
    floats = set()
    for a in arrays:
        if a is None:
            continue
        dt = np.asarray(a).dtype
        if rdt(np.empty(0, dt)) is None:
            return None
        if dt.kind == "f":
            floats.add(dt.newbyteorder("="))
    if len(floats) > 1:
        ctx.must_raise(f"mixed float dtypes {sorted(map(str, floats))}", TypeError)
        return None
    return floats.pop() if floats else F64


def _other_float(ctx):
    """None (the drawn dtype), or sometimes the other one of float32/float64 (must raise)."""
    if ctx.choose("mixed float dtypes?", [False] * 7 + [True]):
        return F32 if ctx.dtype == F64 else F64
    return None


def _act_kw(ctx):
    act = ctx.param("activation", P_ACTIVATION)
    kw = {"activation": act}
    params = _ACT_PARAMS.get(act, {}) if isinstance(act, str) else {}
    if params and ctx.choose("activation parameters?", [False, True, True]):
        kw.update(_params(ctx, params))
    if ctx.choose("a parameter the activation does not take?", [False] * 9 + [True]):
        name = "alpha" if act != "elu" else "negative_slope"
        kw[name] = 0.5
        ctx.must_raise(f"{name}= with activation={act!r}", TypeError)
    return act, kw


def _dense_shapes(ctx):
    """(x, weight, K, N): x of the drawn shape (..., K), weight (N, K) (N sometimes K, so
    that out= may alias x), sometimes of the wrong K (must raise)."""
    x = ctx.data(ctx.values(0))
    shp = shape_of(x)
    if not shp:
        ctx.must_raise("a 0-d x", ValueError)
    K = shp[-1] if shp else 3
    N = ctx.choose("out_features", [K if K <= 64 else 3, 3, 1, 0, 5, 16])
    Kw = K
    if ctx.choose("weight of the wrong in_features?", [False] * 9 + [True]):
        Kw = K + 1
        ctx.must_raise("weight of the wrong in_features", ValueError)
    w = ctx.data(ctx.values(1, (N, Kw)), dtype=_other_float(ctx), broadcast=False)
    return x, w, shp, N


def _dense_bias(ctx, N):
    how = ctx.choose("bias", ["ok", "ok", "none", "misaligned", "list", "ints", "wrong_shape", "2d"])
    if how == "none":
        return None
    if how == "wrong_shape":
        ctx.must_raise("bias of the wrong shape", ValueError)
        return ctx.data(ctx.values(2, (N + 1,)), broadcast=False)
    if how == "2d":
        ctx.must_raise("2-D bias", ValueError)
        return ctx.data(ctx.values(2, (1, N)), broadcast=False)
    if how == "ints":
        return np.arange(N) - 1
    b = ctx.data(ctx.values(2, (N,)), broadcast=False)
    if how in ("misaligned", "list") and isinstance(b, np.ndarray):
        b = apply_layout(np.ascontiguousarray(b), how)
    return b


def _saved_ok(r):
    return r is None or isinstance(r, np.ndarray)


def k_dense():
    def build(ctx):
        x, w, shp, N = _dense_shapes(ctx)
        b = _dense_bias(ctx, N)
        act, kw = _act_kw(ctx)
        dt = _layer_rdt(ctx, x, w, b)
        ys = shp[:-1] + (N,) if shp else None
        y = Arr(ys, dt, outable=True)
        if ctx.choose("return_saved", [False, False, True]):
            kw["return_saved"] = True
            # saved: y itself (sigmoid, tanh, elu), the pre-activation, or None (no activation)
            e = Tup((y, Pred(_saved_ok, "None or an array")))
            return Call([x, w, b], kw, e, out_like=(ys, dt) if ys else None, out_of=lambda r: r[0],
                        alias=(0,), cmp=("row", "row"))
        return Call([x, w, b], kw, y, out_like=(ys, dt) if ys else None, alias=(0,), cmp="row")
    return Spec("dense", build)


def _dense_saved(ctx, act, x, w, ys):
    how = ctx.choose("saved", ["values", "from_dense", "from_dense", "none", "wrong_shape"])
    if how == "none":
        if act is not None:
            ctx.must_raise(f"saved=None with activation={act!r}", ValueError)
        return None
    if how == "wrong_shape":
        if act is not None:
            ctx.must_raise("saved of the wrong shape", ValueError)
        return ctx.data(ctx.values(3, ys + (2,)), broadcast=False)
    if how == "from_dense" and isinstance(act, str) and act in _LAYER_ACTS:
        try:
            r = mlayers.dense(c_layout(x), c_layout(w), activation=act, return_saved=True)
            if isinstance(r, tuple) and r[1] is not None:
                return r[1]
        except (ValueError, TypeError):
            pass
    return ctx.data(ctx.values(3, ys), broadcast=False)


def c_layout(a):
    return np.array(a, copy=True, order="C", subok=False) if isinstance(a, np.ndarray) else a


def k_dense_backward():
    def build(ctx):
        x, w, shp, N = _dense_shapes(ctx)
        K = shape_of(w)[1] if len(shape_of(w)) == 2 else 0
        ys = shp[:-1] + (N,) if shp else (N,)
        gs = ys
        if ctx.choose("grad_output of the wrong shape?", [False] * 9 + [True]):
            gs = ys + (1,)
            ctx.must_raise("grad_output of the wrong shape", ValueError)
        g = ctx.data(ctx.values(4, gs), broadcast=False)
        act, kw = _act_kw(ctx)
        saved = _dense_saved(ctx, act, x, w, ys)
        if saved is not None:
            kw["saved"] = saved
        has_bias = ctx.param("has_bias", P([True, False, np.bool_(False)], [None, 0, "yes"]))
        needs = ctx.param("needs_input_grad", P([True, False], [None, 1, "no"]))
        kw.update(has_bias=has_bias, needs_input_grad=needs)
        dt = _layer_rdt(ctx, g, x, w, saved if act is not None else None)
        hb, ni = truth(has_bias), truth(needs)
        none = Pred(lambda r: r is None, "None")
        parts = (Arr(shp, dt) if ni else none if ni is False else Pred(lambda r: True),
                 Arr((N, K) if shp else None, dt),
                 Arr((N,), dt) if hb else none if hb is False else Pred(lambda r: True))
        return Call([g, x, w], kw, Tup(parts), cmp=("row", "row", "row"))
    return Spec("dense_backward", build)


def _indices(ctx, shape, V):
    """Indices of `shape` into V rows: any integer dtype and layout; sometimes out of
    range, huge, float or bool (must raise, bool may)."""
    if not ctx.fuzz:
        try:
            return ctx.labels(shape, V, None)
        except ValueError:          # a 2**60-element int64 view is too big for NumPy itself
            return np.broadcast_to(np.int32(0), shape)
    d = ctx.d
    mode = d.draw(st.sampled_from(["valid"] * 6 + ["oob_n", "oob_neg", "huge"]), label="indices")
    dt = np.dtype(d.draw(st.sampled_from(["i8"] * 3 + ["i4", "i2", "i1", "u1", "u2", "u4", "u8", ">i8",
                                                       "<u4", "?", "f8", "f4"]), label="indices dtype"))
    lay = d.draw(st.sampled_from(["C"] * 3 + ["F", "strided", "negstride", "readonly", "list",
                                              "misaligned", "permuted", "subclass", "scalar"]),
                 label="indices layout")
    size = int(np.prod(shape, dtype=np.int64))
    base = ctx.rng.integers(0, max(V, 1), size)

    def cast(v):                        # a Python int as dtype dt stores it
        if dt.kind == "u":
            return v % 2**(8 * dt.itemsize)
        if dt.kind == "i":
            return min(max(v, int(np.iinfo(dt).min)), int(np.iinfo(dt).max))
        return v

    if dt.kind in "iu":
        info = np.iinfo(dt)
        arr = np.clip(base, 0, min(int(info.max), 2**62)).astype(dt)
    else:
        arr = base.astype(dt)
    bad = False
    if size and mode != "valid":
        i = int(ctx.rng.integers(size))
        v = {"oob_n": V, "oob_neg": -1}.get(mode)
        if v is None:
            v = d.draw(st.sampled_from([2**62, -2**62, 2**63 + 5, 2**31]), label="huge index")
        v = cast(v)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            arr.reshape(-1)[i] = v if dt.kind in "iu" else float(v)
        bad = dt.kind in "iu" and not 0 <= v < V
    arr = arr.reshape(shape)
    if dt.kind == "f":
        ctx.must_raise("float indices", TypeError)
    elif dt.kind == "b":
        ctx.tainted = True
    elif bad:
        ctx.must_raise("an index outside [0, num_embeddings)", ValueError)
    if lay == "list" and size == 0:
        lay = "C"                     # [] is a float64 array
    return apply_layout(arr, lay)


def _padding_idx(ctx, V):
    return ctx.param("padding_idx", P([None, 0, -1, np.int64(V - 1)], [], [V, -V - 1, 1.5, "0", True]))


def k_embedding():
    def build(ctx):
        V = ctx.choose("num_embeddings", [5, 1, 2, 17, 300])
        D = ctx.choose("embedding_dim", [3, 1, 0, 8, 33])
        if ctx.big:
            D = 1                       # (up to 262147 indices)
        w = ctx.data(ctx.values(1, (V, D)), broadcast=False)
        shp = ctx.shape if ctx.fuzz or len(ctx.shape) < 2 else ctx.shape[:-1]
        idx = _indices(ctx, shp, V)
        kw = {"padding_idx": _padding_idx(ctx, V)}
        dt = rdt(w)
        os_ = tuple(shape_of(idx)) + (D,)
        return Call([idx, w], kw, Arr(os_, dt, outable=True), out_like=(os_, dt), alias=(1,), cmp="elem")
    return Spec("embedding", build)


def k_embedding_backward():
    def build(ctx):
        g = ctx.data(ctx.values(0))
        gs = shape_of(g)
        V = ctx.choose("num_embeddings", [5, 1, 2, 17, 300])
        if V * (gs[-1] if gs else 1) > 2_000_000:
            V = 2                       # keep the (V, D) result small
        ish = gs[:-1] if gs else ()
        if not gs:
            ctx.must_raise("0-d grad_output", ValueError)
        elif ctx.choose("indices of the wrong shape?", [False] * 9 + [True]):
            ish = ish + (2,)
            ctx.must_raise("indices of the wrong shape", ValueError)
        idx = _indices(ctx, ish, V)
        n = ctx.param("num_embeddings", P([V, np.int64(V), np.uint16(V)], [], [-1, 1.5, "5", True, None]))
        kw = {"padding_idx": _padding_idx(ctx, V)}
        dt = _layer_rdt(ctx, g)
        D = gs[-1] if gs else 0
        rs = (V, D) if gs and is_int(n) else None
        return Call([g, idx, n], kw, Arr(rs, dt, outable=True), out_like=(rs, dt) if rs else None,
                    alias=(0,), cmp="elem")
    return Spec("embedding_backward", build)


# --- convolutions: conv1d/conv2d and their backwards (docs/contract.rst "Layers")
def _conv_geom(nd, sp, ks, stride, padding, dilation):
    """Output size per axis, or None when the parameters are not all valid ints/strings
    (a must-raise choice), or "small" when the dilated kernel exceeds the padded input."""
    def tup(v):
        if isinstance(v, (tuple, list)):
            return tuple(v) if len(v) == nd and all(is_int(e) for e in v) else None
        return (v,) * nd if is_int(v) else None
    st, dil = tup(stride), tup(dilation)
    if st is None or dil is None or min(st) < 1 or min(dil) < 1:
        return None
    if padding == "valid":
        tot = (0,) * nd
    elif padding == "same":
        if max(st) > 1:
            return None
        tot = tuple(d * (k - 1) for d, k in zip(dil, ks))
    else:
        pd = tup(padding) if not isinstance(padding, str) else None
        if pd is None or min(pd) < 0:
            return None
        tot = tuple(2 * p for p in pd)
    outs = []
    for n, k, s, d, t in zip(sp, ks, st, dil, tot):
        if n + t < d * (k - 1) + 1:
            return "small"
        outs.append((n + t - d * (k - 1) - 1) // s + 1)
    return tuple(outs)


def _conv_call(ctx, nd, backward):
    """(args, kw, x shape, weight shape, output shape or None, C_out, dtype) of a conv call,
    sometimes of a wrong shape or parameter (must raise)."""
    N = ctx.choose("batch", [2, 1, 0, 3])
    G = ctx.choose("groups", [1, 2, 1, 3])
    Cg = ctx.choose("in_channels/groups", [2, 1, 3, 0])
    Og = ctx.choose("out_channels/groups", [2, 1, 3, 0])
    sp = tuple(ctx.choose(f"size{i}", [5, 4, 1, 7]) for i in range(nd))
    ks = tuple(ctx.choose(f"kernel{i}", [3, 1, 2]) for i in range(nd))
    last = ctx.choose("channels last", [False, True])
    names = ("NCL", "NLC") if nd == 1 else ("NCHW", "NHWC")
    ints = (2,) * nd
    stride = ctx.param("stride", P([1, 2, ints], [], [0, -1, 1.5, "1", True, (1,) * (nd + 1)]))
    padding = ctx.param("padding", P([0, 1, "same", "valid", ints], [],
                                     [-1, "full", 1.5, True, (0,) * (nd + 1)]))
    dilation = ctx.param("dilation", P([1, 2, ints], [], [0, 1.5, (1,) * (nd + 1)]))
    groups = ctx.param("groups", P([G, np.int64(G)], [], [0, -1, 1.5, True, "1"]))
    layout = ctx.param("layout", P([names[last]], [], [names[last].lower(), names[1 - last] + "X",
                                                        ("NHWC", "NCHW", "NLC", "NCL")[nd], None]))
    C, O = G * Cg, G * Og
    wrong = ctx.choose("wrong shape", [None] * 9 + ["weight_channels", "weight_ndim", "x_ndim",
                                                    "out_not_divisible"])
    xs = (N,) + sp + (C,) if last else (N, C) + sp
    ws = (O, Cg) + ks
    if wrong == "weight_channels":
        ws = (O, Cg + 1) + ks
    elif wrong == "weight_ndim":
        ws = ws + (1,)
    elif wrong == "x_ndim":
        xs = xs + (1,)
    elif wrong == "out_not_divisible" and G > 1:
        ws = (O + 1,) + ws[1:]
    else:
        wrong = None
    if wrong is not None:
        ctx.must_raise(f"{wrong} of the wrong shape", ValueError)
    unbatched = wrong is None and ctx.choose("unbatched x", [False] * 4 + [True])
    if unbatched:
        xs = xs[1:]
    geo = _conv_geom(nd, sp, ks, stride, padding, dilation)
    if isinstance(padding, str) and padding == "same" and geo is None \
            and isinstance(_conv_geom(nd, (10**6,) * nd, ks, stride, 0, dilation), tuple):
        ctx.must_raise("padding='same' with a stride above 1", ValueError)
    if geo == "small":
        ctx.must_raise("a dilated kernel larger than the padded input", ValueError)
    x = ctx.data(ctx.values(0, xs), broadcast=False)
    w = ctx.data(ctx.values(1, ws), dtype=_other_float(ctx), broadcast=False)
    ys = None
    if isinstance(geo, tuple):
        ys = (N,) + geo + (O,) if last else (N, O) + geo
        if unbatched:
            ys = ys[1:]
    kw = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups,
          "layout": layout}
    return x, w, kw, xs, ws, ys, O


def k_conv(nd):
    def build(ctx):
        x, w, kw, xs, ws, ys, O = _conv_call(ctx, nd, False)
        how = ctx.choose("bias", ["ok", "none", "ints", "wrong_shape"])
        b = None
        if how == "ok":
            b = ctx.data(ctx.values(2, (O,)), broadcast=False)
        elif how == "ints":
            b = np.arange(O) - 1
        elif how == "wrong_shape":
            ctx.must_raise("bias of the wrong shape", ValueError)
            b = ctx.data(ctx.values(2, (O + 1,)), broadcast=False)
        dt = _layer_rdt(ctx, x, w, b)
        return Call([x, w, b], kw, Arr(ys, dt, outable=True), out_like=(ys, dt) if ys else None,
                    alias=(0,), cmp="row")
    return Spec(f"conv{nd}d", build)


def k_conv_backward(nd):
    def build(ctx):
        x, w, kw, xs, ws, ys, O = _conv_call(ctx, nd, True)
        gs = ys if ys is not None else (2,) * (nd + 2)
        if ctx.choose("grad_output of the wrong shape?", [False] * 9 + [True]):
            gs = gs[:-1] + (gs[-1] + 1,)
            ctx.must_raise("grad_output of the wrong shape", ValueError)
        g = ctx.data(ctx.values(4, gs), dtype=_other_float(ctx), broadcast=False)
        has_bias = ctx.param("has_bias", P([True, False, np.bool_(False)], [None, 0, "yes"]))
        needs = ctx.param("needs_input_grad", P([True, False], [None, 1, "no"]))
        kw.update(has_bias=has_bias, needs_input_grad=needs)
        dt = _layer_rdt(ctx, g, x, w)
        hb, ni = truth(has_bias), truth(needs)
        none = Pred(lambda r: r is None, "None")
        parts = (Arr(xs, dt) if ni else none if ni is False else Pred(lambda r: True),
                 Arr(ws, dt),
                 Arr((O,), dt) if hb else none if hb is False else Pred(lambda r: True))
        return Call([g, x, w], kw, Tup(parts), cmp=("row", "row", "row"))
    return Spec(f"conv{nd}d_backward", build)
# --- pooling (issue 15): max_pool1d/2d, avg_pool1d/2d and their backwards
_POOL_LAYOUTS = {1: ("NCL", "NLC"), 2: ("NCHW", "NHWC")}


def _pool_out(L, k, s, p, d, ceil):
    """PyTorch's pooling output size; None when the call must raise (below 1, or a window
    with no input element)."""
    num = L + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil else 0)
    o = num // s + 1
    if ceil and (o - 1) * s >= L + p:
        o -= 1
    if L < 1 or o < 1:
        return None
    for j in range(o):
        start = j * s - p
        if start >= 0:
            break
        j0 = (-start + d - 1) // d
        if j0 >= k or start + j0 * d >= L:
            return None
    return o


def _pool_geometry(ctx, nsp, kind):
    """(x shape, output shape, kw, input_shape) of a pooling call: every argument drawn,
    the invalid ones registered as must-raise."""
    lay = ctx.param("layout", P(list(_POOL_LAYOUTS[nsp]), [], ["NC", "nchw"[:nsp + 2], None, 3]))
    last = lay == _POOL_LAYOUTS[nsp][1]
    N = ctx.choose("N", [2, 1, 0, None])          # None: unbatched
    C = ctx.choose("C", [3, 1, 4, 0, 17])
    sp = tuple(ctx.choose(f"size {i}", [5, 7, 1, 8, 2, 12]) for i in range(nsp))
    k = ctx.choose("kernel_size", [2, 3, 1, (2, 3)[:nsp], (1,), 4])
    st_ = ctx.choose("stride", [None, 1, 2, (1, 2)[:nsp], 3])
    pd = ctx.choose("padding", [0, 1, (1, 0)[:nsp], 2])
    kw = {"kernel_size": k, "stride": st_, "padding": pd}
    dil = 1
    if kind == "max":
        dil = ctx.choose("dilation", [1, 2, (1, 2)[:nsp]])
        kw["dilation"] = dil
    kw["ceil_mode"] = ctx.param("ceil_mode", P([False, True, np.bool_(True)], [None, 0, 1, "yes"]))
    if kind == "avg":
        kw["count_include_pad"] = ctx.param("count_include_pad", P([True, False], [None, 0, 1]))
    kw["layout"] = lay
    if ctx.choose("a bad kernel_size/stride/padding?", [False] * 9 + [True]):
        which, bad = ctx.choose("bad geometry", [("kernel_size", 0), ("stride", 0), ("padding", -1),
                                                 ("kernel_size", 1.5), ("kernel_size", (2, 2, 2)),
                                                 ("padding", "1")])
        kw[which] = bad
        ctx.must_raise(f"{which}={bad!r}")

    def tup(v, dflt):
        v = dflt if v is None else v
        v = tuple(v) if isinstance(v, tuple) else (v,)
        return v * nsp if len(v) == 1 else v

    ks, ss, ps, ds = tup(k, None), tup(st_, k), tup(pd, None), tup(dil, None)
    bad = lay not in _POOL_LAYOUTS[nsp] or truth(kw["ceil_mode"]) is None
    osp = None
    if not bad and all(isinstance(v, tuple) and len(v) == nsp for v in (ks, ss, ps, ds)):
        if any(2 * ps[i] > ks[i] for i in range(nsp)):
            ctx.must_raise(f"padding {ps} above half the kernel {ks}", ValueError)
        else:
            outs = [_pool_out(sp[i], ks[i], ss[i], ps[i], ds[i], bool(truth(kw["ceil_mode"])))
                    for i in range(nsp)]
            if None in outs:
                ctx.must_raise(f"input {sp} too small for kernel {ks} / dilation {ds}", ValueError)
            else:
                osp = tuple(outs)

    def arr_shape(spatial):
        s_ = (N if N is not None else 1,) + tuple(spatial) + (C,) if last else \
             (N if N is not None else 1, C) + tuple(spatial)
        return s_ if N is not None else s_[1:]

    xs = arr_shape(sp)
    return xs, (arr_shape(osp) if osp is not None else None), kw, last


def k_pool(kind, nsp):
    fname = f"{kind}_pool{nsp}d"

    def build(ctx):
        xs, os_, kw, _ = _pool_geometry(ctx, nsp, kind)
        if ctx.choose("x of the wrong ndim?", [False] * 9 + [True]):
            xs = xs[-nsp:]
            ctx.must_raise("x without its channel axis", ValueError)
            os_ = None
        x = ctx.data(ctx.values(0, xs), broadcast=False)
        dt = _layer_rdt(ctx, x)
        if kind == "max":
            ri = ctx.param("return_indices", P([False, True], [None, 0, 1, "yes"]))
            kw["return_indices"] = ri
            if truth(ri) is True:
                e = Tup((Arr(os_, dt, outable=True), Arr(os_, I64)))
                return Call([x], kw, e, out_like=(os_, dt) if os_ else None, out_of=lambda r: r[0],
                            cmp=("elem", "argmax"))
        return Call([x], kw, Arr(os_, dt, outable=True), out_like=(os_, dt) if os_ else None, cmp="elem")
    return Spec(fname, build)


def k_pool_backward(kind, nsp):
    fname = f"{kind}_pool{nsp}d_backward"

    def build(ctx):
        if kind == "max":       # the geometry does not enter: only the layout, the sizes, the indices
            lay = ctx.param("layout", P(list(_POOL_LAYOUTS[nsp]), [], ["NC", None, 3]))
            last = lay == _POOL_LAYOUTS[nsp][1]
            N, C = ctx.choose("N", [2, 1, 0]), ctx.choose("C", [3, 1, 0, 17])
            sp = tuple(ctx.choose(f"size {i}", [5, 1, 8]) for i in range(nsp))
            osp = tuple(ctx.choose(f"out size {i}", [3, 1, 0, 9]) for i in range(nsp))
            xs = (N,) + sp + (C,) if last else (N, C) + sp
            os_ = (N,) + osp + (C,) if last else (N, C) + osp
            kw = {"layout": lay}
        else:
            xs, os_, kw, last = _pool_geometry(ctx, nsp, kind)
        gs = os_ if os_ is not None else xs
        if ctx.choose("grad_output of the wrong shape?", [False] * 9 + [True]):
            gs = gs[:-1] + (gs[-1] + 1,)
            if kind == "avg":
                ctx.must_raise("grad_output of the wrong shape", ValueError)
            elif last:
                ctx.must_raise("grad_output of the wrong channel count", ValueError)
        g = ctx.data(ctx.values(1, gs), broadcast=False)
        ishape = ctx.param("input_shape", P([xs, list(xs)], [], [xs[1:] if len(xs) > nsp + 1 else xs + (2, 2),
                                                                 "shape", None]))
        dt = _layer_rdt(ctx, g)
        if kind == "max":
            V = int(np.prod(xs[-nsp - 1:-1] if last else xs[-nsp:], dtype=np.int64))
            idx = _indices(ctx, gs, V)
            return Call([g, idx, ishape], kw, Arr(xs, dt), cmp="elem")
        return Call([g, ishape], kw, Arr(xs, dt), cmp="elem")
    return Spec(fname, build)


# --- locally connected (issue 15): locally_connected1d/2d and their backwards
def _lc_geometry(ctx, nsp):
    """(x, weight, bias, output shape, kw): valid shapes, sometimes a wrong one (must raise)."""
    lay = ctx.param("layout", P(list(_POOL_LAYOUTS[nsp]), [], ["NC", None, 3]))
    last = lay == _POOL_LAYOUTS[nsp][1]
    N, C, Co = ctx.choose("N", [2, 1, 0, 3]), ctx.choose("C_in", [3, 1, 0, 4]), ctx.choose("C_out", [2, 1, 0, 5])
    sp = tuple(ctx.choose(f"size {i}", [5, 4, 1, 7]) for i in range(nsp))
    ks = tuple(min(ctx.choose(f"kernel {i}", [2, 1, 3]), sp[i]) for i in range(nsp))
    stv = ctx.param("stride", P([1, 2, (2,), (1, 2)[:nsp]], [], [0, -1, 1.5, "1", (1, 1, 1)]))
    st_ = (stv,) * nsp if is_int(stv) else tuple(stv) * (nsp if len(tuple(stv)) == 1 else 1) \
        if isinstance(stv, tuple) else None
    if st_ is None or len(st_) != nsp or not all(is_int(v) and v >= 1 for v in st_):
        st_ = (1,) * nsp                   # (must raise anyway)
    osp = tuple((sp[i] - ks[i]) // st_[i] + 1 for i in range(nsp))
    wos = osp
    if ctx.choose("weight of the wrong output size?", [False] * 9 + [True]):
        wos = (osp[0] + 1,) + osp[1:]
        ctx.must_raise("weight whose output size does not match the input", ValueError)
    Cw = C
    if ctx.choose("weight of the wrong C_in?", [False] * 9 + [True]):
        Cw = C + 1
        ctx.must_raise("weight of the wrong in-channels", ValueError)
    xs = (N,) + sp + (C,) if last else (N, C) + sp
    x = ctx.data(ctx.values(0, xs), broadcast=False)
    w = ctx.data(ctx.values(1, wos + (Co, Cw) + ks), dtype=_other_float(ctx), broadcast=False)
    os_ = (N,) + osp + (Co,) if last else (N, Co) + osp
    return x, w, wos + (Co,), os_, {"stride": stv, "layout": lay}


def k_lc(nsp):
    def build(ctx):
        x, w, bshape, os_, kw = _lc_geometry(ctx, nsp)
        how = ctx.choose("bias", ["ok", "none", "wrong_shape"])
        b = None
        if how == "ok":
            b = ctx.data(ctx.values(2, bshape), broadcast=False)
        elif how == "wrong_shape":
            b = ctx.data(ctx.values(2, bshape[:-1] + (bshape[-1] + 1,)), broadcast=False)
            ctx.must_raise("bias of the wrong shape", ValueError)
        dt = _layer_rdt(ctx, x, w, b)
        return Call([x, w, b], kw, Arr(os_, dt, outable=True), out_like=(os_, dt), cmp="row")
    return Spec(f"locally_connected{nsp}d", build)


def k_lc_backward(nsp):
    def build(ctx):
        x, w, _, os_, kw = _lc_geometry(ctx, nsp)
        gs = os_
        if ctx.choose("grad_output of the wrong shape?", [False] * 9 + [True]):
            gs = os_[:-1] + (os_[-1] + 1,)
            ctx.must_raise("grad_output of the wrong shape", ValueError)
        g = ctx.data(ctx.values(3, gs), broadcast=False)
        has_bias = ctx.param("has_bias", P([True, False, np.bool_(False)], [None, 0, "yes"]))
        needs = ctx.param("needs_input_grad", P([True, False], [None, 1, "no"]))
        kw.update(has_bias=has_bias, needs_input_grad=needs)
        dt = _layer_rdt(ctx, g, x, w)
        hb, ni = truth(has_bias), truth(needs)
        none = Pred(lambda r: r is None, "None")
        ws = shape_of(w)
        parts = (Arr(shape_of(x), dt) if ni else none if ni is False else Pred(lambda r: True),
                 Arr(ws, dt),
                 Arr(ws[:nsp + 1], dt) if hb else none if hb is False else Pred(lambda r: True))
        return Call([g, x, w], kw, Tup(parts), cmp=("row", "row", "row"))
    return Spec(f"locally_connected{nsp}d_backward", build)


# --- recurrent layers: rnn/lstm/gru, their cells and backwards (docs/contract.rst "Layers")
_REC_GATES = {"rnn": 1, "lstm": 4, "gru": 3}
P_NONLIN = P(["tanh", "relu"], [], ["TANH", "sigmoid", "", None, 3, ["tanh"]])
P_BATCH_FIRST = P([False, True, np.bool_(True)], [None, 0, 1, "yes"])


def _rec_dims(ctx, seq):
    """(T, N, I, H): small sizes, 0 included (T = 0 must raise)."""
    T = ctx.choose("seq_len", [3, 1, 2, 5, 0]) if seq else 1
    N = ctx.choose("batch", [2, 1, 3, 0, 4])
    I = ctx.choose("input_size", [4, 1, 3, 0, 7])
    H = ctx.choose("hidden_size", [3, 1, 2, 0, 5])
    return T, N, I, H


def _rec_opt(ctx, name, k, shape, force=False, dtype=None):
    """An optional array argument: None or an array of `shape`."""
    if not force and ctx.choose(name, ["array", "none"]) == "none":
        return None
    return ctx.data(ctx.values(k, shape), dtype=dtype, broadcast=False)


def _rec_inputs(ctx, kind, seq):
    """(args, kw, T, N, I, H, batch_first): a forward call of rnn/lstm/gru (seq) or of
    their cell, sometimes of one wrong shape (must raise ValueError)."""
    G = _REC_GATES[kind]
    T, N, I, H = _rec_dims(ctx, seq)
    kw = {}
    bf = False
    if seq:
        bf = ctx.param("batch_first", P_BATCH_FIRST)
        kw["batch_first"] = bf
        bf = bool(truth(bf))
        if T == 0:
            ctx.must_raise("a sequence of length 0", ValueError)
    if kind == "rnn":
        kw["nonlinearity"] = ctx.param("nonlinearity", P_NONLIN)
    wrong = ctx.choose("wrong shape", [None] * 9 + ["x_I", "x_ndim", "w_hh", "w_ih", "b_ih", "b_hh",
                                                    "h0"] + (["c0"] if kind == "lstm" else []))
    if wrong is not None:
        ctx.must_raise(f"{wrong} of the wrong shape", ValueError)
    Ix = I + 1 if wrong == "x_I" else I
    xs = ((N, T, Ix) if bf else (T, N, Ix)) if seq else (N, Ix)
    if wrong == "x_ndim":
        xs = (T * N, Ix) if seq else (1, N, Ix)
    x = ctx.data(ctx.values(0, xs), broadcast=False)
    hs_ = (N + 1, H) if wrong == "h0" else (N, H)
    h0 = _rec_opt(ctx, "h0", 1, hs_, force=wrong == "h0")
    c0 = None
    if kind == "lstm":
        c0 = _rec_opt(ctx, "c0", 2, (N + 1, H) if wrong == "c0" else (N, H), force=wrong == "c0")
    w_ih = ctx.data(ctx.values(3, (G * H + (wrong == "w_ih"), I)), broadcast=False)
    w_hh = ctx.data(ctx.values(4, (G * H + (wrong == "w_hh"), H)), dtype=_other_float(ctx), broadcast=False)
    b_ih = _rec_opt(ctx, "b_ih", 5, (G * H + (wrong == "b_ih"),), force=wrong == "b_ih")
    b_hh = _rec_opt(ctx, "b_hh", 6, (G * H + (wrong == "b_hh"),), force=wrong == "b_hh")
    args = [x, h0] + ([c0] if kind == "lstm" else []) + [w_ih, w_hh, b_ih, b_hh]
    return args, kw, T, N, I, H, bf


def _is_saved(r):
    return isinstance(r, mlayers.RecurrentSaved)


def k_recurrent(kind):
    """rnn/lstm/gru(x, h0[, c0], w_ih, w_hh, b_ih, b_hh, batch_first=, return_saved=)."""
    def build(ctx):
        args, kw, T, N, I, H, bf = _rec_inputs(ctx, kind, True)
        dt = _layer_rdt(ctx, *args)
        out = Arr((N, T, H) if bf else (T, N, H), dt)
        hn = Arr((N, H), dt)
        parts, cmp = [out, Tup((hn, hn)) if kind == "lstm" else hn], ["row", ("row", "row") if kind == "lstm"
                                                                        else "row"]
        if ctx.choose("return_saved", [False, True]):
            kw["return_saved"] = True
            parts.append(Pred(_is_saved, "a RecurrentSaved"))
            cmp.append("skip")
        return Call(args, kw, Tup(tuple(parts)), cmp=tuple(cmp))
    return Spec(kind, build)


def k_cell(kind):
    """rnn_cell/lstm_cell/gru_cell(x, h[, c], w_ih, w_hh, b_ih, b_hh)."""
    def build(ctx):
        args, kw, T, N, I, H, bf = _rec_inputs(ctx, kind, False)
        dt = _layer_rdt(ctx, *args)
        h = Arr((N, H), dt)
        if kind == "lstm":
            return Call(args, kw, Tup((h, h)), cmp=("row", "row"))
        return Call(args, kw, h, cmp="row")
    return Spec(kind + "_cell", build)


def _saved_arrays(s):
    return [getattr(s, n) for n in s.__slots__ if isinstance(getattr(s, n, None), np.ndarray)]


def _values_of(a):
    return (a.shape, a.dtype.str, a.tobytes())


def _run_rec_backward(fn, *args):
    """The backward, checking that it leaves `saved` (the last argument) untouched."""
    s = args[-1]
    before = [_values_of(a) for a in _saved_arrays(s)] if _is_saved(s) else []
    r = fn(*args)
    if before:
        assert [_values_of(a) for a in _saved_arrays(s)] == before, "the backward modified saved"
    return r


def k_recurrent_backward(kind):
    """rnn/gru_backward(grad_output, grad_h_n, saved), lstm_backward(grad_output,
    grad_h_n, grad_c_n, saved): saved from a valid forward with return_saved=True,
    the incoming gradients None or arrays (sometimes of the wrong shape or of the
    other float dtype: must raise), sometimes a wrong saved (TypeError)."""
    G = _REC_GATES[kind]

    def build(ctx):
        T = ctx.choose("seq_len", [3, 1, 2, 5])
        _, N, I, H = _rec_dims(ctx, False)
        fdt = ctx.dtype if ctx.dtype in (F64, F32, F16) else F64
        bf = ctx.choose("batch_first", [False, True])
        rng = np.random.default_rng(int(ctx.rng.integers(2**32)))

        def arr(*shape):
            return rng.standard_normal(shape).astype(fdt)

        def opt(name, *shape):
            return arr(*shape) if ctx.choose(name, ["array", "none"]) == "array" else None

        h0 = opt("forward h0", N, H)
        fargs = [arr(*((N, T, I) if bf else (T, N, I))), h0]
        if kind == "lstm":
            c0 = opt("forward c0", N, H)
            fargs.append(c0)
        fargs += [arr(G * H, I), arr(G * H, H), opt("forward b_ih", G * H), opt("forward b_hh", G * H)]
        fkw = {"batch_first": bf, "return_saved": True}
        if kind == "rnn":
            fkw["nonlinearity"] = ctx.choose("forward nonlinearity", ["tanh", "relu"])
        fwd = getattr(mlayers, kind)
        saved = fwd(*fargs, **fkw)[-1]
        how = ctx.choose("saved", ["ok"] * 8 + ["other_kind", "array", "none"])
        if how != "ok":
            ctx.must_raise(f"saved: {how}", TypeError)
            if how == "other_kind":
                other = "gru" if kind != "gru" else "rnn"
                og = _REC_GATES[other]
                saved = getattr(mlayers, other)(fargs[0], None, arr(og * H, I), arr(og * H, H),
                                                batch_first=bf, return_saved=True)[-1]
            else:
                saved = None if how == "none" else arr(T, N, H)
        seq = (N, T, H) if bf else (T, N, H)
        names = ["grad_output", "grad_h_n"] + (["grad_c_n"] if kind == "lstm" else [])
        wrong = ctx.choose("wrong shape", [None] * 9 + names)
        if wrong is not None:
            ctx.must_raise(f"{wrong} of the wrong shape", ValueError)
        grads = []
        for k, n in enumerate(names):
            shp = seq if n == "grad_output" else (N, H)
            if n == wrong:
                shp = shp + (1,) if k else shp[:-1] + (H + 1,)
            grads.append(_rec_opt(ctx, n, 7 + k, shp, force=n == wrong,
                                  dtype=_other_float(ctx) if k == 0 else None))
        dt = _layer_rdt(ctx, *grads, np.empty(0, fdt))
        none = Pred(lambda r: r is None, "None")

        def opt_arr(present, shape):
            return Arr(shape, dt) if present else none
        parts = [Arr((N, T, I) if bf else (T, N, I), dt), opt_arr(h0 is not None, (N, H))]
        if kind == "lstm":
            parts.append(opt_arr(c0 is not None, (N, H)))
        parts += [Arr((G * H, I), dt), Arr((G * H, H), dt), opt_arr(fargs[-2] is not None, (G * H,)),
                  opt_arr(fargs[-1] is not None, (G * H,))]
        return Call(grads + [saved], {}, Tup(tuple(parts)), cmp=("row",) * len(parts),
                    fn=_run_rec_backward)
    return Spec(kind + "_backward", build)


# --- models (mlkern.nn): the classes, each built from fuzzed constructor arguments and run
# through inference, a training forward and a backward (docs/contract.rst "Models")
_NN_DTYPES_OK = (F32, F64)


def _nn_dtype(ctx):
    """The model's dtype= : mostly the drawn float dtype; anything but native float32/float64
    must raise TypeError (the constructor)."""
    mdt = ctx.float_dtype()
    if mdt not in _NN_DTYPES_OK:
        ctx.must_raise(f"dtype={mdt}", TypeError)
        return mdt, None
    return mdt, mdt


def _run_nn(cls, x, g, *ctor, hx=None, **ctor_kw):
    """Build the layer, run inference twice (the second warm), a training forward and a
    backward: (inference output, input gradient)."""
    layer = cls(*ctor, **ctor_kw)
    a = (x,) if hx is None else (x, hx)
    layer(*a)
    y = layer(*a)
    layer.forward(*a, training=True)
    return y, layer.backward(g)


def _nn_grad(ctx, shape, mdt):
    return ctx.data(ctx.values(1, shape), dtype=mdt if mdt in _NN_DTYPES_OK else F64, broadcast=False)


def k_nn_dense():
    def build(ctx):
        x = ctx.data(ctx.values(0))
        shp = shape_of(x)
        if not shp:
            ctx.must_raise("a 0-d x", ValueError)
        K = shp[-1] if shp else 3
        Km = K
        if ctx.choose("in_features differs from x's?", [False] * 9 + [True]):
            Km = K + 1
            ctx.must_raise("x of the wrong number of features", ValueError)
        N = ctx.choose("out_features", [3, 1, 0, 5])
        mdt, ok = _nn_dtype(ctx)
        act = ctx.param("activation", P_ACTIVATION)
        kw = {"activation": act, "bias": ctx.param("bias", P_BOOL), "dtype": mdt, "seed": 0}
        dt = _layer_rdt(ctx, x, np.empty(0, ok)) if ok is not None else None
        ys = shp[:-1] + (N,) if shp else None
        g = _nn_grad(ctx, ys or (N,), mdt)
        return Call([x, g, Km, N], kw, Tup((Arr(ys, dt), Arr(shp, dt))), cmp=("row", "row"),
                    fn=_run_nn)
    return Spec("nn", build)


def k_nn_embedding():
    def build(ctx):
        V = ctx.choose("num_embeddings", [5, 1, 2, 17])
        D = 1 if ctx.big else ctx.choose("embedding_dim", [3, 1, 0, 8])
        shp = ctx.shape if ctx.fuzz or len(ctx.shape) < 2 else ctx.shape[:-1]
        idx = _indices(ctx, shp, V)
        mdt, ok = _nn_dtype(ctx)
        kw = {"padding_idx": _padding_idx(ctx, V), "dtype": mdt, "seed": 0}
        ys = tuple(shape_of(idx)) + (D,)
        g = _nn_grad(ctx, ys, mdt)
        return Call([idx, g, V, D], kw, Tup((Arr(ys, ok), Pred(lambda r: r is None, "None"))),
                    cmp=("elem", "skip"), fn=_run_nn)
    return Spec("nn", build)


P_NN_ACT = P(_LAYER_ACTS, [], ["prelu", "noisy_relu", "junk", "", None, 3])


def k_nn_activation():
    def build(ctx):
        x = ctx.data(ctx.values(0))
        shp, dt = shape_of(x), rdt(x)
        name = ctx.param("name", P_NN_ACT)
        g = ctx.data(ctx.values(1, shp) if not ctx.big else ctx.values(1), broadcast=not ctx.big)
        gdt = promote(rdt(g), dt)
        return Call([x, g, name], {}, Tup((Arr(shp, dt), Arr(shp, gdt))), cmp=("elem", "elem"),
                    fn=_run_nn)
    return Spec("nn", build)


def k_nn_flatten():
    def build(ctx):
        dt = ctx.dtype if ctx.dtype.kind in "fiub" else F64
        x = ctx.data(ctx.values(0), dtype=dt)
        shp = shape_of(x)
        xdt = np.asarray(x).dtype
        sd = ctx.param("start_dim", P([1, 0, -1, np.int64(2)], [], [1.5, "1", None, True]))
        ys = None
        if is_int(sd):
            nd = len(shp)
            s = int(sd) + nd if int(sd) < 0 else int(sd)
            if not 0 <= s < max(nd, 1):
                ctx.must_raise(f"start_dim={sd} for {nd} dimensions", ValueError)
            else:
                ys = shp[:s] + (int(np.prod(shp[s:], dtype=np.int64)),) if nd else (1,)
        g = ctx.data(ctx.values(1, ys or (1,)), dtype=F64, broadcast=False)
        return Call([x, g, sd], {}, Tup((Arr(ys, xdt), Arr(shp, F64))), cmp=("elem", "elem"),
                    fn=_run_nn)
    return Spec("nn", build)


def k_nn_recurrent(kind):
    """SimpleRNN/LSTM/GRU(input_size, hidden_size, ...) on a (T, N, I) sequence, with or
    without hx; return_sequences either way."""
    def build(ctx):
        T, N, I, H = _rec_dims(ctx, True)
        kw = {}
        bf = ctx.param("batch_first", P_BATCH_FIRST)
        kw["batch_first"] = bf
        bf = bool(truth(bf))
        if T == 0:
            ctx.must_raise("a sequence of length 0", ValueError)
        if kind == "rnn":
            kw["nonlinearity"] = ctx.param("nonlinearity", P_NONLIN)
        rs = ctx.param("return_sequences", P_BOOL)
        kw.update(return_sequences=rs, bias=ctx.param("bias", P_BOOL))
        mdt, ok = _nn_dtype(ctx)
        kw.update(dtype=mdt, seed=0)
        wrong = ctx.choose("wrong shape", [None] * 9 + ["x_I", "x_ndim", "hx"])
        if wrong is not None:
            ctx.must_raise(f"{wrong} of the wrong shape", ValueError)
        Ix = I + 1 if wrong == "x_I" else I
        xs = (N, T, Ix) if bf else (T, N, Ix)
        if wrong == "x_ndim":
            xs = (T * N, Ix)
        x = ctx.data(ctx.values(0, xs), broadcast=False)
        hx = None
        if wrong == "hx" or ctx.choose("hx", ["none", "array"]) == "array":
            hs = (N + (wrong == "hx"), H)
            h0 = ctx.data(ctx.values(2, hs), dtype=ok or F64, broadcast=False)
            hx = (h0, ctx.data(ctx.values(3, hs), dtype=ok or F64, broadcast=False)) if kind == "lstm" else h0
            kw["hx"] = hx
        dt = _layer_rdt(ctx, x, np.empty(0, ok)) if ok is not None else None
        ys = ((N, T, H) if bf else (T, N, H)) if truth(rs) else (N, H)
        g = _nn_grad(ctx, ys, mdt)
        return Call([x, g, I, H], kw, Tup((Arr(ys, dt), Arr(xs, dt))), cmp=("row", "row"),
                    fn=_run_nn)
    return Spec("nn", build)


def k_nn_conv(nd):
    """Conv1D/Conv2D(in_channels, out_channels, kernel_size, stride=, padding=, dilation=,
    groups=, bias=, activation=, layout=) on a batch, sometimes of wrong arguments."""
    names = ("NCL", "NLC") if nd == 1 else ("NCHW", "NHWC")
    ints = (2,) * nd

    def build(ctx):
        N = ctx.choose("batch", [2, 1, 0, 3])
        G = ctx.choose("groups", [1, 2, 1, 3])
        Cg = ctx.choose("in_channels/groups", [2, 1, 3, 0])
        Og = ctx.choose("out_channels/groups", [2, 1, 3, 0])
        sp = tuple(ctx.choose(f"size{i}", [5, 4, 1, 7]) for i in range(nd))
        ks = tuple(ctx.choose(f"kernel{i}", [3, 1, 2]) for i in range(nd))
        last = ctx.choose("channels last", [False, True])
        kernel = ctx.param("kernel_size", P([ks if nd > 1 else ks[0], ks], [],
                                            [0, -1, 1.5, "3", None, (1,) * (nd + 1)]))
        stride = ctx.param("stride", P([1, 2, ints], [], [0, -1, 1.5, "1", True, (1,) * (nd + 1)]))
        padding = ctx.param("padding", P([0, 1, "same", "valid", ints], [],
                                         [-1, "full", 1.5, True, (0,) * (nd + 1)]))
        dilation = ctx.param("dilation", P([1, 2, ints], [], [0, 1.5, (1,) * (nd + 1)]))
        groups = ctx.param("groups", P([G, np.int64(G)], [], [0, -1, 1.5, True, "1"]))
        layout = ctx.param("layout", P([names[last]], [], [names[last].lower(), names[1 - last] + "X",
                                                           ("NHWC", "NCHW", "NLC", "NCL")[nd], None]))
        C, O = G * Cg, G * Og
        Cx = C
        if ctx.choose("x of other in_channels?", [False] * 9 + [True]):
            Cx = C + 1
            ctx.must_raise("x with other in_channels than the layer's", ValueError)
        xs = (N,) + sp + (Cx,) if last else (N, Cx) + sp
        geo = _conv_geom(nd, sp, ks, stride, padding, dilation)
        if isinstance(padding, str) and padding == "same" and geo is None \
                and isinstance(_conv_geom(nd, (10**6,) * nd, ks, stride, 0, dilation), tuple):
            ctx.must_raise("padding='same' with a stride above 1", ValueError)
        if geo == "small":
            ctx.must_raise("a dilated kernel larger than the padded input", ValueError)
        x = ctx.data(ctx.values(0, xs), broadcast=False)
        mdt, ok = _nn_dtype(ctx)
        act = ctx.param("activation", P_ACTIVATION)
        kw = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups,
              "layout": layout, "activation": act, "bias": ctx.param("bias", P_BOOL), "dtype": mdt,
              "seed": 0}
        ys = None
        if isinstance(geo, tuple):
            ys = (N,) + geo + (O,) if last else (N, O) + geo
        dt = _layer_rdt(ctx, x, np.empty(0, ok)) if ok is not None else None
        g = _nn_grad(ctx, ys or (1,), mdt)
        return Call([x, g, C, O, kernel], kw, Tup((Arr(ys, dt), Arr(xs, dt))), cmp=("row", "row"),
                    fn=_run_nn)
    return Spec("nn", build)


def k_nn_pool(kind, nsp):
    """MaxPool1D/2D, AvgPool1D/2D(kernel_size, stride, padding[, dilation], ceil_mode=
    [, count_include_pad=], layout=) on an input (batched or not)."""
    def build(ctx):
        xs, os_, kw, _ = _pool_geometry(ctx, nsp, kind)
        if ctx.choose("x of the wrong ndim?", [False] * 9 + [True]):
            xs = xs[-nsp:]
            ctx.must_raise("x without its channel axis", ValueError)
            os_ = None
        x = ctx.data(ctx.values(0, xs), broadcast=False)
        g = ctx.data(ctx.values(1, os_ or (1,)), broadcast=False)
        ctor = [kw.pop("kernel_size"), kw.pop("stride"), kw.pop("padding")]
        if kind == "max":
            ctor.append(kw.pop("dilation"))
        return Call([x, g] + ctor, kw, Tup((Arr(os_, _layer_rdt(ctx, x)), Arr(xs, _layer_rdt(ctx, g)))),
                    cmp=("elem", "elem"), fn=_run_nn)
    return Spec("nn", build)


def k_nn_locally_connected(nsp):
    """LocallyConnected1D/2D(in_channels, out_channels, kernel_size, input_length / input_shape,
    stride=, bias=, layout=) on a batch, sometimes of another size or channel count."""
    def build(ctx):
        lay = ctx.param("layout", P(list(_POOL_LAYOUTS[nsp]), [], ["NC", None, 3]))
        last = lay == _POOL_LAYOUTS[nsp][1]
        N, C, Co = ctx.choose("N", [2, 1, 0, 3]), ctx.choose("C_in", [3, 1, 0, 4]), ctx.choose("C_out", [2, 1, 0, 5])
        sp = tuple(ctx.choose(f"size {i}", [5, 4, 1, 7]) for i in range(nsp))
        ks = tuple(min(ctx.choose(f"kernel {i}", [2, 1, 3]), sp[i]) for i in range(nsp))
        st_ = tuple(ctx.choose(f"stride {i}", [1, 2]) for i in range(nsp))
        stride = ctx.param("stride", P([st_[0] if nsp == 1 else st_, st_], [],
                                       [0, -1, 1.5, "1", (1,) * (nsp + 1)]))
        kernel = ctx.param("kernel_size", P([ks[0] if nsp == 1 else ks, ks], [],
                                            [0, 1.5, None, tuple(n + 1 for n in sp)]))
        osp = tuple((sp[i] - ks[i]) // st_[i] + 1 for i in range(nsp))
        xsp, xc = sp, C
        if ctx.choose("x of another size?", [False] * 9 + [True]):
            xsp = (sp[0] + 1,) + sp[1:]
            ctx.must_raise("x of another spatial size than the layer's", ValueError)
        elif ctx.choose("x of other in_channels?", [False] * 9 + [True]):
            xc = C + 1
            ctx.must_raise("x with other in_channels than the layer's", ValueError)
        xs = (N,) + xsp + (xc,) if last else (N, xc) + xsp
        x = ctx.data(ctx.values(0, xs), broadcast=False)
        mdt, ok = _nn_dtype(ctx)
        kw = {"stride": stride, "bias": ctx.param("bias", P_BOOL), "layout": lay, "dtype": mdt, "seed": 0}
        os_ = (N,) + osp + (Co,) if last else (N, Co) + osp
        dt = _layer_rdt(ctx, x, np.empty(0, ok)) if ok is not None else None
        g = _nn_grad(ctx, os_, mdt)
        return Call([x, g, C, Co, kernel, sp[0] if nsp == 1 else sp], kw,
                    Tup((Arr(os_, dt), Arr(xs, dt))), cmp=("row", "row"), fn=_run_nn)
    return Spec("nn", build)


def _run_sequential(cls, x, g, K, *, dtype, act):
    model = cls(mnn.Dense(K, 4, dtype=dtype, seed=0), mnn.Activation(act),
                mnn.Dense(4, 3, activation="tanh", dtype=dtype, seed=1), mnn.Flatten(-1))
    model(x)
    y = model(x)                                  # warm: the workspaces reused
    model.forward(x, training=True)
    return y, model.backward(g)


def k_nn_sequential():
    def build(ctx):
        x = ctx.data(ctx.values(0))
        shp = shape_of(x)
        if not shp:
            ctx.must_raise("a 0-d x", ValueError)
        K = shp[-1] if shp else 3
        mdt, ok = _nn_dtype(ctx)
        act = ctx.param("activation", P_NN_ACT)
        dt = _layer_rdt(ctx, x, np.empty(0, ok)) if ok is not None else None
        ys = shp[:-1] + (3,) if shp else None
        g = _nn_grad(ctx, ys or (3,), mdt)
        return Call([x, g, K], {"dtype": mdt, "act": act}, Tup((Arr(ys, dt), Arr(shp, dt))),
                    cmp=("row", "row"), fn=_run_sequential)
    return Spec("nn", build)


def _run_layer_base(cls, x):
    """The base class: no parameters, an empty state dict; forward is the subclasses' and
    backward needs a training forward."""
    layer = cls()
    assert layer.parameters() == [] and layer.gradients() == [] and layer.state_dict() == {}
    layer.load_state_dict({})
    for f, exc in ((layer, NotImplementedError), (layer.backward, RuntimeError)):
        try:
            f(x)
        except exc:
            pass
        else:  # pragma: no cover
            raise AssertionError(f"Layer: {f} did not raise {exc.__name__}")
    return x


def k_nn_layer_base():
    def build(ctx):
        x = ctx.data(ctx.values(0), dtype=F64)      # any input: the base class computes nothing
        return Call([x], {}, Is(x), fn=_run_layer_base)
    return Spec("nn_base", build)


# =============================================================================
# the registry: one line per public function
# =============================================================================
REGISTRY = {
    # --- configuration
    "get_num_threads": k_config("get"),
    "set_num_threads": k_config("set"),
    "threads": k_config("threads"),
    "show_config": k_config("show"),
    # --- activations: f(x), f_grad(x), f_backward(grad_output, saved)
    "sigmoid": k_unary(), "sigmoid_grad": k_unary(), "sigmoid_backward": k_binary(),
    "tanh": k_unary(), "tanh_grad": k_unary(), "tanh_backward": k_binary(),
    "relu": k_unary(), "relu_grad": k_unary(), "relu_backward": k_binary(),
    "leaky_relu": k_unary(negative_slope=P_SLOPE),
    "leaky_relu_grad": k_unary(negative_slope=P_SLOPE),
    "leaky_relu_backward": k_binary(negative_slope=P_SLOPE),
    "prelu": k_prelu("f"), "prelu_grad": k_prelu("grad"), "prelu_backward": k_prelu("backward"),
    "elu": k_unary(alpha=P_ALPHA), "elu_grad": k_unary(alpha=P_ALPHA),
    "elu_backward": k_binary(alpha=P_ALPHA),
    "softplus": k_unary(beta=P_POS, threshold=P_THRESH),
    "softplus_grad": k_unary(beta=P_POS, threshold=P_THRESH),
    "softplus_backward": k_binary(beta=P_POS, threshold=P_THRESH),
    "silu": k_unary(beta=P_POS), "silu_grad": k_unary(beta=P_POS), "silu_backward": k_binary(beta=P_POS),
    "swish": k_unary(beta=P_POS), "swish_grad": k_unary(beta=P_POS), "swish_backward": k_binary(beta=P_POS),
    "log_sigmoid": k_unary(), "log_sigmoid_grad": k_unary(), "log_sigmoid_backward": k_binary(),
    "gelu": k_unary(approximate=P_APPROX), "gelu_grad": k_unary(approximate=P_APPROX),
    "gelu_backward": k_binary(approximate=P_APPROX),
    "noisy_relu": k_unary(sigma=P_SIGMA, seed=P_SEED), "noisy_relu_backward": k_binary(),
    # --- row-wise: (x, axis), backward (grad_output, y, axis)
    "softmax": k_rowwise(), "log_softmax": k_rowwise(), "logsumexp": k_reduce(),
    "softmax_backward": k_rowwise_bwd(), "log_softmax_backward": k_rowwise_bwd(),
    "softmax_jacobian": k_jacobian(), "argmax": k_reduce(argmax=True),
    # --- losses: (logits, int labels or probabilities, axis), (pred, target), (p, q, axis), (w, lam)
    "cross_entropy": k_xent("loss"), "cross_entropy_grad": k_xent("grad"),
    "cross_entropy_with_grad": k_xent("both"),
    "nll_loss": k_xent("loss", nll=True), "nll_loss_grad": k_xent("grad", nll=True),
    "nll_loss_with_grad": k_xent("both", nll=True),
    "mse": k_pointwise("loss"), "mse_grad": k_pointwise("grad"), "mse_with_grad": k_pointwise("both"),
    "rmse": k_pointwise("loss", rmse=True), "rmse_grad": k_pointwise("grad", rmse=True),
    "rmse_with_grad": k_pointwise("both", rmse=True),
    "mae": k_pointwise("loss"), "mae_grad": k_pointwise("grad"), "mae_with_grad": k_pointwise("both"),
    "l1_loss": k_pointwise("loss"), "l1_loss_grad": k_pointwise("grad"),
    "l1_loss_with_grad": k_pointwise("both"),
    "l2_loss": k_pointwise("loss"), "l2_loss_grad": k_pointwise("grad"),
    "l2_loss_with_grad": k_pointwise("both"),
    "quadratic_cost": k_pointwise("loss"), "quadratic_cost_grad": k_pointwise("grad"),
    "quadratic_cost_with_grad": k_pointwise("both"),
    "huber": k_pointwise("loss", delta=True), "huber_grad": k_pointwise("grad", delta=True),
    "huber_with_grad": k_pointwise("both", delta=True),
    "binary_cross_entropy": k_pointwise("loss", prob=True),
    "binary_cross_entropy_grad": k_pointwise("grad", prob=True),
    "binary_cross_entropy_with_grad": k_pointwise("both", prob=True),
    "binary_cross_entropy_with_logits": k_pointwise("loss", pos_weight=True),
    "binary_cross_entropy_with_logits_grad": k_pointwise("grad", pos_weight=True),
    "binary_cross_entropy_with_logits_with_grad": k_pointwise("both", pos_weight=True),
    "kl_div": k_kl("loss"), "kl_div_grad": k_kl("grad"), "kl_div_with_grad": k_kl("both"),
    "l1_penalty": k_penalty("loss"), "l1_penalty_grad": k_penalty("grad"),
    "l2_penalty": k_penalty("loss"), "l2_penalty_grad": k_penalty("grad"),
    # --- mlkern.optim: step(param, grad, states..., lr=...), classes: construct-and-step
    "optim.sgd_step": k_step(0, lr=P_LR, weight_decay=P_WD),
    "optim.momentum_step": k_step(1, lr=P_LR, momentum=P_MOM, weight_decay=P_WD),
    "optim.nesterov_step": k_step(1, lr=P_LR, momentum=P_MOM, weight_decay=P_WD),
    "optim.adagrad_step": k_step(1, lr=P_LR, eps=P_EPS, weight_decay=P_WD),
    "optim.adadelta_step": k_step(2, lr=P_LR, rho=P_CLOSED_UNIT, eps=P_EPS, weight_decay=P_WD),
    "optim.rmsprop_step": k_step(1, lr=P_LR, alpha=P_CLOSED_UNIT, eps=P_EPS, weight_decay=P_WD),
    "optim.adam_step": k_step(2, step=P_STEP, lr=P_LR, beta1=P_UNIT, beta2=P_UNIT, eps=P_EPS,
                              weight_decay=P_WD, decoupled=P_BOOL),
    "optim.Optimizer": k_opt_base(),
    "optim.SGD": k_opt_class(lr=P_LR, weight_decay=P_WD),
    "optim.Momentum": k_opt_class(lr=P_LR, momentum=P_MOM, weight_decay=P_WD),
    "optim.Nesterov": k_opt_class(lr=P_LR, momentum=P_MOM, weight_decay=P_WD),
    "optim.Adagrad": k_opt_class(lr=P_LR, eps=P_EPS, weight_decay=P_WD),
    "optim.Adadelta": k_opt_class(lr=P_LR, rho=P_CLOSED_UNIT, eps=P_EPS, weight_decay=P_WD),
    "optim.RMSprop": k_opt_class(lr=P_LR, alpha=P_CLOSED_UNIT, eps=P_EPS, weight_decay=P_WD),
    "optim.Adam": k_opt_class(lr=P_LR, betas=P([(0.9, 0.999), (0.0, 0.5)], [(1.0, 0.9), (NAN, 0.9)],
                                                 [(0.9,), "ab", None]), eps=P_EPS, weight_decay=P_WD),
    "optim.AdamW": k_opt_class(lr=P_LR, betas=P([(0.9, 0.999)], [(0.9, 1.0)], [(0.9,)]), eps=P_EPS,
                               weight_decay=P_WD),
    "optim.minibatches": k_minibatches(),
    # --- mlkern.calculus
    "calculus.numerical_grad": k_numerical_grad(),
    "calculus.gradcheck": k_gradcheck(),
    "calculus.derivative": k_derivative(),
    "calculus.GradcheckError": k_gradcheck_error(),
    # --- mlkern.layers
    "layers.dense": k_dense(), "layers.dense_backward": k_dense_backward(),
    "layers.embedding": k_embedding(), "layers.embedding_backward": k_embedding_backward(),
    "layers.rnn": k_recurrent("rnn"), "layers.lstm": k_recurrent("lstm"), "layers.gru": k_recurrent("gru"),
    "layers.rnn_cell": k_cell("rnn"), "layers.lstm_cell": k_cell("lstm"), "layers.gru_cell": k_cell("gru"),
    "layers.rnn_backward": k_recurrent_backward("rnn"), "layers.lstm_backward": k_recurrent_backward("lstm"),
    "layers.gru_backward": k_recurrent_backward("gru"),
    # --- mlkern.layers: convolutions
    "layers.conv1d": k_conv(1), "layers.conv2d": k_conv(2),
    "layers.conv1d_backward": k_conv_backward(1), "layers.conv2d_backward": k_conv_backward(2),
    # pooling (issue 15)
    "layers.max_pool1d": k_pool("max", 1), "layers.max_pool2d": k_pool("max", 2),
    "layers.avg_pool1d": k_pool("avg", 1), "layers.avg_pool2d": k_pool("avg", 2),
    "layers.max_pool1d_backward": k_pool_backward("max", 1),
    "layers.max_pool2d_backward": k_pool_backward("max", 2),
    "layers.avg_pool1d_backward": k_pool_backward("avg", 1),
    "layers.avg_pool2d_backward": k_pool_backward("avg", 2),
    # locally connected (issue 15)
    "layers.locally_connected1d": k_lc(1), "layers.locally_connected2d": k_lc(2),
    "layers.locally_connected1d_backward": k_lc_backward(1),
    "layers.locally_connected2d_backward": k_lc_backward(2),
    # --- mlkern.nn: the classes, built and run through inference, training forward, backward
    "nn.Layer": k_nn_layer_base(),
    "nn.Dense": k_nn_dense(), "nn.Embedding": k_nn_embedding(), "nn.Activation": k_nn_activation(),
    "nn.Flatten": k_nn_flatten(),
    "nn.SimpleRNN": k_nn_recurrent("rnn"), "nn.LSTM": k_nn_recurrent("lstm"),
    "nn.GRU": k_nn_recurrent("gru"),
    "nn.Conv1D": k_nn_conv(1), "nn.Conv2D": k_nn_conv(2),
    "nn.MaxPool1D": k_nn_pool("max", 1), "nn.MaxPool2D": k_nn_pool("max", 2),
    "nn.AvgPool1D": k_nn_pool("avg", 1), "nn.AvgPool2D": k_nn_pool("avg", 2),
    "nn.LocallyConnected1D": k_nn_locally_connected(1), "nn.LocallyConnected2D": k_nn_locally_connected(2),
    "nn.Sequential": k_nn_sequential(),
}
for _q, _s in REGISTRY.items():
    _s.qual = _q
REGISTRY_NAMES = list(REGISTRY)


def public_names():
    """Every public name the registry must cover: "name" for mlkern's, "sub.name" for a submodule's."""
    return [f"{prefix}.{n}" if prefix else n for prefix, m in MODULES.items() for n in m.__all__]
