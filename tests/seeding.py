"""Pytest plugin of the run seed (``--seed``), loaded by ``tests/conftest.py``.

The cocotb regression draws every random thing of a configuration (model, inputs, stall
patterns) from one integer seed. Each configuration has a fixed default seed; the *run seed*
replaces all of them:

* ``--seed N`` (an int ≥ 0) — replay a run, or explore another one;
* ``--seed random`` — draw one (printed in the report header; the same seed on every
  pytest-xdist worker);
* else ``$SNNHW_SEED`` (the older spelling, still honoured).

Tests get their seed with ``simfixtures.seed_for(request, default)``, which records it on the
pytest node; every report of a test that used a seed then carries a ``seed`` section with
the command line that replays it (shown under a failure, and with ``-rP`` for passes).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Generator

import pytest

RUN_SEED = pytest.StashKey["int | None"]()
"""The run seed of this session (None: each configuration uses its default)."""

RUN_SEED_SOURCE = pytest.StashKey[str]()
"""Where the run seed came from: ``--seed``, ``--seed random``, ``$SNNHW_SEED`` or ``defaults``."""

USED_SEEDS = pytest.StashKey["dict[str, int]"]()
"""Seeds a node's test or fixtures used: requester name ("" for the test itself) → seed."""

WORKER_KEY = "snnhw_run_seed"
"""Key of the controller's resolved seed in pytest-xdist's ``workerinput``."""

MAX_RANDOM_SEED = 2**31
"""``--seed random`` draws uniformly in [0, 2**31)."""


def parse_seed(text: str) -> int | str:
    """``--seed`` value: a non-negative int, or the word ``random``."""
    if text.strip().lower() == "random":
        return "random"
    try:
        value = int(text)
    except ValueError:
        raise pytest.UsageError(f"--seed wants a non-negative integer or 'random', not {text!r}") from None
    if value < 0:
        raise pytest.UsageError(f"--seed wants a non-negative integer or 'random', not {text!r}")
    return value


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--seed", action="store", default=None, metavar="N|random",
                     help="run seed of the cocotb regression: replaces every configuration's default seed "
                          "(N replays a printed seed; 'random' draws one; default $SNNHW_SEED, else the defaults)")


def resolve_run_seed(option: str | None, env: str | None, draw: int | None = None) -> tuple[int | None, str]:
    """The run seed and its source from the ``--seed`` option and ``$SNNHW_SEED``.

    ``draw`` is the seed ``--seed random`` uses (default: a fresh one from ``secrets``).
    The option wins over the environment variable.
    """
    if option is not None:
        value = parse_seed(option)
        if value == "random":
            return (secrets.randbelow(MAX_RANDOM_SEED) if draw is None else draw), "--seed random"
        return int(value), "--seed"
    if env:
        try:
            return int(env), "$SNNHW_SEED"
        except ValueError:
            raise pytest.UsageError(f"SNNHW_SEED={env!r} is not an integer") from None
    return None, "defaults"


def pytest_configure(config: pytest.Config) -> None:
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None and WORKER_KEY in workerinput:
        # pytest-xdist worker: take the controller's seed (a "random" one must be the same everywhere)
        seed, source = workerinput[WORKER_KEY]
    else:
        seed, source = resolve_run_seed(config.getoption("--seed"), os.environ.get("SNNHW_SEED"))
    config.stash[RUN_SEED] = seed
    config.stash[RUN_SEED_SOURCE] = source


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node) -> None:  # type: ignore[no-untyped-def]
    """pytest-xdist (controller): hand the resolved run seed to each worker."""
    config = node.config
    node.workerinput[WORKER_KEY] = (config.stash[RUN_SEED], config.stash[RUN_SEED_SOURCE])


def run_seed(config: pytest.Config) -> int | None:
    """The run seed of this session, or None when each configuration keeps its default."""
    return config.stash.get(RUN_SEED, None)


def pytest_report_header(config: pytest.Config) -> str:
    seed = run_seed(config)
    if seed is None:
        return ("snnhw seeds: each configuration's default (printed per test; "
                "--seed N or --seed random replaces them all)")
    return f"snnhw seed: {seed} (from {config.stash[RUN_SEED_SOURCE]}; replay with --seed {seed})"


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:  # type: ignore[no-untyped-def]
    """Repeat a set run seed at the end (the header is not shown under ``-q``)."""
    if run_seed(config) is not None and not hasattr(config, "workerinput"):
        terminalreporter.write_line(pytest_report_header(config))


def record_seed(request: pytest.FixtureRequest, seed: int) -> None:
    """Note that the test or fixture of ``request`` used ``seed`` (for the report's seed section)."""
    node = request.node
    used = node.stash.setdefault(USED_SEEDS, {})
    used[request.fixturename or ""] = seed


def seeds_of(item: pytest.Item) -> list[int]:
    """Seeds ``item`` depends on: its own and those of the (module/session) fixtures it uses."""
    seeds: list[int] = []
    names = set(getattr(item, "fixturenames", ()))
    for node in item.listchain():
        for requester, seed in node.stash.get(USED_SEEDS, {}).items():
            if (node is item or requester in names) and seed not in seeds:
                seeds.append(seed)
    return seeds


def replay_line(nodeid: str, seeds: list[int]) -> str:
    """The seed section's text: the seeds and the command that replays the test."""
    command = f"pytest '{nodeid}'" + (f" --seed {seeds[0]}" if len(seeds) == 1 else "")
    return f"seed={','.join(map(str, seeds))}; replay: {command}"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, pytest.TestReport,
                                                                                             pytest.TestReport]:
    report = yield
    seeds = seeds_of(item)
    if seeds and (report.when == "call" or report.failed):
        report.sections.append(("seed", replay_line(item.nodeid, seeds)))
    return report
