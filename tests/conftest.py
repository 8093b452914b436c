"""Shared fixtures and the function table of the mlkern test suite.

``CASES`` lists every elementwise activation (with parameter variants):
the mlkern forward / grad / backward callables, the independent reference
(``tests/reference.py``), what ``saved`` is for the backward, and where the
function has kinks (for finite differences).  Test modules import it with
``from conftest import CASES`` (pytest puts ``tests/`` on ``sys.path``; we
also do it explicitly so ``reference`` is importable however pytest runs).
"""
import hashlib
import os
import sys
from dataclasses import dataclass, field

import numpy as np
import pytest

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

import mlkern  # noqa: E402
import reference as R  # noqa: E402

try:
    from hypothesis import settings

    settings.register_profile("mlkern", deadline=None, print_blob=True)
    settings.load_profile("mlkern")
except ImportError:  # pragma: no cover
    pass

# the directory the mlkern under test was imported from (installed package or an
# in-place build), so subprocesses import the same one
SRC = os.path.dirname(os.path.dirname(os.path.abspath(mlkern.__file__)))


@dataclass
class Case:
    """One activation with one parameter setting."""

    id: str
    name: str                      # mlkern base name: f, f_grad, f_backward
    params: dict = field(default_factory=dict)
    ref: object = None             # float64 NumPy reference of f
    ref_grad: object = None        # ... of f'
    saved: str = "x"               # what f_backward takes: "x" or "y"
    ref_grad_saved: object = None  # f' as a function of saved (y-saved cases)
    kinks: tuple = ()              # points where f' (or f'') jumps
    grad_mag: object = None        # size of the summands of f' (abs. tolerance)
    cond: object = None            # error amplification of the working-precision argument
    mp: object = None              # mpmath f (mpf -> mpf)
    mp_grad: object = None
    prelu_alpha: object = None     # prelu: the alpha argument

    # ---- mlkern callables
    def f(self, x, **kw):
        if self.prelu_alpha is not None:
            return mlkern.prelu(x, self.prelu_alpha, **kw)
        return getattr(mlkern, self.name)(x, **self.params, **kw)

    def grad(self, x, **kw):
        if self.prelu_alpha is not None:
            return mlkern.prelu_grad(x, self.prelu_alpha, **kw)
        return getattr(mlkern, self.name + "_grad")(x, **self.params, **kw)

    def backward(self, g, s, **kw):
        if self.prelu_alpha is not None:
            return mlkern.prelu_backward(g, s, self.prelu_alpha, **kw)[0]
        return getattr(mlkern, self.name + "_backward")(g, s, **self.params, **kw)

    def saved_of(self, x):
        """The `saved` argument of the backward for input x (mlkern's forward y or x)."""
        return self.f(x) if self.saved == "y" else x

    # ---- references with the parameters bound
    def r(self, x):
        return self.ref(x, **self.params) if self.prelu_alpha is None else self.ref(x, self.prelu_alpha)

    def rg(self, x):
        return self.ref_grad(x, **self.params) if self.prelu_alpha is None else \
            self.ref_grad(x, self.prelu_alpha)

    def rg_saved(self, s):
        if self.saved == "x":
            return self.rg(s)
        return self.ref_grad_saved(s, **self.params)

    def mag(self, x):
        if self.grad_mag is None:
            return np.abs(np.nan_to_num(self.rg(x)))
        return self.grad_mag(x, **self.params)

    def c(self, x):
        if self.cond is None:
            return np.ones_like(np.asarray(x, np.float64))
        return np.maximum(1.0, self.cond(x, **self.params))

    def __repr__(self):
        return self.id


def _beta_cond(x, beta=1.0, **_):
    """beta*x rounds in the working precision: the exp(beta x) tail amplifies
    that relative error |beta x| times."""
    return np.nan_to_num(np.abs(beta * np.asarray(x, np.float64)), posinf=1e300)


def _softplus_case(id_, **params):
    return Case(id_, "softplus", params, R.softplus, R.softplus_grad,
                mp=lambda x: R.mp_softplus(x, **params), mp_grad=lambda x: R.mp_softplus_grad(x, **params),
                kinks=((params["threshold"] / params.get("beta", 1.0),) if params.get("threshold") is not None
                       else ()),
                cond=None if params.get("beta", 1.0) in (1.0, 2.0, 0.5) else _beta_cond)


