"""What-if: an integer model's accuracy with its flooring shifts made rounding ones.

    python bench/floor_rounding.py --frozen m.snnhw [--data-dir DIR]

The integer contract (``docs/integer-contract.md``) floors two shifts: each leak term
``u >> e`` and the direct-input projection ``(Wx·x_q) >> x_shift``. Both floors bias the
membranes the same way at every time step. This diagnostic evaluates the golden model of
``--frozen`` on its test split as it is, then with the leak terms, the projection or both
rounded to nearest (``(v + 2^(e−1)) >> e``), by substituting those two functions of
:mod:`snnhw.quant.arith` / :mod:`snnhw.quant.golden` for the run only. It is a measurement of
a possible contract change, not the contract: the generators and testbenches implement the
floors.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from snnhw.cli.quantize import eval_frozen
from snnhw.quant import arith, golden

CONTRACT_LEAK, CONTRACT_PROJECTION = arith.leak, golden.input_projection


def rounded_leak(u: np.ndarray, terms: arith.LeakTerms) -> np.ndarray:
    """``Σ sign·round(u / 2^e)`` (half up): the contract's leak, term by term, with half a unit
    of each term's shift added before it."""
    return sum(CONTRACT_LEAK(u + ((1 << e) >> 1), ((sign, e),)) for sign, e in terms)


def rounded_projection(layer: Any, x_q: np.ndarray) -> np.ndarray:
    """``round((Wx·x_q) / 2^x_shift)`` (half up): the contract's projection of the same layer
    without its shift, then the shift with half a unit added before it."""
    product = CONTRACT_PROJECTION(dataclasses.replace(layer, x_shift=(0,) * len(layer.x_shift)), x_q)
    shift = golden._gate_shift(layer.x_shift, layer.hidden_size)
    return (product + ((1 << shift) >> 1)) >> shift


def main() -> None:
    """Evaluate the four variants and print one line each."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frozen", required=True, type=Path, help="an integer model written by snnhw quantize")
    parser.add_argument("--data-dir", help="dataset path (default: the one recorded in the model)")
    args = parser.parse_args()
    ns = argparse.Namespace(data_dir=args.data_dir, split="test", batch_size=256, no_progress=True, progress=False)
    variants = [("contract (floors)", CONTRACT_LEAK, CONTRACT_PROJECTION),
                ("leak rounded", rounded_leak, CONTRACT_PROJECTION),
                ("projection rounded", CONTRACT_LEAK, rounded_projection),
                ("both rounded", rounded_leak, rounded_projection)]
    try:
        for name, leak, projection in variants:
            arith.leak, golden.input_projection = leak, projection
            print(f"{name}: {100 * eval_frozen(args.frozen, ns).record['accuracy']:.2f} %", flush=True)
    finally:
        arith.leak, golden.input_projection = CONTRACT_LEAK, CONTRACT_PROJECTION


if __name__ == "__main__":
    main()
