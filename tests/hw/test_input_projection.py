"""InputProjection (the layer-1 direct-input MAC) against ``golden.input_projection``; exact timing."""

from __future__ import annotations

import gc

import numpy as np
import pytest
from amaranth.sim import Simulator

from snnhw.hw.input_projection import InputProjection
from snnhw.quant import arith, golden
from snnhw.quant.synthetic import random_frozen_spiking

pytestmark = pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")


def _run(model, lanes: int, fanin: int, elements: int, seed: int, corrupt: bool = False, stages: int = 1):
    layer = model.layers[0]
    H = layer.hidden_size
    dut = InputProjection(layer, input_bits=model.input_bits, weight_bits=model.weight_bits, lanes=lanes, fanin=fanin,
                          stages=stages)
    rng = np.random.default_rng(seed)
    lo, hi = arith.signed_range(model.input_bits)
    x = rng.integers(lo, hi + 1, size=(elements, model.input_size))
    x[0] = lo  # extreme input: the pre-shift MAC at its bound
    expected = golden.input_projection(layer, x)
    if corrupt:
        expected[1, 0] += 1
    results = []

    async def tb(ctx):
        for n in range(elements):
            ctx.set(dut.x.as_value(), 0)
            for d in range(model.input_size):
                ctx.set(dut.x[d], int(x[n, d]))
            ctx.set(dut.start, 1)
            await ctx.tick()
            ctx.set(dut.start, 0)
            got = np.zeros(4 * H, dtype=np.int64)
            writes = 0
            for cyc in range(1, dut.latency + 1):
                if ctx.get(dut.wr_en):
                    g = ctx.get(dut.wr_addr)
                    writes += 1
                    for a in range(4):
                        for k in range(lanes):
                            j = g * lanes + k
                            if j < H:
                                got[a * H + j] = ctx.get(dut.wr_data[a][k])
                done = ctx.get(dut.done)
                assert done == (cyc == dut.latency)
                await ctx.tick()
            assert writes == dut.G
            results.append((expected[n], got))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    return results


@pytest.mark.parametrize("lanes,fanin,shift_seed,stages", [(2, 1, 1, 1), (3, 2, 2, 1), (1, 4, 3, 1), (4, 3, 4, 1),
                                                           (2, 1, 5, 2), (3, 2, 6, 2)])
def test_projection_matches_golden(lanes: int, fanin: int, shift_seed: int, stages: int) -> None:
    model = random_frozen_spiking(shift_seed, input_size=4, hidden_size=5, T=2, encoding="direct", input_bits=6)
    results = _run(model, lanes, fanin, elements=3, seed=shift_seed, stages=stages)
    assert all(np.array_equal(e, g) for e, g in results)


def test_projection_fails_on_corrupted_expectation() -> None:
    model = random_frozen_spiking(1, input_size=4, hidden_size=5, T=2, encoding="direct")
    results = _run(model, 2, 2, elements=2, seed=0, corrupt=True)
    assert [np.array_equal(e, g) for e, g in results] == [True, False]


def test_projection_latency_and_multipliers() -> None:
    model = random_frozen_spiking(1, input_size=5, hidden_size=7, T=2, encoding="direct")
    dut = InputProjection(model.layers[0], input_bits=8, weight_bits=8, lanes=3, fanin=2)
    assert dut.latency == 3 * 3 + 2 and dut.multipliers == 24
    deeper = InputProjection(model.layers[0], input_bits=8, weight_bits=8, lanes=3, fanin=2, stages=2)
    assert deeper.latency == 3 * 3 + 3
    with pytest.raises(ValueError, match="stages must be 1 or 2"):
        InputProjection(model.layers[0], input_bits=8, weight_bits=8, lanes=3, fanin=2, stages=3)
    with pytest.raises(ValueError):
        InputProjection(model.layers[0], input_bits=8, weight_bits=8, lanes=0, fanin=2)
    gc.collect()
