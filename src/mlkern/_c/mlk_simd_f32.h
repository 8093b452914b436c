/*
 * mlk_simd_f32.h -- AVX-512 float32 kernels of the v4 object (issue 19).
 *
 * Included by mlk_kernels_tmpl.h in its float32 pass, only where
 * __AVX512F__ and __AVX512DQ__ are defined (the x86-64-v4 object): the
 * portable C of mlk_math.h / mlk_act_tmpl.h / mlk_erf.h stays the baseline
 * and the v3 code and is the reference these are tested against.
 *
 * tanh, gelu and gelu' evaluate piecewise polynomials (29 pieces of
 * [0, 16), coefficients picked by vpermi2ps; gelu through g(a) = Phi(-a)
 * e^{a^2/2} times e^{-a^2/2}, a^2 split exactly by an fma).  silu (beta =
 * 1), gelu_tanh (u2 compensated as in mlk_gelu_u2, its error folded into the
 * reduced argument of e^{-|u2|}), silu', sigmoid' and tanh' follow the
 * portable stable forms, with
 *   - quotients n/d as n * r, r = rcp14(d) (refined by one Newton step
 *     where r is used alone), and a residual step fma(-q, d, n) * r where
 *     the portable code relies on a corrected quotient;
 *   - 2^n scaling by one vscalefps, rounded once, also into the subnormals;
 *   - sigmoid' and tanh' in float32 (the portable float32 goes through
 *     float64), the roundings of 1 + e, its square and the quotient
 *     corrected.
 * relu and leaky_relu use the same driver.  The loops are 16 lanes wide
 * with a masked tail (and a masked head that aligns the stores to 64
 * bytes), no scalar remainder.  NaN, +-inf and signed zeros give the
 * portable results (tests/test_activations.py checks them at every level);
 * the ULP budgets are unchanged (benchmarks/ulp_table.py, docs/accuracy.rst).
 *
 * mlk_simd_unary_f32 / mlk_simd_binary_f32 return 1 when they computed the
 * op (0: the caller runs its portable loop).
 */
#ifndef MLK_SIMD_F32_H
#define MLK_SIMD_F32_H
#if defined(__AVX512F__) && defined(__AVX512DQ__)
#include <immintrin.h>

#define MLK_V1(c) _mm512_set1_ps(c)

/* 1/d to a relative ~2^-28 (d > 0 normal) */
MLK_INLINE __m512 mlk_v_rcp_f32(__m512 d) {
    const __m512 r = _mm512_rcp14_ps(d);
    return _mm512_fmadd_ps(r, _mm512_fnmadd_ps(d, r, MLK_V1(1.0f)), r);
}
MLK_INLINE __m512 mlk_v_abs_f32(__m512 x) {
    return _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32(0x7fffffff)));
}
/* |mag| with the sign of sgn */
MLK_INLINE __m512 mlk_v_copysign_f32(__m512 mag, __m512 sgn) {
    /* ternary logic: (sgn & 0x80000000) | (mag & 0x7fffffff) */
    return _mm512_castsi512_ps(_mm512_ternarylogic_epi32(_mm512_set1_epi32(0x7fffffff),
                                                         _mm512_castps_si512(mag),
                                                         _mm512_castps_si512(sgn), 0xca));
}
/* the degree-4 q of e^r = 1 + r + r^2 q(r) (mlk_expq_f32) */
MLK_INLINE __m512 mlk_v_expq_f32(__m512 r) {
    __m512 q = MLK_V1(0.00139263918961f);
    q = _mm512_fmadd_ps(q, r, MLK_V1(0.00836334581099f));
    q = _mm512_fmadd_ps(q, r, MLK_V1(0.0416665533626f));
    q = _mm512_fmadd_ps(q, r, MLK_V1(0.166665759854f));
    q = _mm512_fmadd_ps(q, r, MLK_V1(0.5f));
    return q;
}
/* e^x = 2^kd p for x <= 0 (or NaN; x >= -150: below, the caller selects):
 * p = e^r, r = x - kd ln2 (mlk_expneg_scaled_f32 without the scale) */
MLK_INLINE __m512 mlk_v_expneg_p_f32(__m512 x, __m512 *kd) {
    __m512 k = _mm512_fmadd_ps(x, MLK_V1(MLK_INVLN2_32), MLK_V1(MLK_SHIFT32));
    k = _mm512_sub_ps(k, MLK_V1(MLK_SHIFT32));
    __m512 r = _mm512_fnmadd_ps(k, MLK_V1(MLK_LN2HI_32), x);
    r = _mm512_fnmadd_ps(k, MLK_V1(MLK_LN2LO_32), r);
    *kd = k;
    const __m512 rr = _mm512_mul_ps(r, r);
    return _mm512_add_ps(MLK_V1(1.0f), _mm512_fmadd_ps(rr, mlk_v_expq_f32(r), r));
}

/* ---- piecewise polynomials (vpermi2ps table look-ups) ---------------------
 * [0, 16) in 29 pieces: [0, 0.15625), then four per octave from 0.15625 by
 * the two leading mantissa bits; a piece's index is (bits(a) >> 21) - 496
 * (at least 0), the coefficients of 32 pieces sit in two registers per
 * power and one vpermi2ps picks them.  The tables are the output of
 * tools/fit_simd_f32_tables.py (weighted least squares against
 * scipy.special.erfcx and np.tanh, checked with float32 Horner evaluation);
 * benchmarks/ulp_table.py and the tests measure the functions built on them. */
