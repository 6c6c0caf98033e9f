"""`python -m runtime.calibrate`: measure the cost model's units (runtime/cost.py UNITS) here.

Each probe is a pair of scenarios that differ mostly in one amount. Both run as `ibs-mprof
run` does (simulate, then the report folder) in a child process; the parent takes the child's
wall time (the faster of REPEAT runs, interpreter start included) and its peak resident set
(VmHWM). The unit is the difference over the difference in that amount, after taking off what
the units measured before it say the other amounts changed. Amounts are the child's actual
counts where a run knows them (samples, promotions), so the units are per real event; the
model's amounts are upper bounds of those. `base` is the smallest run minus everything else.

A few units are not probed: lower_pages is the pghot record size by definition (1 byte a
page, 4 in precise mode: the buffer is reserved whole though its pages are touched only as
records are), and the demotion ones time FastEngine's LRU-age copy on a built engine.

Prints each probe's figures and a UNITS block to paste into runtime/cost.py. Takes about ten
minutes on the 2-core development machine; run it on an otherwise idle machine.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runtime.cost import UNITS, Unit

REPEAT = 2
QUIET = ("machine.ops_per_cpu_per_s=1000", "duration_s=0.01")
"""Overrides that make a run's sampling, ticks and engine blocks negligible."""
MISS = ("llc.size_mib=1",)
TRACE_PAGES = 4096
NOISE_BYTES, NOISE_S = 16 << 20, 0.05
"""Smaller differences between the two runs of a probe are noise: the unit is 0."""
RESERVED = ("lower_pages",)
"""Units that count memory reserved, not resident: not part of a measured difference."""


@dataclass(frozen=True)
class Probe:
    axis: str
    small: tuple[str, ...]
    big: tuple[str, ...]
    trace: tuple[int, int] | None = None  # lackey: (instruction lines, data lines) per side
    big_trace: tuple[int, int] | None = None
    peak: str = "simulated"  # or "report": the peak of the whole command (the report's own
    # memory grows with this axis)


PHASED = "workload.kind=phased"


def _phases(count: int, kind: str = "uniform") -> str:
    return "workload.phases=[" + ", ".join(
        f"{{kind: {kind}, duration_s: 0.001}}" for _ in range(count)) + "]"


