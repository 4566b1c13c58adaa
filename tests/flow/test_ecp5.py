"""The open ECP5 flow: devices, board files, the timing wrapper, nextpnr's report, and (with the
YoWASP tools installed) a real route of a small design and a tiny build to a bitstream."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from snnhw.errors import UserError
from snnhw.flow.board_sim import corrupt_expected_word, simulate_board_selfcheck
from snnhw.flow.boards import LedSpec, find_board, load_board_file
from snnhw.flow.ecp5 import Ecp5Device, board_device, module_ports, parse_nextpnr_report, route_core, timing_wrapper
from snnhw.flow.tools import ecp5_missing, synth_ecp5_script
from snnhw.sim.runner import simulator_missing

needs_ecp5 = pytest.mark.skipif(ecp5_missing() is not None, reason=str(ecp5_missing()))

COUNTER = """
module counter(clk, rst, en, q);
  input clk;
  input rst;
  input en;
  output [15:0] q;
  reg [15:0] q = 16'h0000;
  always @(posedge clk) if (rst) q <= 0; else if (en) q <= q + 1;
endmodule
"""


def test_device_switches_and_part_parsing() -> None:
    device = Ecp5Device.from_part("LFE5U-85F-6BG381C")
    assert device == Ecp5Device("LFE5U-85F", "BG381", "6")
    assert device.part == "LFE5U-85F-6BG381"
    assert device.nextpnr_args() == ["--85k", "--package", "CABGA381", "--speed", "6"]
    assert Ecp5Device.from_part("LFE5UM5G-85F-8BG554C").nextpnr_args()[0] == "--um5g-85k"
    for bad in ("xc7k325tffg900-2", "LFE5U-85F"):
        with pytest.raises(UserError, match="cannot read ECP5 part"):
            Ecp5Device.from_part(bad)
    with pytest.raises(UserError, match="unknown ECP5 device"):
        Ecp5Device("LFE5U-99F", "BG381", "6")
    with pytest.raises(UserError, match="speed grade"):
        Ecp5Device("LFE5U-85F", "BG381", "9")


def test_bundled_ecp5_boards() -> None:
    for name in ("ulx3s-85f", "ulx3s-45f", "ecpix5-85", "orangecrab-85f", "versa-ecp5"):
        board = find_board(name)
        assert board.flow == "ecp5", name
        board_device(board)  # part and platform agree
    assert find_board("ecp5").name == "ulx3s-85f"
    assert find_board("kintex7").flow == "vivado"
    assert find_board("orangecrab").leds["pass"] == LedSpec("rgb_led", 0, "g")


def test_board_file_led_specs_and_part_mismatch(tmp_path: Path) -> None:
    raw = json.loads(find_board("ulx3s-85f").source.read_text())
    path = tmp_path / "mine.json"
    path.write_text(json.dumps({**raw, "leds": {"done": 0, "pass": "rgb_led:1:g", "fail": "led:2"}}))
    board = find_board(str(path))  # a .json path selects the file itself
    assert board.leds == {"done": LedSpec("led", 0), "pass": LedSpec("rgb_led", 1, "g"), "fail": LedSpec("led", 2)}
    assert board.to_dict()["leds"] == {"done": 0, "pass": "rgb_led:1:g", "fail": 2}
    path.write_text(json.dumps({**raw, "leds": {"done": 0, "pass": "green", "fail": 2}}))
    with pytest.raises(UserError, match="an LED is an index"):
        load_board_file(path)
    path.write_text(json.dumps({**raw, "part": "LFE5U-45F-6BG381C"}))
    with pytest.raises(UserError, match="disagrees with its platform"):
        board_device(load_board_file(path))


def test_timing_wrapper_registers_every_port() -> None:
    assert module_ports(COUNTER, "counter") == [("input", "clk", 1), ("input", "rst", 1), ("input", "en", 1),
                                                ("output", "q", 16)]
    name, text = timing_wrapper(COUNTER, "counter")
    assert name == "counter_ooc"
    assert "rst_q <= rst;" in text and "en_q <= en;" in text and "q_q <= q_w;" in text
    # the registered reset reaches the core through a global buffer
    assert "DCCA rst_buffer (.CLKI(rst_q), .CE(1'b1), .CLKO(rst_g));" in text
    assert "counter core (.clk(clk), .rst(rst_g), .en(en_q), .q(q_w));" in text
    # one pin per port: a wide input is shifted in, a wide output XOR-reduced
    assert "  output q;" in text and "  reg [15:0] q_q;" in text and "  assign q = ^q_q;" in text
    name, text = timing_wrapper(COUNTER.replace("input en;", "input [2:0] en;"), "counter")
    assert "  input en;" in text and "  reg [2:0] en_q;" in text and "en_q <= {en_q[1:0], en};" in text
    with pytest.raises(UserError, match="module other not found"):
        timing_wrapper(COUNTER, "other")
    with pytest.raises(UserError, match="no 1-bit input 'clk'"):
        timing_wrapper(COUNTER.replace("clk", "clock"), "counter")


def _report(achieved: float, constraint: float = 100.0) -> dict:
    step = {"from": {"cell": "a", "port": "Q"}, "to": {"cell": "b", "port": "A"}}
    return {
        "fmax": {"clk": {"achieved": achieved, "constraint": constraint}},
        "utilization": {"TRELLIS_COMB": {"used": 30, "available": 300}, "TRELLIS_FF": {"used": 16, "available": 300},
                        "DP16KD": {"used": 0, "available": 10}, "DCCA": {"used": 1, "available": 56}},
        "critical_paths": [{"from": "posedge clk", "to": "posedge clk", "path": [
            {**step, "type": "clk-to-q", "delay": 0.5},
            {**step, "type": "routing", "delay": 1.25, "net": "q[0]"},
            {**step, "type": "logic", "delay": 0.75, "from": {"cell": "add", "port": "A0"},
             "to": {"cell": "add", "port": "F"}},
            {**step, "type": "routing", "delay": 0.5, "net": "q_next[3]"},
            {**step, "type": "setup", "delay": 0.25}]}],
    }


def test_parse_nextpnr_report(tmp_path: Path) -> None:
    path = tmp_path / "report.json"
    path.write_text(json.dumps(_report(123.5)))
    summary = parse_nextpnr_report(path)
    assert summary["fmax_mhz"] == {"clk": 123.5} and summary["fmax_min_mhz"] == 123.5 and summary["met"] is True
    assert summary["utilisation"]["LUT4"] == {"used": 30, "available": 300, "fraction": 0.1}
    assert summary["utilisation"]["FF"]["used"] == 16 and "DCCA" not in summary["utilisation"]
    (path_summary,) = summary["critical_paths"]
    assert path_summary["delay_ns"] == 3.25 and path_summary["logic_ns"] == 1.5 and path_summary["routing_ns"] == 1.75
    assert path_summary["cells"] == ["add.A0->F"] and path_summary["nets"] == ["q[0]", "q_next[3]"]
    path.write_text(json.dumps(_report(80.0)))
    assert parse_nextpnr_report(path)["met"] is False
    report = _report(90.0)
    report["fmax"] = {"$glbnet$clk$TRELLIS_IO_IN": report["fmax"]["clk"]}  # a pin on a global network
    path.write_text(json.dumps(report))
    assert parse_nextpnr_report(path)["fmax_mhz"] == {"clk": 90.0}
    path.write_text(json.dumps({"fmax": {}}))
    with pytest.raises(UserError, match="no clock"):
        parse_nextpnr_report(path)
    path.write_text("not json")
    with pytest.raises(UserError, match="cannot read the nextpnr report"):
        parse_nextpnr_report(path)


def test_ecp5_recipe_replaces_abc9() -> None:
    script = synth_ecp5_script(["top.il", "core.v"], "top", stat_json="s.json", netlist_json="n.json")
    assert script.startswith("read_rtlil top.il; read_verilog core.v; synth_ecp5 -top top -run :coarse; proc; "
                             "memory_collect a:snnhw_role=constants; memory_map a:snnhw_role=constants; "
                             "synth_ecp5 -top top -run coarse:map_luts;")
    assert "abc -lut 4" in script and "abc9" not in script and script.endswith("write_json n.json")


@needs_ecp5
def test_route_core_small_design(tmp_path: Path) -> None:
    source = tmp_path / "counter.v"
    source.write_text(COUNTER)
    device = Ecp5Device("LFE5U-85F", "BG381", "6")
    first = route_core(source, "counter", tmp_path / "work", device, freq_mhz=100)
    assert first["reused"] is False and first["fmax_min_mhz"] > 100
    assert first["utilisation"]["FF"]["used"] >= 16 + 3  # the counter and the wrapper's input registers
    assert first["utilisation"]["LUT4"]["used"] > 0 and first["cells"]["TRELLIS_FF"] >= 19
    stored = json.loads((tmp_path / "work" / "pnr.json").read_text())
    assert stored["fmax_min_mhz"] == first["fmax_min_mhz"] and stored["wrapper"] == "counter_ooc"
    assert route_core(source, "counter", tmp_path / "work", device, freq_mhz=100)["reused"] is True
    assert route_core(source, "counter", tmp_path / "work", device, freq_mhz=150)["reused"] is False


@needs_ecp5
def test_route_failure_is_one_line(tmp_path: Path) -> None:
    source = tmp_path / "counter.v"
    source.write_text(COUNTER.replace("q <= q + 1", "q <= q + "))
    with pytest.raises(UserError, match=r"yosys synth_ecp5 on counter.v failed .*see .*synth.log"):
        route_core(source, "counter", tmp_path / "work", Ecp5Device("LFE5U-85F", "BG381", "6"), freq_mhz=100)


@needs_ecp5
def test_tiny_build_routes_each_core_and_writes_a_bitstream(tmp_path: Path) -> None:
    from test_build import tiny_options

    from snnhw.flow.build import run_build

    out = tmp_path / "out"
    assert run_build(tiny_options(tmp_path, board="ulx3s-85f")).exit_code == 0
    record = json.loads((out / "pnr.json").read_text())
    assert record["status"] == "ok" and record["device"] == "LFE5U-85F-6BG381"
    for kind in ("spiking", "baseline"):
        core = record["cores"][kind]
        assert core["fmax_min_mhz"] > 0 and core["utilisation"]["LUT4"]["used"] > 0, kind
        assert record["fmax_mhz"][kind] == core["fmax_min_mhz"]
        assert core["critical_paths"] and core["wrapper"].endswith("_ooc")
    top = record["board_top"]
    assert top["met"] is True and top["constraint_mhz"] and top["fmax_min_mhz"] >= 25.0
    assert (out / "board" / "snnhw_top.bit").stat().st_size == top["bitstream_bytes"] > 0
    assert (out / "board" / "build_snnhw_top_open.sh").is_file()
    assert not (out / "vivado").exists()  # an ECP5 board writes no Vivado scripts
    board = json.loads((out / "board.json").read_text())
    assert board["board"]["flow"] == "ecp5" and "build_snnhw_top_open.sh" in board["how_to_build"]
    # the routed design's checker and core, simulated: pass with the golden ROM, fail with one word flipped
    if simulator_missing("icarus") is None:
        good = simulate_board_selfcheck(out / "board", "snnhw_top", tmp_path / "sim_good")
        assert good["done"] and good["passed"] and not good["failed"]
        bad = simulate_board_selfcheck(out / "board", "snnhw_top", tmp_path / "sim_bad", corrupt_word=1)
        assert bad["done"] and bad["failed"] and not bad["passed"]


RTLIL_ROM = """  cell $meminit_v2 $29
    parameter \\MEMID "\\\\exp_rom"
    parameter \\ABITS 0
    parameter \\WIDTH 3
    parameter \\WORDS 2
    parameter \\PRIORITY 0
    connect \\ADDR {  }
    connect \\DATA 6'101100
