"""The per-sample path of the fast engine: tagged ops to kept samples, samples to drains.

`profile_group` runs the profiler's filters (profiler.discard_reason) over a block's tagged
ops of CPUs programmed alike, counts the discards and stamps the LRU age of every page a
tagged memory op touched. Then for every kept sample, CPU by CPU in time order,
`nmi_and_rings` runs the rules the reference engine
runs one event at a time: the profiler latches DATA2/DATA3/PHYADDR (profiler.latch_*), the
NMI handler counts and filters them (driver.data_src_event, sample_pfn, sample_filter), the
sample goes into the CPU's ring (ring.ring_push_slot) and the first push with no work
pending queues irq_work, whose work runs work_latency later and pops the whole ring
(ring.ring_pop_slot). A work due at a tag's instant runs after it (tags come first in the
canonical order). What the works pop is handed back as drains, one per work, for pghot
(`BlockDrains`: a block's parts of CPUs go through one after another, each while its
samples are still in cache).

The rings live in arrays (`RingState`) that stay from block to block.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from runtime.driver import PUSHED, RING_FULL, data_src_event, sample_filter, sample_pfn
from runtime.jiffies import jiffies_at
from runtime.jit import compiled
from runtime.memory import PageTables, page_at_pfn, stamp_pages
from runtime.nodemap import NodeTables, node_of_pfn
from runtime.numab.source import HintCalls
from runtime.profiler import (
    KEPT,
    KEPT_COL,
    L3_HIT,
    LOST_COL,
    discard_reason,
    latch_data2,
    latch_data3,
    latch_phyaddr,
    remote_node,
    sample_data_src,
)
from runtime.ring import ring_pop_slot, ring_push_slot
from runtime.vmstat import EVENT_INDEX

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
B = npt.NDArray[np.bool_]
VM_TOTAL = EVENT_INDEX["hwhint_total_events"]
VM_USEFUL = EVENT_INDEX["hwhint_useful_events"]
VM_DROPPED = EVENT_INDEX["hwhint_dropped_events"]


class RingState(NamedTuple):
    """Every CPU's ring (mprof_sample_pcpu) and work state, as arrays: the slots' PFN and
    jiffies, head and tail, the pending flag and when the queued work runs. `page` is the
    model's own note, not the driver's: the page a slot's sample was taken on, which is
    still the page at its PFN when the work that pops it runs in the same block (pages move
    only between blocks)."""

    pfn: I64  # [cpu, slot]
    jiffies: I64  # [cpu, slot]
    page: I64  # [cpu, slot]
    head: I64
    tail: I64
    pending: I64
    work_ms: F64


def new_rings(cpus: int, slots: int) -> RingState:
    return RingState(pfn=np.zeros((cpus, slots), dtype=np.int64),
                     jiffies=np.zeros((cpus, slots), dtype=np.int64),
                     page=np.zeros((cpus, slots), dtype=np.int64),
                     head=np.zeros(cpus, dtype=np.int64), tail=np.zeros(cpus, dtype=np.int64),
                     pending=np.zeros(cpus, dtype=np.int64),
                     work_ms=np.zeros(cpus, dtype=np.float64))


class Samples(NamedTuple):
    """Samples the profilers kept in a block (or a part of its CPUs), grouped by CPU in the
    order the CPUs are handed to nmi_and_rings, each CPU's in time order: what the hardware
    knows of each op."""

    cpu: I64
    times: F64
    page: I64
    offset: I64  # in the page
    load: B
    store: B
    l3_miss: B
    memory: B


class Machine(NamedTuple):
    """What the latch and the handler read of the machine: each page's PFN, the node tables,
    each node's DataSrc for an L3 miss it serves, each CPU's node."""

    page_pfn: I64
    nodes: NodeTables
    node_src: I64
    cpu_node: I64


class Drains(NamedTuple):
    """What the works popped: per work its time, CPU, first sample and count (works of one
    CPU in time order, CPUs in the order they ran), and the popped samples' jiffies, PFNs and
    pages (LOOK_UP: pushed in an earlier block, the page at the PFN may have changed since)."""

    work_ms: F64
    cpu: I64
    start: I64
    length: I64
    jiffies: I64
    pfn: I64
    page: I64


LOOK_UP = -2
"""A drained sample's page when it has to be looked up at its PFN (Drains.page)."""


