"""The frozen-model file (``.snnhw``): save, load and validate integer models.

One file is a zip archive holding ``header.json`` (every scalar, width, threshold, leak term,
shift, the sizes, scales and provenance, plus the shape, dtype and SHA-256 of every array) and
one ``arrays/<name>.npy`` per integer array (NumPy format, no pickles). The layout and every
field are documented in ``docs/frozen-format.md``.

Loading never trusts the file: the zip's CRCs, every array's SHA-256, the format name and
version, shapes against the declared sizes, integer dtypes, and every value against its
declared width are checked (:func:`validate_frozen`); any problem raises a
:class:`~snnhw.errors.UserError` that says what is wrong. A truncated, edited or foreign file
never loads silently.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import struct
import tempfile
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from snnhw import __version__
from snnhw.errors import UserError
from snnhw.quant import bounds
from snnhw.quant.arith import LeakRounding, signed_range, validate_leak_rounding, validate_leak_terms
from snnhw.quant.frozen import (
    FROZEN_FORMAT,
    FROZEN_VERSION,
    READABLE_VERSIONS,
    BaselineLayer,
    BinaryNeuron,
    ClipGate,
    FrozenBaseline,
    FrozenSpiking,
    IntHead,
    SpikingLayer,
    TernaryNeuron,
)

HEADER_NAME = "header.json"
"""Name of the JSON header inside the archive."""

MAX_REGISTER_BITS = 62
"""Widest register a frozen model may declare (values are computed in int64)."""

GATE_NAMES = ("f", "i", "g", "o")

_CORRUPT = (EOFError, OSError, zlib.error, NotImplementedError, RuntimeError, ValueError, KeyError,
            OverflowError, struct.error)
"""What the zip reader raises on damaged archive metadata (bad method, sizes, offsets, ...)."""

Frozen = FrozenSpiking | FrozenBaseline


# ------------------------------------------------------------------------------ encoding

def _neuron_to_json(n: BinaryNeuron | TernaryNeuron | ClipGate) -> dict[str, Any]:
    if isinstance(n, BinaryNeuron):
        return {"type": "binary", "theta": int(n.theta), "leak": [list(t) for t in n.leak],
                "leak_rounding": n.leak_rounding, "membrane_bits": int(n.membrane_bits)}
    if isinstance(n, TernaryNeuron):
        return {"type": "ternary", "theta_pos": int(n.theta_pos), "theta_neg": int(n.theta_neg),
                "shift_pos": int(n.shift_pos), "shift_neg": int(n.shift_neg),
                "leak": [list(t) for t in n.leak], "leak_rounding": n.leak_rounding,
                "membrane_bits": int(n.membrane_bits)}
    return {"type": "clip", "lo": int(n.lo), "hi": int(n.hi)}


def _head_arrays(head: IntHead) -> dict[str, np.ndarray]:
    arrays = {"head.w_out": head.w_out, "head.b_out": head.b_out}
    if head.w_hidden is not None:
        arrays["head.w_hidden"] = head.w_hidden
        arrays["head.b_hidden"] = head.b_hidden
    return arrays


def _to_header_and_arrays(model: Frozen) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The JSON header (without the ``arrays`` table) and the named arrays of ``model``."""
    arrays: dict[str, np.ndarray] = {}
    layers = []
    for index, layer in enumerate(model.layers):
        arrays[f"layer{index}.w_x"] = layer.w_x
        arrays[f"layer{index}.w_h"] = layer.w_h
        arrays[f"layer{index}.bias"] = layer.bias
        entry: dict[str, Any] = {"x_shift": [int(v) for v in layer.x_shift],
                                 "cell_bits": int(layer.cell_bits), "acc_bits": int(layer.acc_bits)}
        if isinstance(layer, SpikingLayer):
            for gate in (*GATE_NAMES, "c"):
                entry[gate] = _neuron_to_json(getattr(layer, gate))
        else:
            entry["act_mult"] = {g: [int(m) for m in layer.act_mult[g]] for g in GATE_NAMES}
            entry["c_mult"] = [int(m) for m in layer.c_mult]
            entry["act_shift"] = int(layer.act_shift)
        layers.append(entry)
    arrays.update(_head_arrays(model.head))
    head = {"has_hidden": model.head.w_hidden is not None, "hidden_shift": int(model.head.hidden_shift),
            "hidden_bits": int(model.head.hidden_bits)}
    sizes = {"input_size": model.input_size, "hidden_sizes": [l.hidden_size for l in model.layers],
             "num_layers": len(model.layers), "num_classes": model.num_classes,
             "head_hidden": 0 if model.head.w_hidden is None else int(model.head.w_hidden.shape[0])}
    header: dict[str, Any] = {"format": FROZEN_FORMAT, "version": FROZEN_VERSION,
                              "snnhw_version": __version__, "sizes": sizes}
    if isinstance(model, FrozenSpiking):
        arrays["lfsr_seeds"] = model.lfsr_seeds
        header.update(kind="spiking", T=int(model.T), encoding=model.encoding,
                      nonspiking_gate=model.nonspiking_gate, weight_bits=int(model.weight_bits),
                      input_bits=int(model.input_bits), input_scale=float(model.input_scale),
                      rate_bits=int(model.rate_bits))
    else:
        header.update(kind="baseline", weight_bits=int(model.weight_bits), act_bits=int(model.act_bits),
                      input_bits=int(model.input_bits), input_scale=float(model.input_scale))
    header.update(layers=layers, head=head, scales=model.scales, meta=model.meta)
    return header, arrays


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array, dtype=np.int64), allow_pickle=False)
    return buffer.getvalue()


