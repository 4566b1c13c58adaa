"""``snnhw convert``: turn a trained hard LSTM into a spiking LSTM (conversion only, no training).

Example::

    snnhw convert --model hard.pt --T 2 -o spiking-T2.pt --eval

The spiking checkpoint keeps the hard model's data settings, class names and normalisation;
its ``source`` records the hard checkpoint. A JSON summary is written beside it.
"""

from __future__ import annotations

import argparse

from snnhw.cli._options import add_progress_option, progress_enabled
from snnhw.cli.train import add_conversion_args, conversion_changes, existing_file, output_path, write_json
from snnhw.errors import UserError


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``snnhw convert``."""
    p = sub.add_parser("convert", help="convert a hard-LSTM checkpoint to a spiking LSTM",
                       description=__doc__.split("\n\n")[0].replace("``", ""))
    p.add_argument("--model", required=True, help="hard-LSTM checkpoint (.pt) written by snnhw train")
    add_conversion_args(p)
    p.add_argument("--eval", action="store_true", help="evaluate the converted model on the test split")
    p.add_argument("--data-dir", help="dataset path for --eval (default: the one stored in the model)")
    p.add_argument("--batch-size", type=int, default=256, help="evaluation batch size (default 256)")
    add_progress_option(p)
    p.add_argument("-o", "--output", required=True,
                   help="spiking checkpoint to write (.pt; missing directories are created)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Execute ``snnhw convert``; returns the exit status."""
    source_path = existing_file(args.model, "model")
    out = output_path(args.output)

    from snnhw.model import convert_hard_to_spiking
    from snnhw.train.checkpoint import load_checkpoint, save_checkpoint
    from snnhw.train.seed import set_threads
    from snnhw.train.trainer import evaluate

    set_threads()
    hard = load_checkpoint(source_path)
    if hard.cfg.spiking:
        raise UserError(f"{source_path} is already a spiking model; convert needs a hard-LSTM checkpoint")
    cfg = hard.cfg.replace(**conversion_changes(args))
    model = convert_hard_to_spiking(hard.build_model(), cfg)
    metrics: dict[str, float] = {}
    if args.eval:
        progress = progress_enabled(args)
        bundle = hard.load_data(args.data_dir, progress=progress)
        test = evaluate(model, bundle.test, batch_size=args.batch_size, progress=progress)
        metrics = {"test_accuracy": test["accuracy"], "test_loss": test["loss"], "test_n": test["n"]}
    source = {"kind": "conversion", "from": str(source_path.resolve()), "from_metrics": hard.metrics,
              "from_config": hard.cfg.to_dict()}
    save_checkpoint(out, model=model, data_meta=hard.data_meta, class_names=hard.class_names,
                    normalisation=hard.normalisation, metrics=metrics, history=[], source=source)
    write_json(out.with_suffix(".json"), {"checkpoint": str(out), "config": cfg.to_dict(), "metrics": metrics,
                                          "source": source})
    line = f"saved {out}: spiking T={cfg.T}, {cfg.encoding} encoding, non-spiking {cfg.nonspiking_gate}, " \
           f"shift {'on' if cfg.shift else 'off'}"
    if args.eval:
        line += f"; test accuracy {100 * metrics['test_accuracy']:.2f} % (n={metrics['test_n']})"
    print(line)
    return 0

