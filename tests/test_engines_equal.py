"""Differential tests: the fast engine gives exactly the reference engine's run.

Same scenario and seed -> identical vmstat counters, the identical sequence of
pghot_record_access calls (sample time, drain time, CPU, PFN, page, READY), identical
promotions and demotions, and identical sample accounting.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import runtime.driver
import runtime.fast_engine
import runtime.pghot.batch
import runtime.sample_path
from runtime.scenario import load_scenario
from runtime.simulate import build
from tests.conftest import EXAMPLE_SCENARIOS

COLUMNS = ("sample_ms", "drain_ms", "cpu", "pfn", "page", "ready")


def run(engine: str, path: Path | None, overrides: list[str], steps: int = 1) -> Any:
    """Run a scenario, keeping every log whole; with steps > 1 in slices (a slice boundary can
    fall between a sample and the work that drains it)."""
    built = build(load_scenario(path, [f"engine={engine}", *overrides]), keep_logs=True)
    built.engine.start()
    duration = built.engine.cfg.duration_ms
    for step in range(1, steps + 1):
        built.engine.run(duration * step / steps)
    return built.engine


def nonzero(counter: Any) -> dict[str, int]:
    return {k: v for k, v in counter.items() if v}


def assert_same_run(path: Path | None, overrides: list[str], samples: bool = True,
                    steps: int = 1) -> None:
    ref = run("reference", path, overrides)
    fast = run("fast", path, overrides, steps)
    assert fast.vmstat.as_dict() == ref.vmstat.as_dict()
    assert len(fast.calls) == len(ref.calls)
    for column in COLUMNS:
        assert fast.calls.column(column).tolist() == ref.calls.column(column).tolist(), \
            column
    assert fast.pghot.promotions == ref.pghot.promotions
    assert (fast.demoter.log if fast.demoter else []) == (ref.demoter.log if ref.demoter else [])
    assert nonzero(fast.driver.outcomes) == nonzero(ref.driver.outcomes)
    assert nonzero(fast.pghot.outcomes) == nonzero(ref.pghot.outcomes)
    assert [(p.kept, nonzero(p.discards), p.lost_interrupts) for p in fast.profilers] == \
        [(p.kept, nonzero(p.discards), p.lost_interrupts) for p in ref.profilers]
    assert fast.ring_lengths() == ref.ring_lengths()
    if ref.hints is not None:
        assert fast.hints is not None
        assert fast.hints.fault_outcomes() == ref.hints.fault_outcomes()
        assert fast.hints.words.tolist() == ref.hints.words.tolist()
        assert fast.hints.scan_period_ms() == ref.hints.scan_period_ms()
        assert ref.vmstat.get("numa_hint_faults") > 0
    if ref.demoter is not None:  # (without kswapd the fast engine keeps no LRU ages)
        assert (fast.memory.last_access == ref.memory.last_access).all()
    if ref.cfg.setup.ibs:
        tags = sum(p.kept + sum(p.discards.values()) for p in ref.profilers)
        assert tags > 0
        if samples:
            assert fast.vmstat.get("hwhint_total_events") > 0


EXAMPLES = EXAMPLE_SCENARIOS
SHORT = ["machine.ops_per_cpu_per_s=4e7", "machine.cpus_per_dram_node=2"]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_every_example_runs_identically(path: Path) -> None:
    assert_same_run(path, SHORT, steps=7)


@pytest.mark.parametrize("period,steps", [(60000, 1), (60000, 100), (4000, 100)])
def test_work_pending_across_a_block_boundary_drains_the_carried_ring(period: int,
                                                                     steps: int) -> None:
    """A CPU ends a block with work pending and samples in its ring, and its next push comes
    after that work's time: the carried ring drains at the work's time, before the push."""
    assert_same_run(None, ["duration_s=0.3", "machine.ops_per_cpu_per_s=2e7",
                           "workload.region_mib=64", f"profiler.period={period}",
                           "driver.work_latency_ms=2", "llc.size_mib=4"], steps=steps)


def test_ring_full_drops_in_every_cycle() -> None:
    """Every op a missing memory op, 100 samples a ms per CPU, works 3 ms late: each cycle
    pushes about twice what the 149 slots hold, so most cycles drop."""
    overrides = ["duration_s=0.2", "workload.kind=microbench", "driver.variant=fixed",
                 "driver.work_latency_ms=3", "profiler.period=2000",
                 "machine.ops_per_cpu_per_s=2e8"]
    assert_same_run(None, overrides)
    assert run("reference", None, overrides).driver.outcomes["ring_full"] > 10_000


def test_demotion_pressure_and_fixed_driver() -> None:
    assert_same_run(None, ["duration_s=2", "machine.dram_mib=256", "driver.variant=fixed",
                           "driver.work_latency_ms=3", "profiler.period=2000",
                           "machine.ops_per_cpu_per_s=2e8"])


def test_hot_set_shift_under_demotion_pressure() -> None:
    assert_same_run(None, ["duration_s=2", "machine.dram_mib=256",
                           "machine.ops_per_cpu_per_s=2e8", "workload.kind=gups-shift",
                           "workload.shift_at_s=1"])


@pytest.mark.parametrize("mode,window", [("default", 1000), ("default", 3071),
                                         ("default", 3968), ("precise", 3073),
                                         ("precise", 16383)])
def test_windows_that_are_not_multiples_of_a_bucket(mode: str, window: int) -> None:
    """The window rule (a new window once the gap exceeds it) on bucketed and exact times, at
    windows that fall inside a 128 ms bucket and at each mode's largest."""
    assert_same_run(None, ["duration_s=2", "machine.ops_per_cpu_per_s=5e7",
                           "workload.region_mib=64", "llc.size_mib=4", f"pghot.mode={mode}",
                           f"pghot.promote_freq_window_ms={window}"], steps=3)


