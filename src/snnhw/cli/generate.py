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

from snnhw.cli._cores import add_model_options, load_models
from snnhw.cli._options import add_progress_option, checked_knobs, output_dir, progress_enabled
from snnhw.errors import UserError
from snnhw.hw.registry import add_core_options


def add_parser(subparsers: Any) -> None:
    """Register ``snnhw generate``: one model option per registered core kind, and the knobs."""
    p = subparsers.add_parser("generate", help="generate the cores' Verilog and manifests",
                              description="Generate the Verilog of the registered cores (spiking core, MAC "
                                          "baseline core) for the given frozen models, each with a JSON manifest.",
                              epilog="\n".join(__doc__.splitlines()[2:]),
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_options(p, "generate")
    p.add_argument("-o", "--out", type=Path, required=True, help="output directory (created)")
    add_progress_option(p)
    add_core_options(p)
    p.set_defaults(func=run)


def _source(path: Path) -> dict[str, Any]:
    return {"file": str(path), "file_sha256": hashlib.sha256(path.read_bytes()).hexdigest()}


def run(args: argparse.Namespace) -> int:
    """Load the models, generate, print one line per core."""
    from snnhw.hw.generate import generate

    models = load_models(args)
    knobs = checked_knobs(args, {kind: model for kind, (_, model) in models.items()})
    output_dir(args.out)
    try:
        summary = generate([(model, knobs[kind]) for kind, (_, model) in models.items()], args.out,
                           sources={kind: _source(path) for kind, (path, _) in models.items()},
                           progress=progress_enabled(args))
    except (ValueError, TypeError) as exc:
        raise UserError(str(exc)) from None
    for kind, core in summary["cores"].items():
        knob_text = ", ".join(f"{k}={v}" for k, v in core["knobs"].items() if v not in (None, False))
        print(f"{kind}: {core['verilog']} (top {core['top']}, {core['verilog_bytes']} bytes, "
              f"{core['seconds']:.1f} s; {knob_text}), manifest {core['manifest']}")
    return 0
