"""`ibs-mprof explore`: a deterministic scheduler over the driver model's concurrent steps.

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

The number of samples injected is bounded, so the state space is finite. Exhaustive mode walks
all interleavings breadth first with state hashing (so the first violation is one of the
shortest); random mode runs seeded random schedules and minimises a violation by delta
debugging, then by a breadth-first search up to the minimised length.

Invariants, checked after every step:
- conservation: every sample the handler accepted (pushed) is recorded exactly once or is still
  in some ring, nothing is recorded twice or without being accepted, the counters agree;
  samples the handler refused (ring_full) are a named drop reason, never a loss;
- owner-pop: no ring is popped by a context other than its owner CPU's while the owner is
  online and can push (the ring is single-consumer);
- stranded: from every state, once the system settles with no further samples (every queued
  irq_work and work runs, offline CPUs come back), no ring holds a sample.

Figures: `states` are distinct model states (canonical tuples: per-CPU ring contents, head,
tail, flags, online, queued and running work, the recorded multiset, counters); `transitions`
the steps executed; `schedules` the step sequences of up to `depth` steps the search covered,
counted over the explored state graph (a schedule ends early only where no step is enabled; when
the search stops at a violation, up to the depth it reached). Modelling choices: CPU 0 (the boot
CPU) never goes offline; irq_work queued on an offline CPU waits until it is back (flushing it
before teardown is the interleaving irq_work(c), offline(c)); a work item whose CPU is offline
runs on driver.work_runner() (the first online CPU), and is not re-entered: drain is enabled
only once the previous run has cleared; each drain loop is one atomic step.

The ring size is a parameter of the model: by default the spec's IBS_NR_SAMPLES (from
generated/, as the driver has it); `--ring N` gives every CPU a ring of N slots instead, so a
small ring that fills within a few samples can be explored without touching spec/.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

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
from runtime.choices import INVARIANTS
from runtime.cpuid import SimulatedCpuid
from runtime.driver import NMI_DONE, Driver
from runtime.errors import InputError
from runtime.machine import make_cpus
from runtime.ring import Sample, SampleRing
from runtime.topology import TWO_TIER_LOWER_PFN, Topology, two_tier_topology
from runtime.vmstat import Vmstat

LOWER_PFN = TWO_TIER_LOWER_PFN
"""First PFN of the lower-tier (CXL) node; sample k is PFN LOWER_PFN + k, taken at jiffies k."""
CPUS_RANGE = (2, 3)
SAMPLES_RANGE = (1, 6)
DEPTH_RANGE = (1, 60)
RING_RANGE = (2, IBS_NR_SAMPLES)
"""One slot is always empty, so 2 is the smallest ring that holds a sample. A ring larger than the
spec's models no driver, and one above --samples + 1 slots never fills: bigger changes nothing."""
RANDOM_RANGE = (1, 1_000_000)
DEFAULT_SAMPLES = 2
DEFAULT_DEPTH = 12
DEFAULT_RANDOM_LENGTH = 24
SETTLE_LIMIT = 64
MINIMISE_MAX_STATES = 200_000
BOOT_CPU = 0
"""x86 cannot take the boot CPU offline (CPU0 hotplug went away in Linux 6.3); it stays online."""


def explore_topology(ncpus: int) -> Topology:
    """Node 0 DRAM top tier with every CPU, node 1 CXL lower tier where the samples point."""
    return two_tier_topology((0,) * ncpus)


@dataclass(frozen=True, order=True)
class Step:
    kind: str
    cpu: int

    def label(self) -> str:
        return f"{self.kind}({self.cpu})"


@dataclass(frozen=True)
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


@dataclass(frozen=True)
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


@dataclass(frozen=True)
class Violation:
    invariant: str
    message: str


@dataclass
class Line:
    """One step of a counterexample, in words."""

    step: Step
    text: str
    settle: bool


