"""mlkern.optim (docs/contract.rst, "Optimisers"): the fused in-place step functions,
the optimiser classes and minibatches.

References (independent of mlkern's implementation).
* ``ref_step``: a float64 NumPy transcription of docs/contract.rst's table, written
  here in the contract's own form (m = b1 m + (1 - b1) g, m_hat = m / (1 -
  b1^t), ...), not in the kernel's order of operations.
* torch.optim (foreach=False) in the same dtype, when torch is installed;
  mlkern's velocity is lr x torch's momentum buffer.
* The classical Nesterov update v = mu v + lr grad J(theta - mu v) on a
  quadratic (for the look-ahead claim of nesterov_step's docstring).

Error budget.
* float64, whole trajectories: 100 steps, each run taking its gradient
  g = sin(3 p + t) + 0.1 p from its OWN current parameter, so rounding
  differences are fed back and amplified by the dynamics (a wrong formula
  is caught at once).  Parameters and states agree to 1e-12 relative to
  the array's largest element (elements pass through 0, so a pure
  element-wise relative bound is meaningless there).
* float32, step by step: at each of 100 steps the reference is evaluated in
  float64 from the exact float32 inputs (parameter, state, gradient) the
  kernel sees, so the float32 trajectory cannot drift away from the
  reference and the bound stays tight.  ``ref_step`` also returns, for every
  output element, the magnitude of the terms its formula adds (|theta| +
  |update| with the cancelling terms of the velocity / first moment
  included); the kernel must agree to 1e-6 of it (~16 float32 roundings).
* torch: float64 to 1e-12 (own-parameter gradients, as above); float32 to
  1e-5 relative to the largest element, both fed the same gradient
  sequence (two float32 orders of operations drift apart by ~u per step and
  momentum integrates the drift).
"""
import math
import threading

import numpy as np
import pytest

import mlkern
import mlkern.optim as O

# ---------------------------------------------------------------------------
# the reference
# ---------------------------------------------------------------------------

STATES = {
    "sgd": (),
    "momentum": ("velocity",),
    "nesterov": ("velocity",),
    "adagrad": ("sum_sq",),
    "adadelta": ("sq_avg", "delta_avg"),
    "rmsprop": ("sq_avg",),
    "adam": ("m", "v"),
}

BASE_HP = {
    "sgd": dict(lr=0.05),
    "momentum": dict(lr=0.01, momentum=0.9),
    "nesterov": dict(lr=0.01, momentum=0.9),
    "adagrad": dict(lr=0.1, eps=1e-10),
    "adadelta": dict(lr=0.9, rho=0.9, eps=1e-6),
    "rmsprop": dict(lr=0.01, alpha=0.99, eps=1e-8),
    "adam": dict(lr=0.01, beta1=0.9, beta2=0.999, eps=1e-8, decoupled=False),
}


def _configs():
    out = []
    for name, hp in BASE_HP.items():
        out.append(pytest.param(name, dict(hp), id=name))
        out.append(pytest.param(name, dict(hp, weight_decay=0.05), id=name + "-wd"))
        if name == "adam":
            out.append(pytest.param(name, dict(hp, decoupled=True), id="adamw"))
            out.append(pytest.param(name, dict(hp, decoupled=True, weight_decay=0.1),
                                    id="adamw-wd"))
    return out


CONFIGS = _configs()


def ref_step(name, p, g, st, t, hp):
    """SPEC's update in float64.  Returns (param, state dict, magnitudes):
    the magnitudes bound the terms each output's formula adds (for the
    float32 step-by-step bound)."""
    p = np.asarray(p, np.float64)
    g = np.asarray(g, np.float64)
    st = {k: np.asarray(a, np.float64) for k, a in st.items()}
    lr = hp["lr"]
    wd = hp.get("weight_decay", 0.0)
    new, mag = {}, {}
    ga = np.abs(g)
    if name == "adam" and hp.get("decoupled"):
        p = p * (1.0 - lr * wd)                    # AdamW: decay first, g as is
    elif wd:
        g = g + wd * p                             # coupled: g' = g + wd theta
        ga = ga + wd * np.abs(p)
    if name == "sgd":
        upd, upd_mag = lr * g, lr * ga
    elif name in ("momentum", "nesterov"):
        mu = hp["momentum"]
        v = mu * st["velocity"] + lr * g
        new["velocity"] = v
        mag["velocity"] = mu * np.abs(st["velocity"]) + lr * ga
        if name == "momentum":
            upd, upd_mag = v, mag["velocity"]
        else:
            upd, upd_mag = mu * v + lr * g, mu * mag["velocity"] + lr * ga
    elif name == "adagrad":
        G = st["sum_sq"] + g * g
        new["sum_sq"], mag["sum_sq"] = G, st["sum_sq"] + ga * ga
        den = np.sqrt(G) + hp["eps"]
        upd, upd_mag = lr * g / den, lr * ga / den
    elif name == "adadelta":
        rho, eps = hp["rho"], hp["eps"]
        S = rho * st["sq_avg"] + (1 - rho) * g * g
        r = np.sqrt(st["delta_avg"] + eps) / np.sqrt(S + eps)
        d = r * g
        D = rho * st["delta_avg"] + (1 - rho) * d * d
        new["sq_avg"], mag["sq_avg"] = S, rho * st["sq_avg"] + (1 - rho) * ga * ga
        new["delta_avg"], mag["delta_avg"] = D, rho * st["delta_avg"] + (1 - rho) * (r * ga) ** 2
        upd, upd_mag = lr * d, lr * r * ga
    elif name == "rmsprop":
        a = hp["alpha"]
        S = a * st["sq_avg"] + (1 - a) * g * g
        new["sq_avg"], mag["sq_avg"] = S, a * st["sq_avg"] + (1 - a) * ga * ga
        den = np.sqrt(S) + hp["eps"]
        upd, upd_mag = lr * g / den, lr * ga / den
    elif name == "adam":
        b1, b2, eps = hp["beta1"], hp["beta2"], hp["eps"]
        m = b1 * st["m"] + (1 - b1) * g
        v = b2 * st["v"] + (1 - b2) * g * g
        new["m"], mag["m"] = m, 2 * np.abs(st["m"]) + (1 - b1) * ga
        new["v"], mag["v"] = v, b2 * st["v"] + (1 - b2) * ga * ga
        m_hat = m / (1 - b1 ** t)
        v_hat = v / (1 - b2 ** t)
        den = np.sqrt(v_hat) + eps
        upd = lr * m_hat / den
        upd_mag = lr * (mag["m"] / (1 - b1 ** t)) / den
    else:  # pragma: no cover
        raise KeyError(name)
    mag["param"] = np.abs(p) + upd_mag
    return p - upd, new, mag


