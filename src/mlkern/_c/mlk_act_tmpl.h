/*
 * mlk_act_tmpl.h -- the scalar math of every elementwise activation, written
 * once and instantiated for float32 and float64 by mlk_act.h (which defines
 * MLK_T, the element type, and MLK_F(name), the dtype-suffixed name).
 *
 * Forward, derivative and backward kernels all call these functions, so a
 * function and its derivative share their stable form.  All are branch-free
 * (selects only) and inline into vectorised loops.
 *
 * Stability tricks:
 *   sigmoid      e = exp(-|x|); 1/(1+e) for x >= 0, e/(1+e) below (no overflow,
 *                subnormal left tail kept); float64 corrects the roundings of
 *                1+e and of the quotient (mlk_div_fix_f64)
 *   sigmoid'     e/(1+e)^2 (symmetric; no 1-y cancellation in the tails)
 *   tanh'        4e/(1+e)^2, e = exp(-2|x|)
 *   softplus     (z > 0 ? x : 0) + log1p(exp(-|z|))/beta, z = beta*x (no
 *                overflow of z matters)
 *   log_sigmoid  min(x,0) - log1p(exp(-|x|))
 *   silu         x*sigmoid(z) with e kept scaled by 2^B until the end
 *                (mlk_xsig_core), the rounding of z = beta*x compensated
 *   elu          alpha*expm1(x) below 0
 *   gelu         x*Phi(x) rounded once, Phi relative-accurate in the tail
 *                (mlk_gelu_erf in mlk_erf.h)
 *   gelu_tanh    x*sigmoid(2u) = x(1 + tanh u)/2, no cancellation for x << 0,
 *                u compensated (mlk_gelu_u2), e = e^{-|2u|} carried as a
 *                pair E + Elo into the quotient (float64)
 * Several float32 derivatives are evaluated through their float64 twins
 * (mlk_act.h instantiates float64 first).
 */

#define MLK_ONE ((MLK_T)1)
#define MLK_ZERO ((MLK_T)0)

/* sigmoid(z) and sigmoid(-z) from one exp and one reciprocal */
MLK_INLINE MLK_T MLK_F(mlk_sigmoid_pair)(MLK_T z, MLK_T *neg) {
    MLK_T e = MLK_F(mlk_expneg)(-MLK_F(mlk_abs)(z));
    MLK_T d = MLK_ONE / (MLK_ONE + e);
    MLK_T ed = e * d;
    MLK_T pos = z >= MLK_ZERO ? d : ed;
    *neg = z >= MLK_ZERO ? ed : d;
    return z != z ? z : pos;
}

MLK_INLINE MLK_T MLK_F(mlk_sigmoid)(MLK_T x) {
    MLK_T e = MLK_F(mlk_expneg)(-MLK_F(mlk_abs)(x));
    MLK_T num = x >= MLK_ZERO ? MLK_ONE : e;
#if MLK_IS_F64
    /* float64: correct the rounding of 1 + e and of the quotient (2.06 ->
       1.2 ULP measured) */
    MLK_T d = MLK_ONE + e;
    MLK_T derr = (MLK_ONE - d) + e;
    MLK_T rd = (24.0 - 8.0 * d) * (1.0 / 17.0);   /* ~1/d on [1, 2], 6 % */
    return mlk_div_fix_f64(num, 0.0, d, derr, rd);   /* NaN propagates through e */
#else
    return num / (MLK_ONE + e);          /* NaN propagates through e */
#endif
}

#if MLK_IS_F64
/* 4^k e/(1+e)^2 with the roundings of 1+e, of its square and of the quotient
 * corrected (sigmoid' and tanh' otherwise reach 3.3 ULP).  num and E are
 * e scaled by 2^512 (mlk_expneg_scaled), so a subnormal e costs nothing: the
 * one rounding into the subnormal range is the final multiply.  rd ~ 1/D from
 * a linear minimax guess on [1, 4] (22 %) and one Newton step (5 %). */
