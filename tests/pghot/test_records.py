"""Record words: windows, saturation, the bucketed clock, READY rules, consumption."""

from __future__ import annotations

from functools import reduce
from typing import Any

import numpy as np

from generated.pghot import PAGES_PER_SECTION as PPS
from generated.pghot import PghotRecordDefault, PghotRecordPrecise
from runtime.jiffies import INITIAL_JIFFIES
from runtime.pghot import NUMA_NO_NODE, Record, RecordMap, default_mode, precise_mode
from runtime.pghot.default_mode import time_bucket


def default_latency_ms(old_bucket: int, jiffies: int) -> int:
    return default_mode.access_latency(old_bucket, jiffies)


def default_after(times: list[int], window_ms: int = 3000, threshold: int = 2,
                  sticky: bool = False) -> PghotRecordDefault:
    word = reduce(lambda w, t: default_mode.update_record(w, t, window_ms, threshold,
                                                          int(sticky)), times, 0)
    return PghotRecordDefault.decode(word)


def precise_after(accesses: list[tuple[int, int]], window_ms: int = 5000,
                  threshold: int = 2) -> PghotRecordPrecise:
    word = 0
    for nid, t in accesses:
        word = precise_mode.update_record(word, nid, t, window_ms, threshold)
    return PghotRecordPrecise.decode(word)


def test_limits_come_from_the_generated_field_widths() -> None:
    assert (default_mode.FREQ_MAX, precise_mode.FREQ_MAX) == (3, 7)
    assert (default_mode.TIME_WRAP_MS, default_mode.LATENCY_MAX_MS,
            precise_mode.TIME_WRAP_MS) == (4096, 3968, 16384)
    assert [time_bucket(t) for t in (0, 127, 128, 3968, 4095, 4096)] == [0, 0, 1, 31, 31, 0]


def test_first_access_on_a_zero_record_gives_freq_1() -> None:
    for t in (0, 1000, 3500, 100_000):
        rec = default_after([t])
        assert (rec.freq, rec.time, rec.ready) == (1, time_bucket(t), False)
    assert precise_after([(0, 12345)]).freq == 1


def test_default_window_boundary_is_strict_and_bucketed() -> None:
    # window 1024 ms = 8 buckets: latency equal to the window keeps it, one bucket more resets.
    assert default_after([0, 1024], window_ms=1024).freq == 2
    assert default_after([0, 1151], window_ms=1024).freq == 2  # still bucket 8: looks 1024 old
    assert default_after([0, 1152], window_ms=1024).freq == 1
    assert default_latency_ms(0, 1151) == 1024


def test_precise_window_boundary_is_strict() -> None:
    assert precise_after([(0, 0), (0, 5000)]).freq == 2
    assert precise_after([(0, 0), (0, 5001)]).freq == 1


def test_frequency_saturates() -> None:
    assert default_after(list(range(0, 100, 10))).freq == 3
    rec = precise_after([(0, t) for t in range(0, 100, 10)], threshold=7)
    assert (rec.freq, rec.ready) == (7, True)
    assert not precise_after([(0, t) for t in range(0, 60, 10)], threshold=7).ready  # freq 6


def test_bucketed_time_wraps_every_4096_ms() -> None:
    # 4296 ms after the previous access looks 200 ms (one bucket) old: same window.
    assert default_after([0, 100, 4096 + 200]).freq == 3
    assert default_latency_ms(time_bucket(100), 4096 + 200) == 128
    # Without the wrap the same history (3500 ms gap, > 3000) would start a new window.
    assert default_after([0, 100, 3500]).freq == 1


def test_precise_time_wraps_every_16384_ms() -> None:
    assert precise_after([(0, 0), (0, 16384 + 10)]).freq == 2
    assert precise_after([(0, 0), (0, 16384 - 10)], window_ms=16383).freq == 2
    assert precise_after([(0, 0), (0, 6000)]).freq == 1


def test_sticky_ready_survives_a_window_reset_recomputed_does_not() -> None:
    history = [0, 10, 3200]  # ready at 10; 3200 is 25 buckets (3200 ms > 3000) later
    sticky = default_after(history, sticky=True)
    recomputed = default_after(history, sticky=False)
    assert (sticky.freq, sticky.ready) == (1, True)
    assert (recomputed.freq, recomputed.ready) == (1, False)
    assert default_after([0, 10]).ready and default_after([0, 10], sticky=True).ready