CASES = [
    Case("sigmoid", "sigmoid", {}, R.sigmoid, R.sigmoid_grad, saved="y",
         ref_grad_saved=lambda y: R.sigmoid_grad_from_y(y), mp=R.mp_sigmoid, mp_grad=R.mp_sigmoid_grad),
    Case("tanh", "tanh", {}, R.tanh, R.tanh_grad, saved="y",
         ref_grad_saved=lambda y: R.tanh_grad_from_y(y), mp=lambda x: __import__("mpmath").tanh(x),
         mp_grad=R.mp_tanh_grad),
    Case("relu", "relu", {}, R.relu, R.relu_grad, kinks=(0.0,), mp=R.mp_relu,
         mp_grad=lambda x: __import__("mpmath").mpf(1 if x > 0 else 0)),
    Case("leaky_relu", "leaky_relu", {}, R.leaky_relu, R.leaky_relu_grad, kinks=(0.0,)),
    Case("leaky_relu[0.25]", "leaky_relu", {"negative_slope": 0.25}, R.leaky_relu, R.leaky_relu_grad,
         kinks=(0.0,)),
    Case("prelu[0.25]", "prelu", {}, R.prelu, R.prelu_grad, kinks=(0.0,), prelu_alpha=0.25),
    Case("elu", "elu", {}, R.elu, R.elu_grad, saved="y", ref_grad_saved=R.elu_grad_from_y, kinks=(0.0,),
         mp=R.mp_elu, mp_grad=R.mp_elu_grad),
    Case("elu[alpha=2]", "elu", {"alpha": 2.0}, R.elu, R.elu_grad, saved="y",
         ref_grad_saved=R.elu_grad_from_y, kinks=(0.0,),
         mp=lambda x: R.mp_elu(x, 2.0), mp_grad=lambda x: R.mp_elu_grad(x, 2.0)),
    Case("elu[alpha=0.5]", "elu", {"alpha": 0.5}, R.elu, R.elu_grad, saved="y",
         ref_grad_saved=R.elu_grad_from_y, kinks=(0.0,),
         mp=lambda x: R.mp_elu(x, 0.5), mp_grad=lambda x: R.mp_elu_grad(x, 0.5)),
    _softplus_case("softplus"),
    _softplus_case("softplus[beta=2]", beta=2.0),
    _softplus_case("softplus[beta=0.5,threshold=20]", beta=0.5, threshold=20.0),
    _softplus_case("softplus[threshold=20]", threshold=20.0),
    Case("silu", "silu", {}, R.silu, R.silu_grad, grad_mag=R.silu_grad_mag,
         mp=R.mp_silu, mp_grad=R.mp_silu_grad),
    Case("silu[beta=1.5]", "silu", {"beta": 1.5}, R.silu, R.silu_grad, grad_mag=R.silu_grad_mag,
         cond=_beta_cond, mp=lambda x: R.mp_silu(x, 1.5), mp_grad=lambda x: R.mp_silu_grad(x, 1.5)),
    Case("swish", "swish", {}, R.silu, R.silu_grad, grad_mag=R.silu_grad_mag,
         mp=R.mp_silu, mp_grad=R.mp_silu_grad),
    Case("log_sigmoid", "log_sigmoid", {}, R.log_sigmoid, R.log_sigmoid_grad,
         mp=R.mp_log_sigmoid, mp_grad=R.mp_log_sigmoid_grad),
    Case("gelu", "gelu", {}, R.gelu, R.gelu_grad, grad_mag=lambda x: R.gelu_grad_mag(x),
         mp=R.mp_gelu, mp_grad=R.mp_gelu_grad),
    Case("gelu[tanh]", "gelu", {"approximate": "tanh"}, lambda x, approximate: R.gelu_tanh(x),
         lambda x, approximate: R.gelu_tanh_grad(x),
         grad_mag=lambda x, approximate: R.gelu_tanh_grad_mag(x),
         cond=lambda x, approximate=None: R.gelu_tanh_cond(x)),
]
CASE_IDS = [c.id for c in CASES]
CASES_BY_ID = {c.id: c for c in CASES}
# Cases with an mpmath truth
MP_CASES = [c for c in CASES if c.mp is not None]

FLOAT_DTYPES = [np.float32, np.float64]


def _g_like(x):
    """grad_output of 0.75 in the result dtype of x (float64 for int/bool)."""
    x = np.asarray(x)
    dt = x.dtype if x.dtype.kind == "f" else np.dtype(np.float64)
    return np.full(x.shape, 0.75, dtype=dt.newbyteorder("="))


def all_callables():
    """(id, callable taking one array x) for every public array function,
    backward ones with grad_output = x-shaped ones and saved derived from x."""
    out = []
    for c in CASES:
        out.append((c.id, c.f))
        out.append((c.id + ".grad", c.grad))
        out.append((c.id + ".backward", lambda x, c=c: c.backward(_g_like(x), c.saved_of(x))))
    out.append(("noisy_relu", lambda x: mlkern.noisy_relu(x, seed=1234)))
    out.append(("noisy_relu[sigma=0.3]", lambda x: mlkern.noisy_relu(x, sigma=0.3, seed=5)))
    out.append(("noisy_relu_backward", lambda x: mlkern.noisy_relu_backward(_g_like(x), mlkern.relu(x))))
    return out


CALLABLES = all_callables()
CALLABLE_IDS = [i for i, _ in CALLABLES]


def random_x(rng, n, dtype=np.float64, wide=False):
    """x ~ 3 N(0, 1), or a wider mix (30 N(0,1) and signed log-uniform
    magnitudes up to the dtype's exp range)."""
    if not wide:
        return (3.0 * rng.standard_normal(n)).astype(dtype)
    top = 80.0 if np.dtype(dtype) == np.float32 else 700.0
    a = 30.0 * rng.standard_normal(n // 2)
    mags = np.exp(rng.uniform(np.log(1e-6), np.log(top), n - n // 2))
    b = mags * rng.choice([-1.0, 1.0], n - n // 2)
    return np.concatenate([a, b]).astype(dtype)


@pytest.fixture(scope="session", autouse=True)
def _reliability_summary(request):
    """The reliability harness's totals (tests/fuzz_harness.py), once at the end
    of a session that ran any of tests/test_reliability_*.py."""
    yield
    harness = sys.modules.get("fuzz_harness")
    if harness is not None:
        harness.print_summary(request.config)


@pytest.fixture
def rng():
    return np.random.default_rng(20240601)


def same_array(a, b):
    """Bit for bit (NaN == NaN), same dtype and shape."""
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True)


def digest(a):
    """(sha256 of the values, shape, strides): equal before and after a call iff the input is untouched."""
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest(), a.shape, a.strides


def result_dtype(dt):
    """The dtype of mlkern's result for an input dtype: float16/32/64 kept, anything else float64."""
    dt = np.dtype(dt)
    if dt in (np.float32, np.float64, np.float16):
        return dt
    return np.dtype(np.float64)


def subprocess_env(**extra):
    env = dict(os.environ)
    env["PYTHONPATH"] = SRC + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    for k, v in extra.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    return env
