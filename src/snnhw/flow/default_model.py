"""The bundled default model: a small spiking LSTM trained on the UCI HAR stand-in.

Files in the package's ``data_files/`` (written by ``bench/train_default.py``, which documents
the training recipe; reproducible from the HAPT raw recordings):

* ``default_har.pt``: spiking LSTM checkpoint (H = 32, one layer, T = 4, direct encoding,
  non-spiking g), converted from and fine-tuned after
* ``default_har_hard.pt``: the non-spiking hard LSTM (the MAC baseline's source);
* ``default_har.json``: the training record (settings, accuracies, timings);
* ``default_har_samples.npz``: normalised windows drawn from the training split (``calib_*``,
  the quantizer's calibration data) and from the test split (``test_*``: verification
  sequences, and an accuracy estimate when the full dataset is not reachable).

``snnhw build`` without ``--model`` builds this model, so a fresh install can produce a complete
board build with no dataset and no training.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from snnhw.errors import UserError

DEFAULT_NAME = "default_har"
"""File stem of the bundled default model."""


@dataclass(frozen=True)
class Samples:
    """Normalised float windows with labels: x float32 [S, N, D], y int64 [S], lengths int64 [S]."""

    x: np.ndarray
    y: np.ndarray
    lengths: np.ndarray
    description: str


def data_files_dir() -> Path:
    """The package's ``data_files`` folder."""
    return Path(str(resources.files("snnhw") / "data_files"))


def default_checkpoint() -> Path:
    """Path of the bundled spiking checkpoint; UserError when the package lacks it."""
    path = data_files_dir() / f"{DEFAULT_NAME}.pt"
    if not path.is_file():
        raise UserError(f"the bundled default model {path} is missing; pass --model "
                        "(or regenerate it with bench/train_default.py)")
    return path


def is_default(checkpoint: Path) -> bool:
    """True when ``checkpoint`` is the bundled default model's file."""
    try:
        return Path(checkpoint).resolve() == (data_files_dir() / f"{DEFAULT_NAME}.pt").resolve()
    except OSError:
        return False


def training_record() -> dict[str, Any]:
    """``default_har.json`` (empty dict when absent)."""
    path = data_files_dir() / f"{DEFAULT_NAME}.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def sibling_samples(checkpoint: Path) -> Path | None:
    """``<stem>_samples.npz`` beside ``checkpoint`` (the bundled model's samples), or None."""
    path = Path(checkpoint).with_name(f"{Path(checkpoint).stem}_samples.npz")
    return path if path.is_file() else None


def load_samples(path: Path, prefix: str) -> Samples:
    """The ``calib`` or ``test`` windows of a samples file written by ``bench/train_default.py``."""
    try:
        with np.load(path, allow_pickle=False) as z:
            x, y = np.asarray(z[f"{prefix}_x"], np.float32), np.asarray(z[f"{prefix}_y"], np.int64)
            lengths = np.asarray(z[f"{prefix}_lengths"], np.int64)
    except (OSError, KeyError, ValueError) as exc:
        raise UserError(f"cannot read the {prefix} samples of {path} ({exc})") from None
    split = "training" if prefix == "calib" else "test"
    return Samples(x, y, lengths, f"{len(y)} bundled {split} windows ({path.name})")
