"""Training and evaluation loops for the hard LSTM and the spiking LSTM.

:func:`fit` trains any :mod:`snnhw.model` classifier (``forward(x [B,N,D], lengths [B]) →
logits [B,C]``) with Adam on the cross-entropy loss, validates after every epoch, stops
early after ``patience`` epochs without a better validation accuracy and leaves the model
holding the best-validation weights. It is reproducible: same seed, data and thread count
→ bit-identical weights (see :mod:`snnhw.train.seed`).

It also trains data-parallel, in ``nproc`` spawned processes or as one rank of a ``torchrun``
job (:mod:`snnhw.train.distributed`), with the same loop: every rank draws the random numbers
of the whole global batch (shuffle, augmentation, rate encoding) exactly as a single process
does, runs its contiguous share of the batch, and weights its mean loss by its share so that
the gradients DDP averages are those of the single-process mean loss. The result equals the
single-process model up to float rounding (the sums run in another order; see
``docs/training.md``).

Accuracies are fractions in [0, 1]; losses are mean cross-entropies in nats; times in
seconds.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import nn
from tqdm import tqdm

from snnhw.errors import UserError
from snnhw.model import fused_cells
from snnhw.model.spiking_lstm import SpikingLSTM
from snnhw.model.wavefront import recurrent_bf16
from snnhw.train import distributed
from snnhw.train.qat import QuantAware
from snnhw.train.seed import deterministic, generator, seed_everything, set_threads

EVAL_SEED: int = 0
"""Seed of the generator used while evaluating (fixes the rate encoding's draws), so that
evaluating the same model on the same data always gives the same figure."""


class SequenceData(Protocol):
    """What the trainer needs from a :class:`snnhw.data.SequenceDataset` split."""

    x: Any  # float32 [S, N, D]
    y: Any  # int64 [S]
    lengths: Any  # int64 [S], valid elements per sequence (≤ N)


class Bundle(Protocol):
    """What :func:`fit` needs from a :class:`snnhw.data.DataBundle`."""

    train: SequenceData
    val: SequenceData


@dataclass
class TrainResult:
    """Outcome of :func:`fit`.

    Attributes:
        history: one dict per epoch: ``epoch`` (1-based), ``loss`` (mean training
            cross-entropy), ``train_accuracy``, ``val_loss``, ``val_accuracy``, ``seconds``
            (wall time of the epoch including validation), ``lr``.
        best_epoch: epoch whose weights the model holds after :func:`fit` (1-based; 0 if no
            epoch ran).
        best_val_accuracy: validation accuracy of those weights.
        best_val_loss: validation loss of those weights.
        stopped_early: True when training ended before ``epochs`` (see ``stop_reason``).
        stop_reason: ``"epochs"`` (all ran), ``"patience"`` (no better validation accuracy
            for ``patience`` epochs) or ``"time"`` (the next epoch would exceed the budget).
        settings: the hyper-parameters of the run (JSON-able).
    """

    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    best_val_accuracy: float = float("nan")
    best_val_loss: float = float("nan")
    stopped_early: bool = False
    stop_reason: str = "epochs"
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def epochs_run(self) -> int:
        """Number of completed epochs."""
        return len(self.history)

    @property
    def seconds_per_epoch(self) -> float:
        """Mean wall time of one epoch (training + validation), in seconds."""
        if not self.history:
            return float("nan")
        return sum(h["seconds"] for h in self.history) / len(self.history)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able summary (stored in checkpoints)."""
        return {
            "best_epoch": self.best_epoch,
            "best_val_accuracy": self.best_val_accuracy,
            "best_val_loss": self.best_val_loss,
            "epochs_run": self.epochs_run,
            "stopped_early": self.stopped_early,
            "stop_reason": self.stop_reason,
            "seconds_per_epoch": self.seconds_per_epoch,
            "settings": dict(self.settings),
        }


def split_tensors(dataset: SequenceData) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(x float32 [S,N,D], y int64 [S], lengths int64 [S])`` of a split as CPU tensors."""
    x = torch.as_tensor(dataset.x, dtype=torch.float32)
    y = torch.as_tensor(dataset.y, dtype=torch.int64)
    lengths = torch.as_tensor(dataset.lengths, dtype=torch.int64)
    if x.dim() != 3 or y.shape != (x.shape[0],) or lengths.shape != (x.shape[0],):
        raise UserError(
            f"dataset split has inconsistent shapes: x {tuple(x.shape)}, y {tuple(y.shape)}, "
            f"lengths {tuple(lengths.shape)} (expected [S,N,D], [S], [S])"
        )
    return x, y, lengths


def subsample(dataset: SequenceData, limit: int, seed: int) -> SequenceData:
    """A random subset of ``limit`` sequences (same order for the same seed), same type.

    Returns ``dataset`` itself when it has at most ``limit`` sequences.
    """
    if limit < 1:
        raise UserError(f"the training subset size must be ≥ 1, got {limit}")
    x, y, lengths = split_tensors(dataset)
    if limit >= x.shape[0]:
        return dataset
    index = torch.randperm(x.shape[0], generator=generator(seed, stream=0))[:limit]
    index, _ = torch.sort(index)
    subset = getattr(dataset, "subset", None)
    if callable(subset):  # snnhw.data.SequenceDataset
        return subset(index.numpy())
    parts = {"x": x[index], "y": y[index], "lengths": lengths[index]}
    if not isinstance(dataset.x, torch.Tensor):
        parts = {k: v.numpy() for k, v in parts.items()}
    return dataclasses.replace(dataset, **parts)


def _batches(n: int, batch_size: int, order: torch.Tensor | None) -> list[torch.Tensor]:
    index = order if order is not None else torch.arange(n)
    return [index[i : i + batch_size] for i in range(0, n, batch_size)]


def _random_encoder(model: nn.Module) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """The model's random input encoder when its forward pass draws random numbers, else None.

    That is the spiking LSTM's rate encoding (``encode``: Bernoulli draws from torch's global
    generator). :func:`_forward` draws it for the whole batch and hands the model its rows
    through ``spikes_in``, so that a rank draws exactly what a single process draws.
    """
    cfg = getattr(model, "cfg", None)
    if getattr(cfg, "spiking", False) and getattr(cfg, "encoding", None) == "rate":
        return model.encode
    return None


def _forward(model: nn.Module, x: torch.Tensor, lengths: torch.Tensor, rows: slice, device: torch.device,
             encoder: Callable[[torch.Tensor], torch.Tensor] | None) -> torch.Tensor:
    """Logits, on ``device``, of the rows ``rows`` of one batch (``x`` [B,N,D], ``lengths`` [B]).

    The padding beyond the whole batch's longest sequence is cut off, and ``encoder`` (see
    :func:`_random_encoder`) encodes all B rows before ``rows`` are taken: the shapes and
    random draws are those of the whole batch whichever rows this process computes.
    """
    width = int(lengths.max())
    x = x[:, :width]
    if encoder is None:
        return model(x[rows].to(device), lengths[rows].to(device))
    spikes = encoder(x.to(device))
    return model(x[rows].to(device), lengths[rows].to(device), spikes_in=spikes[rows])


def _own_rows(count: int) -> tuple[slice, int]:
    """The rows of a batch of ``count`` this process runs, and how many of them it counts.

    Its share (:func:`snnhw.train.distributed.shard`; all rows in a single process). A process
    whose share is empty runs the batch's first row and counts none: it gives that row weight 0,
    since DDP needs every process in every gradient reduction.
    """
    rows = distributed.shard(count)
    local = rows.stop - rows.start
    return (rows if local else slice(0, 1)), local


def distillation_loss(logits: torch.Tensor, target: torch.Tensor, teacher_logits: torch.Tensor | None,
                      alpha: float, temperature: float) -> torch.Tensor:
    """The mean training loss of a batch (nats): cross-entropy, or with a teacher (knowledge
    distillation, Hinton et al. 2015) ``(1 − α)·CE + α·τ²·KL(softmax(t/τ) ‖ softmax(s/τ))``, the
    KL divergence averaged over the rows; τ² keeps the soft term's gradients at the scale of the
    hard one's. ``alpha`` 0 (or no teacher) is the plain cross-entropy."""
    loss = nn.functional.cross_entropy(logits, target)
    if teacher_logits is None or alpha == 0:
        return loss
    soft = nn.functional.kl_div(nn.functional.log_softmax(logits / temperature, dim=1),
                                nn.functional.log_softmax(teacher_logits / temperature, dim=1),
                                log_target=True, reduction="batchmean") * temperature ** 2
    return (1 - alpha) * loss + alpha * soft


