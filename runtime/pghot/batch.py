"""pghot_record_access on a whole batch of calls, for the fast engine: one compiled loop.

It is core.record_accesses, the very function the reference engine calls for each access,
compiled by numba (runtime/jit.py): same checks in the same order, same counters, same record
words, by construction.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from runtime.jit import compiled
from runtime.pghot.core import Pghot, record_accesses
from runtime.pghot.tunables import PGHOT_HWHINTS

I64 = npt.NDArray[np.int64]


record_calls = compiled(record_accesses)


def record_batch(pghot: Pghot, pfns: I64, nids: I64, jiffies: I64,
                 src: int = PGHOT_HWHINTS) -> npt.NDArray[np.bool_]:
    """Apply pghot_record_access(pfn, nid, src, jiffies) for each call in order; return, per
    call, whether it left the record migrate-ready."""
    ready = np.zeros(pfns.size, dtype=np.uint8)
    if pfns.size:
        record_calls(pghot.arrays(), pfns, nids, src, jiffies, ready)
    return ready.view(bool)
