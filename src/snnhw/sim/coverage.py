"""Coverage-directed stimulus: input sequences chosen with the golden model to reach rare events.

Random inputs rarely put a membrane exactly on its threshold, a −1 spike into one unit's
recurrence, or a non-zero spike into the readout of every unit, yet a fault in the logic that
handles such a case (a comparison off by one, the sign correction of an adder tree, one bias
shift of one lane) shows only there (docs/verification.md, "Systematic mutants": the survivors
of the random stimulus needed exactly these). :func:`directed_inputs` draws a pool of random
sequences, runs the golden model with its trace once over the pool, keeps the first half of the
batch as drawn and fills the other half with the sequences that add the most *events*
(:func:`spiking_events`), greedily, the rarest events first.

An event is a tuple naming what happened and where (layer, gate, time step t, unit j, and for
threshold events whether it was the sequence's first element, where c(n−1) and h(n−1) are 0):

* ``("on-threshold", l, gate, sign, 0, t, j, first)``: a neuron's membrane before the reset
  ``v`` ended on a threshold without firing (binary: ``v = θ``; ternary: ``v = θ⁺`` or
  ``v = −θ⁻``), the largest value that does not fire; ``("below-threshold", …, d, …)`` for
  ``d`` = −1, −2 steps short of it;
* ``("just-fired", l, gate, sign, d, t, j, first)``: it fired from ``d`` = 1..:data:`NEAR`
  steps past the threshold (``U = ±d`` after the reset), 1 being the smallest value that fires;
* ``("clip", l, gate, side, t, j)``: a non-spiking gate's pre-activation ``z`` beyond a bound
  (``side`` "lo" / "hi") or on it ("lo-edge" / "hi-edge");
* ``("c-saturated", l, side, t, j)``: the cell state at its register's limit;
* ``("h-negative", l, t, j)``: h(n, t)[j] = −1 with a next element to receive it;
* ``("readout", sign, t, j)``: the last layer's h(N, t)[j] = ±1, a term of the readout r[j].

A baseline model has its own events (:func:`baseline_events`): each activation's value before
its clip within 1 of a clip bound, and the cell state at its register's limits.
"""

from __future__ import annotations

import heapq
import math
from typing import Hashable, Sequence

import numpy as np

from snnhw.quant.frozen import BinaryNeuron, ClipGate, FrozenBaseline, FrozenSpiking, SpikingLayer, TernaryNeuron

Event = tuple[Hashable, ...]
NEAR = 2
"""Membranes up to this far from a threshold (either side) count as threshold events."""
GATE_ORDER = ("f", "i", "g", "o")
"""The gate blocks of the golden trace's ``z`` (each H wide)."""


def _add(events: list[set[Event]], mask: np.ndarray, key: tuple, first: bool = False) -> None:
    """Add ``key + (t, j)`` (``+ (n == 0,)`` with ``first``) to the event set of every sequence b
    where ``mask[b, n, t, j]`` holds."""
    for b, n, t, j in zip(*np.nonzero(mask)):
        events[b].add(key + (int(t), int(j)) + ((bool(n == 0),) if first else ()))


def _neuron_events(events: list[set[Event]], l: int, gate: str, neuron: BinaryNeuron | TernaryNeuron,
                   spikes: np.ndarray, u: np.ndarray, valid: np.ndarray) -> None:
    """Threshold events of one spiking neuron from its spikes and membranes after the reset:
    the membrane before the reset ``v`` within :data:`NEAR` of a threshold, by offset."""
    if isinstance(neuron, BinaryNeuron):
        sides = ((1, neuron.theta, spikes == 1),)
    else:
        sides = ((1, neuron.theta_pos, spikes == 1), (-1, neuron.theta_neg, spikes == -1))
    for sign, theta, fired in sides:
        # v = U (no spike) or U ± θ (fired); offset d = sign·v − θ: d ≤ 0 does not fire, d ≥ 1 does
        for d in range(-NEAR, NEAR + 1):
            if d <= 0:
                hit = (spikes == 0) & (u == sign * (theta + d))
                _add(events, valid & hit, ("on-threshold" if d == 0 else "below-threshold", l, gate, sign, d),
                     first=True)
            else:
                _add(events, valid & fired & (u == sign * d), ("just-fired", l, gate, sign, d), first=True)


