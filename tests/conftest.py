"""Shared pytest options: ``--runslow`` enables the long (nightly-style) runs; ``--seed N|random``
(plugin ``tests/seeding.py``) sets the run seed of the cocotb regression."""

from __future__ import annotations

import pytest

pytest_plugins = ["seeding"]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--runslow", action="store_true", default=False, help="also run tests marked slow")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--runslow"):
        return
    skip_slow = pytest.mark.skip(reason="slow: enable with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip_slow)
