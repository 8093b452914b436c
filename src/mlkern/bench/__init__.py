"""Speed of mlkern against NumPy/SciPy (and PyTorch when importable).

Run ``python -m mlkern bench`` (``--help`` for the options).  The same case
registry (:data:`FAMILIES`, :class:`Inputs`, :class:`Case`) drives the
pytest-benchmark suites in ``benchmarks/``.

The package: :mod:`~mlkern.bench.cases` (the case type, points, input
cache, value checks, tables and the family registry),
:mod:`~mlkern.bench.families` (one module per family: activations,
rowwise, losses, layers, optim), :mod:`~mlkern.bench.peers` (the impl type and the
optional runtimes), :mod:`~mlkern.bench.references` (the float64
references, shared with the test suite), :mod:`~mlkern.bench.runner`
(timing), :mod:`~mlkern.bench.report` (the tables),
:mod:`~mlkern.bench.plot` (``--plot``) and :mod:`~mlkern.bench.cli`.

Method (as in the project's peer measurements):

* in-process timing with ``time.perf_counter_ns``; per peer the first call
  and a short warm-up are thrown away, then an inner-loop count ``k`` is
  picked so that one repeat lasts at least ~20 ms; at least 7 repeats;
  the **median** per-call time is reported (min and quartiles in the json);
* at T=1 the peers of one case run **round-robin** (one repeat each in
  turn) so that the VM's speed drift hits them alike; at T=2 each parallel
  peer is timed on its own, and all mlkern T=2 work runs before all torch
  T=2 work (parallel calls of two runtimes are never interleaved);
* NumPy/SciPy are single-threaded: their T=1 time is carried over to the
  T=2 rows and marked ``[1T]``;
* outputs are preallocated and passed with ``out=`` wherever the peer
  allows; peers that allocate are marked ``[a]``;
* every peer's output (and mlkern's) is compared once with a float64
  NumPy/SciPy reference on the same inputs: max abs error /
  max(1, max|ref|) <= 2e-4 (float32) or 1e-8 (float64), else ``[!]``;
* ns/el = median time / elements; GB/s counts the bytes an ideal single
  pass must move (2 n itemsize for a unary map, 3 n itemsize for a
  backward); %roof = GB/s / best copy GB/s at the same dtype and threads,
  for inputs of >= 32 MiB only (out of L3).

Row-wise functions (softmax, log_softmax, logsumexp, argmax,
softmax_backward, log_softmax_backward; registry :data:`ROW_CASES`) get
their own table after the elementwise one, timed the same way, per
function x shape x dtype x threads:

* shapes: ``--shapes`` (``AxB[xC][:axis]``, reduced over the last axis
  unless ``:axis``).  Without ``--shapes`` they follow ``--sizes``: the
  issue's five shapes (:data:`ROW_SHAPES`: 4096x1000, 256x32000,
  1000000x10, 64x128 over the last axis, 64x1000x64 over axis 1) when the
  largest ``--sizes`` value is >= 1e6 (the defaults, quick and full), else
  the smoke set :data:`ROW_SHAPES_SMOKE` (64x128 and 16x1000x16 over
  axis 1, both in cache), so that the CI smoke run ``--sizes 1e3,1e5
  --repeats 3`` stays short (about 25 s more than the elementwise part);
* peers: scipy.special softmax / log_softmax / logsumexp ([a]), the NumPy
  ufunc chain with ``out=`` (logsumexp with one x-sized temporary made
  once), ``np.argmax(out=)``, and torch's out= ATen ops on
  ``torch.from_numpy`` tensors;
* ns/el per element of the input; GB/s by the byte model softmax and
  log_softmax 2 N itemsize, logsumexp (N + rows) itemsize, argmax
  N itemsize + 8 rows, the backwards 3 N itemsize; no %roof;
* select them with ``--functions``: ``softmax`` (with softmax_backward),
  ``softmax_forward``, ``log_softmax``, ``logsumexp``, ``argmax``,
  ``rowwise`` (all of them), ``elementwise`` (none of them); a selection
  without elementwise functions skips the copy roof and the elementwise
  table.  ``--json`` puts them under ``rowwise_records``.

Losses (``--functions losses``; registries :data:`LOSS_CASES` and
:data:`LOSS_ROW_CASES`): a loss and its gradient from one call, mean
reduction, each impl returning ``(loss, grad)``:

* ``bce_with_logits_with_grad`` (z ~ 4 N(0,1), soft targets U[0,1)) and
  ``mse_with_grad`` (pred, target ~ N(0,1)) at ``--sizes``, in the
  elementwise table (GB/s by 3 n itemsize: read pred and target, write
  the gradient; %roof as there).  Peers: the NumPy out= chains
  max(z,0) - z t + log1p(exp(-|z|)) with ``expit`` (or the 4-pass
  sigmoid) for the gradient, and ``g = p - t; dot(g, g)/N; g *= 2/N``
  (np.dot's OpenBLAS limited to one thread with threadpoolctl when it is
  importable); torch's ATen chains (``binary_cross_entropy_with_logits.out``
  + ``sigmoid/sub/mul(out=)``; ``mse_loss`` + ``mse_loss_backward.grad_input``;
  both [a]: the loss ops make n-sized temporaries even in their out= form)
  and autograd (``F.*`` forward + ``backward()``, [a]);
* ``cross_entropy_with_grad`` (logits ~ 2 N(0,1), uniform int64 labels)
  on :data:`LOSS_SHAPES` (4096x1000 and 256x32000), or the smoke shape
  64x1000 when the largest ``--sizes`` is below 1e6, or ``--shapes``; its
  own table after the row-wise one, GB/s by 2 N itemsize + 8 rows.  Peers:
  NumPy softmax - onehot with ``out=``, torch ``F.cross_entropy`` forward
  + backward ([a]);
* the check: loss within TOL relative, gradient within TOL of max|ref
  grad| (the gradient of a mean is ~1/N), against float64 on all
  elements.

Layers (``--functions layers``; only when ``mlkern.layers`` is importable,
else the family says it did not run): dense + relu forward and forward +
backward at (M, K, N) = (1, 512, 512), (32, 512, 512), (256, 1024, 1024)
and embedding forward + backward (50,000 x 256 table, 4,096 tokens)
(smaller stand-ins when the largest ``--sizes`` is below 1e6) against
NumPy's matmul chains, the bare NumPy GEMM and torch; time per call in
us, GFLOP/s; NumPy's OpenBLAS at T threads.  ``--json`` puts them under
``layer_records``.

Optimisers (``--functions optim``; not part of a default run): the fused
in-place ``adam_step`` against NumPy's 12-pass ``out=`` chains (whole
arrays and 65,536-element blocks) and ``torch.optim.Adam`` (fused,
foreach, for-loop), at ``--sizes``; GB/s by 7 n itemsize.  ``--json``
puts them under ``optim_records``.

Only NumPy is required; SciPy and PyTorch are optional.  This package is
not imported by ``import mlkern``.
"""
from . import families as _families  # noqa: F401  (registers every family)
from .cases import (CHECK_POINTS, CROSS_ENTROPY, DTYPES, ELEMENTWISE, FAMILIES, LAYER_SHAPES,
                    LAYER_SHAPES_SMOKE, LAYERS, LOSS_SHAPES, OPTIM, LOSS_SHAPES_SMOKE, ROOF_BYTES,
                    ROW_SHAPES, ROW_SHAPES_SMOKE, ROWWISE, TABLES, TOL, Case, Family, Inputs,
                    LayerShape, RowShape, Table, all_cases, default_layer_shapes,
                    default_loss_shapes, default_row_shapes, dtype_tag, fmt_n, function_families,
                    loss_check, new_outputs, parse_shapes, parse_sizes, register, select)
