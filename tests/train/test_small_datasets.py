"""Small datasets through ``snnhw train`` (``snnhw.cli.main``): the kept epoch and the warning.

A 40-sequence, 4-class set as users bring them: the default 10 % validation split is 3
sequences, so ``snnhw train`` warns (one line) and says what to do; ``--val-fraction 0`` trains
on every sequence and keeps the last epoch, also when fine-tuning a converted model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from snnhw.cli import main
from snnhw.data import load_dataset
from snnhw.train.checkpoint import load_checkpoint
from snnhw.train.trainer import small_validation_warning

QUICK = ["--hidden", "8", "--batch-size", "16", "--lr", "0.01", "--epochs", "2", "--no-progress"]


def _write(path: Path, counts: list[int], *, split: np.ndarray | None = None) -> Path:
    """A learnable set of ``counts[k]`` sequences of class k (the class is the feature with the largest mean)."""
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(len(counts)), counts)
    x = rng.normal(size=(len(y), 5, len(counts)))
    x[np.arange(len(y)), :, y] += 1.5
    np.savez(path, X=x, y=y, **({} if split is None else {"split": split}))
    return path


@pytest.fixture(scope="module")
def imu(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 sequences of 4 classes, as in the issue; the default test split takes 8 of them."""
    return _write(tmp_path_factory.mktemp("data") / "imu.npz", [10, 10, 10, 10])


def _train(capsys: pytest.CaptureFixture[str], data: Path, out: Path, *extra: str) -> tuple[str, list[str]]:
    """Run ``snnhw train`` (status 0); returns stdout and the warning lines of stderr."""
    status = main(["train", "--data", "npz", "--data-dir", str(data), *QUICK, *extra, "-o", str(out)])
    stdout, stderr = capsys.readouterr()
    assert status == 0, stderr
    assert "Traceback" not in stderr
    return stdout, [line for line in stderr.splitlines() if "warning" in line]


def test_tiny_validation_split_warns_once(tmp_path: Path, imu: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, warnings = _train(capsys, imu, tmp_path / "m.pt")
    assert warnings == [("warning: the validation split has only 3 sequences (0 of class 3): the best-validation "
                         "epoch is picked by chance; keep the last epoch with --select last, or (validation carved "
                         "from train) train on every sequence with --val-fraction 0")]
    assert load_checkpoint(tmp_path / "m.pt").metrics["settings"]["select"] == "best"
    argv = ["train", "--data", "npz", "--data-dir", str(imu), *QUICK, "--lr", "-1", "-o", str(tmp_path / "x.pt")]
    status = main(argv)
    assert status == 2 and len(capsys.readouterr().err.strip().splitlines()) == 1, "an error stays one line"


def test_no_validation_keeps_the_last_epoch(tmp_path: Path, imu: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, warnings = _train(capsys, imu, tmp_path / "m.pt", "--val-fraction", "0")
    assert warnings == [] and "last epoch 2 kept (no validation split)" in out
    ckpt = load_checkpoint(tmp_path / "m.pt")
    assert ckpt.data_meta["sizes"] == {"train": 32, "val": 0, "test": 8}
    assert (ckpt.metrics["best_epoch"], ckpt.metrics["settings"]["select"]) == (2, "last")
    _, warnings = _train(capsys, imu, tmp_path / "l.pt", "--select", "last")
    assert warnings == [], "no warning when the validation split selects nothing"


def test_fine_tuning_without_validation(tmp_path: Path, imu: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--init`` of a model trained with ``--val-fraction 0`` inherits it: no converted-model
    validation figure, the last epoch kept."""
    _train(capsys, imu, tmp_path / "hard.pt", "--val-fraction", "0")
    out, warnings = _train(capsys, imu, tmp_path / "snn.pt", "--init", str(tmp_path / "hard.pt"), "--T", "2")
    assert warnings == [] and "val accuracy before fine-tuning" not in out
    snn = load_checkpoint(tmp_path / "snn.pt")
    assert snn.cfg.spiking and snn.metrics["best_epoch"] == 2 and snn.data_meta["sizes"]["val"] == 0
    assert snn.source is not None and snn.source["converted_val_accuracy"] is None


def test_source_defined_validation_warning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A validation split the file defines (``split`` == 1) is checked the same way."""
    split = np.tile([0, 0, 0, 0, 0, 0, 0, 1, 2, 2], 4)
    data = _write(tmp_path / "s.npz", [10, 10, 10, 10], split=split)
    _, warnings = _train(capsys, data, tmp_path / "m.pt")
    assert len(warnings) == 1 and "the validation split has only 4 sequences (1 of class 0): " in warnings[0]


def test_warning_rule(tmp_path: Path) -> None:
    """At least 20 validation sequences and 2 of each training class: no warning."""
    big = load_dataset("npz", _write(tmp_path / "big.npz", [60, 60, 60, 60]), progress=False)
    assert len(big.val) == 19 and "only 19 sequences" in str(small_validation_warning(big.train, big.val))
    bigger = load_dataset("npz", tmp_path / "big.npz", val_fraction=0.2, progress=False)
    assert len(bigger.val) == 38 and small_validation_warning(bigger.train, bigger.val) is None
    rare = load_dataset("npz", _write(tmp_path / "rare.npz", [80, 80, 80, 8]), val_fraction=0.2, progress=False)
    assert len(rare.val) == 40
    assert "has only 1 of class 3 (40 sequences):" in str(small_validation_warning(rare.train, rare.val))
    none = load_dataset("npz", tmp_path / "big.npz", val_fraction=0.0, progress=False)
    assert small_validation_warning(none.train, none.val) is None


@pytest.mark.parametrize("argv, message", [
    (["--val-fraction", "1"], "val_fraction must lie in [0, 1), got 1.0"),
    (["--val-fraction", "-0.1"], "val_fraction must lie in [0, 1)"),
    (["--val-fraction", "0", "--select", "best"], "the validation split is empty: selecting the best epoch needs one"),
])
def test_bad_validation_settings(tmp_path: Path, imu: Path, capsys: pytest.CaptureFixture[str],
                                 argv: list[str], message: str) -> None:
    status = main(["train", "--data", "npz", "--data-dir", str(imu), *QUICK, *argv, "-o", str(tmp_path / "m.pt")])
    _, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert status == 2 and len(lines) == 1 and lines[0].startswith("snnhw: error: ") and message in lines[0], err
