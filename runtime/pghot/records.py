"""The per-section hot maps: every lower-tier PFN's record word, in either mode.

The kernel builds one mode or the other (CONFIG_PGHOT_PRECISE); the model picks it at run
time, so the record rules of default_mode.py and precise_mode.py are reached through the small
dispatchers below (`precise` is 0 or 1). Like the rules, they are @jitable: the reference
calls them per access, the fast engine compiles them into its loops.

Time is jiffies (HZ = 1000: one jiffy is one ms), absolute as the kernel's, starting at
INITIAL_JIFFIES (runtime/jiffies.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from generated._base import jitable
from generated.pghot import PAGES_PER_SECTION, PghotRecordDefault, PghotRecordPrecise
from runtime.pghot import default_mode, precise_mode
from runtime.pghot.precise_mode import NUMA_NO_NODE
from runtime.sections import flat_index, flat_index_of, shift_table

MODES = ("default", "precise")
__all__ = ["MODES", "NUMA_NO_NODE", "Record", "RecordMap", "freq_max", "latency_max_ms"]


def freq_max(mode: str) -> int:
    """PGHOT_FREQ_MAX of the mode: saturation point and upper bound of freq_threshold."""
    return precise_mode.FREQ_MAX if mode == "precise" else default_mode.FREQ_MAX


def latency_max_ms(mode: str) -> int:
    """Largest age the mode's clock can express: the upper bound of the window."""
    return precise_mode.LATENCY_MAX_MS if mode == "precise" else default_mode.LATENCY_MAX_MS


@jitable
def update_word(precise: int, word: int, nid: int, jiffies: int, window_ms: int,
                threshold: int, sticky: int) -> int:
    """pghot_update_record of the mode built in."""
    if precise:
        return precise_mode.update_record(word, nid, jiffies, window_ms, threshold)
    return default_mode.update_record(word, jiffies, window_ms, threshold, sticky)


@jitable
def word_ready(precise: int, word: int) -> int:
    """MIGRATE_READY of a word of the mode built in."""
    if precise:
        return precise_mode.record_ready(word)
    return default_mode.record_ready(word)


@jitable
def word_target(precise: int, word: int, target_nid: int) -> int:
    """The node a consumed record promotes to."""
    if precise:
        return precise_mode.record_target(word, target_nid)
    return default_mode.record_target(word, target_nid)


@jitable
def word_time(precise: int, word: int) -> int:
    """The stored time a consumed record hands kmigrated's age test."""
    if precise:
        return precise_mode.record_time(word)
    return default_mode.record_time(word)


@jitable
def word_freq(precise: int, word: int) -> int:
    if precise:
        return precise_mode.record_freq(word)
    return default_mode.record_freq(word)


@jitable
def record_latency(precise: int, stored_time: int, jiffies: int) -> int:
    """pghot_access_latency of a stored time at jiffies, in the mode's clock."""
    if precise:
        return precise_mode.access_latency(stored_time, jiffies)
    return default_mode.access_latency(stored_time, jiffies)


class Record(NamedTuple):
    """What get_record hands kmigrated: target nid, freq and stored (possibly bucketed) time."""

    nid: int
    freq: int
    time: int


class RecordMap:
    """The per-section hot maps: PAGES_PER_SECTION zeroed words per lower-tier section (one
    byte in default mode, 32 bits in precise), index pfn % PAGES_PER_SECTION.

    All sections live in one zeroed numpy buffer (calloc: a word costs memory once touched),
    back to back; `shift` turns a PFN into its index there (runtime/sections.py), so the
    compiled loops reach any record with one lookup."""

    def __init__(self, mode: str, sections: Iterable[int]) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown pghot mode {mode!r}")
        self.mode = mode
        self.precise = int(mode == "precise")
        cls = PghotRecordPrecise if self.precise else PghotRecordDefault
        self._cls = cls
        self.dtype = np.dtype(cls.DTYPE if hasattr(cls, "DTYPE") else np.uint64)
        self.dtype = np.dtype(np.uint32 if self.precise else np.uint8)
        self._reset = cls.RESET
        order = sorted(set(sections))
        self._order = order
        self.flat = np.zeros(len(order) * PAGES_PER_SECTION, dtype=self.dtype)
        if self._reset:
            self.flat[:] = self._reset
        # section -> slot in `flat`; the extra -1 at the end catches PFNs past every section
        self.slot = np.full(max(order, default=-1) + 2, -1, dtype=np.int64)
        self.slot[order] = np.arange(len(order))
        self.shift = shift_table(self.slot)

    def has_section(self, section: int) -> bool:
        return 0 <= section < self.slot.size and self.slot[section] >= 0

    def sections(self) -> list[int]:
        return list(self._order)

    def index(self, pfn: int) -> int:
        """Index of pfn's word in `flat`, or -1 where its section has no hot map."""
        return int(flat_index_of(pfn, self.shift))

    def flat_index(self, pfns: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """index() of many PFNs."""
        return flat_index(pfns, self.shift)

    def word(self, pfn: int) -> int:
        """Raw record word of pfn; KeyError when its section has no hot map."""
        i = self.index(pfn)
        if i < 0:
            raise KeyError(f"PFN {pfn} has no hot map")
        return int(self.flat[i])

    def set_word(self, pfn: int, raw: int) -> None:
        i = self.index(pfn)
        if i < 0:
            raise KeyError(f"PFN {pfn} has no hot map")
        self.flat[i] = raw

    def words_view(self, section: int) -> npt.NDArray[Any]:
        """A writable numpy view of one section's record words."""
        i = int(self.slot[section])
        return self.flat[i * PAGES_PER_SECTION:(i + 1) * PAGES_PER_SECTION]

    def ready_in_section(self, section: int) -> npt.NDArray[np.int64]:
        """PFNs of one section whose record has READY set, ascending (vectorised accessor)."""
        view = self.words_view(section)
        # Most words of a section are untouched: test READY on the non-reset ones only.
        used = np.flatnonzero(view != self._reset)
        ready = self._cls.get_ready(view[used])
        found: npt.NDArray[np.int64] = used[ready] + section * PAGES_PER_SECTION
        return found

    def decode(self, pfn: int) -> PghotRecordDefault | PghotRecordPrecise:
        """The record of pfn as a generated value object (for tests and inspection)."""
        return self._cls.decode(self.word(pfn))

    def update(self, pfn: int, nid: int, jiffies: int, *, window_ms: int, threshold: int,
               sticky: bool) -> bool:
        """Record one access to pfn; True when the record is migrate-ready afterwards."""
        new = update_word(self.precise, self.word(pfn), nid, jiffies, window_ms, threshold,
                          int(sticky))
        self.set_word(pfn, new)
        return bool(word_ready(self.precise, new))

    def consume(self, pfn: int) -> None:
        """Zero a record known to be READY (what get_record does after reading it)."""
        self.set_word(pfn, self._reset)

    def consume_many(self, section: int, pfns: npt.NDArray[np.int64]) -> None:
        """consume() for PFNs of one section, in one vectorised store."""
        if pfns.size:
            self.words_view(section)[pfns - section * PAGES_PER_SECTION] = self._reset

    def get_record(self, pfn: int, target_nid: int) -> Record | None:
        """pghot_get_record: None if READY is clear (word untouched), else zero the word and
        return (target nid, freq, stored time)."""
        word = self.word(pfn)
        if not word_ready(self.precise, word):
            return None
        self.consume(pfn)
        return Record(int(word_target(self.precise, word, target_nid)),
                      int(word_freq(self.precise, word)), int(word_time(self.precise, word)))
