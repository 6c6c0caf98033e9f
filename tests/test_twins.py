"""Where a rule still has a scalar and an array form, both name each other and are held equal
here on inputs that reach every boundary (sections with and without a slot, node edges
inside a section, PFNs before, between and past the nodes, negative PFNs)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from generated.pghot import PAGES_PER_SECTION as PPS
from runtime.memory import Memory, page_at_pfn
from runtime.nodemap import NodeMap, node_of_pfn
from runtime.pageruns import PageRuns
from runtime.sections import flat_index, flat_index_of, shift_table
from runtime.topology import Node, Topology
from runtime.workloads import PageSampler, gups_probs, zipf_probs

TWINS: list[tuple[Callable[..., Any], Callable[..., Any]]] = [
    (flat_index_of, flat_index),
    (node_of_pfn, NodeMap.nodes_of),
    (page_at_pfn, Memory.pages_at),
    (PageSampler.page, PageSampler.pages),
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


def _samplers() -> list[PageSampler]:
    """One run (uniform), a few runs (gups: compared), many (zipf: searched, sorted)."""
    uniform = PageRuns.constant(1000, 1.0 / 1000)
    gups, _ = gups_probs(1000, 0.0625, 0.9, 990)  # the hot set wraps past the end
    return [PageSampler(uniform), PageSampler(gups), PageSampler(zipf_probs(5000, 0.99, 3)),
            PageSampler(zipf_probs(10, 1.2, 4))]


@settings(max_examples=40, deadline=None)
@given(us=st.lists(st.floats(0.0, 1.0, exclude_max=True), max_size=40))
def test_page_sampler_twins(us: list[float]) -> None:
    """Uniforms anywhere, at 0, next to 1, and exactly on every run's bounds."""
    for sampler in _samplers():
        edges = [float(b) / sampler.total for b in sampler.hi.tolist()[:50]]
        keys = np.array([*us, 0.0, np.nextafter(1.0, 0.0), *edges,
                         *(np.nextafter(e, 0.0) for e in edges)], dtype=np.float64)
        keys = keys[keys < 1.0]
        assert sampler.pages(keys).tolist() == [sampler.page(float(u)) for u in keys]
        if keys.size > sampler.CHUNK // 1000:  # the chunked path too
            assert sampler.locate(np.tile(keys, 2000))[0].tolist()[:keys.size] == \
                sampler.pages(keys).tolist()
