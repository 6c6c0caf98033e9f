"""A perf.data recording of IBS Op samples as the Memory Profiler samples of the same ops,
in time order, block by block: the API the simulation of a recording is built on.

`Ingest(path, topology)` reads the file in bounded blocks (runtime/perf/reader.py), keeps
the ibs_op samples (the PMU_MAPPINGS say which attr type that is), splits their raw payloads
into MSR words (runtime/perf/ibs.py), maps them to Memory Profiler words (runtime/perf/
mapping.py) and finds each sample's PFN and node in the topology. Iterating it yields
`MprofSamples` chunks in timestamp order: perf writes each CPU's samples in order but
interleaves CPUs, and promises (a FINISHED_ROUND record) that nothing written after the
next round mark is older than what came before the previous one, so a chunk is released
once two round marks have passed it; memory holds about two rounds of samples. Samples that
never reach the model are counted by reason (DROP_REASONS). `load_samples` gathers it all.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
import numpy.typing as npt

from generated.ibs_mprof import PAGE_SHIFT, IbsMprofPhyaddr
from runtime.counts import NamedCounts
from runtime.errors import InputError
from runtime.nodemap import NodeMap
from runtime.perf import abi
from runtime.perf.header import PerfHeader
from runtime.perf.ibs import op_words
from runtime.perf.mapping import MprofWords, OpMapping, load_mapping
from runtime.perf.reader import BLOCK_BYTES, Block, PerfDataReader, ReadTotals
from runtime.perf.sideband import AddressLookup, Sideband
from runtime.perf.sysfs import parse_list
from runtime.topology import MAX_CPUS, MAX_NODES, Node, Topology, home_cpus

I64 = npt.NDArray[np.int64]
U64 = npt.NDArray[np.uint64]
Bools = npt.NDArray[np.bool_]
DROP_REASONS = ("other_event", "unknown_event", "malformed", "no_raw", "raw_size",
                "not_valid", "unknown_cpu", "late")
"""Why a sample of the recording never reaches the model, in the order checked: another
event's sample (not ibs_op), an id no attr has, fields past its record, an ibs_op sample
recorded without --raw-samples, a payload whose size the caps do not announce, enable or
valid clear (perf skips those too), a CPU the topology does not have (no CPU of the model
could take it), a timestamp older than what was already released."""
DROP_WHY = {"other_event": "not ibs_op", "unknown_event": "a sample id no event has",
            "malformed": "fields past the record's end",
            "no_raw": "no raw payload: record with --raw-samples",
            "raw_size": "a payload size the caps do not announce",
            "not_valid": "IBS enable or valid clear", "unknown_cpu": "a CPU the topology lacks",
            "late": "older than samples already run"}
"""Each drop reason in a few words, for the summary a user reads."""


@dataclass(frozen=True)
class MprofSamples(MprofWords):
    """One chunk of samples in time order. data2/data3/linaddr/phyaddr are IBS_MPROF_*
    words (what the driver's NMI handler reads), kernel/l3_miss what the profiler's filters
    test; pfn = sample_pfn(phyaddr) and nid its node in the topology (-1: not online);
    vaddr is the op's data linear address, ip its RIP, as perf recorded them."""

    cpu: I64
    time_ns: U64
    pid: I64
    tid: I64
    ip: U64
    vaddr: U64
    pfn: I64
    nid: I64

    def __len__(self) -> int:
        return int(self.cpu.size)

    def take(self, rows: I64 | Bools) -> MprofSamples:
        return MprofSamples(**{f.name: getattr(self, f.name)[rows] for f in fields(self)})

    @classmethod
    def concat(cls, parts: list[MprofSamples]) -> MprofSamples:
        if not parts:
            return cls.empty()
        return cls(**{f.name: np.concatenate([getattr(p, f.name) for p in parts])
                      for f in fields(cls)})

    @classmethod
    def empty(cls) -> MprofSamples:
        kinds = {"time_ns": np.uint64, "ip": np.uint64, "vaddr": np.uint64, "data2": np.uint64,
                 "data3": np.uint64, "linaddr": np.uint64, "phyaddr": np.uint64,
                 "kernel": np.bool_, "l3_miss": np.bool_}
        return cls(**{f.name: np.zeros(0, dtype=kinds.get(f.name, np.int64))
                      for f in fields(cls)})


@dataclass
class IngestSummary:
    """What the whole recording held, complete once the samples were iterated."""

    header: PerfHeader
    drops: NamedCounts = field(default_factory=lambda: NamedCounts(DROP_REASONS))
    samples: int = 0
    """ibs_op samples that reached the model (yielded)."""
    totals: ReadTotals = field(default_factory=ReadTotals)
    sideband: Sideband = field(default_factory=Sideband)
    first_time_ns: int | None = None
    last_time_ns: int | None = None
    notes: list[str] = field(default_factory=list)
    """What the ingest assumed or had to leave out, for the report."""

    def lookup(self) -> AddressLookup:
        """vaddr -> mapping lookup over the MMAP records (build once, after iterating)."""
        return AddressLookup.build(self.sideband)


class Ingest:
    """Iterate a recording's Memory Profiler samples; `summary` is complete afterwards."""

    def __init__(self, path: Path, topology: Topology, mapping: OpMapping | None = None,
                 block_bytes: int = BLOCK_BYTES) -> None:
        self.path = path
        self.topology = topology
        self.nodes = NodeMap(topology)
        self.mapping = mapping or load_mapping()
        self.block_bytes = block_bytes
        self._reader = PerfDataReader(path, block_bytes)
        header = self._reader.header
        self.summary = IngestSummary(header=header, totals=self._reader.totals,
                                     sideband=self._reader.sideband)
        self.op_type = header.pmu_type("ibs_op")
        if self.op_type is None:
            named = [a for a in header.attrs if a.name.startswith("ibs_op")]
            self.op_type = named[0].type if named else None
            if self.op_type is None:
                self._reader.close()
                raise InputError(f"{path}: no ibs_op event in this recording (its PMU "
                                 "mappings and event names list none); record with "
                                 "`perf record -e ibs_op// --raw-samples`")
        self.op_attrs = {a.index for a in header.attrs if a.type == self.op_type}
        if not any(header.attrs[i].sample_type & abi.SAMPLE_TIME for i in self.op_attrs):
            self._reader.close()
            raise InputError(f"{path}: the ibs_op samples carry no timestamps "
                             "(sample_type without TIME); record them with perf record -T")
        self.cpu = header.cpu_family_model()
        if self.cpu is None:
            self.summary.notes.append("no CPUID in the recording: CPU errata not applied")
        self.fraction_read = 0.0
        """How much of the data section the blocks read so far cover (for progress)."""

    def __iter__(self) -> Iterator[MprofSamples]:
        header = self.summary.header
        pending: list[tuple[MprofSamples, I64]] = []
        round_max: dict[int, int] = {}
        released = -1  # newest timestamp released so far
        try:
            data_at, data_size = header.data_offset, max(header.data_size, 1)
            for block in self._reader.blocks():
                self.fraction_read = (block.file_offset - data_at) / data_size
                chunk, rounds = self._block(block)
                if len(chunk):
                    chunk, rounds = self._drop_late(chunk, rounds, released)
                    for r in np.unique(rounds).tolist():
                        newest = int(chunk.time_ns[rounds == r].max())
                        round_max[r] = max(round_max.get(r, 0), newest)
                    pending.append((chunk, rounds))
                settled = self.summary.totals.rounds - 1
                limit = max((t for r, t in round_max.items() if r < settled), default=-1)
                if limit > released and pending:
                    ready, pending = _split(pending, limit)
                    for r in [r for r in round_max if r < settled - 1]:
                        del round_max[r]
                    released = limit
                    if len(ready):
                        yield self._emit(ready)
            self.fraction_read = 1.0
            rest = MprofSamples.concat([p[0] for p in pending])
            if len(rest):
                yield self._emit(rest.take(np.argsort(rest.time_ns, kind="stable")))
        finally:
            self._reader.close()

    def _emit(self, chunk: MprofSamples) -> MprofSamples:
        self.summary.samples += len(chunk)
        if self.summary.first_time_ns is None:
            self.summary.first_time_ns = int(chunk.time_ns[0])
        self.summary.last_time_ns = int(chunk.time_ns[-1])
        return chunk

    def _drop_late(self, chunk: MprofSamples, rounds: I64,
                   released: int) -> tuple[MprofSamples, I64]:
        late = chunk.time_ns < np.uint64(max(released, 0)) if released >= 0 else \
            np.zeros(len(chunk), dtype=bool)
        if late.any():
            self.summary.drops["late"] += int(late.sum())
            return chunk.take(~late), rounds[~late]
        return chunk, rounds

    def _block(self, block: Block) -> tuple[MprofSamples, I64]:
        cols = block.samples
        drops = self.summary.drops
        known = cols.attr >= 0
        drops["unknown_event"] += int((~known).sum())
        is_op = known & np.isin(cols.attr, list(self.op_attrs))
        drops["other_event"] += int((known & ~is_op).sum())
        drops["malformed"] += int((is_op & cols.malformed).sum())
        is_op &= ~cols.malformed
        drops["no_raw"] += int((is_op & (cols.raw_at < 0)).sum())
        is_op &= cols.raw_at >= 0
        rows = np.flatnonzero(is_op)
        op = op_words(block.buf, cols.raw_at[rows], cols.raw_size[rows])
        drops["raw_size"] += int((~op.sized).sum())
        drops["not_valid"] += int((op.sized & ~op.valid).sum())
        keep = op.valid
        cpu = cols.cpu[rows]
        known_cpu = (cpu >= 0) & (cpu < len(self.topology.cpu_node))
        drops["unknown_cpu"] += int((keep & ~known_cpu).sum())
        keep &= known_cpu
        rows = rows[keep]
        words = {name: w[keep] for name, w in op.words.items()}
        record = RecordFields(cpu=cols.cpu[rows], time_ns=cols.time[rows], pid=cols.pid[rows],
                              tid=cols.tid[rows], ip=cols.ip[rows], misc=cols.misc[rows])
        chunk = mprof_samples(self.mapping, self.nodes, self.cpu, words, op.caps[keep],
                              record)
        return chunk, block.round[rows]


@dataclass
class RecordFields:
    """What perf recorded around each op sample: where, when, which task, its RIP and the
    record's misc (cpumode)."""

    cpu: I64
    time_ns: U64
    pid: I64
    tid: I64
    ip: U64
    misc: I64


def mprof_samples(mapping: OpMapping, nodes: NodeMap, cpu_model: tuple[str, int, int] | None,
                  words: dict[str, U64], caps: U64, record: RecordFields) -> MprofSamples:
    """Op samples (raw words per IBS Op register and their caps) as Memory Profiler samples,
    with each one's PFN (the driver's sample_pfn) and node."""
    record_kernel = (record.misc & abi.MISC_CPUMODE_MASK) == abi.MISC_KERNEL
    mapped = mapping.apply(words, caps, record_kernel, cpu_model)
    pfn = (IbsMprofPhyaddr.get_phy_addr(mapped.phyaddr) >> np.uint64(PAGE_SHIFT)).astype(
        np.int64)
    return MprofSamples(
        cpu=record.cpu, time_ns=record.time_ns, pid=record.pid, tid=record.tid, ip=record.ip,
        vaddr=words["IBS_DC_LINAD"], data2=mapped.data2, data3=mapped.data3,
        linaddr=mapped.linaddr, phyaddr=mapped.phyaddr, kernel=mapped.kernel,
        l3_miss=mapped.l3_miss, pfn=pfn, nid=nodes.nodes_of(pfn))


def _split(pending: list[tuple[MprofSamples, I64]],
           limit: int) -> tuple[MprofSamples, list[tuple[MprofSamples, I64]]]:
    """The pending samples at or before `limit`, time-sorted, and the rest (kept)."""
    ready, rest = [], []
    for chunk, rounds in pending:
        now = chunk.time_ns <= np.uint64(limit)
        ready.append(chunk.take(now))
        if not now.all():
            rest.append((chunk.take(~now), rounds[~now]))
    out = MprofSamples.concat(ready)
    return out.take(np.argsort(out.time_ns, kind="stable")), rest


def load_samples(path: Path, topology: Topology, mapping: OpMapping | None = None,
                 block_bytes: int = BLOCK_BYTES) -> tuple[MprofSamples, IngestSummary]:
    """Every Memory Profiler sample of the recording, in time order, with the summary."""
    ingest = Ingest(path, topology, mapping, block_bytes)
    chunks = list(ingest)
    return MprofSamples.concat(chunks), ingest.summary


def load_report_dump(path: Path, topology: Topology, mapping: OpMapping | None = None,
                     cpu_model: tuple[str, int, int] | None = None,
                     ) -> tuple[MprofSamples, NamedCounts]:
    """The op samples of a `perf report -D` text file as Memory Profiler samples in time
    order, with the drops counted (not_valid: enable or valid clear). Caps are what the
    text shows: ZEN4 when perf printed L3MissOnly, BRNTRGT when it printed IbsBrTarget."""
    from generated.cpuid import IbsCaps
    from generated.ibs_op import IbsOpCtl
    from runtime.perf.dumptext import parse_report
    from runtime.perf.ibs import OP_ALWAYS, OP_OPTIONAL
    from safeio.inputs import open_input, reason

    try:
        with open_input(path) as handle:
            lines = (raw.decode("utf-8", "replace") for raw in iter(
                lambda: handle.readline(1 << 17), b""))
            dumps = parse_report(lines, str(path))
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {reason(exc)}") from None
    names = [cls.NAME for cls in OP_ALWAYS] + [cls.NAME for cls, _ in OP_OPTIONAL]
    words = {name: np.array([d.words.get(name, 0) for d in dumps], dtype=np.uint64)
             for name in names}
    caps = np.array([IbsCaps(avail=True, fetch_sam=True, op_sam=True, zen4=d.zen4,
                             brn_trgt="IBS_BR_TARGET" in d.words).encode() for d in dumps],
                    dtype=np.uint64)
    record = RecordFields(
        cpu=np.array([d.cpu for d in dumps], dtype=np.int64),
        time_ns=np.array([d.time for d in dumps], dtype=np.uint64),
        pid=np.array([d.pid for d in dumps], dtype=np.int64),
        tid=np.array([d.tid for d in dumps], dtype=np.int64),
        ip=np.array([d.ip for d in dumps], dtype=np.uint64),
        misc=np.array([d.misc for d in dumps], dtype=np.int64))
    ctl = words["IBS_OP_CTL"]
    valid = IbsOpCtl.get_enable(ctl) & IbsOpCtl.get_val(ctl)
    drops = NamedCounts(DROP_REASONS)
    drops["not_valid"] = int((~valid).sum())
    keep = np.flatnonzero(valid)
    kept = {name: w[keep] for name, w in words.items()}
    kept_record = RecordFields(**{f.name: getattr(record, f.name)[keep]
                                  for f in fields(RecordFields)})
    samples = mprof_samples(mapping or load_mapping(), NodeMap(topology), cpu_model, kept,
                            caps[keep], kept_record)
    return samples.take(np.argsort(samples.time_ns, kind="stable")), drops


def header_topology(header: PerfHeader) -> tuple[Topology, list[str]] | None:
    """The machine perf ran on, from the recording's NUMA_TOPOLOGY (each node's CPUs) and
    MEM_TOPOLOGY (its memory blocks), as `topology --capture` reads sysfs without memory
    tiering: nodes with CPUs top tier (DRAM), CPU-less nodes lower (CXL); a node spans its
    first to its last block. None when either feature is missing; notes say what was assumed.
    """
    if not header.numa_nodes or not header.mem_nodes or header.mem_block_size >> PAGE_SHIFT < 1:
        return None
    where = f"{header.path}: NUMA_TOPOLOGY"
    cpus_of = {n.node: parse_list(n.cpus, where, MAX_CPUS) for n in header.numa_nodes}
    per_block = header.mem_block_size >> PAGE_SHIFT
    nodes = [Node(m.node, "top" if cpus_of.get(m.node) else "lower",
                  "dram" if cpus_of.get(m.node) else "cxl", int(m.blocks[0]) * per_block,
                  (int(m.blocks[-1]) - int(m.blocks[0]) + 1) * per_block)
             for m in sorted(header.mem_nodes, key=lambda m: m.node) if m.blocks.size]
    if any(n.nid >= MAX_NODES for n in nodes):
        raise InputError(f"{header.path}: MEM_TOPOLOGY: a node id is not below {MAX_NODES}")
    tops = [n.nid for n in nodes if n.toptier]
    cpu_node = {cpu: nid for nid, cpus in cpus_of.items() for cpu in cpus}
    if not tops or not cpu_node:
        return None
    notes = ["topology from the recording's NUMA_TOPOLOGY and MEM_TOPOLOGY: nodes with CPUs "
             "top tier (dram), CPU-less nodes lower tier (cxl)"]
    cpus, offline, moved = home_cpus(cpu_node, nodes)
    homeless = sorted(offline + moved)
    if homeless:
        notes.append(f"CPUs {homeless[:8]}{'...' if len(homeless) > 8 else ''} are offline or "
                     f"on a node without memory: put on node {cpus[homeless[0]]}")
    try:
        return Topology(tuple(nodes), cpus), notes
    except InputError as exc:
        raise InputError(f"{header.path}: MEM_TOPOLOGY: {exc}") from None
