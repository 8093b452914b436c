"""Shared numpydoc fragments of the public docstrings, and :func:`doc`, which fills them in.

A public function writes its own docstring (summary, formula, stability
facts, Examples) and names the shared parts by field::

    @_docs.doc(saved="y")
    def sigmoid_backward(grad_output, y, *, out=None):
        \"\"\"Fused backward of ...

        Parameters
        ----------
        {grad_output}
        y : array_like
            The forward *output* ``y = sigmoid(x)``.
        {out_backward}
        ...
        \"\"\"

The fields follow ``str.format``'s spelling: ``{name}`` on a line of the
docstring is replaced by the fragment ``name`` (a keyword of the decorator,
or else an entry of :data:`FRAGMENTS`), its continuation lines indented to
the column of the ``{``; ``{{name}}`` writes a literal ``{name}``.  Only
``{identifier}`` is a field, so formulas such as ``e^{-x}`` need no escaping.
A fragment may itself hold fields (``{saved}`` in ``grad_output``), filled
from the same keywords.  An unknown field, or a keyword that no field uses,
raises at import time: nothing is patched after the fact.
"""
from __future__ import annotations

import inspect
import re
import textwrap
from collections.abc import Callable
from typing import TypeVar

_T = TypeVar("_T")

__all__ = ["FRAGMENTS", "doc", "fill"]

FRAGMENTS: dict[str, str] = {}


def _fragment(name: str, text: str) -> None:
    FRAGMENTS[name] = textwrap.dedent(text).strip("\n")


# ------------------------------------------------------------------ elementwise
_fragment("x", """
    x : array_like
        Input; float32/float64 kept, integers and bools computed in float64, float16 in float32.
    """)
_fragment("x_saved", """
    x : array_like
        The forward *input* ``x``.
    """)
_fragment("out", """
    out : ndarray, optional
        Result array (same shape and dtype as the result); may be ``x``.
    """)
_fragment("grad_output", """
    grad_output : array_like
        ``g``, the gradient with respect to the forward output; same shape as ``{saved}``
        (no broadcasting).
    """)
_fragment("out_backward", """
    out : ndarray, optional
        Result array (same shape and dtype as the result); may be ``grad_output`` or the
        saved array.
    """)
_fragment("returns_x", """
    ndarray (or NumPy scalar for 0-d input)
        Same shape as ``x``, float dtype of ``x``.
    """)
_fragment("returns_backward", """
    ndarray (or NumPy scalar for 0-d input)
        The gradient with respect to the forward input x; same shape as ``grad_output``,
        the float dtype NumPy's promotion gives the two inputs.
    """)

# ------------------------------------------------------------------ losses
_fragment("reduction_pointwise", """
    reduction : {"mean", "sum", "none"}
        "mean" divides by the number of elements (or by the summed sample
        weights, each element counting); "none" gives the per-element
        losses, weighted.
    """)
_fragment("sample_weight_leading", """
    sample_weight : array_like, optional
        One weight per index of the leading axis, broadcast over the rest.
    """)
_fragment("pred", """
    pred : array_like
        Predictions; the loss, the gradient and ``out`` have its float dtype
        (integers compute in float64, float16 in float32).
    """)
_fragment("prob", """
    prob : array_like
        Probabilities in [0, 1]; the loss, the gradient and ``out`` have its float dtype
        (integers compute in float64, float16 in float32).
    """)
_fragment("logits_pointwise", """
    logits : array_like
        Logits; the loss, the gradient and ``out`` have its float dtype
        (integers compute in float64, float16 in float32).
    """)
_fragment("target_pointwise", """
    target : array_like
        Targets, the shape of ``{p}``; converted to its dtype.
    """)
_fragment("pointwise_parameters", """
    Parameters
    ----------
    {p_param}
    {target_pointwise}
    {reduction_pointwise}
    {sample_weight_leading}
    """)
_fragment("out_pointwise", """
    out : ndarray, optional
        The gradient's array (the shape and dtype of ``{p}``); may be ``{p}``.
    """)
