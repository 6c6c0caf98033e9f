"""The one exception type the CLI turns into a single line and exit status 2 (it lives in
safeio, which codegen shares; runtime code imports it from here)."""

from __future__ import annotations

from safeio.errors import MAX_MESSAGE_CHARS, InputError, one_line

__all__ = ["MAX_MESSAGE_CHARS", "InputError", "one_line"]
