"""Row-wise functions (docs/contract.rst, "Row-wise functions"): softmax, log_softmax,
logsumexp, softmax_backward, log_softmax_backward, softmax_jacobian, argmax.

Against independent references (tests/reference.py: a careful float64 form,
SciPy for the semantics of non-finite rows, mpmath for the truth), central
finite differences for the backward functions, np.argmax for argmax, and the
conventions of every function (dtypes, axis, layouts, out=, errors).

Error budgets.  B = 4 + log2 n for a row of n elements: the contract's row-sum
bound eps (4 + log2 n) is the relative error the row's sum may carry, and
every element of the row shares it (B eps is between B and 2 B ULP).

* softmax p_i = e^{d_i} / sum_j e^{d_j}, d = x - max:
  eps p_i (B + |d_i| + sum_j p_j |d_j|) + 2 ULP.  The |d| terms are the
  rounding of d = x - m in the working precision, which e^d amplifies |d|
  times (the same allowance as `cond` in test_activations.py); they vanish
  when x - m is exact, and the tests on "exact-diff" rows (values on a 2^-40 /
  2^-14 grid, every difference exact) drop them: there softmax is held to
  eps p_i B + 2 ULP.  2 ULP: the exp and the final division or product.
* log_softmax y_i = d_i - L and logsumexp m + L, L = log1p(sum of the others):
  eps (B L + sum_j p_j |d_j|) + 2 ULP.  L carries the sum's relative error
  (log1p form), so the max element, y = -L, keeps its relative accuracy
  (log_softmax([0, -40])[0] = -4.248354255291589e-18) and a log(sum) form
  fails; for logsumexp the B L term also covers m + L cancelling near 0.
* float32 results are compared with the float64 reference (its own error is
  ~2^-29 of a float32 ULP) with eps = 2^-23 in the same formulas.  An entry
  far below the row's max gets the |d| allowance above rather than a flat
  1e-7 * max(row), so a poor exp in the tail still fails; subnormal results
  are held to the same ULP budget (np.spacing is the subnormal spacing).
* float64 results compared with the float64 reference (not mpmath) get 2 B,
  the reference's own rounding included.
"""
import functools
import math
import warnings

import numpy as np
import pytest

import mlkern
import reference as R
from conftest import digest, result_dtype, same_array

sc = pytest.importorskip("scipy.special")
mpmath = pytest.importorskip("mpmath")
hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings, strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

FORWARD = ["softmax", "log_softmax", "logsumexp"]
SAME_SHAPE = ["softmax", "log_softmax"]
BACKWARD = ["softmax_backward", "log_softmax_backward"]
ALL = ["softmax", "log_softmax", "logsumexp", "softmax_backward", "log_softmax_backward",
       "softmax_jacobian", "argmax"]
REDUCTIONS = ["logsumexp", "argmax"]
WITH_OUT = [n for n in ALL if n != "softmax_jacobian"]

F32, F64, F16 = np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.float16)
EPS = {F16: 2.0 ** -10, F32: 2.0 ** -23, F64: 2.0 ** -52}
DTYPES = [np.float32, np.float64]
DT_IDS = ["f32", "f64"]


def fn(name):
    """mlkern.<name>, looked up at call time (the module collects before the
    implementation lands)."""
    return getattr(mlkern, name)


# ---------------------------------------------------------------- data
def _data(seed, shape, scale=2.0, dtype=np.float64, exact=False):
    """scale * N(0,1) in dtype; exact=True puts the values on a grid (2^-40
    float64, 2^-14 float32, |x| < 2^8) on which every x_i - x_j is exact."""
    rng = np.random.default_rng(seed)
    x = scale * rng.standard_normal(shape)
    if exact:
        q = 2.0 ** (40 if np.dtype(dtype) == F64 else 14)
        x = np.round(np.clip(x, -255, 255) * q) / q
    return x.astype(dtype)


def _b(n):
    return 4.0 + math.log2(max(int(n), 1))


def _report(ok, **cols):
    ok = np.asarray(ok)
    idx = np.flatnonzero(~ok.ravel())[:8]
    lines = []
    for i in idx:
        parts = []
        for k, v in cols.items():
            v = np.broadcast_to(np.asarray(v), ok.shape).ravel()
            parts.append(f"{k}={v[i]!r}")
        lines.append(", ".join(parts))
    return f"{(~ok).sum()} of {ok.size} mismatches, e.g.\n  " + "\n  ".join(lines)


def _assert_within(y, hi, lo, tol, what="", **cols):
    """|y - (hi + lo)| <= tol where the reference is finite (overflow to +-inf
    in y's dtype accepted as the rounding); identical non-finite values
    (NaN where NaN, the same infinity) elsewhere."""
    y = np.asarray(y)
    dt = y.dtype
    y64 = y.astype(np.float64)
    hi = np.broadcast_to(np.asarray(hi, np.float64), y.shape)
    with np.errstate(all="ignore"):
        err = np.abs((y64 - hi) - lo)
        fin = np.isfinite(hi)
        rounded = hi.astype(dt).astype(np.float64)
        ok_fin = (err <= tol) | (np.isinf(rounded) & (y64 == rounded))
        ok_nonfin = (y64 == hi) | (np.isnan(y64) & np.isnan(hi))
    ok = np.where(fin, ok_fin, ok_nonfin)
    assert ok.all(), f"{what}: " + _report(ok, y=y, ref=hi, err=err, tol=tol, **cols)


# ---------------------------------------------------------------- references and budgets
def _moved(a, axis):
    return np.moveaxis(np.asarray(a), axis, -1)


def _parts_for_tol(x64):
    """p, |d|, sum_j p_j |d_j| (keepdims) and L of the float64 reference, with
    the rows that hold a NaN or +inf (or are all -inf) zeroed (their values are
    compared for the exact non-finite pattern; their finite entries get a flat
    budget)."""
    bad = np.isnan(x64).any(-1) | (x64 == np.inf).any(-1) | (x64 == -np.inf).all(-1)
    xs = np.where(bad[..., None], 0.0, x64)
    m, d, e, T, L = R.rowwise_parts(xs)
    with np.errstate(all="ignore"):
        p = e / (1.0 + T)
        pd = np.where(e == 0, 0.0, p * np.abs(d))
        ad = np.where(np.isinf(d), 0.0, np.abs(d))
    return p, ad, pd.sum(-1, keepdims=True), L, bad


def forward_tol(name, x64m, ref_hi, dt, exact=False, ref_f64=False):
    """Error budget (absolute, float64) of mlkern.<name> for float64 rows x64m
    (reduced axis last) in result dtype dt; ref_hi is the reference (the
    keepdims shape for logsumexp).  B eps is the relative error allowed to the
    row's sum (the contract's row-sum bound), 2 ULP the final roundings."""
    dt = np.dtype(dt)
    eps = EPS[dt]
    n = x64m.shape[-1]
    B = _b(n) * (2.0 if (ref_f64 and dt == F64) else 1.0)
    ulp = R.ulp_spacing(ref_hi, dt)
    p, ad, spd, L, bad = _parts_for_tol(x64m)
    k = 0.0 if exact else 1.0
    if name == "softmax":
        tol = eps * p * (B + k * (ad + spd)) + 2 * ulp
    elif name in ("log_softmax", "logsumexp"):
        tol = eps * (B * L + k * spd) + 2 * ulp
    else:
        raise KeyError(name)
    if bad.any():
        flat = 4 * B * ulp + 4 * B * eps * (1.0 + np.abs(np.nan_to_num(np.asarray(ref_hi, np.float64))))
        tol = np.where(bad[..., None], flat, tol)
    return tol


def forward_ref(name, x64m):
    """float64 reference along the last axis (keepdims for logsumexp)."""
    if name == "softmax":
        return R.softmax_ref(x64m)
    if name == "log_softmax":
        return R.log_softmax_ref(x64m)
    return R.logsumexp_ref(x64m, keepdims=True)


def check_forward(name, y, x, axis=-1, keepdims=False, exact=False, hi=None, lo=0.0, ref_y=None, what=""):
    """y = mlkern.<name>(x, axis) against the float64 reference, or the given
    mpmath hi + lo (reduced axis last, keepdims for logsumexp), or ref_y (an
    array laid out like y, e.g. another result), within the budget of the
    module docstring."""
    y = np.asarray(y)
    dt = y.dtype

    def lay(a):
        a = np.asarray(a)
        if name == "logsumexp":
            return _moved(a, axis) if keepdims else a[..., None]
        return _moved(a, axis)

    x64m = _moved(np.asarray(x).astype(np.float64), axis)
    ym = lay(y)
    if ref_y is not None:
        hi = lay(np.asarray(ref_y, np.float64))
    ref_f64 = hi is None or ref_y is not None
    if hi is None:
        hi = forward_ref(name, x64m)
    hi = np.asarray(hi, np.float64).reshape(ym.shape)
    lo = np.broadcast_to(np.asarray(lo, np.float64), hi.shape).reshape(ym.shape)
    tol = forward_tol(name, x64m, hi, dt, exact=exact, ref_f64=ref_f64)
    _assert_within(ym, hi, lo, tol, what=what or f"{name} {dt} axis={axis}")


def backward_ref_tol(name, g, y, axis, dt):
    """(reference, budget) of mlkern.<name>(g, y, axis) in result dtype dt, both
    with the reduced axis last."""
    g64 = _moved(np.asarray(g, np.float64), axis)
    y64 = _moved(np.asarray(y, np.float64), axis)
    n = g64.shape[-1]
    dt = np.dtype(dt)
    B = _b(n) * (2.0 if dt == F64 else 1.0)
    eps = EPS[dt]
    with np.errstate(all="ignore"):
        if name == "softmax_backward":
            ref = R.softmax_backward_ref(g64, y64)
            s = np.sum(g64 * y64, -1, keepdims=True)
            mag = np.abs(y64) * (np.abs(g64) + np.abs(s) + np.sum(np.abs(g64 * y64), -1, keepdims=True))
        else:
            ref = R.log_softmax_backward_ref(g64, y64)
            mag = np.abs(g64) + np.exp(y64) * np.sum(np.abs(g64), -1, keepdims=True)
    return ref, B * eps * mag + B * R.ulp_spacing(ref, dt)


def check_backward(name, out, g, y, axis=-1, what=""):
    out = np.asarray(out)
    ref, tol = backward_ref_tol(name, g, y, axis, out.dtype)
    _assert_within(_moved(out, axis), ref, 0.0, tol, what=what or f"{name} {out.dtype} axis={axis}")


def check_jacobian(J, p, axis=-1, what=""):
    """J[..., i, j] = p_i (delta_ij - p_j), within 4 eps of the summands."""
    J = np.asarray(J)
    pm = _moved(np.asarray(p, np.float64), axis)
    n = pm.shape[-1]
    assert J.shape == pm.shape + (n,), (what, J.shape, pm.shape)
    ref = R.softmax_jacobian_ref(pm)
    mag = np.abs(ref) + np.abs(pm[..., :, None] * pm[..., None, :]) + np.abs(pm[..., :, None]) * np.eye(n)
    _assert_within(J, ref, 0.0, 4 * EPS[J.dtype] * mag + R.ulp_spacing(ref, J.dtype), what=what or "softmax_jacobian")


def _forward_of(name):
    return "softmax" if name == "softmax_backward" else "log_softmax"


def _bwd_inputs(name, x, axis=-1, seed=1):
    """(grad_output, y) for a backward function: y the float64 reference
    forward of x along axis rounded to x's dtype, g random of that dtype."""
    x = np.asarray(x)
    dt = x.dtype if x.dtype.kind == "f" else F64
    y = np.moveaxis(forward_ref(_forward_of(name), _moved(x.astype(np.float64), axis)), -1, axis)
    rng = np.random.default_rng(seed)
    g = rng.standard_normal(x.shape)
    return g.astype(dt), y.astype(dt)