@dataclass
class Counterexample:
    invariant: str
    message: str
    lines: list[Line]

    @property
    def prefix_length(self) -> int:
        return sum(1 for line in self.lines if not line.settle)


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

    # --- state --------------------------------------------------------------------------------
    def snapshot(self) -> State:
        cpus = []
        for cpu, st in enumerate(self.driver.cpus):
            ring = st.ring
            live = []
            index = ring.tail
            while index != ring.head:
                sample = ring.slots[index]
                assert sample is not None
                live.append(sample)
                index = index + 1 if index + 1 < len(ring.slots) else 0
            values = st.msr.values
            cpus.append(CpuSnap(
                st.online, st.profiling, st.work_pending, st.irq_work_queued, st.work_queued,
                self.mid[cpu], ring.head, ring.tail, tuple(live),
                values[IbsMprofCtl.ADDRESS], values[IbsMprofCtl2.ADDRESS],
                tuple((e.mode, e.masked) for e in st.apic.entries), tuple(values.items())))
        return State(tuple(cpus), self.injected, tuple(sorted(self.accepted.items())),
                     tuple(sorted(self.dropped.items())), tuple(sorted(self.recorded.elements())),
                     tuple(sorted(self.driver.vmstat.events.items())),
                     tuple(sorted(self.driver.outcomes.items())))

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
        self.driver.vmstat.events = Counter(dict(state.vmstat))
        self.driver.outcomes = Counter(dict(state.outcomes))

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
            before = dict(driver.outcomes)
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

    # --- invariants -----------------------------------------------------------------------------
    def check_step(self, result: StepResult) -> Violation | None:
        """Conservation and owner-pop after one step."""
        step = result.step
        for owner, sample in result.pops:
            if sample is None or owner == step.cpu:
                continue
            st = self.driver.cpus[owner]
            if st.online and st.profiling:
                context = (f"the work for cpu{step.cpu}, running on cpu{result.runner},"
                           if step.kind.startswith("work") else f"cpu{step.cpu}")
                return Violation("owner-pop", (
                    f"{context} popped sample pfn {sample.pfn:#x} from cpu{owner}'s ring while "
                    f"cpu{owner} is online and pushing: a second consumer on a single-producer, "
                    f"single-consumer ring (cpu{owner}'s own work may drain it at the same time)"))
        for pfn, nid, jiffies in result.records:
            if pfn not in self.accepted:
                return Violation("conservation", f"pfn {pfn:#x} recorded but never accepted")
            if self.recorded[pfn] > 1:
                return Violation("conservation", (
                    f"sample pfn {pfn:#x} accepted by cpu{self.accepted[pfn]} is recorded "
                    f"{self.recorded[pfn]} times"))
            taken = (self.topology.cpu_node[self.accepted[pfn]], pfn - LOWER_PFN)
            if (nid, jiffies) != taken:
                return Violation("conservation", (
                    f"sample pfn {pfn:#x} recorded with nid {nid}, time {jiffies}; it was "
                    f"taken with nid {taken[0]}, time {taken[1]}"))
        in_rings = Counter(s.pfn for st in self.driver.cpus for s in _live(st.ring))
        for pfn, cpu in self.accepted.items():
            copies = in_rings[pfn] + self.recorded[pfn]
            if copies != 1:
                where = "neither recorded nor in any ring" if copies == 0 else \
                    f"present {copies} times (rings and records)"
                return Violation("conservation",
                                 f"sample pfn {pfn:#x} accepted by cpu{cpu} is {where}")
        return self._check_counters()

    def _check_counters(self) -> Violation | None:
        vm = self.driver.vmstat
        outcomes = self.driver.outcomes
        expect = {"hwhint_total_events": self.injected,
                  "hwhint_useful_events": len(self.accepted)}
        if self.variant == "fixed":
            expect["hwhint_dropped_events"] = outcomes["ring_full"]
        for name, value in expect.items():
            if vm.get(name) != value:
                return Violation("conservation", f"{name} is {vm.get(name)}, expected {value}")
        if sum(outcomes.values()) != self.injected or outcomes["pushed"] != len(self.accepted):
            return Violation("conservation", f"outcomes {dict(outcomes)} do not add up to the "
                             f"{self.injected} samples injected")
        return None

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

    def check_quiet(self) -> Violation | None:
        """After settling: every ring empty, every accepted sample recorded exactly once."""
        for owner, st in enumerate(self.driver.cpus):
            left = _live(st.ring)
            if not left:
                continue
            pfns = ", ".join(f"{s.pfn:#x}" for s in left)
            by = sorted({self.accepted.get(s.pfn, -1) for s in left})
            noun = "sample pfn" if len(left) == 1 else "samples pfn"
            verb = "is" if len(left) == 1 else "are"
            why = (f"cpu{owner}'s pending flag is left set, so no later NMI on cpu{owner} "
                   "queues work: stranded for good" if st.work_pending else
                   f"cpu{owner}'s pending flag is clear and nothing is queued, so it waits for "
                   f"the next sample on cpu{owner}: stranded until then")
            return Violation("stranded", (
                f"{noun} {pfns} accepted by {', '.join(f'cpu{c}' for c in by)} {verb} never "
                f"recorded: left in cpu{owner}'s ring once the system is quiet (every CPU "
                f"online, no irq_work or work queued or running); {why}"))
        for pfn, cpu in self.accepted.items():
            if self.recorded[pfn] != 1:
                return Violation("conservation", (
                    f"sample pfn {pfn:#x} accepted by cpu{cpu} is recorded "
                    f"{self.recorded[pfn]} times once the system is quiet"))
        return None


