"""Progress for whoever waits on a long command: a protocol the work reports to, and the bar
the command line shows on stderr (nothing for work shorter than PROGRESS_AFTER_S)."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import Protocol, TextIO


class Progress(Protocol):
    """What long work reports: a line of text, the fraction done of a named stage, and the
    end (after which a bar's line is finished)."""

    def note(self, text: str) -> None: ...

    def stage(self, name: str, fraction: float) -> None: ...

    def done(self) -> None: ...


class Quiet:
    """Progress that shows nothing."""

    def note(self, text: str) -> None:
        pass

    def stage(self, name: str, fraction: float) -> None:
        pass

    def done(self) -> None:
        pass


PROGRESS_AFTER_S = 2.0
"""A run that takes longer than this shows progress (and its estimate, printed up front)."""


class ProgressBar:
    """Progress on stderr for whoever waits: nothing during the first `after_s`, then the
    current stage, its fraction done and the elapsed time, redrawn in place at most every
    0.2 s on a terminal (a full line at most every 10 s otherwise). A ticker thread redraws it
    every `tick_s` as well, so a long single step (one numpy call over a billion pages) still
    shows the clock moving within after_s of the start."""

    def __init__(self, stream: TextIO = sys.stderr, after_s: float = PROGRESS_AFTER_S,
                 clock: Callable[[], float] = time.monotonic, tick_s: float | None = 0.5,
                 ) -> None:
        self.stream, self.after_s, self.clock = stream, after_s, clock
        self.tty = stream.isatty()
        self.every = 0.2 if self.tty else 10.0
        self.started = clock()
        self.name, self.fraction = "starting", 0.0
        self.drawn_at: float | None = None
        self.open_line = False  # a redrawn line waits for its newline
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.ticker: threading.Thread | None = None
        if tick_s is not None:
            self.ticker = threading.Thread(target=self._tick, args=(tick_s,), daemon=True)
            self.ticker.start()

    def note(self, text: str) -> None:
        with self.lock:
            self._end_line()
            self.stream.write(text + "\n")
            self.stream.flush()

    def stage(self, name: str, fraction: float) -> None:
        with self.lock:
            moved_on = name != self.name
            self.name, self.fraction = name, fraction
            self.draw(force=moved_on)

    def done(self) -> None:
        """The work is over (or failed): stop the ticker, finish the line."""
        self.stopped.set()
        if self.ticker is not None:
            self.ticker.join()
        with self.lock:
            self._end_line()

    def draw(self, force: bool = False) -> None:
        """Show the stage now if after_s has passed and the last showing is old enough
        (force: whatever its age). Callers hold the lock."""
        now = self.clock()
        elapsed = now - self.started
        if elapsed < self.after_s or not force and self.drawn_at is not None and \
                now - self.drawn_at < self.every:
            return
        filled = int(min(max(self.fraction, 0.0), 1.0) * 30)
        text = (f"{self.name} [{'#' * filled}{'.' * (30 - filled)}] {self.fraction:4.0%} "
                f"{elapsed:5.0f} s")
        if self.tty:
            self.stream.write(f"\r{text:<60}")
            self.open_line = True
        else:
            self.stream.write(text + "\n")
        self.stream.flush()
        self.drawn_at = now

    def _end_line(self) -> None:
        if self.open_line:
            self.stream.write("\n")
            self.stream.flush()
            self.open_line = False

    def _tick(self, every: float) -> None:
        while not self.stopped.wait(every):
            with self.lock:
                self.draw()


def progress_bar(stream: TextIO = sys.stderr, after_s: float = PROGRESS_AFTER_S) -> ProgressBar:
    """The progress `ibs-mprof run` shows (see ProgressBar)."""
    return ProgressBar(stream, after_s)
