"""What a sweep leaves: its folder taken only when it is ours (and resumed then), failed points
run again, the results table's cells and types, Pareto fronts, the time-left estimate and
plots whose bytes depend on the results only. Points run in-process (--workers 0)."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

import runtime.simulate
from runtime.errors import InputError
from runtime.sweep import aggregate
from runtime.sweep.plots import write_plots
from runtime.sweep.progress import SweepProgress
from runtime.sweep.store import OUTPUTS_TMP, POINTS
from runtime.sweep.table import csv_text, make_row, write_tables
from safeio.owned import TEMP, Manifest, read_manifest, write_manifest
from tests.test_sweep import fast_set, results, sweep_here, write_grid

GRID = fast_set() + "axes:\n  pghot.freq_threshold: [1, 2]\n  seed: [1, 2]\n"


def sweep_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    status = sweep_here(*args, "--workers", "0", "--json")
    out = capsys.readouterr().out
    return status, json.loads(out) if out else {}


def refused(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert sweep_here(*args, "--workers", "0") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("ibs-mprof: error: --out ")
    return err


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished sweep folder (4 points), run once for this file."""
    folder = tmp_path_factory.mktemp("finished")
    grid = write_grid(folder, GRID)
    assert sweep_here(str(grid), "--out", str(folder / "out"), "--workers", "0", "--quiet") == 0
    return folder / "out"


@pytest.fixture
def done(finished: Path, tmp_path: Path) -> Path:
    """A copy of the finished sweep folder (a copy of our folder is ours: the marker lists
    each file's bytes), with its grid beside it."""
    shutil.copytree(finished, tmp_path / "out", symlinks=True)
    write_grid(tmp_path, GRID)
    return tmp_path / "out"


def test_a_rerun_into_its_own_folder_resumes(done: Path, capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import distributed

    def no_cluster(*args: Any, **kw: Any) -> None:
        raise AssertionError("a cluster was started with nothing to run")

    monkeypatch.setattr(distributed, "LocalCluster", no_cluster)
    before = results(done)
    assert sweep_here(str(done.parent / "grid.yaml"), "--out", str(done), "--workers", "2",
                      "--json") == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["ran"], summary["stored"]) == (0, 4)
    assert results(done) == before
    listed = read_manifest(done)
    assert listed is not None and listed.kind == "sweep"
    assert {"results.csv", "results.parquet", "plots/tradeoff.png",
            "plots/vs-pghot.freq_threshold.png"} == set(listed.files)


def test_a_smaller_grid_replaces_the_outputs_and_keeps_the_points(
        done: Path, capsys: pytest.CaptureFixture[str]) -> None:
    grid = write_grid(done.parent, fast_set() + "axes:\n  seed: [1, 2]\n", "seeds.yaml")
    status, summary = sweep_json(capsys, str(grid), "--out", str(done))
    assert status == 0 and (summary["ran"], summary["stored"]) == (0, 2)  # threshold 2: default
    assert not (done / "plots" / "vs-pghot.freq_threshold.png").exists()
    assert len(list((done / POINTS).iterdir())) == 4
    listed = read_manifest(done)
    assert listed is not None and "plots/vs-pghot.freq_threshold.png" not in listed.files