def mk_step(name, p, g, st, t, hp):
    """Call mlkern's step function for `name` with SPEC's keywords."""
    kw = {k: v for k, v in hp.items() if k != "decoupled"}
    states = [st[k] for k in STATES[name]]
    if name == "adam":
        return O.adam_step(p, g, *states, step=t, decoupled=hp.get("decoupled", False), **kw)
    return getattr(O, name + "_step")(p, g, *states, **kw)


def grad_fn(p, t):
    """A fixed function of the current parameters (float64)."""
    p = np.asarray(p, np.float64)
    return np.sin(3.0 * p + t) + 0.1 * p


def assert_close_norm(got, ref, rtol, what=""):
    """|got - ref| <= rtol (|ref| + max|ref|) element-wise."""
    got = np.asarray(got, np.float64)
    scale = float(np.max(np.abs(ref))) if ref.size else 0.0
    np.testing.assert_allclose(got, ref, rtol=rtol, atol=rtol * scale, err_msg=what)


# ---------------------------------------------------------------------------
# 1. against the float64 transcription of SPEC
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("name, hp", CONFIGS)
def test_float64_trajectory_matches_spec(name, hp):
    rng = np.random.default_rng(10)
    p0 = rng.standard_normal(1000)
    p = p0.copy()
    st = {k: np.zeros_like(p) for k in STATES[name]}
    q = p0.copy()
    sq = {k: np.zeros_like(q) for k in STATES[name]}
    for t in range(1, 101):
        out = mk_step(name, p, grad_fn(p, t), st, t, hp)
        assert out is p
        q, sq, _ = ref_step(name, q, grad_fn(q, t), sq, t, hp)
    assert p.dtype == np.float64
    assert_close_norm(p, q, 1e-12, "param")
    for k in st:
        assert_close_norm(st[k], sq[k], 1e-12, k)
    # the run moved the parameters well beyond the tolerance
    assert np.max(np.abs(p - p0)) > 1e-3


@pytest.mark.parametrize("name, hp", CONFIGS)
def test_float32_each_step_matches_spec(name, hp):
    rng = np.random.default_rng(11)
    p = rng.standard_normal(1000).astype(np.float32)
    st = {k: np.zeros_like(p) for k in STATES[name]}
    worst = 0.0
    for t in range(1, 101):
        g = grad_fn(p, t).astype(np.float32)
        q, sq, mag = ref_step(name, p, g, st, t, hp)
        mk_step(name, p, g, st, t, hp)
        assert p.dtype == np.float32 and all(a.dtype == np.float32 for a in st.values())
        for key, got, ref in [("param", p, q)] + [(k, st[k], sq[k]) for k in st]:
            err = np.abs(got.astype(np.float64) - ref)
            tol = 1e-6 * mag[key] + 1e-30
            ratio = float(np.max(err / tol))
            worst = max(worst, ratio)
            if ratio > 1:
                i = int(np.argmax(err / tol))
                pytest.fail(f"step {t}, {key}[{i}]: got {got[i]!r}, expected {ref[i]!r} "
                            f"(|err| {err[i]:.3g} > 1e-6 x magnitude {mag[key][i]:.3g})")
    assert worst > 0 or name == "sgd"


def test_adam_bias_correction_closed_form():
    # theta -= lr g / (|g| + eps) when m_hat = g and v_hat = g^2
    for t in (1, 2, 7):
        for dt in (np.float64, np.float32):
            p = np.array([1.0, -2.0, 0.5], dt)
            g = np.array([0.3, -4.0, 1e-3], dt)
            # a state that makes the new moments m = (1 - b1^t) g, v = (1 - b2^t) g^2
            # exactly, so m_hat = g and v_hat = g^2 iff the corrections use this t
            m, v = np.zeros_like(p), np.zeros_like(p)
            m[:] = (1 - 0.9 ** (t - 1)) * g.astype(np.float64)
            v[:] = (1 - 0.999 ** (t - 1)) * g.astype(np.float64) ** 2
            O.adam_step(p, g, m, v, step=t, lr=0.1)
            g64 = g.astype(np.float64)
            exp = np.array([1.0, -2.0, 0.5]) - 0.1 * g64 / (np.abs(g64) + 1e-8)
            rtol = 1e-13 if dt == np.float64 else 1e-5
            np.testing.assert_allclose(p, exp, rtol=rtol, err_msg=f"t={t} {np.dtype(dt)}")


def test_defaults_are_specs():
    rng = np.random.default_rng(3)
    p0 = rng.standard_normal(50)
    g = rng.standard_normal(50)
    cases = [
        ("momentum_step", dict(lr=0.1), dict(lr=0.1, momentum=0.9, weight_decay=0.0), 1),
        ("nesterov_step", dict(lr=0.1), dict(lr=0.1, momentum=0.9, weight_decay=0.0), 1),
        ("adagrad_step", dict(lr=0.1), dict(lr=0.1, eps=1e-10), 1),
        ("adadelta_step", dict(), dict(rho=0.9, eps=1e-6, lr=1.0), 2),
        ("rmsprop_step", dict(lr=0.1), dict(lr=0.1, alpha=0.99, eps=1e-8), 1),
        ("adam_step", dict(step=3), dict(step=3, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8,
                                         weight_decay=0.0, decoupled=False), 2),
    ]
    for fname, short, full, ns in cases:
        fn = getattr(O, fname)
        a, b = p0.copy(), p0.copy()
        sa = [np.full_like(p0, 0.25) for _ in range(ns)]
        sb = [s.copy() for s in sa]
        fn(a, g, *sa, **short)
        fn(b, g, *sb, **full)
        assert np.array_equal(a, b), fname
        assert not np.array_equal(a, p0), fname


