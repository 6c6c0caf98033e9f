"""kmigrated: polling cadence, pass order, batches of batch_nr + 1, failures lose the record."""

from __future__ import annotations

from typing import Any

import pytest

from generated.pghot import PAGES_PER_SECTION as PPS
from runtime.jiffies import INITIAL_JIFFIES, jiffies_at
from runtime.pghot import PGHOT_HINTFAULTS, Kmigrated, PassResult, Tunables, start_kmigrated
from runtime.pghot.core import ENOUGH_MIN_PAGES
from runtime.pghot.kmigrated import timer_wheel_fire
from runtime.topology import Node
from tests.pghot.helpers import LOWER_START, Machine, machine

HF = PGHOT_HINTFAULTS


def heat(m: Machine, pfns: list[int], now_ms: int, nid: int = 0) -> None:
    """Two accesses each at ms now_ms of the run: READY with the default threshold 2."""
    for pfn in pfns:
        for t in (now_ms, now_ms + 1):
            assert m.pghot.record_access(pfn, nid, HF, jiffies_at(t)) == 0


def test_start_creates_one_thread_per_lower_node_and_opens_recording() -> None:
    m = machine(start=False, extra_nodes=(Node(2, "lower", "cxl", 18 * PPS, PPS),))
    threads = start_kmigrated(m.pghot, now_ms=0)
    assert sorted(threads) == [1, 2] and m.pghot.started


def test_polls_every_sleep_ms_and_passes_only_when_activated() -> None:
    """A 100 ms sleep is a level-1 timer (8-jiffy granularity): it fires at the first multiple
    of 8 past its expiry, 104 ms later from a multiple of 8; a 50 ms one at level 0 fires one
    jiffy late (INITIAL_JIFFIES is a multiple of 8)."""
    m = machine()
    thread = Kmigrated(m.pghot, 1, start_ms=0)
    assert thread.tick(0) == [] and thread.next_wakeup(0) == 104
    pfns = m.place_lower(3)
    heat(m, pfns, 30)
    assert thread.tick(103) == []
    assert thread.next_wakeup(50) == 104
    [result] = thread.tick(104)  # became ready at 31, seen at the timeout
    assert result.time_ms == 104 and len(result.promoted) == 3
    assert not m.pghot.activate[1] and thread.next_wakeup(104) == 208
    m.pghot.tunables.kmigrated_sleep_ms = 50
    assert thread.tick(208) == [] and thread.next_wakeup(208) == 259  # sleep read per wait
    assert [p.time_ms for p in m.pghot.promotions] == [104] * 3


def test_timer_wheel_fires_after_the_expiry_at_the_levels_granularity() -> None:
    assert INITIAL_JIFFIES % 64 == 32
    j = INITIAL_JIFFIES
    assert [timer_wheel_fire(j, t) - j for t in (1, 50, 62)] == [2, 51, 63]  # level 0
    assert [timer_wheel_fire(j, t) - j for t in (63, 100, 503)] == [64, 104, 504]  # level 1
    assert timer_wheel_fire(j, 1000) - j == 1056  # level 2: next multiple of 64 after it
    assert timer_wheel_fire(j + 32, 1000) - (j + 32) == 1024


def test_activate_during_a_pass_means_an_immediate_next_pass() -> None:
    m = machine()
    thread = Kmigrated(m.pghot, 1, start_ms=0, pass_duration_ms=10)
    first, second = m.place_lower(2)
    heat(m, [first], 30)
    assert [r.time_ms for r in thread.tick(104)] == [104]
    heat(m, [second], 109)  # during the 104..114 pass
    assert [r.time_ms for r in thread.tick(114)] == [114]  # no sleep in between
    assert thread.next_wakeup(114) == 124 and thread.tick(200) == []


def test_a_full_batch_holds_batch_nr_plus_one_and_the_section_end_flushes() -> None:
    m = machine(kmigrated_batch_nr=64)
    pfns = m.place_lower(600)
    heat(m, pfns, 0)
    thread = Kmigrated(m.pghot, 1)
    result = thread.run_pass(500)
    assert result.batches == [65] * 9 + [15]
    assert result.sections == [16] and result.consumed == 600
    assert m.vmstat.get("numa_pages_migrated") == 600
    assert m.vmstat.get_node(0, "pgpromote_success") == 600
    # each batch goes highest PFN first: kmigrated adds folios at the list's head
    assert [p.old_pfn for p in m.pghot.promotions] == \
        [pfn for i in range(0, 600, 65) for pfn in reversed(pfns[i:i + 65])]
    assert all(m.topology.node_of_pfn(p.new_pfn) == 0 for p in m.pghot.promotions)
    assert all(m.pghot.records.word(pfn) == 0 for pfn in pfns)