def _live(ring: SampleRing) -> list[Sample]:
    out = []
    index = ring.tail
    while index != ring.head:
        sample = ring.slots[index]
        assert sample is not None
        out.append(sample)
        index = index + 1 if index + 1 < len(ring.slots) else 0
    return out


# --- words ------------------------------------------------------------------------------------
def _pfns(samples: Sequence[int]) -> str:
    return ", ".join(f"{pfn:#x}" for pfn in samples)


def _samples(n: int) -> str:
    return f"{n} sample" if n == 1 else f"{n} samples"


def describe(machine: Machine, before: State, after: State, result: StepResult) -> str:
    """One step as a kernel developer reads it in a bug report."""
    step, c, r = result.step, result.step.cpu, result.runner
    b, a = before.cpus[c], after.cpus[c]
    cap = machine.capacity
    recorded = [pfn for pfn, _, _ in result.records]
    if step.kind == "nmi":
        head = f"cpu{c}: NMI"
        if b.work_mid:
            head += (f" while cpu{c}'s work is between its drain loop and clearing the pending "
                     "flag")
        if result.outcome == "pushed":
            text = (f"{head}, sample pfn {result.pfn:#x} pushed to cpu{c}'s ring "
                    f"({len(a.ring)}/{cap})")
            if a.irq_work and not b.irq_work:
                return text + ", pending=1, irq_work queued"
            return text + ", pending already 1: no irq_work queued"
        note = " (counted in hwhint_dropped_events)" if machine.variant == "fixed" else \
            " (v7: silently, no counter)"
        return (f"{head}, sample pfn {result.pfn:#x} dropped: cpu{c}'s ring is full "
                f"({cap}/{cap}) -> ring_full{note}")
    if step.kind == "nmi_noval":
        return f"cpu{c}: NMI without VAL (not a profiler sample): NMI_DONE, nothing changes"
    if step.kind == "irq_work":
        return f"cpu{c}: irq_work runs: schedule_work_on(cpu{c}) queues cpu{c}'s work"
    where = f"on cpu{r}" + (f" (cpu{c} is offline)" if r != c else "")
    if step.kind == "work_drain":
        owners = sorted({owner for owner, _ in result.pops})
        rings = ", ".join(f"cpu{o}'s ring" for o in owners) or "no ring"
        text = f"work for cpu{c} runs {where}: its drain loop pops {rings}"
        if any(o != c for o in owners):
            text += f" (the runner's, not cpu{c}'s)"
        return text + (f": records pfn {_pfns(recorded)}" if recorded else ": empty")
    if step.kind == "work_clear":
        target = r if machine.variant == "v7" else c
        was = int(before.cpus[target].pending)
        on = f"still on cpu{r}" if r != c else f"on cpu{r}"
        text = f"work for cpu{c}, {on}, clears cpu{target}'s pending flag (was {was})"
        if target != c:
            text += f"; cpu{c}'s stays {int(a.pending)}"
        if machine.variant == "fixed":
            text += f", re-checks cpu{c}'s ring: " + (
                f"drains samples pushed meanwhile, records pfn {_pfns(recorded)}" if recorded
                else "empty")
        return text
    if step.kind == "offline":
        text = f"cpu{c} goes offline (teardown): profiler disabled"
        if machine.variant == "fixed":
            if recorded:
                text += f", drains its ring (records pfn {_pfns(recorded)})"
            return text + ", resets ring, pending flag, queued irq_work and work"
        text += f"; ring keeps {_samples(len(a.ring))}, pending stays {int(a.pending)}"
        if a.work_queued:
            text += f"; cpu{c}'s queued work will run on another CPU"
        if a.work_mid:
            text += f"; cpu{c}'s running work item will finish on another CPU"
        if a.irq_work:
            text += "; its irq_work stays queued until it comes back"
        return text
    return (f"cpu{c} comes online (startup): profiler re-armed; ring holds "
            f"{_samples(len(a.ring))}, pending={int(a.pending)}")


