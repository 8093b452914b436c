#!/usr/bin/env bash
# Build mlkern's sdist, check it holds every file the build needs, pip-install
# it into a fresh venv (a full compile from the sdist alone, in pip's isolated
# build environment) and smoke-test the installed package from a directory
# where ./src is not importable.
#
#   tools/sdist_smoke.sh              # uses `python` (needs the `build` module)
#   PYTHON=python3.12 tools/sdist_smoke.sh
#
# Exits non-zero on any failure.  MLKERN_FAIL_NO_OPENMP=1 is set, so an
# sdist build without OpenMP fails too.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${PYTHON:-python}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export MLKERN_FAIL_NO_OPENMP=1
export PIP_DISABLE_PIP_VERSION_CHECK=1
t0=$(date +%s)

echo "== sdist: build =="
"$PY" -m build --sdist --outdir "$WORK/dist" . >"$WORK/build.log" 2>&1 || {
    tail -40 "$WORK/build.log"; echo "sdist_smoke: python -m build --sdist failed" >&2; exit 1; }
SDIST=$(ls "$WORK"/dist/mlkern-*.tar.gz)
echo "built $(basename "$SDIST") ($(du -k "$SDIST" | cut -f1) KiB)"

echo "== sdist: contents =="
# every tracked file the build or the installed package needs must be there
if git -C "$ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git -C "$ROOT" ls-files src setup.py pyproject.toml MANIFEST.in README.md > "$WORK/needed.txt"
else
    (find src -type f ! -name '*.so' ! -name '_kernels.c' ! -path '*__pycache__*';
     echo setup.py; echo pyproject.toml; echo README.md) > "$WORK/needed.txt"
fi
"$PY" - "$SDIST" "$WORK/needed.txt" <<'PY'
import sys, tarfile
with tarfile.open(sys.argv[1]) as tf:
    names = {m.name.split("/", 1)[1] for m in tf.getmembers() if m.isfile() and "/" in m.name}
needed = [ln.strip() for ln in open(sys.argv[2]) if ln.strip()]
missing = [f for f in needed if f not in names]
kinds = {}
for n in names:
    if n.startswith("src/"):
        ext = n.rsplit(".", 1)[-1] if "." in n.rsplit("/", 1)[-1] else n.rsplit("/", 1)[-1]
        kinds[ext] = kinds.get(ext, 0) + 1
print("sdist files under src/ by kind:", dict(sorted(kinds.items())))
generated = [n for n in names if n.endswith(("_kernels.c", ".so", ".pyd", ".o"))]
if missing:
    sys.exit(f"sdist_smoke: missing from the sdist: {missing}")
if generated:
    sys.exit(f"sdist_smoke: generated files in the sdist: {generated}")
print(f"all {len(needed)} tracked source files present, no generated files")
PY

echo "== fresh venv: pip install the sdist =="
"$PY" -m venv "$WORK/venv"
VPY="$WORK/venv/bin/python"
[ -x "$VPY" ] || VPY="$WORK/venv/Scripts/python.exe"
t1=$(date +%s)
"$VPY" -m pip install -q "$SDIST" || { echo "sdist_smoke: pip install of the sdist failed" >&2; exit 1; }
t2=$(date +%s)
echo "pip install (compile from the sdist): $((t2 - t1)) s"

echo "== smoke test of the installed package =="
mkdir -p "$WORK/elsewhere"
cd "$WORK/elsewhere"          # no ./src here: only the installed mlkern can be imported
env -u PYTHONPATH "$VPY" - <<'PY'
import os, sys
import numpy as np
import mlkern

pkg = os.path.dirname(os.path.abspath(mlkern.__file__))
assert pkg.startswith(os.path.abspath(sys.prefix)), f"mlkern imported from {pkg}, not the venv"
info = mlkern.show_config()
assert info["openmp"], "the sdist build has no OpenMP"
assert mlkern._kernels.openmp_enabled()

x = np.linspace(-40.0, 40.0, 200_001)
np.testing.assert_allclose(mlkern.sigmoid(x), 1.0 / (1.0 + np.exp(-x)), rtol=1e-14, atol=0)
np.testing.assert_allclose(mlkern.softplus(x), np.logaddexp(0.0, x), rtol=1e-14, atol=0)
np.testing.assert_allclose(mlkern.tanh(x), np.tanh(x), rtol=1e-14, atol=0)
assert float(mlkern.softplus(-30.0)) == 9.357622968839737e-14
assert float(mlkern.sigmoid(-1000.0)) == 0.0
x32 = x.astype(np.float32)
assert mlkern.sigmoid(x32).dtype == np.float32

rng = np.random.default_rng(0)
z = rng.standard_normal((512, 37)) * 5
e = np.exp(z - z.max(axis=1, keepdims=True))
np.testing.assert_allclose(mlkern.softmax(z), e / e.sum(axis=1, keepdims=True), rtol=1e-13)
lse = np.log(np.exp(z - z.max(1, keepdims=True)).sum(1)) + z.max(1)
np.testing.assert_allclose(mlkern.logsumexp(z, axis=1), lse, rtol=1e-13)
y = rng.integers(0, 37, 512)
ref = float(np.mean(lse - z[np.arange(512), y]))
np.testing.assert_allclose(float(mlkern.cross_entropy(z, y)), ref, rtol=1e-13)

with mlkern.threads(1):
    one = mlkern.gelu(x)
with mlkern.threads(2):
    two = mlkern.gelu(x)
np.testing.assert_array_equal(one, two)

for f in ("py.typed", "__init__.pyi", "cython_api.pxd", "_kernels.pxd",
          os.path.join("_c", "mlk_act.h"), os.path.join("_c", "mlk_math.h")):
    assert os.path.isfile(os.path.join(pkg, f)), f"not installed: {f}"
assert os.path.isfile(os.path.join(mlkern.get_include(), "mlk_kernels.h"))
print("sdist smoke test: OK")
PY
echo "sdist_smoke: OK in $(( $(date +%s) - t0 )) s"
