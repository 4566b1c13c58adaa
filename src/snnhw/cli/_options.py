"""Options shared by every subcommand, defined once.

* ``--no-progress``: every long-running command takes it; progress bars and step lines are
  shown only when standard error is a terminal (logs and pipes get none) and the flag is
  absent. Read the choice with :func:`progress_enabled`.
* Output paths: :func:`output_file` / :func:`output_dir` create missing parent directories,
  as users expect of ``-o runs/x.pt``, and turn an unusable path into a one-line error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from snnhw.errors import UserError


def add_progress_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--no-progress`` (dest ``progress``, default on)."""
    parser.add_argument("--no-progress", dest="progress", action="store_false",
                        help="no progress bars or step lines (they are shown only on a terminal anyway)")


def progress_enabled(args: argparse.Namespace) -> bool:
    """True when progress output is wanted: ``--no-progress`` absent and stderr a terminal."""
    return bool(getattr(args, "progress", True)) and sys.stderr.isatty()


def output_dir(path: Path | str) -> Path:
    """``path`` as an output directory, created with its parents; a one-line error when it is a
    file or cannot be created."""
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise UserError(f"output path {out} exists and is not a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create output directory {out}: {exc.strerror or exc}") from None
    return out


def output_file(path: Path | str) -> Path:
    """``path`` as an output file whose parent directories are created; a one-line error when it
    is a directory or its parent cannot be created."""
    out = Path(path)
    if out.is_dir():
        raise UserError(f"output path {out} is a directory, not a file")
    output_dir(out.parent if str(out.parent) else Path("."))
    return out
