"""The points of a sweep: each one's scenario, validated before anything runs, and its key.

A point is the base scenario with the grid's `set` values, one value of each axis and, when
the grid lists points, one of those. Every point goes through `load_scenario` exactly as
`ibs-mprof run --set ...` would; a point that fails is one line naming the grid line of the
axis and value to blame (or, when no single value is, the point and all its values).

A point's key is the SHA-256 of its full validated scenario, the tool's identity (version
and a fingerprint of the model's source, numpy and Python: what its results depend on) and
the bytes of a lackey trace it reads. Equal keys mean equal results, so the store reuses a
point's result across reruns, grids and output folders, and never reuses a stale one.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runtime.cost import Limits, check, estimate
from runtime.errors import InputError
from runtime.scenario import load_scenario
from runtime.sweep.grid import Grid, Setting, value_text
from safeio.inputs import open_input, reason

KEY_SCHEMA = "ibs-mprof sweep point 1"
"""Part of every key: a change in what a key covers changes this and with it every key."""


@dataclass(frozen=True)
class Point:
    index: int
    settings: tuple[Setting, ...]
    scenario: dict[str, Any]
    key: str

    def describe(self) -> str:
        """The values that make this point, as --set would take them."""
        return ", ".join(s.describe() for s in self.settings) or "the base scenario"


@functools.cache
def tool_identity() -> str:
    """The installed version and a fingerprint of what a point's result depends on: every
    source file of the model and of the generated accessors (not this package's), the
    Python and numpy versions. A worker that differs in any of them gives other results."""
    from importlib.metadata import PackageNotFoundError, version

    import numpy

    import generated
    import runtime

    try:
        installed = version("ibs-mprof")
    except PackageNotFoundError:  # a checkout that was never installed
        installed = "unknown"
    mine = Path(__file__).parent
    digest = hashlib.sha256(f"{sys.version}|{numpy.__version__}".encode())
    for root in (Path(generated.__file__).parent, Path(runtime.__file__).parent):
        for path in sorted(p for p in root.rglob("*.py") if mine not in p.parents):
            digest.update(f"{path.relative_to(root.parent)}\0".encode() + path.read_bytes())
    return f"ibs-mprof {installed} (model {digest.hexdigest()[:16]})"


def override(setting: Setting) -> str:
    """The setting as a `--set key=value` assignment (JSON is YAML that reads back the same
    value)."""
    return f"{setting.key}={json.dumps(setting.value)}"


def build_points(grid: Grid) -> list[Point]:
    """Every point of the grid in order (explicit points outermost, then the axes in file
    order, the last varying fastest), each validated; InputError at the first bad one."""
    label = str(grid.path)
    tool = tool_identity()
    digests: dict[str, str] = {}
    points: list[Point] = []
    seen: dict[str, Point] = {}
    for explicit in grid.points:
        for combo in itertools.product(*(axis.settings for axis in grid.axes)):
            settings = (*explicit, *combo)
            scenario = _load(grid, (*grid.fixed, *settings), label)
            point = Point(len(points), settings, scenario,
                          point_key(scenario, tool, _trace_digest(scenario, settings, digests,
                                                                  label)))
            if point.key in seen:
                other = seen[point.key]
                raise InputError(f"{label}: point {other.index} ({other.describe()}) and point "
                                 f"{point.index} ({point.describe()}) are the same scenario; "
                                 "drop one")
            seen[point.key] = point
            points.append(point)
    return points


def point_key(scenario: dict[str, Any], tool: str, trace_sha256: str | None) -> str:
    material = {"schema": KEY_SCHEMA, "scenario": scenario, "tool": tool,
                "trace_sha256": trace_sha256}
    text = json.dumps(material, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


def _load(grid: Grid, settings: Sequence[Setting], label: str) -> dict[str, Any]:
    try:
        return load_scenario(grid.base, [override(s) for s in settings])
    except InputError as exc:
        raise _blame(str(exc), settings, label, grid.base) from None


NO_FILE = "<default scenario>"
"""What load_scenario calls the scenario when there is no base file."""


def _blame(text: str, settings: Sequence[Setting], label: str,
           base: Path | None) -> InputError:
    """The scenario's message about a point, said of the grid: at the line of the value it
    names, else of all the values that make the point."""
    text = text.removeprefix(f"{NO_FILE}: ")
    if text.startswith("--set"):
        text = text.removeprefix("--set").removeprefix(":").strip()
        for setting in settings:
            if text.startswith((f"{setting.key}: ", f"{setting.key} ")):
                text = text.removeprefix(f"{setting.key}: ")
                shown = value_text(setting.value)
                if not text.startswith(setting.key) or shown not in text:
                    text = f"{setting.key} = {shown}: {text}"
                return InputError(f"{label}:{setting.line}: {setting.origin} {text}")
    point = [s for s in settings if s.origin != "set"]
    if point:
        return InputError(f"{label}: point ({', '.join(s.describe() for s in point)}): {text}")
    return InputError(text if base is not None and text.startswith(str(base)) else
                      f"{label}: {text}")


def _trace_digest(scenario: dict[str, Any], settings: Sequence[Setting],
                  digests: dict[str, str], label: str) -> str | None:
    """SHA-256 of the lackey trace the point reads (None for other workloads); a trace that
    cannot be read is the point's error now, not a failure after hours of sweeping."""
    path = scenario["workload"].get("trace")
    if scenario["workload"]["kind"] != "lackey" or not path:
        return None
    if path not in digests:
        digest = hashlib.sha256()
        try:
            with open_input(path) as handle:
                for chunk in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(chunk)
        except OSError as exc:
            where = next((f"{label}:{s.line}: {s.origin} {s.key}" for s in settings
                          if s.key == "workload.trace"), label)
            raise InputError(f"{where}: cannot read lackey trace {path}: {reason(exc)}") \
                from None
        digests[path] = digest.hexdigest()
    return digests[path]


def estimated_seconds(points: Sequence[Point], limits: Limits, label: str) -> list[float]:
    """Each point's estimated wall time (runtime/cost.py); InputError for the first point
    that the machines running it cannot hold (limits: per worker) or that runs too long."""
    seconds = []
    for point in points:
        est = estimate(point.scenario)
        try:
            check(est, limits)
        except InputError as exc:
            raise InputError(f"{label}: point {point.index} ({point.describe()}): "
                             f"{str(exc).removeprefix('scenario: ')}") from None
        seconds.append(est.wall_s)
    return seconds


def trace_inputs(points: Sequence[Point]) -> list[Path]:
    """The lackey traces the points read (an output folder must not hold them)."""
    paths = {p.scenario["workload"]["trace"] for p in points
             if p.scenario["workload"]["kind"] == "lackey"}
    return [Path(path) for path in sorted(paths)]
