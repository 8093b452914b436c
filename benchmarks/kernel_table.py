#!/usr/bin/env python
"""Issue 19's closing table: every activation forward, ``*_grad`` and
``*_backward`` of mlkern and the softmax family against PyTorch and the
best NumPy/SciPy expression, at x86-64-v4 and at x86-64-v3 against AVX2
peers, 1 and 2 threads, in one run.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/kernel_table.py --json table.json
    python benchmarks/kernel_table.py --quick --levels v4 --threads 1 --cases sigmoid,softmax

Prints one markdown table per (level, T), then a summary that lists every
case under its goal of issue 19.  The full run (both levels, T=1 and 2,
1e5 and 1e7, f32 and f64) should take about 8 minutes on the idle 2-vCPU
machine (estimated from the CPU time of a run on the loaded machine;
about half of it is the NumPy expressions at 1e7; each child prints its
wall and CPU seconds); ``--quick`` (fewer rounds) about half of that.

Method
------
* **Levels.**  The ISA choice of each library is read at import, so every
  (level, T) runs in a child process of this script with its environment:
  ``v4``: ``MLKERN_CPU=x86-64-v4``, the peers at their defaults (AVX-512);
  ``v3``: ``MLKERN_CPU=x86-64-v3``, ``ATEN_CPU_CAPABILITY=avx2`` and
  ``NPY_DISABLE_CPU_FEATURES="X86_V4 AVX512_ICL AVX512_SPR"`` (NumPy's own
  names for its AVX-512 dispatch targets; "AVX512F" alone changes nothing).
  The child checks that each took (mlkern's ``simd_level``,
  ``torch.backends.cpu.get_cpu_capability()``, NumPy's dispatch targets
  found) and stops if not.  ``OPENBLAS_CORETYPE`` / ``OPENBLAS_L2_SIZE``
  are removed from the children's environment.
* **Timing** (``act_interleaved.interleave``): per case, point and dtype,
  one warm-up sample of every impl, then rounds of one sample of each in
  turn; a sample is ``max(1, 2e6 // n)`` back-to-back calls into
  preallocated outputs.  Times are medians over the rounds; a ratio
  (peer / mlkern, > 1: mlkern faster; mlkern / roof) is the median of the
  per-round ratios.  Rounds: 15 below 1e6 elements, 7 from 1e6 on
  (``--rounds`` sets both; ``--quick`` 5 / 3).
* **Threads.**  ``mlkern.set_num_threads(T)`` and ``torch.set_num_threads(T)``
  (checked).  T=2 runs mlkern and torch interleaved in one process: torch
  and mlkern then share one libgomp (the dynamic loader maps the first
  ``libgomp.so.1`` loaded for both; the child checks that a single one is
  mapped and says so in its header), so the workers that spin after a
  torch call are the very team mlkern's next parallel region uses, and no
  second pool takes a core from it.  ``--wait-policy passive`` sets
  ``OMP_WAIT_POLICY`` for the children if ever two runtimes are mapped.
  Each sample's process CPU time / wall time is kept; a T=2 row where the
  median sample of mlkern or torch kept fewer than 1.7 cores busy is marked
  ``[busy]`` (another process held a vCPU: re-measure on an idle machine).
* **Peers.**  torch: the ATen ``.out`` / ``.grad_input`` overloads on
  ``torch.from_numpy`` tensors.  ``*_grad`` has no ATen op: the backward op
  with ``grad_output = ones`` (``[g=1]``, it reads one more array), or for
  sigmoid/tanh (whose ATen backward takes y) the forward into a buffer
  then the backward (``[2 ops]``); prelu has no out= form (``[a]``:
  allocates).  NumPy/SciPy: every candidate expression of the case (ufunc
  chains with ``out=``, scipy.special ufuncs) is timed and the fastest is
  reported; they are single-threaded and timed at T=1 only.  Every impl's
  output is checked once against the float64 reference (max abs error /
  max(1, max|ref|) <= 2e-4 f32, 1e-8 f64); a failure is marked ``[!]``.
* **Roof** (n >= 1e6): a forward (and a ``*_grad``) moves one read and one
  write: the copy roof of the same array; a backward reads two arrays and
  writes one: the two-input roof.  Meters: ``mlkern._math.copy`` (mlkern's
  own prange copy), ``Tensor.copy_`` and (T=1) ``np.copyto``; for two
  inputs ``torch.add(out=)`` and (T=1) ``np.add(out=)``.  A calibration per
  (dtype, inputs) picks the fastest meter, which then runs in every case's
  rounds; ``time/roof`` = mlkern time / roof time (paired).
* **Row-wise**: softmax and log_softmax (256, 32000), softmax along axis 1
  of (64, 1000, 64), argmax (4096, 1000) against torch and NumPy; and at
  T=2 softmax of one (1, 10^7) row, mlkern at 1 thread against 2 threads
  (``mlkern.threads(1)``) in the same rounds: the speed-up.

Goals (issue 19; the summary marks each case met / NOT met):
1e5, T=1: >= 1.2x torch and >= 1.2x the best NumPy/SciPy; 1e7, T=1 and
T=2: time/roof <= 1.2, or >= 1.2x torch where both are compute-bound
(torch's own time/roof > 1.2); softmax (1, 1e7) T=2 >= 1.6x T=1;
argmax (4096, 1000) >= 1.2x NumPy; softmax axis=1 >= 3x torch;
(256, 32000) f32 softmax and log_softmax >= 1.2x torch.  The goals are
stated for the machine's own level (v4); the v3 rows are judged the same
way for reference (the issue asks that they do not get worse).
"""
import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from act_interleaved import interleave, paired  # noqa: E402  (the shared timing)

