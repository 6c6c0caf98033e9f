"""Golden files pin the generator's output for a small fixture spec (UPDATE_GOLDEN=1 rewrites)."""

from __future__ import annotations

import os
from pathlib import Path

from codegen import load_spec, render_all
from tests.conftest import FIXTURES

GOLDEN = Path(__file__).resolve().parent / "golden" / "spec_small"


def test_small_spec_renders_exactly_the_golden_files() -> None:
    files = render_all(load_spec(FIXTURES / "spec_small"))
    if os.environ.get("UPDATE_GOLDEN") == "1":
        GOLDEN.mkdir(parents=True, exist_ok=True)
        for old in GOLDEN.iterdir():
            old.unlink()
        for rel, data in files.items():
            (GOLDEN / rel).write_bytes(data)
    assert sorted(files) == sorted(p.name for p in GOLDEN.iterdir())
    for rel, data in files.items():
        assert data == (GOLDEN / rel).read_bytes(), f"{rel} differs from tests/golden/spec_small"


def test_rendering_is_deterministic() -> None:
    spec = load_spec(FIXTURES / "spec_small")
    assert render_all(spec) == render_all(load_spec(FIXTURES / "spec_small"))