def _shard_loss(logits: torch.Tensor, target: torch.Tensor, local: int, count: int, world: int,
                teacher_logits: torch.Tensor | None = None, alpha: float = 0.0,
                temperature: float = 1.0) -> torch.Tensor:
    """This process's part of a batch's mean loss (nats, :func:`distillation_loss`), scaled for
    DDP's gradient mean.

    ``logits`` and ``target`` hold this process's ``local`` rows of the ``count`` rows of the
    batch (or the stand-in row of :func:`_own_rows` when ``local`` is 0). Its mean loss weighted
    by its share ``local / count`` gives parts that sum, over the ``world`` processes, to the
    mean over the whole batch; DDP divides the sum of the processes' gradients by ``world``,
    hence the factor ``world``. In a single process the factor is exactly 1.
    """
    return distillation_loss(logits, target, teacher_logits, alpha, temperature) * (world * local / count)


def _device_of(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (the CPU if it has none)."""
    first = next(model.parameters(), None)
    return first.device if first is not None else torch.device("cpu")


def evaluate(
    model: nn.Module,
    dataset: SequenceData,
    batch_size: int = 256,
    *,
    progress: bool = False,
    seed: int = EVAL_SEED,
    keep_classes: bool = False,
) -> dict[str, Any]:
    """Accuracy and mean cross-entropy of ``model`` on a split.

    Runs in eval mode without gradients on the model's device; random draws (rate encoding)
    come from a forked generator seeded with ``seed``, so the result is repeatable and the
    caller's random stream is left untouched. Inside a process group (see
    :mod:`snnhw.train.distributed`) it is collective: every rank must call it; each computes
    its share of every batch and the sums are all-reduced, so every rank returns the figures
    of the whole split. Returns ``{"accuracy": fraction, "loss": nats, "n": count}``, plus
    ``"classes"`` (int64 [S], the class given to each sequence) when ``keep_classes`` (a single
    process only).
    """
    if keep_classes and distributed.active():
        raise ValueError("per-sequence classes are kept in a single process only")
    if batch_size < 1:
        raise UserError(f"batch size must be ≥ 1, got {batch_size}")
    x, y, lengths = split_tensors(dataset)
    n = x.shape[0]
    if n == 0:
        raise UserError("cannot evaluate on an empty dataset split")
    device = _device_of(model)
    encoder = _random_encoder(model)
    was_training = model.training
    model.eval()
    correct = 0
    loss_sum = 0.0
    classes: list[torch.Tensor] = []
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(seed)
            for index in tqdm(_batches(n, batch_size, None), desc="eval", leave=False,
                              disable=not (progress and distributed.is_main()), file=sys.stderr):
                rows, local = _own_rows(index.numel())
                logits = _forward(model, x[index], lengths[index], rows, device, encoder)
                if local:
                    target = y[index][rows].to(device)
                    loss_sum += float(nn.functional.cross_entropy(logits, target, reduction="sum"))
                    decided = logits.argmax(dim=1)
                    correct += int((decided == target).sum())
                    if keep_classes:
                        classes.append(decided.cpu())
    finally:
        model.train(was_training)
    loss_sum, correct = distributed.all_sum([loss_sum, correct])
    result: dict[str, Any] = {"accuracy": int(correct) / n, "loss": loss_sum / n, "n": n}
    if keep_classes:
        result["classes"] = torch.cat(classes).numpy()
    return result


def _default_log(message: str) -> None:
    tqdm.write(message, file=sys.stderr)


def apply_constraints(model: nn.Module) -> None:
    """Apply the model's own parameter constraints (e.g. θ > 0) after an optimiser step."""
    for module in model.modules():
        hook = getattr(module, "constrain_parameters", None)
        if callable(hook):
            hook()


