"""The fast engine: the reference pipeline, one block of time at a time, in compiled loops.

Only kmigrated passes, kswapd and the timeline read or change the state that tagging, the NMI
path, the ring and pghot_record_access depend on (page placement, records). So between two such
"global" events, a block of every CPU's tags is processed at once:
1. tag times: a period's worth of ops per step, the same float additions as the reference;
2. tagged ops: the same per-CPU random streams and draw rules the reference uses
   (runtime/draws.py, compiled), for the CPUs programmed alike at once; only memory ops are
   drawn, and under L3MissOnly the profiler's filters are applied as they are;
3. the profiler's filters (other set-ups, traces), the MSR contents it latches, the NMI
   handler's filters and counters, the ring and its work per CPU (runtime/sample_path.py,
   compiled over the same scalar rules the reference calls), in the canonical event order;
   2 and 3 go a cache-sized part of the CPUs at a time;
4. pghot_record_access for all drained samples in call order (runtime/pghot/batch.py).
Global events then run the very same code as the reference (kmigrated, demotion, observers).
The same scenario and seed therefore give the same counters, records and promotions.
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from runtime.draws import KeptMisses
from runtime.jiffies import INITIAL_JIFFIES
from runtime.kernel_state import KSWAPD, PHASE_END, KernelState, ProfilerCounts, SimConfig
from runtime.memory import Memory
from runtime.numab.source import HintCalls
from runtime.pghot.batch import record_batch
from runtime.pghot.tunables import PGHOT_HINTFAULTS, PGHOT_HWHINTS
from runtime.profiler import (
    DISCARD_REASONS,
    KEPT_COL,
    LOST_COL,
    PROFILE_COUNTS,
    BatchOpSource,
    Control,
    decode_control,
    interrupt_delivered,
    memory_data_src,
)
from runtime.sample_path import (
    BlockDrains,
    Machine,
    Samples,
    Tagged,
    cut,
    drained_calls,
    empty_samples,
    new_rings,
    node_sources,
    profile_group,
    stamp_lru,
)
from runtime.sample_path import Control as SampleControl
from runtime.workloads import SyntheticOps, Workload

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]


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
_NO_TIMES = np.zeros(0, dtype=np.float64)
_NO_BITS = np.zeros(0, dtype=bool)
_NO_SAMPLES = empty_samples(0)
_NO_CALLS = HintCalls(_NO_TIMES, np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64),
                      np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64),
                      np.zeros(0, dtype=np.int64))


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
        # DataSrc of an L3 miss served by each node
        self._node_src = node_sources(self.nodemap.tables, {
            n.nid: int(memory_data_src(n.memory)) for n in self.topology.nodes})
        self._cpu_node = np.array(self.topology.cpu_node, dtype=np.int64)
        self._pending_hints: list[HintCalls] = []
        self.rings = new_rings(len(self.cpus), self.cpus[0].ring.capacity + 1 if self.cpus
                               else 2)

    # --- set-up -------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the kernel side, then read back what the driver programmed on each CPU
        (without IBS: the LRU sampler's period, if kswapd reads its ages)."""
        self._start_kernel()
        for cpu, st in enumerate(self.state):
            if not self.cfg.setup.ibs:
                st.armed = self.demoter is not None
                st.dt_ms = self.cfg.driver.period / self.cfg.ops_per_ms
                st.next_tag_ms = 0.0 + st.dt_ms
                continue
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
            self._hints_until(when, compiled=True)  # (its pghot calls wait for the block)
            if kind == KSWAPD and self.demoter is not None and not self.demoter.has_work():
                # A kswapd round with nothing to demote changes nothing the tags depend on,
                # so it needs no block boundary: run it (it forgets its wake-ups) and go on.
                self.now_ms = when
                super()._global(kind, arg)
                continue
            # a phase ends before the tags of its last instant; everything else comes after
            self._block(when, inclusive=kind != PHASE_END)
            self.now_ms = when
            self._global(kind, arg)
        self._hints_until(end, compiled=True)
        self._block(end, inclusive=False)
        self.now_ms = end

    def ring_lengths(self) -> list[int]:
        """Samples waiting in each CPU's ring (for the end-of-run accounting)."""
        r = self.rings
        return [int(n) for n in (r.head - r.tail) % r.pfn.shape[1]]

    def _hint_calls(self, calls: HintCalls) -> None:
        """Hint faults' pghot calls wait for the next block, which merges them with its IBS
        drains by time (drains first at equal times, as the reference runs them)."""
        self._pending_hints.append(calls)

    # --- one block ------------------------------------------------------------------------------
    def _block(self, limit: float, inclusive: bool) -> None:
        if not self.cfg.setup.ibs:
            self._lru_block(limit, inclusive)
            self._record(_NO_CALLS, self._take_hints())
            return
        # CPUs whose profilers run alike are tagged and filtered in one pass; a CPU whose
        # interrupt goes nowhere stops at its first kept sample, so it goes alone.
        groups: dict[tuple[object, ...], list[int]] = {}
        for cpu, st in enumerate(self.state):
            if st.armed:
                assert st.control is not None
                key = (st.control, True) if st.delivers else (cpu, False)
                groups.setdefault(key, []).append(cpu)
        # A group's CPUs go a few at a time, about CHUNK_CALLS tags each (cache-sized), each
        # part's samples through the NMI handler and the rings while they are still in cache.
        parts = [part for cpus in groups.values() for part in self._cache_sized(cpus, limit)]
        times = {cpu: self._tag_times(self.state[cpu], limit, inclusive)
                 for part in parts for cpu in part}
        machine = Machine(self.memory.page_frames(), self.nodemap.tables, self._node_src,
                          self._cpu_node)
        sink = BlockDrains(self.rings, sum(t.size for t in times.values()))
        for part in parts:
            got = self._profile(part, [times[cpu] for cpu in part])
            sink.run(_NO_SAMPLES if got is None else got, np.array(part, dtype=np.int64),
                     machine, self.rings, self.cfg.work_latency_ms, limit, inclusive,
                     self.driver.behaviour.count_ring_full, self.vmstat.events.array,
                     self.driver.outcomes.array)
        # A CPU in no part never pushed a sample: it was never armed, or its interrupt never
        # reached the handler (controls are read once, at start). So no ring is left out.
        assert not any(self.rings.head[cpu] != self.rings.tail[cpu]
                       for cpu in range(len(self.state)) if cpu not in times)
        drains = sink.drains()
        hints = self._take_hints()
        if not drains.length.size:
            self._record(_NO_CALLS, hints)
            return
        ibs = drained_calls(drains, self.memory.page_tables(), self._cpu_node)
        self._record(ibs, hints)

    def _take_hints(self) -> HintCalls:
        pending, self._pending_hints = self._pending_hints, []
        if len(pending) <= 1:
            return pending[0] if pending else _NO_CALLS
        return HintCalls.concat(pending)

    def _record(self, ibs: HintCalls, hints: HintCalls) -> None:
        """pghot_record_access for the block's IBS drains (at their work's time) and the hint
        faults before the block's end, in time order, drains first at equal times; each run
        of one source goes through the compiled record loop at once."""
        if not len(hints.pfn):
            calls, src = ibs, np.full(len(ibs.pfn), PGHOT_HWHINTS, dtype=np.int8)
        else:
            src = np.concatenate([np.full(len(ibs.pfn), PGHOT_HWHINTS, dtype=np.int8),
                                  np.full(len(hints.pfn), PGHOT_HINTFAULTS, dtype=np.int8)])
            both = HintCalls.concat([ibs, hints])
            order = np.lexsort((src == PGHOT_HINTFAULTS, both.time_ms))
            calls, src = both.take(order), src[order]
        if not len(calls.pfn):
            return
        ready = np.zeros(len(calls.pfn), dtype=bool)
        cuts = [0, *(np.flatnonzero(np.diff(src)) + 1).tolist(), len(calls.pfn)]
        for start, stop in itertools.pairwise(cuts):
            ready[start:stop] = record_batch(self.pghot, calls.pfn[start:stop],
                                             calls.nid[start:stop],
                                             calls.jiffies[start:stop], int(src[start]))
        self.calls.extend(sample_ms=calls.jiffies - INITIAL_JIFFIES, drain_ms=calls.time_ms,
                          cpu=calls.cpu, pfn=calls.pfn, page=calls.page, ready=ready, src=src)

    def _lru_block(self, limit: float, inclusive: bool) -> None:
        """Without IBS: the LRU sampler's ops of every CPU stamp their pages' ages."""
        cpus = [cpu for cpu, st in enumerate(self.state) if st.armed]
        if not cpus:
            return
        sts = [self.state[cpu] for cpu in cpus]
        times = [self._tag_times(st, limit, inclusive) for st in sts]
        period = self.cfg.driver.period
        ops = self.source.tagged_batches(cpus, [st.next_op_index for st in sts], period,
                                         times, non_memory=False)
        for st, t in zip(sts, times, strict=True):
            st.next_op_index += period * t.size
        stamp_lru(ops.page, ops.when, self.memory.last_access, self.memory.lru_unit_ms)

    def _cache_sized(self, cpus: list[int], limit: float) -> list[list[int]]:
        """cpus in runs of consecutive CPUs that tag about CHUNK_CALLS times before the limit.
        The span starts at the CPUs' next tag, not at now_ms: a kswapd round with nothing to
        do moves now_ms without a block, and a span from there made 50 ms blocks look like
        10 ms ones (5x the tags a pass was sized for)."""
        sts = [self.state[cpu] for cpu in cpus]
        span_ms = max(limit - min(st.next_tag_ms for st in sts), 0.0)
        tags = max(span_ms / min(st.dt_ms for st in sts), 1.0)
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

    def _profile(self, cpus: list[int], times: list[F64]) -> Samples | None:
        """The tags of CPUs with one control in this block (at `times`) through their
        profilers (the compiled sample_path.profile_group; for synthetic ops under
        L3MissOnly with a delivered interrupt, the same filters applied as the ops are
        drawn); the samples they keep."""
        sts = [self.state[cpu] for cpu in cpus]
        sizes = np.array([t.size for t in times], dtype=np.int64)
        if not sizes.any():
            return None
        control = sts[0].control
        assert control is not None
        miss_only = control.ctl.l3_miss_only
        counts = np.zeros((len(cpus), len(PROFILE_COUNTS)), dtype=np.int64)
        ctl2 = control.ctl2
        lru_unit = self.memory.lru_unit_ms if self.demoter is not None else 0
        if miss_only and sts[0].delivers and isinstance(self.source, SyntheticOps):
            # (a row past the last kept one)
            out = empty_samples(int(sizes.sum()) + 1, memory_misses=True)
            kept = self.source.kept_misses(cpus, times, KeptMisses(
                1, int(ctl2.exclude_kernel), int(ctl2.exclude_user), lru_unit,
                self.memory.last_access, counts, (out.cpu, out.times, out.page, out.offset,
                                                  out.load, out.store, out.l3_miss,
                                                  out.memory)))
        else:
            kept, out = self._filter(cpus, sts, control, times, sizes, counts, lru_unit)
        for st, t in zip(sts, times, strict=True):
            st.next_op_index += control.period_ops * t.size
        for k, cpu in enumerate(cpus):
            prof = self.profilers[cpu]
            row = counts[k].tolist()
            for name, c in zip(DISCARD_REASONS, row, strict=False):
                if c:
                    prof.discards[name] += c
            prof.kept += row[KEPT_COL]
            if row[LOST_COL]:
                prof.lost_interrupts += row[LOST_COL]
                sts[k].armed = False
        return cut(out, kept) if kept else None

    def _filter(self, cpus: list[int], sts: list[CpuBatch], control: Control,
                times: list[F64], sizes: I64, counts: I64,
                lru_unit: int) -> tuple[int, Samples]:
        """The group's tagged ops from the source, then through sample_path.profile_group:
        how many samples it kept, and where."""
        miss_only = control.ctl.l3_miss_only
        ops = self.source.tagged_batches(cpus, [st.next_op_index for st in sts],
                                         control.period_ops, times, non_memory=not miss_only)
        group = Tagged(
            cpus=np.array(cpus, dtype=np.int64), sizes=sizes,
            times=_NO_TIMES if miss_only else np.concatenate(times), op_cpu=ops.cpu,
            op_at=ops.at, op_when=ops.when, op_kernel=ops.kernel, op_load=ops.load,
            op_store=ops.store, op_page=ops.page, op_offset=ops.offset, op_l3_miss=ops.l3_miss,
            other_kernel=_NO_BITS if ops.other_kernel is None else ops.other_kernel)
        most = int(ops.l3_miss.sum()) if miss_only else int(sizes.sum())
        out = empty_samples(most)
        ctl2 = control.ctl2
        kept = profile_group(group, SampleControl(int(miss_only), int(ctl2.exclude_kernel),
                                                  int(ctl2.exclude_user), int(sts[0].delivers)),
                             out, counts, self.memory.last_access, lru_unit)
        return int(kept), out
