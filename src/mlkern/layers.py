"""Layers: functional forward and backward kernels (``dense``, ``embedding``).

SPEC.md, section "Layers -- mlkern.layers".  Conventions: ``x``, ``weight``
and ``bias`` share one float dtype (float32 with float64 is a ``TypeError``
naming both arguments; integer arrays take the other arrays' float dtype,
float64 if none; float16 computes in float32 and returns float16); each
``X_backward`` returns the gradients in the order of the forward's array
arguments; ``needs_input_grad=False`` skips ``grad_x`` (``None``); indices
may have any integer dtype and are checked in range before any kernel runs.

Design notes (measured; the figures: ``python benchmarks/layers_bars.py``)

* GEMM.  OpenBLAS, the one bundled with SciPy, through
  ``scipy.linalg.cython_blas`` (``sgemm``/``dgemm`` taken from its capsules
  when this module is imported, so ``import mlkern`` itself does not import
  SciPy).  Row-major ``y(M,N) = x(M,K) W(N,K)^T`` is column-major
  ``y^T = W^T' x^T``: ``gemm('T', 'N', N, M, K, 1, W, K, x, K, beta, y, N)``.
* Fused epilogue.  The output is computed in row tiles of up to 4 MiB
  (at least 256 rows: each tile packs ``W`` again): the tile is pre-filled
  with the bias, the GEMM accumulates into it (``beta = 1``; OpenBLAS
  would otherwise zero it in a pass of its own) and the activation kernel
  (the same C kernels as ``mlkern.<act>``) then runs on the tile while it
  is in cache.  With ``return_saved`` the GEMM writes the pre-activation
  into ``saved`` and the activation reads it from there.
* Threads.  mlkern's thread count governs the whole call.  Every GEMM runs
  at one OpenBLAS thread: the calling thread sets OpenBLAS's thread-local
  count (``openblas_set_num_threads_local(1)``, OpenBLAS >= 0.3.27, resolved
  once here in SciPy's ``libscipy_openblas``) and restores it after; the
  parallelism is mlkern's own OpenMP team, one output panel per thread
  (over ``N`` -- contiguous rows of ``W`` -- when ``M < N``, else over
  ``M``).  So a call never runs more busy threads than mlkern's count
  (tested: CPU time per wall second and busy threads from
  ``/proc/self/task``), and no OpenBLAS pool thread is woken (its workers
  spin for a long while after a threaded call, overlapping mlkern's next
  OpenMP region).  The other design -- the whole-matrix GEMM with OpenBLAS
  at mlkern's count, then the epilogue -- is the "whole" column of
  ``benchmarks/layers_bars.py``: at one thread the two are the same GEMM;
  at two threads it needs OpenBLAS's pool next to mlkern's team.  Without
  ``openblas_set_num_threads_local`` (another BLAS, an older OpenBLAS) the
  GEMMs run on the calling thread with the BLAS's own threading and mlkern
  starts no team around them.
* Panels follow the team: at one thread the forward is one GEMM (cut into
  tiles only above 4 MiB of output).  A grid fixed by the shape alone
  would make the result bitwise independent of the thread count, but
  measured at one thread (f32/f64, (32,512,512) and (256,1024,1024)) two
  panels cost 5-12 % and eight up to 30 %; so ``dense``'s output and the
  weight/input gradients may differ in the last bits between thread counts
  (the rounding of the GEMM's sums, which SPEC allows); the bias gradient
  and ``embedding_backward`` are bitwise identical for any thread count.
* ``dense_backward``: one pass over ``grad_output`` (columns shared out
  among the threads) computes ``gz = grad_output * act'(saved)`` and the
  bias gradient's column sums (in float64, each column summed by one thread
  in row order: independent of the thread count), then two GEMMs
  (``grad_weight = gz^T x`` split over its rows, ``grad_x = gz W`` over rows
  or columns), each thread on its own panel.
* ``embedding_backward``: a counting sort of the token positions by index,
  then one segmented sum per distinct index (in token order), the indices
  shared out among the threads: each output row is written by one thread,
  so the result is bitwise identical for any thread count.  The result
  comes from ``np.zeros`` (lazily zeroed pages): only the rows of the
  indices present are written.
"""
import glob
import os

import numpy as np

from . import _kernels as _ew
from ._ops import BINARY, UNARY
from ._validation import (any_dask, check_count, check_index_range, check_indices, check_padding_idx,
                          check_real, layer_array, layer_dtype, layer_out)
from ._validation import check_groups, check_layout, conv_geometry

__all__ = ["dense", "dense_backward", "embedding", "embedding_backward",
           "rnn_cell", "lstm_cell", "gru_cell", "rnn", "lstm", "gru",
           "rnn_backward", "lstm_backward", "gru_backward"]


# ---------------------------------------------------------------- BLAS set-up
def _blas_local_address():
    """(address of openblas_set_num_threads_local in the OpenBLAS that SciPy's
    cython_blas calls, or 0 when that BLAS does not have it; that OpenBLAS's
    core name in lower case, or "")."""
    import ctypes

    import scipy

    sdir = os.path.dirname(os.path.abspath(scipy.__file__))
    paths = []
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                p = line.split()[-1] if "/" in line else ""
                if "openblas" in os.path.basename(p).lower() and p not in paths:
                    paths.append(p)
    except OSError:
        pass
    # SciPy's own copy first (NumPy's wheel bundles another OpenBLAS)
    mine = os.path.dirname(sdir)
    paths.sort(key=lambda p: not (p.startswith(os.path.join(mine, "scipy.libs"))
                                  or p.startswith(sdir) or "scipy_openblas32" in p))
    paths += glob.glob(os.path.join(mine, "scipy.libs", "*openblas*"))
    paths += glob.glob(os.path.join(sdir, ".dylibs", "*openblas*"))
    for p in paths:
        if "numpy" in p and "scipy.libs" not in p:
            continue
        try:
            lib = ctypes.CDLL(p)
        except OSError:
            continue
        for name in ("openblas_set_num_threads_local", "scipy_openblas_set_num_threads_local"):
            fn = getattr(lib, name, None)
            if fn is not None:
                core = ""
                for cname in ("openblas_get_corename", "scipy_openblas_get_corename"):
                    cfn = getattr(lib, cname, None)
                    if cfn is not None:
                        cfn.restype = ctypes.c_char_p
                        core = (cfn() or b"").decode("ascii", "replace").lower()
                        break
                return ctypes.cast(fn, ctypes.c_void_p).value or 0, core
    return 0, ""


# OpenBLAS cores with small-matrix GEMM kernels (no packing of the operands),
# which the recurrent layers' per-step GEMMs use when cut into panels of
# 32/16 rows (_rnn.pxi, _RNN_SUB_MNK); elsewhere the panels would only add
# calls, so they are turned off
_SMALL_GEMM_CORES = ("skylakex", "cooperlake", "sapphirerapids")


def _setup_blas():
    from scipy.linalg import cython_blas

    capi = cython_blas.__pyx_capi__
    addr, core = _blas_local_address()
    _ew.set_blas(capi["sgemm"], capi["dgemm"], capi["sgemv"], capi["dgemv"], addr)
    if core not in _SMALL_GEMM_CORES:
        _ew.set_rnn_tuning(-1, 0)


_setup_blas()


# ---------------------------------------------------------------- activations
# (forward op, backward op, saved is y, parameter names), the op codes by
# name from the op table (_c/mlk_kernels.h), as in activations.py
def _act(name, saved_is_y, params, op=None):
    op = op or name
    return (UNARY[op], BINARY[op + "_backward"], saved_is_y, params)


_ACTS = {
    "sigmoid": _act("sigmoid", True, ()),
    "tanh": _act("tanh", True, ()),
    "relu": _act("relu", False, ()),
    "leaky_relu": _act("leaky_relu", False, ("negative_slope",)),
    "elu": _act("elu", True, ("alpha",)),
    "softplus": _act("softplus", False, ("beta", "threshold")),
    "silu": _act("silu", False, ("beta",)),
    "swish": _act("silu", False, ("beta",)),
    "log_sigmoid": _act("log_sigmoid", False, ()),
    "gelu": _act("gelu", False, ("approximate",)),
}
_GELU_TANH = _act("gelu_tanh", False, ("approximate",))
_NONE = (-1, -1, False, 0.0, 0.0, 0.0)


def _act_spec(activation, params):
    """(forward op, backward op, saved is y, a, b, c) of an activation name and
    its parameters (ValueError for an unknown name, TypeError for a parameter
    the activation does not take)."""
    if activation is None:
        if params:
            raise TypeError(f"activation=None takes no parameters, got {sorted(params)}")
        return _NONE
    if not isinstance(activation, str):
        raise TypeError(f"activation: expected None or a name (str), got {type(activation).__name__}")
    entry = _ACTS.get(activation)
    if entry is None:
        extra = (" (prelu has a learnable parameter and noisy_relu draws training noise: "
                 "apply them after the layer)") if activation in ("prelu", "noisy_relu") else ""
        raise ValueError(f"activation: unknown or unsupported activation {activation!r}{extra}; "
                         f"expected None or one of {sorted(_ACTS)}")
    fop, bop, from_y, names = entry
    for k in params:
        if k not in names:
            raise TypeError(f"activation {activation!r} takes no parameter {k!r}"
                            + (f" (its parameters: {', '.join(names)})" if names else ""))
    a = b = c = 0.0
    if activation == "leaky_relu":
        a = check_real(params.get("negative_slope", 0.01), "negative_slope")
    elif activation == "elu":
        a = check_real(params.get("alpha", 1.0), "alpha")
    elif activation == "softplus":
        b = check_real(params.get("beta", 1.0), "beta")
        if b == 0.0:
            raise ValueError("beta: must be nonzero")
        t = params.get("threshold")
        c = float("inf") if t is None else check_real(t, "threshold")
    elif activation in ("silu", "swish"):
        b = check_real(params.get("beta", 1.0), "beta")
    elif activation == "gelu":
        approx = params.get("approximate", "none")
        if approx == "tanh":
            fop, bop = _GELU_TANH[0], _GELU_TANH[1]
        elif approx != "none":
            raise ValueError(f"approximate: expected 'none' or 'tanh', got {approx!r}")
    return fop, bop, from_y, a, b, c


_PLAIN = {name: _act_spec(name, {}) for name in _ACTS}
_PLAIN[None] = _NONE


def _spec(activation, params):
    if not params:
        try:
            return _PLAIN[activation]
        except (KeyError, TypeError):
            pass
    return _act_spec(activation, params)


def _no_dask(fname, *args):
    """TypeError for a dask argument of a function that has no Dask path
    yet (never a silent compute: docs/dask.rst)."""
    if any_dask(*args):
        raise TypeError(f"{fname}: dask arrays are not supported here yet (docs/dask.rst); pass "
                        "NumPy arrays (a dask array's .compute()), or use the dense / embedding "
                        "functions or an mlkern.nn model, which are lazy on dask arrays")


# ---------------------------------------------------------------- dense
def dense(x, weight, bias=None, *, activation=None, out=None, return_saved=False,
          **activation_params):
    """Fully connected layer with a fused activation: ``y = act(x W^T + b)``.

    Parameters
    ----------
    x : array_like, shape (..., in_features)
        Input; float32/float64 kept, integers take the weight's float dtype.
    weight : array_like, shape (out_features, in_features)
        PyTorch's layout (``nn.Linear.weight``).
    bias : array_like, shape (out_features,), optional
    activation : str or None, default None
        ``None`` or the name of an elementwise activation of mlkern:
        ``"sigmoid"``, ``"tanh"``, ``"relu"``, ``"leaky_relu"``, ``"elu"``,
        ``"softplus"``, ``"silu"`` (``"swish"``), ``"log_sigmoid"``,
        ``"gelu"`` (not ``prelu``, whose parameter is learned, nor
        ``noisy_relu``, which draws training noise).
    out : ndarray, optional
        Result array, shape ``x.shape[:-1] + (out_features,)`` and the result
        dtype; it may overlap the inputs (the result then goes through a
        temporary).
    return_saved : bool, default False
        Also return ``saved``, what the activation's backward takes.
    **activation_params
        The activation's parameters, as in its own function:
        ``negative_slope`` (leaky_relu), ``alpha`` (elu), ``beta`` and
        ``threshold`` (softplus), ``beta`` (silu), ``approximate`` (gelu).

    Returns
    -------
    y : ndarray, shape (..., out_features)
        The layer's output, the dtype of the float inputs.
    saved : ndarray or None
        Only with ``return_saved=True``: ``y`` itself for sigmoid, tanh and
        elu (their backward works from the output), the pre-activation
        ``x W^T + b`` for the other activations, ``None`` without one.

    Notes
    -----
    Formula: ``y = act(x W^T + b)``.  The GEMM is OpenBLAS (SciPy's); the
    bias and the activation are applied to each tile (up to 4 MiB) of the
    output right after the GEMM wrote it (no extra pass over memory).  The
    activation is computed by the same kernels as ``mlkern.<activation>``.
    A call uses mlkern's thread count (:func:`mlkern.set_num_threads`), the
    BLAS included: never more busy threads than that.

    Examples
    --------
    >>> import numpy as np, mlkern
    >>> x = np.array([[1.0, -2.0]])
    >>> w = np.array([[1.0, 1.0], [2.0, 0.5]])
    >>> mlkern.layers.dense(x, w, np.array([0.5, 0.0]), activation="relu").tolist()
    [[0.0, 1.0]]
    >>> y, saved = mlkern.layers.dense(x, w, activation="leaky_relu", negative_slope=0.1,
    ...                                return_saved=True)
    >>> y.tolist(), saved.tolist()
    ([[-0.1, 1.0]], [[-1.0, 1.0]])
    """
    spec = _spec(activation, activation_params)
    fop, _, from_y, a, b, c = spec
    keep_z = return_saved and fop >= 0 and not from_y
    r = _ew.dense_fast(x, weight, bias, out, fop, a, b, c, keep_z)
    if r is None:
        if any_dask(x, weight, bias):
            from . import _dask
            return _dask.dense(x, weight, bias, activation, out, return_saved, activation_params)
        r = _dense_slow(x, weight, bias, out, spec, keep_z)
    if not return_saved:
        return r
    if keep_z:
        return r
    return r, (r if fop >= 0 else None)


