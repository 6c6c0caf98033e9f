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

from runtime.jit import compiled_on_first_call

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


def _mark_ready_calls(pages: I64, when: F64, words: npt.NDArray[np.uint32],
                      keep: I64) -> tuple[int, int]:
    """READY calls in order: each page's word gets the READY flags and the time of its latest
    call; counts the pages READY for the first time. Then, backwards, the index of each page's
    last call goes to `keep` (a page's EVER_READY bit marks it seen meanwhile, and is set back
    after). Returns (first-time pages, indices kept)."""
    first = 0
    for i in range(pages.size):
        page = pages[i]
        w = words[page]
        if not w & EVER_READY:
            first += 1
        step = np.uint32(math.floor(when[i] * READY_STEPS_PER_MS))
        words[page] = (step << FLAG_BITS) | (w & (ON_TOP | IN_D)) | EVER_READY
    kept = 0
    for i in range(pages.size - 1, -1, -1):
        page = pages[i]
        if words[page] & EVER_READY:
            words[page] = words[page] - EVER_READY
            keep[kept] = i
            kept += 1
    for j in range(kept):
        words[pages[keep[j]]] = words[pages[keep[j]]] | EVER_READY
    return first, kept


mark_ready_calls = compiled_on_first_call(_mark_ready_calls)


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
    def mark_ready(self, pages: I64, when: F64) -> tuple[int, I64]:
        """Pages READY at `when` (ms, in call order, a page any number of times): each page's
        latest READY time. Returns how many pages were never READY before, and the index of
        each page's last call among these (in no particular order)."""
        keep = np.empty(pages.size, dtype=np.int64)
        first, kept = mark_ready_calls(pages, when, self.words, keep)
        return first, keep[:kept]

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
