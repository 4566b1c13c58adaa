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

from amaranth.hdl import Array, Cat, Module, Mux, Signal, Value
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from snnhw.hw.knobs import check_queue_stages


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


def queue_beat_layout(passes: int, groups: int, entries: int, lanes: int) -> data.StructLayout:
    """The beat of :class:`QueueSequencer`: the fields of :func:`beat_layout` (``c`` unused) plus,
    per lane f, ``cs[f]`` (the entry m of its bank whose synapse it issues) and ``live[f]`` (the
    lane got a spike: else it adds nothing this beat)."""
    mbits = ceil_log2(max(entries, 2))
    return data.StructLayout({
        **{name: field.shape for name, field in beat_layout(passes, groups, entries)},
        "cs": data.ArrayLayout(mbits, lanes), "live": lanes,
    })


def lowest_set_bit(m: Module, bits: Value, name: str, reversed_: bool = False) -> Value:
    """The index of the lowest set bit of ``bits`` (0 when none is set), ``ceil_log2(len(bits))``
    bits wide (at least 1); with ``reversed_``, ``bits`` is a word read backwards (bit k is bit
    W−1−k of the word, W = ``len(bits)``) and the index is the word's: its highest set bit.

    The lowest set bit is isolated first (``bits & ~(bits − 1)``: one carry chain) and its
    one-hot word encoded by OR trees (output bit j: any isolated bit whose index has bit j set),
    so the depth grows with log(len(bits)), not with len(bits) as in a priority chain of ifs.
    """
    width = len(bits)
    onehot = Signal(width, name=name)
    m.d.comb += onehot.eq(bits & ~(bits - 1))
    index = (lambda k: width - 1 - k) if reversed_ else (lambda k: k)
    return Cat(*(Cat(*(onehot[k] for k in range(width) if index(k) >> j & 1)).any()
                 for j in range(max(1, ceil_log2(width)))))


def clear_lowest(m: Module, bits: Value, name: str) -> Signal:
    """``bits`` with its lowest set bit cleared (``bits & (bits − 1)``: one carry chain)."""
    out = Signal(len(bits), name=name)
    m.d.comb += out.eq(bits & (bits - 1))
    return out


def at_most(m: Module, bits: Value, count: int, name: str) -> Value:
    """1 when at most ``count`` bits of ``bits`` are set: a balanced tree of saturating counts
    (each node min(left + right, count + 1), ``ceil_log2(count + 2)`` bits), so its depth grows
    with log(len(bits)) and it needs no carry chain."""
    cap = count + 1
    nodes: list[Value] = [bits[k] for k in range(len(bits))]
    level = 0
    while len(nodes) > 1:
        pairs = []
        for k in range(0, len(nodes) - 1, 2):
            total = Signal(range(cap + 1), name=f"{name}_{level}_{k // 2}")
            s = nodes[k] + nodes[k + 1]
            m.d.comb += total.eq(Mux(s > cap, cap, s))
            pairs.append(total)
        if len(nodes) % 2:
            pairs.append(nodes[-1])
        nodes, level = pairs, level + 1
    return nodes[0] <= count


