"""What a run will cost before it starts: peak memory and wall time, from the scenario.

A small explicit model. A run's cost grows with a few amounts read off the scenario (and,
once the workload is built, off it): workload pages, pages x phases, lower-tier pages and
sections, CPUs, tagged memory ops, samples, promotions, timeline ticks, ... Each amount times
its unit cost (`UNITS`: bytes of peak memory and seconds of wall time per unit, measured on
the development machine by `python -m runtime.calibrate`, which says how) is one `Term`; the
estimate is their sum. `check` refuses a scenario whose estimate exceeds what the machine has
(memory: MemAvailable, a cgroup or `ulimit -v` limit) or the wall-time limit, with one line
naming the estimate, the term that dominates and the scenario keys that shrink it.

simulate.build checks twice: before anything is allocated (everything the scenario alone
says; samples, which need the workload's L3-miss share, count as none yet), and once the
workload is built, before the engine is (everything). The model is deliberately coarse
(within a factor of ~2 on the probes): it exists to refuse what cannot run and to say how
long a long run will take, not to predict to the second. Streaming summaries (memory flat in
simulated time) would move the per-sample, per-promotion and per-tick memory units to ~0.
"""

from __future__ import annotations

import math
import resource
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generated.ibs_mprof import IBS_NR_SAMPLES
from generated.pghot import PAGES_PER_SECTION
from runtime.errors import InputError
from runtime.memory import MIB_PAGES
from runtime.pghot.tunables import PGHOT_HINTFAULTS, PGHOT_HWHINTS
from runtime.pghot.watermarks import Watermarks
from runtime.setups import SETUPS
from runtime.workloads import Workload

KSWAPD_INTERVAL_MS = 10.0  # reference_engine.SimConfig's default
DEFAULT_MAX_WALL_S = 24 * 3600.0
"""Longest estimated run accepted: a day. A longer one is refused with the knob to turn."""


@dataclass(frozen=True)
class Unit:
    """The cost of one unit of an amount: bytes of peak memory, seconds of wall time."""

    bytes: float
    seconds: float


# Measured with `python -m runtime.calibrate` (two passes over its probes, each unit the
# slope between two runs that differ in that amount: peak RSS from VmHWM, wall time the faster
# of two runs of the whole `run` command) on the 2-core development machine (Python 3.11,
# numpy 2.4, 24 GB), with differences under 16 MiB or 50 ms taken as noise (0); last on
# 2026-12-04, after results became streaming summaries: pghot calls (records), promotions and
# tags cost time only, and the memory that follows the tag rate is the fast engine's largest
# block (block_tags), not the run's length. `pages` seconds come from bench's 256 GiB build,
# which the probe's 16 GiB step measures as noise. Against nine whole commands (default, zipf
# on 4 GiB, 64-CPU gups and microbench, reference engine, a 1 TiB CXL tier, period 1024, 2000
# ticks, demotion-heavy zipf) the estimate was 0.82x-1.35x of the wall time and 0.99x-2.0x of
# the peak memory, except the 64-CPU microbench's memory at 0.76x (every tag a sample: the
# NMI pass's per-sample arrays, also per block). Recalibrate after a change that moves memory
# or time per unit, and paste the block it prints here.
UNITS: dict[str, Unit] = {
    "base": Unit(2.13e+08, 1.67),
    "pages": Unit(45.9, 4.8e-08),  # seconds: bench's 256 GiB build (3.2 s / 67 M pages)
    "page_phases": Unit(0, 1.19e-07),
    "zipf_page_phases": Unit(92.4, 1.61e-06),
    "phases": Unit(0, 0.000274),
    "lower_pages": Unit(1, 0),
    "lower_sections": Unit(0, 7.21e-07),
    "cpus": Unit(2.54e+05, 0.000292),
    "cpu_blocks": Unit(0, 1.3e-06),
    "mem_tags": Unit(0, 6.04e-08),
    "block_tags": Unit(604, 5.22e-07),
    "tags": Unit(0, 6.92e-06),
    "samples": Unit(0, 0),
    "records": Unit(0, 7.73e-08),
    "reference_samples": Unit(0, 2.19e-05),
    "promotions": Unit(0, 1.56e-06),
    "ticks": Unit(1.21e+04, 0.00025),
    "tick_pages": Unit(0, 0),
    "demotion_rounds_pages": Unit(0, 2.61e-08),
    "demotion_pages": Unit(2, 0),
    "trace_lines": Unit(0, 4.36e-07),
    "trace_accesses": Unit(40.5, 1.22e-06),
    "llc_sets": Unit(76.3, 7.58e-07),
    "hint_faults": Unit(40, 2e-06),
    "reference_hint_faults": Unit(40, 0.00013),
    "scanned_pages": Unit(12, 2e-08),
}


