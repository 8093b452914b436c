"""The reliability harness: "never segfaults" made measurable for every
public function.  The registry of public functions is tests/fuzz_registry.py;
this module makes, traces and checks the calls (``run_one``), keeps the
known bugs (``KNOWN_BUGS``), the counters of the end-of-run summary and the
watchdog.

What is here
------------
* ``REGISTRY`` (tests/fuzz_registry.py, whose docstring says how to add a
  function) -- one line per public name of ``mlkern``, ``mlkern.optim``,
  ``mlkern.calculus`` and ``mlkern.layers``: how to build a valid call from
  arrays of any shape (the builder) and which arguments the fuzzer may corrupt.
  ``test_registry_covers_public_api`` fails when a public name has no line, so a
  new function is covered -- by every test below -- by adding one line.
* ``test_fuzz[<name>]`` (test_reliability_fuzz.py) -- a Hypothesis API fuzzer over the registry: random
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
  (``MemoryError`` only for deliberately huge requests); where docs/contract.rst says an
  input is invalid (complex input, wrong out=, axis out of range, label out of
  range, negative lr, shape mismatch, 0-d input to a row-wise function, wrong
  argument types) the call must raise.  A successful call is also checked
  against the same call on C-contiguous copies (layout, out= and overlap
  handling must not change the result), and every input array that is not
  out= (or an optimiser's state) must be bit-for-bit unchanged.
* ``test_inputs_untouched`` (test_reliability_inputs.py) -- every registry function on C, F, strided,
  negative-stride, read-only and misaligned inputs, with and without out=:
  input bytes (and the whole buffer a view lives in) hashed before and after;
  a valid call must return, and agree with the call on C-contiguous copies.
* ``test_misaligned_auxiliary_arrays`` (test_reliability_inputs.py) -- labels, weights, pos_weight, alpha,
  grad_output, out= on misaligned buffers.  These pass on x86 even when a
  kernel reads through the misaligned pointer; run them under
  ``tools/sanitize.sh`` (ASan + UBSan build), which stops on such a load.
* ``test_threads_*`` (test_reliability_concurrency.py) -- 10 Python threads
  calling different kernels at once give bit-identical results to serial
  calls (dense within rounding: its GEMM panels follow the thread count); the
  documented per-thread policy.
* ``test_fork_*`` / ``test_multiprocessing_*`` (test_reliability_concurrency.py)
  -- fork after OpenMP started (also while another thread is inside a parallel
  kernel), a Pool with the "fork", "spawn" and "forkserver" start methods; all
  in subprocesses with timeouts, so a hang fails the test instead of blocking
  the run.
* ``test_memory_*`` (test_reliability_memory.py) -- RSS stays flat over 10^5
  calls per kernel family (``MLKERN_MEM_CALLS``); every function given a
  2**40- or 2**60-element broadcast view raises ``MemoryError``/``ValueError``
  at once.
* ``KNOWN_BUGS`` (here) / ``test_known_bug_*`` (test_reliability_regressions.py)
  -- bugs this harness found that are not fixed yet: each has an
  ``xfail(strict=True)`` test (so the fix is noticed) and a matcher so that the
  fuzzer keeps looking for *other* bugs in the same function (hits are counted
  and printed in the summary).  When a bug is fixed,
  its xfail test XPASSes and fails: delete the test's marker and the entry.

Running
-------
CI default (``MLKERN_FUZZ_EXAMPLES`` examples per registry function, 40 by
default; the reliability files take about 50 s on two cores)::

    PYTHONPATH=src python -m pytest tests/test_reliability_*.py

Long fuzz run (20000 examples for each of the 111 registry functions: about
two million examples, roughly three hours on two cores; split it with ``-k``
to run parts in parallel)::

    MLKERN_FUZZ_EXAMPLES=20000 PYTHONPATH=src python -m pytest tests/test_reliability_fuzz.py

A crash (segfault, abort) kills the interpreter -- pytest's faulthandler prints
the Python stack, CI reports the dead run -- but Hypothesis cannot print the
example then.  ``MLKERN_FUZZ_TRACE=/tmp/mlkern_fuzz.trace`` appends a
description of every fuzzed call to that file, flushed before the call: its last
line is the call that crashed.  ``MLKERN_FUZZ_SEED=<int>`` fixes the
Hypothesis seed (``--hypothesis-seed`` works too).

A hang anywhere in these files (a deadlock in a kernel) is turned into a failure
by a watchdog: after ``MLKERN_TEST_TIMEOUT`` seconds (300) in one test -- or one
fuzz example -- faulthandler prints every thread's stack and exits.

The totals (fuzzed calls, results, exceptions by type, known-bug hits, RSS
figures, fork and Pool results) are printed once at the end of the run (conftest.py), after
"mlkern reliability".  Memory-safety checking proper (out-of-bounds reads and
writes that do not crash, misaligned loads) is ``tools/sanitize.sh``, which
runs the whole suite, these files included, against an ASan + UBSan build.
"""
import collections
import contextlib
import copy
import dataclasses
import faulthandler
import hashlib
import inspect
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import note  # noqa: E402

from conftest import subprocess_env  # noqa: E402
from fuzz_registry import (  # noqa: E402
    apply_layout, BENIGN_MODES, F16, F32, F64, I64, is_int, misaligned_empty, REGISTRY,
)

FUZZ_EXAMPLES = int(os.environ.get("MLKERN_FUZZ_EXAMPLES", "40"))
FUZZ_TRACE = os.environ.get("MLKERN_FUZZ_TRACE") or None
FUZZ_SEED = os.environ.get("MLKERN_FUZZ_SEED")

STATS = collections.Counter()           # calls, ok, raised:<type>, known:<id>, examples
PHASE = ["other"]                       # which test is calling: "fuzz", "untouched", "huge", ...
REPORT = []                             # lines for the end-of-run summary


# =============================================================================
# the end-of-run summary
# =============================================================================
def print_summary(config):
    """Print the totals (called once, at the end of the session, by conftest.py)."""
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
    tr = config.pluginmanager.get_plugin("terminalreporter")
    capman = config.pluginmanager.get_plugin("capturemanager")
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
            elif out is not None and isinstance(call.cmp, tuple) and isinstance(res, tuple) \
                    and len(res) == len(call.cmp):
                # every component by its own rule, wherever out= sits (max pooling's
                # out= is the values, res[0]; a loss's is the gradient, res[1])
                compare(res, ref, call.cmp, ctx.mode)
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


def _run_script(code, timeout=180):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=timeout, env=subprocess_env())
