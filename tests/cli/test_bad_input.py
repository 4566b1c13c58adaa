"""Bad input end to end: every case runs the real command line (``snnhw.cli.main``) and ends in
one ``snnhw: error: ...`` line with exit status 2, no traceback, and nothing written half-way.

Covered: damaged, edited, foreign or wrong-kind frozen models (``.snnhw``); checkpoints
(``.pt``) with missing, extra or wrongly shaped tensors, foreign or truncated; every knob and
range option of ``build`` / ``generate`` / ``verify`` / ``explore`` out of range; unusable
output paths; a second build into a locked directory; an interrupted build (atomic step JSON,
a rerun completes).
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import os
import struct
import zipfile
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest
import torch

from snnhw.cli import main
from snnhw.flow.build import LOCK_FILE, STEPS
from snnhw.hw.registry import core_specs
from snnhw.model import ModelConfig, build_model
from snnhw.quant.frozen import FROZEN_VERSION
from snnhw.quant.frozen_io import HEADER_NAME, save_frozen
from snnhw.quant.synthetic import random_frozen_baseline, random_frozen_spiking
from snnhw.train.checkpoint import save_checkpoint

COMMANDS = ("generate", "verify", "explore", "build")
"""The commands that take frozen models and knobs."""


# ------------------------------------------------------------------------------------ helpers

@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny spiking model (D = 3, H = 4, T = 2) and its MAC baseline, as frozen files."""
    root = tmp_path_factory.mktemp("bad_input")
    return {"spiking": save_frozen(root / "tiny.snnhw", random_frozen_spiking(1, input_size=3, hidden_size=4, T=2)),
            "baseline": save_frozen(root / "tiny.baseline.snnhw",
                                    random_frozen_baseline(2, input_size=3, hidden_size=4))}


def _argv(command: str, model: Path, out: Path, *extra: str, baseline: Path | None = None) -> list[str]:
    """``command`` on the spiking-core model ``model`` (and ``baseline``) into ``out``, fast settings."""
    if command == "build":
        models = ["--model", str(model), *([str(baseline)] if baseline else []), "--no-verify", "--no-yosys"]
    else:
        models = ["--golden", str(model), *(["--baseline", str(baseline)] if baseline else [])]
    fast = ["--no-synth"] if command == "explore" else []
    return [command, *models, "-o", str(out), "--no-progress", *fast, *extra]


def _refused(capsys: pytest.CaptureFixture[str], argv: list[str], *fragments: str) -> str:
    """Run ``argv``: exit status 2 and exactly one ``snnhw: error:`` line holding ``fragments``."""
    status = main(argv)
    err = capsys.readouterr().err
    assert status == 2, err
    assert err.startswith("snnhw: error: ") and err.count("\n") == 1, err
    for fragment in fragments:
        assert fragment in err, err
    return err


def _nothing_written(out: Path) -> None:
    """No partial output: ``out`` is absent or empty; a refused build leaves its lock file and at
    most a ``load.json`` recording the failure (no model, RTL or report)."""
    if not out.exists():
        return
    names = {p.name for p in out.iterdir()}
    assert names <= {LOCK_FILE, "load.json"}, names
    if "load.json" in names:
        assert json.loads((out / "load.json").read_text())["status"] == "failed"


def _entry_data_offset(data: bytes, name: str) -> tuple[int, int]:
    """(offset, size) of the stored (compressed) bytes of archive entry ``name`` in ``data``."""
    info = zipfile.ZipFile(io.BytesIO(data)).getinfo(name)
    name_len, extra_len = struct.unpack("<HH", data[info.header_offset + 26:info.header_offset + 30])
    return info.header_offset + 30 + name_len + extra_len, info.compress_size


