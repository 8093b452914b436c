"""The benchmark package mlkern.bench: the case registry, the runner on tiny
sizes, the report, the plot (speed-up table and PNG, from a saved run) and
the command line's argument errors.  Timing is never asserted: only that
every case and peer produces a checked record."""
import json
import os
import sys
import types

import numpy as np
import pytest

import mlkern
from mlkern import bench
from mlkern.bench import references as R

# tools/sanitize.sh preloads libasan into an uninstrumented interpreter:
# matplotlib's C++ extension then aborts in ASan's __cxa_throw interceptor
# (CHECK failed, asan_interceptors.cpp:320) -- nothing of mlkern's runs there
_NO_MPL_UNDER_ASAN = pytest.mark.skipif(bool(os.environ.get("MLKERN_UNDER_SANITIZER")),
                                        reason="matplotlib's C++ code under a preloaded libasan")


# ------------------------------------------------------------------ the registry
def _mlkern_names(case):
    """The public mlkern functions an mlkern impl of ``case`` calls."""
    mod, _, name = case.mlkern.needs.partition(":")
    return mod, name


def test_registry_covers_every_family_and_public_function():
    import mlkern.activations as act
    import mlkern.losses as losses
    import mlkern.rowwise as rowwise
    fams = bench.FAMILIES
    assert list(fams) == ["activations", "rowwise", "losses", "layers", "optim"]
    names = [c.name for c in bench.all_cases()]
    assert len(names) == len(set(names)), "case names must be unique"
    for fam in fams.values():
        assert fam.cases, fam
        for c in fam.cases:
            assert c.group == fam.name and c.table in bench.TABLES
            assert c.numpy, f"{c.name}: no NumPy peer"
            assert c.mlkern.runtime == "mlkern"
    public = {"activations": act.__all__, "rowwise": rowwise.__all__, "losses": losses.__all__}
    for group, allowed in public.items():
        for c in fams[group].cases:
            mod, name = _mlkern_names(c)
            assert mod == "mlkern" and name in allowed, (c.name, name)
            assert c.mlkern.available(), f"{c.name}: mlkern.{name} missing from this build"
    # every row-wise function but the (dense, quadratic) Jacobian is timed
    timed = {_mlkern_names(c)[1] for c in fams["rowwise"].cases}
    assert set(rowwise.__all__) - {"softmax_jacobian"} == timed
    # every activation timed has its backward timed too, and the other way round
    act_cases = fams["activations"].cases
    fwd = {c.family for c in act_cases if c.kind == "fwd"}
    bwd = {c.family for c in act_cases if c.kind == "bwd"}
    assert fwd == bwd and {"sigmoid", "tanh", "relu", "gelu", "silu", "softplus", "elu"} <= fwd
    assert {c.name for c in fams["losses"].cases} >= {"cross_entropy_with_grad", "mse_with_grad"}
    # the layers family: written against SPEC.md's mlkern.layers names
    used = {_mlkern_names(c) for c in fams["layers"].cases}
    assert {m for m, _ in used} == {"mlkern.layers"}
    assert {n for _, n in used} <= {"dense", "dense_backward", "embedding", "embedding_backward"}
    assert bench.COPY.mlkern.available() and bench.COPY.kind == "copy"
    # the optimisers: every *_step of mlkern.optim's public names is timed
    import mlkern.optim as optim
    steps = {n for n in optim.__all__ if n.endswith("_step")}
    timed = {_mlkern_names(c) for c in fams["optim"].cases}
    assert {m for m, _ in timed} == {"mlkern.optim"} and {n for _, n in timed} <= steps
    assert all(c.mlkern.available() for c in fams["optim"].cases)
    assert not fams["optim"].in_all and all(fams[f].in_all for f in fams if f != "optim")


def test_layers_family_is_available_exactly_when_mlkern_layers_imports():
    try:
        import mlkern.layers  # noqa: F401
        have = True
    except ImportError:
        have = False
    assert bench.FAMILIES["layers"].available() == have
    cases, gone = bench.select("layers")
    assert (bool(cases), bool(gone)) == (have, not have)
    if not have:
        assert gone == [("layers", "mlkern.layers is not importable in this build")]
        assert not [c for c in bench.select(None)[0] if c.group == "layers"]
        assert bench.select(None)[1] == []          # "all": quietly left out


