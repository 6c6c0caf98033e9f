"""Find the records in a block of a perf.data data section.

A record says its own size (perf_event_header.size), so where the next one starts is known
only once this one is read: framing is a walk, one step per record. It runs compiled
(runtime/jit.py), so a 1 GB file of ~10 million records is framed in well under a second;
everything after framing works on the arrays it fills, with numpy. `frame_records` is also
called as plain Python by tests, which hold the two equal.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from runtime.perf.abi import RECORD_HEADER_BYTES

FRAME_OK = 0
FRAME_BAD_SIZE = 1
"""A header whose size is below the 8 bytes of the header itself: the walk cannot go on."""


def frame_records(buf: npt.NDArray[np.uint8], end: int, offsets: npt.NDArray[np.int64],
                  sizes: npt.NDArray[np.int32], types: npt.NDArray[np.int64],
                  misc: npt.NDArray[np.int32]) -> tuple[int, int, int]:
    """Walk the records of buf[:end] from offset 0, filling the arrays (at most their
    length). Returns (records found, offset where the walk stopped, status): it stops at a
    record that does not end inside buf[:end] (the caller reads on and comes back) or at a
    size below the header's (FRAME_BAD_SIZE, at the returned offset)."""
    pos = 0
    count = 0
    status = FRAME_OK
    while pos + RECORD_HEADER_BYTES <= end and count < offsets.size:
        size = int(buf[pos + 6]) | int(buf[pos + 7]) << 8
        if size < RECORD_HEADER_BYTES:
            status = FRAME_BAD_SIZE
            break
        if pos + size > end:
            break
        offsets[count] = pos
        sizes[count] = size
        types[count] = (int(buf[pos]) | int(buf[pos + 1]) << 8 | int(buf[pos + 2]) << 16
                        | int(buf[pos + 3]) << 24)
        misc[count] = int(buf[pos + 4]) | int(buf[pos + 5]) << 8
        count += 1
        pos += size
    return count, pos, status


class Frames(NamedTuple):
    """The records found in one block: offset into the block, size, type and misc."""

    offsets: npt.NDArray[np.int64]
    sizes: npt.NDArray[np.int32]
    types: npt.NDArray[np.int64]
    misc: npt.NDArray[np.int32]
    stop: int
    status: int


_compiled: list[Callable[..., tuple[int, int, int]]] = []


def frame(buf: npt.NDArray[np.uint8], end: int, compiled: bool = True) -> Frames:
    """The records of buf[:end] (compiled walk unless told otherwise)."""
    limit = max(end // RECORD_HEADER_BYTES, 1)
    offsets = np.empty(limit, dtype=np.int64)
    sizes = np.empty(limit, dtype=np.int32)
    types = np.empty(limit, dtype=np.int64)
    misc = np.empty(limit, dtype=np.int32)
    walk = frame_records
    if compiled:
        if not _compiled:
            from runtime.jit import compiled as jit

            _compiled.append(jit(frame_records))
        walk = _compiled[0]
    count, stop, status = walk(buf, end, offsets, sizes, types, misc)
    return Frames(offsets[:count], sizes[:count], types[:count], misc[:count], stop, status)
