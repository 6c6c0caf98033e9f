"""Modelled CPU cost of the hint-fault source, split by cause, beside the IBS path's.

Defaults, and where they come from:
- pte_update_us = 0.15 per PTE a pass changes (change_pte_range: the PTE, the folio checks,
  the access-time swap on the struct page, and this PTE's share of the pass's batched TLB
  flush): a pass that changes a full 256 MB window (65536 PTEs) was timed at 8-15 ms by
  funclatency on task_numa_work (Linux 5.15, deepseek-ai/DeepEP issue #624), i.e. 0.12-0.23
  us a PTE. The same figure times the pass for the kernel's own throttle (task_numa_work
  holds the scanning task back by 32x a pass's CPU time, pacing.py).
- hint_fault_us = 1.0 per hint fault: trap, do_numa_page's checks and the PTE restore. A
  minor fault (which also allocates and zeroes a page) takes ~1.0 us median on Linux 6.6 at
  3.2 GHz (rdtsc around the first touch of an anonymous page); the hint fault does no
  allocation but walks the policy checks, and on x86 it flushes no TLB (making a PTE more
  permissive needs none; the flush is the scan's, counted above). The TLB miss that
  refills the entry is in this figure.
- migrate_us: the caller's per-page migration cost (the IBS report's migrate_cost_us, 10 us
  by default): NUMAB2 migrates in the faulting thread, kmigrated in its own.
All three can be overridden.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from runtime.errors import InputError

MAX_COST_US = 1_000_000.0


@dataclass(frozen=True)
class NumabCosts:
    pte_update_us: float = 0.15
    hint_fault_us: float = 1.0
    migrate_us: float = 10.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int | float) or \
                    not 0.0 <= value <= MAX_COST_US:
                raise InputError(f"numab cost {f.name} = {value!r} is not a number of "
                                 f"microseconds in 0..{MAX_COST_US:g}")

    @property
    def pte_update_ns(self) -> int:
        """Per-PTE cost in whole ns (the pass's CPU time for the scan throttle)."""
        return round(self.pte_update_us * 1000)


def overhead(costs: NumabCosts, pte_updates: int, hint_faults: int, migrations: int,
             cpus: int, duration_ms: float) -> dict[str, float]:
    """CPU time per cause (ms) and the share of the machine's CPU time it takes."""
    parts = {"pte_updates": pte_updates * costs.pte_update_us / 1000.0,
             "hint_faults": hint_faults * costs.hint_fault_us / 1000.0,
             "migrations": migrations * costs.migrate_us / 1000.0}
    total = sum(parts.values())
    capacity = cpus * duration_ms
    out = {f"{name}_ms": value for name, value in parts.items()}
    out["total_ms"] = total
    out["share_of_cpus"] = total / capacity if capacity > 0 else 0.0
    return out
