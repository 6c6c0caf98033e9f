"""record_batch (the fast engine's compiled pghot_record_access loop) against the reference's
interpreted calls of the same rule, call by call: same counters, outcome buckets, record
words, READY results, HOT and ACTIVATE flags (numba's int64 arithmetic against Python's)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from generated.pghot import PAGES_PER_SECTION as PPS
from runtime.jiffies import INITIAL_JIFFIES
from runtime.memory import Memory
from runtime.nodemap import NodeMap, node_of_pfn
from runtime.pghot import PGHOT_HWHINTS, Pghot, Tunables
from runtime.pghot.batch import record_batch
from runtime.topology import build_topology
from runtime.vmstat import Vmstat


def pair(cxl_nodes: int, placed: int, **tunables: object) -> tuple[Pghot, Pghot, Memory]:
    """Two identical pghots over one memory: 2 DRAM nodes, cxl_nodes CXL nodes of 2 sections."""
    topo = build_topology(2, cxl_nodes, 1, PPS, 2 * PPS)
    memory = Memory(topo)
    for i, node in enumerate(topo.lower_nodes()):
        for page in range(placed):
            memory.place(i * placed + page, node.nid)
    made = [Pghot(topo, memory, Vmstat(), Tunables(**tunables)) for _ in range(2)]  # type: ignore[arg-type]
    for p in made:
        p.started = True
    return made[0], made[1], memory


@settings(max_examples=60, deadline=None)
@given(cxl_nodes=st.sampled_from([1, 10]), mode=st.sampled_from(["default", "precise"]),
       sticky=st.booleans(), threshold=st.integers(1, 3), seed=st.integers(0, 10_000),
       calls=st.integers(1, 600), spread=st.sampled_from([6, 100]),
       split=st.integers(0, 600))
def test_batch_equals_scalar_calls(cxl_nodes: int, mode: str, sticky: bool, threshold: int,
                                   seed: int, calls: int, spread: int, split: int) -> None:
    """spread 6: a few very hot pages; spread 100: many pages with a few calls each. The
    calls go in two consecutive batches (split), as long blocks do."""
    ready_rule = "sticky" if sticky and mode == "default" else "recomputed"
    scalar, batch, memory = pair(cxl_nodes, 120, enabled_sources=0x3, mode=mode,
                                 freq_threshold=threshold, ready_rule=ready_rule)
    rng = np.random.default_rng(seed)
    topo = memory.topology
    lower = [n for n in topo.lower_nodes()]
    # PFNs: mostly placed pages, some unplaced, DRAM and offline ones.
    hot = [n.pfn_start + int(p) for n in lower for p in rng.integers(0, spread, 40)]
    choices = np.array(hot + [lower[0].pfn_start + 500, 0, topo.nodes[1].pfn_start + 3,
                              max(n.pfn_end for n in topo.nodes) + 5])
    pfns = choices[rng.integers(0, choices.size, calls)].astype(np.int64)
    nid_choices = np.array([0, 1, -1, 2, 63, 99])  # top tier, NUMA_NO_NODE, lower, invalid
    nids = nid_choices[rng.integers(0, nid_choices.size, calls)].astype(np.int64)
    times = INITIAL_JIFFIES + np.cumsum(rng.integers(0, 700, calls)).astype(np.int64)
    expected = []
    for pfn, nid, t in zip(pfns.tolist(), nids.tolist(), times.tolist(), strict=True):
        scalar.record_access(pfn, nid, PGHOT_HWHINTS, t)
        expected.append(scalar.last_ready)
    cut = min(split, calls)
    got = np.r_[record_batch(batch, pfns[:cut], nids[:cut], times[:cut]),
                record_batch(batch, pfns[cut:], nids[cut:], times[cut:])]
    assert got.tolist() == expected
    assert {k: v for k, v in batch.outcomes.items() if v} == \
        {k: v for k, v in scalar.outcomes.items() if v}
    assert batch.vmstat.as_dict() == scalar.vmstat.as_dict()
    assert batch.records.flat.tolist() == scalar.records.flat.tolist()
    assert batch.section_hot.array.tolist() == scalar.section_hot.array.tolist()
    assert batch.activate.tolist() == scalar.activate.tolist()
    assert batch.activate_since.tolist() == scalar.activate_since.tolist()


def test_node_map_agrees_with_the_topology_whole_and_mixed_sections() -> None:
    """node_of_pfn (scalar) and NodeMap.nodes_of (its array twin) against the topology's own
    search, over whole sections, node edges inside sections, gaps and PFNs past the end."""
    from runtime.topology import Node, Topology

    mixed = Topology(nodes=(Node(0, "top", "dram", 0, 1000), Node(1, "lower", "cxl", 1000, 5000),
                            Node(2, "lower", "cxl", 3 * PPS + 17, PPS)), cpu_node=(0,))
    _, many, _ = pair(10, 0)
    for topo in (many.topology, mixed):
        nodemap = NodeMap(topo)
        pfns = np.r_[np.arange(-3, max(n.pfn_end for n in topo.nodes) + 3, 97),
                     [n.pfn_start for n in topo.nodes], [n.pfn_end for n in topo.nodes],
                     [n.pfn_end - 1 for n in topo.nodes], [10**12]].astype(np.int64)
        want = [-1 if (w := topo.node_of_pfn(x)) is None else w for x in pfns.tolist()]
        assert nodemap.nodes_of(pfns).tolist() == want
        assert [node_of_pfn(x, nodemap.tables) for x in pfns.tolist()] == want
        tops = nodemap.toptier_of(np.array([-1, 0, 1, 2, 99], dtype=np.int64)).tolist()
        assert tops == [False, True] + [topo.nodes[i].toptier for i in (1, 2)] + [False]
