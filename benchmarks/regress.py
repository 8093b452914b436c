#!/usr/bin/env python
"""Benchmark regression gate: mlkern at a base revision against a head tree.

Builds both sides, runs the pytest-benchmark suite (``benchmarks/bench_*.py``)
on each in the same job, alternating base and head round by round, and
compares the median time of every **mlkern** benchmark (the NumPy/SciPy and
PyTorch peers do not count).  Exit status 1 when any of them is more than
``--threshold`` percent (default 10) slower at head than at base, 0 when
none is, 2 on a build or usage error.

Examples::

    python benchmarks/regress.py --base HEAD~3                      # working tree vs HEAD~3
    python benchmarks/regress.py --base main --quick -k "sigmoid or softmax"
    python benchmarks/regress.py --base 675a429 --head d153809 --quick -k bce
    python benchmarks/regress.py --base v0.1 --rounds 5 --peers -- --benchmark-warmup=on

How it works:

1. **Trees.**  ``--base`` is a git revision; it is exported with
   ``git archive`` into ``<workdir>/base-<sha12>`` (no ``git worktree`` is
   registered in the repository).  ``--head`` is a directory (default: the
   working tree this script lives in) or a revision, exported the same way.
   Each exported tree is built once with ``python setup.py build_ext
   --inplace`` and reused by later runs (``--rebuild`` forces a build); a
   head *directory* is built in place too (incremental; ``--no-build-head``
   skips it).
2. **Harness.**  With ``--harness head`` (default) the benchmark harness of
   the head tree -- ``benchmarks/*.py`` and the ``src/mlkern/bench/``
   package, which holds the case registry -- is copied over the base tree
   before every run (a base tree's own harness, the package or the older
   single module ``src/mlkern/bench.py``, is deleted first, so that
   ``mlkern.bench`` imports the copied code), so both sides are timed by the same code and an edit to the
   harness cannot pass for a change of speed.  A benchmark whose mlkern
   function is missing in the base build is skipped there and reported
   as "head only".  ``--harness own`` runs each tree's own harness.
3. **Selection.**  The head side's suite is collected once
   (``pytest --collect-only`` with ``-k``); only mlkern's own entries are
   kept (test ids ``...-mlkern:<function>]`` or ``...-mlkern]``) unless
   ``--peers`` is given, and the same node ids are run on both sides.
4. **Timing.**  ``--rounds`` rounds (default 3); round *r*
   runs base then head when *r* is even and head then base when it is odd
   (ABBA), so a slow drift of the shared machine hits both sides alike.
   Each run is one ``python -m pytest`` subprocess writing
   ``--benchmark-json`` into ``--out`` (default ``<workdir>/run-<time>``),
   with ``OPENBLAS_CORETYPE`` and ``OPENBLAS_L2_SIZE`` removed from its
   environment (they slow NumPy on this machine) and ``PYTHONPATH`` set to
   the tree's ``src`` (checked: the subprocess must import mlkern from
   there, not from an installed copy).
5. **Comparison.**  Per benchmark: the median over the rounds of
   pytest-benchmark's per-round median, base and head; ratio = head /
   base.  A ratio above ``1 + threshold`` is a regression.  With
   ``--confirm K`` (default 2) the flagged benchmarks get K more
   alternating rounds and are judged again on all their rounds, so one
   unlucky round does not fail the gate.  A table of every benchmark is
   printed (group, base and head median, ratio, the per-round ratios),
   then the summary and ``compare.json`` with all numbers.

Noise.  The machine is a shared 2-vCPU VM (``/work/shared/PEERS.md``):
the same peer moved by a median 11 % (n >= 1e6) to 20 % (n < 1e6) between
back-to-back runs, T=2 more (35-49 %).  Interleaving, medians over
rounds and the confirmation pass cut that down; ``--peers`` adds the
NumPy/SciPy/torch entries as a control (the same code on both sides: their
ratios are pure noise, summarised as "noise floor" at the end but never
gating).  ``--quick`` therefore times T=1 only, float32, sizes 1e3,1e5
(in cache), row-wise smoke shapes, optimiser 1e5, no torch, 0.1 s per
benchmark: a few minutes for the whole mlkern set, about a minute with a
``-k`` subset.  Read a 10-15 % quick-mode regression at n = 1e3 as
"measure again with more rounds", not as a fact.
"""
import argparse
import datetime
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
HARNESS_DIR = "src/mlkern/bench"                  # the bench package; plus benchmarks/*.py
OLD_HARNESS = "src/mlkern/bench.py"                 # the single-module harness of older trees
DROP_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
_MLKERN_ID = re.compile(r"(?:^|-)mlkern(?::|$)")


