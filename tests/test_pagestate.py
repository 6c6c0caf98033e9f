"""The metrics' per-page state: flags, READY times and promotions share bytes, never bits."""

from __future__ import annotations

import numpy as np

from runtime.pagestate import EVER_READY, IN_D, ON_TOP, PageState


def test_flags_and_ready_times_do_not_disturb_each_other() -> None:
    state = PageState(6, 8000.0, np.array([True, False, True, False, False, False]))
    assert state.nbytes == 6 * 6
    pages = np.array([1, 2])
    assert state.mark_ready(pages, np.array([100.0, 7999.9375])) == 2
    assert state.mark_ready(np.array([2, 3]), np.array([8000.0, 50.5])) == 1  # 2 was before
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
    assert state.mark_ready(np.array([0]), np.array([9000.0])) == 1  # keeps its flags
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
