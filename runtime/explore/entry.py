"""`ibs-mprof explore`: check the bounds and their cost, run the search, print, exit status.

Exit status 1 when an invariant breaks (a counterexample is printed), 0 when none does, 2 (one
line, by runtime/cli.py) for a bound outside its range or beyond what the machine can hold.
"""

from __future__ import annotations

import argparse

from generated.ibs_mprof import IBS_NR_SAMPLES
from runtime.errors import InputError
from runtime.explore.cost import Bound, check_memory, mem_available, states_kept
from runtime.explore.options import (
    CPUS_RANGE,
    DEPTH_RANGE,
    RANDOM_RANGE,
    RING_MIN,
    SAMPLES_RANGE,
)
from runtime.explore.output import format_text, to_json
from runtime.explore.progress import Progress
from runtime.explore.search import StateBudget, explore, schedule_length

RING_MAX = IBS_NR_SAMPLES
"""A ring larger than the spec's models no driver; and above --samples + 1 slots a ring never
fills, so a larger one changes nothing the search can see."""
BOUNDS = {
    "cpus": (CPUS_RANGE, ""),
    "samples": (SAMPLES_RANGE, ""),
    "depth": (DEPTH_RANGE, ""),
    "ring": ((RING_MIN, RING_MAX), f" (one slot stays empty; {RING_MAX} is the spec's "
             "IBS_NR_SAMPLES)"),
    "random": (RANDOM_RANGE, ""),
}


def check_bounds(args: argparse.Namespace) -> None:
    """Every bound in its range, one line naming the option otherwise."""
    for name, ((low, high), why) in BOUNDS.items():
        value = getattr(args, name)
        if value is not None and not low <= value <= high:
            raise InputError(f"explore: --{name} must be in {low}..{high}{why}, got {value}")
    if args.seed is not None and args.random is None:
        raise InputError("explore: --seed needs --random N")


def command(args: argparse.Namespace) -> int:
    """`ibs-mprof explore` with parsed arguments; the exit status."""
    check_bounds(args)
    bound = Bound(args.variant, args.cpus, args.samples, not args.no_hotplug,
                  RING_MAX if args.ring is None else args.ring,
                  schedule_length(args.depth, args.random), args.random)
    max_states = check_memory(bound, mem_available())
    progress = Progress(note=f" (estimate: at most {states_kept(bound):,} states)")
    try:
        result = explore(args.variant, args.cpus, args.samples, args.depth, args.random,
                         args.seed or 0, not args.no_hotplug, args.invariant, args.ring,
                         progress, max_states)
    except StateBudget:
        knobs = "--random, --samples or --depth" if args.random else "--samples or --depth"
        raise InputError(f"explore: stopped at {max_states:,} states, all this machine can "
                         f"spare (the estimate was low); lower {knobs}") from None
    finally:
        progress.done()
    print(to_json(result) if args.json else format_text(result))
    return 1 if result.counterexample is not None else 0