def log(msg=""):
    print(msg, flush=True)


def die(msg, code=2):
    print(f"regress: error: {msg}", file=sys.stderr, flush=True)
    sys.exit(code)


# --------------------------------------------------------------------- git / trees
def git(*args, cwd=REPO, binary=False):
    r = subprocess.run(("git",) + args, cwd=cwd, capture_output=True)
    if r.returncode != 0:
        die(f"git {' '.join(args)}: {r.stderr.decode(errors='replace').strip()}")
    return r.stdout if binary else r.stdout.decode().strip()


def resolve(rev):
    return git("rev-parse", "--verify", "--quiet", rev + "^{commit}")


def export_rev(sha, workdir, role):
    """``git archive`` of ``sha`` into ``<workdir>/<role>-<sha12>`` (reused)."""
    dest = os.path.join(workdir, f"{role}-{sha[:12]}")
    if os.path.isfile(os.path.join(dest, ".regress-exported")):
        return dest
    if os.path.isdir(dest):
        shutil.rmtree(dest)
    os.makedirs(dest)
    tar = subprocess.Popen(["git", "archive", "--format=tar", sha], cwd=REPO, stdout=subprocess.PIPE)
    r = subprocess.run(["tar", "-x", "-C", dest], stdin=tar.stdout)
    tar.stdout.close()
    if tar.wait() != 0 or r.returncode != 0:
        die(f"could not export {sha} into {dest}")
    with open(os.path.join(dest, ".regress-exported"), "w") as fh:
        fh.write(sha + "\n")
    return dest


def bench_env(tree):
    env = dict(os.environ)
    for k in DROP_ENV:
        env.pop(k, None)
    src = os.path.join(tree, "src")
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.pop("PYTHONSTARTUP", None)
    return env


def build(tree, label, force=False):
    stamp = os.path.join(tree, ".regress-built")
    if os.path.isfile(stamp) and not force:
        log(f"  {label}: already built ({tree})")
        return
    logf = os.path.join(tree, "regress-build.log")
    log(f"  {label}: python setup.py build_ext --inplace in {tree} ...")
    t0 = time.perf_counter()
    with open(logf, "w") as fh:
        r = subprocess.run([sys.executable, "setup.py", "build_ext", "--inplace"], cwd=tree,
                           stdout=fh, stderr=subprocess.STDOUT, env=bench_env(tree))
    if r.returncode != 0:
        with open(logf) as fh:
            tail = fh.read()[-3000:]
        die(f"build of {label} failed (log {logf}):\n{tail}")
    log(f"  {label}: built in {time.perf_counter() - t0:.0f} s")
    if os.path.isfile(os.path.join(tree, ".regress-exported")):
        open(stamp, "w").close()      # exported trees never change: remember the build


def check_import(tree, label):
    """The subprocess environment must import the tree's own mlkern."""
    r = subprocess.run([sys.executable, "-c",
                        "import io, mlkern; mlkern.show_config(file=io.StringIO()); print(mlkern.__file__); "
                        "print(getattr(mlkern, '__version__', '?'))"],
                       cwd=tree, env=bench_env(tree), capture_output=True, text=True)
    if r.returncode != 0:
        die(f"{label}: cannot import mlkern from {tree}/src:\n{r.stderr[-2000:]}")
    path = os.path.realpath(r.stdout.split()[0])
    want = os.path.realpath(os.path.join(tree, "src"))
    if not path.startswith(want + os.sep):
        die(f"{label}: the benchmark environment imports mlkern from {path}, not from {want}")
    return path


