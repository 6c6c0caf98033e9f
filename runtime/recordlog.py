"""Every pghot_record_access call the driver's work made, as typed columns.

The reference appends one call at a time (into array tails, cheap per call); the fast engine
hands over a whole block's numpy columns, which are kept as they are (no copy into a
growing buffer). Readers get numpy arrays: `column(name, start)` joins only the chunks from
row `start` on, so the timeline reads each tick's new rows without touching older ones.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

FIELDS: dict[str, tuple[str, type[np.generic]]] = {
    "sample_ms": ("q", np.int64),  # jiffies stamped by the NMI handler
    "drain_ms": ("d", np.float64),  # when the work ran
    "cpu": ("i", np.int32),
    "pfn": ("q", np.int64),
    "page": ("q", np.int64),  # -1: no page at that PFN
    "ready": ("b", np.int8),  # the call left the record migrate-ready
}


class _Column:
    """numpy chunks in row order, then a tail of rows appended one at a time."""

    def __init__(self, code: str, dtype: type[np.generic]) -> None:
        self.code, self.dtype = code, np.dtype(dtype)
        self.chunks: list[npt.NDArray[Any]] = []
        self.starts: list[int] = []  # first row of each chunk
        self.rows = 0  # rows in the chunks
        self.tail = array(code)

    def seal(self) -> None:
        """Move the tail into a chunk of its own."""
        if self.tail:
            view = np.frombuffer(self.tail, dtype=self.dtype)
            tail = view.copy()
            del view  # release the buffer, so the tail can shrink in place
            del self.tail[:]  # in place: RecordLog keeps its bound append
            self.add(tail)

    def add(self, values: npt.NDArray[Any]) -> None:
        self.seal()
        if values.size:
            self.chunks.append(values)
            self.starts.append(self.rows)
            self.rows += values.size

    def read(self, start: int) -> npt.NDArray[Any]:
        self.seal()
        if start >= self.rows:
            return np.zeros(0, dtype=self.dtype)
        first = int(np.searchsorted(self.starts, start, side="right")) - 1
        offset = start - self.starts[first]
        parts = self.chunks[first:]
        joined = np.concatenate(parts) if len(parts) > 1 else parts[0]
        if first == 0 and len(parts) > 1:  # a whole-column read: keep it as one chunk
            self.chunks, self.starts = [joined], [0]
        return joined[offset:]


class RecordLog:
    def __init__(self) -> None:
        self._columns = {name: _Column(code, dtype) for name, (code, dtype) in FIELDS.items()}
        self._append: list[Callable[[Any], None]] = [
            col.tail.append for col in self._columns.values()]

    def __len__(self) -> int:
        pfn = self._columns["pfn"]
        return pfn.rows + len(pfn.tail)

    def append(self, sample_ms: int, drain_ms: float, cpu: int, pfn: int, page: int,
               ready: bool) -> None:
        for add, value in zip(self._append, (sample_ms, drain_ms, cpu, pfn, page, ready),
                              strict=True):
            add(value)

    def extend(self, **columns: npt.NDArray[Any]) -> None:
        """Append rows given as one array per field (all of one length), converted to the
        field's type where they are not of it already; the arrays are kept, not copied."""
        if set(columns) != set(FIELDS):
            raise ValueError(f"record columns {sorted(columns)}, expected {sorted(FIELDS)}")
        sizes = {values.size for values in columns.values()}
        if len(sizes) != 1:
            raise ValueError(f"record columns of different lengths {sorted(sizes)}")
        for name, values in columns.items():
            col = self._columns[name]
            if values.dtype == np.bool_ and col.dtype == np.int8:
                values = values.view(np.int8)
            col.add(np.ascontiguousarray(values, dtype=col.dtype))

    def column(self, name: str, start: int = 0) -> npt.NDArray[Any]:
        """Rows start.. of one field (do not write to it: it may be the log's own memory)."""
        return self._columns[name].read(start)