MLK_INLINE double mlk_bell_f64(double num_s, double E) {
    double e = E * MLK_EXPNEG_UNSCALE_f64;
    double d = 1.0 + e;
    double derr = (1.0 - d) + e;
    double D = d * d;
    double Derr = mlk_prod_err_f64(d, d, D) + 2.0 * d * derr;
    double r0 = (40.0 - 8.0 * D) * (1.0 / 41.0);
    double rd = r0 * (2.0 - D * r0);
    return mlk_div_fix_f64(num_s, 0.0, D, Derr, rd) * MLK_EXPNEG_UNSCALE_f64;
}
MLK_INLINE double mlk_sigmoid_grad_f64(double x) {
    double E = mlk_expneg_scaled_f64(-mlk_abs_f64(x));
    return mlk_bell_f64(E, E);                    /* NaN propagates */
}
#else
/* float32: evaluated in float64 and rounded once */
MLK_INLINE float mlk_sigmoid_grad_f32(float x) { return (float)mlk_sigmoid_grad_f64((double)x); }
#endif

/* derivative from the saved output y = sigmoid(x) */
MLK_INLINE MLK_T MLK_F(mlk_sigmoid_grad_y)(MLK_T y) { return y * (MLK_ONE - y); }

#if MLK_IS_F64
MLK_INLINE double mlk_tanh_grad_f64(double x) {
    double E = mlk_expneg_scaled_f64(-2.0 * mlk_abs_f64(x));
    return mlk_bell_f64(4.0 * E, E);              /* 4e/(1+e)^2; NaN propagates */
}
#else
MLK_INLINE float mlk_tanh_grad_f32(float x) { return (float)mlk_tanh_grad_f64((double)x); }
#endif

MLK_INLINE MLK_T MLK_F(mlk_tanh_grad_y)(MLK_T y) { return MLK_ONE - y * y; }

/* relu: NaN stays NaN (x < 0 is false for NaN) */
MLK_INLINE MLK_T MLK_F(mlk_relu)(MLK_T x) { return x < MLK_ZERO ? MLK_ZERO : x; }
/* 1 for x > 0, 0 for x <= 0 (0 at 0, as PyTorch), NaN for NaN */
MLK_INLINE MLK_T MLK_F(mlk_relu_grad)(MLK_T x) {
    MLK_T g = x > MLK_ZERO ? MLK_ONE : MLK_ZERO;
    return x != x ? x : g;
}

MLK_INLINE MLK_T MLK_F(mlk_leaky_relu)(MLK_T x, MLK_T a) { return x > MLK_ZERO ? x : a * x; }
MLK_INLINE MLK_T MLK_F(mlk_leaky_relu_grad)(MLK_T x, MLK_T a) {
    MLK_T g = x > MLK_ZERO ? MLK_ONE : a;
    return x != x ? x : g;
}

MLK_INLINE MLK_T MLK_F(mlk_elu)(MLK_T x, MLK_T a) {
    return x > MLK_ZERO ? x : a * MLK_F(mlk_expm1)(x);
}
MLK_INLINE MLK_T MLK_F(mlk_elu_grad)(MLK_T x, MLK_T a) {
    MLK_T g = x > MLK_ZERO ? MLK_ONE : a * MLK_F(mlk_expneg)(x < MLK_ZERO ? x : MLK_ZERO);
    return x != x ? x : g;
}
/* from the saved output y = elu(x): 1 where y > 0, y + alpha elsewhere (alpha >= 0) */
MLK_INLINE MLK_T MLK_F(mlk_elu_grad_y)(MLK_T y, MLK_T a) {
    MLK_T g = y > MLK_ZERO ? MLK_ONE : y + a;
    return y != y ? y : g;
}

/* softplus with beta and threshold (thr = +inf means no switch) */
/* (1/beta) (max(z, 0) + log1p(e^{-|z|})), z = beta x, written as
 * (z > 0 ? x : 0) + log1p(e^{-|z|})/beta so that beta x overflowing to inf
 * still gives x (for either sign of beta) */
MLK_INLINE MLK_T MLK_F(mlk_softplus)(MLK_T x, MLK_T beta, MLK_T thr) {
    MLK_T z = beta * x;
    MLK_T e = MLK_F(mlk_expneg)(-MLK_F(mlk_abs)(z));
    MLK_T m = z > MLK_ZERO ? x : MLK_ZERO;
    MLK_T y = m + MLK_F(mlk_log1p_unit)(e) / beta;   /* NaN propagates via e */
    return z > thr ? x : y;
}
MLK_INLINE MLK_T MLK_F(mlk_softplus_grad)(MLK_T x, MLK_T beta, MLK_T thr) {
    MLK_T z = beta * x;
    MLK_T g = MLK_F(mlk_sigmoid)(z);
    return z > thr ? MLK_ONE : g;
}

