"""Where a spiking core's cycles go, on real test sequences: the terms of the cycle formula.

    python bench/cycle_breakdown.py --golden runs/u/mnist-T4-w4.snnhw --data-dir ../shared/data/mnist-10k \\
        --spiking 8,4,1,2,1,8 16,4,1,4,1,16 --spiking-knobs tree_stages=2 gate_stages=3 cell_stages=6 \\
        proj_stages=2 queue_stages=3 -o runs/u/breakdown.json

For each spiking point (``L,F,E[,R[,PF[,PL]]]`` as in ``bench/explore_points.py``, mode
``--mode``) the mean over the sequences of each term of
:meth:`snnhw.hw.schedule.WavefrontSchedule.cycle_parts` (the issue beats, the per-step pipeline
drain, the steps' waits for the next element's direct-input projection, the fixed first
projection and readout), beside the bound ``useful accumulations ÷ adders``
(:meth:`~snnhw.hw.schedule.WavefrontSchedule.ideal_cycles`): ``beats − bound`` is what the issue
order loses to bank imbalance, the readers' rounding and the one beat every pass takes with no
spike. Prints a Markdown table and writes the figures as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from explore_points import named_knobs, spiking_point

from snnhw.flow.explore import MODES
from snnhw.hw.registry import core_spec
from snnhw.quant import golden
from snnhw.quant.frozen_io import load_frozen
from snnhw.sim.verify import dataset_inputs

PARTS = ("beats", "drain", "projection_waits", "fixed")


def breakdown(model: object, x: np.ndarray, lengths: np.ndarray, values: dict) -> dict:
    """Mean cycles, bound and formula terms of one spiking point over the sequences (cycles)."""
    spec = core_spec("spiking")
    knobs = spec.knobs(model, spec.knobs_type(**values))
    schedule = spec.schedule(model, knobs)
    if not schedule.event_driven:
        raise SystemExit("cycle_breakdown takes event-driven points (the dense core's cycles do not depend on data)")
    result = spec.golden(model, x, lengths, trace=True)
    u_all = golden.rate_encode(model, x) if schedule.input_mode != "direct" else None
    totals = dict.fromkeys(("cycles", "bound", *PARTS), 0.0)
    for b, n in enumerate(int(v) for v in lengths):
        u = None if u_all is None else u_all[b, :n]
        h = [layer["h"][b, :n] for layer in result.trace]
        parts = schedule.cycle_parts(n, schedule.event_chunk_counts(u, h))
        for name, value in parts.items():
            totals[name] += value
        totals["cycles"] += sum(parts.values())
        totals["bound"] += schedule.ideal_cycles(u, h)
    mean = {name: value / len(lengths) for name, value in totals.items()}
    return {"knobs": values, "adders": schedule.units, "projection_latency": schedule.proj_latency,
            "drain_per_step": schedule.drain, "mean": mean, "utilisation": mean["bound"] / mean["cycles"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--golden", required=True, help="frozen spiking model (.snnhw)")
    parser.add_argument("--data-dir", required=True, help="the model's dataset (its test split)")
    parser.add_argument("--sequences", type=int, default=64)
    parser.add_argument("--spiking", nargs="+", required=True, metavar="L,F,E[,R[,PF[,PL]]]")
    parser.add_argument("--mode", default="event-queue-shared", choices=sorted(MODES))
    parser.add_argument("--spiking-knobs", nargs="*", default=[], metavar="NAME=V",
                        help="more knobs of every point (e.g. cell_stages=6)")
    parser.add_argument("-o", "--output", required=True, help="JSON file to write")
    args = parser.parse_args()

    model = load_frozen(args.golden)
    x, lengths, _, what = dataset_inputs(model, args.data_dir, args.sequences)
    x, lengths = np.asarray(x, np.int64), np.asarray(lengths, np.int64)
    extra = named_knobs(args.spiking_knobs)
    points = [breakdown(model, x, lengths, {**spiking_point(text, args.mode), **extra}) for text in args.spiking]
    print(f"{what}, {len(lengths)} sequences; mean cycles per sequence (share of the cycles)")
    print("| point L/F/E R PF PL | adders | cycles | bound (useful ÷ adders) | utilisation | beats | "
          "beats − bound | drain | projection waits | fixed |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for text, p in zip(args.spiking, points, strict=True):
        m = p["mean"]
        share = {k: v / m["cycles"] for k, v in m.items()}
        print(f"| {text} | {p['adders']} | {m['cycles']:,.1f} | {m['bound']:,.1f} | {p['utilisation']:.3f} | "
              f"{m['beats']:,.1f} ({share['beats']:.3f}) | {m['beats'] - m['bound']:,.1f} "
              f"({share['beats'] - share['bound']:.3f}) | {m['drain']:,.1f} ({share['drain']:.3f}) | "
              f"{m['projection_waits']:,.1f} ({share['projection_waits']:.3f}) | {m['fixed']:,.1f} ({share['fixed']:.3f}) |")
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"golden": args.golden, "inputs": what, "sequences": int(len(lengths)),
                               "points": points}, indent=2) + "\n")
    print(f"written {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
