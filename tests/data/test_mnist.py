"""Temporal MNIST from IDX files written in tmp_path."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from snnhw.data import load_dataset, rebuild_bundle
from snnhw.errors import UserError


def write_idx(path: Path, arr: np.ndarray, compress: bool = True) -> None:
    arr = np.asarray(arr, dtype=np.uint8)
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    data = header + arr.tobytes()
    path.write_bytes(gzip.compress(data) if compress else data)


def make_set(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, 28, 28)), np.arange(n) % 10


@pytest.fixture
def single(tmp_path: Path) -> tuple[Path, np.ndarray, np.ndarray]:
    images, labels = make_set(100, 1)
    write_idx(tmp_path / "images-idx3-ubyte.gz", images)
    write_idx(tmp_path / "labels-idx1-ubyte.gz", labels)
    return tmp_path, images, labels


def test_single_set_split_shapes_and_normalisation(single: tuple[Path, np.ndarray, np.ndarray]) -> None:
    path, images, labels = single
    b = load_dataset("mnist", path, seed=3, val_fraction=0.125, progress=False)
    assert b.meta["sizes"] == {"train": 70, "val": 10, "test": 20}
    assert b.train.x.shape == (70, 28, 28) and b.test.x.shape == (20, 28, 28)
    assert b.train.x.dtype == np.float32 and b.train.y.dtype == np.int64
    assert np.all(b.test.lengths == 28)
    np.testing.assert_array_equal(np.bincount(b.test.y), [2] * 10)  # stratified
    np.testing.assert_array_equal(np.bincount(b.val.y), [1] * 10)
    # Normalisation fitted on train only: recover raw pixels and check the statistics.
    raw_train = b.train.x * b.normalisation.std + b.normalisation.mean
    np.testing.assert_allclose(b.normalisation.mean, raw_train.reshape(-1, 28).mean(axis=0), rtol=1e-5)
    # Undo normalisation and scaling: the three splits hold every image once, with its label.
    seen = []
    for ds in (b.train, b.val, b.test):
        pixels = np.rint((ds.x * b.normalisation.std + b.normalisation.mean) * 255).astype(np.int64)
        for img, lab in zip(pixels, ds.y):
            match = np.flatnonzero((images == img).all(axis=(1, 2)))
            assert len(match) == 1 and labels[match[0]] == lab
            seen.append(int(match[0]))
    assert sorted(seen) == list(range(100))
    assert b.class_names == [str(i) for i in range(10)]


def test_deterministic_and_rebuild(single: tuple[Path, np.ndarray, np.ndarray]) -> None:
    path, _, _ = single
    a = load_dataset("mnist", path, seed=5, progress=False)
    b = load_dataset("mnist", path, seed=5, progress=False)
    c = load_dataset("mnist", path, seed=6, progress=False)
    np.testing.assert_array_equal(a.train.x, b.train.x)
    np.testing.assert_array_equal(a.test.y, b.test.y)
    assert not np.array_equal(a.test.x, c.test.x)
    r = rebuild_bundle(a.meta, a.normalisation.to_dict(), progress=False)
    np.testing.assert_array_equal(r.test.x, a.test.x)
    np.testing.assert_array_equal(r.val.y, a.val.y)


def test_official_names_plain_and_pad32(tmp_path: Path) -> None:
    tr, trl = make_set(30, 2)
    te, tel = make_set(10, 3)
    write_idx(tmp_path / "train-images-idx3-ubyte", tr, compress=False)
    write_idx(tmp_path / "train-labels-idx1-ubyte", trl, compress=False)
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", te)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", tel)
    b = load_dataset("mnist", tmp_path, val_fraction=0.0, options={"pad32": "true"}, progress=False)
    assert b.meta["sizes"] == {"train": 30, "val": 0, "test": 10}
    assert b.test.x.shape == (10, 32, 32)
    np.testing.assert_array_equal(b.test.y, tel)
    raw = b.test.x * b.normalisation.std + b.normalisation.mean
    np.testing.assert_allclose(raw[:, 2:30, 2:30], te / 255.0, atol=1e-5)
    np.testing.assert_allclose(raw[:, :2, :], 0.0, atol=1e-5)


def test_errors(tmp_path: Path, single: tuple[Path, np.ndarray, np.ndarray]) -> None:
    with pytest.raises(UserError, match="does not exist"):
        load_dataset("mnist", tmp_path / "nowhere", progress=False)
    other = tmp_path / "other"
    other.mkdir()
    (other / "readme.txt").write_text("x")
    with pytest.raises(UserError, match="expected IDX files.*found: readme.txt"):
        load_dataset("mnist", other, progress=False)
    path, images, labels = single
    write_idx(path / "labels-idx1-ubyte.gz", images)  # a 3-D file where labels belong
    with pytest.raises(UserError, match="IDX magic is 0x00000803, expected 0x00000801"):
        load_dataset("mnist", path, progress=False)
    with pytest.raises(UserError, match="unknown option 'pad30'"):
        load_dataset("mnist", path, options={"pad30": True}, progress=False)
    with pytest.raises(UserError, match="unknown dataset"):
        load_dataset("cifar", path, progress=False)
    empty = tmp_path / "empty"
    empty.mkdir()
    write_idx(empty / "images-idx3-ubyte.gz", np.zeros((0, 28, 28)))
    write_idx(empty / "labels-idx1-ubyte.gz", np.zeros((0,)))
    with pytest.raises(UserError, match="empty dataset"):
        load_dataset("mnist", empty, progress=False)
