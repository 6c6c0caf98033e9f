"""A tick's pghot calls folded into the collector's fixed-size summaries in one compiled pass.

The collector (runtime/metrics.py) reads every pghot call once: its sample-to-record lag goes
to a histogram (IBS calls only: a hint fault records in the fault), its PFN to a heatmap
bucket of the lower tier, and a READY call on a workload page to the list whose READY times
the page state takes. Done as separate numpy passes over the calls that was a third of the
cost per sample on the 64-CPU microbench; here it is one loop, compiled at its first call
(both engines' collectors run it, so the two fold the same way). The bins and buckets are
scalar @jitable rules: the loop calls them compiled, the tests interpreted (one definition
each).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from generated._base import jitable
from runtime.jit import compiled_on_first_call

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
I8 = npt.NDArray[np.int8]

FINE_MS = 65.536
"""Lags below this get 1 us bins ..."""
FINE = 65536
PER_DOUBLING = 64
"""... above it 64 bins a doubling ..."""
DOUBLINGS = 40
"""... up to FINE_MS x 2^40; a longer lag counts in the last bin."""
LAG_BINS = FINE + PER_DOUBLING * DOUBLINGS


@jitable
def lag_bin(lag: float) -> int:
    """The histogram bin of a lag (ms): below FINE_MS the floor of max(lag, 0) in us, from
    FINE_MS on FINE + 64 x log2(lag / FINE_MS) (floor), the last bin at most."""
    if lag < FINE_MS:
        return int(max(lag * 1000.0, 0.0))  # (>= 0: truncation is floor)
    return FINE + min(int(math.log2(lag / FINE_MS) * PER_DOUBLING),
                      PER_DOUBLING * DOUBLINGS - 1)


@jitable
def heat_bucket(pfn: int, starts: I64, ends: I64, total: int, buckets: int) -> int:
    """The heatmap bucket of a PFN over the lower tier's ranges (starts/ends ascending,
    concatenated): offset o of `total` pages falls in bucket o x buckets // total; -1 if the
    PFN is not on the lower tier."""
    base = 0
    for r in range(starts.size):
        if starts[r] <= pfn < ends[r]:
            return int((pfn - starts[r] + base) * buckets // total)
        base += int(ends[r] - starts[r])
    return -1


class LowerTier(NamedTuple):
    """The lower tier's PFN ranges, ascending, as heat_bucket reads them."""

    starts: I64
    ends: I64
    total: int  # pages in all ranges (at least 1)
    buckets: int


def lower_tier(ranges: list[tuple[int, int]], buckets: int) -> LowerTier:
    return LowerTier(np.array([s for s, _ in ranges], dtype=np.int64),
                     np.array([e for _, e in ranges], dtype=np.int64),
                     max(sum(e - s for s, e in ranges), 1), buckets)


def _fold_calls(pfn: I64, drain: F64, sample: F64, src: I8, page: I64, ready: I8,
                ibs_src: int, pages: int, lag_counts: I64, lag_total: float, heat_row: I64,
                starts: I64, ends: I64, total: int, buckets: int, ready_pages: I64,
                ready_when: F64) -> tuple[int, float, float, int]:
    """Calls in order: an IBS call's (src == ibs_src) lag to lag_counts and to the running sum
    lag_total, every call's lower-tier bucket to heat_row, a READY call on a workload page
    (0 <= page < pages) to ready_pages / ready_when, in order. Returns (IBS calls, the
    running lag sum after them, their largest lag, READY calls). The sum carries over from
    call to call, so it is the same however the calls are cut into folds."""
    ibs = 0
    lag_max = -math.inf
    kept = 0
    for i in range(pfn.size):
        if src[i] == ibs_src:
            lag = drain[i] - sample[i]
            lag_counts[lag_bin(lag)] += 1
            lag_total += lag
            lag_max = max(lag_max, lag)
            ibs += 1
        bucket = heat_bucket(pfn[i], starts, ends, total, buckets)
        if bucket >= 0:
            heat_row[bucket] += 1
        p = page[i]
        ready_pages[kept] = p
        ready_when[kept] = drain[i]
        kept += 1 if ready[i] != 0 and 0 <= p < pages else 0
    return ibs, lag_total, lag_max, kept


fold_calls = compiled_on_first_call(_fold_calls)
