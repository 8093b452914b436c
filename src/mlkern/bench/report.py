"""The printed report: the per-call overhead line, then one table per
:class:`~mlkern.bench.cases.Table` that ran (elementwise with the memory
roof, row-wise, cross-entropy, layers), all drawn by :func:`report_table`:
per function x point x dtype x threads, mlkern's time, the best NumPy/SciPy
and torch peer and the speedups.
"""
import sys

import numpy as np

from .cases import DTYPES, ROOF_BYTES, fmt_n


def _best(recs):
    """Fastest record, preferring those that passed the check."""
    if not recs:
        return None
    good = [r for r in recs if r["ok"]]
    return min(good or recs, key=lambda r: r["median_ns"])


def _fmt(v, width=7):
    if v is None:
        return "-".rjust(width)
    if v >= 100:
        s = f"{v:.0f}"
    elif v >= 10:
        s = f"{v:.1f}"
    elif v >= 1:
        s = f"{v:.2f}"
    else:
        s = f"{v:.3f}"
    return s.rjust(width)


def _ratio(peer, mine):
    if peer is None or mine is None:
        return "-"
    return f"{peer['median_ns'] / mine['median_ns']:.2f}x"


def _bang(r):
    return ("[!]" if r and not r["ok"] else "") + ("[s]" if r and r.get("stalled") else "")


def _big(r):
    return r["n"] * np.dtype(DTYPES[r["dtype"]]).itemsize >= ROOF_BYTES


def roofs(records):
    """(dtype, threads) -> (best copy GB/s, its impl name), from copy rows at n >= roof size."""
    out = {}
    for r in records:
        if r["function"] != "copy" or not _big(r):
            continue
        if not r["ok"] or r.get("stalled"):
            continue
        key = (r["dtype"], r["threads"])
        if key not in out or r["gbps"] > out[key][0]:
            out[key] = (r["gbps"], r["impl"] + (" [1T]" if r["carried_1T"] else ""))
    return out


def report_overhead(overhead, stream=sys.stdout):
    if overhead:
        print("", file=stream)
        print("Per-call overhead, 16 elements, T=1 (median ns per call):", file=stream)
        for dt in dict.fromkeys(o["dtype"] for o in overhead):
            parts = [f"{o['impl']} {o['median_ns']:.0f} ns" for o in overhead if o["dtype"] == dt]
            print(f"  {dt}: " + ";  ".join(parts), file=stream)


# ------------------------------------------------------------------ table layouts
class Layout:
    """How one table prints: its key columns, mlkern's columns, the peer
    columns' widths and what a missing peer says."""
    np_w, torch_w, none_np, unit = 33, 28, "(none without scipy)", "ns/el"

    def key(self, r):
        raise NotImplementedError

    def sort(self, key, order, points):
        raise NotImplementedError

    def time(self, r):
        return r["ns_per_el"]

    def np_name(self, r):
        return r["label"] + (" [1T]" if r["carried_1T"] else "") + (" [!]" if not r["ok"] else "")

    def torch_pick(self, rows):
        return _best([r for r in rows if r["runtime"] == "torch"])


class ElementwiseLayout(Layout):
    def __init__(self, records):
        self.rf = roofs(records)

    def header(self):
        return f"{'function':<26}{'dtype':<6}{'n':>5}{'T':>3} {'mlkern':>7} {'GB/s':>6} {'%roof':>5} |"

    def key(self, r):
        return (r["function"], r["dtype"], r["n"], r["threads"])

    def sort(self, k, order, points):
        return (order.get(k[0], 99), k[1], k[2], k[3])

    def lead(self, key, rows, mine):
        fn, dt, n, T = key
        roof = ""
        if mine and _big(mine) and (dt, T) in self.rf:
            roof = f"{100 * mine['gbps'] / self.rf[(dt, T)][0]:.0f}%"
        gbps = f"{mine['gbps']:.1f}" if mine else "-"
        return (f"{fn:<26}{dt:<6}{fmt_n(n):>5}{T:>3} "
                f"{_fmt(mine and self.time(mine))}{_bang(mine)} {gbps:>6} {roof:>5} |")

    def torch_name(self, r):
        return r["label"] + (" [!]" if not r["ok"] else "") + (" [s]" if r.get("stalled") else "")


