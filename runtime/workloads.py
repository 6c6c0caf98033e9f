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
  memory ops only, everything starting on CXL;
- phased: a list of the above, one after another, over the same region.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from generated.ibs_mprof import PAGE_SHIFT
from runtime.llc import che_miss_probability
from runtime.profiler import OpBatch, TaggedOp

FloatArray = npt.NDArray[np.float64]
PAGE_BYTES = 1 << PAGE_SHIFT
BASE_VADDR = 0x7F0000000000
DRAW_CHUNK = 4096


@dataclass(frozen=True)
class Phase:
    """From start_ms on, memory ops go to pages with `probs` and miss L3 with `miss`."""

    start_ms: float
    probs: FloatArray
    miss: FloatArray
    label: str
    scan_pages_per_ms: float = 0.0  # > 0: a sequential sweep instead of random draws

    @property
    def miss_mass(self) -> FloatArray:
        """Per memory op: probability of an L3-miss access to each page (A_miss / A_all)."""
        return self.probs * self.miss


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
               hot_start: int) -> tuple[FloatArray, npt.NDArray[np.int64]]:
    hot = max(1, int(round(pages * hot_fraction)))
    hot_pages = (hot_start + np.arange(hot)) % pages
    probs = np.full(pages, (1.0 - hot_access_fraction) / pages)
    probs[hot_pages] += hot_access_fraction / hot
    return probs, hot_pages


def zipf_probs(pages: int, theta: float, seed: int) -> FloatArray:
    ranks = np.random.default_rng(seed).permutation(pages) + 1
    return _normalise(1.0 / ranks.astype(np.float64) ** theta)


def build_phase_probs(kind: str, pages: int, p: dict[str, Any], seed: int) -> list[
        tuple[float, FloatArray, str, float]]:
    """(start_ms, probs, label, scan_pages_per_ms) for one workload kind."""
    if kind in ("uniform", "microbench"):
        return [(0.0, np.full(pages, 1.0 / pages), kind, 0.0)]
    if kind == "gups-hot":
        probs, _ = gups_probs(pages, p["hot_fraction"], p["hot_access_fraction"],
                              int(pages * p["hot_offset_fraction"]))
        return [(0.0, probs, kind, 0.0)]
    if kind == "gups-shift":
        start = int(pages * p["hot_offset_fraction"])
        before, hot_pages = gups_probs(pages, p["hot_fraction"], p["hot_access_fraction"], start)
        moved = int(round(len(hot_pages) * p["shift_fraction"]))
        after_set = np.concatenate([hot_pages[moved:], (hot_pages[-1] + 1 + np.arange(moved))
                                    % pages])
        after = np.full(pages, (1.0 - p["hot_access_fraction"]) / pages)
        after[after_set] += p["hot_access_fraction"] / len(after_set)
        return [(0.0, before, "gups-shift before", 0.0),
                (p["shift_at_s"] * 1000.0, after, "gups-shift after", 0.0)]
    if kind == "zipf":
        return [(0.0, zipf_probs(pages, p["theta"], seed), kind, 0.0)]
    if kind == "scan":
        pages_per_ms = p["scan_mib_per_s"] * (1 << 20) / PAGE_BYTES / 1000.0
        return [(0.0, np.full(pages, 1.0 / pages), kind, pages_per_ms)]
    raise ValueError(f"unknown workload kind {kind!r}")


def build_workload(spec: dict[str, Any], llc_bytes: int, line_bytes: int, seed: int) -> Workload:
    """Workload from a validated scenario `workload` section (see runtime/scenario.py)."""
    pages = int(spec["region_mib"]) * (1 << 20) // PAGE_BYTES
    kind = spec["kind"]
    parts: list[tuple[float, FloatArray, str, float]] = []
    if kind == "phased":
        offset = 0.0
        for i, sub in enumerate(spec["phases"]):
            for start, probs, label, scan in build_phase_probs(sub["kind"], pages, sub,
                                                               seed + i):
                parts.append((offset + start, probs, f"phase {i}: {label}", scan))
            offset += sub["duration_s"] * 1000.0
    else:
        parts = build_phase_probs(kind, pages, spec, seed)
    phases = []
    for start, probs, label, scan in parts:
        miss = np.ones(pages) if scan > 0 else che_miss_probability(probs, llc_bytes, line_bytes)
        phases.append(Phase(start, probs, miss, label, scan))
    mem = 1.0 if kind == "microbench" else spec["mem_op_fraction"]
    load = 0.5 if kind == "microbench" else spec["load_fraction"]
    return Workload(kind, pages, phases, mem, load, spec["kernel_fraction"], spec["placement"],
                    dict(spec), line_bytes)


