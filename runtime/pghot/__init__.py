"""Model of Linux pghot (post-v7) hot-page tracking and kmigrated promotion.

tunables.py (sysctl/debugfs knobs), default_mode.py and precise_mode.py (the per-PFN record
rules of mm/pghot-default.c and mm/pghot-precise.c), window.py (the frequency window they
share), records.py (the hot maps), core.py (pghot_record_access and the promotion policy),
batch.py (the compiled record loop of the fast engine), kmigrated.py (the per lower-tier node
promotion thread), watermarks.py and demotion.py (a small kswapd demotion model). Per-access
rules are scalar @jitable functions that both engines run. The kernel behaviour modelled is
described, with the sources read, in docs/kernel-model.md; simplifications are listed in each
module docstring.
"""

from runtime.pghot import default_mode, precise_mode
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
    "RecordMap", "Tunables", "Watermarks", "default_mode", "precise_mode", "start_kmigrated",
]
