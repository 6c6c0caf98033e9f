"""The metrics' per-page state: flags, READY times and promotions share bytes, never bits."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.pagestate import EVER_READY, IN_D, ON_TOP, PageState, _mark_ready_calls


def test_flags_and_ready_times_do_not_disturb_each_other() -> None:
    state = PageState(6, 8000.0, np.array([True, False, True, False, False, False]))
    assert state.nbytes == 6 * 6
    pages = np.array([1, 2])
    assert state.mark_ready(pages, np.array([100.0, 7999.9375]))[0] == 2
    assert state.mark_ready(np.array([2, 3]), np.array([8000.0, 50.5]))[0] == 1  # 2 was before
    state.set_flag(IN_D, np.array([0, 2]), np.array([True, True]))
    state.set_flag(ON_TOP, np.array([2]), np.array([False]))
    assert state.flag(ON_TOP).tolist() == [True, False, False, False, False, False]
    assert state.flag(IN_D).tolist() == [True, False, True, False, False, False]
    assert state.flag(EVER_READY).tolist() == [False, True, True, True, False, False]
    every = np.arange(6)
    assert state.ready_after(every, 99.9375).tolist() == [False, True, True, False, False, False]
    assert state.ready_after(every, 100.0).tolist() == [False, False, True, False, False, False]
    assert state.ready_after(every, 7999.9375).tolist() == [False] * 2 + [True] + [False] * 3
    assert state.ready_after(every, 8000.0).tolist() == [False] * 6  # exactly out
    assert state.mark_ready(np.array([0]), np.array([9000.0]))[0] == 1  # keeps its flags
    assert state.flag(ON_TOP | IN_D, np.array([0])).all() and state.flag(IN_D)[0]
    assert state.flag(ON_TOP)[0] and state.ready_after(np.array([0]), 8999.0).all()


def test_ping_pong_is_promoted_demoted_promoted_within_the_window() -> None:
    state = PageState(3, 8000.0, np.zeros(3, dtype=bool))
    assert state.promo_unit_ms == 1
    assert not state.promoted(np.array([0, 1]), np.array([100, 100]), 1000).any()
    state.demoted(np.array([0, 1, 2]))  # page 2 was never promoted: nothing to remember
    again = state.promoted(np.array([0, 1, 2]), np.array([1100, 1101, 1100]), 1000)
    assert again.tolist() == [True, False, False]
    assert not state.promoted(np.array([0]), np.array([1200]), 1000).any()  # not demoted
    hour = PageState(1, 3_600_000.0, np.zeros(1, dtype=bool))
    assert hour.promo_unit_ms == 110
    hour.promoted(np.array([0]), np.array([3_500_000]), 20_000)
    hour.demoted(np.array([0]))
    assert hour.promoted(np.array([0]), np.array([3_519_800]), 20_000).all()


@settings(max_examples=60, deadline=None)
@given(calls=st.lists(st.tuples(st.integers(0, 7), st.integers(0, 10_000)), max_size=40),
       ever=st.lists(st.booleans(), min_size=8, max_size=8))
def test_ready_calls_repeating_pages_keep_the_latest_and_count_pages_once(
        calls: list[tuple[int, int]], ever: list[bool]) -> None:
    """One tick's READY calls name a page any number of times (in time order): its latest
    time wins, it counts as first-time at most once, exactly its last call is kept for the
    FIFO, and no flag is disturbed; the compiled loop and the interpreted one agree."""
    pages = np.array([p for p, _ in calls], dtype=np.int64)
    when = np.array(sorted(t / 16 for _, t in calls), dtype=np.float64)
    states = []
    for _ in range(2):
        state = PageState(8, 1000.0, np.array([p % 3 == 0 for p in range(8)]))
        state.set_flag(IN_D, np.arange(8), np.array([p % 2 == 0 for p in range(8)]))
        state.mark_ready(np.flatnonzero(ever), np.full(sum(ever), 0.0))
        states.append(state)
    compiled, interpreted = states
    first, kept = compiled.mark_ready(pages, when)
    keep = np.empty(pages.size, dtype=np.int64)
    assert _mark_ready_calls(pages, when, interpreted.words, keep) == (first, kept.size)
    assert interpreted.words.tolist() == compiled.words.tolist()
    assert sorted(keep[:kept.size].tolist()) == sorted(kept.tolist())
    named = set(pages.tolist())
    assert first == len([p for p in named if not ever[p]])
    last = {p: i for i, p in enumerate(pages.tolist())}
    assert sorted(kept.tolist()) == sorted(last.values())
    assert compiled.flag(EVER_READY).tolist() == [ever[p] or p in named for p in range(8)]
    assert compiled.flag(ON_TOP).tolist() == [p % 3 == 0 for p in range(8)]
    assert compiled.flag(IN_D).tolist() == [p % 2 == 0 for p in range(8)]
    for p, i in last.items():  # each page READY after just below its latest call, not at it
        assert compiled.ready_after(np.array([p]), when[i] - 1 / 16).all()
        assert not compiled.ready_after(np.array([p]), when[i]).any()
