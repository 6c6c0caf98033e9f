"""When the NUMA scanner runs, and how hint faults change that (kernel/sched/fair.c).

One process, modelled as ONE task: the thread that scans. Its state is an int64 array
(`TASK_FIELDS`) that the scanner and the compiled fault loops share; the per-node fault
buffers are a (2, nodes) array (`faults`).

Pacing, per kernel function (docs/kernel-model.md §f.1, §f.5):
- init_numa_balancing (run start, jiffies j0): mm.numa_next_scan = j0 + scan_delay; the
  task's numa_scan_period = scan_delay, node_stamp = 0;
- task_tick_numa, every tick (1 ms): when the task's CPU time exceeds node_stamp + period
  (ns, strict): a first such tick (node_stamp still 0) sets period = task_scan_start; then
  node_stamp += the period read before that; if jiffies has reached numa_next_scan the
  scan work runs (`tick`);
- task_numa_work: numa_next_scan = now + period; node_stamp += 2 ticks; the pass
  (scanner.py); node_stamp += 32 x the pass's CPU time (at most ~3% of the task's time
  goes to scanning), the pass's CPU time being the modelled PTE-update cost (`end_pass`);
- task_scan_min = max(1000 / (2560 / scan_size), scan_period_min / windows), windows =
  ceil(RSS / scan_size); task_scan_max = max(min, scan_period_max / windows);
  task_scan_start = task_scan_min (no numa_group: one process);
- task_numa_fault (`numa_fault`): in tiering mode a fault whose memory node is not top tier
  is not accounted at all; otherwise (a NUMAB2 promotion reports the target node, the pghot
  path reports the target for every misplaced fault) task_numa_placement runs when jiffies
  is after numa_migrate_retry, and does its work once per mm scan sequence: it decays the
  fault buffers, picks the preferred node, and update_task_scan_period doubles the period
  (capped at task_scan_max) and pushes numa_next_scan to now + period when there were no
  local and no shared faults or any failed migration, else steps it by tenths toward 70%
  locality, clamped to [task_scan_min, task_scan_max]; numa_migrate_preferred then sets
  numa_migrate_retry = now + min(1 s, period / 16) once a preferred node is known.
  Faults on access-time folios are always private (numa_migrate_check leaves last_cpupid
  unset) and remote unless the faulting CPU sits on the page's node.

Simplified, and why: the task's CPU time is wall time since the run started (every modelled
CPU runs the workload all the time); only the first thread scans (the kernel staggers the
other threads' node_stamp and lets them scan with their own periods when they tick first,
which this model leaves out: with many threads passes can come sooner than here, never
later); one VMA holds all of the workload's pages; task migration between nodes
(task_numa_migrate) is not modelled: threads stay on their CPUs.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from generated._base import jitable
from runtime.jiffies import INITIAL_JIFFIES
from runtime.numab.tunables import NumabTunables

TASK_FIELDS = (
    "numa_next_scan", "numa_scan_period", "numa_scan_period_max", "node_stamp_ns",
    "task_scan_seq", "mm_scan_seq", "numa_migrate_retry", "preferred_nid",
    "faults_remote", "faults_local", "faults_failed", "scan_offset", "vma_next_scan",
    "last_tick_ms", "placements")
(NEXT_SCAN, PERIOD, PERIOD_MAX, NODE_STAMP, TASK_SEQ, MM_SEQ, MIGRATE_RETRY, PREFERRED,
 LOC_REMOTE, LOC_LOCAL, LOC_FAILED, SCAN_OFFSET, VMA_NEXT_SCAN, LAST_TICK,
 PLACEMENTS) = range(len(TASK_FIELDS))
MEM, MEMBUF = 0, 1
"""Rows of the per-node fault array: decayed faults, faults since the last placement."""
NSEC_PER_MSEC = 1_000_000
TICK_NSEC = NSEC_PER_MSEC
MAX_SCAN_WINDOW = 2560
"""MB/s: task_scan_min never lets the scan go faster than this."""
NUMA_PERIOD_SLOTS = 10
NUMA_PERIOD_THRESHOLD = 7
SCAN_COST_FACTOR = 32
"""task_numa_work pushes node_stamp by 32x the pass's CPU time."""
NO_NODE = -1
U32 = (1 << 32) - 1


