"""CellUpdate against ``arith.spike_select`` / ``arith.cell_update`` / ``arith.ternary_lif``."""

from __future__ import annotations

import gc

import numpy as np
import pytest
from amaranth.sim import Simulator

from snnhw.hw.cell_update import CellUpdate
from snnhw.hw.knobs import CELL_STAGES
from snnhw.quant import arith
from snnhw.quant.frozen import ClipGate
from snnhw.quant.synthetic import random_frozen_spiking

pytestmark = pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")


def _gate_values(rng, gate, n: int) -> np.ndarray:
    if isinstance(gate, ClipGate):
        return rng.integers(gate.lo, gate.hi + 1, size=n)
    return rng.integers(-1, 2, size=n) if gate.__class__.__name__ == "TernaryNeuron" else rng.integers(0, 2, size=n)


def _run(layer, lanes: int, vectors: int, seed: int, corrupt: bool = False, stages: int = 1):
    dut = CellUpdate(layer, lanes, stages=stages)
    rng = np.random.default_rng(seed)
    shape = (vectors, lanes)
    s_f = rng.integers(0, 2, size=shape)
    s_o = rng.integers(0, 2, size=shape)
    i_v = _gate_values(rng, layer.i, vectors * lanes).reshape(shape)
    g_v = _gate_values(rng, layer.g, vectors * lanes).reshape(shape)
    clo, chi = arith.signed_range(layer.cell_bits)
    c_prev = rng.integers(clo, chi + 1, size=shape)
    ulo, uhi = arith.signed_range(layer.c.membrane_bits)
    uc_prev = rng.integers(ulo, uhi + 1, size=shape)
    q = arith.spike_select(i_v, g_v) if isinstance(layer.g, ClipGate) else arith.spike_select(g_v, i_v)
    c = arith.cell_update(c_prev, s_f, q, layer.cell_bits)
    n = layer.c
    s_c, uc = arith.ternary_lif(uc_prev, c, n.theta_pos, n.theta_neg, n.shift_pos, n.shift_neg, n.leak, n.leak_rounding,
                                n.membrane_bits)
    h = arith.spike_select(s_o, s_c)
    expected = [np.concatenate([c[v], uc[v], h[v]]).tolist() for v in range(vectors)]
    if corrupt:
        expected[1][0] += 1
    pairs = []

    async def tb(ctx):
        for v in range(vectors + dut.latency):
            if v < vectors:
                for k in range(lanes):
                    for name, arr in (("f", s_f), ("o", s_o), ("i", i_v), ("g", g_v)):
                        ctx.set(dut.gates[k][name], int(arr[v, k]))
                    ctx.set(dut.c_prev[k], int(c_prev[v, k]))
                    ctx.set(dut.uc_prev[k], int(uc_prev[v, k]))
            if v >= dut.latency:
                got = [ctx.get(dut.c[k]) for k in range(lanes)] + [ctx.get(dut.uc[k]) for k in range(lanes)] \
                    + [ctx.get(dut.h[k]) for k in range(lanes)]
                pairs.append((expected[v - dut.latency], got))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    return pairs


@pytest.mark.parametrize("stages", CELL_STAGES)
@pytest.mark.parametrize("ns,leak,sat", [("g", "if", False), ("i", "lif", True), ("g", "gt1", True)])
def test_cell_update_matches_arith(ns: str, leak: str, sat: bool, stages: int) -> None:
    model = random_frozen_spiking(7, input_size=3, hidden_size=4, T=2, nonspiking_gate=ns, leak=leak, saturate=sat)
    pairs = _run(model.layers[0], 3, 80, seed=2, stages=stages)
    assert len(pairs) == 80 and all(e == g for e, g in pairs)


@pytest.mark.parametrize("stages", CELL_STAGES)
def test_cell_update_fails_on_corrupted_expectation(stages: int) -> None:
    model = random_frozen_spiking(7, input_size=3, hidden_size=4, T=2)
    pairs = _run(model.layers[0], 2, 6, seed=2, corrupt=True, stages=stages)
    assert sum(e != g for e, g in pairs) == 1


def test_cell_update_rejects_bad_lanes() -> None:
    model = random_frozen_spiking(7, input_size=3, hidden_size=4, T=2)
    with pytest.raises(ValueError):
        CellUpdate(model.layers[0], 0)
    gc.collect()