@dataclass(frozen=True)
class Axis:
    """What an amount counts (for the refusal line) and which scenario keys shrink it."""

    what: str
    knob: str


_FEWER_TAGS = ("raise profiler.period, or lower duration_s, machine.ops_per_cpu_per_s or the "
               "CPU count (machine.dram_nodes x machine.cpus_per_dram_node)")
AXES: dict[str, Axis] = {
    "base": Axis("the interpreter and its libraries", ""),
    "pages": Axis("workload pages", "lower workload.region_mib (or use a shorter trace)"),
    "page_phases": Axis("workload pages x phases",
                        "lower workload.region_mib or use fewer workload.phases"),
    "zipf_page_phases": Axis("workload pages x zipf phases",
                             "lower workload.region_mib or use fewer zipf phases"),
    "phases": Axis("workload phases", "use fewer workload.phases"),
    "lower_pages": Axis("lower-tier pages (one pghot record each)",
                        "lower machine.cxl_mib or machine.cxl_nodes"),
    "lower_sections": Axis("lower-tier memory sections",
                           "lower machine.cxl_mib or machine.cxl_nodes"),
    "cpus": Axis("CPUs", "lower machine.cpus_per_dram_node or machine.dram_nodes"),
    "cpu_blocks": Axis("CPUs x engine blocks (one per kswapd, kmigrated and timeline event)",
                       "lower the CPU count or duration_s, or raise metrics.timeline_ms"),
    "mem_tags": Axis("tagged memory ops (CPUs x duration_s x ops_per_cpu_per_s / "
                     "profiler.period x mem_op_fraction)", _FEWER_TAGS),
    "block_tags": Axis("tagged memory ops in the fast engine's largest block (one CPU's tags "
                       "between two engine events, or CHUNK_CALLS of a group)",
                       _FEWER_TAGS + ", or lower metrics.timeline_ms"),
    "tags": Axis("tagged ops, one event each in the reference engine",
                 _FEWER_TAGS + ", or use engine fast"),
    "samples": Axis("samples (NMIs)", _FEWER_TAGS),
    "records": Axis("pghot_record_access calls (samples the rings keep)", _FEWER_TAGS),
    "reference_samples": Axis("samples through the reference engine",
                              _FEWER_TAGS + ", or use engine fast"),
    "promotions": Axis("promotions (at most pghot calls / pghot.freq_threshold)",
                       _FEWER_TAGS + ", or raise pghot.freq_threshold"),
    "ticks": Axis("timeline ticks", "raise metrics.timeline_ms or lower duration_s"),
    "tick_pages": Axis("timeline ticks x workload pages",
                       "raise metrics.timeline_ms, or lower duration_s or workload.region_mib"),
    "demotion_rounds_pages": Axis("kswapd rounds x workload pages (demotion reads LRU ages)",
                                  "lower duration_s or workload.region_mib, or set "
                                  "demotion.enabled false"),
    "demotion_pages": Axis("workload pages with an LRU age (demotion)",
                           "lower workload.region_mib, or set demotion.enabled false"),
    "hint_faults": Axis("NUMA hint faults (at most every page each scan pass marks)",
                        "raise numab.scan_period_min_ms or numab.scan_delay_ms, lower "
                        "numab.scan_size_mb or duration_s"),
    "reference_hint_faults": Axis("NUMA hint faults through the reference engine",
                                  "use engine fast, or raise numab.scan_period_min_ms"),
    "scanned_pages": Axis("pages NUMA balancing scans (a PTE word each)",
                          "lower workload.region_mib"),
    "trace_lines": Axis("lackey trace lines", "use a shorter lackey trace"),
    "trace_accesses": Axis("lackey data accesses", "use a shorter lackey trace"),
    "llc_sets": Axis("sets of the lackey LLC model",
                     "lower llc.size_mib or raise llc.line_bytes"),
}