MLK_INLINE MLK_T MLK_F(mlk_log_sigmoid)(MLK_T x) {
    MLK_T e = MLK_F(mlk_expneg)(-MLK_F(mlk_abs)(x));
    MLK_T m = x < MLK_ZERO ? x : MLK_ZERO;
    return m - MLK_F(mlk_log1p_unit)(e); /* NaN propagates through e */
}
MLK_INLINE MLK_T MLK_F(mlk_log_sigmoid_grad)(MLK_T x) { return MLK_F(mlk_sigmoid)(-x); }

/* x sigmoid(z) from E = 2^B e^{-|z|} (mlk_expneg_scaled, B = 512 / 64):
 * silu (z = beta x) and gelu_tanh (z = 2u).  The left branch x e/(1+e) is
 * taken with the scaled E and the scale removed last, so a subnormal e does
 * not cost the result its digits; the roundings of x E, 1 + e and of the
 * quotient are corrected (mlk_div_fix; rd ~ 1/d on [1, 2] from a linear
 * minimax guess, 6 %).  E is exactly 0 far out (|z| > 1060 / 131), where the
 * result is x on the right and a signed 0 on the left (taken by a select:
 * this also keeps huge x away from the error-free products, whose Dekker
 * split would overflow in the baseline).  The sign of a zero x is kept. */
/* flags: 1 = float32's cheap quotient (silu, beta = 1); 2 = Elo is used */
MLK_INLINE MLK_T MLK_F(mlk_xsig_core)(MLK_T x, MLK_T z, MLK_T E, MLK_T Elo, int flags) {
    const int cheap = flags & 1, has_lo = flags & 2;
    MLK_T e = E * MLK_F(MLK_EXPNEG_UNSCALE);
    /* the left numerator x (E + Elo) as num + numerr: Elo (up to ~300 ULP
       of E for gelu_tanh's compensation) is added into Ec first, so that
       the residual left for mlk_div_fix's rough 1/d stays ulp-sized */
    MLK_T Ec = has_lo ? E + Elo : E;
    MLK_T Ecl = has_lo ? (E - Ec) + Elo : MLK_ZERO;     /* Fast2Sum: |Elo| << E */
    MLK_T num = z >= MLK_ZERO ? x : x * Ec;
    MLK_T post = z >= MLK_ZERO ? MLK_ONE : MLK_F(MLK_EXPNEG_UNSCALE);
    MLK_T d = MLK_ONE + e;
    MLK_T derr = (MLK_ONE - d) + e;
    derr = has_lo ? derr + Elo * MLK_F(MLK_EXPNEG_UNSCALE) : derr;
    MLK_T rd = ((MLK_T)24 - (MLK_T)8 * d) * (MLK_T)(1.0 / 17.0);
    MLK_T y;
    if (!MLK_IS_F64 && cheap) {
        /* float32 silu: only the rounding of 1 + e corrected (2.5 ULP; none:
           3.04; the full correction below: 1.6 at +20 % time) */
        MLK_T q = num / d;
        y = (q - q * (derr * rd)) * post;
        y = x == MLK_ZERO ? x : y;                /* keeps the sign of 0 */
    } else {
        MLK_T numerr = z >= MLK_ZERO ? MLK_ZERO : MLK_F(mlk_prod_err)(x, Ec, num) + x * Ecl;
        y = MLK_F(mlk_div_fix)(num, numerr, d, derr, rd) * post;
    }
    MLK_T lim = z < MLK_ZERO ? MLK_F(mlk_copysign)(MLK_ZERO, x) : x;
    return E == MLK_ZERO ? lim : y;      /* |z| beyond the cut, +-inf included */
}

/* E for z with a rounding error zerr: in the left tail e^{-|z|} turns an
 * absolute error of z into a relative error of the result (2|u| eps for
 * gelu_tanh: 1400 ULP at x = -19 uncompensated), so e^{-|z + zerr|} =
 * E (1 - sign(z) zerr) to first order. */
