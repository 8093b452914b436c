"""Threads, SIMD dispatch, show_config, and what importing mlkern does to the
process (no flush-to-zero), plus the GIL release."""
import io
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import mlkern
from conftest import CASES, CASE_IDS, subprocess_env


def _run(code, **env):
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       env=subprocess_env(**env))
    return p


# ---------------------------------------------------------------- threads
@pytest.fixture(autouse=True)
def _restore_threads():
    yield
    mlkern.set_num_threads(None)


def test_get_num_threads_positive():
    n = mlkern.get_num_threads()
    assert isinstance(n, int) and n >= 1


def test_set_num_threads():
    mlkern.set_num_threads(1)
    assert mlkern.get_num_threads() == 1
    prev = mlkern.set_num_threads(2)
    assert prev == 1
    assert mlkern.get_num_threads() <= 2
    mlkern.set_num_threads(None)
    assert mlkern.get_num_threads() >= 1


def test_threads_context_manager_restores():
    before = mlkern.get_num_threads()
    with mlkern.threads(1):
        assert mlkern.get_num_threads() == 1
        with mlkern.threads(2):
            assert mlkern.get_num_threads() == min(2, max(2, before)) or mlkern.get_num_threads() >= 1
        assert mlkern.get_num_threads() == 1
    assert mlkern.get_num_threads() == before
    # restored also when the body raises
    with pytest.raises(RuntimeError):
        with mlkern.threads(1):
            raise RuntimeError
    assert mlkern.get_num_threads() == before


@pytest.mark.parametrize("bad,exc", [(0, ValueError), (-3, ValueError), ("2", TypeError), (1.5, TypeError)])
def test_set_num_threads_bad(bad, exc):
    with pytest.raises(exc, match="n"):
        mlkern.set_num_threads(bad)
    with pytest.raises(exc):
        with mlkern.threads(bad):
            pass


def test_threadpoolctl_limits():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    before = mlkern.get_num_threads()
    with threadpoolctl.threadpool_limits(1):
        assert mlkern.get_num_threads() == 1
        x = np.linspace(-5, 5, 10 ** 6)
        np.testing.assert_array_equal(mlkern.sigmoid(x), mlkern.sigmoid(x.copy()))
    assert mlkern.get_num_threads() == before
    with threadpoolctl.threadpool_limits(limits=1, user_api="openmp"):
        assert mlkern.get_num_threads() == 1


def _big(dtype, seed=0):
    rng = np.random.default_rng(seed)
    x = (3 * rng.standard_normal(10 ** 6)).astype(dtype)
    x[::1001] = 40 * rng.standard_normal(x[::1001].size)
    return x


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_results_identical_for_1_and_2_threads(case, dtype):
    x = _big(dtype)
    g = _big(dtype, 1)
    res = []
    for n in (1, 2, 3):
        with mlkern.threads(n):
            s = case.saved_of(x)
            res.append((case.f(x), case.grad(x), case.backward(g, s)))
    for other in res[1:]:
        for a, b in zip(res[0], other):
            assert np.array_equal(a, b, equal_nan=True)


def test_prelu_and_noisy_identical_for_1_and_2_threads():
    x = _big(np.float64).reshape(1000, 10, 100)
    g = _big(np.float64, 2).reshape(x.shape)
    a = np.linspace(0.1, 0.5, 10)
    res = []
    for n in (1, 2):
        with mlkern.threads(n):
            gx, ga = mlkern.prelu_backward(g, x, a)
            res.append((mlkern.prelu(x, a), mlkern.prelu_grad(x, a), gx, ga,
                        mlkern.noisy_relu(x, seed=3), mlkern.noisy_relu(x, sigma=0.2, seed=4),
                        mlkern.noisy_relu_backward(g, np.maximum(x, 0))))
    for a0, a1 in zip(*res):
        assert np.array_equal(a0, a1)


def test_omp_num_threads_env():
    p = _run("import mlkern; print(mlkern.get_num_threads())", OMP_NUM_THREADS="1")
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "1"
    p = _run("import mlkern; print(mlkern.get_num_threads())", OMP_NUM_THREADS="2")
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "2"


# ---------------------------------------------------------------- dispatch, show_config
def test_show_config_prints_the_facts():
    buf = io.StringIO()
    info = mlkern.show_config(file=buf)
    text = buf.getvalue()
    assert mlkern.__version__ in text
    assert "OpenMP" in text
    assert str(mlkern.get_num_threads()) in text
    level = mlkern._config.simd_level()
    assert level == "baseline" or level.startswith("x86-64-v")
    assert level in text
    assert "compiler" in text.lower()
    if os.environ.get("MLKERN_CPU", "").strip().lower() == "baseline":
        assert level == "baseline"
    assert info["simd_level"] == level


def test_show_config_stdout(capsys):
    mlkern.show_config()
    out = capsys.readouterr().out
    assert mlkern.__version__ in out and "OpenMP" in out


def test_mlkern_cpu_baseline_subprocess():
    p = _run("import mlkern; mlkern.show_config(); print('LEVEL', mlkern._config.simd_level())",
             MLKERN_CPU="baseline")
    assert p.returncode == 0, p.stderr
    assert "LEVEL baseline" in p.stdout
    assert "baseline" in p.stdout.splitlines()[-2] or "SIMD level in use: baseline" in p.stdout


