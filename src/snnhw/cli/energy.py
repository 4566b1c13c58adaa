"""``snnhw energy``: operation counts and energy per inference, spiking golden model vs MAC baseline.

Example::

    snnhw energy --golden model.snnhw --baseline model.baseline.snnhw --json energy.json

Runs the integer golden model(s) on the dataset recorded in the spiking file (``--split``,
default test; ``--samples`` limits it), prints the spike sparsity per gate, the operation
counts and the energy per inference (operation-count model × the per-operation energy table,
default Horowitz 45 nm; ``--table`` for your own), and the ratio beside the paper's 2.8–5.1×.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from snnhw.cli._options import add_progress_option, output_file, progress_enabled
from snnhw.cli.train import existing_file, write_json
from snnhw.errors import UserError


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``snnhw energy``."""
    p = sub.add_parser("energy", help="operation counts and energy: spiking golden model vs MAC baseline",
                       description=__doc__.split("\n\n")[0].replace("``", ""))
    p.add_argument("--golden", required=True, help="spiking frozen model (.snnhw) written by snnhw quantize")
    p.add_argument("--baseline", help="MAC baseline frozen model (.baseline.snnhw) to compare with")
    p.add_argument("--table", help="energy table JSON (default: the packaged Horowitz 45 nm table)")
    p.add_argument("--schedule", choices=("dense", "event"), default="dense",
                   help="spiking-core schedule of the headline figure (default dense)")
    p.add_argument("--data-dir", help="dataset path (default: the one stored in the model file)")
    p.add_argument("--split", choices=("test", "val", "train"), default="test", help="data split (default test)")
    p.add_argument("--samples", type=int, help="use only the first N sequences of the split")
    p.add_argument("--json", metavar="OUT",
                   help="write the full report (counters + energy) as JSON (missing directories are created)")
    add_progress_option(p)
    p.set_defaults(func=run)


def _load(path: Path, kind: str) -> Any:
    """The frozen model of core kind ``kind`` (:mod:`snnhw.hw.registry`) in ``path``."""
    from snnhw.hw.registry import core_spec
    from snnhw.quant.frozen_io import load_frozen

    model = load_frozen(path)
    spec = core_spec(kind)
    if not spec.accepts(model):
        raise UserError(f"{path} is a {type(model).__name__}, expected a {spec.name} frozen model "
                        f"({spec.model_type.__name__}, the {spec.label}'s)")
    return model


def energy_record(spiking: Any, baseline: Any | None, x: np.ndarray, lengths: np.ndarray,
                  table: dict[str, Any] | None, schedule: str, progress: bool) -> dict[str, Any]:
    """Counters of both golden models on float data x [S, N, D] and their energy report."""
    from snnhw.quant.energy import energy_report
    from snnhw.quant.golden import run_baseline, run_spiking
    from snnhw.quant.quantizer import quantize_input

    spk = run_spiking(spiking, quantize_input(spiking, x), lengths, counters=True, progress=progress).counters
    base = None
    if baseline is not None:
        base = run_baseline(baseline, quantize_input(baseline, x), lengths, counters=True,
                            progress=progress).counters
    return {"counters": {"spiking": spk, "baseline": base},
            "energy": energy_report(spk, base, table, schedule=schedule)}


def _print(record: dict[str, Any]) -> None:
    spk = record["counters"]["spiking"]
    energy = record["energy"]
    print(f"sequences {spk['sequences']}, elements {spk['elements']}, T = {spk['T']}, {spk['encoding']} input")
    for layer in spk["layers"]:
        rates = ", ".join(f"{k} {v:.3f}" for k, v in layer["sparsity"].items())
        print(f"layer {layer['layer']} nonzero spike fraction: {rates}; recurrent input "
              f"{layer['recurrent_nonzero_fraction']:.3f}")
    for name, part in energy["spiking"].items():
        print(f"spiking ({name}): compute {part['compute_with_head_pj']:.1f} pJ/inference, with memory "
              f"{part['total_pj']:.1f} pJ")
    if energy.get("baseline") is not None:
        base = energy["baseline"]
        print(f"MAC baseline: compute {base['compute_with_head_pj']:.1f} pJ/inference, with memory "
              f"{base['total_pj']:.1f} pJ")
        low, high = energy["paper_ratio"]["direct" if spk["encoding"] == "direct" else "poisson"]
        print(f"energy ratio baseline/spiking ({energy['schedule']}): compute {energy['ratio']:.2f}x, with memory "
              f"{energy['ratio_with_memory']:.2f}x (paper: {low}-{high}x, compute only)")
    print(f"energy table: {energy['table_source']}")


def run(args: argparse.Namespace) -> int:
    """Execute ``snnhw energy``; returns the exit status."""
    golden_path = existing_file(args.golden, "golden model")
    baseline_path = existing_file(args.baseline, "baseline model") if args.baseline else None
    if args.samples is not None and args.samples < 1:
        raise UserError(f"--samples must be ≥ 1, got {args.samples}")
    json_out = output_file(args.json) if args.json else None
    progress = progress_enabled(args)

    from snnhw.cli.quantize import frozen_split
    from snnhw.quant.energy import load_energy_table

    table = load_energy_table(existing_file(args.table, "energy table") if args.table else None)
    spiking = _load(golden_path, "spiking")
    baseline = _load(baseline_path, "baseline") if baseline_path else None
    if baseline is not None and baseline.input_size != spiking.input_size:
        raise UserError(f"the baseline has {baseline.input_size} inputs, the spiking model {spiking.input_size}")
    split = frozen_split(spiking, golden_path, args.data_dir, args.split, progress)
    count = len(split.y) if args.samples is None else min(args.samples, len(split.y))
    record = energy_record(spiking, baseline, split.x[:count], split.lengths[:count], table, args.schedule,
                           progress)
    record.update(golden=str(golden_path), baseline=str(baseline_path) if baseline_path else None,
                  split=args.split, samples=count)
    _print(record)
    if json_out is not None:
        write_json(json_out, json.loads(json.dumps(record, default=float)))
    return 0