# --- search -----------------------------------------------------------------------------------
@dataclass
class Result:
    variant: str
    cpus: int
    samples: int
    ring_slots: int
    mode: str
    depth: int
    hotplug: bool
    states: int = 0
    transitions: int = 0
    schedules: int = 0
    elapsed_s: float = 0.0
    drops: Counter[str] = field(default_factory=Counter)
    counterexample: Counterexample | None = None
    random_schedules: int = 0
    seed: int | None = None
    found_length: int | None = None
    ring_from_spec: bool = True  # False when --ring set the size
    invariant: str | None = None  # only this invariant was looked for
    minimised: str | None = None  # random mode: "bfs" (shortest) or "ddmin" (1-minimal)
    exhausted: bool = False  # exhaustive mode saw every reachable state before the depth bound
    depth_reached: int = 0  # exhaustive mode: levels searched (less than depth when stopped)

    def as_json(self) -> dict[str, Any]:
        cex = self.counterexample
        return {
            "variant": self.variant, "cpus": self.cpus, "samples": self.samples,
            "ring_slots": self.ring_slots, "ring_capacity": self.ring_slots - 1,
            "ring_source": "spec" if self.ring_from_spec else "--ring",
            "mode": self.mode, "depth": self.depth, "hotplug": self.hotplug,
            "invariant": self.invariant, "exhausted": self.exhausted,
            "depth_reached": self.depth_reached if self.mode == "exhaustive" else None,
            "random_schedules": self.random_schedules if self.mode == "random" else None,
            "seed": self.seed, "schedules": self.schedules, "states": self.states,
            "transitions": self.transitions, "elapsed_s": round(self.elapsed_s, 3),
            "drops": dict(sorted(self.drops.items())),
            "violation": None if cex is None else {
                "invariant": cex.invariant, "message": cex.message,
                "length": cex.prefix_length, "found_length": self.found_length,
                "minimised": self.minimised,
                "steps": [{"n": n, "kind": line.step.kind, "cpu": line.step.cpu,
                           "settle": line.settle, "text": line.text}
                          for n, line in enumerate(cex.lines, 1)]},
        }


