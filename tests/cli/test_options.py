"""One command line everywhere: output paths get their parent directories, ``--no-progress`` on
every long front-end command, progress bars only on a terminal, and a checkpoint's recorded
source found beside the checkpoint (train, convert, quantize, eval, energy)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pytest

import snnhw
from snnhw.cli import build_parser, main
from snnhw.cli._options import progress_enabled
from snnhw.cli.quantize import report_path
from snnhw.quant.frozen import FrozenBaseline, FrozenSpiking
from snnhw.quant.frozen_io import load_frozen
from snnhw.train.checkpoint import load_checkpoint, save_checkpoint
from train_fixtures import write_npz

TINY = ["--hidden", "8", "--batch-size", "32", "--lr", "0.01", "--epochs", "1", "--seed", "1"]
BAR_MARKS = ("%|", "it/s", "s/it", "chunk/s", "epochs:")
DEFAULT_MODEL = Path(snnhw.__file__).parent / "data_files" / "default_har.pt"


def _ok(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[str, str]:
    status = main(argv)
    out, err = capsys.readouterr()
    assert status == 0, err
    assert "Traceback" not in err
    return out, err


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny hard LSTM and its conversion (T = 2) on a toy npz dataset."""
    root = tmp_path_factory.mktemp("options")
    data = write_npz(root / "toy.npz", samples=90)
    hard, spk = root / "hard.pt", root / "spk.pt"
    assert main(["train", "--data", "npz", "--data-dir", str(data), *TINY, "--no-progress", "-o", str(hard)]) == 0
    assert main(["convert", "--model", str(hard), "--T", "2", "--no-progress", "-o", str(spk)]) == 0
    return {"root": root, "data": data, "hard": hard, "spk": spk}


# ------------------------------------------------------------------ output directories

