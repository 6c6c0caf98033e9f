"""pghot_record_access on a whole batch of calls at once, for the fast engine.

Same checks in the same order as Pghot.record_access, same counters and outcome buckets, same
record words: calls to distinct PFNs are independent, so a batch is applied in rounds (round r
updates every PFN's r-th call, all PFNs at once, through the vectorised record accessors);
once a round covers only a few pages, the remaining calls go one by one through the scalar
update (a handful of very hot pages would otherwise cost a round per call).
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
from runtime.sections import SECTION_SHIFT

I64 = npt.NDArray[np.int64]


class NodeIndex:
    """Vectorised PFN -> node lookups over a topology.

    Memory comes in sections, so a table says which node holds each whole section (-1: none,
    MIXED: a node boundary falls inside it); one gather answers for most PFNs and only PFNs in
    a mixed section need a search over the node ranges.
    """

    MIXED = -2

    def __init__(self, pghot: Pghot) -> None:
        nodes = sorted(pghot.topology.nodes, key=lambda n: n.pfn_start)
        self.starts = np.array([n.pfn_start for n in nodes], dtype=np.int64)
        self.ends = np.array([n.pfn_end for n in nodes], dtype=np.int64)
        self.nids = np.array([n.nid for n in nodes], dtype=np.int64)
        self.toptier = np.array([n.toptier for n in nodes], dtype=bool)
        self.top_nid = np.zeros(max(self.nids.max(initial=0) + 1, 1), dtype=bool)
        self.top_nid[self.nids[self.toptier]] = True
        end = int(self.ends.max(initial=0))
        # one extra -1 entry: PFNs past the last section clip onto it
        self.section_nid = np.full((end >> SECTION_SHIFT) + 2, -1, dtype=np.int64)
        for node in nodes:
            first = node.pfn_start >> SECTION_SHIFT
            last = (node.pfn_end - 1) >> SECTION_SHIFT
            whole = self.section_nid[first:last + 1]
            whole[whole != -1] = self.MIXED  # another node already has part of it
            whole[whole == -1] = node.nid
            for edge in (first, last):  # a node edge inside a section makes it mixed
                lo, hi = edge << SECTION_SHIFT, (edge + 1) << SECTION_SHIFT
                if node.pfn_start > lo or node.pfn_end < hi:
                    self.section_nid[edge] = self.MIXED

    def node_of(self, pfns: I64) -> tuple[I64, npt.NDArray[np.bool_]]:
        """(nid, online) per PFN; nid is -1 where no node holds the PFN."""
        nid = self.section_nid.take(pfns >> SECTION_SHIFT, mode="clip")
        mixed = np.flatnonzero(nid == self.MIXED)
        if mixed.size:
            nid[mixed] = self._search(pfns[mixed])
        if pfns.size and pfns.min() < 0:  # no node holds a negative PFN (clip said node 0's)
            nid[pfns < 0] = -1
        return nid, nid >= 0

    def _search(self, pfns: I64) -> I64:
        slot = np.searchsorted(self.starts, pfns, side="right") - 1
        safe = np.maximum(slot, 0)
        online = (slot >= 0) & (pfns < self.ends[safe])
        found: I64 = np.where(online, self.nids[safe], -1)
        return found

    def is_toptier(self, nids: I64) -> npt.NDArray[np.bool_]:
        """Whether each nid (-1: none) is a top-tier node."""
        inside = (nids >= 0) & (nids < self.top_nid.size)
        top: npt.NDArray[np.bool_] = inside & self.top_nid[np.where(inside, nids, 0)]
        return top


CHUNK_CALLS = 65536
"""Calls applied per pass: a chunk's columns stay in the CPU's cache through the dozens of
numpy passes a chunk takes (measured on the 64-CPU microbench: ~1.1x end to end against
one pass over a whole 100 ms block; 8192 is slower again, per-round overheads)."""


def record_batch(pghot: Pghot, index: NodeIndex, pfns: I64, nids: I64, times: I64,
                 pages: I64) -> npt.NDArray[np.bool_]:
    """Apply pghot_record_access(pfn, nid, HWHINTS, time) for each call in order.

    `pages[i]` is the page (an LRU folio) at call i's PFN, or -1. Returns, per call, whether
    it left the record migrate-ready. Consecutive chunks of calls in order are the same calls
    in order, so long batches go CHUNK_CALLS at a time.
    """
    if pfns.size <= CHUNK_CALLS:
        return _record_chunk(pghot, index, pfns, nids, times, pages)
    return np.concatenate([
        _record_chunk(pghot, index, *(col[i:i + CHUNK_CALLS] for col in (pfns, nids, times,
                                                                          pages)))
        for i in range(0, pfns.size, CHUNK_CALLS)])


def _record_chunk(pghot: Pghot, index: NodeIndex, pfns: I64, nids: I64, times: I64,
                  pages: I64) -> npt.NDArray[np.bool_]:
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
        valid = (nids == NUMA_NO_NODE) | (index.is_toptier(nids) & (nids <= PGHOT_NID_MAX))
        outcomes["invalid_nid"] += int((~valid).sum())
        alive &= valid
    if not tun.source_enabled(PGHOT_HWHINTS):
        outcomes["source_disabled"] += int(alive.sum())
        return ready_out
    pghot.vmstat.count("pghot_recorded_hwhints", int(alive.sum()))
    src_nid, online = index.node_of(pfns)
    flat = pghot.records.flat_index(pfns)
    checks = (
        ("same_node", online & (src_nid == nids)),  # an offline PFN has no node, not -1
        ("pfn_offline", ~online),
        ("toptier_page", index.is_toptier(src_nid)),
        ("not_lru", pages < 0),
        ("no_hot_map", flat < 0),
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
    _update_in_rounds(pghot, recorded, pfns, flat, pages, nids, times, ready_out)
    _flag_ready(pghot, recorded, pfns, src_nid, times, ready_out)
    return ready_out


FEW_PAGES = 32
"""A round with fewer pages than this hands the remaining calls to the scalar update."""


def _update_in_rounds(pghot: Pghot, recorded: I64, pfns: I64, flat: I64, pages: I64,
                      nids: I64, times: I64, ready_out: npt.NDArray[np.bool_]) -> None:
    """Round r applies every PFN's r-th call, all PFNs at once: calls to one PFN stay in
    order. A round is the first remaining call of each page (one page per PFN in a batch),
    found with minimum.at over the call order; no sort. Once a round covers only a few pages
    (a handful of very hot pages left), the rest go call by call through the scalar update,
    so one page with most of the calls does not cost a round per call."""
    tun = pghot.tunables
    words_all = pghot.records.flat
    resolved = np.where(nids == NUMA_NO_NODE, tun.target_nid, nids)
    first_call = np.empty(int(pages[recorded].max()) + 1, dtype=np.int64)
    remaining = recorded
    pages_last_round = FEW_PAGES  # the first round always goes vectorised
    while remaining.size:
        if pages_last_round < FEW_PAGES:
            for call in remaining.tolist():  # in call order, one record update each
                ready_out[call] = pghot.records.update(
                    int(pfns[call]), int(nids[call]), int(times[call]), window_ms=tun.window_ms,
                    threshold=tun.freq_threshold, sticky=tun.sticky_ready,
                    target_nid=tun.target_nid)
            return
        key = pages[remaining]
        rank = np.arange(remaining.size)
        first_call[key] = remaining.size
        np.minimum.at(first_call, key, rank)
        first = first_call[key] == rank
        calls = remaining[first]
        pages_last_round = calls.size
        idx = flat[calls]
        words = words_all[idx].astype(np.uint64)
        if tun.mode == "precise":
            new = update_precise_array(words, resolved[calls], times[calls],
                                       window_ms=tun.window_ms, threshold=tun.freq_threshold)
            ready = _ready_precise(new)
        else:
            new = update_default_array(words, times[calls], window_ms=tun.window_ms,
                                       threshold=tun.freq_threshold, sticky=tun.sticky_ready)
            ready = _ready_default(new)
        words_all[idx] = new.astype(words_all.dtype)
        ready_out[calls] = ready
        remaining = remaining[~first]


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
    # Section and node numbers are small: bincount finds the distinct ones without a sort.
    sections = pfns[ready_calls] // PAGES_PER_SECTION
    for section in np.flatnonzero(np.bincount(sections)).tolist():
        pghot.section_hot[section] = True
    ready_nodes = src_nid[ready_calls]
    for node in np.flatnonzero(np.bincount(ready_nodes)).tolist():
        if not pghot.activate[node]:
            first = ready_calls[ready_nodes == node][0]
            pghot.activate[node] = True
            pghot.activate_since_ms[node] = int(times[first])
