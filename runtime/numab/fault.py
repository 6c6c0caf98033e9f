"""The NUMA hinting fault (mm/memory.c do_numa_page), in its two shapes, as one loop rule.

`hint_faults` takes a run of faults (page, faulting CPU, jiffies) in time order and the
state they touch (`FaultArrays`); it is @jitable: the reference engine calls it with one
fault at a time, the fast engine compiles it over a run (runtime/jit.py). It stops right
after a fault that ran task_numa_placement, which may move the next scan pass (pacing.py):
it returns how many faults it handled, and the caller hands the rest back.

Common part (docs/kernel-model.md §f.3): the PTE is restored (the hint is gone);
numa_migrate_check counts numa_hint_faults, and numa_hint_faults_local when the page is on
the faulting CPU's node; mpol_misplaced under the default policy (MPOL_PREFERRED on the
CPU's node, MPOL_F_MORON) proposes the faulting CPU's node, unless the page is already
there, and only if should_numa_migrate_memory agrees (the node must have memory).

- mainline numa_balancing=2 (`record` = 0): should_numa_migrate_memory's tiering path
  (policy.py; the fault time is swapped into the folio unless the target had room to spare);
  then migrate_misplaced_folio_prepare: the target needs free > high watermark + 1 page, else
  kswapd is woken on it (tiering mode) and the fault is a failed migration; then the
  migration itself (it cannot fail once prepared: no allocation below the min watermark
  here): numa_pages_migrated += 1, pgpromote_success += 1 on the target for a lower -> top
  move. The caller moves the pages (`out[i]` >= 0) in Memory afterwards, in fault order.
  task_numa_fault gets the target for a migrated page, the page's own node otherwise.
- the pghot series' NUMAB2 move (`record` = 1; v4/v5 tree as read, §f.6): for a folio that
  uses access time should_numa_migrate_memory agrees at once; do_numa_page never migrates:
  it restores the PTE and, with a target, calls pghot_record_access(pfn, target,
  PGHOT_HINTFAULTS, jiffies) (collected in `out[i]`, the caller runs pghot's
  record_accesses over them: the loop reads nothing pghot writes) and task_numa_fault(target).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from generated._base import jitable
from runtime.nodemap import NodeTables, is_toptier, node_of_pfn
from runtime.numab import pte
from runtime.numab.pacing import numa_fault
from runtime.numab.policy import PROMOTE_NRL, SUCCESS, tiering_decision
from runtime.numab.policy import RATE_LIMITED as POLICY_RATE_LIMITED
from runtime.numab.policy import TOO_OLD as POLICY_TOO_OLD

I64 = npt.NDArray[np.int64]
NUMAB_EVENTS = ("numa_pte_updates", "numa_hint_faults", "numa_hint_faults_local",
                "numa_pages_migrated")
"""The /proc/vmstat events NUMA balancing counts (numa_pages_migrated: in-fault promotions
of mainline NUMAB2 only; kmigrated counts its own in the run's Vmstat)."""
PTE_UPDATES, HINT_FAULTS, HINT_FAULTS_LOCAL, PAGES_MIGRATED = range(len(NUMAB_EVENTS))
FAULT_OUTCOMES = ("migrated", "too_old", "rate_limited", "prepare_failed", "on_node",
                  "no_memory", "cpupid_path", "to_pghot", "no_folio")
"""Where a hint fault ends: promoted; refused by the age test or the rate limit; the target
too full; already on the faulting CPU's node; that node has no memory; a folio that does not
use access time (left to the cpupid filter, which is not modelled: no target); handed to
pghot; no page mapped."""
(MIGRATED, TOO_OLD, RATE_LIMITED, PREPARE_FAILED, ON_NODE, NO_MEMORY, CPUPID_PATH, TO_PGHOT,
 NO_FOLIO) = range(len(FAULT_OUTCOMES))


class FaultArrays(NamedTuple):
    """What the fault loops read and change. Per node: free/present pages and the high and
    promo watermarks (free is the caller's copy, updated by NUMAB2 migrations in the loop),
    kswapd wake-ups; per page: the PTE/access-time words and PFNs; the task's pacing state."""

    tiering: int
    shift: int
    """LAST_CPUPID_SHIFT."""
    rate_limit: int
    """MB_TO_PAGES(promote_rate_limit_MBps), already wrapped to 32 bits."""
    hot_threshold: int
    th_period: int
    """sysctl_numa_balancing_scan_period_max: the threshold adjustment's period."""
    scan_min: int
    scan_max: int
    words: npt.NDArray[np.uint32]
    page_pfn: I64
    nodes: NodeTables
    cpu_node: I64
    task: I64
    faults: I64
    nbp: I64
    free: I64
    present: I64
    high: I64
    promo: I64
    kswapd: I64
    vm: I64
    outcomes: I64


@jitable
def _promote(a: FaultArrays, page: int, nid: int, this: int, now: int) -> int:
    """Mainline NUMAB2 for a lower-tier folio faulted from node `this`: the tiering decision,
    migrate_misplaced_folio_prepare and the migration. 1 migrated, 0 refused, -1 prepare
    failed (a failed migration for task_numa_fault)."""
    now_ms = now & pte.U32
    word = int(a.words[page])
    decision = tiering_decision(
        a.nbp, this, a.free[this], a.present[this], a.promo[this],
        pte.hint_fault_latency(now_ms, word, a.shift), a.rate_limit, a.hot_threshold,
        a.th_period, 1, now_ms)
    if decision != PROMOTE_NRL:
        a.words[page] = pte.with_access_time(word, now_ms, a.shift)
    if decision == POLICY_TOO_OLD:
        a.outcomes[TOO_OLD] += 1
        return 0
    if decision == POLICY_RATE_LIMITED:
        a.outcomes[RATE_LIMITED] += 1
        return 0
    if a.free[this] <= a.high[this] + 1:
        a.outcomes[PREPARE_FAILED] += 1
        if a.tiering:
            a.kswapd[this] = 1
        return -1
    a.free[this] -= 1
    a.free[nid] += 1
    a.words[page] = pte.migrated(int(a.words[page]), 1, a.tiering, a.shift)
    a.vm[PAGES_MIGRATED] += 1
    if is_toptier(this, a.nodes):
        a.nbp[this, SUCCESS] += 1
    a.outcomes[MIGRATED] += 1
    return 1


@jitable
def hint_faults(a: FaultArrays, record: int, pages: I64, cpus: I64, jiffies: I64,
                out: I64) -> int:
    """do_numa_page for each fault in order: mainline NUMAB2 (record = 0; out[i] is the node
    page i moved to) or the pghot series' (record = 1; out[i] is the target of page i's
    pghot_record_access); -1 for none. Returns the faults handled (all, or up to and
    including the first that ran task_numa_placement)."""
    for i in range(pages.size):
        page, cpu, now = int(pages[i]), int(cpus[i]), int(jiffies[i])
        out[i] = -1
        a.words[page] = pte.restored(int(a.words[page]))
        pfn = a.page_pfn[page]
        if pfn < 0:
            a.outcomes[NO_FOLIO] += 1
            continue
        nid = node_of_pfn(pfn, a.nodes)
        this = a.cpu_node[cpu]
        local = 1 if nid == this else 0
        a.vm[HINT_FAULTS] += 1
        a.vm[HINT_FAULTS_LOCAL] += local
        mem_node = nid
        failed = 0
        if local:
            a.outcomes[ON_NODE] += 1
        elif a.present[this] <= 0:
            a.outcomes[NO_MEMORY] += 1
        elif not a.tiering or is_toptier(nid, a.nodes):
            a.outcomes[CPUPID_PATH] += 1
        elif record:
            out[i] = this
            mem_node = this
            a.outcomes[TO_PGHOT] += 1
        else:
            moved = _promote(a, page, nid, this, now)
            if moved > 0:
                out[i] = this
                mem_node = this
            failed = 1 if moved < 0 else 0
        if numa_fault(a.task, a.faults, mem_node, is_toptier(mem_node, a.nodes), a.tiering,
                      local, failed, 1, now, a.scan_min, a.scan_max):
            return i + 1
    return pages.size
