"""Bugs the reliability harness found: the fixed ones as regression tests, the
open ones (``KNOWN_BUGS`` in tests/fuzz_harness.py) as strict xfails, so a fix
is noticed (then delete the marker and the KNOWN_BUGS entry).
(The harness, its options and the summary: tests/fuzz_harness.py.)
"""
import subprocess

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")

import mlkern  # noqa: E402
import mlkern.calculus as mcalc  # noqa: E402
import mlkern.optim as mopt  # noqa: E402
from fuzz_harness import _run_script, _watchdog  # noqa: E402,F401 (_watchdog: autouse, a hang fails the test)
from fuzz_registry import _f_softplus_sum, gen_values  # noqa: E402


# =============================================================================
# the fixed bugs (regressions) and the open ones (one strict xfail each, see KNOWN_BUGS)
# =============================================================================
def _raises_value_or_type(f):
    try:
        f()
    except (ValueError, TypeError):
        return
    except Exception as e:
        raise AssertionError(f"{type(e).__name__}: {e}") from e
    raise AssertionError("no exception")


# fixed (found by the fuzzer): overflow-axis:
# softmax/log_softmax/logsumexp/argmax/softmax_backward/ log_softmax_backward(x, axis=2**70) raise
# OverflowError (fast path converts axis to  C ssize_t) instead of the ValueError docs/contract.rst asks for
# an axis out of range
@pytest.mark.parametrize("f", ["softmax", "log_softmax", "logsumexp", "argmax"])
def test_fixed_overflow_axis(f):
    _raises_value_or_type(lambda: getattr(mlkern, f)(np.ones(3), axis=2**70))


# fixed (found by the fuzzer): overflow-axis: softmax_backward/log_softmax_backward(g,
# y, axis=2**63) raise OverflowError
@pytest.mark.parametrize("f", ["softmax_backward", "log_softmax_backward"])
def test_fixed_overflow_axis_backward(f):
    _raises_value_or_type(lambda: getattr(mlkern, f)(np.ones(3), np.ones(3), axis=2**63))


# fixed (found by the fuzzer)
def test_fixed_overflow_ignore_index():
    _raises_value_or_type(lambda: mlkern.cross_entropy(np.ones((2, 3)), [0, 1], ignore_index=2**70))


# fixed (found by the fuzzer)
def test_fixed_overflow_threads():
    try:
        _raises_value_or_type(lambda: mlkern.set_num_threads(2**31))
    finally:
        mlkern.set_num_threads(None)


# fixed (found by the fuzzer)
@pytest.mark.parametrize("f", ["nll_loss", "nll_loss_grad", "nll_loss_with_grad"])
def test_fixed_nll_zero_division(f):
    def call():
        getattr(mlkern, f)(np.log(np.full((2, 3), 1 / 3)), [-100, -100])
        getattr(mlkern, f)(np.zeros((0, 3)), np.zeros(0, np.int64))
    try:
        call()
    except ZeroDivisionError as e:
        raise AssertionError(f"ZeroDivisionError: {e}") from e


# fixed (found by the fuzzer)
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


# fixed (found by the fuzzer)
def test_fixed_numerical_grad_zero_step():
    try:
        mcalc.numerical_grad(_f_softplus_sum, [2.87e79], eps=1e-3)   # a result (NaN/inf) is fine
    except (ValueError, TypeError):
        pass
    except ZeroDivisionError as e:
        raise AssertionError(f"ZeroDivisionError: {e}") from e


# fixed (found by the fuzzer): log_softmax-inplace-inf: log_softmax(x, axis=0, out=x)
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


# fixed (found by the fuzzer): xent-smoothing-no-classes: cross_entropy(np.zeros((2,
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


# fixed (found by the fuzzer): bce-huge-scan: binary_cross_entropy* scan the whole
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


# fixed (found by the fuzzer)
def test_fixed_optimizer_base_step():
    opt = mopt.Optimizer([np.ones(3)], 0.1)
    try:
        opt.step([np.ones(3)])
    except (NotImplementedError, TypeError):
        return
    except AttributeError as e:
        raise AssertionError(f"AttributeError: {e}") from e
