"""The conventions every function follows (docs/contract.rst, "Conventions for every
function"): dtypes, scalars and lists, empty and large arrays, layouts,
``out=``, no input modified, errors naming the argument; and property tests
(hypothesis) over random shapes, dtypes, layouts and values.
"""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import mlkern
from conftest import CASES, CALLABLES, CALLABLE_IDS, digest, result_dtype, same_array

# unary functions taking (x, out=...): every f and f_grad, and noisy_relu with a seed
UNARY = []
for _c in CASES:
    UNARY.append((_c.id, _c.f))
    UNARY.append((_c.id + ".grad", _c.grad))
UNARY.append(("noisy_relu", lambda x, **kw: mlkern.noisy_relu(x, seed=77, **kw)))
UNARY.append(("noisy_relu[sigma=0.5]", lambda x, **kw: mlkern.noisy_relu(x, sigma=0.5, seed=78, **kw)))
UNARY_IDS = [u[0] for u in UNARY]

# backward functions taking (grad_output, saved, out=...)
BINARY = [(c.id + ".backward", c.backward) for c in CASES]
BINARY.append(("noisy_relu_backward", lambda g, s, **kw: mlkern.noisy_relu_backward(g, s, **kw)))
BINARY_IDS = [b[0] for b in BINARY]

X_VALUES = np.array([-7.5, -3.0, -1.0, -0.25, 0.0, 0.3, 1.0, 2.5, 6.0, 40.0, -40.0, 0.001])


