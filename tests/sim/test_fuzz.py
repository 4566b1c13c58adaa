"""``snnhw fuzz``: deterministic valid draws, a passing case, a failing case shrunk to a fixture
that replays, every fixture of ``tests/sim/fuzz_fixtures`` replayed, one-line option errors.

The simulated cases use tiny limits (H ≤ 3, T ≤ 2, N ≤ 3) so that each build and run takes a
few seconds on Icarus.
"""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest
from simfixtures import HERE

from snnhw import cli
from snnhw.hw.registry import core_names, core_spec
from snnhw.sim.fuzz import (
    SEQUENCE_KINDS,
    FuzzCase,
    FuzzLimits,
    campaign,
    case_rng,
    draw_config,
    fuzzable_kinds,
    input_range,
    make_case,
    replay_fixture,
)

FIXTURES = HERE / "fuzz_fixtures"
TINY = FuzzLimits(max_hidden=3, max_input=3, max_T=2, max_width=2, max_length=3, long_length=4)
TINY_OPTIONS = ["--max-hidden", "3", "--max-input", "3", "--max-T", "2", "--max-width", "2", "--max-length", "3",
                "--long-length", "4"]


def test_every_registered_core_is_fuzzed() -> None:
    assert fuzzable_kinds() == core_names()


def test_draws_are_deterministic_and_valid() -> None:
    """Case K of seed S is the same every time; every drawn configuration is accepted by its
    core (the schedule's checks), every knob of the kind is drawn, inputs are in range."""
    lim = FuzzLimits()
    first = [draw_config(case_rng(7, k), lim) for k in range(60)]
    assert first == [draw_config(case_rng(7, k), lim) for k in range(60)]
    assert first != [draw_config(case_rng(8, k), lim) for k in range(60)]
    assert {c.core for c in first} == set(core_names())
    for config in first:
        model = config.validate()  # raises when the generator rejects it
        assert set(config.knobs) == {f.name for f in fields(core_spec(config.core).knobs_type)}
        assert 1 <= model.hidden_size <= lim.max_hidden and 1 <= model.input_size <= lim.max_input
    # narrow H with wide lanes: most baseline draws are rejected (lanes must divide H) and redrawn
    narrow = FuzzLimits(max_hidden=2, max_width=8)
    for k in range(20):
        draw_config(case_rng(3, k), narrow, ["baseline"]).validate()
    a, b = make_case(7, 3, 12, lim), make_case(7, 3, 12, lim)
    assert a.config == b.config and a.kinds == b.kinds and a.modes == b.modes
    assert all(np.array_equal(x, y) for x, y in zip(a.inputs, b.inputs))
    assert set(a.kinds) == {"random", *SEQUENCE_KINDS}
    model = a.config.build_model()
    mode = a.config.spec.schedule_of(model, a.config.core_knobs()).input_mode
    lo, hi = input_range(model, mode)
    for kind, x in zip(a.kinds, a.inputs):
        assert lo <= x.min() and x.max() <= hi
        assert len(x) == {"n1": 1, "long": lim.long_length}.get(kind, len(x)) <= lim.long_length
    assert FuzzCase.from_json(json.loads(json.dumps(a.to_json()))).config == a.config


