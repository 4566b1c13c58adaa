"""Regression: the generated spiking core is bit-exact to ``golden.run_spiking`` with exact cycles.

Each configuration (model shape × core knobs) is generated through ``snnhw.hw.generate``,
simulated in its own directory (pytest-xdist safe) in the regression's modes
(``regression_modes``: isolated sequences at full rate with the published cycle count checked
exactly; back to back under random idle/backpressure; back to back with a sink that stalls 90 %
of the cycles), on a batch of random sequences of varied length including N = 1.
The seed of every configuration is printed; ``--seed <seed>`` replays it.

The "debug" configurations (``trace=True``) also compare, in every mode, each record of the
core's ``trace`` stream — the per-(layer, n, t) spikes of every gate — with the golden trace.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from snnhw.quant.synthetic import random_frozen_spiking
from snnhw.sim.runner import simulate
from snnhw.sim.stimulus import build_stimulus, default_modes, regression_modes
from snnhw.hw.knobs import SpikingKnobs as Knobs
from snnhw.sim.verify import verify_core

from simfixtures import batch_inputs, generate_core, seed_for

pytestmark = pytest.mark.sim


@dataclass
class Case:
    """One regression configuration: model arguments, core knobs, batch shape, default seed, and
    whether the slow-sink mode runs (False where a sequence's computation always outlasts the
    slow sink's draining of its output words, so the mode reaches no state the others miss)."""

    name: str
    model: dict[str, Any]
    knobs: Knobs
    seed: int
    batch: int = 3
    n_max: int = 4
    marks: list[Any] = field(default_factory=list)
    slow_sink: bool = True


SMALL = {"input_size": 3, "hidden_size": 4}

CASES = [
    Case("T1-direct-g-if", {**SMALL, "T": 1}, Knobs(lanes=2, fanin=2), 101),
    Case("T2-direct-i-lif-head", {**SMALL, "T": 2, "nonspiking_gate": "i", "leak": "lif"},
         Knobs(lanes=1, fanin=3, head_in_hw=True), 102),
    Case("T3-rate-gt1-E2", {**SMALL, "T": 3, "encoding": "rate", "leak": "gt1"}, Knobs(lanes=4, fanin=1, engines=2), 103),
    Case("T4-spikes-2layer", {**SMALL, "T": 4, "encoding": "rate", "num_layers": 2},
         Knobs(lanes=2, fanin=4, input_mode="spikes"), 104),
    Case("T8-direct-lif-E3", {**SMALL, "T": 8, "leak": "lif"}, Knobs(lanes=4, fanin=2, engines=3), 105, n_max=3),
    Case("T4-direct-saturate-head", {**SMALL, "T": 4, "saturate": True}, Knobs(lanes=2, fanin=2, head_in_hw=True), 106),
    Case("T2-rate-w2", {**SMALL, "T": 2, "encoding": "rate", "weight_bits": 2}, Knobs(lanes=2, fanin=2), 107),
    Case("T2-direct-i-w16-head", {**SMALL, "T": 2, "nonspiking_gate": "i", "weight_bits": 16},
         Knobs(lanes=4, fanin=4, head_in_hw=True), 108),
    Case("T4-rate-event", {**SMALL, "T": 4, "encoding": "rate"}, Knobs(lanes=2, fanin=1, event_driven=True), 109),
    Case("T2-direct-2layer-i-event", {**SMALL, "T": 2, "num_layers": 2, "nonspiking_gate": "i"},
         Knobs(lanes=2, fanin=2, event_driven=True), 110),
    Case("T4-rate-event-shared-E2", {**SMALL, "T": 4, "encoding": "rate", "leak": "lif"},
         Knobs(lanes=2, fanin=2, engines=2, event_driven=True, event_mode="shared"), 113),
    Case("T4-spikes-queue-E2", {"input_size": 5, "hidden_size": 4, "T": 4, "encoding": "rate"},
         Knobs(lanes=2, fanin=3, engines=2, event_driven=True, event_mode="queue", input_mode="spikes"), 115),
    Case("T4-rate-queue-shared-E4", {**SMALL, "T": 4, "encoding": "rate", "leak": "lif"},
         Knobs(lanes=2, fanin=2, engines=4, event_driven=True, event_mode="queue-shared"), 119),
    Case("T4-spikes-queue-shared-R2-E2", {"input_size": 7, "hidden_size": 6, "T": 4, "encoding": "rate"},
         Knobs(lanes=2, fanin=4, engines=2, event_driven=True, event_mode="queue-shared", bank_readers=2,
               input_mode="spikes"), 131),
    Case("T2-direct-2layer-queue-head", {**SMALL, "T": 2, "num_layers": 2, "leak": "lif"},
         Knobs(lanes=2, fanin=2, event_driven=True, event_mode="queue", head_in_hw=True), 116),
    Case("T3-direct-2layer-lif-E1", {**SMALL, "T": 3, "num_layers": 2, "leak": "lif"},
         Knobs(lanes=1, fanin=4, engines=1), 111),
    Case("T3-direct-lif-E2-tree2-cell2", {**SMALL, "T": 3, "leak": "lif", "saturate": True},
         Knobs(lanes=2, fanin=2, engines=2, tree_stages=2, cell_stages=2), 117),
    Case("T4-direct-queue-E2-gate3-cell4", {**SMALL, "T": 4, "leak": "lif", "nonspiking_gate": "i"},
         Knobs(lanes=2, fanin=2, engines=2, event_driven=True, event_mode="queue", gate_stages=3, cell_stages=4), 118),
    # every leak term floored (frozen format 1's rule; the other cases round to nearest)
    Case("T4-direct-lif-floor-E2-gate2", {**SMALL, "T": 4, "leak": "lif", "leak_rounding": "floor"},
         Knobs(lanes=2, fanin=2, engines=2, gate_stages=2), 136),
    Case("T3-direct-lif-E2-tree2-gate3-cell6-proj2", {**SMALL, "T": 3, "leak": "lif", "saturate": True},
         Knobs(lanes=2, fanin=2, engines=2, tree_stages=2, gate_stages=3, cell_stages=6, proj_stages=2), 132),
    # a direct-input projection a quarter of the lanes wide (blocks of one lane written one by one)
    # on the spike-queue core with one engine
    Case("T2-direct-queue-shared-E1-proj-lanes1", {"input_size": 5, "hidden_size": 6, "T": 2, "leak": "lif"},
         Knobs(lanes=4, fanin=2, engines=1, event_driven=True, event_mode="queue-shared", proj_lanes=1), 133),
    # the spike-queue sequencer pipelined (masks, start and beat registered): every beat three
    # cycles after start, the cycle formula's drain two cycles longer
    Case("T4-direct-queue-shared-R2-E1-queue3-proj-lanes2", {"input_size": 5, "hidden_size": 6, "T": 4},
         Knobs(lanes=4, fanin=4, engines=1, event_driven=True, event_mode="queue-shared", bank_readers=2,
               proj_lanes=2, queue_stages=3, tree_stages=2, cell_stages=2), 134),
    Case("T4-spikes-queue-R4-E2-queue3", {"input_size": 7, "hidden_size": 6, "T": 4, "encoding": "rate"},
         Knobs(lanes=2, fanin=4, engines=2, event_driven=True, event_mode="queue", bank_readers=4,
               input_mode="spikes", queue_stages=3), 135),
    # --runslow (70–95 s in a full run): the realistic size
    # (H = 128, D = 20, T = 4) at short N, on the knobs that Icarus simulates fastest: ~1 ms per cycle
    # at 2 lanes × 16 synapses (8 lanes: ~20 ms per cycle). No slow-sink mode: a sequence takes
    # ≥ 9600 cycles (N = 1), the slow sink takes its 128 words in ≈ 1300 (the mode would add ~40 s
    # and find the serializer always drained)
    Case("realistic-H128-D20-T4", {"input_size": 20, "hidden_size": 128, "T": 4}, Knobs(lanes=2, fanin=16), 114,
         batch=2, n_max=3, slow_sink=False, marks=[pytest.mark.slow]),
    # H / lanes = 8 unit groups: the layer's wavefront (64 beats) outlasts the input
    # projection (26 cycles), so the next element is already projected when a wavefront ends
    Case("T2-direct-H8-L1-head", {"input_size": 3, "hidden_size": 8, "T": 2}, Knobs(lanes=1, fanin=2, head_in_hw=True),
         120),
    # --runslow: the realistic size on the throughput knobs (Icarus needs minutes per H = 128 sequence),
    # more seeds, larger shapes
    Case("slow-realistic-H128-D20-T4", {"input_size": 20, "hidden_size": 128, "T": 4}, Knobs(lanes=8, fanin=8), 112,
         batch=2, n_max=3, marks=[pytest.mark.slow]),
    Case("slow-H16-D8-T4-rate-event-2layer", {"input_size": 8, "hidden_size": 16, "T": 4, "encoding": "rate",
                                              "num_layers": 2, "leak": "lif"},
         Knobs(lanes=4, fanin=4, event_driven=True), 201, batch=4, n_max=8, marks=[pytest.mark.slow]),
    Case("slow-H32-D8-T8-direct-E4-head", {"input_size": 8, "hidden_size": 32, "T": 8, "nonspiking_gate": "i"},
         Knobs(lanes=8, fanin=8, engines=4, head_in_hw=True), 202, batch=4, n_max=10, marks=[pytest.mark.slow]),
    *[Case(f"slow-seed{s}-T2-direct", {**SMALL, "T": 2, "leak": "lif"}, Knobs(lanes=2, fanin=2), 300 + s,
           batch=6, n_max=6, marks=[pytest.mark.slow]) for s in range(3)],
]


@pytest.mark.parametrize("case", [pytest.param(c, id=c.name, marks=c.marks) for c in CASES])
def test_spiking_core_matches_golden(case: Case, simulator: str, tmp_path, request: pytest.FixtureRequest) -> None:
    seed = seed_for(request, case.seed)
    model = random_frozen_spiking(seed, **case.model)
    try:
        schedule, verilog = generate_core(model, case.knobs, tmp_path / "rtl")
    except ValueError as exc:
        pytest.skip(f"the spiking core rejects {case.knobs}: {exc}")
    x, lengths = batch_inputs(model, seed, case.batch, case.n_max, spikes=case.knobs.input_mode == "spikes")
    modes = regression_modes(seed) if case.slow_sink else default_modes(seed)
    report = verify_core(model, schedule, verilog, x, lengths, tmp_path / "run", knobs=case.knobs, sim=simulator,
                         modes=modes)
    assert report.passed, f"seed={seed}: {report.message}"
    assert report.sequences == case.batch
    assert [c["measured"] for c in report.cycles] == [c["expected"] for c in report.cycles]
    assert len(report.cycles) == case.batch


DEBUG_CASES = [
    Case("debug-trace-T2-2layer-i", {**SMALL, "T": 2, "num_layers": 2, "nonspiking_gate": "i"},
         Knobs(lanes=2, fanin=2, trace=True), 121),
    Case("debug-trace-T3-rate-event-E2-head", {**SMALL, "T": 3, "encoding": "rate", "leak": "lif"},
         Knobs(lanes=4, fanin=2, engines=2, event_driven=True, head_in_hw=True, trace=True), 122),
]


@pytest.mark.parametrize("case", [pytest.param(c, id=c.name, marks=c.marks) for c in DEBUG_CASES])
def test_debug_core_trace_matches_golden(case: Case, simulator: str, tmp_path, request: pytest.FixtureRequest) -> None:
    """Debug configuration: every trace record, every output word and every cycle count exact."""
    seed = seed_for(request, case.seed)
    model = random_frozen_spiking(seed, **case.model)
    schedule, verilog = generate_core(model, case.knobs, tmp_path / "rtl")
    x, lengths = batch_inputs(model, seed, case.batch, case.n_max)
    stim = build_stimulus(model, schedule, x, lengths, modes=regression_modes(seed))
    run = simulate(stim, [verilog], tmp_path / "run", sim=simulator)
    assert run.passed, f"seed={seed}: {run.sim.messages}"
    records = sum(len(seq.trace_records) for seq in stim.sequences)
    assert records == schedule.trace_cycles * int(sum(lengths))  # N·Σ_l T·G_l per sequence
    for mode in run.report["modes"]:
        assert mode["trace_records"] == records, mode["name"]
        assert {s["status"] for s in mode["sequences"]} == {"ok"}
    isolated = run.report["modes"][0]["sequences"]
    assert [s["cycles_measured"] for s in isolated] == [s["cycles_expected"] for s in isolated]


def test_verify_cli_trace_flag(tmp_path, simulator: str, capsys: pytest.CaptureFixture[str],
                               request: pytest.FixtureRequest) -> None:
    """``snnhw verify --trace`` generates the debug core and compares its trace; ``--rtl`` without a
    trace port is a usage error."""
    import json

    from snnhw import cli
    from snnhw.quant.frozen_io import save_frozen

    seed = seed_for(request, 123)
    path = save_frozen(tmp_path / "m.snnhw", random_frozen_spiking(seed, input_size=3, hidden_size=4, T=2))
    out = tmp_path / "rep"
    rc = cli.main(["verify", "--golden", str(path), "--lanes", "2", "--fanin", "2", "--samples", "2", "--length", "3",
                   "--trace", "--seed", str(seed), "--sim", simulator, "--no-progress", "-o", str(out)])
    assert rc == 0, capsys.readouterr().out
    doc = json.loads((out / "verify.json").read_text())
    core = doc["cores"][0]
    assert core["knobs"]["trace"] is True and core["trace_records"] > 0
    assert "debug trace:" in capsys.readouterr().out
    manifest = json.loads((out / "rtl" / "spiking_core.manifest.json").read_text())
    assert manifest["core"]["ports"]["trace"]["fields"][0]["name"] == "last"
    assert any(p["name"] == "trace__payload" for p in manifest["ports"])
    plain = tmp_path / "plain"
    assert cli.main(["generate", "--golden", str(path), "--lanes", "2", "--fanin", "2", "-o", str(plain)]) == 0
    capsys.readouterr()
    rc = cli.main(["verify", "--golden", str(path), "--rtl", str(plain), "--trace", "--no-progress",
                   "-o", str(tmp_path / "rep2")])
    assert rc == 2 and "has no trace port" in capsys.readouterr().err
