"""What a bound will cost, known before the search starts; a refusal when the machine cannot
hold it.

The search keeps every distinct state it reaches (breadth first, also each state's successors),
so memory grows with the states; a large bound used to run for tens of minutes and then die of
MemoryError. How many states a bound reaches depends on the driver, CPUs, samples and hotplug in
a way no short formula follows, so it is measured: REACHABLE holds the states of a full
breadth-first walk of the model (every state, no invariant stopping it early, the spec's ring)
for each combination. Past the table the last growth per sample repeats; that growth falls as
samples grow, so the figure errs high. Two corrections, both above what was measured: a ring
that can fill (at most --samples slots) adds drop states, at most x1.65 measured (6 samples, 2
slots), taken as x2; and within d steps of the start lie at most b^d states, b those within one
step (the start, an NMI on each CPU, an offline of each CPU but the boot CPU): no level measured
grows by more. tests/test_explore_cost.py holds these figures against real searches.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

from runtime.errors import InputError
from runtime.explore.search import MINIMISE_MAX_STATES

REACHABLE: dict[tuple[str, int, bool], tuple[int, ...]] = {
    # (driver variant, CPUs, hotplug): distinct states with 1, 2, ... samples
    ("fixed", 2, True): (18, 116, 584, 2476, 9246, 31370),
    ("v7", 2, True): (26, 220, 1184, 4710, 15764, 47476),
    ("fixed", 2, False): (9, 55, 243, 883, 2835, 8371),
    ("v7", 2, False): (9, 57, 273, 1073, 3673, 11401),
    ("fixed", 3, True): (52, 544, 4872, 38084, 265580),
    ("v7", 3, True): (84, 1340, 15740, 131228, 850316),
    ("fixed", 3, False): (13, 130, 1048, 6961, 40009, 206950),
    ("v7", 3, False): (13, 133, 1129, 8089, 50389, 280861),
}
SMALL_RING_FACTOR = 2
BYTES_PER_STATE = 1024
"""Measured 500-600 bytes a state with tracemalloc (the state, its successors, its settled
verdict, the schedule count's big numbers); doubled for the allocator's slack."""
BASE_BYTES = 64 << 20
"""The interpreter, numpy and the model before the first state."""
USABLE_SHARE = 0.8
"""Of MemAvailable: the rest stays for the page cache and whatever else runs."""
MEM_AVAILABLE_ENV = "IBS_MPROF_MEM_AVAILABLE_KB"
"""Stands in for /proc/meminfo's MemAvailable (kB, as there): a test plays a small machine with
it; a user can leave room for other work."""


@dataclass(frozen=True)
class Bound:
    """What the user asked for, as far as it decides the cost."""

    variant: str
    cpus: int
    samples: int
    hotplug: bool
    ring_slots: int
    depth: int
    random_runs: int | None = None


def reachable_states(bound: Bound) -> int:
    """All states the model can reach with these CPUs, samples, hotplug and ring (any depth)."""
    row = REACHABLE[(bound.variant, bound.cpus, bound.hotplug)]
    states = row[min(bound.samples, len(row)) - 1]
    for _ in range(len(row), bound.samples):
        states = states * row[-1] // row[-2] + 1
    return states * (SMALL_RING_FACTOR if bound.ring_slots <= bound.samples else 1)


def states_within(bound: Bound, depth: int) -> int:
    """At most this many states lie within depth steps of the start."""
    return int((1 + bound.cpus + (bound.cpus - 1 if bound.hotplug else 0)) ** depth)


def states_kept(bound: Bound) -> int:
    """The states the search will hold at its peak: breadth first keeps what it reached within
    the depth; random keeps one verdict per state visited, then minimising may walk up to
    MINIMISE_MAX_STATES."""
    reachable = reachable_states(bound)
    if bound.random_runs is None:
        return min(reachable, states_within(bound, bound.depth))
    visited = min(reachable, bound.random_runs * (bound.depth + 1))
    return max(visited, min(reachable, MINIMISE_MAX_STATES))


def bytes_needed(bound: Bound) -> int:
    return BASE_BYTES + states_kept(bound) * BYTES_PER_STATE


def mem_available(meminfo: Path = Path("/proc/meminfo")) -> int | None:
    """Bytes this machine can give without swapping (MemAvailable), None when unknown."""
    override = os.environ.get(MEM_AVAILABLE_ENV)
    if override is not None:
        if not override.isdigit():
            raise InputError(f"{MEM_AVAILABLE_ENV}: expected kB as a whole number, got "
                             f"{override!r}")
        return int(override) * 1024
    try:
        text = meminfo.read_text()
    except OSError:
        return None
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name == "MemAvailable" and value.split() and value.split()[0].isdigit():
            return int(value.split()[0]) * 1024
    return None


def _gib(n: int) -> str:
    return f"{n / (1 << 30):.1f} GiB" if n >= 1 << 30 else f"{n / (1 << 20):.0f} MiB"


def _smaller(bound: Bound) -> list[tuple[str, Bound]]:
    """Cheaper bounds, the usual knob first: fewer random schedules, fewer samples, a smaller
    depth, no hotplug, fewer CPUs; each the largest that fits comes first."""
    out = []
    if bound.random_runs is not None:
        for runs in sorted({bound.random_runs // 10 ** k for k in range(1, 7)} - {0},
                           reverse=True):
            out.append((f"--random {runs}", replace(bound, random_runs=runs)))
    for samples in range(bound.samples - 1, 0, -1):
        out.append((f"--samples {samples}", replace(bound, samples=samples)))
    for depth in range(bound.depth - 1, 0, -1):
        out.append((f"--depth {depth}", replace(bound, depth=depth)))
    if bound.hotplug:
        out.append(("--no-hotplug", replace(bound, hotplug=False)))
    if bound.cpus > 2:
        out.append(("--cpus 2", replace(bound, cpus=2)))
    return out


def check_memory(bound: Bound, available: int | None) -> int | None:
    """Refuse a bound whose states will not fit, naming the knob that makes it fit; else the
    most states the search may keep (None: no figure for this machine, no limit)."""
    if available is None:
        return None
    usable = int(available * USABLE_SHARE)
    need = bytes_needed(bound)
    if need > usable:
        fits: list[tuple[str, int]] = []
        for option, smaller in _smaller(bound):
            if option.split()[0] not in {f.split()[0] for f, _ in fits} and \
                    bytes_needed(smaller) <= usable:
                fits.append((option, bytes_needed(smaller)))
        knobs = " or ".join(f"{option} (about {_gib(n)})" for option, n in fits[:2])
        raise InputError(
            f"explore: this bound needs about {_gib(need)} for about {states_kept(bound):,} "
            f"states, more than the {_gib(usable)} this machine can spare ({USABLE_SHARE:.0%} "
            f"of MemAvailable {_gib(available)}); " +
            (f"try {knobs}" if knobs else "no smaller bound fits either"))
    return max(1, (usable - BASE_BYTES) // BYTES_PER_STATE)
