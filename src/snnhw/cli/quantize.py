"""``snnhw quantize``: freeze a trained checkpoint into the integer golden model (``.snnhw`` file).

Example::

    snnhw quantize --model spiking.pt --weight-bits 8 -o model.snnhw

Writes the spiking frozen model to ``-o``, the MAC baseline (the non-spiking source hard LSTM,
quantized to the same weight width) beside it as ``<name>.baseline.snnhw``, and a JSON
quantization report (``<name>.snnhw.json`` — the frozen file's full name plus ``.json``, so it never
overwrites the ``<name>.json`` that ``snnhw train`` writes beside a checkpoint of the same stem —:
widths, scales, saturation counts on the calibration data). A hard-LSTM checkpoint gives only the baseline, written to ``-o``. Calibration data are
``--calib-samples`` sequences of the checkpoint's training split (rebuilt from the data
settings stored in the checkpoint; ``--data-dir`` when the data moved).

This module also holds :func:`eval_frozen`, which ``snnhw eval`` uses for ``.snnhw`` files.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from snnhw.cli._options import add_progress_option, progress_enabled
from snnhw.cli.train import existing_file, output_path, write_json
from snnhw.errors import UserError
from snnhw.quant.arith import DEFAULT_LEAK_ROUNDING, LEAK_ROUNDINGS

if TYPE_CHECKING:
    from snnhw.cli.eval import Evaluation


def report_path(frozen: Path) -> Path:
    """Where ``snnhw quantize`` writes the quantization report of frozen file ``frozen``:
    ``<name>.snnhw.json`` beside it."""
    return frozen.with_name(frozen.name + ".json")


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``snnhw quantize``."""
    p = sub.add_parser("quantize", help="freeze a checkpoint into the integer golden model (.snnhw)",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="checkpoint (.pt) written by snnhw train/convert")
    p.add_argument("--weight-bits", type=int, default=None,
                   help="signed weight width, 2..16 (default: the grid of a --qat checkpoint, else 8)")
    p.add_argument("--input-bits", type=int, default=None,
                   help="signed direct-input width, 2..16 (default: the grid of a --qat checkpoint, else 8)")
    p.add_argument("--leak-terms", type=int, default=None,
                   help="shift terms per leak λ, 1..4 (default: the grid of a --qat checkpoint, else 2)")
    p.add_argument("--leak-rounding", choices=LEAK_ROUNDINGS, default=DEFAULT_LEAK_ROUNDING,
                   help="how each leak term's shift U >> e rounds in the integer model: to nearest "
                        "(default; in hardware the last bit shifted out is the adder's carry-in) or floor")
    p.add_argument("--rate-bits", type=int, default=8, help="R of the rate encoder (default 8)")
    p.add_argument("--act-bits", type=int, default=8, help="baseline activation width (default 8)")
    p.add_argument("--input-percentile", type=float, default=None,
                   help="percentile of |x| that sets the direct input scale (default: the grid of a --qat "
                        "checkpoint, else 99.9; 100 = max-abs)")
    p.add_argument("--membrane-headroom", type=int, default=0,
                   help="bits added to (negative: removed from) the worst-case membrane widths (default 0)")
    p.add_argument("--n-max", type=int, help="longest sequence the cell register holds unsaturated "
                   "(default: the dataset's padded length)")
    p.add_argument("--data-dir", help="dataset path for calibration (default: the one stored in the checkpoint)")
    p.add_argument("--calib-samples", type=int, default=512, help="calibration sequences from the training split")
    p.add_argument("--seed", type=int, default=0, help="seed of the calibration subset and the LFSR seeds")
    p.add_argument("--no-baseline", dest="baseline", action="store_false", help="do not write the MAC baseline")
    p.add_argument("--baseline-source", help="hard-LSTM checkpoint for the baseline (default: the spiking "
                   "checkpoint's recorded source, as recorded or else beside the checkpoint)")
    add_progress_option(p)
    p.add_argument("-o", "--output", required=True,
                   help="frozen model to write (.snnhw; missing directories are created)")
    p.set_defaults(func=run)


def baseline_path(out: Path) -> Path:
    """Where the baseline goes beside the spiking model: ``model.snnhw`` → ``model.baseline.snnhw``."""
    return out.with_name(f"{out.stem}.baseline{out.suffix or '.snnhw'}")


