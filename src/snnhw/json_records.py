"""Plain JSON for the project's records: a value no figure exists for is ``null``, never ``NaN``.

Training records a validation figure of NaN when there is no validation split (``--val-fraction
0``, ``--folds``); ``NaN`` is not JSON (RFC 8259), other tools refuse it, and the frozen model's
strict header refused the checkpoint's metrics. :func:`finite` is the one rule: the checkpoints
apply it when they are written and read (so the frozen models' provenance, taken from them, is
plain JSON too), and the step summaries (``snnhw.cli.train.write_json``: ``snnhw train``,
``quantize``, ``eval``, ``convert``, ``energy``) when they are written.
"""

from __future__ import annotations

import math
from typing import Any


def finite(value: Any) -> Any:
    """``value`` (plain dicts, lists, tuples and scalars) with every non-finite float replaced by
    None; tuples become lists, as in JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(item) for item in value]
    return value
