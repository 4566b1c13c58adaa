"""Logic depth of a synthesised 7-series netlist (Yosys ``write_json``), without false loops.

Logic depth = the largest number of combinational cells on a path between two path ends.
Path ends are every cell that is not combinational logic: flip-flops, DSP48E1, block and
LUT RAMs, shift registers, clock buffers (their outputs start a path at depth 0, their inputs
end one) and the module's ports. The combinational cells are the LUTs, ``INV``, the wide-mux
cells ``MUXF7`` / ``MUXF8`` and ``CARRY4``; each adds 1 to a path through it.

``CARRY4`` is modelled per bit, which is what Yosys's ``ltp`` cannot do: output bit k
(``O[k]``, ``CO[k]``) depends only on ``CI``, ``CYINIT`` and bits 0..k of ``S`` and ``DI``. So an
adder whose upper bits depend (through LUTs) on its own lower outputs is a path, not a loop,
and a carry chain of K CARRY4 cells adds K to a path. A real combinational loop is an error.

The depth is a proxy for the critical path (no placement, no routing, no cell delays); the
achieved clock needs Vivado.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

_LUT_INPUTS = {f"LUT{k}": tuple(f"I{i}" for i in range(k)) for k in range(1, 7)}
_SIMPLE_INPUTS: dict[str, tuple[str, ...]] = {**_LUT_INPUTS, "INV": ("I",), "MUXF7": ("I0", "I1", "S"),
                                               "MUXF8": ("I0", "I1", "S")}
COMBINATIONAL: frozenset[str] = frozenset((*_SIMPLE_INPUTS, "CARRY4"))
"""Cell types that are combinational logic (everything else ends a path)."""

Bit = int | str
"""A Yosys JSON net bit: an integer net id, or a constant "0" / "1" / "x" / "z"."""


def _cell_inputs(cell: dict[str, Any], port: str, index: int) -> list[Bit]:
    """The input bits that output bit ``port[index]`` of a combinational ``cell`` depends on."""
    conn = cell["connections"]
    if cell["type"] == "CARRY4":
        bits: list[Bit] = [*conn.get("CI", []), *conn.get("CYINIT", [])]
        for name in ("S", "DI"):
            bits.extend(conn.get(name, [])[: index + 1])
        return bits
    return [bit for name in _SIMPLE_INPUTS[cell["type"]] for bit in conn.get(name, [])]


def logic_depth(netlist: dict[str, Any], top: str) -> dict[str, Any]:
    """Longest combinational path of module ``top`` of a Yosys JSON ``netlist``.

    Returns ``{"logic_depth": cells on the longest path (0 if none), "path": [{"cell", "type"}
    ...] from the path's start to its end, "path_types": {type: count on that path},
    "combinational_cells": count}``. Raises ``ValueError`` on a real combinational loop or a
    missing module.
    """
    try:
        module = netlist["modules"][top]
    except KeyError:
        raise ValueError(f"module {top!r} is not in the netlist") from None
    cells: dict[str, dict[str, Any]] = module.get("cells", {})
    driver: dict[Bit, tuple[str, str, int]] = {}
    for name, cell in cells.items():
        if cell["type"] not in COMBINATIONAL:
            continue
        for port, direction in cell.get("port_directions", {}).items():
            if direction == "output":
                for index, bit in enumerate(cell["connections"].get(port, [])):
                    if isinstance(bit, int):
                        driver[bit] = (name, port, index)

    depth: dict[Bit, int] = {}
    via: dict[Bit, Bit | None] = {}  # the input bit the longest path to this bit came through
    visiting: set[Bit] = set()

    def resolve(root: Bit) -> None:
        """Fill ``depth`` for ``root`` and everything it depends on (iterative DFS)."""
        stack: list[Bit] = [root]
        while stack:
            bit = stack[-1]
            if bit in depth:
                stack.pop()
                continue
            if bit not in driver:
                depth[bit], via[bit] = 0, None
                stack.pop()
                continue
            name, port, index = driver[bit]
            inputs = _cell_inputs(cells[name], port, index)
            pending = [b for b in inputs if b not in depth]
            if pending:
                if bit in visiting:
                    raise ValueError(f"combinational loop through cell {name} ({cells[name]['type']})")
                visiting.add(bit)
                stack.extend(pending)
                continue
            visiting.discard(bit)
            best = max(inputs, key=lambda b: depth[b], default=None)
            depth[bit] = 1 + (depth[best] if best is not None else 0)
            via[bit] = best
            stack.pop()

    for bit in driver:
        resolve(bit)
    if not driver:
        return {"logic_depth": 0, "path": [], "path_types": {}, "combinational_cells": 0}
    end = max(driver, key=lambda b: depth[b])
    path: list[dict[str, str]] = []
    bit: Bit | None = end
    while bit is not None and bit in driver:
        name = driver[bit][0]
        path.append({"cell": name, "type": cells[name]["type"]})
        bit = via[bit]
    path.reverse()
    types: dict[str, int] = {}
    for step in path:
        types[step["type"]] = types.get(step["type"], 0) + 1
    return {"logic_depth": depth[end], "path": path, "path_types": types,
            "combinational_cells": sum(1 for c in cells.values() if c["type"] in COMBINATIONAL)}


def logic_depth_of_file(path: Path, top: str) -> dict[str, Any]:
    """:func:`logic_depth` of a Yosys ``write_json`` file."""
    return logic_depth(json.loads(Path(path).read_text()), top)
