"""Interleaved paired timing of mlkern's activations against PyTorch (and a
NumPy expression where one is named): for each case, rounds of
(mlkern, torch[, numpy]) one after the other, the median time of each, the
median of the per-round ratios peer/mlkern (> 1: mlkern faster) and the
ratio of the minima (the least disturbed samples, on a loaded machine).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/act_interleaved.py \
        --threads 1 --rounds 15 --cases silu,gelu --sizes 1e5,1e7 --dtypes f32,f64

Every call writes into a preallocated output (out= / torch's .out
overloads), so allocation and page faults are not measured.  T=2 with torch:
set OMP_WAIT_POLICY=passive (torch's pool spins otherwise).

The timing (:func:`timeit`, :func:`interleave`, :func:`paired`) is shared
with ``benchmarks/kernel_table.py``.
"""
import argparse
import os
import statistics
import time

import numpy as np


def cases(torch):
    import mlkern as M
    A = torch.ops.aten
    # name: (nargs, mlkern(args, out), torch(targs, tout), numpy(args) or None)
    return {
        "sigmoid": (1, lambda a, o: M.sigmoid(a[0], out=o),
                    lambda a, o: torch.sigmoid(a[0], out=o),
                    lambda a, o: np.divide(1, 1 + np.exp(-a[0]), out=o)),
        "sigmoid_backward": (2, lambda a, o: M.sigmoid_backward(a[0], a[1], out=o),
                             lambda a, o: A.sigmoid_backward.grad_input(a[0], a[1], grad_input=o), None),
        "tanh": (1, lambda a, o: M.tanh(a[0], out=o), lambda a, o: torch.tanh(a[0], out=o),
                 lambda a, o: np.tanh(a[0], out=o)),
        "silu": (1, lambda a, o: M.silu(a[0], out=o), lambda a, o: A.silu.out(a[0], out=o),
                 lambda a, o: np.divide(a[0], 1 + np.exp(-a[0]), out=o)),
        "silu_backward": (2, lambda a, o: M.silu_backward(a[0], a[1], out=o),
                          lambda a, o: A.silu_backward.grad_input(a[0], a[1], grad_input=o), None),
        "gelu": (1, lambda a, o: M.gelu(a[0], out=o), lambda a, o: A.gelu.out(a[0], out=o),
                 lambda a, o: np.multiply(a[0], _ndtr(a[0], o), out=o)),
        "gelu_tanh": (1, lambda a, o: M.gelu(a[0], approximate="tanh", out=o),
                      lambda a, o: A.gelu.out(a[0], approximate="tanh", out=o), None),
        "gelu_backward": (2, lambda a, o: M.gelu_backward(a[0], a[1], out=o),
                          lambda a, o: A.gelu_backward.grad_input(a[0], a[1], grad_input=o), None),
        "gelu_tanh_backward": (2, lambda a, o: M.gelu_backward(a[0], a[1], approximate="tanh", out=o),
                               lambda a, o: A.gelu_backward.grad_input(a[0], a[1], approximate="tanh",
                                                                       grad_input=o), None),
        "softplus": (1, lambda a, o: M.softplus(a[0], out=o),
                     lambda a, o: A.softplus.out(a[0], 1.0, 20.0, out=o),
                     lambda a, o: np.logaddexp(0, a[0], out=o)),
        "softplus_backward": (2, lambda a, o: M.softplus_backward(a[0], a[1], out=o),
                              lambda a, o: A.softplus_backward.grad_input(a[0], a[1], 1.0, 20.0,
                                                                          grad_input=o), None),
        "elu": (1, lambda a, o: M.elu(a[0], out=o), lambda a, o: A.elu.out(a[0], out=o),
                lambda a, o: np.where(a[0] > 0, a[0], np.expm1(a[0]))),
        "copy": (1, lambda a, o: np.copyto(o, a[0]), lambda a, o: o.copy_(a[0]), None),
        # the forwards and backwards not above, and the *_grad functions (from x;
        # torch's peer: its backward op with a grad_output of ones, preallocated;
        # sigmoid_grad/tanh_grad: torch's forward into a buffer, then its backward)
        "tanh_backward": (2, lambda a, o: M.tanh_backward(a[0], a[1], out=o),
                          lambda a, o: A.tanh_backward.grad_input(a[0], a[1], grad_input=o),
                          lambda a, o: np.multiply(a[0], 1 - a[1] * a[1], out=o)),
        "relu": (1, lambda a, o: M.relu(a[0], out=o), lambda a, o: torch.clamp_min(a[0], 0, out=o),
                 lambda a, o: np.maximum(a[0], 0, out=o)),
        "relu_backward": (2, lambda a, o: M.relu_backward(a[0], a[1], out=o),
                          lambda a, o: A.threshold_backward.grad_input(a[0], a[1], 0, grad_input=o),
                          lambda a, o: np.multiply(a[0], a[1] > 0, out=o)),
        "leaky_relu": (1, lambda a, o: M.leaky_relu(a[0], out=o),
                       lambda a, o: A.leaky_relu.out(a[0], 0.01, out=o), None),
        "leaky_relu_backward": (2, lambda a, o: M.leaky_relu_backward(a[0], a[1], out=o),
                                lambda a, o: A.leaky_relu_backward.grad_input(a[0], a[1], 0.01, False,
                                                                              grad_input=o), None),
        "elu_backward": (2, lambda a, o: M.elu_backward(a[0], a[1], out=o),
                         lambda a, o: A.elu_backward.grad_input(a[0], 1.0, 1, 1, True, a[1], grad_input=o),
                         None),
        "log_sigmoid": (1, lambda a, o: M.log_sigmoid(a[0], out=o),
                        lambda a, o: A.log_sigmoid_forward.output(a[0], output=o, buffer=_buf(o)), None),
        "log_sigmoid_backward": (2, lambda a, o: M.log_sigmoid_backward(a[0], a[1], out=o),
                                 lambda a, o: A.log_sigmoid_backward.grad_input(a[0], a[1], _buf(o),
                                                                                grad_input=o), None),
        "sigmoid_grad": (1, lambda a, o: M.sigmoid_grad(a[0], out=o),
                         lambda a, o: A.sigmoid_backward.grad_input(_ones(o), torch.sigmoid(a[0], out=_buf(o)),
                                                                   grad_input=o),
                         None),
        "tanh_grad": (1, lambda a, o: M.tanh_grad(a[0], out=o),
                      lambda a, o: A.tanh_backward.grad_input(_ones(o), torch.tanh(a[0], out=_buf(o)),
                                                               grad_input=o), None),
        "silu_grad": (1, lambda a, o: M.silu_grad(a[0], out=o),
                      lambda a, o: A.silu_backward.grad_input(_ones(o), a[0], grad_input=o), None),
        "gelu_grad": (1, lambda a, o: M.gelu_grad(a[0], out=o),
                      lambda a, o: A.gelu_backward.grad_input(_ones(o), a[0], grad_input=o), None),
        "gelu_tanh_grad": (1, lambda a, o: M.gelu_grad(a[0], approximate="tanh", out=o),
                           lambda a, o: A.gelu_backward.grad_input(_ones(o), a[0], approximate="tanh",
                                                                   grad_input=o), None),
        "softplus_grad": (1, lambda a, o: M.softplus_grad(a[0], out=o),
                          lambda a, o: A.softplus_backward.grad_input(_ones(o), a[0], 1.0, 20.0,
                                                                      grad_input=o), None),
        "elu_grad": (1, lambda a, o: M.elu_grad(a[0], out=o),
                     lambda a, o: A.elu_backward.grad_input(_ones(o), 1.0, 1, 1, False, a[0], grad_input=o),
                     None),
        "log_sigmoid_grad": (1, lambda a, o: M.log_sigmoid_grad(a[0], out=o),
                             lambda a, o: A.log_sigmoid_backward.grad_input(_ones(o), a[0], _buf(o),
                                                                            grad_input=o), None),
    }