def save_frozen(path: str | os.PathLike[str], model: Frozen) -> Path:
    """Validate ``model`` and write it to ``path`` (atomically: temporary file + rename);
    missing parent directories are created.

    Raises:
        UserError: the model breaks the contract (see :func:`validate_frozen`) or ``path``
            cannot be written.
    """
    validate_frozen(model)
    header, arrays = _to_header_and_arrays(model)
    blobs = {name: _npy_bytes(a) for name, a in arrays.items()}
    header["arrays"] = {
        name: {"file": f"arrays/{name}.npy", "shape": list(np.shape(arrays[name])), "dtype": "int64",
               "sha256": hashlib.sha256(blob).hexdigest()}
        for name, blob in blobs.items()
    }
    try:
        text = json.dumps(header, indent=1, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise UserError(f"frozen model metadata is not JSON-able ({exc})") from None
    target = Path(path)
    if target.is_dir():
        raise UserError(f"cannot write frozen model: {target} is a directory")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot write frozen model: cannot create directory {target.parent} "
                        f"({exc.strerror or exc})") from None
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            with zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_DEFLATED) as archive:
                archive.writestr(HEADER_NAME, text)
                for name, blob in blobs.items():
                    archive.writestr(header["arrays"][name]["file"], blob)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


# ------------------------------------------------------------------------------ decoding