def install_harness(tree, head_tree, mode, own_sha):
    """Copy the harness of the head tree (mode 'head') or of the directory
    ``mode`` over ``tree``, or restore the tree's own one from git (mode
    'own', exported trees only)."""
    if mode != "own":
        src = head_tree if mode == "head" else mode
        if os.path.realpath(tree) == os.path.realpath(src):
            return
        if not os.path.isfile(os.path.join(tree, ".regress-exported")):
            die(f"will not overwrite the harness of the working tree {tree}")
        for name in os.listdir(os.path.join(src, "benchmarks")):
            if name.endswith(".py"):
                shutil.copy2(os.path.join(src, "benchmarks", name), os.path.join(tree, "benchmarks", name))
        _replace_harness(tree, src)
    elif own_sha is not None:
        names = git("ls-tree", "--name-only", own_sha, "benchmarks/").split()
        for rel in [n for n in names if n.endswith(".py")]:
            data = git("show", f"{own_sha}:{rel}", binary=True)
            with open(os.path.join(tree, rel), "wb") as fh:
                fh.write(data)
        for name in os.listdir(os.path.join(tree, "benchmarks")):   # files head copied earlier
            if name.endswith(".py") and f"benchmarks/{name}" not in names:
                os.remove(os.path.join(tree, "benchmarks", name))
        _restore_harness(tree, own_sha)


def _remove_harness(tree):
    """Delete the tree's bench harness: the package directory and the old module."""
    pkg = os.path.join(tree, HARNESS_DIR)
    if os.path.isdir(pkg):
        shutil.rmtree(pkg)
    old = os.path.join(tree, OLD_HARNESS)
    if os.path.isfile(old):
        os.remove(old)


