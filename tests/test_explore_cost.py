"""`ibs-mprof explore` on a large bound: the cost is known before the search starts, a bound the
machine cannot hold is refused in one line naming the knob, and a long search shows progress.

The estimate's figures (runtime/explore/cost.py) are held against walks of the real model, so
a change to the driver model that grows the state space fails here rather than on a user's
machine."""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from runtime.errors import InputError
from runtime.explore import cost, entry, search
from runtime.explore.cost import Bound, check_memory, mem_available, states_kept
from runtime.explore.model import Machine, State
from runtime.explore.progress import Progress
from runtime.explore.search import StateBudget, explore

GIB = 1 << 30


def walk(bound: Bound) -> list[int]:
    """States within 0, 1, 2, ... steps of the start, by a full breadth-first walk."""
    machine = Machine(bound.variant, bound.cpus, bound.samples, bound.hotplug, bound.ring_slots)
    start = machine.snapshot()
    seen: set[State] = {start}
    frontier, levels = [start], [1]
    while frontier:
        nxt = []
        for state in frontier:
            machine.restore(state)
            for step in machine.enabled():
                machine.restore(state)
                machine.apply(step)
                after = machine.snapshot()
                if after not in seen:
                    seen.add(after)
                    nxt.append(after)
        frontier = nxt
        levels.append(len(seen))
    return levels


CHEAP = [Bound(v, c, s, h, 150, 60) for v in ("fixed", "v7")
         for c, h, most in ((2, True, 3), (2, False, 4), (3, True, 2), (3, False, 3))
         for s in range(1, most + 1)]


@pytest.mark.parametrize("bound", CHEAP, ids=lambda b: f"{b.variant}-{b.cpus}cpu-"
                         f"{b.samples}s-{'hp' if b.hotplug else 'nohp'}")
def test_the_measured_table_is_the_model(bound: Bound) -> None:
    levels = walk(bound)
    assert cost.reachable_states(bound) == levels[-1]
    for depth, states in enumerate(levels):
        assert states <= cost.states_within(bound, depth), (depth, levels)


@pytest.mark.parametrize("ring", [2, 3])
def test_a_ring_that_fills_stays_within_the_estimate(ring: int) -> None:
    for bound in (Bound("v7", 2, 4, True, ring, 60), Bound("fixed", 2, 4, False, ring, 60),
                  Bound("fixed", 3, 3, False, ring, 60)):
        levels = walk(bound)
        assert levels[-1] > cost.reachable_states(replace(bound, ring_slots=150))
        assert levels[-1] <= cost.reachable_states(bound), bound
        assert all(n <= cost.states_within(bound, d) for d, n in enumerate(levels))


def test_past_the_table_the_growth_repeats() -> None:
    five = cost.reachable_states(Bound("fixed", 3, 5, True, 150, 60))
    four = cost.reachable_states(Bound("fixed", 3, 4, True, 150, 60))
    six = cost.reachable_states(Bound("fixed", 3, 6, True, 150, 60))
    assert six >= five * five // four


def test_the_search_keeps_no_more_than_the_estimate() -> None:
    for depth, hotplug, runs in ((6, True, None), (60, True, None), (9, False, None),
                                 (20, True, 40)):
        result = explore("fixed", 3, 2, depth, runs, 2, hotplug)
        kept = states_kept(Bound("fixed", 3, 2, hotplug, 150, depth, runs))
        assert 0 < result.states <= kept, (depth, hotplug, runs)


