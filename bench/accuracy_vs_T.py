"""Accuracy vs time steps T: conversion only and conversion + SNN fine-tuning, direct and rate
encoding (the paper's Fig. 3), on the stand-in datasets, with the paper's best figures
(Table 2: UCI 90.78 % and GSC 95.02 % at T = 4, T-MNIST 98.93 % at T = 8) as anchors.

All spiking models use the defaults of snnhw (shifts on, θ and λ trained, non-spiking g),
1 layer, hidden 128, converted from the same cached hard LSTM.

Usage::

    python bench/accuracy_vs_T.py --datasets har --Ts 1 2 4 --train-Ts 4 --epochs 3 --out vs_T.json
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from common import (STAND_INS, add_common_args, environment, log, markdown_table, pct, source_and_data,
                    spiking_run, write_results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(parser)
    parser.add_argument("--Ts", nargs="+", type=int, default=[1, 2, 4, 8], help="time steps to measure")
    parser.add_argument("--encodings", nargs="+", choices=("direct", "rate"), default=["direct", "rate"])
    parser.add_argument("--train-Ts", nargs="*", type=int, default=None,
                        help="time steps that also get SNN fine-tuning (default: all of --Ts; none: conversion only)")
    args = parser.parse_args()
    train_Ts = set(args.Ts if args.train_Ts is None else args.train_Ts)
    results: dict[str, Any] = {"benchmark": "accuracy_vs_T", "settings": {
        k: (str(v) if hasattr(v, "__fspath__") else v) for k, v in vars(args).items()}, "env": environment(args.threads),
        "datasets": {}}
    tables = []
    for name in args.datasets:
        stand_in = STAND_INS[name]
        bundle, hard, hard_metrics = source_and_data(name, args)
        runs: dict[str, dict[str, Any]] = {}
        lines = []
        for T in args.Ts:
            cells: list[str] = [str(T)]
            seconds: list[str] = []
            for encoding in args.encodings:
                cfg = hard.cfg.replace(spiking=True, T=T, encoding=encoding)
                log(f"{name}: T={T}, {encoding}" + (", fine-tuning" if T in train_Ts else ", conversion only"))
                start = time.perf_counter()
                run = spiking_run(hard, cfg, bundle, args, train=T in train_Ts)
                run["wall_seconds"] = time.perf_counter() - start
                runs[f"T{T}-{encoding}"] = run
                cells += [pct(run["converted_test_accuracy"]), pct(run["test_accuracy"])]
                if run["seconds_per_epoch"]:
                    seconds.append(f"{run['seconds_per_epoch']:.1f}")
            anchor = f"{stand_in.anchor:.2f}" if stand_in.anchor is not None and T == stand_in.anchor_T else ""
            lines.append(cells + [anchor, " / ".join(seconds) or "–"])
        results["datasets"][name] = {"stand_in_for": stand_in.paper_name, "hard": hard_metrics, "runs": runs,
                                     "sizes": bundle.meta["sizes"]}
        headers = ["T"]
        for encoding in args.encodings:
            headers += [f"{encoding}: conversion (%)", f"{encoding}: + SNN training (%)"]
        headers += [f"paper {stand_in.paper_name}, conv. + SNN training (%)",
                    "s/epoch (" + " / ".join(args.encodings) + ")"]
        title = (f"### {name} (stand-in for {stand_in.paper_name}); hard LSTM {pct(hard_metrics['test_accuracy'])} %, "
                 f"{hard_metrics['seconds_per_epoch']:.1f} s/epoch; train/val/test = "
                 f"{bundle.meta['sizes']['train']}/{bundle.meta['sizes']['val']}/{bundle.meta['sizes']['test']}"
                 + (f", train subset {args.limit_train}" if args.limit_train else ""))
        tables.append(title + "\n\n" + markdown_table(headers, lines))
    print("\n\n".join(tables))
    write_results(args.out, results)


if __name__ == "__main__":
    main()
