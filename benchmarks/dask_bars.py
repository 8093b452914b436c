"""mlkern on a 2-worker Dask cluster against single-process mlkern.

    python benchmarks/dask_bars.py [--elements 1e8] [--classes 1000] [--chunk-rows 5000]

``softmax`` and ``cross_entropy_with_grad`` (class labels, mean) over a
float32 array of ``--elements`` elements (rows x classes), in chunks of
``--chunk-rows`` rows, on ``LocalCluster(n_workers=2, threads_per_worker=1)``
(loopback, worker processes).  The data are generated on the workers and
persisted before the timing; a timed run persists the results on the
workers (nothing is gathered on the client) and waits for them.  The
single-process reference runs mlkern on the same shape, in memory, with one
thread (and with as many threads as the cluster has workers, for
information).  Reported per function: the best of ``--repeat`` runs, the
throughput per core (cluster: elements / s / workers; single process:
elements / s / threads), their ratio, and the busy threads of the worker
processes during the cluster run (a thread is busy when its CPU time grew
by more than 20 % of the wall time; also the mean number of busy cores,
CPU time / wall time), which must not exceed the cluster's cores.

A shared or loaded machine gives meaningless ratios: run it on an idle one.
"""
import argparse
import json
import os
import sys
import time

import numpy as np

import mlkern
from mlkern._dask_demo import local_cluster


def _thread_times(pids):
    import psutil
    out = {}
    for pid in pids:
        for t in psutil.Process(pid).threads():
            out[(pid, t.id)] = t.user_time + t.system_time
    return out


def _busy(before, after, wall):
    deltas = [after[k] - before.get(k, 0.0) for k in after]
    return sum(d > 0.2 * wall for d in deltas), sum(deltas) / wall


def _best(fn, repeat):
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--elements", type=float, default=1e8)
    p.add_argument("--classes", type=int, default=1000)
    p.add_argument("--chunk-rows", type=int, default=5000)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--json", help="write the results to this file")
    a = p.parse_args(argv)
    import dask.array as da
    from distributed import Client, wait

    rows = int(a.elements) // a.classes
    n = rows * a.classes
    print(f"dask_bars: {rows} x {a.classes} float32 ({n:.3g} elements, {n * 4 / 1e6:.0f} MB), "
          f"chunks of {a.chunk_rows} rows, LocalCluster(n_workers={a.workers}, "
          f"threads_per_worker=1); CPUs: {os.cpu_count()}")
    results = {}
    with local_cluster(a.workers) as cluster, Client(cluster, timeout=60) as client:
        pids = list(client.run(os.getpid).values())
        rng = da.random.default_rng(0)
        x = client.persist(rng.standard_normal((rows, a.classes), chunks=(a.chunk_rows, a.classes),
                                               dtype=np.float32))
        y = client.persist(rng.integers(0, a.classes, rows, chunks=a.chunk_rows))
        wait([x, y])

        runs = iter(range(10**9))

        def fresh(arr):
            """arr under a new name (a no-copy task per chunk): the results get
            new keys, so that no run reuses the results of the one before."""
            return arr.map_blocks(np.asarray, name=f"x-run-{next(runs)}", dtype=arr.dtype)

        def run_softmax():
            r = client.persist(mlkern.softmax(fresh(x)))
            wait(r)
            del r

        def run_xent():
            loss, g = client.persist(list(mlkern.cross_entropy_with_grad(fresh(x), y)))
            wait([loss, g])
            del loss, g

        for name, fn in (("softmax", run_softmax), ("cross_entropy_with_grad", run_xent)):
            fn()                                           # warm-up
            before = _thread_times(pids)
            t0 = time.perf_counter()
            t = _best(fn, a.repeat)
            wall = time.perf_counter() - t0
            busy, cores = _busy(before, _thread_times(pids), wall)
            results[name] = {"cluster_s": t, "busy_threads": busy, "busy_cores": cores}

    rng1 = np.random.default_rng(0)
    xn = rng1.standard_normal((rows, a.classes), dtype=np.float32)
    yn = rng1.integers(0, a.classes, rows)
    for name, fn in (("softmax", lambda: mlkern.softmax(xn)),
                     ("cross_entropy_with_grad", lambda: mlkern.cross_entropy_with_grad(xn, yn))):
        r = results[name]
        with mlkern.threads(1):
            fn()
            r["single_1t_s"] = _best(fn, a.repeat)
        with mlkern.threads(a.workers):
            fn()
            r[f"single_{a.workers}t_s"] = _best(fn, a.repeat)
        r["cluster_per_core"] = n / r["cluster_s"] / a.workers
        r["single_per_core"] = n / r["single_1t_s"]
        r["ratio"] = r["cluster_per_core"] / r["single_per_core"]
    print(f"{'function':<26}{'cluster s':>10}{'1-proc 1t s':>13}{'1-proc ' + str(a.workers) + 't s':>13}"
          f"{'cluster/core':>14}{'1-proc/core':>13}{'ratio':>7}{'busy thr':>10}{'busy cores':>11}")
    for name, r in results.items():
        print(f"{name:<26}{r['cluster_s']:>10.3f}{r['single_1t_s']:>13.3f}"
              f"{r[f'single_{a.workers}t_s']:>13.3f}{r['cluster_per_core'] / 1e6:>11.1f} M/s"
              f"{r['single_per_core'] / 1e6:>10.1f} M/s{r['ratio']:>7.2f}{r['busy_threads']:>10d}"
              f"{r['busy_cores']:>11.2f}")
    print("throughput per core: elements / s / workers (cluster), elements / s on one thread "
          "(single process); ratio = cluster / single process")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"rows": rows, "classes": a.classes, "chunk_rows": a.chunk_rows,
                       "workers": a.workers, "results": results}, f, indent=2)
    return results


if __name__ == "__main__":
    main()
    sys.exit(0)