MLK_INLINE MLK_T MLK_F(mlk_expneg_scaled_corr)(MLK_T z, MLK_T zerr, MLK_T *lo) {
#if MLK_IS_F64
    MLK_T El;
    MLK_T E = mlk_expneg_scaled_hl_f64(-mlk_abs_f64(z), &El);
#else
    MLK_T El = MLK_ZERO;
    MLK_T E = MLK_F(mlk_expneg_scaled)(-MLK_F(mlk_abs)(z));
#endif
    MLK_T corr = z >= MLK_ZERO ? -zerr : zerr;
    /* E (1 + corr) as E + lo, together with e's own rounding (float64):
       neither is rounded into E (float64 gelu_tanh: 2.2 -> 1.0 ULP over
       10^6 points, benchmarks/ulp_table.py) */
    *lo = E == MLK_ZERO ? MLK_ZERO : El + E * corr;
    return E;
}

/* silu(x) = x sigmoid(x) (beta = 1, the common case: z exact) */
MLK_INLINE MLK_T MLK_F(mlk_silu1)(MLK_T x) {
#if MLK_IS_F64
    return mlk_xsig_core_f64(x, x, mlk_expneg_scaled_acc_f64(-mlk_abs_f64(x)), 0.0, 0);
#else
    return mlk_xsig_core_f32(x, x, mlk_expneg_scaled_f32(-mlk_abs_f32(x)), 0.0f, 1);
#endif
}
/* silu(x) = x sigmoid(beta x); silu(-inf) = -0, silu(+inf) = +inf (beta > 0) */
MLK_INLINE MLK_T MLK_F(mlk_silu)(MLK_T x, MLK_T beta) {
    MLK_T z = beta * x;
    MLK_T zerr = MLK_F(mlk_prod_err)(beta, x, z);
    /* z = inf, or a Dekker split overflowing (baseline, |x| ~ 1e308): no correction */
    zerr = MLK_F(mlk_abs)(zerr) < (MLK_T)INFINITY ? zerr : MLK_ZERO;
    MLK_T Elo;
    MLK_T E = MLK_F(mlk_expneg_scaled_corr)(z, zerr, &Elo);
    return MLK_F(mlk_xsig_core)(x, z, E, Elo, 2);
}
/* s + z s (1 - s) = s (1 + z sigma(-z)), s = sigmoid(z), z = beta x.  s is
 * kept scaled by 2^B (E = 2^B e^{-|z|}) until the end so that a subnormal s
 * does not cost the result its digits; 0 at z = -inf, 1 at z = +inf. */
MLK_INLINE MLK_T MLK_F(mlk_silu_grad)(MLK_T x, MLK_T beta) {
    MLK_T z = beta * x;
    MLK_T E = MLK_F(mlk_expneg_scaled)(-MLK_F(mlk_abs)(z));
    MLK_T e = E * MLK_F(MLK_EXPNEG_UNSCALE);
    MLK_T r = MLK_ONE / (MLK_ONE + e);
    MLK_T er = e * r;
    MLK_T ss = z >= MLK_ZERO ? r * MLK_F(MLK_EXPNEG_SCALE) : E * r;  /* 2^B s */
    MLK_T sn = z >= MLK_ZERO ? er : r;                               /* 1 - s */
    MLK_T zs = z * sn;
    zs = sn == MLK_ZERO ? MLK_ZERO : zs;      /* z = +inf: z*0 */
    MLK_T g = (ss * (MLK_ONE + zs)) * MLK_F(MLK_EXPNEG_UNSCALE);
    g = E == MLK_ZERO ? (z < MLK_ZERO ? MLK_ZERO : MLK_ONE) : g;    /* far tails */
    return x != x ? x : g;
}

/* gelu (exact): x Phi(x), see mlk_gelu_erf in mlk_erf.h; gelu(-inf) = -0 */
MLK_INLINE MLK_T MLK_F(mlk_gelu)(MLK_T x) { return MLK_F(mlk_gelu_erf)(x); }
/* Phi(x) + x phi(x) from one exponential (mlk_gelu_erf_grad); 0 at -inf,
 * 1 at +inf */
MLK_INLINE MLK_T MLK_F(mlk_gelu_grad)(MLK_T x) { return MLK_F(mlk_gelu_erf_grad)(x); }