PROBES = (
    Probe("page_phases", (*QUIET, PHASED, "workload.region_mib=512", _phases(2)),
          (*QUIET, PHASED, "workload.region_mib=512", _phases(10))),
    # 16 GiB apart: at ~16 bytes of state a page a smaller step hides in NOISE_BYTES
    Probe("pages", (*QUIET, "workload.kind=uniform", "workload.region_mib=256",
                    "machine.cxl_mib=32768"),
          (*QUIET, "workload.kind=uniform", "workload.region_mib=16640",
           "machine.cxl_mib=32768")),
    Probe("phases", (*QUIET, *MISS, PHASED, "workload.region_mib=8", _phases(20)),
          (*QUIET, *MISS, PHASED, "workload.region_mib=8", _phases(1000))),
    Probe("zipf_page_phases", (*QUIET, "workload.kind=uniform", "workload.region_mib=1024"),
          (*QUIET, "workload.kind=zipf", "workload.region_mib=1024")),
    Probe("lower_sections", (*QUIET, "workload.region_mib=16"),
          (*QUIET, "workload.region_mib=16", "machine.cxl_mib=16777216")),
    Probe("cpus", ("duration_s=0.01", "workload.region_mib=16", "machine.cpus_per_dram_node=16"),
          ("duration_s=0.01", "workload.region_mib=16", "machine.cpus_per_dram_node=1024")),
    Probe("cpu_blocks", ("machine.ops_per_cpu_per_s=1e8", "duration_s=0.01",
                         "workload.region_mib=16", "machine.cpus_per_dram_node=256",
                         "machine.cxl_nodes=16", "kmigrated.sleep_ms=50"),
          ("machine.ops_per_cpu_per_s=1e8", "duration_s=4", "workload.region_mib=16",
           "machine.cpus_per_dram_node=256", "machine.cxl_nodes=16", "kmigrated.sleep_ms=50")),
    Probe("ticks", ("machine.ops_per_cpu_per_s=1000", "duration_s=4", "workload.region_mib=1",
                    "metrics.timeline_ms=100"),
          ("machine.ops_per_cpu_per_s=1000", "duration_s=4", "workload.region_mib=1",
           "metrics.timeline_ms=1"), peak="report"),
    Probe("tick_pages", ("machine.ops_per_cpu_per_s=1000", "duration_s=2",
                         "metrics.timeline_ms=100"),
          ("machine.ops_per_cpu_per_s=1000", "duration_s=2", "metrics.timeline_ms=1")),
    # same tags, blocks ten times larger (fewer events): memory that follows the block, not
    # the run (before mem_tags, whose probe also grows the blocks)
    Probe("block_tags", ("workload.region_mib=16", "duration_s=1",
                         "machine.ops_per_cpu_per_s=2e10", "metrics.timeline_ms=50",
                         "kmigrated.sleep_ms=50"),
          ("workload.region_mib=16", "duration_s=1", "machine.ops_per_cpu_per_s=2e10",
           "metrics.timeline_ms=1000", "kmigrated.sleep_ms=1000")),
    Probe("mem_tags", ("workload.region_mib=16", "duration_s=1"),
          ("workload.region_mib=16", "duration_s=1", "machine.ops_per_cpu_per_s=2e10")),
    Probe("samples", ("workload.kind=microbench", "pghot.enabled_sources=0", "duration_s=1"),
          ("workload.kind=microbench", "pghot.enabled_sources=0", "duration_s=1",
           "machine.ops_per_cpu_per_s=8e9")),
    Probe("records", ("workload.kind=microbench", "pghot.enabled_sources=0", "duration_s=1",
                      "machine.ops_per_cpu_per_s=8e9"),
          ("workload.kind=microbench", "pghot.enabled_sources=0", "duration_s=1",
           "machine.ops_per_cpu_per_s=8e9", "driver.work_latency_ms=0")),
    Probe("promotions", ("workload.kind=uniform", "workload.region_mib=1536",
                         "demotion.enabled=false", "pghot.enabled_sources=0",
                         "pghot.freq_threshold=1", "duration_s=2",
                         "machine.ops_per_cpu_per_s=4e9", *MISS),
          ("workload.kind=uniform", "workload.region_mib=1536", "demotion.enabled=false",
           "pghot.freq_threshold=1", "duration_s=2", "machine.ops_per_cpu_per_s=4e9", *MISS)),
    # no "walks" probe: a kmigrated pass costs the HOT sections it finds (SectionHot), which
    # the promotions' unit covers; a 2 TiB CXL tier measured 0 s and 0 bytes more
    Probe("tags", ("engine=reference", "workload.region_mib=16", "duration_s=0.2"),
          ("engine=reference", "workload.region_mib=16", "duration_s=0.2",
           "machine.ops_per_cpu_per_s=1e10")),
    Probe("reference_samples", ("engine=reference", "workload.kind=microbench",
                                "pghot.enabled_sources=0", "duration_s=0.2",
                                "machine.ops_per_cpu_per_s=1e8"),
          ("engine=reference", "workload.kind=microbench", "pghot.enabled_sources=0",
           "duration_s=0.2", "machine.ops_per_cpu_per_s=1e9")),
    Probe("trace_lines", (*QUIET, "llc.size_mib=0.0625"), (*QUIET, "llc.size_mib=0.0625"),
          (10_000, 50_000), (1_000_000, 50_000)),
    Probe("trace_accesses", (*QUIET, "llc.size_mib=0.0625"), (*QUIET, "llc.size_mib=0.0625"),
          (10_000, 50_000), (10_000, 1_000_000)),
    Probe("llc_sets", (*QUIET, "llc.size_mib=1"), (*QUIET, "llc.size_mib=1024"),
          (10_000, 50_000), (10_000, 50_000)),
)

CHILD = """
import json, sys, tempfile
from pathlib import Path
from runtime.allocator import keep_freed_memory
keep_freed_memory()
from runtime.cost import Limits, peak_rss_bytes
from runtime.report import write_report
from runtime.scenario import load_scenario
from runtime.simulate import simulate
path = Path(sys.argv[1]) if sys.argv[1] else None
result = simulate(load_scenario(path, sys.argv[2:]), limits=Limits(None, wall_s=float("inf")))
simulated = peak_rss_bytes()
with tempfile.TemporaryDirectory() as out:
    write_report(result, Path(out) / "report")
amounts = dict(result["engine"]["cost_amounts"])
sampled = result["sampling"]["total"]
amounts["samples"] = sampled
if amounts["reference_samples"]:
    amounts["reference_samples"] = sampled
amounts["records"] = sum(result["sampling"]["pghot"].values())
amounts["promotions"] = result["migrations"]["promotions"]
print(json.dumps({"amounts": amounts, "simulated": simulated, "report": peak_rss_bytes()}))
"""


