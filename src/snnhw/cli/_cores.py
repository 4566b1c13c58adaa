"""Command-line pieces shared by the subcommands that build cores (``generate``, ``verify``).

One model option per registered core kind (``--golden`` for the spiking core, ``--baseline``
for the MAC baseline, from each :class:`~snnhw.hw.registry.CoreSpec`), the loading of those
models with a one-line error for a file of the wrong kind, and the knobs taken from the
command line (:func:`snnhw.hw.registry.add_core_options`).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from snnhw.errors import UserError
from snnhw.hw.registry import check_knobs_apply, core_knobs_from_args, core_spec, core_specs


def _dest(option: str) -> str:
    return option.lstrip("-").replace("-", "_")


def add_model_options(parser: argparse.ArgumentParser, purpose: str) -> None:
    """One ``FILE`` option per registered core kind; ``purpose`` completes its help
    (e.g. "generate" → "frozen FrozenSpiking (.snnhw): generate the spiking wavefront core")."""
    for spec in core_specs():
        parser.add_argument(spec.model_option, type=Path, metavar="FILE",
                            help=f"frozen {spec.model_type.__name__} (.snnhw): {purpose} the {spec.label} "
                                 f"({spec.verilog_file})")


def load_models(args: argparse.Namespace) -> dict[str, tuple[Path, Any]]:
    """{core kind: (file, frozen model)} of the model options given; a one-line error when none
    is given or a file holds a model of another kind."""
    from snnhw.quant.frozen_io import load_frozen

    paths = {spec.name: getattr(args, _dest(spec.model_option)) for spec in core_specs()
             if getattr(args, _dest(spec.model_option), None) is not None}
    if not paths:
        raise UserError("give " + ", ".join(f"{s.model_option} ({s.label} model)" for s in core_specs())
                        + " or several")
    out = {}
    for kind, path in paths.items():
        spec = core_spec(kind)
        model = load_frozen(path)
        if not spec.accepts(model):
            raise UserError(f"{path} is not a {spec.model_type.__name__} ({spec.model_option} takes the model of "
                            f"the {spec.label})")
        out[kind] = (Path(path), model)
    return out


def knobs_from(args: argparse.Namespace, kinds: list[str] | None) -> dict[str, Any]:
    """The knobs of every core kind from the command line; with ``kinds``, a knob option that
    none of those kinds takes is a one-line error."""
    try:
        knobs = core_knobs_from_args(args)
        if kinds is not None:
            check_knobs_apply(args, kinds)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    return knobs
