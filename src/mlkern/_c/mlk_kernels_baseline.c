/* The kernels for the portable baseline (the compiler's default target). */
#define MLK_ISA_SUFFIX(name) name##_baseline
#include "mlk_kernels_body.h"
