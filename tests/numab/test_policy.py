"""Mainline NUMAB2's promotion decision on hand-made fault timelines, against the rule as read
from kernel/sched/fair.c (should_numa_migrate_memory, numa_promotion_adjust_threshold,
numa_promotion_rate_limit, pgdat_free_space_enough; docs/kernel-model.md §f.4, §c)."""

from __future__ import annotations

import numpy as np

from runtime.jiffies import INITIAL_JIFFIES, jiffies_to_msecs
from runtime.numab.policy import (
    CANDIDATE,
    CANDIDATE_NRL,
    PROMOTE,
    PROMOTE_NRL,
    RATE_LIMITED,
    THRESHOLD,
    TOO_OLD,
    adjust_threshold,
    free_space_enough,
    new_nbp,
    rate_limited,
    tiering_decision,
)
from runtime.pghot.core import mb_to_pages

NID = 0
PERIOD = 60000  # sysctl_numa_balancing_scan_period_max
HOT = 1000  # sysctl_numa_balancing_hot_threshold


def ms(run_ms: int) -> int:
    """The u32 ms clock at run_ms of a run that starts at INITIAL_JIFFIES."""
    return jiffies_to_msecs(INITIAL_JIFFIES + run_ms)


def decide(nbp: np.ndarray, run_ms: int, latency: int, rate: int, free: int = 0) -> int:
    return tiering_decision(nbp, NID, free, 1 << 20, 0, latency, rate, HOT, PERIOD, 1,
                            ms(run_ms))


def test_free_space_enough_is_strict_and_takes_the_larger_reserve() -> None:
    gib = (1 << 30) >> 12
    assert free_space_enough(gib + 11, 1 << 20, 10) == 1
    assert free_space_enough(gib + 10, 1 << 20, 10) == 0  # free must exceed promo + enough
    big = 64 << 20  # 256 GiB node: present / 16 is the larger reserve
    assert free_space_enough((big >> 4) + 1, big, 0) == 1
    assert free_space_enough(big >> 4, big, 0) == 0


def test_room_to_spare_promotes_without_age_or_rate_and_resets_the_threshold() -> None:
    nbp = new_nbp(1)
    nbp[NID, THRESHOLD] = 500
    gib = (1 << 30) >> 12
    got = decide(nbp, 5, latency=10**6, rate=0, free=gib + 1)
    assert got == PROMOTE_NRL
    assert nbp[NID, THRESHOLD] == 0 and nbp[NID, CANDIDATE_NRL] == 1
    assert nbp[NID, CANDIDATE] == 0  # neither the rate limit nor the adjustment ran


def test_first_call_from_initial_jiffies_adjusts_at_once() -> None:
    """nbp_th_start is 0 at boot and the u32 ms clock starts 300 s before its wrap, so the
    first fault adjusts: no candidates yet (fewer than 90% of the reference), so the
    threshold rises one step, 2 * 1000 / 16 = 125, above the default."""
    nbp = new_nbp(1)
    rate = mb_to_pages(65536)
    assert decide(nbp, 0, latency=1100, rate=rate) == PROMOTE  # 1100 < 1125
    assert nbp[NID, THRESHOLD] == HOT + 125
    assert decide(nbp, 1, latency=1125, rate=rate) == TOO_OLD  # latency >= th is too old
    assert nbp[NID, CANDIDATE] == 1  # the refused fault never reached the rate limit


def test_adjustment_waits_strictly_more_than_the_period_on_the_u32_clock() -> None:
    nbp = new_nbp(1)
    rate = 1000  # pages per second: reference = rate * 60000 / 1000 = 60000 candidates
    adjust_threshold(nbp, NID, rate, HOT, PERIOD, ms(0))  # first: up to 1125
    for _ in range(70000):  # 70000 candidates: more than 110% of the reference
        rate_limited(nbp, NID, 10**9, 1, ms(10))
    adjust_threshold(nbp, NID, rate, HOT, PERIOD, ms(PERIOD))  # exactly 60000 ms: not yet
    assert nbp[NID, THRESHOLD] == HOT + 125
    adjust_threshold(nbp, NID, rate, HOT, PERIOD, ms(PERIOD + 1))
    assert nbp[NID, THRESHOLD] == HOT  # one step down
    adjust_threshold(nbp, NID, rate, HOT, PERIOD, ms(2 * PERIOD + 2))  # no new candidates
    assert nbp[NID, THRESHOLD] == HOT + 125


