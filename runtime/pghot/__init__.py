"""Reference model of Linux pghot v7 hot-page tracking and kmigrated promotion.

Event by event and deliberately simple (speed is not a goal): tunables.py (sysctl/debugfs knobs),
records.py (per-PFN record words via the generated accessors), core.py (pghot_record_access and
the promotion rate limiter), kmigrated.py (the per lower-tier node promotion thread),
watermarks.py and demotion.py (a small kswapd demotion model). Behaviour follows
shared/reference/pghot.md §1-5 and §10; simplifications are listed in each module docstring.
"""

from runtime.pghot.core import (
    EINVAL,
    NUMA_NO_NODE,
    PGHOT_HINTFAULTS,
    PGHOT_HWHINTS,
    Pghot,
    PromoState,
    Promotion,
)
from runtime.pghot.demotion import Demoter, Demotion
from runtime.pghot.kmigrated import Kmigrated, PassResult, start_kmigrated
from runtime.pghot.records import Record, RecordMap
from runtime.pghot.tunables import Tunables
from runtime.pghot.watermarks import NO_WATERMARKS, Watermarks

__all__ = [
    "EINVAL", "NO_WATERMARKS", "NUMA_NO_NODE", "PGHOT_HINTFAULTS", "PGHOT_HWHINTS", "Demoter",
    "Demotion", "Kmigrated", "PassResult", "Pghot", "PromoState", "Promotion", "Record",
    "RecordMap", "Tunables", "Watermarks", "start_kmigrated",
]
