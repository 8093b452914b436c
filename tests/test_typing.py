"""Type information: ``mypy --strict`` passes on a client of the public API
(tests/typing_client.py) and the .pyi stubs agree with the runtime
(``python -m mypy.stubtest``, allowlist in tests/stubtest_allowlist.txt).

Both check the mlkern under test (conftest.SRC: the installed package or an
in-place build); skipped only when mypy is not installed.
"""
import os
import subprocess
import sys

import pytest

import mlkern
from conftest import SRC

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CLIENT = os.path.join(HERE, "typing_client.py")
PKG = os.path.dirname(os.path.abspath(mlkern.__file__))

pytest.importorskip("mypy", reason="mypy is not installed (pip install '.[test]')")


def _env():
    env = dict(os.environ)
    env.pop("MYPYPATH", None)
    if "site-packages" not in SRC and "dist-packages" not in SRC:
        # an in-place build: point mypy at it (an installed package is found
        # by mypy on its own, through its py.typed marker)
        env["MYPYPATH"] = SRC
    env["PYTHONPATH"] = SRC
    return env


def _config_args():
    cfg = os.path.join(ROOT, "pyproject.toml")
    return ["--config-file", cfg] if os.path.isfile(cfg) else []


# modules typed by a stub (the compiled module; the package namespace, whose
# __all__ is built at run time and which mypy reads only as a literal list)
# and the modules typed inline
STUBBED = ("__init__", "_kernels")
INLINE = ("_config", "calculus", "_docs", "optim", "rowwise", "activations", "losses", "nn")


def test_package_is_marked_typed():
    import importlib
    import inspect
    assert os.path.isfile(os.path.join(PKG, "py.typed"))
    for mod in STUBBED:
        assert os.path.isfile(os.path.join(PKG, mod + ".pyi")), mod
    for mod in INLINE:
        # no stub to drift from the code: every public function and method is annotated
        assert not os.path.isfile(os.path.join(PKG, mod + ".pyi")), mod
        m = importlib.import_module("mlkern." + mod)
        public = [v for k, v in vars(m).items() if not k.startswith("_")
                  and getattr(v, "__module__", None) == m.__name__]
        fns = [f for f in public if inspect.isfunction(f)]
        fns += [f for c in public if inspect.isclass(c) for k, f in vars(c).items()
                if inspect.isfunction(f) and (not k.startswith("_") or k == "__init__")]
        assert fns, mod
        for f in fns:
            sig = inspect.signature(f)
            assert sig.return_annotation is not inspect.Signature.empty, f"{mod}.{f.__name__}"
            assert all(p.annotation is not inspect.Parameter.empty
                       for p in sig.parameters.values() if p.name != "self"), f"{mod}.{f.__qualname__}"


def test_mypy_strict_on_typing_client(tmp_path):
    p = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-incremental",
                        "--cache-dir", str(tmp_path / "cache"), *_config_args(), CLIENT],
                       capture_output=True, text=True, timeout=600, env=_env(), cwd=tmp_path)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "Success: no issues found in 1 source file" in p.stdout, p.stdout


def test_mypy_rejects_a_wrong_client(tmp_path):
    # the check is not vacuous: the stubs are found and used
    bad = tmp_path / "bad_client.py"
    bad.write_text(
        "import numpy as np\n"
        "from numpy.typing import NDArray\n"
        "import mlkern\n"
        "def f(x: NDArray[np.float64]) -> None:\n"
        "    y: NDArray[np.float32] = mlkern.sigmoid(x)\n"
        "    loss: NDArray[np.float64] = mlkern.mse(x, x)\n"
        "    mlkern.set_num_threads('2')\n"
        "    reveal_type(mlkern.cross_entropy_with_grad(x, x))\n")
    p = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-incremental",
                        "--cache-dir", str(tmp_path / "cache"), *_config_args(), str(bad)],
                       capture_output=True, text=True, timeout=600, env=_env(), cwd=tmp_path)
    out = p.stdout
    assert p.returncode == 1, out + p.stderr
    assert 'Argument 1 to "sigmoid"' in out, out
    assert "bad_client.py:6: error: Incompatible types in assignment" in out, out
    assert 'Argument 1 to "set_num_threads"' in out, out
    assert "tuple[numpy.float64, numpy.ndarray" in out, out
    assert "Found 3 errors" in out, out


def test_typing_client_runs():
    p = subprocess.run([sys.executable, CLIENT], capture_output=True, text=True, timeout=300,
                       env=_env(), cwd=HERE)
    assert p.returncode == 0, p.stdout + p.stderr
    assert len(p.stdout.split()) == 6


@pytest.mark.skipif(os.environ.get("MLKERN_CPU", "").strip().lower() == "baseline",
                    reason="the stubs do not depend on the SIMD level; stubtest runs in the "
                           "default-dispatch pass (it takes ~40 s)")
def test_stubtest(tmp_path):
    allow = os.path.join(HERE, "stubtest_allowlist.txt")
    p = subprocess.run([sys.executable, "-m", "mypy.stubtest", "mlkern", "--allowlist", allow,
                        "--mypy-config-file", os.path.join(ROOT, "pyproject.toml")],
                       capture_output=True, text=True, timeout=900, env=_env(), cwd=tmp_path)
    assert p.returncode == 0, p.stdout[-6000:] + p.stderr[-3000:]
    assert "Success: no issues found in" in p.stdout, p.stdout
