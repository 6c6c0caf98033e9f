"""What both engines simulate alike: the machine's kernel state and its shared events.

`KernelState` holds the counters, pghot with its kmigrated threads, kswapd's demotion model,
the CPUs and the driver, and the event queue with the events both engines handle with the
very same code (kmigrated passes, kswapd rounds, timeline ticks and phase ends).
`SimConfig` is everything an engine needs besides the op source and the initial placement;
`Engine` is what readers of a run (metrics, reports, bench) may use of either engine.
Events at the same instant run in a canonical order: by kind (PHASE_END, TAG, IRQ_WORK, WORK,
KMIGRATED, KSWAPD, TIMELINE), then CPU or node id, then the order they were queued.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

import numpy as np

from generated.cpuid import IbsCaps
from runtime.columnlog import ColumnLog
from runtime.cpuid import SimulatedCpuid, zen6_caps
from runtime.driver import CpuState, Driver, DriverConfig, RecordAccess
from runtime.jiffies import jiffies_at, run_ms_of
from runtime.machine import DEFAULT_MPROF_LVT_OFFSET, make_cpus
from runtime.memory import NO_PAGE, Memory, lru_unit_ms
from runtime.numab.cost import NumabCosts
from runtime.numab.fault import NUMAB_EVENTS
from runtime.numab.policy import NODE_STATS as NUMAB_NODE_STATS
from runtime.numab.source import Arrivals, HintCalls, HintFaultSource
from runtime.numab.tunables import NumabTunables
from runtime.pghot.core import Pghot
from runtime.pghot.demotion import Demoter
from runtime.pghot.kmigrated import Kmigrated, start_kmigrated
from runtime.pghot.tunables import Tunables
from runtime.pghot.watermarks import SCALE_FACTOR_DEFAULT, Watermarks
from runtime.setups import DEFAULT_SETUP, SETUPS, Setup
from runtime.topology import Topology
from runtime.vmstat import Vmstat

PHASE_END, TAG, IRQ_WORK, WORK, KMIGRATED, KSWAPD, TIMELINE = range(7)
"""Event kinds in their order at one instant. A phase ends before anything else happens at
its end time: what runs at that instant belongs to the next phase."""


class Call(NamedTuple):
    """One pghot_record_access call the driver's work made (a row of KernelState.calls)."""

    sample_ms: int  # the sample's jiffies, as ms of the run
    drain_ms: float  # when the work ran
    cpu: int
    pfn: int
    page: int  # -1: no page at that PFN
    ready: int  # the call left the record migrate-ready
    src: int  # PGHOT_HWHINTS (a drained IBS sample) or PGHOT_HINTFAULTS (at the fault)


CALL_DTYPES = {"drain_ms": np.float64, "cpu": np.int32, "ready": np.int8, "src": np.int8}


def new_call_log() -> ColumnLog[Call]:
    return ColumnLog(Call, CALL_DTYPES)


class Profile(Protocol):
    """What a run reports of one CPU's profiler (the reference's Profiler model, or the fast
    engine's counts)."""

    kept: int
    discards: Counter[str]
    lost_interrupts: int


class Observer(Protocol):
    """What watches a run: called at each timeline tick and at each phase end."""

    def tick(self, engine: Engine) -> None: ...

    def phase_end(self, engine: Engine) -> None: ...




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
    phase_ends_ms: tuple[float, ...] = ()
    """When the workload's phases end (before the run's end): observers hear of each."""
    watermark_scale_factor: int = SCALE_FACTOR_DEFAULT
    """vm.watermark_scale_factor; min_free_kbytes follows from the machine's memory."""
    setup: Setup = SETUPS[DEFAULT_SETUP]
    """Which sources feed promotion (runtime/setups.py); it sets kernel.numa_balancing."""
    numab: NumabTunables | None = None
    """NUMA balancing's sysctls (None: the kernel's defaults in the setup's mode)."""
    numab_costs: NumabCosts = field(default_factory=NumabCosts)
    hint_arrivals: Arrivals | None = None
    """When marked pages are next accessed (setups with hint faults)."""
    workload_pages: int = 0
    """Pages of the workload (the process NUMA balancing scans)."""

    @property
    def numa_balancing(self) -> int:
        return self.setup.numa_balancing


@dataclass
class ProfilerCounts:
    """What metrics read from a profiler that is counted rather than modelled (the fast
    engine's and a recording's): kept tags, discards by reason, lost interrupts."""

    kept: int = 0
    discards: Counter[str] = field(default_factory=Counter)
    lost_interrupts: int = 0


