"""The ``snnhw`` command line.

Every module in this package that defines ``add_parser(subparsers)`` contributes one
subcommand; ``add_parser`` registers the arguments and sets ``func`` (called with the parsed
``argparse.Namespace``, returning an exit status). Heavy imports (torch, amaranth) happen
inside ``func`` so that ``snnhw --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from snnhw import __version__
from snnhw.errors import UserError


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with one subparser per command module of this package."""
    parser = argparse.ArgumentParser(prog="snnhw", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"snnhw {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(module, "add_parser"):
            module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``snnhw`` console script; returns the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"snnhw: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("snnhw: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
