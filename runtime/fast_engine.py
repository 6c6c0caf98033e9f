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
from typing import NamedTuple, TypeVar

import numpy as np
import numpy.typing as npt

from generated.data_src import DataSrc
from generated.ibs_mprof import (
    PAGE_SHIFT,
    IbsMprofData2,
    IbsMprofData3,
    IbsMprofPhyaddr,
)
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
class BatchRing:
    """A CPU's ring contents between blocks, as columns (FIFO order)."""

    times: I64 = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    pfns: I64 = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    capacity: int = 0

    def __len__(self) -> int:
        return int(self.times.size)


@dataclass
class CpuBatch:
    """Per-CPU state the fast engine carries from block to block."""

    control: Control | None = None  # what the driver programmed (read back at start)
    armed: bool = False  # counting; a lost interrupt stops it for good
    next_tag_ms: float = 0.0
    dt_ms: float = 0.0
    next_op_index: int = 0
    delivers: bool = True
    pending: bool = False
    work_ms: float = 0.0
    ring: BatchRing = field(default_factory=BatchRing)


CHUNK_CALLS = 65536
"""Samples per vectorised pass: a chunk's columns stay in the CPU's cache."""
FEW_CYCLES_PER_PUSH = 32
"""Below one ring cycle per this many pushes, cycle starts are searched one at a time."""


class _Kept(NamedTuple):
    """Samples the profilers kept in a block (all CPUs, grouped by CPU in CPU order)."""

    cpu: I64
    times: F64
    page: I64
    offset: I64  # in the page
    load: npt.NDArray[np.bool_]
    store: npt.NDArray[np.bool_]
    l3_miss: npt.NDArray[np.bool_]
    memory: npt.NDArray[np.bool_]


