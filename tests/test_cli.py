"""The command line itself: --version, help for every option, one-line errors naming the
option and the rule."""

from __future__ import annotations

import argparse
import os
from importlib.metadata import version

import pytest

from runtime.cli import build_parser
from tests.conftest import run_cli


def test_version_names_the_installed_distribution() -> None:
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"ibs-mprof {version('ibs-mprof')}"


@pytest.mark.parametrize(("args", "expected"), [
    (["replay", "x.csv", "--drain-every", "abc"],
     "replay: argument --drain-every: expected a decimal or 0x-hex integer (ASCII digits), "
     "got 'abc'"),
    (["bench", "--repeat", "many"],
     "bench: argument --repeat: expected a decimal or 0x-hex integer (ASCII digits), "
     "got 'many'"),
    (["bench", "--repeat", "0"], "bench: argument --repeat: expected an integer 1..100, got 0"),
    (["probe", "--cpu", "-1"], "probe: argument --cpu: expected an integer >= 0, got -1"),
    (["run", "--seed", "9" * 5000],
     "run: argument --seed: a 5000-digit number is too large (at most 40 digits)"),
    (["run", "--seed", "\u0661\u0662"], "run: argument --seed: expected a decimal"),
    ([], "the following arguments are required: COMMAND"),
])
def test_option_errors_are_one_line_naming_option_and_rule(args: list[str],
                                                           expected: str) -> None:
    result = run_cli(*args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"ibs-mprof: error: {expected}"), lines
    assert lines[0].count("error:") == 1 and lines[0].count("ibs-mprof:") == 1
def test_every_option_of_every_command_has_help() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, command in sub.choices.items():
        assert command.description, name
        for action in command._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            assert action.help and action.help != argparse.SUPPRESS, (name, action.dest)


@pytest.mark.parametrize("given", [None, "3"])
def test_main_gives_blas_one_thread_unless_the_user_chose(
        given: str | None, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """OpenBLAS's idle threads spin on the other cores (runtime/cli.ONE_BLAS_THREAD); a value
    the user set is theirs."""
    from runtime.cli import main

    if given is None:
        monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    else:
        monkeypatch.setenv("OPENBLAS_NUM_THREADS", given)
    assert main(["decode", "IBSCTL", "0"]) == 0
    assert "IBSCTL" in capsys.readouterr().out.upper()
    assert os.environ["OPENBLAS_NUM_THREADS"] == (given or "1")