def test_train_output_into_a_missing_nested_directory(tmp_path: Path, toy: dict[str, Path],
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "runs" / "a" / "b" / "hard.pt"
    _ok(capsys, ["train", "--data", "npz", "--data-dir", str(toy["data"]), *TINY, "--no-progress", "-o", str(out)])
    assert load_checkpoint(out).cfg.hidden_size == 8
    assert json.loads(out.with_suffix(".json").read_text())["checkpoint"] == str(out)


def test_convert_quantize_eval_energy_outputs_into_missing_directories(
        tmp_path: Path, toy: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    conv = tmp_path / "conv" / "deep" / "spk.pt"
    _ok(capsys, ["convert", "--model", str(toy["hard"]), "--T", "2", "--no-progress", "-o", str(conv)])
    assert load_checkpoint(conv).cfg.spiking and conv.with_suffix(".json").is_file()

    frozen = tmp_path / "q" / "x" / "m.snnhw"
    out, _ = _ok(capsys, ["quantize", "--model", str(toy["spk"]), "--calib-samples", "10", "--no-progress",
                          "-o", str(frozen)])
    assert "MAC baseline" in out
    assert isinstance(load_frozen(frozen), FrozenSpiking)
    assert isinstance(load_frozen(frozen.with_name("m.baseline.snnhw")), FrozenBaseline)
    assert report_path(frozen).is_file() and not frozen.with_suffix(".json").exists()

    record = tmp_path / "e" / "v" / "eval.json"
    _ok(capsys, ["eval", "--model", str(frozen), "--json", str(record), "--no-progress"])
    assert json.loads(record.read_text())["kind"] == "frozen-spiking"
    energy = tmp_path / "en" / "r" / "energy.json"
    _ok(capsys, ["energy", "--golden", str(frozen), "--samples", "4", "--json", str(energy), "--no-progress"])
    assert json.loads(energy.read_text())["samples"] == 4


def test_an_output_under_a_file_is_a_one_line_error(tmp_path: Path, toy: dict[str, Path],
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory\n")
    for argv in (["quantize", "--model", str(toy["spk"]), "--no-progress", "-o", str(blocker / "m.snnhw")],
                 ["convert", "--model", str(toy["hard"]), "-o", str(blocker / "c.pt")],
                 ["eval", "--model", str(toy["hard"]), "--no-progress", "--json", str(blocker / "e.json")]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and err.startswith("snnhw: error: ") and "Traceback" not in err


# ------------------------------------------------------------------------- progress

REQUIRED = {
    "train": ["-o", "x.pt"],
    "convert": ["--model", "m.pt", "-o", "x.pt"],
    "quantize": ["--model", "m.pt", "-o", "x.snnhw"],
    "eval": ["--model", "m.pt"],
    "energy": ["--golden", "m.snnhw"],
}


@pytest.mark.parametrize("command", sorted(REQUIRED))
def test_no_progress_is_accepted_by_each_command(command: str) -> None:
    parser = build_parser()
    assert parser.parse_args([command, *REQUIRED[command]]).progress is True
    assert parser.parse_args([command, *REQUIRED[command], "--no-progress"]).progress is False


def test_progress_enabled_needs_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    on, off = argparse.Namespace(progress=True), argparse.Namespace(progress=False)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    assert not progress_enabled(on) and not progress_enabled(off)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert progress_enabled(on) and not progress_enabled(off)


def test_no_bars_when_stderr_is_not_a_terminal(tmp_path: Path, toy: dict[str, Path],
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """capsys's stderr is no terminal: without --no-progress, no command draws a bar."""
    frozen = tmp_path / "m.snnhw"
    commands = [
        ["train", "--data", "npz", "--data-dir", str(toy["data"]), *TINY, "-o", str(tmp_path / "h.pt")],
        ["convert", "--model", str(toy["hard"]), "--T", "2", "--eval", "-o", str(tmp_path / "c.pt")],
        ["quantize", "--model", str(toy["spk"]), "--calib-samples", "10", "-o", str(frozen)],
        ["eval", "--model", str(toy["spk"])],
        ["eval", "--model", str(frozen)],
        ["energy", "--golden", str(frozen), "--baseline", str(frozen.with_name("m.baseline.snnhw")),
         "--samples", "4"],
    ]
    for argv in commands:
        _, err = _ok(capsys, argv)
        assert not any(mark in err for mark in BAR_MARKS), f"{argv[0]} drew a progress bar:\n{err}"


# ------------------------------------------------------------------ recorded sources

def test_quantize_finds_a_recorded_source_beside_the_checkpoint(
        tmp_path: Path, toy: dict[str, Path], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """A spiking checkpoint recording its hard source by bare name (as the bundled one does)."""
    pair = tmp_path / "pair"
    pair.mkdir()
    (pair / "hard.pt").write_bytes(toy["hard"].read_bytes())
    spk = load_checkpoint(toy["spk"])
    save_checkpoint(pair / "spk.pt", model=spk.build_model(), data_meta=spk.data_meta,
                    class_names=spk.class_names, normalisation=spk.normalisation, metrics=spk.metrics,
                    history=spk.history, source={"kind": "conversion", "from": "hard.pt"})
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    out, _ = _ok(capsys, ["quantize", "--model", str(pair / "spk.pt"), "--calib-samples", "10", "--no-progress",
                          "-o", "m.snnhw"])
    assert "MAC baseline" in out and "no baseline" not in out
    base = load_frozen(elsewhere / "m.baseline.snnhw")
    assert isinstance(base, FrozenBaseline) and base.meta["checkpoint"] == str((pair / "hard.pt").resolve())


def _default_data_present() -> bool:
    if not DEFAULT_MODEL.is_file():
        return False
    source = load_checkpoint(DEFAULT_MODEL).data_meta.get("source")
    return bool(source) and Path(source).exists()


@pytest.mark.skipif(not _default_data_present(), reason="the bundled model's dataset (UCI HAPT) is not here")
def test_quantize_of_the_bundled_model_finds_its_baseline_source(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    out, _ = _ok(capsys, ["quantize", "--model", str(DEFAULT_MODEL), "--calib-samples", "16", "--no-progress",
                          "-o", "runs/har.snnhw"])
    assert "no baseline" not in out and "MAC baseline" in out
    base = load_frozen(tmp_path / "runs" / "har.baseline.snnhw")
    assert isinstance(base, FrozenBaseline)
    assert base.meta["checkpoint"] == str((DEFAULT_MODEL.parent / "default_har_hard.pt").resolve())
