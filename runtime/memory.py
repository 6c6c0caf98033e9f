"""Page placement: which PFN (hence which node) holds each workload page, and free pages.

Workload pages are stable ids (think: virtual pages of the process); migration moves a page to a
free PFN on another node, exactly as a folio migration gives the data a new PFN. A PFN that
holds no page is not on an LRU list, so pghot and kmigrated skip it.

Placement is kept in numpy arrays, both ways: page -> PFN over page ids, and PFN -> page per
section that ever held a page (so a 1 TiB tier costs memory for the sections in use only).
kmigrated moves a whole batch with a few array operations, and the fast engine reads the
same arrays the reference engine reads one value at a time: there is one placement, not a
copy to keep in step.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from generated._base import jitable
from generated.ibs_mprof import PAGE_SHIFT
from generated.pghot import PAGES_PER_SECTION
from runtime.sections import NO_MAP_SHIFT, SECTION_SHIFT
from runtime.topology import Topology

I64 = npt.NDArray[np.int64]
Ids = npt.NDArray[np.signedinteger[Any]]
"""Page ids or PFNs as stored: int32 where every value fits (see Memory), else int64."""
ID32_MAX = (1 << 31) - 1
"""Page ids, and PFNs below this, are stored in 4 bytes."""
NO_PAGE = -1
"""What the arrays hold where no page is (page -> PFN and PFN -> page alike)."""
NEVER_ACCESSED = 0
"""LRU age of a page no sampled op touched yet (older than every stamp)."""
LRU_MAX = (1 << 16) - 1
"""LRU ages are 2 bytes a page: stamps 1 .. LRU_MAX."""
MIB_PAGES = (1 << 20) >> PAGE_SHIFT
"""Base pages per MiB, from the spec's PAGE_SHIFT (scenario sizes are in MiB)."""


class PageTables(NamedTuple):
    """The PFN -> page arrays as the compiled loops read them: `page` holds every mapped
    section back to back (index 0: NO_PAGE, where unmapped PFNs land), `shift` turns a PFN
    into its index there (runtime/sections.py)."""

    page: Ids
    shift: I64


@jitable
def page_at_pfn(pfn: int, t: PageTables) -> int:
    """The page at pfn, NO_PAGE where none is (free, isolated or offline): the scalar twin of
    Memory.pages_at (tests/test_twins.py holds them equal)."""
    if pfn < 0:
        return NO_PAGE
    index = pfn + t.shift[min(pfn >> SECTION_SHIFT, t.shift.size - 1)]
    if index < 0 or index >= t.page.size:
        return NO_PAGE
    page: int = t.page[index]
    return page


class OutOfMemory(Exception):
    """No free page on the node asked for."""


class _FreeStack:
    """A node's freed PFNs; the last freed is handed out first (as a list's pop() would)."""

    def __init__(self) -> None:
        self._pfns = np.zeros(0, dtype=np.int64)
        self.size = 0

    @property
    def nbytes(self) -> int:
        return self._pfns.nbytes

    def push(self, pfns: I64) -> None:
        end = self.size + pfns.size
        if end > self._pfns.size:
            grown = np.zeros(max(end, 2 * self._pfns.size), dtype=np.int64)
            grown[:self.size] = self._pfns[:self.size]
            self._pfns = grown
        self._pfns[self.size:end] = pfns
        self.size = end

    def pop(self, count: int) -> I64:
        """The next `count` PFNs in hand-out order."""
        start = self.size - count
        taken = self._pfns[start:self.size][::-1].copy()
        self.size = start
        return taken


