"""The bars of issue 17 (mlkern.nn), measured: run ``python benchmarks/nn_bars.py``.

MLP 784-512-512-10 (ReLU) inference in float32, batch 1 and 64, mlkern's
``Sequential`` (each Dense + ReLU one fused ``mlkern.layers.dense`` call into
a reused workspace) against the same ``torch.nn.Sequential`` (weights loaded
from mlkern's ``state_dict``) called under ``torch.inference_mode()``.
Medians of interleaved runs (each repeat times every contender once, in
turn; ``interleaved`` of benchmarks/layers_bars.py), at T = 1 and 2 threads
(``mlkern.set_num_threads(T)``, ``torch.set_num_threads(T)``, the BLAS
through threadpoolctl).  Also: the bytes a warm mlkern call allocates
(tracemalloc) next to its output's size; the load average before and after
(the figures mean little on a loaded machine).  The bars: batch 1 >= 2x and
batch 64 >= 1.2x PyTorch.

    python benchmarks/nn_bars.py [--quick]
"""
import os
import sys
import tracemalloc

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_nn import SIZES, mlkern_mlp, reference, torch, torch_mlp  # noqa: E402
from layers_bars import _fmt, interleaved, torch_threads  # noqa: E402

import mlkern  # noqa: E402


def warm_allocation(model, x):
    """(bytes allocated and still held, peak bytes) of one warm call, output included."""
    for _ in range(3):
        model(x)
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        y = model(x)
        cur, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return cur - base, peak - base, y.nbytes


def main():
    print(f"mlkern {mlkern.__version__} ({mlkern.__file__}), torch {getattr(torch, '__version__', 'absent')},"
          f" numpy {np.__version__}")
    print("MLP", "-".join(map(str, SIZES)), "relu, float32 inference")
    print("load average before:", os.getloadavg())
    model = mlkern_mlp()
    tm = torch_mlp(model) if torch is not None else None
    ok = True
    for T in (1, 2):
        for batch, bar in ((1, 2.0), (64, 1.2)):
            x = np.random.default_rng(1).standard_normal((batch, SIZES[0])).astype(np.float32)
            assert np.abs(model(x) - reference(model, x)).max() < 1e-3
            c = {"mlkern": lambda: model(x)}
            if tm is not None:
                xt = torch.from_numpy(x)

                def tfn():
                    with torch.inference_mode():
                        tm(xt)
                c["torch"] = tfn
            with torch_threads(T):
                r = interleaved(c, budget=0.05)
            line = f"T={T} batch {batch:3d}: mlkern {_fmt(r['mlkern'])}"
            if "torch" in r:
                ratio = r["torch"] / r["mlkern"]
                ok &= ratio >= bar
                line += f"  torch {_fmt(r['torch'])}  x torch {ratio:.2f} (bar {bar})"
            held, peak, out = warm_allocation(model, x)
            print(line + f"  warm call: {held} B held, {peak} B peak, output {out} B")
            sys.stdout.flush()
    mlkern.set_num_threads(os.cpu_count() or 1)
    print("load average after:", os.getloadavg())
    print("all bars met" if ok else "some bar not met")


if __name__ == "__main__":
    main()
