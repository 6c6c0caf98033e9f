"""The grid file of `ibs-mprof sweep`: read it, check its shape, expand ranges. No scenario
is validated here (points.py does that, point by point).

```yaml
base: gups-shift.yaml        # optional: a scenario file (relative to the grid file)
set:                         # optional: scenario keys every point shares
  duration_s: 4
axes:                        # optional: the full product of these values
  profiler.period: [2500, 5000, 10000]
  pghot.freq_threshold: {from: 1, to: 3}           # 1, 2, 3 (step 1)
  kmigrated.sleep_ms: {from: 50, to: 400, times: 2} # 50, 100, 200, 400
  seed: {from: 1, to: 3}                            # repetitions
points:                      # optional: explicit points, each crossed with the axes
  - {pghot.mode: default}
  - {pghot.mode: precise, pghot.promote_freq_window_ms: 5000}
```

Keys are dotted scenario keys (`set` and points may also nest them as a scenario file does).
A key names at most one of set, axes and the points. Problems are one line naming the grid
file, the line and what was expected (InputError), like a scenario file's.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runtime.decode import shown
from runtime.errors import InputError
from runtime.scenario import SCHEMA
from safeio.inputs import reason
from safeio.yamlsafe import YamlProblem, YList, YMap, load_yaml, read_yaml_file

MAX_POINTS = 10_000
"""Most points one grid may hold: past this a sweep is a mistake in the grid, not a plan."""
SECTIONS = ("base", "set", "axes", "points")
RANGE_KEYS = ("from", "to", "step", "times")
_SIGNIFICANT = 12
"""Float range values are rounded to this many significant digits: 0.1 + 2 x 0.1 is 0.3."""


@dataclass(frozen=True)
class Setting:
    """One scenario key given a value by the grid, and where: `origin` is "set", "axis" or
    "points[i]", `line` the grid file's line of the value."""

    key: str
    value: Any
    origin: str
    line: int

    def describe(self) -> str:
        """`key=value` as a user would type it for --set."""
        return f"{self.key}={value_text(self.value)}"


@dataclass(frozen=True)
class Axis:
    key: str
    settings: tuple[Setting, ...]  # one per value, in the grid's order


@dataclass(frozen=True)
class Grid:
    path: Path
    base: Path | None
    fixed: tuple[Setting, ...]
    axes: tuple[Axis, ...]
    points: tuple[tuple[Setting, ...], ...]  # explicit points; one empty point without any

    @property
    def size(self) -> int:
        return len(self.points) * math.prod(len(a.settings) for a in self.axes)

    def keys(self) -> list[str]:
        """Every key a point varies, in the grid's order (the results table's columns)."""
        keys = dict.fromkeys(s.key for point in self.points for s in point)
        keys.update(dict.fromkeys(a.key for a in self.axes))
        return list(keys)


def value_text(value: Any) -> str:
    """A value as a message shows it: a string quoted, anything else as JSON (YAML reads
    that back as the same value), cut after 60 characters."""
    if isinstance(value, str):
        return shown(value, 60)
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 60 else f"{text[:60]}... ({len(text)} characters)"


def read_grid(path: Path) -> Grid:
    """The grid file at path, checked and with its ranges expanded; InputError otherwise."""
    label = str(path)
    try:
        raw = load_yaml(read_yaml_file(path).decode("utf-8"))
    except (OSError, UnicodeDecodeError, YamlProblem) as exc:
        raise InputError(_unreadable(label, exc)) from None
    if raw is None:
        raise InputError(f"{label}:1: the grid is empty; expected a mapping with "
                         f"{', '.join(SECTIONS)}")
    if not isinstance(raw, YMap):
        raise InputError(f"{label}:1: a grid must be a mapping with {', '.join(SECTIONS)}")
    for name, line in raw.key_lines.items():
        if name not in SECTIONS:
            raise InputError(f"{label}:{line}: unknown key {shown(name)}; expected one of "
                             f"{', '.join(SECTIONS)}")
    at = _At(label, raw)
    base = _base(raw.get("base"), path, at)
    fixed = tuple(_flatten(raw["set"], "", "set", at.line("set"), at)) if "set" in raw else ()
    axes = _axes(raw["axes"], at) if "axes" in raw else ()
    points = _points(raw["points"], at) if "points" in raw else ((),)
    grid = Grid(path, base, tuple(_relative_traces(fixed, path)),
                tuple(Axis(a.key, tuple(_relative_traces(a.settings, path))) for a in axes),
                tuple(tuple(_relative_traces(p, path)) for p in points))
    _check_overlap(grid, label)
    if grid.size > MAX_POINTS:
        raise InputError(f"{label}: the grid has {grid.size:,} points, more than "
                         f"{MAX_POINTS:,}; shorten an axis or split the sweep")
    return grid


