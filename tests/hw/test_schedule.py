"""The pure schedules: orderings the event modes must keep, bounds, and the published parameters."""

from __future__ import annotations

import numpy as np
import pytest

from snnhw.hw.knobs import SpikingKnobs
from snnhw.hw.registry import core_spec
from snnhw.quant import golden
from snnhw.quant.synthetic import random_frozen_spiking, random_inputs

SPIKING = core_spec("spiking")


@pytest.mark.parametrize("seed,T,layers,fanin,engines", [(0, 4, 1, 3, 2), (1, 2, 2, 2, 2), (2, 3, 1, 4, 1)])
def test_event_modes_are_ordered_and_bounded(seed: int, T: int, layers: int, fanin: int, engines: int) -> None:
    """On golden spike traces: queue ≤ engine ≤ shared ≤ dense cycles, and no schedule beats the
    ideal bound (useful accumulations ÷ adders)."""
    model = random_frozen_spiking(seed, input_size=5, hidden_size=6, T=T, num_layers=layers, encoding="rate")
    x, lengths = random_inputs(model, seed, 3, 6, vary_lengths=False)
    res = golden.run_spiking(model, x, lengths, trace=True)
    u = golden.rate_encode(model, x)
    for b in range(3):
        h = [layer["h"][b] for layer in res.trace]
        cycles = {}
        for mode in ("dense", "shared", "engine", "queue"):
            knobs = SpikingKnobs(lanes=2, fanin=fanin, engines=engines, input_mode="rate",
                                 event_driven=mode != "dense", event_mode="engine" if mode == "dense" else mode)
            sched = SPIKING.schedule_of(model, knobs)
            cycles[mode] = sched.sequence_cycles(6, u[b], h)
            assert sched.ideal_cycles(u[b], h) <= cycles[mode]
            assert 0 < sched.utilisation(u[b], h, cycles[mode]) <= 1
        assert cycles["queue"] <= cycles["engine"] <= cycles["shared"] <= cycles["dense"], cycles


def test_queue_counts_the_fullest_bank() -> None:
    """One layer, T = 1, one element, F = 3 (chunk 0: synapses 0-2, chunk 1: 3-5; bank f holds
    synapses f and f + 3): the queue takes the fullest bank's spikes, the engine mode the
    chunks holding any spike."""
    model = random_frozen_spiking(3, input_size=6, hidden_size=2, T=1, encoding="rate")

    def counts(mode: str, spikes: list[int]) -> int:
        sched = SPIKING.schedule_of(model, SpikingKnobs(lanes=2, fanin=3, engines=1, input_mode="spikes",
                                                        event_driven=True, event_mode=mode))
        u = np.zeros((1, 1, 6), dtype=np.int64)
        u[0, 0, spikes] = 1
        return sched.event_chunk_counts(u, [np.zeros((1, 1, 2), dtype=np.int64)])[0][0][0][0]

    assert (counts("queue", [0, 4]), counts("engine", [0, 4])) == (1, 2)  # two banks, one spike each
    assert (counts("queue", [0, 3]), counts("engine", [0, 3])) == (2, 2)  # bank 0 holds both
    assert (counts("queue", [0, 1, 2]), counts("engine", [0, 1, 2])) == (1, 1)
    assert (counts("queue", []), counts("engine", [])) == (0, 0)


def test_queue_with_several_readers_counts_the_fullest_bank_over_its_readers() -> None:
    """F = 6 synapses per beat as B = F/R banks of R readers (bank b: synapses m·B + b): a group
    takes ⌈the fullest bank's spikes / R⌉ beats; and the knob is refused where it has no meaning."""
    model = random_frozen_spiking(3, input_size=12, hidden_size=2, T=1, encoding="rate")

    def counts(readers: int, spikes: list[int]) -> int:
        sched = SPIKING.schedule_of(model, SpikingKnobs(lanes=2, fanin=6, engines=1, input_mode="spikes",
                                                        event_driven=True, event_mode="queue",
                                                        bank_readers=readers))
        u = np.zeros((1, 1, 12), dtype=np.int64)
        u[0, 0, spikes] = 1
        return sched.event_chunk_counts(u, [np.zeros((1, 1, 2), dtype=np.int64)])[0][0][0][0]

    assert [counts(r, [0, 6]) for r in (1, 2, 3, 6)] == [2, 1, 1, 1]  # both in bank 0 whatever B
    assert [counts(r, [0, 2, 4, 6, 8, 10]) for r in (1, 2, 3, 6)] == [2, 1, 2, 1]  # B = 3: 2 per bank; B = 2: 6 in bank 0
    assert [counts(r, [1, 3, 5, 7]) for r in (1, 2, 3, 6)] == [2, 1, 2, 1]  # B = 6: 1 and 7 in bank 1; B = 2: 4 in bank 1
    assert [counts(r, []) for r in (1, 2, 3, 6)] == [0, 0, 0, 0]
    for bad in (dict(bank_readers=4), dict(bank_readers=2, event_mode="engine"),
                dict(bank_readers=2, event_driven=False)):
        knobs = dict(lanes=2, fanin=6, engines=1, input_mode="spikes", event_driven=True, event_mode="queue") | bad
        with pytest.raises(ValueError, match="bank_readers"):
            SPIKING.schedule_of(model, SpikingKnobs(**knobs))