_CACHE = {}


def _cached(key, make):
    if key not in _CACHE:
        _CACHE[key] = make()
    return _CACHE[key]


def _ones(o):
    """a tensor of ones like o (made once per shape and dtype, outside the timing)"""
    import torch
    return _cached(("ones", o.shape, o.dtype), lambda: torch.ones_like(o))


def _buf(o):
    """log_sigmoid's scratch buffer (torch writes it; preallocated once)"""
    import torch
    return _cached(("buf", o.shape, o.dtype), lambda: torch.empty_like(o))


def _ndtr(x, o):
    import scipy.special as sc
    return sc.ndtr(x, out=o)


def timeit(f, reps):
    """Seconds per call of ``reps`` back-to-back calls of ``f`` (one sample)."""
    t0 = time.perf_counter()
    for _ in range(reps):
        f()
    return (time.perf_counter() - t0) / reps


def interleave(runs, rounds, reps):
    """One warm-up sample of each callable, then ``rounds`` rounds of one
    sample of each in turn (so the machine's drift hits them alike).
    Returns (times, cpu): per run, the seconds per call of every round, and
    the process CPU time / wall time of every sample (about T when the
    team's threads kept their cores; less when another process took one)."""
    for f in runs:
        timeit(f, reps)
    ts = [[] for _ in runs]
    cpu = [[] for _ in runs]
    pt = time.process_time
    for _ in range(rounds):
        for k, f in enumerate(runs):
            c0 = pt()
            t = timeit(f, reps)
            ts[k].append(t)
            cpu[k].append((pt() - c0) / (t * reps))
    return ts, cpu


