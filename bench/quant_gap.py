"""Which rounding of the integer model costs a float spiking model its accuracy.

    python bench/quant_gap.py --model m.pt --frozen m.snnhw [--data-dir DIR] [--json out.json]

Evaluates the float checkpoint on its test split with one group of its parameters at a time
replaced by the values the quantizer gives them (:func:`snnhw.quant.quantizer.snap_spiking`,
with the weight width, leak terms and input scale recorded in ``--frozen``, the integer model
quantized from the same checkpoint): the weights and biases (W), the thresholds (θ), the leaks
(λ), all three, each on float inputs and on inputs rounded to the integer model's input grid
(:meth:`snnhw.train.qat.QuantAware.round_inputs`); then the integer model itself (golden model).
The difference between the last two rows is what the grid does not capture (the θ/(2T) shift
rounding, the integer leak's floors, the head).
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path
from typing import Any

import torch

from snnhw.cli.quantize import eval_frozen
from snnhw.quant.frozen_io import load_frozen
from snnhw.train.checkpoint import load_checkpoint
from snnhw.train.qat import QuantAware
from snnhw.train.seed import set_threads
from snnhw.train.trainer import evaluate

GROUPS = {"float": (), "W": ("weight_x", "weight_h", "bias", "head."), "θ": ("theta.",), "λ": ("leak.",),
          "W+θ+λ": ("weight_x", "weight_h", "bias", "head.", "theta.", "leak.")}


def grid_of(frozen: Any) -> QuantAware:
    """The fixed-point grid an integer model (a loaded ``.snnhw``) was quantized on: its weight
    and input widths, and the leak terms, input percentile and scale rule its quantizer recorded."""
    settings = frozen.meta["quantizer"]
    return QuantAware(weight_bits=frozen.weight_bits, input_bits=frozen.input_bits,
                      leak_terms=settings["leak_terms"], input_percentile=settings["input_percentile"],
                      input_scale=frozen.input_scale if frozen.encoding == "direct" else None,
                      scale_mode=settings["scale_mode"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="float spiking checkpoint (.pt)")
    parser.add_argument("--frozen", required=True, help="its integer model (.snnhw, from snnhw quantize)")
    parser.add_argument("--data-dir", help="dataset path (default: the checkpoint's)")
    parser.add_argument("--json", help="write the rows as JSON")
    args = parser.parse_args()
    set_threads(1)
    start = time.monotonic()
    ckpt = load_checkpoint(args.model)
    frozen = load_frozen(args.frozen)
    test = ckpt.load_data(args.data_dir, progress=False).test
    model = ckpt.build_model()
    grid = grid_of(frozen)
    snapped = grid.snapped_values(model)
    rounded = grid.round_split(test)
    rows: list[dict[str, Any]] = []
    print("| parameters on the grid | float input | input on the grid |\n|---|---|---|")
    for name, prefixes in GROUPS.items():
        variant = copy.deepcopy(model)
        state = variant.state_dict()
        with torch.no_grad():
            for key, value in snapped.items():
                if any(p in key for p in prefixes):
                    state[key].copy_(value)
        row = {"snapped": name, "float_input": evaluate(variant, test)["accuracy"],
               "grid_input": evaluate(variant, rounded)["accuracy"]}
        rows.append(row)
        print(f"| {name} | {100 * row['float_input']:.2f} % | {100 * row['grid_input']:.2f} % |", flush=True)
    integer = eval_frozen(Path(args.frozen), argparse.Namespace(data_dir=args.data_dir, split="test",
                                                                batch_size=256, no_progress=True, progress=False)).record
    print(f"| integer model (golden) | | {100 * integer['accuracy']:.2f} % |")
    print(f"({len(test)} test sequences, {time.monotonic() - start:.0f} s)")
    if args.json:
        Path(args.json).write_text(json.dumps({"model": args.model, "frozen": args.frozen, "rows": rows,
                                               "integer_accuracy": integer["accuracy"], "n": len(test)}, indent=1))


if __name__ == "__main__":
    main()
