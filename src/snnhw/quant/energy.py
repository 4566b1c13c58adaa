"""Operation-count energy model: the golden model's counters × a per-operation energy table.

The default table (``snnhw/data_files/energy_45nm.json``) holds Horowitz's 45 nm figures
(ISSCC 2014) and states its source, how widths are interpolated, and which entries are
assumptions. A user may pass their own table file with the same structure
(:func:`load_energy_table`); a malformed one raises :class:`~snnhw.errors.UserError`.

Energy of one op entry (see :mod:`snnhw.quant.counters`), in pJ:

* ``add`` / ``cmp`` of b bits: ``E_add(b)``, piecewise linear in b through (0, 0) and the table
  points, extended with the last segment's slope;
* ``mult`` of a×b bits: ``E_mult`` piecewise linear in the product a·b through (0, 0) and the
  points (w·w, E(w));
* ``mux`` of b bits: ``b · per_bit``;
* ``read`` of c words of b bits from a memory of S bytes: ``c · b / word_bits · E_word(S)``, E_word log-log
  interpolated in S between the table points and clamped outside;
* ``reg_write``: not priced (counted; Horowitz gives no register figure).

:func:`energy_report` sums them per inference for the spiking model (each schedule) and the
MAC baseline, and puts the ratio beside the paper's.
"""

from __future__ import annotations

import json
import math
from importlib import resources
from pathlib import Path
from typing import Any

from snnhw.errors import UserError

TABLE_FORMAT = "snnhw-energy-table"
TABLE_VERSION = 1

PAPER_ENERGY_RATIO = {"direct": (2.8, 5.1), "poisson": (1.8, 3.5)}
"""Datta et al.: spiking LSTM energy is 2.8–5.1× (direct) / 1.8–3.5× (Poisson) below the
non-spiking LSTM (post place-and-route, Kintex-7, compute only: weight and membrane memory
traffic excluded)."""

COMPUTE_OPS = ("add", "mult", "cmp", "mux")


def default_table_path() -> Path:
    """Path of the packaged 45 nm table."""
    return Path(str(resources.files("snnhw") / "data_files" / "energy_45nm.json"))


def _points(table: dict[str, Any], key: str, where: str) -> list[tuple[float, float]]:
    """Validated ``[[x, E], ...]`` points (x > 0 increasing, E > 0)."""
    entry = table.get(key)
    if not isinstance(entry, dict) or not isinstance(entry.get("points"), list) or not entry["points"]:
        raise UserError(f"{where}: entry {key!r} needs a non-empty 'points' list")
    out: list[tuple[float, float]] = []
    for point in entry["points"]:
        if (not isinstance(point, (list, tuple)) or len(point) != 2
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in point)):
            raise UserError(f"{where}: {key} point {point!r} is not a [size, pJ] number pair")
        x, e = float(point[0]), float(point[1])
        if not (x > 0 and e > 0 and math.isfinite(x) and math.isfinite(e)):
            raise UserError(f"{where}: {key} point {point!r} must be positive and finite")
        if out and x <= out[-1][0]:
            raise UserError(f"{where}: {key} points must have increasing sizes")
        out.append((x, e))
    return out


def validate_energy_table(table: Any, where: str = "energy table") -> dict[str, Any]:
    """Check an energy table's structure and numbers; returns it or raises ``UserError``."""
    if not isinstance(table, dict):
        raise UserError(f"{where}: not a JSON object")
    if table.get("format") != TABLE_FORMAT or table.get("version") != TABLE_VERSION:
        raise UserError(f"{where}: expected format {TABLE_FORMAT!r} version {TABLE_VERSION}")
    if table.get("unit") != "pJ":
        raise UserError(f"{where}: unit must be 'pJ'")
    if not isinstance(table.get("source"), str) or not table["source"].strip():
        raise UserError(f"{where}: a 'source' string is required (where the figures come from)")
    _points(table, "add", where)
    _points(table, "mult", where)
    _points(table, "read", where)
    word = table["read"].get("word_bits")
    if not isinstance(word, int) or isinstance(word, bool) or word <= 0:
        raise UserError(f"{where}: read.word_bits must be a positive integer")
    cmp_entry = table.get("cmp")
    if not isinstance(cmp_entry, dict) or cmp_entry.get("as") != "add":
        raise UserError(f"{where}: cmp must be {{\"as\": \"add\"}}")
    per_bit = table.get("mux", {}).get("per_bit") if isinstance(table.get("mux"), dict) else None
    if not isinstance(per_bit, (int, float)) or isinstance(per_bit, bool) or not per_bit >= 0:
        raise UserError(f"{where}: mux.per_bit must be a non-negative number")
    return table


def load_energy_table(path: str | Path | None = None) -> dict[str, Any]:
    """Load and validate an energy table (default: the packaged 45 nm Horowitz table)."""
    target = Path(path) if path is not None else default_table_path()
    try:
        text = target.read_text(encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot read energy table {target}: {exc.strerror}") from None
    try:
        table = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"energy table {target} is not valid JSON (line {exc.lineno})") from None
    return validate_energy_table(table, str(target))


