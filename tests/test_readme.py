"""The README's scenario table is the schema itself, and its commands exist."""

from __future__ import annotations

from runtime.cli import build_parser
from runtime.scenario import schema_markdown
from tests.conftest import ROOT

README = (ROOT / "README.md").read_text()


def test_scenario_table_matches_the_schema() -> None:
    assert schema_markdown() in README


def test_every_cli_command_is_documented() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name in sub.choices:  # type: ignore[union-attr]
        assert f"ibs-mprof {name}" in README, name
