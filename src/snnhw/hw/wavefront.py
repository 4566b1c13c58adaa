"""One layer's diagonal wavefront: E identical engines, one per time-step slot, in lockstep.

The spiking LSTM cell (n, t) depends on (n−1, t) (h, c) and (n, t−1) (membranes), so the
cells of one anti-diagonal ``k = n + t`` are independent. A *diagonal step* of this block
processes, for every slot t (engine ``t mod E`` in pass ``t div E``), the cell of the element
that currently sits in slot t. Beats run pass by pass (highest pass first), unit group by unit
group (``lanes`` units), synapse chunk by chunk (``fanin`` synapses): one weight word per beat
(4 gates × lanes × fanin) is read from the layer's weight memory and broadcast to all engines,
each engine selecting by its own spikes.

State (per slot t, i.e. per engine and pass):
* ``h``: registers, double-buffered by the diagonal parity: the step reads h(n−1, t) from the
  buffer ``1 − parity`` and writes h(n, t) to ``parity``; ``h_prev`` (port) is the read buffer,
  i.e. the previous diagonal's h, which the next layer consumes.
* ``c``: a memory per engine (address pass·group), read then written in place.
* handover: a memory per engine holding, per unit, the membranes U(n, t) (and, for a
  direct-input layer, the element's projection P(n)); engine e reads the one of the slot
  t−1 (engine e−1, or engine E−1 of the pass below), so the element's membranes move one
  slot per diagonal. Reads precede writes of the same address in lockstep, and passes run from
  the highest down, so every read sees the previous diagonal's value.
Masks: slot 0 starts from zero membranes (and the fresh projection); an element's first cell
reads c = 0 and h = 0; an invalid slot writes nothing.
"""

from __future__ import annotations

from math import ceil

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from snnhw.hw.adder_tree import SPIKE_SHAPE
from snnhw.hw.engine import Engine, gate_lanes_layout, weights_layout
from snnhw.hw.neuron_lanes import membranes_layout, validate_layer
from snnhw.quant.arith import signed_bits
from snnhw.quant.frozen import SpikingLayer

FLAG_LAYOUT = data.StructLayout({"valid": 1, "first": 1, "last": 1})
"""What a slot holds this diagonal: a valid element; its sequence's first; its sequence's last."""

PIPELINE_DRAIN = 4
"""Cycles from a diagonal step's last beat to its last state write (s0 → s4)."""


