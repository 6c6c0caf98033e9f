"""Page placement: which PFN (hence which node) holds each workload page, and free pages.

Workload pages are stable ids (think: virtual pages of the process); migration moves a page to a
free PFN on another node, exactly as a folio migration gives the data a new PFN. A PFN that
holds no page is not on an LRU list, so pghot and kmigrated skip it.
"""

from __future__ import annotations

from runtime.topology import Topology


class OutOfMemory(Exception):
    """No free page on the node asked for."""


class Memory:
    def __init__(self, topology: Topology) -> None:
        self.topology = topology
        self._next: dict[int, int] = {n.nid: n.pfn_start for n in topology.nodes}
        self._freed: dict[int, list[int]] = {n.nid: [] for n in topology.nodes}
        self._used: dict[int, int] = {n.nid: 0 for n in topology.nodes}
        self.pfn_of: dict[int, int] = {}   # page -> pfn
        self.page_of: dict[int, int] = {}  # pfn -> page
        self.last_access_ms: dict[int, int] = {}  # page -> time of last access (for demotion)

    def present_pages(self, nid: int) -> int:
        return self.topology.node(nid).pfn_count

    def free_pages(self, nid: int) -> int:
        return self.present_pages(nid) - self._used[nid]

    def _alloc(self, nid: int) -> int:
        if self._freed[nid]:
            pfn = self._freed[nid].pop()
        elif self._next[nid] < self.topology.node(nid).pfn_end:
            pfn = self._next[nid]
            self._next[nid] += 1
        else:
            raise OutOfMemory(f"node {nid} has no free page")
        self._used[nid] += 1
        return pfn

    def place(self, page: int, nid: int) -> int:
        """Allocate page on node nid (first touch); return its PFN."""
        if page in self.pfn_of:
            raise ValueError(f"page {page} is already placed")
        pfn = self._alloc(nid)
        self.pfn_of[page] = pfn
        self.page_of[pfn] = page
        return pfn

    def node_of_page(self, page: int) -> int:
        nid = self.topology.node_of_pfn(self.pfn_of[page])
        assert nid is not None
        return nid

    def migrate(self, pfn: int, target: int) -> int:
        """Move the page at pfn to a free PFN on target; return the new PFN."""
        moved, _ = self.migrate_many([pfn], target)
        if not moved:
            raise OutOfMemory(f"node {target} has no free page")
        return moved[0]

    def migrate_many(self, pfns: list[int], target: int) -> tuple[list[int], list[int]]:
        """migrate() each PFN in order while target has a free page; the new PFNs of those
        that moved (a prefix of pfns: a failure means target is full, so all later ones fail)
        and their pages. The PFNs come out exactly as one-by-one _alloc calls would hand
        them out."""
        node = self.topology.node(target)
        if pfns and max(pfns) >= node.pfn_start and min(pfns) < node.pfn_end and \
                any(node.pfn_start <= pfn < node.pfn_end for pfn in pfns):
            raise ValueError(f"a page is already on node {target}")  # nobody migrates in place
        count = min(len(pfns), self.free_pages(target))
        freed = self._freed[target]
        reuse = min(count, len(freed))
        new = freed[len(freed) - reuse:][::-1]  # pop() order
        del freed[len(freed) - reuse:]
        fresh = self._next[target]
        new += range(fresh, fresh + count - reuse)
        self._next[target] = fresh + count - reuse
        self._used[target] += count
        olds = pfns[:count]
        pages = list(map(self.page_of.pop, olds))
        self.page_of.update(zip(new, pages, strict=True))
        self.pfn_of.update(zip(pages, new, strict=True))
        if olds:
            source = self.topology.node_of_pfn(min(olds))
            if source is not None and self.topology.node_of_pfn(max(olds)) == source:
                self._freed[source] += olds  # one source node (a section walk): in bulk
                self._used[source] -= len(olds)
            else:
                for old in olds:
                    nid = self.topology.node_of_pfn(old)
                    assert nid is not None
                    self._freed[nid].append(old)
                    self._used[nid] -= 1
        return new, pages

    def pages_on(self, nid: int) -> list[int]:
        node = self.topology.node(nid)
        return [page for pfn, page in self.page_of.items() if node.pfn_start <= pfn < node.pfn_end]


def place_pages(memory: Memory, pages: int, policy: str) -> None:
    """First-touch placement of pages 0..pages-1: `cxl` fills the lower tier node by node,
    `dram` fills the top tier first and spills to the lower tier, `interleave` round-robins
    over every node with room."""
    topo = memory.topology
    lower = [n.nid for n in topo.lower_nodes()]
    top = [n.nid for n in topo.nodes if n.toptier]
    order = {"cxl": lower, "dram": top + lower, "interleave": top + lower}[policy]
    if policy == "interleave":
        cycle = 0
        for page in range(pages):
            for attempt in range(len(order)):
                nid = order[(cycle + attempt) % len(order)]
                if memory.free_pages(nid) > 0:
                    memory.place(page, nid)
                    cycle = (cycle + attempt + 1) % len(order)
                    break
            else:
                raise OutOfMemory(f"no room for page {page}")
        return
    nodes = iter(order)
    nid = next(nodes)
    for page in range(pages):
        while memory.free_pages(nid) == 0:
            nid = next(nodes, -1)
            if nid < 0:
                raise OutOfMemory(f"no room for page {page} with placement {policy}")
        memory.place(page, nid)
