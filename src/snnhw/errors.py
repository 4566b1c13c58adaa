"""The one exception type for user mistakes.

Anything a user can get wrong (a missing file, a malformed dataset, a foreign checkpoint,
an option out of range) raises :class:`UserError` with a one-line message. The CLI prints
it as ``snnhw: error: <message>`` and exits with status 2; every other exception is a bug
and keeps its traceback.
"""


class UserError(Exception):
    """A mistake in the user's input, reported as one line without a traceback."""
