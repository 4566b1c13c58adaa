# amaranth: UnusedElaboratable=no
"""BaselineCore: bit-exact to ``golden.run_baseline``, exact cycle counts, stalls, reset."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.hdl import ClockDomain, Module
from amaranth.sim import Simulator

from snnhw.hw.baseline_core import BaselineCore, clip_thresholds
from snnhw.hw.stream_io import pack_input_word, sim_recv, sim_send, unpack_output_words
from snnhw.quant.frozen import BaselineLayer, FrozenBaseline, IntHead
from snnhw.quant.golden import pack_sequences, run_baseline
from snnhw.quant.synthetic import random_frozen_baseline, random_inputs


def _model(seed: int, *, D: int = 3, H: int = 4, layers: int = 1, C: int = 3, cell_bits: int = 9,
           hidden_head: int | None = None) -> FrozenBaseline:
    """A random baseline whose activations clip at both ends (act_bits 6: Q = 32)."""
    rng = np.random.default_rng(seed)
    built = []
    for index in range(layers):
        d_in = D if index == 0 else H
        built.append(BaselineLayer(
            w_x=rng.integers(-32, 32, (4 * H, d_in)), w_h=rng.integers(-32, 32, (4 * H, H)),
            bias=rng.integers(-300, 300, 4 * H),
            x_shift=tuple(int(v) for v in rng.integers(0, 4, 4)) if index == 0 else (0, 0, 0, 0),
            act_mult={"f": (37, 37), "i": (45, 45), "g": (51, 29), "o": (40, 40)} if index == 0
            else {"f": (30, 30), "i": (41, 41), "g": (33, 47), "o": (44, 44)},
            c_mult=(300, 260) if index == 0 else (280, 310), act_shift=8, cell_bits=cell_bits, acc_bits=20))
    if hidden_head is None:
        head = IntHead(w_out=rng.integers(-20, 20, (C, H)), b_out=rng.integers(-50, 50, C))
    else:
        head = IntHead(w_out=rng.integers(-20, 20, (C, hidden_head)), b_out=rng.integers(-50, 50, C),
                       w_hidden=rng.integers(-20, 20, (hidden_head, H)), b_hidden=rng.integers(-50, 50, hidden_head),
                       hidden_shift=2, hidden_bits=5)
    return FrozenBaseline(weight_bits=6, act_bits=6, input_bits=6, input_scale=0.1, layers=built, head=head)


def _run(model: FrozenBaseline, seqs: list[np.ndarray], *, lanes: int, fanin: int, head: bool = False,
         stall: float = 0.0, seed: int = 0, reset_after: int | None = None, mac_stages: int = 1,
         act_stages: int = 1):
    """Stream ``seqs`` through a BaselineCore; returns (core, output records, cycle logs).

    ``reset_after``: assert ``rst`` for one cycle after that many cycles, then send ``seqs``.
    """
    dut = BaselineCore(model, lanes=lanes, fanin=fanin, head_in_hw=head, mac_stages=mac_stages, act_stages=act_stages)
    top = Module()
    top.domains.sync = cd = ClockDomain()
    top.submodules.dut = dut
    rng = np.random.default_rng(seed)
    payloads = [pack_input_word(model, "direct", e, last=n == len(s) - 1) for s in seqs for n, e in enumerate(s)]
    log: dict = {}

    async def source(ctx):
        if reset_after is not None:
            garbage = [pack_input_word(model, "direct", np.full(model.input_size, 31), last=False)] * 3
            await sim_send(ctx, dut.i, garbage)
            await ctx.tick().repeat(reset_after)
            ctx.set(cd.rst, 1)
            await ctx.tick()
            ctx.set(cd.rst, 0)
            log["start"] = True
        log["in"] = await sim_send(ctx, dut.i, payloads, rng, stall)

    async def sink(ctx):
        if reset_after is not None:
            while "start" not in log:  # discard whatever the interrupted sequence left
                await ctx.tick()
        log["words"], log["out"] = await sim_recv(ctx, dut.o, dut.n_words * len(seqs), rng, stall)

    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_testbench(source)
    sim.add_testbench(sink)
    sim.run()
    return dut, unpack_output_words(model, log["words"], head_in_hw=head), log


def _inputs(model: FrozenBaseline, lengths: list[int], seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    seqs = [rng.integers(-32, 32, (n, model.input_size)) for n in lengths]
    seqs[0][0] = 31  # input extremes
    if len(seqs) > 1:
        seqs[1][0] = -32
    return seqs


def _check(model: FrozenBaseline, seqs: list[np.ndarray], records, head: bool) -> None:
    x, lengths = pack_sequences(seqs)
    gold = run_baseline(model, x, lengths)
    assert len(records) == len(seqs)
    for b, rec in enumerate(records):
        assert np.array_equal(rec.readout, gold.readout[b]), f"sequence {b}"
        if head:
            assert np.array_equal(rec.logits, gold.logits[b]) and rec.cls == gold.classes[b]


def _check_cycles(dut: BaselineCore, seqs: list[np.ndarray], log: dict) -> None:
    """``cycles(N)`` exactly for every sequence whose output path was free when its readout was
    handed over (``docs/hw-interface.md``: an idle core); later ones only take longer."""
    first, prev_end = 0, -1
    for b, s in enumerate(seqs):
        start = log["in"][first]
        end = log["out"][(b + 1) * dut.n_words - 1]
        handover = start + len(s) * (1 + dut.schedule.element_cycles) + 1
        if prev_end < handover:
            assert end - start + 1 == dut.schedule.cycles(len(s)), f"sequence {b} (N={len(s)})"
        else:
            assert end - start + 1 >= dut.schedule.cycles(len(s)), f"sequence {b} (N={len(s)})"
        first += len(s)
        prev_end = end


@pytest.mark.parametrize("lanes,fanin", [(1, 1), (2, 3), (4, 4)])
def test_one_layer_exact_and_cycles(lanes, fanin):
    model = _model(1)
    seqs = _inputs(model, [1, 4, 2], seed=lanes)
    dut, records, log = _run(model, seqs, lanes=lanes, fanin=fanin)
    _check(model, seqs, records, head=False)
    _check_cycles(dut, seqs, log)


def test_two_layers_exact_and_cycles():
    model = _model(2, layers=2, H=4, D=2)
    seqs = _inputs(model, [3, 1, 2], seed=9)
    dut, records, log = _run(model, seqs, lanes=2, fanin=2)
    _check(model, seqs, records, head=False)
    _check_cycles(dut, seqs, log)


@pytest.mark.parametrize("hidden_head", [None, 3])
def test_head_in_hardware(hidden_head):
    model = _model(3, H=4, hidden_head=hidden_head)
    seqs = _inputs(model, [2, 5], seed=4)
    dut, records, log = _run(model, seqs, lanes=4, fanin=2, head=True)
    _check(model, seqs, records, head=True)
    _check_cycles(dut, seqs, log)


@pytest.mark.parametrize("layers", [1, 2])
def test_random_stalls_back_to_back(layers):
    model = _model(4 + layers, layers=layers, H=6, D=3)
    seqs = _inputs(model, [1, 3, 1, 2, 1], seed=layers)
    _, records, _ = _run(model, seqs, lanes=3, fanin=4, head=True, stall=0.35, seed=layers)
    _check(model, seqs, records, head=True)


def test_saturation_and_clipping_are_exercised():
    model = _model(6, H=4, cell_bits=7)
    seqs = _inputs(model, [6, 6], seed=12)
    x, lengths = pack_sequences(seqs)
    trace = run_baseline(model, x, lengths, trace=True).trace[0]
    assert (trace["g"] == 32).any() and (trace["g"] == -32).any() and (trace["f"] == 0).any()
    _, records, _ = _run(model, seqs, lanes=2, fanin=2)
    _check(model, seqs, records, head=False)
    model.layers[0].bias[: 2 * 4] += 4000  # f = i = Q: c grows by |g| every element
    gold = run_baseline(model, x, lengths, saturation=True)
    assert gold.saturation[0]["c"] > 0  # the 7-bit c register saturates
    _, records, _ = _run(model, seqs, lanes=2, fanin=2)
    _check(model, seqs, records, head=False)


def test_reset_mid_sequence_gives_clean_state():
    model = _model(7)
    seqs = _inputs(model, [2, 1], seed=3)
    _, records, _ = _run(model, seqs, lanes=2, fanin=2, reset_after=5)
    _check(model, seqs, records, head=False)


def test_corrupted_expectation_fails():
    model = _model(8)
    seqs = _inputs(model, [2], seed=1)
    _, records, _ = _run(model, seqs, lanes=4, fanin=3)
    x, lengths = pack_sequences(seqs)
    wrong = run_baseline(model, x, lengths).readout.copy()
    wrong[0, 1] += 1
    assert not np.array_equal(records[0].readout, wrong[0])
    with pytest.raises(AssertionError):
        _check(model, [seqs[0][:1]], records, head=False)  # the expectation of another input


def test_describe_and_knob_validation():
    model = _model(9, H=8, layers=2)
    dut = BaselineCore(model, lanes=4, fanin=8, head_in_hw=True)
    info = dut.describe()
    assert info["multipliers"] == {"mac_array": 128, "activation_coefficient": 20, "cell_and_hidden": 12,
                                   "fc_head": 1}
    assert info["cycles"]["per_element"] == 1 + dut.schedule.element_cycles
    assert info["knobs"]["lanes"] == 4
    assert {p["name"] for p in info["ports"]} >= {"i__payload", "o__payload", "clk", "rst"}
    for bad in ({"lanes": 3, "fanin": 2}, {"lanes": 0, "fanin": 2}, {"lanes": 2, "fanin": 9},
                {"lanes": 2, "fanin": 2, "mac_stages": 8}, {"lanes": 2, "fanin": 2, "act_stages": 0},
                {"lanes": 2, "fanin": 2, "act_stages": 5}):
        with pytest.raises(ValueError):
            BaselineCore(model, **bad)
    staged = BaselineCore(model, lanes=4, fanin=8, mac_stages=2, act_stages=2).describe()
    assert staged["knobs"]["mac_stages"] == staged["knobs"]["act_stages"] == 2
    assert staged["cycles"]["per_element"] == info["cycles"]["per_element"] + 2 * (1 + 3)  # 2 layers
    assert "+ 7))" in staged["cycles"]["formula"] and "+ 3))" in info["cycles"]["formula"]
    # (mac_stages, act_stages) → extra cycles per layer and element beyond one stage each, and V
    for mac_stages, act_stages, extra, overhead in [(2, 3, 1 + 6, 10), (3, 3, 2 + 6, 11), (4, 3, 3 + 6, 12),
                                                    (4, 4, 3 + 7, 13), (5, 4, 4 + 7, 14), (6, 4, 5 + 7, 15),
                                                    (7, 4, 6 + 7, 16)]:
        deepest = BaselineCore(model, lanes=4, fanin=8, mac_stages=mac_stages, act_stages=act_stages).describe()
        assert deepest["knobs"]["mac_stages"] == mac_stages
        assert deepest["cycles"]["per_element"] == info["cycles"]["per_element"] + 2 * extra  # 2 layers
        assert f"+ {overhead}))" in deepest["cycles"]["formula"]


STAGES = [(2, 1), (1, 2), (2, 2), (1, 3), (2, 3), (3, 1), (3, 3), (4, 1), (4, 3), (1, 4), (4, 4), (5, 4), (6, 4), (7, 4)]
"""(mac_stages, act_stages) beyond the default (1, 1)."""


@pytest.mark.parametrize("mac_stages,act_stages", STAGES)
@pytest.mark.parametrize("layers,lanes,fanin", [(1, 2, 4), (1, 1, 1), (2, 2, 2)])
def test_pipeline_stages_exact_and_cycles(layers, lanes, fanin, mac_stages, act_stages):
    """Bit-exact and cycle-exact with the extra stages; fanin = H = 4 makes a group's only recurrent
    chunk its rebase step and its last step (the bias address moves on right after it)."""
    model = _model(10 + layers, layers=layers, H=4, D=3)
    seqs = _inputs(model, [3, 1, 2], seed=lanes + fanin)
    dut, records, log = _run(model, seqs, lanes=lanes, fanin=fanin, mac_stages=mac_stages, act_stages=act_stages)
    assert dut.schedule.layer_overhead == 3 + (mac_stages - 1) + (7 if act_stages == 4 else 3 * (act_stages - 1))
    _check(model, seqs, records, head=False)
    _check_cycles(dut, seqs, log)


@pytest.mark.parametrize("layers,lanes,fanin,bank_depth,banks", [(1, 2, 2, 2, 4), (1, 1, 3, 8, 2), (2, 1, 3, 16, 2)])
def test_weight_rom_banks_exact_and_cycles(monkeypatch, layers, lanes, fanin, bank_depth, banks):
    """mac_stages = 7 with the weight ROM split into banks of 2 to 16 rows (512 in the product):
    consecutive steps read different banks, and the last bank is partly filled (12 rows in banks
    of 8, 28 in banks of 16)."""
    import snnhw.hw.baseline_core as baseline_core

    monkeypatch.setattr(baseline_core, "WEIGHT_ROM_BANK_DEPTH", bank_depth)
    model = _model(20 + layers, layers=layers, H=4, D=3)
    seqs = _inputs(model, [3, 2], seed=lanes + fanin)
    dut, records, log = _run(model, seqs, lanes=lanes, fanin=fanin, mac_stages=7, act_stages=4)
    assert -(-len(dut.weight_rom()) // bank_depth) == banks
    _check(model, seqs, records, head=False)
    _check_cycles(dut, seqs, log)


@pytest.mark.parametrize("mac_stages,act_stages", STAGES)
@pytest.mark.parametrize("hidden_head", [None, 3])
def test_pipeline_stages_head_in_hardware(hidden_head, mac_stages, act_stages):
    model = _model(3, H=4, hidden_head=hidden_head)
    seqs = _inputs(model, [2, 5], seed=4)
    dut, records, log = _run(model, seqs, lanes=4, fanin=2, head=True, mac_stages=mac_stages, act_stages=act_stages)
    _check(model, seqs, records, head=True)
    _check_cycles(dut, seqs, log)


@pytest.mark.parametrize("mac_stages,act_stages", [(2, 2), (2, 3), (3, 3), (4, 3), (4, 4), (5, 4)])
@pytest.mark.parametrize("layers", [1, 2])
def test_pipeline_stages_stalls_and_reset(layers, mac_stages, act_stages):
    """mac_stages 2 or 3, act_stages 2 or 3: back-to-back sequences under random stalls, and a reset
    mid-sequence (with operands, products and activations in flight) leaving a clean state."""
    model = _model(4 + layers, layers=layers, H=6, D=3)
    seqs = _inputs(model, [1, 3, 1, 2], seed=layers)
    _, records, _ = _run(model, seqs, lanes=3, fanin=4, head=True, stall=0.35, seed=layers,
                         mac_stages=mac_stages, act_stages=act_stages)
    _check(model, seqs, records, head=True)
    for reset_after in (4, 9):
        _, records, _ = _run(model, seqs[:2], lanes=3, fanin=2, reset_after=reset_after,
                             mac_stages=mac_stages, act_stages=act_stages)
        _check(model, seqs[:2], records, head=False)


@pytest.mark.parametrize("mac_stages,act_stages,ignored", [(2, 2, 3), (2, 3, 7), (3, 1, 4), (3, 3, 10)])
def test_pipeline_stages_corrupted_schedule_fails(monkeypatch, mac_stages, act_stages, ignored):
    """A schedule that ignores the extra stages (all of them; act_stages = 3: only the third,
    V = 7 as with act_stages = 2; mac_stages = 3: only the third MAC stage, V as with mac_stages
    = 2) fails the cycle check (the data still match)."""
    from snnhw.hw.schedule import BaselineSchedule

    model = _model(11, H=4, D=3)
    seqs = _inputs(model, [2], seed=1)
    dut, records, log = _run(model, seqs, lanes=2, fanin=4, mac_stages=mac_stages, act_stages=act_stages)
    assert dut.schedule.layer_overhead > ignored
    _check(model, seqs, records, head=False)
    monkeypatch.setattr(BaselineSchedule, "layer_overhead", property(lambda self: ignored))
    with pytest.raises(AssertionError, match="sequence 0"):
        _check_cycles(dut, seqs, log)


@pytest.mark.parametrize("layers,saturate", [(1, True), (2, False)])
def test_synthetic_models(layers, saturate):
    """Models with the quantizer's magnitudes (8-bit weights and activations, S = 16)."""
    seed = 3 if saturate else 2
    model = random_frozen_baseline(seed, input_size=5, hidden_size=8, num_layers=layers, num_classes=3,
                                   head_hidden=4, saturate=saturate)
    x, lengths = random_inputs(model, seed=seed, batch=3, n_max=4)
    seqs = [x[b, : lengths[b]] for b in range(len(lengths))]
    if saturate:
        assert run_baseline(model, x, lengths, saturation=True).saturation[0]["c"] > 0
    dut, records, log = _run(model, seqs, lanes=4, fanin=8 if layers == 1 else 3, head=True)
    _check(model, seqs, records, head=True)
    _check_cycles(dut, seqs, log)