LEVELS = {
    "v4": ("x86-64-v4", {}, "AVX512"),
    "v3": ("x86-64-v3", {"ATEN_CPU_CAPABILITY": "avx2",
                         "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR"}, "AVX2"),
}
_NPY_AVX512 = ("X86_V4", "AVX512_ICL", "AVX512_SPR")
_DROP_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "ATEN_CPU_CAPABILITY",
             "NPY_DISABLE_CPU_FEATURES", "MLKERN_CPU", "OMP_WAIT_POLICY")
SAMPLE_EL = 2_000_000          # elements per timed sample (at least one call)
BIG = 1_000_000                # from here: roof, fewer rounds
GOAL = 1.2
A_LEAKY, A_PRELU = 0.01, 0.25


# ------------------------------------------------------------------ the cases
class Entry:
    """One row of the table: a bench :class:`Case` (inputs, impls, check),
    its kind (fwd / grad / bwd / row), the note on its torch peer and the
    number of arrays it reads (for the roof)."""

    def __init__(self, case, kind, tnote="", reads=None, point=None, special=None):
        self.case, self.kind, self.tnote = case, kind, tnote
        self.name = case.name
        self.reads = reads if reads is not None else (2 if kind == "bwd" else 1)
        self.point = point          # row-wise: the RowShape
        self.special = special      # "speedup": mlkern T=1 against T=2


