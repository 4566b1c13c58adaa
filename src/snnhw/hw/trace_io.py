"""The spiking core's debug trace stream: record layout, field list, packing and unpacking.

With ``SpikingCore(..., trace=True)`` the core has a third stream, ``trace`` (valid/ready),
that carries one **record per (layer, element n, time step t, unit group)**: the values of
the cell (n, t) of that layer for the ``lanes`` hidden units ``group·L … group·L + L − 1``.
The record order is fixed by the knobs (:meth:`SpikingCore.trace_order`); see
``docs/hw-spiking-core.md`` ("Debug trace").

Record payload (LSB first, Amaranth ``StructLayout`` order)::

    last    1        the sequence's final record
    layer   Lb       0-based layer (Lb = 1)
    t       Tb       time step 0..T−1 (Tb = max(1, ⌈log2 T⌉))
    group   Gb       unit group 0..G−1 of that layer (Gb = max(1, ⌈log2 max_l G_l⌉))
    units   L ×      per lane k (unit j = group·L + k; lanes with j ≥ H_l are 0):
              f    1        forget-gate spike s_f ∈ {0, 1}
              o    1        output-gate spike s_o ∈ {0, 1}
              i    signed   input gate: spike {0, 1}, or its clip value when non-spiking
              g    signed   candidate: ternary spike {−1, 0, 1}, or its clip value when non-spiking
              c    signed   cell state c(n, t) (cell_bits)
              s_c  signed 2 the ternary spike of c's LIF
              h    signed 2 h = s_o·s_c, the layer output

The unit fields are named as the golden trace's keys (``golden.run_spiking(..., trace=True)
.trace[l]``); signed widths are the largest over the layers (values sign-extended).
"""

from __future__ import annotations

from math import ceil
from typing import Any, Mapping, Sequence

import numpy as np
from amaranth.hdl import signed, unsigned
from amaranth.lib import data
from amaranth.utils import ceil_log2

from snnhw.hw.neuron_lanes import gate_value_shape
from snnhw.quant.arith import signed_range
from snnhw.quant.frozen import FrozenSpiking, SpikingLayer

TRACE_UNIT_FIELDS = ("f", "o", "i", "g", "c", "s_c", "h")
"""Per-unit fields of a trace record, in layout order (names = golden trace keys)."""

TRACE_HEADER_FIELDS = ("last", "layer", "t", "group")
"""Record header fields, in layout order."""


def layer_trace_unit_layout(layer: SpikingLayer) -> data.StructLayout:
    """One unit's trace values of ``layer`` at the layer's own widths (the wavefront's buffer)."""
    return data.StructLayout({
        "f": 1, "o": 1, "i": gate_value_shape(layer, "i"), "g": gate_value_shape(layer, "g"),
        "c": signed(layer.cell_bits), "s_c": signed(2), "h": signed(2),
    })


def trace_unit_layout(model: FrozenSpiking) -> data.StructLayout:
    """One unit's fields in a record: every signed field as wide as in the widest layer."""
    widths: dict[str, int] = {}
    for layer in model.layers:
        for name, fld in layer_trace_unit_layout(layer):
            widths[name] = max(widths.get(name, 0), fld.width)
    return data.StructLayout({name: (unsigned(1) if name in ("f", "o") else signed(widths[name]))
                              for name in TRACE_UNIT_FIELDS})


def trace_groups(model: FrozenSpiking, lanes: int) -> list[int]:
    """G_l = ⌈H_l / lanes⌉ unit groups of every layer."""
    return [ceil(layer.hidden_size / lanes) for layer in model.layers]


def trace_record_layout(model: FrozenSpiking, lanes: int) -> data.StructLayout:
    """The ``trace`` stream payload of a core with ``lanes`` units per engine (see module doc)."""
    return data.StructLayout({
        "last": 1,
        "layer": max(1, ceil_log2(len(model.layers))),
        "t": max(1, ceil_log2(model.T)),
        "group": max(1, ceil_log2(max(trace_groups(model, lanes)))),
        "units": data.ArrayLayout(trace_unit_layout(model), lanes),
    })


