"""Reliability harness: "never segfaults" made measurable for every public function.

What is here
------------
* ``REGISTRY`` -- one line per public name of ``mlkern``, ``mlkern.optim`` and
  ``mlkern.calculus``: how to build a valid call from arrays of any shape (the
  builder) and which arguments the fuzzer may corrupt.
  ``test_registry_covers_public_api`` fails when a public name has no line, so a
  new function is covered -- by every test below -- by adding one line.
* ``test_fuzz[<name>]`` -- a Hypothesis API fuzzer over the registry: random
  shapes (0-d, empty, 1..4-D, odd sizes, large ``np.broadcast_to`` views of a tiny
  array), dtypes (bool, every int/uint, float16/32/64, byte-swapped floats,
  longdouble, complex, object, str, datetime, timedelta), layouts (C, F, strided,
  negative strides, permuted axes, read-only, misaligned, lists, ndarray
  subclasses, NumPy and Python scalars), values (NaN, +-inf, subnormals, +-max,
  0, -0, huge/tiny magnitudes) and argument mixes (out= of the wrong shape,
  dtype, type, read-only, strided, misaligned, aliasing an input or partially
  overlapping it; bad axes; bad, negative, huge or wrongly typed labels;
  negative/NaN/inf hyper-parameters; wrong keyword types; mismatched shapes).
  Every call must return a result of the right shape (and dtype, where the
  contract determines it) or raise ``ValueError``/``TypeError``
  (``MemoryError`` only for deliberately huge requests); where SPEC.md says an
  input is invalid (complex input, wrong out=, axis out of range, label out of
  range, negative lr, shape mismatch, 0-d input to a row-wise function, wrong
  argument types) the call must raise.  A successful call is also checked
  against the same call on C-contiguous copies (layout, out= and overlap
  handling must not change the result), and every input array that is not
  out= (or an optimiser's state) must be bit-for-bit unchanged.
* ``test_inputs_untouched`` -- every registry function on C, F, strided,
  negative-stride, read-only and misaligned inputs, with and without out=:
  input bytes (and the whole buffer a view lives in) hashed before and after;
  a valid call must return, and agree with the call on C-contiguous copies.
* ``test_misaligned_auxiliary_arrays`` -- labels, weights, pos_weight, alpha,
  grad_output, out= on misaligned buffers.  These pass on x86 even when a
  kernel reads through the misaligned pointer; run them under
  ``tools/sanitize.sh`` (ASan + UBSan build), which stops on such a load.
* ``test_threads_*`` -- 8 Python threads calling different kernels at once give
  bit-identical results to serial calls; the documented per-thread policy.
* ``test_fork_*`` / ``test_multiprocessing_*`` -- fork after OpenMP started
  (also while another thread is inside a parallel kernel), a Pool with the
  "fork", "spawn" and "forkserver" start methods; all in subprocesses with
  timeouts, so a hang fails the test instead of blocking the run.
* ``test_memory_*`` -- RSS stays flat over 10^5 calls per kernel family
  (``MLKERN_MEM_CALLS``); every function given a 2**40- or 2**60-element
  broadcast view raises ``MemoryError``/``ValueError`` at once.
* ``KNOWN_BUGS`` / ``test_known_bug_*`` -- bugs this harness found that are not
  fixed yet: each has an ``xfail(strict=True)`` test (so the fix is noticed) and
  a matcher so that the fuzzer keeps looking for *other* bugs in the same
  function (hits are counted and printed in the summary).  When a bug is fixed,
  its xfail test XPASSes and fails: delete the test's marker and the entry.

Running
-------
CI default (``MLKERN_FUZZ_EXAMPLES`` examples per registry function, 40 by
default; the whole file takes about 50 s on two cores)::

    cd /work/main && PYTHONPATH=src python -m pytest tests/test_reliability.py

Long fuzz run (20000 examples for each of the 107 registry functions: about
two million examples, roughly three hours on two cores; split it with ``-k``
to run parts in parallel)::

    MLKERN_FUZZ_EXAMPLES=20000 PYTHONPATH=src python -m pytest tests/test_reliability.py -k fuzz

A crash (segfault, abort) kills the interpreter -- pytest's faulthandler prints
the Python stack, CI reports the dead run -- but Hypothesis cannot print the
example then.  ``MLKERN_FUZZ_TRACE=/tmp/mlkern_fuzz.trace`` appends a
description of every fuzzed call to that file, flushed before the call: its last
line is the call that crashed.  ``MLKERN_FUZZ_SEED=<int>`` fixes the
Hypothesis seed (``--hypothesis-seed`` works too).

A hang anywhere in this file (a deadlock in a kernel) is turned into a failure
by a watchdog: after ``MLKERN_TEST_TIMEOUT`` seconds (300) in one test -- or one
fuzz example -- faulthandler prints every thread's stack and exits.

The totals (fuzzed calls, results, exceptions by type, known-bug hits, RSS
figures, fork and Pool results) are printed at the end of the run, after
"mlkern reliability".  Memory-safety checking proper (out-of-bounds reads and
writes that do not crash, misaligned loads) is ``tools/sanitize.sh``, which
runs the whole suite, this file included, against an ASan + UBSan build.
"""
import collections
import contextlib
import copy
import dataclasses
import faulthandler
import gc
import hashlib
import inspect
import io
import math
import os
import subprocess
import sys
import textwrap
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, note, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import mlkern  # noqa: E402
import mlkern.calculus as mcalc  # noqa: E402
import mlkern.optim as mopt  # noqa: E402
from conftest import subprocess_env  # noqa: E402

FUZZ_EXAMPLES = int(os.environ.get("MLKERN_FUZZ_EXAMPLES", "40"))
FUZZ_TRACE = os.environ.get("MLKERN_FUZZ_TRACE") or None
FUZZ_SEED = os.environ.get("MLKERN_FUZZ_SEED")

STATS = collections.Counter()           # calls, ok, raised:<type>, known:<id>, examples
PHASE = ["other"]                       # which test is calling: "fuzz", "untouched", "huge", ...
REPORT = []                             # lines for the end-of-run summary

NAN, INF = float("nan"), float("inf")
F16, F32, F64, I64 = (np.dtype(t) for t in ("f2", "f4", "f8", "i8"))


