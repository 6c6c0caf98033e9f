"""Event counters with the kernel's names (include/linux/vm_event_item.h, mm/vmstat.c).

Global counters are vmstat events; per-node counters are node stats (pgpromote_*). Printing
gives /proc/vmstat form, `name value` per line, so a kernel developer can diff it directly.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from runtime.counts import NamedCounts

# Every counter the model may bump, in /proc/vmstat order; unknown names are a bug.
VM_EVENTS = (
    "numa_pte_updates",
    "numa_hint_faults",
    "numa_hint_faults_local",
    "numa_pages_migrated",
    "pgdemote_kswapd",
    "pghot_recorded_accesses",
    "pghot_recorded_hintfaults",
    "pghot_recorded_hwhints",
    "hwhint_total_events",
    "hwhint_dram_accesses",
    "hwhint_extmem_accesses",
    "hwhint_useful_events",
    "hwhint_dropped_events",
)
NODE_STATS = ("pgpromote_success", "pgpromote_candidate", "pgpromote_candidate_nrl")
EVENT_INDEX = {name: i for i, name in enumerate(VM_EVENTS)}
"""Position of each vm event in Vmstat.events.array (what compiled loops add to)."""


class Vmstat:
    """Global vm events (an int64 array, so compiled loops can bump them) plus per-node
    stats; reads of never-bumped counters give 0."""

    def __init__(self) -> None:
        self.events = NamedCounts(VM_EVENTS)
        self.node: dict[int, Counter[str]] = {}

    def count(self, name: str, delta: int = 1) -> None:
        if name not in EVENT_INDEX:
            raise KeyError(f"unknown vm event {name!r}")
        self.events.array[EVENT_INDEX[name]] += delta

    def count_node(self, nid: int, name: str, delta: int = 1) -> None:
        if name not in NODE_STATS:
            raise KeyError(f"unknown node stat {name!r}")
        self.node.setdefault(nid, Counter())[name] += delta

    def get(self, name: str) -> int:
        if name in NODE_STATS:
            return sum(c[name] for c in self.node.values())
        return self.events[name]

    def get_node(self, nid: int, name: str) -> int:
        return self.node.get(nid, Counter())[name]

    def as_dict(self) -> dict[str, int]:
        """Every known counter (node stats summed over nodes), in /proc/vmstat order."""
        out = {name: self.get(name) for name in NODE_STATS}
        out.update(self.events.as_dict())
        return out

    def proc_text(self) -> str:
        return proc_text(self.as_dict())


def proc_text(counters: Mapping[str, int]) -> str:
    """`name value` lines as /proc/vmstat prints them (a report's vmstat.txt, so it diffs
    against a real machine's /proc/vmstat taken before and after a run)."""
    return "".join(f"{name} {value}\n" for name, value in counters.items())
