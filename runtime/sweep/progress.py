"""A sweep's progress on stderr: points done of the total, failures, and an estimate of the
time left, on the bar every long command shows (runtime/progress.py).

The time left is the cost model's estimate of the points still to run (runtime/cost.py),
scaled by how the finished points' measured wall times compare with their estimates, and
divided among the workers. It needs no point to finish first, and a grid whose points differ
a hundredfold in cost (period 1000 next to 100000) is not estimated by a plain count.
"""

from __future__ import annotations

import sys
from typing import TextIO

from runtime.cost import seconds_text
from runtime.progress import ProgressBar


class SweepProgress:
    def __init__(self, total: int, stored: int, estimates: list[float], workers: int,
                 stream: TextIO = sys.stderr, bar: ProgressBar | None = None) -> None:
        self.total, self.done, self.stored, self.failed = total, stored, stored, 0
        self.left_s = sum(estimates)  # estimated seconds of the points still to run
        self.measured_s = self.estimated_s = 0.0  # of the points finished so far
        self.workers = max(workers, 1)
        self.width = 0  # the text only grows: a shorter one redrawn in place leaves no tail
        self.bar = bar or ProgressBar(stream, after_s=0.0)
        self.bar.note(f"sweep: {total} points, all stored: nothing to run" if stored == total
                      else f"sweep: {total} points, {stored} already stored, {total - stored} "
                      f"to run on {self.workers} worker{'s' if self.workers > 1 else ''}; "
                      f"estimated {seconds_text(self.time_left())}")
        self._show()

    def time_left(self) -> float:
        scale = self.measured_s / self.estimated_s if self.estimated_s > 0 else 1.0
        return self.left_s * scale / self.workers

    def point_done(self, estimated_s: float, wall_s: float | None, failed: bool) -> None:
        """One more point finished: estimated_s the model's estimate of it, wall_s what it
        took (None when it did not run to the end)."""
        self.done += 1
        self.failed += failed
        self.left_s = max(self.left_s - estimated_s, 0.0)
        if wall_s is not None and estimated_s > 0:
            self.measured_s += wall_s
            self.estimated_s += estimated_s
        self._show()

    def text(self) -> str:
        failed = f", {self.failed} failed" if self.failed else ""
        left = "" if self.done == self.total else f", about {seconds_text(self.time_left())} left"
        return f"sweep {self.done}/{self.total} points ({self.stored} stored{failed}){left}"

    def _show(self) -> None:
        text = self.text()
        self.width = max(self.width, len(text))
        self.bar.stage(text.ljust(self.width), self.done / self.total if self.total else 1.0)

    def finish(self) -> None:
        """The sweep is over or stopped: stop the bar's ticker, end its line."""
        self.bar.done()
