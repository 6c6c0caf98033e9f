"""The allocator setting of the simulating commands: freed blocks stay in the process."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

CHILD = """
import json, sys
import numpy as np
from runtime.allocator import keep_freed_memory
applied = keep_freed_memory() if sys.argv[1] == "tuned" else None

def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024

block = np.ones(16 << 17)  # 16 MiB, every page touched
before = rss()
del block
print(json.dumps({"applied": applied, "released": before - rss()}))
"""


def child(mode: str) -> dict[str, int]:
    out = subprocess.run([sys.executable, "-c", CHILD, mode], capture_output=True, text=True,
                         check=True)
    result: dict[str, int] = json.loads(out.stdout)
    return result


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc on Linux")
def test_a_freed_block_stays_for_reuse_only_when_tuned() -> None:
    default, tuned = child("default"), child("tuned")
    assert default["released"] > 12 << 20  # glibc unmaps a freed 16 MiB block at once
    assert tuned["applied"] and tuned["released"] < 4 << 20  # kept in the heap
