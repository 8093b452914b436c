"""mlkern.calculus (docs/contract.rst, "Calculus"): numerical_grad, gradcheck,
derivative.

References: closed-form gradients written here (polynomials, exp, a
quadratic form); for central differences with the default step
h = cbrt(eps) max(1, |x|) the error is O(h^2 f''') + O(eps |f| / h), about
1e-10 relative in float64 for the well-scaled functions below, so 1e-8 is
a safe bound that a one-sided difference (error O(h) ~ 6e-6) or a wrong
step scaling would fail.  float32 x: h ~ 5e-3, so ~1e-4 relative.
"""
import numpy as np
import pytest

import mlkern
from mlkern.calculus import GradcheckError, derivative, gradcheck, numerical_grad


def test_exports():
    assert mlkern.calculus.numerical_grad is numerical_grad
    assert set(mlkern.calculus.__all__) >= {"numerical_grad", "gradcheck", "derivative",
                                            "GradcheckError"}
    assert issubclass(GradcheckError, AssertionError)


# ---------------------------------------------------------------------------
# numerical_grad
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("f, df, x", [
    (lambda v: float(np.sum(v ** 3)), lambda v: 3 * v ** 2, [1.0, 2.0, -0.5, 3.0]),
    (lambda v: float(np.sum(2 * v ** 4 - v ** 2 + 7 * v)), lambda v: 8 * v ** 3 - 2 * v + 7,
     [0.3, -1.7, 2.5, 3.0]),
    (lambda v: float(np.sum(np.exp(v))), np.exp, [-3.0, 0.0, 0.5, 4.0]),
    (lambda v: float(np.exp(v[0]) * v[1] ** 2 + v[0] * v[2]),
     lambda v: np.array([np.exp(v[0]) * v[1] ** 2 + v[2], 2 * np.exp(v[0]) * v[1], v[0]]),
     [0.7, -1.3, 2.2]),
    # a mixed polynomial: partial derivatives hold the other variables constant
    (lambda v: float(v[0] ** 2 * v[1] + v[1] ** 3 * v[2] - 4 * v[0] * v[2]),
     lambda v: np.array([2 * v[0] * v[1] - 4 * v[2], v[0] ** 2 + 3 * v[1] ** 2 * v[2],
                         v[1] ** 3 - 4 * v[0]]),
     [1.5, -2.0, 0.25]),
])
def test_numerical_grad_closed_forms(f, df, x):
    x = np.array(x, dtype=np.float64)
    keep = x.copy()
    g = numerical_grad(f, x)
    assert g.dtype == np.float64 and g.shape == x.shape
    np.testing.assert_allclose(g, df(x), rtol=1e-8, atol=1e-12)
    assert np.array_equal(x, keep)


def test_numerical_grad_does_not_modify_x_nor_pass_it():
    x = np.array([0.5, -1.0, 2.0])
    keep = x.copy()
    seen = []

    def f(v):
        seen.append(v is x or np.shares_memory(v, x))
        assert np.count_nonzero(v != keep) == 1      # one coordinate moved at a time
        return float(np.sum(v ** 2))

    numerical_grad(f, x)
    assert np.array_equal(x, keep)
    assert not any(seen)
    assert len(seen) == 2 * x.size          # two evaluations per coordinate
    # also for a read-only x and a list
    ro = keep.copy()
    ro.flags.writeable = False
    np.testing.assert_allclose(numerical_grad(lambda v: float(np.sum(v ** 2)), ro), 2 * keep,
                               rtol=1e-8)
    np.testing.assert_allclose(numerical_grad(lambda v: float(np.sum(v ** 2)), keep.tolist()),
                               2 * keep, rtol=1e-8)


def test_numerical_grad_0d():
    for x in (np.float64(2.0), np.array(2.0), 2.0):
        g = numerical_grad(lambda v: float(v ** 3), x)
        assert isinstance(g, np.ndarray) and g.shape == () and g.dtype == np.float64
        assert float(g) == pytest.approx(12.0, rel=1e-8)


