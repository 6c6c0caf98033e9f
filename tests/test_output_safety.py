"""Nothing that is not ours is ever deleted or overwritten (`run --out`, `gen --out`).

Each refused layout holds a sentinel file that must survive, the refusal is one line with
exit status 2, and it comes before any simulation work.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from codegen import generate
from runtime import report
from safeio.errors import InputError
from safeio.owned import (
    MARKER,
    TEMP,
    Manifest,
    check_output_path,
    clean_stale,
    read_manifest,
    remove_owned,
    write_manifest,
)
from tests.conftest import ROOT
from tests.test_atomic_kill import dead_pid
from tests.test_report import synthetic_result

QUICK = ["--quiet", "--set", "duration_s=0.02"]
SLOW = ["--quiet", "--set", "duration_s=3000"]
"""A run that would take minutes: a refusal that came after simulating would time out."""


def cli(*args: str, cwd: Path, env: dict[str, str] | None = None,
        timeout: float = 60) -> subprocess.CompletedProcess[str]:
    full_env = dict(os.environ, PYTHONPATH=str(ROOT), **(env or {}))
    return subprocess.run([sys.executable, "-m", "runtime.cli", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def snapshot(folder: Path) -> dict[str, bytes | str]:
    """Every entry under folder (links as their target text), to prove nothing changed."""
    out: dict[str, bytes | str] = {}
    for root, dirs, names in os.walk(folder):
        for name in dirs + names:
            path = Path(root) / name
            rel = str(path.relative_to(folder))
            if path.is_symlink():
                out[rel] = "-> " + os.readlink(path)
            elif path.is_dir():
                out[rel] = "dir"
            else:
                out[rel] = path.read_bytes()
    return out


def assert_refused(result: subprocess.CompletedProcess[str], *words: str) -> None:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and lines[0].startswith("ibs-mprof: error: --out "), lines
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])


@pytest.fixture()
def workspace(tmp_path: Path) -> Path:
    """A user's working folder with files of theirs everywhere."""
    work = tmp_path / "work"
    (work / "mine").mkdir(parents=True)
    (work / "mine" / "notes.txt").write_text("the user's notes")
    (work / "notes.txt").write_text("top-level notes")
    (work / "scenarios").mkdir()
    (work / "scenarios" / "s.yaml").write_text("duration_s: 0.02\n")
    (work / "a-file").write_text("a file")
    (work / "link-to-mine").symlink_to(work / "mine")
    (work / "dangling").symlink_to(work / "nowhere")
    (work / ".mine.old-1-deadbeef").mkdir()  # hidden siblings named like our backups
    (work / ".mine.old-1-deadbeef" / "keep").write_text("keep")
    (work / ".out.tmp-1-deadbeef").mkdir()
    (work / ".out.tmp-1-deadbeef" / "keep").write_text("keep")
    return work


@pytest.mark.parametrize(("out", "words"), [
    (".", ["working folder"]),
    ("", ["empty path"]),
    ("..", ["working folder"]),
    ("mine", ["did not write"]),
    ("scenarios", ["holds the input"]),
    ("link-to-mine", ["symlink", "did not write"]),
    ("dangling", ["dangling symlink"]),
    ("a-file", ["not a folder"]),
    ("a-file/sub", ["is not a folder"]),
    ("x" * 300, ["bytes"]),
    ("/", ["root"]),
])
def test_run_refuses_what_is_not_ours_before_simulating(workspace: Path, out: str,
                                                        words: list[str]) -> None:
    before = snapshot(workspace.parent)
    result = cli("run", "scenarios/s.yaml", *SLOW, "--out", out, cwd=workspace)
    assert_refused(result, *words)
    assert snapshot(workspace.parent) == before


def test_run_refuses_the_home_folder(workspace: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / ".bashrc").write_text("keep")
    before = snapshot(home)
    env = {"HOME": str(home), "MPLCONFIGDIR": str(workspace / "mpl")}  # matplotlib's cache
    result = cli("run", *SLOW, "--out", str(home), cwd=workspace, env=env)
    assert_refused(result, "home folder")
    assert snapshot(home) == before


def test_run_replaces_its_own_report_only(workspace: Path) -> None:
    first = cli("run", *QUICK, "--out", "out", cwd=workspace)
    assert first.returncode == 0, first.stderr
    assert read_manifest(workspace / "out") is not None
    again = cli("run", *QUICK, "--seed", "5", "--out", "out", cwd=workspace)
    assert again.returncode == 0, again.stderr
    assert json.loads((workspace / "out" / "report.json").read_text())["scenario"]["seed"] == 5
    assert (workspace / ".out.tmp-1-deadbeef" / "keep").read_text() == "keep"  # not ours
    (workspace / "out" / "my-plot.png").write_bytes(b"the user's")
    before = snapshot(workspace)
    assert_refused(cli("run", *SLOW, "--out", "out", cwd=workspace), "my-plot.png")
    assert snapshot(workspace) == before
    (workspace / "out" / "my-plot.png").unlink()
    (workspace / "out" / "summary.txt").write_text("edited by the user")
    assert_refused(cli("run", *SLOW, "--out", "out", cwd=workspace), "changed since")
    assert (workspace / "out" / "summary.txt").read_text() == "edited by the user"


