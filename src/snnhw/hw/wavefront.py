"""One layer's diagonal wavefront: E identical engines, one per time-step slot.

The spiking LSTM cell (n, t) depends on (n−1, t) (h, c) and (n, t−1) (membranes), so the
cells of one anti-diagonal ``k = n + t`` are independent. A *diagonal step* of this block
processes, for every slot t (engine ``t mod E`` in pass ``t div E``), the cell of the element
that currently sits in slot t. Beats run pass by pass (highest pass first), unit group by unit
group (``lanes`` units), synapse chunk by chunk (``fanin`` synapses): one weight word per beat
(4 gates × lanes × fanin) is read from the layer's weight memory and broadcast to all engines
(in lockstep), each engine selecting by its own spikes. In the per-engine event-driven mode
every engine has its own sequencer and weight read port and skips its own zero chunks.

State (per slot t, i.e. per engine and pass):
* ``h``: registers, double-buffered by the diagonal parity: the step reads h(n−1, t) from the
  buffer ``1 − parity`` and writes h(n, t) to ``parity``; ``h_prev`` (port) is the read buffer,
  i.e. the previous diagonal's h, which the next layer consumes.
* ``c``: a memory per engine (address pass·group), read then written in place.
* handover: a memory per engine holding, per unit, the membranes U(n, t) (and, for a
  direct-input layer, the element's projection P(n)); engine e reads the one of the slot
  t−1 (engine e−1, or engine E−1 of the pass below), so the element's membranes move one
  slot per diagonal. Reads precede writes of the same address in lockstep, and passes run from
  the highest down, so every read sees the previous diagonal's value; engines that are not in
  lockstep (per-engine event-driven mode) use two banks, written ``parity`` and read
  ``1 − parity``.
Masks: slot 0 starts from zero membranes (and the fresh projection); an element's first cell
reads c = 0 and h = 0; an invalid slot writes nothing.
"""

from __future__ import annotations

from math import ceil
from typing import Any

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from snnhw.hw.adder_tree import SPIKE_SHAPE
from snnhw.hw.engine import Engine, gate_lanes_layout, weights_layout
from snnhw.hw.leak_unit import delayed
from snnhw.hw.memories import ram_attrs, rom_attrs
from snnhw.hw.knobs import EventMode, check_bank_readers, check_queue_stages, check_stages
from snnhw.hw.neuron_lanes import membranes_layout, validate_layer
from snnhw.hw.schedule import WavefrontLayer, pipeline_drain
from snnhw.hw.sequencer import ChunkSequencer, QueueSequencer, beat_layout, queue_beat_layout
from snnhw.hw.trace_io import layer_trace_unit_layout
from snnhw.quant.arith import signed_bits
from snnhw.quant.frozen import SpikingLayer

