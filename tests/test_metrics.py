"""Run-level accounting: a broken sample balance fails the run instead of being reported."""

from __future__ import annotations

import pytest

from runtime.metrics import summarise
from runtime.scenario import load_scenario
from runtime.simulate import build

COSTS = {"nmi_cost_us": 2.0, "record_cost_us": 0.5, "migrate_cost_us": 10.0}


@pytest.mark.parametrize("engine", ["reference", "fast"])
def test_conservation_holds_and_a_lost_sample_is_caught(engine: str) -> None:
    built = build(load_scenario(None, [f"engine={engine}", "duration_s=0.3",
                                       "machine.ops_per_cpu_per_s=1e8"]))
    built.engine.start()
    built.engine.run()
    built.collector(built.engine)
    result = summarise(built.engine, built.collector, COSTS, 300.0)
    sampling = result["sampling"]
    assert sampling["total"] == sum(sampling["driver"].values()) > 0
    built.engine.driver.outcomes["pushed"] += 1  # a sample the accounting cannot place
    with pytest.raises(AssertionError, match="pushed = pghot calls"):
        summarise(built.engine, built.collector, COSTS, 300.0)
