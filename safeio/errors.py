"""The one exception type the CLI turns into a single line and exit status 2."""

from __future__ import annotations

MAX_MESSAGE_CHARS = 2000
"""Longest message kept; a longer one (a huge value quoted from a file) is cut, with a note."""


class InputError(Exception):
    """Bad input from a user: the message names the file/line/field and what was expected.

    The message is always one printable line: a newline, another control character or a lone
    surrogate quoted from the input (a key named "a\\nb", a file name that is not UTF-8) is
    shown escaped, and a message longer than MAX_MESSAGE_CHARS is cut, so the CLI's
    one-line-on-stderr contract holds whatever the input held.
    """

    def __init__(self, message: str) -> None:
        super().__init__(one_line(message))


def one_line(text: str) -> str:
    """text with every non-printable character escaped (tab and space kept), at most
    MAX_MESSAGE_CHARS characters long."""
    if not text.isprintable():
        text = "".join(c if c.isprintable() or c == "\t" else _escape(c) for c in text)
    if len(text) > MAX_MESSAGE_CHARS:
        text = f"{text[:MAX_MESSAGE_CHARS]}... ({len(text)} characters in all)"
    return text


def _escape(char: str) -> str:
    code = ord(char)
    if char == "\n":
        return "\\n"
    if char == "\r":
        return "\\r"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
