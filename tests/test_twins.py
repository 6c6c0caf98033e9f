"""Where a rule still has a scalar and an array form, both name each other and are held equal
here on inputs that reach every boundary (sections with and without a slot, node edges
inside a section, PFNs before, between and past the nodes, negative PFNs)."""

from __future__ import annotations

import bisect
from collections.abc import Callable
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from generated.pghot import PAGES_PER_SECTION as PPS
from runtime.draws import KeptMisses, _draw_group, run_page, sampler_run
from runtime.jit import compiled
from runtime.memory import Memory, page_at_pfn
from runtime.nodemap import NodeMap, node_of_pfn
from runtime.pageruns import PageRuns
from runtime.profiler import PROFILE_COUNTS
from runtime.sample_path import Control, Tagged, empty_samples, profile_group
from runtime.search import bisect_right
from runtime.sections import flat_index, flat_index_of, shift_table
from runtime.topology import Node, Topology
from runtime.workloads import (
    Phase,
    SyntheticOps,
    build_workload,
    gups_probs,
    phase_tables,
    zipf_probs,
)

TWINS: list[tuple[Callable[..., Any], Callable[..., Any]]] = [
    (flat_index_of, flat_index),
    (node_of_pfn, NodeMap.nodes_of),
    (page_at_pfn, Memory.pages_at),
    (SyntheticOps.tagged_op, _draw_group),
]
"""Every (scalar, array) pair of one rule the runtime keeps."""


def test_each_twin_names_the_other() -> None:
    for scalar, array in TWINS:
        assert scalar.__doc__ and array.__doc__
        assert "twin" in scalar.__doc__ and "twin" in array.__doc__, (scalar, array)
        assert array.__name__ in scalar.__doc__ or "array" in scalar.__doc__


TOPOLOGY = Topology(nodes=(Node(0, "top", "dram", 0, 1000), Node(1, "lower", "cxl", 1000, 5000),
                           Node(2, "lower", "cxl", 3 * PPS + 17, PPS),
                           Node(3, "lower", "cxl", 8 * PPS, 2 * PPS)), cpu_node=(0,))
EDGE_PFNS = sorted({p for n in TOPOLOGY.nodes for base in (n.pfn_start, n.pfn_end)
                    for p in (base - 1, base, base + 1)} |
                   {-5, -1, 0, 4 * PPS, 11 * PPS - 1, 11 * PPS, 12 * PPS, 10**12})
pfn_lists = st.lists(st.sampled_from(EDGE_PFNS) | st.integers(-10, 12 * PPS),
                     min_size=1, max_size=60)


@settings(max_examples=100, deadline=None)
@given(pfns=pfn_lists, slots=st.lists(st.integers(-1, 5), min_size=1, max_size=14))
def test_flat_index_twins(pfns: list[int], slots: list[int]) -> None:
    shift = shift_table(np.array(slots + [-1], dtype=np.int64))
    array = flat_index(np.array(pfns, dtype=np.int64), shift)
    assert array.tolist() == [flat_index_of(p, shift) for p in pfns]


@settings(max_examples=100, deadline=None)
@given(pfns=pfn_lists)
def test_node_of_pfn_twins(pfns: list[int]) -> None:
    nodemap = NodeMap(TOPOLOGY)
    array = nodemap.nodes_of(np.array(pfns, dtype=np.int64))
    want = [-1 if (n := TOPOLOGY.node_of_pfn(p)) is None else n for p in pfns]
    assert array.tolist() == want == [node_of_pfn(p, nodemap.tables) for p in pfns]


@settings(max_examples=60, deadline=None)
@given(pfns=pfn_lists, placed=st.lists(st.tuples(st.sampled_from([1, 2, 3]),
                                                 st.integers(1, 40)), max_size=5))
def test_page_at_pfn_twins(pfns: list[int], placed: list[tuple[int, int]]) -> None:
    memory = Memory(TOPOLOGY)
    page = 0
    for nid, count in placed:
        count = min(count, memory.free_pages(nid))
        memory.place_many(np.arange(page, page + count, dtype=np.int64), nid)
        page += count
    array = memory.pages_at(np.array(pfns, dtype=np.int64))
    assert array.tolist() == [page_at_pfn(p, memory.page_tables()) for p in pfns]


