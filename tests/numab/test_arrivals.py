"""When marked pages fault: the analytic first-access law, phases, sweeps, traces."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from runtime.lackey import load_trace
from runtime.numab.arrivals import PASS_DRAW, PHASE_DRAW, SyntheticArrivals
from runtime.numab.trace_arrivals import TraceArrivals
from runtime.pageruns import PageRuns
from runtime.workloads import Phase, Workload

PAGES = 4000


def workload(probs: list[np.ndarray], starts: list[float] | None = None,
             scan: float = 0.0) -> Workload:
    starts = starts or [0.0]
    phases = [Phase(s, PageRuns.from_array(p), PageRuns.constant(p.size, 1.0), f"p{i}", scan)
              for i, (s, p) in enumerate(zip(starts, probs, strict=True))]
    return Workload("test", probs[0].size, phases)


def test_fault_within_t_has_probability_one_minus_exp() -> None:
    """Pages of known rate lambda, marked once at t0, fault within T with probability
    1 - exp(-lambda T): the count over many pages stays within 5 binomial sigmas, for
    several rates (pages 0..3999 get four different rates)."""
    rates = np.repeat([0.0005, 0.002, 0.01, 0.05], PAGES // 4)  # accesses per ms
    cpus, per_cpu = 4, 1e3
    probs = rates / (cpus * per_cpu)
    arrivals = SyntheticArrivals(workload([probs / probs.sum() * probs.sum()]), seed=7,
                                 cpus=cpus, mem_ops_per_ms_per_cpu=per_cpu)
    assert np.allclose(arrivals.rates_per_ms(0, np.arange(PAGES)), rates)
    pages = np.arange(PAGES, dtype=np.int64)
    t0, window = 250.0, 100.0
    times, cpu = arrivals.draw(pages, t0, PASS_DRAW, 0)
    assert (times > t0).all()
    for rate in np.unique(rates):
        mine = rates == rate
        n = int(mine.sum())
        p = 1 - math.exp(-rate * window)
        faults = int((times[mine] <= t0 + window).sum())
        assert abs(faults - n * p) <= 5 * math.sqrt(n * p * (1 - p)) + 1, (rate, faults, n * p)
    counts = np.bincount(cpu, minlength=cpus)  # the faulting CPU is uniform
    assert abs(counts - PAGES / cpus).max() <= 5 * math.sqrt(PAGES / cpus)


def test_draws_are_a_function_of_seed_pass_and_pages() -> None:
    probs = np.full(PAGES, 1.0 / PAGES)
    a = SyntheticArrivals(workload([probs]), 3, 2, 100.0)
    b = SyntheticArrivals(workload([probs]), 3, 2, 100.0)
    pages = np.arange(0, PAGES, 3, dtype=np.int64)
    assert np.array_equal(a.draw(pages, 10.0, PASS_DRAW, 5)[0],
                          b.draw(pages, 10.0, PASS_DRAW, 5)[0])
    assert not np.array_equal(a.draw(pages, 10.0, PASS_DRAW, 5)[0],
                              a.draw(pages, 10.0, PASS_DRAW, 6)[0])
    assert not np.array_equal(a.draw(pages, 10.0, PASS_DRAW, 5)[0],
                              a.draw(pages, 10.0, PHASE_DRAW, 5)[0])


def test_pages_never_accessed_never_fault() -> None:
    probs = np.zeros(PAGES)
    probs[:10] = 0.1
    arrivals = SyntheticArrivals(workload([probs]), 1, 1, 10.0)
    times, _ = arrivals.draw(np.arange(20, dtype=np.int64), 0.0, PASS_DRAW, 0)
    assert np.isfinite(times[:10]).all() and np.isinf(times[10:]).all()


def test_draws_use_the_phase_at_the_draw_time() -> None:
    hot = np.zeros(PAGES)
    hot[:PAGES // 2] = 2.0 / PAGES
    cold = hot[::-1].copy()
    arrivals = SyntheticArrivals(workload([hot, cold], [0.0, 1000.0]), 1, 1, 10.0)
    assert arrivals.phase_starts() == [1000.0]
    pages = np.arange(PAGES, dtype=np.int64)
    before, _ = arrivals.draw(pages, 999.0, PHASE_DRAW, 0)
    after, _ = arrivals.draw(pages, 1000.0, PHASE_DRAW, 1)
    assert np.isfinite(before[:PAGES // 2]).all() and np.isinf(before[PAGES // 2:]).all()
    assert np.isinf(after[:PAGES // 2]).all() and np.isfinite(after[PAGES // 2:]).all()


def test_sweep_first_arrival_is_deterministic() -> None:
    """Two CPUs sweep 1000 pages at 2 pages/ms from pages 0 and 500."""
    probs = np.full(1000, 1e-3)
    arrivals = SyntheticArrivals(workload([probs], scan=2.0), 1, 2, 1.0)
    pages = np.array([10, 11, 9, 510, 499, 400], dtype=np.int64)
    times, cpus = arrivals.draw(pages, 5.25, PASS_DRAW, 0)  # step 10: CPUs on pages 10, 510
    assert times.tolist() == [5.25, 5.5, (10 + 499) / 2, 5.25, (10 + 489) / 2, (10 + 390) / 2]
    assert cpus.tolist() == [0, 0, 1, 1, 0, 0]


TRACE = "\n".join([
    "==1== lackey", "I  0400000,4", " L 7ff000000,8", " S 7ff001000,8", "I  0400004,4",
    " M 7ff000008,8", " L 7ff002000,4", "I  0400008,4", ""])
"""Ops 0..6; data pages (dense ids) 0 at ops 1 and 4, 1 at op 2, 2 at op 5."""


def test_trace_first_access_after_the_mark(tmp_path: Path) -> None:
    path = tmp_path / "trace.out"
    path.write_text(TRACE)
    trace = load_trace(path, 1 << 20, 64)
    assert trace.ops == 7 and trace.page_count == 3
    arrivals = TraceArrivals(trace, ops_per_ms=1.0)
    pages = np.array([0, 1, 2], dtype=np.int64)
    times, cpus = arrivals.draw(pages, 1.5, PASS_DRAW, 0)  # next op is 2
    assert times.tolist() == [4.0, 2.0, 5.0] and cpus.tolist() == [0, 0, 0]
    times, _ = arrivals.draw(pages, 4.0, PASS_DRAW, 0)  # op 5 next: page 0 again at 8, 1 at 9
    assert times.tolist() == [8.0, 9.0, 5.0]
    times, _ = arrivals.draw(pages, 700.0, PASS_DRAW, 0)  # op 701 = position 1 of loop 100
    assert times.tolist() == [701.0, 702.0, 705.0]


@pytest.mark.parametrize("ops_per_ms", [0.5, 3.0])
def test_trace_times_scale_with_the_op_rate(tmp_path: Path, ops_per_ms: float) -> None:
    path = tmp_path / "trace.out"
    path.write_text(TRACE)
    arrivals = TraceArrivals(load_trace(path, 1 << 20, 64), ops_per_ms)
    times, _ = arrivals.draw(np.array([1], dtype=np.int64), 0.0, PASS_DRAW, 0)
    assert times.tolist() == [2 / ops_per_ms]
