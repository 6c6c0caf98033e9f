"""Every validation rule has a fixture whose diagnostics are pinned in a golden .expected file.

A fixture is tests/fixtures/invalid/<rule>.yaml (one spec file, copied into an empty spec folder)
or tests/fixtures/invalid/<rule>/ (a whole spec folder, for rules about file names and the folder
itself); <rule>.expected beside it holds the diagnostics.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from codegen import SpecError, load_spec
from tests.conftest import FIXTURES, ROOT, run_cli

INVALID = FIXTURES / "invalid"
FIXTURE_FILES = sorted([*INVALID.glob("*.yaml"), *(p for p in INVALID.iterdir() if p.is_dir())])
DOCUMENTED_RULES = {
    line.split("`")[1]
    for line in (ROOT / "spec" / "README.md").read_text().splitlines()
    if line.startswith("| `")
}


def diagnostics_for(path: Path, tmp_path: Path) -> str:
    spec_dir = path
    if not path.is_dir():
        spec_dir = tmp_path / "spec"
        spec_dir.mkdir()
        shutil.copy(path, spec_dir / path.name)
    with pytest.raises(SpecError) as info:
        load_spec(spec_dir)
    return str(info.value)


@pytest.mark.parametrize("fixture", FIXTURE_FILES, ids=lambda p: p.stem)
def test_rule_fixture_matches_golden_message(fixture: Path, tmp_path: Path) -> None:
    got = diagnostics_for(fixture, tmp_path)
    expected = fixture.with_suffix(".expected").read_text().strip()
    assert got == expected
    assert f": {fixture.stem}: " in got, "the fixture must trigger the rule it is named after"


def test_every_documented_rule_has_a_fixture() -> None:
    assert DOCUMENTED_RULES == {p.stem for p in FIXTURE_FILES}


def test_all_errors_are_collected_in_one_run(tmp_path: Path) -> None:
    spec_dir = tmp_path / "spec"
    spec_dir.mkdir()
    for name in ("field-overlap", "reset-too-wide", "unknown-key"):
        text = (INVALID / f"{name}.yaml").read_text().replace("block: bad", f"block: b_{name[:5]}")
        text = text.replace("name: R\n", f"name: R_{name[:5].upper().replace('-', '_')}\n")
        text = text.replace("0x10", hex(0x10 + len(name)))
        (spec_dir / f"{name}.yaml").write_text(text)
    with pytest.raises(SpecError) as info:
        load_spec(spec_dir)
    rules = {d.rule for d in info.value.diagnostics}
    assert {"field-overlap", "reset-too-wide", "unknown-key"} <= rules


def test_gen_with_bad_spec_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    spec_dir = tmp_path / "spec"
    spec_dir.mkdir()
    shutil.copy(INVALID / "field-overlap.yaml", spec_dir)
    out = tmp_path / "out"
    result = run_cli("gen", "--spec", str(spec_dir), "--out", str(out))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().endswith(
        (INVALID / "field-overlap.expected").read_text().strip().split(":", 1)[1])
    assert f"{spec_dir / 'field-overlap.yaml'}:15: field-overlap:" in result.stderr
    assert not out.exists()


def test_non_utf8_spec_is_a_yaml_syntax_error(tmp_path: Path) -> None:
    spec_dir = tmp_path / "spec"
    spec_dir.mkdir()
    (spec_dir / "binary.yaml").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(SpecError) as info:
        load_spec(spec_dir)
    assert info.value.diagnostics[0].rule == "yaml-syntax"
