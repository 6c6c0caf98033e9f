"""pghot core (mm/pghot.c, v7 + the post-v7 rate limiter): record accesses, decide promotions.

`Pghot.record_access` is pghot_record_access with every early return of pghot.md §1.2 in the
kernel's order; `should_migrate` and its helpers are §4 (moved from NUMA balancing mode 2).
The kmigrated threads (kmigrated.py) consume what this module records.

Model simplifications (see also the package docstring):
- every page is a base page (one PFN per folio), so the folio head PFN is the PFN itself and
  nr_pages is 1 unless a caller says otherwise;
- one zone per node; watermarks come from `Watermarks` (watermarks.py);
- a PFN "online" = inside some node's range; "folio on LRU" = Memory holds a page there;
- no memcg (batches are keyed by target nid only); HZ = 1000 so jiffies == ms, and the clock
  starts at 0 (the kernel's starts 5 minutes before wrap, INITIAL_JIFFIES).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from generated.ibs_mprof import PAGE_SHIFT
from generated.pghot import PAGES_PER_SECTION, PGHOT_NID_MAX
from runtime.memory import Memory
from runtime.pghot.records import NUMA_NO_NODE, Record, RecordMap, latency_ms
from runtime.pghot.tunables import PGHOT_HINTFAULTS, PGHOT_HWHINTS, Tunables
from runtime.pghot.watermarks import Watermarks
from runtime.rowlog import RowLog
from runtime.topology import Topology
from runtime.vmstat import Vmstat

__all__ = [
    "EINVAL", "NUMA_NO_NODE", "PGHOT_HINTFAULTS", "PGHOT_HWHINTS", "Pghot", "PromoState",
    "Promotion", "mb_to_pages",
]

EINVAL = 22
EINVAL_OUTCOMES = frozenset({"invalid_nid", "invalid_source"})
RECORD_OUTCOMES = ("recorded", "not_started", "invalid_nid", "invalid_source", "source_disabled",
                   "same_node", "pfn_offline", "toptier_page", "not_lru", "no_hot_map")
"""Where a pghot_record_access call can end, in the order of its checks."""
SOURCE_COUNTERS = {
    PGHOT_HINTFAULTS: "pghot_recorded_hintfaults",
    PGHOT_HWHINTS: "pghot_recorded_hwhints",
}
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
U32_MOD = 1 << 32
"""now_ms and the nbp_* start times are u32 (jiffies_to_msecs); differences wrap."""


def mb_to_pages(mbytes: int) -> int:
    """MB_TO_PAGES: megabytes to base pages (x256 for 4 KiB pages)."""
    return mbytes << (20 - PAGE_SHIFT)


class Promotion(NamedTuple):
    """One successful promotion, for tests and metrics."""

    time_ms: int
    old_pfn: int
    new_pfn: int
    target_nid: int
    page: int


@dataclass
class PromoState:
    """Per target (top-tier) node pgdat fields nbp_*; all start at 0 like the kernel's."""

    rl_start_ms: int = 0
    rl_nr_cand: int = 0
    th_start_ms: int = 0
    th_nr_cand: int = 0
    threshold_ms: int = 0
    """0 means "not tuned yet": use the frequency window."""


