"""Shared helpers of the accuracy benchmarks (``bench/accuracy_*.py``): datasets, the cached
hard-LSTM source models, spiking runs, the paper's anchors, markdown tables and JSON output.

Benchmarks are not tests: they need the real data in ``../shared/data`` (``--data-dir``) and
minutes to hours of CPU. Every figure they print is measured in that run (or loaded from a
cached checkpoint that records how it was measured); the paper's figures are printed beside
ours as anchors, on the paper's own datasets, which ours only stand in for.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from snnhw.data.registry import load_dataset
from snnhw.model import ModelConfig, build_model, convert_hard_to_spiking
from snnhw.train.checkpoint import data_meta_of, load_checkpoint, save_checkpoint
from snnhw.train.seed import seed_everything, set_threads
from snnhw.train.trainer import evaluate, fit, subsample

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA_DIR = REPO.parent / "shared" / "data"
"""``../shared/data`` relative to the repository root."""


@dataclass(frozen=True)
class StandIn:
    """One benchmark dataset: our loader and folder, and the paper's dataset it stands in for."""

    loader: str
    folder: str
    paper_name: str
    head_hidden: int
    anchor: float | None
    """The paper's best spiking accuracy on its dataset, in % (Table 2), or None."""
    anchor_T: int | None


STAND_INS: dict[str, StandIn] = {
    "har": StandIn("har", "uci-hapt", "UCI", 0, 90.78, 4),
    "fsdd": StandIn("fsdd", "fsdd", "GSC", 32, 95.02, 4),
    "mnist": StandIn("mnist", "mnist-10k", "T-MNIST", 0, 98.93, 8),
}
"""Benchmark name → stand-in. Heads follow the paper: one FC layer for T-MNIST and UCI,
FC 32 → classes for GSC (stood in for by FSDD)."""

PAPER_TABLE1: dict[str, dict[str, tuple[str, str]]] = {
    # row → paper dataset → (P, NP) test accuracy in %, T = 2, direct encoding, 1 layer (Table 1).
    "NS (hard LSTM)": {"T-MNIST": ("-", "98.6±0.2"), "GSC": ("-", "95.42±0.1"), "UCI": ("-", "90.37±0.2")},
    "S baseline": {"T-MNIST": ("97.84±0.2", "97.74±0.3"), "GSC": ("90.59±0.2", "63.45±0.2"),
                   "UCI": ("88.17±0.2", "87.63±0.1")},
    "+ Vth shift": {"T-MNIST": ("97.98±0.2", "97.87±0.1"), "GSC": ("92.05±0.1", "91.45±0.2"),
                    "UCI": ("88.60±0.2", "88.13±0.3")},
    "+ Vth train": {"T-MNIST": ("97.92±0.1", "97.84±0.2"), "GSC": ("92.87±0.2", "91.33±0.3"),
                    "UCI": ("88.64±0.3", "86.87±0.2")},
    "+ λ train": {"T-MNIST": ("98.0±0.2", "97.95±0.2"), "GSC": ("93.57±0.1", "92.14±0.1"),
                  "UCI": ("89.13±0.4", "87.50±0.3")},
    "+ NS sig_i": {"T-MNIST": ("98.1±0.3", "97.98±0.1"), "GSC": ("94.75±0.1", "92.63±0.2"),
                   "UCI": ("89.23±0.2", "89.20±0.2")},
    "+ NS tanh_g": {"T-MNIST": ("98.15±0.1", "98.12±0.2"), "GSC": ("94.53±0.2", "92.61±0.3"),
                    "UCI": ("89.40±0.3", "89.12±0.1")},
}


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """Arguments every accuracy benchmark takes."""
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR,
                        help=f"folder holding the stand-in datasets (default {DEFAULT_DATA_DIR})")
    parser.add_argument("--datasets", nargs="+", choices=sorted(STAND_INS), default=["har", "mnist", "fsdd"])
    parser.add_argument("--hard-epochs", type=int, default=30, help="max epochs of the hard-LSTM source")
    parser.add_argument("--epochs", type=int, default=10, help="max epochs of each spiking run")
    parser.add_argument("--lr", type=float, default=2e-3, help="AdamW learning rate of the hard LSTM")
    parser.add_argument("--snn-lr", type=float, default=1e-3, help="AdamW learning rate of the spiking runs")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--patience", type=int, default=5)
    parser.add_argument("--limit-train", type=int, default=None, metavar="K",
                        help="train on a random subset of K training sequences (quick runs)")
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache-dir", type=Path, default=REPO / "runs" / "bench-cache",
                        help="where trained hard-LSTM checkpoints (and dataset windows) are kept for reuse")
    parser.add_argument("--hard-ckpt", action="append", default=[], metavar="DATASET=PATH",
                        help="use this hard-LSTM checkpoint (e.g. from snnhw train) as the source of DATASET; "
                             "its data are rebuilt from the checkpoint")
    parser.add_argument("--out", type=Path, default=None, help="write all results as JSON here")
    parser.add_argument("--schedule", default="constant", help="learning-rate schedule: constant or cosine")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default 2)")
    parser.add_argument("--augment-roll", type=int, nargs=2, default=(0, 0), metavar=("ELEMENTS", "FEATURES"),
                        help="random circular shifts of training sequences (see snnhw train --augment-roll)")
    parser.add_argument("--no-progress", dest="progress", action="store_false")