ROUNDS_UP = PageRuns(np.array([0, 1003, 1060, 2914]),
                     np.array([0.015991729523571974, 0.7579510023564281, 0.512758723262078,
                               0.9291042207970062]), 4352)
"""Runs where a key just below the second run's upper bound computes an offset equal to the
run's length (float rounding): the page must still be the run's last."""


def _tables() -> list[tuple[Any, int]]:
    """One run (uniform), a few runs (gups, its hot set wrapping past the end), many (zipf),
    runs of no mass at both ends, and ROUNDS_UP; each with its region's pages."""
    gups, _ = gups_probs(1000, 0.0625, 0.9, 990)
    shapes = [PageRuns.constant(1000, 1.0 / 1000), gups, zipf_probs(5000, 0.99, 3),
              zipf_probs(10, 1.2, 4), PageRuns.from_array(np.array([0.0, 0.5, 0.0, 0.5, 0.0])),
              ROUNDS_UP]
    return [(phase_tables([Phase(0.0, p, PageRuns.constant(p.pages, 1.0), "t")]), p.pages)
            for p in shapes]


def _run(key: float, end: int, hi: Any, guide: Any) -> int:
    """The composition both engines write: halving without a guide, else the guide's walk."""
    if len(guide) == 0:
        found: int = bisect_right(hi, key, 0, end)
        return found
    return sampler_run(key, 0, end, hi, guide, 0, len(guide))


def _pages(keys: Any, total: float, end: int, hi: Any, guide: Any, start: Any, pages: int,
           out: Any) -> None:
    for i in range(keys.size):
        key = keys[i] * total
        run = bisect_right(hi, key, 0, end) if guide.size == 0 else sampler_run(
            key, 0, end, hi, guide, 0, guide.size)
        out[i] = run_page(key, run, 0, end, hi, start, pages)


pages_compiled = compiled(_pages)


@settings(max_examples=40, deadline=None)
@given(us=st.lists(st.floats(0.0, 1.0, exclude_max=True), max_size=40),
       guide_kind=st.sampled_from(["none", "built", "first", "last", "random"]))
def test_page_sampler_compiled_equals_interpreted(us: list[float], guide_kind: str) -> None:
    """The run and page of a key as the fast engine finds them (compiled, arrays) and as the
    reference does (interpreted, lists): uniforms anywhere, at 0, next to 1, and exactly on
    and just below every run's bound; the run is bisect_right's without a guide table and
    with one (as phase_tables builds it, or pointing anywhere: the walk corrects it)."""
    for tb, pages in _tables():
        end = int(tb.run_first[1])
        total = float(tb.hi[end - 1])
        lengths = np.diff(np.r_[tb.start, pages])
        size = end
        guide = {"none": np.zeros(0, dtype=np.int64),
                 "built": np.minimum(np.searchsorted(tb.hi, np.arange(size) / size * total,
                                                     side="right"), end - 1),
                 "first": np.zeros(size, dtype=np.int64),
                 "last": np.full(size, end - 1, dtype=np.int64),
                 "random": np.random.default_rng(len(us)).integers(0, end, size)}[guide_kind]
        edges = [float(b) / total for b in tb.hi.tolist()[:50]]
        edges += [float(np.nextafter(b, 0.0)) / total for b in tb.hi.tolist()[:50]]
        keys = np.array([*us, 0.0, np.nextafter(1.0, 0.0), *edges,
                         *(np.nextafter(e, 0.0) for e in edges)], dtype=np.float64)
        keys = keys[keys < 1.0]
        out = np.zeros(keys.size, dtype=np.int64)
        pages_compiled(keys, total, end, tb.hi, guide, tb.start, pages, out)
        want = []
        for u in keys.tolist():
            key = u * total
            run = _run(key, end, tb.hi.tolist(), guide.tolist())
            assert run == bisect.bisect_right(tb.hi.tolist(), key)
            assert run == 0 or tb.hi[run] > tb.hi[run - 1]  # a run with mass
            want.append(run_page(key, run, 0, end, tb.hi.tolist(), tb.start.tolist(), pages))
        assert out.tolist() == want
        # the page lies in the run whose cumulative mass first exceeds the key
        run = np.searchsorted(tb.hi, keys * total, side="right")
        assert np.all((tb.start[run] <= out) & (out < tb.start[run] + lengths[run]))


