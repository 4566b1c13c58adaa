"""Static checks of generated Verilog: Verilator lint and a quick Yosys 7-series cell count.

* :func:`verilator_lint` runs ``verilator --lint-only -Wall`` with the waivers of
  :data:`VERILATOR_WAIVERS` (each one justified there and in ``docs/hw-baseline-core.md``); a
  core passes when Verilator exits 0.
* :func:`yosys_cell_counts` runs the flow's one synthesis recipe
  (:func:`snnhw.flow.tools.synth_xilinx_script`: ``synth_xilinx -family xc7 -noiopad -flatten``
  and ``stat -json``) and returns the cell counts (LUT*, FDRE, CARRY4, DSP48E1,
  RAMB18E1/RAMB36E1, ...): the tests' check that declared multipliers, and only they, become
  DSP48E1. Unlike :func:`snnhw.flow.yosys.synth_xc7` it keeps no netlist, computes no logic
  depth and reuses nothing.

The tools are found by :mod:`snnhw.flow.tools` (:func:`~snnhw.flow.tools.find_verilator`,
:func:`~snnhw.flow.tools.find_yosys` return ``None`` when absent, so callers and tests can
skip cleanly).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from snnhw.errors import UserError
from snnhw.flow.tools import (
    VERILATOR_INSTALL,
    find_verilator,
    read_stat_cells,
    require_yosys,
    run_tool,
    run_yosys,
    synth_xilinx_script,
)

VERILATOR_WAIVERS: dict[str, str] = {
    "DECLFILENAME": "one file holds the top module and all its submodules, and the top module's name "
                    "(mac_lstm_core, snn_lstm_core) is the stable interface name, not the file name",
    "UNUSEDSIGNAL": "Amaranth keeps full-width intermediate nets (products, sums, slices of packed "
                    "ROM words); the bits an assignment truncates are unused by design",
    "WIDTHEXPAND": "Yosys's Verilog backend compares and adds operands of different widths "
                   "(e.g. `x == 1'h1`); Verilog's sizing rules extend them exactly as the RTLIL "
                   "semantics that Amaranth produced, so the value is the simulated one",
    "WIDTHTRUNC": "the same backend writes `x == 0` as `!x` on a vector and truncates wide "
                  "intermediate nets on assignment; both are the intended Amaranth semantics",
    "PROCASSINIT": "registers carry their reset value as a Verilog initialiser (the FPGA power-on "
                   "value) and are assigned in an always block; that is intended",
    "CASEINCOMPLETE": "Yosys emits process `case` statements without a default where the "
                      "unlisted values keep the default assigned before the case (no latch)",
}
"""Verilator ``-Wall`` warnings switched off for generated cores, with the reason for each."""


@dataclass
class LintResult:
    """Outcome of :func:`verilator_lint`: ``ok`` (exit status 0), the command and the output."""

    ok: bool
    returncode: int
    command: list[str]
    output: str


def verilator_lint(verilog: str | Path, top: str, *, waivers: dict[str, str] | None = None,
                   timeout: float = 600, log: str | Path | None = None) -> LintResult:
    """``verilator --lint-only -Wall`` on one file with ``-Wno-<code>`` per waiver.

    Lint findings are the result (``ok`` False, the warnings in ``output``), not an error; with
    ``log`` the output is also written there. Raises ``UserError`` when Verilator is absent
    (check :func:`~snnhw.flow.tools.find_verilator` first to skip) or does not finish in time.
    """
    found = find_verilator()
    if found is None:
        raise UserError(f"verilator not found ({VERILATOR_INSTALL})")
    exe, env = found
    waivers = VERILATOR_WAIVERS if waivers is None else waivers
    command = [*exe, "--lint-only", "-Wall", *(f"-Wno-{code}" for code in waivers), "--top-module", top, str(verilog)]
    proc = run_tool(command, what=f"verilator --lint-only on {verilog}", timeout_s=timeout, env=env,
                    log=Path(log) if log is not None else None, check=False)
    return LintResult(proc.returncode == 0, proc.returncode, command, proc.stdout + proc.stderr)


def yosys_cell_counts(verilog: str | Path, top: str, work_dir: str | Path, *, timeout: float = 1800) -> dict[str, Any]:
    """Synthesise for 7-series and return ``{"cells": {type: count}, "num_cells": n, "dsp48e1": n, ...}``.

    Writes ``<top>.yosys.log``, ``<top>.stat.json`` (Yosys's own) and ``<top>.synth.json``
    (the returned summary) into ``work_dir``, and copies the Verilog there when it lies
    elsewhere (Yosys is given relative names only). Raises ``UserError`` (one line, naming the
    log) when no Yosys is found or synthesis fails.
    """
    yosys = require_yosys()
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    source = Path(verilog)
    if source.resolve().parent != work.resolve():
        shutil.copyfile(source, work / source.name)
    log = work / f"{top}.yosys.log"
    stat = work / f"{top}.stat.json"
    stat.unlink(missing_ok=True)  # so a run that writes none cannot pass off an old one
    script = synth_xilinx_script(source.name, top, stat_json=stat.name)
    run_yosys(script, what=f"yosys on {verilog}", cwd=work, log=log, timeout_s=timeout, outputs=[stat], yosys=yosys)
    cells, num_cells = read_stat_cells(stat)
    summary = {"top": top, "verilog": str(verilog), "tool": yosys[0], "cells": cells,
               "num_cells": num_cells, "dsp48e1": cells.get("DSP48E1", 0), "log": str(log), "stat_json": str(stat)}
    (work / f"{top}.synth.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary
