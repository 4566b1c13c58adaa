"""Datasets as users bring them, end to end through ``snnhw train``/``eval`` (``snnhw.cli.main``).

Ragged data (files of different N, packed sequences) train and evaluate; every malformed
dataset is one ``snnhw: error:`` line naming the file and the problem, without a traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from snnhw.cli import main
from snnhw.data import load_dataset
from snnhw.train.checkpoint import load_checkpoint

QUICK = ["--hidden", "8", "--batch-size", "16", "--lr", "0.01", "--epochs", "1", "--no-progress"]


def _train(path: Path, out: Path, *extra: str) -> list[str]:
    return ["train", "--data", "npz", "--data-dir", str(path), *QUICK, *extra, "-o", str(out)]


def _run(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, str, str]:
    status = main(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return status, out, err


def _sequences(s: int, n: int, d: int = 3, classes: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``X`` [s, n, d] and ``y`` [s] (every class present when s ≥ classes)."""
    rng = np.random.default_rng(seed)
    return rng.normal(size=(s, n, d)), np.arange(s) % classes


def _ragged(s: int, d: int = 3, seed: int = 0) -> list[np.ndarray]:
    """``s`` sequences of 2..8 elements, each ``[N_i, d]``."""
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(int(k), d)) for k in rng.integers(2, 9, size=s)]


def test_packed_sequences_equal_the_padded_layout(tmp_path: Path) -> None:
    """A 2-D X [elements, D] with lengths (sequences one after the other) loads as the padded file does."""
    seqs, y = _ragged(24), np.arange(24) % 3
    lengths = np.array([len(q) for q in seqs])
    padded = np.zeros((24, lengths.max(), 3))
    for i, q in enumerate(seqs):
        padded[i, :len(q)] = q
    np.savez(tmp_path / "packed.npz", X=np.concatenate(seqs), y=y, lengths=lengths)
    np.savez(tmp_path / "padded.npz", X=padded, y=y, lengths=lengths)
    a = load_dataset("npz", tmp_path / "packed.npz", progress=False)
    b = load_dataset("npz", tmp_path / "padded.npz", progress=False)
    for split in ("train", "val", "test"):
        for field in ("x", "y", "lengths"):
            np.testing.assert_array_equal(getattr(getattr(a, split), field), getattr(getattr(b, split), field))
    assert a.train.seq_len == lengths.max() and set(a.train.lengths) <= set(lengths)


def test_ragged_files_train_and_evaluate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """train.npz packed (N_i ≤ 8) and test.npz 3-D with N = 10 and no lengths: padded to N = 10,
    trained, and ``snnhw eval`` rebuilds the same test split (same accuracy)."""
    data = tmp_path / "data"
    data.mkdir()
    seqs = _ragged(40)
    np.savez(data / "train.npz", X=np.concatenate(seqs), y=np.arange(40) % 4, lengths=[len(q) for q in seqs])
    x, y = _sequences(12, 10)
    np.savez(data / "test.npz", X=x, y=y)
    model = tmp_path / "m.pt"
    status, out, err = _run(capsys, _train(data, model))
    assert status == 0, err
    ckpt = load_checkpoint(model)
    assert ckpt.data_meta["seq_len"] == 10 and ckpt.data_meta["sizes"]["test"] == 12
    status, out, err = _run(capsys, ["eval", "--model", str(model), "--no-progress"])
    assert status == 0, err
    assert f"test accuracy {100 * ckpt.metrics['test_accuracy']:.2f} % (n=12" in out


Writer = Callable[[Path], Path]


def _file(**arrays: object) -> Writer:
    """A writer of one .npz holding ``arrays``; returns its path (the file the error must name)."""
    def write(root: Path) -> Path:
        np.savez(root / "d.npz", **arrays)  # type: ignore[arg-type]
        return root / "d.npz"
    return write


