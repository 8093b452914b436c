/*
 * mlk_optim_tmpl.h -- the optimisers' fused in-place steps over one
 * contiguous chunk, written once over MLK_T / MLK_F / MLK_K (instantiated by
 * mlk_kernels_body.h for float32 and float64 at every ISA level).
 *
 * Each step is one pass: the parameter, the gradient and the state are read
 * once and the parameter and the state written once.  The update rules are
 * docs/contract.rst's, in PyTorch's order of operations (torch.optim, foreach=False),
 * so that the trajectories agree to rounding:
 *   g'        = g + wd*theta (coupled weight decay, when wd != 0)
 *   SGD       theta -= lr g'
 *   MOMENTUM  v = mom v + lr g';  theta -= v        (v = lr x torch's buffer)
 *   NESTEROV  v = mom v + lr g';  theta -= mom v + lr g'
 *   ADAGRAD   G += g'^2;  theta -= lr g' / (sqrt(G) + eps)
 *   ADADELTA  S = rho S + (1-rho) g'^2;  d = sqrt(D+eps)/sqrt(S+eps) g';
 *             D = rho D + (1-rho) d^2;  theta -= lr d
 *   RMSPROP   S = alpha S + (1-alpha) g'^2;  theta -= lr g' / (sqrt(S) + eps)
 *   ADAM      m += (1-b1)(g' - m)  (lerp: no growth of m's rounding);
 *             v = b2 v + (1-b2) g'^2;
 *             theta -= (lr/bc1) m / (sqrt(v)/sqrt(bc2) + eps)
 *   ADAMW     theta *= 1 - lr wd first, then ADAM with wd = 0
 * Hyper-parameters arrive in double; the bias corrections bc1 = 1-b1^t and
 * bc2 = 1-b2^t are computed in double by the caller (step_size = lr/bc1,
 * rbc2 = 1/sqrt(bc2)) and rounded once to the element type.
 * The pointers are distinct arrays (the Python layer refuses overlaps),
 * except that grad may equal param; every loop reads an index before it
 * writes it, so `restrict` holds for the vectoriser.
 */

#define MLK_OPT_LOOP(WD, BODY) \
    if (WD) { for (intptr_t i = 0; i < n; i++) { const MLK_T th = th_[i]; const MLK_T g = g_[i] + wd * th; BODY } } \
    else    { for (intptr_t i = 0; i < n; i++) { const MLK_T th = th_[i]; const MLK_T g = g_[i]; BODY } } \
    break

void MLK_K(mlk_optim)(int op, MLK_T *restrict th_, const MLK_T *restrict g_, MLK_T *restrict s1,
                      MLK_T *restrict s2, intptr_t n, const mlk_oparams *p) {
    const MLK_T lr = (MLK_T)p->lr, mom = (MLK_T)p->mom, wd = (MLK_T)p->wd;
    const MLK_T b1 = (MLK_T)p->beta1, b2 = (MLK_T)p->beta2, eps = (MLK_T)p->eps;
    const MLK_T omb1 = (MLK_T)(1.0 - p->beta1), omb2 = (MLK_T)(1.0 - p->beta2);
    const MLK_T ss = (MLK_T)p->step_size, rbc2 = (MLK_T)p->rbc2, decay = (MLK_T)p->decay;
    const int wd_on = p->wd != 0.0;
    switch (op) {
    case MLK_O_SGD:
        MLK_OPT_LOOP(wd_on, th_[i] = th - lr * g;);
    case MLK_O_MOMENTUM:
        MLK_OPT_LOOP(wd_on, const MLK_T v = mom * s1[i] + lr * g; s1[i] = v; th_[i] = th - v;);
    case MLK_O_NESTEROV:
        MLK_OPT_LOOP(wd_on, const MLK_T lg = lr * g; const MLK_T v = mom * s1[i] + lg;
                     s1[i] = v; th_[i] = th - (mom * v + lg););
    case MLK_O_ADAGRAD:
        MLK_OPT_LOOP(wd_on, const MLK_T G = s1[i] + g * g; s1[i] = G;
                     th_[i] = th - lr * (g / (MLK_SQRT(G) + eps)););
    case MLK_O_ADADELTA:
        /* b1 = rho, omb1 = 1 - rho */
        MLK_OPT_LOOP(wd_on, const MLK_T S = b1 * s1[i] + omb1 * (g * g);
                     const MLK_T d = MLK_SQRT(s2[i] + eps) / MLK_SQRT(S + eps) * g;
                     s1[i] = S; s2[i] = b1 * s2[i] + omb1 * (d * d); th_[i] = th - lr * d;);
    case MLK_O_RMSPROP:
        /* b2 = alpha, omb2 = 1 - alpha */
        MLK_OPT_LOOP(wd_on, const MLK_T S = b2 * s1[i] + omb2 * (g * g); s1[i] = S;
                     th_[i] = th - lr * (g / (MLK_SQRT(S) + eps)););
    case MLK_O_ADAM:
        MLK_OPT_LOOP(wd_on, const MLK_T m = s1[i] + omb1 * (g - s1[i]);
                     const MLK_T v = b2 * s2[i] + omb2 * (g * g);
                     s1[i] = m; s2[i] = v;
                     th_[i] = th - ss * (m / (MLK_SQRT(v) * rbc2 + eps)););
    case MLK_O_ADAMW:
        for (intptr_t i = 0; i < n; i++) {
            const MLK_T th = th_[i] * decay, g = g_[i];
            const MLK_T m = s1[i] + omb1 * (g - s1[i]);
            const MLK_T v = b2 * s2[i] + omb2 * (g * g);
            s1[i] = m; s2[i] = v;
            th_[i] = th - ss * (m / (MLK_SQRT(v) * rbc2 + eps));
        }
        break;
    default: break;
    }
    (void)b1;
}
#undef MLK_OPT_LOOP
