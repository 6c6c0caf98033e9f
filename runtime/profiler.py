"""Model of the IBS Memory Profiler hardware of one CPU, driven only through its MSRs.

It counts dispatched ops (CntCtl=1) or cycles (CntCtl=0, at a fixed cycles-per-op) towards the
programmed period and tags the op at which the count is reached. It never steps op by op: it
jumps a whole period at a time and asks the op source only for the tagged op. With L3MissOnly a
tagged op that did not miss L3 is discarded and the count restarts; CTL2 drops ops whose RIP bit
63 matches an exclude bit; CTL2.disable stops it. A kept sample latches DATA2/DATA3/LINADDR/
PHYADDR, sets CTL.val (counting stops until software re-arms) and raises the interrupt through
the EILVT entry IBSCTL's memory-profiler field names. The hardware's count randomisation is
not modelled (the RFC does not document one for the memory profiler).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple, Protocol

import numpy as np
import numpy.typing as npt

from generated._base import jitable
from generated.data_src import DataSrc
from generated.ibs_mprof import (
    IBS_MPROF_CTL_VAL_MASK,
    PAGE_SHIFT,
    IbsMprofCtl,
    IbsMprofCtl2,
    IbsMprofData2,
    IbsMprofData3,
    IbsMprofLinaddr,
    IbsMprofPhyaddr,
    ibs_mprof_data2_pack,
    ibs_mprof_data3_pack,
    ibs_mprof_phyaddr_pack,
)
from generated.ibsctl import Ibsctl
from runtime.apic import Apic
from runtime.memory import Memory
from runtime.msr import MsrFile

PAGE_OFFSET_MASK = (1 << PAGE_SHIFT) - 1
DISCARD_REASONS = ("l3_hit", "excluded_kernel", "excluded_user")
"""Why the hardware drops a tagged op, in the order it checks."""
L3_HIT, EXCLUDED_KERNEL, EXCLUDED_USER = range(len(DISCARD_REASONS))
KEPT = -1
PROFILE_COUNTS = (*DISCARD_REASONS, "kept", "lost_interrupts")
"""What the fast engine counts per CPU of a block: discards by reason, kept samples, lost
interrupts (columns of its counts arrays)."""
KEPT_COL, LOST_COL = len(DISCARD_REASONS), len(DISCARD_REASONS) + 1
SRC_NONE, SRC_LCL_CCX = int(DataSrc.NONE), int(DataSrc.LCL_CCX)


@jitable
def discard_reason(l3_miss_only: int, exclude_kernel: int, exclude_user: int, l3_miss: int,
                   kernel: int) -> int:
    """The profiler's filters on a tagged op, in its order: L3MissOnly drops an op that did
    not miss L3, then CTL2 drops a kernel or a user RIP (bit 63) as asked. KEPT, or the
    DISCARD_REASONS index."""
    if l3_miss_only and not l3_miss:
        return L3_HIT
    if exclude_kernel and kernel:
        return EXCLUDED_KERNEL
    if exclude_user and not kernel:
        return EXCLUDED_USER
    return KEPT


@jitable
def sample_data_src(memory_op: int, l3_miss: int, node_src: int) -> int:
    """DataSrc the profiler latches: none for a non-memory op, the local CCX for a hit, else
    the serving node's memory (node_src: DRAM or extension memory)."""
    if not memory_op:
        return SRC_NONE
    if not l3_miss:
        return SRC_LCL_CCX
    return node_src


@jitable
def remote_node(memory_op: int, l3_miss: int, nid: int, cpu_nid: int) -> int:
    """DATA2's RmtNode: an L3 miss served by a node other than the CPU's. Bitwise, not
    `and`: whether a page is remote is as random as its node, so a branch on it cannot be
    predicted (with pages on both tiers, the 64-CPU microbench's NMI path took about 1 ns a
    sample less once this and its DataSrc event count had no branch; measured together)."""
    return memory_op & l3_miss & (1 if nid != cpu_nid else 0)


@jitable
def latch_data2(data_src: int, rmt_node: int) -> int:
    """IBS_MPROF_DATA2 of a sample (the hardware keeps the bits its fields have)."""
    return ibs_mprof_data2_pack(data_src=data_src, rmt_node=rmt_node)


@jitable
def latch_data3(load: int, store: int, l3_miss: int, valid: int) -> int:
    """IBS_MPROF_DATA3 of a sample: op kind, the miss (an L3 miss missed L1 and L2 too) and
    whether the addresses are valid (a memory op with a page)."""
    return ibs_mprof_data3_pack(ld_op=load, st_op=store, dc_miss=l3_miss, l2_miss=l3_miss,
                                lin_addr_valid=valid, phy_addr_valid=valid)


