"""Where in the program a recording's memory traffic went, over time: the heatmap over
virtual addresses that `ingest` writes beside run's heatmap over physical ones.

A program's address space is sparse (heap near the binary, mmaps near the top), so an even
split of its span would leave almost every row empty. Rows instead split the *touched*
2 MiB regions, in (process, address) order, evenly by rank: the first pass over the
recording finds the regions (`VirtualRegions`), the second counts each region's samples
per timeline tick (`VirtualHeat`). Counted: user samples with a valid data linear address
that missed L3 (the traffic the ground truth weighs); kernel addresses would need their own
axis and the profiler leaves them out by default. `virtual_heatmap_text` and
`plot_virtual_heatmap` write it as report.py writes the physical one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from generated.ibs_mprof import IbsMprofData3
from runtime.perf.ingest import MprofSamples

REGION_SHIFT = 21
"""2 MiB regions: a huge page, fine enough to tell a program's arrays apart."""
_ADDR_BITS = 57 - REGION_SHIFT  # user addresses are below 2**57 (5-level paging)
_PID_MASK = (1 << (63 - _ADDR_BITS)) - 1
I64 = npt.NDArray[np.int64]


def counted(chunk: MprofSamples) -> npt.NDArray[np.bool_]:
    """The samples the heatmap counts: user, L3 miss, a valid user data address."""
    mask: npt.NDArray[np.bool_] = (
        IbsMprofData3.get_lin_addr_valid(chunk.data3) & chunk.l3_miss & ~chunk.kernel
        & (chunk.vaddr < np.uint64(1 << 57)))
    return mask


def region_keys(chunk: MprofSamples, counted: npt.NDArray[np.bool_]) -> I64:
    """One int64 per counted sample: its process in the high bits, its 2 MiB region below,
    so sorting keys sorts by (process, address)."""
    regions = (chunk.vaddr[counted] >> np.uint64(REGION_SHIFT)).astype(np.int64)
    pids = chunk.pid[counted] & _PID_MASK
    keys: I64 = (pids << _ADDR_BITS) | regions
    return keys


def key_parts(key: int) -> tuple[int, int]:
    """(pid, first virtual address) of a region key."""
    return key >> _ADDR_BITS, (key & ((1 << _ADDR_BITS) - 1)) << REGION_SHIFT


class VirtualRegions:
    """First pass: the distinct regions the counted samples touched, merged as they come so
    memory follows the regions, not the samples."""

    def __init__(self) -> None:
        self.keys: I64 = np.zeros(0, dtype=np.int64)
        self.pending: list[I64] = []
        self.pending_size = 0

    def add(self, chunk: MprofSamples) -> None:
        keys = np.unique(region_keys(chunk, counted(chunk)))
        self.pending.append(keys)
        self.pending_size += keys.size
        if self.pending_size > max(self.keys.size, 1 << 16):
            self._merge()

    def _merge(self) -> None:
        self.keys = np.unique(np.concatenate([self.keys, *self.pending]))
        self.pending, self.pending_size = [], 0

    def sorted_keys(self) -> I64:
        self._merge()
        return self.keys


