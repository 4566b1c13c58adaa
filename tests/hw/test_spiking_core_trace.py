"""SpikingCore's debug trace port (``trace=True``) against ``golden.run_spiking(..., trace=True)``.

Every record of the ``trace`` stream — f, o, i, g, c, s_c, h of ``lanes`` units of one cell
(layer, n, t) — is compared exactly with the golden trace, in the order of
``SpikingCore.trace_order``; the readout stream stays exact and the published cycle count
(with the trace phase) holds. A flipped expected spike must be reported at its location.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from amaranth.hdl import Value
from amaranth.sim import Simulator

from snnhw.hw.knobs import SpikingKnobs
from snnhw.hw.registry import core_spec
from snnhw.hw.spiking_core import SpikingCore
from snnhw.hw.stream_io import pack_input_word, sim_recv, sim_send, unpack_output_words
from snnhw.hw.trace_io import (
    TRACE_UNIT_FIELDS,
    expected_trace_records,
    pack_trace_record,
    trace_fields,
    unpack_trace_record,
)
from snnhw.quant import golden
from snnhw.quant.synthetic import random_frozen_spiking, random_inputs

pytestmark = pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")


DRAIN_CYCLES = 32
"""Cycles the trace sink keeps taking records after the last output word (to see extra records)."""


def _simulate(core: SpikingCore, model, mode: str, seqs: list[np.ndarray], stall: float, seed: int):
    """Stream ``seqs``; returns (output payloads, trace payloads, input accept cycles, output accept cycles).

    The trace sink takes every record until the output stream is done and ``DRAIN_CYCLES``
    more cycles passed without one, so missing and extra records are both seen.
    """
    words = [pack_input_word(model, mode, x[n], last=(n == len(x) - 1)) for x in seqs for n in range(len(x))]
    rngs = [np.random.default_rng(seed + k) if stall else None for k in range(3)]
    res: dict = {}

    async def source(ctx):
        res["in"] = await sim_send(ctx, core.i, words, rngs[0], stall)

    async def sink(ctx):
        res["out"] = await sim_recv(ctx, core.o, core.out_words * len(seqs), rngs[1], stall)

    async def trace_sink(ctx):
        got, quiet = [], 0
        raw = Value.cast(core.trace.payload)
        while "out" not in res or quiet < DRAIN_CYCLES:
            ready = not (stall and rngs[2].random() < stall)
            ctx.set(core.trace.ready, int(ready))
            _, _, valid, payload = await ctx.tick().sample(core.trace.valid, raw)
            if ready and valid:
                got.append(int(payload))
                quiet = 0
            else:
                quiet += 1
        res["trace"] = got

    sim = Simulator(core)
    sim.add_clock(1e-8)
    for bench in (source, sink, trace_sink):
        sim.add_testbench(bench)
    sim.run()
    return res["out"][0], res["trace"], res["in"], res["out"][1]


def check_trace(*, T: int, mode: str = "direct", layers: int = 1, ns: str = "g", leak: str = "if", H: int = 5,
                D: int = 3, lanes: int = 2, fanin: int = 2, engines: int | None = None, event_driven: bool = False,
                event_mode: str = "engine", head: bool = False, lengths: list[int] = (3, 1, 2),
                stall: float = 0.0, seed: int = 1, gate_stages: int = 1, cell_stages: int = 1,
                flip: tuple[int, int, int, int, str, int] | None = None) -> list[str]:
    """Run one traced configuration; returns the mismatches (empty when trace, readout and cycles are exact).

    ``flip`` = (sample, layer, n, t, gate, unit): corrupt that expected spike first (0 → 1, ±1 → 0).
    """
    encoding = "direct" if mode == "direct" else "rate"
    model = random_frozen_spiking(seed, input_size=D, hidden_size=H, T=T, num_layers=layers, encoding=encoding,
                                  nonspiking_gate=ns, leak=leak, head_hidden=0)
    x, _ = random_inputs(model, seed + 7, len(lengths), max(lengths), False, spikes=(mode == "spikes"))
    lens = np.asarray(lengths, dtype=np.int64)
    for b, n in enumerate(lengths):
        x[b, n:] = 0
    if mode == "spikes":
        ref = golden.run_spiking(model, None, lens, spikes_in=x, trace=True)
    else:
        ref = golden.run_spiking(model, x, lens, trace=True)
    core = SpikingCore(model, lanes=lanes, fanin=fanin, engines=engines, event_driven=event_driven,
                       input_mode=mode, head_in_hw=head, event_mode=event_mode, gate_stages=gate_stages, cell_stages=cell_stages,
                       trace=True)
    fields = core.trace_fields()
    expected_trace = [dict(layer) for layer in ref.trace]
    if flip is not None:
        b, l, n, t, gate, j = flip
        expected_trace[l][gate] = expected_trace[l][gate].copy()
        value = expected_trace[l][gate][b, n, t, j]
        expected_trace[l][gate][b, n, t, j] = 1 if value == 0 else 0
    where, expected = [], []
    for b, n in enumerate(lengths):
        order = core.schedule.trace_order(n)
        where += [(b, *o) for o in order]
        expected += expected_trace_records(fields, order, expected_trace, b)
    seqs = [x[b, :n] for b, n in enumerate(lengths)]
    payloads, got_trace, acc_in, acc_out = _simulate(core, model, mode, seqs, stall, seed)

    bad = []
    for name in ("f", "o", "i", "g", "c", "s_c", "h"):  # a stuck-at-0 trace must not pass
        if not any(np.any(tr[name]) for tr in ref.trace):
            bad.append(f"the golden trace of {name} is all zero: the configuration tests nothing")
    for pos, (want, got) in enumerate(zip(expected, got_trace)):
        if want != got:
            w, g = unpack_trace_record(fields, want), unpack_trace_record(fields, got)
            b, l, n, t, group = where[pos]
            diffs = [f"{name}[{group * lanes + k}] expected {w['units'][k][name]} got {g['units'][k][name]}"
                     for k in range(lanes) for name in TRACE_UNIT_FIELDS if w["units"][k][name] != g["units"][k][name]]
            diffs += [f"{name} expected {w[name]} got {g[name]}" for name in ("last", "layer", "t", "group")
                      if w[name] != g[name]]
            bad.append(f"record {pos} (sample {b}, layer {l}, n {n}, t {t}): {'; '.join(diffs)}")
            break
    if len(got_trace) != len(expected):
        bad.append(f"{len(got_trace)} trace records, expected {len(expected)}")
    for b, rec in enumerate(unpack_output_words(model, payloads, head_in_hw=head)):
        if not np.array_equal(rec.readout, ref.readout[b]):
            bad.append(f"sequence {b}: readout {rec.readout} != golden {ref.readout[b]}")
        if head and (not np.array_equal(rec.logits, ref.logits[b]) or rec.cls != ref.classes[b]):
            bad.append(f"sequence {b}: logits/class differ from golden")
    if not stall:
        u_all = x if mode == "spikes" else (golden.rate_encode(model, x) if mode == "rate" else None)
        first = 0
        for b, n in enumerate(lengths):
            counts = None
            if event_driven:
                counts = core.schedule.event_chunk_counts(None if u_all is None else u_all[b, :n],
                                                 [tr["h"][b, :n] for tr in ref.trace])
            measured = acc_out[(b + 1) * core.out_words - 1] - acc_in[first] + 1
            if measured != core.schedule.cycles(n, counts):
                bad.append(f"sequence {b}: {measured} cycles, formula {core.schedule.cycles(n, counts)}")
            first += n
    return bad


CONFIGS = {
    "direct_1layer_T2_H5": dict(T=2, mode="direct", H=5, lanes=2, lengths=[3, 1, 4]),
    "direct_nonspiking_i_T3_H6": dict(T=3, mode="direct", ns="i", leak="lif", H=6, lanes=4, fanin=3, lengths=[3, 2]),
    "spikes_2layer_T3_H4_E2": dict(T=3, mode="spikes", layers=2, H=4, lanes=2, engines=2, lengths=[4, 1, 3]),
    "rate_2layer_nonspiking_i_T2_H8": dict(T=2, mode="rate", layers=2, ns="i", H=8, lanes=4, fanin=4, head=True,
                                           lengths=[3, 2]),
    "event_engine_direct_T3_H4": dict(T=3, mode="direct", H=4, lanes=1, fanin=1, engines=2, event_driven=True,
                                      lengths=[4, 2]),
    "event_engine_2layer_spikes_T3_H5": dict(T=3, mode="spikes", layers=2, H=5, lanes=2, fanin=1, engines=2,
                                             event_driven=True, lengths=[3, 1]),
    "rate_2layer_E1_T4_H4": dict(T=4, mode="rate", layers=2, H=4, lanes=2, engines=1, lengths=[2, 3]),
    "direct_T1_H2": dict(T=1, mode="direct", H=2, lanes=2, lengths=[2, 1]),
    "cell2_spikes_2layer_T3_H4_E2": dict(T=3, mode="spikes", layers=2, H=4, lanes=2, engines=2, cell_stages=2,
                                         lengths=[3, 2]),
    "gate2_cell3_direct_T3_H4_E2": dict(T=3, mode="direct", H=4, lanes=2, engines=2, gate_stages=2, cell_stages=3,
                                        lengths=[3, 2]),
    "gate3_cell4_spikes_T2_H4": dict(T=2, mode="spikes", H=4, lanes=2, gate_stages=3, cell_stages=4, lengths=[3, 2]),
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_trace_matches_golden_exactly(name: str) -> None:
    assert check_trace(**CONFIGS[name]) == []


def test_trace_exact_under_backpressure_on_every_stream() -> None:
    """Random idles on ``i`` and random ``ready`` drops on ``o`` and ``trace``: the core stalls, nothing is lost."""
    assert check_trace(T=2, mode="spikes", layers=2, H=4, lanes=2, lengths=[3, 1, 2], stall=0.45, seed=5) == []


@pytest.mark.parametrize("gate", ["f", "o", "h"])
def test_flipped_expected_spike_is_caught_and_located(gate: str) -> None:
    """Mutation: one expected spike flipped in the golden trace → exactly one located mismatch."""
    cfg = CONFIGS["spikes_2layer_T3_H4_E2"]
    flip = (2, 1, 1, 2, gate, 3)  # sample 2, layer 1 (the second), n = 1, t = 2, unit 3
    bad = check_trace(**cfg, flip=flip)
    assert len(bad) == 1
    message = bad[0]
    assert re.match(r"record \d+ \(sample 2, layer 1, n 1, t 2\): ", message), message
    assert f"{gate}[3] expected" in message and message.count("expected") == 1, message


def test_trace_order_covers_every_cell_once() -> None:
    model = random_frozen_spiking(3, input_size=3, hidden_size=5, T=3, num_layers=2, encoding="rate")
    schedule = core_spec("spiking").schedule_of(model, SpikingKnobs(lanes=2, fanin=2, engines=3,
                                                                    input_mode="spikes", trace=True))
    order = schedule.trace_order(4)
    assert len(order) == len(set(order)) == 2 * 4 * 3 * 3
    assert set(order) == {(l, n, t, g) for l in range(2) for n in range(4) for t in range(3) for g in range(3)}
    assert order[0] == (0, 0, 0, 0) and order[-1] == (1, 3, 2, 2)
    assert schedule.trace_cycles == 2 * 3 * 3


def test_record_pack_unpack_roundtrip_and_range() -> None:
    model = random_frozen_spiking(3, input_size=3, hidden_size=4, T=2, nonspiking_gate="i")
    fields = trace_fields(model, 2)
    units = [{"f": 1, "o": 0, "i": 5, "g": -1, "c": -7, "s_c": -1, "h": 0},
             {"f": 0, "o": 1, "i": 0, "g": 1, "c": 3, "s_c": 1, "h": 1}]
    header = {"last": 1, "layer": 0, "t": 1, "group": 1}
    rec = unpack_trace_record(fields, pack_trace_record(fields, header, units))
    assert rec["units"] == units and all(rec[k] == v for k, v in header.items())
    with pytest.raises(ValueError):
        pack_trace_record(fields, header, [{**units[0], "h": 2}, units[1]])


def test_trace_off_adds_nothing_and_manifest_describes_trace_port() -> None:
    from amaranth.back import rtlil

    model = random_frozen_spiking(2, input_size=3, hidden_size=4, T=2, encoding="rate", num_layers=2)
    plain = SpikingCore(model, lanes=2, fanin=2, input_mode="spikes")
    assert "trace" not in plain.signature.members and "trace" not in plain.describe()["ports"]
    assert "trace" not in rtlil.convert(plain, ports=None)
    core = SpikingCore(model, lanes=2, fanin=2, input_mode="spikes", trace=True)
    assert "trace__payload" in rtlil.convert(core, ports=None)
    desc = core.describe()
    port = desc["ports"]["trace"]
    assert desc["knobs"]["trace"] is True
    assert port["data_bits"] == len(core.trace.payload.as_value())
    assert port["fields"] == core.trace_fields()
    assert sum(f["width"] for f in port["fields"]) == port["data_bits"]
    assert [f["name"] for f in port["fields"][:4]] == ["last", "layer", "t", "group"]
    assert port["trace_cycles_per_step"] == core.schedule.trace_cycles == 2 * 2 * 2
    assert core.schedule.cycles(3) == plain.schedule.cycles(3) + core.schedule.diagonal_steps(3) * core.schedule.trace_cycles
    assert "Q = " in core.schedule.formula()
