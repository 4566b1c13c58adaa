"""GateNeurons against ``arith.binary_lif`` / ``arith.ternary_lif`` / ``arith.clip`` (latency queue)."""

from __future__ import annotations

import gc

import numpy as np
import pytest
from amaranth.sim import Simulator

from snnhw.hw.neuron_lanes import GATES, GateNeurons
from snnhw.quant import arith
from snnhw.quant.frozen import BinaryNeuron, ClipGate
from snnhw.quant.synthetic import random_frozen_spiking

pytestmark = pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")


def _expected(layer, z: np.ndarray, u: dict[str, np.ndarray]) -> tuple[dict, dict]:
    """Gate outputs and new membranes of lanes from the contract primitives."""
    out, new = {}, {}
    for gi, a in enumerate(GATES):
        n = getattr(layer, a)
        if isinstance(n, ClipGate):
            out[a] = arith.clip(z[gi], n.lo, n.hi)
        elif isinstance(n, BinaryNeuron):
            out[a], new[a] = arith.binary_lif(u[a], z[gi], n.theta, n.leak, n.leak_rounding, n.membrane_bits)
        else:
            out[a], new[a] = arith.ternary_lif(u[a], z[gi], n.theta_pos, n.theta_neg, n.shift_pos,
                                               n.shift_neg, n.leak, n.leak_rounding, n.membrane_bits)
    return out, new


def _run(layer, lanes: int, vectors: int, seed: int, corrupt: bool = False,
         stages: int = 1) -> list[tuple[list, list]]:
    dut = GateNeurons(layer, lanes, stages=stages)
    rng = np.random.default_rng(seed)
    zlo, zhi = arith.signed_range(layer.acc_bits)
    z = rng.integers(zlo // 4, zhi // 4, size=(vectors, 4, lanes))
    mem_names = list(dut.mem_layout.members)
    u = {}
    for a in mem_names:
        bits = getattr(layer, a).membrane_bits
        lo, hi = arith.signed_range(bits)
        u[a] = rng.integers(lo, hi + 1, size=(vectors, lanes))
    pairs = []
    expected = []
    for n in range(vectors):
        out, new = _expected(layer, z[n], {a: u[a][n] for a in mem_names})
        flat = [int(out[a][k]) for a in GATES for k in range(lanes)]
        flat += [int(new[a][k]) for a in mem_names if a != "c" for k in range(lanes)]
        flat += [int(u["c"][n][k]) for k in range(lanes)]
        expected.append(flat)
    if corrupt:
        expected[vectors // 2][0] ^= 1

    async def tb(ctx):
        for n in range(vectors + dut.latency):
            if n < vectors:
                for k in range(lanes):
                    for gi in range(4):
                        ctx.set(dut.z[gi][k], int(z[n, gi, k]))
                    for a in mem_names:
                        ctx.set(dut.u_prev[k][a], int(u[a][n, k]))
            if n >= dut.latency:
                got = [ctx.get(dut.gates[k][a]) for a in GATES for k in range(lanes)]
                got += [ctx.get(dut.u_next[k][a]) for a in mem_names if a != "c" for k in range(lanes)]
                got += [ctx.get(dut.u_next[k]["c"]) for k in range(lanes)]
                pairs.append((expected[n - dut.latency], got))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    return pairs


@pytest.mark.parametrize("stages", [1, 2, 3])
@pytest.mark.parametrize("ns,leak,sat", [("g", "if", False), ("i", "lif", False), ("g", "gt1", True),
                                         ("i", "if", True)])
def test_gate_neurons_match_arith(ns: str, leak: str, sat: bool, stages: int) -> None:
    model = random_frozen_spiking(5, input_size=3, hidden_size=4, T=3, nonspiking_gate=ns, leak=leak, saturate=sat)
    pairs = _run(model.layers[0], 3, 60, seed=11, stages=stages)
    assert len(pairs) == 60 and all(e == g for e, g in pairs)


@pytest.mark.parametrize("stages", [1, 2, 3])
def test_gate_neurons_fail_on_corrupted_expectation(stages: int) -> None:
    model = random_frozen_spiking(5, input_size=3, hidden_size=4, T=3)
    pairs = _run(model.layers[0], 2, 10, seed=1, corrupt=True, stages=stages)
    assert sum(e != g for e, g in pairs) == 1


def test_gate_neurons_reject_bad_parameters() -> None:
    model = random_frozen_spiking(5, input_size=3, hidden_size=4, T=3)
    with pytest.raises(ValueError):
        GateNeurons(model.layers[0], 0)
    with pytest.raises(ValueError):
        GateNeurons(model.layers[0], 2, stages=4)
    layer = model.layers[0]
    bad = type(layer)(**{**layer.__dict__, "g": layer.f})
    with pytest.raises(ValueError):
        GateNeurons(bad, 2)
    gc.collect()