AUGMENT_STREAM = 1_000_000
"""Generator streams ``AUGMENT_STREAM + epoch`` draw the augmentation shifts and gains (streams 1 + epoch
shuffle)."""


def random_roll(x: torch.Tensor, max_shift: tuple[int, int], gen: torch.Generator) -> torch.Tensor:
    """Augmentation: each sequence of ``x`` [B, N, D] rolled circularly by its own random shift.

    Shifts are uniform integers in ``[-max_shift[0], max_shift[0]]`` along the element axis N
    and ``[-max_shift[1], max_shift[1]]`` along the feature axis D (drawn from ``gen``). On
    row-wise images this is a translation (the wrapped rows/columns are background); on sensor
    or audio sequences use the element axis only.
    """
    batch, n, d = x.shape
    shift_n = torch.randint(-max_shift[0], max_shift[0] + 1, (batch, 1), generator=gen)
    shift_d = torch.randint(-max_shift[1], max_shift[1] + 1, (batch, 1), generator=gen)
    rows = (torch.arange(n).unsqueeze(0) - shift_n) % n  # [B, N]
    cols = (torch.arange(d).unsqueeze(0) - shift_d) % d  # [B, D]
    return x[torch.arange(batch)[:, None, None], rows[:, :, None], cols[:, None, :]]


def random_scale(x: torch.Tensor, max_change: float, gen: torch.Generator) -> torch.Tensor:
    """Augmentation: each feature of each sequence of ``x`` [B, N, D] times its own random gain.

    The gains are uniform in ``[1 − max_change, 1 + max_change]``, one per (sequence, feature),
    drawn from ``gen``; in normalised units this scales a feature's excursions about its
    training mean (sensor gain and amplitude differences between subjects or devices:
    "scaling" in Um et al., *Data Augmentation of Wearable Sensor Data for Parkinson's Disease
    Monitoring using Convolutional Neural Networks*, ICMI 2017, arXiv:1706.00527). Padding
    (zeros) stays zero.
    """
    batch, _, d = x.shape
    gains = 1.0 + max_change * (2.0 * torch.rand((batch, 1, d), generator=gen, dtype=x.dtype) - 1.0)
    return x * gains


NOISE_STREAM = 2_000_000
"""Generator streams ``NOISE_STREAM + epoch`` draw the weight noise of :func:`weight_noise`."""


