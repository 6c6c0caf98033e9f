"""report.py: summary text, report folder contents, determinism and the atomic swap."""

from __future__ import annotations

import copy
import csv
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from runtime import report
from runtime.callfold import heat_bucket, lower_tier
from runtime.errors import InputError
from safeio import atomic_dir
from safeio.owned import MARKER, Manifest, folder_files, read_manifest

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TEXT_FILES = ("report.json", "summary.txt", "timeline.csv", "heatmap.txt", "vmstat.txt")
LOWER = [(1000, 1100), (5000, 5028)]  # two lower-tier nodes: 128 pages in all
BUCKETS = 8


def _tick(i: int, phase: int) -> dict[str, Any]:
    return {
        "t_ms": 500.0 * (i + 1), "phase": phase, "fthr": 0.1 * i, "fthr_oracle": 0.9,
        "hot_pages_lower": 40 - 4 * i, "ready_pages": i, "ready_precision": None if i == 0
        else 0.75, "ready_recall": 0.1 * i, "ready_weighted_recall": 0.05 * i,
        "promotions": 10 * i * i, "demotions": i // 3, "hwhint_total_events": 100 * i,
        "hwhint_useful_events": 90 * i, "pghot_recorded_accesses": 80 * i, "ring_full_drops": 0,
    }


def _quantiles(median: float | None, p90: float | None, top: float | None, count: int,
               of: int) -> dict[str, Any]:
    return {"median": median, "p90": p90, "max": top, "count": count,
            "fraction": count / of if of else None, "of_pages": of}


def _phase(label: str, start: float, end: float, recovery: float | None) -> dict[str, Any]:
    return {
        "label": label, "start_ms": start, "end_ms": end, "hot_pages": 40,
        "theta_accesses_per_s": 12.5, "oracle_fthr": 0.9, "fthr_end": 0.5,
        "promoted": {"pages": 30, "precision": 0.9, "recall": 0.675, "f1": 0.771,
                     "weighted_recall": 0.7},
        "ready": {"precision_mean": 0.8, "recall_mean": None, "weighted_recall_mean": 0.2},
        "time_to_detect_ms": _quantiles(450.0, 1500.0, 2400.0, 30, 40),
        "time_to_promote_ms": _quantiles(600.0, 1800.0, 2500.0, 27, 40),
        "recovery_ms": recovery,
    }


def synthetic_result() -> dict[str, Any]:
    """A small result with the structure simulate() returns; the sample counts add up."""
    timeline = [_tick(i, 0 if i < 3 else 1) for i in range(6)]
    rng = np.random.default_rng(7)
    rows = rng.integers(0, 50, size=(len(timeline), BUCKETS)).tolist()
    phases = [_phase("hot-a", 0.0, 1500.0, None), _phase("hot-b", 1500.0, 3000.0, 1000.0)]
    phases[0]["time_to_detect_ms"]["values"] = [float(v) for v in np.linspace(10, 2400, 30)]
    return {
        "schema": "ibs-mprof report 1",
        "scenario": {
            "seed": 3, "duration_s": 3.0, "engine": "reference",
            "machine": {"dram_nodes": 1, "cxl_nodes": 2, "cpus_per_dram_node": 2},
            "workload": {"kind": "gups-shift", "placement": "cxl"},
            "profiler": {"period": 10000, "cnt_ctl": True, "l3_miss_only": True},
            "driver": {"variant": "v7"},
            "pghot": {"mode": "default", "ready_rule": "recomputed", "enabled_sources": 3,
                      "freq_threshold": 2, "promote_freq_window_ms": None},
            "metrics": {"timeline_ms": 500.0},
        },
        "machine": {"nodes": [
            {"nid": 0, "tier": "top", "memory": "dram", "pfn_start": 0, "pages": 1000},
            {"nid": 1, "tier": "lower", "memory": "cxl", "pfn_start": 1000, "pages": 100},
            {"nid": 2, "tier": "lower", "memory": "cxl", "pfn_start": 5000, "pages": 28},
        ], "cpus": 2},
        "workload": {"pages": 120, "phases": [
            {"label": p["label"], "start_ms": p["start_ms"], "end_ms": p["end_ms"],
             "hot_pages": 40} for p in phases]},
        "final": {"fthr": 0.5, "fthr_oracle": 0.9, "placement_efficiency": 0.5 / 0.9,
                  "hot_pages": 40, "hot_pages_on_top": 27},
        "phases": phases,
        "migrations": {"promotions": 250, "useful": 230, "wasted": 20, "demotions": 1,
                       "ping_pong": 2, "promoted_mb_per_s": 0.33, "promote_failed": 0},
        "sampling": {
            "tagged_ops": 1000, "tags_discarded": {"l3_hit": 700}, "tags_kept": 300,
            "interrupts_lost": 4, "total": 296,
            "driver": {"pushed": 290, "laddr_invalid": 0, "paddr_invalid": 0, "pfn_offline": 0,
                       "ring_full": 6},
            "in_rings_at_end": 3,
            "pghot": {"recorded": 200, "not_started": 0, "same_node": 80, "toptier_page": 7,
                      "no_hot_map": 0},
            "recorded": 200, "nmi_per_cpu_per_s": 49.3, "yield": 290 / 296,
            "drop_rate": 6 / 296, "conservation": {"kept = NMIs + lost": True},
        },
        "lag_ms": {"median": 1.03, "p90": 2.5, "max": 1250.0, "count": 287},
        "overhead": {"nmi_cost_us": 2.0, "record_cost_us": 0.5, "migrate_cost_us": 10.0,
                     "cpu_percent": float("nan"), "budget_note": "a stated budget"},
        "vmstat": {"pgpromote_success": 250, "hwhint_total_events": 296},
        "first_ready_pages": 33,
        "verdict": "PARTIAL: synthetic verdict line",
        "timeline": timeline,
        "heatmap": {"buckets": BUCKETS, "lower_pfn_ranges": LOWER, "rows": rows},
        "engine": {"name": "reference", "wall_s": 0.25},
    }


