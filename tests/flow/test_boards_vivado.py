"""Board registry and Vivado script generation/parsing (no Vivado needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from snnhw.errors import UserError
from snnhw.flow.boards import find_board, known_boards, load_board_file
from snnhw.flow.vivado import parse_vivado_results, write_ooc_scripts


def test_bundled_kintex7_boards() -> None:
    boards = known_boards()
    assert {"kc705", "genesys2", "ax7325b"} <= set(boards)
    assert find_board("kintex7").name == "kc705"
    for name in ("kc705", "genesys2", "ax7325b"):
        assert boards[name].part == "xc7k325tffg900-2" and boards[name].flow == "vivado"
    for board in boards.values():
        assert board.clock_hz() > 0


def test_unknown_board_lists_known_ones() -> None:
    with pytest.raises(UserError, match=r"unknown board 'zedboard'; known boards: .*kc705 \(alias kintex7\)"):
        find_board("zedboard")


def test_user_board_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    board = {
        "name": "myk7",
        "platform": "amaranth_boards.kc705:KC705Platform",
        "part": "xc7k160tffg676-2",
        "clock": "clk156",
        "leds": {"done": 4, "pass": 5, "fail": 6},
    }
    (tmp_path / "myk7.json").write_text(json.dumps(board))
    monkeypatch.setenv("SNNHW_BOARDS", str(tmp_path))
    assert find_board("myk7").part == "xc7k160tffg676-2"


@pytest.mark.parametrize(
    "content, message",
    [("{", "not valid JSON"), ('{"name": "x"}', "lacks platform"), (
        '{"name": "x", "platform": "nocolon", "part": "p", "clock": "c", "leds": {}}', "module:Class")],
)
def test_malformed_board_file(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(UserError, match=message):
        load_board_file(path)


def test_ooc_scripts_are_complete(tmp_path: Path) -> None:
    paths = write_ooc_scripts(
        tmp_path, name="spiking", top="snn_lstm_core", verilog_files=[tmp_path / "spiking_core.v"],
        part="xc7k325tffg900-2", period_ns=5.0, saif_file=tmp_path / "spiking.saif",
    )
    tcl = Path(paths["tcl"]).read_text()
    assert "synth_design -top $top -part $part -mode out_of_context" in tcl
    assert "set part       xc7k325tffg900-2" in tcl
    assert "$out_dir/spiking_core.v" in tcl
    assert "spiking_vivado.json" in tcl and "read_saif" in tcl
    assert "${" not in tcl
    assert "create_clock -name clk -period 5.000" in Path(paths["xdc"]).read_text()


def test_parse_vivado_results(tmp_path: Path) -> None:
    summary = tmp_path / "s.json"
    summary.write_text(json.dumps({"top": "t", "part": "p", "period_ns": 5.0, "wns_ns": -1.25, "LUT": 10,
                                   "FF": 20, "DSP48E1": 0, "RAMB36E1": 1, "RAMB18E1": 2, "CARRY4": 3}))
    power = tmp_path / "p.rpt"
    power.write_text("| Total On-Chip Power (W)  | 0.142        |\n| Dynamic (W)              | 0.012        |\n")
    result = parse_vivado_results(summary, power)
    assert result["achieved_mhz"] == pytest.approx(1000 / 6.25)
    assert result["LUT"] == 10 and result["power_total_w"] == 0.142 and result["power_dynamic_w"] == 0.012
