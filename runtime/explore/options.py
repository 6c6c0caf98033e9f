"""What a user can ask `ibs-mprof explore` for: the options, their bounds and defaults.

Imports nothing heavy (no numpy, no generated/), so `ibs-mprof --help` stays instant; the ring's
upper bound is the spec's IBS_NR_SAMPLES, which lives in generated/, so the command checks it.
"""

from __future__ import annotations

import argparse

from runtime.choices import DRIVER_VARIANTS, INVARIANTS

CPUS_RANGE = (2, 3)
SAMPLES_RANGE = (1, 6)
DEPTH_RANGE = (1, 60)
RANDOM_RANGE = (1, 1_000_000)
RING_MIN = 2
"""One slot of the ring is always empty, so 2 slots is the smallest ring that holds a sample."""
DEFAULT_CPUS = 2
DEFAULT_SAMPLES = 2
DEFAULT_DEPTH = 12
DEFAULT_RANDOM_LENGTH = 24


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The explore options, each with a help text in the user's words."""
    parser.add_argument(
        "--variant", choices=DRIVER_VARIANTS, required=True,
        help="which driver to explore: v7 (the seed patch, with its lost-sample races) or "
        "fixed (the repaired one)")
    parser.add_argument(
        "--cpus", type=int, default=DEFAULT_CPUS, metavar="N",
        help=f"CPUs in the model machine, {CPUS_RANGE[0]}..{CPUS_RANGE[1]} "
        f"(default {DEFAULT_CPUS}); CPU 0 never goes offline")
    parser.add_argument(
        "--ring", type=int, metavar="N",
        help=f"slots in each CPU's sample ring, {RING_MIN} up to the spec's IBS_NR_SAMPLES; "
        "one stays empty, so a small ring fills after N-1 samples (default: the spec's "
        "IBS_NR_SAMPLES)")
    parser.add_argument(
        "--samples", type=int, default=DEFAULT_SAMPLES, metavar="N",
        help=f"profiler samples taken at most over a whole schedule, "
        f"{SAMPLES_RANGE[0]}..{SAMPLES_RANGE[1]} (default {DEFAULT_SAMPLES}); each one more "
        "multiplies the states to explore")
    parser.add_argument(
        "--depth", type=int, metavar="N",
        help=f"longest schedule in steps, {DEPTH_RANGE[0]}..{DEPTH_RANGE[1]}: how deep the "
        f"exhaustive search goes (default {DEFAULT_DEPTH}), or how long each --random "
        f"schedule is (default {DEFAULT_RANDOM_LENGTH})")
    parser.add_argument(
        "--random", type=int, metavar="N",
        help=f"try N random schedules ({RANDOM_RANGE[0]}..{RANDOM_RANGE[1]}) instead of "
        "every one; a violation found is then shortened")
    parser.add_argument(
        "--seed", type=int, metavar="S",
        help="seed of the --random schedules, for a run that can be repeated (default 0)")
    parser.add_argument(
        "--invariant", choices=INVARIANTS,
        help="look for violations of this invariant only (default: all three)")
    parser.add_argument(
        "--no-hotplug", action="store_true",
        help="leave every CPU online: no offline/online steps")
    parser.add_argument(
        "--json", action="store_true",
        help="print the result as JSON instead of text")