def _piecewise(points: list[tuple[float, float]], x: float) -> float:
    """Piecewise-linear through (0, 0) and ``points``, last slope beyond the last point."""
    knots = [(0.0, 0.0)] + points
    for (x0, e0), (x1, e1) in zip(knots, knots[1:]):
        if x <= x1:
            return e0 + (x - x0) * (e1 - e0) / (x1 - x0)
    (x0, e0), (x1, e1) = knots[-2], knots[-1]
    return e1 + (x - x1) * (e1 - e0) / (x1 - x0)


def add_energy(table: dict[str, Any], bits: int) -> float:
    """pJ of one ``bits``-bit integer add (or comparison)."""
    return _piecewise(_points(table, "add", "energy table"), float(bits))


def mult_energy(table: dict[str, Any], bits_a: int, bits_b: int) -> float:
    """pJ of one ``bits_a`` × ``bits_b`` integer multiply (linear in the width product)."""
    points = [(w * w, e) for w, e in _points(table, "mult", "energy table")]
    return _piecewise(points, float(bits_a * bits_b))


def word_read_energy(table: dict[str, Any], memory_bytes: int) -> float:
    """pJ of one ``word_bits`` read from a memory of ``memory_bytes`` (log-log, clamped)."""
    points = _points(table, "read", "energy table")
    size = float(max(memory_bytes, 1))
    if size <= points[0][0]:
        return points[0][1]
    for (x0, e0), (x1, e1) in zip(points, points[1:]):
        if size <= x1:
            frac = (math.log(size) - math.log(x0)) / (math.log(x1) - math.log(x0))
            return math.exp(math.log(e0) + frac * (math.log(e1) - math.log(e0)))
    return points[-1][1]


def op_energy(table: dict[str, Any], entry: dict[str, Any]) -> float | None:
    """pJ of one counter entry (all its ``count`` operations); None when the op is not priced."""
    op, bits, count = entry["op"], entry["bits"], entry["count"]
    if op in ("add", "cmp"):
        return count * add_energy(table, bits)
    if op == "mult":
        return count * mult_energy(table, bits[0], bits[1])
    if op == "mux":
        return count * bits * float(table["mux"]["per_bit"])
    if op == "read":
        return count * bits / table["read"]["word_bits"] * word_read_energy(table, entry["memory_bytes"])
    return None


def _schedule_energy(ops: list[dict[str, Any]], head: list[dict[str, Any]], table: dict[str, Any],
                     sequences: int) -> dict[str, Any]:
    """Energy per inference of one schedule: compute, weight reads, state reads, head, totals."""
    parts = {"compute_pj": 0.0, "weight_read_pj": 0.0, "state_read_pj": 0.0, "head_pj": 0.0}
    by_name: dict[str, float] = {}
    unpriced: dict[str, float] = {}
    per = 1.0 / max(sequences, 1)
    for in_head, entry in [(False, e) for e in ops] + [(True, e) for e in head]:
        energy = op_energy(table, entry)
        if energy is None:
            unpriced[entry["op"]] = unpriced.get(entry["op"], 0.0) + entry["count"] * per
            continue
        energy *= per
        if in_head:
            parts["head_pj"] += energy
        elif entry["op"] == "read":
            parts["state_read_pj" if entry["name"] == "state_read" else "weight_read_pj"] += energy
        else:
            parts["compute_pj"] += energy
        key = f"L{entry['layer']}.{entry['name']}" if entry["layer"] else entry["name"]
        by_name[key] = by_name.get(key, 0.0) + energy
    parts["compute_with_head_pj"] = parts["compute_pj"] + parts["head_pj"]
    parts["total_pj"] = parts["compute_with_head_pj"] + parts["weight_read_pj"] + parts["state_read_pj"]
    parts["by_op"] = by_name
    parts["unpriced_per_inference"] = unpriced
    return parts


SYNAPSE_WEIGHT_READS = ("input_weight_read", "recurrent_weight_read")
"""Counter entries of the weights a spiking layer reads per synapse accumulation."""


def with_weight_reads(ops: list[dict[str, Any]], reads: dict[int, int]) -> list[dict[str, Any]]:
    """``ops`` with the synapse weight reads of layer l replaced by ``reads[l]`` weight reads from
    one memory holding them all (its size the sum of the replaced entries' memories).

    The counters price the model's operation count (one read per accumulation, or one broadcast
    per diagonal step); a hardware schedule knows the reads it really issues
    (:meth:`~snnhw.hw.schedule.WavefrontSchedule.weight_reads`). A layer whose accumulations
    have no weight-read entry of their own (the direct-input projection's reads, entry
    ``input_weight_read`` beside ``input_mult``) keeps them.
    """
    projection_layers = {e["layer"] for e in ops if e["name"] == "input_mult"}
    out: list[dict[str, Any]] = []
    merged: dict[int, dict[str, Any]] = {}
    for entry in ops:
        layer = entry["layer"]
        if (layer not in reads or entry["name"] not in SYNAPSE_WEIGHT_READS
                or (entry["name"] == "input_weight_read" and layer in projection_layers)):
            out.append(entry)
            continue
        if layer not in merged:  # the layer's one weight memory, at its first read entry's place
            merged[layer] = {**entry, "name": "synapse_weight_read", "count": int(reads[layer]), "memory_bytes": 0}
            out.append(merged[layer])
        elif merged[layer]["bits"] != entry["bits"]:
            raise ValueError(f"layer {layer}: weight reads of {merged[layer]['bits']} and {entry['bits']} bits")
        merged[layer]["memory_bytes"] += entry["memory_bytes"]
    missing = set(reads) - set(merged)
    if missing:
        raise ValueError(f"no synapse weight reads to replace in layer(s) {sorted(missing)}")
    return out


