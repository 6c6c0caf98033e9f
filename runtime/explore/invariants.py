"""What must hold in every state the explorer reaches, in words a kernel developer can act on.

- conservation: every sample the handler accepted (pushed) is recorded exactly once or is still
  in some ring, nothing is recorded twice or without being accepted, the counters agree;
  samples the handler refused (ring_full) are a named drop reason, never a loss;
- owner-pop: no ring is popped by a context other than its owner CPU's while the owner is
  online and can push (the ring is single-consumer);
- stranded: from every state, once the system settles with no further samples (every queued
  irq_work and work runs, offline CPUs come back), no ring holds a sample.

Kept apart from the model so a check reads the machine and never changes it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from runtime.explore.model import LOWER_PFN, Machine, StepResult, live


@dataclass(frozen=True)
class Violation:
    invariant: str
    message: str


def check_step(machine: Machine, result: StepResult) -> Violation | None:
    """Conservation and owner-pop after one step."""
    step = result.step
    cpus = machine.driver.cpus
    for owner, sample in result.pops:
        if sample is None or owner == step.cpu:
            continue
        st = cpus[owner]
        if st.online and st.profiling:
            context = (f"the work for cpu{step.cpu}, running on cpu{result.runner},"
                       if step.kind.startswith("work") else f"cpu{step.cpu}")
            return Violation("owner-pop", (
                f"{context} popped sample pfn {sample.pfn:#x} from cpu{owner}'s ring while "
                f"cpu{owner} is online and pushing: a second consumer on a single-producer, "
                f"single-consumer ring (cpu{owner}'s own work may drain it at the same time)"))
    accepted, recorded = machine.accepted, machine.recorded
    for pfn, nid, jiffies in result.records:
        if pfn not in accepted:
            return Violation("conservation", f"pfn {pfn:#x} recorded but never accepted")
        if recorded[pfn] > 1:
            return Violation("conservation", (
                f"sample pfn {pfn:#x} accepted by cpu{accepted[pfn]} is recorded "
                f"{recorded[pfn]} times"))
        taken = (machine.topology.cpu_node[accepted[pfn]], pfn - LOWER_PFN)
        if (nid, jiffies) != taken:
            return Violation("conservation", (
                f"sample pfn {pfn:#x} recorded with nid {nid}, time {jiffies}; it was "
                f"taken with nid {taken[0]}, time {taken[1]}"))
    in_rings = Counter(s.pfn for st in cpus for s in live(st.ring))
    for pfn, cpu in accepted.items():
        copies = in_rings[pfn] + recorded[pfn]
        if copies != 1:
            where = "neither recorded nor in any ring" if copies == 0 else \
                f"present {copies} times (rings and records)"
            return Violation("conservation",
                             f"sample pfn {pfn:#x} accepted by cpu{cpu} is {where}")
    return check_counters(machine)


def check_counters(machine: Machine) -> Violation | None:
    """The driver's vmstat counters and outcomes add up to the samples injected."""
    vm = machine.driver.vmstat
    outcomes = machine.driver.outcomes
    expect = {"hwhint_total_events": machine.injected,
              "hwhint_useful_events": len(machine.accepted)}
    if machine.driver.behaviour.count_ring_full:
        expect["hwhint_dropped_events"] = outcomes["ring_full"]
    for name, value in expect.items():
        if vm.get(name) != value:
            return Violation("conservation", f"{name} is {vm.get(name)}, expected {value}")
    if sum(outcomes.values()) != machine.injected or outcomes["pushed"] != len(machine.accepted):
        counted = {k: v for k, v in outcomes.items() if v}
        return Violation("conservation", f"outcomes {counted} do not add up to the "
                         f"{machine.injected} samples injected")
    return None


def check_quiet(machine: Machine) -> Violation | None:
    """After settling: every ring empty, every accepted sample recorded exactly once."""
    for owner, st in enumerate(machine.driver.cpus):
        left = live(st.ring)
        if not left:
            continue
        pfns = ", ".join(f"{s.pfn:#x}" for s in left)
        by = sorted({machine.accepted.get(s.pfn, -1) for s in left})
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
    for pfn, cpu in machine.accepted.items():
        if machine.recorded[pfn] != 1:
            return Violation("conservation", (
                f"sample pfn {pfn:#x} accepted by cpu{cpu} is recorded "
                f"{machine.recorded[pfn]} times once the system is quiet"))
    return None
