"""Yosys estimates: the logic-depth walk on hand-made netlists, and one real tiny synthesis."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from snnhw.flow.logic_depth import logic_depth
from snnhw.flow.yosys import synth_xc7, yosys_missing

OUT, IN = "output", "input"


def _lut(name: str, inputs: list, out: int) -> tuple[str, dict]:
    ports = {f"I{i}": [bit] for i, bit in enumerate(inputs)}
    return name, {"type": f"LUT{len(inputs)}", "connections": {**ports, "O": [out]},
                  "port_directions": {**{p: IN for p in ports}, "O": OUT}}


def _ff(name: str, d: int, q: int) -> tuple[str, dict]:
    return name, {"type": "FDRE", "connections": {"D": [d], "Q": [q], "C": [99], "CE": ["1"], "R": ["0"]},
                  "port_directions": {"D": IN, "Q": OUT, "C": IN, "CE": IN, "R": IN}}


def _carry4(name: str, s: list, di: list, o: list, co: list, ci: object = "0") -> tuple[str, dict]:
    return name, {"type": "CARRY4", "connections": {"S": s, "DI": di, "O": o, "CO": co, "CI": [ci], "CYINIT": ["0"]},
                  "port_directions": {"S": IN, "DI": IN, "O": OUT, "CO": OUT, "CI": IN, "CYINIT": IN}}


def _netlist(*cells: tuple[str, dict]) -> dict:
    return {"modules": {"top": {"cells": dict(cells)}}}


def test_lut_chain_between_registers() -> None:
    # ff0.Q=2 → lut a (3) → lut b (4) → lut c (5) → ff1.D; a side branch of depth 1 does not count.
    net = _netlist(_ff("ff0", 6, 2), _lut("a", [2], 3), _lut("b", [3, 2], 4), _lut("c", [4, 3, 2], 5),
                   _ff("ff1", 5, 6), _lut("side", [2], 7), _ff("ff2", 7, 8))
    result = logic_depth(net, "top")
    assert result["logic_depth"] == 3
    assert [step["cell"] for step in result["path"]] == ["a", "b", "c"]
    assert result["path_types"] == {"LUT1": 1, "LUT2": 1, "LUT3": 1}


def test_carry4_modelled_per_bit_no_false_loop() -> None:
    # O[0] feeds, through a LUT, S[2] of the same CARRY4: ltp would call this a loop.
    net = _netlist(_ff("ff0", 20, 1),
                   _carry4("c0", [1, "0", 11, "0"], ["0"] * 4, [10, 12, 13, 14], [15, 16, 17, 18]),
                   _lut("fb", [10], 11), _ff("ff1", 14, 20))
    result = logic_depth(net, "top")
    assert result["logic_depth"] == 3  # c0 (bit 0) → fb → c0 (bit 3)
    assert [step["type"] for step in result["path"]] == ["CARRY4", "LUT1", "CARRY4"]


def test_carry_chain_counts_each_carry4() -> None:
    net = _netlist(_ff("ff0", 40, 1),
                   _carry4("c0", [1, 1, 1, 1], ["0"] * 4, [2, 3, 4, 5], [6, 7, 8, 9]),
                   _carry4("c1", [1, 1, 1, 1], ["0"] * 4, [10, 11, 12, 13], [14, 15, 16, 17], ci=9),
                   _carry4("c2", [1, 1, 1, 1], ["0"] * 4, [20, 21, 22, 23], [24, 25, 26, 27], ci=17),
                   _ff("ff1", 23, 40))
    assert logic_depth(net, "top")["logic_depth"] == 3


def test_real_loop_and_missing_module_rejected() -> None:
    with pytest.raises(ValueError, match="combinational loop"):
        logic_depth(_netlist(_lut("a", [3], 2), _lut("b", [2], 3)), "top")
    with pytest.raises(ValueError, match="not in the netlist"):
        logic_depth(_netlist(), "other")
    assert logic_depth(_netlist(_ff("ff0", 1, 2)), "top")["logic_depth"] == 0


VERILOG = """
module tiny(input clk, input [7:0] a, input [7:0] b, output reg [8:0] s);
  reg [7:0] ra, rb;
  always @(posedge clk) begin ra <= a; rb <= b; s <= ra + rb; end
