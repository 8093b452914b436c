"""End-to-end training demo: a 2-layer MLP on scikit-learn's digits.

Run ``python -m mlkern demo`` (``--help`` for the options), or call
:func:`main` with a list of arguments.

What it does:

* **data** -- ``sklearn.datasets.load_digits()`` (1797 8x8 images, shipped
  inside scikit-learn, never downloaded), split 80/20 by a seeded
  permutation, features standardised with the training split's mean and
  standard deviation.  scikit-learn is an optional extra
  (``pip install ".[examples]"``); without it the demo prints how to
  install it and exits with status 2.
* **model** -- dense(64 -> hidden) -> relu | tanh -> dense(hidden -> 10) ->
  softmax cross-entropy (mean over the batch), He initialisation from a
  seeded ``np.random.default_rng``.  The mlkern loop uses only mlkern
  kernels (``relu`` / ``tanh``, ``relu_backward`` / ``tanh_backward``,
  ``cross_entropy_with_grad``, ``argmax``), the optimiser classes of
  :mod:`mlkern.optim` and its ``minibatches``, plus NumPy matmul and a
  column sum for the bias gradients.
* **comparison** -- the same training loop in plain NumPy (softmax
  cross-entropy with the max-subtraction trick, ``np.maximum`` relu, the
  SGD / momentum / Adam update written out as array expressions), started
  from the same initial weights and fed the same mini-batches.  The two
  loops alternate epoch by epoch in the same process, so that speed drift
  of the machine hits both alike; each epoch's wall time (the training
  batches only: not the test evaluation, not the progress display) is
  recorded and the median over the epochs is reported (which loop runs
  first alternates from epoch to epoch).  ``--no-compare``
  skips the NumPy loop.

``--model lstm`` and ``--model cnn`` run :mod:`mlkern.nn` models instead
(``mlkern._model_demo``): the digits read row by row by an LSTM, or a small
CNN (Conv2D -> ReLU -> MaxPool2D -> Flatten -> Dense), trained with
:mod:`mlkern.optim` and timed epoch by epoch against the same model and loop
in PyTorch when it is installed.

``--dask`` runs another demo instead: batch inference and the
cross-entropy loss and gradient over a chunked dataset on a local
2-worker Dask cluster, against single-process mlkern (``mlkern._dask_demo``;
docs/dask.rst).

Output: one line per epoch with a text progress bar (redrawn in place with
``\\r`` while the batches run when stdout is a terminal), then a summary.
:func:`main` returns a dict of the results (accuracies, losses, timings).
"""
import argparse
import math
import sys
import time

import numpy as np

INSTALL_HINT = 'pip install ".[examples]"'

DEFAULT_LR = {"sgd": 0.1, "momentum": 0.05, "adam": 3e-3}
MOMENTUM = 0.9
BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8
BAR_WIDTH = 30


class MissingDependency(Exception):
    """scikit-learn (the data) is not importable."""


