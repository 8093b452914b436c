"""Issue-15 convolution figures: mlkern against PyTorch, f32, medians, each
library in its own process (PyTorch's spinning OpenMP pool cannot take a
core from mlkern), at T=1 and T=2.  Run

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/conv_bars.py

(the driver: runs `conv_bars.py <mlkern|torch> <T>` for T in 1 2, twice each,
alternating, keeps the faster median of the two runs, prints ms and the
ratios torch/mlkern: above 1 means mlkern is faster).  The works:

* conv2d x (32,64,56,56) -> 64, 3x3 pad 1: forward, forward + backward;
* conv2d x (8,3,224,224) -> 64, 3x3 pad 1: forward, forward + backward;
* conv1d x (64,128,1024) -> 128, k 5 pad 2: forward, forward + backward;

mlkern in "NCHW" and "NHWC" (layout=), PyTorch in contiguous (NCHW) and
channels_last memory format.  forward + backward: y = conv(x, w, b), then
the backward with grad_output = y, grad_x included (torch: x, w, b all
requires_grad).
"""
import os
import subprocess
import sys
import time

import numpy as np

WORKS = [
    ("conv2d (32,64,56,56)->64 3x3 p1", 2, (32, 64, 56, 56), 64, 3, 1),
    ("conv2d (8,3,224,224)->64 3x3 p1", 2, (8, 3, 224, 224), 64, 3, 1),
    ("conv1d (64,128,1024)->128 k5 p2", 1, (64, 128, 1024), 128, 5, 2),
]


def med(f, n):
    for _ in range(2):
        f()
    ts = []
    for _ in range(n):
        t0 = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t0)
    return sorted(ts)[n // 2]


def run(who, T, n):
    rng = np.random.default_rng(0)
    for name, nd, xs, O, k, p in WORKS:
        x = rng.standard_normal(xs).astype(np.float32)
        w = (rng.standard_normal((O, xs[1]) + (k,) * nd) / np.sqrt(xs[1] * k ** nd)).astype(np.float32)
        b = rng.standard_normal(O).astype(np.float32)
        for fmt in ("first", "last"):
            if who == "mlkern":
                import mlkern
                import mlkern.layers as L
                mlkern.set_num_threads(T)
                fwd, bwd = (L.conv1d, L.conv1d_backward) if nd == 1 else (L.conv2d, L.conv2d_backward)
                lay = ("NCL", "NLC")[fmt == "last"] if nd == 1 else ("NCHW", "NHWC")[fmt == "last"]
                xx = np.ascontiguousarray(np.moveaxis(x, 1, -1)) if fmt == "last" else x

                def f():
                    return fwd(xx, w, b, padding=p, layout=lay)

                def fb():
                    y = fwd(xx, w, b, padding=p, layout=lay)
                    bwd(y, xx, w, padding=p, layout=lay)
            else:
                import torch
                import torch.nn.functional as F
                torch.set_num_threads(T)
                tf = F.conv1d if nd == 1 else F.conv2d
                mf = torch.channels_last if (fmt == "last" and nd == 2) else torch.contiguous_format
                if nd == 1 and fmt == "last":
                    continue            # no channels-last format for 3-D tensors
                xt = torch.from_numpy(x).contiguous(memory_format=mf)
                wt = torch.from_numpy(w).contiguous(memory_format=mf)
                bt = torch.from_numpy(b)
                xg, wg, bg = (t.clone().requires_grad_() for t in (xt, wt, bt))

                def f():
                    with torch.inference_mode():
                        return tf(xt, wt, bt, padding=p)

                def fb():
                    y = tf(xg, wg, bg, padding=p)
                    y.backward(y.detach())
            print(who, T, name, fmt, "%.2f" % (med(f, n) * 1e3), "%.2f" % (med(fb, max(3, n // 2)) * 1e3),
                  flush=True)


def main():
    here = os.path.abspath(__file__)
    res = {}
    for T in (1, 2):
        for rep in range(2):
            for who in ("mlkern", "torch"):
                p = subprocess.run([sys.executable, here, who, str(T)], capture_output=True, text=True)
                if p.returncode:
                    print(p.stderr)
                    raise SystemExit(1)
                for line in p.stdout.splitlines():
                    parts = line.split()
                    key = (parts[0], int(parts[1]), " ".join(parts[2:-3]), parts[-3])
                    f, fb = float(parts[-2]), float(parts[-1])
                    old = res.get(key)
                    res[key] = (f, fb) if old is None else (min(old[0], f), min(old[1], fb))
    print(f"load average {os.getloadavg()}")
    print(f"{'work':34s} {'T':>2s} {'mlkern':>6s} {'fwd ms':>8s} {'f+b ms':>8s} | "
          f"{'torch NCHW f/f+b':>18s} {'ratio':>11s} | {'torch ch-last f/f+b':>20s} {'ratio':>11s}")
    for name, nd, *_ in WORKS:
        for T in (1, 2):
            tc = res.get(("torch", T, name, "first"))
            tl = res.get(("torch", T, name, "last"))
            for fmt in ("first", "last"):
                m = res[("mlkern", T, name, fmt)]
                lay = ("NCL", "NLC")[fmt == "last"] if nd == 1 else ("NCHW", "NHWC")[fmt == "last"]
                s = f"{name:34s} {T:2d} {lay:>6s} {m[0]:8.1f} {m[1]:8.1f} |"
                s += f" {tc[0]:8.1f}/{tc[1]:8.1f} {tc[0] / m[0]:5.2f}/{tc[1] / m[1]:5.2f} |"
                if tl:
                    s += f" {tl[0]:9.1f}/{tl[1]:9.1f} {tl[0] / m[0]:5.2f}/{tl[1] / m[1]:5.2f}"
                print(s)


if __name__ == "__main__":
    if len(sys.argv) > 2:
        run(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 5)
    else:
        main()
