"""The pipelined accumulate-only spiking LSTM core (the paper's diagonal wavefront).

See ``docs/hw-spiking-core.md`` for the architecture, the block diagram and the derivation of
the cycle formula. Interface: ``docs/hw-interface.md`` (one input transfer per element, H
readout words per sequence, then C logits and the class when the FC head is in hardware).

Schedule. A sequence of N elements over T time steps is processed as T+N−1 diagonal steps
per layer; layer 2 (when present) runs a second wavefront skewed by one diagonal step
(it consumes the h of layer 1 that the previous step produced), concurrently with layer 1,
on its own engines, so the sequence takes K = N + T − 1 + (layers − 1) steps. In each step
every layer's wavefront runs B_l beats (one weight word per beat, broadcast to its engines);
the step ends when every wavefront has written its last state (4 cycles after its last beat).
"""

from __future__ import annotations

from typing import Any

from amaranth.hdl import Cat, Module, Mux, Shape, Signal, signed
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import exact_log2

from snnhw.hw.engine import gate_lanes_layout
from snnhw.hw.fc_head import FCHead
from snnhw.hw.knobs import InputMode, SpikingKnobs
from snnhw.hw.registry import CoreSpec, PipelineCut
from snnhw.hw.memories import ram_attrs
from snnhw.hw.schedule import WavefrontSchedule
from snnhw.hw.input_projection import InputProjection
from snnhw.hw.rate_encoder import RateEncoder
from snnhw.hw.stream_io import (
    OutputSerializer,
    input_data_width,
    input_lane_width,
    input_signature,
    output_signature,
    output_word_width,
    readout_range,
)
from snnhw.hw.trace_io import trace_fields, trace_groups, trace_record_layout
from snnhw.hw.wavefront import FLAG_LAYOUT, LayerWavefront
from snnhw.quant import golden
from snnhw.quant.frozen import FrozenSpiking