class Tagged(NamedTuple):
    """The tags of a group's CPUs in a block: how many each CPU tagged, every tag's time (CPU
    by CPU), and the memory ops among them (OpBatch columns: `at` is the position among its
    CPU's tags); `other_kernel` is the RIP bit of the tags that are not memory ops, in order
    (empty under L3MissOnly, where they are discarded before their RIP matters)."""

    cpus: I64
    sizes: I64
    times: F64
    op_cpu: I64
    op_at: I64
    op_when: F64
    op_kernel: B
    op_load: B
    op_store: B
    op_page: I64
    op_offset: I64
    op_l3_miss: B
    other_kernel: B


class Control(NamedTuple):
    """What the group's profilers were programmed with, and whether their interrupt reaches
    anyone (a lost one stops a profiler at its first kept sample: Val stays set)."""

    l3_miss_only: int
    exclude_kernel: int
    exclude_user: int
    delivers: int


def _profile_group(g: Tagged, c: Control, out: Samples, counts: I64,
                   last_access: npt.NDArray[np.uint16], lru_unit: int) -> int:
    """The profilers' filters on every tag, in order; the samples kept go to `out` (returns
    how many), the counts per CPU to counts[k, PROFILE_COUNTS index]. A profiler whose
    interrupt is lost stops after its first kept sample: its later tags never happen.

    Synthetic ops under L3MissOnly with a delivered interrupt get the same filters as they
    are drawn (draws.draw_group with KeptMisses); this loop serves traces and the other
    set-ups, and is what tests/test_twins.py holds the draw-time filters equal to."""
    g_cpus, g_sizes, g_times, other_kernel = g.cpus, g.sizes, g.times, g.other_kernel
    op_cpu, op_at, op_when, op_kernel = g.op_cpu, g.op_at, g.op_when, g.op_kernel
    op_load, op_store, op_page, op_offset, op_l3_miss = (g.op_load, g.op_store, g.op_page,
                                                         g.op_offset, g.op_l3_miss)
    o_cpu, o_times, o_page, o_offset, o_load, o_store, o_l3_miss, o_memory = out
    miss_only, exclude_kernel, exclude_user, delivers = (c.l3_miss_only, c.exclude_kernel,
                                                         c.exclude_user, c.delivers)
    ops = op_cpu.size
    n = 0
    j = 0  # next memory op
    o = 0  # next other (non-memory) tag
    base = 0  # first tag of the CPU in g.times
    for k in range(g_cpus.size):
        cpu = g_cpus[k]
        tags = g_sizes[k]
        t = 0
        while t < tags:
            memory = j < ops and op_cpu[j] == cpu and op_at[j] == t
            if not memory and miss_only:
                # not a memory op: discarded as an L3 hit; skip to the next memory op
                nxt = op_at[j] if j < ops and op_cpu[j] == cpu else tags
                counts[k, L3_HIT] += nxt - t
                t = nxt
                continue
            if memory:
                when, kernel, miss = op_when[j], op_kernel[j], op_l3_miss[j]
                if lru_unit:  # (0: no kswapd reads LRU ages)
                    stamp_pages(last_access, op_page, op_when, j, j + 1, lru_unit)
            else:
                when, kernel, miss = g_times[base + t], other_kernel[o], False
            reason = discard_reason(miss_only, exclude_kernel, exclude_user,
                                    1 if miss else 0, 1 if kernel else 0)
            if reason != KEPT:
                counts[k, reason] += 1
            elif not delivers:  # the interrupt goes nowhere: the profiler stops here
                counts[k, KEPT_COL] += 1
                counts[k, LOST_COL] += 1
                rest = j + 1 if memory else j  # skip the tags this CPU never makes
                while rest < ops and op_cpu[rest] == cpu:
                    rest += 1
                o += (0 if memory else 1) + (tags - t - 1) - (rest - (j + 1 if memory else j))
                j = rest
                break
            else:
                counts[k, KEPT_COL] += 1
                o_cpu[n] = cpu
                o_times[n] = when
                o_memory[n] = memory
                o_l3_miss[n] = miss
                o_page[n] = op_page[j] if memory else 0
                o_offset[n] = op_offset[j] if memory else 0
                o_load[n] = op_load[j] if memory else False
                o_store[n] = op_store[j] if memory else False
                n += 1
            if memory:
                j += 1
            else:
                o += 1
            t += 1
        base += tags
    return n


