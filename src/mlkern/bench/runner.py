"""Timing: :class:`Timer` (warm-up, inner count, repeats), round-robin and
single timing, and :class:`Runner`, which times the cases of one table at
its points for every dtype and thread count.

Method (as in the project's peer measurements): in-process timing with
``time.perf_counter_ns``; per peer the first call and a short warm-up are
thrown away, then an inner-loop count ``k`` is picked so that one repeat
lasts at least ~20 ms; at least 7 repeats; the median per-call time.  At
T=1 the peers of one case run round-robin (one repeat each in turn); at
T=2 each parallel peer is timed on its own, all mlkern work before all
torch work (parallel calls of two runtimes are never interleaved).
"""
import math
import sys
import time

import numpy as np

from .cases import Inputs, dtype_tag, fmt_n, new_outputs, point_args
from .peers import as_numpy, blas_threads, import_torch, prepare, set_torch_threads

_pc = time.perf_counter_ns


class Settings:
    def __init__(self, full=False, repeats=7):
        self.full = full
        self.repeats = max(1, repeats)
        if full:
            self.warm_ns = 50_000_000
            self.total_ns = 200_000_000
            self.repeat_ns = self.total_ns // 7
        else:
            self.warm_ns = 30_000_000
            self.total_ns = 140_000_000
            self.repeat_ns = 20_000_000


class Timer:
    """Times one zero-argument callable: warm-up, inner count k, repeats."""

    def __init__(self, f, settings, first_done=False):
        self.f, self.s = f, settings
        self.first_done = first_done
        self.k = 1
        self.R = settings.repeats
        self.samples = []

    def warm(self):
        f, pc = self.f, _pc
        if self.first_done and getattr(f, "first_ns", None) is not None:
            first = f.first_ns
        else:
            t0 = pc()
            f()                              # first call: thrown away
            first = pc() - t0
        # quick mode: the first call counts toward the warm-up time, and a
        # first call that alone lasts the warm-up time is the whole warm-up
        if not self.s.full and first >= self.s.warm_ns:
            per = float(first)
        else:
            budget = self.s.warm_ns - (0 if self.s.full else first)
            calls = 0
            t0 = pc()
            el = 0
            while calls == 0 or el < budget:
                f()
                calls += 1
                el = pc() - t0
            per = max(el / calls, 1.0)
        self.k = max(1, math.ceil(self.s.repeat_ns / per))
        self.R = max(self.s.repeats, math.ceil(self.s.total_ns / (self.k * per)))

    def once(self):
        f, k, pc = self.f, self.k, _pc
        r = range(k)
        t0 = pc()
        for _ in r:
            f()
        took = pc() - t0
        self.samples.append(took / k)
        if k > 1 and took > 4 * self.s.repeat_ns:
            # the calls got much slower than in the warm-up (a busy vCPU):
            # shorten the next repeats rather than run for seconds
            self.k = max(1, int(k * self.s.repeat_ns / took))

    @property
    def done(self):
        return len(self.samples) >= self.R

    def stats(self):
        a = np.asarray(self.samples, dtype=np.float64)
        q1, med, q3 = np.percentile(a, [25, 50, 75])
        return {"median_ns": float(med), "min_ns": float(a.min()), "q1_ns": float(q1),
                "q3_ns": float(q3), "repeats": int(a.size), "inner": int(self.k)}


def time_round_robin(funcs, settings, first_done=False):
    """Warm all, then one repeat of each in turn until each has its repeats."""
    timers = [Timer(f, settings, first_done) for f in funcs]
    for t in timers:
        t.warm()
    while not all(t.done for t in timers):
        for t in timers:
            if not t.done:
                t.once()
    return [t.stats() for t in timers]


def time_one(f, settings, first_done=False):
    """Warm-up and repeats of one callable; also the process CPU time / wall
    time over the repeats ("cpu_per_wall": ~T when the T threads kept their
    vCPUs, less when another process took one)."""
    t = Timer(f, settings, first_done)
    t.warm()
    c0, w0 = time.process_time_ns(), _pc()
    while not t.done:
        t.once()
    st = t.stats()
    st["cpu_per_wall"] = (time.process_time_ns() - c0) / max(1, _pc() - w0)
    return st