def test_docstring_examples_values():
    p = np.array([1.0, 2.0])
    assert O.sgd_step(p, np.array([0.5, -1.0]), lr=0.1).tolist() == pytest.approx([0.95, 2.1])
    p, v = np.array([1.0]), np.zeros(1)
    O.momentum_step(p, np.array([1.0]), v, lr=0.1)
    O.momentum_step(p, np.array([1.0]), v, lr=0.1)
    assert p[0] == pytest.approx(0.71) and v[0] == pytest.approx(0.19)
    p, v = np.array([1.0]), np.zeros(1)
    assert O.nesterov_step(p, np.array([1.0]), v, lr=0.1)[0] == pytest.approx(0.81)


def test_sgd_weight_decay_spec_formula():
    p = np.array([2.0, -1.0, 0.0])
    g = np.array([0.5, 0.5, 0.5])
    O.sgd_step(p, g, lr=0.1, weight_decay=0.5)
    # theta -= lr (g + wd theta)
    assert p.tolist() == pytest.approx([2.0 - 0.1 * (0.5 + 1.0), -1.0 - 0.1 * (0.5 - 0.5),
                                        -0.05])


def test_empty_and_zero_d_params():
    for name, hp in [(c.values[0], c.values[1]) for c in CONFIGS]:
        for shape in [(0,), (), (3, 0)]:
            p = np.ones(shape)
            st = {k: np.zeros_like(p) for k in STATES[name]}
            g = np.full(shape, 0.5)
            q, sq, _ = ref_step(name, p, g, st, 1, hp)
            mk_step(name, p, g, st, 1, hp)
            assert p.shape == shape
            np.testing.assert_allclose(p, q, rtol=1e-14)


# ---------------------------------------------------------------------------
# 2. against torch.optim
# ---------------------------------------------------------------------------

TORCH_CASES = {
    # id: (mlkern step name, mlkern hp, torch class name, torch kwargs, {mlkern state: torch state})
    "sgd": ("sgd", dict(lr=0.05), "SGD", dict(lr=0.05), {}),
    "momentum": ("momentum", dict(lr=0.01, momentum=0.9), "SGD", dict(lr=0.01, momentum=0.9),
                 {"velocity": "momentum_buffer"}),
    "nesterov": ("nesterov", dict(lr=0.01, momentum=0.9), "SGD",
                 dict(lr=0.01, momentum=0.9, nesterov=True), {"velocity": "momentum_buffer"}),
    "adagrad": ("adagrad", dict(lr=0.1, eps=1e-10), "Adagrad", dict(lr=0.1, eps=1e-10),
                {"sum_sq": "sum"}),
    "adadelta": ("adadelta", dict(lr=0.9, rho=0.9, eps=1e-6), "Adadelta",
                 dict(lr=0.9, rho=0.9, eps=1e-6), {"sq_avg": "square_avg",
                                                   "delta_avg": "acc_delta"}),
    "rmsprop": ("rmsprop", dict(lr=0.01, alpha=0.99, eps=1e-8), "RMSprop",
                dict(lr=0.01, alpha=0.99, eps=1e-8), {"sq_avg": "square_avg"}),
    "adam": ("adam", dict(lr=0.01, beta1=0.9, beta2=0.999, eps=1e-8), "Adam",
             dict(lr=0.01, betas=(0.9, 0.999), eps=1e-8), {"m": "exp_avg", "v": "exp_avg_sq"}),
    "adamw": ("adam", dict(lr=0.01, beta1=0.9, beta2=0.999, eps=1e-8, decoupled=True), "AdamW",
              dict(lr=0.01, betas=(0.9, 0.999), eps=1e-8), {"m": "exp_avg", "v": "exp_avg_sq"}),
}


@pytest.fixture(scope="module")
def torch():
    torch = pytest.importorskip("torch")
    return torch


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("wd", [0.0, 0.05], ids=["nowd", "wd"])
@pytest.mark.parametrize("case", list(TORCH_CASES))
def test_matches_torch(torch, case, wd, dtype):
    name, hp, tcls, tkw, smap = TORCH_CASES[case]
    hp = dict(hp, weight_decay=wd)
    rng = np.random.default_rng(20)
    p0 = rng.standard_normal(1000).astype(dtype)
    p = p0.copy()
    st = {k: np.zeros_like(p) for k in STATES[name]}
    tp = torch.tensor(p0.copy(), requires_grad=True)
    opt = getattr(torch.optim, tcls)([tp], weight_decay=wd, foreach=False, **tkw)
    for t in range(1, 101):
        if dtype == np.float64:     # each its own trajectory
            g = grad_fn(p, t)
            tg = grad_fn(tp.detach().numpy(), t)
        else:                       # one gradient sequence for both
            g = grad_fn(p, t).astype(np.float32)
            tg = g.copy()
        tp.grad = torch.from_numpy(tg)
        opt.step()
        mk_step(name, p, g, st, t, hp)
    rtol = 1e-12 if dtype == np.float64 else 1e-5
    q = tp.detach().numpy().astype(np.float64)
    assert tp.dtype == (torch.float64 if dtype == np.float64 else torch.float32)
    assert_close_norm(p, q, rtol, "param")
    tstate = opt.state[tp]
    for k, tk in smap.items():
        ref = tstate[tk].numpy().astype(np.float64)
        if k == "velocity":
            ref = hp["lr"] * ref      # mlkern's velocity includes lr
        assert_close_norm(st[k], ref, rtol, k)


@pytest.mark.parametrize("cls", ["Adagrad", "Adadelta", "RMSprop", "Adam", "AdamW", "SGD"])
def test_class_defaults_match_torch(torch, cls):
    rng = np.random.default_rng(21)
    p0 = rng.standard_normal(200)
    p = p0.copy()
    tp = torch.tensor(p0.copy(), requires_grad=True)
    o = getattr(O, cls)([p])
    to = getattr(torch.optim, cls)([tp], foreach=False)
    for t in range(1, 21):
        o.step([grad_fn(p, t)])
        tp.grad = torch.from_numpy(grad_fn(tp.detach().numpy(), t))
        to.step()
    assert_close_norm(p, tp.detach().numpy(), 1e-12)
    assert not np.array_equal(p, p0)


