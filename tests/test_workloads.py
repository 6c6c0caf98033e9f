"""The synthetic op streams: one draw sequence whatever the batching, and the distributions the
scenario asks for (memory-op fraction, load fraction, page probabilities, L3 misses)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.draws import MAX_GAP, gap_factor, geometric_gap, other_bit
from runtime.pageruns import PageRuns
from runtime.profiler import PAGE_OFFSET_MASK
from runtime.workloads import (
    Phase,
    SyntheticOps,
    Workload,
    build_workload,
    gups_probs,
    shared_times,
)


def uniform_ops(m: float, kernel: float = 0.3, cpus: int = 2, load: float = 0.4) -> SyntheticOps:
    spec = {"kind": "uniform", "region_mib": 4, "mem_op_fraction": m, "load_fraction": load,
            "kernel_fraction": kernel, "placement": "cxl"}
    return SyntheticOps(build_workload(spec, 1 << 20, 64, seed=7), 7, cpus)


def one_by_one(ops: SyntheticOps, cpu: int, times: list[float]) -> list[object]:
    """tagged_op per tag: a memory op's (page, miss, offset, load, kernel), else its RIP bit."""
    out: list[object] = []
    for t in times:
        op = ops.tagged_op(cpu, 0, t)
        out.append((op.page, op.l3_miss, op.vaddr & PAGE_OFFSET_MASK, op.load, op.kernel)
                   if op.load or op.store else op.kernel)
    return out


def in_batches(ops: SyntheticOps, cpu: int, times: np.ndarray, cuts: list[int],
               non_memory: bool = True) -> list[object]:
    out: list[object] = []
    at = 0
    for tags in cuts:
        b = ops.tagged_batches([cpu], [0], 10000, [times[at:at + tags]], non_memory)
        other = iter(b.other_kernel.tolist()) if b.other_kernel is not None else None
        mem = dict(zip(b.at.tolist(), zip(b.page.tolist(), b.l3_miss.tolist(),
                                          b.offset.tolist(), b.load.tolist(),
                                          b.kernel.tolist(), strict=True), strict=True))
        out += [mem[t] if t in mem else next(other) if other is not None else None
                for t in range(tags)]
        at += tags
    return out


@settings(max_examples=40, deadline=None)
@given(m=st.sampled_from([0.0, 0.05, 0.3, 0.999, 1.0]),
       kernel=st.sampled_from([0.0, 0.3, 1.0]),
       cuts=st.lists(st.integers(0, 9000), min_size=1, max_size=6))
def test_blocks_in_any_cuts_equal_tags_one_by_one(m: float, kernel: float,
                                                  cuts: list[int]) -> None:
    """draw_group (compiled, a block at a time) and tagged_op (interpreted, a tag at a time)
    consume the streams alike, whatever the block boundaries."""
    times = np.cumsum(np.full(sum(cuts), 0.01))
    assert in_batches(uniform_ops(m, kernel), 1, times, cuts) == \
        one_by_one(uniform_ops(m, kernel), 1, times.tolist())


def test_skipped_non_memory_bits_are_the_ones_the_reference_draws() -> None:
    """The fast engine skips the RIP bits of non-memory tags under L3MissOnly; asking later,
    by ordinal, gives what drawing them one by one gives; asking again for a bit already
    drawn past is refused."""
    times = np.cumsum(np.full(30_000, 0.01))
    ref = one_by_one(uniform_ops(0.3), 0, times.tolist())
    fast = uniform_ops(0.3)
    skipped = in_batches(fast, 0, times[:20_000], [20_000], non_memory=False)
    assert [x for x in skipped if x is not None] == [x for x in ref[:20_000]
                                                    if isinstance(x, tuple)]
    assert in_batches(fast, 0, times[20_000:], [10_000]) == ref[20_000:]
    rng = np.random.default_rng(1)
    _, drawn = other_bit(rng, 5, 0, 0.3)
    assert drawn == 6
    with pytest.raises(ValueError):
        other_bit(rng, drawn - 1, drawn, 0.3)


def test_cpus_sharing_one_times_array_draw_what_their_own_copies_give() -> None:
    """CPUs in step are handed one array of tag times; draw_group reads each CPU's rows from
    where shared_times says they start, so sharing (with a CPU of its own between) draws
    what a copy per CPU draws."""
    t, u = np.arange(500, dtype=np.float64) * 0.5, np.arange(300, dtype=np.float64) * 0.7
    joined, firsts = shared_times([t, u, t, t])
    assert firsts.tolist() == [0, 500, 0, 0] and joined.tolist() == t.tolist() + u.tolist()
    cpus = [0, 1, 2, 3]
    shared = uniform_ops(0.3, cpus=4).tagged_batches(cpus, [0] * 4, 10000, [t, u, t, t], True)
    copies = uniform_ops(0.3, cpus=4).tagged_batches(
        cpus, [0] * 4, 10000, [t.copy(), u.copy(), t.copy(), t.copy()], True)
    for name in ("cpu", "at", "when", "page", "offset", "load", "kernel", "l3_miss"):
        assert getattr(shared, name).tolist() == getattr(copies, name).tolist(), name
    assert shared.other_kernel.tolist() == copies.other_kernel.tolist()
    assert set(shared.when[shared.cpu == 1].tolist()) <= set(u.tolist())