def schedule_energy(counters: dict[str, Any], schedule: str, table: dict[str, Any] | None = None,
                    weight_reads: dict[int, int] | None = None) -> dict[str, Any]:
    """Energy per inference (pJ) of one schedule of a counters record: ``"dense"`` or ``"event"``
    for a spiking model's counters, ``"sequential"`` for the MAC baseline's (the schedule objects'
    ``energy_schedule``). Returns the breakdown of :func:`energy_report` for that schedule
    (``compute_with_head_pj``, ``total_pj`` with memory reads, ...).

    ``weight_reads``: per layer (1-based), the synapse weights a hardware schedule reads over the
    counters' sequences (:func:`with_weight_reads`); None: the counters' own count."""
    table = validate_energy_table(table if table is not None else load_energy_table())
    if schedule not in counters["schedules"]:
        raise UserError(f"unknown schedule {schedule!r}; use one of {sorted(counters['schedules'])}")
    ops = counters["schedules"][schedule]["ops"]
    if weight_reads is not None:
        ops = with_weight_reads(ops, weight_reads)
    return _schedule_energy(ops, counters["head"]["ops"], table, counters["sequences"])


def energy_report(
    spiking: dict[str, Any],
    baseline: dict[str, Any] | None = None,
    table: dict[str, Any] | None = None,
    *,
    schedule: str = "dense",
) -> dict[str, Any]:
    """Energy per inference (pJ) of the spiking model and the MAC baseline, with their ratio.

    Args:
        spiking: :func:`snnhw.quant.counters.spiking_counters` output (``SpikingResult.counters``).
        baseline: :func:`snnhw.quant.counters.baseline_counters` output, or None.
        table: an energy table (default: :func:`load_energy_table` ()).
        schedule: the spiking schedule of the headline figures: "dense" (default: every synapse of
            every cell is an add slot, what a core without zero gating does) or "event" (one
            accumulate per nonzero spike and synapse: what an event-driven core realises). The
            same default as ``snnhw energy --schedule`` and as ``snnhw build`` for a dense core
            (an event-driven core's build reports "event"): ``docs/energy.md``.

    Returns a JSON-able dict: the headline ``spiking_pj``, ``baseline_pj`` and ``ratio``
    (= baseline / spiking, the factor of lower energy) on the paper's scope — arithmetic of the
    LSTM layers and the FC head, no memory traffic — for ``schedule``; ``ratio_with_memory``
    (weight and state reads included); the full breakdown per schedule; ``paper_ratio`` beside;
    ``table_source``.
    """
    table = validate_energy_table(table if table is not None else load_energy_table())
    if schedule not in spiking["schedules"]:
        raise UserError(f"unknown schedule {schedule!r}; use one of {sorted(spiking['schedules'])}")
    seqs = spiking["sequences"]
    out: dict[str, Any] = {
        "table_source": table["source"],
        "table_name": table.get("name", ""),
        "schedule": schedule,
        "scope": "per inference (one sequence); headline = compute (LSTM arithmetic + FC head), no memory traffic",
        "spiking": {name: _schedule_energy(part["ops"], spiking["head"]["ops"], table, seqs)
                    for name, part in spiking["schedules"].items()},
        "paper_ratio": {key: list(value) for key, value in PAPER_ENERGY_RATIO.items()},
        "encoding": spiking.get("encoding"),
    }
    head = out["spiking"][schedule]
    out["spiking_pj"] = head["compute_with_head_pj"]
    out["baseline_pj"] = None
    out["ratio"] = None
    out["ratio_with_memory"] = None
    if baseline is not None:
        part = baseline["schedules"]["sequential"]
        out["baseline"] = _schedule_energy(part["ops"], baseline["head"]["ops"], table, baseline["sequences"])
        out["baseline_pj"] = out["baseline"]["compute_with_head_pj"]
        out["ratio"] = out["baseline_pj"] / out["spiking_pj"] if out["spiking_pj"] else None
        total = head["total_pj"]
        out["ratio_with_memory"] = out["baseline"]["total_pj"] / total if total else None
        out["ratio_by_schedule"] = {
            name: {"compute": out["baseline_pj"] / value["compute_with_head_pj"],
                   "with_memory": out["baseline"]["total_pj"] / value["total_pj"]}
            for name, value in out["spiking"].items()
        }
    return out