def _catalog():
    """Every entry, in table order (imports mlkern's bench package)."""
    from mlkern.bench import references as R
    from mlkern.bench.cases import RowShape
    from mlkern.bench.families import activations as FA
    from mlkern.bench.families import rowwise as FR
    from mlkern.bench.peers import Impl, aten, import_torch, mlkern_impl, numpy_peer, sps, torch_peer

    reg = {c.name: c for c in FA.CASES}
    mul, add, sub, neg, exp = np.multiply, np.add, np.subtract, np.negative, np.exp
    K, C, IS2PI = FA._K, FA._C, FA._INV_SQRT_2PI
    expit, sig4 = FA._np_expit, FA._np_sigmoid4

    def ecase(name, family, kind, ref, mk, numpy, torch=(), **kw):
        return FA.elementwise_case(name, family, kind, ref, mk, numpy, torch, **kw)

    # ---- NumPy/SciPy expressions of the *_grad and of the activations the bench lacks
    @numpy_peer("s=expit(x); s(1-s)", needs="scipy")
    def np_sigmoid_grad(ins, o):
        x, = ins
        t = np.empty_like(o)

        def f():
            sps.expit(x, out=o)
            sub(1, o, out=t)
            mul(o, t, out=o)
        return f

    @numpy_peer("e=exp(-|x|); e/(1+e)^2")
    def np_sigmoid_grad_exp(ins, o):
        x, = ins
        t = np.empty_like(o)

        def f():
            np.abs(x, out=o)
            neg(o, out=o)
            exp(o, out=o)
            add(o, 1, out=t)
            mul(t, t, out=t)
            np.divide(o, t, out=o)
        return f

    @numpy_peer("1-tanh(x)^2")
    def np_tanh_grad(ins, o):
        x, = ins

        def f():
            np.tanh(x, out=o)
            mul(o, o, out=o)
            sub(1, o, out=o)
        return f

    @numpy_peer("np.heaviside(x,0)")
    def np_relu_grad(ins, o):
        x, = ins
        return lambda: np.heaviside(x, 0, out=o)

    @numpy_peer("np.greater(x,0,out=)")
    def np_relu_grad_gt(ins, o):
        x, = ins
        return lambda: np.greater(x, 0, out=o)

    def np_leaky(a):
        @numpy_peer(f"max(x,{a}x)")
        def mk(ins, o):
            x, = ins

            def f():
                mul(x, a, out=o)
                np.maximum(x, o, out=o)
            return f
        return mk

    def np_leaky_grad3(a):
        @numpy_peer(f"(x>0)*(1-{a})+{a}")
        def mk(ins, o):
            x, = ins

            def f():
                np.greater(x, 0, out=o)
                mul(o, 1 - a, out=o)
                add(o, a, out=o)
            return f
        return mk

    def np_leaky_bwd4(a):
        @numpy_peer(f"g*((x>0)*(1-{a})+{a})")
        def mk(ins, o):
            g, x = ins
            f3 = np_leaky_grad3(a).make((x,), o)

            def f():
                f3()
                mul(o, g, out=o)
            return f
        return mk

    @numpy_peer("grad_x; dot(g, min(x,0))")
    def np_prelu_bwd(ins, o):
        g, x = ins
        gx = np_leaky_bwd4(A_PRELU).make(ins, o)
        t = np.empty_like(o)

        def f():
            gx()
            np.minimum(x, 0, out=t)
            return np.dot(g, t)
        return f

    @numpy_peer("exp(min(x,0))")
    def np_elu_grad(ins, o):
        x, = ins

        def f():
            np.minimum(x, 0, out=o)
            exp(o, out=o)
        return f

    def _silu_grad_from_s(x, o, t):
        sub(1, o, out=t)
        mul(t, x, out=t)
        add(t, 1, out=t)
        mul(o, t, out=o)

    @numpy_peer("s=expit(x); s(1+x(1-s))", needs="scipy")
    def np_silu_grad(ins, o):
        x, = ins
        t = np.empty_like(o)

        def f():
            sps.expit(x, out=o)
            _silu_grad_from_s(x, o, t)
        return f

    @numpy_peer("s=1/(1+exp(-x)); s(1+x(1-s))")
    def np_silu_grad4(ins, o):
        x, = ins
        t = np.empty_like(o)
        s = sig4.make((x,), o)

        def f():
            s()
            _silu_grad_from_s(x, o, t)
        return f

    @numpy_peer("expit(-x)", needs="scipy")
    def np_log_sigmoid_grad(ins, o):
        x, = ins

        def f():
            neg(x, out=o)
            sps.expit(o, out=o)
        return f

    @numpy_peer("1/(1+exp(x)) 3-pass")
    def np_log_sigmoid_grad3(ins, o):
        x, = ins

        def f():
            exp(x, out=o)
            add(o, 1, out=o)
            np.reciprocal(o, out=o)
        return f

    @numpy_peer("ndtr(x)+x*npdf(x)", needs="scipy")
    def np_gelu_grad(ins, o):
        x, = ins
        t = np.empty_like(o)

        def f():
            sps.ndtr(x, out=o)
            mul(x, x, out=t)
            mul(t, -0.5, out=t)
            exp(t, out=t)
            mul(t, IS2PI, out=t)
            mul(t, x, out=t)
            add(o, t, out=o)
        return f

    @numpy_peer("d/dx[gelu tanh form]")
    def np_gelu_tanh_grad(ins, o):
        x, = ins
        t = np.empty_like(o)
        u = np.empty_like(o)

        def f():
            mul(x, x, out=u)
            mul(u, C, out=t)
            add(t, 1, out=t)
            mul(t, x, out=t)
            mul(t, K, out=t)
            np.tanh(t, out=t)                # t = tanh(k (x + c x^3))
            mul(u, 3 * C * K, out=u)
            add(u, K, out=u)                 # u = k (1 + 3 c x^2)
            mul(t, t, out=o)
            sub(1, o, out=o)
            mul(o, u, out=o)
            mul(o, x, out=o)
            add(o, t, out=o)
            add(o, 1, out=o)
            mul(o, 0.5, out=o)
        return f

    @numpy_peer("rng.standard_normal*sqrt(expit(x))+x, max 0", needs="scipy")
    def np_noisy_relu(ins, o):
        x, = ins
        rng = np.random.default_rng(0)
        s = np.empty_like(o)

        def f():
            rng.standard_normal(dtype=o.dtype, out=o)
            sps.expit(x, out=s)
            np.sqrt(s, out=s)
            mul(o, s, out=o)
            add(o, x, out=o)
            np.maximum(o, 0, out=o)
        return f

    # ---- torch peers of the *_grad (no ATen op: the backward with g = 1) and the rest
    def t_grad(label, build):
        @torch_peer(label)
        def mk(ins, o):
            x, = ins
            tm = import_torch()
            return build(aten(), tm, tm.ones_like(x), x, o)
        return mk

    def _two(fwd, bwd, one, x, o):
        t = import_torch().empty_like(x)

        def f():
            fwd(x, out=t)
            return bwd(one, t, grad_input=o)
        return f

    t_sigmoid_grad = t_grad("torch.sigmoid + aten.sigmoid_backward(g=1)",
                            lambda A, tm, one, x, o: _two(tm.sigmoid, A.sigmoid_backward.grad_input,
                                                          one, x, o))
    t_tanh_grad = t_grad("torch.tanh + aten.tanh_backward(g=1)",
                         lambda A, tm, one, x, o: _two(tm.tanh, A.tanh_backward.grad_input, one, x, o))

    def _bind(op, *args, **kw):
        return lambda: op(*args, **kw)

    t_relu_grad = t_grad("aten.threshold_backward(g=1)", lambda A, tm, one, x, o: _bind(
        A.threshold_backward.grad_input, one, x, 0, grad_input=o))
    t_leaky_grad = t_grad("aten.leaky_relu_backward(g=1)", lambda A, tm, one, x, o: _bind(
        A.leaky_relu_backward.grad_input, one, x, A_LEAKY, False, grad_input=o))
    t_elu_grad = t_grad("aten.elu_backward(g=1, from x)", lambda A, tm, one, x, o: _bind(
        A.elu_backward.grad_input, one, 1.0, 1, 1, False, x, grad_input=o))
    t_softplus_grad = t_grad("aten.softplus_backward(g=1)", lambda A, tm, one, x, o: _bind(
        A.softplus_backward.grad_input, one, x, 1, 20, grad_input=o))
    t_silu_grad = t_grad("aten.silu_backward(g=1)", lambda A, tm, one, x, o: _bind(
        A.silu_backward.grad_input, one, x, grad_input=o))
    t_log_sigmoid_grad = t_grad("aten.log_sigmoid_backward(g=1)", lambda A, tm, one, x, o: _bind(
        A.log_sigmoid_backward.grad_input, one, x, A.log_sigmoid_forward(x)[1], grad_input=o))
    t_gelu_grad = t_grad("aten.gelu_backward(g=1)", lambda A, tm, one, x, o: _bind(
        A.gelu_backward.grad_input, one, x, approximate="none", grad_input=o))
    t_gelu_tanh_grad = t_grad("aten.gelu_backward(g=1, tanh)", lambda A, tm, one, x, o: _bind(
        A.gelu_backward.grad_input, one, x, approximate="tanh", grad_input=o))

    @torch_peer("aten.leaky_relu.out")
    def t_leaky(ins, o):
        x, = ins
        return _bind(aten().leaky_relu.out, x, A_LEAKY, out=o)

    @torch_peer("aten.leaky_relu_backward")
    def t_leaky_bwd(ins, o):
        g, x = ins
        return _bind(aten().leaky_relu_backward.grad_input, g, x, A_LEAKY, False, grad_input=o)

    def _w(x):
        return import_torch().tensor([A_PRELU], dtype=x.dtype)

    @torch_peer("aten._prelu_kernel", allocates=True)
    def t_prelu(ins, o):
        x, = ins
        return _bind(aten()._prelu_kernel, x, _w(x))

    @torch_peer("aten._prelu_kernel_backward(g=1)[0]", allocates=True)
    def t_prelu_grad(ins, o):
        x, = ins
        op, one, w = aten()._prelu_kernel_backward, import_torch().ones_like(x), _w(x)
        return lambda: op(one, x, w)[0]

    @torch_peer("aten._prelu_kernel_backward + sum", allocates=True)
    def t_prelu_bwd(ins, o):
        g, x = ins
        op, w = aten()._prelu_kernel_backward, _w(x)

        def f():
            gx, gw = op(g, x, w)
            return gx, gw.sum()
        return f

    # ---- mlkern impls with a positional or keyword parameter
    import mlkern as M

    def mk_alpha(fname, alpha):
        f = getattr(M, fname)

        def make(ins, out):
            return lambda: f(*ins, alpha, out=out)
        return Impl(f"mlkern.{fname}", "mlkern", make)

    mk = mlkern_impl
    leaky_ref = lambda a: (lambda x: np.where(x > 0, x, a * x))          # noqa: E731
    leaky_gref = lambda a: (lambda x: np.where(x > 0, 1.0, a))          # noqa: E731

    def noisy_make(ins, out):
        x, = ins
        return lambda: M.noisy_relu(x, seed=0, out=out)

    E = []
    fam = ["sigmoid", "tanh", "relu", "leaky_relu", "prelu", "elu", "softplus", "silu",
           "log_sigmoid", "gelu", "gelu_tanh", "noisy_relu"]
    fwd_new = {
        "leaky_relu": ecase("leaky_relu", "leaky_relu", "fwd", leaky_ref(A_LEAKY), mk("leaky_relu"),
                            [np_leaky(A_LEAKY)], [t_leaky], memory_bound=True),
        "prelu": ecase("prelu", "prelu", "fwd", leaky_ref(A_PRELU), mk_alpha("prelu", A_PRELU),
                       [np_leaky(A_PRELU)], [t_prelu], memory_bound=True),
        "noisy_relu": ecase("noisy_relu", "noisy_relu", "fwd", None,
                            Impl("mlkern.noisy_relu(seed=0)", "mlkern", noisy_make),
                            [np_noisy_relu], []),
    }
    grads = {
        "sigmoid": (lambda x: R.sigmoid_grad_from_y(R.sigmoid(x)), mk("sigmoid_grad"),
                    [np_sigmoid_grad, np_sigmoid_grad_exp], [t_sigmoid_grad], "[2 ops]"),
        "tanh": (lambda x: R.tanh_grad_from_y(R.tanh(x)), mk("tanh_grad"), [np_tanh_grad],
                 [t_tanh_grad], "[2 ops]"),
        "relu": (R.relu_grad, mk("relu_grad"), [np_relu_grad, np_relu_grad_gt], [t_relu_grad], "[g=1]"),
        "leaky_relu": (leaky_gref(A_LEAKY), mk("leaky_relu_grad"), [np_leaky_grad3(A_LEAKY)],
                       [t_leaky_grad], "[g=1]"),
        "prelu": (leaky_gref(A_PRELU), mk_alpha("prelu_grad", A_PRELU), [np_leaky_grad3(A_PRELU)],
                  [t_prelu_grad], "[g=1]"),
        "elu": (lambda x: R.elu_grad_from_y(R.elu(x)), mk("elu_grad"), [np_elu_grad], [t_elu_grad],
                "[g=1]"),
        "softplus": (R.softplus_grad, mk("softplus_grad"), [expit, sig4], [t_softplus_grad], "[g=1]"),
        "silu": (R.silu_grad, mk("silu_grad"), [np_silu_grad, np_silu_grad4], [t_silu_grad], "[g=1]"),
        "log_sigmoid": (R.log_sigmoid_grad, mk("log_sigmoid_grad"),
                        [np_log_sigmoid_grad, np_log_sigmoid_grad3], [t_log_sigmoid_grad], "[g=1]"),
        "gelu": (R.gelu_grad, mk("gelu_grad"), [np_gelu_grad], [t_gelu_grad], "[g=1]"),
        "gelu_tanh": (R.gelu_tanh_grad, mk("gelu_grad", approximate="tanh", label="mlkern.gelu_grad"),
                      [np_gelu_tanh_grad], [t_gelu_tanh_grad], "[g=1]"),
    }
    bwd_new = {
        "leaky_relu": ecase("leaky_relu_backward", "leaky_relu", "bwd",
                            lambda g, x: g * leaky_gref(A_LEAKY)(x), mk("leaky_relu_backward"),
                            [np_leaky_bwd4(A_LEAKY)], [t_leaky_bwd], memory_bound=True),
        "prelu": ecase("prelu_backward", "prelu", "bwd", lambda g, x: g * leaky_gref(A_PRELU)(x),
                       mk_alpha("prelu_backward", A_PRELU), [np_prelu_bwd], [t_prelu_bwd],
                       memory_bound=True),
        "noisy_relu": ecase("noisy_relu_backward", "noisy_relu", "bwd",
                            lambda g, y: g * R.relu_grad(y), mk("noisy_relu_backward"),
                            [FA._np_relu_bwd], [FA._t_relu_bwd], saved="y", y_of=R.relu,
                            memory_bound=True),
    }
    for f in fam:
        E.append(Entry(reg[f] if f in reg else fwd_new[f], "fwd",
                       "[a]" if f == "prelu" else ""))
        if f in grads:
            ref, impl, nps, ts, note = grads[f]
            E.append(Entry(ecase(f + "_grad", f, "fwd", ref, impl, nps, ts), "grad", note))
        b = f + "_backward"
        E.append(Entry(reg[b] if b in reg else bwd_new[f], "bwd", "[a]" if f == "prelu" else ""))

    rows = {c.name: c for c in FR.CASES}
    E += [Entry(rows["softmax"], "row", point=RowShape((256, 32000))),
          Entry(rows["log_softmax"], "row", point=RowShape((256, 32000))),
          Entry(rows["softmax"], "row", point=RowShape((64, 1000, 64), 1)),
          Entry(rows["argmax"], "row", point=RowShape((4096, 1000))),
          Entry(rows["softmax"], "row", point=RowShape((1, 10 ** 7)), special="speedup")]
    for e in E:
        if e.point is not None:
            e.name = {"64x1000x64:1": "softmax_axis1", "1x10000000": "softmax_row"}.get(
                e.point.spec, e.name)
    return E