/* g(a) = Phi(-a) e^(a^2/2) = erfcx(a/sqrt2)/2 on 29 pieces of [0, 16) (entry 0: [0, 0.15625), then 4 per octave by the top two mantissa bits): g = sum c_k (a - centre)^k, degree 6, weighted least squares (float64, scipy erfcx) rounded to float32: max 0.92 ULP with float32 Horner over 4000 points per piece */
static const float mlk_v_gtab_f32[8][32] __attribute__((aligned(64))) = {
    { /* centre */ 0.0f, 0.171875f, 0.203125f, 0.234375f, 0.28125f, 0.34375f, 0.40625f, 0.46875f, 0.5625f, 0.6875f, 0.8125f, 0.9375f, 1.125f, 1.375f, 1.625f, 1.875f, 2.25f, 2.75f, 3.25f, 3.75f, 4.5f, 5.5f, 6.5f, 7.5f, 9.0f, 11.0f, 13.0f, 15.0f, 15.0f, 15.0f, 15.0f, 15.0f },
    { /* c0 */ 0.5f, 0.4381926655769348f, 0.42826318740844727f, 0.41869011521339417f, 0.40496334433555603f, 0.3877633512020111f, 0.3717223107814789f, 0.35674068331718445f, 0.3360614478588104f, 0.3114340007305145f, 0.2896950840950012f, 0.270412415266037f, 0.24533139169216156f, 0.21763981878757477f, 0.19502310454845428f, 0.17629088461399078f, 0.15365193784236908f, 0.1307247281074524f, 0.11345206201076508f, 0.10003920644521713f, 0.08480339497327805f, 0.07034269720315933f, 0.06001567468047142f, 0.052293095737695694f, 0.043798789381980896f, 0.0359748899936676f, 0.03050941415131092f, 0.026479488238692284f, 0.026479488238692284f, 0.026479488238692284f, 0.026479488238692284f, 0.026479488238692284f },
    { /* c1 */ -0.3989422917366028f, -0.32362791895866394f, -0.31195130944252014f, -0.3008117973804474f, -0.2850463390350342f, -0.26564863324165344f, -0.24793009459972382f, -0.23172008991241455f, -0.20990772545337677f, -0.1848314106464386f, -0.1635650396347046f, -0.14543063938617706f, -0.12294446676969528f, -0.09968752413988113f, -0.08202973008155823f, -0.06839685887098312f, -0.05322542041540146f, -0.039449263364076614f, -0.030223079025745392f, -0.023795245215296745f, -0.017327016219496727f, -0.012057463638484478f, -0.008840390481054783f, -0.006744051817804575f, -0.004753181245177984f, -0.003218494588509202f, -0.0023198919370770454f, -0.0017499454552307725f, -0.0017499454552307725f, -0.0017499454552307725f, -0.0017499454552307725f, -0.0017499454552307725f },
    { /* c2 */ 0.24999992549419403f, 0.19128455221652985f, 0.18244902789592743f, 0.17409367859363556f, 0.16239702701568604f, 0.14822332561016083f, 0.13550034165382385f, 0.12406094372272491f, 0.10899417102336884f, 0.09218119829893112f, 0.07839924097061157f, 0.06703559309244156f, 0.0535094290971756f, 0.040284737944602966f, 0.03086240217089653f, 0.02402338944375515f, 0.016947366297245026f, 0.011119631119072437f, 0.007613528054207563f, 0.005403521470725536f, 0.0034159061033278704f, 0.002013321965932846f, 0.0012765676947310567f, 0.0008563533774577081f, 0.0005100806010887027f, 0.00028572441078722477f, 0.00017540941189508885f, 0.00011515388177940622f, 0.00011515388177940622f, 0.00011515388177940622f, 0.00011515388177940622f, 0.00011515388177940622f },
    { /* c3 */ -0.13297827541828156f, -0.09691695868968964f, -0.09163045138120651f, -0.08666952699422836f, -0.07979072630405426f, -0.07156562060117722f, -0.06429436057806015f, -0.057855505496263504f, -0.049532823264598846f, -0.04048560559749603f, -0.03328854218125343f, -0.027528252452611923f, -0.020915403962135315f, -0.014765307307243347f, -0.010626091621816158f, -0.007784324232488871f, -0.005031205248087645f, -0.0029567270539700985f, -0.0018263568636029959f, -0.001177339581772685f, -0.0006517735891975462f, -0.00032805264345370233f, -0.0001808963861549273f, -0.00010713238589232787f, -5.414286351879127e-05f, -2.5173212634399533e-05f, -1.3189212950237561e-05f, -7.54551547288429e-06f, -7.54551547288429e-06f, -7.54551547288429e-06f, -7.54551547288429e-06f, -7.54551547288429e-06f },
    { /* c4 */ 0.06245593726634979f, 0.04365920647978783f, 0.04096144065260887f, 0.038447242230176926f, 0.034988973289728165f, 0.03090565837919712f, 0.027345191687345505f, 0.024235296994447708f, 0.020283019170165062f, 0.01608685776591301f, 0.012838094495236874f, 0.010306975804269314f, 0.007495030295103788f, 0.0049956804141402245f, 0.003398789092898369f, 0.002356966957449913f, 0.001406907569617033f, 0.0007471988210454583f, 0.00041948165744543076f, 0.00024712985032238066f, 0.00012073726975359023f, 5.2256604249123484e-05f, 2.51837118412368e-05f, 1.3214143109507859e-05f, 5.69119447391131e-06f, 2.2024039481038926e-06f, 9.865532319963677e-07f, 4.924362997371645e-07f, 4.924362997371645e-07f, 4.924362997371645e-07f, 4.924362997371645e-07f, 4.924362997371645e-07f },
    { /* c5 */ -0.026189863681793213f, -0.017883649095892906f, -0.01666254550218582f, -0.015532136894762516f, -0.013993075117468834f, -0.012190957553684711f, -0.010639290325343609f, -0.009300939738750458f, -0.0076306951232254505f, -0.005889580585062504f, -0.0045747822150588036f, -0.0035755252465605736f, -0.002503015799447894f, -0.0015828945906832814f, -0.0010227635502815247f, -0.0006742999539710581f, -0.00037568362313322723f, -0.00018143228953704238f, -9.306673018727452e-05f, -5.033365232520737e-05f, -2.2013789930497296e-05f, -8.222300493798684e-06f, -3.4720646908681374e-06f, -1.617198108760931e-06f, -6.019320721861732e-07f, -1.935699884825226e-07f, -7.405285629147329e-08f, -3.222623590204421e-08f, -3.222623590204421e-08f, -3.222623590204421e-08f, -3.222623590204421e-08f, -3.222623590204421e-08f },
    { /* c6 */ 0.008511447347700596f, 1.5377492672996596e-05f, 1.3676910384674557e-05f, 1.299773884966271e-05f, 0.005176283419132233f, 0.004453257657587528f, 0.003837804077193141f, 0.0033103013411164284f, 0.0026614973321557045f, 0.002003680681809783f, 0.0015176613815128803f, 0.0011580141726881266f, 0.000776048400439322f, 0.0004679428820963949f, 0.00028848828515037894f, 0.0001816107687773183f, 9.316487557953224e-05f, 4.131152672925964e-05f, 1.9522904040059075e-05f, 9.761528417584486e-06f, 3.7308759601728525e-06f, 1.2206113524371176e-06f, 4.566913389680849e-07f, 1.9042367682686745e-07f, 5.932728086577299e-08f, 1.6130034197203713e-08f, 5.3325237558965455e-09f, 2.0402108891204307e-09f, 2.0402108891204307e-09f, 2.0402108891204307e-09f, 2.0402108891204307e-09f, 2.0402108891204307e-09f },
};
/* tanh(a) on the same pieces (entry 0: odd fit, c0 = 0; from 10 on: 1): degree 5, max 0.91 ULP with float32 Horner */
static const float mlk_v_ttab_f32[7][32] __attribute__((aligned(64))) = {
    { /* centre */ 0.0f, 0.171875f, 0.203125f, 0.234375f, 0.28125f, 0.34375f, 0.40625f, 0.46875f, 0.5625f, 0.6875f, 0.8125f, 0.9375f, 1.125f, 1.375f, 1.625f, 1.875f, 2.25f, 2.75f, 3.25f, 3.75f, 4.5f, 5.5f, 6.5f, 7.5f, 9.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f },
    { /* c0 */ 0.0f, 0.1702023148536682f, 0.2003767192363739f, 0.2301757037639618f, 0.2740615904331207f, 0.33082112669944763f, 0.3852839767932892f, 0.4371887743473053f, 0.5098299980163574f, 0.5963735580444336f, 0.6709671020507812f, 0.7340714931488037f, 0.8093010783195496f, 0.8798267245292664f, 0.9253462553024292f, 0.9540452361106873f, 0.9780260920524597f, 0.9918597340583801f, 0.9969976544380188f, 0.998894453048706f, 0.9997531771659851f, 0.9999666213989258f, 0.9999954700469971f, 0.9999994039535522f, 0.9999999403953552f, 1.0f, 1.0f, 1.0f, 1.0f, 1.0f, 1.0f, 1.0f },
    { /* c1 */ 1.0f, 0.9710311889648438f, 0.9598491787910461f, 0.9470191597938538f, 0.9248902201652527f, 0.8905574083328247f, 0.8515562415122986f, 0.8088659644126892f, 0.7400733828544617f, 0.6443386077880859f, 0.5498031973838806f, 0.4611389935016632f, 0.3450317978858948f, 0.22590500116348267f, 0.1437343806028366f, 0.08979764580726624f, 0.043464966118335724f, 0.016214245930314064f, 0.005995693616569042f, 0.002209883648902178f, 0.000493447354529053f, 6.679502257611603e-05f, 9.039983524417039e-06f, 1.223433514496719e-06f, 6.068095359523795e-08f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f },
    { /* c2 */ 5.911587663831597e-07f, -0.16527174413204193f, -0.19233141839504242f, -0.21798080205917358f, -0.2534768581390381f, -0.29461514949798584f, -0.32809093594551086f, -0.35362708568573f, -0.3773112893104553f, -0.3842664062976837f, -0.3688998818397522f, -0.33850914239883423f, -0.27923715114593506f, -0.19875870645046234f, -0.1330045759677887f, -0.0856710895895958f, -0.042508210986852646f, -0.016081130132079124f, -0.005977205000817776f, -0.00220725079998374f, -0.0004926933906972408f, -6.670666334684938e-05f, -9.028275599121116e-06f, -1.2218538358865771e-06f, -5.9441713773367155e-08f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f },
    { /* c3 */ -0.33337166905403137f, -0.2955474257469177f, -0.28141099214553833f, -0.26549917459487915f, -0.2388286590576172f, -0.19938760995864868f, -0.1574438512325287f, -0.11502005904912949f, -0.05432413890957832f, 0.014387790113687515f, 0.06425261497497559f, 0.09477759897708893f, 0.11097108572721481f, 0.09956402331590652f, 0.07516039162874222f, 0.05180111527442932f, 0.027084702625870705f, 0.010549064725637436f, 0.003962485585361719f, 0.0014689028030261397f, 0.00032983082928694785f, 4.4676668039755896e-05f, 6.047042916179635e-06f, 8.183919817383867e-07f, 4.1378914517054e-08f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f },
    { /* c4 */ 0.000730662140995264f, 0.10537286847829819f, 0.12047573924064636f, 0.13374699652194977f, 0.14984063804149628f, 0.16406109929084778f, 0.16992688179016113f, 0.16807836294174194f, 0.15324987471103668f, 0.11944309622049332f, 0.07989633083343506f, 0.04336295276880264f, 0.00370338698849082f, -0.021097443997859955f, -0.025123605504631996f, -0.020849673077464104f, -0.01239081472158432f, -0.005150669254362583f, -0.0019790930673480034f, -0.0007396903820335865f, -0.00017217907588928938f, -2.3347416572505608e-05f, -3.160562073389883e-06f, -4.277489438209159e-07f, -2.4450296010058992e-08f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f },
    { /* c5 */ 0.12878859043121338f, 0.10218237340450287f, 0.09101508557796478f, 0.07878230512142181f, 0.05922166630625725f, 0.03200551122426987f, 0.005883689504116774f, -0.01727212965488434f, -0.044021058827638626f, -0.06184607744216919f, -0.06286502629518509f, -0.05323557183146477f, -0.03184922784566879f, -0.009139965288341045f, 0.0015820564003661275f, 0.004634867422282696f, 0.004016018006950617f, 0.0018787486478686333f, 0.0007509976276196539f, 0.00028465825016610324f, 6.357267557177693e-05f, 8.633694051241037e-06f, 1.1689924122038065e-06f, 1.582120603416115e-07f, 8.258854045095632e-09f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f },
};

