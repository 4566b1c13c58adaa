"""Options shared by every subcommand, defined once.

* ``--no-progress``: every long-running command takes it; progress bars and step lines are
  shown only when standard error is a terminal (logs and pipes get none) and the flag is
  absent. Read the choice with :func:`progress_enabled`.
* Output paths: :func:`output_file` / :func:`output_dir` create missing parent directories,
  as users expect of ``-o runs/x.pt``, and turn an unusable path into a one-line error.
* Core knobs: :func:`checked_knobs` reads them for ``generate`` / ``verify`` and refuses, before
  anything is written, a value out of range or one a model cannot take; :func:`knob_error`
  words a knob's error with its option (``--proj-fanin``, not ``proj_fanin``).
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any

from snnhw.errors import UserError, option_error


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
    if not os.access(out, os.W_OK | os.X_OK):
        raise UserError(f"output directory {out} is not writable")
    return out


def output_file(path: Path | str) -> Path:
    """``path`` as an output file whose parent directories are created; a one-line error when it
    is a directory or its parent cannot be created."""
    out = Path(path)
    if out.is_dir():
        raise UserError(f"output path {out} is a directory, not a file")
    output_dir(out.parent if str(out.parent) else Path("."))
    return out


def knob_error(exc: BaseException, context: str = "") -> UserError:
    """A core knob's error (``ValueError`` of :mod:`snnhw.hw.knobs` or a core's schedule) as a
    one-line :class:`UserError` naming the knob's command-line option."""
    from snnhw.hw.registry import core_specs

    return option_error(exc, {f.name for spec in core_specs() for f in fields(spec.knobs_type)}, context)


def checked_knobs(args: argparse.Namespace, models: dict[str, Any] | None) -> dict[str, Any]:
    """The knobs of every core kind from the command line (:func:`snnhw.cli._cores.knobs_from`).

    With ``models`` ({core kind: frozen model}, the cores about to be built), a knob option none
    of them takes, and knobs a model cannot take (the core's schedule refuses them, e.g. engines
    above T), are refused too, before anything is written. Every error names the option.
    """
    from snnhw.cli._cores import knobs_from
    from snnhw.hw.registry import core_spec

    try:
        knobs = knobs_from(args, None if models is None else list(models))
    except UserError as exc:
        raise knob_error(exc) from None
    for kind, model in (models or {}).items():
        spec = core_spec(kind)
        try:
            spec.schedule(model, spec.knobs(model, knobs.get(kind)))
        except (ValueError, TypeError) as exc:
            raise knob_error(exc, f"{spec.label}: ") from None
    return knobs
