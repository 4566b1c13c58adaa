"""Operation counters of one golden-model run, for the operation-count energy model.

:func:`snnhw.quant.golden.run_spiking` / ``run_baseline`` with ``counters=True`` gather raw
event tallies over the active cells (spikes per gate, nonzero inputs) and call
:func:`spiking_counters` / :func:`baseline_counters`, which turn them and the model's
dimensions and widths into operation counts. The definitions (what one operation is, which
schedule performs which) are documented in ``docs/energy.md``; the code below is their only
implementation. Results are plain JSON-able dicts.

Op entry: ``{"name", "layer", "op", "bits", "count"}`` with ``op`` one of

* ``"add"`` — an integer add / subtract of ``bits`` bits (accumulations, neuron updates);
* ``"mult"`` — an integer multiply of ``bits = [a, b]`` operand bits (MAC multiplies);
* ``"cmp"`` — a magnitude comparison of ``bits`` bits (thresholds, clips, saturation);
* ``"mux"`` — a 2:1 selection of ``bits`` bits (spike-gated operands, sign selects);
* ``"read"`` — ``count`` reads of a ``bits``-bit word (a weight, a state vector entry) from a
  memory of ``memory_bytes`` bytes (extra key);
* ``"reg_write"`` — a state-register update of ``bits`` bits (counted, not priced).

Each schedule also carries ``per_inference``: :func:`_summary` categories (AC, MAC, other
multiplies and adds, comparisons, muxes, state updates, weight and state reads) per sequence.

Schedules of the spiking core: ``"dense"`` (every synapse of every cell is an add/sub/skip
slot, the wavefront broadcasts one weight read per diagonal step to all T engines) and
``"event"`` (only nonzero spike inputs are accumulated, one weight column read per event).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from snnhw.quant.arith import signed_bits
from snnhw.quant.frozen import BinaryNeuron, ClipGate, FrozenBaseline, FrozenSpiking, TernaryNeuron

OpEntry = dict[str, Any]


def _op(name: str, layer: int, op: str, bits: int | list[int], count: int, **extra: Any) -> OpEntry:
    """One counter entry (see the module docstring)."""
    entry: OpEntry = {"name": name, "layer": layer, "op": op, "bits": bits, "count": int(count)}
    entry.update(extra)
    return entry


def _totals(ops: list[OpEntry]) -> dict[str, int]:
    """Counts summed per op kind (``read``: words read)."""
    out: dict[str, int] = {}
    for entry in ops:
        out[entry["op"]] = out.get(entry["op"], 0) + entry["count"]
    return out


MAC_NAMES = ("input_mult", "recurrent_mult")
"""Multiplies that belong to a synaptic MAC (the rest are activation / cell multiplies)."""

ACC_NAMES = ("input_acc", "recurrent_acc")
"""Adds that are synaptic accumulations of a spike input (AC operations)."""


def _summary(ops: list[OpEntry], sequences: int) -> dict[str, float]:
    """Per-inference totals in the categories of the usual SNN/ANN comparison.

    ``accumulations`` (AC: spike-driven synaptic adds), ``macs`` (synaptic multiply-accumulates),
    ``other_multiplies`` (activation and cell multiplies), ``other_adds`` (bias, MAC adds,
    neuron and cell adds), ``comparisons``, ``muxes``, ``state_updates`` (register writes),
    ``weight_reads`` and ``state_reads`` (words).
    """
    out = dict.fromkeys(("accumulations", "macs", "other_multiplies", "other_adds", "comparisons", "muxes",
                         "state_updates", "weight_reads", "state_reads"), 0)
    for entry in ops:
        op, name, count = entry["op"], entry["name"], entry["count"]
        if op == "add":
            out["accumulations" if name in ACC_NAMES else "other_adds"] += count
        elif op == "mult":
            out["macs" if name in MAC_NAMES else "other_multiplies"] += count
        elif op == "cmp":
            out["comparisons"] += count
        elif op == "mux":
            out["muxes"] += count
        elif op == "reg_write":
            out["state_updates"] += count
        elif op == "read":
            out["weight_reads" if name.endswith("weight_read") else "state_reads"] += count
    per = 1.0 / max(sequences, 1)
    return {key: value * per for key, value in out.items()}


def _neuron_ops(name: str, layer: int, neuron: BinaryNeuron | TernaryNeuron, updates: int) -> list[OpEntry]:
    """Ops of ``updates`` LIF neuron steps.

    Per step: (terms − 1) adds for the leak (shifts are wiring), 1 add to integrate the input,
    2 compares of the saturation check, 1 (binary) or 2 (ternary) threshold compares, 1 add
    for the soft reset (v − θ·s, a mux-selected constant), for ternary neurons 1 add + 1 mux
    for the sign-dependent input shift σ±, and one membrane register write.
    """
    bits = neuron.membrane_bits
    ternary = isinstance(neuron, TernaryNeuron)
    ops = [
        _op(f"{name}_integrate", layer, "add", bits, updates * len(neuron.leak)),
        _op(f"{name}_saturate", layer, "cmp", bits, updates * 2),
        _op(f"{name}_threshold", layer, "cmp", bits, updates * (2 if ternary else 1)),
        _op(f"{name}_reset", layer, "add", bits, updates),
        _op(f"{name}_membrane", layer, "reg_write", bits, updates),
    ]
    if ternary:
        ops += [_op(f"{name}_input_shift", layer, "add", bits, updates),
                _op(f"{name}_input_shift_select", layer, "mux", bits, updates)]
    return ops


def _memory_bytes(rows: int, cols: int, bits: int) -> int:
    """Bytes of a [rows, cols] memory of ``bits``-bit words."""
    return (rows * cols * bits + 7) // 8


def spiking_counters(model: FrozenSpiking, lengths: np.ndarray, tallies: list[dict[str, Any]]) -> dict[str, Any]:
    """Operation counts of a spiking run.

    Args:
        model: the frozen spiking model.
        lengths: int [B] sequence lengths of the run.
        tallies: per layer, from the golden model: ``cells`` (active (b, n, t) cells),
            ``input_nonzero`` (nonzero spike inputs over active cells; direct layer 1: nonzero
            x_q entries over active elements), ``recurrent_nonzero`` (nonzero h(n−1, t) over
            active cells, h(0, t) = 0 included), ``spikes`` (nonzero outputs per gate).

    Returns a dict: ``sequences``, ``elements`` (Σ N_b), ``cells`` per layer, ``diagonal_steps``
    (Σ (N_b + T − 1)), per-layer ``spikes`` and ``sparsity`` (nonzero fraction of each spike
    output and of the spike inputs), and per schedule ("dense", "event") the op entries and
    their totals, plus ``head`` ops.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    T = model.T
    sequences = int(lengths.size)
    elements = int(lengths.sum())
    steps = int((lengths + T - 1).sum())
    wb = model.weight_bits
    layers_out: list[dict[str, Any]] = []
    dense: list[OpEntry] = []
    event: list[OpEntry] = []
    for index, (layer, tally) in enumerate(zip(model.layers, tallies)):
        number = index + 1
        H, D = layer.hidden_size, layer.input_size
        rows = 4 * H
        cells = int(tally["cells"])
        acc = layer.acc_bits
        direct = index == 0 and model.encoding == "direct"
        wx_bytes = _memory_bytes(rows, D, wb)
        wh_bytes = _memory_bytes(rows, H, wb)
        common: list[OpEntry] = []
        if direct:
            mac = elements * rows * D
            common += [
                _op("input_mult", number, "mult", [wb, model.input_bits], mac),
                _op("input_mac_add", number, "add", acc, mac),
                _op("input_weight_read", number, "read", wb, mac, memory_bytes=wx_bytes),
                _op("projection_add", number, "add", acc, cells * rows),
            ]
            dense_in = event_in = []
        else:
            dense_in = [
                _op("input_acc", number, "add", acc, cells * rows * D),
                _op("input_weight_read", number, "read", wb, steps * rows * D, memory_bytes=wx_bytes),
            ]
            event_in = [
                _op("input_acc", number, "add", acc, int(tally["input_nonzero"]) * rows),
                _op("input_weight_read", number, "read", wb, int(tally["input_nonzero"]) * rows,
                    memory_bytes=wx_bytes),
            ]
        dense_rec = [
            _op("recurrent_acc", number, "add", acc, cells * rows * H),
            _op("recurrent_weight_read", number, "read", wb, steps * rows * H, memory_bytes=wh_bytes),
        ]
        event_rec = [
            _op("recurrent_acc", number, "add", acc, int(tally["recurrent_nonzero"]) * rows),
            _op("recurrent_weight_read", number, "read", wb, int(tally["recurrent_nonzero"]) * rows,
                memory_bytes=wh_bytes),
        ]
        units = cells * H
        common.append(_op("bias_add", number, "add", acc, cells * rows))
        for gate in ("f", "i", "g", "o"):
            neuron = getattr(layer, gate)
            if isinstance(neuron, ClipGate):
                common += [_op(f"{gate}_clip", number, "cmp", acc, units * 2),
                           _op(f"{gate}_clip_select", number, "mux", acc, units)]
            else:
                common += _neuron_ops(gate, number, neuron, units)
        cw = layer.cell_bits
        common += [
            _op("q_select", number, "mux", cw, units),
            _op("forget_select", number, "mux", cw, units),
            _op("cell_add", number, "add", cw, units),
            _op("cell_saturate", number, "cmp", cw, units * 2),
            _op("cell_register", number, "reg_write", cw, units),
        ]
        if isinstance(layer.g, TernaryNeuron):
            common.append(_op("q_negate", number, "add", cw, units))
        common += _neuron_ops("c", number, layer.c, units)
        common += [
            _op("h_select", number, "mux", 2, units),
            _op("h_register", number, "reg_write", 2, units),
            _op("state_read", number, "read", 2 + cw, units,
                memory_bytes=_memory_bytes(T * H, 1, 2 + cw)),
        ]
        dense += common + dense_in + dense_rec
        event += common + event_in + event_rec
        spike_units = {name: units for name in tally["spikes"]}
        in_units = (elements * D) if direct else cells * D
        layers_out.append({
            "layer": number,
            "cells": cells,
            "spikes": dict(tally["spikes"]),
            "sparsity": {name: _frac(tally["spikes"][name], spike_units[name]) for name in tally["spikes"]},
            "input_nonzero_fraction": _frac(int(tally["input_nonzero"]), in_units),
            "recurrent_nonzero_fraction": _frac(int(tally["recurrent_nonzero"]), cells * H),
            "weight_reads_unshared": cells * rows * (H + (0 if direct else D)),
        })
    head = _head_ops(model.head, sequences, model.hidden_size, r_bits=max(2, int(T).bit_length() + 1),
                     weight_bits=wb)
    return {
        "model": "spiking",
        "encoding": model.encoding,
        "T": T,
        "sequences": sequences,
        "elements": elements,
        "diagonal_steps": steps,
        "layers": layers_out,
        "schedules": {
            "dense": {"ops": dense, "totals": _totals(dense), "per_inference": _summary(dense, sequences)},
            "event": {"ops": event, "totals": _totals(event), "per_inference": _summary(event, sequences)},
        },
        "head": {"ops": head, "totals": _totals(head)},
    }


