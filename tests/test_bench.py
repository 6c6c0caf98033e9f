"""`ibs-mprof bench` runs and reports both engines as a ratio (no timing is asserted)."""

from __future__ import annotations

import json

from tests.conftest import run_cli


def test_bench_quick_json_has_both_engines_and_a_ratio() -> None:
    result = run_cli("bench", "--quick", "--json", "--repeat", "2", timeout=300)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    case = out["cases"][0]
    assert case["fast"]["samples"] > 0 and case["reference"]["samples"] > 0
    assert case["fast_over_reference"] == case["fast"]["samples_per_s"] / \
        case["reference"]["samples_per_s"]
    assert out["tib"]["record_bytes"] == out["tib"]["lower_tier_pages"]
    assert case["fast"]["runs"] == 2 and case["fast"]["wall_s"] <= case["fast"]["slowest_wall_s"]


def test_bench_refuses_a_repeat_of_zero() -> None:
    result = run_cli("bench", "--repeat", "0", timeout=60)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "--repeat" in result.stderr