def _unreadable(label: str, exc: Exception) -> str:
    if isinstance(exc, YamlProblem):
        return f"{label}:{exc.line}: {exc.message}"
    why = reason(exc) if isinstance(exc, OSError) else f"not UTF-8 text ({exc})"
    return f"{label}: cannot read grid: {why}"


class _At:
    """file:line of a top-level section, for messages."""

    def __init__(self, label: str, raw: YMap) -> None:
        self.label, self.raw = label, raw

    def line(self, name: str) -> int:
        return self.raw.key_lines.get(name, 1)

    def error(self, line: int, text: str) -> InputError:
        return InputError(f"{self.label}:{line}: {text}")


def _base(value: Any, grid: Path, at: _At) -> Path | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise at.error(at.line("base"), "base must be the path of a scenario file (relative "
                       "to the grid file)")
    path = Path(value)
    return path if path.is_absolute() else grid.parent / path


def _scenario_key(key: str) -> Any:
    """The schema entry of a dotted key (a Key, a section dict), or None when there is none."""
    node: Any = SCHEMA
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _check_key(key: str, origin: str, line: int, at: _At) -> None:
    entry = _scenario_key(key)
    if entry is None or isinstance(entry, dict):
        what = "a section" if isinstance(entry, dict) else "not a scenario key"
        raise at.error(line, f"{origin}: {shown(key, 60)} is {what}; name one key, as in "
                       "profiler.period or pghot.freq_threshold (README, Scenarios)")


def _flatten(node: Any, prefix: str, origin: str, line: int, at: _At) -> list[Setting]:
    """A mapping of (dotted or nested) scenario keys as one Setting per key."""
    if not isinstance(node, YMap):
        raise at.error(line, f"{origin} must be a mapping of scenario keys to values")
    out: list[Setting] = []
    for name, value in node.items():
        key = prefix + name
        key_line = node.key_lines[name]
        if isinstance(value, YMap) and isinstance(_scenario_key(key), dict):
            out += _flatten(value, key + ".", origin, key_line, at)
            continue
        _check_key(key, origin, key_line, at)
        out.append(Setting(key, value, origin, key_line))
    return out


def _axes(node: Any, at: _At) -> tuple[Axis, ...]:
    if not isinstance(node, YMap) or not node:
        raise at.error(at.line("axes"), "axes must be a mapping of scenario keys to a list of "
                       "values or a range {from, to, step | times}")
    out = []
    for key, value in node.items():
        line = node.key_lines[key]
        _check_key(key, "axes", line, at)
        if isinstance(value, YList):
            if not value:
                raise at.error(line, f"axis {key}: the list of values is empty")
            settings = [Setting(key, v, "axis", item_line)
                        for v, item_line in zip(value, value.item_lines, strict=True)]
        elif isinstance(value, YMap):
            settings = [Setting(key, v, "axis", line) for v in _range(key, value, line, at)]
        else:
            raise at.error(line, f"axis {key}: expected a list of values or a range {{from, "
                           f"to, step | times}}, got {value_text(value)}")
        _no_repeats(settings, f"axis {key}", at)
        out.append(Axis(key, tuple(settings)))
    return tuple(out)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and \
        math.isfinite(value)


