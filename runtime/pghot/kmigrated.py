"""kmigrated: the per lower-tier node thread that promotes READY pages.

Kernel behaviour modelled: docs/kernel-model.md §b.5-b.7.

The kernel loop is
    loop: if wait_event_timeout(ACTIVATE set, sleep_ms): do_work()
Nobody wakes the queue, so the ACTIVATE bit is only looked at when a wait starts (an already
set bit means an immediate pass) and when its timeout expires. `Kmigrated` turns that loop into
discrete events an event-driven simulator can schedule:

    thread = threads[nid]
    when = thread.next_wakeup(now_ms)   # next instant the thread looks at ACTIVATE
    ...deliver every access with time < when (pghot.record_access)...
    thread.tick(when)                   # runs every loop step due at or before `when`

A late tick (now_ms past next_wakeup) still decides each overdue look at ACTIVATE by when the
bit was set, but a pass it runs sees the records as they are now: deliver accesses in time
order and tick no later than next_wakeup for exact results.

A wait starting and a wait timing out look the same from outside: ACTIVATE set -> a pass now;
clear -> sleep. A sleep of kmigrated_sleep_ms lasts longer than asked: the timer wheel fires
a timeout at the first multiple of its level's granularity strictly after the expiry
(`timer_wheel_fire`), so 100 ms sleeps take 101..108 ms (104 in steady state) and 1000 ms ones
1001..1064. Readiness that arrives mid-sleep is therefore seen up to a sleep late. A pass is
instantaneous unless `pass_duration_ms` > 0; the next wait starts when the pass ends, so pages
that became READY during a pass are taken immediately, without sleeping.

Kernel rules get jiffies (runtime/jiffies.py); the thread's schedule and its logs are in ms of
the run.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from generated.pghot import PAGES_PER_SECTION
from runtime.columnlog import ColumnLog
from runtime.jiffies import jiffies_at, run_ms_of
from runtime.memory import NO_PAGE
from runtime.pghot.core import Pghot, Promotion

I64 = npt.NDArray[np.int64]


@dataclass
class PassResult:
    """What one do_work pass did; `batches` are the sizes handed to the migration helper."""

    time_ms: int
    nid: int
    sections: list[int] = field(default_factory=list)
    consumed: int = 0
    on_target: int = 0
    rejected: int = 0
    prepare_failed: int = 0
    batches: list[int] = field(default_factory=list)
    promoted: ColumnLog[Promotion] = field(default_factory=lambda: ColumnLog(Promotion))
    migrate_failed: int = 0


TIMER_LEVEL_BITS = 3
"""LVL_CLK_SHIFT: each timer-wheel level is 8 times coarser than the one below."""
TIMER_LEVEL_SIZE = 64
"""LVL_SIZE: buckets per level."""


def timer_wheel_fire(jiffies: int, timeout: int) -> int:
    """When a timeout armed at jiffies fires (kernel/time/timer.c calc_index): the level is the
    first whose range holds the delta, and the timer fires at the first multiple of the
    level's granularity strictly after the expiry (level 0: the next jiffy)."""
    level = 0
    while timeout >= (TIMER_LEVEL_SIZE - 1) << (level * TIMER_LEVEL_BITS):
        level += 1
    granularity = 1 << (level * TIMER_LEVEL_BITS)
    expiry = jiffies + timeout
    return (expiry + granularity) // granularity * granularity


def promote_batch(pghot: Pghot, pfns: I64, target: int, now_ms: int,
                  result: PassResult) -> None:
    """promote_misplaced_memcg_folios: migrate the isolated folios to target.

    kmigrated adds each folio at the head of its list, so migrate_pages meets them last-added
    first: in descending PFN order, each taking the next free page of the target. When the
    target runs out, the folios migrated so far (the highest PFNs) stay moved and the rest go
    back on their LRU with no retry (their records are already zero; docs/kernel-model.md
    §b.7). numa_pages_migrated and the target's pgpromote_success count the successes.
    """
    promote_batches(pghot, [pfns], target, now_ms, result)


def promote_batches(pghot: Pghot, batches: list[I64], target: int, now_ms: int,
                    result: PassResult) -> None:
    """promote_batch of each batch in turn, in one migration (a failure leaves the target
    full, so every later folio fails too: the moved ones are still a prefix)."""
    result.batches.extend(b.size for b in batches)
    order = batches[0][::-1] if len(batches) == 1 else np.concatenate([b[::-1] for b in batches])
    moved, pages = pghot.memory.migrate_many(order, target)
    result.migrate_failed += order.size - moved.size
    if moved.size:
        # one set of int64 columns, kept (not copied) by both logs
        rows = {"time_ms": np.full(moved.size, now_ms, dtype=np.int64),
                "old_pfn": np.ascontiguousarray(order[:moved.size]), "new_pfn": moved,
                "target_nid": np.full(moved.size, target, dtype=np.int64), "page": pages}
        result.promoted.extend(**rows)
        pghot.promotions.extend(**rows)
        pghot.vmstat.count("numa_pages_migrated", moved.size)
        pghot.vmstat.count_node(target, "pgpromote_success", moved.size)