def _flip_in_entry(src: Path, dst: Path, entry: str) -> Path:
    """``src`` with one byte flipped in the middle of ``entry``'s stored bytes."""
    data = bytearray(src.read_bytes())
    offset, size = _entry_data_offset(bytes(data), entry)
    data[offset + size // 2] ^= 0x10
    dst.write_bytes(bytes(data))
    return dst


def _rewrite(src: Path, dst: Path, edit: Callable[[dict, dict[str, bytes]], None]) -> Path:
    """``src`` rewritten as a valid zip (fresh CRCs) after ``edit(header, blobs)``."""
    with zipfile.ZipFile(src) as archive:
        blobs = {name: archive.read(name) for name in archive.namelist()}
    header = json.loads(blobs.pop(HEADER_NAME))
    edit(header, blobs)
    with zipfile.ZipFile(dst, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(HEADER_NAME, json.dumps(header))
        for name, blob in blobs.items():
            archive.writestr(name, blob)
    return dst


def _edit_array_keep_hash(header: dict, blobs: dict[str, bytes]) -> None:
    name = header["arrays"]["layer0.w_h"]["file"]
    array = np.load(io.BytesIO(blobs[name]))
    array[0, 0] = -array[0, 0] + 1
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    blobs[name] = buffer.getvalue()


def _bump_version(header: dict, blobs: dict[str, bytes]) -> None:
    header["version"] = FROZEN_VERSION + 1


# ------------------------------------------------------------------------------ frozen models

def _bad_frozen(case: str, models: dict[str, Path], tmp: Path) -> tuple[Path, tuple[str, ...]]:
    """A bad frozen model for the spiking-core option, and fragments of its error."""
    good = models["spiking"]
    if case == "truncated":
        data = good.read_bytes()
        (tmp / "cut.snnhw").write_bytes(data[:len(data) // 2])
        return tmp / "cut.snnhw", ("cut.snnhw", "truncated or corrupted")
    if case == "array-byte":
        return _flip_in_entry(good, tmp / "a.snnhw", "arrays/layer0.w_h.npy"), ("a.snnhw", "corrupted")
    if case == "header-byte":
        return _flip_in_entry(good, tmp / "h.snnhw", HEADER_NAME), ("h.snnhw", "corrupted")
    if case == "array-edit":  # a valid archive whose array no longer matches its recorded SHA-256
        return _rewrite(good, tmp / "e.snnhw", _edit_array_keep_hash), ("layer0.w_h", "SHA-256")
    if case == "version":
        return _rewrite(good, tmp / "v.snnhw", _bump_version), (f"version {FROZEN_VERSION + 1} is not supported",)
    if case == "text":
        (tmp / "t.snnhw").write_text("just some text\n")
        return tmp / "t.snnhw", ("t.snnhw", "truncated or corrupted")
    if case == "foreign-zip":
        with zipfile.ZipFile(tmp / "z.snnhw", "w") as archive:
            archive.writestr("readme.txt", "hello")
        return tmp / "z.snnhw", ("not an snnhw frozen model",)
    assert case == "missing"
    return tmp / "nowhere.snnhw", ("does not exist",)


FROZEN_CASES = ("truncated", "array-byte", "header-byte", "array-edit", "version", "text", "foreign-zip", "missing")


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("case", FROZEN_CASES)
def test_a_bad_frozen_model_is_refused(command: str, case: str, models: dict[str, Path], tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    bad, fragments = _bad_frozen(case, models, tmp_path)
    out = tmp_path / "out"
    _refused(capsys, _argv(command, bad, out), *fragments)
    _nothing_written(out)


@pytest.mark.parametrize("command", COMMANDS)
def test_a_frozen_model_of_the_wrong_kind_is_refused(command: str, models: dict[str, Path], tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """The baseline file where the spiking model belongs (and the reverse, where the command
    takes both); build: a baseline alone, or two spiking models."""
    out = tmp_path / "out"
    if command == "build":
        _refused(capsys, _argv(command, models["baseline"], out), "needs a spiking model")
        _nothing_written(out)
        _refused(capsys, _argv(command, models["spiking"], out, baseline=models["spiking"]),
                 "two spiking wavefront core models given")
    else:
        _refused(capsys, _argv(command, models["baseline"], out), "is not a FrozenSpiking", "--golden")
        _nothing_written(out)
        _refused(capsys, _argv(command, models["spiking"], out, baseline=models["spiking"]),
                 "is not a FrozenBaseline", "--baseline")
    _nothing_written(out)


# -------------------------------------------------------------------------------- checkpoints

def _bad_checkpoint(case: str, tmp: Path) -> tuple[Path, tuple[str, ...]]:
    """A bad float checkpoint (a tiny spiking LSTM's, edited) and fragments of its error."""
    torch.manual_seed(0)
    cfg = ModelConfig(input_size=3, num_classes=2, hidden_size=4, spiking=True, T=2)
    path = save_checkpoint(tmp / f"{case}.pt", model=build_model(cfg),
                           data_meta={"dataset": "npz", "source": str(tmp / "nowhere.npz")},
                           class_names=["a", "b"], normalisation={"mean": [0.0] * 3, "std": [1.0] * 3},
                           metrics={}, history=[])
    payload = torch.load(path, weights_only=True)
    state = payload["state_dict"]
    name = next(k for k, v in state.items() if v.dim() == 2)
    fragments: tuple[str, ...] = ()
    if case == "missing-tensor":
        del state[name]
        fragments = ("missing tensors", name)
    elif case == "extra-tensor":
        state["layers.9.w_extra"] = torch.zeros(2)
        fragments = ("unexpected tensors", "layers.9.w_extra")
    elif case == "wrong-shape":
        state[name] = torch.zeros(state[name].shape[0] + 1, state[name].shape[1])
        fragments = ("wrong shapes", name)
    elif case == "bare-state-dict":
        payload = state
        fragments = ("not an snnhw checkpoint",)
    if case == "truncated":
        data = path.read_bytes()
        path.write_bytes(data[:len(data) // 2])
        return path, ("truncated, corrupted or not a checkpoint",)
    if case == "text":
        path.write_text("not a checkpoint\n")
        return path, ("truncated, corrupted or not a checkpoint",)
    torch.save(payload, path)
    return path, (path.name, *fragments)


@pytest.mark.parametrize("command", ("build", "quantize"))
@pytest.mark.parametrize("case", ("missing-tensor", "extra-tensor", "wrong-shape", "bare-state-dict", "truncated",
                                  "text"))
def test_a_bad_checkpoint_is_refused(command: str, case: str, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    bad, fragments = _bad_checkpoint(case, tmp_path)
    out = tmp_path / "out"
    if command == "build":
        _refused(capsys, _argv("build", bad, out), *fragments)
        _nothing_written(out)
    else:
        _refused(capsys, ["quantize", "--model", str(bad), "-o", str(out / "m.snnhw"), "--no-progress"], *fragments)
        assert not out.exists() or not any(out.iterdir())


# ------------------------------------------------------------------------------ option ranges

BASELINE = "+baseline"
"""Marks a case that gives the MAC baseline model too."""

INT_KNOBS = {"--" + f.name.replace("_", "-"): f.metadata["maximum"]
             for spec in core_specs() for f in fields(spec.knobs_type) if f.metadata["kind"] == "int"}
"""Every integer knob option of the registered cores (--lanes, --fanin, --engines, --proj-fanin, ...)
and its largest value (None: no upper bound)."""
INT_KNOB_RANGES = {option: "≥ 1" if top is None else f"in 1..{top}" for option, top in INT_KNOBS.items()}
"""The allowed range of each as the messages state it."""

KNOB_CASES = [
    # (command, options, fragments: the option and its allowed range)
    *[(command, [option, "0"], (f"{option} must be an integer {allowed}, not 0",))
      for command in ("generate", "verify", "build") for option, allowed in sorted(INT_KNOB_RANGES.items())],
    *[(command, [option, str(top + 1)], (f"{option} must be an integer in 1..{top}, not {top + 1}",))
      for command in ("generate", "verify", "build") for option, top in sorted(INT_KNOBS.items()) if top],
    *[(command, ["--engines", "3"], ("--engines (3) must not exceed T (2)",)) for command in ("generate", "verify",
                                                                                             "build")],
    *[(command, [BASELINE, "--lanes", "3"], ("MAC baseline core: --lanes=3 does not divide", "hidden size 4"))
      for command in ("generate", "verify", "build")],
    ("generate", [BASELINE, "--fanin", "9"], ("--fanin=9 exceeds the widest operand vector (4)",)),
    ("generate", ["--lanes", "-2"], ("--lanes must be an integer ≥ 1, not -2",)),
    ("verify", ["--samples", "0"], ("--samples must be ≥ 1, got 0",)),
    ("verify", ["--length", "0"], ("--length must be ≥ 1, got 0",)),
    *[("explore", [option, *values], (f"{option} must be ≥ 1, got {values[-1]}",))
      for option, values in (("--lanes", ["2", "0"]), ("--fanin", ["0"]), ("--engines", ["1", "-1"]),
                             ("--proj-fanin", ["0"]), ("--sequences", ["0"]), ("--length", ["0"]),
                             ("--jobs", ["0"]))],
    ("build", ["--clock-mhz", "0"], ("--clock-mhz must be a positive number, got 0.0",)),
    ("build", ["--clock-mhz", "-5"], ("--clock-mhz must be a positive number",)),
    ("build", ["--clock-mhz", "nan"], ("--clock-mhz must be a positive number, got nan",)),
    ("build", ["--clock-mhz", "inf"], ("--clock-mhz must be a positive number, got inf",)),
    *[("build", ["--budget", value], ("--budget takes a fraction of the part, 0 < F ≤ 1", repr(value)))
      for value in ("0", "1.5", "-0.1", "nan", "lots")],
    ("build", ["--budget", "0.1", "--lanes", "2"], ("--budget picks the knobs; drop --lanes",)),
    ("build", ["--explore-grid", "small"], ("--explore-grid applies with --budget only",)),
    ("build", ["--verify-sequences", "0"], ("--verify-sequences must be ≥ 1, got 0",)),
    ("build", ["--selfcheck-sequences", "0"], ("--selfcheck-sequences must be ≥ 1, got 0",)),
    ("build", ["--verify-length", "-1"], ("--verify-length must be ≥ 0, got -1",)),
]


@pytest.mark.parametrize("command,options,fragments", KNOB_CASES,
                         ids=[f"{c}{''.join(o)}" for c, o, _ in KNOB_CASES])
def test_an_option_out_of_range_is_refused(command: str, options: list[str], fragments: tuple[str, ...],
                                           models: dict[str, Path], tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    baseline = models["baseline"] if BASELINE in options else None
    argv = _argv(command, models["spiking"], out, *(o for o in options if o != BASELINE), baseline=baseline)
    _refused(capsys, argv, *fragments)
    _nothing_written(out)


# ------------------------------------------------------------------------------ output paths

@pytest.mark.parametrize("command", (*COMMANDS, "quantize"))
def test_an_output_under_a_regular_file_is_refused(command: str, models: dict[str, Path], tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """The output's parent is a regular file: no directory can be made there (even as root)."""
    blocker = tmp_path / "file"
    blocker.write_text("in the way\n")
    if command == "quantize":
        ckpt, _ = _bad_checkpoint("good", tmp_path)
        _refused(capsys, ["quantize", "--model", str(ckpt), "-o", str(blocker / "m.snnhw"), "--no-progress"],
                 f"output path {blocker} exists and is not a directory")
    else:
        _refused(capsys, _argv(command, models["spiking"], blocker / "out"),
                 f"cannot create output directory {blocker / 'out'}")
    assert blocker.read_text() == "in the way\n"


@pytest.mark.parametrize("command", COMMANDS)
def test_a_file_in_place_of_the_output_directory_is_refused(command: str, models: dict[str, Path], tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "out"
    blocker.write_text("in the way\n")
    _refused(capsys, _argv(command, models["spiking"], blocker), f"output path {blocker} exists and is not a directory")
    assert blocker.read_text() == "in the way\n"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
@pytest.mark.parametrize("command", COMMANDS)
def test_a_read_only_output_directory_is_refused(command: str, models: dict[str, Path], tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o555)
    try:
        fragment = "cannot write to the build directory" if command == "build" else "is not writable"
        _refused(capsys, _argv(command, models["spiking"], out), str(out), fragment)
        assert not any(out.iterdir())
    finally:
        out.chmod(0o755)


# ------------------------------------------------------------------------- concurrent builds

def test_a_second_build_into_a_locked_directory_is_refused(models: dict[str, Path], tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """The test process holds the directory's lock as a running build would: the build is
    refused with one line naming the directory and the holder's pid, and writes nothing."""
    out = tmp_path / "out"
    out.mkdir()
    argv = _argv("build", models["spiking"], out)
    with open(out / LOCK_FILE, "a+") as holder:
        fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)
        holder.write(f"{os.getpid()}\n")
        holder.flush()
        _refused(capsys, argv, f"another snnhw build (pid {os.getpid()}) is writing to {out}")
        assert {p.name for p in out.iterdir()} == {LOCK_FILE}
    assert main(argv) == 0  # the holder is gone: the lock is free
    capsys.readouterr()


# ------------------------------------------------------------------------ interrupted builds

def _step_records(out: Path) -> dict[str, dict]:
    """Every step JSON in ``out``, parsed (a truncated one fails the test)."""
    return {step: json.loads((out / f"{step}.json").read_text()) for step in STEPS if (out / f"{step}.json").exists()}


def _assert_complete(out: Path) -> None:
    records = _step_records(out)
    assert list(records) == list(STEPS)
    assert all(r["status"] in ("ok", "skipped") for r in records.values()), records
    assert json.loads((out / "build.json").read_text())["exit_code"] == 0
    assert (out / "report.json").is_file() and not list(out.glob(".*.tmp"))


def test_an_interrupted_build_reruns_to_completion(models: dict[str, Path], tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """Ctrl-C inside the board step: exit 130, the finished steps' JSON complete, no record of the
    interrupted step, no build.json, lock released; the same command then completes."""
    import snnhw.flow.build as flow

    def interrupted(state: flow.BuildState) -> dict:
        raise KeyboardInterrupt

    out = tmp_path / "out"
    argv = _argv("build", models["spiking"], out, baseline=models["baseline"])
    assert main(argv) == 0  # an earlier complete build in the directory
    capsys.readouterr()
    monkeypatch.setattr(flow, "step_board", interrupted)
    assert main(argv) == 130
    assert capsys.readouterr().err == "snnhw: interrupted\n"
    records = _step_records(out)
    assert list(records) == ["load", "budget", "timing", "generate", "verify"]  # this run's; the earlier run's are gone
    assert not (out / "build.json").exists() and not (out / "report.json").exists()
    with open(out / LOCK_FILE) as handle:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    monkeypatch.undo()
    assert main(argv) == 0
    capsys.readouterr()
    _assert_complete(out)


def test_an_interruption_while_a_step_json_is_written_leaves_no_truncated_file(
        models: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Ctrl-C half-way through writing ``board.json``: no truncated ``board.json`` (nor a
    temporary file) is left; a rerun completes."""
    write_text = Path.write_text

    def half_then_interrupt(self: Path, text: str, *args: object, **kwargs: object) -> int:
        if "board.json" in self.name:
            write_text(self, text[:len(text) // 2])
            raise KeyboardInterrupt
        return write_text(self, text, *args, **kwargs)

    out = tmp_path / "out"
    argv = _argv("build", models["spiking"], out, baseline=models["baseline"])
    monkeypatch.setattr(Path, "write_text", half_then_interrupt)
    assert main(argv) == 130
    capsys.readouterr()
    monkeypatch.undo()
    assert not (out / "board.json").exists() and not list(out.glob(".*.tmp"))
    assert "board" not in _step_records(out)
    assert main(argv) == 0
    capsys.readouterr()
    _assert_complete(out)


def test_the_frozen_sha256_is_that_of_the_array_bytes(models: dict[str, Path]) -> None:
    """The tamper check above relies on the header's per-array SHA-256 (docs/frozen-format.md)."""
    with zipfile.ZipFile(models["spiking"]) as archive:
        header = json.loads(archive.read(HEADER_NAME))
        for entry in header["arrays"].values():
            assert hashlib.sha256(archive.read(entry["file"])).hexdigest() == entry["sha256"]
