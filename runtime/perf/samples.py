"""PERF_RECORD_SAMPLE fields, read for a whole block of samples at once.

A sample's layout follows its event's sample_type: fixed 8-byte fields first (IDENTIFIER,
IP, TID, TIME, ADDR, ID, STREAM_ID, CPU, PERIOD: a numpy structured dtype per attr), then
READ, CALLCHAIN and RAW, whose sizes vary with the sample. The samples of one attr are read
together: their fixed fields with one gather into the attr's structured dtype, then a
cursor array walks READ and CALLCHAIN (counts read with one gather each) to RAW. Fields
after RAW are never needed and never read. Which attr a sample belongs to comes from its
IDENTIFIER (or ID) when the file has several. A sample whose fields would run past its own
record is counted as malformed, never read out of bounds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from runtime.errors import InputError
from runtime.perf import abi
from runtime.perf.header import Attr

I64 = npt.NDArray[np.int64]
U64 = npt.NDArray[np.uint64]
_EIGHT = np.arange(8, dtype=np.int64)
_FOUR = np.arange(4, dtype=np.int64)


def u64_at(buf: npt.NDArray[np.uint8], pos: I64) -> U64:
    """The little-endian u64 at each byte offset pos of buf (callers check the bounds)."""
    if not pos.size:
        return np.zeros(0, dtype=np.uint64)
    words: U64 = buf[pos[:, None] + _EIGHT].view("<u8").ravel().astype(np.uint64, copy=False)
    return words


def u32_at(buf: npt.NDArray[np.uint8], pos: I64) -> I64:
    if not pos.size:
        return np.zeros(0, dtype=np.int64)
    words: I64 = buf[pos[:, None] + _FOUR].view("<u4").ravel().astype(np.int64)
    return words


def fixed_dtype(sample_type: int) -> np.dtype[np.void]:
    """The structured dtype of a sample's fixed fields after the 8-byte record header."""
    fields: list[tuple[str, str]] = []
    for name, bit in abi.SAMPLE_FIELDS_BEFORE_RAW:
        if not sample_type & bit:
            continue
        if name == "tid":
            fields += [("pid", "<i4"), ("tid", "<i4")]
        elif name == "cpu":
            fields += [("cpu", "<u4"), ("cpu_reserved", "<u4")]
        else:
            fields.append((name, "<u8"))
    return np.dtype(fields)


def read_block_size(read_format: int) -> int:
    """Bytes of a non-group PERF_SAMPLE_READ block; a group's is this per member plus nr."""
    per = 8 + 8 * bool(read_format & abi.READ_ID) + 8 * bool(read_format & abi.READ_LOST)
    return per + 8 * bool(read_format & abi.READ_TOTAL_TIME_ENABLED) + \
        8 * bool(read_format & abi.READ_TOTAL_TIME_RUNNING)


class AttrResolver:
    """Which attr each sample belongs to: the only one, or by its IDENTIFIER / ID."""

    def __init__(self, attrs: tuple[Attr, ...], where: str) -> None:
        self.attrs = attrs
        self.id_offset = -1  # byte offset of the id inside the record, -1: single attr
        types = {a.sample_type for a in attrs}
        if len(attrs) > 1:
            if all(a.sample_type & abi.SAMPLE_IDENTIFIER for a in attrs):
                self.id_offset = abi.RECORD_HEADER_BYTES
            elif len(types) == 1 and attrs[0].sample_type & abi.SAMPLE_ID:
                dtype = fixed_dtype(attrs[0].sample_type)
                self.id_offset = abi.RECORD_HEADER_BYTES + dtype.fields["id"][1]  # type: ignore[index]
            else:
                raise InputError(f"{where}: {len(attrs)} events with different sample types "
                                 "and no sample IDENTIFIER: samples cannot be told apart")
        pairs = sorted((i, a.index) for a in attrs for i in a.ids)
        self.ids = np.array([p[0] for p in pairs], dtype=np.uint64)
        self.index = np.array([p[1] for p in pairs], dtype=np.int64)

    def attr_of(self, buf: npt.NDArray[np.uint8], offsets: I64, sizes: I64) -> I64:
        """Attr index per sample record, -1 where its id names no attr (or it is too short
        to hold one)."""
        if self.id_offset < 0:
            return np.zeros(offsets.size, dtype=np.int64)
        out = np.full(offsets.size, -1, dtype=np.int64)
        ok = sizes >= self.id_offset + 8
        ids = u64_at(buf, offsets[ok] + self.id_offset)
        slot = np.minimum(np.searchsorted(self.ids, ids), max(self.ids.size - 1, 0))
        found = np.zeros(ids.size, dtype=bool) if not self.ids.size else self.ids[slot] == ids
        out[np.flatnonzero(ok)[found]] = self.index[slot[found]]
        return out