class Memory:
    def __init__(self, topology: Topology) -> None:
        self.topology = topology
        self._next: dict[int, int] = {n.nid: n.pfn_start for n in topology.nodes}
        self._freed: dict[int, _FreeStack] = {n.nid: _FreeStack() for n in topology.nodes}
        self._used: dict[int, int] = {n.nid: 0 for n in topology.nodes}
        self._taken: dict[int, I64] = {}
        """Per node: PFNs place_at took out of order (sorted); fresh allocation skips them."""
        end_pfn = max((n.pfn_end for n in topology.nodes), default=0)
        self._frame_dtype = np.int32 if end_pfn <= ID32_MAX else np.int64
        """page -> PFN in 4 bytes a page unless a PFN needs more (8 TiB of physical space)."""
        self._pfn: Ids = np.zeros(0, dtype=self._frame_dtype)  # NO_PAGE where not placed
        self._placed = 0
        # PFN -> page: the sections that ever held a page, back to back in `_page`
        end = max((n.pfn_end for n in topology.nodes), default=0)
        self._shift = np.full((end >> SECTION_SHIFT) + 2, NO_MAP_SHIFT, dtype=np.int64)
        self._base: dict[int, int] = {}  # section -> its first index in `_page`
        self._page: Ids = np.full(1, NO_PAGE, dtype=np.int32)  # [0]: unmapped PFNs land here
        self.last_access = np.zeros(0, dtype=np.uint16)
        """page -> lru_stamp of its last sampled access, NEVER_ACCESSED if none: the LRU age
        demotion reads (2 bytes a page; both engines write it)."""
        self.lru_unit_ms = 1
        """ms per LRU stamp step (lru_unit_ms of the run's length: 1 up to 65 s)."""

    # --- free pages ----------------------------------------------------------------------------
    def present_pages(self, nid: int) -> int:
        return self.topology.node(nid).pfn_count

    def free_pages(self, nid: int) -> int:
        return self.present_pages(nid) - self._used[nid]

    def _alloc(self, nid: int, count: int) -> I64:
        """`count` free PFNs of node nid, exactly as `count` one-page allocations hand them
        out: freed PFNs first (last freed first), then never-used ones in ascending order."""
        if count > self.free_pages(nid):
            raise OutOfMemory(f"node {nid} has no free page")
        freed = self._freed[nid]
        reuse = min(count, freed.size)
        fresh = self._next[nid]
        new = self._fresh(nid, fresh, count - reuse)
        self._next[nid] = int(new[-1]) + 1 if new.size else fresh
        self._used[nid] += count
        if new.size:
            self._map_sections(int(new[0]), int(new[-1]) + 1)
        return np.concatenate([freed.pop(reuse), new]) if reuse else new

    def _fresh(self, nid: int, fresh: int, count: int) -> I64:
        """The next `count` never-used PFNs of node nid from `fresh` on, past the PFNs
        place_at took (they are in use, whatever order they were taken in)."""
        taken = self._taken.get(nid)
        if taken is None or not count:
            return np.arange(fresh, fresh + count, dtype=np.int64)
        end = fresh + count
        while True:  # widen [fresh, end) until it holds count PFNs nobody took
            skipped = int(np.searchsorted(taken, end) - np.searchsorted(taken, fresh))
            if end - fresh - skipped >= count:
                break
            end = fresh + count + skipped
        new = np.arange(fresh, end, dtype=np.int64)
        return new[~np.isin(new, taken)][:count]

    def place_at(self, pages: I64, pfns: I64) -> None:
        """Put each page at the given PFN (a recording says where its pages were): the PFNs
        must be free and on a node, the pages not yet placed; allocation then skips them."""
        if pages.size != pfns.size:
            raise ValueError("one PFN per page")
        if not pages.size:
            return
        if np.unique(pfns).size != pfns.size or np.unique(pages).size != pages.size:
            raise ValueError("a page or a PFN is listed twice")
        if pages.min() < 0 or (self.pfns_of(pages) != NO_PAGE).any():
            raise ValueError("a page id is negative or already placed")
        parts: list[tuple[int, I64]] = []
        on_nodes = 0
        for node in self.topology.nodes:
            mine = np.sort(pfns[(pfns >= node.pfn_start) & (pfns < node.pfn_end)])
            if not mine.size:
                continue
            on_nodes += mine.size
            taken = self._taken.get(node.nid)
            if (mine < self._next[node.nid]).any() or self._freed[node.nid].size or (
                    taken is not None and np.isin(mine, taken).any()):
                raise ValueError(f"node {node.nid}: a PFN is already in use")
            parts.append((node.nid, mine))
        if on_nodes != pfns.size:
            raise ValueError("a PFN is on no node")
        for nid, mine in parts:
            taken = self._taken.get(nid)
            self._taken[nid] = mine if taken is None else np.union1d(taken, mine)
            self._used[nid] += mine.size
            firsts = mine[np.r_[True, (mine[1:] >> SECTION_SHIFT) != (mine[:-1] >>
                                                                     SECTION_SHIFT)]]
            for pfn in firsts.tolist():
                self._map_sections(pfn, pfn + 1)
        self._grow_pages(int(pages.max()) + 1)
        self._set_pages(pfns, pages)
        self._pfn[pages] = pfns
        self._placed += pages.size

    def _free(self, pfns: I64) -> None:
        """Give PFNs back to their nodes, in order."""
        if pfns.size == 0:
            return
        source = self.topology.node_of_pfn(int(pfns.min()))
        if source is not None and self.topology.node_of_pfn(int(pfns.max())) == source:
            groups = [(source, pfns)]  # one source node (a section walk): in bulk
        else:
            groups = []
            for node in self.topology.nodes:
                inside = pfns[(pfns >= node.pfn_start) & (pfns < node.pfn_end)]
                if inside.size:
                    groups.append((node.nid, inside))
        for nid, part in groups:
            self._freed[nid].push(part)
            self._used[nid] -= part.size

    # --- the PFN -> page sections --------------------------------------------------------------
    def _map_sections(self, start: int, end: int) -> None:
        """Give every section of PFNs start..end-1 a slot in `_page` (NO_PAGE filled)."""
        if end <= start:
            return
        missing = [s for s in range(start >> SECTION_SHIFT, ((end - 1) >> SECTION_SHIFT) + 1)
                   if s not in self._base]
        if not missing:
            return
        used = 1 + len(self._base) * PAGES_PER_SECTION
        need = used + len(missing) * PAGES_PER_SECTION
        if need > self._page.size:  # grow by an eighth: sections are mapped as nodes fill
            grown = np.full(max(need, self._page.size + self._page.size // 8), NO_PAGE,
                            dtype=np.int32)
            grown[:used] = self._page[:used]
            self._page = grown
        for section in missing:
            self._base[section] = base = 1 + len(self._base) * PAGES_PER_SECTION
            self._shift[section] = base - section * PAGES_PER_SECTION

    def _set_pages(self, pfns: I64, pages: I64) -> None:
        """Store pages at PFNs of mapped sections (an unmapped one is an IndexError)."""
        run = _run(pfns)
        if run is not None:  # a run of PFNs over sections mapped back to back: one slice
            shifts = self._shift[run[0] >> SECTION_SHIFT:((run[1] - 1) >> SECTION_SHIFT) + 1]
            if (shifts == shifts[0]).all() and shifts[0] != NO_MAP_SHIFT:
                self._page[run[0] + shifts[0]:run[1] + shifts[0]] = pages
                return
        self._page[pfns + self._shift[pfns >> SECTION_SHIFT]] = pages

    # --- reading the placement -----------------------------------------------------------------
    @property
    def placed_pages(self) -> int:
        return self._placed

    @property
    def nbytes(self) -> int:
        """Memory the placement arrays take (they follow the pages and sections in use)."""
        return self._pfn.nbytes + self._page.nbytes + self._shift.nbytes + \
            self.last_access.nbytes + sum(stack.nbytes for stack in self._freed.values())

    def page_frames(self) -> Ids:
        """The page -> PFN array (NO_PAGE where not placed); replaced as pages are added."""
        return self._pfn

    def page_tables(self) -> PageTables:
        """The current PFN -> page arrays (they are replaced when sections are added)."""
        return PageTables(self._page, self._shift)

    def pfn_of(self, page: int) -> int:
        """The PFN holding page; KeyError when the page is not placed."""
        pfn = int(self._pfn[page]) if 0 <= page < self._pfn.size else NO_PAGE
        if pfn == NO_PAGE:
            raise KeyError(f"page {page} is not placed")
        return pfn

    def page_at(self, pfn: int) -> int | None:
        """The page at pfn, None when the PFN holds none (free, isolated or offline)."""
        page = int(page_at_pfn(pfn, self.page_tables()))
        return None if page == NO_PAGE else page

    def holds_page(self, pfn: int) -> bool:
        return self.page_at(pfn) is not None

    def pfns_of(self, pages: I64) -> I64:
        """PFN of each page (NO_PAGE where not placed)."""
        if pages.size == 0 or (pages.min() >= 0 and pages.max() < self._pfn.size):
            return self._pfn[pages].astype(np.int64)
        inside = (pages >= 0) & (pages < self._pfn.size)
        pfns = np.full(pages.size, NO_PAGE, dtype=np.int64)
        pfns[inside] = self._pfn[pages[inside]]
        return pfns

    def pages_at(self, pfns: I64) -> I64:
        """Page at each PFN (NO_PAGE where none): the array twin of page_at_pfn."""
        # a PFN of an unmapped section gets a negative index, which clips onto the NO_PAGE
        # at [0]; the sections.flat_index clamps are not needed
        index = pfns + self._shift.take(pfns >> SECTION_SHIFT, mode="clip")
        pages = self._page.take(index, mode="clip").astype(np.int64)
        if pfns.size and pfns.min() < 0:  # (clipped into section 0, or wrapped round)
            pages[pfns < 0] = NO_PAGE
        return pages

    def placement(self) -> tuple[I64, I64]:
        """(pages, their PFNs) of every placed page, pages ascending."""
        pages = np.flatnonzero(self._pfn != NO_PAGE)
        return pages, self._pfn[pages].astype(np.int64)

    def node_of_page(self, page: int) -> int:
        nid = self.topology.node_of_pfn(self.pfn_of(page))
        assert nid is not None
        return nid

    def pages_on(self, nid: int) -> I64:
        """Pages on node nid, ascending."""
        node = self.topology.node(nid)
        return np.flatnonzero((self._pfn >= node.pfn_start) & (self._pfn < node.pfn_end))

    # --- changing it ---------------------------------------------------------------------------
    def place(self, page: int, nid: int) -> int:
        """Allocate page on node nid (first touch); return its PFN."""
        return int(self.place_many(np.array([page], dtype=np.int64), nid)[0])

    def place_many(self, pages: I64, nid: int) -> I64:
        """place() each page in order; their PFNs."""
        if pages.size == 0:
            return np.zeros(0, dtype=np.int64)
        if pages.min() < 0:
            raise ValueError("page ids are not negative")
        run = _run(pages)  # first touch comes in page order: a run of ids is one slice
        if run is not None:
            self._grow_pages(run[1])
            if (self._pfn[run[0]:run[1]] != NO_PAGE).any():
                raise ValueError(f"a page of {pages.size} is already placed")
        elif np.unique(pages).size != pages.size or (self.pfns_of(pages) != NO_PAGE).any():
            raise ValueError(f"a page of {pages.size} is already placed")
        if pages.size > self.free_pages(nid):
            raise OutOfMemory(f"node {nid} has no free page")
        self._grow_pages(int(pages.max()) + 1)
        pfns = self._alloc(nid, pages.size)
        if run is not None:
            self._pfn[run[0]:run[1]] = pfns
        else:
            self._pfn[pages] = pfns
        self._set_pages(pfns, pages)
        self._placed += pages.size
        return pfns

    def place_range(self, first: int, count: int, nid: int) -> None:
        """place_many(pages first .. first + count - 1): the first touch of a region, done
        with slices when the node hands out fresh PFNs (a 256 GiB region in well under 5 s)."""
        if count <= 0:
            return
        if self._freed[nid].size or nid in self._taken or count > self.free_pages(nid):
            self.place_many(np.arange(first, first + count, dtype=np.int64), nid)
            return
        self._grow_pages(first + count)
        if (self._pfn[first:first + count] != NO_PAGE).any():
            raise ValueError(f"a page of {first}..{first + count - 1} is already placed")
        fresh = self._next[nid]
        self._map_sections(fresh, fresh + count)
        shifts = self._shift[fresh >> SECTION_SHIFT:((fresh + count - 1) >> SECTION_SHIFT) + 1]
        if not (shifts == shifts[0]).all():  # sections not back to back: the general path
            self.place_many(np.arange(first, first + count, dtype=np.int64), nid)
            return
        self._next[nid] = fresh + count
        self._used[nid] += count
        self._pfn[first:first + count] = np.arange(fresh, fresh + count, dtype=np.int64)
        start = fresh + int(shifts[0])
        self._page[start:start + count] = np.arange(first, first + count, dtype=np.int64)
        self._placed += count

    def isolate(self, pfn: int) -> int:
        """Take the page at pfn off the LRU until putback: nothing finds it meanwhile, by PFN
        or among a node's pages (no promotion, no demotion). Returns the page."""
        page = self.page_at(pfn)
        if page is None:
            raise KeyError(f"PFN {pfn} holds no page")
        self._set_pages(np.array([pfn]), np.array([NO_PAGE]))
        self._pfn[page] = NO_PAGE
        self._placed -= 1
        return page

    def putback(self, pfn: int, page: int) -> None:
        """Put page back on the LRU at pfn (after isolate, or to hand-place it in a test);
        the PFN must be on a node."""
        if self.topology.node_of_pfn(pfn) is None:
            raise ValueError(f"PFN {pfn} is on no node")
        self._map_sections(pfn, pfn + 1)
        self._set_pages(np.array([pfn]), np.array([page]))
        self._grow_pages(page + 1)
        if self._pfn[page] == NO_PAGE:
            self._placed += 1
        self._pfn[page] = pfn

    def migrate(self, pfn: int, target: int) -> int:
        """Move the page at pfn to a free PFN on target; return the new PFN."""
        moved, _ = self.migrate_many(np.array([pfn], dtype=np.int64), target)
        if not moved.size:
            raise OutOfMemory(f"node {target} has no free page")
        return int(moved[0])

    def migrate_many(self, pfns: I64 | Sequence[int], target: int) -> tuple[I64, I64]:
        """migrate() each PFN in order while target has a free page; the new PFNs of those
        that moved (a prefix of pfns: a failure means target is full, so all later ones fail)
        and their pages. The PFNs come out exactly as one-by-one allocations would hand them
        out."""
        olds = np.asarray(pfns, dtype=np.int64)
        # (a section walk's PFNs ascend, kmigrated's batches descend, one after another: a
        # stable sort, timsort for int64, takes such runs in linear time)
        if olds.size > 1 and not (np.diff(np.sort(olds, kind="stable")) != 0).all():
            raise ValueError("a PFN is listed twice")
        node = self.topology.node(target)
        if ((olds >= node.pfn_start) & (olds < node.pfn_end)).any():
            raise ValueError(f"a page is already on node {target}")  # nobody migrates in place
        olds = olds[:min(olds.size, self.free_pages(target))]
        pages = self.pages_at(olds)
        if (pages == NO_PAGE).any():
            raise KeyError(f"PFN {int(olds[pages == NO_PAGE][0])} holds no page")
        new = self._alloc(target, olds.size)
        self._set_pages(olds, np.full(olds.size, NO_PAGE, dtype=np.int64))
        self._set_pages(new, pages)
        self._pfn[pages] = new
        self._free(olds)
        return new, pages

    def _grow_pages(self, top: int) -> None:
        """Make page ids below `top` addressable in the page -> PFN array (by doubling)."""
        if top > self._pfn.size:
            if top > ID32_MAX:
                raise ValueError(f"page ids reach {top}: at most {ID32_MAX} are stored")
            size = min(max(top, 2 * self._pfn.size), ID32_MAX)
            grown: Ids = np.full(size, NO_PAGE, dtype=self._frame_dtype)
            grown[:self._pfn.size] = self._pfn
            self._pfn = grown
            ages = np.full(size, NEVER_ACCESSED, dtype=np.uint16)
            ages[:self.last_access.size] = self.last_access
            self.last_access = ages


def lru_unit_ms(duration_ms: float) -> int:
    """ms per LRU stamp step for a run this long: 1 ms while the run fits the 2-byte stamp
    (65.5 s), coarser beyond (a 600 s run steps 10 ms; kswapd's own LRU is coarser still)."""
    return max(1, math.ceil((duration_ms + 1) / (LRU_MAX - 1)))


@jitable
def lru_stamp(ms: float, unit: int) -> int:
    """The LRU age of an access at ms of the run: later accesses never get smaller stamps."""
    return min(1 + int(ms) // unit, LRU_MAX)


@jitable
def stamp_pages(last_access: Any, pages: Any, when: Any, first: int, end: int,
                unit: int) -> None:
    """Ops first .. end - 1 (pages[i] accessed at when[i] ms) stamp their pages' LRU ages:
    each page keeps the largest stamp, in any order of the ops. For the compiled loops, as
    a loop of its own with a branchless max: the random loads of last_access then overlap
    (inside the draw loop and behind a branch, one op's miss on it waited for the last;
    split out, the 64-CPU microbench's draw loop took 22% less time). profile_group calls
    it one op at a time."""
    for i in range(first, end):
        page = pages[i]
        last_access[page] = max(lru_stamp(when[i], unit), last_access[page])


def _run(values: I64) -> tuple[int, int] | None:
    """(first, end) when values are first, first + 1, ..., end - 1, else None."""
    if not values.size:
        return None
    first, last = int(values[0]), int(values[-1])
    if last - first != values.size - 1:
        return None
    if values.size > 2 and not (np.diff(values) == 1).all():
        return None
    return first, last + 1


def place_pages(memory: Memory, pages: int, policy: str) -> None:
    """First-touch placement of pages 0..pages-1: `cxl` fills the lower tier node by node,
    `dram` fills the top tier first and spills to the lower tier, `interleave` round-robins
    over every node with room."""
    topo = memory.topology
    lower = [n.nid for n in topo.lower_nodes()]
    top = [n.nid for n in topo.nodes if n.toptier]
    order = {"cxl": lower, "dram": top + lower, "interleave": top + lower}[policy]
    if policy == "interleave":
        _interleave(memory, pages, order)
        return
    first = 0
    for nid in order:  # node by node: each takes the next run of pages it has room for
        count = min(pages - first, memory.free_pages(nid))
        memory.place_range(first, count, nid)
        first += count
    if first < pages:
        raise OutOfMemory(f"no room for page {first} with placement {policy}")


def _interleave(memory: Memory, pages: int, order: list[int]) -> None:
    """Round-robin over `order`, a full node skipped, in whole rounds: while every node with
    room has room for r more pages, the next r rounds give each of them every len-th page."""
    cycle, page = 0, 0
    while page < pages:
        turn = [order[(cycle + k) % len(order)] for k in range(len(order))]
        room = [nid for nid in turn if memory.free_pages(nid) > 0]
        if not room:
            raise OutOfMemory(f"no room for page {page}")
        rounds = min(min(map(memory.free_pages, room)), (pages - page) // len(room))
        take = max(rounds * len(room), min(len(room), pages - page))  # a last, partial round
        block = np.arange(page, page + take, dtype=np.int64)
        for k, nid in enumerate(room):
            memory.place_many(block[k::len(room)], nid)
        cycle = (order.index(room[(take - 1) % len(room)]) + 1) % len(order)
        page += take
