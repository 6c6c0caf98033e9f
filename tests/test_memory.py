"""Page placement in arrays behaves exactly as the plain dict model it replaced: the same PFNs
handed out in the same order, the same page at every PFN, the same free counts."""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.memory import NO_PAGE, Memory, OutOfMemory, place_pages
from runtime.topology import Node, Topology, build_topology


def three_nodes(top: int, lower: int, second: int) -> Topology:
    """A top node, then two lower ones; the second starts where the first ends, so they may
    share a section."""
    start = 1 << 15  # the lower tier starts on a section boundary, as memory blocks do
    return Topology((Node(0, "top", "dram", 0, top), Node(1, "lower", "cxl", start, lower),
                     Node(2, "lower", "cxl", start + lower, second)), (0,))


class DictMemory:
    """The model: a bump allocator with a LIFO free list per node, and two dicts."""

    def __init__(self, topology: Topology) -> None:
        self.topology = topology
        self.next = {n.nid: n.pfn_start for n in topology.nodes}
        self.freed: dict[int, list[int]] = {n.nid: [] for n in topology.nodes}
        self.used = {n.nid: 0 for n in topology.nodes}
        self.pfn_of: dict[int, int] = {}
        self.page_of: dict[int, int] = {}

    def free(self, nid: int) -> int:
        return self.topology.node(nid).pfn_count - self.used[nid]

    def alloc(self, nid: int) -> int:
        if self.freed[nid]:
            pfn = self.freed[nid].pop()
        elif self.next[nid] < self.topology.node(nid).pfn_end:
            pfn = self.next[nid]
            self.next[nid] += 1
        else:
            raise OutOfMemory(nid)
        self.used[nid] += 1
        return pfn

    def place(self, page: int, nid: int) -> int:
        pfn = self.alloc(nid)
        self.pfn_of[page], self.page_of[pfn] = pfn, page
        return pfn

    def migrate(self, pfn: int, target: int) -> int:
        page = self.page_of.pop(pfn)
        new = self.alloc(target)
        self.pfn_of[page], self.page_of[new] = new, page
        nid = self.topology.node_of_pfn(pfn)
        assert nid is not None
        self.freed[nid].append(pfn)
        self.used[nid] -= 1
        return new


def assert_same(memory: Memory, model: DictMemory, rng: random.Random) -> None:
    topo = model.topology
    for node in topo.nodes:
        assert memory.free_pages(node.nid) == model.free(node.nid)
        assert memory.pages_on(node.nid).tolist() == sorted(
            p for p, f in model.pfn_of.items() if node.pfn_start <= f < node.pfn_end)
    pages, pfns = memory.placement()
    assert dict(zip(pages.tolist(), pfns.tolist(), strict=True)) == model.pfn_of
    end = max(n.pfn_end for n in topo.nodes)
    probe = sorted({*model.page_of, *model.pfn_of.values(),
                    *(rng.randrange(-5, end + 70000) for _ in range(50))})
    want = [model.page_of.get(pfn, NO_PAGE) for pfn in probe]
    assert memory.pages_at(np.array(probe, dtype=np.int64)).tolist() == want
    assert [NO_PAGE if (p := memory.page_at(pfn)) is None else p for pfn in probe] == want
    asked = list(range(-2, max(model.pfn_of, default=0) + 3))
    assert memory.pfns_of(np.array(asked, dtype=np.int64)).tolist() == \
        [model.pfn_of.get(p, NO_PAGE) for p in asked]


OPS = st.lists(st.tuples(st.sampled_from(["place", "place_many", "migrate", "migrate_many",
                                          "isolate"]), st.integers(0, 2**32)),
               max_size=40)


@settings(max_examples=60, deadline=None)
@given(ops=OPS, sizes=st.tuples(st.integers(1, 40), st.integers(1, 40000),
                                st.integers(0, 40)))
def test_array_placement_equals_the_dict_model(ops: list[tuple[str, int]],
                                               sizes: tuple[int, int, int]) -> None:
    topo = three_nodes(*sizes)  # node 1 may span sections; node 2 may be empty
    memory, model = Memory(topo), DictMemory(topo)
    next_page = 0
    for kind, seed in ops:
        rng = random.Random(seed)
        nid = rng.randrange(3)
        if kind in ("place", "place_many"):
            count = 1 if kind == "place" else rng.randrange(1, 300)
            count = min(count, model.free(nid))
            if count == 0:
                with pytest.raises(OutOfMemory):
                    memory.place(next_page, nid)
                continue
            stride = rng.randrange(1, 4)  # page ids with gaps between them
            pages = [next_page + k * stride for k in range(count)]
            next_page = pages[-1] + 1
            want = [model.place(page, nid) for page in pages]
            if kind == "place":
                assert [memory.place(pages[0], nid)] == want
            else:
                assert memory.place_many(np.array(pages), nid).tolist() == want
        elif kind == "isolate" and model.page_of:
            pfn = rng.choice(sorted(model.page_of))
            page = memory.isolate(pfn)
            assert page == model.page_of[pfn] and not memory.holds_page(pfn)
            memory.putback(pfn, page)  # back at once: the model has no isolated state
        elif kind in ("migrate", "migrate_many"):
            held = [pfn for pfn in sorted(model.page_of) if topo.node_of_pfn(pfn) != nid]
            if not held:
                continue
            picked = rng.sample(held, 1 if kind == "migrate" else rng.randrange(1, len(held) + 1))
            if kind == "migrate" and model.free(nid) == 0:
                with pytest.raises(OutOfMemory):
                    memory.migrate(picked[0], nid)
                continue
            moved = picked[:model.free(nid)]
            want_pages = [model.page_of[pfn] for pfn in moved]
            want = [model.migrate(pfn, nid) for pfn in moved]
            if kind == "migrate":
                assert [memory.migrate(picked[0], nid)] == want
            else:
                new, pages = memory.migrate_many(np.array(picked), nid)
                assert (new.tolist(), pages.tolist()) == (want, want_pages)
        assert_same(memory, model, rng)


