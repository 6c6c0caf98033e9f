"""The reference engine: the whole pipeline event by event, through MSR reads and writes.

Events, in time order (ties in the canonical order of runtime/kernel_state.py):
- tag(cpu): the profiler reaches its programmed period on cpu and asks the op source for that
  one op; a kept sample raises the NMI, whose handler (the driver model) runs at once;
- irq_work(cpu): right after the NMI returns; it schedules the per-CPU work;
- work(cpu): `work_latency_ms` later; it pops the ring into pghot_record_access;
- kmigrated(nid): whenever the thread looks at its ACTIVATE bit (Kmigrated.next_wakeup);
- kswapd: every `kswapd_interval_ms` the demotion model balances the top tier;
- timeline: every `timeline_ms` observers get a snapshot, and each phase end too.
Time is in ms of the run (float); jiffies are whole ms (HZ=1000) from INITIAL_JIFFIES. The
fast engine follows the same order, so both produce identical runs. It is slow and literal
on purpose: it is the oracle the fast engine is held to.
"""

from __future__ import annotations

import heapq

from runtime.kernel_state import TAG, EventByEvent, SimConfig
from runtime.memory import Memory, lru_stamp
from runtime.numab.source import HintCalls
from runtime.pghot.tunables import PGHOT_HINTFAULTS
from runtime.profiler import OpSource, Profiler, TaggedOp


class AccessRecorder:
    """Wraps an op source: every tagged memory op stamps its page's last access (jiffies),
    the LRU age the demotion model uses (kswapd sees accessed bits; we see tagged ops)."""

    def __init__(self, inner: OpSource, memory: Memory) -> None:
        self.inner = inner
        self.memory = memory

    def tagged_op(self, cpu: int, op_index: int, now_ms: float) -> TaggedOp:
        op = self.inner.tagged_op(cpu, op_index, now_ms)
        if op.page is not None and (op.load or op.store):
            self.memory.last_access[op.page] = lru_stamp(now_ms, self.memory.lru_unit_ms)
        return op


class ReferenceEngine(EventByEvent):
    def __init__(self, cfg: SimConfig, source: OpSource, memory: Memory) -> None:
        super().__init__(cfg, memory)
        self.source = AccessRecorder(source, memory)
        self.models = [
            Profiler(cpu, state.msr, state.apic, memory, self._nmi, cfg.cycles_per_op)
            for cpu, state in enumerate(self.cpus)]
        """Each CPU's profiler hardware model (also its `profilers`, what reports read)."""
        self.profilers = self.models
        self._lru_ops = [0] * len(self.cpus)
        """Without IBS: each CPU's op index of the LRU sampler."""

    def _hint_calls(self, calls: HintCalls) -> None:
        """Hint faults record at once: run_until is called before every event, so each comes
        after the events before its time and before the ones after it."""
        for t, j, cpu, pfn, nid in zip(calls.time_ms.tolist(), calls.jiffies.tolist(),
                                       calls.cpu.tolist(), calls.pfn.tolist(),
                                       calls.nid.tolist(), strict=True):
            self._record(pfn, nid, PGHOT_HINTFAULTS, j, t, cpu)

    def _schedule_tag(self, cpu: int) -> None:
        if not self.cfg.setup.ibs:  # the LRU sampler alone, if kswapd reads its ages
            if self.demoter is not None:
                self._push(self.now_ms + self.cfg.driver.period / self.cfg.ops_per_ms, TAG, cpu)
            return
        need = self.models[cpu].ops_to_next_tag()
        if need is not None:
            self._push(self.now_ms + need / self.cfg.ops_per_ms, TAG, cpu)

    def _lru_tag(self, cpu: int) -> None:
        """Without IBS the op every period-th op still stamps its page's LRU age (the same
        ops the profiler would tag), so demotion sees the same accesses in every setup."""
        self._lru_ops[cpu] += self.cfg.driver.period
        self.source.tagged_op(cpu, self._lru_ops[cpu], self.now_ms)

    # --- the run ------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the kernel side, then each CPU's first tag."""
        self._start_kernel()
        for cpu in self.topology.cpus:
            self._schedule_tag(cpu)

    def run(self, until_ms: float | None = None) -> None:
        """Process every event before until_ms (default: the configured duration); NUMA
        balancing's own events run before each (those strictly before its time)."""
        end = self.cfg.duration_ms if until_ms is None else until_ms
        while self._queue and self._queue[0][0] < end:
            when, kind, arg, _ = heapq.heappop(self._queue)
            self._hints_until(when, compiled=False)
            self.now_ms = when
            self._dispatch(kind, arg)
        self._hints_until(end, compiled=False)
        self.now_ms = end

    def _dispatch(self, kind: int, arg: int) -> None:
        if kind == TAG and not self.cfg.setup.ibs:
            self._lru_tag(arg)
            self._schedule_tag(arg)
        elif kind == TAG:
            prof = self.models[arg]
            need = prof.ops_to_next_tag()
            if need is not None:
                self._running_cpu = arg
                prof.run(need, self.source, self.now_ms, self.cfg.ops_per_ms)
            self._schedule_tag(arg)
        elif not self._deferred(kind, arg):
            self._global(kind, arg)
