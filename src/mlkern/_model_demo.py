"""``python -m mlkern demo --model lstm|cnn``: an :mod:`mlkern.nn` model
trained on scikit-learn's digits, next to the same model and loop in PyTorch.

* **data** -- the digits of :func:`mlkern.demo.load_data` (80/20 seeded
  split, standardised on the training split), each image read as
  ``--model lstm``: a sequence of its 8 rows (8 steps of 8 features,
  ``batch_first``); ``--model cnn``: one 8x8 channel.
* **models** -- ``lstm``: ``LSTM(8, hidden, return_sequences=False)`` (the
  last hidden state) -> ``Dense(hidden, 10)``; ``cnn``: ``Conv2D(1, hidden,
  3, padding=1)`` -> ``Activation("relu")`` -> ``MaxPool2D(2)`` ->
  ``Flatten()`` -> ``Dense(hidden*16, 10)``.  PyTorch's default
  initialisation from a seeded generator; softmax cross-entropy
  (``mlkern.cross_entropy_with_grad``, mean over the batch); an
  :mod:`mlkern.optim` optimiser on ``model.parameters()`` /
  ``model.gradients()``.
* **comparison** -- when PyTorch is importable (and without
  ``--no-compare``): the same architecture as ``torch.nn`` modules, loaded
  with the mlkern model's initial weights through ``state_dict``, the same
  optimiser (``torch.optim.Adam`` / ``SGD`` / ``SGD(momentum=0.9)``, which
  is mlkern's ``Momentum`` for a constant lr), the same mini-batches, at
  mlkern's thread count (``torch.set_num_threads``).  The two loops
  alternate epoch by epoch in one process (which runs first alternates);
  each epoch's wall time covers the training batches only and the median
  over the epochs is reported.
"""
import sys
import time

import numpy as np

from .demo import _Progress, BETAS, ADAM_EPS, MOMENTUM, INSTALL_HINT, MissingDependency, load_data

DEFAULTS = {  # model -> epochs, hidden, lr (adam, sgd, momentum)
    "lstm": {"epochs": 15, "hidden": 64, "lr": {"adam": 1e-2, "sgd": 0.5, "momentum": 0.05}},
    "cnn": {"epochs": 15, "hidden": 32, "lr": {"adam": 3e-3, "sgd": 0.1, "momentum": 0.02}},
}


def build_mlkern(kind, hidden, dtype, seed):
    """The mlkern.nn model of ``kind`` ("lstm" or "cnn")."""
    from . import nn
    if kind == "lstm":
        return nn.Sequential(
            nn.LSTM(8, hidden, batch_first=True, return_sequences=False, dtype=dtype, seed=seed),
            nn.Dense(hidden, 10, dtype=dtype, seed=seed + 1))
    return nn.Sequential(
        nn.Conv2D(1, hidden, 3, padding=1, dtype=dtype, seed=seed), nn.Activation("relu"),
        nn.MaxPool2D(2), nn.Flatten(), nn.Dense(hidden * 16, 10, dtype=dtype, seed=seed + 1))


class _TorchNet:
    """The PyTorch twin: ``torch.nn`` modules called in order, loaded from the
    mlkern model's state dict (``lstm``: ``nn.LSTM`` then ``nn.Linear`` on the
    last hidden state; ``cnn``: an ``nn.Sequential`` whose keys are mlkern's)."""

    def __init__(self, torch, kind, hidden, dtype):
        tnn = torch.nn
        self.torch, self.kind = torch, kind
        tdt = torch.float64 if dtype == np.float64 else torch.float32
        if kind == "lstm":
            self.mods = {"0.": tnn.LSTM(8, hidden, batch_first=True).to(tdt),
                         "1.": tnn.Linear(hidden, 10).to(tdt)}
        else:
            self.mods = {"": tnn.Sequential(tnn.Conv2d(1, hidden, 3, padding=1), tnn.ReLU(),
                                            tnn.MaxPool2d(2), tnn.Flatten(),
                                            tnn.Linear(hidden * 16, 10)).to(tdt)}

    def parameters(self):
        return [p for m in self.mods.values() for p in m.parameters()]

    def load(self, sd):
        for prefix, m in self.mods.items():
            m.load_state_dict({k[len(prefix):]: self.torch.from_numpy(np.array(v))
                               for k, v in sd.items() if k.startswith(prefix)})

    def __call__(self, x):
        if self.kind == "lstm":
            h_n = self.mods["0."](x)[1][0][0]          # the one layer's last hidden state
            return self.mods["1."](h_n)
        return self.mods[""](x)


