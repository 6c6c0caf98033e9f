"""The per-page word: the PROT_NONE hint and the folio's access time (include/linux/mm.h
folio_xchg_access_time, PAGE_ACCESS_TIME_MASK), and the array twins of the scalar rules."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.numab import pte


def test_field_width_and_buckets() -> None:
    assert pte.cpupid_mask(21) == 2**21 - 1 and pte.access_time_buckets(21) == 0
    assert pte.access_time_buckets(8) == 4  # < 12 bits: coarser buckets, 16 ms each
    assert pte.access_time_mask(8) == 0xFF0
    assert pte.fresh_words(3, 21).tolist() == [2**21 - 1] * 3  # page_cpupid_reset_last


def test_latency_is_the_masked_u32_age() -> None:
    word = pte.with_access_time(0, 2**32 - 5, 21)  # stored just before the clock wraps
    assert pte.hint_fault_latency(10, word, 21) == 15  # the u32 difference
    word = pte.with_access_time(0, 1000, 21)
    assert pte.hint_fault_latency(1000 + 2**21 + 7, word, 21) == 7  # 21 bits alias at ~35 min


def test_latency_in_buckets_when_the_field_is_narrow() -> None:
    word = pte.with_access_time(0, 1000, 8)  # stored as 1000 >> 4 = 62, read back as 992
    assert pte.folio_access_time(word, 8) == 992
    assert pte.hint_fault_latency(1040, word, 8) == 48
    # 4124 ms old: the 12-bit mask wraps at 4096 ms, and 28 ms is one 16 ms bucket
    assert pte.hint_fault_latency(1000 + 4096 + 20, word, 8) == 16


def test_hint_bit_is_independent_of_the_time() -> None:
    word = pte.with_access_time(pte.PROT_NONE, 1234, 21)
    assert pte.is_prot_none(word) == 1
    restored = pte.restored(word)
    assert pte.is_prot_none(restored) == 0
    assert pte.folio_access_time(restored, 21) == 1234


@settings(max_examples=200, deadline=None)
@given(words=st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=30),
       changed=st.lists(st.booleans(), min_size=30, max_size=30),
       tiering=st.integers(0, 1), shift=st.integers(8, 21))
def test_migrate_words_is_the_twin_of_migrated(words: list[int], changed: list[bool],
                                                tiering: int, shift: int) -> None:
    array = np.array(words, dtype=np.uint32)
    pages = np.arange(len(words), dtype=np.int64)
    flags = np.array(changed[:len(words)])
    pte.migrate_words(array, pages, flags, tiering, shift)
    want = [pte.migrated(w, int(c), tiering, shift) for w, c in zip(words, flags, strict=True)]
    assert array.tolist() == want


@settings(max_examples=200, deadline=None)
@given(words=st.lists(st.integers(0, 2**31 - 1), min_size=1, max_size=30),
       stamp=st.lists(st.booleans(), min_size=30, max_size=30),
       now=st.integers(0, 2**32 - 1), shift=st.integers(8, 21))
def test_mark_words_sets_the_hint_and_stamps_the_scan_time(
        words: list[int], stamp: list[bool], now: int, shift: int) -> None:
    array = np.array(words, dtype=np.uint32)
    pages = np.arange(len(words), dtype=np.int64)
    flags = np.array(stamp[:len(words)])
    pte.mark_words(array, pages, flags, now, shift)
    for got, old, s in zip(array.tolist(), words, flags, strict=True):
        assert pte.is_prot_none(got)
        want = pte.with_access_time(old, now, shift) if s else old
        assert got == want | pte.PROT_NONE
