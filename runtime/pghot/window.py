"""The frequency window both record modes share (pghot_update_record in pghot-default.c and
pghot-precise.c): an access strictly older than the window than the stored one restarts the
count at 1, else the count grows by one and saturates at the mode's FREQ_MAX."""

from __future__ import annotations

from generated._base import jitable


@jitable
def window_freq(old_freq: int, latency_ms: int, window_ms: int, freq_max: int) -> int:
    """The new access count: a new window (latency > window, strictly) starts at 1."""
    if latency_ms > window_ms:
        return 1
    return min(old_freq + 1, freq_max)