class RowLayout(Layout):
    np_w, torch_w, none_np = 40, 40, "(none)"

    def header(self):
        return (f"{'function':<26}{'shape':>13}{'ax':>3} {'dtype':<5}{'T':>2} {'mlkern':>7}{'':<6} "
                f"{'GB/s':>6} |")

    def key(self, r):
        return (r["function"], r["spec"], r["dtype"], r["threads"])

    def sort(self, k, order, points):
        return (order.get(k[0], 99), points.get(k[1], 99), k[2], k[3])

    def _gb(self, r):
        if not r:
            return "-"
        return f"{r['gbps']:.1f}" if r["gbps"] >= 1 else f"{r['gbps']:.2f}"

    def lead(self, key, rows, mine):
        fn, spec, dt, T = key
        r0 = rows[0]
        return (f"{fn:<26}{'x'.join(map(str, r0['shape'])):>13}{r0['axis']:>3} {dt:<5}{T:>2} "
                f"{_fmt(mine and self.time(mine))}{_bang(mine):<6} {self._gb(mine):>6} |")

    def torch_name(self, r):
        return r["label"] + (" " + _bang(r) if _bang(r) else "")

    def torch_pick(self, rows):
        tr = [r for r in rows if r["runtime"] == "torch"]
        return _best([r for r in tr if not r.get("stalled")] or tr)


class LayerLayout(RowLayout):
    np_w, torch_w, none_np, unit = 36, 36, "(none)", "us"

    def header(self):
        return (f"{'function':<22}{'shape':>16} {'dtype':<5}{'T':>2} {'mlkern':>8}{'':<6} "
                f"{'GF/s|GB/s':>9} |")

    def time(self, r):
        return r["median_ns"] / 1e3

    def lead(self, key, rows, mine):
        fn, spec, dt, T = key
        rate = "-"
        if mine:
            v = mine.get("gflops") or mine["gbps"]
            rate = f"{v:.1f}" + ("GF" if mine.get("gflops") else "GB")
        return (f"{fn:<22}{spec:>16} {dt:<5}{T:>2} {_fmt(mine and self.time(mine), 8)}{_bang(mine):<6} "
                f"{rate:>9} |")


LAYOUTS = {"elementwise": ElementwiseLayout, "rowwise": RowLayout, "cross_entropy": RowLayout,
           "layers": LayerLayout, "optim": ElementwiseLayout}


