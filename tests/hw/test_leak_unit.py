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


def _run(terms, bits: int, seed: int, rounding: str = "nearest", corrupt: bool = False,
         expect: str | None = None) -> list[tuple[int, int]]:
    """(expected, obtained) per membrane value: the unit built with ``rounding`` against
    ``arith.leak`` with ``expect`` (default: the same rounding)."""
    dut = LeakUnit(terms, bits, rounding)
    assert dut.latency == 0
    lo, hi = arith.signed_range(bits)
    rng = np.random.default_rng(seed)
    u = np.concatenate([[lo, hi, 0, -1, 1], rng.integers(lo, hi + 1, size=60)])
    expected = arith.leak(u, dut.terms, expect or dut.rounding).tolist()
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


@pytest.mark.parametrize("rounding", arith.LEAK_ROUNDINGS)
@pytest.mark.parametrize("terms", LEAKS)
@pytest.mark.parametrize("bits", [4, 11])
def test_leak_unit_matches_arith(terms, bits: int, rounding: str) -> None:
    pairs = _run(terms, bits, seed=bits, rounding=rounding)
    assert all(e == g for e, g in pairs), pairs


@pytest.mark.parametrize("rounding", arith.LEAK_ROUNDINGS)
def test_leak_unit_fails_on_corrupted_expectation(rounding: str) -> None:
    pairs = _run(((1, 0), (-1, 3)), 8, seed=1, rounding=rounding, corrupt=True)
    assert sum(e != g for e, g in pairs) == 1


def test_leak_unit_fails_against_the_other_rounding() -> None:
    """The unit built to round differs from the floored contract on some membrane (and the
    other way round): the comparison can tell the two rules apart."""
    for built, expected in (("nearest", "floor"), ("floor", "nearest")):
        pairs = _run(((1, 0), (-1, 3)), 8, seed=1, rounding=built, expect=expected)
        assert any(e != g for e, g in pairs)


def test_leak_unit_rejects_bad_parameters() -> None:
    with pytest.raises(ValueError):
        LeakUnit(((2, 0),), 8, "nearest")
    with pytest.raises(ValueError):
        LeakUnit(((1, 0),), 1, "nearest")
    with pytest.raises(ValueError, match="unknown leak rounding"):
        LeakUnit(((1, 0),), 8, "up")
    gc.collect()