def unwrap(summary: str) -> str:
    """Join continuation lines, so assertions do not depend on where a line wrapped."""
    return summary.replace("\n" + " " * (report.LABEL_WIDTH + 1), " ")


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path, list[Path]]:
    result = synthetic_result()
    out = tmp_path_factory.mktemp("rep") / "out"
    return result, out, report.write_report(result, out)


def test_every_file_is_written_and_returned(written: tuple[dict[str, Any], Path, list[Path]]
                                            ) -> None:
    _, out, paths = written
    assert paths == [Path(os.path.abspath(out)) / name for name in report.REPORT_FILES]
    assert sorted(p.name for p in out.iterdir()) == sorted([*report.REPORT_FILES, MARKER])
    assert read_manifest(out) == Manifest("report", folder_files(out))  # the proof it is ours
    assert set(folder_files(out)) == set(report.REPORT_FILES)
    assert [p.name for p in out.parent.iterdir()] == ["out"]  # no temp or backup left


def test_report_json_round_trips_with_nan_as_null(
        written: tuple[dict[str, Any], Path, list[Path]]) -> None:
    result, out, _ = written
    text = (out / "report.json").read_text()
    loaded = json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in JSON"))
    assert loaded["overhead"]["cpu_percent"] is None
    expected = copy.deepcopy(result)
    expected["overhead"]["cpu_percent"] = None
    expected["heatmap"]["lower_pfn_ranges"] = [list(r) for r in LOWER]
    assert loaded == expected
    assert list(loaded) == list(result)  # key order kept