def test_no_more_local_workers_than_points_to_run(
        done: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import distributed

    asked: list[int] = []

    def cluster(*args: Any, n_workers: int, **kw: Any) -> None:
        asked.append(n_workers)
        raise InputError("no cluster in this test")

    monkeypatch.setattr(distributed, "LocalCluster", cluster)
    grid = write_grid(done.parent, fast_set() + "axes:\n  seed: [1, 2, 3]\n", "seeds.yaml")
    assert sweep_here(str(grid), "--out", str(done), "--workers", "4", "--quiet") == 2
    assert asked == [1]  # seeds 1 and 2 are stored (threshold 2 is the default)
    assert "no cluster in this test" in capsys.readouterr().err


def test_folders_that_are_not_ours_are_refused(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    grid = write_grid(tmp_path, GRID)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    assert "ibs-mprof did not write (no marker" in refused(capsys, str(grid), "--out",
                                                             str(foreign))
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]
    report = tmp_path / "report"
    report.mkdir()
    write_manifest(report, Manifest("report"))
    assert "holds ibs-mprof's report output, not a sweep" in refused(capsys, str(grid), "--out",
                                                                     str(report))
    assert "holds the input" in refused(capsys, str(grid), "--out", str(tmp_path))


def test_what_was_changed_or_added_in_our_folder_is_refused(
        done: Path, capsys: pytest.CaptureFixture[str]) -> None:
    grid = str(done.parent / "grid.yaml")
    (done / "results.csv").write_text("edited\n")
    assert "(results.csv (changed since it was written))" in refused(capsys, grid, "--out",
                                                                     str(done))
    assert (done / "results.csv").read_text() == "edited\n"
    (done / "results.csv").unlink()  # a listed file that is gone is no one's
    point = sorted((done / POINTS).iterdir())[0]
    (point / "report.json").write_text("{}")
    assert f"(points/{point.name})" in refused(capsys, grid, "--out", str(done))
    (point / "report.json").unlink()
    (done / POINTS / "extra").mkdir()
    assert "points/extra" in refused(capsys, grid, "--out", str(done))


def test_a_folder_another_sweep_is_writing_is_refused(
        done: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fd = os.open(done, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        assert "another ibs-mprof sweep is writing this folder" in refused(
            capsys, str(done.parent / "grid.yaml"), "--out", str(done))
    finally:
        os.close(fd)


def test_what_a_killed_run_left_is_cleaned(done: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    gone = 2**22 + 12345  # above pid_max's default: no such process
    outputs = done / f"{OUTPUTS_TMP}{gone}-0badc0de"
    outputs.mkdir()
    write_manifest(outputs, Manifest(TEMP, pid=gone))
    (outputs / "results.csv").write_text("half")
    point = sorted(p.name for p in (done / POINTS).iterdir())[0]
    half = done / POINTS / f".{point}.tmp-{gone}-0badc0de"
    half.mkdir()
    write_manifest(half, Manifest(TEMP, pid=gone))
    status, summary = sweep_json(capsys, str(done.parent / "grid.yaml"), "--out", str(done))
    assert status == 0 and summary["ran"] == 0
    assert not outputs.exists() and not half.exists()


def test_failed_points_run_again(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    grid = write_grid(tmp_path, GRID)
    real = runtime.simulate.simulate

    def refuse_threshold_1(scenario: dict[str, Any], *args: Any, **kw: Any) -> dict[str, Any]:
        if scenario["pghot"]["freq_threshold"] == 1:
            raise InputError("scenario: refused for this test")
        return real(scenario, *args, **kw)

    monkeypatch.setattr(runtime.simulate, "simulate", refuse_threshold_1)
    status, summary = sweep_json(capsys, str(grid), "--out", str(tmp_path / "out"))
    assert status == 1 and summary["failed"] == 2
    assert [r["error"] for r in summary["rows"]] == ["scenario: refused for this test"] * 2 + \
        [None] * 2
    monkeypatch.setattr(runtime.simulate, "simulate", real)
    status, summary = sweep_json(capsys, str(grid), "--out", str(tmp_path / "out"))
    assert status == 0 and (summary["ran"], summary["stored"], summary["failed"]) == (2, 2, 0)


def row(point: int, seed: int, fthr: float | None, cost: float, status: str = "ok"
        ) -> dict[str, Any]:
    report = {"final": {"fthr": fthr}, "overhead": {"cpu_percent": cost},
              "phases": [{"promoted": {"precision": 1}}], "verdict": "PARTIAL: half"}
    out = make_row(point, {"seed": seed, "profiler": {"period": 1024 * (point // 2 + 1)}},
                   ["profiler.period", "seed"], report if status == "ok" else None,
                   None if status == "ok" else "broke", f"k{point}")
    return out


def test_rows_cells_and_types(tmp_path: Path) -> None:
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    rows = [row(0, 1, 0.25, 1.5), row(1, 2, None, 2.0, status="failed")]
    text = csv_text(rows, ["profiler.period", "seed"])
    header, first, second = text.splitlines()
    assert header.startswith("point,profiler.period,seed,fthr,fthr_oracle,")
    assert header.endswith(",verdict,status,error,key")
    assert first.startswith("0,1024,1,0.25,,") and first.endswith(",1.5,PARTIAL,ok,,k0")
    assert second.startswith("1,1024,2,,,") and second.endswith(",,,failed,broke,k1")
    assert rows[0]["precision"] == 1.0 and isinstance(rows[0]["precision"], float)
    write_tables(rows, ["profiler.period", "seed"], tmp_path)
    table = pq.read_table(tmp_path / "results.parquet")
    assert str(table.schema.field("point").type) == "int64"
    assert str(table.schema.field("fthr").type) == "double"
    assert str(table.schema.field("promotions").type) == "int64"
    assert str(table.schema.field("verdict").type) == "string"
    assert table.column("fthr").to_pylist() == [0.25, None]


def test_configs_and_pareto_front() -> None:
    # (period, seed) rows; configurations by period: mean over seeds
    rows = [row(0, 1, 0.5, 1.0), row(1, 2, 0.7, 3.0),   # period 1024: fthr 0.6, cost 2.0
            row(2, 1, 0.4, 2.5), row(3, 2, 0.4, 2.5),   # 2048: 0.4 at 2.5: dominated
            row(4, 1, 0.9, 4.0), row(5, 2, None, 9.0, status="failed"),  # 3072: 0.9 at 4.0
            row(6, 1, 0.9, 5.0), row(7, 2, 0.9, 5.0)]   # 4096: as good, dearer: dominated
    configs = aggregate.configs(rows, ["profiler.period", "seed"])
    assert [dict(c.values)["profiler.period"] for c in configs] == [1024, 2048, 3072, 4096]
    spread = configs[0].spread("fthr")
    assert spread is not None and (spread.mean, spread.low, spread.high, spread.count) == \
        pytest.approx((0.6, 0.5, 0.7, 2))
    front = aggregate.pareto(configs, "fthr", more_is_better=True)
    assert [dict(c.values)["profiler.period"] for c in front] == [1024, 3072]
    fronts = aggregate.pareto_json(configs)
    assert [item["values"] for item in fronts["fthr_vs_cpu_overhead_pct"]] == [
        {"profiler.period": 1024}, {"profiler.period": 3072}]
    assert fronts["ttp_p90_ms_vs_cpu_overhead_pct"] == []  # no point has the number


class Bar:
    """What SweepProgress hands the progress bar."""

    def __init__(self) -> None:
        self.shown: list[tuple[str, float]] = []
        self.notes: list[str] = []

    def note(self, text: str) -> None:
        self.notes.append(text)

    def stage(self, name: str, fraction: float) -> None:
        self.shown.append((name.strip(), fraction))

    def done(self) -> None:
        pass


def test_time_left_scales_the_estimates_by_what_points_took() -> None:
    bar = Bar()
    progress = SweepProgress(4, 1, [1.0, 1.0, 2.0], 2, bar=bar)  # type: ignore[arg-type]
    assert bar.notes == ["sweep: 4 points, 1 already stored, 3 to run on 2 workers; "
                         "estimated 2.0 s"]
    assert progress.time_left() == 2.0
    progress.point_done(1.0, 2.0, failed=False)  # took twice its estimate
    assert progress.time_left() == pytest.approx(3.0)  # (1 + 2) x 2 / 2 workers
    progress.point_done(1.0, None, failed=True)
    assert progress.time_left() == pytest.approx(2.0)
    assert bar.shown[-1] == ("sweep 3/4 points (1 stored, 1 failed), about 2.0 s left", 0.75)
    progress.point_done(2.0, 1.0, failed=False)
    assert bar.shown[-1] == ("sweep 4/4 points (1 stored, 1 failed)", 1.0)


def test_plots_are_the_same_bytes_for_the_same_results(tmp_path: Path) -> None:
    rows = [row(i, i % 2 + 1, 0.1 * i, 1.0 + i) for i in range(6)]
    keys = ["profiler.period", "seed"]
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    names = write_plots(rows, keys, first)
    assert names == ["plots/tradeoff.png", "plots/vs-profiler.period.png"]
    assert write_plots(rows, keys, second) == names
    for name in names:
        data = (first / name).read_bytes()
        assert data.startswith(b"\x89PNG") and data == (second / name).read_bytes()
        assert b"Software" not in data  # no matplotlib version in the file


def test_plots_take_words_and_failures(tmp_path: Path) -> None:
    rows = [make_row(i, {"pghot": {"mode": mode}, "seed": 1}, ["pghot.mode", "seed"], None,
                     "broke", f"k{i}") for i, mode in enumerate(("default", "precise"))]
    assert write_plots(rows, ["pghot.mode", "seed"], tmp_path) == [
        "plots/tradeoff.png", "plots/vs-pghot.mode.png"]


class Future:
    """What the Dask runner reads a point's result from."""

    def __init__(self, error: BaseException) -> None:
        self.error = error

    def result(self) -> object:
        raise self.error


def test_a_point_whose_workers_all_died_or_whose_cluster_failed_is_recorded() -> None:
    from distributed import KilledWorker

    from runtime.sweep.execute import KILLED, _outcome
    from runtime.sweep.points import Point

    point = Point(3, (), {}, "abc")
    killed = _outcome(Future(KilledWorker("ibs-mprof-point-abc", "tcp://w", 3)), point)
    assert (killed.key, killed.report, killed.error) == ("abc", None, KILLED)
    lost = _outcome(Future(OSError("connection\nlost")), point)
    assert lost.error == "dask: OSError: connection\\nlost"


def test_a_worker_with_another_tool_refuses_the_point() -> None:
    from runtime.sweep.points import tool_identity
    from runtime.sweep.task import run_point

    other = "ibs-mprof 0.0.1 (model 0123456789abcdef)"
    outcome = run_point("k", {}, other)
    assert outcome.report is None and outcome.error == (
        f"the worker runs {tool_identity()}, the sweep {other}: install the same ibs-mprof "
        "(and Python, numpy) on every worker")
