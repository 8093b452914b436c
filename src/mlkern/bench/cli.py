"""``python -m mlkern bench``: the options, the run and the JSON file."""
import argparse
import io
import json
import os
import platform
import sys
import time

import numpy as np

from . import peers
from .cases import (DTYPES, LOSS_SHAPES, LOSS_SHAPES_SMOKE, ROW_SHAPES, ROW_SHAPES_SMOKE, TABLES,
                    FAMILIES, all_cases, dtype_tag, fmt_n, parse_shapes,
                    parse_sizes, select)
from .plot import PLOT_PEERS, _require_matplotlib, plot
from .report import report_overhead, report_table, roofs
from .runner import Runner, Settings, measure_overhead


def _loadavg():
    try:
        return os.getloadavg()
    except (OSError, AttributeError):
        return None


def machine_info(use_torch):
    import mlkern
    buf = io.StringIO()
    cfg = mlkern.show_config(file=buf)
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    tm = peers.torch()
    info = {"mlkern": cfg, "show_config_text": buf.getvalue(), "cpu": cpu,
            "cpu_count": os.cpu_count(), "python": platform.python_version(),
            "numpy": np.__version__, "scipy": peers.scipy.__version__ if peers.scipy else None,
            "torch": tm.__version__ if (use_torch and tm) else None,
            "torch_error": peers.TORCH_ERROR, "loadavg_start": _loadavg(),
            "env": {k: os.environ[k] for k in ("OMP_NUM_THREADS", "MLKERN_CPU", "OPENBLAS_CORETYPE",
                                                "OPENBLAS_L2_SIZE", "OMP_WAIT_POLICY")
                    if k in os.environ}}
    return info


def build_parser(parser=None):
    p = parser or argparse.ArgumentParser(prog="python -m mlkern bench",
                                          description="Time mlkern against NumPy/SciPy and PyTorch.")
    losses = [c.name for c in FAMILIES["losses"].cases]
    layers = [c.name for c in FAMILIES["layers"].cases]
    names = [c.family for c in all_cases() if c.group in ("activations", "rowwise")]
    p.add_argument("--sizes", help="comma list of element counts (default: 1e5,1e7 quick; "
                                   "1e3,1e5,1e7 full)")
    p.add_argument("--dtypes", default="f32,f64", help="comma list of f32,f64 (default: both)")
    p.add_argument("--threads", default="1,2", help="comma list of thread counts (default: 1,2)")
    p.add_argument("--functions", help="comma list: a name (sigmoid = sigmoid and "
                   "sigmoid_backward), <name>_forward, <name>_backward, 'forward', 'backward', "
                   "'elementwise', 'rowwise', 'losses', 'layers' (default: all); 'optim' (the Adam "
                   f"step, only when named). Names: {', '.join(dict.fromkeys(names))}; "
                   f"losses: {', '.join(losses)}; layers (when mlkern.layers exists): "
                   f"{', '.join(layers)}")
    p.add_argument("--shapes", help="row-wise (and cross-entropy) shapes, comma list of AxB[xC][:axis] "
                   "(reduce over the last axis unless ':axis'), or 'default' / 'smoke'. Default: "
                   + ",".join(s.spec for s in ROW_SHAPES) + " (cross-entropy "
                   + ",".join(s.spec for s in LOSS_SHAPES) + ") when the largest --sizes value is "
                   ">= 1e6, else the smoke set " + ",".join(s.spec for s in ROW_SHAPES_SMOKE)
                   + " (" + ",".join(s.spec for s in LOSS_SHAPES_SMOKE) + ")")
    p.add_argument("--repeats", type=int, default=7, help="minimum repeats per peer (default 7)")
    p.add_argument("--json", metavar="FILE", help="write every measurement (median, min, quartiles) here")
    p.add_argument("--plot", metavar="FILE", help="draw speed-up vs size per function into FILE (PNG; "
                   "needs matplotlib: pip install 'mlkern[plot]')")
    p.add_argument("--plot-peer", choices=PLOT_PEERS, default="best",
                   help="the peer of the --plot speed-up: the fastest of all (default), NumPy/SciPy "
                        "only, or torch only")
    p.add_argument("--from-json", metavar="FILE", help="do not measure: read the records of an "
                   "earlier --json FILE (for --plot)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", dest="full", action="store_false",
                      help="(default) ~20 ms per repeat, sizes 1e5,1e7")
    mode.add_argument("--full", dest="full", action="store_true",
                      help="the peer-table method: >= 0.2 s per peer, sizes 1e3,1e5,1e7")
    p.add_argument("--no-torch", action="store_true", help="do not import or time PyTorch")
    p.add_argument("--no-overhead", action="store_true", help="skip the per-call overhead line")
    p.add_argument("--no-progress", action="store_true", help="no progress line on stderr")
    p.set_defaults(full=False)
    return p


