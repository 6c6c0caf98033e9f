"""`ibs-mprof topology --capture [--sysfs ROOT]`: this machine's memory topology as YAML.

The lead's runtime/cli.py adds the sub-parser with add_arguments and calls command.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from runtime.errors import InputError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--capture", action="store_true",
                        help="read the topology from sysfs and print it as YAML (for "
                        "`ingest --topology`, `replay --topology`)")
    parser.add_argument("--sysfs", metavar="ROOT", default="/sys",
                        help="sysfs mount point to read (default /sys; a copy of another "
                        "machine's tree works too)")


def command(args: argparse.Namespace) -> int:
    from runtime.perf.sysfs import capture, topology_yaml

    if not args.capture:
        raise InputError("topology: nothing to do; give --capture to print this machine's "
                         "topology as YAML")
    root = Path(args.sysfs)
    if not root.is_dir():
        raise InputError(f"topology: --sysfs {args.sysfs!r} is not a folder")
    topology, notes = capture(root)
    print(topology_yaml(topology, notes, str(root)), end="")
    return 0
