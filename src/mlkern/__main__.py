"""Command line: ``python -m mlkern {bench,demo,show-config}``.

``python -m mlkern bench`` times mlkern against NumPy/SciPy (and PyTorch
when importable) and prints a table; ``python -m mlkern bench --help``
lists its options.  ``python -m mlkern demo`` trains a small MLP on
scikit-learn's digits with mlkern kernels and :mod:`mlkern.optim` and times
it against the same loop in plain NumPy; ``--model lstm`` / ``--model cnn``
train :mod:`mlkern.nn` models against the same PyTorch ones (``--help`` for
its options; needs scikit-learn: ``pip install ".[examples]"``).  ``python -m mlkern
show-config`` prints :func:`mlkern.show_config`.
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
    from . import demo  # light: numpy only; sklearn and mlkern.optim are imported when it runs
    d = sub.add_parser("demo", help="train an MLP, LSTM or CNN on the digits dataset (needs scikit-learn)",
                       description=(demo.__doc__ or "").split("\n\n")[0])
    demo.build_parser(d)
    d.set_defaults(demo_parser=d)
    sub.add_parser("show-config", help="print version, compiler, OpenMP, threads and SIMD level")
    return p


def main(argv=None):
    p = _parser()
    args = p.parse_args(argv)
    if args.command == "bench":
        from . import bench
        return bench.main(args=args)
    if args.command == "demo":
        from . import demo
        demo.check_args(args.demo_parser, args)
        try:
            demo.main(args=args)
        except KeyboardInterrupt:
            print("\ninterrupted", file=sys.stderr)
            return 130
        return 0
    if args.command == "show-config":
        import mlkern
        mlkern.show_config()
        return 0
    p.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