def is_frozen_file(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` is a zip whose ``header.json`` names the snnhw-frozen format (cheap check)."""
    try:
        if not zipfile.is_zipfile(path):
            return False
        with zipfile.ZipFile(path) as archive:
            if HEADER_NAME not in archive.namelist():
                return False
            header = json.loads(archive.read(HEADER_NAME))
        return isinstance(header, dict) and header.get("format") == FROZEN_FORMAT
    except (zipfile.BadZipFile, *_CORRUPT):
        return False


class _Reader:
    """Typed access to the header with one-line errors naming the file and the field."""

    def __init__(self, source: Path) -> None:
        self.source = source
        self.version = FROZEN_VERSION

    def fail(self, message: str) -> UserError:
        return UserError(f"{self.source}: {message}")

    def int(self, d: dict, key: str, where: str, lo: int | None = None, hi: int | None = None) -> int:
        if not isinstance(d, dict) or key not in d:
            raise self.fail(f"header field {where}{key} is missing")
        v = d[key]
        if isinstance(v, bool) or not isinstance(v, int):
            raise self.fail(f"header field {where}{key} must be an integer, got {v!r}")
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            raise self.fail(f"header field {where}{key} = {v} is outside {lo}..{hi}")
        return v

    def get(self, d: dict, key: str, where: str, kind: type | tuple[type, ...]) -> Any:
        if not isinstance(d, dict) or key not in d:
            raise self.fail(f"header field {where}{key} is missing")
        v = d[key]
        if not isinstance(v, kind) or isinstance(v, bool) and kind is not bool:
            raise self.fail(f"header field {where}{key} has the wrong type ({type(v).__name__})")
        return v


def load_frozen(path: str | os.PathLike[str]) -> Frozen:
    """Read and validate a frozen model written by :func:`save_frozen`.

    Raises:
        UserError: the file is missing, not a zip, truncated or corrupted (CRC or SHA-256
            mismatch), a foreign zip, from another format version, or holds a model that
            breaks the contract (shapes, dtypes, widths, thresholds, leaks, seeds).
    """
    source = Path(path)
    if not source.is_file():
        raise UserError(f"frozen model {source} does not exist" if not source.exists()
                        else f"frozen model {source} is not a file")
    r = _Reader(source)
    try:
        with zipfile.ZipFile(source) as archive:
            names = set(archive.namelist())
            if HEADER_NAME not in names:
                raise r.fail(f"not an snnhw frozen model (a zip without {HEADER_NAME})")
            try:
                header = json.loads(archive.read(HEADER_NAME).decode("utf-8"))
            except (ValueError, UnicodeDecodeError) as exc:
                raise r.fail(f"{HEADER_NAME} is not valid JSON ({exc})") from None
            if not isinstance(header, dict) or header.get("format") != FROZEN_FORMAT:
                raise r.fail(f"not an snnhw frozen model (header format is not {FROZEN_FORMAT!r})")
            version = header.get("version")
            if isinstance(version, bool) or not isinstance(version, int):
                raise r.fail("frozen format version is missing or malformed")
            if version not in READABLE_VERSIONS:
                raise r.fail(f"frozen format version {version} is not supported (this snnhw "
                             f"{__version__} reads versions {', '.join(map(str, READABLE_VERSIONS))})")
            r.version = version
            table = r.get(header, "arrays", "", dict)
            arrays = {name: _read_array(archive, names, r, name, entry) for name, entry in table.items()}
            listed = {HEADER_NAME} | {e["file"] for e in table.values()}
            extra = sorted(names - listed)
            if extra:
                raise r.fail(f"archive holds unlisted entries {extra[:3]} (tampered or foreign file)")
    except zipfile.BadZipFile as exc:
        raise r.fail(f"truncated or corrupted archive ({exc})") from None
    except _CORRUPT as exc:
        raise r.fail(f"truncated or corrupted archive ({type(exc).__name__}: {exc})") from None
    model = _from_header(header, arrays, r)
    try:
        validate_frozen(model)
    except UserError as exc:
        raise r.fail(str(exc)) from None
    return model


def _read_array(archive: zipfile.ZipFile, names: set[str], r: _Reader, name: str, entry: Any) -> np.ndarray:
    if not isinstance(entry, dict) or not {"file", "shape", "dtype", "sha256"} <= set(entry):
        raise r.fail(f"array table entry {name!r} is malformed")
    file = entry["file"]
    if file not in names:
        raise r.fail(f"array {name!r} ({file}) is missing from the archive")
    blob = archive.read(file)
    digest = hashlib.sha256(blob).hexdigest()
    if digest != entry["sha256"]:
        raise r.fail(f"array {name!r} does not match its SHA-256 (the file was modified or corrupted)")
    try:
        array = np.load(io.BytesIO(blob), allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise r.fail(f"array {name!r} is not a valid .npy ({exc})") from None
    if array.dtype.kind not in "iu":
        raise r.fail(f"array {name!r} has dtype {array.dtype}, expected an integer type")
    if list(array.shape) != list(entry["shape"]):
        raise r.fail(f"array {name!r} has shape {list(array.shape)}, header says {entry['shape']}")
    if array.dtype.kind == "u" and array.size and int(array.max()) > np.iinfo(np.int64).max:
        raise r.fail(f"array {name!r} holds values beyond int64")
    return array.astype(np.int64)


def _leak(r: _Reader, d: dict, where: str) -> tuple[tuple[int, int], ...]:
    terms = r.get(d, "leak", where, list)
    try:
        if not all(isinstance(t, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in t)
                   for t in terms):
            raise ValueError("terms must be lists of integers")
        return validate_leak_terms(terms)
    except ValueError as exc:
        raise r.fail(f"header field {where}leak is invalid: {exc}") from None


def _leak_rounding(r: _Reader, d: dict, where: str) -> LeakRounding:
    if r.version == 1:  # format 1 had no field: every leak term floored
        return "floor"
    try:
        return validate_leak_rounding(r.get(d, "leak_rounding", where, str))
    except ValueError as exc:
        raise r.fail(f"header field {where}leak_rounding is invalid: {exc}") from None


def _neuron(r: _Reader, d: Any, where: str) -> BinaryNeuron | TernaryNeuron | ClipGate:
    if not isinstance(d, dict):
        raise r.fail(f"header field {where.rstrip('.')} is not a mapping")
    kind = d.get("type")
    if kind == "binary":
        return BinaryNeuron(r.int(d, "theta", where), _leak(r, d, where), r.int(d, "membrane_bits", where),
                            _leak_rounding(r, d, where))
    if kind == "ternary":
        return TernaryNeuron(r.int(d, "theta_pos", where), r.int(d, "theta_neg", where),
                             r.int(d, "shift_pos", where), r.int(d, "shift_neg", where),
                             _leak(r, d, where), r.int(d, "membrane_bits", where), _leak_rounding(r, d, where))
    if kind == "clip":
        return ClipGate(r.int(d, "lo", where), r.int(d, "hi", where))
    raise r.fail(f"header field {where}type is {kind!r}, expected binary, ternary or clip")


def _array(arrays: dict[str, np.ndarray], r: _Reader, name: str) -> np.ndarray:
    if name not in arrays:
        raise r.fail(f"array {name!r} is missing")
    return arrays[name]


def _from_header(h: dict, arrays: dict[str, np.ndarray], r: _Reader) -> Frozen:
    kind = h.get("kind")
    if kind not in ("spiking", "baseline"):
        raise r.fail(f"header field kind is {kind!r}, expected 'spiking' or 'baseline'")
    layers_json = r.get(h, "layers", "", list)
    head_json = r.get(h, "head", "", dict)
    has_hidden = r.get(head_json, "has_hidden", "head.", bool)
    head = IntHead(
        w_out=_array(arrays, r, "head.w_out"), b_out=_array(arrays, r, "head.b_out"),
        w_hidden=_array(arrays, r, "head.w_hidden") if has_hidden else None,
        b_hidden=_array(arrays, r, "head.b_hidden") if has_hidden else None,
        hidden_shift=r.int(head_json, "hidden_shift", "head."), hidden_bits=r.int(head_json, "hidden_bits", "head."))
    expected = {"head.w_out", "head.b_out"} | ({"head.w_hidden", "head.b_hidden"} if has_hidden else set())
    scales = r.get(h, "scales", "", dict)
    meta = r.get(h, "meta", "", dict)
    input_scale = r.get(h, "input_scale", "", (int, float))
    layers: list[Any] = []
    for index, lj in enumerate(layers_json):
        where = f"layers[{index}]."
        if not isinstance(lj, dict):
            raise r.fail(f"header field {where.rstrip('.')} is not a mapping")
        x_shift = r.get(lj, "x_shift", where, list)
        if len(x_shift) != 4 or not all(isinstance(v, int) and not isinstance(v, bool) for v in x_shift):
            raise r.fail(f"header field {where}x_shift must be 4 integers")
        names = [f"layer{index}.w_x", f"layer{index}.w_h", f"layer{index}.bias"]
        expected |= set(names)
        w_x, w_h, bias = (_array(arrays, r, n) for n in names)
        common = dict(w_x=w_x, w_h=w_h, bias=bias, x_shift=tuple(x_shift),
                      cell_bits=r.int(lj, "cell_bits", where), acc_bits=r.int(lj, "acc_bits", where))
        if kind == "spiking":
            gates = {g: _neuron(r, lj.get(g), f"{where}{g}.") for g in (*GATE_NAMES, "c")}
            layers.append(SpikingLayer(**common, **gates))
        else:
            mult = r.get(lj, "act_mult", where, dict)
            act_mult = {}
            for g in GATE_NAMES:
                pair = mult.get(g)
                if not (isinstance(pair, list) and len(pair) == 2 and
                        all(isinstance(v, int) and not isinstance(v, bool) for v in pair)):
                    raise r.fail(f"header field {where}act_mult.{g} must be two integers")
                act_mult[g] = (pair[0], pair[1])
            c_mult = r.get(lj, "c_mult", where, list)
            if len(c_mult) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in c_mult):
                raise r.fail(f"header field {where}c_mult must be two integers")
            layers.append(BaselineLayer(**common, act_mult=act_mult, c_mult=(c_mult[0], c_mult[1]),
                                        act_shift=r.int(lj, "act_shift", where)))
    if kind == "spiking":
        expected.add("lfsr_seeds")
    extra = sorted(set(arrays) - expected)
    if extra:
        raise r.fail(f"unexpected arrays {extra[:3]} for a {kind} model")
    if kind == "spiking":
        encoding = r.get(h, "encoding", "", str)
        gate = r.get(h, "nonspiking_gate", "", str)
        model: Frozen = FrozenSpiking(
            T=r.int(h, "T", ""), encoding=encoding, nonspiking_gate=gate,  # type: ignore[arg-type]
            weight_bits=r.int(h, "weight_bits", ""), input_bits=r.int(h, "input_bits", ""),
            input_scale=float(input_scale), rate_bits=r.int(h, "rate_bits", ""),
            lfsr_seeds=_array(arrays, r, "lfsr_seeds"), layers=layers, head=head, scales=scales, meta=meta)
    else:
        model = FrozenBaseline(weight_bits=r.int(h, "weight_bits", ""), act_bits=r.int(h, "act_bits", ""),
                               input_bits=r.int(h, "input_bits", ""), input_scale=float(input_scale),
                               layers=layers, head=head, scales=scales, meta=meta)
    sizes = r.get(h, "sizes", "", dict)
    actual = {"input_size": model.input_size, "hidden_sizes": [l.hidden_size for l in layers],
              "num_layers": len(layers), "num_classes": model.num_classes,
              "head_hidden": 0 if head.w_hidden is None else int(head.w_hidden.shape[0])}
    for key, value in actual.items():
        if sizes.get(key) != value:
            raise r.fail(f"header sizes.{key} = {sizes.get(key)!r} but the arrays give {value!r}")
    return model


# ---------------------------------------------------------------------------- validation

def _check(ok: bool, message: str) -> None:
    if not ok:
        raise UserError(message)


def _fits(array: np.ndarray, bits: int, what: str) -> None:
    lo, hi = signed_range(bits)
    if array.size and (int(array.min()) < lo or int(array.max()) > hi):
        raise UserError(f"{what} holds values in {int(array.min())}..{int(array.max())}, "
                        f"beyond its signed {bits}-bit range {lo}..{hi}")


def _int_array(a: Any, shape: tuple[int, ...], what: str) -> None:
    _check(isinstance(a, np.ndarray) and a.dtype.kind in "iu", f"{what} must be an integer array")
    _check(tuple(a.shape) == shape, f"{what} has shape {list(a.shape)}, expected {list(shape)}")


def _check_width(bits: Any, what: str) -> None:
    _check(isinstance(bits, int) and not isinstance(bits, bool) and 2 <= bits <= MAX_REGISTER_BITS,
           f"{what} = {bits!r} must be an integer in 2..{MAX_REGISTER_BITS}")


def _check_lif(n: BinaryNeuron | TernaryNeuron, what: str) -> None:
    try:
        validate_leak_terms(n.leak)
        validate_leak_rounding(n.leak_rounding)
    except ValueError as exc:
        raise UserError(f"{what}: invalid leak ({exc})") from None
    _check_width(n.membrane_bits, f"{what}.membrane_bits")
    hi = signed_range(n.membrane_bits)[1]
    thetas = (n.theta,) if isinstance(n, BinaryNeuron) else (n.theta_pos, n.theta_neg)
    for th in thetas:
        _check(isinstance(th, int) and th >= 1, f"{what}: threshold {th!r} must be a positive integer")
        _check(th <= hi, f"{what}: threshold {th} does not fit its {n.membrane_bits}-bit membrane")
    if isinstance(n, TernaryNeuron):
        for s in (n.shift_pos, n.shift_neg):
            _check(isinstance(s, int) and 0 <= s <= hi, f"{what}: shift {s!r} must be an integer in 0..{hi}")


def _check_head(head: IntHead, in_size: int, weight_bits: int, what: str) -> None:
    c = int(np.shape(head.w_out)[0]) if np.ndim(head.w_out) == 2 else 0
    _check(c >= 2, f"{what}.w_out must be [classes ≥ 2, inputs]")
    width = in_size
    if head.w_hidden is not None:
        k = int(np.shape(head.w_hidden)[0]) if np.ndim(head.w_hidden) == 2 else 0
        _check(k >= 1, f"{what}.w_hidden must be [hidden ≥ 1, {in_size}]")
        _int_array(head.w_hidden, (k, in_size), f"{what}.w_hidden")
        _int_array(head.b_hidden, (k,), f"{what}.b_hidden")
        _fits(head.w_hidden, weight_bits, f"{what}.w_hidden")
        _check(isinstance(head.hidden_shift, int) and 0 <= head.hidden_shift <= MAX_REGISTER_BITS,
               f"{what}.hidden_shift = {head.hidden_shift!r} must be in 0..{MAX_REGISTER_BITS}")
        _check(isinstance(head.hidden_bits, int) and 1 <= head.hidden_bits <= 32,
               f"{what}.hidden_bits = {head.hidden_bits!r} must be in 1..32")
        _fits(head.b_hidden, 48, f"{what}.b_hidden")
        width = k
    else:
        _check(head.b_hidden is None, f"{what}.b_hidden given without w_hidden")
    _int_array(head.w_out, (c, width), f"{what}.w_out")
    _int_array(head.b_out, (c,), f"{what}.b_out")
    _fits(head.w_out, weight_bits, f"{what}.w_out")
    _fits(head.b_out, 48, f"{what}.b_out")


def _check_common(model: Frozen) -> None:
    for name in ("weight_bits", "input_bits"):
        v = getattr(model, name)
        _check(isinstance(v, int) and not isinstance(v, bool) and 2 <= v <= 16, f"{name} = {v!r} must be in 2..16")
    _check(isinstance(model.input_scale, float) and math.isfinite(model.input_scale) and model.input_scale > 0,
           f"input_scale = {model.input_scale!r} must be a finite positive number")
    _check(len(model.layers) in (1, 2), f"a frozen model has 1 or 2 layers, got {len(model.layers)}")
    d = model.layers[0].input_size
    _check(d >= 1, "input size must be ≥ 1")
    for index, layer in enumerate(model.layers):
        what = f"layer {index}"
        h = int(layer.w_h.shape[1]) if np.ndim(layer.w_h) == 2 else 0
        _check(h >= 1, f"{what}: w_h must be [4H, H] with H ≥ 1")
        d_in = d if index == 0 else model.layers[index - 1].hidden_size
        _int_array(layer.w_x, (4 * h, d_in), f"{what} w_x")
        _int_array(layer.w_h, (4 * h, h), f"{what} w_h")
        _int_array(layer.bias, (4 * h,), f"{what} bias")
        _fits(layer.w_x, model.weight_bits, f"{what} w_x")
        _fits(layer.w_h, model.weight_bits, f"{what} w_h")
        _check(len(layer.x_shift) == 4 and all(isinstance(s, int) and 0 <= s <= 32 for s in layer.x_shift),
               f"{what}: x_shift must be 4 integers in 0..32")
        _check_width(layer.acc_bits, f"{what} acc_bits")
        _check_width(layer.cell_bits, f"{what} cell_bits")
        _fits(layer.bias, layer.acc_bits, f"{what} bias")
    _check_head(model.head, model.layers[-1].hidden_size, model.weight_bits, "head")
    _check(isinstance(model.scales, dict) and isinstance(model.meta, dict), "scales and meta must be mappings")


def _check_acc(layer: SpikingLayer | BaselineLayer, direct: bool, in_max: int, h_max: int, what: str) -> None:
    x_shift = layer.x_shift if direct else (0, 0, 0, 0)
    _check(direct or tuple(layer.x_shift) == (0, 0, 0, 0), f"{what}: x_shift must be all 0 (no direct-input MAC)")
    need = bounds.acc_bits_for(layer.w_x, layer.w_h, layer.bias, x_shift, in_max, h_max, direct)
    _check(layer.acc_bits >= need, f"{what}: acc_bits = {layer.acc_bits} cannot hold the worst-case "
           f"pre-activation of its weights ({need} bits needed)")


def validate_frozen(model: Frozen) -> None:
    """Check every contract rule a frozen model must satisfy; raises UserError naming the first breach.

    Checked: types, sizes and shapes; integer arrays; weights within ``weight_bits``; biases
    within ``acc_bits``; ``acc_bits`` large enough for the worst-case pre-activation of the
    stored weights; thresholds > 0 and held by their membrane widths; shifts ≥ 0; leak terms;
    clip gates; which gate is non-spiking; LFSR seeds non-zero uint32; widths in range.
    """
    if isinstance(model, FrozenSpiking):
        _check_common(model)
        _check(isinstance(model.T, int) and 1 <= model.T <= 1024, f"T = {model.T!r} must be in 1..1024")
        _check(model.encoding in ("direct", "rate"), f"encoding {model.encoding!r} must be direct or rate")
        _check(model.nonspiking_gate in ("i", "g"), f"nonspiking_gate {model.nonspiking_gate!r} must be i or g")
        _check(isinstance(model.rate_bits, int) and 1 <= model.rate_bits <= 16,
               f"rate_bits = {model.rate_bits!r} must be in 1..16")
        seeds = model.lfsr_seeds
        _int_array(seeds, (model.input_size,), "lfsr_seeds")
        _check(not seeds.size or (int(seeds.min()) >= 1 and int(seeds.max()) <= 0xFFFF_FFFF),
               "lfsr_seeds must be non-zero uint32 values (1..2^32−1)")
        for index, layer in enumerate(model.layers):
            what = f"layer {index}"
            _check(isinstance(layer, SpikingLayer), f"{what} is not a spiking layer")
            for gate in ("f", "o"):
                _check(isinstance(getattr(layer, gate), BinaryNeuron), f"{what}.{gate} must be a binary LIF neuron")
            clip_gate, spike_gate = ("g", "i") if model.nonspiking_gate == "g" else ("i", "g")
            clip = getattr(layer, clip_gate)
            _check(isinstance(clip, ClipGate), f"{what}.{clip_gate} must be a clip gate (nonspiking_gate = "
                   f"{model.nonspiking_gate})")
            _check(isinstance(getattr(layer, spike_gate), BinaryNeuron if spike_gate == "i" else TernaryNeuron),
                   f"{what}.{spike_gate} must be a spiking neuron")
            _check(isinstance(layer.c, TernaryNeuron), f"{what}.c must be a ternary LIF neuron")
            _check(isinstance(clip.lo, int) and isinstance(clip.hi, int) and clip.hi >= 1,
                   f"{what}.{clip_gate}: clip bounds must be integers with hi ≥ 1")
            want_lo = -clip.hi if clip_gate == "g" else 0
            _check(clip.lo == want_lo, f"{what}.{clip_gate}: clip lo must be {want_lo}, got {clip.lo}")
            for gate in ("f", "i", "g", "o", "c"):
                n = getattr(layer, gate)
                if not isinstance(n, ClipGate):
                    _check_lif(n, f"{what}.{gate}")
            _check(clip.hi <= signed_range(layer.cell_bits)[1],
                   f"{what}: cell_bits = {layer.cell_bits} cannot hold the gate range {clip.hi}")
            direct = index == 0 and model.encoding == "direct"
            in_max = (1 << (model.input_bits - 1)) if direct else 1
            _check_acc(layer, direct, in_max, 1, what)
    elif isinstance(model, FrozenBaseline):
        _check_common(model)
        _check(isinstance(model.act_bits, int) and 2 <= model.act_bits <= 16,
               f"act_bits = {model.act_bits!r} must be in 2..16")
        q = 1 << model.frac_bits
        for index, layer in enumerate(model.layers):
            what = f"layer {index}"
            _check(isinstance(layer, BaselineLayer), f"{what} is not a baseline layer")
            _check(isinstance(layer.act_shift, int) and 0 <= layer.act_shift <= 48,
                   f"{what}: act_shift = {layer.act_shift!r} must be in 0..48")
            mults = [*(m for g in GATE_NAMES for m in layer.act_mult.get(g, (-1, -1))), *layer.c_mult]
            _check(set(layer.act_mult) == set(GATE_NAMES), f"{what}: act_mult must have the keys f, i, g, o")
            _check(all(isinstance(m, int) and not isinstance(m, bool) and m >= 0 for m in mults),
                   f"{what}: activation multipliers must be non-negative integers")
            for g in ("f", "i", "o"):
                _check(layer.act_mult[g][0] == layer.act_mult[g][1],
                       f"{what}: sigmoid gate {g} must use one multiplier (M+ = M−)")
            _check(q <= signed_range(layer.cell_bits)[1], f"{what}: cell_bits cannot hold 1.0 = {q}")
            direct = index == 0
            in_max = (1 << (model.input_bits - 1)) if direct else q
            _check_acc(layer, direct, in_max, q, what)
            m_bits = max(m.bit_length() for m in mults)
            _check(max(layer.acc_bits, layer.cell_bits) + m_bits <= 63,
                   f"{what}: acc_bits/cell_bits ({layer.acc_bits}/{layer.cell_bits}) plus {m_bits}-bit "
                   "multipliers overflow the int64 activation products")
    else:
        raise UserError(f"not a frozen model: {type(model).__name__}")


__all__ = ["save_frozen", "load_frozen", "validate_frozen", "is_frozen_file", "HEADER_NAME"]