# =============================================================================
# the end-of-run summary
# =============================================================================
@pytest.fixture(scope="module", autouse=True)
def _summary(request):
    yield
    lines = [f"mlkern reliability: {STATS['calls:fuzz']} fuzzed calls ({STATS['examples']} examples) "
             f"over {len([k for k in STATS if k.startswith('fn:')])} functions; "
             f"{STATS['calls']} mlkern calls in all (untouched {STATS['calls:untouched']}, "
             f"huge {STATS['calls:huge']}, threads {STATS['calls:threads']}, "
             f"memory {STATS['calls:memory']}); {STATS['ok']} returned, {STATS['raised']} raised"]
    exc = sorted((k[7:], v) for k, v in STATS.items() if k.startswith("raised:"))
    if exc:
        lines.append("  exceptions: " + ", ".join(f"{k} {v}" for k, v in exc))
    known = sorted((k[6:], v) for k, v in STATS.items() if k.startswith("known:"))
    if known:
        lines.append("  known-bug hits (see KNOWN_BUGS): " + ", ".join(f"{k} {v}" for k, v in known))
    lines += REPORT
    tr = request.config.pluginmanager.get_plugin("terminalreporter")
    capman = request.config.pluginmanager.get_plugin("capturemanager")
    cm = capman.global_and_fixture_disabled() if capman is not None else contextlib.nullcontext()
    with cm:
        if tr is not None:
            tr.write_line("")
            for ln in lines:
                tr.write_line(ln)
        else:  # pragma: no cover
            print("\n".join(lines))


# =============================================================================
# the watchdog: a hang (a deadlock in a kernel, a runaway loop) ends the run
# with every thread's stack on stderr instead of blocking CI
# =============================================================================
WATCHDOG_S = float(os.environ.get("MLKERN_TEST_TIMEOUT", "300"))
_WATCHDOG_FD = [None]


def arm_watchdog(seconds=None):
    """(Re)start the countdown: after `seconds` without a re-arm, faulthandler
    dumps all stacks and exits the process."""
    fd = _WATCHDOG_FD[0] if _WATCHDOG_FD[0] is not None else sys.__stderr__.fileno()
    faulthandler.dump_traceback_later(seconds or WATCHDOG_S, exit=True, file=fd)


