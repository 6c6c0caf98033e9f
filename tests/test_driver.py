"""The driver model against the seed: init, NMI path order and counters, v7 defects vs fixed."""

from __future__ import annotations

from generated.cpuid import IbsCaps
from generated.data_src import DataSrc
from generated.ibs_mprof import (
    PAGE_SHIFT,
    IbsMprofCtl,
    IbsMprofCtl2,
    IbsMprofData2,
    IbsMprofData3,
    IbsMprofPhyaddr,
)
from runtime.apic import MODE_FIXED
from runtime.cpuid import SimulatedCpuid, zen6_caps
from runtime.driver import NMI_DONE, NMI_HANDLED, Driver
from runtime.machine import make_cpus
from runtime.topology import default_replay_topology
from runtime.vmstat import Vmstat

LOWER_PFN = 0x100123


def build(variant: str = "v7", caps: IbsCaps | None = None, offset: int | None = 2,
          ring_slots: int | None = None) -> tuple[Driver, list[tuple[int, int, int, int]]]:
    topo = default_replay_topology()
    records: list[tuple[int, int, int, int]] = []
    cpus = make_cpus(topo, offset, ring_slots)
    driver = Driver(topo, cpus, SimulatedCpuid(caps or zen6_caps()), Vmstat(),
                    lambda *a: records.append(a), variant)
    return driver, records


def latch_sample(driver: Driver, cpu: int, pfn: int, src: DataSrc = DataSrc.EXT_MEM,
                 valid: bool = True, lin: bool = True, phy: bool = True) -> None:
    msr = driver.cpus[cpu].msr
    msr.latch(IbsMprofCtl.ADDRESS, IbsMprofCtl.decode(driver.ctl_value()).replace(val=valid)
              .encode())
    msr.latch(IbsMprofData2.ADDRESS, IbsMprofData2(data_src=src).encode())
    msr.latch(IbsMprofData3.ADDRESS, IbsMprofData3(ld_op=True, lin_addr_valid=lin,
                                                   phy_addr_valid=phy).encode())
    msr.latch(IbsMprofPhyaddr.ADDRESS, IbsMprofPhyaddr(phy_addr=pfn << PAGE_SHIFT | 0x18).encode())


def test_init_without_mem_profiler_programs_nothing() -> None:
    driver, _ = build(caps=zen6_caps().replace(mem_profiler=False))
    assert driver.init() is False
    assert driver.log == ["capability is unavailable for access profiling"]
    assert all(c.msr.rdmsr(IbsMprofCtl.ADDRESS) == 0 for c in driver.cpus)


def test_startup_programs_seed_values_and_refuses_invalid_lvt_offset() -> None:
    driver, _ = build()
    assert driver.init()
    assert driver.cpus[0].msr.rdmsr(IbsMprofCtl.ADDRESS) == 0xB0271
    assert IbsMprofCtl2.decode(driver.cpus[0].msr.rdmsr(IbsMprofCtl2.ADDRESS)).exclude_kernel
    assert driver.cpus[0].apic.delivers_nmi(2)
    bad, _ = build(offset=None)
    assert bad.init()
    assert "offset not valid on cpu #0" in bad.log
    assert bad.cpus[0].msr.rdmsr(IbsMprofCtl.ADDRESS) == 0


def test_nmi_order_filters_and_counters() -> None:
    driver, records = build()
    driver.init()
    writes: list[tuple[int, int, int]] = []
    driver.on_msr_write = lambda cpu, addr, value: writes.append((cpu, addr, value))
    latch_sample(driver, 1, LOWER_PFN, valid=False)
    assert driver.nmi(1, 5) == NMI_DONE == 0 and writes == []  # linux/nmi.h: NMI_DONE 0
    latch_sample(driver, 1, LOWER_PFN, lin=False)
    assert driver.nmi(1, 6) == NMI_HANDLED == 1
    latch_sample(driver, 1, LOWER_PFN, src=DataSrc.DRAM, phy=False)
    driver.nmi(1, 7)
    latch_sample(driver, 1, 0x7FFFFFF)  # PFN no node holds: not online
    driver.nmi(1, 8)
    latch_sample(driver, 1, LOWER_PFN)
    driver.nmi(1, 9)
    assert driver.counters() == {"hwhint_total_events": 4, "hwhint_dram_accesses": 1,
                                 "hwhint_extmem_accesses": 3, "hwhint_useful_events": 1}
    assert driver.outcomes.as_dict() == {"laddr_invalid": 1, "paddr_invalid": 1,
                                         "pfn_offline": 1, "pushed": 1, "ring_full": 0}
    # Each handled NMI: disable (CTL without En/Val, CTL2=Disable) then re-arm (CTL, CTL2).
    ctl_off = IbsMprofCtl.decode(driver.ctl_value()).replace(enable=False).encode()
    assert writes[:4] == [(1, IbsMprofCtl.ADDRESS, ctl_off), (1, IbsMprofCtl2.ADDRESS, 1),
                          (1, IbsMprofCtl.ADDRESS, 0xB0271), (1, IbsMprofCtl2.ADDRESS, 4)]
    assert len(writes) == 16
    driver.run_irq_work(1)
    driver.run_work(1)
    assert records == [(LOWER_PFN, 0, 1, 9)]  # nid = the sampling CPU's node (cpu 1 -> node 0)


