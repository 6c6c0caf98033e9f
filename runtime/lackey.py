"""The `lackey` workload: a real program's memory trace replayed as each CPU's op stream.

Record a trace with

    valgrind --tool=lackey --trace-mem=yes --log-file=trace.out ./prog

The log has one record per line: `I  <hexaddr>,<size>` for an instruction fetch (a non-memory
op here), ` L`, ` S` or ` M <hexaddr>,<size>` for a load, a store or a modify (a load and a store
to the same address, e.g. `add [mem],1`: ONE op that is both a load and a store). Addresses are
guest virtual addresses in hex, sizes decimal bytes. `==<pid>==` banner and summary lines and
blank lines are ignored; anything else is an error naming the file and line and what is wrong
with it, never quoting the line: a trace path that points at some other file (a key, a
password file) must not print that file's contents.

Decisions, all of them deliberate:

- Op stream. Every record is one op, in trace order; `I` records are the non-memory ops, so
  mem_op_fraction = data records / all records. Each CPU replays the whole trace (each CPU runs a
  copy of the program over the same, shared pages) and the trace loops for as long as the
  simulation runs: the op at position i of a CPU's stream is record i mod len(trace). Lackey
  only sees user space, so no op has a kernel RIP.
- Placement. Workload page ids are dense ids of the virtual pages the data accesses touch, in
  first-touch order (instruction fetches do not create pages). The scenario's `placement`
  policy then places page ids 0, 1, 2, ... in that order, i.e. the first page the program
  touches is placed first, as a first-touch allocator would.
- L3 misses. `runtime.llc.SetAssociativeLru` runs over the data accesses' virtual addresses in
  trace order (one access per record, at the line of its first byte), twice; the miss flags of
  the second pass are the ones used. The cache state at the end of a full pass over a trace is
  the same after every pass (each set holds the most recently used lines of that pass), so the
  second pass is exactly what every iteration of the looped replay after the first sees: a warm
  cache, without the first iteration's compulsory misses. A program whose data fits in the LLC
  therefore has no L3 misses at all (shrink `llc.size_mib` to study it).
- Ground truth. One phase: probs = each page's share of the data accesses (A_all), miss = its
  miss ratio from the flags, so probs x miss x the memory-op rate is the exact rate of L3-miss
  accesses of the looped stream, which is what runtime.groundtruth computes.

Parsing streams the file line by line (lines are read with a length limit, so even a file
without newlines never has to fit in memory), and the trace is kept in compact `array`
columns, one entry per data access only (instruction fetches are just counted: they are most
of a lackey log). `load_trace(..., max_records=N)` keeps the first N records.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
from array import array
from bisect import bisect_left
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from generated.ibs_mprof import PAGE_SHIFT
from runtime.errors import InputError
from runtime.llc import SetAssociativeLru
from runtime.pageruns import PageRuns
from runtime.profiler import OpBatch, TaggedOp
from runtime.workloads import Phase, Workload
from safeio.inputs import open_input, reason

PAGE_BYTES = 1 << PAGE_SHIFT
PAGE_MASK = PAGE_BYTES - 1
MAX_LINE_BYTES = 4096
"""Longest record line accepted (banner lines may be longer: they are skipped in pieces)."""

KIND_LOAD, KIND_STORE, KIND_MODIFY = 1, 2, 3
"""Kind codes of the data-access columns (`Trace.kinds`)."""
KIND_CODES = {"L": KIND_LOAD, "S": KIND_STORE, "M": KIND_MODIFY}
_EXPECTED = "expected 'I  addr,size' or ' L|S|M addr,size' (hex address, decimal size)"
_RECORD = re.compile(rb"(?:(I) | ([LSM])) ([0-9a-fA-F]+),([0-9]+)\r?\n?")
_DATA_KINDS = {b"L": "L", b"S": "S", b"M": "M"}
_BANNER = re.compile(rb"==\d+==")
_DATA_START = re.compile(rb" [LSM] ")
_HEX_DIGITS = re.compile(rb"[0-9a-fA-F]+")
_DEC_DIGITS = re.compile(rb"[0-9]+")


def _what_is_wrong(line: bytes) -> str:
    """Why a line is not a record, without quoting any of it."""
    if line.startswith(b"I") and not line.startswith(b"I  "):
        return "an 'I' record has two spaces before its address"
    if not line.startswith(b"I  ") and not _DATA_START.match(line):
        return "not a lackey record"
    body = line[3:].rstrip(b"\r\n")
    addr, comma, rest = body.partition(b",")
    if not _HEX_DIGITS.fullmatch(addr):
        return "the address is not hex digits (no 0x)"
    if not comma:
        return "no ',size' after the address"
    size = rest.split(b" ", 1)[0]
    if not _DEC_DIGITS.fullmatch(size):
        return "the size is not a decimal number"
    return "text after the size"

Int64Array = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
Record = tuple[str, int, int]


PROGRESS_LINES = 1 << 16
"""Lines read between two progress reports."""


def _records(path: str | os.PathLike[str], fetch_values: bool = True,
             progress: Callable[[float], None] | None = None) -> Generator[Record, None, None]:
    """(kind, address, size) per record; banner and blank lines skipped, anything else malformed
    is an InputError. fetch_values=False: "I" records come as ("I", 0, 0) (faster). `progress`
    hears the fraction of the file read, every PROGRESS_LINES lines."""
    try:
        handle = open_input(path)  # closed by the with below; a FIFO or device is refused
    except OSError as exc:
        raise InputError(f"{path}: cannot read lackey trace: {reason(exc)}") from None
    fullmatch = _RECORD.fullmatch
    kinds = _DATA_KINDS
    with handle:
        read = functools.partial(handle.readline, MAX_LINE_BYTES + 2)
        file_bytes = max(os.fstat(handle.fileno()).st_size, 1)
        lineno = 0
        try:
            for line in iter(read, b""):
                lineno += 1
                if progress is not None and lineno % PROGRESS_LINES == 0:
                    progress(min(handle.tell() / file_bytes, 1.0))
                if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
                    if _BANNER.match(line):  # a long banner line: skip the rest of it
                        while line and not line.endswith(b"\n"):
                            line = read()
                        continue
                    raise InputError(f"{path}:{lineno}: line longer than {MAX_LINE_BYTES} "
                                     f"bytes; {_EXPECTED}")
                match = fullmatch(line)
                if match is None:
                    if _BANNER.match(line) or not line.strip():
                        continue
                    raise InputError(f"{path}:{lineno}: {_what_is_wrong(line)}; {_EXPECTED}")
                fetch, data, addr, size = match.groups()
                if len(addr) > 16 and len(addr.lstrip(b"0")) > 16:
                    raise InputError(f"{path}:{lineno}: the address has "
                                     f"{len(addr.lstrip(b'0'))} hex digits: wider than 64 bits")
                if fetch:
                    if fetch_values:
                        yield "I", int(addr, 16), int(size)
                    else:
                        yield "I", 0, 0
                else:
                    yield kinds[data], int(addr, 16), int(size)
        except OSError as exc:
            raise InputError(f"{path}:{lineno}: cannot read lackey trace: {reason(exc)}") \
                from None


def iter_records(path: str | os.PathLike[str]) -> Iterator[Record]:
    """(kind, address, size) of every record of a lackey log, in order, read line by line.

    kind is "I" (instruction fetch), "L", "S" or "M". Raises InputError (file:line: what was
    expected) at the first malformed line, if the file cannot be read, and, once the file is
    exhausted, if it held no records or no data accesses.
    """
    records = data = 0
    for record in _records(path):
        records += 1
        data += record[0] != "I"
        yield record
    _check_counts(path, records, data)


def _check_counts(path: str | os.PathLike[str], records: int, data: int) -> None:
    if records == 0:
        raise InputError(f"{path}: empty lackey trace: no 'I', 'L', 'S' or 'M' records (record "
                         "one with valgrind --tool=lackey --trace-mem=yes --log-file=FILE)")
    if data == 0:
        raise InputError(f"{path}: lackey trace has {records} records but no data accesses "
                         "(' L', ' S' or ' M' lines); was it recorded with --trace-mem=yes?")


@dataclass(frozen=True, eq=False)
class Trace:
    """A lackey trace in compact columns, one entry per data access (instruction fetches are
    only counted: `positions` says where in the op stream each data access is)."""

    path: Path
    ops: int
    """Records in the trace (instruction fetches + data accesses): the op stream's length."""
    positions: array[int]
    """Op index of each data access, increasing ('Q')."""
    kinds: array[int]
    """KIND_LOAD / KIND_STORE / KIND_MODIFY per data access ('B')."""
    pages: array[int]
    """Dense page id per data access, pages numbered by first touch ('I')."""
    offsets: array[int]
    """Byte offset within the page per data access ('H')."""
    miss: array[int]
    """1 if the data access misses L3 with a warm cache (second LRU pass), else 0 ('B')."""
    vpages: array[int]
    """Virtual page number of each dense page id ('Q')."""

    def __len__(self) -> int:
        return self.ops

    @property
    def data_ops(self) -> int:
        return len(self.kinds)

    @property
    def page_count(self) -> int:
        return len(self.vpages)

    def _column(self, column: array[int], dtype: type[np.generic]) -> npt.NDArray[Any]:
        return np.frombuffer(column, dtype=dtype) if len(column) else np.zeros(0, dtype)

    def kind_counts(self) -> dict[str, int]:
        counts = np.bincount(self._column(self.kinds, np.uint8), minlength=4)
        return {kind: int(counts[code]) for kind, code in KIND_CODES.items()}

    def _per_page(self, weights: npt.NDArray[Any] | None = None) -> Int64Array:
        counts = np.bincount(self._column(self.pages, np.uint32), weights=weights,
                             minlength=self.page_count)
        result: Int64Array = counts.astype(np.int64)
        return result

    def page_accesses(self) -> Int64Array:
        """Data accesses per page id (an M counts once)."""
        return self._per_page()

    def page_stores(self) -> Int64Array:
        """Store accesses (S and M) per page id."""
        kinds = self._column(self.kinds, np.uint8)
        return self._per_page(((kinds == KIND_STORE) | (kinds == KIND_MODIFY)).astype(np.int64))

    def page_misses(self) -> Int64Array:
        """L3-miss data accesses per page id (warm cache)."""
        return self._per_page(self._column(self.miss, np.uint8).astype(np.int64))

    def page_id(self, vpage: int) -> int | None:
        """The dense page id of virtual page number vpage, None if no data access touches it."""
        found = np.flatnonzero(self._column(self.vpages, np.uint64) == vpage)
        return int(found[0]) if found.size else None

    def vaddr(self, index: int) -> int:
        """Virtual address of data access number index."""
        return self.vpages[self.pages[index]] << PAGE_SHIFT | self.offsets[index]

    def summary(self) -> dict[str, Any]:
        """JSON-ready facts about the trace (for reports)."""
        counts = self.kind_counts()
        misses = int(self._column(self.miss, np.uint8).sum())
        return {"file": str(self.path), "ops": self.ops, "data_ops": self.data_ops,
                "loads": counts["L"], "stores": counts["S"], "modifies": counts["M"],
                "pages": self.page_count, "l3_misses": misses}


