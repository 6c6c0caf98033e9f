"""Named choices the command line, the scenario schema and the models share.

One tuple per choice, in a module that imports nothing, so the CLI can build its parser
without loading numpy and every place that offers or checks a choice reads the same list.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DriverBehaviour:
    """Where the seed driver (v7) and the repaired one (post-v7) differ, one flag each, so
    the driver, the fast engine and the explorer test a behaviour, not a variant's name."""

    teardown_drains: bool
    """CPU offline drains the CPU's ring, then resets ring, pending flag and queued work."""
    work_owns_ring: bool
    """The work drains the ring of the CPU it was queued for and clears that CPU's pending
    flag (v7: raw_cpu_ptr, the ring and flag of whichever CPU runs it)."""
    recheck_after_clear: bool
    """After clearing pending, the work re-checks its ring (smp_mb): a sample pushed during
    the drain is drained, not stranded until the next NMI."""
    count_ring_full: bool
    """hwhint_dropped_events exists and counts ring-full drops (v7 drops silently)."""


DRIVER_BEHAVIOURS = {
    "v7": DriverBehaviour(teardown_drains=False, work_owns_ring=False,
                          recheck_after_clear=False, count_ring_full=False),
    "fixed": DriverBehaviour(teardown_drains=True, work_owns_ring=True,
                             recheck_after_clear=True, count_ring_full=True),
}
"""The driver models: the seed patch (v7, with its defects) or the repaired one."""
DRIVER_VARIANTS = tuple(DRIVER_BEHAVIOURS)
ENGINES = ("reference", "fast")
"""The event-by-event reference engine and the numpy fast engine held equal to it."""
SETUP_NAMES = ("numab0", "numab2", "pghot-hintfaults", "pghot-hwhints", "pghot-both")
"""Promotion setups (runtime/setups.py describes each)."""
INVARIANTS = ("conservation", "owner-pop", "stranded")
"""What `ibs-mprof explore` checks after every step."""
