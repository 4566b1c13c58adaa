"""``snnhw generate``: Verilog of the spiking core and/or the MAC baseline core, with manifests.

Examples::

    snnhw generate --golden model.snnhw -o rtl/
    snnhw generate --golden model.snnhw --baseline model.baseline.snnhw -o rtl/ --lanes 8 --fanin 8
    snnhw generate --baseline model.baseline.snnhw -o rtl/ --head-in-hw

Writes ``spiking_core.v`` (top ``snn_lstm_core``) and/or ``baseline_core.v`` (top
``mac_lstm_core``), a ``*.manifest.json`` beside each (ports, knobs, cycle formula,
multipliers, model hash) and ``generate.json``.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path
from typing import Any

from snnhw.errors import UserError


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, not {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, not {value}")
    return value


def add_parser(subparsers: Any) -> None:
    """Register ``snnhw generate``."""
    p = subparsers.add_parser("generate", help="generate the cores' Verilog and manifests",
                              description="Generate the Verilog of the spiking core and/or the MAC baseline "
                                          "core, each with a JSON manifest.",
                              epilog="\n".join(__doc__.splitlines()[2:]),
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--golden", type=Path, help="frozen spiking model (.snnhw) → spiking_core.v")
    p.add_argument("--baseline", type=Path, help="frozen MAC baseline model (.snnhw) → baseline_core.v")
    p.add_argument("-o", "--out", type=Path, required=True, help="output directory")
    p.add_argument("--lanes", type=_positive, default=8, help="hidden units in parallel (default 8)")
    p.add_argument("--fanin", type=_positive, default=8, help="synapses per lane per cycle (default 8)")
    p.add_argument("--engines", type=_positive, default=None, help="spiking engines per layer (default T)")
    p.add_argument("--event-driven", action="store_true", help="spiking core skips zero spikes")
    p.add_argument("--input-mode", choices=("direct", "rate", "spikes"), default=None,
                   help="spiking core input (default: the model's encoding)")
    p.add_argument("--head-in-hw", action="store_true", help="put the FC head in hardware")
    p.add_argument("--trace", action="store_true",
                   help="debug spiking core: add the trace stream of every cell's gate spikes "
                        "(docs/hw-spiking-core.md)")
    p.set_defaults(func=run)


def _source(path: Path) -> dict[str, Any]:
    return {"file": str(path), "file_sha256": hashlib.sha256(path.read_bytes()).hexdigest()}


def run(args: argparse.Namespace) -> int:
    """Load the models, generate, print one line per core."""
    from snnhw.hw.generate import generate
    from snnhw.quant.frozen import FrozenBaseline, FrozenSpiking
    from snnhw.quant.frozen_io import load_frozen

    if args.golden is None and args.baseline is None:
        raise UserError("give --golden (spiking model), --baseline (MAC baseline model) or both")
    spiking = baseline = None
    sources: dict[str, dict[str, Any]] = {}
    if args.golden is not None:
        spiking = load_frozen(args.golden)
        if not isinstance(spiking, FrozenSpiking):
            raise UserError(f"{args.golden} is not a spiking model (--golden takes the frozen spiking model)")
        sources["spiking"] = _source(args.golden)
    if args.baseline is not None:
        baseline = load_frozen(args.baseline)
        if not isinstance(baseline, FrozenBaseline):
            raise UserError(f"{args.baseline} is not a MAC baseline model")
        sources["baseline"] = _source(args.baseline)
    summary = generate(spiking, baseline, args.out, lanes=args.lanes, fanin=args.fanin, engines=args.engines,
                       event_driven=args.event_driven, input_mode=args.input_mode, head_in_hw=args.head_in_hw,
                       trace=args.trace, sources=sources, progress=True)
    for kind, core in summary["cores"].items():
        print(f"{kind}: {core['verilog']} (top {core['top']}, {core['verilog_bytes']} bytes, "
              f"{core['seconds']:.1f} s), manifest {core['manifest']}")
    return 0
