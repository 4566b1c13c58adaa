"""Flip-flops packed into the ECP5 multipliers (:mod:`snnhw.flow.ecp5_dsp`): a small design with
every case (registers shared by two multipliers and read by other logic, a clock-enabled
register, a constant operand, an unregistered product) is synthesised with the flow's
``synth_ecp5`` recipe, packed, and its gate-level netlists before and after simulated side by
side (Icarus, Yosys' ECP5 cell models and the multiplier model below) against the RTL."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from snnhw.flow.ecp5_dsp import pack_dsp_registers
from snnhw.flow.tools import find_yosys, run_yosys, synth_ecp5_script

DUT = """
module dut(clk, rst, en, a, b, c, p1, p2, p3, p4, p5, p6, s);
  input clk, rst, en;
  input signed [7:0] a, b, c;
  output reg signed [15:0] p1, p2, p3, p5, p6;
  output signed [15:0] p4;
  output [7:0] s;
  reg signed [7:0] a0, b0, c0, ar, br, cr, ae, be, xr;
  always @(posedge clk)
    if (rst) begin a0 <= 0; b0 <= 0; c0 <= 0; ar <= 0; br <= 0; cr <= 0; xr <= 0; p1 <= 0; p2 <= 0; p6 <= 0; end
    else begin
      a0 <= a; b0 <= b; c0 <= c; ar <= a0; br <= b0; cr <= c0; xr <= a0 + c0;
      p1 <= ar * br; p2 <= ar * cr; p6 <= xr * br;  // xr has an adder in front: it stays in the fabric
    end
  always @(posedge clk) if (rst) begin ae <= 0; be <= 0; end else if (en) begin ae <= a; be <= b; end
  always @(posedge clk) if (rst) p3 <= 0; else p3 <= ae * 8'sd77;      // constant operand
  always @(posedge clk) if (rst) p5 <= 0; else if (en) p5 <= ae * be;  // enabled: all stay in the fabric
  assign p4 = cr * br;   // product not registered: only the inputs can move
  assign s = ar + 8'd1;  // ar is also read by other logic: its flip-flops stay too
endmodule
"""

CYCLES = 200


def _mult18x18d_model() -> str:
    """A behavioural ``MULT18X18D`` for the configurations snnhw's packing writes: signed or
    unsigned A, B; each of the A, B and P registers off (``NONE``) or on ``CLK0`` with ``CE0`` and a
    synchronous reset ``RST0``..``RST3`` to 0 (Lattice TN1267, sysDSP)."""
    a = ", ".join(f"A{i}" for i in range(18))
    b = ", ".join(f"B{i}" for i in range(18))
    c = ", ".join(f"C{i}" for i in range(18))
    p = ", ".join(f"P{i}" for i in range(36))
    cat = lambda name, n: "{" + ", ".join(f"{name}{i}" for i in reversed(range(n))) + "}"  # noqa: E731
    return f"""