_fragment("pos_weight", """
    pos_weight : float or array_like, optional
        Weight of the positive term, broadcast against the logits (as
        PyTorch: typically one per class along the last axis).
    """)
_fragment("returns_loss", """
    loss : scalar or ndarray
        A NumPy scalar of the prediction's float dtype (an array for ``reduction="none"``).
    """)
_fragment("returns_with_grad", """
    loss : scalar or ndarray
        A NumPy scalar of ``{p}``'s float dtype (an array for ``reduction="none"``),
        as :func:`{loss}` returns it.
    grad : ndarray
        As :func:`{loss}_grad`.
    """)
_fragment("returns_grad", """
    grad : ndarray (or NumPy scalar for 0-d input)
        The gradient with respect to ``{p}``: its shape and float dtype
        (``out`` if given).
    """)
_fragment("pointwise_scaled", """
    Scaled by the reduction: ``1/N`` for ``"mean"`` (N elements; with sample
    weights ``1/(K sum w)``, K the elements per index of the leading axis,
    each element multiplied by its row's weight w), 1 for ``"sum"`` and
    ``"none"`` (``"none"``: the gradient of the sum of the weighted
    per-element losses).
    """)
_fragment("pointwise_pass", """
    One pass over {p} and target writes the gradient; the loss, when asked
    for, is summed in float64 in a fixed order, so it does not depend on the
    thread count.
    """)
_fragment("weight_class", """
    weight : array_like, optional
        One weight per class.
    """)
_fragment("ignore_index", """
    ignore_index : int, optional
        Label whose samples count for nothing (default -100).
    """)
_fragment("xent_parameters", """
    Parameters
    ----------
    logits : array_like
        Unnormalised scores, classes along ``axis``.
    target : array_like
        Integer class labels with the logits' shape without ``axis``, or
        probabilities with the logits' shape.
    axis : int, optional
        The class axis (default -1).
    reduction : {"mean", "sum", "none"}
        "mean" divides by the summed weights of the samples that are not
        ``ignore_index`` (as PyTorch); "none" gives one loss per sample.
    {weight_class}
    {ignore_index}
    label_smoothing : float, optional
        eps in [0, 1]: the target is (1 - eps) onehot + eps/n (PyTorch's).
    sample_weight : array_like, optional
        One weight per sample (the target's shape); it multiplies the class
        weight.
    """)
_fragment("nll_parameters", """
    Parameters
    ----------
    log_probs : array_like
        Log-probabilities, classes along ``axis`` (e.g. ``log_softmax``).
    target : array_like of int
        Class labels, the shape of ``log_probs`` without ``axis``.
    axis : int, optional
        The class axis (default -1; PyTorch's is 1).
    reduction : {"mean", "sum", "none"}
        "mean" divides by the summed weights ``weight[y] * sample_weight`` of
        the samples that are not ``ignore_index`` (NaN if that is 0, as
        PyTorch); "none" gives one loss per sample.
    {weight_class}
    {ignore_index}
    sample_weight : array_like, optional
        One weight per sample (the target's shape).
    """)

_fragment("kl_parameters", """
    Parameters
    ----------
    p : array_like
        The target distribution, along ``axis``.
    q : array_like
        The model's distribution (its log if ``log_q``), p's shape; the
        loss and the gradient have q's float dtype.
    axis : int, optional
        The distribution axis (default -1).
    log_q : bool, optional
        q holds log-probabilities (the gradient is then w.r.t. log q).
    reduction : {"mean", "sum", "none"}
        "none": one value per row (the shape without ``axis``); "mean":
        their mean (PyTorch's "batchmean"); "sum": their sum.
    sample_weight : array_like, optional
        One weight per row (the shape without ``axis``, or one per index of
        the leading axis); "mean" is then sum(w kl) / sum(w).
    """)
_fragment("out_kl", """
    out : ndarray, optional
        The gradient's array (q's shape and dtype); may be ``q``.
    """)
_fragment("w_penalty", """
    w : array_like
        The weights.
    """)
