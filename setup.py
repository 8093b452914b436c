"""Build of mlkern's extension.

* OpenMP is detected by compiling *and running* a small program with
  -fopenmp.  Without it the build is serial and says so loudly;
  MLKERN_FAIL_NO_OPENMP=1 makes a missing OpenMP an error (CI sets it).
* Flags: -O3 -fno-math-errno -fno-trapping-math.  Never -ffast-math: with
  gcc a -ffast-math shared object sets flush-to-zero for the whole process.
* The kernels are compiled once per SIMD level from one source:
  mlk_kernels_baseline.c with the compiler's default target,
  mlk_kernels_v3.c alone with -march=x86-64-v3 (AVX2+FMA) and
  mlk_kernels_v4.c with -march=x86-64-v4 (AVX-512); mlk_dispatch.c picks
  the best the CPU supports at import (MLKERN_CPU overrides).
* MLKERN_VEC_REPORT=1 prints gcc's -fopt-info-vec report for the kernels.
"""
import os
import platform
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
V3_FLAGS = ["-march=x86-64-v3", "-mtune=generic"]
V4_FLAGS = ["-march=x86-64-v4", "-mtune=generic", "-mprefer-vector-width=512"]
IS_X86_64 = platform.machine().lower() in ("x86_64", "amd64")


def _banner(msg):
    line = "*" * 78
    sys.stderr.write(f"\n{line}\n{msg}\n{line}\n\n")


def openmp_flags():
    """Return (compile, link) flags if an OpenMP program compiles and runs."""
    cc = os.environ.get("CC", "cc")
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
    with tempfile.TemporaryDirectory() as d:
        c = os.path.join(d, "t.c")
        exe = os.path.join(d, "t")
        with open(c, "w") as f:
            f.write(src)
        try:
            subprocess.run([cc, "-fopenmp", c, "-o", exe], check=True,
                           capture_output=True, timeout=120)
            out = subprocess.run([exe], check=True, capture_output=True, timeout=60)
            if out.stdout.strip() == b"1":
                return ["-fopenmp"], ["-fopenmp"]
        except (OSError, subprocess.SubprocessError):
            pass
    return None


class BuildExt(build_ext):
    """Compile the v3 kernel file with its own flags, then the extension."""

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

    flags = list(BASE_FLAGS)
    link = []
    omp = openmp_flags()
    if omp is None:
        if os.environ.get("MLKERN_FAIL_NO_OPENMP") == "1":
            raise RuntimeError("mlkern: OpenMP not found (a test program with -fopenmp "
                               "did not compile and run) and MLKERN_FAIL_NO_OPENMP=1")
        _banner("WARNING: mlkern is being built WITHOUT OpenMP: every kernel will run "
                "on one thread.\nInstall an OpenMP-capable compiler (gcc with libgomp) "
                "to get parallel kernels.")
    else:
        flags += omp[0]
        link += omp[1]
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

    cdir = os.path.join("src", "mlkern", "_c")
    csrc = [os.path.join(cdir, f) for f in ("mlk_dispatch.c", "mlk_kernels_baseline.c")]
    macros = [("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")]
    per_file = {}
    if IS_X86_64:
        v3 = os.path.join(cdir, "mlk_kernels_v3.c")
        csrc.append(v3)
        per_file[v3] = V3_FLAGS
        macros.append(("MLK_BUILD_V3", "1"))
        v4 = os.path.join(cdir, "mlk_kernels_v4.c")
        csrc.append(v4)
        per_file[v4] = V4_FLAGS
        macros.append(("MLK_BUILD_V4", "1"))
    depends = [os.path.join(cdir, f) for f in os.listdir(cdir) if f.endswith(".h")]

    ext = Extension(
        "mlkern._elementwise",
        sources=[os.path.join("src", "mlkern", "_elementwise.pyx")] + csrc,
        include_dirs=[cdir, np.get_include()],
        define_macros=macros,
        extra_compile_args=flags,
        extra_link_args=link,
        depends=depends,
    )
    exts = cythonize(
        [ext],
        compiler_directives={"language_level": "3", "boundscheck": False,
                             "wraparound": False, "cdivision": True,
                             "initializedcheck": False},
    )
    for e in exts:
        e.per_file_flags = per_file
    return exts


setup(ext_modules=make_extensions(), cmdclass={"build_ext": BuildExt})
