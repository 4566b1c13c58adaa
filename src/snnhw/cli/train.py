"""``snnhw train``: train a hard LSTM, a spiking LSTM from scratch, or fine-tune a converted one.

Examples::

    snnhw train --data har --data-dir ../shared/data/uci-hapt -o hard.pt
    snnhw train --init hard.pt --T 4 -o spiking.pt          # convert + SNN fine-tuning
    snnhw train --init spiking.pt --T 2 -o spiking-T2.pt    # re-time to T = 2 + fine-tuning
    snnhw train --data mnist --data-dir ../shared/data/mnist-10k --spiking --T 2 -o snn.pt
    snnhw train --data har --data-dir ../shared/data/uci-hapt --nproc 2 -o hard.pt  # 2 processes

``--folds K`` chooses the number of epochs by K-fold cross-validation on the training sequences
and then trains the kept model on all of them (small datasets; see docs/training.md).

``--nproc K`` trains data-parallel in K processes (DistributedDataParallel; the same model as one
process, to float rounding; ``--batch-size`` stays the global batch); under ``torchrun`` each
rank runs this command and the group comes from torchrun's environment (see docs/training.md).
Only rank 0 prints and writes files.

The output checkpoint (see :mod:`snnhw.train.checkpoint`) records the model config, the
weights, how the data were loaded, the normalisation, the metrics and the per-epoch history;
a JSON summary is written beside it (same name, ``.json``).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from snnhw.cli._options import add_progress_option, output_file, progress_enabled
from snnhw.errors import UserError
from snnhw.json_records import finite

if TYPE_CHECKING:
    import torch
    from torch import nn

DEVICES = ("auto", "cpu", "cuda")
"""Values of ``--device`` (those of :data:`snnhw.train.distributed.DEVICES`, kept here so that
``snnhw --help`` does not import torch)."""

DATASET_NAMES = ("mnist", "har", "fsdd", "gsc", "npz")
"""Dataset names accepted by ``--data`` (the loaders of :mod:`snnhw.data.registry`)."""


SPIKING_DEFAULTS: dict[str, Any] = {"T": 4, "encoding": "direct", "nonspiking_gate": "g", "shift": True}
"""What :func:`add_conversion_args`' switches default to for a conversion or a fresh spiking model."""


