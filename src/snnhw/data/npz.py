"""Generic sequences from NumPy ``.npz`` files.

Arrays in a file: ``X`` (or ``x``) ``[samples, N, D]`` numbers; ``y`` ``[samples]`` integer class
indices >= 0; optional ``lengths`` ``[samples]`` in 1..N (default N; values beyond a length
are set to 0); optional ``split`` ``[samples]`` with 0 = train, 1 = validation, 2 = test;
optional ``class_names`` ``[classes]`` strings (default "0", "1", ...).

The path is either one file (split by ``split``, else a seeded stratified ``test_fraction``
test split) or a directory holding ``train.npz`` and ``test.npz`` and optionally ``val.npz``;
files of different N (ragged data, e.g. variable-length speech features) are zero-padded to
the longest N with each sequence's ``lengths`` kept (a file without ``lengths`` has all its
sequences at its own N); D must agree. Without a validation set the validation split is
carved from train.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from snnhw.data.base import Option, RawSplits, SequenceDataset, describe_dir, require_dir, split_rng, stratified_split
from snnhw.errors import UserError

OPTIONS: dict[str, Option] = {
    "test_fraction": Option("float", 0.2, "test share of a single file without a 'split' array"),
}


def _read(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError) as e:
        raise UserError(f"npz: cannot read {path}: {e}") from None


def _dataset(arrays: dict[str, np.ndarray], path: Path) -> SequenceDataset:
    x = arrays.get("X", arrays.get("x"))
    if x is None or "y" not in arrays:
        raise UserError(f"npz: {path} must hold arrays 'X' [samples, N, D] and 'y' [samples], found {sorted(arrays)}")
    y = arrays["y"]
    if x.ndim != 3:
        raise UserError(f"npz: {path}: X must be 3-D [samples, N, D], has shape {x.shape}")
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
        raise UserError(f"npz: {path}: X must be numeric, is {x.dtype}")
    s, n, d = x.shape
    if s == 0 or n == 0 or d == 0:
        raise UserError(f"npz: {path}: empty dataset (X has shape {x.shape})")
    if y.shape != (s,):
        raise UserError(f"npz: {path}: y must have shape ({s},) to match X, has {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        if not (np.issubdtype(y.dtype, np.floating) and np.all(y == np.round(y))):
            raise UserError(f"npz: {path}: y must hold integer class indices, is {y.dtype}")
    if y.min() < 0:
        raise UserError(f"npz: {path}: y holds negative class indices")
    xf = np.array(x, dtype=np.float32)
    if not np.all(np.isfinite(xf)):
        raise UserError(f"npz: {path}: X holds NaN or infinite values")
    if "lengths" in arrays:
        lengths = arrays["lengths"]
        if lengths.shape != (s,) or not np.issubdtype(lengths.dtype, np.integer):
            raise UserError(f"npz: {path}: lengths must be integers of shape ({s},), is {lengths.dtype} {lengths.shape}")
        if lengths.min() < 1 or lengths.max() > n:
            raise UserError(f"npz: {path}: lengths must lie in 1..{n}")
        lengths = lengths.astype(np.int64)
        xf *= (np.arange(n)[None, :] < lengths[:, None])[:, :, None]
    else:
        lengths = np.full(s, n, dtype=np.int64)
    return SequenceDataset(xf, y.astype(np.int64), lengths)


def _class_names(arrays_list: list[dict[str, np.ndarray]], n_classes: int, path: Path) -> list[str]:
    for arrays in arrays_list:
        if "class_names" in arrays:
            names = [str(v) for v in arrays["class_names"]]
            if len(names) < n_classes:
                raise UserError(f"npz: {path}: class_names lists {len(names)} names, labels go up to {n_classes - 1}")
            return names
    return [str(i) for i in range(n_classes)]


def load_raw(path: Path, options: dict, seed: int, progress: bool) -> RawSplits:
    """Splits of one ``.npz`` file or a directory of train/val/test files (``progress`` unused)."""
    require_dir(path, "npz")
    val = None
    if path.is_dir():
        if not (path / "train.npz").is_file() or not (path / "test.npz").is_file():
            raise UserError(f"npz: expected train.npz and test.npz (and optionally val.npz) in {path}, "
                            f"found: {describe_dir(path)}")
        parts = {k: _read(path / f"{k}.npz") for k in ("train", "val", "test") if (path / f"{k}.npz").is_file()}
        sets = {k: _dataset(a, path / f"{k}.npz") for k, a in parts.items()}
        train, test, val = sets["train"], sets["test"], sets.get("val")
        rule = "separate files " + ", ".join(f"{k}.npz" for k in parts)
        arrays_list = list(parts.values())
        files = [f"{k}.npz" for k in parts]
    else:
        arrays = _read(path)
        full = _dataset(arrays, path)
        arrays_list, files = [arrays], [path.name]
        if "split" in arrays:
            split = arrays["split"]
            if split.shape != (len(full),) or not np.isin(split, (0, 1, 2)).all():
                raise UserError(f"npz: {path}: split must hold 0 (train), 1 (val) or 2 (test) per sample")
            train, test = full.subset(np.flatnonzero(split == 0)), full.subset(np.flatnonzero(split == 2))
            val = full.subset(np.flatnonzero(split == 1)) if (split == 1).any() else None
            rule = "'split' array"
        else:
            frac = options["test_fraction"]
            if not 0.0 < frac < 1.0:
                raise UserError(f"option 'test_fraction' must lie in (0, 1), got {frac}")
            keep, held = stratified_split(full.y, frac, split_rng(seed, 1))
            train, test = full.subset(keep), full.subset(held)
            rule = f"stratified {frac} as test (seed {seed})"
    features = {d.n_features for d in (train, test, val) if d is not None}
    if len(features) != 1:
        raise UserError(f"npz: {path}: the files differ in D (features per element): {sorted(features)}")
    # files of different N: every split zero-padded to the longest, each sequence keeps its length
    n_max = max(d.seq_len for d in (train, test, val) if d is not None)
    train, test = train.padded_to(n_max), test.padded_to(n_max)
    val = val.padded_to(n_max) if val is not None else None
    n_classes = int(max(d.y.max() for d in (train, test, val) if d is not None and len(d))) + 1
    return RawSplits(train, test, _class_names(arrays_list, n_classes, path),
                     {"layout": "npz", "files": files, "split_rule": rule, "features": {}}, val=val)