/* the float64 fit's c0 minus its float32 rounding (c0 carried as c0 + c0lo) */
static const float mlk_v_gtab_lo_f32[32] __attribute__((aligned(64))) = { -1.1463052729254741e-12f, -2.132210186189809e-09f, -1.158783913268735e-08f, -3.1168452263585777e-09f, 8.4035300940144e-10f, 1.845362973540432e-09f, -1.1489013296284156e-08f, -6.33772501146268e-09f, -1.426782070268473e-08f, -1.358067613921321e-08f, -1.0811387340936562e-08f, 6.678535502402383e-10f, -2.759591888334967e-09f, 4.867410918762971e-09f, 5.370043076879938e-09f, 6.742050917551978e-09f, -4.048786028665319e-10f, 5.998584740041224e-09f, 1.2072075283864336e-10f, 3.191198416629959e-09f, -2.8090372250488826e-09f, -3.1626887775360046e-09f, 6.675079933238237e-10f, 1.3821932487445565e-09f, -4.403429287869187e-10f, -3.570848061684728e-10f, 3.4810970772625183e-10f, 7.618537467557474e-10f, 7.618537467557474e-10f, 7.618537467557474e-10f, 7.618537467557474e-10f, 7.618537467557474e-10f };

MLK_INLINE __m512i mlk_v_piece_f32(__m512 a) {
    const __m512i i = _mm512_sub_epi32(_mm512_srli_epi32(_mm512_castps_si512(a), 21), _mm512_set1_epi32(496));
    return _mm512_max_epi32(i, _mm512_setzero_si512());
}
#define MLK_V_TAB(tab, k, idx) _mm512_permutex2var_ps(_mm512_load_ps((tab)[k]), (idx), _mm512_load_ps((tab)[k] + 16))

