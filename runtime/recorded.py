"""`ibs-mprof ingest`: a perf recording's IBS samples run through the kernel model.

The recording, not a synthetic op stream, says which op each CPU's profiler tagged and when.
Two streaming passes over the file (runtime/perf/ingest.py yields its samples in time order,
a chunk at a time):
1. `scan_pages`: the recording's pages are the distinct PFNs (on a node, physical address
   valid) its samples touched; per page its samples, its L3-miss samples (the ground truth:
   its rate is count / length of the run) and its first sample's process and address.
2. `RecordedEngine`: page i sits at the i-th PFN (Memory.place_at, both tiers, the rest of
   every node free) and each sample is a tag at its own time (ms since the first sample):
   the profiler's filters as the driver programmed CTL/CTL2, the words latched into that
   CPU's MSRs with CTL.Val set, the NMI handler, then irq_work and the work item
   work_latency_ms later, exactly as the reference engine schedules them; kmigrated, kswapd,
   timeline ticks are KernelState's shared events. A page kmigrated moved is sampled at the
   PFN it has now (its data source follows the node), as the profiler would see it.
`run_recording` puts both together with the metrics `run` reports (runtime/metrics.py).
"""

from __future__ import annotations

import heapq
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from generated.data_src import DataSrc
from generated.ibs_mprof import (
    PAGE_SHIFT,
    IbsMprofCtl,
    IbsMprofCtl2,
    IbsMprofData3,
    ibs_mprof_ctl_set_val,
    ibs_mprof_data2_get_data_src,
    ibs_mprof_data2_set_data_src,
    ibs_mprof_data2_set_rmt_node,
    ibs_mprof_phyaddr_get_phy_addr,
    ibs_mprof_phyaddr_set_phy_addr,
)
from runtime.cost import peak_rss_bytes
from runtime.errors import InputError
from runtime.groundtruth import rate_truth, top_tier_capacity
from runtime.kernel_state import TAG, EventByEvent, ProfilerCounts, SimConfig
from runtime.memory import NO_PAGE, Memory, lru_stamp
from runtime.metrics import COST_KEYS, HEATMAP_BUCKETS, Collector, Engine, summarise
from runtime.msr import MsrFile
from runtime.pageruns import PageRuns
from runtime.perf.ingest import Ingest, IngestSummary, MprofSamples
from runtime.perf.pages import counted_rows
from runtime.perf.virtual_heat import VirtualHeat, VirtualRegions
from runtime.profiler import (
    DISCARD_REASONS,
    KEPT,
    PAGE_OFFSET_MASK,
    Control,
    decode_control,
    discard_reason,
    interrupt_delivered,
    memory_data_src,
    remote_node,
)
from runtime.progress import Progress, Quiet
from runtime.replay import latch_sample
from runtime.scenario import checked_tunables, driver_config_of
from runtime.setups import SETUPS
from runtime.topology import Topology

I64 = npt.NDArray[np.int64]
U64 = npt.NDArray[np.uint64]
NOT_ARMED = "not_armed"
"""A recorded op the model's profiler could not have tagged: it was not counting (the driver
never enabled it on that CPU, or a sample's interrupt was lost and Val is still set)."""
MEMORY_SOURCES = (int(DataSrc.DRAM), int(DataSrc.EXT_MEM))
"""DataSrc values of an op served by a node's memory (the ones a move changes)."""
RECORDED_SETUP = "pghot-hwhints"
"""A recording holds IBS samples only: no NUMA-balancing scanner ran in the model."""