@contextmanager
def weight_noise(params: list[nn.Parameter], scale: float, gen: torch.Generator) -> Iterator[None]:
    """Run the block (a forward and backward pass) with every parameter in ``params`` multiplied
    elementwise by its own ``1 + scale·N(0, 1)`` draw (from ``gen``), then put the values back.

    Gradients computed inside stay in ``.grad``: they are taken at the perturbed point and
    update the unperturbed weights (weight-noise injection, a regulariser: Murray & Edwards,
    *Enhanced MLP performance and fault tolerance resulting from synaptic weight noise during
    training*, IEEE TNN 1994; what it did to spiking models and their integer models is in
    ``docs/training.md``, "Weight noise"). ``scale`` 0 leaves the parameters alone and draws
    nothing.
    """
    if scale == 0:
        yield
        return
    saved = [p.detach().clone() for p in params]
    with torch.no_grad():
        for p in params:
            p.mul_(1.0 + scale * torch.randn(p.shape, generator=gen, dtype=p.dtype).to(p.device))
    try:
        yield
    finally:
        with torch.no_grad():
            for p, value in zip(params, saved):
                p.copy_(value)


SCHEDULES: tuple[str, ...] = ("constant", "cosine")
"""Learning-rate schedules :func:`fit` knows."""


def epoch_learning_rate(lr: float, epoch: int, epochs: int, schedule: str) -> float:
    """The learning rate of ``epoch`` (1-based) of ``epochs`` under ``schedule`` (see :func:`fit`)."""
    if schedule == "cosine":
        return lr * 0.5 * (1.0 + math.cos(math.pi * (epoch - 1) / epochs))
    return lr


SELECTIONS = ("best", "last")
"""Which epoch's weights :func:`fit` returns: the best on validation, or the last."""

MIN_VAL_SEQUENCES = 20
MIN_VAL_PER_CLASS = 2
"""A validation split with fewer sequences than :data:`MIN_VAL_SEQUENCES`, or fewer than
:data:`MIN_VAL_PER_CLASS` of some training class, picks the "best" epoch by chance: :func:`fit`
warns when it would select on one (:func:`small_validation_warning`)."""


def small_validation_warning(train: SequenceData, val: SequenceData) -> str | None:
    """The one-line warning for a non-empty validation split too small to select an epoch on, or None."""
    train_y, val_y = torch.as_tensor(train.y), torch.as_tensor(val.y)
    counts = {int(c): int((val_y == c).sum()) for c in torch.unique(train_y)}
    short = {c: k for c, k in counts.items() if k < MIN_VAL_PER_CLASS}
    n = len(val_y)
    if not n or (n >= MIN_VAL_SEQUENCES and not short):
        return None
    size = f"{n} sequences"
    if short:
        fewest = min(short, key=lambda c: (short[c], c))
        size = (f"{n} sequences ({short[fewest]} of class {fewest})" if n < MIN_VAL_SEQUENCES
                else f"{short[fewest]} of class {fewest} ({n} sequences)")
    return (f"warning: the validation split has only {size}: the best-validation epoch is picked by chance; "
            "keep the last epoch with --select last, or (validation carved from train) train on every sequence "
            "with --val-fraction 0")


EMA_WARMUP: float = 10.0
"""Default warm-up W of :class:`WeightAverage` (its decay ``min(decay, (1 + k)/(W + k))``)."""


def check_ema_warmup(warmup: float) -> None:
    """UserError unless ``warmup`` is a finite number ≥ 1 (a weight-average warm-up)."""
    if not (warmup >= 1 and math.isfinite(warmup)):
        raise UserError(f"the weight-average warm-up must be a number ≥ 1, got {warmup}")


@dataclass(frozen=True)
class _Plan:
    """The validated settings of one :func:`fit` call: what each process's loop needs."""

    epochs: int
    lr: float
    batch_size: int
    seed: int
    patience: int | None
    progress: bool
    log: Callable[[str], None] | None
    grad_clip: float | None
    threads: int | None
    time_budget_s: float | None
    schedule: str
    schedule_epochs: int
    weight_decay: float
    augment_roll: tuple[int, int]
    augment_scale: float
    select: str
    teacher: nn.Module | None = None
    distill: float = 0.0
    distill_temperature: float = 2.0
    ema: float = 0.0
    ema_warmup: float = EMA_WARMUP
    qat: QuantAware | None = None
    bf16: bool = False
    weight_noise: float = 0.0


class WeightAverage:
    """An exponential moving average of a model's weights (Polyak averaging; the "EMA" of
    training recipes), updated after every optimiser step.

    Every floating-point entry of the model's ``state_dict`` is averaged,
    ``a ← d·a + (1 − d)·w`` with ``d = min(decay, (1 + k) / (warmup + k))`` at the k-th update
    (k = 1, 2, …: the warm-up keeps the first steps from weighting the initial weights for
    thousands of steps; ``warmup`` 10, the default, makes the average span about the last
    k/9 steps until ``d`` reaches ``decay``; 2 makes it the mean of the weights after each of
    the k steps and the initial weights counted twice); other entries (integer buffers) are
    copied. The average of weights that satisfy a model's box constraints (θ > 0, λ in its
    range) satisfies them too, so it is used as it is.
    """

    def __init__(self, module: nn.Module, decay: float, warmup: float = EMA_WARMUP) -> None:
        if not 0 < decay < 1:
            raise UserError(f"the weight-average decay must be in (0, 1), got {decay}")
        check_ema_warmup(warmup)
        self.decay = decay
        self.warmup = warmup
        self.updates = 0
        self.state = {k: v.detach().clone() for k, v in module.state_dict().items()}

    def update(self, module: nn.Module) -> None:
        """Fold the module's current weights into the average."""
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (self.warmup + self.updates))
        with torch.no_grad():
            for key, value in module.state_dict().items():
                average = self.state[key]
                if average.is_floating_point():
                    average.lerp_(value.detach(), 1 - d)
                else:
                    average.copy_(value)

    @contextmanager
    def applied(self, module: nn.Module) -> Iterator[None]:
        """Run the block with the module holding the averaged weights, then restore its own."""
        own = copy.deepcopy(module.state_dict())
        module.load_state_dict(self.state)
        try:
            yield
        finally:
            module.load_state_dict(own)


