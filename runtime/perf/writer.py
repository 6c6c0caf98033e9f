"""Write perf.data files field by field: recordings whose content is known, for tests and
for an end-to-end run whose hot pages are known.

The layout is the one runtime/perf/header.py and reader.py read (perf.data-file-format.txt):
header, attrs with their id lists, the data section of records, then the feature sections
(PMU_MAPPINGS, CPUID, NRCPUS, EVENT_DESC). Records are built by the functions below from
named fields, in the order the sample_type asks for.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from runtime.perf import abi


@dataclass(frozen=True)
class WAttr:
    """An event to declare: perf_event_attr fields and its sample ids."""

    type: int
    sample_type: int
    ids: tuple[int, ...]
    config: int = 0
    name: str = ""
    flags: int = abi.ATTR_FLAG_SAMPLE_ID_ALL
    read_format: int = 0

    def attr_bytes(self, size: int = 136) -> bytes:
        body = bytearray(size)
        struct.pack_into("<IIQQQQQ", body, 0, self.type, size, self.config, 1,
                         self.sample_type, self.read_format, self.flags)
        return bytes(body)


def header_string(text: str) -> bytes:
    """u32 length, then the NUL-terminated text padded to a multiple of 64 bytes."""
    raw = text.encode() + b"\0"
    raw += b"\0" * (-len(raw) % abi.STRING_ALIGN)
    return struct.pack("<I", len(raw)) + raw


def record(rtype: int, body: bytes, misc: int = 0) -> bytes:
    """A record: perf_event_header, then body padded to 8 bytes."""
    body += b"\0" * (-len(body) % 8)
    return struct.pack("<IHH", rtype, misc, abi.RECORD_HEADER_BYTES + len(body)) + body


def sample(attr: WAttr, *, ip: int = 0, pid: int = 0, tid: int = 0, time: int = 0,
           addr: int = 0, cpu: int = 0, period: int = 1, raw: bytes | None = None,
           callchain: Sequence[int] = (), misc: int = 2, sample_id: int | None = None) -> bytes:
    """A PERF_RECORD_SAMPLE of attr, its fields in sample_type order."""
    st = attr.sample_type
    sid = attr.ids[0] if sample_id is None else sample_id
    values = {"identifier": sid, "ip": ip, "time": time, "addr": addr, "id": sid,
              "stream_id": sid, "period": period}
    out = _fixed(abi.SAMPLE_FIELDS_BEFORE_RAW, st, values, pid, tid, cpu)
    if st & abi.SAMPLE_READ:
        out += struct.pack("<Q", 0)
    if st & abi.SAMPLE_CALLCHAIN:
        out += struct.pack("<Q", len(callchain)) + b"".join(struct.pack("<Q", c)
                                                            for c in callchain)
    if st & abi.SAMPLE_RAW:
        payload = raw or b""
        payload += b"\0" * (-(4 + len(payload)) % 8)
        out += struct.pack("<I", len(payload)) + payload
    return record(abi.RECORD_SAMPLE, out, misc)


def id_trailer(attr: WAttr, pid: int = 0, tid: int = 0, time: int = 0, cpu: int = 0) -> bytes:
    """struct sample_id for non-sample records of attr (sample_id_all)."""
    values = {"time": time, "id": attr.ids[0], "stream_id": attr.ids[0],
              "identifier": attr.ids[0]}
    return _fixed(abi.ID_TRAILER_FIELDS, attr.sample_type, values, pid, tid, cpu)


def _fixed(order: tuple[tuple[str, int], ...], sample_type: int, values: dict[str, int],
           pid: int, tid: int, cpu: int) -> bytes:
    """The 8-byte fields of `order` that sample_type selects (TID and CPU are two u32s)."""
    out = b""
    for name, bit in order:
        if not sample_type & bit:
            continue
        if name == "tid":
            out += struct.pack("<ii", pid, tid)
        elif name == "cpu":
            out += struct.pack("<II", cpu, 0)
        else:
            out += struct.pack("<Q", values[name])
    return out


def _cstring(text: str) -> bytes:
    raw = text.encode() + b"\0"
    return raw + b"\0" * (-len(raw) % 8)


def mmap2(attr: WAttr, pid: int, start: int, length: int, pgoff: int, filename: str,
          time: int = 0) -> bytes:
    body = struct.pack("<iiQQQ", pid, pid, start, length, pgoff) + b"\0" * 24 + \
        struct.pack("<II", 3, 2) + _cstring(filename)
    return record(abi.RECORD_MMAP2, body + id_trailer(attr, pid, pid, time), misc=2)


def comm(attr: WAttr, pid: int, name: str, time: int = 0) -> bytes:
    body = struct.pack("<ii", pid, pid) + _cstring(name)
    return record(abi.RECORD_COMM, body + id_trailer(attr, pid, pid, time))


def fork(attr: WAttr, pid: int, ppid: int, time: int = 0) -> bytes:
    body = struct.pack("<iiiiQ", pid, ppid, pid, ppid, time)
    return record(abi.RECORD_FORK, body + id_trailer(attr, pid, pid, time))


def finished_round() -> bytes:
    return record(abi.RECORD_FINISHED_ROUND, b"")


@dataclass
class PerfFile:
    """A recording to write: attrs, records and the feature sections perf would add."""

    attrs: list[WAttr]
    pmus: dict[int, str] = field(default_factory=dict)
    cpuid: str | None = "AuthenticAMD,25,17,1"
    nr_cpus: int = 2
    attr_size: int = 136

    def features(self) -> list[tuple[int, bytes]]:
        out: list[tuple[int, bytes]] = []
        out.append((abi.FEAT_NRCPUS, struct.pack("<II", self.nr_cpus, self.nr_cpus)))
        if self.cpuid is not None:
            out.append((abi.FEAT_CPUID, header_string(self.cpuid)))
        desc = struct.pack("<II", len(self.attrs), self.attr_size)
        for attr in self.attrs:
            desc += attr.attr_bytes(self.attr_size) + struct.pack("<I", len(attr.ids))
            desc += header_string(attr.name) + b"".join(struct.pack("<Q", i) for i in attr.ids)
        out.append((abi.FEAT_EVENT_DESC, desc))
        if self.pmus:
            body = struct.pack("<I", len(self.pmus))
            for ptype, name in sorted(self.pmus.items()):
                body += struct.pack("<I", ptype) + header_string(name)
            out.append((abi.FEAT_PMU_MAPPINGS, body))
        return sorted(out)

    def to_bytes(self, records: Iterable[bytes]) -> bytes:
        data = b"".join(records)
        head, suffix = self._around(len(data))
        return head + data + suffix

    def write(self, path: Path, records: Iterable[bytes]) -> Path:
        """Streamed: the data section is written as records come (a bench writes 1 GB
        recordings), the header, whose sizes need the data's length, last."""
        head, _ = self._around(0)
        size = 0
        with open(path, "wb") as handle:
            handle.write(b"\0" * len(head))
            for chunk in records:
                handle.write(chunk)
                size += len(chunk)
            head, suffix = self._around(size)
            handle.write(suffix)
            handle.seek(0)
            handle.write(head)
        return path

    def _around(self, data_size: int) -> tuple[bytes, bytes]:
        """What comes before the data section (header, ids, attrs) and after it (feature
        table and bodies), for a data section of data_size bytes."""
        head_size = abi.FILE_HEADER.itemsize
        entry = self.attr_size + abi.SECTION.itemsize
        ids_at = head_size
        ids_blob = b"".join(struct.pack("<Q", i) for a in self.attrs for i in a.ids)
        attrs_at = ids_at + len(ids_blob)
        table = b""
        offset = ids_at
        for attr in self.attrs:
            table += attr.attr_bytes(self.attr_size) + struct.pack("<QQ", offset,
                                                                    8 * len(attr.ids))
            offset += 8 * len(attr.ids)
        data_at = attrs_at + len(table)
        feats = self.features()
        feat_table_at = data_at + data_size
        body_at = feat_table_at + abi.SECTION.itemsize * len(feats)
        sections, bodies = b"", b""
        bits = [0, 0, 0, 0]
        for feat, blob in feats:
            sections += struct.pack("<QQ", body_at + len(bodies), len(blob))
            bodies += blob
            bits[feat >> 6] |= 1 << (feat & 63)
        head = abi.MAGIC + struct.pack("<QQ", head_size, entry)
        head += struct.pack("<QQQQQQ", attrs_at, len(table), data_at, data_size, 0, 0)
        head += struct.pack("<4Q", *bits)
        assert len(head) == head_size and len(table) == entry * len(self.attrs)
        return head + ids_blob + table, sections + bodies


def tiled(template: bytes, fields: dict[int, npt.NDArray[np.uint64]]) -> bytes:
    """len(values) copies of one record, the 8-byte little-endian field at each offset of
    `fields` set to that copy's value: a million samples without a Python loop."""
    count = len(next(iter(fields.values())))
    rows = np.tile(np.frombuffer(template, dtype=np.uint8), (count, 1))
    for offset, values in fields.items():
        rows[:, offset:offset + 8] = values.astype("<u8").view(np.uint8).reshape(count, 8)
    return rows.tobytes()


def ibs_op_payload(caps: int, words: Sequence[int]) -> bytes:
    """A PERF_SAMPLE_RAW IBS Op payload: the caps word, then the MSR words in the kernel's
    order (IBS_OP_CTL .. IBS_DC_PHYSAD, then IBS_BR_TARGET and IBS_OP_DATA4 as caps say)."""
    return struct.pack("<I", caps) + b"".join(struct.pack("<Q", w) for w in words)
