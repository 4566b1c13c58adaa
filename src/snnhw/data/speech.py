"""Keyword spotting on log-mel features: Free Spoken Digit Dataset and Google Speech Commands.

Front end (the paper's GSC input, 20 mel bands x 81 frames), per recording:

1. read with ``soundfile`` as float32; multi-channel audio is averaged to mono; if option
   ``sample_rate`` is set and differs from the file's, resample with
   ``scipy.signal.resample_poly`` (otherwise every file must share one rate);
2. pad with zeros / trim to ``duration_s`` (default 1 s): ``align=start`` keeps the beginning
   (pad or cut at the end), ``align=center`` pads or cuts equally at both ends, ``align=end``
   keeps the end (pad or cut at the beginning, so the word ends on the last frame);
3. ``librosa.feature.melspectrogram(sr, n_fft, hop_length, win_length=n_fft, window="hann",
   center=True, pad_mode="constant", power=2.0, n_mels, fmin, fmax, htk=False, norm="slaney")``
   with ``hop_length = L // (n_frames - 1)`` for L samples, so that ``1 + L // hop = n_frames``
   (8 kHz, 1 s: hop 100 = 12.5 ms; 16 kHz: hop 200), and ``n_fft`` (auto) the smallest power of
   two >= 2·hop (8 kHz: 256 = 32 ms; 16 kHz: 512);
4. ``log(mel + log_eps)`` (natural log), transposed to ``[n_frames, n_mels]``: N = 81, D = 20.

Every resolved setting (including the derived sample rate, hop and n_fft) is in
``meta["features"]``.

FSDD: ``{digit}_{speaker}_{index}.wav`` in the given folder or its ``recordings/``; index
``<= test_max_index`` (default 4, the customary split: 300 test / 2,700 train) → test.

GSC: ``<word>/<file>.wav`` plus ``testing_list.txt`` and (optional) ``validation_list.txt``;
classes: the 10 keywords (default yes, no, up, down, left, right, on, off, stop, go) in that
order, then ``unknown`` for every other word folder (option ``unknown=false`` drops them);
``_background_noise_`` and folders starting with ``_`` are excluded. Splits follow the lists;
without ``validation_list.txt`` the validation split is carved from train.
"""

from __future__ import annotations

import re
from math import gcd
from pathlib import Path

import numpy as np

from snnhw.data.base import (Option, RawSplits, SequenceDataset, cached, describe_dir, encode_labels,
                             require_dir)
from snnhw.errors import UserError

GSC_KEYWORDS = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]
UNKNOWN = "unknown"
_FSDD_NAME = re.compile(r"^(\d)_([^_]+)_(\d+)\.wav$", re.IGNORECASE)
_CHUNK = 256  # recordings per librosa call

FEATURE_OPTIONS: dict[str, Option] = {
    "n_mels": Option("int", 20, "mel bands (D)"),
    "n_frames": Option("int", 81, "frames per recording (N)"),
    "duration_s": Option("float", 1.0, "audio padded/trimmed to this many seconds"),
    "align": Option("str", "start", "where padding/trimming happens", choices=("start", "center", "end")),
    "sample_rate": Option("int", None, "resample to this rate in Hz (auto: the files' own rate)"),
    "n_fft": Option("int", None, "FFT and window length in samples (auto: smallest power of two >= 2*hop)"),
    "fmin": Option("float", 0.0, "lowest mel frequency in Hz"),
    "fmax": Option("float", None, "highest mel frequency in Hz (auto: sample_rate / 2)"),
    "log_eps": Option("float", 1e-6, "features are log(mel power + log_eps)"),
    "cache_dir": Option("str", None, "directory to cache computed features in (off by default)", feature=False),
}
FSDD_OPTIONS: dict[str, Option] = {
    "test_max_index": Option("int", 4, "recordings with index <= this form the test split"),
    **FEATURE_OPTIONS,
}
GSC_OPTIONS: dict[str, Option] = {
    "keywords": Option("strs", list(GSC_KEYWORDS), "keyword classes, in class-index order"),
    "unknown": Option("bool", True, "map every other word to an extra class 'unknown' (false: drop them)"),
    **FEATURE_OPTIONS,
}


