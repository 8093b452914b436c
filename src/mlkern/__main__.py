"""Command line: ``python -m mlkern {bench,show-config}``.

``python -m mlkern bench`` times mlkern against NumPy/SciPy (and PyTorch
when importable) and prints a table; ``python -m mlkern bench --help``
lists its options.  ``python -m mlkern show-config`` prints
:func:`mlkern.show_config`.
"""
import argparse
import sys


def _parser():
    p = argparse.ArgumentParser(
        prog="python -m mlkern",
        description="mlkern: numerically stable ML activations (Cython + C kernels, OpenMP).")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    from . import bench  # light: numpy only; scipy/torch are imported lazily or optionally
    b = sub.add_parser("bench", help="time mlkern against NumPy/SciPy and PyTorch (quick by default)",
                       description=(bench.__doc__ or "").split("\n\n")[0])
    bench.build_parser(b)
    sub.add_parser("show-config", help="print version, compiler, OpenMP, threads and SIMD level")
    return p


def main(argv=None):
    p = _parser()
    args = p.parse_args(argv)
    if args.command == "bench":
        from . import bench
        return bench.main(args=args)
    if args.command == "show-config":
        import mlkern
        mlkern.show_config()
        return 0
    p.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
