"""`ibs-mprof bench`: throughput of both engines on a fixed set of workloads, as ratios.

Each case runs the fast engine for its full simulated time and the reference engine for a
shorter slice (it is the slow oracle); rates are per wall second, so the two compare directly.
Every measurement is repeated and the fastest run kept (as timeit does: slower runs measure
the machine's other work, not the engine); the slowest is reported too. The 64-CPU case gives
the real-time factor of a large host at period 10000; the microbench case has the most
samples per op (every op a memory op that misses), so it shows the per-sample cost. A
separate child process builds a 1 TiB CXL tier to report the peak memory of its pghot records.
No test asserts any of these numbers: timings live here only.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from runtime.cost import UNITS, Limits, estimate, machine_limits, peak_rss_bytes, seconds_text
from runtime.errors import InputError
from runtime.progress import PROGRESS_AFTER_S, Progress, Quiet, progress_bar
from runtime.scenario import load_scenario
from runtime.simulate import build, full_estimate, load_workload


@dataclass(frozen=True)
class Case:
    name: str
    overrides: tuple[str, ...]
    fast_s: float  # simulated seconds for the fast engine
    reference_s: float  # ... and for the reference engine


HOST_64 = ("machine.cpus_per_dram_node=64", "machine.dram_mib=16384")
CASES = (
    Case("gups-hot, 2 CPUs (the default run)", (), 4.0, 1.0),
    Case("zipf 0.99, 16 CPUs", ("workload.kind=zipf", "machine.cpus_per_dram_node=16"), 1.0,
         0.1),
    Case("64-CPU host, period 10000, gups-hot", HOST_64, 1.0, 0.05),
    Case("64-CPU host, period 10000, microbench (every op a missing memory op)",
         (*HOST_64, "workload.kind=microbench"), 0.5, 0.01),
)
TIB_SCENARIO = ("machine.cxl_mib=1048576", "machine.dram_mib=16384", "workload.region_mib=4096",
                "duration_s=0.2", "engine=fast")


def scenario_of(case: Case, engine: str) -> dict[str, Any]:
    seconds = case.fast_s if engine == "fast" else case.reference_s
    return load_scenario(None, [*case.overrides, f"engine={engine}", f"duration_s={seconds}"])


def measure(case: Case, engine: str, seconds: float, repeat: int = 1,
            done: Callable[[], None] | None = None) -> dict[str, Any]:
    """Run the case `repeat` times from scratch; rates from the fastest run (`done` is
    called after each)."""
    walls = []
    for _ in range(repeat):
        scenario = load_scenario(None, [*case.overrides, f"engine={engine}",
                                        f"duration_s={seconds}"])
        built = build(scenario)
        eng = built.engine
        eng.start()
        started = time.perf_counter()
        eng.run()
        walls.append(time.perf_counter() - started)
        if done is not None:
            done()
    wall = min(walls)
    cpus = len(built.topology.cpu_node)
    ops = cpus * scenario["machine"]["ops_per_cpu_per_s"] * seconds
    samples = eng.vmstat.get("hwhint_total_events")
    return {"engine": engine, "simulated_s": seconds, "cpus": cpus, "wall_s": round(wall, 3),
            "slowest_wall_s": round(max(walls), 3), "runs": repeat,
            "samples": samples, "samples_per_s": samples / wall, "ops_per_s": ops / wall,
            "real_time_factor": seconds / wall}


def tib_memory() -> dict[str, Any]:
    """Peak RSS of a child that builds and briefly runs a 1 TiB CXL tier (fast engine)."""
    code = (
        "import json\n"
        "from runtime.allocator import keep_freed_memory\n"
        "from runtime.cost import peak_rss_bytes\n"
        "from runtime.scenario import load_scenario\n"
        "from runtime.simulate import build\n"
        "keep_freed_memory()  # as `ibs-mprof run` does\n"
        f"b = build(load_scenario(None, {list(TIB_SCENARIO)!r}))\n"
        "b.engine.start(); b.engine.run()\n"
        "rec = b.engine.pghot.records\n"
        "nbytes = sum(rec.words_view(s).nbytes for s in rec.sections())\n"
        "pages = sum(n.pfn_count for n in b.topology.nodes if not n.toptier)\n"
        "peak = peak_rss_bytes()\n"
        "print(json.dumps({'lower_tier_pages': pages, 'record_bytes': nbytes,\n"
        "                  'peak_rss_bytes': peak}))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def estimated_wall_s(quick: bool, repeat: int) -> float:
    """The cost model's wall time of a bench: each case's runs (the model's run less the
    interpreter start, `repeat` times per engine), then the 1 TiB child (a whole process)."""
    per_repeat = 0.0
    for case in CASES[:1] if quick else CASES:
        for engine in ("fast", "reference"):
            scenario = scenario_of(case, engine)
            workload, _ = load_workload(scenario, machine_limits(), Quiet())
            per_repeat += full_estimate(scenario, workload).wall_s - UNITS["base"].seconds
    tib = load_scenario(None, list(TIB_SCENARIO))
    return repeat * per_repeat + estimate(tib).wall_s


def check_repeat(quick: bool, repeat: int, limits: Limits) -> float:
    """The bench's estimated wall time; InputError naming --repeat when over limits.wall_s."""
    wall = estimated_wall_s(quick, repeat)
    if wall > limits.wall_s:
        raise InputError(f"bench --repeat {repeat}: would take about {seconds_text(wall)} of "
                         f"wall time, over the {seconds_text(limits.wall_s)} limit; lower "
                         "--repeat (each repeat runs every case on both engines once)")
    return wall