def test_select_names():
    pick = lambda spec: [c.name for c in bench.select(spec)[0]]  # noqa: E731
    assert pick("sigmoid") == ["sigmoid", "sigmoid_backward"]
    assert pick("sigmoid_forward") == ["sigmoid"]
    assert pick("softmax_backward") == ["softmax_backward"]
    assert pick("elementwise") == pick("activations") == [c.name for c in bench.CASES]
    assert pick("rowwise") == [c.name for c in bench.ROW_CASES]
    assert pick("losses") == [c.name for c in bench.LOSS_CASES + bench.LOSS_ROW_CASES]
    assert set(pick("backward")) == {c.name for c in bench.all_cases() if c.kind == "bwd"}
    with pytest.raises(ValueError, match="unknown function 'nosuch'.*layers"):
        bench.select("nosuch")


def test_references_are_float64_and_right():
    x = np.array([-40.0, -1.0, 0.0, 2.0, np.nan])
    assert R.sigmoid(x).dtype == np.float64 and np.isnan(R.sigmoid(x)[-1])
    np.testing.assert_allclose(R.sigmoid(x[1:4]), 1 / (1 + np.exp(-x[1:4])), rtol=1e-15)
    z = np.random.default_rng(0).standard_normal((3, 5, 4))
    np.testing.assert_allclose(R.softmax_ref(z, axis=1).sum(axis=1), 1.0, rtol=1e-15)
    np.testing.assert_allclose(R.logsumexp_ref(z, axis=1),
                               np.log(np.exp(z).sum(axis=1)), rtol=1e-14)
    y = np.array([1, 0, 3])
    loss, g = R.cross_entropy_ref(z[:, :, 0], y)
    p = np.exp(z[:, :, 0]) / np.exp(z[:, :, 0]).sum(1, keepdims=True)
    assert loss == pytest.approx(-np.mean(np.log(p[np.arange(3), y])), rel=1e-14)
    np.testing.assert_allclose(g.sum(axis=1), 0.0, atol=1e-16)
    xd, w, b = z[0], np.ones((2, 4)), np.array([0.5, -100.0])
    np.testing.assert_allclose(R.dense_ref(xd, w, b, "relu"),
                               np.maximum(xd.sum(1, keepdims=True) + b, 0.0), rtol=1e-15)
    gx, gw, gb = R.dense_backward_ref(np.ones((5, 2)), xd, w, b, "relu")
    assert gb.tolist() == [float((xd.sum(1) + 0.5 > 0).sum()), 0.0]       # relu off for b = -100
    assert np.array_equal(R.embedding_backward_ref(np.ones((3, 2)), [1, 1, 0], 3),
                          [[1, 1], [2, 2], [0, 0]])


# ------------------------------------------------------------------ the runner
def _tiny_settings():
    s = bench.Settings(repeats=1)
    s.warm_ns = s.total_ns = s.repeat_ns = 0     # one call per repeat, one repeat
    return s


def _run(table, cases, points, threads=(1, 2), dtypes=(np.float32,), use_torch=True):
    r = bench.Runner(table, cases, points, [np.dtype(d) for d in dtypes], list(threads),
                     _tiny_settings(), use_torch=use_torch, progress=False)
    return r, r.run()


def _expect_records(runner, records, cases, points, dtypes=("f32",), threads=(1, 2)):
    got = {(r["function"], r["impl"], r["threads"], r["dtype"], r.get("spec", r["n"]))
           for r in records}
    for c in cases:
        for p in points:
            if getattr(p, "kind", c.family) != c.family:
                continue
            for impl in c.impls(runner._runtimes()):
                for T in threads:
                    for dt in dtypes:
                        key = (c.name, impl.name, T, dt, getattr(p, "spec", p))
                        assert key in got, key
    assert not runner.mismatches, runner.mismatches
    assert all(r["ok"] and r["median_ns"] > 0 for r in records)