@dataclass(frozen=True)
class WorkloadFacts:
    """What only the built workload knows: its pages and the share of memory ops that miss
    L3 (the samples' share with l3_miss_only); for lackey, the trace's records and data
    accesses (mem_op_fraction = data / records)."""

    pages: int
    miss_share: float
    trace_records: int = 0
    trace_data: int = 0


@dataclass(frozen=True)
class Term:
    axis: str
    amount: float
    bytes: float
    seconds: float


@dataclass(frozen=True)
class Estimate:
    terms: tuple[Term, ...]
    complete: bool  # False before the workload is built: samples not counted yet

    @property
    def memory_bytes(self) -> float:
        return sum(t.bytes for t in self.terms)

    @property
    def wall_s(self) -> float:
        return sum(t.seconds for t in self.terms)

    def term(self, axis: str) -> Term:
        return next(t for t in self.terms if t.axis == axis)

    def biggest(self, by: str) -> Term:
        return max(self.terms, key=lambda t: getattr(t, by))

    def describe(self) -> str:
        """One line for a user: the estimate and its largest parts (before the workload is
        built, a lower bound: samples are not counted yet)."""
        big = sorted((t for t in self.terms if t.axis != "base"), key=lambda t: -t.seconds)[:2]
        parts = ", ".join(f"{AXES[t.axis].what} {seconds_text(t.seconds)}" for t in big
                          if t.seconds >= 0.1)
        bound = "" if self.complete else "at least "
        return (f"estimated {bound}{seconds_text(self.wall_s)} and "
                f"{bytes_text(self.memory_bytes)} of memory" +
                (f" (mostly {parts})" if parts else ""))


def workload_facts(workload: Workload, duration_ms: float) -> WorkloadFacts:
    """A built workload's pages and L3-miss share (each phase weighted by its time in the
    run); a lackey workload's trace counts."""
    share = 0.0
    for i, phase in enumerate(workload.phases):
        end = workload.phases[i + 1].start_ms if i + 1 < len(workload.phases) else duration_ms
        span = max(min(end, duration_ms) - min(phase.start_ms, duration_ms), 0.0)
        share += span / duration_ms * phase.miss_mass.total()
    trace = workload.params.get("trace_summary", {})
    return WorkloadFacts(workload.pages, share, trace.get("ops", 0), trace.get("data_ops", 0))


FAST_CHUNK_CALLS = 65536
"""Twin of fast_engine.CHUNK_CALLS (a test holds them equal): tags per group of CPUs the fast
engine draws at once, unless one CPU alone tags more between two events."""


def block_tags(mem_tags: float, cpus: int, events: float) -> float:
    """The fast engine's largest block of memory-op tags: its arrays are the memory that
    follows the tag rate (not the run's length: a block is dropped when the next starts)."""
    per_span = mem_tags / max(events, 1.0)
    return max(per_span / max(cpus, 1), min(per_span, FAST_CHUNK_CALLS))