def _layer_events(events: list[set[Event]], l: int, layer: SpikingLayer, trace: dict[str, np.ndarray],
                  valid: np.ndarray, has_next: np.ndarray) -> None:
    """Every event of layer ``l`` (its trace arrays are [B, N, T, H] and [B, N, T, 4H])."""
    hidden = layer.hidden_size
    for gi, gate in enumerate(GATE_ORDER):
        neuron = getattr(layer, gate)
        if isinstance(neuron, ClipGate):
            z = trace["z"][..., gi * hidden:(gi + 1) * hidden]
            _add(events, valid & (z < neuron.lo), ("clip", l, gate, "lo"))
            _add(events, valid & (z > neuron.hi), ("clip", l, gate, "hi"))
            _add(events, valid & (z == neuron.lo), ("clip", l, gate, "lo-edge"))
            _add(events, valid & (z == neuron.hi), ("clip", l, gate, "hi-edge"))
        else:
            _neuron_events(events, l, gate, neuron, trace[gate], trace["U_" + gate], valid)
    _neuron_events(events, l, "c", layer.c, trace["s_c"], trace["U_c"], valid)
    top = (1 << (layer.cell_bits - 1)) - 1
    _add(events, valid & (trace["c"] == top), ("c-saturated", l, "hi"))
    _add(events, valid & (trace["c"] == -top - 1), ("c-saturated", l, "lo"))
    _add(events, has_next & (trace["h"] == -1), ("h-negative", l))


