/* The kernels for x86-64-v4 (AVX-512 F/BW/CD/DQ/VL): setup.py compiles this
   file alone with -march=x86-64-v4 -mtune=generic -mprefer-vector-width=512.
   On other CPUs it is empty. */
#if defined(__x86_64__) && defined(__AVX512F__) && defined(__AVX512DQ__)
#define MLK_ISA_SUFFIX(name) name##_v4
#include "mlk_kernels_body.h"
#endif
