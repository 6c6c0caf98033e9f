"""The hint-fault source end to end: interpreted one fault at a time (the reference engine's
way) and compiled over runs (the fast engine's) give identical runs; the counters add up."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from generated.pghot import PAGES_PER_SECTION as PPS
from runtime.numab import HintFaultSource, NumabTunables, SyntheticArrivals
from runtime.numab.pacing import PERIOD, PLACEMENTS
from runtime.numab.source import HintCalls
from runtime.pageruns import PageRuns
from runtime.pghot import PGHOT_HINTFAULTS, Pghot, Tunables
from runtime.pghot.batch import record_batch
from runtime.vmstat import Vmstat
from runtime.workloads import Phase, Workload
from tests.numab.helpers import box

PAGES = 2 * PPS  # 256 MiB: one 256 MB scan window


def gups(hot_start: int, hot: int = PAGES // 16) -> np.ndarray:
    probs = np.full(PAGES, 0.1 / PAGES)
    probs[hot_start:hot_start + hot] += 0.9 / hot
    return probs


def build(setup: str, phases: int = 1, dram_pages: int = 2 * PPS, rate: int = 65536,
          **tunables: Any) -> tuple[HintFaultSource, Pghot | None]:
    b = box(PAGES, dram_pages=dram_pages)
    starts = [0.0, 3000.0][:phases]
    wl = Workload("gups", PAGES, [Phase(s, PageRuns.from_array(gups(PAGES // 4 + i * PAGES // 2)),
                                        PageRuns.constant(PAGES, 1.0), f"p{i}")
                                  for i, s in enumerate(starts)])
    arrivals = SyntheticArrivals(wl, seed=5, cpus=2, mem_ops_per_ms_per_cpu=20.0)
    pghot = None
    if setup == "pghot":
        pghot = Pghot(b.topology, b.memory, Vmstat(), Tunables(enabled_sources=1))
        pghot.started = True
    wakeups: list[int] = []
    source = HintFaultSource(NumabTunables(promote_rate_limit_MBps=rate, **tunables), setup,
                             b.topology, b.memory, PAGES, arrivals, pghot=pghot,
                             wakeup_kswapd=wakeups.append)
    source.wakeups = wakeups  # type: ignore[attr-defined]
    return source, pghot


def run(source: HintFaultSource, compiled: bool, until: float = 8000.0,
        step: float = 100.0, move_every: int = 0) -> None:
    t = 0.0
    n = 0
    while t < until:
        t += step
        n += 1
        source.run_until(t, compiled)
        if move_every and n % move_every == 0:  # someone else migrates a few marked pages
            marked = np.flatnonzero(source.words >> 31)[:50]
            olds = source.memory.pfns_of(marked)
            source.memory.migrate_many(olds, 0)
            source.pages_moved(marked, olds)


def state(source: HintFaultSource, pghot: Pghot | None) -> dict[str, Any]:
    out = {"vmstat": source.vmstat(), "outcomes": source.fault_outcomes(),
           "task": source.task.tolist(), "faults": source.faults.tolist(),
           "nbp": source.nbp.tolist(), "words": source.words.tolist(),
           "pending": source.queue.pending_pages().tolist(),
           "promotions": list(source.promotions),
           "placement": source.memory.placement()[1].tolist(),
           "wakeups": source.wakeups}  # type: ignore[attr-defined]
    if pghot is not None:
        out["records"] = pghot.records.flat.tolist()
        out["pghot_vm"] = pghot.vmstat.as_dict()
    return out


@pytest.mark.parametrize("setup,phases,moves", [("numab2", 1, 0), ("numab2", 2, 7),
                                                 ("pghot", 2, 5)])
def test_interpreted_equals_compiled(setup: str, phases: int, moves: int) -> None:
    a, pa = build(setup, phases)
    b, pb = build(setup, phases)
    run(a, compiled=False, move_every=moves)
    run(b, compiled=True, move_every=moves)
    sa, sb = state(a, pa), state(b, pb)
    assert sa == sb
    assert sa["vmstat"]["numa_hint_faults"] > 1000  # the run did something


def test_numab2_counters_add_up() -> None:
    source, _ = build("numab2", phases=2)
    run(source, compiled=True)
    vm, out = source.vmstat(), source.fault_outcomes()
    assert vm["numa_hint_faults"] == sum(out.values()) - out["no_folio"]
    assert vm["numa_pages_migrated"] == vm["pgpromote_success"] == out["migrated"] == \
        len(source.promotions) > 0
    assert vm["pgpromote_candidate"] == out["migrated"] + out["rate_limited"]
    assert vm["numa_hint_faults_local"] == 0  # CXL has no CPUs
    assert vm["numa_pte_updates"] >= vm["numa_hint_faults"]
    moved = np.array([p.page for p in source.promotions])
    assert (source.memory.pfns_of(moved) < 2 * PPS).all()  # all on DRAM now
    assert not (source.words[moved] >> 31).any()  # and no longer hinted


def test_placements_double_the_scan_period_in_tiering_mode() -> None:
    source, _ = build("pghot", phases=1)
    run(source, compiled=True, until=20000.0)
    assert source.task[PLACEMENTS] >= 2
    assert source.scan_min == 1000 and source.scan_period_ms() > source.scan_min
    assert source.task[PERIOD] == min(source.scan_max,
                                      source.scan_min << int(source.task[PLACEMENTS]))


def test_rate_limit_refuses_promotions() -> None:
    source, _ = build("numab2", rate=1)  # 256 pages a second
    run(source, compiled=True)
    out = source.fault_outcomes()
    assert out["rate_limited"] > 0
    assert out["migrated"] <= 256 * 9  # 8 s: at most nine one-second windows


def test_room_to_spare_skips_the_threshold() -> None:
    """A DRAM node with more than 1 GiB free above the promo watermark promotes every
    lower-tier fault at once (pgpromote_candidate_nrl), however old its scan stamp."""
    source, _ = build("numab2", dram_pages=16 * PPS)
    run(source, compiled=True)
    vm, out = source.vmstat(), source.fault_outcomes()
    assert out["too_old"] == 0 and vm["pgpromote_candidate"] == 0
    assert vm["pgpromote_candidate_nrl"] == out["migrated"] == vm["numa_hint_faults"]


def test_full_target_fails_prepare_and_wakes_kswapd() -> None:
    source, _ = build("numab2", dram_pages=PPS // 64)  # 512 pages
    run(source, compiled=True, until=4000.0)
    out = source.fault_outcomes()
    assert out["prepare_failed"] > 0
    assert source.wakeups and set(source.wakeups) == {0}  # kswapd woken on the target
    assert source.memory.free_pages(0) == int(source.high[0]) + 1  # just above high + 1


def test_phase_change_redraws_pending_faults() -> None:
    """Pages that the new phase never touches lose their pending fault at the change; the
    others fault from the change on with the new rates."""
    b = box(PAGES)
    first = np.zeros(PAGES)
    first[:PAGES // 2] = 2.0 / PAGES
    wl = Workload("two", PAGES, [
        Phase(0.0, PageRuns.from_array(first), PageRuns.constant(PAGES, 1.0), "a"),
        Phase(3000.0, PageRuns.from_array(first[::-1].copy()), PageRuns.constant(PAGES, 1.0), "b")])
    arrivals = SyntheticArrivals(wl, seed=5, cpus=2, mem_ops_per_ms_per_cpu=0.01)
    source = HintFaultSource(NumabTunables(), "numab2", b.topology, b.memory, PAGES, arrivals)
    source.run_until(2999.0)
    before = source.queue.pending_pages()
    assert before.size and (before < PAGES // 2).all()
    source.run_until(3000.5)
    assert source.queue.pending_pages().size == 0  # none of them is accessed any more


def test_moved_pages_lose_their_hint_and_pending_fault() -> None:
    """A page migrated by someone else (kmigrated, kswapd) comes back without the hint: its
    pending fault is gone, and nothing faults on the top tier in tiering mode."""
    source, _ = build("numab2")
    run(source, compiled=True, until=1500.0)
    pending = source.queue.pending_pages()[:500]
    olds = source.memory.pfns_of(pending)
    source.memory.migrate_many(olds, 0)
    source.pages_moved(pending, olds)
    assert not source.queue.pending[pending].any()
    assert not (source.words[pending] >> 31).any()
    assert (source.words[pending] & (2**21 - 1) == 2**21 - 1).all()  # changed tier: reset
    run(source, compiled=True, until=8000.0)
    assert source.fault_outcomes()["cpupid_path"] == 0


def test_pghot_setup_records_hint_faults() -> None:
    source, pghot = build("pghot")
    run(source, compiled=True)
    assert pghot is not None
    out = source.fault_outcomes()
    assert pghot.vmstat.get("pghot_recorded_hintfaults") == out["to_pghot"] > 0
    assert source.vmstat()["numa_pages_migrated"] == 0 and not len(source.promotions)


def test_pghot_calls_can_be_delivered_to_the_engine() -> None:
    """Delivered calls, applied later in order, leave pghot exactly as direct recording."""
    direct, pd = build("pghot")
    run(direct, compiled=True)
    late, pl = build("pghot")
    calls: list[HintCalls] = []
    late.deliver = calls.append
    run(late, compiled=True)
    assert pd is not None and pl is not None and calls
    assert pl.vmstat.get("pghot_recorded_hintfaults") == 0
    for call in calls:
        assert (np.diff(call.time_ms) >= 0).all() and (np.diff(call.jiffies) >= 0).all()
        assert (late.memory.pfns_of(call.page) == call.pfn).all()
        record_batch(pl, call.pfn, call.nid, call.jiffies, PGHOT_HINTFAULTS)
    assert pl.records.flat.tolist() == pd.records.flat.tolist()
    assert pl.vmstat.as_dict() == pd.vmstat.as_dict()


def test_disabled_does_nothing() -> None:
    source, _ = build("numab2", mode=0)
    run(source, compiled=False, until=5000.0)
    assert not any(source.vmstat().values())