@dataclass
class RecordedPages:
    """What the first pass found: page i is PFN pfns[i] (ascending) on node nids[i]."""

    pfns: I64
    nids: I64
    samples: I64
    """Every sample of each page (pages.csv)."""
    misses: I64
    """Its L3-miss samples: the ground truth of its rate (what FTHR weighs)."""
    pid: I64
    vaddr: U64
    """Its first sample's process and data address (pages.csv names the mapping)."""
    first_ns: int
    last_ns: int
    off_nodes: int = 0
    """Samples with a valid physical address on no node (the driver drops them)."""

    @property
    def count(self) -> int:
        return int(self.pfns.size)

    def span_ms(self) -> float:
        return (self.last_ns - self.first_ns) / 1e6

    def page_of(self, pfns: I64, usable: npt.NDArray[np.bool_]) -> I64:
        """The page id of each PFN, NO_PAGE where it is no page (or not usable)."""
        if not self.count:
            return np.full(pfns.size, NO_PAGE, dtype=np.int64)
        at = np.minimum(np.searchsorted(self.pfns, pfns), self.count - 1)
        return np.where(usable & (self.pfns[at] == pfns), at, NO_PAGE).astype(np.int64)


def page_samples(chunk: MprofSamples) -> npt.NDArray[np.bool_]:
    """Samples that name a page: a valid physical address on a node."""
    valid: npt.NDArray[np.bool_] = IbsMprofData3.get_phy_addr_valid(chunk.data3) & (
        chunk.nid >= 0)
    return valid


class _PageTally:
    """Per-PFN figures over a stream of chunks; chunk summaries are merged in batches, so
    the cost follows the pages, not chunks x pages."""

    def __init__(self) -> None:
        self.parts: list[tuple[I64, I64, I64, I64, I64, U64]] = []
        self.pending = 0
        self.merged = 0
        self.off_nodes = 0

    def add(self, chunk: MprofSamples) -> None:
        keep = page_samples(chunk)
        self.off_nodes += int(np.count_nonzero(
            IbsMprofData3.get_phy_addr_valid(chunk.data3) & (chunk.nid < 0)))
        pfn = chunk.pfn[keep]
        if not pfn.size:
            return
        pfns, first, counts = np.unique(pfn, return_index=True, return_counts=True)
        misses = np.bincount(np.searchsorted(pfns, pfn), weights=chunk.l3_miss[keep],
                             minlength=pfns.size).astype(np.int64)
        self.parts.append((pfns, chunk.nid[keep][first], counts, misses,
                           chunk.pid[keep][first], chunk.vaddr[keep][first]))
        self.pending += pfns.size
        if self.pending > max(self.merged, 1 << 16):
            self._merge()

    def _merge(self) -> None:
        """One entry per PFN: counts summed, the earliest part's first sample kept (parts
        are in time order, and a stable sort keeps that order among equal PFNs)."""
        if len(self.parts) <= 1:
            return
        cols = [np.concatenate(c) for c in zip(*self.parts, strict=True)]
        order = np.argsort(cols[0], kind="stable")
        pfns = cols[0][order]
        starts = np.flatnonzero(np.r_[True, pfns[1:] != pfns[:-1]])
        sums = [np.add.reduceat(cols[i][order], starts) for i in (2, 3)]
        firsts = [cols[i][order][starts] for i in (1, 4, 5)]
        self.parts = [(pfns[starts], firsts[0], sums[0], sums[1], firsts[1], firsts[2])]
        self.merged = self.pending = int(starts.size)

    def pages(self, summary: IngestSummary) -> RecordedPages:
        self._merge()
        if not self.parts:
            empty = np.zeros(0, dtype=np.int64)
            pfns, nids, counts, misses, pid, vaddr = (empty,) * 5 + (empty.astype(np.uint64),)
        else:
            pfns, nids, counts, misses, pid, vaddr = self.parts[0]
        return RecordedPages(pfns, nids, counts, misses, pid, vaddr,
                             summary.first_time_ns or 0, summary.last_time_ns or 0,
                             self.off_nodes)


def scan_pages(ingest: Ingest, progress: Progress,
               regions: VirtualRegions | None = None) -> RecordedPages:
    """First pass over the recording: its pages and their counts, and the virtual regions
    it touched if asked (bounded memory: a chunk at a time plus per-page arrays)."""
    tally = _PageTally()
    for chunk in ingest:
        tally.add(chunk)
        if regions is not None:
            regions.add(chunk)
        progress.stage("reading recording", ingest.fraction_read)
    return tally.pages(ingest.summary)


