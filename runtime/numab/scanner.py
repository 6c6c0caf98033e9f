"""One task_numa_work pass: mark the next stretch of the address space PROT_NONE.

The process's address space is one VMA holding the workload's pages 0..P-1 in virtual order
(page p at BASE_VADDR + p * 4 KiB, BASE_VADDR 2 MiB aligned, runtime/workloads.py). A pass
(kernel/sched/fair.c task_numa_work, mm/mprotect.c change_prot_numa / change_pte_range,
docs/kernel-model.md §f.1-f.2):
- starts at mm.numa_scan_offset; when no VMA lies at or after it, the scan sequence is
  bumped and the pass starts again at 0 (reset_ptenuma_scan);
- the VMA's numab state is created at its first encounter (next_scan = now + scan_delay);
  once the sequence is non-zero the VMA is skipped until then, which ends the pass with a
  reset;
- walks chunks [start, end) with end = the next 2 MiB boundary at or after start + the
  remaining budget, cut at the VMA's end; in each chunk every mapped page that is not
  PROT_NONE yet and may be hinted gets PROT_NONE (in tiering-only mode, mode 2, top-tier
  pages may not: folio_can_map_prot_numa), and a lower-tier folio gets the scan time
  stamped (pte.py); numa_pte_updates counts the pages changed;
- the budget (scan_size in pages) loses a chunk's whole size when the chunk changed
  anything; the virtual budget (8 x scan_size) loses it always; the pass stops when either
  runs out (numa_scan_offset = the end of the last chunk) or at the VMA's end (the VMA is
  done for this sequence: reset, offset 0). So a pass marks what needs marking in the next
  ~256 MB that has anything to mark, skipping up to 2 GB of already-marked or top-tier
  pages.
Shared code of both engines (numpy, not a per-sample rule).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from generated.ibs_mprof import PAGE_SHIFT
from runtime.jiffies import INITIAL_JIFFIES, jiffies_to_msecs
from runtime.nodemap import NodeMap
from runtime.numab import pte
from runtime.numab.pacing import MM_SEQ, SCAN_OFFSET, VMA_NEXT_SCAN
from runtime.numab.tunables import NumabTunables

HPAGE_SHIFT = 21
HPAGE_PAGES = 1 << (HPAGE_SHIFT - PAGE_SHIFT)
"""Chunks end on 2 MiB (PMD) boundaries."""
VIRT_FACTOR = 8
"""task_numa_work walks at most 8 x scan_size of virtual space per pass."""


class PassResult(NamedTuple):
    """What one pass did: the pages it marked (in scan order), the chunks it walked
    ([start, end) page ranges), and whether it ended with a reset (sequence bumped)."""

    marked: npt.NDArray[np.int64]
    chunks: list[tuple[int, int]]
    wrapped: bool


def _reset(task: npt.NDArray[np.int64]) -> None:
    """reset_ptenuma_scan: the next sequence starts at address 0."""
    task[MM_SEQ] += 1
    task[SCAN_OFFSET] = 0


def scan_pass(task: npt.NDArray[np.int64], words: npt.NDArray[np.uint32],
              page_pfn: npt.NDArray[np.int64], nodemap: NodeMap, tunables: NumabTunables,
              run_ms: int) -> PassResult:
    """task_numa_work's pass at run_ms over pages 0..words.size-1 (page_pfn: each page's PFN,
    negative where none is mapped). Changes `words` and the task's offset and sequence."""
    now = INITIAL_JIFFIES + run_ms
    total = words.size
    empty = np.zeros(0, dtype=np.int64)
    if total == 0:
        _reset(task)
        return PassResult(empty, [], True)
    start = int(task[SCAN_OFFSET])
    if start >= total:
        _reset(task)
        start = 0
    if task[VMA_NEXT_SCAN] == 0:
        task[VMA_NEXT_SCAN] = now + tunables.scan_delay_ms
    if task[MM_SEQ] and now - task[VMA_NEXT_SCAN] < 0:
        _reset(task)  # the VMA is still in its scan delay: nothing else to scan
        return PassResult(empty, [], True)
    pages = tunables.scan_pages
    virtpages = VIRT_FACTOR * pages
    marked: list[npt.NDArray[np.int64]] = []
    chunks: list[tuple[int, int]] = []
    now_ms = jiffies_to_msecs(now)
    while True:
        end = min(-(-(start + pages) // HPAGE_PAGES) * HPAGE_PAGES, total)
        changed = _mark(words, page_pfn, nodemap, tunables, start, end, now_ms)
        chunks.append((start, end))
        if changed.size:
            marked.append(changed)
            pages -= end - start
        virtpages -= end - start
        start = end
        if pages <= 0 or virtpages <= 0:
            task[SCAN_OFFSET] = start
            return PassResult(np.concatenate(marked) if marked else empty, chunks, False)
        if end == total:
            _reset(task)  # the VMA is done for this sequence and no other VMA follows
            return PassResult(np.concatenate(marked) if marked else empty, chunks, True)


def _mark(words: npt.NDArray[np.uint32], page_pfn: npt.NDArray[np.int64], nodemap: NodeMap,
          tunables: NumabTunables, start: int, end: int, now_ms: int) -> npt.NDArray[np.int64]:
    """change_prot_numa on pages [start, end): the pages it changed."""
    pfn = page_pfn[start:end]
    nid = nodemap.nodes_of(pfn)
    top = nodemap.toptier_of(nid)
    hinted = (words[start:end] & np.uint32(pte.PROT_NONE)) != 0
    eligible = (pfn >= 0) & ~hinted & ~top  # tiering-only mode: the top tier is not scanned
    changed = np.flatnonzero(eligible) + start
    if changed.size:
        stamp = np.full(changed.size, tunables.tiering)  # every eligible page is lower tier
        pte.mark_words(words, changed, stamp, now_ms, tunables.last_cpupid_shift)
    return changed
