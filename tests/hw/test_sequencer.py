"""ChunkSequencer against its Python model (``beat_order``): every beat, exact timing, back to back."""

from __future__ import annotations

import gc
from collections.abc import Callable

import numpy as np
import pytest
from amaranth.hdl import Module, Signal, Value
from amaranth.sim import Simulator

from snnhw.hw.schedule import WavefrontLayer
from snnhw.hw.sequencer import (
    ChunkSequencer,
    QueueSequencer,
    at_most,
    beat_order,
    lowest_set_bit,
    queue_beat_order,
)


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


def _run_queue(P: int, G: int, M: int, B: int, masks: list[list[int]], R: int = 1, stages: int = 1,
               timing: list[int] | None = None):
    """The beats of one run. ``timing`` (if given) receives the cycles from ``start`` to every
    beat; the masks are all ones in the cycle of ``start`` and ``masks`` from the next one on."""
    dut = QueueSequencer(passes=P, groups=G, entries=M, banks=B, readers=R, stages=stages)
    beats: list[tuple] = []

    async def tb(ctx):
        for p in range(P):
            for b in range(B):
                ctx.set(dut.masks[p][b], (1 << M) - 1)
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        for p in range(P):
            for b in range(B):
                ctx.set(dut.masks[p][b], masks[p][b])
        for cycle in range(1, P * G * M + 2 + stages):
            b = dut.beat
            if ctx.get(b.valid):
                cs = tuple(ctx.get(b.cs[k]) if ctx.get(b.live[k]) else None for k in range(B * R))
                beats.append((ctx.get(b.p), ctx.get(b.g), cs, bool(ctx.get(b.first)), bool(ctx.get(b.last)),
                              bool(ctx.get(b.final))))
                if timing is not None:
                    timing.append(cycle)
            elif beats:
                break
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


@pytest.mark.parametrize("stages", [1, 2, 3])
@pytest.mark.parametrize("P, G, B, R", [(2, 2, 2, 2), (3, 3, 1, 1), (3, 2, 2, 3), (2, 2, 1, 4)])
def test_queue_sequencer_stages_delay_the_beats(stages: int, P: int, G: int, B: int, R: int) -> None:
    """S stages: the model's beats, back to back, the first S cycles after ``start``; the masks
    are read from the cycle after ``start`` on (they are all ones in its cycle). Banks holding
    R − 1, R and R + 1 spikes check the end of a group (S = 3 counts the spikes left, and its
    readers take from both ends of a bank: every set entry still issued exactly once)."""
    rng = np.random.default_rng(stages * 100 + P * 10 + R)
    M = 5
    for case in range(8):
        masks = [[int(v) for v in rng.integers(0, 1 << M, size=B)] for _ in range(P)]
        if case < 3:  # R − 1 + case spikes in bank 0 of the first pass issued
            masks[P - 1][0] = (1 << min(M, max(R - 1 + case, 0))) - 1
        timing: list[int] = []
        got = _run_queue(P, G, M, B, masks, R, stages=stages, timing=timing)
        assert got == queue_beat_order(P, G, masks, R, both_ends=stages == 3), masks
        assert timing == list(range(stages, stages + len(got)))
        for p in range(P):  # every spike of every bank issued once per group, in max(1, ⌈n/R⌉) beats
            depth = max(1, max(-(-bin(v).count("1") // R) for v in masks[p]))
            for g in range(G):
                beats = [bt for bt in got if bt[:2] == (p, g)]
                assert len(beats) == depth
                for b in range(B):
                    issued = sorted(bt[2][r * B + b] for bt in beats for r in range(R) if bt[2][r * B + b] is not None)
                    assert issued == [k for k in range(M) if masks[p][b] >> k & 1], (masks, p, g, b)


def _at_most_mismatches(width: int, count: int, corrupt: bool = False) -> list[int]:
    """Words of ``width`` bits where :func:`at_most` differs from popcount ≤ ``count``."""
    want = [bin(v).count("1") <= count for v in range(1 << width)]
    if corrupt:
        want[7] = not want[7]
    got = _every_word(width, lambda m, bits: at_most(m, bits, count, "n"))
    return [v for v, (g, w) in enumerate(zip(got, want, strict=True)) if bool(g) != w]


@pytest.mark.parametrize("width, count", [(1, 1), (5, 1), (7, 2), (8, 3), (9, 2)])
def test_at_most_over_every_word(width: int, count: int) -> None:
    assert _at_most_mismatches(width, count) == []


def test_at_most_check_fails_on_a_corrupted_expectation() -> None:
    assert _at_most_mismatches(7, 2, corrupt=True) == [7]


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_queue_sequencer_stages_check_can_fail() -> None:
    timing: list[int] = []
    _run_queue(1, 1, 3, 1, [[0b101]], stages=2, timing=timing)
    assert timing == [2, 3] and timing != list(range(1, 3))
    with pytest.raises(ValueError, match="queue_stages"):
        QueueSequencer(passes=1, groups=1, entries=2, banks=1, stages=4)
    gc.collect()  # the rejected object's warning fires here, inside the filter


def _every_word(width: int, build: Callable[[Module, Signal], Value]) -> list[int]:
    """The combinational function ``build(m, bits)`` of every ``width``-bit word, simulated."""
    m = Module()
    bits = Signal(width)
    out = Signal(max(1, (width - 1).bit_length()))
    m.d.comb += out.eq(build(m, bits))
    got: list[int] = []

    async def tb(ctx):
        for v in range(1 << width):
            ctx.set(bits, v)
            got.append(ctx.get(out))

    sim = Simulator(m)
    sim.add_testbench(tb)
    sim.run()
    return got


def _lowest_set_bit_mismatches(width: int, corrupt: bool = False, reversed_: bool = False) -> list[int]:
    values = list(range(1 << width))
    if reversed_:  # the highest set bit (0 when none is set)
        want = [v.bit_length() - 1 if v else 0 for v in values]
    else:
        want = [(v & -v).bit_length() - 1 if v else 0 for v in values]
    if corrupt:
        want[len(want) // 2 + 1] += 1
    got = _every_word(width, lambda m, bits: lowest_set_bit(m, bits[::-1] if reversed_ else bits, "onehot",
                                                          reversed_=reversed_))
    return [v for v, g, w in zip(values, got, want, strict=True) if g != w]


@pytest.mark.parametrize("reversed_", [False, True])
@pytest.mark.parametrize("width", [1, 2, 3, 5, 8, 9])
def test_lowest_set_bit_over_every_word(width: int, reversed_: bool) -> None:
    """The isolate-and-OR-tree encoder gives the index of the lowest set bit of every word (0 for
    0); given the word backwards, the index of its highest set bit."""
    assert _lowest_set_bit_mismatches(width, reversed_=reversed_) == []


def test_lowest_set_bit_check_fails_on_a_corrupted_expectation() -> None:
    assert _lowest_set_bit_mismatches(5, corrupt=True) == [17]
    assert _lowest_set_bit_mismatches(5, corrupt=True, reversed_=True) == [17]