def amounts(scenario: dict[str, Any], facts: WorkloadFacts | None = None) -> dict[str, float]:
    """How much of each axis the scenario has (facts: once the workload is built)."""
    m, wl, prof = scenario["machine"], scenario["workload"], scenario["profiler"]
    cpus = m["dram_nodes"] * m["cpus_per_dram_node"]
    duration_ms = scenario["duration_s"] * 1000.0
    lackey = wl["kind"] == "lackey"
    if facts is not None:
        pages = facts.pages
    else:
        pages = 0 if lackey else wl["region_mib"] * MIB_PAGES
    kinds = [p["kind"] for p in wl["phases"]] if wl["kind"] == "phased" else [wl["kind"]]
    phases = len(kinds) + kinds.count("gups-shift")  # a shift is two phases
    zipf = kinds.count("zipf")
    lower_pages = m["cxl_nodes"] * m["cxl_mib"] * MIB_PAGES
    lower_sections = m["cxl_nodes"] * math.ceil(m["cxl_mib"] * MIB_PAGES / PAGES_PER_SECTION)
    tag_ops = 1.0 if prof["cnt_ctl"] else float(m["cycles_per_op"])  # a cycle period
    tags = cpus * duration_ms / 1000.0 * m["ops_per_cpu_per_s"] * tag_ops / prof["period"]
    if lackey:
        mem_fraction = facts.trace_data / facts.trace_records if facts and facts.trace_records \
            else 1.0
    else:
        mem_fraction = 1.0 if wl["kind"] == "microbench" else wl["mem_op_fraction"]
    mem_tags = tags * mem_fraction
    setup = SETUPS[scenario["setup"]]
    demotion = scenario["demotion"]["enabled"]
    if not setup.ibs:  # the LRU sampler's ops only, when kswapd reads their ages
        tags = mem_tags = tags if demotion else 0.0
    faults = hint_faults(scenario, pages) if setup.hint_faults else 0.0
    if facts is None or not setup.ibs:
        samples = records = 0.0  # not known before the workload's L3-miss share is
    else:
        samples = mem_tags * facts.miss_share if prof["l3_miss_only"] else tags
        records = mem_tags * facts.miss_share if prof["l3_miss_only"] else mem_tags
        latency = scenario["driver"]["work_latency_ms"]
        if latency > 0:  # a ring holds IBS_NR_SAMPLES - 1 until the work drains it
            records = min(records, cpus * (IBS_NR_SAMPLES - 1) * (duration_ms / latency + 1))
    sources = scenario["pghot"]["enabled_sources"]
    sources = setup.sources if sources is None else sources
    fed = records * (sources >> PGHOT_HWHINTS & 1) + (
        faults * (sources >> PGHOT_HINTFAULTS & 1) if setup.hint_faults == "pghot" else 0.0)
    promotions = fed / scenario["pghot"]["freq_threshold"] + (
        faults if setup.hint_faults == "numab2" else 0.0)
    promotes = promotions > 0
    top_pages = m["dram_nodes"] * m["dram_mib"] * MIB_PAGES
    node_pages = m["dram_mib"] * MIB_PAGES
    marks = Watermarks(m["watermark_scale_factor"],
                       lowmem_pages=top_pages + m["cxl_nodes"] * m["cxl_mib"] * MIB_PAGES)
    # kswapd has work (and the fast engine copies LRU ages for it) only when the workload's
    # pages can fill the top tier below its low watermark: by placement or by promotion
    short_of_dram = demotion and pages > top_pages - m["dram_nodes"] * \
        marks.low_pages(node_pages) and (wl["placement"] != "cxl" or promotes)
    if not short_of_dram:  # nothing moves a page back down: each is promoted at most once
        promotions = min(promotions, pages)
    # A round with work demotes at least low..promo of the top tier (or what a failed
    # promotion left), which promotions refill first: few rounds have work.
    per_round = m["dram_nodes"] * (marks.promo_pages(node_pages) - marks.low_pages(node_pages))
    rounds = min(duration_ms / KSWAPD_INTERVAL_MS, 1 + promotions / max(per_round, 1))
    events_per_ms = (1.0 / KSWAPD_INTERVAL_MS if short_of_dram else 0.0) + \
        m["cxl_nodes"] / scenario["kmigrated"]["sleep_ms"] + \
        1.0 / scenario["metrics"]["timeline_ms"]
    ticks = duration_ms / scenario["metrics"]["timeline_ms"]
    reference = scenario["engine"] == "reference"
    llc_sets = scenario["llc"]["size_mib"] * (1 << 20) / scenario["llc"]["line_bytes"] / 16
    return {
        "base": 1.0,
        "pages": pages,
        "page_phases": pages * phases,
        "zipf_page_phases": pages * zipf,
        "phases": phases,
        "lower_pages": lower_pages * (4 if scenario["pghot"]["mode"] == "precise" else 1),
        "lower_sections": lower_sections,
        "cpus": cpus,
        "cpu_blocks": 0.0 if reference else cpus * duration_ms * events_per_ms,
        "mem_tags": 0.0 if reference else mem_tags,
        "block_tags": 0.0 if reference else block_tags(mem_tags, cpus, duration_ms * events_per_ms),
        "tags": tags if reference else 0.0,
        "samples": samples,
        "records": records,
        "reference_samples": samples if reference else 0.0,
        "hint_faults": 0.0 if reference else faults,
        "reference_hint_faults": faults if reference else 0.0,
        "scanned_pages": pages if setup.hint_faults else 0.0,
        "promotions": promotions,
        "ticks": ticks,
        "tick_pages": ticks * pages,
        "demotion_rounds_pages": rounds * min(pages, mem_tags) if short_of_dram else 0.0,
        "demotion_pages": min(pages, mem_tags) if short_of_dram else 0.0,
        "trace_lines": facts.trace_records if facts else 0.0,
        "trace_accesses": facts.trace_data if facts else 0.0,
        "llc_sets": llc_sets if lackey else 0.0,
    }