class KernelState:
    """What both engines simulate alike: counters, pghot, demotion, CPUs and the driver."""

    profilers: Sequence[Profile]
    """Each CPU's profiler (each engine sets its own kind)."""

    def __init__(self, cfg: SimConfig, memory: Memory, record_access: RecordAccess) -> None:
        self.cfg = cfg
        self.memory = memory
        memory.lru_unit_ms = lru_unit_ms(cfg.duration_ms)
        self.topology = cfg.topology
        self.vmstat = Vmstat()
        watermarks = Watermarks(cfg.watermark_scale_factor,
                                lowmem_pages=sum(n.pfn_count for n in self.topology.nodes))
        self.demoter = Demoter(self.topology, memory, self.vmstat, watermarks,
                               cfg.numa_balancing) if cfg.demotion else None
        self.pghot = Pghot(self.topology, memory, self.vmstat, cfg.tunables,
                           watermarks=watermarks,
                           wakeup_kswapd=self.demoter.wakeup if self.demoter else None,
                           numa_balancing=cfg.numa_balancing)
        self._hint_counts = np.zeros(len(NUMAB_EVENTS), dtype=np.int64)
        self._hint_nodes: dict[int, dict[str, int]] = {}
        self.hints = self._hint_source(cfg, memory, watermarks)
        """NUMA balancing's scanner and hint faults, in setups that have them."""
        self.cpus: list[CpuState] = make_cpus(self.topology, cfg.mprof_lvt_offset)
        self.driver = Driver(self.topology, self.cpus, SimulatedCpuid(cfg.caps), self.vmstat,
                             record_access, cfg.driver_variant, cfg.driver)
        self.calls = new_call_log()
        """Every pghot_record_access call, in call order (an observer may drop what it read)."""
        self.kmigrated: dict[int, Kmigrated] = {}
        self.observers: list[Observer] = []
        self.progress: Callable[[float], None] | None = None
        """Hears the fraction of the run simulated, at every timeline tick."""
        self.now_ms = 0.0
        self._queue: list[tuple[float, int, int, int]] = []
        self._seq = 0

    def _hint_source(self, cfg: SimConfig, memory: Memory,
                     watermarks: Watermarks) -> HintFaultSource | None:
        kind = cfg.setup.hint_faults
        if kind is None:
            return None
        if cfg.hint_arrivals is None:
            raise ValueError(f"setup {cfg.setup.name} needs SimConfig.hint_arrivals")
        numab = cfg.numab if cfg.numab is not None else NumabTunables(
            mode=cfg.setup.numa_balancing)
        source = HintFaultSource(
            numab, kind, self.topology, memory, cfg.workload_pages, cfg.hint_arrivals,
            costs=cfg.numab_costs, watermarks=watermarks,
            pghot=self.pghot if kind == "pghot" else None,
            wakeup_kswapd=self.demoter.wakeup if self.demoter else None,
            deliver=self._hint_calls if kind == "pghot" else None)
        source.promotions = self.pghot.promotions  # mainline's in-fault promotions: one log
        self._hint_nodes = {n.nid: {name: 0 for name in NUMAB_NODE_STATS}
                            for n in self.topology.nodes}
        return source

    def _hint_calls(self, calls: HintCalls) -> None:
        """pghot_record_access calls hint faults made (pghot setups): each engine applies
        them in time order with the IBS drains (at equal times the drains first)."""
        raise NotImplementedError

    def _hints_until(self, until_ms: float, compiled: bool) -> None:
        """NUMA balancing up to (not at) until_ms; its counters into the run's vmstat."""
        hints = self.hints
        if hints is None:
            return
        hints.run_until(until_ms, compiled)
        counts = hints.vm
        delta = counts - self._hint_counts
        if delta.any():
            for name, value in zip(NUMAB_EVENTS, delta.tolist(), strict=True):
                if value:
                    self.vmstat.count(name, value)
            self._hint_counts = counts.copy()
        for nid, seen in self._hint_nodes.items():
            for name in NUMAB_NODE_STATS:
                now = hints.node_stat(nid, name)
                if now != seen[name]:
                    self.vmstat.count_node(nid, name, now - seen[name])
                    seen[name] = now

    def _moved(self, promotions_before: int, demotions_before: int) -> None:
        """Tell NUMA balancing which pages kmigrated or kswapd moved (their hints are gone)."""
        hints = self.hints
        if hints is None:
            return
        promos = self.pghot.promotions
        pages = [promos.column("page", promotions_before)]
        olds = [promos.column("old_pfn", promotions_before)]
        if self.demoter is not None:
            pages.append(self.demoter.log.column("page", demotions_before))
            olds.append(self.demoter.log.column("old_pfn", demotions_before))
        hints.pages_moved(np.concatenate(pages), np.concatenate(olds))

    def _push(self, when: float, kind: int, arg: int = 0) -> None:
        """Queue an event; simultaneous events run by kind, then CPU/node, then push order."""
        self._seq += 1
        heapq.heappush(self._queue, (when, kind, arg, self._seq))

    def _start_kernel(self) -> None:
        """Driver init (CPU startup programs the profilers), pghot start, the first kmigrated,
        kswapd and timeline events."""
        if self.cfg.setup.ibs:
            self.driver.init()
        self.kmigrated = start_kmigrated(self.pghot, 0)
        for nid, thread in self.kmigrated.items():
            self._push(thread.next_wakeup(0), KMIGRATED, nid)
        if self.demoter is not None:
            self._push(self.cfg.kswapd_interval_ms, KSWAPD)
        self._push(self.cfg.timeline_ms, TIMELINE)
        for end in self.cfg.phase_ends_ms:
            self._push(end, PHASE_END)

    def _global(self, kind: int, arg: int) -> None:
        """The events both engines handle with the same code: kmigrated, kswapd, timeline
        ticks and phase ends."""
        now = int(self.now_ms)
        if kind == KMIGRATED:
            thread = self.kmigrated[arg]
            before = len(self.pghot.promotions)
            thread.tick(now)
            self._push(max(thread.next_wakeup(now), self.now_ms + 1), KMIGRATED, arg)
            if len(self.pghot.promotions) > before:
                self._moved(before, len(self.demoter.log) if self.demoter else 0)
        elif kind == KSWAPD:
            assert self.demoter is not None
            before = len(self.demoter.log)
            self.demoter.balance(now)
            self._push(self.now_ms + self.cfg.kswapd_interval_ms, KSWAPD)
            if len(self.demoter.log) > before:
                self._moved(len(self.pghot.promotions), before)
        elif kind == TIMELINE:
            for observer in self.observers:
                observer.tick(self)
            if self.progress is not None:
                self.progress(min(self.now_ms / self.cfg.duration_ms, 1.0))
            self._push(self.now_ms + self.cfg.timeline_ms, TIMELINE)
        elif kind == PHASE_END:
            for observer in self.observers:
                observer.phase_end(self)

    def ring_lengths(self) -> list[int]:
        """Samples waiting in each CPU's ring (for the end-of-run accounting)."""
        raise NotImplementedError

    def run(self, until_ms: float | None = None) -> None:
        """Process every event before until_ms (default: the configured duration)."""
        raise NotImplementedError

    def start(self) -> None:
        raise NotImplementedError




