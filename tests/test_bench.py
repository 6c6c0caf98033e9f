"""`ibs-mprof bench` runs and reports both engines as a ratio (no timing is asserted)."""

from __future__ import annotations

import json

import pytest

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
    assert case["fast"]["wall_s"] <= case["fast"]["first_wall_s"] and case["fast"]["cpu_s"] > 0
    region = out["region"]
    assert region["region_gib"] == 1 and region["pages"] == 1 << 18
    assert 0 < region["bytes_per_page"] <= 64 and region["record_bytes"] >= region["pages"]
    assert "steady-state" in out["steady_state"] and "command_64cpu" not in out
    read, ingest = out["recording_read"], out["recording_ingest"]
    assert read["samples"] == 20_000_000 // 120 < read["file_bytes"] // 120
    assert ingest["samples"] == 20_000 and ingest["recording_s"] > 0


def test_bench_refuses_a_repeat_of_zero() -> None:
    result = run_cli("bench", "--repeat", "0", timeout=60)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "--repeat" in result.stderr


def test_bench_repeat_is_estimated_and_refused_over_the_limit() -> None:
    """bench --repeat N costs N times the runs plus the fixed 1 TiB child: refused (naming
    --repeat) before any run when the model says it is over the wall-time limit."""
    from runtime.bench import check_repeat, estimated_wall_s
    from runtime.cost import Limits
    from runtime.errors import InputError

    one, two, three = (estimated_wall_s(True, n) for n in (1, 2, 3))
    assert 0 < one < two and three - two == pytest.approx(two - one)
    assert check_repeat(True, 2, Limits(None, wall_s=two)) == two
    with pytest.raises(InputError, match=r"^bench --repeat 3: would take about .* of wall time, "
                       r"over the .* limit; lower --repeat"):
        check_repeat(True, 3, Limits(None, wall_s=two))