def hint_faults(scenario: dict[str, Any], pages: float) -> float:
    """At most how many hint faults the run takes: every page the scanner marks, with the
    scan period doubling once per sweep of the region from its minimum (tiering mode)."""
    numab = scenario["numab"]
    per_pass = min(pages, float(numab["scan_size_mb"] * MIB_PAGES))
    if per_pass <= 0:
        return 0.0
    passes_per_sweep = math.ceil(pages / per_pass)
    first = int(numab["scan_period_min_ms"])
    t, period, marked = float(numab["scan_delay_ms"]), first, 0.0
    end = float(scenario["duration_s"]) * 1000.0
    while t < end:
        sweep = min(passes_per_sweep, math.ceil((end - t) / period))
        marked += sweep * per_pass
        t += sweep * period
        period = min(2 * period, numab["scan_period_max_ms"])
    return min(marked, pages * (end / first + 1))


def estimate(scenario: dict[str, Any], facts: WorkloadFacts | None = None,
             units: dict[str, Unit] | None = None) -> Estimate:
    """Memory and wall time of running the scenario, term by term."""
    units = UNITS if units is None else units
    terms = tuple(Term(axis, amount, amount * units[axis].bytes, amount * units[axis].seconds)
                  for axis, amount in amounts(scenario, facts).items())
    return Estimate(terms, complete=facts is not None)


@dataclass(frozen=True)
class Limits:
    """What a run may use: memory in bytes (None: unknown, not checked) and where that figure
    comes from, and the longest estimated wall time accepted."""

    memory_bytes: float | None
    memory_source: str = "MemAvailable"
    wall_s: float = DEFAULT_MAX_WALL_S


MEMORY_HEADROOM = 0.9
"""Share of the available memory a run may plan to use: the rest is for the machine's other
work and for the model's error (its memory estimates run 1x-3x the measured peaks)."""


