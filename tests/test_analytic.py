"""The analytic check: detection on a stationary workload matches 1 - e^-lam (1 + lam).

A page with a L3-miss accesses in the window, each sampled with probability 1/N, gets
Poisson(lam = a/N) samples, so with freq_threshold 2 it is detected (READY) with probability
1 - e^-lam (1 + lam). Uniform accesses over a region much larger than the LLC make every page
alike; lam is taken from the samples the driver actually pushed.
"""

from __future__ import annotations

import math

import pytest

from runtime.groundtruth import detection_probability
from runtime.scenario import load_scenario
from runtime.simulate import build

PAGES = 16384  # 64 MiB


@pytest.mark.parametrize("run_ms", [120.0, 330.0])
def test_detection_rate_matches_poisson_formula(run_ms: float) -> None:
    scenario = load_scenario(None, [
        "workload.kind=uniform", "workload.region_mib=64", "workload.mem_op_fraction=1.0",
        "llc.size_mib=0.0625", "machine.cpus_per_dram_node=1", "machine.ops_per_cpu_per_s=1e8",
        "profiler.period=1008", "driver.work_latency_ms=0.1", f"duration_s={run_ms / 1000}",
        "kmigrated.sleep_ms=1000", "demotion.enabled=false", "seed=7"])
    built = build(scenario, keep_logs=True)
    engine = built.engine
    engine.start()
    engine.run(run_ms + 5.0)  # let the last samples drain (work latency 0.1 ms)
    log = engine.calls
    sample_ms = log.column("sample_ms")
    in_window = sample_ms < run_ms
    pages = log.column("page")
    ready = log.column("ready").astype(bool)
    lam = float(in_window.sum()) / PAGES
    detected = len(set(pages[ready & in_window].tolist())) / PAGES
    expected = float(detection_probability(lam))
    tolerance = 4 * math.sqrt(expected * (1 - expected) / PAGES) + 0.01
    assert abs(detected - expected) <= tolerance, (lam, detected, expected)
    print(f"lam={lam:.3f} detected={detected:.4f} expected={expected:.4f}")


def test_formula_itself() -> None:
    assert detection_probability(0.0) == 0.0
    assert abs(float(detection_probability(1.0)) - (1 - 2 / math.e)) < 1e-12
    assert float(detection_probability(1.0, threshold=1)) == pytest.approx(1 - 1 / math.e)
