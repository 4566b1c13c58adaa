"""``snnhw quantize``, ``snnhw eval`` on frozen models and ``snnhw energy``, end to end on a toy dataset."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from snnhw.cli import main
from snnhw.cli.quantize import report_path
from snnhw.errors import UserError
from snnhw.quant.frozen import FrozenBaseline, FrozenSpiking
from snnhw.quant.frozen_io import is_frozen_file, load_frozen
from snnhw.quant.golden import run_baseline, run_spiking
from snnhw.quant.quantizer import quantize_input
from snnhw.train.checkpoint import load_checkpoint
from train_fixtures import write_npz

QUICK = ["--hidden", "8", "--batch-size", "32", "--lr", "0.01", "--no-progress"]


def _ok(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    status = main(argv)
    out, err = capsys.readouterr()
    assert status == 0, err
    assert "Traceback" not in err
    return out


def _fails(capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    status = main(argv)
    out, err = capsys.readouterr()
    assert status == 2, out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("snnhw: error: "), err
    assert message in lines[0], lines[0]


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("quant_cli")
    data = write_npz(root / "toy.npz")
    hard, spk = root / "hard.pt", root / "spk.pt"
    assert main(["train", "--data", "npz", "--data-dir", str(data), "--epochs", "2", "--seed", "1", *QUICK,
                 "-o", str(hard)]) == 0
    assert main(["convert", "--model", str(hard), "--T", "2", "--no-progress", "-o", str(spk)]) == 0
    return {"root": root, "data": data, "hard": hard, "spk": spk}


def test_quantize_eval_energy(models: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    root = models["root"]
    capsys.readouterr()
    out_path = root / "m.snnhw"
    out = _ok(capsys, ["quantize", "--model", str(models["spk"]), "--weight-bits", "6", "--calib-samples", "40",
                       "--no-progress", "-o", str(out_path)])
    assert "saved" in out and "MAC baseline" in out
    base_path = root / "m.baseline.snnhw"
    assert is_frozen_file(out_path) and is_frozen_file(base_path)
    spiking, baseline = load_frozen(out_path), load_frozen(base_path)
    assert isinstance(spiking, FrozenSpiking) and isinstance(baseline, FrozenBaseline)
    assert spiking.T == 2 and spiking.weight_bits == 6 and baseline.weight_bits == 6
    ckpt = load_checkpoint(models["spk"])
    assert spiking.meta["data_meta"] == ckpt.data_meta and spiking.meta["normalisation"] == ckpt.normalisation
    assert spiking.meta["quantizer"]["calibration_samples"] == 40
    report = json.loads(report_path(out_path).read_text())
    assert report["spiking"]["layers"][0]["acc_bits"] == spiking.layers[0].acc_bits
    assert "saturation_calibration" in report["baseline"] and report["calibration_samples"] == 40

    # eval dispatches on the file's content and runs the golden model
    record = root / "eval.json"
    out = _ok(capsys, ["eval", "--model", str(out_path), "--json", str(record), "--no-progress"])
    result = json.loads(record.read_text())
    test = ckpt.load_data(None, progress=False).test
    golden = run_spiking(spiking, quantize_input(spiking, test.x), test.lengths)
    assert result["accuracy"] == float((golden.classes == test.y).mean()) and result["n"] == len(test.y)
    assert result["kind"] == "frozen-spiking" and f"test accuracy {100 * result['accuracy']:.2f} %" in out
    out = _ok(capsys, ["eval", "--model", str(base_path), "--no-progress"])
    base_golden = run_baseline(baseline, quantize_input(baseline, test.x), test.lengths)
    assert f"test accuracy {100 * float((base_golden.classes == test.y).mean()):.2f} %" in out

    energy_json = root / "energy.json"
    out = _ok(capsys, ["energy", "--golden", str(out_path), "--baseline", str(base_path), "--samples", "10",
                       "--json", str(energy_json), "--no-progress"])
    assert "energy ratio baseline/spiking" in out and "paper: 2.8-5.1x" in out
    energy = json.loads(energy_json.read_text())
    assert energy["samples"] == 10 and energy["counters"]["spiking"]["sequences"] == 10
    assert energy["energy"]["ratio"] == pytest.approx(energy["energy"]["baseline_pj"] / energy["energy"]["spiking_pj"])
    out = _ok(capsys, ["energy", "--golden", str(out_path), "--samples", "5", "--schedule", "event", "--no-progress"])
    assert "spiking (event)" in out and "MAC baseline" not in out


def test_hard_checkpoint_gives_the_baseline(models: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    out_path = models["root"] / "hard.snnhw"
    out = _ok(capsys, ["quantize", "--model", str(models["hard"]), "--calib-samples", "20", "--no-progress",
                       "-o", str(out_path)])
    assert "MAC baseline" in out
    assert isinstance(load_frozen(out_path), FrozenBaseline)
    assert not (models["root"] / "hard.baseline.snnhw").exists()


def test_no_baseline_and_quantize_errors(models: dict[str, Path], capsys: pytest.CaptureFixture[str],
                                         tmp_path: Path) -> None:
    out_path = tmp_path / "only.snnhw"
    out = _ok(capsys, ["quantize", "--model", str(models["spk"]), "--no-baseline", "--calib-samples", "10",
                       "--no-progress", "-o", str(out_path)])
    assert "MAC baseline" not in out and not (tmp_path / "only.baseline.snnhw").exists()
    floored = tmp_path / "floor.snnhw"
    _ok(capsys, ["quantize", "--model", str(models["spk"]), "--no-baseline", "--calib-samples", "10",
                 "--leak-rounding", "floor", "--no-progress", "-o", str(floored)])
    for path, rounding in ((out_path, "nearest"), (floored, "floor")):
        model = load_frozen(path)
        assert {getattr(layer, g).leak_rounding for layer in model.layers for g in ("f", "o", "c")} == {rounding}
        assert model.meta["quantizer"]["leak_rounding"] == rounding
    spk = ["quantize", "--model", str(models["spk"]), "--no-progress"]
    notes = tmp_path / "notes.snnhw"
    notes.write_text("not a model\n")
    # a baseline model given as the spiking one (made here: tests may run on other workers)
    from snnhw.quant.frozen_io import save_frozen
    from snnhw.quant.synthetic import random_frozen_baseline

    wrong_kind = save_frozen(tmp_path / "m.baseline.snnhw", random_frozen_baseline(0, input_size=3, hidden_size=4))
    cases = [
        ([*spk, "--calib-samples", "0", "-o", str(tmp_path / "a.snnhw")], "--calib-samples"),
        ([*spk, "--weight-bits", "1", "-o", str(tmp_path / "b.snnhw")], "weight_bits"),
        ([*spk, "--leak-terms", "9", "-o", str(tmp_path / "c.snnhw")], "leak terms"),
        ([*spk, "--baseline-source", str(tmp_path / "gone.pt"), "-o", str(tmp_path / "d.snnhw")], "does not exist"),
        ([*spk, "--baseline-source", str(models["spk"]), "-o", str(tmp_path / "e.snnhw")], "not a hard LSTM"),
        ([*spk, "-o", str(notes / "f.snnhw")], "not a directory"),
        (["eval", "--model", str(notes)], "not an snnhw model file"),
        (["energy", "--golden", str(wrong_kind), "--no-progress"], "expected a spiking"),
        (["energy", "--golden", str(notes)], "notes.snnhw"),
        (["energy", "--golden", str(out_path), "--table", str(tmp_path / "none.json")], "does not exist"),
    ]
    for argv, message in cases:
        _fails(capsys, argv, message)
    with pytest.raises(SystemExit) as info:  # argparse's own usage error
        main([*spk, "--leak-rounding", "up", "-o", str(tmp_path / "g.snnhw")])
    err = capsys.readouterr().err
    assert info.value.code == 2 and "invalid choice: 'up'" in err and "Traceback" not in err


def test_eval_against_a_reference_compares_sequence_by_sequence(models: dict[str, Path],
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """``eval --reference``: both models on the same split, the paired counts of their classes
    (golden model for the integer one, ``evaluate`` for the float one); a reference trained on
    other data is refused."""
    from snnhw.cli.eval import Evaluation, compare_on_one_split
    from snnhw.train.paired import compare_decisions
    from snnhw.train.trainer import evaluate

    root = models["root"]
    frozen_path = root / "ref.snnhw"
    _ok(capsys, ["quantize", "--model", str(models["spk"]), "--weight-bits", "4", "--no-baseline",
                 "--calib-samples", "40", "--no-progress", "-o", str(frozen_path)])
    record = root / "paired.json"
    out = _ok(capsys, ["eval", "--model", str(frozen_path), "--reference", str(models["spk"]), "--json", str(record),
                       "--no-progress"])
    result = json.loads(record.read_text())
    ckpt = load_checkpoint(models["spk"])
    test = ckpt.load_data(None, progress=False).test
    frozen = load_frozen(frozen_path)
    golden = run_spiking(frozen, quantize_input(frozen, test.x), test.lengths).classes
    float_run = evaluate(ckpt.build_model(), test, keep_classes=True)
    assert float(np.mean(float_run["classes"] == test.y)) == float_run["accuracy"]
    expected = compare_decisions(golden, float_run["classes"], test.y)
    assert expected.changed > 0  # 4-bit weights: the two models do disagree somewhere
    assert result["paired"] == expected.to_dict()
    assert result["reference"]["accuracy"] == float_run["accuracy"] and result["accuracy"] == float(np.mean(golden == test.y))
    assert f"model - reference: {expected.summary()}" in out

    other_data = write_npz(root / "other.npz", seed=5)
    other = root / "other.pt"
    assert main(["train", "--data", "npz", "--data-dir", str(other_data), "--epochs", "1", *QUICK, "-o", str(other)]) == 0
    capsys.readouterr()
    _fails(capsys, ["eval", "--model", str(frozen_path), "--reference", str(other), "--no-progress"],
           "the two models' test splits differ (their labels differ)")
    _fails(capsys, ["eval", "--model", str(frozen_path), "--reference", str(root / "gone.pt")], "does not exist")
    labels = np.zeros(2, dtype=np.int64)
    with pytest.raises(UserError, match="trained on dataset 'har', the reference on 'npz'"):
        compare_on_one_split(Evaluation({"dataset": "har", "split": "test"}, labels, labels),
                             Evaluation({"dataset": "npz", "split": "test"}, labels, labels))
    with pytest.raises(UserError, match=r"val splits differ \(2 and 3 sequences\)"):
        compare_on_one_split(Evaluation({"dataset": "npz", "split": "val"}, labels, labels),
                             Evaluation({"dataset": "npz", "split": "val"}, np.zeros(3, np.int64), np.zeros(3, np.int64)))


def test_eval_refuses_a_tampered_frozen_file(models: dict[str, Path], capsys: pytest.CaptureFixture[str],
                                             tmp_path: Path) -> None:
    out_path = tmp_path / "t.snnhw"
    _ok(capsys, ["quantize", "--model", str(models["spk"]), "--no-baseline", "--calib-samples", "10",
                 "--no-progress", "-o", str(out_path)])
    data = bytearray(out_path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad = tmp_path / "bad.snnhw"
    bad.write_bytes(bytes(data))
    status = main(["eval", "--model", str(bad), "--no-progress"])
    _, err = capsys.readouterr()
    assert status == 2 and "Traceback" not in err and np.any([w in err for w in ("corrupted", "SHA-256", "not an")])


def test_qat_checkpoint_quantizes_on_its_trained_grid(models: dict[str, Path],
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """``train --qat`` records its grid; ``quantize`` takes it (and its input scale) unless told
    otherwise, warns when told otherwise, and the integer weights are the checkpoint's weights
    divided by their scales, exactly."""
    root = models["root"]
    qat = root / "qat.pt"
    _ok(capsys, ["train", "--init", str(models["spk"]), "--epochs", "1", "--qat", "--qat-input-bits", "10",
                 "--qat-leak-terms", "3", "--batch-size", "32", "--lr", "0.01", "--no-progress", "-o", str(qat)])
    grid = load_checkpoint(qat).metrics["settings"]["qat"]
    assert (grid["weight_bits"], grid["input_bits"], grid["leak_terms"]) == (8, 10, 3) and grid["input_scale"] > 0
    out = _ok(capsys, ["quantize", "--model", str(qat), "--no-baseline", "--no-progress", "-o", str(root / "q.snnhw")])
    assert "quantization-aware checkpoint: 8-bit weights, 10-bit input, 3 leak terms (its input scale)" in out
    frozen = load_frozen(root / "q.snnhw")
    assert (frozen.weight_bits, frozen.input_bits, frozen.input_scale) == (8, 10, grid["input_scale"])
    assert frozen.meta["quantizer"]["leak_terms"] == 3
    state = load_checkpoint(qat).state_dict
    H = frozen.layers[0].w_h.shape[1]
    for a, gate in enumerate("figo"):
        alpha = frozen.scales["layers"][0]["alpha"][gate]
        steps = state["layers.0.weight_h"][a * H:(a + 1) * H].double().numpy() / alpha
        np.testing.assert_array_equal(np.round(steps), frozen.layers[0].w_h[a * H:(a + 1) * H])
        assert float(np.abs(steps - np.round(steps)).max()) < 1e-4  # on the grid, up to float32
    out = _ok(capsys, ["quantize", "--model", str(qat), "--weight-bits", "6", "--no-baseline", "--no-progress",
                       "-o", str(root / "q6.snnhw")])
    assert "warning: --weight-bits 6 differs from the grid the model was trained quantization-aware on (8)" in out
    assert load_frozen(root / "q6.snnhw").weight_bits == 6
    _fails(capsys, ["train", "--init", str(models["hard"]), "--epochs", "1", "--qat", "--qat-weight-bits", "1",
                    "--no-progress", "-o", str(root / "bad.pt")], "weight_bits must be an integer in 2..16")