def fill_and_count(variant: str) -> dict[str, int]:
    driver, _ = build(variant)
    driver.init()
    for t in range(160):  # no work runs: the ring fills at 149
        latch_sample(driver, 0, LOWER_PFN + t)
        driver.nmi(0, t)
    return driver.counters()


def test_full_ring_drops_silently_in_v7_and_counted_in_fixed() -> None:
    assert fill_and_count("v7")["hwhint_useful_events"] == 149
    fixed = fill_and_count("fixed")
    assert fixed["hwhint_useful_events"] == 149 and fixed["hwhint_dropped_events"] == 11


def offline_scenario(variant: str) -> tuple[int, list[tuple[int, int, int, int]], Driver]:
    """Samples on cpu 2, cpu 2 goes offline before its work runs, comes back, samples again."""
    driver, records = build(variant)
    driver.init()
    for t in range(3):
        latch_sample(driver, 2, LOWER_PFN + t)
        driver.nmi(2, t)
    driver.run_irq_work(2)
    driver.teardown(2)
    if driver.cpus[2].work_queued:
        driver.run_work(2)  # runs on another CPU now
    driver.startup(2)
    for t in range(3, 6):
        latch_sample(driver, 2, LOWER_PFN + t)
        driver.nmi(2, t)
        if driver.cpus[2].irq_work_queued:
            driver.run_irq_work(2)
        if driver.cpus[2].work_queued:
            driver.run_work(2)
    accepted = driver.counters()["hwhint_useful_events"]
    return accepted, records, driver


def test_v7_strands_samples_across_cpu_offline_and_fixed_loses_none() -> None:
    accepted, records, driver = offline_scenario("v7")
    assert accepted == 6
    assert len(records) < accepted, "v7 should lose samples across offline"
    assert driver.cpus[2].work_pending and len(driver.cpus[2].ring) > 0  # stranded for good
    accepted, records, driver = offline_scenario("fixed")
    assert accepted == 6
    assert sorted(r[0] for r in records) == [LOWER_PFN + t for t in range(6)]


def test_v7_pending_race_leaves_a_sample_behind_fixed_rechecks() -> None:
    for variant, left_behind in (("v7", 1), ("fixed", 0)):
        driver, records = build(variant)
        driver.init()
        latch_sample(driver, 0, LOWER_PFN)
        driver.nmi(0, 1)
        driver.run_irq_work(0)
        driver.work_drain(0)
        latch_sample(driver, 0, LOWER_PFN + 1)  # NMI between the drain loop and the clear
        driver.nmi(0, 2)
        driver.work_clear(0)
        assert len(driver.cpus[0].ring) == left_behind
        assert not driver.cpus[0].work_queued and not driver.cpus[0].irq_work_queued
        assert len(records) == 2 - left_behind


def test_data_src_event_names_the_vm_event_or_exactly_minus_one() -> None:
    """The handler bumps hwhint_dram_accesses or hwhint_extmem_accesses by DATA2's DataSrc;
    every other source answers -1 (the compiled NMI pass tests `>= 0`, callers may test -1)."""
    from runtime.driver import VM_DRAM, VM_EXTMEM, data_src_event

    for src in DataSrc:
        want = {DataSrc.DRAM: VM_DRAM, DataSrc.EXT_MEM: VM_EXTMEM}.get(src, -1)
        assert data_src_event(IbsMprofData2(data_src=src).encode()) == want
    assert VM_DRAM != VM_EXTMEM and min(VM_DRAM, VM_EXTMEM) >= 0


def test_lvt_offset_zero_is_valid_and_teardown_masks_it_and_stops_profiling() -> None:
    """IBSCTL's offset 0 is a real EILVT entry (only MPROF_LVT_OFFSET_VAL says invalid);
    teardown (CPU offline) sets the entry back to fixed + masked, disables the profiler and
    clears the CPU's profiling flag; startup again re-arms it."""
    driver, _ = build(offset=0)
    assert driver.init()
    state = driver.cpus[1]
    assert state.profiling and state.apic.delivers_nmi(0)
    assert not any("offset not valid" in line for line in driver.log)
    driver.teardown(1)
    entry = state.apic.entries[0]
    assert (entry.mode, entry.masked) == (MODE_FIXED, True)
    assert not state.profiling and not state.online
    assert not IbsMprofCtl.decode(state.msr.rdmsr(IbsMprofCtl.ADDRESS)).enable
    driver.startup(1)
    assert state.profiling and state.online and state.apic.delivers_nmi(0)
