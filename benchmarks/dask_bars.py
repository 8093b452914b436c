"""mlkern on a 2-worker Dask cluster against single-process mlkern.

    python benchmarks/dask_bars.py [--elements 1e8] [--classes 1000] [--chunk-mb 50]
                                   [--repeat 5] [--shared-session] [--json FILE]

``softmax`` and ``cross_entropy_with_grad`` (class labels, mean) over a
float32 array of ``--elements`` elements (rows x classes) in chunks of
about ``--chunk-mb`` MB (whole rows, a multiple of the worker count), on
``LocalCluster(n_workers=2, threads_per_worker=1)`` (loopback, worker
processes; the scheduler runs in this process).

What is timed (the cluster):
  The data are generated *on the workers* (``dask.array.random``; a
  chunk's labels in a task that depends on its logits, so that they sit on
  the same worker, as a loader gives them) and persisted there before any
  timing.  One timed run = building the mlkern
  graph on the client + ``client.persist`` + waiting until every result
  chunk is in a worker's memory.  Nothing is gathered on the client (the
  loss stays a persisted 0-d array).  A run works on a fresh key (a no-copy
  task per chunk) so that no run reuses the results of another.

What is timed (single process, the reference):
  The same mlkern call on the same shape in this process's memory, with
  ``mlkern.threads(1)``: on the whole array, and chunk by chunk (the
  cluster's chunks, every result kept, as the cluster keeps them: the same
  allocations, without the page faults of one 400 MB+ result); the faster
  of the two is the reference.  With 2 threads (the cluster's cores) on
  the whole array, for information.  Cluster and single-process runs alternate, so that both
  see the same machine load; the best of ``--repeat`` runs of each is kept.

Figures, per function:
  * throughput per core: cluster = elements / s / workers; single process =
    elements / s with one thread; the ratio of the two is the bar (>= 0.9);
  * CPU efficiency: elements per CPU-second, cluster (all the worker
    processes' threads + this process: graph building and the scheduler)
    against single process; it does not depend on how much of the machine
    other processes take, and says what the Dask overhead costs;
  * CPU seconds of the cluster run split into the workers' task threads,
    the workers' other threads (event loop, comms) and this process;
  * busy threads: the worker task threads, and separately the workers'
    other threads (Dask's event loops), whose CPU time in the timed cluster
    runs exceeds 20 % of their wall time, the peak number of
    worker task threads running at once (sampled from /proc every 2 ms)
    and the worker processes' OS thread counts, with those that are not
    Python threads (an OpenMP or BLAS pool started inside a task would add
    to them; Dask's own helper threads are Python threads): the busy task
    threads must not exceed the cluster's cores.

Scheduling on a shared machine: Linux's autogroup shares the CPU between
*sessions*, not threads, so on a loaded machine the two workers of a
cluster started from one shell get together what one single-process
program gets, and the ratio measures the neighbours, not mlkern.  Unless
``--shared-session`` is given, each worker process calls ``os.setsid()``
(its own session, as a separately started program has) so that each worker
and the single-process reference compete for the CPU on the same terms.
The load average is printed with the figures; on an idle machine the
option makes no difference.
"""
import argparse
import json
import os
import sys
import threading
import time

import numpy as np

import mlkern
from mlkern._dask_demo import local_cluster, own_sessions


def _thread_cpu(pids):
    """{(pid, tid): user + system CPU seconds} of the threads of pids."""
    import psutil
    out = {}
    for pid in pids:
        for t in psutil.Process(pid).threads():
            out[(pid, t.id)] = t.user_time + t.system_time
    return out


def _process_cpu():
    t = os.times()
    return t.user + t.system


def _task_thread_ids(dask_worker):
    """On a worker: the native ids of the threads that run tasks."""
    ex = dask_worker.executors.get("default")
    names = {t.native_id: t.name for t in threading.enumerate()}
    pool = {t.native_id for t in getattr(ex, "_threads", ())}
    return sorted(i for i, n in names.items() if i in pool or "Dask-Default-Threads" in n)


def _labels(xb, classes, block_info=None):
    seed = block_info[0]["chunk-location"][0]
    return np.random.default_rng(seed).integers(0, classes, xb.shape[0])


def _native_threads():
    """On a worker: OS threads that are not Python threads (an OpenMP or
    BLAS pool would be counted here)."""
    return len(os.listdir("/proc/self/task")) - threading.active_count()