class Record(dict):
    """One measured (case, impl, dtype, point, threads)."""


def point_fields(point):
    """(fields before dtype, n, fields after n) of a record at ``point``."""
    if isinstance(point, int):
        return {}, point, {}
    if hasattr(point, "rows"):                               # RowShape
        return ({"rowwise": True, "shape": list(point.shape), "axis": point.ax, "spec": point.spec},
                point.n, {"rows": point.rows})
    return ({"layer": point.kind, "shape": list(point.dims), "spec": point.spec}, point.n, {})


def point_tag(point):
    """How a point shows in the progress line and the mismatch list."""
    return fmt_n(point) if isinstance(point, int) else point.spec


class Runner:
    """Times the ``cases`` of one :class:`~mlkern.bench.cases.Table` at
    ``points`` for every dtype and thread count.

    T=1: all runtimes of a case round-robin.  T>1: NumPy/SciPy are
    single-threaded, their T=1 time is carried over (``[1T]``; measured
    now if T=1 was not run) unless the table has ``parallel_numpy``; then
    the parallel runtimes one after the other (mlkern, torch[, numpy]),
    never interleaved.  Quick mode, a table with ``prune``: at n >= 1e6
    only the NumPy peers within 1.5x of the best one at the previous size.
    The table's copy roof runs at 1e7 always, first in its group and again
    after the cases."""

    def __init__(self, table, cases, points, dtypes, threads, settings, use_torch=True,
                 progress=True, stream=sys.stdout, roof_case=None):
        self.table = table
        self.cases, self.points, self.dtypes, self.threads = list(cases), list(points), dtypes, threads
        self.s = settings
        self.use_torch = use_torch and import_torch() is not None
        self.roof_case = roof_case if table.roof else None
        self.inputs = Inputs()
        self.records = []
        self.mismatches = []
        self.progress = progress
        self.stream = stream
        self._done = 0
        self._total = 0
        self._outs = {}
        self._np_seen = {}      # (case, dtype) -> {impl name: ns/el} at the last size
        self.pruned = []

    # -- helpers
    def _runtimes(self):
        return ("mlkern", "numpy", "torch") if self.use_torch else ("mlkern", "numpy")

    def _tick(self, what):
        self._done += 1
        if self.progress:
            sys.stderr.write(f"\r  [{self._done:3d}/{self._total}] {what:<48}")
            sys.stderr.flush()

    def _setup(self, case, impl, point, dtype, T=1, slot=0):
        ins = self.inputs.for_case(case, point, dtype)
        out = new_outputs(case, point, dtype, self._outs, slot)
        f = prepare(impl, ins, out, *point_args(point))
        t0 = _pc()
        res = f()                 # the first call: thrown away (timed for the warm-up)
        first_ns = _pc() - t0
        try:
            f.first_ns = first_ns
        except AttributeError:    # not a Python function: the warm-up times its own first call
            pass
        got = res if case.check_result else (as_numpy(res) if impl.allocates else out)
        chk = case.check(self.inputs, point, ins, got, impl)
        del res, got
        if not chk["ok"]:
            where = {"n": point} if isinstance(point, int) else {"shape": point.spec}
            self.mismatches.append({"case": case.name, "impl": impl.name, "dtype": dtype_tag(dtype),
                                    **where, "threads": T, **chk})
        return f, chk, out

    def _record(self, case, impl, point, dtype, T, st, chk, carried=False):
        itemsize = np.dtype(dtype).itemsize
        pre, n, post = point_fields(point)
        med = st["median_ns"]
        extra = {}
        fl = case.flops(point)
        if fl is not None:
            extra["gflops"] = fl / med
        rec = Record(function=case.name, kind=case.kind, **pre, dtype=dtype_tag(dtype), n=n, **post,
                     threads=T, impl=impl.name, label=impl.label, runtime=impl.runtime,
                     ns_per_el=med / n, gbps=case.nbytes(point, itemsize) / med, **extra,
                     ok=chk["ok"], err=chk["err"], carried_1T=carried,
                     allocates=impl.allocates, **st)
        self.records.append(rec)
        return rec

    # -- phases
    def _numpy_impls(self, case, point, dtype):
        """The numpy/scipy peers to time (see the class docstring on pruning)."""
        impls = case.impls(("numpy",))
        if not self.table.prune or not isinstance(point, int):
            return impls
        seen = self._np_seen.get((case.name, dtype_tag(dtype)))
        if self.s.full or point < 10 ** 6 or not seen or len(impls) < 2:
            return impls
        best = min(seen.values())
        keep = [i for i in impls if seen.get(i.name, 0.0) <= 1.5 * best]
        for i in impls:
            if i not in keep:
                self.pruned.append({"case": case.name, "dtype": dtype_tag(dtype), "n": point,
                                    "impl": i.name})
        return keep

    def _remember_numpy(self, case, dtype, impls, stats, point):
        if self.table.prune and isinstance(point, int):
            self._np_seen[(case.name, dtype_tag(dtype))] = {
                i.name: st["median_ns"] / point for i, st in zip(impls, stats) if i.runtime == "numpy"}

    def _impls(self, case, point, dtype, runtimes):
        out = []
        for rt in runtimes:
            out.extend(self._numpy_impls(case, point, dtype) if rt == "numpy" else case.impls((rt,)))
        return out

    def _t1_case(self, case, point, dtype):
        impls = self._impls(case, point, dtype, self._runtimes())
        prepared = [self._setup(case, i, point, dtype, 1, slot) for slot, i in enumerate(impls)]
        stats = time_round_robin([p[0] for p in prepared], self.s, first_done=True)
        for impl, (f, chk, out), st in zip(impls, prepared, stats):
            self._record(case, impl, point, dtype, 1, st, chk)
        self._remember_numpy(case, dtype, impls, stats, point)
        return impls, prepared, stats

    def _numpy_only(self, case, point, dtype):
        impls = self._numpy_impls(case, point, dtype)
        prepared = [self._setup(case, i, point, dtype, 1, slot) for slot, i in enumerate(impls)]
        stats = time_round_robin([p[0] for p in prepared], self.s, first_done=True)
        self._remember_numpy(case, dtype, impls, stats, point)
        return list(zip(impls, [p[1] for p in prepared], stats))

    def units(self):
        """(case, dtype, point) in run order: by point, then dtype, then case;
        the copy roof at 1e7 always, first in its group and after the cases."""
        if self.roof_case is None:
            return [(c, dtype, p) for p in self.points for dtype in self.dtypes for c in self.cases
                    if c.table is self.table and _fits(c, p)]
        big = 10 ** 7
        units = []
        sizes = list(self.points) + ([big] if big not in self.points else [])
        for n in sizes:
            for dtype in self.dtypes:
                if n == big:
                    units.append((self.roof_case, dtype, n))
                if n in self.points:
                    units.extend((c, dtype, n) for c in self.cases)
                if n == big and n in self.points and self.cases:
                    # the roof again after the cases: it is the best of both (drift)
                    units.append((self.roof_case, dtype, n))
        return units

    def run(self):
        import mlkern
        units = self.units()
        par = [T for T in self.threads if T != 1]
        blocks = (["mlkern"] + (["torch"] if self.use_torch else [])
                  + (["numpy"] if self.table.parallel_numpy else []))
        self._total = len(units) * ((1 in self.threads) + len(par) * len(blocks))
        carried = {}    # (case, dtype, point) -> [(impl, chk, stats)] of numpy at T=1
        with np.errstate(all="ignore"):
            # T=1: all runtimes of a case round-robin
            if 1 in self.threads:
                with mlkern.threads(1), (blas_threads(1) if self.table.parallel_numpy else _nothing()):
                    for case, dtype, point in units:
                        if self.use_torch:
                            set_torch_threads(1)
                        impls, prepared, stats = self._t1_case(case, point, dtype)
                        carried[(case.name, dtype_tag(dtype), point)] = [
                            (i, p[1], st) for i, p, st in zip(impls, prepared, stats)
                            if i.runtime == "numpy"]
                        self._tick(f"{case.name} {dtype_tag(dtype)} {point_tag(point)} T1")
            for T in par:
                if not self.table.parallel_numpy:
                    # numpy/scipy: single-threaded, T=1 time carried over (measured now if needed)
                    for case, dtype, point in units:
                        key = (case.name, dtype_tag(dtype), point)
                        if key not in carried:
                            carried[key] = self._numpy_only(case, point, dtype)
                        for impl, chk, st in carried[key]:
                            self._record(case, impl, point, dtype, T, st, chk, carried=True)
                # the parallel runtimes one after the other, never interleaved
                for rt in blocks:
                    for case, dtype, point in units:
                        for impl in (case.impls((rt,)) if rt != "numpy"
                                     else self._numpy_impls(case, point, dtype)):
                            if rt == "mlkern":
                                with mlkern.threads(T):
                                    f, chk, out = self._setup(case, impl, point, dtype, T)
                                    st = time_one(f, self.s, first_done=True)
                            elif rt == "torch":
                                set_torch_threads(T)
                                f, chk, out = self._setup(case, impl, point, dtype, T)
                                st = time_one(f, self.s, first_done=True)
                            else:
                                with blas_threads(T):
                                    f, chk, out = self._setup(case, impl, point, dtype, T)
                                    st = time_one(f, self.s, first_done=True)
                            self._record(case, impl, point, dtype, T, st, chk)
                            del f, out
                        self._tick(f"{case.name} {dtype_tag(dtype)} {point_tag(point)} T{T} {rt}")
        self.inputs.drop()
        self._outs.clear()
        if self.progress:
            sys.stderr.write("\r" + " " * 64 + "\r")
            sys.stderr.flush()
        mark_stalls(self.records)
        return self.records


