"""``--plot``: speed-up against size per function, one panel per dtype x
threads and a row of panels per table (elementwise, row-wise / losses,
layers), from the records of a run or a saved ``--json`` file."""
PLOT_PEERS = ("best", "numpy", "torch")
FAMILY_ROWS = ("elementwise", "row-wise / losses", "layers")


def _require_matplotlib():
    """Import matplotlib's Agg canvas (no display needed), or raise an
    ImportError that says how to get it."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as e:
        raise ImportError("--plot needs matplotlib, which is not installed: "
                          "pip install 'mlkern[plot]' (or pip install 'matplotlib>=3.5')") from e
    return Figure, FigureCanvasAgg


def speedups(records, peer="best"):
    """{(family, dtype, threads): {line label: [(n, peer time / mlkern time), ...]}}.

    family is "elementwise", "row-wise / losses" or "layers"; the line label is the
    function (with " (axis k)" for a reduction over another axis than the
    last).  The peer is the fastest NumPy/SciPy or torch record of the same
    function, size (shape), dtype and threads that passed its check
    (``peer="numpy"`` / ``"torch"``: only that runtime); NumPy's [1T] rows
    count at T>1.  The copy roof and records flagged ``stalled`` (a T>1
    call that waited for a busy vCPU, :func:`mark_stalls`) are left out."""
    if peer not in PLOT_PEERS:
        raise ValueError(f"peer: expected one of {PLOT_PEERS}, got {peer!r}")
    cells = {}
    for r in records:
        if r["function"] == "copy":
            continue
        shape = tuple(r.get("shape") or ())
        key = (r["function"], r["dtype"], r["threads"], r["n"], shape, r.get("axis"))
        cells.setdefault(key, []).append(r)
    out = {}
    for (fn, dt, T, n, shape, axis), recs in cells.items():
        recs = [r for r in recs if not r.get("stalled")]      # see mark_stalls: not a speed
        mine = [r for r in recs if r["runtime"] == "mlkern"]
        peers = [r for r in recs if r["runtime"] != "mlkern" and r.get("ok", True)
                 and (peer == "best" or r["runtime"] == peer)]
        if not mine or not peers:
            continue
        best = min(peers, key=lambda r: r["median_ns"])
        family = "layers" if mine[0].get("layer") else ("row-wise / losses" if shape else "elementwise")
        nd = len(shape)
        label = fn if axis is None or axis in (-1, nd - 1) else f"{fn} (axis {axis})"
        out.setdefault((family, dt, T), {}).setdefault(label, []).append(
            (n, best["median_ns"] / mine[0]["median_ns"]))
    for lines in out.values():
        for pts in lines.values():
            pts.sort()
    return out


def plot(records, path, peer="best", title=None):
    """Draw speed-up vs size: one panel per dtype x threads (a second row of
    panels for the row-wise and loss functions), one line per function,
    log-log axes, y = peer time / mlkern time (above 1: mlkern is faster),
    a line at 1.0.  Writes ``path`` (the format follows its extension, PNG
    by default) and returns it."""
    Figure, FigureCanvasAgg = _require_matplotlib()
    data = speedups(records, peer)
    if not data:
        raise ValueError("nothing to plot: no size has both an mlkern and a peer measurement")
    families = [f for f in FAMILY_ROWS if any(k[0] == f for k in data)]
    cols = sorted({(k[1], k[2]) for k in data}, key=lambda c: (c[1], c[0]))
    fig = Figure(figsize=(1.5 + 5.2 * len(cols), 0.6 + 4.6 * len(families)), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(families), len(cols), squeeze=False, sharey="row")
    import matplotlib as mpl
    cmap = mpl.colormaps["tab20"]
    markers = "osD^v<>ph*XP"
    peer_txt = {"best": "fastest NumPy/SciPy/torch peer", "numpy": "fastest NumPy/SciPy expression",
                "torch": "fastest torch op"}[peer]
    ys = [y for lines in data.values() for pts in lines.values() for _, y in pts]
    lo, hi = min(ys + [1.0]), max(ys + [1.0])
    for i, family in enumerate(families):
        labels = sorted({lab for k, lines in data.items() if k[0] == family for lab in lines})
        style = {lab: (cmap(j % 20), markers[j % len(markers)], "-" if j < 20 else "--")
                 for j, lab in enumerate(labels)}
        handles = {}
        for j, (dt, T) in enumerate(cols):
            ax = axes[i][j]
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.axhline(1.0, color="black", lw=1.2, zorder=1)
            for lab, pts in sorted(data.get((family, dt, T), {}).items()):
                c, m, ls = style[lab]
                xs, yv = zip(*pts)
                (h,) = ax.plot(xs, yv, ls, color=c, marker=m, ms=5, lw=1.4, label=lab, zorder=3)
                handles[lab] = h
            ax.set_title(f"{family}: {dt}, {T} thread{'s' if T != 1 else ''}", fontsize=10)
            ax.grid(True, which="major", alpha=0.35)
            ax.grid(True, which="minor", axis="y", alpha=0.12)
            ax.set_ylim(lo / 1.3, hi * 1.3)
            if i == len(families) - 1:
                ax.set_xlabel("multiply-adds (dense), elements looked up (embedding)" if family == "layers"
                              else "elements of the input (log scale)")
            if j == 0:
                ax.set_ylabel("speed-up: peer time / mlkern time")
            ax.text(0.01, 0.99, "mlkern faster \u2191", transform=ax.transAxes, va="top", ha="left",
                    fontsize=8, color="0.35")
        if handles:
            axes[i][-1].legend([handles[k] for k in labels if k in handles],
                               [k for k in labels if k in handles], loc="upper left",
                               bbox_to_anchor=(1.02, 1.0), fontsize=8, frameon=False,
                               title=family, title_fontsize=9)
    from matplotlib.ticker import FuncFormatter
    fmt = FuncFormatter(lambda v, _: f"{v:g}x")
    for ax in axes.flat:
        ax.yaxis.set_major_formatter(fmt)
        ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}x" if str(v)[0] in "25" else ""))
    n_st = sum(1 for r in records if r.get("stalled"))
    fig.suptitle(title or (f"mlkern speed-up over the {peer_txt} (median times, same run)"
                           + (f"\n({n_st} stalled T>1 measurements left out: the machine was busy)" if n_st else "")),
                 fontsize=12)
    fig.savefig(path, dpi=110, bbox_inches="tight")   # a long title widens the canvas
    return path


