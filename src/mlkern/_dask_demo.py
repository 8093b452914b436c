"""``python -m mlkern demo --dask``: mlkern on a local Dask cluster.

A linear classifier (``features -> classes``) over a synthetic dataset of
``--dask-rows`` rows, generated chunk by chunk on the workers (never on the
client), on a ``distributed.LocalCluster(n_workers=2,
threads_per_worker=1)`` (loopback only).  In one graph: batch inference
(``softmax`` and ``argmax`` of the logits, the accuracy), the mean
cross-entropy and its gradient with respect to the logits
(``cross_entropy_with_grad``: one pass per chunk, the global mean), and the
weight gradient ``X.T @ grad``.  Each worker holds a few chunks at a time,
not its half of the data.  Each worker process runs in its own session
(``own_sessions``: on a loaded Linux machine the workers then compete for
the CPU as separate programs, not as one).  A progress bar follows the
graph's tasks; then the same work, chunk by chunk, in this process with
mlkern on one thread, and the throughputs per core.
"""
import sys
import time

import numpy as np

INSTALL_HINT = 'pip install "mlkern[dask]"'
FEATURES, CLASSES = 64, 10


def local_cluster(n_workers=2, **kw):
    """A LocalCluster of single-threaded worker processes on the loopback
    interface, without a dashboard."""
    import logging

    from distributed import LocalCluster
    return LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                        host="127.0.0.1", dashboard_address=None, silence_logs=logging.ERROR,
                        **kw)


def _own_session():
    """On a worker: leave the session of the program that started it."""
    import os
    try:
        os.setsid()
    except OSError:                       # already a session leader
        pass
    return os.getsid(0)


def own_sessions(client):
    """Give each worker process of `client`'s cluster its own session, as a
    separately started program has.  Linux's autogroup shares the CPU
    between sessions, not threads: on a loaded machine the workers of a
    cluster started from one shell otherwise get together what one
    single-process program gets, and a throughput against single-process
    mlkern measures the neighbours.  Returns {worker address: session id}.
    The nanny still stops the workers when the cluster closes."""
    return client.run(_own_session)


def _weights(seed, dtype):
    return (np.random.default_rng(seed).standard_normal((FEATURES, CLASSES)) * 0.3).astype(dtype)


def _chunk_work(rng, rows, W):
    """One chunk's work, in NumPy + mlkern: what the graph does per chunk
    (the data generated too)."""
    import mlkern
    X = rng.standard_normal((rows, FEATURES), dtype=W.dtype)
    y = rng.integers(0, CLASSES, rows)
    logits = X @ W
    p = mlkern.softmax(logits)
    correct = int(np.count_nonzero(mlkern.argmax(logits) == y))
    loss, g = mlkern.cross_entropy_with_grad(logits, y, reduction="sum")
    return float(loss), X.T @ g, correct, float(p[:, 0].sum())


def _make_bar(futures, scheduler, out, width=30):
    from distributed.diagnostics.progressbar import TextProgressBar

    from .demo import _bar

    tty = bool(getattr(out, "isatty", lambda: False)())

    class _Bar(TextProgressBar):
        """Redrawn in place on a terminal; elsewhere one line at the end."""
        last = ""

        def _draw_bar(self, remaining, all, **kwargs):
            frac = (1 - remaining / all) if all else 1.0
            self.last = (f"  cluster {_bar(frac, width)} {int(100 * frac):3d} % "
                         f"({all - remaining}/{all} tasks)")
            if tty:
                out.write("\r" + self.last)
                out.flush()

        def _draw_stop(self, **kwargs):
            out.write(("\r" if tty else "") + self.last + "\n")
            out.flush()

    return _Bar(futures, scheduler=scheduler, width=width)


def main(args, out=None):
    out = sys.stdout if out is None else out
    try:
        import dask.array as da
        from distributed import Client
    except ImportError as e:
        print(f"mlkern demo --dask: needs dask and distributed ({e}).\n"
              f"Install the dask extra:  {INSTALL_HINT}", file=sys.stderr)
        raise SystemExit(2) from None
    import mlkern

    dtype = np.dtype(args.dtype)
    rows, chunk = args.dask_rows, args.dask_chunk
    W = _weights(args.seed, dtype)
    print(f"mlkern demo --dask: {rows} rows x {FEATURES} features -> {CLASSES} classes "
          f"({rows * FEATURES * dtype.itemsize / 1e6:.0f} MB of data in chunks of {chunk} rows), "
          f"{dtype.name}, LocalCluster(n_workers=2, threads_per_worker=1)", file=out)
    out.flush()
    with local_cluster() as cluster, Client(cluster, timeout=60, set_as_default=False) as client:
        sessions = sorted(own_sessions(client).values())
        rng = da.random.default_rng(args.seed)
        X = rng.standard_normal((rows, FEATURES), chunks=(chunk, FEATURES), dtype=dtype)
        y = rng.integers(0, CLASSES, rows, chunks=chunk)
        logits = X @ W
        probs = mlkern.softmax(logits)                     # batch inference: lazy
        accuracy = (mlkern.argmax(logits) == y).mean()
        loss, grad = mlkern.cross_entropy_with_grad(logits, y)   # global mean, one pass
        grad_w = X.T @ grad
        t0 = time.perf_counter()
        futures = client.compute([loss, grad_w, accuracy, probs[:, 0].sum()])
        _make_bar(futures, client.scheduler.address, out)
        loss_v, grad_w_v, acc_v, p0 = client.gather(futures)
        t_cluster = time.perf_counter() - t0
    # the same work in this process, one thread, on as many chunks as fit in ~2 s
    rng1 = np.random.default_rng(args.seed + 1)
    n_local, t_local = 0, 0.0
    with mlkern.threads(1):
        _chunk_work(rng1, chunk, W)                      # warm-up
        while t_local < 2.0 and n_local < 64:
            t1 = time.perf_counter()
            _chunk_work(rng1, chunk, W)
            t_local += time.perf_counter() - t1
            n_local += 1
    per_core_cluster = rows / t_cluster / 2
    per_core_local = n_local * chunk / t_local
    print(f"  mean cross-entropy {float(loss_v):.4f}, "
          f"accuracy {100 * float(acc_v):.1f} %, |dL/dW| {float(np.linalg.norm(grad_w_v)):.3g}, "
          f"mean p[0] {float(p0) / rows:.4f}", file=out)
    print(f"  cluster (2 workers x 1 thread, data generated on the workers): {t_cluster:.2f} s, "
          f"{per_core_cluster / 1e6:.2f} M rows/s per core", file=out)
    print(f"  single process (mlkern, 1 thread, the same work chunk by chunk): "
          f"{per_core_local / 1e6:.2f} M rows/s per core; cluster / single = "
          f"{per_core_cluster / per_core_local:.2f}", file=out)
    out.flush()
    return {"loss": float(loss_v), "accuracy": float(acc_v), "grad_w": np.asarray(grad_w_v),
            "rows": rows, "seconds": t_cluster, "rows_per_s_per_core": per_core_cluster,
            "local_rows_per_s_per_core": per_core_local, "worker_sessions": sessions}
