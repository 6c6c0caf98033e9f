"""pghot_record_access early returns and counters; should_migrate, rate limit, threshold."""

from __future__ import annotations

import pytest

from generated.pghot import PAGES_PER_SECTION as PPS
from generated.pghot import PghotRecordDefault
from runtime.pghot import EINVAL, NUMA_NO_NODE, PGHOT_HINTFAULTS, PGHOT_HWHINTS, Watermarks
from runtime.pghot.default_mode import time_bucket
from runtime.topology import Node
from tests.pghot.helpers import Machine, machine

HF, HW = PGHOT_HINTFAULTS, PGHOT_HWHINTS


def counters(m: Machine) -> tuple[int, int, int]:
    get = m.vmstat.get
    return (get("pghot_recorded_hintfaults"), get("pghot_recorded_hwhints"),
            get("pghot_recorded_accesses"))


def test_every_early_return_in_order_with_its_counters() -> None:
    # node 2: lower tier starting mid-section, so its PFNs have no hot map
    m = machine(start=False, enabled_sources=0x1,
                extra_nodes=(Node(2, "lower", "cxl", 18 * PPS + 100, PPS - 100),))
    [pfn] = m.place_lower(1)
    [no_map_pfn] = m.place_lower(1, nid=2)
    p = m.pghot
    assert p.record_access(pfn, 0, HF, 10) == 0                   # 1. not started
    assert counters(m) == (0, 0, 0)
    p.started = True
    assert p.record_access(pfn, 0, HW, 10) == 0                   # 3. source disabled
    assert p.record_access(pfn, 0, 7, 10) == -EINVAL              # 3. unknown source
    assert counters(m) == (0, 0, 0)
    assert p.record_access(pfn, 1, HF, 10) == 0                   # 4. own node
    assert counters(m) == (1, 0, 0)
    assert p.record_access(5, 1, HF, 10) == 0                     # 5. top-tier page
    assert p.record_access(40 * PPS, 0, HF, 10) == 0              # 6. PFN not online
    assert p.record_access(pfn + 1, 0, HF, 10) == 0               # 7. no folio on an LRU
    assert p.record_access(no_map_pfn, 0, HF, 10) == 0            # 8. section without map
    assert counters(m) == (5, 0, 0)
    assert p.record_access(pfn, 0, HF, 10) == 0                   # 9./10. recorded
    assert counters(m) == (6, 0, 1)
    assert m.pghot.records.decode(pfn) == PghotRecordDefault(freq=1, time=0)
    assert not p.section_hot[16] and not p.activate[1]
    p.tunables.enabled_sources = 0x3
    assert p.record_access(pfn, 0, HW, 20) == 0                   # second access -> READY
    assert counters(m) == (6, 1, 2)
    assert p.section_hot[16] and p.activate[1] and not p.section_hot[17]
    assert not p.activate[2]


def test_default_mode_accepts_any_nid_precise_checks_it_first() -> None:
    m = machine()
    [pfn] = m.place_lower(1)
    assert m.pghot.record_access(pfn, 7, HF, 0) == 0  # default mode: nid is not stored
    assert counters(m) == (1, 0, 1)
    m = machine(mode="precise")
    [pfn] = m.place_lower(1)
    for bad in (1, 7, 1024, -5):  # lower tier, unknown, > PGHOT_NID_MAX, invalid
        assert m.pghot.record_access(pfn, bad, HF, 0) == -EINVAL
    assert counters(m) == (0, 0, 0)  # rejected before the source counters
    assert m.pghot.record_access(pfn, NUMA_NO_NODE, HF, 0) == 0
    assert m.pghot.records.decode(pfn).field_values()["nid"] == 0  # target_nid
    assert counters(m) == (1, 0, 1)
    assert m.pghot.record_access(pfn, -1, HF, 1) == 0  # NUMA_NO_NODE is -1 (linux/numa.h)