def spiking_events(model: FrozenSpiking, trace: list[dict[str, np.ndarray]], lengths: np.ndarray) -> list[set[Event]]:
    """The events (module docstring) of each sequence of a golden run with ``trace=True``.

    Args:
        model: the frozen spiking model.
        trace: the run's per-layer trace (``golden.run_spiking(..., trace=True).trace``).
        lengths: int64 [B], the sequences' lengths (elements beyond are ignored).
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    batch, length = trace[0]["h"].shape[:2]
    n = np.arange(length)[None, :, None, None]
    valid = n < lengths[:, None, None, None]
    has_next = n < (lengths - 1)[:, None, None, None]
    last = n == (lengths - 1)[:, None, None, None]
    events: list[set[Event]] = [set() for _ in range(batch)]
    for l, (layer, layer_trace) in enumerate(zip(model.layers, trace)):
        _layer_events(events, l, layer, layer_trace, valid, has_next)
    h = trace[-1]["h"]
    _add(events, last & (h == 1), ("readout", 1))
    _add(events, last & (h == -1), ("readout", -1))
    return events


def baseline_events(model: FrozenBaseline, trace: list[dict[str, np.ndarray]], lengths: np.ndarray) -> list[set[Event]]:
    """The events of each sequence of a baseline golden run with ``trace=True``: each
    activation's value before its clip (``golden.baseline_gate_activations`` of the traced z,
    ``golden.baseline_tanh_c`` of the traced c) within 1 of a clip bound
    (``("act-edge", l, gate, bound, d, 0, j)``, ``d`` the offset from the bound), and c at its
    register's limits (``("c-saturated", l, side, 0, j)``); trace arrays [B, N, H] and
    [B, N, 4H] (``golden.run_baseline``)."""
    from snnhw.quant import golden

    lengths = np.asarray(lengths, dtype=np.int64)
    batch, length = trace[0]["h"].shape[:2]
    valid = (np.arange(length)[None, :] < lengths[:, None])[..., None, None]  # [B, N, 1, 1]: t axis of size 1
    events: list[set[Event]] = [set() for _ in range(batch)]
    for l, (layer, tr) in enumerate(zip(model.layers, trace)):
        activations = golden.baseline_gate_activations(layer, model.frac_bits, tr["z"])
        activations["tc"] = golden.baseline_tanh_c(layer, model.frac_bits, tr["c"])
        for gate, (value, lo, hi) in activations.items():
            for bound, edge in (("lo", lo), ("hi", hi)):
                for d in (-1, 0, 1):
                    _add(events, valid & (value == edge + d)[:, :, None, :], ("act-edge", l, gate, bound, d))
        top = (1 << (layer.cell_bits - 1)) - 1
        _add(events, valid & (tr["c"] == top)[:, :, None, :], ("c-saturated", l, "hi"))
        _add(events, valid & (tr["c"] == -top - 1)[:, :, None, :], ("c-saturated", l, "lo"))
    return events


def greedy_cover(events: list[set[Event]], count: int, first: Sequence[int] = (0,)) -> list[int]:
    """Indices of ``count`` sequences that together cover the most events, rarest first:
    the ``first`` ones, then repeatedly the one whose events not yet covered weigh the most, an event weighing 1 / (the number of sequences that have it) (the lowest index on
    ties; once nothing new is left, the lowest unused indices).

    Lazy greedy: a sequence's gain only shrinks as more is covered, so a stale gain is an upper
    bound and only the top of the heap is recomputed. Gains are ``math.fsum``-rounded, hence
    independent of set order (string hashing differs between processes).
    """
    count = min(count, len(events))
    have: dict[Event, int] = {}
    for es in events:
        for e in es:
            have[e] = have.get(e, 0) + 1
    chosen: list[int] = list(first)[:count]
    covered: set[Event] = set().union(*(events[k] for k in chosen))

    def gain(k: int) -> float:
        return math.fsum(1.0 / have[e] for e in events[k] - covered)

    heap = [(-gain(k), k) for k in range(len(events)) if k not in chosen]
    heapq.heapify(heap)
    while len(chosen) < count:
        stale, k = heapq.heappop(heap)
        fresh = -gain(k)
        if fresh > stale and heap and (fresh, k) > heap[0]:
            heapq.heappush(heap, (fresh, k))
            continue
        chosen.append(k)
        covered |= events[k]
    return chosen


def directed_inputs(model: FrozenSpiking | FrozenBaseline, seed: int, batch: int, n_max: int, *, pool: int = 16,
                    spikes: bool = False) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """``batch`` input sequences (N ≤ ``n_max``) from ``pool × batch`` random ones
    (:func:`snnhw.quant.synthetic.random_inputs` with ``seed``): the first ⌈batch/2⌉ of them
    (sequence 0 has length ``n_max``) as drawn, which keeps the typical behaviour random inputs
    exercise, then the ones that add the most golden events (:func:`spiking_events` or
    :func:`baseline_events`, :func:`greedy_cover`).

    Returns ``(x, lengths, stats)``: the inputs as ``random_inputs`` gives them (``spikes``:
    explicit spike input), and ``stats`` with the events the pool has (``pool_events``) and the
    chosen sequences cover (``covered_events``), and what the pool's first ``batch`` sequences
    (plain random inputs) would cover (``random_events``).
    """
    from snnhw.quant import golden
    from snnhw.quant.synthetic import random_inputs

    x, lengths = random_inputs(model, seed, max(batch, pool * batch), n_max, vary_lengths=True, spikes=spikes)
    if isinstance(model, FrozenBaseline):
        events = baseline_events(model, golden.run_baseline(model, x, lengths, trace=True).trace, lengths)
    elif spikes:
        events = spiking_events(model, golden.run_spiking(model, None, lengths, spikes_in=x, trace=True).trace, lengths)
    else:
        events = spiking_events(model, golden.run_spiking(model, x, lengths, trace=True).trace, lengths)
    chosen = greedy_cover(events, batch, first=range((batch + 1) // 2))
    stats = {"pool_events": len(set().union(*events)),
             "covered_events": len(set().union(*(events[k] for k in chosen))),
             "random_events": len(set().union(*events[:batch]))}
    return x[chosen], lengths[chosen], stats
