"""Temporal (row-wise) MNIST from IDX files; also Fashion-MNIST or any IDX image set.

Each image becomes one sequence: element ``n`` is image row ``n``, its D features the pixels of
that row scaled to [0, 1] (``uint8 / 255``). Option ``pad32`` zero-pads 28x28 to 32x32 (2 pixels
on every side, the paper's input) so N = D = 32.

Files looked for in the directory (plain or gzip, detected from the content):
``train-images-idx3-ubyte`` + ``train-labels-idx1-ubyte`` and ``t10k-images-idx3-ubyte`` +
``t10k-labels-idx1-ubyte`` (official names; ``.`` instead of ``-`` before ``idx`` accepted) are
used as train and test. A single pair ``images-idx3-ubyte`` + ``labels-idx1-ubyte`` (any
prefix) is split into train/test by a seeded stratified split (``test_fraction``).
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import numpy as np

from snnhw.data.base import Option, RawSplits, SequenceDataset, describe_dir, require_dir, split_rng, stratified_split
from snnhw.errors import UserError

OPTIONS: dict[str, Option] = {
    "pad32": Option("bool", False, "zero-pad 28x28 images to 32x32 (N = D = 32), as in the paper"),
    "test_fraction": Option("float", 0.2, "test share of a single IDX set (ignored when train and t10k files exist)"),
}

IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801
_IDX_NAME = re.compile(r"^(?P<prefix>.*?)(?P<kind>images|labels)[-.](?P<idx>idx[13])-ubyte(\.gz)?$")


def read_idx(path: Path, magic: int) -> np.ndarray:
    """The uint8 array stored in IDX file ``path`` (gzip or plain); UserError if malformed.

    IDX: 4-byte big-endian magic ``0x0000 08 <ndim>`` (0x08 = unsigned byte), ndim big-endian
    uint32 sizes, then the bytes.
    """
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as e:
            raise UserError(f"{path}: corrupt gzip data ({e})") from None
    if len(raw) < 4:
        raise UserError(f"{path}: too short for an IDX file ({len(raw)} bytes)")
    found = int.from_bytes(raw[:4], "big")
    if found != magic:
        raise UserError(f"{path}: IDX magic is 0x{found:08x}, expected 0x{magic:08x} "
                        f"({'images, 3-D uint8' if magic == IMAGES_MAGIC else 'labels, 1-D uint8'})")
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise UserError(f"{path}: truncated IDX header")
    dims = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    count = int(np.prod(dims))
    if len(raw) - header != count:
        raise UserError(f"{path}: IDX header says {dims} = {count} bytes, file holds {len(raw) - header}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def _find_pairs(root: Path) -> dict[str, tuple[Path, Path]]:
    """IDX (images, labels) pairs in ``root`` keyed by role: 'train', 'test' or 'single'."""
    found: dict[tuple[str, str], list[Path]] = {}
    for p in sorted(root.iterdir()):
        m = _IDX_NAME.match(p.name)
        if not m or not p.is_file():
            continue
        if (m["kind"], m["idx"]) not in (("images", "idx3"), ("labels", "idx1")):
            continue
        prefix = m["prefix"].lower()
        role = "train" if prefix.startswith("train") else "test" if prefix.startswith(("t10k", "test")) else "single"
        found.setdefault((role, m["kind"]), []).append(p)
    pairs = {}
    for role in ("train", "test", "single"):
        imgs, labs = found.get((role, "images"), []), found.get((role, "labels"), [])
        if len(imgs) > 1 or len(labs) > 1:
            raise UserError(f"{root}: several {role} IDX files ({', '.join(p.name for p in imgs + labs)}); keep one of each")
        if imgs and labs:
            pairs[role] = (imgs[0], labs[0])
        elif imgs or labs:
            have = (imgs or labs)[0].name
            raise UserError(f"{root}: found {have} but not its {'labels' if imgs else 'images'} file")
    return pairs


def _load_pair(images: Path, labels: Path, pad32: bool) -> SequenceDataset:
    x = read_idx(images, IMAGES_MAGIC)
    y = read_idx(labels, LABELS_MAGIC)
    if x.shape[0] != y.shape[0]:
        raise UserError(f"{images.name} holds {x.shape[0]} images but {labels.name} {y.shape[0]} labels")
    if x.shape[0] == 0:
        raise UserError(f"{images}: empty dataset (0 images)")
    xf = x.astype(np.float32) / np.float32(255.0)
    if pad32:
        if x.shape[1:] != (28, 28):
            raise UserError(f"pad32 needs 28x28 images, {images.name} holds {x.shape[1]}x{x.shape[2]}")
        xf = np.pad(xf, ((0, 0), (2, 2), (2, 2)))
    return SequenceDataset.fixed_length(xf, y.astype(np.int64))


def load_raw(path: Path, options: dict, seed: int, progress: bool) -> RawSplits:
    """Train and test splits of an IDX directory (``progress`` unused: loading takes < 1 s)."""
    root = require_dir(path, "mnist")
    if root.is_file():
        root = root.parent
    pairs = _find_pairs(root)
    pad32 = options["pad32"]
    if "train" in pairs and "test" in pairs:
        train = _load_pair(*pairs["train"], pad32)
        test = _load_pair(*pairs["test"], pad32)
        rule = "official train / t10k files"
        files = [p.name for role in ("train", "test") for p in pairs[role]]
    elif "single" in pairs or len(pairs) == 1:
        role = "single" if "single" in pairs else next(iter(pairs))
        frac = options["test_fraction"]
        if not 0.0 < frac < 1.0:
            raise UserError(f"option 'test_fraction' must lie in (0, 1), got {frac}")
        full = _load_pair(*pairs[role], pad32)
        keep, held = stratified_split(full.y, frac, split_rng(seed, 1))
        train, test = full.subset(keep), full.subset(held)
        rule = f"stratified {frac} of {pairs[role][0].name} as test (seed {seed})"
        files = [p.name for p in pairs[role]]
    else:
        raise UserError(f"mnist: expected IDX files images-idx3-ubyte(.gz) + labels-idx1-ubyte(.gz) "
                        f"(or train-/t10k- pairs) in {root}, found: {describe_dir(root)}")
    n_classes = int(max(train.y.max(), test.y.max())) + 1
    return RawSplits(train, test, [str(i) for i in range(n_classes)], {
        "layout": "idx",
        "files": files,
        "split_rule": rule,
        "features": {"element": "image row", "scale": "pixel / 255", "pad32": pad32},
    })