@pytest.mark.parametrize("sizes", [(10, 10, 10), (3, 17, 5), (1, 1, 40), (64, 0, 2), (5, 5, 0)])
@pytest.mark.parametrize("pages", [0, 1, 7, 24, 40])
def test_interleave_in_rounds_equals_one_page_at_a_time(sizes: tuple[int, int, int],
                                                         pages: int) -> None:
    topo = three_nodes(*sizes)
    model = DictMemory(topo)
    order, cycle, fits = [0, 1, 2], 0, True
    for page in range(pages):  # the round-robin, one page at a time
        room = [(cycle + a) % 3 for a in range(3) if model.free(order[(cycle + a) % 3]) > 0]
        if not room:
            fits = False
            break
        model.place(page, order[room[0]])
        cycle = (room[0] + 1) % 3
    memory = Memory(topo)
    if not fits:
        with pytest.raises(OutOfMemory):
            place_pages(memory, pages, "interleave")
        return
    place_pages(memory, pages, "interleave")
    got_pages, got_pfns = memory.placement()
    assert dict(zip(got_pages.tolist(), got_pfns.tolist(), strict=True)) == model.pfn_of


def test_migrating_a_pfn_that_holds_no_page_or_onto_its_own_node_is_refused() -> None:
    memory = Memory(build_topology(1, 1, 1, 64, 64))
    place_pages(memory, 4, "cxl")
    with pytest.raises(KeyError):
        memory.migrate_many(np.array([memory.pfn_of(0), memory.pfn_of(3) + 1]), 0)
    with pytest.raises(ValueError, match="already on node 1"):
        memory.migrate(memory.pfn_of(1), 1)
    with pytest.raises(ValueError, match="already placed"):
        memory.place(2, 0)
    assert memory.placement()[1].tolist() == [memory.pfn_of(p) for p in range(4)]


def test_freed_pfns_are_handed_out_last_freed_first() -> None:
    memory = Memory(build_topology(1, 1, 1, 64, 64))
    place_pages(memory, 4, "cxl")
    olds = [memory.pfn_of(p) for p in range(3)]
    memory.migrate_many(np.array(olds), 0)
    back, pages = memory.migrate_many(np.array([memory.pfn_of(p) for p in (0, 1)]), 1)
    assert back.tolist() == olds[::-1][:2] and pages.tolist() == [0, 1]
    assert memory.place(9, 1) == olds[0]  # then the one freed first, then a fresh PFN
    assert memory.place(10, 1) == memory.pfn_of(3) + 1


def test_misuse_is_refused_without_changing_anything() -> None:
    """A PFN listed twice, a hand-placed PFN on no node: refused before any change."""
    memory = Memory(build_topology(1, 1, 1, 64, 64))
    place_pages(memory, 4, "cxl")
    before = memory.placement()[1].tolist(), memory.free_pages(0), memory.free_pages(1)
    with pytest.raises(ValueError, match="twice"):
        memory.migrate_many(np.array([memory.pfn_of(1), memory.pfn_of(0), memory.pfn_of(1)]), 0)
    with pytest.raises(ValueError, match="on no node"):
        memory.putback(2 * 32768 + 5, 7)  # past the lower node's section
    assert (memory.placement()[1].tolist(), memory.free_pages(0), memory.free_pages(1)) == before
    assert memory.pages_at(np.array([2 * 32768 + 5, 10**9])).tolist() == [NO_PAGE, NO_PAGE]


def test_an_isolated_page_is_found_by_nothing_until_put_back() -> None:
    memory = Memory(build_topology(1, 1, 1, 64, 64))
    place_pages(memory, 3, "dram")
    pfn = memory.pfn_of(1)
    assert memory.isolate(pfn) == 1
    assert memory.pages_on(0).tolist() == [0, 2] and memory.placed_pages == 2
    with pytest.raises(KeyError):
        memory.pfn_of(1)
    memory.putback(pfn, 1)
    assert memory.pages_on(0).tolist() == [0, 1, 2] and memory.pfn_of(1) == pfn


def test_pages_placed_at_given_pfns_are_skipped_by_allocation() -> None:
    """place_at (a recording's pages where they were): later allocations on that node hand
    out the free PFNs around them, in order; wrong input changes nothing."""
    import numpy as np
    import pytest

    topo = Topology((Node(0, "top", "dram", 0, 100), Node(1, "lower", "cxl", 1000, 100)),
                    (0,))
    memory = Memory(topo)
    memory.place_at(np.array([5, 3, 9]), np.array([2, 1000 + 50, 0]))
    assert memory.free_pages(0) == 98 and memory.free_pages(1) == 99
    assert memory.page_at(1050) == 3 and memory.pfn_of(9) == 0
    fresh = memory.place_many(np.array([0, 1, 2]), 0)
    assert fresh.tolist() == [1, 3, 4]
    assert memory.migrate(1050, 0) == 5
    for pages, pfns in (([7], [1]), ([5], [60]), ([7, 8], [60, 60]), ([7], [500]),
                        ([-1], [61])):
        with pytest.raises(ValueError):
            memory.place_at(np.array(pages), np.array(pfns))
    assert memory.free_pages(0) == 94 and memory.page_at(60) is None
