"""Every check of the regression bites: mutants of the RTL and of the expectations must FAIL.

On one small spiking configuration (T = 2, direct input, FC head in hardware) and one baseline
configuration, the unmodified run passes, and each of these makes the cocotb run fail with
the mismatch located:

* an expected output word corrupted by +1 (the testbench compares every word);
* an expected cycle count off by one (cycle counts are compared exactly);
* the sign bit of one weight flipped in the generated Verilog's weight-memory init (for the
  spiking core, the first weight of word 0 whose flip the golden model shows to be visible on
  the batch: most single flips of a sparse spiking layer are invisible on a few sequences);
* a threshold θ_f changed in the generated Verilog (its constant-memory word set to θ_f // 2);
* the output serializer made to ignore ``o.ready`` (words lost under backpressure: only the
  stalled mode can see it);
* on a debug core (``trace=True``, two layers, non-spiking i): one expected spike of the golden
  trace flipped (the testbench compares every per-(layer, n, t) gate value of the trace stream).
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import numpy as np
import pytest

from snnhw.quant import golden
from snnhw.quant.frozen import FrozenSpiking
from snnhw.quant.synthetic import random_frozen_baseline, random_frozen_spiking
from snnhw.sim.runner import simulate
from snnhw.sim.stimulus import build_stimulus, default_modes
from snnhw.hw.knobs import BaselineKnobs, SpikingKnobs

from simfixtures import batch_inputs, generate_core, seed_for

pytestmark = pytest.mark.sim


def module_span(text: str, module: str) -> tuple[int, int]:
    """Character span of ``module <name> (...) ... endmodule`` in a Verilog text."""
    start = text.index(f"module {module} ")
    return start, text.index("endmodule", start)


def flip_memory_bit(text: str, module: str, memory: str, bit: int) -> str:
    """Flip ``bit`` of word 0 in the ``initial`` block of ``memory`` inside ``module``."""
    lo, hi = module_span(text, module)
    pattern = re.compile(rf"(\b{re.escape(memory)}\[0\] = (\d+)'h)([0-9a-fA-F]+);")
    m = pattern.search(text, lo, hi)
    assert m is not None, f"no {memory}[0] init in {module}"
    width = int(m.group(2))
    value = int(m.group(3), 16) ^ (1 << bit)
    return text[:m.start()] + f"{m.group(1)}{value:0{(width + 3) // 4}x};" + text[m.end():]


def change_threshold(text: str, theta: int, new: int) -> tuple[str, int]:
    """Set θ_f to ``new`` in every gate-neuron block (``….neurons`` module) whose θ_f is ``theta``:
    word 0 of its constant memory (``neuron_lanes.neuron_constants`` puts f first); returns
    (text, blocks changed)."""
    word = re.compile(r"(\bconstants\[0\] = (\d+)'h)([0-9a-fA-F]+);")
    count = 0
    for module in re.findall(r"^module (\\\S+\.neurons) ", text, re.MULTILINE):
        lo, hi = module_span(text, module)
        m = word.search(text, lo, hi)
        assert m is not None, f"no constants[0] init in {module}"
        width = int(m.group(2))
        if int(m.group(3), 16) == theta & ((1 << width) - 1):
            text = text[:m.start()] + f"{m.group(1)}{new & ((1 << width) - 1):0{(width + 3) // 4}x};" + text[m.end():]
            count += 1
    return text, count


def ignore_ready(text: str, serializer: str) -> tuple[str, int]:
    """Make the output serializer advance on ``o__valid`` alone (drops words under backpressure)."""
    lo, hi = module_span(text, serializer)
    body, count = re.subn(r"o__valid & o__ready", "o__valid", text[lo:hi])
    return text[:lo] + body + text[hi:], count


SPIKING_SEED = 901


def spiking_setup_inputs(model, seed: int):
    """The mutation batch: 4 random sequences, N ≤ 6 (the last one N = 1)."""
    return batch_inputs(model, seed, 4, 6)


@pytest.fixture(scope="module")
def spiking_setup(tmp_path_factory: pytest.TempPathFactory, simulator: str, request: pytest.FixtureRequest):
    seed = seed_for(request, SPIKING_SEED)
    model = random_frozen_spiking(seed, input_size=3, hidden_size=4, T=2)
    knobs = SpikingKnobs(lanes=2, fanin=2, head_in_hw=True)
    root = tmp_path_factory.mktemp("mut-spiking")
    schedule, verilog = generate_core(model, knobs, root / "rtl")
    x, lengths = spiking_setup_inputs(model, seed)
    stim = build_stimulus(model, schedule, x, lengths, modes=default_modes(seed, back_to_back=True))
    return model, stim, verilog, root, simulator


def _run(stim, verilog: Path, root: Path, name: str, sim: str, shared_build: bool = True):
    build = root / f"build-{sim}" if shared_build else None
    run = simulate(stim, [verilog], root / name, sim=sim, build_dir=build)
    print(f"{name}: {'PASS' if run.passed else 'FAIL: ' + (run.sim.messages or ['?'])[0]}")
    return run


def test_unmodified_spiking_core_passes(spiking_setup) -> None:
    model, stim, verilog, root, sim = spiking_setup
    run = _run(stim, verilog, root, "ok", sim)
    assert run.passed, run.sim.messages
    assert [m["name"] for m in run.report["modes"]] == ["isolated", "stalls", "back-to-back"]


def test_corrupted_expected_word_fails_located(spiking_setup) -> None:
    model, stim, verilog, root, sim = spiking_setup
    word = model.hidden_size + 1  # logit[1]
    run = _run(stim.corrupted(2, word), verilog, root, "bad-word", sim)
    assert not run.passed
    m = run.first_mismatch
    assert (m["kind"], m["sequence"], m["word"], m["label"]) == ("data", 2, word, "logit[1]")
    assert m["expected"] == m["got"] + 1
    assert "sequence 2 (sample 2), word 5 (logit[1])" in run.sim.messages[0]


def test_corrupted_readout_word_shows_golden_terms(spiking_setup) -> None:
    model, stim, verilog, root, sim = spiking_setup
    run = _run(stim.corrupted(0, 3), verilog, root, "bad-readout", sim)
    assert not run.passed
    m = run.first_mismatch
    assert (m["sequence"], m["word"], m["label"]) == (0, 3, "r[3]")
    assert "golden h_L(N,t)[j], t=1..T" in m["trace"]


def test_expected_cycle_count_off_by_one_fails(spiking_setup) -> None:
    model, stim, verilog, root, sim = spiking_setup
    run = _run(stim.with_cycles_offset(1, -1), verilog, root, "bad-cycles", sim)
    assert not run.passed
    m = run.first_mismatch
    assert (m["kind"], m["sequence"], m["got"] - m["expected"]) == ("cycles", 1, 1)


def observable_sign_flip(model, x, lengths, fields: list[tuple[int, str, int, int]], width: int) -> tuple[int, int]:
    """(field index, number of visible flips): the first candidate weight whose sign flip (in a
    signed ``width``-bit field) changes the golden outputs on this batch.

    ``fields``: (field index in weight word 0, "w_x"/"w_h", row, column) of layer 1. A flip the
    golden model cannot see on these inputs would be an equivalent mutant, not a test.
    """
    run = golden.run_spiking if isinstance(model, FrozenSpiking) else golden.run_baseline
    base = run(model, x, lengths)
    top = 1 << (width - 1)
    visible = []
    for field, name, row, col in fields:
        mutant = copy.deepcopy(model)
        w = getattr(mutant.layers[0], name)
        w[row, col] += -top if w[row, col] >= 0 else top
        res = run(mutant, x, lengths)
        if not (np.array_equal(res.readout, base.readout) and np.array_equal(res.logits, base.logits)):
            visible.append(field)
    assert visible, "no single sign flip in weight word 0 is visible on this batch"
    return visible[0], len(visible)


def test_flipped_weight_bit_in_rtl_fails(spiking_setup, request: pytest.FixtureRequest) -> None:
    model, stim, verilog, root, sim = spiking_setup
    x, lengths = spiking_setup_inputs(model, seed_for(request, SPIKING_SEED))  # spiking_setup's batch
    # word 0 of layer 1's weight memory (direct input: recurrent chunk 0 of unit group 0) holds
    # w_h[a·H + k, f] at field (a·lanes + k)·fanin + f (engine.weights_layout)
    lanes, fanin, hidden = 2, 2, model.hidden_size
    fields = [((a * lanes + k) * fanin + f, "w_h", a * hidden + k, f)
              for a in range(4) for k in range(lanes) for f in range(fanin)]
    field, visible = observable_sign_flip(model, x, lengths, fields, model.weight_bits)
    print(f"{visible} of {len(fields)} sign flips in weight word 0 change the golden outputs; flipping field {field}")
    bit = field * model.weight_bits + model.weight_bits - 1
    mutant = root / "mutant-weight" / "spiking_core.v"
    mutant.parent.mkdir()
    mutant.write_text(flip_memory_bit(verilog.read_text(), r"\snn_lstm_core.layer_0", "wmem", bit))
    run = _run(stim, mutant, root, "mut-weight", sim, shared_build=False)
    assert not run.passed
    assert run.first_mismatch["kind"] == "data"


def _run_halved_theta_f(model, stim, verilog: Path, root: Path, sim: str):  # type: ignore[no-untyped-def]
    """Simulate ``verilog`` with θ_f changed to θ_f // 2 in every gate-neuron block."""
    theta = model.layers[0].f.theta
    text, count = change_threshold(verilog.read_text(), theta, theta // 2)
    assert count > 0
    mutant = root / "mutant-theta" / "spiking_core.v"
    mutant.parent.mkdir()
    mutant.write_text(text)
    return _run(stim, mutant, root, "mut-theta", sim, shared_build=False)


def test_changed_threshold_in_rtl_fails(spiking_setup) -> None:
    run = _run_halved_theta_f(*spiking_setup)
    assert not run.passed
    assert run.first_mismatch["kind"] == "data"


def test_serializer_ignoring_backpressure_fails_only_under_stalls(spiking_setup) -> None:
    model, stim, verilog, root, sim = spiking_setup
    text, count = ignore_ready(verilog.read_text(), r"\snn_lstm_core.serializer")
    assert count >= 1
    mutant = root / "mutant-ready" / "spiking_core.v"
    mutant.parent.mkdir()
    mutant.write_text(text)
    run = _run(stim, mutant, root, "mut-ready", sim, shared_build=False)
    assert not run.passed
    assert run.first_mismatch["mode"] == "stalls"
    assert [s["status"] for s in run.report["modes"][0]["sequences"]] == ["ok"] * 4  # full rate cannot tell


def test_baseline_flipped_weight_bit_fails(tmp_path: Path, simulator: str, request: pytest.FixtureRequest) -> None:
    seed = seed_for(request, 902)
    model = random_frozen_baseline(seed, input_size=3, hidden_size=4)
    knobs = BaselineKnobs(lanes=2, fanin=3)
    schedule, verilog = generate_core(model, knobs, tmp_path / "rtl")
    x, lengths = batch_inputs(model, seed, 4, 6)
    stim = build_stimulus(model, schedule, x, lengths, modes=default_modes(seed))
    ok = simulate(stim, [verilog], tmp_path / "ok", sim=simulator)
    assert ok.passed, ok.sim.messages
    # ROM word 0 (group 0, input chunk 0) holds w_x[a·H + j, f] at field (a·lanes + j)·fanin + f,
    # fields of the core's weight width (BaselineCore.weight_rom)
    lanes, fanin, hidden = 2, 3, model.hidden_size
    fields = [((a * lanes + j) * fanin + f, "w_x", a * hidden + j, f)
              for a in range(4) for j in range(lanes) for f in range(fanin)]
    weight_bits = json.loads(verilog.with_name("baseline_core.manifest.json").read_text())["core"]["widths"]["weight"]
    field, visible = observable_sign_flip(model, x, lengths, fields, weight_bits)
    print(f"{visible} of {len(fields)} sign flips in ROM word 0 change the golden outputs; flipping field {field}")
    bit = field * weight_bits + weight_bits - 1
    mutant = tmp_path / "mutant" / "baseline_core.v"
    mutant.parent.mkdir()
    mutant.write_text(flip_memory_bit(verilog.read_text(), r"\mac_lstm_core.wrom", "mem", bit))
    bad = simulate(stim, [mutant], tmp_path / "bad", sim=simulator)
    print(f"baseline weight flip: {'PASS' if bad.passed else 'FAIL: ' + (bad.sim.messages or ['?'])[0]}")
    assert not bad.passed
    assert bad.first_mismatch["kind"] == "data"


DEBUG_SEED = 903


@pytest.fixture(scope="module")
def debug_setup(tmp_path_factory: pytest.TempPathFactory, simulator: str, request: pytest.FixtureRequest):
    seed = seed_for(request, DEBUG_SEED)
    model = random_frozen_spiking(seed, input_size=3, hidden_size=4, T=2, num_layers=2, nonspiking_gate="i")
    knobs = SpikingKnobs(lanes=2, fanin=2, trace=True)
    root = tmp_path_factory.mktemp("mut-debug")
    schedule, verilog = generate_core(model, knobs, root / "rtl")
    x, lengths = batch_inputs(model, seed, 3, 4)
    stim = build_stimulus(model, schedule, x, lengths, modes=default_modes(seed))
    return model, stim, verilog, root, simulator


def test_unmodified_debug_core_passes_trace(debug_setup) -> None:
    model, stim, verilog, root, sim = debug_setup
    run = _run(stim, verilog, root, "ok", sim)
    assert run.passed, run.sim.messages
    records = sum(len(seq.trace_records) for seq in stim.sequences)
    assert [m["trace_records"] for m in run.report["modes"]] == [records, records]


@pytest.mark.parametrize("gate,layer", [("f", 1), ("h", 0)])
def test_corrupted_expected_trace_spike_fails_located(debug_setup, gate: str, layer: int) -> None:
    model, stim, verilog, root, sim = debug_setup
    n, t, unit = stim.sequences[0].n - 1, 1, 3
    run = _run(stim.with_flipped_trace_spike(0, layer, n, t, gate, unit), verilog, root, f"bad-trace-{gate}", sim)
    assert not run.passed
    m = run.first_mismatch
    assert (m["mode"], m["kind"], m["sequence"], m["layer"], m["n"], m["t"], m["gate"], m["unit"]) == \
        ("isolated", "trace", 0, layer, n, t, gate, unit)
    assert m["expected"] != m["got"]
    assert f"(layer {layer}, element n={n}, time step t={t}): {gate}[{unit}] expected" in run.sim.messages[0]
    statuses = [s["status"] for s in run.report["modes"][0]["sequences"]]
    assert statuses == ["trace", "ok", "ok"]  # the readout words of sequence 0 are still right


def test_changed_threshold_in_debug_rtl_is_located_by_the_trace(debug_setup) -> None:
    """An RTL bug shows first in the trace, at the cell and gate it corrupts (before any readout word)."""
    model = debug_setup[0]
    theta = model.layers[0].f.theta
    run = _run_halved_theta_f(*debug_setup)
    assert not run.passed
    m = run.first_mismatch
    # θ_f of every layer whose θ_f equals layer 0's was changed
    same = {(index, "f") for index, layer in enumerate(model.layers) if layer.f.theta == theta}
    assert m["kind"] == "trace" and (m["layer"], m["gate"]) in same, m


@pytest.mark.parametrize("mutation", ["bank0-drops-its-spikes", "group-end-flag-misplaced",
                                      "second-reader-repeats-the-first"])
def test_queue_logic_mutants_fail_the_regression(mutation: str, simulator: str, tmp_path: Path,
                                                 request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
                                                 ) -> None:
    """The spike-queue core passes; its queue sequencer with one bank never live (its spikes lost),
    raising the group-end flag only on a beat where every bank is empty (the engines update
    their neurons at the wrong beat), or (two readers per bank) bank 0's second reader issuing
    the first reader's entry again, fails the regression."""
    from amaranth.hdl import Cat

    import snnhw.hw.wavefront as wavefront
    from snnhw.hw.sequencer import QueueSequencer

    seed = seed_for(request, 903)
    model = random_frozen_spiking(seed, input_size=5, hidden_size=4, T=3, encoding="rate")
    readers = 2 if mutation == "second-reader-repeats-the-first" else 1
    knobs = SpikingKnobs(lanes=2, fanin=4 if readers == 2 else 3, engines=3,
                         event_driven=True, event_mode="queue", input_mode="spikes", bank_readers=readers)
    schedule, verilog = generate_core(model, knobs, tmp_path / "rtl")
    x, lengths = batch_inputs(model, seed, 4, 6, spikes=True)
    stim = build_stimulus(model, schedule, x, lengths, modes=default_modes(seed))
    assert simulate(stim, [verilog], tmp_path / "ok", sim=simulator).passed

    class Mutant(QueueSequencer):
        def elaborate(self, platform):
            m = super().elaborate(platform)
            if mutation == "bank0-drops-its-spikes":
                m.d.comb += self.beat.live[0].eq(0)
            elif mutation == "second-reader-repeats-the-first":  # lane B is reader 1 of bank 0
                m.d.comb += self.beat.cs[self.banks].eq(self.beat.cs[0])
            else:  # the group-end flag only where every bank is empty
                m.d.comb += self.beat.last.eq(Cat(*[self.beat.live[b] for b in range(self.banks)]).any() == 0)
            return m

    monkeypatch.setattr(wavefront, "QueueSequencer", Mutant)
    _, bad = generate_core(model, knobs, tmp_path / "rtl-bad")
    run = simulate(stim, [bad], tmp_path / "bad", sim=simulator)
    print(f"{mutation}: {'PASS' if run.passed else 'FAIL: ' + (run.sim.messages or ['?'])[0]}")
    assert not run.passed