# ---------------------------------------------------------------------------
# 3. Nesterov look-ahead form
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("wd", [0.0, 0.1])
def test_nesterov_lookahead_equals_classical(wd):
    rng = np.random.default_rng(30)
    n = 20
    Q = rng.standard_normal((n, n))
    A = Q @ Q.T / n + 0.5 * np.eye(n)          # SPD
    b = rng.standard_normal(n)

    def gradJ(x):   # J(x) = x'Ax/2 - b'x + wd |x|^2 / 2
        return A @ x - b + wd * x

    mu, lr = 0.9, 0.05
    theta = rng.standard_normal(n)
    v = np.zeros(n)
    phi = theta.copy()          # phi = theta - mu v with v = 0
    w = np.zeros(n)
    for _ in range(60):
        v = mu * v + lr * gradJ(theta - mu * v)      # classical Nesterov
        theta = theta - v
        g = A @ phi - b           # mlkern adds weight decay itself
        O.nesterov_step(phi, g, w, lr=lr, momentum=mu, weight_decay=wd)
        np.testing.assert_allclose(w, v, rtol=1e-11, atol=1e-13)
        np.testing.assert_allclose(phi, theta - mu * v, rtol=1e-11, atol=1e-13)
    # and it is not plain momentum
    p2, v2 = rng.standard_normal(n), np.zeros(n)
    p3, v3 = p2.copy(), np.zeros(n)
    for _ in range(3):
        O.momentum_step(p2, gradJ(p2), v2, lr=lr, momentum=mu)
        O.nesterov_step(p3, gradJ(p3), v3, lr=lr, momentum=mu)
    assert not np.allclose(p2, p3)


# ---------------------------------------------------------------------------
# 4. classes
# ---------------------------------------------------------------------------

CLASSES = {
    # class: (step name, constructor kwargs, the step function's hp)
    "SGD": ("sgd", dict(lr=0.05, weight_decay=0.01), dict(weight_decay=0.01)),
    "Momentum": ("momentum", dict(lr=0.02, momentum=0.8, weight_decay=0.01),
                 dict(momentum=0.8, weight_decay=0.01)),
    "Nesterov": ("nesterov", dict(lr=0.02, momentum=0.8, weight_decay=0.01),
                 dict(momentum=0.8, weight_decay=0.01)),
    "Adagrad": ("adagrad", dict(lr=0.1, eps=1e-9, weight_decay=0.01),
                dict(eps=1e-9, weight_decay=0.01)),
    "Adadelta": ("adadelta", dict(lr=0.9, rho=0.8, eps=1e-5, weight_decay=0.01),
                 dict(rho=0.8, eps=1e-5, weight_decay=0.01)),
    "RMSprop": ("rmsprop", dict(lr=0.01, alpha=0.9, eps=1e-7, weight_decay=0.01),
                dict(alpha=0.9, eps=1e-7, weight_decay=0.01)),
    "Adam": ("adam", dict(lr=0.01, betas=(0.8, 0.99), eps=1e-7, weight_decay=0.01),
             dict(beta1=0.8, beta2=0.99, eps=1e-7, weight_decay=0.01, decoupled=False)),
    "AdamW": ("adam", dict(lr=0.01, betas=(0.8, 0.99), eps=1e-7, weight_decay=0.05),
              dict(beta1=0.8, beta2=0.99, eps=1e-7, weight_decay=0.05, decoupled=True)),
}


def _params():
    rng = np.random.default_rng(40)
    return [rng.standard_normal((3, 4)), rng.standard_normal(7).astype(np.float32),
            np.array(0.7), rng.standard_normal((2, 1, 3)).astype(np.float32)]


def _grads(params, t):
    return [(np.sin(3.0 * p + t) + 0.1 * p).astype(p.dtype) for p in params]


@pytest.mark.parametrize("cls", list(CLASSES))
def test_class_step_equals_step_functions(cls):
    name, ckw, hp = CLASSES[cls]
    params = _params()
    copies = [p.copy() for p in params]
    seen = []

    def lr(t):
        seen.append(t)
        return ckw["lr"] / math.sqrt(t)

    o = getattr(O, cls)(params, **dict(ckw, lr=lr))
    states = [{k: np.zeros_like(p) for k in STATES[name]} for p in copies]
    for t in range(1, 8):
        o.step(_grads(params, t))
        for p, g, st in zip(copies, _grads(copies, t), states):
            mk_step(name, p, g, st, t, dict(hp, lr=ckw["lr"] / math.sqrt(t)))
    assert seen == list(range(1, 8))             # lr called with the 1-based step
    assert o.step_count == 7
    for p, c in zip(params, copies):
        assert p.dtype == c.dtype and p.shape == c.shape
        assert np.array_equal(p, c)
    for st, ref in zip(o.state, states):
        assert set(st) == set(ref)
        for k in ref:
            assert np.array_equal(st[k], ref[k]), k


@pytest.mark.parametrize("cls", list(CLASSES))
def test_class_constant_lr_and_params_updated_in_place(cls):
    name, ckw, hp = CLASSES[cls]
    params = _params()
    ids = [id(p) for p in params]
    copies = [p.copy() for p in params]
    o = getattr(O, cls)(params, **ckw)
    states = [{k: np.zeros_like(p) for k in STATES[name]} for p in copies]
    for t in range(1, 4):
        o.step(_grads(params, t))
        for p, g, st in zip(copies, _grads(copies, t), states):
            mk_step(name, p, g, st, t, dict(hp, lr=ckw["lr"]))
    assert [id(p) for p in o.params] == ids
    for p, c in zip(params, copies):
        assert np.array_equal(p, c)


@pytest.mark.parametrize("cls", list(CLASSES))
def test_state_dict_roundtrip_bit_identical(cls):
    name, ckw, _ = CLASSES[cls]
    params = _params()
    o = getattr(O, cls)(params, **ckw)
    for t in range(1, 6):
        o.step(_grads(params, t))
    sd = o.state_dict()
    saved_params = [p.copy() for p in params]
    for t in range(6, 12):            # keep going (mutates o's state after the save)
        o.step(_grads(params, t))

    resumed = [p.copy() for p in saved_params]
    o2 = getattr(O, cls)(resumed, **ckw)    # fresh state
    o2.load_state_dict(sd)
    assert o2.step_count == 5
    for t in range(6, 12):
        o2.step(_grads(resumed, t))
    for a, b in zip(params, resumed):
        assert np.array_equal(a, b)
    for sa, sb in zip(o.state, o2.state):
        for k in sa:
            assert np.array_equal(sa[k], sb[k])
    assert o2.step_count == o.step_count == 11


