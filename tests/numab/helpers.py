"""A small tiered machine for the NUMA-balancing tests: node 0 DRAM (top tier, 2 CPUs),
node 1 CXL (lower tier); the workload's pages placed on CXL."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from generated.pghot import PAGES_PER_SECTION as PPS
from runtime.memory import Memory, place_pages
from runtime.nodemap import NodeMap
from runtime.topology import Topology, build_topology


@dataclass
class Box:
    topology: Topology
    memory: Memory
    nodemap: NodeMap
    pages: int

    def page_pfn(self) -> np.ndarray:
        return self.memory.page_frames()[:self.pages]


def box(pages: int, dram_pages: int = 2 * PPS, cxl_pages: int = 4 * PPS,
        placement: str = "cxl", cpus: int = 2) -> Box:
    topology = build_topology(1, 1, cpus, dram_pages, cxl_pages)
    memory = Memory(topology)
    place_pages(memory, pages, placement)
    return Box(topology, memory, NodeMap(topology), pages)