def test_precise_last_reporter_wins_without_resetting_freq() -> None:
    rec = precise_after([(0, 0), (2, 10), (3, 20)], threshold=3)
    assert (rec.nid, rec.nid_known, rec.freq, rec.ready, rec.time) == (3, True, 3, True, 20)


def test_precise_no_node_keeps_a_known_node_else_promotes_to_target_at_consume() -> None:
    """c46902d3: NUMA_NO_NODE keeps the node known before; a record with none known goes to
    target_nid, read when kmigrated consumes it."""
    rec = precise_after([(2, 10), (NUMA_NO_NODE, 20)])
    assert (rec.nid, rec.nid_known, rec.freq) == (2, True, 2)
    unknown = precise_after([(NUMA_NO_NODE, 10), (NUMA_NO_NODE, 20)])
    assert (unknown.nid, unknown.nid_known, unknown.ready) == (0, False, True)
    assert precise_mode.record_target(unknown.encode(), 4) == 4
    assert precise_mode.record_target(rec.encode(), 4) == 2


def test_default_buckets_follow_absolute_jiffies_from_initial_jiffies() -> None:
    """At uptime 0 jiffies mod 128 is 32: two accesses 3050 ms apart are 3072 (24 buckets)
    apart, older than the 3000 ms window; from jiffies 0 they would be 2944 apart."""
    assert INITIAL_JIFFIES % 128 == 32
    assert not default_after([INITIAL_JIFFIES, INITIAL_JIFFIES + 3050]).ready
    assert default_after([0, 3050]).ready


def test_record_map_keeps_lower_tier_sections_only_in_the_mode_width() -> None:
    default = RecordMap("default", [16, 17])
    precise = RecordMap("precise", [16])
    assert default.sections() == [16, 17] and not default.has_section(0)
    assert default.words_view(16).itemsize == 1 and default.words_view(16).size == PPS
    assert precise.words_view(16).itemsize == 4 and precise.words_view(16).size == PPS
    assert default.flat.nbytes == 2 * PPS  # nothing for sections without a hot map
    pfns = np.array([16 * PPS + 3, 17 * PPS, 15 * PPS, 18 * PPS, 0, 10**12, -1, 2**62,
                     2**63 - 1])  # no hot map however large the PFN
    assert default.flat_index(pfns).tolist() == [3, PPS, -1, -1, -1, -1, -1, -1, -1]
    first = RecordMap("default", [0])
    assert first.flat_index(np.array([5, -5])).tolist() == [5, -1]
    default.set_word(17 * PPS + 1, 0x5A)  # the scalar and the flat views share the words
    assert default.flat[PPS + 1] == 0x5A and default.word(17 * PPS + 1) == 0x5A


def test_precise_map_update_and_consume() -> None:
    records = RecordMap("precise", [16])
    pfn = 16 * PPS + 5
    args: dict[str, Any] = {"window_ms": 5000, "threshold": 2, "sticky": False}
    assert not records.update(pfn, NUMA_NO_NODE, 100, **args)
    assert records.decode(pfn) == PghotRecordPrecise(nid=0, freq=1, time=100)
    assert records.update(pfn, 2, 200, **args)
    assert records.decode(pfn) == PghotRecordPrecise(nid=2, nid_known=True, freq=2, time=200,
                                                     ready=True)
    assert records.get_record(pfn, target_nid=4) == Record(2, 2, 200)


def test_get_record_consumes_only_ready_records() -> None:
    records = RecordMap("default", [16])
    pfn = 16 * PPS + 7
    args: dict[str, Any] = {"window_ms": 3000, "threshold": 2, "sticky": False}
    records.update(pfn, 0, 300, **args)
    assert records.get_record(pfn, target_nid=0) is None
    assert records.decode(pfn) == PghotRecordDefault(freq=1, time=time_bucket(300))
    records.update(pfn, 0, 400, **args)
    assert records.get_record(pfn, target_nid=3) == Record(3, 2, time_bucket(400))
    assert records.word(pfn) == 0
    assert records.get_record(pfn, target_nid=3) is None


