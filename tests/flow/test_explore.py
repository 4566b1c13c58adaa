"""``snnhw explore``: grid points, cycles from the schedules, cost measures, Pareto and iso-resource choices."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from snnhw.cli import main
from snnhw.flow.explore import PARTS, cost_of, iso_resource_table, pareto, product_grid
from snnhw.hw.knobs import SpikingKnobs
from snnhw.hw.registry import core_spec
from snnhw.quant import golden
from snnhw.quant.frozen_io import save_frozen
from snnhw.quant.synthetic import random_frozen_baseline, random_frozen_spiking, random_inputs


def _models(tmp_path: Path) -> tuple[Path, Path]:
    spk = save_frozen(tmp_path / "s.snnhw", random_frozen_spiking(1, input_size=3, hidden_size=8, T=2,
                                                                   encoding="rate"))
    base = save_frozen(tmp_path / "b.snnhw", random_frozen_baseline(1, input_size=3, hidden_size=8))
    return spk, base


def test_pareto_and_costs() -> None:
    assert pareto([(3, 1), (1, 5), (2, 5), (2, 2), (4, 0.5)]) == [(1, 5), (2, 2), (3, 1), (4, 0.5)]
    part = PARTS["xc7k325t"]
    fraction, binding, lut_eq = cost_of({"LUT": 2038, "FF": 100, "DSP48E1": 84, "RAMB18E1": 2}, part, 100.0)
    assert binding == "DSP48E1" and fraction == pytest.approx(0.1)
    assert lut_eq == pytest.approx(2038 + 100 * 84 + 576 * 1)
    assert product_grid({"lanes": [2, 4], "fanin": [1, 2, 3]})[:2] == [{"fanin": 1, "lanes": 2},
                                                                       {"fanin": 1, "lanes": 4}]


def test_iso_resource_picks_the_best_point_that_costs_no_more() -> None:
    def pt(core: str, cycles: float, energy: float, cost: float, lut_eq: float, mode: str = "dense") -> dict:
        return {"core": core, "mode": mode, "knobs": {"lanes": cycles}, "cycles_mean": cycles, "energy_pj": energy,
                "cost_fraction": cost, "lut_equivalents": lut_eq}

    points = [pt("spiking", 100, 50, 0.01, 1000), pt("spiking", 40, 80, 0.02, 3000), pt("spiking", 10, 5, 0.5, 9e4),
              pt("baseline", 80, 200, 0.02, 2000, "mac")]
    (row,) = iso_resource_table(points, "spiking")
    assert row["cost_fraction"]["fastest"]["cycles_mean"] == 40  # 0.5 costs more: excluded
    assert row["cost_fraction"]["fastest"]["latency_ratio"] == pytest.approx(2.0)
    assert row["cost_fraction"]["most_efficient"]["energy_pj"] == 50
    assert row["lut_equivalents"]["fastest"]["cycles_mean"] == 100  # 3000 LUT-eq > 2000: excluded
    assert row["lut_equivalents"]["most_efficient"]["energy_ratio"] == pytest.approx(4.0)


def test_explore_cycles_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spk, base = _models(tmp_path)
    out = tmp_path / "ex"
    args = ["explore", "--golden", str(spk), "--baseline", str(base), "--no-synth", "--sequences", "3",
            "--length", "4", "--lanes", "2", "3", "--modes", "dense", "event-engine", "-o", str(out), "--no-progress"]
    assert main(args) == 0
    doc = json.loads((out / "explore.json").read_text())
    kinds = [(p["core"], p["mode"]) for p in doc["points"]]
    # spiking: lanes 2, 3 × engines 1, T × 2 modes; baseline: lanes 3 does not divide H = 8 (skipped)
    assert kinds.count(("spiking", "dense")) == 4 and kinds.count(("spiking", "event-engine")) == 4
    assert kinds.count(("baseline", "mac")) == 1
    # cycles are the schedules' on the golden spikes of the same sequences
    model = random_frozen_spiking(1, input_size=3, hidden_size=8, T=2, encoding="rate")
    x, lengths = random_inputs(model, 0, 3, 4, vary_lengths=False)
    res = golden.run_spiking(model, x, lengths, trace=True)
    u = golden.rate_encode(model, x)
    event = next(p for p in doc["points"] if p["mode"] == "event-engine")
    sched = core_spec("spiking").schedule_of(model, SpikingKnobs(**{k: v for k, v in event["knobs"].items()}))
    cycles = [sched.sequence_cycles(4, u[b], [layer["h"][b] for layer in res.trace]) for b in range(3)]
    assert event["cycles_mean"] == pytest.approx(np.mean(cycles)) and event["cycles_max"] == max(cycles)
    assert all(p["resources"] is None and p["energy_pj"] > 0 for p in doc["points"])
    assert (out / "explore.md").is_file() and len(list((out / "points").iterdir())) == 9
    # a rerun resumes from the finished points
    assert main(args) == 0
    assert json.loads((out / "explore.json").read_text())["points"] == doc["points"]
    capsys.readouterr()
    assert main(["explore", "--baseline", str(base), "--no-synth", "-o", str(tmp_path / "x")]) == 2
    assert "needs --golden" in capsys.readouterr().err


@pytest.mark.yosys
def test_explore_with_synthesis(tmp_path: Path) -> None:
    """Each point synthesised (identical RTL once), costs from the part, the DSP exchange rate
    measured with -nodsp, the plots and the iso-resource table."""
    from snnhw.flow.tools import yosys_missing

    if yosys_missing():
        pytest.skip(yosys_missing())
    spk, base = _models(tmp_path)
    out = tmp_path / "ex"
    assert main(["explore", "--golden", str(spk), "--baseline", str(base), "--sequences", "2", "--length", "3",
                 "--lanes", "2", "--engines", "1", "--modes", "event-engine", "-o", str(out), "--no-progress"]) == 0
    doc = json.loads((out / "explore.json").read_text())
    spiking, baseline = doc["points"]
    assert spiking["resources"]["LUT"] > 0 and spiking["resources"]["DSP48E1"] == 0
    assert baseline["resources"]["DSP48E1"] > 0
    assert 0 < spiking["cost_fraction"] < 1 and spiking["cost_binding"] == "LUT"
    assert doc["exchange_rates"]["lut_per_dsp"] > 0
    assert baseline["lut_equivalents"] == pytest.approx(
        baseline["resources"]["LUT"] + doc["exchange_rates"]["lut_per_dsp"] * baseline["resources"]["DSP48E1"])
    assert doc["iso_resource"] and (out / "latency_vs_cost.png").read_bytes()[:4] == b"\x89PNG"