/* gelu, tanh approximation: x sigmoid(2u), u = sqrt(2/pi)(x + 0.044715 x^3) */
#define MLK_GELU_K0 ((MLK_T)0.7978845608028654)   /* sqrt(2/pi) */
#define MLK_GELU_K1 ((MLK_T)0.044715)
/* u2 = 2 sqrt(2/pi) x (1 + 0.044715 x^2) with its rounding error: in the left
 * tail e^{-|u2|} turns an absolute error of u2 into a relative error of the
 * result (2|u| eps: 1400 ULP at x = -19 in float64 uncompensated).  The
 * constants are split hi + lo, the products taken by error-free
 * transformations. */
#if MLK_IS_F64
#define MLK_GELU_C_HI 1.5957691216057308
#define MLK_GELU_C_LO -9.96930880911092e-17
#define MLK_GELU_K_HI 0.044715
#define MLK_GELU_K_LO 2.1960211427085595e-18
#define MLK_GELU_XMAX 1e10
#else
#define MLK_GELU_C_HI 1.5957691669464111f
#define MLK_GELU_C_LO -4.534068054340423e-08f
#define MLK_GELU_K_HI 0.044714998453855515f
#define MLK_GELU_K_LO 1.5461444347053543e-09f
#define MLK_GELU_XMAX 1e8f
#endif
MLK_INLINE MLK_T MLK_F(mlk_gelu_u2)(MLK_T x, MLK_T *err) {
    x = x > MLK_GELU_XMAX ? MLK_GELU_XMAX : x;     /* finite x^2; NaN kept */
    x = x < -MLK_GELU_XMAX ? -MLK_GELU_XMAX : x;
    MLK_T x2 = x * x;
    MLK_T x2e = MLK_F(mlk_prod_err)(x, x, x2);
    MLK_T w = MLK_GELU_K_HI * x2;
    MLK_T we = MLK_F(mlk_prod_err)(MLK_GELU_K_HI, x2, w) + (MLK_GELU_K_HI * x2e + MLK_GELU_K_LO * x2);
    MLK_T v = MLK_ONE + w;
    MLK_T vw = v - MLK_ONE;                             /* TwoSum: w > 1 for |x| > 4.7 */
    MLK_T ve = ((MLK_ONE - (v - vw)) + (w - vw)) + we;
    MLK_T t = x * v;
    MLK_T te = MLK_F(mlk_prod_err)(x, v, t) + x * ve;
    MLK_T u2 = MLK_GELU_C_HI * t;
    *err = MLK_F(mlk_prod_err)(MLK_GELU_C_HI, t, u2) + (MLK_GELU_C_HI * te + MLK_GELU_C_LO * t);
    return u2;
}
#undef MLK_GELU_C_HI
#undef MLK_GELU_C_LO
#undef MLK_GELU_K_HI
#undef MLK_GELU_K_LO
#undef MLK_GELU_XMAX
MLK_INLINE MLK_T MLK_F(mlk_gelu_tanh)(MLK_T x) {
    MLK_T u2e;
    MLK_T u2 = MLK_F(mlk_gelu_u2)(x, &u2e);
    MLK_T Elo;
    MLK_T E = MLK_F(mlk_expneg_scaled_corr)(u2, u2e, &Elo);
    return MLK_F(mlk_xsig_core)(x, u2, E, Elo, 2);
}
/* d/dx x s(2u) = s + x * 2u' s (1-s) */
MLK_INLINE MLK_T MLK_F(mlk_gelu_tanh_grad)(MLK_T x) {
    MLK_T x2 = x * x;
    MLK_T u2 = (MLK_T)2 * MLK_GELU_K0 * x * (MLK_ONE + MLK_GELU_K1 * x2);
    MLK_T du2 = (MLK_T)2 * MLK_GELU_K0 * (MLK_ONE + (MLK_T)3 * MLK_GELU_K1 * x2);
    MLK_T sn;
    MLK_T s = MLK_F(mlk_sigmoid_pair)(u2, &sn);
    MLK_T t = x * du2 * s * sn;
    t = s == MLK_ZERO ? MLK_ZERO : t;
    t = sn == MLK_ZERO ? MLK_ZERO : t;
    MLK_T g = s + t;
    return x != x ? x : g;
}

#undef MLK_GELU_K0
#undef MLK_GELU_K1
#undef MLK_ONE
#undef MLK_ZERO