@pytest.mark.parametrize("cls", list(CLASSES))
def test_state_dict_roundtrip_callable_lr(cls):
    name, ckw, _ = CLASSES[cls]

    def lr(t):
        return ckw["lr"] * 0.9 ** t

    params = _params()
    o = getattr(O, cls)(params, **dict(ckw, lr=lr))
    for t in range(1, 4):
        o.step(_grads(params, t))
    sd = o.state_dict()
    resumed = [p.copy() for p in params]
    for t in range(4, 8):
        o.step(_grads(params, t))
    o2 = getattr(O, cls)(resumed, **dict(ckw, lr=lr))
    o2.load_state_dict(sd)
    for t in range(4, 8):
        o2.step(_grads(resumed, t))
    for a, b in zip(params, resumed):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("cls", list(CLASSES))
def test_zero_state(cls):
    name, ckw, _ = CLASSES[cls]
    params = _params()
    o = getattr(O, cls)(params, **ckw)
    for t in range(1, 5):
        o.step(_grads(params, t))
    arrays = [dict(st) for st in o.state]
    o.zero_state()
    assert o.step_count == 0
    for st, before in zip(o.state, arrays):
        for k, a in st.items():
            assert a is before[k]          # reset in place
            assert not a.any()
    fresh_params = [p.copy() for p in params]
    fresh = getattr(O, cls)(fresh_params, **ckw)
    for t in range(1, 4):
        o.step(_grads(params, t))
        fresh.step(_grads(fresh_params, t))
    for a, b in zip(params, fresh_params):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("cls", list(CLASSES))
def test_class_errors(cls):
    _, ckw, _ = CLASSES[cls]
    params = _params()
    o = getattr(O, cls)(params, **ckw)
    before = [p.copy() for p in params]
    g = _grads(params, 1)
    with pytest.raises(ValueError, match="gradients"):
        o.step(g[:-1])
    with pytest.raises(ValueError, match="gradients"):
        o.step(g + [g[0]])
    with pytest.raises(ValueError):
        o.step(g[0])                         # one array for four params
    assert o.step_count == 0
    for a, b in zip(params, before):
        assert np.array_equal(a, b)
    # wrong number of saved states
    o1 = getattr(O, cls)(params[:1], **ckw)
    with pytest.raises(ValueError):
        o1.load_state_dict(o.state_dict())
    with pytest.raises(ValueError, match="lr"):
        getattr(O, cls)(params, **dict(ckw, lr=-1.0))
    with pytest.raises(ValueError):
        getattr(O, cls)([], **ckw)
    with pytest.raises(ValueError):
        getattr(O, cls)([params[0], params[0]], **ckw)
    with pytest.raises(TypeError, match="param"):
        getattr(O, cls)([[1.0, 2.0]], **ckw)


@pytest.mark.parametrize("cls", ["SGD", "Adam"])
def test_class_failed_step_changes_nothing(cls):
    # a bad gradient for the second parameter: the step raises; nothing may
    # have been updated (else a retry applies the first parameter's update
    # twice, and Adam's state advances without its step count)
    _, ckw, _ = CLASSES[cls]
    params = _params()
    o = getattr(O, cls)(params, **ckw)
    before = [p.copy() for p in params]
    g = _grads(params, 1)
    g[1] = np.ones(99, g[1].dtype)
    with pytest.raises(ValueError, match="grad"):
        o.step(g)
    assert o.step_count == 0
    for a, b in zip(params, before):
        assert np.array_equal(a, b)
    for st in o.state:
        for k, a in st.items():
            assert not a.any(), k


@pytest.mark.parametrize("cls", list(CLASSES))
@pytest.mark.parametrize("how", ["F-order", "strided", "int", "is-param", "overlaps-state",
                                 "readonly", "list"])
def test_class_step_every_gradient_form(cls, how):
    """Optimizer.step checks the common case (C-contiguous, param's dtype and
    shape, disjoint) in one C call and sends everything else through the full
    checks: each form below either gives the step function's result on a
    contiguous copy or the step function's error."""
    name, ckw, hp = CLASSES[cls]
    rng = np.random.default_rng(5)
    p = rng.standard_normal((4, 6))
    ref = p.copy()
    o = getattr(O, cls)([p], **ckw)
    st = o.state[0]
    g0 = np.cos(p)
    if how == "F-order":
        g = np.asfortranarray(g0)
    elif how == "strided":
        g = np.repeat(g0, 2, axis=1)[:, ::2]
    elif how == "int":
        g = np.ones((4, 6), np.int64)
    elif how == "is-param":
        g = p
        g0 = p.copy()
    elif how == "overlaps-state":
        if not st:
            pytest.skip("no state")
        k = next(iter(st))
        st[k][...] = 0.5
        g = st[k]
        g0 = st[k].copy()
    elif how == "readonly":
        g = g0.copy()
        g.flags.writeable = False
    else:
        g = g0.tolist()
    if how == "int":
        with pytest.raises(TypeError, match="grad"):
            o.step([g])
        assert o.step_count == 0 and np.array_equal(p, ref)
        return
    states = {k: a.copy() for k, a in st.items()}
    o.step([g])
    mk_step(name, ref, g0, states, 1, dict(hp, lr=ckw["lr"]))
    assert np.array_equal(p, ref)
    for k in states:
        assert np.array_equal(st[k], states[k]), k


@pytest.mark.parametrize("cls", ["SGD", "Adam"])
def test_class_params_and_state_changed_after_construction(cls):
    """The parameters are validated at construction and checked again on
    every step: a parameter list edited afterwards gets the same errors."""
    _, ckw, _ = CLASSES[cls]
    p = np.zeros((3, 3))
    o = getattr(O, cls)([p], **ckw)
    ro = np.zeros((3, 3))
    ro.flags.writeable = False
    o.params[0] = ro
    with pytest.raises(ValueError, match="read-only"):
        o.step([np.ones((3, 3))])
    o.params[0] = np.zeros((3, 3), order="F")[:, :2]
    with pytest.raises(ValueError, match="C-contiguous"):
        o.step([np.ones((3, 2))])
    o.params[0] = np.zeros((3, 3), np.float32)
    with pytest.raises(TypeError):
        o.step([np.ones((3, 3))])         # float64 grad, float32 param
    if o.state[0]:
        o.params[0] = p
        k = next(iter(o.state[0]))
        o.state[0][k] = np.zeros((3, 3), np.float32)
        with pytest.raises(TypeError, match=k):
            o.step([np.ones((3, 3))])
    assert o.step_count == 0


