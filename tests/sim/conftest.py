"""Fixtures of the cocotb regression: simulator choice, seeds, per-configuration work dirs.

* The simulator is ``$SNNHW_SIM`` (``icarus`` by default, or ``verilator``); a test that needs
  it is skipped with the reason when the tool is absent.
* Seeds: ``--seed N`` (or ``--seed random``; ``$SNNHW_SEED`` as a fallback) replaces the
  default seed of every configuration (``simfixtures.seed_for``, plugin ``tests/seeding.py``);
  each seeded test's report has a ``seed`` section, so a failure replays with
  ``pytest '<nodeid>' --seed <seed>``.
"""

from __future__ import annotations

import pytest

from snnhw.sim.runner import default_simulator, simulator_missing


@pytest.fixture(scope="session")
def simulator() -> str:
    """The simulator of this run; skips when it is not installed."""
    sim = default_simulator()
    reason = simulator_missing(sim)
    if reason:
        pytest.skip(f"{sim}: {reason}")
    return sim
