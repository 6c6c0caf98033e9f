"""Pending hint faults: one per marked page, handed out in (time, page) order.

Each scan pass adds a batch (its marked pages with their first-access times, sorted); a heap
over the batches' heads merges them. A page's pending fault is identified by the page's
epoch (uint32 a page): marking, cancelling (the page migrated, so its PTE lost the hint) and
redrawing (a phase change) bump it, which turns any older event of the page stale; stale
events are dropped when they come up, and the batches are compacted when the stale ones
outnumber the live ones. Memory: 4 bytes a page plus ~20 bytes a pending fault.
"""

from __future__ import annotations

import heapq
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
MERGE_ABOVE = 64
"""Batches kept apart at most; more are merged into one (amortised sorting)."""


class Faults(NamedTuple):
    """Hint faults in (time, page) order: when (ms of the run), which page, which CPU."""

    time_ms: F64
    page: I64
    cpu: I64

    @staticmethod
    def empty() -> Faults:
        return Faults(np.zeros(0), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))

    def __len__(self) -> int:
        return int(self.page.size)

    def head(self, count: int) -> Faults:
        return Faults(self.time_ms[:count], self.page[:count], self.cpu[:count])

    def tail(self, count: int) -> Faults:
        return Faults(self.time_ms[count:], self.page[count:], self.cpu[count:])


class _Batch(NamedTuple):
    time_ms: F64
    page: I64
    cpu: I64
    epoch: npt.NDArray[np.uint32]


def _sorted(time_ms: F64, page: I64, cpu: I64, epoch: npt.NDArray[np.uint32]) -> _Batch:
    order = np.lexsort((page, time_ms))
    return _Batch(time_ms[order], page[order], cpu[order], epoch[order])


class FaultQueue:
    """The pending hint fault of every marked page."""

    def __init__(self, pages: int) -> None:
        self.epoch = np.zeros(pages, dtype=np.uint32)
        """Bumped whenever a page's pending fault is replaced or cancelled."""
        self.pending = np.zeros(pages, dtype=bool)
        """Pages with a pending fault (marked, and with a finite first-access time)."""
        self._batches: dict[int, tuple[_Batch, int]] = {}  # id -> (batch, cursor)
        self._heap: list[tuple[float, int, int]] = []  # (head time, head page, batch id)
        self._next_id = 0
        self._queued = 0  # events held in batches, stale ones included

    @property
    def live(self) -> int:
        return int(np.count_nonzero(self.pending))

    def add(self, time_ms: F64, page: I64, cpu: I64) -> None:
        """Each page's pending fault becomes the given one (replacing any it had); a page
        whose time is infinite (never accessed) has none."""
        self.epoch[page] += np.uint32(1)
        finite = np.isfinite(time_ms)
        self.pending[page] = finite
        if not finite.all():
            time_ms, page, cpu = time_ms[finite], page[finite], cpu[finite]
        if page.size:
            self._push(_sorted(time_ms, page, cpu, self.epoch[page]), 0)
        if len(self._batches) > MERGE_ABOVE or self._queued > 2 * max(self.live, 1024):
            self._compact()

    def cancel(self, page: I64) -> None:
        """The pages lose their pending fault (their PTE no longer carries the hint)."""
        self.epoch[page] += np.uint32(1)
        self.pending[page] = False

    def next_time(self) -> float:
        """Time of the earliest queued event (possibly stale: an upper bound on nothing,
        a lower bound on the next live fault); inf when none is queued."""
        return self._heap[0][0] if self._heap else float("inf")

    def take(self, until_ms: float, limit: int) -> Faults:
        """Remove and return up to `limit` live faults with time < until_ms, in (time,
        page) order."""
        parts: list[Faults] = []
        got = 0
        while got < limit and self._heap and self._heap[0][0] < until_ms:
            _, _, bid = heapq.heappop(self._heap)
            batch, cursor = self._batches.pop(bid)
            stop = self._stop(batch, cursor, until_ms)
            sel = slice(cursor, stop)
            live = batch.epoch[sel] == self.epoch[batch.page[sel]]
            index = np.flatnonzero(live)[:limit - got] + cursor
            if index.size and got + index.size == limit:
                stop = int(index[-1]) + 1  # leave the rest of the batch queued
            self._queued -= stop - cursor
            if index.size:
                part = Faults(batch.time_ms[index], batch.page[index], batch.cpu[index])
                self.pending[part.page] = False
                parts.append(part)
                got += index.size
            if stop < batch.page.size:
                self._push(batch, stop, fresh=False)
        if not parts:
            return Faults.empty()
        return parts[0] if len(parts) == 1 else Faults(
            *(np.concatenate(cols) for cols in zip(*parts, strict=True)))

    def untake(self, faults: Faults) -> None:
        """Put back faults taken and not handled (they keep their times)."""
        if len(faults):
            self.pending[faults.page] = True
            self._push(_Batch(faults.time_ms, faults.page, faults.cpu,
                              self.epoch[faults.page]), 0)

    def pending_pages(self) -> I64:
        """Every page with a live pending fault, ascending."""
        return np.flatnonzero(self.pending)

    def _stop(self, batch: _Batch, cursor: int, until_ms: float) -> int:
        """End of this batch's run that precedes every other batch's head and until_ms."""
        times = batch.time_ms
        if not self._heap or self._heap[0][0] >= until_ms:
            return cursor + int(np.searchsorted(times[cursor:], until_ms, side="left"))
        t1, p1, _ = self._heap[0]
        stop = cursor + int(np.searchsorted(times[cursor:], t1, side="left"))
        same = stop + int(np.searchsorted(times[stop:], t1, side="right"))
        stop += int(np.searchsorted(batch.page[stop:same], p1, side="left"))
        return max(stop, cursor + 1)  # an equal head elsewhere: this one may go first

    def _push(self, batch: _Batch, cursor: int, fresh: bool = True) -> None:
        bid = self._next_id
        self._next_id += 1
        self._batches[bid] = (batch, cursor)
        if fresh:
            self._queued += batch.page.size - cursor
        heapq.heappush(self._heap, (float(batch.time_ms[cursor]), int(batch.page[cursor]), bid))

    def _compact(self) -> None:
        """Merge every batch into one, without the stale events."""
        parts = []
        for batch, cursor in self._batches.values():
            sel = slice(cursor, None)
            live = batch.epoch[sel] == self.epoch[batch.page[sel]]
            parts.append(_Batch(*(col[sel][live] for col in batch)))
        self._batches.clear()
        self._heap.clear()
        self._queued = 0
        merged = _Batch(*(np.concatenate(cols) for cols in zip(*parts, strict=True))) \
            if parts else None
        if merged is not None and merged.page.size:
            self._push(_sorted(*merged), 0)