def paired(base, other):
    """Median over the rounds of other / base (the paired ratio)."""
    return statistics.median(o / b for b, o in zip(base, other))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", default="silu,silu_backward,gelu,gelu_tanh,sigmoid")
    ap.add_argument("--sizes", default="1e5")
    ap.add_argument("--dtypes", default="f32,f64")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--sample-ns", type=float, default=2e6,
                    help="elements per timed sample (calls = this / n, at least 1); "
                         "short samples are preempted less on a loaded machine")
    a = ap.parse_args()
    import torch
    import mlkern
    torch.set_num_threads(a.threads)
    mlkern.set_num_threads(a.threads)
    C = cases(torch)
    print(f"# load average {os.getloadavg()}, T={a.threads}, level "
          f"{mlkern.show_config(file=open(os.devnull, 'w'))['simd_level']}, rounds {a.rounds}")
    print("| case | n | dtype | mlkern ns/el | torch ns/el | torch/mlkern | numpy/mlkern "
          "| torch/mlkern of the minima |")
    print("|---|---|---|---|---|---|---|---|")
    rng = np.random.default_rng(0)
    for name in a.cases.split(","):
        nargs, fm, ft, fn = C[name]
        for sz in a.sizes.split(","):
            n = int(float(sz))
            for dn in a.dtypes.split(","):
                dt = np.float32 if dn == "f32" else np.float64
                args = [(rng.standard_normal(n) * 3).astype(dt) for _ in range(nargs)]
                if name == "sigmoid_backward":
                    args[1] = (1 / (1 + np.exp(-args[1]))).astype(dt)
                if name in ("tanh_backward", "elu_backward"):   # the saved output y
                    args[1] = (np.tanh(args[1]) if name == "tanh_backward"
                               else np.where(args[1] > 0, args[1], np.expm1(args[1]))).astype(dt)
                out = np.empty(n, dt)
                targs = [torch.from_numpy(x) for x in args]
                tout = torch.from_numpy(np.empty(n, dt))
                nout = np.empty(n, dt)
                reps = max(1, int(a.sample_ns // n))
                runs = [lambda: fm(args, out), lambda: ft(targs, tout)]
                if fn is not None:
                    runs.append(lambda: fn(args, nout))
                ts, _ = interleave(runs, a.rounds, reps)
                med = [statistics.median(t) * 1e9 / n for t in ts]
                rt = paired(ts[0], ts[1])
                rn = f"{paired(ts[0], ts[2]):.2f}" if fn is not None else ""
                rmin = min(ts[1]) / min(ts[0])
                print(f"| {name} | {n:.0e} | {dn} | {med[0]:.3f} | {med[1]:.3f} | {rt:.2f} | {rn} "
                      f"| {rmin:.2f} |", flush=True)


if __name__ == "__main__":
    main()