FLAG_LAYOUT = data.StructLayout({"valid": 1, "first": 1, "last": 1})
"""What a slot holds this diagonal: a valid element; its sequence's first; its sequence's last."""


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
        event_driven: skip synapse chunks whose (masked) spikes are zero.
        readout: accumulate ``r[j] += h(n, t)[j]`` for the slots holding a sequence's last
            element (the last layer); ``readout_clear`` zeroes it.
        event_mode: (event-driven only) "engine": every engine has its own sequencer and weight
            read port and skips its own zero chunks (the engines leave lockstep, so the
            handover memory is double-buffered by ``parity``); "shared": one sequencer, one
            broadcast weight read, a chunk is skipped when it is zero in every engine of the pass;
            "queue" / "queue-shared": spike queues (:class:`~snnhw.hw.sequencer.QueueSequencer`) per
            engine or shared by the engines of a pass, one weight memory per bank.
        bank_readers: R, readers per bank of a spike queue (divides F; B = F/R banks, bank b holds
            the synapses m·B + b; lane f is reader f div B of bank f mod B); 1 otherwise.
        queue_stages: S, the spike-queue sequencer's pipeline stages (1..3; each delays every beat
            by a cycle, :class:`~snnhw.hw.sequencer.QueueSequencer`); 1 unless queued.
        trace: add the debug port ``trace[t][j]`` (:func:`~snnhw.hw.trace_io.layer_trace_unit_layout`):
            registers holding the values f, o, i, g, c, s_c, h of unit j of the cell that slot t
            computed in the current step (written with h; stable from ``done`` to the next ``start``).

    Beats per diagonal step (:meth:`beats`): ``B = P·G·C`` dense, with G = ⌈H/L⌉ unit groups and
    C = C_in + C_rec chunks (C_in = ⌈D_in/F⌉ for spike input, 0 for direct; C_rec = ⌈H/F⌉);
    event-driven, ``B = max_q Σ_p G·max(1, nz_{q,p})`` over the issue groups q (one per engine,
    or one for all). ``start`` in cycle S → beats in S+1.. → ``done`` in cycle S+B+4 (S+B+5
    with one more tree, gate or cell stage: :attr:`latency` after the last beat of the slowest group;
    a queue stage beyond the first delays the beats by a cycle), the cycle of the last state write. ``parity`` and ``flags`` must stay constant from ``start`` to ``done``.
    """

    def __init__(self, layer: SpikingLayer, *, T: int, weight_bits: int, lanes: int, fanin: int,
                 engines: int, direct_input: bool, event_driven: bool, readout: bool,
                 event_mode: str = "engine", gate_stages: int = 1, cell_stages: int = 1,
                 tree_stages: int = 1, bank_readers: int = 1, queue_stages: int = 1, trace: bool = False) -> None:
        validate_layer(layer)
        for name, v in (("T", T), ("lanes", lanes), ("fanin", fanin), ("engines", engines)):
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"LayerWavefront {name} must be an integer ≥ 1, not {v!r}")
        if engines > T:
            raise ValueError(f"LayerWavefront engines ({engines}) must not exceed T ({T})")
        if event_mode not in {m.value for m in EventMode}:
            modes = tuple(m.value for m in EventMode)
            raise ValueError(f"LayerWavefront event_mode must be one of {modes}, not {event_mode!r}")
        check_stages("LayerWavefront ", gate_stages, cell_stages, tree_stages)
        self.gate_stages, self.cell_stages, self.tree_stages = gate_stages, cell_stages, tree_stages
        self.layer, self.T, self.weight_bits = layer, T, weight_bits
        self.lanes, self.fanin, self.engines = lanes, fanin, engines
        self.direct_input, self.event_driven, self.has_readout = direct_input, event_driven, readout
        self.event_mode = event_mode
        self.has_trace = bool(trace)
        self.per_engine = event_driven and EventMode(event_mode).per_engine
        self.queue = event_driven and EventMode(event_mode).queued
        check_bank_readers("LayerWavefront ", bank_readers, fanin, self.queue)
        check_queue_stages("LayerWavefront ", queue_stages, self.queue)
        self.queue_stages = queue_stages
        self.readers = bank_readers
        self.banks = fanin // bank_readers
        """B = F/R weight banks of the spike queue; bank b holds the synapses m·B + b."""
        self.H, self.D = layer.hidden_size, layer.input_size
        self.geometry = WavefrontLayer.of(layer, lanes, fanin, direct_input)
        """G, C_in, C_rec of this layer (:class:`~snnhw.hw.schedule.WavefrontLayer`)."""
        self.G, self.C_in, self.C_rec = self.geometry.groups, self.geometry.input_chunks, self.geometry.recurrent_chunks
        self.C = self.geometry.chunks
        self.entries = self.C * self.readers
        """M = C·R synapses per bank (spike queue)."""
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
        if self.has_trace:
            ports["trace"] = Out(data.ArrayLayout(data.ArrayLayout(layer_trace_unit_layout(layer), self.H), T))
        super().__init__(ports)

    @property
    def latency(self) -> int:
        """Cycles from the last beat to ``done`` (the last state write): 4 (s0 → s4), plus the
        adder-tree, gate-neuron and cell-update stages beyond the first of each
        (:func:`~snnhw.hw.schedule.pipeline_drain`)."""
        return pipeline_drain(self.tree_stages, self.gate_stages, self.cell_stages)

    @property
    def issue_groups(self) -> list[list[int]]:
        """Engines that share a sequencer and a weight read: all of them, or each alone
        (event-driven, ``event_mode`` "engine" or "queue"; "shared" and "queue-shared" share one)."""
        return [[e] for e in range(self.engines)] if self.per_engine else [list(range(self.engines))]

    def beats(self, nz: list[list[int]] | None = None) -> int:
        """Beats of one diagonal step (the slowest issue group's).

        Dense: ``P·G·C``. Event-driven: ``max_q Σ_p G·max(1, nz[q][p])`` with ``nz[q][p]`` the
        chunks of pass p holding a nonzero (masked) spike in some engine of issue group q.
        """
        return self.geometry.beats(self.P, nz)

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
        B, M = self.banks, self.entries
        H = self.H
        gbits, cbits = ceil_log2(max(G, 2)), ceil_log2(max(C, 2))
        pbits = ceil_log2(max(P, 2))
        n_slots = P * E

        # ---- memories: weights and bias (broadcast), c and handover per engine ----
        words = self._weight_words()
        if self.queue:  # bank b: its synapses m·B + b, one read port per reader
            wmem = self._bank_memories(words)
        else:
            wmem = memory.Memory(shape=weights_layout(self.weight_bits, L, F), depth=G << cbits, init=words,
                                 attrs=rom_attrs(G << cbits))
        bias_words = [[[int(layer.bias[a * H + g * L + k]) if g * L + k < H else 0
                        for k in range(L)] for a in range(4)] for g in range(G)]
        bmem = memory.Memory(shape=gate_lanes_layout(layer.acc_bits, L), depth=G, init=bias_words,
                             attrs=rom_attrs(G))
        if self.queue:
            for b, mem in enumerate(wmem):
                m.submodules[f"wmem_{b}"] = mem
        else:
            m.submodules.wmem = wmem
        m.submodules.bmem = bmem
        hand_fields = {"u": membranes_layout(layer)}
        if self.direct_input:
            hand_fields["p"] = data.ArrayLayout(signed(layer.acc_bits), 4)
        hand_layout = data.ArrayLayout(data.StructLayout(hand_fields), L)
        c_layout = data.ArrayLayout(signed(layer.cell_bits), L)
        state_depth = P << gbits
        engines, cmems, hmems = [], [], []
        for e in range(E):
            eng = Engine(layer, weight_bits=self.weight_bits, lanes=L, fanin=F, tree_stages=self.tree_stages,
                         gate_stages=self.gate_stages, cell_stages=self.cell_stages, trace=self.has_trace)
            hand_depth = (2 << (gbits + pbits)) if self.per_engine else state_depth
            cm = memory.Memory(shape=c_layout, depth=state_depth, init=[], attrs=ram_attrs(state_depth))
            hm = memory.Memory(shape=hand_layout, depth=hand_depth, init=[], attrs=ram_attrs(hand_depth))
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

        def synapse(v, s):  # synapse s = c·F + f of a chunk-padded vector: its 2-bit spike
            return v[2 * s:2 * s + 2]

        # ---- issue groups: engines that share one sequencer and one weight read ----
        groups = self.issue_groups
        group_of = {e: gi for gi, grp in enumerate(groups) for e in grp}
        stages = []
        for gi, grp in enumerate(groups):
            masks = None
            if self.queue:  # per pass, per bank b: bit m = synapse m·B + b holds a nonzero spike
                masks = []
                for p in range(P):
                    banks = []
                    for b in range(B):
                        msk = Signal(M, name=f"nz_bank_{gi}_{p}_{b}")
                        m.d.comb += msk.eq(Cat(*[Cat(*[synapse(eff[p * E + e], i * B + b) for e in grp]).any()
                                                 for i in range(M)]))
                        banks.append(msk)
                    masks.append(banks)
            elif self.event_driven:
                masks = []
                for p in range(P):
                    nzs = [Cat(*[chunk(eff[p * E + e], c) for e in grp]).any() for c in range(C)]
                    msk = Signal(C, name=f"nz_mask_{gi}_{p}")
                    m.d.comb += msk.eq(Cat(*nzs))
                    masks.append(msk)
            stages.append(self._issue(m, masks, wmem, bmem, f"_{gi}"))

        # ---- stage s1: engine inputs, state reads ----
        if self.direct_input:
            m.d.comb += self.p_addr.eq(stages[group_of[0]]["b1"].g)
        rd_bank = [~self.parity] if self.per_engine else []  # ping-pong handover (engines not in lockstep)
        wr_bank = [self.parity] if self.per_engine else []
        for e, eng in enumerate(engines):
            st = stages[group_of[e]]
            # the pass's masked synapse vector, registered from the s0 beat's pass (eff is stable
            # from start to done): the chunk gather below reads a register beside its engine
            vec = Signal(2 * F * C, name=f"vec_s1_{e}")
            m.d.sync += vec.eq(Array([eff[p * E + e] for p in range(P)])[st["b0"].p])
            # a beat of an invalid slot reaches the engine invalid: its out_valid is then the
            # state write enable itself, a register
            slot_valid = Array([flags[p * E + e].valid for p in range(P)])[st["b1"].p]
            m.d.comb += [
                eng.beat.valid.eq(st["b1"].valid & slot_valid), eng.beat.first.eq(st["b1"].first),
                eng.beat.last.eq(st["b1"].last),
            ]
            if self.queue:  # lane f (reader f // B of bank f mod B): the spike of the entry it issues, and its weights
                for f in range(F):
                    lane = Array([synapse(vec, i * B + f % B) for i in range(M)])[st["b1"].cs[f]]
                    m.d.comb += eng.spikes[f].eq(Mux(st["b1"].live[f], lane, 0))
                    for a in range(4):
                        for k in range(L):
                            m.d.comb += eng.weights[a][k][f].eq(st["w_data"][f][a][k])
            else:
                m.d.comb += [eng.weights.eq(st["w_data"]),
                             eng.spikes.as_value().eq(Array([chunk(vec, c) for c in range(C)])[st["b1"].c])]
            m.d.comb += cmems[e][0].addr.eq(Cat(st["b1"].g, st["b1"].p))
            reader = stages[group_of[(e + 1) % E]]  # hmem of engine e is read by slot t+1's engine
            if e < E - 1:
                m.d.comb += hmems[e][0].addr.eq(Cat(reader["b1"].g, reader["b1"].p, *rd_bank))
            else:
                m.d.comb += hmems[e][0].addr.eq(Cat(reader["b1"].g, (reader["b1"].p - 1)[:pbits], *rd_bank))

        # ---- stage s2: previous-slot state, masks, base ----
        zero_hand = Const(0, hand_layout.size)
        p_delay = []
        for e, eng in enumerate(engines):
            st = stages[group_of[e]]
            if e >= 1:
                prev = hmems[e - 1][0].data
            else:
                prev_mem = hmems[E - 1][0].data
                prev = Signal(hand_layout, name="prev_0")
                with m.If(st["b2"].p == 0):
                    m.d.comb += prev.eq(zero_hand)
                    if self.direct_input:
                        for k in range(L):
                            for a in range(4):
                                m.d.comb += prev[k]["p"][a].eq(self.p_data[a][k])
                with m.Else():
                    m.d.comb += prev.eq(prev_mem)
            first_here = Array([flags[p * E + e].first for p in range(P)])[st["b2"].p]
            m.d.comb += eng.c_prev.eq(Mux(first_here, 0, cmems[e][0].data.as_value()))
            pd = Signal(data.ArrayLayout(data.ArrayLayout(signed(layer.acc_bits), 4), L),
                        name=f"p_s3_{e}")
            pd4 = Signal.like(pd, name=f"p_s4_{e}")
            for k in range(L):
                m.d.comb += eng.u_prev[k].eq(prev[k]["u"])
                for a in range(4):
                    base = st["b_data"][a][k]
                    if self.direct_input:
                        base = base + prev[k]["p"][a]
                        m.d.sync += pd[k][a].eq(prev[k]["p"][a])
                    m.d.comb += eng.base[a][k].eq(base)
            m.d.sync += pd4.eq(pd)
            for stage in range(5, self.latency + 1):  # the projection follows the extra gate and cell stages
                pd_next = Signal.like(pd, name=f"p_s{stage}_{e}")
                m.d.sync += pd_next.eq(pd4)
                pd4 = pd_next
            p_delay.append(pd4)

        # ---- stage s4: writes; done when every group has written its last state ----
        finals = [st["bw"].final for st in stages]
        if len(stages) == 1:
            m.d.comb += self.done.eq(finals[0])
        else:
            seen = [Signal(name=f"final_seen_{gi}") for gi in range(len(stages))]
            m.d.comb += self.done.eq(Cat(*[sn | f for sn, f in zip(seen, finals)]).all() & Cat(*finals).any())
            for sn, f in zip(seen, finals):
                with m.If(self.done):
                    m.d.sync += sn.eq(0)
                with m.Elif(f):
                    m.d.sync += sn.eq(1)
        for e, eng in enumerate(engines):
            st = stages[group_of[e]]
            we = eng.out_valid  # the last beat of a valid slot's group (invalid slots' beats reach it invalid)
            c_wr, h_wr = cmems[e][1], hmems[e][1]
            m.d.comb += [
                c_wr.addr.eq(Cat(st["bw"].g, st["bw"].p)), c_wr.data.eq(eng.c), c_wr.en.eq(we),
                h_wr.addr.eq(Cat(st["bw"].g, st["bw"].p, *wr_bank)), h_wr.en.eq(we),
            ]
            for k in range(L):
                m.d.comb += h_wr.data[k]["u"].eq(eng.u[k])
                if self.direct_input:
                    m.d.comb += h_wr.data[k]["p"].eq(p_delay[e][k])
        # h written to the buffer of this parity; units ≥ H stay 0
        for t in range(T):
            e, pp = t % E, t // E
            eng, st = engines[e], stages[group_of[e]]
            with m.If(eng.out_valid & (st["bw"].p == pp)):
                for g in range(G):
                    with m.If(st["bw"].g == g):
                        for k in range(L):
                            j = g * L + k
                            if j < H:
                                for b in range(2):
                                    with m.If(self.parity == b):
                                        m.d.sync += hbuf[b][t][2 * j:2 * j + 2].eq(eng.h[k])
                                if self.has_trace:
                                    rec = self.trace[t][j]
                                    m.d.sync += [rec["f"].eq(eng.gates[k]["f"]), rec["o"].eq(eng.gates[k]["o"]),
                                                 rec["i"].eq(eng.gates[k]["i"]), rec["g"].eq(eng.gates[k]["g"]),
                                                 rec["c"].eq(eng.c[k]), rec["s_c"].eq(eng.s_c[k]),
                                                 rec["h"].eq(eng.h[k])]
        if self.has_readout:
            # hits[e][g]: the write stage's beat of engine e is of unit group g and of a slot
            # holding a sequence's last element; registered from the stage before it (the flags
            # are constant from start to done), so that the readout's enables are the engine's
            # out_valid AND one register each, not a slot multiplexer behind the beat register
            r = self.readout
            hits = []
            for e, eng in enumerate(engines):
                st = stages[group_of[e]]
                before = st[f"b{self.latency - 1}"]
                last = Array([flags[p * E + e].last for p in range(P)])[before.p]
                hits.append([delayed(m, last & (before.g == g), f"readout_hit_{e}_{g}") for g in range(G)])
            with m.If(self.readout_clear):
                m.d.sync += r.eq(0)
            with m.Else():
                for j in range(H):
                    g, k = divmod(j, L)
                    total = r[j]
                    for e, eng in enumerate(engines):
                        total = total + Mux(eng.out_valid & hits[e][g], eng.h[k], 0)
                    m.d.sync += r[j].eq(total)
        return m

    def _bank_memories(self, words: list) -> list[memory.Memory]:
        """The queue mode's weight memories, one per bank b (of B = F/R): the column of 4·L weights
        of its entry m (synapse s = m·B + b, i.e. synapse s mod F of chunk s div F) for every unit
        group g, at address ``g·2^mbits + m`` (``words``: the broadcast words, by chunk).

        Each of the bank's R readers has its own read port: with R = 2 the two ports of one
        block RAM (a RAMB36E1 read through both ports is 36 bits wide per port instead of 72,
        and 1024 instead of 512 deep, so a bank twice as deep costs no more block RAMs while its
        depth fits: docs/explore.md); Yosys duplicates a memory read through more ports.
        """
        B, M, F = self.banks, self.entries, self.fanin
        cbits, mbits = ceil_log2(max(self.C, 2)), ceil_log2(max(M, 2))
        shape = data.ArrayLayout(data.ArrayLayout(signed(self.weight_bits), self.lanes), 4)
        mems = []
        for b in range(B):
            init = [[[0] * self.lanes for _ in range(4)] for _ in range(self.G << mbits)]
            for g in range(self.G):
                for i in range(M):
                    c, f = divmod(i * B + b, F)
                    word = words[(g << cbits) | c]
                    init[(g << mbits) | i] = [[lanes[f] for lanes in gate] for gate in word]
            mems.append(memory.Memory(shape=shape, depth=len(init), init=init, attrs=rom_attrs(len(init))))
        return mems

    def _issue(self, m: Module, masks: list | None, wmem: Any, bmem: memory.Memory, tag: str) -> dict:
        """One issue group's sequencer (stage s0: :class:`~snnhw.hw.sequencer.ChunkSequencer`, or
        :class:`~snnhw.hw.sequencer.QueueSequencer` in queue mode) with its weight and bias read
        ports and the beat registered through stages s1..s4.

        ``masks``: per pass the chunk mask to issue (event-driven; queue mode: per pass, per lane
        bank), or None (every chunk). ``wmem``: the weight memory (queue mode: the
        :meth:`_bank_memories`).
        Returns the stages' beats ``{"b0": …, "b1": …, "b2": …, "b3": …, "b4": …}`` (``b0``: the
        sequencer's, combinational; and ``"b5"``, ``"b6"`` with
        more gate or cell stages; ``"bw"`` is the write stage, the last of them) (:func:`beat_layout` /
        :func:`queue_beat_layout`), the weights ``w_data`` (valid in s1; queue mode a list per
        bank) and the bias ``b_data`` (valid in s2).
        """
        P, G, C, F = self.P, self.G, self.C, self.fanin
        if self.queue:
            seq = QueueSequencer(passes=P, groups=G, entries=self.entries, banks=self.banks, readers=self.readers,
                                 stages=self.queue_stages)
        else:
            seq = ChunkSequencer(passes=P, groups=G, chunks=C, skip=masks is not None)
        m.submodules[f"{'queue_' if self.queue else ''}sequencer{tag}"] = seq  # the names the timing closure reads
        m.d.comb += seq.start.eq(self.start)
        if self.queue:
            m.d.comb += [seq.masks[p][b].eq(masks[p][b]) for p in range(P) for b in range(self.banks)]
            w_data = []
            for f in range(F):  # lane f: a read port of bank f mod B
                w_rd = wmem[f % self.banks].read_port()
                m.d.comb += w_rd.addr.eq(Cat(seq.beat.cs[f], seq.beat.g))
                w_data.append(w_rd.data)
            layout = queue_beat_layout(P, G, self.entries, F)
        else:
            if masks is not None:
                m.d.comb += [seq.masks[p].eq(masks[p]) for p in range(P)]
            w_rd = wmem.read_port()
            m.d.comb += w_rd.addr.eq(Cat(seq.beat.c, seq.beat.g))
            w_data = w_rd.data
            layout = beat_layout(P, G, C)
        st: dict = {"w_data": w_data, "b0": seq.beat}
        prev = seq.beat
        for stage in range(1, self.latency + 1):
            reg = Signal(layout, name=f"beat{stage}{tag}")
            m.d.sync += reg.eq(prev)
            st[f"b{stage}"] = prev = reg
        st["bw"] = prev  # the write stage: s4, or later with more gate or cell stages
        b_rd = bmem.read_port()
        m.d.comb += b_rd.addr.eq(st["b1"].g)
        st["b_data"] = b_rd.data
        return st
