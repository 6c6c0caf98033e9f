"""When a page marked PROT_NONE is next accessed, for a lackey trace (runtime/lackey.py).

Every CPU replays the trace, looping, in step: op i of any CPU's stream is trace record
i mod L (L records), dispatched at i / ops_per_ms. So the first access to page p after a
mark at t is the first data access to p at a trace position at or after that of op
q = floor(t * ops_per_ms) + 1 (the first op dispatched after t), cyclically: at op
q + ((pos - q) mod L). All CPUs make that access at the same instant; the lowest CPU (0) is
taken as the one that faults (on a real machine one CPU wins the PTE lock and the others
find the PTE restored). No randomness: the trace is the access pattern.

Each page's access positions are kept sorted in one int64 array keyed page * L + position
(8 bytes a data access), searched for all marked pages at once.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from runtime.lackey import Trace

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


class TraceArrivals:
    """First-access times of marked pages of a looped lackey trace."""

    def __init__(self, trace: Trace, ops_per_ms: float) -> None:
        self.length = trace.ops
        self.ops_per_ms = ops_per_ms
        # a loaded trace has at least one data access (load_trace refuses others)
        positions = np.frombuffer(trace.positions, dtype=np.uint64).astype(np.int64)
        pages = np.frombuffer(trace.pages, dtype=np.uint32).astype(np.int64)
        self.keys = np.sort(pages * self.length + positions)
        """page * L + position of every data access, ascending."""
        counts = np.bincount(pages, minlength=trace.page_count)
        self.first = np.r_[0, np.cumsum(counts)[:-1]].astype(np.int64)
        self.count = counts.astype(np.int64)

    def phase_starts(self) -> list[float]:
        """A trace is one phase."""
        return []

    def draw(self, pages: I64, t_ms: float, what: int, index: int) -> tuple[F64, I64]:
        """First access after t_ms of each page, and CPU 0 (inf: the page is never
        accessed). `what` and `index` are unused: nothing here is random."""
        op = int(np.floor(t_ms * self.ops_per_ms)) + 1
        here = op % self.length
        found = np.searchsorted(self.keys, pages * self.length + here, side="left")
        end = self.first[pages] + self.count[pages]
        wrapped = found >= end  # no access of the page later in this loop of the trace
        slot = np.minimum(np.where(wrapped, self.first[pages], found), self.keys.size - 1)
        position = self.keys[slot] - pages * self.length
        ahead = (position - here) % self.length
        times: F64 = np.where(self.count[pages] > 0, (op + ahead) / self.ops_per_ms, np.inf)
        return times, np.zeros(pages.size, dtype=np.int64)
