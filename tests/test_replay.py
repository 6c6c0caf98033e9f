"""`ibs-mprof replay`: the conformance interface (CSV in, vmstat/records/msr_writes out)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from generated.ibs_mprof import IbsMprofCtl, IbsMprofCtl2
from tests.conftest import regenerate, run_cli

HEADER = "cpu,time,ctl,data2,data3,linaddr,phyaddr\n"
EXT = "0x40"  # DataSrc 8 (EXT_MEM) lives in DATA2 bits 7:6
DATA3_OK = hex(1 << 17 | 1 << 18 | 1)


def write_csv(tmp_path: Path, rows: list[str]) -> Path:
    path = tmp_path / "samples.csv"
    path.write_text(HEADER + "".join(r + "\n" for r in rows))
    return path


def test_replay_json_records_and_msr_writes(tmp_path: Path) -> None:
    rows = [f"4,100,0xF0271,{EXT},{DATA3_OK},0x7f00001000,0x100001018",
            "4,101,0xB0271,0x3,0x60001,0,0x5000",  # VAL clear: not ours, no writes
            f"0,102,0xF0271,0x3,{DATA3_OK},0x7f00002000,0x2000"]
    result = run_cli("replay", str(write_csv(tmp_path, rows)), "--json")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["vmstat"] == {"hwhint_total_events": 2, "hwhint_dram_accesses": 1,
                             "hwhint_extmem_accesses": 1, "hwhint_useful_events": 2}
    assert out["records"] == [[4, 0x100001, 1, 100], [0, 0x2, 0, 102]]
    off = 0xF0271 & ~(IbsMprofCtl(enable=True, val=True).encode())
    per_nmi = [off, IbsMprofCtl2(disable=True).encode(), 0xB0271, 4]
    assert out["msr_writes"] == [[cpu, addr, v] for cpu in (4, 0) for addr, v in zip(
        [IbsMprofCtl.ADDRESS, IbsMprofCtl2.ADDRESS] * 2, per_nmi, strict=True)]


def test_drain_every_defers_the_work(tmp_path: Path) -> None:
    rows = [f"1,{t},0xF0271,{EXT},{DATA3_OK},0x1000,{hex(0x100000 + t << 12)}" for t in range(5)]
    out = json.loads(run_cli("replay", str(write_csv(tmp_path, rows)), "--drain-every", "3",
                             "--json").stdout)
    assert [r[3] for r in out["records"]] == [0, 1, 2, 3, 4]
    # With a 3-row drain the work runs after row 2 (rows 0..2) and the rest at the end.
    assert out["vmstat"]["hwhint_useful_events"] == 5


def test_fixed_variant_counts_drops(tmp_path: Path) -> None:
    rows = [f"1,{t},0xF0271,{EXT},{DATA3_OK},0x1000,{hex(0x100000 + t << 12)}"
            for t in range(160)]
    out = json.loads(run_cli("replay", str(write_csv(tmp_path, rows)), "--drain-every", "1000",
                             "--variant", "fixed", "--json").stdout)
    assert out["vmstat"]["hwhint_useful_events"] == 149
    assert out["vmstat"]["hwhint_dropped_events"] == 11
    assert len(out["records"]) == 149


@pytest.mark.parametrize("body,needle", [
    ("cpu,time\n", ":1: header must be cpu,time,ctl,data2,data3,linaddr,phyaddr; got "
     "'cpu,time'"),
    ("", ":1: header must be cpu,time,ctl,data2,data3,linaddr,phyaddr; the file is empty"),
    ("root:x:0:0:root:/root:/bin/bash\n", ":1: header must be cpu,time,ctl,data2,data3,"
     "linaddr,phyaddr; the first line is not a CSV header (1 field(s))"),
    (HEADER + "0,1,2,3\n", ":2: expected 7 fields"),
    (HEADER + "0,1,0xZZ,0,0,0,0\n", ":2: ctl: expected a decimal or 0x-hex integer"),
    (HEADER + "99,1,0,0,0,0,0\n", ":2: cpu 99 does not exist"),
    (HEADER + f"0,1,{1 << 64},0,0,0,0\n", ":2: ctl = "),
])
def test_malformed_rows_are_one_line_exit_2(tmp_path: Path, body: str, needle: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(body)
    result = run_cli("replay", str(path), "--json")
    assert result.returncode == 2 and result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1 and needle in result.stderr
    assert "/bin/bash" not in result.stderr  # another file's line is never printed


def test_driver_follows_a_moved_field_after_regeneration(spec_copy: Path, tmp_path: Path) -> None:
    """Move DATA3 LinAddrValid from bit 17 to bit 30 in spec/: the driver reads the new bit."""
    path = spec_copy / "ibs_mprof.yaml"
    text = path.read_text().replace('- name: lin_addr_valid\n        bits: "17"',
                                    '- name: lin_addr_valid\n        bits: "30"')
    text = text.replace('reserved_bits: ["6:2", "16:8", "19", "63:22"]',
                        'reserved_bits: ["6:2", "17:8", "19", "29:22", "63:31"]')
    path.write_text(text)
    root = regenerate(spec_copy, tmp_path / "pkg")
    old_bits = write_csv(tmp_path, [f"4,1,0xF0271,{EXT},{DATA3_OK},0x1000,0x100001000"])
    result = run_cli("replay", str(old_bits), "--json", cwd=root, pythonpath=root)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["records"] == []  # bit 17 means nothing any more
    new_bits = hex(1 << 30 | 1 << 18 | 1)
    row = f"4,1,0xF0271,{EXT},{new_bits},0x1,0x100001000\n"
    (tmp_path / "samples.csv").write_text(HEADER + row)
    result = run_cli("replay", str(tmp_path / "samples.csv"), "--json", cwd=root, pythonpath=root)
    assert json.loads(result.stdout)["records"] == [[4, 0x100001, 1, 1]]


def test_a_replay_that_outgrows_memory_is_refused_at_the_row(tmp_path: Path) -> None:
    """Each of these rows keeps a record and four MSR writes: with room for 12 entries the
    third row is refused (naming its line), with room for all of them nothing is."""
    from runtime.errors import InputError
    from runtime.progress import Quiet
    from runtime.replay import replay

    path = write_csv(tmp_path, [f"0,{100 + i},0xF0271,{EXT},{DATA3_OK},0x7f00001000,"
                                "0x100001018" for i in range(5)])
    with pytest.raises(InputError, match=r"samples\.csv:5: more than 12 records and MSR writes "
                       "so far, more than the memory available holds; replay the CSV in "
                       "shorter pieces"):
        replay(path, progress=Quiet(), max_entries=12)
    assert len(replay(path, progress=Quiet(), max_entries=25).records) == 5


def test_replay_reports_how_much_of_the_file_it_read(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from runtime.replay import replay

    monkeypatch.setattr("runtime.replay.PROGRESS_LINES", 2)
    path = write_csv(tmp_path, ["0,1,0xB0271,0,0,0,0"] * 9)

    class Seen:
        def __init__(self) -> None:
            self.fractions: list[float] = []
            self.finished = False

        def note(self, text: str) -> None:
            raise AssertionError(text)

        def stage(self, name: str, fraction: float) -> None:
            assert name == "replaying"
            self.fractions.append(fraction)

        def done(self) -> None:
            self.finished = True

    seen = Seen()
    replay(path, progress=seen)
    assert len(seen.fractions) == 5 and seen.fractions == sorted(seen.fractions)
    assert 0 < seen.fractions[0] < seen.fractions[-1] <= 1 and seen.finished
