"""RateEncoder against ``arith.rate_spikes`` over whole sequences (generator reset per sequence)."""

from __future__ import annotations

import gc

import numpy as np
import pytest
from amaranth.sim import Simulator

from snnhw.hw.rate_encoder import RateEncoder
from snnhw.quant import arith

pytestmark = pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")


def _run(seeds, T: int, R: int, seqs: list[np.ndarray], corrupt: bool = False):
    dut = RateEncoder(seeds, T, R)
    D = len(seeds)
    expected = []
    for x in seqs:
        states = np.asarray(seeds, dtype=np.int64)
        for n in range(len(x)):
            u, states = arith.rate_spikes(x[n], states, T, R)
            expected.append(u.reshape(-1).tolist())
    if corrupt:
        expected[2][1] = 1 - abs(expected[2][1])
    pairs = []

    async def tb(ctx):
        for x in seqs:
            for n in range(len(x)):
                for d in range(D):
                    ctx.set(dut.x[d], int(x[n, d]))
                ctx.set(dut.restart, int(n == 0))
                ctx.set(dut.step, 1)
                got = [ctx.get(dut.spikes[k]) for k in range(T * D)]
                pairs.append((expected[len(pairs)], got))
                await ctx.tick()
                # an idle cycle without step must not advance the generators
                ctx.set(dut.step, 0)
                await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    return pairs


@pytest.mark.parametrize("T,R", [(1, 4), (3, 8), (8, 6)])
def test_rate_encoder_matches_arith(T: int, R: int) -> None:
    rng = np.random.default_rng(T)
    D = 3
    seeds = rng.integers(1, 1 << 32, size=D).tolist()
    top = (1 << R) - 1
    seqs = [rng.integers(-top, top + 1, size=(n, D)) for n in (3, 1, 2)]
    seqs[0][0] = [top, -top, 0]
    pairs = _run(seeds, T, R, seqs)
    assert all(e == g for e, g in pairs)
    assert any(any(v != 0 for v in g) for _, g in pairs)


def test_rate_encoder_fails_on_corrupted_expectation() -> None:
    pairs = _run([5, 77, 123456], 2, 4, [np.array([[3, -9, 15], [1, 2, -3], [7, 7, -7]])], corrupt=True)
    assert sum(e != g for e, g in pairs) == 1


@pytest.mark.parametrize("args", [([], 2, 4), ([0], 2, 4), ([1], 0, 4), ([1], 2, 0)])
def test_rate_encoder_rejects_bad_parameters(args) -> None:
    with pytest.raises(ValueError):
        RateEncoder(*args)
    gc.collect()
