"""Dataset names, options and the one entry point :func:`load_dataset`.

Loading is deterministic in (name, path, seed, val_fraction, options): :attr:`DataBundle.meta`
records all of them, and :func:`rebuild_bundle` / :func:`load_split_for_eval` rebuild the same
splits from a stored ``meta`` (optionally from a moved data directory) with a stored
:class:`Normalisation`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from snnhw.data import har, mnist, npz, speech
from snnhw.data.base import DataBundle, Normalisation, Option, RawSplits, SequenceDataset, assemble_bundle, \
    options_help, resolve_options
from snnhw.errors import UserError

DATASETS = ("mnist", "har", "fsdd", "gsc", "npz")

_SPEC: dict[str, dict[str, Option]] = {
    "mnist": mnist.OPTIONS,
    "har": har.OPTIONS,
    "fsdd": speech.FSDD_OPTIONS,
    "gsc": speech.GSC_OPTIONS,
    "npz": npz.OPTIONS,
}
_PATH_HELP = {
    "mnist": "folder with IDX files (images-idx3-ubyte(.gz) + labels-idx1-ubyte(.gz), or train-/t10k- pairs)",
    "har": "UCI HAPT RawData folder (or its parent) or the 'UCI HAR Dataset' folder",
    "fsdd": "FSDD folder of {digit}_{speaker}_{index}.wav (or its parent with recordings/)",
    "gsc": "Speech Commands folder: <word>/<file>.wav + testing_list.txt (+ validation_list.txt)",
    "npz": "a .npz file with X, y (lengths, split, class_names optional) or a folder with train.npz/test.npz",
}


def _load_raw(name: str, path: Path, options: dict, seed: int, progress: bool) -> RawSplits:
    loaders: dict[str, Callable[[], RawSplits]] = {
        "mnist": lambda: mnist.load_raw(path, options, seed, progress),
        "har": lambda: har.load_raw(path, options, seed, progress),
        "fsdd": lambda: speech.load_fsdd(path, options, seed, progress),
        "gsc": lambda: speech.load_gsc(path, options, seed, progress),
        "npz": lambda: npz.load_raw(path, options, seed, progress),
    }
    return loaders[name]()


def load_dataset(name: str, path: str | Path, *, seed: int = 0, val_fraction: float = 0.1,
                 options: dict | None = None, progress: bool = True,
                 normalisation: Normalisation | None = None) -> DataBundle:
    """Load dataset ``name`` from its native layout at ``path``.

    Args:
        name: one of :data:`DATASETS`.
        path: file or folder (see :func:`dataset_options_help`).
        seed: seeds every random split (validation; test where the source has none).
        val_fraction: share of the training sequences held out (stratified) for validation,
            in [0, 1); unused where the source defines a validation set (GSC, npz).
        options: loader options (name → value; strings such as "true" or "1,2" are parsed).
        progress: show tqdm bars during feature extraction.
        normalisation: None fits it on the training split; given, it is applied instead
            (evaluating a stored model on rebuilt data).

    Returns:
        A :class:`DataBundle`, normalised, with ``meta`` sufficient for :func:`rebuild_bundle`.
    """
    if name not in DATASETS:
        raise UserError(f"unknown dataset {name!r} (known: {', '.join(DATASETS)})")
    if not 0.0 <= val_fraction < 1.0:
        raise UserError(f"val_fraction must lie in [0, 1), got {val_fraction}")
    spec = _SPEC[name]
    resolved = resolve_options(name, spec, options)
    source = Path(path).expanduser()
    raw = _load_raw(name, source, resolved, int(seed), progress)
    return assemble_bundle(raw, dataset=name, source=source.resolve(), options=resolved, spec=spec,
                           seed=int(seed), val_fraction=float(val_fraction), normalisation=normalisation)


def rebuild_bundle(meta: dict, normalisation: Normalisation | dict | None = None, path: str | Path | None = None,
                   *, progress: bool = True) -> DataBundle:
    """The bundle described by a stored ``meta`` (from :attr:`DataBundle.meta`).

    ``path`` overrides ``meta["source"]`` (data moved); ``normalisation`` (object or its
    ``to_dict()``) replaces the statistics fitted on the rebuilt training split. The rebuilt
    split sizes must equal the stored ones, else UserError (the data changed).
    """
    try:
        name, source = meta["dataset"], meta["source"]
        seed, val_fraction, options = meta["seed"], meta["val_fraction"], meta["options"]
    except (KeyError, TypeError) as e:
        raise UserError(f"dataset record lacks {e}; it was not written by snnhw.data") from None
    if isinstance(normalisation, dict):
        normalisation = Normalisation.from_dict(normalisation)
    bundle = load_dataset(name, path if path is not None else source, seed=seed, val_fraction=val_fraction,
                          options=options, progress=progress, normalisation=normalisation)
    if "sizes" in meta and bundle.meta["sizes"] != meta["sizes"]:
        raise UserError(f"{name} at {bundle.meta['source']} gives split sizes {bundle.meta['sizes']}, "
                        f"the stored record says {meta['sizes']}: the data differ")
    return bundle


def load_split_for_eval(meta: dict, normalisation: Normalisation | dict, path: str | Path | None = None,
                        split: str = "test", *, progress: bool = True) -> SequenceDataset:
    """One split (``train``, ``val`` or ``test``) rebuilt from ``meta``, normalised with the stored statistics."""
    if split not in ("train", "val", "test"):
        raise UserError(f"split must be train, val or test, got {split!r}")
    return getattr(rebuild_bundle(meta, normalisation, path, progress=progress), split)


def dataset_options_help() -> str:
    """Human-readable list of datasets, their path layout and their options (for CLI help)."""
    blocks = []
    for name in DATASETS:
        blocks.append(f"  {name}: {_PATH_HELP[name]}\n{options_help(_SPEC[name])}")
    return "datasets and their options (key=value):\n" + "\n".join(blocks)


def parse_option_strings(items: list[str] | None) -> dict[str, str]:
    """``["k=v", ...]`` (e.g. repeated CLI arguments) as a dict; values are parsed by the loader."""
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"dataset option {item!r} is not of the form key=value")
        out[key.strip()] = value.strip()
    return out
