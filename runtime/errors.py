"""The one exception type the CLI turns into a single line and exit status 2."""

from __future__ import annotations


class InputError(Exception):
    """Bad input from a user: the message names the file/line/field and what was expected."""