def _files(named: str, **parts: dict[str, object]) -> Writer:
    """A writer of a folder of train/test(/val) files; returns the path of file ``named``."""
    def write(root: Path) -> Path:
        for name, arrays in parts.items():
            np.savez(root / f"{name}.npz", **arrays)  # type: ignore[arg-type]
        return root / named
    return write


X, Y = _sequences(20, 5)
NAN, INF = X.copy(), X.copy()
NAN[3, 2, 1] = np.nan
INF[0, 0, 0] = -np.inf
GOOD = {"X": X, "y": Y}


@pytest.mark.parametrize("write, message", [
    (_file(X=NAN, y=Y), "X holds 1 NaN or infinite values (or values beyond float32), the first in sequence 3"),
    (_file(X=INF, y=Y), "X holds 1 NaN or infinite values"),
    (_file(X=X * 1e300, y=Y), "values beyond float32"),
    (_file(X=X[:, :, 0], y=Y), "X must be 3-D [samples, N, D]"),
    (_file(X=X[:, :, :, None], y=Y), "X must be 3-D [samples, N, D]"),
    (_file(X=X, y=np.eye(4)[Y]), "y must have shape (20,) to match X, has (20, 4) (one-hot rows?"),
    (_file(X=X, y=Y[:-1]), "y must have shape (20,) to match X"),
    (_file(X=X, y=np.where(Y == 1, np.inf, Y)), "y must hold integer class indices"),
    (_file(X=X, y=np.where(Y == 1, np.nan, Y)), "y must hold integer class indices"),
    (_file(X=X, y=Y - 1), "y holds negative class indices (smallest -1)"),
    (_file(X=X, y=Y, class_names=np.array(["a", "b"])), "class_names lists 2 names, labels go up to 3"),
    (_file(X=X, y=np.zeros(20, dtype=int)),
     "the training split holds a single class (0); a classifier needs at least 2"),
    (_file(X=X[:0], y=Y[:0]), "empty dataset"),
    (_file(X=X, y=Y, split=np.r_[np.zeros(16, int), np.ones(4, int)]), "the test split is empty"),
    (_file(X=X, y=Y, split=np.r_[np.full(16, 2), np.ones(4, int)]), "the training split is empty"),
    (_file(X=X, y=Y, lengths=np.r_[np.full(19, 5), 6]), "lengths must lie in 1..5"),
    (_file(X=X, y=Y, lengths=np.full(20, 2.5)), "lengths must be a 1-D array of integers"),
    (_file(X=X.reshape(100, 3), y=Y, lengths=np.full(20, 4)), "lengths must be ≥ 1 and sum to its 100 rows"),
    (_file(X=np.array([X[0], X[1, :3]], dtype=object), y=Y[:2]), "array 'X' holds Python objects"),
    (_files("test.npz", train=GOOD, test={"X": X, "y": Y + 1}),
     "the test split holds class 4, which the training split lacks (training classes 0, 1, 2, 3)"),
    (_files("val.npz", train=GOOD, test=GOOD, val={"X": X, "y": Y + 3}), "the val split holds class 4"),
    (_files("train.npz", train={"X": X, "y": Y * 0 + 2}, test=GOOD), "the training split holds a single class (2)"),
    (_files("test.npz", train=GOOD, test={"X": X[:, :, :2], "y": Y}),
     "the files differ in D (features per element): [2, 3] (train.npz 3, test.npz 2)"),
    (_files("test.npz", train=GOOD, test={"X": NAN, "y": Y}), "X holds 1 NaN or infinite values"),
    (_files("train.npz", train={"X": X[:0], "y": Y[:0]}, test=GOOD), "empty dataset"),
])
def test_malformed_datasets_are_one_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                write: Writer, message: str) -> None:
    named = write(tmp_path)
    status, _, err = _run(capsys, _train(named if named.name == "d.npz" else tmp_path, tmp_path / "m.pt"))
    assert status == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("snnhw: error: "), err
    assert message in lines[0], lines[0]
    assert named.name in lines[0], lines[0]  # the message names the file at fault
    assert not (tmp_path / "m.pt").exists()
