"""The systematic mutant generator (``snnhw.sim.mutants``, campaign: ``bench/mutants.py``).

On a tiny spiking core (D = 2, H = 2, T = 1, lanes = fanin = 2):

* every operator (+ ↔ −, constants ±1, comparison flips, mux arms, register bypass,
  valid/ready stuck) has mutants, and one of each changes exactly one line of the Verilog,
  recorded in the mutant (module, block, line, original and mutated text) and compiles with
  Icarus;
* the mutants and the seeded sample are deterministic (same ids on a second enumeration and
  for the same seed; a different seed gives another sample);
* a known-bad mutant (the cell's forget-gate mux with its arms swapped: c(n−1) is dropped
  when f spikes and kept when it does not) is killed by the regression stimulus with a located
  data mismatch, while the unmutated core passes the same stimulus.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from simfixtures import batch_inputs, generate_core

from snnhw.hw.knobs import SpikingKnobs
from snnhw.quant.synthetic import random_frozen_spiking
from snnhw.sim.mutants import (
    OPERATORS,
    block_of,
    compile_check,
    enumerate_mutants,
    run_mutant,
    sample_mutants,
)
from snnhw.sim.runner import simulate
from snnhw.sim.stimulus import build_stimulus, default_modes

SEED = 907


@pytest.fixture(scope="module")
def tiny_core(tmp_path_factory: pytest.TempPathFactory):
    """(model, schedule, Verilog path, work dir) of the tiny spiking core."""
    model = random_frozen_spiking(SEED, input_size=2, hidden_size=2, T=1)
    root = tmp_path_factory.mktemp("mutants")
    schedule, verilog = generate_core(model, SpikingKnobs(lanes=2, fanin=2), root / "rtl")
    return model, schedule, verilog, root


def test_block_collapses_instance_indices() -> None:
    assert block_of("\\snn_lstm_core.layer_0.engine_1.tree_2_0") == "snn_lstm_core.layer_*.engine_*.tree_*"
    assert block_of("mac_lstm_core.ser") == "mac_lstm_core.ser"


@pytest.mark.skipif(shutil.which("iverilog") is None, reason="Icarus Verilog (iverilog) is not on PATH")
def test_each_operator_makes_one_line_change_that_compiles(tiny_core) -> None:
    _, _, verilog, root = tiny_core
    text = verilog.read_text()
    lines = text.split("\n")
    mutants = enumerate_mutants(text)
    assert len({m.id for m in mutants}) == len(mutants)
    for op in OPERATORS:
        mut = next((m for m in mutants if m.operator == op), None)
        assert mut is not None, f"no {op} mutant in the tiny core"
        assert mut.original == lines[mut.line - 1].strip() and mut.mutated != mut.original
        assert f"module \\{mut.module} " in text or f"module {mut.module}(" in text
        mutated = mut.apply(text)
        new_lines = mutated.split("\n")
        changed = [k for k, (a, b) in enumerate(zip(lines, new_lines)) if a != b]
        if mut.insert:  # an override inserted before the block's closing "end"
            assert len(new_lines) == len(lines) + 1 and new_lines[mut.line - 1].strip() == mut.mutated
        else:
            assert changed == [mut.line - 1] and new_lines[mut.line - 1].strip() == mut.mutated
        path = root / f"{op}.v"
        path.write_text(mutated)
        assert compile_check(path, "snn_lstm_core") is None, f"{op} mutant {mut.id} does not compile"


def test_mutants_and_sample_are_deterministic(tiny_core) -> None:
    _, _, verilog, _ = tiny_core
    text = verilog.read_text()
    first, second = enumerate_mutants(text), enumerate_mutants(text)
    assert [m.id for m in first] == [m.id for m in second]
    sample = sample_mutants(first, 30, seed=3)
    assert len(sample) == 30
    assert [m.id for m in sample] == [m.id for m in sample_mutants(second, 30, seed=3)]
    assert [m.id for m in sample] != [m.id for m in sample_mutants(first, 30, seed=4)]
    assert {m.block for m in sample} == {m.block for m in first}  # every block is sampled
    assert {m.operator for m in sample} == set(OPERATORS)


@pytest.mark.sim
def test_known_bad_mutant_is_killed(tiny_core, simulator: str) -> None:
    model, schedule, verilog, root = tiny_core
    text = verilog.read_text()
    x, lengths = batch_inputs(model, SEED, 6, 6)
    stim = build_stimulus(model, schedule, x, lengths, modes=default_modes(SEED))
    control = simulate(stim, [verilog], root / "control", sim=simulator)
    assert control.passed, control.sim.messages
    # the forget gate: c(n-1) enters the cell sum only when f spikes ("f ? c_prev : 0")
    mut = next(m for m in enumerate_mutants(text) if m.operator == "mux" and m.block.endswith(".cell")
               and "c_prev" in m.original)
    stim_path = stim.save(root / "stimulus.json")
    result = run_mutant(mut, text, stim_path, root / mut.id, top=stim.toplevel, sim=simulator)
    print(f"{mut.id} ({mut.module} line {mut.line}: {mut.original} → {mut.mutated}): {result.status} "
          f"{result.message}")
    assert (result.status, result.kill) == ("killed", "data"), result
    assert result.message.startswith(f"mode {result.mode}, sequence ")
    assert not Path(root / mut.id).exists()  # the work directory is removed


# The survivors of the mutant campaign (docs/verification.md, "Systematic mutants") that the
# campaign's stimulus seed missed and another stimulus seed kills: each becomes a regression
# case here. (core, mutant id, stimulus seed); the configurations are bench/mutants.py's.
SURVIVOR_KILLS = [
    ("spiking", "arith-0891050859", 22),  # −1-spike count of an adder tree subtracted
    ("spiking", "const-c74cd39bae", 5),  # a silent synapse's term 0 → 1
    ("spiking", "arith-6b00ec1bce", 5),  # two spikes of a tree subtracted
    ("baseline", "const-e824196917", 1),  # σ(o)'s upper clip test 128 → 129
    ("baseline", "cmp-2b10e383d9", 1),  # tanh(c)'s scale select inverted
    ("baseline", "mux-bde2d41eed", 1),  # tanh(c)'s scale select, arms swapped
]


@pytest.fixture(scope="module")
def campaign_cores(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The two mutant-campaign configurations (bench/mutants.py ``CONFIGS``): core → (model,
    schedule, Verilog text, config seed)."""
    from snnhw.hw.knobs import BaselineKnobs
    from snnhw.quant.synthetic import random_frozen_baseline

    root = tmp_path_factory.mktemp("campaign")
    configs = {
        "spiking": (random_frozen_spiking(901, input_size=3, hidden_size=4, T=2),
                    SpikingKnobs(lanes=2, fanin=2, head_in_hw=True), 901),
        "baseline": (random_frozen_baseline(902, input_size=3, hidden_size=4),
                     BaselineKnobs(lanes=2, fanin=3, head_in_hw=True), 902),
    }
    out = {}
    for core, (model, knobs, seed) in configs.items():
        schedule, verilog = generate_core(model, knobs, root / core)
        out[core] = (model, schedule, verilog.read_text(), seed)
    return out


