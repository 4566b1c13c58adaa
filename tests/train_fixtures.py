"""Tiny synthetic datasets for the front-end tests (no /work/shared needed).

``write_npz`` writes a learnable 3-class problem in the ``npz`` loader's single-file format:
the class of a sequence is the feature with the largest mean over its valid elements.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def write_npz(path: Path, *, samples: int = 150, seq_len: int = 6, features: int = 3, seed: int = 0) -> Path:
    """Write ``X`` float32 [samples, seq_len, features], ``y``, ``lengths`` (3..seq_len) to ``path``."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(samples, seq_len, features)).astype(np.float32)
    lengths = rng.integers(3, seq_len + 1, size=samples).astype(np.int64)
    mask = np.arange(seq_len)[None, :] < lengths[:, None]
    x *= mask[:, :, None]
    y = (x.sum(axis=1) / lengths[:, None]).argmax(axis=1).astype(np.int64)
    np.savez(path, X=x, y=y, lengths=lengths, class_names=np.array(["a", "b", "c"]))
    return path


def record_steps(monkeypatch: Any) -> list[dict[str, Any]]:
    """Make :func:`snnhw.train.trainer.fit` record a copy of the model's weights after every
    optimiser step (after its constraints); returns the list it appends to."""
    import copy

    import snnhw.train.trainer as trainer

    steps: list[dict[str, Any]] = []
    constrain = trainer.apply_constraints

    def recording(module: Any) -> None:
        constrain(module)
        steps.append(copy.deepcopy(module.state_dict()))

    monkeypatch.setattr(trainer, "apply_constraints", recording)
    return steps
