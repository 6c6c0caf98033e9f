"""What `ibs-mprof explore` prints: the figures and the counterexample, as text or JSON.

Each step of a counterexample is told as a kernel developer reads it in a bug report, from the
states before and after it; the search keeps only those states, so the words live here alone.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from generated.ibs_mprof import IBS_NR_SAMPLES
from runtime.choices import DRIVER_BEHAVIOURS
from runtime.explore.model import State, StepResult
from runtime.explore.search import Counterexample, Line, Result


def _pfns(samples: Sequence[int]) -> str:
    return ", ".join(f"{pfn:#x}" for pfn in samples)


def _samples(n: int) -> str:
    return f"{n} sample" if n == 1 else f"{n} samples"


def describe(variant: str, capacity: int, before: State, after: State,
             result: StepResult) -> str:
    """One step as a kernel developer reads it in a bug report."""
    does = DRIVER_BEHAVIOURS[variant]
    step, c, r = result.step, result.step.cpu, result.runner
    b, a = before.cpus[c], after.cpus[c]
    cap = capacity
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
        note = " (counted in hwhint_dropped_events)" if does.count_ring_full else \
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
        target = c if does.work_owns_ring else r
        was = int(before.cpus[target].pending)
        on = f"still on cpu{r}" if r != c else f"on cpu{r}"
        text = f"work for cpu{c}, {on}, clears cpu{target}'s pending flag (was {was})"
        if target != c:
            text += f"; cpu{c}'s stays {int(a.pending)}"
        if does.recheck_after_clear:
            text += f", re-checks cpu{c}'s ring: " + (
                f"drains samples pushed meanwhile, records pfn {_pfns(recorded)}" if recorded
                else "empty")
        return text
    if step.kind == "offline":
        text = f"cpu{c} goes offline (teardown): profiler disabled"
        if does.teardown_drains:
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


def _line_text(result: Result, line: Line) -> str:
    return describe(result.variant, result.ring_slots - 1, line.before, line.after, line.result)


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
        lines.append(f"{n:>3}. {_line_text(result, line)}")
    lines.append(f"VIOLATION: {cex.message}")
    return "\n".join(lines)


def as_json(result: Result) -> dict[str, Any]:
    cex: Counterexample | None = result.counterexample
    return {
        "variant": result.variant, "cpus": result.cpus, "samples": result.samples,
        "ring_slots": result.ring_slots, "ring_capacity": result.ring_slots - 1,
        "ring_source": "spec" if result.ring_from_spec else "--ring",
        "mode": result.mode, "depth": result.depth, "hotplug": result.hotplug,
        "invariant": result.invariant, "exhausted": result.exhausted,
        "depth_reached": result.depth_reached if result.mode == "exhaustive" else None,
        "random_schedules": result.random_schedules if result.mode == "random" else None,
        "seed": result.seed, "schedules": result.schedules, "states": result.states,
        "transitions": result.transitions, "elapsed_s": round(result.elapsed_s, 3),
        "drops": dict(sorted(result.drops.items())),
        "violation": None if cex is None else {
            "invariant": cex.invariant, "message": cex.message,
            "length": cex.prefix_length, "found_length": result.found_length,
            "minimised": result.minimised,
            "steps": [{"n": n, "kind": line.step.kind, "cpu": line.step.cpu,
                       "settle": line.settle, "text": _line_text(result, line)}
                      for n, line in enumerate(cex.lines, 1)]},
    }


def to_json(result: Result) -> str:
    return json.dumps(as_json(result), indent=2)
