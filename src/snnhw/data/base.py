"""Common containers, options, splits and normalisation for every dataset loader.

A dataset is a set of variable-length sequences of feature vectors: ``x[s, n, :]`` is element
``n`` (0-based) of sequence ``s``; elements at ``n >= lengths[s]`` are padding and are exactly 0.
Loaders return unnormalised :class:`RawSplits`; :func:`assemble_bundle` carves the validation
split, computes the per-feature :class:`Normalisation` on the training split only and applies it
to all three splits.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from snnhw.errors import UserError

#: Smallest per-feature standard deviation kept as is; a feature whose spread on the training
#: split is below this (e.g. an always-zero border pixel) is divided by 1 instead.
STD_FLOOR = 1e-6


@dataclass
class SequenceDataset:
    """A batch of zero-padded sequences.

    Attributes:
        x: float32 ``[S, N, D]``: S sequences, N elements (max length), D features per element.
            Entries at element index ``n >= lengths[s]`` are 0.
        y: int64 ``[S]`` class index of each sequence.
        lengths: int64 ``[S]`` valid elements per sequence, ``1 <= lengths <= N``.
    """

    x: np.ndarray
    y: np.ndarray
    lengths: np.ndarray

    def __post_init__(self) -> None:
        if self.x.ndim != 3 or self.x.dtype != np.float32:
            raise ValueError(f"x must be float32 [S, N, D], got {self.x.dtype} {self.x.shape}")
        s, n, _ = self.x.shape
        if self.y.shape != (s,) or self.y.dtype != np.int64:
            raise ValueError(f"y must be int64 [{s}], got {self.y.dtype} {self.y.shape}")
        if self.lengths.shape != (s,) or self.lengths.dtype != np.int64:
            raise ValueError(f"lengths must be int64 [{s}], got {self.lengths.dtype} {self.lengths.shape}")
        if s and (self.lengths.min() < 1 or self.lengths.max() > n):
            raise ValueError(f"lengths must lie in 1..{n}")

    def __len__(self) -> int:
        return int(self.x.shape[0])

    @property
    def seq_len(self) -> int:
        """N, the padded sequence length (elements)."""
        return int(self.x.shape[1])

    @property
    def n_features(self) -> int:
        """D, features per element."""
        return int(self.x.shape[2])

    def mask(self) -> np.ndarray:
        """bool ``[S, N]``: True where an element is valid (not padding)."""
        return np.arange(self.seq_len)[None, :] < self.lengths[:, None]

    def subset(self, index: np.ndarray) -> "SequenceDataset":
        """The sequences at ``index`` (int array), in that order, as a new dataset."""
        index = np.asarray(index, dtype=np.int64)
        return SequenceDataset(self.x[index], self.y[index], self.lengths[index])

    def padded_to(self, n: int) -> "SequenceDataset":
        """The same sequences zero-padded to N = ``n`` elements (``n`` ≥ this N; lengths unchanged)."""
        if n < self.seq_len:
            raise ValueError(f"cannot pad {self.seq_len} elements down to {n}")
        x = np.zeros((len(self), n, self.n_features), dtype=np.float32)
        x[:, :self.seq_len] = self.x
        return SequenceDataset(x, self.y, self.lengths)

    @staticmethod
    def fixed_length(x: np.ndarray, y: np.ndarray) -> "SequenceDataset":
        """A dataset whose sequences all have the full length N = ``x.shape[1]``."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        return SequenceDataset(x, np.asarray(y, dtype=np.int64),
                               np.full(x.shape[0], x.shape[1], dtype=np.int64))