def trace_fields(model: FrozenSpiking, lanes: int) -> list[dict[str, Any]]:
    """The record's fields flattened, LSB first: ``{name, unit, lsb, width, signed}``.

    ``unit`` is the lane index k for the per-unit fields and None for the header. This list is
    what the manifest publishes and what the cocotb testbench decodes records with.
    """
    layout = trace_record_layout(model, lanes)
    out: list[dict[str, Any]] = []
    for name, fld in layout:
        if name != "units":
            out.append({"name": name, "unit": None, "lsb": fld.offset, "width": fld.width, "signed": False})
            continue
        unit = trace_unit_layout(model)
        for k in range(lanes):
            base = fld.offset + k * unit.size
            for uname, ufld in unit:
                out.append({"name": uname, "unit": k, "lsb": base + ufld.offset, "width": ufld.width,
                            "signed": ufld.shape.signed})
    return out


def trace_field_value(raw: int, fld: Mapping[str, Any]) -> int:
    """The value of one field (an entry of :func:`trace_fields`) in a raw record."""
    value = (raw >> fld["lsb"]) & ((1 << fld["width"]) - 1)
    if fld["signed"] and value >> (fld["width"] - 1):
        value -= 1 << fld["width"]
    return value


def unpack_trace_record(fields: Sequence[Mapping[str, Any]], raw: int) -> dict[str, Any]:
    """Decode a raw record: header fields as ints, ``units`` as a list of ``{field: int}`` per lane."""
    lanes = 1 + max(f["unit"] for f in fields if f["unit"] is not None)
    out: dict[str, Any] = {"units": [{} for _ in range(lanes)]}
    for fld in fields:
        if fld["unit"] is None:
            out[fld["name"]] = trace_field_value(raw, fld)
        else:
            out["units"][fld["unit"]][fld["name"]] = trace_field_value(raw, fld)
    return out


def pack_trace_record(fields: Sequence[Mapping[str, Any]], header: Mapping[str, int],
                      units: Sequence[Mapping[str, int]]) -> int:
    """Encode a record (inverse of :func:`unpack_trace_record`); a value that does not fit raises ValueError."""
    raw = 0
    for fld in fields:
        value = int(header[fld["name"]] if fld["unit"] is None else units[fld["unit"]][fld["name"]])
        lo, hi = signed_range(fld["width"]) if fld["signed"] else (0, (1 << fld["width"]) - 1)
        if not lo <= value <= hi:
            raise ValueError(f"trace field {fld['name']} (unit {fld['unit']}) value {value} does not fit "
                             f"{'signed' if fld['signed'] else 'unsigned'} {fld['width']} bits")
        raw |= (value & ((1 << fld["width"]) - 1)) << fld["lsb"]
    return raw


def expected_trace_records(fields: Sequence[Mapping[str, Any]], order: Sequence[tuple[int, int, int, int]],
                           trace: Sequence[Mapping[str, np.ndarray]], sample: int) -> list[int]:
    """The raw records a core must emit for one sequence, from the golden model's trace.

    Args:
        fields: :func:`trace_fields` of the core.
        order: ``core.trace_order(N)``: (layer, n, t, group) of each record in stream order.
        trace: ``golden.run_spiking(..., trace=True).trace`` (per layer, arrays over (b, n, t, unit)).
        sample: the batch index b of the sequence.

    Lanes past a layer's hidden size are 0; ``last`` is set on the final record.
    """
    lanes = 1 + max(f["unit"] for f in fields if f["unit"] is not None)
    words = []
    for pos, (layer, n, t, group) in enumerate(order):
        tr = trace[layer]
        hidden = tr["h"].shape[-1]
        units = []
        for k in range(lanes):
            j = group * lanes + k
            units.append({name: (int(tr[name][sample, n, t, j]) if j < hidden else 0) for name in TRACE_UNIT_FIELDS})
        header = {"last": int(pos == len(order) - 1), "layer": layer, "t": t, "group": group}
        words.append(pack_trace_record(fields, header, units))
    return words
