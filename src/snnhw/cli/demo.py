"""``snnhw demo``: train → convert → fine-tune → quantize → generate → verify → build → report.

Examples::

    snnhw demo                                   # generated toy dataset, output in build/demo/
    snnhw demo --data-dir ../shared/data/uci-hapt -o demo-har

Writes the checkpoints, the build directory (``<out>/build``, as ``snnhw build``) and
``<out>/demo.json`` with every stage's wall time. See ``docs/build.md``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from snnhw.cli._options import add_progress_option, progress_enabled
from snnhw.errors import UserError
from snnhw.hw.registry import add_core_options, core_knobs_from_args


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``snnhw demo``."""
    p = sub.add_parser("demo", help="the whole flow in a few minutes (toy data, or UCI HAR with --data-dir)",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("-o", "--output", default="build/demo", help="output directory (default build/demo)")
    p.add_argument("--data-dir", help="UCI HAR / HAPT folder (default: a generated toy dataset)")
    p.add_argument("--hidden", type=int, default=16, help="hidden units, a multiple of --lanes (default 16)")
    p.add_argument("--T", type=int, default=4, help="time steps per element (default 4)")
    p.add_argument("--hard-epochs", type=int, default=5, help="hard-LSTM epochs (default 5)")
    p.add_argument("--snn-epochs", type=int, default=2, help="spiking fine-tuning epochs (default 2)")
    p.add_argument("--limit-train", type=int, default=512, help="training sequences (default 512)")
    p.add_argument("--no-verify", dest="verify", action="store_false", help="skip the bit-exact verification")
    p.add_argument("--no-yosys", dest="yosys", action="store_false", help="skip the Yosys estimates")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    add_progress_option(p)
    add_core_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Execute ``snnhw demo``; returns the build's exit status."""
    from snnhw.flow.demo import DemoOptions, run_demo

    try:
        knobs = core_knobs_from_args(args)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    result = run_demo(DemoOptions(
        out_dir=Path(args.output), data_dir=Path(args.data_dir) if args.data_dir else None, hidden=args.hidden,
        T=args.T, knobs=knobs, hard_epochs=args.hard_epochs, snn_epochs=args.snn_epochs,
        limit_train=args.limit_train, verify=args.verify, yosys=args.yosys, seed=args.seed,
        progress=progress_enabled(args)))
    acc = result["accuracy"]
    print(f"demo: {result['dataset']}")
    print(f"  float hard {100 * acc['float_hard_test']:.2f} %, converted {100 * acc['converted_spiking_test']:.2f} %, "
          f"fine-tuned spiking {100 * acc['fine_tuned_spiking_test']:.2f} %")
    print("  stages (s): " + ", ".join(f"{k} {v:.1f}" for k, v in result["seconds"].items() if "." not in k))
    print(f"  build: {result['build_dir']} ({', '.join(f'{k} {v}' for k, v in result['steps'].items())})")
    print(f"  total wall time {result['wall_s']:.1f} s; report: {result['build_dir']}/report.md")
    return int(result["exit_code"])
