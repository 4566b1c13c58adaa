"""K-fold cross-validation of the number of training epochs (``snnhw train --folds K``).

On a small dataset a validation split of a few sequences picks its "best" epoch by chance.
Cross-validation uses every training sequence for validation once instead:
:func:`cross_validate` splits the training sequences into K stratified folds
(:func:`snnhw.data.base.stratified_folds`, generator ``split_rng(seed, 3)``), trains a fresh
model on the other K − 1 folds of each fold for the full number of epochs and validates on the
fold after every epoch (no early stopping). :func:`best_epoch` picks the epoch count E* with
the best accuracy averaged over the folds, and :func:`fit_final` trains the model that is kept
on all training sequences for E* epochs.

Accuracies are fractions in [0, 1]; losses are mean cross-entropies in nats; epochs count
from 1.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from torch import nn

from snnhw.data.base import SequenceDataset, split_rng, stratified_folds
from snnhw.train import trainer

FOLD_SPLIT_PURPOSE = 3
"""The :func:`snnhw.data.base.split_rng` purpose of the fold split (1: test, 2: validation)."""


@dataclass(frozen=True)
class FoldBundle:
    """The two splits :func:`snnhw.train.trainer.fit` trains and validates on (its ``Bundle``)."""

    train: SequenceDataset
    val: SequenceDataset


@dataclass
class CrossValidation:
    """Outcome of :func:`cross_validate`.

    Attributes:
        seed: the split seed of the folds.
        epochs: epochs every fold run trained for.
        fold_runs: one dict per fold: ``fold`` (1-based), ``train_size`` and ``val_size``
            (sequences trained and validated on), ``val_accuracy`` and ``val_loss`` (one value
            per epoch).
        mean_val_accuracy: per epoch, the mean of the folds' validation accuracies.
        std_val_accuracy: per epoch, their standard deviation over the folds (ddof 0).
        best_epoch: E*, the epoch count with the best mean accuracy (:func:`best_epoch`).
    """

    seed: int
    epochs: int
    fold_runs: list[dict[str, Any]]
    mean_val_accuracy: list[float]
    std_val_accuracy: list[float]
    best_epoch: int

    @property
    def folds(self) -> int:
        """K, the number of folds."""
        return len(self.fold_runs)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able record (stored in the checkpoint's metrics as ``cross_validation``)."""
        return {
            "folds": self.folds,
            "split_rule": f"stratified {self.folds} folds of train (seed {self.seed})",
            "seed": self.seed,
            "epochs": self.epochs,
            "fold_runs": [dict(run) for run in self.fold_runs],
            "mean_val_accuracy": list(self.mean_val_accuracy),
            "std_val_accuracy": list(self.std_val_accuracy),
            "best_epoch": self.best_epoch,
            "best_mean_val_accuracy": self.mean_val_accuracy[self.best_epoch - 1],
        }

    def table(self) -> list[str]:
        """The report as text lines: per epoch, each fold's validation accuracy and mean ± std (%)."""
        header = "epoch " + "".join(f" fold {run['fold']:<3}" for run in self.fold_runs) + "   mean ± std"
        lines = [header]
        for e in range(self.epochs):
            folds = "".join(f" {100 * run['val_accuracy'][e]:6.1f} %" for run in self.fold_runs)
            mark = "  ← E*" if e + 1 == self.best_epoch else ""
            lines.append(f"{e + 1:5d} {folds}  {100 * self.mean_val_accuracy[e]:5.1f} ± "
                         f"{100 * self.std_val_accuracy[e]:4.1f} %{mark}")
        return lines


def pooled_training(train: SequenceDataset, val: SequenceDataset) -> SequenceDataset:
    """The sequences cross-validation splits into folds: ``train`` followed by ``val`` (a
    validation split the source defines; empty when none), padded to the longer N."""
    if len(val) == 0:
        return train
    n = max(train.seq_len, val.seq_len)
    a, b = train.padded_to(n), val.padded_to(n)
    return SequenceDataset(np.concatenate([a.x, b.x]), np.concatenate([a.y, b.y]),
                           np.concatenate([a.lengths, b.lengths]))


