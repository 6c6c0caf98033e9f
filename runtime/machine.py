"""A simulated machine: per-CPU MSR files and APICs wired to a topology and a CPUID backend.

IBSCTL is firmware state: every CPU gets the memory-profiler LVT offset marked valid, unless
told otherwise (to model broken firmware).
"""

from __future__ import annotations

from generated.ibsctl import Ibsctl
from runtime.driver import CpuState
from runtime.msr import MsrFile
from runtime.topology import Topology

DEFAULT_MPROF_LVT_OFFSET = 2


def make_cpus(topology: Topology, mprof_lvt_offset: int | None = DEFAULT_MPROF_LVT_OFFSET,
              ring_slots: int | None = None) -> list[CpuState]:
    """One CpuState per CPU; `mprof_lvt_offset=None` leaves the IBSCTL valid bit clear."""
    from runtime.ring import SampleRing

    cpus = []
    for cpu in topology.cpus:
        msr = MsrFile(cpu)
        ibsctl = Ibsctl(mprof_lvt_offset=mprof_lvt_offset or 0,
                        mprof_lvt_offset_val=mprof_lvt_offset is not None)
        msr.latch(Ibsctl.ADDRESS, ibsctl.encode())
        ring = SampleRing(ring_slots) if ring_slots else SampleRing()
        cpus.append(CpuState(msr=msr, ring=ring))
    return cpus
