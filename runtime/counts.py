"""Named event counts kept in an int64 array, so compiled loops can bump them by index.

The reference reads and bumps them by name (`counts["recorded"] += 1`); the fast engine's
compiled loops add to `counts.array[i]` where i is the name's position; both see one set of
numbers.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import numpy.typing as npt


class NamedCounts:
    def __init__(self, names: Sequence[str]) -> None:
        self.names = tuple(names)
        self.index = {name: i for i, name in enumerate(self.names)}
        self.array: npt.NDArray[np.int64] = np.zeros(len(self.names), dtype=np.int64)

    def __getitem__(self, name: str) -> int:
        return int(self.array[self.index[name]])

    def __setitem__(self, name: str, value: int) -> None:
        self.array[self.index[name]] = value

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def items(self) -> list[tuple[str, int]]:
        return [(name, int(v)) for name, v in zip(self.names, self.array.tolist(), strict=True)]

    def values(self) -> list[int]:
        return [int(v) for v in self.array.tolist()]

    def as_dict(self) -> dict[str, int]:
        return dict(self.items())

    def total(self) -> int:
        return int(self.array.sum())
