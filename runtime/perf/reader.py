"""Stream a perf.data file's data section in blocks of bounded size.

The data section is read `block_bytes` at a time into one reused buffer; a record cut by the
block's end is carried to the next block (a record is at most 64 KiB). Each block is framed
(runtime/perf/framing.py), its sample records read into columns (runtime/perf/samples.py)
and its sideband records (MMAP, MMAP2, COMM, FORK) kept. So memory stays at a few times the
block size whatever the file's size. A block is handed out with its buffer, which is valid
until the next block is read.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from io import BufferedReader
from pathlib import Path
from typing import BinaryIO, cast

import numpy as np
import numpy.typing as npt

from runtime.errors import InputError
from runtime.perf import abi
from runtime.perf.framing import FRAME_BAD_SIZE, frame
from runtime.perf.header import PerfHeader, read_header
from runtime.perf.samples import AttrResolver, SampleColumns, parse_samples, u64_at
from runtime.perf.sideband import Sideband
from safeio.inputs import open_input, reason

BLOCK_BYTES = 1 << 22
"""Bytes of the data section read at a time (4 MiB)."""
MAX_RECORD = 1 << 16
"""A record's size is a u16: a block needs this much room for a record cut at its end."""
_UNSUPPORTED = {
    71: "AUX area data (PERF_RECORD_AUXTRACE)",
    66: "tracing data written in pipe mode",
}
_SIDEBAND = (abi.RECORD_MMAP, abi.RECORD_MMAP2, abi.RECORD_COMM, abi.RECORD_FORK)


@dataclass
class Block:
    """One block of the data section: its buffer, the sample columns and where each sample
    stands among the FINISHED_ROUND records (`round` = rounds finished before it)."""

    buf: npt.NDArray[np.uint8]
    file_offset: int
    samples: SampleColumns
    round: npt.NDArray[np.int64]


@dataclass
class ReadTotals:
    """What the whole data section held, filled as blocks are read."""

    records: dict[int, int] = field(default_factory=dict)
    lost: int = 0
    """Samples the kernel lost (sum of PERF_RECORD_LOST counts)."""
    rounds: int = 0


