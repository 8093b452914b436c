"""The recurrent layers (issue 16) vs PyTorch: run ``python benchmarks/rnn_bars.py``.

Medians of interleaved runs (each repeat times every contender once, in
turn), float32, mlkern's and PyTorch's thread counts set to T (1 by
default; ``--threads 2``), single-layer unidirectional RNN / LSTM / GRU of
``--shape T,N,I,H`` (default 32,32,256,256; issue 16's anchors use
T=100).  Forward: ``rnn``/``lstm``/``gru`` vs ``nn.RNN``/``nn.LSTM``/``nn.GRU``
under ``torch.no_grad()``; forward+backward: ``return_saved=True`` then
``*_backward`` (grad_output and grad_h_n given) vs autograd of
``(output*go).sum() + (h_n*gh).sum()`` (x and h0 requiring grad).  Prints the
load average before and after (the figures mean little on a loaded
machine).
"""
import os
import statistics
import sys
import time

import numpy as np

import mlkern
from mlkern import layers as L

try:
    import torch
except ImportError:        # PyTorch is optional
    torch = None


def _arg(name, default):
    if name in sys.argv:
        return sys.argv[sys.argv.index(name) + 1]
    return default


THREADS = int(_arg("--threads", "1"))
SEQ, N, I, H = (int(v) for v in _arg("--shape", "32,32,256,256").split(","))
REPEATS = int(_arg("--repeats", "11"))
G = {"rnn": 1, "lstm": 4, "gru": 3}


def _time(f):
    t = time.perf_counter()
    f()
    return time.perf_counter() - t


def case(kind):
    rng = np.random.default_rng(0)
    g = G[kind]
    s = 1 / np.sqrt(H)
    x = rng.standard_normal((SEQ, N, I)).astype(np.float32)
    h0 = rng.standard_normal((N, H)).astype(np.float32)
    c0 = rng.standard_normal((N, H)).astype(np.float32)
    wi = (rng.uniform(-s, s, (g * H, I))).astype(np.float32)
    wh = (rng.uniform(-s, s, (g * H, H))).astype(np.float32)
    bi = (rng.uniform(-s, s, g * H)).astype(np.float32)
    bh = (rng.uniform(-s, s, g * H)).astype(np.float32)
    go = rng.standard_normal((SEQ, N, H)).astype(np.float32)
    gh = rng.standard_normal((N, H)).astype(np.float32)

    def m_fwd():
        if kind == "lstm":
            return L.lstm(x, h0, c0, wi, wh, bi, bh)
        return getattr(L, kind)(x, h0, wi, wh, bi, bh)

    def m_both():
        if kind == "lstm":
            r = L.lstm(x, h0, c0, wi, wh, bi, bh, return_saved=True)
            return L.lstm_backward(go, gh, None, r[2])
        r = getattr(L, kind)(x, h0, wi, wh, bi, bh, return_saved=True)
        return getattr(L, kind + "_backward")(go, gh, r[2])

    fns = {"mlkern fwd": m_fwd, "mlkern fwd+bwd": m_both}
    if torch is not None:
        mod = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[kind](I, H)
        with torch.no_grad():
            mod.weight_ih_l0.copy_(torch.from_numpy(wi))
            mod.weight_hh_l0.copy_(torch.from_numpy(wh))
            mod.bias_ih_l0.copy_(torch.from_numpy(bi))
            mod.bias_hh_l0.copy_(torch.from_numpy(bh))
        xt, h0t, c0t = (torch.from_numpy(a) for a in (x, h0[None], c0[None]))
        got, ght = torch.from_numpy(go), torch.from_numpy(gh)

        def st(xx, hh, cc):
            return (hh, cc) if kind == "lstm" else hh

        def t_fwd():
            with torch.no_grad():
                return mod(xt, st(xt, h0t, c0t))

        def t_both():
            xg = xt.clone().requires_grad_()
            hg = h0t.clone().requires_grad_()
            o, hn = mod(xg, st(xg, hg, c0t))
            hn = hn[0] if kind == "lstm" else hn
            ((o * got).sum() + (hn[0] * ght).sum()).backward()
            mod.zero_grad(set_to_none=True)

        fns["torch fwd"] = t_fwd
        fns["torch fwd+bwd"] = t_both
    for f in fns.values():          # warm-up
        f()
    times = {k: [] for k in fns}
    for _ in range(REPEATS):
        for k, f in fns.items():
            times[k].append(_time(f))
    med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
    line = f"{kind:5s} " + "  ".join(f"{k} {v:7.2f} ms" for k, v in med.items())
    if torch is not None:
        line += (f"  | speed-up fwd {med['torch fwd'] / med['mlkern fwd']:.2f}x"
                 f"  fwd+bwd {med['torch fwd+bwd'] / med['mlkern fwd+bwd']:.2f}x")
    print(line, flush=True)


def main():
    mlkern.set_num_threads(THREADS)
    if torch is not None:
        torch.set_num_threads(THREADS)
    print(f"float32 T={SEQ} N={N} I={I} H={H}, threads={THREADS}, {REPEATS} interleaved repeats, "
          f"load {os.getloadavg()[0]:.2f}")
    for kind in ("lstm", "gru", "rnn"):
        case(kind)
    print(f"load after {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
