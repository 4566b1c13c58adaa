"""Generic sequences from NumPy ``.npz`` files.

Arrays in a file: ``X`` (or ``x``) ``[samples, N, D]`` numbers; ``y`` ``[samples]`` integer class
indices >= 0; optional ``lengths`` ``[samples]`` in 1..N (default N; values beyond a length
are set to 0); optional ``split`` ``[samples]`` with 0 = train, 1 = validation, 2 = test;
optional ``class_names`` ``[classes]`` strings (default "0", "1", ...). Ragged sequences may
also be stored packed: ``X`` 2-D ``[elements, D]``, the sequences one after the other, with
``lengths`` ``[samples]`` summing to ``elements``; they are zero-padded to the longest.
Object arrays (a pickled list of arrays) are refused: files are read without pickle.

The path is either one file (split by ``split``, else a seeded stratified ``test_fraction``
test split) or a directory holding ``train.npz`` and ``test.npz`` and optionally ``val.npz``;
files of different N (ragged data, e.g. variable-length speech features) are zero-padded to
the longest N with each sequence's ``lengths`` kept (a file without ``lengths`` has all its
sequences at its own N); D must agree. Without a validation set the validation split is
carved from train.

Every split must use the training split's classes, and the training split needs at least two;
a violation is a one-line :class:`UserError` naming the file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from snnhw.data.base import Option, RawSplits, SequenceDataset, describe_dir, require_dir, split_rng, stratified_split
from snnhw.errors import UserError

OPTIONS: dict[str, Option] = {
    "test_fraction": Option("float", 0.2, "test share of a single file without a 'split' array"),
}

PACKING_HINT = ("store variable-length sequences packed: X = np.concatenate(sequences) [elements, D] with "
                "lengths = [len(s) for s in sequences], or zero-padded as X [samples, N, D] with lengths")
"""How to store ragged data, quoted in the errors about it."""


def _holds_objects(z: np.lib.npyio.NpzFile, key: str) -> bool:
    """True when member ``key`` of an open ``.npz`` is an object array (loading it needs pickle).

    Only the ``.npy`` header is read, never the pickled payload.
    """
    fmt = np.lib.format
    with z.zip.open(f"{key}.npy") as f:
        version = fmt.read_magic(f)
        read_header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
        return bool(read_header(f)[2].hasobject)


def _read(path: Path) -> dict[str, np.ndarray]:
    """Every array of the ``.npz`` file at ``path`` (read without pickle)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {}
            for key in z.files:
                try:
                    arrays[key] = z[key]
                except ValueError:
                    if _holds_objects(z, key):
                        raise UserError(f"npz: {path}: array {key!r} holds Python objects (a list of arrays of "
                                        f"different lengths?), which are not read (no pickle); "
                                        f"{PACKING_HINT}") from None
                    raise
            return arrays
    except (OSError, ValueError) as e:
        raise UserError(f"npz: cannot read {path}: {e}") from None


def _unpacked(flat: np.ndarray, lengths: np.ndarray, path: Path) -> np.ndarray:
    """Packed sequences ``flat`` [elements, D] (one after the other) as ``[samples, max(lengths), D]``, zero-padded."""
    if lengths.size == 0 or lengths.min() < 1 or int(lengths.sum()) != flat.shape[0]:
        raise UserError(f"npz: {path}: a 2-D X [elements, D] holds the sequences one after the other: lengths must "
                        f"be ≥ 1 and sum to its {flat.shape[0]} rows (they sum to {int(lengths.sum())})")
    n = int(lengths.max())
    out = np.zeros((lengths.size, n, flat.shape[1]), dtype=flat.dtype)
    out[np.arange(n)[None, :] < lengths[:, None]] = flat
    return out


def _labels(y: np.ndarray, samples: int, path: Path) -> np.ndarray:
    """``y`` as int64 class indices after checking its shape and values."""
    if y.shape != (samples,):
        one_hot = (" (one-hot rows? store class indices: y.argmax(axis=1))"
                   if y.ndim == 2 and y.shape[0] == samples and y.shape[1] > 1 else "")
        raise UserError(f"npz: {path}: y must have shape ({samples},) to match X, has {y.shape}{one_hot}")
    integral = np.issubdtype(y.dtype, np.integer) or (
        np.issubdtype(y.dtype, np.floating) and np.all(np.isfinite(y)) and np.all(y == np.round(y)))
    if not integral:
        raise UserError(f"npz: {path}: y must hold integer class indices, is {y.dtype}")
    if y.min() < 0:
        raise UserError(f"npz: {path}: y holds negative class indices (smallest {y.min():g}); "
                        "classes are indices 0, 1, ...")
    return y.astype(np.int64)