def test_phases_with_many_runs_get_a_guide_table() -> None:
    """Few runs are searched by halving (no guide); a zipf phase's many runs get a guide of
    one entry per run, each the first run whose mass passes its bucket's start."""
    few = _tables()[1][0]
    assert few.guide.size == 0 and few.guide_first.tolist() == [0, 0]
    zipf = phase_tables([Phase(0.0, p, PageRuns.constant(p.pages, 1.0), "t")
                         for p in (gups_probs(1000, 0.0625, 0.9, 0)[0],
                                   zipf_probs(5000, 0.99, 3))])
    first, end = int(zipf.run_first[1]), int(zipf.run_first[2])
    guide = zipf.guide[zipf.guide_first[1]:zipf.guide_first[2]]
    assert zipf.guide_first.tolist() == [0, 0, 5000] and guide.size == end - first
    hi = zipf.hi[first:end]
    bounds = np.arange(guide.size) / guide.size * hi[-1]
    assert np.all(hi[guide - first] > bounds)
    assert np.all((guide == first) | (hi[np.maximum(guide - first - 1, 0)] <= bounds))


@settings(max_examples=30, deadline=None)
@given(exclude=st.sampled_from([(0, 0), (1, 0), (0, 1), (1, 1)]), lru=st.sampled_from([0, 7]),
       kernel=st.sampled_from([0.0, 0.4, 1.0]), mem=st.sampled_from([0.3, 1.0]),
       sizes=st.lists(st.integers(0, 400), min_size=1, max_size=4))
def test_filters_applied_while_drawing_equal_profile_group(
        exclude: tuple[int, int], lru: int, kernel: float, mem: float,
        sizes: list[int]) -> None:
    """draw_group with KeptMisses (the profilers' L3MissOnly filters applied as ops are
    drawn) keeps the samples, counts and LRU stamps that drawing every op and then running
    sample_path.profile_group gives."""
    spec = {"kind": "gups-hot", "region_mib": 4, "mem_op_fraction": mem, "load_fraction": 0.5,
            "kernel_fraction": kernel, "placement": "cxl", "hot_fraction": 0.1,
            "hot_access_fraction": 0.9, "hot_offset_fraction": 0.25, "shift_at_s": 0.0,
            "shift_fraction": 1.0}
    workload = build_workload(spec, 1 << 20, 64, seed=3)
    cpus = list(range(len(sizes)))
    times = [np.arange(size, dtype=np.float64) * 3.0 + 1.0 for size in sizes]
    width = len(PROFILE_COUNTS)
    drawn = SyntheticOps(workload, 5, len(sizes)).tagged_batches(cpus, [0] * len(cpus), 10000,
                                                                 times, False)
    group = Tagged(np.array(cpus), np.array(sizes), np.zeros(0), drawn.cpu, drawn.at,
                   drawn.when, drawn.kernel, drawn.load, drawn.store, drawn.page, drawn.offset,
                   drawn.l3_miss, np.zeros(0, dtype=bool))
    two_pass, counts = empty_samples(sum(sizes) + 1), np.zeros((len(cpus), width), np.int64)
    ages = np.zeros(workload.pages, dtype=np.uint16)
    kept = profile_group(group, Control(1, *exclude, 1), two_pass, counts, ages, lru)
    one_pass = empty_samples(sum(sizes) + 1, memory_misses=True)
    counts1 = np.zeros((len(cpus), width), np.int64)
    ages1 = np.zeros(workload.pages, dtype=np.uint16)
    kept1 = SyntheticOps(workload, 5, len(sizes)).kept_misses(cpus, times, KeptMisses(
        1, *exclude, lru, ages1, counts1, tuple(one_pass)))  # type: ignore[arg-type]
    assert kept1 == kept
    assert counts1.tolist() == counts.tolist()
    assert all(a[:kept].tolist() == b[:kept].tolist()
               for a, b in zip(one_pass, two_pass, strict=True))
    assert ages1.tolist() == ages.tolist()
    assert counts.sum(axis=1).tolist() == sizes  # every tag counted once: a discard or kept
