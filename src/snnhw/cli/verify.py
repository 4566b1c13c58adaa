"""``snnhw verify``: prove the generated Verilog bit-exact against the integer golden model.

Example::

    snnhw verify --golden model.snnhw --baseline model.baseline.snnhw --samples 16 -o verify/

Generates the cores (or takes ``--rtl DIR`` from ``snnhw generate``), simulates K sequences
with cocotb (Icarus by default; ``--sim verilator`` or ``SNNHW_SIM=verilator``), compares every
output word and the exact cycle count of every sequence, prints pass/fail with the first
mismatch located, and writes ``verify.json`` and ``verify.junit.xml``. Exit status 1 on any
mismatch, 2 on a usage error.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def run(args: argparse.Namespace) -> int:
    """Run the verification; returns 0 when every core matched, 1 otherwise."""
    from snnhw.sim.verify import Knobs, verify

    knobs = Knobs(lanes=args.lanes, fanin=args.fanin, engines=args.engines, event_driven=args.event_driven,
                  input_mode=args.input_mode, head_in_hw=args.head_in_hw, trace=args.trace)
    report = verify(
        Path(args.golden),
        Path(args.output),
        baseline=Path(args.baseline) if args.baseline else None,
        rtl_dir=Path(args.rtl) if args.rtl else None,
        sim=args.sim,
        samples=args.samples,
        data_dir=Path(args.data_dir) if args.data_dir else None,
        waves=args.waves,
        knobs=knobs,
        seed=args.seed,
        length=args.length,
        progress=not args.no_progress,
    )
    for core in report.cores:
        status = "PASS" if core.passed else "FAIL"
        print(f"{status} {core.top} ({core.kind}, {core.simulator}): {core.sequences} sequences × "
              f"{len(core.modes)} modes [{report.inputs.get(core.kind, '')}]")
        if core.passed and core.cycles:
            exact = sum(c["expected"] == c["measured"] for c in core.cycles)
            print(f"     cycles exact for {exact}/{len(core.cycles)} sequences; "
                  f"{core.wall_per_sequence_s} s simulator wall time per sequence")
        if core.trace_records is not None:
            print(f"     debug trace: {core.trace_records} per-(layer, n, t, group) records compared per mode")
        if not core.passed:
            print(f"     first mismatch: {core.message}")
        if core.activity:
            print(f"     switching activity: {core.activity['total_toggles']} toggles over "
                  f"{core.activity['clock_cycles']} cycles; SAIF {core.activity['saif']}")
    out = Path(args.output)
    print(f"report: {out / 'verify.json'}  junit: {out / 'verify.junit.xml'}")
    return 0 if report.passed else 1


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``snnhw verify``."""
    p = sub.add_parser("verify", help="bit-exact RTL simulation against the golden model",
                       description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--golden", required=True, help="frozen spiking model file (.snnhw)")
    p.add_argument("--baseline", help="frozen MAC baseline file: verify the baseline core too")
    p.add_argument("--rtl", help="directory written by snnhw generate (default: generate into OUTPUT/rtl)")
    p.add_argument("--sim", choices=("icarus", "verilator"), help="simulator (default: $SNNHW_SIM or icarus)")
    p.add_argument("--samples", type=_positive, default=8, help="sequences per core (default 8)")
    p.add_argument("--data-dir", help="the model's dataset: verify on its test split (default: random inputs)")
    p.add_argument("--length", type=_positive, default=8, help="max N of random inputs (default 8)")
    p.add_argument("--seed", type=int, default=0, help="seed of random inputs and stall patterns (default 0)")
    p.add_argument("--waves", action="store_true", help="record waveforms; write toggle counts and SAIF files")
    hw = p.add_argument_group("hardware knobs (when generating)")
    hw.add_argument("--lanes", type=_positive, default=8, help="hidden units in parallel (default 8)")
    hw.add_argument("--fanin", type=_positive, default=8, help="synapses per lane per cycle (default 8)")
    hw.add_argument("--engines", type=_positive, help="spiking engines E ≤ T (default T)")
    hw.add_argument("--event-driven", action="store_true", help="spiking core skips all-zero spike chunks")
    hw.add_argument("--input-mode", choices=("direct", "rate", "spikes"), help="spiking core input (default: encoding)")
    hw.add_argument("--head-in-hw", action="store_true", help="FC head in hardware (logits and class words)")
    hw.add_argument("--trace", action="store_true",
                    help="debug spiking core with the trace port: also compare every cell's gate spikes with the "
                         "golden trace (a --rtl core traces when its manifest says trace)")
    p.add_argument("-o", "--output", default="verify", help="report directory (default ./verify)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)
