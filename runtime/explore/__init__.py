"""`ibs-mprof explore`: a deterministic scheduler over the driver model's concurrent steps.

It looks for interleavings of the driver's NMI, irq_work, work item and CPU hotplug that lose
or strand a sample, and prints the shortest one. One job per module:

    model.py       the machine: canonical states, the steps and what each does
    invariants.py  conservation, owner-pop, stranded: what must hold in every state
    search.py      exhaustive breadth first, random schedules, minimising a counterexample
    cost.py        the states and memory a bound will need, checked before the search starts
    progress.py    a line on stderr while a long search runs
    output.py      the result as text or JSON, each step in a kernel developer's words
    options.py     the command-line options (light: the parser imports it)
    entry.py       the command: bounds, search, print, exit status

This file stays light too: the CLI imports it to build its parser, before it knows whether
explore is the command, so the model (numpy, generated/) loads only when the command runs.
"""

from __future__ import annotations

import argparse

from runtime.explore.options import add_arguments

__all__ = ["add_arguments", "command"]


def command(args: argparse.Namespace) -> int:
    """Run `ibs-mprof explore` (runtime/explore/entry.py); the exit status."""
    from runtime.explore.entry import command as run

    return run(args)