@pytest.mark.sim
@pytest.mark.skipif(shutil.which("iverilog") is None, reason="Icarus Verilog (iverilog) is not on PATH")
@pytest.mark.parametrize("core, mutant_id, stimulus_seed", SURVIVOR_KILLS, ids=[k[1] for k in SURVIVOR_KILLS])
def test_campaign_survivor_is_killed_by_its_stimulus(campaign_cores, core: str, mutant_id: str, stimulus_seed: int,
                                                     tmp_path: Path) -> None:
    from snnhw.sim.stimulus import regression_modes

    model, schedule, text, seed = campaign_cores[core]
    mutant = next((m for m in enumerate_mutants(text) if m.id == mutant_id), None)
    assert mutant is not None, (f"{mutant_id} is not among the {core} core's mutants any more (the generator "
                                "changed): rerun bench/mutants.py and update SURVIVOR_KILLS")
    x, lengths = batch_inputs(model, stimulus_seed, 32, 16)
    stim = build_stimulus(model, schedule, x, lengths, modes=regression_modes(seed))
    control = simulate(stim, [_write(tmp_path / "control.v", text)], tmp_path / "control", sim="icarus")
    assert control.passed, control.sim.messages
    result = run_mutant(mutant, text, stim.save(tmp_path / "stimulus.json"), tmp_path / mutant_id,
                        top=stim.toplevel, sim="icarus")
    print(f"{mutant_id} ({mutant.module} line {mutant.line}): {result.status} {result.message}")
    assert result.status == "killed", result


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path