def load_trace(path: str | os.PathLike[str], llc_bytes: int, line_bytes: int,
               max_records: int | None = None, max_data: int | None = None,
               progress: Callable[[float], None] | None = None) -> Trace:
    """Read a lackey log in one streaming pass (at most max_records records) into a Trace.

    InputError if the file cannot be read, a line is malformed, the trace has no records or
    no data accesses, or more than max_data data accesses (what the memory available holds:
    the columns grow with them). `progress` hears the fraction done: reading, then the
    second pass of the cache model.
    """
    cache = SetAssociativeLru(llc_bytes, line_bytes)
    positions, kinds = array("Q"), array("B")
    pages, offsets = array("I"), array("H")
    vpages = array("Q")
    page_ids: dict[int, int] = {}
    ops = 0
    read_share = 0.8  # of the progress: reading and the first cache pass; then the second
    report = None if progress is None else (lambda done: progress(done * read_share))
    with contextlib.closing(_records(path, False, report)) as records:  # closes the file
        for kind, addr, _size in records:
            if max_records is not None and ops >= max_records:
                break
            if kind != "I":
                if max_data is not None and len(kinds) >= max_data:
                    raise InputError(
                        f"{path}: more than {max_data:,} data accesses (after {ops:,} "
                        "records), more than the memory available holds; use a shorter trace")
                vpage = addr >> PAGE_SHIFT
                page = page_ids.get(vpage)
                if page is None:
                    page = page_ids[vpage] = len(vpages)
                    vpages.append(vpage)
                positions.append(ops)
                kinds.append(KIND_CODES[kind])
                pages.append(page)
                offsets.append(addr & PAGE_MASK)
                cache.access(addr)  # first pass: warms the cache
            ops += 1
    _check_counts(path, ops, len(kinds))
    miss = array("B", bytes(len(kinds)))
    access = cache.access
    for i, (page, offset) in enumerate(zip(pages, offsets, strict=True)):  # second pass
        if access(vpages[page] << PAGE_SHIFT | offset):
            miss[i] = 1
        if progress is not None and i % PROGRESS_LINES == 0:
            progress(read_share + (1 - read_share) * i / len(kinds))
    return Trace(Path(path), ops, positions, kinds, pages, offsets, miss, vpages)