def fit(
    model: nn.Module,
    bundle: Bundle,
    *,
    epochs: int,
    lr: float,
    batch_size: int,
    seed: int,
    patience: int | None,
    progress: bool = True,
    log: Callable[[str], None] | None = _default_log,
    grad_clip: float | None = 5.0,
    threads: int | None = None,
    time_budget_s: float | None = None,
    schedule: str = "constant",
    schedule_epochs: int | None = None,
    weight_decay: float = 0.0,
    augment_roll: tuple[int, int] = (0, 0),
    augment_scale: float = 0.0,
    select: str = "best",
    nproc: int = 1,
    device: str | torch.device | None = None,
    teacher: nn.Module | None = None,
    distill: float = 0.0,
    distill_temperature: float = 2.0,
    ema: float = 0.0,
    ema_warmup: float = EMA_WARMUP,
    qat: QuantAware | None = None,
    bf16: bool = False,
    weight_noise: float = 0.0,
) -> TrainResult:
    """Train ``model`` in place on ``bundle.train``, selecting on ``bundle.val``.

    Args:
        model: a hard or spiking LSTM classifier (any ``nn.Module`` with the model
            interface); on return it holds the weights of the best validation epoch, on ``device``.
        bundle: the data (``train`` and ``val`` splits, already normalised).
        epochs: maximum number of passes over the training split (≥ 1).
        lr: AdamW learning rate (peak, with a schedule).
        batch_size: sequences per optimiser step: the global batch, shared by all processes.
        seed: seeds the global generators (model initialisation happens before, so seed
            it yourself with :func:`snnhw.train.seed.seed_everything` before building the
            model if its initial weights must be reproducible) and the per-epoch shuffles.
        patience: stop after this many consecutive epochs without a better validation
            accuracy (ties broken by a lower validation loss); ``None`` or 0 never stops early.
        progress: show tqdm bars (epochs, and batches with running loss/accuracy); rank 0 only.
        log: receives one summary line per epoch (rank 0 only); ``None`` for silence. With
            ``nproc`` > 1 it must be picklable (a module-level function).
        grad_clip: maximum global gradient L2 norm, ``None`` for no clipping.
        select: which weights the model holds on return: "best" (the best validation epoch;
            needs a validation split, and ``log`` gets a warning when it is small, see
            :func:`small_validation_warning`) or "last" (the last epoch: small datasets, or
            ``val_fraction`` 0; the validation split, when there is one, is still reported,
            and ``patience`` does not apply).
        threads: torch intra-op threads per process (``None`` → 2 or the number of cores if
            fewer in a single process; the usable cores divided by the processes on this
            machine, at least 1, in each process of a group).
        time_budget_s: wall-clock budget in seconds: no new epoch starts when the mean epoch
            time so far says it would end beyond the budget (``None``: no limit). At least one
            epoch always runs. Rank 0's clock decides for every rank.
        schedule: learning-rate schedule over ``epochs``: ``"constant"`` (``lr`` throughout)
            or ``"cosine"`` (epoch e of E uses ``lr · (1 + cos(π (e − 1) / E)) / 2``).
        schedule_epochs: the E the schedule spans (≥ ``epochs``; ``None``: ``epochs``): training
            then runs the first ``epochs`` epochs of an E-epoch schedule (the final model of a
            cross-validation, :mod:`snnhw.train.folds`).
        weight_decay: AdamW's decoupled weight decay (0: plain Adam).
        augment_roll: maximum random circular shift (elements, features) of each training
            sequence (:func:`random_roll`; ``(0, 0)``: none). Element shifts need sequences that
            all fill the padded length.
        augment_scale: maximum relative change of :func:`random_scale`'s per-feature gains, in
            [0, 1) (0: none); applied after the shift.
        nproc: processes to train in (≥ 1, at most the number of training sequences). Above 1,
            :func:`snnhw.train.distributed.spawn` starts that many workers on this machine (gloo
            on a CPU, nccl with one GPU each on CUDA), each with a pickled copy of ``model`` and
            ``bundle``, and the model receives rank 0's trained weights.
            Inside a process group (``torchrun``) leave it at 1: the call then trains as this
            process's rank of the group, and every rank must make it.
        device: where to train: ``"auto"`` (CUDA if available), ``"cpu"``, ``"cuda"``, a
            ``torch.device``, or ``None`` (where the model's parameters are).
        teacher: a trained classifier of the same data (e.g. the hard LSTM a spiking model was
            converted from), run without gradients on every training batch (same inputs,
            augmentation included) for knowledge distillation; not trained.
        distill: the soft-target weight α in [0, 1] of :func:`distillation_loss` (0: plain
            cross-entropy; > 0 needs ``teacher``). The logged training loss is that loss;
            validation and test losses stay cross-entropies.
        distill_temperature: the softmax temperature τ > 0 of the soft targets.
        ema: decay per optimiser step of a :class:`WeightAverage` of the weights (e.g. 0.999;
            0: none). With one, every validation, the epoch selection and the weights the model
            holds on return are the average's; training (and its reported accuracy) runs on
            the model's own weights.
        ema_warmup: the warm-up W ≥ 1 of that average, its decay ``min(ema, (1 + k)/(W + k))``
            at step k (default 10; 2: the mean of all steps, until the decay reaches ``ema``).
        qat: quantization-aware training (:mod:`snnhw.train.qat`) on this fixed-point grid:
            every forward pass (training and validation) runs with the parameters the quantizer
            would give the model and on inputs rounded to the input grid, the optimiser updates
            the float latent parameters with those (straight-through) gradients, and the weights
            the model holds on return are snapped (``None``: float training).
        bf16: run the recurrent matrix products of a spiking model's training passes in
            bfloat16 (:func:`snnhw.model.wavefront.recurrent_bf16`: dense bfloat16 GEMMs instead
            of the sparse float32 products, faster only with several threads, at some accuracy);
            validation stays float32.
        weight_noise: relative standard deviation ε of the weight noise of each training pass
            (:func:`weight_noise`: every trainable parameter times ``1 + ε·N(0, 1)``, drawn anew
            for every batch, on top of the ``qat`` grid when both are given; 0: none).
            Validation and the weights kept are noise-free.

    Returns:
        The per-epoch history and the selection outcome (the same on every rank).
    """
    if epochs < 1:
        raise UserError(f"epochs must be ≥ 1, got {epochs}")
    if not (lr > 0 and math.isfinite(lr)):
        raise UserError(f"learning rate must be a positive number, got {lr}")
    if batch_size < 1:
        raise UserError(f"batch size must be ≥ 1, got {batch_size}")
    if patience is not None and patience < 0:
        raise UserError(f"patience must be ≥ 0, got {patience}")
    if not (weight_decay >= 0 and math.isfinite(weight_decay)):
        raise UserError(f"weight decay must be ≥ 0, got {weight_decay}")
    if min(augment_roll) < 0:
        raise UserError(f"augmentation shifts must be ≥ 0, got {augment_roll}")
    if not 0 <= augment_scale < 1:
        raise UserError(f"the augmentation gain change must be in [0, 1), got {augment_scale}")
    if schedule not in SCHEDULES:
        raise UserError(f"unknown learning-rate schedule {schedule!r}; choose one of {', '.join(SCHEDULES)}")
    if time_budget_s is not None and not time_budget_s > 0:
        raise UserError(f"the time budget must be > 0 s, got {time_budget_s}")
    if not 0 <= distill <= 1:
        raise UserError(f"the distillation weight must be in [0, 1], got {distill}")
    if distill > 0 and teacher is None:
        raise UserError("distillation needs a teacher model (snnhw train: --init's hard LSTM)")
    if not (distill_temperature > 0 and math.isfinite(distill_temperature)):
        raise UserError(f"the distillation temperature must be a positive number, got {distill_temperature}")
    if not 0 <= ema < 1:
        raise UserError(f"the weight-average decay must be in [0, 1), got {ema}")
    check_ema_warmup(ema_warmup)
    if not 0 <= weight_noise < 1:
        raise UserError(f"the weight noise must be in [0, 1), got {weight_noise}")
    if bf16 and not isinstance(model, SpikingLSTM):
        raise UserError("bfloat16 recurrent products (--bf16) apply to spiking models only")
    if schedule_epochs is None:
        schedule_epochs = epochs
    if schedule_epochs < epochs:
        raise UserError(f"the schedule must span at least the {epochs} epochs trained, got {schedule_epochs}")
    x, _, lengths = split_tensors(bundle.train)
    n = x.shape[0]
    if n == 0:
        raise UserError("the training split is empty")
    if augment_roll[0] and bool((lengths < x.shape[1]).any()):
        raise UserError("element-axis augmentation needs sequences that all fill the padded length")
    if select not in SELECTIONS:
        raise UserError(f"unknown model selection {select!r}; choose one of {', '.join(SELECTIONS)}")
    if select == "best" and split_tensors(bundle.val)[0].shape[0] == 0:
        raise UserError("the validation split is empty: selecting the best epoch needs one (raise --val-fraction, "
                        "or keep the last epoch with --select last)")
    distributed.check_nproc(nproc)
    processes = max(nproc, distributed.world_size())
    if processes > n:
        raise UserError(f"{processes} processes for {n} training sequences: use at most {n} (--nproc)")
    if not any(p.requires_grad for p in model.parameters()):
        raise UserError("the model has no trainable parameters")
    target = _device_of(model) if device is None else distributed.resolve_device(device)
    warning = small_validation_warning(bundle.train, bundle.val) if select == "best" else None
    if warning is not None and log is not None and distributed.is_main():
        log(warning)
    plan = _Plan(epochs=epochs, lr=lr, batch_size=batch_size, seed=seed, patience=patience, progress=progress,
                 log=log, grad_clip=grad_clip, threads=threads, time_budget_s=time_budget_s, schedule=schedule,
                 schedule_epochs=schedule_epochs, weight_decay=weight_decay,
                 augment_roll=(int(augment_roll[0]), int(augment_roll[1])),
                 augment_scale=float(augment_scale), select=select,
                 teacher=teacher if distill > 0 else None, distill=float(distill),
                 distill_temperature=float(distill_temperature), ema=float(ema),
                 ema_warmup=float(ema_warmup), qat=qat,
                 bf16=bool(bf16), weight_noise=float(weight_noise))
    if nproc == 1:
        return _train(model, bundle, target, plan)
    state, record = distributed.spawn(_train_worker, nproc, (model, bundle, plan), device_type=target.type)
    model.load_state_dict(state)
    model.to(target)
    return TrainResult(**record)


