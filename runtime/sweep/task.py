"""What a worker process runs for one point: the simulation, its error as one line, or a
refusal when the worker's ibs-mprof is not the sweep's.

A point's failure is a result, not an exception: `run_point` returns it, so Dask never
retries a point that fails the same way every time. Only a dead worker makes Dask retry.
Points run one at a time in a process (a lock), whatever threads its worker was started
with: the allocator settings are process-wide and a run plans with the machine's memory.
"""

from __future__ import annotations

import os
import signal
import threading
from dataclasses import dataclass
from typing import Any

from runtime.errors import InputError, one_line
from runtime.sweep.points import tool_identity

DIE_ONCE_ENV = "IBS_MPROF_TEST_SWEEP_DIE_ONCE"
"""Test hook: the first worker process to start a point with this file absent creates it and
kills itself (SIGKILL), as an out-of-memory kill would; the retried point then runs."""
CTRL_C_ENV = "IBS_MPROF_TEST_SWEEP_CTRL_C"
"""Test hook: with this set, the sweep sends SIGINT to its process group once the first
point is stored, as Ctrl-C in a terminal does (to every process of the foreground group)."""

_ONE_AT_A_TIME = threading.Lock()
_allocator_set = False


@dataclass(frozen=True)
class Outcome:
    """A point's result: the report (report.json's dict) or the one-line error."""

    key: str
    report: dict[str, Any] | None
    error: str | None


def run_point(key: str, scenario: dict[str, Any], tool: str) -> Outcome:
    """Simulate one point in this (worker) process."""
    _die_once_for_tests()
    mine = tool_identity()
    if mine != tool:
        return Outcome(key, None, f"the worker runs {mine}, the sweep {tool}: install the "
                       "same ibs-mprof (and Python, numpy) on every worker")
    with _ONE_AT_A_TIME:
        return Outcome(key, *_simulate(scenario))


def _simulate(scenario: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    global _allocator_set
    from runtime.allocator import keep_freed_memory
    from runtime.report import json_ready
    from runtime.simulate import simulate

    if not _allocator_set:  # what `ibs-mprof run` sets, once per process
        keep_freed_memory()
        _allocator_set = True
    try:
        return json_ready(simulate(scenario)), None
    except InputError as exc:  # e.g. a malformed trace, a machine that cannot hold the run
        return None, str(exc)
    except MemoryError:
        return None, "out of memory in the worker"
    except Exception as exc:  # a bug in the model: recorded, and the sweep goes on
        return None, one_line(f"internal error: {type(exc).__name__}: {exc}")


def dask_setup(worker: object) -> None:
    """Run by a local cluster's worker process as it starts (Dask's preload): Ctrl-C is
    the sweep's to handle (it stops the cluster), not each worker's to print a traceback."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def ctrl_c_once_for_tests() -> None:
    if os.environ.pop(CTRL_C_ENV, None):
        os.killpg(os.getpgid(0), signal.SIGINT)


def _die_once_for_tests() -> None:
    path = os.environ.get(DIE_ONCE_ENV)
    if not path:
        return
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return
    os.kill(os.getpid(), signal.SIGKILL)
