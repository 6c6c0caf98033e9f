"""NUMA-balancing knobs with the kernel's names and defaults (kernel/sched/fair.c, mm/memory.c).

kernel.numa_balancing is the mode: 0 off, 2 = NUMA_BALANCING_MEMORY_TIERING only (the
"NUMAB2" of the pghot series). NORMAL (bit 0x1, cpupid-based placement of top-tier pages) is
not modelled, so modes 1 and 3 are refused rather than half-modelled. The scan knobs are the
debugfs `sched/numa_balancing/*` u32 values; the hot threshold and the promotion rate limit
are the tiering ones. `last_cpupid_shift` is LAST_CPUPID_SHIFT of the kernel build (8 PID
bits + log2(NR_CPUS)): it fixes how wide the folio's stored access time is (21 bits with the
NR_CPUS = 8192 of x86-64 distribution kernels; below 12 the time is stored in coarser
buckets, include/linux/mm.h PAGE_ACCESS_TIME_BUCKETS).

The kernel takes any u32 for the debugfs knobs; some values it cannot survive (scan_size 0
divides by zero in task_scan_min), others make no sense for a model run, so the ranges below
are ours and are stated in each error.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from runtime.errors import InputError

NUMA_BALANCING_DISABLED = 0
NUMA_BALANCING_NORMAL = 0x1
NUMA_BALANCING_MEMORY_TIERING = 0x2
MODES = (NUMA_BALANCING_DISABLED, NUMA_BALANCING_MEMORY_TIERING)
U32_MAX = (1 << 32) - 1
INT_MAX = (1 << 31) - 1
LAST_CPUPID_SHIFT_X86_64 = 8 + 13
"""LAST__PID_SHIFT (8) + NR_CPUS_BITS (13 for NR_CPUS = 8192)."""
RANGES = {
    "scan_delay_ms": (0, 3_600_000),
    "scan_period_min_ms": (1, 3_600_000),
    "scan_period_max_ms": (1, 3_600_000),
    "scan_size_mb": (1, 4_194_304),
    "hot_threshold_ms": (0, U32_MAX),
    "promote_rate_limit_MBps": (0, INT_MAX),
    "last_cpupid_shift": (8, 21),
}
"""Accepted values per knob (inclusive)."""


@dataclass(frozen=True)
class NumabTunables:
    """The NUMA-balancing sysctls (defaults: fair.c's initialisers)."""

    mode: int = NUMA_BALANCING_MEMORY_TIERING
    scan_delay_ms: int = 1000
    scan_period_min_ms: int = 1000
    scan_period_max_ms: int = 60000
    scan_size_mb: int = 256
    hot_threshold_ms: int = 1000
    """sysctl_numa_balancing_hot_threshold (MSEC_PER_SEC)."""
    promote_rate_limit_MBps: int = 65536
    """kernel.numa_balancing_promote_rate_limit_MBps."""
    last_cpupid_shift: int = LAST_CPUPID_SHIFT_X86_64

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise InputError(f"numab.{f.name} = {value!r} is not an integer")
        if self.mode not in MODES:
            raise InputError(f"numab.mode = {self.mode} is not 0 (off) or 2 (memory tiering); "
                             "NUMA_BALANCING_NORMAL (1, 3) is not modelled")
        for name, (low, high) in RANGES.items():
            value = getattr(self, name)
            if not low <= value <= high:
                raise InputError(f"numab.{name} = {value} is outside {low}..{high}")

        if self.scan_period_min_ms > self.scan_period_max_ms:
            raise InputError(f"numab.scan_period_min_ms = {self.scan_period_min_ms} is above "
                             f"numab.scan_period_max_ms = {self.scan_period_max_ms}")

    @property
    def tiering(self) -> bool:
        """folio_use_access_time and the kswapd wake-up depend on this bit."""
        return bool(self.mode & NUMA_BALANCING_MEMORY_TIERING)

    @property
    def scan_pages(self) -> int:
        """scan_size in 4 KiB pages (task_numa_work's `pages`)."""
        return self.scan_size_mb << 8
