"""The snnhw checkpoint: a trained float model plus everything needed to use it again.

File format (``torch.save`` of one plain dict, loadable with ``weights_only=True``)::

    {
      "format": "snnhw-checkpoint",        # marker: what this file is
      "format_version": 1,                 # bumped on incompatible changes
      "snnhw_version": "0.1.0",            # the package that wrote it (informative)
      "meta": "<JSON string>",             # config, data meta, class names, normalisation,
                                           # metrics, history, source (see save_checkpoint)
      "state_dict": {name: tensor, ...},   # the model's parameters and buffers (CPU)
    }

Only tensors and JSON-able plain types are stored, and :func:`load_checkpoint` reads with
``torch.load(weights_only=True)``: loading never executes code from the file. A file that
tries to (a pickle with a ``__reduce__`` payload), a truncated or corrupted file, a foreign
``.pt`` (e.g. a bare state dict), a newer format version and tensors that do not fit the
recorded model config (missing, unexpected or of another shape) are refused with a
:class:`~snnhw.errors.UserError`. Saving is atomic (temporary file + rename).
"""

from __future__ import annotations

import json
import os
import pickle
import tempfile
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from snnhw import __version__
from snnhw.errors import UserError
from snnhw.json_records import finite
from snnhw.model.config import ModelConfig

FORMAT: str = "snnhw-checkpoint"
"""Value of the ``format`` key that marks a file as an snnhw checkpoint."""

FORMAT_VERSION: int = 1
"""Format version written by this code; files with a larger version are refused."""

_META_KEYS = ("config", "data_meta", "class_names", "normalisation", "metrics", "history", "source")


@dataclass
class Checkpoint:
    """A loaded checkpoint.

    Attributes:
        cfg: the model configuration.
        state_dict: parameter and buffer tensors (CPU), ready for ``load_state_dict``.
        data_meta: how the data were loaded (dataset name, path, options, split seed, ...),
            enough for :func:`snnhw.data.registry.load_dataset` to rebuild the same splits.
        class_names: label of each output class, in logit order.
        normalisation: the input normalisation applied to the data, as the plain dict of
            ``Normalisation.to_dict()`` (per-feature ``mean`` and ``std``).
        metrics: final figures (accuracies as fractions in [0, 1]).
        history: per-epoch training records (empty for a conversion-only model).
        source: provenance (e.g. the hard-LSTM checkpoint a spiking model was converted
            from), or None.
        version: the format version of the file.
        snnhw_version: the package version that wrote the file.
    """

    cfg: ModelConfig
    state_dict: dict[str, torch.Tensor]
    data_meta: dict[str, Any] = field(default_factory=dict)
    class_names: list[str] = field(default_factory=list)
    normalisation: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    source: dict[str, Any] | None = None
    version: int = FORMAT_VERSION
    snnhw_version: str = __version__

    def build_model(self) -> nn.Module:
        """The model of :attr:`cfg` holding the stored weights, in eval mode."""
        from snnhw.model import build_model

        model = build_model(self.cfg)
        mismatch = _state_mismatch(model.state_dict(), self.state_dict)
        if mismatch:
            raise UserError(f"checkpoint weights do not fit its model config ({mismatch})")
        model.load_state_dict(self.state_dict, strict=True)
        model.eval()
        return model

    def load_data(self, data_dir: str | os.PathLike[str] | None = None, *, progress: bool = True) -> Any:
        """The dataset this model was trained on, rebuilt from :attr:`data_meta`.

        ``data_dir`` overrides the stored path (the data moved). See :func:`rebuild_data`.
        """
        return rebuild_data(self.data_meta, data_dir, normalisation=self.normalisation, progress=progress)


def data_meta_of(bundle: Any, *, limit_train: int | None = None) -> dict[str, Any]:
    """The ``data_meta`` to store for a model trained on ``bundle`` (a ``DataBundle``).

    It is the bundle's own meta (dataset, source path, resolved options, split seed,
    validation fraction, sizes, ...) plus ``limit_train``: the training subset size when
    training used a random subset of the training split (None: all of it).
    """
    return {**bundle.meta, "limit_train": limit_train}