def _train_worker(device: torch.device, model: nn.Module, bundle: Bundle,
                  plan: _Plan) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
    """One spawned rank of :func:`fit`: train, and on rank 0 return the CPU weights and the result."""
    result = _train(model, bundle, device, plan)
    if not distributed.is_main():
        return None
    return {k: v.detach().cpu() for k, v in model.state_dict().items()}, dataclasses.asdict(result)


def _train(model: nn.Module, bundle: Bundle, device: torch.device, plan: _Plan) -> TrainResult:
    """The training loop of :func:`fit` (settings validated), as a single process or as this rank."""
    x, y, lengths = split_tensors(bundle.train)
    n = x.shape[0]
    has_val = split_tensors(bundle.val)[0].shape[0] > 0
    world = distributed.world_size()
    progress = plan.progress and distributed.is_main()
    log = plan.log if distributed.is_main() else None
    select, epochs, batch_size, seed = plan.select, plan.epochs, plan.batch_size, plan.seed
    augment_roll = plan.augment_roll
    threads = set_threads(distributed.threads_per_process() if plan.threads is None and distributed.active()
                          else plan.threads)
    seed_everything(seed)
    result = TrainResult(settings={
        "epochs": epochs, "lr": plan.lr, "batch_size": batch_size, "seed": seed,
        "patience": plan.patience, "grad_clip": plan.grad_clip, "threads": threads, "optimizer": "AdamW",
        "weight_decay": plan.weight_decay, "augment_roll": list(augment_roll),
        "augment_scale": plan.augment_scale,
        "train_size": n, "time_budget_s": plan.time_budget_s, "schedule": plan.schedule,
        "schedule_epochs": plan.schedule_epochs, "select": select,
        "world_size": world, "device": str(device),
    })
    if plan.teacher is not None:
        result.settings.update(distill=plan.distill, distill_temperature=plan.distill_temperature)
    if plan.ema:
        result.settings["ema"] = plan.ema
        if plan.ema_warmup != EMA_WARMUP:  # recorded where it differs from the default (older checkpoints lack it)
            result.settings["ema_warmup"] = plan.ema_warmup
    if plan.bf16:
        result.settings["recurrent_bf16"] = True
    if plan.weight_noise:
        result.settings["weight_noise"] = plan.weight_noise
    if isinstance(model, SpikingLSTM):  # which implementations of the neuron updates and products train it
        dtype = next(model.parameters()).dtype
        result.settings["neuron_kernels"] = "compiled" if fused_cells.kernels(dtype, device) else "pytorch"
        result.settings["recurrent_products"] = "bfloat16" if plan.bf16 else \
            "sparse" if fused_cells.sparse_products(dtype, device) else "dense"
    qat = plan.qat
    val_split = bundle.val
    if qat is not None:
        result.settings["qat"] = qat.to_dict()
        x = qat.round_inputs(x)
        val_split = qat.round_split(bundle.val)
    teacher = plan.teacher.to(device).eval() if plan.teacher is not None else None
    module = model.to(device)
    params = [p for p in module.parameters() if p.requires_grad]
    net = distributed.wrap(module, device)
    encoder = _random_encoder(module)
    optimizer = torch.optim.AdamW(params, lr=plan.lr, weight_decay=plan.weight_decay)
    average = WeightAverage(module, plan.ema, plan.ema_warmup) if plan.ema else None
    best_state: dict[str, torch.Tensor] | None = None
    stale = 0
    started = time.perf_counter()

    with deterministic():
        epoch_bar = tqdm(range(1, epochs + 1), desc="epochs", disable=not progress, file=sys.stderr)
        for epoch in epoch_bar:
            start = time.perf_counter()
            epoch_lr = epoch_learning_rate(plan.lr, epoch, plan.schedule_epochs, plan.schedule)
            for group in optimizer.param_groups:
                group["lr"] = epoch_lr
            net.train()
            order = torch.randperm(n, generator=generator(seed, stream=epoch))
            augment_gen = generator(seed, stream=AUGMENT_STREAM + epoch)
            noise_gen = generator(seed, stream=NOISE_STREAM + epoch)
            loss_sum = 0.0
            correct = 0
            seen = 0
            batch_bar = tqdm(_batches(n, batch_size, order), desc=f"epoch {epoch}", leave=False,
                             disable=not progress, file=sys.stderr)
            for index in batch_bar:
                count = index.numel()
                rows, local = _own_rows(count)
                inputs = x[index]
                if any(augment_roll):
                    inputs = random_roll(inputs, augment_roll, augment_gen)
                if plan.augment_scale:
                    inputs = random_scale(inputs, plan.augment_scale, augment_gen)
                target = y[index][rows].to(device)
                teacher_logits = None
                if teacher is not None:
                    with torch.no_grad():
                        teacher_logits = _forward(teacher, inputs, lengths[index], rows, device, None)
                optimizer.zero_grad(set_to_none=True)
                with (qat.snapped(module) if qat is not None else nullcontext(),
                      weight_noise(params, plan.weight_noise, noise_gen), recurrent_bf16(plan.bf16)):
                    logits = _forward(net, inputs, lengths[index], rows, device, encoder)
                    loss = _shard_loss(logits, target, local, count, world, teacher_logits, plan.distill,
                                       plan.distill_temperature)
                    hits = int((logits.detach().argmax(dim=1) == target).sum()) if local else 0
                    batch_loss, batch_hits = distributed.all_sum([float(loss.detach()) / world, hits])
                    if not math.isfinite(batch_loss):
                        raise UserError(f"training diverged (loss {batch_loss}) in epoch {epoch}; "
                                        "try a lower learning rate")
                    loss.backward()
                if plan.grad_clip is not None:
                    nn.utils.clip_grad_norm_(params, plan.grad_clip)
                optimizer.step()
                apply_constraints(module)
                if average is not None:
                    average.update(module)
                loss_sum += batch_loss * count
                correct += int(batch_hits)
                seen += count
                batch_bar.set_postfix(loss=f"{loss_sum / seen:.4f}", acc=f"{100 * correct / seen:.2f}%")
            batch_bar.close()
            with (average.applied(module) if average is not None else nullcontext(),
                  qat.snapped(module) if qat is not None else nullcontext()):
                val = (evaluate(module, val_split, batch_size=max(batch_size, 256)) if has_val
                       else {"loss": float("nan"), "accuracy": float("nan")})
                validated = copy.deepcopy(module.state_dict()) if select == "best" else None
            record = {
                "epoch": epoch,
                "loss": loss_sum / seen,
                "train_accuracy": correct / seen,
                "val_loss": val["loss"],
                "val_accuracy": val["accuracy"],
                "seconds": time.perf_counter() - start,
                "lr": epoch_lr,
            }
            result.history.append(record)
            improved = select == "last" or best_state is None or (
                val["accuracy"] > result.best_val_accuracy
                or (val["accuracy"] == result.best_val_accuracy and val["loss"] < result.best_val_loss)
            )
            if improved:
                best_state = validated
                result.best_epoch = epoch
                result.best_val_accuracy = val["accuracy"]
                result.best_val_loss = val["loss"]
                stale = 0
            else:
                stale += 1
            epoch_bar.set_postfix(val_acc=f"{100 * val['accuracy']:.2f}%",
                                  best=f"{100 * result.best_val_accuracy:.2f}%@{result.best_epoch}")
            if log is not None:
                val_text = (f"val {100 * record['val_accuracy']:.2f} % (loss {record['val_loss']:.4f}), " if has_val
                            else "no validation split, ")
                log(f"epoch {epoch}: loss {record['loss']:.4f}, train {100 * record['train_accuracy']:.2f} %, "
                    f"{val_text}{record['seconds']:.1f} s" + (" *" if improved and select == "best" else ""))
            if select == "best" and plan.patience and stale >= plan.patience and epoch < epochs:
                result.stopped_early, result.stop_reason = True, "patience"
                break
            elapsed = time.perf_counter() - started
            budget = plan.time_budget_s
            if distributed.main_decides(budget is not None and epoch < epochs
                                        and elapsed * (epoch + 1) / epoch > budget):
                result.stopped_early, result.stop_reason = True, "time"
                if log is not None:
                    log(f"stopping after epoch {epoch}: another epoch would exceed the {budget:.0f} s budget")
                break
        epoch_bar.close()

    if select == "best":
        assert best_state is not None  # at least one epoch ran
        module.load_state_dict(best_state)
    else:
        if average is not None:
            module.load_state_dict(average.state)
        if qat is not None:
            qat.snap(module)
    return result
