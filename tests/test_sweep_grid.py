"""The grid file and its points: lists, ranges, explicit points and their product; every point
validated before anything runs, a bad one named by its grid line, axis and value; keys that
change with the scenario, the tool and a trace's bytes, and only with them."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runtime.errors import InputError
from runtime.sweep.grid import MAX_POINTS, read_grid
from runtime.sweep.points import build_points, point_key, tool_identity
from tests.conftest import ROOT
from tests.test_fuzz import YAML_SCALARS, accepted_or_input_error, fuzz, mutated
from tests.test_sweep import LACKEY_OK, fast_set, sweep_here, write_grid


def grid_of(tmp_path: Path, text: str) -> Path:
    return write_grid(tmp_path, text)


def values(tmp_path: Path, axis_text: str) -> list[object]:
    grid = read_grid(grid_of(tmp_path, f"axes:\n  {axis_text}\n"))
    return [s.value for s in grid.axes[0].settings]


def test_lists_and_ranges(tmp_path: Path) -> None:
    assert values(tmp_path, "seed: [3, 1, 2]") == [3, 1, 2]
    assert values(tmp_path, "seed: {from: 1, to: 4}") == [1, 2, 3, 4]
    assert values(tmp_path, "profiler.period: {from: 1024, to: 5000, step: 1024}") == \
        [1024, 2048, 3072, 4096]
    assert values(tmp_path, "profiler.period: {from: 1024, to: 8192, times: 2}") == \
        [1024, 2048, 4096, 8192]
    assert values(tmp_path, "workload.hot_access_fraction: {from: 0.1, to: 0.3, step: 0.1}") \
        == [0.1, 0.2, 0.3]  # not 0.30000000000000004, and 0.3 itself is in
    assert values(tmp_path, "duration_s: {from: 0.5, to: 0.5}") == [0.5]


def test_points_cross_the_axes_in_order_last_axis_fastest(tmp_path: Path) -> None:
    grid = read_grid(grid_of(tmp_path, fast_set() +
                             "points:\n  - {pghot.mode: default}\n  - pghot:\n      mode: precise\n"
                             "axes:\n  pghot.freq_threshold: [1, 2]\n  seed: [5, 6]\n"))
    points = build_points(grid)
    assert [p.describe() for p in points[:3]] == [
        "pghot.mode='default', pghot.freq_threshold=1, seed=5",
        "pghot.mode='default', pghot.freq_threshold=1, seed=6",
        "pghot.mode='default', pghot.freq_threshold=2, seed=5"]
    assert [p.scenario["pghot"]["mode"] for p in points] == ["default"] * 4 + ["precise"] * 4
    assert all(p.scenario["duration_s"] == 0.05 for p in points)
    assert grid.keys() == ["pghot.mode", "pghot.freq_threshold", "seed"]
    assert [p.index for p in points] == list(range(8))


def test_base_file_is_relative_to_the_grid(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "base.yaml").write_text("workload:\n  kind: zipf\n")
    grid = read_grid(write_grid(tmp_path / "sub", "base: base.yaml\n" + fast_set()))
    (point,) = build_points(grid)
    assert point.scenario["workload"]["kind"] == "zipf" and point.describe() == \
        "the base scenario"


@pytest.mark.parametrize(("text", "expected"), [
    ("nope: 1\n", "grid.yaml:1: unknown key 'nope'; expected one of base, set, axes, points"),
    ("- 1\n", "grid.yaml:1: a grid must be a mapping"),
    ("axes:\n  profiler.perio: [16]\n", "grid.yaml:2: axes: 'profiler.perio' is not a "
     "scenario key"),
    ("axes:\n  profiler: [16]\n", "grid.yaml:2: axes: 'profiler' is a section"),
    ("axes:\n  seed: []\n", "grid.yaml:2: axis seed: the list of values is empty"),
    ("axes:\n  seed: 3\n", "grid.yaml:2: axis seed: expected a list of values or a range"),
    ("axes:\n  seed: {from: 3, to: 1}\n", "grid.yaml:2: axis seed: range from 3 is above to 1"),
    ("axes:\n  seed: {from: 1, to: 3, step: 0}\n", "grid.yaml:2: axis seed: range step must "
     "be above 0"),
    ("axes:\n  seed: {from: 1, to: 3, times: 1}\n", "grid.yaml:2: axis seed: a geometric range "
     "needs times > 1"),
    ("axes:\n  seed: {from: 1, to: 3, step: 1, times: 2}\n", "grid.yaml:2: axis seed: a range "
     "has a step or times, not both"),
    ("axes:\n  seed: {from: 1, upto: 3}\n", "grid.yaml:2: axis seed: unknown range key 'upto'"),
    ("axes:\n  seed: {from: one, to: 3}\n", "grid.yaml:2: axis seed: range from must be a "
     "number, got 'one'"),
    ("axes:\n  seed:\n    - 1\n    - 2\n    - 1\n", "grid.yaml:5: axis seed: value 1 is given "
     "twice (also on line 3)"),
    ("set:\n  seed: 1\naxes:\n  seed: [1, 2]\n", "grid.yaml:4: seed is given by axis and by set "
     "(also line 2)"),
    ("points:\n  - {seed: 1, profiler: {period: 16}, profiler.period: 32}\n", "grid.yaml:2: "
     "profiler.period is given twice"),
    ("axes:\n  seed: {from: 0, to: 20000}\n", f"more than {MAX_POINTS:,}"),
    ("axes:\n  seed: {from: -1.0e+308, to: 1.0e+308, step: 1}\n", f"more than {MAX_POINTS:,}"),
    ("axes:\n  seed: {from: 1, to: 1.0e+308, times: 1.0000001}\n", f"more than {MAX_POINTS:,}"),
    ("axes:\n  seed: {from: 0, to: 200}\n  pghot.freq_threshold: {from: 0, to: 200}\n",
     f"the grid has 40,401 points, more than {MAX_POINTS:,}"),
    ("base: 3\n", "grid.yaml:1: base must be the path of a scenario file"),
    ("points: {seed: 1}\n", "grid.yaml:1: points must be a list of mappings"),
    ("axes: &a\n  seed: [1]\n", "grid.yaml:1: anchors and aliases are not allowed"),
])
def test_grid_shape_errors_name_the_line(tmp_path: Path, text: str, expected: str) -> None:
    path = grid_of(tmp_path, text)
    with pytest.raises(InputError) as err:
        read_grid(path)
    assert str(err.value).startswith(str(path.parent) + "/")
    assert expected in str(err.value)


@pytest.mark.parametrize(("text", "expected"), [
    ("axes:\n  profiler.period: [1024, 1000]\n", "grid.yaml:2: axis profiler.period = 1000 is "
     "not a multiple of 16"),
    ("axes:\n  profiler.period:\n    - 1024\n    - 0\n", "grid.yaml:4: axis profiler.period = 0 "
     "is outside 16..134217712"),
    ("axes:\n  pghot.mode: [default, fast]\n", "grid.yaml:2: axis pghot.mode must be one of "
     "default, precise; got 'fast'"),
    ("axes:\n  seed: [1, 2.5]\n", "grid.yaml:2: axis seed must be an int in "),
    ("axes:\n  demotion.enabled: [true, 3]\n", "grid.yaml:2: axis demotion.enabled must be "
     "true or false, got 3"),
    ("set:\n  duration_s: 0\n", "grid.yaml:2: set duration_s = 0.0 is outside 0.001..3600"),
    ("points:\n  - {seed: 1}\n  - {seed: -1}\n", "grid.yaml:3: points[1] seed = -1 is outside"),
    ("points:\n  - {workload.kind: zipf}\naxes:\n  workload.shift_at_s: [1]\n",
     "grid.yaml:4: axis workload.shift_at_s = 1: workload.shift_at_s is not used by kind "
     "zipf (only by gups-shift)"),
    ("axes:\n  machine.cxl_mib: [4096, 512]\n", "grid.yaml: point (machine.cxl_mib=512): "
     "workload.region_mib = 1024 does not fit: placement cxl has 512 MiB"),
    ("points:\n  - {seed: 1}\n  - {seed: 1}\n", "grid.yaml: point 0 (seed=1) and point 1 "
     "(seed=1) are the same scenario; drop one"),
    ("set:\n  workload.kind: lackey\naxes:\n  workload.trace: [a.log, missing.log]\n",
     "grid.yaml:4: axis workload.trace: cannot read lackey trace "),
])
def test_every_point_is_validated_up_front(tmp_path: Path, text: str, expected: str) -> None:
    (tmp_path / "a.log").write_text(LACKEY_OK)
    path = grid_of(tmp_path, text)
    with pytest.raises(InputError) as err:
        build_points(read_grid(path))
    assert expected in str(err.value), str(err.value)


def test_a_bad_point_is_one_line_and_nothing_is_written(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = grid_of(tmp_path, fast_set() + "axes:\n  seed: [1, 2]\n  profiler.period: "
                   "[1024, 1000]\n")
    assert sweep_here(str(path), "--out", str(tmp_path / "out"), "--workers", "0") == 2
    err = capsys.readouterr().err
    assert err == (f"ibs-mprof: error: {path}:6: axis profiler.period = 1000 is not a multiple "
                   "of 16; profiler.period must be an int in 16..134217712 (a multiple of "
                   "16)\n")
    assert not (tmp_path / "out").exists()
    import inspect

    import runtime.sweep  # the command ran: its module must not have replaced the function

    assert inspect.isfunction(runtime.sweep.command)


def test_options_are_checked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = grid_of(tmp_path, fast_set())
    assert sweep_here(str(path), "--workers", "2", "--scheduler", "tcp://127.0.0.1:1") == 2
    assert "give --workers (a local cluster) or --scheduler" in capsys.readouterr().err
    assert sweep_here(str(path), "--workers", "-1") == 2
    assert "--workers: expected an integer 0..1024" in capsys.readouterr().err
    assert sweep_here(str(tmp_path / "absent.yaml")) == 2
    assert "absent.yaml: cannot read grid: No such file" in capsys.readouterr().err
    assert sweep_here(str(tmp_path)) == 2
    assert "only regular files are read" in capsys.readouterr().err


def test_the_key_covers_the_scenario_the_tool_and_the_trace(tmp_path: Path) -> None:
    (tmp_path / "t.log").write_text(LACKEY_OK)
    text = ("set:\n  workload.kind: lackey\n  workload.trace: t.log\n  duration_s: 0.05\n"
            "axes:\n  seed: [1, 2]\n")
    first = build_points(read_grid(grid_of(tmp_path, text)))
    again = build_points(read_grid(grid_of(tmp_path, text)))
    assert [p.key for p in first] == [p.key for p in again]
    assert first[0].key != first[1].key  # the seed
    (tmp_path / "t.log").write_text(LACKEY_OK.replace("0421ed08", "0421ed48"))
    changed = build_points(read_grid(grid_of(tmp_path, text)))
    assert [p.key for p in changed] != [p.key for p in first]  # same path, other bytes
    scenario = first[0].scenario
    assert point_key(scenario, tool_identity(), None) != point_key(scenario, "other", None)
    assert tool_identity().startswith("ibs-mprof ")


def test_the_parser_loads_no_model_and_every_option_has_help() -> None:
    import subprocess
    import sys

    code = ("import argparse, sys; import runtime.sweep as s; p = argparse.ArgumentParser(); "
            "s.add_arguments(p); print(sorted(m for m in ('numpy', 'distributed', 'pyarrow', "
            "'matplotlib', 'runtime.sweep.entry') if m in sys.modules)); "
            "print(all(a.help for a in p._actions))")
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True).stdout.split()
    assert shown == ["[]", "True"]


GRIDS = [(ROOT / "examples" / "sweep-gups-shift.yaml").read_bytes(),
         b"base: gups-shift.yaml\nset:\n  duration_s: 0.05\n  profiler:\n    cnt_ctl: false\n"
         b"points:\n  - {pghot.mode: precise, pghot.promote_freq_window_ms: 5000}\n"
         b"  - pghot:\n      mode: default\naxes:\n  seed: {from: 1, to: 3, step: 1}\n"
         b"  workload.hot_fraction: {from: 0.01, to: 0.1, times: 3}\n"]


@fuzz(150)
@given(data=st.data())
def test_fuzz_grid_yaml(tmp_path_factory: pytest.TempPathFactory, data: st.DataObject) -> None:
    """read_grid and build_points on a mutated grid: points, or one InputError line."""
    folder = tmp_path_factory.getbasetemp() / "grid-fuzz"
    folder.mkdir(exist_ok=True)
    shutil.copy(ROOT / "examples" / "gups-shift.yaml", folder / "gups-shift.yaml")
    path = folder / "grid.yaml"
    path.write_bytes(data.draw(mutated(data.draw(st.sampled_from(GRIDS)), YAML_SCALARS)))
    accepted_or_input_error(lambda: build_points(read_grid(path)))


def test_the_example_grid() -> None:
    grid = read_grid(ROOT / "examples" / "sweep-gups-shift.yaml")
    points = build_points(grid)
    assert grid.keys() == ["profiler.period", "pghot.freq_threshold", "seed"]
    assert len(points) == 45 and len({p.key for p in points}) == 45
    assert sorted({p.scenario["profiler"]["period"] for p in points}) == [
        2048, 4096, 8192, 16384, 32768]
    assert {p.scenario["workload"]["kind"] for p in points} == {"gups-shift"}
