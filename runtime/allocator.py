"""Keep freed memory in the process for reuse (glibc malloc), for the simulating commands.

The fast engine makes and drops arrays of hundreds of KiB to a few MiB per block. With
glibc's defaults such a block is mmap'd when allocated and unmapped when freed, or the heap
top is trimmed, so the next array of that size faults every page in again: a measurable
share of a run (64-CPU microbench, medians of 6 interleaved runs: 2.88 -> 3.30 M samples/s
with these settings, 64-CPU gups +2%). Raising the mmap and trim thresholds keeps freed
blocks for reuse; at most TRIM_THRESHOLD of free memory stays resident. Set by `ibs-mprof
run` and `bench` (a process-wide setting, so not on import); elsewhere a no-op.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3  # glibc's mallopt parameters
MMAP_THRESHOLD = 32 << 20  # glibc's largest allowed value on 64-bit
TRIM_THRESHOLD = 256 << 20
TOP_PAD = 16 << 20


def keep_freed_memory() -> bool:
    """Apply the settings through mallopt; False where there is no glibc malloc to tune."""
    if not sys.platform.startswith("linux"):
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others have no mallopt
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return all(mallopt(param, value) == 1 for param, value in (
        (M_MMAP_THRESHOLD, MMAP_THRESHOLD), (M_TRIM_THRESHOLD, TRIM_THRESHOLD),
        (M_TOP_PAD, TOP_PAD)))
