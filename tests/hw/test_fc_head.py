# amaranth: UnusedElaboratable=no
"""FCHead: exact equality with ``golden.head_forward`` / ``arith.argmax_first`` under stalls."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.sim import Simulator

from snnhw.hw.fc_head import FCHead, head_ranges, head_steps
from snnhw.hw.stream_io import sim_recv, sim_send
from snnhw.quant import arith
from snnhw.quant.frozen import IntHead
from snnhw.quant.golden import head_forward


def _head(seed: int, n_in: int, n_cls: int, hidden: int | None) -> IntHead:
    rng = np.random.default_rng(seed)
    if hidden is None:
        return IntHead(w_out=rng.integers(-128, 128, (n_cls, n_in)), b_out=rng.integers(-500, 500, n_cls))
    return IntHead(
        w_out=rng.integers(-128, 128, (n_cls, hidden)),
        b_out=rng.integers(-500, 500, n_cls),
        w_hidden=rng.integers(-128, 128, (hidden, n_in)),
        b_hidden=rng.integers(-300, 300, hidden),
        hidden_shift=3,
        hidden_bits=6,
    )


def _run(head: IntHead, lo: int, hi: int, r: np.ndarray, stall: float, seed: int):
    dut = FCHead(head, lo, hi)
    rng = np.random.default_rng(seed)
    mask = (1 << dut.in_bits) - 1
    payloads = [sum((int(v) & mask) << (k * dut.in_bits) for k, v in enumerate(row)) for row in r]
    out: dict = {}

    async def source(ctx):
        out["in_cycles"] = await sim_send(ctx, dut.i, payloads, rng, stall)

    async def sink(ctx):
        out["words"], out["out_cycles"] = await sim_recv(ctx, dut.o, len(r), rng, stall)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(source)
    sim.add_testbench(sink)
    sim.run()
    results = []
    for word in out["words"]:
        view = dut.out_layout.from_bits(word)
        logits = [int(view.logits[k]) for k in range(dut.n_cls)]
        readout = [int(view.readout[k]) for k in range(dut.n_in)]
        results.append((np.array(readout), np.array(logits), int(view.cls)))
    return dut, results, out


@pytest.mark.parametrize("hidden", [None, 3])
@pytest.mark.parametrize("stall", [0.0, 0.4])
def test_head_matches_golden(hidden, stall):
    head = _head(1 + (hidden or 0), n_in=5, n_cls=4, hidden=hidden)
    rng = np.random.default_rng(7)
    lo, hi = -16, 16
    r = rng.integers(lo, hi + 1, (6, 5))
    r[0] = hi  # extremes: largest magnitudes
    r[1] = lo
    r[2] = 0   # all-equal logits only through the bias
    dut, got, out = _run(head, lo, hi, r, stall, seed=3)
    logits = head_forward(head, r)
    classes = arith.argmax_first(logits)
    assert len(got) == len(r)
    for b, (readout, lg, cls) in enumerate(got):
        assert np.array_equal(readout, r[b])
        assert np.array_equal(lg, logits[b])
        assert cls == classes[b]
    lo_l, hi_l = head_ranges(head, lo, hi).logits
    assert lo_l <= logits.min() and logits.max() <= hi_l
    if stall == 0.0:
        # o.valid rises `latency` cycles after acceptance; the sink takes it in that cycle.
        assert out["out_cycles"][0] - out["in_cycles"][0] == dut.latency == head_steps(head) + 3


def test_ties_pick_first_index():
    head = IntHead(w_out=np.zeros((4, 2), dtype=np.int64), b_out=np.array([1, 5, 5, 2]))
    _, got, _ = _run(head, -4, 4, np.array([[1, -1]]), 0.0, seed=0)
    assert got[0][2] == 1 == arith.argmax_first(head_forward(head, np.array([[1, -1]])))[0]


def test_corrupted_expectation_fails():
    head = _head(5, n_in=3, n_cls=3, hidden=None)
    r = np.array([[1, 2, -3]])
    _, got, _ = _run(head, -4, 4, r, 0.0, seed=0)
    wrong = head_forward(head, r).copy()
    wrong[0, 0] += 1
    assert not np.array_equal(got[0][1], wrong[0])


def test_rejects_empty_range():
    with pytest.raises(ValueError):
        FCHead(_head(0, 2, 2, None), 3, 2)