def test_runner_elementwise_and_losses_tiny():
    cases = [c for c in bench.all_cases() if c.table is bench.ELEMENTWISE]
    runner, recs = _run(bench.ELEMENTWISE, cases, [64])
    _expect_records(runner, recs, cases, [64])
    carried = [r for r in recs if r["threads"] == 2 and r["runtime"] == "numpy"]
    assert carried and all(r["carried_1T"] for r in carried)   # NumPy's T=1 time at T=2


def test_runner_rowwise_and_cross_entropy_tiny():
    shapes = [bench.RowShape((4, 9)), bench.RowShape((3, 7, 2), 1)]
    for table in (bench.ROWWISE, bench.CROSS_ENTROPY):
        cases = [c for c in bench.all_cases() if c.table is table]
        runner, recs = _run(table, cases, shapes, dtypes=(np.float32, np.float64))
        _expect_records(runner, recs, cases, shapes, dtypes=("f32", "f64"))
        assert all(r["rowwise"] and r["spec"] in ("4x9", "3x7x2:1") for r in recs)


def test_runner_optim_tiny():
    cases = bench.select("optim")[0]
    assert [c.name for c in cases] == ["adam_step"]
    runner, recs = _run(bench.OPTIM, cases, [1000])
    _expect_records(runner, recs, cases, [1000])


def test_optim_check_catches_a_wrong_step():
    from mlkern.bench.families import optim as O
    case = O.CASES[0]
    good = case.check(bench.Inputs(), 10, (np.zeros(1, np.float32),), None, case.numpy[0])
    assert good["ok"] and good["err"] <= 2e-4

    def make(ins, out):                       # Adam with lr 10 % too large
        p, g, m, v = ins
        k = [0]

        def step():
            k[0] += 1
            t = k[0]
            m[:] = O.B1 * m + (1 - O.B1) * g
            v[:] = O.B2 * v + (1 - O.B2) * g * g
            p[:] -= 1.1 * O.LR / (1 - O.B1 ** t) * m / (np.sqrt(v / (1 - O.B2 ** t)) + O.EPS)
        step.state = lambda: (m, v)
        return step
    bad = case.check(bench.Inputs(), 10, (np.zeros(1, np.float64),), None,
                     bench.Impl("wrong", "numpy", make))
    assert not bad["ok"] and bad["where"].startswith(("p[", "the update"))


def _fake_layers(broken=False):
    """A NumPy stand-in with SPEC.md's signatures (``broken``: dense adds 1)."""
    m = types.ModuleType("mlkern.layers")

    def dense(x, weight, bias=None, *, activation=None, out=None, return_saved=False):
        z = x @ weight.T + (0 if bias is None else bias) + (1 if broken else 0)
        y = np.maximum(z, 0) if activation == "relu" else z
        if out is not None:
            out[...] = y
            y = out
        return (y, z) if return_saved else y

    def dense_backward(grad_output, x, weight, *, has_bias=True, activation=None, saved=None,
                       needs_input_grad=True):
        gz = grad_output * (saved > 0) if activation == "relu" else grad_output
        return (gz @ weight if needs_input_grad else None), gz.T @ x, (gz.sum(0) if has_bias else None)

    def embedding(indices, weight, *, padding_idx=None, out=None):
        return np.take(weight, indices, axis=0, out=out)

    def embedding_backward(grad_output, indices, num_embeddings, *, padding_idx=None, out=None):
        if out is None:
            out = np.empty((num_embeddings, grad_output.shape[-1]), grad_output.dtype)
        out.fill(0)
        np.add.at(out, indices, grad_output)
        return out
    m.dense, m.dense_backward, m.embedding, m.embedding_backward = (
        dense, dense_backward, embedding, embedding_backward)
    return m


@pytest.fixture
def fake_layers(monkeypatch):
    def install(broken=False):
        m = _fake_layers(broken)
        monkeypatch.setitem(sys.modules, "mlkern.layers", m)
        monkeypatch.setattr(mlkern, "layers", m, raising=False)
        return m
    return install


