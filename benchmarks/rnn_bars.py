"""The recurrent layers (issue 16) vs PyTorch: run ``python benchmarks/rnn_bars.py``.

float32, single-layer unidirectional RNN / LSTM / GRU of ``--shape T,N,I,H``
(default issue 16's 100,32,256,256), at 1 and 2 threads (``--threads 1,2``).
Forward: ``rnn``/``lstm``/``gru`` vs ``nn.RNN``/``nn.LSTM``/``nn.GRU`` under
``torch.no_grad()``; forward+backward: ``return_saved=True`` then
``*_backward`` (grad_output and grad_h_n given, grad_x computed) vs autograd
of ``(output*go).sum() + (h_n*gh).sum()`` (x and h0 requiring grad).

Each library runs in its own process (PyTorch's OpenMP pool spins after a
parallel region and would take a core from mlkern at 2 threads), the
processes alternating: ``--rounds`` rounds, each running mlkern then PyTorch
(or the other way round, alternately) at every thread count, each process
timing ``--repeats`` calls of every case after a warm-up and reporting the
medians.  Printed: the median over the rounds of each figure and the ratio
PyTorch / mlkern (above 1: mlkern faster), with the load average before and
after (the figures mean little on a loaded machine).  ``--cpu-time`` times
with the calling thread's CPU time instead of wall time (only meaningful at
1 thread; less disturbed by other processes on a loaded machine).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/rnn_bars.py
    python benchmarks/rnn_bars.py --threads 1 --rounds 5 --repeats 7
"""
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

KINDS = ("lstm", "gru", "rnn")
G = {"rnn": 1, "lstm": 4, "gru": 3}


def _arg(name, default):
    if name in sys.argv:
        return sys.argv[sys.argv.index(name) + 1]
    return default


SHAPE = _arg("--shape", "100,32,256,256")
SEQ, N, I, H = (int(v) for v in SHAPE.split(","))
REPEATS = int(_arg("--repeats", "7"))
ROUNDS = int(_arg("--rounds", "3"))
THREADS = [int(t) for t in _arg("--threads", "1,2").split(",")]
CPU_TIME = "--cpu-time" in sys.argv


def _inputs(kind):
    rng = np.random.default_rng(0)
    g = G[kind]
    s = 1 / np.sqrt(H)
    f32 = np.float32
    return dict(x=rng.standard_normal((SEQ, N, I)).astype(f32),
                h0=rng.standard_normal((N, H)).astype(f32),
                c0=rng.standard_normal((N, H)).astype(f32),
                wi=rng.uniform(-s, s, (g * H, I)).astype(f32),
                wh=rng.uniform(-s, s, (g * H, H)).astype(f32),
                bi=rng.uniform(-s, s, g * H).astype(f32),
                bh=rng.uniform(-s, s, g * H).astype(f32),
                go=rng.standard_normal((SEQ, N, H)).astype(f32),
                gh=rng.standard_normal((N, H)).astype(f32))


def _mlkern_fns(kind, d):
    from mlkern import layers as L
    x, h0, c0, wi, wh, bi, bh, go, gh = (d[k] for k in ("x", "h0", "c0", "wi", "wh", "bi", "bh",
                                                        "go", "gh"))

    def fwd():
        if kind == "lstm":
            return L.lstm(x, h0, c0, wi, wh, bi, bh)
        return getattr(L, kind)(x, h0, wi, wh, bi, bh)

    def both():
        if kind == "lstm":
            r = L.lstm(x, h0, c0, wi, wh, bi, bh, return_saved=True)
            return L.lstm_backward(go, gh, None, r[2])
        r = getattr(L, kind)(x, h0, wi, wh, bi, bh, return_saved=True)
        return getattr(L, kind + "_backward")(go, gh, r[2])

    return fwd, both


def _torch_fns(kind, d):
    import torch
    mod = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[kind](I, H)
    with torch.no_grad():
        mod.weight_ih_l0.copy_(torch.from_numpy(d["wi"]))
        mod.weight_hh_l0.copy_(torch.from_numpy(d["wh"]))
        mod.bias_ih_l0.copy_(torch.from_numpy(d["bi"]))
        mod.bias_hh_l0.copy_(torch.from_numpy(d["bh"]))
    xt, h0t, c0t = (torch.from_numpy(a) for a in (d["x"], d["h0"][None], d["c0"][None]))
    got, ght = torch.from_numpy(d["go"]), torch.from_numpy(d["gh"])

    def st(hh, cc):
        return (hh, cc) if kind == "lstm" else hh

    def fwd():
        with torch.no_grad():
            return mod(xt, st(h0t, c0t))

    def both():
        xg = xt.clone().requires_grad_()
        hg = h0t.clone().requires_grad_()
        o, hn = mod(xg, st(hg, c0t))
        hn = hn[0] if kind == "lstm" else hn
        ((o * got).sum() + (hn[0] * ght).sum()).backward()
        mod.zero_grad(set_to_none=True)

    return fwd, both


def child(who, threads):
    """Time every case in this process; print one JSON line {case: median s}."""
    if who == "mlkern":
        import mlkern
        mlkern.set_num_threads(threads)
        make = _mlkern_fns
    else:
        import torch
        torch.set_num_threads(threads)
        assert torch.get_num_threads() == threads
        make = _torch_fns
    clock = time.thread_time if CPU_TIME else time.perf_counter
    res = {}
    for kind in KINDS:
        fwd, both = make(kind, _inputs(kind))
        for name, f in (("fwd", fwd), ("fwd+bwd", both)):
            f()
            f()
            ts = []
            for _ in range(REPEATS):
                t = clock()
                f()
                ts.append(clock() - t)
            res[f"{kind} {name}"] = statistics.median(ts)
    print(json.dumps(res))


def main():
    env = dict(os.environ)
    for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        env.pop(k, None)
    try:
        import torch  # noqa: F401
        whos = ["mlkern", "torch"]
    except ImportError:        # PyTorch is optional
        whos = ["mlkern"]
    print(f"float32 T={SEQ} N={N} I={I} H={H}, threads {THREADS}, {ROUNDS} rounds x {REPEATS} "
          f"repeats, each library in its own process, {'CPU' if CPU_TIME else 'wall'} time, "
          f"load {os.getloadavg()[0]:.2f}", flush=True)
    figs = {}
    for r in range(ROUNDS):
        for T in THREADS:
            order = whos if r % 2 == 0 else whos[::-1]
            for who in order:
                cmd = [sys.executable, __file__, "--child", who, "--threads", str(T), "--shape", SHAPE,
                       "--repeats", str(REPEATS)] + (["--cpu-time"] if CPU_TIME else [])
                out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
                for case, v in json.loads(out.strip().splitlines()[-1]).items():
                    figs.setdefault((T, who, case), []).append(v)
    for T in THREADS:
        for kind in KINDS:
            line = f"T={T} {kind:5s}"
            for name in ("fwd", "fwd+bwd"):
                case = f"{kind} {name}"
                m = statistics.median(figs[(T, "mlkern", case)]) * 1e3
                line += f"  {name}: mlkern {m:7.2f} ms"
                if "torch" in whos:
                    t = statistics.median(figs[(T, "torch", case)]) * 1e3
                    line += f" torch {t:7.2f} ms ({t / m:.2f}x)"
            print(line, flush=True)
    print(f"load after {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    if "--child" in sys.argv:
        child(_arg("--child", "mlkern"), int(_arg("--threads", "1")))
    else:
        main()
