"""pytest-benchmark suite: mlkern's layers (``mlkern.layers``) against NumPy
and PyTorch.

One benchmark group per case x size x dtype x threads, named like
``dense_relu-32x512x512-f32-T1`` or ``embedding_fwd_bwd-50000x256_4096-f64-T2``.
The cases, peers, inputs and float64 references are
:mod:`mlkern.bench.families.layers` (shared with ``python -m mlkern bench
--functions layers``):

* ``dense_relu``: mlkern ``dense(x, W, b, activation="relu", out=)``;
  NumPy ``matmul(out=)``, ``+= b``, ``maximum(out=)`` and the bare GEMM
  ``x @ W.T`` (checked against the GEMM alone); torch
  ``F.relu(F.linear(x, W, b))`` ([a]);
* ``dense_relu_fwd_bwd``: the forward with ``return_saved=True`` then
  ``dense_backward``; NumPy's forward and three GEMMs; torch autograd ([a]);
* ``embedding_fwd_bwd``: ``embedding(out=)`` then ``embedding_backward(out=)``;
  NumPy ``take(out=)`` and ``add.at``; torch ``F.embedding`` + autograd ([a]).

Sizes: dense (M, K, N) = (1, 512, 512), (32, 512, 512), (256, 1024, 1024);
embedding a 50,000 x 256 table, 4,096 tokens.  ``MLKERN_BENCH_LAYER_SHAPES=smoke``
takes the small stand-ins of the smoke run.  ``--bench-dtypes``,
``--bench-threads`` and ``--bench-no-torch`` of the conftest apply.
Threads: ``mlkern.threads(T)``; torch ``set_num_threads(T)`` (checked);
NumPy's OpenBLAS limited to T threads (threadpoolctl).  All T=1 benchmarks
run first, then T=2 by runtime (NumPy, mlkern, torch).

Every benchmark checks its results once, after timing, against float64:
each output and gradient within 2e-4 (float32) / 1e-8 (float64) of
max(1, max|reference|).  An mlkern build without ``mlkern.layers`` skips
mlkern's entries, visibly.

    python -m pytest benchmarks/bench_layers.py --benchmark-disable -q   # correctness pass
    python -m pytest benchmarks/bench_layers.py -k "dense_relu and 32x512x512 and T1"
"""
import os
import re

import numpy as np
import pytest

import mlkern
from mlkern import bench as B

_INPUTS = B.Inputs()          # module-level cache: one draw (and reference) per size/dtype


def _slug(name):
    return re.sub(r"[^A-Za-z0-9.]+", "_", name).strip("_")


def _parse(spec, conv):
    return [conv(t.strip()) for t in spec.split(",") if t.strip()]


def _points():
    smoke = os.environ.get("MLKERN_BENCH_LAYER_SHAPES", "").strip().lower() in ("smoke", "quick", "small")
    return list(B.LAYER_SHAPES_SMOKE if smoke else B.LAYER_SHAPES)


def _units(config):
    """(case, impl, dtype, point, T) in run order (see the module docstring)."""
    dtypes = [np.dtype(B.DTYPES[t]) for t in _parse(config.getoption("bench_dtypes"), str)]
    threads = sorted(set(_parse(config.getoption("bench_threads"), int)))
    runtimes = ("mlkern", "numpy") if config.getoption("bench_no_torch") else ("mlkern", "numpy", "torch")
    units = []
    for T in threads:
        phases = [runtimes] if T == 1 else [(r,) for r in ("numpy", "mlkern", "torch") if r in runtimes]
        for rts in phases:
            for p in _points():
                for dtype in dtypes:
                    for case in B.LAYER_CASES:
                        if case.family == p.kind:
                            units.extend((case, impl, dtype, p, T) for impl in case.all_impls(rts))
    return units


def _id(unit):
    case, impl, dtype, p, T = unit
    return f"{case.name}-{_slug(p.spec)}-{B.dtype_tag(dtype)}-T{T}-{impl.runtime}:{_slug(impl.name)}"


def pytest_generate_tests(metafunc):
    if "unit" in metafunc.fixturenames:
        units = _units(metafunc.config)
        metafunc.parametrize("unit", units, ids=[_id(u) for u in units])
    if "pool_unit" in metafunc.fixturenames:      # pooling, locally connected (issue 15)
        units = _pool_units(metafunc.config)
        metafunc.parametrize("pool_unit", units,
                             ids=[f"{c}-{lay}-{B.dtype_tag(dt)}-T{T}-{rt}" for c, lay, dt, T, rt in units])