/* g(a) = Phi(-a) e^{a^2/2} for 0 <= a < 16 (degree 6 per piece, <= 0.92 ULP;
   g + *glo: c0 carried to float64's precision) */
MLK_INLINE __m512 mlk_v_gelu_g_f32(__m512 a, __m512 *glo) {
    const __m512i i = mlk_v_piece_f32(a);
    *glo = _mm512_permutex2var_ps(_mm512_load_ps(mlk_v_gtab_lo_f32), i, _mm512_load_ps(mlk_v_gtab_lo_f32 + 16));
    const __m512 u = _mm512_sub_ps(a, MLK_V_TAB(mlk_v_gtab_f32, 0, i));
    __m512 G = MLK_V_TAB(mlk_v_gtab_f32, 7, i);
    G = _mm512_fmadd_ps(G, u, MLK_V_TAB(mlk_v_gtab_f32, 6, i));
    G = _mm512_fmadd_ps(G, u, MLK_V_TAB(mlk_v_gtab_f32, 5, i));
    G = _mm512_fmadd_ps(G, u, MLK_V_TAB(mlk_v_gtab_f32, 4, i));
    G = _mm512_fmadd_ps(G, u, MLK_V_TAB(mlk_v_gtab_f32, 3, i));
    G = _mm512_fmadd_ps(G, u, MLK_V_TAB(mlk_v_gtab_f32, 2, i));
    return _mm512_fmadd_ps(G, u, MLK_V_TAB(mlk_v_gtab_f32, 1, i));
}
/* e^{-a^2/2} = (1 + s) 2^kd, a^2 = hi + lo exactly (fma), lo folded into
 * the reduced argument */
MLK_INLINE __m512 mlk_v_expnhsq_f32(__m512 a, __m512 *kd) {
    const __m512 hi = _mm512_mul_ps(a, a);
    const __m512 lo = _mm512_fmsub_ps(a, a, hi);
    const __m512 h2 = _mm512_mul_ps(MLK_V1(-0.5f), hi);
    __m512 k = _mm512_fmadd_ps(h2, MLK_V1(MLK_INVLN2_32), MLK_V1(MLK_SHIFT32));
    k = _mm512_sub_ps(k, MLK_V1(MLK_SHIFT32));
    __m512 r = _mm512_fnmadd_ps(k, MLK_V1(MLK_LN2HI_32), h2);          /* exact */
    r = _mm512_fnmadd_ps(MLK_V1(0.5f), lo, r);
    r = _mm512_fnmadd_ps(k, MLK_V1(MLK_LN2LO_32), r);
    *kd = k;
    return _mm512_fmadd_ps(_mm512_mul_ps(r, r), mlk_v_expq_f32(r), r);
}
/* gelu(x) = x Phi(x): x h for x < 0, x - x h above, h = Phi(-|x|) = g e^{-a^2/2};
 * x h = (S + S s + Slo) 2^kd with S + Slo = x g exactly, scaled once */
