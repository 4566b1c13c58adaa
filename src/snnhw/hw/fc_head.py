"""The integer FC head (:class:`~snnhw.quant.frozen.IntHead`) as a sequential MAC block.

Semantics (``docs/integer-contract.md`` §3): ``logits = Wout·r + bout``, or with a hidden layer
``a = clip((Wh1·r + bh1) >> hidden_shift, 0, 2^hidden_bits − 1)``, ``logits = Wout·a + bout``;
class = the first index of the largest logit.

Architecture: one multiplier (a DSP48 on 7-series) and one accumulator. Every row of a layer is a
run of ``inputs + 1`` MAC steps (the bias is a last column whose input is the constant 1), all
weights and biases in one synchronous ROM, one value per word. The hidden layer (if any) runs
first, then one bubble cycle, then the output layer; the argmax is tracked as logits complete.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from amaranth.hdl import Array, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from snnhw.hw.memories import PackedRom, values_width
from snnhw.quant.arith import signed_bits
from snnhw.quant.frozen import IntHead


@dataclass(frozen=True)
class HeadRanges:
    """Bounds of the head's integers for a readout r ∈ [in_lo, in_hi] (inclusive ranges).

    Attributes:
        hidden_acc: range of every partial sum of a hidden row (None without a hidden layer).
        mid: range of the output layer's input (the readout, or the hidden activation a).
        out_acc: range of every partial sum of an output row.
        logits: exact interval of the logits (per-row interval hull).
    """

    hidden_acc: tuple[int, int] | None
    mid: tuple[int, int]
    out_acc: tuple[int, int]
    logits: tuple[int, int]


def _acc_bound(w: np.ndarray, b: np.ndarray, lo: int, hi: int) -> tuple[int, int]:
    mag = max(abs(lo), abs(hi), 1)
    bound = int((np.abs(w).sum(axis=1) * mag + np.abs(b)).max())
    return -bound, bound


def _exact_range(w: np.ndarray, b: np.ndarray, lo: int, hi: int) -> tuple[int, int]:
    lows = np.minimum(w * lo, w * hi).sum(axis=1) + b
    highs = np.maximum(w * lo, w * hi).sum(axis=1) + b
    return int(lows.min()), int(highs.max())


def head_ranges(head: IntHead, in_lo: int, in_hi: int) -> HeadRanges:
    """Integer bounds of the head for inputs in ``[in_lo, in_hi]`` (sizes every register)."""
    if head.w_hidden is not None:
        w1 = np.asarray(head.w_hidden, dtype=np.int64)
        b1 = np.asarray(head.b_hidden, dtype=np.int64)
        hidden_acc: tuple[int, int] | None = _acc_bound(w1, b1, in_lo, in_hi)
        mid = (0, (1 << head.hidden_bits) - 1)
    else:
        hidden_acc = None
        mid = (in_lo, in_hi)
    w2 = np.asarray(head.w_out, dtype=np.int64)
    b2 = np.asarray(head.b_out, dtype=np.int64)
    return HeadRanges(hidden_acc, mid, _acc_bound(w2, b2, *mid), _exact_range(w2, b2, *mid))


def head_steps(head: IntHead) -> int:
    """MAC steps (cycles of the multiplier) of one head evaluation, bubble included.

    ``C·(M + 1)`` without a hidden layer (M = readout width), ``K·(H + 1) + 1 + C·(K + 1)``
    with K hidden units.
    """
    c, m = head.w_out.shape
    if head.w_hidden is None:
        return c * (m + 1)
    k, h = head.w_hidden.shape
    return k * (h + 1) + 1 + c * (m + 1)


def head_latency(head: IntHead) -> int:
    """Cycles of :class:`FCHead` from accepting r to ``o.valid``: ``head_steps + 3``."""
    return head_steps(head) + 3


class FCHead(wiring.Component):
    """Sequential integer FC head, exact to ``golden.head_forward``.

    Args:
        head: the frozen head.
        in_lo, in_hi: inclusive range of every readout value r[j] (sizes the input register).

    Ports:
        i: ``In(stream.Signature(ArrayLayout(signed(in_bits), M)))``, the readout r; accepted
            when the block is idle and its previous result has been taken.
        o: ``Out(stream.Signature(StructLayout({"readout": ArrayLayout(signed(in_bits), M),
            "logits": ArrayLayout(signed(logit_bits), C), "cls": unsigned(cls_bits)})))``;
            ``readout`` passes the accepted r through.

    Multipliers: 1 (weight × input, ``weight_width × mid_bits``). Latency (:attr:`latency`):
    ``o.valid`` rises ``head_steps(head) + 3`` cycles after the cycle ``i`` is accepted.
    """

    def __init__(self, head: IntHead, in_lo: int, in_hi: int) -> None:
        if in_lo > in_hi:
            raise ValueError(f"empty input range [{in_lo}, {in_hi}]")
        self.head = head
        self.in_lo, self.in_hi = int(in_lo), int(in_hi)
        self.ranges = head_ranges(head, in_lo, in_hi)
        self.in_bits = signed_bits(in_lo, in_hi)
        self.n_in = int(head.w_out.shape[1] if head.w_hidden is None else head.w_hidden.shape[1])
        self.n_cls = head.num_classes
        self.logit_bits = signed_bits(*self.ranges.logits)
        self.cls_bits = max(1, (self.n_cls - 1).bit_length())
        self.out_layout = data.StructLayout(
            {
                "readout": data.ArrayLayout(signed(self.in_bits), self.n_in),
                "logits": data.ArrayLayout(signed(self.logit_bits), self.n_cls),
                "cls": unsigned(self.cls_bits),
            }
        )
        super().__init__(
            {
                "i": In(stream.Signature(data.ArrayLayout(signed(self.in_bits), self.n_in))),
                "o": Out(stream.Signature(self.out_layout)),
            }
        )

    @property
    def latency(self) -> int:
        """Cycles from accepting r to ``o.valid``: :func:`head_latency`."""
        return head_latency(self.head)

    @property
    def multipliers(self) -> int:
        """Multipliers instantiated (1)."""
        return 1

    def _layers(self) -> list[tuple[np.ndarray, np.ndarray]]:
        layers = []
        if self.head.w_hidden is not None:
            layers.append((np.asarray(self.head.w_hidden, np.int64), np.asarray(self.head.b_hidden, np.int64)))
        layers.append((np.asarray(self.head.w_out, np.int64), np.asarray(self.head.b_out, np.int64)))
        return layers

    def rom_values(self) -> np.ndarray:
        """ROM contents [entries, 1]: per layer, per row, the row's weights then its bias."""
        rows = [np.concatenate([w, b[:, None]], axis=1).reshape(-1) for w, b in self._layers()]
        return np.concatenate(rows)[:, None]

    def elaborate(self, platform) -> Module:
        m = Module()
        layers = self._layers()
        hidden = self.head.w_hidden is not None
        rom_vals = self.rom_values()
        m.submodules.rom = rom = PackedRom(rom_vals, values_width(rom_vals))

        mid_bits = signed_bits(*self.ranges.mid)
        acc_lo = min(self.ranges.out_acc[0], self.ranges.hidden_acc[0] if hidden else 0)
        acc_hi = max(self.ranges.out_acc[1], self.ranges.hidden_acc[1] if hidden else 0)
        acc = Signal(signed(signed_bits(acc_lo, acc_hi)))

        r = Signal(data.ArrayLayout(signed(self.in_bits), self.n_in))
        a = Signal(data.ArrayLayout(signed(mid_bits), layers[-1][0].shape[1])) if hidden else None
        logits = Signal(data.ArrayLayout(signed(self.logit_bits), self.n_cls))
        cls = Signal(unsigned(self.cls_bits))
        best = Signal(signed(self.logit_bits))
        out_valid = Signal()

        # Issue counters (layer, row, col) and ROM address.
        n_layers = len(layers)
        rows = [w.shape[0] for w, _ in layers]
        cols = [w.shape[1] + 1 for w, _ in layers]
        max_rows, max_cols = max(rows), max(cols)
        busy = Signal()  # issuing MAC steps
        running = Signal()  # from acceptance until the result is valid
        bubble = Signal()
        i_layer = Signal(range(max(n_layers, 2)))
        i_row = Signal(range(max_rows + 1))
        i_col = Signal(range(max_cols + 1))
        addr = Signal(range(max(len(rom_vals), 2)))
        rows_a = Array(Const(x, range(max_rows + 1)) for x in rows)
        cols_a = Array(Const(x, range(max_cols + 1)) for x in cols)
        last_col = i_col == cols_a[i_layer] - 1
        last_row = i_row == rows_a[i_layer] - 1
        issuing = busy & ~bubble

        m.d.comb += [
            self.i.ready.eq(~running & ~out_valid),
            rom.addr.eq(addr),
            rom.en.eq(1),
            self.o.valid.eq(out_valid),
            self.o.p.readout.eq(r),
            self.o.p.logits.eq(logits),
            self.o.p.cls.eq(cls),
        ]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += out_valid.eq(0)

        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [r.eq(self.i.p), busy.eq(1), running.eq(1), bubble.eq(0),
                         i_layer.eq(0), i_row.eq(0), i_col.eq(0), addr.eq(0)]
        with m.Elif(busy & bubble):
            m.d.sync += bubble.eq(0)
        with m.Elif(issuing):
            m.d.sync += addr.eq(addr + 1)
            with m.If(~last_col):
                m.d.sync += i_col.eq(i_col + 1)
            with m.Else():
                m.d.sync += i_col.eq(0)
                with m.If(~last_row):
                    m.d.sync += i_row.eq(i_row + 1)
                with m.Else():
                    m.d.sync += i_row.eq(0)
                    with m.If(i_layer == n_layers - 1):
                        m.d.sync += busy.eq(0)
                    with m.Else():
                        m.d.sync += [i_layer.eq(i_layer + 1), bubble.eq(1)]

        # Step stage: the ROM word of the issued address arrives; multiply-accumulate.
        s_valid = Signal()
        s_layer = Signal.like(i_layer)
        s_row = Signal.like(i_row)
        s_col = Signal.like(i_col)
        s_last = Signal()
        m.d.sync += [
            s_valid.eq(issuing),
            s_layer.eq(i_layer),
            s_row.eq(i_row),
            s_col.eq(i_col),
            s_last.eq(last_col),
        ]
        x_bits = max(self.in_bits, mid_bits)
        x = Signal(signed(x_bits))
        inputs_0 = Array(r[j] for j in range(self.n_in))
        with m.If(s_last):
            m.d.comb += x.eq(1)
        with m.Elif(s_layer == 0):
            m.d.comb += x.eq(inputs_0[s_col])
        if hidden:
            inputs_1 = Array(a[j] for j in range(a.shape().length))
            with m.If(~s_last & (s_layer == 1)):
                m.d.comb += x.eq(inputs_1[s_col])
        product = Signal(signed(rom.width + x_bits))
        m.d.comb += product.eq(rom.data[0] * x)
        with m.If(s_valid):
            m.d.sync += acc.eq(Mux(s_col == 0, 0, acc) + product)

        # Finish stage: the row's sum is in acc.
        f_valid = Signal()
        f_layer = Signal.like(i_layer)
        f_row = Signal.like(i_row)
        f_final = Signal()
        m.d.sync += [
            f_valid.eq(s_valid & s_last),
            f_layer.eq(s_layer),
            f_row.eq(s_row),
            f_final.eq(s_valid & s_last & (s_layer == n_layers - 1) & (s_row == rows[-1] - 1)),
        ]
        with m.If(f_valid):
            with m.If(f_layer == n_layers - 1):
                m.d.sync += logits[f_row].eq(acc)
                with m.If((f_row == 0) | (acc > best)):
                    m.d.sync += [best.eq(acc), cls.eq(f_row)]
            if hidden:
                with m.If(f_layer == 0):
                    shifted = acc >> self.head.hidden_shift
                    hi = (1 << self.head.hidden_bits) - 1
                    m.d.sync += a[f_row].eq(Mux(shifted < 0, 0, Mux(shifted > hi, hi, shifted)))
        with m.If(f_valid & f_final):
            m.d.sync += [out_valid.eq(1), running.eq(0)]
        return m