# --------------------------------------------------------------------- data
def load_data(seed=0, dtype=np.float32, test_fraction=0.2):
    """Digits, split by a seeded permutation and standardised on the train
    split.  Returns ``(X_train, y_train, X_test, y_test)``: C-contiguous
    ``dtype`` features and int64 labels.  Raises :class:`MissingDependency`
    when scikit-learn cannot be imported."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as e:
        raise MissingDependency(str(e)) from None
    d = load_digits()
    X = np.asarray(d.data, dtype=np.float64)
    y = np.asarray(d.target, dtype=np.int64)
    perm = np.random.default_rng(seed).permutation(len(y))
    n_test = int(round(test_fraction * len(y)))
    test, train = perm[:n_test], perm[n_test:]
    mu = X[train].mean(axis=0)
    sd = X[train].std(axis=0)
    sd[sd == 0] = 1.0  # pixels that are constant on the training split
    Xs = (X - mu) / sd
    return (np.ascontiguousarray(Xs[train], dtype=dtype), y[train],
            np.ascontiguousarray(Xs[test], dtype=dtype), y[test])


def init_params(n_in, n_hidden, n_out, seed=0, dtype=np.float32):
    """He-initialised ``[W1, b1, W2, b2]`` (biases zero)."""
    rng = np.random.default_rng(seed)
    W1 = rng.standard_normal((n_in, n_hidden)) * math.sqrt(2.0 / n_in)
    W2 = rng.standard_normal((n_hidden, n_out)) * math.sqrt(2.0 / n_hidden)
    return [np.ascontiguousarray(W1, dtype=dtype), np.zeros(n_hidden, dtype=dtype),
            np.ascontiguousarray(W2, dtype=dtype), np.zeros(n_out, dtype=dtype)]


# ------------------------------------------------------------ mlkern model
class MlkernMLP:
    """The model trained with mlkern kernels and an :mod:`mlkern.optim`
    optimiser."""

    def __init__(self, params, activation, optimizer, lr):
        import mlkern
        from mlkern import optim

        self.params = [p.copy() for p in params]
        self.activation = activation
        if activation == "relu":
            self._act, self._act_bw = mlkern.relu, mlkern.relu_backward
        else:
            self._act, self._act_bw = mlkern.tanh, mlkern.tanh_backward
        self._ce = mlkern.cross_entropy_with_grad
        self._argmax = mlkern.argmax
        if optimizer == "sgd":
            self.opt = optim.SGD(self.params, lr=lr)
        elif optimizer == "momentum":
            self.opt = optim.Momentum(self.params, lr=lr, momentum=MOMENTUM)
        else:
            self.opt = optim.Adam(self.params, lr=lr, betas=BETAS, eps=ADAM_EPS)

    def train_step(self, X, y):
        W1, b1, W2, b2 = self.params
        z1 = X @ W1
        z1 += b1
        a1 = self._act(z1)
        logits = a1 @ W2
        logits += b2
        loss, g = self._ce(logits, y)
        gW2 = a1.T @ g
        gb2 = g.sum(axis=0)
        ga1 = g @ W2.T
        # relu_backward takes the forward input, tanh_backward the output
        gz1 = self._act_bw(ga1, z1 if self.activation == "relu" else a1)
        gW1 = X.T @ gz1
        gb1 = gz1.sum(axis=0)
        self.opt.step([gW1, gb1, gW2, gb2])
        return float(loss)

    def predict(self, X):
        W1, b1, W2, b2 = self.params
        return self._argmax(self._act(X @ W1 + b1) @ W2 + b2, axis=-1)


# ------------------------------------------------------------- NumPy model
class NumpyMLP:
    """The same model, loss and optimiser in plain NumPy."""

    def __init__(self, params, activation, optimizer, lr):
        self.params = [p.copy() for p in params]
        self.activation = activation
        self.optimizer = optimizer
        self.lr = lr
        self.t = 0
        self.m = [np.zeros_like(p) for p in self.params]  # velocity / first moment
        self.v = [np.zeros_like(p) for p in self.params]  # second moment (adam)

    def _act(self, z):
        return np.maximum(z, 0) if self.activation == "relu" else np.tanh(z)

    @staticmethod
    def _cross_entropy_with_grad(logits, y):
        n = logits.shape[0]
        rows = np.arange(n)
        shifted = logits - logits.max(axis=1, keepdims=True)
        e = np.exp(shifted)
        s = e.sum(axis=1, keepdims=True)
        loss = -(shifted[rows, y] - np.log(s[:, 0])).mean()
        grad = e / s
        grad[rows, y] -= 1
        grad /= n
        return loss, grad

    def _step(self, grads):
        self.t += 1
        lr = self.lr(self.t) if callable(self.lr) else self.lr
        if self.optimizer == "sgd":
            for p, g in zip(self.params, grads):
                p -= lr * g
        elif self.optimizer == "momentum":
            for p, g, v in zip(self.params, grads, self.m):
                v *= MOMENTUM
                v += lr * g
                p -= v
        else:
            b1, b2 = BETAS
            c1 = 1.0 - b1 ** self.t
            c2 = 1.0 - b2 ** self.t
            for p, g, m, v in zip(self.params, grads, self.m, self.v):
                m *= b1
                m += (1.0 - b1) * g
                v *= b2
                v += (1.0 - b2) * (g * g)
                p -= (lr / c1) * m / (np.sqrt(v) / math.sqrt(c2) + ADAM_EPS)

    def train_step(self, X, y):
        W1, b1, W2, b2 = self.params
        z1 = X @ W1
        z1 += b1
        a1 = self._act(z1)
        logits = a1 @ W2
        logits += b2
        loss, g = self._cross_entropy_with_grad(logits, y)
        gW2 = a1.T @ g
        gb2 = g.sum(axis=0)
        ga1 = g @ W2.T
        if self.activation == "relu":
            gz1 = ga1 * (z1 > 0)
        else:
            gz1 = ga1 * (1 - a1 * a1)
        gW1 = X.T @ gz1
        gb1 = gz1.sum(axis=0)
        self._step([gW1, gb1, gW2, gb2])
        return float(loss)

    def predict(self, X):
        W1, b1, W2, b2 = self.params
        return np.argmax(self._act(X @ W1 + b1) @ W2 + b2, axis=-1)


# -------------------------------------------------------------- display
def _bar(fraction, width=BAR_WIDTH):
    k = int(round(max(0.0, min(1.0, fraction)) * width))
    return "[" + "#" * k + "-" * (width - k) + "]"


class _Progress:
    """Per-epoch line; in-place redraws (``\\r``) only on a terminal.  The
    time spent drawing is accumulated in :attr:`spent` so that the epoch
    timings can leave it out."""

    def __init__(self, epochs, n_steps, out):
        self.epochs, self.n_steps, self.out = epochs, n_steps, out
        self.tty = bool(getattr(out, "isatty", lambda: False)())
        self.w = len(str(epochs))
        self.spent = 0.0

    def _head(self, epoch, fraction):
        return f"epoch {epoch:>{self.w}}/{self.epochs} {_bar((epoch - 1 + fraction) / self.epochs)}"

    def step(self, epoch, done, label):
        """``done`` of the epoch's ``n_steps`` batches (both loops) are done;
        ``label``: what runs now (e.g. ``"mlkern batch 3/23"``)."""
        if not self.tty:
            return
        t0 = time.perf_counter()
        self.out.write("\r" + self._head(epoch, done / self.n_steps) + " " + label + "\x1b[K")
        self.out.flush()
        self.spent += time.perf_counter() - t0

    def end(self, epoch, text):
        self.out.write(("\r" if self.tty else "") + self._head(epoch, 1.0) + " " + text
                       + ("\x1b[K" if self.tty else "") + "\n")
        self.out.flush()


# ------------------------------------------------------------------ CLI
def build_parser(p=None):
    """Add the demo's options to ``p`` (a new parser when None)."""
    if p is None:
        p = argparse.ArgumentParser(prog="python -m mlkern demo",
                                    description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--model", choices=("mlp", "lstm", "cnn"), default="mlp",
                   help="mlp (default): the 2-layer MLP written with mlkern kernels, against plain "
                        "NumPy; lstm: the images read row by row by an mlkern.nn LSTM; cnn: an "
                        "mlkern.nn Conv2D/MaxPool2D network (lstm and cnn against PyTorch when "
                        "installed)")
    p.add_argument("--optimizer", choices=("sgd", "momentum", "adam"), default="adam",
                   help="optimiser from mlkern.optim (default adam)")
    p.add_argument("--lr", type=float, default=None,
                   help="learning rate (default: " + ", ".join(f"{k} {v:g}" for k, v in DEFAULT_LR.items()) + ")")
    p.add_argument("--epochs", type=int, default=None,
                   help="training epochs (default: mlp 30, lstm 15, cnn 15)")
    p.add_argument("--batch-size", type=int, default=64, help="mini-batch size (default 64)")
    p.add_argument("--hidden", type=int, default=None,
                   help="hidden units (mlp, lstm: default 64) or convolution channels (cnn: default 32)")
    p.add_argument("--activation", choices=("relu", "tanh"), default="relu",
                   help="hidden activation (default relu)")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                   help="parameter and data dtype (default float32)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the split, the initialisation and the batch order (default 0)")
    p.add_argument("--threads", type=int, default=None,
                   help="mlkern's thread count for the run (and PyTorch's, --model lstm/cnn); "
                        "default: mlkern.get_num_threads()")
    p.add_argument("--no-compare", dest="compare", action="store_false",
                   help="skip the comparison loop (plain NumPy for mlp, PyTorch for lstm and cnn)")
    p.add_argument("--dask", action="store_true",
                   help="instead: batch inference and the cross-entropy gradient over a chunked "
                        "dataset on a local 2-worker Dask cluster (needs mlkern[dask])")
    p.add_argument("--dask-rows", type=int, default=2_000_000,
                   help="--dask: rows of the dataset (default 2000000)")
    p.add_argument("--dask-chunk", type=int, default=100_000,
                   help="--dask: rows per chunk (default 100000)")
    return p


