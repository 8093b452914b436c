/* mlk_kernels_body.h -- the kernels of one ISA level: the ISA file defines
   MLK_ISA_SUFFIX(name) and includes this once. */
#include "mlk_kernels.h"
#include "mlk_act.h"
#include "mlk_rng.h"
#include "mlk_stream.h"

#define MLK_KERNEL_F64 0   /* the float32 instantiation */
#define MLK_T float
#define MLK_F(name) name##_f32
#define MLK_K(name) MLK_ISA_SUFFIX(name##_f32)
#define MLK_SQRT sqrtf
#include "mlk_kernels_tmpl.h"
#include "mlk_rowwise_tmpl.h"
#include "mlk_loss_tmpl.h"
#include "mlk_optim_tmpl.h"
#include "mlk_pool_tmpl.h"
#include "mlk_rnn_tmpl.h"
#undef MLK_SQRT
#undef MLK_T
#undef MLK_F
#undef MLK_K

#undef MLK_KERNEL_F64
#define MLK_KERNEL_F64 1   /* the float64 instantiation (mlk_simd_f64.h) */
#define MLK_T double
#define MLK_F(name) name##_f64
#define MLK_K(name) MLK_ISA_SUFFIX(name##_f64)
#define MLK_SQRT sqrt
#include "mlk_kernels_tmpl.h"
#include "mlk_rowwise_tmpl.h"
#include "mlk_loss_tmpl.h"
#include "mlk_optim_tmpl.h"
#include "mlk_pool_tmpl.h"
#include "mlk_rnn_tmpl.h"
#undef MLK_SQRT
#undef MLK_T
#undef MLK_F
#undef MLK_K
#undef MLK_KERNEL_F64
