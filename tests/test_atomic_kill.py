"""Writes are atomic: `ibs-mprof gen` and `ibs-mprof run` killed with SIGKILL at any point leave
the previous files whole (or the new ones whole), never a half-written or mixed file.

The kills are injected: with IBS_MPROF_TEST_KILL_AT=<label> the child SIGKILLs itself at the
named point of codegen/writer.py or runtime/atomic_dir.py (a no-op hook unless the variable is
set). Temp files a killed run leaves are hidden names beside the output (`.gen-*` in the
output folder, `.<out>.tmp-*` beside the report folder), never the output itself, and the
next successful run removes them.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import codegen
from runtime import report
from safeio import atomic_dir
from safeio.owned import MARKER, TEMP, Manifest, clean_stale, read_manifest, write_manifest
from tests.conftest import ROOT
from tests.test_report import synthetic_result

PNG_END = b"IEND\xaeB`\x82"


def run_killed(label: str, args: Sequence[str]) -> subprocess.CompletedProcess[str]:
    """`ibs-mprof ARGS` in a child that SIGKILLs itself at `label`; asserts it got there."""
    env = dict(os.environ, IBS_MPROF_TEST_KILL_AT=label)
    result = subprocess.run([sys.executable, "-m", "runtime.cli", *args], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == -signal.SIGKILL, (label, result.returncode, result.stderr)
    return result


def files(folder: Path, hidden: bool = False) -> dict[str, bytes]:
    """The visible files of folder, or (hidden) its hidden entries other than the ownership
    marker (a folder's bytes are empty)."""
    return {p.name: p.read_bytes() if p.is_file() else b"" for p in sorted(folder.iterdir())
            if p.name.startswith(".") == hidden and p.name != MARKER
            and (hidden or p.is_file())}


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)
    return int(child.stdout)


# --- gen -------------------------------------------------------------------------------------

GEN_POINTS = {  # label -> how many of the changed files are new afterwards: none, one, all
    "gen-temp-partial": "none", "gen-temps-written": "none", "gen-between-renames": "one",
    "gen-renamed": "all",
}


def test_gen_killed_anywhere_leaves_whole_files(spec_copy: Path, tmp_path: Path) -> None:
    base = tmp_path / "base"
    codegen.generate(spec_copy, base)
    old = files(base)
    path = spec_copy / "ibs_mprof.yaml"  # most files name each spec's SHA-256: they change
    path.write_text(path.read_text().replace("Memory profiler control 2", "Memory profiler ctl 2"))
    new = codegen.render_all(codegen.load_spec(spec_copy))
    changed = [name for name in sorted(new) if new[name] != old[name]]
    assert set(new) == set(old) and len(changed) >= 5
    outs = {label: tmp_path / label for label in GEN_POINTS}
    for out in outs.values():
        shutil.copytree(base, out)
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda label: run_killed(label, ["gen", "--spec", str(spec_copy), "--out",
                                                        str(outs[label])]), GEN_POINTS))
    for label, expect in GEN_POINTS.items():
        out = outs[label]
        now = files(out)
        assert set(now) == set(old), label
        fresh = [name for name in changed if now[name] == new[name]]
        assert all(now[n] in (old[n], new[n]) for n in now), label  # each file whole
        assert len(fresh) == {"none": 0, "one": 1, "all": len(changed)}[expect], (label, fresh)
        leftovers = files(out, hidden=True)
        assert all(name.startswith(".gen-tmp-") and (out / name).is_dir()
                   for name in leftovers), (label, leftovers)
        if label in ("gen-temp-partial", "gen-temps-written"):
            assert leftovers, label  # the crash did leave temp files: the next run must go
        codegen.generate(spec_copy, out)  # the next successful run
        assert files(out) == new and files(out, hidden=True) == {}, label
        assert codegen.check_generated(spec_copy, out) == [], label


def test_generated_files_get_normal_permissions(spec_copy: Path, tmp_path: Path) -> None:
    """Regression: temp files came from tempfile.mkstemp (mode 0600) and the rename kept the
    mode, so generated files were readable by their owner only."""
    out = tmp_path / "gen"
    umask = os.umask(0o022)
    try:
        codegen.generate(spec_copy, out)
        assert {p.stat().st_mode & 0o777 for p in out.iterdir()} == {0o644}
        (out / "ibs_mprof.py").chmod(0o640)  # a mode the user chose is kept on rewrite
        path = spec_copy / "ibs_mprof.yaml"
        path.write_text(path.read_text() + "\n# changed\n")
        assert "ibs_mprof.py" in codegen.generate(spec_copy, out)
    finally:
        os.umask(umask)
    assert (out / "ibs_mprof.py").stat().st_mode & 0o777 == 0o640


