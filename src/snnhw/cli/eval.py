"""``snnhw eval``: accuracy of a model file on its dataset's test (or validation) split.

Example::

    snnhw eval --model spiking.pt --split test --json eval.json
    snnhw eval --model spiking.snnhw --reference spiking.pt

The dataset is rebuilt from what the model file records (loader, options, split seed,
validation fraction); ``--data-dir`` points to it when it moved. The model file type is
recognised from its content (:func:`detect_kind`); each kind has its own evaluator in
:data:`EVALUATORS`. With ``--reference`` a second model runs on the same split and the two
are compared sequence by sequence (:mod:`snnhw.train.paired`): the accuracy difference, its
95 % interval and McNemar's exact p-value.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from snnhw.cli._options import add_progress_option, output_file, progress_enabled
from snnhw.cli.train import existing_file, write_json
from snnhw.errors import UserError

if TYPE_CHECKING:
    from snnhw.train.paired import PairedComparison


@dataclass(frozen=True)
class Evaluation:
    """One model's result on a split.

    Attributes:
        record: the JSON record (accuracy as a fraction, loss in nats, n, what was evaluated).
        classes: int64 [S], the class the model gives each sequence of the split.
        labels: int64 [S], the split's true classes.
    """

    record: dict[str, Any]
    classes: np.ndarray
    labels: np.ndarray


def detect_kind(path: Path) -> str:
    """The kind of model file at ``path``, from its content (never by executing it).

    ``"checkpoint"``: a float model written by ``snnhw train``/``convert`` (a torch archive);
    ``"frozen"``: an integer model written by ``snnhw quantize`` (``.snnhw``).
    Raises UserError for anything else.
    """
    from snnhw.quant.frozen_io import is_frozen_file
    from snnhw.train.checkpoint import is_torch_archive

    if is_torch_archive(path):
        return "checkpoint"
    if is_frozen_file(path):
        return "frozen"
    raise UserError(f"{path} is not an snnhw model file (expected a checkpoint written by snnhw train/convert)")


def eval_checkpoint(path: Path, args: argparse.Namespace) -> Evaluation:
    """Evaluate a float checkpoint on ``args.split``."""
    from snnhw.train.checkpoint import load_checkpoint
    from snnhw.train.seed import set_threads
    from snnhw.train.trainer import evaluate

    set_threads()
    ckpt = load_checkpoint(path)
    model = ckpt.build_model()
    progress = progress_enabled(args)
    bundle = ckpt.load_data(args.data_dir, progress=progress)
    split = getattr(bundle, args.split)
    result = evaluate(model, split, batch_size=args.batch_size, progress=progress, keep_classes=True)
    classes = result.pop("classes")
    record = {"model": str(path), "kind": "checkpoint", "split": args.split, "dataset": ckpt.data_meta.get("dataset"),
              "config": ckpt.cfg.to_dict(), **result}
    return Evaluation(record, classes, np.asarray(split.y))


def eval_frozen(path: Path, args: argparse.Namespace) -> Evaluation:
    """Evaluate an integer ``.snnhw`` model with the golden model (:func:`snnhw.cli.quantize.eval_frozen`)."""
    from snnhw.cli.quantize import eval_frozen as evaluate_frozen

    return evaluate_frozen(path, args)


EVALUATORS: dict[str, Callable[[Path, argparse.Namespace], Evaluation]] = {
    "checkpoint": eval_checkpoint,
    "frozen": eval_frozen,
}
"""Evaluator of each model-file kind returned by :func:`detect_kind`."""


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``snnhw eval``."""
    p = sub.add_parser("eval", help="accuracy of a model on its dataset",
                       description=__doc__.split("\n\n")[0].replace("``", ""))
    p.add_argument("--model", required=True, help="model file (.pt checkpoint or .snnhw frozen model)")
    p.add_argument("--data-dir", help="dataset path (default: the one stored in the model file)")
    p.add_argument("--split", choices=("test", "val"), default="test", help="split to evaluate (default test)")
    p.add_argument("--batch-size", type=int, default=256, help="evaluation batch size (default 256)")
    p.add_argument("--reference", metavar="MODEL",
                   help="a second model file run on the same split: prints the accuracy difference "
                        "(model - reference), its 95 %% interval and McNemar's exact p-value")
    p.add_argument("--json", metavar="OUT", help="also write the result as JSON (missing directories are created)")
    add_progress_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Execute ``snnhw eval``; returns the exit status."""
    path = existing_file(args.model, "model")
    reference_path = existing_file(args.reference, "reference model") if args.reference else None
    json_out = output_file(args.json) if args.json else None
    result = EVALUATORS[detect_kind(path)](path, args)
    record = result.record
    _print_accuracy(path, args.split, record)
    if reference_path is not None:
        reference = EVALUATORS[detect_kind(reference_path)](reference_path, args)
        _print_accuracy(reference_path, args.split, reference.record)
        comparison = compare_on_one_split(result, reference)
        print(f"model - reference: {comparison.summary()}")
        record = {**record, "reference": reference.record, "paired": comparison.to_dict()}
    if json_out is not None:
        write_json(json_out, record)
    return 0


def _print_accuracy(path: Path, split: str, record: dict[str, Any]) -> None:
    print(f"{path}: {split} accuracy {100 * record['accuracy']:.2f} % (n={record['n']}, loss {record['loss']:.4f})")


def compare_on_one_split(model: Evaluation, reference: Evaluation) -> PairedComparison:
    """Sequence-by-sequence comparison of two evaluations; UserError unless both ran on the same
    split (same dataset name, same number of sequences, same labels in the same order)."""
    from snnhw.train.paired import compare_decisions

    names = (model.record.get("dataset"), reference.record.get("dataset"))
    if names[0] != names[1]:
        raise UserError(f"the model was trained on dataset {names[0]!r}, the reference on {names[1]!r}: "
                        "they cannot be compared sequence by sequence")
    if model.labels.shape != reference.labels.shape or not np.array_equal(model.labels, reference.labels):
        how = (f"{model.labels.size} and {reference.labels.size} sequences" if model.labels.shape != reference.labels.shape
               else "their labels differ")
        raise UserError(f"the two models' {model.record['split']} splits differ ({how}): they must be built from "
                        "the same data settings to be compared")
    return compare_decisions(model.classes, reference.classes, model.labels)
