"""Long work shows progress: the bar's rules with a fake clock, every stage of a run reports,
the simulation reports at every timeline tick, and setup (trace loading) reports too. No
assertion here is about how long anything took."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import pytest

from runtime import simulate as sim
from runtime.lackey import load_trace
from runtime.progress import ProgressBar
from runtime.scenario import load_scenario
from runtime.simulate import simulate


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


class Recorder:
    """A Progress that keeps everything it is told."""

    def __init__(self) -> None:
        self.notes: list[str] = []
        self.stages: list[tuple[str, float]] = []
        self.finished = 0

    def note(self, text: str) -> None:
        self.notes.append(text)

    def stage(self, name: str, fraction: float) -> None:
        self.stages.append((name, fraction))

    def done(self) -> None:
        self.finished += 1

    def names(self) -> list[str]:
        return list(dict.fromkeys(name for name, _ in self.stages))


def test_the_bar_waits_then_shows_stage_fraction_and_time_in_lines() -> None:
    clock, out = Clock(), io.StringIO()
    bar = ProgressBar(out, after_s=2.0, clock=clock, tick_s=None)
    bar.stage("building workload", 0.5)
    clock.now = 1.9
    bar.stage("simulating", 0.1)
    assert out.getvalue() == ""  # a run shorter than 2 s shows nothing
    clock.now = 2.5
    bar.stage("simulating", 0.25)
    assert out.getvalue() == f"simulating [{'#' * 7}{'.' * 23}]  25%     2 s\n"
    clock.now = 5.0
    bar.stage("simulating", 0.5)  # not a terminal: a line at most every 10 s ...
    clock.now = 5.1
    bar.stage("summarising", 0.0)  # ... or when the stage changes
    bar.note("a note")
    bar.done()
    assert out.getvalue().splitlines()[1:] == [f"summarising [{'.' * 30}]   0%     5 s",
                                               "a note"]


def test_on_a_terminal_the_bar_is_redrawn_in_place_and_its_line_ended() -> None:
    clock, out = Clock(), Tty()
    bar = ProgressBar(out, after_s=0.0, clock=clock, tick_s=None)
    bar.stage("simulating", 0.5)
    clock.now = 0.3
    bar.stage("simulating", 1.0)
    assert out.getvalue().count("\r") == 2 and "\n" not in out.getvalue()
    bar.note("estimated 3 s")  # a note starts on a line of its own
    assert out.getvalue().endswith("] 100%     0 s    \nestimated 3 s\n")
    clock.now = 0.6
    bar.stage("summarising", 0.2)
    bar.done()
    assert out.getvalue().endswith("\n") and out.getvalue().count("\n") == 3


def test_the_ticker_shows_the_clock_moving_without_any_report() -> None:
    """One long step (one numpy call) reports nothing; the ticker thread draws anyway."""
    drawn = threading.Event()

    class Watched(Tty):
        def flush(self) -> None:
            drawn.set()

    out = Watched()
    bar = ProgressBar(out, after_s=0.0, tick_s=0.01)
    assert drawn.wait(30)  # bounded: a broken ticker fails instead of hanging
    bar.done()
    assert out.getvalue().startswith("\rstarting [") and out.getvalue().endswith("\n")


def test_every_stage_of_a_run_reports_up_to_its_end(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sim, "PROGRESS_AFTER_S", 0.0)  # so that the estimate is noted
    progress = Recorder()
    simulate(load_scenario(None, ["duration_s=0.3", "workload.kind=gups-shift",
                                  "workload.shift_at_s=0.1"]), progress)
    assert progress.names() == ["building workload", "placing pages", "ground truth",
                                "simulating", "summarising"]
    for name in progress.names():
        fractions = [f for n, f in progress.stages if n == name]
        assert fractions == sorted(fractions) and fractions[-1] == 1.0, name
    first, *then = progress.notes  # before the workload is built, then (if more) after
    assert first.startswith("ibs-mprof: estimated at least ")
    assert len(then) <= 1 and all(n.startswith("ibs-mprof: estimated ") and "at least" not in n
                                  for n in then)
    assert progress.finished == 1


def test_a_failed_run_still_ends_the_progress_line(tmp_path: Path) -> None:
    (tmp_path / "t.out").write_text(" L 00001000,8\n X\n")
    (tmp_path / "s.yaml").write_text("workload:\n  kind: lackey\n  trace: t.out\n")
    progress = Recorder()
    with pytest.raises(Exception, match="not a lackey record"):
        simulate(load_scenario(tmp_path / "s.yaml", []), progress)
    assert progress.finished == 1


def test_the_simulation_reports_at_every_timeline_tick_in_one_run() -> None:
    """The engine runs to the end in one call (a slice would cut the fast engine's blocks)
    and reports the fraction simulated at each tick, ascending up to 1."""
    progress = Recorder()
    simulate(load_scenario(None, ["duration_s=0.5", "metrics.timeline_ms=50"]), progress)
    simulated = [f for stage, f in progress.stages if stage == "simulating"]
    assert simulated == sorted(simulated) and simulated[-1] == 1.0
    assert len(simulated) >= 10  # 10 ticks of 50 ms, then the end


def test_trace_loading_reports_its_progress(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("runtime.lackey.PROGRESS_LINES", 10)
    path = tmp_path / "t.out"
    path.write_text("".join(f"I  {0x400000 + i:08x},4\n L {0x1000 + 64 * i:08x},8\n"
                            for i in range(500)))
    seen: list[float] = []
    load_trace(path, 1 << 20, 64, progress=seen.append)
    assert seen == sorted(seen) and 0 < seen[0] < 0.8 <= seen[-1] < 1.0
    assert len(seen) == 100 + 50  # every 10 of 1000 lines, then of 500 cache accesses

