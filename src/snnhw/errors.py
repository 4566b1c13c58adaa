"""The one exception type for user mistakes.

Anything a user can get wrong (a missing file, a malformed dataset, a foreign checkpoint,
an option out of range) raises :class:`UserError` with a one-line message. The CLI prints
it as ``snnhw: error: <message>`` and exits with status 2; every other exception is a bug
and keeps its traceback.
"""

from __future__ import annotations

import re
from collections.abc import Iterable


class UserError(Exception):
    """A mistake in the user's input, reported as one line without a traceback."""


def option_error(exc: BaseException, names: Iterable[str], context: str = "") -> UserError:
    """``exc``, raised by an API whose parameters are command-line options, as a :class:`UserError`
    that names the option: a message starting with one of the parameter ``names`` (``proj_fanin``)
    starts with its option instead (``--proj-fanin``); ``context`` goes before the message."""
    message = str(exc)
    for name in sorted(names, key=len, reverse=True):
        if re.match(rf"{re.escape(name)}\b", message):
            message = "--" + name.replace("_", "-") + message[len(name):]
            break
    return UserError(f"{context}{message}")
