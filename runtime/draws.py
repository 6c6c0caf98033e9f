"""Synthetic tagged ops, drawn one memory op at a time: the rules both engines run.

Each CPU draws from two seeded numpy generators: `rng` for its memory ops, `other_rng` for the
RIP bit of its other tags. Each tagged op is a memory op with probability mem_op_fraction,
independently, so the tags before the next memory op are a geometric gap and only memory ops
are drawn, each from up to four raw 64-bit words of rng's bit generator (`draw_memory_op`
says which bits make what): a raw word costs a compiled loop under half of what a uniform
from Generator.random() does (1.7 against 3.7 ns), and one word serves two 32-bit
uniforms. The RIP bit of a CPU's n-th other tag is other_rng's n-th uniform, drawn only
when someone asks (without L3MissOnly those tags can be samples).

The scalar rules here are @jitable: the reference engine calls them interpreted one tag at a
time (workloads.SyntheticOps.tagged_op), the fast engine compiled for a block of a group's
CPUs at once (`draw_group`). Interpreted or compiled, a raw word (next_word) and an
other_rng uniform come from the same generator state, so both engines see the same ops with
nothing materialised in between (no per-CPU buffers of future draws).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from generated._base import jitable
from runtime.jit import compiled_on_first_call
from runtime.memory import stamp_pages
from runtime.profiler import KEPT, KEPT_COL, L3_HIT, PROFILE_COUNTS, discard_reason
from runtime.search import bisect_right

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
B = npt.NDArray[np.bool_]

MAX_GAP = float(1 << 40)
"""Longest run of non-memory tags between two memory ops (~10^7 CPU-seconds at period
10000): a longer geometric gap is cut here, which matters only for a mem_op_fraction below
~1e-12 (it keeps tag ordinals inside int64)."""


class DrawState(NamedTuple):
    """Every CPU's place in its streams, carried from tag to tag (reference) or block to block
    (fast engine). A drawn memory op waits (`held`) until its tag comes."""

    tag: I64  # tags consumed
    other: I64  # non-memory tags consumed: the ordinal of the next one
    other_drawn: I64  # uniforms taken from other_rng
    pos: I64  # tag ordinal of the last memory op drawn (-1: none yet)
    held: I64  # 1: that op's tag has not come yet
    u_page: F64  # ... and its draws
    u_miss: F64
    line: I64
    load: B
    kernel: B


def new_draw_state(cpus: int) -> DrawState:
    i = np.zeros(cpus, dtype=np.int64)
    return DrawState(tag=i.copy(), other=i.copy(), other_drawn=i.copy(),
                     pos=np.full(cpus, -1, dtype=np.int64), held=i.copy(),
                     u_page=np.zeros(cpus), u_miss=np.zeros(cpus), line=i.copy(),
                     load=np.zeros(cpus, dtype=bool), kernel=np.zeros(cpus, dtype=bool))


class DrawParams(NamedTuple):
    """The workload's fractions and the region's shape (scan offsets split it per CPU)."""

    mem: float
    per_log_other: float  # 1 / log1p(-mem): the geometric gap's factor
    load: float
    kernel: float
    lines_per_page: int
    line_bytes: int
    pages: int
    cpus: int


class PhaseTables(NamedTuple):
    """Every phase's page distribution and L3-miss probabilities as flat arrays: phase k's
    sampler runs are run_first[k] .. run_first[k + 1] - 1 (cumulative mass `hi`, whose last
    is the phase's total, and first page `start`); its guide table guide_first[k] .. (entry b: the
    first run whose `hi` exceeds b / size of the total, where a key's search starts); its
    miss runs miss_first[k] .., and when no miss run starts inside a sampler run
    (miss_aligned), each sampler run's miss probability in run_miss; scan > 0 makes it a
    sequential sweep."""

    phase_start: F64
    scan: F64
    run_first: I64
    hi: F64
    start: I64
    guide_first: I64
    guide: I64
    miss_first: I64
    miss_start: I64
    miss_value: F64
    miss_aligned: I64
    run_miss: F64


def gap_factor(mem: float) -> float:
    """geometric_gap's per_log_other for a memory-op fraction: 1 / log1p(-mem), held finite
    (a subnormal fraction would make it -inf, and log(1) * -inf is not a number); 0 when no
    gap is drawn (mem 0 or 1)."""
    return max(1.0 / math.log1p(-mem), -1e300) if 0.0 < mem < 1.0 else 0.0


@jitable
def geometric_gap(v: float, per_log_other: float) -> int:
    """The non-memory tags before the next memory op, from its gap uniform v in (0, 1]:
    floor(log(v) / log1p(-mem)), capped at MAX_GAP (per_log_other is 1 / log1p(-mem)). log
    of v, not log1p of -u: v is exact (draw_memory_op) and log costs half of log1p."""
    return int(min(np.floor(math.log(v) * per_log_other), MAX_GAP))


U53 = 2.0 ** -53
"""A 53-bit integer times this is a uniform in [0, 1) (what Generator.random() makes of a
word's top 53 bits)."""
U32 = 2.0 ** -32
"""A 32-bit integer times this is a uniform in [0, 1)."""
LOW53 = (1 << 53) - 1
TWO53 = 1 << 53
TOP53 = 64 - 53
"""A raw word shifted right by this keeps its top 53 bits."""
LOW32 = (1 << 32) - 1
HALF = 32
"""A raw word shifted right by this keeps its high 32 bits."""


def next_word(rng: Any) -> int:
    """The next raw 64-bit word of a numpy Generator's bit generator. Interpreted, numpy's
    random_raw (0 .. 2**64 - 1); compiled, numba's reading of the same word as an int64 of
    the same bits (registered in runtime/jit.py). The rules mask every field they take, so
    the two readings give the same values."""
    return int(rng.bit_generator.random_raw())


@jitable
def draw_memory_op(rng: Any, mem: float, load_f: float, kernel_f: float,
                   lines_per_page: int) -> tuple[float, float, int, float, bool, bool]:
    """The next memory op's draws: (u_page, u_miss, line, v_gap, load, kernel); v_gap is
    -1 when every tag is a memory op (no gap is drawn), else geometric_gap's uniform in
    (0, 1]. Words, in order: the page's uniform from the top 53 bits of the first; the gap's
    from the top 53 of the second, as 1 - u (exact: 2**53 - m is an integer; only when
    0 < mem < 1); the miss uniform from the high half of the third and the line from its
    low half; the load and kernel uniforms from the high and low halves of a fourth (only
    when one of their fractions is strictly between 0 and 1: a certain outcome takes no
    bits). Each fraction is compared with 32 bits or more."""
    u_page = ((next_word(rng) >> TOP53) & LOW53) * U53
    v_gap = (TWO53 - ((next_word(rng) >> TOP53) & LOW53)) * U53 if 0.0 < mem < 1.0 else -1.0
    word = next_word(rng)
    u_miss = ((word >> HALF) & LOW32) * U32
    line = ((word & LOW32) * lines_per_page) >> HALF
    load_drawn = 0.0 < load_f < 1.0
    kernel_drawn = 0.0 < kernel_f < 1.0
    word = next_word(rng) if load_drawn or kernel_drawn else 0
    load = ((word >> HALF) & LOW32) * U32 < load_f if load_drawn else load_f >= 1.0
    kernel = (word & LOW32) * U32 < kernel_f if kernel_drawn else kernel_f >= 1.0
    return u_page, u_miss, line, v_gap, load, kernel


@jitable
def other_bit(rng: Any, ordinal: int, drawn: int, kernel_f: float) -> tuple[bool, int]:
    """RIP bit 63 of a CPU's non-memory tag number `ordinal`, with `drawn` uniforms of its
    other_rng used so far: (the bit, uniforms used after it). Skipped ordinals are drawn
    and dropped, so asking late gives what asking one by one gives; never goes back."""
    if not 0.0 < kernel_f < 1.0:
        return kernel_f >= 1.0, drawn
    if ordinal < drawn:
        raise ValueError("non-memory RIP bits are drawn in order")
    while drawn < ordinal:
        rng.random()
        drawn += 1
    return rng.random() < kernel_f, drawn + 1


@jitable
def phase_at(t_ms: float, phase_start: Any) -> int:
    """Index of the phase running at t_ms: the last one starting at or before it."""
    return max(bisect_right(phase_start, t_ms, 0, len(phase_start)) - 1, 0)


@jitable
def sampler_run(key: float, first: int, end: int, hi: F64, guide: I64, guide_first: int,
                guide_size: int) -> int:
    """The run a key (u * total) falls in among runs first .. end - 1 of a phase with a guide
    table: the first whose cumulative mass exceeds it (bisect_right). The guide's entry is a
    step or two from the answer on average; the walk from there makes the answer exact
    wherever it starts. The run always has mass: u < 1 makes key < total (a product rounds
    up to total only if total is a power of two, and then it is exact), and runs after the
    last with mass end at total. A phase without a guide (few runs) is searched with
    bisect_right by the caller: folded in here, the branch kept numba from inlining either
    search into the draw loop, which cost a 64-CPU gups run 40% more in it."""
    run: int = guide[guide_first + min(int(key / hi[end - 1] * guide_size), guide_size - 1)]
    while run > first and hi[run - 1] > key:
        run -= 1
    while run < end and hi[run] <= key:
        run += 1
    return run


@jitable
def run_page(key: float, run: int, first: int, end: int, hi: F64, start: I64,
             pages: int) -> int:
    """The page of a key within its run (of a phase's runs first .. end - 1, in a region of
    `pages`): uniform over the run's pages. The run's mass starts where the one before ends
    (0 for the first) and its pages end where the next run's start, so a run costs its
    cumulative mass and first page only."""
    lo = hi[run - 1] if run > first else 0.0
    length = (start[run + 1] if run + 1 < end else pages) - start[run]
    offset = int((key - lo) / (hi[run] - lo) * length)
    page: int = start[run] + min(offset, length - 1)
    return page


@jitable
def scan_page(when_ms: float, pages_per_ms: float, cpu: int, pages: int, cpus: int) -> int:
    """A sweep's page at when_ms: each CPU sweeps from its own share of the region."""
    page: int = (int(when_ms * pages_per_ms) + cpu * pages // cpus) % pages
    return page


@jitable
def miss_probability(page: int, first: int, end: int, miss_start: I64, miss_value: F64) -> float:
    """A page's L3-miss probability from a phase's miss runs first .. end - 1."""
    p: float = miss_value[bisect_right(miss_start, page, first, end) - 1]
    return p


class OpColumns(NamedTuple):
    """Room for a group's memory ops (workloads.SyntheticOps fills an OpBatch from it), and
    their page and miss uniforms between draw_group's two passes."""

    cpu: I64
    at: I64
    when: F64
    kernel: B
    load: B
    page: I64
    offset: I64
    l3_miss: B
    u_page: F64
    u_miss: F64


class KeptMisses(NamedTuple):
    """For a group whose profilers keep only L3 misses and whose interrupts are delivered:
    the profilers' filters, applied by draw_group as it draws (`active` 0: not applied).
    The samples they keep go to `samples` (sample_path.Samples' columns, one row to spare;
    every kept sample is an L3-missing memory op, so its l3_miss and memory columns are not
    written: sample_path.empty_samples(memory_misses=True) sets them),
    the counts per CPU to counts[k, profiler.PROFILE_COUNTS index]; with lru_unit, every
    memory op stamps its page's LRU age in last_access (as profile_group does)."""

    active: int
    exclude_kernel: int
    exclude_user: int
    lru_unit: int
    last_access: npt.NDArray[np.uint16]
    counts: I64
    samples: tuple[I64, F64, I64, I64, B, B, B, B]


def op_columns(rows: int) -> OpColumns:
    """Room for `rows` memory ops."""
    return OpColumns(cpu=np.empty(rows, dtype=np.int64), at=np.empty(rows, dtype=np.int64),
                     when=np.empty(rows), kernel=np.empty(rows, dtype=bool),
                     load=np.empty(rows, dtype=bool), page=np.empty(rows, dtype=np.int64),
                     offset=np.empty(rows, dtype=np.int64), l3_miss=np.empty(rows, dtype=bool),
                     u_page=np.empty(rows), u_miss=np.empty(rows))


def _no_rows(dtype: Any) -> Any:
    return np.zeros(0, dtype=dtype)


KEEP_ALL = KeptMisses(0, 0, 0, 0, _no_rows(np.uint16),
                      np.zeros((0, len(PROFILE_COUNTS)), dtype=np.int64),
                      (_no_rows(np.int64), _no_rows(np.float64), _no_rows(np.int64),
                       _no_rows(np.int64), _no_rows(bool), _no_rows(bool), _no_rows(bool),
                       _no_rows(bool)))
"""draw_group with no filters: every memory op goes to `out` (same types as a real one, so
one compiled loop serves both)."""


def _draw_group(rngs: Any, other_rngs: Any, cpus: I64, sizes: I64, times: F64, t_first: I64,
                s: DrawState, p: DrawParams, tb: PhaseTables, non_memory: int, out: OpColumns,
                other_out: B, keep: KeptMisses) -> tuple[int, int]:
    """The next sizes[k] tags of each CPU cpus[k] (at times[t_first[k]:][:sizes[k]]: CPUs in
    step share their times): their memory ops to `out`, and with non_memory the RIP bits of
    the others to other_out, in order. Returns how many of each it wrote. The twin of
    SyntheticOps.tagged_op, which does the same one tag at a time (tests/test_workloads.py
    holds them equal).

    With keep.active, the profilers' filters (profiler.discard_reason, as
    sample_path.profile_group runs them for L3MissOnly) are applied to each op as its page
    and miss are found: only the kept samples are written (to keep.samples; the count is
    returned first), and `out` only holds one CPU's ops at a time, so it stays in cache.

    Written flat on purpose: every array is taken out of its tuple once, and the rules called
    per op take scalars or plain arrays; handing a tuple of arrays to a rule per op costs
    numba ~10 ns per array in reference counting. Each CPU's ops are drawn first, then their
    pages and misses looked up in a second, tight loop: the lookups' cache misses (a zipf
    phase's tables are megabytes) then overlap instead of waiting behind the draws."""
    mem, per_log_other, load_f, kernel_f = p.mem, p.per_log_other, p.load, p.kernel
    lines = p.lines_per_page
    line_bytes, pages, ncpus = p.line_bytes, p.pages, p.cpus
    phase_start, scan, run_first = tb.phase_start, tb.scan, tb.run_first
    hi, start = tb.hi, tb.start
    guide_first, guide = tb.guide_first, tb.guide
    miss_first, miss_start, miss_value = tb.miss_first, tb.miss_start, tb.miss_value
    miss_aligned, run_miss = tb.miss_aligned, tb.run_miss
    o_cpu, o_at, o_when, o_kernel, o_load, o_page, o_offset, o_miss, o_u_page, o_u_miss = out
    filtering, exclude_kernel, exclude_user = keep.active, keep.exclude_kernel, keep.exclude_user
    lru_unit, last_access, counts = keep.lru_unit, keep.last_access, keep.counts
    k_cpu, k_times, k_page, k_offset, k_load, k_store, _, _ = keep.samples
    n = 0
    o = 0
    kept = 0
    for k in range(cpus.size):
        cpu = cpus[k]
        first = s.tag[cpu]
        end = first + sizes[k]
        if filtering:
            n = 0  # (this CPU's ops only)
        before = n
        if mem > 0.0:
            rng = rngs[cpu]
            held, pos = s.held[cpu], s.pos[cpu]
            u_page, u_miss, line = s.u_page[cpu], s.u_miss[cpu], s.line[cpu]
            load, kernel = s.load[cpu], s.kernel[cpu]
            while True:
                if not held:
                    u_page, u_miss, line, v_gap, load, kernel = draw_memory_op(
                        rng, mem, load_f, kernel_f, lines)
                    pos += 1 if v_gap < 0.0 else geometric_gap(v_gap, per_log_other) + 1
                    held = 1
                if pos >= end:
                    break
                at = pos - first
                if not filtering:  # (where the op is: the filters know it already)
                    o_cpu[n] = cpu
                    o_at[n] = at
                o_when[n] = times[t_first[k] + at]
                o_kernel[n] = kernel
                o_load[n] = load
                o_offset[n] = line * line_bytes
                o_u_page[n] = u_page
                o_u_miss[n] = u_miss
                held = 0
                n += 1
            s.held[cpu], s.pos[cpu] = held, pos
            s.u_page[cpu], s.u_miss[cpu], s.line[cpu] = u_page, u_miss, line
            s.load[cpu], s.kernel[cpu] = load, kernel
        for i in range(before, n):  # the pages and misses of this CPU's ops
            when = o_when[i]
            ph = phase_at(when, phase_start)
            if scan[ph] > 0.0:
                page = scan_page(when, scan[ph], cpu, pages, ncpus)
                run = -1
            else:
                key = o_u_page[i] * hi[run_first[ph + 1] - 1]  # u x the phase's mass
                guide_size = guide_first[ph + 1] - guide_first[ph]
                run = bisect_right(hi, key, run_first[ph], run_first[ph + 1]) if \
                    guide_size == 0 else sampler_run(key, run_first[ph], run_first[ph + 1], hi,
                                                     guide, guide_first[ph], guide_size)
                page = run_page(key, run, run_first[ph], run_first[ph + 1], hi, start, pages)
            miss = o_u_miss[i] < (run_miss[run] if run >= 0 and miss_aligned[ph] else
                                  miss_probability(page, miss_first[ph], miss_first[ph + 1],
                                                   miss_start, miss_value))
            o_page[i] = page  # (filtering: for the LRU stamps after this loop)
            if not filtering:
                o_miss[i] = miss
                continue
            reason = discard_reason(1, exclude_kernel, exclude_user, 1 if miss else 0,
                                    1 if o_kernel[i] else 0)
            counts[k, KEPT_COL if reason == KEPT else reason] += 1
            # written whatever the reason, kept by moving on (no branch on the random miss)
            k_cpu[kept], k_times[kept], k_page[kept], k_offset[kept] = cpu, when, page, \
                o_offset[i]
            k_load[kept], k_store[kept] = o_load[i], not o_load[i]
            kept += 1 if reason == KEPT else 0
        if filtering and lru_unit:  # (lru_unit 0: no kswapd reads LRU ages)
            stamp_pages(last_access, o_page, o_when, before, n, lru_unit)
        others = sizes[k] - (n - before)
        if filtering:
            counts[k, L3_HIT] += others  # the other tags are not memory ops: no L3 miss
        if non_memory:
            other_rng = other_rngs[cpu]
            drawn = s.other_drawn[cpu]
            for i in range(others):
                bit, drawn = other_bit(other_rng, s.other[cpu] + i, drawn, kernel_f)
                other_out[o] = bit
                o += 1
            s.other_drawn[cpu] = drawn
        s.other[cpu] += others
        s.tag[cpu] = end
    return (kept, 0) if filtering else (n, o)


draw_group = compiled_on_first_call(_draw_group)
