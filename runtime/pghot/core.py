"""pghot core (mm/pghot.c, post-v7 as in davidlohr/linux): record accesses, decide promotions.

`record_accesses` is pghot_record_access with every early return in the kernel's order
(docs/kernel-model.md §b.1), over the arrays of `PghotArrays`, marked @jitable: the reference
engine calls it for one access at a time through `Pghot.record_access`, the fast engine
compiles the very same function for a whole batch. `should_migrate` and its
helpers are kmigrated_should_migrate_memory (§c), with the kernel's integer widths: the ms
clock is jiffies_to_msecs (u32), the rate limit's MB -> pages shift is 32-bit, the threshold
arithmetic u32. The kmigrated threads (kmigrated.py) consume what this module records.

Model simplifications (see also the package docstring):
- every page is a base page (one PFN per folio), so the folio head PFN is the PFN itself and
  nr_pages is 1 unless a caller says otherwise;
- one zone per node; watermarks come from `Watermarks` (watermarks.py);
- a PFN "online" = inside some node's range; "folio on LRU" = Memory holds a page there;
- no memcg (batches are keyed by target nid only); the per-CPU lag of node counters
  (vmstat's stat_threshold) is not modelled: the rate limiter reads exact counts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from generated._base import jitable
from generated.ibs_mprof import PAGE_SHIFT
from generated.pghot import PAGES_PER_SECTION, PGHOT_NID_MAX
from runtime.columnlog import ColumnLog
from runtime.counts import NamedCounts
from runtime.jiffies import jiffies_to_msecs
from runtime.memory import Memory, PageTables, page_at_pfn
from runtime.nodemap import NodeMap, NodeTables, is_toptier, node_exists, node_of_pfn
from runtime.pghot.records import (
    NUMA_NO_NODE,
    Record,
    RecordMap,
    record_latency,
    update_word,
    word_ready,
)
from runtime.pghot.tunables import PGHOT_HINTFAULTS, PGHOT_HWHINTS, Tunables
from runtime.pghot.watermarks import NUMA_BALANCING_MEMORY_TIERING, Watermarks
from runtime.sections import flat_index_of
from runtime.topology import Topology
from runtime.vmstat import EVENT_INDEX, Vmstat

__all__ = [
    "EINVAL", "NUMA_NO_NODE", "PGHOT_HINTFAULTS", "PGHOT_HWHINTS", "Pghot", "PghotArrays",
    "PITFALLS", "PromoState", "Promotion", "mb_to_pages", "record_accesses",
]

EINVAL = 22
RECORD_OUTCOMES = ("recorded", "not_started", "invalid_nid", "invalid_source", "source_disabled",
                   "pfn_offline", "same_node", "toptier_page", "not_lru", "no_hot_map")
"""Where a pghot_record_access call can end: recorded, or each early return in check order."""
(RECORDED, NOT_STARTED, INVALID_NID, INVALID_SOURCE, SOURCE_DISABLED, PFN_OFFLINE, SAME_NODE,
 TOPTIER_PAGE, NOT_LRU, NO_HOT_MAP) = range(len(RECORD_OUTCOMES))
EINVAL_OUTCOMES = frozenset({"invalid_nid", "invalid_source"})
VM_RECORDED_HINTFAULTS = EVENT_INDEX["pghot_recorded_hintfaults"]
VM_RECORDED_HWHINTS = EVENT_INDEX["pghot_recorded_hwhints"]
VM_RECORDED_ACCESSES = EVENT_INDEX["pghot_recorded_accesses"]
MSEC_PER_SEC = 1000
RATE_LIMIT_PERIOD_MS = MSEC_PER_SEC
THRESHOLD_PERIOD_MS = 60000
"""KMIGRATED_PROMOTION_THRESHOLD_WINDOW: the threshold is re-tuned at most once a minute."""
ADJUST_STEPS = 16
"""KMIGRATED_MIGRATION_ADJUST_STEPS: one step is 2 * window / 16."""
ENOUGH_MIN_PAGES = (1 << 30) >> PAGE_SHIFT
"""pgdat_free_space_enough needs at least 1 GiB free above the promo watermark."""
ENOUGH_PRESENT_SHIFT = 4
"""... or 1/16 of the node's present pages if that is more."""
U32 = (1 << 32) - 1


