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
from ._validation import (check_count, check_index_range, check_indices, check_padding_idx,
                          check_real, layer_array, layer_dtype, layer_out)

__all__ = ["dense", "dense_backward", "embedding", "embedding_backward"]


# ---------------------------------------------------------------- BLAS set-up
def _blas_local_address():
    """Address of openblas_set_num_threads_local in the OpenBLAS that SciPy's
    cython_blas calls, or 0 when that BLAS does not have it."""
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
                return ctypes.cast(fn, ctypes.c_void_p).value or 0
    return 0


def _setup_blas():
    from scipy.linalg import cython_blas

    capi = cython_blas.__pyx_capi__
    _ew.set_blas(capi["sgemm"], capi["dgemm"], capi["sgemv"], capi["dgemv"], _blas_local_address())


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
    ga = np.asarray(grad_output)
    xa, wa, _, cdt, rdt = _dense_args(x, weight, None, "dense_backward")
    sa = None
    if bop >= 0:
        if saved is None:
            raise ValueError(f"saved: required with activation={activation!r} (the `saved` of "
                             "dense(..., return_saved=True))")
        sa = np.asarray(saved)
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