def _frac(count: int, total: int) -> float:
    """count / total (0 when total is 0)."""
    return float(count) / total if total else 0.0


def _head_ops(head: Any, sequences: int, hidden: int, r_bits: int, weight_bits: int) -> list[OpEntry]:
    """MACs of the FC head per run (one readout per sequence)."""
    ops: list[OpEntry] = []
    width = hidden
    in_bits = r_bits
    if head.w_hidden is not None:
        units = int(head.w_hidden.shape[0])
        ops += [_op("head_hidden_mult", 0, "mult", [weight_bits, in_bits], sequences * units * width),
                _op("head_hidden_add", 0, "add", 32, sequences * units * (width + 1))]
        width, in_bits = units, head.hidden_bits
    classes = int(head.w_out.shape[0])
    ops += [_op("head_out_mult", 0, "mult", [weight_bits, in_bits], sequences * classes * width),
            _op("head_out_add", 0, "add", 32, sequences * classes * (width + 1))]
    return ops


def baseline_counters(model: FrozenBaseline, lengths: np.ndarray, tallies: list[dict[str, Any]]) -> dict[str, Any]:
    """Operation counts of a MAC-baseline run (one engine, sequential over n).

    Per element and layer: every synapse is a MAC (``mult`` + ``add``) — input projection and
    recurrent product; a bias add per gate row; per gate unit one activation multiply
    (z·M, operand widths acc_bits × bits of M) with its sign select (g) or offset add (f, i,
    o) and a 2-compare clip; the cell's f·c and i·g multiplies, add and saturation; the hard
    tanh of c (multiply, select, clip) and the o·tanh(c) multiply; the full weight matrices
    are read once per element (no reuse across elements: each step waits for h(n−1)); h and
    c of the previous element are read once per element.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    sequences = int(lengths.size)
    q_one = 1 << model.frac_bits
    wb = model.weight_bits
    ab = signed_bits(-q_one, q_one)  # activations span [−Q, Q]: act_bits + 1 signed bits
    ops: list[OpEntry] = []
    layers_out: list[dict[str, Any]] = []
    for index, (layer, tally) in enumerate(zip(model.layers, tallies)):
        number = index + 1
        H, D = layer.hidden_size, layer.input_size
        rows = 4 * H
        elements = int(tally["cells"])
        acc = layer.acc_bits
        in_bits = model.input_bits if index == 0 else ab
        units = elements * H
        cw = layer.cell_bits
        m_bits = max(int(m).bit_length() for pair in list(layer.act_mult.values()) + [layer.c_mult] for m in pair) + 1
        ops += [
            _op("input_mult", number, "mult", [wb, in_bits], elements * rows * D),
            _op("input_mac_add", number, "add", acc, elements * rows * D),
            _op("recurrent_mult", number, "mult", [wb, ab], elements * rows * H),
            _op("recurrent_mac_add", number, "add", acc, elements * rows * H),
            _op("bias_add", number, "add", acc, elements * rows),
            _op("activation_mult", number, "mult", [acc, m_bits], elements * rows),
            _op("activation_offset_add", number, "add", ab, units * 3),
            _op("activation_sign_select", number, "mux", m_bits, units),
            _op("activation_clip", number, "cmp", ab, elements * rows * 2),
            _op("cell_forget_mult", number, "mult", [ab, cw], units),
            _op("cell_input_mult", number, "mult", [ab, ab], units),
            _op("cell_add", number, "add", cw + ab, units),
            _op("cell_saturate", number, "cmp", cw, units * 2),
            _op("cell_register", number, "reg_write", cw, units),
            _op("tanh_c_mult", number, "mult", [cw, m_bits], units),
            _op("tanh_c_sign_select", number, "mux", m_bits, units),
            _op("tanh_c_clip", number, "cmp", ab, units * 2),
            _op("hidden_mult", number, "mult", [ab, ab], units),
            _op("h_register", number, "reg_write", ab, units),
            _op("input_weight_read", number, "read", wb, elements * rows * D,
                memory_bytes=_memory_bytes(rows, D, wb)),
            _op("recurrent_weight_read", number, "read", wb, elements * rows * H,
                memory_bytes=_memory_bytes(rows, H, wb)),
            _op("state_read", number, "read", ab + cw, units, memory_bytes=_memory_bytes(H, 1, ab + cw)),
        ]
        layers_out.append({
            "layer": number,
            "elements": elements,
            "input_nonzero_fraction": _frac(int(tally["input_nonzero"]), elements * D),
            "recurrent_nonzero_fraction": _frac(int(tally["recurrent_nonzero"]), units),
        })
    head = _head_ops(model.head, sequences, model.hidden_size, r_bits=ab, weight_bits=wb)
    return {
        "model": "baseline",
        "sequences": sequences,
        "elements": int(lengths.sum()),
        "layers": layers_out,
        "schedules": {"sequential": {"ops": ops, "totals": _totals(ops), "per_inference": _summary(ops, sequences)}},
        "head": {"ops": head, "totals": _totals(head)},
    }