CASE_GROUPS = ("all", "elementwise", "forward", "grad", "backward", "rowwise")


def select(entries, spec):
    """Entries named by ``spec``: a comma list of names (sigmoid_grad,
    softmax_axis1), families (sigmoid: its forward, grad and backward) or
    groups (all, elementwise, forward, grad, backward, rowwise)."""
    out = []
    for tok in (t.strip() for t in spec.split(",")):
        if not tok:
            continue
        if tok == "all":
            hit = entries
        elif tok == "elementwise":
            hit = [e for e in entries if e.kind != "row"]
        elif tok in ("forward", "grad", "backward"):
            hit = [e for e in entries if e.kind == {"forward": "fwd", "backward": "bwd"}.get(tok, tok)]
        elif tok == "rowwise":
            hit = [e for e in entries if e.kind == "row"]
        else:
            hit = [e for e in entries if e.name == tok or (e.kind != "row" and e.case.family == tok)]
            if not hit:
                raise SystemExit(f"--cases: unknown {tok!r}; names: "
                                 f"{', '.join(dict.fromkeys(e.name for e in entries))}; "
                                 f"groups: {', '.join(CASE_GROUPS)}")
        out += [e for e in hit if e not in out]
    return out


# ------------------------------------------------------------------ child: measure one (level, T)
def _gomp_libs():
    libs = set()
    with open("/proc/self/maps") as fh:
        for line in fh:
            p = line.split()[-1]
            if "libgomp" in os.path.basename(p):
                libs.add(p)
    return sorted(libs)


