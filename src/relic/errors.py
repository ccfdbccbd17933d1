"""User-facing errors.

A :class:`UserError` is a problem with the user's input (a file, a flag, an action script, a checkpoint).
The CLI prints its message as one line, with no traceback, and exits with status 2. Messages name the file
and the line, frame or field they concern.
"""

from __future__ import annotations


class UserError(Exception):
    """Bad input from the user: printed as one line by the CLI, exit status 2."""

    def __init__(self, message: str, *, source: str | None = None):
        self.source = source
        super().__init__(f"{source}: {message}" if source else message)
