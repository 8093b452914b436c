"""The end-to-end training demo (``python -m mlkern demo``, :mod:`mlkern.demo`):
it learns the digits with each optimiser, its plain-NumPy twin agrees with
it, and without scikit-learn it says how to install it and exits with 2."""
import io
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import subprocess_env

from mlkern import demo


def _run(argv):
    out = io.StringIO()
    res = demo.main(argv, out=out)
    return res, out.getvalue()


# ------------------------------------------------------------------ accuracy
@pytest.mark.parametrize("optimizer", ["adam", "sgd", "momentum"])
def test_reaches_95_percent(optimizer):
    pytest.importorskip("sklearn")
    res, text = _run(["--optimizer", optimizer, "--epochs", "15", "--no-compare"])
    assert res["test_accuracy"] >= 0.95, text
    assert len(res["losses"]) == 15 and res["losses"][-1] < res["losses"][0]
    assert res["numpy_test_accuracy"] is None and res["numpy_ms_per_epoch"] is None
    assert res["ms_per_epoch"] > 0


def test_tanh_float64():
    pytest.importorskip("sklearn")
    res, text = _run(["--activation", "tanh", "--dtype", "float64", "--epochs", "10", "--no-compare"])
    assert res["test_accuracy"] >= 0.95, text
    assert res["dtype"] == "float64"


# ------------------------------------------------------- NumPy comparison
def test_numpy_comparison_float32():
    pytest.importorskip("sklearn")
    res, text = _run(["--epochs", "4"])
    assert res["numpy_test_accuracy"] is not None
    assert abs(res["numpy_test_accuracy"] - res["test_accuracy"]) <= 0.02, text
    np.testing.assert_allclose(res["numpy_losses"], res["losses"], rtol=1e-3)
    assert len(res["numpy_epoch_ms"]) == 4 and res["numpy_ms_per_epoch"] > 0
    assert res["ratio"] == pytest.approx(res["numpy_ms_per_epoch"] / res["ms_per_epoch"])
    assert "numpy" in text and "median time per epoch" in text


@pytest.mark.parametrize("optimizer,activation", [("sgd", "relu"), ("momentum", "tanh"), ("adam", "relu")])
def test_numpy_twin_is_the_same_math(optimizer, activation):
    # float64, same initialisation and batches: the two loops differ by rounding only
    pytest.importorskip("sklearn")
    res, text = _run(["--optimizer", optimizer, "--activation", activation, "--dtype", "float64",
                      "--epochs", "3"])
    np.testing.assert_allclose(res["numpy_losses"], res["losses"], rtol=1e-9)
    assert res["numpy_test_accuracies"] == res["test_accuracies"], text


# ------------------------------------------------------------------ output
def test_output_one_line_per_epoch_without_tty():
    pytest.importorskip("sklearn")
    res, text = _run(["--epochs", "3", "--no-compare"])
    assert "\r" not in text
    lines = [ln for ln in text.splitlines() if ln.startswith("epoch")]
    assert len(lines) == 3
    assert lines[0].startswith("epoch 1/3 [") and "test acc" in lines[0] and "ms" in lines[0]
    assert lines[-1].startswith("epoch 3/3 [" + "#" * demo.BAR_WIDTH + "]")
    assert "final test accuracy (mlkern)" in text


def test_progress_redrawn_in_place_on_a_tty():
    pytest.importorskip("sklearn")

    class Tty(io.StringIO):
        def isatty(self):
            return True

    out = Tty()
    demo.main(["--epochs", "2", "--no-compare", "--batch-size", "512"], out=out)
    text = out.getvalue()
    assert "\r" in text and "mlkern batch 1/3" in text
    assert len([ln for ln in text.split("\n") if ln.startswith("\repoch") and "loss" in ln]) == 2


def test_threads_option():
    pytest.importorskip("sklearn")
    import mlkern
    before = mlkern.get_num_threads()
    res, text = _run(["--epochs", "1", "--no-compare", "--threads", "1"])
    assert res["epochs"] == 1 and mlkern.get_num_threads() == before
    with pytest.raises(SystemExit) as e:
        demo.main(["--threads", "0"])
    assert e.value.code == 2


def test_bad_options_exit_2(capsys):
    with pytest.raises(SystemExit) as e:
        demo.main(["--epochs", "0"])
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        demo.main(["--optimizer", "lbfgs"])
    assert e.value.code == 2