MLK_INLINE __m512 mlk_v_gelu_f32(__m512 x) {
    /* min's operand order keeps a NaN (garbage piece, u = NaN: NaN out) */
    const __m512 a = _mm512_min_ps(MLK_V1(14.5f), mlk_v_abs_f32(x));
    __m512 Glo;
    const __m512 G = mlk_v_gelu_g_f32(a, &Glo);
    __m512 kd;
    const __m512 s = mlk_v_expnhsq_f32(a, &kd);
    const __m512 m = mlk_v_copysign_f32(a, x);
    const __m512 S = _mm512_mul_ps(m, G);
    const __m512 Slo = _mm512_fmadd_ps(m, Glo, _mm512_fmsub_ps(m, G, S));   /* x (G + Glo) - S */
    const __m512 xh = _mm512_scalef_ps(_mm512_add_ps(S, _mm512_fmadd_ps(S, s, Slo)), kd);
    const __mmask16 neg = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ);
    /* x = -0 is not < 0: -0 - xh = -0 (xh = +0 there), +0 - (+0) = +0 */
    return _mm512_mask_blend_ps(neg, _mm512_sub_ps(x, xh), xh);
}
/* gelu'(x) = Phi(x) + x phi(x): t = (g + q/sqrt(2 pi)) e^{-a^2/2}, q = x for
 * x < 0 (gelu' = t), q = -x above (gelu' = 1 - t); the limits beyond 14.5 */
MLK_INLINE __m512 mlk_v_gelu_grad_f32(__m512 x) {
    const __m512 ax = mlk_v_abs_f32(x);
    const __m512 a = _mm512_min_ps(ax, MLK_V1(14.5f));
    __m512 Glo;
    const __m512 G = mlk_v_gelu_g_f32(a, &Glo);
    __m512 kd;
    const __m512 s = mlk_v_expnhsq_f32(a, &kd);
    const __mmask16 neg = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ);
    const __m512 q = _mm512_mask_blend_ps(neg, _mm512_sub_ps(_mm512_setzero_ps(), a), x);
    const __m512 S = _mm512_fmadd_ps(q, MLK_V1(0.3989422917366028f), G);
    const __m512 t = _mm512_scalef_ps(_mm512_add_ps(S, _mm512_fmadd_ps(S, s, Glo)), kd);
    __m512 g = _mm512_mask_blend_ps(neg, _mm512_sub_ps(MLK_V1(1.0f), t), t);
    const __mmask16 far = _mm512_cmp_ps_mask(ax, MLK_V1(14.5f), _CMP_GE_OQ);
    g = _mm512_mask_blend_ps(far, g, _mm512_mask_blend_ps(neg, MLK_V1(1.0f), MLK_V1(-0.0f)));
    const __mmask16 nan = _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
    return _mm512_mask_blend_ps(nan, g, x);
}
/* tanh (degree 5 per piece, <= 0.91 ULP; 1 from 10 on), the sign of x */
MLK_INLINE __m512 mlk_v_tanh_tab_f32(__m512 x) {
    /* min's operand order keeps a NaN (its piece index is garbage, u = NaN) */
    const __m512 a = _mm512_min_ps(MLK_V1(15.0f), mlk_v_abs_f32(x));
    const __m512i i = mlk_v_piece_f32(a);
    const __m512 u = _mm512_sub_ps(a, MLK_V_TAB(mlk_v_ttab_f32, 0, i));
    __m512 P = MLK_V_TAB(mlk_v_ttab_f32, 6, i);
    P = _mm512_fmadd_ps(P, u, MLK_V_TAB(mlk_v_ttab_f32, 5, i));
    P = _mm512_fmadd_ps(P, u, MLK_V_TAB(mlk_v_ttab_f32, 4, i));
    P = _mm512_fmadd_ps(P, u, MLK_V_TAB(mlk_v_ttab_f32, 3, i));
    P = _mm512_fmadd_ps(P, u, MLK_V_TAB(mlk_v_ttab_f32, 2, i));
    P = _mm512_fmadd_ps(P, u, MLK_V_TAB(mlk_v_ttab_f32, 1, i));
    return mlk_v_copysign_f32(P, x);
}

/* ---- the bell-shaped derivatives ------------------------------------------ */
/* k e/(1+e)^2, e = e^{-c|x|} (c = 1: sigmoid', k = 1; c = 2: tanh', k = 4),
 * evaluated in float32 (the portable code goes through float64): the
 * roundings of 1+e, of its square and of the quotient are corrected (as
 * mlk_bell_f64), e is kept as p 2^kd and the scale applied last (one
 * rounding, also for a subnormal result).  |x| beyond the clamp: 0. */
MLK_INLINE __m512 mlk_v_bell_f32(__m512 x, float c, float k) {
    const __m512 ax = _mm512_min_ps(MLK_V1(120.0f / c), mlk_v_abs_f32(x));   /* NaN kept */
    __m512 kd;
    const __m512 p = mlk_v_expneg_p_f32(_mm512_mul_ps(MLK_V1(-c), ax), &kd);
    const __m512 e = _mm512_scalef_ps(p, kd);
    const __m512 one = MLK_V1(1.0f);
    const __m512 d = _mm512_add_ps(one, e);
    const __m512 derr = _mm512_add_ps(_mm512_sub_ps(one, d), e);
    const __m512 D = _mm512_mul_ps(d, d);
    const __m512 Derr = _mm512_fmadd_ps(_mm512_add_ps(d, d), derr, _mm512_fmsub_ps(d, d, D));
    const __m512 rD = _mm512_rcp14_ps(D);      /* 2^-14: squared by the residual step */
    const __m512 num = _mm512_mul_ps(MLK_V1(k), p);
    __m512 q = _mm512_mul_ps(num, rD);
    const __m512 rem = _mm512_fnmadd_ps(q, Derr, _mm512_fnmadd_ps(q, D, num));
    q = _mm512_fmadd_ps(rem, rD, q);
    return _mm512_scalef_ps(q, kd);       /* NaN propagates through p */
}

