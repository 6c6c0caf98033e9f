"""A simple kswapd demotion model for top-tier nodes (not part of pghot; it makes room for it).

Mainline reclaim on a tiered system demotes cold top-tier pages to a lower tier instead of
swapping. Modelled here, per top-tier node, with the watermarks of watermarks.py:
- trigger: free < low watermark (the allocator wakes kswapd), or an explicit `wakeup(nid)`
  (promotion found the node too full: migrate_misplaced_folio_prepare wakes kswapd in tiering
  mode) while free is below the balance point;
- action: demote the least recently accessed pages (Memory.last_access, never-accessed pages
  first, ties by page id) until free reaches the balance point: pgdat_balanced checks the promo
  watermark when kernel.numa_balancing has the MEMORY_TIERING bit (leaving room for
  promotions), the high watermark otherwise;
- destination: the lower-tier nodes in ascending nid order, the first with a free page (the
  kernel uses the node_demotion[] preference list); stops early when none has room;
- counter: pgdemote_kswapd += pages demoted.
Nothing happens while every node has room. Demoted pages keep nothing of their promotion
history, but the pghot record of the PFN they land on is whatever that PFN last held (the kernel
does not clear records on free either).
"""

from __future__ import annotations

from itertools import repeat
from typing import NamedTuple

import numpy as np

from runtime.columnlog import ColumnLog
from runtime.memory import Memory
from runtime.pghot.watermarks import NUMA_BALANCING_MEMORY_TIERING, Watermarks
from runtime.topology import Topology
from runtime.vmstat import Vmstat


class Demotion(NamedTuple):
    time_ms: int
    page: int
    old_pfn: int
    new_pfn: int
    target_nid: int


class Demoter:
    """kswapd for the top-tier nodes, reduced to demotion. Call `balance(now_ms)` whenever
    memory may have filled up (after allocations, or on a timer); `wakeup(nid)` is what a
    failed promotion calls (pass it as Pghot(wakeup_kswapd=demoter.wakeup))."""

    def __init__(self, topology: Topology, memory: Memory, vmstat: Vmstat,
                 watermarks: Watermarks | None = None,
                 numa_balancing: int = NUMA_BALANCING_MEMORY_TIERING) -> None:
        self.topology = topology
        self.memory = memory
        self.vmstat = vmstat
        self.watermarks = watermarks if watermarks is not None else Watermarks()
        self.numa_balancing = numa_balancing
        """kernel.numa_balancing: its MEMORY_TIERING bit moves the balance point to promo."""
        self.woken: set[int] = set()
        self.log: ColumnLog[Demotion] = ColumnLog(Demotion)

    def wakeup(self, nid: int) -> None:
        self.woken.add(nid)

    def low_pages(self, nid: int) -> int:
        return self.watermarks.low_pages(self.memory.present_pages(nid))

    def balanced_pages(self, nid: int) -> int:
        """Free pages at which kswapd stops (pgdat_balanced): promo in tiering mode, else
        high."""
        present = self.memory.present_pages(nid)
        if self.numa_balancing & NUMA_BALANCING_MEMORY_TIERING:
            return self.watermarks.promo_pages(present)
        return self.watermarks.high_pages(present)

    def needs_demotion(self, nid: int) -> bool:
        free = self.memory.free_pages(nid)
        if free < self.low_pages(nid):
            return True
        return nid in self.woken and free < self.balanced_pages(nid)

    def has_work(self) -> bool:
        """Would a round demote anything? (Free pages and wake-ups only, not LRU ages.)"""
        return any(self.needs_demotion(n.nid) for n in self.topology.nodes if n.toptier)

    def balance(self, now_ms: int) -> list[Demotion]:
        """One kswapd round over the top-tier nodes (ascending nid); returns what moved."""
        done: list[Demotion] = []
        for node in self.topology.nodes:
            if node.toptier and self.needs_demotion(node.nid):
                done.extend(self._demote(node.nid, now_ms))
        self.woken.clear()
        for demotion in done:
            self.log.append(demotion)
        return done

    def _demote(self, nid: int, now_ms: int) -> list[Demotion]:
        want = self.balanced_pages(nid) - self.memory.free_pages(nid)
        pages = self.memory.pages_on(nid)  # ascending page ids: ties go to the lower id
        order = np.argsort(self.memory.last_access[pages], kind="stable")
        victims = pages[order[:max(want, 0)]].tolist()
        done: list[Demotion] = []
        # Each victim goes to the first lower node with a free page: a run to each in turn.
        for target in (n.nid for n in self.topology.lower_nodes()):
            count = min(len(victims) - len(done), self.memory.free_pages(target))
            if count <= 0:
                continue
            pages = victims[len(done):len(done) + count]
            olds = self.memory.pfns_of(np.array(pages, dtype=np.int64))
            new, _ = self.memory.migrate_many(olds, target)
            done += map(Demotion, repeat(now_ms), pages, olds.tolist(), new.tolist(),
                        repeat(target))
        if done:
            self.vmstat.count("pgdemote_kswapd", len(done))
        return done