RATE_LIMITED = ["machine.dram_mib=128", "workload.region_mib=512", "demotion.enabled=true",
                "pghot.promote_rate_limit_MBps=1", "machine.ops_per_cpu_per_s=1e8",
                "llc.size_mib=1", "workload.hot_fraction=0.05"]
"""A 128 MiB top tier is always below pgdat_free_space_enough's 1 GiB short-cut, so every
promotion goes through the age threshold and a 256 pages/s rate limit."""


def test_rate_limited_promotion_below_the_free_space_short_cut() -> None:
    assert_same_run(None, ["duration_s=2", *RATE_LIMITED], steps=4)
    ref = run("reference", None, ["duration_s=2", *RATE_LIMITED])
    assert ref.vmstat.get("pgpromote_candidate") > ref.vmstat.get("pgpromote_success") > 0
    assert ref.vmstat.get("pgpromote_candidate_nrl") == 0


def test_past_a_minute_the_threshold_adjusts_alike() -> None:
    """kmigrated_promotion_adjust_threshold runs once 60 s have passed on the ms clock."""
    overrides = ["duration_s=65", *RATE_LIMITED, "machine.ops_per_cpu_per_s=1e7",
                 "metrics.timeline_ms=1000"]
    assert_same_run(None, overrides, steps=2)
    ref = run("reference", None, overrides)
    assert [state.threshold_ms for state in ref.pghot.promo.values()] != [0]


@pytest.mark.parametrize("chunk", [1, 37])
def test_long_blocks_in_chunks(monkeypatch: pytest.MonkeyPatch, chunk: int) -> None:
    """Blocks longer than CHUNK_CALLS go through the NMI pass in chunks."""
    monkeypatch.setattr(runtime.fast_engine, "CHUNK_CALLS", chunk)
    assert_same_run(None, ["duration_s=0.5", "machine.ops_per_cpu_per_s=1e8",
                           "machine.cpus_per_dram_node=3", "workload.region_mib=64",
                           "llc.size_mib=4"], steps=3)


def test_passes_are_sized_from_the_cpus_next_tag(monkeypatch: pytest.MonkeyPatch) -> None:
    """A kswapd round with nothing to do moves now_ms without a block: the next block's CPUs
    still go in passes of at most CHUNK_CALLS tags, counted from each CPU's next tag."""
    built = build(load_scenario(None, ["machine.cpus_per_dram_node=64", "duration_s=0.1"]))
    engine = built.engine
    assert isinstance(engine, runtime.fast_engine.FastEngine)
    engine.start()
    passes: list[list[int]] = []
    monkeypatch.setattr(engine, "_profile", lambda cpus, *rest: passes.append(cpus))
    engine.now_ms = 40.0  # where such a kswapd round leaves it; the CPUs' next tag is at dt
    tags_per_cpu = (50.0 - engine.state[0].next_tag_ms) / engine.state[0].dt_ms
    engine._block(50.0, inclusive=False)
    assert len(passes) > 1
    assert all(len(part) * tags_per_cpu <= runtime.fast_engine.CHUNK_CALLS for part in passes)
    assert sum(passes, []) == list(range(64))