endmodule
"""


@pytest.mark.skipif(yosys_missing() is not None, reason=str(yosys_missing()))
def test_synth_xc7_figures_and_reuse(tmp_path: Path) -> None:
    source = tmp_path / "tiny.v"
    source.write_text(VERILOG)
    first = synth_xc7(source, "tiny", tmp_path / "work")
    res = first["resources"]
    assert res["FF"] == 25 and res["CARRY4"] == 3 and res["DSP48E1"] == 0
    assert res["logic_depth"] == 4 and first["critical_path"] == {"LUT2": 1, "CARRY4": 3}
    assert first["reused"] is False and not (tmp_path / "work" / "netlist.json").exists()
    again = synth_xc7(source, "tiny", tmp_path / "work")
    assert again["reused"] is True and again["resources"] == res
    source.write_text(VERILOG.replace("ra + rb", "ra - rb"))
    changed = synth_xc7(source, "tiny", tmp_path / "work")
    assert changed["reused"] is False
    assert json.loads((tmp_path / "work" / "yosys.json").read_text())["verilog_sha256"] == changed["verilog_sha256"]


@pytest.mark.skipif(yosys_missing() is not None, reason=str(yosys_missing()))
def test_build_yosys_step_runs_in_background_and_reuses(tmp_path: Path) -> None:
    from test_build import tiny_options

    from snnhw.flow.build import run_build

    out = tmp_path / "out"
    assert run_build(tiny_options(tmp_path, yosys=True)).exit_code == 0
    record = json.loads((out / "yosys.json").read_text())
    assert record["status"] == "ok" and record["overlapped_with"] == ["verify", "board"]
    for kind in ("spiking", "baseline"):
        res = record["results"][kind]
        assert res["reused"] is False and res["resources"]["LUT"] > 0 and res["resources"]["logic_depth"] > 0
    report = json.loads((out / "report.json").read_text())
    assert report["resources"]["cores"]["spiking"]["LUT"] == record["results"]["spiking"]["resources"]["LUT"]
    assert run_build(tiny_options(tmp_path, yosys=True)).exit_code == 0
    again = json.loads((out / "yosys.json").read_text())
    assert all(again["results"][kind]["reused"] for kind in ("spiking", "baseline"))


def test_group_cells_counts_distributed_ram_in_lut_sites() -> None:
    """A RAM64M is four LUT sites, a RAM64X1D two, an SRL one: LUTRAM counts sites, apart from LUT."""
    from snnhw.flow.explore import PARTS, cost_of
    from snnhw.flow.yosys import group_cells

    res = group_cells({"LUT6": 10, "LUT2": 5, "RAM64M": 3, "RAM64X1D": 2, "SRLC32E": 1, "FDRE": 7})
    assert (res["LUT"], res["LUTRAM"], res["FF"]) == (15, 3 * 4 + 2 * 2 + 1, 7)
    fraction, binding, lut_eq = cost_of({**res, "DSP48E1": 0}, PARTS["xc7k325t"], 200.0)
    assert binding == "LUT" and fraction == (15 + 17) / PARTS["xc7k325t"]["LUT"] and lut_eq == 15 + 17


def _threshold_design(constants_in_memory: bool) -> str:
    """Verilog of a registered LIF threshold and reset (``s = v > θ``, ``u = v − θ·s``) beside a
    256-word weight ROM asked for block RAM; θ, σ inline or read from a constant memory."""
    import numpy as np
    from amaranth.back import verilog
    from amaranth.hdl import Const, Module, Mux, Signal, signed

    from snnhw.hw.memories import PackedRom, constant_words

    m = Module()
    v, u, s, a = Signal(signed(12)), Signal(signed(12)), Signal(), Signal(8)
    if constants_in_memory:
        theta, sigma = constant_words(m, "constants", [37, -5], 12)
    else:
        theta, sigma = Const(37, signed(12)), Const(-5, signed(12))
    m.submodules.rom = rom = PackedRom(np.arange(256 * 4).reshape(256, 4) % 97 - 48, 8)
    w = Signal(32)
    m.d.comb += [rom.addr.eq(a), rom.en.eq(1), w.eq(rom.data.as_value())]
    m.d.sync += [s.eq(v > theta), u.eq(Mux(v > theta, v - theta, v + sigma))]
    return verilog.convert(m, ports=[v, u, s, a, w], name="top")


@pytest.mark.skipif(yosys_missing() is not None, reason=str(yosys_missing()))
def test_constant_memories_synthesise_as_inline_constants(tmp_path: Path) -> None:
    cells = {}
    for inline in (True, False):
        source = tmp_path / f"{'inline' if inline else 'memory'}.v"
        source.write_text(_threshold_design(constants_in_memory=not inline))
        cells[inline] = synth_xc7(source, "top", tmp_path / source.stem)["cells"]
    assert "snnhw_role" in (tmp_path / "memory.v").read_text()
    assert cells[True] == cells[False], cells
    assert cells[True].get("RAMB18E1", 0) + cells[True].get("RAMB36E1", 0) == 1, "the weight ROM stays a block RAM"


def test_nobram_script_drops_block_ram_requests() -> None:
    """``-nobram`` in both halves of the script, and the rom_style / ram_style = "block" attributes
    (which Yosys honours even under -nobram) unset before the memories are mapped."""
    from snnhw.flow.tools import NO_BLOCK_RAM_STYLE, synth_xilinx_script

    plain = synth_xilinx_script("a.v", "top", stat_json="s.json")
    script = synth_xilinx_script("a.v", "top", stat_json="s.json", nobram=True)
    assert "-nobram" not in plain and NO_BLOCK_RAM_STYLE not in plain
    commands = script.split("; ")
    assert [c.startswith("synth_xilinx") and " -nobram " in c for c in commands].count(True) == 2
    assert commands.index(NO_BLOCK_RAM_STYLE) == len(commands) - 3  # just before "-run prepare:"
    assert synth_xilinx_script("a.v", "top", stat_json="s.json", nodsp=True, nobram=True).count(
        "-nodsp -nobram") == 2


@pytest.mark.skipif(yosys_missing() is not None, reason=str(yosys_missing()))
def test_nobram_synthesis_removes_a_forced_block_rom(tmp_path: Path) -> None:
    """A 256-word ROM asked for block RAM (rom_style = "block") becomes LUTs with ``nobram``; the
    flag is part of the reuse key (the same work directory synthesises afresh without it)."""
    source = tmp_path / "rom.v"
    source.write_text(_threshold_design(constants_in_memory=False))
    nobram = synth_xc7(source, "top", tmp_path / "work", nobram=True)
    res = nobram["resources"]
    assert nobram["reused"] is False and res["RAMB18E1"] == res["RAMB36E1"] == 0
    assert res["LUT"] + res["LUTRAM"] > 64  # 8 Kib of ROM (its words compress: not 128 RAM64X1S)
    plain = synth_xc7(source, "top", tmp_path / "work")
    assert plain["reused"] is False and plain["resources"]["RAMB18E1"] + plain["resources"]["RAMB36E1"] == 1
