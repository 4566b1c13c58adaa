"""The chunk/group sequencer shared by the wavefront and the input projection.

A *beat* is one weight word's worth of work: chunk c (``fanin`` synapses) of unit group g
(``lanes`` units) in pass p. :class:`ChunkSequencer` issues the beats of one run in the order
the schedules count them (:mod:`snnhw.hw.schedule`): passes P−1 down to 0, groups 0..G−1 and,
per group, its chunks in increasing order — all C of them, or (``skip``) only those whose bit
is set in the pass's chunk mask (one beat when the mask is empty, so that every group still
reaches the neuron update). :func:`beat_layout` is the beat's ``data.StructLayout``; consumers
register it stage by stage (``Signal(beat_layout(...))``) instead of one signal per field.
"""

from __future__ import annotations

from amaranth.hdl import Array, Cat, Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2


def beat_layout(passes: int, groups: int, chunks: int) -> data.StructLayout:
    """The beat: ``valid``; ``first`` / ``last`` — the first / last beat of its group; ``final`` —
    the last beat of the run; ``p``, ``g``, ``c`` — pass, group and chunk indices (at least one
    bit each)."""
    return data.StructLayout({
        "valid": 1, "first": 1, "last": 1, "final": 1,
        "p": ceil_log2(max(passes, 2)), "g": ceil_log2(max(groups, 2)), "c": ceil_log2(max(chunks, 2)),
    })


def next_group(m: Module, active: Signal, p: Signal, g: Signal, groups: int) -> None:
    """After a group's last beat: the next group, else the next pass down, else the run ends."""
    with m.If(g == groups - 1):
        m.d.sync += g.eq(0)
        with m.If(p == 0):
            m.d.sync += active.eq(0)
        with m.Else():
            m.d.sync += p.eq(p - 1)
    with m.Else():
        m.d.sync += g.eq(g + 1)


class ChunkSequencer(wiring.Component):
    """Issues the beats of P passes × G groups × C chunks after ``start``.

    Parameters:
        passes: P ≥ 1 (issued P−1 down to 0); groups: G ≥ 1; chunks: C ≥ 1.
        skip: take ``masks[p]`` (C bits) as the chunks to issue in pass p, sampled when a group
            starts; a group whose mask is 0 still issues one beat (chunk 0).

    Ports:
        start: In(1): begins a run in the next cycle (ignored while a run is in progress).
        masks: In(ArrayLayout(C, P)) — only with ``skip``; stable for the run.
        beat: Out(:func:`beat_layout`): the current beat (``valid`` low between runs).

    Latency: ``start`` in cycle S → beats in cycles S+1 .. S+B (B = P·G·C, or with ``skip``
    ``Σ_p G·max(1, popcount(masks[p]))``), ``final`` in cycle S+B; the beat is combinational
    from the sequencer's registers (latency 0 from its state).
    """

    def __init__(self, *, passes: int, groups: int, chunks: int, skip: bool = False) -> None:
        for name, v in (("passes", passes), ("groups", groups), ("chunks", chunks)):
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"ChunkSequencer {name} must be an integer ≥ 1, not {v!r}")
        self.passes, self.groups, self.chunks, self.skip = passes, groups, chunks, bool(skip)
        ports = {"start": In(1), "beat": Out(beat_layout(passes, groups, chunks))}
        if skip:
            ports["masks"] = In(data.ArrayLayout(chunks, passes))
        super().__init__(ports)

    def elaborate(self, platform):
        m = Module()
        P, G, C = self.passes, self.groups, self.chunks
        layout = beat_layout(P, G, C)
        active = Signal()
        p = Signal(layout["p"].shape)
        g = Signal(layout["g"].shape)
        c = Signal(layout["c"].shape)
        first = Signal()
        last = Signal()
        beat = self.beat
        if self.skip:
            rem = Signal(C)  # chunks still to issue in the current group (after the first beat)
            cur = Signal(C)
            mask = Signal(C)
            # a mux over the passes (indexing the ArrayLayout view by a Value would multiply)
            m.d.comb += mask.eq(Array(self.masks[k] for k in range(P))[p])
            m.d.comb += [
                cur.eq(Mux(first, Mux(mask == 0, 1, mask), rem)),
                last.eq((cur & (cur - 1)) == 0),
            ]
            for k in reversed(range(C)):
                with m.If(cur[k]):
                    m.d.comb += c.eq(k)
        else:
            m.d.comb += [first.eq(c == 0), last.eq(c == C - 1)]
        m.d.comb += [
            beat.valid.eq(active), beat.first.eq(first), beat.last.eq(last),
            beat.final.eq(active & last & (g == G - 1) & (p == 0)),
            beat.p.eq(p), beat.g.eq(g), beat.c.eq(c),
        ]
        with m.If(active):
            with m.If(last):
                if self.skip:
                    m.d.sync += first.eq(1)
                else:
                    m.d.sync += c.eq(0)
                next_group(m, active, p, g, G)
            with m.Else():
                if self.skip:
                    m.d.sync += [first.eq(0), rem.eq(cur & (cur - 1))]
                else:
                    m.d.sync += c.eq(c + 1)
        with m.Elif(self.start):
            m.d.sync += [active.eq(1), p.eq(P - 1), g.eq(0)]
            if self.skip:
                m.d.sync += first.eq(1)
            else:
                m.d.sync += c.eq(0)
        return m


