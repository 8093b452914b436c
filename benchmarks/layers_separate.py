"""Issue 14 figures with each library in its own process (no interleaving, so
PyTorch's spinning OpenMP pool cannot take a core from mlkern): dense+relu
forward and forward+backward medians.  Run as

    for T in 1 2; do for w in mlkern torch mlkern torch; do
        env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/layers_separate.py $w $T; done; done
"""
import sys, time, numpy as np
who, T = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(0)
def med(f, n):
    for _ in range(5): f()
    ts = []
    for _ in range(n):
        t0 = time.perf_counter(); f(); ts.append(time.perf_counter() - t0)
    return sorted(ts)[n // 2]
out = []
for dt in (np.float32, np.float64):
    for (M, K, N) in [(1, 512, 512), (32, 512, 512), (256, 1024, 1024)]:
        x = rng.standard_normal((M, K)).astype(dt); w = rng.standard_normal((N, K)).astype(dt); b = rng.standard_normal(N).astype(dt)
        n = 200 if M < 256 else 30
        if who == "mlkern":
            import mlkern; from mlkern import layers as L
            mlkern.set_num_threads(T)
            def fb():
                y, s = L.dense(x, w, b, activation="relu", return_saved=True)
                L.dense_backward(y, x, w, activation="relu", saved=s)
            f = lambda: L.dense(x, w, b, activation="relu")
        else:
            import torch, torch.nn.functional as F
            torch.set_num_threads(T)
            xt, wt, bt = (torch.from_numpy(a) for a in (x, w, b))
            xg, wg, bg = (torch.from_numpy(a.copy()).requires_grad_() for a in (x, w, b))
            def f():
                with torch.inference_mode(): return torch.relu(F.linear(xt, wt, bt))
            def fb():
                y = torch.relu(F.linear(xg, wg, bg)); y.backward(y.detach())
        out.append((dt.__name__, (M, K, N), med(f, n), med(fb, n // 2)))
for r in out: print(who, T, r[0], r[1], "%.1f" % (r[2] * 1e6), "%.1f" % (r[3] * 1e6))
