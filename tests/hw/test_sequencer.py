"""ChunkSequencer against its Python model (``beat_order``): every beat, exact timing, back to back."""

from __future__ import annotations

import gc

import numpy as np
import pytest
from amaranth.sim import Simulator

from snnhw.hw.schedule import WavefrontLayer
from snnhw.hw.sequencer import ChunkSequencer, QueueSequencer, beat_order, queue_beat_order


def _run(P: int, G: int, C: int, masks: list[int] | None, runs: int = 2, gap: int = 0):
    """Beats seen after ``runs`` starts (each issued ``gap`` cycles after the previous run's end)."""
    dut = ChunkSequencer(passes=P, groups=G, chunks=C, skip=masks is not None)
    seen: list[list[tuple]] = []

    async def tb(ctx):
        if masks is not None:
            for p, mk in enumerate(masks):
                ctx.set(dut.masks[p], mk)
        for _ in range(runs):
            assert not ctx.get(dut.beat.valid)
            ctx.set(dut.start, 1)
            await ctx.tick()
            ctx.set(dut.start, 0)
            beats = []
            for _ in range(P * G * C + 2):
                b = dut.beat
                if not ctx.get(b.valid):
                    break
                beats.append((ctx.get(b.p), ctx.get(b.g), ctx.get(b.c), bool(ctx.get(b.first)),
                              bool(ctx.get(b.last)), bool(ctx.get(b.final))))
                await ctx.tick()
            seen.append(beats)
            for _ in range(gap):
                await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    return seen


@pytest.mark.parametrize("P,G,C", [(1, 1, 1), (1, 3, 4), (2, 2, 3), (3, 1, 5), (4, 3, 1)])
def test_dense_order_matches_the_model(P: int, G: int, C: int) -> None:
    want = beat_order(P, G, C)
    assert _run(P, G, C, None, gap=1) == [want, want]
    assert len(want) == P * G * C


def test_skip_order_matches_the_model_and_the_schedule_over_every_mask() -> None:
    """Every mask pair of a 2-pass, 3-chunk sequencer (64 cases): beats as the model says, and
    their count is the schedule's ``WavefrontLayer.beats`` (one issue group)."""
    P, G, C = 2, 2, 3
    geo = WavefrontLayer(hidden=4, inputs=2, groups=G, input_chunks=1, recurrent_chunks=C - 1)
    for m0 in range(1 << C):
        for m1 in range(1 << C):
            masks = [m0, m1]
            want = beat_order(P, G, C, masks)
            got = _run(P, G, C, masks, runs=1)[0]
            assert got == want, masks
            assert len(got) == geo.beats(P, [[bin(m).count("1") for m in masks]])


def test_the_check_can_fail() -> None:
    """A model with one beat dropped does not match the hardware."""
    want = beat_order(2, 2, 3, [0b101, 0b010])
    assert _run(2, 2, 3, [0b101, 0b010], runs=1)[0] != want[:-1]


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_parameters_are_validated() -> None:
    for kwargs in (dict(passes=0, groups=1, chunks=1), dict(passes=1, groups=0, chunks=1),
                   dict(passes=1, groups=1, chunks=np.int64(2))):
        with pytest.raises(ValueError):
            ChunkSequencer(**kwargs)
    gc.collect()  # the rejected objects' warnings fire here, inside the filter


def _run_queue(P: int, G: int, M: int, B: int, masks: list[list[int]], R: int = 1):
    dut = QueueSequencer(passes=P, groups=G, entries=M, banks=B, readers=R)
    beats: list[tuple] = []

    async def tb(ctx):
        for p in range(P):
            for b in range(B):
                ctx.set(dut.masks[p][b], masks[p][b])
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        for _ in range(P * G * M + 2):
            b = dut.beat
            if not ctx.get(b.valid):
                break
            cs = tuple(ctx.get(b.cs[k]) if ctx.get(b.live[k]) else None for k in range(B * R))
            beats.append((ctx.get(b.p), ctx.get(b.g), cs, bool(ctx.get(b.first)), bool(ctx.get(b.last)),
                          bool(ctx.get(b.final))))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    return beats