class _Batch:
    """The folios the per-page path isolated for the next migrate call, in walk order (the
    bulk path migrates its own batches at once, promote_batches)."""

    def __init__(self) -> None:
        self.pfns: list[int] = []

    @property
    def count(self) -> int:
        return len(self.pfns)

    def add(self, pfn: int) -> None:
        self.pfns.append(pfn)

    def take(self) -> I64:
        """The batch's PFNs; the batch is empty afterwards."""
        pfns, self.pfns = np.array(self.pfns, dtype=np.int64), []
        return pfns


@dataclass
class PassTotals:
    """What a thread's passes did, summed (its pass results are not kept: a long run makes
    tens of thousands; pghot.promotions logs every promotion)."""

    passes: int = 0
    consumed: int = 0
    on_target: int = 0
    rejected: int = 0
    prepare_failed: int = 0
    migrate_failed: int = 0

    def add(self, result: PassResult) -> None:
        self.passes += 1
        self.consumed += result.consumed
        self.on_target += result.on_target
        self.rejected += result.rejected
        self.prepare_failed += result.prepare_failed
        self.migrate_failed += result.migrate_failed


class Kmigrated:
    """kmigrated<nid> (pghot.promotions logs every thread's promotions)."""

    def __init__(self, pghot: Pghot, nid: int, start_ms: int = 0,
                 pass_duration_ms: int = 0) -> None:
        if pghot.topology.is_toptier(nid):
            raise ValueError(f"kmigrated runs on lower-tier nodes only, node {nid} is top tier")
        self.pghot = pghot
        self.nid = nid
        self.pass_duration_ms = pass_duration_ms
        self.totals = PassTotals()
        self._check_ms = start_ms
        """Next instant the thread looks at ACTIVATE (a wait starting or timing out)."""

    def next_wakeup(self, now_ms: int) -> int:
        """When to call tick next: the thread's next look at ACTIVATE (now_ms if overdue)."""
        return max(self._check_ms, now_ms)

    def tick(self, now_ms: int) -> list[PassResult]:
        """Run every loop step due at or before now_ms; each pass runs at its own time.

        A wait that starts and a timeout that expires act alike: ACTIVATE set -> pass now and
        start the next wait when the pass ends; clear -> sleep kmigrated_sleep_ms (read at
        that moment, like READ_ONCE in the loop) and look once more.
        """
        done: list[PassResult] = []
        while self._check_ms <= now_ms:
            at = self._check_ms
            if self.pghot.activated(self.nid, jiffies_at(at)):
                done.append(self.run_pass(at))
                self._check_ms = at + self.pass_duration_ms
            else:
                woke = timer_wheel_fire(jiffies_at(at), self.pghot.tunables.kmigrated_sleep_ms)
                self._check_ms = run_ms_of(woke)
        return done

    def run_pass(self, now_ms: int) -> PassResult:
        """kmigrated_do_work: clear ACTIVATE, then walk this node's HOT sections in ascending
        order (test-and-clear each flag)."""
        pghot = self.pghot
        pghot.activate[self.nid] = 0
        result = PassResult(now_ms, self.nid)
        node = pghot.topology.node(self.nid)
        # Nothing records during a pass, so clearing every HOT bit it will meet first is the
        # walk's test-and-clear; the pass then costs what was recorded, not the node's size.
        for section in pghot.section_hot.take(node.pfn_start, node.pfn_end):
            result.sections.append(section)
            self._walk_section(section, now_ms, result)
        self.totals.add(result)
        return result

    def _walk_section(self, section: int, now_ms: int, result: PassResult) -> None:
        """kmigrated_walk_zone over one section: consume READY records, filter, batch.

        A batch is flushed when the target changes, when ++count exceeds kmigrated_batch_nr
        (so a full batch holds batch_nr + 1 folios) and at the end of the section.
        """
        pghot = self.pghot
        node = pghot.topology.node(self.nid)
        start = section * PAGES_PER_SECTION
        first, end = max(start, node.pfn_start), min(start + PAGES_PER_SECTION, node.pfn_end)
        batch = _Batch()
        cur_nid: int | None = None
        # Only READY records can be consumed; other PFNs are skipped without side effects, so
        # the walk visits the READY ones (ascending, as the kernel's pfn++ loop meets them).
        found = pghot.records.ready_in_section(section)
        if found.size and (found[0] < first or found[-1] >= end):  # a node ends mid-section
            found = found[(found >= first) & (found < end)]
        # Which of them hold a folio on an LRU list. The walk only moves pages it has passed,
        # to PFNs on another node, so this holds for the whole walk.
        holds = pghot.memory.pages_at(found) != NO_PAGE
        walk = _Walk(found, holds)
        ready: list[int] = []  # (as Python ints, once the per-page path needs them)
        held: list[bool] = []
        i = 0
        while i < found.size:
            taken = self._take_unlimited(section, walk, i, batch, result, now_ms)
            if taken is not None:
                # Plenty of room on the target: the pages up to a flush are decided alike.
                i, cur_nid = taken, pghot.tunables.target_nid
                continue
            if not ready:
                ready, held = found.tolist(), holds.tolist()
            pfn = ready[i]
            i += 1
            if not held[i - 1]:
                continue  # not a folio on an LRU list: the record is left alone
            rec = pghot.get_record(pfn)
            if rec is None:
                continue
            result.consumed += 1
            if rec.nid == self.nid:
                result.on_target += 1
                continue
            if not pghot.should_migrate(1, rec.nid, rec.time, jiffies_at(now_ms)):
                result.rejected += 1
                continue
            if not pghot.migrate_prepare(1, rec.nid):
                result.prepare_failed += 1
                continue
            if cur_nid is None:
                cur_nid = rec.nid
            if cur_nid != rec.nid:
                if batch.count:
                    promote_batch(pghot, batch.take(), cur_nid, now_ms, result)
                cur_nid = rec.nid
            batch.add(pfn)
            if batch.count > pghot.tunables.kmigrated_batch_nr:
                promote_batch(pghot, batch.take(), cur_nid, now_ms, result)
        if batch.count and cur_nid is not None:
            promote_batch(pghot, batch.take(), cur_nid, now_ms, result)

    def _take_unlimited(self, section: int, walk: _Walk, i: int, batch: _Batch,
                        result: PassResult, now_ms: int) -> int | None:
        """The common case in bulk, with exactly the per-page loop's effects: default mode
        (every record targets target_nid), the target has free_space_enough (no age test, no
        rate limit, candidates counted as _nrl) and passes the prepare watermark. Free pages
        only change when a batch is flushed, by the batch's size (a target with that much
        room never fails a page), so it is known before which flush either test would fail:
        the pages of every batch up to there are taken and flushed at once (promote_batches;
        fewer pages than that means the section's READY pages ran out, and its end flushes a
        partial batch anyway). Only from an empty batch: the per-page path fills one only
        once the headroom is gone, and it never comes back within a pass (nothing frees
        pages on the target). Returns the index after the last page taken, or None to take
        the per-page path."""
        pghot = self.pghot
        target = pghot.tunables.target_nid
        if pghot.tunables.mode != "default" or target == self.nid or batch.count:
            return None
        headroom = pghot.unlimited_headroom(target)
        if headroom <= 0:
            return None
        size = pghot.tunables.kmigrated_batch_nr + 1
        # after j flushes the tests see j x size pages fewer
        wanted = (1 + (headroom - 1) // size) * size
        # the walk stops right after the wanted-th folio from i on, or at the end
        end = min(int(np.searchsorted(walk.held_before, walk.held_before[i] + wanted)),
                  walk.pfns.size)
        took = walk.pfns[i:end][walk.holds[i:end]]
        if took.size:
            pghot.records.consume_many(section, took)
            result.consumed += took.size
            pghot.promo_state(target).threshold_ms = 0
            pghot.vmstat.count_node(target, "pgpromote_candidate_nrl", took.size)
            promote_batches(pghot, [took[j:j + size] for j in range(0, took.size, size)],
                            target, now_ms, result)
        return end


class _Walk:
    """A section walk's READY PFNs, which hold a folio, and how many do before each index."""

    def __init__(self, pfns: I64, holds: npt.NDArray[np.bool_]) -> None:
        self.pfns = pfns
        self.holds = holds
        self.held_before = np.zeros(pfns.size + 1, dtype=np.int64)
        np.cumsum(holds, out=self.held_before[1:])


def start_kmigrated(pghot: Pghot, now_ms: int = 0,
                    pass_duration_ms: int = 0) -> dict[int, Kmigrated]:
    """pghot_init: one thread per lower-tier node with memory, then kmigrated_started."""
    threads = {n.nid: Kmigrated(pghot, n.nid, now_ms, pass_duration_ms)
               for n in pghot.topology.lower_nodes() if n.pfn_count}
    pghot.started = True
    return threads