def resolve_grid(args: argparse.Namespace, ckpt: Any) -> list[str]:
    """Fill the unset quantizer settings of ``args`` (weight and input bits, leak terms, input
    percentile) and set ``args.input_scale``, from a ``snnhw train --qat`` checkpoint's grid or the
    defaults (:func:`snnhw.train.qat.quantizer_settings`); returns the lines to print."""
    from snnhw.train.qat import QUANTIZER_DEFAULTS, quantizer_settings

    settings, notes = quantizer_settings(ckpt.metrics if ckpt.cfg.spiking else {},
                                         {key: getattr(args, key) for key in QUANTIZER_DEFAULTS})
    for key, value in settings.items():
        setattr(args, key, value)
    return notes


def _layer_widths(frozen: Any) -> list[dict[str, Any]]:
    out = []
    for layer in frozen.layers:
        entry: dict[str, Any] = {"acc_bits": layer.acc_bits, "cell_bits": layer.cell_bits,
                                 "x_shift": list(layer.x_shift)}
        for gate in ("f", "i", "g", "o", "c"):
            neuron = getattr(layer, gate, None)
            if neuron is not None:
                entry[gate] = {k: (list(map(list, v)) if k == "leak" else v) for k, v in vars(neuron).items()}
        if hasattr(layer, "act_mult"):
            entry.update(act_mult=layer.act_mult, c_mult=list(layer.c_mult), act_shift=layer.act_shift)
        out.append(entry)
    return out


def _summary(frozen: Any, path: Path, saturation: dict[str, Any]) -> dict[str, Any]:
    return {"file": str(path), "weight_bits": frozen.weight_bits, "input_bits": frozen.input_bits,
            "input_scale": frozen.input_scale, "layers": _layer_widths(frozen),
            "head": {"hidden_shift": frozen.head.hidden_shift, "hidden_bits": frozen.head.hidden_bits,
                     "has_hidden": frozen.head.w_hidden is not None},
            "scales": frozen.scales, "saturation_calibration": saturation}


def run(args: argparse.Namespace) -> int:
    """Execute ``snnhw quantize``; returns the exit status."""
    src = existing_file(args.model, "model")
    if args.calib_samples < 1:
        raise UserError(f"--calib-samples must be ≥ 1, got {args.calib_samples}")
    given_source = Path(args.baseline_source) if args.baseline_source else None
    if given_source is not None and not given_source.is_file():
        raise UserError(f"--baseline-source {given_source} does not exist")
    out = output_path(args.output)
    progress = progress_enabled(args)

    from snnhw import __version__
    from snnhw.quant.frozen_io import save_frozen
    from snnhw.quant.quantizer import calibration_subset, quantize_baseline, quantize_spiking, saturation_report
    from snnhw.train.checkpoint import load_checkpoint, recorded_source, resolve_source
    from snnhw.train.seed import set_threads

    set_threads()
    ckpt = load_checkpoint(src)
    grid_notes = resolve_grid(args, ckpt)
    bundle = ckpt.load_data(args.data_dir, progress=progress)
    x_cal, len_cal = calibration_subset(bundle.train, args.calib_samples, args.seed)
    n_max = args.n_max if args.n_max is not None else max(bundle.train.seq_len, bundle.val.seq_len,
                                                           bundle.test.seq_len)
    meta = {"data_meta": ckpt.data_meta, "class_names": ckpt.class_names, "normalisation": ckpt.normalisation,
            "float_metrics": ckpt.metrics, "checkpoint": str(src.resolve()), "snnhw_version": __version__}
    common = dict(weight_bits=args.weight_bits, input_bits=args.input_bits, calib_x=x_cal, calib_lengths=len_cal,
                  input_percentile=args.input_percentile, n_max=n_max)
    report: dict[str, Any] = {"checkpoint": str(src), "calibration_samples": int(len(x_cal)), "n_max": n_max}
    lines = list(grid_notes)

    hard_ckpt: Any = None
    hard_path: Path | None = None
    if not ckpt.cfg.spiking:
        hard_ckpt, hard_out = ckpt, out
    else:
        model = ckpt.build_model()
        frozen = quantize_spiking(model, leak_terms=args.leak_terms, leak_rounding=args.leak_rounding,
                                  rate_bits=args.rate_bits, seed=args.seed,
                                  membrane_headroom=args.membrane_headroom, meta=meta,
                                  input_scale=args.input_scale, **common)
        save_frozen(out, frozen)
        sat = saturation_report(frozen, x_cal, len_cal, progress=progress)
        sat.pop("classes")
        report["spiking"] = _summary(frozen, out, sat)
        lines.append(f"saved {out}: spiking T={frozen.T}, {frozen.encoding}, {frozen.weight_bits}-bit weights, "
                     f"saturated updates on calibration data: {sat['total']}")
        hard_out = baseline_path(out)
        if args.baseline:
            recorded = recorded_source(ckpt.source)
            hard_path = given_source or resolve_source(src, recorded)
            if hard_path is None and recorded is None:
                lines.append("no baseline: the checkpoint records no hard-LSTM source (use --baseline-source)")
            elif hard_path is None:
                lines.append(f"no baseline: the recorded source {recorded} does not exist, nor beside {src} "
                             "(use --baseline-source)")
            else:
                hard_ckpt = load_checkpoint(hard_path)
                if hard_ckpt.cfg.spiking:
                    raise UserError(f"baseline source {hard_path} is a spiking model, not a hard LSTM")
    if hard_ckpt is not None:
        hard_meta = {**meta, "float_metrics": hard_ckpt.metrics, "checkpoint": str(Path(hard_path or src).resolve())}
        base = quantize_baseline(hard_ckpt.build_model(), act_bits=args.act_bits, meta=hard_meta, **common)
        save_frozen(hard_out, base)
        sat = saturation_report(base, x_cal, len_cal, progress=progress)
        sat.pop("classes")
        report["baseline"] = _summary(base, hard_out, sat)
        lines.append(f"saved {hard_out}: MAC baseline, {base.weight_bits}-bit weights, {base.act_bits}-bit "
                     f"activations, saturated updates on calibration data: {sat['total']}")
    write_json(report_path(out), report)
    for line in lines:
        print(line)
    return 0