def test_bench(benchmark, unit):
    case, impl, dtype, p, T = unit
    benchmark.group = f"{case.name}-{_slug(p.spec)}-{B.dtype_tag(dtype)}-T{T}"
    benchmark.name = impl.label
    benchmark.extra_info.update(function=case.name, shape=list(p.dims), dtype=B.dtype_tag(dtype),
                                threads=T, runtime=impl.runtime, impl=impl.name)
    if impl.runtime == "torch":
        pytest.importorskip("torch")
    if not impl.available():
        pytest.skip(f"{impl.name} is not available (mlkern.layers missing from this build?)")
    ins = _INPUTS.for_case(case, p, dtype)
    out = B.new_outputs(case, p, dtype)
    fn = B.prepare(impl, ins, out)
    with np.errstate(all="ignore"):
        if impl.runtime == "mlkern":
            with mlkern.threads(T):
                res = benchmark(fn)
        elif impl.runtime == "torch":
            B.set_torch_threads(T)
            res = benchmark(fn)
        else:                 # NumPy: OpenBLAS at T threads
            with B.blas_threads(T):
                res = benchmark(fn)
    stats = getattr(benchmark, "stats", None)
    if stats is not None and getattr(stats, "stats", None) is not None:
        med = stats.stats.median * 1e9
        fl = case.flops(p)
        if fl is not None:
            benchmark.extra_info["gflops"] = fl / med
        else:
            benchmark.extra_info["gbps"] = case.nbytes(p, dtype.itemsize) / med
    B.assert_close(case, ins, res, p, impl, cache=_INPUTS,
                   label=f"{case.name} {B.dtype_tag(dtype)} {p.spec} T={T} {impl.name}")


# ---------------------------------------------------------------- convolutions
# conv1d / conv2d forward and forward + backward (issue 15's works; smaller
# stand-ins with MLKERN_BENCH_LAYER_SHAPES=smoke), mlkern in both layouts,
# torch in contiguous and channels-last memory format.  Groups like
# ``conv2d_fwd-32x64x56x56_64k3p1-f32-T1``.  Each result is checked once,
# after timing, against torch in float64 (without torch: timed, not checked).
# The separate-process ratios of the closing note: benchmarks/conv_bars.py.
_CONV_WORKS = [(2, (32, 64, 56, 56), 64, 3, 1), (2, (8, 3, 224, 224), 64, 3, 1),
               (1, (64, 128, 1024), 128, 5, 2)]
_CONV_SMOKE = [(2, (4, 16, 20, 20), 16, 3, 1), (1, (4, 32, 128), 32, 5, 2)]


def _conv_units(config):
    smoke = os.environ.get("MLKERN_BENCH_LAYER_SHAPES", "").strip().lower() in ("smoke", "quick", "small")
    dtypes = [np.dtype(B.DTYPES[t]) for t in _parse(config.getoption("bench_dtypes"), str)]
    threads = sorted(set(_parse(config.getoption("bench_threads"), int)))
    rts = ("mlkern",) if config.getoption("bench_no_torch") else ("mlkern", "torch")
    return [(work, kind, dt, T, rt, last) for T in threads for work in (_CONV_SMOKE if smoke else _CONV_WORKS)
            for kind in ("fwd", "fwd_bwd") for dt in dtypes for rt in rts for last in (False, True)
            if not (rt == "torch" and last and work[0] == 1)]


def _conv_id(u):
    (nd, xs, O, k, p), kind, dt, T, rt, last = u
    lay = ("NCL", "NLC")[last] if nd == 1 else ("NCHW", "NHWC")[last]
    return (f"conv{nd}d_{kind}-{'x'.join(map(str, xs))}_{O}k{k}p{p}-{B.dtype_tag(dt)}-T{T}-{rt}:"
            f"{lay if rt == 'mlkern' else ('channels_last' if last else 'contiguous')}")


def pytest_generate_tests_conv(metafunc):   # (called from pytest_generate_tests below)
    if "conv_unit" in metafunc.fixturenames:
        units = _conv_units(metafunc.config)
        metafunc.parametrize("conv_unit", units, ids=[_conv_id(u) for u in units])