# --- run -------------------------------------------------------------------------------------

RUN_POINTS = ("run-temp-partial", "run-temp-written", "run-swapped")
"""run-between-renames is only reached where RENAME_EXCHANGE is missing (see below)."""


def is_complete_new_report(folder: Path, seed: int) -> bool:
    names = {p.name for p in folder.iterdir()} - {MARKER}
    if names != set(report.REPORT_FILES) or read_manifest(folder) is None:
        return False
    data = json.loads((folder / "report.json").read_text())
    summary = (folder / "summary.txt").read_text()
    return (data["scenario"]["seed"] == seed and f"seed {seed}" in summary
            and summary.endswith("\n") and "verdict:" in summary
            and all((folder / n).read_bytes().endswith(PNG_END) for n in names
                    if n.endswith(".png")))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RENAME_EXCHANGE is Linux's")
def test_run_killed_anywhere_leaves_old_or_new_report(tmp_path: Path) -> None:
    base = tmp_path / "base"
    report.write_report(synthetic_result(), base)
    old = files(base)
    outs = {label: tmp_path / label for label in RUN_POINTS}
    for out in outs.values():
        shutil.copytree(base, out)
    args = ["run", "--quiet", "--seed", "2", "--set", "duration_s=0.05"]
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda label: run_killed(label, [*args, "--out", str(outs[label])]),
                      RUN_POINTS))
    for label, out in outs.items():
        assert out.is_dir(), label  # never absent: the swap is one RENAME_EXCHANGE
        if label == "run-swapped":
            assert is_complete_new_report(out, 2), label
        else:
            assert files(out) == old and files(out, hidden=True) == {}, label
        leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(f".{label}.")]
        assert len(leftovers) == 1 and leftovers[0].startswith(f".{label}.tmp-"), leftovers
    for label, out in outs.items():  # the next successful run removes what the kill left
        report.write_report(synthetic_result(), out)
        assert files(out) == old, label
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["base", *RUN_POINTS])


def test_killed_fallback_swap_is_repaired_by_the_next_run(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Without RENAME_EXCHANGE the old folder is renamed aside before the new one goes in; a
    kill between the two leaves out_dir absent, the old report in `.out.old-<pid>-*` and the
    new one in `.out.tmp-<pid>-*`. The next run puts the old report back first (so a failure
    of that run still leaves it), removes both leftovers, then writes its own. Folders with
    the same names that no marker proves ours (a user's), and those of a live process, stay.
    """
    out = tmp_path / "out"
    report.write_report(synthetic_result(), out)
    old = files(out)
    pid = dead_pid()
    os.replace(out, tmp_path / f".out.old-{pid}-0a1b2c3d")
    stale_tmp = tmp_path / f".out.tmp-{pid}-4e5f6071"
    stale_tmp.mkdir()
    write_manifest(stale_tmp, Manifest(TEMP, pid=pid))
    (stale_tmp / "report.json").write_text("{}")
    users = tmp_path / f".out.tmp-{pid}-77777777"  # named like ours, no marker: the user's
    users.mkdir()
    (users / "notes.txt").write_text("mine")
    live = tmp_path / f".out.tmp-{os.getpid()}-8a9b0c1d"  # a run in progress: left alone
    live.mkdir()
    write_manifest(live, Manifest(TEMP, pid=os.getpid()))
    clean_stale(out, report.REPORT_KIND)
    assert files(out) == old
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["out", live.name, users.name])
    assert (users / "notes.txt").read_text() == "mine"
    monkeypatch.setattr(atomic_dir, "exchange", lambda new, old: False)
    changed = synthetic_result()
    changed["verdict"] = "EFFECTIVE: the new run"
    report.write_report(changed, out)
    assert "EFFECTIVE: the new run" in (out / "summary.txt").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["out", live.name, users.name])


def test_exchange_failure_leaves_the_old_report(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    report.write_report(synthetic_result(), out)
    old = files(out)

    def refuse(new: Path, target: Path) -> bool:
        raise OSError(13, "injected", str(target))

    monkeypatch.setattr(atomic_dir, "exchange", refuse)
    with pytest.raises(OSError, match="injected"):
        report.write_report(synthetic_result(), out)
    assert files(out) == old and [p.name for p in tmp_path.iterdir()] == ["out"]
