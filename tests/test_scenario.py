"""Scenario files: defaults, overrides, and one clear error for every kind of bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.errors import InputError
from runtime.scenario import default_scenario_yaml, load_scenario
from tests.conftest import ROOT


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(text)
    return path


def test_default_and_overrides() -> None:
    s = load_scenario(None, [])
    assert s["workload"]["kind"] == "gups-hot" and s["workload"]["placement"] == "cxl"
    s = load_scenario(None, ["pghot.freq_threshold=1", "workload.kind=zipf",
                             "workload.theta=0.5", "machine.ops_per_cpu_per_s=1e8"])
    assert s["pghot"]["freq_threshold"] == 1 and s["workload"]["theta"] == 0.5
    assert s["machine"]["ops_per_cpu_per_s"] == 1e8


def test_default_scenario_yaml_loads_back_to_the_same_tree(tmp_path: Path) -> None:
    assert load_scenario(write(tmp_path, default_scenario_yaml()), []) == load_scenario(None, [])


@pytest.mark.parametrize("text,needle", [
    ("machine:\n  cpus: 4\n", "s.yaml:2: unknown key machine.cpus"),
    ("machine:\n  dram_mib: lots\n", "s.yaml:2: machine.dram_mib must be int"),
    ("pghot:\n  freq_threshold: 0\n", "s.yaml:2: pghot.freq_threshold = 0 is outside 1..7"),
    ("workload:\n  kind: gups-hot\n  theta: 0.9\n", "s.yaml:3: workload.theta is not used by"),
    ("workload:\n  region_mib: 9000\n", "does not fit: placement cxl has 4096 MiB"),
    ("machine:\n  cpus_per_dram_node: 0\n", "machine.cpus_per_dram_node = 0 is outside"),
    ("workload:\n  kind: phased\n", "workload kind phased needs workload.phases"),
    ("workload:\n  kind: phased\n  phases:\n    - {kind: zipf, theta: 9, duration_s: 1}\n",
     "s.yaml:4: workload.phases[0].theta = 9.0 is outside"),
    ("workload:\n  kind: lackey\n", "needs workload.trace"),
    ("workload:\n  kind: phased\n  phases:\n    - {kind: gups-shift, duration_s: 0.1, "
     "shift_at_s: 0.3}\n    - {kind: uniform, duration_s: 1}\n",
     "s.yaml:4: workload.phases[0].shift_at_s = 0.3 must fall inside the phase"),
    ("workload:\n  kind: phased\n  phases:\n    - {kind: gups-shift, duration_s: 1}\n",
     "workload.phases[0].shift_at_s = 4.0 must fall inside the phase"),
    ("workload:\n  kind: phased\n  phases:\n    - {kind: zipf, duration_s: 1, "
     "mem_op_fraction: 0.5}\n", "unknown key workload.phases[0].mem_op_fraction"),
    ("workload:\n  kind: microbench\n  mem_op_fraction: 0.5\n",
     "s.yaml:3: workload.mem_op_fraction is not used by kind microbench"),
    ("workload:\n  kind: lackey\n  trace: t.out\n  kernel_fraction: 0.5\n",
     "s.yaml:4: workload.kernel_fraction is not used by kind lackey"),
    ("- just\n- a list\n", "must be a mapping"),
    ("a: [\n", "s.yaml:2: not valid YAML"),
    ("x: &a 1\ny: *a\n", "anchors and aliases are not allowed"),
])
def test_bad_scenarios_name_file_line_and_key(tmp_path: Path, text: str, needle: str) -> None:
    with pytest.raises(InputError) as info:
        load_scenario(write(tmp_path, text), [])
    assert needle in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("override,needle", [
    ("nope.x=1", "--set nope.x: unknown key nope"),
    ("pghot=1", "--set pghot: is a section"),
    ("seed", "expected section.key=value"),
])
def test_bad_overrides(override: str, needle: str) -> None:
    with pytest.raises(InputError, match=needle.replace(".", r"\.").replace("-", r"\-")):
        load_scenario(None, [override])


def test_every_example_scenario_is_valid() -> None:
    examples = sorted((ROOT / "examples").glob("*.yaml"))
    assert len(examples) >= 4
    for path in examples:
        load_scenario(path, [])
