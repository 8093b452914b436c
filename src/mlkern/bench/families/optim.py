"""Optimisers: the fused in-place Adam step (``mlkern.optim.adam_step``)
against NumPy and torch.optim.Adam.  Not part of a default run (``all``):
select it with ``--functions optim``.

Inputs: param, grad ~ N(0,1), drawn once per size and dtype; every impl
gets its own copy of the parameters and m = v = 0, and every timed call is
the next step of its own run (the gradient stays fixed), so m, v and the
bias corrections evolve as in training.  lr = 1e-3, the other
hyper-parameters at their defaults.  Peers: NumPy ``out=`` ufuncs with one
preallocated temporary, 12 in-place passes, over the whole arrays and over
65,536-element blocks (the block's arrays stay in cache); torch
``Adam(fused=True)`` (``foreach=True`` when fused cannot be built),
``foreach=True`` and ``foreach=False`` ([a]: they make n-sized
temporaries).  GB/s counts 7 n itemsize (p, g, m, v read; p, m, v written).

The check runs each impl on its own small instance (100,003 elements, above
mlkern's threshold for a parallel split) for 3 steps with a new gradient
per step, under the thread setting being timed, against
:func:`~mlkern.bench.references.adam_ref`: m and v within TOL of their
max, p within TOL of max(1, max|p|), and the update p - p0 within TOL of
max|update| plus 3 spacings of p0.
"""
import math

import numpy as np

from .. import references as R
from ..cases import OPTIM, TOL, Case, Family, register
from ..peers import Impl, import_torch, mlkern_function, numpy_peer, torch_peer

LR, B1, B2, EPS = 1e-3, 0.9, 0.999, 1e-8
BLOCK = 65536                 # NumPy blocked variant: elements per block
CHECK_N = 100_003
CHECK_STEPS = 3
ADAM_BYTES = 7                # x n x itemsize: p, g, m, v read; p, m, v written


def _stepper(step, state):
    """The timed callable: one Adam step; ``.state()`` -> (m, v)."""
    def f():
        step()
    f.state = state
    return f


def _mk_mlkern(ins, out):
    adam_step = mlkern_function("mlkern.optim:adam_step")
    p, g, m, v = ins
    k = [0]

    def step():
        k[0] += 1
        adam_step(p, g, m, v, step=k[0], lr=LR)
    step.state = lambda: (m, v)
    return step


def _mk_numpy(block):
    def make(ins, out):
        p, g, m, v = ins
        n = p.size
        bl = block or n
        tmp = np.empty(min(bl, n), p.dtype)
        views = [(p[i:i + bl], g[i:i + bl], m[i:i + bl], v[i:i + bl], tmp[:min(bl, n - i)])
                 for i in range(0, n, bl)]
        mul, add, sub, div, sqrt = np.multiply, np.add, np.subtract, np.divide, np.sqrt
        c1, c2 = 1.0 - B1, 1.0 - B2
        k = [0]

        def step():
            k[0] += 1
            t = k[0]
            rb = math.sqrt(1.0 - B2 ** t)
            # p -= lr/bc1 * m / (sqrt(v)/sqrt(bc2) + eps)
            #    = (lr sqrt(bc2)/bc1) * m / (sqrt(v) + eps sqrt(bc2))
            s = LR / (1.0 - B1 ** t) * rb
            e = EPS * rb
            for P, G, M, V, T in views:
                sub(G, M, out=T)
                mul(T, c1, out=T)
                add(M, T, out=M)          # m += (1-b1)(g-m)
                mul(V, B2, out=V)
                mul(G, G, out=T)
                mul(T, c2, out=T)
                add(V, T, out=V)          # v = b2 v + (1-b2) g^2
                sqrt(V, out=T)
                add(T, e, out=T)
                div(M, T, out=T)
                mul(T, s, out=T)
                sub(P, T, out=P)
        step.state = lambda: (m, v)
        return step
    return make


