"""The reference engine: the whole pipeline event by event, through MSR reads and writes.

Events, in time order (ties in the order they were scheduled):
- tag(cpu): the profiler reaches its programmed period on cpu and asks the op source for that
  one op; a kept sample raises the NMI, whose handler (the driver model) runs at once;
- irq_work(cpu): right after the NMI returns; it schedules the per-CPU work;
- work(cpu): `work_latency_ms` later; it pops the ring into pghot_record_access;
- kmigrated(nid): whenever the thread looks at its ACTIVATE bit (Kmigrated.next_wakeup);
- kswapd: every `kswapd_interval_ms` the demotion model balances the top tier;
- timeline: every `timeline_ms` observers get a snapshot.
Time is in ms (float); jiffies are whole ms (HZ=1000). Events at the same instant run in a
canonical order: by kind (tag, irq_work, work, kmigrated, kswapd, timeline), then by CPU or
node id. The fast engine follows the same order, so both produce identical runs. It is slow
and literal on purpose: it is the oracle the fast engine is held to.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass, field

from generated.cpuid import IbsCaps
from runtime.cpuid import SimulatedCpuid, zen6_caps
from runtime.driver import CpuState, Driver, DriverConfig, RecordAccess
from runtime.jiffies import jiffies_at, run_ms_of
from runtime.machine import DEFAULT_MPROF_LVT_OFFSET, make_cpus
from runtime.memory import NO_PAGE, Memory
from runtime.pghot.core import Pghot
from runtime.pghot.demotion import Demoter
from runtime.pghot.kmigrated import Kmigrated, start_kmigrated
from runtime.pghot.tunables import Tunables
from runtime.profiler import OpSource, Profiler, TaggedOp
from runtime.recordlog import RecordLog
from runtime.topology import Topology
from runtime.vmstat import Vmstat

TAG, IRQ_WORK, WORK, KMIGRATED, KSWAPD, TIMELINE = range(6)


@dataclass
class SimConfig:
    """Everything the engines need besides the op source and the initial placement."""

    topology: Topology
    duration_ms: float
    ops_per_ms: float = 1e6  # per CPU: 10^9 ops per CPU-second
    driver_variant: str = "v7"
    driver: DriverConfig = field(default_factory=DriverConfig)
    work_latency_ms: float = 1.0  # irq_work -> per-CPU work run
    tunables: Tunables = field(default_factory=lambda: Tunables(enabled_sources=0x3))
    demotion: bool = True
    kswapd_interval_ms: float = 10.0
    timeline_ms: float = 100.0
    cycles_per_op: int = 1
    mprof_lvt_offset: int | None = DEFAULT_MPROF_LVT_OFFSET
    caps: IbsCaps = field(default_factory=zen6_caps)


class AccessRecorder:
    """Wraps an op source: every tagged memory op stamps its page's last access (jiffies),
    the LRU age the demotion model uses (kswapd sees accessed bits; we see tagged ops)."""

    def __init__(self, inner: OpSource, memory: Memory) -> None:
        self.inner = inner
        self.memory = memory

    def tagged_op(self, cpu: int, op_index: int, now_ms: float) -> TaggedOp:
        op = self.inner.tagged_op(cpu, op_index, now_ms)
        if op.page is not None and (op.load or op.store):
            self.memory.last_access[op.page] = int(now_ms)
        return op


class KernelState:
    """What both engines simulate alike: counters, pghot, demotion, CPUs and the driver."""

    def __init__(self, cfg: SimConfig, memory: Memory, record_access: RecordAccess) -> None:
        self.cfg = cfg
        self.memory = memory
        self.topology = cfg.topology
        self.vmstat = Vmstat()
        self.demoter = Demoter(self.topology, memory, self.vmstat) if cfg.demotion else None
        self.pghot = Pghot(self.topology, memory, self.vmstat, cfg.tunables,
                           wakeup_kswapd=self.demoter.wakeup if self.demoter else None)
        self.cpus: list[CpuState] = make_cpus(self.topology, cfg.mprof_lvt_offset)
        self.driver = Driver(self.topology, self.cpus, SimulatedCpuid(cfg.caps), self.vmstat,
                             record_access, cfg.driver_variant, cfg.driver)
        self.records = RecordLog()
        self.kmigrated: dict[int, Kmigrated] = {}
        self.observers: list[Callable[[KernelState], None]] = []
        self.now_ms = 0.0
        self._queue: list[tuple[float, int, int, int]] = []
        self._seq = 0

    def _push(self, when: float, kind: int, arg: int = 0) -> None:
        """Queue an event; simultaneous events run by kind, then CPU/node, then push order."""
        self._seq += 1
        heapq.heappush(self._queue, (when, kind, arg, self._seq))

    def _start_kernel(self) -> None:
        """Driver init (CPU startup programs the profilers), pghot start, the first kmigrated,
        kswapd and timeline events."""
        self.driver.init()
        self.kmigrated = start_kmigrated(self.pghot, 0)
        for nid, thread in self.kmigrated.items():
            self._push(thread.next_wakeup(0), KMIGRATED, nid)
        if self.demoter is not None:
            self._push(self.cfg.kswapd_interval_ms, KSWAPD)
        self._push(self.cfg.timeline_ms, TIMELINE)

    def _global(self, kind: int, arg: int) -> None:
        """The events both engines handle with the same code: kmigrated, kswapd, timeline."""
        now = int(self.now_ms)
        if kind == KMIGRATED:
            thread = self.kmigrated[arg]
            thread.tick(now)
            self._push(max(thread.next_wakeup(now), self.now_ms + 1), KMIGRATED, arg)
        elif kind == KSWAPD:
            assert self.demoter is not None
            self.demoter.balance(now)
            self._push(self.now_ms + self.cfg.kswapd_interval_ms, KSWAPD)
        elif kind == TIMELINE:
            for observer in self.observers:
                observer(self)
            self._push(self.now_ms + self.cfg.timeline_ms, TIMELINE)


class ReferenceEngine(KernelState):
    def __init__(self, cfg: SimConfig, source: OpSource, memory: Memory) -> None:
        super().__init__(cfg, memory, self._record_access)
        self.source = AccessRecorder(source, memory)
        self._running_cpu = 0
        self.profilers = [
            Profiler(cpu, state.msr, state.apic, memory, self._nmi, cfg.cycles_per_op)
            for cpu, state in enumerate(self.cpus)]

    # --- plumbing -----------------------------------------------------------------------------
    def _record_access(self, pfn: int, nid: int, src: int, time: int) -> int:
        result = self.pghot.record_access(pfn, nid, src, time)
        page = self.memory.page_at(pfn)
        self.records.append(run_ms_of(time), self.now_ms, self._running_cpu, pfn,
                            NO_PAGE if page is None else page, self.pghot.last_ready)
        return result

    def _nmi(self, cpu: int) -> None:
        self.driver.nmi(cpu, jiffies_at(self.now_ms))
        if self.cpus[cpu].irq_work_queued:
            self._push(self.now_ms, IRQ_WORK, cpu)

    def ring_lengths(self) -> list[int]:
        """Samples waiting in each CPU's ring (for the end-of-run accounting)."""
        return [len(state.ring) for state in self.cpus]

    def _schedule_tag(self, cpu: int) -> None:
        need = self.profilers[cpu].ops_to_next_tag()
        if need is not None:
            self._push(self.now_ms + need / self.cfg.ops_per_ms, TAG, cpu)

    # --- the run ------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the kernel side, then each CPU's first tag."""
        self._start_kernel()
        for cpu in self.topology.cpus:
            self._schedule_tag(cpu)

    def run(self, until_ms: float | None = None) -> None:
        """Process every event before until_ms (default: the configured duration)."""
        end = self.cfg.duration_ms if until_ms is None else until_ms
        while self._queue and self._queue[0][0] < end:
            when, kind, arg, _ = heapq.heappop(self._queue)
            self.now_ms = when
            self._dispatch(kind, arg)
        self.now_ms = end

    def _dispatch(self, kind: int, arg: int) -> None:
        if kind == TAG:
            prof = self.profilers[arg]
            need = prof.ops_to_next_tag()
            if need is not None:
                self._running_cpu = arg
                prof.run(need, self.source, self.now_ms, self.cfg.ops_per_ms)
            self._schedule_tag(arg)
        elif kind == IRQ_WORK:
            self.driver.run_irq_work(arg)
            self._push(self.now_ms + self.cfg.work_latency_ms, WORK, arg)
        elif kind == WORK:
            if self.cpus[arg].work_queued:
                self._running_cpu = self.driver.work_runner(arg)
                self.driver.run_work(arg)
        else:
            self._global(kind, arg)
