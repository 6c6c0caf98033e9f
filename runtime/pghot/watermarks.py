"""Zone watermarks of a node, shared by promotion (pghot) and demotion (kswapd model).

The model has one zone per node, every node's memory onlined as ZONE_NORMAL. The ladder is
the kernel's (docs/kernel-model.md §d, mm/page_alloc.c):
- calculate_min_free_kbytes: min_free_kbytes = clamp(int_sqrt(16 * lowmem KiB), 128, 262144),
  lowmem being every node's managed memory;
- __setup_per_zone_wmarks: a zone's min is its share of min_free_kbytes by managed pages; the
  step is max(min / 4, managed * watermark_scale_factor / 10000) (factor 10 by default:
  0.1% of the zone); low = min + step, high = low + step, promo = high + step.
`Watermarks(scale_factor, lowmem_pages=0)` leaves min at 0 (a plain ladder for tests), and
scale_factor 0 with it turns every watermark into 0 (promotion then only needs free pages,
demotion never triggers).

Who reads what:
- pgdat_free_space_enough: free > promo + max(1 GiB, present/16)       (pghot promotion)
- migrate_balanced_pgdat (in migrate_misplaced_folio_prepare): free > high + nr_pages
- kswapd model: woken when free < low (or by a failed promotion in tiering mode), demotes until
  free reaches the balance point: promo in tiering mode, high otherwise (pgdat_balanced)
Every "free > mark" is zone_watermark_ok's strict test (order 0: free <= mark fails).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from generated.ibs_mprof import PAGE_SHIFT
from runtime.errors import InputError

MIN_FREE_KBYTES_RANGE = (128, 262144)
"""calculate_min_free_kbytes clamps its square-root rule into this range."""
SCALE_FACTOR_RANGE = (1, 3000)
"""vm.watermark_scale_factor's sysctl range (in 1/10000 of a zone)."""
SCALE_FACTOR_DEFAULT = 10
NUMA_BALANCING_MEMORY_TIERING = 0x2
"""The bit of kernel.numa_balancing that makes a failed promotion wake kswapd and kswapd
balance a node at the promo watermark (docs/kernel-model.md §d)."""


def min_free_kbytes(lowmem_pages: int) -> int:
    """calculate_min_free_kbytes over lowmem_pages of managed memory."""
    low, high = MIN_FREE_KBYTES_RANGE
    return min(max(math.isqrt(16 * (lowmem_pages << (PAGE_SHIFT - 10))), low), high)


@dataclass(frozen=True)
class Watermarks:
    scale_factor: int = SCALE_FACTOR_DEFAULT
    """vm.watermark_scale_factor (0: no step at all, a test setting)."""
    lowmem_pages: int = 0
    """Managed pages of every node, for min_free_kbytes; 0 keeps every min at 0."""

    def __post_init__(self) -> None:
        if self.scale_factor < 0 or self.lowmem_pages < 0:
            raise InputError(f"watermarks: scale_factor {self.scale_factor} and lowmem_pages "
                             f"{self.lowmem_pages} must be >= 0")

    def min_pages(self, present_pages: int) -> int:
        """WMARK_MIN: the zone's share of min_free_kbytes (pages_min * managed / lowmem)."""
        if not self.lowmem_pages:
            return 0
        pages_min = min_free_kbytes(self.lowmem_pages) >> (PAGE_SHIFT - 10)
        return pages_min * present_pages // self.lowmem_pages

    def step_pages(self, present_pages: int) -> int:
        """The gap between consecutive watermarks above min (the kernel's second `tmp`)."""
        return max(self.min_pages(present_pages) >> 2,
                   present_pages * self.scale_factor // 10000)

    def low_pages(self, present_pages: int) -> int:
        return self.min_pages(present_pages) + self.step_pages(present_pages)

    def high_pages(self, present_pages: int) -> int:
        return self.min_pages(present_pages) + 2 * self.step_pages(present_pages)

    def promo_pages(self, present_pages: int) -> int:
        return self.min_pages(present_pages) + 3 * self.step_pages(present_pages)


NO_WATERMARKS = Watermarks(scale_factor=0)
