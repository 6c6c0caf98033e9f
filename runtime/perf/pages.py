"""pages.csv rows: per page pghot made READY or kmigrated promoted, who touched it and
through which mapping, from the recording's samples and MMAP/COMM records.

A page (PFN) is named by its first sample: that sample's process and data address, looked
up in the MMAP records (runtime/perf/sideband.py) as file + offset, or [unknown] without a
mapping that covers it. The simulation supplies the times (ms of the run, -1: never).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from runtime.perf.sideband import AddressLookup

I64 = npt.NDArray[np.int64]
U64 = npt.NDArray[np.uint64]
HEADER = ("pfn", "nid", "first_ready_ms", "promoted_ms", "samples", "pid", "comm", "vaddr",
          "mapping", "offset")


def page_rows(pages: I64, first_ready_ms: I64, promoted_ms: I64, nid: I64,
              sample_pfn: I64, sample_pid: I64, sample_vaddr: U64, lookup: AddressLookup,
              comms: dict[int, str]) -> list[tuple[object, ...]]:
    """One row per page in `pages` (HEADER order); sample_* are every sample's PFN, pid and
    data address in time order (what counted the page's samples)."""
    order = np.argsort(sample_pfn, kind="stable")
    sorted_pfn = sample_pfn[order]
    first = np.searchsorted(sorted_pfn, pages, side="left")
    count = np.searchsorted(sorted_pfn, pages, side="right") - first
    seen = count > 0
    row = order[np.minimum(first, max(order.size - 1, 0))] if order.size else first
    pid = np.where(seen, sample_pid[row] if order.size else -1, -1)
    vaddr = np.where(seen, sample_vaddr[row] if order.size else 0, 0).astype(np.uint64)
    return counted_rows(pages, first_ready_ms, promoted_ms, nid, count, pid, vaddr, lookup,
                        comms)


def counted_rows(pages: I64, first_ready_ms: I64, promoted_ms: I64, nid: I64, count: I64,
                 pid: I64, vaddr: U64, lookup: AddressLookup,
                 comms: dict[int, str]) -> list[tuple[object, ...]]:
    """One row per page in `pages` (HEADER order) from per-page figures a streaming pass
    kept: its sample count and its first sample's pid and data address (count 0: never
    sampled, no process or mapping named)."""
    seen = count > 0
    names, offsets = lookup.describe(pid, vaddr)
    return [(int(p), int(n), int(r), int(m), int(c), int(i), comms.get(int(i), ""),
             f"{int(v):#x}", name if s else "", f"{int(o):#x}" if s else "")
            for p, n, r, m, c, i, v, name, o, s in zip(
                pages.tolist(), nid.tolist(), first_ready_ms.tolist(), promoted_ms.tolist(),
                count.tolist(), pid.tolist(), vaddr.tolist(), names, offsets.tolist(),
                seen.tolist(), strict=True)]