def _mk_torch(**kw):
    def make(ins, out):
        tm = import_torch()
        p, g, m, v = ins
        p.grad = g
        try:
            opt = tm.optim.Adam([p], lr=LR, **kw)
        except (RuntimeError, NotImplementedError, ValueError):   # no fused kernel here
            opt = tm.optim.Adam([p], lr=LR, foreach=True)

        def state():
            st = opt.state[p]
            return st["exp_avg"].numpy(), st["exp_avg_sq"].numpy()
        return _stepper(opt.step, state)
    return make


PEERS = [
    numpy_peer("numpy out= (12 passes)")(_mk_numpy(0)),
    numpy_peer(f"numpy out= blocked {BLOCK}")(_mk_numpy(BLOCK)),
    torch_peer("torch Adam fused=True")(_mk_torch(fused=True)),
    torch_peer("torch Adam foreach=True", allocates=True)(_mk_torch(foreach=True)),
    torch_peer("torch Adam foreach=False", allocates=True)(_mk_torch(foreach=False)),
]


def draw_adam(case, cache, n, dtype):
    """(p, g, m, v): a fresh copy of the parameters and zero moments for
    each impl (its steps change them), the gradient shared."""
    p0, g = cache.get(("adam", n, dtype.str), lambda: tuple(
        np.random.default_rng(n).standard_normal(n).astype(dtype) for _ in range(2)))
    return (p0.copy(), g, np.zeros_like(p0), np.zeros_like(p0))


def check_adam(case, cache, n, ins, got, impl):
    """Run ``impl`` on a small instance for a few steps (see the module docstring)."""
    from ..peers import prepare
    dt = ins[0].dtype
    tol = TOL[np.dtype(dt)]
    rng = np.random.default_rng(12345)
    p0 = rng.standard_normal(CHECK_N).astype(dt)
    grads = [rng.standard_normal(CHECK_N).astype(dt) for _ in range(CHECK_STEPS)]
    p, g = p0.copy(), np.empty_like(p0)
    step = prepare(impl, (p, g, np.zeros_like(p0), np.zeros_like(p0)), None)
    for gk in grads:
        np.copyto(g, gk)
        step()
    rp, rm, rv = R.adam_ref(p0, grads, LR, B1, B2, EPS)
    gm, gv = step.state()
    worst = {"ok": True, "err": 0.0, "tol": tol, "got": None, "ref": None, "where": ""}
    for what, a, r, floor in (("m", gm, rm, 1e-30), ("v", gv, rv, 1e-30), ("p", p, rp, 1.0)):
        a = np.asarray(a, np.float64)
        d = np.abs(a - r)
        j = int(np.argmax(d))
        err = float(d[j] / max(floor, np.max(np.abs(r))))
        if err > worst["err"]:
            worst.update(err=err, got=float(a[j]), ref=float(r[j]),
                         where=f"{what}[{j}] after {CHECK_STEPS} steps of {CHECK_N}")
    d_ref = rp - p0
    d_got = p.astype(np.float64) - p0
    allowed = tol * np.max(np.abs(d_ref)) + 3 * np.spacing(np.abs(p0)).astype(np.float64)
    bad = np.flatnonzero(np.abs(d_got - d_ref) > allowed)
    if bad.size:
        j = int(bad[0])
        worst.update(err=max(worst["err"], 2 * tol), got=float(d_got[j]), ref=float(d_ref[j]),
                     where=f"the update p - p0 at {j}")
    worst["ok"] = bool(worst["err"] <= tol)
    return worst


CASES = [
    Case("adam_step", "adam", "step", R.adam_ref,
         Impl("mlkern.adam_step", "mlkern", _mk_mlkern, needs="mlkern.optim:adam_step"),
         PEERS[:2], PEERS[2:], table=OPTIM, group="optim", draw=draw_adam, checker=check_adam,
         out_specs=lambda case, n, dtype: [], nbytes=lambda n, isz: ADAM_BYTES * n * isz),
]

FAMILY = register(Family("optim", CASES, aliases=("optimisers", "optimizers"), in_all=False))