def test_runner_layers_against_a_stand_in(fake_layers):
    fake_layers()
    assert bench.FAMILIES["layers"].available()
    cases, gone = bench.select("layers")
    assert [c.name for c in cases] == ["dense_relu", "dense_relu_fwd_bwd", "embedding_fwd_bwd"]
    assert not gone
    points = [bench.LayerShape("dense", (3, 8, 5)), bench.LayerShape("embedding", (11, 4, 6))]
    runner, recs = _run(bench.LAYERS, cases, points, dtypes=(np.float32, np.float64))
    _expect_records(runner, recs, cases, points, dtypes=("f32", "f64"))
    # NumPy's GEMM is parallel: timed at T=2, not carried over
    assert not [r for r in recs if r["carried_1T"]]
    assert {r["impl"] for r in recs if r["function"] == "dense_relu" and r["runtime"] == "numpy"} == \
        {"np matmul, +b, maximum (out=)", "np x @ w.T (GEMM only) [gemm]"}
    assert all(r["gflops"] > 0 for r in recs if r["function"].startswith("dense"))
    buf = __import__("io").StringIO()
    bench.report_table(bench.LAYERS, recs, runner.mismatches, points, runner.use_torch,
                       case_order=[c.name for c in cases], stream=buf)
    text = buf.getvalue()
    assert "Layers: mlkern = median time per call in us" in text
    assert "dense_relu_fwd_bwd" in text and "11x4/6" in text and "3x8x5" in text


def test_runner_flags_a_wrong_layer(fake_layers):
    fake_layers(broken=True)
    cases = [c for c in bench.select("layers")[0] if c.name == "dense_relu"]
    runner, recs = _run(bench.LAYERS, cases, [bench.LayerShape("dense", (2, 4, 3))], threads=(1,),
                        use_torch=False)
    bad = [m for m in runner.mismatches if m["impl"].startswith("mlkern")]
    assert bad and bad[0]["err"] > 0.1 and "result 0" in bad[0]["where"]
    assert not [m for m in runner.mismatches if not m["impl"].startswith("mlkern")]


# ------------------------------------------------------------------ the report
def _report(table, recs, runner, points, use_torch):
    import io
    buf = io.StringIO()
    bench.report_table(table, recs, runner.mismatches, points, use_torch,
                       case_order=[c.name for c in bench.all_cases()], pruned=runner.pruned,
                       memory_bound=[c.name for c in bench.all_cases() if c.memory_bound], stream=buf)
    return buf.getvalue().splitlines()


def test_report_tables_keep_their_format():
    cases = [c for c in bench.CASES if c.family == "sigmoid"]
    runner, recs = _run(bench.ELEMENTWISE, cases, [64, 1000], use_torch=False)
    lines = _report(bench.ELEMENTWISE, recs, runner, [64, 1000], False)
    hdr = (f"{'function':<26}{'dtype':<6}{'n':>5}{'T':>3} {'mlkern':>7} {'GB/s':>6} {'%roof':>5} |"
           f" {'numpy/scipy best':<33}{'ns/el':>7} {'speedup':>8}")
    assert lines[1].startswith("Memory roof: copy at 1e7 elements")
    assert hdr in lines and lines[lines.index(hdr) + 1] == "-" * len(hdr)
    rows = [ln for ln in lines if ln.startswith("sigmoid")]
    assert [ln[:41] for ln in rows[:4]] == [f"{'sigmoid':<26}{'f32':<6}{n:>5}{T:>3} " for n, T in
                                           (("64", 1), ("64", 2), ("1e3", 1), ("1e3", 2))]
    assert all(ln.rstrip().endswith("x") and " | " in ln for ln in rows)     # a speedup per row
    assert len(rows) == 8 and "[1T]" in rows[1]

    rs = [bench.RowShape((4, 9))]
    rc = [c for c in bench.ROW_CASES if c.name == "argmax"]
    runner, recs = _run(bench.ROWWISE, rc, rs, threads=(1,), use_torch=False)
    lines = _report(bench.ROWWISE, recs, runner, rs, False)
    assert lines[1].startswith("Row-wise functions, reduced over axis 'ax'")
    row = [ln for ln in lines if ln.startswith("argmax")]
    assert len(row) == 1 and row[0].startswith(f"{'argmax':<26}{'4x9':>13}{1:>3} {'f32':<5}{1:>2} ")