def _dense_args(x, weight, bias, fname):
    xa = np.asarray(x)
    wa = np.asarray(weight)
    ba = None if bias is None else np.asarray(bias)
    cdt, rdt = layer_dtype((("x", xa), ("weight", wa), ("bias", ba)))
    if wa.ndim != 2:
        raise ValueError(f"{fname}: weight must be 2-D (out_features, in_features), got shape {wa.shape}")
    if xa.ndim < 1:
        raise ValueError(f"{fname}: x must have at least 1 dimension (..., in_features), got a scalar")
    N, K = wa.shape
    if xa.shape[-1] != K:
        raise ValueError(f"{fname}: x and weight: x has {xa.shape[-1]} features (shape {xa.shape}), "
                         f"weight expects {K} (shape {wa.shape})")
    if ba is not None and ba.shape != (N,):
        raise ValueError(f"{fname}: bias must have shape ({N},) (out_features), got {ba.shape}")
    return xa, wa, ba, cdt, rdt


def _dense_slow(x, weight, bias, out, spec, keep_z):
    fop, _, from_y, a, b, c = spec
    xa, wa, ba, cdt, rdt = _dense_args(x, weight, bias, "dense")
    shape = xa.shape[:-1] + (wa.shape[0],)
    xa = layer_array(xa, cdt)
    wa = layer_array(wa, cdt)
    ba = None if ba is None else layer_array(ba, cdt)
    y = None
    if out is not None:
        y = layer_out(out, shape, rdt, cdt, xa, wa, ba)
    if y is None:
        y = np.empty(shape, cdt)
    z = np.empty(shape, cdt) if keep_z else None
    if y.size:
        _ew.dense_raw(xa, wa, ba, y, z, fop, a, b, c)
    if out is not None:
        if y is not out:
            np.copyto(out, y, casting="unsafe")
        y = out
    elif y.dtype != rdt:
        y = y.astype(rdt)
    if keep_z:
        return y, (z if z.dtype == rdt else z.astype(rdt))
    return y


def dense_backward(grad_output, x, weight, *, has_bias=True, activation=None, saved=None,
                   needs_input_grad=True, **activation_params):
    """Backward of :func:`dense`: ``(grad_x, grad_weight, grad_bias)``.

    Parameters
    ----------
    grad_output : array_like, shape (..., out_features)
        Gradient with respect to the layer's output ``y``.
    x : array_like, shape (..., in_features)
        The forward input.
    weight : array_like, shape (out_features, in_features)
    has_bias : bool, default True
        Whether the forward had a bias (else ``grad_bias`` is ``None``).
    activation : str or None, default None
        As in the forward call.
    saved : array_like, optional
        Required with an activation: the ``saved`` of ``dense(...,
        return_saved=True)`` (``y`` for sigmoid, tanh and elu, the
        pre-activation otherwise).
    needs_input_grad : bool, default True
        ``False`` skips ``grad_x`` (returned as ``None``): the first layer.
    **activation_params
        As in the forward call.

    Returns
    -------
    grad_x : ndarray or None
        Shape of ``x``.
    grad_weight : ndarray
        Shape of ``weight``.
    grad_bias : ndarray or None
        Shape ``(out_features,)``.

    Notes
    -----
    With ``gz = grad_output * act'(saved)`` (the activation's backward,
    fused with the bias reduction into one pass over ``grad_output``):
    ``grad_bias = sum of gz over the rows`` (float64 sums, one thread per
    column: no dependence on the thread count), ``grad_weight = gz^T x``,
    ``grad_x = gz W`` (two OpenBLAS GEMMs).

    Examples
    --------
    >>> import numpy as np, mlkern
    >>> x = np.array([[1.0, 2.0]]); w = np.array([[3.0, -1.0]])
    >>> y, s = mlkern.layers.dense(x, w, np.zeros(1), activation="relu", return_saved=True)
    >>> gx, gw, gb = mlkern.layers.dense_backward(np.ones((1, 1)), x, w, activation="relu", saved=s)
    >>> gx.tolist(), gw.tolist(), gb.tolist()
    ([[3.0, -1.0]], [[1.0, 2.0]], [1.0])
    """
    _, bop, _, a, b, c = _spec(activation, activation_params)
    if any_dask(grad_output, x, weight, saved):
        from . import _dask
        return _dask.dense_backward(grad_output, x, weight, has_bias, activation, saved,
                                    needs_input_grad, activation_params)
    ga = np.asarray(grad_output)
    xa, wa, _, cdt, rdt = _dense_args(x, weight, None, "dense_backward")
    sa = None
    if bop >= 0:
        if saved is None:
            raise ValueError(f"saved: required with activation={activation!r} (the `saved` of "
                             "dense(..., return_saved=True))")
        sa = np.asarray(saved)
    elif saved is not None:         # unused without an activation, but still a real array
        layer_dtype((("saved", np.asarray(saved)),))
    cdt, rdt = layer_dtype((("grad_output", ga), ("x", xa), ("weight", wa), ("saved", sa)))
    N, K = wa.shape
    shape = xa.shape[:-1] + (N,)
    if ga.shape != shape:
        raise ValueError(f"dense_backward: grad_output must have shape {shape} (x.shape[:-1] + "
                         f"(out_features,)), got {ga.shape}")
    if sa is not None and sa.shape != shape:
        raise ValueError(f"dense_backward: saved must have the shape of grad_output {shape}, "
                         f"got {sa.shape}")
    M = ga.size // N if N else int(np.prod(xa.shape[:-1], dtype=np.int64))
    gw = np.zeros((N, K), cdt) if M == 0 else np.empty((N, K), cdt)
    gb = np.zeros(N, cdt) if has_bias else None
    gx = None
    if needs_input_grad:
        gx = np.zeros(xa.shape, cdt) if N == 0 else np.empty(xa.shape, cdt)
    if M and N:
        g2 = layer_array(ga, cdt)
        x2 = layer_array(xa, cdt)
        w2 = layer_array(wa, cdt)
        s2 = gz = None
        if bop >= 0:
            s2 = layer_array(sa, cdt)
            gz = np.empty(shape, cdt)
        _ew.dense_bwd_raw(g2, x2, w2, s2, gz, gb, gw, gx, bop, a, b, c)
    if rdt != cdt:
        gw = gw.astype(rdt)
        gb = None if gb is None else gb.astype(rdt)
        gx = None if gx is None else gx.astype(rdt)
    return gx, gw, gb


# ---------------------------------------------------------------- embedding
def _emb_weight(weight):
    wa = np.asarray(weight)
    if wa.ndim != 2:
        raise ValueError(f"weight: must be 2-D (num_embeddings, embedding_dim), got shape {wa.shape}")
    kind = wa.dtype.kind
    if kind == "f":
        cdt = np.dtype(wa.dtype.newbyteorder("="))
        if cdt.itemsize not in (2, 4, 8):
            raise TypeError(f"weight: dtype {wa.dtype} is not supported (use float32 or float64)")
    elif kind in "biu":
        cdt = np.dtype(np.float64)
    elif kind == "c":
        raise TypeError(f"weight: complex input is not supported (dtype {wa.dtype})")
    else:
        raise TypeError(f"weight: expected a real numeric array, got dtype {wa.dtype}")
    return layer_array(wa, cdt)


def embedding(indices, weight, *, padding_idx=None, out=None):
    """Embedding lookup: ``weight[indices]``.

    Parameters
    ----------
    indices : array_like of int
        Any integer dtype and shape; each in ``[0, num_embeddings)``.
    weight : array_like, shape (num_embeddings, embedding_dim)
        float dtypes are kept (float16 too: a lookup is a copy); integers
        give float64.
    padding_idx : int, optional
        Checked to be in ``[-num_embeddings, num_embeddings)`` (negative
        counts from the end, as PyTorch); the forward uses that row as it is
        (PyTorch's convention: it is the gradient that is zero there).
    out : ndarray, optional
        Result array, shape ``indices.shape + (embedding_dim,)``.

    Returns
    -------
    ndarray, shape indices.shape + (embedding_dim,)
        The rows of ``weight``.

    Notes
    -----
    A gather of rows (parallel over the tokens above a size threshold).
    Indices are checked before any row is copied: an index out of range is
    a ``ValueError`` naming it.

    Examples
    --------
    >>> import numpy as np, mlkern
    >>> w = np.arange(6.0).reshape(3, 2)
    >>> mlkern.layers.embedding(np.array([2, 0, 2]), w).tolist()
    [[4.0, 5.0], [0.0, 1.0], [4.0, 5.0]]
    """
    if (type(indices) is not np.ndarray or type(weight) is not np.ndarray) and \
            any_dask(indices, weight):
        from . import _dask
        return _dask.embedding(indices, weight, padding_idx, out)
    wa = _emb_weight(weight)
    idx = check_indices(indices)
    V, D = wa.shape
    check_index_range(idx, V)
    check_padding_idx(padding_idx, V)
    shape = idx.shape + (D,)
    y = None
    if out is not None:
        y = layer_out(out, shape, wa.dtype, wa.dtype, wa, idx)
    if y is None:
        y = np.empty(shape, wa.dtype)
    _ew.emb_gather(idx, wa, y)
    if out is not None and y is not out:
        np.copyto(out, y)
        y = out
    return y


def embedding_backward(grad_output, indices, num_embeddings, *, padding_idx=None, out=None):
    """Backward of :func:`embedding`: the dense gradient of ``weight``.

    Parameters
    ----------
    grad_output : array_like, shape indices.shape + (embedding_dim,)
        Gradient with respect to the lookup's output.
    indices : array_like of int
        As in the forward call (checked in range).
    num_embeddings : int
        Rows of the weight.
    padding_idx : int, optional
        Its row of the gradient is zero (negative counts from the end).
    out : ndarray, optional
        Result array (num_embeddings, embedding_dim): overwritten, not
        accumulated into.

    Returns
    -------
    ndarray, shape (num_embeddings, embedding_dim)
        ``grad[v] = sum of grad_output[t]`` over the tokens ``t`` with
        ``indices[t] == v``; zero for the rows no token uses and for
        ``padding_idx``.

    Notes
    -----
    Deterministic scatter-add: a counting sort of the token positions by
    index, then one segmented sum per distinct index, in token order, each
    output row written by one thread -- bitwise identical for any thread
    count.  Only the rows present are written into a lazily zeroed result.

    Examples
    --------
    >>> import numpy as np, mlkern
    >>> g = np.array([[1.0, 2.0], [10.0, 20.0], [100.0, 200.0]])
    >>> mlkern.layers.embedding_backward(g, np.array([2, 0, 2]), 4).tolist()
    [[10.0, 20.0], [0.0, 0.0], [101.0, 202.0], [0.0, 0.0]]
    """
    V = check_count(num_embeddings, "num_embeddings")
    if any_dask(grad_output, indices):
        from . import _dask
        return _dask.embedding_backward(grad_output, indices, V, padding_idx, out)
    idx = check_indices(indices)
    ga = np.asarray(grad_output)
    cdt, rdt = layer_dtype((("grad_output", ga),))
    if ga.ndim != idx.ndim + 1 or ga.shape[:-1] != idx.shape:
        raise ValueError(f"embedding_backward: grad_output must have shape indices.shape + "
                         f"(embedding_dim,) = {idx.shape + ('D',)}, got {ga.shape}")
    check_index_range(idx, V)
    pad = check_padding_idx(padding_idx, V)
    D = ga.shape[-1]
    g2 = layer_array(ga, cdt)
    res = None
    if out is not None:
        res = layer_out(out, (V, D), rdt, cdt, g2, idx)
        if res is not None:
            res.fill(0)
    if res is None:
        res = np.zeros((V, D), cdt)
    _ew.emb_bwd_raw(g2, idx, V, pad, res)
    if out is not None:
        if res is not out:
            np.copyto(out, res, casting="unsafe")
        return out
    return res if rdt == cdt else res.astype(rdt)


# ---------------------------------------------------------------- convolutions
# conv1d / conv2d and their backwards (kernels: _conv.pxi).  conv1d is conv2d
# with H = 1.  im2col of a tile of output pixels (about 512 KiB of col, L2)
# into a per-thread buffer, then one OpenBLAS GEMM per tile and group, the
# bias written into the tile before the GEMM accumulates onto it.  NCHW:
# y_n (C_out, P) = W (C_out, K) col (K, P); NHWC: y (P, C_out) = col (P, K)
# Wr^T with the weight repacked once per call to (C_out, kh, kw, C_in/groups)
# (a col row = kh*kw contiguous channel copies).  1x1 stride-1 unpadded:
# the input is the col matrix (no im2col).  The units of work (pixel tiles
# in the forward, fixed blocks of images in the backward, whose grad_weight
# partials are summed in block order; grad_x by col2im into images a block
# owns) are fixed by the shape, so every result is bitwise identical for
# any thread count.  Extra memory per call: one col tile per thread (two in
# the backward), up to 7 grad_weight partials, and the repacked weight.
# Channels-last 3x3 stride-1 forwards with >= 16 channels use Winograd
# F(2x2, 3x3) instead (below).
__all__ += ["conv1d", "conv2d", "conv1d_backward", "conv2d_backward"]