def test_numerical_grad_2d():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((3, 4))
    x = rng.standard_normal((3, 4))
    keep = x.copy()
    g = numerical_grad(lambda v: float(np.sum(A * v ** 2) + np.sum(np.exp(v[:, 0]))), x)
    exp = 2 * A * x
    exp[:, 0] += np.exp(x[:, 0])
    assert g.shape == (3, 4)
    np.testing.assert_allclose(g, exp, rtol=1e-8, atol=1e-10)
    assert np.array_equal(x, keep)
    # a quadratic form: gradient (Q + Q') x
    Q = rng.standard_normal((5, 5))
    y = rng.standard_normal(5)
    np.testing.assert_allclose(numerical_grad(lambda v: float(v @ Q @ v), y), (Q + Q.T) @ y,
                               rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("layout", ["F-order", "transposed", "strided-2d"])
def test_numerical_grad_non_c_contiguous_x(layout):
    # SPEC "any layout": x may be F-ordered / transposed / strided
    rng = np.random.default_rng(4)
    A = rng.standard_normal((3, 4))
    base = rng.standard_normal((6, 8))
    x = {"F-order": np.asfortranarray(base[:3, :4]),
         "transposed": base[:4, :3].T,
         "strided-2d": base[::2, ::2]}[layout]
    assert not x.flags.c_contiguous
    keep = x.copy()
    g = numerical_grad(lambda v: float(np.sum(A * v ** 2)), x)
    assert g.shape == (3, 4)
    np.testing.assert_allclose(g, 2 * A * x, rtol=1e-8, atol=1e-10)
    assert np.array_equal(x, keep)
    # and gradcheck on that x
    assert gradcheck(lambda v: float(np.sum(mlkern.tanh(v))), mlkern.tanh_grad, x) is True


def test_numerical_grad_float32_and_int():
    x = np.array([0.5, -1.25, 2.0], np.float32)
    g = numerical_grad(lambda v: float(np.sum(v.astype(np.float64) ** 3)), x)
    assert g.dtype == np.float32
    np.testing.assert_allclose(g, 3 * x.astype(np.float64) ** 2, rtol=1e-4)
    gi = numerical_grad(lambda v: float(np.sum(v ** 2)), np.array([1, 2, 3]))
    assert gi.dtype == np.float64
    np.testing.assert_allclose(gi, [2.0, 4.0, 6.0], rtol=1e-8)


def test_numerical_grad_custom_eps():
    # central difference of x^3 with step h is exactly 3x^2 + h^2
    x = np.array([2.0, -1.0, 0.5])
    for h in (1e-2, 1e-3):
        g = numerical_grad(lambda v: float(np.sum(v ** 3)), x, eps=h)
        np.testing.assert_allclose(g, 3 * x ** 2 + h ** 2, rtol=1e-9)
    # the default step is much smaller (h^2 ~ 4e-11)
    g = numerical_grad(lambda v: float(np.sum(v ** 3)), x)
    np.testing.assert_allclose(g, 3 * x ** 2, rtol=1e-9)
    # a quadratic is exact for any step
    g = numerical_grad(lambda v: float(np.sum(v ** 2)), x, eps=0.5)
    np.testing.assert_allclose(g, 2 * x, rtol=1e-14)


def test_numerical_grad_bad_arguments():
    with pytest.raises(ValueError, match="eps"):
        numerical_grad(lambda v: 0.0, [1.0], eps=0.0)
    with pytest.raises(ValueError, match="eps"):
        numerical_grad(lambda v: 0.0, [1.0], eps=-1e-3)
    with pytest.raises(ValueError, match="eps"):
        numerical_grad(lambda v: 0.0, [1.0], eps=float("nan"))
    with pytest.raises(TypeError, match="f"):
        numerical_grad(3.0, [1.0])
    with pytest.raises(TypeError, match="x"):
        numerical_grad(lambda v: 0.0, np.array([1 + 2j]))


# ---------------------------------------------------------------------------
# gradcheck
# ---------------------------------------------------------------------------

def _sum_of(fn):
    return lambda v: float(np.sum(fn(v)))


@pytest.mark.parametrize("name", ["softplus", "sigmoid", "tanh"])
def test_gradcheck_passes_mlkern_activations(name):
    rng = np.random.default_rng(1)
    for shape in [(7,), (3, 4), ()]:
        x = rng.uniform(-4, 4, size=shape)
        keep = np.array(x, copy=True)
        f = getattr(mlkern, name)
        assert gradcheck(_sum_of(f), getattr(mlkern, name + "_grad"), x) is True
        assert np.array_equal(x, keep)
        # derivative(name) is the same function
        assert gradcheck(_sum_of(f), derivative(name), x) is True


def test_gradcheck_reports_worst_element():
    rng = np.random.default_rng(2)
    x = rng.uniform(-2, 2, size=(3, 4))
    bad = (1, 2)

    def wrong_grad(v):
        g = mlkern.sigmoid_grad(v).copy()
        g[bad] *= 1.01
        return g

    with pytest.raises(GradcheckError) as ei:
        gradcheck(_sum_of(mlkern.sigmoid), wrong_grad, x)
    e = ei.value
    assert isinstance(e, AssertionError)
    assert tuple(int(i) for i in e.index) == bad
    true = float(mlkern.sigmoid_grad(x[bad]))
    assert e.analytic == pytest.approx(1.01 * true, rel=1e-12)
    assert e.numerical == pytest.approx(true, rel=1e-8)
    msg = str(e)
    assert "(1, 2)" in msg.replace("np.int64(1)", "1").replace("np.int64(2)", "2")
    assert repr(e.analytic) in msg and repr(e.numerical) in msg

    # several wrong elements: the worst one is named
    def wrong2(v):
        g = mlkern.sigmoid_grad(v).copy()
        g[0, 0] *= 1.001
        g[2, 3] *= 1.05
        g[1, 1] *= 0.99
        return g

    with pytest.raises(GradcheckError) as ei:
        gradcheck(_sum_of(mlkern.sigmoid), wrong2, x)
    assert tuple(int(i) for i in ei.value.index) == (2, 3)
    assert "3 of 12" in str(ei.value)


def test_gradcheck_1d_0d_and_nan():
    x = np.array([0.5, -0.3, 1.2, 2.0])

    def wrong(v):
        g = np.tanh(v) * 0 + mlkern.tanh_grad(v)
        g[2] = g[2] * 1.01
        return g

    with pytest.raises(GradcheckError) as ei:
        gradcheck(_sum_of(np.tanh), wrong, x)
    assert tuple(int(i) for i in ei.value.index) == (2,)

    with pytest.raises(GradcheckError) as ei:
        gradcheck(lambda v: float(np.exp(v)), lambda v: 1.01 * np.exp(v), np.array(0.3))
    assert tuple(ei.value.index) == ()
    assert ei.value.analytic == pytest.approx(1.01 * np.exp(0.3))

    def nan_grad(v):
        g = 2 * v
        g[1] = np.nan
        return g

    with pytest.raises(GradcheckError) as ei:
        gradcheck(lambda v: float(np.sum(v ** 2)), nan_grad, x)
    assert tuple(int(i) for i in ei.value.index) == (1,)


def test_gradcheck_tolerances_and_shape():
    x = np.array([1.0, 2.0])
    f = lambda v: float(np.sum(v ** 2))          # noqa: E731
    # 1e-4 relative error: fails the default rtol, passes rtol=1e-3
    with pytest.raises(GradcheckError):
        gradcheck(f, lambda v: 2 * v * (1 + 1e-4), x)
    assert gradcheck(f, lambda v: 2 * v * (1 + 1e-4), x, rtol=1e-3) is True
    assert gradcheck(f, lambda v: 2 * v + 1e-3, x, atol=1e-2) is True
    with pytest.raises(ValueError, match="shape"):
        gradcheck(f, lambda v: np.ones(3), x)
    # grad_f may not alter the caller's x
    keep = x.copy()

    def mutating(v):
        g = 2 * v
        v[:] = 0
        return g

    assert gradcheck(f, mutating, x) is True
    assert np.array_equal(x, keep)


# ---------------------------------------------------------------------------
# derivative
# ---------------------------------------------------------------------------

def test_derivative_by_name():
    assert derivative("sigmoid") is mlkern.sigmoid_grad
    assert derivative("tanh") is mlkern.tanh_grad
    assert derivative("softplus") is mlkern.softplus_grad
    d = derivative("swish")
    x = np.linspace(-3, 3, 13)
    np.testing.assert_allclose(d(x), mlkern.silu_grad(x), rtol=1e-15)
    s = 1 / (1 + np.exp(-x))
    np.testing.assert_allclose(d(x), s + x * s * (1 - s), rtol=1e-12)
    assert float(derivative("tanh")(0.0)) == 1.0
    for name in ("relu", "leaky_relu", "elu", "gelu", "silu", "log_sigmoid"):
        assert derivative(name) is getattr(mlkern, name + "_grad")


def test_derivative_errors():
    with pytest.raises(ValueError, match="noisy_relu"):
        derivative("noisy_relu")
    with pytest.raises(ValueError, match="nope"):
        derivative("nope")
    for bad in ("sigmoid_grad", ""):
        with pytest.raises(ValueError):
            derivative(bad)
    with pytest.raises(TypeError, match="name"):
        derivative(3)
    with pytest.raises(TypeError):
        derivative(mlkern.sigmoid)
