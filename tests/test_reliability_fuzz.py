"""The API fuzzer (Hypothesis) over every public function of the registry
(tests/fuzz_registry.py), and the check that the registry covers the public API.
``MLKERN_FUZZ_EXAMPLES`` examples per function (40 by default).
(The harness, its options and the summary: tests/fuzz_harness.py.)
"""
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import mlkern  # noqa: E402
from fuzz_harness import (  # noqa: E402,F401 (_watchdog: autouse, a hang fails the test)
    arm_watchdog, FUZZ_EXAMPLES, FUZZ_SEED, OUT_MODES, PHASE, run_one, STATS, _watchdog,
)
from fuzz_registry import FuzzCtx, public_names, REGISTRY, REGISTRY_NAMES  # noqa: E402


def test_registry_covers_public_api():
    missing = [n for n in public_names() if n not in REGISTRY]
    assert not missing, f"public functions without a line in tests/fuzz_registry.py REGISTRY: {missing}"
    stale = [n for n in REGISTRY if n not in public_names()]
    assert not stale, f"REGISTRY lines for names that are not public: {stale}"
    for q, s in REGISTRY.items():
        assert callable(s.func), q


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
