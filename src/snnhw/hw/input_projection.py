"""Layer-1 direct-input projection ``P_a(n) = (Σ_d Wx[a,k,d]·x_q[n,d]) >> x_shift[a]`` (contract §1).

The one MAC of the spiking core (besides the FC head): computed once per sequence element and
reused by every time step. ``lanes`` units × 4 gates × ``fanin`` products per cycle
(4·lanes·fanin multipliers), unit group by group, input chunk by chunk; each finished group
is written to the projection memory of the core.
"""

from __future__ import annotations

from math import ceil

from amaranth.hdl import Array, Cat, Module, Mux, Signal, signed
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from snnhw.hw.adder_tree import tree_sum
from snnhw.hw.engine import gate_lanes_layout, weights_layout
from snnhw.hw.leak_unit import delayed
from snnhw.hw.memories import rom_attrs
from snnhw.hw.schedule import projection_latency
from snnhw.hw.sequencer import ChunkSequencer, beat_layout
from snnhw.quant.arith import signed_bits
from snnhw.quant.bounds import direct_mac_bound
from snnhw.quant.frozen import SpikingLayer


class InputProjection(wiring.Component):
    """Sequential MAC computing P(n) for all 4H rows of layer 1.

    Parameters:
        layer: the first layer (direct encoding). input_bits: signed width of x_q.
        weight_bits: signed weight width. lanes (L ≥ 1), fanin (F ≥ 1).
        stages: 1, or 2 to register the weight word and the input chunk once more before the
            multipliers (the block RAM's slow clock-to-output then has a cycle of its own).

    Ports:
        start: In(1); x: In(ArrayLayout(signed(input_bits), D)) sampled in the ``start`` cycle.
        wr_addr: Out(range(G)), wr_data: Out(ArrayLayout(ArrayLayout(signed(acc_bits), L), 4)),
        wr_en: Out(1): one word per unit group (units g·L .. g·L+L−1), gate-major.
        done: Out(1): high in the cycle of the last write.

    Timing: ``start`` in cycle A → beats A+1 .. A+G·C → ``done`` (last write) in cycle
    A + :attr:`latency`, ``latency = G·C + 1 + stages`` with G = ⌈H/L⌉ and C = ⌈D/F⌉.
    Multipliers: 4·L·F (weight × input, both non-constant).
    """

    def __init__(self, layer: SpikingLayer, *, input_bits: int, weight_bits: int, lanes: int, fanin: int,
                 stages: int = 1) -> None:
        for name, v in (("lanes", lanes), ("fanin", fanin)):
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"InputProjection {name} must be an integer ≥ 1, not {v!r}")
        if not isinstance(input_bits, int) or input_bits < 2:
            raise ValueError(f"InputProjection input_bits must be an integer ≥ 2, not {input_bits!r}")
        if stages not in (1, 2):
            raise ValueError(f"InputProjection stages must be 1 or 2, not {stages!r}")
        self.layer, self.input_bits, self.weight_bits, self.stages = layer, input_bits, weight_bits, stages
        self.lanes, self.fanin = lanes, fanin
        self.H, self.D = layer.hidden_size, layer.input_size
        self.G, self.C = ceil(self.H / lanes), ceil(self.D / fanin)
        bound = direct_mac_bound(layer.w_x, input_bits)
        self.mac_bits = signed_bits(-bound, bound)
        super().__init__({
            "start": In(1),
            "x": In(data.ArrayLayout(signed(input_bits), self.D)),
            "wr_addr": Out(range(max(self.G, 2))),
            "wr_data": Out(gate_lanes_layout(layer.acc_bits, lanes)),
            "wr_en": Out(1),
            "done": Out(1),
        })

    @property
    def latency(self) -> int:
        """Cycles from ``start`` to ``done`` (the last write): ``G·C + 1 + stages``."""
        return projection_latency(self.H, self.D, self.lanes, self.fanin, self.stages)

    @property
    def multipliers(self) -> int:
        """Multipliers instantiated: 4·lanes·fanin."""
        return 4 * self.lanes * self.fanin

    def elaborate(self, platform):
        m = Module()
        L, F, G, C, H, D = self.lanes, self.fanin, self.G, self.C, self.H, self.D
        cbits = ceil_log2(max(C, 2))
        words = [[[[0] * F for _ in range(L)] for _ in range(4)] for _ in range(G << cbits)]
        for g in range(G):
            for c in range(C):
                for a in range(4):
                    for k in range(L):
                        for f in range(F):
                            j, d = g * L + k, c * F + f
                            if j < H and d < D:
                                words[(g << cbits) | c][a][k][f] = int(self.layer.w_x[a * H + j, d])
        m.submodules.wmem = wmem = memory.Memory(shape=weights_layout(self.weight_bits, L, F),
                                                 depth=G << cbits, init=words, attrs=rom_attrs(G << cbits))
        rd = wmem.read_port()
        x = Signal(data.ArrayLayout(signed(self.input_bits), C * F))
        with m.If(self.start):
            m.d.sync += x.eq(Cat(self.x.as_value(), 0))

        m.submodules.sequencer = seq = ChunkSequencer(passes=1, groups=G, chunks=C)
        m.d.comb += [seq.start.eq(self.start), rd.addr.eq(Cat(seq.beat.c, seq.beat.g))]
        b1 = Signal(beat_layout(1, G, C))
        m.d.sync += b1.eq(seq.beat)
        # the beat's input chunk is selected in the sequencer's cycle and registered beside the ROM's
        # read, so the multipliers start from registers (no selection multiplexer in front of them)
        chunks = Array([Cat(*[x[c * F + f] for f in range(F)]) for c in range(C)])
        xc = Signal(data.ArrayLayout(signed(self.input_bits), F))
        m.d.sync += xc.eq(chunks[seq.beat.c])

        w = rd.data
        if self.stages == 2:  # the read word and the chunk once more through registers
            w, xc, b1 = delayed(m, w, "w_p2"), delayed(m, xc, "xc_p2"), delayed(m, b1, "b1_p2")
        b2 = Signal(beat_layout(1, G, C))
        m.d.sync += b2.eq(b1)
        for a in range(4):
            for k in range(L):
                s = Signal(signed(self.mac_bits), name=f"sum_{a}_{k}")
                m.d.sync += s.eq(tree_sum([w[a][k][f] * xc[f] for f in range(F)]))
                acc = Signal(signed(self.mac_bits), name=f"acc_{a}_{k}")
                acc_next = Signal(signed(self.mac_bits), name=f"acc_next_{a}_{k}")
                m.d.comb += acc_next.eq(Mux(b2.first, 0, acc) + s)
                with m.If(b2.valid):
                    m.d.sync += acc.eq(acc_next)
                m.d.comb += self.wr_data[a][k].eq(acc_next >> self.layer.x_shift[a])
        m.d.comb += [self.wr_addr.eq(b2.g), self.wr_en.eq(b2.valid & b2.last), self.done.eq(b2.final)]
        return m