# ---------------------------------------------------------------- recurrent layers (issue 16)
# rnn / lstm / gru, forward and forward+backward, mlkern against PyTorch's
# nn.RNN / nn.LSTM / nn.GRU (autograd for the backward), float32 and float64,
# issue 16's shape T=100, N=32, I=H=256 (MLKERN_BENCH_LAYER_SHAPES=smoke:
# T=8, N=4, I=H=32).  Groups like ``lstm_fwd_bwd-100x32x256x256-f32-T1``.
# Forward: the output and h_n; forward+backward: return_saved=True, then the
# backward with grad_output and grad_h_n given (grad_x, grad_h0 and the
# weight and bias gradients computed).  Checked once after timing: mlkern
# against its own float64 run (2e-4 / 1e-8 of max(1, |reference|)) and, with
# PyTorch, PyTorch's result against mlkern's.  All T=1 entries run first.
_REC_KINDS = ("rnn", "lstm", "gru")
_REC_GATES = {"rnn": 1, "lstm": 4, "gru": 3}


def _rec_shape():
    smoke = os.environ.get("MLKERN_BENCH_LAYER_SHAPES", "").strip().lower() in ("smoke", "quick", "small")
    return (8, 4, 32, 32) if smoke else (100, 32, 256, 256)


def _rec_inputs(kind, dt):
    T, N, I, H = _rec_shape()
    g = _REC_GATES[kind]
    rng = np.random.default_rng(16)
    s = 1 / np.sqrt(H)
    d = dict(x=rng.standard_normal((T, N, I)), h0=rng.standard_normal((N, H)),
             c0=rng.standard_normal((N, H)), wi=rng.uniform(-s, s, (g * H, I)),
             wh=rng.uniform(-s, s, (g * H, H)), bi=rng.uniform(-s, s, g * H),
             bh=rng.uniform(-s, s, g * H), go=rng.standard_normal((T, N, H)),
             gh=rng.standard_normal((N, H)))
    return {k: v.astype(dt) for k, v in d.items()}


def _rec_mlkern(kind, mode, d):
    from mlkern import layers as L
    args = ((d["x"], d["h0"], d["c0"]) if kind == "lstm" else (d["x"], d["h0"])) \
        + (d["wi"], d["wh"], d["bi"], d["bh"])
    f = getattr(L, kind)
    if mode == "fwd":
        def run():
            out, hn = f(*args)
            return [out] + (list(hn) if kind == "lstm" else [hn])
        return run
    back = getattr(L, kind + "_backward")

    def run():
        r = f(*args, return_saved=True)
        g = back(d["go"], d["gh"], None, r[2]) if kind == "lstm" else back(d["go"], d["gh"], r[2])
        return [a for a in g if a is not None]
    return run


def _rec_torch(kind, mode, d):
    torch = pytest.importorskip("torch")
    T, N, I, H = _rec_shape()
    tdt = torch.float64 if d["x"].dtype == np.float64 else torch.float32
    mod = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[kind](I, H).to(tdt)
    with torch.no_grad():
        for name, key in (("weight_ih_l0", "wi"), ("weight_hh_l0", "wh"), ("bias_ih_l0", "bi"),
                          ("bias_hh_l0", "bh")):
            getattr(mod, name).copy_(torch.from_numpy(d[key]))
    xt, h0t, c0t = (torch.from_numpy(d[k]) for k in ("x", "h0", "c0"))
    got, ght = torch.from_numpy(d["go"]), torch.from_numpy(d["gh"])

    def state(h, c):
        return (h[None], c[None]) if kind == "lstm" else h[None]

    if mode == "fwd":
        def run():
            with torch.no_grad():
                out, hn = mod(xt, state(h0t, c0t))
            hs = list(hn) if kind == "lstm" else [hn]
            return [out.numpy()] + [h[0].numpy() for h in hs]
        return run

    def run():
        xg = xt.clone().requires_grad_()
        hg = h0t.clone().requires_grad_()
        cg = c0t.clone().requires_grad_()
        out, hn = mod(xg, state(hg, cg))
        hn = hn[0] if kind == "lstm" else hn
        ((out * got).sum() + (hn[0] * ght).sum()).backward()
        g = [xg.grad.numpy(), hg.grad.numpy()] + ([cg.grad.numpy()] if kind == "lstm" else [])
        g += [p.grad.numpy() for p in (
            mod.weight_ih_l0, mod.weight_hh_l0, mod.bias_ih_l0, mod.bias_hh_l0)]
        mod.zero_grad(set_to_none=True)
        return g
    return run


