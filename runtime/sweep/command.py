"""`ibs-mprof sweep GRID.yaml`: the options, and the command from grid to tables and plots.

Order matters for the user's files and time: the grid is read and every point validated
(and its cost checked) before the output folder is touched; the folder is checked before any
point runs; each point is stored as it finishes; the tables and plots come last.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path
from typing import Any

from runtime.cli import int_option

MAX_WORKERS = 1024
DEFAULT_OUT = "ibs-mprof-sweep"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The sweep options, each with a help text in the user's words (light: no model)."""
    parser.add_argument("grid", metavar="GRID.yaml",
                        help="the grid: a base scenario, values fixed for every point, axes "
                        "(lists or ranges of scenario keys, seeds too) and/or explicit points "
                        "(README, Sweeps)")
    parser.add_argument("--out", default=DEFAULT_OUT, metavar="DIR",
                        help=f"sweep folder (default ./{DEFAULT_OUT}/): created, or resumed "
                        "if it is a sweep folder of ours; any other folder is refused")
    parser.add_argument("--workers", type=int_option(0, MAX_WORKERS), metavar="N",
                        help="worker processes of the local Dask cluster (default: this "
                        "machine's cores); 0 runs the points one by one in this process")
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help="run on the Dask cluster of this scheduler (tcp://host:port) "
                        "instead of a local one; its workers need the same ibs-mprof")
    parser.add_argument("--json", action="store_true",
                        help="print the results (rows and Pareto fronts) as JSON")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")


def command(args: argparse.Namespace) -> int:
    """Run the sweep; 0 when every point ran, 1 when some failed (their errors are in the
    table), 2 (by the CLI) for bad input."""
    from runtime.errors import InputError

    if args.scheduler is not None and args.workers is not None:
        raise InputError("sweep: give --workers (a local cluster) or --scheduler (an "
                         "existing one), not both")
    return _sweep(Path(args.grid), args.out, args.workers, args.scheduler, args.json,
                  args.quiet)


def _sweep(grid_path: Path, out: str, workers: int | None, scheduler: str | None,
           as_json: bool, quiet: bool) -> int:
    from runtime.cost import Limits, machine_limits
    from runtime.sweep import aggregate, execute, store, table
    from runtime.sweep.grid import read_grid
    from runtime.sweep.plots import write_plots
    from runtime.sweep.points import (
        build_points,
        estimated_seconds,
        tool_identity,
        trace_inputs,
    )
    from runtime.sweep.progress import SweepProgress

    grid = read_grid(grid_path)
    points = build_points(grid)
    label = str(grid_path)
    if workers is None and scheduler is None:
        workers = execute.default_workers()
    if scheduler is None:  # points run side by side on this machine: each gets its share
        limits = machine_limits()
        share = max(workers or 1, 1)
        if limits.memory_bytes is not None:
            limits = Limits(limits.memory_bytes / share, f"{limits.memory_source} / {share} "
                            "workers", limits.wall_s)
    else:  # the workers' memory is theirs to check
        limits = Limits(None, "unknown")
    seconds = dict(zip((p.key for p in points), estimated_seconds(points, limits, label),
                       strict=True))
    inputs = [grid_path, *([grid.base] if grid.base else []), *trace_inputs(points)]
    tool = tool_identity()
    keys = grid.keys()
    store.check_out(out, inputs)  # before a cluster starts: a refusal costs nothing
    with execute.runner(workers or 0, scheduler) as run, \
            store.open_store(out, inputs) as folder:
        stored = {p.key: folder.load(p.key) for p in points}
        todo = [p for p in points if (s := stored[p.key]) is None or s.error is not None]
        progress = SweepProgress(len(points), len(points) - len(todo),
                                 [seconds[p.key] for p in todo], run.workers,
                                 io.StringIO() if quiet or as_json else sys.stderr)
        try:
            def on_done(point: Any, outcome: Any) -> None:
                stored[point.key] = folder.save(outcome, tool)
                wall = (outcome.report or {}).get("engine", {}).get("wall_s")
                progress.point_done(seconds[point.key], wall, outcome.error is not None)

            run.run(todo, tool, on_done)
        finally:
            progress.finish()
        rows = []
        for p in points:
            result = stored[p.key]
            assert result is not None
            rows.append(table.make_row(p.index, p.scenario, keys,
                                       None if result.error else result.report(), result.error,
                                       p.key[:store.NAME_DIGITS]))
        with folder.outputs() as tmp:
            table.write_tables(rows, keys, tmp)
            plots = write_plots(rows, keys, tmp)
        root = folder.root
    failed = sum(r["status"] == "failed" for r in rows)
    fronts = aggregate.pareto_json(aggregate.configs(rows, keys))
    if as_json:
        print(json.dumps({"out": str(root), "points": len(points), "ran": len(todo),
                          "stored": len(points) - len(todo), "failed": failed, "tool": tool,
                          "pareto": fronts, "rows": rows}, indent=1, allow_nan=False))
    else:
        print(_summary(root, len(points), len(todo), failed, fronts, plots))
    if failed:
        print(f"ibs-mprof: {failed} point(s) failed; their errors are in {root}/results.csv "
              "(error column); a rerun runs them again", file=sys.stderr)
    return 1 if failed else 0


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
                         f"{_g(item['cpu_overhead_pct'])}% ({item['seeds']} seeds)")
    return "\n".join(lines)


def _g(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3g}"