_fragment("lam", """
    lam : float
        The penalty's strength, >= 0.
    """)
# the pointwise losses' prediction: ``pred`` unless a function names it otherwise
# (binary_cross_entropy: p="prob", p_param="{prob}")
_fragment("p", "pred")
_fragment("p_param", "{pred}")

# ------------------------------------------------------------------ optim
_fragment("param", """
    param : ndarray
        float32/float64, C-contiguous, writeable; updated in place and
        returned.
    """)
_fragment("grad_param", """
    grad : array_like
        param's shape and dtype, any layout (a non-contiguous one is copied once).
    """)
_fragment("lr", """
    lr : float
        Learning rate, finite and >= 0.
    """)
_fragment("momentum", """
    momentum : float, optional
        In [0, 1) (default 0.9).
    """)
_fragment("weight_decay", """
    weight_decay : float, optional
        Coupled L2 weight decay, >= 0 (default 0).
    """)
_fragment("returns_param", """
    ndarray
        ``param`` itself, updated in place.
    """)
_fragment("params", """
    params : ndarray or list of ndarray
        The parameters (float32/float64, C-contiguous, writeable, sharing no
        memory), updated in place by :meth:`step`.
    """)
_fragment("lr_schedule", """
    lr : float or callable, optional
        Learning rate, finite and >= 0 (default {lr_default}), or a callable of the
        1-based step number that returns one.
    """)
_fragment("optim_pass", """
    One pass over memory in the parameter's own buffer, PyTorch's order of
    operations (``torch.optim``, ``foreach=False``); each element is updated
    on its own, so the result does not depend on the thread count.  There
    is no derivative to take: the step consumes one.
    """)

_FIELD = re.compile(r"\{\{([A-Za-z_]\w*)\}\}|\{([A-Za-z_]\w*)\}")


def fill(template: str, fields: dict[str, str], where: str = "docstring",
         _used: set[str] | None = None,
         _cache: dict[str, tuple[str, set[str]]] | None = None) -> tuple[str, set[str]]:
    """``(text, names used)``: ``template`` with each ``{name}`` replaced by
    ``fields[name]`` (itself filled first), continuation lines indented to
    the field's column, and each ``{{name}}`` written ``{name}``.  An
    unknown name raises KeyError.  ``_cache`` keeps the filled fields
    between calls that share ``fields``."""
    used: set[str] = set() if _used is None else _used

    def sub(m: re.Match[str]) -> str:
        if m.group(1):
            return "{" + m.group(1) + "}"
        name = m.group(2)
        if name not in fields:
            raise KeyError(f"{where}: no docstring fragment {{{name}}}")
        used.add(name)
        done = _cache.get(name) if _cache is not None else None
        if done is None:
            done = fill(fields[name], fields, where, set(), _cache)
            if _cache is not None:
                _cache[name] = done
        used.update(done[1])
        text = done[0]
        col = m.start() - (m.string.rfind("\n", 0, m.start()) + 1)
        return ("\n" + " " * col).join(text.split("\n"))

    return _FIELD.sub(sub, template), used


# the fields filled so far, per set of decorator keywords (the fragments do
# not change after import)
_FILLED: dict[tuple[tuple[str, str], ...], dict[str, tuple[str, set[str]]]] = {}


def doc(**fields: str) -> Callable[[_T], _T]:
    """Decorator: the function's docstring, dedented (as :func:`inspect.cleandoc`),
    with its fields filled from ``fields`` and then :data:`FRAGMENTS`."""
    def decorate(f: _T) -> _T:
        where = getattr(f, "__qualname__", repr(f))
        table = {**FRAGMENTS, **{k: textwrap.dedent(v).strip("\n") for k, v in fields.items()}}
        cache = _FILLED.setdefault(tuple(sorted(fields.items())), {})
        text, used = fill(inspect.cleandoc(f.__doc__ or ""), table, where, None, cache)
        unused = sorted(set(fields) - used)
        if unused:
            raise TypeError(f"{where}: docstring fields {unused} given but not used")
        f.__doc__ = text
        return f
    return decorate