def _clip_flags_direct(x: np.ndarray, m_pos: int, m_neg: int, shift: int, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
    y = (x * np.where(x >= 0, m_pos, m_neg)) >> shift
    return y > hi, y < lo


def test_clip_thresholds_equal_the_clip_comparisons():
    """Exhaustive over x for random coefficients, shifts and bounds (act_stages = 4 compares the
    multiplier's operand with these thresholds instead of comparing its product)."""
    rng = np.random.default_rng(5)
    x = np.arange(-(1 << 14), 1 << 14, dtype=np.int64)
    cases = [(1, 1, 0, 0, 0), (3, 5, 2, -7, 7), (255, 1, 8, -128, 128), (7, 7, 4, -64, 63)]
    cases += [(int(rng.integers(1, 300)), int(rng.integers(1, 300)), int(rng.integers(0, 10)),
               -int(rng.integers(0, 300)), int(rng.integers(0, 300))) for _ in range(40)]
    for m_pos, m_neg, shift, lo, hi in cases:
        x_hi, x_lo = clip_thresholds(m_pos, m_neg, shift, lo, hi)
        over, under = _clip_flags_direct(x, m_pos, m_neg, shift, lo, hi)
        assert np.array_equal(over, x >= x_hi), (m_pos, m_neg, shift, lo, hi)
        assert np.array_equal(under, x <= x_lo), (m_pos, m_neg, shift, lo, hi)
    for bad in ((0, 1, 0, -1, 1), (1, -1, 0, -1, 1), (1, 1, 0, 1, 2), (1, 1, 0, -2, -1)):
        assert clip_thresholds(*bad) is None