@pytest.mark.parametrize("m", [0.05, 0.3, 0.9])
def test_memory_op_fraction_and_attributes(m: float) -> None:
    tags = 400_000
    d = uniform_ops(m).tagged_batches([0], [0], 10000, [np.arange(tags, dtype=np.float64)],
                                      False)
    n = d.at.size
    sd = np.sqrt(tags * m * (1 - m))
    assert abs(n - tags * m) < 5 * sd  # each tag a memory op with probability m
    assert np.all(np.diff(d.at) > 0) and d.at[0] >= 0 and d.at[-1] < tags
    assert abs(d.load.mean() - 0.4) < 5 * np.sqrt(0.24 / n)
    assert abs(d.kernel.mean() - 0.3) < 5 * np.sqrt(0.21 / n)
    assert d.offset.min() == 0 and d.offset.max() == 63 * 64
    # gaps are geometric: the fraction of memory ops right after another one is m
    assert abs(np.mean(np.diff(d.at) == 1) - m) < 5 * np.sqrt(m * (1 - m) / n)


def test_no_memory_ops_at_all() -> None:
    ops = uniform_ops(0.0)
    assert ops.tagged_batches([0], [0], 10000, [np.arange(10_000.0)], False).at.size == 0
    op = ops.tagged_op(1, 0, 0.0)
    assert not (op.load or op.store) and op.page is None


def probs_cases() -> list[np.ndarray]:
    gups = gups_probs(1000, 1 / 16, 0.9, 300)[0].expand()
    zipf = 1.0 / np.arange(1, 5001) ** 0.99
    holes = np.array([0.0, 0.2, 0.2, 0.0, 0.1, 0.5, 0.0])
    steps = np.repeat(np.arange(1.0, 101.0), 7)  # 100 runs: the plain binary search
    return [gups, zipf / zipf.sum(), np.full(64, 1 / 64), holes, steps / steps.sum()]


def sample_pages(probs: np.ndarray, u: np.ndarray) -> list[int]:
    """The page of each uniform, as the reference finds it (lists, interpreted)."""
    ops = SyntheticOps(Workload("t", probs.size, [Phase(0.0, PageRuns.from_array(probs),
                                                        PageRuns.constant(probs.size, 1.0),
                                                        "t")]), 1, 1)
    pages = []
    for x in u.tolist():  # each uniform as the drawn u_page of one memory op
        ops.state.u_page[0], ops.state.u_miss[0], ops.state.held[0] = x, 0.5, 1
        ops.state.pos[0] = ops.state.tag[0]
        page = ops.tagged_op(0, 0, 0.0).page
        assert page is not None
        pages.append(page)
    return pages


@pytest.mark.parametrize("probs", probs_cases(),
                         ids=["gups", "zipf", "uniform", "holes", "steps"])
def test_page_sampler_follows_probs(probs: np.ndarray) -> None:
    u = np.random.default_rng(3).random(100_000)
    u[:3] = [0.0, np.nextafter(1.0, 0.0), 0.5]  # the ends of the unit interval
    pages = np.array(sample_pages(probs, u))
    assert pages.min() >= 0 and pages.max() < probs.size
    assert np.all(probs[pages] > 0)  # never a page of zero probability
    counts = np.bincount(pages, minlength=probs.size)
    expected = probs * u.size
    big = expected > 50
    assert np.all(np.abs(counts[big] - expected[big]) < 6 * np.sqrt(expected[big]) + 1)


