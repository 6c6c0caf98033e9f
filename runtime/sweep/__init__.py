"""`ibs-mprof sweep`: run a grid of scenarios on Dask distributed and compare the results.

One job per module:

    grid.py       the grid file: base, set, axes (lists, ranges), points; its shape checked
    points.py     every point's scenario validated up front, its key (scenario + tool hash)
    task.py       what a worker runs for one point: the simulation or its one-line error
    execute.py    the runners: a Dask LocalCluster, a scheduler's cluster, or in-process
    store.py      the sweep folder: points kept as they finish, reruns resume, outputs swapped
    progress.py   points done of the total and the time left, on stderr
    table.py      one row per point: results.csv and results.parquet
    aggregate.py  configurations over seeds (mean, min, max) and Pareto fronts
    plots.py      metrics against each axis, and the trade-off plot
    options.py    the command-line options (light: the parser imports it)
    entry.py      the command: grid, points, folder, run, tables and plots, summary

This file stays light: the CLI imports it to build its parser, so numpy, Dask and the model
load only when the command runs.
"""

from __future__ import annotations

import argparse

from runtime.sweep.options import add_arguments

__all__ = ["add_arguments", "command"]


def command(args: argparse.Namespace) -> int:
    """Run `ibs-mprof sweep` (runtime/sweep/entry.py); the exit status."""
    from runtime.sweep.entry import command as run

    return run(args)
