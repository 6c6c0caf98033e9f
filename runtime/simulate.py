"""`ibs-mprof run`: build the machine, workload and engine a scenario describes, run, measure.

The result is one JSON-ready dict (the report.json schema, documented in README) plus the time
series; report.py turns it into files. Same scenario and seed give an identical result.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, TextIO

from generated.ibs_mprof import IbsMprofCtl
from runtime.cost import (
    UNITS,
    Estimate,
    Limits,
    check,
    estimate,
    machine_limits,
    peak_rss_bytes,
    workload_facts,
)
from runtime.errors import InputError
from runtime.fast_engine import FastEngine
from runtime.groundtruth import mem_ops_per_s, top_tier_capacity, truths
from runtime.kernel_state import SimConfig
from runtime.lackey import LackeyOps, lackey_workload
from runtime.memory import MIB_PAGES, Memory, place_pages
from runtime.metrics import COST_KEYS, HEATMAP_BUCKETS, Collector, Engine, summarise
from runtime.numab import NumabCosts, SyntheticArrivals, TraceArrivals
from runtime.numab.source import Arrivals
from runtime.progress import PROGRESS_AFTER_S, Progress, Quiet
from runtime.progress import progress_bar as progress_bar  # the command line's import
from runtime.reference_engine import ReferenceEngine
from runtime.scenario import checked_tunables, driver_config_of, numab_tunables_of
from runtime.setups import SETUPS
from runtime.topology import Topology, build_topology
from runtime.workloads import SyntheticOps, Workload, build_workload


@dataclass
class Built:
    topology: Topology
    engine: Engine
    collector: Collector
    estimate: Estimate


def load_workload(scenario: dict[str, Any], limits: Limits, progress: Progress,
                  first: Estimate | None = None) -> tuple[Workload, LackeyOps | None]:
    """The scenario's workload (and, for lackey, the trace's op source): the page
    distributions and their LLC model, or the trace. A trace's data accesses may take what
    `first` (the estimate without them) leaves of limits' memory."""
    llc = scenario["llc"]
    llc_bytes = int(llc["size_mib"] * (1 << 20))
    if scenario["workload"]["kind"] == "lackey":
        left = None if limits.memory_bytes is None else limits.memory_bytes - (
            first or estimate(scenario)).memory_bytes
        room = None if left is None else int(max(left, 0) / UNITS["trace_accesses"].bytes)
        return lackey_workload(scenario["workload"], llc_bytes, llc["line_bytes"],
                               max_data=room,
                               progress=lambda done: progress.stage("loading trace", done))
    return build_workload(scenario["workload"], llc_bytes, llc["line_bytes"], scenario["seed"],
                          lambda done: progress.stage("building workload", done)), None


def hint_arrivals(scenario: dict[str, Any], workload: Workload, trace_ops: LackeyOps | None,
                  cpus: int) -> Arrivals | None:
    """When pages NUMA balancing marked are next touched, for setups with hint faults."""
    if SETUPS[scenario["setup"]].hint_faults is None:
        return None
    ops_per_ms = scenario["machine"]["ops_per_cpu_per_s"] / 1000.0
    if trace_ops is not None:
        return TraceArrivals(trace_ops.trace, ops_per_ms)
    return SyntheticArrivals(workload, scenario["seed"], cpus,
                             ops_per_ms * workload.mem_op_fraction)


def full_estimate(scenario: dict[str, Any], workload: Workload) -> Estimate:
    """The estimate once the workload is built (its pages and L3-miss share known)."""
    return estimate(scenario, workload_facts(workload, scenario["duration_s"] * 1000.0))


