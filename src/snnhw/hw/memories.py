"""Memories initialised from the frozen model's integer arrays.

Weights and biases live in :class:`amaranth.lib.memory.Memory` instances with one synchronous
read port (:class:`PackedRom`; block-RAM friendly: the address is registered, data arrive one
cycle later, or two with the read registered by banks). Several signed values share one memory
word: value k of a row sits at bits ``[k·width, (k+1)·width)`` in two's complement, so one read
delivers a whole vector (e.g. ``lanes × 4 × fanin`` weights of one MAC step).

The neurons' scalar constants (thresholds θ, bias shifts σ±, clip bounds) live in small
read-only memories read at constant addresses (:func:`constant_words`), so that they are data
like the weights: a simulator compiled for one model serves every model of the same shape
(``snnhw.sim.memory_files``). Synthesis folds them back into constants (:data:`CONSTANTS_ATTR`).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from amaranth.hdl import Array, Module, Signal, Value, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from snnhw.quant.arith import signed_bits


BLOCK_ROM_MIN_DEPTH = 128
"""ROMs this deep or deeper are asked for block RAM (:func:`rom_attrs`)."""


def rom_attrs(depth: int) -> dict[str, str]:
    """Synthesis attributes of a ROM of ``depth`` words: ``rom_style = "block"`` from
    :data:`BLOCK_ROM_MIN_DEPTH` words on, none below (the tool decides).

    Mapped to logic, every bit of a word of a ROM with 2^7 or more words costs at least two
    6-input LUTs and a wide multiplexer, where one block RAM (512 × 72 bits on a 7-series
    RAMB36E1) delivers 72 bits; Yosys' cost model nevertheless maps some deep, wide ROMs to
    logic (a 256 × 256-bit weight ROM of the H = 128 spiking core became thousands of LUTs
    instead of four RAMB36E1; docs/explore.md). Vivado, Yosys ``synth_xilinx`` and
    ``synth_ecp5`` all honour the attribute.
    """
    return {"rom_style": "block"} if depth >= BLOCK_ROM_MIN_DEPTH else {}


DISTRIBUTED_RAM_MAX_DEPTH = 128
"""State RAMs this shallow or shallower are asked for distributed (LUT) RAM (:func:`ram_attrs`)."""


def ram_attrs(depth: int) -> dict[str, str]:
    """Synthesis attributes of a state RAM of ``depth`` words: ``ram_style = "distributed"`` up to
    :data:`DISTRIBUTED_RAM_MAX_DEPTH` words, none above (the tool decides).

    The wavefront's state memories are shallow and wide (the handover memory of 8 lanes holds
    ~1,000 bits per word, 128 words deep at H = 128, E = 1): as block RAM each 72 bits of width
    take a whole RAMB36E1 (14 of them there), as 7-series LUT RAM a bit costs ≈ 1.3 (64 words)
    to 2.7 (128 words) LUTs — less in both of the explorer's cost measures (a RAMB36E1 is
    576 LUT-equivalents, and 1/445 of an xc7k325t's block RAM against 1/203,800 of its LUTs).
    """
    return {"ram_style": "distributed"} if depth <= DISTRIBUTED_RAM_MAX_DEPTH else {}


CONSTANTS_ATTR = ("snnhw_role", "constants")
"""The attribute (name, value) of every :func:`constant_words` memory. The Yosys recipes of
``snnhw.flow.tools`` map exactly these memories to constants before synthesis
(:func:`snnhw.flow.tools.synth_with_constants_folded`), so the netlist is the one that inline
constants give; Vivado propagates a ROM read at a constant address by itself."""


def constant_words(m: Module, name: str, values: Sequence[int], width: int) -> list[Value]:
    """Model constants as one read-only memory of ``len(values)`` signed ``width``-bit words,
    each read combinationally at its constant address; returns the reads (``signed(width)``)
    in the order of ``values``.

    Raises ``ValueError`` when ``values`` is empty or a value does not fit ``width`` bits.
    """
    values = [int(v) for v in values]
    if not values:
        raise ValueError(f"constant memory {name!r} needs at least one value")
    if values_width(np.asarray(values)) > width:
        raise ValueError(f"constants {values} of {name!r} do not fit signed {width} bits")
    mem = Memory(shape=signed(width), depth=len(values), init=values, attrs=dict([CONSTANTS_ATTR]))
    m.submodules[name] = mem
    reads = []
    for k in range(len(values)):
        port = mem.read_port(domain="comb")
        m.d.comb += port.addr.eq(k)
        reads.append(port.data)
    return reads


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

        bank_depth: None (one memory, :attr:`latency` 1), or a power of two: the read data are
            registered (:attr:`latency` 2), and a deeper ROM is split into banks of
            ``bank_depth`` rows (bank ``addr // bank_depth``), each read into a register of its
            own, the banks' registers multiplexed after them. Block RAM is then never cascaded
            in depth behind a multiplexer in the read's cycle: an ECP5 DP16KD's data leave it
            5.8 ns after the clock, and a depth multiplexer plus the route to the next register
            made that the H = 128 baseline's critical path (``docs/open-flow.md``, "The eighth
            cut"); a bank register can sit by its block RAM (or in it: a 7-series block RAM's
            output register).

    Ports:
        addr: ``In(range(depth))``, the row to read.
        en: ``In(1)``, read enable; the output holds its value while ``en`` is low.
        data: ``Out(ArrayLayout(signed(width), count))``, row ``addr`` of the enabled cycle
            :attr:`latency` cycles earlier (1: synchronous read, maps to block RAM or LUT RAM;
            2 with banks).

    The memory word is ``count·width`` bits (:attr:`word_width`); :attr:`bits` = depth × that.
    """

    def __init__(self, values: np.ndarray | Sequence[Sequence[int]], width: int | None = None, *,
                 bank_depth: int | None = None) -> None:
        values = np.asarray(values, dtype=np.int64)
        if values.ndim != 2 or values.shape[0] < 1 or values.shape[1] < 1:
            raise ValueError(f"ROM contents must be a non-empty [depth, count] array, not shape {values.shape}")
        self.width = values_width(values) if width is None else int(width)
        if self.width < 1:
            raise ValueError(f"width must be ≥ 1, not {self.width}")
        self.depth, self.count = int(values.shape[0]), int(values.shape[1])
        self.words = pack_rows(values, self.width)
        if bank_depth is not None and (bank_depth < 2 or bank_depth & (bank_depth - 1)):
            raise ValueError(f"bank_depth must be a power of two ≥ 2, not {bank_depth!r}")
        self.bank_depth = bank_depth
        super().__init__(
            {
                "addr": In(range(max(self.depth, 2))),
                "en": In(1),
                "data": Out(data.ArrayLayout(signed(self.width), self.count)),
            }
        )

    @property
    def banks(self) -> int:
        """Memories the rows are split into (1 without ``bank_depth`` or when depth ≤ it)."""
        return 1 if self.bank_depth is None else -(-self.depth // self.bank_depth)

    @property
    def latency(self) -> int:
        """Cycles from ``addr``/``en`` to ``data``: 1 (synchronous read), 2 with ``bank_depth``
        (the read registered)."""
        return 1 if self.bank_depth is None else 2

    @property
    def word_width(self) -> int:
        """Bits per memory word (count × width)."""
        return self.count * self.width

    @property
    def bits(self) -> int:
        """Total ROM bits (depth × word width)."""
        return self.depth * self.word_width

    def _read_port(self, m: Module, name: str, words: Sequence[int], addr: Value) -> Value:
        """A memory of ``words`` named ``name`` in ``m``, read at ``addr`` when ``en``: its data."""
        m.submodules[name] = mem = Memory(shape=unsigned(self.word_width), depth=len(words), init=words,
                                          attrs=rom_attrs(len(words)))
        port = mem.read_port(domain="sync")
        m.d.comb += [port.addr.eq(addr), port.en.eq(self.en)]
        return port.data

    def elaborate(self, platform) -> Module:
        m = Module()
        if self.bank_depth is None:
            m.d.comb += Value.cast(self.data).eq(self._read_port(m, "mem", self.words, self.addr))
            return m
        low = min(self.bank_depth.bit_length() - 1, len(self.addr))  # address bits within a bank
        en_read = Signal(name="en_read")  # a read happened last cycle: its data are on the ports
        m.d.sync += en_read.eq(self.en)
        registers = []
        for b in range(self.banks):
            words = self.words[b * self.bank_depth:(b + 1) * self.bank_depth]
            data_b = self._read_port(m, f"mem_{b}", words, self.addr[:low])
            reg = Signal(unsigned(self.word_width), name=f"bank_data_{b}")
            with m.If(en_read):
                m.d.sync += reg.eq(data_b)
            registers.append(reg)
        if len(registers) == 1:
            m.d.comb += Value.cast(self.data).eq(registers[0])
            return m
        select = Signal(range(self.banks), name="bank_select")  # the read's bank, a cycle later
        select_out = Signal.like(select, name="bank_select_out")  # … and two, with the registers
        with m.If(self.en):
            m.d.sync += select.eq(self.addr[low:])
        with m.If(en_read):
            m.d.sync += select_out.eq(select)
        m.d.comb += Value.cast(self.data).eq(Array(registers)[select_out])
        return m