class LayerWavefront(wiring.Component):
    """A diagonal step of one spiking layer over all T slots.

    Parameters:
        layer: the frozen layer.
        T: time steps (slots).
        weight_bits: signed weight width.
        lanes: units per engine per beat (L ≥ 1); fanin: synapses per lane per beat (F ≥ 1).
        engines: E, 1..T; P = ⌈T/E⌉ passes per diagonal step.
        direct_input: True for layer 1 with direct encoding (no input chunks; the projection
            P(n) is read through ``p_addr``/``p_data``, a synchronous memory of G words).
        event_driven: skip the chunks whose (masked) spikes are zero in every engine of a pass.
        readout: accumulate ``r[j] += h(n, t)[j]`` for the slots holding a sequence's last
            element (the last layer); ``readout_clear`` zeroes it.

    Beats per diagonal step: ``B = Σ_p G·C_p`` with G = ⌈H/L⌉ groups and C_p = C = C_in + C_rec
    chunks (C_in = ⌈D_in/F⌉ for spike input, 0 for direct; C_rec = ⌈H/F⌉) when dense, and
    ``C_p = max(1, nz_p)`` when event-driven (nz_p: chunks with a nonzero spike in any valid
    engine of pass p). ``start`` in cycle S → beats in S+1..S+B → ``done`` in cycle
    S+B+4 (:attr:`latency` after the last beat), the cycle of the last state write.
    ``parity`` and ``flags`` must stay constant from ``start`` to ``done``.
    """

    def __init__(self, layer: SpikingLayer, *, T: int, weight_bits: int, lanes: int, fanin: int,
                 engines: int, direct_input: bool, event_driven: bool, readout: bool) -> None:
        validate_layer(layer)
        for name, v in (("T", T), ("lanes", lanes), ("fanin", fanin), ("engines", engines)):
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"LayerWavefront {name} must be an integer ≥ 1, not {v!r}")
        if engines > T:
            raise ValueError(f"LayerWavefront engines ({engines}) must not exceed T ({T})")
        self.layer, self.T, self.weight_bits = layer, T, weight_bits
        self.lanes, self.fanin, self.engines = lanes, fanin, engines
        self.direct_input, self.event_driven, self.has_readout = direct_input, event_driven, readout
        self.H, self.D = layer.hidden_size, layer.input_size
        self.G = ceil(self.H / lanes)
        self.C_in = 0 if direct_input else ceil(self.D / fanin)
        self.C_rec = ceil(self.H / fanin)
        self.C = self.C_in + self.C_rec
        self.P = ceil(T / engines)
        self.readout_bits = signed_bits(-T, T)
        ports = {
            "start": In(1),
            "done": Out(1),
            "parity": In(1),
            "flags": In(data.ArrayLayout(FLAG_LAYOUT, T)),
            "h_prev": Out(data.ArrayLayout(data.ArrayLayout(SPIKE_SHAPE, self.H), T)),
        }
        if direct_input:
            ports["p_addr"] = Out(range(max(self.G, 2)))
            ports["p_data"] = In(gate_lanes_layout(layer.acc_bits, lanes))
        else:
            ports["u"] = In(data.ArrayLayout(data.ArrayLayout(SPIKE_SHAPE, self.D), T))
        if readout:
            ports["readout"] = Out(data.ArrayLayout(signed(self.readout_bits), self.H))
            ports["readout_clear"] = In(1)
        super().__init__(ports)

    @property
    def latency(self) -> int:
        """Cycles from the last beat to ``done`` (the last state write): 4 (s0 → s4)."""
        return PIPELINE_DRAIN

    def beats(self, nz: list[int] | None = None) -> int:
        """Beats of one diagonal step: ``P·G·C`` dense; ``Σ_p G·max(1, nz[p])`` event-driven."""
        if nz is None:
            return self.P * self.G * self.C
        return sum(self.G * max(1, n) for n in nz)

    def _weight_words(self) -> list:
        layer, L, F = self.layer, self.lanes, self.fanin
        cbits = ceil_log2(max(self.C, 2))
        words = [[[[0] * F for _ in range(L)] for _ in range(4)] for _ in range(self.G << cbits)]
        for g in range(self.G):
            for c in range(self.C):
                w = words[(g << cbits) | c]
                for a in range(4):
                    for k in range(L):
                        j = g * L + k
                        if j >= self.H:
                            continue
                        for f in range(F):
                            if c < self.C_in:
                                d = c * F + f
                                if d < self.D:
                                    w[a][k][f] = int(layer.w_x[a * self.H + j, d])
                            else:
                                d = (c - self.C_in) * F + f
                                if d < self.H:
                                    w[a][k][f] = int(layer.w_h[a * self.H + j, d])
        return words

    def elaborate(self, platform):
        m = Module()
        layer, T, L, F, E, P, G, C = self.layer, self.T, self.lanes, self.fanin, self.engines, \
            self.P, self.G, self.C
        H = self.H
        gbits, cbits = ceil_log2(max(G, 2)), ceil_log2(max(C, 2))
        pbits = ceil_log2(max(P, 2))
        n_slots = P * E

        # ---- memories: weights and bias (broadcast), c and handover per engine ----
        wmem = memory.Memory(shape=weights_layout(self.weight_bits, L, F), depth=G << cbits,
                             init=self._weight_words())
        bias_words = [[[int(layer.bias[a * H + g * L + k]) if g * L + k < H else 0
                        for k in range(L)] for a in range(4)] for g in range(G)]
        bmem = memory.Memory(shape=gate_lanes_layout(layer.acc_bits, L), depth=G, init=bias_words)
        m.submodules.wmem, m.submodules.bmem = wmem, bmem
        hand_fields = {"u": membranes_layout(layer)}
        if self.direct_input:
            hand_fields["p"] = data.ArrayLayout(signed(layer.acc_bits), 4)
        hand_layout = data.ArrayLayout(data.StructLayout(hand_fields), L)
        c_layout = data.ArrayLayout(signed(layer.cell_bits), L)
        state_depth = P << gbits
        engines, cmems, hmems = [], [], []
        for e in range(E):
            eng = Engine(layer, weight_bits=self.weight_bits, lanes=L, fanin=F)
            cm = memory.Memory(shape=c_layout, depth=state_depth, init=[])
            hm = memory.Memory(shape=hand_layout, depth=state_depth, init=[])
            m.submodules[f"engine_{e}"], m.submodules[f"cmem_{e}"], m.submodules[f"hmem_{e}"] = eng, cm, hm
            engines.append(eng)
            cmems.append((cm.read_port(), cm.write_port()))
            hmems.append((hm.read_port(), hm.write_port()))

        # ---- flags of every slot (padding slots ≥ T are never valid) ----
        zero_flag = FLAG_LAYOUT(Const(0, FLAG_LAYOUT.size))
        flags = [self.flags[t] if t < T else zero_flag for t in range(n_slots)]

        # ---- h buffers: hbuf[parity][slot], 2 bits per unit, flat ----
        hpad = max(G * L, self.C_rec * F)
        hbuf = [[Signal(2 * hpad, name=f"hbuf_{b}_{t}") for t in range(T)] for b in range(2)]
        h_read = [Signal(2 * hpad, name=f"h_read_{t}") for t in range(T)]
        for t in range(T):
            m.d.comb += [h_read[t].eq(Mux(self.parity, hbuf[0][t], hbuf[1][t])),
                         self.h_prev[t].as_value().eq(h_read[t][:2 * H])]

        # ---- effective (masked) synapse vector of every slot, chunk-padded ----
        eff = []
        for t in range(n_slots):
            if t >= T:
                eff.append(Const(0, 2 * F * C))
                continue
            parts = []
            if self.C_in:
                u = Mux(flags[t].valid, self.u[t].as_value(), 0)
                parts.append(Cat(u, Const(0, 2 * (self.C_in * F - self.D))))
            rec_ok = flags[t].valid & ~flags[t].first
            parts.append(Mux(rec_ok, h_read[t][:2 * self.C_rec * F], 0))
            v = Signal(2 * F * C, name=f"eff_{t}")
            m.d.comb += v.eq(Cat(*parts))
            eff.append(v)

        def chunk(v, c):
            return v[2 * F * c:2 * F * (c + 1)]

        # ---- sequencer (stage s0) ----
        full = (1 << C) - 1
        if self.event_driven:
            pass_masks = []
            for p in range(P):
                nzs = []
                for c in range(C):
                    nzs.append(Cat(*[chunk(eff[p * E + e], c) for e in range(E)]).any())
                msk = Signal(C, name=f"nz_mask_{p}")
                m.d.comb += msk.eq(Cat(*nzs))
                pass_masks.append(Mux(msk == 0, 1, msk))
            start_mask = Array(pass_masks)
        else:
            start_mask = Array([Const(full, C)] * P)
        active0 = Signal()
        p0 = Signal(pbits)
        g0 = Signal(gbits)
        first0 = Signal()
        rem0 = Signal(C)
        cur = Signal(C)
        c0 = Signal(cbits)
        last0 = Signal()
        final0 = Signal()
        m.d.comb += [
            cur.eq(Mux(first0, start_mask[p0], rem0)),
            last0.eq((cur & (cur - 1)) == 0),
            final0.eq(active0 & last0 & (g0 == G - 1) & (p0 == 0)),
        ]
        for c in reversed(range(C)):
            with m.If(cur[c]):
                m.d.comb += c0.eq(c)
        with m.If(active0):
            with m.If(last0):
                m.d.sync += first0.eq(1)
                with m.If(g0 == G - 1):
                    m.d.sync += g0.eq(0)
                    with m.If(p0 == 0):
                        m.d.sync += active0.eq(0)
                    with m.Else():
                        m.d.sync += p0.eq(p0 - 1)
                with m.Else():
                    m.d.sync += g0.eq(g0 + 1)
            with m.Else():
                m.d.sync += [first0.eq(0), rem0.eq(cur & (cur - 1))]
        with m.Elif(self.start):
            m.d.sync += [active0.eq(1), p0.eq(P - 1), g0.eq(0), first0.eq(1)]

        w_rd = wmem.read_port()
        m.d.comb += w_rd.addr.eq(Cat(c0, g0))

        # ---- stage s1 ----
        v1, first1, last1, final1 = Signal(), Signal(), Signal(), Signal()
        p1, g1, c1 = Signal(pbits), Signal(gbits), Signal(cbits)
        m.d.sync += [v1.eq(active0), first1.eq(first0), last1.eq(last0), final1.eq(final0),
                     p1.eq(p0), g1.eq(g0), c1.eq(c0)]
        b_rd = bmem.read_port()
        m.d.comb += b_rd.addr.eq(g1)
        if self.direct_input:
            m.d.comb += self.p_addr.eq(g1)
        for e, eng in enumerate(engines):
            vec = Array([eff[p * E + e] for p in range(P)])[p1]
            m.d.comb += [
                eng.beat.valid.eq(v1), eng.beat.first.eq(first1), eng.beat.last.eq(last1),
                eng.weights.eq(w_rd.data),
                eng.spikes.as_value().eq(Array([chunk(vec, c) for c in range(C)])[c1]),
                cmems[e][0].addr.eq(Cat(g1, p1)),
            ]
            if e < E - 1:
                m.d.comb += hmems[e][0].addr.eq(Cat(g1, p1))
            else:
                m.d.comb += hmems[e][0].addr.eq(Cat(g1, (p1 - 1)[:pbits]))

        # ---- stage s2: previous-slot state, masks, base ----
        p2, g2, final2 = Signal(pbits), Signal(gbits), Signal()
        m.d.sync += [p2.eq(p1), g2.eq(g1), final2.eq(final1)]
        zero_hand = Const(0, hand_layout.size)
        p_delay = []
        for e, eng in enumerate(engines):
            if e >= 1:
                prev = hmems[e - 1][0].data
            else:
                prev_mem = hmems[E - 1][0].data
                prev = Signal(hand_layout, name="prev_0")
                with m.If(p2 == 0):
                    m.d.comb += prev.eq(zero_hand)
                    if self.direct_input:
                        for k in range(L):
                            for a in range(4):
                                m.d.comb += prev[k]["p"][a].eq(self.p_data[a][k])
                with m.Else():
                    m.d.comb += prev.eq(prev_mem)
            first_here = Array([flags[p * E + e].first for p in range(P)])[p2]
            m.d.comb += eng.c_prev.eq(Mux(first_here, 0, cmems[e][0].data.as_value()))
            pd = Signal(data.ArrayLayout(data.ArrayLayout(signed(layer.acc_bits), 4), L),
                        name=f"p_s3_{e}")
            pd4 = Signal.like(pd, name=f"p_s4_{e}")
            for k in range(L):
                m.d.comb += eng.u_prev[k].eq(prev[k]["u"])
                for a in range(4):
                    base = b_rd.data[a][k]
                    if self.direct_input:
                        base = base + prev[k]["p"][a]
                        m.d.sync += pd[k][a].eq(prev[k]["p"][a])
                    m.d.comb += eng.base[a][k].eq(base)
            m.d.sync += pd4.eq(pd)
            p_delay.append(pd4)

        # ---- stages s3, s4: writes ----
        p3, g3, final3, p4, g4, final4 = (Signal(pbits), Signal(gbits), Signal(),
                                          Signal(pbits), Signal(gbits), Signal())
        m.d.sync += [p3.eq(p2), g3.eq(g2), final3.eq(final2), p4.eq(p3), g4.eq(g3), final4.eq(final3)]
        m.d.comb += self.done.eq(final4)
        for e, eng in enumerate(engines):
            slot_ok = Array([flags[p * E + e].valid for p in range(P)])[p4]
            we = eng.out_valid & slot_ok
            c_wr, h_wr = cmems[e][1], hmems[e][1]
            m.d.comb += [
                c_wr.addr.eq(Cat(g4, p4)), c_wr.data.eq(eng.c), c_wr.en.eq(we),
                h_wr.addr.eq(Cat(g4, p4)), h_wr.en.eq(we),
            ]
            for k in range(L):
                m.d.comb += h_wr.data[k]["u"].eq(eng.u[k])
                if self.direct_input:
                    m.d.comb += h_wr.data[k]["p"].eq(p_delay[e][k])
        # h written to the buffer of this parity; units ≥ H stay 0
        for t in range(T):
            e, pp = t % E, t // E
            eng = engines[e]
            with m.If(eng.out_valid & (p4 == pp) & flags[t].valid):
                for g in range(G):
                    with m.If(g4 == g):
                        for k in range(L):
                            j = g * L + k
                            if j < H:
                                for b in range(2):
                                    with m.If(self.parity == b):
                                        m.d.sync += hbuf[b][t][2 * j:2 * j + 2].eq(eng.h[k])
        if self.has_readout:
            r = self.readout
            with m.If(self.readout_clear):
                m.d.sync += r.eq(0)
            with m.Else():
                for g in range(G):
                    with m.If(g4 == g):
                        for k in range(L):
                            j = g * L + k
                            if j >= H:
                                continue
                            total = r[j]
                            for e, eng in enumerate(engines):
                                sel = Array([flags[p * E + e].valid & flags[p * E + e].last
                                             for p in range(P)])[p4]
                                total = total + Mux(eng.out_valid & sel, eng.h[k], 0)
                            m.d.sync += r[j].eq(total)
        return m
