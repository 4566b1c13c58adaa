"""``snnhw verify`` end to end on tiny models: pass, a located failure (exit 1), a user error (exit 2)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from snnhw import cli
from snnhw.quant.frozen_io import save_frozen
from snnhw.quant.synthetic import random_frozen_baseline, random_frozen_spiking

from simfixtures import seed_for

pytestmark = pytest.mark.sim


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> tuple[Path, Path, Path]:
    seed = seed_for(request, 801)
    root = tmp_path_factory.mktemp("verify-cli")
    spk = save_frozen(root / "m.snnhw", random_frozen_spiking(seed, input_size=3, hidden_size=4, T=2))
    base = save_frozen(root / "m.baseline.snnhw", random_frozen_baseline(seed, input_size=3, hidden_size=4))
    other = save_frozen(root / "other.snnhw", random_frozen_spiking(seed + 1, input_size=3, hidden_size=4, T=2))
    return spk, base, other


@pytest.fixture(scope="module")
def passing(models, tmp_path_factory: pytest.TempPathFactory, simulator: str) -> tuple[int, Path]:
    spk, base, _ = models
    out = tmp_path_factory.mktemp("verify-out")
    rc = cli.main(["verify", "--golden", str(spk), "--baseline", str(base), "--lanes", "2", "--fanin", "2",
                   "--samples", "3", "--length", "4", "--head-in-hw", "--sim", simulator, "--waves",
                   "--no-progress", "-o", str(out)])
    return rc, out


def test_verify_passes_and_writes_reports(passing, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out = passing
    assert rc == 0
    doc = json.loads((out / "verify.json").read_text())
    assert doc["passed"] and [c["top"] for c in doc["cores"]] == ["snn_lstm_core", "mac_lstm_core"]
    for core in doc["cores"]:
        assert core["sequences"] == 3
        assert all(c["expected"] == c["measured"] for c in core["cycles"])
        assert core["activity"]["total_toggles"] > 0
        assert Path(core["activity"]["saif"]).read_text().startswith("(SAIFILE")
    suite = ET.parse(out / "verify.junit.xml").getroot().find("testsuite")
    assert suite.get("tests") == "2" and suite.get("failures") == "0"


def test_verify_mutated_rtl_fails_with_location(passing, models, tmp_path: Path, simulator: str,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    _, out = passing
    spk, _, _ = models
    rtl = tmp_path / "rtl"
    rtl.mkdir()
    for name in ("spiking_core.v", "spiking_core.manifest.json"):
        (rtl / name).write_text((out / "rtl" / name).read_text())
    text = (rtl / "spiking_core.v").read_text()
    # the serializer ignores backpressure: words are lost when the sink stalls
    lo = text.index("module \\snn_lstm_core.serializer ")
    hi = text.index("endmodule", lo)
    (rtl / "spiking_core.v").write_text(text[:lo] + text[lo:hi].replace("o__valid & o__ready", "o__valid")
                                        + text[hi:])
    capsys.readouterr()
    rc = cli.main(["verify", "--golden", str(spk), "--rtl", str(rtl), "--samples", "3", "--length", "4",
                   "--sim", simulator, "--no-progress", "-o", str(tmp_path / "rep")])
    assert rc == 1
    text_out = capsys.readouterr().out
    assert "FAIL snn_lstm_core" in text_out and "first mismatch: mode stalls, sequence" in text_out
    suite = ET.parse(tmp_path / "rep" / "verify.junit.xml").getroot().find("testsuite")
    assert suite.get("failures") == "1"


def test_verify_rejects_rtl_of_another_model(passing, models, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    _, out = passing
    _, _, other = models
    rc = cli.main(["verify", "--golden", str(other), "--rtl", str(out / "rtl"), "--no-progress",
                   "-o", str(tmp_path / "rep")])
    assert rc == 2
    assert "generated from a different spiking model" in capsys.readouterr().err


def test_verify_on_the_models_dataset(tmp_path: Path, simulator: str, request: pytest.FixtureRequest) -> None:
    import numpy as np

    from snnhw.data.registry import load_dataset

    seed = seed_for(request, 802)
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(30, 5, 3)).astype(np.float32)
    np.savez(tmp_path / "d.npz", X=x, y=rng.integers(0, 4, 30), lengths=rng.integers(1, 6, 30))
    bundle = load_dataset("npz", tmp_path / "d.npz", progress=False)
    model = random_frozen_spiking(seed, input_size=3, hidden_size=4, T=2, encoding="rate")
    model.meta = {"data_meta": dict(bundle.meta), "normalisation": bundle.normalisation.to_dict()}
    path = save_frozen(tmp_path / "m.snnhw", model)
    out = tmp_path / "rep"
    rc = cli.main(["verify", "--golden", str(path), "--data-dir", str(tmp_path / "d.npz"), "--samples", "2",
                   "--lanes", "2", "--fanin", "2", "--input-mode", "spikes", "--sim", simulator, "--no-progress",
                   "-o", str(out)])
    assert rc == 0
    doc = json.loads((out / "verify.json").read_text())
    assert doc["inputs"]["spiking"] == "npz test split, first 2"
    assert [c["n"] for c in doc["cores"][0]["cycles"]] == bundle.test.lengths[:2].tolist()