def rebuild_data(
    data_meta: dict[str, Any],
    data_dir: str | os.PathLike[str] | None = None,
    *,
    normalisation: dict[str, Any] | None = None,
    progress: bool = True,
) -> Any:
    """Load the ``DataBundle`` described by ``data_meta`` (from :func:`data_meta_of`).

    The splits are recomputed with the stored dataset name, options, seed and validation
    fraction, from ``data_dir`` or else the stored source path, and normalised with the
    stored ``normalisation`` (the statistics the model was trained with) when given. Split
    sizes that differ from the stored ones mean different data (UserError).
    """
    from snnhw.data.registry import rebuild_bundle

    stored = data_meta.get("source") if isinstance(data_meta, dict) else None
    path = Path(data_dir) if data_dir is not None else Path(stored) if stored else None
    if path is None:
        raise UserError("the model file does not record where its data came from; pass --data-dir")
    if not path.exists():
        hint = "" if data_dir is not None else " (stored in the model file; pass --data-dir)"
        raise UserError(f"data path {path} does not exist{hint}")
    return rebuild_bundle(data_meta, normalisation or None, path, progress=progress)


def _plain(value: Any, what: str) -> Any:
    """``value`` converted to JSON-able plain types (objects with ``to_dict`` are converted)."""
    if hasattr(value, "to_dict") and callable(value.to_dict):
        value = value.to_dict()
    try:
        return finite(json.loads(json.dumps(value, default=_json_default)))
    except (TypeError, ValueError) as exc:
        raise TypeError(f"checkpoint field {what!r} is not JSON-able: {exc}") from exc


def _json_default(value: Any) -> Any:
    """JSON encoding of the few non-plain values metadata commonly holds (tensors, numpy)."""
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON-able")


def save_checkpoint(
    path: str | os.PathLike[str],
    *,
    model: nn.Module,
    data_meta: dict[str, Any],
    class_names: list[str],
    normalisation: Any,
    metrics: dict[str, Any],
    history: list[dict[str, Any]],
    source: dict[str, Any] | None = None,
) -> Path:
    """Write ``model`` (its ``cfg`` and state dict) and its metadata to ``path`` atomically.

    ``normalisation`` is a ``Normalisation`` (anything with ``to_dict()``) or its dict. All
    metadata must be JSON-able (tensors and numpy arrays are turned into lists). Returns the
    path written; missing parent directories are created. A failure leaves any previous file
    at ``path`` untouched.
    """
    cfg = getattr(model, "cfg", None)
    if not isinstance(cfg, ModelConfig):
        raise TypeError("save_checkpoint needs a snnhw model with a ModelConfig attribute 'cfg'")
    meta = {
        "config": cfg.to_dict(),
        "data_meta": _plain(data_meta, "data_meta"),
        "class_names": [str(c) for c in class_names],
        "normalisation": _plain(normalisation, "normalisation"),
        "metrics": _plain(metrics, "metrics"),
        "history": _plain(history, "history"),
        "source": _plain(source, "source"),
    }
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "snnhw_version": __version__,
        "meta": json.dumps(meta, sort_keys=True),
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
    }
    target = Path(path)
    if target.is_dir():
        raise UserError(f"cannot write checkpoint: {target} is a directory")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot write checkpoint: cannot create directory {target.parent} "
                        f"({exc.strerror or exc})") from None
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(payload, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, 0o666 & ~_umask())  # mkstemp creates 0600; give the usual permissions
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return target


def recorded_source(source: dict[str, Any] | None) -> str | None:
    """The hard-LSTM checkpoint a spiking checkpoint's ``source`` names: ``"from"`` for a
    conversion, ``"init"`` for a fine-tuning (also after re-timing); None when it names none."""
    source = source or {}
    return source.get("from") or source.get("init")


def resolve_source(ckpt_path: str | os.PathLike[str], recorded: str | os.PathLike[str] | None) -> Path | None:
    """Where the checkpoint that ``ckpt_path`` records as its source is now, or None.

    ``recorded`` is the path a checkpoint stores in its ``source`` (``"from"`` for a
    conversion, ``"init"`` for a fine-tuning; the bundled model records a bare file name).
    Tried in order, the first existing file wins:

    1. ``recorded`` as recorded: absolute, or relative to the working directory;
    2. relative to the directory of ``ckpt_path``;
    3. its file name beside ``ckpt_path`` (the pair was moved together).

    None when nothing is recorded or no candidate is a file.
    """
    if not recorded:
        return None
    given, home = Path(recorded), Path(ckpt_path).parent
    for candidate in (given, home / given, home / given.name):
        if candidate.is_file():
            return candidate
    return None


def _umask() -> int:
    """The process's file-creation mask (read by setting and restoring it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def is_torch_archive(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` is a ``torch.save`` zip archive (checked without unpickling).

    Used to dispatch on the file type (float checkpoint vs other model files) before
    loading anything.
    """
    try:
        if not zipfile.is_zipfile(path):
            return False
        with zipfile.ZipFile(path) as archive:
            return any(name.endswith("/data.pkl") or name == "data.pkl" for name in archive.namelist())
    except (OSError, zipfile.BadZipFile):
        return False


