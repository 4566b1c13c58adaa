"""Checkpoint format: round trip, safety against code in the file, and refusal of bad files."""

from __future__ import annotations

import json
import os
import pickle
import zipfile
from pathlib import Path

import pytest
import torch

from snnhw.errors import UserError
from snnhw.model import ModelConfig, build_model
from snnhw.train.checkpoint import (
    FORMAT,
    FORMAT_VERSION,
    is_torch_archive,
    load_checkpoint,
    resolve_source,
    save_checkpoint,
)

HARD = ModelConfig(input_size=3, num_classes=3, hidden_size=8)
SPIKING = HARD.replace(spiking=True, T=2, encoding="direct", nonspiking_gate="g")

META = {
    "data_meta": {"dataset": "npz", "source": "/nowhere/data.npz", "seed": 0, "val_fraction": 0.1,
                  "options": {"test_fraction": 0.2}, "limit_train": None},
    "class_names": ["a", "b", "c"],
    "normalisation": {"mean": [0.5, -0.25, 0.0], "std": [1.0, 2.0, 0.125]},
    "metrics": {"test_accuracy": 0.75, "best_epoch": 2},
    "history": [{"epoch": 1, "loss": 1.0, "val_accuracy": 0.5}, {"epoch": 2, "loss": 0.5, "val_accuracy": 0.75}],
}


def _model(cfg: ModelConfig) -> torch.nn.Module:
    torch.manual_seed(1)
    model = build_model(cfg)
    with torch.no_grad():  # make every parameter (θ, λ included) distinct from its initial value
        for p in model.parameters():
            p.add_(0.01 * torch.rand_like(p))
    return model.eval()


@pytest.mark.parametrize("cfg", [HARD, SPIKING], ids=["hard", "spiking"])
def test_round_trip_outputs_identical(tmp_path: Path, cfg: ModelConfig) -> None:
    model = _model(cfg)
    path = save_checkpoint(tmp_path / "m.pt", model=model, source={"kind": "test"}, **META)
    ckpt = load_checkpoint(path)
    assert ckpt.cfg == cfg
    assert ckpt.version == FORMAT_VERSION
    for key in ("data_meta", "class_names", "normalisation", "metrics", "history"):
        assert getattr(ckpt, key) == META[key]
    assert ckpt.source == {"kind": "test"}
    again = ckpt.build_model()
    assert type(again) is type(model)
    x = torch.randn(4, 6, 3)
    lengths = torch.tensor([6, 3, 5, 4])
    with torch.no_grad():
        assert torch.equal(again(x, lengths), model(x, lengths))
    assert set(again.state_dict()) == set(model.state_dict())
    for name, tensor in model.state_dict().items():
        assert torch.equal(again.state_dict()[name], tensor), name


def test_file_is_plain_data(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path / "m.pt", model=_model(HARD), **META)
    payload = torch.load(path, weights_only=True)
    assert payload["format"] == FORMAT and payload["format_version"] == FORMAT_VERSION
    assert isinstance(payload["meta"], str)
    assert is_torch_archive(path)
    assert not [p for p in tmp_path.iterdir() if p.name != "m.pt"], "temporary file left behind"
    umask = os.umask(0o022)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask, "permissions follow the umask, not mkstemp's 0600"