def machine_limits(max_wall_s: float = DEFAULT_MAX_WALL_S) -> Limits:
    """MEMORY_HEADROOM of this machine's available memory (the smallest of the figures it
    has) and max_wall_s."""
    figures = available_memory()
    if not figures:
        return Limits(None, "unknown", max_wall_s)
    source, value = min(figures.items(), key=lambda item: item[1])
    return Limits(value * MEMORY_HEADROOM, f"{MEMORY_HEADROOM:.0%} of {source}", max_wall_s)


def available_memory(proc: Path = Path("/proc"),
                     cgroup: Path = Path("/sys/fs/cgroup")) -> dict[str, int]:
    """Memory this process may still take, by source: MemAvailable, a cgroup's limit minus
    its usage (v2 memory.max, v1 memory.limit_in_bytes) and `ulimit -v` minus VmSize."""
    figures: dict[str, int] = {}
    meminfo = _fields(proc / "meminfo")
    if "MemAvailable" in meminfo:
        figures["MemAvailable"] = meminfo["MemAvailable"] * 1024
    for limit, usage in (("memory.max", "memory.current"),
                         ("memory/memory.limit_in_bytes", "memory/memory.usage_in_bytes")):
        try:
            cap = (cgroup / limit).read_text().strip()
            used = int((cgroup / usage).read_text())
        except (OSError, ValueError):
            continue
        if cap.isdigit() and int(cap) < 1 << 60:
            figures[f"cgroup {Path(limit).name}"] = max(int(cap) - used, 0)
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    vm_size = _fields(proc / "self" / "status").get("VmSize")
    if soft != resource.RLIM_INFINITY and vm_size is not None:
        figures["ulimit -v"] = max(soft - vm_size * 1024, 0)
    return figures


def peak_rss_bytes() -> int:
    """This process's peak resident set: VmHWM, not ru_maxrss, which Linux carries from the
    spawning process across exec (a child would report its parent's peak)."""
    peak = _fields(Path("/proc/self/status")).get("VmHWM")
    if peak is not None:
        return peak * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _fields(path: Path) -> dict[str, int]:
    """'Name:   123 kB' lines of a /proc file as {name: number}."""
    out: dict[str, int] = {}
    try:
        text = path.read_text(encoding="ascii", errors="replace")
    except OSError:
        return out
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        number = rest.split()[:1]
        if number and number[0].isdigit():
            out[name] = int(number[0])
    return out


def check(est: Estimate, limits: Limits) -> None:
    """InputError naming the estimate, the largest term and its knob, when the run would
    need more memory than the machine has or take longer than limits.wall_s."""
    if limits.memory_bytes is not None and est.memory_bytes > limits.memory_bytes:
        term = est.biggest("bytes")
        raise InputError(
            f"scenario: needs about {bytes_text(est.memory_bytes)} of memory, more than the "
            f"{bytes_text(limits.memory_bytes)} available ({limits.memory_source}); "
            f"{bytes_text(term.bytes)} of it for {_amount(term.amount)} {AXES[term.axis].what}: "
            f"{AXES[term.axis].knob}")
    if est.wall_s > limits.wall_s:
        term = est.biggest("seconds")
        raise InputError(
            f"scenario: would take about {seconds_text(est.wall_s)} of wall time, over the "
            f"{seconds_text(limits.wall_s)} limit; {seconds_text(term.seconds)} of it for "
            f"{_amount(term.amount)} {AXES[term.axis].what}: {AXES[term.axis].knob}")


def _amount(value: float) -> str:
    return f"{value:,.0f}" if value < 1e15 else f"{value:.3g}"


def bytes_text(value: float) -> str:
    for unit, size in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20)):
        if value >= size:
            return f"{value / size:.1f} {unit}"
    return f"{value / 1024:.0f} KiB"


def seconds_text(value: float) -> str:
    for unit, size in (("years", 365 * 86400.0), ("days", 86400.0), ("h", 3600.0),
                       ("min", 60.0)):
        if value >= size:
            return f"{value / size:.1f} {unit}" if value < 1e6 * size else \
                f"{value / size:.2g} {unit}"
    return f"{value:.1f} s"