"""


def test_corrupt_expected_word() -> None:
    assert "6'101101" in corrupt_expected_word(RTLIL_ROM, 0)
    assert "6'100100" in corrupt_expected_word(RTLIL_ROM, 1)
    with pytest.raises(UserError, match="outside the ROM's 2 words"):
        corrupt_expected_word(RTLIL_ROM, 2)
    with pytest.raises(UserError, match="no exp_rom"):
        corrupt_expected_word(RTLIL_ROM.replace("exp_rom", "in_rom"), 0)


def test_router1_timeout_falls_back_to_router2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A router1 run that does not finish within its budget is run again with router2 (and the
    summary says which one finished); a router2 timeout is the run's one-line error."""
    from snnhw.flow import ecp5
    from snnhw.flow.tools import ToolTimeout

    calls: list[tuple[str, float]] = []

    def fake_run_tool(command: list[str], *, what: str, timeout_s: float, **_: object) -> None:
        router = command[command.index("--router") + 1]
        calls.append((router, timeout_s))
        if router in hang:
            raise ToolTimeout(f"{what} did not finish within {timeout_s:.0f} s")

    monkeypatch.setattr(ecp5, "run_tool", fake_run_tool)
    monkeypatch.setattr(ecp5, "find_nextpnr_ecp5", lambda: ["nextpnr-ecp5"])
    args = dict(freq_mhz=100, seed=1, report="r.json", log="p.log", extra=[], what="nextpnr-ecp5 on x")
    device = Ecp5Device("LFE5U-85F", "BG381", "6")
    hang = {"router1"}
    assert ecp5._nextpnr(tmp_path, device, "n.json", timeout_s=3600, **args) == "router2"
    assert [c[0] for c in calls] == ["router1", "router2"] and calls[0][1] == ecp5.ROUTER1_BUDGET_S
    assert calls[1][1] <= 3600  # what is left of the run's limit
    calls.clear()
    hang = set()
    assert ecp5._nextpnr(tmp_path, device, "n.json", timeout_s=3600, **args) == "router1" and len(calls) == 1
    hang = {"router1", "router2"}
    with pytest.raises(UserError, match=r"nextpnr-ecp5 on x \(router2\) did not finish"):
        ecp5._nextpnr(tmp_path, device, "n.json", timeout_s=3600, **args)


