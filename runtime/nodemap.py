"""PFN -> node lookups over a topology, as arrays the compiled loops can read.

Memory comes in sections, so a table says which node holds each whole section (-1: none,
MIXED: a node boundary falls inside it); one lookup answers for most PFNs and only a PFN in
a mixed section needs a search over the node ranges. `node_kind` says per nid whether the
node exists and is top tier. `node_of_pfn` is the scalar rule both engines use; `NodeMap.
nodes_of` is its array form (its twin, held equal by tests/test_nodemap.py).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from generated._base import jitable
from runtime.search import bisect_right
from runtime.sections import SECTION_SHIFT
from runtime.topology import Topology

I64 = npt.NDArray[np.int64]
MIXED = -2
NO_NODE = -1
NODE_ABSENT, NODE_LOWER, NODE_TOP = -1, 0, 1
"""node_kind values: no such node, a lower-tier node, a top-tier node."""


class NodeTables(NamedTuple):
    """What node_of_pfn reads: section -> nid (or MIXED / NO_NODE, one spare entry past the
    last section), the node ranges sorted by start, and per nid its kind."""

    section_nid: I64
    starts: I64
    ends: I64
    nids: I64
    node_kind: I64


@jitable
def node_of_pfn(pfn: int, t: NodeTables) -> int:
    """The node holding pfn, or NO_NODE (-1) when no node does: the PFN is not online. Its
    array twin is NodeMap.nodes_of (tests/test_twins.py holds them equal)."""
    if pfn < 0:
        return NO_NODE
    section = min(pfn >> SECTION_SHIFT, t.section_nid.size - 1)
    nid: int = t.section_nid[section]
    if nid != MIXED:
        return nid
    after = bisect_right(t.starts, pfn, 0, t.starts.size)  # past the last node starting <= pfn
    if after == 0 or pfn >= t.ends[after - 1]:
        return NO_NODE
    found: int = t.nids[after - 1]
    return found


@jitable
def is_toptier(nid: int, t: NodeTables) -> int:
    """1 when nid is a top-tier node, 0 otherwise (a lower node, or no node at all)."""
    if nid < 0 or nid >= t.node_kind.size:
        return 0
    return 1 if t.node_kind[nid] == NODE_TOP else 0


@jitable
def node_exists(nid: int, t: NodeTables) -> int:
    if nid < 0 or nid >= t.node_kind.size:
        return 0
    return 1 if t.node_kind[nid] != NODE_ABSENT else 0


class NodeMap:
    """NodeTables built once per topology, with the array form of node_of_pfn."""

    def __init__(self, topology: Topology) -> None:
        nodes = sorted(topology.nodes, key=lambda n: n.pfn_start)
        end = max((n.pfn_end for n in nodes), default=0)
        section_nid = np.full((end >> SECTION_SHIFT) + 2, NO_NODE, dtype=np.int64)
        for node in nodes:
            if not node.pfn_count:
                continue
            first = node.pfn_start >> SECTION_SHIFT
            last = (node.pfn_end - 1) >> SECTION_SHIFT
            whole = section_nid[first:last + 1]
            whole[whole != NO_NODE] = MIXED  # another node already has part of it
            whole[whole == NO_NODE] = node.nid
            for edge in (first, last):  # a node edge inside a section makes it mixed
                lo, hi = edge << SECTION_SHIFT, (edge + 1) << SECTION_SHIFT
                if node.pfn_start > lo or node.pfn_end < hi:
                    section_nid[edge] = MIXED
        kind = np.full(max((n.nid for n in nodes), default=0) + 1, NODE_ABSENT, dtype=np.int64)
        for node in nodes:
            kind[node.nid] = NODE_TOP if node.toptier else NODE_LOWER
        with_pages = [n for n in nodes if n.pfn_count]
        self.tables = NodeTables(
            section_nid=section_nid,
            starts=np.array([n.pfn_start for n in with_pages], dtype=np.int64),
            ends=np.array([n.pfn_end for n in with_pages], dtype=np.int64),
            nids=np.array([n.nid for n in with_pages], dtype=np.int64),
            node_kind=kind)

    def nodes_of(self, pfns: I64) -> I64:
        """node_of_pfn of each PFN: the array twin of node_of_pfn."""
        t = self.tables
        nid = t.section_nid.take(np.maximum(pfns, 0) >> SECTION_SHIFT, mode="clip")
        mixed = np.flatnonzero(nid == MIXED)
        if mixed.size:
            slot = np.searchsorted(t.starts, pfns[mixed], side="right") - 1
            safe = np.maximum(slot, 0)
            inside = (slot >= 0) & (pfns[mixed] < t.ends[safe])
            nid[mixed] = np.where(inside, t.nids[safe], NO_NODE)
        if pfns.size and pfns.min() < 0:
            nid[pfns < 0] = NO_NODE
        return nid

    def toptier_of(self, nids: I64) -> npt.NDArray[np.bool_]:
        """is_toptier of each nid (the array twin)."""
        kind = self.tables.node_kind
        inside = (nids >= 0) & (nids < kind.size)
        top: npt.NDArray[np.bool_] = inside & (kind[np.where(inside, nids, 0)] == NODE_TOP)
        return top