def build(scenario: dict[str, Any], limits: Limits | None = None,
          progress: Progress | None = None, keep_logs: bool = False,
          sample_log: TextIO | None = None) -> Built:
    """The machine, workload, engine and metrics collector the scenario describes, after
    checking that the run fits the machine (cost.check, default limits: this machine's):
    once from the scenario before anything is allocated, once more with the built workload's
    pages and L3-miss share before the engine is. With keep_logs the engine's logs of pghot
    calls and moves stay whole (tests compare them); otherwise the collector forgets what it
    summarised. sample_log, if given, receives every pghot call as a CSV row."""
    limits = machine_limits() if limits is None else limits
    progress = progress or Quiet()
    first = estimate(scenario)
    check(first, limits)
    if first.wall_s > PROGRESS_AFTER_S:  # the workload itself takes a while to build
        progress.note(f"ibs-mprof: {first.describe()}")
    m = scenario["machine"]
    topo = build_topology(m["dram_nodes"], m["cxl_nodes"], m["cpus_per_dram_node"],
                          m["dram_mib"] * MIB_PAGES, m["cxl_mib"] * MIB_PAGES)
    cpus = len(topo.cpu_node)
    workload, trace_ops = load_workload(scenario, limits, progress, first)
    full = full_estimate(scenario, workload)
    check(full, limits)
    if full.wall_s > PROGRESS_AFTER_S and full.wall_s > 1.5 * first.wall_s:
        progress.note(f"ibs-mprof: {full.describe()}")
    source = trace_ops or SyntheticOps(workload, scenario["seed"], cpus)
    fits = sum(n.pfn_count for n in topo.nodes if workload.placement != "cxl" or not n.toptier)
    if workload.pages > fits:
        raise InputError(f"scenario: the workload's {workload.pages} pages do not fit the "
                         f"machine with placement {workload.placement} ({fits} pages)")
    progress.stage("placing pages", 0.0)
    memory = Memory(topo)
    place_pages(memory, workload.pages, workload.placement)
    tunables = checked_tunables(scenario, topo)
    prof = scenario["profiler"]
    try:  # the spec's split MaxCnt field says which periods the hardware can hold
        IbsMprofCtl(period=prof["period"])
    except ValueError as exc:
        raise InputError(f"scenario: profiler.period: {exc}") from None
    duration_ms = scenario["duration_s"] * 1000.0
    cfg = SimConfig(
        topology=topo, duration_ms=duration_ms,
        ops_per_ms=m["ops_per_cpu_per_s"] / 1000.0,
        driver_variant=scenario["driver"]["variant"],
        driver=driver_config_of(scenario),
        work_latency_ms=scenario["driver"]["work_latency_ms"], tunables=tunables,
        demotion=scenario["demotion"]["enabled"],
        timeline_ms=scenario["metrics"]["timeline_ms"], cycles_per_op=m["cycles_per_op"],
        watermark_scale_factor=m["watermark_scale_factor"],
        setup=SETUPS[scenario["setup"]], numab=numab_tunables_of(scenario),
        numab_costs=NumabCosts(pte_update_us=scenario["metrics"]["pte_update_cost_us"],
                               hint_fault_us=scenario["metrics"]["hint_fault_cost_us"],
                               migrate_us=scenario["metrics"]["migrate_cost_us"]),
        hint_arrivals=hint_arrivals(scenario, workload, trace_ops, cpus),
        workload_pages=workload.pages,
        phase_ends_ms=tuple(p.start_ms for p in workload.phases[1:]
                            if p.start_ms < duration_ms))
    engine: Engine = (FastEngine(cfg, source, memory, workload) if scenario["engine"] == "fast"
                      else ReferenceEngine(cfg, source, memory))
    progress.stage("placing pages", 1.0)  # and the kernel's per-page and per-section state
    capacity = top_tier_capacity(topo, memory, engine.pghot.watermarks,
                                 tunables.kmigrated_batch_nr)
    met = scenario["metrics"]
    phase_truths = truths(workload, duration_ms,
                          mem_ops_per_s(workload, cpus, m["ops_per_cpu_per_s"]), capacity,
                          met["hot_rate_ratio"], met["hot_rate_per_s"],
                          lambda done: progress.stage("ground truth", done))
    lower = [(n.pfn_start, n.pfn_end) for n in topo.lower_nodes()]
    collector = Collector(phase_truths, workload.pages, lower, tunables.window_ms,
                          keep_logs=keep_logs, sample_log=sample_log,
                          detect_on_promote=SETUPS[scenario["setup"]].hint_faults == "numab2")
    engine.observers.append(collector)
    return Built(topo, engine, collector, full)


def simulate(scenario: dict[str, Any], progress: Progress | None = None,
             limits: Limits | None = None, sample_log: TextIO | None = None) -> dict[str, Any]:
    """Run the scenario; return the report dict (schema in README, 'report.json'). A run the
    machine cannot hold (cost.check against `limits`, default this machine's) is refused
    before anything is allocated. The run goes in one piece; progress is heard at every
    timeline tick (a slice boundary would cut the fast engine's blocks short)."""
    started = time.perf_counter()
    progress = progress or Quiet()
    try:
        built = build(scenario, limits, progress, sample_log=sample_log)
        engine = built.engine
        engine.start()
        duration = engine.cfg.duration_ms
        engine.progress = lambda done: progress.stage("simulating", done)
        engine.run()
        progress.stage("simulating", 1.0)
        built.collector.finish(engine)
        met = scenario["metrics"]
        costs = {k: met[k] for k in COST_KEYS}
        summary = summarise(engine, built.collector, costs, duration,
                            lambda done: progress.stage("summarising", done))
    finally:
        progress.done()
    topo = built.topology
    return {
        "schema": "ibs-mprof report 1",
        "scenario": scenario,
        "machine": {
            "nodes": [{"nid": n.nid, "tier": n.tier, "memory": n.memory,
                       "pfn_start": n.pfn_start, "pages": n.pfn_count} for n in topo.nodes],
            "cpus": len(topo.cpu_node),
        },
        "workload": {"pages": built.collector.pages,
                     "phases": [{"label": t.label, "start_ms": t.start_ms, "end_ms": t.end_ms,
                                 "hot_pages": t.hot_count} for t in built.collector.truths]},
        **summary,
        "timeline": built.collector.timeline,
        "heatmap": {"buckets": HEATMAP_BUCKETS, "lower_pfn_ranges": built.collector.lower_ranges,
                    "rows": built.collector.heatmap},
        "engine": {"name": scenario["engine"],
                   "wall_s": round(time.perf_counter() - started, 3),
                   "estimated_wall_s": round(built.estimate.wall_s, 3),
                   "estimated_memory_bytes": round(built.estimate.memory_bytes),
                   "peak_memory_bytes": peak_rss_bytes(),
                   "cost_amounts": {t.axis: t.amount for t in built.estimate.terms}},
    }
