"""Build report rendering, plots and the comparison table."""

from __future__ import annotations

from pathlib import Path

import pytest

from snnhw.cli import main
from snnhw.flow.report import write_report


def sample_report(T: int = 4) -> dict:
    return {
        "cores": [{"name": "spiking", "label": "spiking core"}, {"name": "baseline", "label": "MAC baseline"}],
        "model": {"name": "har", "T": T, "hidden_size": 128, "input_size": 9, "num_layers": 1,
                  "encoding": "direct", "nonspiking_gate": "g", "weight_bits": 8},
        "accuracy": {"float_hard": 0.9, "float_spiking": 0.89, "int_spiking": 0.885, "int_baseline": 0.899,
                     "split": "test"},
        "resources": {"source": "yosys", "cores": {"spiking": {"LUT": 1000, "FF": 900, "DSP48E1": 0},
                                                   "baseline": {"LUT": 3000, "FF": 1200, "DSP48E1": 64}}},
        "latency": {"N": [128, 28], "rows": ["this model", "reference: T-MNIST rows"],
                    "model_N_source": "the har sequence length recorded in the model",
                    "cores": {"spiking": [1600, 400], "baseline": [4500, 1000]}, "serial": [6000, 1600],
                    "clock_mhz": 100.0, "clock_source": "estimate"},
        "energy": {"spiking_pj": 1000.0, "baseline_pj": 4000.0, "ratio": 4.0, "table_source": "Horowitz 2014"},
        "sparsity": {"f": 0.8, "i": 0.5, "o": 0.45, "c": 0.3, "h": 0.2},
        "verify": {"passed": True, "sequences": 4, "simulator": "icarus"},
    }