class PerfDataReader:
    """A perf.data file opened for streaming: `header`, then `blocks()` once."""

    def __init__(self, path: Path, block_bytes: int = BLOCK_BYTES) -> None:
        self.path = path
        self.block_bytes = max(block_bytes, MAX_RECORD)
        try:
            self._handle: BinaryIO = open_input(path)
        except OSError as exc:
            raise InputError(f"{path}: cannot read: {reason(exc)}") from None
        try:
            self.header: PerfHeader = read_header(self._handle, path)
        except OSError as exc:
            self._handle.close()
            raise InputError(f"{path}: cannot read: {reason(exc)}") from None
        except BaseException:
            self._handle.close()
            raise
        try:
            self.resolver = AttrResolver(self.header.attrs, str(path))
        except BaseException:
            self._handle.close()
            raise
        self._by_id = {i: a.index for a in self.header.attrs for i in a.ids}
        self.sideband = Sideband()
        self.totals = ReadTotals()

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> PerfDataReader:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def blocks(self) -> Iterator[Block]:
        """The data section, block by block; structural damage is an InputError naming the
        file offset."""
        header = self.header
        buf = np.empty(self.block_bytes + MAX_RECORD, dtype=np.uint8)
        view = memoryview(buf)  # type: ignore[arg-type]
        pos, end, carry = header.data_offset, header.data_offset + header.data_size, 0
        self._handle.seek(pos)
        while pos < end:
            want = min(self.block_bytes, end - pos)
            try:
                got = cast(BufferedReader, self._handle).readinto(view[carry:carry + want])
            except OSError as exc:
                raise InputError(f"{self.path}: cannot read: {reason(exc)}") from None
            if got != want:
                raise InputError(f"{self.path}: the file ended inside its data section, at "
                                 f"offset {pos + (got or 0)}")
            pos += want
            total = carry + want
            block_at = pos - total  # file offset of buf[0]
            frames = frame(buf, total)
            if frames.status == FRAME_BAD_SIZE:
                raise InputError(f"{self.path}: record at offset {block_at + frames.stop} "
                                 "has a size below its 8-byte header")
            carry = total - frames.stop
            if pos >= end and carry:
                raise InputError(f"{self.path}: the record at offset {block_at + frames.stop} "
                                 "runs past the end of the data section")
            yield self._block(buf, block_at, frames.offsets, frames.sizes, frames.types,
                              frames.misc)
            buf[:carry] = buf[frames.stop:total]

    def _block(self, buf: npt.NDArray[np.uint8], block_at: int, offsets: npt.NDArray[np.int64],
               sizes: npt.NDArray[np.int32], types: npt.NDArray[np.int64],
               misc: npt.NDArray[np.int32]) -> Block:
        counts = np.bincount(np.minimum(types, 255), minlength=256)
        for rtype in np.flatnonzero(counts).tolist():
            self.totals.records[rtype] = self.totals.records.get(rtype, 0) + int(counts[rtype])
            if rtype in _UNSUPPORTED or rtype in abi.COMPRESSED_TYPES:
                at = block_at + int(offsets[np.argmax(types == rtype)])
                what = _UNSUPPORTED.get(rtype, "zstd-compressed records (perf record -z)")
                raise InputError(f"{self.path}: record at offset {at} holds {what}, which "
                                 "this reader does not read")
        lost = np.flatnonzero(types == abi.RECORD_LOST)
        lost = lost[sizes[lost] >= 24]
        if lost.size:
            self.totals.lost += int(u64_at(buf, offsets[lost] + 16).sum())
        side = np.flatnonzero(np.isin(types, _SIDEBAND))
        for i in side.tolist():
            start, size = int(offsets[i]), int(sizes[i])
            record = buf[start:start + size].tobytes()
            self.sideband.add(record, int(types[i]), int(misc[i]), self._trailer_time(record),
                              f"{self.path}: record at offset {block_at + start}")
        is_sample = types == abi.RECORD_SAMPLE
        rounds_before = np.cumsum(types == abi.RECORD_FINISHED_ROUND) + self.totals.rounds
        self.totals.rounds = int(rounds_before[-1]) if rounds_before.size else self.totals.rounds
        rows = np.flatnonzero(is_sample)
        samples = parse_samples(buf, offsets[rows], sizes[rows].astype(np.int64),
                                misc[rows].astype(np.int64), self.resolver)
        return Block(buf=buf, file_offset=block_at, samples=samples,
                     round=rounds_before[rows].astype(np.int64))

    def _trailer_time(self, record: bytes) -> int:
        """TIME from a sideband record's sample_id trailer: its attr is the only one, or the
        one every attr agrees with, or the one its trailing IDENTIFIER names; 0 ('since the
        start') when none can be told or the attr writes no time."""
        attrs = self.header.attrs
        attr = attrs[0] if len({(a.sample_type, a.sample_id_all) for a in attrs}) == 1 else None
        if attr is None and all(a.sample_type & abi.SAMPLE_IDENTIFIER for a in attrs) and \
                len(record) >= abi.RECORD_HEADER_BYTES + 8:
            index = self._by_id.get(int.from_bytes(record[-8:], "little"))
            attr = attrs[index] if index is not None else None
        if attr is None or not attr.sample_id_all or not attr.sample_type & abi.SAMPLE_TIME:
            return 0
        names = [name for name, bit in abi.ID_TRAILER_FIELDS if attr.sample_type & bit]
        at = len(record) - 8 * len(names) + 8 * names.index("time")
        if at < abi.RECORD_HEADER_BYTES:
            return 0
        return int.from_bytes(record[at:at + 8], "little")