class _Sampler:
    """Counts the worker task threads in state R (running) every `dt` s."""

    def __init__(self, tids, dt=0.002):
        self.paths = [f"/proc/{pid}/task/{tid}/stat" for pid, tid in tids]
        self.dt, self.peak, self.samples, self.total, self.cpu = dt, 0, 0, 0, 0.0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        c0 = time.thread_time()
        while not self._stop.is_set():
            n = 0
            for p in self.paths:
                try:
                    with open(p) as f:
                        n += f.read().rsplit(")", 1)[1].split()[0] == "R"
                except OSError:
                    pass
            self.peak = max(self.peak, n)
            self.samples += 1
            self.total += n
            time.sleep(self.dt)
        self.cpu = time.thread_time() - c0          # not counted as the cluster's

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--elements", type=float, default=1e8)
    p.add_argument("--classes", type=int, default=1000)
    p.add_argument("--chunk-mb", type=float, default=50.0)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--shared-session", action="store_true",
                   help="leave the workers in this program's session (see above)")
    p.add_argument("--json", help="write the results to this file")
    a = p.parse_args(argv)
    import dask.array as da
    from distributed import Client, wait

    W = a.workers
    rows = int(a.elements) // a.classes
    n = rows * a.classes
    chunk_rows = max(1, int(a.chunk_mb * 1e6 / (4 * a.classes)))
    nchunks = -(-rows // chunk_rows)
    nchunks = -(-nchunks // W) * W                   # a multiple of the workers
    chunk_rows = -(-rows // nchunks)
    print(f"dask_bars: {rows} x {a.classes} float32 ({n:.3g} elements, {n * 4 / 1e6:.0f} MB), "
          f"{nchunks} chunks of {chunk_rows} rows ({chunk_rows * a.classes * 4 / 1e6:.0f} MB), "
          f"LocalCluster(n_workers={W}, threads_per_worker=1); CPUs: {os.cpu_count()}; "
          f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    rng1 = np.random.default_rng(0)
    xn = rng1.standard_normal((rows, a.classes), dtype=np.float32)
    yn = rng1.integers(0, a.classes, rows)
    single = {"softmax": lambda: mlkern.softmax(xn),
              "cross_entropy_with_grad": lambda: mlkern.cross_entropy_with_grad(xn, yn)}
    rows_of = [slice(i, min(i + chunk_rows, rows)) for i in range(0, rows, chunk_rows)]
    # chunk by chunk, every result kept (as the cluster keeps them): the same
    # allocations as the workers', none of the whole array's (1.6 GB) page faults
    chunked = {"softmax": lambda: [mlkern.softmax(xn[r]) for r in rows_of],
               "cross_entropy_with_grad": lambda: [
                   mlkern.cross_entropy_with_grad(xn[r], yn[r], reduction="sum") for r in rows_of]}
    results = {}
    with local_cluster(W) as cluster, Client(cluster, timeout=60) as client:
        pids = list(client.run(os.getpid).values())
        if not a.shared_session:
            own_sessions(client)
        rng = da.random.default_rng(0)
        x = client.persist(rng.standard_normal((rows, a.classes), chunks=(chunk_rows, a.classes),
                                               dtype=np.float32))
        # the labels of a chunk are made next to its logits (as a loader gives
        # them), so that no chunk of labels crosses between the workers
        y = client.persist(x.map_blocks(_labels, a.classes, drop_axis=1, dtype=np.int64))
        wait([x, y])
        pid_of = client.run(os.getpid)
        tids = [(pid_of[addr], tid) for addr, ids in client.run(_task_thread_ids).items()
                for tid in ids]
        runs = iter(range(10**9))

        def fresh(arr):
            return arr.map_blocks(np.asarray, name=f"x-run-{next(runs)}", dtype=arr.dtype)

        cluster_fn = {
            "softmax": lambda: [mlkern.softmax(fresh(x))],
            "cross_entropy_with_grad": lambda: list(mlkern.cross_entropy_with_grad(fresh(x), y)),
        }
        for name in cluster_fn:
            r = {"cluster_s": np.inf, "single_1t_s": np.inf, f"single_{W}t_s": np.inf,
                 "cluster_cpu_s": np.inf, "single_1t_cpu_s": np.inf, "chunked_1t_s": np.inf,
                 "chunked_1t_cpu_s": np.inf}
            wait(client.persist(cluster_fn[name]()))          # warm-ups
            with mlkern.threads(1):
                single[name]()
            nthreads0 = [len(__import__("psutil").Process(pid).threads()) for pid in pids]
            native0 = list(client.run(_native_threads).values())
            busy_wall, used = 0.0, {}
            split = None
            peak = 0
            for _ in range(a.repeat):
                b, c0 = _thread_cpu(pids), _process_cpu()
                with _Sampler(tids) as s:
                    t0 = time.perf_counter()
                    res = client.persist(cluster_fn[name]())
                    wait(res)
                    t = time.perf_counter() - t0
                after, c1 = _thread_cpu(pids), _process_cpu() - s.cpu
                del res
                busy_wall += t
                peak = max(peak, s.peak)
                d = {k: after[k] - b.get(k, 0.0) for k in after}
                for k, v in d.items():
                    used[k] = used.get(k, 0.0) + v
                task = sum(v for k, v in d.items() if k in tids)
                cpu = sum(d.values()) + (c1 - c0)
                if t < r["cluster_s"]:
                    r["cluster_s"], r["cluster_cpu_s"] = t, cpu
                    split = {"task_threads": task, "worker_other": sum(d.values()) - task,
                             "client": c1 - c0}
                with mlkern.threads(1):
                    c0, t0 = _process_cpu(), time.perf_counter()
                    single[name]()
                    t, c = time.perf_counter() - t0, _process_cpu() - c0
                if t < r["single_1t_s"]:
                    r["single_1t_s"], r["single_1t_cpu_s"] = t, c
                with mlkern.threads(1):
                    c0, t0 = _process_cpu(), time.perf_counter()
                    res = chunked[name]()
                    t, c = time.perf_counter() - t0, _process_cpu() - c0
                    del res
                if t < r["chunked_1t_s"]:
                    r["chunked_1t_s"], r["chunked_1t_cpu_s"] = t, c
                with mlkern.threads(W):
                    t0 = time.perf_counter()
                    single[name]()
                    r[f"single_{W}t_s"] = min(r[f"single_{W}t_s"], time.perf_counter() - t0)
            r["cluster_cpu_split"] = split
            # busy: CPU time > 20 % of the cluster runs' wall time
            r["busy_task_threads"] = int(sum(v > 0.2 * busy_wall for k, v in used.items()
                                             if k in tids))
            r["busy_other_threads"] = int(sum(v > 0.2 * busy_wall for k, v in used.items()
                                              if k not in tids))
            r["peak_running_task_threads"] = peak
            r["worker_os_threads"] = [nthreads0, [len(__import__("psutil").Process(pid).threads())
                                                  for pid in pids]]
            r["worker_native_threads"] = [native0, list(client.run(_native_threads).values())]
            r["cluster_per_core"] = n / r["cluster_s"] / W
            # the reference: the faster of the whole-array and chunk-by-chunk runs
            best = min(r["single_1t_s"], r["chunked_1t_s"])
            best_cpu = (r["single_1t_cpu_s"] if r["single_1t_s"] <= r["chunked_1t_s"]
                        else r["chunked_1t_cpu_s"])
            r["single_per_core"] = n / best
            r["ratio"] = r["cluster_per_core"] / r["single_per_core"]
            r[f"ratio_vs_{W}t"] = r["cluster_per_core"] / (n / r[f"single_{W}t_s"] / W)
            r["cpu_efficiency"] = best_cpu / r["cluster_cpu_s"]
            results[name] = r
    print(f"{'function':<24}{'cluster s':>10}{'1p 1t s':>9}{'chunked':>9}{f'1p {W}t s':>9}"
          f"{'cluster/core':>14}{'1p/core':>11}{'ratio':>7}{f'vs {W}t':>7}{'cpu eff':>8}"
          f"{'busy task/other':>16}{'peak R':>7}")
    for name, r in results.items():
        print(f"{name:<24}{r['cluster_s']:>10.3f}{r['single_1t_s']:>9.3f}{r['chunked_1t_s']:>9.3f}"
              f"{r[f'single_{W}t_s']:>9.3f}"
              f"{r['cluster_per_core'] / 1e6:>10.1f} M/s{r['single_per_core'] / 1e6:>7.1f} M/s"
              f"{r['ratio']:>7.2f}{r[f'ratio_vs_{W}t']:>7.2f}{r['cpu_efficiency']:>8.2f}"
              f"{r['busy_task_threads']:>10d}/{r['busy_other_threads']:<5d}"
              f"{r['peak_running_task_threads']:>7d}")
    for name, r in results.items():
        s = r["cluster_cpu_split"]
        print(f"  {name}: cluster CPU {r['cluster_cpu_s']:.3f} s (worker task threads "
              f"{s['task_threads']:.3f}, worker other threads {s['worker_other']:.3f}, "
              f"client + scheduler {s['client']:.3f}); single process 1t CPU "
              f"{r['single_1t_cpu_s']:.3f} s; worker OS threads before/after "
              f"{r['worker_os_threads'][0]}/{r['worker_os_threads'][1]}, of which not Python "
              f"threads {r['worker_native_threads'][0]}/{r['worker_native_threads'][1]}")
    print(f"1p/core: the faster single-process run on 1 thread (whole array, or chunk by chunk "
          f"keeping the results); ratio = cluster per core / 1p/core (the bar: >= 0.9); vs {W}t = "
          f"against the whole array on {W} threads, per thread; cpu eff = elements per "
          f"CPU-second, cluster / single process; busy task/other: worker task threads / other "
          f"worker threads with CPU > 20 % of the wall time; peak R: most task threads running at "
          f"once. Sessions: "
          f"{'shared' if a.shared_session else 'one per worker'}. load average "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"rows": rows, "classes": a.classes, "chunk_rows": chunk_rows,
                       "workers": W, "shared_session": a.shared_session,
                       "loadavg": os.getloadavg(), "results": results}, f, indent=2)
    return results


if __name__ == "__main__":
    main()
    sys.exit(0)