profile_group = compiled(_profile_group)


def _stamp_lru(pages: I64, when: F64, last_access: npt.NDArray[np.uint16], unit: int) -> None:
    """The LRU age of each sampled op's page: the stamp of its latest op (what the
    reference's AccessRecorder writes op by op)."""
    stamp_pages(last_access, pages, when, 0, pages.size, unit)


stamp_lru = compiled(_stamp_lru)


def _nmi_and_rings(s: Samples, cpus: I64, m: Machine, r: RingState, d: Drains, nd: int,
                   ns: int, latency_ms: float, limit_ms: float, inclusive: int,
                   count_ring_full: int, vm: I64, outcomes: I64) -> tuple[int, int]:
    """For each CPU of `cpus`, in that order: its kept samples (s holds theirs, in the same
    CPU order) through latch, handler and ring, and every work due in the block (limit_ms,
    inclusive or not), in time order. Drains and popped samples are written to d from rows
    nd and ns on; returns where they end. (Arrays are taken out of their tuples once: see
    draws._draw_group.)"""
    s_cpu, s_times, s_page, s_offset, s_load, s_store, s_miss, s_memory = s
    page_pfn, nodes, node_src, cpu_node = m
    r_pfn, r_jiffies, r_page, r_head, r_tail, r_pending, r_work_ms = r
    d_work_ms, d_cpu, d_start, d_length, d_jiffies, d_pfn, d_page = d
    slots = r_pfn.shape[1]
    # Every memory sample's PFN first, in a loop of its own: these random loads of page_pfn
    # then overlap, where inside the handler's loop each waited for the last (the 64-CPU
    # microbench's NMI path took 148 -> ~88 ms per simulated second).
    pfns = np.empty(s_page.size, dtype=np.int64)
    for i in range(s_page.size):
        pfns[i] = page_pfn[s_page[i]] if s_memory[i] else 0  # (read for memory ops only)
    i = 0
    for cpu in cpus:
        # The CPU's ring state in locals while its samples go through, written back after:
        # the ring's arrays may alias the others (numba cannot tell), so kept in them each
        # was stored and read back per sample (a store-to-load wait each time).
        head, tail = r_head[cpu], r_tail[cpu]
        pending, work_ms = r_pending[cpu], r_work_ms[cpu]
        home = cpu_node[cpu]
        older = (head - tail) % slots  # pushed in earlier blocks
        while True:
            more = i < s_cpu.size and s_cpu[i] == cpu
            t = s_times[i] if more else limit_ms
            due = pending and (work_ms < t or (not more and inclusive and work_ms == t))
            if due:  # the pending work runs: it pops the whole ring, then clears pending
                d_work_ms[nd] = work_ms
                d_cpu[nd] = cpu
                d_start[nd] = ns
                while True:
                    nxt = ring_pop_slot(head, tail, slots)
                    if nxt < 0:
                        break
                    d_jiffies[ns] = r_jiffies[cpu, tail]
                    d_pfn[ns] = r_pfn[cpu, tail]
                    d_page[ns] = LOOK_UP if older > 0 else r_page[cpu, tail]
                    older -= 1
                    tail = nxt
                    ns += 1
                d_length[nd] = ns - d_start[nd]
                nd += 1
                pending = 0
                continue
            if not more:
                break
            memory_op = 1 if s_memory[i] else 0
            miss = 1 if s_miss[i] else 0
            pfn = pfns[i]
            nid = node_of_pfn(pfn, nodes) if memory_op else -1
            src = node_src[nid] if nid >= 0 else 0
            rmt = remote_node(memory_op, miss, nid, home)
            data2 = latch_data2(sample_data_src(memory_op, miss, src), rmt)
            data3 = latch_data3(1 if s_load[i] else 0, 1 if s_store[i] else 0, miss, memory_op)
            phyaddr = latch_phyaddr(pfn, s_offset[i], memory_op)
            vm[VM_TOTAL] += 1  # the handler: count, DataSrc, filters, ring
            event = data_src_event(data2)
            # a count of 0 or 1 to a slot that exists, not a branch: the event (DRAM or
            # extension memory) is as random as the page's node (see remote_node)
            vm[max(event, 0)] += 1 if event >= 0 else 0
            got_pfn = sample_pfn(phyaddr)
            # PHYADDR holds the whole address today, so a memory op's PFN comes back as it
            # went in and its node is known; the look-up stays for a narrower field
            got_nid = nid if got_pfn == pfn and memory_op else node_of_pfn(got_pfn, nodes)
            outcome = sample_filter(data3, 1 if got_nid >= 0 else 0)
            if outcome == PUSHED:
                nxt = ring_push_slot(head, tail, slots)
                if nxt < 0:
                    outcome = RING_FULL
                    if count_ring_full:
                        vm[VM_DROPPED] += 1
                else:
                    r_pfn[cpu, head] = got_pfn
                    r_jiffies[cpu, head] = jiffies_at(t)
                    # the page at got_pfn: the sample's own unless the PFN was cut short
                    r_page[cpu, head] = s_page[i] if got_pfn == pfn else LOOK_UP
                    head = nxt
                    if not pending:
                        pending = 1
                        work_ms = t + latency_ms
                    vm[VM_USEFUL] += 1
            outcomes[outcome] += 1
            i += 1
        r_head[cpu], r_tail[cpu] = head, tail
        r_pending[cpu], r_work_ms[cpu] = pending, work_ms
    return nd, ns