/* num/(1 + e), scaled by 2^kd where neg (x e/(1+e) of silu and gelu_tanh,
 * e = p 2^kd kept unscaled in num): the rounding of 1 + e and the quotient's
 * residual corrected.  rcp14 alone (2^-14): the one residual step squares its
 * error; minus the residual, so that q = -0 stays -0 (q - (+0) = -0). */
MLK_INLINE __m512 mlk_v_xsig_quot_f32(__m512 num, __m512 e, __m512 kd, __mmask16 neg) {
    const __m512 one = MLK_V1(1.0f);
    const __m512 d = _mm512_add_ps(one, e);
    const __m512 derr = _mm512_add_ps(_mm512_sub_ps(one, d), e);
    const __m512 rd = _mm512_rcp14_ps(d);
    const __m512 q = _mm512_mul_ps(num, rd);
    const __m512 nres = _mm512_fmadd_ps(q, derr, _mm512_fmsub_ps(q, d, num));
    return _mm512_scalef_ps(_mm512_fnmadd_ps(nres, rd, q), _mm512_maskz_mov_ps(neg, kd));
}

/* ---- silu ------------------------------------------------------------------ */
/* silu(x) = x sigmoid(x) (mlk_silu1_f32, beta = 1): x/(1+e) for x >= 0,
 * x e/(1+e) below with e = p 2^kd and the scale applied last; the quotient
 * with its residual and the rounding of 1 + e corrected (the portable
 * float32 code corrects only the latter).  Beyond |x| = 131 (portable: E = 0)
 * x on the right, a signed 0 on the left; the sign of a zero x kept. */
MLK_INLINE __m512 mlk_v_silu1_f32(__m512 x) {
    /* -|x| down to -200, where x e^{-|x|} 2^... underflows for every finite x
       (NaN -> -200: num carries the NaN) */
    const __m512 nax = _mm512_max_ps(_mm512_or_ps(x, MLK_V1(-0.0f)), MLK_V1(-200.0f));
    __m512 kd;
    const __m512 p = mlk_v_expneg_p_f32(nax, &kd);
    const __m512 e = _mm512_scalef_ps(p, kd);
    const __mmask16 neg = _mm512_movepi32_mask(_mm512_castps_si512(x));   /* sign bit */
    /* x p on the left, x >= -1e38 so that it does not overflow (p < 1.5; a
       NaN x is kept by max's operand order) */
    const __m512 num = _mm512_mask_mul_ps(x, neg, _mm512_max_ps(MLK_V1(-1e38f), x), p);
    const __m512 y = mlk_v_xsig_quot_f32(num, e, kd, neg);
    /* x = +inf -> +inf (token 5), x = -inf -> -0 (token 7); others: y */
    return _mm512_fixupimm_ps(y, x, _mm512_set1_epi32(0x570000), 0);
}

/* gelu(x, approximate="tanh") = x sigmoid(u2), u2 = 2 sqrt(2/pi) x (1 +
 * 0.044715 x^2) (mlk_gelu_tanh_f32): u2 with its rounding error u2e (as
 * mlk_gelu_u2, written as x (C + CK x^2) with fewer operations), u2e folded into the reduced
 * argument of e = e^{-|u2|} = p 2^kd (in the left tail an absolute error of
 * u2 is a relative error of the result); then mlk_v_silu1_f32's quotient
 * (x/(1+e) for x >= 0, x p/(1+e) 2^kd below, 1 + e and the quotient
 * corrected).  x is clamped to [-12, 12] for u2 and for the left numerator:
 * beyond, the result is x on the right (e < 2^-200) and a signed 0 on the
 * left (|x| e^{-|u2|} < 2^-200).  NaN, +-0, +-inf by fixupimm: x, x, x, -0, +inf. */
MLK_INLINE __m512 mlk_v_gelu_tanh_f32(__m512 x) {
    const __m512 one = MLK_V1(1.0f);
    const __m512 xc = _mm512_max_ps(MLK_V1(-12.0f), _mm512_min_ps(MLK_V1(12.0f), x));
    /* u2 = x (C + CK x^2) to first order in the roundings: x^2 and CK x^2
       split by fma, C + CK x^2 by Fast2Sum (both > 0: max first), C and CK
       carried as hi + lo */
    const __m512 x2 = _mm512_mul_ps(xc, xc);
    const __m512 x2e = _mm512_fmsub_ps(xc, xc, x2);
    const __m512 A = _mm512_mul_ps(MLK_V1(0.07135481387376785f), x2);
    const __m512 Ae = _mm512_fmsub_ps(MLK_V1(0.07135481387376785f), x2, A);
    const __m512 Alo = _mm512_fmadd_ps(MLK_V1(0.07135481387376785f), x2e,
                                       _mm512_fmadd_ps(MLK_V1(2.3988324659995897e-09f), x2, Ae));
    const __m512 hi = _mm512_max_ps(MLK_V1(1.5957691669464111f), A);
    const __m512 lo = _mm512_min_ps(MLK_V1(1.5957691669464111f), A);
    const __m512 P = _mm512_add_ps(hi, lo);
    const __m512 Pe = _mm512_add_ps(_mm512_add_ps(_mm512_sub_ps(hi, P), lo),
                                    _mm512_add_ps(Alo, MLK_V1(-4.534068054340423e-08f)));
    const __m512 u2 = _mm512_mul_ps(xc, P);
    const __m512 u2e = _mm512_fmadd_ps(xc, Pe, _mm512_fmsub_ps(xc, P, u2));
    /* -|u2| (>= -142.5); its error -sign(u2) u2e goes into r below */
    const __mmask16 neg = _mm512_movepi32_mask(_mm512_castps_si512(x));   /* sign bit */
    const __m512 nz = _mm512_or_ps(u2, MLK_V1(-0.0f));
    __m512 kd = _mm512_fmadd_ps(nz, MLK_V1(MLK_INVLN2_32), MLK_V1(MLK_SHIFT32));
    kd = _mm512_sub_ps(kd, MLK_V1(MLK_SHIFT32));
    __m512 r = _mm512_fnmadd_ps(kd, MLK_V1(MLK_LN2HI_32), nz);           /* exact */
    r = _mm512_mask_add_ps(_mm512_sub_ps(r, u2e), neg, r, u2e);
    r = _mm512_fnmadd_ps(kd, MLK_V1(MLK_LN2LO_32), r);
    const __m512 p = _mm512_add_ps(one, _mm512_fmadd_ps(_mm512_mul_ps(r, r), mlk_v_expq_f32(r), r));
    const __m512 e = _mm512_scalef_ps(p, kd);
    const __m512 num = _mm512_mask_mul_ps(x, neg, xc, p);
    const __m512 y = mlk_v_xsig_quot_f32(num, e, kd, neg);
    /* QNaN, zero -> x (token 1), SNaN -> QNaN(x) (2), -inf -> -0 (7), +inf -> +inf (5) */
    return _mm512_fixupimm_ps(y, x, _mm512_set1_epi32(0x570121), 0);
}