def _conv_prep(fname, nd, x, weight, bias, stride, padding, dilation, groups, layout,
               grad_output=None):
    """Validated arrays and geometry of a convolution call."""
    xa = np.asarray(x)
    wa = np.asarray(weight)
    ba = None if bias is None else np.asarray(bias)
    ga = None if grad_output is None else np.asarray(grad_output)
    named = (("x", xa), ("weight", wa), ("bias", ba))
    if ga is not None:
        named = (("grad_output", ga),) + named
    cdt, rdt = layer_dtype(named)
    nhwc = check_layout(layout, nd, fname)
    G = check_groups(groups, fname)
    kdims = "(C_out, C_in/groups, L_k)" if nd == 1 else "(C_out, C_in/groups, kH, kW)"
    if wa.ndim != nd + 2:
        raise ValueError(f"{fname}: weight must be {nd + 2}-D {kdims}, got shape {wa.shape}")
    xdims = ("(N, L, C_in)" if nhwc else "(N, C_in, L)") if nd == 1 else \
        ("(N, H, W, C_in)" if nhwc else "(N, C_in, H, W)")
    if xa.ndim not in (nd + 1, nd + 2):
        raise ValueError(f"{fname}: x must be {nd + 2}-D {xdims} (or {nd + 1}-D without the batch "
                         f"axis), got shape {xa.shape}")
    batched = xa.ndim == nd + 2
    xb = xa if batched else xa[None]
    C = xb.shape[-1] if nhwc else xb.shape[1]
    O = wa.shape[0]
    if O % G:
        raise ValueError(f"{fname}: weight: out_channels {O} (weight.shape[0]) is not divisible by "
                         f"groups={G}")
    if wa.shape[1] * G != C:
        raise ValueError(f"{fname}: x and weight: x has {C} input channels (shape {xa.shape}, layout "
                         f"{layout!r}), weight expects weight.shape[1] * groups = {wa.shape[1] * G} "
                         f"(shape {wa.shape})")
    if ba is not None and ba.shape != (O,):
        raise ValueError(f"{fname}: bias must have shape ({O},) (out_channels), got {ba.shape}")
    insize = xb.shape[1:-1] if nhwc else xb.shape[2:]
    st, dil, left, outs = conv_geometry(fname, nd, insize, wa.shape[2:], stride, padding, dilation)
    N = xb.shape[0]
    yshape = (N,) + outs + (O,) if nhwc else (N, O) + outs
    if not batched:
        yshape = yshape[1:]
    if ga is not None and ga.shape != yshape:
        raise ValueError(f"{fname}: grad_output must have the forward's output shape {yshape}, "
                         f"got {ga.shape}")
    if nd == 1:
        insize, ks, st, dil, left, outs = ((1,) + insize, (1,) + wa.shape[2:], (1,) + st,
                                           (1,) + dil, (0,) + left, (1,) + outs)
    else:
        ks = wa.shape[2:]
    dims = (N, C, insize[0], insize[1], O, ks[0], ks[1], st[0], st[1], left[0], left[1],
            dil[0], dil[1], G, outs[0], outs[1], int(nhwc))
    return xa, xb, wa, ba, ga, cdt, rdt, nhwc, yshape, dims


def _conv_weight(wa, cdt, nhwc):
    """The weight as the kernel's (C_out, K) matrix: (c, i, j) order, or
    (i, j, c) for channels last (repacked)."""
    w = layer_array(wa, cdt)
    if nhwc and w.shape[1] > 1 and w[0, 0].size > 1:
        w = np.ascontiguousarray(np.moveaxis(w, 1, -1))
    return w.reshape(w.shape[0], -1)


# Winograd F(2x2, 3x3) for the forward of 3x3 stride-1 undilated ungrouped
# channels-last convolutions with at least 16 input and output channels
# (_conv.pxi; measured on (32,64,56,56) -> 64 f32 at one thread: 53 ms CPU
# against 78 ms for im2col + GEMM).  The kernel also does channels first,
# but its scalar transforms there are slower than im2col (125 vs 95 ms):
# _WG_NCHW (False) switches it on for the tests.  The filter transform
# G g G^T is done here, once per call.  Inputs holding NaN or inf take the
# im2col path: the transforms would turn an inf into NaN where the direct sum
# gives +-inf (one scan of x and weight, about 5 % of the Winograd call).
_WG_G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])
_WG_NCHW = False


def _winograd(dims):
    N, C, H, W, O, kh, kw, sh, sw, ph, pw, dh, dw, G = dims[:14]
    return (kh == kw == 3 and sh == sw == 1 and dh == dw == 1 and G == 1
            and (dims[16] or _WG_NCHW) and _ew.winograd_ok(C, O))


def _conv_forward(fname, nd, x, weight, bias, stride, padding, dilation, groups, layout, out):
    if any_dask(x, weight, bias):
        from . import _dask
        kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups, layout=layout)
        return _dask.spatial_layer(fname, conv1d if nd == 1 else conv2d, x, (weight, bias), kw,
                                   nd, out)
    xa, xb, wa, ba, _, cdt, rdt, nhwc, yshape, dims = _conv_prep(
        fname, nd, x, weight, bias, stride, padding, dilation, groups, layout)
    y = None
    if out is not None:
        y = layer_out(out, yshape, rdt, cdt, xa, wa, ba)
    if y is None:
        y = np.empty(yshape, cdt)
    N, O, K = dims[0], dims[4], wa[0].size if wa.shape[0] else 0
    if y.size:
        b2 = None if ba is None else layer_array(ba, cdt)
        if K == 0:
            y[...] = 0 if b2 is None else (b2 if nhwc else b2.reshape((O,) + (1,) * nd))
        else:
            x2 = layer_array(xb, cdt)
            w2 = layer_array(wa, cdt)
            if _winograd(dims) and _ew.all_finite(x2) and _ew.all_finite(w2):
                g = _WG_G.astype(cdt)
                U = np.einsum("ia,ocab,jb->ijoc", g, w2, g).reshape(16, O, dims[1])
                _ew.conv_wg_raw(x2, np.ascontiguousarray(U), b2, y, dims)
            else:
                _ew.conv_fwd_raw(x2, _conv_weight(w2, cdt, nhwc), b2, y, dims)
    if out is not None:
        if y is not out:
            np.copyto(out, y, casting="unsafe")
        return out
    return y if y.dtype == rdt else y.astype(rdt)


def _conv_backward(fname, nd, grad_output, x, weight, has_bias, stride, padding, dilation, groups,
                   layout, needs_input_grad):
    _no_dask(fname, grad_output, x, weight)
    xa, xb, wa, _, ga, cdt, rdt, nhwc, yshape, dims = _conv_prep(
        fname, nd, x, weight, None, stride, padding, dilation, groups, layout, grad_output)
    N, O, P = dims[0], dims[4], dims[14] * dims[15]
    K = wa[0].size if O else 0
    gx = None
    if needs_input_grad:
        gx = np.zeros(xa.shape, cdt) if N * O * K == 0 else np.empty(xa.shape, cdt)
    gb = np.zeros(O, cdt) if has_bias else None
    if N * O * K == 0:
        gw = np.zeros(wa.shape, cdt)
    else:
        g2 = layer_array(ga, cdt)
        gwm = np.empty((O, K), cdt)
        # grad_x of a Winograd-sized convolution (stride 1, 3x3, top/left
        # padding <= 2) is itself one: the correlation of grad_output, padded
        # by 2 - padding, with the flipped, transposed filters
        w2 = layer_array(wa, cdt)
        wg_gx = (gx is not None and _winograd(dims) and dims[9] <= 2 and dims[10] <= 2
                 and _ew.all_finite(g2) and _ew.all_finite(w2))
        _ew.conv_bwd_raw(g2, layer_array(xb, cdt), _conv_weight(w2, cdt, nhwc), gwm,
                         None if wg_gx else gx, dims)
        if wg_gx:
            C, H, W, Ho, Wo = dims[1], dims[2], dims[3], dims[14], dims[15]
            wt = w2.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1]
            g = _WG_G.astype(cdt)
            U = np.einsum("ia,ocab,jb->ijoc", g, wt, g).reshape(16, C, O)
            _ew.conv_wg_raw(g2, np.ascontiguousarray(U), None, gx,
                            (N, O, Ho, Wo, C, 3, 3, 1, 1, 2 - dims[9], 2 - dims[10], 1, 1, 1, H, W,
                             dims[16]))
        if nhwc and wa.shape[1] > 1 and wa[0, 0].size > 1:
            gw = np.ascontiguousarray(np.moveaxis(gwm.reshape((O,) + wa.shape[2:] + (wa.shape[1],)),
                                                  -1, 1))
        else:
            gw = gwm.reshape(wa.shape)
    if gb is not None and N * O * P:
        _ew.conv_bias_grad(layer_array(ga, cdt), gb, N, O, P, nhwc)
    if rdt != cdt:
        gw = gw.astype(rdt)
        gb = None if gb is None else gb.astype(rdt)
        gx = None if gx is None else gx.astype(rdt)
    return gx, gw, gb


def conv1d(x, weight, bias=None, *, stride=1, padding=0, dilation=1, groups=1, layout="NCL",
           out=None):
    """1-D convolution (cross-correlation), PyTorch's ``conv1d``.

    Parameters
    ----------
    x : array_like, shape (N, C_in, L) ("NCL") or (N, L, C_in) ("NLC")
        Input (the batch axis may be left out); float32/float64 kept,
        integers take the weight's float dtype.
    weight : array_like, shape (C_out, C_in/groups, L_k)
        PyTorch's layout, whatever ``layout`` is.
    bias : array_like, shape (C_out,), optional
    stride : int or tuple of 1 int, default 1
    padding : int, tuple of 1 int, "valid" or "same", default 0
        Zeros added on both sides; ``"same"`` pads ``dilation*(L_k-1)`` in
        total (the odd one on the right) and needs ``stride=1``.
    dilation : int or tuple of 1 int, default 1
    groups : int, default 1
        Divides C_in and C_out; group g maps input channels
        ``g*C_in/groups ...`` to output channels ``g*C_out/groups ...``.
    layout : {"NCL", "NLC"}, default "NCL"
        Layout of ``x`` and of the output (channels first, or last as Keras).
    out : ndarray, optional
        Result array of the output's shape and dtype.

    Returns
    -------
    ndarray, shape (N, C_out, L_out) (or (N, L_out, C_out) with "NLC")
        ``L_out = (L + 2*padding - dilation*(L_k-1) - 1) // stride + 1``.

    Notes
    -----
    Formula: ``y[n, o, l] = b[o] + sum_{c, k} w[o, c, k] x[n, g*C_in/groups + c,
    l*stride - pad + k*dilation]`` (zero outside the input), ``g`` the group
    of ``o``.  Computed as :func:`conv2d` with H = 1: im2col of L2-sized
    tiles of output positions and one OpenBLAS GEMM per tile and group; the
    result does not depend on the thread count.

    Examples
    --------
    >>> import numpy as np, mlkern
    >>> x = np.array([[[1.0, 2.0, 3.0, 4.0]]])
    >>> mlkern.layers.conv1d(x, np.array([[[1.0, -1.0]]]), padding=1).tolist()
    [[[-1.0, -1.0, -1.0, -1.0, 4.0]]]
    """
    return _conv_forward("conv1d", 1, x, weight, bias, stride, padding, dilation, groups, layout,
                         out)


def conv2d(x, weight, bias=None, *, stride=1, padding=0, dilation=1, groups=1, layout="NCHW",
           out=None):
    """2-D convolution (cross-correlation), PyTorch's ``conv2d``.

    Parameters
    ----------
    x : array_like, shape (N, C_in, H, W) ("NCHW") or (N, H, W, C_in) ("NHWC")
        Input (the batch axis may be left out); float32/float64 kept,
        integers take the weight's float dtype.
    weight : array_like, shape (C_out, C_in/groups, kH, kW)
        PyTorch's layout, whatever ``layout`` is.
    bias : array_like, shape (C_out,), optional
    stride : int or tuple of 2 ints, default 1
    padding : int, tuple of 2 ints, "valid" or "same", default 0
        Zeros added on both sides of each axis; ``"same"`` pads
        ``dilation*(k-1)`` in total per axis (the odd one at the end) and
        needs ``stride=1``.
    dilation : int or tuple of 2 ints, default 1
    groups : int, default 1
        Divides C_in and C_out.
    layout : {"NCHW", "NHWC"}, default "NCHW"
        Layout of ``x`` and of the output (channels last: Keras/TF, usually
        the faster one here).
    out : ndarray, optional
        Result array of the output's shape and dtype.

    Returns
    -------
    ndarray, shape (N, C_out, H_out, W_out) (or (N, H_out, W_out, C_out) with "NHWC")
        ``H_out = (H + 2*padding - dilation*(kH-1) - 1) // stride + 1``, W alike.

    Notes
    -----
    Formula: ``y[n, o, h, w] = b[o] + sum_{c, i, j} w[o, c, i, j] x[n, g*C_in/groups
    + c, h*s - p + i*d, w*s - p + j*d]`` (zero outside the input).  im2col of
    tiles of output pixels (about 512 KiB, L2) into a per-thread buffer, one
    OpenBLAS GEMM per tile and group, the bias written into the output tile
    first.  Channels last uses the weight repacked once to (C_out, kH, kW,
    C_in/groups) and needs no im2col at all for a 1x1 stride-1 convolution.
    Extra memory: a tile per thread, not the batch's whole im2col; the
    result is bitwise identical for any thread count.

    Examples
    --------
    >>> import numpy as np, mlkern
    >>> x = np.arange(9.0).reshape(1, 1, 3, 3)
    >>> mlkern.layers.conv2d(x, np.ones((1, 1, 2, 2)), np.array([0.5])).tolist()
    [[[[8.5, 12.5], [20.5, 24.5]]]]
    """
    return _conv_forward("conv2d", 2, x, weight, bias, stride, padding, dilation, groups, layout,
                         out)


