"""The registered families, one module each (import order = run and print
order).  A new family is one module here that builds its cases and calls
:func:`mlkern.bench.cases.register`, plus its name in this list."""
from . import activations, rowwise, losses, layers, optim  # noqa: F401

__all__ = ["activations", "rowwise", "losses", "layers", "optim"]
