"""Small machines for the pghot tests: node 0 top tier, node 1 lower tier (section aligned)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from generated.pghot import PAGES_PER_SECTION as PPS
from runtime.memory import Memory
from runtime.pghot import NO_WATERMARKS, Pghot, Tunables, Watermarks
from runtime.topology import Node, Topology
from runtime.vmstat import Vmstat

LOWER_START = 16 * PPS
"""First PFN of lower-tier node 1 (section 16); node 1 spans sections 16 and 17."""


@dataclass
class Machine:
    topology: Topology
    memory: Memory
    vmstat: Vmstat
    pghot: Pghot
    kswapd_wakeups: list[int]

    def place_lower(self, count: int, nid: int = 1) -> list[int]:
        """Place `count` fresh pages on a lower node; return their PFNs (ascending)."""
        base = self.memory.placed_pages + 1_000_000
        return [self.memory.place(base + i, nid) for i in range(count)]

    def fill(self, nid: int, count: int) -> None:
        base = self.memory.placed_pages + 2_000_000
        for i in range(count):
            self.memory.place(base + i, nid)


def machine(top_pages: int = 2 * PPS, watermarks: Watermarks = NO_WATERMARKS,
            extra_nodes: tuple[Node, ...] = (), start: bool = True, **tunables: Any) -> Machine:
    """Node 0 top tier [0, top_pages) (top_pages <= LOWER_START), node 1 lower two sections."""
    assert top_pages <= LOWER_START
    topology = Topology(
        nodes=(Node(0, "top", "dram", 0, top_pages), Node(1, "lower", "cxl", LOWER_START, 2 * PPS))
        + extra_nodes,
        cpu_node=(0, 1),
    )
    memory = Memory(topology)
    vmstat = Vmstat()
    wakeups: list[int] = []
    pghot = Pghot(topology, memory, vmstat, Tunables(**tunables), watermarks=watermarks,
                  wakeup_kswapd=wakeups.append)
    pghot.started = start
    return Machine(topology, memory, vmstat, pghot, wakeups)