def conv1d_backward(grad_output, x, weight, *, has_bias=True, stride=1, padding=0, dilation=1,
                    groups=1, layout="NCL", needs_input_grad=True):
    """Backward of :func:`conv1d`: ``(grad_x, grad_weight, grad_bias)``.

    Parameters
    ----------
    grad_output : array_like, shape of the forward's output
        Gradient with respect to the output.
    x : array_like, shape (N, C_in, L) or (N, L, C_in)
        The forward input.
    weight : array_like, shape (C_out, C_in/groups, L_k)
    has_bias : bool, default True
        Whether the forward had a bias (else ``grad_bias`` is ``None``).
    stride : int or tuple of 1 int, default 1
    padding : int, tuple of 1 int, "valid" or "same", default 0
    dilation : int or tuple of 1 int, default 1
    groups : int, default 1
    layout : {"NCL", "NLC"}, default "NCL"
        As in the forward call.
    needs_input_grad : bool, default True
        ``False`` skips ``grad_x`` (returned as ``None``).

    Returns
    -------
    grad_x : ndarray or None
        Shape of ``x``.
    grad_weight : ndarray
        Shape of ``weight``.
    grad_bias : ndarray or None
        Shape ``(C_out,)``.

    Notes
    -----
    As :func:`conv2d_backward` with H = 1.

    Examples
    --------
    >>> import numpy as np, mlkern
    >>> x = np.array([[[1.0, 2.0, 3.0]]]); w = np.array([[[1.0, -1.0]]])
    >>> gx, gw, gb = mlkern.layers.conv1d_backward(np.ones((1, 1, 2)), x, w)
    >>> gx.tolist(), gw.tolist(), gb.tolist()
    ([[[1.0, 0.0, -1.0]]], [[[3.0, 5.0]]], [2.0])
    """
    return _conv_backward("conv1d_backward", 1, grad_output, x, weight, has_bias, stride, padding,
                          dilation, groups, layout, needs_input_grad)


def conv2d_backward(grad_output, x, weight, *, has_bias=True, stride=1, padding=0, dilation=1,
                    groups=1, layout="NCHW", needs_input_grad=True):
    """Backward of :func:`conv2d`: ``(grad_x, grad_weight, grad_bias)``.

    Parameters
    ----------
    grad_output : array_like, shape of the forward's output
        Gradient with respect to the output.
    x : array_like, shape (N, C_in, H, W) or (N, H, W, C_in)
        The forward input.
    weight : array_like, shape (C_out, C_in/groups, kH, kW)
    has_bias : bool, default True
        Whether the forward had a bias (else ``grad_bias`` is ``None``).
    stride : int or tuple of 2 ints, default 1
    padding : int, tuple of 2 ints, "valid" or "same", default 0
    dilation : int or tuple of 2 ints, default 1
    groups : int, default 1
    layout : {"NCHW", "NHWC"}, default "NCHW"
        As in the forward call.
    needs_input_grad : bool, default True
        ``False`` skips ``grad_x`` (returned as ``None``): the first layer.

    Returns
    -------
    grad_x : ndarray or None
        Shape of ``x``.
    grad_weight : ndarray
        Shape of ``weight``.
    grad_bias : ndarray or None
        Shape ``(C_out,)``.

    Notes
    -----
    Per tile of output pixels (the col tile built once for both):
    ``grad_weight += grad_output_tile col^T`` (one GEMM) and
    ``gcol = W^T grad_output_tile`` scattered back into ``grad_x`` (col2im);
    where the forward uses Winograd (channels last, 3x3, stride 1),
    ``grad_x`` is that Winograd correlation of ``grad_output`` with the
    flipped, transposed filters.
    The images are cut into fixed blocks (at most 8): each block sums its
    own grad_weight, the blocks are added in order, and each block owns the
    ``grad_x`` of its images (no atomics); ``grad_bias`` is a float64 sum
    per channel.  Every gradient is bitwise identical for any thread count.

    Examples
    --------
    >>> import numpy as np, mlkern
    >>> x = np.arange(9.0).reshape(1, 1, 3, 3); w = np.ones((1, 1, 2, 2))
    >>> gx, gw, gb = mlkern.layers.conv2d_backward(np.ones((1, 1, 2, 2)), x, w)
    >>> gx[0, 0].tolist(), gw[0, 0].tolist(), gb.tolist()
    ([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]], [[8.0, 12.0], [20.0, 24.0]], [4.0])
    """
    return _conv_backward("conv2d_backward", 2, grad_output, x, weight, has_bias, stride, padding,
                          dilation, groups, layout, needs_input_grad)


# ---------------------------------------------------------------- recurrent layers
# RNN, LSTM, GRU (PyTorch's gate order and formulas).  The time loops are in
# C (_rnn.pxi; the fused gate kernels in _c/mlk_rnn_tmpl.h): the input
# projection of a chunk of steps is one GEMM (both biases folded in; for GRU
# b_hn stays inside r * (W_hn h + b_hn)), each step one GEMM h W_hh^T and
# one fused gate kernel, with no Python per step.  The hidden units are cut
# into P blocks (P = 1 or 2, by the shape: _kernels.rnn_blocks) whose gate
# rows this module permutes side by side (_perm), one block per thread.
# The backward keeps only dh_{t-1} = dG_t W_hh sequential; the weight, bias
# and input gradients are then GEMMs over all T*N rows and one float64
# column sum, and are permuted back here.  The projection is computed in
# chunks of at most _PROJ_BYTES (4 MiB) of steps, so without return_saved
# the scratch does not grow with T.  Figures: benchmarks/rnn_bars.py; on a
# loaded machine (load 4-12 on 2 cores, 2026-12-07), f32 T=100 N=32
# I=H=256, one thread, PyTorch / mlkern in CPU time: LSTM forward
# 0.74-0.75x, fwd+bwd 0.84-0.85x; GRU 1.11-1.23x / 1.12-1.22x; RNN
# 1.06-1.23x / 1.12-1.30x (2 threads: not measurable at that load).  LSTM
# is bound by its flops: 3.4 GFLOP forward (10 GFLOP with the backward) at
# OpenBLAS's ~100 GFLOP/s of one core is ~34 ms (~100 ms), where PyTorch
# (oneDNN) reaches ~24-30 ms (~104-128 ms).
_GATES = {"rnn": 1, "lstm": 4, "gru": 3}
_PROJ_BYTES = 4 << 20


class RecurrentSaved:
    """What :func:`rnn_backward`, :func:`lstm_backward` and :func:`gru_backward`
    need: returned as the last element of ``rnn``/``lstm``/``gru(...,
    return_saved=True)``.  Opaque; its arrays are in time-major order."""

    __slots__ = ("kind", "nonlinearity", "batch_first", "cdt", "rdt", "x", "w_ih", "w_hh",
                 "has_h0", "has_c0", "has_b_ih", "has_b_hh", "hs", "cs", "acts", "extra",
                 "perm", "blocks")

    def __repr__(self):
        T, N = self.hs.shape[0] - 1, self.hs.shape[1]
        return f"<RecurrentSaved {self.kind} T={T} N={N} H={self.hs.shape[2]} dtype={self.cdt}>"


def _rec_args(fname, kind, x, h0, c0, w_ih, w_hh, b_ih, b_hh, batch_first, cell):
    G = _GATES[kind]
    _no_dask(fname, x, h0, c0, w_ih, w_hh, b_ih, b_hh)
    xa = np.asarray(x)
    ha = None if h0 is None else np.asarray(h0)
    ca = None if c0 is None else np.asarray(c0)
    wi = np.asarray(w_ih)
    wh = np.asarray(w_hh)
    bi = None if b_ih is None else np.asarray(b_ih)
    bh = None if b_hh is None else np.asarray(b_hh)
    hname = "h" if cell else "h0"
    cname = "c" if cell else "c0"
    cdt, rdt = layer_dtype((("x", xa), (hname, ha), (cname, ca), ("w_ih", wi), ("w_hh", wh),
                            ("b_ih", bi), ("b_hh", bh)))
    if wh.ndim != 2 or wh.shape[0] != G * wh.shape[1]:
        raise ValueError(f"{fname}: w_hh must have shape ({G}*hidden_size, hidden_size), "
                         f"got {wh.shape}")
    H = wh.shape[1]
    if wi.ndim != 2 or wi.shape[0] != G * H:
        raise ValueError(f"{fname}: w_ih must have shape ({G * H}, input_size) ({G}*hidden_size "
                         f"rows, hidden_size {H} from w_hh), got {wi.shape}")
    I = wi.shape[1]
    for name, b in (("b_ih", bi), ("b_hh", bh)):
        if b is not None and b.shape != (G * H,):
            raise ValueError(f"{fname}: {name} must have shape ({G * H},), got {b.shape}")
    if cell:
        if xa.ndim != 2 or xa.shape[1] != I:
            raise ValueError(f"{fname}: x must have shape (batch, input_size={I}), got {xa.shape}")
        xs = xa[None]
    else:
        if xa.ndim != 3 or xa.shape[2] != I:
            lay = "(batch, seq_len" if batch_first else "(seq_len, batch"
            raise ValueError(f"{fname}: x must have shape {lay}, input_size={I}), got {xa.shape}")
        xs = xa.transpose(1, 0, 2) if batch_first else xa
        if xs.shape[0] == 0:
            raise ValueError(f"{fname}: x: the sequence length must be at least 1, got shape {xa.shape}")
    N = xs.shape[1]
    for name, a in ((hname, ha), (cname, ca)):
        if a is not None and a.shape != (N, H):
            raise ValueError(f"{fname}: {name} must have shape (batch={N}, hidden_size={H}), "
                             f"got {a.shape}")
    xs = layer_array(xs, cdt)
    ha = None if ha is None else layer_array(ha, cdt)
    ca = None if ca is None else layer_array(ca, cdt)
    wi, wh = layer_array(wi, cdt), layer_array(wh, cdt)
    bi = None if bi is None else layer_array(bi, cdt)
    bh = None if bh is None else layer_array(bh, cdt)
    return xs, ha, ca, wi, wh, bi, bh, cdt, rdt


def _nonlin(nonlinearity):
    if nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"nonlinearity: expected 'tanh' or 'relu', got {nonlinearity!r}")
    return nonlinearity


def _perm(G, H, P, hb):
    """The gate rows in block order (block b's G gates side by side), or None
    for one block (the identity)."""
    if P == 1:
        return None
    return np.concatenate([np.arange(k * H + b * hb, k * H + min(H, (b + 1) * hb))
                           for b in range(P) for k in range(G)])


def _op_name(kind, nonlinearity):
    return "rnn_" + nonlinearity if kind == "rnn" else kind


