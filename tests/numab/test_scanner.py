"""task_numa_work's pass: chunks, budgets, skips, wrap-around, numa_pte_updates' basis."""

from __future__ import annotations

import numpy as np

from runtime.numab import pte
from runtime.numab.pacing import MM_SEQ, SCAN_OFFSET, VMA_NEXT_SCAN, new_task
from runtime.numab.scanner import HPAGE_PAGES, scan_pass
from runtime.numab.tunables import NumabTunables
from tests.numab.helpers import box

TUNABLES = NumabTunables(scan_size_mb=1)  # a budget of 256 pages, chunks end on 512


def setup(pages: int, placement: str = "cxl") -> tuple:
    b = box(pages, placement=placement)
    task, _ = new_task(TUNABLES, 2)
    words = pte.fresh_words(pages, TUNABLES.last_cpupid_shift)
    return b, task, words


def test_pass_marks_to_the_next_2mb_boundary_and_stamps_the_time() -> None:
    b, task, words = setup(1200)
    result = scan_pass(task, words, b.page_pfn(), b.nodemap, TUNABLES, 1001)
    assert HPAGE_PAGES == 512
    assert result.chunks == [(0, 512)] and not result.wrapped
    assert result.marked.tolist() == list(range(512))
    assert task[SCAN_OFFSET] == 512 and task[MM_SEQ] == 0
    marked = words[:512]
    hint = np.uint32(pte.PROT_NONE)
    assert (marked & hint).all() and not (words[512:] & hint).any()
    stamp = pte.stored_time((2**32 - 300_000 + 1001) & (2**32 - 1), 21)
    assert set((marked & np.uint32(2**21 - 1)).tolist()) == {stamp}


def test_pass_at_the_end_of_the_vma_wraps() -> None:
    b, task, words = setup(1200)
    scan_pass(task, words, b.page_pfn(), b.nodemap, TUNABLES, 1001)
    second = scan_pass(task, words, b.page_pfn(), b.nodemap, TUNABLES, 1100)
    assert second.chunks == [(512, 1024)]
    third = scan_pass(task, words, b.page_pfn(), b.nodemap, TUNABLES, 1200)
    assert third.chunks == [(1024, 1200)] and third.wrapped  # cut at the VMA end: reset
    assert task[SCAN_OFFSET] == 0 and task[MM_SEQ] == 1
    assert (words & np.uint32(pte.PROT_NONE)).all()


def test_already_marked_chunks_cost_only_the_virtual_budget() -> None:
    """With everything marked, a pass walks 8 x 256 pages of chunks (4 of 512) and
    changes nothing; the fifth chunk would pass the virtual budget."""
    b, task, words = setup(5000)
    words |= np.uint32(pte.PROT_NONE)
    result = scan_pass(task, words, b.page_pfn(), b.nodemap, TUNABLES, 1001)
    assert result.chunks == [(0, 512), (512, 1024), (1024, 1536), (1536, 2048)]
    assert result.marked.size == 0 and task[SCAN_OFFSET] == 2048


def test_skips_marked_pages_inside_a_chunk_and_stops_at_the_first_change() -> None:
    b, task, words = setup(5000)
    words[:1000] |= np.uint32(pte.PROT_NONE)
    result = scan_pass(task, words, b.page_pfn(), b.nodemap, TUNABLES, 1001)
    assert result.chunks == [(0, 512), (512, 1024)]
    assert result.marked.tolist() == list(range(1000, 1024))


def test_top_tier_pages_are_not_hinted_in_tiering_mode() -> None:
    """Interleaved placement: even pages on DRAM, odd ones on CXL."""
    b, task, words = setup(1024, placement="interleave")
    top = b.nodemap.toptier_of(b.nodemap.nodes_of(b.page_pfn()))
    result = scan_pass(task, words, b.page_pfn(), b.nodemap, TUNABLES, 1001)
    assert result.marked.size == 256
    assert not top[result.marked].any()
    assert not (words[top] & np.uint32(pte.PROT_NONE)).any()
    assert (words[top] == np.uint32(2**21 - 1)).all()  # no time stamped either


def test_offset_past_the_vma_restarts_at_zero_in_the_same_pass() -> None:
    b, task, words = setup(1024)
    task[VMA_NEXT_SCAN] = 2**32 - 300_000 + 1  # first scanned long ago
    task[SCAN_OFFSET] = 1024  # the last pass ended its budget exactly at the VMA end
    result = scan_pass(task, words, b.page_pfn(), b.nodemap, TUNABLES, 1001)
    assert task[MM_SEQ] == 1 and result.chunks == [(0, 512)]


def test_a_new_sequence_waits_for_the_vma_scan_delay() -> None:
    """The VMA's numab state starts at its first scan; on a later sequence it is skipped
    until scan_delay after that, and the skip ends the pass with a reset."""
    b, task, words = setup(512)
    first = scan_pass(task, words, b.page_pfn(), b.nodemap, TUNABLES, 1001)
    assert not first.wrapped and task[SCAN_OFFSET] == 512  # the budget ran out at the end
    assert task[VMA_NEXT_SCAN] - (2**32 - 300_000) == 1001 + 1000
    words[:] = np.uint32(2**21 - 1)  # all faulted meanwhile
    early = scan_pass(task, words, b.page_pfn(), b.nodemap, TUNABLES, 1500)
    assert early.marked.size == 0 and early.wrapped
    assert task[MM_SEQ] == 2  # one reset to get back to 0, one for the skipped VMA
    late = scan_pass(task, words, b.page_pfn(), b.nodemap, TUNABLES, 2001)
    assert late.marked.size == 512 and task[MM_SEQ] == 2
