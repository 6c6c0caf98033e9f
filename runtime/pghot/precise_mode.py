"""pghot precise mode (mm/pghot-precise.c, CONFIG_PGHOT_PRECISE): one u32 record per PFN.

The word holds the reporting node, an access count up to 7, the last access time as jiffies
modulo 16384 and MIGRATE_READY. Post-v7 (davidlohr/linux c46902d3) adds NID_KNOWN: a report
with a real node stores it and sets the bit; a report without one (NUMA_NO_NODE) keeps a node
known before, and a record with no known node promotes to target_nid, read when kmigrated
consumes it (docs/kernel-model.md §b.3).

Like default_mode.py: scalar @jitable rules over ints, one definition for both engines.
"""

from __future__ import annotations

from generated._base import jitable
from generated.pghot import (
    PGHOT_RECORD_PRECISE_FREQ_WIDTH,
    PGHOT_RECORD_PRECISE_TIME_WIDTH,
    pghot_record_precise_encode,
    pghot_record_precise_get_freq,
    pghot_record_precise_get_nid,
    pghot_record_precise_get_nid_known,
    pghot_record_precise_get_ready,
    pghot_record_precise_get_time,
)
from runtime.pghot.window import window_freq

NUMA_NO_NODE = -1
FREQ_MAX = (1 << PGHOT_RECORD_PRECISE_FREQ_WIDTH) - 1
TIME_WRAP_MS = 1 << PGHOT_RECORD_PRECISE_TIME_WIDTH
LATENCY_MAX_MS = TIME_WRAP_MS - 1


@jitable
def stored_time(jiffies: int) -> int:
    """The stored time: jiffies modulo 16384."""
    return jiffies & (TIME_WRAP_MS - 1)


@jitable
def access_latency(old_time: int, jiffies: int) -> int:
    """pghot_access_latency: (now - stored) modulo 16384 jiffies."""
    return (jiffies - old_time) & (TIME_WRAP_MS - 1)


@jitable
def update_record(word: int, nid: int, jiffies: int, window_ms: int, threshold: int) -> int:
    """pghot_update_record on one u32 word: rebuilt from zero, READY recomputed; a reported
    node replaces the stored one (a node change does not reset freq), NUMA_NO_NODE keeps it."""
    freq = window_freq(pghot_record_precise_get_freq(word),
                       access_latency(pghot_record_precise_get_time(word), jiffies),
                       window_ms, FREQ_MAX)
    known = 1
    if nid == NUMA_NO_NODE:
        nid = pghot_record_precise_get_nid(word)
        known = pghot_record_precise_get_nid_known(word)
    return pghot_record_precise_encode(nid=nid, nid_known=known, freq=freq,
                                       time=stored_time(jiffies),
                                       ready=1 if freq >= threshold else 0)


@jitable
def record_ready(word: int) -> int:
    return pghot_record_precise_get_ready(word)


@jitable
def record_target(word: int, target_nid: int) -> int:
    """The node a consumed record promotes to: the stored node if known, else target_nid."""
    if pghot_record_precise_get_nid_known(word):
        return pghot_record_precise_get_nid(word)
    return target_nid


@jitable
def record_time(word: int) -> int:
    return pghot_record_precise_get_time(word)


@jitable
def record_freq(word: int) -> int:
    return pghot_record_precise_get_freq(word)
