"""The fast engine: the reference pipeline, one block of time at a time, in numpy.

Only kmigrated passes, kswapd and the timeline read or change the state that tagging, the NMI
path, the ring and pghot_record_access depend on (page placement, records). So between two such
"global" events, a block of every CPU's tags is processed at once:
1. tag times: a period's worth of ops per step, the same float additions as the reference;
2. tagged ops: the same per-CPU random streams (workloads.DrawStream) the reference consumes,
   for every CPU with the same control at once; only memory ops are drawn;
3. the profiler's filters, then the MSR contents it would latch, built and read back through
   the *vectorised* generated accessors, and the driver's filters and counters;
4. the ring and its work per CPU: drain times, ring-full drops, in the canonical event order;
5. pghot_record_access for all drained samples in call order (runtime/pghot/batch.py).
Global events then run the very same code as the reference (kmigrated, demotion, observers).
The same scenario and seed therefore give the same counters, records and promotions.
"""

from __future__ import annotations

import heapq
from collections import Counter
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from runtime.jiffies import INITIAL_JIFFIES
from runtime.memory import Memory
from runtime.pghot.batch import record_batch
from runtime.profiler import (
    BatchOpSource,
    Control,
    decode_control,
    interrupt_delivered,
    memory_data_src,
)
from runtime.reference_engine import KSWAPD, KernelState, SimConfig
from runtime.sample_path import Machine, Samples, new_rings, node_sources, run_block
from runtime.workloads import Workload

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]


@dataclass
class ProfilerCounts:
    """What metrics read from a profiler: kept tags, discards by reason, lost interrupts."""

    kept: int = 0
    discards: Counter[str] = field(default_factory=Counter)
    lost_interrupts: int = 0


@dataclass
class CpuBatch:
    """Per-CPU state the fast engine carries from block to block."""

    control: Control | None = None  # what the driver programmed (read back at start)
    armed: bool = False  # counting; a lost interrupt stops it for good
    next_tag_ms: float = 0.0
    dt_ms: float = 0.0
    next_op_index: int = 0
    delivers: bool = True


CHUNK_CALLS = 65536
"""Samples per vectorised pass: a chunk's columns stay in the CPU's cache."""
_NO_SAMPLES = Samples(*(np.zeros(0, dtype=t) for t in (np.int64, np.float64, np.int64,
                                                          np.int64, bool, bool, bool, bool)))