class Explorer:
    def __init__(self, variant: str, ncpus: int, samples: int, hotplug: bool = True,
                 target: str | None = None, ring_slots: int = IBS_NR_SAMPLES) -> None:
        self.machine = Machine(variant, ncpus, samples, hotplug, ring_slots)
        self.initial = self.machine.snapshot()
        self.target = target
        self.quiet_cache: dict[State, Violation | None] = {}
        self.drops: Counter[str] = Counter()
        self.transitions = 0
        self.exhausted = False
        self.levels = 0

    def _wanted(self, violation: Violation | None) -> Violation | None:
        if violation is None or (self.target and violation.invariant != self.target):
            return None
        return violation

    def step(self, state: State, step: Step) -> tuple[State, StepResult, Violation | None]:
        m = self.machine
        m.restore(state)
        result = m.apply(step)
        self.transitions += 1
        if result.outcome and result.outcome != "pushed":
            self.drops[result.outcome] += 1
        return m.snapshot(), result, self._wanted(m.check_step(result))

    def settle(self, state: State) -> tuple[list[tuple[State, StepResult, State]],
                                            Violation | None]:
        """Settle from state; the steps taken and the first violation on the way or at the end."""
        m = self.machine
        m.restore(state)
        trace = []
        current = state
        for step in m.settle_steps():
            result = m.apply(step)
            after = m.snapshot()
            trace.append((current, result, after))
            current = after
            violation = self._wanted(m.check_step(result))
            if violation:
                return trace, violation
        return trace, self._wanted(m.check_quiet())

    def quiet_violation(self, state: State) -> Violation | None:
        if state not in self.quiet_cache:
            self.quiet_cache[state] = self.settle(state)[1]
        return self.quiet_cache[state]

    def counterexample(self, steps: Sequence[Step], violation: Violation) -> Counterexample:
        """Replay steps from the start, then settle if the violation shows only when quiet."""
        m = self.machine
        lines = []
        state = self.initial
        last: Violation | None = None
        for step in steps:
            m.restore(state)
            if step not in m.enabled():
                raise ValueError(f"explore: {step.label()} is not enabled at this point")
            result = m.apply(step)
            after = m.snapshot()
            lines.append(Line(step, describe(m, state, after, result), False))
            last = self._wanted(m.check_step(result))
            state = after
        if last is None:
            trace, settle_violation = self.settle(state)
            lines += [Line(r.step, describe(m, b, a, r), True) for b, r, a in trace]
            violation = settle_violation or violation
        return Counterexample(violation.invariant, violation.message, lines)

    def replay(self, steps: Sequence[Step]) -> Violation | None:
        """The first violation along steps (each must be enabled), checking every state."""
        state = self.initial
        for step in steps:
            self.machine.restore(state)
            if step not in self.machine.enabled():
                return None
            state, _, violation = self.step(state, step)
            violation = violation or self.quiet_violation(state)
            if violation:
                return violation
        return None


class StateBudget(Exception):
    """The breadth-first search met more states than it was allowed."""


def bfs(explorer: Explorer, depth: int, max_states: int | None = None,
        ) -> tuple[list[Step] | None, Violation | None, int, int]:
    """Breadth first to depth; (shortest violating steps, violation, states, schedules).

    `explorer.exhausted` tells whether every reachable state was seen before the bound,
    `explorer.levels` how deep the search went. StateBudget when over max_states.
    """
    parent: dict[State, tuple[State, Step] | None] = {explorer.initial: None}
    edges: dict[State, list[State]] = {}

    def path(state: State) -> list[Step]:
        steps = []
        link = parent[state]
        while link is not None:
            state, step = link
            steps.append(step)
            link = parent[state]
        return steps[::-1]

    def schedules(levels: int) -> int:
        memo: dict[tuple[State, int], int] = {}

        def count(state: State, left: int) -> int:
            succ = edges.get(state)
            if left == 0 or not succ:
                return 1
            key = (state, left)
            if key not in memo:
                memo[key] = sum(count(t, left - 1) for t in succ)
            return memo[key]

        return count(explorer.initial, levels)

    violation = explorer.quiet_violation(explorer.initial)
    if violation:
        return [], violation, 1, 1
    frontier = [explorer.initial]
    for level in range(depth):
        explorer.levels = level + 1
        nxt = []
        for state in frontier:
            explorer.machine.restore(state)
            succ = edges.setdefault(state, [])
            for step in explorer.machine.enabled():
                after, _, violation = explorer.step(state, step)
                if violation:
                    return path(state) + [step], violation, len(parent), schedules(level + 1)
                succ.append(after)
                if after in parent:
                    continue
                parent[after] = (state, step)
                if max_states is not None and len(parent) > max_states:
                    raise StateBudget(f"more than {max_states} states")
                violation = explorer.quiet_violation(after)
                if violation:
                    return path(after), violation, len(parent), schedules(level + 1)
                nxt.append(after)
        frontier = nxt
        if not frontier:
            explorer.exhausted = True
            break
    return None, None, len(parent), schedules(depth)