def test_class_single_array_and_defaults():
    w = np.array([1.0, -1.0])
    o = O.SGD(w, lr=0.5)                      # a bare array is one parameter
    o.step(w.copy())
    assert w.tolist() == [0.5, -0.5]
    assert O.Momentum([np.zeros(2)]).hyper["momentum"] == 0.9
    assert O.Nesterov([np.zeros(2)]).hyper["momentum"] == 0.9
    assert O.AdamW([np.zeros(2)]).hyper["weight_decay"] == 0.01
    for cls in ("SGD", "Momentum", "Nesterov", "Adagrad", "Adadelta", "RMSprop", "Adam"):
        assert getattr(O, cls)([np.zeros(2)]).hyper["weight_decay"] == 0.0, cls
    assert O.Adam([np.zeros(2)]).hyper["betas"] == (0.9, 0.999)
    with pytest.raises(ValueError, match="momentum"):
        O.Momentum([np.zeros(2)], momentum=1.0)
    with pytest.raises(ValueError, match="beta1"):
        O.Adam([np.zeros(2)], betas=(1.0, 0.999))
    with pytest.raises(TypeError, match="betas"):
        O.Adam([np.zeros(2)], betas=0.9)
    with pytest.raises(ValueError, match="weight_decay"):
        O.AdamW([np.zeros(2)], weight_decay=-0.1)
    # a callable lr that returns a bad value is caught at step time
    o = O.SGD([np.zeros(2)], lr=lambda t: -1.0)
    with pytest.raises(ValueError, match="lr"):
        o.step([np.ones(2)])


# ---------------------------------------------------------------------------
# 5. validation
# ---------------------------------------------------------------------------

FUNCS = list(STATES)


def _args(name, dtype=np.float64, shape=(6,)):
    p = np.linspace(-1, 1, int(np.prod(shape))).reshape(shape).astype(dtype)
    g = np.full(shape, 0.25, dtype)
    st = [np.full(shape, 0.1, dtype) for _ in STATES[name]]
    kw = dict(lr=0.1)
    if name == "adam":
        kw["step"] = 1
    return getattr(O, name + "_step"), p, g, st, kw


@pytest.mark.parametrize("name", FUNCS)
def test_param_type_and_dtype(name):
    fn, p, g, st, kw = _args(name)
    with pytest.raises(TypeError, match="param"):
        fn(p.tolist(), g, *st, **kw)
    for dt in (np.float16, np.int64, np.int32, np.complex128):
        bad = p.astype(dt)
        with pytest.raises(TypeError, match="param"):
            fn(bad, g.astype(dt), *[s.astype(dt) for s in st], **kw)


@pytest.mark.parametrize("name", FUNCS)
def test_param_layout(name):
    fn, _, _, _, kw = _args(name)
    base = np.arange(24.0).reshape(4, 6) / 10
    cases = {
        "F-order": np.asfortranarray(base),
        "strided": (np.arange(24.0) / 10)[::2],
        "reversed": (np.arange(12.0) / 10)[::-1],
        "column": base[:, 1:3],
    }
    for what, p in cases.items():
        keep = p.copy()
        g = np.ones(p.shape)
        st = [np.zeros(p.shape) for _ in STATES[name]]
        with pytest.raises(ValueError, match="param") as ei:
            fn(p, g, *st, **kw)
        assert "contiguous" in str(ei.value), what
        assert np.array_equal(p, keep), what
        for s in st:
            assert not s.any(), what
    ro = np.ones(6)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="param"):
        fn(ro, np.ones(6), *[np.zeros(6) for _ in STATES[name]], **kw)
    assert np.array_equal(ro, np.ones(6))


@pytest.mark.parametrize("name", [n for n in FUNCS if STATES[n]])
def test_state_validation(name):
    fn, p, g, st, kw = _args(name, shape=(2, 3))
    keep_p = p.copy()
    for i, sname in enumerate(STATES[name]):
        def call(bad):
            args = list(st)
            args[i] = bad
            return fn(p, g, *args, **kw)

        with pytest.raises(ValueError, match=sname):
            call(np.zeros((3, 2)))
        with pytest.raises(ValueError, match=sname):
            call(np.zeros(6))
        with pytest.raises(TypeError, match=sname):
            call(np.zeros((2, 3), np.float32))
        with pytest.raises(TypeError, match=sname):
            call(np.zeros((2, 3)).tolist())
        with pytest.raises(ValueError, match=sname):
            call(np.asfortranarray(np.zeros((2, 3))))
        with pytest.raises(ValueError, match=sname):
            call(np.zeros((2, 6))[:, ::2])
        ro = np.zeros((2, 3))
        ro.flags.writeable = False
        with pytest.raises(ValueError, match=sname):
            call(ro)
        with pytest.raises(ValueError, match=sname):
            call(p)                                   # the param itself
        with pytest.raises(ValueError, match=sname):
            call(p.reshape(2, 3)[...])                # a view of it
        # a partial overlap with the param
        buf = np.zeros(7)
        pp, ss = buf[:6].reshape(2, 3), buf[1:].reshape(2, 3)
        args = list(st)
        args[i] = ss
        with pytest.raises(ValueError, match=sname):
            fn(pp, g, *args, **kw)
        assert np.array_equal(p, keep_p)
    if len(st) == 2:     # the two states must be distinct
        with pytest.raises(ValueError, match="share memory"):
            fn(p, g, st[0], st[0], **kw)
    assert np.array_equal(p, keep_p)


@pytest.mark.parametrize("name", FUNCS)
def test_grad_validation(name):
    fn, p, g, st, kw = _args(name, shape=(2, 3))
    keep = p.copy()
    with pytest.raises(ValueError, match="grad"):
        fn(p, np.ones((3, 2)), *st, **kw)
    with pytest.raises(ValueError, match="grad"):
        fn(p, np.ones(6), *st, **kw)
    with pytest.raises(ValueError, match="grad"):
        fn(p, np.ones((1, 3)), *st, **kw)               # no broadcasting
    with pytest.raises(TypeError, match="grad"):
        fn(p, np.ones((2, 3), np.float32), *st, **kw)
    with pytest.raises(TypeError, match="grad"):
        fn(p, np.ones((2, 3), np.complex128), *st, **kw)
    with pytest.raises(TypeError, match="grad"):
        fn(p, np.array([["a"] * 3] * 2), *st, **kw)
    assert np.array_equal(p, keep)


