"""Model of arch/x86/mm/ibs-mprof.c (RFC v7 7/7), behaviour for behaviour.

Two variants:
- `v7`: exactly the seed, defects included: teardown does not drain the ring, the work drains
  the ring of whichever CPU runs it (raw_cpu_ptr) and clears *that* CPU's pending flag, and the
  pending flag is cleared after the drain loop (a sample pushed in between waits for the next
  NMI). A full ring drops the sample silently.
- `fixed`: the post-v7 repairs: teardown drains and resets the ring and pending flag, the work
  carries its CPU id, re-checks the ring after clearing pending, and ring-full drops are counted
  as hwhint_dropped_events.

The handler reads and writes only through the MSR file, with register layouts from generated/.
The work is split into steps (drain, clear) so an interleaving explorer can run an NMI between
them; `run_work` runs both.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field

from generated._base import jitable
from generated.cpuid import IbsCaps
from generated.data_src import DataSrc
from generated.ibs_mprof import (
    IBS_MPROF_CTL_ENABLE_MASK,
    IBS_MPROF_CTL_VAL_MASK,
    IBS_MPROF_SAMPLE_PERIOD,
    PAGE_SHIFT,
    IbsMprofCtl,
    IbsMprofCtl2,
    IbsMprofData2,
    IbsMprofData3,
    IbsMprofPhyaddr,
    ibs_mprof_data2_get_data_src,
    ibs_mprof_data3_get_lin_addr_valid,
    ibs_mprof_data3_get_phy_addr_valid,
    ibs_mprof_phyaddr_get_phy_addr,
)
from generated.ibsctl import Ibsctl
from runtime.apic import MODE_FIXED, MODE_NMI, Apic
from runtime.choices import DRIVER_BEHAVIOURS, DRIVER_VARIANTS
from runtime.counts import NamedCounts
from runtime.cpuid import CpuidBackend
from runtime.msr import MsrFault, MsrFile
from runtime.nodemap import NodeMap, node_of_pfn
from runtime.pghot.tunables import PGHOT_HWHINTS
from runtime.ring import Sample, SampleRing
from runtime.topology import Topology
from runtime.vmstat import EVENT_INDEX, Vmstat

DRIVER_OUTCOMES = ("pushed", "laddr_invalid", "paddr_invalid", "pfn_offline", "ring_full")
"""Where a sample the NMI handler took (hwhint_total_events) can end, in check order."""
PUSHED, LADDR_INVALID, PADDR_INVALID, PFN_OFFLINE, RING_FULL = range(len(DRIVER_OUTCOMES))
VM_DRAM = EVENT_INDEX["hwhint_dram_accesses"]
VM_EXTMEM = EVENT_INDEX["hwhint_extmem_accesses"]
SRC_DRAM, SRC_EXT_MEM = int(DataSrc.DRAM), int(DataSrc.EXT_MEM)


@jitable
def data_src_event(data2: int) -> int:
    """The vm event the handler bumps for DATA2's DataSrc (DRAM or extension memory), or -1."""
    src = ibs_mprof_data2_get_data_src(data2)
    if src == SRC_DRAM:
        return VM_DRAM
    if src == SRC_EXT_MEM:
        return VM_EXTMEM
    return -1


@jitable
def sample_pfn(phyaddr: int) -> int:
    """The PFN of IBS_MPROF_PHYADDR's physical address."""
    return ibs_mprof_phyaddr_get_phy_addr(phyaddr) >> PAGE_SHIFT


@jitable
def sample_filter(data3: int, pfn_online: int) -> int:
    """The handler's filters after the DataSrc count, in the seed's order: linear address
    valid, physical address valid, an online PFN (sample_pfn of PHYADDR, looked up by the
    caller). PUSHED means the sample goes on to the ring (which may still be full); any
    other outcome drops it."""
    if not ibs_mprof_data3_get_lin_addr_valid(data3):
        return LADDR_INVALID
    if not ibs_mprof_data3_get_phy_addr_valid(data3):
        return PADDR_INVALID
    if not pfn_online:
        return PFN_OFFLINE
    return PUSHED


NMI_DONE = 0
NMI_HANDLED = 1
RecordAccess = Callable[[int, int, int, int], object]  # (pfn, nid, src, time) -> int


@dataclass
class CpuState:
    """Per-CPU kernel state the driver owns or uses."""

    msr: MsrFile
    apic: Apic = field(default_factory=Apic)
    ring: SampleRing = field(default_factory=SampleRing)
    online: bool = True
    work_pending: bool = False  # mprof_work_pending
    irq_work_queued: bool = False
    work_queued: bool = False
    profiling: bool = False  # startup enabled the profiler on this CPU


@dataclass(frozen=True)
class DriverConfig:
    """What mprof_enable_profiling programs (fixed in v7; debugfs knobs post-v7)."""

    period: int = IBS_MPROF_SAMPLE_PERIOD
    l3_miss_only: bool = True
    cnt_ctl: bool = True
    exclude_kernel: bool = True
    exclude_user: bool = False