@dataclass
class _Drained:
    """Samples the works of a block popped, CPU by CPU, each CPU's in drain order; the
    drains themselves as (work time, how many samples) runs, `cpu_drains` per CPU."""

    drain_ms: list[F64] = field(default_factory=list)
    drain_len: list[I64] = field(default_factory=list)
    times: list[I64] = field(default_factory=list)
    pfns: list[I64] = field(default_factory=list)
    cpu_drains: list[int] = field(default_factory=list)


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
        # DataSrc of an L3 miss served by each node (only nids of served samples are looked up)
        self._src_of_nid = np.full(max(n.nid for n in self.topology.nodes) + 2, -1,
                                   dtype=np.int64)
        for node in self.topology.nodes:
            self._src_of_nid[node.nid] = int(memory_data_src(node.memory))
        self._cpu_node = np.array(self.topology.cpu_node, dtype=np.int64)

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
            st.ring.capacity = state.ring.capacity

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
        return [len(st.ring) for st in self.state]

    def _sync_last_access(self) -> None:
        touched = np.flatnonzero(self.last_access >= 0)
        when = self.last_access[touched].astype(np.int64)
        self.memory.last_access_ms.update(zip(touched.tolist(), when.tolist(), strict=True))

    # --- one block ------------------------------------------------------------------------------
    def _block(self, limit: float, inclusive: bool) -> None:
        drained = _Drained()
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
        if kept:
            # Every CPU's NMIs in one vectorised pass; the rings stay per CPU.
            batch = kept[0] if len(kept) == 1 else _Kept(
                *(np.concatenate([getattr(k, name) for k in kept]) for name in _Kept._fields))
            if np.any(np.diff(batch.cpu) < 0):  # CPUs programmed differently interleave
                order = np.argsort(batch.cpu, kind="stable")
                batch = batch._replace(**{name: getattr(batch, name)[order]
                                          for name in _Kept._fields})
            # In cache-sized chunks, like record_batch: each sample's NMI is its own.
            jiffies, tag_ms, got_pfns, push = (np.concatenate(parts) for parts in zip(*(
                self._nmi_batch(_Kept._make(col[i:i + CHUNK_CALLS] for col in batch))
                for i in range(0, batch.cpu.size, CHUNK_CALLS)), strict=True))
            bounds = np.searchsorted(batch.cpu, np.arange(len(self.state) + 1)).tolist()
            if not push.all():  # drop what the handler filtered out, keeping CPU bounds
                kept_before = np.r_[0, np.cumsum(push)]
                bounds = kept_before[bounds].tolist()
                jiffies, tag_ms, got_pfns = jiffies[push], tag_ms[push], got_pfns[push]
        else:
            bounds = [0] * (len(self.state) + 1)
        for cpu, st in enumerate(self.state):
            before = len(drained.drain_ms)
            a, b = bounds[cpu], bounds[cpu + 1]
            if b > a:
                self._ring(cpu, st, jiffies[a:b], tag_ms[a:b], got_pfns[a:b], drained)
            self._drain_pending(st, limit, inclusive, drained)
            drained.cpu_drains.append(sum(w.size for w in drained.drain_ms[before:]))
        if not drained.drain_ms:
            return
        # Each CPU's drains are in order and the CPUs in ascending order: a stable sort of
        # the drains by work time gives the canonical (time, CPU, ring order); each drain's
        # samples follow it in ring order. Sorting drains, not samples: ~100x fewer.
        drain_ms = np.concatenate(drained.drain_ms)
        drain_len = np.concatenate(drained.drain_len)
        by_time = np.argsort(drain_ms, kind="stable")
        lengths = drain_len[by_time]
        first = (np.cumsum(drain_len) - drain_len)[by_time]  # where each drain's samples are
        order = np.repeat(first - (np.cumsum(lengths) - lengths), lengths) + \
            np.arange(int(lengths.sum()))
        work_ms = np.repeat(drain_ms[by_time], lengths)
        cpus = np.repeat(np.repeat(np.arange(len(self.state), dtype=np.int32),
                                   drained.cpu_drains)[by_time], lengths)
        times = np.concatenate(drained.times)[order]
        pfns = np.concatenate(drained.pfns)[order]
        nids = self._cpu_node[cpus]
        pages = self.memory.pages_at(pfns)
        ready = record_batch(self.pghot, pfns, nids, times)
        self.records.extend(sample_ms=times - INITIAL_JIFFIES, drain_ms=work_ms, cpu=cpus,
                            pfn=pfns,
                            page=pages, ready=ready)

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

    def _profile(self, cpus: list[int], limit: float, inclusive: bool) -> _Kept | None:
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
            return _Kept(got_cpu, got_time, _sel(ops.page, k), _sel(ops.offset, k),
                         _sel(ops.load, k), _sel(ops.store, k), yes, yes)
        assert k is not None
        return _Kept(got_cpu, got_time, _pick(ops.page, k), _pick(ops.offset, k),
                     _pick(ops.load, k), _pick(ops.store, k), _pick(ops.l3_miss, k), k >= 0)

    def _nmi_batch(self, k: _Kept) -> tuple[I64, F64, I64, npt.NDArray[np.bool_]]:
        """What the profilers latch (via the vectorised setters) and what the NMI handler
        makes of it (via the vectorised getters): counters and filters. Returns jiffies,
        times, PFN and whether each sample is pushed to its CPU's ring."""
        n = k.times.size
        memory_op, l3_miss = k.memory, k.l3_miss
        cpu_node = self._cpu_node.take(k.cpu)
        # Every sample a memory op that missed (always so under L3MissOnly): the flags that
        # say so are one value for the batch (the setters take an int), and nothing is masked.
        all_missed = bool(memory_op.all()) and bool(l3_miss.all())
        pfn = self.memory.pfns_of(k.page)
        if not all_missed:
            pfn = np.where(memory_op, pfn, 0)
        nid = self.nodemap.nodes_of(pfn)
        src = self._src_of_nid.take(nid, mode="clip")
        rmt = nid != cpu_node
        paddr = (pfn << PAGE_SHIFT) | k.offset
        miss: npt.NDArray[np.bool_] | int = 1
        valid: npt.NDArray[np.bool_] | int = 1
        if not all_missed:
            served = memory_op & l3_miss  # from memory: DRAM or extension memory, maybe remote
            src = np.where(served, src, np.where(memory_op, int(DataSrc.LCL_CCX),
                                                 int(DataSrc.NONE)))
            rmt &= served
            paddr = np.where(memory_op, paddr, 0)
            miss, valid = l3_miss, memory_op
        data2 = IbsMprofData2.encode_array(data_src=src.astype(np.uint64), rmt_node=rmt)
        data3 = IbsMprofData3.encode_array(ld_op=k.load, st_op=k.store, dc_miss=miss,
                                           l2_miss=miss, lin_addr_valid=valid,
                                           phy_addr_valid=valid)
        phyaddr = IbsMprofPhyaddr.encode_array(phy_addr=paddr.astype(np.uint64))
        # The handler: count, then filter in the seed's order.
        self.vmstat.count("hwhint_total_events", n)
        got_src = IbsMprofData2.get_data_src(data2)
        self.vmstat.count("hwhint_dram_accesses", int(np.count_nonzero(got_src == DataSrc.DRAM)))
        self.vmstat.count("hwhint_extmem_accesses",
                          int(np.count_nonzero(got_src == DataSrc.EXT_MEM)))
        lin_ok = IbsMprofData3.get_lin_addr_valid(data3) != 0
        phy_ok = IbsMprofData3.get_phy_addr_valid(data3) != 0
        got_pfn = (IbsMprofPhyaddr.get_phy_addr(phyaddr) >> np.uint64(PAGE_SHIFT)).astype(
            np.int64)
        # The PFN read back is the one latched (unless the register layout loses bits): its
        # node is known already.
        online = nid >= 0 if np.array_equal(got_pfn, pfn) else self.nodemap.nodes_of(got_pfn) >= 0
        outcomes = self.driver.outcomes
        outcomes["laddr_invalid"] += int((~lin_ok).sum())
        outcomes["paddr_invalid"] += int((lin_ok & ~phy_ok).sum())
        outcomes["pfn_offline"] += int((lin_ok & phy_ok & ~online).sum())
        push = lin_ok & phy_ok & online
        # jiffies: int() of the time from INITIAL_JIFFIES, as the reference's NMI takes it
        return k.times.astype(np.int64) + INITIAL_JIFFIES, k.times, got_pfn, push

    def _ring(self, cpu: int, st: CpuBatch, jiffies: I64, times: F64, pfns: I64,
              drained: _Drained) -> None:
        """Pushes in order; the first push with no work pending queues irq_work, whose work
        runs work_latency later and drains everything pushed up to then (tags come before
        works at one instant); pushes into a full ring are dropped."""
        n = times.size
        if n == 0:
            return
        latency = self.cfg.work_latency_ms
        # A cycle starts at a push with no work pending (its work runs `latency` later) and
        # takes every push up to the work's time; the next push starts the next cycle.
        # Only the cycle starts are looked at. With few cycles (many pushes per work latency)
        # each next start is searched for alone; otherwise every push's is found at once.
        few = latency > 0 and float(times[-1] - times[0]) / latency + 1 < n / FEW_CYCLES_PER_PUSH
        table = None if few else np.searchsorted(times, times + latency, side="right")

        def following(j: int) -> int:
            """The first push after the work of a cycle starting at push j."""
            if table is None:
                return j + int(times[j:].searchsorted(times.item(j) + latency, side="right"))
            return int(table[j])

        if st.pending:
            j = int(np.searchsorted(times, st.work_ms, side="right"))
            works = [st.work_ms]
        else:
            j = following(0)
            works = [float(times[0]) + latency]
        starts = [0]
        while j < n:
            starts.append(j)
            j = following(j)
        works += (times[starts[1:]] + latency).tolist()
        cycle_start = np.array(starts, dtype=np.int64)
        lengths = np.diff(np.append(cycle_start, n))
        carry, capacity = len(st.ring), st.ring.capacity
        last = starts[-1]  # every cycle before the last drains in this batch
        if lengths[0] + carry <= capacity and lengths.max() <= capacity:
            kept_idx = None  # no cycle fills the ring: every push is accepted
            accepted = n
        else:
            # Each cycle accepts pushes while its ring has room (the first after the carry).
            cycle = np.repeat(np.arange(len(starts)), lengths)
            room = np.full(len(starts), capacity, dtype=np.int64)
            room[0] -= carry
            kept_idx = np.flatnonzero(np.arange(n) - cycle_start[cycle] < room[cycle])
            accepted = int(kept_idx.size)
        st.pending, st.work_ms = True, works[-1]
        dropped = n - accepted
        self.vmstat.count("hwhint_useful_events", accepted)
        self.driver.outcomes["pushed"] += accepted
        if dropped:
            self.driver.outcomes["ring_full"] += dropped
            if self.driver.behaviour.count_ring_full:
                self.vmstat.count("hwhint_dropped_events", dropped)
        # Each drain takes the ring's earlier contents plus this batch's accepted pushes of
        # its cycle; whatever the last cycle accepted stays in the ring.
        ring = st.ring
        if len(starts) > 1:  # some cycle (maybe the carried one, with no push) drained
            drain_ms = np.array(works[:-1])
            if kept_idx is None:
                out_len = lengths[:-1]
                out_times, out_pfns = jiffies[:last], pfns[:last]
                ring_times, ring_pfns = jiffies[last:], pfns[last:]
            else:
                split = int(np.searchsorted(kept_idx, last))
                out, rest = kept_idx[:split], kept_idx[split:]
                out_len = np.diff(np.searchsorted(out, cycle_start))  # kept per drained cycle
                out_times, out_pfns = jiffies[out], pfns[out]
                ring_times, ring_pfns = jiffies[rest], pfns[rest]
            drained.drain_ms += [np.array([works[0]]), drain_ms]  # the carried ring, then out
            drained.drain_len += [np.array([len(ring)]), out_len]
            drained.times += [ring.times, out_times]
            drained.pfns += [ring.pfns, out_pfns]
            ring.times, ring.pfns = ring_times.copy(), ring_pfns.copy()  # not views of the block
        else:
            add_times = jiffies if kept_idx is None else jiffies[kept_idx]
            add_pfns = pfns if kept_idx is None else pfns[kept_idx]
            ring.times = np.concatenate([ring.times, add_times])
            ring.pfns = np.concatenate([ring.pfns, add_pfns])

    def _drain(self, st: CpuBatch, drained: _Drained) -> None:
        """The pending work runs: the ring's whole contents at its time."""
        ring = st.ring
        drained.drain_ms.append(np.array([st.work_ms]))
        drained.drain_len.append(np.array([len(ring)]))
        drained.times.append(ring.times)
        drained.pfns.append(ring.pfns)
        ring.times = np.zeros(0, dtype=np.int64)
        ring.pfns = np.zeros(0, dtype=np.int64)
        st.pending = False

    def _drain_pending(self, st: CpuBatch, limit: float, inclusive: bool,
                       drained: _Drained) -> None:
        """A work whose time falls inside this block runs after the block's tags."""
        if st.pending and (st.work_ms <= limit if inclusive else st.work_ms < limit):
            self._drain(st, drained)


G = TypeVar("G", bound=np.generic)


def _sel(col: npt.NDArray[G], k: I64 | None) -> npt.NDArray[G]:
    """col[k], or col itself where k is None (everything selected, in order)."""
    return col if k is None else col[k]


def _pick(col: npt.NDArray[G], k: I64) -> npt.NDArray[G]:
    """col[k] where k >= 0, zero (False) where k < 0 (a tag that is not a memory op)."""
    out = np.zeros(k.size, dtype=col.dtype)
    out[k >= 0] = col[k[k >= 0]]
    return out
