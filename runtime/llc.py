"""Which accesses miss the last-level cache: the filter between A_all and A_miss.

Synthetic workloads use Che's approximation of an LRU cache under independent references:
with C lines and per-line access probabilities q_i, there is a characteristic time T with
sum_i (1 - exp(-q_i T)) = C, and line i hits with probability 1 - exp(-q_i T). A page's lines
are touched uniformly (GUPS-style random words), so q = p_page / lines_per_page. This is the
standard analytic model for LRU caches (Che, Tung, Wang 2002; Fricker et al. 2012), exact in the
limit of many lines, and it needs no op-by-op simulation.

Traces (lackey) use `SetAssociativeLru`, a literal set-associative LRU simulation.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import numpy.typing as npt

from generated.ibs_mprof import PAGE_SHIFT
from runtime import sums
from runtime.pageruns import PageRuns

PAGE_BYTES = 1 << PAGE_SHIFT
FloatArray = npt.NDArray[np.float64]


def che_miss_probability(page_probs: PageRuns, llc_bytes: int, line_bytes: int = 64,
                         accesses_per_line_visit: float = 1.0) -> PageRuns:
    """Per-page probability that an access misses an LRU LLC of llc_bytes (Che approximation),
    computed per run of equal probabilities (a run of n pages weighs n in every sum).

    page_probs: probability that a memory access goes to each page (sums to 1).
    """
    lines_per_page = PAGE_BYTES // line_bytes
    capacity = llc_bytes // line_bytes
    q = page_probs.values / lines_per_page / accesses_per_line_visit
    lengths = page_probs.lengths
    active = q > 0
    total_lines = int(lengths[active].sum()) * lines_per_page
    if total_lines <= capacity:  # everything fits: only compulsory misses (ignored)
        return PageRuns(page_probs.starts, np.zeros_like(q), page_probs.pages).merged()
    qa, weight = q[active], lengths[active]

    def occupied(t: float) -> float:
        return sums.dot(-np.expm1(-qa * t), weight) * lines_per_page

    lo, hi = 0.0, 1.0
    while occupied(hi) < capacity:
        hi *= 2.0
    for _ in range(100):
        mid = (lo + hi) / 2
        if occupied(mid) < capacity:
            lo = mid
        else:
            hi = mid
    miss = np.ones_like(q)
    miss[active] = np.exp(-qa * hi)
    return PageRuns(page_probs.starts, miss, page_probs.pages)


class SetAssociativeLru:
    """A literal set-associative LRU cache over physical-ish addresses (for traces)."""

    def __init__(self, size_bytes: int, line_bytes: int = 64, ways: int = 16) -> None:
        self.line_bytes = line_bytes
        self.ways = ways
        self.sets = max(1, size_bytes // line_bytes // ways)
        self._sets: list[OrderedDict[int, None]] = [OrderedDict() for _ in range(self.sets)]

    def access(self, addr: int) -> bool:
        """True if the access misses (and the line is then filled)."""
        line = addr // self.line_bytes
        cache_set = self._sets[line % self.sets]
        if line in cache_set:
            cache_set.move_to_end(line)
            return False
        cache_set[line] = None
        if len(cache_set) > self.ways:
            cache_set.popitem(last=False)
        return True