@pytest.fixture(autouse=True)
def _watchdog(request):
    if _WATCHDOG_FD[0] is None:
        try:       # pytest's own dup of the real stderr (output survives capturing)
            from _pytest.faulthandler import fault_handler_stderr_fd_key
            _WATCHDOG_FD[0] = request.config.stash[fault_handler_stderr_fd_key]
        except Exception:  # pragma: no cover
            _WATCHDOG_FD[0] = sys.__stderr__.fileno()
    arm_watchdog()
    yield
    faulthandler.cancel_dump_traceback_later()


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
    """The result dtype SPEC.md gives for an input: float32/float64 kept (native
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
        return getattr({"": mlkern, "optim": mopt, "calculus": mcalc}[mod], name)


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
        red = kw["reduction"]
        loss = Arr(rshape, dt) if red == "none" else Arr((), dt, scalar=True)
        grad = Arr(shp, dt, outable=True)
        e = {"loss": loss, "grad": grad, "both": Tup((loss, grad))}[want]
        cmp = {"loss": "loss", "grad": "row", "both": ("loss", "row")}[want]
        return Call([z, t, axis], kw, e, out_like=(shp, dt) if want != "loss" else None,
                    out_of=(lambda r: r[1]) if want == "both" else None, alias=(0,), cmp=cmp)
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
        red = kw["reduction"]
        loss = Arr(shp, dt, scalar=shp == ()) if red == "none" else Arr((), dt, scalar=True)
        grad = Arr(shp, dt, scalar=shp == (), outable=True)
        e = {"loss": loss, "grad": grad, "both": Tup((loss, grad))}[want]
        gcmp = "loss" if rmse else "elem"
        cmp = {"loss": "loss", "grad": gcmp, "both": ("loss", gcmp)}[want]
        return Call([p, t], kw, e, out_like=(shp, dt) if want != "loss" else None,
                    out_of=(lambda r: r[1]) if want == "both" else None, alias=(0, 1), cmp=cmp)
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
        red = kw["reduction"]
        loss = Arr(rshape, dt) if red == "none" else Arr((), dt, scalar=True)
        grad = Arr(shp, dt, outable=True)
        e = {"loss": loss, "grad": grad, "both": Tup((loss, grad))}[want]
        cmp = {"loss": "loss", "grad": "elem", "both": ("loss", "elem")}[want]
        return Call([p, q, axis], kw, e, out_like=(shp, dt) if want != "loss" else None,
                    out_of=(lambda r: r[1]) if want == "both" else None, alias=(1,), cmp=cmp)
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
}
for _q, _s in REGISTRY.items():
    _s.qual = _q
REGISTRY_NAMES = list(REGISTRY)


def public_names():
    return ([n for n in mlkern.__all__] + [f"optim.{n}" for n in mopt.__all__]
            + [f"calculus.{n}" for n in mcalc.__all__])


def test_registry_covers_public_api():
    missing = [n for n in public_names() if n not in REGISTRY]
    assert not missing, f"public functions without a line in tests/test_reliability.py REGISTRY: {missing}"
    stale = [n for n in REGISTRY if n not in public_names()]
    assert not stale, f"REGISTRY lines for names that are not public: {stale}"
    for q, s in REGISTRY.items():
        assert callable(s.func), q


# =============================================================================
# known bugs: the fuzzer counts them and moves on; each has an xfail test below
# =============================================================================
@dataclasses.dataclass
class Known:
    id: str
    what: str
    match: object        # (qualname, call, exception) -> bool


def _exc_is(exc, t, text=""):
    return type(exc) is t and text in str(exc)


def _huge_axis(call):
    vals = list(call.args) + list(call.kw.values())
    return any(is_int(v) and abs(int(v)) >= 2**31 for v in vals)


def _max_finite_abs(call):
    m = 0.0
    for a in list(call.args) + list(call.kw.values()):
        if isinstance(a, np.ndarray) and a.dtype.kind == "f" and a.size:
            with np.errstate(all="ignore"):
                f = np.abs(a[np.isfinite(a)].astype(np.float64))
            if f.size:
                m = max(m, float(f.max()))
    return m


def _out_aliases_input(call):
    out = call.kw.get("out")
    return isinstance(out, np.ndarray) and any(
        isinstance(a, np.ndarray) and np.may_share_memory(a, out) for a in call.args)


KNOWN_BUGS = []


def known_bug(q, call, exc):
    for k in KNOWN_BUGS:
        try:
            if k.match(q, call, exc):
                return k
        except Exception:  # pragma: no cover
            pass
    return None


# =============================================================================
# the driver: make a call, classify the outcome
# =============================================================================
def describe(obj, depth=0):
    """A short, reproducible description of an argument."""
    if isinstance(obj, np.ndarray):
        flags = "".join(f for f, on in (("C", obj.flags.c_contiguous), ("F", obj.flags.f_contiguous),
                                        ("W", obj.flags.writeable), ("A", obj.flags.aligned)) if on)
        s = (f"{type(obj).__name__}(shape={obj.shape}, dtype={obj.dtype.str}, strides={obj.strides}, "
             f"flags={flags}")
        if obj.size <= 8 and not obj.dtype.hasobject:
            s += f", values={obj.tolist()!r}"
        return s + ")"
    if isinstance(obj, (list, tuple)) and depth < 1:
        inner = ", ".join(describe(o, depth + 1) for o in obj[:6])
        return ("[" if isinstance(obj, list) else "(") + inner + (", ..." if len(obj) > 6 else "") + \
            ("]" if isinstance(obj, list) else ")")
    if callable(obj):
        return getattr(obj, "__name__", repr(obj))
    r = repr(obj)
    return r if len(r) < 80 else r[:77] + "..."


def describe_call(q, args, kw):
    parts = [describe(a) for a in args] + [f"{k}={describe(v)}" for k, v in kw.items()]
    return f"{q}({', '.join(parts)})"


_trace_file = None


def trace(line):
    global _trace_file
    if FUZZ_TRACE is None:
        return
    if _trace_file is None:
        _trace_file = open(FUZZ_TRACE, "a", buffering=1)
    _trace_file.write(line + "\n")
    _trace_file.flush()
    os.fsync(_trace_file.fileno())


def _root(a):
    while isinstance(a.base, np.ndarray):
        a = a.base
    return a


def fingerprint(a):
    """Hash of an array's values and of the whole buffer it is a view of (a
    write into the gaps of a strided view changes the second)."""
    h = hashlib.sha1()
    if a.size <= 2**20 and not a.dtype.hasobject:
        h.update(np.ascontiguousarray(a).tobytes())
    elif a.dtype.hasobject:
        h.update(repr(a.tolist()).encode())
    r = _root(a)
    if r.size <= 2**22 and not r.dtype.hasobject:
        h.update(np.ascontiguousarray(r).tobytes())
    return h.hexdigest()


def c_copy(a):
    if isinstance(a, np.ndarray):
        return np.array(a, copy=True, order="C", subok=False)
    return copy.deepcopy(a)


def arrays_in(call):
    """(label, array) of every ndarray argument."""
    out = [(f"arg{i}", a) for i, a in enumerate(call.args) if isinstance(a, np.ndarray)]
    out += [(k, v) for k, v in call.kw.items() if isinstance(v, np.ndarray)]
    return out


def _mask_equal(a, b):
    return np.array_equal(np.isnan(a), np.isnan(b)) and np.array_equal(np.isinf(a) & (a > 0),
                                                                        np.isinf(b) & (b > 0))


def compare(got, ref, how, mode):
    """Assert that two results agree: 'elem' and 'row' -- same NaN/inf
    positions and finite values within a few rounding errors (max-norm
    relative for 'row'); 'argmax' -- equal; 'loss' -- within rounding in the
    benign value modes only (a reduction of mixed huge values depends on the
    summation order); a tuple -- per component."""
    if isinstance(how, tuple):
        assert isinstance(got, tuple) and isinstance(ref, tuple)
        for g, r, h in zip(got, ref, how):
            compare(g, r, h, mode)
        return
    if how is None or how == "skip":
        return
    g = np.asarray(got)
    r = np.asarray(ref)
    assert g.shape == r.shape, f"shape {g.shape} vs {r.shape} on C-contiguous copies"
    if how == "argmax" or g.dtype.kind in "biu":
        assert np.array_equal(g, r), "differs from the call on C-contiguous copies"
        return
    if g.dtype.kind not in "f" or r.dtype.kind not in "f":
        return
    if how == "loss" and mode not in BENIGN_MODES:
        return
    g64 = g.astype(np.float64)
    r64 = r.astype(np.float64)
    rtol = {2: 4e-3, 4: 1e-5, 8: 1e-12}.get(g.dtype.itemsize, 1e-12)
    if how == "loss":
        rtol = {2: 2e-2, 4: 1e-3, 8: 1e-8}.get(g.dtype.itemsize, 1e-8)
    assert _mask_equal(g64, r64), (f"NaN/inf positions differ from the call on C-contiguous copies:\n"
                                   f"got {g64.ravel()[:8]}\nref {r64.ravel()[:8]}")
    fin = np.isfinite(r64)
    if not fin.any():
        return
    tiny = float(np.finfo(g.dtype).tiny) if g.dtype.kind == "f" else 0.0
    atol = tiny * 4
    if how in ("row", "loss"):
        atol = max(atol, rtol * float(np.max(np.abs(r64[fin]))))
    with np.errstate(all="ignore"):
        err = np.abs(g64[fin] - r64[fin]) - (atol + rtol * np.abs(r64[fin]))
    assert not (err > 0).any(), (f"differs from the call on C-contiguous copies by more than "
                                 f"rtol={rtol}: max excess {float(np.max(err))}")


OUT_MODES = ["none"] * 8 + ["good", "good", "strided", "fortran", "misaligned", "alias", "alias",
                            "overlap", "readonly", "wrong_shape", "wrong_dtype", "wrong_type"]


def _takes_out(fn):
    try:
        return "out" in inspect.signature(fn).parameters
    except (TypeError, ValueError):  # pragma: no cover
        return False


def _make_out(ctx, call, mode):
    """Add out= to the call in `mode`; returns the out array (or None)."""
    shape, dt = call.out_like
    dt = dt if dt is not None else F64
    if shape is None:
        return None
    if mode in ("alias", "overlap"):
        for pos in call.alias:
            a = call.args[pos]
            if not (isinstance(a, np.ndarray) and a.shape == tuple(shape) and a.dtype == dt
                    and a.flags.writeable and type(a) is np.ndarray):
                continue
            if mode == "alias":
                call.kw["out"] = a
                return a
            if a.size >= 2:
                buf = np.empty(a.size + 1, dt)
                buf[:-1] = a.reshape(-1)
                call.args[pos] = buf[:-1].reshape(a.shape)
                out = buf[1:].reshape(a.shape)
                call.kw["out"] = out
                return out
        mode = "good"
    if mode == "good":
        out = np.full(shape, 7, dt)
    elif mode == "strided":
        out = apply_layout(np.full(shape, 7, dt), "strided")
    elif mode == "fortran":
        out = apply_layout(np.full(shape, 7, dt), "F")
    elif mode == "misaligned":
        out = misaligned_empty(shape, dt)
        out[...] = 7
    elif mode == "readonly":
        out = np.full(shape, 7, dt)
        out.setflags(write=False)
        ctx.must_raise("read-only out=", ValueError)
    elif mode == "wrong_shape":
        out = np.full(tuple(shape) + (2,), 7, dt)
        ctx.must_raise("out= of the wrong shape", ValueError)
    elif mode == "wrong_dtype":
        wrong = {F64: F32, F32: F64, F16: F32, I64: np.dtype("i4")}.get(dt, F64)
        out = np.full(shape, 7, wrong)
        ctx.must_raise("out= of the wrong dtype", TypeError)
    elif mode == "wrong_type":
        out = np.full(shape, 7, dt).tolist() if len(shape) else 7.0
        ctx.must_raise("out= that is not an ndarray", TypeError)
    else:  # pragma: no cover
        raise AssertionError(mode)
    call.kw["out"] = out
    return out


def invoke(q, spec, call):
    fn = spec.func
    STATS["calls"] += 1
    STATS["calls:" + PHASE[0]] += 1
    STATS["fn:" + q] += 1
    if call.fn is not None:
        return call.fn(fn, *call.args, **call.kw)
    return fn(*call.args, **call.kw)


def _note(text):
    try:
        note(text)
    except Exception:
        pass


def run_one(q, ctx, *, out_mode="none", with_reference=True, check_untouched=True, huge=False):
    """Build, call and check one call of registry function `q`."""
    spec = REGISTRY[q]
    call = spec.build(ctx)
    call.huge = huge
    out = None
    if out_mode != "none" and call.out_like is not None and call.fn is None and _takes_out(spec.func):
        out = _make_out(ctx, call, out_mode)
    desc = describe_call(q, call.args, call.kw)
    _note(desc + (f"\nmust raise: {ctx.must}" if ctx.must else ""))
    # the same call on C-contiguous copies, without out=
    ref = ref_exc = None
    do_ref = (with_reference and call.deterministic and call.cmp is not None)
    ref_args = ref_kw = None
    if do_ref:
        ref_args = [c_copy(a) for a in call.args]
        ref_kw = {k: c_copy(v) for k, v in call.kw.items() if k != "out"}
    # fingerprints of the inputs that must not change
    hashes = {}
    if check_untouched:
        for label, a in arrays_in(call):
            if label == "out" or (label.startswith("arg") and int(label[3:]) in call.mutable):
                continue
            if out is not None and isinstance(out, np.ndarray) and np.may_share_memory(a, out):
                continue
            if any(np.may_share_memory(a, call.args[m]) for m in call.mutable
                   if isinstance(call.args[m], np.ndarray)):
                continue
            hashes[label] = (a, fingerprint(a))
    # an optimiser's param and state: updated by a successful call, untouched by a failed one
    mut_hashes = {m: fingerprint(call.args[m]) for m in call.mutable
                  if isinstance(call.args[m], np.ndarray)} if check_untouched and call.atomic else {}
    if do_ref:
        trace("ref  " + describe_call(q, ref_args, ref_kw))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ref = invoke(q, spec, dataclasses.replace(call, args=ref_args, kw=ref_kw))
        except Exception as e:       # checked like any call, below
            ref_exc = e
    trace("call " + desc)
    exc = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = invoke(q, spec, call)
    except Exception as e:
        exc = e
    # --- classify
    allowed = (ValueError, TypeError) + tuple(call.allowed) + ((MemoryError,) if call.huge else ())
    for e in (ref_exc, exc):
        if e is None:
            continue
        if not isinstance(e, allowed):
            k = known_bug(q, call, e)
            if k is not None:
                STATS["known:" + k.id] += 1
                return "known"
            raise AssertionError(f"{q} raised {type(e).__name__}: {e}\n  call: {desc}") from e
    if exc is not None:
        STATS["raised"] += 1
        STATS["raised:" + type(exc).__name__] += 1
        reqs = [r for _, r in ctx.must]
        if len(reqs) == 1 and not ctx.tainted and not isinstance(exc, reqs[0]):
            raise AssertionError(f"{q} raised {type(exc).__name__} where {ctx.must[0][0]} calls for "
                                 f"{reqs[0]}: {exc}\n  call: {desc}") from exc
    else:
        STATS["ok"] += 1
        if ctx.must:
            raise AssertionError(f"{q} accepted invalid input ({'; '.join(w for w, _ in ctx.must)}) "
                                 f"and returned {describe(res)}\n  call: {desc}")
        try:
            call.expect.check(res, out)
        except AssertionError as e:
            raise AssertionError(f"{q}: wrong result: {e}\n  call: {desc}") from None
    # --- inputs untouched (also when the call raised)
    for label, (a, h) in hashes.items():
        assert fingerprint(a) == h, f"{q} modified its input {label}\n  call: {desc}"
    if exc is not None:
        for m, h in mut_hashes.items():
            assert fingerprint(call.args[m]) == h, (f"{q} raised {type(exc).__name__} but modified "
                                                    f"arg{m} (param/state) first\n  call: {desc}")
    # --- agreement with the call on C-contiguous copies
    if exc is None and ref is not None and ref_exc is None:
        try:
            if call.mutable:
                for m in call.mutable:
                    if isinstance(call.args[m], np.ndarray):
                        compare(np.asarray(call.args[m]), np.asarray(ref_args[m]), call.cmp, ctx.mode)
            elif out is not None:
                got = call.out_of(res) if call.out_of else res
                want = call.out_of(ref) if call.out_of else ref
                compare(np.asarray(got), np.asarray(want), call.cmp[1] if isinstance(call.cmp, tuple)
                        else call.cmp, ctx.mode)
                if isinstance(call.cmp, tuple):
                    compare(res[0], ref[0], call.cmp[0], ctx.mode)
            else:
                compare(res, ref, call.cmp, ctx.mode)
        except AssertionError as e:
            k = known_bug(q, call, e)
            if k is not None:
                STATS["known:" + k.id] += 1
                return "known"
            raise AssertionError(f"{q}: {e}\n  call: {desc}\n  out mode: {out_mode}") from None
    return "raised" if exc is not None else "ok"


# =============================================================================
# b. the fuzzer
# =============================================================================
_fuzz_settings = settings(
    max_examples=FUZZ_EXAMPLES, deadline=None, derandomize=False, database=None,
    suppress_health_check=list(HealthCheck), print_blob=True)


@pytest.mark.parametrize("q", REGISTRY_NAMES)
@_fuzz_settings
@given(data=st.data())
def test_fuzz(q, data):
    arm_watchdog()                 # per example: a long run is not one countdown
    PHASE[0] = "fuzz"
    STATS["examples"] += 1
    ctx = FuzzCtx(data)
    out_mode = data.draw(st.sampled_from(OUT_MODES), label="out mode")
    try:
        run_one(q, ctx, out_mode=out_mode)
    finally:
        if q in ("set_num_threads", "threads"):
            mlkern.set_num_threads(None)


if FUZZ_SEED is not None:
    test_fuzz = hypothesis.seed(int(FUZZ_SEED))(test_fuzz)


# =============================================================================
# c. inputs untouched, every function, every layout
# =============================================================================
@pytest.mark.parametrize("layout", UNTOUCHED_LAYOUTS)
@pytest.mark.parametrize("q", REGISTRY_NAMES)
def test_inputs_untouched(q, layout):
    PHASE[0] = "untouched"
    for dtype, shape in ((F64, (4, 6, 5)), (F32, (3, 7))):
        for out_mode in ("none", "good"):
            ctx = PlainCtx(shape=shape, dtype=dtype, layout=layout, seed=hash((q, layout)) % 2**32)
            r = run_one(q, ctx, out_mode=out_mode, with_reference=True, check_untouched=True)
            if r != "known":
                assert r == "ok", f"{q} raised on a valid {layout} {dtype} input"


def _misaligned(a):
    m = apply_layout(np.asarray(a), "misaligned")
    assert not m.flags.aligned
    return m


def _aux_cases():
    rng = np.random.default_rng(3)
    z = rng.standard_normal((8, 5))
    lab = rng.integers(0, 5, 8)
    t = (z > 0) * 1.0
    x3 = z.reshape(2, 4, 5)
    return {
        "cross_entropy(labels)": lambda m: mlkern.cross_entropy_with_grad(z, m(lab)),
        "cross_entropy(weight)": lambda m: mlkern.cross_entropy_with_grad(z, lab, weight=m(np.ones(5))),
        "cross_entropy(sample_weight)": lambda m: mlkern.cross_entropy(z, lab, sample_weight=m(np.ones(8))),
        "nll_loss(labels)": lambda m: mlkern.nll_loss_with_grad(z, m(lab)),
        "mse(sample_weight)": lambda m: mlkern.mse_with_grad(z, 2 * z, sample_weight=m(np.ones(8))),
        "huber(sample_weight)": lambda m: mlkern.huber_with_grad(z, 2 * z, sample_weight=m(np.ones(8))),
        "bce_with_logits(pos_weight)": lambda m: mlkern.binary_cross_entropy_with_logits_with_grad(
            z, t, pos_weight=m(np.linspace(1, 2, 5))),
        "bce_with_logits(pos_weight, sample_weight)": lambda m: (
            mlkern.binary_cross_entropy_with_logits_with_grad(z, t, pos_weight=m(np.linspace(1, 2, 5)),
                                                              sample_weight=m(np.ones(8)))),
        "kl_div(sample_weight)": lambda m: mlkern.kl_div_with_grad(np.full((8, 5), .2), np.full((8, 5), .2),
                                                                   sample_weight=m(np.ones(8))),
        "prelu(alpha)": lambda m: mlkern.prelu(x3, m(np.linspace(.1, .4, 4))),
        "prelu_grad(alpha)": lambda m: mlkern.prelu_grad(x3, m(np.linspace(.1, .4, 4))),
        "prelu_backward(alpha)": lambda m: mlkern.prelu_backward(x3, x3, m(np.linspace(.1, .4, 4))),
        "prelu_backward(grad_output)": lambda m: mlkern.prelu_backward(m(x3), x3, 0.25),
        "adam_step(grad)": lambda m: mopt.adam_step(z.copy(), m(z), np.zeros_like(z), np.zeros_like(z),
                                                    step=1),
        "argmax(out)": lambda m: mlkern.argmax(z, out=m(np.zeros(8, np.int64))),
        "logsumexp(out)": lambda m: mlkern.logsumexp(z, out=m(np.zeros(8))),
    }


@pytest.mark.parametrize("case", list(_aux_cases()))
def test_misaligned_auxiliary_arrays(case):
    """Labels, weights, pos_weight, alpha, grad_output and out= arrays on a
    misaligned buffer give the aligned result.  A kernel that is handed the
    misaligned pointer itself (instead of an aligned copy) works on x86 today
    but is undefined behaviour (a vectorised aligned load would fault): the
    UndefinedBehaviorSanitizer run (tools/sanitize.sh) stops on it with
    "load of misaligned address"."""
    f = _aux_cases()[case]
    got = f(_misaligned)
    want = f(np.ascontiguousarray)
    STATS["calls"] += 2
    compare(got if isinstance(got, tuple) else got, want,
            tuple("row" for _ in want) if isinstance(want, tuple) else "row", "normal")


# =============================================================================
# d. concurrency
# =============================================================================
def _kernel_jobs(seed):
    """Eight jobs, each on its own arrays, each returning a tuple of arrays."""
    rng = np.random.default_rng(seed)
    x32 = (4 * rng.standard_normal(150_000)).astype(np.float32)
    x64 = 4 * rng.standard_normal(120_000)
    g64 = rng.standard_normal(120_000)
    z = (3 * rng.standard_normal((600, 257))).astype(np.float32)
    z64 = 3 * rng.standard_normal((257, 300))
    logits = (3 * rng.standard_normal((512, 101))).astype(np.float32)
    labels = rng.integers(0, 101, 512)
    pred, target = rng.standard_normal((300, 200)), rng.standard_normal((300, 200))
    p0, gr = rng.standard_normal(100_000), rng.standard_normal(100_000)

    def adam():
        p, m, v = p0.copy(), np.zeros_like(p0), np.zeros_like(p0)
        for t in range(1, 6):
            mopt.adam_step(p, gr, m, v, step=t, lr=1e-2)
        return p, m, v

    return [
        lambda: (mlkern.sigmoid(x32), mlkern.silu_grad(x32), mlkern.gelu(x32, approximate="tanh")),
        lambda: (mlkern.gelu_backward(g64, x64), mlkern.softplus(x64), mlkern.tanh_grad(x64)),
        lambda: (mlkern.softmax(z), mlkern.log_softmax(z, axis=0)),
        lambda: (mlkern.softmax(z64, axis=0), mlkern.logsumexp(z64, axis=1)),
        lambda: mlkern.cross_entropy_with_grad(logits, labels),
        lambda: mlkern.mse_with_grad(pred, target),
        adam,
        lambda: (mlkern.elu(x64), mlkern.relu_backward(g64, x64), mlkern.noisy_relu(x64, seed=3)),
    ]


def _same(a, b):
    if isinstance(a, tuple):
        return all(_same(x, y) for x, y in zip(a, b))
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


@pytest.mark.parametrize("inner_threads", [None, 2], ids=["policy-1-thread", "threads(2)-each"])
def test_threads_bit_identical_to_serial(inner_threads):
    jobs = _kernel_jobs(11)
    serial = [job() for job in jobs]
    barrier = threading.Barrier(len(jobs))
    reps = 12

    def worker(i):
        ctx = mlkern.threads(inner_threads) if inner_threads else contextlib.nullcontext()
        bad = 0
        with ctx:
            barrier.wait(timeout=60)
            for _ in range(reps):
                bad += not _same(jobs[i](), serial[i])
        return bad

    with ThreadPoolExecutor(max_workers=len(jobs)) as ex:
        futs = [ex.submit(worker, i) for i in range(len(jobs))]
        bad = [f.result(timeout=300) for f in futs]
    STATS["calls"] += reps * len(jobs) * 3
    STATS["calls:threads"] += reps * len(jobs) * 3
    assert bad == [0] * len(jobs), f"results differing from the serial ones, per job: {bad}"


def test_threads_policy_in_executor():
    main_before = mlkern.get_num_threads()

    def worker(n):
        a = mlkern.get_num_threads()
        with mlkern.threads(n):
            b = mlkern.get_num_threads()
            y = mlkern.softmax(np.linspace(-3, 3, 200_000).reshape(100, -1))
        c = mlkern.get_num_threads()
        return a, b, c, float(y.sum())

    with ThreadPoolExecutor(4) as ex:
        res = list(ex.map(worker, [1, 2, 3, 2]))
    for n, (a, b, c, s) in zip([1, 2, 3, 2], res):
        assert a == 1, "a worker thread uses 1 thread by default"
        assert b == n, f"with mlkern.threads({n}) in the worker: {b}"
        assert c == 1, "restored to the policy after the with block"
        assert abs(s - 100) < 1e-9
    assert mlkern.get_num_threads() == main_before, "a worker's setting leaked into the main thread"


# =============================================================================
# e. fork and multiprocessing
# =============================================================================
def _run_script(code, timeout=180):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=timeout, env=subprocess_env())


_FORK_PRELUDE = textwrap.dedent("""
    import os, sys, time, threading, numpy as np, mlkern, mlkern.optim as mo

    rng = np.random.default_rng(0)
    x = 4 * rng.standard_normal(3 * 10**6)
    z = rng.standard_normal((3000, 1000)).astype(np.float32)
    lab = rng.integers(0, 1000, 3000)
    p0, g = rng.standard_normal(2 * 10**6), rng.standard_normal(2 * 10**6)

    def work():
        p, m, v = p0.copy(), np.zeros_like(p0), np.zeros_like(p0)
        mo.adam_step(p, g, m, v, step=1)
        return (mlkern.sigmoid(x), mlkern.gelu_grad(x), mlkern.softmax(z),
                mlkern.cross_entropy_with_grad(z, lab)[1], mlkern.mse_with_grad(x, x[::-1].copy())[1], p)

    def same(a, b):
        return all(np.array_equal(u, v) for u, v in zip(a, b))

    with mlkern.threads(2):            # start OpenMP's pool in the parent
        ref = work()
        ref2 = work()
    assert same(ref, ref2)

    def wait(pid, timeout):
        t0 = time.time()
        while time.time() - t0 < timeout:
            r, st = os.waitpid(pid, os.WNOHANG)
            if r:
                return os.WEXITSTATUS(st) if os.WIFEXITED(st) else 100 + os.WTERMSIG(st)
            time.sleep(0.02)
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        return "HANG"
""")


def test_fork_after_parallel_kernels():
    """OpenMP pool started, fork; the child's large calls (run serially, the
    documented policy) give the parent's results; the parent keeps working in
    parallel after the fork; also a fork while another thread is inside a
    parallel kernel."""
    code = _FORK_PRELUDE + textwrap.dedent("""
        pid = os.fork()
        if pid == 0:
            ok = same(work(), ref) and mlkern.get_num_threads() == 1
            os._exit(0 if ok else 3)
        st1 = wait(pid, 60)
        with mlkern.threads(2):
            ok_parent = same(work(), ref)

        # fork while another thread is inside parallel kernels
        stop = threading.Event()
        def busy():
            with mlkern.threads(2):
                while not stop.is_set():
                    mlkern.softmax(z)
        t = threading.Thread(target=busy)
        t.start()
        time.sleep(0.2)
        pid = os.fork()
        if pid == 0:
            os._exit(0 if same(work(), ref) else 3)
        st2 = wait(pid, 60)
        stop.set()
        t.join()
        print("child", st1, "parent", ok_parent, "child-during-busy", st2)
        sys.exit(0 if (st1 == 0 and ok_parent and st2 == 0) else 1)
    """)
    p = _run_script(code)
    REPORT.append(f"fork test: rc={p.returncode} {p.stdout.strip()}")
    assert p.returncode == 0, p.stdout + p.stderr


def test_fork_child_reenabling_threads_does_not_hang():
    code = _FORK_PRELUDE + textwrap.dedent("""
        pid = os.fork()
        if pid == 0:
            # the policy: a forked child stays serial even when it asks for threads
            # (libgomp's pool did not survive the fork; entering it would hang)
            mlkern.set_num_threads(2)
            ok = same(work(), ref) and mlkern.get_num_threads() == 1
            with mlkern.threads(2):
                ok = ok and same(work(), ref)
            os._exit(0 if ok else 3)
        st = wait(pid, 6)
        print("child", st)
        sys.exit(0 if st == 0 else 1)
    """)
    p = _run_script(code)
    REPORT.append(f"fork child re-enabling threads: rc={p.returncode} {p.stdout.strip()}")
    assert p.returncode == 0, p.stdout + p.stderr


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_multiprocessing_pool(method):
    import multiprocessing as mp
    if method not in mp.get_all_start_methods():
        pytest.skip(f"no {method} start method")
    code = textwrap.dedent(f"""
        import multiprocessing as mp, sys, numpy as np, mlkern
        if __name__ == "__main__":
            xs = [np.linspace(-5, 5, 10**6 + k) for k in range(6)]
            with mlkern.threads(2):
                ref = [mlkern.softplus(x) for x in xs]           # OpenMP pool started
            ctx = mp.get_context({method!r})
            with ctx.Pool(2) as pool:
                res = pool.map_async(mlkern.softplus, xs).get(timeout=90)
                res2 = pool.map_async(mlkern.logsumexp, xs).get(timeout=90)
            ok = all(np.array_equal(a, b) for a, b in zip(res, ref))
            ok2 = all(np.array_equal(a, mlkern.logsumexp(x)) for a, x in zip(res2, xs))
            print("ok" if ok and ok2 else "MISMATCH")
            sys.exit(0 if ok and ok2 else 1)
    """)
    p = _run_script(code, timeout=240)
    REPORT.append(f"multiprocessing Pool ({method}): rc={p.returncode} {p.stdout.strip()}")
    assert p.returncode == 0, p.stdout + p.stderr


# =============================================================================
# f. memory
# =============================================================================
def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


MEM_CALLS = int(os.environ.get("MLKERN_MEM_CALLS", "100000"))


def _mem_families():
    rng = np.random.default_rng(5)
    x = rng.standard_normal(64)
    g = rng.standard_normal(64)
    out = np.empty(64)
    z = rng.standard_normal((4, 16))
    lab = rng.integers(0, 16, 4)
    gz = np.empty_like(z)
    t = rng.standard_normal(64)
    p, m, v, gr = x.copy(), np.zeros(64), np.zeros(64), g.copy()
    return {
        "sigmoid": lambda: mlkern.sigmoid(x, out=out),
        "sigmoid_backward": lambda: mlkern.sigmoid_backward(g, x, out=out),
        "softmax": lambda: mlkern.softmax(z, out=gz),
        "cross_entropy_with_grad": lambda: mlkern.cross_entropy_with_grad(z, lab, out=gz),
        "mse_with_grad": lambda: mlkern.mse_with_grad(x, t, out=out),
        "adam_step": lambda: mopt.adam_step(p, gr, m, v, step=1, lr=1e-6),
        "sigmoid (allocating)": lambda: mlkern.sigmoid(x),
        "softplus (float16, slow path)": lambda: mlkern.softplus(x.astype(np.float16)[::2]),
    }


def test_memory_flat_over_many_calls():
    fams = _mem_families()
    for fn in fams.values():               # warm-up: caches, lazy imports, allocator pools
        for _ in range(5000):
            fn()
    gc.collect()
    before = rss_bytes()
    t0 = time.perf_counter()
    per = {}
    for name, fn in fams.items():
        r0 = rss_bytes()
        for _ in range(MEM_CALLS):
            fn()
        per[name] = rss_bytes() - r0
    gc.collect()
    after = rss_bytes()
    dt = time.perf_counter() - t0
    STATS["calls"] += MEM_CALLS * len(fams)
    STATS["calls:memory"] += MEM_CALLS * len(fams)
    mib = 1024 * 1024
    REPORT.append(f"memory: {MEM_CALLS} calls x {len(fams)} families in {dt:.1f} s; RSS "
                  f"{before / mib:.1f} MiB -> {after / mib:.1f} MiB ({(after - before) / mib:+.2f} MiB); "
                  + ", ".join(f"{k} {v / mib:+.2f}" for k, v in per.items()))
    if os.environ.get("MLKERN_UNDER_SANITIZER"):
        pytest.skip("under AddressSanitizer freed memory stays in its quarantine: RSS not comparable")
    assert after - before < 4 * mib, f"RSS grew by {(after - before) / mib:.2f} MiB: {per}"


@pytest.mark.parametrize("q", REGISTRY_NAMES)
def test_memory_huge_requests(q):
    """Every function on an input too large to allocate (a 2**40-element or
    2**60-element broadcast view of a float32 scalar) raises MemoryError or
    ValueError/TypeError -- it does not crash, and does not start computing."""
    spec = REGISTRY[q]
    if spec.kind in ("config", "calculus", "minibatches", "opt_base") and q != "calculus.derivative":
        pytest.skip("takes no array input")
    PHASE[0] = "huge"
    arm_watchdog(120)
    for n in (2**40, 2**60):
        if q.startswith("binary_cross_entropy") and "logits" not in q:
            continue        # known bug bce-huge-scan: minutes of validation first (tested below)
        ctx = _HugeCtx(n)
        r = run_one(q, ctx, with_reference=False, check_untouched=False, huge=True)
        assert r in ("raised", "known"), f"{q} returned on a {n}-element input"


class _HugeCtx(PlainCtx):
    no_shrink = True

    def __init__(self, n):
        super().__init__(shape=(n,), dtype=F32)

    def values(self, k, shape=None):
        return np.float64(0.5)

    def data(self, v, dtype=None, layout=None, broadcast=True):
        return np.broadcast_to(np.float32(v), self.shape)

    def labels(self, rshape, n, ignore):
        return np.broadcast_to(np.int64(0), rshape)



def test_huge_single_examples():
    """The example from the issue, and huge out= / reductions."""
    x = np.broadcast_to(np.float32(1), (2**40,))
    for f in (lambda: mlkern.sigmoid(x), lambda: mlkern.softmax(x), lambda: mlkern.mse(x, x),
              lambda: mlkern.logsumexp(x), lambda: mlkern.argmax(x), lambda: mlkern.l2_penalty(x, 1.0),
              lambda: mlkern.sigmoid(np.broadcast_to(np.float32(1), (2**20, 2**20)))):
        with pytest.raises((MemoryError, ValueError)):
            f()
        STATS["calls"] += 1


# =============================================================================
# known bugs, one strict xfail each (see KNOWN_BUGS)
# =============================================================================
def _raises_value_or_type(f):
    try:
        f()
    except (ValueError, TypeError):
        return
    except Exception as e:
        raise AssertionError(f"{type(e).__name__}: {e}") from e
    raise AssertionError("no exception")


# fixed this stop (was a strict xfail): overflow-axis:
# softmax/log_softmax/logsumexp/argmax/softmax_backward/ log_softmax_backward(x, axis=2**70) raise
# OverflowError (fast path converts axis to  C ssize_t) instead of the ValueError SPEC.md asks for
# an axis out of range
@pytest.mark.parametrize("f", ["softmax", "log_softmax", "logsumexp", "argmax"])
def test_fixed_overflow_axis(f):
    _raises_value_or_type(lambda: getattr(mlkern, f)(np.ones(3), axis=2**70))


# fixed this stop (was a strict xfail): overflow-axis: softmax_backward/log_softmax_backward(g,
# y, axis=2**63) raise OverflowError
@pytest.mark.parametrize("f", ["softmax_backward", "log_softmax_backward"])
def test_fixed_overflow_axis_backward(f):
    _raises_value_or_type(lambda: getattr(mlkern, f)(np.ones(3), np.ones(3), axis=2**63))


# fixed (was a strict xfail found by the fuzzer)
def test_fixed_overflow_ignore_index():
    _raises_value_or_type(lambda: mlkern.cross_entropy(np.ones((2, 3)), [0, 1], ignore_index=2**70))


# fixed (was a strict xfail found by the fuzzer)
def test_fixed_overflow_threads():
    try:
        _raises_value_or_type(lambda: mlkern.set_num_threads(2**31))
    finally:
        mlkern.set_num_threads(None)


# fixed (was a strict xfail found by the fuzzer)
@pytest.mark.parametrize("f", ["nll_loss", "nll_loss_grad", "nll_loss_with_grad"])
def test_fixed_nll_zero_division(f):
    def call():
        getattr(mlkern, f)(np.log(np.full((2, 3), 1 / 3)), [-100, -100])
        getattr(mlkern, f)(np.zeros((0, 3)), np.zeros(0, np.int64))
    try:
        call()
    except ZeroDivisionError as e:
        raise AssertionError(f"ZeroDivisionError: {e}") from e


# fixed (was a strict xfail found by the fuzzer)
@pytest.mark.parametrize("f", ["cross_entropy", "cross_entropy_grad", "cross_entropy_with_grad"])
@pytest.mark.parametrize("case", ["empty", "zero-weights"])
def test_fixed_xent_probs_zero_division(f, case):
    if case == "empty":
        z, t, kw = np.zeros((0, 3)), np.zeros((0, 3)), {}
    else:
        z, t, kw = np.zeros((2, 3)), np.full((2, 3), 1 / 3), {"sample_weight": np.zeros(2)}
    try:
        getattr(mlkern, f)(z, t, **kw)
    except ZeroDivisionError as e:
        raise AssertionError(f"ZeroDivisionError: {e}") from e


# fixed (was a strict xfail found by the fuzzer)
def test_fixed_numerical_grad_zero_step():
    try:
        mcalc.numerical_grad(_f_softplus_sum, [2.87e79], eps=1e-3)   # a result (NaN/inf) is fine
    except (ValueError, TypeError):
        pass
    except ZeroDivisionError as e:
        raise AssertionError(f"ZeroDivisionError: {e}") from e


# fixed this stop (was a strict xfail): log_softmax-inplace-inf: log_softmax(x, axis=0, out=x)
# on a C-contiguous array  returns NaN for a whole column that holds a +inf; not in place it is
# [-inf, nan, -inf]  (SciPy's convention); SPEC: out= may alias the input
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fixed_log_softmax_inplace_inf_column(dtype):
    x = np.array([[1.0, 0.0], [np.inf, 1.0], [2.0, 2.0]], dtype)
    want = mlkern.log_softmax(x, 0)
    y = x.copy()
    got = mlkern.log_softmax(y, 0, out=y)
    np.testing.assert_array_equal(got, want)


# fixed (was a strict xfail found by the fuzzer): rowwise-dot-overflow: softmax_backward's row
# sum of g*y overflowing float64 gave +-inf or NaN depending on the layout and on FMA contraction
def test_fixed_softmax_backward_overflow_layout():
    rng = np.random.default_rng(0)
    g = gen_values(rng, (16, 2), "mixed")
    y = gen_values(rng, (16, 2), "mixed")
    c = mlkern.softmax_backward(g, y, 0)
    f = mlkern.softmax_backward(np.asfortranarray(g), np.asfortranarray(y), 0)
    np.testing.assert_array_equal(np.isnan(c), np.isnan(f))


# fixed this stop (was a strict xfail): xent-smoothing-no-classes: cross_entropy(np.zeros((2,
# 0)), np.zeros((2, 0)),  label_smoothing=0.1) raises ZeroDivisionError (eps / n with n = 0
# classes)
@pytest.mark.parametrize("f", ["cross_entropy", "cross_entropy_grad", "cross_entropy_with_grad"])
def test_fixed_xent_smoothing_no_classes(f):
    try:                     # a result (NaN or 0) or a ValueError are both fine
        getattr(mlkern, f)(np.zeros((2, 0)), np.zeros((2, 0)), label_smoothing=0.1)
    except (ValueError, TypeError):
        pass
    except ZeroDivisionError as e:
        raise AssertionError(f"ZeroDivisionError: {e}") from e


# fixed this stop (was a strict xfail): bce-huge-scan: binary_cross_entropy* scan the whole
# input for values outside [0, 1]  (np.fmin.reduce) before anything is allocated: on a
# 2**40-element broadcast view the call  runs for many minutes before it fails; every other
# function fails at once
def test_fixed_bce_huge_scan():
    code = ("import numpy as np, mlkern\n"
            "x = np.broadcast_to(np.float32(0.5), (2**40,))\n"
            "try:\n    mlkern.binary_cross_entropy(x, x)\nexcept (MemoryError, ValueError):\n    pass\n")
    try:
        p = _run_script(code, timeout=6)
    except subprocess.TimeoutExpired:
        raise AssertionError("binary_cross_entropy on a 2**40-element view ran for > 6 s") from None
    assert p.returncode == 0, p.stderr


# fixed (was a strict xfail found by the fuzzer)
def test_fixed_optimizer_base_step():
    opt = mopt.Optimizer([np.ones(3)], 0.1)
    try:
        opt.step([np.ones(3)])
    except (NotImplementedError, TypeError):
        return
    except AttributeError as e:
        raise AssertionError(f"AttributeError: {e}") from e