@dataclass
class SampleColumns:
    """The fields of the samples of one block that the ingest needs, one entry per sample.
    `at` is the record's offset in the block, `raw_at` that of its RAW payload (after the
    u32 size), -1 without one; `malformed` marks samples whose fields run past their
    record."""

    at: I64
    attr: I64
    misc: I64
    ip: U64
    pid: I64
    tid: I64
    time: U64
    addr: U64
    cpu: I64
    period: U64
    raw_at: I64
    raw_size: I64
    malformed: npt.NDArray[np.bool_]

    @classmethod
    def empty(cls, count: int) -> SampleColumns:
        zeros_u = np.zeros(count, dtype=np.uint64)
        return cls(at=np.zeros(count, np.int64), attr=np.full(count, -1, dtype=np.int64),
                   misc=np.zeros(count, np.int64), ip=zeros_u, pid=np.full(count, -1, np.int64),
                   tid=np.full(count, -1, np.int64), time=zeros_u.copy(), addr=zeros_u.copy(),
                   cpu=np.full(count, -1, np.int64), period=zeros_u.copy(),
                   raw_at=np.full(count, -1, np.int64), raw_size=np.zeros(count, np.int64),
                   malformed=np.zeros(count, dtype=bool))


def parse_samples(buf: npt.NDArray[np.uint8], offsets: I64, sizes: I64, misc: I64,
                  resolver: AttrResolver) -> SampleColumns:
    """Read the sample records at offsets (their sizes from framing) into columns."""
    cols = SampleColumns.empty(offsets.size)
    cols.at[:] = offsets
    cols.misc[:] = misc
    cols.attr[:] = resolver.attr_of(buf, offsets, sizes)
    for attr in resolver.attrs:
        rows = np.flatnonzero(cols.attr == attr.index)
        if rows.size:
            _read_attr_samples(buf, offsets[rows], sizes[rows], attr, cols, rows)
    return cols


def _read_attr_samples(buf: npt.NDArray[np.uint8], offsets: I64, sizes: I64, attr: Attr,
                       cols: SampleColumns, rows: I64) -> None:
    dtype = fixed_dtype(attr.sample_type)
    ends = offsets + sizes
    fixed_end = offsets + abi.RECORD_HEADER_BYTES + dtype.itemsize
    bad = fixed_end > ends
    good = np.flatnonzero(~bad)
    starts = offsets[good] + abi.RECORD_HEADER_BYTES
    where = rows[good]
    if dtype.itemsize:
        fixed = buf[starts[:, None] + np.arange(dtype.itemsize)].view(dtype).ravel()
        columns: dict[str, npt.NDArray[np.generic]] = {
            "ip": cols.ip, "time": cols.time, "addr": cols.addr, "period": cols.period,
            "pid": cols.pid, "tid": cols.tid, "cpu": cols.cpu}
        for name in dtype.names or ():
            if name in columns:
                columns[name][where] = fixed[name]
    cursor = fixed_end.copy()
    if attr.sample_type & abi.SAMPLE_READ:
        cursor, over = _skip_read(buf, cursor, ends, attr.read_format)
        bad |= over
    if attr.sample_type & abi.SAMPLE_CALLCHAIN:
        cursor, over = _skip_counted(buf, cursor, ends, bad, 8)
        bad |= over
    if attr.sample_type & abi.SAMPLE_RAW:
        ok = ~bad & (cursor + 4 <= ends)
        size = np.zeros(cursor.size, dtype=np.int64)
        size[ok] = u32_at(buf, cursor[ok])
        ok &= cursor + 4 + size <= ends
        bad |= ~ok
        cols.raw_at[rows[ok]] = cursor[ok] + 4
        cols.raw_size[rows[ok]] = size[ok]
    cols.malformed[rows] = bad


def _skip_read(buf: npt.NDArray[np.uint8], cursor: I64, ends: I64,
               read_format: int) -> tuple[I64, npt.NDArray[np.bool_]]:
    """Step over the PERF_SAMPLE_READ block: fixed, or nr members for a group."""
    block = read_block_size(read_format)
    if not read_format & abi.READ_GROUP:
        return cursor + block, cursor + block > ends
    member = 8 + 8 * bool(read_format & abi.READ_ID) + 8 * bool(read_format & abi.READ_LOST)
    head = block - member + 8  # nr, then the time fields
    over = cursor + 8 > ends
    nr: U64 = np.zeros(cursor.size, dtype=np.uint64)
    nr[~over] = u64_at(buf, cursor[~over])
    over |= nr > np.uint64(1 << 16)
    step = head + member * np.where(over, 0, nr).astype(np.int64)
    return cursor + step, over | (cursor + step > ends)


def _skip_counted(buf: npt.NDArray[np.uint8], cursor: I64, ends: I64,
                  bad: npt.NDArray[np.bool_], width: int) -> tuple[I64, npt.NDArray[np.bool_]]:
    """Step over a u64 count followed by that many `width`-byte entries (CALLCHAIN)."""
    over = bad | (cursor + 8 > ends)
    nr: U64 = np.zeros(cursor.size, dtype=np.uint64)
    nr[~over] = u64_at(buf, cursor[~over])
    over |= nr > np.uint64(1 << 16)
    step = 8 + width * np.where(over, 0, nr).astype(np.int64)
    return cursor + step, over | (cursor + step > ends)
