"""mlkern on a 2-worker Dask cluster against single-process mlkern.

    python benchmarks/dask_bars.py [--elements 1e8] [--classes 1000] [--chunk-mb 50]
                                   [--repeat 5] [--shared-session] [--no-ideal] [--lean]
                                   [--json FILE]

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

What is timed (single process, the references):
  The same mlkern call on the same shape in this process's memory: on the
  whole array, and chunk by chunk (the cluster's chunks, every result kept,
  as the cluster keeps them: the same allocations, without the page faults
  of one 400 MB+ result); the faster of the two is kept, with
  ``mlkern.threads(1)`` for reference (a) and with as many threads as the
  cluster has workers (its cores) for reference (b).  And the ideal: as
  many independent single-threaded processes as workers (each in its own
  session, started before the cluster), each on its share of the chunks
  (its own data), all at once, timed from the first start to the last end:
  the cluster without Dask.  All the runs alternate, so that all see the
  same machine load; the best of ``--repeat`` runs of each is kept.

Figures, per function:
  * throughput per core, cluster = elements / s / workers, against
    (a) strict: single process on 1 thread, ratio = 1t s / (workers x
        cluster s): charges the cluster for the memory bandwidth that
        the workers share (a memory-bound kernel does not run twice as
        fast on 2 cores of this machine as on 1) and that any run on 2
        cores pays;
    (b) single process on the cluster's cores (workers threads), per
        core: ratio = that run's s / cluster s;
    the bar is >= 0.9; dask eff = ideal s / cluster s says what Dask
    itself costs;
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


# --lean: Dask's periodic work in every process turned down.  With the
# defaults an idle 2-worker LocalCluster took about 5 % of a core in its
# workers (the statistical profiler samples every task thread every 10 ms,
# the event loops tick every 20 ms, the system and memory monitors) and 3-4 %
# in the client process (scheduler: ticks, work stealing's balancing every
# 100 ms); with these settings about 0.6 % and 0.8 %.
LEAN = {"distributed.worker.profile.enabled": False,
        "distributed.scheduler.work-stealing": False,
        "distributed.admin.tick.interval": "1s",
        "distributed.admin.system-monitor.interval": "5s",
        "distributed.worker.memory.monitor-interval": "1s"}


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


def _chunk_work(name, xs, ys):
    if name == "softmax":
        return [mlkern.softmax(x) for x in xs]
    return [mlkern.cross_entropy_with_grad(x, y, reduction="sum") for x, y in zip(xs, ys)]


def _ideal_child(k, shape, nchunks, cmd, out):
    """One of the `workers` independent processes of the ideal reference:
    its own session, its share of the chunks (its own data), one thread;
    runs a function on every command and reports (start, end) on the
    system-wide monotonic clock."""
    os.setsid()                                             # as the workers
    rng = np.random.default_rng(100 + k)
    xs = [rng.standard_normal(shape, dtype=np.float32) for _ in range(nchunks)]
    ys = [rng.integers(0, shape[1], shape[0]) for _ in range(nchunks)]
    with mlkern.threads(1):
        for name in ("softmax", "cross_entropy_with_grad"):
            _chunk_work(name, xs, ys)                       # warm-up
        out.put("ready")
        while True:
            name = cmd.get()
            if name is None:
                return
            t0 = time.perf_counter()
            t1 = (_chunk_work(name, xs, ys), time.perf_counter())[1]   # the results kept
            out.put((t0, t1))


class _Ideal:
    """`workers` independent single-threaded processes, each on its share of
    the chunks at the same time: the cluster without Dask (the machine's
    shared memory bandwidth and caches, the page faults of fresh results)."""

    def __init__(self, W, shape, nchunks):
        import multiprocessing as mp
        ctx = mp.get_context("spawn")
        self.cmds = [ctx.Queue() for _ in range(W)]
        self.out = ctx.Queue()
        self.procs = [ctx.Process(target=_ideal_child, args=(k, shape, nchunks, self.cmds[k],
                                                             self.out), daemon=True)
                      for k in range(W)]
        for pr in self.procs:
            pr.start()
        for _ in self.procs:
            self.out.get(timeout=600)

    def run(self, name):
        for q in self.cmds:
            q.put(name)
        ts = [self.out.get(timeout=600) for _ in self.procs]
        return max(t1 for _, t1 in ts) - min(t0 for t0, _ in ts)

    def close(self):
        for q in self.cmds:
            q.put(None)
        for pr in self.procs:
            pr.join(30)


def _fmt_load():
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--elements", type=float, default=1e8)
    p.add_argument("--classes", type=int, default=1000)
    p.add_argument("--chunk-mb", type=float, default=50.0)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--shared-session", action="store_true",
                   help="leave the workers in this program's session (see above)")
    p.add_argument("--no-ideal", action="store_true",
                   help="skip the ideal reference (independent processes; memory: a second "
                        "copy of the data and results)")
    p.add_argument("--lean", action="store_true",
                   help="Dask's periodic background work turned down (see LEAN)")
    p.add_argument("--json", help="write the results to this file")
    a = p.parse_args(argv)
    import dask
    import dask.array as da
    import psutil
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
          f"load average {_fmt_load()}", flush=True)
    ideal = None if a.no_ideal else _Ideal(W, (chunk_rows, a.classes), nchunks // W)
    rng1 = np.random.default_rng(0)
    xn = rng1.standard_normal((rows, a.classes), dtype=np.float32)
    yn = rng1.integers(0, a.classes, rows)
    single = {"softmax": lambda: mlkern.softmax(xn),
              "cross_entropy_with_grad": lambda: mlkern.cross_entropy_with_grad(xn, yn)}
    rows_of = [slice(i, min(i + chunk_rows, rows)) for i in range(0, rows, chunk_rows)]
    # chunk by chunk, every result kept (as the cluster keeps them): the same
    # allocations as the workers', none of the whole array's (1.6 GB) page faults
    xs, ys = [xn[r] for r in rows_of], [yn[r] for r in rows_of]
    results = {}
    try:
        with dask.config.set(LEAN if a.lean else {}), local_cluster(W) as cluster, \
                Client(cluster, timeout=60) as client:
            results = _measure(a, W, n, rows, chunk_rows, client, da, psutil, wait, single, xs,
                               ys, ideal)
    finally:
        if ideal is not None:
            ideal.close()
    print(f"{'function':<24}{'cluster s':>10}{'1p 1t s':>9}{f'1p {W}t s':>9}{'ideal s':>9}"
          f"{'(a) 1t':>8}{f'(b) {W}t':>8}{'dask eff':>9}{'cpu eff':>8}"
          f"{'busy task/other':>16}{'peak R':>7}")
    for name, r in results.items():
        print(f"{name:<24}{r['cluster_s']:>10.3f}{r['single_1t_best_s']:>9.3f}"
              f"{r[f'single_{W}t_best_s']:>9.3f}{r['ideal_s']:>9.3f}"
              f"{r['ratio_a']:>8.2f}{r['ratio_b']:>8.2f}{r['dask_eff']:>9.2f}"
              f"{r['cpu_efficiency']:>8.2f}"
              f"{r['busy_task_threads']:>10d}/{r['busy_other_threads']:<5d}"
              f"{r['peak_running_task_threads']:>7d}")
    for name, r in results.items():
        sp = r["cluster_cpu_split"]
        print(f"  {name}: 1p 1t whole/chunked {r['single_1t_s']:.3f}/{r['chunked_1t_s']:.3f} s, "
              f"1p {W}t whole/chunked {r[f'single_{W}t_s']:.3f}/{r[f'chunked_{W}t_s']:.3f} s; "
              f"cluster CPU {r['cluster_cpu_s']:.3f} s (worker task threads "
              f"{sp['task_threads']:.3f}, worker other threads {sp['worker_other']:.3f}, "
              f"client + scheduler {sp['client']:.3f}); single process 1t CPU "
              f"{r['single_1t_cpu_s']:.3f} s; worker OS threads before/after "
              f"{r['worker_os_threads'][0]}/{r['worker_os_threads'][1]}, of which not Python "
              f"threads {r['worker_native_threads'][0]}/{r['worker_native_threads'][1]}; "
              f"graph {r['graph_tasks']} tasks (optimised)")
    print(f"Per core, cluster = elements / s / {W} workers.  (a) strict: against single-process "
          f"mlkern on 1 thread (the faster of whole array and chunk by chunk), ratio = 1p 1t s / "
          f"({W} x cluster s).  (b) against single-process mlkern on the cluster's {W} cores "
          f"({W} threads, the faster of whole and chunked) per core, ratio = 1p {W}t s / cluster "
          f"s: both share the machine's memory bandwidth.  The bar is >= 0.9.  ideal = {W} "
          f"independent 1-thread processes on their shares at once (no Dask): dask eff = ideal "
          f"s / cluster s.  cpu eff = elements per CPU-second, cluster / single process 1t.  "
          f"busy task/other: worker task threads / other worker threads with CPU > 20 % of the "
          f"wall time; peak R: most task threads running at once (<= cores: {os.cpu_count()}).  "
          f"Sessions: {'shared' if a.shared_session else 'one per worker'}.  Dask config: "
          f"{'lean (LEAN)' if a.lean else 'default'}.  "
          f"load average {_fmt_load()}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"rows": rows, "classes": a.classes, "chunk_rows": chunk_rows,
                       "workers": W, "shared_session": a.shared_session, "lean": a.lean,
                       "loadavg": os.getloadavg(), "results": results}, f, indent=2)
    return results


def _measure(a, W, n, rows, chunk_rows, client, da, psutil, wait, single, xs, ys, ideal):
    import dask
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
    results = {}
    for name in cluster_fn:
        r = dict.fromkeys(["cluster_s", "cluster_cpu_s", "single_1t_s", "single_1t_cpu_s",
                           "chunked_1t_s", "chunked_1t_cpu_s", f"single_{W}t_s",
                           f"chunked_{W}t_s", "ideal_s"], np.inf)
        g = cluster_fn[name]()
        keys = dask.base.collections_to_expr(g, optimize_graph=True).optimize().__dask_graph__()
        r["graph_tasks"] = sum(1 for k in keys if not (isinstance(k, tuple)
                                                       and k[0] in (x.name, y.name)))
        wait(client.persist(cluster_fn[name]()))          # warm-ups
        with mlkern.threads(1):
            single[name]()
        nthreads0 = [len(psutil.Process(pid).threads()) for pid in pids]
        native0 = list(client.run(_native_threads).values())
        busy_wall, used = 0.0, {}
        split = None
        peak = 0

        def timed(f, threads):
            with mlkern.threads(threads):
                c0, t0 = _process_cpu(), time.perf_counter()
                res = f()
                t, c = time.perf_counter() - t0, _process_cpu() - c0
                del res
            return t, c

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
            for key, f, th in [("single_1t", single[name], 1),
                               ("chunked_1t", lambda: _chunk_work(name, xs, ys), 1),
                               (f"single_{W}t", single[name], W),
                               (f"chunked_{W}t", lambda: _chunk_work(name, xs, ys), W)]:
                t, c = timed(f, th)
                if t < r[f"{key}_s"]:
                    r[f"{key}_s"] = t
                    if f"{key}_cpu_s" in r:
                        r[f"{key}_cpu_s"] = c
            if ideal is not None:
                r["ideal_s"] = min(r["ideal_s"], ideal.run(name))
        r["cluster_cpu_split"] = split
        # busy: CPU time > 20 % of the cluster runs' wall time
        r["busy_task_threads"] = int(sum(v > 0.2 * busy_wall for k, v in used.items()
                                         if k in tids))
        r["busy_other_threads"] = int(sum(v > 0.2 * busy_wall for k, v in used.items()
                                          if k not in tids))
        r["peak_running_task_threads"] = peak
        r["worker_os_threads"] = [nthreads0, [len(psutil.Process(pid).threads())
                                              for pid in pids]]
        r["worker_native_threads"] = [native0, list(client.run(_native_threads).values())]
        r["cluster_per_core"] = n / r["cluster_s"] / W
        # (a): the faster of the whole-array and chunk-by-chunk runs on 1 thread
        r["single_1t_best_s"] = min(r["single_1t_s"], r["chunked_1t_s"])
        best_cpu = (r["single_1t_cpu_s"] if r["single_1t_s"] <= r["chunked_1t_s"]
                    else r["chunked_1t_cpu_s"])
        r["single_per_core"] = n / r["single_1t_best_s"]
        r["ratio_a"] = r["cluster_per_core"] / r["single_per_core"]
        # (b): the faster of the two on W threads, per core
        r[f"single_{W}t_best_s"] = min(r[f"single_{W}t_s"], r[f"chunked_{W}t_s"])
        r["ratio_b"] = r[f"single_{W}t_best_s"] / r["cluster_s"]
        r["dask_eff"] = r["ideal_s"] / r["cluster_s"] if np.isfinite(r["ideal_s"]) else np.nan
        r["cpu_efficiency"] = best_cpu / r["cluster_cpu_s"]
        results[name] = r
    return results


if __name__ == "__main__":
    main()
    sys.exit(0)