def ddmin(steps: list[Step], fails: Callable[[list[Step]], bool]) -> list[Step]:
    """Zeller's delta debugging: a 1-minimal sub-schedule that still fails."""
    n = 2
    while len(steps) >= 2:
        chunk = -(-len(steps) // n)
        parts = [steps[i:i + chunk] for i in range(0, len(steps), chunk)]
        reduced = False
        for i in range(len(parts)):
            complement = [s for j, p in enumerate(parts) if j != i for s in p]
            if fails(parts[i]):
                steps, n, reduced = parts[i], 2, True
                break
            if fails(complement):
                steps, n, reduced = complement, max(n - 1, 2), True
                break
        if not reduced:
            if n >= len(steps):
                break
            n = min(len(steps), 2 * n)
    return steps


def explore(variant: str, ncpus: int = 2, samples: int = DEFAULT_SAMPLES,
            depth: int | None = None, random_runs: int | None = None, seed: int = 0,
            hotplug: bool = True, target: str | None = None,
            ring_slots: int | None = None) -> Result:
    """Exhaustive (depth) or random (random_runs schedules of up to depth steps) exploration;
    ring_slots None is the spec's IBS_NR_SAMPLES."""
    if target is not None and target not in INVARIANTS:
        raise ValueError(f"invariant must be one of {INVARIANTS}, got {target!r}")
    start = time.perf_counter()
    explorer = Explorer(variant, ncpus, samples, hotplug, target,
                        IBS_NR_SAMPLES if ring_slots is None else ring_slots)
    mode = "random" if random_runs is not None else "exhaustive"
    bound = depth if depth is not None else (
        DEFAULT_RANDOM_LENGTH if mode == "random" else DEFAULT_DEPTH)
    result = Result(variant, ncpus, samples, explorer.machine.slots, mode, bound, hotplug)
    result.invariant = target
    result.ring_from_spec = ring_slots is None
    if random_runs is None:
        steps, violation, result.states, result.schedules = bfs(explorer, bound)
        result.transitions, result.drops = explorer.transitions, Counter(explorer.drops)
        result.exhausted, result.depth_reached = explorer.exhausted, explorer.levels
    else:
        result.seed = seed
        steps, violation = _random(explorer, bound, random_runs, seed, result)
    if steps is not None and violation is not None:
        result.counterexample = explorer.counterexample(steps, violation)
    result.elapsed_s = time.perf_counter() - start
    return result


def _random(explorer: Explorer, length: int, runs: int, seed: int,
            result: Result) -> tuple[list[Step] | None, Violation | None]:
    rng = random.Random(seed)
    machine = explorer.machine
    for run in range(1, runs + 1):
        result.random_schedules = run
        state = explorer.initial
        steps: list[Step] = []
        violation = explorer.quiet_violation(state)
        for _ in range(length):
            if violation:
                break
            machine.restore(state)
            enabled = machine.enabled()
            if not enabled:
                break
            step = rng.choice(enabled)
            steps.append(step)
            state, _, violation = explorer.step(state, step)
            violation = violation or explorer.quiet_violation(state)
        if violation:
            result.schedules, result.found_length = run, len(steps)
            result.states, result.transitions = len(explorer.quiet_cache), explorer.transitions
            result.drops = Counter(explorer.drops)
            return _minimise(explorer, steps, violation, result)
    result.schedules = runs
    result.states, result.transitions = len(explorer.quiet_cache), explorer.transitions
    result.drops = Counter(explorer.drops)
    return None, None


def _minimise(explorer: Explorer, steps: list[Step], violation: Violation,
              result: Result) -> tuple[list[Step], Violation]:
    """Delta-debug the schedule (same invariant), then BFS up to its length for the shortest
    (given up past MINIMISE_MAX_STATES states: the delta-debugged schedule stands)."""
    def fails(candidate: list[Step]) -> bool:
        found = explorer.replay(candidate)
        return found is not None and found.invariant == violation.invariant

    target = explorer.target
    explorer.target = violation.invariant
    explorer.quiet_cache.clear()  # cached verdicts were filtered for the previous target
    small = ddmin(steps, fails)
    try:
        shortest, found, _, _ = bfs(explorer, len(small), MINIMISE_MAX_STATES)
    except StateBudget:
        shortest = found = None
    explorer.target = target
    if shortest is not None and found is not None:
        result.minimised = "bfs"
        return shortest, found
    result.minimised = "ddmin"
    return small, explorer.replay(small) or violation


# --- output -----------------------------------------------------------------------------------
def format_text(result: Result) -> str:
    mode = (f"exhaustive to depth {result.depth}" if result.mode == "exhaustive" else
            f"{result.random_schedules} random schedule(s) of up to {result.depth} steps, "
            f"seed {result.seed}")
    ring = f"ring {result.ring_slots} slots ({result.ring_slots - 1} usable"
    ring += ")" if result.ring_from_spec else \
        f", set by --ring; the spec's IBS_NR_SAMPLES is {IBS_NR_SAMPLES})"
    lines = [
        f"explore: driver {result.variant}, {result.cpus} CPUs, {ring}, {result.samples} "
        f"sample(s), {mode}" + ("" if result.hotplug else ", no CPU hotplug"),
        ("stopped at the first violation, depth "
         f"{result.depth_reached}: " if result.mode == "exhaustive" and result.counterexample
         else "") +
        f"{result.schedules} schedules, {result.states} distinct states, {result.transitions} "
        f"transitions in {result.elapsed_s:.2f} s",
    ]
    if result.drops:
        drops = ", ".join(f"{name} in {n} transition(s)"
                          for name, n in sorted(result.drops.items()))
        lines.append(f"drops reached (named, never accepted, not a loss): {drops}")
    cex = result.counterexample
    if cex is None:
        held = ("conservation, owner-only pops and no stranded sample hold" if not
                result.invariant else f"{result.invariant} holds")
        lines.append(f"no violation: {held} in every state reached" + (
            f" (all {result.states} reachable states: the search ended before depth "
            f"{result.depth})" if result.exhausted else ""))
        return "\n".join(lines)
    how = {"bfs": "minimised: delta debugging, then breadth first",
           "ddmin": "1-minimal by delta debugging; breadth first gave up"}
    found = "" if result.found_length is None else \
        f" (found after {result.found_length} steps; {how.get(result.minimised or '', '')})"
    lines.append(f"VIOLATION of {cex.invariant}: shortest schedule, {cex.prefix_length} "
                 f"step(s){found}:")
    settled = False
    for n, line in enumerate(cex.lines, 1):
        if line.settle and not settled:
            lines.append("   -- no further samples: the system settles --")
            settled = True
        lines.append(f"{n:>3}. {line.text}")
    lines.append(f"VIOLATION: {cex.message}")
    return "\n".join(lines)


def to_json(result: Result) -> str:
    return json.dumps(result.as_json(), indent=2)


def command(args: Any) -> int:
    """`ibs-mprof explore` with parsed arguments (see runtime/cli.py); the exit status."""
    for name, (low, high) in (("cpus", CPUS_RANGE), ("samples", SAMPLES_RANGE),
                              ("depth", DEPTH_RANGE), ("ring", RING_RANGE),
                              ("random", RANDOM_RANGE)):
        value = getattr(args, name)
        if value is not None and not low <= value <= high:
            raise InputError(f"explore: --{name} must be in {low}..{high}, got {value}")
    if args.seed is not None and args.random is None:
        raise InputError("explore: --seed needs --random N")
    result = explore(args.variant, args.cpus, args.samples, args.depth, args.random,
                     args.seed or 0, not args.no_hotplug, args.invariant, args.ring)
    print(to_json(result) if args.json else format_text(result))
    return 1 if result.counterexample is not None else 0