def _dataset(arrays: dict[str, np.ndarray], path: Path) -> SequenceDataset:
    """The checked, zero-padded sequences of one file's ``arrays`` (``path`` names it in errors)."""
    x = arrays.get("X", arrays.get("x"))
    if x is None or "y" not in arrays:
        raise UserError(f"npz: {path} must hold arrays 'X' [samples, N, D] and 'y' [samples], found {sorted(arrays)}")
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
        raise UserError(f"npz: {path}: X must be numeric, is {x.dtype}")
    lengths = arrays.get("lengths")
    if lengths is not None and (lengths.ndim != 1 or not np.issubdtype(lengths.dtype, np.integer)):
        raise UserError(f"npz: {path}: lengths must be a 1-D array of integers, is {lengths.dtype} {lengths.shape}")
    if x.ndim == 2 and lengths is not None:
        x = _unpacked(x, lengths, path)
    elif x.ndim != 3:
        raise UserError(f"npz: {path}: X must be 3-D [samples, N, D] (or 2-D [elements, D] with lengths, "
                        f"the sequences packed), has shape {x.shape}")
    s, n, d = x.shape
    if s == 0 or n == 0 or d == 0:
        raise UserError(f"npz: {path}: empty dataset (X has shape {x.shape})")
    y = _labels(arrays["y"], s, path)
    with np.errstate(over="ignore"):  # values beyond float32 become inf, reported just below
        xf = np.array(x, dtype=np.float32)
    finite = np.isfinite(xf)
    if not finite.all():
        bad = np.argwhere(~finite)[0]
        raise UserError(f"npz: {path}: X holds {int((~finite).sum())} NaN or infinite values (or values beyond "
                        f"float32), the first in sequence {bad[0]} at element {bad[1]}, feature {bad[2]}")
    if lengths is None:
        return SequenceDataset(xf, y, np.full(s, n, dtype=np.int64))
    if lengths.shape != (s,):
        raise UserError(f"npz: {path}: lengths must have shape ({s},) to match X, has {lengths.shape}")
    if lengths.min() < 1 or lengths.max() > n:
        raise UserError(f"npz: {path}: lengths must lie in 1..{n}")
    lengths = lengths.astype(np.int64)
    xf *= (np.arange(n)[None, :] < lengths[:, None])[:, :, None]
    return SequenceDataset(xf, y, lengths)


def _class_names(arrays_list: list[dict[str, np.ndarray]], n_classes: int, path: Path) -> list[str]:
    for arrays in arrays_list:
        if "class_names" in arrays:
            names = [str(v) for v in arrays["class_names"]]
            if len(names) < n_classes:
                raise UserError(f"npz: {path}: class_names lists {len(names)} names, labels go up to {n_classes - 1}")
            return names
    return [str(i) for i in range(n_classes)]


def _check_classes(splits: dict[str, SequenceDataset], files: dict[str, Path]) -> None:
    """UserError unless the training split has ≥ 2 classes and the others use only those.

    Empty training or test splits are left to :func:`snnhw.data.base.assemble_bundle` to report.
    """
    train = splits["train"]
    if not (len(train) and len(splits["test"])):
        return
    classes = np.unique(train.y)
    if classes.size < 2:
        raise UserError(f"npz: {files['train']}: the training split holds a single class ({classes[0]}); "
                        "a classifier needs at least 2")
    for name in ("val", "test"):
        if name in splits:
            foreign = np.setdiff1d(splits[name].y, classes)
            if foreign.size:
                raise UserError(f"npz: {files[name]}: the {name} split holds class {foreign[0]}, which the training "
                                f"split lacks (training classes {', '.join(map(str, classes))}); labels must be "
                                "class indices shared by all splits")


def load_raw(path: Path, options: dict, seed: int, progress: bool) -> RawSplits:
    """Splits of one ``.npz`` file or a directory of train/val/test files (``progress`` unused)."""
    require_dir(path, "npz")
    if path.is_dir():
        if not (path / "train.npz").is_file() or not (path / "test.npz").is_file():
            raise UserError(f"npz: expected train.npz and test.npz (and optionally val.npz) in {path}, "
                            f"found: {describe_dir(path)}")
        files = {k: path / f"{k}.npz" for k in ("train", "val", "test") if (path / f"{k}.npz").is_file()}
        parts = {k: _read(f) for k, f in files.items()}
        splits = {k: _dataset(a, files[k]) for k, a in parts.items()}
        rule = "separate files " + ", ".join(f.name for f in files.values())
        arrays_list = list(parts.values())
    else:
        arrays = _read(path)
        full = _dataset(arrays, path)
        arrays_list = [arrays]
        if "split" in arrays:
            split = arrays["split"]
            if split.shape != (len(full),) or not np.isin(split, (0, 1, 2)).all():
                raise UserError(f"npz: {path}: split must hold 0 (train), 1 (val) or 2 (test) per sample")
            splits = {"train": full.subset(np.flatnonzero(split == 0)), "test": full.subset(np.flatnonzero(split == 2))}
            if (split == 1).any():
                splits["val"] = full.subset(np.flatnonzero(split == 1))
            rule = "'split' array"
        else:
            frac = options["test_fraction"]
            if not 0.0 < frac < 1.0:
                raise UserError(f"option 'test_fraction' must lie in (0, 1), got {frac}")
            keep, held = stratified_split(full.y, frac, split_rng(seed, 1))
            splits = {"train": full.subset(keep), "test": full.subset(held)}
            rule = f"stratified {frac} as test (seed {seed})"
        files = {k: path for k in splits}
    features = {d.n_features for d in splits.values()}
    if len(features) != 1:
        per_file = ", ".join(f"{files[k].name} {d.n_features}" for k, d in splits.items())
        raise UserError(f"npz: {path}: the files differ in D (features per element): {sorted(features)} ({per_file})")
    _check_classes(splits, files)
    # files of different N: every split zero-padded to the longest, each sequence keeps its length
    n_max = max(d.seq_len for d in splits.values())
    splits = {k: d.padded_to(n_max) for k, d in splits.items()}
    n_classes = int(max(d.y.max() for d in splits.values() if len(d))) + 1
    return RawSplits(splits["train"], splits["test"], _class_names(arrays_list, n_classes, path),
                     {"layout": "npz", "files": [f.name for f in dict.fromkeys(files.values())],
                      "split_rule": rule, "features": {}}, val=splits.get("val"))
