"""Coverage-directed stimulus (``snnhw.sim.coverage``): the events, the greedy choice, and that
the chosen sequences expose neuron-constant faults that random ones miss (golden model only, fast)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from snnhw.quant import golden
from snnhw.quant.synthetic import random_frozen_baseline, random_frozen_spiking, random_inputs
from snnhw.sim.coverage import baseline_events, directed_inputs, greedy_cover, spiking_events

# the spiking configuration of the mutation campaigns (docs/verification.md, "Systematic mutants")
MODEL = dict(input_size=3, hidden_size=4, T=2)


def test_greedy_cover_takes_the_largest_gain_then_the_lowest_index() -> None:
    a, b, c, d, e, r = "abcder"
    # a and b are in three sequences each (weight 1/3), r in one: the rare event wins
    assert greedy_cover([{c}, {a, b}, {a, b}, {a, b}, {r}], 2) == [0, 4]
    events = [{a}, {b, c}, {a, b, c, d}, {e}, {d, e}]
    assert greedy_cover(events, 3) == [0, 2, 3]  # 0 first; then 3 new events; then e (3 before 4)
    assert greedy_cover(events, 2, first=()) == [2, 3]
    assert greedy_cover(events, 3, first=[3, 4]) == [3, 4, 2]  # a, b, c weigh ½ each: 2 adds 1.5
    assert greedy_cover(events, 9) == [0, 2, 3, 1, 4]  # nothing new left: the lowest unused indices


def test_events_follow_their_definitions() -> None:
    model = random_frozen_spiking(901, **MODEL)
    x, lengths = random_inputs(model, 3, 64, 8)
    trace = golden.run_spiking(model, x, lengths, trace=True).trace
    events = spiking_events(model, trace, lengths)
    layer, tr = model.layers[0], trace[0]
    on_threshold, below, fired, readout = set(), set(), set(), set()
    for b in range(x.shape[0]):
        for n in range(int(lengths[b])):
            for t in range(model.T):
                for j in range(model.hidden_size):
                    u, s = tr["U_f"][b, n, t, j], tr["f"][b, n, t, j]
                    if s == 0 and u == layer.f.theta:
                        on_threshold.add((b, t, j, n == 0))
                    if s == 0 and u == layer.f.theta - 1:
                        below.add((b, t, j, n == 0))
                    if s == 1 and u == 2:
                        fired.add((b, t, j, n == 0))
                    if n == lengths[b] - 1 and tr["h"][b, n, t, j] != 0:
                        readout.add((b, int(tr["h"][b, n, t, j]), t, j))
    def found(kind: str, offset: int) -> set:
        return {(b, *e[-3:]) for b, es in enumerate(events) for e in es if e[:5] == (kind, 0, "f", 1, offset)}
    assert on_threshold and found("on-threshold", 0) == on_threshold
    assert below and found("below-threshold", -1) == below
    assert fired and found("just-fired", 2) == fired  # fired from v = θ + 2
    assert {(b, *e[1:]) for b, es in enumerate(events) for e in es if e[0] == "readout"} == readout


def _changes_readout(a, b, x: np.ndarray, lengths: np.ndarray) -> bool:
    return not np.array_equal(golden.run_spiking(a, x, lengths).readout, golden.run_spiking(b, x, lengths).readout)


def _constant_faults(model) -> dict[str, object]:
    """The model with one neuron constant off by one: each threshold, a bias shift, a clip bound."""
    layer, r = model.layers[0], dataclasses.replace

    def with_layer(**changes):
        return r(model, layers=[r(layer, **changes)])

    return {
        "θ_f − 1": with_layer(f=r(layer.f, theta=layer.f.theta - 1)),
        "θ_f + 1": with_layer(f=r(layer.f, theta=layer.f.theta + 1)),
        "θ_o + 1": with_layer(o=r(layer.o, theta=layer.o.theta + 1)),
        "θ_i − 1": with_layer(i=r(layer.i, theta=layer.i.theta - 1)),
        "θ_c⁺ − 1": with_layer(c=r(layer.c, theta_pos=layer.c.theta_pos - 1)),
        "θ_c⁻ − 1": with_layer(c=r(layer.c, theta_neg=layer.c.theta_neg - 1)),
        "σ_c⁻ − 1": with_layer(c=r(layer.c, shift_neg=layer.c.shift_neg - 1)),
        "σ_c⁺ + 1": with_layer(c=r(layer.c, shift_pos=layer.c.shift_pos + 1)),
        "g lo + 1": with_layer(g=r(layer.g, lo=layer.g.lo + 1)),
        "g hi − 1": with_layer(g=r(layer.g, hi=layer.g.hi - 1)),
    }


def test_directed_sequences_expose_constant_faults() -> None:
    """Ten faults of one neuron constant (off by one), 20 stimulus seeds each, 6 sequences with
    N ≤ 6 as in the mutation checks: the chosen sequences reveal a fault (a readout word
    changes) on at least 1.4 × as many (fault, seed) pairs as random ones (56 against 32 when
    written)."""
    model = random_frozen_spiking(901, **MODEL)
    faults = _constant_faults(model)
    directed = random = 0
    for seed in range(20):
        x, lengths, stats = directed_inputs(model, seed, 6, 6)
        rx, rl = random_inputs(model, seed, 6, 6)
        assert stats["covered_events"] >= stats["random_events"]
        for faulty in faults.values():
            directed += _changes_readout(model, faulty, x, lengths)
            random += _changes_readout(model, faulty, rx, rl)
    print(f"constant faults revealed: {directed} of {20 * len(faults)} (directed), {random} (random)")
    assert directed >= 1.4 * random > 0


def test_baseline_events_and_coverage() -> None:
    """Baseline events: an activation's value before its clip next to a bound, checked against
    the golden f itself (a value d from the lower bound 0 clips to max(d, 0), one d from the upper
    bound Q to min(Q + d, Q)); the chosen sequences cover more of them than random ones."""
    model = random_frozen_baseline(902, input_size=3, hidden_size=4)
    x, lengths = random_inputs(model, 5, 64, 8)
    trace = golden.run_baseline(model, x, lengths, trace=True).trace
    events = baseline_events(model, trace, lengths)
    q_one = 1 << model.frac_bits
    f = trace[0]["f"]
    valid = np.arange(x.shape[1])[None, :] < lengths[:, None]
    seen = 0
    for b, es in enumerate(events):
        for e in es:
            if e[:3] == ("act-edge", 0, "f"):
                bound, d, j = e[3], e[4], e[-1]
                expected = max(d, 0) if bound == "lo" else min(q_one + d, q_one)
                assert np.any(valid[b] & (f[b, :, j] == expected)), (e, expected)
                seen += 1
    assert seen >= 3
    x, lengths, stats = directed_inputs(model, 902, 32, 16)
    assert stats["covered_events"] > 1.5 * stats["random_events"], stats
