# amaranth: UnusedElaboratable=no
"""MacArray: accumulate / init semantics, exact products, latency 1 (+1 with product registers,
+1 with operand registers)."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.hdl import Value
from amaranth.sim import Simulator

from snnhw.hw.mac_array import MacArray
from snnhw.hw.memories import pack_rows, unpack_word
from snnhw.quant.golden import exact_matmul


Step = tuple[np.ndarray, np.ndarray, np.ndarray, bool, bool]
"""(weights [rows, fanin], inputs [fanin], init [rows], en, accumulate) of one cycle."""


def _run(rows: int, fanin: int, steps: list[Step], product_registers: int = 0,
         operand_registers: int = 0, sum_register: bool = False, weights_late: bool = False) -> list[list[int]]:
    """Apply one step per cycle (with ``weights_late`` its weights a cycle later); return acc
    after each."""
    dut = MacArray(rows, fanin, weight_bits=8, input_bits=9, acc_bits=24, product_registers=product_registers,
                   operand_registers=operand_registers, sum_register=sum_register, weights_late=weights_late)
    seen: list[list[int]] = []

    async def tb(ctx):
        for c, (w, x, init, en, accumulate) in enumerate(steps):
            if weights_late:
                w = steps[c - 1][0] if c else np.zeros_like(w)
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


def _expected(steps: list[Step], latency: int) -> list[list[int]]:
    """acc after each cycle: a step's products reach the accumulators ``latency − 1`` cycles after
    its ``en``, together with the ``init`` of that later cycle."""
    acc = np.zeros(len(steps[0][2]), dtype=np.int64)
    trace = []
    for c in range(len(steps)):
        if c >= latency - 1:
            w, x, _, en, accumulate = steps[c - (latency - 1)]
            if en:
                acc = (acc if accumulate else steps[c][2]) + exact_matmul(x[None, :], w.T)[0]
        trace.append(acc.tolist())
    return trace


@pytest.mark.parametrize("product_registers,operand_registers,sum_register,weights_late",
                         [(0, 0, False, False), (1, 0, False, False), (1, 1, False, False), (1, 2, False, False),
                          (2, 2, False, False), (0, 0, True, False), (2, 2, True, False), (0, 0, False, True),
                          (2, 2, True, True)])
@pytest.mark.parametrize("rows,fanin", [(1, 1), (4, 3), (8, 4)])
def test_mac_array_matches_dot_products(rows, fanin, product_registers, operand_registers, sum_register,
                                        weights_late):
    rng = np.random.default_rng(rows * 10 + fanin)
    steps = []
    for k in range(12):
        w = rng.integers(-128, 128, (rows, fanin))
        x = rng.integers(-256, 256, fanin)
        if k == 0:
            w[:] = -128  # the extreme product (−128)·(−256)
            x[:] = -256
        init = rng.integers(-1000, 1000, rows)
        en = k % 5 != 3 and k < 10  # the last cycles let the registered operands and products land
        accumulate = k % 4 != 0
        steps.append((w, x, init, en, accumulate))
    latency = 1 + product_registers + operand_registers + sum_register + weights_late
    assert MacArray(rows, fanin, 8, 9, 24, product_registers=product_registers, operand_registers=operand_registers,
                    sum_register=sum_register, weights_late=weights_late).latency == latency
    assert _run(rows, fanin, steps, product_registers, operand_registers, sum_register,
                weights_late) == _expected(steps, latency)


def test_product_registers_delay_the_step_not_its_init():
    """With product registers a step lands one cycle later and takes the init of that cycle
    (so an init computed from acc sees every earlier step)."""
    w, x = np.array([[3, -2]]), np.array([5, 7])
    zero_w = np.zeros_like(w)
    steps = [(w, x, np.array([10]), True, False), (zero_w, x, np.array([100]), False, True),
             (zero_w, x, np.array([1000]), False, True)]
    assert _run(1, 2, steps, product_registers=False) == [[11], [11], [11]]
    assert _run(1, 2, steps, product_registers=True) == [[0], [101], [101]]
    assert MacArray(1, 2, 8, 8, 16).latency == 1 and MacArray(1, 2, 8, 8, 16, product_registers=True).latency == 2


def test_operand_registers_keep_weights_and_inputs_with_their_step():
    """With operand and product registers a step lands two cycles later, with the weights and the
    inputs of its own cycle (those of the following cycles differ) and the init of the landing
    cycle."""
    w, x = np.array([[3, -2]]), np.array([5, 7])
    other_w, other_x = np.array([[-4, 6]]), np.array([-9, 2])
    steps = [(w, x, np.array([10]), True, False), (other_w, other_x, np.array([100]), False, True),
             (other_w, other_x, np.array([1000]), False, True), (other_w, other_x, np.array([10000]), False, True)]
    got = _run(1, 2, steps, product_registers=True, operand_registers=True)
    assert got == [[0], [0], [1001], [1001]] == _expected(steps, 3)
    assert MacArray(1, 2, 8, 8, 16, product_registers=True, operand_registers=True).latency == 3
    assert MacArray(1, 2, 8, 8, 16, operand_registers=True).latency == 2


def test_corrupted_expectation_fails():
    w, x = np.array([[3, -2]]), np.array([5, 7])
    got = _run(1, 2, [(w, x, np.array([10]), True, False)])
    assert got == [[10 + 15 - 14]] and got != [[12]]
    steps = [(w, x, np.array([10]), True, False), (w, x, np.array([20]), False, True)]
    got = _run(1, 2, steps, product_registers=True)
    assert got == _expected(steps, 2) != _expected(steps, 1)  # the expectation of the wrong latency
    steps.append((w, x, np.array([30]), False, True))
    got = _run(1, 2, steps, product_registers=True, operand_registers=True)
    assert got == _expected(steps, 3) != _expected(steps, 2)  # operand registers: one cycle more


def test_validation():
    assert MacArray(2, 3, 8, 8, 16).multipliers == 6
    with pytest.raises(ValueError):
        MacArray(0, 1, 8, 8, 16)
    with pytest.raises(ValueError):
        MacArray(1, 1, 8, 8, 15)
