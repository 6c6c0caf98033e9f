"""Static checks are part of the suite: mypy --strict and ruff on every package."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import FIXTURES, ROOT, regenerate


def run(*cmd: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=600)


def test_mypy_strict_on_every_package() -> None:
    result = run(sys.executable, "-m", "mypy", "--strict", "codegen", "generated", "runtime",
                 "safeio")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_on_freshly_generated_fixture_spec(tmp_path: Path) -> None:
    root = regenerate(FIXTURES / "spec_small", tmp_path)
    result = run(sys.executable, "-m", "mypy", "--strict", "--no-incremental", "-p", "generated",
                 cwd=root)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_clean() -> None:
    result = run(sys.executable, "-m", "ruff", "check", "codegen", "generated", "runtime", "safeio",
                 "tests")
    assert result.returncode == 0, result.stdout + result.stderr