class QueueSequencer(wiring.Component):
    """Spike queues, one per bank, each read by R lanes: issues, per beat, the next R nonzero
    spikes of every bank.

    The synapses of a unit group's input vector are banked: bank b (of B) holds the synapses
    ``m·B + b`` (m = 0..M−1, its entries). ``masks[p][b]`` (M bits) has bit m set when synapse
    ``m·B + b`` carries a nonzero spike in pass p. Each beat gives lane ``f = r·B + b`` (reader r
    of bank b) the r-th lowest remaining entry of its bank (``cs[f]``, ``live[f]``; S = 3: from both
    ends, below), so a group needs ``max(1, max_b ⌈popcount(masks[p][b]) / R⌉)`` beats: the work
    follows the spikes. Order: passes P−1 down to 0, groups 0..G−1 (the masks are shared by the
    groups of a pass).

    Parameters: passes P, groups G, entries M (per bank), banks B, readers R (all ≥ 1); stages
    S (:data:`~snnhw.hw.knobs.QUEUE_STAGES`): 1, the beat combinational from the queue registers
    (a chain of R lowest-set-bit selections per bank, :func:`lowest_set_bit`); 2, the beat
    registered (the weight memories' read addresses come from flip-flops, not through the
    selection chain); 3, the masks and ``start`` registered as well, and the loop shortened: the
    queue heads are the registers themselves (loaded at a group's end with the next group's
    masks, not multiplexed in front of the chain by pass and first beat), and a group's end is
    :func:`at_most` R spikes left in every head (a count tree beside the chain, not a zero test
    behind it); and a bank's readers take its spikes from both ends: readers 0..⌈R/2⌉−1 the
    lowest, readers ⌈R/2⌉..R−1 the highest (reader ⌈R/2⌉ + j the j-th highest, live while more
    than ⌈R/2⌉ + j are left), so the chains of clear-lowest selections are ⌈R/2⌉ long, not R
    (the beats per group are the same, and the sums too: the order of a group's accumulations
    is free).

    Ports:
        start: In(1): begins a run (ignored while a run is in progress).
        masks: In(ArrayLayout(ArrayLayout(M, B), P)); stable from the cycle after ``start`` to
            the end of the run.
        beat: Out(:func:`queue_beat_layout` with B·R lanes).

    Timing: ``start`` in cycle x → the first beat in cycle x + S, the beats back to back; with
    S = 3 the masks are sampled from cycle x + 1 on and used a cycle later.
    """

    def __init__(self, *, passes: int, groups: int, entries: int, banks: int, readers: int = 1,
                 stages: int = 1) -> None:
        for name, v in (("passes", passes), ("groups", groups), ("entries", entries), ("banks", banks),
                        ("readers", readers)):
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"QueueSequencer {name} must be an integer ≥ 1, not {v!r}")
        check_queue_stages("QueueSequencer ", stages, True)
        self.passes, self.groups, self.entries, self.banks, self.readers = passes, groups, entries, banks, readers
        self.stages = stages
        super().__init__({
            "start": In(1),
            "masks": In(data.ArrayLayout(data.ArrayLayout(entries, banks), passes)),
            "beat": Out(queue_beat_layout(passes, groups, entries, banks * readers)),
        })

    def elaborate(self, platform):
        m = Module()
        P, G, M, B, R = self.passes, self.groups, self.entries, self.banks, self.readers
        layout = queue_beat_layout(P, G, M, B * R)
        active, first = Signal(), Signal()
        p = Signal(layout["p"].shape)
        g = Signal(layout["g"].shape)
        heads = self.stages == 3  # the queue heads are registers, read from both ends
        start, in_masks = self.start, self.masks
        if heads:  # the queue heads start from registers
            start = Signal(name="start_q")
            in_masks = Signal(data.ArrayLayout(data.ArrayLayout(M, B), P), name="masks_q")
            m.d.sync += [start.eq(self.start), in_masks.eq(self.masks)]
        if self.stages == 1:
            beat = self.beat
        else:  # the beat leaves through a register
            beat = Signal(layout, name="beat_next")
            m.d.sync += self.beat.eq(beat)
        curs = [Signal(M, name=f"cur_{b}") for b in range(B)]  # what a bank holds before a beat
        low = (R + 1) // 2 if heads else R  # readers taking the lowest spikes; the others the highest
        rests = []  # per bank, what it still holds after the beat
        for b in range(B):
            cur = curs[b]
            for r in range(low):  # reader r takes the lowest entry left by readers 0..r−1
                if r:
                    cur = clear_lowest(m, cur, f"cur_{b}_{r}")
                f = r * B + b
                m.d.comb += beat.live[f].eq((cur != 0) if r == 0 or not heads  # more than r left
                                            else ~at_most(m, curs[b], r, f"live_{b}_{r}"))
                m.d.comb += beat.cs[f].eq(lowest_set_bit(m, cur, f"low_{b}_{r}"))
            rest = clear_lowest(m, cur, f"rest_{b}")
            if low < R:
                top = Signal(M, name=f"top_{b}")  # the head read backwards: its highest spikes lowest
                m.d.comb += top.eq(curs[b][::-1])
                for r in range(low, R):  # reader low + j takes the j-th highest entry
                    if r > low:
                        top = clear_lowest(m, top, f"top_{b}_{r}")
                    f = r * B + b
                    m.d.comb += beat.live[f].eq(~at_most(m, curs[b], r, f"live_{b}_{r}"))
                    m.d.comb += beat.cs[f].eq(lowest_set_bit(m, top, f"high_{b}_{r}", reversed_=True))
                rest = rest & clear_lowest(m, top, f"top_rest_{b}")[::-1]
            rests.append(rest)
        last = Signal()
        m.d.comb += [
            beat.valid.eq(active), beat.first.eq(first), beat.last.eq(last),
            beat.final.eq(active & last & (g == G - 1) & (p == 0)),
            beat.p.eq(p), beat.g.eq(g),
        ]
        if not heads:
            rems = [Signal(M, name=f"rem_{b}") for b in range(B)]
            for b in range(B):
                # a mux over the passes (indexing the ArrayLayout view by a Value would multiply)
                mask = Signal(M, name=f"mask_{b}")
                m.d.comb += mask.eq(Array(in_masks[k][b] for k in range(P))[p])
                m.d.comb += curs[b].eq(Mux(first, mask, rems[b]))
            m.d.comb += last.eq(Cat(*[rest == 0 for rest in rests]).all())
        else:
            # the queue heads are the registers themselves, loaded at a group's end with the next
            # group's masks (no pass or first-beat multiplexer in front of the selection chain),
            # and a group's end is a count of each head's spikes (at most R left), beside the chain
            g_end = Signal(name="group_end")
            nexts = [Mux(g_end, Array(in_masks[max(k - 1, 0)][b] for k in range(P))[p],
                         Array(in_masks[k][b] for k in range(P))[p]) for b in range(B)]
            m.d.comb += [g_end.eq(g == G - 1),
                         last.eq(Cat(*[at_most(m, cur, R, f"count_{b}") for b, cur in enumerate(curs)]).all())]
        with m.If(active):
            with m.If(last):
                m.d.sync += first.eq(1)
                next_group(m, active, p, g, G)
                if heads:
                    m.d.sync += [curs[b].eq(nexts[b]) for b in range(B)]
            with m.Else():
                m.d.sync += first.eq(0)
                m.d.sync += [(curs if heads else rems)[b].eq(rests[b]) for b in range(B)]
        with m.Elif(start):
            m.d.sync += [active.eq(1), p.eq(P - 1), g.eq(0), first.eq(1)]
            if heads:  # the masks of the first pass, valid from the cycle after start on
                m.d.sync += [curs[b].eq(self.masks[P - 1][b]) for b in range(B)]
        return m


