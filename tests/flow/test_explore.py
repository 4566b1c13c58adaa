"""``snnhw explore``: grid points, cycles from the schedules, cost measures, Pareto and iso-resource choices."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from snnhw.cli import main
from snnhw.flow import explore
from snnhw.flow.explore import (CAPACITY_LUTS_PER_BRAM36, PARTS, Point, bram_exchange_rate, cost_of,
                                iso_resource_table, pareto, product_grid)
from snnhw.hw.knobs import SpikingKnobs
from snnhw.hw.registry import core_spec
from snnhw.quant import golden
from snnhw.quant.frozen_io import load_frozen, save_frozen
from snnhw.quant.synthetic import random_frozen_baseline, random_frozen_spiking, random_inputs


def _models(tmp_path: Path, input_size: int = 3, hidden_size: int = 8) -> tuple[Path, Path]:
    spk = save_frozen(tmp_path / "s.snnhw", random_frozen_spiking(1, input_size=input_size, hidden_size=hidden_size,
                                                                   T=2, encoding="rate"))
    base = save_frozen(tmp_path / "b.snnhw", random_frozen_baseline(1, input_size=input_size, hidden_size=hidden_size))
    return spk, base


def test_pareto_and_costs() -> None:
    assert pareto([(3, 1), (1, 5), (2, 5), (2, 2), (4, 0.5)]) == [(1, 5), (2, 2), (3, 1), (4, 0.5)]
    part = PARTS["xc7k325t"]
    fraction, binding, lut_eq = cost_of({"LUT": 2038, "FF": 100, "DSP48E1": 84, "RAMB18E1": 2}, part, 100.0)
    assert binding == "DSP48E1" and fraction == pytest.approx(0.1)
    assert lut_eq == pytest.approx(2038 + 100 * 84 + 576 * 1)  # the capacity rate by default
    assert cost_of({"LUT": 2038, "LUTRAM": 62, "RAMB36E1": 1, "RAMB18E1": 1}, part, 100.0, 300.0)[2] == \
        pytest.approx(2038 + 62 + 300 * 1.5)
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
    assert doc["exchange_rates"]["lut_per_dsp"] is None and doc["exchange_rates"]["lut_per_bram36"] is None
    assert (out / "explore.md").is_file() and len(list((out / "points").iterdir())) == 9
    # a rerun resumes from the finished points
    assert main(args) == 0
    assert json.loads((out / "explore.json").read_text())["points"] == doc["points"]
    capsys.readouterr()
    assert main(["explore", "--baseline", str(base), "--no-synth", "-o", str(tmp_path / "x")]) == 2
    assert "needs --golden" in capsys.readouterr().err


def test_bank_readers_are_swept_for_the_queue_modes_only(tmp_path: Path) -> None:
    """``--bank-readers 1 2 4``: the queue modes get each R dividing the point's fanin (fanin 2:
    R = 1, 2), the other modes one reader; an R = 2 point's cycles are its own schedule's."""
    spk, base = _models(tmp_path)
    out = tmp_path / "ex"
    assert main(["explore", "--golden", str(spk), "--no-synth", "--sequences", "3", "--length", "4",
                 "--lanes", "2", "--engines", "1", "--modes", "event-engine", "event-queue",
                 "--bank-readers", "1", "2", "4", "-o", str(out), "--no-progress"]) == 0
    doc = json.loads((out / "explore.json").read_text())
    got = sorted((p["mode"], p["knobs"]["bank_readers"]) for p in doc["points"])
    assert got == [("event-engine", 1), ("event-queue", 1), ("event-queue", 2)]
    model = random_frozen_spiking(1, input_size=3, hidden_size=8, T=2, encoding="rate")
    x, lengths = random_inputs(model, 0, 3, 4, vary_lengths=False)
    res = golden.run_spiking(model, x, lengths, trace=True)
    u = golden.rate_encode(model, x)
    for readers in (1, 2):
        point = next(p for p in doc["points"] if p["mode"] == "event-queue" and p["knobs"]["bank_readers"] == readers)
        sched = core_spec("spiking").schedule_of(model, SpikingKnobs(**point["knobs"]))
        cycles = [sched.sequence_cycles(4, u[b], [layer["h"][b] for layer in res.trace]) for b in range(3)]
        assert point["cycles_mean"] == pytest.approx(np.mean(cycles))


def test_projection_narrowing_is_swept_for_the_lanes_it_divides(tmp_path: Path) -> None:
    """``--proj-narrowing 1 2 4`` on a direct-input model: lanes 4 gets proj_lanes 4 (the
    default), 2 and 1, lanes 2 only 2 and 1; a narrower projection lengthens a projection-bound
    sequence, and each point's cycles are its own schedule's."""
    spk = save_frozen(tmp_path / "d.snnhw", random_frozen_spiking(2, input_size=7, hidden_size=8, T=2))
    out = tmp_path / "ex"
    assert main(["explore", "--golden", str(spk), "--no-synth", "--sequences", "2", "--length", "3",
                 "--lanes", "2", "4", "--engines", "1", "--modes", "dense", "--proj-narrowing", "1", "2", "4",
                 "-o", str(out), "--no-progress"]) == 0
    doc = json.loads((out / "explore.json").read_text())
    got = sorted((p["knobs"]["lanes"], p["knobs"].get("proj_lanes")) for p in doc["points"])
    assert got == [(2, 1), (2, 2), (4, 1), (4, 2), (4, 4)]
    model = load_frozen(spk)
    x, lengths = random_inputs(model, 0, 2, 3, vary_lengths=False)
    by_lanes = {}
    for point in doc["points"]:
        sched = core_spec("spiking").schedule_of(model, SpikingKnobs(**point["knobs"]))
        assert point["cycles_mean"] == sched.cycles(3)
        by_lanes[point["knobs"]["lanes"], point["knobs"]["proj_lanes"]] = point["cycles_mean"]
    assert by_lanes[4, 4] < by_lanes[4, 2] < by_lanes[4, 1]
    assert explore.knob_text(next(p for p in doc["points"] if p["knobs"]["proj_lanes"] == 4)["knobs"], "dense") \
        == "lanes=4, fanin=4, engines=1"


def test_the_queue_grid_of_build_budget() -> None:
    """``snnhw build --explore-grid queue``: the shared spike queue at lanes 4/8/16, fanin 4, one
    engine, 1/2/4 readers per bank, full- and half-width projection (18 points, each a valid
    knob set); the baseline at lanes 1–8, fanin 4."""
    models = {"spiking": random_frozen_spiking(2, input_size=7, hidden_size=16, T=4),
              "baseline": random_frozen_baseline(1, input_size=7, hidden_size=16)}
    grid = explore.build_grid(models, "queue")
    spiking = grid["spiking"]
    assert len(spiking) == 18
    assert {(p["lanes"], p.get("bank_readers", 1), p.get("proj_lanes", p["lanes"])) for p in spiking} == {
        (lane, r, lane // s) for lane in (4, 8, 16) for r in (1, 2, 4) for s in (1, 2)}
    assert all(p["fanin"] == 4 and p["engines"] == 1 and p["event_mode"] == "queue-shared" for p in spiking)
    for point in spiking:
        core_spec("spiking").schedule_of(models["spiking"], SpikingKnobs(**point))  # raises for bad knobs
    assert grid["baseline"] == [{"lanes": lane, "fanin": 4} for lane in (1, 2, 4, 8)]


@pytest.mark.yosys
def test_explore_with_synthesis(tmp_path: Path) -> None:
    """Each point synthesised (identical RTL once), costs from the part, the DSP exchange rate
    measured with -nodsp, the plots and the iso-resource table."""
    from snnhw.flow.tools import yosys_missing

    if yosys_missing():
        pytest.skip(yosys_missing())
    spk, base = _models(tmp_path, input_size=2, hidden_size=4)  # the smallest cores: three Yosys runs
    out = tmp_path / "ex"
    assert main(["explore", "--golden", str(spk), "--baseline", str(base), "--sequences", "2", "--length", "3",
                 "--lanes", "1", "--fanin", "1", "--engines", "1", "--modes", "event-engine", "-o", str(out),
                 "--no-progress"]) == 0
    doc = json.loads((out / "explore.json").read_text())
    spiking, baseline = doc["points"]
    assert spiking["resources"]["LUT"] > 0 and spiking["resources"]["DSP48E1"] == 0
    assert baseline["resources"]["DSP48E1"] > 0
    assert 0 < spiking["cost_fraction"] < 1 and spiking["cost_binding"] == "LUT"
    assert doc["exchange_rates"]["lut_per_dsp"] > 0
    assert baseline["lut_equivalents"] == pytest.approx(  # c is in LUT RAM, no block RAM at this size
        baseline["resources"]["LUT"] + baseline["resources"]["LUTRAM"]
        + doc["exchange_rates"]["lut_per_dsp"] * baseline["resources"]["DSP48E1"])
    assert baseline["resources"]["LUTRAM"] > 0 and baseline["resources"]["RAMB18E1"] + baseline["resources"]["RAMB36E1"] == 0
    assert doc["iso_resource"] and (out / "latency_vs_cost.png").read_bytes()[:4] == b"\x89PNG"


def _synthesised(core: str, lanes: int, resources: dict[str, int], sha: str) -> Point:
    """A point as the explorer holds it after synthesis (resources only; the figures do not matter)."""
    return Point(core=core, mode="mac" if core == "baseline" else "dense", knobs={"lanes": lanes}, key=sha[:16],
                 units=lanes, unit_name="adders", cycles_mean=100.0, cycles_max=100, utilisation_mean=0.5,
                 rtl_sha256=sha, resources={"LUT": 0, "LUTRAM": 0, "FF": 0, "DSP48E1": 0, "RAMB18E1": 0,
                                            "RAMB36E1": 0, **resources})


def _fake_nobram(monkeypatch: pytest.MonkeyPatch, resources: dict[str, int]) -> list[dict[str, Any]]:
    """Replace the explorer's Yosys run by one returning ``resources``; returns the calls it gets."""
    calls: list[dict[str, Any]] = []

    def synth_point(rtl: Path, top: str, work: Path, *, nodsp: bool = False, nobram: bool = False) -> dict:
        calls.append({"rtl": rtl, "top": top, "work": work, "nodsp": nodsp, "nobram": nobram})
        return {"resources": {"LUT": 0, "LUTRAM": 0, "RAMB18E1": 0, "RAMB36E1": 0, **resources}, "synth_seconds": 0}

    monkeypatch.setattr(explore, "synth_point", synth_point)
    return calls


