"""``snnhw train --folds K``: the fold split, the choice of E*, the final model, the refusals.

The data are ``train_fixtures.write_npz``'s learnable 3-class set, 48 sequences: the test split
takes 10, leaving 38 training sequences (13, 13 and 12 of classes 0, 1, 2).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from train_fixtures import write_npz

from snnhw.cli import main
from snnhw.data import load_dataset
from snnhw.train import distributed, trainer
from snnhw.train.checkpoint import load_checkpoint
from snnhw.train.folds import FoldBundle, best_epoch, fold_indices, mean_and_std

QUICK = ["--hidden", "8", "--batch-size", "16", "--lr", "0.01", "--no-progress"]
TRAIN_SIZE = 38
"""Training sequences of the data (all of them are split into folds)."""


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_npz(tmp_path_factory.mktemp("data") / "small.npz", samples=48)


def _train(capsys: pytest.CaptureFixture[str], data: Path, out: Path, *extra: str) -> tuple[str, str]:
    """Run ``snnhw train`` on ``data`` (status 0); returns stdout and stderr."""
    status = main(["train", "--data", "npz", "--data-dir", str(data), *QUICK, *extra, "-o", str(out)])
    stdout, stderr = capsys.readouterr()
    assert status == 0, stderr
    return stdout, stderr


class Recorder:
    """Stands in for :func:`snnhw.train.trainer.fit`: runs it, records each call, and replaces the
    validation accuracies of the i-th fold run by ``curves[i]`` (when given)."""

    def __init__(self, curves: list[list[float]] | None = None) -> None:
        self.curves = curves
        self.calls: list[dict[str, Any]] = []
        self.real = trainer.fit

    def __call__(self, model: torch.nn.Module, bundle: FoldBundle, **kwargs: Any) -> trainer.TrainResult:
        result = self.real(model, bundle, **kwargs)
        folds_so_far = sum(call["val_size"] > 0 for call in self.calls)
        if self.curves is not None and len(bundle.val):
            for record, accuracy in zip(result.history, self.curves[folds_so_far], strict=True):
                record["val_accuracy"] = accuracy
        self.calls.append({"train_size": len(bundle.train), "val_size": len(bundle.val),
                           "epochs": kwargs["epochs"], "schedule_epochs": kwargs.get("schedule_epochs"),
                           "select": kwargs["select"], "patience": kwargs["patience"],
                           "lr": [h["lr"] for h in result.history],
                           "val_accuracy": [h["val_accuracy"] for h in result.history]})
        return result


# ------------------------------------------------------------------------------------ split

@pytest.mark.parametrize("counts, k", [([7, 5, 9, 3], 3), ([5, 5, 5], 2), ([13, 13, 12], 4), ([2, 6], 2)])
def test_folds_are_a_stratified_partition(counts: list[int], k: int) -> None:
    y = np.random.default_rng(1).permutation(np.repeat(np.arange(len(counts)), counts))
    folds = fold_indices(y, k, seed=0)
    assert len(folds) == k
    assert np.array_equal(np.sort(np.concatenate(folds)), np.arange(len(y))), "a partition"
    assert all(np.array_equal(f, np.sort(f)) for f in folds)
    sizes = [len(f) for f in folds]
    assert max(sizes) - min(sizes) <= 1, sizes
    for cls, count in enumerate(counts):
        per_fold = [int((y[f] == cls).sum()) for f in folds]
        assert set(per_fold) <= {count // k, -(-count // k)}, (cls, per_fold)


def test_folds_are_deterministic_per_seed() -> None:
    y = np.repeat(np.arange(3), [13, 13, 12])
    a, b, c = fold_indices(y, 4, seed=5), fold_indices(y, 4, seed=5), fold_indices(y, 4, seed=6)
    assert all(np.array_equal(p, q) for p, q in zip(a, b, strict=True))
    assert any(not np.array_equal(p, q) for p, q in zip(a, c, strict=True)), "another seed, other folds"


# ------------------------------------------------------------------------------------- E*

def test_best_epoch_is_the_earliest_argmax() -> None:
    assert best_epoch([0.5, 0.75, 0.75, 0.6]) == 2
    assert best_epoch([0.9, 0.2, 0.4]) == 1
    assert best_epoch([0.1, 0.2, 0.4]) == 3


def test_mean_and_std_over_folds() -> None:
    mean, std = mean_and_std([[0.1, 0.5], [0.3, 0.5], [0.2, 0.5]])
    assert mean == pytest.approx([0.2, 0.5]) and std == pytest.approx([np.std([0.1, 0.3, 0.2]), 0.0])
    # The same fold accuracies in another order give exactly the same mean: ties stay ties.
    assert mean_and_std([[0.1], [0.7], [0.3]])[0] == mean_and_std([[0.7], [0.3], [0.1]])[0]


CURVES = [[0.2, 0.6, 0.5, 0.9], [0.3, 0.9, 0.4, 0.3], [0.4, 0.9, 0.8, 0.5]]
"""Validation curves forced on the 3 fold runs: the mean peaks at epoch 2 (the minimum is at
epoch 1, the last epoch is 4, and fold 1 alone peaks at 4)."""


def test_cross_validation_picks_the_best_mean_and_trains_the_final_model(
        tmp_path: Path, data: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = Recorder(CURVES)
    monkeypatch.setattr(trainer, "fit", recorder)
    stdout, stderr = _train(capsys, data, tmp_path / "cv.pt", "--folds", "3", "--epochs", "4")
    assert [line for line in stderr.splitlines() if line.startswith("fold ")] == [
        "fold 1/3: training on 25 sequences, validating on 13",
        "fold 2/3: training on 25 sequences, validating on 13",
        "fold 3/3: training on 26 sequences, validating on 12"]
    folds, final = recorder.calls[:3], recorder.calls[3:]
    assert all((c["epochs"], c["select"], c["patience"]) == (4, "last", None) for c in folds)
    assert all(c["train_size"] + c["val_size"] == TRAIN_SIZE for c in folds)
    assert len(final) == 1 and final[0]["val_size"] == 0, "the final model validates on nothing"
    assert (final[0]["train_size"], final[0]["epochs"], final[0]["select"]) == (TRAIN_SIZE, 2, "last")

    ckpt = load_checkpoint(tmp_path / "cv.pt")
    cv = ckpt.metrics["cross_validation"]
    assert (cv["folds"], cv["epochs"], cv["best_epoch"]) == (3, 4, 2)
    assert [run["val_accuracy"] for run in cv["fold_runs"]] == CURVES
    assert cv["mean_val_accuracy"] == pytest.approx(np.mean(CURVES, axis=0).tolist())
    assert cv["std_val_accuracy"] == pytest.approx(np.std(CURVES, axis=0).tolist())
    assert (ckpt.metrics["epochs_run"], ckpt.metrics["settings"]["train_size"]) == (2, TRAIN_SIZE)
    assert len(ckpt.history) == 2 and ckpt.data_meta["sizes"]["val"] == 0
    assert "2 epochs chosen by 3-fold cross-validation (mean val 80.00 ± 14.14 %)" in stdout
    assert "← E*" in stdout.splitlines()[3], "the table marks epoch 2"

    # The final model is the model trained on all training sequences for E* = 2 epochs.
    monkeypatch.setattr(trainer, "fit", recorder.real)
    _train(capsys, data, tmp_path / "plain.pt", "--val-fraction", "0", "--epochs", "2")
    plain = load_checkpoint(tmp_path / "plain.pt")
    assert ckpt.metrics["test_accuracy"] == plain.metrics["test_accuracy"]
    for name, tensor in plain.state_dict.items():
        assert torch.equal(tensor, ckpt.state_dict[name]), name


def _no_nan(token: str) -> None:
    raise AssertionError(f"{token} in a JSON record (not JSON: RFC 8259)")


def test_a_model_without_validation_split_has_null_figures_and_quantizes(
        tmp_path: Path, data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--val-fraction 0``: no validation figure exists; the records say null (they said NaN,
    which the frozen model's strict header then refused: ``snnhw quantize`` failed)."""
    out = tmp_path / "snn.pt"
    _train(capsys, data, out, "--spiking", "--T", "2", "--val-fraction", "0", "--epochs", "2")
    summary = json.loads(out.with_suffix(".json").read_text(), parse_constant=_no_nan)
    assert summary["metrics"]["best_val_accuracy"] is None
    assert [h["val_accuracy"] for h in summary["history"]] == [None, None]
    ckpt = load_checkpoint(out)
    assert ckpt.metrics["best_val_accuracy"] is None and ckpt.history[-1]["val_loss"] is None
    assert main(["quantize", "--model", str(out), "--no-progress", "-o", str(tmp_path / "snn.snnhw")]) == 0, \
        capsys.readouterr().err
    assert (tmp_path / "snn.snnhw").is_file()


