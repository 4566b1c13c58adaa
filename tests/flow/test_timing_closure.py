# amaranth: UnusedElaboratable=no
"""Timing closure (:mod:`snnhw.flow.timing_closure`): which knob a routed critical path deepens,
the closure loop against a stand-in router, one real ECP5 round trip on a tiny core, and the
build's ``--target-mhz`` option errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from snnhw.cli import main
from snnhw.flow import timing_closure
from snnhw.flow.ecp5 import Ecp5Device
from snnhw.flow.timing_closure import close_timing, knob_maximum, next_cut, path_blocks
from snnhw.flow.tools import ecp5_missing
from snnhw.hw.knobs import SpikingKnobs
from snnhw.hw.registry import core_spec
from snnhw.quant.frozen_io import save_frozen
from snnhw.quant.synthetic import random_frozen_spiking

needs_ecp5 = pytest.mark.skipif(ecp5_missing() is not None, reason=str(ecp5_missing()))
DEVICE = Ecp5Device("LFE5U-85F", "BG381", "6")

# the critical path nextpnr reported for the default model's spiking core at gate 3, cell 4
# (docs/open-flow.md): from the beat register through the spike selection into an adder tree
SELECTION_PATH = {
    "start": "core.layer_0.beat1_0_TRELLIS_FF_Q_5",
    "end": "core.layer_0.engine_1.tree_1_1.sum_TRELLIS_FF_Q_1",
    "cells": ["core.flags[1].valid_LUT4_D_Z.C->F"] * 5
    + ["core.layer_0.engine_1.tree_3_1.$19_CCU2C_S1_B1_LUT4_Z.B->F"] * 4
    + ["core.layer_0.engine_1.tree_1_1.$19_CCU2C_S1$CCU2_COMB1.B->FCO"] * 8,
}
NEURON_PATH = {"start": "core.layer_0.engine_0.acc_0_1_TRELLIS_FF_Q", "end": "core.layer_0.engine_0.neurons.go_TRELLIS_FF",
               "cells": ["core.layer_0.engine_0.acc_next_0_1_CCU2C.A->FCO"] * 3
               + ["core.layer_0.engine_0.neurons.v_LUT4.B->F"] * 6}


def test_the_selection_path_deepens_the_tree_stage() -> None:
    spec = core_spec("spiking")
    assert path_blocks(spec, SELECTION_PATH) == {"tree_stages": 18}  # 17 cells and the end register
    assert next_cut(spec, SpikingKnobs(gate_stages=3, cell_stages=4), SELECTION_PATH) == "tree_stages"
    # at its maximum the block has no deeper stage: nothing to add
    assert next_cut(spec, SpikingKnobs(tree_stages=2), SELECTION_PATH) is None


QUEUE_PATH = {"start": "core.flags[0].valid_TRELLIS_FF_Q", "end": "core.layer_0.wmem_0.mem_DP16KD",
              "cells": ["core.flags[0].valid_LUT4_D_Z.C->F"]
              + ["core.layer_0.queue_sequencer_0.cur_0_LUT4_Z.B->F"] * 2
              + ["core.layer_0.queue_sequencer_0.$32_CCU2C_S1_31$CCU2_COMB0.A->FCO"] * 32}
"""The spike-queue core's routed path with one sequencer stage (docs/open-flow.md): the queue
head's selection chain into the weight memories' read address."""


def test_the_queue_path_deepens_the_queue_stage() -> None:
    spec = core_spec("spiking")
    queued = SpikingKnobs(event_driven=True, event_mode="queue-shared", tree_stages=2, gate_stages=3, cell_stages=6)
    assert path_blocks(spec, QUEUE_PATH) == {"queue_stages": 34, "tree_stages": 1}
    assert next_cut(spec, queued, QUEUE_PATH) == "queue_stages"
    assert next_cut(spec, queued.replace(queue_stages=3), QUEUE_PATH) is None  # flags: tree_stages is at 2


def test_the_block_with_most_path_cells_is_deepened() -> None:
    spec = core_spec("spiking")
    assert path_blocks(spec, NEURON_PATH) == {"gate_stages": 7}
    assert next_cut(spec, SpikingKnobs(), NEURON_PATH) == "gate_stages"
    # a path through two blocks: the one holding more of its cells is deepened
    into_cell = {**NEURON_PATH, "cells": NEURON_PATH["cells"] + ["core.layer_0.engine_0.cell.sat_LUT4.A->F"] * 2}
    assert path_blocks(spec, into_cell) == {"gate_stages": 7, "cell_stages": 2}
    assert next_cut(spec, SpikingKnobs(), into_cell) == "gate_stages"
    assert next_cut(spec, SpikingKnobs(gate_stages=3), into_cell) == "cell_stages"
    assert next_cut(spec, SpikingKnobs(gate_stages=knob_maximum(spec, "gate_stages")), NEURON_PATH) is None
    assert next_cut(spec, SpikingKnobs(), {"start": "core.x", "end": "core.y", "cells": ["core.z.LUT4"]}) is None


def test_every_cut_is_a_bounded_knob_of_its_core() -> None:
    for kind in ("spiking", "baseline"):
        spec = core_spec(kind)
        for cut in spec.pipeline_cuts:
            assert knob_maximum(spec, cut.knob) >= 2, (kind, cut.knob)
    with pytest.raises(ValueError, match="no knob 'width'"):
        knob_maximum(core_spec("spiking"), "width")


def _fake_router(paths: dict[str, dict[str, Any]], fmax_of: Any) -> Any:
    """A stand-in for ``route_core``: Fmax from the generated core's knobs (read back from its
    manifest), the critical path of the block named by ``paths``."""
    def route(verilog: Path, top: str, work: Path, device: Ecp5Device, *, freq_mhz: float) -> dict[str, Any]:
        manifest = json.loads(verilog.with_name("spiking_core.manifest.json").read_text())
        knobs = SpikingKnobs.from_manifest(manifest["knobs"])
        fmax, block = fmax_of(knobs)
        return {"fmax_min_mhz": fmax, "critical_paths": [paths[block]] if block else [], "reused": False}
    return route


def test_close_timing_deepens_until_the_target_is_met(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec, model = core_spec("spiking"), random_frozen_spiking(1, input_size=3, hidden_size=4, T=2)
    knobs = spec.knobs(model, SpikingKnobs(lanes=2, fanin=2))

    def fmax_of(k: SpikingKnobs) -> tuple[float, str]:  # neurons first, then the selection
        if k.gate_stages < 3:
            return 30.0 + 10 * k.gate_stages, "neurons"
        return (50.0, "selection") if k.tree_stages == 1 else (70.0, "selection")

    monkeypatch.setattr(timing_closure, "route_core", _fake_router(
        {"neurons": NEURON_PATH, "selection": SELECTION_PATH}, fmax_of))
    res = close_timing(spec, model, knobs, tmp_path / "t", DEVICE, target_mhz=60)
    assert [r["deepened"] for r in res["rounds"]] == ["gate_stages", "gate_stages", "tree_stages", None]
    assert [r["fmax_mhz"] for r in res["rounds"]] == [40.0, 50.0, 50.0, 70.0]
    assert res["met"] is True and res["stopped"] == "met" and res["fmax_mhz"] == 70.0
    assert res["knobs"]["gate_stages"] == 3 and res["knobs"]["tree_stages"] == 2 and res["knobs"]["cell_stages"] == 1
    assert Path(res["verilog"]) == tmp_path / "t" / "r3" / "rtl" / "spiking_core.v"
    # a target above what the deepest stages reach: stops where no knob can grow, not met
    res = close_timing(spec, model, knobs, tmp_path / "u", DEVICE, target_mhz=100)
    assert res["met"] is False and "tree_stages" in res["stopped"] and "no deeper stage" in res["stopped"]
    assert len(res["rounds"]) == 4 and res["fmax_mhz"] == 70.0
    # the round limit
    res = close_timing(spec, model, knobs, tmp_path / "v", DEVICE, target_mhz=100, max_rounds=2)
    assert res["stopped"] == "stopped after 2 rounds" and len(res["rounds"]) == 2


@pytest.mark.slow  # 90 s; the tiny ECP5 board build (tests/flow/test_ecp5.py) routes real cores by default
@needs_ecp5
def test_close_timing_routes_a_tiny_core(tmp_path: Path) -> None:
    """One real round: a target no tiny core meets, so the routed critical path picks a knob to
    deepen (that the next round applies it is checked with a stand-in router above)."""
    spec, model = core_spec("spiking"), random_frozen_spiking(1, input_size=3, hidden_size=4, T=2)
    knobs = spec.knobs(model, SpikingKnobs(lanes=2, fanin=2))
    res = close_timing(spec, model, knobs, tmp_path / "t", DEVICE, target_mhz=500, max_rounds=1)
    (first,) = res["rounds"]
    assert first["fmax_mhz"] > 0 and not first["met"] and first["deepened"] in first["blocks"]
    assert res["stopped"] == "stopped after 1 rounds"
    assert json.loads((Path(first["pnr_dir"]) / "pnr.json").read_text())["fmax_min_mhz"] > 0


@pytest.mark.parametrize("extra,fragment", [
    (["--target-mhz", "60"], "board kc705 uses Vivado"),
    (["--target-mhz", "0", "--board", "ulx3s-85f"], "--target-mhz must be a positive clock in MHz"),
    (["--target-mhz", "60", "--board", "ulx3s-85f", "--no-pnr"], "cannot be combined with --no-pnr"),
])
def test_target_mhz_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str],
                                        fragment: str) -> None:
    model = save_frozen(tmp_path / "tiny.snnhw", random_frozen_spiking(1, input_size=3, hidden_size=4, T=2))
    status = main(["build", "--model", str(model), "-o", str(tmp_path / "out"), "--no-progress", *extra])
    err = capsys.readouterr().err
    assert status == 2 and err.startswith("snnhw: error: ") and err.count("\n") == 1 and fragment in err, err
    assert not (tmp_path / "out").exists()  # refused before any work


def test_the_baseline_multiplier_chain_deepens_the_activation_stages() -> None:
    """The MAC baseline's critical path at one stage each (docs/open-flow.md): from c to h through
    two multipliers; its LUTs carry no hierarchy, the end register names the activation stage."""
    from snnhw.hw.knobs import BaselineKnobs

    spec = core_spec("baseline")
    path = {"start": "core.cn_3_TRELLIS_FF_Q_5", "end": "core.hn0_11_TRELLIS_FF_Q_2",
            "cells": ["core.$1134_MULT18X18D_P9.B6->P24", "core.$1147_LUT4_Z_D_LUT4_Z_1_B_CCU2C_COUT_4$CCU2_COMB1.A->FCO",
                      "core.$1148_MULT18X18D_P9.A9->P9"]}
    assert path_blocks(spec, path) == {"act_stages": 1}
    assert next_cut(spec, BaselineKnobs(), path) == "act_stages"
    assert next_cut(spec, BaselineKnobs(act_stages=2), path) == "act_stages"
    assert next_cut(spec, BaselineKnobs(act_stages=3), path) == "act_stages"
    assert next_cut(spec, BaselineKnobs(act_stages=4), path) is None
    c_ram_path = {"start": "core.a3_group_TRELLIS_FF_Q_1", "end": "core.cp_2_TRELLIS_FF_Q_3",
                  "cells": ["core.c_ram_2.0.1.RAD0->DO1", "core.$812_LUT4_Z.A->Z"]}  # c(n−1) read from its LUT RAM
    assert path_blocks(spec, c_ram_path) == {"act_stages": 2}
    mac_path = {"start": "core.wrom.mem.0.0", "end": "core.mac.acc_3_TRELLIS_FF_Q_1",
                "cells": ["core.mac.$12_MULT18X18D.A0->P15", "core.mac.$40_CCU2C.A->FCO"]}
    assert path_blocks(spec, mac_path) == {"mac_stages": 3}
    assert next_cut(spec, BaselineKnobs(act_stages=2), mac_path) == "mac_stages"
