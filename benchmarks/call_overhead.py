"""Per-call overhead of the fast paths (minimum over 40 x 2000 calls).  Compare two
builds by alternating them, e.g.

    PYTHONPATH=<base tree>/src python benchmarks/call_overhead.py
    PYTHONPATH=src python benchmarks/call_overhead.py
"""
import timeit, numpy as np, mlkern, mlkern.optim as O
x=np.ones(16,np.float32); p=np.ones(1000,np.float32); t=np.zeros(1000,np.float32); g=np.ones(16,np.float32); w=np.ones(16,np.float32)
for name, f in [("sigmoid(16 f32)", lambda: mlkern.sigmoid(x)), ("mse_with_grad(1000 f32)", lambda: mlkern.mse_with_grad(p, t)),
                ("sgd_step(16 f32)", lambda: O.sgd_step(w, g, lr=1e-3))]:
    print(name, "%.0f ns" % (min(timeit.repeat(f, number=2000, repeat=40)) / 2000 * 1e9))
