"""Shared helpers: run the CLI in a subprocess, render specs into temporary packages."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "spec"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
EXAMPLE_SCENARIOS = sorted(p for p in (ROOT / "examples").glob("*.yaml")
                           if not p.name.startswith("sweep-"))
"""The example scenarios (examples/sweep-*.yaml are sweep grids, not scenarios)."""


def run_cli(*args: str, cwd: Path | None = None, pythonpath: Path | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run `ibs-mprof ARGS` as a user would; PYTHONPATH may point at a regenerated package."""
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    return subprocess.run([sys.executable, "-m", "runtime.cli", *args], cwd=cwd or ROOT,
                          env=env, capture_output=True, text=True, timeout=timeout)


def run_python(code: str, pythonpath: Path,
               timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run code with `pythonpath` first on sys.path, from a folder without its own generated/."""
    env = dict(os.environ, PYTHONPATH=str(pythonpath))
    return subprocess.run([sys.executable, "-c", code], cwd=pythonpath, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def spec_copy(tmp_path: Path) -> Path:
    """A private copy of the real spec/ that a test may edit."""
    dst = tmp_path / "spec"
    shutil.copytree(SPEC, dst)
    return dst


def regenerate(spec_dir: Path, root: Path) -> Path:
    """Render spec_dir into root/generated and return root (for PYTHONPATH)."""
    from codegen import generate

    generate(spec_dir, root / "generated")
    return root