def test_mlkern_cpu_default_subprocess():
    p = _run("import mlkern; print(mlkern._config.simd_level())", MLKERN_CPU=None)
    assert p.returncode == 0, p.stderr
    lvl = p.stdout.strip()
    assert lvl == "baseline" or lvl.startswith("x86-64-v")


def test_mlkern_cpu_unknown_raises_on_import():
    p = _run("import mlkern", MLKERN_CPU="avx9000")
    assert p.returncode != 0
    assert "MLKERN_CPU" in p.stderr and "avx9000" in p.stderr
    assert "Error" in p.stderr


def test_baseline_and_best_agree():
    """Both dispatch levels give results within a couple of ULP of each other."""
    code = ("import numpy as np, mlkern, sys\n"
            "x = np.linspace(-40, 40, 20001)\n"
            "ys = [mlkern.sigmoid(x), mlkern.softplus(x), mlkern.silu(x), mlkern.tanh(x), mlkern.elu(x),"
            " mlkern.log_sigmoid(x), mlkern.sigmoid_grad(x), mlkern.tanh_grad(x)]\n"
            "np.save(sys.stdout.buffer, np.stack(ys))\n")
    outs = []
    for lvl in ("baseline", None):
        p = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120,
                           env=subprocess_env(MLKERN_CPU=lvl))
        assert p.returncode == 0, p.stderr
        outs.append(np.load(io.BytesIO(p.stdout)))
    a, b = outs
    np.testing.assert_allclose(a, b, rtol=8 * np.finfo(float).eps, atol=1e-300)


# ---------------------------------------------------------------- no flush-to-zero
FTZ_CHECK = """
import numpy as np
def check():
    assert np.float64(5e-324) * np.float64(1.0) == 5e-324
    assert np.nextafter(0.0, 1.0) > 0
    assert np.float64(1e-310) * 1.0 == 1e-310
    assert np.float64(1e-310) / 2 > 0
    assert np.float64(5e-324) / 2 == 0
    assert np.float32(1e-40) * np.float32(1) != 0
    assert np.float32(1e-40) + np.float32(0) == np.float32(1e-40)
    a = np.full(1000, 1e-310); assert (a * 1.0 == 1e-310).all()       # vectorised loops too
    b = np.full(1000, np.float32(1e-40)); assert (b * np.float32(1) != 0).all()
check()
import mlkern
check()
x = np.linspace(-800, 800, 200001)
mlkern.sigmoid(x); mlkern.gelu(x); mlkern.silu(x.astype(np.float32))
check()
assert mlkern.sigmoid(-740.0) > 0
assert mlkern.sigmoid(np.float32(-100.0)) > 0
with mlkern.threads(2):
    mlkern.tanh(x)
check()
print("ok")
"""


@pytest.mark.parametrize("level", [None, "baseline"])
def test_no_flush_to_zero_after_import(level):
    p = _run(FTZ_CHECK, MLKERN_CPU=level)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "ok"


def test_no_flush_to_zero_in_process():
    mlkern.sigmoid(np.linspace(-800, 800, 100001))
    assert np.float64(5e-324) * np.float64(1.0) == 5e-324
    assert np.float32(1e-40) * np.float32(1) != 0


def test_import_has_no_other_side_effects():
    p = _run("import numpy as np, warnings\nwarnings.simplefilter('error')\n"
             "e = np.geterr()\nimport mlkern\nassert np.geterr() == e\nprint('ok')")
    assert p.returncode == 0, p.stderr


# ---------------------------------------------------------------- GIL, concurrency
def test_gil_released_concurrent_calls_correct():
    n = 10 ** 7
    x = np.linspace(-20, 20, n, dtype=np.float32)
    expected = mlkern.sigmoid(x)
    results = {}
    errors = []

    def work(k):
        try:
            results[k] = mlkern.sigmoid(x) if k % 2 == 0 else mlkern.tanh_grad(x)
        except Exception as e:  # pragma: no cover
            errors.append(e)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    expected_tg = mlkern.tanh_grad(x)
    for k, r in results.items():
        assert np.array_equal(r, expected if k % 2 == 0 else expected_tg)


def test_concurrent_threads_settings_and_noisy():
    x = np.linspace(-3, 3, 2 * 10 ** 6)
    ref = mlkern.noisy_relu(x, seed=8)
    out = [None] * 4

    def work(k):
        with mlkern.threads(1 + k % 2):
            out[k] = mlkern.noisy_relu(x, seed=8)

    ts = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    for r in out:
        assert np.array_equal(r, ref)


def test_fork_child_works():
    if not hasattr(os, "fork"):
        pytest.skip("no fork")
    code = ("import os, numpy as np, mlkern\n"
            "x = np.linspace(-5, 5, 10**6); ref = mlkern.sigmoid(x)\n"
            "pid = os.fork()\n"
            "if pid == 0:\n"
            "    ok = np.array_equal(mlkern.sigmoid(x), ref)\n"
            "    os._exit(0 if ok else 3)\n"
            "_, st = os.waitpid(pid, 0)\n"
            "assert os.WEXITSTATUS(st) == 0, st\n"
            "print('ok')\n")
    p = _run(code)
    assert p.returncode == 0, p.stderr