def _rec_forward(kind, args, nonlinearity, keep):
    xs, h0, c0, wi, wh, bi, bh, cdt, rdt = args
    T, N, I = xs.shape
    GH, H = wh.shape
    G = _GATES[kind]
    P, hb = _ew.rnn_blocks(N, H, G)
    perm = _perm(G, H, P, hb)
    bhn = None
    if kind == "gru":
        # b_ih and the r, z rows of b_hh fold into the projection; b_hn
        # stays inside r * (W_hn h + b_hn)
        bhn = np.zeros(H, cdt) if bh is None else np.ascontiguousarray(bh[2 * H:])
        bias_x = bi
        if bh is not None:
            bias_x = np.concatenate([bh[:2 * H], np.zeros(H, cdt)])
            if bi is not None:
                bias_x += bi
    else:
        bias_x = bi if bh is None else (bh if bi is None else bi + bh)
    if perm is not None:
        wi, wh = wi[perm], wh[perm]
        bias_x = None if bias_x is None else bias_x[perm]
    xs = np.ascontiguousarray(xs)
    # the projection in chunks of steps of at most _PROJ_BYTES (the scratch
    # memory of a forward without return_saved does not grow with T)
    chunk = max(1, min(T, _PROJ_BYTES // max(1, N * GH * xs.itemsize)))
    pbuf = np.empty((T if keep else chunk, N, GH), cdt)
    hs = np.empty((T + 1, N, H), cdt)
    hs[0] = 0 if h0 is None else h0
    cs = aux = None
    if kind == "lstm":
        cs = np.empty((T + 1 if keep else 2, N, H), cdt)
        cs[0] = 0 if c0 is None else c0
    if kind != "rnn":
        aux = np.empty((T if keep else 1, N, H), cdt)
    _ew.rnn_fwd_raw(_ew.RNN_OPS[_op_name(kind, nonlinearity)], xs, wi, wh, bias_x, bhn, hs, cs, pbuf,
                    np.empty((N, GH), cdt), aux, chunk, keep, P, hb)
    if kind == "lstm" and not keep:
        cs = cs[[T % 2]]
    saved = None
    if keep:
        saved = RecurrentSaved()
        saved.kind, saved.nonlinearity, saved.cdt, saved.rdt = kind, nonlinearity, cdt, rdt
        saved.x, saved.w_ih, saved.w_hh = xs, wi, wh          # permuted gate rows
        saved.has_h0, saved.has_c0 = h0 is not None, c0 is not None
        saved.has_b_ih, saved.has_b_hh = bi is not None, bh is not None
        saved.hs, saved.cs, saved.acts, saved.extra = hs, cs, pbuf, aux
        saved.perm, saved.blocks = perm, (P, hb)
    return hs, cs, saved


def _ret(a, rdt):
    return a if a.dtype == rdt else a.astype(rdt)


def _seq_out(hs, batch_first, rdt, saved):
    """The output sequence: a view of hs without saved, else a copy (the
    backward reads hs: an in-place change of the output must not alter it)."""
    out = hs[1:]
    out = out.transpose(1, 0, 2) if batch_first else out
    if saved and not batch_first and rdt == hs.dtype:
        return out.copy()
    return np.ascontiguousarray(out, dtype=rdt)


def rnn(x, h0, w_ih, w_hh, b_ih=None, b_hh=None, *, nonlinearity="tanh", batch_first=False,
        return_saved=False):
    """Elman RNN over a sequence (PyTorch's ``nn.RNN``, one layer, unidirectional).

    Parameters
    ----------
    x : array_like, shape (T, N, input_size), or (N, T, input_size) with ``batch_first``
        The input sequence (T >= 1).
    h0 : array_like or None, shape (N, hidden_size)
        Initial hidden state; ``None`` for zeros.
    w_ih : array_like, shape (hidden_size, input_size)
    w_hh : array_like, shape (hidden_size, hidden_size)
    b_ih : array_like, shape (hidden_size,), optional
    b_hh : array_like, shape (hidden_size,), optional
    nonlinearity : {"tanh", "relu"}, default "tanh"
    batch_first : bool, default False
        ``x`` and ``output`` are (N, T, ...) instead of (T, N, ...).
    return_saved : bool, default False
        Also return ``saved`` (for :func:`rnn_backward`).

    Returns
    -------
    output : ndarray, shape (T, N, hidden_size) (or (N, T, hidden_size))
        ``h_t`` for every step, ``h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)``.
    h_n : ndarray, shape (N, hidden_size)
        The last hidden state.
    saved : RecurrentSaved
        Only with ``return_saved=True``.

    Notes
    -----
    Formula: ``h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)``.  The input
    projection of all T steps is one GEMM of ``T*N`` rows (both biases folded in);
    each step one GEMM ``h W_hh^T`` added to it and the nonlinearity, the whole
    time loop in C.

    Examples
    --------
    >>> import numpy as np, mlkern
    >>> x = np.ones((2, 1, 1)); w_ih = np.array([[1.0]]); w_hh = np.array([[0.0]])
    >>> out, h_n = mlkern.layers.rnn(x, None, w_ih, w_hh, nonlinearity="relu")
    >>> out.tolist(), h_n.tolist()
    ([[[1.0]], [[1.0]]], [[1.0]])
    """
    nl = _nonlin(nonlinearity)
    args = _rec_args("rnn", "rnn", x, h0, None, w_ih, w_hh, b_ih, b_hh, batch_first, False)
    hs, _, saved = _rec_forward("rnn", args, nl, return_saved)
    rdt = args[-1]
    res = (_seq_out(hs, batch_first, rdt, return_saved), _ret(hs[-1].copy(), rdt))
    if return_saved:
        saved.batch_first = batch_first
        return res + (saved,)
    return res


def lstm(x, h0, c0, w_ih, w_hh, b_ih=None, b_hh=None, *, batch_first=False, return_saved=False):
    """LSTM over a sequence (PyTorch's ``nn.LSTM``, one layer, unidirectional).

    Parameters
    ----------
    x : array_like, shape (T, N, input_size), or (N, T, input_size) with ``batch_first``
        The input sequence (T >= 1).
    h0 : array_like or None, shape (N, hidden_size)
    c0 : array_like or None, shape (N, hidden_size)
        Initial hidden and cell states; ``None`` for zeros.
    w_ih : array_like, shape (4*hidden_size, input_size)
        Gates i, f, g, o stacked (PyTorch's order).
    w_hh : array_like, shape (4*hidden_size, hidden_size)
    b_ih : array_like, shape (4*hidden_size,), optional
    b_hh : array_like, shape (4*hidden_size,), optional
    batch_first : bool, default False
    return_saved : bool, default False
        Also return ``saved`` (for :func:`lstm_backward`).

    Returns
    -------
    output : ndarray, shape (T, N, hidden_size) (or (N, T, hidden_size))
        ``h_t`` for every step.
    (h_n, c_n) : tuple of ndarray, shape (N, hidden_size)
        The last hidden and cell states.
    saved : RecurrentSaved
        Only with ``return_saved=True``.

    Notes
    -----
    Formula (PyTorch's): ``i, f, o = sigmoid(.)``, ``g = tanh(.)`` of
    ``x W_ih^T + b_ih + h W_hh^T + b_hh``; ``c_t = f c_{t-1} + i g``,
    ``h_t = o tanh(c_t)``.  The input projection of all T steps is one GEMM
    (both biases folded in); each step one GEMM ``h W_hh^T`` added to it, then
    one fused gate kernel (mlkern's sigmoid/tanh, the cell update); the whole
    time loop in C.

    Examples
    --------
    >>> import numpy as np, mlkern
    >>> x = np.zeros((3, 2, 4)); w_ih = np.zeros((8, 4)); w_hh = np.zeros((8, 2))
    >>> out, (h_n, c_n) = mlkern.layers.lstm(x, None, None, w_ih, w_hh)
    >>> out.shape, h_n.shape, float(c_n.sum())
    ((3, 2, 2), (2, 2), 0.0)
    """
    args = _rec_args("lstm", "lstm", x, h0, c0, w_ih, w_hh, b_ih, b_hh, batch_first, False)
    hs, cs, saved = _rec_forward("lstm", args, None, return_saved)
    rdt = args[-1]
    res = (_seq_out(hs, batch_first, rdt, return_saved), (_ret(hs[-1].copy(), rdt), _ret(cs[-1].copy(), rdt)))
    if return_saved:
        saved.batch_first = batch_first
        return res + (saved,)
    return res


def gru(x, h0, w_ih, w_hh, b_ih=None, b_hh=None, *, batch_first=False, return_saved=False):
    """GRU over a sequence (PyTorch's ``nn.GRU``, one layer, unidirectional).

    Parameters
    ----------
    x : array_like, shape (T, N, input_size), or (N, T, input_size) with ``batch_first``
        The input sequence (T >= 1).
    h0 : array_like or None, shape (N, hidden_size)
        Initial hidden state; ``None`` for zeros.
    w_ih : array_like, shape (3*hidden_size, input_size)
        Gates r, z, n stacked (PyTorch's order).
    w_hh : array_like, shape (3*hidden_size, hidden_size)
    b_ih : array_like, shape (3*hidden_size,), optional
    b_hh : array_like, shape (3*hidden_size,), optional
    batch_first : bool, default False
    return_saved : bool, default False
        Also return ``saved`` (for :func:`gru_backward`).

    Returns
    -------
    output : ndarray, shape (T, N, hidden_size) (or (N, T, hidden_size))
        ``h_t = (1 - z) n + z h_{t-1}`` for every step, with
        ``n = tanh(W_in x + b_in + r (W_hn h + b_hn))``.
    h_n : ndarray, shape (N, hidden_size)
    saved : RecurrentSaved
        Only with ``return_saved=True``.

    Notes
    -----
    Formula (PyTorch's): ``r, z = sigmoid(W_i x + b_i + W_h h + b_h)``,
    ``n = tanh(W_in x + b_in + r (W_hn h + b_hn))`` (the reset gate after the
    recurrent product), ``h_t = (1 - z) n + z h_{t-1}``.  The input projection
    of all T steps is one GEMM (``b_ih`` and the r, z rows of ``b_hh`` folded
    in); each step one GEMM ``h W_hh^T`` (``b_hn`` added to its n rows) and one
    fused gate kernel; the whole time loop in C.

    Examples
    --------
    >>> import numpy as np, mlkern
    >>> x = np.zeros((1, 1, 1)); w_ih = np.zeros((3, 1)); w_hh = np.zeros((3, 1))
    >>> out, h_n = mlkern.layers.gru(x, np.array([[1.0]]), w_ih, w_hh)
    >>> h_n.tolist()
    [[0.5]]
    """
    args = _rec_args("gru", "gru", x, h0, None, w_ih, w_hh, b_ih, b_hh, batch_first, False)
    hs, _, saved = _rec_forward("gru", args, None, return_saved)
    rdt = args[-1]
    res = (_seq_out(hs, batch_first, rdt, return_saved), _ret(hs[-1].copy(), rdt))
    if return_saved:
        saved.batch_first = batch_first
        return res + (saved,)
    return res


def rnn_cell(x, h, w_ih, w_hh, b_ih=None, b_hh=None, *, nonlinearity="tanh"):
    """One step of an Elman RNN (PyTorch's ``RNNCell``).

    Parameters
    ----------
    x : array_like, shape (N, input_size)
    h : array_like or None, shape (N, hidden_size)
        The hidden state; ``None`` for zeros.
    w_ih : array_like, shape (hidden_size, input_size)
    w_hh : array_like, shape (hidden_size, hidden_size)
    b_ih : array_like, shape (hidden_size,), optional
    b_hh : array_like, shape (hidden_size,), optional
    nonlinearity : {"tanh", "relu"}, default "tanh"

    Returns
    -------
    h : ndarray, shape (N, hidden_size)
        ``act(x W_ih^T + b_ih + h W_hh^T + b_hh)``.

    Notes
    -----
    Formula: ``act(x W_ih^T + b_ih + h W_hh^T + b_hh)``; :func:`rnn` with T = 1.

    Examples
    --------
    >>> import numpy as np, mlkern
    >>> mlkern.layers.rnn_cell(np.array([[2.0]]), None, np.array([[1.0]]), np.array([[1.0]]),
    ...                        nonlinearity="relu").tolist()
    [[2.0]]
    """
    nl = _nonlin(nonlinearity)
    args = _rec_args("rnn_cell", "rnn", x, h, None, w_ih, w_hh, b_ih, b_hh, False, True)
    hs, _, _ = _rec_forward("rnn", args, nl, False)
    return _ret(hs[1], args[-1])


def lstm_cell(x, h, c, w_ih, w_hh, b_ih=None, b_hh=None):
    """One step of an LSTM (PyTorch's ``LSTMCell``): ``(h, c)``.

    Parameters
    ----------
    x : array_like, shape (N, input_size)
    h : array_like or None, shape (N, hidden_size)
    c : array_like or None, shape (N, hidden_size)
        Hidden and cell states; ``None`` for zeros.
    w_ih : array_like, shape (4*hidden_size, input_size)
        Gates i, f, g, o.
    w_hh : array_like, shape (4*hidden_size, hidden_size)
    b_ih : array_like, shape (4*hidden_size,), optional
    b_hh : array_like, shape (4*hidden_size,), optional

    Returns
    -------
    h : ndarray, shape (N, hidden_size)
        ``o * tanh(c)``.
    c : ndarray, shape (N, hidden_size)
        ``f * c + i * g``.

    Notes
    -----
    Formula: gates i, f, g, o as in :func:`lstm` (which this is with T = 1).

    Examples
    --------
    >>> import numpy as np, mlkern
    >>> h, c = mlkern.layers.lstm_cell(np.zeros((1, 1)), None, np.ones((1, 1)),
    ...                                np.zeros((4, 1)), np.zeros((4, 1)))
    >>> c.tolist()
    [[0.5]]
    """
    args = _rec_args("lstm_cell", "lstm", x, h, c, w_ih, w_hh, b_ih, b_hh, False, True)
    hs, cs, _ = _rec_forward("lstm", args, None, False)
    return _ret(hs[1], args[-1]), _ret(cs[-1].copy(), args[-1])


def gru_cell(x, h, w_ih, w_hh, b_ih=None, b_hh=None):
    """One step of a GRU (PyTorch's ``GRUCell``).

    Parameters
    ----------
    x : array_like, shape (N, input_size)
    h : array_like or None, shape (N, hidden_size)
        The hidden state; ``None`` for zeros.
    w_ih : array_like, shape (3*hidden_size, input_size)
        Gates r, z, n.
    w_hh : array_like, shape (3*hidden_size, hidden_size)
    b_ih : array_like, shape (3*hidden_size,), optional
    b_hh : array_like, shape (3*hidden_size,), optional

    Returns
    -------
    h : ndarray, shape (N, hidden_size)
        ``(1 - z) n + z h`` with ``n = tanh(W_in x + b_in + r (W_hn h + b_hn))``.

    Notes
    -----
    Formula: gates r, z, n as in :func:`gru` (which this is with T = 1).

    Examples
    --------
    >>> import numpy as np, mlkern
    >>> mlkern.layers.gru_cell(np.zeros((1, 1)), np.array([[1.0]]), np.zeros((3, 1)),
    ...                        np.zeros((3, 1))).tolist()
    [[0.5]]
    """
    args = _rec_args("gru_cell", "gru", x, h, None, w_ih, w_hh, b_ih, b_hh, False, True)
    hs, _, _ = _rec_forward("gru", args, None, False)
    return _ret(hs[1], args[-1])


def _bwd_grads(fname, kind, saved, grads):
    _no_dask(fname, *(g for _, g in grads))
    if not isinstance(saved, RecurrentSaved) or saved.kind != kind:
        raise TypeError(f"{fname}: saved: expected the saved object of {kind}(..., "
                        f"return_saved=True), got {type(saved).__name__}"
                        + (f" of {saved.kind}" if isinstance(saved, RecurrentSaved) else ""))
    T1, N, H = saved.hs.shape
    T = T1 - 1
    seq = (N, T, H) if saved.batch_first else (T, N, H)
    arrs = [(n, None if g is None else np.asarray(g)) for n, g in grads]
    layer_dtype(arrs + [("saved", np.empty(0, saved.rdt))])
    res = []
    for n, g in arrs:
        shape = seq if n == "grad_output" else (N, H)
        if g is None:
            res.append(None)
            continue
        if g.shape != shape:
            raise ValueError(f"{fname}: {n} must have shape {shape}, got {g.shape}")
        if n == "grad_output" and saved.batch_first:
            g = g.transpose(1, 0, 2)
        res.append(layer_array(g, saved.cdt))
    return res


def _rec_backward(saved, go, gh, gc):
    """(grad_x, grad_h0, grad_c0, (grad_w_ih, grad_w_hh, grad_b_ih,
    grad_b_hh)) in the compute dtype; the time loop and the GEMMs in C."""
    kind, cdt, xs, hs = saved.kind, saved.cdt, saved.x, saved.hs
    T, N, I = xs.shape
    GH, H = saved.w_hh.shape
    gru = kind == "gru"
    d0 = np.zeros((N, H), cdt) if gh is None else np.array(gh, order="C", copy=True)
    dc = None
    if kind == "lstm":
        dc = np.zeros((N, H), cdt) if gc is None else np.array(gc, order="C", copy=True)
    go = None if go is None else np.ascontiguousarray(go)
    dgi = np.empty((T, N, GH), cdt)
    dgh = np.empty((T, N, GH), cdt) if gru else None
    gx = (np.empty if H else np.zeros)(xs.shape, cdt)
    gwi = np.empty((GH, I), cdt)
    gwh = np.empty((GH, H), cdt)
    acc_i = acc_h = None
    if saved.has_b_ih or (saved.has_b_hh and not gru):
        acc_i = np.zeros(GH)
    if saved.has_b_hh and gru:
        acc_h = np.zeros(GH)
    d1 = np.empty((N, H), cdt)
    k = _ew.rnn_bwd_raw(_ew.RNN_BWD_OPS[_op_name(kind, saved.nonlinearity)], go, d0, d1, dc,
                        hs, saved.cs, saved.acts, saved.extra, xs, saved.w_ih,
                        np.ascontiguousarray(saved.w_hh.T),
                        dgi, dgh, gx, gwi, gwh, acc_i, acc_h, *saved.blocks)
    gh0 = (d0, d1)[k]
    if not gru:
        acc_h = acc_i
    gbi = None if not saved.has_b_ih else acc_i.astype(cdt)
    gbh = None if not saved.has_b_hh else acc_h.astype(cdt)
    perm = saved.perm
    if perm is not None:
        def unperm(g):
            if g is None:
                return None
            r = np.empty_like(g)
            r[perm] = g
            return r
        gwi, gwh, gbi, gbh = unperm(gwi), unperm(gwh), unperm(gbi), unperm(gbh)
    return gx, gh0, dc, (gwi, gwh, gbi, gbh)


def _bwd_finish(saved, gx, gh0, gc0, rest, kind):
    rdt = saved.rdt
    if gx is not None and saved.batch_first:
        gx = gx.transpose(1, 0, 2)
    out = [None if gx is None else np.ascontiguousarray(gx, dtype=rdt),
           _ret(gh0, rdt) if saved.has_h0 else None]
    if kind == "lstm":
        out.append(_ret(gc0, rdt) if saved.has_c0 else None)
    gwi, gwh, gbi, gbh = rest
    out += [_ret(gwi, rdt), _ret(gwh, rdt), None if gbi is None else _ret(gbi, rdt),
            None if gbh is None else _ret(gbh, rdt)]
    return tuple(out)


def rnn_backward(grad_output, grad_h_n, saved):
    """Backpropagation through time of :func:`rnn`.

    Parameters
    ----------
    grad_output : array_like or None, shape of the forward's ``output``
        Gradient with respect to ``output``; ``None`` for zero.
    grad_h_n : array_like or None, shape (N, hidden_size)
        Gradient with respect to ``h_n``; ``None`` for zero.
    saved : RecurrentSaved
        The ``saved`` of ``rnn(..., return_saved=True)``.

    Returns
    -------
    grads : tuple
        ``(grad_x, grad_h0, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh)``;
        ``grad_h0`` is ``None`` when the forward's ``h0`` was, a bias
        gradient when that bias was.

    Notes
    -----
    Backpropagation through time: only ``dh_{t-1} = dG_t W_hh`` is sequential
    (one GEMM per step); the weight, bias and input gradients are then dense
    backward GEMMs over all ``T*N`` rows (bias sums in float64).

    Examples
    --------
    >>> import numpy as np, mlkern
    >>> x = np.ones((1, 1, 1)); w = np.array([[1.0]])
    >>> out, h_n, s = mlkern.layers.rnn(x, None, w, w, nonlinearity="relu", return_saved=True)
    >>> gx, gh0, gwi, gwh, gbi, gbh = mlkern.layers.rnn_backward(None, np.ones((1, 1)), s)
    >>> gx.tolist(), gh0, gwi.tolist(), gbi
    ([[[1.0]]], None, [[1.0]], None)
    """
    go, gh = _bwd_grads("rnn_backward", "rnn", saved,
                        (("grad_output", grad_output), ("grad_h_n", grad_h_n)))
    gx, gh0, _, rest = _rec_backward(saved, go, gh, None)
    return _bwd_finish(saved, gx, gh0, None, rest, "rnn")


def lstm_backward(grad_output, grad_h_n, grad_c_n, saved):
    """Backpropagation through time of :func:`lstm`.

    Parameters
    ----------
    grad_output : array_like or None, shape of the forward's ``output``
        ``None`` for zero.
    grad_h_n : array_like or None, shape (N, hidden_size)
    grad_c_n : array_like or None, shape (N, hidden_size)
        Gradients with respect to ``h_n`` and ``c_n``; ``None`` for zero.
    saved : RecurrentSaved
        The ``saved`` of ``lstm(..., return_saved=True)``.

    Returns
    -------
    grads : tuple
        ``(grad_x, grad_h0, grad_c0, grad_w_ih, grad_w_hh, grad_b_ih,
        grad_b_hh)``; ``grad_h0``/``grad_c0`` are ``None`` when the forward's
        ``h0``/``c0`` were, a bias gradient when that bias was.

    Notes
    -----
    Backpropagation through time: per step the gate gradients from the saved
    activations (``i(1-i)``, ``1-g^2``, ...) and ``dh_{t-1} = dG_t W_hh`` (one
    GEMM); then the weight, bias and input gradients are dense backward GEMMs
    over all ``T*N`` rows.

    Examples
    --------
    >>> import numpy as np, mlkern
    >>> x = np.zeros((1, 1, 1)); w = np.zeros((4, 1))
    >>> out, (h, c), s = mlkern.layers.lstm(x, None, np.ones((1, 1)), w, w, return_saved=True)
    >>> g = mlkern.layers.lstm_backward(None, None, np.ones((1, 1)), s)
    >>> g[2].tolist(), g[1]
    ([[0.5]], None)
    """
    go, gh, gc = _bwd_grads("lstm_backward", "lstm", saved,
                            (("grad_output", grad_output), ("grad_h_n", grad_h_n),
                             ("grad_c_n", grad_c_n)))
    gx, gh0, gc0, rest = _rec_backward(saved, go, gh, gc)
    return _bwd_finish(saved, gx, gh0, gc0, rest, "lstm")


def gru_backward(grad_output, grad_h_n, saved):
    """Backpropagation through time of :func:`gru`.

    Parameters
    ----------
    grad_output : array_like or None, shape of the forward's ``output``
        ``None`` for zero.
    grad_h_n : array_like or None, shape (N, hidden_size)
        ``None`` for zero.
    saved : RecurrentSaved
        The ``saved`` of ``gru(..., return_saved=True)``.

    Returns
    -------
    grads : tuple
        ``(grad_x, grad_h0, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh)``;
        ``grad_h0`` is ``None`` when the forward's ``h0`` was, a bias
        gradient when that bias was.

    Notes
    -----
    Backpropagation through time: per step the gate gradients (the
    recurrent part of n scaled by r) and ``dh_{t-1} = z dh + dG^h_t W_hh``; then
    the weight, bias and input gradients are dense backward GEMMs over all
    ``T*N`` rows.

    Examples
    --------
    >>> import numpy as np, mlkern
    >>> x = np.zeros((1, 1, 1)); w = np.zeros((3, 1))
    >>> out, h_n, s = mlkern.layers.gru(x, np.ones((1, 1)), w, w, return_saved=True)
    >>> g = mlkern.layers.gru_backward(None, np.ones((1, 1)), s)
    >>> g[1].tolist()
    [[0.5]]
    """
    go, gh = _bwd_grads("gru_backward", "gru", saved,
                        (("grad_output", grad_output), ("grad_h_n", grad_h_n)))
    gx, gh0, _, rest = _rec_backward(saved, go, gh, None)
    return _bwd_finish(saved, gx, gh0, None, rest, "gru")


# ---------------------------------------------------------------- pooling (issue 15)
# Design notes.  One C kernel family (_c/mlk_pool_tmpl.h, per SIMD level)
# for 1-D and 2-D (1-D is H = 1), NCHW and NHWC; x is viewed as 4-D.
# * max, NCHW, no indices: separable -- each input row reduced over the
#   column taps (strided loads), then kh such rows per output row
#   (contiguous, vectorised); the order equals the row-major order of the
#   window, so ties and +-0 resolve as PyTorch.  With indices: a direct
#   window scan per output.  NHWC: each window's taps are C-contiguous
#   vectors (vectorised over the channels).
# * average: the same separable sums (NCHW, one division per output as
#   PyTorch) or channel vectors (NHWC: one reciprocal of the divisor per
#   output pixel and C multiplies -- a vector division per C-vector cost more
#   than the nine additions; within an ulp of the division); with kernel 3
#   and stride 2 along W the interior columns' row sums are shared between
#   neighbouring windows.  The divisor is a product of a row and a column
#   factor.  Open: NHWC average (f32) measured ~1.7x slower than NHWC max
#   and below PyTorch channels_last at T=1 (benchmarks/pool_bars.py).
# * NHWC order: each window's taps as C-vectors, 32 channels at a time
#   (gcc vectorises the NaN-propagating blend at that width).  The other
#   order -- the window's rows reduced into a row buffer first, then the
#   columns -- is kept behind _kernels.set_pool_variant(1) for measurements:
#   at (32, 112, 112, 64), k3 s2 p1, T=1 (load average 11) it measured
#   max 30.9 vs 32.9 ms (f32), 71.5 vs 84.8 (f64) and avg 25.7 vs 21.9
#   (f32), 78.8 vs 76.1 (f64) against the direct order: within the noise of
#   the loaded machine, so the direct order stays the default.
# * backward: a work unit owns whole (n, c) planes (NCHW) or (image, channel
#   block) slices (NHWC) of grad_x, zeroes them and scatter-adds into them
#   in output order: bitwise identical for any thread count.
# * dtypes: float32/float64 kept, float16 computes in float32, integer and
#   bool x compute in float64 (the convention for every function: pooling
#   has no weight whose dtype an integer x could take).
__all__ += ["max_pool1d", "max_pool2d", "max_pool1d_backward", "max_pool2d_backward",
            "avg_pool1d", "avg_pool2d", "avg_pool1d_backward", "avg_pool2d_backward"]

from ._validation import (as4, check_flag, check_shape_arg,  # noqa: E402
                          layout_shape, pool_out_shape, pool_params, spatial_input, spatial_shape)

_POOL_OPS = {("max", False): 0, ("max", True): 1, ("avg", False): 2, ("avg", True): 3,
             ("maxb", False): 4, ("maxb", True): 5, ("avgb", False): 6, ("avgb", True): 7}


def _geom(sp, osp, k, s, p, d):
    """The kernel's (H, W, OH, OW, kh, kw, sh, sw, ph, pw, dh, dw); 1-D is H = 1."""
    if len(sp) == 1:
        return (1, sp[0], 1, osp[0], 1, k[0], 1, s[0], 0, p[0], 1, d[0])
    return (sp[0], sp[1], osp[0], osp[1], k[0], k[1], s[0], s[1], p[0], p[1], d[0], d[1])


def _pool_fwd(kind, fname, nsp, x, kernel_size, stride, padding, dilation, ceil_mode,
              count_include_pad, return_indices, layout, out):
    if any_dask(x):
        from . import _dask
        f = globals()[fname]
        kw = dict(kernel_size=kernel_size, stride=stride, padding=padding, ceil_mode=ceil_mode,
                  layout=layout)
        if kind == "max":
            kw.update(dilation=dilation, return_indices=return_indices)
        else:
            kw.update(count_include_pad=count_include_pad)
        return _dask.spatial_layer(fname, f, x, (), kw, nsp, out)
    last = check_layout(layout, nsp)
    k, s, p, d, ceil_mode = pool_params(nsp, kernel_size, stride, padding, dilation, ceil_mode)
    cip = check_flag(count_include_pad, "count_include_pad")
    ri = check_flag(return_indices, "return_indices")
    xa = np.asarray(x)
    cdt, rdt = layer_dtype((("x", xa),))
    batched, N, C, sp, xc = spatial_input(xa, "x", nsp, last, cdt, fname)
    osp = pool_out_shape(fname, sp, k, s, p, d, ceil_mode)
    shape = layout_shape(batched, N, C, osp, last)
    y = None
    if out is not None:
        y = layer_out(out, shape, rdt, cdt, xa, xc)
    if y is None:
        y = np.empty(shape, cdt)
    idx = np.empty(shape, np.int64) if ri else None
    _ew.pool_raw(_POOL_OPS[kind, last], as4(xc, nsp, last), as4(y, nsp, last),
                 None if idx is None else as4(idx, nsp, last), _geom(sp, osp, k, s, p, d), cip)
    if out is not None:
        if y is not out:
            np.copyto(out, y, casting="unsafe")
        y = out
    elif y.dtype != rdt:
        y = y.astype(rdt)
    return (y, idx) if ri else y


def _grad_in(fname, grad_output, input_shape, nsp, last):
    """grad_output as C-contiguous compute-dtype array, the dtypes, the
    checked input_shape and its (batched, N, C, spatial)."""
    ga = np.asarray(grad_output)
    cdt, rdt = layer_dtype((("grad_output", ga),))
    ishape = check_shape_arg(input_shape, "input_shape", nsp)
    info = spatial_shape(ishape, nsp, last)
    if ga.ndim != len(ishape):
        raise ValueError(f"{fname}: grad_output must have {len(ishape)} dimensions as input_shape "
                         f"{ishape}, got shape {ga.shape}")
    return ga, cdt, rdt, ishape, info


def _grad_out(gi, rdt):
    return gi if gi.dtype == rdt else gi.astype(rdt)


def _max_pool_bwd(fname, nsp, grad_output, indices, input_shape, layout):
    _no_dask(fname, grad_output, indices)
    last = check_layout(layout, nsp)
    ga, cdt, rdt, ishape, (batched, N, C, sp) = _grad_in(fname, grad_output, input_shape, nsp, last)
    gb, gN, gC, gsp = spatial_shape(ga.shape, nsp, last)
    if (gN, gC) != (N, C):
        raise ValueError(f"{fname}: grad_output of shape {ga.shape} does not match input_shape "
                         f"{ishape} in its batch or channel size (layout {layout!r})")
    idx = check_indices(indices)
    if idx.shape != ga.shape:
        raise ValueError(f"{fname}: indices must have the shape of grad_output {ga.shape}, "
                         f"got {idx.shape}")
    P = int(np.prod(sp, dtype=np.int64))
    check_index_range(idx, P, "indices", "the input plane size")
    gc = layer_array(ga, cdt)
    gi = np.empty(ishape, cdt)
    osp = tuple(gsp)
    one = (1,) * nsp
    _ew.pool_raw(_POOL_OPS["maxb", last], as4(gc, nsp, last), as4(gi, nsp, last),
                 as4(idx, nsp, last), _geom(sp, osp, one, one, (0,) * nsp, one), False)
    return _grad_out(gi, rdt)


def _avg_pool_bwd(fname, nsp, grad_output, input_shape, kernel_size, stride, padding, ceil_mode,
                  count_include_pad, layout):
    _no_dask(fname, grad_output)
    last = check_layout(layout, nsp)
    k, s, p, d, ceil_mode = pool_params(nsp, kernel_size, stride, padding, 1, ceil_mode)
    cip = check_flag(count_include_pad, "count_include_pad")
    ga, cdt, rdt, ishape, (batched, N, C, sp) = _grad_in(fname, grad_output, input_shape, nsp, last)
    osp = pool_out_shape(fname, sp, k, s, p, d, ceil_mode)
    shape = layout_shape(batched, N, C, osp, last)
    if ga.shape != shape:
        raise ValueError(f"{fname}: grad_output must have shape {shape} (the output of input_shape "
                         f"{ishape} with these arguments), got {ga.shape}")
    gc = layer_array(ga, cdt)
    gi = np.empty(ishape, cdt)
    _ew.pool_raw(_POOL_OPS["avgb", last], as4(gc, nsp, last), as4(gi, nsp, last), None,
                 _geom(sp, osp, k, s, p, d), cip)
    return _grad_out(gi, rdt)


_POOL_DOC = """
    Parameters
    ----------
    x : array_like, shape {shape}
        Input in the given ``layout`` (the batch axis may be left out).
        float32/float64 kept; float16 computes in float32 and returns
        float16; integer and bool input computes in float64.
    kernel_size : int or tuple of {nsp} ints
    stride : int or tuple, optional
        Default (``None``): ``kernel_size``.
    padding : int or tuple, default 0
        Implicit padding on both sides, at most half the kernel size.{dil}
    ceil_mode : bool, default False
        Round the output size up (a window that would start in the right
        padding is dropped, as PyTorch).{extra}
    layout : {{{lays}}}
        ``{lay0}`` (PyTorch, default) or ``{lay1}`` (channels last).
    out : ndarray, optional
        Result array (the values), shape and dtype of the result.
"""


def _pool_doc(fn, nsp, kind):
    lays = ("NCL", "NLC") if nsp == 1 else ("NCHW", "NHWC")
    shape = "(N, C, L) or (N, L, C)" if nsp == 1 else "(N, C, H, W) or (N, H, W, C)"
    dil = ("\n    dilation : int or tuple, default 1\n        Spacing of the taps of a window."
           if kind == "max" else "")
    extra = ("\n    return_indices : bool, default False\n        Also return the int64 index "
             "of each maximum: its flat position\n        " +
             ("``l``" if nsp == 1 else "``h * W + w``") + " inside its (n, c) plane, as PyTorch."
             if kind == "max" else
             "\n    count_include_pad : bool, default True\n        Count the padding in the "
             "divisor (the ceil_mode overhang beyond\n        the padding is never counted), "
             "as PyTorch.")
    fn.__doc__ = fn.__doc__.replace("{params}", _POOL_DOC.format(
        shape=shape, nsp=nsp, dil=dil, extra=extra, lays=", ".join(repr(v) for v in lays),
        lay0=lays[0], lay1=lays[1]).strip("\n"))
    return fn


def max_pool1d(x, kernel_size, stride=None, padding=0, dilation=1, *, ceil_mode=False,
               return_indices=False, layout="NCL", out=None):
    """1-D max pooling, as ``torch.nn.functional.max_pool1d``.

{params}

    Returns
    -------
    y : ndarray
        The maxima, shape (N, C, L_out) (or (N, L_out, C)); NaN in a window
        gives NaN.
    indices : ndarray of int64
        With ``return_indices=True``: shaped like ``y``.

    Notes
    -----
    The 2-D kernel with a height of 1 (see :func:`max_pool2d`).

    Examples
    --------
    >>> import numpy as np, mlkern
    >>> x = np.array([[[1.0, 3.0, 2.0, 5.0, 4.0]]])
    >>> y, i = mlkern.layers.max_pool1d(x, 2, return_indices=True)
    >>> y.tolist(), i.tolist()
    ([[[3.0, 5.0]]], [[[1, 3]]])
    """
    return _pool_fwd("max", "max_pool1d", 1, x, kernel_size, stride, padding, dilation,
                     ceil_mode, True, return_indices, layout, out)


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, *, ceil_mode=False,
               return_indices=False, layout="NCHW", out=None):
    """2-D max pooling, as ``torch.nn.functional.max_pool2d``.

{params}

    Returns
    -------
    y : ndarray
        The maxima, shape (N, C, H_out, W_out) (or (N, H_out, W_out, C));
        NaN in a window gives NaN.
    indices : ndarray of int64
        With ``return_indices=True``: shaped like ``y``.

    Notes
    -----
    Without indices (NCHW) the window is reduced along W first, then along
    H (vectorised across the output columns); channels last reduces
    C-contiguous vectors.  Comparisons are ``v > m or isnan(v)`` from the
    first in-bounds tap.

    Examples
    --------
    >>> import numpy as np, mlkern
    >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
    >>> mlkern.layers.max_pool2d(x, 2).tolist()
    [[[[5.0, 7.0], [13.0, 15.0]]]]
    """
    return _pool_fwd("max", "max_pool2d", 2, x, kernel_size, stride, padding, dilation,
                     ceil_mode, True, return_indices, layout, out)


def avg_pool1d(x, kernel_size, stride=None, padding=0, *, ceil_mode=False, count_include_pad=True,
               layout="NCL", out=None):
    """1-D average pooling, as ``torch.nn.functional.avg_pool1d``.

{params}

    Returns
    -------
    ndarray, shape (N, C, L_out) (or (N, L_out, C))

    Notes
    -----
    The 2-D kernel with a height of 1 (see :func:`avg_pool2d`).

    Examples
    --------
    >>> import numpy as np, mlkern
    >>> mlkern.layers.avg_pool1d(np.array([[[1.0, 3.0, 2.0, 6.0]]]), 2).tolist()
    [[[2.0, 4.0]]]
    """
    return _pool_fwd("avg", "avg_pool1d", 1, x, kernel_size, stride, padding, 1, ceil_mode,
                     count_include_pad, False, layout, out)


def avg_pool2d(x, kernel_size, stride=None, padding=0, *, ceil_mode=False, count_include_pad=True,
               layout="NCHW", out=None):
    """2-D average pooling, as ``torch.nn.functional.avg_pool2d``.

{params}

    Returns
    -------
    ndarray, shape (N, C, H_out, W_out) (or (N, H_out, W_out, C))

    Notes
    -----
    The sum of the in-bounds elements over the divisor: the window clipped
    to the padded input (``count_include_pad=True``) or its in-bounds
    elements.

    Examples
    --------
    >>> import numpy as np, mlkern
    >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
    >>> mlkern.layers.avg_pool2d(x, 2).tolist()
    [[[[2.5, 4.5], [10.5, 12.5]]]]
    """
    return _pool_fwd("avg", "avg_pool2d", 2, x, kernel_size, stride, padding, 1, ceil_mode,
                     count_include_pad, False, layout, out)


for _f, _n, _k in ((max_pool1d, 1, "max"), (max_pool2d, 2, "max"), (avg_pool1d, 1, "avg"),
                   (avg_pool2d, 2, "avg")):
    _pool_doc(_f, _n, _k)


def max_pool1d_backward(grad_output, indices, input_shape, *, layout="NCL"):
    """Backward of :func:`max_pool1d`: the gradient of ``x``.

    Parameters
    ----------
    grad_output : array_like, shape (N, C, L_out) (or (N, L_out, C))
    indices : array_like of int
        The forward's ``indices`` (any integer dtype), each in ``[0, L)``.
    input_shape : tuple of ints
        The forward input's shape (in the layout).
    layout : {'NCL', 'NLC'}

    Returns
    -------
    ndarray, shape input_shape
        ``grad_output`` scattered to the argmax positions, accumulated where
        windows overlap; bitwise identical for any thread count.

    Notes
    -----
    Each (n, c) row (or image channel block, channels last) of the result
    is owned by one thread, which adds in output order.  The indices are
    checked in range first (``ValueError`` naming ``indices``).

    Examples
    --------
    >>> import numpy as np, mlkern
    >>> mlkern.layers.max_pool1d_backward(np.array([[[1.0, 2.0]]]), np.array([[[1, 1]]]),
    ...                                   (1, 1, 3)).tolist()
    [[[0.0, 3.0, 0.0]]]
    """
    return _max_pool_bwd("max_pool1d_backward", 1, grad_output, indices, input_shape, layout)


def max_pool2d_backward(grad_output, indices, input_shape, *, layout="NCHW"):
    """Backward of :func:`max_pool2d`: the gradient of ``x``.

    Parameters
    ----------
    grad_output : array_like, shape (N, C, H_out, W_out) (or (N, H_out, W_out, C))
    indices : array_like of int
        The forward's ``indices`` (any integer dtype), each the flat
        position ``h * W + w`` in ``[0, H W)``.
    input_shape : tuple of ints
        The forward input's shape (in the layout).
    layout : {'NCHW', 'NHWC'}

    Returns
    -------
    ndarray, shape input_shape
        ``grad_output`` scattered to the argmax positions, accumulated where
        windows overlap, in output order by the one thread that owns the
        plane (NCHW) or the image's channel block (NHWC): bitwise identical
        for any thread count.

    Notes
    -----
    The indices are checked in range first (``ValueError`` naming
    ``indices``).

    Examples
    --------
    >>> import numpy as np, mlkern
    >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
    >>> y, i = mlkern.layers.max_pool2d(x, 2, return_indices=True)
    >>> mlkern.layers.max_pool2d_backward(np.ones_like(y), i, x.shape)[0, 0].tolist()
    [[0.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 1.0], [0.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 1.0]]
    """
    return _max_pool_bwd("max_pool2d_backward", 2, grad_output, indices, input_shape, layout)


def avg_pool1d_backward(grad_output, input_shape, kernel_size, stride=None, padding=0, *,
                        ceil_mode=False, count_include_pad=True, layout="NCL"):
    """Backward of :func:`avg_pool1d`: the gradient of ``x``.

    Parameters
    ----------
    grad_output : array_like, shape (N, C, L_out) (or (N, L_out, C))
    input_shape : tuple of ints
        The forward input's shape (in the layout).
    kernel_size : int or tuple of ints
    stride : int or tuple, optional
    padding : int or tuple, default 0
    ceil_mode : bool, default False
    count_include_pad : bool, default True
    layout : str
        As in the forward call.

    Returns
    -------
    ndarray, shape input_shape

    Notes
    -----
    Each output's gradient over its divisor, added to its window's
    in-bounds elements (one thread per (n, c) row: bitwise identical for
    any thread count).

    Examples
    --------
    >>> import numpy as np, mlkern
    >>> mlkern.layers.avg_pool1d_backward(np.array([[[2.0, 4.0]]]), (1, 1, 4), 2).tolist()
    [[[1.0, 1.0, 2.0, 2.0]]]
    """
    return _avg_pool_bwd("avg_pool1d_backward", 1, grad_output, input_shape, kernel_size, stride,
                         padding, ceil_mode, count_include_pad, layout)


def avg_pool2d_backward(grad_output, input_shape, kernel_size, stride=None, padding=0, *,
                        ceil_mode=False, count_include_pad=True, layout="NCHW"):
    """Backward of :func:`avg_pool2d`: the gradient of ``x``.

    Parameters
    ----------
    grad_output : array_like, shape (N, C, H_out, W_out) (or (N, H_out, W_out, C))
    input_shape : tuple of ints
        The forward input's shape (in the layout).
    kernel_size : int or tuple of ints
    stride : int or tuple, optional
    padding : int or tuple, default 0
    ceil_mode : bool, default False
    count_include_pad : bool, default True
    layout : str
        As in the forward call.

    Returns
    -------
    ndarray, shape input_shape
        Each output's gradient over its divisor, added to the window's
        in-bounds elements (in output order, one thread per plane or image
        channel block: bitwise identical for any thread count).

    Notes
    -----
    The scatter of ``grad_output / divisor`` over each window, PyTorch's
    ``avg_pool2d`` backward.

    Examples
    --------
    >>> import numpy as np, mlkern
    >>> g = mlkern.layers.avg_pool2d_backward(np.ones((1, 1, 1, 1)), (1, 1, 2, 2), 2)
    >>> g.tolist()
    [[[[0.25, 0.25], [0.25, 0.25]]]]
    """
    return _avg_pool_bwd("avg_pool2d_backward", 2, grad_output, input_shape, kernel_size, stride,
                         padding, ceil_mode, count_include_pad, layout)


# ---------------------------------------------------------------- locally connected (issue 15)
# Design notes.  Unshared weights: per output position p one GEMM
# Y_p (N, C_out) = P_p (N, C_in k) W_p^T + b_p over the patches P_p gathered
# into a per-thread buffer (_local.pxi).  The positions are the work units
# (one thread's GEMMs have the same shapes for any team size: bitwise
# identical results).  Backward: grad_W_p = G_p^T P_p and grad_b_p per
# position; grad_x by image blocks (their number fixed by N alone), each
# block adding G_p W_p into its own images in position order -- race-free
# where windows overlap (stride < kernel) and bitwise identical for any
# thread count.  Measured against a direct loop: the per-position GEMM
# needs N C_out C_in k multiply-adds either way, and OpenBLAS runs them at
# its kernel rate once N and C_out are a few dozen.
__all__ += ["locally_connected1d", "locally_connected2d",
            "locally_connected1d_backward", "locally_connected2d_backward"]

from ._validation import spatial_arg  # noqa: E402


def _lc_prep(fname, nsp, x, weight, bias, stride, layout, extra=()):
    last = check_layout(layout, nsp)
    xa = np.asarray(x)
    wa = np.asarray(weight)
    ba = None if bias is None else np.asarray(bias)
    cdt, rdt = layer_dtype((("x", xa), ("weight", wa), ("bias", ba)) + tuple(extra))
    s = spatial_arg(stride, "stride", nsp, 1)
    if xa.ndim != nsp + 2:
        lay = ("NCL", "NLC", "NCHW", "NHWC")[2 * (nsp - 1) + int(last)]
        raise ValueError(f"{fname}: x must be {nsp + 2}-D ({lay}), got shape {xa.shape}")
    wdesc = "(L_out, C_out, C_in, K)" if nsp == 1 else "(H_out, W_out, C_out, C_in, kH, kW)"
    if wa.ndim != 2 * nsp + 2:
        raise ValueError(f"{fname}: weight must be {2 * nsp + 2}-D {wdesc}, got shape {wa.shape}")
    _, N, C, sp = spatial_shape(xa.shape, nsp, last)
    osp, Co, Cw, ks = wa.shape[:nsp], wa.shape[nsp], wa.shape[nsp + 1], wa.shape[nsp + 2:]
    if Cw != C:
        raise ValueError(f"{fname}: x and weight: x has {C} channels (shape {xa.shape}, layout "
                         f"{layout!r}), weight expects {Cw} (shape {wa.shape} = {wdesc})")
    want = []
    for i in range(nsp):
        if ks[i] < 1 or sp[i] < ks[i]:
            raise ValueError(f"{fname}: weight: kernel size {tuple(ks)} does not fit the input size "
                             f"{tuple(sp)} (weight shape {wa.shape} = {wdesc})")
        want.append((sp[i] - ks[i]) // s[i] + 1)
    if tuple(osp) != tuple(want):
        raise ValueError(f"{fname}: weight: its output size {tuple(osp)} does not match the input: "
                         f"{tuple(want)} = (size - kernel) // stride + 1 for input size {tuple(sp)}, "
                         f"kernel {tuple(ks)}, stride {s} (weight shape {wa.shape} = {wdesc})")
    if ba is not None and ba.shape != tuple(osp) + (Co,):
        raise ValueError(f"{fname}: bias must have shape {tuple(osp) + (Co,)} (output size + (C_out,)), "
                         f"got {ba.shape}")
    shape = layout_shape(True, N, Co, osp, last)
    P = int(np.prod(osp))
    CK = C * int(np.prod(ks))
    if nsp == 1:
        geom = (1, osp[0], 1, ks[0], 1, s[0])
    else:
        geom = (osp[0], osp[1], ks[0], ks[1], s[0], s[1])
    return xa, wa, ba, cdt, rdt, last, shape, (N, Co, P, CK), geom


def _lc_forward(fname, nsp, x, weight, bias, stride, layout, out):
    if any_dask(x, weight, bias):
        from . import _dask
        return _dask.spatial_layer(fname, globals()[fname], x, (weight, bias),
                                   dict(stride=stride, layout=layout), nsp, out)
    xa, wa, ba, cdt, rdt, last, shape, (N, Co, P, CK), geom = _lc_prep(fname, nsp, x, weight, bias,
                                                                        stride, layout)
    xc = layer_array(xa, cdt)
    wc = layer_array(wa, cdt)
    bc = None if ba is None else layer_array(ba, cdt)
    y = None
    if out is not None:
        y = layer_out(out, shape, rdt, cdt, xa, wa, ba, xc, wc, bc)
    if y is None:
        y = np.empty(shape, cdt)
    if y.size:
        _ew.lc_raw(as4(xc, nsp, last), wc.reshape(P, Co, CK), None if bc is None else bc.reshape(P, Co),
                   as4(y, nsp, last), None, None, None, None, geom, last)
    if out is not None:
        if y is not out:
            np.copyto(out, y, casting="unsafe")
        y = out
    elif y.dtype != rdt:
        y = y.astype(rdt)
    return y


def _lc_backward(fname, nsp, grad_output, x, weight, has_bias, stride, layout, needs_input_grad):
    _no_dask(fname, grad_output, x, weight)
    ga = np.asarray(grad_output)
    xa, wa, _, cdt, rdt, last, shape, (N, Co, P, CK), geom = _lc_prep(
        fname, nsp, x, weight, None, stride, layout, (("grad_output", ga),))
    if ga.shape != shape:
        raise ValueError(f"{fname}: grad_output must have shape {shape} (the layer's output), "
                         f"got {ga.shape}")
    gw = np.zeros(wa.shape, cdt) if N == 0 else np.empty(wa.shape, cdt)
    gb = None
    if has_bias:
        gb = np.zeros(wa.shape[:nsp + 1], cdt) if N == 0 else np.empty(wa.shape[:nsp + 1], cdt)
    gx = None
    if needs_input_grad:
        gx = np.zeros(xa.shape, cdt) if Co == 0 else np.empty(xa.shape, cdt)
    if N and Co:
        xc = layer_array(xa, cdt)
        _ew.lc_raw(as4(xc, nsp, last), layer_array(wa, cdt).reshape(P, Co, CK), None, None,
                   as4(layer_array(ga, cdt), nsp, last), None if gx is None else as4(gx, nsp, last),
                   gw.reshape(P, Co, CK), None if gb is None else gb.reshape(P, Co), geom, last)
    if rdt != cdt:
        gw = gw.astype(rdt)
        gb = None if gb is None else gb.astype(rdt)
        gx = None if gx is None else gx.astype(rdt)
    return gx, gw, gb


def locally_connected1d(x, weight, bias=None, *, stride=1, layout="NCL", out=None):
    """1-D locally connected layer (Keras ``LocallyConnected1D``, "valid" padding).

    Parameters
    ----------
    x : array_like, shape (N, C_in, L) (or (N, L, C_in) with ``layout="NLC"``)
        Integer input takes the weight's float dtype.
    weight : array_like, shape (L_out, C_out, C_in, K)
        One (C_out, C_in, K) filter per output position (unshared weights).
    bias : array_like, shape (L_out, C_out), optional
    stride : int or 1-tuple, default 1
    layout : {'NCL', 'NLC'}
    out : ndarray, optional
        Result array, shape (N, C_out, L_out) (or (N, L_out, C_out)).

    Returns
    -------
    ndarray, shape (N, C_out, L_out) (or (N, L_out, C_out))
        ``y[n, o, l] = sum_{c,k} weight[l, o, c, k] x[n, c, l*stride + k] + bias[l, o]``,
        ``L_out = (L - K) // stride + 1``.

    Notes
    -----
    One OpenBLAS GEMM per output position over the gathered input patches;
    the positions are shared out among mlkern's threads.

    Examples
    --------
    >>> import numpy as np, mlkern
    >>> x = np.array([[[1.0, 2.0, 3.0]]])
    >>> w = np.array([[[[1.0, 1.0]]], [[[2.0, -1.0]]]])      # (L_out=2, C_out=1, C_in=1, K=2)
    >>> mlkern.layers.locally_connected1d(x, w).tolist()
    [[[3.0, 1.0]]]
    """
    return _lc_forward("locally_connected1d", 1, x, weight, bias, stride, layout, out)


def locally_connected2d(x, weight, bias=None, *, stride=1, layout="NCHW", out=None):
    """2-D locally connected layer (Keras ``LocallyConnected2D``, "valid" padding).

    Parameters
    ----------
    x : array_like, shape (N, C_in, H, W) (or (N, H, W, C_in) with ``layout="NHWC"``)
        Integer input takes the weight's float dtype.
    weight : array_like, shape (H_out, W_out, C_out, C_in, kH, kW)
        One filter per output position.
    bias : array_like, shape (H_out, W_out, C_out), optional
    stride : int or tuple of 2 ints, default 1
    layout : {'NCHW', 'NHWC'}
    out : ndarray, optional
        Result array, shape (N, C_out, H_out, W_out) (or (N, H_out, W_out, C_out)).

    Returns
    -------
    ndarray, shape (N, C_out, H_out, W_out) (or (N, H_out, W_out, C_out))
        ``y[n, o, h, w] = sum_{c,i,j} weight[h, w, o, c, i, j]
        x[n, c, h*sh + i, w*sw + j] + bias[h, w, o]``,
        ``H_out = (H - kH) // sh + 1`` (and W likewise).

    Notes
    -----
    One OpenBLAS GEMM per output position over the gathered input patches
    (the patch columns in the weight's (c, i, j) order).

    Examples
    --------
    >>> import numpy as np, mlkern
    >>> x = np.arange(9.0).reshape(1, 1, 3, 3)
    >>> w = np.ones((2, 2, 1, 1, 2, 2))
    >>> mlkern.layers.locally_connected2d(x, w).tolist()
    [[[[8.0, 12.0], [20.0, 24.0]]]]
    """
    return _lc_forward("locally_connected2d", 2, x, weight, bias, stride, layout, out)


def locally_connected1d_backward(grad_output, x, weight, *, has_bias=True, stride=1, layout="NCL",
                                 needs_input_grad=True):
    """Backward of :func:`locally_connected1d`: ``(grad_x, grad_weight, grad_bias)``.

    Parameters
    ----------
    grad_output : array_like, shape (N, C_out, L_out) (or (N, L_out, C_out))
    x : array_like
        The forward input.
    weight : array_like, shape (L_out, C_out, C_in, K)
    has_bias : bool, default True
        Whether the forward had a bias (else ``grad_bias`` is ``None``).
    stride : int or 1-tuple, default 1
    layout : {'NCL', 'NLC'}
    needs_input_grad : bool, default True
        ``False`` skips ``grad_x`` (``None``).

    Returns
    -------
    grad_x : ndarray or None
        Shape of ``x``.
    grad_weight : ndarray
        Shape of ``weight``.
    grad_bias : ndarray or None
        Shape (L_out, C_out).

    Notes
    -----
    Per position ``grad_W_p = G_p^T P_p`` and ``grad_b_p`` (float64 sums in
    image order); ``grad_x`` by image blocks adding ``G_p W_p`` in position
    order (overlapping windows accumulate race-free): bitwise identical for
    any thread count.

    Examples
    --------
    >>> import numpy as np, mlkern
    >>> x = np.array([[[1.0, 2.0, 3.0]]]); w = np.ones((2, 1, 1, 2))
    >>> gx, gw, gb = mlkern.layers.locally_connected1d_backward(np.ones((1, 1, 2)), x, w)
    >>> gx.tolist(), gw[:, 0, 0].tolist(), gb.tolist()
    ([[[1.0, 2.0, 1.0]]], [[1.0, 2.0], [2.0, 3.0]], [[1.0], [1.0]])
    """
    return _lc_backward("locally_connected1d_backward", 1, grad_output, x, weight, has_bias, stride,
                        layout, needs_input_grad)


def locally_connected2d_backward(grad_output, x, weight, *, has_bias=True, stride=1, layout="NCHW",
                                 needs_input_grad=True):
    """Backward of :func:`locally_connected2d`: ``(grad_x, grad_weight, grad_bias)``.

    Parameters
    ----------
    grad_output : array_like, shape (N, C_out, H_out, W_out) (or (N, H_out, W_out, C_out))
    x : array_like
        The forward input.
    weight : array_like, shape (H_out, W_out, C_out, C_in, kH, kW)
    has_bias : bool, default True
        Whether the forward had a bias (else ``grad_bias`` is ``None``).
    stride : int or tuple of 2 ints, default 1
    layout : {'NCHW', 'NHWC'}
    needs_input_grad : bool, default True
        ``False`` skips ``grad_x`` (``None``).

    Returns
    -------
    grad_x : ndarray or None
        Shape of ``x``.
    grad_weight : ndarray
        Shape of ``weight``.
    grad_bias : ndarray or None
        Shape (H_out, W_out, C_out).

    Notes
    -----
    As :func:`locally_connected1d_backward`, per output position (h, w).

    Examples
    --------
    >>> import numpy as np, mlkern
    >>> x = np.arange(9.0).reshape(1, 1, 3, 3); w = np.ones((2, 2, 1, 1, 2, 2))
    >>> gx, gw, gb = mlkern.layers.locally_connected2d_backward(np.ones((1, 1, 2, 2)), x, w)
    >>> gx[0, 0].tolist()
    [[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]
    """
    return _lc_backward("locally_connected2d_backward", 2, grad_output, x, weight, has_bias, stride,
                        layout, needs_input_grad)