@jitable
def latch_phyaddr(pfn: int, offset: int, valid: int) -> int:
    """IBS_MPROF_PHYADDR: the page's PFN and the offset in it, 0 when not valid (address
    bits past the field's width are not latched)."""
    return ibs_mprof_phyaddr_pack(phy_addr=(pfn << PAGE_SHIFT) | offset if valid else 0)


@dataclass(frozen=True)
class TaggedOp:
    """What the workload says about the op that was tagged."""

    load: bool = False
    store: bool = False
    kernel: bool = False  # RIP bit 63 set
    vaddr: int = 0
    page: int | None = None  # workload page id (memory ops)
    l3_miss: bool = False


@dataclass(frozen=True)
class OpBatch:
    """The memory ops among runs of tagged ops of several CPUs (the fast engine's view), one
    entry per memory op, grouped by CPU in the order asked: `cpu`, `at` (position among that
    CPU's tags) and `when` (its tag time) say where each one is. Every other tag is a
    non-memory op; `other_kernel` is their RIP bit 63 in the same order, when asked for.
    Of the virtual address only the offset in the page is given: it is all the physical
    address keeps (the fast engine models no LINADDR read; the reference latches it)."""

    cpu: npt.NDArray[np.int64]
    at: npt.NDArray[np.int64]
    when: npt.NDArray[np.float64]
    kernel: npt.NDArray[np.bool_]
    load: npt.NDArray[np.bool_]
    store: npt.NDArray[np.bool_]
    page: npt.NDArray[np.int64]
    offset: npt.NDArray[np.int64]  # vaddr & PAGE_OFFSET_MASK
    l3_miss: npt.NDArray[np.bool_]
    other_kernel: npt.NDArray[np.bool_] | None = None

    @classmethod
    def concat(cls, parts: list[OpBatch]) -> OpBatch:
        """One batch from per-CPU ones, in order."""
        cols = {name: np.concatenate([getattr(p, name) for p in parts])
                for name in cls.__dataclass_fields__ if name != "other_kernel"}
        others = [p.other_kernel for p in parts if p.other_kernel is not None]
        other = np.concatenate(others) if len(others) == len(parts) and parts else None
        return cls(**cols, other_kernel=other)


class BatchOpSource(Protocol):
    def tagged_batches(self, cpus: list[int], first_ops: list[int], period_ops: int,
                       times_ms: list[npt.NDArray[np.float64]], non_memory: bool) -> OpBatch:
        """The ops tagged on each of cpus at its times_ms, at op positions first_op +
        period_ops * (1, 2, ...), exactly as tagged_op would give them one by one (same order
        of random draws). With non_memory, also the RIP bit of the tags that are not memory
        ops."""
        ...


class OpSource(Protocol):
    def tagged_op(self, cpu: int, op_index: int, now_ms: float) -> TaggedOp:
        """The op at position op_index of cpu's stream, dispatched at now_ms (only tagged ops
        are ever asked for)."""
        ...


def memory_data_src(memory_kind: str) -> DataSrc:
    """DataSrc of an L3 miss served by a node's memory: CXL is extension memory."""
    return DataSrc.EXT_MEM if memory_kind == "cxl" else DataSrc.DRAM


class Control(NamedTuple):
    """The profiler's view of CTL and CTL2: is it counting, and how many ops per tag."""

    ctl: IbsMprofCtl
    ctl2: IbsMprofCtl2
    armed: bool
    period_ops: int