@dataclass
class Normalisation:
    """Per-feature affine normalisation ``(x - mean) / std``, padding kept at 0.

    Attributes:
        mean: float32 ``[D]``, in the unit of the raw features.
        std: float32 ``[D]``, > 0, same unit.
    """

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, ds: SequenceDataset) -> "Normalisation":
        """Mean and standard deviation of each feature over the valid elements of ``ds``.

        Computed in float64; a standard deviation below :data:`STD_FLOOR` becomes 1.
        """
        if len(ds) == 0:
            raise UserError("cannot compute the normalisation: the training split is empty")
        valid = ds.x[ds.mask()].astype(np.float64)  # [elements, D]
        mean = valid.mean(axis=0)
        std = valid.std(axis=0)
        std = np.where(std < STD_FLOOR, 1.0, std)
        return cls(mean.astype(np.float32), std.astype(np.float32))

    def apply(self, ds: SequenceDataset) -> SequenceDataset:
        """A new dataset with normalised valid elements and padding left at exactly 0."""
        if ds.n_features != self.mean.shape[0]:
            raise UserError(f"normalisation has {self.mean.shape[0]} features, data has {ds.n_features}")
        x = (ds.x - self.mean) / self.std
        x *= ds.mask()[:, :, None]
        return SequenceDataset(x.astype(np.float32, copy=False), ds.y.copy(), ds.lengths.copy())

    def to_dict(self) -> dict:
        """JSON-able form: ``{"mean": [D floats], "std": [D floats]}``."""
        return {"mean": [float(v) for v in self.mean], "std": [float(v) for v in self.std]}

    @classmethod
    def from_dict(cls, d: dict) -> "Normalisation":
        """Inverse of :meth:`to_dict`."""
        try:
            mean = np.asarray(d["mean"], dtype=np.float32)
            std = np.asarray(d["std"], dtype=np.float32)
        except (KeyError, TypeError, ValueError) as e:
            raise UserError(f"malformed normalisation record: {e}") from None
        if mean.ndim != 1 or mean.shape != std.shape or not np.all(std > 0):
            raise UserError("malformed normalisation record: mean/std must be equal-length vectors, std > 0")
        return cls(mean, std)


@dataclass
class DataBundle:
    """Train/validation/test splits, normalised with statistics of the training split.

    Attributes:
        train, val, test: the splits, ``normalisation`` already applied.
        class_names: name of class ``k`` at index ``k``.
        meta: JSON-able record of everything needed to rebuild the bundle: ``dataset``,
            ``source``, ``layout``, ``options`` (every resolved loader option), ``seed``,
            ``val_fraction``, ``features`` (derived feature settings), ``sizes``, ``seq_len``,
            ``n_features``, ``n_classes``, ``class_names``, ``split_rule``.
        normalisation: per-feature statistics of the (raw) training split.
    """

    train: SequenceDataset
    val: SequenceDataset
    test: SequenceDataset
    class_names: list[str]
    meta: dict
    normalisation: Normalisation


@dataclass
class RawSplits:
    """What a loader returns: unnormalised splits before the validation split is carved.

    ``val`` is None unless the source defines its own validation set (GSC lists, npz ``split``).
    ``meta`` holds ``layout``, ``features`` and ``split_rule`` entries for :attr:`DataBundle.meta`.
    """

    train: SequenceDataset
    test: SequenceDataset
    class_names: list[str]
    meta: dict
    val: SequenceDataset | None = None


# ----------------------------------------------------------------------------------- options

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class Option:
    """One loader option.

    ``kind`` is one of ``bool``, ``int``, ``float``, ``str``, ``ints``, ``strs`` (lists are given
    as Python lists or comma-separated strings). ``choices`` restricts ``str`` values. A default
    of None means "derived automatically" and is allowed as a value (strings "auto"/"none").
    """

    kind: str
    default: Any
    help: str
    choices: tuple[str, ...] = ()
    feature: bool = True  # False: does not change the data (e.g. a cache directory)

    def parse(self, name: str, value: Any) -> Any:
        """``value`` converted to this option's type; UserError when it does not fit."""
        if value is None or (isinstance(value, str) and value.strip().lower() in {"auto", "none"}):
            if self.default is None:
                return None
            raise UserError(f"option {name!r} needs a value ({self.kind})")
        try:
            if self.kind == "bool":
                if isinstance(value, (bool, np.bool_)):
                    return bool(value)
                if isinstance(value, (int, np.integer)) and value in (0, 1):
                    return bool(value)
                s = str(value).strip().lower()
                if s in _TRUE:
                    return True
                if s in _FALSE:
                    return False
                raise ValueError(value)
            if self.kind == "int":
                if isinstance(value, float) and not value.is_integer():
                    raise ValueError(value)
                return int(value)
            if self.kind == "float":
                return float(value)
            if self.kind == "str":
                s = str(value)
                if self.choices and s not in self.choices:
                    raise UserError(f"option {name!r} must be one of {', '.join(self.choices)}, got {s!r}")
                return s
            items = [v.strip() for v in value.split(",") if v.strip()] if isinstance(value, str) else list(value)
            if self.kind == "ints":
                return [int(v) for v in items]
            if self.kind == "strs":
                return [str(v) for v in items]
        except (TypeError, ValueError):
            raise UserError(f"option {name!r} expects {self.kind}, got {value!r}") from None
        raise AssertionError(f"unknown option kind {self.kind}")


