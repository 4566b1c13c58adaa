"""Engine (adder trees + accumulator + gate neurons + cell update) against the golden cell.

Each test cell gets random h(n−1,t), projection P, membranes and c(n−1,t); the engine sums the
layer's real recurrent weights chunk by chunk (beats), and its h, c and membranes must equal
``golden.gate_preactivation`` + ``golden.cell_from_preactivation`` exactly.
"""

from __future__ import annotations

from math import ceil

import numpy as np
import pytest
from amaranth.hdl import Fragment
from amaranth.sim import Simulator

from snnhw.hw.engine import Engine
from snnhw.hw.neuron_lanes import membranes_layout
from snnhw.quant import golden
from snnhw.quant.synthetic import random_frozen_spiking


def _run(layer, lanes: int, fanin: int, cells: int, seed: int, corrupt: bool = False):
    H = layer.hidden_size
    dut = Engine(layer, weight_bits=8, lanes=lanes, fanin=fanin)
    rng = np.random.default_rng(seed)
    C = ceil(H / fanin)
    names = list(membranes_layout(layer).members)
    h_prev = rng.integers(-1, 2, size=(cells, H))
    p = rng.integers(-40, 41, size=(cells, 4 * H))
    c_prev = rng.integers(-20, 21, size=(cells, H))
    mem = {a: rng.integers(-30, 31, size=(cells, H)) for a in names}
    groups = [g for g in range(ceil(H / lanes))]
    expected = []
    for n in range(cells):
        z = golden.gate_preactivation(layer, p[n], h_prev[n])
        step = golden.cell_from_preactivation(layer, z, {a: mem[a][n] for a in names}, c_prev[n])
        expected.append((step.h, step.c, step.membranes))
    # beats: per cell, per unit group, per chunk (units ≥ H padded with zero weights)
    beats, finals = [], []
    for n in range(cells):
        for g in groups:
            for c in range(C):
                w = np.zeros((4, lanes, fanin), dtype=np.int64)
                s = np.zeros(fanin, dtype=np.int64)
                for f in range(fanin):
                    d = c * fanin + f
                    if d < H:
                        s[f] = h_prev[n, d]
                        for k in range(lanes):
                            j = g * lanes + k
                            if j < H:
                                w[:, k, f] = layer.w_h[np.arange(4) * H + j, d]
                beats.append((w, s, c == 0, c == C - 1, n, g))
    pairs = []

    async def tb(ctx):
        pending = {}
        for cyc in range(len(beats) + dut.latency + 1):
            if cyc < len(beats):
                w, s, first, last, n, g = beats[cyc]
                ctx.set(dut.beat.valid, 1)
                ctx.set(dut.beat.first, int(first))
                ctx.set(dut.beat.last, int(last))
                for a in range(4):
                    for k in range(lanes):
                        for f in range(fanin):
                            ctx.set(dut.weights[a][k][f], int(w[a, k, f]))
                for f in range(fanin):
                    ctx.set(dut.spikes[f], int(s[f]))
                if last:
                    pending[cyc + 1] = (n, g)
            else:
                ctx.set(dut.beat.valid, 0)
            if cyc in pending:  # second-cycle inputs of a last beat
                n, g = pending[cyc]
                for k in range(lanes):
                    j = g * lanes + k
                    for a in range(4):
                        ctx.set(dut.base[a][k], int(layer.bias[a * H + j] + p[n, a * H + j]) if j < H else 0)
                    for a in names:
                        ctx.set(dut.u_prev[k][a], int(mem[a][n, j]) if j < H else 0)
                    ctx.set(dut.c_prev[k], int(c_prev[n, j]) if j < H else 0)
            if cyc >= 3 and cyc - 3 < len(beats) and beats[cyc - 3][3]:
                assert ctx.get(dut.out_valid) == 1
                n, g = beats[cyc - 3][4], beats[cyc - 3][5]
                h, c, m = expected[n]
                for k in range(lanes):
                    j = g * lanes + k
                    if j >= H:
                        continue
                    want = [int(h[j]), int(c[j])] + [int(m[a][j]) for a in names]
                    if corrupt and n == 0 and j == 0:
                        want[1] += 1
                    got = [ctx.get(dut.h[k]), ctx.get(dut.c[k])] + [ctx.get(dut.u[k][a]) for a in names]
                    pairs.append((want, got))
            elif cyc >= 3:
                assert ctx.get(dut.out_valid) == 0
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    return pairs


@pytest.mark.parametrize("ns,leak,lanes,fanin", [("g", "if", 2, 2), ("i", "lif", 3, 4), ("g", "gt1", 1, 5),
                                                 ("g", "if", 5, 1)])
def test_engine_matches_golden_cell(ns: str, leak: str, lanes: int, fanin: int) -> None:
    model = random_frozen_spiking(3, input_size=3, hidden_size=5, T=2, nonspiking_gate=ns, leak=leak)
    pairs = _run(model.layers[0], lanes, fanin, cells=6, seed=4)
    assert pairs and all(w == g for w, g in pairs)


def test_engine_fails_on_corrupted_expectation() -> None:
    model = random_frozen_spiking(3, input_size=3, hidden_size=5, T=2)
    pairs = _run(model.layers[0], 2, 2, cells=2, seed=4, corrupt=True)
    assert sum(w != g for w, g in pairs) == 1


def test_engine_latency_and_adders() -> None:
    model = random_frozen_spiking(3, input_size=3, hidden_size=5, T=2)
    eng = Engine(model.layers[0], weight_bits=8, lanes=3, fanin=4)
    assert eng.latency == 3 and eng.adders == 48
    Fragment.get(eng, None)
