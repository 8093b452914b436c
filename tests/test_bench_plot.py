"""python -m mlkern bench --plot: the speed-up table and the PNG."""
import os
import sys

import pytest

from mlkern import bench

# tools/sanitize.sh preloads libasan into an uninstrumented interpreter:
# matplotlib's C++ extension then aborts in ASan's __cxa_throw interceptor
# (CHECK failed, asan_interceptors.cpp:320) -- nothing of mlkern's runs there
_NO_MPL_UNDER_ASAN = pytest.mark.skipif(bool(os.environ.get("MLKERN_UNDER_SANITIZER")),
                                        reason="matplotlib's C++ code under a preloaded libasan")


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
    import json
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
