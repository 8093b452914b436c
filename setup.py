"""Build of mlkern's extension.

* The flags are chosen by compiler type when the extension is built
  (``BuildExt.build_extensions``): gcc/clang ("unix", also mingw) or MSVC.
* OpenMP (gcc/clang) is detected by compiling *and running* a small program:
  first with ``-fopenmp`` (gcc; clang with libomp on Linux), then with
  ``-Xpreprocessor -fopenmp`` + ``-lomp`` (Apple clang with Homebrew's
  libomp; CFLAGS/LDFLAGS must point at it, as the cibuildwheel macOS
  configuration in pyproject.toml does).  The test program is compiled with
  $CC (default cc) and the environment's CFLAGS/LDFLAGS.  Without OpenMP
  the build is serial and says so loudly; MLKERN_FAIL_NO_OPENMP=1 makes a
  missing OpenMP an error (CI sets it).  MSVC: ``/openmp``.
* Flags (gcc/clang): -O3 -fno-math-errno -fno-trapping-math.  Never
  -ffast-math: with gcc a -ffast-math shared object sets flush-to-zero for
  the whole process.  MSVC: /O2 /openmp /std:c11 (/fp:precise, the default).
* The kernels are compiled once per SIMD level from one source:
  mlk_kernels_baseline.c with the compiler's default target,
  mlk_kernels_v3.c alone with -march=x86-64-v3 (AVX2+FMA) and
  mlk_kernels_v4.c with -march=x86-64-v4 (AVX-512); mlk_dispatch.c picks
  the best the CPU supports at import (MLKERN_CPU overrides).  The v3/v4
  files are built on x86-64 with gcc/clang only (MSVC: baseline only).
* MLKERN_NATIVE=1 (source builds only, gcc/clang): compile with
  -march=native, so the baseline kernels (and the scalar functions of the
  Cython API) use every instruction of the build machine.  The v3/v4 files
  keep their own -march.  The result runs only on CPUs like the build
  machine: never set it for wheels.  ``mlkern.show_config()`` reports it.
* MLKERN_VEC_REPORT=1 prints gcc's -fopt-info-vec report for the kernels.
* MLKERN_SANITIZE=<list> builds with -fsanitize=<list> (tools/sanitize.sh).
"""
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import textwrap

import numpy as np
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

BASE_FLAGS = ["-O3", "-fno-math-errno", "-fno-trapping-math", "-std=gnu11",
              "-ffp-contract=fast",  # ISO -std=c11 would turn FMA contraction off
              "-fopenmp-simd",       # `omp simd reduction`: vector sums without -ffast-math
              "-Wno-unused-function"]
MSVC_FLAGS = ["/O2", "/std:c11"]
V3_FLAGS = ["-march=x86-64-v3", "-mtune=generic"]
V4_FLAGS = ["-march=x86-64-v4", "-mtune=generic", "-mprefer-vector-width=512"]
IS_X86_64 = platform.machine().lower() in ("x86_64", "amd64")
CDIR = os.path.join("src", "mlkern", "_c")


def _banner(msg):
    line = "*" * 78
    sys.stderr.write(f"\n{line}\n{msg}\n{line}\n\n")


def _env_flags(name):
    return shlex.split(os.environ.get(name, ""))


def openmp_flags():
    """Return (compile, link) flags if an OpenMP program compiles and runs
    with $CC, else None.  Tries gcc's -fopenmp, then Apple clang's
    -Xpreprocessor -fopenmp with -lomp."""
    cc = shlex.split(os.environ.get("CC", "cc")) or ["cc"]
    src = textwrap.dedent("""
        #include <omp.h>
        #include <stdio.h>
        int main(void) {
            int n = 0;
            #pragma omp parallel reduction(+:n)
            n += 1;
            printf("%d\\n", n > 0 ? 1 : 0);
            return n > 0 ? 0 : 1;
        }
    """)
    candidates = [(["-fopenmp"], ["-fopenmp"]),
                  (["-Xpreprocessor", "-fopenmp"], ["-lomp"])]
    with tempfile.TemporaryDirectory() as d:
        c = os.path.join(d, "t.c")
        exe = os.path.join(d, "t")
        with open(c, "w") as f:
            f.write(src)
        for cflags, lflags in candidates:
            try:
                subprocess.run(cc + _env_flags("CFLAGS") + cflags + [c, "-o", exe]
                               + _env_flags("LDFLAGS") + lflags,
                               check=True, capture_output=True, timeout=120)
                out = subprocess.run([exe], check=True, capture_output=True, timeout=60)
                if out.stdout.strip() == b"1":
                    return cflags, lflags
            except (OSError, subprocess.SubprocessError):
                pass
    return None