class SpikingCore(wiring.Component):
    """Accumulate-only spiking LSTM core with E engines per layer in a diagonal wavefront.

    Parameters:
        model: the frozen spiking model (1 or 2 layers).
        lanes: hidden units per engine per beat (L ≥ 1).
        fanin: synapses per lane per beat (F ≥ 1): each engine adds 4·L·F spike-selected weights.
        engines: engines per layer E, 1..T (default T); E < T runs ⌈T/E⌉ passes per step.
        event_driven: skip synapse chunks whose spikes are all zero (latency follows sparsity).
        event_mode: (event-driven) "engine": each engine skips its own zero chunks, with its
            own sequencer and weight read port (E weight reads per cycle); "shared": one
            broadcast weight read, a chunk is skipped only when it is zero in every engine of
            the pass; "queue" / "queue-shared": spike queues (per engine / shared by a pass).
        bank_readers: spike queue readers per weight bank R (divides F; F/R banks): a bank's queue
            gives R spikes per beat through R read ports of its weight memory.
        input_mode: "direct" (direct-encoded model), "rate" (on-chip xorshift32 encoder) or
            "spikes" (host sends u(n,t)); default: the model's encoding.
        head_in_hw: append the FC head (a MAC block) and send C logits and the class.
        proj_fanin: input features per cycle of the direct-input projection MAC (4·proj_lanes·proj_fanin
            multipliers; ignored for spike input).
        proj_lanes: hidden units per cycle of the direct-input projection (divides L with a
            power-of-two quotient S; default L): it computes ⌈H/proj_lanes⌉ groups of proj_lanes
            units and writes each into its block of the L lanes of the group's projection word
            (a write enable per block), so a projection S× narrower takes S× the cycles per
            element with S× fewer multipliers.
        trace: debug configuration: add the ``trace`` output stream (valid/ready) carrying every
            cell's gate values, one record per (layer, n, t, unit group) in the order of the
            schedule's ``trace_order`` (layout: :mod:`snnhw.hw.trace_io`). Each diagonal step is then
            followed by a trace phase of ``schedule.trace_cycles`` cycles (one per (layer, slot,
            group), a record for each valid slot), stalled while ``trace.ready`` is low. Off
            (the default), the core and its Verilog are exactly those without the knob.

    Ports: ``i`` (In stream), ``o`` (Out stream) per ``docs/hw-interface.md``; ``trace`` (Out
    stream, only with ``trace``).

    Cycles: :attr:`schedule` (:class:`~snnhw.hw.schedule.WavefrontSchedule`) gives the exact
    count per sequence; the wavefronts size their sequencers from the same geometry.
    Bad knobs raise ``ValueError`` (``TypeError`` for a model of another kind).
    """

    def __init__(self, model: FrozenSpiking, *, lanes: int, fanin: int, engines: int | None = None,
                 event_driven: bool = False, input_mode: str | None = None, head_in_hw: bool = False,
                 proj_fanin: int = 1, event_mode: str = "engine", gate_stages: int = 1, cell_stages: int = 1,
                 tree_stages: int = 1, proj_stages: int = 1, bank_readers: int = 1, queue_stages: int = 1,
                 trace: bool = False, proj_lanes: int | None = None) -> None:
        knobs = SpikingKnobs(lanes=lanes, fanin=fanin, engines=engines, event_driven=event_driven,
                             event_mode=event_mode, bank_readers=bank_readers, queue_stages=queue_stages,
                             input_mode=input_mode,
                             head_in_hw=head_in_hw, proj_lanes=proj_lanes,
                             proj_fanin=proj_fanin, gate_stages=gate_stages, cell_stages=cell_stages,
                             tree_stages=tree_stages, proj_stages=proj_stages, trace=trace)
        # every check of the knobs against the model (ValueError / TypeError) is the schedule's
        self.schedule = WavefrontSchedule.from_model(model, knobs)
        """The core's cycle model (:class:`~snnhw.hw.schedule.WavefrontSchedule`)."""
        engines = self.schedule.engines
        T = model.T
        self.input_mode = self.schedule.input_mode
        self.model, self.lanes, self.fanin, self.engines = model, lanes, fanin, engines
        self.event_driven, self.head_in_hw, self.proj_fanin = bool(event_driven), bool(head_in_hw), proj_fanin
        self.event_mode = knobs.event_mode
        self.has_trace = bool(trace)
        self.T, self.D, self.H = T, model.input_size, model.hidden_size
        self.num_layers = len(model.layers)
        self.out_words = self.schedule.out_words
        self.out_width = output_word_width(model, self.head_in_hw)
        ports = {
            "i": In(input_signature(model, self.input_mode)),
            "o": Out(output_signature(model, self.head_in_hw)),
        }
        if self.has_trace:
            ports["trace"] = Out(stream.Signature(trace_record_layout(model, lanes)))
        super().__init__(ports)

    def layer_hidden(self, index: int) -> int:
        """Hidden size of layer ``index`` (0-based)."""
        return self.model.layers[index].hidden_size

    def trace_fields(self) -> list[dict[str, Any]]:
        """The trace record's fields, LSB first (:func:`snnhw.hw.trace_io.trace_fields`)."""
        if not self.has_trace:
            raise ValueError("this core has no trace port (trace=False)")
        return trace_fields(self.model, self.lanes)

    def describe(self) -> dict[str, Any]:
        """JSON-able description for the manifest: ports, widths, knobs, cycle formula, multipliers."""
        layers = []
        sched = self.schedule
        for l, geo in enumerate(sched.layers):
            layers.append({"hidden": geo.hidden, "inputs": geo.inputs, "groups": geo.groups,
                           "input_chunks": geo.input_chunks, "recurrent_chunks": geo.recurrent_chunks,
                           "dense_beats_per_step": sched.beats(l)})
        mults = []
        if self.input_mode == InputMode.DIRECT:
            mults.append({"block": "input_projection",
                          "multipliers": 4 * self.schedule.proj_lanes * self.proj_fanin})
        if self.head_in_hw:
            mults.append({"block": "fc_head", "multipliers": 1})
        desc = {
            "core": "spiking",
            "ports": {
                "i": {"data_bits": input_data_width(self.model, self.input_mode), "last_bits": 1,
                      "lane_bits": input_lane_width(self.model, self.input_mode)},
                "o": {"data_bits": self.out_width, "signed": True, "last_bits": 1,
                      "words_per_sequence": self.out_words},
            },
            "knobs": {"lanes": self.lanes, "fanin": self.fanin, "engines": self.engines,
                      "passes": sched.passes, "event_driven": self.event_driven, "event_mode": self.event_mode,
                      "bank_readers": sched.bank_readers,
                      "input_mode": self.input_mode, "head_in_hw": self.head_in_hw,
                      "proj_fanin": self.proj_fanin, "proj_lanes": sched.proj_lanes or None},
            "T": self.T, "layers": layers, "adders": sched.units,
            "weight_reads_per_cycle_per_layer": len(sched.issue_groups()),
            "cycle_formula": sched.formula(),
            "multipliers": mults,
            "spiking_datapath_multipliers": 0,
        }
        if self.has_trace:
            desc["knobs"]["trace"] = True
            desc["ports"]["trace"] = self.describe_trace()
        return desc

    def describe_trace(self) -> dict[str, Any]:
        """The trace port for the manifest: width, fields (LSB first), record order and counts."""
        groups = trace_groups(self.model, self.lanes)
        return {
            "data_bits": Shape.cast(trace_record_layout(self.model, self.lanes)).width,
            "handshake": "valid/ready; the core stalls (before committing the diagonal step) while ready is low",
            "record": "one per (layer, n, t, unit group): the cell (n, t) of that layer, units group*L .. group*L+L-1",
            "fields": self.trace_fields(),
            "unit_fields": {"f": "forget spike", "o": "output spike",
                            "i": "input gate: spike, or clip value when non-spiking",
                            "g": "candidate: ternary spike, or clip value when non-spiking",
                            "c": "cell state c(n,t)", "s_c": "ternary spike of c's LIF", "h": "h = s_o*s_c"},
            "record_order": ("for diagonal step k = 0..N+T-2+(layers-1): for layer l: for t = 0..T-1 with "
                             "0 <= n = k-t-l < N: for group g = 0..ceil(H_l/L)-1; last = 1 on the final record"),
            "groups_per_layer": groups,
            "records_per_sequence": f"N*{sum(self.T * g for g in groups)}",
            "trace_cycles_per_step": self.schedule.trace_cycles,
        }

    # ------------------------------------------------------------------ hardware

    def elaborate(self, platform):
        m = Module()
        model, T, D = self.model, self.T, self.D
        direct = self.input_mode == InputMode.DIRECT
        nl = self.num_layers

        wfs = []
        for index, layer in enumerate(model.layers):
            wf = LayerWavefront(layer, T=T, weight_bits=model.weight_bits, lanes=self.lanes, fanin=self.fanin,
                                engines=self.engines, direct_input=(index == 0 and direct),
                                event_driven=self.event_driven, readout=(index == nl - 1),
                                event_mode=self.event_mode, gate_stages=self.schedule.gate_stages,
                                cell_stages=self.schedule.cell_stages, tree_stages=self.schedule.tree_stages,
                                bank_readers=self.schedule.bank_readers, queue_stages=self.schedule.queue_stages,
                                trace=self.has_trace)
            m.submodules[f"layer_{index}"] = wf
            wfs.append(wf)

        flags = [Signal(data.ArrayLayout(FLAG_LAYOUT, T), name=f"flags_{l}") for l in range(nl)]
        parity = Signal()
        started = Signal()        # an element of the current sequence has been accepted
        accepted_last = Signal()  # the current sequence's last element has been accepted
        last_in = Signal()        # ... and has entered slot 0 (the next steps flush)
        pend_valid = Signal()     # an accepted element waits for its diagonal step (prefetch)
        pend_flag = Signal(FLAG_LAYOUT)
        consume = Signal()        # the waiting element enters slot 0 (a step starts)
        go = Signal()
        done_latch = [Signal(name=f"done_latch_{l}") for l in range(nl)]
        for l, wf in enumerate(wfs):
            m.d.comb += [wf.start.eq(go), wf.parity.eq(parity), wf.flags.eq(flags[l])]
        for l in range(1, nl):
            m.d.comb += wfs[l].u.eq(wfs[l - 1].h_prev)

        take = Signal()
        # the buffer takes an element only while empty: ready = ~accepted_last & ~pend_valid
        # depends on no step's completion (an element does not enter in the cycle its
        # predecessor leaves), which keeps the commit logic (done → consume) off the paths of the
        # input and the projection; it is a register of its own (``ready_q``, loaded with the
        # next values of both), so that the port and take read a flip-flop, not a LUT that the
        # placer may pull towards the port (H = 128 seed 3: pend_valid → ready → take, 11.9 ns)
        accepted_last_next, pend_valid_next = Signal(), Signal()
        ready_q = Signal(init=1)
        m.d.comb += [
            accepted_last_next.eq(accepted_last), pend_valid_next.eq(pend_valid),
            self.i.ready.eq(ready_q),
            take.eq(self.i.valid & ready_q),
        ]
        word = self.i.payload.data
        new_flag = Signal(FLAG_LAYOUT)
        m.d.comb += [new_flag.valid.eq(1), new_flag.first.eq(~started), new_flag.last.eq(self.i.payload.last)]

        lane_bits = 2 * D
        if not direct:
            wline = [Signal(T * lane_bits, name=f"wline_{t}") for t in range(T)]
            for t in range(T):
                m.d.comb += wfs[0].u[t].as_value().eq(wline[t][t * lane_bits:(t + 1) * lane_bits])
            if self.input_mode == InputMode.RATE:
                m.submodules.encoder = enc = RateEncoder(model.lfsr_seeds, T, model.rate_bits)
                m.d.comb += [enc.x.as_value().eq(word), enc.restart.eq(~started), enc.step.eq(take)]
                in_word = enc.spikes.as_value()
            else:
                in_word = word
        else:
            proj_lanes = self.schedule.proj_lanes
            proj = InputProjection(model.layers[0], input_bits=model.input_bits, weight_bits=model.weight_bits,
                                   lanes=proj_lanes, fanin=self.proj_fanin, stages=self.schedule.proj_stages)
            m.submodules.projection = proj
            gbits = len(wfs[0].p_addr)
            whole = proj_lanes == self.lanes
            acc_bits = model.layers[0].acc_bits
            # two banks: the element in slot 0 reads one while the next element is projected; a
            # narrower projection writes lane-major words, a write enable per block of its lanes
            shape = gate_lanes_layout(acc_bits, self.lanes) if whole else \
                data.ArrayLayout(data.ArrayLayout(signed(acc_bits), 4), self.lanes)
            pmem = memory.Memory(shape=shape, depth=2 << gbits, init=[], attrs=ram_attrs(2 << gbits))
            m.submodules.pmem = pmem
            pw, pr = pmem.write_port(granularity=None if whole else proj_lanes), pmem.read_port()
            proj_busy, proj_bank, read_bank, pend_bank = Signal(), Signal(), Signal(), Signal()
            if whole:
                m.d.comb += [
                    proj.x.as_value().eq(word), proj.start.eq(take),
                    pw.addr.eq(Cat(proj.wr_addr[:gbits], proj_bank)), pw.data.eq(proj.wr_data),
                    pw.en.eq(proj.wr_en),
                    pr.addr.eq(Cat(wfs[0].p_addr, read_bank)), wfs[0].p_data.eq(pr.data),
                ]
            else:
                sbits = exact_log2(self.lanes // proj_lanes)
                group = Signal(gbits, name="proj_group")
                m.d.comb += [proj.x.as_value().eq(word), proj.start.eq(take), group.eq(proj.wr_addr >> sbits),
                             pw.addr.eq(Cat(group, proj_bank)), pw.en.eq(Mux(proj.wr_en, 1 << proj.wr_addr[:sbits], 0)),
                             pr.addr.eq(Cat(wfs[0].p_addr, read_bank))]
                for k in range(self.lanes):
                    for a in range(4):
                        m.d.comb += [pw.data[k][a].eq(proj.wr_data[a][k % proj_lanes]),
                                     wfs[0].p_data[a][k].eq(pr.data[k][a])]
            with m.If(proj.done):
                m.d.sync += proj_busy.eq(0)
            with m.If(take):
                m.d.sync += [proj_busy.eq(1), proj_bank.eq(~proj_bank), pend_bank.eq(~proj_bank)]
            with m.If(consume):
                m.d.sync += read_bank.eq(pend_bank)

        # output path: readout → (FC head) → serializer
        ser = OutputSerializer(self.out_words, self.out_width)
        m.submodules.serializer = ser
        wiring.connect(m, wiring.flipped(self.o), ser.o)
        readout = wfs[-1].readout
        H = self.H
        if self.head_in_hw:
            lo, hi = readout_range(model)
            head = FCHead(model.head, lo, hi)
            m.submodules.head = head
            sink = head.i
            m.d.comb += sink.payload.eq(readout)
            m.d.comb += [ser.i.valid.eq(head.o.valid), head.o.ready.eq(ser.i.ready)]
            for j in range(H):
                m.d.comb += ser.i.payload[j].eq(head.o.payload.readout[j])
            for c in range(model.num_classes):
                m.d.comb += ser.i.payload[H + c].eq(head.o.payload.logits[c])
            m.d.comb += ser.i.payload[H + model.num_classes].eq(head.o.payload.cls)
        else:
            sink = ser.i
            for j in range(H):
                m.d.comb += sink.payload[j].eq(readout[j])

        all_done = Signal()
        m.d.comb += all_done.eq(Cat(*[done_latch[l] | wfs[l].done for l in range(nl)]).all())
        final = flags[-1][T - 1].valid & flags[-1][T - 1].last

        pend_ready = pend_valid & ~proj_busy if direct else pend_valid
        if not direct:
            pend_word = Signal(T * lane_bits)
        with m.If(consume):
            m.d.comb += pend_valid_next.eq(0)
            m.d.sync += last_in.eq(pend_flag.last)
        with m.If(take):
            m.d.comb += [pend_valid_next.eq(1), accepted_last_next.eq(self.i.payload.last)]
            m.d.sync += [pend_flag.eq(new_flag), started.eq(1)]
            if not direct:
                m.d.sync += pend_word.eq(in_word)
        m.d.sync += [pend_valid.eq(pend_valid_next), accepted_last.eq(accepted_last_next),
                     ready_q.eq(~accepted_last_next & ~pend_valid_next)]

        def enter_slot0():
            m.d.comb += [consume.eq(1), go.eq(1)]
            m.d.sync += flags[0][0].eq(pend_flag)
            if not direct:
                m.d.sync += wline[0].eq(pend_word)

        def commit(from_trace: bool):
            # commit the diagonal step: elements move one slot, buffers swap
            m.d.sync += parity.eq(~parity)
            m.d.sync += [d.eq(0) for d in done_latch]
            for t in range(T - 1, 0, -1):
                m.d.sync += flags[0][t].eq(flags[0][t - 1])
            m.d.sync += flags[0][0].eq(0)
            for l in range(1, nl):
                m.d.sync += flags[l].eq(flags[l - 1])
            if not direct:
                for t in range(T - 1, 0, -1):
                    m.d.sync += wline[t].eq(wline[t - 1])
            with m.If(final):
                m.next = "OUTPUT"
            with m.Elif(last_in):
                m.d.comb += go.eq(1)  # flush step: slot 0 stays empty
                if from_trace:
                    m.next = "RUN"
            with m.Elif(pend_ready):
                enter_slot0()
                if from_trace:
                    m.next = "RUN"
            with m.Else():
                m.next = "WAIT"

        if self.has_trace:
            # trace phase: position q = (layer, slot, group) of trace_positions, one per cycle
            Q = self.schedule.trace_cycles
            pos = Signal(range(Q), name="trace_pos")
            pos_valid = Signal(name="trace_pos_valid")
            record = Signal(trace_record_layout(model, self.lanes), name="trace_record")
            m.d.comb += self.trace.payload.eq(record)
            with m.Switch(pos):
                for q, (l, t, g) in enumerate(self.schedule.trace_positions):
                    with m.Case(q):
                        m.d.comb += [pos_valid.eq(flags[l][t].valid), record.layer.eq(l), record.t.eq(t),
                                     record.group.eq(g)]
                        if q == Q - 1:
                            m.d.comb += record.last.eq(final)
                        for k in range(self.lanes):
                            j = g * self.lanes + k
                            if j < self.layer_hidden(l):
                                m.d.comb += [record.units[k][name].eq(wfs[l].trace[t][j][name])
                                             for name, _ in wfs[l].trace[t][j].shape()]

        with m.FSM():
            with m.State("WAIT"):
                with m.If(pend_ready):
                    enter_slot0()
                    m.next = "RUN"
            with m.State("RUN"):
                for l in range(nl):
                    with m.If(wfs[l].done):
                        m.d.sync += done_latch[l].eq(1)
                with m.If(all_done):
                    if self.has_trace:
                        m.next = "TRACE"  # emit the step's records, then commit it
                    else:
                        commit(from_trace=False)
            if self.has_trace:
                with m.State("TRACE"):
                    m.d.comb += self.trace.valid.eq(pos_valid)
                    with m.If(~pos_valid | self.trace.ready):
                        with m.If(pos == Q - 1):
                            m.d.sync += pos.eq(0)
                            commit(from_trace=True)
                        with m.Else():
                            m.d.sync += pos.eq(pos + 1)
            with m.State("OUTPUT"):
                m.d.comb += sink.valid.eq(1)
                with m.If(sink.ready):
                    m.d.comb += wfs[-1].readout_clear.eq(1)
                    m.d.comb += accepted_last_next.eq(0)
                    m.d.sync += [started.eq(0), last_in.eq(0)]
                    m.next = "WAIT"
        return m


def _component(model: FrozenSpiking, knobs: SpikingKnobs) -> SpikingCore:
    return SpikingCore(model, lanes=knobs.lanes, fanin=knobs.fanin, engines=knobs.engines,
                       event_driven=knobs.event_driven, input_mode=knobs.input_mode, head_in_hw=knobs.head_in_hw,
                       proj_fanin=knobs.proj_fanin, proj_lanes=knobs.proj_lanes, event_mode=knobs.event_mode,
                       bank_readers=knobs.bank_readers, queue_stages=knobs.queue_stages,
                       gate_stages=knobs.gate_stages,
                       cell_stages=knobs.cell_stages, tree_stages=knobs.tree_stages, proj_stages=knobs.proj_stages,
                       trace=knobs.trace)


SPEC = CoreSpec(
    name="spiking", label="spiking wavefront core", top="snn_lstm_core", verilog_file="spiking_core.v",
    model_type=FrozenSpiking, model_option="--golden", knobs_type=SpikingKnobs, component=_component,
    schedule=WavefrontSchedule.from_model, golden=golden.run_spiking,
    pipeline_cuts=(
        # the spike selection (flags, chunk and queue multiplexers) and the adder trees
        PipelineCut("tree_stages", r"\.tree_\d+_\d+\.|\bflags\b|\.(spikes|weights|beat)_t\b"),
        PipelineCut("gate_stages", r"\.neurons\."),  # the gate neurons: leak, saturating sum, threshold
        PipelineCut("cell_stages", r"\.cell\."),  # c's saturation, its ternary LIF, h
        PipelineCut("proj_stages", r"\.projection\."),  # the direct-input projection MAC
        # the spike-queue sequencers: the queue heads and their lowest-set-bit selections
        PipelineCut("queue_stages", r"\.queue_sequencer_\d+\."),
    ),
)
"""The spiking wavefront core's registration (:mod:`snnhw.hw.registry`)."""