def resolve_options(dataset: str, spec: dict[str, Option], given: dict | None) -> dict[str, Any]:
    """Defaults of ``spec`` overridden by ``given``; UserError for an unknown option name."""
    given = dict(given or {})
    unknown = sorted(set(given) - set(spec))
    if unknown:
        known = ", ".join(sorted(spec)) or "none"
        raise UserError(f"unknown option {unknown[0]!r} for dataset {dataset!r} (known: {known})")
    return {k: (opt.parse(k, given[k]) if k in given else opt.default) for k, opt in spec.items()}


def options_help(spec: dict[str, Option]) -> str:
    """One indented line per option: name, type, default, help."""
    lines = []
    for k, opt in spec.items():
        default = ("auto" if opt.feature else "off") if opt.default is None else (
            ",".join(map(str, opt.default)) if isinstance(opt.default, list) else opt.default)
        choice = f" [{'|'.join(opt.choices)}]" if opt.choices else ""
        lines.append(f"    {k} ({opt.kind}{choice}, default {default}): {opt.help}")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------ splits

def stratified_split(y: np.ndarray, fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Split indices ``0..len(y)-1`` into (kept, held-out), ``round(fraction * len(y))`` held out.

    The held-out count is shared among the classes in proportion to their sizes (largest
    remainder, ties to the lower class index); within each class the held-out members are a
    random subset drawn with ``rng``. Both index arrays are sorted ascending.
    """
    y = np.asarray(y)
    n_total = len(y)
    n_held = int(round(fraction * n_total))
    classes, counts = np.unique(y, return_counts=True)
    if n_held == 0 or len(classes) == 0:
        return np.arange(n_total, dtype=np.int64), np.zeros(0, dtype=np.int64)
    ideal = counts * (n_held / n_total)
    quota = np.floor(ideal).astype(np.int64)
    remainder = ideal - quota
    order = np.lexsort((np.arange(len(classes)), -remainder))
    quota[order[: n_held - int(quota.sum())]] += 1
    held = []
    for cls, q in zip(classes, quota):
        members = np.flatnonzero(y == cls)
        held.append(rng.permutation(members)[:q])
    held_idx = np.sort(np.concatenate(held)).astype(np.int64)
    keep = np.ones(n_total, dtype=bool)
    keep[held_idx] = False
    return np.flatnonzero(keep).astype(np.int64), held_idx


MIN_FOLDS = 2
"""The fewest folds a cross-validation can have (one to train on, one to validate on)."""


def check_folds(k: int, y: np.ndarray | None = None) -> None:
    """Refuse (UserError) ``k`` stratified folds: fewer than :data:`MIN_FOLDS`, or, with the
    class labels ``y`` given, more than the sequences of its smallest class (every fold
    validates on at least one sequence of every class)."""
    if k < MIN_FOLDS:
        raise UserError(f"--folds must be ≥ {MIN_FOLDS}, got {k}")
    if y is None:
        return
    classes, counts = np.unique(np.asarray(y), return_counts=True)
    if len(classes) and k > counts.min():
        smallest = int(np.argmin(counts))
        raise UserError(f"--folds {k} is more than the {int(counts[smallest])} training sequences of class "
                        f"{int(classes[smallest])}, its smallest class: use at most --folds {int(counts[smallest])}")


def stratified_folds(y: np.ndarray, k: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Partition indices ``0..len(y)-1`` into ``k`` stratified folds (cross-validation).

    The classes are dealt in ascending order: the members of each class, in a random order
    drawn with ``rng``, go round-robin to the folds, each class starting at the fold after the
    one the previous class ended on. So every fold holds ``floor`` or ``ceil`` of ``count / k``
    members of each class and the fold sizes differ by at most one. ``k`` is checked by
    :func:`check_folds`. Returns ``k`` index arrays, each sorted ascending.
    """
    y = np.asarray(y)
    check_folds(k, y)
    fold_of = np.empty(len(y), dtype=np.int64)
    start = 0
    for cls in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == cls))
        fold_of[members] = (start + np.arange(len(members))) % k
        start = (start + len(members)) % k
    return [np.flatnonzero(fold_of == fold).astype(np.int64) for fold in range(k)]


def split_rng(seed: int, purpose: int) -> np.random.Generator:
    """Independent generator for one split decision (purpose 1: test split, 2: validation,
    3: cross-validation folds)."""
    return np.random.default_rng([int(seed), int(purpose)])