def fold_indices(y: np.ndarray, k: int, seed: int) -> list[np.ndarray]:
    """The ``k`` stratified folds (sorted index arrays partitioning ``0..len(y)-1``) of the split seed ``seed``."""
    return stratified_folds(y, k, split_rng(seed, FOLD_SPLIT_PURPOSE))


def mean_and_std(curves: Sequence[Sequence[float]]) -> tuple[list[float], list[float]]:
    """Per epoch, the mean and the standard deviation (ddof 0) over equal-length ``curves``.

    The sums are exact before rounding (:func:`math.fsum`), so the mean does not depend on the
    order of the folds and equal sets of fold accuracies give equal means (exact ties).
    """
    k = len(curves)
    means, stds = [], []
    for values in zip(*curves, strict=True):
        mean = math.fsum(values) / k
        means.append(mean)
        stds.append(math.sqrt(math.fsum((v - mean) ** 2 for v in values) / k))
    return means, stds


def best_epoch(mean_val_accuracy: Sequence[float]) -> int:
    """E*: the epoch (1-based) of the highest mean validation accuracy, the earliest on ties."""
    if not mean_val_accuracy:
        raise ValueError("no epochs to choose from")
    return 1 + max(range(len(mean_val_accuracy)), key=lambda i: (mean_val_accuracy[i], -i))


def cross_validate(make_model: Callable[[], nn.Module], data: SequenceDataset, k: int, *, split_seed: int, epochs: int,
                   log: Callable[[str], None] | None = None, **fit_options: Any) -> CrossValidation:
    """K-fold cross-validation of ``epochs`` epochs of training on ``data``.

    Args:
        make_model: returns a fresh, untrained model (called once per fold).
        data: the training sequences (normalised), split by :func:`fold_indices`.
        k: the number of folds (UserError unless 2 ≤ k ≤ the smallest class count).
        split_seed: the split seed of the folds.
        epochs: epochs each fold run trains for (no early stopping, no time budget).
        log: receives ``"fold k/K: ..."`` before each fold run (None: silence).
        fit_options: the other keyword arguments of :func:`snnhw.train.trainer.fit` (``lr``,
            ``batch_size``, ``seed`` of training, ``progress``, ...), the same for every fold.

    Returns:
        The per-fold curves, their mean and standard deviation, and E*.
    """
    folds = fold_indices(data.y, k, split_seed)
    runs: list[dict[str, Any]] = []
    for i, held in enumerate(folds):
        kept = np.sort(np.concatenate(folds[:i] + folds[i + 1:]))
        split = FoldBundle(data.subset(kept), data.subset(held))
        if log is not None:
            log(f"fold {i + 1}/{k}: training on {len(split.train)} sequences, validating on {len(split.val)}")
        result = trainer.fit(make_model(), split, epochs=epochs, patience=None, select="last", **fit_options)
        runs.append({"fold": i + 1, "train_size": len(split.train), "val_size": len(split.val),
                     "val_accuracy": [h["val_accuracy"] for h in result.history],
                     "val_loss": [h["val_loss"] for h in result.history]})
    means, stds = mean_and_std([run["val_accuracy"] for run in runs])
    return CrossValidation(seed=split_seed, epochs=epochs, fold_runs=runs, mean_val_accuracy=means,
                           std_val_accuracy=stds, best_epoch=best_epoch(means))


def fit_final(model: nn.Module, data: SequenceDataset, cv: CrossValidation, **fit_options: Any) -> trainer.TrainResult:
    """Train ``model`` (fresh, as ``make_model`` built the fold models) on all of ``data`` for
    ``cv.best_epoch`` epochs of the ``cv.epochs``-epoch learning-rate schedule the folds ran,
    keeping the last epoch; ``fit_options`` as for :func:`cross_validate`."""
    empty = data.subset(np.zeros(0, dtype=np.int64))
    return trainer.fit(model, FoldBundle(data, empty), epochs=cv.best_epoch, schedule_epochs=cv.epochs,
                       patience=None, select="last", **fit_options)