def test_queue_sequencer_over_every_mask() -> None:
    """Every pair of 3-entry bank masks (64 cases, 2 groups), and random 2-pass, 3-bank cases:
    the beats are the model's, and a group takes max(1, the fullest bank) beats."""
    for m0 in range(8):
        for m1 in range(8):
            masks = [[m0, m1]]
            got = _run_queue(1, 2, 3, 2, masks)
            assert got == queue_beat_order(1, 2, masks), masks
            assert len(got) == 2 * max(1, bin(m0).count("1"), bin(m1).count("1"))
    rng = np.random.default_rng(0)
    for _ in range(12):
        masks = [[int(v) for v in rng.integers(0, 16, size=3)] for _ in range(2)]
        assert _run_queue(2, 2, 4, 3, masks) == queue_beat_order(2, 2, masks), masks
    assert _run_queue(1, 1, 3, 2, [[0b101, 0b010]]) != queue_beat_order(1, 1, [[0b100, 0b010]])


@pytest.mark.parametrize("B, R", [(1, 2), (2, 2), (1, 3), (2, 4)])
def test_queue_sequencer_with_several_readers_per_bank(B: int, R: int) -> None:
    """R readers per bank: every set entry of every bank is issued exactly once per group, in
    increasing order, reader r of a beat taking the r-th lowest left, lane f = r·B + b; a group
    takes max(1, max_b ⌈popcount / R⌉) beats; and the beats are the Python model's."""
    rng = np.random.default_rng(B * 10 + R)
    M, G = 6, 2
    for case in range(10):
        masks = [[int(v) for v in rng.integers(0, 1 << M, size=B)] for _ in range(2)]
        if case == 0:
            masks[0] = [0] * B  # an empty pass still takes one beat per group
        got = _run_queue(2, G, M, B, masks, R)
        assert got == queue_beat_order(2, G, masks, R), masks
        for p in (1, 0):
            beats = [bt for bt in got if bt[0] == p]
            depth = max(1, max(-(-bin(v).count("1") // R) for v in masks[p]))
            assert len(beats) == G * depth
            for g in range(G):
                issued = [[] for _ in range(B)]
                for bt in beats:
                    if bt[1] == g:
                        for f, entry in enumerate(bt[2]):
                            if entry is not None:
                                issued[f % B].append(entry)
                for b in range(B):
                    assert issued[b] == [m for m in range(M) if masks[p][b] >> m & 1], (masks, p, b)


def _lowest_set_bits(width: int, values: list[int]) -> list[int]:
    """``lowest_set_bit`` of every value, simulated (one value per cycle, combinational)."""
    from amaranth.hdl import Module, Signal

    from snnhw.hw.sequencer import lowest_set_bit

    m = Module()
    bits = Signal(width)
    index = Signal(max(1, (width - 1).bit_length()))
    m.d.comb += index.eq(lowest_set_bit(m, bits, "onehot"))
    got: list[int] = []

    async def tb(ctx):
        for v in values:
            ctx.set(bits, v)
            got.append(ctx.get(index))

    sim = Simulator(m)
    sim.add_testbench(tb)
    sim.run()
    return got


def _lowest_set_bit_mismatches(width: int, corrupt: bool = False) -> list[int]:
    values = list(range(1 << width))
    want = [(v & -v).bit_length() - 1 if v else 0 for v in values]
    if corrupt:
        want[len(want) // 2 + 1] += 1
    return [v for v, g, w in zip(values, _lowest_set_bits(width, values), want, strict=True) if g != w]


@pytest.mark.parametrize("width", [1, 2, 3, 5, 8, 9])
def test_lowest_set_bit_over_every_word(width: int) -> None:
    """The isolate-and-OR-tree encoder gives the index of the lowest set bit of every word (0 for 0)."""
    assert _lowest_set_bit_mismatches(width) == []


def test_lowest_set_bit_check_fails_on_a_corrupted_expectation() -> None:
    assert _lowest_set_bit_mismatches(5, corrupt=True) == [17]