class VirtualHeat:
    """Second pass: samples per (timeline tick, row of regions). Tick i covers times in
    (i * tick_ms, (i + 1) * tick_ms] after the first sample, as run's timeline does."""

    def __init__(self, keys: I64, buckets: int, first_ns: int, tick_ms: float,
                 ticks: int) -> None:
        self.keys = keys
        self.rows = min(buckets, int(keys.size))
        # region of rank r -> row r * rows // n: rows hold equal numbers of regions
        self.row_of_rank = np.arange(keys.size, dtype=np.int64) * self.rows // max(keys.size, 1)
        self.first_ns = first_ns
        self.tick_ms = tick_ms
        self.counts = np.zeros((max(ticks, 1), max(self.rows, 1)), dtype=np.int64)

    def add(self, chunk: MprofSamples) -> None:
        mask = counted(chunk)
        keys = region_keys(chunk, mask)
        if not keys.size or not self.keys.size:
            return
        rank = np.searchsorted(self.keys, keys)
        known = (rank < self.keys.size) & (self.keys[np.minimum(rank, self.keys.size - 1)]
                                           == keys)
        t_ms = (chunk.time_ns[mask][known].astype(np.int64) - self.first_ns) / 1e6
        tick = np.clip(np.ceil(t_ms / self.tick_ms).astype(np.int64) - 1, 0,
                       self.counts.shape[0] - 1)
        np.add.at(self.counts, (tick, self.row_of_rank[rank[known]]), 1)

    def labels(self) -> list[tuple[int, int]]:
        """(pid, first virtual address) of each row's first region."""
        firsts = np.searchsorted(self.row_of_rank, np.arange(self.rows))
        return [key_parts(int(self.keys[i])) for i in firsts]

    def result(self, ticks: int) -> dict[str, object]:
        """The report's "virtual_heatmap": row labels and, for each of the timeline's
        `ticks` rows, the counts per row (a sample past the last tick counts in it)."""
        counts = self.counts[:, :self.rows]
        if ticks and counts.shape[0] > ticks:
            counts = np.vstack([counts[:ticks - 1], counts[ticks - 1:].sum(axis=0)])
        return {"region_bytes": 1 << REGION_SHIFT, "regions": int(self.keys.size),
                "rows": [[pid, addr] for pid, addr in self.labels()],
                "counts": counts[:ticks].tolist()}



def virtual_heatmap_text(result: dict[str, Any]) -> str:
    """`time_ns pid vaddr freq` lines (every tick x row, zeros included), damo's layout with
    the process added: time_ns the tick's end, vaddr where the row's first region starts."""
    heat = result["virtual_heatmap"]
    lines: list[str] = []
    for tick, counts in zip(result["timeline"], heat["counts"], strict=False):
        t_ns = round(tick["t_ms"] * 1_000_000)
        lines += [f"{t_ns} {pid} {addr:#x} {int(freq)}"
                  for (pid, addr), freq in zip(heat["rows"], counts, strict=True)]
    return "".join(line + "\n" for line in lines)


def plot_virtual_heatmap(result: dict[str, Any], path: Path) -> None:
    """L3-miss samples per row of touched virtual regions and tick, rows labelled with
    their process and first address."""
    from matplotlib.colors import PowerNorm

    from runtime.report import figure, tick_edges_s

    heat = result["virtual_heatmap"]
    title = "Where the program's memory traffic went: L3-miss samples by virtual address"
    with figure(path, title) as fig:
        ax = fig.add_subplot()
        counts = np.asarray(heat["counts"], dtype=np.float64).T
        if counts.size:
            x = np.asarray(tick_edges_s(result)[:counts.shape[1] + 1], dtype=np.float64)
            y = np.arange(counts.shape[0] + 1, dtype=np.float64)
            norm = PowerNorm(gamma=0.5, vmin=0.0, vmax=max(float(counts.max()), 1.0))
            mesh = ax.pcolormesh(x, y, counts, cmap="viridis", shading="flat", norm=norm)
            fig.colorbar(mesh, ax=ax, label="samples per row per tick (square-root scale)")
            step = max(1, len(heat["rows"]) // 16)
            marks = range(0, len(heat["rows"]), step)
            ax.set_yticks([m + 0.5 for m in marks])
            ax.set_yticklabels([f"{heat['rows'][m][0]}:{heat['rows'][m][1]:#x}" for m in marks],
                               fontsize=7)
        else:
            ax.text(0.5, 0.5, "no user L3-miss sample with a data address", ha="center",
                    transform=ax.transAxes)
        ax.set_xlabel("recording time (s)")
        ax.set_ylabel(f"touched 2 MiB regions, pid:address ({heat['regions']} regions)")
