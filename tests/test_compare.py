"""`ibs-mprof compare`: one workload under each setup; the table is each setup's own report."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

from runtime import compare
from runtime.errors import InputError
from safeio.owned import MARKER
from tests.conftest import run_cli

SMALL = ["--set", "duration_s=3", "--set", "workload.region_mib=256", "--set",
         "machine.dram_mib=128", "--set", "numab.scan_size_mb=64", "--set",
         "machine.ops_per_cpu_per_s=1e8"]
"""A top tier smaller than the region: the setups differ in what they promote."""


@pytest.fixture(scope="module")
def compared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cmp") / "out"
    result = run_cli("compare", "--quiet", "--out", str(out), *SMALL, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "pghot-hwhints" in result.stdout and "comparison written to" in result.stdout
    return out


def strip(report: dict[str, Any]) -> dict[str, Any]:
    report.pop("engine")  # wall time differs run to run
    return report


def test_every_setup_has_its_whole_report_and_the_table_is_made_of_them(compared: Path
                                                                        ) -> None:
    from runtime.report import REPORT_FILES

    names = {p.name for p in compared.iterdir()}
    assert names == {*compare.COMPARE_FILES, MARKER, *compare.parse_setups(None)}
    rows = json.loads((compared / "comparison.json").read_text())["rows"]
    assert [r["setup"] for r in rows] == list(compare.parse_setups(None))
    for row in rows:
        folder = compared / row["setup"]
        assert sorted(p.name for p in folder.iterdir()) == sorted(REPORT_FILES)
        report = json.loads((folder / "report.json").read_text())
        assert report["scenario"]["setup"] == row["setup"]
        assert json.loads(json.dumps(compare.row_of(row["setup"], report))) == row
    with (compared / "comparison.csv").open() as f:
        table = list(csv.DictReader(f))
    assert [r["setup"] for r in table] == [r["setup"] for r in rows]
    assert list(table[0]) == list(compare.COLUMNS)


def test_the_setups_differ_as_their_sources_do(compared: Path) -> None:
    """numab0 moves nothing; only IBS setups take NMIs, only scanning setups hint faults;
    mainline NUMAB2 promotes in the fault, the pghot setups through kmigrated."""
    rows = {r["setup"]: r for r in json.loads((compared / "comparison.json").read_text())[
        "rows"]}
    assert rows["numab0"]["promoted"] == 0 and rows["numab0"]["cpu_percent"] == 0
    for name, row in rows.items():
        ibs, scans = name in ("pghot-hwhints", "pghot-both"), name not in ("numab0",
                                                                            "pghot-hwhints")
        assert (row["nmis_per_s"] > 0) == ibs, name
        assert (row["hint_faults_per_s"] > 0) == scans, name
        assert (row["cpu_nmis"] > 0) == ibs and (row["cpu_pte_updates"] > 0) == scans, name
    both = json.loads((compared / "pghot-both" / "report.json").read_text())["sampling"]
    assert both["pghot_calls_ibs"] > 0 and both["pghot_calls_hint_faults"] > 0
    assert rows["numab2"]["promoted"] > 0 and rows["pghot-hwhints"]["promoted"] > 0


def test_a_setup_of_compare_is_the_run_of_that_setup(compared: Path, tmp_path: Path) -> None:
    result = run_cli("run", "--quiet", "--out", str(tmp_path / "run"), *SMALL,
                     "--set", "setup=pghot-both", timeout=300)
    assert result.returncode == 0, result.stderr
    ran = strip(json.loads((tmp_path / "run" / "report.json").read_text()))
    assert strip(json.loads((compared / "pghot-both" / "report.json").read_text())) == ran


def test_setups_and_folders_are_checked_before_anything_runs(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="'numab1' is not a setup"):
        compare.parse_setups("numab2,numab1")
    with pytest.raises(InputError, match="names a setup twice"):
        compare.parse_setups("numab2,numab2")
    assert compare.parse_setups(" numab2, pghot-both") == ["numab2", "pghot-both"]
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    result = run_cli("compare", "--out", str(mine), "--setups", "numab0")
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]
    result = run_cli("compare", "--out", str(tmp_path / "x"), "--setups", "nope")
    assert result.returncode == 2 and "--setups: 'nope' is not a setup" in result.stderr
    assert not (tmp_path / "x").exists()


def test_json_and_a_rerun_replaces_our_own_folder(tmp_path: Path) -> None:
    out = tmp_path / "c"
    args = ("compare", "--json", "--out", str(out), "--setups", "numab0,pghot-hwhints",
            "--set", "duration_s=0.5", "--set", "workload.region_mib=64")
    first = run_cli(*args)
    assert first.returncode == 0, first.stderr
    data = json.loads(first.stdout)
    assert data["setups"] == ["numab0", "pghot-hwhints"]
    again = run_cli(*args)
    assert again.returncode == 0 and json.loads(again.stdout) == data
    assert (out / "comparison.txt").read_text().startswith("ibs-mprof compare: gups-hot")
