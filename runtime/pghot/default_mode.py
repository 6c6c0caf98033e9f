"""pghot default mode (mm/pghot-default.c): one u8 record per lower-tier PFN.

The word holds an access count (freq), the time bucket of the last access and MIGRATE_READY;
the promotion target is the global target_nid. Time is jiffies (HZ = 1000, so one jiffy is
one ms), bucketed by PGHOT_BUCKET_SHIFT: a bucket is 128 jiffies and the clock wraps every
4096, so an access 4096 + d ms old looks d old. Bucket boundaries follow absolute jiffies,
which start at INITIAL_JIFFIES, not at 0 (docs/kernel-model.md §a, §b.2).

Every rule is a scalar function over ints marked @jitable: the reference engine calls it per
access, the fast engine compiles the same function into its record loop. Field limits come
from the generated widths, the bits from the generated scalar accessors: no mask by hand.
"""

from __future__ import annotations

from generated._base import jitable
from generated.pghot import (
    PGHOT_BUCKET_SHIFT,
    PGHOT_RECORD_DEFAULT_FREQ_WIDTH,
    PGHOT_RECORD_DEFAULT_TIME_WIDTH,
    pghot_record_default_encode,
    pghot_record_default_get_freq,
    pghot_record_default_get_ready,
    pghot_record_default_get_time,
    pghot_record_default_set_freq,
    pghot_record_default_set_ready,
    pghot_record_default_set_time,
)
from runtime.pghot.window import window_freq

FREQ_MAX = (1 << PGHOT_RECORD_DEFAULT_FREQ_WIDTH) - 1
TIME_BUCKETS = 1 << PGHOT_RECORD_DEFAULT_TIME_WIDTH
BUCKET_MS = 1 << PGHOT_BUCKET_SHIFT
TIME_WRAP_MS = TIME_BUCKETS * BUCKET_MS
"""The bucketed clock aliases after this many ms."""
LATENCY_MAX_MS = TIME_WRAP_MS - BUCKET_MS
"""Largest latency the bucketed clock can express (the kernel's PGHOT_TIME_BUCKETS_MASK)."""


@jitable
def time_bucket(jiffies: int) -> int:
    """The stored time: (jiffies >> PGHOT_BUCKET_SHIFT) modulo the bucket count."""
    return (jiffies >> PGHOT_BUCKET_SHIFT) & (TIME_BUCKETS - 1)


@jitable
def access_latency(old_bucket: int, jiffies: int) -> int:
    """pghot_access_latency: the age of a stored bucket, a multiple of 128 below 4096."""
    return ((time_bucket(jiffies) - old_bucket) & (TIME_BUCKETS - 1)) * BUCKET_MS


@jitable
def update_record(word: int, jiffies: int, window_ms: int, threshold: int,
                  sticky: int) -> int:
    """pghot_update_record on one u8 word; returns the new word.

    Post-v7 (sticky = 0) rebuilds the word from zero, so READY is recomputed on every update
    and a new window clears it; v6 (sticky = 1) edits the word in place, so READY survives a
    window reset until kmigrated consumes the record.
    """
    freq = window_freq(pghot_record_default_get_freq(word),
                       access_latency(pghot_record_default_get_time(word), jiffies),
                       window_ms, FREQ_MAX)
    ready = 1 if freq >= threshold else 0
    if sticky:
        ready |= pghot_record_default_get_ready(word)
        word = pghot_record_default_set_freq(word, freq)
        word = pghot_record_default_set_time(word, time_bucket(jiffies))
        return pghot_record_default_set_ready(word, ready)
    return pghot_record_default_encode(freq=freq, time=time_bucket(jiffies), ready=ready)


@jitable
def record_ready(word: int) -> int:
    """MIGRATE_READY of a word."""
    return pghot_record_default_get_ready(word)


@jitable
def record_target(word: int, target_nid: int) -> int:
    """The node a consumed record promotes to: the global target_nid, read at consume time."""
    return target_nid


@jitable
def record_time(word: int) -> int:
    """The stored time a consumed record hands the age test (a bucket)."""
    return pghot_record_default_get_time(word)


@jitable
def record_freq(word: int) -> int:
    return pghot_record_default_get_freq(word)