from .cli import build_parser, machine_info, main
from .families.activations import CASES, COPY
from .families.layers import CASES as LAYER_CASES
from .families.optim import CASES as OPTIM_CASES
from .families.losses import CASES as LOSS_CASES
from .families.losses import ROW_CASES as LOSS_ROW_CASES
from .families.rowwise import CASES as ROW_CASES
from .peers import (Impl, as_numpy, blas_threads, copy_kernel, import_torch, math_layer, mlkern_function,
                    numpy_peer, prepare, set_torch_threads, to_torch, torch_peer)
from .plot import PLOT_PEERS, plot, speedups
from .report import report_overhead, report_table, roofs
from .runner import Record, Runner, Settings, Timer, mark_stalls, measure_overhead, time_one, \
    time_round_robin

CASES_BY_NAME = {c.name: c for c in all_cases(include_hidden=True) + [COPY]}
LOSS_CASES_BY_NAME = {c.name: c for c in LOSS_CASES + LOSS_ROW_CASES}


def check(case, ins, out, point=None, impl=None, cache=None):
    """Run ``case``'s value check on ``out`` (or, for losses and layers, the
    result tuple) computed from ``ins`` at ``point`` (default: the size of
    an elementwise input); returns the dict (ok, err, tol, where, got, ref)."""
    if point is None:
        point = int(ins[0].size)
    return case.check(cache if cache is not None else Inputs(), point, ins, out, impl)


def assert_close(case, ins, out, point=None, impl=None, label="", cache=None):
    """:func:`check` and raise AssertionError with the details on a mismatch."""
    r = check(case, ins, out, point, impl, cache)
    if not r["ok"]:
        raise AssertionError(
            f"{label or case.name}: max abs err / max(1,max|ref|) = {r['err']:.3g} > {r['tol']:g} "
            f"at {r.get('where', '')}: got {r['got']!r}, reference {r['ref']!r}")
    return r


__all__ = ['CASES', 'CASES_BY_NAME', 'CHECK_POINTS', 'COPY', 'CROSS_ENTROPY', 'Case', 'DTYPES',
           'ELEMENTWISE', 'FAMILIES', 'Family', 'Impl', 'Inputs', 'LAYERS', 'LAYER_CASES',
           'LAYER_SHAPES', 'LAYER_SHAPES_SMOKE', 'LOSS_CASES', 'LOSS_CASES_BY_NAME',
           'LOSS_ROW_CASES', 'LOSS_SHAPES', 'LOSS_SHAPES_SMOKE', 'LayerShape', 'OPTIM',
           'OPTIM_CASES', 'PLOT_PEERS', 'ROOF_BYTES', 'ROWWISE', 'ROW_CASES', 'ROW_SHAPES',
           'ROW_SHAPES_SMOKE', 'Record', 'RowShape', 'Runner', 'Settings', 'TABLES', 'TOL',
           'Table', 'Timer', 'all_cases', 'as_numpy', 'assert_close', 'blas_threads',
           'build_parser', 'check', 'copy_kernel', 'default_layer_shapes', 'default_loss_shapes',
           'default_row_shapes', 'dtype_tag', 'fmt_n', 'function_families', 'import_torch',
           'loss_check', 'machine_info', 'main', 'mark_stalls', 'math_layer', 'measure_overhead',
           'mlkern_function', 'new_outputs', 'numpy_peer', 'parse_shapes', 'parse_sizes', 'plot',
           'prepare', 'register', 'report_overhead', 'report_table', 'roofs', 'select',
           'set_torch_threads', 'speedups', 'time_one', 'time_round_robin', 'to_torch',
           'torch_peer']