@pytest.mark.parametrize("name", FUNCS)
def test_hyperparameter_validation(name):
    fn, p, g, st, kw = _args(name)
    keep = p.copy()
    bad = [("lr", -0.1, ValueError), ("lr", float("nan"), ValueError),
           ("lr", float("inf"), ValueError), ("lr", "0.1", TypeError), ("lr", None, TypeError),
           ("weight_decay", -1.0, ValueError), ("weight_decay", float("nan"), ValueError)]
    extra = {
        "momentum": [("momentum", 1.0, ValueError), ("momentum", -0.1, ValueError)],
        "nesterov": [("momentum", 1.0, ValueError), ("momentum", float("nan"), ValueError)],
        "adagrad": [("eps", -1e-8, ValueError)],
        "adadelta": [("rho", 1.5, ValueError), ("rho", -0.1, ValueError), ("eps", -1.0, ValueError)],
        "rmsprop": [("alpha", 1.01, ValueError), ("eps", -1.0, ValueError)],
        "adam": [("beta1", 1.0, ValueError), ("beta1", -0.5, ValueError),
                 ("beta2", 1.0, ValueError), ("beta2", float("nan"), ValueError),
                 ("eps", -1.0, ValueError),
                 ("step", 0, ValueError), ("step", -3, ValueError),
                 ("step", 1.5, TypeError), ("step", 1.0, TypeError), ("step", True, TypeError),
                 ("step", "1", TypeError)],
    }
    for arg, val, exc in bad + extra.get(name, []):
        with pytest.raises(exc, match=arg):
            fn(p, g, *st, **dict(kw, **{arg: val}))
        assert np.array_equal(p, keep), (arg, val)
    # numpy scalars and 0-d arrays are accepted
    fn(p, g, *st, **dict(kw, lr=np.float32(0.1)))
    if name == "adam":
        fn(p, g, *st, **dict(kw, step=np.int64(2)))
        fn(p, g, *st, **dict(kw, step=10 ** 6))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", FUNCS)
def test_noncontiguous_grad(name, dtype):
    fn, p0, _, st0, kw = _args(name, dtype, shape=(4, 6))
    rng = np.random.default_rng(50)
    big = rng.standard_normal((8, 12)).astype(dtype)
    grads = {
        "strided": big[::2, ::2],
        "F-order": np.asfortranarray(big[:4, :6]),
        "reversed": big[:4, :6][::-1, ::-1],
        "transposed": big[:6, :4].T,
    }
    for what, g in grads.items():
        assert not g.flags.c_contiguous
        g_keep = g.copy()
        a, sa = p0.copy(), [s.copy() for s in st0]
        b, sb = p0.copy(), [s.copy() for s in st0]
        fn(a, g, *sa, **kw)
        fn(b, np.ascontiguousarray(g), *sb, **kw)
        assert np.array_equal(a, b), what
        for x, y in zip(sa, sb):
            assert np.array_equal(x, y), what
        assert np.array_equal(g, g_keep), what
    # a list is array_like too (float64 param)
    if dtype == np.float64:
        g = big[:4, :6].astype(np.float64)
        a, sa = p0.copy(), [s.copy() for s in st0]
        b, sb = p0.copy(), [s.copy() for s in st0]
        fn(a, g.tolist(), *sa, **kw)
        fn(b, g, *sb, **kw)
        assert np.array_equal(a, b)


# ---------------------------------------------------------------------------
# 6. threads
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adam_thread_count_invariant(dtype):
    n = 2 * 10 ** 6 + 3                   # not a multiple of the chunk alignment
    rng = np.random.default_rng(60)
    p0 = rng.standard_normal(n).astype(dtype)
    runs = []
    for nt in (1, 2):
        p, m, v = p0.copy(), np.zeros_like(p0), np.zeros_like(p0)
        with mlkern.threads(nt):
            assert mlkern.get_num_threads() == nt
            for t in range(1, 4):
                g = (np.sin(3 * p + t) + 0.1 * p).astype(dtype)
                O.adam_step(p, g, m, v, step=t, lr=0.01, weight_decay=0.01)
        runs.append((p, m, v))
    for a, b in zip(*runs):
        assert np.array_equal(a, b)
    # and the large run is the small-array result, element for element
    k = slice(n - 1000, n)
    p, m, v = p0[k].copy(), np.zeros(1000, dtype), np.zeros(1000, dtype)
    for t in range(1, 4):
        g = (np.sin(3 * p + t) + 0.1 * p).astype(dtype)
        O.adam_step(p, g, m, v, step=t, lr=0.01, weight_decay=0.01)
    assert np.array_equal(p, runs[0][0][k]) and np.array_equal(v, runs[0][2][k])


@pytest.mark.parametrize("name, hp", [c for c in CONFIGS if c.id in
                                      ("sgd-wd", "momentum", "nesterov-wd", "adagrad",
                                       "adadelta", "rmsprop-wd", "adamw-wd")])
def test_all_steps_thread_count_invariant(name, hp):
    n = 10 ** 6 + 1
    rng = np.random.default_rng(61)
    p0 = rng.standard_normal(n)
    g = np.cos(p0)
    outs = []
    for nt in (1, 2):
        p = p0.copy()
        st = {k: np.full_like(p0, 0.5) for k in STATES[name]}
        with mlkern.threads(nt):
            mk_step(name, p, g, st, 2, hp)
        outs.append((p, st))
    assert np.array_equal(outs[0][0], outs[1][0])
    for k in STATES[name]:
        assert np.array_equal(outs[0][1][k], outs[1][1][k])


