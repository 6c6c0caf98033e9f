"""Per-PFN hotness records of pghot v7 (mm/pghot-default.c, mm/pghot-precise.c).

Every record word is read and written through the generated accessors `PghotRecordDefault` and
`PghotRecordPrecise`; field limits (FREQ_MAX, bucket count, time wrap) are derived from the
generated `FIELDS` widths, so a spec change cannot leave a stale hand-written mask behind.

Time is jiffies with HZ=1000, so jiffies and milliseconds are the same number (pghot.md §10.1).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from generated._base import RegisterValue
from generated.pghot import (
    PAGES_PER_SECTION,
    PGHOT_BUCKET_SHIFT,
    PghotRecordDefault,
    PghotRecordPrecise,
)
from runtime.sections import flat_index, shift_table

MODES = ("default", "precise")
NUMA_NO_NODE = -1


def field_width(cls: type[RegisterValue], name: str) -> int:
    """Width in bits of a generated record field (from the spec-derived FIELDS metadata)."""
    for info in cls.FIELDS:
        if info.name == name:
            return info.width
    raise KeyError(f"{cls.NAME} has no field {name!r}")


# Default mode (u8): 2-bit freq, 5-bit bucketed time.
DEFAULT_FREQ_MAX = (1 << field_width(PghotRecordDefault, "freq")) - 1
DEFAULT_TIME_BUCKETS = 1 << field_width(PghotRecordDefault, "time")
DEFAULT_BUCKET_MS = 1 << PGHOT_BUCKET_SHIFT
DEFAULT_TIME_WRAP_MS = DEFAULT_TIME_BUCKETS * DEFAULT_BUCKET_MS
"""Bucketed time aliases after this many ms: an access 4096 + d ms later looks d old."""
DEFAULT_LATENCY_MAX_MS = DEFAULT_TIME_WRAP_MS - DEFAULT_BUCKET_MS
"""Largest latency the bucketed clock can express (kernel PGHOT_TIME_BUCKETS_MASK, 3968)."""

# Precise mode (u32): 10-bit nid, 3-bit freq, 14-bit time in jiffies.
PRECISE_FREQ_MAX = (1 << field_width(PghotRecordPrecise, "freq")) - 1
PRECISE_TIME_WRAP_MS = 1 << field_width(PghotRecordPrecise, "time")
PRECISE_LATENCY_MAX_MS = PRECISE_TIME_WRAP_MS - 1


def freq_max(mode: str) -> int:
    """PGHOT_FREQ_MAX of the mode: saturation point and upper bound of freq_threshold."""
    return PRECISE_FREQ_MAX if mode == "precise" else DEFAULT_FREQ_MAX


def time_bucket(now_ms: int) -> int:
    """Default-mode stored time: (jiffies >> PGHOT_BUCKET_SHIFT) modulo the bucket count."""
    return (now_ms >> PGHOT_BUCKET_SHIFT) % DEFAULT_TIME_BUCKETS


def default_latency_ms(old_bucket: int, now_ms: int) -> int:
    """pghot_access_latency (default): age of a bucketed time, multiple of 128, modulo 4096."""
    return ((time_bucket(now_ms) - old_bucket) % DEFAULT_TIME_BUCKETS) * DEFAULT_BUCKET_MS


def precise_time(now_ms: int) -> int:
    """Precise-mode stored time: jiffies modulo 16384."""
    return now_ms % PRECISE_TIME_WRAP_MS


def precise_latency_ms(old_time: int, now_ms: int) -> int:
    """pghot_access_latency (precise): (now - old) modulo 16384 jiffies."""
    return (now_ms - old_time) % PRECISE_TIME_WRAP_MS


def latency_ms(mode: str, old_time: int, now_ms: int) -> int:
    """Age in ms of a record's stored time, in the given mode's clock."""
    if mode == "precise":
        return precise_latency_ms(old_time, now_ms)
    return default_latency_ms(old_time, now_ms)


def _next_freq(old_freq: int, latency: int, window_ms: int, limit: int) -> int:
    """New window (strictly older than window_ms) restarts at 1, else +1 saturating at limit."""
    if latency > window_ms:
        return 1
    return min(old_freq + 1, limit)


def update_default(word: int, now_ms: int, *, window_ms: int, threshold: int,
                   sticky: bool) -> int:
    """pghot_update_record (default mode) on one u8 word; returns the new word.

    sticky=True is v6 (the word is edited in place, so READY survives a window reset until
    kmigrated consumes it); sticky=False is post-v7 (the word is rebuilt, READY recomputed).
    """
    old = PghotRecordDefault.decode(word)
    freq = _next_freq(old.freq, default_latency_ms(old.time, now_ms), window_ms,
                      DEFAULT_FREQ_MAX)
    base = old if sticky else PghotRecordDefault()
    new = base.replace(freq=freq, time=time_bucket(now_ms),
                       ready=base.ready or freq >= threshold)
    return new.encode()


def update_precise(word: int, nid: int, now_ms: int, *, window_ms: int, threshold: int) -> int:
    """pghot_update_record (precise mode): rebuilt from zero, last reporter's nid wins.

    A nid change does not reset freq (v3 did). nid must already be resolved (no NUMA_NO_NODE).
    """
    old = PghotRecordPrecise.decode(word)
    freq = _next_freq(old.freq, precise_latency_ms(old.time, now_ms), window_ms,
                      PRECISE_FREQ_MAX)
    new = PghotRecordPrecise(nid=nid, freq=freq, time=precise_time(now_ms),
                             ready=freq >= threshold)
    return new.encode()


U64 = npt.NDArray[np.uint64]


def update_default_array(words: U64, now_ms: npt.NDArray[np.int64], *, window_ms: int,
                         threshold: int, sticky: bool) -> U64:
    """update_default on many (distinct) records at once, through the vectorised accessors."""
    rec = PghotRecordDefault
    now = now_ms.astype(np.int64, copy=False)
    bucket = (now >> PGHOT_BUCKET_SHIFT) % DEFAULT_TIME_BUCKETS
    old_time = rec.get_time(words).astype(np.int64)
    latency = ((bucket - old_time) % DEFAULT_TIME_BUCKETS) * DEFAULT_BUCKET_MS
    freq = np.where(latency > window_ms, 1,
                    np.minimum(rec.get_freq(words).astype(np.int64) + 1, DEFAULT_FREQ_MAX))
    ready = freq >= threshold
    if not sticky:  # the word is rebuilt: every field given, every other bit zero
        return rec.encode_array(freq=freq.astype(np.uint64), time=bucket.astype(np.uint64),
                                ready=ready)
    ready |= rec.get_ready(words) != 0
    new = rec.set_freq(words, freq.astype(np.uint64))
    new = rec.set_time(new, bucket.astype(np.uint64))
    return rec.set_ready(new, ready.astype(np.uint64))


def update_precise_array(words: U64, nids: npt.NDArray[np.int64], now_ms: npt.NDArray[np.int64],
                         *, window_ms: int, threshold: int) -> U64:
    """update_precise on many (distinct) records at once, through the vectorised accessors."""
    rec = PghotRecordPrecise
    now = now_ms.astype(np.int64, copy=False)
    latency = (now - rec.get_time(words).astype(np.int64)) % PRECISE_TIME_WRAP_MS
    freq = np.where(latency > window_ms, 1,
                    np.minimum(rec.get_freq(words).astype(np.int64) + 1, PRECISE_FREQ_MAX))
    new = rec.set_nid(np.zeros_like(words), nids.astype(np.uint64))
    new = rec.set_freq(new, freq.astype(np.uint64))
    new = rec.set_time(new, (now % PRECISE_TIME_WRAP_MS).astype(np.uint64))
    return rec.set_ready(new, (freq >= threshold).astype(np.uint64))


class Record(NamedTuple):
    """What get_record hands kmigrated: target nid, freq and stored (possibly bucketed) time."""

    nid: int
    freq: int
    time: int


def consume_default(word: int, target_nid: int) -> Record | None:
    """pghot_get_record (default): None unless READY; the caller then stores 0."""
    rec = PghotRecordDefault
    if not rec.extract_ready(word):
        return None
    return Record(target_nid, rec.extract_freq(word), rec.extract_time(word))


def consume_precise(word: int) -> Record | None:
    """pghot_get_record (precise): None unless READY; returns the stored nid."""
    rec = PghotRecordPrecise
    if not rec.extract_ready(word):
        return None
    return Record(rec.extract_nid(word), rec.extract_freq(word), rec.extract_time(word))


class RecordMap:
    """The per-section hot maps: PAGES_PER_SECTION zeroed words per lower-tier section (one
    byte in default mode, 32 bits in precise), index pfn % PAGES_PER_SECTION.

    All sections live in one zeroed numpy buffer (calloc: a word costs memory once touched),
    so batch updates index every section at once; the scalar path sees each section as a
    memoryview, which reads and writes Python ints as fast as an array."""

    def __init__(self, mode: str, sections: Iterable[int]) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown pghot mode {mode!r}")
        self.mode = mode
        self._reset = PghotRecordPrecise.RESET if mode == "precise" else PghotRecordDefault.RESET
        width = PghotRecordPrecise.WIDTH if mode == "precise" else PghotRecordDefault.WIDTH
        self.dtype = np.dtype(np.uint32 if mode == "precise" else np.uint8)
        if self.dtype.itemsize * 8 < width:
            raise RuntimeError(f"{self.dtype} cannot hold a {width}-bit record")
        order = sorted(set(sections))
        self.flat = np.zeros(len(order) * PAGES_PER_SECTION, dtype=self.dtype)
        if self._reset:
            self.flat[:] = self._reset
        view = self.flat.data
        self._maps: dict[int, memoryview] = {
            s: view[i * PAGES_PER_SECTION:(i + 1) * PAGES_PER_SECTION]
            for i, s in enumerate(order)}
        # section -> slot in `flat`; the extra -1 at the end catches PFNs past every section
        self._slot = np.full(max(order, default=-1) + 2, -1, dtype=np.int64)
        self._slot[order] = np.arange(len(order))
        self._shift = shift_table(self._slot)

    def has_section(self, section: int) -> bool:
        return section in self._maps

    def sections(self) -> list[int]:
        return sorted(self._maps)

    def flat_index(self, pfns: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """Index of each PFN's word in `flat`, or -1 where its section has no hot map."""
        return flat_index(pfns, self._shift)

    def word(self, pfn: int) -> int:
        """Raw record word of pfn; KeyError when its section has no hot map."""
        word: int = self._maps[pfn // PAGES_PER_SECTION][pfn % PAGES_PER_SECTION]
        return word

    def set_word(self, pfn: int, raw: int) -> None:
        self._maps[pfn // PAGES_PER_SECTION][pfn % PAGES_PER_SECTION] = raw

    def words_view(self, section: int) -> npt.NDArray[Any]:
        """A writable numpy view of one section's record words (for batch updates)."""
        i = int(self._slot[section])
        return self.flat[i * PAGES_PER_SECTION:(i + 1) * PAGES_PER_SECTION]

    def ready_in_section(self, section: int) -> npt.NDArray[np.int64]:
        """PFNs of one section whose record has READY set, ascending (vectorised accessor)."""
        cls = PghotRecordPrecise if self.mode == "precise" else PghotRecordDefault
        view = self.words_view(section)
        # Most words of a section are untouched: test READY on the non-reset ones only.
        used = np.flatnonzero(view != self._reset)
        ready = cls.get_ready(view[used].astype(np.uint64)) != 0
        found: npt.NDArray[np.int64] = used[ready] + section * PAGES_PER_SECTION
        return found

    def decode(self, pfn: int) -> PghotRecordDefault | PghotRecordPrecise:
        """The record of pfn as a generated value object (for tests and inspection)."""
        if self.mode == "precise":
            return PghotRecordPrecise.decode(self.word(pfn))
        return PghotRecordDefault.decode(self.word(pfn))

    def update(self, pfn: int, nid: int, now_ms: int, *, window_ms: int, threshold: int,
               sticky: bool, target_nid: int) -> bool:
        """Record one access to pfn; True when the record is migrate-ready afterwards."""
        if self.mode == "precise":
            resolved = target_nid if nid == NUMA_NO_NODE else nid
            new = update_precise(self.word(pfn), resolved, now_ms, window_ms=window_ms,
                                 threshold=threshold)
            self.set_word(pfn, new)
            return PghotRecordPrecise.decode(new).ready
        new = update_default(self.word(pfn), now_ms, window_ms=window_ms, threshold=threshold,
                             sticky=sticky)
        self.set_word(pfn, new)
        return PghotRecordDefault.decode(new).ready

    def consume(self, pfn: int) -> None:
        """Zero a record known to be READY (what get_record does after reading it)."""
        self.set_word(pfn, self._reset)

    def consume_many(self, section: int, pfns: npt.NDArray[np.int64]) -> None:
        """consume() for PFNs of one section, in one vectorised store."""
        if pfns.size:
            self.words_view(section)[pfns - section * PAGES_PER_SECTION] = self._reset

    def get_record(self, pfn: int, target_nid: int) -> Record | None:
        """Consume pfn's record: None if READY is clear (word untouched), else zero the word
        and return (nid, freq, time). A zero word is never READY, so it short-cuts decoding."""
        word = self.word(pfn)
        if word == self._reset:
            return None
        if self.mode == "precise":
            rec = consume_precise(word)
        else:
            rec = consume_default(word, target_nid)
        if rec is not None:
            self.consume(pfn)
        return rec
