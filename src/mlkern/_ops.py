"""The kernels' op table, read once from the extension: every op of every
family ("unary", "binary", "rowwise", "ploss", "optim") with its code, its
cost (the drivers read it for the thread threshold) and the names of its
parameters, as listed once in ``_c/mlk_kernels.h`` (the ``MLK_*_OPS``
X-macros).  The Python modules take their op codes from here by name.

Not public API: the names may change.
"""
from . import _kernels as _ew

TABLE = _ew.op_table()


def codes(family):
    """{op name: op code} of one family."""
    return {name: info[0] for name, info in TABLE[family].items()}


UNARY = codes("unary")
BINARY = codes("binary")
ROWWISE = codes("rowwise")
PLOSS = codes("ploss")
OPTIM = codes("optim")