class Pghot:
    """Hot-page tracking state of one machine: records, section HOT flags, node ACTIVATE flags
    and per-target-node rate-limit state. `started` is kmigrated_started (set by
    kmigrated.start_kmigrated once the threads exist)."""

    def __init__(self, topology: Topology, memory: Memory, vmstat: Vmstat,
                 tunables: Tunables | None = None, *, watermarks: Watermarks | None = None,
                 wakeup_kswapd: Callable[[int], None] | None = None) -> None:
        self.topology = topology
        self.memory = memory
        self.vmstat = vmstat
        self.tunables = tunables if tunables is not None else Tunables()
        self.tunables.check_target_nid(topology)
        self.watermarks = watermarks if watermarks is not None else Watermarks()
        self.wakeup_kswapd = wakeup_kswapd
        """Called with the target nid when promotion finds it too full (tiering mode wakes
        kswapd there so demotion can make room); e.g. demotion.Demoter.wakeup."""
        lower = [n.nid for n in topology.lower_nodes()]
        self.records = RecordMap(self.tunables.mode,
                                 (s for nid in lower for s in topology.sections(nid)))
        self.section_hot: dict[int, bool] = dict.fromkeys(self.records.sections(), False)
        self.activate: dict[int, bool] = dict.fromkeys(lower, False)
        """PGDAT_KMIGRATED_ACTIVATE per lower-tier node."""
        self.activate_since_ms: dict[int, int] = {}
        """When each set ACTIVATE bit was set, so a late kmigrated tick still sees the past."""
        self.promo: dict[int, PromoState] = {
            n.nid: PromoState() for n in topology.nodes if n.toptier}
        self.promotions: RowLog[Promotion] = RowLog(Promotion)
        """Every promotion of every kmigrated thread, in order."""
        self.started = False
        self.last_ready = False
        """Whether the last record_access left the record migrate-ready (for metrics)."""
        self.outcomes: Counter[str] = Counter()
        """How many record_access calls ended at each RECORD_OUTCOMES bucket."""

    # -- recording (§1.2) ------------------------------------------------------------------

    def nid_valid(self, nid: int) -> bool:
        """pghot_nid_valid: default mode stores no nid; precise wants a top-tier node or none."""
        if self.tunables.mode != "precise" or nid == NUMA_NO_NODE:
            return True
        known = {n.nid for n in self.topology.nodes}
        return 0 <= nid <= PGHOT_NID_MAX and nid in known and self.topology.is_toptier(nid)

    def record_access(self, pfn: int, nid: int, src: int, now_ms: int) -> int:
        """pghot_record_access: 0 on success or silent ignore, -EINVAL on bad arguments.

        nid is the accessing node (the intended promotion target), now_ms the access time.
        Every call lands in exactly one `outcomes` bucket (model accounting, not a vmstat).
        """
        self.last_ready = False
        reason = self._record(pfn, nid, src, now_ms)
        self.outcomes[reason] += 1
        return -EINVAL if reason in EINVAL_OUTCOMES else 0

    def _record(self, pfn: int, nid: int, src: int, now_ms: int) -> str:
        if not self.started:
            return "not_started"
        if not self.nid_valid(nid):
            return "invalid_nid"
        if src not in SOURCE_COUNTERS:
            return "invalid_source"
        if not self.tunables.source_enabled(src):
            return "source_disabled"
        self.vmstat.count(SOURCE_COUNTERS[src])
        src_nid = self.topology.node_of_pfn(pfn)
        if src_nid == nid:
            return "same_node"  # access from the page's own node (excludes lower-tier CPUs)
        if src_nid is None:
            return "pfn_offline"  # v7 reads the raw PFN's node first, then checks this
        if self.topology.is_toptier(src_nid):
            return "toptier_page"  # only lower-tier memory is tracked
        if not self.memory.holds_page(pfn):
            return "not_lru"  # no folio, or not on an LRU list
        section = pfn // PAGES_PER_SECTION
        if not self.records.has_section(section):
            return "no_hot_map"
        self.vmstat.count("pghot_recorded_accesses")
        t = self.tunables
        ready = self.records.update(pfn, nid, now_ms, window_ms=t.window_ms,
                                    threshold=t.freq_threshold, sticky=t.sticky_ready,
                                    target_nid=t.target_nid)
        self.last_ready = ready
        if ready:
            self.section_hot[section] = True
            if not self.activate[src_nid]:
                self.activate[src_nid] = True
                self.activate_since_ms[src_nid] = now_ms
        return "recorded"

    def activated(self, nid: int, at_ms: int) -> bool:
        """Was node nid's ACTIVATE bit set at time at_ms (given accesses arrive in order)?"""
        return self.activate.get(nid, False) and self.activate_since_ms.get(nid, 0) <= at_ms

    # -- consumption helpers used by kmigrated (§3.2) -----------------------------------------

    def test_and_clear_hot(self, section: int) -> bool:
        """test_and_clear_bit(PGHOT_SECTION_HOT_BIT); False for sections without a map."""
        hot = self.section_hot.get(section, False)
        if hot:
            self.section_hot[section] = False
        return hot

    def get_record(self, pfn: int) -> Record | None:
        """pghot_get_hotness: consume pfn's record (None if no map or READY is clear)."""
        if not self.records.has_section(pfn // PAGES_PER_SECTION):
            return None
        return self.records.get_record(pfn, self.tunables.target_nid)

    def latency_ms(self, rec_time: int, now_ms: int) -> int:
        """pghot_access_latency of a consumed record's time field."""
        return latency_ms(self.tunables.mode, rec_time, now_ms)

    def prepare_ok(self, nr_pages: int, target: int) -> bool:
        """migrate_prepare's watermark test alone, without waking kswapd."""
        free = self.memory.free_pages(target)
        return free > self.watermarks.high_pages(self.memory.present_pages(target)) + nr_pages

    def migrate_prepare(self, nr_pages: int, target: int) -> bool:
        """The watermark part of migrate_misplaced_folio_prepare (migrate_balanced_pgdat):
        the target needs free > high watermark + nr_pages. On failure (tiering mode) kswapd is
        woken on the target. Not modelled: shared-executable and isolation failures."""
        free = self.memory.free_pages(target)
        high = self.watermarks.high_pages(self.memory.present_pages(target))
        if free > high + nr_pages:
            return True
        if self.wakeup_kswapd is not None:
            self.wakeup_kswapd(target)
        return False

    # -- promotion policy (§4) -------------------------------------------------------------

    def free_space_enough(self, nid: int) -> bool:
        """pgdat_free_space_enough: free > promo watermark + max(1 GiB, present/16)."""
        present = self.memory.present_pages(nid)
        enough = max(ENOUGH_MIN_PAGES, present >> ENOUGH_PRESENT_SHIFT)
        return self.memory.free_pages(nid) > self.watermarks.promo_pages(present) + enough

    def promo_state(self, nid: int) -> PromoState:
        """The target node's nbp_* promotion state."""
        return self.promo.setdefault(nid, PromoState())

    def rate_limited(self, nid: int, rate_pages: int, nr_pages: int, now_ms: int) -> bool:
        """kmigrated_promotion_rate_limit: candidates are counted even when refused; a new
        1 s window starts when more than 1000 ms passed, its baseline including this call."""
        state = self.promo_state(nid)
        self.vmstat.count_node(nid, "pgpromote_candidate", nr_pages)
        nr_cand = self.vmstat.get_node(nid, "pgpromote_candidate")
        now32 = now_ms % U32_MOD
        if (now32 - state.rl_start_ms) % U32_MOD > RATE_LIMIT_PERIOD_MS:
            state.rl_start_ms = now32
            state.rl_nr_cand = nr_cand
        return nr_cand - state.rl_nr_cand >= rate_pages

    def adjust_threshold(self, nid: int, rate_pages: int, ref_th_ms: int, now_ms: int) -> None:
        """kmigrated_promotion_adjust_threshold: at most once per 60 s, move the latency
        threshold by ref_th/8 toward fewer candidates (>110% of rate*60) or more (<90%)."""
        state = self.promo_state(nid)
        now32 = now_ms % U32_MOD
        if (now32 - state.th_start_ms) % U32_MOD <= THRESHOLD_PERIOD_MS:
            return
        state.th_start_ms = now32
        ref_cand = rate_pages * THRESHOLD_PERIOD_MS // MSEC_PER_SEC
        nr_cand = self.vmstat.get_node(nid, "pgpromote_candidate")
        diff_cand = nr_cand - state.th_nr_cand
        unit_th = ref_th_ms * 2 // ADJUST_STEPS
        th = state.threshold_ms or ref_th_ms
        if diff_cand > ref_cand * 11 // 10:
            th = max(th - unit_th, unit_th)
        elif diff_cand < ref_cand * 9 // 10:
            th = min(th + unit_th, ref_th_ms * 2)
        state.th_nr_cand = nr_cand
        state.threshold_ms = th

    def should_migrate(self, nr_pages: int, target: int, rec_time: int, now_ms: int) -> bool:
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
        self.adjust_threshold(target, rate, ref_th, now_ms)
        th = state.threshold_ms or ref_th
        if self.latency_ms(rec_time, now_ms) >= th:
            return False
        return not self.rate_limited(target, rate, nr_pages, now_ms)