def write_trace(path: Path, fetches: int, data: int) -> None:
    """A lackey log: `data` accesses over TRACE_PAGES pages between `fetches` instruction
    lines, evenly interleaved."""
    lines = []
    every = max(fetches // max(data, 1), 0)
    for i in range(max(fetches, data)):
        if i < data:
            page, offset = (i * 7919) % TRACE_PAGES, (i * 64) % 4096
            lines.append(f" L {0x10000000 + page * 4096 + offset:08x},8\n")
        for _ in range(every if i < data else (1 if i < fetches else 0)):
            lines.append(f"I  {0x400000 + i % 4096:08x},4\n")
    path.write_text("".join(lines))


def measure(overrides: tuple[str, ...], trace: tuple[int, int] | None,
            folder: Path) -> dict[str, Any]:
    """The child's actual amounts, its peak RSS and the fastest wall time of REPEAT runs."""
    scenario = ""
    if trace is not None:
        write_trace(folder / "trace.out", *trace)
        (folder / "s.yaml").write_text("workload:\n  kind: lackey\n  trace: trace.out\n")
        scenario = str(folder / "s.yaml")
    walls, out = [], {}
    for _ in range(REPEAT):
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", CHILD, scenario, *overrides],
                              capture_output=True, text=True, check=True)
        walls.append(time.perf_counter() - started)
        out = json.loads(done.stdout)
    return {**out, "wall": min(walls)}


def unit_of(probe: Probe, small: dict[str, Any], big: dict[str, Any],
            units: dict[str, Unit]) -> Unit:
    """The probe's axis unit: the measured difference less what the other units explain."""
    delta = {k: big["amounts"][k] - small["amounts"][k] for k in big["amounts"]}
    others = [k for k in delta if k not in (probe.axis, "base", *RESERVED)]
    rest_bytes = sum(delta[k] * units[k].bytes for k in others)
    rest_s = sum(delta[k] * units[k].seconds for k in others)
    amount = delta[probe.axis]
    grew = big[probe.peak] - small[probe.peak]
    took = big["wall"] - small["wall"]
    return Unit(max((grew - rest_bytes) / amount, 0.0) if grew >= NOISE_BYTES else 0.0,
                max((took - rest_s) / amount, 0.0) if took >= NOISE_S else 0.0)


def demotion_units() -> tuple[Unit, Unit]:
    """(demotion_rounds_pages, demotion_pages): a kswapd round with work finds the node's
    pages and sorts their LRU ages (Demoter._demote), timed over a million placed pages; the
    ages are Memory.last_access, a stamp per page."""
    import numpy as np

    from runtime.memory import Memory
    from runtime.topology import build_topology

    pages = 1 << 20
    memory = Memory(build_topology(1, 1, 1, 2 * pages, 2 * pages))
    top = next(n.nid for n in memory.topology.nodes if n.toptier)
    memory.place_range(0, pages, top)
    memory.last_access[:pages] = np.arange(pages, dtype=np.uint16)[::-1]
    started = time.perf_counter()
    for _ in range(3):
        on = memory.pages_on(top)
        np.argsort(memory.last_access[on], kind="stable")
    per_page = (time.perf_counter() - started) / 3 / pages
    return Unit(0.0, per_page), Unit(float(memory.last_access.itemsize), 0.0)


def calibrate(passes: int = 2) -> dict[str, Unit]:
    """Every probe in order, `passes` times: a probe's subtraction uses the other units as
    the previous probes (or the previous pass) measured them."""
    units = dict(UNITS)
    units["demotion_rounds_pages"], units["demotion_pages"] = demotion_units()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for probe in [p for _ in range(passes) for p in PROBES]:
            small = measure(probe.small, probe.trace, folder)
            big = measure(probe.big, probe.big_trace or probe.trace, folder)
            units[probe.axis] = unit_of(probe, small, big, units)
            print(f"# {probe.axis}: {small['wall']:.2f} -> {big['wall']:.2f} s, "
                  f"{small[probe.peak] >> 20} -> {big[probe.peak] >> 20} MiB: "
                  f"{units[probe.axis]}", flush=True)
        tiny = measure((*QUIET, "workload.region_mib=1"), None, folder)
        rest = {k: v for k, v in units.items() if k != "base"}
        units["base"] = Unit(tiny["report"] - sum(tiny["amounts"][k] * u.bytes
                                                  for k, u in rest.items()
                                                  if k not in RESERVED),
                             tiny["wall"] - sum(tiny["amounts"][k] * u.seconds
                                                for k, u in rest.items()))
    return units


def main() -> None:
    units = calibrate()
    print("UNITS: dict[str, Unit] = {")
    for axis, unit in units.items():
        print(f'    "{axis}": Unit({unit.bytes:.3g}, {unit.seconds:.3g}),')
    print("}")


if __name__ == "__main__":
    main()
