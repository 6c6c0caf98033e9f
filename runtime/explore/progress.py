"""Progress of a long exploration on stderr, so a big bound never runs silently.

Nothing for the first second (most explorations end well before), then a line at least every
`every_s` seconds: rewritten in place on a terminal, one line each time in a log. The search
asks `due()` often (a clock read) and builds its words only when a line is due. The clock is a
parameter so a test can move time instead of waiting.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

FIRST_AFTER_S = 1.0
"""Under the 2 s after which a silent command looks hung."""


class Quiet:
    """No progress (the library default, and what a test of the search uses)."""

    def due(self) -> bool:
        return False

    def show(self, text: str) -> None:
        """Nothing to show."""

    def done(self) -> None:
        """Nothing to end."""


class Progress(Quiet):
    def __init__(self, stream: TextIO | None = None, note: str = "",
                 after_s: float = FIRST_AFTER_S, every_s: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.stream = sys.stderr if stream is None else stream
        self.tty = self.stream.isatty()
        self.note = note
        self.every_s = every_s if every_s is not None else (0.5 if self.tty else 5.0)
        self.clock = clock
        self.start = clock()
        self.next = self.start + after_s
        self.width = 0
        self.shown = 0

    def due(self) -> bool:
        return self.clock() >= self.next

    def show(self, text: str) -> None:
        now = self.clock()
        line = f"explore: {now - self.start:.0f} s, {text}{self.note}"
        if self.tty:
            self.stream.write("\r" + line.ljust(self.width))
            self.width = len(line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()
        self.shown += 1
        self.next = now + self.every_s

    def done(self) -> None:
        """End the line rewritten in place, so what follows starts on its own line."""
        if self.shown and self.tty:
            self.stream.write("\n")
            self.stream.flush()
