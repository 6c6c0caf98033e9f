"""Profiler hardware model: period jumps, L3MissOnly discard, RIP-63 filters, latch + NMI."""

from __future__ import annotations

from dataclasses import replace

from generated.data_src import DataSrc
from generated.ibs_mprof import (
    IbsMprofCtl,
    IbsMprofCtl2,
    IbsMprofData2,
    IbsMprofData3,
    IbsMprofPhyaddr,
)
from runtime.cpuid import SimulatedCpuid
from runtime.driver import Driver
from runtime.machine import make_cpus
from runtime.memory import Memory
from runtime.profiler import Profiler, TaggedOp
from runtime.topology import default_replay_topology
from runtime.vmstat import Vmstat
from runtime.workloads import BASE_VADDR, PAGE_BYTES


class Every:
    """Every `miss_every`-th op misses L3 to page 7 (kernel ops where asked); logs what is asked."""

    def __init__(self, miss_every: int, kernel: bool = False) -> None:
        self.miss_every = miss_every
        self.kernel = kernel
        self.asked: list[int] = []

    def tagged_op(self, cpu: int, op_index: int, now_ms: float) -> TaggedOp:
        self.asked.append(op_index)
        miss = op_index % self.miss_every == 0
        return TaggedOp(load=True, page=7, vaddr=0x7F0000007123, l3_miss=miss, kernel=self.kernel)


def setup() -> tuple[Driver, Profiler, list[int]]:
    topo = default_replay_topology()
    memory = Memory(topo)
    memory.place(7, 1)  # page 7 on the CXL node
    nmis: list[int] = []
    cpus = make_cpus(topo)
    driver = Driver(topo, cpus, SimulatedCpuid(), Vmstat(), lambda *a: 0)
    prof = Profiler(0, cpus[0].msr, cpus[0].apic, memory, nmis.append)
    driver.init()
    return driver, prof, nmis


def test_jumps_a_period_at_a_time_and_discards_hits_with_l3missonly() -> None:
    driver, prof, nmis = setup()
    source = Every(miss_every=30000)
    used = prof.run(10**6, source)
    assert source.asked == [10000, 20000, 30000]  # only tagged ops are drawn
    assert used == 30000 and prof.discarded == 2 and nmis == [0]
    msr = driver.cpus[0].msr
    assert IbsMprofCtl.decode(msr.rdmsr(IbsMprofCtl.ADDRESS)).val
    assert IbsMprofData2.decode(msr.rdmsr(IbsMprofData2.ADDRESS)).data_src is DataSrc.EXT_MEM
    data3 = IbsMprofData3.decode(msr.rdmsr(IbsMprofData3.ADDRESS))
    assert data3.ld_op and data3.lin_addr_valid and data3.phy_addr_valid
    paddr = IbsMprofPhyaddr.decode(msr.rdmsr(IbsMprofPhyaddr.ADDRESS)).phy_addr
    assert paddr == 0x100000 << 12 | 0x123
    assert prof.run(10**6, source) == 10**6 and len(source.asked) == 3  # stopped until re-armed
    driver.nmi(0, 1)  # handler re-arms
    assert prof.ops_to_next_tag() == 10000


def test_exclude_kernel_drops_kernel_ops_and_disable_stops_counting() -> None:
    driver, prof, nmis = setup()
    prof.run(50000, Every(miss_every=1, kernel=True))
    assert nmis == [] and prof.discarded == 5
    driver.cpus[0].msr.wrmsr(IbsMprofCtl2.ADDRESS, IbsMprofCtl2(disable=True).encode())
    assert prof.ops_to_next_tag() is None


def test_cycle_counting_converts_period() -> None:
    driver, prof, _ = setup()
    prof.cycles_per_op = 4
    ctl = IbsMprofCtl.decode(driver.ctl_value()).replace(cnt_ctl=False)
    driver.cpus[0].msr.wrmsr(IbsMprofCtl.ADDRESS, ctl.encode())
    assert prof.ops_to_next_tag() == 2500


class Listed:
    """The tagged ops in order, each a load of (page, l3_miss)."""

    def __init__(self, ops: list[tuple[int, bool]]) -> None:
        self.ops = ops

    def tagged_op(self, cpu: int, op_index: int, now_ms: float) -> TaggedOp:
        page, miss = self.ops.pop(0)
        return TaggedOp(load=True, page=page, vaddr=BASE_VADDR + page * PAGE_BYTES, l3_miss=miss,
                        kernel=False)


def test_rmt_node_marks_an_l3_miss_served_by_another_node_only() -> None:
    """DATA2's RmtNode, with L3MissOnly off so hits are sampled too: set for a miss to the CXL
    node from CPU 0 (node 0); clear for a hit on that page (a cache served it) and for a miss
    to the CPU's own node."""
    driver, prof, nmis = setup()
    prof.memory.place(8, 0)  # page 8 on CPU 0's own DRAM node
    msr = driver.cpus[0].msr
    source = Listed([(7, True), (7, False), (8, True)])
    got = []
    for _ in range(3):  # (the handler re-arms with the driver's control: cleared each time)
        ctl = IbsMprofCtl.decode(msr.rdmsr(IbsMprofCtl.ADDRESS))
        msr.wrmsr(IbsMprofCtl.ADDRESS, replace(ctl, l3_miss_only=False).encode())
        prof.run(10**6, source)
        got.append(IbsMprofData2.decode(msr.rdmsr(IbsMprofData2.ADDRESS)).rmt_node)
        driver.nmi(0, 1)  # the handler re-arms
    assert got == [True, False, False] and len(nmis) == 3