class RecordedEngine(EventByEvent):
    """The kernel model driven by a recording's samples: `feed` chunks in time order, then
    `run` to the end (Engine protocol: metrics and reports read it as any engine)."""

    def __init__(self, cfg: SimConfig, memory: Memory, pages: RecordedPages) -> None:
        if cfg.setup.hint_faults is not None:
            raise ValueError("a recording drives the IBS path only: no hint-fault setup")
        super().__init__(cfg, memory)
        self.pages = pages
        self.profilers = self.models = [ProfilerCounts() for _ in self.cpus]
        self._controls: dict[tuple[int, int], Control] = {}

    def start(self) -> None:
        """Driver init (programs every CPU's profiler), pghot, kmigrated, kswapd, ticks."""
        self._start_kernel()

    # --- the recording's samples -------------------------------------------------------------
    def feed(self, chunk: MprofSamples) -> None:
        """The chunk's samples as tags at their own times (ties: by CPU, as the canonical
        order has it); queued events before each run first."""
        order = np.lexsort((chunk.cpu, chunk.time_ns))
        chunk = chunk.take(order)
        t_ms = (chunk.time_ns - np.uint64(self.pages.first_ns)).astype(np.int64) / 1e6
        page = self.pages.page_of(chunk.pfn, page_samples(chunk))
        for cpu, now, pg, data2, data3, linaddr, phyaddr, kernel, miss in zip(
                chunk.cpu.tolist(), t_ms.tolist(), page.tolist(), chunk.data2.tolist(),
                chunk.data3.tolist(), chunk.linaddr.tolist(), chunk.phyaddr.tolist(),
                chunk.kernel.tolist(), chunk.l3_miss.tolist(), strict=True):
            self._events_before(now)
            self.now_ms = now
            self._tag(cpu, pg, data2, data3, linaddr, phyaddr, kernel, miss)

    def _tag(self, cpu: int, page: int, data2: int, data3: int, linaddr: int, phyaddr: int,
             kernel: bool, l3_miss: bool) -> None:
        """One recorded op tagged on cpu: the profiler's filters, the latch, the NMI."""
        state = self.cpus[cpu]
        prof = self.models[cpu]
        if page != NO_PAGE:  # the LRU age kswapd reads, stamped by every tagged access
            self.memory.last_access[page] = lru_stamp(self.now_ms, self.memory.lru_unit_ms)
        control = self._control(state.msr)
        if not control.armed:
            prof.discards[NOT_ARMED] += 1
            return
        reason = discard_reason(int(control.ctl.l3_miss_only), int(control.ctl2.exclude_kernel),
                                int(control.ctl2.exclude_user), int(l3_miss), int(kernel))
        if reason != KEPT:
            prof.discards[DISCARD_REASONS[reason]] += 1
            return
        prof.kept += 1
        if page != NO_PAGE:
            phyaddr, data2 = self._where_now(cpu, page, phyaddr, data2)
        ctl = ibs_mprof_ctl_set_val(state.msr.rdmsr(IbsMprofCtl.ADDRESS), 1)
        latch_sample(state.msr, ctl, data2, data3, linaddr, phyaddr)
        if not interrupt_delivered(state.msr, state.apic):
            prof.lost_interrupts += 1
            return
        self._nmi(cpu)

    def _control(self, msr: MsrFile) -> Control:
        """CTL and CTL2 as the driver programmed them, decoded once per pair of values."""
        key = (msr.rdmsr(IbsMprofCtl.ADDRESS), msr.rdmsr(IbsMprofCtl2.ADDRESS))
        control = self._controls.get(key)
        if control is None:
            control = self._controls[key] = decode_control(msr, self.cfg.cycles_per_op)
        return control

    def _where_now(self, cpu: int, page: int, phyaddr: int, data2: int) -> tuple[int, int]:
        """PHYADDR and DATA2 as the profiler latches them for the page where it is now: the
        recorded words while it has not moved; after a move its new PFN (same offset) and,
        for an op served by memory, the new node's data source and remoteness."""
        pfn = self.memory.pfn_of(page)
        if pfn == int(self.pages.pfns[page]):
            return phyaddr, data2
        offset = ibs_mprof_phyaddr_get_phy_addr(phyaddr) & PAGE_OFFSET_MASK
        phyaddr = ibs_mprof_phyaddr_set_phy_addr(phyaddr, (pfn << PAGE_SHIFT) | offset)
        if ibs_mprof_data2_get_data_src(data2) in MEMORY_SOURCES:
            nid = self.memory.node_of_page(page)
            node = self.topology.node(nid)
            data2 = ibs_mprof_data2_set_data_src(data2, int(memory_data_src(node.memory)))
            # a data source of memory: a memory op that missed L3 (profiler.remote_node)
            data2 = ibs_mprof_data2_set_rmt_node(
                data2, remote_node(1, 1, nid, self.topology.cpu_node[cpu]))
        return phyaddr, data2

    # --- events -------------------------------------------------------------------------------
    def _events_before(self, now: float) -> None:
        """Queued events that come before a tag at `now`: earlier ones, and at `now` the
        kinds ordered before TAG (phase ends)."""
        queue = self._queue
        while queue and (queue[0][0] < now or queue[0][0] == now and queue[0][1] < TAG):
            when, kind, arg, _ = heapq.heappop(queue)
            self.now_ms = when
            self._dispatch(kind, arg)

    def run(self, until_ms: float | None = None) -> None:
        """Process every event before until_ms (default: the configured duration)."""
        end = self.cfg.duration_ms if until_ms is None else until_ms
        while self._queue and self._queue[0][0] < end:
            when, kind, arg, _ = heapq.heappop(self._queue)
            self.now_ms = when
            self._dispatch(kind, arg)
        self.now_ms = end

    def _dispatch(self, kind: int, arg: int) -> None:
        if not self._deferred(kind, arg):
            self._global(kind, arg)


