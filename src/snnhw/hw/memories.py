"""Synchronous-read ROMs initialised from the frozen model's integer arrays.

Weights, biases and thresholds live in :class:`amaranth.lib.memory.Memory` instances with one
synchronous read port (block-RAM friendly: the address is registered, data arrive one cycle
later). Several signed values share one memory word: value k of a row sits at bits
``[k·width, (k+1)·width)`` in two's complement, so one read delivers a whole vector
(e.g. ``lanes × 4 × fanin`` weights of one MAC step).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from amaranth.hdl import Module, Value, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from snnhw.quant.arith import signed_bits


def values_width(values: np.ndarray) -> int:
    """Smallest signed width (bits, ≥ 1) that holds every entry of an integer array."""
    values = np.asarray(values, dtype=np.int64)
    if values.size == 0:
        return 1
    return signed_bits(int(values.min()), int(values.max()))


def pack_rows(values: np.ndarray, width: int) -> list[int]:
    """Pack a [depth, k] integer array into ``depth`` unsigned words of ``k·width`` bits.

    Raises ``ValueError`` when a value does not fit a signed ``width``-bit field.
    """
    values = np.asarray(values, dtype=np.int64)
    if values.ndim != 2:
        raise ValueError(f"pack_rows needs a 2-D array, not shape {values.shape}")
    lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
    if values.size and (values.min() < lo or values.max() > hi):
        raise ValueError(f"values in [{values.min()}, {values.max()}] do not fit signed {width} bits")
    mask = (1 << width) - 1
    words = []
    for row in values.tolist():
        word = 0
        for k, v in enumerate(row):
            word |= (int(v) & mask) << (k * width)
        words.append(word)
    return words


def unpack_word(word: int, width: int, count: int) -> list[int]:
    """Inverse of :func:`pack_rows` for one word: ``count`` signed ``width``-bit values."""
    out = []
    for k in range(count):
        raw = (word >> (k * width)) & ((1 << width) - 1)
        out.append(raw - (1 << width) if raw >> (width - 1) else raw)
    return out


class PackedRom(wiring.Component):
    """A read-only memory of ``depth`` rows, each a vector of ``count`` signed ``width``-bit values.

    Args:
        values: int array [depth, count] (depth ≥ 1, count ≥ 1), the contents.
        width: signed width of each value (bits); default: the smallest that holds them all.

    Ports:
        addr: ``In(range(depth))``, the row to read.
        en: ``In(1)``, read enable; the output holds its value while ``en`` is low.
        data: ``Out(ArrayLayout(signed(width), count))``, row ``addr`` of the previous enabled
            cycle (:attr:`latency` = 1, synchronous read: maps to block RAM or LUT RAM).

    The memory word is ``count·width`` bits (:attr:`word_width`); :attr:`bits` = depth × that.
    """

    def __init__(self, values: np.ndarray | Sequence[Sequence[int]], width: int | None = None) -> None:
        values = np.asarray(values, dtype=np.int64)
        if values.ndim != 2 or values.shape[0] < 1 or values.shape[1] < 1:
            raise ValueError(f"ROM contents must be a non-empty [depth, count] array, not shape {values.shape}")
        self.width = values_width(values) if width is None else int(width)
        if self.width < 1:
            raise ValueError(f"width must be ≥ 1, not {self.width}")
        self.depth, self.count = int(values.shape[0]), int(values.shape[1])
        self.words = pack_rows(values, self.width)
        super().__init__(
            {
                "addr": In(range(max(self.depth, 2))),
                "en": In(1),
                "data": Out(data.ArrayLayout(signed(self.width), self.count)),
            }
        )

    @property
    def latency(self) -> int:
        """Cycles from ``addr``/``en`` to ``data`` (1: synchronous read)."""
        return 1

    @property
    def word_width(self) -> int:
        """Bits per memory word (count × width)."""
        return self.count * self.width

    @property
    def bits(self) -> int:
        """Total ROM bits (depth × word width)."""
        return self.depth * self.word_width

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.mem = mem = Memory(shape=unsigned(self.word_width), depth=self.depth, init=self.words)
        port = mem.read_port(domain="sync")
        m.d.comb += [
            port.addr.eq(self.addr),
            port.en.eq(self.en),
            Value.cast(self.data).eq(port.data),
        ]
        return m