class DrawStream:
    """One CPU's random draws, in chunks of DRAW_CHUNK, shared by both engines.

    A chunk is drawn for one phase; a phase change (or an exhausted chunk) draws a fresh one.
    The reference engine takes one op at a time (`next`), the fast engine many (`take`), and
    both consume the generator identically, so they see the very same ops.
    """

    def __init__(self, rng: np.random.Generator, cdfs: list[FloatArray],
                 mem_op_fraction: float = 1.0, lines_per_page: int = PAGE_BYTES // 64) -> None:
        self.rng = rng
        self.cdfs = cdfs
        self.mem_op_fraction = mem_op_fraction
        self.lines_per_page = lines_per_page
        self.phase = -1
        self.i = DRAW_CHUNK
        self.u: npt.NDArray[np.float64] = np.zeros((0, 4))
        self.page: npt.NDArray[np.int64] = np.zeros(0, dtype=np.int64)
        self.line: npt.NDArray[np.int64] = np.zeros(0, dtype=np.int64)
        self._lists: tuple[list[list[float]], list[int], list[int]] | None = None

    def _refill(self, phase: int) -> None:
        rng = self.rng
        cdf = self.cdfs[phase]
        keys = rng.random(DRAW_CHUNK) * cdf[-1]
        self.u = rng.random((DRAW_CHUNK, 4))
        # Only memory ops need a page: search the CDF for those, sorted (cache-friendly).
        memory = np.flatnonzero(self.u[:, 0] < self.mem_op_fraction)
        order = memory[np.argsort(keys[memory])]
        page = np.zeros(DRAW_CHUNK, dtype=np.int64)
        page[order] = np.searchsorted(cdf, keys[order], side="right")
        self.page = np.minimum(page, len(cdf) - 1)
        self.line = rng.integers(0, self.lines_per_page, DRAW_CHUNK).astype(np.int64)
        self.phase, self.i, self._lists = phase, 0, None

    def next(self, phase: int) -> tuple[list[float], int, int]:
        """(u_mem, u_load, u_kernel, u_miss), page, line of the next op."""
        if phase != self.phase or self.i >= DRAW_CHUNK:
            self._refill(phase)
        if self._lists is None:
            self._lists = (self.u.tolist(), self.page.tolist(), self.line.tolist())
        i = self.i
        self.i = i + 1
        u, page, line = self._lists
        return u[i], page[i], line[i]

    def take(self, n: int, phase: int) -> tuple[FloatArray, npt.NDArray[np.int64],
                                                 npt.NDArray[np.int64]]:
        """The next n ops of one phase as arrays (u of shape (n, 4), page, line)."""
        us, pages, lines = [], [], []
        while n > 0:
            if phase != self.phase or self.i >= DRAW_CHUNK:
                self._refill(phase)
            k = min(n, DRAW_CHUNK - self.i)
            sl = slice(self.i, self.i + k)
            us.append(self.u[sl])
            pages.append(self.page[sl])
            lines.append(self.line[sl])
            self.i += k
            n -= k
        if not us:
            return np.zeros((0, 4)), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        return np.concatenate(us), np.concatenate(pages), np.concatenate(lines)


class SyntheticOps:
    """The op source for synthetic workloads: draws tagged ops per CPU from a DrawStream.

    Each CPU has its own seeded generator, so a run is reproducible whatever the event order
    between CPUs.
    """

    def __init__(self, workload: Workload, seed: int, cpus: int) -> None:
        self.workload = workload
        cdfs = [np.cumsum(p.probs) for p in workload.phases]
        self.streams = [DrawStream(np.random.default_rng([seed, cpu]), cdfs,
                                   workload.mem_op_fraction, PAGE_BYTES // workload.line_bytes)
                        for cpu in range(cpus)]
        self.miss = [p.miss.tolist() for p in workload.phases]  # python floats: fast, bool-safe
        self._starts_list = [p.start_ms for p in workload.phases]
        self._starts = np.array(self._starts_list)
        self._scan = np.array([p.scan_pages_per_ms for p in workload.phases])
        self._any_scan = bool((self._scan > 0).any())

    def scan_offset(self, cpu: int) -> int:
        """Where cpu's sweep starts: the CPUs of a scan split the region between them."""
        return cpu * self.workload.pages // len(self.streams)

    def tagged_batch(self, cpu: int, op_index: npt.NDArray[np.int64],
                     times_ms: FloatArray) -> OpBatch:
        """Vectorised tagged_op: the same draws, the same comparisons, in the same order."""
        wl = self.workload
        phase = np.searchsorted(self._starts, times_ms, side="right") - 1
        if phase[0] == phase[-1]:  # the common case: the whole batch in one phase
            spans = [(0, times_ms.size, int(phase[0]))]
        else:
            bounds = np.r_[0, np.flatnonzero(np.diff(phase)) + 1, times_ms.size].tolist()
            spans = [(a, b, int(phase[a])) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
        parts = [self.streams[cpu].take(b - a, ph) for a, b, ph in spans]
        u, page, line = parts[0] if len(parts) == 1 else (
            np.concatenate([x[i] for x in parts]) for i in range(3))
        if self._any_scan:
            scan = self._scan[phase]
            sweep = (times_ms * scan).astype(np.int64) + self.scan_offset(cpu)
            page = np.where(scan > 0, sweep % wl.pages, page)
        miss_prob = np.empty(times_ms.size)
        for a, b, ph in spans:
            miss_prob[a:b] = wl.phases[ph].miss[page[a:b]]
        memory = u[:, 0] < wl.mem_op_fraction
        load = memory & (u[:, 1] < wl.load_fraction)
        return OpBatch(kernel=u[:, 2] < wl.kernel_fraction, memory=memory, load=load,
                       store=memory & ~load, page=page,
                       vaddr=BASE_VADDR + page * PAGE_BYTES + line * wl.line_bytes,
                       l3_miss=memory & (u[:, 3] < miss_prob))

    def tagged_op(self, cpu: int, op_index: int, now_ms: float) -> TaggedOp:
        wl = self.workload
        phase_i = phase_of(self._starts_list, now_ms)
        (u_mem, u_load, u_kernel, u_miss), page, line = self.streams[cpu].next(phase_i)
        kernel = u_kernel < wl.kernel_fraction
        if u_mem >= wl.mem_op_fraction:
            return TaggedOp(kernel=kernel)
        phase = wl.phases[phase_i]
        if phase.scan_pages_per_ms > 0:
            page = (int(now_ms * phase.scan_pages_per_ms) + self.scan_offset(cpu)) % wl.pages
        load = u_load < wl.load_fraction
        return TaggedOp(load=load, store=not load, kernel=kernel,
                        vaddr=BASE_VADDR + page * PAGE_BYTES + line * wl.line_bytes, page=page,
                        l3_miss=u_miss < self.miss[phase_i][page])
