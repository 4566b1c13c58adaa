"""``snnhw demo`` on its generated toy dataset, shrunk to seconds (no verification, no Yosys)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from snnhw.cli import main
from snnhw.flow.demo import write_toy_dataset


def test_toy_dataset_is_seeded_and_labelled_by_the_largest_mean(tmp_path: Path) -> None:
    a = write_toy_dataset(tmp_path / "a.npz", samples=50, seed=3)
    b = write_toy_dataset(tmp_path / "b.npz", samples=50, seed=3)
    with np.load(a) as za, np.load(b) as zb:
        assert np.array_equal(za["X"], zb["X"]) and np.array_equal(za["y"], zb["y"])
        assert np.array_equal(za["y"], za["X"][:, :, :3].mean(axis=1).argmax(axis=1))
        assert set(za["y"].tolist()) == {0, 1, 2}


def test_demo_runs_every_stage(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "demo"
    code = main(["demo", "-o", str(out), "--hidden", "8", "--T", "2", "--hard-epochs", "1", "--snn-epochs", "1",
                 "--limit-train", "64", "--no-verify", "--no-yosys", "--no-progress"])
    assert code == 0
    result = json.loads((out / "demo.json").read_text())
    for stage in ("data", "train", "convert", "fine-tune", "build", "build.load", "build.reports"):
        assert stage in result["seconds"], stage
    assert result["steps"] == {"load": "ok", "budget": "skipped", "timing": "skipped", "generate": "ok",
                               "verify": "skipped", "board": "ok", "yosys": "skipped", "pnr": "skipped", "vivado": "skipped",
                               "reports": "ok"}
    for name in ("hard.pt", "spiking.pt", "data/toy.npz", "build/report.md", "build/rtl/spiking_core.v",
                 "build/board/snnhw_top.v"):
        assert (out / name).is_file(), name
    report = json.loads((out / "build" / "report.json").read_text())
    assert 0 <= report["accuracy"]["int_spiking"] <= 1 and "int_baseline" in report["accuracy"]
    # the integer model against the float one, sequence by sequence, recomputed here from both models
    from snnhw.quant.frozen_io import load_frozen
    from snnhw.quant.golden import run_spiking
    from snnhw.quant.quantizer import quantize_input
    from snnhw.train.checkpoint import load_checkpoint
    from snnhw.train.paired import compare_decisions
    from snnhw.train.trainer import evaluate

    ckpt = load_checkpoint(out / "spiking.pt")
    test = ckpt.load_data(None, progress=False).test
    assert report["accuracy"]["split"].endswith(f"test split ({len(test)} sequences)")
    frozen = load_frozen(out / "build" / "model" / "spiking.snnhw")
    integer = run_spiking(frozen, quantize_input(frozen, test.x), test.lengths).classes
    expected = compare_decisions(integer, evaluate(ckpt.build_model(), test, keep_classes=True)["classes"], test.y)
    assert report["accuracy"]["integer_vs_float"] == expected.to_dict()
    assert "sequence by sequence" in (out / "build" / "report.md").read_text()
    assert report["energy"]["ratio"] > 0 and set(report["sparsity"]) >= {"f", "o", "h"}
    assert "total wall time" in capsys.readouterr().out


def test_demo_rejects_bad_settings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "-o", str(tmp_path / "d"), "--hidden", "10", "--lanes", "4"]) == 2
    assert "does not divide" in capsys.readouterr().err
    assert main(["demo", "-o", str(tmp_path / "d"), "--data-dir", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err