def test_bram_rate_is_measured_with_nobram_on_the_point_with_most_bram(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """r_BRAM = (LUT + LUTRAM with -nobram − the point's) ÷ BRAM36 removed, on the point with the
    most BRAM36 (a RAMB18E1 is half of one: 5 RAMB18E1 = 2.5 < 3 RAMB36E1)."""
    points = [_synthesised("spiking", 2, {"LUT": 4000, "RAMB18E1": 5}, "a" * 64),
              _synthesised("baseline", 2, {"LUT": 500, "LUTRAM": 100, "RAMB36E1": 3, "DSP48E1": 8}, "b" * 64),
              _synthesised("spiking", 4, {"LUT": 9000}, "c" * 64)]
    calls = _fake_nobram(monkeypatch, {"LUT": 1900, "LUTRAM": 200})
    rates = bram_exchange_rate(points, tmp_path)
    assert calls == [{"rtl": tmp_path / "rtl" / f"{'b' * 16}.v", "top": core_spec("baseline").top,
                      "work": tmp_path / "synth" / f"{'b' * 16}-nobram", "nodsp": False, "nobram": True}]
    assert rates["lut_per_bram36"] == pytest.approx((1900 + 200 - 600) / 3)  # 500, LUTRAM sites counted
    assert rates["lut_per_bram36_measured"] is True
    assert "baseline point {'lanes': 2}: 600 LUT + 3 BRAM36, with -nobram 2100 LUT + 0 BRAM36" \
        in rates["lut_per_bram36_source"]
    # block RAM left by -nobram: the LUTs per BRAM36 removed
    _fake_nobram(monkeypatch, {"LUT": 1600, "RAMB18E1": 1})
    assert bram_exchange_rate(points, tmp_path)["lut_per_bram36"] == pytest.approx((1600 - 600) / 2.5)


def test_bram_rate_falls_back_to_capacity(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing to measure (no block RAM; -nobram removes none; no LUT added): the capacity rate, saying why."""
    calls = _fake_nobram(monkeypatch, {"LUT": 5000})
    none = bram_exchange_rate([_synthesised("spiking", 2, {"LUT": 4000, "DSP48E1": 4}, "a" * 64)], tmp_path)
    assert calls == [] and none["lut_per_bram36"] == CAPACITY_LUTS_PER_BRAM36 == 576
    assert none["lut_per_bram36_measured"] is False and "no point uses block RAM" in none["lut_per_bram36_source"]
    points = [_synthesised("spiking", 2, {"LUT": 4000, "RAMB36E1": 2}, "a" * 64)]
    _fake_nobram(monkeypatch, {"LUT": 4100, "RAMB36E1": 2})
    kept = bram_exchange_rate(points, tmp_path)
    assert kept["lut_per_bram36"] == 576 and kept["lut_per_bram36_measured"] is False
    assert "-nobram removed no BRAM36" in kept["lut_per_bram36_source"]
    _fake_nobram(monkeypatch, {"LUT": 3900, "FF": 9000})
    fewer = bram_exchange_rate(points, tmp_path)
    assert fewer["lut_per_bram36"] == 576 and "-nobram added no LUT" in fewer["lut_per_bram36_source"]


def test_lut_equivalents_use_the_measured_bram_rate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``snnhw explore`` with Yosys replaced by fixed figures: r_DSP and r_BRAM measured from them,
    every point's LUT-eq at the measured rates (at 576 per BRAM36 beside it), the iso-resource
    table and explore.md on the measured LUT-eq."""
    import snnhw.flow.yosys

    spiking_top = core_spec("spiking").top
    figures = {  # per top: (the point, with -nodsp, with -nobram)
        spiking_top: ({"LUT": 3000, "LUTRAM": 64, "FF": 900, "RAMB18E1": 2, "RAMB36E1": 1},
                      None, {"LUT": 3700, "LUTRAM": 64, "FF": 950}),  # r_BRAM = 700 / 2 = 350
        core_spec("baseline").top: ({"LUT": 800, "FF": 400, "DSP48E1": 20}, {"LUT": 3800, "FF": 400}, None)}

    def synth_point(rtl: Path, top: str, work: Path, *, nodsp: bool = False, nobram: bool = False) -> dict:
        res = figures[top][1 if nodsp else 2 if nobram else 0]
        return {"resources": {"LUT": 0, "LUTRAM": 0, "FF": 0, "DSP48E1": 0, "RAMB18E1": 0, "RAMB36E1": 0, **res},
                "synth_seconds": 0.0}

    monkeypatch.setattr(explore, "synth_point", synth_point)
    monkeypatch.setattr(snnhw.flow.yosys, "yosys_missing", lambda: None)
    spk, base = _models(tmp_path)
    out = tmp_path / "ex"
    assert main(["explore", "--golden", str(spk), "--baseline", str(base), "--sequences", "2", "--length", "3",
                 "--lanes", "2", "--engines", "1", "--modes", "dense", "-o", str(out), "--no-progress"]) == 0
    doc = json.loads((out / "explore.json").read_text())
    rates = doc["exchange_rates"]
    assert rates["lut_per_dsp"] == pytest.approx(150.0) and rates["lut_per_bram36"] == pytest.approx(350.0)
    assert rates["lut_per_bram36_measured"] is True and rates["lut_per_bram36_capacity"] == 576
    spiking, baseline = doc["points"]
    assert spiking["lut_equivalents"] == pytest.approx(3064 + 350 * 2)
    assert spiking["lut_equivalents_capacity"] == pytest.approx(3064 + 576 * 2)
    assert baseline["lut_equivalents"] == baseline["lut_equivalents_capacity"] == pytest.approx(800 + 150 * 20)
    # 3,764 LUT-eq ≤ the baseline's 3,800 at the measured rate (4,216 > 3,800 at 576 per BRAM36)
    (row,) = doc["iso_resource"]
    assert row["lut_equivalents"]["fastest"]["lut_equivalents"] == pytest.approx(3764)
    md = (out / "explore.md").read_text()
    assert "150.0·DSP48E1" in md and "350.0·BRAM36" in md and "with -nobram 3764 LUT + 0 BRAM36" in md
    assert "| 3764 | 4216 |" in md


def test_a_cached_point_is_synthesised_again_when_its_rtl_changes(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A rerun reuses a finished point's resources only while the generator writes the same RTL for
    it: a point whose recorded RTL hash differs (a generator changed since) is synthesised again."""
    calls = _fake_nobram(monkeypatch, {"LUT": 1234, "FF": 10, "DSP48E1": 2, "RAMB36E1": 1})
    monkeypatch.setattr("snnhw.flow.yosys.yosys_missing", lambda: None)
    spk, base = _models(tmp_path)
    out = tmp_path / "ex"
    args = ["explore", "--golden", str(spk), "--baseline", str(base), "--sequences", "2", "--length", "3",
            "--lanes", "2", "--engines", "1", "--modes", "event-engine", "-o", str(out), "--no-progress"]

    def point_runs() -> list[Path]:
        return [c["rtl"] for c in calls if not (c["nodsp"] or c["nobram"])]

    assert main(args) == 0
    first = point_runs()
    assert len(first) == 2  # the spiking and the baseline point
    assert main(args) == 0
    assert point_runs() == first  # resumed: nothing synthesised again
    stale = next(p for p in (out / "points").iterdir() if json.loads(p.read_text())["core"] == "spiking")
    doc = json.loads(stale.read_text())
    real_sha = doc["rtl_sha256"]
    stale.write_text(json.dumps({**doc, "rtl_sha256": "0" * 64, "resources": {**doc["resources"], "LUT": 1}}))
    assert main(args) == 0
    again = point_runs()[len(first):]
    assert [rtl.name for rtl in again] == [f"{real_sha[:16]}.v"]
    redone = json.loads(stale.read_text())
    assert redone["rtl_sha256"] == real_sha and redone["resources"]["LUT"] == 1234
