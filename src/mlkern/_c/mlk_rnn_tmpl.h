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
 * aux, dh, dc) at j (row stride ldh).  The forward reads the gates'
 * pre-activations p (the projection x W_ih^T + biases to which the driver's
 * GEMM added h' W_hh^T; for GRU's n gate only x W_in^T + b_in, with s_n =
 * W_hn h' + b_hn apart) and writes the activations over them (p is scratch
 * or the saved array).  Forward:
 *   RNN   h = act(p)
 *   LSTM  i, f, o = sigmoid, g = tanh of p;  c = f c' + i g;  h = o tanh(c)
 *         (aux = tanh(c))
 *   GRU   r, z = sigmoid(p);  aux = s_n;  n = tanh(p_n + r aux);
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

/* one row of each kernel: every gate its own restrict pointer (the gates
   of a row are disjoint), so that gcc vectorises without alias checks */
static void MLK_F(mlk_lstm_fwd_row)(intptr_t hb, MLK_T *restrict pi, MLK_T *restrict pf,
                                    MLK_T *restrict pg, MLK_T *restrict po,
                                    const MLK_T *restrict cp, MLK_T *restrict c,
                                    MLK_T *restrict tc, MLK_T *restrict h) {
    for (intptr_t j = 0; j < hb; j++) {
        const MLK_T i = MLK_F(mlk_sigmoid)(pi[j]);
        const MLK_T f = MLK_F(mlk_sigmoid)(pf[j]);
        const MLK_T g = MLK_F(mlk_tanh)(pg[j]);
        const MLK_T o = MLK_F(mlk_sigmoid)(po[j]);
        const MLK_T cn = f * cp[j] + g * i;
        const MLK_T t = MLK_F(mlk_tanh)(cn);
        pi[j] = i; pf[j] = f; pg[j] = g; po[j] = o;
        c[j] = cn; tc[j] = t; h[j] = o * t;
    }
}

static void MLK_F(mlk_gru_fwd_row)(intptr_t hb, MLK_T *restrict pr, MLK_T *restrict pz,
                                   MLK_T *restrict pn, const MLK_T *restrict sn,
                                   const MLK_T *restrict hp, MLK_T *restrict hn,
                                   MLK_T *restrict h) {
    for (intptr_t j = 0; j < hb; j++) {
        const MLK_T r = MLK_F(mlk_sigmoid)(pr[j]);
        const MLK_T z = MLK_F(mlk_sigmoid)(pz[j]);
        const MLK_T q = sn[j];
        const MLK_T nn = MLK_F(mlk_tanh)(r * q + pn[j]);
        pr[j] = r; pz[j] = z; pn[j] = nn;
        hn[j] = q; h[j] = (hp[j] - nn) * z + nn;
    }
}

static void MLK_F(mlk_rnn_fwd_row)(intptr_t hb, int relu, const MLK_T *restrict p,
                                   MLK_T *restrict h) {
    if (relu) { for (intptr_t j = 0; j < hb; j++) h[j] = MLK_F(mlk_relu)(p[j]); }
    else      { for (intptr_t j = 0; j < hb; j++) h[j] = MLK_F(mlk_tanh)(p[j]); }
}

static void MLK_F(mlk_rnn_bwd_row)(intptr_t hb, int relu, const MLK_T *restrict dh,
                                   const MLK_T *restrict go, const MLK_T *restrict h,
                                   MLK_T *restrict dg) {
    if (relu) {
        if (go) { for (intptr_t j = 0; j < hb; j++) dg[j] = (dh[j] + go[j]) * (h[j] > 0 ? (MLK_T)1 : (MLK_T)0); }
        else    { for (intptr_t j = 0; j < hb; j++) dg[j] = dh[j] * (h[j] > 0 ? (MLK_T)1 : (MLK_T)0); }
    } else {
        if (go) { for (intptr_t j = 0; j < hb; j++) dg[j] = (dh[j] + go[j]) * MLK_F(mlk_tanh_grad_y)(h[j]); }
        else    { for (intptr_t j = 0; j < hb; j++) dg[j] = dh[j] * MLK_F(mlk_tanh_grad_y)(h[j]); }
    }
}

#define MLK_LSTM_BWD_BODY \
        const MLK_T i = ai[j], f = af[j], g = ag[j], o = ao[j], t = tc[j]; \
        const MLK_T dct = dc[j] + (dht * o) * MLK_F(mlk_tanh_grad_y)(t); \
        di[j] = (dct * g) * MLK_F(mlk_sigmoid_grad_y)(i); \
        df[j] = (dct * cp[j]) * MLK_F(mlk_sigmoid_grad_y)(f); \
        dgg[j] = (dct * i) * MLK_F(mlk_tanh_grad_y)(g); \
        dout[j] = (dht * t) * MLK_F(mlk_sigmoid_grad_y)(o); \
        dc[j] = dct * f;
