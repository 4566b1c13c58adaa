"""Toggle counting and SAIF output from FST (Icarus) / VCD (Verilator) waveforms."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from snnhw.hw.stream_io import output_word_width, unpack_output_word
from snnhw.quant.synthetic import random_frozen_spiking
from snnhw.sim.runner import simulate
from snnhw.sim.stimulus import split_output_payload
from snnhw.sim.waves import activity_report, count_activity

from simfixtures import HERE, seed_for
from test_cocotb_tb import echo_stimulus


def test_testbench_decoder_agrees_with_stream_io(request: pytest.FixtureRequest) -> None:
    seed = seed_for(request, 21)
    rng = np.random.default_rng(seed)
    for head in (False, True):
        model = random_frozen_spiking(seed, input_size=3, hidden_size=4, T=3)
        width = output_word_width(model, head)
        for raw in rng.integers(0, 1 << (width + 1), size=200).tolist():
            data, last = split_output_payload(raw, width)
            assert (data, bool(last)) == unpack_output_word(model, raw, head)


@pytest.mark.sim
def test_toggle_counts_and_saif(tmp_path: Path, simulator: str, request: pytest.FixtureRequest) -> None:
    seed = seed_for(request, 31)
    run = simulate(echo_stimulus(seed, [2, 3]), [HERE / "echo_core.v"], tmp_path, sim=simulator, waves=True)
    assert run.passed and run.sim.waves is not None
    assert run.sim.waves.suffix == (".fst" if simulator == "icarus" else ".vcd")
    act = count_activity(run.sim.waves)
    by_name = {s.name: s for s in act.signals}
    total_cycles = sum(m["sim_cycles"] for m in run.report["modes"])
    # the clock toggles twice a cycle; every simulated cycle (plus the resets) is in the dump
    assert act.clock_cycles >= total_cycles
    assert by_name["clk"].toggles in (2 * act.clock_cycles, 2 * act.clock_cycles - 1)
    # valid rises and falls around each word: at least once per element transferred
    assert by_name["i__valid"].toggles > 0 and by_name["o__payload"].width == 9
    bit = by_name["o__payload"].bits[0]
    assert bit.t0 + bit.t1 + bit.tx == act.duration
    summary = activity_report(run.sim.waves, tmp_path / "act", design="echo_core")
    saif = Path(summary["saif"]).read_text()
    assert saif.startswith("(SAIFILE\n(SAIFVERSION \"2.0\")")
    assert f"(DURATION {act.duration})" in saif
    m = re.search(r"\(clk \(T0 (\d+)\) \(T1 (\d+)\) \(TX (\d+)\) \(TC (\d+)\)", saif)
    assert m is not None and int(m.group(4)) == by_name["clk"].toggles
    assert "o__payload\\[8\\]" in saif
    assert saif.count("(") == saif.count(")")
