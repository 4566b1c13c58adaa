"""Flip-flops moved into the ECP5 multipliers' own registers, on the Yosys netlist nextpnr reads.

An ECP5 ``MULT18X18D`` has input registers on A and B and an output register on P
(``REG_INPUTA_CLK``, ``REG_INPUTB_CLK``, ``REG_OUTPUT_CLK``). Yosys' ``synth_ecp5`` maps a
multiplier with all of them off and leaves the flip-flops around it in the fabric, so every
register → multiplier → register path of a generated core crosses the routing twice (into the
multiplier and out of it): on the MAC baseline that was the routed critical path
(``docs/open-flow.md``). :func:`pack_dsp_registers` moves such flip-flops into the block:

* **inputs**: when every bit of A and of B is driven by a plain flip-flop (below) whose own D
  input comes straight from another flip-flop (or is a constant), or by a constant 0, both input
  registers are switched on and each pin reads the flip-flop's D net instead of its Q; a
  flip-flop that also drives other cells stays for them (so a register shared by many
  multipliers becomes one copy per multiplier, inside each). Both or neither: nextpnr times a
  multiplier with one registered input as if none were (its ``pack.cc``). A register with logic
  in front of it stays in the fabric: moving it would put that logic and the long route to the
  multiplier row in one clock path (measured: the MAC baseline's operand multiplexer, then its
  c(n−1) multiplexer, became the critical path that way; ``docs/open-flow.md``).
* **output**: when every used bit of P drives exactly one cell, the D input of a plain flip-flop,
  the output register is switched on, P drives the flip-flops' Q nets and the flip-flops go.

A plain flip-flop is a ``TRELLIS_FF`` with no clock enable (``CEMUX`` 1), the clock not inverted,
reset value 0 (``REGSET`` RESET) and a synchronous reset (``SRMODE`` LSR_OVER_CE): what a
multiplier register with ``CE`` tied to 1 and ``RESETMODE`` SYNC does, cycle for cycle (a
constant-0 operand bit is a register that always holds 0). All the flip-flops moved into one
multiplier share its one clock; each register takes one of its four reset inputs, and the
flip-flops of one register share one reset net. A flip-flop that is both the output register of
one multiplier and an input register of another is left as the output register. The packing
changes no cycle of the design; ``tests/flow/test_ecp5_dsp.py`` simulates netlists before and
after it against each other.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Bit = int | str
"""A Yosys JSON netlist bit: a net number, or a constant ``"0"``/``"1"``/``"x"``/``"z"``."""

_WIDTH = {"A": 18, "B": 18, "P": 36}


@dataclass(frozen=True)
class _Register:
    """The clocking of one plain flip-flop: its clock net, reset net and ``GSR`` setting."""

    clk: Bit
    lsr: Bit
    gsr: str


def _plain_ff(cell: dict[str, Any]) -> _Register | None:
    """The clocking of a plain ``TRELLIS_FF`` (module docstring), or None."""
    if cell["type"] != "TRELLIS_FF":
        return None
    p = {k: str(v).strip() for k, v in cell.get("parameters", {}).items()}
    if (p.get("CEMUX") != "1" or p.get("CLKMUX", "CLK") != "CLK" or p.get("REGSET", "RESET") != "RESET"
            or p.get("SRMODE", "LSR_OVER_CE") != "LSR_OVER_CE" or p.get("LSRMUX", "LSR") != "LSR"):
        return None
    conn = cell["connections"]
    return _Register(conn["CLK"][0], conn["LSR"][0], p.get("GSR", "ENABLED"))


def _top_module(netlist: dict[str, Any]) -> dict[str, Any]:
    tops = [m for m in netlist["modules"].values() if str(m.get("attributes", {}).get("top", "0")).strip("0 ")]
    if len(tops) != 1:
        raise ValueError(f"the netlist has {len(tops)} top modules, expected one (a flattened design)")
    return tops[0]


def _is_off(params: dict[str, Any], name: str) -> bool:
    return str(params.get(name, "NONE")).strip() == "NONE"


def pack_dsp_registers(netlist: dict[str, Any]) -> dict[str, int]:
    """Move flip-flops into the ``MULT18X18D`` registers of the flattened top module of
    ``netlist`` (Yosys ``write_json`` form, changed in place; module docstring).

    Returns counts: ``multipliers``, ``inputs_packed`` and ``outputs_packed`` (multipliers whose
    input registers, output register, were switched on), ``flip_flops_removed``.
    """
    top = _top_module(netlist)
    cells: dict[str, dict[str, Any]] = top["cells"]
    driver: dict[Bit, tuple[str, str]] = {}
    sinks: dict[Bit, list[tuple[str, str]]] = defaultdict(list)
    for name, cell in cells.items():
        for port, bits in cell["connections"].items():
            output = cell["port_directions"][port] == "output"
            for bit in bits:
                if isinstance(bit, int):
                    if output:
                        driver[bit] = (name, port)
                    else:
                        sinks[bit].append((name, port))
    for port in top.get("ports", {}).values():
        if port["direction"] != "input":
            for bit in port["bits"]:
                if isinstance(bit, int):
                    sinks[bit].append(("", "port"))

    def fed_by_register(bit: Bit) -> bool:
        """A constant, or a net driven by a flip-flop's Q."""
        if not isinstance(bit, int):
            return True
        src = driver.get(bit)
        return src is not None and src[1] == "Q" and cells[src[0]]["type"] == "TRELLIS_FF"

    def input_side(cell: dict[str, Any], pin: str) -> tuple[list[str | None], _Register | None] | None:
        """Per bit the plain flip-flop driving it (None for a constant 0), and their common
        clocking; None when the register cannot be absorbed."""
        ffs: list[str | None] = []
        clocking: set[_Register] = set()
        for i in range(_WIDTH[pin]):
            bit = cell["connections"][f"{pin}{i}"][0]
            if bit == "0":
                ffs.append(None)
                continue
            src = driver.get(bit) if isinstance(bit, int) else None
            reg = _plain_ff(cells[src[0]]) if src is not None and src[1] == "Q" else None
            if reg is None or not fed_by_register(cells[src[0]]["connections"]["DI"][0]):
                return None
            ffs.append(src[0])
            clocking.add(reg)
        if len(clocking) > 1:
            return None
        return ffs, next(iter(clocking), None)

    def output_side(cell: dict[str, Any]) -> tuple[list[str | None], _Register] | None:
        """Per bit of P the plain flip-flop it alone drives (None: unused), and their common
        clocking; None when the register cannot be absorbed."""
        ffs: list[str | None] = []
        clocking: set[_Register] = set()
        for i in range(_WIDTH["P"]):
            bit = cell["connections"][f"P{i}"][0]
            users = sinks.get(bit, []) if isinstance(bit, int) else []
            if not users:
                ffs.append(None)
                continue
            if len(users) != 1 or users[0][1] != "DI":
                return None
            reg = _plain_ff(cells[users[0][0]])
            if reg is None:
                return None
            ffs.append(users[0][0])
            clocking.add(reg)
        if len(clocking) != 1:
            return None
        return ffs, next(iter(clocking))

    mults = [name for name, cell in cells.items() if cell["type"] == "MULT18X18D"
             and all(_is_off(cell.get("parameters", {}), f"REG_{r}_CLK")
                     for r in ("INPUTA", "INPUTB", "INPUTC", "PIPELINE", "OUTPUT"))]
    outputs = {name: side for name in mults if (side := output_side(cells[name])) is not None}
    output_ffs = {ff for ffs, _ in outputs.values() for ff in ffs if ff is not None}
    inputs: dict[str, dict[str, tuple[list[str | None], _Register | None]]] = {}
    for name in mults:
        sides = {pin: input_side(cells[name], pin) for pin in ("A", "B")}
        if all(side is not None for side in sides.values()) and not any(
                ff in output_ffs for side in sides.values() for ff in side[0]):
            inputs[name] = sides  # type: ignore[assignment]

    removed: set[str] = set()
    packed = {"inputs": 0, "outputs": 0}
    for name in mults:
        cell = cells[name]
        registers: dict[str, _Register] = {}
        if name in inputs:
            registers.update({f"INPUT{pin}": reg for pin, (_, reg) in inputs[name].items() if reg is not None})
        if name in outputs:
            registers["OUTPUT"] = outputs[name][1]
        if len({(r.clk, r.gsr) for r in registers.values()}) != 1:
            continue  # nothing to pack, or registers on different clocks / GSR settings
        clk, gsr = next(iter(registers.values())).clk, next(iter(registers.values())).gsr
        resets = list(dict.fromkeys(r.lsr for r in registers.values()))
        params, conn, dirs = cell.setdefault("parameters", {}), cell["connections"], cell["port_directions"]
        for k, net in enumerate(resets):
            conn[f"RST{k}"], dirs[f"RST{k}"] = [net], "input"
        conn["CLK0"], dirs["CLK0"] = [clk], "input"
        conn["CE0"], dirs["CE0"] = ["1"], "input"
        params["GSR"] = gsr
        params["RESETMODE"] = "SYNC"
        for reg_name, reg in registers.items():
            params[f"REG_{reg_name}_CLK"] = "CLK0"
            params[f"REG_{reg_name}_CE"] = "CE0"
            params[f"REG_{reg_name}_RST"] = f"RST{resets.index(reg.lsr)}"
        packed["inputs"] += name in inputs
        packed["outputs"] += name in outputs
        if name in inputs:
            for pin in ("A", "B"):
                for i, ff in enumerate(inputs[name][pin][0]):
                    if ff is not None:
                        conn[f"{pin}{i}"] = [cells[ff]["connections"]["DI"][0]]
        if name in outputs:
            for i, ff in enumerate(outputs[name][0]):
                if ff is not None:
                    conn[f"P{i}"] = [cells[ff]["connections"]["Q"][0]]
                    removed.add(ff)
    # input flip-flops that now drive nothing
    still_read = {bit for name, cell in cells.items() if name not in removed
                  for port, bits in cell["connections"].items() if cell["port_directions"][port] == "input"
                  for bit in bits if isinstance(bit, int)}
    still_read |= {bit for port in top.get("ports", {}).values() if port["direction"] != "input"
                   for bit in port["bits"] if isinstance(bit, int)}
    for ff in {ff for sides in inputs.values() for ffs, _ in sides.values() for ff in ffs if ff is not None}:
        if ff not in removed and cells[ff]["connections"]["Q"][0] not in still_read:
            removed.add(ff)
    for ff in removed:
        del cells[ff]
    return {"multipliers": len(mults), "inputs_packed": packed["inputs"], "outputs_packed": packed["outputs"],
            "flip_flops_removed": len(removed)}


def pack_netlist_file(path: Path) -> dict[str, int]:
    """:func:`pack_dsp_registers` on the Yosys JSON netlist file ``path``, rewritten in place;
    returns the counts."""
    netlist = json.loads(Path(path).read_text())
    counts = pack_dsp_registers(netlist)
    Path(path).write_text(json.dumps(netlist))
    return counts


if __name__ == "__main__":  # python -m snnhw.flow.ecp5_dsp NETLIST.json (the open-flow shell scripts)
    import sys

    for arg in sys.argv[1:]:
        print(arg, pack_netlist_file(Path(arg)))
