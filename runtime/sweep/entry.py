"""`ibs-mprof sweep GRID.yaml`: from the grid to the tables and plots.

Order matters for the user's files and time: the grid is read and every point validated
(and its cost checked) before the output folder is touched; the folder is checked before a
cluster starts or any point runs; each point is stored as it finishes; the tables and plots
come last, from every point's stored result.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from runtime.cost import Limits, machine_limits
from runtime.errors import InputError
from runtime.sweep import aggregate, execute, store, table
from runtime.sweep.grid import read_grid
from runtime.sweep.plots import write_plots
from runtime.sweep.points import (
    Point,
    build_points,
    estimated_seconds,
    tool_identity,
    trace_inputs,
)
from runtime.sweep.progress import SweepProgress
from runtime.sweep.task import Outcome, ctrl_c_once_for_tests


def command(args: argparse.Namespace) -> int:
    """Run the sweep; 0 when every point ran, 1 when some failed (their errors are in the
    table), 2 (by the CLI) for bad input."""
    if args.scheduler is not None and args.workers is not None:
        raise InputError("sweep: give --workers (a local cluster) or --scheduler (an "
                         "existing one), not both")
    return run_sweep(Path(args.grid), args.out, args.workers, args.scheduler, args.json,
                     args.quiet)


def run_sweep(grid_path: Path, out: str, workers: int | None, scheduler: str | None,
              as_json: bool, quiet: bool) -> int:
    grid = read_grid(grid_path)
    points = build_points(grid)
    if workers is None and scheduler is None:
        workers = execute.default_workers()
    seconds = dict(zip((p.key for p in points), estimated_seconds(
        points, _limits(workers, scheduler), str(grid_path)), strict=True))
    inputs = [grid_path, *([grid.base] if grid.base else []), *trace_inputs(points)]
    root = store.check_out(out, inputs)  # before a cluster starts: a refusal costs nothing
    missing = sum((s := store.load(root, p.key)) is None or s.error is not None for p in points)
    if missing == 0:  # a look ahead: nothing to run, so no cluster to start
        workers, scheduler = 0, None
    elif workers:  # and no more local workers than points to run
        workers = min(workers, missing)
    with execute.runner(workers or 0, scheduler) as run, \
            store.open_store(out, inputs) as folder:
        stored = {p.key: folder.load(p.key) for p in points}
        todo = [p for p in points if (s := stored[p.key]) is None or s.error is not None]
        progress = SweepProgress(len(points), len(points) - len(todo),
                                 [seconds[p.key] for p in todo], run.workers,
                                 io.StringIO() if quiet or as_json else sys.stderr)
        tool = tool_identity()

        def on_done(point: Point, outcome: Outcome) -> None:
            stored[point.key] = folder.save(outcome, tool)
            wall = (outcome.report or {}).get("engine", {}).get("wall_s")
            progress.point_done(seconds[point.key], wall, outcome.error is not None)
            ctrl_c_once_for_tests()

        try:
            run.run(todo, tool, on_done)
        finally:
            progress.finish()
        rows = [_row(p, stored[p.key], grid.keys()) for p in points]
        with folder.outputs() as tmp:
            table.write_tables(rows, grid.keys(), tmp)
            plots = write_plots(rows, grid.keys(), tmp)
    failed = sum(r["status"] == "failed" for r in rows)
    fronts = aggregate.pareto_json(aggregate.configs(rows, grid.keys()))
    if as_json:
        print(json.dumps({"out": str(folder.root), "points": len(points), "ran": len(todo),
                          "stored": len(points) - len(todo), "failed": failed, "tool": tool,
                          "pareto": fronts, "rows": rows}, indent=1, allow_nan=False))
    else:
        print(_summary(folder.root, len(points), len(todo), failed, fronts, plots))
    if failed:
        print(f"ibs-mprof: {failed} point(s) failed; their errors are in {folder.root}/"
              "results.csv (error column); a rerun runs them again", file=sys.stderr)
    return 1 if failed else 0


def _limits(workers: int | None, scheduler: str | None) -> Limits:
    """What one point may use: on this machine its share of the memory (points run side by
    side); on a scheduler's cluster the workers check their own."""
    if scheduler is not None:
        return Limits(None, "unknown")
    limits = machine_limits()
    share = max(workers or 1, 1)
    if limits.memory_bytes is None:
        return limits
    return Limits(limits.memory_bytes / share, f"{limits.memory_source} / {share} workers",
                  limits.wall_s)


def _row(point: Point, stored: store.Stored | None, keys: Sequence[str]) -> table.Row:
    assert stored is not None  # every point ran, or the sweep stopped before this
    return table.make_row(point.index, point.scenario, keys,
                          None if stored.error else stored.report(), stored.error,
                          point.key[:store.NAME_DIGITS])


def _summary(root: Path, total: int, ran: int, failed: int,
             fronts: dict[str, list[dict[str, Any]]], plots: list[str]) -> str:
    lines = [f"sweep: {total} points: {ran} ran, {total - ran} were stored, {failed} failed",
             f"results written to {root}/ (results.csv, results.parquet, points/<key>/"
             f"report.json, {', '.join(plots)})"]
    for name, front in fronts.items():
        metric = name.split("_vs_")[0]
        lines.append(f"Pareto front, {metric} against the modelled CPU overhead:")
        for item in front:
            values = ", ".join(f"{k}={v}" for k, v in item["values"].items()) or "base"
            lines.append(f"  {values}: {metric} {_g(item[metric])}, CPU overhead "
                         f"{_g(item['cpu_overhead_pct'])}% (mean of {item['points']} "
                         f"point{'s' if item['points'] > 1 else ''})")
    return "\n".join(lines)


def _g(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"
