# amaranth: UnusedElaboratable=no
"""PackedRom: every row reads back exactly, one cycle after its address (two with banks)."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.hdl import Value
from amaranth.sim import Simulator

from snnhw.hw.memories import PackedRom, pack_rows, unpack_word, values_width


def _read_all(rom: PackedRom, order: list[int]) -> list[list[int]]:
    got: list[list[int]] = []

    async def tb(ctx):
        ctx.set(rom.en, 1)
        for a in order:
            ctx.set(rom.addr, a)
            await ctx.tick()
            got.append(unpack_word(ctx.get(Value.cast(rom.data)), rom.width, rom.count))

    sim = Simulator(rom)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    return got


@pytest.mark.parametrize("bank_depth,banks", [(None, {1: 1, 5: 1, 17: 1}), (4, {1: 1, 5: 2, 17: 5}),
                                              (16, {1: 1, 5: 1, 17: 2})])
@pytest.mark.parametrize("depth,count", [(1, 1), (5, 3), (17, 8)])
def test_rom_reads_every_row(depth, count, bank_depth, banks):
    rng = np.random.default_rng(depth)
    values = rng.integers(-128, 128, (depth, count))
    values[0, 0] = -128  # the extremes of the width
    values[-1, -1] = 127
    rom = PackedRom(values, bank_depth=bank_depth)
    assert rom.width == 8 and rom.bits == depth * count * 8 and rom.banks == banks[depth]
    assert rom.latency == (1 if bank_depth is None else 2)
    order = [int(a) for a in rng.permutation(depth)] + [0]
    got = _read_all(rom, order + [0] * (rom.latency - 1))  # row order[k] arrives latency cycles later
    assert [list(values[a]) for a in order] == got[rom.latency - 1:]


@pytest.mark.parametrize("bank_depth", [None, 2, 4])
def test_rom_holds_output_while_disabled(bank_depth):
    values = np.array([[3], [-4], [5], [6]])
    rom = PackedRom(values, width=4, bank_depth=bank_depth)
    got: list[int] = []

    async def tb(ctx):
        ctx.set(rom.en, 1)
        ctx.set(rom.addr, 2)  # then row 1, in the other bank with bank_depth 2
        await ctx.tick()
        ctx.set(rom.addr, 1)
        await ctx.tick()
        ctx.set(rom.en, 0)
        ctx.set(rom.addr, 0)
        await ctx.tick().repeat(rom.latency)
        got.append(unpack_word(ctx.get(Value.cast(rom.data)), 4, 1)[0])

    sim = Simulator(rom)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    assert got == [-4]


def test_pack_unpack_roundtrip_and_checks():
    values = np.array([[-8, 7, 0], [1, -1, -8]])
    words = pack_rows(values, 4)
    assert [unpack_word(w, 4, 3) for w in words] == values.tolist()
    assert values_width(values) == 4
    with pytest.raises(ValueError):
        pack_rows(np.array([[8]]), 4)
    with pytest.raises(ValueError):
        PackedRom(np.zeros((0, 2), dtype=np.int64))
    for bad in (0, 1, 3, 6):
        with pytest.raises(ValueError, match="bank_depth must be a power of two"):
            PackedRom(values, bank_depth=bad)


def test_corrupted_expectation_fails():
    values = np.array([[1, 2], [3, 4]])
    got = _read_all(PackedRom(values), [1])
    assert got != [[3, 5]]
