"""Test hook: die at a named point, so a test can check what a crash there leaves on disk.

With IBS_MPROF_TEST_KILL_AT=<label> in the environment the process SIGKILLs itself the first
time it reaches the point of that name (tests/test_atomic_kill.py lists them). A no-op unless
the variable is set.
"""

from __future__ import annotations

import os
import signal

KILL_AT_ENV = "IBS_MPROF_TEST_KILL_AT"


def kill_point(label: str) -> None:
    if os.environ.get(KILL_AT_ENV) == label:
        os.kill(os.getpid(), signal.SIGKILL)
