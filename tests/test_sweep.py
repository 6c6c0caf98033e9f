"""`ibs-mprof sweep` on Dask: a LocalCluster of worker processes gives what the points give
run one by one in-process; a killed worker's point runs again; a failing point is recorded
and the sweep goes on; a sweep killed mid-way resumes with only what is missing; a cluster
behind a scheduler address (dask's own scheduler and worker processes) gives the same table.

The helpers here are shared by the other test_sweep*.py files. The grids are small and
short (64 MiB, 50 ms simulated), so each cluster run takes seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from runtime import cli
from runtime.sweep import add_arguments, command
from runtime.sweep.task import CTRL_C_ENV, DIE_ONCE_ENV
from safeio.killpoints import KILL_AT_ENV
from tests.conftest import ROOT

ENTRY = ("import sys; import runtime.cli as cli; from tests.test_sweep import with_sweep; "
         "cli.build_parser = with_sweep(cli.build_parser); sys.exit(cli.main(sys.argv[1:]))")
"""`ibs-mprof` with the sweep command, whether or not runtime/cli.py lists it yet."""

FAST = {"duration_s": 0.05, "workload.region_mib": 64}
"""Points that take milliseconds once a worker has loaded the compiled engine."""


def with_sweep(build: Callable[[], argparse.ArgumentParser]
               ) -> Callable[[], argparse.ArgumentParser]:
    """build_parser, plus the `sweep` sub-command where the CLI does not register it."""
    def patched() -> argparse.ArgumentParser:
        parser = build()
        sub = next(a for a in parser._actions if a.dest == "command")
        choices = sub.choices
        assert isinstance(choices, dict)
        if "sweep" not in choices:
            sweep = sub.add_parser("sweep", help="parameter sweeps")  # type: ignore[attr-defined]
            add_arguments(sweep)
            sweep.set_defaults(func=command)
        return parser
    return patched


def sweep_cli(*args: str, cwd: Path, env: dict[str, str] | None = None,
              timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """`ibs-mprof sweep ARGS` in a subprocess, as a user runs it."""
    full = dict(os.environ, PYTHONPATH=str(ROOT), **(env or {}))
    return subprocess.run([sys.executable, "-c", ENTRY, "sweep", *args], cwd=cwd, env=full,
                          capture_output=True, text=True, timeout=timeout)


def sweep_here(*args: str) -> int:
    """`ibs-mprof sweep ARGS` in this process (the in-process runner, --workers 0, is quick)."""
    build = cli.build_parser
    cli.build_parser = with_sweep(build)
    try:
        return cli.main(["sweep", *args])
    finally:
        cli.build_parser = build


def write_grid(folder: Path, text: str, name: str = "grid.yaml") -> Path:
    path = folder / name
    path.write_text(text)
    return path


def fast_set(**more: object) -> str:
    """A grid's `set:` section with FAST and more."""
    items = {**FAST, **more}
    return "set:\n" + "".join(f"  {k}: {json.dumps(v)}\n" for k, v in items.items())


def results(out: Path) -> str:
    return (out / "results.csv").read_text()


LACKEY_OK = "==1== Lackey\nI  0400d7d4,8\n L 0421ed08,8\n S 7ff000398,8\n M 0421ed10,4\n"
LACKEY_BAD = LACKEY_OK + "this is not a lackey line\n"


@pytest.fixture
def mixed_grid(tmp_path: Path) -> Path:
    """Four gups points that run and two lackey points whose trace breaks at line 6."""
    (tmp_path / "bad.log").write_text(LACKEY_BAD)
    return write_grid(tmp_path, "set:\n  duration_s: 0.05\n"
                      "points:\n  - {workload.region_mib: 64, profiler.period: 1024}\n"
                      "  - {workload.region_mib: 64, profiler.period: 4096}\n"
                      "  - {workload.kind: lackey, workload.trace: bad.log}\n"
                      "axes:\n  seed: [1, 2]\n")


def test_local_cluster_equals_in_process_retries_a_killed_worker_records_a_failing_point(
        mixed_grid: Path, tmp_path: Path) -> None:
    assert sweep_here(str(mixed_grid), "--out", str(tmp_path / "here"), "--workers", "0",
                      "--quiet") == 1
    died = tmp_path / "a worker died"
    done = sweep_cli(str(mixed_grid), "--out", "dask", "--workers", "2", "--json",
                     cwd=tmp_path, env={DIE_ONCE_ENV: str(died)})
    assert done.returncode == 1, done.stderr
    assert died.exists()  # a worker process killed itself running a point: it ran again
    assert "Traceback" not in done.stderr
    assert results(tmp_path / "dask") == results(tmp_path / "here")
    summary = json.loads(done.stdout)
    assert (summary["points"], summary["ran"], summary["failed"]) == (6, 6, 2)
    rows = summary["rows"]
    assert [r["point"] for r in rows] == list(range(6))
    failed = [r for r in rows if r["status"] == "failed"]
    assert [r["point"] for r in failed] == [4, 5]
    for row in failed:
        assert row["error"].startswith(f"{tmp_path / 'bad.log'}:6: ")
        assert "\n" not in row["error"] and row["fthr"] is None
    for row in rows[:4]:
        assert row["status"] == "ok" and row["error"] is None
        assert 0.0 <= row["fthr"] <= 1.0 and row["nmi_per_cpu_s"] > 0
    assert "2 point(s) failed" in done.stderr
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    assert pq.read_table(tmp_path / "dask" / "results.parquet").equals(
        pq.read_table(tmp_path / "here" / "results.parquet"))
    for name in ("plots/tradeoff.png", "plots/vs-profiler.period.png"):
        assert (tmp_path / "dask" / name).read_bytes() == (tmp_path / "here" / name).read_bytes()


