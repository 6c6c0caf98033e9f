"""Synthetic workloads as per-CPU op streams described by their distributions.

A workload is a region of `pages` pages and a sequence of phases. Each phase gives the
probability that a memory op goes to each page, and (from the LLC model) the probability that
such an access misses L3. Ops are never materialised one by one: the profiler jumps from one
tagged op to the next and `SyntheticOps` draws only those ops from the phase's distribution
(memory op or not, load or store, kernel or user RIP, page, L3 miss). Ground truth comes from
the same distributions, not from sampling.

Kinds (parameters in the scenario's `workload` section):
- uniform: every page equally likely;
- gups-hot: `hot_access_fraction` (0.9) of updates go to a contiguous hot set of
  `hot_fraction` (1/16) of the region, the rest uniformly anywhere (HeMem GUPS);
- gups-shift: gups-hot whose hot set moves by `shift_fraction` at `shift_at_s`: the first part
  of the hot set is replaced by as many pages just past its end (HeMem gups-hotset-move);
- zipf: page ranks drawn by a seeded permutation, P(rank r) ~ 1 / r^theta;
- scan: a sequential sweep, `scan_mib_per_s` per CPU, every access an L3 miss (no reuse);
  the CPUs start at evenly spaced offsets, like threads splitting the region;
- microbench: the pghot micro-benchmark replica: random 4 KiB pages, 50:50 load/store,
  memory ops only (so the scenario refuses mem_op_fraction and load_fraction for it);
- phased: a list of the above, one after another, over the same region.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, NamedTuple, overload

import numpy as np
import numpy.typing as npt

from generated.ibs_mprof import PAGE_SHIFT
from runtime.llc import che_miss_probability
from runtime.pageruns import PageRuns
from runtime.profiler import OpBatch, TaggedOp

FloatArray = npt.NDArray[np.float64]
PAGE_BYTES = 1 << PAGE_SHIFT
BASE_VADDR = 0x7F0000000000
DRAW_CHUNK = 8192
"""Memory ops drawn per generator call (the stream of uniforms is the same for any size).
4096 cost the 64-CPU microbench ~9% in per-chunk overhead; larger buffers cost memory per
CPU (about 400 KiB each at 8192) for no measurable gain."""
MAX_GAP = 1 << 40
"""Longest run of non-memory tags between two memory ops (~10^7 CPU-seconds at period
10000): a longer geometric gap is cut here, which matters only for a mem_op_fraction below
~1e-12 (it keeps tag ordinals inside int64)."""


@dataclass(frozen=True)
class Phase:
    """From start_ms on, memory ops go to pages with `probs` and miss L3 with `miss`, both
    held as runs of pages (runtime/pageruns.py): a gups region of any size is a few runs."""

    start_ms: float
    probs: PageRuns
    miss: PageRuns
    label: str
    scan_pages_per_ms: float = 0.0  # > 0: a sequential sweep instead of random draws

    @property
    def miss_mass(self) -> PageRuns:
        """Per memory op: probability of an L3-miss access to each page (A_miss / A_all)."""
        return self.probs.combine(self.miss, np.multiply)


@dataclass
class Workload:
    kind: str
    pages: int
    phases: list[Phase]
    mem_op_fraction: float = 0.3
    load_fraction: float = 0.5
    kernel_fraction: float = 0.0
    placement: str = "cxl"
    params: dict[str, Any] = field(default_factory=dict)
    line_bytes: int = 64  # an access touches one line of its page (the LLC model's line)


def phase_of(starts: Sequence[float], t_ms: float) -> int:
    """Index of the phase running at t_ms: the last one starting at or before it."""
    return max(bisect.bisect_right(starts, t_ms) - 1, 0)



def _normalise(weights: FloatArray) -> FloatArray:
    normalised: FloatArray = weights / weights.sum()
    return normalised


def gups_probs(pages: int, hot_fraction: float, hot_access_fraction: float,
               hot_start: int) -> tuple[PageRuns, int]:
    """`hot_access_fraction` of the accesses to a set of `hot_fraction` of the pages starting
    at hot_start (wrapping past the end), the rest uniform over all pages; and the hot set's
    size. Computed per run: (1 - f) / pages everywhere, plus f / hot on the hot set."""
    return _hot_runs(pages, hot_start, max(1, int(round(pages * hot_fraction))),
                     hot_access_fraction)


def _hot_runs(pages: int, start: int, hot: int, fraction: float) -> tuple[PageRuns, int]:
    base = (1.0 - fraction) / pages
    value = base + fraction / hot
    start %= pages
    end = start + hot
    segments = [(start, min(end, pages), value)]
    if end > pages:  # the hot set wraps round to page 0
        segments.insert(0, (0, end - pages, value))
    return PageRuns.from_segments(pages, segments, base), hot


def zipf_probs(pages: int, theta: float, seed: int) -> PageRuns:
    ranks = np.random.default_rng(seed).permutation(pages) + 1
    return PageRuns.from_array(_normalise(1.0 / ranks.astype(np.float64) ** theta))


def build_phase_probs(kind: str, pages: int, p: dict[str, Any], seed: int) -> list[
        tuple[float, PageRuns, str, float]]:
    """(start_ms, probs, label, scan_pages_per_ms) for one workload kind."""
    uniform = PageRuns.constant(pages, 1.0 / pages)
    if kind in ("uniform", "microbench"):
        return [(0.0, uniform, kind, 0.0)]
    if kind == "gups-hot":
        probs, _ = gups_probs(pages, p["hot_fraction"], p["hot_access_fraction"],
                              int(pages * p["hot_offset_fraction"]))
        return [(0.0, probs, kind, 0.0)]
    if kind == "gups-shift":
        start = int(pages * p["hot_offset_fraction"])
        before, hot = gups_probs(pages, p["hot_fraction"], p["hot_access_fraction"], start)
        # The first `moved` pages of the hot set leave it; as many just past its end join.
        moved = int(round(hot * p["shift_fraction"]))
        after, _ = _hot_runs(pages, start + moved, hot, p["hot_access_fraction"])
        return [(0.0, before, "gups-shift before", 0.0),
                (p["shift_at_s"] * 1000.0, after, "gups-shift after", 0.0)]
    if kind == "zipf":
        return [(0.0, zipf_probs(pages, p["theta"], seed), kind, 0.0)]
    if kind == "scan":
        pages_per_ms = p["scan_mib_per_s"] * (1 << 20) / PAGE_BYTES / 1000.0
        return [(0.0, uniform, kind, pages_per_ms)]
    raise ValueError(f"unknown workload kind {kind!r}")


def build_workload(spec: dict[str, Any], llc_bytes: int, line_bytes: int, seed: int,
                   progress: Callable[[float], None] | None = None) -> Workload:
    """Workload from a validated scenario `workload` section (see runtime/scenario.py).
    `progress` hears the fraction done (distributions, then the LLC model, phase by phase)."""
    pages = int(spec["region_mib"]) * (1 << 20) // PAGE_BYTES
    kind = spec["kind"]
    parts: list[tuple[float, PageRuns, str, float]] = []
    if kind == "phased":
        offset = 0.0
        for i, sub in enumerate(spec["phases"]):
            for start, probs, label, scan in build_phase_probs(sub["kind"], pages, sub,
                                                               seed + i):
                parts.append((offset + start, probs, f"phase {i}: {label}", scan))
            offset += sub["duration_s"] * 1000.0
            if progress is not None:
                progress((i + 1) / len(spec["phases"]) / 2)
    else:
        parts = build_phase_probs(kind, pages, spec, seed)
    starts = [start for start, _, _, _ in parts]
    if starts != sorted(starts):  # both engines look phases up by start time
        raise ValueError(f"workload phases out of order: starts {starts}")
    phases = []
    for i, (start, probs, label, scan) in enumerate(parts):
        miss = PageRuns.constant(pages, 1.0) if scan > 0 else \
            che_miss_probability(probs, llc_bytes, line_bytes)
        phases.append(Phase(start, probs, miss, label, scan))
        if progress is not None:
            progress(0.5 + (i + 1) / len(parts) / 2)
    mem = 1.0 if kind == "microbench" else spec["mem_op_fraction"]
    load = 0.5 if kind == "microbench" else spec["load_fraction"]
    return Workload(kind, pages, phases, mem, load, spec["kernel_fraction"], spec["placement"],
                    dict(spec), line_bytes)


class PageSampler:
    """A page from a phase's distribution with one uniform, in O(1) for the usual shapes.

    The distribution is kept as runs of pages of equal probability (gups has 3, uniform 1,
    zipf one per page): the uniform picks a run by its mass (a search over the runs only),
    then a page within the run uniformly. `pages` (numpy) and `page` (Python floats) do the
    same float operations in the same order, so both engines get the same page.
    """

    COMPARE_UPTO = 8
    """With this many runs or fewer, a key's run is found by comparisons (as bisect_right)."""
    SORT_ABOVE = 4096
    """With more runs than this, keys are searched in sorted order (cache-friendly)."""
    CHUNK = 65536
    """Keys located per pass (their arrays fit in a core's cache)."""

    def __init__(self, probs: PageRuns) -> None:
        starts, lengths = probs.starts, probs.lengths
        self.hi = np.cumsum(probs.values * lengths)
        self.lo = np.r_[0.0, self.hi[:-1]]
        self.width = self.hi - self.lo
        self.start, self.length = starts, lengths
        self.total = float(self.hi[-1])
        # A key rounding up to the total falls in the last run that has any mass.
        self.last = int(np.flatnonzero(self.width > 0)[-1])

    @cached_property
    def _lists(self) -> tuple[list[Any], ...]:
        """The runs as Python lists, for `page` (scalar lookups are faster on lists). Built
        on first use: a fast-engine run of a zipf workload never needs these ~160 bytes a
        page."""
        return (self.hi.tolist(), self.lo.tolist(), self.width.tolist(), self.start.tolist(),
                self.length.tolist())

    def pages(self, u: FloatArray) -> npt.NDArray[np.int64]:
        """The page of each uniform: the array twin of `page` (the fast engine's draws),
        held equal to it in tests/test_twins.py."""
        return self.locate(u)[0]

    def locate(self, u: FloatArray) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64] | None]:
        """Each uniform's page and run (None when there is one run), CHUNK keys at a time so
        that the passes over a chunk stay in cache."""
        if u.size <= self.CHUNK:
            return self._locate(u)
        parts = [self._locate(u[i:i + self.CHUNK]) for i in range(0, u.size, self.CHUNK)]
        runs = [r for _, r in parts if r is not None]
        return (np.concatenate([p for p, _ in parts]),
                np.concatenate(runs) if len(runs) == len(parts) else None)

    def _locate(self, u: FloatArray) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64] | None]:
        key = u * self.total
        if self.hi.size == 1:  # one run (uniform): no run lookup at all
            _, (lo,), (width,), (start,), (length,) = self._lists
            one: npt.NDArray[np.int64] = ((key - lo) / width * length).astype(np.int64)
            np.minimum(one, length - 1, out=one)
            one += start
            return one, None
        if self.hi.size <= self.COMPARE_UPTO:  # a few runs: count the bounds at or below key
            run = np.zeros(key.size, dtype=np.int64)
            for bound in self.hi[:-1].tolist():
                run += key >= bound
        elif self.hi.size > self.SORT_ABOVE:
            order = np.argsort(key)
            run = np.empty(key.size, dtype=np.int64)
            run[order] = np.searchsorted(self.hi, key[order], side="right")
        else:
            run = np.searchsorted(self.hi, key, side="right")
        run = np.minimum(run, self.last)
        length = self.length.take(run)
        page: npt.NDArray[np.int64] = ((key - self.lo.take(run)) / self.width.take(run) *
                                       length).astype(np.int64)
        np.minimum(page, length - 1, out=page)  # the offset within the run, then the page
        page += self.start.take(run)
        return page, run

    def page(self, u: float) -> int:
        """The page of one uniform: the scalar twin of `pages` (the reference engine's
        draws); the same float operations in the same order."""
        hi, lo, width, start, length = self._lists
        key = u * self.total
        run = min(bisect.bisect_right(hi, key), self.last)
        offset = int((key - lo[run]) / width[run] * length[run])
        page: int = start[run] + min(offset, length[run] - 1)
        return page