def report_table(table, records, mismatches, points, use_torch, *, case_order, pruned=(),
                 memory_bound=(), stream=sys.stdout):
    """Print one table (and its notes and value mismatches)."""
    p = lambda *a: print(*a, file=stream)  # noqa: E731
    layout = LAYOUTS[table.name]
    lay = layout(records) if layout is ElementwiseLayout else layout()
    by = {}
    for r in records:
        by.setdefault(lay.key(r), []).append(r)
    p("")
    if table.name == "elementwise":
        _roof_lines(p, records, by)
        p("")
        p("ns/el = median time per element; speedup = peer time / mlkern time (> 1: mlkern faster)")
        p("[1T] numpy/scipy T=1 time carried over (single-threaded); [a] peer allocates; "
          "[!] failed the value check;")
        p("[s] T=2 time unusable: >= 1 ms and > 1.25x slower than at T=1, or the process got < 0.75*T "
          "CPUs while timing (another process held a vCPU)")
    else:
        if table.title:
            p(table.title)
        elif table.name == "layers":
            p("Layers: mlkern = median time per call in us; GF/s = 2*M*K*N flops (x3 with the backward) "
              "/ time; GB/s (embedding) = ideal bytes / time;")
            p("  dense (M x K x N) = relu(x W^T + b), x (M, K), W (N, K); embedding (V x D / tokens); "
              "NumPy's GEMM at T threads; [gemm] the bare GEMM (no bias, no relu);")
        else:
            p("Row-wise functions, reduced over axis 'ax': ns/el = median time / elements of the input; "
              "GB/s (mlkern's) = ideal bytes / median time")
            p("  (softmax, log_softmax 2*N*itemsize; logsumexp (N + rows)*itemsize; argmax N*itemsize + 8*rows; "
              "*_backward 3*N*itemsize; the peers' GB/s are in --json);")
        p("  speedup = peer time / mlkern time (> 1: mlkern faster); [1T] single-threaded peer's T=1 time; "
          "[a] allocates; [!] value check failed; [s] stalled")
    hdr = lay.header() + f" {'numpy/scipy best':<{lay.np_w}}{lay.unit:>7} {'speedup':>8}"
    if use_torch:
        hdr += f" | {'torch':<{lay.torch_w}}{lay.unit:>7} {'speedup':>8}"
    p(hdr)
    p("-" * len(hdr))
    order = {name: i for i, name in enumerate(case_order)}
    porder = {getattr(s, "spec", s): i for i, s in enumerate(points)}
    keys = sorted((k for k in by if k[0] != "copy"), key=lambda k: lay.sort(k, order, porder))
    prev = None
    for key in keys:
        rows = by[key]
        mine = _best([r for r in rows if r["runtime"] == "mlkern"])
        npb = _best([r for r in rows if r["runtime"] == "numpy"])
        tb = lay.torch_pick(rows)
        if prev is not None and prev != key[0]:
            p("")
        prev = key[0]
        line = lay.lead(key, rows, mine)
        if npb:
            name = lay.np_name(npb)
            line += f" {name[:lay.np_w]:<{lay.np_w}}{_fmt(lay.time(npb))} {_ratio(npb, mine):>8}"
        else:
            line += f" {lay.none_np:<{lay.np_w}}{'-':>7} {'-':>8}"
        if use_torch:
            if tb:
                name = lay.torch_name(tb)
                line += f" | {name[:lay.torch_w]:<{lay.torch_w}}{_fmt(lay.time(tb))} {_ratio(tb, mine):>8}"
            else:
                line += f" | {'-':<{lay.torch_w}}{'-':>7} {'-':>8}"
        p(line)

    if table.name == "elementwise":
        _roof_share(p, lay, by, keys, memory_bound)
        if pruned:
            p("")
            p("Quick mode: numpy/scipy peers not re-timed at large n (> 1.5x the best one at the "
              "previous size):")
            p("  " + "; ".join(f"{q['case']} {q['dtype']} {fmt_n(q['n'])}: {q['impl']}" for q in pruned))
    elif not any(r["runtime"] == "mlkern" for r in records) and records:
        p("  (mlkern has none of these functions in this build: peers only)")
    if mismatches:
        p("")
        if table.name == "elementwise":
            p("VALUE MISMATCHES (max abs err / max(1, max|ref|) against the float64 reference):")
        else:
            p(f"{ {'layers': 'LAYER', 'optim': 'OPTIMISER'}.get(table.name, 'ROW-WISE')} VALUE MISMATCHES (max abs err / "
              "max(1, max|ref|) against the float64 reference; argmax: fraction of rows wrong):")
        for m in mismatches:
            at = f"n={fmt_n(m['n'])}" if "n" in m else m["shape"]
            p(f"  {m['case']} {m['dtype']} {at} T={m['threads']} {m['impl']}: err {m['err']:.3g} > "
              f"{m['tol']:g} at {m.get('where', '')}: got {m['got']!r}, ref {m['ref']!r}")


def _roof_lines(p, records, by):
    p("Memory roof: copy at 1e7 elements, GB/s (bytes read + written / median time; "
      "best of the runs before and after the cases):")
    for dt in ("f32", "f64"):
        for T in sorted({r["threads"] for r in records}):
            rows = by.get(("copy", dt, 10 ** 7, T))
            if not rows:
                continue
            best = {}
            for r in rows:            # measured before and after the cases: keep the best
                if r["impl"] not in best or r["gbps"] > best[r["impl"]]["gbps"]:
                    best[r["impl"]] = r
            parts = []
            for r in best.values():
                tag = " [1T]" if r["carried_1T"] else ""
                bad = (" [!]" if not r["ok"] else "") + (" [s]" if r.get("stalled") else "")
                parts.append(f"{r['impl']}{tag} {r['gbps']:.1f}{bad}")
            p(f"  {dt} T={T}: " + ";  ".join(parts))


def _roof_share(p, lay, by, keys, memory_bound):
    """Memory-bound kernels against the roof."""
    lines = []
    for key in keys:
        fn, dt, n, T = key
        if fn not in memory_bound or (dt, T) not in lay.rf:
            continue
        mine = _best([r for r in by[key] if r["runtime"] == "mlkern"])
        tb = _best([r for r in by[key] if r["runtime"] == "torch"])
        if mine is None or not _big(mine):
            continue
        roof_gbps, roof_name = lay.rf[(dt, T)]
        s = (f"  {fn:<21}{dt:<5}{fmt_n(n):>5} T={T}: mlkern {mine['gbps']:5.1f} GB/s = "
             f"{100 * mine['gbps'] / roof_gbps:3.0f}% of {roof_gbps:.1f} ({roof_name})")
        if tb:
            s += f"; torch {tb['gbps']:.1f} GB/s = {100 * tb['gbps'] / roof_gbps:.0f}%"
        lines.append(s)
    if lines:
        p("")
        p("Memory-bound kernels, % of the copy roof (same dtype and threads):")
        for s in lines:
            p(s)
