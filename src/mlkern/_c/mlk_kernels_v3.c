/* The kernels for x86-64-v3 (AVX2, FMA, BMI2): setup.py compiles this file
   alone with -march=x86-64-v3 -mtune=generic. On other CPUs it is empty. */
#if defined(__x86_64__) && defined(__AVX2__) && defined(__FMA__)
#define MLK_ISA_SUFFIX(name) name##_v3
#include "mlk_kernels_body.h"
#endif