def queue_beat_order(passes: int, groups: int, masks: list[list[int]], readers: int = 1, both_ends: bool = False
                     ) -> list[tuple[int, int, tuple[int | None, ...], bool, bool, bool]]:
    """The Python model of :class:`QueueSequencer`: ``(p, g, cs, first, last, final)`` of every
    beat, ``cs[f]`` the entry lane f = r·B + b issues (None when its bank has no spike left for
    it); ``masks[p][b]`` (B banks, R = ``readers``). ``both_ends`` (``stages`` 3): readers
    ⌈R/2⌉.. take the highest entries left, reader ⌈R/2⌉ + j the j-th highest."""
    low = (readers + 1) // 2 if both_ends else readers
    out = []
    for p in reversed(range(passes)):
        banks = len(masks[p])
        queues = [[m for m in range(masks[p][b].bit_length()) if masks[p][b] >> m & 1] for b in range(banks)]
        depth = max(1, max(-(-len(q) // readers) for q in queues))
        for g in range(groups):
            left = list(queues)
            for i in range(depth):
                last = i == depth - 1
                cs: list[int | None] = [None] * (banks * readers)
                for b, q in enumerate(left):
                    for r in range(readers):
                        if r < low and r < len(q):
                            cs[r * banks + b] = q[r]
                        elif r >= low and len(q) > r:
                            cs[r * banks + b] = q[len(q) - 1 - (r - low)]
                    left[b] = q[low:len(q) - (readers - low)]
                out.append((p, g, tuple(cs), i == 0, last, last and g == groups - 1 and p == 0))
    return out
