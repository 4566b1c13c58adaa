"""``generate`` and ``snnhw generate``: files, manifests, top names, user errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from snnhw.cli import main
from snnhw.errors import UserError
from snnhw.hw.generate import BASELINE_FILE, BASELINE_TOP, SPIKING_FILE, SPIKING_TOP, generate
from snnhw.hw.manifest import MANIFEST_FORMAT, model_hash
from snnhw.quant.frozen_io import save_frozen
from snnhw.quant.synthetic import random_frozen_baseline, random_frozen_spiking


def _baseline(seed: int = 0):
    return random_frozen_baseline(seed, input_size=3, hidden_size=4, num_classes=3)


def _spiking(seed: int = 0, encoding: str = "direct"):
    return random_frozen_spiking(seed, input_size=3, hidden_size=4, T=2, num_classes=3, encoding=encoding)


def test_generate_baseline_files_and_manifest(tmp_path: Path):
    model = _baseline()
    summary = generate(None, model, tmp_path / "rtl", lanes=2, fanin=2, head_in_hw=True)
    core = summary["cores"]["baseline"]
    text = Path(core["verilog"]).read_text()
    assert Path(core["verilog"]).name == BASELINE_FILE and f"module {BASELINE_TOP}(" in text
    manifest = json.loads(Path(core["manifest"]).read_text())
    assert manifest["format"] == MANIFEST_FORMAT and manifest["top"] == BASELINE_TOP
    ports = {p["name"]: (p["direction"], p["width"]) for p in manifest["ports"]}
    assert ports["i__payload"] == ("in", 3 * model.input_bits + 1)
    assert ports["o__ready"] == ("in", 1) and ports["o__valid"] == ("out", 1)
    assert ports["o__payload"][0] == "out"
    for name, (direction, width) in ports.items():  # every manifest port is a Verilog port
        assert f"{'input' if direction == 'in' else 'output'} " in text and name in text
    assert manifest["knobs"]["lanes"] == 2 and manifest["knobs"]["head_in_hw"] is True
    assert manifest["core"]["multipliers"]["mac_array"] == 16
    assert "N·" in manifest["core"]["cycles"]["formula"] and "N·" in manifest["cycle_formula"]
    assert manifest["source_model"]["sha256"] == model_hash(model) != model_hash(_baseline(1))
    assert json.loads((tmp_path / "rtl" / "generate.json").read_text())["cores"]["baseline"]["top"] == BASELINE_TOP


def test_generate_spiking_core(tmp_path: Path):
    summary = generate(_spiking(), None, tmp_path, lanes=2, fanin=2)
    core = summary["cores"]["spiking"]
    assert Path(core["verilog"]).name == SPIKING_FILE
    assert f"module {SPIKING_TOP}(" in Path(core["verilog"]).read_text()
    manifest = json.loads(Path(core["manifest"]).read_text())
    assert manifest["top"] == SPIKING_TOP and manifest["cycle_formula"]


def test_generate_rejects_bad_knobs(tmp_path: Path):
    with pytest.raises(UserError, match="lanes=3 does not divide"):
        generate(None, _baseline(), tmp_path, lanes=3, fanin=2)
    with pytest.raises(UserError, match="fanin"):
        generate(None, _baseline(), tmp_path, lanes=2, fanin=64)
    with pytest.raises(UserError, match="direct input only"):
        generate(None, _baseline(), tmp_path, lanes=2, fanin=2, input_mode="spikes")
    with pytest.raises(UserError, match="nothing to generate"):
        generate(None, None, tmp_path, lanes=2, fanin=2)
    assert not list(tmp_path.iterdir())  # knob errors surface before any file is written


def test_cli_generate(tmp_path: Path, capsys):
    base = save_frozen(tmp_path / "m.baseline.snnhw", _baseline())
    spk = save_frozen(tmp_path / "m.snnhw", _spiking())
    out = tmp_path / "rtl"
    assert main(["generate", "--baseline", str(base), "-o", str(out), "--lanes", "4", "--fanin", "3"]) == 0
    manifest = json.loads((out / "baseline_core.manifest.json").read_text())
    assert manifest["source_model"]["file"] == str(base) and len(manifest["source_model"]["file_sha256"]) == 64
    assert "baseline:" in capsys.readouterr().out
    # user errors: one line, exit status 2
    cases = [
        ["--golden", str(tmp_path / "missing.snnhw")],
        ["--baseline", str(base), "--lanes", "3"],
        ["--golden", str(base)],  # a baseline given as the spiking model
        ["--baseline", str(spk)],  # and the other way round
        ["--golden", str(spk), "--input-mode", "spikes"],  # a direct model cannot take spikes
        [],
    ]
    for extra in cases:
        assert main(["generate", "-o", str(tmp_path / "bad"), *extra]) == 2, extra
        err = capsys.readouterr().err
        assert err.startswith("snnhw: error: ") and err.count("\n") == 1, (extra, err)
