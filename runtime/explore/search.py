"""How the explorer walks the model's interleavings: exhaustive breadth first, or random.

Exhaustive mode walks all interleavings breadth first with state hashing (so the first
violation is one of the shortest); random mode runs seeded random schedules and minimises a
violation by delta debugging, then by a breadth-first search up to the minimised length.

Figures: `states` are distinct model states; `transitions` the steps executed; `schedules` the
step sequences of up to `depth` steps the search covered, counted over the explored state graph
(a schedule ends early only where no step is enabled; when the search stops at a violation, up
to the depth it reached). The graph is kept as state numbers, one list of successors per state,
so its size is a few words per transition.

A long search says how far it got through a reporter (runtime/explore/progress.py): it asks
`due()` often, which is a clock read, and builds the words only when a line is due.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from generated.ibs_mprof import IBS_NR_SAMPLES
from runtime.choices import INVARIANTS
from runtime.explore.invariants import Violation, check_quiet, check_step
from runtime.explore.model import Machine, State, Step, StepResult
from runtime.explore.options import DEFAULT_DEPTH, DEFAULT_RANDOM_LENGTH, DEFAULT_SAMPLES
from runtime.explore.progress import Quiet

MINIMISE_MAX_STATES = 200_000

@dataclass
class Line:
    """One step of a counterexample and the states around it (output.py puts it in words)."""

    step: Step
    before: State
    after: State
    result: StepResult
    settle: bool


@dataclass
class Counterexample:
    invariant: str
    message: str
    lines: list[Line]

    @property
    def prefix_length(self) -> int:
        return sum(1 for line in self.lines if not line.settle)


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
    ring_from_spec: bool = True  # False when the caller (--ring) set the size
    invariant: str | None = None  # only this invariant was looked for
    minimised: str | None = None  # random mode: "bfs" (shortest) or "ddmin" (1-minimal)
    exhausted: bool = False  # exhaustive mode saw every reachable state before the depth bound
    depth_reached: int = 0  # exhaustive mode: levels searched (less than depth when stopped)


class Explorer:
    """The model plus what a search remembers across steps: verdicts once settled, drops."""

    def __init__(self, variant: str, ncpus: int, samples: int, hotplug: bool = True,
                 target: str | None = None, ring_slots: int = IBS_NR_SAMPLES,
                 report: Quiet | None = None) -> None:
        self.machine = Machine(variant, ncpus, samples, hotplug, ring_slots)
        self.initial = self.machine.snapshot()
        self.target = target
        self.report = report or Quiet()
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
        return m.snapshot(), result, self._wanted(check_step(m, result))

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
            violation = self._wanted(check_step(m, result))
            if violation:
                return trace, violation
        return trace, self._wanted(check_quiet(m))

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
            lines.append(Line(step, state, after, result, False))
            last = self._wanted(check_step(m, result))
            state = after
        if last is None:
            trace, settle_violation = self.settle(state)
            lines += [Line(r.step, b, a, r, True) for b, r, a in trace]
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


def count_schedules(edges: Sequence[Sequence[int] | None], level_end: Sequence[int],
                    levels: int, report: Quiet | None = None) -> int:
    """Step sequences of up to `levels` steps from state 0, ending early only where no step is
    enabled (edges[i] None or empty); states are numbered breadth first and level_end[d] is
    how many lie within d steps, so each round needs only a prefix of the numbers."""
    report = report or Quiet()

    def within(d: int) -> int:
        return level_end[d] if d < len(level_end) else len(edges)

    ways = [1] * within(levels)
    for left in range(1, levels + 1):
        nxt = []
        for i in range(within(levels - left)):
            succ = edges[i]
            nxt.append(sum(ways[t] for t in succ) if succ else 1)
            if not i & 0xFFF and report.due():
                report.show(f"counting schedules: {left} of {levels} steps")
        ways = nxt
    return ways[0]


def bfs(explorer: Explorer, depth: int, max_states: int | None = None,
        ) -> tuple[list[Step] | None, Violation | None, int, int]:
    """Breadth first to depth; (shortest violating steps, violation, states, schedules).

    `explorer.exhausted` tells whether every reachable state was seen before the bound,
    `explorer.levels` how deep the search went. StateBudget when over max_states.
    """
    number: dict[State, int] = {explorer.initial: 0}
    states = [explorer.initial]
    parent: list[tuple[int, Step] | None] = [None]
    edges: list[list[int] | None] = [None]  # None: not expanded
    level_end = [1]  # states[:level_end[d]] lie within d steps
    report = explorer.report

    def path(i: int) -> list[Step]:
        steps = []
        link = parent[i]
        while link is not None:
            i, step = link
            steps.append(step)
            link = parent[i]
        return steps[::-1]

    def found(i: int, steps: list[Step], violation: Violation, levels: int,
              ) -> tuple[list[Step], Violation, int, int]:
        ends = level_end + [len(states)]
        return path(i) + steps, violation, len(states), count_schedules(edges, ends, levels,
                                                                        report)

    violation = explorer.quiet_violation(explorer.initial)
    if violation:
        return [], violation, 1, 1
    frontier = [0]
    for level in range(depth):
        explorer.levels = level + 1
        nxt = []
        for i in frontier:
            state = states[i]
            explorer.machine.restore(state)
            succ: list[int] = []
            edges[i] = succ
            for step in explorer.machine.enabled():
                after, _, violation = explorer.step(state, step)
                if violation:
                    return found(i, [step], violation, level + 1)
                known = number.get(after)
                if known is not None:
                    succ.append(known)
                    continue
                j = len(states)
                number[after] = j
                states.append(after)
                parent.append((i, step))
                edges.append(None)
                succ.append(j)
                if max_states is not None and len(states) > max_states:
                    raise StateBudget(f"more than {max_states} states")
                violation = explorer.quiet_violation(after)
                if violation:
                    return found(j, [], violation, level + 1)
                nxt.append(j)
            if report.due():
                report.show(f"depth {level + 1} of {depth}: {len(states)} states, "
                            f"{explorer.transitions} transitions")
        frontier = nxt
        level_end.append(len(states))
        if not frontier:
            explorer.exhausted = True
            break
    return None, None, len(states), count_schedules(edges, level_end, depth, report)


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


def schedule_length(depth: int | None, random_runs: int | None) -> int:
    """The depth bound, or each random schedule's length; None is the mode's default."""
    if depth is not None:
        return depth
    return DEFAULT_DEPTH if random_runs is None else DEFAULT_RANDOM_LENGTH


def explore(variant: str, ncpus: int = 2, samples: int = DEFAULT_SAMPLES,
            depth: int | None = None, random_runs: int | None = None, seed: int = 0,
            hotplug: bool = True, target: str | None = None,
            ring_slots: int | None = None, report: Quiet | None = None,
            max_states: int | None = None) -> Result:
    """Exhaustive (depth) or random (random_runs schedules of up to depth steps) exploration;
    ring_slots None is the spec's IBS_NR_SAMPLES. StateBudget once the search holds more than
    max_states states (what the machine can spare, runtime/explore/cost.py)."""
    if target is not None and target not in INVARIANTS:
        raise ValueError(f"invariant must be one of {INVARIANTS}, got {target!r}")
    start = time.perf_counter()
    explorer = Explorer(variant, ncpus, samples, hotplug, target,
                        IBS_NR_SAMPLES if ring_slots is None else ring_slots, report)
    mode = "random" if random_runs is not None else "exhaustive"
    bound = schedule_length(depth, random_runs)
    result = Result(variant, ncpus, samples, explorer.machine.slots, mode, bound, hotplug)
    result.invariant = target
    result.ring_from_spec = ring_slots is None
    if random_runs is None:
        steps, violation, result.states, result.schedules = bfs(explorer, bound, max_states)
        result.transitions, result.drops = explorer.transitions, Counter(explorer.drops)
        result.exhausted, result.depth_reached = explorer.exhausted, explorer.levels
    else:
        result.seed = seed
        steps, violation = _random(explorer, bound, random_runs, seed, result, max_states)
    if steps is not None and violation is not None:
        result.counterexample = explorer.counterexample(steps, violation)
    result.elapsed_s = time.perf_counter() - start
    return result


def _random(explorer: Explorer, length: int, runs: int, seed: int, result: Result,
            max_states: int | None) -> tuple[list[Step] | None, Violation | None]:
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
        if max_states is not None and len(explorer.quiet_cache) > max_states:
            raise StateBudget(f"more than {max_states} states")
        if explorer.report.due():
            explorer.report.show(f"random schedule {run} of {runs}: "
                                 f"{len(explorer.quiet_cache)} states")
    result.schedules = runs
    result.states, result.transitions = len(explorer.quiet_cache), explorer.transitions
    result.drops = Counter(explorer.drops)
    return None, None


def _minimise(explorer: Explorer, steps: list[Step], violation: Violation,
              result: Result) -> tuple[list[Step], Violation]:
    """Delta-debug the schedule (same invariant), then BFS up to its length for the shortest
    (given up past MINIMISE_MAX_STATES states: the delta-debugged schedule stands)."""
    def fails(candidate: list[Step]) -> bool:
        if explorer.report.due():
            explorer.report.show(f"minimising a {len(steps)}-step schedule: trying "
                                 f"{len(candidate)} steps")
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
