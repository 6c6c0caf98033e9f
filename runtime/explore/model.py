"""The explorer's model: one driver on a small machine, moved between canonical states.

The driver (runtime/driver.py) runs in five contexts that the kernel interleaves freely: the
NMI handler, the irq_work it raises, the per-CPU work item (split into its drain loop and its
clearing of the pending flag, so an NMI can land in between), and CPU hotplug teardown/startup.
Each is one atomic step here:

    nmi(c)        an NMI on CPU c with a fresh sample latched (lower-tier PFN, VAL set)
    nmi_noval(c)  an NMI on CPU c that is not the profiler's (VAL clear)
    irq_work(c)   the irq_work queued on CPU c runs (CPU c online)
    work_drain(c) CPU c's work item starts: its drain loop (on driver.work_runner(c))
    work_clear(c) the same work item finishes: clears the pending flag
    offline(c)    CPU c goes down (teardown); the boot CPU 0 stays online
    online(c)     CPU c comes back (startup)

Modelling choices: CPU 0 (the boot CPU) never goes offline; irq_work queued on an offline CPU
waits until it is back (flushing it before teardown is the interleaving irq_work(c),
offline(c)); a work item whose CPU is offline runs on driver.work_runner() (the first online
CPU), and is not re-entered: drain is enabled only once the previous run has cleared; each drain
loop is one atomic step. The number of samples injected is bounded, so the state space is
finite. The ring size is a parameter: the spec's IBS_NR_SAMPLES (from generated/, as the driver
has it) unless the caller gives another.

A State is a canonical, hashable tuple of everything that decides what the driver does next;
the search keeps hundreds of thousands of them, so `snapshot` shares equal parts between states
(one copy of each distinct per-CPU snapshot and counter tuple).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from generated.data_src import DataSrc
from generated.ibs_mprof import (
    IBS_NR_SAMPLES,
    PAGE_SHIFT,
    IbsMprofCtl,
    IbsMprofCtl2,
    IbsMprofData2,
    IbsMprofData3,
    IbsMprofPhyaddr,
)
from runtime.apic import Eilvt
from runtime.cpuid import SimulatedCpuid
from runtime.driver import NMI_DONE, Driver
from runtime.machine import make_cpus
from runtime.ring import Sample, SampleRing
from runtime.topology import TWO_TIER_LOWER_PFN, Topology, two_tier_topology
from runtime.vmstat import Vmstat

LOWER_PFN = TWO_TIER_LOWER_PFN
"""First PFN of the lower-tier (CXL) node; sample k is PFN LOWER_PFN + k, taken at jiffies k."""
SETTLE_LIMIT = 64
BOOT_CPU = 0
"""x86 cannot take the boot CPU offline (CPU0 hotplug went away in Linux 6.3); it stays online."""

_T = TypeVar("_T", bound=Hashable)


def explore_topology(ncpus: int) -> Topology:
    """Node 0 DRAM top tier with every CPU, node 1 CXL lower tier where the samples point."""
    return two_tier_topology((0,) * ncpus)


@dataclass(frozen=True, order=True, slots=True)
class Step:
    kind: str
    cpu: int

    def label(self) -> str:
        return f"{self.kind}({self.cpu})"


@dataclass(frozen=True, slots=True)
class CpuSnap:
    """Everything per CPU that decides what the driver does next."""

    online: bool
    profiling: bool
    pending: bool  # mprof_work_pending
    irq_work: bool  # irq_work queued
    work_queued: bool
    work_mid: bool  # the work item is between its drain loop and its pending-flag clear
    head: int
    tail: int
    ring: tuple[Sample, ...]  # live samples, oldest first
    ctl: int
    ctl2: int
    apic: tuple[tuple[str, bool], ...]
    msr: tuple[tuple[int, int], ...] = field(compare=False, hash=False)
    """All MSR values, to restore; the data registers hold the last sample and are not state."""


@dataclass(frozen=True, slots=True)
class State:
    """A canonical, hashable snapshot of the whole model."""

    cpus: tuple[CpuSnap, ...]
    injected: int
    accepted: tuple[tuple[int, int], ...]  # (pfn, accepting cpu)
    dropped: tuple[tuple[int, str], ...]  # (pfn, outcome)
    recorded: tuple[int, ...]  # multiset of recorded PFNs, sorted
    vmstat: tuple[tuple[str, int], ...]
    outcomes: tuple[tuple[str, int], ...]


@dataclass
class StepResult:
    step: Step
    runner: int  # the CPU the step ran on
    pops: list[tuple[int, Sample | None]]  # (ring owner, sample or None for an empty pop)
    records: list[tuple[int, int, int]]  # (pfn, nid, time) given to pghot_record_access
    outcome: str | None = None
    pfn: int | None = None


class TracingRing(SampleRing):
    """The driver's ring, logging every pop (with the ring's owner) for the owner-pop check."""

    def __init__(self, slots: int, owner: int, log: list[tuple[int, Sample | None]]) -> None:
        super().__init__(slots)
        self.owner = owner
        self.log = log

    def pop(self) -> Sample | None:
        sample = super().pop()
        self.log.append((self.owner, sample))
        return sample


def live(ring: SampleRing) -> list[Sample]:
    """The samples in a ring, oldest first (what the next pops would return)."""
    out = []
    index = ring.tail
    while index != ring.head:
        sample = ring.slots[index]
        assert sample is not None
        out.append(sample)
        index = index + 1 if index + 1 < len(ring.slots) else 0
    return out


class Machine:
    """One driver on a small machine, plus the explorer's bookkeeping of every sample.

    `snapshot()` and `restore()` move it between states; `apply()` runs one step.
    """

    def __init__(self, variant: str, ncpus: int, samples: int, hotplug: bool = True,
                 ring_slots: int = IBS_NR_SAMPLES) -> None:
        self.variant = variant
        self.ncpus = ncpus
        self.samples = samples
        self.hotplug = hotplug
        self.topology = explore_topology(ncpus)
        self.pops: list[tuple[int, Sample | None]] = []
        self.records: list[tuple[int, int, int]] = []
        cpus = make_cpus(self.topology)
        for cpu, state in enumerate(cpus):
            state.ring = TracingRing(ring_slots, cpu, self.pops)
        self.driver = Driver(self.topology, cpus, SimulatedCpuid(), Vmstat(), self._record,
                             variant)
        if not self.driver.init():
            raise RuntimeError("explore: the simulated CPU has no memory profiler")
        self.slots = ring_slots
        self.mid = [False] * ncpus
        self.injected = 0
        self.accepted: dict[int, int] = {}
        self.dropped: dict[int, str] = {}
        self.recorded: Counter[int] = Counter()
        self._shared: dict[Any, Any] = {}
        ctl = IbsMprofCtl.decode(self.driver.ctl_value())
        self._ctl_val = ctl.replace(val=True).encode()
        self._ctl_noval = ctl.replace(val=False).encode()
        self._data2 = IbsMprofData2(data_src=DataSrc.EXT_MEM).encode()
        self._data3 = IbsMprofData3(ld_op=True, lin_addr_valid=True, phy_addr_valid=True).encode()

    @property
    def capacity(self) -> int:
        return self.slots - 1

    def _record(self, pfn: int, nid: int, src: int, jiffies: int) -> int:
        self.records.append((pfn, nid, jiffies))
        return 0

    def _share(self, value: _T) -> _T:
        """The one stored copy equal to value (a CpuSnap with the same MSR values included)."""
        key = (value, value.msr) if isinstance(value, CpuSnap) else value
        shared: _T = self._shared.setdefault(key, value)
        return shared

    # --- state --------------------------------------------------------------------------------
    def snapshot(self) -> State:
        share = self._share
        cpus = []
        for cpu, st in enumerate(self.driver.cpus):
            ring = st.ring
            values = st.msr.values
            cpus.append(share(CpuSnap(
                st.online, st.profiling, st.work_pending, st.irq_work_queued, st.work_queued,
                self.mid[cpu], ring.head, ring.tail, tuple(live(ring)),
                values[IbsMprofCtl.ADDRESS], values[IbsMprofCtl2.ADDRESS],
                share(tuple((e.mode, e.masked) for e in st.apic.entries)),
                share(tuple(values.items())))))
        # Not the cpus tuple: its equality ignores the MSR values, which restore() puts back.
        return State(tuple(cpus), self.injected, share(tuple(sorted(self.accepted.items()))),
                     share(tuple(sorted(self.dropped.items()))),
                     share(tuple(sorted(self.recorded.elements()))),
                     share(tuple(sorted(self.driver.vmstat.events.items()))),
                     share(tuple(sorted(self.driver.outcomes.items()))))

    def restore(self, state: State) -> None:
        for cpu, (st, snap) in enumerate(zip(self.driver.cpus, state.cpus, strict=True)):
            st.online, st.profiling = snap.online, snap.profiling
            st.work_pending, st.irq_work_queued = snap.pending, snap.irq_work
            st.work_queued = snap.work_queued
            self.mid[cpu] = snap.work_mid
            ring = st.ring
            slots: list[Sample | None] = [None] * len(ring.slots)
            for offset, sample in enumerate(snap.ring):
                slots[(snap.tail + offset) % len(slots)] = sample
            ring.slots, ring.head, ring.tail = slots, snap.head, snap.tail
            st.msr.values = dict(snap.msr)
            st.apic.entries = [Eilvt(mode, masked) for mode, masked in snap.apic]
        self.injected = state.injected
        self.accepted = dict(state.accepted)
        self.dropped = dict(state.dropped)
        self.recorded = Counter(state.recorded)
        for name, value in state.vmstat:
            self.driver.vmstat.events[name] = value
        for name, value in state.outcomes:
            self.driver.outcomes[name] = value

    # --- steps ----------------------------------------------------------------------------------
    def enabled(self) -> list[Step]:
        """The steps the kernel could take next, in a fixed order (deterministic exploration)."""
        steps = []
        cpus = self.driver.cpus
        online = sum(1 for st in cpus if st.online)
        for cpu, st in enumerate(cpus):
            if st.online and st.profiling and self.injected < self.samples:
                steps.append(Step("nmi", cpu))
            if st.online:
                steps.append(Step("nmi_noval", cpu))
            if st.irq_work_queued and st.online:
                steps.append(Step("irq_work", cpu))
            if st.work_queued and not self.mid[cpu]:
                steps.append(Step("work_drain", cpu))
            if self.mid[cpu]:
                steps.append(Step("work_clear", cpu))
            if self.hotplug and st.online and online > 1 and cpu != BOOT_CPU:
                steps.append(Step("offline", cpu))
            if self.hotplug and not st.online:
                steps.append(Step("online", cpu))
        return steps

    def apply(self, step: Step) -> StepResult:
        driver, cpu = self.driver, step.cpu
        self.pops.clear()
        self.records.clear()
        runner = cpu
        result = StepResult(step, cpu, self.pops, self.records)
        if step.kind == "nmi":
            pfn = LOWER_PFN + self.injected
            jiffies = self.injected
            self.injected += 1
            self._latch(cpu, self._ctl_val, pfn)
            before = driver.outcomes.as_dict()
            driver.nmi(cpu, jiffies)
            outcome = next(k for k, v in driver.outcomes.items() if v != before.get(k, 0))
            result.outcome, result.pfn = outcome, pfn
            if outcome == "pushed":
                self.accepted[pfn] = cpu
            else:
                self.dropped[pfn] = outcome
        elif step.kind == "nmi_noval":
            self._latch(cpu, self._ctl_noval, LOWER_PFN)
            handled = driver.nmi(cpu, self.injected)
            assert handled == NMI_DONE
        elif step.kind == "irq_work":
            driver.run_irq_work(cpu)
        elif step.kind == "work_drain":
            runner = driver.work_runner(cpu)
            driver.work_drain(cpu)
            self.mid[cpu] = True
        elif step.kind == "work_clear":
            runner = driver.work_runner(cpu)
            driver.work_clear(cpu)
            self.mid[cpu] = False
        elif step.kind == "offline":
            driver.teardown(cpu)
        elif step.kind == "online":
            driver.startup(cpu)
        else:
            raise ValueError(f"unknown step {step.kind!r}")
        result.runner = runner
        result.pops = list(self.pops)
        result.records = list(self.records)
        for pfn, _nid, _time in self.records:
            self.recorded[pfn] += 1
        return result

    def _latch(self, cpu: int, ctl: int, pfn: int) -> None:
        msr = self.driver.cpus[cpu].msr
        msr.latch(IbsMprofCtl.ADDRESS, ctl)
        msr.latch(IbsMprofData2.ADDRESS, self._data2)
        msr.latch(IbsMprofData3.ADDRESS, self._data3)
        msr.latch(IbsMprofPhyaddr.ADDRESS, IbsMprofPhyaddr(phy_addr=pfn << PAGE_SHIFT).encode())

    def settle_steps(self) -> Iterator[Step]:
        """No further samples: run queued irq_work and work, bring offline CPUs back, repeat."""
        for _ in range(SETTLE_LIMIT):
            cpus = self.driver.cpus
            step = next((Step("irq_work", c) for c, st in enumerate(cpus)
                         if st.online and st.irq_work_queued), None)
            step = step or next((Step("work_clear", c) for c in range(self.ncpus)
                                 if self.mid[c]), None)
            step = step or next((Step("work_drain", c) for c, st in enumerate(cpus)
                                 if st.work_queued), None)
            step = step or next((Step("online", c) for c, st in enumerate(cpus)
                                 if not st.online), None)
            if step is None:
                return
            yield step
        raise RuntimeError("explore: the system does not settle")
