"""Per-section slots in one flat numpy array: the indexing that pghot's hot maps and the page
placement share.

Memory comes in sections of PAGES_PER_SECTION PFNs. A structure that keeps one value per PFN
of only some sections stores those sections back to back in one flat array; a shift table
gives each section the amount to add to a PFN to get its flat index. One table lookup and one
add per PFN, so a batch of PFNs is indexed in two numpy passes whatever sections it spans.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from generated._base import jitable
from generated.pghot import PAGES_PER_SECTION

SECTION_SHIFT = PAGES_PER_SECTION.bit_length() - 1
assert PAGES_PER_SECTION == 1 << SECTION_SHIFT, "sections are a power of two pages"
NO_MAP_SHIFT = -(1 << 63)
"""Added to a PFN whose section has no slot: the int64 minimum, so pfn + it is negative
for every PFN from 0 to 2**63 - 1 (then clamped to -1)."""

I64 = npt.NDArray[np.int64]


def shift_table(slot_of_section: I64) -> I64:
    """Shift per section from its slot (-1: no slot), with NO_MAP_SHIFT for slot-less ones.
    Give the table one section more than any PFN can reach: clipped lookups land there."""
    shifts = (slot_of_section - np.arange(slot_of_section.size)) * PAGES_PER_SECTION
    table: I64 = np.where(slot_of_section >= 0, shifts, NO_MAP_SHIFT)
    return table


@jitable
def flat_index_of(pfn: int, shift: I64) -> int:
    """Flat index of one PFN, or -1 where its section has no slot (or the PFN is negative);
    the scalar twin of flat_index (tests/test_twins.py holds them equal)."""
    if pfn < 0:
        return -1
    section = min(pfn >> SECTION_SHIFT, shift.size - 1)  # past the table: its last entry
    index: int = pfn + shift[section]
    return index if index >= 0 else -1


def flat_index(pfns: I64, shift: I64) -> I64:
    """Flat index of each PFN, or -1 where its section has no slot (or the PFN is negative);
    the array twin of flat_index_of."""
    index: I64 = pfns + shift.take(pfns >> SECTION_SHIFT, mode="clip")
    np.maximum(index, -1, out=index)
    if pfns.size and pfns.min() < 0:  # clip put negative PFNs in the first section
        index[pfns < 0] = -1
    return index