def test_free_space_enough_is_strictly_above_promo_plus_1_gib() -> None:
    top = 262144 + 100  # enough = max(262144, present / 16) = 262144
    m = machine(top_pages=top)
    m.fill(0, 99)
    assert m.pghot.free_space_enough(0)  # 262145 free > 262144
    m.fill(0, 1)
    assert not m.pghot.free_space_enough(0)  # 262144 free is not > 262144


def test_free_space_enough_counts_the_promo_watermark_and_present_over_16() -> None:
    top = 16 * PPS  # 524288 pages: present/16 = 32768 < 1 GiB; promo = 3 * 5242 = 15726
    m = machine(top_pages=top, watermarks=Watermarks(100))
    m.fill(0, top - (262144 + 15726) - 1)
    assert m.pghot.free_space_enough(0)
    m.fill(0, 1)
    assert not m.pghot.free_space_enough(0)


def test_plenty_of_room_short_circuits_age_and_rate_limit() -> None:
    m = machine(top_pages=16 * PPS, promote_rate_limit_MBps=0)
    m.pghot.promo[0].threshold_ms = 1234
    old = time_bucket(0)
    assert m.pghot.should_migrate(1, 0, old, 3900)  # 3840 ms old, rate limit 0: still yes
    assert m.pghot.promo[0].threshold_ms == 0
    assert m.vmstat.get_node(0, "pgpromote_candidate_nrl") == 1
    assert m.vmstat.get_node(0, "pgpromote_candidate") == 0