class FastEngine(KernelState):
    def __init__(self, cfg: SimConfig, source: BatchOpSource, memory: Memory,
                 workload: Workload) -> None:
        # The driver's own work item never runs here: the ring is modelled in batches.
        super().__init__(cfg, memory, lambda *a: 0)
        self.source = source
        self.workload = workload
        self.profilers = [ProfilerCounts() for _ in self.cpus]
        self.state = [CpuBatch() for _ in self.cpus]
        self._tag_memo: tuple[tuple[float, float, float, bool], F64, float] | None = None
        self.nodemap = self.pghot.nodemap
        # each page's latest access time in ms, as the float tag time: int() is taken only
        # when demotion reads it (int of the max is the max of the ints: times are >= 0)
        self.last_access = np.full(self.workload.pages, -1.0)
        # DataSrc of an L3 miss served by each node
        self._node_src = node_sources(self.nodemap.tables, {
            n.nid: int(memory_data_src(n.memory)) for n in self.topology.nodes})
        self._cpu_node = np.array(self.topology.cpu_node, dtype=np.int64)
        self.rings = new_rings(len(self.cpus), self.cpus[0].ring.capacity + 1 if self.cpus
                               else 2)

    # --- set-up -------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the kernel side, then read back what the driver programmed on each CPU."""
        self._start_kernel()
        for cpu, st in enumerate(self.state):
            state = self.cpus[cpu]
            st.control = control = decode_control(state.msr, self.cfg.cycles_per_op)
            st.armed = control.armed
            st.dt_ms = control.period_ops / self.cfg.ops_per_ms
            st.next_tag_ms = 0.0 + st.dt_ms
            st.delivers = interrupt_delivered(state.msr, state.apic)

    # --- the run --------------------------------------------------------------------------------
    def run(self, until_ms: float | None = None) -> None:
        end = self.cfg.duration_ms if until_ms is None else until_ms
        while self._queue and self._queue[0][0] < end:
            when, kind, arg, _ = heapq.heappop(self._queue)
            if kind == KSWAPD and self.demoter is not None and not self.demoter.has_work():
                # A kswapd round with nothing to demote changes nothing the tags depend on,
                # so it needs no block boundary: run it (it forgets its wake-ups) and go on.
                self.now_ms = when
                super()._global(kind, arg)
                continue
            self._block(when, inclusive=True)
            self.now_ms = when
            self._global(kind, arg)
        self._block(end, inclusive=False)
        self.now_ms = end

    def _global(self, kind: int, arg: int) -> None:
        """The reference's own handling; demotion first learns the LRU ages of the block."""
        if kind == KSWAPD:
            self._sync_last_access()  # only demotion reads LRU ages
        super()._global(kind, arg)

    def ring_lengths(self) -> list[int]:
        """Samples waiting in each CPU's ring (for the end-of-run accounting)."""
        r = self.rings
        return [int(n) for n in (r.head - r.tail) % r.pfn.shape[1]]

    def _sync_last_access(self) -> None:
        touched = np.flatnonzero(self.last_access >= 0)
        when = self.last_access[touched].astype(np.int64)
        self.memory.last_access_ms.update(zip(touched.tolist(), when.tolist(), strict=True))

    # --- one block ------------------------------------------------------------------------------
    def _block(self, limit: float, inclusive: bool) -> None:
        # CPUs whose profilers run alike are tagged and filtered in one pass; a CPU whose
        # interrupt goes nowhere stops at its first kept sample, so it goes alone.
        groups: dict[tuple[object, ...], list[int]] = {}
        for cpu, st in enumerate(self.state):
            if st.armed:
                assert st.control is not None
                key = (st.control, True) if st.delivers else (cpu, False)
                groups.setdefault(key, []).append(cpu)
        # A group's CPUs go a few at a time, about CHUNK_CALLS tags each (cache-sized).
        span = max(limit - self.now_ms, 0.0)
        kept = [got for cpus in groups.values() for part in self._cache_sized(cpus, span)
                if (got := self._profile(part, limit, inclusive)) is not None]
        batch = _NO_SAMPLES if not kept else kept[0] if len(kept) == 1 else Samples(
            *(np.concatenate([getattr(k, name) for k in kept]) for name in Samples._fields))
        if np.any(np.diff(batch.cpu) < 0):  # CPUs programmed differently interleave
            order = np.argsort(batch.cpu, kind="stable")
            batch = Samples(*(getattr(batch, name)[order] for name in Samples._fields))
        machine = Machine(self.memory.page_frames(), self.nodemap.tables, self._node_src,
                          self._cpu_node)
        drains = run_block(batch, machine, self.rings, self.cfg.work_latency_ms, limit,
                           inclusive, self.driver.behaviour.count_ring_full,
                           self.vmstat.events.array, self.driver.outcomes.array)
        if not drains.length.size:
            return
        # Each CPU's drains are in order and the CPUs in ascending order: a stable sort of
        # the drains by work time gives the canonical (time, CPU, ring order); each drain's
        # samples follow it in ring order.
        by_time = np.argsort(drains.work_ms, kind="stable")
        lengths = drains.length[by_time]
        order = np.repeat(drains.start[by_time] - (np.cumsum(lengths) - lengths), lengths) + \
            np.arange(int(lengths.sum()))
        work_ms = np.repeat(drains.work_ms[by_time], lengths)
        cpus = np.repeat(drains.cpu[by_time], lengths)
        times = drains.jiffies[order]
        pfns = drains.pfn[order]
        nids = self._cpu_node[cpus]
        pages = self.memory.pages_at(pfns)
        ready = record_batch(self.pghot, pfns, nids, times)
        self.records.extend(sample_ms=times - INITIAL_JIFFIES, drain_ms=work_ms, cpu=cpus,
                            pfn=pfns, page=pages, ready=ready)

    def _cache_sized(self, cpus: list[int], span_ms: float) -> list[list[int]]:
        """cpus in runs of consecutive CPUs that tag about CHUNK_CALLS times in span_ms."""
        tags = max(span_ms / min(self.state[cpu].dt_ms for cpu in cpus), 1.0)
        per = max(int(CHUNK_CALLS // tags), 1)
        return [cpus[i:i + per] for i in range(0, len(cpus), per)]

    def _tag_times(self, st: CpuBatch, limit: float, inclusive: bool) -> F64:
        """Tag instants in this block: t, t + dt, ... by repeated float addition (as the
        reference's now + need / rate), up to the limit. CPUs in step share one computation."""
        key = (st.next_tag_ms, st.dt_ms, limit, inclusive)
        memo = self._tag_memo
        if memo is not None and memo[0] == key:
            st.next_tag_ms = memo[2]
            return memo[1]
        times = self._tag_times_uncached(st, limit, inclusive)
        self._tag_memo = (key, times, st.next_tag_ms)
        return times

    def _tag_times_uncached(self, st: CpuBatch, limit: float, inclusive: bool) -> F64:
        out: list[F64] = []
        t0 = st.next_tag_ms
        while True:
            n = max(int((limit - t0) / st.dt_ms) + 2, 2)
            steps = np.full(n, st.dt_ms)
            steps[0] = t0
            times = np.cumsum(steps)
            cut = int(np.searchsorted(times, limit, side="right" if inclusive else "left"))
            out.append(times[:cut])
            if cut < n:
                st.next_tag_ms = float(times[cut])
                break
            t0 = float(times[-1] + st.dt_ms)
        return np.concatenate(out)

    def _profile(self, cpus: list[int], limit: float, inclusive: bool) -> Samples | None:
        """The tags of CPUs with one control in this block through their profilers; the
        samples they keep. The profiler's filters, in its order: candidates are the tags
        L3MissOnly lets through (the memory ops that missed, or every tag), then CTL2's RIP
        filters. A CPU whose interrupt is lost (alone in its group) stops at its first kept
        sample: Val stays set and nobody re-arms it."""
        sts = [self.state[cpu] for cpu in cpus]
        times = [self._tag_times(st, limit, inclusive) for st in sts]
        sizes = np.array([t.size for t in times], dtype=np.int64)
        if not sizes.any():
            return None
        control = sts[0].control
        assert control is not None
        miss_only = control.ctl.l3_miss_only
        ops = self.source.tagged_batches(cpus, [st.next_op_index for st in sts],
                                         control.period_ops, times, non_memory=not miss_only)
        for st, t in zip(sts, times, strict=True):
            st.next_op_index += control.period_ops * t.size
        op_flat: I64  # each memory op's place in the flat tag order
        if ops.at.size == sizes.sum():  # every tag a memory op: they are the tags, in order
            op_flat = np.arange(ops.at.size, dtype=np.int64)
        else:
            local = np.zeros(max(cpus) + 1, dtype=np.int64)
            local[cpus] = np.arange(len(cpus))
            base = np.r_[0, np.cumsum(sizes)[:-1]]  # each CPU's first tag in the flat order
            op_flat = base[local[ops.cpu]] + ops.at
        # Index arrays below are None where they would select everything (the usual case:
        # under L3MissOnly in a miss-heavy workload, with no RIP filter), saving the copies.
        op: I64 | None
        if miss_only:
            op = None if ops.l3_miss.all() else np.flatnonzero(ops.l3_miss)  # cand -> mem op
            cand, cand_cpu = _sel(op_flat, op), _sel(ops.cpu, op)
            kernel, cand_time = _sel(ops.kernel, op), _sel(ops.when, op)
        else:
            assert ops.other_kernel is not None
            total = int(sizes.sum())
            cand = np.arange(total, dtype=np.int64)
            cand_cpu = np.repeat(np.array(cpus, dtype=np.int64), sizes)
            cand_time = np.concatenate(times)
            op = np.full(total, -1, dtype=np.int64)
            op[op_flat] = np.arange(op_flat.size)
            kernel = np.empty(total, dtype=bool)
            kernel[op_flat] = ops.kernel
            kernel[op < 0] = ops.other_kernel
        off = np.zeros(cand.size, dtype=bool)
        excl_k = kernel if control.ctl2.exclude_kernel else off
        excl_u = ~excl_k & ~kernel if control.ctl2.exclude_user else off
        excluded = excl_k | excl_u
        filtered = bool(excluded.any())  # e.g. kernel RIPs excluded, and there are some
        kept: I64 | None = np.flatnonzero(~excluded) \
            if filtered or not sts[0].delivers else None
        stop = int(sizes.sum())
        if kept is not None and kept.size and not sts[0].delivers:
            assert len(cpus) == 1
            stop = int(cand[kept[0]]) + 1
            kept = kept[:1]
            sts[0].armed = False
            self.profilers[cpus[0]].lost_interrupts += 1
        seen = int(np.searchsorted(cand, stop))  # candidates tagged before the stop
        mem_upto = int(np.searchsorted(op_flat, stop))
        if self.demoter is not None:  # only demotion reads LRU ages
            np.maximum.at(self.last_access, ops.page[:mem_upto], ops.when[:mem_upto])
        # Tags before the stop, per CPU: sizes, except for the stopped CPU.
        tagged = sizes if stop == sizes.sum() else np.array([stop])
        span = len(self.state)
        candidates = np.bincount(cand_cpu[:seen], minlength=span)[cpus]
        per_cpu = {"l3_hit": tagged - candidates}  # every tag L3MissOnly did not let through
        if filtered:
            per_cpu["excluded_kernel"] = np.bincount(cand_cpu[:seen][excl_k[:seen]],
                                                     minlength=span)[cpus]
            per_cpu["excluded_user"] = np.bincount(cand_cpu[:seen][excl_u[:seen]],
                                                   minlength=span)[cpus]
        kept_per_cpu = np.bincount(_sel(cand_cpu, kept), minlength=span)[cpus].tolist()
        counts = {name: c.tolist() for name, c in per_cpu.items()}
        for i, cpu in enumerate(cpus):
            prof = self.profilers[cpu]
            for name, c in counts.items():
                if c[i]:
                    prof.discards[name] += c[i]
            prof.kept += kept_per_cpu[i]
        n_kept = cand.size if kept is None else kept.size
        if n_kept == 0 or not sts[0].armed:
            return None  # a stopped profiler's last sample interrupts nobody
        k = kept if op is None else _sel(op, kept)
        got_cpu, got_time = _sel(cand_cpu, kept), _sel(cand_time, kept)
        if miss_only:  # every candidate is a memory op that missed
            yes = np.ones(n_kept, dtype=bool)
            return Samples(got_cpu, got_time, _sel(ops.page, k), _sel(ops.offset, k),
                         _sel(ops.load, k), _sel(ops.store, k), yes, yes)
        assert k is not None
        return Samples(got_cpu, got_time, _pick(ops.page, k), _pick(ops.offset, k),
                     _pick(ops.load, k), _pick(ops.store, k), _pick(ops.l3_miss, k), k >= 0)


G = TypeVar("G", bound=np.generic)


def _sel(col: npt.NDArray[G], k: I64 | None) -> npt.NDArray[G]:
    """col[k], or col itself where k is None (everything selected, in order)."""
    return col if k is None else col[k]


def _pick(col: npt.NDArray[G], k: I64) -> npt.NDArray[G]:
    """col[k] where k >= 0, zero (False) where k < 0 (a tag that is not a memory op)."""
    out = np.zeros(k.size, dtype=col.dtype)
    out[k >= 0] = col[k[k >= 0]]
    return out