def test_best_of_seeds_and_seed_dirs(tmp_path: Path) -> None:
    from snnhw.flow.ecp5 import best_of_seeds, seed_dirs

    runs = {1: {"fmax_min_mhz": 99.9, "seed": 1}, 2: {"fmax_min_mhz": 107.1, "seed": 2},
            3: {"fmax_min_mhz": 107.1, "seed": 3}}
    best = best_of_seeds(runs)
    assert best["seed"] == 2 and best["fmax_min_mhz"] == 107.1  # a tie keeps the lower seed
    assert best["seeds"] == {"1": 99.9, "2": 107.1, "3": 107.1}
    assert best_of_seeds({1: runs[1]})["seeds"] == {"1": 99.9}
    assert seed_dirs(tmp_path / "spiking", [1, 2, 3]) == {
        1: tmp_path / "spiking", 2: tmp_path / "spiking-seed2", 3: tmp_path / "spiking-seed3"}
    for bad in ([], [1, 1]):
        with pytest.raises(ValueError, match="distinct seeds"):
            seed_dirs(tmp_path, bad)


def _fake_summary(fmax: float, seed: int) -> dict:
    """What the ``pnr`` step and the report read of a ``route_core`` / ``build_bitstream`` summary."""
    return {"fmax_min_mhz": fmax, "met": fmax >= 100, "seed": seed, "reused": False, "pnr_seconds": 1.0,
            "utilisation": {"LUT4": {"used": 10}}, "critical_paths": [], "bitstream": "snnhw_top.bit"}