nmi_and_rings = compiled(_nmi_and_rings)


class BlockDrains:
    """A block's drains, filled by nmi_and_rings one part of its CPUs at a time (each part's
    samples still in cache from the draws), into arrays sized once for the whole block."""

    def __init__(self, r: RingState, tags: int) -> None:
        """Room for every sample of `tags` tags and all the rings hold (plus a drain per CPU
        for those)."""
        most = tags + int(((r.head - r.tail) % r.pfn.shape[1]).sum())
        works = most + r.head.size
        self.d = Drains(work_ms=np.empty(works), cpu=np.empty(works, dtype=np.int64),
                        start=np.empty(works, dtype=np.int64),
                        length=np.empty(works, dtype=np.int64),
                        jiffies=np.empty(most, dtype=np.int64), pfn=np.empty(most, dtype=np.int64),
                        page=np.empty(most, dtype=np.int64))
        self.works = self.popped = 0
        self.tags_left = tags

    def run(self, s: Samples, cpus: I64, m: Machine, r: RingState, latency_ms: float,
            limit_ms: float, inclusive: bool, count_ring_full: bool, vm: I64,
            outcomes: I64) -> None:
        """nmi_and_rings for these CPUs and their samples."""
        self.tags_left -= s.cpu.size  # (the compiled loop does not check its bounds)
        if self.tags_left < 0:
            raise AssertionError("more samples than the block's tags: the drains would overflow")
        self.works, self.popped = nmi_and_rings(
            s, cpus, m, r, self.d, self.works, self.popped, float(latency_ms), float(limit_ms),
            int(inclusive), int(count_ring_full), vm, outcomes)

    def drains(self) -> Drains:
        """What was written (drains of one CPU in time order, the CPUs in the order run)."""
        d, n, k = self.d, self.works, self.popped
        return Drains(d.work_ms[:n], d.cpu[:n], d.start[:n], d.length[:n], d.jiffies[:k],
                      d.pfn[:k], d.page[:k])