def test_timeline_csv_has_one_row_per_tick(
        written: tuple[dict[str, Any], Path, list[Path]]) -> None:
    result, out, _ = written
    with (out / "timeline.csv").open(newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == list(result["timeline"][0])
    assert len(rows) - 1 == len(result["timeline"])
    assert rows[1][rows[0].index("ready_precision")] == ""  # None is an empty cell
    assert float(rows[2][rows[0].index("fthr")]) == result["timeline"][1]["fthr"]


def test_vmstat_txt_is_proc_vmstat_form(written: tuple[dict[str, Any], Path, list[Path]]) -> None:
    """Every counter of the result, `name value` per line in its order: a file that diffs
    against /proc/vmstat; nothing else in it (a real run's order: test_run_cli)."""
    result, out, _ = written
    pairs = [line.split(" ") for line in (out / "vmstat.txt").read_text().splitlines()]
    assert [name for name, _ in pairs] == list(result["vmstat"])
    assert {name: int(value) for name, value in pairs} == result["vmstat"]


def test_heatmap_txt_is_time_addr_freq(written: tuple[dict[str, Any], Path, list[Path]]) -> None:
    result, out, _ = written
    lines = (out / "heatmap.txt").read_text().splitlines()
    cols = [[int(v) for v in line.split()] for line in lines]
    assert all(len(c) == 3 for c in cols)
    assert len(cols) == len(result["timeline"]) * BUCKETS
    assert sum(c[2] for c in cols) == sum(map(sum, result["heatmap"]["rows"]))
    assert cols[0][0] == 500_000_000 and cols[-1][0] == 3_000_000_000
    starts = [c[1] for c in cols[:BUCKETS]]
    assert starts == [pfn << 12 for pfn in report.bucket_start_pfns(LOWER, BUCKETS)]
    assert starts[0] == 1000 << 12 and starts == sorted(set(starts))


@pytest.mark.parametrize("ranges,buckets", [(LOWER, BUCKETS), ([(7, 200)], 64),
                                            ([(0, 10), (20, 25)], 64)])
def test_bucket_starts_invert_the_collector(ranges: list[tuple[int, int]],
                                            buckets: int) -> None:
    tier = lower_tier(ranges, buckets)
    all_pfns = np.concatenate([np.arange(a, b, dtype=np.int64) for a, b in ranges])
    bucket_of = {pfn: heat_bucket(pfn, *tier) for pfn in all_pfns.tolist()}
    for b, pfn in enumerate(report.bucket_start_pfns(ranges, buckets)):
        first = [p for p in all_pfns.tolist() if bucket_of[p] >= b]
        assert pfn == (first[0] if first else ranges[-1][1])


def test_pngs_are_real_images(written: tuple[dict[str, Any], Path, list[Path]]) -> None:
    _, out, _ = written
    for name in ("fthr.png", "heatmap.png", "ttd_cdf.png"):
        data = (out / name).read_bytes()
        assert data[:8] == PNG_MAGIC, name
        assert len(data) > 10_000, name
        assert b"Software" not in data and b"matplotlib" not in data


def test_same_result_gives_identical_bytes(tmp_path: Path,
                                           written: tuple[dict[str, Any], Path, list[Path]]
                                           ) -> None:
    result, out, _ = written
    again = tmp_path / "again"
    report.write_report(copy.deepcopy(result), again)
    first, second = snapshot(out), snapshot(again)
    for name in TEXT_FILES:
        assert first[name] == second[name], name
    assert first == second  # the PNGs too: no time or version stamp
    report.write_report(result, again)  # replacing an existing folder
    assert snapshot(again) == first
    assert [p.name for p in tmp_path.iterdir()] == ["again"]


@pytest.mark.parametrize("target", ["report_json", "timeline_csv", "_plot_heatmap",
                                    "_plot_ttd_cdf"])
def test_failure_mid_write_leaves_old_report(tmp_path: Path, target: str,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    report.write_report(synthetic_result(), out)
    before = snapshot(out)

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("injected")

    monkeypatch.setattr(report, target, boom)
    changed = synthetic_result()
    changed["verdict"] = "EFFECTIVE: something else"
    with pytest.raises(RuntimeError, match="injected"):
        report.write_report(changed, out)
    assert snapshot(out) == before
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_failure_without_old_report_leaves_nothing(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(report, "_plot_fthr", lambda *a: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        report.write_report(synthetic_result(), tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_failed_swap_restores_old_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The new folder cannot be renamed in after the old one moved aside: old one comes back.

    (The two-rename fallback, used where RENAME_EXCHANGE is not available.)"""
    out = tmp_path / "out"
    report.write_report(synthetic_result(), out)
    before = snapshot(out)
    real_replace = os.replace
    monkeypatch.setattr(atomic_dir, "exchange", lambda new, old: False)

    def replace(src: Any, dst: Any) -> None:
        if Path(dst) == out and ".tmp-" in str(src):
            raise OSError("injected rename failure")
        real_replace(src, dst)

    monkeypatch.setattr(atomic_dir.os, "replace", replace)
    with pytest.raises(OSError, match="injected"):
        report.write_report(synthetic_result(), out)
    assert snapshot(out) == before
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_empty_timeline_still_gives_a_report(tmp_path: Path) -> None:
    result = synthetic_result()
    result["timeline"], result["heatmap"]["rows"] = [], []
    for phase in result["phases"]:
        phase["time_to_detect_ms"] = _quantiles(None, None, None, 0, 0)
        phase["time_to_promote_ms"] = _quantiles(None, None, None, 0, 40)
    paths = report.write_report(result, tmp_path / "out")
    assert all(p.is_file() for p in paths)
    assert (tmp_path / "out" / "timeline.csv").read_text() == ""
    assert (tmp_path / "out" / "heatmap.txt").read_text() == ""
    assert "n/a / n/a (n/a)" in report.summary_text(result)


def test_report_folder_gets_normal_permissions(tmp_path: Path) -> None:
    umask = os.umask(0o022)
    try:
        report.write_report(synthetic_result(), tmp_path / "out")
    finally:
        os.umask(umask)
    assert (tmp_path / "out").stat().st_mode & 0o777 == 0o755


def test_out_dir_that_is_a_file_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "out"
    target.write_text("keep me")
    with pytest.raises(InputError, match="not a folder"):
        report.write_report(synthetic_result(), target)
    assert target.read_text() == "keep me"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_summary_text_shows_the_run_and_adds_up() -> None:
    lines = report.summary_text(synthetic_result()).splitlines()
    text = unwrap("\n".join(lines))
    assert lines[-1] == "verdict: PARTIAL: synthetic verdict line"
    assert "1 DRAM + 2 CXL node(s), 2 CPUs, 3.00 s simulated, seed 3" in lines[0]
    assert "lower 1 x cxl 0.390625 MiB (node 1); lower 1 x cxl 0.109375 MiB (node 2)" in text
    assert "threshold 2 in 3000 ms (default)" in text
    assert "tagged ops 1000 = discarded l3_hit 700 + kept 300  [ok]" in text
    assert "kept 300 = NMIs 296 + interrupts lost 4  [ok]" in text
    assert "NMIs 296 = pushed 290 + dropped ring_full 6  [ok]" in text
    assert "pushed 290 = pghot calls 287 + in rings at end 3  [ok]" in text
    assert "pghot calls 287 = recorded 200 + same_node 80 + toptier_page 7  [ok]" in text
    assert "zero counts: laddr_invalid, paddr_invalid, pfn_offline, not_started, no_hot_map" \
        in text
    assert "250 = useful 230 + wasted 20  [ok]" in text
    assert "n/a of 2 CPUs" in text  # NaN overhead is not a number to print
    assert "recall n/a" in text  # None reads as n/a
    assert "450 ms / 1.50 s (75.0%)" in text  # > 1000 ms in seconds with 2 decimals
    assert "hot-b at 1.50 s: 1000 ms" in text
    assert "median 1.03 ms  p90 2.50 ms  max 1.25 s" in text
    assert all(len(line) <= report.WRAP_WIDTH for line in lines[:-1])


def test_summary_flags_numbers_that_do_not_add_up() -> None:
    result = synthetic_result()
    result["sampling"]["in_rings_at_end"] = 4
    text = unwrap(report.summary_text(result))
    assert "pushed 290 != pghot calls 287 + in rings at end 4  [MISMATCH: terms sum to 291]" \
        in text


def test_json_ready_handles_numpy_and_non_finite() -> None:
    value = {"a": (np.int64(3), np.float32(0.5)), "b": [math.inf, -math.inf, np.nan],
             "c": np.bool_(True), 4: np.arange(2)}
    assert report.json_ready(value) == {"a": [3, 0.5], "b": [None, None, None], "c": True,
                                        "4": [0, 1]}


def test_end_to_end_with_the_simulator(tmp_path: Path) -> None:
    from runtime.scenario import load_scenario
    from runtime.simulate import simulate

    result = simulate(load_scenario(None, ["duration_s=0.5", "machine.cpus_per_dram_node=1"]))
    paths = report.write_report(result, tmp_path / "run")
    assert all(p.is_file() and p.stat().st_size > 0 for p in paths)
    assert json.loads(paths[0].read_text())["verdict"] == result["verdict"]
    text = (tmp_path / "run" / "summary.txt").read_text()
    s = result["sampling"]
    assert f"verdict: {result['verdict']}" in text
    assert f"tagged ops {s['tagged_ops']} = " in text
    assert f"pushed {s['driver']['pushed']} = pghot calls {sum(s['pghot'].values())} + " \
        f"in rings at end {s['in_rings_at_end']}  [ok]" in text
    assert "MISMATCH" not in text
    heat = (tmp_path / "run" / "heatmap.txt").read_text().split()
    assert sum(map(int, heat[2::3])) == sum(map(sum, result["heatmap"]["rows"]))


def test_summary_names_each_kernel_pitfall_once() -> None:
    from runtime.pghot.core import PITFALLS

    result = synthetic_result()
    assert "kernel pitfall" not in report.summary_text(result)
    result["pitfalls"] = {"threshold_wrapped": PITFALLS["threshold_wrapped"]}
    text = report.summary_text(result)
    assert text.count("kernel pitfall: the promotion age threshold") == 1
    assert max(len(line) for line in text.splitlines() if "pitfall" in line) <= 100


def test_report_json_names_the_driver_and_pghot_outcomes_as_documented() -> None:
    """report.json's sampling section is read by users' scripts: its outcome names are part
    of the schema (the seed driver's filters, then pghot_record_access's early returns)."""
    from runtime.scenario import load_scenario
    from runtime.simulate import simulate

    sampling = simulate(load_scenario(None, ["duration_s=0.2", "workload.region_mib=64"]))[
        "sampling"]
    assert list(sampling["driver"]) == ["pushed", "laddr_invalid", "paddr_invalid",
                                        "pfn_offline", "ring_full"]
    assert list(sampling["pghot"]) == ["recorded", "not_started", "invalid_nid",
                                       "invalid_source", "source_disabled", "pfn_offline",
                                       "same_node", "toptier_page", "not_lru", "no_hot_map"]
    assert sampling["recorded"] == sampling["pghot"]["recorded"] > 0