def test_seed_sweep_keeps_each_cores_fastest_route(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--pnr-seeds 3``: every core routed with seeds 1–3 in its own directory, the fastest kept
    (its directory the record's artefact), every seed's Fmax in ``pnr.json`` and ``report.md``."""
    from test_build import tiny_options

    from snnhw.flow import ecp5, tools
    from snnhw.flow.build import run_build

    fmax = {("snn_lstm_core", 1): 99.5, ("snn_lstm_core", 2): 106.4, ("snn_lstm_core", 3): 104.0,
            ("mac_lstm_core", 1): 112.0, ("mac_lstm_core", 2): 101.0, ("mac_lstm_core", 3): 109.0}
    routed: list[tuple[str, str, int]] = []

    def fake_route(verilog: Path, top: str, work: Path, device: object, *, freq_mhz: float, seed: int = 1) -> dict:
        routed.append((top, work.name, seed))
        work.mkdir(parents=True, exist_ok=True)
        (work / "pnr.json").write_text("{}")
        return _fake_summary(fmax[top, seed], seed)

    monkeypatch.setattr(ecp5, "route_core", fake_route)
    monkeypatch.setattr(ecp5, "build_bitstream", lambda *a, **k: _fake_summary(40.0, 1))
    monkeypatch.setattr(tools, "ecp5_missing", lambda: None)
    out = tmp_path / "out"
    assert run_build(tiny_options(tmp_path, board="ulx3s-85f", pnr_seeds=3)).exit_code == 0
    assert sorted(routed) == sorted((top, f"{kind}{suffix}", s) for top, kind in (("snn_lstm_core", "spiking"),
                                    ("mac_lstm_core", "baseline")) for s, suffix in ((1, ""), (2, "-seed2"), (3, "-seed3")))
    record = json.loads((out / "pnr.json").read_text())
    assert record["fmax_mhz"] == {"spiking": 106.4, "baseline": 112.0}
    assert record["cores"]["spiking"]["seeds"] == {"1": 99.5, "2": 106.4, "3": 104.0}
    assert record["artefacts"]["spiking_pnr"] == "pnr/spiking-seed2/pnr.json"
    assert record["artefacts"]["baseline_pnr"] == "pnr/baseline/pnr.json"
    md = (out / "report.md").read_text()
    assert "spiking wavefront core (alone): 99.5 (seed 1), 106.4 (seed 2), 104.0 (seed 3); MAC baseline" in md
    with pytest.raises(UserError, match="--pnr-seeds must be"):
        run_build(tiny_options(tmp_path / "zero", board="ulx3s-85f", pnr_seeds=0))
