/* mlk_act.h -- instantiate the activation math (mlk_act_tmpl.h) for
   float64 (suffix _f64) and float32 (suffix _f32), in that order: a few
   float32 functions are evaluated through their float64 twins. */
#ifndef MLK_ACT_H
#define MLK_ACT_H
#include "mlk_math.h"
#include "mlk_erf.h"

#define MLK_T double
#define MLK_F(name) name##_f64
#define MLK_IS_F64 1
#include "mlk_act_tmpl.h"
#undef MLK_T
#undef MLK_F
#undef MLK_IS_F64

#define MLK_T float
#define MLK_F(name) name##_f32
#define MLK_IS_F64 0
#include "mlk_act_tmpl.h"
#undef MLK_T
#undef MLK_F
#undef MLK_IS_F64

#endif
