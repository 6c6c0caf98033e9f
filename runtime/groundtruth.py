"""Ground truth from the unsampled access stream, as distributions (synthetic workloads).

For each workload phase: the expected rate of L3-miss accesses (A_miss) to every page, the
hot set in threshold form H*_theta = {p : rate_p >= theta} and the oracle's top-K set H*_K
(K = the most pages the top tier can hold at once in the run, `top_tier_capacity`), with the
fast-tier hit ratio such an oracle would reach. No placement the run reaches holds more than K
pages on top, so its FTHR cannot beat the oracle's (metrics checks that at every tick).
theta is `hot_rate_per_s` if given, else `hot_rate_ratio` x the mean page rate, so that a
uniform workload has no hot set at all (precision is then undefined, as the field defines it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import numpy.typing as npt

from runtime import sums
from runtime.memory import Memory
from runtime.pageruns import PageRuns
from runtime.pghot.watermarks import Watermarks
from runtime.topology import Topology
from runtime.workloads import Phase, Workload

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class PhaseTruth:
    """One phase's ground truth, per run of pages with equal rates (runtime/pageruns.py):
    the expected L3-miss accesses per second of each page, the hot set H*_theta (whole runs:
    a run's pages share a rate), and the oracle holding the K pages of highest rate."""

    start_ms: float
    end_ms: float
    label: str
    rate: PageRuns  # expected L3-miss accesses per second, per page
    theta_per_s: float
    hot_runs: BoolArray  # per run of `rate`: H*_theta
    k: int  # how many pages the oracle holds on the top tier (K, at most the region)
    oracle_fthr: float

    @cached_property
    def hot_count(self) -> int:
        return self.rate.count_where(self.hot_runs)

    @cached_property
    def hot_pages(self) -> npt.NDArray[np.int64]:
        """The hot set's page numbers, ascending (built on first use: hot pages only)."""
        return self.rate.pages_where(self.hot_runs)

    @cached_property
    def total_rate_per_s(self) -> float:
        return self.rate.total()

    @cached_property
    def hot_rate_total(self) -> float:
        return sums.dot(self.rate.values[self.hot_runs], self.rate.lengths[self.hot_runs])

    def rate_of(self, pages: npt.NDArray[np.int64]) -> FloatArray:
        return self.rate.of(pages)

    def is_hot(self, pages: npt.NDArray[np.int64]) -> BoolArray:
        hot: BoolArray = self.hot_runs[self.rate.run_of(pages)]
        return hot

    def fthr_of_mass(self, top_mass: float) -> float:
        """FTHR when the pages on the fast tier carry top_mass of the rate."""
        total = self.total_rate_per_s
        return top_mass / total if total > 0 else 0.0

    def fthr(self, on_top: BoolArray) -> float:
        """Fraction of A_miss served by the fast tier when `on_top` pages (one bool per page)
        are there."""
        return self.fthr_of_mass(self.rate.sum_over(on_top))


def top_tier_capacity(topology: Topology, memory: Memory, watermarks: Watermarks,
                      batch_nr: int) -> int:
    """K: the most workload pages the top tier can hold at any moment of the run, per node
    the larger of what the initial placement put there and what promotion can fill it to.

    Promotion moves a page only while the target's free pages exceed the high watermark + 1
    (migrate_prepare, checked per page against the free count at the batch's start, which
    changes only when a batch of batch_nr + 1 pages is flushed), so it stops at present - high
    - 1 + batch_nr pages; demotion only takes pages off; placement `dram` or `interleave` may
    start a node fuller than that (up to full), and nothing but demotion empties it. The
    promo watermark (kswapd's target) is not the bound: with demotion off, or between kswapd
    rounds, promotion fills past it, which made FTHR exceed the oracle (efficiency > 100%)."""
    total = 0
    for node in topology.nodes:
        if node.toptier:
            present = node.pfn_count
            promoted_to = present - watermarks.high_pages(present) - 1 + batch_nr
            placed = present - memory.free_pages(node.nid)
            total += min(present, max(placed, promoted_to))
    return total


def mem_ops_per_s(workload: Workload, cpus: int, ops_per_cpu_per_s: float) -> float:
    return cpus * ops_per_cpu_per_s * workload.mem_op_fraction


def phase_truth(phase: Phase, end_ms: float, mem_rate: float, capacity_pages: int,
                hot_rate_ratio: float, hot_rate_per_s: float | None) -> PhaseTruth:
    return rate_truth(phase.miss_mass.map(lambda v: v * mem_rate), phase.start_ms, end_ms,
                      phase.label, capacity_pages, hot_rate_ratio, hot_rate_per_s)


def rate_truth(rate: PageRuns, start_ms: float, end_ms: float, label: str,
               capacity_pages: int, hot_rate_ratio: float,
               hot_rate_per_s: float | None) -> PhaseTruth:
    """The truth of a span with the given L3-miss rate per page: a workload phase's, or a
    recording's, from its samples per page over its length (runtime/recorded.py)."""
    theta = hot_rate_per_s if hot_rate_per_s is not None else \
        hot_rate_ratio * rate.total() / rate.pages
    hot = (rate.values >= theta * (1 - 1e-12)) & (rate.values > 0)  # a page that never
    # reaches memory is not hot, even when nothing does (theta 0)
    k = min(capacity_pages, rate.pages)
    # The oracle takes whole runs by decreasing rate (ties: the lower pages first, as a stable
    # sort of pages would), the last one in part.
    order = np.lexsort((rate.starts, -rate.values))
    held = np.minimum(np.cumsum(rate.lengths[order]), k)
    taken = np.diff(np.r_[0, held])
    total = rate.total()
    oracle = sums.dot(rate.values[order], taken) / total if total > 0 else 0.0
    return PhaseTruth(start_ms, end_ms, label, rate, theta, hot, k, oracle)


def truths(workload: Workload, duration_ms: float, mem_rate: float, capacity_pages: int,
           hot_rate_ratio: float, hot_rate_per_s: float | None,
           progress: Callable[[float], None] | None = None) -> list[PhaseTruth]:
    """One PhaseTruth per phase that starts before the end of the run (`progress` hears the
    fraction of them done)."""
    out = []
    phases = [p for p in workload.phases if p.start_ms < duration_ms]
    for i, phase in enumerate(phases):
        end = phases[i + 1].start_ms if i + 1 < len(phases) else duration_ms
        out.append(phase_truth(phase, end, mem_rate, capacity_pages, hot_rate_ratio,
                               hot_rate_per_s))
        if progress is not None:
            progress((i + 1) / len(phases))
    return out


def detection_probability(lam: FloatArray | float, threshold: int = 2) -> FloatArray | float:
    """P(a Poisson(lam) number of samples reaches threshold): 1 - e^-lam (1 + lam) for 2."""
    lam_arr = np.asarray(lam, dtype=np.float64)
    term = np.exp(-lam_arr)
    below = np.zeros_like(lam_arr)
    for k in range(threshold):
        below = below + term
        term = term * lam_arr / (k + 1)
    result: FloatArray = 1.0 - below
    return result if result.ndim else float(result)
