"""Generated Verilog passes ``verilator --lint-only -Wall`` (documented waivers) and maps its
declared multipliers to DSP48E1 slices in Yosys ``synth_xilinx`` (the spiking core in spikes
mode to none)."""

from __future__ import annotations

from pathlib import Path

import pytest

from snnhw.flow.lint import VERILATOR_WAIVERS, verilator_lint, yosys_cell_counts
from snnhw.flow.tools import find_verilator, find_yosys
from snnhw.hw.generate import generate
from snnhw.hw.knobs import BaselineKnobs, SpikingKnobs
from snnhw.hw.registry import core_spec
from snnhw.quant.synthetic import random_frozen_baseline, random_frozen_spiking

BASELINE_TOP = core_spec("baseline").top
SPIKING_TOP = core_spec("spiking").top

needs_verilator = pytest.mark.skipif(find_verilator() is None, reason="verilator not installed")
needs_yosys = pytest.mark.skipif(find_yosys() is None, reason="no Yosys installed")


@pytest.fixture(scope="module")
def baseline_rtl(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """A tiny baseline core (D = 2, H = 2, lanes = fanin = 1: 12 declared multipliers)."""
    out = tmp_path_factory.mktemp("baseline_rtl")
    model = random_frozen_baseline(0, input_size=2, hidden_size=2, num_classes=2)
    summary = generate([(model, BaselineKnobs(lanes=1, fanin=1))], out)
    return Path(summary["cores"]["baseline"]["verilog"]), summary


@needs_verilator
def test_baseline_verilog_lints_clean(baseline_rtl):
    verilog, _ = baseline_rtl
    result = verilator_lint(verilog, BASELINE_TOP)
    assert result.ok, result.output[-3000:]
    unwaived = verilator_lint(verilog, BASELINE_TOP, waivers={})  # the check can fail
    assert not unwaived.ok and "%Warning-" in unwaived.output


def test_every_waiver_is_justified():
    assert VERILATOR_WAIVERS and all(len(reason) > 40 for reason in VERILATOR_WAIVERS.values())


@pytest.mark.yosys
@needs_yosys
def test_baseline_multipliers_map_to_dsp48(baseline_rtl, tmp_path: Path):
    import json

    verilog, summary = baseline_rtl
    manifest = json.loads(Path(summary["cores"]["baseline"]["manifest"]).read_text())
    declared = manifest["core"]["multipliers_total"]
    cells = yosys_cell_counts(verilog, BASELINE_TOP, tmp_path)
    assert declared == 12
    assert cells["dsp48e1"] == declared, cells["cells"]
    assert (tmp_path / f"{BASELINE_TOP}.synth.json").is_file()


@pytest.mark.slow
@pytest.mark.yosys
@needs_yosys
def test_spiking_core_in_spikes_mode_has_no_dsp(tmp_path: Path):
    model = random_frozen_spiking(0, input_size=3, hidden_size=4, T=2, num_classes=3, encoding="rate")
    summary = generate([(model, SpikingKnobs(lanes=2, fanin=2, input_mode="spikes"))], tmp_path / "rtl")
    cells = yosys_cell_counts(summary["cores"]["spiking"]["verilog"], SPIKING_TOP, tmp_path / "synth")
    assert cells["dsp48e1"] == 0, cells["cells"]
    assert cells["num_cells"] > 100  # it did synthesise the core