class MlkernTrainer:
    def __init__(self, model, optimizer, lr):
        import mlkern
        from . import optim
        self.model = model
        self._ce = mlkern.cross_entropy_with_grad
        self._argmax = mlkern.argmax
        ps = model.parameters()
        if optimizer == "sgd":
            self.opt = optim.SGD(ps, lr=lr)
        elif optimizer == "momentum":
            self.opt = optim.Momentum(ps, lr=lr, momentum=MOMENTUM)
        else:
            self.opt = optim.Adam(ps, lr=lr, betas=BETAS, eps=ADAM_EPS)

    def train_step(self, X, y):
        logits = self.model.forward(X, training=True)
        loss, g = self._ce(logits, y)
        self.model.backward(g)
        self.opt.step(self.model.gradients())
        return float(loss)

    def predict(self, X):
        return self._argmax(self.model(X), axis=-1)


class TorchTrainer:
    def __init__(self, torch, model, optimizer, lr):
        self.torch, self.model = torch, model
        ps = list(model.parameters())
        if optimizer == "sgd":
            self.opt = torch.optim.SGD(ps, lr=lr)
        elif optimizer == "momentum":
            self.opt = torch.optim.SGD(ps, lr=lr, momentum=MOMENTUM)
        else:
            self.opt = torch.optim.Adam(ps, lr=lr, betas=BETAS, eps=ADAM_EPS)
        self._ce = torch.nn.functional.cross_entropy

    def train_step(self, X, y):
        torch = self.torch
        self.opt.zero_grad(set_to_none=True)
        loss = self._ce(self.model(torch.from_numpy(X)), torch.from_numpy(y))
        loss.backward()
        self.opt.step()
        return loss.item()

    def predict(self, X):
        with self.torch.inference_mode():
            return self.model(self.torch.from_numpy(X)).argmax(-1).numpy()


def _import_torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


