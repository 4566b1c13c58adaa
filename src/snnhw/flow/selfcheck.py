"""The self-checking board top: a core fed from an on-chip ROM of test sequences, its output
words compared on chip with the golden model's expected words, LEDs for done / pass / fail.

The ROM contents are the packed stream words of ``docs/hw-interface.md``: each input word is
``data | last << Wi`` and each expected word ``(data mod 2^Wo) | last << Wo``, i.e. exactly the
flattened ``i``/``o`` payloads of the core.
"""

from __future__ import annotations

from amaranth import Elaboratable, Module, Signal, Value, unsigned
from amaranth.lib import io, memory, wiring
from amaranth.lib.wiring import Out

from snnhw.flow.boards import Board

ERROR_COUNTER_BITS = 16
"""Width of the mismatch counter (saturates at 2^16 − 1)."""


class SelfCheckTop(wiring.Component):
    """Drive ``core`` from ``input_words`` and compare its output with ``expected_words``.

    Ports:
        done: 1 once every expected word has been received.
        passed: 1 when done and no word differed.
        failed: 1 from the first differing word on.
        errors: number of differing words (saturating, 16 bits).
        words_seen: output words received so far.

    Latency: the core's own; the checker adds no cycle (ROMs are read combinationally, the
    output is always ready until done).
    """

    def __init__(self, core: wiring.Component, input_words: list[int], expected_words: list[int]) -> None:
        if not input_words or not expected_words:
            raise ValueError("the self-checking top needs at least one input and one expected word")
        self._core = core
        self._inputs = list(input_words)
        self._expected = list(expected_words)
        self._in_width = len(Value.cast(core.i.payload))
        self._out_width = len(Value.cast(core.o.payload))
        super().__init__({
            "done": Out(1),
            "passed": Out(1),
            "failed": Out(1),
            "errors": Out(ERROR_COUNTER_BITS),
            "words_seen": Out(range(len(self._expected) + 1)),
        })

    def elaborate(self, platform: object) -> Module:
        m = Module()
        m.submodules.core = core = self._core
        m.submodules.in_rom = in_rom = memory.Memory(
            shape=unsigned(self._in_width), depth=len(self._inputs), init=self._inputs)
        m.submodules.exp_rom = exp_rom = memory.Memory(
            shape=unsigned(self._out_width), depth=len(self._expected), init=self._expected)
        in_rd = in_rom.read_port(domain="comb")
        exp_rd = exp_rom.read_port(domain="comb")

        in_ptr = Signal(range(len(self._inputs) + 1))
        m.d.comb += [
            in_rd.addr.eq(in_ptr),
            core.i.valid.eq(in_ptr < len(self._inputs)),
            Value.cast(core.i.payload).eq(in_rd.data),
        ]
        with m.If(core.i.valid & core.i.ready):
            m.d.sync += in_ptr.eq(in_ptr + 1)

        m.d.comb += [
            exp_rd.addr.eq(self.words_seen),
            self.done.eq(self.words_seen == len(self._expected)),
            core.o.ready.eq(~self.done),
            self.failed.eq(self.errors != 0),
            self.passed.eq(self.done & (self.errors == 0)),
        ]
        with m.If(core.o.valid & core.o.ready):
            m.d.sync += self.words_seen.eq(self.words_seen + 1)
            with m.If((Value.cast(core.o.payload) != exp_rd.data) & (self.errors != (1 << ERROR_COUNTER_BITS) - 1)):
                m.d.sync += self.errors.eq(self.errors + 1)
        return m


class BoardSelfCheck(Elaboratable):
    """The board top: :class:`SelfCheckTop` clocked from the board's clock, LEDs for its status.

    LEDs (from the board description, :class:`~snnhw.flow.boards.LedSpec`): done, pass, fail, and
    a heartbeat blinking at about 1 Hz so a hung design is visible.
    """

    def __init__(self, check: SelfCheckTop, board: Board, clock_hz: float) -> None:
        self.check = check
        self.board = board
        self.clock_hz = clock_hz

    def elaborate(self, platform: object) -> Module:
        m = Module()
        m.submodules.check = self.check
        leds = {}
        requested: dict[tuple[str, int], object] = {}  # one request per resource (an RGB LED serves several roles)
        for role, led in self.board.leds.items():
            key = (led.resource, led.index)
            if key not in requested:
                requested[key] = platform.request(led.resource, led.index, dir="-")
            port = requested[key] if led.subsignal is None else getattr(requested[key], led.subsignal)
            m.submodules[f"led_{role}"] = leds[role] = io.Buffer("o", port)
        status = {"done": self.check.done, "pass": self.check.passed, "fail": self.check.failed}
        for role, signal in status.items():
            m.d.comb += leds[role].o.eq(signal)
        if "heartbeat" in leds:
            half_period = max(1, int(self.clock_hz // 2))
            counter = Signal(range(half_period))
            blink = Signal()
            with m.If(counter == half_period - 1):
                m.d.sync += [counter.eq(0), blink.eq(~blink)]
            with m.Else():
                m.d.sync += counter.eq(counter + 1)
            m.d.comb += leds["heartbeat"].o.eq(blink)
        return m