def log(message: str) -> None:
    """A progress line on stderr (stdout carries the tables)."""
    print(message, file=sys.stderr, flush=True)


def load_bundle(name: str, args: argparse.Namespace) -> Any:
    """The stand-in dataset ``name`` (train split subsampled to ``--limit-train``)."""
    stand_in = STAND_INS[name]
    options = {"cache_dir": str(args.cache_dir / "data")} if stand_in.loader in ("har", "fsdd") else {}
    if stand_in.loader == "fsdd":
        options["align"] = "end"  # the word ends on the last frame, where the readout is taken
    bundle = load_dataset(stand_in.loader, args.data_dir / stand_in.folder, seed=args.seed,
                          options=options, progress=args.progress)
    if args.limit_train is not None:
        bundle.train = subsample(bundle.train, args.limit_train, args.seed)
    return bundle


def source_and_data(name: str, args: argparse.Namespace) -> tuple[Any, torch.nn.Module, dict[str, Any]]:
    """The data and trained hard LSTM of dataset ``name``: from ``--hard-ckpt`` when given
    (data rebuilt from the checkpoint's record), else :func:`load_bundle` + :func:`hard_source`.

    Returns ``(bundle, hard model, hard metrics)``; the train split is subsampled to
    ``--limit-train`` for the spiking runs.
    """
    given = dict(item.split("=", 1) for item in args.hard_ckpt)
    if name not in given:
        bundle = load_bundle(name, args)
        return (bundle, *hard_source(name, bundle, args))
    ckpt = load_checkpoint(Path(given[name]))
    if ckpt.data_meta.get("dataset") != STAND_INS[name].loader or ckpt.cfg.spiking:
        raise SystemExit(f"--hard-ckpt {given[name]} is not a hard LSTM trained on {name}")
    log(f"{name}: using hard LSTM {given[name]}")
    bundle = ckpt.load_data(progress=args.progress)
    if args.limit_train is not None:
        bundle.train = subsample(bundle.train, args.limit_train, args.seed)
    return bundle, ckpt.build_model(), ckpt.metrics


