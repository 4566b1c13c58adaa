"""Pure schedule objects: the exact cycle model of every core kind, written once.

A schedule is plain Python (no Amaranth object is created): it is built from a frozen model
and the core's knobs (:mod:`snnhw.hw.knobs`) and answers, for a sequence of N elements,

* :meth:`cycles` — the exact cycles the RTL takes (the cocotb regression checks it cycle for
  cycle); an event-driven schedule also needs the sequence's spike trace;
* :meth:`sequence_cycles` — the same from the golden model's spikes (any schedule);
* :attr:`units` / :attr:`unit_name` — the parallel arithmetic units (spike-selected adders or
  multiply-accumulators) and :meth:`useful_work` — the accumulations the sequence really needs,
  hence :meth:`ideal_cycles` (useful work ÷ units) and :meth:`utilisation`
  (useful work ÷ (units × cycles)), the bound of ``docs/hw-spiking-core.md`` ("Ideal bound");
* :meth:`formula` (text for people) and :meth:`params` (the machine-readable parameters that
  the formula is evaluated with, written into every manifest as ``schedule``).

The generators size their sequencers from the same objects (:class:`WavefrontLayer` for the
wavefront's beats, :func:`projection_latency` for the input projection, :class:`BaselineSchedule`
for the MAC core's chunks), so each formula exists once.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from math import ceil
from typing import Any, Sequence

import numpy as np

from snnhw.hw.knobs import EventMode, InputMode, check_bank_readers, check_queue_stages, check_stages
from snnhw.quant.frozen import FrozenBaseline, FrozenSpiking, SpikingLayer

PIPELINE_DRAIN = 4
"""Cycles from a diagonal step's last beat to its last state write (s0 → s4 of the engine) with a
one-stage adder trees, gate neurons and cell update; each further stage adds one
(:func:`pipeline_drain`)."""


def pipeline_drain(tree_stages: int, gate_stages: int, cell_stages: int, queue_stages: int = 1) -> int:
    """Cycles of a diagonal step beyond its beats: :data:`PIPELINE_DRAIN` plus the adder-tree,
    gate-neuron and cell-update stages beyond the first of each (from the last beat to the last
    state write), plus the spike-queue sequencer's stages beyond the first (each delays every beat
    of the step by a cycle: :class:`~snnhw.hw.sequencer.QueueSequencer`) (the one rule the
    schedule and the wavefront both use)."""
    return PIPELINE_DRAIN + tree_stages - 1 + gate_stages - 1 + cell_stages - 1 + queue_stages - 1

BASELINE_LAYER_OVERHEAD = 3
"""Cycles of the MAC core per element and layer beyond its MAC steps with one MAC-array and one
activation stage (the last sum, gates, cell); :attr:`BaselineSchedule.layer_overhead` adds the
further stages."""


def check_proj_lanes(proj_lanes: int, lanes: int) -> None:
    """The direct-input projection computes ``proj_lanes`` of the L lanes of a unit group per
    cycle and writes each block of them into its lanes of the group's word: ``proj_lanes`` must
    divide L, and L/``proj_lanes`` be a power of two (the block index is the low bits of the
    projection's group counter). ``ValueError`` otherwise."""
    if not isinstance(proj_lanes, int) or proj_lanes < 1 or lanes % proj_lanes \
            or (lanes // proj_lanes) & (lanes // proj_lanes - 1):
        raise ValueError(f"proj_lanes ({proj_lanes}) must divide lanes ({lanes}) with a power-of-two quotient")


def projection_latency(hidden: int, inputs: int, lanes: int, proj_fanin: int, proj_stages: int = 1) -> int:
    """Cycles of the direct-input projection from ``start`` to its last write:
    ``⌈H/lanes⌉·⌈D/proj_fanin⌉ + 1 + proj_stages``, ``lanes`` being the projection's own
    (``proj_lanes``, L by default)."""
    return ceil(hidden / lanes) * ceil(inputs / proj_fanin) + 1 + proj_stages


def head_cycles(model: FrozenSpiking | FrozenBaseline, head_in_hw: bool) -> int:
    """Y: cycles of the FC head in hardware (``head_steps + 3``), 0 without it."""
    from snnhw.hw.fc_head import head_latency

    return head_latency(model.head) if head_in_hw else 0


def output_words(model: FrozenSpiking | FrozenBaseline, head_in_hw: bool) -> int:
    """W: words per sequence on ``o`` (:func:`snnhw.hw.stream_io.output_word_count`)."""
    from snnhw.hw.stream_io import output_word_count

    return output_word_count(model, head_in_hw)


# ------------------------------------------------------------------------------- the wavefront

@dataclass(frozen=True)
class WavefrontLayer:
    """Geometry of one layer's wavefront: G unit groups of L lanes, C = C_in + C_rec chunks of F synapses.

    Attributes:
        hidden: H_l units; inputs: D_l synapse inputs of the layer.
        groups: G = ⌈H_l/L⌉; input_chunks: C_in = ⌈D_l/F⌉ for spike input, 0 for a direct-input
            layer (its input is the projection's MAC); recurrent_chunks: C_rec = ⌈H_l/F⌉.
    """

    hidden: int
    inputs: int
    groups: int
    input_chunks: int
    recurrent_chunks: int

    @classmethod
    def of(cls, layer: SpikingLayer, lanes: int, fanin: int, direct_input: bool) -> "WavefrontLayer":
        """The geometry of ``layer`` at ``lanes`` × ``fanin``."""
        return cls(hidden=layer.hidden_size, inputs=layer.input_size, groups=ceil(layer.hidden_size / lanes),
                   input_chunks=0 if direct_input else ceil(layer.input_size / fanin),
                   recurrent_chunks=ceil(layer.hidden_size / fanin))

    @property
    def chunks(self) -> int:
        """C = C_in + C_rec synapse chunks per unit group."""
        return self.input_chunks + self.recurrent_chunks

    def beats(self, passes: int, nz: Sequence[Sequence[int]] | None = None) -> int:
        """Beats of one diagonal step (the slowest issue group's).

        Dense (``nz`` None): ``P·G·C``. Event-driven: ``max_q Σ_p G·max(1, nz[q][p])`` with
        ``nz[q][p]`` the chunks of pass p holding a nonzero spike in some engine of issue group q.
        """
        if nz is None:
            return passes * self.groups * self.chunks
        return max(sum(self.groups * max(1, int(n)) for n in group) for group in nz)


@dataclass(frozen=True)
class WavefrontSchedule:
    """Cycle model of the spiking wavefront core (:class:`~snnhw.hw.spiking_core.SpikingCore`).

    Attributes:
        T: time steps; engines: E engines per layer (P = ⌈T/E⌉ passes); lanes: L; fanin: F.
        layers: per layer its :class:`WavefrontLayer`.
        input_mode: "direct", "rate" or "spikes"; event_driven / event_mode: the skip schedule;
            bank_readers: R, the spike queue's readers per weight bank (B = F/R banks; 1 unless
            queued).
        proj_latency: X, the direct-input projection's latency (0 for spike input).
        out_words: W; head_latency: Y; trace_groups: G_l per layer when the debug trace port is
            on, else empty (Q = Σ_l T·G_l trace cycles per step).
    """

    T: int
    engines: int
    lanes: int
    fanin: int
    layers: tuple[WavefrontLayer, ...]
    input_mode: str
    event_driven: bool
    event_mode: str
    proj_fanin: int
    proj_latency: int
    head_in_hw: bool
    out_words: int
    head_latency: int
    trace_groups: tuple[int, ...] = ()
    cell_stages: int = 1
    gate_stages: int = 1
    tree_stages: int = 1
    proj_stages: int = 1
    bank_readers: int = 1
    queue_stages: int = 1
    """The spike-queue sequencer's pipeline stages (1 unless queued)."""
    proj_lanes: int = 0
    """Hidden units per cycle of the direct-input projection (0: not direct input)."""

    kind = "spiking"
    unit_name = "adders"

    @property
    def energy_schedule(self) -> str:
        """The operation-count schedule of the energy model this core realises: "event" (one
        accumulate per nonzero spike) when event-driven, else "dense" (``docs/energy.md``)."""
        return "event" if self.event_driven else "dense"

    @classmethod
    def from_model(cls, model: FrozenSpiking, knobs: Any) -> "WavefrontSchedule":
        """The schedule of ``model`` under resolved :class:`~snnhw.hw.knobs.SpikingKnobs`.

        Every check of the knobs against the model happens here (``ValueError``/``TypeError``),
        so a configuration is rejected before any Amaranth object exists.
        """
        from snnhw.hw.stream_io import check_input_mode

        if not isinstance(model, FrozenSpiking):
            raise TypeError(f"the spiking core needs a FrozenSpiking model, not {type(model).__name__}")
        input_mode = check_input_mode(model, knobs.input_mode)
        direct = input_mode == InputMode.DIRECT
        lanes, fanin = knobs.lanes, knobs.fanin
        engines = model.T if knobs.engines is None else knobs.engines
        if engines > model.T:
            raise ValueError(f"engines ({engines}) must not exceed T ({model.T})")
        if len(model.layers) not in (1, 2):
            raise ValueError(f"the spiking core supports 1 or 2 layers, not {len(model.layers)}")
        check_stages("", knobs.gate_stages, knobs.cell_stages, knobs.tree_stages)
        readers = knobs.bank_readers
        queued = bool(knobs.event_driven) and EventMode(knobs.event_mode).queued
        check_bank_readers("", readers, fanin, queued)
        check_queue_stages("", knobs.queue_stages, queued)
        for index, layer in enumerate(model.layers):
            if (index > 0 or not direct) and any(layer.x_shift):
                raise ValueError(f"layer {index + 1} takes spikes but has x_shift {tuple(layer.x_shift)} (must be 0)")
        layers = tuple(WavefrontLayer.of(layer, lanes, fanin, direct_input=(index == 0 and direct))
                       for index, layer in enumerate(model.layers))
        proj_lanes = 0
        if direct:
            proj_lanes = lanes if knobs.proj_lanes is None else knobs.proj_lanes
            check_proj_lanes(proj_lanes, lanes)
        proj = projection_latency(model.layers[0].hidden_size, model.input_size, proj_lanes, knobs.proj_fanin,
                                  knobs.proj_stages) \
            if direct else 0
        return cls(T=model.T, engines=engines, lanes=lanes, fanin=fanin, layers=layers, input_mode=input_mode,
                   event_driven=bool(knobs.event_driven), event_mode=str(knobs.event_mode),
                   proj_fanin=knobs.proj_fanin, proj_latency=proj, head_in_hw=bool(knobs.head_in_hw),
                   out_words=output_words(model, knobs.head_in_hw),
                   head_latency=head_cycles(model, knobs.head_in_hw),
                   trace_groups=tuple(l.groups for l in layers) if knobs.trace else (),
                   cell_stages=knobs.cell_stages, gate_stages=knobs.gate_stages, tree_stages=knobs.tree_stages,
                   proj_stages=knobs.proj_stages, bank_readers=readers, queue_stages=knobs.queue_stages,
                   proj_lanes=proj_lanes)

    # ---------------------------------------------------------------- geometry
    @property
    def banks(self) -> int:
        """B = F/R weight banks of the spike queue (bank b holds the synapses m·B + b)."""
        return self.fanin // self.bank_readers

    @property
    def num_layers(self) -> int:
        """Layers (1 or 2)."""
        return len(self.layers)

    @property
    def passes(self) -> int:
        """P = ⌈T/E⌉ passes per diagonal step."""
        return ceil(self.T / self.engines)

    @property
    def drain(self) -> int:
        """Cycles of a diagonal step beyond its beats (from the last beat to the last state write,
        and the spike-queue sequencer's delay): :func:`pipeline_drain`."""
        return pipeline_drain(self.tree_stages, self.gate_stages, self.cell_stages, self.queue_stages)

    @property
    def has_trace(self) -> bool:
        """The debug trace port is on."""
        return bool(self.trace_groups)

    @property
    def trace_positions(self) -> list[tuple[int, int, int]]:
        """(layer, slot t, unit group) of every cycle of a trace phase, in record order."""
        return [(l, t, g) for l, G in enumerate(self.trace_groups) for t in range(self.T) for g in range(G)]

    @property
    def trace_cycles(self) -> int:
        """Q, the cycles of the trace phase after every diagonal step: ``Σ_l T·⌈H_l/L⌉`` with the
        trace port, else 0 (at full rate; each record stalled by ``trace.ready`` adds its cycles)."""
        return self.T * sum(self.trace_groups)

    def issue_groups(self) -> list[list[int]]:
        """Engines that share a sequencer and a weight read (per layer): all E, or each alone
        (event-driven with ``event_mode`` "engine" or "queue")."""
        if self.event_driven and EventMode(self.event_mode).per_engine:
            return [[e] for e in range(self.engines)]
        return [list(range(self.engines))]

    def diagonal_steps(self, N: int) -> int:
        """K = N + T − 1 + (layers − 1): diagonal steps of an N-element sequence."""
        return N + self.T - 1 + self.num_layers - 1

    def beats(self, index: int, nz: Sequence[Sequence[int]] | None = None) -> int:
        """Beats of layer ``index`` in one diagonal step (:meth:`WavefrontLayer.beats`)."""
        return self.layers[index].beats(self.passes, nz)

    # ---------------------------------------------------------------- cycles
    def cycles(self, N: int, spike_counts: Sequence[Sequence[Sequence[Sequence[int]]]] | None = None) -> int:
        """Exact cycles of one N-element sequence (source always valid, sink always ready).

        ``cycles = Σ_{k<K} (B_k + 4 + Q) + Σ_{k<N−1} max(0, X + 2 − (B_k + 4 + Q)) + X + W + 3 + Y`` where
        K = N + T − 1 + (layers − 1) diagonal steps; ``B_k = max_l B_l(k)`` beats of step k
        (dense: ``B_l = P·G_l·C_l`` with P = ⌈T/E⌉, G_l = ⌈H_l/L⌉, C_l = C_in + ⌈H_l/F⌉,
        C_in = ⌈D_l/F⌉ for spike input and 0 for direct input; event-driven:
        ``B_l(k) = max_q Σ_p G_l·max(1, nz_{k,l,q,p})``); 4 = pipeline drain (last beat → last
        write; 4 + the extra tree, gate, cell and spike-queue stages, :attr:`drain`); Q = trace phase (:attr:`trace_cycles`, 0 without the trace port); X = projection
        latency ``⌈H/proj_lanes⌉·⌈D/proj_fanin⌉ + 1 + proj_stages`` (direct input, else 0): element k+1 is accepted
        in the cycle after step k starts (the input buffer takes an element only while empty) and
        projected while step k runs, and step k+1 waits for it when the projection is the longer
        (the second sum); the first element's 1 + X cycles (accept, projection) precede step 0;
        after the final step's commit, 1 cycle for the readout to enter the output serializer, 1
        for the serializer's latency, then the W output words (H, or H + C + 1); Y = FC head
        latency when in hardware.

        Args:
            N: elements (≥ 1).
            spike_counts: event-driven only: ``spike_counts[k][l][q][p]`` = nz_{k,l,q,p}, the chunks
                of step k, layer l, issue group q, pass p with a nonzero spike in a valid slot of
                the group (queue modes: the beats of the fullest bank, ⌈its spikes / R⌉)
                (:meth:`event_chunk_counts`). Required iff ``event_driven``.
        """
        return sum(self.cycle_parts(N, spike_counts).values())

    def cycle_parts(self, N: int, spike_counts: Sequence[Sequence[Sequence[Sequence[int]]]] | None = None
                    ) -> dict[str, int]:
        """The terms of :meth:`cycles` (they sum to it), in cycles of one N-element sequence.

        ``beats``: Σ_k B_k (the issue beats); ``drain``: K·(drain + Q); ``projection_waits``:
        Σ_{k<N−1} max(0, X + 2 − (B_k + drain + Q)), the steps that wait for the next element's
        projection; ``fixed``: X + W + 3 + Y (the first projection, the readout, the head).
        Arguments as :meth:`cycles`.
        """
        if N < 1:
            raise ValueError("a sequence has N ≥ 1 elements")
        K = self.diagonal_steps(N)
        if self.event_driven:
            if spike_counts is None:
                raise ValueError("an event-driven core's cycle count needs spike_counts")
            if len(spike_counts) != K:
                raise ValueError(f"spike_counts has {len(spike_counts)} steps, expected {K}")
            beats = [max(self.beats(l, spike_counts[k][l]) for l in range(self.num_layers)) for k in range(K)]
        else:
            beats = [max(self.beats(l) for l in range(self.num_layers))] * K
        X, Q = self.proj_latency, self.trace_cycles
        return {"beats": sum(beats), "drain": K * (self.drain + Q),
                "projection_waits": sum(max(0, X + 2 - (beats[k] + self.drain + Q)) for k in range(N - 1)),
                "fixed": X + self.out_words + 3 + self.head_latency}

    def sequence_cycles(self, N: int, inputs: np.ndarray | None = None,
                        h: Sequence[np.ndarray] | None = None) -> int:
        """:meth:`cycles` of a sequence, the event counts taken from its spikes when event-driven.

        ``inputs``: int [N, T, D] layer-1 spikes (spike input; None for direct input); ``h``: per
        layer int [N, T, H] h spikes (the golden model's trace).
        """
        if not self.event_driven:
            return self.cycles(N)
        if h is None:
            raise ValueError("an event-driven core's cycle count needs the sequence's spikes")
        return self.cycles(N, self.event_chunk_counts(inputs, h))

    def weight_reads(self, N: int, inputs: np.ndarray | None = None,
                     h: Sequence[np.ndarray] | None = None) -> list[int]:
        """Weights read from each layer's synapse weight memory in one N-element sequence.

        Every beat of an issue group reads one word of 4·L·F weights (dense, "engine", "shared":
        the chunk's word; "queue", "queue-shared": one 4·L-weight column of each of the F lane
        banks), whether or not the beat's spikes are all nonzero, and one read serves every
        engine of the group (the wavefront's broadcast). So the count is ``4·L·F·Σ_k Σ_q Σ_p
        G_l·max(1, nz_{k,l,q,p})`` event-driven and ``4·L·F·K·P·G_l·C_l`` dense: the reuse each
        schedule really has. The direct-input projection's reads are not included (they are the
        same in every schedule). ``inputs``/``h`` as in :meth:`sequence_cycles` (needed when
        event-driven).
        """
        if N < 1:
            raise ValueError("a sequence has N ≥ 1 elements")
        word = 4 * self.lanes * self.fanin
        K = self.diagonal_steps(N)
        if not self.event_driven:
            return [K * layer.beats(self.passes) * word for layer in self.layers]
        if h is None:
            raise ValueError("an event-driven core's weight reads need the sequence's spikes")
        counts = self.event_chunk_counts(inputs, h)
        return [word * sum(layer.groups * max(1, int(n)) for step in counts for group in step[index] for n in group)
                for index, layer in enumerate(self.layers)]

    def dense(self) -> "WavefrontSchedule":
        """The same core without event skipping (its cycles do not depend on the data)."""
        return replace(self, event_driven=False)

    def serial_cycles(self, N: int) -> int:
        """Cycles of the dense schedule with the T·N cells of a sequence processed one after another
        (the earlier spiking LSTMs' order) instead of in diagonal steps:
        ``cycles(N) − K·S + T·N·layers·S``, S = dense beats + pipeline drain of one step."""
        dense = self.dense()
        step = max(dense.beats(l) for l in range(self.num_layers)) + self.drain + self.trace_cycles
        return dense.cycles(N) - dense.diagonal_steps(N) * step + self.T * N * self.num_layers * step

    @property
    def latency(self) -> int:
        """Cycles of a one-element sequence with every chunk processed: :meth:`cycles` (1) of the
        dense schedule (an upper bound for the event-driven one, whose steps skip chunks)."""
        K = self.diagonal_steps(1)
        B = max(self.beats(l) for l in range(self.num_layers))
        return K * (B + self.drain + self.trace_cycles) + self.proj_latency + self.out_words + 3 \
            + self.head_latency

    def event_chunk_counts(self, inputs: np.ndarray | None, h: Sequence[np.ndarray]) -> list[list[list[list[int]]]]:
        """nz_{k,l,q,p} for one sequence from its spikes (the input of :meth:`cycles`, event-driven).

        ``event_mode`` "engine"/"shared": the chunks holding a nonzero spike; "queue"/"queue-shared":
        ⌈the fullest bank's nonzero spikes / R⌉ (:attr:`banks` B = F/R banks, bank b holding the
        synapses m·B + b of the chunk-padded input vector; R = 1: synapse b of every chunk).

        Args:
            inputs: int [N, T, D] layer-1 spikes u(n,t) (spikes / rate mode; None for direct).
            h: per layer, int [N, T, H] the h spikes (e.g. ``golden.run_spiking(...).trace[l]["h"][b]``).

        Slot t of step k holds element n = k − t − l in layer l; a chunk of pass p counts for
        issue group q when a valid slot p·E + e (e in q) has a nonzero spike in it (input
        chunks: the layer's input u(n,t) or h_{l−1}(n,t); recurrent chunks: h_l(n−1,t), zero
        for n = 0).
        """
        N = h[0].shape[0]
        K = self.diagonal_steps(N)
        E, P, F, T = self.engines, self.passes, self.fanin, self.T
        queue = EventMode(self.event_mode).queued
        out = []
        for k in range(K):
            per_layer = []
            for l in range(self.num_layers):
                geo = self.layers[l]
                per_group = []
                for group in self.issue_groups():
                    counts = []
                    for p in range(P):
                        mask = np.zeros((geo.chunks, F), dtype=bool)  # [chunk, lane]: a nonzero spike
                        for e in group:
                            t = p * E + e
                            n = k - t - l
                            if t >= T or not 0 <= n < N:
                                continue
                            if geo.input_chunks:
                                u = inputs[n, t] if l == 0 else h[l - 1][n, t]
                                padded = np.zeros(geo.input_chunks * F, dtype=bool)
                                padded[:len(u)] = u != 0
                                mask[:geo.input_chunks] |= padded.reshape(-1, F)
                            if n > 0:
                                padded = np.zeros(geo.recurrent_chunks * F, dtype=bool)
                                padded[:geo.hidden] = h[l][n - 1, t] != 0
                                mask[geo.input_chunks:] |= padded.reshape(-1, F)
                        if queue:  # synapse s = c·F + f lies in bank s mod B
                            per_bank = mask.reshape(-1, self.banks).sum(axis=0)
                            counts.append(int(-(-per_bank.max() // self.bank_readers)))
                        else:
                            counts.append(int(mask.any(axis=1).sum()))
                    per_group.append(counts)
                per_layer.append(per_group)
            out.append(per_layer)
        return out

    def trace_order(self, N: int) -> list[tuple[int, int, int, int]]:
        """(layer, n, t, group) of every trace record of an N-element sequence, in stream order.

        For each diagonal step k = 0..K−1, layer l ascending, slot t ascending, unit group g
        ascending: a record when slot t of layer l holds an element, n = k − t − l ∈ [0, N).
        Every (l, n, t, g) appears once: N·Σ_l T·G_l records; the last has ``last`` = 1.
        """
        if not self.has_trace:
            raise ValueError("this core has no trace port (trace=False)")
        if N < 1:
            raise ValueError("a sequence has N ≥ 1 elements")
        positions = self.trace_positions
        order = []
        for k in range(self.diagonal_steps(N)):
            for l, t, g in positions:
                n = k - t - l
                if 0 <= n < N:
                    order.append((l, n, t, g))
        return order

    # ---------------------------------------------------------------- work and bounds
    @property
    def units(self) -> int:
        """Parallel synapse adders: layers × E × 4·L·F."""
        return self.num_layers * self.engines * 4 * self.lanes * self.fanin

    def useful_work(self, inputs: np.ndarray | None, h: Sequence[np.ndarray]) -> int:
        """Accumulations a sequence really needs: Σ over cells and gate rows of the nonzero synapse inputs.

        ``4·H_l·(nnz(input of (n,t)) + nnz(h_l(n−1,t)))`` summed over layers and cells; a
        direct-input layer's input counts 0 here (its projection is a MAC, counted apart).
        """
        total = 0
        for l, geo in enumerate(self.layers):
            if l == 0:
                inp = 0 if inputs is None or self.input_mode == InputMode.DIRECT else int(np.count_nonzero(inputs))
            else:
                inp = int(np.count_nonzero(h[l - 1]))
            rec = int(np.count_nonzero(h[l][:-1]))
            total += 4 * geo.hidden * (inp + rec)
        return total

    def ideal_cycles(self, inputs: np.ndarray | None, h: Sequence[np.ndarray]) -> float:
        """The bound ``useful accumulations / adders`` (``docs/hw-spiking-core.md``, "Ideal bound")."""
        return self.useful_work(inputs, h) / self.units

    def utilisation(self, inputs: np.ndarray | None, h: Sequence[np.ndarray], cycles: int) -> float:
        """``useful accumulations / (adders × cycles)``."""
        return self.useful_work(inputs, h) / (self.units * cycles)

    # ---------------------------------------------------------------- publication
    def _nz_text(self) -> str:
        """What nz counts in :meth:`formula`."""
        if not EventMode(self.event_mode).queued:
            return "the nonzero chunks"
        if self.bank_readers == 1:
            return "the fullest lane bank"
        return (f"ceil(the fullest of {self.banks} banks (synapses m*{self.banks} + b) / {self.bank_readers} "
                "readers)")

    def formula(self) -> str:
        """The cycle formula as text, with this instance's constants (for the manifest)."""
        q = "Q" if self.has_trace else ""
        drain = f"{self.drain} + Q" if self.has_trace else f"{self.drain}"
        text = (f"cycles(N) = sum_{{k<K}} (B_k + {drain}) + sum_{{k<N-1}} max(0, X + 2 - (B_k + {drain})) "
                "+ X + W + 3 + Y, K = N + T - 1 + (layers - 1), "
                "B_k = max_l B_l(k), dense B_l = ceil(T/E)*ceil(H_l/L)*(C_in_l + ceil(H_l/F)), "
                f"event-driven ({self.event_mode}) B_l(k) = max_q sum_p ceil(H_l/L)*max(1, nz_{{k,l,q,p}}), "
                f"nz = {self._nz_text()}; "
                f"X = {self.proj_latency}, W = {self.out_words}, Y = {self.head_latency}")
        if q:
            text += f", Q = sum_l T*ceil(H_l/L) = {self.trace_cycles} (trace phase, trace sink always ready)"
        return text

    def params(self) -> dict[str, Any]:
        """The machine-readable schedule: the class name and every parameter of :meth:`cycles`."""
        doc = asdict(self)
        return {"schedule": type(self).__name__, "passes": self.passes, "pipeline_drain": self.drain,
                "trace_cycles": self.trace_cycles, "units": self.units, "unit_name": self.unit_name, **doc}


# ----------------------------------------------------------------------------- the MAC baseline

@dataclass(frozen=True)
class BaselineLayer:
    """One layer of the MAC core: G = H_l/L groups, Kx = ⌈D_l/F⌉ input and Kh = ⌈H_l/F⌉ recurrent chunks."""

    hidden: int
    inputs: int
    groups: int
    input_chunks: int
    recurrent_chunks: int

    @property
    def steps(self) -> int:
        """K_l = G·(Kx + Kh), MAC cycles of the layer per element."""
        return self.groups * (self.input_chunks + self.recurrent_chunks)


@dataclass(frozen=True)
class BaselineSchedule:
    """Cycle model of the MAC baseline core (:class:`~snnhw.hw.baseline_core.BaselineCore`).

    One MAC array of 4·L·F multipliers, sequential over the elements (each waits for h(n−1));
    ``mac_stages`` (1..7) cycles from a MAC step's operands to its sum, ``act_stages`` (1..3)
    cycles for each of the three activation steps (gates, cell, hidden); ``act_stages`` = 4 is 3
    with one more cycle in the hidden step (:attr:`activation_cycles`).
    """

    lanes: int
    fanin: int
    layers: tuple[BaselineLayer, ...]
    head_in_hw: bool
    out_words: int
    head_latency: int
    mac_stages: int = 1
    act_stages: int = 1

    kind = "baseline"
    unit_name = "MACs"
    energy_schedule = "sequential"
    """The MAC baseline's operation-count schedule in the energy model (``docs/energy.md``)."""
    input_mode = "direct"
    event_driven = False
    has_trace = False
    trace_cycles = 0

    @classmethod
    def from_model(cls, model: FrozenBaseline, knobs: Any) -> "BaselineSchedule":
        """The schedule of ``model`` under resolved :class:`~snnhw.hw.knobs.BaselineKnobs`.

        Every check of the knobs against the model happens here (``ValueError``/``TypeError``),
        so a configuration is rejected before any Amaranth object exists.
        """
        if not isinstance(model, FrozenBaseline):
            raise TypeError(f"the MAC baseline core needs a FrozenBaseline, not {type(model).__name__}")
        lanes, fanin = knobs.lanes, knobs.fanin
        if not 1 <= len(model.layers) <= 2:
            raise ValueError(f"the baseline core supports 1 or 2 layers, not {len(model.layers)}")
        for index, layer in enumerate(model.layers):
            if layer.hidden_size % lanes:
                raise ValueError(f"lanes={lanes} does not divide layer {index + 1}'s hidden size {layer.hidden_size}")
            if index and any(layer.x_shift):
                raise ValueError(f"layer {index + 1} has a non-zero x_shift {layer.x_shift}")
            for gate in ("f", "i", "o"):
                if layer.act_mult[gate][0] != layer.act_mult[gate][1]:
                    raise ValueError(f"layer {index + 1}: sigmoid gate {gate} has two multipliers "
                                     f"{layer.act_mult[gate]}")
        if len({layer.act_shift for layer in model.layers}) != 1:
            raise ValueError(f"layers with different act_shift {sorted({l.act_shift for l in model.layers})} "
                             "are not supported")
        widest = max(max(layer.input_size, layer.hidden_size) for layer in model.layers)
        if fanin > widest:
            raise ValueError(f"fanin={fanin} exceeds the widest operand vector ({widest})")
        layers = tuple(BaselineLayer(hidden=l.hidden_size, inputs=l.input_size, groups=l.hidden_size // lanes,
                                     input_chunks=ceil(l.input_size / fanin),
                                     recurrent_chunks=ceil(l.hidden_size / fanin))
                       for l in model.layers)
        return cls(lanes=lanes, fanin=fanin, layers=layers, head_in_hw=bool(knobs.head_in_hw),
                   out_words=output_words(model, knobs.head_in_hw), head_latency=head_cycles(model, knobs.head_in_hw),
                   mac_stages=knobs.mac_stages, act_stages=knobs.act_stages)

    @property
    def activation_cycles(self) -> int:
        """A: cycles of the three activation steps of a group: 3·act_stages for act_stages ≤ 3,
        10 for act_stages = 4 (the hidden step's o·tc product registered before h)."""
        return 3 * min(self.act_stages, 3) + int(self.act_stages == 4)

    @property
    def layer_overhead(self) -> int:
        """V = 3 + (mac_stages − 1) + (A − 3), A = :attr:`activation_cycles` (A − 3 = 3·(act_stages
        − 1) for act_stages ≤ 3, 7 for 4): cycles per element and layer beyond its K_l MAC steps
        (from the last step's issue: mac_stages cycles to the last sum, then A activation cycles,
        the next layer or element starting in the last of them)."""
        return BASELINE_LAYER_OVERHEAD + (self.mac_stages - 1) + self.activation_cycles - 3

    @property
    def element_cycles(self) -> int:
        """E = Σ_l (K_l + V): cycles from an element's first MAC step to the next acceptance
        (V = :attr:`layer_overhead`)."""
        return sum(layer.steps + self.layer_overhead for layer in self.layers)

    def cycles(self, N: int, spike_counts: Any = None) -> int:
        """Exact cycles of one N-element sequence (``docs/hw-interface.md`` definition).

        ``N·(1 + E) + 2 + W + Y`` with E = Σ_l (K_l + V), K_l = (H_l/L)·(⌈D_l/F⌉ + ⌈H_l/F⌉),
        V = 3 + (mac_stages − 1) + A − 3 (:attr:`layer_overhead`), W = output words,
        Y = ``head_steps + 3`` with the head in hardware (else 0).
        ``spike_counts`` is not used (the MAC core's schedule does not depend on the data).
        """
        if N < 1:
            raise ValueError(f"a sequence has N ≥ 1 elements, not {N}")
        return N * (1 + self.element_cycles) + 2 + self.out_words + self.head_latency

    def sequence_cycles(self, N: int, inputs: np.ndarray | None = None, h: Any = None) -> int:
        """:meth:`cycles` (the data do not matter)."""
        return self.cycles(N)

    def dense(self) -> "BaselineSchedule":
        """Itself (the MAC core's cycles never depend on the data)."""
        return self

    @property
    def latency(self) -> int:
        """Cycles of a one-element sequence (= ``cycles(1)``)."""
        return self.cycles(1)

    @property
    def units(self) -> int:
        """Multiply-accumulate units of the MAC array: 4·L·F."""
        return 4 * self.lanes * self.fanin

    def useful_work(self, N: int) -> int:
        """MACs of an N-element sequence: ``N·Σ_l 4·H_l·(D_l + H_l)``."""
        return N * sum(4 * layer.hidden * (layer.inputs + layer.hidden) for layer in self.layers)

    def ideal_cycles(self, N: int) -> float:
        """``useful MACs / MAC units``."""
        return self.useful_work(N) / self.units

    def utilisation(self, N: int, cycles: int | None = None) -> float:
        """``useful MACs / (MAC units × cycles)`` (``cycles`` default :meth:`cycles` (N))."""
        return self.useful_work(N) / (self.units * (self.cycles(N) if cycles is None else cycles))

    def formula(self) -> str:
        """The cycle formula with this instance's numbers filled in."""
        terms = " + ".join(f"({l.groups}·({l.input_chunks}+{l.recurrent_chunks}) + {self.layer_overhead})"
                           for l in self.layers)
        head = f" + {self.head_latency}" if self.head_in_hw else ""
        fixed = self.cycles(1) - (1 + self.element_cycles)
        return f"N·(1 + {terms}) + 2 + {self.out_words}{head}  (= N·{1 + self.element_cycles} + {fixed})"

    def params(self) -> dict[str, Any]:
        """The machine-readable schedule: the class name and every parameter of :meth:`cycles`."""
        doc = asdict(self)
        return {"schedule": type(self).__name__, "element_cycles": self.element_cycles,
                "layer_overhead": self.layer_overhead, "per_element": 1 + self.element_cycles,
                "fixed": self.cycles(1) - (1 + self.element_cycles), "units": self.units,
                "unit_name": self.unit_name, **doc}