def load_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Read a checkpoint written by :func:`save_checkpoint`, safely.

    Raises:
        UserError: the file is missing, unreadable, truncated or corrupted, not an snnhw
            checkpoint, from a newer format version, refers to code (unsafe pickle), or
            holds an inconsistent configuration or tensors that do not fit it.
    """
    source = Path(path)
    if not source.is_file():
        raise UserError(f"checkpoint {source} does not exist" if not source.exists()
                        else f"checkpoint {source} is not a file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch warns about pickle protocols of foreign files
            payload = torch.load(source, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "Unsupported operand" in str(exc):  # bytes no pickle writer made: text, a damaged file
            raise UserError(f"{source} is truncated, corrupted or not a checkpoint (not a torch file)") from None
        if "weights only" in str(exc).lower():
            raise UserError(f"refusing to load {source}: it is not a plain-data snnhw checkpoint "
                            "(it holds Python objects or code that loading would execute)") from None
        raise UserError(f"{source} is corrupted or not a checkpoint ({_reason(exc)})") from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile, KeyError) as exc:
        raise UserError(f"{source} is truncated, corrupted or not a checkpoint ({_reason(exc)})") from None
    return _parse(payload, source)


def _reason(exc: BaseException) -> str:
    """A short one-line description of a loader exception."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    text = text.split(". ")[0][:120]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _parse(payload: Any, source: Path) -> Checkpoint:
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        kind = "a bare state dict or a foreign torch file" if isinstance(payload, dict) else \
            f"a torch file holding a {type(payload).__name__}"
        raise UserError(f"{source} is not an snnhw checkpoint ({kind}; no {FORMAT!r} marker)")
    version = payload.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise UserError(f"{source}: checkpoint format version is missing or malformed")
    if version > FORMAT_VERSION or version < 1:
        raise UserError(f"{source}: checkpoint format version {version} is not supported by snnhw "
                        f"{__version__} (reads version ≤ {FORMAT_VERSION}); upgrade snnhw")
    try:
        meta = json.loads(payload["meta"])
    except (KeyError, TypeError, ValueError):
        raise UserError(f"{source}: checkpoint metadata is missing or not valid JSON") from None
    if not isinstance(meta, dict) or any(k not in meta for k in _META_KEYS):
        missing = [k for k in _META_KEYS if not isinstance(meta, dict) or k not in meta]
        raise UserError(f"{source}: checkpoint metadata lacks {missing}")
    state = payload.get("state_dict")
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise UserError(f"{source}: checkpoint has no valid state_dict (name → tensor)")
    config = meta["config"]
    if not isinstance(config, dict):
        raise UserError(f"{source}: checkpoint model config is not a mapping")
    try:
        cfg = ModelConfig.from_dict(config)
    except TypeError as exc:
        raise UserError(f"{source}: checkpoint model config is incomplete ({exc})") from None
    except UserError as exc:
        raise UserError(f"{source}: {exc}") from None
    from snnhw.model import build_model

    mismatch = _state_mismatch(build_model(cfg).state_dict(), state)
    if mismatch:
        raise UserError(f"{source}: checkpoint weights do not fit its model config ({mismatch})")
    return Checkpoint(
        cfg=cfg,
        state_dict=state,
        data_meta=meta["data_meta"],
        class_names=list(meta["class_names"]),
        normalisation=meta["normalisation"],
        metrics=finite(meta["metrics"]),  # NaN in checkpoints written before json_records
        history=finite(meta["history"]),
        source=meta["source"],
        version=version,
        snnhw_version=str(payload.get("snnhw_version", "unknown")),
    )


def _state_mismatch(expected: dict[str, torch.Tensor], state: dict[str, torch.Tensor]) -> str:
    """What keeps ``state`` from loading into a model whose state dict is ``expected``: missing
    tensors, unexpected tensors and tensors of another shape, each listed (the first three) on
    one line; empty when it fits."""
    missing = [name for name in expected if name not in state]
    unexpected = [name for name in state if name not in expected]
    shapes = [f"{name} {list(state[name].shape)}, expected {list(tensor.shape)}" for name, tensor in expected.items()
              if name in state and state[name].shape != tensor.shape]
    problems = []
    for what, names in (("missing tensors", missing), ("unexpected tensors", unexpected), ("wrong shapes", shapes)):
        if names:
            problems.append(f"{what}: {'; '.join(names[:3])}" + (f" and {len(names) - 3} more" if len(names) > 3 else ""))
    return "; ".join(problems)