CTL2_DISABLE = IbsMprofCtl2(disable=True).encode()


class Driver:
    def __init__(self, topology: Topology, cpus: list[CpuState], cpuid: CpuidBackend,
                 vmstat: Vmstat, record_access: RecordAccess, variant: str = "v7",
                 config: DriverConfig | None = None,
                 on_msr_write: Callable[[int, int, int], None] | None = None) -> None:
        if variant not in DRIVER_VARIANTS:
            raise ValueError(f"driver variant must be one of {DRIVER_VARIANTS}, got {variant!r}")
        self.topology = topology
        self.cpus = cpus
        self.cpuid = cpuid
        self.vmstat = vmstat
        self.record_access = record_access
        self.behaviour = DRIVER_BEHAVIOURS[variant]
        self.config = config or DriverConfig()
        self.on_msr_write = on_msr_write
        self.log: list[str] = []
        self.program = (self.ctl_value(), self.ctl2_value())
        """(CTL, CTL2) that mprof_enable_profiling writes; fixed, as in the v7 driver."""
        self.outcomes = NamedCounts(DRIVER_OUTCOMES)
        """Model accounting: how each handled sample ended (DRIVER_OUTCOMES)."""
        self.nodes = NodeMap(topology).tables

    # --- MSR access as the kernel does it -------------------------------------------------
    def _wrmsr(self, cpu: int, addr: int, value: int) -> None:
        """wrmsrq(): a #GP is fixed up by the kernel with a warning and the write is lost."""
        if self.on_msr_write is not None:
            self.on_msr_write(cpu, addr, value)
        try:
            self.cpus[cpu].msr.wrmsr(addr, value)
        except MsrFault as exc:
            self._warn(f"unchecked MSR access error: {exc}")

    def _rdmsr(self, cpu: int, addr: int) -> int:
        return self.cpus[cpu].msr.rdmsr(addr)

    def _warn(self, text: str) -> None:
        self.log.append(text)
        print(f"amd_ibs_memprof: {text}", file=sys.stderr)

    # --- programming ------------------------------------------------------------------------
    def ctl_value(self) -> int:
        """The CTL value mprof_enable_profiling writes (0xB0271 for the v7 defaults)."""
        cfg = self.config
        return IbsMprofCtl(period=cfg.period, l3_miss_only=cfg.l3_miss_only, enable=True,
                           cnt_ctl=cfg.cnt_ctl).encode()

    def ctl2_value(self) -> int:
        cfg = self.config
        return IbsMprofCtl2(exclude_kernel=cfg.exclude_kernel,
                            exclude_user=cfg.exclude_user).encode()

    def enable_profiling(self, cpu: int) -> None:
        ctl, ctl2 = self.program
        self._wrmsr(cpu, IbsMprofCtl.ADDRESS, ctl)
        self._wrmsr(cpu, IbsMprofCtl2.ADDRESS, ctl2)

    def disable_profiling(self, cpu: int, mem_ctl: int) -> None:
        # As the kernel: clear Enable and Val, write the rest back (reserved bits included).
        cleared = mem_ctl & ~(IBS_MPROF_CTL_ENABLE_MASK | IBS_MPROF_CTL_VAL_MASK)
        self._wrmsr(cpu, IbsMprofCtl.ADDRESS, cleared)
        self._wrmsr(cpu, IbsMprofCtl2.ADDRESS, CTL2_DISABLE)

    # --- init and CPU hotplug -----------------------------------------------------------------
    def init(self) -> bool:
        """mprof_access_profiling_init(): capability check, then startup on every online CPU."""
        caps = IbsCaps.decode(self.cpuid.cpuid(IbsCaps.LEAF, IbsCaps.SUBLEAF)[IbsCaps.OUTPUT])
        if not caps.mem_profiler:
            self.log.append("capability is unavailable for access profiling")
            return False
        for cpu, state in enumerate(self.cpus):
            if state.online:
                self.startup(cpu)
        self.log.append("IBS Memory Profiler setup for memory access profiling")
        return True

    def mprof_lvt_offset(self, cpu: int) -> int:
        """get_mprof_lvt_offset(): -1 (EINVAL) when IBSCTL says the offset is not valid."""
        ibsctl = Ibsctl.decode(self._rdmsr(cpu, Ibsctl.ADDRESS))
        return ibsctl.mprof_lvt_offset if ibsctl.mprof_lvt_offset_val else -1

    def startup(self, cpu: int) -> None:
        state = self.cpus[cpu]
        state.online = True
        offset = self.mprof_lvt_offset(cpu)
        if offset < 0:
            self._warn(f"offset not valid on cpu #{cpu}")
            return
        if not state.apic.setup_eilvt(offset, MODE_NMI, masked=False):
            self._warn(f"APIC setup failed on cpu #{cpu}")
            return
        self.enable_profiling(cpu)
        state.profiling = True

    def teardown(self, cpu: int) -> None:
        state = self.cpus[cpu]
        offset = self.mprof_lvt_offset(cpu)
        if offset >= 0:
            state.apic.setup_eilvt(offset, MODE_FIXED, masked=True)
        self.disable_profiling(cpu, self._rdmsr(cpu, IbsMprofCtl.ADDRESS))
        state.profiling = False
        if self.behaviour.teardown_drains:
            # Post-v7: drain what this CPU collected, then reset ring and pending flag.
            self._drain(cpu)
            state.ring.reset()
            state.work_pending = False
            state.irq_work_queued = False
            state.work_queued = False
        state.online = False

    # --- the NMI handler ------------------------------------------------------------------------
    def nmi(self, cpu: int, jiffies: int) -> int:
        """mprof_overflow_handler(): same MSR reads and writes, same order, same counters."""
        state = self.cpus[cpu]
        mem_ctl = self._rdmsr(cpu, IbsMprofCtl.ADDRESS)
        if not IbsMprofCtl.extract_val(mem_ctl):
            return NMI_DONE
        self.disable_profiling(cpu, mem_ctl)
        self.vmstat.count("hwhint_total_events")
        data3 = self._rdmsr(cpu, IbsMprofData3.ADDRESS)
        event = data_src_event(self._rdmsr(cpu, IbsMprofData2.ADDRESS))
        if event >= 0:
            self.vmstat.events.array[event] += 1
        self.outcomes[self._accept(cpu, state, data3, jiffies)] += 1
        self.enable_profiling(cpu)
        return NMI_HANDLED

    def _accept(self, cpu: int, state: CpuState, data3: int, jiffies: int) -> str:
        """Filters after the data-source count, in the seed's order; returns the outcome.
        PHYADDR is read only once DATA3 says it is valid, as the handler reads it."""
        if ibs_mprof_data3_get_lin_addr_valid(data3) and \
                ibs_mprof_data3_get_phy_addr_valid(data3):
            phyaddr = self._rdmsr(cpu, IbsMprofPhyaddr.ADDRESS)
        else:
            phyaddr = 0
        pfn = sample_pfn(phyaddr)
        outcome = sample_filter(data3, int(node_of_pfn(pfn, self.nodes) >= 0))
        if outcome != PUSHED:
            return DRIVER_OUTCOMES[outcome]
        if not state.ring.push(Sample(pfn=pfn, time=jiffies, nid=self.topology.cpu_node[cpu])):
            if self.behaviour.count_ring_full:
                self.vmstat.count("hwhint_dropped_events")
            return "ring_full"
        if not state.work_pending:
            state.work_pending = True
            state.irq_work_queued = True
        self.vmstat.count("hwhint_useful_events")
        return "pushed"

    # --- deferred work --------------------------------------------------------------------------
    def run_irq_work(self, cpu: int) -> None:
        """mprof_irq_handler(): schedule_work_on(this cpu)."""
        state = self.cpus[cpu]
        state.irq_work_queued = False
        state.work_queued = True

    def work_runner(self, cpu: int) -> int:
        """The CPU a work item queued for `cpu` runs on: itself, or (offline) another CPU."""
        if self.cpus[cpu].online:
            return cpu
        return next(c for c, s in enumerate(self.cpus) if s.online)

    def _drain(self, ring_cpu: int) -> None:
        ring = self.cpus[ring_cpu].ring
        while (sample := ring.pop()) is not None:
            self.record_access(sample.pfn, sample.nid, PGHOT_HWHINTS, sample.time)

    def work_drain(self, cpu: int) -> None:
        """First half of mprof_work_handler(): pop and record (v7: the runner's own ring)."""
        self.cpus[cpu].work_queued = False
        self._drain(cpu if self.behaviour.work_owns_ring else self.work_runner(cpu))

    def work_clear(self, cpu: int) -> None:
        """Second half: clear pending (v7: the runner's flag); fixed re-checks the ring."""
        if not self.behaviour.work_owns_ring:
            self.cpus[self.work_runner(cpu)].work_pending = False
            return
        state = self.cpus[cpu]
        state.work_pending = False
        while self.behaviour.recheck_after_clear and len(state.ring):
            # smp_mb(); samples pushed during the drain are not stranded
            state.work_pending = True
            self._drain(cpu)
            state.work_pending = False

    def run_work(self, cpu: int) -> None:
        self.work_drain(cpu)
        self.work_clear(cpu)

    def counters(self) -> dict[str, int]:
        """The driver's vmstat counters (hwhint_dropped_events exists only post-v7)."""
        names = ["hwhint_total_events", "hwhint_dram_accesses", "hwhint_extmem_accesses",
                 "hwhint_useful_events"]
        if self.behaviour.count_ring_full:
            names.append("hwhint_dropped_events")
        return {name: self.vmstat.get(name) for name in names}
