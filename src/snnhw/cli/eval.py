"""``snnhw eval``: accuracy of a model file on its dataset's test (or validation) split.

Example::

    snnhw eval --model spiking.pt --split test --json eval.json

The dataset is rebuilt from what the model file records (loader, options, split seed,
validation fraction); ``--data-dir`` points to it when it moved. The model file type is
recognised from its content (:func:`detect_kind`); each kind has its own evaluator in
:data:`EVALUATORS`.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from snnhw.cli._options import add_progress_option, output_file, progress_enabled
from snnhw.cli.train import existing_file, write_json
from snnhw.errors import UserError


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


def eval_checkpoint(path: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Evaluate a float checkpoint on ``args.split``; returns the JSON record."""
    from snnhw.train.checkpoint import load_checkpoint
    from snnhw.train.seed import set_threads
    from snnhw.train.trainer import evaluate

    set_threads()
    ckpt = load_checkpoint(path)
    model = ckpt.build_model()
    progress = progress_enabled(args)
    bundle = ckpt.load_data(args.data_dir, progress=progress)
    result = evaluate(model, getattr(bundle, args.split), batch_size=args.batch_size, progress=progress)
    return {"model": str(path), "kind": "checkpoint", "split": args.split, "dataset": ckpt.data_meta.get("dataset"),
            "config": ckpt.cfg.to_dict(), **result}


def eval_frozen(path: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Evaluate an integer ``.snnhw`` model with the golden model (:func:`snnhw.cli.quantize.eval_frozen`)."""
    from snnhw.cli.quantize import eval_frozen as evaluate_frozen

    return evaluate_frozen(path, args)


EVALUATORS: dict[str, Callable[[Path, argparse.Namespace], dict[str, Any]]] = {
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
    p.add_argument("--json", metavar="OUT", help="also write the result as JSON (missing directories are created)")
    add_progress_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Execute ``snnhw eval``; returns the exit status."""
    path = existing_file(args.model, "model")
    json_out = output_file(args.json) if args.json else None
    record = EVALUATORS[detect_kind(path)](path, args)
    print(f"{path}: {args.split} accuracy {100 * record['accuracy']:.2f} % (n={record['n']}, "
          f"loss {record['loss']:.4f})")
    if json_out is not None:
        write_json(json_out, record)
    return 0