def read_wav(path: Path, target_rate: int | None) -> tuple[np.ndarray, int]:
    """float32 mono samples of ``path`` and their rate (Hz), resampled to ``target_rate`` if given."""
    import soundfile as sf
    from scipy import signal

    try:
        audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, sf.LibsndfileError) as e:
        raise UserError(f"cannot read WAV {path}: {e}") from None
    mono = audio.mean(axis=1) if audio.shape[1] > 1 else audio[:, 0]
    if target_rate is not None and rate != target_rate:
        g = gcd(int(rate), int(target_rate))
        mono = signal.resample_poly(mono, target_rate // g, rate // g).astype(np.float32)
        rate = target_rate
    return mono, int(rate)


def fit_length(audio: np.ndarray, length: int, align: str) -> np.ndarray:
    """``audio`` zero-padded or trimmed to ``length`` samples.

    ``align``: 'start' keeps the beginning (pads/cuts at the end), 'center' pads/cuts equally
    at both ends, 'end' keeps the end (pads/cuts at the beginning: the recording finishes on the
    last frame, where the LSTM's readout is taken).
    """
    n = len(audio)
    share = {"start": 0.0, "center": 0.5, "end": 1.0}[align]
    if n >= length:
        start = int((n - length) * share)
        return audio[start: start + length]
    before = int((length - n) * share)
    return np.pad(audio, (before, length - n - before))


def frame_settings(rate: int, options: dict) -> dict:
    """The derived STFT/mel settings for audio at ``rate`` Hz (see the module docstring)."""
    length = int(round(options["duration_s"] * rate))
    n_frames, n_mels = options["n_frames"], options["n_mels"]
    if n_frames < 2 or n_mels < 1:
        raise UserError(f"n_frames must be >= 2 and n_mels >= 1, got {n_frames}, {n_mels}")
    hop = length // (n_frames - 1)
    if hop < 1 or 1 + length // hop != n_frames:
        raise UserError(f"cannot make {n_frames} frames from {length} samples ({options['duration_s']} s at {rate} Hz)")
    n_fft = options["n_fft"] or 1 << int(np.ceil(np.log2(2 * hop)))
    fmax = options["fmax"] if options["fmax"] is not None else rate / 2
    if not 0 <= options["fmin"] < fmax <= rate / 2:
        raise UserError(f"need 0 <= fmin < fmax <= {rate / 2} Hz, got fmin {options['fmin']}, fmax {fmax}")
    return {"sample_rate": rate, "samples": length, "hop_length": hop, "n_fft": n_fft, "win_length": n_fft,
            "window": "hann", "center": True, "pad_mode": "constant", "power": 2.0, "n_mels": n_mels,
            "n_frames": n_frames, "fmin": float(options["fmin"]), "fmax": float(fmax), "htk": False,
            "norm": "slaney", "log": "natural", "log_eps": float(options["log_eps"]),
            "duration_s": float(options["duration_s"]), "align": options["align"],
            "mono": "mean of channels", "resample": "scipy.signal.resample_poly" if options["sample_rate"] else None}


def log_mel_features(files: list[Path], options: dict, progress: bool, desc: str) -> tuple[np.ndarray, dict]:
    """float32 ``[len(files), n_frames, n_mels]`` log-mel features of ``files`` and the settings used."""
    import librosa
    from tqdm import tqdm

    target = options["sample_rate"]
    out = np.empty((len(files), options["n_frames"], options["n_mels"]), dtype=np.float32)
    settings: dict | None = None
    first = None
    with tqdm(total=len(files), desc=desc, unit="wav", disable=not progress) as bar:
        for c0 in range(0, len(files), _CHUNK):
            chunk = files[c0: c0 + _CHUNK]
            batch = []
            for f in chunk:
                audio, rate = read_wav(f, target)
                if settings is None:
                    settings, first = frame_settings(rate, options), f
                elif rate != settings["sample_rate"]:
                    raise UserError(f"{f.name} is sampled at {rate} Hz but {first.name} at {settings['sample_rate']} Hz; "
                                    f"set option sample_rate to resample all files")
                batch.append(fit_length(audio, settings["samples"], settings["align"]))
            mel = librosa.feature.melspectrogram(
                y=np.stack(batch), sr=settings["sample_rate"], n_fft=settings["n_fft"],
                hop_length=settings["hop_length"], win_length=settings["win_length"], window="hann", center=True,
                pad_mode="constant", power=2.0, n_mels=settings["n_mels"], fmin=settings["fmin"],
                fmax=settings["fmax"], htk=False, norm="slaney")
            out[c0: c0 + len(chunk)] = np.log(mel + settings["log_eps"]).transpose(0, 2, 1)
            bar.update(len(chunk))
    assert settings is not None
    return out, settings


def load_fsdd(path: Path, options: dict, seed: int, progress: bool) -> RawSplits:
    """FSDD train/test splits by recording index (``seed`` unused)."""
    require_dir(path, "fsdd")
    root = path / "recordings" if (path / "recordings").is_dir() else path
    if not root.is_dir():
        raise UserError(f"fsdd: expected a folder of {{digit}}_{{speaker}}_{{index}}.wav files, {root} is a file")
    wavs = sorted(p for p in root.iterdir() if p.suffix.lower() == ".wav")
    entries = []
    for p in wavs:
        m = _FSDD_NAME.match(p.name)
        if not m:
            raise UserError(f"fsdd: {p.name} in {root} does not match {{digit}}_{{speaker}}_{{index}}.wav")
        entries.append((p, int(m[1]), m[2], int(m[3])))
    if not entries:
        raise UserError(f"fsdd: expected {{digit}}_{{speaker}}_{{index}}.wav files in {root}, found: {describe_dir(root)}")
    is_test = np.array([e[3] <= options["test_max_index"] for e in entries])
    files = [e[0] for e in entries]
    labels = np.array([e[1] for e in entries], dtype=np.int64)

    def compute() -> RawSplits:
        x, settings = log_mel_features(files, options, progress, "fsdd: log-mel")
        full = SequenceDataset.fixed_length(x, labels)
        return RawSplits(full.subset(np.flatnonzero(~is_test)), full.subset(np.flatnonzero(is_test)),
                         [str(d) for d in range(10)], {
                             "layout": "fsdd",
                             "split_rule": f"recording index <= {options['test_max_index']} as test",
                             "speakers": sorted({e[2] for e in entries}),
                             "features": settings})

    key = {"dataset": "fsdd", "root": str(root.resolve()),
           "options": {k: v for k, v in options.items() if FSDD_OPTIONS[k].feature}}
    return cached(options["cache_dir"], key, files, compute)


def _read_list(root: Path, name: str, required: bool) -> set[str] | None:
    f = root / name
    if not f.is_file():
        if required:
            raise UserError(f"gsc: expected {name} in {root} (Speech Commands layout <word>/<file>.wav + "
                            f"validation_list.txt + testing_list.txt), found: {describe_dir(root)}")
        return None
    return {line.strip().replace("\\", "/") for line in f.read_text().splitlines() if line.strip()}


def load_gsc(path: Path, options: dict, seed: int, progress: bool) -> RawSplits:
    """Speech Commands splits from its list files (``seed`` unused)."""
    root = require_dir(path, "gsc")
    if not root.is_dir():
        raise UserError(f"gsc: expected the Speech Commands folder, {root} is a file")
    testing = _read_list(root, "testing_list.txt", True)
    validation = _read_list(root, "validation_list.txt", False)
    keywords = options["keywords"]
    if not keywords or len(set(keywords)) != len(keywords):
        raise UserError(f"gsc: option 'keywords' must list distinct words, got {keywords}")
    class_names = list(keywords) + ([UNKNOWN] if options["unknown"] else [])
    words = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("_"))
    missing = [k for k in keywords if k not in words]
    if missing:
        raise UserError(f"gsc: keyword folder {missing[0]!r} not found in {root}")
    entries: list[tuple[str, str]] = []  # (relative path, class name)
    for w in words:
        if w not in keywords and not options["unknown"]:
            continue
        cls = w if w in keywords else UNKNOWN
        entries += [(f"{w}/{p.name}", cls) for p in sorted((root / w).iterdir()) if p.suffix.lower() == ".wav"]
    if not entries:
        raise UserError(f"gsc: no .wav files in the word folders of {root} (empty dataset)")
    present = {e[0] for e in entries}
    for name, listed in (("testing_list.txt", testing), ("validation_list.txt", validation)):
        absent = sorted(p for p in (listed or ()) if p not in present
                        and (p.split("/")[0] in keywords or options["unknown"]))
        if absent:
            raise UserError(f"gsc: {name} names {len(absent)} files that are missing, e.g. {absent[0]}")
    split = np.array([2 if p in testing else 1 if validation is not None and p in validation else 0
                      for p, _ in entries])
    files = [root / p for p, _ in entries]
    labels = encode_labels([c for _, c in entries], class_names)

    def compute() -> RawSplits:
        x, settings = log_mel_features(files, options, progress, "gsc: log-mel")
        full = SequenceDataset.fixed_length(x, labels)
        parts = [full.subset(np.flatnonzero(split == k)) for k in range(3)]
        return RawSplits(parts[0], parts[2], class_names, {
            "layout": "speech-commands",
            "split_rule": "testing_list.txt / validation_list.txt" if validation is not None
            else "testing_list.txt; validation carved from train",
            "unknown_words": [w for w in words if w not in keywords] if options["unknown"] else [],
            "features": settings}, val=parts[1] if validation is not None else None)

    key = {"dataset": "gsc", "root": str(root.resolve()),
           "options": {k: v for k, v in options.items() if GSC_OPTIONS[k].feature}}
    lists = [root / n for n in ("testing_list.txt", "validation_list.txt") if (root / n).is_file()]
    return cached(options["cache_dir"], key, files + lists, compute)