class EventByEvent(KernelState):
    """A KernelState that runs the driver one event at a time (the reference engine and the
    recorded one): each pghot call logged with the CPU whose work made it, an NMI queueing
    its irq_work, irq_work queueing the work item work_latency_ms later."""

    def __init__(self, cfg: SimConfig, memory: Memory) -> None:
        super().__init__(cfg, memory, self._record_access)
        self._running_cpu = 0
        """The CPU whose NMI or work is running (the Call's cpu)."""

    def _record_access(self, pfn: int, nid: int, src: int, jiffies: int) -> int:
        return self._record(pfn, nid, src, jiffies, self.now_ms, self._running_cpu)

    def _record(self, pfn: int, nid: int, src: int, jiffies: int, now_ms: float,
                cpu: int) -> int:
        """pghot_record_access, logged as a Call."""
        result = self.pghot.record_access(pfn, nid, src, jiffies)
        page = self.memory.page_at(pfn)
        self.calls.append((run_ms_of(jiffies), now_ms, cpu, pfn,
                           NO_PAGE if page is None else page, int(self.pghot.last_ready), src))
        return result

    def _nmi(self, cpu: int) -> None:
        """The profiler's NMI on cpu now; the irq_work it queued runs at the same instant."""
        self._running_cpu = cpu
        self.driver.nmi(cpu, jiffies_at(self.now_ms))
        if self.cpus[cpu].irq_work_queued:
            self._push(self.now_ms, IRQ_WORK, cpu)

    def _deferred(self, kind: int, arg: int) -> bool:
        """Run an IRQ_WORK or WORK event (True), else leave it to the caller (False)."""
        if kind == IRQ_WORK:
            self.driver.run_irq_work(arg)
            self._push(self.now_ms + self.cfg.work_latency_ms, WORK, arg)
        elif kind == WORK:
            if self.cpus[arg].work_queued:
                self._running_cpu = self.driver.work_runner(arg)
                self.driver.run_work(arg)
        else:
            return False
        return True

    def ring_lengths(self) -> list[int]:
        return [len(state.ring) for state in self.cpus]


class Engine(Protocol):
    """What readers of a run (metrics, reports, bench) use of either engine."""

    cfg: SimConfig
    memory: Memory
    topology: Topology
    vmstat: Vmstat
    pghot: Pghot
    demoter: Demoter | None
    driver: Driver
    cpus: list[CpuState]
    calls: ColumnLog[Call]
    hints: HintFaultSource | None
    kmigrated: dict[int, Kmigrated]
    observers: list[Observer]
    progress: Callable[[float], None] | None
    now_ms: float

    @property
    def profilers(self) -> Sequence[Profile]: ...

    def start(self) -> None: ...

    def run(self, until_ms: float | None = None) -> None: ...

    def ring_lengths(self) -> list[int]: ...