def assemble_bundle(raw: RawSplits, *, dataset: str, source: Path, options: dict, spec: dict[str, Option],
                    seed: int, val_fraction: float, normalisation: Normalisation | None = None) -> DataBundle:
    """Carve validation from train (unless the source defines it), normalise, fill in meta.

    ``normalisation`` given: applied instead of statistics of this training split (evaluation of
    a stored model); None: fitted on the training split.
    """
    if len(raw.test) == 0:
        raise UserError(f"dataset {dataset!r} at {source}: the test split is empty")
    train, val = raw.train, raw.val
    if val is None:
        keep, held = stratified_split(train.y, val_fraction, split_rng(seed, 2))
        train, val = train.subset(keep), train.subset(held)
        val_rule = f"stratified {val_fraction} of train (seed {seed})"
    else:
        val_rule = "defined by the source"
    if len(train) == 0:
        raise UserError(f"dataset {dataset!r} at {source}: the training split is empty")
    norm = normalisation if normalisation is not None else Normalisation.fit(train)
    feature_options = {k: v for k, v in options.items() if spec[k].feature}
    meta = {
        "dataset": dataset,
        "source": str(source),
        **raw.meta,
        "options": feature_options,
        "seed": int(seed),
        "val_fraction": float(val_fraction),
        "val_rule": val_rule,
        "sizes": {"train": len(train), "val": len(val), "test": len(raw.test)},
        "seq_len": train.seq_len,
        "n_features": train.n_features,
        "n_classes": len(raw.class_names),
        "class_names": list(raw.class_names),
    }
    json.dumps(meta)  # meta must stay JSON-able: fail here, not when a checkpoint is written
    return DataBundle(norm.apply(train), norm.apply(val), norm.apply(raw.test),
                      list(raw.class_names), meta, norm)


# ------------------------------------------------------------------------------------- cache

CACHE_VERSION = 1


def cached(cache_dir: str | None, key: dict, files: Iterable[Path], compute: Callable[[], RawSplits]) -> RawSplits:
    """``compute()``, or its stored result from ``cache_dir`` when inputs and settings match.

    The key hashes ``key`` (loader, options, path), :data:`CACHE_VERSION` and the name, size and
    modification time (ns) of every input file, so any change to an input recomputes.
    """
    if not cache_dir:
        return compute()
    h = hashlib.sha256(json.dumps({"v": CACHE_VERSION, **key}, sort_keys=True).encode())
    for f in sorted(files):
        st = f.stat()
        h.update(f"{f}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    path = Path(cache_dir) / f"{key.get('dataset', 'data')}-{h.hexdigest()[:20]}.npz"
    if path.exists():
        with np.load(path, allow_pickle=False) as z:
            def ds(p: str) -> SequenceDataset:
                return SequenceDataset(z[p + "_x"], z[p + "_y"], z[p + "_lengths"])
            return RawSplits(ds("train"), ds("test"), [str(c) for c in z["class_names"]],
                             json.loads(str(z["meta"])), ds("val") if "val_x" in z else None)
    raw = compute()
    arrays: dict[str, np.ndarray] = {"class_names": np.array(raw.class_names, dtype=str),
                                     "meta": np.array(json.dumps(raw.meta))}
    for p, d in (("train", raw.train), ("test", raw.test), ("val", raw.val)):
        if d is not None:
            arrays.update({p + "_x": d.x, p + "_y": d.y, p + "_lengths": d.lengths})
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(path)
    return raw


def require_dir(path: Path, what: str) -> Path:
    """``path`` if it exists; UserError naming ``what`` otherwise."""
    if not path.exists():
        raise UserError(f"{what}: path {path} does not exist")
    return path


def encode_labels(names: Sequence[str], class_names: Sequence[str]) -> np.ndarray:
    """int64 class indices of ``names`` within ``class_names``."""
    lookup = {c: i for i, c in enumerate(class_names)}
    return np.array([lookup[n] for n in names], dtype=np.int64)


def describe_dir(path: Path, limit: int = 6) -> str:
    """A short listing of ``path`` for 'wrong layout' messages."""
    if not path.is_dir():
        return f"{path} is a file"
    names = sorted(p.name + ("/" if p.is_dir() else "") for p in path.iterdir())
    if not names:
        return "an empty directory"
    more = f", ... ({len(names)} entries)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


__all__ = [
    "SequenceDataset", "Normalisation", "DataBundle", "RawSplits", "Option", "STD_FLOOR",
    "resolve_options", "options_help", "stratified_split", "MIN_FOLDS", "check_folds", "stratified_folds",
    "split_rng", "assemble_bundle", "cached",
    "require_dir", "encode_labels", "describe_dir",
]