def test_report_lists_value_mismatches():
    import io
    rec = {"function": "tanh", "kind": "fwd", "dtype": "f32", "n": 1000, "threads": 1, "impl": "mlkern.tanh",
           "label": "mlkern.tanh", "runtime": "mlkern", "ns_per_el": 1.0, "gbps": 8.0, "ok": False,
           "err": 0.5, "carried_1T": False, "allocates": False, "median_ns": 1000.0}
    mism = [{"case": "tanh", "impl": "mlkern.tanh", "dtype": "f32", "n": 1000, "threads": 1, "ok": False,
             "err": 0.5, "tol": 2e-4, "where": "index 7 (x=1.0)", "got": 0.2, "ref": 0.76}]
    buf = io.StringIO()
    bench.report_table(bench.ELEMENTWISE, [rec], mism, [1000], False, case_order=["tanh"], stream=buf)
    text = buf.getvalue()
    assert "[!]" in text and "VALUE MISMATCHES" in text
    assert "  tanh f32 n=1e3 T=1 mlkern.tanh: err 0.5 > 0.0002 at index 7 (x=1.0): got 0.2, ref 0.76" in text


# ------------------------------------------------------------------ the plot
def _rec(fn, rt, n, ns, dtype="f32", T=1, ok=True, shape=None, axis=None):
    r = {"function": fn, "runtime": rt, "n": n, "median_ns": float(ns), "dtype": dtype,
         "threads": T, "ok": ok, "impl": f"{rt}:{fn}"}
    if shape is not None:
        r.update(shape=list(shape), axis=axis, rowwise=True)
    return r


def _table():
    recs = []
    for n, (mine, np_, tc) in {1000: (2e3, 4e3, 3e3), 100000: (5e4, 2e5, 4e4)}.items():
        for T in (1, 2):
            recs += [_rec("sigmoid", "mlkern", n, mine / T, T=T), _rec("sigmoid", "numpy", n, np_, T=T),
                     _rec("sigmoid", "torch", n, tc / T, T=T),
                     _rec("tanh", "mlkern", n, mine, T=T), _rec("tanh", "numpy", n, mine * 0.5, T=T, ok=False),
                     _rec("tanh", "numpy", n, mine * 3, T=T)]
    recs += [_rec("copy", "mlkern", 1000, 1.0), _rec("copy", "numpy", 1000, 2.0)]
    stalled = _rec("relu", "mlkern", 1000, 8e6, T=2)
    stalled["stalled"] = True
    recs += [stalled, _rec("relu", "torch", 1000, 2e3, T=2)]
    recs += [_rec("softmax", "mlkern", 8192, 1e4, shape=(64, 128), axis=-1),
             _rec("softmax", "numpy", 8192, 5e4, shape=(64, 128), axis=-1),
             _rec("softmax", "mlkern", 16000, 1e4, shape=(16, 1000, 16), axis=1),
             _rec("softmax", "torch", 16000, 3e4, shape=(16, 1000, 16), axis=1)]
    return recs


def test_speedups_use_the_fastest_checked_peer():
    d = bench.speedups(_table())
    assert d[("elementwise", "f32", 1)]["sigmoid"] == [(1000, 1.5), (100000, 0.8)]
    # the failed (ok=False) numpy record is not a peer
    assert d[("elementwise", "f32", 1)]["tanh"] == [(1000, 3.0), (100000, 3.0)]
    assert "copy" not in d[("elementwise", "f32", 1)]
    assert "relu" not in d[("elementwise", "f32", 2)]          # stalled: not a speed
    rw = d[("row-wise / losses", "f32", 1)]
    assert rw["softmax"] == [(8192, 5.0)] and rw["softmax (axis 1)"] == [(16000, 3.0)]
    assert bench.speedups(_table(), peer="numpy")[("elementwise", "f32", 1)]["sigmoid"][0] == (1000, 2.0)
    with pytest.raises(ValueError, match="peer"):
        bench.speedups(_table(), peer="jax")


