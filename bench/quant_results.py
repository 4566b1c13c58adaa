"""Quantizer and golden-model results: integer vs float accuracy, weight-width sweep, saturation,
golden-model speed, spike sparsity and energy (spiking vs MAC baseline).

Usage (from the repository root; needs the stand-in data in ``../shared/data`` and trained
checkpoints)::

    nice -n 10 python bench/quant_results.py --ckpt-dir runs/front --ckpt-dir runs/quant/ckpt \\
        --out runs/quant/results.json

For each dataset (HAR, MNIST-10k, FSDD) the script takes a spiking checkpoint (``--ckpt
DATASET=PATH``, else the first spiking checkpoint of that dataset found in the ``--ckpt-dir``
folders, T = 4 preferred) and its non-spiking source (``--hard DATASET=PATH``, else the
checkpoint's recorded source), quantizes both at ``--bits`` weight widths and runs the integer
golden models:

* 8-bit (``--main-bits``) on the whole test split: accuracy (beside the float models' accuracy
  recorded in their checkpoints, measured on the same split), saturation counts per register,
  operation counters → spike sparsity per gate and energy per inference (Horowitz 45 nm table);
* every width of ``--bits`` on the first ``--sweep-samples`` test sequences, beside the float
  models evaluated afresh on the same subset;
* the golden model's speed (sequences/s) on ``--speed-samples`` HAR test sequences, without
  counters or saturation flags, with the machine's load average recorded beside it.

Every figure printed is measured in this run; nothing is hard-coded except the paper's
anchors (energy ratio 2.8–5.1× direct / 1.8–3.5× Poisson), printed beside ours.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA_DIR = REPO.parent / "shared" / "data"
FOLDERS = {"har": "uci-hapt", "mnist": "mnist-10k", "fsdd": "fsdd"}


def log(message: str) -> None:
    """Progress on stderr (stdout carries the tables)."""
    print(message, file=sys.stderr, flush=True)


def pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.2f}"


def table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def find_checkpoints(name: str, args: argparse.Namespace) -> tuple[Path | None, Path | None]:
    """(spiking checkpoint, hard source) for dataset ``name``."""
    from snnhw.train.checkpoint import load_checkpoint

    given = dict(item.split("=", 1) for item in args.ckpt)
    hard_given = dict(item.split("=", 1) for item in args.hard)
    spiking: Path | None = Path(given[name]) if name in given else None
    if spiking is None:
        found = []
        for folder in args.ckpt_dir:
            for path in sorted(Path(folder).glob("*.pt")):
                try:
                    ck = load_checkpoint(path)
                except Exception:  # noqa: BLE001 - a foreign file in the folder is skipped
                    continue
                if ck.cfg.spiking and ck.data_meta.get("dataset") == name:
                    found.append((ck.cfg.T != 4, str(path)))
        spiking = Path(sorted(found)[0][1]) if found else None
    hard: Path | None = Path(hard_given[name]) if name in hard_given else None
    if hard is None and spiking is not None:
        source = load_checkpoint(spiking).source or {}
        recorded = source.get("from") or source.get("init")
        hard = Path(recorded) if recorded and Path(recorded).is_file() else None
    return spiking, hard


def run_dataset(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """All measurements of one dataset."""
    from snnhw.quant.energy import energy_report
    from snnhw.quant.golden import run_baseline, run_spiking
    from snnhw.quant.quantizer import quantize_baseline, quantize_input, quantize_spiking
    from snnhw.train.checkpoint import load_checkpoint
    from snnhw.train.trainer import evaluate

    spk_path, hard_path = find_checkpoints(name, args)
    if spk_path is None:
        log(f"{name}: no spiking checkpoint found; skipped")
        return {"skipped": "no spiking checkpoint"}
    log(f"{name}: spiking {spk_path}, hard source {hard_path}")
    ckpt = load_checkpoint(spk_path)
    hard_ckpt = load_checkpoint(hard_path) if hard_path else None
    bundle = ckpt.load_data(args.data_dir / FOLDERS[name], progress=args.progress)
    rng = np.random.default_rng(0)
    cal = rng.permutation(len(bundle.train))[:args.calib_samples]
    x_cal, l_cal = bundle.train.x[np.sort(cal)].astype(np.float64), bundle.train.lengths[np.sort(cal)]
    n_max = max(bundle.train.seq_len, bundle.test.seq_len)
    test = bundle.test
    if args.test_samples is not None and args.test_samples < len(test):
        test = test.subset(np.arange(args.test_samples))
    whole = len(test) == len(bundle.test)
    sub = min(args.sweep_samples, len(test))
    subset = test.subset(np.arange(sub))
    spk_model = ckpt.build_model()
    hard_model = hard_ckpt.build_model() if hard_ckpt else None
    out: dict[str, Any] = {
        "spiking_checkpoint": str(spk_path), "hard_checkpoint": str(hard_path) if hard_path else None,
        "config": ckpt.cfg.to_dict(), "test_n": len(test), "sweep_n": sub,
        "test_is_whole_split": whole,
        "leaks": {f"L{i + 1}.{k}": float(v.detach()) for i, layer in enumerate(spk_model.layers)
                  for k, v in layer.leak.items()},
    }
    def float_accuracy(model: Any, recorded: Any, data: Any) -> tuple[float, str]:
        """Accuracy of a float model on ``data``: the checkpoint's record when it covers the same split."""
        if recorded is not None and len(data) == len(bundle.test) and len(data) == len(test) and whole:
            return float(recorded), "recorded in the checkpoint"
        log(f"{name}: evaluating a float model on {len(data)} test sequences")
        return float(evaluate(model, data)["accuracy"]), "evaluated by this script"

    out["float_spiking_test_accuracy"], out["float_spiking_test_source"] = float_accuracy(
        spk_model, ckpt.metrics.get("test_accuracy"), test)
    out["float_hard_test_accuracy"], out["float_hard_test_source"] = float_accuracy(
        hard_model, hard_ckpt.metrics.get("test_accuracy"), test) if hard_ckpt else (None, None)
    if sub == len(test):
        out["float_spiking_sweep_accuracy"] = out["float_spiking_test_accuracy"]
        out["float_hard_sweep_accuracy"] = out["float_hard_test_accuracy"]
    else:
        out["float_spiking_sweep_accuracy"] = float_accuracy(spk_model, None, subset)[0]
        out["float_hard_sweep_accuracy"] = float_accuracy(hard_model, None, subset)[0] if hard_model else None
    sweep: dict[str, Any] = {}
    for bits in args.bits:
        log(f"{name}: {bits}-bit")
        frozen = quantize_spiking(spk_model, weight_bits=bits, input_bits=args.input_bits, calib_x=x_cal,
                                  calib_lengths=l_cal, n_max=n_max)
        entry: dict[str, Any] = {"acc_bits": [layer.acc_bits for layer in frozen.layers],
                                 "membrane_bits_f": [layer.f.membrane_bits for layer in frozen.layers],
                                 "cell_bits": [layer.cell_bits for layer in frozen.layers],
                                 "leak_terms": {f"L{i + 1}.{g}": [list(t) for t in getattr(layer, g).leak]
                                                for i, layer in enumerate(frozen.layers)
                                                for g in ("f", "i", "g", "o", "c") if hasattr(getattr(layer, g), "leak")}}
        x_sub = quantize_input(frozen, subset.x)
        res = run_spiking(frozen, x_sub, subset.lengths, saturation=True, progress=args.progress)
        entry["spiking_sweep_accuracy"] = float((res.classes == subset.y).mean())
        entry["spiking_sweep_saturation"] = res.saturation
        base = None
        if hard_model is not None:
            base = quantize_baseline(hard_model, weight_bits=bits, input_bits=args.input_bits, calib_x=x_cal,
                                     calib_lengths=l_cal, n_max=n_max)
            res_b = run_baseline(base, quantize_input(base, subset.x), subset.lengths, saturation=True,
                                 progress=args.progress)
            entry["baseline_sweep_accuracy"] = float((res_b.classes == subset.y).mean())
            entry["baseline_act_shift"] = [layer.act_shift for layer in base.layers]
        if bits == args.main_bits:
            log(f"{name}: {bits}-bit on the whole test split with counters")
            start = time.perf_counter()
            full = run_spiking(frozen, quantize_input(frozen, test.x), test.lengths, saturation=True, counters=True,
                               progress=args.progress)
            entry["spiking_test_seconds"] = time.perf_counter() - start
            entry["spiking_test_accuracy"] = float((full.classes == test.y).mean())
            entry["spiking_test_saturation"] = full.saturation
            base_counters = None
            if base is not None:
                full_b = run_baseline(base, quantize_input(base, test.x), test.lengths, saturation=True,
                                      counters=True, progress=args.progress)
                entry["baseline_test_accuracy"] = float((full_b.classes == test.y).mean())
                entry["baseline_test_saturation"] = full_b.saturation
                base_counters = full_b.counters
            entry["sparsity"] = [layer["sparsity"] for layer in full.counters["layers"]]
            entry["recurrent_nonzero"] = [layer["recurrent_nonzero_fraction"] for layer in full.counters["layers"]]
            energy = {}
            for schedule in ("dense", "event"):
                rep = energy_report(full.counters, base_counters, schedule=schedule)
                energy[schedule] = {k: rep[k] for k in ("spiking_pj", "baseline_pj", "ratio", "ratio_with_memory")}
            energy["paper_ratio"] = rep["paper_ratio"]
            energy["table_source"] = rep["table_source"]
            entry["energy"] = energy
            if name == "har" and args.speed_samples:
                count = min(args.speed_samples, len(test))
                x_q = quantize_input(frozen, test.x[:count])
                start = time.perf_counter()
                run_spiking(frozen, x_q, test.lengths[:count])
                seconds = time.perf_counter() - start
                out["speed"] = {"sequences": count, "seconds": seconds, "sequences_per_second": count / seconds,
                                "loadavg_1min": os.getloadavg()[0], "cpus": os.cpu_count(),
                                "N": int(test.seq_len), "H": frozen.hidden_size, "T": frozen.T}
        sweep[str(bits)] = entry
    out["sweep"] = sweep
    return out