def test_run_through_a_symlink_to_its_report_keeps_the_link(workspace: Path) -> None:
    assert cli("run", *QUICK, "--out", "real", cwd=workspace).returncode == 0
    (workspace / "latest").symlink_to("real")
    result = cli("run", *QUICK, "--seed", "7", "--out", "latest", cwd=workspace)
    assert result.returncode == 0, result.stderr
    assert (workspace / "latest").is_symlink() and os.readlink(workspace / "latest") == "real"
    assert json.loads((workspace / "real" / "report.json").read_text())["scenario"]["seed"] == 7


def test_an_empty_folder_may_be_the_output(workspace: Path) -> None:
    (workspace / "empty").mkdir()
    assert cli("run", *QUICK, "--out", "empty", cwd=workspace).returncode == 0
    assert (workspace / "empty" / "report.json").is_file()


def test_read_only_parent_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """(Checked in-process: root, who runs CI, may write anywhere.)"""
    parent = tmp_path / "ro"
    parent.mkdir()
    monkeypatch.setattr(os, "access", lambda path, mode: Path(path) != parent)
    with pytest.raises(InputError, match="is not writable"):
        check_output_path("--out", str(parent / "out"), "report")


def test_marker_that_lists_paths_outside_the_folder_is_no_proof(tmp_path: Path) -> None:
    folder = tmp_path / "f"
    folder.mkdir()
    (tmp_path / "outside").write_text("keep")
    for rel in ("../outside", "/etc/passwd", "a/../../outside", ""):
        (folder / MARKER).write_text(json.dumps({"schema": "ibs-mprof owned-folder 1",
                                                 "kind": "report", "files": {rel: "0" * 64}}))
        assert read_manifest(folder) is None, rel
    assert (tmp_path / "outside").read_text() == "keep"


def test_remove_owned_removes_only_listed_unchanged_files(tmp_path: Path) -> None:
    folder = tmp_path / "out"
    report.write_report(synthetic_result(), folder)
    (folder / "user.txt").write_text("keep")
    (folder / "summary.txt").write_text("changed")
    assert not remove_owned(folder)
    assert sorted(p.name for p in folder.iterdir()) == sorted([MARKER, "summary.txt",
                                                               "user.txt"])
    forged = tmp_path / f".out.tmp-{dead_pid()}-00000000"  # a marker naming another pid
    forged.mkdir()
    write_manifest(forged, Manifest(TEMP, pid=os.getpid()))
    (forged / "user.txt").write_text("keep")
    clean_stale(tmp_path / "out", "report")
    assert (forged / "user.txt").read_text() == "keep"
    temp = tmp_path / "t"
    temp.mkdir()
    write_manifest(temp, Manifest(TEMP, pid=os.getpid()))
    (temp / "partial.json").write_text("{")
    assert remove_owned(temp) and not temp.exists()


# --- gen -------------------------------------------------------------------------------------


def test_gen_refuses_a_folder_it_did_not_write(tmp_path: Path) -> None:
    user = tmp_path / "pkg"
    user.mkdir()
    (user / "registry.py").write_text("# mine")
    (user / "__init__.py").write_text("# mine")
    (user / "notes.txt").write_text("ibs-mprof codegen 1 wrote nothing here")
    before = snapshot(tmp_path)
    result = cli("gen", "--out", str(user), cwd=tmp_path)
    assert_refused(result, "did not write")
    assert snapshot(tmp_path) == before
    (tmp_path / "f").write_text("a file")
    assert_refused(cli("gen", "--out", str(tmp_path / "f"), cwd=tmp_path), "not a folder")
    assert_refused(cli("gen", "--out", str(tmp_path / "f" / "sub"), cwd=tmp_path),
                   "is not a folder")


def test_gen_keeps_the_users_files_in_its_own_folder(spec_copy: Path, tmp_path: Path) -> None:
    out = tmp_path / "gen"
    generate(spec_copy, out)
    (out / "notes.txt").write_text("the user's")
    generate(spec_copy, out)
    assert (out / "notes.txt").read_text() == "the user's"
    manifest = read_manifest(out)
    assert manifest is not None and "notes.txt" not in manifest.files
    # A file gen would write that its marker does not list is the user's: refused.
    (out / "registry.py").unlink()
    listed = dict(manifest.files)
    del listed["registry.py"]
    write_manifest(out, Manifest("generated", listed))
    (out / "registry.py").write_text("# the user's own registry")
    with pytest.raises(InputError, match="registry.py exists and ibs-mprof did not write it"):
        generate(spec_copy, out)
    assert (out / "registry.py").read_text() == "# the user's own registry"


def test_concurrent_gens_take_turns(spec_copy: Path, tmp_path: Path) -> None:
    """Two gens of two different specs into one folder at once: both succeed, and the folder
    is wholly one spec's output, never a mix (they used to delete each other's temp files)."""
    out = tmp_path / "gen"
    generate(spec_copy, out)
    specs = [spec_copy, tmp_path / "spec_b"]
    shutil.copytree(spec_copy, specs[1])
    for round_ in range(8):
        for index, spec in enumerate(specs):  # every generated file names every spec hash
            path = spec / "ibsctl.yaml"
            path.write_text(path.read_text() + f"\n# round {round_} spec {index}\n")
        procs = [subprocess.Popen([sys.executable, "-m", "runtime.cli", "gen", "--spec",
                                   str(spec), "--out", str(out)], cwd=ROOT,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for spec in specs]
        for proc in procs:
            _, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err
        checks = [cli("gen", "--check", "--spec", str(spec), "--out", str(out), cwd=ROOT)
                  for spec in specs]
        assert sorted(c.returncode for c in checks) == [0, 1], [c.stdout for c in checks]
        assert [p.name for p in out.iterdir() if p.name.startswith(".gen-")] == []
