"""What a user can ask `ibs-mprof sweep` for: the options and their help (light: the CLI
imports this to build its parser, before it knows whether sweep is the command)."""

from __future__ import annotations

import argparse

from runtime.cli import int_option

MAX_WORKERS = 1024
DEFAULT_OUT = "ibs-mprof-sweep"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The sweep options, each with a help text in the user's words."""
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