def beat_order(passes: int, groups: int, chunks: int,
               masks: list[int] | None = None) -> list[tuple[int, int, int, bool, bool, bool]]:
    """The Python model of :class:`ChunkSequencer`: ``(p, g, c, first, last, final)`` of every
    beat of one run (``masks``: per pass the chunk mask, ``skip`` mode; None: every chunk)."""
    out = []
    for p in reversed(range(passes)):
        for g in range(groups):
            if masks is None:
                cs = list(range(chunks))
            else:
                cs = [c for c in range(chunks) if masks[p] >> c & 1] or [0]
            for i, c in enumerate(cs):
                last = i == len(cs) - 1
                out.append((p, g, c, i == 0, last, last and g == groups - 1 and p == 0))
    return out


def queue_beat_layout(passes: int, groups: int, chunks: int, banks: int) -> data.StructLayout:
    """The beat of :class:`QueueSequencer`: the fields of :func:`beat_layout` (``c`` unused) plus,
    per bank b, ``cs[b]`` (the chunk whose lane-b synapse it issues) and ``live[b]`` (the bank
    still had a spike: else its lane adds nothing this beat)."""
    cbits = ceil_log2(max(chunks, 2))
    return data.StructLayout({
        **{name: field.shape for name, field in beat_layout(passes, groups, chunks)},
        "cs": data.ArrayLayout(cbits, banks), "live": banks,
    })


class QueueSequencer(wiring.Component):
    """Spike queues, one per bank: issues, per beat, the next nonzero spike of every bank.

    The synapses of a unit group's input vector are banked by lane: bank b holds the synapses
    ``m·F + b`` (m = 0..C−1 the chunk). ``masks[p][b]`` (C bits) has bit m set when synapse
    ``m·F + b`` carries a nonzero spike in pass p. Each beat takes the lowest remaining chunk of
    every bank (``cs[b]``, ``live[b]``), so a group needs ``max(1, max_b popcount(masks[p][b]))``
    beats instead of the chunks holding any spike: the work follows the spikes. Order: passes
    P−1 down to 0, groups 0..G−1 (the masks are shared by the groups of a pass).

    Parameters: passes P, groups G, chunks C, banks F (all ≥ 1).

    Ports:
        start: In(1): begins a run in the next cycle (ignored while a run is in progress).
        masks: In(ArrayLayout(ArrayLayout(C, F), P)); stable for the run.
        beat: Out(:func:`queue_beat_layout`), combinational from the sequencer's registers.
    """

    def __init__(self, *, passes: int, groups: int, chunks: int, banks: int) -> None:
        for name, v in (("passes", passes), ("groups", groups), ("chunks", chunks), ("banks", banks)):
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"QueueSequencer {name} must be an integer ≥ 1, not {v!r}")
        self.passes, self.groups, self.chunks, self.banks = passes, groups, chunks, banks
        super().__init__({
            "start": In(1),
            "masks": In(data.ArrayLayout(data.ArrayLayout(chunks, banks), passes)),
            "beat": Out(queue_beat_layout(passes, groups, chunks, banks)),
        })

    def elaborate(self, platform):
        m = Module()
        P, G, C, F = self.passes, self.groups, self.chunks, self.banks
        layout = queue_beat_layout(P, G, C, F)
        active, first = Signal(), Signal()
        p = Signal(layout["p"].shape)
        g = Signal(layout["g"].shape)
        beat = self.beat
        rems = [Signal(C, name=f"rem_{b}") for b in range(F)]  # what a bank still holds after the first beat
        curs = [Signal(C, name=f"cur_{b}") for b in range(F)]
        masks = [Signal(C, name=f"mask_{b}") for b in range(F)]
        lasts = []
        for b in range(F):
            # a mux over the passes (indexing the ArrayLayout view by a Value would multiply)
            m.d.comb += masks[b].eq(Array(self.masks[k][b] for k in range(P))[p])
            m.d.comb += curs[b].eq(Mux(first, masks[b], rems[b]))
            lasts.append((curs[b] & (curs[b] - 1)) == 0)
            m.d.comb += beat.live[b].eq(curs[b] != 0)
            for k in reversed(range(C)):
                with m.If(curs[b][k]):
                    m.d.comb += beat.cs[b].eq(k)
        last = Signal()
        m.d.comb += last.eq(Cat(*lasts).all())
        m.d.comb += [
            beat.valid.eq(active), beat.first.eq(first), beat.last.eq(last),
            beat.final.eq(active & last & (g == G - 1) & (p == 0)),
            beat.p.eq(p), beat.g.eq(g),
        ]
        with m.If(active):
            with m.If(last):
                m.d.sync += first.eq(1)
                next_group(m, active, p, g, G)
            with m.Else():
                m.d.sync += first.eq(0)
                m.d.sync += [rems[b].eq(curs[b] & (curs[b] - 1)) for b in range(F)]
        with m.Elif(self.start):
            m.d.sync += [active.eq(1), p.eq(P - 1), g.eq(0), first.eq(1)]
        return m


def queue_beat_order(passes: int, groups: int, chunks: int, masks: list[list[int]]
                     ) -> list[tuple[int, int, tuple[int | None, ...], bool, bool, bool]]:
    """The Python model of :class:`QueueSequencer`: ``(p, g, cs, first, last, final)`` of every
    beat, ``cs[b]`` the chunk bank b issues (None when the bank is exhausted); ``masks[p][b]``."""
    out = []
    for p in reversed(range(passes)):
        queues = [[c for c in range(chunks) if masks[p][b] >> c & 1] for b in range(len(masks[p]))]
        depth = max(1, max(len(q) for q in queues))
        for g in range(groups):
            for i in range(depth):
                last = i == depth - 1
                cs = tuple(q[i] if i < len(q) else None for q in queues)
                out.append((p, g, cs, i == 0, last, last and g == groups - 1 and p == 0))
    return out