PITFALLS = {
    "rate_limit_wrapped": "pghot.promote_rate_limit_MBps is 16777216 or more: the kernel turns "
                          "MB into pages with a 32-bit shift (MB_TO_PAGES), so the limit wraps "
                          "to {rate_pages} pages/s (0 refuses every promotion once free space "
                          "runs short)",
    "threshold_wrapped": "the promotion age threshold fell below its adjustment step and "
                         "wrapped in u32 (kmigrated_promotion_adjust_threshold after the window "
                         "was raised at run time): the age test no longer refuses anything",
}
"""Kernel arithmetic a setting or a run ran into that a user should hear about: name -> text
(the report's `pitfalls`, one line each in the summary)."""


def mb_to_pages(mbytes: int) -> int:
    """MB_TO_PAGES on the unsigned int sysctl: a left shift by 20 - PAGE_SHIFT done in 32
    bits, so 16777216 MB/s and above wrap (16777216 gives 0 pages: nothing passes)."""
    return (mbytes << (20 - PAGE_SHIFT)) & U32


class Promotion(NamedTuple):
    """One successful promotion, for tests and metrics (time in ms of the run)."""

    time_ms: int
    old_pfn: int
    new_pfn: int
    target_nid: int
    page: int


@dataclass
class PromoState:
    """Per target (top-tier) node pgdat fields nbp_*: zero at boot, like the kernel's (so, with
    jiffies starting at INITIAL_JIFFIES, the first threshold adjustment is immediate)."""

    rl_start_ms: int = 0
    rl_nr_cand: int = 0
    th_start_ms: int = 0
    th_nr_cand: int = 0
    threshold_ms: int = 0
    """0 means "not tuned yet": use the frequency window."""


class PghotArrays(NamedTuple):
    """Everything pghot_record_access reads or changes, as plain values and arrays: what the
    scalar rule takes, interpreted or compiled. Built fresh by `Pghot.arrays()` (tunables and
    the placement's arrays may change between uses); the arrays are Pghot's own."""

    precise: int
    sticky: int
    enabled_sources: int
    window_ms: int
    threshold: int
    started: int
    nodes: NodeTables
    pages: PageTables
    records: npt.NDArray[Any]
    record_shift: npt.NDArray[np.int64]
    section_hot: npt.NDArray[np.uint8]
    """Per hot-map slot (the record map's section order)."""
    activate: npt.NDArray[np.uint8]
    """PGDAT_KMIGRATED_ACTIVATE per nid."""
    activate_since: npt.NDArray[np.int64]
    """jiffies when each set ACTIVATE bit was set."""
    outcomes: npt.NDArray[np.int64]
    vm: npt.NDArray[np.int64]