static void MLK_F(mlk_lstm_bwd_row)(intptr_t hb, const MLK_T *restrict dh, const MLK_T *restrict go,
                                    const MLK_T *restrict act, const MLK_T *restrict tc,
                                    const MLK_T *restrict cp, MLK_T *restrict dc,
                                    MLK_T *restrict di, MLK_T *restrict df,
                                    MLK_T *restrict dgg, MLK_T *restrict dout) {
    const MLK_T *restrict ai = act, *restrict af = act + hb, *restrict ag = act + 2 * hb,
                *restrict ao = act + 3 * hb;
    if (go) { for (intptr_t j = 0; j < hb; j++) { const MLK_T dht = dh[j] + go[j]; MLK_LSTM_BWD_BODY } }
    else    { for (intptr_t j = 0; j < hb; j++) { const MLK_T dht = dh[j]; MLK_LSTM_BWD_BODY } }
}
#undef MLK_LSTM_BWD_BODY

#define MLK_GRU_BWD_BODY \
        const MLK_T r = ar[j], z = az[j], nn = an[j]; \
        const MLK_T dpv = dht * z; \
        const MLK_T dn = (dht - dpv) * MLK_F(mlk_tanh_grad_y)(nn); \
        const MLK_T dz = ((hp[j] - nn) * dht) * MLK_F(mlk_sigmoid_grad_y)(z); \
        const MLK_T dr = (dn * hn[j]) * MLK_F(mlk_sigmoid_grad_y)(r); \
        dgr[j] = dr; dgz[j] = dz; dgn[j] = dn; \
        dhr[j] = dr; dhz[j] = dz; dhn[j] = dn * r; \
        dprev[j] = dpv;
static void MLK_F(mlk_gru_bwd_row)(intptr_t hb, const MLK_T *restrict dh, const MLK_T *restrict go,
                                   const MLK_T *restrict act, const MLK_T *restrict hn,
                                   const MLK_T *restrict hp, MLK_T *restrict dprev,
                                   MLK_T *restrict dgr, MLK_T *restrict dgz, MLK_T *restrict dgn,
                                   MLK_T *restrict dhr, MLK_T *restrict dhz, MLK_T *restrict dhn) {
    const MLK_T *restrict ar = act, *restrict az = act + hb, *restrict an = act + 2 * hb;
    if (go) { for (intptr_t j = 0; j < hb; j++) { const MLK_T dht = dh[j] + go[j]; MLK_GRU_BWD_BODY } }
    else    { for (intptr_t j = 0; j < hb; j++) { const MLK_T dht = dh[j]; MLK_GRU_BWD_BODY } }
}
#undef MLK_GRU_BWD_BODY

void MLK_K(mlk_rnn)(int op, const mlk_rnn_args *a) {
    const intptr_t hb = a->hb, ldg = a->ldg, ldh = a->ldh;
#define G_(ptr, k) ((MLK_T *)(ptr) + n * ldg + (k) * hb)
#define S_(ptr) ((MLK_T *)(ptr) + n * ldh)
    for (intptr_t n = 0; n < a->N; n++) {
        switch (op) {
        case MLK_RNN_TANH_FWD:
        case MLK_RNN_RELU_FWD:
            MLK_F(mlk_rnn_fwd_row)(hb, op == MLK_RNN_RELU_FWD, G_(a->act, 0), S_(a->h));
            break;
        case MLK_LSTM_FWD:
            MLK_F(mlk_lstm_fwd_row)(hb, G_(a->act, 0), G_(a->act, 1), G_(a->act, 2),
                                    G_(a->act, 3), S_(a->cp), S_(a->c), S_(a->aux), S_(a->h));
            break;
        case MLK_GRU_FWD:
            MLK_F(mlk_gru_fwd_row)(hb, G_(a->act, 0), G_(a->act, 1), G_(a->act, 2), G_(a->s, 2),
                                   S_(a->hp), S_(a->aux), S_(a->h));
            break;
        case MLK_RNN_TANH_BWD:
        case MLK_RNN_RELU_BWD:
            MLK_F(mlk_rnn_bwd_row)(hb, op == MLK_RNN_RELU_BWD, S_(a->dh), a->go ? S_(a->go) : NULL,
                                   S_(a->h), G_(a->dg, 0));
            break;
        case MLK_LSTM_BWD:
            MLK_F(mlk_lstm_bwd_row)(hb, S_(a->dh), a->go ? S_(a->go) : NULL, G_(a->act, 0),
                                    S_(a->aux), S_(a->cp), S_(a->dc), G_(a->dg, 0), G_(a->dg, 1),
                                    G_(a->dg, 2), G_(a->dg, 3));
            break;
        case MLK_GRU_BWD:
            MLK_F(mlk_gru_bwd_row)(hb, S_(a->dh), a->go ? S_(a->go) : NULL, G_(a->act, 0),
                                   S_(a->aux), S_(a->hp), S_(a->dprev), G_(a->dg, 0), G_(a->dg, 1),
                                   G_(a->dg, 2), G_(a->dgh, 0), G_(a->dgh, 1), G_(a->dgh, 2));
            break;
        default: break;
        }
    }
#undef G_
#undef S_
}