def check_args(p, a):
    """Reject option values the demo cannot use (``p.error`` exits with status 2)."""
    if a.epochs is not None and a.epochs < 1:
        p.error("--epochs must be >= 1")
    if a.batch_size < 1:
        p.error("--batch-size must be >= 1")
    if a.hidden is not None and a.hidden < 1:
        p.error("--hidden must be >= 1")
    if a.seed < 0:
        p.error("--seed must be >= 0")
    if a.lr is not None and not (a.lr > 0 and math.isfinite(a.lr)):
        p.error("--lr must be a positive number")
    if a.threads is not None and a.threads < 1:
        p.error("--threads must be >= 1")
    if a.dask_rows < 1 or a.dask_chunk < 1:
        p.error("--dask-rows and --dask-chunk must be >= 1")


def main(argv=None, *, args=None, out=None):
    """Run the demo.  ``argv``: the options (``sys.argv[1:]`` when None);
    ``args``: an already parsed namespace (from ``python -m mlkern demo``);
    ``out``: where to print (``sys.stdout``).

    Returns a dict: ``test_accuracy``, ``numpy_test_accuracy``,
    ``ms_per_epoch``, ``numpy_ms_per_epoch`` (medians over the epochs),
    ``ratio`` (numpy / mlkern), ``losses`` and ``numpy_losses`` (mean training
    loss per epoch), ``test_accuracies`` and ``numpy_test_accuracies`` (per
    epoch), ``epoch_ms`` and ``numpy_epoch_ms`` and the settings used; the
    NumPy entries are None with ``--no-compare``.

    Without scikit-learn: prints how to install it to stderr and raises
    ``SystemExit(2)``.
    """
    if args is None:
        p = build_parser()
        args = p.parse_args(argv)
        check_args(p, args)
    out = sys.stdout if out is None else out
    if getattr(args, "threads", None) is not None:
        import mlkern
        with mlkern.threads(args.threads):
            return main(args=argparse.Namespace(**dict(vars(args), threads=None)), out=out)
    if getattr(args, "dask", False):
        from ._dask_demo import main as dask_main
        return dask_main(args, out)
    if getattr(args, "model", "mlp") != "mlp":
        from ._model_demo import main as model_main
        return model_main(args, out)
    if args.epochs is None:
        args.epochs = 30
    if args.hidden is None:
        args.hidden = 64
    dtype = np.dtype(args.dtype)
    lr = DEFAULT_LR[args.optimizer] if args.lr is None else args.lr

    try:
        Xtr, ytr, Xte, yte = load_data(args.seed, dtype)
    except MissingDependency as e:
        print("mlkern demo: the demo needs scikit-learn (its bundled digits dataset), "
              f"which could not be imported ({e}).\n"
              f"Install the examples extra:  {INSTALL_HINT}   (or: pip install scikit-learn)",
              file=sys.stderr)
        raise SystemExit(2) from None

    from mlkern.optim import minibatches

    params0 = init_params(Xtr.shape[1], args.hidden, 10, seed=args.seed, dtype=dtype)
    models = [("mlkern", MlkernMLP(params0, args.activation, args.optimizer, lr))]
    if args.compare:
        models.append(("numpy", NumpyMLP(params0, args.activation, args.optimizer, lr)))

    n = len(ytr)
    n_batches = -(-n // args.batch_size)
    print(f"mlkern demo: digits {n} train / {len(yte)} test, MLP 64-{args.hidden}-10 "
          f"({args.activation}), {args.optimizer} lr {lr:g}, batch {args.batch_size}, "
          f"{args.epochs} epochs, {dtype.name}"
          + ("" if args.compare else ", no NumPy comparison"), file=out)
    out.flush()
    prog = _Progress(args.epochs, n_batches * len(models), out)
    hist = {name: {"loss": [], "acc": [], "ms": []} for name, _ in models}

    for epoch in range(1, args.epochs + 1):
        # the same batch order for both loops: the seed depends on the epoch only
        batches = [np.asarray(b) for b in minibatches(n, args.batch_size, shuffle=True,
                                                      seed=args.seed * 100003 + epoch)]
        done = 0
        # alternate which loop runs first, so that neither always gets the warmer caches
        for name, model in (models if epoch % 2 else models[::-1]):
            spent0 = prog.spent
            total = 0.0
            t0 = time.perf_counter()
            for i, idx in enumerate(batches, 1):
                total += model.train_step(Xtr[idx], ytr[idx]) * len(idx)
                done += 1
                prog.step(epoch, done, f"{name} batch {i}/{n_batches}")
            elapsed = time.perf_counter() - t0 - (prog.spent - spent0)
            h = hist[name]
            h["ms"].append(elapsed * 1e3)
            h["loss"].append(total / n)
            h["acc"].append(float(np.mean(model.predict(Xte) == yte)))
        m = hist["mlkern"]
        text = f"loss {m['loss'][-1]:.4f}  test acc {100 * m['acc'][-1]:5.1f} %  mlkern {m['ms'][-1]:6.1f} ms"
        if args.compare:
            text += f"  numpy {hist['numpy']['ms'][-1]:6.1f} ms"
        prog.end(epoch, text)

    m = hist["mlkern"]
    res = {
        "optimizer": args.optimizer, "lr": lr, "activation": args.activation,
        "dtype": dtype.name, "epochs": args.epochs, "batch_size": args.batch_size,
        "hidden": args.hidden, "seed": args.seed,
        "test_accuracy": m["acc"][-1], "test_accuracies": m["acc"], "losses": m["loss"],
        "epoch_ms": m["ms"], "ms_per_epoch": float(np.median(m["ms"])),
        "numpy_test_accuracy": None, "numpy_test_accuracies": None, "numpy_losses": None,
        "numpy_epoch_ms": None, "numpy_ms_per_epoch": None, "ratio": None,
    }
    print(f"final test accuracy (mlkern): {100 * res['test_accuracy']:.1f} %", file=out)
    if args.compare:
        h = hist["numpy"]
        res.update(numpy_test_accuracy=h["acc"][-1], numpy_test_accuracies=h["acc"],
                   numpy_losses=h["loss"], numpy_epoch_ms=h["ms"],
                   numpy_ms_per_epoch=float(np.median(h["ms"])))
        r = res["ratio"] = res["numpy_ms_per_epoch"] / res["ms_per_epoch"]
        print(f"final test accuracy (numpy):  {100 * res['numpy_test_accuracy']:.1f} %", file=out)
        print(f"median time per epoch: mlkern {res['ms_per_epoch']:.2f} ms, "
              f"numpy {res['numpy_ms_per_epoch']:.2f} ms  (numpy / mlkern = {r:.2f}: mlkern "
              + (f"{r:.2f}x faster)" if r >= 1 else f"{1 / r:.2f}x slower)"), file=out)
    else:
        print(f"median time per epoch: mlkern {res['ms_per_epoch']:.2f} ms", file=out)
    out.flush()
    return res


if __name__ == "__main__":
    main()
    sys.exit(0)