def call(name, x, axis=-1, **kw):
    """mlkern.<name> on x; the backward functions get (g, y) from _bwd_inputs."""
    if name in BACKWARD:
        g, y = _bwd_inputs(name, x, axis)
        return fn(name)(g, y, axis=axis, **kw)
    return fn(name)(x, axis=axis, **kw)


def check_any(name, r, x, axis=-1, keepdims=False, what=""):
    """r = call(name, x, axis) against its reference (argmax: np.argmax exactly)."""
    x = np.asarray(x)
    if name in FORWARD:
        check_forward(name, r, x, axis, keepdims=keepdims, what=what)
    elif name in BACKWARD:
        g, y = _bwd_inputs(name, x, axis)
        check_backward(name, r, g, y, axis, what=what)
    elif name == "softmax_jacobian":
        check_jacobian(r, x, axis, what=what)
    else:
        e = np.argmax(x, axis=axis, keepdims=keepdims)
        r = np.asarray(r)
        assert r.dtype == np.int64 and r.shape == e.shape and np.array_equal(r, e), (what, r, e)


# ================================================================ conventions
@pytest.mark.parametrize("dt", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("name", ALL)
def test_float_dtypes_kept(name, dt):
    x = _data(0, (4, 6), dtype=dt)
    r = call(name, x)
    assert isinstance(r, np.ndarray)
    assert r.dtype == (np.int64 if name == "argmax" else dt)
    check_any(name, r, x)


@pytest.mark.parametrize("dt", [np.int8, np.int32, np.int64, np.uint8, np.bool_])
@pytest.mark.parametrize("name", ALL)
def test_int_and_bool_compute_in_float64(name, dt):
    if dt is np.bool_:
        x = np.array([[True, False, True, False, False], [False, False, False, True, True]])
    elif dt is np.uint8:
        x = np.array([[0, 1, 2, 255, 7], [3, 3, 9, 0, 1]], np.uint8)
    else:
        x = np.array([[-5, 1, 2, 3, 0], [7, 7, -1, 0, 2]], dt)
    x64 = x.astype(np.float64)
    if name in BACKWARD:
        g = np.array([[1, -2, 0, 3, 1], [0, 1, 1, -1, 2]], np.int32 if dt is not np.bool_ else np.bool_)
        if dt is np.bool_:
            g = g.astype(bool)
        y = x                                  # any integer "saved" array
        r = fn(name)(g, y)
        assert r.dtype == F64
        assert same_array(r, fn(name)(g.astype(np.float64), x64))
        return
    r = call(name, x)
    if name == "argmax":
        assert r.dtype == np.int64 and np.array_equal(r, np.argmax(x, axis=-1))
        return
    assert r.dtype == F64
    assert same_array(r, call(name, x64))


@pytest.mark.parametrize("name", ALL)
def test_float16_computes_in_float32(name):
    x = _data(2, (3, 9), scale=3.0, dtype=np.float16)
    x[0, 3] = np.float16(65504)
    x[1, 1] = np.float16(-65504)
    x[2, 0] = np.float16(6e-8)
    if name == "softmax_jacobian":
        x = _data(2, (3, 9), dtype=np.float16) / np.float16(4)
    if name in BACKWARD:
        g, y = _bwd_inputs(name, x)
        assert g.dtype == F16 and y.dtype == F16
        r = fn(name)(g, y)
        assert r.dtype == F16
        assert same_array(r, fn(name)(g.astype(np.float32), y.astype(np.float32)).astype(np.float16))
        return
    r = call(name, x)
    if name == "argmax":
        assert r.dtype == np.int64 and np.array_equal(r, np.argmax(x, axis=-1))
        return
    assert r.dtype == F16
    assert same_array(r, np.asarray(call(name, x.astype(np.float32))).astype(np.float16))


@pytest.mark.parametrize("name", ALL)
def test_complex_raises_typeerror(name):
    z = np.array([[1 + 2j, 3j], [1.0, 2.0]])
    ok = np.ones((2, 2))
    if name in BACKWARD:
        with pytest.raises(TypeError):
            fn(name)(z, ok)
        with pytest.raises(TypeError):
            fn(name)(ok, z)
        with pytest.raises(TypeError):
            fn(name)(z.astype(np.complex64), z.astype(np.complex64))
        return
    with pytest.raises(TypeError):
        fn(name)(z)
    with pytest.raises(TypeError):
        fn(name)(z.astype(np.complex64))


@pytest.mark.parametrize("name", ALL)
def test_list_input(name):
    rows = [[1.0, 2.0, -0.5], [0.0, 3.0, 3.0]]
    a = np.array(rows)
    if name in BACKWARD:
        g = [[1.0, -1.0, 0.5], [2.0, 0.0, 1.0]]
        y = [[0.2, 0.3, 0.5], [0.1, 0.1, 0.8]]
        assert same_array(fn(name)(g, y), fn(name)(np.array(g), np.array(y)))
        return
    assert same_array(fn(name)(rows), fn(name)(a))
    assert same_array(fn(name)(rows[0]), fn(name)(a[0]))


@pytest.mark.parametrize("name", ALL)
def test_zero_d_raises_valueerror(name):
    for v in (np.float64(1.5), np.array(2.0), np.float32(-1.0), 3.0, 1):
        with pytest.raises(ValueError):
            if name in BACKWARD:
                fn(name)(v, v)
            else:
                fn(name)(v)


@pytest.mark.parametrize("axis", [0, 1, 2, -1, -2, -3])
@pytest.mark.parametrize("name", ALL)
def test_any_axis(name, axis):
    x = _data(3, (3, 4, 5), scale=2.0)
    r = call(name, x, axis=axis)
    check_any(name, r, x, axis, what=f"{name} axis={axis}")
    if name in ("logsumexp", "argmax"):
        rk = call(name, x, axis=axis, keepdims=True)
        expect_shape = list(x.shape)
        expect_shape[axis] = 1
        assert np.shape(rk) == tuple(expect_shape)
        assert np.array_equal(np.squeeze(np.asarray(rk), axis=axis), np.asarray(r))
    if name == "softmax_jacobian":
        m = np.moveaxis(x, axis, -1).shape
        assert r.shape == m + (m[-1],)
    # the negative and positive spelling of the same axis agree exactly
    other = axis + 3 if axis < 0 else axis - 3
    assert same_array(call(name, x, axis=other), r)


@pytest.mark.parametrize("axis", [3, -4, 10, -100])
@pytest.mark.parametrize("name", ALL)
def test_axis_out_of_range(name, axis):
    x = _data(4, (2, 3, 4))
    with pytest.raises(ValueError, match="axis"):
        call(name, x, axis=axis)
    with pytest.raises(ValueError, match="axis"):
        call(name, x[0, 0], axis=1)


@pytest.mark.parametrize("name", [n for n in ALL if n != "argmax"])
def test_axis_none_rejected(name):
    x = _data(5, (3, 4))
    with pytest.raises((TypeError, ValueError)):
        if name in BACKWARD:
            fn(name)(x, x, axis=None)
        else:
            fn(name)(x, axis=None)


def test_softmax_jacobian_has_no_out():
    p = np.full((2, 3), 1 / 3)
    with pytest.raises(TypeError):
        mlkern.softmax_jacobian(p, out=np.empty((2, 3, 3)))


# ---------------------------------------------------------------- layouts
LAYOUTS = ["C", "F", "strided", "negative", "readonly", "permuted", "byteswapped", "misaligned"]


def _layout(base, kind):
    """An array equal to base with the memory layout `kind`."""
    if kind == "C":
        return base.copy()
    if kind == "F":
        return np.asfortranarray(base)
    if kind == "strided":
        shp = tuple(2 * s for s in base.shape)
        buf = np.zeros(shp, base.dtype)
        sl = tuple(slice(None, None, 2) for _ in shp)
        buf[sl] = base
        return buf[sl]
    if kind == "negative":
        sl = tuple(slice(None, None, -1) for _ in base.shape)
        return np.ascontiguousarray(base[sl])[sl]
    if kind == "readonly":
        c = base.copy()
        c.setflags(write=False)
        return c
    if kind == "permuted":
        perm = tuple(range(1, base.ndim)) + (0,)
        inv = np.argsort(perm)
        return np.ascontiguousarray(base.transpose(perm)).transpose(inv)
    if kind == "byteswapped":
        return base.astype(base.dtype.newbyteorder(">" if np.little_endian else "<"))
    if kind == "misaligned":
        buf = np.zeros(base.nbytes + 1, np.uint8)
        mis = buf[1:].view(base.dtype).reshape(base.shape)
        mis[...] = base
        return mis
    raise KeyError(kind)


def _layout_base(dt, ndim, seed=6):
    x = _data(seed, (6, 10) if ndim == 2 else (4, 5, 6), scale=3.0, dtype=dt)
    if ndim == 2:
        x[0, 0] = np.nan
        x[1, 3] = np.inf
        x[2, 4] = -np.inf
        x[3, :] = -np.inf
    else:
        x[1, 2, 3] = np.nan
    return x


@pytest.mark.parametrize("dt", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("ndim,axis", [(2, -1), (2, 0), (3, 1)], ids=["2d-1", "2d0", "3d1"])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("name", [n for n in ALL if n not in BACKWARD])
def test_layouts(name, layout, ndim, axis, dt):
    base = _layout_base(dt, ndim)
    if name == "softmax_jacobian":
        base = np.nan_to_num(np.abs(base), nan=0.5, posinf=0.25, neginf=0.0)
    x = _layout(base, layout)
    assert np.array_equal(x, base, equal_nan=True)
    before = digest(x)
    with np.errstate(all="ignore"):
        r = call(name, x, axis=axis)
        ref = call(name, base, axis=axis)
    assert digest(x) == before, "input modified"
    assert np.shape(r) == np.shape(ref) and np.asarray(r).dtype == np.asarray(ref).dtype
    if name == "argmax":
        assert np.array_equal(r, ref)
    check_any(name, r, base, axis, what=f"{name} {layout}")
    # and close to the C-contiguous result (rounding of the row sums may differ)
    if name in FORWARD:
        check_forward(name, r, base, axis, ref_y=ref, what=f"{name} {layout} vs C")


@pytest.mark.parametrize("dt", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("ndim,axis", [(2, -1), (2, 0), (3, 1)], ids=["2d-1", "2d0", "3d1"])
@pytest.mark.parametrize("layout_g,layout_y", [("F", "F"), ("strided", "strided"), ("negative", "C"),
                                               ("C", "F"), ("readonly", "readonly"),
                                               ("permuted", "negative")])
@pytest.mark.parametrize("name", BACKWARD)
def test_backward_layouts(name, layout_g, layout_y, ndim, axis, dt):
    x = _data(7, (6, 10) if ndim == 2 else (4, 5, 6), scale=3.0, dtype=dt)
    g, y = _bwd_inputs(name, x, axis)
    gl, yl = _layout(g, layout_g), _layout(y, layout_y)
    bg, by = digest(gl), digest(yl)
    r = fn(name)(gl, yl, axis=axis)
    assert digest(gl) == bg and digest(yl) == by, "input modified"
    assert r.shape == x.shape and r.dtype == dt
    check_backward(name, r, g, y, axis)
    c = fn(name)(g, y, axis=axis)
    ref, tol = backward_ref_tol(name, g, y, axis, dt)
    _assert_within(_moved(r, axis), _moved(c, axis), 0.0, tol, what=f"{name} vs C-contiguous")


@pytest.mark.parametrize("name", ALL)
def test_inputs_not_modified(name):
    for dt in DTYPES:
        x = _data(8, (5, 33), dtype=dt)
        if name in BACKWARD:
            g, y = _bwd_inputs(name, x)
            s = (digest(g), digest(y))
            fn(name)(g, y)
            assert (digest(g), digest(y)) == s
        else:
            s = digest(x)
            call(name, x)
            call(name, x, axis=0)
            assert digest(x) == s


# ---------------------------------------------------------------- out=
def _out_shape(name, shape, axis=-1, keepdims=False):
    if name == "logsumexp" or name == "argmax":
        s = list(shape)
        if keepdims:
            s[axis] = 1
        else:
            del s[axis]
        return tuple(s)
    return tuple(shape)


def _out_dtype(name, dt):
    return np.dtype(np.int64) if name == "argmax" else np.dtype(dt)


@pytest.mark.parametrize("axis", [-1, 0])
@pytest.mark.parametrize("dt", DTYPES + [np.float16], ids=DT_IDS + ["f16"])
@pytest.mark.parametrize("name,keepdims", [(n, False) for n in WITH_OUT] + [(n, True) for n in REDUCTIONS],
                         ids=WITH_OUT + [n + "-keepdims" for n in REDUCTIONS])
def test_out_written_and_returned(name, keepdims, dt, axis):
    x = _data(9, (5, 7), dtype=dt)
    kw = {"keepdims": True} if keepdims else {}
    ref = call(name, x, axis=axis, **kw)
    out = np.full(_out_shape(name, x.shape, axis, keepdims), -123, _out_dtype(name, dt))
    r = call(name, x, axis=axis, out=out, **kw)
    assert r is out
    assert same_array(out, np.asarray(ref))


@pytest.mark.parametrize("name", WITH_OUT)
def test_out_errors(name):
    x = _data(10, (5, 7))
    shape = _out_shape(name, x.shape)
    odt = _out_dtype(name, np.float64)
    with pytest.raises(ValueError):
        call(name, x, out=np.empty((7, 5) if len(shape) == 2 else (7,), odt))
    with pytest.raises(ValueError):
        call(name, x, out=np.empty(shape + (1,), odt))
    if name == "argmax":
        for bad in (np.float64, np.int32, np.float32):
            with pytest.raises(TypeError):
                call(name, x, out=np.empty(shape, bad))
        return
    with pytest.raises(TypeError):
        call(name, x, out=np.empty(shape, np.float32))
    with pytest.raises(TypeError):
        call(name, x.astype(np.float32), out=np.empty(shape, np.float64))
    with pytest.raises(TypeError):
        call(name, x.astype(np.int32), out=np.empty(shape, np.int32))
    if name == "logsumexp":
        with pytest.raises(ValueError):          # keepdims shape when keepdims=False
            call(name, x, out=np.empty((5, 1)))
        with pytest.raises(ValueError):          # and the reverse
            call(name, x, keepdims=True, out=np.empty((5,)))


@pytest.mark.parametrize("dt", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("name", SAME_SHAPE)
def test_out_is_input_in_place(name, dt):
    for x, axis in ((_data(11, (64,), dtype=dt), -1), (_data(11, (300, 1000), dtype=dt), -1),
                    (np.asfortranarray(_data(12, (30, 20), dtype=dt)), -1),
                    (_data(13, (6, 50, 7), dtype=dt), 1), (_data(13, (40, 3, 5), dtype=dt), 0),
                    (_data(14, (20, 30), dtype=dt)[:, ::2], -1)):
        ref = fn(name)(x.copy(order="K"), axis=axis)
        r = fn(name)(x, axis=axis, out=x)
        assert r is x
        assert same_array(x, ref), f"{name} in place, shape {x.shape} axis {axis}"


@pytest.mark.parametrize("dt", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("name", BACKWARD)
def test_backward_out_aliases_inputs(name, dt):
    for shape, axis, order in (((64,), -1, "C"), ((300, 1000), -1, "C"), ((30, 20), -1, "F"),
                               ((6, 50, 7), 1, "C"), ((40, 3, 5), 0, "C"), ((30, 20), 0, "F")):
        x = _data(15, shape, dtype=dt)
        g, y = _bwd_inputs(name, x, axis)
        g, y = np.asarray(g, order=order), np.asarray(y, order=order)
        ref = fn(name)(g.copy(order="K"), y.copy(order="K"), axis=axis)
        g1, y1 = g.copy(order="K"), y.copy(order="K")
        assert fn(name)(g1, y1, axis=axis, out=g1) is g1
        assert same_array(g1, ref) and same_array(y1, y), f"out=grad_output {shape} axis {axis} {order}"
        g2, y2 = g.copy(order="K"), y.copy(order="K")
        assert fn(name)(g2, y2, axis=axis, out=y2) is y2
        assert same_array(y2, ref) and same_array(g2, g), f"out=y {shape} axis {axis} {order}"


@pytest.mark.parametrize("name", SAME_SHAPE)
def test_out_partial_overlap(name):
    """out= overlapping the input shifted by one element (the result is as if
    the input had been copied first)."""
    for shape in ((101,), (50_001,), (40, 33)):
        buf = _data(18, (int(np.prod(shape)) + 1,))
        a, b = buf[1:].reshape(shape), buf[:-1].reshape(shape)
        expect = fn(name)(a.copy())
        w = buf.copy()
        r = fn(name)(w[1:].reshape(shape), out=w[:-1].reshape(shape))
        assert same_array(r, expect) and same_array(w[:-1].reshape(shape), expect)
        expect = fn(name)(b.copy())
        w = buf.copy()
        fn(name)(w[:-1].reshape(shape), out=w[1:].reshape(shape))
        assert same_array(w[1:].reshape(shape), expect)


def test_calls_from_several_python_threads():
    """SPEC: the GIL is released and concurrent calls are safe."""
    import threading
    xs = [_data(19 + i, (1500, 300), dtype=np.float32 if i % 2 else np.float64) for i in range(4)]
    work = [(name, x) for x in xs for name in ("softmax", "log_softmax", "logsumexp", "argmax")]
    expect = [np.asarray(fn(name)(x)) for name, x in work]
    got = [None] * len(work)
    errors = []

    def run(k):
        try:
            for _ in range(3):
                for i in range(k, len(work), 4):
                    got[i] = np.asarray(fn(work[i][0])(work[i][1]))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    ts = [threading.Thread(target=run, args=(k,)) for k in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors, errors
    assert all(same_array(g, e) for g, e in zip(got, expect))


@pytest.mark.parametrize("name", WITH_OUT)
def test_out_non_contiguous(name):
    x = _data(16, (40, 30))
    for axis in (-1, 0):
        ref = np.asarray(call(name, x, axis=axis))
        shape = _out_shape(name, x.shape, axis)
        odt = _out_dtype(name, np.float64)
        big = np.zeros(tuple(2 * s for s in shape), odt)
        sl = tuple(slice(None, None, 2) for _ in shape)
        out = big[sl]
        assert call(name, x, axis=axis, out=out) is out and same_array(out, ref)
        mask = np.ones(big.shape, bool)
        mask[sl] = False
        assert (big[mask] == 0).all(), "wrote outside out"
        rev = np.zeros(shape, odt)[tuple(slice(None, None, -1) for _ in shape)]
        assert call(name, x, axis=axis, out=rev) is rev and same_array(rev, ref)
        if len(shape) == 2:
            outF = np.zeros(shape, odt, order="F")
            assert call(name, x, axis=axis, out=outF) is outF and same_array(outF, ref)


@pytest.mark.parametrize("keepdims", [False, True])
def test_reduction_out_shapes_3d(keepdims):
    x = _data(17, (3, 4, 5))
    for axis in (0, 1, 2, -1):
        shape = _out_shape("logsumexp", x.shape, axis, keepdims)
        out = np.empty(shape)
        assert mlkern.logsumexp(x, axis=axis, keepdims=keepdims, out=out) is out
        check_forward("logsumexp", out, x, axis, keepdims=keepdims)
        oi = np.empty(shape, np.int64)
        assert mlkern.argmax(x, axis=axis, keepdims=keepdims, out=oi) is oi
        assert np.array_equal(oi, np.argmax(x, axis=axis, keepdims=keepdims))


# ---------------------------------------------------------------- reductions return scalars
@pytest.mark.parametrize("dt,typ", [(np.float32, np.float32), (np.float64, np.float64),
                                    (np.float16, np.float16), (np.int32, np.float64),
                                    (np.bool_, np.float64)], ids=["f32", "f64", "f16", "i32", "bool"])
def test_logsumexp_scalar_type(dt, typ):
    x = np.array([0.5, 1, 0, 2]).astype(dt)
    r = mlkern.logsumexp(x)
    assert type(r) is typ, type(r)
    expect = sc.logsumexp(x.astype(np.float64))
    assert abs(float(r) - expect) <= 4 * EPS[np.dtype(typ)] * abs(expect)
    rk = mlkern.logsumexp(x, keepdims=True)
    assert isinstance(rk, np.ndarray) and rk.shape == (1,) and rk.dtype == typ and rk[0] == r
    r2 = mlkern.logsumexp(np.stack([x, x]))
    assert isinstance(r2, np.ndarray) and r2.shape == (2,) and r2.dtype == typ


def test_argmax_scalar_type():
    x = np.array([0.5, 3.0, -1.0, 3.0])
    r = mlkern.argmax(x)
    assert type(r) is np.int64 and r == 1
    for dt in (np.float32, np.float16, np.int32, np.bool_):
        assert type(mlkern.argmax(x.astype(dt))) is np.int64
    X = np.arange(12.0).reshape(3, 4)[::-1]
    r = mlkern.argmax(X, axis=None)
    assert type(r) is np.int64 and r == np.argmax(X)
    rk = mlkern.argmax(X, axis=None, keepdims=True)
    assert isinstance(rk, np.ndarray) and rk.shape == (1, 1) and rk.dtype == np.int64
    assert rk[0, 0] == np.argmax(X)
    r1k = mlkern.argmax(x, keepdims=True)
    assert isinstance(r1k, np.ndarray) and r1k.shape == (1,) and r1k[0] == 1


# ---------------------------------------------------------------- shapes, empty
@pytest.mark.parametrize("name", BACKWARD)
def test_backward_mismatched_shapes(name):
    with pytest.raises(ValueError):
        fn(name)(np.ones((3, 4)), np.ones((4, 3)))
    with pytest.raises(ValueError):
        fn(name)(np.ones(5), np.ones(6))
    with pytest.raises(ValueError):
        fn(name)(np.ones((1, 5)), np.ones(5))        # no broadcasting
    with pytest.raises(ValueError):
        fn(name)(np.ones((2, 5)), np.ones((2, 1)))


@pytest.mark.parametrize("dt", [np.float32, np.float64, np.int32], ids=["f32", "f64", "i32"])
def test_empty_rows(dt):
    """Shape (3, 0) along axis -1: empty same-shape results, logsumexp -inf per
    row (as SciPy), argmax ValueError."""
    x = np.empty((3, 0), dt)
    rdt = result_dtype(dt)
    for name in SAME_SHAPE:
        r = fn(name)(x)
        assert r.shape == (3, 0) and r.dtype == rdt
    lse = mlkern.logsumexp(x)
    assert lse.shape == (3,) and lse.dtype == rdt and (lse == -np.inf).all()
    lk = mlkern.logsumexp(x, keepdims=True)
    assert lk.shape == (3, 1) and (lk == -np.inf).all()
    assert mlkern.logsumexp(np.empty(0, dt)) == -np.inf
    for name in BACKWARD:
        r = fn(name)(x, x)
        assert r.shape == (3, 0) and r.dtype == rdt
    J = mlkern.softmax_jacobian(x)
    assert J.shape == (3, 0, 0) and J.dtype == rdt
    for a in (x, np.empty(0, dt)):
        with pytest.raises(ValueError):
            mlkern.argmax(a)
        with pytest.raises(ValueError):
            mlkern.argmax(a, axis=None)


@pytest.mark.parametrize("dt", [np.float32, np.float64], ids=DT_IDS)
def test_empty_outer(dt):
    """Shape (0, 5) along axis -1: empty results of the right shape."""
    x = np.empty((0, 5), dt)
    for name in SAME_SHAPE:
        r = fn(name)(x)
        assert r.shape == (0, 5) and r.dtype == dt
    r = mlkern.logsumexp(x)
    assert r.shape == (0,) and r.dtype == dt
    assert mlkern.logsumexp(x, keepdims=True).shape == (0, 1)
    for name in BACKWARD:
        assert fn(name)(x, x).shape == (0, 5)
    assert mlkern.softmax_jacobian(x).shape == (0, 5, 5)
    a = mlkern.argmax(x)
    assert a.shape == (0,) and a.dtype == np.int64
    assert mlkern.argmax(x, keepdims=True).shape == (0, 1)
    # reducing the empty axis instead
    lse0 = mlkern.logsumexp(x, axis=0)
    assert lse0.shape == (5,) and (lse0 == -np.inf).all()
    with pytest.raises(ValueError):
        mlkern.argmax(x, axis=0)
    with pytest.raises(ValueError):
        mlkern.argmax(x, axis=None)
    x3 = np.empty((2, 0, 4), dt)
    assert mlkern.softmax(x3, axis=1).shape == (2, 0, 4)
    assert mlkern.logsumexp(x3, axis=1).shape == (2, 4)
    assert mlkern.softmax_jacobian(x3, axis=1).shape == (2, 4, 0, 0)
    assert mlkern.argmax(x3, axis=2).shape == (2, 0)


# ================================================================ pinned numerics
PINNED_ROWS = [[1000.0, 0.0, 0.0, 0.0], [-25.0, 0.0, 25.0, 50.0], [1.0, 325.0, 749.0, 750.0]]


@functools.lru_cache(maxsize=None)
def _mp_rows(rows):
    """(hi, lo) of the mpmath truth of every name for a tuple of row tuples."""
    out = {}
    refs = [R.mp_row(r) for r in rows]
    for name, key in (("softmax", "softmax"), ("log_softmax", "log_softmax")):
        flat = [v for ref in refs for v in ref[key]]
        hi, lo = R.mp_hi_lo(flat)
        shape = (len(rows), len(rows[0]))
        out[name] = (hi.reshape(shape), lo.reshape(shape))
    hi, lo = R.mp_hi_lo([ref["lse"] for ref in refs])
    out["logsumexp"] = (hi, lo)
    return out


def _mp_check(name, y, x, hi, lo, exact, what):
    """y of dtype dt against the mpmath truth rounded to dt's grid (hi + lo
    is exact enough for float64; float32 uses hi only)."""
    if name == "logsumexp":
        hi, lo = hi[..., None], lo[..., None]
    check_forward(name, y, x, hi=hi, lo=lo, exact=exact, what=what)


@pytest.mark.parametrize("dt", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("name", FORWARD)
def test_pinned_rows_vs_mpmath(name, dt):
    rows = tuple(tuple(r) for r in PINNED_ROWS)
    ref = _mp_rows(rows)[name]
    X = np.array(PINNED_ROWS, dt)
    _mp_check(name, fn(name)(X), X, *ref, exact=True, what=f"{name} pinned rows")
    for i, row in enumerate(PINNED_ROWS):
        x = np.array(row, dt)
        y = fn(name)(x)
        hi, lo = ref[0][i], ref[1][i]
        _mp_check(name, np.atleast_1d(y) if name == "logsumexp" else y, x[None] if name == "logsumexp" else x,
                  np.atleast_1d(hi), np.atleast_1d(lo), True, f"{name}({row})")
    # the same rows along axis 0 (the non-last-axis path)
    XT = np.ascontiguousarray(X.T)
    yT = fn(name)(XT, axis=0)
    _mp_check(name, yT.T if name != "logsumexp" else yT, X, *ref, exact=True, what=f"{name} pinned, axis 0")


def test_pinned_values_exact():
    """A few values spelled out (mpmath: log_softmax([1,325,749,750])[3] =
    -log1p(e^-1 + e^-425 + e^-749) = -0.31326168751822286)."""
    y = mlkern.log_softmax(np.array([1.0, 325.0, 749.0, 750.0]))
    np.testing.assert_allclose(y[3], -0.31326168751822286, rtol=4 * EPS[F64])
    np.testing.assert_allclose(y[2], -1.3132616875182228, rtol=4 * EPS[F64])
    assert mlkern.logsumexp(np.array([1.0, 325.0, 749.0, 750.0])) == pytest.approx(750.3132616875182,
                                                                                  rel=2 * EPS[F64])
    assert np.array_equal(mlkern.softmax(np.array([1000.0, 0.0, 0.0, 0.0])), [1.0, 0.0, 0.0, 0.0])
    assert np.array_equal(mlkern.log_softmax(np.array([1000.0, 0.0, 0.0, 0.0])), [0.0, -1000.0, -1000.0, -1000.0])
    assert mlkern.logsumexp(np.array([1000.0, 0.0, 0.0, 0.0])) == 1000.0
    # mpmath: softmax([-25, 0, 25, 50]) = e^{x - 50} / (1 + e^-25 + e^-50 + e^-75)
    s = mlkern.softmax(np.array([-25.0, 0.0, 25.0, 50.0]))
    with mpmath.workdps(50):
        S = 1 + mpmath.exp(-25) + mpmath.exp(-50) + mpmath.exp(-75)
        truth = [float(mpmath.exp(v - 50) / S) for v in (-25, 0, 25, 50)]
    np.testing.assert_allclose(s, truth, rtol=4 * EPS[F64], atol=0)
    assert truth[3] == 0.9999999999861121


LSE_0_M40 = 4.248354255291589e-18      # mpmath: log1p(exp(-40)); SciPy issue 18295


def test_logsumexp_0_minus40():
    assert float(mpmath.log1p(mpmath.exp(-40))) == LSE_0_M40
    r = mlkern.logsumexp(np.array([0.0, -40.0]))
    assert r == pytest.approx(LSE_0_M40, rel=1e-15, abs=0), r
    r32 = mlkern.logsumexp(np.array([0.0, -40.0], np.float32))
    assert type(r32) is np.float32
    assert r32 == pytest.approx(LSE_0_M40, rel=4 * EPS[F32], abs=0), r32
    # the same along the rows of a batch, and along axis 0
    X = np.array([[0.0, -40.0], [-40.0, 0.0], [7.0, -33.0]])
    np.testing.assert_allclose(mlkern.logsumexp(X), [LSE_0_M40, LSE_0_M40, 7.0 + LSE_0_M40], rtol=1e-15, atol=0)
    np.testing.assert_allclose(mlkern.logsumexp(X.T.copy(), axis=0), [LSE_0_M40, LSE_0_M40, 7.0], rtol=1e-15,
                               atol=0)


def test_log_softmax_max_element_relative_accuracy():
    """log_softmax of the max element is -log1p(sum of the others): relative
    accuracy where it is tiny (not 0, not the absolute error of log(sum))."""
    y = mlkern.log_softmax(np.array([0.0, -40.0]))
    np.testing.assert_allclose(y, [-LSE_0_M40, -40.0], rtol=1e-15, atol=0)
    rows = [[0.0, -10.0], [0.0, -20.0, -30.0], [5.0, -35.0], [0.0] + [-38.0] * 10, [-3.0, -50.0, -44.0, -3.5],
            [0.0, -1.0, -0.5], [100.0, 63.0, 70.0]]
    for dt in DTYPES:
        for row in rows:
            ref = R.mp_row(row)
            k = int(np.argmax(row))
            x = np.array(row, dt)
            y = mlkern.log_softmax(x)
            truth = float(ref["log_softmax"][k])
            assert y[k] == pytest.approx(truth, rel=4 * EPS[np.dtype(dt)], abs=0), (row, dt, y[k], truth)
            s = mlkern.softmax(x)
            # the small entries of softmax too
            for j in range(len(row)):
                t = float(ref["softmax"][j])
                assert s[j] == pytest.approx(t, rel=6 * EPS[np.dtype(dt)], abs=0), (row, dt, j, s[j], t)


def test_translation_invariance():
    """softmax(x + c) == softmax(x), log_softmax too, logsumexp(x + c) ==
    logsumexp(x) + c, for shifts that keep x + c exact (values on a 2^-30 /
    2^-8 grid)."""
    for dt in DTYPES:
        q = 2.0 ** (30 if dt is np.float64 else 8)
        x = (np.round(_data(20, (8, 37), scale=2.0) * q) / q).astype(dt)
        for c in (100.0, -1000.0, 1e4 if dt is np.float64 else 2000.0):
            xc = (x + dt(c)).astype(dt)
            assert np.array_equal((xc - dt(c)).astype(dt), x)      # the shift is exact
            s, sc_ = mlkern.softmax(x), mlkern.softmax(xc)
            tol = forward_tol("softmax", x.astype(np.float64), R.softmax_ref(x), dt, exact=True)
            _assert_within(sc_, s.astype(np.float64), 0.0, 2 * tol, what=f"softmax(x+{c})")
            ls, lsc = mlkern.log_softmax(x), mlkern.log_softmax(xc)
            tol = forward_tol("log_softmax", x.astype(np.float64), R.log_softmax_ref(x), dt, exact=True)
            _assert_within(lsc, ls.astype(np.float64), 0.0, 2 * tol, what=f"log_softmax(x+{c})")
            l0, l1 = mlkern.logsumexp(x).astype(np.float64), mlkern.logsumexp(xc).astype(np.float64)
            assert np.all(np.abs((l1 - c) - l0) <= 4 * _b(37) * R.ulp_spacing(l1, dt)), (c, l1 - c, l0)


# ---------------------------------------------------------------- non-finite
NONFINITE_ROWS = [
    [np.inf, 0.0], [0.0, np.inf], [-np.inf, -np.inf], [np.inf, np.inf], [np.inf, -np.inf], [np.nan, 0.0],
    [0.0, np.nan], [-np.inf, 0.0], [np.inf, np.nan], [-np.inf, np.nan], [1.0, -np.inf], [-np.inf, 2.0],
    [np.inf, -np.inf], [-np.inf, np.inf], [np.nan, np.nan], [1e308, -1e308], [-1e308, 1e308],
]
ONE = [[np.inf], [-np.inf], [np.nan], [5.0], [-1e308]]
THREE = [[1.0, -np.inf, 2.0], [np.inf, -np.inf, np.inf], [-np.inf, -np.inf, -np.inf], [3.0, np.nan, np.inf],
         [-np.inf, 0.0, -np.inf], [2.0, 2.0, -np.inf]]


def _scipy(name, x):
    with np.errstate(all="ignore"):
        x = np.asarray(x, np.float64)
        if name == "softmax":
            return sc.softmax(x, axis=-1)
        if name == "log_softmax":
            return sc.log_softmax(x, axis=-1)
        return sc.logsumexp(x, axis=-1)


@pytest.mark.parametrize("dt", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("name", FORWARD)
def test_nonfinite_rows_like_scipy(name, dt):
    """softmax/log_softmax/logsumexp of rows with NaN / +-inf exactly as
    scipy.special (the same NaN and inf positions; finite values close)."""
    for rows in (NONFINITE_ROWS, ONE, THREE):
        X = np.array(rows, np.float64)
        if dt is np.float32:
            X = np.where(np.abs(X) == 1e308, np.sign(X) * 3e38, X)
        X = X.astype(dt)
        with warnings.catch_warnings():
            warnings.simplefilter("error")        # no RuntimeWarning leaks from the kernels
            y = fn(name)(X)
        e = _scipy(name, X)
        hi = e[..., None] if name == "logsumexp" else e
        ym = y[..., None] if name == "logsumexp" else y
        x64 = X.astype(np.float64)
        tol = forward_tol(name, x64, hi, dt)
        _assert_within(ym, hi, 0.0, tol, what=f"{name} non-finite rows {dt}", x=x64[:, :1])
        for i, row in enumerate(X):
            assert same_array(np.asarray(fn(name)(row)), np.asarray(y[i])), (name, row)


def test_nonfinite_spelled_out():
    inf, nan = np.inf, np.nan
    for dt in DTYPES:
        a = lambda *v: np.array(v, dt)  # noqa: E731
        assert np.isnan(mlkern.softmax(a(-inf, -inf, -inf))).all()
        assert np.isnan(mlkern.softmax(a(inf, 0.0, 1.0))).all()
        assert np.isnan(mlkern.softmax(a(2.0, 0.0, inf))).all()
        assert np.isnan(mlkern.softmax(a(nan, 0.0))).all()
        assert np.array_equal(mlkern.softmax(a(-inf, 0.0)), [0.0, 1.0])
        assert mlkern.logsumexp(a(-inf, -inf)) == -inf
        assert mlkern.logsumexp(a(-inf)) == -inf
        assert mlkern.logsumexp(a(1.0, inf, -inf)) == inf
        assert mlkern.logsumexp(a(inf)) == inf
        assert np.isnan(mlkern.logsumexp(a(1.0, nan)))
        assert np.isnan(mlkern.logsumexp(a(inf, nan)))
        assert np.isnan(mlkern.logsumexp(a(-inf, nan)))
        assert same_array(mlkern.log_softmax(a(inf, 0.0)), a(nan, -inf))
        assert same_array(mlkern.log_softmax(a(-inf, -inf)), a(nan, nan))
        assert same_array(mlkern.log_softmax(a(-inf, 0.0)), a(-inf, 0.0))
        assert np.isnan(mlkern.log_softmax(a(1.0, nan, 2.0))).all()


@pytest.mark.parametrize("dt", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("name", FORWARD + ["argmax"])
def test_nan_in_one_row_only_that_row(name, dt):
    for shape, axis, bad in (((6, 37), -1, (3, 5)), ((5, 17, 7), 1, (2, 4, 3)), ((9, 4, 6), 0, (8, 1, 2)),
                             ((4, 1000), -1, (1, 999))):
        x = _data(21, shape, dtype=dt)
        xn = x.copy()
        xn[bad] = np.nan
        y, yn = np.asarray(fn(name)(x, axis=axis)), np.asarray(fn(name)(xn, axis=axis))
        ym, ynm = (y[..., None], yn[..., None]) if name in REDUCTIONS else (_moved(y, axis), _moved(yn, axis))
        ax = axis % x.ndim
        row = tuple(b for i, b in enumerate(bad) if i != ax)
        mask = np.zeros(ym.shape[:-1], bool)
        mask[row] = True
        if name == "argmax":
            assert ynm[row][0] == bad[ax]
        else:
            assert np.isnan(ynm[row]).all(), f"{name}: the NaN row is not all NaN: {ynm[row]}"
        assert np.array_equal(ynm[~mask], ym[~mask]), f"{name}: rows without NaN changed"


# ================================================================ accuracy
MP_N = [1, 2, 3, 5, 8, 17, 64, 200]


@functools.lru_cache(maxsize=None)
def _mp_dataset(scale, n, exact):
    rows = max(4, min(12, 1200 // n))
    x = _data(1000 + 7 * n + int(scale), (rows, n), scale=float(scale), exact=exact)
    return x, _mp_rows(tuple(tuple(float(v) for v in r) for r in x))


@pytest.mark.parametrize("exact", [False, True], ids=["general", "exact-diff"])
@pytest.mark.parametrize("n", MP_N)
@pytest.mark.parametrize("scale", [2, 30])
@pytest.mark.parametrize("name", FORWARD)
def test_float64_vs_mpmath(name, scale, n, exact):
    x, refs = _mp_dataset(scale, n, exact)
    y = fn(name)(x)
    assert y.dtype == F64
    _mp_check(name, y, x, *refs[name], exact=exact, what=f"{name} f64 {scale}N(0,1) n={n}")


@pytest.mark.parametrize("exact", [False, True], ids=["general", "exact-diff"])
@pytest.mark.parametrize("n", [1, 2, 3, 7, 17, 100, 1000, 4099])
@pytest.mark.parametrize("scale", [2, 30])
@pytest.mark.parametrize("name", FORWARD)
def test_float32_vs_float64_reference(name, scale, n, exact):
    x = _data(2000 + n + scale, (max(3, 20000 // n // 4), n), scale=float(scale), dtype=np.float32, exact=exact)
    y = fn(name)(x)
    assert y.dtype == F32
    check_forward(name, y, x, exact=exact, what=f"{name} f32 {scale}N(0,1) n={n}")


def _row_sum_err(y):
    y = np.asarray(y)
    if y.dtype == F64:
        rows = y.reshape(-1, y.shape[-1])
        s = np.array([math.fsum(r) for r in rows]).reshape(y.shape[:-1])
    else:
        s = y.astype(np.float64).sum(-1)     # float32 values, exactly enough in float64
    return np.abs(s - 1.0)


ROW_SUM_SCALES = [2.0, 30.0, 0.01]          # 0.01: near-uniform rows, the hardest sums


@pytest.mark.parametrize("scale", ROW_SUM_SCALES)
@pytest.mark.parametrize("n", [10, 1000, 32000])
@pytest.mark.parametrize("dt", DTYPES, ids=DT_IDS)
def test_softmax_row_sums(dt, n, scale):
    x = _data(30 + n, (max(4, 40000 // n), n), scale=scale, dtype=dt)
    err = _row_sum_err(mlkern.softmax(x))
    bound = EPS[np.dtype(dt)] * _b(n)
    assert (err <= bound).all(), f"max |sum - 1| = {err.max()!r} = {err.max() / EPS[np.dtype(dt)]:.1f} eps " \
                                 f"> {bound!r} = eps (4 + log2 {n})"


@pytest.mark.parametrize("scale", [3.0, 0.01])
@pytest.mark.parametrize("n", [10, 1000, 32000])
@pytest.mark.parametrize("axis", [0, 1])
@pytest.mark.parametrize("dt", DTYPES, ids=DT_IDS)
def test_softmax_row_sums_3d(dt, axis, n, scale):
    """The same bound along axis 0 / axis 1 of C-contiguous 3-D input (the
    non-last-axis path)."""
    x = _data(31 + n, (n, 3, 5) if axis == 0 else (2, n, 7), scale=scale, dtype=dt)
    y = mlkern.softmax(x, axis=axis)
    err = _row_sum_err(np.moveaxis(y, axis, -1))
    bound = EPS[np.dtype(dt)] * _b(n)
    assert (err <= bound).all(), f"axis={axis}: max |sum - 1| = {err.max()!r} = " \
                                 f"{err.max() / EPS[np.dtype(dt)]:.1f} eps > {bound!r} = eps (4 + log2 {n})"


@pytest.mark.parametrize("axis", [-1, 0])
@pytest.mark.parametrize("dt", DTYPES, ids=DT_IDS)
def test_softmax_row_sums_very_long_rows(dt, axis):
    """SPEC: row sums within eps (4 + log2 n) for rows of any n -- here four
    near-uniform rows of 2^20 elements (along axis -1, and along axis 0 of the
    transposed C-contiguous copy)."""
    n = 2 ** 20
    x = _data(32, (4, n), scale=0.01, dtype=dt)
    if axis == 0:
        x = np.ascontiguousarray(x.T)
    y = mlkern.softmax(x, axis=axis)
    err = _row_sum_err(y if axis == -1 else y.T)
    bound = EPS[np.dtype(dt)] * _b(n)
    assert (err <= bound).all(), f"|sum - 1| per row = {err / EPS[np.dtype(dt)]} eps > eps (4 + log2 n) = " \
                                 f"{_b(n):.1f} eps"


# ================================================================ derivatives
FD_CASES = [((6, 17), -1), ((9, 5, 4), 0), ((3, 33, 5), 1), ((40,), -1), ((2, 3), -1)]
FD_IDS = ["2d", "3d-axis0", "3d-axis1", "1d", "tiny"]


def _fd_directional(f, x, v, axis, h=1e-3):
    """J v per row by 4th-order central differences of the forward f."""
    return (-f(x + 2 * h * v, axis=axis) + 8 * f(x + h * v, axis=axis) - 8 * f(x - h * v, axis=axis)
            + f(x - 2 * h * v, axis=axis)) / (12 * h)


@pytest.mark.parametrize("shape,axis", FD_CASES, ids=FD_IDS)
@pytest.mark.parametrize("name", BACKWARD)
def test_backward_vs_finite_differences(name, shape, axis):
    """<g, J v> from finite differences of the forward equals
    <backward(g, y), v> row by row (float64)."""
    rng = np.random.default_rng(40)
    x = 2.0 * rng.standard_normal(shape)
    g = rng.standard_normal(shape)
    v = rng.standard_normal(shape)
    fwd = fn(_forward_of(name))
    y = fwd(x, axis=axis)
    jv = _fd_directional(fwd, x, v, axis)
    lhs = np.sum(g * jv, axis=axis)
    b = fn(name)(g, y, axis=axis)
    rhs = np.sum(b * v, axis=axis)
    scale = np.sum(np.abs(g * jv), axis=axis) + np.sum(np.abs(b * v), axis=axis) + 1e-300
    ok = np.abs(lhs - rhs) <= 1e-8 * scale + 1e-12
    assert ok.all(), _report(ok, fd=lhs, backward=rhs)


@pytest.mark.parametrize("dt", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("n", [1, 2, 5, 16, 33])
def test_backward_vs_explicit_jacobian(n, dt):
    """softmax_backward(g, p) = J(p)^T g = J(p) g with J = softmax_jacobian(p);
    log_softmax_backward(g, log p) = (I - 1 p^T)^T g."""
    rng = np.random.default_rng(41 + n)
    x = (2.0 * rng.standard_normal((7, n))).astype(dt)
    g = rng.standard_normal((7, n)).astype(dt)
    p = mlkern.softmax(x)
    J = mlkern.softmax_jacobian(p).astype(np.float64)
    jg = np.einsum("rji,rj->ri", J, g.astype(np.float64))
    b = mlkern.softmax_backward(g, p)
    _, tol = backward_ref_tol("softmax_backward", g, p, -1, dt)
    _assert_within(b, jg, 0.0, 2 * tol, what="softmax_backward vs J g")
    ls = mlkern.log_softmax(x)
    p64 = np.exp(ls.astype(np.float64))
    Jl = np.eye(n) - p64[:, None, :]
    jlg = np.einsum("rji,rj->ri", Jl, g.astype(np.float64))
    bl = mlkern.log_softmax_backward(g, ls)
    _, tol = backward_ref_tol("log_softmax_backward", g, ls, -1, dt)
    _assert_within(bl, jlg, 0.0, 2 * tol, what="log_softmax_backward vs (I - 1p^T)^T g")


@pytest.mark.parametrize("dt", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("n", [1, 3, 8, 17, 100])
@pytest.mark.parametrize("name", BACKWARD)
def test_backward_vs_reference(name, n, dt):
    x = _data(42 + n, (11, n), scale=3.0, dtype=dt)
    g, y = _bwd_inputs(name, x)
    check_backward(name, fn(name)(g, y), g, y)
    # arbitrary y (not a softmax output): the formula is what is computed
    rng = np.random.default_rng(n)
    y2 = rng.uniform(-1, 1, x.shape).astype(dt) if name == "softmax_backward" else \
        rng.uniform(-30, 2, x.shape).astype(dt)
    check_backward(name, fn(name)(g, y2), g, y2)


@pytest.mark.parametrize("dt", DTYPES, ids=DT_IDS)
def test_softmax_jacobian_closed_form_and_symmetry(dt):
    for n in (1, 2, 5, 17, 64):
        p = mlkern.softmax(_data(50 + n, (4, n), scale=2.0, dtype=dt))
        J = mlkern.softmax_jacobian(p)
        assert J.shape == (4, n, n) and J.dtype == dt
        check_jacobian(J, p)
        assert np.array_equal(J, np.swapaxes(J, -1, -2)), "not symmetric"
        # rows of J sum to p_i (1 - sum p) ~ 0
        s = np.abs(J.astype(np.float64).sum(-1))
        assert (s <= 4 * _b(n) * EPS[np.dtype(dt)] * p.astype(np.float64)).all()
    # any vector p, not only probabilities: the formula
    p = np.array([0.5, -2.0, 3.0], dt)
    check_jacobian(mlkern.softmax_jacobian(p), p)
    assert mlkern.softmax_jacobian(p).shape == (3, 3)


def test_softmax_jacobian_shape_along_axis():
    p = mlkern.softmax(_data(51, (5, 3, 4)), axis=0)
    J = mlkern.softmax_jacobian(p, axis=0)
    assert J.shape == (3, 4, 5, 5)
    for a in range(3):
        for b in range(4):
            check_jacobian(J[a, b], p[:, a, b])
    J1 = mlkern.softmax_jacobian(p, axis=1)
    assert J1.shape == (5, 4, 3, 3)
    check_jacobian(J1, p, axis=1)
    J2 = mlkern.softmax_jacobian(p, axis=-2)
    assert same_array(J2, J1)


# ================================================================ threads
BIG = {}


def _big(key, shape, dt, seed):
    if key not in BIG:
        BIG[key] = _data(seed, shape, scale=2.0, dtype=dt)
    return BIG[key]


THREAD_CASES = [
    ("softmax", (4096, 1000), np.float32, -1), ("log_softmax", (4096, 1000), np.float32, -1),
    ("logsumexp", (4096, 1000), np.float32, -1), ("argmax", (4096, 1000), np.float32, -1),
    ("softmax_backward", (4096, 1000), np.float32, -1), ("log_softmax_backward", (4096, 1000), np.float32, -1),
    ("softmax", (64, 1000, 64), np.float64, 1), ("logsumexp", (64, 1000, 64), np.float64, 1),
    ("argmax", (64, 1000, 64), np.float64, 1), ("log_softmax", (64, 1000, 64), np.float32, 1),
    ("softmax", (1_000_000, 10), np.float32, -1), ("log_softmax", (1_000_000, 10), np.float64, -1),
    ("logsumexp", (1_000_000, 10), np.float64, -1), ("argmax", (1_000_000, 10), np.float32, -1),
    ("softmax_backward", (1_000_000, 10), np.float64, -1),
]


@pytest.mark.parametrize("name,shape,dt,axis", THREAD_CASES,
                         ids=[f"{c[0]}-{'x'.join(map(str, c[1]))}-{np.dtype(c[2]).name}-ax{c[3]}"
                              for c in THREAD_CASES])
def test_threads_1_and_2_agree(name, shape, dt, axis):
    """softmax within 2 ULP (the row sums may round differently), log_softmax,
    logsumexp and the backward within 4 ULP (d - L, m + L and y (g - s) take
    one more rounding of the shared sum), argmax exactly."""
    x = _big((shape, np.dtype(dt).name), shape, dt, 60)
    if name in BACKWARD:
        key = ("bwd", name, shape, np.dtype(dt).name)
        if key not in BIG:
            BIG[key] = _bwd_inputs(name, x, axis)
        g, y = BIG[key]
        f = lambda: fn(name)(g, y, axis=axis)  # noqa: E731
    else:
        f = lambda: fn(name)(x, axis=axis)  # noqa: E731
    with mlkern.threads(1):
        r1 = f()
    with mlkern.threads(2):
        r2 = f()
    assert r1.dtype == r2.dtype and r1.shape == r2.shape
    if name == "argmax":
        assert np.array_equal(r1, r2)
        assert np.array_equal(r1, np.argmax(x, axis=axis))
        return
    budget = 2.0 if name == "softmax" else 4.0
    a, b = r1.astype(np.float64), r2.astype(np.float64)
    with np.errstate(all="ignore"):
        ulp = np.maximum(R.ulp_spacing(a, r1.dtype), R.ulp_spacing(b, r1.dtype))
        diff = np.where((a == b) | (np.isnan(a) & np.isnan(b)), 0.0, np.abs(a - b) / ulp)
    ok = diff <= budget
    if name in BACKWARD and not ok.all():
        # near-zero results of g - s are cancellations: compare in units of the summands
        _, tol = backward_ref_tol(name, g, y, axis, r1.dtype)
        ok |= np.abs(a - b) <= np.moveaxis(tol, -1, axis)
    assert ok.all(), _report(ok, t1=r1, t2=r2, ulps=diff)


def test_threads_argmax_axis_none_first_maximum():
    n = 4_000_003
    x = np.zeros(n, np.float32)
    for pos in ([n - 1], [0, n - 1], [n // 2, n // 2 + 1, n - 1], [n // 3 * 2, n // 3]):
        x[:] = 0
        x[pos] = 7.0
        for t in (1, 2):
            with mlkern.threads(t):
                assert mlkern.argmax(x) == min(pos)
                assert mlkern.argmax(x, axis=None) == min(pos)
    x[:] = 0
    x[[n - 5, 10]] = np.nan
    x[5] = np.inf
    for t in (1, 2):
        with mlkern.threads(t):
            assert mlkern.argmax(x) == 10


# ================================================================ the non-last-axis path
@pytest.mark.parametrize("dt", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("axis", [1, 0])
@pytest.mark.parametrize("inner", [1, 3, 17, 64, 1000])
@pytest.mark.parametrize("n", [1, 2, 7, 100])
def test_non_last_axis(n, inner, axis, dt):
    """C-contiguous (outer, n, inner) along axis 1, and (n, outer, inner) along
    axis 0, against the references on np.moveaxis'd rows."""
    outer = 3
    shape = (outer, n, inner) if axis == 1 else (n, outer, inner)
    x = _data(70 + n + inner, shape, scale=3.0, dtype=dt)
    assert x.flags.c_contiguous
    for name in ALL:
        if name == "softmax_jacobian" and n * n * inner * outer > 300_000:
            continue
        r = call(name, x, axis=axis)
        check_any(name, r, x, axis, what=f"{name} shape={shape} axis={axis}")
        if name in REDUCTIONS:
            rk = call(name, x, axis=axis, keepdims=True)
            assert same_array(np.squeeze(rk, axis=axis), np.asarray(r))
    # equal (to rounding) to the last-axis path on the moved copy
    xm = np.ascontiguousarray(np.moveaxis(x, axis, -1))
    for name in SAME_SHAPE:
        a = np.moveaxis(fn(name)(x, axis=axis), axis, -1)
        b = fn(name)(xm)
        check_forward(name, a, xm, ref_y=b, what=f"{name} axis={axis} vs moved copy")
    assert np.array_equal(mlkern.argmax(x, axis=axis), mlkern.argmax(xm))


# ================================================================ short and long rows
ROW_NS = [1, 2, 3, 7, 10, 15, 16, 17, 31, 33, 64, 100, 1000, 4099]


@pytest.mark.parametrize("dt", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("n", ROW_NS)
def test_row_lengths(n, dt):
    """Every function on rows of n elements (odd sizes hit the vector
    remainders), with the max / NaN / -inf in the last and first positions."""
    x = _data(80 + n, (9, n), scale=3.0, dtype=dt)
    x[1, -1] = x[1].max() + 5                 # max in the remainder
    x[2, 0] = x[2].max() + 5                  # max first
    x[3, -1] = np.nan                         # NaN in the remainder
    x[4, -1] = -np.inf
    x[5, :] = x[5, 0]                         # all equal (ties)
    if n > 1:
        x[6, -2:] = x[6].max() + 1            # tie of the max at the end
    x[7, -1] = np.inf
    x[8, :] = 0
    x[8, -1] = -40                            # log_softmax's tiny max element, in the remainder
    with np.errstate(all="ignore"):
        for name in ALL:
            if name == "softmax_jacobian" and n > 100:
                continue
            xx = np.nan_to_num(np.abs(x), nan=0.25, posinf=0.5) if name == "softmax_jacobian" else x
            if name in BACKWARD:
                xx = x[[0, 1, 2, 5, 6, 8]]         # finite rows: y from the reference forward
            r = call(name, xx)
            check_any(name, r, xx, what=f"{name} n={n} {np.dtype(dt).name}")
            if name in REDUCTIONS:
                assert np.asarray(r).shape == (xx.shape[0],)
    for name in SAME_SHAPE + ["logsumexp"]:
        # each row alone gives the same as in the batch
        y = fn(name)(x)
        assert same_array(np.asarray(fn(name)(x[1])), np.asarray(y[1]))
        assert same_array(np.asarray(fn(name)(x[3])), np.asarray(y[3]))


# ================================================================ argmax
def test_argmax_semantics():
    inf, nan = np.inf, np.nan
    cases = [
        [1.0, 3.0, 3.0, 2.0],          # ties -> first
        [3.0, 1.0, 3.0],
        [-inf, -inf, -inf],            # all -inf -> 0
        [1.0, nan, 2.0, nan],          # first NaN wins
        [inf, nan],
        [nan, inf],
        [-0.0, 0.0],                   # -0.0 == 0.0: a tie
        [0.0, -0.0, 0.0],
        [inf, 5.0, inf],
        [-inf, -1e308, -inf],
        [5e-324, 0.0, 1e-310],
        [2.0],
    ]
    for dt in (np.float16, np.float32, np.float64):
        for c in cases:
            with np.errstate(over="ignore"):          # -1e308 -> -inf in float16
                x = np.array(c, np.float64).astype(dt)
            assert mlkern.argmax(x) == np.argmax(x), (dt, c)
    X = np.array([[1.0, nan, 2.0], [3.0, 3.0, 1.0], [-inf, -inf, -inf], [0.0, inf, inf]])
    assert np.array_equal(mlkern.argmax(X), [1, 0, 0, 1])
    assert np.array_equal(mlkern.argmax(X, axis=0), np.argmax(X, axis=0))
    assert mlkern.argmax(X, axis=None) == np.argmax(X) == 1


def test_argmax_ints():
    x = np.array([[3, 9, 9, -2], [-7, -7, -8, -9], [0, 0, 0, 1]], np.int32)
    assert np.array_equal(mlkern.argmax(x), [1, 0, 3])
    assert np.array_equal(mlkern.argmax(x, axis=0), np.argmax(x, axis=0))
    for dt in (np.int8, np.uint8, np.int16, np.int64, np.uint16, np.bool_):
        xi = x.astype(dt)
        assert np.array_equal(mlkern.argmax(xi), np.argmax(xi, axis=-1)), dt
        assert mlkern.argmax(xi, axis=None) == np.argmax(xi), dt
    big = np.array([2 ** 52, 2 ** 52 + 1, -(2 ** 53), 2 ** 53], np.int64)    # exactly representable
    assert mlkern.argmax(big) == 3
    assert mlkern.argmax(big[:3]) == 1


def test_argmax_axis_none_and_keepdims():
    x = _data(90, (4, 5, 6))
    xF = np.asfortranarray(x)
    for a in (x, xF, x[::-1, :, ::2], np.transpose(x, (2, 0, 1))):
        assert mlkern.argmax(a, axis=None) == np.argmax(a)        # C-order flat index
        k = mlkern.argmax(a, axis=None, keepdims=True)
        assert k.shape == (1, 1, 1) and k.dtype == np.int64 and k.ravel()[0] == np.argmax(a)
        for axis in (0, 1, 2, -1):
            for kd in (False, True):
                r = mlkern.argmax(a, axis=axis, keepdims=kd)
                e = np.argmax(a, axis=axis, keepdims=kd)
                assert r.shape == e.shape and r.dtype == np.int64 and np.array_equal(r, e), (axis, kd)


@pytest.mark.parametrize("dt", [np.float32, np.float64, np.float16], ids=["f32", "f64", "f16"])
def test_argmax_large(dt):
    n = 3_000_001 if dt is not np.float16 else 300_001
    rng = np.random.default_rng(91)
    x = rng.uniform(-1, 1, n).astype(dt)
    for pos, val in ((n - 1, 5.0), (0, 5.0), (n // 2 + 1, 5.0)):
        y = x.copy()
        y[pos] = val
        assert mlkern.argmax(y) == pos
        assert mlkern.argmax(y, axis=None) == pos
        y[n - 1] = val                            # a tie at the very end: the first wins
        assert mlkern.argmax(y) == pos
    y = x.copy()
    y[n - 1] = np.nan
    assert mlkern.argmax(y) == n - 1
    X = rng.uniform(-1, 1, (4, n // 4)).astype(dt)
    X[0, -1] = 2
    X[1, 0] = 2
    X[2, 7] = np.nan
    X[3, :] = 0
    assert np.array_equal(mlkern.argmax(X), np.argmax(X, axis=1))
    XF = np.asfortranarray(X)
    assert np.array_equal(mlkern.argmax(XF), np.argmax(X, axis=1))
    assert np.array_equal(mlkern.argmax(XF.T, axis=0), np.argmax(X, axis=1))
    assert np.array_equal(mlkern.argmax(X, axis=0), np.argmax(X, axis=0))
    assert mlkern.argmax(X, axis=None) == np.argmax(X)


# ================================================================ hypothesis properties
_SHAPES = hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=6)


def _finite(dt, lim=None):
    dt = np.dtype(dt)
    width = dt.itemsize * 8
    if lim is None:
        return st.floats(allow_nan=False, allow_infinity=False, width=width)
    return st.floats(-lim, lim, allow_nan=False, allow_infinity=False, width=width)


def _maybe_relayout(draw, a):
    if a.ndim >= 2 and draw(st.booleans()):
        a = a.T
    if draw(st.booleans()):
        a = a[tuple(slice(None, None, draw(st.sampled_from([1, -1, 2]))) for _ in range(a.ndim))]
    return a


@st.composite
def _finite_case(draw):
    dt = draw(st.sampled_from([np.float16, np.float32, np.float64]))
    shape = draw(_SHAPES)
    lim = draw(st.sampled_from([None, 1e4, 50.0, 3.0]))
    if dt is np.float16 and (lim is None or lim > 3e4):
        lim = 3e4                 # x - max stays inside float16's range (no overflow to -inf)
    x = draw(hnp.arrays(dt, shape, elements=_finite(dt, lim)))
    x = _maybe_relayout(draw, x)
    axis = draw(st.integers(-x.ndim, x.ndim - 1))
    return x, axis


@settings(max_examples=200, deadline=None)
@given(case=_finite_case())
def test_property_softmax_family(case):
    x, axis = case
    dt = x.dtype
    eps = EPS[dt]
    n = x.shape[axis]
    B = _b(n)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p = mlkern.softmax(x, axis=axis)
        ls = mlkern.log_softmax(x, axis=axis)
        lse = np.asarray(mlkern.logsumexp(x, axis=axis))
    assert p.dtype == dt and ls.dtype == dt and lse.dtype == dt
    assert p.shape == x.shape and ls.shape == x.shape and lse.shape == x.shape[:axis % x.ndim] + \
        x.shape[axis % x.ndim + 1:]
    # softmax in [0, 1], rows sum to 1
    assert ((p >= 0) & (p <= 1)).all()
    pm = _moved(p, axis)
    s = pm.astype(np.float64).sum(-1)
    assert (np.abs(s - 1) <= eps * B).all(), s
    # log_softmax <= 0 and == log(softmax) where softmax is not tiny
    assert (ls <= 0).all()
    lsm = _moved(ls, axis).astype(np.float64)
    x64m = _moved(x.astype(np.float64), axis)
    _, ad, spd, L, _ = _parts_for_tol(x64m)
    big = pm >= np.finfo(dt).tiny
    with np.errstate(divide="ignore"):
        lp = np.log(pm.astype(np.float64))
    tol = 2 * B * eps * (1 + np.abs(lsm)) + 2 * eps * (ad + spd)
    ok = ~big | (np.abs(lp - lsm) <= tol)
    assert ok.all(), _report(ok, log_p=lp, log_softmax=lsm)
    # argmax(softmax(x)) == argmax(x) where the top two are clearly apart
    srt = np.sort(x64m, axis=-1)
    gap = srt[..., -1] - (srt[..., -2] if n > 1 else -np.inf)
    clear = gap > (0.05 if dt == F16 else 1e-3)
    a1 = np.atleast_1d(mlkern.argmax(p, axis=axis))
    a2 = np.atleast_1d(np.argmax(x64m, axis=-1))
    assert np.array_equal(a1[np.atleast_1d(clear)], a2[np.atleast_1d(clear)])
    # logsumexp == max + log(sum(exp(x - max))), in float64 (log1p form of that formula)
    m = x64m.max(-1)
    d = x64m - m[..., None]
    e = np.exp(d)
    k = np.argmax(x64m, -1)[..., None]
    np.put_along_axis(e, k, 0.0, axis=-1)
    Lr = np.log1p(e.sum(-1))
    ref = m + Lr
    # rtol 1e-13 (float64; 2 B eps for float32/16) of the result, and of |m| + L where
    # m + L cancels (m ~ -L), the size of the summands
    rtol = 1e-13 if dt == F64 else 2 * B * eps
    err = np.abs(lse.astype(np.float64) - ref)
    ok = err <= rtol * np.maximum(np.abs(ref), np.abs(m) + Lr) + R.ulp_spacing(ref, dt)
    assert ok.all(), _report(ok, logsumexp=lse, ref=ref)


@st.composite
def _nonfinite_case(draw):
    dt = draw(st.sampled_from([np.float32, np.float64]))
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=5))
    el = st.one_of(st.sampled_from([np.nan, np.inf, -np.inf, 0.0, 1.0, -1.0]), _finite(dt, 50.0))
    x = draw(hnp.arrays(dt, shape, elements=el))
    x = _maybe_relayout(draw, x)
    axis = draw(st.integers(-x.ndim, x.ndim - 1))
    return x, axis


@settings(max_examples=150, deadline=None)
@given(case=_nonfinite_case())
def test_property_nonfinite_like_scipy(case):
    x, axis = case
    for name in FORWARD:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            y = np.asarray(fn(name)(x, axis=axis))
        assert y.dtype == x.dtype
        check_forward(name, y, x, axis, what=name)
        x64m = _moved(x.astype(np.float64), axis)
        e = _scipy(name, x64m)
        ym = y if name == "logsumexp" else _moved(y, axis)
        assert np.array_equal(np.isnan(ym), np.isnan(e)), (name, x, y, e)
        assert np.array_equal(np.isposinf(ym), np.isposinf(e)) and np.array_equal(np.isneginf(ym), np.isneginf(e))


_SPECIAL = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0]


@st.composite
def _argmax_case(draw):
    dt = draw(st.sampled_from([np.float16, np.float32, np.float64, np.int32, np.uint8, np.bool_]))
    shape = draw(_SHAPES)
    if np.dtype(dt).kind == "f":
        el = st.one_of(st.sampled_from(_SPECIAL), st.floats(width=np.dtype(dt).itemsize * 8))
    else:
        el = hnp.from_dtype(np.dtype(dt))
    x = draw(hnp.arrays(dt, shape, elements=el))
    x = _maybe_relayout(draw, x)
    axis = draw(st.one_of(st.none(), st.integers(-x.ndim, x.ndim - 1)))
    keepdims = draw(st.booleans())
    return x, axis, keepdims


@settings(max_examples=250, deadline=None)
@given(case=_argmax_case())
def test_property_argmax_like_numpy(case):
    x, axis, keepdims = case
    r = mlkern.argmax(x, axis=axis, keepdims=keepdims)
    e = np.argmax(x, axis=axis, keepdims=keepdims)
    assert np.asarray(r).dtype == np.int64
    assert np.shape(r) == np.shape(e)
    assert np.array_equal(r, e), (x, axis, r, e)
    if not isinstance(e, np.ndarray):
        assert type(r) is np.int64


@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("shape,axis", [((7, 300), -1), ((5, 9), -1), ((4, 30, 5), 1)])
def test_log_softmax_backward_any_saved_values(dt, shape, axis):
    # the kernel takes e^y by the cheaper e^{<=0} path when every saved y is a
    # log-probability; a y > 0 (not a log_softmax output, but allowed) or a NaN
    # must still give g - exp(y) * sum(g)
    rng = np.random.default_rng(5)
    g = rng.standard_normal(shape).astype(dt)
    y = (rng.standard_normal(shape) * 2).astype(dt)        # half of them > 0
    want = g.astype(np.float64) - np.exp(y.astype(np.float64)) * g.astype(np.float64).sum(axis=axis, keepdims=True)
    got = mlkern.log_softmax_backward(g, y, axis=axis)
    tol = 2e-5 if dt == np.float32 else 1e-12
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * np.abs(want).max())
    y2 = -np.abs(y)
    y2.flat[3] = np.nan
    got2 = mlkern.log_softmax_backward(g, y2, axis=axis)
    assert np.isnan(got2.flat[3])


@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("n", [256, 257, 1000, 4099])
def test_softmax_backward_streaming_stores(dt, n):
    # large outputs are written with non-temporal stores; force that path on
    # small arrays (threshold 1 byte), with an out= that starts off the
    # vector alignment and in place, and compare with the plain stores
    from mlkern import _kernels as ew
    rng = np.random.default_rng(n)
    g = rng.standard_normal((5, n)).astype(dt)
    y = mlkern.softmax(rng.standard_normal((5, n)).astype(dt))
    want = mlkern.softmax_backward(g, y)
    old = ew.set_stream_bytes(1)
    try:
        base = np.empty(5 * n + 1, dt)
        out = base[1:].reshape(5, n)              # 4 or 8 bytes past an aligned start
        got = mlkern.softmax_backward(g, y, out=out)
        assert got is out
        np.testing.assert_array_equal(got, want)
        g2 = g.copy()
        np.testing.assert_array_equal(mlkern.softmax_backward(g2, y, out=g2), want)
    finally:
        ew.set_stream_bytes(old)


# ---- backward row sums that overflow float64 (the rowwise-dot-overflow fix) ----
_BIG = np.finfo(np.float64).max


def _bwd_exact(name, g, y):
    """softmax_backward / log_softmax_backward of one float64 row (g, y) with
    the row sum taken exactly (fractions), each element rounded once; a sum
    beyond the float64 range is +-inf.  Finite g and y only."""
    from fractions import Fraction
    if name == "softmax_backward":
        s = sum(Fraction(a) * Fraction(b) for a, b in zip(g.tolist(), y.tolist()))
    else:
        s = sum(Fraction(a) for a in g.tolist())
    try:
        sf = float(s)
    except OverflowError:
        sf = math.inf if s > 0 else -math.inf
    with np.errstate(all="ignore"):
        if name == "softmax_backward":
            return y * (g - sf)
        return g - np.exp(y) * sf


@pytest.mark.parametrize("name", ["softmax_backward", "log_softmax_backward"])
@pytest.mark.parametrize("rows", [[[0.75, 0.75, -0.75, -0.75]], [[0.75, -0.75, 0.75, -0.75, 1e-300]],
                                  [[0.6, 0.6, 0.6, -0.9, -0.9]], [[0.75, 0.75]], [[-0.75, -0.75, 0.5]]])
def test_backward_sum_overflow_every_layout(name, rows):
    # partial sums that overflow where the whole sum does not (or does):
    # the result must be the exact sum's, whatever the layout (row kernel,
    # column kernel, short-row blocks, long rows) and the FMA contraction
    g1 = np.array(rows[0]) * _BIG
    n = g1.size
    y1 = np.full(n, 1.0) if name == "softmax_backward" else np.full(n, -np.log(n))
    f = getattr(mlkern, name)
    for pad in (0, 200):                          # n + 200: the long-row kernels
        g = np.concatenate([g1, np.zeros(pad)])
        y = np.concatenate([y1, np.zeros(pad) if name == "softmax_backward" else np.full(pad, -1e3)])
        w = _bwd_exact(name, g, y)
        G, Y = np.tile(g, (3, 1)), np.tile(y, (3, 1))
        for got in (f(G, Y), f(np.asfortranarray(G), np.asfortranarray(Y)),
                    f(np.ascontiguousarray(G.T), np.ascontiguousarray(Y.T), axis=0).T,
                    f(np.asfortranarray(G.T), np.asfortranarray(Y.T), axis=0).T):
            for r in got:
                np.testing.assert_array_equal(np.isnan(r), np.isnan(w), err_msg=f"{name} {pad}")
                np.testing.assert_array_equal(np.isinf(r), np.isinf(w), err_msg=f"{name} {pad}")
                fin = np.isfinite(w)
                np.testing.assert_allclose(r[fin], w[fin], rtol=1e-15, atol=1e-15 * _BIG)


@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("name", ["softmax_backward", "log_softmax_backward"])
@pytest.mark.parametrize("n", [2, 16, 70])
def test_backward_nonfinite_pattern_same_in_every_layout(dt, name, n):
    # values near the type's max, infinities and NaN mixed in (the fuzzer's
    # find): the C array along axis 0 (column kernel), its F copy (row
    # kernel) and the transposed copies must agree on every NaN and inf.
    # log_softmax_backward gets log-probabilities (y <= 0): with e^y = inf a
    # sum that cancels to rounding noise would decide the sign (not a bug)
    fi = np.finfo(dt)
    specials = np.array([np.nan, np.inf, -np.inf, 0.0, fi.max, -fi.max, fi.max / 3, -fi.max / 3,
                         1e300 if dt == np.float64 else 1e30, 1.0, -1.0, 0.5], np.float64)
    f = getattr(mlkern, name)
    for seed in range(40):
        rng = np.random.default_rng(seed)
        v = 3.0 * rng.standard_normal((2, n, 7))
        m = rng.random(v.shape) < 0.3
        v[m] = rng.choice(specials, int(m.sum()))
        with np.errstate(all="ignore"):
            g, y = v[0].astype(dt), v[1].astype(dt)
        if name == "log_softmax_backward":
            y = -np.abs(y)
        with np.errstate(all="ignore"):
            res = [f(g, y, 0), f(np.asfortranarray(g), np.asfortranarray(y), 0),
                   f(np.ascontiguousarray(g.T), np.ascontiguousarray(y.T), 1).T,
                   f(np.asfortranarray(g.T), np.asfortranarray(y.T), 1).T]
        for r in res[1:]:
            np.testing.assert_array_equal(np.isnan(r), np.isnan(res[0]), err_msg=f"seed {seed}")
            np.testing.assert_array_equal(np.isposinf(r), np.isposinf(res[0]), err_msg=f"seed {seed}")
            np.testing.assert_array_equal(np.isneginf(r), np.isneginf(res[0]), err_msg=f"seed {seed}")


# ================================================================ long rows cut into chunks
# Contiguous rows of at least LONG elements are cut into chunks of LCH (the
# last one shorter) whose partials are combined in chunk order, and the
# chunks are split over the threads (mlk_row.h MLK_RW_LONG / MLK_RW_LCH): the
# result must be the same bits at 1 and 2 threads, and the same for a row
# alone as in a batch (where the rows, not the chunks, go to the threads).
LONG, LCH = 131072, 16384
LONG_NS = [LONG, LONG + 1, 5 * LCH + LONG + 77, 1_000_003]


def _long_x(n, dt, rows=1, seed=3):
    return _data(seed + n % 1000, (rows, n), scale=3.0, dtype=dt)


def _threads_12(f):
    with mlkern.threads(1):
        r1 = f()
    with mlkern.threads(2):
        r2 = f()
    return r1, r2


@pytest.mark.parametrize("dt", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("n", LONG_NS)
@pytest.mark.parametrize("name", FORWARD + BACKWARD)
def test_long_row_threads_bitwise_and_accurate(name, n, dt):
    """One long row: the same bits at 1 and 2 threads, within the module's
    error budget of the float64 reference, and the same bits as that row
    inside a batch of 3 rows (the row-parallel split)."""
    x = _long_x(n, dt)
    if name in BACKWARD:
        g, y = _bwd_inputs(name, x)
        f = lambda a=g, b=y: fn(name)(a, b)  # noqa: E731
        fb = lambda: fn(name)(np.concatenate([g[:, ::-1], g, g]), np.concatenate([y[:, ::-1], y, y]))  # noqa: E731
    else:
        f = lambda: fn(name)(x)  # noqa: E731
        fb = lambda: fn(name)(np.concatenate([x[:, ::-1], x, x]))  # noqa: E731
    r1, r2 = _threads_12(f)
    assert same_array(r1, r2), f"{name} n={n}: 1 and 2 threads differ"
    check_any(name, r1, x, what=f"{name} long row n={n} {np.dtype(dt).name}")
    b1, b2 = _threads_12(fb)
    assert same_array(b1, b2)
    assert same_array(b1[1], r1[0]), f"{name} n={n}: the row alone and in a batch differ"


@pytest.mark.parametrize("dt", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("name", FORWARD)
def test_long_row_edge_cases(name, dt):
    """Non-finite values and maxima placed in one chunk, across chunks, in the
    short last chunk; every result the same bits at 1 and 2 threads, the
    non-finite rows like scipy, the finite ones within budget."""
    n = 3 * LCH + LONG + 5                     # a short last chunk of 5
    base = _long_x(n, dt, seed=11)[0]
    cases = {}
    r = base.copy(); r[LCH + 7] = np.nan; cases["nan in one chunk"] = r
    r = base.copy(); r[-1] = np.nan; cases["nan in the last chunk"] = r
    r = base.copy(); r[2 * LCH:3 * LCH] = np.nan; cases["a chunk all nan"] = r
    r = base.copy(); r[2 * LCH:3 * LCH] = -np.inf; cases["a chunk all -inf"] = r
    r = base.copy(); r[:LONG] = -np.inf; cases["-inf chunks first"] = r
    r = base.copy(); r[5 * LCH + 3] = np.inf; cases["+inf"] = r
    r = base.copy(); r[3] = np.inf; r[-2] = -np.inf; cases["+inf and -inf"] = r
    cases["all -inf"] = np.full(n, -np.inf, dt)
    r = np.full(n, -np.inf, dt); r[-1] = 1.5; cases["one finite, in the last chunk"] = r
    r = base.copy(); r[-3] = base.max() + 4; cases["max in the last chunk"] = r
    r = np.full(n, -40.0, dt); r[LCH - 1] = 0; r[4 * LCH] = 0; cases["maxima in two chunks"] = r
    r = np.zeros(n, dt); cases["all equal"] = r
    r = np.full(n, -60.0, dt); r[7] = 0; r[LCH * 3 + 1] = -1; cases["dominant max"] = r
    if dt is np.float64:
        r = base.copy(); r[::LCH] = 700.0; r[5] = 705.0; cases["large, chunk maxima far apart"] = r
    for what, row in cases.items():
        x = row[None, :]
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            r1, r2 = _threads_12(lambda: fn(name)(x))
        assert same_array(r1, r2), f"{name} {what}: 1 and 2 threads differ"
        if name in SAME_SHAPE:                 # in place: the partials pass may write y = x first
            for t in (1, 2):
                xc = x.copy()
                with mlkern.threads(t):
                    fn(name)(xc, out=xc)
                assert same_array(xc, r1), f"{name} {what}: in place differs ({t} threads)"
        if np.isfinite(row).all() or (not np.isnan(row).any() and np.isfinite(row.max())):
            check_forward(name, r1, x, what=f"{name} long {what}")
        else:
            e = _scipy(name, x)
            hi = e[..., None] if name == "logsumexp" else e
            ym = r1[..., None] if name == "logsumexp" else r1
            assert np.array_equal(np.isnan(ym), np.isnan(np.broadcast_to(hi, ym.shape))), what
            fin = np.isfinite(hi)
            assert np.array_equal(np.broadcast_to(np.isfinite(ym), fin.shape), fin), what
            with np.errstate(all="ignore"):
                assert np.array_equal(ym[~fin], np.broadcast_to(hi, ym.shape)[~fin].astype(dt),
                                      equal_nan=True), what


def test_long_row_max_element_keeps_relative_accuracy():
    """log_softmax of the one maximum of a long row (R small): -R to a few
    ULP, with the maxima counted exactly across chunks."""
    n = LONG + 3 * LCH + 11
    for dt, k in ((np.float64, 1), (np.float64, 3), (np.float32, 1), (np.float32, 2)):
        x = np.full((1, n), -40.0, dt)
        pos = [LCH + 1, 5 * LCH + 2, n - 1][:k]
        x[0, pos] = 0.0
        y1, y2 = _threads_12(lambda: mlkern.log_softmax(x))
        assert same_array(y1, y2)
        rest = (n - k) * math.exp(-40.0)
        want = -math.log1p(rest + (k - 1))
        got = y1[0, pos].astype(np.float64)
        tol = 8 * abs(float(np.spacing(np.asarray(want, dt))))
        assert np.all(np.abs(got - want) <= tol), (dt, k, got, want)
        lse = mlkern.logsumexp(x)
        assert abs(float(lse[0]) + want) <= tol


@pytest.mark.parametrize("dt", DTYPES, ids=DT_IDS)
def test_long_row_out_axis_variants(dt):
    """axis=0 of an (n, 1) array and axis=-1 of a (2, n) array are long rows
    too; out= (in place included) and keepdims give the same bits."""
    n = LONG + 999
    x = _long_x(n, dt, rows=2, seed=5)
    xt = np.ascontiguousarray(x.T)                         # (n, 2): axis 0 is strided (column mode)
    col = np.ascontiguousarray(x[:1].T)                    # (n, 1): axis 0, inner 1: a long row
    for name in SAME_SHAPE:
        ref = fn(name)(x)
        out = np.empty_like(x)
        assert fn(name)(x, out=out) is out and same_array(out, ref)
        xc = x.copy()
        fn(name)(xc, out=xc)
        assert same_array(xc, ref)
        a1, a2 = _threads_12(lambda: fn(name)(col, axis=0))
        assert same_array(a1, a2) and same_array(a1[:, 0], ref[0])
        check_forward(name, fn(name)(xt, axis=0), xt, axis=0, what=f"{name} long column")
    ref = mlkern.logsumexp(x)
    out = np.empty((2, 1), dt)
    assert mlkern.logsumexp(x, keepdims=True, out=out) is out and same_array(out[:, 0], ref)
    assert same_array(mlkern.logsumexp(col, axis=0), ref[:1])
    for name in BACKWARD:
        g, y = _bwd_inputs(name, x)
        ref = fn(name)(g, y)
        out = np.empty_like(g)
        assert fn(name)(g, y, out=out) is out and same_array(out, ref)
        gc = g.copy()
        fn(name)(gc, y, out=gc)
        assert same_array(gc, ref)
        b1, b2 = _threads_12(lambda: fn(name)(g, y))
        assert same_array(b1, b2) and same_array(b1, ref)


@pytest.mark.parametrize("dt", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("n", [128, 129, 191, 1000, 2047, 2048, 2049, 4096 + 17, 10_000])
def test_argmax_long_rows_like_numpy(n, dt):
    """Rows of >= 128 (the blocked scan, SIMD at v3/v4: blocks of 2048, vector
    tails) against np.argmax: maxima and NaNs in the first block, the vector
    tail, the last block; ties across blocks; -inf rows; +inf."""
    rng = np.random.default_rng(n)
    rows = []
    base = rng.standard_normal(n)
    for p in sorted({0, 1, n // 2, n - 17, n - 2, n - 1, min(2047, n - 1), min(2048, n - 1)}):
        r = base.copy(); r[p] = 9.0; rows.append(r)                  # the max at p
        r = base.copy(); r[p] = np.nan; rows.append(r)               # one NaN at p
        r = base.copy(); r[p] = np.nan; r[0] = 9.0; rows.append(r)   # a NaN after the max
        r = base.copy(); r[p] = np.inf; rows.append(r)
        r = np.full(n, -np.inf); r[p] = -1e30; rows.append(r)
    r = base.copy(); r[[5, n - 1]] = 9.0; rows.append(r)             # ties: the first wins
    r = base.copy(); r[[n - 3, n - 1]] = 9.0; rows.append(r)
    r = base.copy(); r[[n - 1, n // 2]] = np.nan; rows.append(r)     # two NaNs: the first wins
    rows.append(np.full(n, -np.inf))
    rows.append(np.zeros(n))
    r = np.full(n, -np.inf); r[n - 1] = np.nan; rows.append(r)
    x = np.array(rows).astype(dt)
    assert np.array_equal(mlkern.argmax(x, axis=-1), np.argmax(x, axis=-1))
    for i in range(0, len(x), 7):
        assert mlkern.argmax(x[i]) == np.argmax(x[i])