@pytest.mark.parametrize("per_page_miss", [False, True], ids=["per-run miss", "per-page miss"])
def test_synthetic_ops_batch_equals_one_by_one_across_a_phase_change(per_page_miss: bool) -> None:
    """The cache model's miss probabilities are equal within a run of equal probabilities
    (looked up per run); a miss model that is not takes the per-page lookup."""
    spec = {"kind": "gups-shift", "region_mib": 16, "hot_fraction": 0.0625,
            "hot_access_fraction": 0.9, "hot_offset_fraction": 0.0, "shift_fraction": 0.5,
            "shift_at_s": 0.005, "mem_op_fraction": 0.3, "load_fraction": 0.5,
            "kernel_fraction": 0.2, "placement": "cxl"}
    wl = build_workload(spec, 1 << 20, 64, seed=3)
    if per_page_miss:
        rng = np.random.default_rng(4)
        wl.phases = [dataclasses.replace(p, miss=PageRuns.from_array(rng.random(wl.pages)))
                     for p in wl.phases]
    assert SyntheticOps(wl, 3, 2).tables.miss_aligned.tolist() == [int(not per_page_miss)] * 2
    times = np.cumsum(np.full(3000, 0.01))
    fast, ref = SyntheticOps(wl, 3, 2), SyntheticOps(wl, 3, 2)
    batch = fast.tagged_batches([1], [0], 10000, [times], non_memory=True)
    ops = [ref.tagged_op(1, 0, t) for t in times.tolist()]
    memory = [i for i, op in enumerate(ops) if op.load or op.store]
    assert batch.at.tolist() == memory
    assert batch.page.tolist() == [ops[i].page for i in memory]
    assert batch.l3_miss.tolist() == [ops[i].l3_miss for i in memory]
    assert batch.offset.tolist() == [ops[i].vaddr & PAGE_OFFSET_MASK for i in memory]
    assert batch.load.tolist() == [ops[i].load for i in memory]
    assert batch.kernel.tolist() == [ops[i].kernel for i in memory]
    assert batch.other_kernel is not None
    assert batch.other_kernel.tolist() == [op.kernel for op in ops if not (op.load or op.store)]
    # the shift at 5 ms moves half of the hot set: both halves of the run see their own set
    assert batch.when.tolist() == times[batch.at].tolist() and set(batch.cpu.tolist()) == {1}
    early = batch.page[batch.when < 5.0]
    late = batch.page[batch.when >= 5.0]
    probs = wl.phases[0].probs.expand()
    hot = probs > probs.min()
    assert hot[early].mean() > 0.5 and hot[late].mean() < hot[early].mean()


def test_several_cpus_in_one_batch_equal_each_alone() -> None:
    spec = {"kind": "scan", "region_mib": 16, "scan_mib_per_s": 4096.0,
            "mem_op_fraction": 0.5, "load_fraction": 0.5, "kernel_fraction": 0.2,
            "placement": "cxl"}
    wl = build_workload(spec, 1 << 20, 64, seed=1)
    times = [np.cumsum(np.full(n, 0.01)) for n in (500, 0, 1200)]
    together = SyntheticOps(wl, 1, 3).tagged_batches([0, 1, 2], [0, 0, 0], 10000, times, True)
    alone = SyntheticOps(wl, 1, 3)
    parts = [alone.tagged_batches([c], [0], 10000, [t], True) for c, t in enumerate(times)]
    for name in ("cpu", "at", "when", "page", "offset", "l3_miss", "load", "kernel",
                 "other_kernel"):
        assert getattr(together, name).tolist() == \
            np.concatenate([getattr(p, name) for p in parts]).tolist(), name
    # each CPU sweeps its own share of the region (scan offsets differ per CPU)
    first = {c: int(together.page[together.cpu == c][0]) for c in (0, 2)}
    assert first[0] < wl.pages // 3 <= 2 * wl.pages // 3 <= first[2]


