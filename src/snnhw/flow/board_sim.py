"""Simulate the self-checking top from the board design that was routed: the checker and core of
``board/<top>.il`` (the RTLIL the open flow synthesised) to Verilog with Yosys, then Icarus
until ``done``; optionally with one expected ROM word corrupted, which must make it fail.

The board's I/O buffers and clock pin are left out: the simulated module is ``<top>.check``
(:class:`snnhw.flow.selfcheck.SelfCheckTop`: ROMs, core, comparator), exactly as it appears in
the routed design.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

from snnhw.errors import UserError
from snnhw.flow.tools import run_tool, run_yosys

CHECK_MODULE = "check"
"""Instance name of :class:`~snnhw.flow.selfcheck.SelfCheckTop` in the board top."""

_TESTBENCH = """`timescale 1ns/1ps
module selfcheck_tb;
  reg clk = 0;
  wire done, passed, failed;
  integer cycles = 0;
  selfcheck dut (.clk(clk), .done(done), .passed(passed), .failed(failed));
  always #5 clk = ~clk;
  initial begin
    while (!done && cycles < {max_cycles}) begin @(posedge clk); cycles = cycles + 1; end
    #1 $display("SELFCHECK done=%0d passed=%0d failed=%0d cycles=%0d", done, passed, failed, cycles);
    $finish;
  end
endmodule
"""

_RESULT_RE = re.compile(r"SELFCHECK done=(\d+) passed=(\d+) failed=(\d+) cycles=(\d+)")


def corrupt_expected_word(rtlil: str, word: int) -> str:
    """``rtlil`` with bit 0 of expected word ``word`` flipped in the ``exp_rom`` initialiser."""
    match = re.search(r'parameter \\MEMID "\\\\exp_rom"\n(?:\s+parameter [^\n]*\n)*?\s+parameter \\WIDTH (\d+)\n'
                      r'(?:\s+parameter [^\n]*\n)*?(?:\s+connect \\ADDR [^\n]*\n)\s+connect \\DATA (\d+)\'([01]+)',
                      rtlil)
    if match is None:
        raise UserError("no exp_rom initialiser found in the board RTLIL")
    width, bits = int(match.group(1)), match.group(3)
    if not 0 <= word < len(bits) // width:
        raise UserError(f"expected word {word} is outside the ROM's {len(bits) // width} words")
    pos = len(bits) - 1 - word * width  # the constant is written most significant bit first
    flipped = bits[:pos] + ("1" if bits[pos] == "0" else "0") + bits[pos + 1:]
    return rtlil[:match.start(3)] + flipped + rtlil[match.end(3):]


def simulate_board_selfcheck(board_dir: Path, top: str, work: Path, *, corrupt_word: int | None = None,
                             max_cycles: int = 10_000_000) -> dict[str, Any]:
    """Simulate ``<top>.check`` of ``board_dir/<top>.il`` with Icarus until ``done``.

    Returns ``done``, ``passed``, ``failed`` (the board top's LEDs; the board top leaves the
    error count and the reset unconnected, so they are not ports here) and ``cycles`` (from the
    power-on state to ``done``). ``corrupt_word`` flips bit 0 of that expected word first.
    """
    if shutil.which("iverilog") is None or shutil.which("vvp") is None:
        raise UserError("Icarus Verilog (iverilog, vvp) is not on PATH (apt install iverilog)")
    source = board_dir / f"{top}.il"
    if not source.is_file():
        raise UserError(f"{source} is missing (build with an ECP5 board first)")
    work.mkdir(parents=True, exist_ok=True)
    rtlil = source.read_text()
    if corrupt_word is not None:
        rtlil = corrupt_expected_word(rtlil, corrupt_word)
    (work / "board.il").write_text(rtlil)
    script = (f"read_rtlil board.il; hierarchy -top {top}.{CHECK_MODULE}; "
              f"rename {top}.{CHECK_MODULE} selfcheck; proc; flatten; write_verilog -noattr selfcheck.v")
    run_yosys(script, what=f"yosys (Verilog of {top}.{CHECK_MODULE})", cwd=work, log=work / "yosys.log",
              timeout_s=1800, outputs=[work / "selfcheck.v"])
    (work / "selfcheck_tb.v").write_text(_TESTBENCH.replace("{max_cycles}", str(max_cycles)))
    run_tool(["iverilog", "-g2012", "-o", "selfcheck.vvp", "selfcheck_tb.v", "selfcheck.v"], what="iverilog",
             timeout_s=1800, cwd=work, log=work / "iverilog.log", outputs=[work / "selfcheck.vvp"])
    proc = run_tool(["vvp", "-n", "selfcheck.vvp"], what="vvp (board self-check)", timeout_s=7200, cwd=work,
                    log=work / "vvp.log")
    found = _RESULT_RE.search(proc.stdout)
    if found is None:
        raise UserError(f"the self-check simulation printed no result; see {work / 'vvp.log'}")
    done, passed, failed, cycles = (int(g) for g in found.groups())
    return {"done": bool(done), "passed": bool(passed), "failed": bool(failed), "cycles": cycles,
            "corrupt_word": corrupt_word}
