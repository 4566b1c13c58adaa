"""Seeding, determinism and thread settings for reproducible training on a CPU.

Two runs of :func:`snnhw.train.trainer.fit` with the same seed, data and thread count give
bit-identical weights: every random draw comes either from the global torch generator,
seeded here, or from a private :class:`torch.Generator` derived from the seed (shuffling,
subsampling), and torch's deterministic-algorithm mode is switched on while training.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch

DEFAULT_THREADS: int = 2
"""Threads for torch's intra-op pool unless the caller asks otherwise (the project's
machines have 2 cores shared by several jobs)."""


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators with ``seed``.

    The spiking model's rate encoding and dropout-like draws use torch's global generator,
    so this must run before a model is built or trained.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def generator(seed: int, stream: int = 0) -> torch.Generator:
    """A private torch generator for one purpose (``stream``) of one run (``seed``).

    Distinct streams (e.g. 0 = train subsampling, 1 + epoch = shuffling of that epoch) give
    independent, reproducible sequences that do not depend on how many draws other code made
    from the global generator.
    """
    gen = torch.Generator()
    gen.manual_seed(seed * 1_000_003 + stream)
    return gen


def set_threads(threads: int | None = None) -> int:
    """Set torch's intra-op thread count; ``None`` → min(DEFAULT_THREADS, cores). Returns it."""
    if threads is None:
        threads = max(1, min(DEFAULT_THREADS, os.cpu_count() or 1))
    if threads < 1:
        raise ValueError(f"threads must be ≥ 1, got {threads}")
    torch.set_num_threads(threads)
    return threads


@contextmanager
def deterministic() -> Iterator[None]:
    """Switch torch's deterministic algorithms on for the block, then restore the setting.

    On a CPU this costs nothing measurable; ``warn_only`` keeps an operator without a
    deterministic implementation from aborting a run (it warns instead).
    """
    was_enabled = torch.are_deterministic_algorithms_enabled()
    was_warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(was_enabled, warn_only=was_warn_only)