class LackeyOps:
    """The op source for the lackey workload: every CPU replays the trace, looping.

    The op at position op_index of any CPU's stream is record op_index mod len(trace):
    page = dense page id, vaddr = the traced virtual address, l3_miss from the warm-cache
    flags, kernel = False. An `I` record is a non-memory op.
    """

    def __init__(self, trace: Trace) -> None:
        self.trace = trace
        self._cols: tuple[npt.NDArray[Any], ...] | None = None

    def tagged_batches(self, cpus: list[int], first_ops: list[int], period_ops: int,
                       times_ms: list[npt.NDArray[np.float64]], non_memory: bool) -> OpBatch:
        """Vectorised tagged_op (a binary search over the data-access positions)."""
        return OpBatch.concat([self._tagged(cpu, first, period_ops, times, non_memory)
                               for cpu, first, times in zip(cpus, first_ops, times_ms,
                                                             strict=True)])

    def _tagged(self, cpu: int, first_op: int, period_ops: int,
                times_ms: npt.NDArray[np.float64], non_memory: bool) -> OpBatch:
        trace = self.trace
        if self._cols is None:
            self._cols = (np.frombuffer(trace.positions, dtype=np.uint64).astype(np.int64),
                          np.frombuffer(trace.kinds, dtype=np.uint8),
                          np.frombuffer(trace.pages, dtype=np.uint32).astype(np.int64),
                          np.frombuffer(trace.offsets, dtype=np.uint16).astype(np.int64),
                          np.frombuffer(trace.miss, dtype=np.uint8).astype(bool))
        positions, kinds, pages, offsets, miss = self._cols
        op_index = first_op + period_ops * np.arange(1, times_ms.size + 1, dtype=np.int64)
        position = op_index % trace.ops
        idx = np.searchsorted(positions, position)
        safe = np.minimum(idx, max(positions.size - 1, 0))
        at = np.flatnonzero((idx < positions.size) & (positions[safe] == position))
        hit = safe[at]
        kind, page = kinds[hit], pages[hit]
        return OpBatch(cpu=np.full(at.size, cpu, dtype=np.int64), at=at, when=times_ms[at],
                       kernel=np.zeros(at.size, dtype=bool), load=kind != KIND_STORE,
                       store=kind != KIND_LOAD, page=page,
                       offset=offsets[hit], l3_miss=miss[hit],
                       other_kernel=np.zeros(times_ms.size - at.size, dtype=bool)
                       if non_memory else None)

    def tagged_op(self, cpu: int, op_index: int, now_ms: float) -> TaggedOp:
        trace = self.trace
        position = op_index % trace.ops
        index = bisect_left(trace.positions, position)
        if index == len(trace.positions) or trace.positions[index] != position:
            return TaggedOp()
        kind = trace.kinds[index]
        page = trace.pages[index]
        return TaggedOp(load=kind != KIND_STORE, store=kind != KIND_LOAD, kernel=False,
                        vaddr=trace.vpages[page] << PAGE_SHIFT | trace.offsets[index],
                        page=page, l3_miss=bool(trace.miss[index]))


