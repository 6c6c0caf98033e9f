"""When a page marked PROT_NONE is next accessed, for synthetic workloads.

The hint is checked at address translation, so the first access of any kind after the mark
faults: loads and stores, L3 hits and misses, from any CPU. Per phase of the workload
(runtime/workloads.py) each CPU issues memory ops at `mem_ops_per_ms_per_cpu`, a fraction
probs[p] of them to page p, independently: the accesses to page p from all CPUs form a
Poisson process of rate lambda_p = cpus * mem_ops_per_ms_per_cpu * probs[p], so
- the first access after the mark at t is t + Exp(lambda_p) (memoryless: a page whose fault
  is pending when the phase changes gets a fresh draw from the change on, with the new
  rate), never for lambda_p = 0;
- the faulting CPU is uniform over the CPUs (they all run the same distribution).
A scan phase sweeps: CPU c is on page (floor(t * s) + c * P // cpus) mod P at time t
(s pages/ms), so the first access is deterministic: now if some CPU is on the page, else when
the first CPU to get there reaches it (ties: the lowest CPU).

Draws come from generators seeded by (seed, what, index): pass number n for a pass's marks,
phase number i for the redraw at phase i's start, so the draws depend only on the scan state,
which both engines evolve alike. Everything is vectorised over the marked pages.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from runtime.draws import phase_at
from runtime.workloads import Workload

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
STREAM = 0x4E554D41
"""Seeds the hint-fault draws apart from every other stream of a run ("NUMA")."""
PASS_DRAW, PHASE_DRAW = 0, 1


class SyntheticArrivals:
    """First-access times of marked pages of a synthetic workload."""

    def __init__(self, workload: Workload, seed: int, cpus: int,
                 mem_ops_per_ms_per_cpu: float) -> None:
        self.workload = workload
        self.seed = seed
        self.cpus = cpus
        self.rate_scale = cpus * mem_ops_per_ms_per_cpu
        self.starts = [p.start_ms for p in workload.phases]
        self.offsets = np.arange(cpus, dtype=np.int64) * workload.pages // cpus

    def phase_starts(self) -> list[float]:
        """When the access rates change (after the first phase's start)."""
        return self.starts[1:]

    def rates_per_ms(self, phase: int, pages: I64) -> F64:
        """lambda_p of each page in a phase: all memory accesses per ms, all CPUs."""
        rates: F64 = self.rate_scale * self.workload.phases[phase].probs.of(pages)
        return rates

    def draw(self, pages: I64, t_ms: float, what: int, index: int) -> tuple[F64, I64]:
        """First access after t_ms of each page and the CPU that makes it (inf: never)."""
        phase = phase_at(t_ms, self.starts)
        scan = self.workload.phases[phase].scan_pages_per_ms
        if scan > 0:
            return self._sweep(pages, t_ms, scan)
        rng = np.random.default_rng([self.seed, STREAM, what, index])
        gaps = rng.exponential(size=pages.size)
        cpus = rng.integers(0, self.cpus, size=pages.size)
        rates = self.rates_per_ms(phase, pages)
        with np.errstate(divide="ignore"):
            times = np.where(rates > 0, t_ms + gaps / rates, np.inf)
        return times, cpus

    def _sweep(self, pages: I64, t_ms: float, scan: float) -> tuple[F64, I64]:
        """The first arrival of any CPU's sweep at each page from t_ms on (one CPU at a
        time, so the work space stays one array of the pages)."""
        total = self.workload.pages
        step = int(np.floor(t_ms * scan))
        best = np.full(pages.size, total, dtype=np.int64)  # pages still to go
        first = np.zeros(pages.size, dtype=np.int64)
        for cpu, offset in enumerate(self.offsets.tolist()):
            ahead = (pages - (step + offset)) % total
            closer = ahead < best
            best[closer] = ahead[closer]
            first[closer] = cpu
        times: F64 = np.where(best == 0, t_ms, (step + best) / scan)
        return times, first