def test_cycle_parts_of_a_projection_bound_core() -> None:
    """Direct input, H = 4, D = 6, T = 2, L = F = 2, N = 3 (K = 4 diagonal steps): the projection
    takes X = ⌈4/2⌉·6 + 1 + 1 = 14 cycles, longer than a step (B + 4), so each of the first N − 1
    steps waits X + 2 − (B + 4); the first projection, the 4 output words and 3 cycles are fixed."""
    model = random_frozen_spiking(3, input_size=6, hidden_size=4, T=2, encoding="direct")
    for engines, beats, waits in ((2, 4, 16 - 8), (1, 8, 16 - 12)):  # B = ⌈T/E⌉·G·C, G = C = 2
        sched = SPIKING.schedule_of(model, SpikingKnobs(lanes=2, fanin=2, engines=engines))
        parts = sched.cycle_parts(3)
        assert parts == {"beats": 4 * beats, "drain": 4 * 4, "projection_waits": 2 * waits, "fixed": 14 + 4 + 3}
        assert sum(parts.values()) == sched.cycles(3)


def test_weight_reads_count_every_issued_word_once_per_issue_group() -> None:
    """Direct input, H = 4, L = F = 2 (G = 2 groups, banks {0, 2} and {1, 3}), T = E = 2, N = 2:
    3 diagonal steps; only h(0, 0) = [1, 0, 0, 0] (read by slot 0 in step 1) and
    h(0, 1) = [0, 0, 1, 1] (slot 1, step 2) feed a cell. Every issue group issues
    max(1, fullest bank) = 1 beat per group and step, each reading 4·L·F = 16 weights."""
    model = random_frozen_spiking(4, input_size=3, hidden_size=4, T=2)
    h = np.zeros((2, 2, 4), dtype=np.int64)
    h[0, 0, 0] = 1
    h[0, 1, 2:] = 1

    def reads(mode: str) -> int:
        sched = SPIKING.schedule_of(model, SpikingKnobs(lanes=2, fanin=2, engines=2, event_driven=mode != "dense",
                                                        event_mode="engine" if mode == "dense" else mode))
        return sched.weight_reads(2, None, [h])[0]

    assert reads("queue") == 16 * 3 * 2 * 2          # 3 steps × 2 engines (own reads) × 2 groups
    assert reads("queue-shared") == 16 * 3 * 1 * 2   # one broadcast read per group and step
    assert reads("dense") == 16 * 3 * 2 * 2          # P·G·C = 1·2·2 words per step
    h[0, 0, 2] = 1                                   # bank 0 of slot 0 now holds two spikes in step 1
    assert reads("queue") == 16 * 2 * (3 * 2 + 1)
    assert reads("queue-shared") == 16 * 2 * (3 + 1)


@pytest.mark.parametrize("mac_stages,act_stages,overhead",
                         [(1, 1, 3), (2, 1, 4), (1, 2, 6), (2, 2, 7), (1, 3, 9), (2, 3, 10), (3, 1, 5),
                          (3, 2, 8), (3, 3, 11)])
def test_baseline_overhead_follows_the_stages(mac_stages: int, act_stages: int, overhead: int) -> None:
    """V = 3 + (mac_stages − 1) + 3·(act_stages − 1) cycles per layer and element, in the count,
    the formula text and the published parameters (which rebuild the schedule)."""
    from dataclasses import fields

    from snnhw.hw.knobs import BaselineKnobs
    from snnhw.hw.schedule import BaselineLayer, BaselineSchedule
    from snnhw.quant.synthetic import random_frozen_baseline

    model = random_frozen_baseline(0, input_size=5, hidden_size=8, num_layers=2)
    base = BaselineSchedule.from_model(model, BaselineKnobs(lanes=4, fanin=3))
    sched = BaselineSchedule.from_model(model, BaselineKnobs(lanes=4, fanin=3, mac_stages=mac_stages,
                                                             act_stages=act_stages))
    assert sched.layer_overhead == overhead
    assert sched.cycles(5) - base.cycles(5) == 5 * 2 * (overhead - 3)  # N = 5, two layers
    assert sched.params()["layer_overhead"] == overhead and f" + {overhead})" in sched.formula()
    params = {k: v for k, v in sched.params().items() if k in {f.name for f in fields(BaselineSchedule)}}
    params["layers"] = tuple(BaselineLayer(**layer) for layer in params["layers"])
    assert BaselineSchedule(**params) == sched
