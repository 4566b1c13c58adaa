"""``snnhw explore``: sweep the knobs of every core; latency, energy and cost per point; Pareto plots.

Examples::

    snnhw explore --golden m.snnhw --baseline m.baseline.snnhw -o explore/
    snnhw explore --golden m.snnhw --baseline m.baseline.snnhw --data-dir ../shared/data/uci-hapt \\
        --sequences 64 --lanes 2 4 8 --engines 1 4 --modes dense event-engine event-shared -o explore/

Every point of the grid (per core kind: ``--lanes`` × ``--fanin`` (default: the same as the
lanes) × ``--engines`` × ``--modes`` for the spiking core; ``--lanes`` × ``--fanin`` for the MAC
baseline, lanes that do not divide H skipped) gets its cycles on the test sequences (from the
golden spike trace when event-driven), its energy per inference, and its cost from Yosys
``synth_xilinx -family xc7`` (identical RTL synthesised once; a rerun resumes). Writes
``explore.json``, ``explore.md`` (with the iso-resource table) and the Pareto plots
(``docs/explore.md``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from snnhw.cli._cores import add_model_options, load_models
from snnhw.cli._options import add_progress_option, output_dir, progress_enabled
from snnhw.errors import UserError
from snnhw.flow.explore import DEFAULT_SEQUENCES, GRID_LANES, GRID_MODES, MODES


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``snnhw explore``."""
    p = sub.add_parser("explore", help="sweep every core's knobs: latency, energy, cost, Pareto plots",
                       description=__doc__.split("\n\n")[0], epilog="\n".join(__doc__.splitlines()[2:]),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_options(p, "explore")
    p.add_argument("-o", "--output", type=Path, default=Path("explore"),
                   help="output directory (default ./explore)")
    p.add_argument("--data-dir", type=Path, help="the model's dataset: its test split (default: random inputs)")
    p.add_argument("--sequences", type=int, default=DEFAULT_SEQUENCES,
                   help=f"test sequences for the cycle counts (default {DEFAULT_SEQUENCES})")
    p.add_argument("--length", type=int, default=16, help="N of the random inputs (default 16)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random inputs (default 0)")
    p.add_argument("--lanes", type=int, nargs="+", default=list(GRID_LANES), metavar="L",
                   help=f"lanes (default {' '.join(map(str, GRID_LANES))})")
    p.add_argument("--fanin", type=int, nargs="+", metavar="F", help="fanin (default: each point's lanes)")
    p.add_argument("--engines", type=int, nargs="+", metavar="E", help="spiking engines (default: 1 and T)")
    p.add_argument("--proj-fanin", type=int, nargs="+", default=[1], metavar="P",
                   help="direct-input projection fan-in of the spiking core (default 1)")
    p.add_argument("--bank-readers", type=int, nargs="+", default=[1], metavar="R",
                   help="spike-queue readers per weight bank, for the queue modes (the values that divide "
                        "each point's fanin; default 1)")
    p.add_argument("--proj-narrowing", type=int, nargs="+", default=[1], metavar="S",
                   help="direct-input projection S× narrower than the lanes (proj_lanes = L/S, S a power of "
                        "two dividing L; default 1)")
    p.add_argument("--modes", nargs="+", choices=sorted(MODES), default=list(GRID_MODES),
                   help=f"spiking schedules (default {' '.join(GRID_MODES)})")
    p.add_argument("--part", default="xc7k325t", help="target part of the cost fraction (default xc7k325t)")
    p.add_argument("--no-synth", dest="synth", action="store_false",
                   help="cycles and energy only (no Yosys, no cost)")
    p.add_argument("--jobs", type=int, default=2, help="Yosys processes in parallel (default 2)")
    add_progress_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Explore; print the iso-resource summary and where the results are."""
    import sys

    import numpy as np

    from snnhw.flow.explore import ExploreOptions, knob_grid, knob_text, run_explore
    from snnhw.hw.registry import main_core

    models = {kind: model for kind, (_, model) in load_models(args).items()}
    main = main_core().name
    if main not in models:
        raise UserError(f"explore needs {main_core().model_option} (the {main_core().label}'s model)")
    for name in ("sequences", "length", "jobs", "lanes", "fanin", "engines", "proj_fanin", "bank_readers",
                 "proj_narrowing"):
        value = getattr(args, name)  # one integer, a list of them, or None (automatic)
        low = [v for v in (value if isinstance(value, list) else [value]) if v is not None and v < 1]
        if low:
            raise UserError(f"--{name.replace('_', '-')} must be ≥ 1, got {low[0]}")
    grid = knob_grid(models, args.lanes, args.fanin, args.engines, args.proj_fanin, args.modes, args.bank_readers,
                     args.proj_narrowing)
    inputs = {}
    for kind, model in models.items():
        if args.data_dir is not None:
            from snnhw.sim.verify import dataset_inputs

            x, lengths, _, what = dataset_inputs(model, args.data_dir, args.sequences)
        else:
            from snnhw.quant.synthetic import random_inputs

            x, lengths = random_inputs(model, args.seed, args.sequences, args.length, vary_lengths=False)
            what = f"{args.sequences} random sequences of N = {args.length} (seed {args.seed})"
        inputs[kind] = (np.asarray(x, np.int64), np.asarray(lengths, np.int64))
    progress = progress_enabled(args)
    doc = run_explore(ExploreOptions(models=models, out_dir=output_dir(args.output), grid=grid,
                                     inputs=inputs, inputs_description=what, part=args.part, synth=args.synth,
                                     jobs=args.jobs, progress=progress),
                      log=(lambda line: print(line, file=sys.stderr)) if progress else (lambda _: None))
    print(f"{len(doc['points'])} points in {doc['wall_s']:.0f} s; {args.output / 'explore.md'}, "
          f"{args.output / 'explore.json'}")
    for row in doc["iso_resource"]:
        f = row["cost_fraction"]["fastest"]
        e = row["cost_fraction"]["most_efficient"]
        ref = row["reference"]
        print(f"  {ref['core']} {knob_text(ref['knobs'], 'mac')}: fastest spiking point at no more cost "
              + ("none" if f is None else f"{f['latency_ratio']:.2f}× faster ({f['mode']}, "
                                          f"{knob_text(f['knobs'], f['mode'])})")
              + "; most efficient " + ("none" if e is None else f"{e['energy_ratio']:.2f}× less energy"))
    return 0