# -------------------------------------------------------------------------------- eval

def frozen_split(frozen: Any, path: Path, data_dir: str | None, split: str, progress: bool) -> Any:
    """The ``split`` ("test", "val" or "train") of the dataset a frozen model records in its meta.

    Rebuilt from the stored data settings and normalised with the stored statistics
    (``data_dir`` overrides the stored path). Raises UserError when the file records no data
    settings or the data do not fit the model.
    """
    from snnhw.train.checkpoint import rebuild_data

    meta = frozen.meta
    if not isinstance(meta.get("data_meta"), dict):
        raise UserError(f"{path} records no data settings (data_meta); it cannot be run on a dataset")
    bundle = rebuild_data(meta["data_meta"], data_dir, normalisation=meta.get("normalisation") or None,
                          progress=progress)
    part = getattr(bundle, split)
    if part.n_features != frozen.input_size:
        raise UserError(f"the data have {part.n_features} features, the model {frozen.input_size}")
    return part


def eval_frozen(path: Path, args: argparse.Namespace) -> Evaluation:
    """Accuracy of a frozen ``.snnhw`` model (integer golden model) on ``args.split``.

    The dataset is rebuilt from the data settings and normalisation recorded in the file's
    meta (``--data-dir`` when it moved). ``loss`` is the cross-entropy of the logits
    dequantized with the head's output scale (nats). Also returns saturation counts, the
    float model's recorded accuracy and the golden model's speed (sequences/s), with the class
    of every sequence.
    """
    from snnhw.cli.eval import Evaluation
    from snnhw.quant.frozen import FrozenSpiking
    from snnhw.quant.frozen_io import load_frozen
    from snnhw.quant.golden import run_baseline, run_spiking
    from snnhw.quant.quantizer import quantize_input

    frozen = load_frozen(path)
    meta = frozen.meta
    progress = progress_enabled(args)
    split = frozen_split(frozen, path, args.data_dir, args.split, progress)
    x_q = quantize_input(frozen, split.x)
    start = time.perf_counter()
    if isinstance(frozen, FrozenSpiking):
        res = run_spiking(frozen, x_q, split.lengths, saturation=True, progress=progress)
    else:
        res = run_baseline(frozen, x_q, split.lengths, saturation=True, progress=progress)
    seconds = time.perf_counter() - start
    accuracy = float((res.classes == split.y).mean())
    scale = float((frozen.scales.get("head") or {}).get("out", 1.0))
    logits = res.logits.astype(np.float64) * scale
    logits -= logits.max(axis=1, keepdims=True)
    log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    loss = float(-log_p[np.arange(len(split.y)), split.y].mean())
    from snnhw.hw.registry import spec_for_model

    record = {"model": str(path), "kind": "frozen-" + spec_for_model(frozen).name,
              "split": args.split, "dataset": meta["data_meta"].get("dataset"), "accuracy": accuracy,
              "loss": loss if math.isfinite(loss) else float("nan"), "n": int(len(split.y)),
              "saturation": res.saturation, "float_metrics": meta.get("float_metrics"),
              "seconds": seconds, "sequences_per_second": len(split.y) / seconds if seconds > 0 else None}
    return Evaluation(record, np.asarray(res.classes, dtype=np.int64), np.asarray(split.y))
