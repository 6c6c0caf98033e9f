"""The recording's sideband records: which file is mapped where (MMAP, MMAP2), what each
process is called (COMM) and who forked whom (FORK), and the address lookup built on them.

These records are few (one per mapping, exec and fork), so each is parsed on its own; their
number is capped so a hostile file cannot grow them without bound. Lookups of sample
addresses are vectorised: one searchsorted per process over its address space, which is
built by applying the mappings in time order, a later mapping replacing what it overlaps
(as munmap + mmap do). The lookup uses the address space at the end of the recording.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from runtime.errors import InputError
from runtime.perf import abi

MAX_SIDEBAND = 1 << 20
"""Most MMAP/MMAP2/COMM/FORK records kept (perf writes one per mapping, exec and fork)."""
I64 = npt.NDArray[np.int64]
U64 = npt.NDArray[np.uint64]
UNKNOWN = "[unknown]"
"""The mapping of an address no MMAP record covers (perf record -d records data mappings)."""


@dataclass(frozen=True)
class Mmap:
    pid: int
    start: int
    length: int
    pgoff: int
    filename: str
    time: int


@dataclass(frozen=True)
class Comm:
    pid: int
    tid: int
    name: str
    time: int


@dataclass
class Sideband:
    """What the MMAP/MMAP2/COMM/FORK records said, in file order."""

    mmaps: list[Mmap] = field(default_factory=list)
    comms: list[Comm] = field(default_factory=list)
    parents: dict[int, int] = field(default_factory=dict)
    """pid -> parent pid, from FORK records of new processes."""

    def _room(self, where: str) -> None:
        if len(self.mmaps) + len(self.comms) + len(self.parents) >= MAX_SIDEBAND:
            raise InputError(f"{where}: more than {MAX_SIDEBAND} MMAP/COMM/FORK records")

    def add(self, record: bytes, rtype: int, misc: int, time: int, where: str) -> None:
        """Parse one sideband record (header included); time from its sample_id trailer."""
        self._room(where)
        body = record[abi.RECORD_HEADER_BYTES:]
        try:
            if rtype in (abi.RECORD_MMAP, abi.RECORD_MMAP2):
                pid, _tid, addr, length, pgoff = struct.unpack_from("<iiQQQ", body)
                name_at = 32 if rtype == abi.RECORD_MMAP else 32 + 24 + 8
                self.mmaps.append(Mmap(pid, addr, length, pgoff, _cstring(body, name_at),
                                       time))
            elif rtype == abi.RECORD_COMM:
                pid, tid = struct.unpack_from("<ii", body)
                self.comms.append(Comm(pid, tid, _cstring(body, 8), time))
            elif rtype == abi.RECORD_FORK:
                pid, ppid, tid, _ptid = struct.unpack_from("<iiii", body)
                if pid == tid and pid != ppid:
                    self.parents[pid] = ppid
        except struct.error:
            raise InputError(f"{where}: a {len(record)}-byte record of type {rtype} is too "
                             "short for its fields") from None

    def comm_of(self) -> dict[int, str]:
        """pid -> the last name its main thread took (exec), else any thread's."""
        names: dict[int, str] = {}
        for comm in self.comms:
            if comm.pid == comm.tid or comm.pid not in names:
                names[comm.pid] = comm.name
        return names


def _cstring(body: bytes, at: int) -> str:
    end = body.find(b"\0", at)
    return body[at:end if end >= 0 else len(body)].decode("utf-8", "replace")


@dataclass(frozen=True)
class AddressLookup:
    """Per process, its mapped ranges (non-overlapping, sorted) with the mapping each came
    from: `find(pid, vaddr)` gives the Mmap index of each address, or -1."""

    mmaps: tuple[Mmap, ...]
    spaces: dict[int, tuple[U64, U64, I64]]
    parents: dict[int, int]

    @classmethod
    def build(cls, sideband: Sideband) -> AddressLookup:
        per_pid: dict[int, list[tuple[int, int, int]]] = {}
        order = sorted(range(len(sideband.mmaps)), key=lambda i: sideband.mmaps[i].time)
        for index in order:
            m = sideband.mmaps[index]
            if m.length <= 0:
                continue
            ranges = per_pid.setdefault(m.pid, [])
            end = min(m.start + m.length, 1 << 64)
            kept = []
            for lo, hi, owner in ranges:  # cut what the new mapping overlaps
                if hi <= m.start or lo >= end:
                    kept.append((lo, hi, owner))
                    continue
                if lo < m.start:
                    kept.append((lo, m.start, owner))
                if hi > end:
                    kept.append((end, hi, owner))
            kept.append((m.start, end, index))
            ranges[:] = sorted(kept)
        spaces = {pid: (np.array([r[0] for r in rs], dtype=np.uint64),
                        np.array([min(r[1], (1 << 64) - 1) for r in rs], dtype=np.uint64),
                        np.array([r[2] for r in rs], dtype=np.int64))
                  for pid, rs in per_pid.items()}
        return cls(tuple(sideband.mmaps), spaces, dict(sideband.parents))

    def _space(self, pid: int) -> tuple[U64, U64, I64] | None:
        seen = set()
        while pid not in self.spaces and pid in self.parents and pid not in seen:
            seen.add(pid)
            pid = self.parents[pid]
        return self.spaces.get(pid)

    def find(self, pid: I64, vaddr: U64) -> I64:
        """The index in `mmaps` of the mapping holding each (pid, vaddr), -1 for none; kernel
        mappings (pid -1) answer for any process."""
        out = np.full(pid.size, -1, dtype=np.int64)
        for owner in np.unique(pid).tolist():
            rows = np.flatnonzero(pid == owner)
            for space in (self._space(int(owner)), self.spaces.get(-1)):
                if space is None:
                    continue
                starts, ends, index = space
                todo = rows[out[rows] < 0]
                slot = np.searchsorted(starts, vaddr[todo], side="right") - 1
                inside = (slot >= 0) & (vaddr[todo] < ends[np.maximum(slot, 0)])
                out[todo[inside]] = index[slot[inside]]
        return out

    def describe(self, pid: I64, vaddr: U64) -> tuple[list[str], U64]:
        """Per address: the mapped file (or UNKNOWN) and the byte offset in it (pgoff +
        distance from the mapping's start; the address itself when unmapped)."""
        found = self.find(pid, vaddr)
        names = [self.mmaps[i].filename if i >= 0 else UNKNOWN for i in found.tolist()]
        starts = np.array([self.mmaps[i].start if i >= 0 else 0 for i in found.tolist()],
                          dtype=np.uint64)
        pgoffs = np.array([self.mmaps[i].pgoff if i >= 0 else 0 for i in found.tolist()],
                          dtype=np.uint64)
        return names, np.where(found >= 0, vaddr - starts + pgoffs, vaddr)
