"""The kswapd demotion model: off while there is room, LRU-cold pages first, promo mark."""

from __future__ import annotations

from runtime.memory import NEVER_ACCESSED, Memory
from runtime.pghot import Demoter, Kmigrated, Pghot, Tunables, Watermarks
from runtime.pghot.core import PGHOT_HINTFAULTS
from runtime.pghot.watermarks import min_free_kbytes
from runtime.topology import Node, Topology
from runtime.vmstat import Vmstat
from tests.pghot.helpers import LOWER_START

TOP = 10000  # watermark_scale_factor 100 (1%), min 0: low 100, high 200, promo 300


def setup(top_used: int, lower_pages: int = 1000) -> tuple[Memory, Vmstat, Demoter]:
    topology = Topology((Node(0, "top", "dram", 0, TOP),
                         Node(1, "lower", "cxl", LOWER_START, lower_pages)), (0, 1))
    memory = Memory(topology)
    for page in range(top_used):
        memory.place(page, 0)
        memory.last_access[page] = 10_000 - page  # higher page id = colder
    vmstat = Vmstat()
    return memory, vmstat, Demoter(topology, memory, vmstat, Watermarks(100))


def test_watermark_ladder() -> None:
    wm = Watermarks(100)
    assert (wm.low_pages(TOP), wm.high_pages(TOP), wm.promo_pages(TOP)) == (100, 200, 300)
    assert Watermarks(0).promo_pages(TOP) == 0


def test_the_kernel_ladder_from_min_free_kbytes_and_the_scale_factor() -> None:
    """__setup_per_zone_wmarks on a 2 GiB DRAM + 4 GiB CXL machine: min_free_kbytes =
    isqrt(16 * 6 GiB in KiB) = 10033, i.e. 2508 pages, 1/3 of it on the DRAM node (836); the
    step is max(836 / 4, 0.1% of 524288) = 524."""
    dram, cxl = 2 << 18, 4 << 18
    assert min_free_kbytes(dram + cxl) == 10033
    wm = Watermarks(10, lowmem_pages=dram + cxl)
    assert wm.min_pages(dram) == 2508 * dram // (dram + cxl) == 836
    assert (wm.low_pages(dram), wm.high_pages(dram), wm.promo_pages(dram)) == (
        836 + 524, 836 + 2 * 524, 836 + 3 * 524)
    assert Watermarks(1, lowmem_pages=dram).step_pages(dram) == min_free_kbytes(dram) >> 2 >> 2
    assert min_free_kbytes(1) == 128 and min_free_kbytes(1 << 40) == 262144  # the clamp


def test_no_demotion_while_there_is_room() -> None:
    memory, vmstat, demoter = setup(TOP - 100)  # free == low: not below it
    assert demoter.balance(1000) == []
    assert vmstat.get("pgdemote_kswapd") == 0 and len(memory.pages_on(0)) == TOP - 100


def test_below_low_demotes_the_coldest_pages_up_to_the_promo_watermark() -> None:
    memory, vmstat, demoter = setup(TOP - 50)
    memory.last_access[3] = NEVER_ACCESSED  # coldest of all
    moved = demoter.balance(2000)
    assert memory.free_pages(0) == 300 and vmstat.get("pgdemote_kswapd") == 250
    assert moved[0].page == 3
    assert sorted(d.page for d in moved[1:]) == list(range(TOP - 50 - 249, TOP - 50))
    assert all(memory.node_of_page(d.page) == 1 and d.time_ms == 2000 for d in moved)


def test_wakeup_from_a_failed_promotion_balances_to_promo() -> None:
    memory, vmstat, demoter = setup(TOP - 250)  # above low, below promo
    assert demoter.balance(0) == []
    demoter.wakeup(0)
    assert len(demoter.balance(1)) == 50 and memory.free_pages(0) == 300
    assert demoter.balance(2) == []  # woken flags are consumed


def test_demotion_fills_the_lower_nodes_in_order() -> None:
    topology = Topology((Node(0, "top", "dram", 0, TOP),
                         Node(1, "lower", "cxl", LOWER_START, 30),
                         Node(2, "lower", "cxl", 2 * LOWER_START, 1000)), (0, 1))
    memory, vmstat = Memory(topology), Vmstat()
    for page in range(TOP - 50):
        memory.place(page, 0)
        memory.last_access[page] = 10_000 - page
    moved = Demoter(topology, memory, vmstat, Watermarks(100)).balance(0)
    assert [d.target_nid for d in moved] == [1] * 30 + [2] * 220
    assert [d.page for d in moved] == list(range(TOP - 51, TOP - 301, -1))  # coldest first
    assert [memory.pfn_of(d.page) for d in moved] == [d.new_pfn for d in moved]


def test_demotion_stops_when_the_lower_tier_is_full() -> None:
    memory, vmstat, demoter = setup(TOP - 50, lower_pages=20)
    assert len(demoter.balance(0)) == 20 and memory.free_pages(1) == 0


def test_promotion_into_a_full_node_wakes_kswapd_which_makes_room() -> None:
    topology = Topology((Node(0, "top", "dram", 0, TOP),
                         Node(1, "lower", "cxl", LOWER_START, 2000)), (0, 1))
    memory, vmstat = Memory(topology), Vmstat()
    demoter = Demoter(topology, memory, vmstat, Watermarks(100))
    pghot = Pghot(topology, memory, vmstat, Tunables(), watermarks=Watermarks(100),
                  wakeup_kswapd=demoter.wakeup)
    pghot.started = True
    for page in range(TOP - 201):  # free 201: prepare needs free > high (200) + 1
        memory.place(page, 0)
    hot = [memory.place(100_000 + i, 1) for i in range(2)]
    for pfn in hot:
        pghot.record_access(pfn, 0, PGHOT_HINTFAULTS, 0)
        pghot.record_access(pfn, 0, PGHOT_HINTFAULTS, 1)
    result = Kmigrated(pghot, 1).run_pass(100)
    assert (len(result.promoted), result.prepare_failed) == (0, 2)
    assert demoter.woken == {0}
    assert len(demoter.balance(100)) == 99 and memory.free_pages(0) == 300


def test_without_the_tiering_bit_kswapd_balances_at_the_high_watermark() -> None:
    """pgdat_balanced: promo in NUMA_BALANCING_MEMORY_TIERING mode, high otherwise."""
    memory, vmstat, _ = setup(TOP - 50)
    topology = memory.topology
    assert len(Demoter(topology, memory, vmstat, Watermarks(100), numa_balancing=1)
               .balance(0)) == 150
    assert memory.free_pages(0) == 200