class PageTimes:
    """Observer: each page's first READY (when the work's pghot call left it READY) and
    first promotion, ms of the run (-1: never), read before the collector forgets the logs
    (so it must come first among the observers)."""

    def __init__(self, pages: int) -> None:
        self.first_ready = np.full(pages, -1.0)
        self.first_promoted = np.full(pages, -1.0)
        self._calls = self._promotions = 0

    def tick(self, engine: Engine) -> None:
        calls = engine.calls
        page = calls.column("page", self._calls)
        ready = calls.column("ready", self._calls).astype(bool) & (page >= 0)
        self._first(self.first_ready, page[ready], calls.column("drain_ms", self._calls)[ready])
        self._calls = len(calls)
        promos = engine.pghot.promotions
        self._first(self.first_promoted, promos.column("page", self._promotions),
                    promos.column("time_ms", self._promotions).astype(np.float64))
        self._promotions = len(promos)

    def phase_end(self, engine: Engine) -> None:
        self.tick(engine)

    @staticmethod
    def _first(column: npt.NDArray[np.float64], pages: I64,
               times: npt.NDArray[np.float64]) -> None:
        inside = (pages >= 0) & (pages < column.size)
        pages, times = pages[inside], times[inside]
        slot, at = np.unique(pages, return_index=True)  # times ascend: the first is earliest
        new = column[slot] < 0
        column[slot[new]] = times[at[new]]

    def pages(self) -> I64:
        """The pages ever READY or promoted, ascending."""
        return np.flatnonzero((self.first_ready >= 0) | (self.first_promoted >= 0))


@dataclass
class Recorded:
    """A recording's run: the report dict (report.json's schema plus `ingest`) and pages.csv
    rows (runtime/perf/pages.HEADER)."""

    result: dict[str, Any]
    page_rows: list[tuple[object, ...]]


