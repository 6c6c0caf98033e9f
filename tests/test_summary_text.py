"""The terminal summary stays readable for runs of many phases: the first and last six are
listed, the rest are counted and left to report.json."""

from __future__ import annotations

import pytest

from runtime.report import SHOWN_PHASES, summary_text
from runtime.scenario import load_scenario
from runtime.simulate import simulate


def phased(count: int) -> str:
    kinds = ["uniform", "gups-hot", "zipf"]
    return "workload.phases=[" + ", ".join(
        f"{{kind: {kinds[i % 3]}, duration_s: 0.01}}" for i in range(count)) + "]"


@pytest.mark.parametrize("count", [SHOWN_PHASES, 300])
def test_many_phases_are_elided_in_the_summary(count: int) -> None:
    result = simulate(load_scenario(None, ["workload.kind=phased", "workload.region_mib=4",
                                           phased(count), f"duration_s={count * 0.01}"]))
    assert len(result["phases"]) == count
    text = summary_text(result)
    listed = [line for line in text.splitlines() if line.startswith("  phase ")]
    shown = min(count, SHOWN_PHASES)
    assert [line.split(":")[0].strip() for line in listed] == \
        [f"phase {i}" for i in list(range(shown // 2)) + list(range(count - shown // 2, count))] \
        if count > SHOWN_PHASES else [f"phase {i}" for i in range(count)]
    more = f"... {count - SHOWN_PHASES} more phases in report.json"
    assert text.count(more) == (2 if count > SHOWN_PHASES else 0)  # time to, and recovery
    assert len(text.splitlines()) < 80
    assert (f"-> ... ({count} phases) ... ->" in text) == (count > SHOWN_PHASES)
