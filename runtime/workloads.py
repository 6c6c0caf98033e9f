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

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import numpy.typing as npt

from generated.ibs_mprof import PAGE_SHIFT
from runtime.draws import (
    KEEP_ALL,
    DrawParams,
    KeptMisses,
    OpColumns,
    PhaseTables,
    draw_group,
    draw_memory_op,
    gap_factor,
    geometric_gap,
    miss_probability,
    new_draw_state,
    op_columns,
    other_bit,
    phase_at,
    run_page,
    sampler_run,
    scan_page,
)
from runtime.llc import che_miss_probability
from runtime.pageruns import PageRuns
from runtime.profiler import OpBatch, TaggedOp
from runtime.search import bisect_right

FloatArray = npt.NDArray[np.float64]
PAGE_BYTES = 1 << PAGE_SHIFT
BASE_VADDR = 0x7F0000000000


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


GUIDE_FROM = 64
"""Sampler runs from which a phase gets a guide table: fewer are searched by halving in
cache (the guide's walk cost a 64-CPU gups run a third more in its draw loop)."""
GUIDE_MAX = 1 << 22
"""Most guide-table entries a phase gets (one per sampler run up to this): a key's search
then starts at most a few runs from its answer on average."""


def phase_tables(phases: Sequence[Phase]) -> PhaseTables:
    """The phases as the flat arrays the draw rules read (runtime/draws.py). A phase's page
    distribution is kept as runs of pages of equal probability (gups has 3, uniform 1, zipf
    one per page): a uniform picks a run by its cumulative mass (from the guide table's
    start, a step or two on average), then a page within the run uniformly. 8 bytes a run
    each for the cumulative mass, first page and miss probability (plus the guide)."""
    cols: dict[str, list[npt.NDArray[Any]]] = {name: [] for name in (
        "hi", "start", "guide", "miss_start", "miss_value", "run_miss")}
    aligned = []
    runs = 0
    for phase in phases:
        probs, miss = phase.probs, phase.miss
        hi = np.cumsum(probs.values * probs.lengths)
        total = float(hi[-1])
        size = min(hi.size, GUIDE_MAX) if hi.size >= GUIDE_FROM else 0
        bounds = np.arange(size, dtype=np.float64)  # b / size * total, in place
        bounds /= size
        bounds *= total
        guide = np.searchsorted(hi, bounds, side="right")
        del bounds
        np.minimum(guide, hi.size - 1, out=guide)
        guide += runs
        cols["guide"].append(guide)
        for name, values in (("hi", hi), ("start", probs.starts),
                             ("miss_start", miss.starts), ("miss_value", miss.values),
                             ("run_miss", miss.of(probs.starts))):
            cols[name].append(values)
        aligned.append(int(np.isin(miss.starts, probs.starts).all()))
        runs += hi.size

    def first(name: str) -> npt.NDArray[np.int64]:
        offsets: npt.NDArray[np.int64] = np.zeros(len(phases) + 1, dtype=np.int64)
        offsets[1:] = np.cumsum([part.size for part in cols[name]])
        return offsets

    def flat(name: str, dtype: type[Any]) -> npt.NDArray[Any]:
        """One array of the phases' parts (a single phase's is kept, not copied: a zipf
        region's tables are hundreds of megabytes)."""
        parts = cols.pop(name)
        return np.ascontiguousarray(parts[0] if len(parts) == 1 else np.concatenate(parts),
                                    dtype=dtype)

    return PhaseTables(
        phase_start=np.array([p.start_ms for p in phases], dtype=np.float64),
        scan=np.array([p.scan_pages_per_ms for p in phases], dtype=np.float64),
        run_first=first("hi"),
        hi=flat("hi", np.float64), start=flat("start", np.int64),
        guide_first=first("guide"), guide=flat("guide", np.int64),
        miss_first=first("miss_start"), miss_start=flat("miss_start", np.int64),
        miss_value=flat("miss_value", np.float64),
        miss_aligned=np.array(aligned, dtype=np.int64), run_miss=flat("run_miss", np.float64))


def shared_times(times_ms: list[FloatArray]) -> tuple[FloatArray, npt.NDArray[np.int64]]:
    """The CPUs' tag times as one array and the row each CPU's start at. CPUs handed the
    same array (the fast engine's CPUs in step share one) share its rows: joining a part's
    copies cost the 64-CPU microbench ~2% of its run."""
    seen: dict[int, int] = {}
    parts: list[FloatArray] = []
    firsts: list[int] = []
    rows = 0
    for t in times_ms:
        first = seen.get(id(t))
        if first is None:
            first = seen[id(t)] = rows
            parts.append(t)
            rows += t.size
        firsts.append(first)
    joined = parts[0] if len(parts) == 1 else np.concatenate(parts) if parts else np.zeros(0)
    return joined, np.array(firsts, dtype=np.int64)