def sim_config(scenario: dict[str, Any], topology: Topology, duration_ms: float) -> SimConfig:
    """The kernel the scenario describes on the recording's machine (setup pghot-hwhints)."""
    return SimConfig(
        topology=topology, duration_ms=duration_ms,
        driver_variant=scenario["driver"]["variant"], driver=driver_config_of(scenario),
        work_latency_ms=scenario["driver"]["work_latency_ms"],
        tunables=checked_tunables(scenario, topology),
        demotion=scenario["demotion"]["enabled"], timeline_ms=scenario["metrics"]["timeline_ms"],
        watermark_scale_factor=scenario["machine"]["watermark_scale_factor"],
        setup=SETUPS[RECORDED_SETUP])


def recorded_engine(pages: RecordedPages, topology: Topology, scenario: dict[str, Any],
                    duration_ms: float) -> RecordedEngine:
    """The engine for a recording's pages: page i placed at its PFN, every other PFN free."""
    memory = Memory(topology)
    memory.place_at(np.arange(pages.count, dtype=np.int64), pages.pfns)
    return RecordedEngine(sim_config(scenario, topology, duration_ms), memory, pages)


def run_recording(path: Path, topology: Topology, scenario: dict[str, Any],
                  notes: Iterable[str] = (), progress: Progress | None = None) -> Recorded:
    """Both passes over the recording and the metrics of the run; `notes` say what the
    caller assumed (e.g. where the topology came from) and go into the report."""
    started = time.perf_counter()
    progress = progress or Quiet()
    try:
        first = Ingest(path, topology)
        regions = VirtualRegions()
        pages = scan_pages(first, progress, regions)
        summary = first.summary
        if not summary.samples:
            raise InputError(f"{path}: no ibs_op sample reaches the model ({_drops(summary)})")
        if not pages.count:
            raise InputError(f"{path}: none of its {summary.samples} samples has a physical "
                             "address on a node of the topology; is it the machine perf ran "
                             "on?")
        duration_ms = pages.span_ms() + scenario["metrics"]["timeline_ms"]
        engine = recorded_engine(pages, topology, scenario, duration_ms)
        cfg = engine.cfg
        met = scenario["metrics"]
        capacity = top_tier_capacity(topology, engine.memory, engine.pghot.watermarks,
                                     cfg.tunables.kmigrated_batch_nr)
        rate = PageRuns.from_array(pages.misses / (duration_ms / 1000.0))
        truth = rate_truth(rate, 0.0, duration_ms, "recording", capacity, met["hot_rate_ratio"],
                           met["hot_rate_per_s"])
        lower = [(n.pfn_start, n.pfn_end) for n in topology.lower_nodes()]
        collector = Collector([truth], pages.count, lower, cfg.tunables.window_ms)
        times = PageTimes(pages.count)
        engine.observers += [times, collector]
        engine.progress = lambda done: progress.stage("simulating", done)
        engine.start()
        vheat = VirtualHeat(regions.sorted_keys(), HEATMAP_BUCKETS, pages.first_ns,
                            cfg.timeline_ms, math.ceil(duration_ms / cfg.timeline_ms) + 1)
        second = Ingest(path, topology)
        for chunk in second:
            engine.feed(chunk)
            vheat.add(chunk)
        engine.run()
        times.tick(engine)
        collector.finish(engine)
        numbers = summarise(engine, collector, {k: met[k] for k in COST_KEYS}, duration_ms)
    finally:
        progress.done()
    result = {
        "schema": "ibs-mprof report 1",
        "scenario": _shown_scenario(scenario, path, duration_ms),
        "machine": {
            "nodes": [{"nid": n.nid, "tier": n.tier, "memory": n.memory,
                       "pfn_start": n.pfn_start, "pages": n.pfn_count} for n in topology.nodes],
            "cpus": len(topology.cpu_node),
        },
        "workload": {"pages": pages.count,
                     "phases": [{"label": truth.label, "start_ms": 0.0, "end_ms": duration_ms,
                                 "hot_pages": truth.hot_count}]},
        **numbers,
        "timeline": collector.timeline,
        "heatmap": {"buckets": HEATMAP_BUCKETS, "lower_pfn_ranges": lower,
                    "rows": collector.heatmap},
        "virtual_heatmap": vheat.result(len(collector.timeline)),
        "engine": {"name": "recorded", "wall_s": round(time.perf_counter() - started, 3),
                   "peak_memory_bytes": peak_rss_bytes()},
        "ingest": _ingest_section(path, first, pages, scenario, list(notes)),
    }
    chosen = times.pages()
    rows = counted_rows(pages.pfns[chosen], np.floor(times.first_ready[chosen]).astype(np.int64),
                        np.floor(times.first_promoted[chosen]).astype(np.int64),
                        pages.nids[chosen], pages.samples[chosen], pages.pid[chosen],
                        pages.vaddr[chosen], summary.lookup(), summary.sideband.comm_of())
    return Recorded(result, rows)


