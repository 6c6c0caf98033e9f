"""Mainline NUMAB2's promotion decision: should_numa_migrate_memory's tiering path
(kernel/sched/fair.c, docs/kernel-model.md §f.4), as @jitable rules over per-node arrays.

For a lower-tier folio faulted from a CPU of node `nid` (the promotion target):
1. pgdat_free_space_enough(target): free > promo watermark + max(1 GiB, present / 16) ->
   nbp_threshold = 0, pgpromote_candidate_nrl += nr, promote (no age test, no rate limit,
   and the folio's stored time is NOT swapped: numa_hint_fault_latency is never called);
2. numa_promotion_adjust_threshold: at most once per sysctl_numa_balancing_scan_period_max
   ms (60 s) on the u32 ms clock, move the threshold by one step of 2 * hot_threshold / 16
   (u32: 2 * hot_threshold wraps first) toward fewer candidates (more than 110% of
   rate * period / 1000 since the last adjustment) or more (fewer than 90%), clamped to
   [step, 2 * hot_threshold] in u32 arithmetic;
3. th = nbp_threshold or hot_threshold; latency = numa_hint_fault_latency (pte.py; the
   fault time is swapped into the folio); latency >= th -> do not promote;
4. numa_promotion_rate_limit: pgpromote_candidate += nr (counted even when refused); a new
   1000 ms window starts when more than 1000 ms passed on the u32 clock (its baseline
   includes this call); refused when the window's candidates reach MB_TO_PAGES(rate), the
   shift done in 32 bits (runtime/pghot/core.py mb_to_pages).
The nbp_* fields are zero at boot, so with jiffies from INITIAL_JIFFIES the first call adjusts
the threshold at once (docs/kernel-model.md §c). pghot's kmigrated_should_migrate_memory is
the same arithmetic with a fixed 60 s period and the frequency window as reference threshold
(runtime/pghot/core.py); the per-CPU lag of node counters is not modelled in either.

State per node, one int64 row of `nbp` (NBP_FIELDS); the node stats pgpromote_candidate,
_nrl and pgpromote_success live there too, because the rules read them back.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from generated._base import jitable
from generated.ibs_mprof import PAGE_SHIFT

NBP_FIELDS = ("rl_start", "rl_nr_cand", "th_start", "th_nr_cand", "threshold",
              "pgpromote_candidate", "pgpromote_candidate_nrl", "pgpromote_success")
(RL_START, RL_NR_CAND, TH_START, TH_NR_CAND, THRESHOLD, CANDIDATE, CANDIDATE_NRL,
 SUCCESS) = range(len(NBP_FIELDS))
NODE_STATS = ("pgpromote_candidate", "pgpromote_candidate_nrl", "pgpromote_success")
"""The nbp columns that are /proc/vmstat node stats."""
U32 = (1 << 32) - 1
MSEC_PER_SEC = 1000
RATE_LIMIT_WINDOW_MS = MSEC_PER_SEC
ADJUST_STEPS = 16
"""NUMA_MIGRATION_ADJUST_STEPS."""
ENOUGH_MIN_PAGES = (1 << 30) >> PAGE_SHIFT
ENOUGH_PRESENT_SHIFT = 4
PROMOTE_NRL, PROMOTE, TOO_OLD, RATE_LIMITED = range(4)
"""should_numa_migrate_memory's tiering outcomes: the first two promote."""


def new_nbp(nodes: int) -> npt.NDArray[np.int64]:
    """Every node's nbp_* fields and promotion counters, zero as at boot."""
    return np.zeros((nodes, len(NBP_FIELDS)), dtype=np.int64)


@jitable
def free_space_enough(free: int, present: int, promo_wmark: int) -> int:
    """pgdat_free_space_enough for a one-zone node: free above the promo watermark by at
    least max(1 GiB, present / 16) pages (zone_watermark_ok is a strict test)."""
    enough = max(ENOUGH_MIN_PAGES, present >> ENOUGH_PRESENT_SHIFT)
    return 1 if free > promo_wmark + enough else 0


@jitable
def adjust_threshold(nbp: npt.NDArray[np.int64], nid: int, rate_limit: int, ref_th: int,
                     th_period: int, now_ms: int) -> None:
    """numa_promotion_adjust_threshold (u32 start, period, step and threshold; unsigned
    long candidate counts)."""
    if ((now_ms - nbp[nid, TH_START]) & U32) <= th_period:
        return
    nbp[nid, TH_START] = now_ms & U32
    ref_cand = rate_limit * th_period // MSEC_PER_SEC
    nr_cand = nbp[nid, CANDIDATE]
    diff_cand = nr_cand - nbp[nid, TH_NR_CAND]
    double = (ref_th * 2) & U32
    unit_th = double // ADJUST_STEPS
    th = nbp[nid, THRESHOLD]
    if th == 0:
        th = ref_th & U32
    if diff_cand > ref_cand * 11 // 10:
        th = max((th - unit_th) & U32, unit_th)
    elif diff_cand < ref_cand * 9 // 10:
        th = min((th + unit_th) & U32, double)
    nbp[nid, TH_NR_CAND] = nr_cand
    nbp[nid, THRESHOLD] = th


@jitable
def rate_limited(nbp: npt.NDArray[np.int64], nid: int, rate_limit: int, nr: int,
                 now_ms: int) -> int:
    """numa_promotion_rate_limit: 1 when this call is refused (it is counted either way)."""
    nbp[nid, CANDIDATE] += nr
    nr_cand = nbp[nid, CANDIDATE]
    if ((now_ms - nbp[nid, RL_START]) & U32) > RATE_LIMIT_WINDOW_MS:
        nbp[nid, RL_START] = now_ms & U32
        nbp[nid, RL_NR_CAND] = nr_cand
    return 1 if nr_cand - nbp[nid, RL_NR_CAND] >= rate_limit else 0


@jitable
def tiering_decision(nbp: npt.NDArray[np.int64], nid: int, free: int, present: int,
                     promo_wmark: int, latency: int, rate_limit: int, hot_threshold: int,
                     th_period: int, nr: int, now_ms: int) -> int:
    """should_numa_migrate_memory for a folio that uses access time, target node nid:
    PROMOTE_NRL (room to spare), PROMOTE, TOO_OLD or RATE_LIMITED. `latency` is
    numa_hint_fault_latency's age; the caller swaps the fault time into the folio unless
    the answer is PROMOTE_NRL (the kernel reads the latency only after the free-space test).
    """
    if free_space_enough(free, present, promo_wmark):
        nbp[nid, THRESHOLD] = 0  # "workload changed, reset hot threshold"
        nbp[nid, CANDIDATE_NRL] += nr
        return PROMOTE_NRL
    adjust_threshold(nbp, nid, rate_limit, hot_threshold, th_period, now_ms)
    th = nbp[nid, THRESHOLD]
    if th == 0:
        th = hot_threshold & U32
    if latency >= th:
        return TOO_OLD
    if rate_limited(nbp, nid, rate_limit, nr, now_ms):
        return RATE_LIMITED
    return PROMOTE
