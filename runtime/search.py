"""Binary search as a scalar rule compiled loops can call (numba has no bisect module)."""

from __future__ import annotations

from typing import Any

from generated._base import jitable


@jitable
def bisect_right(a: Any, x: float, lo: int, hi: int) -> int:
    """The first index in a[lo:hi] (ascending) whose value is greater than x (else hi): the
    standard library's bisect.bisect_right, for arrays in compiled loops and lists alike."""
    while lo < hi:
        mid = (lo + hi) // 2
        if x < a[mid]:
            hi = mid
        else:
            lo = mid + 1
    return lo
