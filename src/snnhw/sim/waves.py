"""Switching activity from simulation waveforms: per-signal toggle counts and a SAIF file.

Reads the FST (Icarus) or VCD (Verilator) that a ``waves=True`` run records, with
``pywellen``. For every bit of every recorded signal it measures, over the whole dump:

* ``TC``: toggles, the number of 0→1 and 1→0 transitions between consecutive known values;
* ``T0`` / ``T1`` / ``TX``: the time spent at 0, at 1 and at X/Z, in the dump's time unit;

and :func:`write_saif` writes them as an IEEE 1801 SAIF 2.0 *backward* file (one ``NET`` entry
per bit, instances nested as in the design) that Vivado reads with
``read_saif -strip_path <top instance> file.saif`` before ``report_power``.

The observation window is ``[0, DURATION]`` where ``DURATION`` is the time of the dump's last
value change (the end of the simulation's activity).
"""

from __future__ import annotations

import datetime
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from snnhw import __version__
from snnhw.errors import UserError


@dataclass
class BitActivity:
    """Switching activity of one bit over the observation window.

    Attributes:
        t0, t1, tx: time at 0, at 1, at X/Z (dump time units).
        tc: 0↔1 transitions.
    """

    t0: int
    t1: int
    tx: int
    tc: int


@dataclass
class SignalActivity:
    """Activity of one recorded signal (a net or register, possibly a vector).

    Attributes:
        scope: hierarchical instance path (list of instance names from the top).
        name: the signal's name inside its scope.
        width: bits.
        bits: per-bit activity, index 0 = LSB.
    """

    scope: list[str]
    name: str
    width: int
    bits: list[BitActivity]

    @property
    def toggles(self) -> int:
        """Total 0↔1 transitions over all bits."""
        return sum(b.tc for b in self.bits)

    @property
    def full_name(self) -> str:
        """Dot-separated hierarchical name."""
        return ".".join([*self.scope, self.name])


@dataclass
class Activity:
    """Switching activity of a whole waveform.

    Attributes:
        source: the waveform file.
        timescale: (factor, unit) of one dump time unit, e.g. (1, "ps").
        duration: observation window length (dump time units).
        signals: one entry per distinct recorded signal.
        clock_cycles: rising edges of the clock signal named ``clock`` (0 when absent).
    """

    source: str
    timescale: tuple[int, str]
    duration: int
    signals: list[SignalActivity]
    clock_cycles: int

    @property
    def total_toggles(self) -> int:
        """Toggles summed over every bit of every signal."""
        return sum(s.toggles for s in self.signals)

    def summary(self, top: int = 20) -> dict[str, Any]:
        """JSON-able overview: totals and the ``top`` most active signals."""
        ranked = sorted(self.signals, key=lambda s: s.toggles, reverse=True)
        return {
            "source": self.source,
            "timescale": f"{self.timescale[0]} {self.timescale[1]}",
            "duration": self.duration,
            "clock_cycles": self.clock_cycles,
            "signals": len(self.signals),
            "bits": sum(s.width for s in self.signals),
            "total_toggles": self.total_toggles,
            "toggles_per_cycle": self.total_toggles / self.clock_cycles if self.clock_cycles else None,
            "most_active": [{"name": s.full_name, "width": s.width, "toggles": s.toggles} for s in ranked[:top]],
        }


def _bit_matrix(values: list[Any], width: int) -> np.ndarray:
    """uint8 [changes, width] of ASCII '0'/'1'/other per bit, column 0 = LSB."""
    strings = []
    for v in values:
        if isinstance(v, str):
            s = v.rjust(width, v[0] if v and v[0] in "xXzZ" else "0")[-width:]
        else:
            s = format(int(v), f"0{width}b")[-width:]
        strings.append(s)
    chars = np.frombuffer("".join(strings).encode("ascii"), dtype=np.uint8).reshape(len(strings), width)
    return chars[:, ::-1]


def _activity_of(times: np.ndarray, chars: np.ndarray, end: int) -> list[BitActivity]:
    """Per-bit T0/T1/TX/TC from a change list (times ascending, one row of chars per change)."""
    dt = np.diff(np.append(times, end)).astype(np.int64)
    dt = np.maximum(dt, 0)
    zero = chars == ord("0")
    one = chars == ord("1")
    t0 = (zero * dt[:, None]).sum(axis=0)
    t1 = (one * dt[:, None]).sum(axis=0)
    tx = dt.sum() - t0 - t1
    if len(chars) > 1:
        tc = ((zero[:-1] & one[1:]) | (one[:-1] & zero[1:])).sum(axis=0)
    else:
        tc = np.zeros(chars.shape[1], dtype=np.int64)
    first = int(times[0]) if len(times) else end
    # time before the first recorded value counts as X
    tx = tx + first
    return [BitActivity(int(a), int(b), int(c), int(d)) for a, b, c, d in zip(t0, t1, tx, tc)]