def bench(quick: bool = False, repeat: int = 3, progress: Progress | None = None,
          limits: Limits | None = None) -> dict[str, Any]:
    """Throughput of both engines on CASES (the first only if quick), each measurement the
    fastest of `repeat` runs. Refused before any run when the estimate is over the wall-time
    limit; progress (default: the CLI's bar on stderr) hears each run done."""
    progress = progress_bar() if progress is None else progress
    try:
        wall = check_repeat(quick, repeat, limits or machine_limits())
        if wall > PROGRESS_AFTER_S:
            progress.note(f"ibs-mprof: bench estimated {seconds_text(wall)}")
        cases = []
        chosen = CASES[:1] if quick else CASES
        runs = [0]

        def done() -> None:
            runs[0] += 1
            progress.stage("bench", runs[0] / (2 * repeat * len(chosen)))

        for case in chosen:
            fast = measure(case, "fast", case.fast_s, repeat, done)
            ref = measure(case, "reference", case.reference_s, repeat, done)
            cases.append({"case": case.name, "fast": fast, "reference": ref,
                          "fast_over_reference": fast["samples_per_s"] / ref["samples_per_s"]})
        progress.stage("1 TiB tier", 1.0)
        tib = tib_memory()
    finally:
        progress.done()
    return {"cases": cases, "tib": tib,
            "peak_rss_bytes_self": peak_rss_bytes(),
            "repeat": repeat,
            "targets": {"fast_over_reference": 50, "samples_per_s": 5e6,
                        "real_time_factor_64cpu": 1.0}}


def format_text(result: dict[str, Any]) -> str:
    lines = ["engine throughput (samples = NMIs through the whole pipeline, per wall second; "
             f"fastest of {result['repeat']} runs, slowest in brackets)"]
    for case in result["cases"]:
        lines.append(f"{case['case']}:")
        for key in ("fast", "reference"):
            r = case[key]
            lines.append(f"  {key:<9} {r['samples_per_s']:>12,.0f} samples/s  "
                         f"{r['ops_per_s']:>16,.0f} simulated ops/s  real-time factor "
                         f"{r['real_time_factor']:.3f}  ({r['simulated_s']} s simulated in "
                         f"{r['wall_s']} s [{r['slowest_wall_s']} s])")
        lines.append(f"  fast / reference = {case['fast_over_reference']:.1f}x")
    tib = result["tib"]
    lines.append(f"1 TiB CXL tier ({tib['lower_tier_pages']:,} pages), default mode: pghot records "
                 f"{tib['record_bytes'] / 2**20:.0f} MiB; peak RSS of that run "
                 f"{tib['peak_rss_bytes'] / 2**20:.0f} MiB")
    t = result["targets"]
    lines.append(f"targets: fast/reference >= {t['fast_over_reference']}x, >= "
                 f"{t['samples_per_s']:,.0f} samples/s, real-time factor >= "
                 f"{t['real_time_factor_64cpu']} on the 64-CPU host")
    return "\n".join(lines)