def report(results: dict[str, Any], args: argparse.Namespace) -> str:
    """Markdown tables of the results."""
    main = str(args.main_bits)
    parts = []
    rows = []
    for name, r in results["datasets"].items():
        if "skipped" in r:
            rows.append([name, "not run: " + r["skipped"]] + [""] * 5)
            continue
        e = r["sweep"][main]
        rows.append([name, f"T={r['config']['T']}, H={r['config']['hidden_size']}, {r['config']['encoding']}",
                     pct(r["float_spiking_test_accuracy"]), pct(e["spiking_test_accuracy"]),
                     pct(r["float_hard_test_accuracy"]), pct(e.get("baseline_test_accuracy")), str(r["test_n"])])
    parts.append(f"Accuracy on the test split ({main}-bit weights, {args.input_bits}-bit direct input, %; n = sequences used):\n\n" + table(
        ["dataset", "model", "float spiking", "golden spiking", "float hard LSTM", "golden MAC baseline", "n"], rows))
    rows = []
    for name, r in results["datasets"].items():
        if "skipped" in r:
            continue
        rows.append([name, "spiking", pct(r["float_spiking_sweep_accuracy"])]
                    + [pct(r["sweep"][str(b)]["spiking_sweep_accuracy"]) for b in args.bits] + [str(r["sweep_n"])])
        if r["float_hard_sweep_accuracy"] is not None:
            rows.append([name, "MAC baseline", pct(r["float_hard_sweep_accuracy"])]
                        + [pct(r["sweep"][str(b)].get("baseline_sweep_accuracy")) for b in args.bits]
                        + [str(r["sweep_n"])])
    parts.append("Weight-width sweep (accuracy %, first test sequences):\n\n" + table(
        ["dataset", "model", "float"] + [f"{b}-bit" for b in args.bits] + ["n"], rows))
    rows = []
    for name, r in results["datasets"].items():
        if "skipped" in r:
            continue
        e = r["sweep"][main]
        for which in ("spiking", "baseline"):
            sat = e.get(f"{which}_test_saturation")
            if sat is None:
                continue
            for index, layer in enumerate(sat):
                rows.append([name, which, str(index + 1), ", ".join(f"{k} {v}" for k, v in layer.items())])
    parts.append(f"Saturated register updates on the whole test split ({main}-bit):\n\n"
                 + table(["dataset", "model", "layer", "counts per register"], rows))
    rows = []
    for name, r in results["datasets"].items():
        if "skipped" in r:
            continue
        e = r["sweep"][main]
        for index, sp in enumerate(e["sparsity"]):
            rows.append([name, str(index + 1)] + [f"{sp.get(k, float('nan')):.3f}" if k in sp else "–"
                                                  for k in ("f", "i", "g", "o", "s_c", "h")]
                        + [f"{e['recurrent_nonzero'][index]:.3f}"])
    parts.append("Spike activity (fraction of nonzero outputs per gate; recurrent input = nonzero h(n−1)):\n\n"
                 + table(["dataset", "layer", "f", "i", "g", "o", "s_c", "h", "recurrent input"], rows))
    rows = []
    for name, r in results["datasets"].items():
        if "skipped" in r:
            continue
        en = r["sweep"][main]["energy"]
        for schedule in ("dense", "event"):
            s = en[schedule]
            rows.append([name, schedule, f"{s['spiking_pj']:.0f}", "–" if s["baseline_pj"] is None else
                         f"{s['baseline_pj']:.0f}", "–" if s["ratio"] is None else f"{s['ratio']:.2f}×",
                         "–" if s["ratio_with_memory"] is None else f"{s['ratio_with_memory']:.2f}×",
                         f"{en['paper_ratio']['direct'][0]}–{en['paper_ratio']['direct'][1]}×"])
    parts.append("Energy per inference (operation counts × Horowitz 45 nm, pJ; compute = LSTM arithmetic + head):\n\n"
                 + table(["dataset", "spiking schedule", "spiking pJ", "MAC baseline pJ", "ratio (compute)",
                          "ratio (with memory reads)", "paper (direct)"], rows))
    speed = results["datasets"].get("har", {}).get("speed")
    if speed:
        parts.append(f"Golden-model speed on HAR test sequences: {speed['sequences_per_second']:.1f} sequences/s "
                     f"({speed['sequences']} sequences, N={speed['N']}, H={speed['H']}, T={speed['T']}, "
                     f"{speed['seconds']:.1f} s; 1-min load average {speed['loadavg_1min']:.1f} on "
                     f"{speed['cpus']} CPUs).")
    return "\n\n".join(parts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--ckpt-dir", type=Path, action="append", default=[],
                        help="folder searched for checkpoints (repeatable; default runs/front and runs/quant/ckpt)")
    parser.add_argument("--ckpt", action="append", default=[], metavar="DATASET=PATH", help="spiking checkpoint")
    parser.add_argument("--hard", action="append", default=[], metavar="DATASET=PATH", help="hard-LSTM source")
    parser.add_argument("--datasets", nargs="+", choices=sorted(FOLDERS), default=["har", "mnist", "fsdd"])
    parser.add_argument("--bits", type=int, nargs="+", default=[4, 6, 8, 12])
    parser.add_argument("--main-bits", type=int, default=8)
    parser.add_argument("--input-bits", type=int, default=8, help="signed direct-input width b_x (default 8)")
    parser.add_argument("--calib-samples", type=int, default=512)
    parser.add_argument("--sweep-samples", type=int, default=500)
    parser.add_argument("--test-samples", type=int, default=None,
                        help="use only the first N test sequences for the main comparison (default: all)")
    parser.add_argument("--speed-samples", type=int, default=256)
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "quant" / "results.json")
    parser.add_argument("--no-progress", dest="progress", action="store_false")
    parser.add_argument("--merge", type=Path, nargs="+", metavar="JSON",
                        help="only print the tables of earlier runs' JSON files (datasets merged)")
    args = parser.parse_args()
    if args.main_bits not in args.bits:
        args.bits.append(args.main_bits)
    if args.merge:
        merged: dict[str, Any] = {"datasets": {}}
        for path in args.merge:
            merged["datasets"].update(json.loads(path.read_text())["datasets"])
        text = report(merged, args)
        args.out.with_suffix(".md").write_text(text + "\n")
        print(text)
        return 0
    if not args.ckpt_dir:
        args.ckpt_dir = [REPO / "runs" / "front", REPO / "runs" / "quant" / "ckpt"]
    from snnhw.train.seed import set_threads

    results: dict[str, Any] = {"threads": set_threads(), "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                               "argv": sys.argv[1:], "datasets": {}}
    for name in args.datasets:
        results["datasets"][name] = run_dataset(name, args)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2, sort_keys=True, default=float) + "\n")
    text = report(results, args)
    args.out.with_suffix(".md").write_text(text + "\n")
    print(text)
    log(f"wrote {args.out} and {args.out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
