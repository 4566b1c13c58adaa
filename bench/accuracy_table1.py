"""Table 1 analogue: the ablation of the paper's techniques at T = 2, direct encoding, 1 layer.

Rows follow the paper's Table 1: the non-spiking hard LSTM; the spiking LSTM baseline (no
shift, θ and λ fixed); + the θ/(2T) shifts; + θ training; + λ training; non-spiking i vs
non-spiking g. Columns: P (converted from the trained hard LSTM, then SNN fine-tuning), NP
(spiking LSTM trained from scratch), and P before fine-tuning (conversion only). The paper's
P/NP figures are printed beside ours.

One difference from the paper: its first four spiking rows make both i and g spiking; snnhw's
model always keeps exactly one of them non-spiking (selective conversion; the other one spikes,
so every product in the cell has a spike operand: ``docs/model.md``, "Spiking LSTM"), so those
rows use non-spiking g, and the last row ("+ NS tanh_g") is the same
configuration as "+ λ train" (measured once, printed in both rows).

Usage::

    python bench/accuracy_table1.py --datasets har --epochs 5 --limit-train 2000 --out table1.json
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from common import (PAPER_TABLE1, STAND_INS, add_common_args, environment, log, markdown_table, pct,
                    source_and_data, spiking_run, write_results)

ROWS: dict[str, tuple[str, dict[str, Any]]] = {
    "baseline": ("S baseline", {"shift": False, "train_theta": False, "train_leak": False, "nonspiking_gate": "g"}),
    "shift": ("+ Vth shift", {"shift": True, "train_theta": False, "train_leak": False, "nonspiking_gate": "g"}),
    "theta": ("+ Vth train", {"shift": True, "train_theta": True, "train_leak": False, "nonspiking_gate": "g"}),
    "leak": ("+ λ train", {"shift": True, "train_theta": True, "train_leak": True, "nonspiking_gate": "g"}),
    "ns-i": ("+ NS sig_i", {"shift": True, "train_theta": True, "train_leak": True, "nonspiking_gate": "i"}),
    "ns-g": ("+ NS tanh_g", {"shift": True, "train_theta": True, "train_leak": True, "nonspiking_gate": "g"}),
}
"""Spiking row key (``--rows``) → (the paper's row label, the ModelConfig switches of that row)."""

T_TABLE1 = 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(parser)
    parser.add_argument("--modes", nargs="+", choices=("P", "NP"), default=["P", "NP"],
                        help="P: convert + fine-tune; NP: spiking from scratch")
    parser.add_argument("--rows", nargs="+", choices=list(ROWS), default=list(ROWS), help="spiking rows to run")
    args = parser.parse_args()
    results: dict[str, Any] = {"benchmark": "table1", "T": T_TABLE1, "encoding": "direct", "settings": {
        k: (str(v) if hasattr(v, "__fspath__") else v) for k, v in vars(args).items()}, "env": environment(args.threads),
        "datasets": {}}
    tables = []
    for name in args.datasets:
        stand_in = STAND_INS[name]
        bundle, hard, hard_metrics = source_and_data(name, args)
        measured: dict[str, dict[str, Any]] = {}
        runs: dict[tuple[str, str], dict[str, Any]] = {}  # (switches, mode) → run, to reuse equal configs
        for row in args.rows:
            label, switches = ROWS[row]
            key = repr(sorted(switches.items()))
            cfg = hard.cfg.replace(spiking=True, T=T_TABLE1, encoding="direct", **switches)
            measured[row] = {}
            for mode in args.modes:
                if (key, mode) not in runs:
                    log(f"{name}: {label}, {mode}")
                    start = time.perf_counter()
                    runs[key, mode] = spiking_run(hard if mode == "P" else None, cfg, bundle, args)
                    runs[key, mode]["wall_seconds"] = time.perf_counter() - start
                measured[row][mode] = runs[key, mode]
        results["datasets"][name] = {"stand_in_for": stand_in.paper_name, "hard": hard_metrics, "rows": measured,
                                     "sizes": bundle.meta["sizes"]}
        paper = {row: PAPER_TABLE1[row][stand_in.paper_name] for row in PAPER_TABLE1}
        lines = [["NS (hard LSTM)", "–", pct(hard_metrics["test_accuracy"]), "–", *paper["NS (hard LSTM)"],
                  f"{hard_metrics['seconds_per_epoch']:.1f}"]]
        for row in args.rows:
            label = ROWS[row][0]
            got = measured[row]
            p, np_ = got.get("P"), got.get("NP")
            spe = [f"{r['seconds_per_epoch']:.1f}" for r in (p, np_) if r and r["seconds_per_epoch"]]
            lines.append([label, pct(p["test_accuracy"]) if p else "–", pct(np_["test_accuracy"]) if np_ else "–",
                          pct(p["converted_test_accuracy"]) if p else "–", *paper[label], " / ".join(spe)])
        title = (f"### {name} (stand-in for {stand_in.paper_name}), T = {T_TABLE1}, direct encoding; "
                 f"train/val/test = {bundle.meta['sizes']['train']}/{bundle.meta['sizes']['val']}/"
                 f"{bundle.meta['sizes']['test']}" + (f", train subset {args.limit_train}" if args.limit_train else ""))
        tables.append(title + "\n\n" + markdown_table(
            ["row", "ours P (%)", "ours NP (%)", "ours P, conversion only (%)",
             f"paper {stand_in.paper_name} P (%)", f"paper {stand_in.paper_name} NP (%)", "s/epoch (P / NP)"],
            lines))
    print("\n\n".join(tables))
    write_results(args.out, results)


if __name__ == "__main__":
    main()
