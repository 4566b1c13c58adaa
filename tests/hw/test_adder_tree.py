"""SpikeAdderTree against ``arith.spike_select`` summed over the fanin, through a latency queue."""

from __future__ import annotations

import gc

import numpy as np
import pytest
from amaranth.sim import Simulator

from snnhw.hw.adder_tree import SpikeAdderTree
from snnhw.quant import arith

pytestmark = pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")


def _run(weight_bits: int, fanin: int, vectors: int, seed: int, corrupt: bool = False) -> list[tuple[int, int]]:
    """Drive random vectors; return (expected, got) pairs."""
    dut = SpikeAdderTree(weight_bits, fanin)
    rng = np.random.default_rng(seed)
    lo, hi = arith.signed_range(weight_bits)
    w = rng.integers(lo, hi + 1, size=(vectors, fanin))
    s = rng.integers(-1, 2, size=(vectors, fanin))
    expected = arith.spike_select(s, w).sum(axis=1).tolist()
    if corrupt:
        expected[vectors // 2] += 1
    pairs: list[tuple[int, int]] = []

    async def tb(ctx):
        for n in range(vectors + dut.latency):
            if n < vectors:
                for f in range(fanin):
                    ctx.set(dut.weights[f], int(w[n, f]))
                    ctx.set(dut.spikes[f], int(s[n, f]))
            if n >= dut.latency:
                pairs.append((expected[n - dut.latency], ctx.get(dut.sum)))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    return pairs


@pytest.mark.parametrize("weight_bits,fanin", [(2, 1), (4, 3), (8, 4), (8, 7), (16, 5)])
def test_adder_tree_matches_spike_select(weight_bits: int, fanin: int) -> None:
    pairs = _run(weight_bits, fanin, 40, seed=weight_bits * 10 + fanin)
    assert all(e == g for e, g in pairs), pairs


def test_adder_tree_fails_on_corrupted_expectation() -> None:
    pairs = _run(8, 4, 10, seed=3, corrupt=True)
    assert sum(e != g for e, g in pairs) == 1


@pytest.mark.parametrize("kwargs", [{"weight_bits": 1, "fanin": 2}, {"weight_bits": 8, "fanin": 0},
                                    {"weight_bits": 17, "fanin": 2}])
def test_adder_tree_rejects_bad_parameters(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        SpikeAdderTree(**kwargs)
    gc.collect()
