/*
 * mlk_rnn_tmpl.h -- the fused gate kernels of the recurrent layers (RNN,
 * LSTM, GRU; PyTorch's gate order and formulas), one time step over one
 * block of hidden units, written once over MLK_T / MLK_F / MLK_K
 * (instantiated by mlk_kernels_body.h for float32 and float64 at every ISA
 * level).  The Cython driver (_rnn.pxi) owns the time loop, the GEMMs and
 * the threads.
 *
 * Layout: the gate arrays (projection p, recurrent product s, activations,
 * gate gradients) hold the G gates of the block side by side, gate k of
 * unit j at k*hb + j of a row (row stride ldg); the state arrays (h, c,
 * aux, dh, dc) at j (row stride ldh).  The forward writes the activations
 * over p (p is scratch or the saved array).  Forward:
 *   RNN   h = act(p + s)
 *   LSTM  i, f, o = sigmoid, g = tanh of p + s;  c = f c' + i g;  h = o tanh(c)
 *         (aux = tanh(c))
 *   GRU   r, z = sigmoid(p + s);  aux = s_n + b_hn;  n = tanh(p_n + r aux);
 *         h = n + z (h' - n)
 * Backward (dht = dh + go, go optional), from the saved activations:
 *   RNN   dg = dht act'(h)
 *   LSTM  dct = dc + dht o (1 - tanh(c)^2);  dg = (dct g i', dct c' f',
 *         dct i (1 - g^2), dht tanh(c) o');  dc = dct f
 *   GRU   dprev = dht z;  dn = (dht - dprev)(1 - n^2);  dz = dht (h' - n) z';
 *         dr = dn aux r';  dg = (dr, dz, dn), dgh = (dr, dz, dn r)
 * Every state pointer is its own array (restrict); p and the activations
 * are the same array, read before written at each index.
 */

#define MLK_RNN_ROWS(BODY) \
    for (intptr_t n = 0; n < a->N; n++) { BODY }