def task_nr_scan_windows(rss_pages: int, scan_pages: int) -> int:
    """task_nr_scan_windows: RSS in whole scan windows (an empty RSS counts as one)."""
    rss = rss_pages or scan_pages
    return -(-rss // scan_pages)


def task_scan_min(t: NumabTunables, rss_pages: int) -> int:
    """task_scan_min: at most MAX_SCAN_WINDOW MB/s, and the whole RSS per period_min."""
    windows = MAX_SCAN_WINDOW // t.scan_size_mb if t.scan_size_mb < MAX_SCAN_WINDOW else 1
    floor = 1000 // windows
    return max(floor, t.scan_period_min_ms // task_nr_scan_windows(rss_pages, t.scan_pages))


def task_scan_max(t: NumabTunables, rss_pages: int) -> int:
    """task_scan_max without a numa_group: scan_period_max per window, at least the min."""
    return max(task_scan_min(t, rss_pages),
               t.scan_period_max_ms // task_nr_scan_windows(rss_pages, t.scan_pages))


def new_task(t: NumabTunables, nodes: int, start_jiffies: int = INITIAL_JIFFIES
             ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """init_numa_balancing for a new process at start_jiffies: its task array and its
    (2, nodes) fault buffers."""
    task = np.zeros(len(TASK_FIELDS), dtype=np.int64)
    task[NEXT_SCAN] = start_jiffies + t.scan_delay_ms
    task[PERIOD] = t.scan_delay_ms
    task[PREFERRED] = NO_NODE
    task[LAST_TICK] = -1
    return task, np.zeros((2, nodes), dtype=np.int64)


def next_tick_ms(task: npt.NDArray[np.int64], after_ms: float) -> int:
    """The first whole ms of the run after `after_ms` (-1 at the start) and after the last
    tick at which task_tick_numa finds the CPU time past node_stamp + period."""
    due = (int(task[NODE_STAMP]) + int(task[PERIOD]) * NSEC_PER_MSEC) // NSEC_PER_MSEC + 1
    return max(due, int(task[LAST_TICK]) + 1, math.floor(after_ms) + 1)


def tick(task: npt.NDArray[np.int64], run_ms: int, scan_start: int) -> bool:
    """task_tick_numa at run_ms (a tick whose condition holds): whether the scan work runs
    (jiffies has reached numa_next_scan)."""
    period_ns = int(task[PERIOD]) * NSEC_PER_MSEC
    if task[NODE_STAMP] == 0:
        task[PERIOD] = scan_start
    task[NODE_STAMP] += period_ns
    task[LAST_TICK] = run_ms
    return INITIAL_JIFFIES + run_ms - int(task[NEXT_SCAN]) >= 0


def start_pass(task: npt.NDArray[np.int64], run_ms: int) -> None:
    """task_numa_work's claim of the scan: the next one no sooner than one period away."""
    task[NEXT_SCAN] = INITIAL_JIFFIES + run_ms + task[PERIOD]
    task[NODE_STAMP] += 2 * TICK_NSEC


def end_pass(task: npt.NDArray[np.int64], pass_cpu_ns: int) -> None:
    """The scan's CPU time holds this task's next scans back 32-fold."""
    task[NODE_STAMP] += SCAN_COST_FACTOR * pass_cpu_ns


@jitable
def time_after(a: int, b: int) -> int:
    """time_after(a, b) on unsigned long jiffies: b - a read as a signed long is negative."""
    return 1 if b - a < 0 else 0


@jitable
def update_scan_period(task: npt.NDArray[np.int64], shared: int, private: int,
                       now: int, scan_min: int, scan_max: int) -> None:
    """update_task_scan_period (u32 period; diff an int added in unsigned arithmetic)."""
    remote = task[LOC_REMOTE]
    local = task[LOC_LOCAL]
    if local + shared == 0 or task[LOC_FAILED]:
        task[PERIOD] = min(task[PERIOD_MAX], (task[PERIOD] << 1) & U32)
        task[NEXT_SCAN] = now + task[PERIOD]
        return
    period_slot = (task[PERIOD] + NUMA_PERIOD_SLOTS - 1) // NUMA_PERIOD_SLOTS
    lr_ratio = local * NUMA_PERIOD_SLOTS // max(local + remote, 1)
    ps_ratio = private * NUMA_PERIOD_SLOTS // max(private + shared, 1)
    if ps_ratio >= NUMA_PERIOD_THRESHOLD:
        diff = max(ps_ratio - NUMA_PERIOD_THRESHOLD, 1) * period_slot
    elif lr_ratio >= NUMA_PERIOD_THRESHOLD:
        diff = max(lr_ratio - NUMA_PERIOD_THRESHOLD, 1) * period_slot
    else:
        diff = -(NUMA_PERIOD_THRESHOLD - max(lr_ratio, ps_ratio)) * period_slot
    task[PERIOD] = min(max((task[PERIOD] + diff) & U32, scan_min), scan_max)
    task[LOC_REMOTE] = 0
    task[LOC_LOCAL] = 0
    task[LOC_FAILED] = 0


@jitable
def placement(task: npt.NDArray[np.int64], faults: npt.NDArray[np.int64], now: int,
              scan_min: int, scan_max: int) -> int:
    """task_numa_placement: once per mm scan sequence; 1 when it ran."""
    if task[TASK_SEQ] == task[MM_SEQ]:
        return 0
    task[TASK_SEQ] = task[MM_SEQ]
    task[PERIOD_MAX] = scan_max
    private = 0
    max_faults = 0
    max_nid = NO_NODE
    for nid in range(faults.shape[1]):
        private += faults[MEMBUF, nid]
        faults[MEM, nid] += faults[MEMBUF, nid] - faults[MEM, nid] // 2
        faults[MEMBUF, nid] = 0
        if faults[MEM, nid] > max_faults:
            max_faults = faults[MEM, nid]
            max_nid = nid
    if max_faults:
        task[PREFERRED] = max_nid
    update_scan_period(task, 0, private, now, scan_min, scan_max)
    task[PLACEMENTS] += 1
    return 1


@jitable
def numa_fault(task: npt.NDArray[np.int64], faults: npt.NDArray[np.int64], mem_node: int,
               mem_toptier: int, tiering: int, local: int, failed: int, nr: int, now: int,
               scan_min: int, scan_max: int) -> int:
    """task_numa_fault for a fault reported on mem_node; 1 when task_numa_placement ran
    (the scan pacing may have changed)."""
    if tiering and not mem_toptier:
        return 0  # slow-memory faults carry no statistics in tiering mode
    placed = 0
    if time_after(now, task[MIGRATE_RETRY]):
        placed = placement(task, faults, now, scan_min, scan_max)
        if task[PREFERRED] != NO_NODE:  # numa_migrate_preferred
            task[MIGRATE_RETRY] = now + min(1000, task[PERIOD] // 16)
    if failed:
        task[LOC_FAILED] += nr
    faults[MEMBUF, mem_node] += nr  # always private: last_cpupid is unset
    if local:
        task[LOC_LOCAL] += nr
    else:
        task[LOC_REMOTE] += nr
    return placed