module MULT18X18D({a}, {b}, {c}, {p}, SIGNEDA, SIGNEDB, SOURCEA, SOURCEB,
                  CLK0, CLK1, CLK2, CLK3, CE0, CE1, CE2, CE3, RST0, RST1, RST2, RST3);
  input {a}, {b}, {c}, SIGNEDA, SIGNEDB, SOURCEA, SOURCEB;
  input CLK0, CLK1, CLK2, CLK3, CE0, CE1, CE2, CE3, RST0, RST1, RST2, RST3;
  output {p};
  parameter REG_INPUTA_CLK = "NONE", REG_INPUTA_CE = "CE0", REG_INPUTA_RST = "RST0";
  parameter REG_INPUTB_CLK = "NONE", REG_INPUTB_CE = "CE0", REG_INPUTB_RST = "RST0";
  parameter REG_INPUTC_CLK = "NONE", REG_INPUTC_CE = "CE0", REG_INPUTC_RST = "RST0";
  parameter REG_PIPELINE_CLK = "NONE", REG_PIPELINE_CE = "CE0", REG_PIPELINE_RST = "RST0";
  parameter REG_OUTPUT_CLK = "NONE", REG_OUTPUT_CE = "CE0", REG_OUTPUT_RST = "RST0";
  parameter CLK0_DIV = "ENABLED", CLK1_DIV = "ENABLED", CLK2_DIV = "ENABLED", CLK3_DIV = "ENABLED";
  parameter HIGHSPEED_CLK = "NONE", GSR = "ENABLED", CAS_MATCH_REG = "FALSE", SOURCEB_MODE = "B_SHIFT";
  parameter MULT_BYPASS = "DISABLED", RESETMODE = "SYNC";
  wire [3:0] rst = {{RST3, RST2, RST1, RST0}};
  function integer idx(input [8*4-1:0] name); idx = name[7:0] - "0"; endfunction
  wire [17:0] a_in = {cat("A", 18)}, b_in = {cat("B", 18)};
  reg [17:0] a_q = 0, b_q = 0;
  reg [35:0] p_q = 0;
  wire [17:0] a_v = REG_INPUTA_CLK == "NONE" ? a_in : a_q;
  wire [17:0] b_v = REG_INPUTB_CLK == "NONE" ? b_in : b_q;
  wire signed [36:0] a_x = SIGNEDA ? {{{{19{{a_v[17]}}}}, a_v}} : {{19'b0, a_v}};
  wire signed [36:0] b_x = SIGNEDB ? {{{{19{{b_v[17]}}}}, b_v}} : {{19'b0, b_v}};
  wire [35:0] product = a_x * b_x;
  always @(posedge CLK0) begin
    if (rst[idx(REG_INPUTA_RST)]) a_q <= 0; else if (CE0) a_q <= a_in;
    if (rst[idx(REG_INPUTB_RST)]) b_q <= 0; else if (CE0) b_q <= b_in;
    if (rst[idx(REG_OUTPUT_RST)]) p_q <= 0; else if (CE0) p_q <= product;
  end
  assign {cat("P", 36)} = REG_OUTPUT_CLK == "NONE" ? product : p_q;
endmodule
"""


TESTBENCH = """
`timescale 1ns/1ps
module tb;
  reg clk = 0, rst = 1, en = 0;
  reg signed [7:0] a = 0, b = 0, c = 0;
  wire signed [15:0] p1, p2, p3, p4, p5, p6;
  wire [7:0] s;
  dut u(.clk(clk), .rst(rst), .en(en), .a(a), .b(b), .c(c), .p1(p1), .p2(p2), .p3(p3), .p4(p4), .p5(p5), .p6(p6), .s(s));
  integer k, seed;
  initial begin
    seed = 7;
    for (k = 0; k < %(cycles)d; k = k + 1) begin
      #1 clk = 1; #1 clk = 0;
      $display("%%0d %%0d %%0d %%0d %%0d %%0d %%0d %%0d", k, p1, p2, p3, p4, p5, p6, s);
      rst = (k < 3) || ($random(seed) %% 37 == 0);
      en = $random(seed); a = $random(seed); b = $random(seed); c = $random(seed);
    end
    $finish;
  end
endmodule
"""


def _simulate(work: Path, name: str, sources: list[Path]) -> list[str]:
    tb = work / "tb.v"
    tb.write_text(TESTBENCH % {"cycles": CYCLES})
    out = work / f"{name}.vvp"
    subprocess.run(["iverilog", "-g2012", "-o", str(out), str(tb), *map(str, sources)],
                   check=True, capture_output=True, text=True)
    return subprocess.run(["vvp", "-n", str(out)], check=True, capture_output=True, text=True).stdout.splitlines()


def _netlist_verilog(work: Path, netlist: dict, name: str) -> Path:
    """The gate-level netlist as one flat Verilog module: Yosys' ECP5 cell models (``cells_sim.v``)
    and the multiplier model above put in place of the cells."""
    (work / f"{name}.json").write_text(json.dumps(netlist))
    script = (f"read_json {name}.json; read_verilog -overwrite +/ecp5/cells_sim.v; read_verilog -overwrite MULT18X18D.v; "
              f"hierarchy -top dut; proc; flatten; opt_clean; write_verilog -noattr {name}_gl.v")
    run_yosys(script, what="yosys write_verilog", cwd=work,
              log=work / f"{name}_yosys.log", timeout_s=300, outputs=[work / f"{name}_gl.v"])
    return work / f"{name}_gl.v"


needs_tools = pytest.mark.skipif(
    find_yosys() is None or shutil.which("iverilog") is None,
    reason="needs Yosys (with its ECP5 cell models) and Icarus Verilog")


@pytest.fixture(scope="module")
def synthesised(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    work = tmp_path_factory.mktemp("ecp5_dsp")
    (work / "dut.v").write_text(DUT)
    run_yosys(synth_ecp5_script(["dut.v"], "dut", stat_json="stat.json", netlist_json="netlist.json"),
              what="yosys synth_ecp5", cwd=work, log=work / "synth.log", timeout_s=600,
              outputs=[work / "netlist.json"])
    (work / "MULT18X18D.v").write_text(_mult18x18d_model())
    return work, json.loads((work / "netlist.json").read_text())


def _mult_params(netlist: dict) -> list[dict[str, str]]:
    top = next(m for m in netlist["modules"].values() if str(m.get("attributes", {}).get("top", "0")).strip("0 "))
    return [{k: str(v) for k, v in c.get("parameters", {}).items() if k.startswith("REG_") and k.endswith("_CLK")}
            for c in top["cells"].values() if c["type"] == "MULT18X18D"]


@needs_tools
def test_packed_netlist_simulates_like_the_rtl(synthesised: tuple[Path, dict]) -> None:
    work, netlist = synthesised
    packed = copy.deepcopy(netlist)
    counts = pack_dsp_registers(packed)
    # six multipliers: p1 and p2 take both registers, p3 (enabled, constant operand) and p6
    # (logic in front of an operand register) the output register only, p4 (unregistered
    # product) the input registers only, p5 (enabled registers) none
    assert counts["multipliers"] == 6
    assert counts["inputs_packed"] == 3 and counts["outputs_packed"] == 4
    regs = sorted(tuple(sorted(k for k, v in p.items() if v == "CLK0")) for p in _mult_params(packed))
    assert regs == sorted([("REG_INPUTA_CLK", "REG_INPUTB_CLK", "REG_OUTPUT_CLK")] * 2
                          + [("REG_OUTPUT_CLK",)] * 2 + [("REG_INPUTA_CLK", "REG_INPUTB_CLK"), ()])
    rtl = _simulate(work, "rtl", [work / "dut.v"])
    assert len(rtl) == CYCLES and len({line.split(" ", 1)[1] for line in rtl}) > CYCLES // 2  # outputs vary
    before = _simulate(work, "before", [_netlist_verilog(work, netlist, "before")])
    after = _simulate(work, "after", [_netlist_verilog(work, packed, "after")])
    assert before == rtl
    assert after == rtl


@needs_tools
def test_a_wrong_packing_is_caught(synthesised: tuple[Path, dict]) -> None:
    """The comparison above fails when the input flip-flops are moved in but the pins keep
    reading their Q (one cycle too late): the check can fail."""
    work, netlist = synthesised
    wrong = copy.deepcopy(netlist)
    top = next(m for m in wrong["modules"].values() if str(m.get("attributes", {}).get("top", "0")).strip("0 "))
    clk = top["netnames"]["clk"]["bits"][0]
    for cell in top["cells"].values():
        if cell["type"] == "MULT18X18D":
            cell.setdefault("parameters", {}).update({"REG_INPUTA_CLK": "CLK0", "REG_INPUTB_CLK": "CLK0"})
            cell["connections"].update({"CLK0": [clk], "CE0": ["1"], "RST0": ["0"]})
            cell["port_directions"].update({"CLK0": "input", "CE0": "input", "RST0": "input"})
    rtl = _simulate(work, "rtl", [work / "dut.v"])
    assert _simulate(work, "wrong", [_netlist_verilog(work, wrong, "wrong")]) != rtl


def test_netlist_without_a_single_top_is_refused() -> None:
    with pytest.raises(ValueError, match="top modules"):
        pack_dsp_registers({"modules": {"a": {"cells": {}}, "b": {"cells": {}}}})
