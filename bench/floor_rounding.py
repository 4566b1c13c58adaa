"""What-if: an integer model's accuracy with its leak terms floored or rounded, and its
direct-input projection floored (the contract) or rounded.

    python bench/floor_rounding.py --frozen m.snnhw [--data-dir DIR]

The integer contract (``docs/integer-contract.md``) lets each neuron's leak terms round to
nearest (``leak_rounding`` "nearest", the quantizer's default) or floor ("floor", frozen
format 1's rule), and floors the direct-input projection ``(Wx·x_q) >> x_shift``. This
diagnostic evaluates the golden model of ``--frozen`` on its test split with every neuron's
leak floored, then rounded, each with the projection as the contract has it and rounded to
nearest (``(v + 2^(x_shift−1)) >> x_shift``, substituted for
:func:`snnhw.quant.golden.input_projection` for the run only: that variant is a measurement of
a possible contract change, which the generators and testbenches do not implement).
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from snnhw.cli.quantize import eval_frozen
from snnhw.quant import golden
from snnhw.quant.arith import LEAK_ROUNDINGS, LeakRounding
from snnhw.quant.frozen import BinaryNeuron, FrozenSpiking, TernaryNeuron
from snnhw.quant.frozen_io import load_frozen, save_frozen

CONTRACT_PROJECTION = golden.input_projection


def rounded_projection(layer: Any, x_q: np.ndarray) -> np.ndarray:
    """``round((Wx·x_q) / 2^x_shift)`` (half up): the contract's projection of the same layer
    without its shift, then the shift with half a unit added before it."""
    product = CONTRACT_PROJECTION(dataclasses.replace(layer, x_shift=(0,) * len(layer.x_shift)), x_q)
    shift = golden._gate_shift(layer.x_shift, layer.hidden_size)
    return (product + ((1 << shift) >> 1)) >> shift


def with_leak_rounding(model: FrozenSpiking, rounding: LeakRounding) -> FrozenSpiking:
    """A copy of ``model`` whose every LIF neuron rounds its leak terms by ``rounding``."""
    def neuron(n: Any) -> Any:
        return dataclasses.replace(n, leak_rounding=rounding) if isinstance(n, (BinaryNeuron, TernaryNeuron)) else n
    layers = [dataclasses.replace(layer, **{g: neuron(getattr(layer, g)) for g in ("f", "i", "g", "o", "c")})
              for layer in model.layers]
    return dataclasses.replace(model, layers=layers)


def main() -> None:
    """Evaluate the four variants and print one line each."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frozen", required=True, type=Path, help="a spiking integer model written by snnhw quantize")
    parser.add_argument("--data-dir", help="dataset path (default: the one recorded in the model)")
    args = parser.parse_args()
    model = load_frozen(args.frozen)
    if not isinstance(model, FrozenSpiking):
        parser.error(f"{args.frozen} is not a spiking model")
    ns = argparse.Namespace(data_dir=args.data_dir, split="test", batch_size=256, no_progress=True, progress=False)
    with tempfile.TemporaryDirectory() as tmp:
        for rounding in LEAK_ROUNDINGS[::-1]:
            path = save_frozen(Path(tmp) / f"{rounding}.snnhw", with_leak_rounding(model, rounding))
            for projection_name, projection in (("floored", CONTRACT_PROJECTION), ("rounded", rounded_projection)):
                golden.input_projection = projection
                try:
                    accuracy = eval_frozen(path, ns).record["accuracy"]
                finally:
                    golden.input_projection = CONTRACT_PROJECTION
                print(f"leak {rounding}, projection {projection_name}: {100 * accuracy:.2f} %", flush=True)


if __name__ == "__main__":
    main()
