"""The frozen-model file: round trips, and refusal of every kind of damaged or foreign file."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from snnhw.errors import UserError
from snnhw.quant.frozen import FROZEN_VERSION, ClipGate, FrozenSpiking
from snnhw.quant.frozen_io import HEADER_NAME, is_frozen_file, load_frozen, save_frozen, validate_frozen
from snnhw.quant.golden import run_baseline, run_spiking
from snnhw.quant.synthetic import random_frozen_baseline, random_frozen_spiking, random_inputs


def _spiking(**kw) -> FrozenSpiking:
    args = dict(input_size=4, hidden_size=6, T=3, num_layers=2, encoding="direct", nonspiking_gate="g", leak="lif",
                head_hidden=5)
    args.update(kw)
    model = random_frozen_spiking(11, **args)
    model.meta = {"note": "test", "model_config": {"T": args["T"]}}
    model.scales = {"input": model.input_scale}
    return model


def _equal(a, b) -> None:
    """Structural equality of two frozen models (arrays compared exactly)."""
    assert type(a) is type(b)
    for f in dataclasses.fields(a):
        va, vb = getattr(a, f.name), getattr(b, f.name)
        if f.name == "layers":
            for la, lb in zip(va, vb, strict=True):
                _equal(la, lb)
        elif f.name == "head":
            _equal(va, vb)
        elif isinstance(va, np.ndarray):
            assert vb.dtype == np.int64 and np.array_equal(va, vb), f.name
        else:
            assert va == vb, f.name


@pytest.mark.parametrize("kw", [
    {}, {"encoding": "rate", "nonspiking_gate": "i", "num_layers": 1, "head_hidden": 0, "leak": "gt1"},
    {"leak": "if", "saturate": True},
])
def test_spiking_round_trip_is_exact(tmp_path: Path, kw: dict) -> None:
    model = _spiking(**kw)
    path = save_frozen(tmp_path / "m.snnhw", model)
    assert is_frozen_file(path)
    loaded = load_frozen(path)
    _equal(model, loaded)
    x_q, lengths = random_inputs(model, 2, 5, 6)
    assert np.array_equal(run_spiking(model, x_q, lengths).logits, run_spiking(loaded, x_q, lengths).logits)


def test_baseline_round_trip_is_exact(tmp_path: Path) -> None:
    model = random_frozen_baseline(5, input_size=4, hidden_size=6, num_layers=2, head_hidden=3)
    loaded = load_frozen(save_frozen(tmp_path / "b.snnhw", model))
    _equal(model, loaded)
    x_q, lengths = random_inputs(model, 2, 5, 6)
    assert np.array_equal(run_baseline(model, x_q, lengths).logits, run_baseline(loaded, x_q, lengths).logits)


def test_header_records_everything(tmp_path: Path) -> None:
    path = save_frozen(tmp_path / "m.snnhw", _spiking())
    with zipfile.ZipFile(path) as z:
        header = json.loads(z.read(HEADER_NAME))
    assert header["format"] == "snnhw-frozen" and header["version"] == FROZEN_VERSION and header["kind"] == "spiking"
    assert header["sizes"] == {"input_size": 4, "hidden_sizes": [6, 6], "num_layers": 2, "num_classes": 4,
                               "head_hidden": 5}
    layer = header["layers"][0]
    assert layer["g"]["type"] == "clip" and layer["f"]["type"] == "binary" and layer["c"]["type"] == "ternary"
    assert layer["f"]["leak"] == [[1, 0], [-1, 3]]
    for name, entry in header["arrays"].items():
        with zipfile.ZipFile(path) as z:
            assert hashlib.sha256(z.read(entry["file"])).hexdigest() == entry["sha256"], name


# --------------------------------------------------------------------------- damaged files

def _rewrite(src: Path, dst: Path, edit) -> Path:
    """Copy the archive, letting ``edit(header, blobs)`` change the header dict and array bytes."""
    with zipfile.ZipFile(src) as z:
        header = json.loads(z.read(HEADER_NAME))
        blobs = {n: z.read(n) for n in z.namelist() if n != HEADER_NAME}
    edit(header, blobs)
    with zipfile.ZipFile(dst, "w") as z:
        z.writestr(HEADER_NAME, json.dumps(header))
        for n, b in blobs.items():
            z.writestr(n, b)
    return dst


def _npy(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


@pytest.fixture()
def saved(tmp_path: Path) -> Path:
    return save_frozen(tmp_path / "m.snnhw", _spiking())


def _refused(path: Path, *fragments: str) -> str:
    with pytest.raises(UserError) as info:
        load_frozen(path)
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_truncated_file_is_refused(saved: Path, tmp_path: Path) -> None:
    data = saved.read_bytes()
    for cut in (len(data) // 3, len(data) - 30, 100):
        bad = tmp_path / f"cut{cut}.snnhw"
        bad.write_bytes(data[:cut])
        _refused(bad)
        assert not is_frozen_file(bad)


def test_every_flipped_byte_is_detected(saved: Path, tmp_path: Path) -> None:
    """Flip one byte at many positions: each either refuses to load or (never) loads the same model."""
    data = saved.read_bytes()
    original = load_frozen(saved)
    bad = tmp_path / "flip.snnhw"
    loaded_same = 0
    for pos in range(0, len(data), max(1, len(data) // 150)):
        flipped = bytearray(data)
        flipped[pos] ^= 0x5A
        bad.write_bytes(bytes(flipped))
        try:
            model = load_frozen(bad)
        except UserError:
            continue
        _equal(original, model)  # a flip in zip metadata that changes nothing may load, identical
        loaded_same += 1
    assert loaded_same < 20


def test_array_edit_without_new_hash_is_refused(saved: Path, tmp_path: Path) -> None:
    def edit(header, blobs):
        name = header["arrays"]["layer0.w_h"]["file"]
        a = np.load(io.BytesIO(blobs[name]))
        a[0, 0] += 1
        blobs[name] = _npy(a)
    _refused(_rewrite(saved, tmp_path / "e.snnhw", edit), "layer0.w_h", "SHA-256")


def _edit_array(saved: Path, dst: Path, array: str, change) -> Path:
    def edit(header, blobs):
        entry = header["arrays"][array]
        a = np.load(io.BytesIO(blobs[entry["file"]]))
        a = change(a)
        blobs[entry["file"]] = _npy(a)
        entry["sha256"] = hashlib.sha256(blobs[entry["file"]]).hexdigest()
        entry["shape"] = list(a.shape)
    return _rewrite(saved, dst, edit)


def test_weight_beyond_its_width_is_refused(saved: Path, tmp_path: Path) -> None:
    def big(a):
        a[1, 2] = 128
        return a
    _refused(_edit_array(saved, tmp_path / "w.snnhw", "layer0.w_x", big), "w_x", "8-bit")


def test_weight_edit_breaking_the_accumulator_bound_is_refused(saved: Path, tmp_path: Path) -> None:
    def saturate_all(a):
        return np.where(a >= 0, 127, -128)
    _refused(_edit_array(saved, tmp_path / "a.snnhw", "layer1.w_h", saturate_all), "acc_bits")


def test_wrong_shape_and_dtype_are_refused(saved: Path, tmp_path: Path) -> None:
    _refused(_edit_array(saved, tmp_path / "s.snnhw", "layer0.bias", lambda a: a[:-1]), "bias", "shape")
    _refused(_edit_array(saved, tmp_path / "d.snnhw", "layer0.bias", lambda a: a.astype(np.float64)), "dtype")
    _refused(_edit_array(saved, tmp_path / "z.snnhw", "lfsr_seeds", lambda a: a * 0), "lfsr_seeds")


@pytest.mark.parametrize("field,value,fragment", [
    (("layers", 0, "f", "theta"), 0, "threshold"),
    (("layers", 0, "f", "membrane_bits"), 3, "membrane"),
    (("layers", 0, "f", "leak"), [[2, 0]], "leak"),
    (("layers", 0, "f", "leak_rounding"), "up", "leak_rounding"),
    (("layers", 1, "c", "leak_rounding"), 1, "leak_rounding"),
    (("layers", 0, "c", "shift_pos"), -1, "shift"),
    (("layers", 0, "g", "lo"), 0, "clip lo"),
    (("layers", 0, "x_shift"), [0, 0, 0], "x_shift"),
    (("layers", 1, "acc_bits"), 4, "bias"),
    (("weight_bits",), 7, "7-bit"),
    (("T",), 0, "T"),
    (("encoding",), "poisson", "encoding"),
    (("nonspiking_gate",), "i", "clip gate"),
    (("sizes", "num_classes"), 9, "num_classes"),
    (("version",), FROZEN_VERSION + 1, "version"),
    (("format",), "other", "not an snnhw frozen model"),
])
def test_header_edits_are_refused(saved: Path, tmp_path: Path, field: tuple, value, fragment: str) -> None:
    def edit(header, blobs):
        d = header
        for key in field[:-1]:
            d = d[key]
        d[field[-1]] = value
    _refused(_rewrite(saved, tmp_path / "h.snnhw", edit), fragment)


def _layers_neurons(header: dict):
    for layer in header["layers"]:
        for gate in ("f", "i", "g", "o", "c"):
            if layer[gate]["type"] != "clip":
                yield layer[gate]


def test_version_1_files_load_with_floored_leaks(saved: Path, tmp_path: Path) -> None:
    """A format-1 file (written before ``leak_rounding``) loads with every leak term floored, as
    it was quantized and verified; the same model read as format 2 rounds to nearest."""
    def to_version_1(header, blobs):
        header["version"] = 1
        for neuron in _layers_neurons(header):
            del neuron["leak_rounding"]
    old = load_frozen(_rewrite(saved, tmp_path / "v1.snnhw", to_version_1))
    new = load_frozen(saved)
    rounding = {(k, g): getattr(layer, g).leak_rounding for m, k in ((old, "old"), (new, "new"))
                for layer in m.layers for g in ("f", "i", "o", "c")}
    assert {r for (k, _), r in rounding.items() if k == "old"} == {"floor"}
    assert {r for (k, _), r in rounding.items() if k == "new"} == {"nearest"}
    x = random_inputs(new, 2, 3, 5)[0]
    assert not np.array_equal(run_spiking(old, x, None, trace=True).trace[0]["U_f"],
                              run_spiking(new, x, None, trace=True).trace[0]["U_f"])

    def drop_field(header, blobs):
        del header["layers"][0]["o"]["leak_rounding"]
    _refused(_rewrite(saved, tmp_path / "missing.snnhw", drop_field), "layers[0].o.leak_rounding is missing")


def test_foreign_and_missing_files_are_refused(tmp_path: Path) -> None:
    foreign = tmp_path / "foreign.zip"
    with zipfile.ZipFile(foreign, "w") as z:
        z.writestr("readme.txt", "hello")
    _refused(foreign, "not an snnhw frozen model")
    assert not is_frozen_file(foreign)
    text = tmp_path / "text.snnhw"
    text.write_text("not a zip")
    _refused(text, "corrupted")
    _refused(tmp_path / "missing.snnhw", "does not exist")
    extra = tmp_path / "extra.snnhw"
    save_frozen(extra, _spiking())
    with zipfile.ZipFile(extra, "a") as z:
        z.writestr("arrays/evil.npy", _npy(np.zeros(2, dtype=np.int64)))
    _refused(extra, "unlisted")


def test_save_refuses_invalid_models(tmp_path: Path) -> None:
    model = _spiking()
    model.layers[0].g = ClipGate(-5, 5) if model.nonspiking_gate == "i" else model.layers[0].f
    with pytest.raises(UserError):
        save_frozen(tmp_path / "x.snnhw", model)
    assert not (tmp_path / "x.snnhw").exists()
    with pytest.raises(UserError, match="is a directory"):
        save_frozen(tmp_path, _spiking())
    (tmp_path / "file").write_text("not a directory\n")
    with pytest.raises(UserError, match="cannot create directory"):
        save_frozen(tmp_path / "file" / "x.snnhw", _spiking())
    assert save_frozen(tmp_path / "new" / "dir" / "x.snnhw", _spiking()).is_file()  # parents created


def test_validate_accepts_synthetic_models() -> None:
    for gate in ("g", "i"):
        for enc in ("direct", "rate"):
            validate_frozen(_spiking(nonspiking_gate=gate, encoding=enc))
    validate_frozen(random_frozen_baseline(1, input_size=3, hidden_size=4))