class MemoryDraws(NamedTuple):
    """The memory ops among a run of tags (`at`: their positions in it) and their draws."""

    at: npt.NDArray[np.int64]
    u_page: FloatArray
    u_miss: FloatArray
    load: npt.NDArray[np.bool_]
    kernel: npt.NDArray[np.bool_]
    line: npt.NDArray[np.int64]
    other_start: int  # ordinal of the run's first non-memory tag


class DrawStream:
    """One CPU's tagged ops as random draws, shared by both engines.

    Each tagged op is a memory op with probability mem_op_fraction, independently, so the
    number of non-memory tags before the next memory op is geometric: only memory ops are
    drawn (page, miss, line, and gap, load, kernel where not certain: 3 to 6 uniforms each,
    from `rng` in chunks of DRAW_CHUNK), and a tag that is not one costs nothing. The RIP
    bit of the non-memory tags comes from a second generator, by their ordinal, only when
    someone asks (without L3MissOnly they can be samples). Pages are drawn by the caller,
    with the phase's PageSampler. The reference takes one tag at a time (`next`), the fast
    engine many (`take`); the generators are consumed identically, so both see the same ops.
    """

    def __init__(self, seed: int, cpu: int, mem_op_fraction: float, load_fraction: float,
                 kernel_fraction: float, lines_per_page: int) -> None:
        self.rng = np.random.default_rng([seed, cpu])
        self.other_rng = np.random.default_rng([seed, cpu, 1])
        self.mem_op_fraction = mem_op_fraction
        self.load_fraction = load_fraction
        self.kernel_fraction = kernel_fraction
        self.lines_per_page = lines_per_page
        self.tag = 0  # tags consumed
        self.other = 0  # non-memory tags consumed
        self.head = 0  # first unconsumed memory op in the buffer
        self._last_pos = -1  # tag ordinal of the last memory op drawn
        f, i = np.zeros(0), np.zeros(0, dtype=np.int64)
        self.buf = MemoryDraws(i, f, f, np.zeros(0, dtype=bool), np.zeros(0, dtype=bool), i, 0)
        """Memory ops drawn and not yet consumed from `head` on (`at`: absolute tag ordinals)."""
        self._lists: list[list[Any]] | None = None
        self._other_start = 0
        self._other: npt.NDArray[np.bool_] = np.zeros(0, dtype=bool)

    def _chunk(self) -> MemoryDraws:
        """The next DRAW_CHUNK memory ops (`at`: absolute tag ordinals). A draw whose outcome
        is certain (every tag a memory op, a load or kernel fraction of 0 or 1) takes no
        uniform, so a chunk has 3 to 6 columns; the layout depends only on the workload."""
        m = self.mem_op_fraction
        coins = [f for f in (m, self.load_fraction, self.kernel_fraction) if 0.0 < f < 1.0]
        u = self.rng.random((DRAW_CHUNK, 3 + len(coins)))
        cols = iter(u.T)
        u_page, u_miss, u_line = next(cols), next(cols), next(cols)

        def coin(fraction: float) -> npt.NDArray[np.bool_]:
            drawn: npt.NDArray[np.bool_] = next(cols) < fraction if 0.0 < fraction < 1.0 \
                else np.full(DRAW_CHUNK, fraction >= 1.0)
            return drawn

        if 0.0 < m < 1.0:  # capped so that a tiny fraction cannot overflow the tag ordinals
            gap = np.minimum(np.floor(np.log1p(-next(cols)) / np.log1p(-m)),
                             MAX_GAP).astype(np.int64)
            pos = self._last_pos + np.cumsum(gap + 1)
        else:  # every tag a memory op: no gaps
            pos = np.arange(self._last_pos + 1, self._last_pos + 1 + DRAW_CHUNK, dtype=np.int64)
        load, kernel = coin(self.load_fraction), coin(self.kernel_fraction)
        self._last_pos = int(pos[-1])
        return MemoryDraws(pos, u_page, u_miss, load, kernel,
                           (u_line * self.lines_per_page).astype(np.int64), 0)

    def _cover(self, tag_end: int) -> None:
        """Draw until the buffer holds a memory op at or past tag_end (all new chunks joined
        to the unconsumed ops in one concatenation)."""
        if self.mem_op_fraction <= 0.0 or self._last_pos >= tag_end:
            return  # no memory ops at all, or enough drawn
        chunks = []
        while self._last_pos < tag_end:
            chunks.append(self._chunk())
        b, h = self.buf, self.head
        self.buf = MemoryDraws(
            np.concatenate([b.at[h:], *(c.at for c in chunks)]),
            np.concatenate([b.u_page[h:], *(c.u_page for c in chunks)]),
            np.concatenate([b.u_miss[h:], *(c.u_miss for c in chunks)]),
            np.concatenate([b.load[h:], *(c.load for c in chunks)]),
            np.concatenate([b.kernel[h:], *(c.kernel for c in chunks)]),
            np.concatenate([b.line[h:], *(c.line for c in chunks)]), 0)
        self.head, self._lists = 0, None

    def take(self, tags: int) -> MemoryDraws:
        """The next `tags` tags: their memory ops, positions counted from the first."""
        first = self.tag
        end = first + tags
        self._cover(end)
        b, h = self.buf, self.head
        k = h + int(np.searchsorted(b.at[h:], end))
        got = MemoryDraws(b.at[h:k] - first, b.u_page[h:k], b.u_miss[h:k], b.load[h:k],
                          b.kernel[h:k], b.line[h:k], self.other)
        self.tag, self.head = end, k
        self.other += tags - (k - h)
        return got

    def next(self) -> tuple[float, float, bool, bool, int] | None:
        """The next tag: (u_page, u_miss, load, kernel, line) of a memory op, or None."""
        t = self.tag
        self.tag = t + 1
        self._cover(t)
        if self._lists is None:
            self._lists = [col.tolist() for col in self.buf[:6]]
        pos, u_page, u_miss, load, kernel, line = self._lists
        h = self.head
        if h < len(pos) and pos[h] == t:
            self.head = h + 1
            return u_page[h], u_miss[h], load[h], kernel[h], line[h]
        self.other += 1
        return None

    def other_kernel(self, start: int, count: int) -> npt.NDArray[np.bool_]:
        """RIP bit 63 of non-memory tags start .. start+count-1 (by ordinal; never goes back)."""
        if self.kernel_fraction <= 0.0 or self.kernel_fraction >= 1.0 or count == 0:
            return np.full(count, self.kernel_fraction >= 1.0)
        if start < self._other_start:
            raise ValueError("non-memory RIP bits are drawn in order")
        end = self._other_start + self._other.size
        if end < start + count:
            # Bits before `start` are never asked for again: keep none of them.
            drop = min(start - self._other_start, self._other.size)
            first, parts = self._other_start + drop, [self._other[drop:]]
            while end < start + count:
                chunk = self.other_rng.random(DRAW_CHUNK) < self.kernel_fraction
                if end + DRAW_CHUNK <= start:
                    first, parts = end + DRAW_CHUNK, []
                else:
                    parts.append(chunk)
                end += DRAW_CHUNK
            self._other, self._other_start = np.concatenate(parts), first
        a = start - self._other_start
        return self._other[a:a + count]