@pytest.mark.parametrize("mib_per_s", [0.5, 4096.0], ids=["slow", "fast"])
def test_a_scan_follows_the_clock_at_any_speed(mib_per_s: float) -> None:
    """A sweep's page is the clock's, from the CPU's share of the region, in both engines,
    even below a page per millisecond (0.5 MiB/s is 0.128 pages/ms)."""
    spec = {"kind": "scan", "region_mib": 16, "scan_mib_per_s": mib_per_s,
            "mem_op_fraction": 0.5, "load_fraction": 0.5, "kernel_fraction": 0.2,
            "placement": "cxl"}
    wl = build_workload(spec, 1 << 20, 64, seed=1)
    times = np.cumsum(np.full(4000, 2.5))
    fast = SyntheticOps(wl, 1, 2).tagged_batches([1], [0], 10000, [times], True)
    per_ms = mib_per_s * 256 / 1000
    assert fast.page.tolist() == ((fast.when * per_ms).astype(np.int64) + wl.pages // 2) \
        .__mod__(wl.pages).tolist()
    assert in_batches(SyntheticOps(wl, 1, 2), 1, times, [4000]) == \
        one_by_one(SyntheticOps(wl, 1, 2), 1, times.tolist())


def test_certain_outcomes_take_no_draw_and_still_hold() -> None:
    """Every tag a memory op, every op a load, none in the kernel: 2 raw words per op (the
    page's, then the miss's and the line's), so the stream differs from one with real coins,
    but both engines still read it alike."""
    sure = uniform_ops(1.0, kernel=0.0, load=1.0)
    d = sure.tagged_batches([0], [0], 10000, [np.arange(5000.0)], True)
    assert d.at.tolist() == list(range(5000))
    assert d.load.all() and not d.kernel.any()
    assert d.other_kernel is not None and d.other_kernel.size == 0
    words = np.random.default_rng([7, 0]).bit_generator.random_raw((5000, 2))  # by hand
    assert (d.offset // 64).tolist() == (((words[:, 1] & 0xFFFFFFFF) * 64) >> 32).tolist()
    u_page = (words[:, 0] >> 11).astype(np.float64) * 2.0 ** -53
    assert d.page.tolist() == sample_pages(np.full(1024, 1 / 1024), u_page)
    assert one_by_one(uniform_ops(1.0, kernel=0.0, load=1.0), 0, list(range(5000))) == \
        in_batches(uniform_ops(1.0, kernel=0.0, load=1.0), 0, np.arange(5000.0), [5000])



@pytest.mark.parametrize(("load", "kernel"), [(0.4, 0.2), (1.0, 0.2), (0.4, 0.0)])
def test_every_uncertain_coin_reads_four_words_per_op(load: float, kernel: float) -> None:
    """With the gap and a load or kernel coin to draw, a memory op takes four raw words,
    whose fields are read by hand here: the page's uniform from the first's top 53 bits; the
    gap from the second's, as 1 - u, through log; the miss uniform and the line from the
    third's high and low halves; the load and kernel uniforms from the fourth's (a certain
    coin leaves its half unread)."""
    ops = uniform_ops(0.3, kernel=kernel, load=load)
    d = ops.tagged_batches([0], [0], 10000, [np.arange(3000.0)], False)
    words = np.random.default_rng([7, 0]).bit_generator.random_raw((d.at.size, 4))
    gaps = np.floor(np.log((2 ** 53 - (words[:, 1] >> 11)).astype(np.float64) * 2.0 ** -53) /
                    math.log1p(-0.3)).astype(np.int64)
    assert d.at.tolist() == (np.cumsum(gaps + 1) - 1).tolist()
    assert (d.offset // 64).tolist() == (((words[:, 2] & 0xFFFFFFFF) * 64) >> 32).tolist()
    miss = ops.workload.phases[0].miss.of(d.page)
    assert d.l3_miss.tolist() == ((words[:, 2] >> 32) * 2.0 ** -32 < miss).tolist()
    assert d.load.tolist() == ((words[:, 3] >> 32) * 2.0 ** -32 < load).tolist()
    assert d.kernel.tolist() == ((words[:, 3] & 0xFFFFFFFF) * 2.0 ** -32 < kernel).tolist()
    u_page = (words[:, 0] >> 11).astype(np.float64) * 2.0 ** -53
    assert d.page.tolist() == sample_pages(np.full(ops.workload.pages, 1 / ops.workload.pages),
                                           u_page)
    assert abs(d.load.mean() - load) < 0.1 and abs(d.kernel.mean() - kernel) < 0.1
    assert 0 < d.l3_miss.sum() < d.l3_miss.size


def test_a_subnormal_memory_fraction_keeps_a_finite_gap_factor() -> None:
    """1 / log1p(-mem) overflows for a subnormal fraction; the factor is held finite, so the
    one uniform that makes log 0 (v = 1) still gives gap 0, and any other the longest gap."""
    factor = gap_factor(1e-320)
    assert math.isfinite(factor)
    assert geometric_gap(1.0, factor) == 0
    assert geometric_gap(1.0 - 2.0 ** -53, factor) == geometric_gap(2.0 ** -53, factor) == \
        int(MAX_GAP)

def test_phases_out_of_order_are_refused() -> None:
    """Both engines find the running phase by start time; build_workload refuses a phase list
    that is not in time order (the scenario check keeps shifts inside their phase)."""
    spec = {"kind": "phased", "region_mib": 16, "mem_op_fraction": 0.3, "load_fraction": 0.5,
            "kernel_fraction": 0.0, "placement": "cxl", "phases": [
                {"kind": "gups-shift", "duration_s": 0.1, "shift_at_s": 0.3, "hot_fraction": 0.1,
                 "hot_access_fraction": 0.9, "hot_offset_fraction": 0.0, "shift_fraction": 0.5},
                {"kind": "uniform", "duration_s": 0.4}]}
    with pytest.raises(ValueError, match="out of order"):
        build_workload(spec, 1 << 20, 64, seed=1)


def test_no_non_memory_bits_asked_for() -> None:
    ops = uniform_ops(0.3)
    empty = ops.tagged_batches([0], [0], 10000, [np.zeros(0)], True)
    assert empty.at.size == 0 and empty.other_kernel is not None and \
        empty.other_kernel.size == 0
    assert ops.tagged_batches([0], [0], 10000, [np.arange(3.0)], False).other_kernel is None
