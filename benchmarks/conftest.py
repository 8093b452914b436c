"""pytest configuration of the benchmark suite.

Run everything (756 benchmarks by default; use -k to pick) or just the
correctness pass (each benchmark body once, values checked)::

    python -m pytest benchmarks --benchmark-disable -q
    python -m pytest benchmarks -k "sigmoid and 1e5"
    python -m pytest benchmarks --bench-sizes 1e3,1e5 --bench-threads 1

Files named ``bench_*.py`` here are collected by the hook below (the
project's pytest settings collect ``test_*.py`` only), so no
``-o python_files=...`` is needed.  Options (or environment variables):

--bench-sizes    MLKERN_BENCH_SIZES    element counts, default 1e3,1e5,1e7
--bench-dtypes   MLKERN_BENCH_DTYPES   f32,f64
--bench-threads  MLKERN_BENCH_THREADS  1,2
--bench-no-torch MLKERN_BENCH_NO_TORCH=1  leave PyTorch out

A benchmark whose id names a dtype (``...-f32-...``) also matches the
NumPy name in ``-k`` expressions: ``-k "sigmoid and float32"``.
"""
import fnmatch
import os
import re
import sys

import pytest

try:
    import mlkern  # noqa: F401
except ImportError:  # not installed: use the in-place build under src/
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src"))


def pytest_addoption(parser):
    g = parser.getgroup("mlkern benchmarks")
    g.addoption("--bench-sizes", default=os.environ.get("MLKERN_BENCH_SIZES", "1e3,1e5,1e7"),
                help="comma list of element counts (default 1e3,1e5,1e7; env MLKERN_BENCH_SIZES)")
    g.addoption("--bench-dtypes", default=os.environ.get("MLKERN_BENCH_DTYPES", "f32,f64"),
                help="comma list of f32,f64 (env MLKERN_BENCH_DTYPES)")
    g.addoption("--bench-threads", default=os.environ.get("MLKERN_BENCH_THREADS", "1,2"),
                help="comma list of thread counts (env MLKERN_BENCH_THREADS)")
    g.addoption("--bench-no-torch", action="store_true",
                default=os.environ.get("MLKERN_BENCH_NO_TORCH", "") not in ("", "0"),
                help="do not benchmark PyTorch (env MLKERN_BENCH_NO_TORCH=1)")


def pytest_collect_file(file_path, parent):
    """Collect benchmarks/bench_*.py as test modules, unless pytest's own
    python_files / command-line rule already collects the file."""
    name = file_path.name
    if not (name.startswith("bench_") and name.endswith(".py")):
        return None
    if parent.session.isinitpath(file_path):
        return None           # named on the command line: the python plugin collects it
    if any(fnmatch.fnmatch(name, pat) for pat in parent.config.getini("python_files")):
        return None           # e.g. -o python_files='bench_*.py'
    return pytest.Module.from_parent(parent, path=file_path)


_DTYPE_TAGS = (("f32", "float32"), ("f64", "float64"))


def pytest_collection_modifyitems(items):
    """``-k float32`` / ``-k float64`` select the benchmarks of that dtype."""
    for item in items:
        for tag, name in _DTYPE_TAGS:
            if re.search(rf"(?:^|[-\[]){tag}(?:-|\]|$)", item.name):
                item.extra_keyword_matches.add(name)