def test_batches_never_span_sections_and_sections_go_in_ascending_order() -> None:
    m = machine(kmigrated_batch_nr=64)
    high, low = LOWER_START + PPS + 10, LOWER_START + 20  # sections 17 and 16
    for page, pfn in enumerate((high, low)):
        m.memory.putback(pfn, page)
    heat(m, [high, low], 0)
    result = Kmigrated(m.pghot, 1).run_pass(100)
    assert result.sections == [16, 17] and result.batches == [1, 1]
    assert [p.old_pfn for p in result.promoted] == [low, high]


def test_a_pass_walks_only_its_own_nodes_hot_sections() -> None:
    """kmigrated of node 1 never takes node 2's HOT sections: node 2's thread still finds
    them (each pass costs the sections recorded on its node, not the machine's)."""
    m = machine(extra_nodes=(Node(2, "lower", "cxl", LOWER_START + 4 * PPS, PPS),))
    mine, theirs = LOWER_START + 5, LOWER_START + 4 * PPS + 7
    m.memory.putback(mine, 0)
    m.memory.putback(theirs, 1)
    heat(m, [mine, theirs], 0)
    assert [p.old_pfn for p in Kmigrated(m.pghot, 1).run_pass(100).promoted] == [mine]
    other = Kmigrated(m.pghot, 2).run_pass(100)
    assert other.sections == [20] and [p.old_pfn for p in other.promoted] == [theirs]
    assert Kmigrated(m.pghot, 2).run_pass(200).sections == []  # the HOT bit was cleared


def test_precise_mode_flushes_when_the_target_changes() -> None:
    m = machine(mode="precise", extra_nodes=(Node(3, "top", "dram", 2 * PPS, PPS),))
    pfns = m.place_lower(5)
    for pfn, nid in zip(pfns, (0, 0, 3, 0, 3), strict=True):
        heat(m, [pfn], 0, nid=nid)
    result = Kmigrated(m.pghot, 1).run_pass(100)
    assert result.batches == [2, 1, 1, 1]
    assert [p.target_nid for p in result.promoted] == [0, 0, 3, 0, 3]
    assert m.vmstat.get_node(3, "pgpromote_success") == 2


def test_no_free_page_on_the_target_fails_prepare_and_the_record_is_lost() -> None:
    m = machine(top_pages=64)
    m.fill(0, 63)  # one page left: zone_watermark_ok needs free > high (0) + 1
    [pfn] = m.place_lower(1)
    heat(m, [pfn], 0)
    result = Kmigrated(m.pghot, 1).run_pass(100)
    assert (result.consumed, result.prepare_failed, result.promoted) == (1, 1, [])
    assert m.pghot.records.word(pfn) == 0 and m.memory.holds_page(pfn)  # stays put
    assert m.kswapd_wakeups == [0]
    assert m.vmstat.get("numa_pages_migrated") == 0
    heat(m, [pfn], 200)  # must re-heat from zero; with two free pages it now goes
    m.memory.migrate(0, 1)  # free one top-tier page by moving it away
    assert len(Kmigrated(m.pghot, 1).run_pass(300).promoted) == 1


def test_a_batch_that_runs_out_of_target_pages_puts_the_rest_back() -> None:
    m = machine(top_pages=64)
    m.fill(0, 54)  # 10 free; prepare checks each folio before the batch allocates
    pfns = m.place_lower(20)
    heat(m, pfns, 0)
    result = Kmigrated(m.pghot, 1).run_pass(100)
    assert result.batches == [20] and len(result.promoted) == 10
    assert result.migrate_failed == 10
    # migrate_pages meets the list head first: the highest PFNs moved, the lowest went back
    assert [p.old_pfn for p in result.promoted] == pfns[:9:-1]
    assert all(m.memory.holds_page(pfn) for pfn in pfns[:10])
    assert m.vmstat.get("numa_pages_migrated") == 10
    assert all(m.pghot.records.word(pfn) == 0 for pfn in pfns)  # no retry


def test_rejected_candidates_lose_their_history() -> None:
    m = machine(promote_rate_limit_MBps=0)  # rate 0: every candidate is rate limited
    pfns = m.place_lower(3)
    heat(m, pfns, 0)
    result = Kmigrated(m.pghot, 1).run_pass(100)
    assert (result.consumed, result.rejected, result.batches) == (3, 3, [])
    assert all(m.pghot.records.word(pfn) == 0 for pfn in pfns)
    assert m.vmstat.get_node(0, "pgpromote_candidate") == 3


def test_off_lru_ready_page_keeps_ready_but_loses_the_hot_flag() -> None:
    m = machine()
    [pfn] = m.place_lower(1)
    heat(m, [pfn], 0)
    page = m.memory.isolate(pfn)  # isolated (off the LRU) while kmigrated passes
    thread = Kmigrated(m.pghot, 1)
    assert thread.run_pass(100).consumed == 0
    assert m.pghot.records.decode(pfn).ready and not m.pghot.section_hot[16]
    m.memory.putback(pfn, page)
    assert thread.tick(1000) == []  # not revisited: nothing re-armed the section
    [other] = m.place_lower(1)
    heat(m, [other], 1000)  # another READY update in the section re-arms it
    result: PassResult = thread.run_pass(1100)
    assert sorted(p.old_pfn for p in result.promoted) == sorted([pfn, other])


