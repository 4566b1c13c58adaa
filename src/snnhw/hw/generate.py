# amaranth: UnusedElaboratable=no
"""Verilog generation of the spiking core and the MAC baseline core, with manifests.

``generate`` builds each requested core, converts it with ``amaranth.back.verilog.convert``
under a stable top-module name (``snn_lstm_core``, ``mac_lstm_core``) and writes
``<top>.v``-style files ``spiking_core.v`` / ``baseline_core.v`` with a
``*.manifest.json`` beside each, plus ``generate.json`` summarising the run.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from snnhw.errors import UserError
from snnhw.quant.frozen import FrozenBaseline, FrozenSpiking

SPIKING_TOP = "snn_lstm_core"
BASELINE_TOP = "mac_lstm_core"
SPIKING_FILE = "spiking_core.v"
BASELINE_FILE = "baseline_core.v"


def _convert(component: Any, top: str) -> str:
    from amaranth.back import verilog

    return verilog.convert(component, name=top, emit_src=False)


def build_baseline_core(model: FrozenBaseline, *, lanes: int, fanin: int, head_in_hw: bool) -> Any:
    """A :class:`~snnhw.hw.baseline_core.BaselineCore`; bad knobs raise :class:`UserError`."""
    from snnhw.hw.baseline_core import BaselineCore

    if not isinstance(model, FrozenBaseline):
        raise UserError(f"the baseline model must be a MAC baseline, not a {type(model).__name__}")
    try:
        return BaselineCore(model, lanes=lanes, fanin=fanin, head_in_hw=head_in_hw)
    except ValueError as exc:
        raise UserError(f"baseline core: {exc}") from None


def build_spiking_core(model: FrozenSpiking, *, lanes: int, fanin: int, engines: int | None, event_driven: bool,
                       input_mode: str | None, head_in_hw: bool, trace: bool = False) -> Any:
    """A ``SpikingCore`` (``trace``: the debug configuration with the trace port); bad knobs raise
    :class:`UserError`."""
    from snnhw.hw.spiking_core import SpikingCore

    if not isinstance(model, FrozenSpiking):
        raise UserError(f"the golden model must be a spiking model, not a {type(model).__name__}")
    try:
        return SpikingCore(model, lanes=lanes, fanin=fanin, engines=engines, event_driven=event_driven,
                           input_mode=input_mode, head_in_hw=head_in_hw, trace=trace)
    except ValueError as exc:
        raise UserError(f"spiking core: {exc}") from None


def generate(
    spiking: FrozenSpiking | None,
    baseline: FrozenBaseline | None,
    out_dir: str | Path,
    *,
    lanes: int,
    fanin: int,
    engines: int | None = None,
    event_driven: bool = False,
    input_mode: str | None = None,
    head_in_hw: bool = False,
    trace: bool = False,
    sources: dict[str, dict[str, Any]] | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Write the Verilog and manifests of the requested cores into ``out_dir``.

    Args:
        spiking: the frozen spiking model (→ ``spiking_core.v``, top ``snn_lstm_core``) or None.
        baseline: the frozen MAC baseline (→ ``baseline_core.v``, top ``mac_lstm_core``) or None.
        out_dir: output directory (created).
        lanes, fanin: hidden units in parallel and synapses per lane per cycle (both cores).
        engines, event_driven, input_mode: spiking core knobs (see ``SpikingCore``).
        head_in_hw: put the FC head in hardware (both cores).
        trace: spiking core only: the debug configuration with the ``trace`` stream (per-cell
            gate values; see ``docs/hw-spiking-core.md``). Off, the Verilog is unchanged.
        sources: optional provenance per core ("spiking"/"baseline"), e.g. the source file path
            and its SHA-256, copied into the manifests.
        progress: show a tqdm bar over the cores.

    Returns the summary written to ``out_dir/generate.json``: per core the Verilog and
    manifest paths, top name, seconds spent and Verilog size (bytes).
    """
    from tqdm import tqdm

    from snnhw.hw.manifest import build_manifest, write_manifest

    if spiking is None and baseline is None:
        raise UserError("nothing to generate: give a spiking model, a baseline model or both")
    if spiking is None and input_mode not in (None, "direct"):
        raise UserError(f"input mode {input_mode!r} is for the spiking core; the MAC baseline takes direct input only")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise UserError(f"output path {out} exists and is not a directory")
    jobs = []
    if spiking is not None:
        jobs.append(("spiking", spiking, SPIKING_TOP, SPIKING_FILE))
    if baseline is not None:
        jobs.append(("baseline", baseline, BASELINE_TOP, BASELINE_FILE))
    # Build every core first so that knob errors surface before any file is written.
    cores = {}
    for kind, model, _, _ in jobs:
        if kind == "spiking":
            cores[kind] = build_spiking_core(model, lanes=lanes, fanin=fanin, engines=engines,
                                             event_driven=event_driven, input_mode=input_mode, head_in_hw=head_in_hw,
                                             trace=trace)
        else:
            cores[kind] = build_baseline_core(model, lanes=lanes, fanin=fanin, head_in_hw=head_in_hw)
    out.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {"out_dir": str(out), "cores": {}}
    for kind, model, top, filename in tqdm(jobs, desc="generate", unit="core", disable=not progress):
        core = cores[kind]
        description = core.describe()
        start = time.perf_counter()
        text = _convert(core, top)
        seconds = time.perf_counter() - start
        vpath = out / filename
        vpath.write_text(text)
        knobs = dict(description.get("knobs", {}))
        manifest = build_manifest(top=top, verilog_file=filename, component=core, description=description,
                                  knobs=knobs, cycle_formula=core.cycle_formula(), model=model, source=(sources or {}).get(kind),
                                  generation_seconds=seconds)
        mpath = write_manifest(out / filename.replace(".v", ".manifest.json"), manifest)
        summary["cores"][kind] = {"top": top, "verilog": str(vpath), "manifest": str(mpath),
                                  "seconds": round(seconds, 3), "verilog_bytes": len(text.encode())}
    (out / "generate.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary
