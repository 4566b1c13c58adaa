"""Front-end CLI end to end on a tiny npz dataset: train hard → convert → fine-tune → eval."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from snnhw.cli import main
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
    assert status == 2
    assert "Traceback" not in out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("snnhw: error: "), err
    assert message in lines[0], lines[0]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_npz(tmp_path_factory.mktemp("data") / "toy.npz")


def test_train_convert_finetune_eval(tmp_path: Path, data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    hard, conv, spk = tmp_path / "hard.pt", tmp_path / "conv.pt", tmp_path / "spk.pt"
    out = _ok(capsys, ["train", "--data", "npz", "--data-dir", str(data), "--data-opt", "test_fraction=0.25",
                       "--epochs", "3", "--seed", "1", *QUICK, "-o", str(hard)])
    assert "test accuracy" in out
    h = load_checkpoint(hard)
    assert not h.cfg.spiking and h.cfg.hidden_size == 8 and h.class_names == ["a", "b", "c"]
    assert h.data_meta["dataset"] == "npz" and h.data_meta["options"]["test_fraction"] == 0.25
    assert len(h.history) == h.metrics["epochs_run"] == 3
    summary = json.loads(hard.with_suffix(".json").read_text())
    assert summary["metrics"]["test_accuracy"] == h.metrics["test_accuracy"]

    out = _ok(capsys, ["convert", "--model", str(hard), "--T", "2", "--nonspiking-gate", "i", "--eval",
                       "--no-progress", "-o", str(conv)])
    c = load_checkpoint(conv)
    assert c.cfg == h.cfg.replace(spiking=True, T=2, nonspiking_gate="i")
    assert c.source is not None and c.source["kind"] == "conversion" and c.history == []
    assert f"{100 * c.metrics['test_accuracy']:.2f} %" in out

    _ok(capsys, ["train", "--init", str(hard), "--T", "2", "--no-train-leak", "--epochs", "1",
                 "--batch-size", "32", "--lr", "0.01", "--no-progress", "-o", str(spk)])
    kd = tmp_path / "kd.pt"
    _ok(capsys, ["train", "--init", str(hard), "--T", "2", "--epochs", "1", "--distill", "0.5",
                 "--distill-temperature", "3", "--ema", "0.9", "--batch-size", "32", "--lr", "0.01",
                 "--no-progress", "-o", str(kd)])
    settings = json.loads(kd.with_suffix(".json").read_text())["metrics"]["settings"]
    assert (settings["distill"], settings["distill_temperature"], settings["ema"]) == (0.5, 3.0, 0.9)
    assert "recurrent_bf16" not in settings
    bf = tmp_path / "bf.pt"
    _ok(capsys, ["train", "--init", str(hard), "--T", "2", "--epochs", "1", "--bf16", "--batch-size", "32",
                 "--lr", "0.01", "--no-progress", "-o", str(bf)])
    assert json.loads(bf.with_suffix(".json").read_text())["metrics"]["settings"]["recurrent_bf16"] is True
    s = load_checkpoint(spk)
    assert s.cfg == h.cfg.replace(spiking=True, T=2, train_leak=False)
    assert s.data_meta["options"] == h.data_meta["options"] and s.normalisation == h.normalisation
    assert s.source is not None and s.source["init"] == str(hard.resolve())
    leaks = {n: t for n, t in s.state_dict.items() if "leak" in n}
    assert leaks and all(bool((t == 1).all()) for t in leaks.values()), "λ frozen at its IF value 1"

    # a conversion schedule: the T = 2 model re-timed to T = 3 and fine-tuned with the hard LSTM as teacher
    t3 = tmp_path / "t3.pt"
    out = _ok(capsys, ["train", "--init", str(kd), "--T", "3", "--epochs", "1", "--distill", "0.5",
                       "--batch-size", "32", "--lr", "0.01", "--no-progress", "-o", str(t3)])
    assert f"re-timed {kd} from T = 2 to T = 3" in out
    r = load_checkpoint(t3)
    assert r.cfg == h.cfg.replace(spiking=True, T=3) and r.source is not None
    assert r.source["kind"] == "re-timing + fine-tuning" and r.source["init"] == str(hard.resolve())
    assert r.source["spiking_init"] == str(kd.resolve()) and r.source["init_config"]["T"] == 2

    # a spiking --init fine-tuned under this run's training switches: λ frozen, another surrogate γ
    frozen = tmp_path / "frozen.pt"
    _ok(capsys, ["train", "--init", str(kd), "--epochs", "1", "--no-train-leak", "--surrogate-gamma", "1.0",
                 "--batch-size", "32", "--lr", "0.01", "--no-progress", "-o", str(frozen)])
    f = load_checkpoint(frozen)
    assert f.cfg == h.cfg.replace(spiking=True, T=2, train_leak=False, gamma=1.0)
    kd_state = load_checkpoint(kd).state_dict
    leaks = [n for n in f.state_dict if "leak" in n]
    assert leaks and all(torch.equal(f.state_dict[n], kd_state[n]) for n in leaks), "λ kept"
    assert any(not torch.equal(f.state_dict[n], kd_state[n]) for n in f.state_dict if "weight" in n)

    record = tmp_path / "eval.json"
    out = _ok(capsys, ["eval", "--model", str(spk), "--json", str(record), "--no-progress"])
    result = json.loads(record.read_text())
    assert result["accuracy"] == s.metrics["test_accuracy"] and result["n"] == s.metrics["test_n"]
    assert f"test accuracy {100 * result['accuracy']:.2f} %" in out
    out = _ok(capsys, ["eval", "--model", str(hard), "--split", "val", "--data-dir", str(data), "--no-progress"])
    assert f"val accuracy {100 * h.metrics['val_accuracy']:.2f} %" in out


def test_user_errors(tmp_path: Path, data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    hard = tmp_path / "hard.pt"
    _ok(capsys, ["train", "--data", "npz", "--data-dir", str(data), "--epochs", "1", "--spiking", "--T", "1",
                 *QUICK, "-o", str(hard)])  # a spiking model trained from scratch
    text = tmp_path / "notes.txt"
    text.write_text("not a model\n")
    bare = tmp_path / "bare.pt"
    torch.save({"w": torch.zeros(2)}, bare)
    train = ["train", "--data", "npz", "--data-dir", str(data), "--epochs", "1", *QUICK, "-o", str(tmp_path / "x.pt")]
    cases = [
        (["eval", "--model", str(tmp_path / "missing.pt")], "does not exist"),
        (["eval", "--model", str(text)], "not an snnhw model file"),
        (["eval", "--model", str(bare)], "not an snnhw checkpoint"),
        (["eval", "--model", str(hard), "--data-dir", str(tmp_path / "gone")], "does not exist"),
        (["convert", "--model", str(hard), "-o", str(tmp_path / "c.pt")], "already a spiking model"),
        (["train", "--init", str(hard), "--distill", "0.5", "-o", str(tmp_path / "y.pt")],
         "needs the hard LSTM it was converted from"),
        (["train", "--init", str(hard), "--encoding", "rate", "-o", str(tmp_path / "y.pt")], "only at another T"),
        (["train", "--init", str(hard), "--no-shift", "-o", str(tmp_path / "y.pt")], "only at another T"),
        ([*train, "--data-opt", "test_fraction"], "key=value"),
        ([*train, "--data-opt", "bogus=1"], "unknown option"),
        ([*train, "--data-dir", str(tmp_path / "nowhere")], "does not exist"),
        ([*train, "--spiking", "--T", "0"], "T must be"),
        ([*train, "--epochs", "0"], "epochs"),
        ([*train, "--limit-train", "0"], "--limit-train"),
        ([*train, "--spiking", "--surrogate-gamma", "0"], "--surrogate-gamma must be a finite number > 0, got 0.0"),
        ([*train, "--spiking", "--surrogate-gamma", "nan"], "--surrogate-gamma must be a finite number > 0, got nan"),
        ([*train, "--distill", "0.5"], "--distill needs --init"),
        ([*train, "--ema", "1"], "weight-average decay"),
        ([*train, "--ema", "0.9", "--ema-warmup", "0.5"], "warm-up must be a number ≥ 1, got 0.5"),
        ([*train, "--augment-scale", "1.5"], "gain change must be in [0, 1), got 1.5"),
        ([*train, "--weight-noise", "1.5"], "weight noise must be in [0, 1), got 1.5"),
        ([*train, "--qat"], "--qat trains a spiking model"),
        ([*train, "--bf16"], "spiking models only"),
        (["train", "--data-dir", str(data), "-o", str(tmp_path / "z.pt")], "--data is required"),
        (["train", "--data", "npz", "--data-dir", str(data), "-o", str(text / "z.pt")], "not a directory"),
        (["train", "--data", "npz", "--data-dir", str(data), "-o", str(tmp_path / "z.json")], "must not end in .json"),
    ]
    for argv, message in cases:
        _fails(capsys, argv, message)
    assert not (tmp_path / "x.pt").exists()


def test_no_validation_split_keeps_the_last_epoch(tmp_path: Path, data: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """Small datasets: ``--val-fraction 0`` trains on every training sequence and keeps the last
    epoch; ``--select last`` does so with a validation split too; ``--select best`` without one is
    a one-line error. The kept weights are the last epoch's: equal to a run stopped there."""
    base = ["train", "--data", "npz", "--data-dir", str(data), "--seed", "1", *QUICK]
    out = _ok(capsys, [*base, "--epochs", "3", "--val-fraction", "0", "-o", str(tmp_path / "last.pt")])
    assert "last epoch 3 kept (no validation split)" in out
    last = load_checkpoint(tmp_path / "last.pt")
    assert last.metrics["best_epoch"] == 3 and last.metrics["settings"]["select"] == "last"
    assert last.data_meta["sizes"]["val"] == 0
    _fails(capsys, [*base, "--epochs", "1", "--val-fraction", "0", "--select", "best", "-o", str(tmp_path / "x.pt")],
           "--select last")
    out = _ok(capsys, [*base, "--epochs", "3", "--select", "last", "-o", str(tmp_path / "last_val.pt")])
    assert "last epoch 3 kept" in out
    _ok(capsys, [*base, "--epochs", "3", "--select", "last", "--patience", "1", "-o", str(tmp_path / "p.pt")])
    assert load_checkpoint(tmp_path / "p.pt").metrics["epochs_run"] == 3  # patience needs a selection
    state = load_checkpoint(tmp_path / "last_val.pt").state_dict
    same = load_checkpoint(tmp_path / "p.pt").state_dict
    assert all(torch.equal(state[k], same[k]) for k in state)


