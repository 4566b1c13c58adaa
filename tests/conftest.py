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


@pytest.fixture(autouse=True, scope="session")
def _session_sim_builds(tmp_path_factory: pytest.TempPathFactory) -> object:
    """Compiled simulators go to a directory of this test session (``snnhw verify`` keeps them
    in the user's cache, ``snnhw.sim.runner.sim_build_cache``), so tests leave nothing behind."""
    from snnhw.sim import runner, verify

    root = tmp_path_factory.mktemp("sim-builds")
    with pytest.MonkeyPatch.context() as patch:
        for module in (runner, verify):
            patch.setattr(module, "sim_build_cache", lambda: root)
        yield root
