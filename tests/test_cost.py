"""The cost model refuses what the machine cannot run, before running it, naming the knob.

One refusal test per resource axis, each with an injected 'available' figure (Limits) just
below what the scenario needs, so the tests do not depend on this machine's memory and
assert the refusal and its wording, never a time. Each also checks that nothing was built
before the refusal (the workload builder or the trace reader is made to fail if called).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from runtime import cost
from runtime.cost import Limits, WorkloadFacts, amounts, check, estimate
from runtime.errors import InputError
from runtime.scenario import load_scenario
from runtime.simulate import build, simulate
from tests.conftest import run_cli

GIB = float(1 << 30)


def scenario(*overrides: str, path: Path | None = None) -> dict[str, Any]:
    return load_scenario(path, list(overrides))


def just_below(est: cost.Estimate, by: str) -> Limits:
    """Limits that the estimate exceeds by one unit, on axis `by` (memory or wall)."""
    if by == "memory":
        return Limits(est.memory_bytes - 1, "test figure", wall_s=float("inf"))
    return Limits(None, "unchecked", wall_s=est.wall_s - 1e-6)


@pytest.fixture
def nothing_built(monkeypatch: pytest.MonkeyPatch) -> None:
    """A refusal must come before the workload is built or a trace read."""
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("built before the cost check")

    monkeypatch.setattr("runtime.simulate.build_workload", refuse)
    monkeypatch.setattr("runtime.simulate.lackey_workload", refuse)
    monkeypatch.setattr("runtime.simulate.build_topology", refuse)


# --- one refusal per axis, before anything is allocated --------------------------------------

SCENARIO_AXES = {
    # axis: (overrides, what the line says, the knob it names, memory or wall)
    "pages": (["workload.region_mib=65536", "machine.cxl_mib=65536", "workload.kind=uniform"],
              "workload pages",
              "workload.region_mib", "memory"),
    "page_phases": (["workload.kind=phased", "workload.region_mib=65536",
                     "machine.cxl_mib=65536", "machine.ops_per_cpu_per_s=1000",
                     "workload.phases=[" + ", ".join(
                         ["{kind: uniform, duration_s: 0.001}"] * 1000) + "]"],
                    "workload pages x phases", "fewer workload.phases", "wall"),
    "lower_pages": (["machine.cxl_mib=16777216", "machine.cxl_nodes=8"],
                    "lower-tier pages (one pghot record each)", "machine.cxl_mib", "memory"),
    "cpus": (["machine.cpus_per_dram_node=1024", "machine.dram_nodes=16",
              "machine.ops_per_cpu_per_s=1000"], "CPUs", "machine.cpus_per_dram_node",
             "memory"),
    "ticks": (["duration_s=3600", "metrics.timeline_ms=1", "machine.ops_per_cpu_per_s=1000"],
              "timeline ticks", "metrics.timeline_ms", "memory"),
    "mem_tags": (["duration_s=3600", "profiler.period=16", "machine.ops_per_cpu_per_s=1e11"],
                 "tagged memory ops", "raise profiler.period", "wall"),
    "tags": (["engine=reference", "duration_s=3600"], "tagged ops, one event each in the "
             "reference engine", "use engine fast", "wall"),
    "cpu_blocks": (["machine.cpus_per_dram_node=1024", "machine.dram_nodes=64",
                    "machine.ops_per_cpu_per_s=1000", "duration_s=3600",
                    "metrics.timeline_ms=10"], "CPUs x engine blocks", "lower the CPU count",
                   "wall"),
}


@pytest.mark.parametrize("axis", SCENARIO_AXES, ids=SCENARIO_AXES)
def test_each_axis_is_refused_before_anything_is_built(axis: str, nothing_built: None) -> None:
    overrides, what, knob, by = SCENARIO_AXES[axis]
    s = scenario(*overrides)
    est = estimate(s)
    assert est.biggest("bytes" if by == "memory" else "seconds").axis == axis
    with pytest.raises(InputError) as info:
        build(s, just_below(est, by))
    message = str(info.value)
    assert message.startswith("scenario: needs about " if by == "memory" else
                              "scenario: would take about ")
    assert f" for {cost._amount(est.term(axis).amount)} {what}" in message and knob in message
    assert "test figure" in message if by == "memory" else "limit" in message
    check(est, Limits(est.memory_bytes, wall_s=est.wall_s))  # exactly enough: accepted


def test_samples_are_refused_once_the_workload_says_how_many_miss() -> None:
    """pghot calls grow with the L3-miss share, known only once the workload is built: the
    first check passes, the second refuses, before the engine exists. They cost time, not
    memory: results are streaming summaries."""
    s = scenario("duration_s=3600", "machine.cpus_per_dram_node=8", "workload.region_mib=64",
                 "llc.size_mib=1")
    first = estimate(s)
    assert first.term("records").amount == 0  # unknown yet
    facts = WorkloadFacts(pages=16384, miss_share=0.9)
    full = estimate(s, facts)
    records = full.term("records")
    assert records.amount > 0 and records.bytes == 0 and records.seconds > 0
    assert full.wall_s > first.wall_s
    limits = Limits(None, "unchecked", wall_s=(first.wall_s + full.wall_s) / 2)

    def no_engine(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("engine built before the second check")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("runtime.simulate.FastEngine", no_engine)
        with pytest.raises(InputError, match=r"^scenario: would take about ") as info:
            build(s, limits)
    assert full.biggest("seconds").axis == "records"  # 3600 s of every tag a miss
    assert "pghot_record_access calls" in str(info.value) and "raise profiler.period" in str(
        info.value)


def test_a_trace_larger_than_memory_is_refused_while_reading(tmp_path: Path) -> None:
    lines = "".join(f" L {0x1000 + 64 * i:08x},8\n" for i in range(5000))
    (tmp_path / "t.out").write_text(lines)
    (tmp_path / "s.yaml").write_text("workload:\n  kind: lackey\n  trace: t.out\n")
    s = scenario(path=tmp_path / "s.yaml")
    first = estimate(s)
    room = 1000 * cost.UNITS["trace_accesses"].bytes  # a thousand accesses fit
    with pytest.raises(InputError, match=r"t\.out: more than 1,000 data accesses \(after 1,000 "
                       r"records\), more than the memory available holds; use a shorter trace"):
        build(s, Limits(first.memory_bytes + room, "test figure", float("inf")))
    build(s, Limits(first.memory_bytes + 6000 * cost.UNITS["trace_accesses"].bytes, "x",
                    float("inf")))


def test_the_lackey_cache_model_is_counted_by_its_sets(tmp_path: Path,
                                                       nothing_built: None) -> None:
    (tmp_path / "s.yaml").write_text("workload:\n  kind: lackey\n  trace: t.out\nllc:\n"
                                     "  size_mib: 4096\n  line_bytes: 16\n")
    s = scenario(path=tmp_path / "s.yaml")
    est = estimate(s)
    assert est.term("llc_sets").amount == 4096 * 2 ** 20 / 16 / 16
    with pytest.raises(InputError, match="sets of the lackey LLC model: lower llc.size_mib"):
        build(s, just_below(est, "memory"))


# --- the amounts -----------------------------------------------------------------------------

def test_amounts_follow_the_scenario() -> None:
    a = amounts(scenario("machine.cpus_per_dram_node=4", "machine.dram_nodes=2",
                         "duration_s=2", "profiler.period=1024",
                         "machine.ops_per_cpu_per_s=1e9"))
    assert a["cpus"] == 8 and a["pages"] == 262144 and a["phases"] == 1
    assert a["mem_tags"] == pytest.approx(8 * 2 * 1e9 / 1024 * 0.3)
    assert a["ticks"] == 20 and a["records"] == 0  # before the workload is known
    cycles = amounts(scenario("profiler.cnt_ctl=false", "machine.cycles_per_op=3"))
    ops = amounts(scenario())
    assert cycles["mem_tags"] == pytest.approx(3 * ops["mem_tags"])  # a period of cycles
    assert amounts(scenario("workload.kind=gups-shift"))["phases"] == 2
    micro = amounts(scenario("workload.kind=microbench"))
    assert micro["mem_tags"] == pytest.approx(ops["mem_tags"] / 0.3)
    precise = amounts(scenario("pghot.mode=precise"))
    assert precise["lower_pages"] == 4 * ops["lower_pages"]  # a 32-bit record a page


def test_pghot_calls_are_bounded_by_what_the_rings_keep() -> None:
    s = scenario("duration_s=1", "machine.ops_per_cpu_per_s=1e11", "workload.kind=microbench")
    full = amounts(s, WorkloadFacts(pages=262144, miss_share=1.0))
    assert full["samples"] == pytest.approx(2 * 1e11 / 10000)
    assert full["records"] == 2 * 149 * (1000 / 1 + 1)  # 149 slots per 1 ms work latency
    drained = amounts(scenario("duration_s=1", "machine.ops_per_cpu_per_s=1e11",
                               "workload.kind=microbench", "driver.work_latency_ms=0"),
                      WorkloadFacts(pages=262144, miss_share=1.0))
    assert drained["records"] == drained["samples"]


def test_promotions_are_at_most_the_pages_unless_demotion_can_bring_them_back() -> None:
    facts = WorkloadFacts(pages=262144, miss_share=1.0)
    fits = amounts(scenario("duration_s=60"), facts)  # 1 GiB region, 2 GiB DRAM: no demotion
    assert fits["promotions"] == 262144 and fits["demotion_rounds_pages"] == 0
    big = WorkloadFacts(pages=1 << 20, miss_share=1.0)
    tight = amounts(scenario("duration_s=60", "workload.region_mib=4096"), big)
    assert tight["promotions"] == tight["records"] / 2  # freq_threshold 2
    assert tight["demotion_rounds_pages"] > 0
    off = amounts(scenario("duration_s=60", "workload.region_mib=4096", "demotion.enabled=false"),
                  big)
    assert off["promotions"] == 1 << 20 and off["demotion_rounds_pages"] == 0
    no_ibs = amounts(scenario("duration_s=60", "workload.region_mib=4096",
                              "pghot.enabled_sources=1"), big)
    assert no_ibs["promotions"] == 0 and no_ibs["demotion_rounds_pages"] == 0


def test_the_report_carries_the_estimate_next_to_what_happened() -> None:
    result = simulate(scenario("duration_s=0.2", "workload.region_mib=64"))
    engine = result["engine"]
    assert engine["estimated_wall_s"] > 0 and engine["estimated_memory_bytes"] > 0
    assert engine["peak_memory_bytes"] > 0
    assert engine["cost_amounts"]["pages"] == 16384
    assert engine["cost_amounts"]["records"] > 0  # the full estimate, with the miss share


# --- the machine's figure --------------------------------------------------------------------

def test_available_memory_is_the_smallest_figure(tmp_path: Path) -> None:
    proc, cgroup = tmp_path / "proc", tmp_path / "cgroup"
    (proc / "self").mkdir(parents=True)
    (proc / "meminfo").write_text("MemTotal:  32000000 kB\nMemAvailable:   1000000 kB\n")
    (proc / "self" / "status").write_text("VmSize:  100 kB\n")
    assert cost.available_memory(proc, cgroup) == {"MemAvailable": 1_024_000_000}
    cgroup.mkdir()
    (cgroup / "memory.max").write_text("524288000\n")
    (cgroup / "memory.current").write_text("24288000\n")
    assert cost.available_memory(proc, cgroup)["cgroup memory.max"] == 500_000_000
    (cgroup / "memory.max").write_text("max\n")  # no limit
    assert "cgroup memory.max" not in cost.available_memory(proc, cgroup)
    v1 = cgroup / "memory"
    v1.mkdir()
    (v1 / "memory.limit_in_bytes").write_text(f"{1 << 62}\n")  # v1's 'no limit'
    (v1 / "memory.usage_in_bytes").write_text("1\n")
    assert set(cost.available_memory(proc, cgroup)) == {"MemAvailable"}


def test_machine_limits_name_their_source(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cost, "available_memory", lambda: {"MemAvailable": 8 << 30,
                                                           "cgroup memory.max": 1 << 30})
    limits = cost.machine_limits()
    assert limits.memory_bytes == (1 << 30) * cost.MEMORY_HEADROOM
    assert limits.memory_source == "90% of cgroup memory.max"
    monkeypatch.setattr(cost, "available_memory", dict)
    assert cost.machine_limits().memory_bytes is None  # unknown: not checked


# --- the command line ------------------------------------------------------------------------

def test_cli_refuses_the_documented_maxima_in_one_line(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run_cli("run", "--out", str(out), "--set", "machine.dram_nodes=64", "--set",
                     "machine.cxl_nodes=64", "--set", "machine.cpus_per_dram_node=1024",
                     "--set", "machine.dram_mib=16777216", "--set", "machine.cxl_mib=16777216",
                     "--set", "workload.region_mib=4194304", "--set", "profiler.period=16",
                     "--set", "machine.ops_per_cpu_per_s=1e11", "--set", "duration_s=3600")
    lines = result.stderr.splitlines()
    assert result.returncode == 2 and result.stdout == "" and len(lines) == 1
    assert lines[0].startswith(("ibs-mprof: error: scenario: needs about ",
                                "ibs-mprof: error: scenario: would take about "))
    assert not out.exists()


def test_estimate_text_names_its_largest_parts() -> None:
    est = estimate(scenario("duration_s=3600", "profiler.period=16",
                            "machine.ops_per_cpu_per_s=1e11"))
    text = est.describe()
    assert text.startswith("estimated ") and "tagged memory ops" in text
    assert dataclasses.replace(est, terms=est.terms[:1]).describe() == \
        f"estimated at least {cost.seconds_text(est.terms[0].seconds)} and " \
        f"{cost.bytes_text(est.terms[0].bytes)} of memory"  # base alone; samples not known
    full = estimate(scenario(), WorkloadFacts(pages=262144, miss_share=0.2))
    assert full.describe().startswith("estimated ") and "at least" not in full.describe()


def test_fast_chunk_calls_twins_the_engines() -> None:
    """cost.FAST_CHUNK_CALLS is fast_engine.CHUNK_CALLS's twin: the block memory the estimate
    charges is the block the engine draws."""
    from runtime.fast_engine import CHUNK_CALLS

    assert cost.FAST_CHUNK_CALLS == CHUNK_CALLS


def test_memory_follows_the_block_not_the_run_length() -> None:
    """Results are streaming summaries: 60 times longer costs the timeline's rows, nothing
    per tag or per pghot call; a block of a CPU's tags between two events is the part that
    follows the tag rate."""
    host = ("machine.cpus_per_dram_node=64", "machine.dram_mib=16384")
    short, long = (estimate(scenario(*host, f"duration_s={s}"), WorkloadFacts(16384, 0.9))
                   for s in (10, 600))
    assert long.term("block_tags").bytes == short.term("block_tags").bytes > 0
    extra = long.memory_bytes - short.memory_bytes
    assert extra == pytest.approx(long.term("ticks").bytes - short.term("ticks").bytes)
    # a group of CPUs draws up to a chunk together; one CPU alone may tag more in a span
    assert cost.block_tags(1e6, 2, 10) == cost.FAST_CHUNK_CALLS  # 1e5 a span, 5e4 a CPU
    assert cost.block_tags(1e6, 64, 100) == 1e4  # a span's tags, under one chunk
    assert cost.block_tags(1e8, 4, 10) == 2.5e6  # one CPU's span, over a chunk
