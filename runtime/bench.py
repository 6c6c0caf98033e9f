"""`ibs-mprof bench`: throughput of both engines on fixed workloads, and the scale targets.

Each case runs the fast engine for its full simulated time and the reference engine for a
shorter slice (it is the slow oracle); rates are per wall second, so the two compare directly.
Every measurement is repeated: the fastest run counts (as timeit does: slower runs measure the
machine's other work, not the engine), the first (cold: numba loads or compiles its cache,
the allocator warms up) and the slowest are reported beside it, with the process CPU time of
the fastest. The fast/reference ratio therefore compares steady-state rates. Child processes
measure what a user runs: the whole `ibs-mprof run` command on the 64-CPU host (real-time
factor end to end, wall and CPU, for 0.01 s, 4 s and 60 s simulated: its fixed cost, and the
steady rate of a long study), the build of a 256 GiB region with its bytes per page and
peak RSS, a 1 TiB CXL tier's pghot records, and with --flat the peak RSS of a 600 s run
against the same run for 10 s; then a generated 1 GB perf.data read through the ingest layer
and the whole `ingest` command on a recording of a million samples. No test asserts any of
these numbers: timings live here only.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
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
REGION_GIB = 256
QUICK_REGION_GIB = 1
FLAT_SHORT_S, FLAT_LONG_S = 10.0, 600.0
COMMAND_S = (0.01, 4.0, 60.0)
"""Simulated seconds of the whole-command measurements on the 64-CPU host: next to nothing
(what a run costs before and after simulating: interpreter, imports, compiled-code load,
build, report), a short run, and a long one (the steady rate a minutes-long study sees)."""
READ_MB, QUICK_READ_MB = 1000, 20
"""perf.data size the reader is timed on: the 1 GB a user brings (20 MB if quick)."""
INGEST_SAMPLES, QUICK_INGEST_SAMPLES = 1_000_000, 20_000
"""Samples of the recording the whole `ibs-mprof ingest` command is timed on."""
INGEST_S_PER_SAMPLE = 25e-6
"""Measured cost of ingest per sample (2-core development machine), for the estimate."""
READ_S_PER_MB = 0.01
"""Measured read cost per MB of perf.data, for the estimate."""


def region_scenario(gib: int) -> tuple[str, ...]:
    return (f"machine.cxl_mib={gib * 1024}", "machine.dram_mib=16384",
            f"workload.region_mib={gib * 1024}", "duration_s=0.2", "engine=fast")


TIB_SCENARIO = ("machine.cxl_mib=1048576", "machine.dram_mib=16384", "workload.region_mib=4096",
                "duration_s=0.2", "engine=fast")


def scenario_of(case: Case, engine: str) -> dict[str, Any]:
    seconds = case.fast_s if engine == "fast" else case.reference_s
    return load_scenario(None, [*case.overrides, f"engine={engine}", f"duration_s={seconds}"])


def measure(case: Case, engine: str, seconds: float, repeat: int = 1,
            done: Callable[[], None] | None = None) -> dict[str, Any]:
    """Run the case `repeat` times from scratch; rates from the fastest run (`done` is
    called after each)."""
    walls, cpus_s = [], []
    for _ in range(repeat):
        scenario = load_scenario(None, [*case.overrides, f"engine={engine}",
                                        f"duration_s={seconds}"])
        built = build(scenario)
        eng = built.engine
        eng.start()
        started, cpu0 = time.perf_counter(), time.process_time()
        eng.run()
        walls.append(time.perf_counter() - started)
        cpus_s.append(time.process_time() - cpu0)
        if done is not None:
            done()
    best = min(range(repeat), key=walls.__getitem__)
    wall = walls[best]
    cpus = len(built.topology.cpu_node)
    ops = cpus * scenario["machine"]["ops_per_cpu_per_s"] * seconds
    samples = eng.vmstat.get("hwhint_total_events")
    return {"engine": engine, "simulated_s": seconds, "cpus": cpus, "wall_s": round(wall, 3),
            "cpu_s": round(cpus_s[best], 3), "first_wall_s": round(walls[0], 3),
            "slowest_wall_s": round(max(walls), 3), "runs": repeat,
            "samples": samples, "samples_per_s": samples / wall, "ops_per_s": ops / wall,
            "real_time_factor": seconds / wall}


def _child(code: str) -> dict[str, Any]:
    """Run code in a fresh interpreter (its peak RSS is its own); it prints one JSON line."""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def _timed(args: list[str]) -> tuple[float, float]:
    """Run a command to its end: its wall time and its CPU time (user + system)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(args, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def command(overrides: tuple[str, ...], seconds: float) -> dict[str, Any]:
    """The whole `ibs-mprof run` command as a user starts it (interpreter, imports, build,
    ground truth, run, summary, report files): wall and CPU time, peak RSS."""
    with tempfile.TemporaryDirectory() as folder:
        args = [sys.executable, "-m", "runtime.cli", "run", "--quiet", "--out",
                str(Path(folder) / "out"), "--set", f"duration_s={seconds}"]
        for item in overrides:
            args += ["--set", item]
        wall, cpu = _timed(args)
        report = json.loads((Path(folder) / "out" / "report.json").read_text())
    return {"simulated_s": seconds, "wall_s": round(wall, 3), "cpu_s": round(cpu, 3),
            "real_time_factor": seconds / wall,
            "peak_rss_bytes": report["engine"]["peak_memory_bytes"],
            "samples": report["vmstat"]["hwhint_total_events"]}


def commands(overrides: tuple[str, ...]) -> dict[str, Any]:
    """The whole command for each of COMMAND_S: the shortest is its fixed cost; between the
    other two, the steady real-time factor (extra simulated seconds per extra wall second)."""
    fixed, short, long = (command(overrides, seconds) for seconds in COMMAND_S)
    steady = (long["simulated_s"] - short["simulated_s"]) / max(
        long["wall_s"] - short["wall_s"], 1e-9)
    return {"fixed": fixed, "short": short, "long": long, "steady_real_time_factor": steady}


def region_build(gib: int = REGION_GIB) -> dict[str, Any]:
    """A child builds a region of `gib` GiB on CXL (and runs it briefly): build time, the
    per-page state of placement, LRU ages and metrics, the kernel's records, peak RSS."""
    code = (
        "import json, time\n"
        "from runtime.allocator import keep_freed_memory\n"
        "from runtime.cost import peak_rss_bytes\n"
        "from runtime.scenario import load_scenario\n"
        "from runtime.simulate import build\n"
        "keep_freed_memory()\n"
        f"s = load_scenario(None, {list(region_scenario(gib))!r})\n"
        "t = time.perf_counter()\n"
        "b = build(s)\n"
        "took = time.perf_counter() - t\n"
        "e = b.engine; e.start(); e.run()\n"
        "pages = b.collector.pages\n"
        "model = e.memory.nbytes + b.collector.state.nbytes\n"
        "rec = e.pghot.records\n"
        "records = sum(rec.words_view(x).nbytes for x in rec.sections())\n"
        "print(json.dumps({'pages': pages, 'build_s': round(took, 3),\n"
        "                  'bytes_per_page': model / pages, 'record_bytes': records,\n"
        "                  'peak_rss_bytes': peak_rss_bytes()}))\n")
    result = _child(code)
    result["region_gib"] = gib
    return result


def recording_read(mb: int) -> dict[str, Any]:
    """A child reads a generated perf.data of about `mb` MB through the ingest layer (frame,
    split payloads, map to Memory Profiler words, time order): wall, samples/s, MB/s, RSS."""
    from runtime.perf.synthetic import sample_bytes, write_recording

    with tempfile.TemporaryDirectory() as folder:
        path = write_recording(Path(folder) / "bench.data", mb * 1_000_000 // sample_bytes())
        code = (
            "import json, time\n"
            "from pathlib import Path\n"
            "from runtime.cost import peak_rss_bytes\n"
            "from runtime.perf.ingest import Ingest\n"
            "from runtime.topology import two_tier_topology\n"
            "t = time.perf_counter(); n = 0\n"
            f"for chunk in Ingest(Path({str(path)!r}), two_tier_topology((0, 0))):\n"
            "    n += chunk.pfn.size\n"
            "print(json.dumps({'samples': n, 'wall_s': round(time.perf_counter() - t, 3),\n"
            "                  'peak_rss_bytes': peak_rss_bytes()}))\n")
        result = _child(code)
        size = path.stat().st_size
    return {**result, "file_bytes": size, "mb_per_s": size / 1e6 / result["wall_s"],
            "samples_per_s": result["samples"] / result["wall_s"]}


def recording_ingest(samples: int) -> dict[str, Any]:
    """The whole `ibs-mprof ingest` command (interpreter, both passes, the kernel model per
    sample, report files) on a generated recording of `samples` samples."""
    from runtime.perf.synthetic import write_recording
    from runtime.perf.sysfs import topology_yaml
    from runtime.topology import two_tier_topology

    with tempfile.TemporaryDirectory() as folder:
        path = write_recording(Path(folder) / "bench.data", samples)
        topo = Path(folder) / "machine.yaml"
        topo.write_text(topology_yaml(two_tier_topology((0, 0)), [], "bench"))
        args = [sys.executable, "-m", "runtime.cli", "ingest", str(path), "--topology",
                str(topo), "--quiet", "--out", str(Path(folder) / "out")]
        wall, cpu = _timed(args)
        report = json.loads((Path(folder) / "out" / "report.json").read_text())
    return {"samples": samples, "wall_s": round(wall, 3), "cpu_s": round(cpu, 3),
            "samples_per_s": samples / wall, "recording_s": report["ingest"]["span_ms"] / 1000,
            "peak_rss_bytes": report["engine"]["peak_memory_bytes"]}


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
    return _child(code)


def flatness() -> dict[str, Any]:
    """Peak RSS of the 64-CPU host, period 10000, for FLAT_LONG_S against FLAT_SHORT_S."""
    short = command(HOST_64, FLAT_SHORT_S)
    long = command(HOST_64, FLAT_LONG_S)
    return {"short": short, "long": long,
            "rss_long_over_short": long["peak_rss_bytes"] / short["peak_rss_bytes"]}


def estimated_wall_s(quick: bool, repeat: int, flat: bool = False) -> float:
    """The cost model's wall time of a bench: each case's runs (the model's run less the
    interpreter start, `repeat` times per engine), then the children (whole processes)."""
    per_repeat = 0.0
    for case in CASES[:1] if quick else CASES:
        for engine in ("fast", "reference"):
            scenario = scenario_of(case, engine)
            workload, _ = load_workload(scenario, machine_limits(), Quiet())
            per_repeat += full_estimate(scenario, workload).wall_s - UNITS["base"].seconds
    children = [load_scenario(None, list(TIB_SCENARIO)),
                load_scenario(None, list(region_scenario(QUICK_REGION_GIB if quick
                                                         else REGION_GIB)))]
    if not quick:
        children += [load_scenario(None, [*HOST_64, f"duration_s={seconds}"])
                     for seconds in COMMAND_S]
    if flat:
        children += [load_scenario(None, [*HOST_64, f"duration_s={seconds}"])
                     for seconds in (FLAT_SHORT_S, FLAT_LONG_S)]
    recordings = (QUICK_READ_MB * READ_S_PER_MB + QUICK_INGEST_SAMPLES * INGEST_S_PER_SAMPLE
                  if quick else READ_MB * READ_S_PER_MB + INGEST_SAMPLES * INGEST_S_PER_SAMPLE)
    return (repeat * per_repeat + sum(estimate(child).wall_s for child in children)
            + recordings)


def check_repeat(quick: bool, repeat: int, limits: Limits, flat: bool = False) -> float:
    """The bench's estimated wall time; InputError naming --repeat when over limits.wall_s."""
    wall = estimated_wall_s(quick, repeat, flat)
    if wall > limits.wall_s:
        raise InputError(f"bench --repeat {repeat}: would take about {seconds_text(wall)} of "
                         f"wall time, over the {seconds_text(limits.wall_s)} limit; lower "
                         "--repeat (each repeat runs every case on both engines once)")
    return wall


TARGETS = {"microbench_samples_per_s": 15e6, "command_real_time_factor_64cpu": 10.0,
           "bytes_per_page": 16, "build_256gib_s": 5.0, "rss_600s_over_10s": 1.5}
"""What the scale issue asks of the tool (reported, never asserted)."""


def bench(quick: bool = False, repeat: int = 3, progress: Progress | None = None,
          limits: Limits | None = None, flat: bool = False) -> dict[str, Any]:
    """Throughput of both engines on CASES (the first only if quick), each measurement the
    fastest of `repeat` runs, then the children: the whole command on the 64-CPU host (not
    if quick), a region's build (256 GiB, 1 GiB if quick), the 1 TiB tier and, with flat,
    the 600 s vs 10 s peak RSS. Refused before any run when the estimate is over the
    wall-time limit; progress (default: the CLI's bar on stderr) hears each step done."""
    progress = progress_bar() if progress is None else progress
    try:
        wall = check_repeat(quick, repeat, limits or machine_limits(), flat)
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
        progress.stage("children", 0.0)
        result: dict[str, Any] = {"cases": cases}
        if not quick:
            result["command_64cpu"] = commands(HOST_64)
        result["region"] = region_build(QUICK_REGION_GIB if quick else REGION_GIB)
        progress.stage("children", 0.5)
        result["tib"] = tib_memory()
        if flat:
            result["flat"] = flatness()
        progress.stage("children", 0.75)
        result["recording_read"] = recording_read(QUICK_READ_MB if quick else READ_MB)
        result["recording_ingest"] = recording_ingest(QUICK_INGEST_SAMPLES if quick
                                                      else INGEST_SAMPLES)
        progress.stage("children", 1.0)
    finally:
        progress.done()
    return {**result, "peak_rss_bytes_self": peak_rss_bytes(), "repeat": repeat,
            "steady_state": "fast/reference compares the fastest of each engine's runs: "
                            "steady-state rates (first_wall_s is the cold run)",
            "targets": TARGETS}


def format_text(result: dict[str, Any]) -> str:
    lines = ["engine throughput (samples = NMIs through the whole pipeline, per wall second; "
             f"fastest of {result['repeat']} runs, [first (cold) / slowest] beside it)"]
    for case in result["cases"]:
        lines.append(f"{case['case']}:")
        for key in ("fast", "reference"):
            r = case[key]
            lines.append(f"  {key:<9} {r['samples_per_s']:>12,.0f} samples/s  "
                         f"{r['ops_per_s']:>16,.0f} simulated ops/s  real-time factor "
                         f"{r['real_time_factor']:.3f}  ({r['simulated_s']} s simulated in "
                         f"{r['wall_s']} s wall, {r['cpu_s']} s CPU [{r['first_wall_s']} / "
                         f"{r['slowest_wall_s']} s])")
        lines.append(f"  fast / reference = {case['fast_over_reference']:.1f}x (steady state)")
    if "command_64cpu" in result:
        c = result["command_64cpu"]
        lines.append(f"whole `ibs-mprof run` command, 64-CPU host, period 10000, gups-hot: fixed "
                     f"cost {c['fixed']['wall_s']} s wall ({c['fixed']['simulated_s']} s "
                     "simulated); steady real-time factor "
                     f"{c['steady_real_time_factor']:.2f}")
        for key in ("short", "long"):
            r = c[key]
            lines.append(f"  {r['simulated_s']} s simulated in {r['wall_s']} s wall, "
                         f"{r['cpu_s']} s CPU: real-time factor {r['real_time_factor']:.2f}; "
                         f"peak RSS {r['peak_rss_bytes'] / 2**20:.0f} MiB")
    r = result["region"]
    lines.append(f"{r['region_gib']} GiB region ({r['pages']:,} pages): build {r['build_s']} s, "
                 f"{r['bytes_per_page']:.1f} bytes of model state per page (+ pghot's 1 per "
                 f"lower-tier page: {r['record_bytes'] / 2**20:.0f} MiB), peak RSS "
                 f"{r['peak_rss_bytes'] / 2**20:.0f} MiB")
    tib = result["tib"]
    lines.append(f"1 TiB CXL tier ({tib['lower_tier_pages']:,} pages), default mode: pghot records "
                 f"{tib['record_bytes'] / 2**20:.0f} MiB; peak RSS of that run "
                 f"{tib['peak_rss_bytes'] / 2**20:.0f} MiB")
    if "flat" in result:
        f = result["flat"]
        lines.append(f"memory in simulated time, 64-CPU host: peak RSS {f['short']['simulated_s']} "
                     f"s {f['short']['peak_rss_bytes'] / 2**20:.0f} MiB, "
                     f"{f['long']['simulated_s']} s {f['long']['peak_rss_bytes'] / 2**20:.0f} "
                     f"MiB: {f['rss_long_over_short']:.2f}x")
    read, ingest = result["recording_read"], result["recording_ingest"]
    lines += [
        f"perf.data of {read['file_bytes'] / 1e6:,.0f} MB ({read['samples']:,} IBS op samples) "
        f"read in time order: {read['wall_s']} s, {read['mb_per_s']:,.0f} MB/s, "
        f"{read['samples_per_s']:,.0f} samples/s; peak RSS {read['peak_rss_bytes'] / 2**20:.0f} "
        "MiB",
        f"whole `ibs-mprof ingest` command, {ingest['samples']:,} samples "
        f"({ingest['recording_s']:.1f} s recorded): {ingest['wall_s']} s wall, "
        f"{ingest['cpu_s']} s CPU, {ingest['samples_per_s']:,.0f} samples/s; peak RSS "
        f"{ingest['peak_rss_bytes'] / 2**20:.0f} MiB"]
    t = result["targets"]
    lines.append(f"targets: microbench >= {t['microbench_samples_per_s']:,.0f} samples/s, whole "
                 f"command real-time factor >= {t['command_real_time_factor_64cpu']} on the "
                 f"64-CPU host, <= {t['bytes_per_page']} bytes per page, 256 GiB build <= "
                 f"{t['build_256gib_s']} s, 600 s / 10 s peak RSS <= {t['rss_600s_over_10s']}")
    return "\n".join(lines)