@pytest.mark.parametrize("model", ["spiking", "init"])
def test_spiking_models(tmp_path: Path, data: Path, capsys: pytest.CaptureFixture[str],
                        monkeypatch: pytest.MonkeyPatch, model: str) -> None:
    """A spiking LSTM from scratch, and one converted from a hard LSTM; with a cosine schedule the
    final model runs the first E* epochs of the folds' schedule."""
    if model == "spiking":
        extra = ["--data", "npz", "--spiking", "--T", "2"]
    else:
        _train(capsys, data, tmp_path / "hard.pt", "--val-fraction", "0", "--epochs", "2")
        extra = ["--init", str(tmp_path / "hard.pt"), "--T", "2"]
    recorder = Recorder()
    monkeypatch.setattr(trainer, "fit", recorder)
    argv = ["train", "--data-dir", str(data), *QUICK, *extra, "--folds", "2", "--epochs", "3",
            "--schedule", "cosine", "-o", str(tmp_path / "snn.pt")]
    assert main(argv) == 0, capsys.readouterr().err
    ckpt = load_checkpoint(tmp_path / "snn.pt")
    cv = ckpt.metrics["cross_validation"]
    assert ckpt.cfg.spiking and cv["folds"] == 2
    means = mean_and_std([c["val_accuracy"] for c in recorder.calls[:2]])[0]
    assert cv["best_epoch"] == best_epoch(means) == ckpt.metrics["epochs_run"]
    final = recorder.calls[2]
    assert final["train_size"] == TRAIN_SIZE and final["schedule_epochs"] == 3
    assert final["lr"] == recorder.calls[0]["lr"][: cv["best_epoch"]]


