# amaranth: UnusedElaboratable=no
"""MacArray: accumulate / init semantics, exact products, latency 1."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.hdl import Value
from amaranth.sim import Simulator

from snnhw.hw.mac_array import MacArray
from snnhw.hw.memories import pack_rows, unpack_word
from snnhw.quant.golden import exact_matmul


def _run(rows: int, fanin: int, steps: list[tuple[np.ndarray, np.ndarray, np.ndarray, bool, bool]]) -> list[list[int]]:
    """Apply (weights [rows, fanin], inputs [fanin], init [rows], en, accumulate) per cycle; return acc after each."""
    dut = MacArray(rows, fanin, weight_bits=8, input_bits=9, acc_bits=24)
    seen: list[list[int]] = []

    async def tb(ctx):
        for w, x, init, en, accumulate in steps:
            ctx.set(Value.cast(dut.weights), pack_rows(w.reshape(1, -1), 8)[0])
            ctx.set(Value.cast(dut.inputs), pack_rows(x.reshape(1, -1), 9)[0])
            ctx.set(Value.cast(dut.init), pack_rows(init.reshape(1, -1), 24)[0])
            ctx.set(dut.en, int(en))
            ctx.set(dut.accumulate, int(accumulate))
            await ctx.tick()
            seen.append(unpack_word(ctx.get(Value.cast(dut.acc)), 24, rows))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    return seen


@pytest.mark.parametrize("rows,fanin", [(1, 1), (4, 3), (8, 4)])
def test_mac_array_matches_dot_products(rows, fanin):
    rng = np.random.default_rng(rows * 10 + fanin)
    steps = []
    expected = np.zeros(rows, dtype=np.int64)
    trace = []
    for k in range(12):
        w = rng.integers(-128, 128, (rows, fanin))
        x = rng.integers(-256, 256, fanin)
        if k == 0:
            w[:] = -128  # the extreme product (−128)·(−256)
            x[:] = -256
        init = rng.integers(-1000, 1000, rows)
        en = k % 5 != 3
        accumulate = k % 4 != 0
        steps.append((w, x, init, en, accumulate))
        if en:
            expected = (expected if accumulate else init) + exact_matmul(x[None, :], w.T)[0]
        trace.append(expected.tolist())
    assert _run(rows, fanin, steps) == trace


def test_corrupted_expectation_fails():
    w, x = np.array([[3, -2]]), np.array([5, 7])
    got = _run(1, 2, [(w, x, np.array([10]), True, False)])
    assert got == [[10 + 15 - 14]] and got != [[12]]


def test_validation():
    assert MacArray(2, 3, 8, 8, 16).multipliers == 6
    with pytest.raises(ValueError):
        MacArray(0, 1, 8, 8, 16)
    with pytest.raises(ValueError):
        MacArray(1, 1, 8, 8, 15)
