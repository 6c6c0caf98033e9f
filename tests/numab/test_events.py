"""The pending-fault queue: (time, page) order across batches, cancels, hand-backs,
compaction."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.numab import events
from runtime.numab.events import FaultQueue


def add(q: FaultQueue, times: list[float], pages: list[int]) -> None:
    q.add(np.array(times), np.array(pages, dtype=np.int64),
          np.array(pages, dtype=np.int64) % 3)


def test_order_across_batches_with_ties_by_page() -> None:
    q = FaultQueue(10)
    add(q, [5.0, 1.0, 3.0], [4, 2, 6])
    add(q, [3.0, 2.0, np.inf], [5, 7, 8])  # page 8 is never accessed: no fault
    assert q.live == 5 and not q.pending[8]
    got = q.take(10.0, 100)
    assert got.time_ms.tolist() == [1.0, 2.0, 3.0, 3.0, 5.0]
    assert got.page.tolist() == [2, 7, 5, 6, 4]
    assert got.cpu.tolist() == [2, 1, 2, 0, 1]
    assert q.live == 0


def test_take_stops_before_until_and_at_the_limit() -> None:
    q = FaultQueue(10)
    add(q, [1.0, 2.0, 3.0, 4.0], [0, 1, 2, 3])
    assert q.take(3.0, 100).page.tolist() == [0, 1]  # strictly before 3.0
    assert q.take(10.0, 1).page.tolist() == [2]
    assert q.next_time() == 4.0
    assert q.take(10.0, 5).page.tolist() == [3]


def test_cancel_and_replace_make_old_events_stale() -> None:
    q = FaultQueue(10)
    add(q, [1.0, 2.0, 3.0], [0, 1, 2])
    q.cancel(np.array([1], dtype=np.int64))
    add(q, [0.5], [2])  # page 2 marked again: only the new time counts
    got = q.take(10.0, 100)
    assert got.page.tolist() == [2, 0] and got.time_ms.tolist() == [0.5, 1.0]


def test_untake_puts_faults_back_in_order() -> None:
    q = FaultQueue(10)
    add(q, [1.0, 2.0, 3.0], [0, 1, 2])
    got = q.take(10.0, 100)
    q.untake(got.tail(2))  # the third was not handled
    assert q.pending_pages().tolist() == [2]
    add(q, [2.5], [5])
    assert q.take(10.0, 100).page.tolist() == [5, 2]


@settings(max_examples=60, deadline=None)
@given(batches=st.lists(st.lists(st.tuples(st.integers(0, 40), st.integers(0, 15)),
                                 min_size=1, max_size=12), min_size=1, max_size=90),
       cancel=st.lists(st.integers(0, 15), max_size=6), limit=st.integers(1, 7))
def test_queue_hands_out_each_pages_latest_fault_in_order(
        batches: list[list[tuple[int, int]]], cancel: list[int], limit: int) -> None:
    """Against a plain dict of each page's latest fault, through merges and compactions
    (more than MERGE_ABOVE batches)."""
    q = FaultQueue(16)
    latest: dict[int, float] = {}
    for batch in batches:
        pages = list(dict.fromkeys(p for _, p in batch))  # a pass marks a page once
        times = [float(dict((p, t) for t, p in batch)[p]) for p in pages]
        add(q, times, pages)
        latest.update(zip(pages, times, strict=True))
    q.cancel(np.array(cancel, dtype=np.int64))
    for page in cancel:
        latest.pop(page, None)
    want = sorted((t, p) for p, t in latest.items())
    got: list[tuple[float, int]] = []
    while len(part := q.take(100.0, limit)):
        got += list(zip(part.time_ms.tolist(), part.page.tolist(), strict=True))
    assert got == want
    assert len(batches) <= events.MERGE_ABOVE or q._queued == 0
