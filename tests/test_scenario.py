"""Scenario files: defaults, overrides, and one clear error for every kind of bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.errors import InputError
from runtime.scenario import default_scenario_yaml, load_scenario
from tests.conftest import EXAMPLE_SCENARIOS


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
    ("machine:\n  dram_mib: lots\n",
     "s.yaml:2: machine.dram_mib must be an int in 128..16777216, got 'lots'"),
    ("duration_s: \u0661\u0662\n",  # Arabic-Indic digits are not a number
     "s.yaml:1: duration_s must be a float in 0.001..3600, got '\u0661\u0662'"),
    ("seed: " + "9" * 5000 + "\n", "s.yaml:1: seed: a 5000-digit number is too long to read (at "
     "most 4300 digits); seed must be an int in 0..9223372036854775807"),
    ("a" * 100_000 + ": 1\n", "s.yaml:1: a key of about 100000 characters: YAML reads a plain "
     "key of at most 1024"),
    ("profiler:\n  period: 1\n", "s.yaml:2: profiler.period = 1 is outside 16..134217712 (a "
     "multiple of 16)"),
    ("profiler:\n  period: 10001\n", "s.yaml:2: profiler.period = 10001 is not a multiple of "
     "16; profiler.period must be an int in 16..134217712 (a multiple of 16)"),
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
    ("nope.x=1", "--set nope.x: unknown key nope; expected one of seed, duration_s, engine,"),
    ("pghot=1", "--set pghot: is a section"),
    ("seed", "--set 'seed': expected section.key=value"),
    ("=5", "--set '=5': no key before '='; expected section.key=value"),
    ("seed.x=1", "--set seed.x: seed is a key, not a section"),
    ("a" * 100_000 + "=1", "--set " + "a" * 40 + "... (100000 characters): unknown key " +
     "a" * 40 + "... (100000 characters); expected one of seed,"),
    ("seed=" + "9" * 5000, "--set seed: cannot read value '" + "9" * 40 + "'... (5000 "
     "characters): a 5000-digit number is too long to read (at most 4300 digits); seed must be "
     "an int in 0..9223372036854775807"),
    ("seed=0x" + "f" * 5000, "--set: seed = a number of about 6021 digits is outside "
     "0..9223372036854775807"),
    ("profiler.period=1", "--set: profiler.period = 1 is outside 16..134217712 (a multiple of "
     "16)"),
    ("profiler.period=24", "--set: profiler.period = 24 is not a multiple of 16;"),
    ("pghot.promote_rate_limit_MBps=1099511627776",
     "--set: pghot.promote_rate_limit_MBps = 1099511627776 is outside 0..2147483647"),
    ("duration_s=\uff11\uff12", "--set: duration_s must be a float in 0.001..3600, got "
     "'\uff11\uff12'"),  # fullwidth digits
    ("duration_s=nan", "--set: duration_s must be a float in 0.001..3600, got 'nan'"),
])
def test_bad_overrides(override: str, needle: str) -> None:
    with pytest.raises(InputError) as info:
        load_scenario(None, [override])
    assert needle in str(info.value)
    assert len(str(info.value)) < 400


def test_the_period_range_is_what_the_hardware_holds() -> None:
    """Every period the scenario accepts encodes into IBS_MPROF_CTL and the ones next to the
    bounds do not: the schema's range comes from the generated accessor."""
    from generated.ibs_mprof import IbsMprofCtl
    from runtime.scenario import SCHEMA

    key = SCHEMA["profiler"]["period"]
    lo, hi, step = int(key.lo), int(key.hi), key.step
    for period in (lo, hi, lo + step, hi - step, 10000):
        assert IbsMprofCtl(period=period).period == period
        assert load_scenario(None, [f"profiler.period={period}"])["profiler"]["period"] == period
    for period in (hi + step, lo + 1, hi - 1):
        with pytest.raises(ValueError):
            IbsMprofCtl(period=period)
        with pytest.raises(InputError):
            load_scenario(None, [f"profiler.period={period}"])
    assert lo == step and IbsMprofCtl(period=0).period == 0  # the register holds 0 ...
    with pytest.raises(InputError, match="profiler.period = 0 is outside"):  # which never tags
        load_scenario(None, ["profiler.period=0"])


def test_the_rate_limit_range_is_the_models() -> None:
    """promote_rate_limit_MBps: the schema allows exactly what the pghot tunable takes."""
    from runtime.pghot.tunables import INT_MAX

    assert load_scenario(None, [f"pghot.promote_rate_limit_MBps={INT_MAX}"])["pghot"][
        "promote_rate_limit_MBps"] == INT_MAX
    with pytest.raises(InputError, match="is outside 0..2147483647"):
        load_scenario(None, [f"pghot.promote_rate_limit_MBps={INT_MAX + 1}"])


TUNABLE_KEYS = [("pghot", key, key) for key in ("enabled_sources", "target_nid", "freq_threshold",
                                               "promote_freq_window_ms",
                                               "promote_rate_limit_MBps")] + [
    ("kmigrated", "sleep_ms", "kmigrated_sleep_ms"), ("kmigrated", "batch_nr",
                                                      "kmigrated_batch_nr")]


@pytest.mark.parametrize("section,key,tunable", TUNABLE_KEYS, ids=lambda k: str(k))
@pytest.mark.parametrize("mode", ["default", "precise"])
def test_every_tunable_range_is_the_models_in_each_mode(section: str, key: str, tunable: str,
                                                        mode: str) -> None:
    """A scenario accepts exactly what the pghot model accepts in that mode, at both ends: the
    schema's bounds are tunable_range's (from the generated record layout), not copies."""
    from runtime.pghot.tunables import tunable_range
    from runtime.scenario import SCHEMA

    item = SCHEMA[section][key]
    assert (item.lo, item.hi) == tunable_range(tunable)
    lo, hi = tunable_range(tunable, mode) if tunable in ("freq_threshold",
                                                         "promote_freq_window_ms") \
        else tunable_range(tunable)
    setting = [f"pghot.mode={mode}", "machine.dram_nodes=1"]
    for value in (lo, hi):
        if key == "target_nid" and value > 0:
            continue  # a valid nid must also be an online top-tier node: checked at build
        assert load_scenario(None, [*setting, f"{section}.{key}={value}"])[section][key] == value
    for value in (lo - 1, hi + 1):
        with pytest.raises(InputError, match=f"{section}.{key}"):
            load_scenario(None, [*setting, f"{section}.{key}={value}"])


def test_every_example_scenario_is_valid() -> None:
    examples = EXAMPLE_SCENARIOS
    assert len(examples) >= 4
    for path in examples:
        load_scenario(path, [])
