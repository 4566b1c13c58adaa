"""``snnhw demo``: the whole flow in a few minutes on two CPU cores.

train (hard LSTM, short) → convert → fine-tune (spiking) → quantize → generate → verify → build
→ report, on a generated toy dataset (default) or on the UCI HAR stand-in (``--data-dir``, a
small subset so it stays short). Every stage's wall time goes into ``<out>/demo.json``; the
quantize … report stages are one ``snnhw build`` into ``<out>/build``.

The generated dataset (``<out>/data/toy.npz``, the ``npz`` loader's format) is a seeded,
learnable 3-class problem: D = 4 features, N = 12 elements; the class is the feature with the
largest mean over the sequence, so a small LSTM learns it in a few epochs.
"""

from __future__ import annotations

import copy
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from snnhw.errors import UserError


@dataclass
class DemoOptions:
    """Settings of :func:`run_demo` (see ``snnhw demo --help``).

    Attributes:
        out_dir: output directory.
        data_dir: UCI HAR / HAPT folder, or None for the generated toy dataset.
        hidden: hidden units (H); T: time steps.
        hard_epochs, snn_epochs: training epochs of each stage.
        limit_train: training sequences (HAR: a seeded subset; toy: the generated count).
        knobs: the knobs per core kind (:mod:`snnhw.hw.knobs`; missing or None: the automatic
            rule, a small core for a small model).
        verify: run the build's bit-exact verification.
        yosys: run the Yosys estimates in the build.
        seed: seeds the data, the training and the build.
        progress: step lines and progress bars.
    """

    out_dir: Path = Path("build/demo")
    data_dir: Path | None = None
    hidden: int = 16
    T: int = 4
    hard_epochs: int = 5
    snn_epochs: int = 2
    limit_train: int = 512
    knobs: dict[str, Any] = field(default_factory=dict)
    verify: bool = True
    yosys: bool = True
    seed: int = 0
    progress: bool = True


def write_toy_dataset(path: Path, *, samples: int, seq_len: int = 12, features: int = 4, seed: int = 0) -> Path:
    """Write the toy 3-class dataset (``X`` float32 [S, N, D], ``y``, ``class_names``) to ``path``.

    The class is the index of the feature with the largest mean among the first three; the fourth
    feature is noise. Values are normal(0, 1) plus a class-dependent offset of 0.6 on the class's
    feature, so the task is learnable but not trivial.
    """
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, size=samples).astype(np.int64)
    x = rng.normal(size=(samples, seq_len, features)).astype(np.float32)
    x[np.arange(samples), :, y] += 0.6
    y = x[:, :, :3].mean(axis=1).argmax(axis=1).astype(np.int64)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, X=x, y=y, class_names=np.array(["f0", "f1", "f2"]))
    return path


def _stage(timings: dict[str, float], name: str, start: float, progress: bool, note: str = "") -> float:
    seconds = time.perf_counter() - start
    timings[name] = round(seconds, 2)
    if progress:
        print(f"demo: {name} done in {seconds:.1f} s{': ' + note if note else ''}", file=sys.stderr, flush=True)
    return time.perf_counter()


def _check_knobs(opts: DemoOptions) -> None:
    """Every core's knobs checked against a model of the demo's shape before any training (the
    build would refuse them minutes later): a one-line error naming the core."""
    from snnhw.hw.registry import core_specs
    from snnhw.quant.synthetic import random_frozen_baseline, random_frozen_spiking

    shaped = [random_frozen_spiking(0, input_size=3, hidden_size=opts.hidden, T=opts.T),
              random_frozen_baseline(0, input_size=3, hidden_size=opts.hidden)]
    for spec in core_specs():
        for model in shaped:
            if spec.accepts(model):
                try:
                    spec.schedule_of(model, opts.knobs.get(spec.name))
                except (ValueError, TypeError) as exc:
                    raise UserError(f"{spec.label}: {exc} (--hidden {opts.hidden})") from None


