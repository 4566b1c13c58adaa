"""UCI HAR windows from a synthetic HAPT RawData folder and a synthetic 'UCI HAR Dataset' folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import signal

from snnhw.data import load_dataset, rebuild_bundle
from snnhw.data.har import CHANNELS
from snnhw.errors import UserError

LABELS = """1 1 5 20 300
1 1 7 301 350
1 1 1 351 690
2 2 6 0 255
2 2 3 300 400
"""


def signals(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 50.0
    acc = np.stack([np.sin(2 * np.pi * 1.5 * t), 0.2 * np.cos(2 * np.pi * 0.1 * t), np.ones(n)], axis=1)
    acc += 0.05 * rng.normal(size=acc.shape)
    gyro = 0.3 * rng.normal(size=(n, 3))
    return acc, gyro


@pytest.fixture
def raw_dir(tmp_path: Path) -> Path:
    root = tmp_path / "RawData"
    root.mkdir()
    for exp, user, n in ((1, 1, 700), (2, 2, 420)):
        acc, gyro = signals(n, exp)
        np.savetxt(root / f"acc_exp{exp:02d}_user{user:02d}.txt", acc, fmt="%.9f")
        np.savetxt(root / f"gyro_exp{exp:02d}_user{user:02d}.txt", gyro, fmt="%.9f")
    (root / "labels.txt").write_text(LABELS)
    (root / "activity_labels.txt").write_text("1 WALKING\n2 UP\n3 DOWN\n4 SIT\n5 STAND\n6 LAY\n7 STAND_TO_SIT\n")
    return tmp_path


def reference_channels(acc: np.ndarray, gyro: np.ndarray) -> np.ndarray:
    """The documented pipeline, written out with scipy.signal (median filter with repeated ends)."""
    acc = signal.medfilt(np.pad(acc, ((1, 1), (0, 0)), mode="edge"), kernel_size=(3, 1))[1:-1]
    gyro = signal.medfilt(np.pad(gyro, ((1, 1), (0, 0)), mode="edge"), kernel_size=(3, 1))[1:-1]
    b, a = signal.butter(3, 20 / 25)
    total = signal.filtfilt(b, a, acc, axis=0)
    bg, ag = signal.butter(3, 0.3 / 25)
    gravity = signal.filtfilt(bg, ag, total, axis=0)
    return np.concatenate([total - gravity, signal.filtfilt(b, a, gyro, axis=0), total], axis=1)


def test_raw_windows_subject_split_and_filters(raw_dir: Path) -> None:
    b = load_dataset("har", raw_dir, val_fraction=0.0, progress=False)  # parent of RawData/
    assert b.meta["layout"] == "hapt-raw"
    assert b.meta["sizes"] == {"train": 7, "val": 0, "test": 3}
    assert b.meta["subjects"] == {"train": [1], "test": [2]}
    assert b.train.x.shape == (7, 128, 9)
    np.testing.assert_array_equal(b.train.y, [4, 4, 4, 0, 0, 0, 0])
    np.testing.assert_array_equal(b.test.y, [5, 5, 5])
    assert b.class_names == ["WALKING", "UP", "DOWN", "SIT", "STAND", "LAY"]
    raw = b.train.x * b.normalisation.std + b.normalisation.mean
    ref = reference_channels(*signals(700, 1))
    # windows of segment 1: starts 20, 84, 148; segment 3 (activity 1): 351, 415, 479, 543
    for k, start in enumerate([20, 84, 148, 351, 415, 479, 543]):
        np.testing.assert_allclose(raw[k], ref[start: start + 128], atol=2e-5)
    # normalisation comes from the training windows only
    flat = raw.reshape(-1, 9).astype(np.float64)
    np.testing.assert_allclose(b.normalisation.mean, flat.mean(axis=0), atol=1e-5)
    test_raw = b.test.x * b.normalisation.std + b.normalisation.mean
    ref2 = reference_channels(*signals(420, 2))
    np.testing.assert_allclose(test_raw[2], ref2[128:256], atol=2e-5)


def test_raw_options_and_determinism(raw_dir: Path) -> None:
    a = load_dataset("har", raw_dir / "RawData", seed=1, val_fraction=0.3,
                     options={"step": "128", "test_subjects": "1"}, progress=False)
    assert a.meta["sizes"] == {"train": 1, "val": 1, "test": 4}  # user 2: windows at 0, 128
    assert a.meta["options"]["step"] == 128 and a.meta["options"]["test_subjects"] == [1]
    x = load_dataset("har", raw_dir, seed=2, val_fraction=0.3, progress=False)
    y = load_dataset("har", raw_dir, seed=2, val_fraction=0.3, progress=False)
    np.testing.assert_array_equal(x.val.x, y.val.x)
    assert x.meta["sizes"]["val"] == 2


def test_cache_gives_identical_data(raw_dir: Path, tmp_path: Path) -> None:
    opts = {"cache_dir": str(tmp_path / "cache")}
    first = load_dataset("har", raw_dir, options=opts, progress=False)
    assert len(list((tmp_path / "cache").glob("har-*.npz"))) == 1
    second = load_dataset("har", raw_dir, options=opts, progress=False)
    np.testing.assert_array_equal(first.train.x, second.train.x)
    assert "cache_dir" not in first.meta["options"]


def write_uci(root: Path) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(4)
    data = {}
    for split, n, subj in (("train", 6, 1), ("test", 3, 2)):
        sig = root / split / "Inertial Signals"
        sig.mkdir(parents=True)
        x = rng.normal(size=(n, 128, 9))
        for c, name in enumerate(CHANNELS):
            np.savetxt(sig / f"{name}_{split}.txt", x[:, :, c], fmt="%.8e")
        y = np.arange(n) % 6 + 1
        np.savetxt(root / split / f"y_{split}.txt", y, fmt="%d")
        np.savetxt(root / split / f"subject_{split}.txt", np.full(n, subj), fmt="%d")
        data[split], data["y_" + split] = x, y
    return data


def test_released_uci_har_layout(tmp_path: Path) -> None:
    data = write_uci(tmp_path / "UCI HAR Dataset")
    b = load_dataset("har", tmp_path, val_fraction=0.0, progress=False)
    assert b.meta["layout"] == "uci-har"
    assert b.test.x.shape == (3, 128, 9)
    np.testing.assert_array_equal(b.test.y, data["y_test"] - 1)
    raw = b.test.x * b.normalisation.std + b.normalisation.mean
    np.testing.assert_allclose(raw, data["test"], atol=1e-5)
    again = rebuild_bundle(json.loads(json.dumps(b.meta)), b.normalisation.to_dict(), progress=False)
    np.testing.assert_array_equal(again.test.x, b.test.x)
    with pytest.raises(UserError, match="applies to the HAPT RawData layout only"):
        load_dataset("har", tmp_path, options={"window": 64}, progress=False)


def test_errors(raw_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="does not exist"):
        load_dataset("har", tmp_path / "missing", progress=False)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "notes.txt").write_text("x")
    with pytest.raises(UserError, match="expected UCI HAPT RawData.*found: notes.txt"):
        load_dataset("har", bad, progress=False)
    (raw_dir / "RawData" / "gyro_exp02_user02.txt").unlink()
    with pytest.raises(UserError, match="gyro_exp02_user02.txt is missing"):
        load_dataset("har", raw_dir, progress=False)
    (raw_dir / "RawData" / "labels.txt").write_text("1 1 8 0 100\n")
    with pytest.raises(UserError, match="empty dataset"):
        load_dataset("har", raw_dir, progress=False)


def test_validation_subjects(raw_dir: Path, tmp_path: Path) -> None:
    """``val_subjects``: the windows of those training subjects are the validation split (the
    random ``val_fraction`` is not applied), recorded in the meta and rebuilt from it."""
    root = raw_dir / "RawData"
    acc, gyro = signals(500, 3)
    np.savetxt(root / "acc_exp03_user03.txt", acc, fmt="%.9f")
    np.savetxt(root / "gyro_exp03_user03.txt", gyro, fmt="%.9f")
    (root / "labels.txt").write_text(LABELS + "3 3 4 10 400\n")  # user 3: windows at 10, 74, …, 266
    plain = load_dataset("har", raw_dir, val_fraction=0.0, progress=False)
    assert plain.meta["sizes"] == {"train": 12, "val": 0, "test": 3}
    b = load_dataset("har", raw_dir, val_fraction=0.3, options={"val_subjects": "3"}, progress=False)
    assert b.meta["sizes"] == {"train": 7, "val": 5, "test": 3}
    assert b.meta["val_rule"] == "defined by the source" and "validation subjects [3]" in b.meta["split_rule"]
    np.testing.assert_array_equal(b.val.y, [3] * 5)
    val_raw = b.val.x * b.normalisation.std + b.normalisation.mean
    ref = reference_channels(acc, gyro)
    for k, start in enumerate([10, 74, 138, 202, 266]):
        np.testing.assert_allclose(val_raw[k], ref[start: start + 128], atol=2e-5)
    again = rebuild_bundle(json.loads(json.dumps(b.meta)), b.normalisation.to_dict(), progress=False)
    np.testing.assert_array_equal(again.val.x, b.val.x)
    cache = {"cache_dir": str(tmp_path / "cache")}
    first = load_dataset("har", raw_dir, options={**cache, "val_subjects": "3"}, progress=False)
    other = load_dataset("har", raw_dir, options=cache, val_fraction=0.0, progress=False)  # not the cached split
    assert first.meta["sizes"]["val"] == 5 and other.meta["sizes"] == {"train": 12, "val": 0, "test": 3}
    with pytest.raises(UserError, match=r"val_subjects \[2\] are not training subjects"):
        load_dataset("har", raw_dir, options={"val_subjects": "2"}, progress=False)  # a test subject
    with pytest.raises(UserError, match="every training subject"):
        load_dataset("har", raw_dir, options={"val_subjects": "1,3"}, progress=False)


def test_validation_subjects_of_the_released_layout(tmp_path: Path) -> None:
    root = tmp_path / "UCI HAR Dataset"
    data = write_uci(root)
    np.savetxt(root / "train" / "subject_train.txt", [1, 1, 3, 1, 3, 1], fmt="%d")
    b = load_dataset("har", tmp_path, options={"val_subjects": [3]}, progress=False)
    assert b.meta["sizes"] == {"train": 4, "val": 2, "test": 3}
    np.testing.assert_array_equal(b.val.y, data["y_train"][[2, 4]] - 1)
    (root / "train" / "subject_train.txt").unlink()
    with pytest.raises(UserError, match="val_subjects needs .*subject_train.txt"):
        load_dataset("har", tmp_path, options={"val_subjects": [3]}, progress=False)
