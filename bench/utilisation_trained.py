"""Cycles and adder utilisation of the cores' schedules on a trained model's real test sequences.

    python bench/utilisation_trained.py --checkpoint runs/h128/har-T4.pt \\
        --golden runs/h128/har-T4.snnhw --baseline runs/h128/har-T4.baseline.snnhw \\
        --data-dir ../shared/data/uci-hapt [--sequences 64] [--knobs 4,4,1 4,4,2 8,8,1 8,8,4 8,8,1,4]

No synthesis: for each spiking knob set ``L,F,E[,R]`` (R: spike-queue readers per weight bank,
``bank_readers``; with R > 1 only the queue schedules) and schedule (dense, event-driven per engine,
spike queue, shared spike queue) the mean cycles per sequence, the mean adder utilisation
(useful accumulations ÷ adders × cycles, ``WavefrontSchedule.utilisation``) and the synapse
weights read per sequence (``WavefrontSchedule.weight_reads``) over the first ``--sequences``
test sequences, from the golden model's spike trace (the same computation as ``snnhw
explore``'s); for the baseline at each ``L,F`` its cycles, MAC utilisation and weight reads
(one per MAC: (D + H)·4H per element and layer). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from snnhw.data.registry import load_split_for_eval
from snnhw.flow.explore import _sequence_stats, _traces
from snnhw.hw.knobs import BaselineKnobs, SpikingKnobs
from snnhw.hw.registry import core_spec
from snnhw.quant.frozen_io import load_frozen
from snnhw.quant.quantizer import quantize_input
from snnhw.train.checkpoint import load_checkpoint

MODES = {"dense": {}, "event-engine": {"event_driven": True, "event_mode": "engine"},
         "event-queue": {"event_driven": True, "event_mode": "queue"},
         "event-queue-shared": {"event_driven": True, "event_mode": "queue-shared"}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, help="the spiking checkpoint (its data and normalisation)")
    parser.add_argument("--golden", required=True, help="frozen spiking model (.snnhw)")
    parser.add_argument("--baseline", required=True, help="frozen baseline model (.snnhw)")
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--sequences", type=int, default=64)
    parser.add_argument("--knobs", nargs="+", default=["4,4,1", "4,4,2", "8,8,1", "8,8,4"],
                        help="L,F,E or L,F,E,R (R: bank_readers, queue schedules only)")
    args = parser.parse_args()
    start = time.monotonic()
    ckpt = load_checkpoint(args.checkpoint)
    test = load_split_for_eval(ckpt.data_meta, ckpt.normalisation, args.data_dir, progress=False)
    x, lengths = test.x[:args.sequences], np.asarray(test.lengths[:args.sequences])
    models = {"spiking": load_frozen(args.golden), "baseline": load_frozen(args.baseline)}
    inputs = {kind: (quantize_input(model, x), lengths) for kind, model in models.items()}
    results = _traces(models, inputs)
    rows = []
    widths = []
    for text in args.knobs:
        lanes, fanin, engines, readers = ([int(v) for v in text.split(",")] + [1])[:4]
        widths.append((lanes, fanin))
        for mode, extra in MODES.items():
            if readers > 1 and not mode.startswith("event-queue"):
                continue
            knobs = SpikingKnobs(lanes=lanes, fanin=fanin, engines=engines, bank_readers=readers, **extra)
            schedule = core_spec("spiking").schedule(models["spiking"], knobs)
            mean, _, util, reads = _sequence_stats(schedule, models["spiking"], results["spiking"],
                                                   *inputs["spiking"])
            per_sequence = sum(reads.values()) / len(lengths)
            rows.append(f"| spiking | {lanes}/{fanin}/{engines}{f' R{readers}' if readers > 1 else ''} | {mode} | {schedule.units} | {mean:,.0f} | {util:.3f} "
                        f"| {per_sequence:,.0f} |")
    for lanes, fanin in dict.fromkeys(widths):
        schedule = core_spec("baseline").schedule(models["baseline"], BaselineKnobs(lanes=lanes, fanin=fanin))
        mean, _, util, _ = _sequence_stats(schedule, models["baseline"], results["baseline"], *inputs["baseline"])
        macs = sum((layer.input_size + layer.hidden_size) * 4 * layer.hidden_size for layer in models["baseline"].layers)
        rows.append(f"| baseline | {lanes}/{fanin} | MAC | {schedule.units} | {mean:,.0f} | {util:.3f} "
                    f"| {macs * float(lengths.mean()):,.0f} |")
    spikes = np.concatenate([(layer["h"] != 0).ravel() for layer in results["spiking"].trace])
    print(f"{len(lengths)} test sequences (N = {int(lengths.min())}..{int(lengths.max())}); "
          f"nonzero h spikes {spikes.mean():.3f}; {time.monotonic() - start:.1f} s\n")
    print("| core | L/F/E | schedule | adders (MACs) | cycles per sequence (mean) | utilisation "
          "| weights read per sequence |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
