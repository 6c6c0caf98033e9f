"""`ibs-mprof run`: build the machine, workload and engine a scenario describes, run, measure.

The result is one JSON-ready dict (the report.json schema, documented in README) plus the time
series; report.py turns it into files. Same scenario and seed give an identical result.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from generated.ibs_mprof import PAGE_SHIFT, IbsMprofCtl
from runtime.driver import DriverConfig
from runtime.errors import InputError
from runtime.fast_engine import FastEngine
from runtime.groundtruth import mem_ops_per_s, top_tier_capacity, truths
from runtime.lackey import LackeyOps, lackey_workload
from runtime.memory import Memory, place_pages
from runtime.metrics import HEATMAP_BUCKETS, Collector, Engine, summarise
from runtime.reference_engine import ReferenceEngine, SimConfig
from runtime.scenario import tunables_of
from runtime.topology import Topology, build_topology
from runtime.workloads import SyntheticOps, build_workload

MIB_PAGES = (1 << 20) >> PAGE_SHIFT
Progress = Callable[[float], None]


@dataclass
class Built:
    topology: Topology
    engine: Engine
    collector: Collector


def build(scenario: dict[str, Any]) -> Built:
    m = scenario["machine"]
    topo = build_topology(m["dram_nodes"], m["cxl_nodes"], m["cpus_per_dram_node"],
                          m["dram_mib"] * MIB_PAGES, m["cxl_mib"] * MIB_PAGES)
    llc = scenario["llc"]
    llc_bytes = int(llc["size_mib"] * (1 << 20))
    source: SyntheticOps | LackeyOps
    cpus = len(topo.cpu_node)
    if scenario["workload"]["kind"] == "lackey":
        workload, source = lackey_workload(scenario["workload"], llc_bytes, llc["line_bytes"])
    else:
        workload = build_workload(scenario["workload"], llc_bytes, llc["line_bytes"],
                                  scenario["seed"])
        source = SyntheticOps(workload, scenario["seed"], cpus)
    fits = sum(n.pfn_count for n in topo.nodes if workload.placement != "cxl" or not n.toptier)
    if workload.pages > fits:
        raise InputError(f"scenario: the workload's {workload.pages} pages do not fit the "
                         f"machine with placement {workload.placement} ({fits} pages)")
    memory = Memory(topo)
    place_pages(memory, workload.pages, workload.placement)
    try:
        tunables = tunables_of(scenario)
        tunables.check_target_nid(topo)
    except InputError as exc:
        raise InputError(f"scenario: {exc}") from None
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
        driver=DriverConfig(period=prof["period"], l3_miss_only=prof["l3_miss_only"],
                            cnt_ctl=prof["cnt_ctl"], exclude_kernel=prof["exclude_kernel"],
                            exclude_user=prof["exclude_user"]),
        work_latency_ms=scenario["driver"]["work_latency_ms"], tunables=tunables,
        demotion=scenario["demotion"]["enabled"],
        timeline_ms=scenario["metrics"]["timeline_ms"], cycles_per_op=m["cycles_per_op"])
    engine: Engine = (FastEngine(cfg, source, memory, workload) if scenario["engine"] == "fast"
                      else ReferenceEngine(cfg, source, memory))
    capacity = top_tier_capacity(topo, memory, engine.pghot.watermarks,
                                 tunables.kmigrated_batch_nr)
    met = scenario["metrics"]
    phase_truths = truths(workload, duration_ms,
                          mem_ops_per_s(workload, cpus, m["ops_per_cpu_per_s"]), capacity,
                          met["hot_rate_ratio"], met["hot_rate_per_s"])
    lower = [(n.pfn_start, n.pfn_end) for n in topo.lower_nodes()]
    collector = Collector(phase_truths, workload.pages, lower, tunables.window_ms)
    engine.observers.append(collector)
    return Built(topo, engine, collector)


def simulate(scenario: dict[str, Any], progress: Progress | None = None) -> dict[str, Any]:
    """Run the scenario; return the report dict (schema in README, 'report.json')."""
    started = time.perf_counter()
    built = build(scenario)
    engine = built.engine
    engine.start()
    duration = engine.cfg.duration_ms
    steps = 100
    for step in range(1, steps + 1):
        engine.run(duration * step / steps)
        if progress is not None:
            progress(step / steps)
    if not built.collector.timeline or built.collector.timeline[-1]["t_ms"] < duration:
        built.collector(engine)  # the last, partial tick ends at the end of the run
    met = scenario["metrics"]
    costs = {k: met[k] for k in ("nmi_cost_us", "record_cost_us", "migrate_cost_us")}
    summary = summarise(engine, built.collector, costs, duration)
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
                   "wall_s": round(time.perf_counter() - started, 3)},
    }


def progress_bar(stream: Any = sys.stderr, after_s: float = 2.0) -> Progress:
    """A one-line progress bar on stderr that appears only for runs longer than after_s."""
    t0 = time.perf_counter()

    def show(fraction: float) -> None:
        if time.perf_counter() - t0 < after_s and fraction < 1.0:
            return
        filled = int(fraction * 30)
        stream.write(f"\rsimulating [{'#' * filled}{'.' * (30 - filled)}] {fraction:4.0%}")
        if fraction >= 1.0:
            stream.write("\n")
        stream.flush()

    return show
