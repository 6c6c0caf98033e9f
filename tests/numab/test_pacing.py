"""Scan pacing (task_tick_numa, task_numa_work's bookkeeping) and its adaptation by hint
faults (task_numa_fault, task_numa_placement, update_task_scan_period)."""

from __future__ import annotations

import numpy as np

from runtime.jiffies import INITIAL_JIFFIES
from runtime.numab import pacing
from runtime.numab.pacing import (
    LOC_LOCAL,
    LOC_REMOTE,
    MEMBUF,
    MIGRATE_RETRY,
    MM_SEQ,
    NEXT_SCAN,
    PERIOD,
    PERIOD_MAX,
    PLACEMENTS,
    PREFERRED,
    new_task,
    next_tick_ms,
    numa_fault,
    task_scan_max,
    task_scan_min,
    tick,
    update_scan_period,
)
from runtime.numab.tunables import NumabTunables

T = NumabTunables()
GIB_PAGES = 1 << 18


def test_scan_period_bounds_follow_the_rss() -> None:
    assert (task_scan_min(T, 8 * GIB_PAGES), task_scan_max(T, 8 * GIB_PAGES)) == (100, 1875)
    assert (task_scan_min(T, GIB_PAGES // 2), task_scan_max(T, GIB_PAGES // 2)) == (500, 30000)
    assert (task_scan_min(T, 1), task_scan_max(T, 1)) == (1000, 60000)
    assert task_scan_max(T, 8 * GIB_PAGES + 1) == 60000 // 33  # a started window counts
    assert task_scan_min(T, 0) == 1000  # an empty RSS counts as one window
    big = NumabTunables(scan_size_mb=4096)  # beyond MAX_SCAN_WINDOW: no floor from it
    assert task_scan_min(big, 1) == 1000


def run_passes(task: np.ndarray, until: int, start: int, cost_ns: int = 0) -> list[int]:
    """Run ticks up to `until` ms; the times at which a pass ran."""
    passes, last = [], -1.0
    while (m := next_tick_ms(task, last)) < until:
        if tick(task, m, start):
            pacing.start_pass(task, m)
            pacing.end_pass(task, cost_ns)
            passes.append(m)
        last = float(m)
    return passes


def test_first_pass_after_the_scan_delay_then_every_period_plus_two_ticks() -> None:
    task, _ = new_task(T, 2)
    assert task[NEXT_SCAN] == INITIAL_JIFFIES + 1000 and task[PERIOD] == 1000
    passes = run_passes(task, 2000, start=100)
    assert passes[:4] == [1001, 1103, 1205, 1307]  # node_stamp gains 2 ticks a pass
    assert task[PERIOD] == 100  # task_scan_start at the first tick past the delay


def test_scan_cost_holds_the_next_pass_back_32_fold() -> None:
    task, _ = new_task(T, 2)
    passes = run_passes(task, 2000, start=100, cost_ns=5_000_000)  # 5 ms a pass
    assert passes[:3] == [1001, 1263, 1525]  # 100 + 2 + 32 * 5 ms apart


def test_no_pass_before_numa_next_scan() -> None:
    """A tick whose condition holds while jiffies is before numa_next_scan runs nothing."""
    task, _ = new_task(T, 2)
    task[NEXT_SCAN] = INITIAL_JIFFIES + 1500
    passes = run_passes(task, 2000, start=100)
    assert passes[0] == 1501  # ticks at 1001, 1101, ... 1401 find no scan due


def counted_fault(task: np.ndarray, faults: np.ndarray, now: int, node: int = 0,
                  top: int = 1, local: int = 0, failed: int = 0) -> int:
    return numa_fault(task, faults, node, top, 1, local, failed, 1, now, 100, 1875)


def test_tiering_ignores_faults_on_slow_memory() -> None:
    task, faults = new_task(T, 2)
    task[MM_SEQ] = 3
    assert counted_fault(task, faults, INITIAL_JIFFIES, node=1, top=0) == 0
    assert faults.sum() == 0 and task[LOC_REMOTE] == 0 and task[PLACEMENTS] == 0


def test_placement_once_per_sequence_doubles_the_period() -> None:
    """Faults reported on the top tier in tiering mode are private and remote: every
    placement finds no local and no shared faults and doubles the period, pushing the next
    scan out by the new period."""
    task, faults = new_task(T, 2)
    task[PERIOD] = 100
    now = INITIAL_JIFFIES + 5000
    assert counted_fault(task, faults, now) == 0  # sequence 0: nothing scanned since fork
    task[MM_SEQ] = 1
    assert counted_fault(task, faults, now + 1) == 1
    assert task[PERIOD] == 200 and task[NEXT_SCAN] == now + 1 + 200
    assert task[PERIOD_MAX] == 1875 and task[PREFERRED] == 0  # one fault in the buffer
    assert task[MIGRATE_RETRY] == now + 1 + 200 // 16
    assert counted_fault(task, faults, now + 2) == 0  # same sequence: no placement
    task[MM_SEQ] = 2
    assert counted_fault(task, faults, now + 5) == 0  # before numa_migrate_retry
    assert counted_fault(task, faults, now + 14) == 1
    assert task[PERIOD] == 400
    assert faults[MEMBUF, 0] == 1 and task[LOC_REMOTE] == 5 and task[PLACEMENTS] == 2
    for seq in range(3, 10):
        task[MM_SEQ] = seq
        task[MIGRATE_RETRY] = 0
        counted_fault(task, faults, now + 100 * seq)
    assert task[PERIOD] == 1875  # capped at task_scan_max


def test_first_placement_has_no_preferred_node_yet() -> None:
    task, faults = new_task(T, 2)
    task[MM_SEQ] = 1
    counted_fault(task, faults, INITIAL_JIFFIES)
    assert task[PREFERRED] == -1 and task[MIGRATE_RETRY] == 0
    assert faults[MEMBUF, 0] == 1  # this fault is added after the placement


def test_local_faults_step_the_period_by_tenths() -> None:
    task, _ = new_task(T, 2)
    task[PERIOD] = 1000
    task[LOC_LOCAL], task[LOC_REMOTE] = 8, 2
    update_scan_period(task, 0, 10, INITIAL_JIFFIES, 100, 1875)  # private: ps = 10
    assert task[PERIOD] == 1300 and task[LOC_LOCAL] == 0
    task[LOC_LOCAL], task[LOC_REMOTE] = 2, 8
    update_scan_period(task, 6, 4, INITIAL_JIFFIES, 100, 1875)  # lr 2, ps 4: faster
    assert task[PERIOD] == 1300 - 3 * 130


def test_period_arithmetic_is_unsigned() -> None:
    """A step below zero wraps the u32 period, which the clamp then sends to the maximum."""
    task, _ = new_task(T, 2)
    task[PERIOD] = 5
    task[LOC_LOCAL], task[LOC_REMOTE] = 1, 9
    update_scan_period(task, 9, 1, INITIAL_JIFFIES, 1, 1875)  # lr 1, ps 1: -(7 - 1) * 1
    assert task[PERIOD] == 1875


def test_failed_migrations_keep_doubling() -> None:
    task, _ = new_task(T, 2)
    task[PERIOD], task[PERIOD_MAX] = 100, 1875
    task[LOC_LOCAL], task[LOC_REMOTE], task[pacing.LOC_FAILED] = 9, 1, 1
    update_scan_period(task, 0, 10, INITIAL_JIFFIES, 100, 1875)
    assert task[PERIOD] == 200 and task[pacing.LOC_FAILED] == 1  # not cleared
