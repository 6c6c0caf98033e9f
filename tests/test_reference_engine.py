"""End to end on the reference engine: a hot page on the lower tier gets promoted."""

from __future__ import annotations

import random

from runtime.driver import DriverConfig
from runtime.memory import Memory
from runtime.pghot.tunables import Tunables
from runtime.profiler import TaggedOp
from runtime.reference_engine import ReferenceEngine, SimConfig
from runtime.topology import Node, Topology

HOT = 5
PAGES = 1000


class HotPage:
    """Every op is a load that misses L3; half go to page HOT, half uniformly to PAGES pages."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def tagged_op(self, cpu: int, op_index: int, now_ms: float) -> TaggedOp:
        page = HOT if self.rng.random() < 0.5 else self.rng.randrange(PAGES)
        return TaggedOp(load=True, page=page, vaddr=page << 12, l3_miss=True)


def build(sources: int = 0x3, variant: str = "fixed") -> ReferenceEngine:
    topo = Topology((Node(0, "top", "dram", 0, 65536), Node(1, "lower", "cxl", 65536, 65536)),
                    (0, 0))
    memory = Memory(topo)
    for page in range(PAGES):
        memory.place(page, 1)
    cfg = SimConfig(topo, duration_ms=400, ops_per_ms=1e5, driver_variant=variant,
                    driver=DriverConfig(), tunables=Tunables(enabled_sources=sources))
    engine = ReferenceEngine(cfg, HotPage(1), memory)
    engine.start()
    return engine


def test_hot_lower_tier_page_is_promoted_to_the_top_tier() -> None:
    engine = build()
    engine.run()
    assert engine.memory.node_of_page(HOT) == 0
    assert engine.vmstat.get_node(0, "pgpromote_success") >= 1
    promoted_pages = {engine.memory.page_at(p.new_pfn) for p in engine.pghot.promotions}
    assert HOT in promoted_pages
    first = engine.pghot.promotions[0]
    assert first.time_ms < 250  # ready after 2 samples, kmigrated polls every 100 ms
    stats = engine.vmstat
    assert stats.get("hwhint_total_events") == stats.get("hwhint_useful_events") > 1000
    assert stats.get("pghot_recorded_hwhints") == len(engine.calls)
    log = engine.calls
    assert (log.column("drain_ms") - log.column("sample_ms") >= 0).all()
    assert HOT in set(log.column("page")[log.column("ready") != 0].tolist())


def test_without_the_hwhints_source_nothing_is_promoted() -> None:
    engine = build(sources=0x1)
    engine.run()
    assert engine.memory.node_of_page(HOT) == 1
    assert engine.vmstat.get("pghot_recorded_hwhints") == 0
    assert engine.vmstat.get("hwhint_useful_events") > 1000  # the profiler still did the work