def lackey_workload(spec: dict[str, Any], llc_bytes: int, line_bytes: int,
                    max_records: int | None = None, max_data: int | None = None,
                    progress: Callable[[float], None] | None = None
                    ) -> tuple[Workload, LackeyOps]:
    """The Workload (one phase, from the whole trace) and op source for a validated scenario
    `workload` section of kind lackey (spec["trace"]: the log; spec["placement"]); max_data
    and progress as load_trace."""
    trace = load_trace(spec["trace"], llc_bytes, line_bytes, max_records, max_data, progress)
    accesses = trace.page_accesses().astype(np.float64)
    probs: FloatArray = accesses / accesses.sum()
    miss: FloatArray = trace.page_misses() / accesses
    counts = trace.kind_counts()
    phase = Phase(start_ms=0.0, probs=PageRuns.from_array(probs), miss=PageRuns.from_array(miss),
                  label=f"lackey {trace.path.name}")
    workload = Workload(
        kind="lackey", pages=trace.page_count, phases=[phase],
        mem_op_fraction=trace.data_ops / trace.ops,
        load_fraction=(counts["L"] + counts["M"]) / trace.data_ops,  # an M is a load too
        kernel_fraction=0.0, placement=spec["placement"],
        params={**spec, "trace_summary": trace.summary()})
    return workload, LackeyOps(trace)