def test_adjustment_crosses_the_u32_wrap_of_the_ms_clock() -> None:
    """The ms clock wraps 300 s into the run; the u32 difference still measures 60 s."""
    nbp = new_nbp(1)
    adjust_threshold(nbp, NID, 1000, HOT, PERIOD, ms(270_000))  # 30 s before the wrap
    assert ms(270_000) > ms(330_001)  # the clock wrapped in between
    nbp[NID, THRESHOLD] = 700
    adjust_threshold(nbp, NID, 1000, HOT, PERIOD, ms(330_000))  # exactly 60 s later: no
    assert nbp[NID, THRESHOLD] == 700
    adjust_threshold(nbp, NID, 1000, HOT, PERIOD, ms(330_001))
    assert nbp[NID, THRESHOLD] == 825


def test_threshold_steps_are_clamped_to_one_step_and_twice_the_default() -> None:
    nbp = new_nbp(1)
    t = 0
    for _ in range(20):  # never any candidate: every adjustment raises
        adjust_threshold(nbp, NID, 1000, HOT, PERIOD, ms(t))
        t += PERIOD + 1
    assert nbp[NID, THRESHOLD] == 2 * HOT
    for _ in range(20):  # a flood of candidates before each adjustment: it sinks
        nbp[NID, CANDIDATE] += 10**6
        adjust_threshold(nbp, NID, 1000, HOT, PERIOD, ms(t))
        t += PERIOD + 1
    assert nbp[NID, THRESHOLD] == 125


def test_threshold_arithmetic_is_u32() -> None:
    """A threshold below the step (the hot threshold was raised at run time) wraps to ~2^32
    on a "too many" step; twice a huge hot threshold wraps before the division."""
    nbp = new_nbp(1)
    nbp[NID, THRESHOLD] = 125  # tuned under hot_threshold 1000
    nbp[NID, CANDIDATE] = 10**6
    adjust_threshold(nbp, NID, 1, 4000, PERIOD, ms(0))  # step is now 500
    assert nbp[NID, THRESHOLD] == (125 - 500) % 2**32
    huge = 2**31 + 800  # 2 * huge wraps to 1600: step 100, cap 1600
    nbp = new_nbp(1)
    adjust_threshold(nbp, NID, 1000, huge, PERIOD, ms(0))
    assert nbp[NID, THRESHOLD] == 1600  # min(huge + 100 (u32), 1600)
    nbp = new_nbp(1)
    nbp[NID, CANDIDATE] = 10**6
    adjust_threshold(nbp, NID, 1, huge, PERIOD, ms(0))
    assert nbp[NID, THRESHOLD] == huge - 100  # one step of the wrapped double down


def test_rate_limit_windows() -> None:
    """A window opens when more than 1000 ms passed; its baseline includes the call that
    opens it, so that call passes; refused once the window's candidates reach the limit."""
    nbp = new_nbp(1)
    got = [rate_limited(nbp, NID, 3, 1, ms(t)) for t in (0, 1, 2, 3, 1000)]
    assert got == [0, 0, 0, 1, 1]  # 1000 ms after the window opened: still the same window
    assert rate_limited(nbp, NID, 3, 1, ms(1001)) == 0  # a new window
    assert nbp[NID, CANDIDATE] == 6  # refused calls are counted too


def test_zero_rate_limit_refuses_all_but_the_window_opener() -> None:
    nbp = new_nbp(1)
    assert mb_to_pages(16777216) == 0  # the 32-bit shift wraps to 0 pages
    assert [rate_limited(nbp, NID, 0, 1, ms(t)) for t in (0, 5, 2000)] == [1, 1, 1]


def test_decision_timeline() -> None:
    """A hand-made fault timeline through should_numa_migrate_memory: ages against the
    threshold, then the rate limit of 2 pages a second."""
    nbp = new_nbp(1)
    rate = 2
    timeline = [(0, 100, PROMOTE), (10, 1500, TOO_OLD), (20, 50, PROMOTE),
                (30, 60, RATE_LIMITED), (1100, 70, PROMOTE), (1101, 1124, PROMOTE),
                (1102, 1124, RATE_LIMITED)]
    for run_ms, latency, want in timeline:
        assert decide(nbp, run_ms, latency, rate) == want, run_ms
