"""What the metrics keep per workload page, in 6 bytes: a 256 GiB region is 64 M pages.

One uint32 word per page: whether the page is on the fast tier, whether it is in the ready set
D(t), whether it was ever READY (3 flag bits), and the time of its latest READY call in 1/16 ms
(29 bits: 9.3 hours). One uint16 per page: its latest promotion, in steps of the run's length /
32766 (1 ms up to a 32 s run, 110 ms for an hour), and whether it was demoted since (for
ping-pong). The readiness time decides D(t) membership at 1/16 ms, the promotion time the
ping-pong window at one step: both far finer than the windows they are compared with.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
B = npt.NDArray[np.bool_]
ON_TOP, IN_D, EVER_READY = 1, 2, 4
FLAG_BITS = 3
READY_STEPS_PER_MS = 16
PROMO_DEMOTED = 1 << 15
"""Set once the page was demoted after its latest promotion."""
PROMO_MAX = PROMO_DEMOTED - 1
PROMO_NEVER = 0


class PageState:
    """The collector's per-page arrays (see the module docstring for the layout)."""

    def __init__(self, pages: int, duration_ms: float, on_top: B) -> None:
        self.words = np.where(on_top, ON_TOP, 0).astype(np.uint32)
        self.promo = np.full(pages, PROMO_NEVER, dtype=np.uint16)
        self.promo_unit_ms = max(1, math.ceil((duration_ms + 1) / (PROMO_MAX - 1)))

    @property
    def nbytes(self) -> int:
        return int(self.words.nbytes + self.promo.nbytes)

    # --- flags -----------------------------------------------------------------------------
    def flag(self, mask: int, pages: I64 | None = None) -> B:
        words = self.words if pages is None else self.words[pages]
        flags: B = (words & mask) != 0
        return flags

    def set_flag(self, mask: int, pages: I64, values: B) -> None:
        words = self.words[pages]
        self.words[pages] = np.where(values, words | mask, words & ~np.uint32(mask))

    # --- READY times -----------------------------------------------------------------------
    def mark_ready(self, pages: I64, when: F64) -> int:
        """Pages READY at `when` (ms, each page once): their latest READY time; returns how
        many were never READY before."""
        words = self.words[pages]
        first = int(np.count_nonzero((words & EVER_READY) == 0))
        steps = np.floor(when * READY_STEPS_PER_MS).astype(np.uint32)
        self.words[pages] = (steps << FLAG_BITS) | (words & (ON_TOP | IN_D)) | EVER_READY
        return first

    def ready_after(self, pages: I64, cut_ms: float) -> B:
        """Whether each page's latest READY call came after cut_ms (at 1/16 ms)."""
        steps = self.words[pages] >> FLAG_BITS
        after: B = ((self.words[pages] & EVER_READY) != 0) & (
            steps > math.floor(cut_ms * READY_STEPS_PER_MS))
        return after

    # --- promotions ------------------------------------------------------------------------
    def promoted(self, pages: I64, times: I64, within_ms: float) -> B:
        """Pages promoted at `times` (ms): whether each was promoted before, demoted since,
        and promoted again within within_ms of that earlier promotion (a ping-pong)."""
        before = self.promo[pages]
        demoted = (before & PROMO_DEMOTED) != 0
        earlier = ((before & PROMO_MAX).astype(np.int64) - 1) * self.promo_unit_ms
        again: B = demoted & (times - earlier <= within_ms)
        self.promo[pages] = np.minimum(1 + times // self.promo_unit_ms, PROMO_MAX)
        return again

    def demoted(self, pages: I64) -> None:
        """Pages demoted: a later promotion of one promoted before is a ping-pong."""
        before = self.promo[pages]
        self.promo[pages] = np.where(before != PROMO_NEVER, before | PROMO_DEMOTED, before)
