"""``snnhw build``: model → verified Verilog, self-checking board top, Vivado scripts, estimates, reports.

Examples::

    snnhw build --board kintex7                       # the bundled default model
    snnhw build --model spiking.pt --board kc705 -o build/har
    snnhw build --model model.snnhw model.baseline.snnhw --no-verify --no-yosys
    snnhw build --budget 0.05 --no-verify             # knobs: the fastest explored within 5 % of the part
    snnhw build --board ulx3s-85f --target-mhz 60     # pipeline stages added until each core routes at 60 MHz

Every step writes ``<out>/<step>.json`` (load, budget, timing, generate, verify, board, yosys, pnr, vivado,
report);
the report is ``report.md`` / ``report.json`` with PNG plots. See ``docs/build.md``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from snnhw.cli._options import add_progress_option, knob_error, progress_enabled
from snnhw.flow.build import DEFAULT_BUDGET, parse_budget
from snnhw.flow.explore import GRID_SIZES
from snnhw.hw.registry import add_core_options, core_knobs_from_args


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``snnhw build``."""
    p = sub.add_parser("build", help="build verified cores, a self-checking board top and reports",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("--model", nargs="+", default=[], metavar="FILE",
                   help="spiking checkpoint (.pt), or frozen .snnhw model(s) (spiking and optionally baseline); "
                        "default: the bundled HAR model")
    p.add_argument("--baseline-model", metavar="FILE",
                   help="hard-LSTM checkpoint (or frozen baseline) of the MAC baseline "
                        "(default: the spiking checkpoint's recorded source)")
    p.add_argument("--board", default="kintex7", help="board name or alias (default kintex7 = kc705)")
    p.add_argument("-o", "--output", help="build directory (default build/<model name>)")
    p.add_argument("--data-dir", help="dataset location (default: the one recorded in the model)")
    check = p.add_argument_group("verification and self-check")
    check.add_argument("--no-verify", dest="verify", action="store_false",
                       help="skip the bit-exact RTL verification")
    check.add_argument("--verify-sequences", type=int, default=2, help="sequences per core (default 2)")
    check.add_argument("--verify-length", type=int, default=8,
                       help="elements per verification sequence: the first L of each test sequence (default 8; "
                            "0 = whole sequences)")
    check.add_argument("--verify-stalls", action="store_true",
                       help="also verify back to back under random idles and backpressure (slower)")
    check.add_argument("--selfcheck-sequences", type=int, default=2,
                       help="test sequences in the board top's ROM (default 2)")
    check.add_argument("--no-waves", dest="waves", action="store_false",
                       help="no waveforms (no switching activity / SAIF for Vivado power)")
    check.add_argument("--sim", choices=("icarus", "verilator"), help="simulator (default icarus)")
    tools = p.add_argument_group("tools")
    tools.add_argument("--no-yosys", dest="yosys", action="store_false", help="skip the Yosys estimates")
    tools.add_argument("--no-pnr", dest="pnr", action="store_false",
                       help="ECP5 boards: skip the open place-and-route (per-core Fmax, bitstream)")
    tools.add_argument("--vivado", action="store_true",
                       help="run Vivado (out-of-context runs and the bitstream) when it is on PATH")
    tools.add_argument("--clock-mhz", type=float, help="target clock of the out-of-context scripts "
                       "(default: the board clock)")
    tools.add_argument("--target-mhz", type=float, metavar="MHZ",
                       help="ECP5 boards: route each core alone and add pipeline stages where its critical path "
                            "runs until it meets MHZ (timing closure; docs/open-flow.md); the stage knobs given "
                            "are the starting point")
    tools.add_argument("--pnr-seeds", type=int, default=1, metavar="K",
                       help="ECP5 boards: place and route each core with nextpnr seeds 1..K and keep the fastest "
                            "(a seed sweep: placement moves a core's Fmax by up to ~13 %%; docs/open-flow.md); "
                            "default 1")
    add_core_options(p)
    budget = p.add_argument_group("resource budget (knobs picked from the explorer; docs/build.md)")
    budget.add_argument("--budget", nargs="?", const=str(DEFAULT_BUDGET), metavar="F",
                        help="instead of the knobs: per core the fastest explored point costing at most F of the "
                             "board's part (max over LUT, FF, DSP, BRAM of used / available; 0 < F <= 1; "
                             f"--budget alone: {DEFAULT_BUDGET})")
    budget.add_argument("--explore-dir", metavar="DIR",
                        help="pick from this snnhw explore output (read only; explored for the build's models) "
                             "instead of exploring into <out>/explore (resumable)")
    budget.add_argument("--explore-grid", choices=GRID_SIZES,
                        help="grid the build explores: small (default: lanes within 2x of the automatic width, "
                             "engines 1 and T, dense and event-queue), full (snnhw explore's defaults) or queue "
                             "(the shared spike queue at lanes 4-16, fanin 4, 1-4 bank readers, full- and "
                             "half-width projection; baseline lanes 1-8, fanin 4)")
    quant = p.add_argument_group("quantization (checkpoint input)")
    quant.add_argument("--weight-bits", type=int, default=None,
                       help="signed weight width (default: a --qat checkpoint's grid, else 8)")
    quant.add_argument("--input-bits", type=int, default=None,
                       help="signed direct-input width (default: a --qat checkpoint's grid, else 8)")
    quant.add_argument("--act-bits", type=int, default=8, help="baseline activation width (default 8)")
    quant.add_argument("--calib-samples", type=int, default=512, help="calibration sequences (default 512)")
    p.add_argument("--seed", type=int, default=0, help="seed of calibration subsets, random inputs, stalls")
    add_progress_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Execute ``snnhw build``; returns 0, or 1 when a step failed (e.g. an RTL mismatch)."""
    from snnhw.flow.build import BuildOptions, run_build, summary_table

    try:
        knobs = core_knobs_from_args(args)
    except ValueError as exc:
        raise knob_error(exc) from None
    opts = BuildOptions(
        models=[Path(m) for m in args.model], baseline_model=Path(args.baseline_model) if args.baseline_model else None,
        board=args.board, out_dir=Path(args.output) if args.output else None,
        data_dir=Path(args.data_dir) if args.data_dir else None, verify=args.verify,
        verify_sequences=args.verify_sequences, verify_length=args.verify_length,
        verify_stalls=args.verify_stalls, selfcheck_sequences=args.selfcheck_sequences, waves=args.waves,
        yosys=args.yosys, vivado=args.vivado, pnr=args.pnr, simulator=args.sim, knobs=knobs,
        weight_bits=args.weight_bits, input_bits=args.input_bits, act_bits=args.act_bits,
        calib_samples=args.calib_samples, clock_mhz=args.clock_mhz, seed=args.seed,
        progress=progress_enabled(args),
        budget=None if args.budget is None else parse_budget(args.budget),
        explore_dir=Path(args.explore_dir) if args.explore_dir else None, explore_grid=args.explore_grid,
        target_mhz=args.target_mhz, pnr_seeds=args.pnr_seeds,
    )
    result = run_build(opts)
    print(summary_table(result))
    return result.exit_code