def _check_levels(level):
    """Import everything, check the ISA levels took; the header dict."""
    import mlkern
    import torch
    import io
    from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__
    want, _, tcap = LEVELS[level]
    cfg = mlkern.show_config(file=io.StringIO())
    found = [d for d in __cpu_dispatch__ if __cpu_features__.get(d)]
    bad = []
    if cfg["simd_level"] != want:
        bad.append(f"mlkern runs {cfg['simd_level']}, not {want}")
    cap = torch.backends.cpu.get_cpu_capability()
    if cap != tcap:
        bad.append(f"torch runs {cap}, not {tcap}")
    if level == "v3" and any(d in found for d in _NPY_AVX512):
        bad.append(f"NumPy still dispatches to {found}")
    if level == "v4" and "X86_V4" not in found:
        bad.append(f"NumPy does not dispatch to X86_V4 ({found})")
    if bad:
        raise SystemExit(f"level {level}: " + "; ".join(bad))
    return {"mlkern": cfg["simd_level"], "torch": cap, "numpy_found": found,
            "libgomp": _gomp_libs(), "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "")}


def _rounds(a, n):
    if a.rounds:
        return a.rounds
    if a.quick:
        return 5 if n < BIG else 3
    return 15 if n < BIG else 7


def _roof_meters(reads, T):
    from mlkern import _math
    from mlkern.bench.peers import import_torch
    tm = import_torch()
    if reads == 1:
        ms = [("mlkern._math.copy", "np", lambda a, o: (lambda: _math.copy(a[0], out=o))),
              ("Tensor.copy_", "torch", lambda a, o: (lambda: o.copy_(a[0])))]
        if T == 1:
            ms.append(("np.copyto", "np", lambda a, o: (lambda: np.copyto(o, a[0]))))
    else:
        ms = [("torch.add(out=)", "torch", lambda a, o: (lambda: tm.add(a[0], a[1], out=o)))]
        if T == 1:
            ms.append(("np.add(out=)", "np", lambda a, o: (lambda: np.add(a[0], a[1], out=o))))
    return ms


def _make_meter(meter, ins, out):
    from mlkern.bench.peers import to_torch
    name, rt, mk = meter
    if rt == "torch":
        return mk(to_torch(ins), to_torch((out,))[0])
    return mk(ins, out)


class Child:
    def __init__(self, a, level, T):
        self.a, self.level, self.T = a, level, T
        from mlkern.bench.cases import Inputs
        self.cache = Inputs()
        self.outs = {}
        self.roofs = {}           # (n, dtype, reads) -> chosen meter
        self.records = []

    def out(self, shape, dt, slot):
        key = (tuple(shape), np.dtype(dt).str, slot)
        o = self.outs.get(key)
        if o is None:
            o = self.outs[key] = np.full(shape, np.nan if np.dtype(dt).kind == "f" else -1, dt)
        return o

    def roof(self, n, dt, reads):
        key = (n, np.dtype(dt).str, reads)
        if key not in self.roofs:
            rng = np.random.default_rng(7)
            ins = [rng.standard_normal(n).astype(dt) for _ in range(reads)]
            meters = _roof_meters(reads, self.T)
            runs = [_make_meter(m, ins, self.out((n,), dt, f"roofcal{k}")) for k, m in enumerate(meters)]
            ts, _ = interleave(runs, _rounds(self.a, n), 1)
            med = [statistics.median(t) for t in ts]
            k = int(np.argmin(med))
            self.roofs[key] = meters[k]
            rec = {"kind": "roofcal", "n": n, "dtype": np.dtype(dt).name, "reads": reads,
                   "meters": {m[0]: med[j] * 1e9 / n for j, m in enumerate(meters)},
                   "chosen": meters[k][0]}
            self.records.append(rec)
            print(f"  roof {np.dtype(dt).name} n={n:.0e} reads={reads}: "
                  + ", ".join(f"{m} {v:.3f} ns/el" for m, v in rec["meters"].items())
                  + f" -> {rec['chosen']}", file=sys.stderr, flush=True)
        return self.roofs[key]

    def measure(self, e, point, dt):
        from mlkern.bench.peers import as_numpy, prepare
        import mlkern
        case, T = e.case, self.T
        dt = np.dtype(dt)
        n = point if isinstance(point, int) else point.n
        ins = case.inputs(self.cache, point, dt)
        args = () if isinstance(point, int) else point.args()
        spec = case.out_specs(point, dt)[0]
        impls = [("mlkern", case.mlkern)]
        if e.special == "speedup":
            impls.append(("mlkern_T1", case.mlkern))
        tp = [i for i in case.torch if i.available()]
        if tp:
            impls.append(("torch", tp[0]))
        if T == 1 and e.special is None:
            impls += [("numpy", i) for i in case.numpy if i.available()]
        runs, checks = [], {}
        for k, (role, impl) in enumerate(impls):
            o = self.out(spec[0], spec[1], k)
            f = prepare(impl, ins, o, *args)
            if role == "mlkern_T1":
                g = f

                def f(g=g):
                    with mlkern.threads(1):
                        return g()
            res = f()
            if case.ref is not None:
                got = as_numpy(res) if impl.allocates else o
                if isinstance(got, tuple):
                    got = got[0]
                c = case.check(self.cache, point, ins, got, impl)
                checks[impl.name] = {"ok": c["ok"], "err": c["err"]}
            runs.append(f)
        roof_name = None
        if n >= BIG and e.kind != "row":
            m = self.roof(n, dt, e.reads)
            roof_name = m[0]
            runs.append(_make_meter(m, list(ins[:e.reads]), self.out((n,), dt, "roof")))
            impls.append(("roof", None))
        reps = max(1, int(SAMPLE_EL // n))
        ts, cpu = interleave(runs, _rounds(self.a, n), reps)
        ns = [statistics.median(t) * 1e9 / n for t in ts]
        by = {role: j for j, (role, _) in enumerate(impls) if role != "numpy"}
        rec = {"case": e.name, "kind": e.kind, "n": n, "dtype": dt.name, "T": T, "level": self.level,
               "point": point if isinstance(point, int) else point.spec, "rounds": len(ts[0]),
               "reps": reps, "mlkern": ns[0], "mlkern_impl": case.mlkern.name,
               "mlkern_cpu": statistics.median(cpu[0]), "checks": checks, "tnote": e.tnote,
               "samples_ns": {(impl.name if impl else role): [t * 1e9 / n for t in ts[j]]
                              for j, (role, impl) in enumerate(impls)}}
        if "torch" in by:
            j = by["torch"]
            rec.update(torch=ns[j], torch_impl=impls[j][1].name, torch_ratio=paired(ts[0], ts[j]),
                       torch_cpu=statistics.median(cpu[j]))
        nps = [j for j, (role, _) in enumerate(impls) if role == "numpy"]
        if nps:
            j = min(nps, key=lambda q: ns[q])
            rec.update(numpy=ns[j], numpy_impl=impls[j][1].label, numpy_ratio=paired(ts[0], ts[j]),
                       numpy_all={impls[q][1].label: ns[q] for q in nps})
        if "mlkern_T1" in by:
            j = by["mlkern_T1"]
            rec.update(mlkern_t1=ns[j], speedup=paired(ts[0], ts[j]))
        if "roof" in by:
            j = by["roof"]
            rec.update(roof=ns[j], roof_impl=roof_name, time_roof=paired(ts[j], ts[0]))
            if "torch" in by:
                rec["torch_roof"] = paired(ts[j], ts[by["torch"]])
        self.records.append(rec)
        return rec


def _fmt(v, spec=".3f", suffix=""):
    return "" if v is None else f"{v:{spec}}{suffix}"


def _flags(r):
    fl = []
    if any(not c["ok"] for c in r.get("checks", {}).values()):
        fl.append("[!] " + ",".join(k for k, c in r["checks"].items() if not c["ok"]))
    if r["T"] > 1 and min(r.get("mlkern_cpu", 2), r.get("torch_cpu", 2)) < 0.85 * r["T"]:
        fl.append("[busy]")
    return " ".join(fl)


def print_table(recs, level, T, out=sys.stdout):
    """The markdown tables of one (level, T): elementwise, then row-wise."""
    el = [r for r in recs if r["kind"] in ("fwd", "grad", "bwd")]
    rows = [r for r in recs if r["kind"] == "row"]
    p = lambda s="": print(s, file=out)          # noqa: E731
    if el:
        p(f"\n#### {level}, T={T}: elementwise (ns per element; ratios peer/mlkern, "
          "> 1: mlkern faster; time/roof: mlkern/roof)\n")
        p("| case | n | dtype | mlkern | torch | torch/mlkern | best NumPy | NumPy/mlkern "
          "| roof | time/roof | torch/roof | notes |")
        p("|---|---|---|---|---|---|---|---|---|---|---|---|")
        for r in el:
            p(f"| {r['case']} | {r['n']:.0e} | {'f' + r['dtype'][5:]} "
              f"| {r['mlkern']:.3f} | {_fmt(r.get('torch'))} "
              f"| {_fmt(r.get('torch_ratio'), '.2f', '×')} | {_fmt(r.get('numpy'))} "
              f"| {_fmt(r.get('numpy_ratio'), '.2f', '×')} | {_fmt(r.get('roof'))} "
              f"| {_fmt(r.get('time_roof'), '.2f')} | {_fmt(r.get('torch_roof'), '.2f')} "
              f"| {' '.join(x for x in (r.get('tnote', ''), _flags(r)) if x)} |")
    if rows:
        p(f"\n#### {level}, T={T}: row-wise (ns per element of the input)\n")
        p("| case | shape | dtype | mlkern | torch | torch/mlkern | best NumPy | NumPy/mlkern "
          "| mlkern T=1 | speed-up T=2 over T=1 | notes |")
        p("|---|---|---|---|---|---|---|---|---|---|---|")
        for r in rows:
            p(f"| {r['case']} | {r['point']} | {'f' + r['dtype'][5:]} | {r['mlkern']:.3f} "
              f"| {_fmt(r.get('torch'))} | {_fmt(r.get('torch_ratio'), '.2f', '×')} "
              f"| {_fmt(r.get('numpy'))} | {_fmt(r.get('numpy_ratio'), '.2f', '×')} "
              f"| {_fmt(r.get('mlkern_t1'))} | {_fmt(r.get('speedup'), '.2f', '×')} | {_flags(r)} |")
    for r in (r for r in recs if r["kind"] == "roofcal"):
        p(f"\nRoof meters, {r['dtype']} n={r['n']:.0e}, {r['reads']} input(s) + 1 output, ns/el: "
          + ", ".join(f"{m} {v:.3f}" for m, v in r["meters"].items()) + f"; used: {r['chosen']}")
    peers = {}
    for r in el + rows:
        t, cands = peers.setdefault(r["case"], (r.get("torch_impl"), {}))
        for k in r.get("numpy_all", ()):
            cands[k] = cands.get(k, 0) + (k == r.get("numpy_impl"))
    p("\nPeers (NumPy/SciPy: the candidates, with the number of rows where each was the fastest; "
      "[a]: allocates its result)\n")
    p("| case | torch | NumPy/SciPy |")
    p("|---|---|---|")
    for c, (t, cands) in peers.items():
        np_col = "; ".join(f"{k} ({v})" for k, v in cands.items()).replace("|", "\\|")
        p(f"| {c} | {t or '—'} | {np_col or '— (T=1 only)'} |")


def child_main(a):
    level, T = a._child_level, a._child_threads
    t0 = time.time()
    hdr = _check_levels(level)
    import mlkern
    from mlkern.bench.peers import blas_threads, set_torch_threads
    mlkern.set_num_threads(T)
    set_torch_threads(T)
    if mlkern.get_num_threads() != T:
        raise SystemExit(f"mlkern.get_num_threads() is {mlkern.get_num_threads()}, not {T}")
    hdr.update(level=level, T=T, loadavg_start=os.getloadavg())
    gomp = hdr["libgomp"]
    print(f"\n### level {level} (mlkern {hdr['mlkern']}, torch {hdr['torch']}, NumPy dispatch "
          f"{'/'.join(hdr['numpy_found'])}), T={T}; load average {hdr['loadavg_start']}; "
          f"{len(gomp)} libgomp mapped ({', '.join(gomp)})"
          + (f"; OMP_WAIT_POLICY={hdr['omp_wait_policy']}" if hdr["omp_wait_policy"] else ""),
          flush=True)
    if T > 1 and len(gomp) > 1:
        print("  WARNING: two OpenMP runtimes are mapped; their pools can compete at T=2 "
              "(consider --wait-policy passive)", flush=True)
    entries = select(_catalog(), a.cases)
    sizes = [int(float(s)) for s in a.sizes.split(",")]
    dtypes = [{"f32": np.float32, "f64": np.float64}[d] for d in a.dtypes.split(",")]
    ch = Child(a, level, T)
    lim = blas_threads(1) if T == 1 else contextlib.nullcontext()   # np.dot in the prelu peer
    with lim:
        for n in sizes:
            for e in (e for e in entries if e.kind != "row"):
                for dt in dtypes:
                    r = ch.measure(e, n, dt)
                    print(f"  {e.name} {n:.0e} {np.dtype(dt).name}: mlkern {r['mlkern']:.3f} ns/el"
                          + (f", torch {r['torch_ratio']:.2f}×" if "torch_ratio" in r else "")
                          + (f", NumPy {r['numpy_ratio']:.2f}×" if "numpy_ratio" in r else "")
                          + (f", time/roof {r['time_roof']:.2f}" if "time_roof" in r else ""),
                          file=sys.stderr, flush=True)
            ch.cache.drop()
        for e in (e for e in entries if e.kind == "row"):
            if e.special == "speedup" and T < 2:
                continue
            for dt in dtypes:
                r = ch.measure(e, e.point, dt)
                print(f"  {e.name} {e.point.spec} {np.dtype(dt).name}: mlkern {r['mlkern']:.3f} ns/el",
                      file=sys.stderr, flush=True)
            ch.cache.drop()
    hdr.update(loadavg_end=os.getloadavg(), seconds=time.time() - t0, cpu_seconds=time.process_time())
    print_table(ch.records, level, T)
    print(f"\n(level {level}, T={T}: {hdr['seconds']:.0f} s wall, {hdr['cpu_seconds']:.0f} s CPU; "
          f"load average at the end {hdr['loadavg_end']})", flush=True)
    with open(a._child_json, "w") as fh:
        json.dump({"header": hdr, "records": ch.records}, fh)


# ------------------------------------------------------------------ parent: children and summary
def _met(ok):
    return "met" if ok else "**NOT met**"


def summary(results, out=sys.stdout):
    """Every case under its goal, per level."""
    p = lambda s="": print(s, file=out)          # noqa: E731
    recs = [r for res in results for r in res["records"] if r["kind"] != "roofcal"]
    levels = list(dict.fromkeys(r["level"] for r in recs))
    p("\n## Summary: every case under its goal (issue 19; ratios peer/mlkern)")
    for lv in levels:
        L = [r for r in recs if r["level"] == lv]
        small = [r for r in L if r["kind"] != "row" and r["n"] < BIG and r["T"] == 1]
        if small:
            n_ok = 0
            p(f"\n### {lv}: 1e5, T=1 — ≥ {GOAL}× torch and ≥ {GOAL}× the best NumPy/SciPy\n")
            p("| case | dtype | torch/mlkern | NumPy/mlkern | goal |")
            p("|---|---|---|---|---|")
            for r in small:
                tr, nr = r.get("torch_ratio"), r.get("numpy_ratio")
                ok = (tr is None or tr >= GOAL) and (nr is None or nr >= GOAL)
                n_ok += ok
                p(f"| {r['case']} | {r['dtype']} | {_fmt(tr, '.2f', '×') or '—'} "
                  f"| {_fmt(nr, '.2f', '×') or '—'} | {_met(ok)} |")
            p(f"\n{n_ok} of {len(small)} met.")
        big = [r for r in L if r["kind"] != "row" and r["n"] >= BIG]
        if big:
            n_ok = 0
            p(f"\n### {lv}: 1e7, T=1 and T=2 — time/roof ≤ {GOAL}, or ≥ {GOAL}× torch where both "
              "are compute-bound\n")
            p("| case | dtype | T | time/roof | torch/mlkern | torch/roof | goal |")
            p("|---|---|---|---|---|---|---|")
            for r in sorted(big, key=lambda r: (r["T"],)):
                tr, rr, trr = r.get("torch_ratio"), r.get("time_roof"), r.get("torch_roof")
                ok = (rr is not None and rr <= GOAL) or (
                    tr is not None and tr >= GOAL and (trr is None or trr > GOAL))
                how = "at roof" if rr is not None and rr <= GOAL else ("vs torch" if ok else "")
                n_ok += ok
                p(f"| {r['case']} | {r['dtype']} | {r['T']} | {_fmt(rr, '.2f')} "
                  f"| {_fmt(tr, '.2f', '×') or '—'} | {_fmt(trr, '.2f')} "
                  f"| {_met(ok)}{' (' + how + ')' if how else ''} {_flags(r)} |")
            p(f"\n{n_ok} of {len(big)} met.")
        rows = [r for r in L if r["kind"] == "row"]
        if rows:
            p(f"\n### {lv}: row-wise\n")
            p("| goal | case | dtype | T | figure | goal |")
            p("|---|---|---|---|---|---|")
            for r in rows:
                c = r["case"]
                if c == "softmax_row":
                    g, v, thr = "T=2 ≥ 1.6× T=1", r.get("speedup"), 1.6
                elif c == "softmax_axis1":
                    g, v, thr = "≥ 3× torch", r.get("torch_ratio"), 3.0
                elif c == "argmax":
                    g, v, thr = "≥ 1.2× NumPy", r.get("numpy_ratio"), GOAL
                    if v is None:
                        continue             # NumPy is timed at T=1 only
                else:
                    g = "≥ 1.2× torch" + ("" if r["dtype"] == "float32" else " (the goal is f32's)")
                    v, thr = r.get("torch_ratio"), GOAL
                ok = v is not None and v >= thr
                p(f"| {g} | {c} {r['point']} | {r['dtype']} | {r['T']} | {_fmt(v, '.2f', '×')} "
                  f"| {_met(ok)} {_flags(r)} |")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--levels", default="v4,v3", help="comma list of v4, v3 (default both)")
    ap.add_argument("--threads", default="1,2", help="comma list of thread counts (default 1,2)")
    ap.add_argument("--sizes", default="1e5,1e7", help="element counts (default 1e5,1e7)")
    ap.add_argument("--dtypes", default="f32,f64")
    ap.add_argument("--cases", default="all",
                    help="comma list: names (sigmoid_grad, softmax_axis1), families (sigmoid = "
                         "forward, grad, backward) or groups " + ", ".join(CASE_GROUPS))
    ap.add_argument("--rounds", type=int, default=0,
                    help="rounds per case (default 15 below 1e6 elements, 7 from 1e6 on)")
    ap.add_argument("--quick", action="store_true", help="5 / 3 rounds")
    ap.add_argument("--wait-policy", default=None, help="OMP_WAIT_POLICY for the children")
    ap.add_argument("--json", default=None, help="write every record (with the per-round samples)")
    ap.add_argument("--_child-level", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--_child-threads", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--_child-json", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a._child_level:
        return child_main(a)
    levels = [s.strip() for s in a.levels.split(",") if s.strip()]
    for lv in levels:
        if lv not in LEVELS:
            raise SystemExit(f"--levels: unknown {lv!r}; choose from {', '.join(LEVELS)}")
    threads = [int(t) for t in a.threads.split(",")]
    t0 = time.time()
    print(f"# kernel table: levels {levels}, T {threads}, sizes {a.sizes}, dtypes {a.dtypes}, "
          f"cases {a.cases}; load average at the start {os.getloadavg()}; {os.cpu_count()} CPUs",
          flush=True)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for lv in levels:
            for T in threads:
                env = {k: v for k, v in os.environ.items() if k not in _DROP_ENV}
                env["MLKERN_CPU"] = LEVELS[lv][0]
                env.update(LEVELS[lv][1])
                if a.wait_policy:
                    env["OMP_WAIT_POLICY"] = a.wait_policy
                js = os.path.join(tmp, f"{lv}-{T}.json")
                cmd = [sys.executable, os.path.abspath(__file__), "--_child-level", lv,
                       "--_child-threads", str(T), "--_child-json", js, "--sizes", a.sizes,
                       "--dtypes", a.dtypes, "--cases", a.cases, "--rounds", str(a.rounds)]
                if a.quick:
                    cmd.append("--quick")
                subprocess.run(cmd, env=env, check=True)
                with open(js) as fh:
                    results.append(json.load(fh))
    summary(results)
    took = time.time() - t0
    print(f"\nTotal {took:.0f} s ({took / 60:.1f} min); load average at the end {os.getloadavg()}.")
    if a.json:
        with open(a.json, "w") as fh:
            json.dump({"argv": sys.argv, "seconds": took, "results": results}, fh)


if __name__ == "__main__":
    main()
