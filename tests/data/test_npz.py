"""Generic npz sequences, and rebuilding splits from a stored meta for evaluation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from snnhw.data import load_dataset, load_split_for_eval, rebuild_bundle
from snnhw.errors import UserError


def arrays(s: int = 40, n: int = 6, d: int = 3, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"X": rng.normal(2.0, 3.0, size=(s, n, d)), "y": np.arange(s) % 4,
            "lengths": rng.integers(1, n + 1, size=s)}


def test_split_array_lengths_and_padding(tmp_path: Path) -> None:
    a = arrays()
    split = np.zeros(40, dtype=np.int64)
    split[:8], split[8:12] = 2, 1
    np.savez(tmp_path / "d.npz", **a, split=split, class_names=np.array(["a", "b", "c", "d"]))
    b = load_dataset("npz", tmp_path / "d.npz", progress=False)
    assert b.meta["sizes"] == {"train": 28, "val": 4, "test": 8}
    assert b.class_names == ["a", "b", "c", "d"]
    np.testing.assert_array_equal(b.test.y, a["y"][:8])
    np.testing.assert_array_equal(b.test.lengths, a["lengths"][:8])
    assert np.all(b.test.x[~b.test.mask()] == 0.0)
    # train-only statistics over valid elements of the split-0 rows
    tr = a["X"][12:].astype(np.float32)
    valid = tr[np.arange(6)[None, :] < a["lengths"][12:, None]].astype(np.float64)
    np.testing.assert_allclose(b.normalisation.mean, valid.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(b.normalisation.std, valid.std(axis=0), rtol=1e-6)
    raw = b.test.x * b.normalisation.std + b.normalisation.mean
    m = b.test.mask()
    np.testing.assert_allclose(raw[m], a["X"][:8][m], rtol=1e-5, atol=1e-5)


def test_stratified_split_and_separate_files(tmp_path: Path) -> None:
    np.savez(tmp_path / "one.npz", **arrays())
    b = load_dataset("npz", tmp_path / "one.npz", seed=4, val_fraction=0.25, progress=False)
    assert b.meta["sizes"] == {"train": 24, "val": 8, "test": 8}
    np.testing.assert_array_equal(np.bincount(b.test.y), [2, 2, 2, 2])
    d = tmp_path / "dir"
    d.mkdir()
    np.savez(d / "train.npz", **arrays(20, seed=1))
    np.savez(d / "test.npz", **arrays(8, seed=2))
    c = load_dataset("npz", d, val_fraction=0.0, progress=False)
    assert c.meta["sizes"] == {"train": 20, "val": 0, "test": 8}


def test_rebuild_for_eval_uses_stored_normalisation(tmp_path: Path) -> None:
    np.savez(tmp_path / "one.npz", **arrays())
    b = load_dataset("npz", tmp_path / "one.npz", seed=4, progress=False)
    meta = json.loads(json.dumps(b.meta))
    norm = json.loads(json.dumps(b.normalisation.to_dict()))
    moved = tmp_path / "moved.npz"
    (tmp_path / "one.npz").rename(moved)
    test = load_split_for_eval(meta, norm, moved, progress=False)
    np.testing.assert_array_equal(test.x, b.test.x)
    np.testing.assert_array_equal(test.y, b.test.y)
    shifted = dict(norm, mean=[v + 1.0 for v in norm["mean"]])
    other = load_split_for_eval(meta, shifted, moved, progress=False)
    assert not np.array_equal(other.x, b.test.x)
    np.savez(moved, **arrays(30))
    with pytest.raises(UserError, match="the data differ"):
        rebuild_bundle(meta, norm, moved, progress=False)


@pytest.mark.parametrize("bad, message", [
    ({"X": np.zeros((4, 5)), "y": np.zeros(4, dtype=int)}, "X must be 3-D"),
    ({"X": np.zeros((4, 5, 2)), "y": np.zeros(3, dtype=int)}, r"y must have shape \(4,\)"),
    ({"X": np.zeros((4, 5, 2)), "y": np.zeros(4) + 0.5}, "integer class indices"),
    ({"X": np.zeros((4, 5, 2)), "y": np.zeros(4, dtype=int), "lengths": np.array([1, 2, 6, 1])}, "lengths must lie"),
    ({"X": np.zeros((0, 5, 2)), "y": np.zeros(0, dtype=int)}, "empty dataset"),
    ({"x_data": np.zeros((4, 5, 2))}, "must hold arrays 'X'"),
    ({"X": np.zeros((4, 5, 2)), "y": np.zeros(4, dtype=int), "split": np.array([0, 0, 1, 1])}, "test split is empty"),
])
def test_errors(tmp_path: Path, bad: dict, message: str) -> None:
    np.savez(tmp_path / "bad.npz", **bad)
    with pytest.raises(UserError, match=message):
        load_dataset("npz", tmp_path / "bad.npz", progress=False)


def test_path_errors(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="does not exist"):
        load_dataset("npz", tmp_path / "missing.npz", progress=False)
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(UserError, match="cannot read"):
        load_dataset("npz", tmp_path / "junk.npz", progress=False)
    with pytest.raises(UserError, match="expected train.npz and test.npz"):
        load_dataset("npz", tmp_path, progress=False)
    with pytest.raises(UserError, match="val_fraction"):
        load_dataset("npz", tmp_path / "junk.npz", val_fraction=1.0, progress=False)


def test_train_and_test_files_of_different_length_are_padded(tmp_path: Path) -> None:
    """Ragged data as users bring them: train.npz with N = 7, test.npz with N = 4 (no lengths):
    both padded to N = 7, the test sequences keep length 4; a different D is refused."""
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "train.npz", X=rng.normal(size=(20, 7, 3)), y=np.arange(20) % 2,
             lengths=np.full(20, 7) - np.arange(20) % 3)
    np.savez(tmp_path / "test.npz", X=rng.normal(size=(6, 4, 3)) + 10.0, y=np.arange(6) % 2)
    b = load_dataset("npz", tmp_path, seed=0, progress=False)
    assert b.test.seq_len == b.train.seq_len == 7
    assert list(b.test.lengths) == [4] * 6 and not b.test.x[:, 4:].any()
    assert set(b.train.lengths) <= {5, 6, 7}
    np.savez(tmp_path / "test.npz", X=rng.normal(size=(6, 4, 2)), y=np.arange(6) % 2)
    with pytest.raises(UserError, match=r"differ in D \(features per element\): \[2, 3\]"):
        load_dataset("npz", tmp_path, seed=0, progress=False)
