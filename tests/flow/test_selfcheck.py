"""The self-checking top passes on correct expectations, fails on one corrupted word, and the
board wrapper produces a Vivado build plan for each bundled board (no Vivado needed)."""

from __future__ import annotations

from pathlib import Path

import pytest
from amaranth import Module, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from snnhw.flow.boards import find_board
from snnhw.flow.selfcheck import BoardSelfCheck, SelfCheckTop


class IncrementCore(wiring.Component):
    """A stand-in core with the core stream shapes: each output word = input + 1 (signed 8 bits)."""

    def __init__(self) -> None:
        super().__init__({
            "i": In(stream.Signature(data.StructLayout({"data": unsigned(8), "last": 1}))),
            "o": Out(stream.Signature(data.StructLayout({"data": signed(8), "last": 1}))),
        })

    def elaborate(self, platform: object) -> Module:
        m = Module()
        m.d.comb += [
            self.o.valid.eq(self.i.valid),
            self.i.ready.eq(self.o.ready),
            self.o.payload.data.eq(self.i.payload.data.as_signed() + 1),
            self.o.payload.last.eq(self.i.payload.last),
        ]
        return m


INPUTS = [(5, 0), (250, 0), (7, 1), (126, 1)]


def words(values: list[tuple[int, int]], width: int) -> list[int]:
    return [(v & ((1 << width) - 1)) | (last << width) for v, last in values]


def run_check(expected: list[tuple[int, int]]) -> tuple[int, int, int, int]:
    top = SelfCheckTop(IncrementCore(), words(INPUTS, 8), words(expected, 8))
    sim = Simulator(top)
    sim.add_clock(1e-8)
    result = {}

    async def bench(ctx) -> None:  # noqa: ANN001
        for _ in range(20):
            await ctx.tick()
        result.update(done=ctx.get(top.done), passed=ctx.get(top.passed), failed=ctx.get(top.failed),
                      errors=ctx.get(top.errors))

    sim.add_testbench(bench)
    sim.run()
    return result["done"], result["passed"], result["failed"], result["errors"]


GOOD = [(6, 0), (-5, 0), (8, 1), (127, 1)]


def test_passes_on_golden_expectations() -> None:
    assert run_check(GOOD) == (1, 1, 0, 0)


@pytest.mark.parametrize("index", range(len(GOOD)))
def test_fails_when_one_expected_word_is_corrupted(index: int) -> None:
    corrupted = list(GOOD)
    value, last = corrupted[index]
    corrupted[index] = (value ^ 1, last)
    assert run_check(corrupted) == (1, 0, 1, 1)


def test_last_marker_is_checked_too() -> None:
    corrupted = list(GOOD)
    corrupted[0] = (6, 1)
    assert run_check(corrupted)[2] == 1


@pytest.mark.parametrize("name", ["kc705", "genesys2", "ax7325b"])
def test_board_build_plan(name: str, tmp_path: Path) -> None:
    board = find_board(name)
    top = BoardSelfCheck(SelfCheckTop(IncrementCore(), words(INPUTS, 8), words(GOOD, 8)), board, board.clock_hz())
    plan = board.platform_class()().build(top, name="snnhw_top", do_build=False)
    plan.extract(str(tmp_path))
    files = {p.name for p in tmp_path.iterdir()}
    assert {"snnhw_top.tcl", "snnhw_top.xdc", "snnhw_top.v", "build_snnhw_top.sh"} <= files
    assert "xc7k325t" in (tmp_path / "snnhw_top.tcl").read_text()