def _group_alive(pgid: int) -> list[str]:
    ps = subprocess.run(["ps", "-o", "pid=,stat=,args=", "-g", str(pgid)], capture_output=True,
                        text=True)
    return [line for line in ps.stdout.splitlines() if " Z" not in line and line.strip()]


def test_a_sweep_killed_mid_way_resumes_with_what_is_missing(tmp_path: Path) -> None:
    grid = write_grid(tmp_path, fast_set() + "axes:\n  profiler.period: [1024, 4096]\n"
                      "  seed: [1, 2]\n")
    assert sweep_here(str(grid), "--out", str(tmp_path / "here"), "--workers", "0",
                      "--quiet") == 0
    env = dict(os.environ, PYTHONPATH=str(ROOT), **{KILL_AT_ENV: "sweep-point-stored"})
    killed = subprocess.Popen([sys.executable, "-c", ENTRY, "sweep", str(grid), "--out", "dask",
                               "--workers", "1"], cwd=tmp_path, env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              start_new_session=True)
    killed.communicate(timeout=180)
    assert killed.returncode == -signal.SIGKILL
    stored = [p for p in (tmp_path / "dask" / "points").iterdir() if not p.name.startswith(".")]
    assert len(stored) == 1 and not (tmp_path / "dask" / "results.csv").exists()
    deadline = time.monotonic() + 30  # the workers notice their parent is gone and exit
    while _group_alive(killed.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _group_alive(killed.pid)
    before = (stored[0] / "report.json").stat().st_mtime_ns
    done = sweep_cli(str(grid), "--out", "dask", "--workers", "0", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert (summary["ran"], summary["stored"]) == (3, 1)
    assert (stored[0] / "report.json").stat().st_mtime_ns == before
    assert results(tmp_path / "dask") == results(tmp_path / "here")


def test_ctrl_c_stops_the_cluster_without_a_traceback_and_keeps_the_stored_points(
        tmp_path: Path) -> None:
    grid = write_grid(tmp_path, fast_set() + "axes:\n  seed: {from: 1, to: 8}\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT), **{CTRL_C_ENV: "1"})
    sweep = subprocess.Popen([sys.executable, "-c", ENTRY, "sweep", str(grid), "--out", "out",
                              "--workers", "2"], cwd=tmp_path, env=env, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             start_new_session=True)  # its own group, as a terminal's job
    _, err = sweep.communicate(timeout=180)
    assert sweep.returncode == 130, err
    assert err.endswith("ibs-mprof: interrupted\n") and "Traceback" not in err
    stored = [p for p in (tmp_path / "out" / "points").iterdir() if not p.name.startswith(".")]
    assert 1 <= len(stored) < 8
    deadline = time.monotonic() + 30
    while _group_alive(sweep.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _group_alive(sweep.pid)


@pytest.fixture
def scheduler(tmp_path: Path) -> Iterator[str]:
    """dask's own scheduler and a worker process pair on 127.0.0.1; its address."""
    info = tmp_path / "scheduler.json"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    base = [sys.executable, "-m"]
    procs = [subprocess.Popen([*base, "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                               "--port", "0", "--no-dashboard", "--scheduler-file", str(info)],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        deadline = time.monotonic() + 60
        while not info.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        procs.append(subprocess.Popen([*base, "distributed.cli.dask_worker", "--scheduler-file",
                                       str(info), "--nworkers", "2", "--nthreads", "1",
                                       "--no-dashboard"], env=env, cwd=tmp_path,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        address = json.loads(info.read_text())["address"]
        from distributed import Client

        with Client(address, timeout=60) as client:  # type: ignore[no-untyped-call]
            client.wait_for_workers(2, timeout=60)
        yield address
    finally:
        for proc in reversed(procs):
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def test_a_scheduler_address_gives_the_same_table(tmp_path: Path, scheduler: str) -> None:
    grid = write_grid(tmp_path, fast_set() + "axes:\n  pghot.freq_threshold: [1, 2]\n"
                      "  seed: [1, 2]\n")
    assert sweep_here(str(grid), "--out", str(tmp_path / "here"), "--workers", "0",
                      "--quiet") == 0
    done = sweep_cli(str(grid), "--out", "remote", "--scheduler", scheduler, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert results(tmp_path / "remote") == results(tmp_path / "here")
    assert "4/4 points" in done.stderr


def test_an_unreachable_scheduler_is_one_line(tmp_path: Path) -> None:
    grid = write_grid(tmp_path, fast_set())
    done = sweep_cli(str(grid), "--out", "x", "--scheduler", "tcp://127.0.0.1:9", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "--scheduler 'tcp://127.0.0.1:9'" in done.stderr
    assert not (tmp_path / "x").exists()
