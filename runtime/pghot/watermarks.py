"""Zone watermarks of a node, shared by promotion (pghot) and demotion (kswapd model).

The model has one zone per node. The kernel ladder is min < low < high < promo with equal
steps above min (mm/page_alloc.c __setup_per_zone_wmarks: low = min + tmp, high = low + tmp,
promo = high + tmp). We take min = 0 and tmp = present_pages // scale_divisor, so with the
default divisor 64: low = 1/64, high = 2/64, promo = 3/64 of the node. scale_divisor = 0 turns
every watermark into 0 (promotion then only needs free pages, demotion never triggers).

Who reads what:
- pgdat_free_space_enough: free > promo + max(1 GiB, present/16)       (pghot promotion)
- migrate_balanced_pgdat (in migrate_misplaced_folio_prepare): free > high + nr_pages
- kswapd model: woken when free < low (or by a failed promotion), demotes until free >= promo
  (tiering mode balances a node at the promo watermark, see demotion.py)
Every "free > mark" is zone_watermark_ok's strict test (order 0: free <= mark fails).
"""

from __future__ import annotations

from dataclasses import dataclass

from runtime.errors import InputError


@dataclass(frozen=True)
class Watermarks:
    scale_divisor: int = 64

    def __post_init__(self) -> None:
        if self.scale_divisor < 0:
            raise InputError(f"watermarks.scale_divisor = {self.scale_divisor} must be >= 0")

    def step_pages(self, present_pages: int) -> int:
        """The gap between consecutive watermarks (kernel `tmp`)."""
        return present_pages // self.scale_divisor if self.scale_divisor else 0

    def low_pages(self, present_pages: int) -> int:
        return self.step_pages(present_pages)

    def high_pages(self, present_pages: int) -> int:
        return 2 * self.step_pages(present_pages)

    def promo_pages(self, present_pages: int) -> int:
        return 3 * self.step_pages(present_pages)


NO_WATERMARKS = Watermarks(scale_divisor=0)