def count_activity(path: Path, clock: str = "clk") -> Activity:
    """Read a FST/VCD waveform and measure every signal's switching activity.

    Aliased names of one signal (same signal in several scopes) are reported once, under the
    first name recorded; Verilator's ``$rootio`` copies of the top-level ports are skipped. ``clock`` names the clock net used to count cycles.
    """
    import pywellen

    path = Path(path)
    if not path.is_file():
        raise UserError(f"waveform {path} does not exist")
    try:
        wave = pywellen.Waveform(str(path))
    except Exception as exc:  # pywellen raises its own error types for unreadable files
        raise UserError(f"cannot read waveform {path}: {exc}") from None
    seen: dict[str, tuple[Any, Any]] = {}
    for var in wave.all_vars():
        if str(var.full_name).startswith("$"):
            continue  # Verilator's $rootio copies of the top ports
        key = str(var.signal_ref)
        if key not in seen:
            seen[key] = (var, var.signal)
    changes: dict[str, tuple[np.ndarray, list[Any]]] = {}
    end = 0
    for key, (_, sig) in seen.items():
        pairs = list(sig)
        times = np.fromiter((t for t, _ in pairs), dtype=np.int64, count=len(pairs))
        changes[key] = (times, [v for _, v in pairs])
        if len(times):
            end = max(end, int(times[-1]))
    signals: list[SignalActivity] = []
    clock_cycles = 0
    for key, (var, _) in seen.items():
        times, values = changes[key]
        width = int(var.bitwidth) if var.bitwidth else 1
        full, name = str(var.full_name), str(var.name)
        scope_path = full[: len(full) - len(name)].rstrip(".")
        scope = scope_path.split(".") if scope_path else []
        if len(times):
            bits = _activity_of(times, _bit_matrix(values, width), end)
        else:
            bits = [BitActivity(0, 0, end, 0) for _ in range(width)]
        sa = SignalActivity(scope, name, width, bits)
        signals.append(sa)
        if name == clock and width == 1 and not clock_cycles:
            clock_cycles = (sa.toggles + 1) // 2
    ts = wave.timescale
    return Activity(str(path), (int(ts.factor), str(ts.unit)), end, signals, clock_cycles)


_SAIF_SPECIAL = re.compile(r"([^A-Za-z0-9_])")


def _saif_id(name: str) -> str:
    """A SAIF identifier: every character outside [A-Za-z0-9_] escaped with a backslash."""
    return _SAIF_SPECIAL.sub(r"\\\1", name)


def write_saif(activity: Activity, path: Path, design: str | None = None) -> Path:
    """Write ``activity`` as a SAIF 2.0 backward file (per-bit T0, T1, TX, TC; IG 0).

    ``design`` names the DESIGN field (default: the top instance). Returns ``path``.
    """
    tree: dict[str, Any] = {"nets": [], "children": {}}
    for sig in activity.signals:
        node = tree
        for inst in sig.scope:
            node = node["children"].setdefault(inst, {"nets": [], "children": {}})
        node["nets"].append(sig)
    tops = list(tree["children"])
    design = design or (tops[0] if len(tops) == 1 else "top")
    factor, unit = activity.timescale
    lines = [
        "(SAIFILE",
        '(SAIFVERSION "2.0")',
        '(DIRECTION "backward")',
        f'(DESIGN "{design}")',
        f'(DATE "{datetime.datetime.now(datetime.timezone.utc).strftime("%a %b %d %H:%M:%S %Y")}")',
        '(VENDOR "snnhw")',
        '(PROGRAM_NAME "snnhw.sim.waves")',
        f'(VERSION "{__version__}")',
        "(DIVIDER / )",
        f"(TIMESCALE {factor} {unit})",
        f"(DURATION {activity.duration})",
    ]

    def emit(name: str, node: dict[str, Any], depth: int) -> None:
        pad = "  " * depth
        lines.append(f"{pad}(INSTANCE {_saif_id(name)}")
        if node["nets"]:
            lines.append(f"{pad}  (NET")
            for sig in node["nets"]:
                for k, b in enumerate(sig.bits):
                    net = _saif_id(sig.name if sig.width == 1 else f"{sig.name}[{k}]")
                    lines.append(f"{pad}    ({net} (T0 {b.t0}) (T1 {b.t1}) (TX {b.tx}) (TC {b.tc}) (IG 0))")
            lines.append(f"{pad}  )")
        for child, sub in node["children"].items():
            emit(child, sub, depth + 1)
        lines.append(f"{pad})")

    for name, node in tree["children"].items():
        emit(name, node, 0)
    lines.append(")")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def activity_report(wave_file: Path, out_dir: Path, design: str | None = None, clock: str = "clk") -> dict[str, Any]:
    """Count toggles in ``wave_file``, write ``activity.saif`` and ``activity.json`` into ``out_dir``.

    Returns the JSON summary (with the SAIF path).
    """
    act = count_activity(wave_file, clock=clock)
    out_dir = Path(out_dir)
    saif = write_saif(act, out_dir / "activity.saif", design)
    summary = act.summary()
    summary["saif"] = str(saif)
    summary["per_signal"] = [
        {"name": s.full_name, "width": s.width, "toggles": s.toggles,
         "t1": sum(b.t1 for b in s.bits)} for s in act.signals
    ]
    (out_dir / "activity.json").write_text(json.dumps(summary, indent=1))
    return summary

