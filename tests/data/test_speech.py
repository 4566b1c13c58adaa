"""Log-mel keyword-spotting data from tiny FSDD and Speech Commands folders written in tmp_path."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from snnhw.data import load_dataset, rebuild_bundle
from snnhw.errors import UserError


def tone(seconds: float, rate: int, freq: float, seed: int) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    noise = np.random.default_rng(seed).normal(scale=0.01, size=t.shape)
    return (0.3 * np.sin(2 * np.pi * freq * t) + noise).astype(np.float32)


@pytest.fixture
def fsdd(tmp_path: Path) -> Path:
    rec = tmp_path / "recordings"
    rec.mkdir()
    k = 0
    for digit in range(3):
        for speaker in ("ann", "bob"):
            for index in range(7):
                seconds = 0.2 + 0.15 * index  # 0.2 .. 1.1 s: padded and trimmed
                sf.write(rec / f"{digit}_{speaker}_{index}.wav", tone(seconds, 8000, 300 + 400 * digit, k), 8000,
                         subtype="PCM_16")
                k += 1
    return tmp_path


def test_fsdd_index_split_shapes_and_features(fsdd: Path) -> None:
    import librosa

    b = load_dataset("fsdd", fsdd, seed=0, val_fraction=0.25, progress=False)
    assert b.meta["sizes"] == {"train": 9, "val": 3, "test": 30}  # index 0-4 test, 5-6 train
    assert b.train.x.shape == (9, 81, 20) and b.test.x.shape == (30, 81, 20)
    assert b.meta["speakers"] == ["ann", "bob"]
    f = b.meta["features"]
    assert (f["sample_rate"], f["hop_length"], f["n_fft"], f["n_mels"], f["n_frames"]) == (8000, 100, 256, 20, 81)
    np.testing.assert_array_equal(np.bincount(b.test.y), [10, 10, 10])
    # Test item 0 is 0_ann_0.wav (sorted file order, test subset keeps it): the documented front end by hand.
    audio, _ = sf.read(fsdd / "recordings" / "0_ann_0.wav", dtype="float32")
    audio = np.pad(audio, (0, 8000 - len(audio)))
    mel = librosa.feature.melspectrogram(y=audio, sr=8000, n_fft=256, hop_length=100, n_mels=20,
                                         pad_mode="constant")
    expected = np.log(mel + 1e-6).T
    raw = b.test.x[0] * b.normalisation.std + b.normalisation.mean
    np.testing.assert_allclose(raw, expected, rtol=1e-5, atol=1e-4)
    assert b.test.y[0] == 0


def test_fsdd_align_trim_and_determinism(fsdd: Path) -> None:
    a = load_dataset("fsdd", fsdd / "recordings", options={"align": "center", "test_max_index": 5},
                     progress=False)
    b = load_dataset("fsdd", fsdd / "recordings", options={"align": "center", "test_max_index": 5},
                     progress=False)
    assert a.meta["sizes"]["test"] == 36
    np.testing.assert_array_equal(a.train.x, b.train.x)
    c = load_dataset("fsdd", fsdd, progress=False)
    assert not np.array_equal(a.test.x[:30], c.test.x)
    again = rebuild_bundle(json.loads(json.dumps(a.meta)), a.normalisation.to_dict(), progress=False)
    np.testing.assert_array_equal(again.val.x, a.val.x)


def test_fsdd_errors(fsdd: Path, tmp_path: Path) -> None:
    rec = fsdd / "recordings"
    with pytest.raises(UserError, match="unknown option 'n_mel'"):
        load_dataset("fsdd", fsdd, options={"n_mel": 40}, progress=False)
    (rec / "2_bob_6.wav").write_bytes(b"RIFF....not a wav")
    with pytest.raises(UserError, match="cannot read WAV .*2_bob_6.wav"):
        load_dataset("fsdd", fsdd, progress=False)
    sf.write(rec / "2_bob_6.wav", tone(0.5, 16000, 440, 0), 16000)
    with pytest.raises(UserError, match="set option sample_rate"):
        load_dataset("fsdd", fsdd, progress=False)
    b = load_dataset("fsdd", fsdd, options={"sample_rate": 8000}, progress=False)
    assert b.meta["features"]["resample"] == "scipy.signal.resample_poly"
    (rec / "hello.wav").write_bytes(b"")
    with pytest.raises(UserError, match="hello.wav .* does not match"):
        load_dataset("fsdd", fsdd, progress=False)
    empty = tmp_path / "none"
    empty.mkdir()
    with pytest.raises(UserError, match="expected .*wav files .*found: an empty directory"):
        load_dataset("fsdd", empty, progress=False)


@pytest.fixture
def gsc(tmp_path: Path) -> Path:
    root = tmp_path / "speech_commands"
    words = {"yes": 4, "no": 4, "cat": 3, "_background_noise_": 1}
    for w, n in words.items():
        (root / w).mkdir(parents=True)
        for i in range(n):
            sf.write(root / w / f"spk{i}_nohash_0.wav", tone(0.7 + 0.1 * i, 16000, 200 + 50 * i, i), 16000)
    (root / "testing_list.txt").write_text("yes/spk0_nohash_0.wav\nno/spk0_nohash_0.wav\ncat/spk0_nohash_0.wav\n")
    (root / "validation_list.txt").write_text("yes/spk1_nohash_0.wav\ncat/spk1_nohash_0.wav\n")
    return root


def test_gsc_lists_classes_and_unknown(gsc: Path) -> None:
    b = load_dataset("gsc", gsc, options={"keywords": "yes,no"}, progress=False)
    assert b.class_names == ["yes", "no", "unknown"]
    assert b.meta["sizes"] == {"train": 6, "val": 2, "test": 3}
    assert b.meta["unknown_words"] == ["cat"]
    np.testing.assert_array_equal(b.test.y, [2, 1, 0])  # cat, no, yes in folder order
    np.testing.assert_array_equal(b.val.y, [2, 0])
    assert b.test.x.shape == (3, 81, 20)
    assert b.meta["features"]["hop_length"] == 200 and b.meta["features"]["n_fft"] == 512
    only = load_dataset("gsc", gsc, options={"keywords": "yes,no", "unknown": "false"}, progress=False)
    assert only.class_names == ["yes", "no"] and only.meta["sizes"] == {"train": 5, "val": 1, "test": 2}


def test_gsc_errors(gsc: Path) -> None:
    with pytest.raises(UserError, match="keyword folder 'up' not found"):
        load_dataset("gsc", gsc, progress=False)
    (gsc / "testing_list.txt").write_text("yes/gone.wav\n")
    with pytest.raises(UserError, match="testing_list.txt names 1 files that are missing"):
        load_dataset("gsc", gsc, options={"keywords": "yes,no"}, progress=False)
    (gsc / "testing_list.txt").unlink()
    with pytest.raises(UserError, match="expected testing_list.txt"):
        load_dataset("gsc", gsc, options={"keywords": "yes,no"}, progress=False)


def test_fit_length_alignments() -> None:
    from snnhw.data.speech import fit_length

    audio = np.arange(1, 5, dtype=np.float32)
    assert fit_length(audio, 6, "start").tolist() == [1, 2, 3, 4, 0, 0]
    assert fit_length(audio, 6, "center").tolist() == [0, 1, 2, 3, 4, 0]
    assert fit_length(audio, 6, "end").tolist() == [0, 0, 1, 2, 3, 4]
    assert fit_length(audio, 2, "end").tolist() == [3, 4]
    assert fit_length(audio, 2, "start").tolist() == [1, 2]
