"""`ibs-mprof replay`: drive the driver's NMI path with given MSR contents (conformance).

Each CSV row is one NMI on `cpu` at jiffies `time`, with that CPU's memory-profiler MSRs
holding the row's values when the handler runs. Rows are streamed in file order, lines read
with a length limit, so parsing needs the same memory for any file size (the result holds
what the rows produced: records and MSR writes, refused past what the memory available
holds); output is printed only after the whole file was read, so a bad row leaves no partial
result. A long replay shows progress on stderr.
"""

from __future__ import annotations

import csv
import functools
import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from generated.ibs_mprof import (
    IbsMprofCtl,
    IbsMprofData2,
    IbsMprofData3,
    IbsMprofLinaddr,
    IbsMprofPhyaddr,
)
from runtime.cost import machine_limits
from runtime.cpuid import SimulatedCpuid
from runtime.decode import parse_int
from runtime.driver import Driver
from runtime.errors import InputError
from runtime.machine import make_cpus
from runtime.msr import MsrFile
from runtime.progress import Progress, progress_bar
from runtime.topology import Topology, default_replay_topology
from runtime.vmstat import Vmstat
from safeio.inputs import open_input, reason

HEADER = ["cpu", "time", "ctl", "data2", "data3", "linaddr", "phyaddr"]
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,31}")
"""A column name as a header could hold it."""
MAX_LINE_BYTES = 4096
"""Longest CSV line accepted, in bytes (a row of seven 64-bit values needs well under 200)."""
ENTRY_BYTES = 110
"""Memory per record or MSR write kept (a list of 3-4 ints): tracemalloc over a 200,000-row
replay that kept 1,000,000 of them. A row of ours keeps about five."""
PROGRESS_LINES = 1 << 14
"""Lines read between two progress reports (about 0.3 s of replay)."""


def latch_sample(msr: MsrFile, ctl: int, data2: int, data3: int, linaddr: int,
                 phyaddr: int) -> None:
    """Put a sample's words into a CPU's memory-profiler MSRs as the hardware latches them
    (no WRMSR checks, no write hooks), so the NMI handler that runs next reads exactly these:
    a replay row's words, or a recorded sample's with CTL's Val set."""
    for addr, value in ((IbsMprofCtl.ADDRESS, ctl), (IbsMprofData2.ADDRESS, data2),
                        (IbsMprofData3.ADDRESS, data3), (IbsMprofLinaddr.ADDRESS, linaddr),
                        (IbsMprofPhyaddr.ADDRESS, phyaddr)):
        msr.latch(addr, value)


@dataclass
class ReplayResult:
    vmstat: dict[str, int]
    records: list[list[int]] = field(default_factory=list)
    msr_writes: list[list[int]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"vmstat": self.vmstat, "records": self.records, "msr_writes": self.msr_writes}


def replay(path: Path, topology: Topology | None = None, drain_every: int = 1,
           variant: str = "v7", progress: Progress | None = None,
           max_entries: int | None = None) -> ReplayResult:
    """Every row of the CSV through the driver's NMI path. progress (default: the command
    line's bar on stderr) hears the fraction of the file read; the result (records and MSR
    writes) may hold at most max_entries entries (default: what this machine's available
    memory holds at ENTRY_BYTES each), a longer replay is an InputError naming the line."""
    progress = progress_bar() if progress is None else progress
    try:
        return _replay(path, topology, drain_every, variant, progress, max_entries)
    finally:
        progress.done()


def _replay(path: Path, topology: Topology | None, drain_every: int, variant: str,
            progress: Progress, max_entries: int | None) -> ReplayResult:
    if max_entries is None:
        room = machine_limits().memory_bytes
        max_entries = None if room is None else int(room / ENTRY_BYTES)
    topo = topology or default_replay_topology()
    if drain_every < 1:
        raise InputError(f"--drain-every must be >= 1, got {drain_every}")
    vmstat = Vmstat()
    records: list[list[int]] = []
    writes: list[list[int]] = []
    current_cpu = [-1]  # the CPU whose work/NMI is running, for record attribution
    recording = [False]

    def record(pfn: int, nid: int, src: int, time: int) -> int:
        records.append([current_cpu[0], pfn, nid, time])
        return 0

    def on_write(cpu: int, msr: int, value: int) -> None:
        if recording[0]:
            writes.append([cpu, msr, value])

    cpus = make_cpus(topo)
    driver = Driver(topo, cpus, SimulatedCpuid(), vmstat, record, variant, on_msr_write=on_write)
    driver.init()
    recording[0] = True
    since_queued: dict[int, int] = {}

    def run_work(cpu: int) -> None:
        current_cpu[0] = driver.work_runner(cpu)
        driver.run_work(cpu)
        since_queued.pop(cpu, None)

    for line, row in _rows(path, topo, progress):
        if max_entries is not None and len(records) + len(writes) > max_entries:
            raise InputError(f"{path}:{line}: more than {max_entries:,} records and MSR writes "
                             "so far, more than the memory available holds; replay the CSV "
                             "in shorter pieces")
        cpu, time = row["cpu"], row["time"]
        latch_sample(cpus[cpu].msr, row["ctl"], row["data2"], row["data3"], row["linaddr"],
                     row["phyaddr"])
        current_cpu[0] = cpu
        driver.nmi(cpu, time)
        if cpus[cpu].irq_work_queued:
            driver.run_irq_work(cpu)
            since_queued[cpu] = 0
        if cpus[cpu].work_queued:
            since_queued[cpu] = since_queued.get(cpu, 0) + 1
            if since_queued[cpu] >= drain_every:
                run_work(cpu)
    for cpu in sorted(c for c, s in enumerate(cpus) if s.work_queued):
        run_work(cpu)
    return ReplayResult(driver.counters(), records, writes)