def _rec_units(config):
    dtypes = [np.dtype(B.DTYPES[t]) for t in _parse(config.getoption("bench_dtypes"), str)]
    threads = sorted(set(_parse(config.getoption("bench_threads"), int)))
    runtimes = ("mlkern",) if config.getoption("bench_no_torch") else ("mlkern", "torch")
    return [(kind, mode, dt, T, rt) for T in threads for rt in runtimes for dt in dtypes
            for kind in _REC_KINDS for mode in ("fwd", "fwd_bwd")]


def _rec_id(u):
    kind, mode, dt, T, rt = u
    return f"{kind}_{mode}-{'x'.join(map(str, _rec_shape()))}-{B.dtype_tag(dt)}-T{T}-{rt}"


@pytest.fixture(scope="module")
def _rec_refs():
    return {}


def pytest_generate_tests_recurrent(metafunc):     # called from pytest_generate_tests below
    if "rec_unit" in metafunc.fixturenames:
        units = _rec_units(metafunc.config)
        metafunc.parametrize("rec_unit", units, ids=[_rec_id(u) for u in units])


_pgt_dense = pytest_generate_tests


def pytest_generate_tests(metafunc):        # noqa: F811  (dense/embedding, conv, recurrent units)
    _pgt_dense(metafunc)
    pytest_generate_tests_conv(metafunc)
    pytest_generate_tests_recurrent(metafunc)


def test_bench_conv(benchmark, conv_unit):
    (nd, xs, O, k, p), kind, dt, T, rt, last = conv_unit
    benchmark.group = _conv_id(conv_unit).rsplit("-", 1)[0]
    rng = np.random.default_rng(0)
    x = rng.standard_normal(xs).astype(dt)
    w = (rng.standard_normal((O, xs[1]) + (k,) * nd) / np.sqrt(xs[1] * k ** nd)).astype(dt)
    b = rng.standard_normal(O).astype(dt)
    if rt == "torch":
        torch = pytest.importorskip("torch")
        F = torch.nn.functional
        tf = F.conv1d if nd == 1 else F.conv2d
        mf = torch.channels_last if last else torch.contiguous_format
        B.set_torch_threads(T)
        xt, wt, bt = (torch.from_numpy(a) for a in (x, w, b))
        xt, wt = xt.contiguous(memory_format=mf), wt.contiguous(memory_format=mf)
        xg, wg, bg = (t.clone().requires_grad_() for t in (xt, wt, bt))

        def f():
            if kind == "fwd":
                with torch.inference_mode():
                    return (tf(xt, wt, bt, padding=p).numpy(),)
            xg.grad = wg.grad = bg.grad = None
            y = tf(xg, wg, bg, padding=p)
            y.backward(y.detach())
            return y.detach().numpy(), xg.grad.numpy(), wg.grad.numpy(), bg.grad.numpy()
        res = benchmark(f)
    else:
        if not hasattr(mlkern.layers, "conv2d"):
            pytest.skip("mlkern.layers has no convolutions in this build")
        L = mlkern.layers
        fwd, bwd = (L.conv1d, L.conv1d_backward) if nd == 1 else (L.conv2d, L.conv2d_backward)
        lay = ("NCL", "NLC")[last] if nd == 1 else ("NCHW", "NHWC")[last]
        xx = np.ascontiguousarray(np.moveaxis(x, 1, -1)) if last else x

        def f():
            y = fwd(xx, w, b, padding=p, layout=lay)
            if kind == "fwd":
                return (y,)
            return (y,) + bwd(y, xx, w, padding=p, layout=lay)
        with mlkern.threads(T):
            res = benchmark(f)
        if last:
            res = tuple(np.moveaxis(a, -1, 1) if i < 2 else a for i, a in enumerate(res))
    stats = getattr(benchmark, "stats", None)
    if stats is not None and getattr(stats, "stats", None) is not None:
        P = int(np.prod(res[0].shape[2:]))
        fl = 2.0 * xs[0] * P * O * xs[1] * k ** nd * (1 if kind == "fwd" else 3)
        benchmark.extra_info["gflops"] = fl / (stats.stats.median * 1e9)
    # the check: float64 forward (+ backward with grad_output = y) by torch
    try:
        import torch
        F = torch.nn.functional
        tf = F.conv1d if nd == 1 else F.conv2d
        x64, w64, b64 = (torch.from_numpy(a.astype(np.float64)).requires_grad_() for a in (x, w, b))
        y64 = tf(x64, w64, b64, padding=p)
        ref = [y64.detach().numpy()]
        if kind != "fwd":
            y64.backward(torch.from_numpy(res[0].astype(np.float64)))
            ref += [x64.grad.numpy(), w64.grad.numpy(), b64.grad.numpy()]
    except ImportError:         # no independent float64 reference here: timed only
        return
    tol = 2e-4 if dt == np.float32 else 1e-8
    for a, r in zip(res, ref):
        np.testing.assert_allclose(a, r, rtol=0, atol=tol * max(1.0, float(np.abs(r).max())))