class SyntheticOps:
    """The op source for synthetic workloads: each CPU's tagged ops drawn from its own seeded
    generators (runtime/draws.py), so a run is reproducible whatever the event order between
    CPUs. The reference takes one tag at a time (`tagged_op`, the rules interpreted), the fast
    engine a block of CPUs at once (`tagged_batches`, the same rules compiled); the generators
    are consumed identically, so both see the same ops."""

    def __init__(self, workload: Workload, seed: int, cpus: int) -> None:
        self.workload = wl = workload
        self.rngs = [np.random.default_rng([seed, cpu]) for cpu in range(cpus)]
        self.other_rngs = [np.random.default_rng([seed, cpu, 1]) for cpu in range(cpus)]
        self.state = new_draw_state(cpus)
        mem = float(wl.mem_op_fraction)
        self.params = DrawParams(mem=mem, per_log_other=gap_factor(mem),
                                 load=float(wl.load_fraction),
                                 kernel=float(wl.kernel_fraction),
                                 lines_per_page=PAGE_BYTES // wl.line_bytes,
                                 line_bytes=wl.line_bytes, pages=wl.pages, cpus=cpus)
        self.tables = phase_tables(wl.phases)
        self._typed: tuple[Any, Any] | None = None

    def tagged_batches(self, cpus: list[int], first_ops: list[int], period_ops: int,
                       times_ms: list[FloatArray], non_memory: bool) -> OpBatch:
        """The next tags of several CPUs at once (draws.draw_group). Synthetic ops do not
        depend on the op position (each CPU's stream counts its own tags), so first_ops and
        period_ops are not needed here; lackey traces use them."""
        sizes = np.array([t.size for t in times_ms], dtype=np.int64)
        tags = int(sizes.sum())
        out = op_columns(tags)
        other = np.empty(tags if non_memory else 0, dtype=bool)
        n, o = self._draw(cpus, sizes, times_ms, int(non_memory), out, other, KEEP_ALL)
        load = out.load[:n]
        return OpBatch(cpu=out.cpu[:n], at=out.at[:n], when=out.when[:n],
                       kernel=out.kernel[:n], load=load, store=~load, page=out.page[:n],
                       offset=out.offset[:n], l3_miss=out.l3_miss[:n],
                       other_kernel=other[:o] if non_memory else None)

    def kept_misses(self, cpus: list[int], times_ms: list[FloatArray], keep: KeptMisses) -> int:
        """The next tags of several CPUs at once, through profilers that keep only L3
        misses (keep.active): the samples kept go to keep.samples, their number is returned
        (draws.draw_group applies the filters as it draws)."""
        sizes = np.array([t.size for t in times_ms], dtype=np.int64)
        kept, _ = self._draw(cpus, sizes, times_ms, 0, op_columns(int(sizes.max(initial=0))),
                             np.zeros(0, dtype=bool), keep)
        return kept

    def _draw(self, cpus: list[int], sizes: npt.NDArray[np.int64], times_ms: list[FloatArray],
              non_memory: int, out: OpColumns, other: npt.NDArray[np.bool_],
              keep: KeptMisses) -> tuple[int, int]:
        if self._typed is None:  # numba's typed lists of the generators, made once
            from runtime.jitlist import generator_list

            self._typed = (generator_list(self.rngs), generator_list(self.other_rngs))
        times, t_first = shared_times(times_ms)
        got: tuple[int, int] = draw_group(*self._typed, np.array(cpus, dtype=np.int64), sizes,
                                          times, t_first, self.state, self.params, self.tables,
                                          non_memory, out, other, keep)
        return got

    @cached_property
    def _lists(self) -> Any:
        """The tables as Python lists for tagged_op (one op at a time, lists index faster);
        made on first use: a fast-engine run never needs these ~30 bytes a run per list."""
        return PhaseTables(*(column.tolist() for column in self.tables))

    def tagged_op(self, cpu: int, op_index: int, now_ms: float) -> TaggedOp:
        """The CPU's next tag, one at a time: the twin of draws._draw_group, which does the
        same for a block (tests/test_workloads.py holds them equal)."""
        s, p = self.state, self.params
        t = int(s.tag[cpu])
        s.tag[cpu] = t + 1
        if not s.held[cpu] and p.mem > 0.0:
            (s.u_page[cpu], s.u_miss[cpu], s.line[cpu], v_gap, s.load[cpu],
             s.kernel[cpu]) = draw_memory_op(self.rngs[cpu], p.mem, p.load, p.kernel,
                                             p.lines_per_page)
            s.pos[cpu] += 1 if v_gap < 0.0 else geometric_gap(v_gap, p.per_log_other) + 1
            s.held[cpu] = 1
        if not (s.held[cpu] and s.pos[cpu] == t):
            ordinal = int(s.other[cpu])
            s.other[cpu] = ordinal + 1
            kernel, s.other_drawn[cpu] = other_bit(self.other_rngs[cpu], ordinal,
                                                   int(s.other_drawn[cpu]), p.kernel)
            return TaggedOp(kernel=bool(kernel))
        s.held[cpu] = 0
        tb = self._lists
        ph = phase_at(now_ms, tb.phase_start)
        run = -1
        if tb.scan[ph] > 0.0:
            page = scan_page(now_ms, tb.scan[ph], cpu, p.pages, p.cpus)
        else:
            first, end = tb.run_first[ph], tb.run_first[ph + 1]
            key = float(s.u_page[cpu]) * tb.hi[end - 1]  # u x the phase's mass
            guide_size = tb.guide_first[ph + 1] - tb.guide_first[ph]
            run = bisect_right(tb.hi, key, first, end) if guide_size == 0 else sampler_run(
                key, first, end, tb.hi, tb.guide, tb.guide_first[ph], guide_size)
            page = run_page(key, run, first, end, tb.hi, tb.start, p.pages)
        miss = float(s.u_miss[cpu]) < (
            tb.run_miss[run] if run >= 0 and tb.miss_aligned[ph] else
            miss_probability(page, tb.miss_first[ph], tb.miss_first[ph + 1], tb.miss_start,
                             tb.miss_value))
        load = bool(s.load[cpu])
        return TaggedOp(load=load, store=not load, kernel=bool(s.kernel[cpu]),
                        vaddr=BASE_VADDR + int(page) * PAGE_BYTES + int(s.line[cpu]) *
                        self.workload.line_bytes, page=int(page), l3_miss=miss)