def _drained_calls(d: Drains, by_time: I64, tables: PageTables, cpu_node: I64,
                   out: HintCalls) -> None:
    """The drained samples as pghot_record_access calls, drain by drain in by_time's order
    (each drain's samples in ring order): when the work ran, the sample's jiffies, the CPU,
    the PFN, the CPU's node and the page now at the PFN (the sample's own when it was
    pushed in this block, else memory.page_at_pfn)."""
    work_ms, cpus, starts, lengths, jiffies, pfns, pages = d
    o_time, o_jiffies, o_cpu, o_pfn, o_nid, o_page = out
    n = 0
    for w in by_time:
        # the drain's own values in locals: the inputs may alias the outputs (numba cannot
        # tell), so read in the loop they were read again after every row's stores
        cpu, when, nid = cpus[w], work_ms[w], cpu_node[cpus[w]]
        for i in range(starts[w], starts[w] + lengths[w]):
            o_time[n], o_jiffies[n], o_cpu[n] = when, jiffies[i], cpu
            o_pfn[n], o_nid[n] = pfns[i], nid
            o_page[n] = pages[i] if pages[i] != LOOK_UP else page_at_pfn(pfns[i], tables)
            n += 1


drained_calls_into = compiled(_drained_calls)


def drained_calls(d: Drains, tables: PageTables, cpu_node: I64) -> HintCalls:
    """The block's pghot_record_access calls from its drains, in the canonical (time, CPU,
    ring) order: each CPU's drains are in time order, so when the CPUs ascend too a stable
    sort of the drains by work time gives it, else a sort by time, then CPU."""
    by_time = np.argsort(d.work_ms, kind="stable") if (np.diff(d.cpu) >= 0).all() else \
        np.lexsort((d.cpu, d.work_ms))
    n = d.pfn.size
    out = HintCalls(np.empty(n), np.empty(n, dtype=np.int64), np.empty(n, dtype=np.int64),
                    np.empty(n, dtype=np.int64), np.empty(n, dtype=np.int64),
                    np.empty(n, dtype=np.int64))
    drained_calls_into(d, by_time, tables, cpu_node, out)
    return out


def node_sources(nodes: NodeTables, kinds: dict[int, int]) -> I64:
    """DataSrc per nid for an L3 miss the node serves (kinds: nid -> DataSrc value)."""
    out = np.zeros(nodes.node_kind.size, dtype=np.int64)
    for nid, src in kinds.items():
        out[nid] = src
    return out


def empty_samples(count: int, memory_misses: bool = False) -> Samples:
    """Room for count samples; with memory_misses, each already an L3-missing memory op (the
    l3_miss and memory columns set), for draws.KeptMisses, which writes only the others."""
    flag = np.ones if memory_misses else np.empty
    return Samples(np.empty(count, dtype=np.int64), np.empty(count), np.empty(count, np.int64),
                   np.empty(count, np.int64), np.empty(count, bool), np.empty(count, bool),
                   flag(count, bool), flag(count, bool))


def cut(samples: Samples, count: int) -> Samples:
    """The first count samples."""
    return Samples(samples.cpu[:count], samples.times[:count], samples.page[:count],
                   samples.offset[:count], samples.load[:count], samples.store[:count],
                   samples.l3_miss[:count], samples.memory[:count])


__all__ = ["Drains", "Machine", "RingState", "Samples", "cut", "drained_calls", "empty_samples",
           "new_rings", "node_of_pfn", "node_sources", "BlockDrains"]