def _replace_harness(tree, src):
    """The harness of ``src`` in ``tree``: its ``src/mlkern/bench/`` package
    (or, from an older head, its ``bench.py``), after deleting the tree's own
    one, so that ``mlkern.bench`` imports the copied code."""
    _remove_harness(tree)
    if os.path.isdir(os.path.join(src, HARNESS_DIR)):
        shutil.copytree(os.path.join(src, HARNESS_DIR), os.path.join(tree, HARNESS_DIR),
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    elif os.path.isfile(os.path.join(src, OLD_HARNESS)):
        shutil.copy2(os.path.join(src, OLD_HARNESS), os.path.join(tree, OLD_HARNESS))


def _restore_harness(tree, sha):
    """The tree's own harness from git (package files or the old module)."""
    _remove_harness(tree)
    files = git("ls-tree", "-r", "--name-only", sha, "--", HARNESS_DIR, OLD_HARNESS).split()
    for rel in files:
        data = git("show", f"{sha}:{rel}", binary=True)
        dest = os.path.join(tree, rel)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        with open(dest, "wb") as fh:
            fh.write(data)


# --------------------------------------------------------------------- pytest runs
def suite_options(args):
    opts = ["--bench-sizes", args.sizes, "--bench-dtypes", args.dtypes,
            "--bench-threads", args.threads]
    if args.no_torch:
        opts.append("--bench-no-torch")
    return opts


def suite_env(tree, args):
    env = bench_env(tree)
    if args.shapes:
        env["MLKERN_BENCH_SHAPES"] = args.shapes
    if args.optim_sizes:
        env["MLKERN_BENCH_OPTIM_SIZES"] = args.optim_sizes
    return env


def collect(tree, args):
    cmd = [sys.executable, "-m", "pytest", *args.files, "-p", "no:cacheprovider", "--collect-only",
           "-q", "-o", "addopts=", "--continue-on-collection-errors"] + suite_options(args)
    if args.k:
        cmd += ["-k", args.k]
    r = subprocess.run(cmd, cwd=tree, env=suite_env(tree, args), capture_output=True, text=True)
    ids = [ln.strip() for ln in r.stdout.splitlines() if "::" in ln and not ln.startswith(" ")]
    if not ids and r.returncode != 5:
        die(f"collection failed in {tree}:\n{r.stdout[-3000:]}\n{r.stderr[-2000:]}")
    for bad in re.findall(r"^ERROR (\S+)", r.stdout, re.M):   # e.g. a module this build cannot import
        log(f"  note: {bad} does not import with {tree}'s mlkern; its benchmarks are left out")
    return ids


def is_mlkern(nodeid):
    """mlkern's own entry: the parametrised id names the mlkern runtime."""
    m = re.search(r"\[(.*)\]$", nodeid)
    return bool(m) and bool(_MLKERN_ID.search(m.group(1)))


def run_suite(tree, label, nodeids, json_path, args):
    cmd = [sys.executable, "-m", "pytest", *nodeids, "-p", "no:cacheprovider", "-q", "-o", "addopts=",
           "--continue-on-collection-errors",
           f"--benchmark-json={json_path}", f"--benchmark-max-time={args.max_time}",
           f"--benchmark-min-rounds={args.min_rounds}", "--benchmark-sort=name",
           "--benchmark-columns=median,iqr,rounds"] + suite_options(args) + list(args.pytest_args)
    logf = json_path[:-5] + ".log"
    t0 = time.perf_counter()
    with open(logf, "w") as fh:
        fh.write(" ".join(cmd[:3]) + f" <{len(nodeids)} node ids> " + " ".join(cmd[3 + len(nodeids):])
                 + "\n")
        fh.flush()
        r = subprocess.run(cmd, cwd=tree, env=suite_env(tree, args), stdout=fh, stderr=subprocess.STDOUT)
    dt = time.perf_counter() - t0
    tail = ""
    with open(logf) as fh:
        lines = [ln.rstrip() for ln in fh if ln.strip()]
    if lines:
        tail = lines[-1].strip("= ")
    log(f"    {label:<5} {dt:6.0f} s  {tail}")
    if r.returncode not in (0, 1) or not os.path.isfile(json_path):
        die(f"{label}: pytest failed (exit {r.returncode}), log {logf}")
    if r.returncode == 1:
        log(f"    {label}: some benchmarks failed (their values were wrong or they errored): see {logf}")
    return load_json(json_path)


def load_json(path):
    with open(path) as fh:
        data = json.load(fh)
    out = {}
    for b in data.get("benchmarks", []):
        if b.get("stats") and b["stats"].get("median") is not None:
            out[b["fullname"]] = {"group": b.get("group") or "", "name": b.get("name"),
                                  "median": b["stats"]["median"], "iqr": b["stats"].get("iqr"),
                                  "rounds": b["stats"].get("rounds"),
                                  "runtime": (b.get("extra_info") or {}).get("runtime")}
    return out


def rounds(sides, nodeids, n_rounds, first_round, args, outdir):
    """Run ``n_rounds`` alternating rounds; append to sides[label]['runs']."""
    for r in range(first_round, first_round + n_rounds):
        order = ("base", "head") if r % 2 == 0 else ("head", "base")
        log(f"  round {r + 1}: {order[0]} then {order[1]}")
        for label in order:
            s = sides[label]
            install_harness(s["tree"], sides["head"]["tree"], args.harness, s["sha"])
            js = os.path.join(outdir, f"{label}-r{r + 1}.json")
            s["runs"].append(run_suite(s["tree"], label, nodeids, js, args))


# --------------------------------------------------------------------- comparison
def compare(sides, nodeids, threshold):
    rows = []
    for nid in nodeids:
        b = [run[nid] for run in sides["base"]["runs"] if nid in run]
        h = [run[nid] for run in sides["head"]["runs"] if nid in run]
        info = (h or b or [{}])[0]
        row = {"nodeid": nid, "group": info.get("group", ""), "name": info.get("name", ""),
               "mlkern": is_mlkern(nid), "base_n": len(b), "head_n": len(h)}
        if b and h:
            bm = statistics.median(x["median"] for x in b)
            hm = statistics.median(x["median"] for x in h)
            per_round = [hh["median"] / bb["median"] for bb, hh in zip(b, h)]
            row.update(base=bm, head=hm, ratio=hm / bm, rounds=per_round)
            row["verdict"] = ("SLOWER" if hm / bm > 1 + threshold else
                              "faster" if hm / bm < 1 / (1 + threshold) else "")
        else:
            row["verdict"] = "head only" if h else ("base only" if b else "not run")
        rows.append(row)
    return rows


def fmt_time(s):
    if s is None:
        return "-"
    for unit, f in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6), ("ns", 1e-9)):
        if s >= f:
            return f"{s / f:.3g} {unit}"
    return f"{s / 1e-9:.3g} ns"


