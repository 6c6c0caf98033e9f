"""A log of named-tuple rows kept as typed columns: the one log type of the runtime.

pghot's calls, kmigrated's promotions and kswapd's demotions are logged here. Rows come one
at a time (into array tails, cheap per row) or as whole columns (a block's numpy arrays, kept
as they are, or kmigrated's batch of 513); readers get numpy arrays of any field from any row
on (`column(name, start)`), so an observer reads each tick's new rows without touching older
ones. `drop(upto)` forgets the rows before upto: a streaming reader calls it once it has
summarised them, so a run's memory does not grow with simulated time. Row numbers keep
counting from the first row ever logged. Iterating or indexing gives the named-tuple rows,
so tests read it like a list.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Generic, NamedTuple, TypeVar, overload

import numpy as np
import numpy.typing as npt

R = TypeVar("R", bound=NamedTuple)
_CODES = {np.dtype(np.int64): "q", np.dtype(np.float64): "d", np.dtype(np.int32): "i",
          np.dtype(np.int8): "b"}


class _Column:
    """numpy chunks in row order, then a tail of rows appended one at a time."""

    def __init__(self, dtype: np.dtype[Any]) -> None:
        self.dtype = dtype
        self.chunks: list[npt.NDArray[Any]] = []
        self.starts: list[int] = []  # first row of each chunk
        self.rows = 0  # rows in the chunks (counted from the first row ever)
        self.tail = array(_CODES[dtype])

    def seal(self) -> None:
        """Move the tail into a chunk of its own."""
        if self.tail:
            view = np.frombuffer(self.tail, dtype=self.dtype)
            tail = view.copy()
            del view  # release the buffer, so the tail can shrink in place
            del self.tail[:]
            self.add(tail)

    def add(self, values: npt.NDArray[Any]) -> None:
        self.seal()
        if values.size:
            self.chunks.append(values)
            self.starts.append(self.rows)
            self.rows += values.size

    def read(self, start: int) -> npt.NDArray[Any]:
        self.seal()
        if start >= self.rows or not self.chunks:
            return np.zeros(0, dtype=self.dtype)
        first = max(int(np.searchsorted(self.starts, start, side="right")) - 1, 0)
        offset = start - self.starts[first]
        if offset < 0:
            raise IndexError(f"row {start} was dropped (rows from {self.starts[0]} are kept)")
        parts = self.chunks[first:]
        joined = np.concatenate(parts) if len(parts) > 1 else parts[0]
        if len(parts) > 1:  # keep it as one chunk for the next whole read
            self.chunks[first:], self.starts[first:] = [joined], [self.starts[first]]
        return joined[offset:]

    def drop(self, upto: int) -> None:
        self.seal()
        while self.chunks and self.starts[0] + self.chunks[0].size <= upto:
            self.chunks.pop(0)
            self.starts.pop(0)
        if self.chunks and self.starts[0] < upto:
            cut = upto - self.starts[0]
            self.chunks[0] = self.chunks[0][cut:].copy()
            self.starts[0] = upto


class ColumnLog(Generic[R]):
    def __init__(self, row: type[R], dtypes: Mapping[str, type[Any]] | None = None) -> None:
        """Rows of type `row`; each field an int64 column unless dtypes says otherwise."""
        self.row = row
        self.fields: tuple[str, ...] = row._fields
        given = dict(dtypes or {})
        self._columns = [_Column(np.dtype(given.get(name, np.int64))) for name in self.fields]
        self._append = [col.tail.append for col in self._columns]
        self.dropped = 0
        """Rows before this one are forgotten (drop)."""

    def __len__(self) -> int:
        """Rows ever logged (dropped ones included: row numbers never restart)."""
        first = self._columns[0]
        return first.rows + len(first.tail)

    def append(self, row: R | Sequence[Any]) -> None:
        for add, value in zip(self._append, row, strict=True):
            add(value)

    def extend(self, rows: ColumnLog[R] | None = None, /,
               **columns: npt.NDArray[Any]) -> None:
        """Append another log's kept rows, or rows given as one array per field (all of one
        length; converted to the field's type where needed; the arrays are kept, not
        copied, when they are of it already)."""
        if rows is not None:
            columns = {name: rows.column(name, rows.dropped) for name in rows.fields}
        if set(columns) != set(self.fields):
            raise ValueError(f"columns {sorted(columns)}, expected {sorted(self.fields)}")
        sizes = {np.size(values) for values in columns.values()}
        if len(sizes) != 1:
            raise ValueError(f"columns of different lengths {sorted(sizes)}")
        for name, col in zip(self.fields, self._columns, strict=True):
            values = np.asarray(columns[name])
            if values.dtype == np.bool_ and col.dtype == np.int8:
                values = values.view(np.int8)
            col.add(np.ascontiguousarray(values, dtype=col.dtype))

    def extend_columns(self, count: int,
                       **values: int | Sequence[int] | npt.NDArray[Any]) -> None:
        """Append `count` rows given field by field: a sequence or an array, or an int for
        every row."""
        columns = {}
        for name in self.fields:
            value = values[name]
            if isinstance(value, int):
                columns[name] = np.full(count, value, dtype=np.int64)
                continue
            if len(value) != count:
                raise ValueError(f"{name}: {len(value)} values for {count} rows")
            columns[name] = np.asarray(value)
        self.extend(None, **columns)

    def column(self, name: str, start: int = 0) -> npt.NDArray[Any]:
        """Rows start.. of one field (do not write to it: it may be the log's own memory)."""
        if start < self.dropped:
            raise IndexError(f"rows before {self.dropped} were dropped, asked from {start}")
        return self._columns[self.fields.index(name)].read(start)

    def blocks(self, names: Sequence[str],
               start: int = 0) -> Iterator[tuple[npt.NDArray[Any], ...]]:
        """Rows start.. of the named fields, a tuple of arrays per chunk as they were logged
        (views, not copies: do not write to them). A reader that goes through rows in order
        needs no joined column: joining a tick's ~600 k pghot calls cost the 64-CPU
        microbench ~3% of its run. Where the fields' chunks do not line up (rows appended one
        at a time, sealed at different reads), one tuple of whole columns."""
        if start < self.dropped:
            raise IndexError(f"rows before {self.dropped} were dropped, asked from {start}")
        cols = [self._columns[self.fields.index(name)] for name in names]
        for col in cols:
            col.seal()
        first = cols[0]
        sizes = [chunk.size for chunk in first.chunks]  # (every column holds the same rows)
        if any([chunk.size for chunk in col.chunks] != sizes for col in cols[1:]):
            yield tuple(col.read(start) for col in cols)
            return
        for j, row in enumerate(first.starts):
            if row + first.chunks[j].size > start:
                yield tuple(col.chunks[j][max(start - row, 0):] for col in cols)

    def drop(self, upto: int) -> None:
        """Forget rows before upto (a streaming reader summarised them)."""
        upto = min(max(upto, self.dropped), len(self))
        for col in self._columns:
            col.drop(upto)
        self.dropped = upto

    def __iter__(self) -> Iterator[R]:
        cols = [self.column(name, self.dropped).tolist() for name in self.fields]
        return map(self.row._make, zip(*cols, strict=True))

    @overload
    def __getitem__(self, index: int) -> R: ...

    @overload
    def __getitem__(self, index: slice) -> list[R]: ...

    def __getitem__(self, index: int | slice) -> R | list[R]:
        rows = list(self)
        return rows[index]

    def __eq__(self, other: Any) -> bool:
        if isinstance(other, ColumnLog):
            return self.fields == other.fields and list(self) == list(other)
        if isinstance(other, list):
            return list(self) == other
        return NotImplemented

    def __repr__(self) -> str:
        return f"ColumnLog({self.row.__name__}, {len(self)} rows, {self.dropped} dropped)"
