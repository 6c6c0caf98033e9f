"""pghot_record_access on a whole batch of calls at once, for the fast engine.

Same checks in the same order as Pghot.record_access, same counters and outcome buckets, same
record words: calls to distinct PFNs are independent, so a batch is applied in rounds (round r
updates every PFN's r-th call, all PFNs at once, through the vectorised record accessors).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from generated.pghot import (
    PAGES_PER_SECTION,
    PGHOT_NID_MAX,
    PghotRecordDefault,
    PghotRecordPrecise,
)
from runtime.pghot.core import Pghot
from runtime.pghot.records import NUMA_NO_NODE, update_default_array, update_precise_array
from runtime.pghot.tunables import PGHOT_HWHINTS

I64 = npt.NDArray[np.int64]


class NodeIndex:
    """Vectorised PFN -> node lookups over a topology (sorted PFN ranges)."""

    def __init__(self, pghot: Pghot) -> None:
        nodes = sorted(pghot.topology.nodes, key=lambda n: n.pfn_start)
        self.starts = np.array([n.pfn_start for n in nodes], dtype=np.int64)
        self.ends = np.array([n.pfn_end for n in nodes], dtype=np.int64)
        self.nids = np.array([n.nid for n in nodes], dtype=np.int64)
        self.toptier = np.array([n.toptier for n in nodes], dtype=bool)

    def node_of(self, pfns: I64) -> tuple[I64, npt.NDArray[np.bool_]]:
        """(nid, online) per PFN; nid is -1 where no node holds the PFN."""
        slot = np.searchsorted(self.starts, pfns, side="right") - 1
        slot_ok = slot >= 0
        safe = np.where(slot_ok, slot, 0)
        online = slot_ok & (pfns < self.ends[safe])
        return np.where(online, self.nids[safe], -1), online


def record_batch(pghot: Pghot, index: NodeIndex, pfns: I64, nids: I64, times: I64,
                 on_lru: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
    """Apply pghot_record_access(pfn, nid, HWHINTS, time) for each call in order.

    `on_lru[i]` says whether a page (an LRU folio) sits at call i's PFN. Returns, per call,
    whether it left the record migrate-ready.
    """
    n = pfns.size
    ready_out = np.zeros(n, dtype=bool)
    if n == 0:
        return ready_out
    outcomes = pghot.outcomes
    if not pghot.started:
        outcomes["not_started"] += n
        return ready_out
    tun = pghot.tunables
    alive = np.ones(n, dtype=bool)
    if tun.mode == "precise":
        known = index.nids[index.toptier]
        valid = (nids == NUMA_NO_NODE) | (np.isin(nids, known) & (nids >= 0) &
                                          (nids <= PGHOT_NID_MAX))
        outcomes["invalid_nid"] += int((~valid).sum())
        alive &= valid
    if not tun.source_enabled(PGHOT_HWHINTS):
        outcomes["source_disabled"] += int(alive.sum())
        return ready_out
    pghot.vmstat.count("pghot_recorded_hwhints", int(alive.sum()))
    src_nid, online = index.node_of(pfns)
    checks = (
        ("same_node", src_nid == nids),
        ("pfn_offline", ~online),
        ("toptier_page", np.isin(src_nid, index.nids[index.toptier])),
        ("not_lru", ~on_lru),
        ("no_hot_map", ~np.isin(pfns // PAGES_PER_SECTION,
                                np.array(pghot.records.sections(), dtype=np.int64))),
    )
    for name, rejected in checks:
        hit = alive & rejected
        outcomes[name] += int(hit.sum())
        alive &= ~rejected
    recorded = np.flatnonzero(alive)
    outcomes["recorded"] += int(recorded.size)
    if recorded.size == 0:
        return ready_out
    pghot.vmstat.count("pghot_recorded_accesses", int(recorded.size))
    _update_in_rounds(pghot, recorded, pfns, nids, times, ready_out)
    _flag_ready(pghot, recorded, pfns, src_nid, times, ready_out)
    return ready_out


def _update_in_rounds(pghot: Pghot, recorded: I64, pfns: I64, nids: I64, times: I64,
                      ready_out: npt.NDArray[np.bool_]) -> None:
    """Round r applies every PFN's r-th call: calls to one PFN stay in order."""
    tun = pghot.tunables
    rec_pfns = pfns[recorded]
    order = np.argsort(rec_pfns, kind="stable")
    sorted_pfns = rec_pfns[order]
    group_start = np.r_[0, np.flatnonzero(np.diff(sorted_pfns)) + 1]
    ranks_sorted = np.arange(sorted_pfns.size) - np.repeat(group_start, np.diff(
        np.r_[group_start, sorted_pfns.size]))
    rank = np.empty_like(ranks_sorted)
    rank[order] = ranks_sorted
    resolved = np.where(nids == NUMA_NO_NODE, tun.target_nid, nids)
    for r in range(int(rank.max()) + 1):
        calls = recorded[rank == r]
        call_pfns = pfns[calls]
        sections = call_pfns // PAGES_PER_SECTION
        for section in np.unique(sections).tolist():
            sel = calls[sections == section]
            offsets = pfns[sel] % PAGES_PER_SECTION
            view = pghot.records.words_view(section)
            words = view[offsets].astype(np.uint64)
            if tun.mode == "precise":
                new = update_precise_array(words, resolved[sel], times[sel],
                                           window_ms=tun.window_ms,
                                           threshold=tun.freq_threshold)
                ready = _ready_precise(new)
            else:
                new = update_default_array(words, times[sel], window_ms=tun.window_ms,
                                           threshold=tun.freq_threshold,
                                           sticky=tun.sticky_ready)
                ready = _ready_default(new)
            view[offsets] = new.astype(view.dtype)
            ready_out[sel] = ready


def _ready_default(words: npt.NDArray[np.uint64]) -> npt.NDArray[np.bool_]:
    ready: npt.NDArray[np.bool_] = PghotRecordDefault.get_ready(words) != 0
    return ready


def _ready_precise(words: npt.NDArray[np.uint64]) -> npt.NDArray[np.bool_]:
    ready: npt.NDArray[np.bool_] = PghotRecordPrecise.get_ready(words) != 0
    return ready


def _flag_ready(pghot: Pghot, recorded: I64, pfns: I64, src_nid: I64, times: I64,
                ready_out: npt.NDArray[np.bool_]) -> None:
    """Section HOT flags, and each node's ACTIVATE stamped by its first ready call in order."""
    ready_calls = recorded[ready_out[recorded]]
    if ready_calls.size == 0:
        return
    for section in np.unique(pfns[ready_calls] // PAGES_PER_SECTION).tolist():
        pghot.section_hot[section] = True
    ready_nodes = src_nid[ready_calls]
    for node in np.unique(ready_nodes).tolist():
        if not pghot.activate[node]:
            first = ready_calls[ready_nodes == node][0]
            pghot.activate[node] = True
            pghot.activate_since_ms[node] = int(times[first])