def test_a_bound_too_big_for_the_machine_is_refused_naming_the_knob(tmp_path: Path) -> None:
    env = dict(os.environ, IBS_MPROF_MEM_AVAILABLE_KB=str(512 * 1024))
    result = subprocess.run([sys.executable, "-m", "runtime.cli", "explore", "--variant", "v7",
                             "--cpus", "3", "--samples", "6", "--invariant", "conservation"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    line = lines[0]
    assert line.startswith("ibs-mprof: error: explore: this bound needs about 5.3 GiB for about "
                           "5,509,780 states, more than the 410 MiB this machine can spare "
                           "(80% of MemAvailable 512 MiB); try --samples 4 (about "), line
    assert "or --depth 7 (about " in line
    # What it suggests fits, and it is the largest value that does.
    bound = Bound("v7", 3, 6, True, 150, 12)
    for knob in (replace(bound, samples=4), replace(bound, depth=7)):
        assert check_memory(knob, 512 << 20) is not None
    for too_big in (replace(bound, samples=5), replace(bound, depth=8)):
        with pytest.raises(InputError):
            check_memory(too_big, 512 << 20)


def test_random_mode_is_refused_with_fewer_schedules_as_the_knob() -> None:
    bound = Bound("v7", 3, 6, True, 150, 24, 1_000_000)
    with pytest.raises(InputError, match=r"try --random 100000 \(about .*\) or --samples 5"):
        check_memory(bound, 4 * GIB)
    assert check_memory(replace(bound, random_runs=100_000), 4 * GIB) is not None
    with pytest.raises(InputError, match=r"try --random 10000 \(about .*\) or --samples 5"):
        check_memory(bound, 3 * GIB)


def test_a_bound_that_fits_runs_and_the_limit_is_what_the_machine_spares() -> None:
    bound = Bound("fixed", 2, 2, True, 150, 12)
    limit = check_memory(bound, GIB)
    assert limit == (int(GIB * cost.USABLE_SHARE) - cost.BASE_BYTES) // cost.BYTES_PER_STATE
    assert check_memory(bound, None) is None  # no figure for this machine: no refusal


def test_mem_available_reads_meminfo_and_the_override(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(cost.MEM_AVAILABLE_ENV, raising=False)
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       24683792 kB\nMemFree:         1000 kB\n"
                       "MemAvailable:   24237704 kB\nBuffers:  1 kB\n")
    assert mem_available(meminfo) == 24237704 * 1024
    meminfo.write_text("MemTotal:       24683792 kB\n")
    assert mem_available(meminfo) is None
    assert mem_available(tmp_path / "missing") is None
    monkeypatch.setenv(cost.MEM_AVAILABLE_ENV, "2048")
    assert mem_available(meminfo) == 2048 * 1024
    monkeypatch.setenv(cost.MEM_AVAILABLE_ENV, "2 GB")
    with pytest.raises(InputError, match="IBS_MPROF_MEM_AVAILABLE_KB: expected kB"):
        mem_available(meminfo)


def test_a_search_that_outgrows_the_machine_stops_in_one_line(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Should the estimate ever be low, the search stops at the limit instead of swapping."""
    with pytest.raises(StateBudget):
        explore("fixed", 2, 3, 60, max_states=100)
    with pytest.raises(StateBudget):
        explore("fixed", 2, 3, 40, random_runs=500, max_states=100)
    assert explore("fixed", 2, 3, 60, max_states=584).states == 584
    monkeypatch.setattr(entry, "check_memory", lambda bound, available: 100)
    args = argparse.Namespace(variant="fixed", cpus=2, samples=3, depth=60, ring=None,
                              random=None, seed=None, invariant=None, no_hotplug=False,
                              json=True)
    with pytest.raises(InputError, match=r"^explore: stopped at 100 states, all this machine "
                       r"can spare \(the estimate was low\); lower --samples or --depth$"):
        entry.command(args)


class Clock:
    """A clock the test moves: each read advances it by `step` seconds."""

    def __init__(self, step: float) -> None:
        self.now = 0.0
        self.step = step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def test_progress_waits_a_second_then_shows_lines() -> None:
    out = io.StringIO()
    clock = Clock(0.0)
    progress = Progress(out, note=" (note)", clock=clock)
    clock.now = 0.99
    assert not progress.due()
    clock.now = 1.0
    assert progress.due()
    progress.show("depth 3 of 12")
    assert out.getvalue() == "explore: 1 s, depth 3 of 12 (note)\n"
    clock.now = 5.9
    assert not progress.due()  # a log gets a line every 5 s, not a flood
    clock.now = 6.0
    assert progress.due()
    progress.done()
    assert out.getvalue().count("\n") == 1


def test_progress_on_a_terminal_rewrites_one_line() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Tty()
    clock = Clock(0.0)
    progress = Progress(out, clock=clock)
    clock.now = 2.0
    progress.show("a longer first text")
    progress.show("short")
    progress.done()
    assert out.getvalue() == ("\rexplore: 2 s, a longer first text"
                              "\rexplore: 2 s, short              \n")
    quiet_out = Tty()
    Progress(quiet_out, clock=Clock(0.0)).done()
    assert quiet_out.getvalue() == ""  # nothing shown: no newline to end it


@pytest.mark.parametrize("kwargs, words", [
    ({"depth": 60}, "depth "),
    ({"depth": 60}, "counting schedules: "),
    ({"depth": 20, "random_runs": 30, "seed": 1}, "random schedule "),
])
def test_every_phase_of_a_long_search_reports(kwargs: dict[str, int], words: str) -> None:
    out = io.StringIO()
    progress = Progress(out, clock=Clock(0.5), every_s=0.0)
    explore("fixed", 2, 3, report=progress, **kwargs)  # type: ignore[arg-type]
    assert words in out.getvalue()


def test_minimising_reports_too() -> None:
    out = io.StringIO()
    explore("v7", 2, 2, 24, random_runs=10, seed=1,
            report=Progress(out, clock=Clock(0.5), every_s=0.0))
    assert "minimising a " in out.getvalue()


def test_the_command_shows_progress_with_its_estimate(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """The command passes its reporter to the search; a clock that runs fast stands in for a
    long search, so the assertion is on the lines, not on a time."""
    def fast(**kwargs: str) -> Progress:
        return Progress(clock=Clock(0.5), every_s=0.0, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(entry, "Progress", fast)
    args = argparse.Namespace(variant="fixed", cpus=2, samples=2, depth=None, ring=None,
                              random=None, seed=None, invariant=None, no_hotplug=False,
                              json=True)
    assert entry.command(args) == 0
    err = capsys.readouterr().err.splitlines()
    assert err and all(line.startswith("explore: ") and
                       line.endswith("(estimate: at most 116 states)") for line in err), err


def test_minimising_stays_within_the_random_estimate(monkeypatch: pytest.MonkeyPatch) -> None:
    """One random schedule visits a few states; shortening its violation breadth first holds
    more, and the estimate counts that too."""
    held: list[int] = []
    real_bfs = search.bfs

    def recording(explorer: search.Explorer, depth: int,
                  max_states: int | None = None) -> Any:
        found = real_bfs(explorer, depth, max_states)
        held.append(found[2])
        return found

    monkeypatch.setattr(search, "bfs", recording)
    result = explore("v7", 3, 2, 24, random_runs=1, seed=1)
    assert result.minimised == "bfs" and held
    kept = states_kept(Bound("v7", 3, 2, True, 150, 24, 1))
    assert max(held) > 1 * (24 + 1)  # more than the schedule itself visits
    assert max(held) <= kept


def test_counting_ends_a_schedule_where_the_search_ends() -> None:
    """State 2 was never expanded (the search stopped) and state 3 has no step: a schedule
    ends at either; 0 -> 1 -> 0 and 0 -> 1 -> 3 go on."""
    edges: list[list[int] | None] = [[1, 2], [0, 3], None, []]
    assert search.count_schedules(edges, [1, 3, 4], 1) == 2
    assert search.count_schedules(edges, [1, 3, 4], 2) == 3  # 0-1-0, 0-1-3, 0-2
    assert search.count_schedules(edges, [1, 3, 4], 3) == 4  # 0-1-0-1, 0-1-0-2, 0-1-3, 0-2