# ------------------------------------------------------- missing scikit-learn
def test_missing_sklearn_exits_2(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(SystemExit) as e:
        demo.main(["--epochs", "1"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "scikit-learn" in err and 'pip install ".[examples]"' in err


def test_cli_missing_sklearn_no_traceback():
    code = ("import sys; sys.modules['sklearn'] = None; "
            "from mlkern.__main__ import main; sys.exit(main(['demo', '--epochs', '1']))")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       env=subprocess_env())
    assert p.returncode == 2, p.stderr
    assert "Traceback" not in p.stderr
    assert 'pip install ".[examples]"' in p.stderr


def test_cli_demo_runs():
    pytest.importorskip("sklearn")
    p = subprocess.run([sys.executable, "-m", "mlkern", "demo", "--epochs", "2", "--no-compare"],
                       capture_output=True, text=True, timeout=120, env=subprocess_env())
    assert p.returncode == 0, p.stderr
    assert "epoch 2/2" in p.stdout and "final test accuracy" in p.stdout


# ------------------------------------------------------------ demo --dask
def test_dask_demo_matches_the_eager_computation():
    """``demo --dask`` on a local 2-worker cluster: its loss, accuracy and
    weight gradient are those of the eager NumPy + mlkern computation on
    the same (dask-generated) data."""
    da = pytest.importorskip("dask.array")
    pytest.importorskip("distributed")
    import mlkern
    from mlkern import _dask_demo
    res, text = _run(["--dask", "--dask-rows", "3000", "--dask-chunk", "700", "--seed", "3"])
    assert "100 % (" in text and "cluster / single" in text, text
    rng = da.random.default_rng(3)
    X = rng.standard_normal((3000, _dask_demo.FEATURES), chunks=(700, _dask_demo.FEATURES),
                            dtype=np.float32).compute(scheduler="threads")
    y = rng.integers(0, _dask_demo.CLASSES, 3000, chunks=700).compute(scheduler="threads")
    W = _dask_demo._weights(3, np.float32)
    loss, g = mlkern.cross_entropy_with_grad(X @ W, y)
    # float64 reference of the loss: the mean of -log softmax at the labels
    z = (X @ W).astype(np.float64)
    ref = np.mean(np.log(np.sum(np.exp(z), axis=1)) - z[np.arange(3000), y])
    assert res["loss"] == pytest.approx(float(loss), rel=1e-6)
    assert res["loss"] == pytest.approx(ref, rel=1e-5)
    assert res["accuracy"] == pytest.approx(np.mean(np.argmax(z, axis=1) == y))
    np.testing.assert_allclose(res["grad_w"], X.T @ g, rtol=1e-4, atol=1e-7)
    assert res["rows_per_s_per_core"] > 0 and res["local_rows_per_s_per_core"] > 0
    # each worker in its own session, not this program's
    sessions = res["worker_sessions"]
    assert len(set(sessions)) == 2 and os.getsid(0) not in sessions, sessions


# ------------------------------------------------------------ demo --model lstm / cnn
def test_lstm_demo_learns():
    """A reduced run (5 of the 15 default epochs): the loss falls every epoch
    bar one and the test accuracy passes 90 % (the full run: >= 95 %)."""
    pytest.importorskip("sklearn")
    res, text = _run(["--model", "lstm", "--epochs", "5", "--no-compare", "--threads", "1"])
    assert res["model"] == "lstm" and res["hidden"] == 64 and len(res["losses"]) == 5
    assert res["threads"] == 1 and "1 thread," in text
    assert res["losses"][-1] < res["losses"][0] / 5, text
    assert res["test_accuracy"] >= 0.90, text
    assert res["torch_test_accuracy"] is None and res["ratio"] is None
    assert "LSTM(8, 64)" in text and "no PyTorch comparison" in text


def test_lstm_demo_pytorch_twin_is_the_same_math():
    # float64, the same initial weights (through the state dict) and batches:
    # mlkern's LSTM loop and PyTorch's differ by rounding only
    pytest.importorskip("sklearn")
    pytest.importorskip("torch")
    res, text = _run(["--model", "lstm", "--epochs", "2", "--dtype", "float64", "--hidden", "16"])
    np.testing.assert_allclose(res["torch_losses"], res["losses"], rtol=1e-9)
    assert res["torch_test_accuracies"] == res["test_accuracies"], text
    assert res["torch_ms_per_epoch"] > 0 and res["ratio"] == pytest.approx(
        res["torch_ms_per_epoch"] / res["ms_per_epoch"])
    assert "torch" in text and "median time per epoch" in text


def test_cli_lstm_demo_runs():
    pytest.importorskip("sklearn")
    p = subprocess.run([sys.executable, "-m", "mlkern", "demo", "--model", "lstm", "--epochs", "1",
                        "--no-compare", "--hidden", "8"],
                       capture_output=True, text=True, timeout=120, env=subprocess_env())
    assert p.returncode == 0, p.stderr
    assert "epoch 1/1" in p.stdout and "final test accuracy" in p.stdout


def test_cnn_demo_learns():
    """A reduced run (3 of the 15 default epochs): the loss falls by 4x and the test
    accuracy passes 90 % (the full run: >= 97 %)."""
    pytest.importorskip("sklearn")
    res, text = _run(["--model", "cnn", "--epochs", "3", "--no-compare", "--threads", "1"])
    assert res["model"] == "cnn" and res["hidden"] == 32 and len(res["losses"]) == 3
    assert res["losses"][-1] < res["losses"][0] / 4, text
    assert res["test_accuracy"] >= 0.90, text
    assert "Conv2D(1, 32, 3, padding=1) -> ReLU -> MaxPool2D(2)" in text


def test_cnn_demo_pytorch_twin_is_the_same_math():
    pytest.importorskip("sklearn")
    pytest.importorskip("torch")
    res, text = _run(["--model", "cnn", "--epochs", "2", "--dtype", "float64", "--hidden", "4",
                      "--optimizer", "momentum"])
    np.testing.assert_allclose(res["torch_losses"], res["losses"], rtol=1e-9)
    assert res["torch_test_accuracies"] == res["test_accuracies"], text
