"""Timing closure on ECP5: deepen a core's pipeline where the routed critical path runs.

:func:`close_timing` routes a core alone (:func:`snnhw.flow.ecp5.route_core`) at
a target clock; while the target is missed it adds one stage to the pipeline knob whose block
holds the most cells of nextpnr's critical path (the core's
:attr:`~snnhw.hw.registry.CoreSpec.pipeline_cuts`), regenerates the core and routes again. It
stops when the target is met, or when the critical path runs through no block whose knob can
still grow (reported with the path). Every stage is exact in the core's cycle formula, so the
cores it returns are verified like any other (``snnhw build --target-mhz``, ``docs/open-flow.md``).
"""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path
from typing import Any, Callable

from snnhw.flow.ecp5 import Ecp5Device, route_core
from snnhw.hw.registry import CoreSpec

MAX_ROUNDS = 8
"""Most place-and-route rounds per core (each adds one pipeline stage)."""


def knob_maximum(spec: CoreSpec, knob: str) -> int:
    """The largest value of ``spec``'s integer knob ``knob`` (its declared ``maximum``)."""
    for f in fields(spec.knobs_type):
        if f.name == knob:
            maximum = f.metadata.get("maximum")
            if maximum is None:
                raise ValueError(f"{spec.name} knob {knob} has no maximum: it cannot be a pipeline cut")
            return int(maximum)
    raise ValueError(f"the {spec.label} has no knob {knob!r}")


def path_blocks(spec: CoreSpec, path: dict[str, Any]) -> dict[str, int]:
    """Cells of a critical path (its logic cells and its end register) in each pipeline cut's
    block, by knob; blocks the path does not touch are left out."""
    names = [*path.get("cells", []), str(path.get("end") or "")]
    counts = {cut.knob: sum(1 for name in names if re.search(cut.pattern, name)) for cut in spec.pipeline_cuts}
    return {knob: n for knob, n in counts.items() if n}


def next_cut(spec: CoreSpec, knobs: Any, path: dict[str, Any]) -> str | None:
    """The knob to deepen for ``path``: of the blocks it runs through whose knob is below its
    maximum, the one holding the most of its cells (ties: the core's order); None when none."""
    blocks = path_blocks(spec, path)
    growable = [(blocks[cut.knob], -index, cut.knob) for index, cut in enumerate(spec.pipeline_cuts)
                if cut.knob in blocks and getattr(knobs, cut.knob) < knob_maximum(spec, cut.knob)]
    return max(growable)[2] if growable else None


def _path_brief(result: dict[str, Any]) -> dict[str, Any] | None:
    paths = result.get("critical_paths") or []
    if not paths:
        return None
    p = paths[0]
    return {k: p.get(k) for k in ("start", "end", "delay_ns", "logic_ns", "routing_ns", "logic_stages")}


def close_timing(spec: CoreSpec, model: Any, knobs: Any, work: Path, device: Ecp5Device, *, target_mhz: float,
                 max_rounds: int = MAX_ROUNDS, log: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """Route ``spec``'s core for ``model`` at ``target_mhz``, deepening its pipeline until it meets it.

    Args:
        spec, model: the core kind and its frozen model; knobs: resolved knobs to start from.
        work: directory; round k generates into ``work/r<k>/rtl`` and routes in ``work/r<k>/pnr``.
        device: the ECP5 part; target_mhz: the clock constraint (MHz).
        max_rounds: most routes; log: one line per round.

    Returns ``{"met", "target_mhz", "knobs" (the last round's, manifest form), "fmax_mhz",
    "stopped" (why it ended), "rounds": [{"knobs", "fmax_mhz", "met", "critical_path", "blocks",
    "deepened"}], "verilog", "pnr_dir"}`` — the last round's files are the core to build.
    """
    from snnhw.hw.generate import generate

    if not spec.pipeline_cuts:
        raise ValueError(f"the {spec.label} declares no pipeline knobs to close timing with")
    rounds: list[dict[str, Any]] = []
    stopped = f"stopped after {max_rounds} rounds"
    for k in range(max_rounds):
        rtl_dir, pnr_dir = work / f"r{k}" / "rtl", work / f"r{k}" / "pnr"
        core = generate([(model, knobs)], rtl_dir)["cores"][spec.name]
        result = route_core(Path(core["verilog"]), spec.top, pnr_dir, device, freq_mhz=target_mhz)
        fmax = float(result["fmax_min_mhz"])
        path = (result.get("critical_paths") or [{}])[0]
        record = {"knobs": knobs.to_manifest(), "fmax_mhz": round(fmax, 2), "met": fmax >= target_mhz,
                  "critical_path": _path_brief(result), "blocks": path_blocks(spec, path), "deepened": None,
                  "verilog": core["verilog"], "pnr_dir": str(pnr_dir), "reused": bool(result.get("reused"))}
        rounds.append(record)
        if record["met"]:
            stopped = "met"
            log(f"    {spec.name} round {k}: {fmax:.1f} MHz, meets {target_mhz:g} MHz")
            break
        knob = next_cut(spec, knobs, path)
        if knob is None:
            where = ", ".join(record["blocks"]) or "logic outside every pipelined block"
            stopped = f"the critical path runs through {where}, with no deeper stage left"
            log(f"    {spec.name} round {k}: {fmax:.1f} MHz < {target_mhz:g} MHz; {stopped}")
            break
        record["deepened"] = knob
        log(f"    {spec.name} round {k}: {fmax:.1f} MHz < {target_mhz:g} MHz; critical path through "
            f"{', '.join(f'{b} ({n} cells)' for b, n in record['blocks'].items())}: {knob} → {getattr(knobs, knob) + 1}")
        knobs = knobs.replace(**{knob: getattr(knobs, knob) + 1})
    last = rounds[-1]
    return {"met": last["met"], "target_mhz": target_mhz, "knobs": last["knobs"], "fmax_mhz": last["fmax_mhz"],
            "stopped": stopped, "rounds": rounds, "verilog": last["verilog"], "pnr_dir": last["pnr_dir"]}