def test_default_mode_target_is_the_tunable() -> None:
    m = machine(extra_nodes=(Node(3, "top", "dram", 2 * PPS, PPS),))
    m.pghot.tunables.target_nid = 3
    pfns = m.place_lower(2)
    heat(m, pfns, 0, nid=0)  # the accessing node is not stored in default mode
    result = Kmigrated(m.pghot, 1).run_pass(100)
    assert {p.target_nid for p in result.promoted} == {3}
    assert Tunables().target_nid == 0


def _bulk_walk(bulk: bool, monkeypatch: pytest.MonkeyPatch,
               top_pages: int = LOWER_START - PPS) -> tuple[Any, ...]:
    """A pass over two sections: READY pages in runs longer than a batch, pages heated once
    (not READY) and isolated READY pages in between. The target has plenty of room, unless
    top_pages says how much."""
    m = machine(top_pages=top_pages, kmigrated_batch_nr=64)
    if not bulk:
        monkeypatch.setattr(Kmigrated, "_take_unlimited", lambda *args: None)
    pfns = m.place_lower(PPS + 400)  # the last 400 in section 17
    hot = pfns[::3] + pfns[1:700:3]
    heat(m, sorted(hot), 0)
    for pfn in pfns[2:700:3]:
        m.pghot.record_access(pfn, 0, HF, 0)  # one access: not READY
    isolated = {pfn: m.memory.isolate(pfn) for pfn in hot[5:400:11] + hot[-3:]}
    result = Kmigrated(m.pghot, 1).run_pass(100)
    for pfn, page in isolated.items():
        m.memory.putback(pfn, page)
    records = [m.pghot.records.word(pfn) for pfn in pfns]
    return (result.batches, result.consumed, result.migrate_failed, list(result.promoted),
            m.vmstat.as_dict(), records, m.memory.placement()[1].tolist())


def test_the_bulk_walk_does_exactly_what_the_per_page_walk_does(
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert machine(top_pages=LOWER_START - PPS).pghot.free_space_enough(0)  # the bulk path's
    bulk = _bulk_walk(True, monkeypatch)
    per_page = _bulk_walk(False, monkeypatch)
    assert bulk == per_page
    batches = bulk[0]
    assert max(batches) == 65 and len(batches) > 100  # full batches, and a flush per section


@pytest.mark.parametrize("headroom", [0, 1, 20, 64, 65, 66, 3 * 65, 3 * 65 + 1, 3 * 65 + 40])
def test_the_bulk_walk_stops_where_the_target_runs_short(
        headroom: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """The target passes free_space_enough for `headroom` more pages: the bulk path takes
    the batches before the flush after which it fails, then the per-page path goes on with
    the age test and the rate limit, exactly as if it had walked every page."""
    top_pages = ENOUGH_MIN_PAGES + headroom  # (no watermarks, no pages on the top tier)
    assert machine(top_pages=top_pages).pghot.unlimited_headroom(0) == headroom
    bulk = _bulk_walk(True, monkeypatch, top_pages)
    assert bulk == _bulk_walk(False, monkeypatch, top_pages)
    assert sum(bulk[0]) > headroom  # the walk went on past the bulk batches


@pytest.mark.parametrize(("numa_balancing", "woken"), [(0, []), (1, []), (2, [0]), (3, [0])])
def test_a_failed_prepare_wakes_kswapd_only_in_tiering_mode(numa_balancing: int,
                                                            woken: list[int]) -> None:
    """migrate_misplaced_folio_prepare wakes kswapd on the target only when
    kernel.numa_balancing has NUMA_BALANCING_MEMORY_TIERING (2)."""
    m = machine(top_pages=64)
    m.pghot.numa_balancing = numa_balancing
    m.fill(0, 63)
    assert not m.pghot.migrate_prepare(1, 0)
    assert m.kswapd_wakeups == woken


def test_a_pass_stops_before_the_next_nodes_first_section() -> None:
    """Node 2 begins right where node 1 ends (section 18): its HOT section is not node 1's."""
    m = machine(extra_nodes=(Node(2, "lower", "cxl", LOWER_START + 2 * PPS, PPS),))
    theirs = LOWER_START + 2 * PPS + 3
    m.memory.putback(theirs, 1)
    heat(m, [theirs], 0)
    assert Kmigrated(m.pghot, 1).run_pass(100).sections == []
    assert Kmigrated(m.pghot, 2).run_pass(100).sections == [18]
