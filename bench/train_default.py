"""Train the bundled default model (``src/snnhw/data_files/default_har*.pt``) reproducibly.

    /work/venv/bin/python bench/train_default.py --data-dir ../shared/data/uci-hapt

The default model is deliberately small so that ``snnhw build`` (generate, verify, Yosys) on it
is fast: a one-layer LSTM, H = 32 hidden units, single FC head, on the UCI HAR stand-in (UCI HAPT
raw recordings rebuilt into HAR windows: D = 9 channels, N = 128 samples, 6 classes), direct
encoding, T = 4 time steps, non-spiking g gate, θ/(2T) shifts, θ and λ trained.

Steps (all seeded, ``--seed``): train the non-spiking hard LSTM (``--hard-epochs`` on the whole
training split, cosine learning rate, best validation epoch kept), convert it to the spiking LSTM
(T = 4) and fine-tune it with surrogate gradients and distillation from the hard LSTM
(``--snn-epochs`` on the whole training split, or a seeded subset of ``--snn-limit-train``
windows). The defaults are the recipe of the bundled model (docs/build.md, "The bundled default
model"). Writes into ``--out-dir`` (default: the package's ``data_files/``):

* ``default_har_hard.pt``: the hard LSTM (source of the MAC baseline);
* ``default_har.pt``: the spiking LSTM; its ``source.init`` names ``default_har_hard.pt`` (a
  name relative to the checkpoint's folder, so the pair can move together);
* ``default_har.json``: settings, accuracies (float hard, converted, fine-tuned) and timings;
* ``default_har_samples.npz``: a seeded sample of normalised windows, ``calib_x`` / ``calib_y``
  and ``*_lengths`` (``--calib-samples`` training windows: the quantizer's calibration data for the direct-input
  scale) and ``test_x`` / ``test_y`` (``--test-samples`` test windows: verification sequences and
  an accuracy estimate when the full dataset is not at hand). ``--samples-only`` writes just this
  file (no training).

Bit-for-bit reproducibility of the weights needs the same torch version and thread count
(``snnhw.train.seed`` fixes 2 threads by default).
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "src" / "snnhw" / "data_files"


def write_samples(bundle: object, path: Path, calib: int, test: int, seed: int) -> Path:
    """Write a seeded sample of normalised training and test windows (float32) to ``path``."""
    import numpy as np

    rng = np.random.default_rng(seed)
    arrays: dict[str, np.ndarray] = {}
    for prefix, split, count in (("calib", bundle.train, calib), ("test", bundle.test, test)):  # type: ignore[attr-defined]
        x = np.asarray(split.x, dtype=np.float32)
        y = np.asarray(split.y, dtype=np.int64)
        pick = np.sort(rng.choice(x.shape[0], size=min(count, x.shape[0]), replace=False))
        arrays[f"{prefix}_x"], arrays[f"{prefix}_y"] = x[pick], y[pick]
        arrays[f"{prefix}_lengths"] = np.asarray(split.lengths, dtype=np.int64)[pick]
        arrays[f"{prefix}_index"] = pick.astype(np.int64)
    np.savez_compressed(path, **arrays)
    return path


def main(argv: list[str] | None = None) -> int:
    """Train, convert, fine-tune and save the default model pair; returns the exit status."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", required=True, help="UCI HAPT RawData (or UCI HAR release) folder")
    p.add_argument("--out-dir", default=str(DEFAULT_OUT), help=f"output folder (default {DEFAULT_OUT})")
    p.add_argument("--name", default="default_har", help="file stem (default default_har)")
    p.add_argument("--hidden", type=int, default=32, help="hidden units (default 32)")
    p.add_argument("--T", type=int, default=4, help="time steps per element (default 4)")
    p.add_argument("--hard-epochs", type=int, default=40, help="hard-LSTM epochs (default 40)")
    p.add_argument("--snn-epochs", type=int, default=8, help="spiking fine-tuning epochs (default 8)")
    p.add_argument("--snn-limit-train", type=int, default=0,
                   help="fine-tune on a seeded subset of this many training windows (default 0 = all)")
    p.add_argument("--lr", type=float, default=2e-3, help="hard-LSTM learning rate (default 2e-3)")
    p.add_argument("--snn-lr", type=float, default=2e-4, help="fine-tuning learning rate (default 2e-4)")
    p.add_argument("--batch-size", type=int, default=64, help="batch size (default 64)")
    p.add_argument("--schedule", default="cosine",
                   help="learning-rate schedule of both trainings: cosine (default) or constant")
    p.add_argument("--distill", type=float, default=0.7, metavar="ALPHA",
                   help="fine-tune with knowledge distillation from the hard LSTM (weight ALPHA; default 0.7, "
                        "0: cross-entropy only)")
    p.add_argument("--distill-temperature", type=float, default=2.0, metavar="T",
                   help="softmax temperature of the distillation targets (default 2)")
    p.add_argument("--patience", type=int, default=0, help="early-stopping patience in epochs (default 0: never)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default 2, or fewer cores)")
    p.add_argument("--calib-samples", type=int, default=192, help="bundled calibration windows (default 192)")
    p.add_argument("--test-samples", type=int, default=64, help="bundled test windows (default 64)")
    p.add_argument("--samples-only", action="store_true", help="only write the samples file")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    args = p.parse_args(argv)

    from snnhw.data.registry import load_dataset
    from snnhw.model import ModelConfig, build_model, convert_hard_to_spiking
    from snnhw.train.checkpoint import data_meta_of, save_checkpoint
    from snnhw.train.seed import seed_everything, set_threads
    from snnhw.train.trainer import evaluate, fit, subsample

    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    threads = set_threads(args.threads)
    t0 = time.perf_counter()
    bundle = load_dataset("har", args.data_dir, seed=args.seed, val_fraction=0.1, options={}, progress=args.progress)
    data_meta = data_meta_of(bundle)
    load_s = time.perf_counter() - t0
    samples_path = write_samples(bundle, out_dir / f"{args.name}_samples.npz", args.calib_samples,
                                 args.test_samples, args.seed)
    if args.samples_only:
        print(f"wrote {samples_path}", file=sys.stderr)
        return 0

    seed_everything(args.seed)
    cfg = ModelConfig(input_size=int(bundle.train.x.shape[2]), num_classes=len(bundle.class_names),
                      hidden_size=args.hidden)
    hard = build_model(cfg)
    t1 = time.perf_counter()
    hard_fit = fit(hard, bundle, epochs=args.hard_epochs, lr=args.lr, batch_size=args.batch_size, seed=args.seed,
                   patience=args.patience, progress=args.progress, schedule=args.schedule)
    hard_s = time.perf_counter() - t1
    hard_test = evaluate(hard, bundle.test)
    hard_metrics = {**hard_fit.to_dict(), "val_accuracy": hard_fit.best_val_accuracy,
                    "test_accuracy": hard_test["accuracy"], "test_loss": hard_test["loss"], "test_n": hard_test["n"]}
    hard_path = out_dir / f"{args.name}_hard.pt"
    save_checkpoint(hard_path, model=hard, data_meta=data_meta, class_names=bundle.class_names,
                    normalisation=bundle.normalisation, metrics=hard_metrics, history=hard_fit.history)
    print(f"hard LSTM: test {100 * hard_test['accuracy']:.2f} % ({hard_s:.0f} s)", file=sys.stderr)

    scfg = cfg.replace(spiking=True, T=args.T, encoding="direct", nonspiking_gate="g", shift=True)
    snn = convert_hard_to_spiking(hard, scfg)
    converted_test = evaluate(snn, bundle.test)
    converted_val = evaluate(snn, bundle.val)
    t2 = time.perf_counter()
    snn_bundle = bundle
    if args.snn_limit_train:
        snn_bundle = copy.copy(bundle)
        snn_bundle.train = subsample(bundle.train, args.snn_limit_train, args.seed)
    snn_fit = fit(snn, snn_bundle, epochs=args.snn_epochs, lr=args.snn_lr, batch_size=args.batch_size,
                  seed=args.seed, patience=args.patience, progress=args.progress, schedule=args.schedule,
                  teacher=hard if args.distill else None, distill=args.distill,
                  distill_temperature=args.distill_temperature)
    snn_s = time.perf_counter() - t2
    snn_test = evaluate(snn, bundle.test)
    source = {"kind": "conversion + fine-tuning", "init": hard_path.name, "init_metrics": hard_metrics,
              "init_config": cfg.to_dict(), "converted_val_accuracy": converted_val["accuracy"],
              "converted_test_accuracy": converted_test["accuracy"], "trained_by": "bench/train_default.py"}
    snn_metrics = {**snn_fit.to_dict(), "val_accuracy": snn_fit.best_val_accuracy,
                   "test_accuracy": snn_test["accuracy"], "test_loss": snn_test["loss"], "test_n": snn_test["n"],
                   "float_hard_test_accuracy": hard_test["accuracy"]}
    snn_path = out_dir / f"{args.name}.pt"
    save_checkpoint(snn_path, model=snn, data_meta=data_meta, class_names=bundle.class_names,
                    normalisation=bundle.normalisation, metrics=snn_metrics, history=snn_fit.history, source=source)
    summary = {
        "command": "bench/train_default.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "settings": {k: v for k, v in vars(args).items() if k != "progress"},
        "torch_threads": threads,
        "dataset": {"name": "har", "sizes": data_meta.get("sizes"), "layout": data_meta.get("layout")},
        "config": scfg.to_dict(),
        "accuracy": {"float_hard_test": hard_test["accuracy"], "converted_spiking_test": converted_test["accuracy"],
                     "fine_tuned_spiking_test": snn_test["accuracy"]},
        "seconds": {"load": round(load_s, 1), "hard_training": round(hard_s, 1), "fine_tuning": round(snn_s, 1)},
        "epochs": {"hard": hard_fit.epochs_run, "snn": snn_fit.epochs_run},
        "files": {"spiking": snn_path.name, "hard": hard_path.name, "samples": samples_path.name,
                  "bytes": {p.name: p.stat().st_size for p in (snn_path, hard_path, samples_path)}},
    }
    (out_dir / f"{args.name}.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"spiking T={args.T}: converted {100 * converted_test['accuracy']:.2f} %, fine-tuned "
          f"{100 * snn_test['accuracy']:.2f} % ({snn_s:.0f} s); wrote {snn_path} and {hard_path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
