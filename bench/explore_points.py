"""`snnhw explore` on an explicit list of points instead of a knob product.

    python bench/explore_points.py --golden runs/h128/fsdd-T4.snnhw \\
        --baseline runs/h128/fsdd-T4.baseline.snnhw --data-dir ../shared/data/fsdd --sequences 64 \\
        --spiking 4,4,1 4,4,1,2 8,8,1,4 8,8,1,4,2 --mac 4,4 -o runs/ex128/fsdd

The same run as ``snnhw explore`` (``snnhw.flow.explore.run_explore``: cycles from the golden
spike traces of the test sequences, Yosys ``synth_xilinx`` cost, cached by RTL hash in the output
directory, the DSP and BRAM exchange rates measured on the points given, the iso-resource
table), but on hand-picked points, so that one ``explore.json`` holds the baseline and every
candidate spiking point without synthesising a whole product grid. A spiking point is
``L,F,E[,R[,PF[,PL]]]`` (lanes, fanin, engines, ``bank_readers``, ``proj_fanin``, ``proj_lanes``; schedule
``--mode``, default ``event-queue-shared``); a MAC point ``L,F``. ``--spiking-knobs`` and
``--mac-knobs`` (``name=value``, e.g. pipeline stages) apply to every point of that core;
``--no-synth`` gives the cycles and energy alone.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from snnhw.flow.explore import MODES, ExploreOptions, run_explore
from snnhw.quant.frozen_io import load_frozen
from snnhw.sim.verify import dataset_inputs


def spiking_point(text: str, mode: str) -> dict:
    """``L,F,E[,R[,PF[,PL]]]`` → the knob values of a spiking point."""
    values = [int(v) for v in text.split(",")]
    if not 3 <= len(values) <= 6:
        raise SystemExit(f"a spiking point is L,F,E[,R[,PF[,PL]]], not {text!r}")
    lanes, fanin, engines, readers, proj_fanin, proj_lanes = values + [1, 1, 0][len(values) - 3:]
    point = {"lanes": lanes, "fanin": fanin, "engines": engines, "proj_fanin": proj_fanin, **MODES[mode]}
    if readers > 1:
        point["bank_readers"] = readers
    if proj_lanes:
        point["proj_lanes"] = proj_lanes
    return point


def named_knobs(items: list[str]) -> dict:
    """``["cell_stages=6", ...]`` → ``{"cell_stages": 6, ...}`` (integer values)."""
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"a knob is NAME=VALUE, not {item!r}")
        out[name] = int(value)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--golden", required=True, help="frozen spiking model (.snnhw)")
    parser.add_argument("--baseline", help="frozen MAC baseline model (.snnhw)")
    parser.add_argument("--data-dir", required=True, help="the models' dataset (its test split)")
    parser.add_argument("--sequences", type=int, default=64)
    parser.add_argument("--spiking", nargs="+", required=True, metavar="L,F,E[,R[,PF[,PL]]]")
    parser.add_argument("--mode", default="event-queue-shared", choices=sorted(MODES))
    parser.add_argument("--mac", nargs="*", default=[], metavar="L,F", help="MAC baseline points")
    parser.add_argument("--spiking-knobs", nargs="*", default=[], metavar="NAME=V",
                        help="more knobs of every spiking point (e.g. cell_stages=6)")
    parser.add_argument("--mac-knobs", nargs="*", default=[], metavar="NAME=V",
                        help="more knobs of every MAC point (e.g. mac_stages=7)")
    parser.add_argument("--no-synth", dest="synth", action="store_false", help="cycles and energy only")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("-o", "--output", type=Path, required=True)
    args = parser.parse_args()
    models = {"spiking": load_frozen(args.golden)}
    grid = {"spiking": [{**spiking_point(text, args.mode), **named_knobs(args.spiking_knobs)}
                        for text in args.spiking]}
    if args.baseline:
        models["baseline"] = load_frozen(args.baseline)
        grid["baseline"] = [{**dict(zip(("lanes", "fanin"), (int(v) for v in text.split(",")))),
                             **named_knobs(args.mac_knobs)} for text in args.mac]
    inputs = {}
    for kind, model in models.items():
        x, lengths, _, what = dataset_inputs(model, args.data_dir, args.sequences)
        inputs[kind] = (np.asarray(x, np.int64), np.asarray(lengths, np.int64))
    doc = run_explore(ExploreOptions(models=models, out_dir=args.output, grid=grid, inputs=inputs,
                                     inputs_description=what, synth=args.synth, jobs=args.jobs, progress=False),
                      log=lambda line: print(line, file=sys.stderr))
    print(f"{len(doc['points'])} points in {doc['wall_s']:.0f} s; {args.output / 'explore.md'}")


if __name__ == "__main__":
    main()
