"""The synthetic op streams: one draw sequence whatever the batching, and the distributions the
scenario asks for (memory-op fraction, load fraction, page probabilities, L3 misses)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.pageruns import PageRuns
from runtime.profiler import PAGE_OFFSET_MASK
from runtime.workloads import (
    DRAW_CHUNK,
    DrawStream,
    PageSampler,
    SyntheticOps,
    build_workload,
    gups_probs,
)


def stream(m: float, kernel: float = 0.3) -> DrawStream:
    return DrawStream(seed=7, cpu=1, mem_op_fraction=m, load_fraction=0.4,
                      kernel_fraction=kernel, lines_per_page=64)


@settings(max_examples=40, deadline=None)
@given(m=st.sampled_from([0.0, 0.05, 0.3, 0.999, 1.0]),
       cuts=st.lists(st.integers(0, 9000), min_size=1, max_size=6))
def test_take_in_any_batches_equals_next_one_by_one(m: float, cuts: list[int]) -> None:
    one, many = stream(m), stream(m)
    singles = []
    for _ in range(sum(cuts)):
        drawn = one.next()
        singles.append(drawn if drawn is not None
                       else bool(one.other_kernel(one.other - 1, 1)[0]))
    batched: list[object] = []
    for tags in cuts:
        d = many.take(tags)
        other = iter(many.other_kernel(d.other_start, tags - d.at.size).tolist())
        mem = dict(zip(d.at.tolist(), zip(d.u_page.tolist(), d.u_miss.tolist(),
                                          d.load.tolist(), d.kernel.tolist(),
                                          d.line.tolist(), strict=True), strict=True))
        batched += [mem[t] if t in mem else next(other) for t in range(tags)]
    assert batched == singles


def test_skipped_non_memory_bits_are_the_ones_the_reference_draws() -> None:
    """The fast engine skips the RIP bits of non-memory tags under L3MissOnly; asking later,
    by ordinal, gives what drawing them one by one gives."""
    a, b = stream(0.3), stream(0.3)
    late = 2 * DRAW_CHUNK + 100  # past the chunks b then forgets
    bits = [bool(a.other_kernel(i, 1)[0]) for i in range(late + 1000)]
    assert b.other_kernel(late, 1000).tolist() == bits[late:]
    with pytest.raises(ValueError):
        b.other_kernel(0, 1)


@pytest.mark.parametrize("m", [0.05, 0.3, 0.9])
def test_memory_op_fraction_and_attributes(m: float) -> None:
    tags = 400_000
    d = stream(m).take(tags)
    n = d.at.size
    sd = np.sqrt(tags * m * (1 - m))
    assert abs(n - tags * m) < 5 * sd  # each tag a memory op with probability m
    assert np.all(np.diff(d.at) > 0) and d.at[0] >= 0 and d.at[-1] < tags
    assert abs(d.load.mean() - 0.4) < 5 * np.sqrt(0.24 / n)
    assert abs(d.kernel.mean() - 0.3) < 5 * np.sqrt(0.21 / n)
    assert d.line.min() == 0 and d.line.max() == 63
    # gaps are geometric: the fraction of memory ops right after another one is m
    assert abs(np.mean(np.diff(d.at) == 1) - m) < 5 * np.sqrt(m * (1 - m) / n)


def test_no_memory_ops_at_all() -> None:
    s = stream(0.0)
    assert s.take(10_000).at.size == 0 and s.next() is None


def probs_cases() -> list[np.ndarray]:
    gups = gups_probs(1000, 1 / 16, 0.9, 300)[0].expand()
    zipf = 1.0 / np.arange(1, 5001) ** 0.99
    holes = np.array([0.0, 0.2, 0.2, 0.0, 0.1, 0.5, 0.0])
    steps = np.repeat(np.arange(1.0, 101.0), 7)  # 100 runs: the plain binary search
    return [gups, zipf / zipf.sum(), np.full(64, 1 / 64), holes, steps / steps.sum()]


@pytest.mark.parametrize("probs", probs_cases(),
                         ids=["gups", "zipf", "uniform", "holes", "steps"])
def test_page_sampler_vector_equals_scalar_and_follows_probs(probs: np.ndarray) -> None:
    sampler = PageSampler(PageRuns.from_array(probs))
    u = np.random.default_rng(3).random(200_000)
    u[:3] = [0.0, np.nextafter(1.0, 0.0), 0.5]  # the ends of the unit interval
    pages = sampler.pages(u)
    assert pages[:2000].tolist() == [sampler.page(x) for x in u[:2000].tolist()]
    # in chunks (u is several CHUNKs long) as in one pass; each page inside its run
    whole, runs = sampler._locate(u)
    assert whole.tolist() == pages.tolist()
    chunked_runs = sampler.locate(u)[1]
    if runs is None:
        assert chunked_runs is None and sampler.start.size == 1
    else:
        assert chunked_runs is not None and chunked_runs.tolist() == runs.tolist()
        assert np.all(sampler.start[runs] <= pages)
        assert np.all(pages < sampler.start[runs] + sampler.length[runs])
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
    assert (SyntheticOps(wl, 3, 2)._run_miss[0] is None) == per_page_miss
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


def test_certain_outcomes_take_no_draw_and_still_hold() -> None:
    """Every tag a memory op, every op a load, none in the kernel: 3 uniforms per op, so the
    stream differs from one with real coins, but both engines still read it alike."""
    sure = DrawStream(seed=7, cpu=0, mem_op_fraction=1.0, load_fraction=1.0,
                      kernel_fraction=0.0, lines_per_page=64)
    d = sure.take(5000)
    assert d.at.tolist() == list(range(5000))
    assert d.load.all() and not d.kernel.any()
    one = DrawStream(seed=7, cpu=0, mem_op_fraction=1.0, load_fraction=1.0,
                     kernel_fraction=0.0, lines_per_page=64)
    assert [one.next() for _ in range(5000)] == list(zip(
        d.u_page.tolist(), d.u_miss.tolist(), d.load.tolist(), d.kernel.tolist(),
        d.line.tolist(), strict=True))


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
    s = stream(0.3)
    assert s.other_kernel(4096, 0).size == 0 and s.other_kernel(5000, 3).size == 3
