"""Verilog generation of the registered cores, with manifests.

``generate`` takes frozen models with their knobs, finds each model's core kind in the registry
(:mod:`snnhw.hw.registry`), builds the Amaranth component, converts it with
``amaranth.back.verilog.convert`` under the spec's stable top-module name (``snn_lstm_core``,
``mac_lstm_core``, ...) and writes the spec's file (``spiking_core.v``, ``baseline_core.v``)
with a ``*.manifest.json`` beside each, plus ``generate.json`` summarising the run.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from snnhw.hw.registry import CoreSpec, spec_for_model


def convert(component: Any, top: str) -> str:
    """The Verilog text of ``component`` with top module ``top`` (no source locations)."""
    from amaranth.back import verilog

    return verilog.convert(component, name=top, emit_src=False)


def generate(
    cores: list[tuple[Any, Any]],
    out_dir: str | Path,
    *,
    sources: dict[str, dict[str, Any]] | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Write the Verilog and manifests of the requested cores into ``out_dir``.

    Args:
        cores: ``(frozen model, knobs)`` pairs; each model's core kind comes from the registry,
            its knobs are that kind's knob class (or None: all automatic; knobs of another kind
            pass the fields they share, e.g. one ``SpikingKnobs`` for both cores). At most one
            model per kind.
        out_dir: output directory (created).
        sources: optional provenance per core kind (e.g. the source file path and its SHA-256),
            copied into the manifests.
        progress: show a tqdm bar over the cores.

    Every component is built and converted in memory (so knob errors, ``ValueError``/``TypeError``,
    surface) before any file is written. Returns the summary written to ``out_dir/generate.json``: per core kind the
    Verilog and manifest paths, top name, seconds spent, Verilog size (bytes) and the knobs.
    """
    from tqdm import tqdm

    from snnhw.hw.manifest import build_manifest, write_manifest

    if not cores:
        raise ValueError("nothing to generate: give at least one model")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"output path {out} exists and is not a directory")
    jobs: list[tuple[CoreSpec, Any, Any]] = []
    for model, knobs in cores:
        spec = spec_for_model(model)
        if any(job[0] is spec for job in jobs):
            raise ValueError(f"two {spec.label} models given")
        resolved = spec.knobs(model, knobs)
        spec.schedule(model, resolved)  # every knob error surfaces here, before any component or file
        jobs.append((spec, model, resolved))
    converted = []
    for spec, model, resolved in tqdm(jobs, desc="generate", unit="core", disable=not progress):
        component = spec.component(model, resolved)
        description = component.describe()
        start = time.perf_counter()
        text = convert(component, spec.top)
        converted.append((spec, model, resolved, component, description, text, time.perf_counter() - start))
    out.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {"out_dir": str(out), "cores": {}}
    for spec, model, knobs, component, description, text, seconds in converted:
        vpath = out / spec.verilog_file
        vpath.write_text(text)
        manifest = build_manifest(spec=spec, component=component, description=description, knobs=knobs,
                                  schedule=component.schedule, model=model,
                                  source=(sources or {}).get(spec.name), generation_seconds=seconds)
        mpath = write_manifest(out / spec.manifest_file, manifest)
        summary["cores"][spec.name] = {"top": spec.top, "verilog": str(vpath), "manifest": str(mpath),
                                       "seconds": round(seconds, 3), "verilog_bytes": len(text.encode()),
                                       "knobs": knobs.to_manifest()}
    (out / "generate.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary
