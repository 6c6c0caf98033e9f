"""`ibs-mprof gen --check` on the real spec, stale/hand-edit detection, and atomic writes."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

import codegen.writer
from codegen import check_generated, generate
from tests.conftest import ROOT, run_cli


def test_committed_generated_matches_spec() -> None:
    result = run_cli("gen", "--check")
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_generated_file_names_each_spec_file_and_hash() -> None:
    import hashlib

    for spec in sorted((ROOT / "spec").glob("*.yaml")):
        digest = hashlib.sha256(spec.read_bytes()).hexdigest()
        for name in ("ibs_mprof.py", "ibs_mprof_regs.h", "REGISTERS.md"):
            assert f"spec/{spec.name} sha256 {digest}" in (ROOT / "generated" / name).read_text()


def test_check_reports_hand_edits_and_stale_files(spec_copy: Path, tmp_path: Path) -> None:
    out = tmp_path / "gen"
    generate(spec_copy, out)
    assert check_generated(spec_copy, out) == []
    (out / "ibsctl.py").write_text((out / "ibsctl.py").read_text() + "# tweak\n")
    text = (spec_copy / "pghot.yaml").read_text().replace("Accesses in the current window",
                                                          "Accesses in this window")
    (spec_copy / "pghot.yaml").write_text(text)
    problems = check_generated(spec_copy, out)
    assert any(p.startswith("stale:") and "pghot.py" in p for p in problems)
    # A spec edit makes every file stale (all headers carry all hashes); restore and re-check.
    generate(spec_copy, out)
    (out / "ibsctl.py").write_text((out / "ibsctl.py").read_text() + "# tweak\n")
    problems = check_generated(spec_copy, out)
    assert problems == [f"hand-edited: {out / 'ibsctl.py'} (differs from what spec/ renders)"]
    result = run_cli("gen", "--check", "--spec", str(spec_copy), "--out", str(out))
    assert result.returncode == 1
    assert "hand-edited" in result.stdout
    (out / "stray.py").write_text((out / "pghot.py").read_text())  # the user's: not ours
    (spec_copy / "ibs_fetch.yaml").unlink()  # what only it rendered is left over
    problems = check_generated(spec_copy, out)
    assert f"left over: {out / 'ibs_fetch.py'} (no spec renders it any more)" in problems
    assert not any("stray.py" in p for p in problems)
    generate(spec_copy, out)  # removes what it wrote and no spec renders; keeps the user's
    assert not (out / "ibs_fetch.py").exists() and (out / "stray.py").exists()
    assert check_generated(spec_copy, out) == []


def test_interrupted_generation_leaves_old_files_intact(spec_copy: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "gen"
    generate(spec_copy, out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    (spec_copy / "ibsctl.yaml").write_text(
        (spec_copy / "ibsctl.yaml").read_text().replace("LVT offsets", "LVT offset fields"))
    calls = 0
    real_replace = os.replace

    def dying_replace(src: str, dst: str) -> None:
        nonlocal calls
        calls += 1
        raise KeyboardInterrupt("killed during rename")

    monkeypatch.setattr(codegen.writer.os, "replace", dying_replace)
    with pytest.raises(KeyboardInterrupt):
        generate(spec_copy, out)
    monkeypatch.setattr(codegen.writer.os, "replace", real_replace)
    assert calls == 1
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before, "no temp file, no new file"


def test_gen_writes_only_what_changed(spec_copy: Path, tmp_path: Path) -> None:
    out = tmp_path / "gen"
    first = generate(spec_copy, out)
    assert "ibs_mprof.py" in first
    assert generate(spec_copy, out) == []
    shutil.rmtree(out)