def _rows(path: Path, topo: Topology, progress: Progress) -> Any:
    try:
        handle = open_input(path)  # a FIFO or device is refused, not waited on
    except OSError as exc:
        raise InputError(f"{path}: cannot read replay CSV: {reason(exc)}") from None
    with handle:
        size = max(os.fstat(handle.fileno()).st_size, 1)
        reader = csv.reader(_lines(handle, path, lambda: progress.stage(
            "replaying", min(handle.tell() / size, 1.0))))
        try:
            header = next(reader, None)
            if header is None or [h.strip() for h in header] != HEADER:
                raise InputError(f"{path}:1: header must be {','.join(HEADER)}; "
                                 f"{_header_found(header)}")
            for row in reader:
                line = reader.line_num
                if not row or all(not cell.strip() for cell in row):
                    continue
                if len(row) != len(HEADER):
                    raise InputError(f"{path}:{line}: expected {len(HEADER)} fields "
                                     f"({','.join(HEADER)}), got {len(row)}")
                values = {}
                for name, cell in zip(HEADER, row, strict=True):
                    value = parse_int(cell, f"{path}:{line}: {name}")
                    if not 0 <= value < 1 << 64:
                        raise InputError(f"{path}:{line}: {name} = {cell.strip()} is not a "
                                         "64-bit unsigned value")
                    values[name] = value
                if values["cpu"] not in topo.cpus:
                    raise InputError(f"{path}:{line}: cpu {values['cpu']} does not exist "
                                     f"(topology has cpus 0..{len(topo.cpu_node) - 1})")
                yield line, values
        except (csv.Error, UnicodeDecodeError) as exc:
            raise InputError(f"{path}:{reader.line_num}: not valid CSV: {exc}") from None


def _header_found(header: list[str] | None) -> str:
    """What the first line held: its column names if it looks like a CSV header (a typo is
    worth seeing), else only its shape, so a path to some other file (a key, a password
    file) does not print that file's first line."""
    if not header:
        return "the file is empty"
    names = [h.strip() for h in header]
    if len(names) <= 2 * len(HEADER) and all(_NAME.fullmatch(n) for n in names):
        return f"got {','.join(names)!r}"
    return f"the first line is not a CSV header ({len(names)} field(s))"


def _lines(handle: BinaryIO, path: Path, report: Callable[[], None]) -> Iterator[str]:
    """The file's lines as text, each read with a length limit (a file without newlines is
    refused at MAX_LINE_BYTES instead of being read whole) and decoded on its own, so an error
    names the line; `report` is called every PROGRESS_LINES lines."""
    read = functools.partial(handle.readline, MAX_LINE_BYTES + 1)
    lineno = 0
    try:
        for lineno, line in enumerate(iter(read, b""), 1):
            if lineno % PROGRESS_LINES == 0:
                report()
            if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
                raise InputError(f"{path}:{lineno}: line longer than {MAX_LINE_BYTES} bytes; "
                                 f"expected {','.join(HEADER)}")
            yield line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}:{lineno}: not valid CSV: {exc}") from None
    except OSError as exc:
        raise InputError(f"{path}:{lineno + 1}: cannot read replay CSV: {reason(exc)}") \
            from None


def format_text(result: ReplayResult) -> str:
    lines = [f"{name} {value}" for name, value in result.vmstat.items()]
    lines.append(f"records {len(result.records)}")
    lines += [f"  cpu {c} pfn {pfn:#x} nid {nid} time {t}" for c, pfn, nid, t in result.records]
    lines.append(f"msr_writes {len(result.msr_writes)}")
    return "\n".join(lines)


def to_json(result: ReplayResult) -> str:
    return json.dumps(result.as_json())