def aged(now_ms: int, age_ms: int) -> int:
    """The bucketed time of a record whose last access is age_ms (a multiple of 128) old."""
    return (time_bucket(now_ms) - age_ms // 128) % 32


def test_old_records_are_refused_before_counting_candidates() -> None:
    m = machine()  # 2 sections of DRAM: never "enough" free space
    assert m.pghot.should_migrate(1, 0, aged(10_000, 2944), 10_000)  # 2944 < 3000
    assert not m.pghot.should_migrate(1, 0, aged(10_000, 3072), 10_000)  # 3072 >= 3000
    assert m.vmstat.get_node(0, "pgpromote_candidate") == 1


def test_rate_limit_window_of_one_second() -> None:
    m = machine(promote_rate_limit_MBps=1)  # 256 pages per second
    p = m.pghot

    def ask(now_ms: int) -> bool:
        return p.should_migrate(1, 0, time_bucket(now_ms), now_ms)

    assert all(ask(5000) for _ in range(256))  # window opens at 5000 with this call counted
    assert not ask(5000)
    assert not ask(6000)  # 1000 ms later is not > 1000: same window
    assert m.vmstat.get_node(0, "pgpromote_candidate") == 258  # refused ones count too
    assert ask(6001)
    assert p.promo[0].rl_start_ms == 6001 and p.promo[0].rl_nr_cand == 259


def test_threshold_adjusts_once_a_minute_by_an_eighth_of_the_window() -> None:
    m = machine(promote_rate_limit_MBps=1)  # ref_cand = 256 * 60 = 15360 per minute
    p = m.pghot

    def ask(nr: int, now_ms: int, age_ms: int = 0) -> bool:
        return p.should_migrate(nr, 0, aged(now_ms, age_ms), now_ms)

    ask(1, 1000)
    assert p.promo[0].threshold_ms == 0  # 1000 - 0 is not > 60000: still the window
    ask(1, 60001)  # few candidates in the first minute: 3000 -> 3375
    assert p.promo[0].threshold_ms == 3375
    ask(20000, 61000)  # more than 110% of 15360 in the next minute
    ask(1, 120001)  # 60000 ms is not > 60000
    assert p.promo[0].threshold_ms == 3375
    ask(1, 120002)
    assert p.promo[0].threshold_ms == 3000
    assert ask(1, 121000, age_ms=2688) and not ask(1, 121000, age_ms=3072)
    ask(20000, 122000)
    ask(1, 180003)
    assert p.promo[0].threshold_ms == 2625
    assert not ask(1, 180100, age_ms=2688) and ask(1, 180100, age_ms=2560)


def test_threshold_floor_and_ceiling() -> None:
    m = machine(promote_rate_limit_MBps=1, promote_freq_window_ms=1000)  # unit 125
    p = m.pghot
    now = 0
    for _ in range(12):  # idle minutes: grows to at most 2 * window
        now += 60001
        p.should_migrate(1, 0, time_bucket(now), now)
    assert p.promo[0].threshold_ms == 2000
    for _ in range(20):  # flooded minutes: shrinks to at least one unit
        p.should_migrate(20000, 0, time_bucket(now), now)
        now += 60001
        p.should_migrate(1, 0, time_bucket(now), now)
    assert p.promo[0].threshold_ms == 125


def test_a_window_raised_at_run_time_wraps_the_threshold_and_the_report_says_so() -> None:
    """kmigrated_promotion_adjust_threshold in u32: a threshold at the old floor (125 ms) less
    the new step (2 * 3968 / 16 = 496) wraps to ~2^32, so no age is refused any more."""
    m = machine(promote_rate_limit_MBps=1, promote_freq_window_ms=1000)
    p = m.pghot
    now = 0
    for _ in range(20):  # flooded minutes: down to the floor, one step of the old window
        p.should_migrate(20000, 0, time_bucket(now), now)
        now += 60001
        p.should_migrate(1, 0, time_bucket(now), now)
    assert p.promo[0].threshold_ms == 125 and p.pitfall_texts() == {}
    p.tunables.promote_freq_window_ms = 3968  # the sysctl write at run time
    p.should_migrate(20000, 0, time_bucket(now), now)
    now += 60001
    p.should_migrate(1, 0, time_bucket(now), now)
    assert p.promo[0].threshold_ms == (125 - 496) & 0xFFFFFFFF
    assert list(p.pitfall_texts()) == ["threshold_wrapped"]
    now += 2000  # a fresh rate-limit window: only the age test could refuse, and it does not
    assert p.should_migrate(1, 0, aged(now, 3968), now)


def test_a_rate_limit_of_2_to_the_24_mb_wraps_to_nothing_and_is_flagged() -> None:
    """MB_TO_PAGES shifts the unsigned int sysctl in 32 bits: 16777216 MB/s is 0 pages/s."""
    m = machine(promote_rate_limit_MBps=(1 << 24) - 1)
    assert m.pghot.pitfall_texts() == {}
    assert m.pghot.should_migrate(1, 0, time_bucket(5000), 5000)
    m = machine(promote_rate_limit_MBps=1 << 24)
    [text] = m.pghot.pitfall_texts().values()
    assert "wraps to 0 pages/s" in text
    assert not m.pghot.should_migrate(1, 0, time_bucket(5000), 5000)


def test_precise_mode_stores_jiffies_modulo_its_14_bit_time() -> None:
    """The precise record keeps jiffies & 16383: the stored time restarts at 0 on the wrap."""
    for jiffies, stored in ((5, 5), (16383, 16383), (16384, 0), (16385, 1),
                            ((1 << 32) - 300_000, ((1 << 32) - 300_000) % 16384)):
        m = machine(mode="precise")
        [pfn] = m.place_lower(1)
        assert m.pghot.record_access(pfn, -1, HF, jiffies) == 0
        assert m.pghot.records.decode(pfn).field_values()["time"] == stored


def test_free_space_enough_takes_a_sixteenth_of_a_large_node(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """On a node of 8 Mi pages (32 GiB) 1/16 of the present pages (512 Ki) exceeds 1 GiB
    (256 Ki pages): free space must be strictly above promo + 512 Ki."""
    m = machine()
    present = 8 << 20
    promo = m.pghot.watermarks.promo_pages(present)
    monkeypatch.setattr(m.memory, "present_pages", lambda nid: present)
    for free, enough in ((promo + (512 << 10), False), (promo + (512 << 10) + 1, True)):
        monkeypatch.setattr(m.memory, "free_pages", lambda nid, free=free: free)
        assert m.pghot.free_space_enough(0) is enough


def test_einval_is_the_kernels_22() -> None:
    """pghot_record_access returns -EINVAL, and EINVAL is 22 (uapi asm-generic/errno-base.h)."""
    m = machine(mode="precise")
    [pfn] = m.place_lower(1)
    assert m.pghot.record_access(pfn, 7, HF, 0) == -22 == -EINVAL


def test_threshold_adjustment_periods_and_its_110_and_90_percent_bounds() -> None:
    """kmigrated_promotion_adjust_threshold on node 0, rate 1000 pages/s (60000 a period),
    window 1000 ms (step 125): the first call adjusts at once (the u32 ms clock starts 300 s
    before its wrap), then nothing until more than 60 s passed; candidates in a period above
    66000 lower the threshold a step, below 54000 raise it, 54000..66000 keep it."""
    m = machine()
    p = m.pghot
    t0 = (1 << 32) - 300_000  # INITIAL_JIFFIES, one jiffy a ms

    def period(at: int, candidates: int) -> int:
        m.vmstat.count_node(0, "pgpromote_candidate", candidates)
        p.adjust_threshold(0, 1000, 1000, at)
        return p.promo_state(0).threshold_ms

    assert period(t0, 0) == 1125  # 0 < 54000: one step up from the window
    assert period(t0 + 60_000, 99_999) == 1125  # exactly 60 s later: not yet
    assert period(t0 + 60_001, 0) == 1000  # 99999 in that period: > 66000, a step down
    assert period(t0 + 120_002, 66_000) == 1000  # exactly 110%: kept
    assert period(t0 + 180_003, 54_000) == 1000  # exactly 90%: kept
    assert period(t0 + 240_004, 53_999) == 1125  # under 90%: a step up
    assert period(t0 + 300_005, 66_001) == 1000  # over 110%: a step down
    for k in range(10):  # down to one step (8 steps from 1000), never below it
        period(t0 + 360_006 + 60_001 * k, 70_000)
    assert p.promo_state(0).threshold_ms == 125
    for k in range(30):  # up to twice the window, never above it
        period(t0 + 1_000_000 + 60_001 * k, 0)
    assert p.promo_state(0).threshold_ms == 2000


def test_the_age_test_refuses_a_record_exactly_as_old_as_the_threshold() -> None:
    """kmigrated_should_migrate_memory, no room to spare: a record whose latency is below the
    threshold may go, one exactly at it may not (precise mode: latency in whole ms)."""
    m = machine(mode="precise", top_pages=64)
    m.fill(0, 10)
    p = m.pghot
    now = (1 << 32) - 300_000 + 5_000
    assert not p.free_space_enough(0)
    assert p.should_migrate(1, 0, now & 16383, now)  # the first call also tunes the threshold
    th = p.promo_state(0).threshold_ms
    assert 0 < th < 16384
    assert p.should_migrate(1, 0, (now - (th - 1)) & 16383, now)
    assert not p.should_migrate(1, 0, (now - th) & 16383, now)


def test_precise_mode_takes_the_highest_node_id() -> None:
    """pghot_nid_valid accepts nid == PGHOT_NID_MAX (1023) when that node is top tier."""
    m = machine(mode="precise", extra_nodes=(Node(1023, "top", "dram", 2 * PPS, PPS),))
    [pfn] = m.place_lower(1)
    assert m.pghot.record_access(pfn, 1023, HF, 7) == 0
    assert m.pghot.records.decode(pfn).field_values()["nid"] == 1023


def test_activate_counts_from_the_jiffy_the_record_became_ready() -> None:
    """A node's ACTIVATE bit is set by the call that made a record READY: kmigrated looking
    at that very jiffy sees it, a jiffy earlier does not."""
    m = machine()
    [pfn] = m.place_lower(1)
    m.pghot.record_access(pfn, 0, HF, 100)
    m.pghot.record_access(pfn, 0, HF, 130)  # the second access in the window: READY
    assert m.pghot.activated(1, 130) and not m.pghot.activated(1, 129)
