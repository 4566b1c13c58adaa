"""UCI HAR human-activity windows, rebuilt from UCI HAPT ``RawData/`` or read from the release.

Two layouts are detected automatically:

``hapt-raw`` (UCI HAPT ``RawData/``: ``acc_expXX_userYY.txt``, ``gyro_expXX_userYY.txt``,
``labels.txt`` with rows ``exp user activity start end``, 0-based inclusive sample indices,
``activity_labels.txt``). Per experiment, at fs = 50 Hz, with ``scipy.signal``:

1. 3rd-order median filter on each of the 6 channels (``scipy.ndimage.median_filter(size=(3, 1),
   mode="nearest")``: ``scipy.signal.medfilt`` in the interior, the end samples repeated rather
   than zero-padded, which would pull the first and last sample towards 0 g);
2. ``butter(3, 20 / 25)`` low-pass, applied with ``filtfilt`` (zero phase, scipy's default
   odd-extension padding, padlen = 3·max(len(a), len(b)) = 12) → total_acc (g) and body_gyro
   (rad/s);
3. gravity = ``filtfilt(butter(3, 0.3 / 25), total_acc)``; body_acc = total_acc − gravity;
4. inside each labelled segment of activities 1–6, windows of 128 samples (2.56 s) with a step
   of 64 (50 % overlap) starting at the segment start; a window never crosses the segment end.

Channels (D = 9, N = 128): body_acc x,y,z, body_gyro x,y,z, total_acc x,y,z, the order of the
UCI HAR ``Inertial Signals``. Labels 0..5 are activities 1..6. Subjects in ``test_subjects``
(default: UCI HAR's 2, 4, 9, 10, 12, 13, 18, 20, 24) form the test split. Subjects in
``val_subjects`` (default none) form the validation split, in place of a random fraction of the
training windows: with 50 % overlapping windows a random fraction shares most of its samples
with training windows of the same recordings, so only unseen subjects measure what the test
split measures.

``uci-har`` (the released ``UCI HAR Dataset`` directory: ``train/Inertial Signals/*_train.txt``,
``train/y_train.txt``, ``test/...``): the published windows and split, read as they are
(``val_subjects`` needs ``train/subject_train.txt``).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from snnhw.data.base import Option, RawSplits, SequenceDataset, cached, describe_dir, require_dir
from snnhw.errors import UserError

UCI_HAR_TEST_SUBJECTS = [2, 4, 9, 10, 12, 13, 18, 20, 24]
DEFAULT_CLASS_NAMES = ["WALKING", "WALKING_UPSTAIRS", "WALKING_DOWNSTAIRS", "SITTING", "STANDING", "LAYING"]
CHANNELS = ["body_acc_x", "body_acc_y", "body_acc_z", "body_gyro_x", "body_gyro_y", "body_gyro_z",
            "total_acc_x", "total_acc_y", "total_acc_z"]
SAMPLE_RATE_HZ = 50.0

OPTIONS: dict[str, Option] = {
    "window": Option("int", 128, "window length in samples at 50 Hz (RawData layout only)"),
    "step": Option("int", 64, "samples between window starts, 64 = 50 % overlap (RawData layout only)"),
    "median": Option("bool", True, "3rd-order median filter before the low-pass (RawData layout only)"),
    "lowpass_hz": Option("float", 20.0, "3rd-order Butterworth noise low-pass cut-off (RawData layout only)"),
    "gravity_hz": Option("float", 0.3, "3rd-order Butterworth gravity cut-off (RawData layout only)"),
    "test_subjects": Option("ints", list(UCI_HAR_TEST_SUBJECTS), "subjects in the test split (RawData layout only)"),
    "val_subjects": Option("ints", [], "training subjects whose windows form the validation split instead of a "
                                       "random --val-fraction of the training windows (default none)"),
    "cache_dir": Option("str", None, "directory to cache computed windows in (off by default)", feature=False),
}
_RAW_ONLY = ("window", "step", "median", "lowpass_hz", "gravity_hz", "test_subjects")
_RAW_FILE = re.compile(r"^(acc|gyro)_exp(\d+)_user(\d+)\.txt$")


def detect_layout(path: Path) -> tuple[str, Path]:
    """('hapt-raw' | 'uci-har', the directory that holds it) for ``path``; UserError otherwise."""
    require_dir(path, "har")
    for cand in (path, path / "RawData"):
        if (cand / "labels.txt").is_file() and any(cand.glob("acc_exp*_user*.txt")):
            return "hapt-raw", cand
    for cand in (path, path / "UCI HAR Dataset"):
        if (cand / "train" / "Inertial Signals").is_dir() and (cand / "test" / "Inertial Signals").is_dir():
            return "uci-har", cand
    raise UserError(f"har: expected UCI HAPT RawData (labels.txt + acc_expXX_userYY.txt + gyro_...) or the "
                    f"'UCI HAR Dataset' layout (train/Inertial Signals, test/Inertial Signals) at {path}, "
                    f"found: {describe_dir(path)}")


def _read_table(path: Path, cols: int | None = None) -> np.ndarray:
    """Whitespace-separated numbers of ``path`` as a 2-D float64 array; UserError if unreadable."""
    try:
        a = np.loadtxt(path, dtype=np.float64, ndmin=2)
    except (ValueError, OSError) as e:
        raise UserError(f"{path}: cannot read numeric table ({e})") from None
    if cols is not None and a.size and a.shape[1] != cols:
        raise UserError(f"{path}: expected {cols} columns, found {a.shape[1]}")
    return a


def _class_names(root: Path) -> list[str]:
    f = root / "activity_labels.txt"
    if not f.is_file():
        return list(DEFAULT_CLASS_NAMES)
    names = {}
    for line in f.read_text().splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].isdigit():
            names[int(parts[0])] = parts[1]
    return [names.get(a, DEFAULT_CLASS_NAMES[a - 1]) for a in range(1, 7)]


def filter_recording(acc: np.ndarray, gyro: np.ndarray, options: dict) -> np.ndarray:
    """The 9 UCI HAR channels ``[samples, 9]`` (float64) of one raw recording.

    ``acc`` in g and ``gyro`` in rad/s, both ``[samples, 3]`` at 50 Hz; steps 1–3 of the
    module docstring.
    """
    from scipy import ndimage, signal

    nyquist = SAMPLE_RATE_HZ / 2
    if options["median"]:
        acc = ndimage.median_filter(acc, size=(3, 1), mode="nearest")
        gyro = ndimage.median_filter(gyro, size=(3, 1), mode="nearest")
    b, a = signal.butter(3, options["lowpass_hz"] / nyquist)
    total = signal.filtfilt(b, a, acc, axis=0)
    body_gyro = signal.filtfilt(b, a, gyro, axis=0)
    bg, ag = signal.butter(3, options["gravity_hz"] / nyquist)
    gravity = signal.filtfilt(bg, ag, total, axis=0)
    return np.concatenate([total - gravity, body_gyro, total], axis=1)


def _load_hapt_raw(root: Path, options: dict, progress: bool) -> RawSplits:
    from tqdm import tqdm

    window, step = options["window"], options["step"]
    if window < 1 or step < 1:
        raise UserError(f"har: window and step must be >= 1, got {window}, {step}")
    for k in ("lowpass_hz", "gravity_hz"):
        if not 0 < options[k] < SAMPLE_RATE_HZ / 2:
            raise UserError(f"har: option {k!r} must lie in (0, 25) Hz, got {options[k]}")
    labels = _read_table(root / "labels.txt", 5).astype(np.int64)
    recordings: dict[tuple[int, int], list[np.ndarray]] = {}
    for exp, user, act, start, end in labels:
        if 1 <= act <= 6:
            recordings.setdefault((int(exp), int(user)), []).append(np.array([act, start, end]))
    if not recordings:
        raise UserError(f"{root / 'labels.txt'}: no segments of activities 1-6 (empty dataset)")
    test_subjects = set(options["test_subjects"])
    _require_training_subjects(options["val_subjects"], {user for _, user in recordings} - test_subjects)
    xs: dict[str, list[np.ndarray]] = {"train": [], "test": []}
    ys: dict[str, list[int]] = {"train": [], "test": []}
    subjects: dict[str, list[int]] = {"train": [], "test": []}
    for (exp, user), segs in tqdm(sorted(recordings.items()), desc="har: filtering recordings",
                                  unit="rec", disable=not progress):
        acc_f = root / f"acc_exp{exp:02d}_user{user:02d}.txt"
        gyro_f = root / f"gyro_exp{exp:02d}_user{user:02d}.txt"
        for f in (acc_f, gyro_f):
            if not f.is_file():
                raise UserError(f"har: labels.txt names experiment {exp} user {user} but {f.name} is missing")
        acc, gyro = _read_table(acc_f, 3), _read_table(gyro_f, 3)
        if len(acc) != len(gyro):
            raise UserError(f"har: {acc_f.name} has {len(acc)} samples, {gyro_f.name} {len(gyro)}")
        if len(acc) < 13:
            raise UserError(f"har: {acc_f.name} has only {len(acc)} samples (filtering needs >= 13)")
        channels = filter_recording(acc, gyro, options).astype(np.float32)
        split = "test" if user in test_subjects else "train"
        for act, start, end in segs:
            if end >= len(channels) or start < 0 or end < start:
                raise UserError(f"har: labels.txt segment {start}-{end} of experiment {exp} lies outside "
                                f"its {len(channels)} samples")
            for s in range(start, end - window + 2, step):
                xs[split].append(channels[s: s + window])
                ys[split].append(int(act) - 1)
                subjects[split].append(user)

    def ds(split: str) -> SequenceDataset:
        if not xs[split]:
            raise UserError(f"har: no {window}-sample windows in the {split} split (empty dataset)")
        return SequenceDataset.fixed_length(np.stack(xs[split]), np.array(ys[split]))

    train, val, val_rule = _carve_subjects(ds("train"), np.array(subjects["train"]), options["val_subjects"])
    return RawSplits(train, ds("test"), _class_names(root), {
        "layout": "hapt-raw",
        "split_rule": f"test subjects {sorted(test_subjects)}{val_rule}",
        "subjects": {k: sorted(set(v)) for k, v in subjects.items()},
        "features": {"channels": CHANNELS, "sample_rate_hz": SAMPLE_RATE_HZ, "window": window, "step": step,
                     "median_kernel": 3 if options["median"] else None, "lowpass": [3, options["lowpass_hz"]],
                     "gravity": [3, options["gravity_hz"]], "filter": "scipy.signal.butter + filtfilt (default padding)"},
    }, val)


def _require_training_subjects(val_subjects: list[int], training: set[int]) -> None:
    """UserError unless every one of ``val_subjects`` is among the ``training`` subjects."""
    outside = sorted(set(val_subjects) - training)
    if outside:
        raise UserError(f"har: val_subjects {outside} are not training subjects (training subjects: "
                        f"{sorted(training)})")


def _carve_subjects(train: SequenceDataset, subject_of: np.ndarray, val_subjects: list[int]
                    ) -> tuple[SequenceDataset, SequenceDataset | None, str]:
    """(training windows, validation windows, the split rule's suffix) with the windows of
    ``val_subjects`` (subject_of: one subject per training window) as the validation split;
    ``(train, None, "")`` for none."""
    if not val_subjects:
        return train, None, ""
    _require_training_subjects(val_subjects, set(subject_of.tolist()))
    held = np.isin(subject_of, val_subjects)
    if held.all():
        raise UserError("har: val_subjects takes every training subject; keep some to train on")
    return (train.subset(np.flatnonzero(~held)), train.subset(np.flatnonzero(held)),
            f", validation subjects {sorted(val_subjects)}")


def _load_uci_har(root: Path, val_subjects: list[int], progress: bool) -> RawSplits:
    from tqdm import tqdm

    out = {}
    subjects = {}
    subject_of: dict[str, np.ndarray] = {}
    bar = tqdm(total=2 * len(CHANNELS), desc="har: reading UCI HAR", unit="file", disable=not progress)
    for split in ("train", "test"):
        chans = []
        for c in CHANNELS:
            f = root / split / "Inertial Signals" / f"{c}_{split}.txt"
            if not f.is_file():
                raise UserError(f"har: UCI HAR layout expects {f}, it is missing")
            chans.append(_read_table(f))
            bar.update()
        if len({a.shape for a in chans}) != 1:
            raise UserError(f"har: the {split} Inertial Signals files differ in shape")
        y = _read_table(root / split / f"y_{split}.txt", 1)[:, 0].astype(np.int64) - 1
        if len(y) != len(chans[0]):
            raise UserError(f"har: y_{split}.txt has {len(y)} labels for {len(chans[0])} windows")
        if len(y) == 0:
            raise UserError(f"har: the {split} split is empty")
        if y.min() < 0 or y.max() > 5:
            raise UserError(f"har: y_{split}.txt holds labels outside 1..6")
        subj_f = root / split / f"subject_{split}.txt"
        if subj_f.is_file():
            subject_of[split] = _read_table(subj_f, 1)[:, 0].astype(np.int64)
            if len(subject_of[split]) != len(y):
                raise UserError(f"har: {subj_f.name} has {len(subject_of[split])} subjects for {len(y)} windows")
            subjects[split] = sorted(set(subject_of[split].tolist()))
        out[split] = SequenceDataset.fixed_length(np.stack(chans, axis=-1), y)
    bar.close()
    if val_subjects and "train" not in subject_of:
        raise UserError(f"har: val_subjects needs {root / 'train' / 'subject_train.txt'}, it is missing")
    out["train"], val, val_rule = _carve_subjects(out["train"], subject_of.get("train", np.zeros(0, np.int64)),
                                                  val_subjects)
    return RawSplits(out["train"], out["test"], _class_names(root), {
        "layout": "uci-har",
        "split_rule": f"released train/test{val_rule}",
        "subjects": subjects,
        "features": {"channels": CHANNELS, "sample_rate_hz": SAMPLE_RATE_HZ, "window": out["train"].seq_len,
                     "filter": "as released"},
    }, val)


def load_raw(path: Path, options: dict, seed: int, progress: bool) -> RawSplits:
    """Train and test windows of a HAPT RawData or UCI HAR directory (``seed`` unused).

    A RawData-only option set to a non-default value for the released layout is a UserError
    rather than silently ignored.
    """
    layout, root = detect_layout(path)
    if layout == "uci-har":
        misplaced = [k for k in _RAW_ONLY if options[k] != OPTIONS[k].default]
        if misplaced:
            raise UserError(f"har: option {misplaced[0]!r} applies to the HAPT RawData layout only, "
                            f"{root} is the released UCI HAR layout")
        inputs = sorted(f for s in ("train", "test") for f in (root / s).rglob("*.txt"))
        key = {"dataset": "har", "layout": layout, "root": str(root.resolve()),
               "val_subjects": sorted(options["val_subjects"])}
        return cached(options["cache_dir"], key, inputs,
                      lambda: _load_uci_har(root, options["val_subjects"], progress))
    inputs = [root / "labels.txt"] + sorted(p for p in root.iterdir() if _RAW_FILE.match(p.name))
    key = {"dataset": "har", "layout": layout, "root": str(root.resolve()),
           "options": {k: options[k] for k in (*_RAW_ONLY, "val_subjects")}}
    return cached(options["cache_dir"], key, inputs, lambda: _load_hapt_raw(root, options, progress))