/* silu'(x) = s (1 + z (1 - s)), s = sigmoid(z), z = beta x (mlk_silu_grad_f32);
 * s kept as a mantissa and 2^kd until the end; beyond |z| = 131: 0 / 1 */
MLK_INLINE __m512 mlk_v_silu_grad_f32(__m512 x, __m512 beta) {
    const __m512 one = MLK_V1(1.0f);
    const __m512 z = _mm512_mul_ps(beta, x);
    /* -|z| down to -131 (NaN -> -131: z carries the NaN into the result) */
    const __m512 naz = _mm512_max_ps(_mm512_or_ps(z, MLK_V1(-0.0f)), MLK_V1(-131.0f));
    __m512 kd;
    const __m512 p = mlk_v_expneg_p_f32(naz, &kd);
    const __m512 e = _mm512_scalef_ps(p, kd);
    const __m512 r = mlk_v_rcp_f32(_mm512_add_ps(one, e));                   /* 1/(1+e) */
    const __mmask16 neg = _mm512_movepi32_mask(_mm512_castps_si512(z));      /* sign bit */
    const __m512 ss = _mm512_mask_mul_ps(r, neg, p, r);         /* s, z < 0: over 2^kd */
    const __m512 sn = _mm512_mask_mul_ps(r, ~neg, e, r);        /* 1 - s */
    __m512 g = _mm512_scalef_ps(_mm512_fmadd_ps(ss, _mm512_mul_ps(z, sn), ss),
                                _mm512_maskz_mov_ps(neg, kd));
    /* beyond |z| = 131 (portable: E = 0), +-inf included: 0 / 1 */
    const __mmask16 far = _mm512_cmp_ps_mask(naz, _mm512_or_ps(z, MLK_V1(-0.0f)), _CMP_GT_OQ);
    return _mm512_mask_blend_ps(far, g, _mm512_maskz_mov_ps(~neg, one));
}

/* ---- the loops ----------------------------------------------------------- */
/* y[0..n) = F(x[0..n)): full vectors, then one masked vector */
#define MLK_V_LOOP1(name, VEXPR) \
    static MLK_NOINLINE void mlk_vloop_##name##_f32(const float *restrict x, float *restrict y, \
                                                   intptr_t n, const float *prm) { \
        (void)prm; \
        intptr_t i = 0; \
        for (; i + 16 <= n; i += 16) { const __m512 v = _mm512_loadu_ps(x + i); \
                                       _mm512_storeu_ps(y + i, (VEXPR)); } \
        if (i < n) { const __mmask16 m_ = (__mmask16)((1u << (n - i)) - 1); \
                     const __m512 v = _mm512_maskz_loadu_ps(m_, x + i); \
                     _mm512_mask_storeu_ps(y + i, m_, (VEXPR)); } \
    }
/* y[0..n) = g * F(s) */
#define MLK_V_LOOP2(name, VEXPR) \
    static MLK_NOINLINE void mlk_vloop2_##name##_f32(const float *restrict g, const float *restrict s, \
                                                    float *restrict y, intptr_t n, const float *prm) { \
        (void)prm; \
        intptr_t i = 0; \
        for (; i + 16 <= n; i += 16) { const __m512 v = _mm512_loadu_ps(s + i); \
                                       _mm512_storeu_ps(y + i, _mm512_mul_ps(_mm512_loadu_ps(g + i), (VEXPR))); } \
        if (i < n) { const __mmask16 m_ = (__mmask16)((1u << (n - i)) - 1); \
                     const __m512 v = _mm512_maskz_loadu_ps(m_, s + i); \
                     _mm512_mask_storeu_ps(y + i, m_, _mm512_mul_ps(_mm512_maskz_loadu_ps(m_, g + i), (VEXPR))); } \
    }
typedef void (*mlk_vloop1_f32)(const float *, float *, intptr_t, const float *);
typedef void (*mlk_vloop2_f32)(const float *, const float *, float *, intptr_t, const float *);

/* The drivers: the blocking of MLK_MAP_BLK_BODY / MLK_MAP2_BLK_BODY
 * (mlk_kernels_tmpl.h, same thresholds): an aligning head, then either one
 * pass, or (out of cache) blocks pulled into L1 first (mlk_touch), written
 * with non-temporal stores when the output is large (mlk_stream_out). */