def _range(key: str, spec: YMap, line: int, at: _At) -> list[int | float]:
    """The values of `{from, to, step}` (arithmetic, default step 1) or `{from, to, times}`
    (geometric): from, then each next value while it does not pass `to`."""
    for name in spec:
        if name not in RANGE_KEYS:
            raise at.error(spec.key_lines[name], f"axis {key}: unknown range key {shown(name)}; "
                           f"expected from, to and at most one of step, times")
    if "from" not in spec or "to" not in spec:
        raise at.error(line, f"axis {key}: a range needs from and to")
    if "step" in spec and "times" in spec:
        raise at.error(line, f"axis {key}: a range has a step or times, not both")
    for name, value in spec.items():
        if not _number(value):
            raise at.error(spec.key_lines[name], f"axis {key}: range {name} must be a number, "
                           f"got {value_text(value)}")
    low, high = spec["from"], spec["to"]
    if low > high:
        raise at.error(line, f"axis {key}: range from {low} is above to {high}")
    values: list[int | float] = []
    if "times" in spec:
        factor = spec["times"]
        if factor <= 1 or low <= 0:
            raise at.error(spec.key_lines["times"], f"axis {key}: a geometric range needs "
                           f"times > 1 and from > 0, got times {factor}, from {low}")
        value = low
        while value <= high * (1 + 1e-12) and len(values) <= MAX_POINTS:
            values.append(_rounded(value))
            value = value * factor
    else:
        step = spec.get("step", 1)
        if step <= 0:
            raise at.error(spec.key_lines.get("step", line), f"axis {key}: range step must be "
                           f"above 0, got {step}")
        span = (high - low) / step
        if not span < MAX_POINTS:  # inf too: from -1e308 to 1e308
            raise at.error(line, f"axis {key}: the range has more than {MAX_POINTS:,} values")
        count = math.floor(span * (1 + 1e-12)) + 1
        values = [_rounded(low + i * step) for i in range(count)]
    if len(values) > MAX_POINTS:
        raise at.error(line, f"axis {key}: the range has more than {MAX_POINTS:,} values")
    return values


def _rounded(value: int | float) -> int | float:
    return value if isinstance(value, int) else float(f"{value:.{_SIGNIFICANT}g}")


def _no_repeats(settings: list[Setting], what: str, at: _At) -> None:
    seen: dict[str, Setting] = {}
    for setting in settings:
        ident = json.dumps(setting.value, sort_keys=True)
        if ident in seen:
            raise at.error(setting.line, f"{what}: value {value_text(setting.value)} is given "
                           f"twice (also on line {seen[ident].line})")
        seen[ident] = setting


def _points(node: Any, at: _At) -> tuple[tuple[Setting, ...], ...]:
    if not isinstance(node, YList) or not node:
        raise at.error(at.line("points"), "points must be a list of mappings of scenario "
                       "keys to values")
    return tuple(tuple(_flatten(item, "", f"points[{i}]", line, at))
                 for i, (item, line) in enumerate(zip(node, node.item_lines, strict=True)))


def _relative_traces(settings: tuple[Setting, ...] | list[Setting],
                     grid: Path) -> list[Setting]:
    """A lackey trace named by the grid is relative to the grid file (as a scenario's is to
    the scenario file)."""
    out = []
    for s in settings:
        if s.key == "workload.trace" and isinstance(s.value, str) and s.value and \
                not Path(s.value).is_absolute():
            s = Setting(s.key, str(grid.parent / s.value), s.origin, s.line)
        out.append(s)
    return out


def _check_overlap(grid: Grid, label: str) -> None:
    """A key is given once per point: by set, by an axis or by the point itself; two places
    would leave it unclear which value the point gets."""
    owner: dict[str, Setting] = {}
    for setting in grid.fixed:
        _claim(owner, setting, label)
    for axis in grid.axes:
        _claim(owner, axis.settings[0], label)
    for point in grid.points:
        mine = dict(owner)
        for setting in point:
            _claim(mine, setting, label)


def _claim(owner: dict[str, Setting], setting: Setting, label: str) -> None:
    other = owner.get(setting.key)
    if other is not None:
        where = "twice" if other.origin == setting.origin else \
            f"by {setting.origin} and by {other.origin}"
        raise InputError(f"{label}:{setting.line}: {setting.key} is given {where} (also line "
                         f"{other.line}); name it in one place")
    owner[setting.key] = setting
