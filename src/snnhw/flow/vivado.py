"""Vivado scripts for the out-of-context core runs, and running/parsing them when Vivado exists.

Without ``vivado`` on PATH nothing here runs a tool: :func:`write_ooc_scripts` only writes the
TCL/XDC files (from ``rtl_templates/``), and the build report marks the Vivado figures as not
measured. With Vivado and ``--vivado``, :func:`run_vivado` runs a script in batch mode and
:func:`parse_vivado_results` reads the JSON summary the script writes plus the power report.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from string import Template
from typing import Any

from snnhw.assets import templates_dir
from snnhw.errors import UserError

TEMPLATES = templates_dir()
"""The Vivado TCL and XDC templates: ``rtl_templates/`` of a checkout, installed as
``snnhw.assets_templates``."""


def render_template(template: str, **values: Any) -> str:
    """Fill ``rtl_templates/<template>`` (``string.Template`` syntax; ``$$`` is a literal ``$``)."""
    path = TEMPLATES / template
    if not path.is_file():
        raise UserError(f"template {path} is missing (is this a complete snnhw installation?)")
    return Template(path.read_text()).substitute({k: str(v) for k, v in values.items()})


def write_ooc_scripts(
    out_dir: Path,
    *,
    name: str,
    top: str,
    verilog_files: list[Path],
    part: str,
    period_ns: float,
    saif_file: Path | None = None,
    saif_strip_path: str = "",
) -> dict[str, str]:
    """Write ``<name>_ooc.tcl`` and ``<name>_ooc.xdc`` into ``out_dir``; returns their paths.

    Args:
        name: file stem and report prefix (e.g. ``spiking``).
        top: the core's top module name.
        verilog_files: the core's Verilog sources (absolute or relative to ``out_dir``).
        part: Vivado part, e.g. ``xc7k325tffg900-2``.
        period_ns: target clock period in ns.
        saif_file: switching activity from simulation for ``report_power`` (optional).
        saif_strip_path: instance path prefix to strip when reading the SAIF.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    xdc = out_dir / f"{name}_ooc.xdc"
    tcl = out_dir / f"{name}_ooc.tcl"
    xdc.write_text(render_template("ooc_clock.xdc", period_ns=f"{period_ns:.3f}"))
    tcl.write_text(
        render_template(
            "ooc_synth.tcl",
            script_name=tcl.name,
            top=top,
            part=part,
            period_ns=f"{period_ns:.3f}",
            saif_file=str(saif_file) if saif_file else "",
            saif_strip_path=saif_strip_path or top,
            verilog_files=" ".join(f"$out_dir/{Path(f).name}" for f in verilog_files),
            xdc_file=f"$out_dir/{xdc.name}",
            name=name,
        )
    )
    return {"tcl": str(tcl), "xdc": str(xdc)}


def vivado_available() -> str | None:
    """Path of ``vivado`` on PATH, or None."""
    return shutil.which("vivado")


def run_vivado(script: Path, *, log: Path, timeout_s: float = 4 * 3600) -> None:
    """Run ``vivado -mode batch -source script`` in the script's folder; raises UserError on failure."""
    exe = vivado_available()
    if exe is None:
        raise UserError("vivado is not on PATH; run without --vivado (Yosys estimates only)")
    with open(log, "w") as fh:
        proc = subprocess.run(
            [exe, "-mode", "batch", "-nojournal", "-log", str(log.with_suffix(".vivado.log")), "-source", script.name],
            cwd=script.parent,
            stdout=fh,
            stderr=subprocess.STDOUT,
            timeout=timeout_s,
        )
    if proc.returncode != 0:
        raise UserError(f"vivado failed on {script} (exit {proc.returncode}); see {log}")


_POWER_RE = re.compile(r"\|\s*Total On-Chip Power \(W\)\s*\|\s*([0-9.]+)")
_DYNAMIC_RE = re.compile(r"\|\s*Dynamic \(W\)\s*\|\s*([0-9.]+)")


def parse_vivado_results(summary_json: Path, power_report: Path | None = None) -> dict[str, Any]:
    """Utilisation, timing (achieved clock) and power of one out-of-context run.

    The achieved clock is ``1000 / (period − WNS)`` MHz (WNS < 0 lowers it, WNS > 0 raises it).
    """
    try:
        summary = json.loads(Path(summary_json).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"cannot read Vivado summary {summary_json} ({exc})") from None
    period = float(summary["period_ns"])
    wns = float(summary["wns_ns"])
    result: dict[str, Any] = {
        key: summary[key] for key in ("LUT", "FF", "DSP48E1", "RAMB36E1", "RAMB18E1", "CARRY4") if key in summary
    }
    result.update(period_ns=period, wns_ns=wns, achieved_mhz=1000.0 / (period - wns))
    if power_report is not None and Path(power_report).is_file():
        text = Path(power_report).read_text()
        total, dynamic = _POWER_RE.search(text), _DYNAMIC_RE.search(text)
        if total:
            result["power_total_w"] = float(total.group(1))
        if dynamic:
            result["power_dynamic_w"] = float(dynamic.group(1))
    return result