void MLK_K(mlk_rnn)(int op, const mlk_rnn_args *a) {
    const intptr_t hb = a->hb, ldg = a->ldg, ldh = a->ldh;
    switch (op) {
    case MLK_RNN_TANH_FWD:
    case MLK_RNN_RELU_FWD: {
        const int relu = op == MLK_RNN_RELU_FWD;
        MLK_RNN_ROWS(
            MLK_T *pa = (MLK_T *)a->act + n * ldg;
            const MLK_T *restrict s = (const MLK_T *)a->s + n * ldg;
            MLK_T *restrict h = (MLK_T *)a->h + n * ldh;
            if (relu) {
                for (intptr_t j = 0; j < hb; j++) h[j] = MLK_F(mlk_relu)(s[j] + pa[j]);
            } else {
                for (intptr_t j = 0; j < hb; j++) h[j] = MLK_F(mlk_tanh)(s[j] + pa[j]);
            })
        break;
    }
    case MLK_LSTM_FWD:
        MLK_RNN_ROWS(
            MLK_T *pa = (MLK_T *)a->act + n * ldg;
            const MLK_T *restrict s = (const MLK_T *)a->s + n * ldg;
            const MLK_T *restrict cp = (const MLK_T *)a->cp + n * ldh;
            MLK_T *restrict c = (MLK_T *)a->c + n * ldh;
            MLK_T *restrict h = (MLK_T *)a->h + n * ldh;
            MLK_T *restrict tc = (MLK_T *)a->aux + n * ldh;
            for (intptr_t j = 0; j < hb; j++) {
                const MLK_T i = MLK_F(mlk_sigmoid)(s[j] + pa[j]);
                const MLK_T f = MLK_F(mlk_sigmoid)(s[hb + j] + pa[hb + j]);
                const MLK_T g = MLK_F(mlk_tanh)(s[2 * hb + j] + pa[2 * hb + j]);
                const MLK_T o = MLK_F(mlk_sigmoid)(s[3 * hb + j] + pa[3 * hb + j]);
                const MLK_T cn = f * cp[j] + g * i;
                const MLK_T t = MLK_F(mlk_tanh)(cn);
                pa[j] = i; pa[hb + j] = f; pa[2 * hb + j] = g; pa[3 * hb + j] = o;
                c[j] = cn; tc[j] = t; h[j] = o * t;
            })
        break;
    case MLK_GRU_FWD:
        MLK_RNN_ROWS(
            MLK_T *pa = (MLK_T *)a->act + n * ldg;
            const MLK_T *restrict s = (const MLK_T *)a->s + n * ldg;
            const MLK_T *restrict bhn = (const MLK_T *)a->bhn;
            const MLK_T *restrict hp = (const MLK_T *)a->hp + n * ldh;
            MLK_T *restrict h = (MLK_T *)a->h + n * ldh;
            MLK_T *restrict hn = (MLK_T *)a->aux + n * ldh;
            for (intptr_t j = 0; j < hb; j++) {
                const MLK_T r = MLK_F(mlk_sigmoid)(s[j] + pa[j]);
                const MLK_T z = MLK_F(mlk_sigmoid)(s[hb + j] + pa[hb + j]);
                const MLK_T q = s[2 * hb + j] + bhn[j];
                const MLK_T nn = MLK_F(mlk_tanh)(r * q + pa[2 * hb + j]);
                pa[j] = r; pa[hb + j] = z; pa[2 * hb + j] = nn;
                hn[j] = q; h[j] = (hp[j] - nn) * z + nn;
            })
        break;
    case MLK_RNN_TANH_BWD:
    case MLK_RNN_RELU_BWD: {
        const int relu = op == MLK_RNN_RELU_BWD;
        MLK_RNN_ROWS(
            const MLK_T *restrict dh = (const MLK_T *)a->dh + n * ldh;
            const MLK_T *restrict go = a->go ? (const MLK_T *)a->go + n * ldh : NULL;
            const MLK_T *restrict h = (const MLK_T *)a->h + n * ldh;
            MLK_T *restrict dg = (MLK_T *)a->dg + n * ldg;
            if (relu) {
                if (go) { for (intptr_t j = 0; j < hb; j++) dg[j] = (dh[j] + go[j]) * (h[j] > 0 ? (MLK_T)1 : (MLK_T)0); }
                else    { for (intptr_t j = 0; j < hb; j++) dg[j] = dh[j] * (h[j] > 0 ? (MLK_T)1 : (MLK_T)0); }
            } else {
                if (go) { for (intptr_t j = 0; j < hb; j++) dg[j] = (dh[j] + go[j]) * MLK_F(mlk_tanh_grad_y)(h[j]); }
                else    { for (intptr_t j = 0; j < hb; j++) dg[j] = dh[j] * MLK_F(mlk_tanh_grad_y)(h[j]); }
            })
        break;
    }
#define MLK_LSTM_BWD_BODY \
                const MLK_T i = ac[j], f = ac[hb + j], g = ac[2 * hb + j], o = ac[3 * hb + j]; \
                const MLK_T t = tc[j]; \
                const MLK_T dct = dc[j] + (dht * o) * MLK_F(mlk_tanh_grad_y)(t); \
                dg[j] = (dct * g) * MLK_F(mlk_sigmoid_grad_y)(i); \
                dg[hb + j] = (dct * cp[j]) * MLK_F(mlk_sigmoid_grad_y)(f); \
                dg[2 * hb + j] = (dct * i) * MLK_F(mlk_tanh_grad_y)(g); \
                dg[3 * hb + j] = (dht * t) * MLK_F(mlk_sigmoid_grad_y)(o); \
                dc[j] = dct * f;
    case MLK_LSTM_BWD:
        MLK_RNN_ROWS(
            const MLK_T *restrict dh = (const MLK_T *)a->dh + n * ldh;
            const MLK_T *restrict go = a->go ? (const MLK_T *)a->go + n * ldh : NULL;
            const MLK_T *restrict ac = (const MLK_T *)a->act + n * ldg;
            const MLK_T *restrict tc = (const MLK_T *)a->aux + n * ldh;
            const MLK_T *restrict cp = (const MLK_T *)a->cp + n * ldh;
            MLK_T *restrict dc = (MLK_T *)a->dc + n * ldh;
            MLK_T *restrict dg = (MLK_T *)a->dg + n * ldg;
            if (go) { for (intptr_t j = 0; j < hb; j++) { const MLK_T dht = dh[j] + go[j]; MLK_LSTM_BWD_BODY } }
            else    { for (intptr_t j = 0; j < hb; j++) { const MLK_T dht = dh[j]; MLK_LSTM_BWD_BODY } })
        break;
#undef MLK_LSTM_BWD_BODY
#define MLK_GRU_BWD_BODY \
                const MLK_T r = ac[j], z = ac[hb + j], nn = ac[2 * hb + j]; \
                const MLK_T dpv = dht * z; \
                const MLK_T dn = (dht - dpv) * MLK_F(mlk_tanh_grad_y)(nn); \
                const MLK_T dz = ((hp[j] - nn) * dht) * MLK_F(mlk_sigmoid_grad_y)(z); \
                const MLK_T dr = (dn * hn[j]) * MLK_F(mlk_sigmoid_grad_y)(r); \
                dg[j] = dr; dg[hb + j] = dz; dg[2 * hb + j] = dn; \
                dgh[j] = dr; dgh[hb + j] = dz; dgh[2 * hb + j] = dn * r; \
                dprev[j] = dpv;
    case MLK_GRU_BWD:
        MLK_RNN_ROWS(
            const MLK_T *restrict dh = (const MLK_T *)a->dh + n * ldh;
            const MLK_T *restrict go = a->go ? (const MLK_T *)a->go + n * ldh : NULL;
            const MLK_T *restrict ac = (const MLK_T *)a->act + n * ldg;
            const MLK_T *restrict hn = (const MLK_T *)a->aux + n * ldh;
            const MLK_T *restrict hp = (const MLK_T *)a->hp + n * ldh;
            MLK_T *restrict dprev = (MLK_T *)a->dprev + n * ldh;
            MLK_T *restrict dg = (MLK_T *)a->dg + n * ldg;
            MLK_T *restrict dgh = (MLK_T *)a->dgh + n * ldg;
            if (go) { for (intptr_t j = 0; j < hb; j++) { const MLK_T dht = dh[j] + go[j]; MLK_GRU_BWD_BODY } }
            else    { for (intptr_t j = 0; j < hb; j++) { const MLK_T dht = dh[j]; MLK_GRU_BWD_BODY } })
        break;
#undef MLK_GRU_BWD_BODY
    default: break;
    }
}
#undef MLK_RNN_ROWS