def add_conversion_args(parser: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    """The spiking-model switches shared by ``train`` and ``convert``; returns their group."""
    group = parser.add_argument_group("spiking model")
    group.add_argument("--T", type=int, default=None,
                       help=f"time steps per sequence element (default {SPIKING_DEFAULTS['T']}, or a spiking "
                            "--init model's)")
    group.add_argument("--encoding", choices=("direct", "rate"), default=None,
                       help=f"layer-1 input encoding (default {SPIKING_DEFAULTS['encoding']})")
    group.add_argument("--nonspiking-gate", choices=("g", "i"), default=None,
                       help=f"which of the i, g gates stays non-spiking (default {SPIKING_DEFAULTS['nonspiking_gate']})")
    group.add_argument("--no-shift", dest="shift", action="store_const", const=False, default=None,
                       help="do not apply the θ/(2T) threshold shifts")
    return group


def conversion_changes(args: argparse.Namespace, spiking_init: Any = None) -> dict[str, Any]:
    """The ModelConfig fields set by :func:`add_conversion_args` (and the train switches).

    ``spiking_init``: the :class:`~snnhw.model.ModelConfig` of a spiking model being fine-tuned
    further; its fields are the defaults, and only T may differ from them (UserError otherwise).
    """
    changes: dict[str, Any] = {"spiking": True}
    for name, default in SPIKING_DEFAULTS.items():
        given = getattr(args, name)
        if spiking_init is None:
            changes[name] = default if given is None else given
            continue
        kept = getattr(spiking_init, name)
        if given is not None and given != kept and name != "T":
            flag = {"shift": "--no-shift"}.get(name, f"--{name.replace('_', '-')} {given}")
            raise UserError(f"{flag}: the spiking --init model has {name} = {kept}, and a spiking model can be "
                            f"fine-tuned further only at another T (convert its hard LSTM instead)")
        changes[name] = kept if given is None else given
    for name in ("train_theta", "train_leak"):
        if hasattr(args, name):
            changes[name] = getattr(args, name)
    if getattr(args, "gamma", None) is not None:
        changes["gamma"] = args.gamma
    return changes


def existing_file(path: str, what: str) -> Path:
    """``path`` as a Path if it is an existing file; UserError otherwise."""
    p = Path(path)
    if not p.exists():
        raise UserError(f"{what} {p} does not exist")
    if not p.is_file():
        raise UserError(f"{what} {p} is not a file")
    return p


def output_path(path: str) -> Path:
    """``path`` as an output file (missing parent directories are created, see
    :func:`snnhw.cli._options.output_file`); UserError when it cannot be written.

    The step's JSON record goes beside it (``path`` with suffix ``.json``), so ``path`` itself
    must not end in ``.json``.
    """
    p = Path(path)
    if p.suffix == ".json":
        raise UserError(f"output {p} must not end in .json (the JSON summary is written beside it)")
    return output_file(p)


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` as indented JSON (the machine-readable record of a step; a figure that does
    not exist, such as the validation accuracy without a validation split, is null)."""
    path.write_text(json.dumps(finite(data), indent=2, sort_keys=True, allow_nan=False) + "\n")


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``snnhw train``."""
    p = sub.add_parser("train", help="train a hard or spiking LSTM (or fine-tune a converted one)",
                       description=__doc__.split("\n\n")[0].replace("``", ""))
    data = p.add_argument_group("data")
    data.add_argument("--data", choices=DATASET_NAMES, help="dataset loader (default: the --init model's)")
    data.add_argument("--data-dir", help="dataset path (default: the --init model's)")
    data.add_argument("--data-opt", action="append", metavar="KEY=VALUE",
                      help="loader option (repeatable)")
    data.add_argument("--val-fraction", type=float, default=None,
                      help="validation fraction carved from train (default 0.1, or the --init model's); 0: no "
                           "validation split, every training sequence is trained on and the last epoch kept")
    data.add_argument("--limit-train", type=int, default=None, metavar="K",
                      help="train on a random subset of K training sequences (quick runs)")
    model = p.add_argument_group("model")
    model.add_argument("--spiking", action="store_true", help="train a spiking LSTM (implied by --init)")
    model.add_argument("--hidden", type=int, default=None, help="hidden units per layer (default 128)")
    model.add_argument("--layers", type=int, default=None, help="LSTM layers, 1 or 2 (default 1)")
    model.add_argument("--head-hidden", type=int, default=None,
                       help="width of a hidden FC layer in the head, 0 for none (default 0)")
    model.add_argument("--init", metavar="CKPT",
                       help="hard-LSTM checkpoint to convert and fine-tune as a spiking LSTM, or a spiking "
                            "checkpoint to fine-tune further (re-timed when --T differs from its T: a "
                            "conversion schedule such as T = 4, then T = 2)")
    spiking = add_conversion_args(p)
    spiking.add_argument("--no-train-theta", dest="train_theta", action="store_false",
                         help="keep the thresholds θ fixed")
    spiking.add_argument("--no-train-leak", dest="train_leak", action="store_false",
                         help="keep the leaks λ fixed")
    spiking.add_argument("--surrogate-gamma", dest="gamma", type=float, default=None, metavar="G",
                         help="peak of the triangular surrogate gradient, in units of 1/θ (training only; "
                              "default 0.3, or a spiking --init model's)")
    fit = p.add_argument_group("training")
    fit.add_argument("--epochs", type=int, default=20, help="maximum epochs (default 20)")
    fit.add_argument("--lr", type=float, default=1e-3, help="AdamW learning rate (default 1e-3)")
    fit.add_argument("--weight-decay", type=float, default=0.0,
                     help="AdamW decoupled weight decay (default 0: plain Adam)")
    fit.add_argument("--batch-size", type=int, default=128, help="batch size (default 128)")
    fit.add_argument("--patience", type=int, default=5,
                     help="stop after this many epochs without a better validation accuracy; 0: never "
                          "(does not apply with --folds)")
    fit.add_argument("--select", choices=("best", "last"), default=None,
                     help="weights kept: the best validation epoch, or the last epoch (default: best, or last "
                          "when there is no validation split, e.g. --val-fraction 0, or with --folds)")
    fit.add_argument("--folds", type=int, default=None, metavar="K",
                     help="small datasets: K-fold cross-validation (K ≥ 2, at most the smallest class count) "
                          "on all training sequences (no validation split is held out); each fold trains a "
                          "fresh model for --epochs epochs without early stopping (--patience does not "
                          "apply), then the model kept is trained on all of them for the epoch count E* "
                          "with the best mean fold accuracy; not with --nproc > 1 or torchrun, "
                          "--val-fraction > 0, --select best or --time-limit")
    fit.add_argument("--augment-roll", type=int, nargs=2, default=(0, 0), metavar=("ELEMENTS", "FEATURES"),
                     help="random circular shift of each training sequence by up to this many elements and "
                          "features (row-wise images: a translation; default 0 0)")
    fit.add_argument("--augment-scale", type=float, default=0.0, metavar="S",
                     help="multiply each feature of each training sequence by a random gain in "
                          "[1 - S, 1 + S] (normalised inputs: its excursions about the mean; sensor data "
                          "of other subjects or devices; default 0: none)")
    fit.add_argument("--distill", type=float, default=0.0, metavar="ALPHA",
                     help="with --init: knowledge distillation from the --init hard LSTM (for a spiking "
                          "--init: the hard LSTM it was converted from), the loss "
                          "(1 - ALPHA)*cross-entropy + ALPHA*T^2*KL(teacher || model) at temperature "
                          "--distill-temperature (default 0: cross-entropy only)")
    fit.add_argument("--distill-temperature", type=float, default=2.0, metavar="T",
                     help="softmax temperature of the distillation targets (default 2)")
    fit.add_argument("--teacher", action="append", metavar="CKPT",
                     help="with --distill: distil from this trained checkpoint instead of the --init's hard "
                          "LSTM; repeat for an ensemble teacher (the logits of all of them averaged), e.g. "
                          "hard LSTMs of several seeds (same classes and features; each is fed the inputs "
                          "in its own normalisation)")
    fit.add_argument("--ema", type=float, default=0.0, metavar="DECAY",
                     help="keep an exponential moving average of the weights (decay per optimiser step, "
                          "e.g. 0.999) and validate, select and save it instead of the weights trained "
                          "(default 0: none)")
    fit.add_argument("--ema-warmup", type=float, default=None, metavar="W",
                     help="warm-up of --ema: the decay at optimiser step k is min(DECAY, (1 + k)/(W + k)) "
                          "(default 10: the average spans about the last k/9 steps until the decay reaches "
                          "DECAY; 2: the mean of the weights of all steps so far, the initial ones counted twice)")
    fit.add_argument("--bf16", action="store_true",
                     help="spiking models: run the recurrent matrix products of training as dense bfloat16 "
                          "GEMMs instead of the sparse float32 products (values rounded to 8 significant bits; "
                          "no faster than the default on a 2-core CPU, may pay on many cores; costs some accuracy, "
                          "docs/training.md; validation stays float32)")
    fit.add_argument("--weight-noise", type=float, default=0.0, metavar="EPS",
                     help="multiply every trainable parameter by its own random 1 + EPS*N(0, 1) in each "
                          "training pass (weight-noise injection, a regulariser, e.g. 0.01; docs/training.md; "
                          "default 0: none)")
    fit.add_argument("--qat", action="store_true",
                     help="quantization-aware fine-tuning of a spiking model: every forward pass uses the "
                          "weights, thresholds, leaks and direct inputs snnhw quantize would give it "
                          "(straight-through gradients to float latent weights), and the model saved lies "
                          "on that integer grid; snnhw quantize then takes the grid's settings from the "
                          "checkpoint")
    fit.add_argument("--qat-weight-bits", type=int, default=8, metavar="B",
                     help="with --qat: signed weight width (snnhw quantize --weight-bits; default 8)")
    fit.add_argument("--qat-input-bits", type=int, default=8, metavar="B",
                     help="with --qat: signed direct-input width (snnhw quantize --input-bits; default 8)")
    fit.add_argument("--qat-leak-terms", type=int, default=2, metavar="K",
                     help="with --qat: shift terms per leak (snnhw quantize --leak-terms; default 2)")
    fit.add_argument("--schedule", default="constant",
                     help="learning-rate schedule over --epochs: constant (default) or cosine")
    fit.add_argument("--threads", type=int, default=None,
                     help="torch threads per process (default 2, or fewer cores if the machine has fewer; "
                          "with --nproc K or torchrun: the cores divided by the processes on this machine)")
    fit.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    fit.add_argument("--nproc", type=int, default=1, metavar="K",
                     help="train data-parallel in K processes on this machine (default 1; under torchrun leave "
                          "it at 1); --batch-size stays the global batch, --threads is per process "
                          "(default: the cores divided by K)")
    fit.add_argument("--device", choices=DEVICES, default="auto",
                     help="where to train: auto (CUDA if available, default), cpu or cuda")
    fit.add_argument("--time-limit", type=float, default=None, metavar="SECONDS",
                     help="start no epoch that would end after this many seconds of training")
    add_progress_option(p)
    p.add_argument("-o", "--output", required=True,
                   help="checkpoint to write (.pt; missing directories are created)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Execute ``snnhw train``; returns the exit status."""
    if args.limit_train is not None and args.limit_train < 1:
        raise UserError(f"--limit-train must be ≥ 1, got {args.limit_train}")
    if args.gamma is not None and not (math.isfinite(args.gamma) and args.gamma > 0):
        raise UserError(f"--surrogate-gamma must be a finite number > 0, got {args.gamma}")
    from snnhw.train import distributed

    distributed.check_nproc(args.nproc)
    if args.distill and args.init is None and not args.teacher:
        raise UserError("--distill needs --init (its hard LSTM is the teacher) or --teacher")
    if args.teacher and not args.distill:
        raise UserError("--teacher needs --distill ALPHA > 0 (the weight of the teacher's targets)")
    if args.folds is not None:
        check_fold_options(args)
    out = output_path(args.output)
    with distributed.session(args.device) as device:
        return _train(args, out, device)


def _hard_source(args: argparse.Namespace, init: Any) -> Path | None:
    """The hard LSTM a spiking ``--init`` checkpoint came from (its recorded source, found with
    :func:`~snnhw.train.checkpoint.resolve_source`), or None. Required (UserError) with ``--distill``:
    that hard LSTM is the teacher."""
    from snnhw.train.checkpoint import recorded_source, resolve_source

    recorded = recorded_source(init.source)
    found = resolve_source(args.init, recorded)
    if found is None and args.distill and not args.teacher:
        where = f"it records {recorded}, which is not found" if recorded else "it records none"
        raise UserError(f"--distill with a spiking --init needs the hard LSTM it was converted from as the teacher; "
                        f"{where}")
    return found.resolve() if found is not None else None


def _teacher(args: argparse.Namespace, init: Any, hard_source: Path | None, bundle: Any) -> nn.Module:
    """The distillation teacher: the ``--teacher`` checkpoints (their logits averaged), else the
    ``--init``'s hard LSTM (``hard_source`` for a spiking ``--init``). A teacher of other classes
    or another number of features is refused (UserError)."""
    from snnhw.data.base import Normalisation
    from snnhw.train.checkpoint import load_checkpoint
    from snnhw.train.teacher import Teacher, renormalisation

    if args.teacher:
        named = [(path, load_checkpoint(existing_file(path, "--teacher checkpoint"))) for path in args.teacher]
    else:
        named = [(hard_source, load_checkpoint(hard_source)) if hard_source is not None else (args.init, init)]
    features = int(bundle.train.x.shape[2])
    models, affine = [], []
    for path, ckpt in named:
        if list(ckpt.class_names) != list(bundle.class_names) or ckpt.cfg.input_size != features:
            raise UserError(f"teacher {path} does not fit the data: it has {ckpt.cfg.input_size} features and the "
                            f"classes {list(ckpt.class_names)}, the data {features} features and the classes "
                            f"{list(bundle.class_names)}")
        models.append(ckpt.build_model())
        affine.append(renormalisation(bundle.normalisation, Normalisation.from_dict(ckpt.normalisation)))
    return Teacher(models, affine)


def _epochs(count: int) -> str:
    """``"1 epoch"``, ``"6 epochs"``."""
    return f"{count} epoch{'' if count == 1 else 's'}"


def check_fold_options(args: argparse.Namespace) -> None:
    """Refuse (UserError) ``--folds`` settings that cannot work: K < 2; several processes (the
    folds run one after another in one process); a validation split (every training sequence
    is validated on in its fold); ``--select best`` (the final model has no validation split and
    keeps its last, the E*-th, epoch); ``--time-limit`` (every fold must run all epochs)."""
    from snnhw.data.base import check_folds
    from snnhw.train import distributed

    check_folds(args.folds)
    if args.nproc > 1 or distributed.launched_by_torchrun():
        where = f"--nproc {args.nproc}" if args.nproc > 1 else "torchrun"
        raise UserError(f"--folds runs its folds one after another in one process: not with {where}")
    if args.val_fraction is not None and args.val_fraction != 0:
        raise UserError(f"--folds validates on each fold in turn and holds no validation split out: "
                        f"drop --val-fraction {args.val_fraction}")
    if args.select == "best":
        raise UserError("--folds keeps the last epoch of the final model (E* epochs chosen by "
                        "cross-validation): drop --select best")
    if args.time_limit is not None:
        raise UserError("--folds trains every fold for all --epochs epochs: drop --time-limit")


def _train(args: argparse.Namespace, out: Path, device: torch.device) -> int:
    """The body of ``snnhw train`` on ``device`` (a ``torch.device``), as one process or one rank;
    only rank 0 prints and writes the checkpoint and its JSON summary."""
    import numpy as np

    from snnhw.data.base import Normalisation
    from snnhw.data.registry import load_dataset, parse_option_strings
    from snnhw.model import ModelConfig, build_model, convert_hard_to_spiking, retime_spiking
    from snnhw.train import distributed
    from snnhw.train.checkpoint import data_meta_of, load_checkpoint, save_checkpoint
    from snnhw.train.folds import cross_validate, fit_final, pooled_training
    from snnhw.train.seed import seed_everything, set_threads
    from snnhw.train.trainer import evaluate, fit, subsample

    main = distributed.is_main()
    progress = progress_enabled(args) and main
    user_options = parse_option_strings(args.data_opt)
    if args.threads is not None and args.threads < 1:
        raise UserError(f"--threads must be ≥ 1, got {args.threads}")
    set_threads(args.threads)
    init = None
    if args.init is not None:
        init = load_checkpoint(existing_file(args.init, "--init checkpoint"))
    hard_source = _hard_source(args, init) if init is not None and init.cfg.spiking else None

    # Data: explicit flags, else the init model's settings.
    if init is not None and args.data is None:
        name = init.data_meta.get("dataset")
        options = {**dict(init.data_meta.get("options") or {}), **user_options}
    else:
        name, options = args.data, user_options
    if name is None:
        raise UserError("--data is required (unless --init gives a checkpoint to take it from)")
    data_dir = args.data_dir
    if data_dir is None and init is not None:
        data_dir = init.data_meta.get("source")
    if data_dir is None:
        raise UserError("--data-dir is required (unless --init gives a checkpoint to take it from)")
    if not Path(data_dir).exists():
        raise UserError(f"data path {data_dir} does not exist")
    val_fraction = args.val_fraction
    if args.folds is not None:
        val_fraction = 0.0  # the folds validate; a validation split the source defines is pooled below
    elif val_fraction is None:
        val_fraction = float(init.data_meta.get("val_fraction", 0.1)) if init is not None else 0.1
    split_seed = int(init.data_meta.get("seed", args.seed)) if init is not None and args.data is None else args.seed
    # A converted model must see its source's input scaling: reuse the stored normalisation.
    normalisation = Normalisation.from_dict(init.normalisation) if init is not None else None
    bundle = load_dataset(name, data_dir, seed=split_seed, val_fraction=val_fraction, options=options,
                          progress=progress, normalisation=normalisation)
    if args.folds is not None:
        bundle.train = pooled_training(bundle.train, bundle.val)
        bundle.val = bundle.val.subset(np.zeros(0, dtype=np.int64))
    if args.limit_train is not None:
        bundle.train = subsample(bundle.train, args.limit_train, args.seed)
    n_features = int(bundle.train.x.shape[2])
    n_classes = len(bundle.class_names)

    # Model.
    if init is not None:
        for flag, field in (("hidden", "hidden_size"), ("layers", "num_layers"), ("head_hidden", "head_hidden")):
            given = getattr(args, flag)
            if given is not None and given != getattr(init.cfg, field):
                raise UserError(f"--{flag.replace('_', '-')} {given} differs from the --init model's "
                                f"{field} = {getattr(init.cfg, field)}")
        if (init.cfg.input_size, init.cfg.num_classes) != (n_features, n_classes):
            raise UserError(f"the data ({n_features} features, {n_classes} classes) do not fit the --init "
                            f"model ({init.cfg.input_size} features, {init.cfg.num_classes} classes)")
        cfg = init.cfg.replace(**conversion_changes(args, init.cfg if init.cfg.spiking else None))
    else:
        fields: dict[str, Any] = {
            "input_size": n_features, "num_classes": n_classes,
            "hidden_size": 128 if args.hidden is None else args.hidden,
            "num_layers": 1 if args.layers is None else args.layers,
            "head_hidden": 0 if args.head_hidden is None else args.head_hidden,
        }
        if args.spiking:
            fields.update(conversion_changes(args))
        cfg = ModelConfig(**fields)

    def make_model() -> nn.Module:
        """A fresh model with the initial weights of ``--seed`` (converted from ``--init`` when given)."""
        seed_everything(args.seed)
        if init is None:
            return build_model(cfg)
        if init.cfg.spiking:
            # the stored weights under this run's training switches (θ, λ trainable; surrogate γ)
            spiking = replace(init, cfg=cfg.replace(T=init.cfg.T)).build_model()
            return retime_spiking(spiking, cfg.T) if cfg.T != init.cfg.T else spiking
        return convert_hard_to_spiking(init.build_model(), cfg)

    model = make_model()
    source: dict[str, Any] | None = None
    if init is not None:
        converted = evaluate(model, bundle.val)["accuracy"] if len(bundle.val) else None
        if init.cfg.spiking:
            # "init" stays the hard LSTM at the root of the chain (the quantizer's baseline, the teacher)
            retimed = init.cfg.T != cfg.T
            source = {"kind": "re-timing + fine-tuning" if retimed else "fine-tuning",
                      "init": str(hard_source) if hard_source is not None else None,
                      "spiking_init": str(Path(args.init).resolve()), "init_metrics": init.metrics,
                      "init_config": init.cfg.to_dict(), "converted_val_accuracy": converted}
            what = f"re-timed {args.init} from T = {init.cfg.T} to T = {cfg.T}" if retimed else f"loaded {args.init}"
        else:
            source = {"kind": "conversion + fine-tuning", "init": str(Path(args.init).resolve()),
                      "init_metrics": init.metrics, "init_config": init.cfg.to_dict(),
                      "converted_val_accuracy": converted}
            what = f"converted {args.init}"
        if main and converted is not None:
            print(f"{what}: val accuracy before fine-tuning {100 * converted:.2f} %")

    options: dict[str, Any] = {
        "lr": args.lr, "batch_size": args.batch_size, "seed": args.seed, "progress": progress,
        "schedule": args.schedule, "threads": args.threads, "weight_decay": args.weight_decay,
        "augment_roll": tuple(args.augment_roll), "augment_scale": args.augment_scale, "device": device,
        "distill": args.distill, "distill_temperature": args.distill_temperature, "ema": args.ema,
        "bf16": args.bf16, "weight_noise": args.weight_noise,
    }
    if args.ema_warmup is not None:  # else fit's default
        options["ema_warmup"] = args.ema_warmup
    if args.qat:
        from snnhw.train.qat import quant_aware

        options["qat"] = quant_aware(model, bundle.train, weight_bits=args.qat_weight_bits,
                                     input_bits=args.qat_input_bits, leak_terms=args.qat_leak_terms, seed=0)
    if args.distill:
        options["teacher"] = _teacher(args, init, hard_source, bundle)
    cv = None
    if args.folds is None:
        select = args.select or ("best" if len(bundle.val) else "last")
        result = fit(model, bundle, epochs=args.epochs, patience=args.patience, time_budget_s=args.time_limit,
                     select=select, nproc=args.nproc, **options)
    else:
        cv = cross_validate(make_model, bundle.train, args.folds, split_seed=split_seed, epochs=args.epochs,
                            log=partial(print, file=sys.stderr, flush=True), **options)
        print(f"cross-validation, {cv.folds} folds: validation accuracy per epoch")
        print("\n".join(cv.table()))
        print(f"final model: {len(bundle.train)} sequences, {_epochs(cv.best_epoch)}", flush=True)
        result = fit_final(model, bundle.train, cv, **options)
    test = evaluate(model, bundle.test)
    if not main:
        return 0
    metrics = {**result.to_dict(), "val_accuracy": result.best_val_accuracy,
               "test_accuracy": test["accuracy"], "test_loss": test["loss"], "test_n": test["n"],
               "torch_threads": result.settings["threads"]}
    if cv is not None:
        metrics["cross_validation"] = cv.to_dict()
    if args.teacher:
        metrics["teachers"] = [str(Path(path).resolve()) for path in args.teacher]
    save_checkpoint(out, model=model, data_meta=data_meta_of(bundle, limit_train=args.limit_train),
                    class_names=bundle.class_names, normalisation=bundle.normalisation,
                    metrics=metrics, history=result.history, source=source)
    write_json(out.with_suffix(".json"), {"checkpoint": str(out), "config": cfg.to_dict(), "metrics": metrics,
                                          "history": result.history, "source": source})
    if cv is not None:
        chosen = cv.best_epoch - 1
        kept = (f"{_epochs(cv.best_epoch)} chosen by {cv.folds}-fold cross-validation (mean val "
                f"{100 * cv.mean_val_accuracy[chosen]:.2f} ± {100 * cv.std_val_accuracy[chosen]:.2f} %)")
    elif select == "best":
        kept = f"best val {100 * result.best_val_accuracy:.2f} % at epoch {result.best_epoch}/{result.epochs_run}"
    else:
        kept = f"last epoch {result.epochs_run} kept" + ("" if len(bundle.val) else " (no validation split)")
    print(f"saved {out}: test accuracy {100 * test['accuracy']:.2f} % (n={test['n']}), {kept}, "
          f"{result.seconds_per_epoch:.1f} s/epoch")
    return 0
