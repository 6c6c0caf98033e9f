"""mutmut 2's hook file (found on PYTHONPATH, see run.sh): each mutant's test command is the
focused selection for the module it mutates (run_tests.py)."""

from __future__ import annotations

import sys
from typing import Any


def pre_mutation(context: Any) -> None:
    context.config.test_command = (
        f"{sys.executable} tools/mutation/run_tests.py {context.filename}")