def _no_openmp():
    if os.environ.get("MLKERN_FAIL_NO_OPENMP") == "1":
        raise RuntimeError("mlkern: OpenMP not found (a test program with -fopenmp "
                           "did not compile and run) and MLKERN_FAIL_NO_OPENMP=1")
    _banner("WARNING: mlkern is being built WITHOUT OpenMP: every kernel will run "
            "on one thread.\nInstall an OpenMP-capable compiler (gcc with libgomp) "
            "to get parallel kernels.")


def unix_flags(ext):
    """gcc/clang: (compile flags, link flags, per-file flags, macros)."""
    flags = list(BASE_FLAGS)
    link = []
    macros = []
    omp = openmp_flags()
    if omp is None:
        _no_openmp()
    else:
        flags += omp[0]
        link += omp[1]
    if os.environ.get("MLKERN_NATIVE") == "1":
        flags += ["-march=native"]
        macros.append(("MLK_NATIVE", "1"))
    if os.environ.get("MLKERN_VEC_REPORT") == "1":
        flags += ["-fopt-info-vec-optimized"]
    # --- sanitizer build (tools/sanitize.sh) -----------------------------------
    # MLKERN_SANITIZE=address,undefined (any -fsanitize= list) adds
    # -fsanitize=<list> -fno-omit-frame-pointer -g to the compile flags of every
    # source (the per-SIMD-level kernel files included) and -fsanitize=<list> to
    # the link flags.  For testing only: never set it for a release build.
    sanitize = os.environ.get("MLKERN_SANITIZE", "").strip()
    if sanitize:
        flags += [f"-fsanitize={sanitize}", "-fno-omit-frame-pointer", "-g"]
        link += [f"-fsanitize={sanitize}"]
    # ---------------------------------------------------------------------------
    per_file = {}
    if IS_X86_64:
        for name, lvl_flags, macro in (("mlk_kernels_v3.c", V3_FLAGS, "MLK_BUILD_V3"),
                                       ("mlk_kernels_v4.c", V4_FLAGS, "MLK_BUILD_V4")):
            src = os.path.join(CDIR, name)
            ext.sources.append(src)
            per_file[src] = lvl_flags
            macros.append((macro, "1"))
    return flags, link, per_file, macros


def msvc_flags(ext):
    """MSVC: /O2 /openmp, the baseline kernels only (the v3/v4 files rely on
    gcc's -march and __builtin_cpu_supports)."""
    if os.environ.get("MLKERN_NATIVE") == "1":
        _banner("MLKERN_NATIVE=1 is ignored with MSVC")
    return MSVC_FLAGS + ["/openmp"], [], {}, []


class BuildExt(build_ext):
    """Choose the flags for the compiler in use, compile the per-SIMD-level
    kernel files with their own flags, then the extension."""

    def build_extensions(self):
        ctype = self.compiler.compiler_type
        for ext in self.extensions:
            flags, link, per_file, macros = (msvc_flags if ctype == "msvc" else unix_flags)(ext)
            ext.extra_compile_args = list(ext.extra_compile_args or []) + flags
            ext.extra_link_args = list(ext.extra_link_args or []) + link
            ext.define_macros = list(ext.define_macros or []) + macros
            ext.per_file_flags = per_file
        super().build_extensions()

    def build_extension(self, ext):
        per_file = getattr(ext, "per_file_flags", {})
        objects = []
        for src, flags in per_file.items():
            ext.sources.remove(src)
            objs = self.compiler.compile(
                [src], output_dir=self.build_temp, include_dirs=ext.include_dirs,
                macros=ext.define_macros, extra_postargs=ext.extra_compile_args + flags,
                depends=ext.depends)
            objects.extend(objs)
        ext.extra_objects = list(ext.extra_objects or []) + objects
        super().build_extension(ext)


def make_extensions():
    from Cython.Build import cythonize

    csrc = [os.path.join(CDIR, f) for f in ("mlk_dispatch.c", "mlk_kernels_baseline.c")]
    macros = [("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")]
    depends = [os.path.join(CDIR, f) for f in os.listdir(CDIR) if f.endswith(".h")]
    pkg = os.path.join("src", "mlkern")
    depends += [os.path.join(pkg, f) for f in os.listdir(pkg) if f.endswith((".pxi", ".pxd"))]

    ext = Extension(
        "mlkern._kernels",
        sources=[os.path.join(pkg, "_kernels.pyx")] + csrc,
        include_dirs=[CDIR, np.get_include()],
        define_macros=macros,
        depends=depends,
    )
    return cythonize(
        [ext],
        compiler_directives={"language_level": "3", "boundscheck": False,
                             "wraparound": False, "cdivision": True,
                             "initializedcheck": False},
    )


setup(ext_modules=make_extensions(), cmdclass={"build_ext": BuildExt})