def run_demo(opts: DemoOptions) -> dict[str, Any]:
    """Run the demo; returns (and writes as ``demo.json``) the timings and outcomes.

    Raises UserError on bad settings; a failed build step gives ``exit_code`` 1 in the result.
    """
    from snnhw.data.registry import load_dataset
    from snnhw.flow.build import BuildOptions, run_build
    from snnhw.model import ModelConfig, build_model, convert_hard_to_spiking
    from snnhw.train.checkpoint import data_meta_of, save_checkpoint
    from snnhw.train.seed import seed_everything, set_threads
    from snnhw.train.trainer import evaluate, fit, subsample

    for name, value in (("--hidden", opts.hidden), ("--T", opts.T), ("--hard-epochs", opts.hard_epochs),
                        ("--snn-epochs", opts.snn_epochs), ("--limit-train", opts.limit_train)):
        if value < 1:
            raise UserError(f"{name} must be ≥ 1, got {value}")
    _check_knobs(opts)
    out = Path(opts.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    set_threads()
    wall = time.perf_counter()
    timings: dict[str, float] = {}
    t = time.perf_counter()
    if opts.data_dir is None:
        path = write_toy_dataset(out / "data" / "toy.npz", samples=opts.limit_train + 300, seed=opts.seed)
        bundle = load_dataset("npz", path, seed=opts.seed, options={}, progress=False)
        dataset = f"generated toy dataset {path} (3 classes, D = 4, N = 12)"
    else:
        if not Path(opts.data_dir).exists():
            raise UserError(f"--data-dir {opts.data_dir} does not exist")
        bundle = load_dataset("har", opts.data_dir, seed=opts.seed, options={}, progress=opts.progress)
        dataset = f"UCI HAR stand-in at {opts.data_dir}"
    full_train = len(bundle.train)
    if len(bundle.train) > opts.limit_train:
        bundle = copy.copy(bundle)
        bundle.train = subsample(bundle.train, opts.limit_train, opts.seed)
    t = _stage(timings, "data", t, opts.progress, f"{dataset}, {len(bundle.train)} training sequences")

    seed_everything(opts.seed)
    cfg = ModelConfig(input_size=int(bundle.train.x.shape[2]), num_classes=len(bundle.class_names),
                      hidden_size=opts.hidden)
    hard = build_model(cfg)
    hard_fit = fit(hard, bundle, epochs=opts.hard_epochs, lr=3e-3, batch_size=64, seed=opts.seed, patience=None,
                   progress=opts.progress)
    hard_test = evaluate(hard, bundle.test)
    data_meta = data_meta_of(bundle, limit_train=opts.limit_train if opts.limit_train < full_train else None)
    hard_path = out / "hard.pt"
    save_checkpoint(hard_path, model=hard, data_meta=data_meta, class_names=bundle.class_names,
                    normalisation=bundle.normalisation,
                    metrics={**hard_fit.to_dict(), "test_accuracy": hard_test["accuracy"]}, history=hard_fit.history)
    t = _stage(timings, "train", t, opts.progress, f"hard LSTM test accuracy {100 * hard_test['accuracy']:.2f} %")

    scfg = cfg.replace(spiking=True, T=opts.T)
    snn = convert_hard_to_spiking(hard, scfg)
    converted = evaluate(snn, bundle.test)
    t = _stage(timings, "convert", t, opts.progress, f"converted spiking accuracy {100 * converted['accuracy']:.2f} %")

    snn_fit = fit(snn, bundle, epochs=opts.snn_epochs, lr=1e-3, batch_size=64, seed=opts.seed, patience=None,
                  progress=opts.progress)
    snn_test = evaluate(snn, bundle.test)
    snn_path = out / "spiking.pt"
    save_checkpoint(snn_path, model=snn, data_meta=data_meta, class_names=bundle.class_names,
                    normalisation=bundle.normalisation,
                    metrics={**snn_fit.to_dict(), "test_accuracy": snn_test["accuracy"]}, history=snn_fit.history,
                    source={"kind": "conversion + fine-tuning", "init": str(hard_path.resolve()),
                            "converted_test_accuracy": converted["accuracy"]})
    t = _stage(timings, "fine-tune", t, opts.progress,
               f"fine-tuned spiking accuracy {100 * snn_test['accuracy']:.2f} %")

    build = run_build(BuildOptions(models=[snn_path], out_dir=out / "build", data_dir=opts.data_dir,
                                   knobs=opts.knobs, verify=opts.verify, yosys=opts.yosys,
                                   seed=opts.seed, progress=opts.progress, calib_samples=min(512, opts.limit_train)))
    for name, record in build.records.items():
        timings[f"build.{name}"] = record["seconds"]
    _stage(timings, "build", t, opts.progress, f"exit {build.exit_code}")
    result = {
        "dataset": dataset,
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(opts).items() if k != "knobs"},
        "knobs": {kind: k.to_manifest() for kind, k in opts.knobs.items()},
        "accuracy": {"float_hard_test": hard_test["accuracy"], "converted_spiking_test": converted["accuracy"],
                     "fine_tuned_spiking_test": snn_test["accuracy"]},
        "checkpoints": {"hard": str(hard_path), "snn": str(snn_path)},
        "build_dir": str(build.out_dir),
        "steps": {name: record["status"] for name, record in build.records.items()},
        "seconds": timings,
        "wall_s": round(time.perf_counter() - wall, 2),
        "exit_code": build.exit_code,
    }
    (out / "demo.json").write_text(json.dumps(result, indent=2) + "\n")
    return result
