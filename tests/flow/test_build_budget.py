# amaranth: UnusedElaboratable=no
"""``snnhw build --budget``: the pick rule, the refusals, a build from an explore output, and the
latency table at the model's own N.

The builds here skip Yosys and verification; the one build that runs the explorer itself (Yosys
on every point) is slow.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from snnhw.cli import build_parser, main
from snnhw.errors import UserError
from snnhw.flow.build import BuildOptions, budget_part, parse_budget, run_build, summary_table
from snnhw.flow.explore import fastest_within
from snnhw.hw.knobs import BaselineKnobs, SpikingKnobs
from snnhw.hw.manifest import model_hash
from snnhw.hw.registry import core_spec
from snnhw.quant.frozen_io import load_frozen, save_frozen
from snnhw.quant.synthetic import random_frozen_baseline, random_frozen_spiking


def pt(core: str, cycles: float, energy: float, cost: float, name: str = "", mode: str = "dense") -> dict[str, Any]:
    """A synthetic explorer point (only what the pick reads)."""
    return {"core": core, "mode": mode, "knobs": {"name": name}, "cycles_mean": cycles, "energy_pj": energy,
            "cost_fraction": cost, "cost_binding": "LUT"}


POINTS = [pt("spiking", 100, 50, 0.01, "A"), pt("spiking", 40, 80, 0.02, "B"), pt("spiking", 10, 5, 0.5, "C"),
          pt("baseline", 80, 200, 0.02, "P", "mac"), pt("baseline", 30, 200, 0.2, "Q", "mac"),
          pt("spiking", 40, 70, 0.03, "D"), pt("spiking", 40, 70, 0.025, "E")]


def picked(budget: float, points: list[dict[str, Any]] = POINTS) -> dict[str, str]:
    return {kind: p["knobs"]["name"] for kind, p in fastest_within(points, budget, ["spiking", "baseline"],
                                                                   "xc7k325t").items()}


def test_the_fastest_point_within_the_budget_per_core() -> None:
    assert picked(1.0) == {"spiking": "C", "baseline": "Q"}  # everything fits: the fewest cycles
    # 40 cycles three times: E and D use less energy than B, and E costs less than D
    assert picked(0.1) == {"spiking": "E", "baseline": "P"}
    assert picked(0.02) == {"spiking": "B", "baseline": "P"}  # a cost equal to the budget fits
    assert picked(0.015, POINTS + [pt("baseline", 90, 1, 0.015, "R", "mac")]) == {"spiking": "A", "baseline": "R"}
    # a slower point never wins on energy or cost
    assert picked(0.1, POINTS + [pt("spiking", 41, 1, 0.001, "F")])["spiking"] == "E"


def test_no_point_within_the_budget_names_the_cheapest() -> None:
    with pytest.raises(UserError, match=r"no explored MAC baseline.* point fits a budget of 1\.00 % of xc7k325t: "
                                        r"the cheapest costs 2\.00 %"):
        picked(0.01)
    with pytest.raises(UserError, match="no costed"):
        fastest_within([{**p, "cost_fraction": None} for p in POINTS], 1.0, ["spiking"], "xc7k325t")


def test_budget_values_and_parts() -> None:
    assert parse_budget("0.05") == 0.05 and parse_budget(1) == 1.0
    for bad in ("0", "1.5", "abc", "-0.1", "nan", ""):
        with pytest.raises(UserError, match=r"--budget takes a fraction of the part, 0 < F ≤ 1"):
            parse_budget(bad)
    assert budget_part(SimpleNamespace(name="kc705", part="xc7k325tffg900-2")) == "xc7k325t"
    with pytest.raises(UserError, match="the explorer costs Xilinx 7-series parts"):
        budget_part(SimpleNamespace(name="ulx3s-85f", part="LFE5U-85F"))


@pytest.mark.parametrize("args, message", [
    (["--budget", "0.1", "--lanes", "2", "--event-driven"], "--budget picks the knobs; drop --event-driven, --lanes"),
    (["--budget", "0"], "--budget takes a fraction of the part, 0 < F ≤ 1 (e.g. 0.25), not '0'"),
    (["--budget", "1.5"], "--budget takes a fraction of the part, 0 < F ≤ 1 (e.g. 0.25), not '1.5'"),
    (["--budget", "abc"], "--budget takes a fraction of the part, 0 < F ≤ 1 (e.g. 0.25), not 'abc'"),
    (["--explore-dir", "somewhere"], "--explore-dir applies with --budget only"),
    (["--budget", "--explore-dir", "d", "--explore-grid", "full"], "with --explore-dir it explores nothing"),
])
def test_cli_refusals_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str],
                                   message: str) -> None:
    out = tmp_path / "o"
    assert main(["build", *args, "-o", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("snnhw: error: ") and message in err and err.count("\n") == 1
    assert not out.exists()  # refused before any work


def test_budget_alone_is_the_default_budget() -> None:
    parser = build_parser()
    assert parser.parse_args(["build", "--budget"]).budget == "0.25"
    assert parser.parse_args(["build"]).budget is None


# ------------------------------------------------------------------ a build from an explore output

def tiny_models(tmp_path: Path) -> tuple[Path, Path]:
    spiking = save_frozen(tmp_path / "tiny.snnhw", random_frozen_spiking(1, input_size=3, hidden_size=4, T=2))
    baseline = save_frozen(tmp_path / "tiny.baseline.snnhw", random_frozen_baseline(2, input_size=3, hidden_size=4))
    return spiking, baseline


def explore_output(tmp_path: Path, spiking: Path, baseline: Path) -> Path:
    """An ``explore.json`` as ``snnhw explore`` writes it, for the tiny models, with chosen figures.

    It was costed for another part (xc7a100t, costs left out): the build costs the points for its
    board's part (xc7k325t: 203,800 LUT, 840 DSP48E1).
    """
    models = {"spiking": load_frozen(spiking), "baseline": load_frozen(baseline)}

    def point(kind: str, knobs: Any, cycles: float, energy: float, lut: int, dsp: int) -> dict[str, Any]:
        spec = core_spec(kind)
        resolved = spec.knobs(models[kind], knobs)
        mode = ("mac" if kind == "baseline" else
                f"event-{resolved.event_mode}" if resolved.event_driven else "dense")
        return {"core": kind, "mode": mode, "knobs": resolved.to_manifest(), "key": f"{kind}{cycles}", "units": 4,
                "unit_name": "adders", "cycles_mean": cycles, "cycles_max": int(cycles) + 3, "utilisation_mean": 0.5,
                "energy_pj": energy, "energy_with_memory_pj": 2 * energy, "rtl_sha256": None,
                "resources": {"LUT": lut, "FF": 10, "DSP48E1": dsp, "RAMB18E1": 0, "RAMB36E1": 0},
                "cost_fraction": None, "cost_binding": None, "lut_equivalents": None, "synth_seconds": 1.0}

    points = [point("spiking", SpikingKnobs(lanes=1, fanin=1, engines=1), 500, 900, 2038, 0),  # 1 %
              point("spiking", SpikingKnobs(lanes=2, fanin=2, engines=1), 300, 900, 6114, 0),  # 3 %
              point("spiking", SpikingKnobs(lanes=2, fanin=2, engines=2, event_driven=True, event_mode="queue"),
                    100, 600, 20380, 0),  # 10 %
              point("baseline", BaselineKnobs(lanes=1, fanin=1), 800, 1800, 500, 12),  # 1.43 % (DSP binds)
              point("baseline", BaselineKnobs(lanes=2, fanin=2), 450, 1800, 700, 40)]  # 4.76 %
    out = tmp_path / "explored"
    out.mkdir()
    doc = {"format": "snnhw-explore", "version": 1, "part": "xc7a100t",
           "models": {kind: model_hash(model) for kind, model in models.items()},
           "inputs": "3 synthetic sequences", "sequences": 3,
           "exchange_rates": {"lut_per_dsp": 200.0, "lut_per_bram36": 576}, "points": points}
    (out / "explore.json").write_text(json.dumps(doc))
    return out


def budget_options(tmp_path: Path, budget: float, explore_dir: Path | None) -> BuildOptions:
    spiking, baseline = tiny_models(tmp_path)
    return BuildOptions(models=[spiking, baseline], out_dir=tmp_path / "out", verify=False, yosys=False,
                        progress=False, budget=budget, explore_dir=explore_dir)


def test_a_budget_build_takes_the_fastest_point_that_fits(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    explored = explore_output(tmp_path, *tiny_models(tmp_path))
    result = run_build(budget_options(tmp_path, 0.05, explored))
    out = tmp_path / "out"
    assert result.exit_code == 0
    record = json.loads((out / "budget.json").read_text())
    assert record["status"] == "ok" and record["part"] == "xc7k325t" and record["explore_grid"] is None
    spk, base = record["cores"]["spiking"], record["cores"]["baseline"]
    # the event-queue point is faster but costs 10 %
    assert (spk["knobs"]["lanes"], spk["knobs"]["engines"], spk["mode"]) == (2, 1, "dense")
    assert spk["cost_fraction"] == pytest.approx(6114 / 203_800) and spk["cost_binding"] == "LUT"
    assert base["knobs"]["lanes"] == 2 and base["cost_fraction"] == pytest.approx(40 / 840)
    assert base["lut_equivalents"] == pytest.approx(700 + 200 * 40)
    assert record["speedup"] == pytest.approx(450 / 300) and record["energy_ratio"] == pytest.approx(2.0)
    # the cores were generated with the picked knobs, which load did not choose
    manifest = json.loads((out / "rtl" / "spiking_core.manifest.json").read_text())
    assert {k: manifest["knobs"][k] for k in ("lanes", "fanin", "engines", "event_driven")} == \
        {"lanes": 2, "fanin": 2, "engines": 1, "event_driven": False}
    assert "budget.json" in json.loads((out / "load.json").read_text())["knobs"]
    report = json.loads((out / "report.json").read_text())
    assert report["budget"]["cores"]["spiking"]["latency_us"] == pytest.approx(300 / report["budget"]["clock_mhz"])
    md = (out / "report.md").read_text()
    assert "## Iso-resource comparison: budget 5 % of xc7k325t" in md
    assert "| spiking wavefront core | lanes=2, fanin=2, engines=1 (dense) | 3.00 % (LUT) |" in md
    assert "**1.50× speed-up**" in md and "**2.00× energy ratio**" in md
    assert "budget 5 % of xc7k325t: spiking lanes=2" in summary_table(result)
    assert main(["compare", str(out)]) == 0
    table = capsys.readouterr().out
    assert "| N | clock source | energy ratio | budget | verified |" in table
    assert "| 16 | estimate | — | 5 % | — |" in table
    # a tighter budget takes the cheaper points
    opts = budget_options(tmp_path, 0.02, explored)
    opts.out_dir = tmp_path / "out2"
    run_build(opts)
    record = json.loads((tmp_path / "out2" / "budget.json").read_text())
    assert record["cores"]["spiking"]["knobs"]["lanes"] == 1 and record["cores"]["baseline"]["knobs"]["lanes"] == 1


def test_a_budget_nothing_fits_and_foreign_explore_outputs(tmp_path: Path) -> None:
    explored = explore_output(tmp_path, *tiny_models(tmp_path))
    with pytest.raises(UserError, match=r"no explored spiking wavefront core point fits a budget of 0\.50 % of "
                                        r"xc7k325t: the cheapest costs 1\.00 % \(lanes=1"):
        run_build(budget_options(tmp_path, 0.005, explored))
    assert json.loads((tmp_path / "out" / "budget.json").read_text())["status"] == "failed"
    other = tmp_path / "other"
    other.mkdir()
    doc = json.loads((explored / "explore.json").read_text())
    doc["models"]["baseline"] = "0" * 64
    (other / "explore.json").write_text(json.dumps(doc))
    with pytest.raises(UserError, match="was not explored for this build's MAC baseline"):
        run_build(budget_options(tmp_path, 0.05, other))
    with pytest.raises(UserError, match="holds no explore.json"):
        run_build(budget_options(tmp_path, 0.05, tmp_path))


@pytest.mark.slow
@pytest.mark.yosys
def test_a_budget_build_runs_the_explorer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The build explores (a one-point-per-core grid here: Yosys on each), picks, and a rebuild
    reuses the explored points."""
    from snnhw.flow import explore
    from snnhw.flow.tools import yosys_missing

    if yosys_missing():
        pytest.skip(yosys_missing())
    monkeypatch.setattr(explore, "build_grid", lambda models, size: {
        "spiking": [{"lanes": 2, "fanin": 2, "engines": 1}], "baseline": [{"lanes": 2, "fanin": 2}]})
    opts = budget_options(tmp_path, 0.25, None)
    assert run_build(opts).exit_code == 0
    record = json.loads((tmp_path / "out" / "budget.json").read_text())
    assert record["explore_grid"] == "small" and record["explored"] == {"spiking": 1, "baseline": 1}
    assert record["cores"]["spiking"]["resources"]["LUT"] > 0 and record["exchange_rates"]["lut_per_dsp"] > 0
    assert (tmp_path / "out" / "explore" / "explore.md").is_file()
    points = sorted((tmp_path / "out" / "explore" / "points").iterdir())
    assert len(points) == 2
    stamps = [p.stat().st_mtime_ns for p in points]
    assert run_build(opts).exit_code == 0  # the rebuild reuses the finished points
    assert [p.stat().st_mtime_ns for p in points] == stamps
    assert json.loads((tmp_path / "out" / "budget.json").read_text())["cores"] == record["cores"]


# ----------------------------------------------------------------- latency at the model's own N

def test_latency_table_at_the_bundled_models_own_n(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "default"
    assert main(["build", "--no-verify", "--no-yosys", "-o", str(out), "--no-progress"]) == 0
    assert "cycles at the model's N=128:" in capsys.readouterr().out
    lat = json.loads((out / "report.json").read_text())["latency"]
    assert lat["N"] == [128, 28, 81] and lat["rows"] == ["this model", "reference: T-MNIST rows",
                                                         "reference: GSC frames"]
    assert "har" in lat["model_N_source"]
    schedule = lat["schedules"]["baseline"]
    assert lat["cores"]["baseline"][0] == schedule["per_element"] * 128 + schedule["fixed"]
    assert json.loads((out / "load.json").read_text())["sequence_length"]["N"] == 128
    assert "| 128 | this model |" in (out / "report.md").read_text()
