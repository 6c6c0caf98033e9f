"""A value per workload page, held as runs of pages with equal values.

Workload distributions have few runs (uniform one, gups three, a gups shift a few more), so a
region of 256 GiB (64 M pages) costs a few numbers, and whatever is computed per page (the LLC
model, ground truth, the oracle) is computed per run: build time follows the distribution's
shape, not the region's size. Distributions without structure (zipf, a trace) are one run per
page and cost what a per-page array costs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import numpy.typing as npt

from runtime import sums

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class PageRuns:
    """Pages starts[i] .. starts[i + 1] - 1 (the last run up to pages - 1) all hold
    values[i]. Adjacent runs hold different values (see merged)."""

    starts: I64
    values: F64
    pages: int

    @classmethod
    def constant(cls, pages: int, value: float) -> PageRuns:
        return cls(np.zeros(1, dtype=np.int64), np.array([value], dtype=np.float64), pages)

    @classmethod
    def from_array(cls, values: F64) -> PageRuns:
        """Runs of a per-page array (equal neighbours merged)."""
        starts = np.r_[0, np.flatnonzero(values[1:] != values[:-1]) + 1].astype(np.int64)
        return cls(starts, values[starts].astype(np.float64), int(values.size))

    @classmethod
    def from_segments(cls, pages: int, segments: list[tuple[int, int, float]],
                      base: float) -> PageRuns:
        """`base` everywhere except the given (start, end, value) page ranges (ascending,
        disjoint, inside 0..pages)."""
        starts, values = [0], [base]
        for start, end, value in segments:
            if end <= start:
                continue
            starts += [start, end]
            values += [value, base]
        runs = cls(np.array(starts, dtype=np.int64), np.array(values, dtype=np.float64), pages)
        return runs.merged()

    def merged(self) -> PageRuns:
        """The same values with empty runs dropped and equal neighbours joined."""
        ends = np.r_[self.starts[1:], self.pages]
        keep = ends > self.starts
        starts, values = self.starts[keep], self.values[keep]
        if starts.size == 0:
            return PageRuns(np.zeros(1, dtype=np.int64), self.values[:1], self.pages)
        new = np.r_[True, values[1:] != values[:-1]]
        return PageRuns(starts[new], values[new], self.pages)

    @cached_property
    def lengths(self) -> I64:
        lengths: I64 = np.diff(np.r_[self.starts, self.pages])
        return lengths

    def run_of(self, pages: I64) -> I64:
        """The run holding each page."""
        runs: I64 = np.searchsorted(self.starts, pages, side="right") - 1
        return runs

    def of(self, pages: I64) -> F64:
        """The value of each page."""
        if self.starts.size == 1:
            return np.full(pages.size, self.values[0])
        values: F64 = self.values[self.run_of(pages)]
        return values

    def expand(self) -> F64:
        """One value per page (what a per-page array would hold)."""
        return np.repeat(self.values, self.lengths)

    def map(self, fn: Callable[[F64], F64]) -> PageRuns:
        """fn applied to every run's value (the runs stay, equal neighbours are joined)."""
        return PageRuns(self.starts, np.asarray(fn(self.values), dtype=np.float64),
                        self.pages).merged()

    def combine(self, other: PageRuns, fn: Callable[[F64, F64], F64]) -> PageRuns:
        """fn(self, other) page by page, over the union of both run boundaries."""
        if np.array_equal(self.starts, other.starts):
            return PageRuns(self.starts, np.asarray(fn(self.values, other.values)),
                            self.pages).merged()
        starts = np.union1d(self.starts, other.starts)
        return PageRuns(starts, np.asarray(fn(self.of(starts), other.of(starts))),
                        self.pages).merged()

    def total(self) -> float:
        """The sum over pages."""
        return sums.dot(self.values, self.lengths)

    def count_where(self, mask: npt.NDArray[np.bool_]) -> int:
        """How many pages lie in runs where mask (one bool per run) holds."""
        return int(self.lengths[mask].sum())

    def pages_where(self, mask: npt.NDArray[np.bool_]) -> I64:
        """The pages of runs where mask holds, ascending."""
        starts, lengths = self.starts[mask], self.lengths[mask]
        if starts.size == 0:
            return np.zeros(0, dtype=np.int64)
        first = np.repeat(starts - np.r_[0, np.cumsum(lengths)[:-1]], lengths)
        pages: I64 = first + np.arange(int(lengths.sum()), dtype=np.int64)
        return pages

    def sum_over(self, on: npt.NDArray[np.bool_]) -> float:
        """The sum of the values of the pages where `on` (one bool per page) holds."""
        if not on.any():
            return 0.0
        counts = np.add.reduceat(on.astype(np.int64), self.starts)
        return sums.dot(self.values, counts)