# --------------------------------------------------------------------------------- refusals

@pytest.mark.parametrize("argv, message", [
    (["--folds", "1"], "--folds must be ≥ 2, got 1"),
    (["--folds", "13"], "--folds 13 is more than the 12 training sequences of class 2, its smallest class"),
    (["--folds", "2", "--nproc", "2"], "--folds runs its folds one after another in one process: not with --nproc 2"),
    (["--folds", "2", "--val-fraction", "0.2"], "drop --val-fraction 0.2"),
    (["--folds", "2", "--select", "best"], "drop --select best"),
    (["--folds", "2", "--time-limit", "60"], "drop --time-limit"),
])
def test_refusals(tmp_path: Path, data: Path, capsys: pytest.CaptureFixture[str], argv: list[str],
                  message: str) -> None:
    _refused(capsys, data, tmp_path / "m.pt", argv, message)


def test_refused_under_torchrun(tmp_path: Path, data: Path, capsys: pytest.CaptureFixture[str],
                                monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in zip(distributed.TORCHRUN_VARIABLES, ("0", "1", "0", "127.0.0.1"), strict=True):
        monkeypatch.setenv(name, value)
    _refused(capsys, data, tmp_path / "m.pt", ["--folds", "2"], "--folds runs its folds one after another in "
             "one process: not with torchrun")


def _refused(capsys: pytest.CaptureFixture[str], data: Path, out: Path, argv: list[str], message: str) -> None:
    """``snnhw train ... argv``: exit status 2, one ``snnhw: error:`` line holding ``message``, no output."""
    status = main(["train", "--data", "npz", "--data-dir", str(data), *QUICK, "--epochs", "1", *argv,
                   "-o", str(out)])
    err = capsys.readouterr().err
    assert status == 2, err
    assert err.startswith("snnhw: error: ") and err.count("\n") == 1 and message in err, err
    assert not out.exists()


def test_no_validation_split_is_allowed(tmp_path: Path, data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--val-fraction 0`` and ``--select last`` say what ``--folds`` does anyway."""
    _train(capsys, data, tmp_path / "m.pt", "--folds", "2", "--epochs", "1", "--val-fraction", "0",
           "--select", "last")
    assert load_checkpoint(tmp_path / "m.pt").metrics["cross_validation"]["best_epoch"] == 1


def test_smallest_class_bounds_the_folds(data: Path) -> None:
    """The largest K the refusal allows (12, the smallest class) still gives every fold every class."""
    y = load_dataset("npz", data, val_fraction=0.0, progress=False).train.y
    assert len(y) == TRAIN_SIZE
    folds = fold_indices(y, 12, seed=0)
    assert all(set(y[f]) == {0, 1, 2} for f in folds)


def test_source_defined_validation_is_pooled(tmp_path: Path, data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A validation split the file defines (npz ``split`` == 1) is split into the folds with the
    training sequences, and the final model trains on both."""
    with np.load(data) as z:
        arrays = dict(z)
    arrays["split"] = np.tile([0, 0, 0, 0, 1, 2], 8)  # 32 training, 8 validation, 8 test sequences
    np.savez(tmp_path / "split.npz", **arrays)
    _train(capsys, tmp_path / "split.npz", tmp_path / "m.pt", "--folds", "2", "--epochs", "1")
    ckpt = load_checkpoint(tmp_path / "m.pt")
    assert ckpt.data_meta["sizes"] == {"train": 32, "val": 8, "test": 8}
    assert sum(run["val_size"] for run in ckpt.metrics["cross_validation"]["fold_runs"]) == 40
    assert ckpt.metrics["settings"]["train_size"] == 40
