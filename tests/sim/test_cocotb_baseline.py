"""Regression: the generated MAC baseline core is bit-exact to ``golden.run_baseline`` with exact cycles.

Same protocol as ``test_cocotb_spiking.py`` (own directory per configuration, the regression's
isolated, stalled and slow-sink modes, lengths varied with an N = 1 sequence, seeds printed;
``--seed <seed>`` replays).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from snnhw.quant.synthetic import random_frozen_baseline
from snnhw.sim.stimulus import regression_modes
from snnhw.hw.knobs import BaselineKnobs as Knobs
from snnhw.sim.verify import verify_core

from simfixtures import batch_inputs, generate_core, seed_for

pytestmark = pytest.mark.sim


@dataclass
class Case:
    """One regression configuration: model arguments, core knobs, batch shape, default seed."""

    name: str
    model: dict[str, Any]
    knobs: Knobs
    seed: int
    batch: int = 3
    n_max: int = 4
    marks: list[Any] = field(default_factory=list)


SMALL = {"input_size": 3, "hidden_size": 4}

CASES = [
    Case("1layer-L2-F3-head", SMALL, Knobs(lanes=2, fanin=3, head_in_hw=True), 501),
    Case("2layer-L4-F4", {**SMALL, "num_layers": 2}, Knobs(lanes=4, fanin=4), 502),
    Case("w2-L1-F1", {**SMALL, "weight_bits": 2}, Knobs(lanes=1, fanin=1), 503),
    Case("w16-saturate-L4-F2-head", {**SMALL, "weight_bits": 16, "saturate": True},
         Knobs(lanes=4, fanin=2, head_in_hw=True), 504),
    # fanin = H: one recurrent chunk per unit group and two groups, so a group's first recurrent
    # chunk is also its last and the bias address moves on right after it
    Case("1layer-L2-F4-2groups", SMALL, Knobs(lanes=2, fanin=4), 506),
    # the pipelined core: with one layer mac_stages = 3 (operand registers before the multipliers
    # and product registers before the adder trees: the rebase init and the bias word two cycles
    # later; fanin = H again puts the rebase on a group's last step) and the six activation
    # stages (act_stages = 2); with two layers and the head mac_stages = 2 and the nine
    # activation stages (act_stages = 3: a register after each multiplier and each add or clip)
    Case("1layer-L2-F4-mac3-act2", SMALL, Knobs(lanes=2, fanin=4, mac_stages=3, act_stages=2), 507),
    Case("2layer-L2-F2-head-mac2-act3", {**SMALL, "num_layers": 2},
         Knobs(lanes=2, fanin=2, head_in_hw=True, mac_stages=2, act_stages=3), 508),
    # the ECP5 depth: the weight ROM's read registered (one bank at this size), operands and
    # products registered twice, the adder trees' sums registered and the bias at a group's first
    # step (mac_stages = 7), ten activation cycles (act_stages = 4: the clips' comparisons on the
    # multipliers' operands, o·tc registered)
    Case("2layer-L2-F4-mac7-act4", {**SMALL, "num_layers": 2}, Knobs(lanes=2, fanin=4, mac_stages=7, act_stages=4), 509),
    # --runslow (≈ 90 s): the realistic size
    Case("realistic-H128-D20", {"input_size": 20, "hidden_size": 128}, Knobs(lanes=8, fanin=8), 505,
         batch=2, n_max=3, marks=[pytest.mark.slow]),
    Case("slow-H32-D8-2layer-head", {"input_size": 8, "hidden_size": 32, "num_layers": 2, "head_hidden": 8},
         Knobs(lanes=8, fanin=4, head_in_hw=True), 601, batch=4, n_max=10, marks=[pytest.mark.slow]),
    *[Case(f"slow-seed{s}", SMALL, Knobs(lanes=2, fanin=2), 700 + s, batch=6, n_max=6, marks=[pytest.mark.slow])
      for s in range(3)],
]


@pytest.mark.parametrize("case", [pytest.param(c, id=c.name, marks=c.marks) for c in CASES])
def test_baseline_core_matches_golden(case: Case, simulator: str, tmp_path, request: pytest.FixtureRequest) -> None:
    seed = seed_for(request, case.seed)
    model = random_frozen_baseline(seed, **case.model)
    try:
        schedule, verilog = generate_core(model, case.knobs, tmp_path / "rtl")
    except ValueError as exc:
        pytest.skip(f"the baseline core rejects {case.knobs}: {exc}")
    x, lengths = batch_inputs(model, seed, case.batch, case.n_max)
    report = verify_core(model, schedule, verilog, x, lengths, tmp_path / "run", knobs=case.knobs, sim=simulator,
                         modes=regression_modes(seed))
    assert report.passed, f"seed={seed}: {report.message}"
    assert [c["measured"] for c in report.cycles] == [c["expected"] for c in report.cycles]
    assert len(report.cycles) == case.batch
