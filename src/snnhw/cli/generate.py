"""``snnhw generate``: Verilog of the spiking core and/or the MAC baseline core, with manifests.

Examples::

    snnhw generate --golden model.snnhw -o rtl/
    snnhw generate --golden model.snnhw --baseline model.baseline.snnhw -o rtl/ --lanes 8 --fanin 8
    snnhw generate --golden model.snnhw -o rtl/ --event-driven --event-mode shared --proj-fanin 4
    snnhw generate --baseline model.baseline.snnhw -o rtl/ --head-in-hw

Writes ``spiking_core.v`` (top ``snn_lstm_core``) and/or ``baseline_core.v`` (top
``mac_lstm_core``), a ``*.manifest.json`` beside each (ports, knobs, cycle formula and the
schedule's parameters, multipliers, model hash) and ``generate.json``. Knobs left out are sized
to the model (the rule is in the knob group's help).
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path
from typing import Any

from snnhw.cli._options import add_progress_option, output_dir, progress_enabled
from snnhw.errors import UserError
from snnhw.hw.registry import add_core_options, check_knobs_apply, core_knobs_from_args, core_spec, core_specs


def add_parser(subparsers: Any) -> None:
    """Register ``snnhw generate``: one model option per registered core kind, and the knobs."""
    p = subparsers.add_parser("generate", help="generate the cores' Verilog and manifests",
                              description="Generate the Verilog of the registered cores (spiking core, MAC "
                                          "baseline core) for the given frozen models, each with a JSON manifest.",
                              epilog="\n".join(__doc__.splitlines()[2:]),
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    for spec in core_specs():
        p.add_argument(spec.model_option, type=Path, metavar="FILE",
                       help=f"frozen {spec.model_type.__name__} (.snnhw) → {spec.verilog_file} ({spec.label})")
    p.add_argument("-o", "--out", type=Path, required=True, help="output directory (created)")
    add_progress_option(p)
    add_core_options(p)
    p.set_defaults(func=run)


def _source(path: Path) -> dict[str, Any]:
    return {"file": str(path), "file_sha256": hashlib.sha256(path.read_bytes()).hexdigest()}


def model_paths(args: argparse.Namespace) -> dict[str, Path]:
    """{core kind: model file} of the model options given (one per registered core kind)."""
    return {spec.name: getattr(args, spec.model_option.lstrip("-").replace("-", "_"))
            for spec in core_specs() if getattr(args, spec.model_option.lstrip("-").replace("-", "_")) is not None}


def run(args: argparse.Namespace) -> int:
    """Load the models, generate, print one line per core."""
    from snnhw.hw.generate import generate
    from snnhw.quant.frozen_io import load_frozen

    paths = model_paths(args)
    if not paths:
        raise UserError("give " + ", ".join(f"{s.model_option} ({s.label} model)" for s in core_specs())
                        + " or several")
    try:
        knobs = core_knobs_from_args(args)
        check_knobs_apply(args, list(paths))
    except ValueError as exc:
        raise UserError(str(exc)) from None
    cores = []
    for kind, path in paths.items():
        spec = core_spec(kind)
        model = load_frozen(path)
        if not spec.accepts(model):
            raise UserError(f"{path} is not a {spec.model_type.__name__} ({spec.model_option} takes the model of "
                            f"the {spec.label})")
        cores.append((model, knobs[kind]))
    output_dir(args.out)
    try:
        summary = generate(cores, args.out, sources={kind: _source(path) for kind, path in paths.items()},
                           progress=progress_enabled(args))
    except (ValueError, TypeError) as exc:
        raise UserError(str(exc)) from None
    for kind, core in summary["cores"].items():
        knob_text = ", ".join(f"{k}={v}" for k, v in core["knobs"].items() if v not in (None, False))
        print(f"{kind}: {core['verilog']} (top {core['top']}, {core['verilog_bytes']} bytes, "
              f"{core['seconds']:.1f} s; {knob_text}), manifest {core['manifest']}")
    return 0