def _drops(summary: IngestSummary) -> str:
    """The drop reasons that counted, as 'reason N, ...' (or 'nothing was dropped')."""
    counted = [f"{name} {count}" for name, count in summary.drops.items() if count]
    return ", ".join(counted) if counted else "nothing was dropped"


def _shown_scenario(scenario: dict[str, Any], path: Path, duration_ms: float) -> dict[str, Any]:
    """The scenario as it applied: the sections a recording uses, its workload (the file)
    and length in place of the synthetic ones."""
    shown = {key: scenario[key] for key in ("seed", "profiler", "driver", "pghot", "kmigrated",
                                            "demotion", "metrics")}
    return {**shown, "duration_s": duration_ms / 1000.0, "engine": "recorded",
            "setup": RECORDED_SETUP,
            "machine": {"watermark_scale_factor": scenario["machine"]["watermark_scale_factor"]},
            "workload": {"kind": "recording", "placement": "as recorded", "file": str(path)}}


def _ingest_section(path: Path, ingest: Ingest, pages: RecordedPages, scenario: dict[str, Any],
                    notes: list[str]) -> dict[str, Any]:
    """report.json's `ingest`: what was read, dropped and assumed."""
    summary = ingest.summary
    errata = [e.name for e in ingest.mapping.errata if e.applies(ingest.cpu)]
    cpu = "unknown CPU" if ingest.cpu is None else \
        f"{ingest.cpu[0]} family {ingest.cpu[1]:#x} model {ingest.cpu[2]:#x}"
    notes = [*notes, *summary.notes,
             f"errata applied: {', '.join(errata)} ({cpu})" if errata else
             f"no erratum of the mapping applies ({cpu})",
             *([f"{pages.off_nodes} samples name a physical address on no node of the "
                "topology (pfn_offline): is it the machine perf ran on?"]
               if pages.off_nodes else []),
             "the top tier's other occupancy is unknown: every PFN no sample named is free",
             "demotion " + ("on (scenario)" if scenario["demotion"]["enabled"] else
                            "off: the recording says nothing of the top tier's other pages"),
             "ground truth: each page's L3-miss samples over the run's length, in samples/s "
             "(metrics.hot_rate_per_s is in the same unit)"]
    return {
        "file": str(path),
        "samples_read": summary.samples + summary.drops.total(),
        "samples": summary.samples,
        "drops": summary.drops.as_dict(),
        "lost_by_kernel": summary.totals.lost,
        "first_time_ns": summary.first_time_ns,
        "last_time_ns": summary.last_time_ns,
        "span_ms": pages.span_ms(),
        "pages": pages.count,
        "pages_sampled_per_node": {int(n): int(c) for n, c in zip(
            *np.unique(pages.nids, return_counts=True), strict=True)},
        "notes": notes,
    }