def decode_control(msr: MsrFile, cycles_per_op: int) -> Control:
    """Counting needs Enable, no pending Val, no CTL2 Disable and a period; a cycle period
    (CntCtl=0) is converted to ops at cycles_per_op."""
    ctl = IbsMprofCtl.decode(msr.rdmsr(IbsMprofCtl.ADDRESS))
    ctl2 = IbsMprofCtl2.decode(msr.rdmsr(IbsMprofCtl2.ADDRESS))
    armed = ctl.enable and not ctl.val and not ctl2.disable and ctl.period > 0
    period = ctl.period if ctl.cnt_ctl else -(-ctl.period // cycles_per_op)
    return Control(ctl, ctl2, armed, period)


def interrupt_delivered(msr: MsrFile, apic: Apic) -> bool:
    """A latched sample interrupts only through a valid IBSCTL memory-profiler LVT offset
    whose EILVT entry the driver set to NMI."""
    ibsctl = msr.rdmsr(Ibsctl.ADDRESS)
    return Ibsctl.extract_mprof_lvt_offset_val(ibsctl) and \
        apic.delivers_nmi(Ibsctl.extract_mprof_lvt_offset(ibsctl))


class Profiler:
    def __init__(self, cpu: int, msr: MsrFile, apic: Apic, memory: Memory,
                 raise_nmi: Callable[[int], None], cycles_per_op: int = 1) -> None:
        self.cpu = cpu
        self.msr = msr
        self.apic = apic
        self.memory = memory
        self.raise_nmi = raise_nmi
        self.cycles_per_op = cycles_per_op
        self._state_key: tuple[int, int, int] | None = None
        self._state_value = Control(IbsMprofCtl(), IbsMprofCtl2(), False, 0)
        self.count_ops = 0  # ops counted since the last (re)arm or discarded tag
        self.op_index = 0  # position in this CPU's op stream
        self.discards: Counter[str] = Counter()
        """Tagged ops the hardware dropped, by reason (l3_hit, excluded_kernel/user)."""
        self.kept = 0
        self.lost_interrupts = 0
        msr.write_hooks.append(self._on_write)

    def _on_write(self, addr: int, value: int) -> None:
        if addr == IbsMprofCtl.ADDRESS:
            self.count_ops = 0  # writing the control MSR restarts the count

    def _state(self) -> Control:
        """The control registers, decoded once per distinct pair of raw values."""
        key = (self.msr.rdmsr(IbsMprofCtl.ADDRESS), self.msr.rdmsr(IbsMprofCtl2.ADDRESS),
               self.cycles_per_op)
        if self._state_key != key:
            self._state_key = key
            self._state_value = decode_control(self.msr, self.cycles_per_op)
        return self._state_value

    def ops_to_next_tag(self) -> int | None:
        control = self._state()
        if not control.armed:
            return None
        return max(control.period_ops - self.count_ops, 1)

    def run(self, ops: int, source: OpSource, end_ms: float = 0.0,
            ops_per_ms: float = 0.0) -> int:
        """Let `ops` ops dispatch, the last one at end_ms; stop early at a kept sample. Returns
        the ops consumed. A tagged op is dated end_ms - (ops not yet dispatched) / ops_per_ms,
        so an engine that runs exactly up to the next tag dates it at exactly end_ms."""
        used = 0
        while True:
            need = self.ops_to_next_tag()
            if need is None or ops - used < need:
                if need is not None:
                    self.count_ops += ops - used
                self.op_index += ops - used
                return ops
            used += need
            self.op_index += need
            self.count_ops = 0
            when = end_ms - (ops - used) / ops_per_ms if ops_per_ms and ops > used else end_ms
            op = source.tagged_op(self.cpu, self.op_index, when)
            reason = self._discard_reason(op)
            if reason is None:
                self.kept += 1
                self._latch(op)
                return used
            self.discards[reason] += 1

    @property
    def discarded(self) -> int:
        return sum(self.discards.values())

    def _discard_reason(self, op: TaggedOp) -> str | None:
        ctl, ctl2, _, _ = self._state()
        reason = discard_reason(int(ctl.l3_miss_only), int(ctl2.exclude_kernel),
                                int(ctl2.exclude_user), int(op.l3_miss), int(op.kernel))
        return None if reason == KEPT else DISCARD_REASONS[reason]

    def _latch(self, op: TaggedOp) -> None:
        memory_op = op.load or op.store
        node_src = int(DataSrc.NONE)
        rmt_node = 0
        pfn = 0
        if memory_op and op.page is not None:
            pfn = self.memory.pfn_of(op.page)
            nid = self.memory.topology.node_of_pfn(pfn)
            assert nid is not None
            node_src = int(memory_data_src(self.memory.topology.node(nid).memory))
            rmt_node = remote_node(1, int(op.l3_miss), nid,
                                   self.memory.topology.cpu_node[self.cpu])
        valid = int(memory_op and op.page is not None)
        src = sample_data_src(int(memory_op), int(op.l3_miss), node_src)
        self.msr.latch(IbsMprofData2.ADDRESS, latch_data2(src, rmt_node))
        self.msr.latch(IbsMprofData3.ADDRESS,
                       latch_data3(int(op.load), int(op.store), int(op.l3_miss), valid))
        self.msr.latch(IbsMprofLinaddr.ADDRESS, IbsMprofLinaddr(lin_addr=op.vaddr).encode())
        self.msr.latch(IbsMprofPhyaddr.ADDRESS,
                       latch_phyaddr(pfn, op.vaddr & PAGE_OFFSET_MASK, valid))
        self.msr.latch(IbsMprofCtl.ADDRESS, self.msr.rdmsr(IbsMprofCtl.ADDRESS) |
                       IBS_MPROF_CTL_VAL_MASK)
        if interrupt_delivered(self.msr, self.apic):
            self.raise_nmi(self.cpu)
        else:
            self.lost_interrupts += 1
