"""The JSON manifest written beside every generated Verilog core.

A manifest records what a testbench, a board flow or a person needs without reading the
Verilog: the core kind, the top module and file, every port (name as in the Verilog, direction,
width), the knobs, the cycle formula as text and as the schedule's parameters, the core's own
description (multiplier use, widths), the model's content hash and the generation time. Format
``snnhw-core-manifest`` version 1 (``docs/hw-interface.md``).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
from amaranth.hdl import Shape
from amaranth.lib import wiring

from snnhw import __version__

MANIFEST_FORMAT = "snnhw-core-manifest"
MANIFEST_VERSION = 1


def _feed(digest: "hashlib._Hash", value: Any) -> None:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        digest.update(type(value).__name__.encode())
        for f in dataclasses.fields(value):
            if f.name in ("scales", "meta"):
                continue  # float references and provenance: not part of the hardware
            digest.update(f.name.encode())
            _feed(digest, getattr(value, f.name))
    elif isinstance(value, np.ndarray):
        arr = np.ascontiguousarray(value, dtype=np.int64)
        digest.update(repr(arr.shape).encode())
        digest.update(arr.tobytes())
    elif isinstance(value, dict):
        for key in sorted(value):
            digest.update(repr(key).encode())
            _feed(digest, value[key])
    elif isinstance(value, (list, tuple)):
        digest.update(b"[")
        for item in value:
            _feed(digest, item)
        digest.update(b"]")
    else:
        digest.update(repr(value).encode())


def model_hash(model: Any) -> str:
    """SHA-256 (hex) of a frozen model's integer content (every array, width and parameter;
    the float ``scales`` and the ``meta`` provenance are left out)."""
    digest = hashlib.sha256()
    _feed(digest, model)
    return digest.hexdigest()


def component_ports(component: wiring.Component) -> list[dict[str, Any]]:
    """The Verilog ports of a component converted at top level: ``clk``, ``rst``, then every
    signature member as ``<path joined by "__">`` with its direction ("in"/"out") and width."""
    ports: list[dict[str, Any]] = [
        {"name": "clk", "direction": "in", "width": 1},
        {"name": "rst", "direction": "in", "width": 1},
    ]
    for path, member, _ in component.signature.flatten(component):
        ports.append({
            "name": "__".join(str(p) for p in path),
            "direction": "in" if member.flow == wiring.In else "out",
            "width": Shape.cast(member.shape).width,
        })
    return ports


def build_manifest(*, spec: Any, component: wiring.Component, description: dict[str, Any], knobs: Any,
                   schedule: Any, model: Any, source: dict[str, Any] | None,
                   generation_seconds: float) -> dict[str, Any]:
    """Assemble the manifest dictionary of one generated core.

    ``spec``: its :class:`~snnhw.hw.registry.CoreSpec`; ``knobs``: the resolved knobs;
    ``schedule``: its schedule object, written twice: ``cycle_formula`` (text for people) and
    ``schedule`` (:meth:`params`, the machine-readable parameters of the formula).
    """
    return {
        "format": MANIFEST_FORMAT,
        "version": MANIFEST_VERSION,
        "core_kind": spec.name,
        "top": spec.top,
        "verilog": spec.verilog_file,
        "ports": component_ports(component),
        "knobs": knobs.to_manifest(),
        "cycle_formula": schedule.formula(),
        "schedule": schedule.params(),
        "core": description,
        "source_model": {"sha256": model_hash(model), "kind": type(model).__name__, **(source or {})},
        "generated_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "generation_seconds": round(generation_seconds, 3),
        "snnhw_version": __version__,
    }


def write_manifest(path: Path, manifest: dict[str, Any]) -> Path:
    """Write ``manifest`` as indented JSON (numbers from NumPy converted to plain ints)."""
    path.write_text(json.dumps(manifest, indent=1, default=_plain) + "\n")
    return path


def _plain(value: Any) -> Any:
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON-able: {value!r}")