def table(rows, stream=sys.stdout):
    gw = max([len("group")] + [len(r["group"]) for r in rows])
    nw = min(40, max([len("benchmark")] + [len(r["name"] or "") for r in rows]))
    head = (f"{'group':<{gw}}  {'benchmark':<{nw}}  {'base':>9}  {'head':>9}  {'head/base':>9}  "
            f"{'per round':<22}  verdict")
    print(head, file=stream)
    print("-" * len(head), file=stream)
    for r in sorted(rows, key=lambda r: (not r["mlkern"], r["group"], r["name"] or "")):
        rr = " ".join(f"{x:.2f}" for x in r.get("rounds", []))
        ratio = f"{r['ratio']:.3f}" if "ratio" in r else "-"
        name = (r["name"] or "")[:nw]
        tag = r["verdict"] + ("" if r["mlkern"] else " (peer, not gated)" if r["verdict"] else "")
        print(f"{r['group']:<{gw}}  {name:<{nw}}  {fmt_time(r.get('base')):>9}  "
              f"{fmt_time(r.get('head')):>9}  {ratio:>9}  {rr:<22}  {tag}", file=stream)


def gmean(xs):
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else float("nan")


# --------------------------------------------------------------------- main
def parse_args(argv):
    p = argparse.ArgumentParser(prog="python benchmarks/regress.py",
                                description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="Arguments after '--' go to every pytest run.")
    p.add_argument("--base", required=True, help="git revision to compare against (e.g. main, HEAD~3)")
    p.add_argument("--head", default=REPO,
                   help="a worktree directory (default: the one holding this script) or a git revision")
    p.add_argument("-k", default=None, help="pytest -k expression selecting benchmarks")
    p.add_argument("--files", default="benchmarks",
                   help="comma list of benchmark files/dirs relative to the tree (default: benchmarks)")
    p.add_argument("--quick", action="store_true",
                   help="T=1, f32, sizes 1e3,1e5, smoke shapes, optim 1e5, no torch, 0.1 s per "
                        "benchmark")
    p.add_argument("--rounds", type=int, help="alternating rounds (default 3)")
    p.add_argument("--confirm", type=int, default=2,
                   help="extra rounds for benchmarks flagged slower (default 2; 0: none)")
    p.add_argument("--threshold", type=float, default=10.0, help="allowed slowdown in percent (default 10)")
    p.add_argument("--peers", action="store_true",
                   help="also time the NumPy/SciPy/torch peers, as a noise control (never gated)")
    p.add_argument("--sizes", help="--bench-sizes (default 1e3,1e5,1e7; quick 1e3,1e5)")
    p.add_argument("--dtypes", help="--bench-dtypes (default f32,f64; quick f32)")
    p.add_argument("--threads", help="--bench-threads (default 1,2; quick 1)")
    p.add_argument("--shapes", help="MLKERN_BENCH_SHAPES for the row-wise suite (quick: smoke)")
    p.add_argument("--optim-sizes", help="MLKERN_BENCH_OPTIM_SIZES (quick: 1e5)")
    p.add_argument("--no-torch", action="store_true", default=None, help="--bench-no-torch (quick: on)")
    p.add_argument("--max-time", type=float, help="--benchmark-max-time per benchmark (default 0.5; quick 0.1)")
    p.add_argument("--min-rounds", type=int, default=5, help="--benchmark-min-rounds (default 5)")
    p.add_argument("--harness", default="head",
                   help="benchmark code: 'head' (default: the head tree's, on both sides), 'own' (each "
                        "tree its own) or a directory whose harness both sides use")
    p.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "regress-trees"),
                   help="where revisions are exported and built (reused between runs)")
    p.add_argument("--out", help="directory for the JSON files (default <workdir>/run-<time>)")
    p.add_argument("--rebuild", action="store_true", help="rebuild exported trees")
    p.add_argument("--no-build-head", action="store_true", help="do not (re)build a head directory")
    p.add_argument("pytest_args", nargs="*", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    q = args.quick
    args.rounds = args.rounds or 3
    args.sizes = args.sizes or ("1e3,1e5" if q else "1e3,1e5,1e7")
    args.dtypes = args.dtypes or ("f32" if q else "f32,f64")
    args.threads = args.threads or ("1" if q else "1,2")
    args.shapes = args.shapes or ("smoke" if q else None)
    args.optim_sizes = args.optim_sizes or ("1e5" if q else None)
    args.no_torch = q if args.no_torch is None else args.no_torch
    args.max_time = args.max_time or (0.1 if q else 0.5)
    args.files = [f for f in args.files.split(",") if f]
    if args.harness not in ("head", "own"):
        if not os.path.isfile(os.path.join(args.harness, "benchmarks", "conftest.py")):
            p.error(f"--harness: {args.harness} is not 'head', 'own' or a tree with benchmarks/")
        args.harness = os.path.abspath(args.harness)
    if args.rounds < 1 or args.confirm < 0 or args.threshold <= 0:
        p.error("--rounds >= 1, --confirm >= 0, --threshold > 0")
    return args


def main(argv=None):
    args = parse_args(argv)
    thr = args.threshold / 100.0
    os.makedirs(args.workdir, exist_ok=True)
    outdir = args.out or os.path.join(args.workdir, "run-" + datetime.datetime.now().strftime("%Y%m%d-%H%M%S"))
    os.makedirs(outdir, exist_ok=True)

    base_sha = resolve(args.base)
    if os.path.isdir(args.head):
        head_tree, head_sha = os.path.abspath(args.head), None
        head_desc = f"{head_tree} (working tree at {git('rev-parse', 'HEAD', cwd=head_tree)[:12]}"
        dirty = git("status", "--porcelain", "--untracked-files=no", cwd=head_tree)
        head_desc += ", with uncommitted changes)" if dirty else ")"
    else:
        head_sha = resolve(args.head)
        head_tree, head_desc = None, head_sha
    log(f"regress: base {args.base} = {base_sha}")
    log(f"regress: head {head_desc}")
    log(f"  threshold {args.threshold:g} %; rounds {args.rounds} (+{args.confirm} to confirm); "
        f"sizes {args.sizes}; dtypes {args.dtypes}; threads {args.threads}; "
        f"shapes {args.shapes or 'default'}; torch {'off' if args.no_torch else 'on'}; "
        f"max-time {args.max_time} s; harness {args.harness}; -k {args.k!r}; out {outdir}")
    try:
        load = os.getloadavg()
        log(f"  load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
            + ("  (other jobs are running: expect noise)" if load[0] > 0.5 else ""))
    except OSError:
        pass

    t_start = time.perf_counter()
    base_tree = export_rev(base_sha, args.workdir, "base")
    build(base_tree, "base", force=args.rebuild)
    if head_tree is None:
        head_tree = export_rev(head_sha, args.workdir, "head")
        build(head_tree, "head", force=args.rebuild)
    elif not args.no_build_head:
        # a worktree is rebuilt in place every time (incremental: fast when nothing changed)
        log(f"  head: python setup.py build_ext --inplace in {head_tree} ...")
        t0 = time.perf_counter()
        r = subprocess.run([sys.executable, "setup.py", "build_ext", "--inplace"], cwd=head_tree,
                           env=bench_env(head_tree), capture_output=True, text=True)
        if r.returncode != 0:
            die(f"build of head failed:\n{(r.stdout + r.stderr)[-3000:]}")
        log(f"  head: built in {time.perf_counter() - t0:.0f} s")
    if args.harness not in ("head", "own") and head_sha is None \
            and os.path.realpath(args.harness) != os.path.realpath(head_tree):
        die("--harness DIR needs --head to be a revision (a head working tree is never written to)")
    sides = {"base": {"tree": base_tree, "sha": base_sha if args.harness == "own" else None, "runs": []},
             "head": {"tree": head_tree, "sha": None, "runs": []}}
    install_harness(head_tree, head_tree, args.harness, None)   # collect with the harness that runs
    for label, s in sides.items():
        log(f"  {label}: imports {check_import(s['tree'], label)}")

    ids = collect(head_tree, args)
    if args.harness == "own":
        install_harness(base_tree, head_tree, "own", base_sha)
        base_ids = set(collect(base_tree, args))
        only = [i for i in ids if i not in base_ids]
        if only:
            log(f"  {len(only)} benchmark(s) exist only at head (not compared), e.g. {only[0]}")
        ids = [i for i in ids if i in base_ids]
    mine = [i for i in ids if is_mlkern(i)]
    nodeids = ids if args.peers else mine
    if not mine:
        die(f"no mlkern benchmark selected (-k {args.k!r}; {len(ids)} collected)")
    log(f"  {len(nodeids)} benchmarks per side ({len(mine)} mlkern"
        + (f", {len(nodeids) - len(mine)} peers as noise control)" if args.peers else ")"))

    rounds(sides, nodeids, args.rounds, 0, args, outdir)
    rows = compare(sides, nodeids, thr)
    flagged = [r["nodeid"] for r in rows if r["mlkern"] and r["verdict"] == "SLOWER"]
    if flagged and args.confirm:
        log(f"  {len(flagged)} mlkern benchmark(s) over the threshold: {args.confirm} more round(s) for them")
        rounds(sides, flagged, args.confirm, args.rounds, args, outdir)
        rows = compare(sides, nodeids, thr)

    log("")
    log(f"Medians (median over rounds of pytest-benchmark's median); head/base > {1 + thr:.2f} is a "
        f"regression; 'per round' = head/base of each round")
    table(rows)
    mk = [r for r in rows if r["mlkern"] and "ratio" in r]
    peers = [r for r in rows if not r["mlkern"] and "ratio" in r]
    slower = [r for r in mk if r["verdict"] == "SLOWER"]
    faster = [r for r in mk if r["verdict"] == "faster"]
    log("")
    log(f"mlkern benchmarks compared: {len(mk)}; slower by > {args.threshold:g} %: {len(slower)}; "
        f"faster by > {args.threshold:g} %: {len(faster)}; geometric mean head/base {gmean([r['ratio'] for r in mk]):.3f}")
    missing = [r for r in rows if r["mlkern"] and "ratio" not in r]
    if missing:
        log(f"not compared ({len(missing)}): " + ", ".join(f"{r['group']} [{r['verdict']}]" for r in missing[:8])
            + (" ..." if len(missing) > 8 else ""))
    if peers:
        dev = sorted(abs(math.log(r["ratio"])) for r in peers)
        log(f"noise floor (peers, same code both sides, n={len(peers)}): median |change| "
            f"{math.expm1(statistics.median(dev)) * 100:.1f} %, 90th pct "
            f"{math.expm1(dev[int(0.9 * (len(dev) - 1))]) * 100:.1f} %, max {math.expm1(dev[-1]) * 100:.1f} %")
    with open(os.path.join(outdir, "compare.json"), "w") as fh:
        json.dump({"base": base_sha, "head": head_desc, "threshold": thr, "args": vars(args),
                   "rows": rows}, fh, indent=1)
    log(f"JSON: {outdir} (base-r*.json, head-r*.json, compare.json); {time.perf_counter() - t_start:.0f} s")
    if slower:
        log("REGRESSION: " + ", ".join(f"{r['group']} x{r['ratio']:.2f}" for r in slower))
        return 1
    log("OK: no mlkern benchmark slower than the threshold")
    return 0


if __name__ == "__main__":
    sys.exit(main())