def _fits(case, point):
    """A layer case runs at the layer points of its own kind."""
    kind = getattr(point, "kind", None)
    return kind is None or case.family == kind


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def mark_stalls(records):
    """Flag T>1 records with the signature of a stalled parallel region
    (a call of >= 1 ms that is > 1.25x slower than the same peer at T=1):
    on this 2-vCPU VM that is a worker waiting for a busy or descheduled
    vCPU (another process running, or two OpenMP runtimes interleaved)."""
    key = lambda r: (r["function"], r["impl"], r["dtype"], r["n"],  # noqa: E731
                     tuple(r.get("shape") or ()), r.get("axis"))
    t1 = {key(r): r["median_ns"] for r in records if r["threads"] == 1}
    for r in records:
        base = t1.get(key(r))
        slow = (base is not None and r["median_ns"] >= 1e6 and r["median_ns"] > 1.25 * base)
        # the T threads did not keep their vCPUs (another process ran)
        starved = r.get("cpu_per_wall", r["threads"]) < 0.75 * r["threads"]
        r["stalled"] = bool(r["threads"] > 1 and not r["carried_1T"] and (slow or starved))


def measure_overhead(dtypes, settings, use_torch, np_fallback):
    """Per-call time (ns) of a 16-element sigmoid with out=, T=1, round-robin;
    ``np_fallback``: the NumPy sigmoid peer used without SciPy."""
    import mlkern

    from .peers import sps, to_torch
    rows = []
    with np.errstate(all="ignore"), mlkern.threads(1):
        if use_torch:
            set_torch_threads(1)
        for dtype in dtypes:
            x = (3.0 * np.random.default_rng([16, 0]).standard_normal(16)).astype(dtype)
            outs = [np.empty_like(x) for _ in range(3)]
            funcs = [("mlkern.sigmoid(out=)", lambda: mlkern.sigmoid(x, out=outs[0]))]
            if sps is not None:
                funcs.append(("scipy.special.expit(out=)", lambda: sps.expit(x, out=outs[1])))
            else:
                funcs.append(("np 1/(1+exp(-x)) 4-pass", np_fallback.make((x,), outs[1])))
            if use_torch:
                tx, to = to_torch((x, outs[2]))
                tsig = import_torch().sigmoid
                funcs.append(("torch.sigmoid(out=)", lambda: tsig(tx, out=to)))
            stats = time_round_robin([f for _, f in funcs], settings)
            for (name, _), st in zip(funcs, stats):
                rows.append({"dtype": dtype_tag(dtype), "n": 16, "impl": name, **st})
    return rows
