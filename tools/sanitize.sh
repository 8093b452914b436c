#!/usr/bin/env bash
# Run mlkern's test suite against an AddressSanitizer + UndefinedBehaviorSanitizer
# build of the extension.
#
# The sources (src/, setup.py, pyproject.toml, README.md, MANIFEST.in) are copied
# to a scratch directory and built in place *there* with MLKERN_SANITIZE set
# (setup.py then adds -fsanitize=... -fno-omit-frame-pointer -g); the in-place
# build of this checkout is not touched.  The tests of this checkout then run
# with PYTHONPATH pointing at the copy, libasan preloaded into the (uninstrumented)
# Python interpreter, and:
#   ASAN_OPTIONS   detect_leaks=0              CPython itself leaks at exit
#                  allocator_may_return_null=1 a request too large to allocate gives
#                                              MemoryError (as without ASan) instead of
#                                              an ASan abort (tests/test_reliability_memory.py
#                                              asks for 2**40-element arrays on purpose)
#                  abort_on_error=1            a report kills the run (pytest cannot hide it)
#   UBSAN_OPTIONS  print_stacktrace=1:halt_on_error=1
#                  (UBSAN_OPTIONS=halt_on_error=0 tools/sanitize.sh: report every
#                  distinct UB site and run the suite to the end; options given in
#                  the environment are appended, and the last setting wins)
#   PYTHONMALLOC=malloc                        Python objects through ASan's malloc too
#   MLKERN_UNDER_SANITIZER=1                   tests that measure RSS skip the threshold
#                                              (ASan's quarantine holds freed memory)
#
# Usage:  tools/sanitize.sh [pytest arguments]     default: the whole tests/ directory
# Environment:
#   MLKERN_SANITIZE   the -fsanitize= list (default: address,undefined)
#   SANITIZE_DIR      the scratch directory (default: a new mktemp -d; kept afterwards,
#                     its path is printed: build.log and pytest.log are in it)
#   CC                the compiler (default: cc; libasan is located with $CC -print-file-name)
# Exit status: pytest's (non-zero on a test failure or a sanitizer report).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SAN=${MLKERN_SANITIZE:-address,undefined}
WORK=${SANITIZE_DIR:-$(mktemp -d -t mlkern-sanitize.XXXXXX)}
CC=${CC:-cc}
PY=${PYTHON:-python}

echo "== mlkern sanitizer run: -fsanitize=$SAN, scratch dir $WORK"

# ---- a private copy of the sources
mkdir -p "$WORK"
rm -rf "$WORK/src" "$WORK/build"
cp -r "$ROOT/src" "$WORK/src"
for f in setup.py pyproject.toml README.md MANIFEST.in; do
    [ -e "$ROOT/$f" ] && cp "$ROOT/$f" "$WORK/"
done
# drop the checkout's build products so that everything is rebuilt
find "$WORK/src" \( -name '*.so' -o -name '__pycache__' \) -prune -exec rm -rf {} +
rm -f "$WORK/src/mlkern/_kernels.c"

LIBASAN=$("$CC" -print-file-name=libasan.so)
if [ ! -e "$LIBASAN" ] || [ "$LIBASAN" = "libasan.so" ]; then
    echo "sanitize.sh: libasan.so not found ($CC -print-file-name=libasan.so gave '$LIBASAN')" >&2
    exit 2
fi
LIBASAN=$(readlink -f "$LIBASAN")

# ---- build in place, in the copy
echo "== building (log: $WORK/build.log)"
if ! (cd "$WORK" && CC="$CC" MLKERN_SANITIZE="$SAN" "$PY" setup.py build_ext --inplace \
        >"$WORK/build.log" 2>&1); then
    tail -40 "$WORK/build.log" >&2
    echo "sanitize.sh: the sanitizer build failed" >&2
    exit 2
fi
SO=$(ls "$WORK"/src/mlkern/_kernels*.so)
DEPS=$(ldd "$SO")
if [[ "$SAN" == *address* ]] && [[ "$DEPS" != *libasan* ]]; then
    echo "sanitize.sh: $SO is not linked against libasan: the sanitizer flags were not applied" >&2
    exit 2
fi
echo "   built $SO"
grep -E 'asan|ubsan|gomp' <<<"$DEPS" | sed 's/^/   /' || true

# ---- run the checkout's tests against the copy
export PYTHONPATH="$WORK/src"
export LD_PRELOAD="$LIBASAN${LD_PRELOAD:+:$LD_PRELOAD}"
export ASAN_OPTIONS="detect_leaks=0:allocator_may_return_null=1:abort_on_error=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
export PYTHONMALLOC=malloc
export MLKERN_UNDER_SANITIZER=1

where=$(cd "$WORK" && "$PY" -c 'import mlkern, os; print(os.path.dirname(mlkern.__file__))')
if [ "$where" != "$WORK/src/mlkern" ]; then
    echo "sanitize.sh: mlkern imported from $where, not from the sanitizer build" >&2
    exit 2
fi

if [ "$#" -eq 0 ]; then
    set -- "$ROOT/tests"
fi
echo "== pytest $* (log: $WORK/pytest.log)"
set +e
# -v: the log names the test that was running when a sanitizer stopped the run;
# --capture=sys: C-level stderr (the sanitizer's report) goes to the log, not into
# pytest's per-test capture that a dying process never prints
(cd "$WORK" && "$PY" -m pytest -p no:cacheprovider -v -rfE --capture=sys "$@") >"$WORK/pytest.log" 2>&1
rc=$?
set -e

echo "== last lines of $WORK/pytest.log"
tail -25 "$WORK/pytest.log"
reports=$(grep -cE 'ERROR: AddressSanitizer|runtime error:|SUMMARY: (Address|UndefinedBehavior)Sanitizer' \
          "$WORK/pytest.log" || true)
echo "== sanitizer reports in the log: $reports"
if [ "$reports" != "0" ]; then
    grep -nE -A30 'ERROR: AddressSanitizer|runtime error:' "$WORK/pytest.log" | head -120
fi
echo "== pytest exit status: $rc"
exit "$rc"