def _x(shape=(12,), dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    return (3 * rng.standard_normal(shape)).astype(dtype)


# ---------------------------------------------------------------- dtypes
@pytest.mark.parametrize("name,fn", UNARY, ids=UNARY_IDS)
def test_float_dtypes_kept(name, fn):
    for dt in (np.float32, np.float64):
        y = fn(_x(dtype=dt))
        assert isinstance(y, np.ndarray) and y.dtype == dt


@pytest.mark.parametrize("dt", [np.int8, np.int32, np.int64, np.uint8, np.bool_])
@pytest.mark.parametrize("name,fn", UNARY, ids=UNARY_IDS)
def test_int_and_bool_compute_in_float64(name, fn, dt):
    x = np.array([0, 1, 2, 3, 5, 7, 100, 1], dtype=dt) if dt is not np.bool_ else \
        np.array([True, False, True, True, False])
    y = fn(x)
    assert y.dtype == np.float64
    assert same_array(y, fn(x.astype(np.float64)))
    if dt is np.int8:
        xi = np.array([-128, -5, -1, 0, 127], np.int8)
        assert same_array(fn(xi), fn(xi.astype(np.float64)))


@pytest.mark.parametrize("name,fn", UNARY, ids=UNARY_IDS)
def test_float16_computes_in_float32(name, fn):
    x = np.concatenate([_x((40,), np.float16), np.array([np.inf, -np.inf, np.nan, 6e-8, -6e-8, 65504],
                                                        np.float16)])
    y = fn(x)
    assert y.dtype == np.float16
    with np.errstate(over="ignore"):
        expected = fn(x.astype(np.float32)).astype(np.float16)
    assert same_array(y, expected)


@pytest.mark.parametrize("name,fn", BINARY, ids=BINARY_IDS)
def test_backward_dtypes(name, fn):
    g = _x(seed=1)
    s = np.abs(_x(seed=2)) * 0.3
    for dt in (np.float32, np.float64):
        assert fn(g.astype(dt), s.astype(dt)).dtype == dt
    gi = np.array([1, 2, 3, 4], np.int32)
    si = np.array([0, 1, 0, 1], np.int64)
    assert fn(gi, si).dtype == np.float64
    assert same_array(fn(gi, si), fn(gi.astype(np.float64), si.astype(np.float64)))
    g16, s16 = g.astype(np.float16), s.astype(np.float16)
    y = fn(g16, s16)
    assert y.dtype == np.float16
    assert same_array(y, fn(g16.astype(np.float32), s16.astype(np.float32)).astype(np.float16))


BAD_DTYPES = [np.array([1 + 2j, 3j]), np.array([1 + 2j], np.complex64), np.array(["a", "b"]),
              np.array([1.0, None], dtype=object), np.array(["2020-01-01"], dtype="datetime64[D]")]
BAD_IDS = ["complex128", "complex64", "str", "object", "datetime"]


@pytest.mark.parametrize("bad", BAD_DTYPES, ids=BAD_IDS)
@pytest.mark.parametrize("name,fn", UNARY, ids=UNARY_IDS)
def test_bad_dtype_raises_typeerror(name, fn, bad):
    with pytest.raises(TypeError):
        fn(bad)


@pytest.mark.parametrize("bad", BAD_DTYPES[:2], ids=BAD_IDS[:2])
@pytest.mark.parametrize("name,fn", BINARY, ids=BINARY_IDS)
def test_backward_bad_dtype_raises_typeerror(name, fn, bad):
    ok = np.ones(bad.shape)
    with pytest.raises(TypeError):
        fn(bad, ok)
    with pytest.raises(TypeError):
        fn(ok, bad)


def test_complex_scalar_raises():
    with pytest.raises(TypeError):
        mlkern.sigmoid(1j)
    with pytest.raises(TypeError):
        mlkern.prelu(np.array([1j]), 0.1)


# ---------------------------------------------------------------- scalars, lists, shapes
@pytest.mark.parametrize("name,fn", UNARY, ids=UNARY_IDS)
def test_python_scalars_and_lists(name, fn):
    y = fn(1.5)
    assert isinstance(y, np.float64) and not isinstance(y, np.ndarray)
    assert y == fn(np.array([1.5]))[0]
    yl = fn([1.5, -2.0, 0.25])
    assert isinstance(yl, np.ndarray) and yl.dtype == np.float64
    assert same_array(yl, fn(np.array([1.5, -2.0, 0.25])))
    yi = fn(3)
    assert isinstance(yi, np.float64)
    assert same_array(fn([[1, 2], [3, 4]]), fn(np.array([[1.0, 2.0], [3.0, 4.0]])))


@pytest.mark.parametrize("name,fn", UNARY, ids=UNARY_IDS)
def test_zero_d_returns_numpy_scalar(name, fn):
    for v, dt in ((np.float32(-1.25), np.float32), (np.float64(-1.25), np.float64),
                  (np.array(0.75), np.float64), (np.array(0.75, np.float32), np.float32),
                  (np.float16(0.5), np.float16), (np.int64(2), np.float64), (True, np.float64)):
        y = fn(v)
        assert type(y) is dt, (v, type(y))
        assert y == fn(np.array([v], dtype=np.asarray(v).dtype))[0]


@pytest.mark.parametrize("name,fn", BINARY, ids=BINARY_IDS)
def test_backward_scalars(name, fn):
    y = fn(2.0, 0.5)
    assert type(y) is np.float64
    assert y == fn(np.array([2.0]), np.array([0.5]))[0]
    assert type(fn(np.float32(2.0), np.float32(0.5))) is np.float32
    assert same_array(fn([2.0, 1.0], [0.5, -1.0]), fn(np.array([2.0, 1.0]), np.array([0.5, -1.0])))


@pytest.mark.parametrize("shape", [(0,), (3, 0), (0, 4, 2)])
@pytest.mark.parametrize("name,fn", UNARY, ids=UNARY_IDS)
def test_empty(name, fn, shape):
    for dt in (np.float32, np.float64, np.int32, np.float16):
        y = fn(np.empty(shape, dt))
        assert y.shape == shape
        assert y.dtype == (np.float64 if dt is np.int32 else dt)


@pytest.mark.parametrize("name,fn", BINARY, ids=BINARY_IDS)
def test_backward_empty(name, fn):
    for shape in [(0,), (3, 0)]:
        y = fn(np.empty(shape), np.empty(shape))
        assert y.shape == shape and y.dtype == np.float64


def test_prelu_empty():
    x = np.empty((0, 3, 2))
    assert mlkern.prelu(x, [0.1, 0.2, 0.3]).shape == (0, 3, 2)
    gx, ga = mlkern.prelu_backward(x, x, [0.1, 0.2, 0.3])
    assert gx.shape == (0, 3, 2)
    np.testing.assert_array_equal(ga, np.zeros(3))


@pytest.mark.parametrize("shape", [(1,), (7,), (1000003,), (2, 3, 4)])
@pytest.mark.parametrize("name,fn", UNARY, ids=UNARY_IDS)
def test_shapes(name, fn, shape):
    for dt in (np.float32, np.float64):
        x = _x(shape, dt, seed=3)
        y = fn(x)
        assert y.shape == shape and y.dtype == dt
        assert same_array(y.reshape(-1), fn(x.reshape(-1)))
        if shape == (1000003,):
            # the chunked (threaded) path agrees with small pieces
            k = 4099
            assert same_array(y[:k], fn(x[:k])) or name.startswith("noisy")


# ---------------------------------------------------------------- layouts
def _layouts(dt=np.float64):
    base = _x((6, 10), dt, seed=4)
    base[0, 0] = np.nan
    base[1, 3] = np.inf
    base[2, 4] = -np.inf
    out = {"C": base}
    out["F"] = np.asfortranarray(base)
    out["strided"] = np.repeat(base.reshape(-1), 3).reshape(6, 30)[:, ::3]
    out["negative"] = np.ascontiguousarray(base[::-1])[::-1]
    nb = np.ascontiguousarray(base[::-1, ::-1])
    out["reversed"] = nb[::-1, ::-1]
    out["transposed"] = np.ascontiguousarray(base.T).T
    ro = base.copy()
    ro.setflags(write=False)
    out["readonly"] = ro
    out["byteswapped"] = base.astype(base.dtype.newbyteorder(">" if np.little_endian else "<"))
    buf = np.zeros(base.nbytes + 1, np.uint8)
    mis = buf[1:].view(dt).reshape(base.shape)
    mis[...] = base
    out["misaligned"] = mis
    sv = np.zeros((6, 20), dt)
    sv[:, ::2] = base
    out["step2"] = sv[:, ::2]
    return out


LAYOUT_NAMES = list(_layouts())


NOISY_LAYOUT = ("noisy_relu draws the noise of element i from (seed, i) with i the index in "
                "*memory* order: for an F-ordered (or transposed) input the same seed and values "
                "give a different output than for the C-contiguous copy")


def _layout_params():
    out = []
    for name, fn in CALLABLES:
        for layout in LAYOUT_NAMES:
            # (noisy_relu on F/transposed input was NOISY_LAYOUT; fixed, a regression test)
            out.append(pytest.param(name, fn, layout, id=f"{name}-{layout}"))
    return out


@pytest.mark.parametrize("dt", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("name,fn,layout", _layout_params())
def test_layouts_equal_c_contiguous(name, fn, layout, dt):
    lay = _layouts(dt)
    x = lay[layout]
    assert np.array_equal(x, lay["C"], equal_nan=True)
    y = fn(x)
    ref = fn(np.ascontiguousarray(lay["C"]))
    assert y.shape == ref.shape
    assert y.dtype == np.dtype(dt)
    assert np.array_equal(y, ref, equal_nan=True), f"{layout}: differs from the C-contiguous result"


def test_1d_strided_and_negative():
    x = _x((3000,), seed=5)
    for f in (mlkern.sigmoid, mlkern.gelu, mlkern.softplus_grad):
        assert same_array(f(x[::3]), f(x[::3].copy()))
        assert same_array(f(x[::-1]), f(x[::-1].copy()))
        assert same_array(f(x[::-2]), f(x[::-2].copy()))


@pytest.mark.parametrize("layout", ["F", "strided", "transposed", "byteswapped", "misaligned"])
@pytest.mark.parametrize("name,fn", BINARY, ids=BINARY_IDS)
def test_backward_layouts(name, fn, layout):
    lay = _layouts()
    g = lay[layout]
    s = np.abs(_layouts()[layout]) * 0.1
    ref = fn(np.ascontiguousarray(g), np.ascontiguousarray(s))
    assert same_array(fn(g, s), ref)
    # mixed layouts: C grad_output with the other layout for saved, and vice versa
    assert same_array(fn(np.ascontiguousarray(g), s), ref)
    assert same_array(fn(g, np.ascontiguousarray(s)), ref)


# ---------------------------------------------------------------- inputs not modified, no sharing
@pytest.mark.parametrize("layout", ["C", "F", "strided", "misaligned", "byteswapped"])
@pytest.mark.parametrize("name,fn", CALLABLES, ids=CALLABLE_IDS)
def test_input_not_modified(name, fn, layout):
    for dt in (np.float32, np.float64):
        x = _layouts(dt)[layout]
        before = digest(x)
        fn(x)
        assert digest(x) == before


@pytest.mark.parametrize("name,fn", BINARY, ids=BINARY_IDS)
def test_backward_inputs_not_modified(name, fn):
    for dt in (np.float32, np.float64):
        g = _x((50,), dt, seed=6)
        s = np.abs(_x((50,), dt, seed=7)) * 0.2
        bg, bs = digest(g), digest(s)
        fn(g, s)
        assert digest(g) == bg and digest(s) == bs


def test_prelu_inputs_not_modified():
    x = _x((4, 3, 5), seed=8)
    g = _x((4, 3, 5), seed=9)
    a = np.array([0.1, 0.2, 0.3])
    snap = [digest(v) for v in (x, g, a)]
    mlkern.prelu(x, a)
    mlkern.prelu_grad(x, a)
    mlkern.prelu_backward(g, x, a)
    assert [digest(v) for v in (x, g, a)] == snap


@pytest.mark.parametrize("name,fn", UNARY, ids=UNARY_IDS)
def test_result_does_not_share_memory(name, fn):
    for x in (_x((100,)), np.asfortranarray(_x((10, 10)))):
        y = fn(x)
        assert not np.shares_memory(x, y)


# ---------------------------------------------------------------- out=
@pytest.mark.parametrize("dt", [np.float32, np.float64, np.float16], ids=["f32", "f64", "f16"])
@pytest.mark.parametrize("name,fn", UNARY, ids=UNARY_IDS)
def test_out_written_and_returned(name, fn, dt):
    x = _x((5, 7), dt, seed=10)
    ref = fn(x)
    out = np.full((5, 7), -123.0, dt)
    r = fn(x, out=out)
    assert r is out
    assert same_array(out, ref)


@pytest.mark.parametrize("name,fn", UNARY, ids=UNARY_IDS)
def test_out_errors(name, fn):
    x = _x((5, 7), seed=11)
    with pytest.raises(ValueError, match=r"\(5, 7\)"):
        fn(x, out=np.empty((7, 5)))
    with pytest.raises(ValueError, match=r"\(5, 7\)"):
        fn(x, out=np.empty(35))
    with pytest.raises(TypeError, match="float64"):
        fn(x, out=np.empty((5, 7), np.float32))
    with pytest.raises(TypeError, match="float32"):
        fn(x.astype(np.float32), out=np.empty((5, 7)))
    with pytest.raises(TypeError, match="float64"):
        fn(x.astype(np.int32), out=np.empty((5, 7), np.int32))
    with pytest.raises(TypeError):
        fn(x, out=[[0.0] * 7] * 5)
    ro = np.empty((5, 7))
    ro.setflags(write=False)
    with pytest.raises(ValueError):
        fn(x, out=ro)


@pytest.mark.parametrize("name,fn", BINARY, ids=BINARY_IDS)
def test_backward_out_errors(name, fn):
    g = _x((4, 6), seed=12)
    s = np.abs(g) * 0.1
    with pytest.raises(ValueError, match=r"\(4, 6\)"):
        fn(g, s, out=np.empty((6, 4)))
    with pytest.raises(TypeError, match="float64"):
        fn(g, s, out=np.empty((4, 6), np.float32))
    with pytest.raises(TypeError):
        fn(g, s, out="out")
    ro = np.empty((4, 6))
    ro.setflags(write=False)
    with pytest.raises(ValueError):
        fn(g, s, out=ro)


@pytest.mark.parametrize("dt", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("name,fn", UNARY, ids=UNARY_IDS)
def test_out_is_input_in_place(name, fn, dt):
    for x in (_x((64,), dt, seed=13), _x((70_000,), dt, seed=13), np.asfortranarray(_x((30, 20), dt, seed=14))):
        ref = fn(x.copy(order="K"))    # same memory order (noisy_relu's noise follows it)
        r = fn(x, out=x)
        assert r is x
        assert same_array(x, ref)


@pytest.mark.parametrize("dt", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("name,fn", BINARY, ids=BINARY_IDS)
def test_backward_out_aliases_inputs(name, fn, dt):
    for n in (64, 70_000):
        g = _x((n,), dt, seed=15)
        s = np.abs(_x((n,), dt, seed=16)) * 0.3
        ref = fn(g.copy(), s.copy())
        g1, s1 = g.copy(), s.copy()
        assert fn(g1, s1, out=g1) is g1
        assert same_array(g1, ref) and same_array(s1, s)
        g2, s2 = g.copy(), s.copy()
        assert fn(g2, s2, out=s2) is s2
        assert same_array(s2, ref) and same_array(g2, g)


@pytest.mark.parametrize("name,fn", UNARY, ids=UNARY_IDS)
def test_out_partial_overlap(name, fn):
    for n in (100, 50_001):
        buf = _x((n + 1,), seed=17)
        expect = fn(buf[1:].copy())
        b = buf.copy()
        r = fn(b[1:], out=b[:-1])
        assert same_array(r, expect)
        assert same_array(b[:-1], expect)
        b = buf.copy()
        fn(b[:-1], out=b[1:])
        assert same_array(b[1:], fn(buf[:-1].copy()))


@pytest.mark.parametrize("name,fn", BINARY, ids=BINARY_IDS)
def test_backward_out_partial_overlap(name, fn):
    n = 1000
    buf = _x((n + 1,), seed=18)
    s = np.abs(_x((n,), seed=19)) * 0.3
    expect = fn(buf[1:].copy(), s)
    b = buf.copy()
    fn(b[1:], s, out=b[:-1])
    assert same_array(b[:-1], expect)
    sb = np.concatenate([[0.5], s])
    expect = fn(buf[:n].copy(), sb[1:].copy())
    fn(buf[:n].copy(), sb[1:], out=sb[:-1])
    assert same_array(sb[:-1], expect)


@pytest.mark.parametrize("name,fn", UNARY, ids=UNARY_IDS)
def test_out_other_layouts(name, fn):
    x = _x((40, 30), seed=20)
    ref = fn(x)
    outF = np.asfortranarray(np.zeros((40, 30)))
    assert fn(x, out=outF) is outF and same_array(outF, ref)
    big = np.zeros((40, 60))
    outS = big[:, ::2]
    assert fn(x, out=outS) is outS and same_array(outS, ref)
    assert (big[:, 1::2] == 0).all()
    buf = np.zeros(x.nbytes + 1, np.uint8)
    outM = buf[1:].view(np.float64).reshape(x.shape)
    assert fn(x, out=outM) is outM and same_array(outM, ref)
    # F input into C out
    outC = np.zeros((40, 30))
    xf = np.asfortranarray(x)
    assert fn(xf, out=outC) is outC and same_array(outC, fn(xf))


def test_out_zero_d():
    out = np.empty((), np.float64)
    r = mlkern.sigmoid(np.array(0.0), out=out)
    assert r is out and out[()] == 0.5
    with pytest.raises(ValueError):
        mlkern.sigmoid(0.0, out=np.empty(1))


def test_prelu_out():
    x = _x((4, 3, 5), seed=21)
    a = [0.1, 0.2, 0.3]
    out = np.empty_like(x)
    assert mlkern.prelu(x, a, out=out) is out and same_array(out, mlkern.prelu(x, a))
    assert mlkern.prelu_grad(x, a, out=out) is out and same_array(out, mlkern.prelu_grad(x, a))
    gx, ga = mlkern.prelu_backward(x, x, a, out=out)
    assert gx is out
    xx = x.copy()
    mlkern.prelu(xx, a, out=xx)
    assert same_array(xx, mlkern.prelu(x, a))
    with pytest.raises(ValueError, match=r"\(4, 3, 5\)"):
        mlkern.prelu(x, a, out=np.empty((4, 15)))
    with pytest.raises(TypeError, match="float64"):
        mlkern.prelu(x, a, out=np.empty((4, 3, 5), np.float32))


@pytest.mark.parametrize("name,fn", BINARY, ids=BINARY_IDS)
def test_backward_mismatched_shapes(name, fn):
    with pytest.raises(ValueError, match="grad_output") as ei:
        fn(np.ones((3, 4)), np.ones((4, 3)))
    assert "(3, 4)" in str(ei.value) and "(4, 3)" in str(ei.value)
    with pytest.raises(ValueError, match="grad_output"):
        fn(np.ones(5), np.ones(6))
    with pytest.raises(ValueError, match="grad_output"):
        fn(np.ones((1, 5)), np.ones(5))      # no broadcasting


def test_prelu_backward_mismatched_shapes():
    with pytest.raises(ValueError, match="grad_output"):
        mlkern.prelu_backward(np.ones((2, 3)), np.ones((3, 2)), 0.1)


# ---------------------------------------------------------------- hypothesis properties
_DTYPES = st.sampled_from([np.float16, np.float32, np.float64, np.int32, np.uint8, np.bool_])
_SHAPES = hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5)


def _elements(dt):
    dt = np.dtype(dt)
    if dt.kind == "f":
        return hnp.from_dtype(dt, allow_nan=True, allow_infinity=True, allow_subnormal=True)
    return hnp.from_dtype(dt)


@st.composite
def _arrays(draw):
    dt = draw(_DTYPES)
    shape = draw(_SHAPES)
    a = draw(hnp.arrays(dt, shape, elements=_elements(dt)))
    # layout: transpose, step slicing, reversal
    if a.ndim >= 2 and draw(st.booleans()):
        a = a.T
    if a.ndim >= 1 and draw(st.booleans()):
        idx = []
        for _ in range(a.ndim):
            step = draw(st.sampled_from([1, 2, -1, -2]))
            idx.append(slice(None, None, step))
        a = a[tuple(idx)]
    return a


@settings(max_examples=150, deadline=None)
@given(x=_arrays(), which=st.sampled_from(CALLABLES))
def test_property_shape_dtype_nan_layout(x, which):
    name, fn = which
    with np.errstate(all="ignore"):
        y = fn(x)
        y = np.asarray(y)
        assert y.shape == x.shape
        assert y.dtype == result_dtype(x.dtype)
        if x.dtype.kind == "f":
            assert np.array_equal(np.isnan(y), np.isnan(x)), (name, x, y)
        # equal to the result on a C-contiguous copy
        assert np.array_equal(y, np.asarray(fn(np.array(x, order="C", copy=True))), equal_nan=True)
        # and to computing in the compute dtype then rounding
        cdt = np.float32 if x.dtype == np.float16 else result_dtype(x.dtype)
        expect = np.asarray(fn(np.array(x, dtype=cdt, order="C", copy=True))).astype(y.dtype)
        assert np.array_equal(y, expect, equal_nan=True)


@settings(max_examples=60, deadline=None)
@given(x=_arrays(), which=st.sampled_from(UNARY))
def test_property_out_in_place(x, which):
    name, fn = which
    if x.dtype.kind != "f":
        return
    with np.errstate(all="ignore"):
        ref = np.asarray(fn(x.copy()))
        buf = x.copy()
        r = fn(buf, out=buf)
        assert r is buf
        assert np.array_equal(buf, ref, equal_nan=True)


# ---------------------------------------------------------------------------
# the op table and the fast-entry pattern (fast C check -> None -> Python
# checks in _validation -> raw kernel)
# ---------------------------------------------------------------------------

def test_op_table_lists_every_op_once():
    from mlkern import _ops
    from mlkern.activations import _unary
    table = _ops.TABLE        # the extension's op_table(), read once
    assert set(table) == {"unary", "binary", "rowwise", "ploss", "optim"}
    for family, ops in table.items():
        codes = sorted(code for code, _, _ in ops.values())
        assert codes == list(range(len(ops))), family          # 0..N-1, each once
        for name, (code, cost, params) in ops.items():
            assert isinstance(cost, int) and 1 <= cost <= 64, (family, name, cost)
            assert isinstance(params, tuple) and all(isinstance(p, str) for p in params)
    # the Python modules' codes are the table's, by name
    assert _ops.UNARY == {n: v[0] for n, v in table["unary"].items()}
    assert table["unary"]["leaky_relu"][2] == ("negative_slope",)
    assert table["unary"]["softplus"][2] == ("", "beta", "threshold")
    assert table["unary"]["noisy_relu"][2][-1] == "seed"
    assert table["ploss"]["huber"][2] == ("delta",)
    # mlkern._math's names (used by the benchmarks and accuracy tests) come from it
    from mlkern import _math
    assert all(_math.OPS[n] == table["unary"][n][0] for n in _math.NAMES)
    # the op code selects the function: each named unary op is the public one
    x = np.linspace(-3, 3, 41)
    for name in ("sigmoid", "tanh", "relu", "gelu", "log_sigmoid", "tanh_grad"):
        np.testing.assert_array_equal(_unary(table["unary"][name][0], x),
                                      getattr(mlkern, name)(x))


def test_fast_entries_return_none_outside_their_case():
    from mlkern import _ops
    from mlkern.activations import _binary, _unary   # the extension's unary / binary
    op = _ops.UNARY["sigmoid"]
    x = np.linspace(-1, 1, 8)
    assert _unary(op, x.tolist()) is None                    # not an ndarray
    assert _unary(op, np.asfortranarray(x.reshape(2, 4))) is None
    assert _unary(op, x[::2]) is None                        # strided
    assert _unary(op, x.astype(np.float16)) is None
    assert _unary(op, np.float64(0.5)) is None               # 0-d: a scalar result
    assert _unary(op, x, np.empty(8, np.float32)) is None    # out of another dtype
    np.testing.assert_array_equal(_unary(op, x), mlkern.sigmoid(x))
    b = _ops.BINARY["sigmoid_backward"]
    assert _binary(b, x, x[:4]) is None                      # shapes differ
    assert _binary(b, x, x.astype(np.float32)) is None
    np.testing.assert_array_equal(_binary(b, x, x), mlkern.sigmoid_backward(x, x))


def test_compiled_module_never_imports_mlkern_python():
    """The compiled module is called by the Python modules, never the
    reverse: no source file of the extension imports a Python mlkern module."""
    import pathlib
    import re
    src = pathlib.Path(mlkern.__file__).parent
    files = sorted(src.glob("*.pyx")) + sorted(src.glob("*.pxi"))
    if not files:
        pytest.skip("the extension's sources are not installed")
    pat = re.compile(r"^\s*(from\s+(mlkern|\.)[\w.]*\s+c?import|import\s+mlkern)", re.M)
    bad = [(f.name, m.group(0).strip()) for f in files for m in pat.finditer(f.read_text())]
    assert bad == [], bad