def _options(args):
    """(sizes, dtypes, threads, cases by table, unavailable families, shapes
    by table) from the parsed arguments; ValueError on a bad one."""
    sizes = parse_sizes(args.sizes or ("1e3,1e5,1e7" if args.full else "1e5,1e7"))
    dtypes = []
    for t in args.dtypes.split(","):
        t = t.strip()
        if t:
            if t not in DTYPES:
                raise ValueError(f"--dtypes: unknown {t!r}; use f32, f64")
            dtypes.append(np.dtype(DTYPES[t]))
    threads = sorted({int(t) for t in args.threads.split(",") if t.strip()})
    if not threads or min(threads) < 1:
        raise ValueError("--threads: thread counts must be >= 1")
    cases, unavailable = select(args.functions)
    shapes = parse_shapes(args.shapes) if getattr(args, "shapes", None) else None
    by_table = {t: [c for c in cases if c.table is t] for t in TABLES}
    points = {t: t.points(sizes, shapes) for t in TABLES}
    if any(by_table[t] for t in TABLES if t.name in ("rowwise", "cross_entropy")) and shapes == []:
        raise ValueError("--shapes: no shape given")
    return sizes, dtypes, threads, by_table, unavailable, points


def main(argv=None, args=None):
    if args is None:
        args = build_parser().parse_args(argv)
    try:
        sizes, dtypes, threads, by_table, unavailable, points = _options(args)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if getattr(args, "plot", None):
        try:
            _require_matplotlib()            # before a long run, not after it
        except ImportError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    if getattr(args, "from_json", None):
        if not getattr(args, "plot", None):
            print("error: --from-json only redraws: give --plot FILE", file=sys.stderr)
            return 2
        with open(args.from_json) as fh:
            payload = json.load(fh)
        plot(payload.get("records", []) + payload.get("rowwise_records", [])
             + payload.get("layer_records", []) + payload.get("optim_records", []), args.plot,
             peer=args.plot_peer)
        print(f"wrote {args.plot}")
        return 0
    use_torch = not args.no_torch and peers.import_torch() is not None
    settings = Settings(full=args.full, repeats=args.repeats)
    tables = [t for t in TABLES if by_table[t]]
    el, rw, ce = (by_table[t] for t in TABLES[:3])

    info = machine_info(use_torch)
    t_start = time.perf_counter()
    print("mlkern benchmark" + (" (full)" if args.full else " (quick)"))
    sys.stdout.write(info["show_config_text"])
    print(f"  CPU: {info['cpu']}, {info['cpu_count']} CPUs; Python {info['python']}; "
          f"numpy {info['numpy']}; scipy {info['scipy'] or 'not installed'}; torch "
          + (info["torch"] if use_torch else ("disabled" if args.no_torch else "not importable")))
    print((f"  sizes {','.join(fmt_n(n) for n in sizes)}" if el else "  no elementwise functions")
          + "; dtypes "
          f"{','.join(dtype_tag(d) for d in dtypes)}; threads {','.join(map(str, threads))}; "
          f">= {settings.repeats} repeats of >= {settings.repeat_ns / 1e6:.0f} ms, median")
    if rw:
        print(f"  row-wise: {','.join(c.name for c in rw)} on shapes "
              f"{','.join(s.spec for s in points[TABLES[1]])} (':k' = reduced over axis k, else the last)")
    if ce:
        print(f"  losses: {','.join(c.name for c in ce)} on shapes "
              f"{','.join(s.spec for s in points[TABLES[2]])}")
    lay = by_table[TABLES[3]]
    if lay:
        print(f"  layers: {','.join(c.name for c in lay)} at "
              f"{','.join(s.spec for s in points[TABLES[3]])} (dense MxKxN, embedding VxD/tokens)")
    if by_table[TABLES[4]]:
        print(f"  optim: {','.join(c.name for c in by_table[TABLES[4]])} at sizes "
              f"{','.join(fmt_n(n) for n in sizes)}")
    for name, why in unavailable:
        print(f"  {name}: not run: {why}")
    load = _loadavg()
    if load is not None:
        busy = load[0] > 0.5
        print(f"  load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
              + ("  WARNING: other processes are running; timings (T=2 above all) are unreliable"
                 if busy else ""))
    sys.stdout.flush()

    overhead = ([] if args.no_overhead else
                measure_overhead(dtypes, settings, use_torch, _overhead_np_sigmoid()))
    runners = {t: Runner(t, by_table[t], points[t], dtypes, threads, settings, use_torch=use_torch,
                         progress=not args.no_progress, roof_case=t.roof_case)
               for t in tables}
    results = {}
    with peers.blas_threads(1):   # np.dot (the MSE peer): single-threaded like the rest of NumPy
        for t in tables:
            if not t.parallel_numpy:
                results[t] = runners[t].run()
    for t in tables:              # OpenBLAS at the runner's thread counts
        if t.parallel_numpy:
            results[t] = runners[t].run()
    report_overhead(overhead)
    order = [c.name for c in all_cases()]
    mb = [c.name for c in all_cases() if c.memory_bound]
    for t in tables:
        report_table(t, results[t], runners[t].mismatches, points[t], use_torch, case_order=order,
                     pruned=runners[t].pruned, memory_bound=mb)
    elapsed = time.perf_counter() - t_start
    print(f"\n({elapsed:.0f} s)")
    records = results.get(TABLES[0], [])
    row_records = results.get(TABLES[1], []) + results.get(TABLES[2], [])
    layer_records = results.get(TABLES[3], [])
    mismatch = {t: (runners[t].mismatches if t in runners else []) for t in TABLES}
    if args.json:
        payload = {"machine": {k: v for k, v in info.items() if k != "show_config_text"},
                   "settings": {"sizes": sizes, "dtypes": [dtype_tag(d) for d in dtypes],
                                "functions": [c.name for t in TABLES for c in by_table[t]],
                                "shapes": [s.spec for s in points[TABLES[1]]] if rw else [],
                                "loss_shapes": [s.spec for s in points[TABLES[2]]] if ce else [],
                                "threads": threads, "full": args.full, "repeats": settings.repeats,
                                "repeat_ns": settings.repeat_ns, "total_ns": settings.total_ns,
                                "warm_ns": settings.warm_ns},
                   "overhead": overhead, "records": records, "mismatches": mismatch[TABLES[0]],
                   "rowwise_records": row_records,
                   "rowwise_mismatches": mismatch[TABLES[1]] + mismatch[TABLES[2]],
                   "pruned_numpy_peers": runners[TABLES[0]].pruned if TABLES[0] in runners else [],
                   "roofs": {f"{d}-T{t}": {"gbps": v[0], "impl": v[1]}
                             for (d, t), v in roofs(records).items()},
                   "elapsed_s": elapsed}
        if lay:
            payload["settings"]["layer_shapes"] = [s.spec for s in points[TABLES[3]]]
        for t in TABLES[3:]:          # tables newer than the JSON format: only when they ran
            if by_table[t]:
                payload[t.json_key] = results[t]
                payload[t.json_key.replace("records", "mismatches")] = mismatch[t]
        with open(args.json, "w") as fh:
            json.dump(payload, fh, indent=1)
        print(f"wrote {args.json}")
    if getattr(args, "plot", None):
        try:
            plot(records + row_records + layer_records + results.get(TABLES[4], []), args.plot,
                 peer=args.plot_peer)
            print(f"wrote {args.plot}")
        except ValueError as e:
            print(f"error: --plot: {e}", file=sys.stderr)
            return 2
    return 1 if any(r.mismatches for r in runners.values()) else 0


def _overhead_np_sigmoid():
    from .families.activations import OVERHEAD_NP_SIGMOID
    return OVERHEAD_NP_SIGMOID
