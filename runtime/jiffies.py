"""Kernel time: jiffies as the kernel counts them, and the run's own clock.

The engines keep event time in ms from the start of the run (a float). The kernel rules get
jiffies: HZ = 1000, so one jiffy is one ms, and the count starts at INITIAL_JIFFIES, 300 s
before its low 32 bits wrap (include/linux/jiffies.h). That offset fixes the phase of every
masked clock (pghot's 128-jiffy buckets, precise mode's 14-bit time) and makes the 32-bit ms
clock of the promotion rate limiter wrap 300 s into the run, as on a freshly booted machine
(docs/kernel-model.md §a). Times shown to users stay relative to the start of the run.
"""

from __future__ import annotations

from generated._base import jitable

HZ = 1000
INITIAL_JIFFIES = (1 << 32) - 300 * HZ
"""(unsigned long)(unsigned int)(-300 * HZ): 4294667296."""
U32_MASK = (1 << 32) - 1


@jitable
def jiffies_at(run_ms: float) -> int:
    """The jiffies count at run time run_ms (>= 0): whole ms elapsed, from INITIAL_JIFFIES."""
    return INITIAL_JIFFIES + int(run_ms)


@jitable
def run_ms_of(jiffies: int) -> int:
    """Whole ms since the start of the run of a jiffies count (what users are shown)."""
    return jiffies - INITIAL_JIFFIES


@jitable
def jiffies_to_msecs(jiffies: int) -> int:
    """jiffies_to_msecs: an unsigned int, so the ms clock wraps every 2^32 ms."""
    return jiffies & U32_MASK