@pytest.mark.sim
def test_one_case_campaign_passes(simulator: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "fz"
    rc = cli.main(["fuzz", "--cases", "1", "--sequences", "3", "--seed", "11", "--sim", simulator, *TINY_OPTIONS,
                   "--fixtures-dir", str(tmp_path / "fixtures"), "--no-progress", "-o", str(out)])
    text = capsys.readouterr().out
    assert rc == 0, text
    assert text.startswith("PASS snnhw fuzz: seed 11, 1/1 cases")
    doc = json.loads((out / "fuzz.json").read_text())
    (case,) = doc["cases"]
    outcome = case["outcome"]
    assert outcome["passed"] and outcome["mismatches"] == 0 and outcome["sequences"] == 3
    assert outcome["cycles_exact"] == outcome["cycles_checked"] == 3
    assert outcome["sequence_runs"] == 3 * len(case["modes"])
    assert outcome["build_s"] >= 0 and outcome["run_s"] > 0
    assert case["replay"].startswith("snnhw fuzz --seed 11 --case 0 --sequences 3 --max-hidden 3")
    assert doc["totals"]["failed"] == 0 and not doc["stopped_by_budget"]
    assert not (tmp_path / "fixtures").exists() and not (out / "work" / "case-00000").exists()


def test_models_per_config_draw_one_configuration_per_group() -> None:
    """M = 1 is the campaign as before; with M = 2 cases 2k and 2k+1 share group k's configuration,
    the second with permuted weights (same value ranges, other memory contents)."""
    # seed 14 draws a spiking configuration with H = 3 (H = 1 would make every row permutation the identity)
    assert make_case(14, 1, 3, TINY, models_per_config=1).config == make_case(14, 1, 3, TINY).config
    first, second = (make_case(14, k, 3, TINY, models_per_config=2) for k in (2, 3))
    assert first.config == make_case(14, 1, 3, TINY).config
    assert second.config.twin_seed is not None and first.config.twin_seed is None
    assert {**second.config.__dict__, "twin_seed": None} == first.config.__dict__
    a, b = first.config.build_model(), second.config.build_model()
    assert any(not np.array_equal(x.w_h, y.w_h) for x, y in zip(a.layers, b.layers))
    assert all(np.array_equal(np.sort(x.w_h, axis=1), np.sort(y.w_h, axis=1)) for x, y in zip(a.layers, b.layers))


@pytest.mark.sim
def test_models_of_one_configuration_share_a_build(simulator: str, tmp_path: Path) -> None:
    report = campaign(tmp_path / "fz", seed=4, cases=2, sequences=3, sim=simulator, limits=TINY, models_per_config=2,
                      progress=False)
    first, second = (c["outcome"] for c in report.cases)
    assert first["passed"] and second["passed"]
    assert not first["build_reused"] and second["build_reused"]
    assert report.totals()["builds_reused"] == 1
    assert "--models-per-config 2" in report.cases[1]["replay"]
    assert not (tmp_path / "fz" / "work" / "builds").exists()


@pytest.mark.sim
def test_corrupted_expectation_is_shrunk_to_a_replaying_fixture(simulator: str, tmp_path: Path) -> None:
    """A wrong expected word (test hook) is a located mismatch; the case shrinks (one sequence,
    the failing mode, N = 1) and its fixture fails again at the same place when replayed."""
    report = campaign(tmp_path / "fz", seed=11, cases=1, sequences=3, sim=simulator, limits=TINY,
                      fixtures_dir=tmp_path / "fixtures", shrink_runs=6, progress=False, corrupt=(0, 0))
    (case,) = report.cases
    assert report.totals()["failed"] == 1 and case["outcome"]["mismatches"] >= 1
    assert case["outcome"]["message"].startswith("mode isolated, sequence 0 (sample 0), word 0 ")
    shrunk = case["shrink"]
    assert shrunk["sequences"] == 1 and shrunk["elements"] == 1, shrunk
    assert 1 <= shrunk["runs"] <= 6 and shrunk["steps"]
    path = Path(case["fixture"])
    assert path.parent == tmp_path / "fixtures"
    doc = json.loads(path.read_text())
    assert doc["corrupt"] == [0, 0] and len(doc["modes"]) == 1 and doc["found"]["first_mismatch"]["word"] == 0
    _, outcome = replay_fixture(path, tmp_path / "replay", simulator)
    assert not outcome.passed
    assert (outcome.first_mismatch["sequence"], outcome.first_mismatch["word"]) == (0, 0)
    assert outcome.message == doc["found"]["message"]


def _fixture_params() -> list[object]:
    files = sorted(FIXTURES.glob("*.json"))
    return [pytest.param(f, id=f.name) for f in files] or [pytest.param(None, id="generated")]


@pytest.mark.sim
@pytest.mark.parametrize("fixture", _fixture_params())
def test_replay_fixture(fixture: Path | None, simulator: str, tmp_path: Path) -> None:
    """Every fixture in ``tests/sim/fuzz_fixtures`` replays: one without the test hook must pass
    (the core matches the golden model), one with it must fail where it failed. With no fixture
    there, a generated one (written in ``tmp_path``) exercises the same path."""
    if fixture is None:
        fixture = tmp_path / "generated.json"
        fixture.write_text(json.dumps(make_case(11, 0, 2, TINY).to_json()))
    doc = json.loads(fixture.read_text())
    case, outcome = replay_fixture(fixture, tmp_path / "replay", simulator)
    if case.corrupt is None:
        assert outcome.passed, f"{fixture.name} [{case.config.label()}]: {outcome.message}"
    else:
        assert not outcome.passed and outcome.first_mismatch == doc["found"]["first_mismatch"]


@pytest.mark.sim
def test_time_budget_stops_cleanly(simulator: str, tmp_path: Path) -> None:
    report = campaign(tmp_path, cases=3, sequences=1, sim=simulator, time_budget=1e-9, limits=TINY, progress=False)
    doc = json.loads((tmp_path / "fuzz.json").read_text())
    assert report.stopped_by_budget and doc["stopped_by_budget"] and doc["cases"] == []
    assert doc["totals"]["cases"] == 0 and doc["cases_requested"] == [0, 1, 2]


@pytest.mark.parametrize("argv, message", [
    (["--cases", "0"], "--cases, --sequences, --jobs and --models-per-config must be at least 1"),
    (["--jobs", "0"], "--cases, --sequences, --jobs and --models-per-config must be at least 1"),
    (["--models-per-config", "0"], "--cases, --sequences, --jobs and --models-per-config must be at least 1"),
    (["--seed", "-1"], "--seed and --case must be ≥ 0"),
    (["--max-hidden", "0"], "--max-hidden must be an integer ≥ 1, not 0"),
    (["--time-budget", "0"], "--time-budget must be a positive number of seconds"),
    (["--core", "gpu"], "unknown core kind 'gpu'"),
    (["--replay", "missing.json"], "missing.json: not a readable fuzz fixture"),
])
def test_bad_options_are_one_line_errors(argv: list[str], message: str, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    rc = cli.main(["fuzz", "--no-progress", "-o", str(tmp_path), *argv])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("snnhw: error: ") and message in err and err.count("\n") == 1, err


@pytest.mark.slow
@pytest.mark.sim
def test_parallel_jobs_run_the_same_cases(simulator: str, tmp_path: Path) -> None:
    one = campaign(tmp_path / "a", seed=4, cases=2, sequences=2, sim=simulator, limits=TINY, progress=False)
    two = campaign(tmp_path / "b", seed=4, cases=2, sequences=2, sim=simulator, limits=TINY, jobs=2,
                   progress=False)
    assert [c["config"] for c in one.cases] == [c["config"] for c in two.cases]
    assert one.totals()["failed"] == two.totals()["failed"] == 0
