"""``snnhw fuzz``: a seeded, replayable randomized verification campaign of every registered core.

Example::

    snnhw fuzz --cases 50 --sequences 200 --seed 1 --sim verilator -o fuzz/
    snnhw fuzz --seed 1 --case 17 --sequences 200          # replay exactly case 17
    snnhw fuzz --replay tests/sim/fuzz_fixtures/fuzz-s1-c17.json

Each case draws a configuration from the whole knob space of a registered core (only ones the
generator accepts), a random model (saturating registers included), random and adversarial
sequences and random stall patterns, all from (seed, case); it is generated, built once and
simulated with every sequence in every mode against the golden model. A failing case is shrunk
and written as a JSON regression fixture. Writes ``fuzz.json`` and prints a summary; exit
status 1 on any mismatch, 2 on a usage error.
"""

from __future__ import annotations

import argparse
from dataclasses import fields
from pathlib import Path

from snnhw.cli._options import add_progress_option, output_dir, progress_enabled

FIXTURES_DIR = Path("tests") / "sim" / "fuzz_fixtures"
"""The regression's fixture directory, relative to a checkout's root."""


def _fixtures_dir(args: argparse.Namespace, out: Path) -> Path:
    """``--fixtures-dir``, else the checkout's ``tests/sim/fuzz_fixtures`` when run from a checkout
    (``tests/sim`` exists), else ``OUTPUT/fixtures``."""
    if args.fixtures_dir:
        return Path(args.fixtures_dir)
    return FIXTURES_DIR if FIXTURES_DIR.parent.is_dir() else out / "fixtures"


def _replay(args: argparse.Namespace, out: Path) -> int:
    """``--replay FIXTURE``: simulate one fixture's case; 0 when it passes."""
    from snnhw.sim.fuzz import replay_fixture

    case, outcome = replay_fixture(Path(args.replay), out / "replay", args.sim)
    status = "PASS" if outcome.passed else "FAIL"
    print(f"{status} {args.replay} [{case.config.label()}]: {outcome.sequences} sequences × {len(case.modes)} modes"
          + (f" (test hook: expected word {case.corrupt} corrupted)" if case.corrupt is not None else ""))
    if not outcome.passed:
        print(f"     first mismatch: {outcome.message}")
    return 0 if outcome.passed else 1


def run(args: argparse.Namespace) -> int:
    """Run the campaign (or one case, or a fixture); 0 when every case matched, 1 otherwise."""
    from snnhw.sim.fuzz import FuzzLimits, campaign, summary_lines

    out = output_dir(args.output)
    if args.replay:
        return _replay(args, out)
    limits = FuzzLimits(**{f.name: getattr(args, f.name) for f in fields(FuzzLimits)})
    report = campaign(
        out,
        seed=args.seed,
        cases=args.cases,
        sequences=args.sequences,
        case=args.case,
        sim=args.sim,
        jobs=args.jobs,
        time_budget=args.time_budget,
        limits=limits,
        kinds=args.core,
        fixtures_dir=_fixtures_dir(args, out),
        shrink_runs=args.shrink_runs,
        keep=args.keep,
        progress=progress_enabled(args),
        models_per_config=args.models_per_config,
    )
    print("\n".join(summary_lines(report, out)))
    return 0 if report.totals()["failed"] == 0 else 1


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``snnhw fuzz``."""
    from snnhw.sim.fuzz import FuzzLimits

    p = sub.add_parser("fuzz", help="seeded randomized verification campaign of every core",
                       description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cases", type=int, default=20, help="configurations to draw and verify (default 20)")
    p.add_argument("--sequences", type=int, default=50, help="sequences per configuration (default 50)")
    p.add_argument("--seed", type=int, default=0, help="campaign seed (default 0)")
    p.add_argument("--case", type=int, help="run only case K of the seed (replay; same --sequences and limits)")
    p.add_argument("--replay", metavar="FIXTURE", help="simulate one fixture file written by a failing campaign")
    p.add_argument("--sim", choices=("icarus", "verilator"), help="simulator (default: $SNNHW_SIM or icarus)")
    p.add_argument("--jobs", type=int, default=1, help="cases in parallel, one simulator each (default 1)")
    p.add_argument("--time-budget", type=float, metavar="SECONDS",
                   help="start no case after this many seconds; the report covers what ran (default: none)")
    p.add_argument("--core", action="append", metavar="KIND",
                   help="draw only this core kind (repeatable; default: every registered kind)")
    p.add_argument("--shrink-runs", type=int, default=24,
                   help="most simulations spent shrinking one failing case (0: no shrinking; default 24)")
    p.add_argument("--fixtures-dir", help="where shrunk failing cases are written (default: tests/sim/fuzz_fixtures "
                                          "in a checkout, else OUTPUT/fixtures)")
    p.add_argument("--models-per-config", type=int, default=1, metavar="M",
                   help="cases per drawn configuration: the first with its model, the others with its weights and "
                        "biases permuted; one simulator build serves them (default 1)")
    p.add_argument("--keep", action="store_true", help="keep the work directories of passing cases and the "
                                                       "compiled simulators")
    p.add_argument("-o", "--output", default="fuzz", help="report directory (default ./fuzz)")
    limits = p.add_argument_group("size limits", "bounds of the drawn configurations and sequences")
    default = FuzzLimits()
    for f in fields(FuzzLimits):
        limits.add_argument("--" + f.name.replace("_", "-"), dest=f.name, type=int, default=getattr(default, f.name),
                            metavar="N", help=f"default {getattr(default, f.name)}")
    add_progress_option(p)
    p.set_defaults(func=run)