def main(args, out=None):
    """Run the demo of ``args.model`` (see the module docstring); returns a
    dict as :func:`mlkern.demo.main`'s, with ``torch_*`` entries in place of
    the ``numpy_*`` ones (None without PyTorch or with ``--no-compare``)."""
    import mlkern
    from .optim import minibatches

    out = sys.stdout if out is None else out
    kind = args.model
    d = DEFAULTS[kind]
    epochs = d["epochs"] if args.epochs is None else args.epochs
    hidden = d["hidden"] if args.hidden is None else args.hidden
    lr = d["lr"][args.optimizer] if args.lr is None else args.lr
    dtype = np.dtype(args.dtype)
    try:
        Xtr, ytr, Xte, yte = load_data(args.seed, dtype)
    except MissingDependency as e:
        print("mlkern demo: the demo needs scikit-learn (its bundled digits dataset), "
              f"which could not be imported ({e}).\n"
              f"Install the examples extra:  {INSTALL_HINT}   (or: pip install scikit-learn)",
              file=sys.stderr)
        raise SystemExit(2) from None
    shape = (8, 8) if kind == "lstm" else (1, 8, 8)
    Xtr = Xtr.reshape((-1,) + shape)
    Xte = Xte.reshape((-1,) + shape)

    model = build_mlkern(kind, hidden, dtype, args.seed)
    trainers = [("mlkern", MlkernTrainer(model, args.optimizer, lr))]
    torch = _import_torch() if args.compare else None
    threads = mlkern.get_num_threads()
    if torch is not None:
        torch.set_num_threads(threads)
        tm = _TorchNet(torch, kind, hidden, dtype)
        tm.load(model.state_dict())
        trainers.append(("torch", TorchTrainer(torch, tm, args.optimizer, lr)))
    arch = (f"LSTM(8, {hidden}) on 8 rows of 8 pixels -> Dense({hidden}, 10)" if kind == "lstm" else
            f"Conv2D(1, {hidden}, 3, padding=1) -> ReLU -> MaxPool2D(2) -> Flatten -> "
            f"Dense({hidden * 16}, 10)")
    n = len(ytr)
    n_batches = -(-n // args.batch_size)
    cmp_text = (f", vs PyTorch {torch.__version__}" if torch is not None else
                (", no PyTorch comparison (not installed)" if args.compare else ", no PyTorch comparison"))
    print(f"mlkern demo --model {kind}: digits {n} train / {len(yte)} test, {arch}, "
          f"{args.optimizer} lr {lr:g}, batch {args.batch_size}, {epochs} epochs, {dtype.name}, "
          f"{threads} thread{'s' if threads != 1 else ''}{cmp_text}", file=out)
    out.flush()
    prog = _Progress(epochs, n_batches * len(trainers), out)
    hist = {name: {"loss": [], "acc": [], "ms": []} for name, _ in trainers}
    for epoch in range(1, epochs + 1):
        batches = [np.asarray(b) for b in minibatches(n, args.batch_size, shuffle=True,
                                                      seed=args.seed * 100003 + epoch)]
        done = 0
        for name, tr in (trainers if epoch % 2 else trainers[::-1]):
            spent0 = prog.spent
            total = 0.0
            t0 = time.perf_counter()
            for i, idx in enumerate(batches, 1):
                total += tr.train_step(Xtr[idx], ytr[idx]) * len(idx)
                done += 1
                prog.step(epoch, done, f"{name} batch {i}/{n_batches}")
            elapsed = time.perf_counter() - t0 - (prog.spent - spent0)
            h = hist[name]
            h["ms"].append(elapsed * 1e3)
            h["loss"].append(total / n)
            h["acc"].append(float(np.mean(tr.predict(Xte) == yte)))
        m = hist["mlkern"]
        text = f"loss {m['loss'][-1]:.4f}  test acc {100 * m['acc'][-1]:5.1f} %  mlkern {m['ms'][-1]:6.1f} ms"
        if torch is not None:
            t = hist["torch"]
            text += f"  torch {t['ms'][-1]:6.1f} ms (acc {100 * t['acc'][-1]:5.1f} %)"
        prog.end(epoch, text)

    m = hist["mlkern"]
    res = {
        "model": kind, "optimizer": args.optimizer, "lr": lr, "dtype": dtype.name, "epochs": epochs,
        "batch_size": args.batch_size, "hidden": hidden, "seed": args.seed, "threads": threads,
        "test_accuracy": m["acc"][-1], "test_accuracies": m["acc"], "losses": m["loss"],
        "epoch_ms": m["ms"], "ms_per_epoch": float(np.median(m["ms"])),
        "torch_test_accuracy": None, "torch_test_accuracies": None, "torch_losses": None,
        "torch_epoch_ms": None, "torch_ms_per_epoch": None, "ratio": None,
    }
    print(f"final test accuracy (mlkern): {100 * res['test_accuracy']:.1f} %", file=out)
    if torch is not None:
        h = hist["torch"]
        res.update(torch_test_accuracy=h["acc"][-1], torch_test_accuracies=h["acc"],
                   torch_losses=h["loss"], torch_epoch_ms=h["ms"],
                   torch_ms_per_epoch=float(np.median(h["ms"])))
        r = res["ratio"] = res["torch_ms_per_epoch"] / res["ms_per_epoch"]
        print(f"final test accuracy (torch):  {100 * res['torch_test_accuracy']:.1f} %", file=out)
        print(f"median time per epoch: mlkern {res['ms_per_epoch']:.2f} ms, "
              f"torch {res['torch_ms_per_epoch']:.2f} ms  (torch / mlkern = {r:.2f}: mlkern "
              + (f"{r:.2f}x faster)" if r >= 1 else f"{1 / r:.2f}x slower)"), file=out)
    else:
        print(f"median time per epoch: mlkern {res['ms_per_epoch']:.2f} ms", file=out)
    out.flush()
    return res