@jitable
def record_accesses(a: PghotArrays, pfns: npt.NDArray[np.int64], nids: npt.NDArray[np.int64],
                    src: int, jiffies: npt.NDArray[np.int64],
                    ready: npt.NDArray[np.uint8]) -> int:
    """pghot_record_access(pfns[i], nids[i], src, jiffies[i]) for each call i in order; sets
    ready[i] when the call left the record READY and returns the last call's outcome.

    nid is the accessing node (the intended promotion target). Each outcome is counted in
    a.outcomes; the kernel returns -EINVAL for INVALID_NID and INVALID_SOURCE, else 0. The
    rule is written as a loop over calls so that the compiled loop receives the state once
    (numba pays for every array of `a` at each call of a function it does not inline); the
    reference calls it with one call at a time.
    """
    outcome = RECORDED
    for i in range(pfns.size):
        pfn, nid, now = pfns[i], nids[i], jiffies[i]
        outcome = RECORDED
        ready[i] = 0
        if not a.started:
            outcome = NOT_STARTED
        elif a.precise and nid != NUMA_NO_NODE and not (
                0 <= nid <= PGHOT_NID_MAX and node_exists(nid, a.nodes)
                and is_toptier(nid, a.nodes)):
            outcome = INVALID_NID  # pghot_nid_valid: precise mode wants a top-tier node or none
        elif src != PGHOT_HINTFAULTS and src != PGHOT_HWHINTS:
            outcome = INVALID_SOURCE
        elif not (a.enabled_sources >> src) & 1:
            outcome = SOURCE_DISABLED
        else:
            a.vm[VM_RECORDED_HINTFAULTS if src == PGHOT_HINTFAULTS else VM_RECORDED_HWHINTS] += 1
            src_nid = node_of_pfn(pfn, a.nodes)
            if src_nid < 0:
                outcome = PFN_OFFLINE  # pfn_to_online_page is NULL
            elif src_nid == nid:
                outcome = SAME_NODE  # access from the page's own node (a lower-tier CPU's too)
            elif is_toptier(src_nid, a.nodes):
                outcome = TOPTIER_PAGE  # only lower-tier memory is tracked
            elif page_at_pfn(pfn, a.pages) < 0:
                outcome = NOT_LRU  # no folio, or not on an LRU list
            else:
                index = flat_index_of(pfn, a.record_shift)
                if index < 0:
                    outcome = NO_HOT_MAP
                else:
                    a.vm[VM_RECORDED_ACCESSES] += 1
                    word = update_word(a.precise, int(a.records[index]), nid, now,
                                       a.window_ms, a.threshold, a.sticky)
                    a.records[index] = word
                    if word_ready(a.precise, word):
                        ready[i] = 1
                        a.section_hot[index // PAGES_PER_SECTION] = 1
                        if not a.activate[src_nid]:
                            a.activate[src_nid] = 1
                            a.activate_since[src_nid] = now
        a.outcomes[outcome] += 1
    return outcome


class SectionHot:
    """The section HOT bits, one per hot map: read by section number, set by the record
    update (record_accesses), taken per node by kmigrated (take)."""

    def __init__(self, records: RecordMap) -> None:
        self.records = records
        self.array = np.zeros(len(records.sections()), dtype=np.uint8)

    def __getitem__(self, section: int) -> bool:
        return self.records.has_section(section) and \
            bool(self.array[self.records.slot[section]])

    def take(self, first_pfn: int, end_pfn: int) -> list[int]:
        """test_and_clear_bit over every section whose first PFN is in [first_pfn, end_pfn),
        in ascending order: the sections that were HOT (work in proportion to those)."""
        order = self.records.sections()
        hot = np.flatnonzero(self.array)
        taken = [order[i] for i in hot.tolist()
                 if first_pfn <= order[i] * PAGES_PER_SECTION < end_pfn]
        for section in taken:
            self.array[self.records.slot[section]] = 0
        return sorted(taken)


class Pghot:
    """Hot-page tracking state of one machine: records, section HOT flags, node ACTIVATE flags
    and per-target-node rate-limit state. `started` is kmigrated_started (set by
    kmigrated.start_kmigrated once the threads exist)."""

    def __init__(self, topology: Topology, memory: Memory, vmstat: Vmstat,
                 tunables: Tunables | None = None, *, watermarks: Watermarks | None = None,
                 wakeup_kswapd: Callable[[int], None] | None = None,
                 numa_balancing: int = NUMA_BALANCING_MEMORY_TIERING) -> None:
        self.topology = topology
        self.memory = memory
        self.vmstat = vmstat
        self.tunables = tunables if tunables is not None else Tunables()
        self.tunables.attach(topology)
        self.watermarks = watermarks if watermarks is not None else Watermarks()
        self.wakeup_kswapd = wakeup_kswapd
        """Called with the target nid when promotion finds it too full, in tiering mode, so
        demotion can make room; e.g. demotion.Demoter.wakeup."""
        self.numa_balancing = numa_balancing
        """kernel.numa_balancing: only its MEMORY_TIERING bit matters here (kswapd wake-up)."""
        self.nodemap = NodeMap(topology)
        lower = [n.nid for n in topology.lower_nodes()]
        self.records = RecordMap(self.tunables.mode,
                                 (s for nid in lower for s in topology.sections(nid)))
        self.section_hot = SectionHot(self.records)
        kinds = self.nodemap.tables.node_kind.size
        self.activate = np.zeros(kinds, dtype=np.uint8)
        """PGDAT_KMIGRATED_ACTIVATE per node."""
        self.activate_since = np.zeros(kinds, dtype=np.int64)
        """jiffies when each set ACTIVATE bit was set, so a late kmigrated tick still sees the
        past."""
        self.promo: dict[int, PromoState] = {
            n.nid: PromoState() for n in topology.nodes if n.toptier}
        self.promotions: ColumnLog[Promotion] = ColumnLog(Promotion)
        """Every promotion of every kmigrated thread, in order."""
        self.started = False
        self.last_ready = False
        """Whether the last record_access left the record migrate-ready (for metrics)."""
        self.outcomes = NamedCounts(RECORD_OUTCOMES)
        """How many record_access calls ended at each RECORD_OUTCOMES bucket."""
        self.pitfalls: set[str] = set()
        """Runtime PITFALLS the run ran into (settings ones: pitfall_texts)."""

    # -- recording (§b.1) -------------------------------------------------------------------

    def arrays(self) -> PghotArrays:
        """The state record_accesses works on (tunables read now, as the kernel reads its
        sysctls at each call)."""
        t = self.tunables
        return PghotArrays(
            precise=self.records.precise, sticky=int(t.sticky_ready),
            enabled_sources=t.enabled_sources, window_ms=t.window_ms,
            threshold=t.freq_threshold, started=int(self.started),
            nodes=self.nodemap.tables, pages=self.memory.page_tables(),
            records=self.records.flat, record_shift=self.records.shift,
            section_hot=self.section_hot.array, activate=self.activate,
            activate_since=self.activate_since, outcomes=self.outcomes.array,
            vm=self.vmstat.events.array)

    def record_access(self, pfn: int, nid: int, src: int, jiffies: int) -> int:
        """pghot_record_access: 0 on success or silent ignore, -EINVAL on bad arguments."""
        ready = np.zeros(1, dtype=np.uint8)
        outcome = record_accesses(self.arrays(), np.array([pfn], dtype=np.int64),
                                  np.array([nid], dtype=np.int64), src,
                                  np.array([jiffies], dtype=np.int64), ready)
        self.last_ready = bool(ready[0])
        return -EINVAL if RECORD_OUTCOMES[outcome] in EINVAL_OUTCOMES else 0

    def activated(self, nid: int, at_jiffies: int) -> bool:
        """Was node nid's ACTIVATE bit set at at_jiffies (given accesses arrive in order)?"""
        return bool(self.activate[nid]) and int(self.activate_since[nid]) <= at_jiffies

    # -- consumption helpers used by kmigrated (§b.6) ----------------------------------------

    def get_record(self, pfn: int) -> Record | None:
        """pghot_get_hotness: consume pfn's record (None if no map or READY is clear)."""
        if not self.records.has_section(pfn // PAGES_PER_SECTION):
            return None
        return self.records.get_record(pfn, self.tunables.target_nid)

    def pitfall_texts(self) -> dict[str, str]:
        """Every PITFALLS entry that applies: the current settings' and the run's."""
        found = set(self.pitfalls)
        rate_pages = mb_to_pages(self.tunables.promote_rate_limit_MBps)
        if rate_pages != self.tunables.promote_rate_limit_MBps << (20 - PAGE_SHIFT):
            found.add("rate_limit_wrapped")
        return {name: PITFALLS[name].format(rate_pages=rate_pages)
                for name in PITFALLS if name in found}

    def latency_ms(self, rec_time: int, jiffies: int) -> int:
        """pghot_access_latency of a consumed record's time field."""
        return int(record_latency(self.records.precise, rec_time, jiffies))

    def prepare_ok(self, nr_pages: int, target: int) -> bool:
        """migrate_balanced_pgdat alone, without waking kswapd."""
        return self.memory.free_pages(target) > self._prepare_floor(nr_pages, target)

    def _prepare_floor(self, nr_pages: int, target: int) -> int:
        """prepare_ok needs more free pages than this: the high watermark + nr_pages."""
        return self.watermarks.high_pages(self.memory.present_pages(target)) + nr_pages

    def migrate_prepare(self, nr_pages: int, target: int) -> bool:
        """The watermark part of migrate_misplaced_folio_prepare (migrate_balanced_pgdat):
        the target needs free > high watermark + nr_pages. On failure kswapd is woken on the
        target, in tiering mode only (kernel.numa_balancing & 2). Not modelled: dirty file
        folios and isolation failures."""
        if self.prepare_ok(nr_pages, target):
            return True
        if self.wakeup_kswapd is not None and self.numa_balancing & NUMA_BALANCING_MEMORY_TIERING:
            self.wakeup_kswapd(target)
        return False

    # -- promotion policy (§c) -------------------------------------------------------------

    def free_space_enough(self, nid: int) -> bool:
        """pgdat_free_space_enough: free > promo watermark + max(1 GiB, present/16)."""
        return self.memory.free_pages(nid) > self._enough_floor(nid)

    def _enough_floor(self, nid: int) -> int:
        present = self.memory.present_pages(nid)
        return self.watermarks.promo_pages(present) + max(ENOUGH_MIN_PAGES,
                                                          present >> ENOUGH_PRESENT_SHIFT)

    def unlimited_headroom(self, target: int) -> int:
        """How many pages target can still give out with free_space_enough and prepare_ok(1)
        both holding (<= 0: one of them fails now)."""
        return self.memory.free_pages(target) - max(self._enough_floor(target),
                                                    self._prepare_floor(1, target))

    def promo_state(self, nid: int) -> PromoState:
        """The target node's nbp_* promotion state."""
        return self.promo.setdefault(nid, PromoState())

    def rate_limited(self, nid: int, rate_pages: int, nr_pages: int, jiffies: int) -> bool:
        """kmigrated_promotion_rate_limit: candidates are counted even when refused; a new
        1 s window starts when more than 1000 ms passed on the u32 ms clock, its baseline
        including this call."""
        state = self.promo_state(nid)
        self.vmstat.count_node(nid, "pgpromote_candidate", nr_pages)
        nr_cand = self.vmstat.get_node(nid, "pgpromote_candidate")
        now32 = jiffies_to_msecs(jiffies)
        if (now32 - state.rl_start_ms) & U32 > RATE_LIMIT_PERIOD_MS:
            state.rl_start_ms = now32
            state.rl_nr_cand = nr_cand
        return nr_cand - state.rl_nr_cand >= rate_pages

    def adjust_threshold(self, nid: int, rate_pages: int, ref_th_ms: int, jiffies: int) -> None:
        """kmigrated_promotion_adjust_threshold: at most once per 60 s on the u32 ms clock,
        move the latency threshold by 2 * window / 16 toward fewer candidates (> 110% of
        rate * 60) or more (< 90%), in u32: a threshold below the step (the window was
        raised at run time) wraps to ~2^32, which switches the age test off."""
        state = self.promo_state(nid)
        now32 = jiffies_to_msecs(jiffies)
        if (now32 - state.th_start_ms) & U32 <= THRESHOLD_PERIOD_MS:
            return
        state.th_start_ms = now32
        ref_cand = rate_pages * THRESHOLD_PERIOD_MS // MSEC_PER_SEC
        nr_cand = self.vmstat.get_node(nid, "pgpromote_candidate")
        diff_cand = nr_cand - state.th_nr_cand
        unit_th = (ref_th_ms * 2 // ADJUST_STEPS) & U32
        th = state.threshold_ms or ref_th_ms
        if diff_cand > ref_cand * 11 // 10:
            lowered = (th - unit_th) & U32
            if th < unit_th:
                self.pitfalls.add("threshold_wrapped")
            th = max(lowered, unit_th)
        elif diff_cand < ref_cand * 9 // 10:
            th = min((th + unit_th) & U32, (ref_th_ms * 2) & U32)
        state.th_nr_cand = nr_cand
        state.threshold_ms = th

    def should_migrate(self, nr_pages: int, target: int, rec_time: int, jiffies: int) -> bool:
        """kmigrated_should_migrate_memory for a consumed record's stored time.

        Plenty of room on the target short-circuits everything (threshold reset, counted as
        pgpromote_candidate_nrl). Otherwise the record's age must be below the (auto-tuned)
        threshold and the target's 1 s promotion budget must not be spent.
        """
        state = self.promo_state(target)
        if self.free_space_enough(target):
            state.threshold_ms = 0
            self.vmstat.count_node(target, "pgpromote_candidate_nrl", nr_pages)
            return True
        ref_th = self.tunables.window_ms
        rate = mb_to_pages(self.tunables.promote_rate_limit_MBps)
        self.adjust_threshold(target, rate, ref_th, jiffies)
        th = state.threshold_ms or ref_th
        if self.latency_ms(rec_time, jiffies) >= th:
            return False
        return not self.rate_limited(target, rate, nr_pages, jiffies)
