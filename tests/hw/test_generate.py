"""``generate`` and ``snnhw generate``: files, manifests, top names, user errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from snnhw.cli import main
from snnhw.hw.generate import generate
from snnhw.hw.knobs import BaselineKnobs, SpikingKnobs
from snnhw.hw.manifest import MANIFEST_FORMAT, model_hash
from snnhw.hw.registry import core_spec
from snnhw.quant.frozen_io import save_frozen
from snnhw.quant.synthetic import random_frozen_baseline, random_frozen_spiking

BASELINE = core_spec("baseline")
SPIKING = core_spec("spiking")


def _baseline(seed: int = 0):
    return random_frozen_baseline(seed, input_size=3, hidden_size=4, num_classes=3)


def _spiking(seed: int = 0, encoding: str = "direct"):
    return random_frozen_spiking(seed, input_size=3, hidden_size=4, T=2, num_classes=3, encoding=encoding)


def test_generate_baseline_files_and_manifest(tmp_path: Path):
    model = _baseline()
    summary = generate([(model, BaselineKnobs(lanes=2, fanin=2, head_in_hw=True))], tmp_path / "rtl")
    core = summary["cores"]["baseline"]
    text = Path(core["verilog"]).read_text()
    assert Path(core["verilog"]).name == BASELINE.verilog_file and f"module {BASELINE.top}(" in text
    manifest = json.loads(Path(core["manifest"]).read_text())
    assert manifest["format"] == MANIFEST_FORMAT and manifest["top"] == BASELINE.top
    assert manifest["core_kind"] == "baseline"
    ports = {p["name"]: (p["direction"], p["width"]) for p in manifest["ports"]}
    assert ports["i__payload"] == ("in", 3 * model.input_bits + 1)
    assert ports["o__ready"] == ("in", 1) and ports["o__valid"] == ("out", 1)
    assert ports["o__payload"][0] == "out"
    for name, (direction, width) in ports.items():  # every manifest port is a Verilog port
        assert f"{'input' if direction == 'in' else 'output'} " in text and name in text
    assert manifest["knobs"] == {"lanes": 2, "fanin": 2, "head_in_hw": True, "mac_stages": 1, "act_stages": 1}
    assert manifest["core"]["multipliers"]["mac_array"] == 16
    assert "N·" in manifest["core"]["cycles"]["formula"] and "N·" in manifest["cycle_formula"]
    assert manifest["source_model"]["sha256"] == model_hash(model) != model_hash(_baseline(1))
    assert json.loads((tmp_path / "rtl" / "generate.json").read_text())["cores"]["baseline"]["top"] == BASELINE.top


def test_manifest_schedule_is_machine_readable(tmp_path: Path):
    """The manifest's ``schedule`` rebuilds the core's cycle count without the Verilog or the model."""
    from snnhw.hw.schedule import BaselineLayer, BaselineSchedule, WavefrontLayer, WavefrontSchedule

    spk, base = _spiking(), _baseline()
    summary = generate([(spk, SpikingKnobs(lanes=2, fanin=2, engines=1)), (base, BaselineKnobs(lanes=2, fanin=2))],
                       tmp_path)
    for kind, cls, layer_cls in (("spiking", WavefrontSchedule, WavefrontLayer),
                                 ("baseline", BaselineSchedule, BaselineLayer)):
        doc = json.loads(Path(summary["cores"][kind]["manifest"]).read_text())["schedule"]
        assert doc["schedule"] == cls.__name__
        fields = {f for f in cls.__dataclass_fields__}
        params = {k: v for k, v in doc.items() if k in fields}
        params["layers"] = tuple(layer_cls(**layer) for layer in params["layers"])
        if "trace_groups" in params:
            params["trace_groups"] = tuple(params["trace_groups"])
        rebuilt = cls(**params)
        model = spk if kind == "spiking" else base
        expected = core_spec(kind).schedule_of(model, summary["cores"][kind]["knobs"] and
                                               core_spec(kind).knobs_type.from_manifest(summary["cores"][kind]["knobs"]))
        assert [rebuilt.cycles(n) for n in (1, 5, 9)] == [expected.cycles(n) for n in (1, 5, 9)]


def test_generate_spiking_core(tmp_path: Path):
    summary = generate([(_spiking(), SpikingKnobs(lanes=2, fanin=2))], tmp_path)
    core = summary["cores"]["spiking"]
    assert Path(core["verilog"]).name == SPIKING.verilog_file
    assert f"module {SPIKING.top}(" in Path(core["verilog"]).read_text()
    manifest = json.loads(Path(core["manifest"]).read_text())
    assert manifest["top"] == SPIKING.top and manifest["cycle_formula"]
    assert manifest["knobs"]["engines"] == 1  # automatic: clamp(ceil(T·lanes/8), 1, T)


def test_generate_rejects_bad_knobs(tmp_path: Path):
    with pytest.raises(ValueError, match="lanes=3 does not divide"):
        generate([(_baseline(), BaselineKnobs(lanes=3, fanin=2))], tmp_path)
    with pytest.raises(ValueError, match="fanin"):
        generate([(_baseline(), BaselineKnobs(lanes=2, fanin=64))], tmp_path)
    with pytest.raises(ValueError, match="takes input mode 'direct'"):
        generate([(_baseline(), None), (_spiking(), SpikingKnobs(input_mode="spikes"))], tmp_path)
    with pytest.raises(ValueError, match="nothing to generate"):
        generate([], tmp_path)
    with pytest.raises(ValueError, match="two MAC baseline core models"):
        generate([(_baseline(), None), (_baseline(1), None)], tmp_path)
    with pytest.raises(ValueError, match="lanes must be an integer ≥ 1"):
        SpikingKnobs(lanes=0)
    assert not list(tmp_path.iterdir())  # knob errors surface before any file is written


def test_cli_generate(tmp_path: Path, capsys):
    base = save_frozen(tmp_path / "m.baseline.snnhw", _baseline())
    spk = save_frozen(tmp_path / "m.snnhw", _spiking())
    out = tmp_path / "new" / "rtl"  # created with its parents
    assert main(["generate", "--baseline", str(base), "-o", str(out), "--lanes", "4", "--fanin", "3"]) == 0
    manifest = json.loads((out / "baseline_core.manifest.json").read_text())
    assert manifest["source_model"]["file"] == str(base) and len(manifest["source_model"]["file_sha256"]) == 64
    assert "baseline:" in capsys.readouterr().out
    # every knob the components accept is reachable from the command line
    assert main(["generate", "--golden", str(spk), "-o", str(tmp_path / "ev"), "--lanes", "2", "--fanin", "2",
                 "--engines", "2", "--event-driven", "--event-mode", "shared", "--proj-fanin", "3",
                 "--no-progress"]) == 0
    knobs = json.loads((tmp_path / "ev" / "spiking_core.manifest.json").read_text())["knobs"]
    assert knobs["event_mode"] == "shared" and knobs["proj_fanin"] == 3 and knobs["engines"] == 2
    capsys.readouterr()
    # user errors: one line, exit status 2
    cases = [
        ["--golden", str(tmp_path / "missing.snnhw")],
        ["--baseline", str(base), "--lanes", "3"],
        ["--baseline", str(base), "--lanes", "0"],
        ["--golden", str(base)],  # a baseline given as the spiking model
        ["--baseline", str(spk)],  # and the other way round
        ["--golden", str(spk), "--input-mode", "spikes"],  # a direct model cannot take spikes
        ["--baseline", str(base), "--input-mode", "spikes"],  # a knob no given core takes
        [],
    ]
    for extra in cases:
        assert main(["generate", "-o", str(tmp_path / "bad"), *extra]) == 2, extra
        err = capsys.readouterr().err
        assert err.startswith("snnhw: error: ") and err.count("\n") == 1, (extra, err)