def test_an_ensemble_teacher(tmp_path: Path, data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--teacher`` repeated: the run distils from the averaged logits of those checkpoints (one of
    them trained on another split, hence another normalisation), reproducibly, records them, and
    refuses a teacher without ``--distill`` or of other data."""
    from snnhw.data.base import Normalisation
    from snnhw.train.teacher import renormalisation

    hard = {s: tmp_path / f"hard{s}.pt" for s in (1, 2)}
    for seed, path in hard.items():
        _ok(capsys, ["train", "--data", "npz", "--data-dir", str(data), "--epochs", "2", "--seed", str(seed),
                     *QUICK, "-o", str(path)])
    h1, h2 = load_checkpoint(hard[1]), load_checkpoint(hard[2])
    assert renormalisation(Normalisation.from_dict(h1.normalisation), Normalisation.from_dict(h2.normalisation))
    base = ["train", "--init", str(hard[1]), "--T", "2", "--epochs", "1", "--distill", "0.9", "--batch-size", "32",
            "--lr", "0.01", "--no-progress"]
    ensemble = ["--teacher", str(hard[1]), "--teacher", str(hard[2])]
    for name, extra in (("own", []), ("ens", ensemble), ("ens2", ensemble), ("other", ["--teacher", str(hard[2])])):
        _ok(capsys, [*base, *extra, "-o", str(tmp_path / f"{name}.pt")])
    kd = {name: load_checkpoint(tmp_path / f"{name}.pt") for name in ("own", "ens", "ens2", "other")}
    assert kd["ens"].metrics["teachers"] == [str(hard[1].resolve()), str(hard[2].resolve())]
    assert "teachers" not in kd["own"].metrics
    assert all(torch.equal(kd["ens"].state_dict[k], kd["ens2"].state_dict[k]) for k in kd["ens"].state_dict)
    for other in ("own", "other"):
        assert any(not torch.equal(kd["ens"].state_dict[k], kd[other].state_dict[k]) for k in kd["ens"].state_dict)

    wide = write_npz(tmp_path / "wide.npz", features=4)
    arrays = dict(np.load(wide))
    np.savez(wide, **{**arrays, "class_names": np.array(["a", "b", "c", "d"])})
    _ok(capsys, ["train", "--data", "npz", "--data-dir", str(wide), "--epochs", "1", *QUICK, "-o", str(tmp_path / "w.pt")])
    undistilled = [arg for arg in base if arg not in ("--distill", "0.9")]
    _fails(capsys, [*undistilled, "--teacher", str(hard[2]), "-o", str(tmp_path / "x.pt")],
           "--teacher needs --distill")
    _fails(capsys, [*base, "--teacher", str(tmp_path / "w.pt"), "-o", str(tmp_path / "x.pt")],
           "does not fit the data: it has 4 features")
    _fails(capsys, [*base, "--teacher", str(tmp_path / "gone.pt"), "-o", str(tmp_path / "x.pt")], "does not exist")
    assert not (tmp_path / "x.pt").exists()
