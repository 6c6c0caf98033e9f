"""What NUMA balancing keeps per page: the PTE's PROT_NONE hint and the folio's access time.

One uint32 word a page (4 bytes; `PageWords`): bit 31 says the page's PTE is a NUMA-hinting
PROT_NONE one (an access traps into do_numa_page), bits 0..LAST_CPUPID_SHIFT-1 are the folio's
_last_cpupid field, which in tiering mode holds the access time of a lower-tier folio
(include/linux/mm.h folio_xchg_access_time, PAGE_ACCESS_TIME_MASK):
- the stored value is (ms clock >> B) masked to the field, where B =
  PAGE_ACCESS_TIME_BUCKETS = 12 - LAST_CPUPID_SHIFT when the field is narrower than 12 bits
  (so that at least ~4 s fit), else 0; it is read back shifted left by B;
- the ms clock is jiffies_to_msecs (u32); numa_hint_fault_latency is (now - stored) masked
  to PAGE_ACCESS_TIME_MASK = field mask << B, so an age wraps every 2^(shift + B) ms
  (~35 min with 21 bits);
- a fresh folio's field is all ones (page_cpupid_reset_last).
Which events touch the word (docs/kernel-model.md §f.2-f.4):
- change_pte_range sets PROT_NONE on a page that is not PROT_NONE yet; when the folio uses
  access time (tiering mode, lower tier) folio_can_map_prot_numa stamps the scan time;
- do_numa_page restores the PTE (PROT_NONE cleared); in tiering mode the fault's
  numa_hint_fault_latency swaps the fault time in (mainline NUMAB2 only: the pghot path never
  calls it);
- a migration rebuilds the PTE from the VMA's protection (remove_migration_pte: the hint is
  gone) and folio_migrate_flags resets the field to all ones when, in tiering mode, the folio
  changes tier.
The rules are @jitable scalars: the scanner and both fault paths use them in both engines.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from generated._base import jitable

PROT_NONE = 1 << 31
"""The word's hinting-PTE bit (above any _last_cpupid field: at most 21 bits)."""
U32 = (1 << 32) - 1
PAGE_ACCESS_TIME_MIN_BITS = 12
"""The access time must hold at least 4 s: narrower fields store coarser buckets."""
FIELD_BITS_MAX = 30
"""Rules clamp the field width here (the tunable allows at most 21)."""


@jitable
def field_bits(shift: int) -> int:
    """LAST_CPUPID_SHIFT, clamped to what fits below PROT_NONE."""
    return min(max(shift, 1), FIELD_BITS_MAX)


@jitable
def access_time_buckets(shift: int) -> int:
    """PAGE_ACCESS_TIME_BUCKETS: how far the stored time is shifted right."""
    return max(PAGE_ACCESS_TIME_MIN_BITS - field_bits(shift), 0)


@jitable
def cpupid_mask(shift: int) -> int:
    """LAST_CPUPID_MASK: the field, and a fresh folio's value (all ones)."""
    return (1 << field_bits(shift)) - 1


@jitable
def access_time_mask(shift: int) -> int:
    """PAGE_ACCESS_TIME_MASK: the ages numa_hint_fault_latency can express."""
    return cpupid_mask(shift) << access_time_buckets(shift)


@jitable
def stored_time(time_ms: int, shift: int) -> int:
    """What folio_xchg_access_time writes into the field for the u32 ms clock time_ms."""
    return ((time_ms & U32) >> access_time_buckets(shift)) & cpupid_mask(shift)


@jitable
def folio_access_time(word: int, shift: int) -> int:
    """The access time a word's field hands back (shifted left by the bucket bits)."""
    return (word & cpupid_mask(shift)) << access_time_buckets(shift)


@jitable
def with_access_time(word: int, time_ms: int, shift: int) -> int:
    """The word with time_ms stored in its field (PROT_NONE kept)."""
    return (word & (U32 ^ cpupid_mask(shift))) | stored_time(time_ms, shift)


@jitable
def hint_fault_latency(now_ms: int, word: int, shift: int) -> int:
    """numa_hint_fault_latency's age of the stored time at u32 ms clock now_ms (before the
    swap): (now - stored) masked to PAGE_ACCESS_TIME_MASK."""
    return ((now_ms & U32) - folio_access_time(word, shift)) & access_time_mask(shift)


@jitable
def is_prot_none(word: int) -> int:
    return 1 if word & PROT_NONE else 0


@jitable
def restored(word: int) -> int:
    """do_numa_page's restore of the VMA protection: the hint is gone."""
    return word & (U32 ^ PROT_NONE)


@jitable
def migrated(word: int, tier_changed: int, tiering: int, shift: int) -> int:
    """A migrated page: the PTE comes back from the VMA's protection (no hint), and in
    tiering mode a folio that changes tier gets an all-ones field (folio_migrate_flags).
    Its array twin is migrate_words."""
    word = restored(word)
    if tiering and tier_changed:
        word = (word & (U32 ^ cpupid_mask(shift))) | cpupid_mask(shift)
    return word


def mark_words(words: npt.NDArray[np.uint32], pages: npt.NDArray[np.int64],
               stamp: npt.NDArray[np.bool_], now_ms: int, shift: int) -> None:
    """change_pte_range on `pages` (not PROT_NONE yet): PROT_NONE set, and where `stamp`
    (the folio uses access time) folio_can_map_prot_numa's scan time stored."""
    word = words[pages]
    keep = np.uint32(U32 ^ cpupid_mask(shift))
    word = np.where(stamp, (word & keep) | np.uint32(stored_time(now_ms, shift)), word)
    words[pages] = word | np.uint32(PROT_NONE)


def migrate_words(words: npt.NDArray[np.uint32], pages: npt.NDArray[np.int64],
                  tier_changed: npt.NDArray[np.bool_], tiering: int, shift: int) -> None:
    """`migrated` for every page of `pages` (its array twin; tests/numab/test_pte.py holds
    them equal)."""
    word = words[pages] & np.uint32(U32 ^ PROT_NONE)
    if tiering:
        word = np.where(tier_changed, word | np.uint32(cpupid_mask(shift)), word)
    words[pages] = word


def fresh_words(pages: int, shift: int) -> npt.NDArray[np.uint32]:
    """Every page mapped, no hint, field all ones (page_cpupid_reset_last)."""
    return np.full(pages, cpupid_mask(shift), dtype=np.uint32)