def test_speedups_from_a_saved_run(tmp_path, fake_layers):
    """Records of a real (tiny) run, through JSON, give a speed-up per case."""
    fake_layers()
    cases = [c for c in bench.CASES if c.family == "relu"]
    _, recs = _run(bench.ELEMENTWISE, cases, [256], threads=(1,), use_torch=False)
    lc = [c for c in bench.select("layers")[0] if c.name == "dense_relu"]
    _, lrecs = _run(bench.LAYERS, lc, [bench.LayerShape("dense", (2, 4, 3))], threads=(1,),
                    use_torch=False)
    js = tmp_path / "run.json"
    js.write_text(json.dumps({"records": recs, "layer_records": lrecs}))
    data = json.loads(js.read_text())
    d = bench.speedups(data["records"] + data["layer_records"])
    assert set(d[("elementwise", "f32", 1)]) == {"relu", "relu_backward"}
    assert [n for n, _ in d[("layers", "f32", 1)]["dense_relu"]] == [24]
    assert all(v > 0 for pts in d[("elementwise", "f32", 1)].values() for _, v in pts)


@_NO_MPL_UNDER_ASAN
def test_plot_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "speed.png"
    assert bench.plot(_table(), str(path)) == str(path)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 10_000          # a drawn figure, not an empty canvas


@_NO_MPL_UNDER_ASAN
def test_plot_from_json_through_the_command_line(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    js, png = tmp_path / "b.json", tmp_path / "s.png"
    recs = _table()
    js.write_text(json.dumps({"records": [r for r in recs if "shape" not in r],
                              "rowwise_records": [r for r in recs if "shape" in r]}))
    from mlkern.__main__ import main
    assert main(["bench", "--from-json", str(js), "--plot", str(png)]) == 0
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert "wrote" in capsys.readouterr().out


def test_plot_without_matplotlib_says_how_to_install(monkeypatch, tmp_path, capsys):
    for mod in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.setitem(sys.modules, "matplotlib", None)      # import matplotlib -> ImportError
    with pytest.raises(ImportError, match=r"pip install 'mlkern\[plot\]'"):
        bench.plot(_table(), str(tmp_path / "x.png"))
    from mlkern.__main__ import main
    # fails at once, before any timing
    assert main(["bench", "--sizes", "1e3", "--plot", str(tmp_path / "x.png")]) == 2
    assert "needs matplotlib" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


# ------------------------------------------------------------------ the command line
@pytest.mark.parametrize("argv, msg", [
    (["--sizes", "0"], "--sizes: not a positive integer: '0'"),
    (["--sizes", "1e3,2.5"], "--sizes: not a positive integer: '2.5'"),
    (["--dtypes", "f16"], "--dtypes: unknown 'f16'"),
    (["--threads", "0"], "--threads: thread counts must be >= 1"),
    (["--functions", "sigmoid,nosuch"], "unknown function 'nosuch'"),
    (["--functions", "softmax", "--shapes", "12"], "--shapes: need a 2-D or higher shape"),
    (["--functions", "softmax", "--shapes", "4x8:2"], "--shapes: axis 2 out of range"),
    (["--functions", "softmax", "--shapes", "4xa"], "--shapes: cannot read '4xa'"),
    (["--functions", "softmax", "--shapes", ","], "--shapes: no shape given"),
    (["--from-json", "x.json"], "--from-json only redraws: give --plot FILE"),
])
def test_cli_argument_errors(argv, msg, capsys):
    from mlkern.__main__ import main
    assert main(["bench", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and msg in err


def test_cli_usage_errors_exit_from_argparse(capsys):
    from mlkern.__main__ import main
    with pytest.raises(SystemExit) as e:
        main(["bench", "--repeats", "many"])
    assert e.value.code == 2 and "--repeats" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["bench", "--quick", "--full"])


def test_cli_layers_unavailable_is_a_note_not_an_error(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "mlkern.layers", None)     # import mlkern.layers -> ImportError
    from mlkern.__main__ import main
    assert main(["bench", "--functions", "layers", "--no-overhead", "--no-progress", "--no-torch"]) == 0
    out = capsys.readouterr().out
    assert "  layers: not run: mlkern.layers is not importable in this build" in out
    assert "Layers:" not in out