class _Exploit:
    """Unpickling this would create the file named in ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (Path.touch, (self.marker,))


def test_malicious_pickle_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"format": FORMAT, "format_version": 1, "meta": "{}", "state_dict": {}, "x": _Exploit(marker)}, path)
    with pytest.raises(UserError, match="refusing to load"):
        load_checkpoint(path)
    assert not marker.exists()
    # A plain pickle (not a torch archive) with the same payload is refused too.
    raw = tmp_path / "evil.pkl"
    raw.write_bytes(pickle.dumps(_Exploit(marker)))
    with pytest.raises(UserError):
        load_checkpoint(raw)
    assert not marker.exists()


def test_truncated_and_garbage_files_refused(tmp_path: Path) -> None:
    good = save_checkpoint(tmp_path / "m.pt", model=_model(HARD), **META)
    data = good.read_bytes()
    for name, content in (("half.pt", data[: len(data) // 2]), ("empty.pt", b""), ("text.pt", b"hello " * 20)):
        bad = tmp_path / name
        bad.write_bytes(content)
        with pytest.raises(UserError, match="truncated, corrupted or not a checkpoint"):
            load_checkpoint(bad)


def test_foreign_state_dict_refused(tmp_path: Path) -> None:
    path = tmp_path / "bare.pt"
    torch.save(_model(HARD).state_dict(), path)
    with pytest.raises(UserError, match="not an snnhw checkpoint"):
        load_checkpoint(path)
    torch.save(torch.zeros(3), path)
    with pytest.raises(UserError, match="not an snnhw checkpoint"):
        load_checkpoint(path)


def _rewrite(path: Path, **changes: object) -> None:
    payload = torch.load(path, weights_only=True)
    payload.update(changes)
    torch.save(payload, path)


def test_newer_version_refused(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path / "m.pt", model=_model(HARD), **META)
    _rewrite(path, format_version=FORMAT_VERSION + 1)
    with pytest.raises(UserError, match=f"format version {FORMAT_VERSION + 1} is not supported"):
        load_checkpoint(path)


def test_incompatible_config_refused(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path / "m.pt", model=_model(HARD), **META)
    payload = torch.load(path, weights_only=True)
    meta = json.loads(payload["meta"])
    meta["config"]["flux_capacitor"] = 1
    _rewrite(path, meta=json.dumps(meta))
    with pytest.raises(UserError, match="unknown fields"):
        load_checkpoint(path)
    del meta["config"]["flux_capacitor"]
    meta["config"]["hidden_size"] = 16  # weights are for 8 units
    _rewrite(path, meta=json.dumps(meta))
    with pytest.raises(UserError, match="weights do not fit"):
        load_checkpoint(path).build_model()
    _rewrite(path, meta="{not json")
    with pytest.raises(UserError, match="not valid JSON"):
        load_checkpoint(path)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pt")
    with pytest.raises(UserError, match="not a file"):
        load_checkpoint(tmp_path)
    with pytest.raises(UserError, match="is a directory"):
        save_checkpoint(tmp_path, model=_model(HARD), **META)
    blocker = tmp_path / "file"
    blocker.write_text("not a directory\n")
    with pytest.raises(UserError, match="cannot create directory"):
        save_checkpoint(blocker / "m.pt", model=_model(HARD), **META)


def test_save_creates_missing_parent_directories(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path / "runs" / "a" / "m.pt", model=_model(HARD), **META)
    assert path == tmp_path / "runs" / "a" / "m.pt" and load_checkpoint(path).cfg == HARD


def test_resolve_source_as_recorded_then_beside_the_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "models"
    (home / "sub").mkdir(parents=True)
    ckpt = home / "spk.pt"
    for name in ("hard.pt", "sub/deep.pt"):
        (home / name).write_bytes(b"x")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "hard.pt").write_bytes(b"y")
    monkeypatch.chdir(elsewhere)
    assert resolve_source(ckpt, None) is None and resolve_source(ckpt, "") is None
    assert resolve_source(ckpt, "hard.pt") == Path("hard.pt")  # as recorded (cwd) first
    assert resolve_source(ckpt, str(home / "hard.pt")) == home / "hard.pt"  # absolute
    assert resolve_source(ckpt, "sub/deep.pt") == home / "sub" / "deep.pt"  # relative to the checkpoint
    assert resolve_source(ckpt, "/moved/away/deep.pt") is None
    assert resolve_source(ckpt, "old/dir/gone.pt") is None
    monkeypatch.chdir(tmp_path)
    assert resolve_source(ckpt, "hard.pt") == home / "hard.pt"  # beside the checkpoint
    assert resolve_source(ckpt, "/moved/away/hard.pt") == home / "hard.pt"  # moved together: by file name


def test_failed_save_keeps_previous_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = save_checkpoint(tmp_path / "m.pt", model=_model(HARD), **META)
    before = path.read_bytes()
    with pytest.raises(TypeError, match="not JSON-able"):
        save_checkpoint(path, model=_model(SPIKING), **{**META, "metrics": {"bad": object()}})

    def crash(obj: object, handle: object) -> None:  # dies half-way through writing
        handle.write(b"partial")  # type: ignore[attr-defined]
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, model=_model(SPIKING), **META)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["m.pt"]
    assert zipfile.is_zipfile(path)
