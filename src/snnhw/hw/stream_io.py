"""Stream payloads, the input lane unpacker and the output word serializer of both cores.

The wire format is fixed by ``docs/hw-interface.md``:

* input ``i``: ``StructLayout({"data": unsigned(Wi), "last": 1})``, one transfer per sequence
  element, lane k of ``data`` at bits ``[k·w, (k+1)·w)``;
* output ``o``: ``StructLayout({"data": signed(Wo), "last": 1})``, per sequence the H readout
  words, then (head in hardware) the C logits and the class index, ``last`` on the final word.

This module holds the layouts (as functions of the frozen model and the input mode), the
hardware pieces every core shares (:func:`input_lanes`, :class:`OutputSerializer`) and the
pure-Python helpers that testbenches use to build input payloads and read output payloads
(:func:`pack_input_word`, :func:`unpack_output_words`), plus two Amaranth-simulator
helpers that drive and collect streams under random stalls (:func:`sim_send`,
:func:`sim_recv`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence, Union

import numpy as np
from amaranth.hdl import Module, Signal, Value, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from snnhw.hw.knobs import InputMode
from snnhw.quant.arith import signed_bits
from snnhw.quant.frozen import FrozenBaseline, FrozenSpiking

INPUT_MODES: tuple[str, ...] = tuple(m.value for m in InputMode)
FrozenModel = Union[FrozenSpiking, FrozenBaseline]


# ----------------------------------------------------------------------------------------------
# Modes, lane geometry, layouts


def default_input_mode(model: FrozenModel) -> str:
    """The input mode a model takes when none is asked for: its own encoding ("direct"/"rate")."""
    if isinstance(model, FrozenBaseline):
        return "direct"
    return model.encoding


def check_input_mode(model: FrozenModel, mode: str | None) -> InputMode:
    """Validate ``mode`` for ``model`` and return it (``None`` → :func:`default_input_mode`).

    The baseline and direct-encoded spiking models take only "direct"; a rate-encoded spiking
    model takes "rate" (on-chip encoder) or "spikes" (the host sends the encoded spikes).
    Returns the :class:`~snnhw.hw.knobs.InputMode` (a ``str`` enum: it compares equal to its
    name); raises ``ValueError`` on an incompatible or unknown mode.
    """
    if mode is None:
        return InputMode(default_input_mode(model))
    if mode not in INPUT_MODES:
        raise ValueError(f"unknown input mode {mode!r} (choose one of {', '.join(INPUT_MODES)})")
    if isinstance(model, FrozenBaseline):
        if mode != InputMode.DIRECT:
            raise ValueError(f"the MAC baseline core takes direct input only, not {mode!r}")
        return InputMode(mode)
    if model.encoding == "direct" and mode != InputMode.DIRECT:
        raise ValueError(f"a direct-encoded model takes input mode 'direct', not {mode!r}")
    if model.encoding == "rate" and mode == InputMode.DIRECT:
        raise ValueError("a rate-encoded model takes input mode 'rate' or 'spikes', not 'direct'")
    return mode


def input_lane_width(model: FrozenModel, mode: str) -> int:
    """Bits w of one input lane: input_bits (direct), rate_bits + 1 (rate), 2 (spikes)."""
    if mode == InputMode.DIRECT:
        return model.input_bits
    if mode == InputMode.RATE:
        assert isinstance(model, FrozenSpiking)
        return model.rate_bits + 1
    if mode == InputMode.SPIKES:
        return 2
    raise ValueError(f"unknown input mode {mode!r}")


def input_lane_count(model: FrozenModel, mode: str) -> int:
    """Lanes per input word: D (direct, rate) or T·D (spikes, lane k = t·D + d)."""
    if mode == InputMode.SPIKES:
        assert isinstance(model, FrozenSpiking)
        return model.T * model.input_size
    return model.input_size


def input_data_width(model: FrozenModel, mode: str) -> int:
    """Wi, bits of the input ``data`` field (lanes × lane width)."""
    return input_lane_count(model, mode) * input_lane_width(model, mode)


def input_layout(model: FrozenModel, mode: str) -> data.StructLayout:
    """Input payload ``StructLayout({"data": unsigned(Wi), "last": 1})`` (``data`` at the LSBs)."""
    return data.StructLayout({"data": unsigned(input_data_width(model, mode)), "last": 1})


def readout_range(model: FrozenModel) -> tuple[int, int]:
    """Inclusive range of one readout word r[j]: [−T, T] (spiking) or [−2^q, 2^q] (baseline)."""
    if isinstance(model, FrozenBaseline):
        q = 1 << model.frac_bits
        return -q, q
    return -model.T, model.T


def readout_bits(model: FrozenModel) -> int:
    """Signed width of one readout word."""
    return signed_bits(*readout_range(model))


def class_bits(model: FrozenModel) -> int:
    """Unsigned width of the class index (≥ 1)."""
    return max(1, (model.num_classes - 1).bit_length())


def output_word_width(model: FrozenModel, head_in_hw: bool) -> int:
    """Wo, the signed width of every output word: wide enough for readout, logits and class."""
    width = readout_bits(model)
    if head_in_hw:
        from snnhw.hw.fc_head import head_ranges

        lo, hi = readout_range(model)
        logits = head_ranges(model.head, lo, hi).logits
        width = max(width, signed_bits(*logits), signed_bits(0, model.num_classes - 1))
    return width


def output_word_count(model: FrozenModel, head_in_hw: bool) -> int:
    """Words per sequence on ``o``: H, plus C + 1 with the head in hardware."""
    return model.hidden_size + ((model.num_classes + 1) if head_in_hw else 0)


def output_layout(model: FrozenModel, head_in_hw: bool) -> data.StructLayout:
    """Output payload ``StructLayout({"data": signed(Wo), "last": 1})``."""
    return data.StructLayout({"data": signed(output_word_width(model, head_in_hw)), "last": 1})


def input_signature(model: FrozenModel, mode: str) -> stream.Signature:
    """The ``i`` stream signature of a core (as seen from the core: use with ``In(...)``)."""
    return stream.Signature(input_layout(model, mode))


def output_signature(model: FrozenModel, head_in_hw: bool) -> stream.Signature:
    """The ``o`` stream signature of a core (as seen from the core: use with ``Out(...)``)."""
    return stream.Signature(output_layout(model, head_in_hw))


# ----------------------------------------------------------------------------------------------
# Hardware: lane views and the output serializer


def input_lanes(model: FrozenModel, mode: str, word: Value) -> list[Value]:
    """Signed lane views of an input ``data`` value (no logic: slices).

    Returns ``input_lane_count`` values of ``input_lane_width`` bits each; for "spikes" the
    lane of (t, d) is index ``t·D + d`` and holds a 2-bit two's-complement spike.
    """
    width = input_lane_width(model, mode)
    word = Value.cast(word)
    return [word[k * width : (k + 1) * width].as_signed() for k in range(input_lane_count(model, mode))]


class OutputSerializer(wiring.Component):
    """Streams a vector of ``count`` signed words as ``count`` transfers, ``last`` on the final one.

    Ports:
        i: ``In(stream.Signature(ArrayLayout(signed(width), count)))``: the whole vector, accepted
            when the serializer is empty, or in the cycle its final word is taken.
        o: ``Out(stream.Signature(StructLayout({"data": signed(width), "last": 1})))``.

    The accepted vector is held in a shift register (word 0 at the head), so the words leave
    exactly once, in order, whatever the ``o.ready`` pattern. Latency: word k of a vector
    accepted in cycle c is valid from cycle c + 1 + k when ``o.ready`` is always high
    (:attr:`latency` = 1); a new vector is accepted in the cycle the previous final word moves,
    so a sink that is always ready sees ``count`` words back to back.
    """

    def __init__(self, count: int, width: int) -> None:
        if count < 1:
            raise ValueError(f"count must be ≥ 1, not {count}")
        if width < 1:
            raise ValueError(f"width must be ≥ 1, not {width}")
        self.count = count
        self.width = width
        super().__init__(
            {
                "i": In(stream.Signature(data.ArrayLayout(signed(width), count))),
                "o": Out(stream.Signature(data.StructLayout({"data": signed(width), "last": 1}))),
            }
        )

    @property
    def latency(self) -> int:
        """Cycles from accepting a vector to its first word being valid (1)."""
        return 1

    def elaborate(self, platform) -> Module:
        m = Module()
        buf = Signal(data.ArrayLayout(signed(self.width), self.count))
        remaining = Signal(range(self.count + 1))
        on_last = remaining == 1
        take = self.o.valid & self.o.ready
        m.d.comb += [
            self.o.valid.eq(remaining != 0),
            self.o.p.data.eq(buf[0]),
            self.o.p.last.eq(on_last),
            self.i.ready.eq((remaining == 0) | (take & on_last)),
        ]
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [buf.eq(self.i.p), remaining.eq(self.count)]
        with m.Elif(take):
            m.d.sync += remaining.eq(remaining - 1)
            m.d.sync += [buf[k].eq(buf[k + 1]) for k in range(self.count - 1)]
        return m


# ----------------------------------------------------------------------------------------------
# Pure Python: payload packing for testbenches and hosts


def _fits(value: int, width: int) -> bool:
    return -(1 << (width - 1)) <= value < (1 << (width - 1))


def pack_input_word(model: FrozenModel, mode: str, element_values: np.ndarray | Sequence, last: bool = False) -> int:
    """The flattened ``i`` payload (``data`` | ``last`` << Wi) of one sequence element.

    Args:
        model: the frozen model the core was generated from.
        mode: "direct" / "rate": ``element_values`` is x_q[n] (int [D]); "spikes":
            ``element_values`` is u(n, t) for t = 0..T−1 (int [T, D], values in {−1, 0, 1}).
        last: whether this is the final element of its sequence.

    Raises ``ValueError`` when the values have the wrong shape or do not fit their lanes.
    """
    width = input_lane_width(model, mode)
    values = np.asarray(element_values, dtype=np.int64)
    if mode == InputMode.SPIKES:
        assert isinstance(model, FrozenSpiking)
        expected: tuple[int, ...] = (model.T, model.input_size)
    else:
        expected = (model.input_size,)
    if values.shape != expected:
        raise ValueError(f"input element has shape {values.shape}, expected {expected}")
    if mode == InputMode.SPIKES and not np.all(np.abs(values) <= 1):
        raise ValueError("spike input values must be in {-1, 0, 1}")
    word = 0
    mask = (1 << width) - 1
    for k, v in enumerate(values.reshape(-1).tolist()):
        if not _fits(v, width):
            raise ValueError(f"input value {v} does not fit a signed {width}-bit lane")
        word |= (v & mask) << (k * width)
    return word | (int(bool(last)) << input_data_width(model, mode))


def unpack_output_word(model: FrozenModel, payload: int, head_in_hw: bool) -> tuple[int, bool]:
    """Split a flattened ``o`` payload into (signed data value, last flag)."""
    width = output_word_width(model, head_in_hw)
    raw = payload & ((1 << width) - 1)
    value = raw - (1 << width) if raw >> (width - 1) else raw
    return value, bool((payload >> width) & 1)


@dataclass
class OutputRecord:
    """What a core sent for one sequence.

    Attributes:
        readout: int64 [H], the readout r.
        logits: int64 [C] (head in hardware) or None.
        cls: the class index (head in hardware) or None.
    """

    readout: np.ndarray
    logits: np.ndarray | None
    cls: int | None


def unpack_output_words(model: FrozenModel, payloads: Sequence[int], *, head_in_hw: bool) -> list[OutputRecord]:
    """Parse a run of flattened ``o`` payloads into one :class:`OutputRecord` per sequence.

    Raises ``ValueError`` when a sequence has the wrong number of words, or the stream does
    not end on a ``last`` word.
    """
    count = output_word_count(model, head_in_hw)
    records: list[OutputRecord] = []
    current: list[int] = []
    for payload in payloads:
        value, last = unpack_output_word(model, payload, head_in_hw)
        current.append(value)
        if last:
            if len(current) != count:
                raise ValueError(f"a sequence produced {len(current)} output words, expected {count}")
            h = model.hidden_size
            arr = np.asarray(current, dtype=np.int64)
            if head_in_hw:
                records.append(OutputRecord(arr[:h], arr[h:-1], int(arr[-1])))
            else:
                records.append(OutputRecord(arr, None, None))
            current = []
    if current:
        raise ValueError(f"{len(current)} output words after the final 'last'")
    return records


# ----------------------------------------------------------------------------------------------
# Amaranth simulator helpers (testbenches)


async def sim_send(ctx, port: stream.Interface, payloads: Sequence[int], rng: np.random.Generator | None = None,
                   idle: float = 0.0) -> list[int]:
    """Drive ``payloads`` (flattened ints) into a stream, in order; returns the accept cycles.

    With ``rng`` and ``idle`` > 0, ``valid`` is withheld for a random cycle with probability
    ``idle`` before each word. Cycle numbers count ``ctx.tick()`` calls made by this coroutine.
    """
    accepted: list[int] = []
    cycle = 0
    raw = Value.cast(port.payload)
    for payload in payloads:
        while rng is not None and idle > 0 and rng.random() < idle:
            ctx.set(port.valid, 0)
            await ctx.tick()
            cycle += 1
        ctx.set(raw, payload)
        ctx.set(port.valid, 1)
        while True:
            _, _, ready = await ctx.tick().sample(port.ready)
            cycle += 1
            if ready:
                accepted.append(cycle - 1)
                break
        ctx.set(port.valid, 0)
    return accepted


async def sim_recv(ctx, port: stream.Interface, count: int, rng: np.random.Generator | None = None,
                   stall: float = 0.0) -> tuple[list[int], list[int]]:
    """Take ``count`` transfers from a stream; returns (flattened payloads, accept cycles).

    With ``rng`` and ``stall`` > 0, ``ready`` is low in a cycle with probability ``stall``.
    Cycle numbers count ``ctx.tick()`` calls made by this coroutine.
    """
    words: list[int] = []
    cycles: list[int] = []
    cycle = 0
    raw = Value.cast(port.payload)
    while len(words) < count:
        ready = not (rng is not None and stall > 0 and rng.random() < stall)
        ctx.set(port.ready, int(ready))
        _, _, valid, payload = await ctx.tick().sample(port.valid, raw)
        cycle += 1
        if ready and valid:
            words.append(int(payload))
            cycles.append(cycle - 1)
    ctx.set(port.ready, 0)
    return words, cycles