def test_drains_look_up_only_the_pages_of_samples_from_earlier_blocks(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A sample pushed in the block that drains it keeps its own page (pages move only
    between blocks); one carried in the ring from an earlier block is looked up at its PFN."""
    built = build(load_scenario(None, ["duration_s=0.3", "driver.work_latency_ms=7",
                                       "machine.ops_per_cpu_per_s=1e8"]))
    engine = built.engine
    assert isinstance(engine, runtime.fast_engine.FastEngine)
    real = runtime.sample_path.BlockDrains.run
    seen = {"carried": 0, "fresh": 0}

    def checked(sink: Any, s: Any, cpus: Any, m: Any, r: Any, *rest: Any) -> None:
        held = ((r.head - r.tail) % r.pfn.shape[1])[cpus].tolist()
        first = sink.works
        real(sink, s, cpus, m, r, *rest)
        d = sink.d
        works = range(first, sink.works)  # the drains of this part's CPUs
        for cpu, carried in zip(cpus.tolist(), held, strict=True):
            popped = np.concatenate([np.arange(d.start[w], d.start[w] + d.length[w])
                                     for w in works if d.cpu[w] == cpu]
                                    or [np.zeros(0, dtype=np.int64)])
            pages = d.page[popped]
            assert (pages[:carried] == runtime.sample_path.LOOK_UP).all()
            assert (pages[carried:] == engine.memory.pages_at(d.pfn[popped][carried:])).all()
            seen["carried"] += min(carried, popped.size)
            seen["fresh"] += max(popped.size - carried, 0)

    monkeypatch.setattr(runtime.sample_path.BlockDrains, "run", checked)
    engine.start()
    engine.run()
    assert seen["carried"] > 0 and seen["fresh"] > 0


def test_block_drains_refuse_more_samples_than_the_block_tagged() -> None:
    """The drains are sized from the block's tags; the compiled loop does not check bounds,
    so more samples than that are refused before it runs (and the rings stay as they were)."""
    rings = runtime.sample_path.new_rings(2, 150)
    sink = runtime.sample_path.BlockDrains(rings, 2)
    samples = runtime.sample_path.empty_samples(3)
    with pytest.raises(AssertionError, match="more samples than the block's tags"):
        sink.run(samples, np.array([0, 1], dtype=np.int64), None, rings, 1.0, 10.0, False,
                 True, np.zeros(1, dtype=np.int64), np.zeros(1, dtype=np.int64))
    assert sink.works == sink.popped == 0 and not rings.head.any()


def test_rings_with_many_pushes_per_work_latency() -> None:
    """Many samples per work (a long latency) and one or two per work (a short one)."""
    for latency in ("0.3", "7"):
        assert_same_run(None, ["duration_s=0.4", "machine.ops_per_cpu_per_s=1e8",
                               "workload.region_mib=64", "llc.size_mib=4",
                               f"driver.work_latency_ms={latency}"], steps=3)


def test_lackey_trace(tmp_path: Path, overrides: list[str] | None = None) -> None:
    rng = random.Random(5)
    lines = []
    for i in range(3000):
        lines.extend(["I  00401000,4"] * rng.randint(1, 3))  # uneven: tags not all fetches
        page = 0x10000 + (rng.randrange(4) if rng.random() < 0.5 else rng.randrange(256))
        lines.append(f" {'LSM'[i % 3]} {page:x}{rng.randrange(64) * 64:03x},8")
    trace = tmp_path / "trace.out"
    trace.write_text("==1== Lackey\n" + "\n".join(lines) + "\n")
    scenario = tmp_path / "s.yaml"
    scenario.write_text("duration_s: 0.5\nworkload: {kind: lackey, trace: trace.out}\n"
                        "llc: {size_mib: 0.0625}\nmachine: {ops_per_cpu_per_s: 4.0e7}\n"
                        "profiler: {period: 1008}\n")
    assert_same_run(scenario, overrides or [])
    if overrides:
        assert run("reference", scenario, overrides).vmstat.get("numa_hint_faults") > 0


HINT_SETUPS = ["numab0", "numab2", "pghot-hintfaults", "pghot-both"]
SCANNED = ["duration_s=2.5", "machine.ops_per_cpu_per_s=2e7", "workload.region_mib=256",
           "numab.scan_size_mb=64"]


@pytest.mark.parametrize("setup", HINT_SETUPS)
@pytest.mark.parametrize("pressure", [False, True], ids=["room", "pressure"])
def test_every_setup_runs_identically(setup: str, pressure: bool) -> None:
    """Scan passes, hint faults (promoting in the fault, or recorded into pghot and merged
    with the IBS drains by time), the LRU sampler without IBS, and, under pressure, a hot set
    that moves while kswapd demotes and failed promotions wake it."""
    extra = ["machine.dram_mib=256", "workload.kind=gups-shift", "workload.shift_at_s=1"] \
        if pressure else []
    assert_same_run(None, [f"setup={setup}", *SCANNED, *extra], samples=False, steps=3)
    if pressure and setup == "numab2":
        ref = run("reference", None, [f"setup={setup}", *SCANNED, *extra])
        assert ref.vmstat.get("pgdemote_kswapd") > 0
        assert ref.hints is not None and ref.hints.fault_outcomes()["prepare_failed"] > 0


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(setup=st.sampled_from(HINT_SETUPS[1:]), mode=st.sampled_from(["default", "precise"]),
       window=st.sampled_from([1000, 2047, 3000]), scan_mb=st.sampled_from([16, 64, 256]),
       period_min=st.sampled_from([100, 400, 1000]), delay=st.sampled_from([0, 250, 1000]),
       hot_ms=st.sampled_from([50, 1000]), rate=st.sampled_from([1, 65536]),
       dram=st.sampled_from([128, 2048]), kind=st.sampled_from(["gups-hot", "zipf", "scan"]),
       seed=st.integers(0, 1000))
def test_random_hint_fault_scenarios(setup: str, mode: str, window: int, scan_mb: int,
                                     period_min: int, delay: int, hot_ms: int, rate: int,
                                     dram: int, kind: str, seed: int) -> None:
    """Hint-fault setups over pghot modes and windows, scan size, period and delay, the
    NUMAB2 hot threshold and rate limit, with room to spare or a top tier under pressure."""
    assert_same_run(None, [
        f"setup={setup}", f"pghot.mode={mode}", f"pghot.promote_freq_window_ms={window}",
        f"numab.scan_size_mb={scan_mb}", f"numab.scan_period_min_ms={period_min}",
        f"numab.scan_delay_ms={delay}", f"numab.hot_threshold_ms={hot_ms}",
        f"numab.promote_rate_limit_MBps={rate}", f"machine.dram_mib={dram}",
        f"workload.kind={kind}", "workload.region_mib=128", "duration_s=1.5",
        "machine.ops_per_cpu_per_s=1e7", f"seed={seed}"], samples=False, steps=2)


def test_lackey_trace_with_hint_faults(tmp_path: Path) -> None:
    """A trace's own next access is when a marked page faults."""
    test_lackey_trace(tmp_path, ["setup=pghot-both", "numab.scan_delay_ms=0",
                                 "numab.scan_period_min_ms=100"])


@settings(max_examples=16, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from(["uniform", "gups-hot", "gups-shift", "zipf", "scan"]),
       cpus=st.integers(1, 3), period=st.sampled_from([1008, 4000, 10000]),
       l3=st.booleans(),
       # (exclude_kernel, exclude_user, kernel_fraction): never a filter that drops every tag
       filters=st.sampled_from([(True, False, 0.0), (False, False, 0.0), (True, False, 0.3),
                                (False, True, 0.3), (False, False, 0.3)]),
       variant=st.sampled_from(["v7", "fixed"]),
       latency=st.sampled_from([0.0, 0.5, 2.0]), mode=st.sampled_from(["default", "precise"]),
       threshold=st.integers(1, 3), sticky=st.booleans(), dram=st.sampled_from([128, 2048]),
       demotion=st.booleans(), seed=st.integers(0, 1000))
def test_random_small_scenarios(kind: str, cpus: int, period: int, l3: bool,
                                filters: tuple[bool, bool, float], variant: str,
                                latency: float, mode: str, threshold: int, sticky: bool,
                                dram: int, demotion: bool, seed: int) -> None:
    ready = "sticky" if sticky and mode == "default" else "recomputed"
    excl, kernel = filters[:2], filters[2]
    overrides = [
        f"workload.kind={kind}", "workload.region_mib=64", f"machine.cpus_per_dram_node={cpus}",
        f"machine.dram_mib={dram}", "machine.ops_per_cpu_per_s=2e7", f"profiler.period={period}",
        f"profiler.l3_miss_only={l3}", f"profiler.exclude_kernel={excl[0]}",
        f"profiler.exclude_user={excl[1]}", f"workload.kernel_fraction={kernel}",
        f"driver.variant={variant}", f"driver.work_latency_ms={latency}", f"pghot.mode={mode}",
        f"pghot.freq_threshold={threshold}", f"pghot.ready_rule={ready}", "duration_s=0.4",
        "llc.size_mib=4", f"demotion.enabled={demotion}", f"seed={seed}",
    ]
    if kind == "gups-shift":
        overrides.append("workload.shift_at_s=0.2")
    assert_same_run(None, overrides, steps=1 + seed % 13)


@pytest.mark.parametrize("overrides", [
    ["profiler.l3_miss_only=false", "workload.kernel_fraction=0.3",
     "profiler.exclude_kernel=false", "profiler.exclude_user=true"],
    ["profiler.l3_miss_only=false", "workload.kernel_fraction=0.3",
     "profiler.exclude_kernel=true", "workload.kind=scan"],
    ["workload.mem_op_fraction=1.0", "workload.kernel_fraction=0.5",
     "profiler.exclude_kernel=true"],
    ["workload.mem_op_fraction=0.0", "profiler.l3_miss_only=false",
     "profiler.exclude_kernel=false", "workload.kernel_fraction=0.3"],
    ["workload.mem_op_fraction=1e-19", "profiler.l3_miss_only=false",
     "profiler.exclude_user=true", "profiler.exclude_kernel=false",
     "workload.kernel_fraction=0.3"],
], ids=["all-tags-user-only", "all-tags-scan-kernel-excluded", "memory-ops-only",
        "no-memory-ops", "almost-no-memory-ops"])
def test_profiler_filters_without_l3_miss_only(overrides: list[str]) -> None:
    assert_same_run(None, ["duration_s=0.3", "machine.ops_per_cpu_per_s=2e7",
                           "profiler.period=4000", *overrides])


@pytest.mark.parametrize("cpus", [2, 3])
def test_lost_interrupt_stops_the_profiler(monkeypatch: pytest.MonkeyPatch, cpus: int) -> None:
    """CPU 1's EILVT entry is masked after the driver set it up: its first kept sample latches
    and nobody hears of it, so it stops counting for good; the others go on. With 3 CPUs the
    fast engine tags CPU 1 alone, between two CPUs tagged together."""
    from runtime.driver import Driver

    init = Driver.init

    def init_then_mask(self: Driver) -> None:
        init(self)
        for entry in self.cpus[1].apic.entries:
            entry.masked = True

    monkeypatch.setattr(Driver, "init", init_then_mask)
    overrides = ["duration_s=0.3", "machine.ops_per_cpu_per_s=2e7",
                 f"machine.cpus_per_dram_node={cpus}"]
    ref = run("reference", None, overrides)
    assert [p.lost_interrupts for p in ref.profilers] == [0, 1, 0][:cpus]
    assert_same_run(None, overrides)


def test_a_cpu_programmed_with_its_own_period(monkeypatch: pytest.MonkeyPatch) -> None:
    """CPU 1 runs at twice the period of CPUs 0 and 2 (each re-arm writes it so): the fast
    engine tags it in a group of its own, after theirs, and must put the samples back in CPU
    order before the rings."""
    from generated.ibs_mprof import IbsMprofCtl
    from runtime.driver import Driver

    enable = Driver.enable_profiling

    def slower_cpu1(self: Driver, cpu: int) -> None:
        enable(self, cpu)
        if cpu == 1:
            ctl = IbsMprofCtl.decode(self.program[0])
            self._wrmsr(cpu, IbsMprofCtl.ADDRESS, ctl.replace(period=2 * ctl.period).encode())

    monkeypatch.setattr(Driver, "enable_profiling", slower_cpu1)
    overrides = ["duration_s=0.3", "machine.ops_per_cpu_per_s=2e7",
                 "machine.cpus_per_dram_node=3"]
    ref = run("reference", None, overrides)
    kept = [p.kept for p in ref.profilers]
    assert kept[1] * 3 < kept[0] + kept[2]  # about half the others' samples
    assert_same_run(None, overrides)


def test_a_page_kmigrated_moves_loses_its_pending_hint_fault() -> None:
    """Promotion drops the page's PROT_NONE hint (the PTE is rebuilt): no fault comes after it
    from a mark made on the lower tier, so with CPUs on the top tier only, no fault is local."""
    overrides = ["setup=pghot-hintfaults", *SCANNED, "numab.scan_period_min_ms=100",
                 "numab.scan_size_mb=256", "duration_s=6", "machine.ops_per_cpu_per_s=1e6"]
    # (few ops: a marked page faults long after its mark, often after its promotion)
    ref = run("reference", None, overrides)
    assert ref.vmstat.get("pgpromote_success") > 1000
    assert ref.vmstat.get("numa_hint_faults") > 2 * ref.vmstat.get("pgpromote_success")
    assert ref.vmstat.get("numa_hint_faults_local") == 0