# ---------------------------------------------------------------- pooling, locally connected (issue 15)
# A section of its own (not in mlkern.bench.families): groups named like
# ``max_pool2d_k3s2p1-32x64x112x112-NHWC-f32-T1``.  mlkern NCHW is compared
# with PyTorch's contiguous tensor, NHWC with its channels_last tensor.
# Checked once after timing (the first two images): pooling against a float64 NumPy reference
# (sliding windows over the -inf / 0 padded input), locally connected
# against a float64 einsum.  MLKERN_BENCH_LAYER_SHAPES=smoke: small stand-ins.
def _pool_shape():
    smoke = os.environ.get("MLKERN_BENCH_LAYER_SHAPES", "").strip().lower() in ("smoke", "quick", "small")
    return ((2, 8, 28, 28), (4, 8, 10, 10)) if smoke else ((32, 64, 112, 112), (32, 16, 24, 24))


_POOL_CASES = ("max_pool2d_k3s2p1", "avg_pool2d_k3s2p1", "max_pool2d_bwd_k3s2p1", "avg_pool2d_bwd_k3s2p1",
               "locally_connected2d_k3", "locally_connected2d_fwd_bwd_k3")


def _pool_units(config):
    dtypes = [np.dtype(B.DTYPES[t]) for t in _parse(config.getoption("bench_dtypes"), str)]
    threads = sorted(set(_parse(config.getoption("bench_threads"), int)))
    rts = ("mlkern",) if config.getoption("bench_no_torch") else ("mlkern", "torch")
    return [(c, lay, dt, T, rt) for T in threads for rt in rts for c in _POOL_CASES
            for lay in ("NCHW", "NHWC") for dt in dtypes]


def _pool_ref(x, kind):
    """float64 (N, C, OH, OW) of k3 s2 p1 pooling of NCHW x (count_include_pad)."""
    pad = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (1, 1), (1, 1)),
                 constant_values=-np.inf if kind == "max" else 0.0)
    win = np.lib.stride_tricks.sliding_window_view(pad, (3, 3), axis=(2, 3))[:, :, ::2, ::2]
    return win.max(axis=(-2, -1)) if kind == "max" else win.mean(axis=(-2, -1))


def _lc_ref(x, w):
    N, C, H, W = x.shape
    OH, OW = H - 2, W - 2
    p = np.lib.stride_tricks.sliding_window_view(x.astype(np.float64), (3, 3), axis=(2, 3))
    return np.einsum("nchwij,hwocij->nohw", p[:, :, :OH, :OW], w.astype(np.float64))


