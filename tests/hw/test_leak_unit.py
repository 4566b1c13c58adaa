"""LeakUnit against ``arith.leak`` (combinational, latency 0), including the extreme values."""

from __future__ import annotations

import gc

import numpy as np
import pytest
from amaranth.sim import Simulator

from snnhw.hw.leak_unit import LeakUnit
from snnhw.quant import arith

LEAKS = [((1, 0),), ((1, 0), (-1, 3)), ((1, 0), (1, 3)), ((1, 0), (-1, 1), (-1, 4)), ((-1, 2),)]

pytestmark = pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")


def _run(terms, bits: int, seed: int, corrupt: bool = False) -> list[tuple[int, int]]:
    dut = LeakUnit(terms, bits)
    assert dut.latency == 0
    lo, hi = arith.signed_range(bits)
    rng = np.random.default_rng(seed)
    u = np.concatenate([[lo, hi, 0, -1, 1], rng.integers(lo, hi + 1, size=60)])
    expected = arith.leak(u, dut.terms).tolist()
    if corrupt:
        expected[7] -= 1
    pairs: list[tuple[int, int]] = []

    async def tb(ctx):
        for n, value in enumerate(u.tolist()):
            ctx.set(dut.u, value)
            pairs.append((expected[n], ctx.get(dut.y)))
            await ctx.delay(1e-8)

    sim = Simulator(dut)
    sim.add_testbench(tb)
    sim.run()
    return pairs


@pytest.mark.parametrize("terms", LEAKS)
@pytest.mark.parametrize("bits", [4, 11])
def test_leak_unit_matches_arith(terms, bits: int) -> None:
    pairs = _run(terms, bits, seed=bits)
    assert all(e == g for e, g in pairs), pairs


def test_leak_unit_fails_on_corrupted_expectation() -> None:
    pairs = _run(((1, 0), (-1, 3)), 8, seed=1, corrupt=True)
    assert sum(e != g for e, g in pairs) == 1


def test_leak_unit_rejects_bad_parameters() -> None:
    with pytest.raises(ValueError):
        LeakUnit(((2, 0),), 8)
    with pytest.raises(ValueError):
        LeakUnit(((1, 0),), 1)
    gc.collect()
