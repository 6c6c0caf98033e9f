"""pghot_record_access on a whole batch of calls, for the fast engine: one compiled loop.

The loop calls core.record_access_rule, the very function the reference engine calls per
access, compiled by numba (runtime/jit.py): same checks in the same order, same counters,
same record words, by construction.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from runtime.jit import compiled
from runtime.pghot.core import Pghot, PghotArrays, record_access_rule
from runtime.pghot.tunables import PGHOT_HWHINTS

I64 = npt.NDArray[np.int64]


def _record_calls(a: PghotArrays, pfns: I64, nids: I64, src: int, jiffies: I64,
                  ready: npt.NDArray[np.bool_]) -> None:
    for i in range(pfns.size):
        _, got = record_access_rule(a, pfns[i], nids[i], src, jiffies[i])
        ready[i] = got != 0


record_calls = compiled(_record_calls)


def record_batch(pghot: Pghot, pfns: I64, nids: I64, jiffies: I64,
                 src: int = PGHOT_HWHINTS) -> npt.NDArray[np.bool_]:
    """Apply pghot_record_access(pfn, nid, src, jiffies) for each call in order; return, per
    call, whether it left the record migrate-ready."""
    ready = np.zeros(pfns.size, dtype=bool)
    if pfns.size:
        record_calls(pghot.arrays(), pfns, nids, src, jiffies, ready)
    pghot.last_ready = bool(ready[-1]) if ready.size else pghot.last_ready
    return ready