def hard_source(name: str, bundle: Any, args: argparse.Namespace) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The trained hard LSTM of dataset ``name``: loaded from ``--cache-dir`` or trained and cached.

    Returns the model and its metrics (test accuracy as a fraction, seconds per epoch, ...).
    """
    args.cache_dir.mkdir(parents=True, exist_ok=True)
    limit = "all" if args.limit_train is None else args.limit_train
    path = args.cache_dir / (f"hard-{name}-h{args.hidden}-e{args.hard_epochs}-lr{args.lr:g}"
                             f"-b{args.batch_size}-n{limit}-s{args.seed}.pt")
    if path.exists():
        ckpt = load_checkpoint(path)
        log(f"{name}: using cached hard LSTM {path}")
        return ckpt.build_model(), ckpt.metrics
    cfg = ModelConfig(input_size=int(bundle.train.x.shape[2]), num_classes=len(bundle.class_names),
                      hidden_size=args.hidden, head_hidden=STAND_INS[name].head_hidden)
    seed_everything(args.seed)
    model = build_model(cfg)
    log(f"{name}: training the hard LSTM source ({args.hard_epochs} epochs max)")
    result = fit(model, bundle, epochs=args.hard_epochs, lr=args.lr, batch_size=args.batch_size, seed=args.seed,
                 patience=args.patience, progress=args.progress, schedule=args.schedule, threads=args.threads,
                 augment_roll=tuple(args.augment_roll))
    test = evaluate(model, bundle.test)
    metrics = {**result.to_dict(), "test_accuracy": test["accuracy"], "test_n": test["n"]}
    save_checkpoint(path, model=model, data_meta=data_meta_of(bundle, limit_train=args.limit_train),
                    class_names=bundle.class_names, normalisation=bundle.normalisation, metrics=metrics,
                    history=result.history, source=None)
    return model, metrics


def spiking_run(hard: torch.nn.Module | None, cfg: ModelConfig, bundle: Any, args: argparse.Namespace,
                *, train: bool = True) -> dict[str, Any]:
    """Convert ``hard`` to ``cfg`` (or build ``cfg`` from scratch when ``hard`` is None), then
    optionally fine-tune/train; returns test accuracies (fractions) and timings (seconds).

    Keys: ``converted_test_accuracy`` (conversion only; None from scratch),
    ``test_accuracy`` (after training; None when ``train`` is False), ``seconds_per_epoch``,
    ``epochs_run``, ``best_epoch``.
    """
    seed_everything(args.seed)
    if hard is not None:
        model = convert_hard_to_spiking(hard, cfg)
        converted = evaluate(model, bundle.test)["accuracy"]
    else:
        model = build_model(cfg)
        converted = None
    record: dict[str, Any] = {"config": cfg.to_dict(), "pretrained": hard is not None,
                              "converted_test_accuracy": converted, "test_accuracy": None,
                              "seconds_per_epoch": None, "epochs_run": 0, "best_epoch": None}
    if train:
        start = time.perf_counter()
        result = fit(model, bundle, epochs=args.epochs, lr=args.snn_lr, batch_size=args.batch_size,
                     seed=args.seed, patience=args.patience, progress=args.progress, schedule=args.schedule,
                     threads=args.threads, augment_roll=tuple(args.augment_roll))
        record.update(test_accuracy=evaluate(model, bundle.test)["accuracy"],
                      seconds_per_epoch=result.seconds_per_epoch, epochs_run=result.epochs_run,
                      best_epoch=result.best_epoch, train_seconds=time.perf_counter() - start)
    return record


def pct(value: float | None) -> str:
    """A fraction as a percentage with two decimals, or "–" when not measured."""
    return "–" if value is None else f"{100 * value:.2f}"


def markdown_table(headers: list[str], rows: list[list[str]]) -> str:
    """A GitHub-markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def environment(threads: int | None = None) -> dict[str, Any]:
    """Set torch's threads (``None``: the default) and say what the figures were measured on (JSON record)."""
    return {"torch": torch.__version__, "threads": set_threads(threads), "python": sys.version.split()[0],
            "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def write_results(path: Path | None, results: dict[str, Any]) -> None:
    """Write ``results`` as JSON to ``path`` (when given)."""
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
        log(f"wrote {path}")
