"""`ibs-mprof bench` runs and reports both engines as a ratio (no timing is asserted)."""

from __future__ import annotations

import json

from tests.conftest import run_cli


def test_bench_quick_json_has_both_engines_and_a_ratio() -> None:
    result = run_cli("bench", "--quick", "--json", timeout=300)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    case = out["cases"][0]
    assert case["fast"]["samples"] > 0 and case["reference"]["samples"] > 0
    assert case["fast_over_reference"] == case["fast"]["samples_per_s"] / \
        case["reference"]["samples_per_s"]
    assert out["tib"]["record_bytes"] == out["tib"]["lower_tier_pages"]
