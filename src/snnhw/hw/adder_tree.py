"""Spike-selected adder tree: ``Σ_f s_f·w_f`` with ``s_f`` ∈ {−1, 0, +1} (add, subtract, skip).

The accumulate-only synapse of the spiking core: every product has a spike as one operand, so
it is a mux/negate (``arith.spike_select``), and the sum a balanced tree of adders. No
multiplier. The tree negates without a negator: ``−w = ~w + 1``, so each term is
``(w XOR neg) AND nonzero`` — a function of three bits per bit, which synthesis folds into the
first adder level's LUTs — and the ``+1`` of every negative spike is added once, as the count
of negative spikes, at the tree's root.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Value, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from snnhw.quant.arith import signed_bits

SPIKE_SHAPE = signed(2)
"""A ternary spike ``s`` ∈ {−1, 0, +1} as 2-bit two's complement (+1 = 01, −1 = 11, 0 = 00)."""


def spike_select_expr(s: Value, w: Value) -> Value:
    """``s·w`` for a 2-bit ternary (or 1-bit binary) spike ``s``: mux / negate (``arith.spike_select``)."""
    s = s.as_signed() if len(s) > 1 else s.as_unsigned()
    neg = s < 0 if len(s) > 1 else 0
    pos = s > 0
    return Mux(pos, w, Mux(neg, -w, 0))


def tree_sum(values: list[Value]) -> Value:
    """Balanced pairwise sum of ``values`` (depth ⌈log2 len⌉)."""
    level = list(values)
    while len(level) > 1:
        nxt = [level[k] + level[k + 1] for k in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


class SpikeAdderTree(wiring.Component):
    """``sum = Σ_{f<fanin} spike_select(spikes[f], weights[f])``, registered once.

    Parameters:
        weight_bits: signed width of each weight (2..16).
        fanin: synapses summed per cycle (≥ 1).

    Ports:
        weights: In(ArrayLayout(signed(weight_bits), fanin)).
        spikes: In(ArrayLayout(signed(2), fanin)), ternary spikes.
        sum: Out(signed(sum_bits)), ``sum_bits`` holds ``±fanin·2^(weight_bits−1)``.
    """

    def __init__(self, weight_bits: int, fanin: int) -> None:
        if not isinstance(weight_bits, int) or not 2 <= weight_bits <= 16:
            raise ValueError(f"SpikeAdderTree weight_bits must be in 2..16, not {weight_bits!r}")
        if not isinstance(fanin, int) or fanin < 1:
            raise ValueError(f"SpikeAdderTree fanin must be an integer ≥ 1, not {fanin!r}")
        self.weight_bits = weight_bits
        self.fanin = fanin
        bound = fanin * (1 << (weight_bits - 1))
        self.sum_bits = signed_bits(-bound, bound)
        super().__init__({
            "weights": In(data.ArrayLayout(signed(weight_bits), fanin)),
            "spikes": In(data.ArrayLayout(SPIKE_SHAPE, fanin)),
            "sum": Out(signed(self.sum_bits)),
        })

    @property
    def latency(self) -> int:
        """Cycles from ``weights``/``spikes`` to ``sum``: 1 (combinational tree, output register)."""
        return 1

    def elaborate(self, platform):
        m = Module()
        terms, negatives = [], []
        for f in range(self.fanin):
            s, w = self.spikes[f].as_signed(), self.weights[f].as_unsigned()
            neg, nonzero = s[1], s.any()  # −1 = 0b11, +1 = 0b01, 0 = 0b00
            terms.append(Mux(nonzero, w ^ neg.replicate(self.weight_bits), 0).as_signed())  # s·w − [s < 0]
            negatives.append(neg)
        m.d.sync += self.sum.eq(tree_sum(terms) + tree_sum(negatives))
        return m