static void mlk_vmap1_f32(mlk_vloop1_f32 f, const float *x, float *y, intptr_t n, const float *prm) {
    const intptr_t h = mlk_head_f32(y, n);
    if (h) f(x, y, h, prm);
    const int big = (n - h) * (intptr_t)sizeof(float) > MLK_TOUCH_MIN;
    if (!big) { f(x + h, y + h, n - h, prm); return; }
    if (mlk_stream_out_f32(n)) {
        float buf[MLK_BLOCK] __attribute__((aligned(64)));
        for (intptr_t i0 = h; i0 < n; i0 += MLK_BLOCK) {
            const intptr_t e = n - i0 > MLK_BLOCK ? MLK_BLOCK : n - i0;
            mlk_touch_f32(x + i0, e);
            f(x + i0, buf, e, prm);
            mlk_stream_copy_f32(y + i0, buf, e);
        }
        mlk_stream_fence();
        return;
    }
    for (intptr_t i0 = h; i0 < n; i0 += MLK_BLOCK) {
        const intptr_t e = n - i0 > MLK_BLOCK ? MLK_BLOCK : n - i0;
        mlk_touch_f32(x + i0, e);
        f(x + i0, y + i0, e, prm);
    }
}
static void mlk_vmap2_f32(mlk_vloop2_f32 f, const float *g, const float *s, float *y, intptr_t n,
                          const float *prm) {
    const intptr_t h = mlk_head_f32(y, n);
    if (h) f(g, s, y, h, prm);
    const int big = (n - h) * 2 * (intptr_t)sizeof(float) > MLK_TOUCH_MIN;
    if (!big) { f(g + h, s + h, y + h, n - h, prm); return; }
    if (mlk_stream_out_f32(n)) {
        float buf[MLK_BLOCK] __attribute__((aligned(64)));
        for (intptr_t i0 = h; i0 < n; i0 += MLK_BLOCK) {
            const intptr_t e = n - i0 > MLK_BLOCK ? MLK_BLOCK : n - i0;
            mlk_touch_f32(g + i0, e);
            mlk_touch_f32(s + i0, e);
            f(g + i0, s + i0, buf, e, prm);
            mlk_stream_copy_f32(y + i0, buf, e);
        }
        mlk_stream_fence();
        return;
    }
    for (intptr_t i0 = h; i0 < n; i0 += MLK_BLOCK) {
        const intptr_t e = n - i0 > MLK_BLOCK ? MLK_BLOCK : n - i0;
        mlk_touch_f32(g + i0, e);
        mlk_touch_f32(s + i0, e);
        f(g + i0, s + i0, y + i0, e, prm);
    }
}

/* relu: max(0, x) returns x for NaN and for -0 (its second operand), as
   the portable x < 0 ? 0 : x; leaky_relu: x > 0 ? x : a x */
MLK_V_LOOP1(relu, _mm512_max_ps(_mm512_setzero_ps(), v))
MLK_V_LOOP1(leaky_relu, _mm512_mask_mul_ps(v, _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_NGT_UQ),
                                           v, MLK_V1(prm[0])))
MLK_V_LOOP1(tanh, mlk_v_tanh_tab_f32(v))
MLK_V_LOOP1(tanh_grad, mlk_v_bell_f32(v, 2.0f, 4.0f))
MLK_V_LOOP1(sigmoid_grad, mlk_v_bell_f32(v, 1.0f, 1.0f))
MLK_V_LOOP1(silu1, mlk_v_silu1_f32(v))
MLK_V_LOOP1(silu_grad, mlk_v_silu_grad_f32(v, MLK_V1(prm[1])))
MLK_V_LOOP2(silu_grad, mlk_v_silu_grad_f32(v, MLK_V1(prm[1])))
MLK_V_LOOP1(gelu, mlk_v_gelu_f32(v))
MLK_V_LOOP1(gelu_tanh, mlk_v_gelu_tanh_f32(v))
MLK_V_LOOP1(gelu_grad, mlk_v_gelu_grad_f32(v))
MLK_V_LOOP2(gelu_grad, mlk_v_gelu_grad_f32(v))

static int mlk_simd_unary_f32(int op, const float *x, float *y, intptr_t n, const mlk_params *p) {
    const float prm[3] = {(float)p->a, (float)p->b, (float)p->c};
    mlk_vloop1_f32 f;
    switch (op) {
    case MLK_RELU:         f = mlk_vloop_relu_f32; break;
    case MLK_LEAKY_RELU:   f = mlk_vloop_leaky_relu_f32; break;
    case MLK_TANH:         f = mlk_vloop_tanh_f32; break;
    case MLK_TANH_GRAD:    f = mlk_vloop_tanh_grad_f32; break;
    case MLK_SIGMOID_GRAD: f = mlk_vloop_sigmoid_grad_f32; break;
    case MLK_SILU:
        if (prm[1] != 1.0f) return 0;       /* beta != 1: the portable kernel */
        f = mlk_vloop_silu1_f32; break;
    case MLK_SILU_GRAD:    f = mlk_vloop_silu_grad_f32; break;
    case MLK_GELU:      f = mlk_vloop_gelu_f32; break;
    case MLK_GELU_GRAD: f = mlk_vloop_gelu_grad_f32; break;
    case MLK_GELU_TANH: f = mlk_vloop_gelu_tanh_f32; break;
    default: return 0;
    }
    mlk_vmap1_f32(f, x, y, n, prm);
    return 1;
}

static int mlk_simd_binary_f32(int op, const float *g, const float *s, float *y, intptr_t n,
                               const mlk_params *p) {
    const float prm[3] = {(float)p->a, (float)p->b, (float)p->c};
    mlk_vloop2_f32 f;
    switch (op) {
    case MLK_SILU_BWD: f = mlk_vloop2_silu_grad_f32; break;
    case MLK_GELU_BWD: f = mlk_vloop2_gelu_grad_f32; break;
    default: return 0;
    }
    mlk_vmap2_f32(f, g, s, y, n, prm);
    return 1;
}

#undef MLK_V_LOOP1
#undef MLK_V_LOOP2
#endif /* __AVX512F__ && __AVX512DQ__ */
#endif /* MLK_SIMD_F32_H */
