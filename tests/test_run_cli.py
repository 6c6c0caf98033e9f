"""`ibs-mprof run` end to end: determinism, both engines agree, bad input leaves nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.conftest import run_cli

SHORT = ["--set", "duration_s=1.5", "--set", "machine.ops_per_cpu_per_s=2e8"]


def report(out: Path, *extra: str) -> dict[str, Any]:
    result = run_cli("run", "--quiet", "--out", str(out), *SHORT, *extra)
    assert result.returncode == 0, result.stderr
    assert "verdict:" in result.stdout
    data: dict[str, Any] = json.loads((out / "report.json").read_text())
    data.pop("engine")  # wall time differs run to run
    data["scenario"].pop("engine")
    return data


def test_same_seed_same_report_and_both_engines_agree(tmp_path: Path) -> None:
    first = report(tmp_path / "a")
    assert report(tmp_path / "b") == first
    assert report(tmp_path / "c", "--engine", "reference") == first
    assert report(tmp_path / "d", "--seed", "2") != first
    for name in ("summary.txt", "timeline.csv", "heatmap.txt", "fthr.png", "heatmap.png",
                 "ttd_cdf.png"):
        assert (tmp_path / "a" / name).stat().st_size > 0
    from runtime.vmstat import NODE_STATS, VM_EVENTS

    vmstat = (tmp_path / "c" / "vmstat.txt").read_text().splitlines()
    assert [line.split(" ")[0] for line in vmstat] == [*NODE_STATS, *VM_EVENTS]
    assert (tmp_path / "a" / "vmstat.txt").read_text().splitlines() == vmstat


def test_bad_scenario_is_one_line_and_leaves_no_output(tmp_path: Path) -> None:
    scenario = tmp_path / "s.yaml"
    scenario.write_text("seed: 3\npghot:\n  freq_threshold: 5\n")
    out = tmp_path / "out"
    result = run_cli("run", str(scenario), "--out", str(out))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"ibs-mprof: error: {scenario}:3: pghot.freq_threshold = 5 is outside 1..3 "
        "(default mode)"]
    assert not out.exists() and list(tmp_path.iterdir()) == [scenario]
    result = run_cli("run", "--set", "machine.cpus_per_dram_node=0", "--out", str(out))
    assert result.returncode == 2 and "outside" in result.stderr and not out.exists()
    result = run_cli("run", "--set", "profiler.period=10001", "--out", str(out))
    assert result.returncode == 2 and not out.exists()
    assert ("--set: profiler.period = 10001 is not a multiple of 16; profiler.period must be "
            "an int in 16..134217712 (a multiple of 16)") in result.stderr


def test_unwritable_report_folder_is_refused_before_simulating(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = run_cli("run", "--out", str(blocker))
    assert result.returncode == 2 and "simulating" not in result.stderr
    assert result.stderr.strip() == \
        f"ibs-mprof: error: --out {str(blocker)!r}: exists and is not a folder; name a folder"
    assert blocker.read_text() == "not a folder"


def test_sample_log_streams_every_pghot_call_into_the_report(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run_cli("run", "--quiet", "--sample-log", "--out", str(out), *SHORT)
    assert result.returncode == 0, result.stderr
    rows = (out / "samples.csv").read_text().splitlines()
    report = json.loads((out / "report.json").read_text())
    assert rows[0] == "sample_ms,drain_ms,cpu,pfn,page,ready,src"
    assert len(rows) - 1 == sum(report["sampling"]["pghot"].values()) > 0
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # nothing left aside
    lag = [float(r.split(",")[1]) - int(r.split(",")[0]) for r in rows[1:]]
    assert max(lag) <= report["lag_ms"]["max"] + 1  # the drain follows its sample
    again = run_cli("run", "--quiet", "--out", str(out), *SHORT)  # our own folder: replaced
    assert again.returncode == 0 and not (out / "samples.csv").exists()