class SyntheticOps:
    """The op source for synthetic workloads: draws tagged ops per CPU from a DrawStream.

    Each CPU has its own seeded generators, so a run is reproducible whatever the event order
    between CPUs.
    """

    def __init__(self, workload: Workload, seed: int, cpus: int) -> None:
        self.workload = workload
        wl = workload
        self.samplers = [PageSampler(p.probs) for p in wl.phases]
        self.streams = [DrawStream(seed, cpu, wl.mem_op_fraction, wl.load_fraction,
                                   wl.kernel_fraction, PAGE_BYTES // wl.line_bytes)
                        for cpu in range(cpus)]
        # The cache model gives pages of equal probability equal miss probabilities: then a
        # phase's miss probability comes per sampler run (a small table).
        self._run_miss: list[FloatArray | None] = []
        for phase, sampler in zip(wl.phases, self.samplers, strict=True):
            per_run = phase.miss.of(sampler.start)
            same = all(np.isin(phase.miss.starts, sampler.start))  # no miss edge inside a run
            self._run_miss.append(per_run if same else None)
        self._starts_list = [p.start_ms for p in wl.phases]
        self._starts = np.array(self._starts_list)
        self._scan = np.array([p.scan_pages_per_ms for p in wl.phases])

    def miss_of(self, phase: int, page: int) -> float:
        """A page's miss probability in a phase (the reference's one-op-at-a-time draws)."""
        return float(self.workload.phases[phase].miss.of(np.array([page]))[0])

    @overload
    def scan_offset(self, cpu: int) -> int: ...

    @overload
    def scan_offset(self, cpu: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]: ...

    def scan_offset(self, cpu: int | npt.NDArray[np.int64]) -> int | npt.NDArray[np.int64]:
        """Where cpu's sweep starts: the CPUs of a scan split the region between them."""
        return cpu * self.workload.pages // len(self.streams)

    def tagged_batches(self, cpus: list[int], first_ops: list[int], period_ops: int,
                       times_ms: list[FloatArray], non_memory: bool) -> OpBatch:
        """Vectorised tagged_op over several CPUs: the same draws, the same arithmetic.
        Synthetic ops do not depend on the op position (each CPU's stream counts its own
        tags), so first_ops and period_ops are not needed here; lackey traces use them."""
        wl = self.workload
        draws = [self.streams[cpu].take(times.size) for cpu, times in zip(cpus, times_ms,
                                                                            strict=True)]
        sizes = [d.at.size for d in draws]
        cpu = np.repeat(np.array(cpus, dtype=np.int64), sizes)
        at = np.concatenate([d.at for d in draws])
        # (`at` ascends within the run: as many memory ops as tags means every tag is one)
        when = np.concatenate([t if d.at.size == t.size else t[d.at]
                               for t, d in zip(times_ms, draws, strict=True)])
        u_page = np.concatenate([d.u_page for d in draws])
        line = np.concatenate([d.line for d in draws])
        u_miss = np.concatenate([d.u_miss for d in draws])
        first = last = 0
        if len(wl.phases) > 1 and at.size:
            phase = np.maximum(np.searchsorted(self._starts, when, side="right") - 1, 0)
            first, last = int(phase.min()), int(phase.max())
        if first == last:  # one phase: no scatter into preallocated columns
            page, miss = self._phase_pages(first, when, cpu, u_page)
            l3_miss = u_miss < miss
        else:
            page = np.empty(at.size, dtype=np.int64)
            l3_miss = np.empty(at.size, dtype=bool)
            for ph in range(first, last + 1):
                sel = np.flatnonzero(phase == ph)
                page[sel], miss = self._phase_pages(ph, when[sel], cpu[sel], u_page[sel])
                l3_miss[sel] = u_miss[sel] < miss
        other = np.concatenate(
            [self.streams[c].other_kernel(d.other_start, t.size - d.at.size)
             for c, t, d in zip(cpus, times_ms, draws, strict=True)]) if non_memory else None
        load = np.concatenate([d.load for d in draws])
        offset = line * wl.line_bytes  # of BASE_VADDR + page * PAGE_BYTES + line * line_bytes
        return OpBatch(cpu=cpu, at=at, when=when,
                       kernel=np.concatenate([d.kernel for d in draws]), load=load, store=~load,
                       page=page, offset=offset, l3_miss=l3_miss, other_kernel=other)

    def _phase_pages(self, ph: int, when: FloatArray, cpu: npt.NDArray[np.int64],
                     u_page: FloatArray) -> tuple[npt.NDArray[np.int64], FloatArray | float]:
        """Pages of memory ops in phase ph, and their L3-miss probabilities (one float when
        the phase has a single run of equal probabilities)."""
        wl = self.workload
        scan = self._scan[ph]
        if scan > 0:
            page = ((when * scan).astype(np.int64) + self.scan_offset(cpu)) % wl.pages
            return page, wl.phases[ph].miss.of(page)
        run_miss = self._run_miss[ph]
        if run_miss is None:
            page = self.samplers[ph].pages(u_page)
            return page, wl.phases[ph].miss.of(page)
        page, run = self.samplers[ph].locate(u_page)
        return page, float(run_miss[0]) if run is None else run_miss[run]

    def tagged_op(self, cpu: int, op_index: int, now_ms: float) -> TaggedOp:
        wl = self.workload
        stream = self.streams[cpu]
        drawn = stream.next()
        if drawn is None:
            return TaggedOp(kernel=bool(stream.other_kernel(stream.other - 1, 1)[0]))
        u_page, u_miss, load, kernel, line = drawn
        phase_i = phase_of(self._starts_list, now_ms)
        scan = wl.phases[phase_i].scan_pages_per_ms
        if scan > 0:
            page = (int(now_ms * scan) + self.scan_offset(cpu)) % wl.pages
        else:
            page = self.samplers[phase_i].page(u_page)
        return TaggedOp(load=load, store=not load, kernel=kernel,
                        vaddr=BASE_VADDR + page * PAGE_BYTES + line * wl.line_bytes, page=page,
                        l3_miss=u_miss < self.miss_of(phase_i, page))
