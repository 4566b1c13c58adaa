"""The ``snnhw`` command line.

Every module in this package that defines ``add_parser(subparsers)`` contributes one
subcommand; ``add_parser`` registers the arguments and sets ``func`` (called with the parsed
``argparse.Namespace``, returning an exit status). Heavy imports (torch, amaranth) happen
inside ``func`` so that ``snnhw --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys

from snnhw import __version__
from snnhw.errors import UserError


OPENMP_WAIT_POLICY = "PASSIVE"
"""The OpenMP waiting policy snnhw's commands run with unless the environment chooses one."""


def default_openmp_wait_policy() -> str:
    """Let OpenMP's idle threads sleep instead of spinning (``OMP_WAIT_POLICY=PASSIVE``) unless
    the environment already sets ``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT``; returns a description
    of the policy in effect (``"PASSIVE"``, the user's ``OMP_WAIT_POLICY``, or
    ``"GOMP_SPINCOUNT=<n>"``). ``GOMP_SPINCOUNT=300000`` keeps libgomp's own default.

    With libgomp's default, a thread that finishes a parallel region spins for a while on its
    core. When anything else wants that core (a second training run, a simulator, a busy
    hypervisor), the spinning and the waits for a descheduled thread made a two-thread spiking
    training step 1.6–5.3× slower on the project's 2-core machine; sleeping threads cost
    15–22 % of that step on an idle machine instead, and 1.4× of a small hard LSTM's epoch
    (``docs/results.md``, "OpenMP's waiting policy"; ``docs/training.md``).
    libgomp reads the variable once, when PyTorch loads it, so this must run before the first
    ``import torch`` of the process; the processes a command starts inherit it. The policy
    changes timings only, never results.
    """
    if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" in os.environ:
        return f"GOMP_SPINCOUNT={os.environ['GOMP_SPINCOUNT']}"
    return os.environ.setdefault("OMP_WAIT_POLICY", OPENMP_WAIT_POLICY)


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
    default_openmp_wait_policy()
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
