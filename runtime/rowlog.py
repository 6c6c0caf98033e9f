"""A log of named-tuple rows of ints kept as int64 columns.

kmigrated promotes in batches of up to kmigrated_batch_nr + 1 pages: appending a batch as a
few column extends costs a fraction of building one tuple per row (kswapd's demotions, rarer,
are appended row by row), and readers that want arrays
(placement sync, metrics) get them in one copy. Iterating or indexing still gives
the named-tuple rows, so tests and reports read it like a list.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator, Sequence
from typing import Any, Generic, NamedTuple, TypeVar, overload

import numpy as np
import numpy.typing as npt

R = TypeVar("R", bound=NamedTuple)


class RowLog(Generic[R]):
    def __init__(self, row: type[R]) -> None:
        self.row = row
        self.fields: tuple[str, ...] = row._fields
        self._cols = [array("q") for _ in self.fields]

    def __len__(self) -> int:
        return len(self._cols[0])

    def append(self, row: R) -> None:
        for col, value in zip(self._cols, row, strict=True):
            col.append(value)

    def extend(self, rows: RowLog[R]) -> None:
        for mine, theirs in zip(self._cols, rows._cols, strict=True):
            mine.extend(theirs)

    def extend_columns(self, count: int,
                       **values: int | Sequence[int] | npt.NDArray[np.int64]) -> None:
        """Append `count` rows given field by field: a sequence or an int64 array, or an int
        for every row."""
        for name, col in zip(self.fields, self._cols, strict=True):
            value = values[name]
            if isinstance(value, int):
                col.extend(array("q", [value]) * count)
                continue
            if len(value) != count:
                raise ValueError(f"{name}: {len(value)} values for {count} rows")
            if isinstance(value, np.ndarray):
                col.frombytes(value.astype(np.int64, copy=False).tobytes())
            else:
                col.extend(array("q", value))  # twice as fast as extending from a list

    def column(self, name: str, start: int = 0) -> npt.NDArray[np.int64]:
        """One field of rows start.. as an int64 array (a copy: an array that exports its
        buffer could no longer grow)."""
        col = self._cols[self.fields.index(name)]
        if start >= len(col):
            return np.zeros(0, dtype=np.int64)
        return np.frombuffer(col, dtype=np.int64)[start:].copy()

    def __iter__(self) -> Iterator[R]:
        return map(self.row._make, zip(*self._cols, strict=True))

    @overload
    def __getitem__(self, index: int) -> R: ...

    @overload
    def __getitem__(self, index: slice) -> list[R]: ...

    def __getitem__(self, index: int | slice) -> R | list[R]:
        if isinstance(index, slice):
            return list(map(self.row._make, zip(*(c[index] for c in self._cols), strict=True)))
        return self.row._make(c[index] for c in self._cols)

    def __eq__(self, other: Any) -> bool:
        if isinstance(other, RowLog):
            return self.fields == other.fields and self._cols == other._cols
        if isinstance(other, list):
            return list(self) == other
        return NotImplemented

    def __repr__(self) -> str:
        return f"RowLog({self.row.__name__}, {len(self)} rows)"
