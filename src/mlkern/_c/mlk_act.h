/* mlk_act.h -- instantiate the activation math (mlk_act_tmpl.h) for
   float32 (suffix _f32) and float64 (suffix _f64). */
#ifndef MLK_ACT_H
#define MLK_ACT_H
#include "mlk_math.h"
#include "mlk_erf.h"

#define MLK_T float
#define MLK_F(name) name##_f32
#include "mlk_act_tmpl.h"
#undef MLK_T
#undef MLK_F

#define MLK_T double
#define MLK_F(name) name##_f64
#include "mlk_act_tmpl.h"
#undef MLK_T
#undef MLK_F
#endif