def test_bench_pool_local(benchmark, pool_unit):
    case, lay, dtype, T, rt = pool_unit
    pshape, lshape = _pool_shape()
    local = case.startswith("locally")
    shape = lshape if local else pshape
    benchmark.group = f"{case}-{'x'.join(map(str, shape))}-{lay}-{B.dtype_tag(dtype)}-T{T}"
    benchmark.name = rt
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(dtype)                  # NCHW
    xin = np.ascontiguousarray(x.transpose(0, 2, 3, 1)) if lay == "NHWC" else x
    w = rng.standard_normal((shape[2] - 2, shape[3] - 2, 32, shape[1], 3, 3)).astype(dtype) * 0.1
    kind = "max" if case.startswith("max") else "avg"
    bwd = "bwd" in case
    if rt == "torch":
        torch = pytest.importorskip("torch")
        F = torch.nn.functional
        B.set_torch_threads(T)
        xt = torch.from_numpy(x)
        if lay == "NHWC":
            xt = xt.contiguous(memory_format=torch.channels_last)
        if local:
            wt = torch.from_numpy(w.reshape(-1, 32, shape[1] * 9))
            xg = xt.clone().requires_grad_()
            wg = wt.clone().requires_grad_()

            def fn():
                if bwd:
                    y = torch.einsum("nkl,lok->nol", F.unfold(xg, 3), wg)
                    y.backward(y.detach())
                    return y
                with torch.inference_mode():
                    return torch.einsum("nkl,lok->nol", F.unfold(xt, 3), wt)
        else:
            pf = F.max_pool2d if kind == "max" else F.avg_pool2d
            xg = xt.clone().requires_grad_()

            def fn():
                if bwd:
                    y = pf(xg, 3, 2, 1)
                    y.backward(y.detach())
                    return y
                with torch.inference_mode():
                    return pf(xt, 3, 2, 1)
        benchmark(fn)
        return
    import mlkern.layers as L
    if local:
        def fn():
            y = L.locally_connected2d(xin, w, stride=1, layout=lay)
            if bwd:
                L.locally_connected2d_backward(y, xin, w, has_bias=False, layout=lay)
            return y
    elif kind == "max":
        def fn():
            if bwd:
                y, i = L.max_pool2d(xin, 3, 2, 1, return_indices=True, layout=lay)
                L.max_pool2d_backward(y, i, xin.shape, layout=lay)
                return y
            return L.max_pool2d(xin, 3, 2, 1, layout=lay)
    else:
        def fn():
            y = L.avg_pool2d(xin, 3, 2, 1, layout=lay)
            if bwd:
                L.avg_pool2d_backward(y, xin.shape, 3, 2, 1, layout=lay)
            return y
    with mlkern.threads(T):
        y = benchmark(fn)
    y = np.ascontiguousarray(y[:2].transpose(0, 3, 1, 2)) if lay == "NHWC" else y[:2]
    ref = _lc_ref(x[:2], w) if local else _pool_ref(x[:2], kind)      # the first two images
    tol = 2e-4 if dtype == np.float32 else 1e-8
    np.testing.assert_allclose(y, ref, rtol=tol, atol=tol * max(1.0, float(np.abs(ref).max())))
def test_bench_recurrent(benchmark, rec_unit, _rec_refs):
    kind, mode, dt, T, rt = rec_unit
    benchmark.group = f"{kind}_{mode}-{'x'.join(map(str, _rec_shape()))}-{B.dtype_tag(dt)}-T{T}"
    benchmark.name = rt
    benchmark.extra_info.update(function=f"{kind}_{mode}", shape=list(_rec_shape()),
                                dtype=B.dtype_tag(dt), threads=T, runtime=rt)
    d = _rec_inputs(kind, dt)
    if rt == "torch":
        fn = _rec_torch(kind, mode, d)
        B.set_torch_threads(T)
        res = benchmark(fn)
    else:
        if not hasattr(mlkern, "layers") or not hasattr(mlkern.layers, kind):
            pytest.skip(f"mlkern.layers.{kind} is not available in this build")
        fn = _rec_mlkern(kind, mode, d)
        with mlkern.threads(T):
            res = benchmark(fn)
    key = (kind, mode)
    if key not in _rec_refs:
        _rec_refs[key] = _rec_mlkern(kind, mode, _rec_inputs(kind, np.float64))()
    ref = _rec_refs[key]
    rtol = 2e-4 if dt == np.float32 else 1e-8
    assert len(res) == len(ref)
    for a, b in zip(res, ref):
        scale = max(1.0, float(np.abs(b).max()))
        assert np.abs(np.asarray(a, np.float64) - b).max() <= rtol * scale * (5 if mode == "fwd_bwd" else 1), \
            f"{kind} {mode} {B.dtype_tag(dt)} T={T} {rt}"