def test_report_files_and_tables(tmp_path: Path) -> None:
    files = write_report(sample_report(), tmp_path)
    md = Path(files["markdown"]).read_text()
    assert "| LUT | 1000 | 3000 |" in md and "| resource | spiking core | MAC baseline |" in md
    assert "| 90.00 % | 89.00 % | 88.50 % | 89.90 % |" in md
    assert "| 128 | this model | 1600 | 4500 | 6000 | 2.81 | 3.75 | 16.000 | 45.000 |" in md
    assert "Clock: 100.0 MHz (estimate)" in md and "Routed on" not in md
    assert "| 28 | reference: T-MNIST rows | 400 | 1000 |" in md and "N = 128 is this model's sequence length" in md
    assert "2.8–5.1×" in md and "**PASSED** on 4 sequences" in md
    for name in ("resources.png", "latency.png", "energy.png", "sparsity.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_integer_vs_float_comparison_is_a_sentence(tmp_path: Path) -> None:
    report = sample_report()
    report["accuracy"]["integer_vs_float"] = {
        "n": 2996, "correct": 2715, "reference_correct": 2734, "only_model_right": 39, "only_reference_right": 58,
        "changed": 105, "difference_points": -0.634, "interval95_points": [-1.281, 0.013], "mcnemar_p": 0.0672}
    md = Path(write_report(report, tmp_path)["markdown"]).read_text()
    assert ("Integer (spiking core) − float spiking model, sequence by sequence: -0.63 points (95 % interval "
            "-1.28 to +0.01); 105 of 2996 sequences decided differently, 39 right only under the integer model "
            "and 58 only under the float one; McNemar exact p = 0.0672.") in md
    assert "sequence by sequence" not in Path(write_report(sample_report(), tmp_path / "plain")["markdown"]).read_text()


def test_missing_sections_are_said_not_faked(tmp_path: Path) -> None:
    report = sample_report()
    del report["resources"], report["accuracy"], report["verify"]
    md = Path(write_report(report, tmp_path)["markdown"]).read_text()
    assert "resources not measured" in md and "accuracy not measured" in md and "Not run" in md


def test_compare_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_report(sample_report(2), tmp_path / "t2")
    write_report(sample_report(4), tmp_path / "t4")
    assert main(["compare", str(tmp_path / "t2"), str(tmp_path / "t4")]) == 0
    out = capsys.readouterr().out
    assert out.count("| 4500 | 100.0 | 45.0 | 128 | estimate |") == 2
    assert "| 1000 | 0 | 1600 | 100.0 | 16.0 | 3000 | 64 | 4500 |" in out
    assert main(["compare", str(tmp_path)]) == 2
    assert "is not an snnhw build directory" in capsys.readouterr().err


def test_routed_clocks_per_core_and_pnr_section(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = sample_report()
    report["latency"].update(clocks_mhz={"spiking": 32.0, "baseline": 50.0}, clock_mhz=32.0,
                             clock_source="routed Fmax of each core alone on LFE5U-85F-6BG381 (nextpnr-ecp5, open flow)")
    brief = {"fmax_mhz": 32.0, "met": False, "used": {"LUT4": 18000, "FF": 6000, "EBR": 19, "MULT18X18D": 16},
             "critical_path_ns": 31.25, "critical_path_stages": 70, "critical_path": "a → b"}
    report["pnr"] = {"device": "LFE5U-85F-6BG381", "target_mhz": 100.0,
                     "cores": {"spiking": brief, "baseline": {**brief, "fmax_mhz": 50.0}},
                     "board_top": {**brief, "met": True, "bitstream": "board/snnhw_top.bit"}}
    md = Path(write_report(report, tmp_path / "r")["markdown"]).read_text()
    # each core's latency at its own routed clock: 1600 / 32 and 4500 / 50 µs
    assert "| 128 | this model | 1600 | 4500 | 6000 | 2.81 | 3.75 | 50.000 | 90.000 |" in md
    assert "Clock: spiking core 32.0 MHz, MAC baseline 50.0 MHz (routed Fmax" in md
    assert "## Routed on LFE5U-85F-6BG381 (open flow: Yosys, nextpnr-ecp5)" in md
    assert "Source: yosys (**estimates**: Yosys `synth_xilinx -family xc7` cell counts, not placed or routed; " \
           "routed ECP5 figures in \"Routed on LFE5U-85F-6BG381\" below)." in md
    assert "| spiking core (alone) | 32.0 | 18000 | 6000 | 19 | 16 | 31.2 (70) |" in md
    assert "| MAC baseline (alone) | 50.0 |" in md and "`board/snnhw_top.bit`" in md
    assert main(["compare", str(tmp_path / "r")]) == 0
    assert "| 1600 | 32.0 | 50.0 | 3000 | 64 | 4500 | 50.0 | 90.0 | 128 | routed |" in capsys.readouterr().out


def test_timing_closure_rounds_in_the_report(tmp_path: Path) -> None:
    report = sample_report()
    brief = {"fmax_mhz": 56.4, "met": False, "used": {"LUT4": 17000, "FF": 12000, "EBR": 19, "MULT18X18D": 16},
             "critical_path_ns": 17.7, "critical_path_stages": 17, "critical_path": "a → b"}
    report["pnr"] = {"device": "LFE5U-85F-6BG381", "target_mhz": 60.0, "cores": {"spiking": brief},
                     "board_top": {**brief, "met": True, "bitstream": "board/snnhw_top.bit"}}
    stages = {"lanes": 4, "tree_stages": 1, "gate_stages": 3, "cell_stages": 4}
    report["timing"] = {"target_mhz": 60.0, "cores": {"spiking": {
        "met": False, "fmax_mhz": 58.0, "stopped": "the critical path runs through tree_stages, with no deeper stage left",
        "rounds": [{"knobs": stages, "fmax_mhz": 56.43, "met": False, "blocks": {"tree_stages": 18},
                    "deepened": "tree_stages"},
                   {"knobs": {**stages, "tree_stages": 2}, "fmax_mhz": 58.0, "met": False,
                    "blocks": {"tree_stages": 3, "gate_stages": 1}, "deepened": None}]}}}
    md = Path(write_report(report, tmp_path)["markdown"]).read_text()
    assert "### Timing closure at 60 MHz" in md
    assert "| spiking core | 0 | tree_stages=1, gate_stages=3, cell_stages=4 | 56.4 | tree_stages 18 | tree_stages |" in md
    assert ("| spiking core | 1 | tree_stages=2, gate_stages=3, cell_stages=4 | 58.0 | tree_stages 3, gate_stages 1 "
            "| the critical path runs through tree_stages, with no deeper stage left |") in md
