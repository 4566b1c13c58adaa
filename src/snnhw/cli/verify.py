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

from snnhw.cli._cores import add_model_options, load_models
from snnhw.cli._options import add_progress_option, checked_knobs, output_dir, progress_enabled
from snnhw.errors import UserError
from snnhw.hw.registry import add_core_options


def run(args: argparse.Namespace) -> int:
    """Run the verification; returns 0 when every core matched, 1 otherwise."""
    from snnhw.sim.verify import verify

    for name in ("samples", "length"):
        if getattr(args, name) < 1:
            raise UserError(f"--{name} must be ≥ 1, got {getattr(args, name)}")
    models = load_models(args)
    knobs = checked_knobs(args, {kind: model for kind, (_, model) in models.items()} if args.rtl is None else None)
    report = verify(
        {kind: model for kind, (_, model) in models.items()},
        output_dir(args.output),
        rtl_dir=Path(args.rtl) if args.rtl else None,
        sim=args.sim,
        samples=args.samples,
        data_dir=Path(args.data_dir) if args.data_dir else None,
        waves=args.waves,
        knobs=knobs,
        seed=args.seed,
        length=args.length,
        progress=progress_enabled(args),
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
    """Register ``snnhw verify``: one model option per registered core kind, and the knobs."""
    p = sub.add_parser("verify", help="bit-exact RTL simulation against the golden model",
                       description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_options(p, "verify")
    p.add_argument("--rtl", help="directory written by snnhw generate (default: generate into OUTPUT/rtl; the "
                                 "knobs then come from its manifests)")
    p.add_argument("--sim", choices=("icarus", "verilator"), help="simulator (default: $SNNHW_SIM or icarus)")
    p.add_argument("--samples", type=int, default=8, help="sequences per core (default 8)")
    p.add_argument("--data-dir", help="the model's dataset: verify on its test split (default: random inputs)")
    p.add_argument("--length", type=int, default=8, help="max N of random inputs (default 8)")
    p.add_argument("--seed", type=int, default=0, help="seed of random inputs and stall patterns (default 0)")
    p.add_argument("--waves", action="store_true", help="record waveforms; write toggle counts and SAIF files")
    p.add_argument("-o", "--output", default="verify", help="report directory (default ./verify)")
    add_progress_option(p)
    add_core_options(p)
    p.set_defaults(func=run)