def test_concurrent_python_threads():
    # independent arrays stepped from several Python threads at once
    rng = np.random.default_rng(62)
    p0 = [rng.standard_normal(300_000) for _ in range(4)]
    expected = []
    for p in p0:
        q, m, v = p.copy(), np.zeros_like(p), np.zeros_like(p)
        for t in range(1, 4):
            O.adam_step(q, np.cos(q), m, v, step=t, lr=0.01)
        expected.append(q)
    results = [p.copy() for p in p0]

    def work(i):
        q, m, v = results[i], np.zeros_like(results[i]), np.zeros_like(results[i])
        for t in range(1, 4):
            O.adam_step(q, np.cos(q), m, v, step=t, lr=0.01)

    ths = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for th in ths:
        th.start()
    for th in ths:
        th.join()
    for a, b in zip(results, expected):
        assert np.array_equal(a, b)


# ---------------------------------------------------------------------------
# 7. grad untouched; grad is param
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name, hp", CONFIGS)
def test_grad_not_modified_and_grad_is_param(name, hp, dtype):
    rng = np.random.default_rng(70)
    p0 = rng.standard_normal(257).astype(dtype)
    st0 = {k: np.abs(rng.standard_normal(257)).astype(dtype) for k in STATES[name]}
    g = rng.standard_normal(257).astype(dtype)
    g_keep = g.copy()
    p = p0.copy()
    st = {k: a.copy() for k, a in st0.items()}
    mk_step(name, p, g, st, 3, hp)
    assert np.array_equal(g, g_keep)

    # grad = param (the same object, or another view of the same memory)
    for alias in (lambda a: a, lambda a: a.view(), lambda a: a[...]):
        a = p0.copy()
        sa = {k: x.copy() for k, x in st0.items()}
        mk_step(name, a, alias(a), sa, 3, hp)
        b = p0.copy()
        sb = {k: x.copy() for k, x in st0.items()}
        mk_step(name, b, p0.copy(), sb, 3, hp)
        assert np.array_equal(a, b)
        for k in sa:
            assert np.array_equal(sa[k], sb[k])


@pytest.mark.parametrize("name", FUNCS)
def test_grad_partially_overlapping_param(name):
    # grad is a shifted view of the param's buffer: it must be read before
    # the param is written (as if copied first)
    fn, _, _, _, kw = _args(name)
    buf = np.linspace(-1, 1, 101)
    p, g = buf[:100], buf[1:]
    ref_p, ref_g = p.copy(), g.copy()
    st = [np.zeros(100) for _ in STATES[name]]
    st_ref = [np.zeros(100) for _ in STATES[name]]
    fn(ref_p, ref_g, *st_ref, **kw)
    fn(p, g, *st, **kw)
    assert np.array_equal(p, ref_p)


@pytest.mark.parametrize("shift", [1, -1], ids=["grad-ahead", "grad-behind"])
@pytest.mark.parametrize("name", [n for n in FUNCS if STATES[n]])
def test_grad_partially_overlapping_state(name, shift):
    # grad is a shifted view of a state's buffer.  The gradient is an input
    # (read as it is at the call), so the result must be that of a copy; the
    # kernel's `restrict` pointers assume the Python layer refused or copied
    # any overlap other than grad == param.
    fn, _, _, _, kw = _args(name)
    buf = np.linspace(-1, 1, 101)
    g, s0 = (buf[1:], buf[:-1]) if shift == 1 else (buf[:-1], buf[1:])
    g_val, s_val = g.copy(), s0.copy()
    rest = [np.full(100, 0.2) for _ in STATES[name][1:]]
    p = np.linspace(0.5, 1.5, 100)
    ref_p = p.copy()
    ref_states = [s_val.copy()] + [r.copy() for r in rest]
    fn(ref_p, g_val, *ref_states, **kw)
    fn(p, g, s0, *rest, **kw)
    # (a negative sum of squares gives NaN in rmsprop/adadelta: same NaNs)
    assert np.array_equal(p, ref_p, equal_nan=True)
    assert np.array_equal(s0, ref_states[0], equal_nan=True)


# ---------------------------------------------------------------------------
# 8. minibatches
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("n, b", [(10, 3), (12, 4), (1, 5), (7, 1), (100, 100), (101, 10)])
def test_minibatches_cover_once(n, b):
    for shuffle in (True, False):
        batches = list(O.minibatches(n, b, shuffle=shuffle, seed=1))
        sizes = [len(x) for x in batches]
        assert sizes == [b] * (n // b) + ([n % b] if n % b else [])
        allidx = np.concatenate(batches)
        assert allidx.dtype == np.int64
        assert sorted(allidx.tolist()) == list(range(n))
        for x in batches:
            assert x.dtype == np.int64 and x.ndim == 1


def test_minibatches_order_and_seed():
    assert [x.tolist() for x in O.minibatches(5, 2, shuffle=False)] == [[0, 1], [2, 3], [4]]
    a = [x.tolist() for x in O.minibatches(50, 7, seed=123)]
    b = [x.tolist() for x in O.minibatches(50, 7, seed=123)]
    c = [x.tolist() for x in O.minibatches(50, 7, seed=124)]
    assert a == b
    assert a != c
    assert np.concatenate(a).tolist() != list(range(50))     # actually shuffled
    # a Generator is drawn from (so two calls with one generator differ)
    gen = np.random.default_rng(5)
    d = [x.tolist() for x in O.minibatches(50, 7, seed=gen)]
    e = [x.tolist() for x in O.minibatches(50, 7, seed=gen)]
    assert d != e
    assert sorted(np.concatenate(d).tolist()) == list(range(50))
    # same generator state -> same batches
    f = [x.tolist() for x in O.minibatches(50, 7, seed=np.random.default_rng(5))]
    assert f == d
    assert list(O.minibatches(0, 3)) == []
    assert [x.tolist() for x in O.minibatches(3, 2, shuffle=False, seed=9)] == [[0, 1], [2]]
    assert [x.tolist() for x in O.minibatches(np.int64(4), np.int32(2), shuffle=False)] == \
        [[0, 1], [2, 3]]


def test_minibatches_bad_arguments():
    bad = [((-1, 2), ValueError, "n_samples"), ((5, 0), ValueError, "batch_size"),
           ((5, -2), ValueError, "batch_size"), ((5.0, 2), TypeError, "n_samples"),
           ((5, 2.5), TypeError, "batch_size"), ((True, 2), TypeError, "n_samples"),
           ((5, None), TypeError, "batch_size"), (("5", 2), TypeError, "n_samples")]
    for args, exc, what in bad:
        with pytest.raises(exc, match=what):
            list(O.minibatches(*args))
