"""Promotion setups: which hot-page sources a run has and who promotes, as the pghot series
compares them.

- numab0: no NUMA balancing and no IBS: nothing promotes (the baseline);
- numab2: mainline numa_balancing=2 (memory tiering): the task scanner marks PTEs, the hint
  fault promotes in the faulting thread (should_numa_migrate_memory), no pghot;
- pghot-hintfaults: numa_balancing=2 scanning, the fault records into pghot
  (PGHOT_HINTFAULTS) and kmigrated promotes;
- pghot-hwhints: the IBS Memory Profiler driver feeds pghot (PGHOT_HWHINTS); no scanning
  (numa_balancing=0, so a failed promotion wakes no kswapd and kswapd balances at the high
  watermark, as mainline ties both to the tiering mode);
- pghot-both: both sources into one pghot.
pghot's mode (default/precise) is orthogonal. Whatever the setup, kswapd's LRU ages come from
the same sampled stream of memory ops (every profiler.period-th op of each CPU, runtime/
reference_engine.py), so demotion sees the same accesses in every setup; without IBS no such
op reaches a driver.
"""

from __future__ import annotations

from dataclasses import dataclass

from runtime.choices import SETUP_NAMES
from runtime.pghot.tunables import PGHOT_HINTFAULTS, PGHOT_HWHINTS
from runtime.pghot.watermarks import NUMA_BALANCING_MEMORY_TIERING


@dataclass(frozen=True)
class Setup:
    name: str
    ibs: bool
    """The IBS Memory Profiler driver is loaded and feeds pghot."""
    hint_faults: str | None
    """None, "numab2" (the fault promotes) or "pghot" (the fault records into pghot)."""
    numa_balancing: int
    """kernel.numa_balancing (0 or NUMA_BALANCING_MEMORY_TIERING)."""
    sources: int
    """pghot.enabled_sources this setup needs (the scenario may still set its own)."""
    doc: str


SETUPS = {s.name: s for s in (
    Setup("numab0", False, None, 0, 0, "no NUMA balancing, no IBS: nothing is promoted"),
    Setup("numab2", False, "numab2", NUMA_BALANCING_MEMORY_TIERING, 0,
          "mainline NUMA balancing in tiering mode: hint faults promote in the fault"),
    Setup("pghot-hintfaults", False, "pghot", NUMA_BALANCING_MEMORY_TIERING,
          1 << PGHOT_HINTFAULTS, "hint faults feed pghot, kmigrated promotes"),
    Setup("pghot-hwhints", True, None, 0, 1 << PGHOT_HWHINTS,
          "the IBS Memory Profiler feeds pghot, kmigrated promotes"),
    Setup("pghot-both", True, "pghot", NUMA_BALANCING_MEMORY_TIERING,
          1 << PGHOT_HINTFAULTS | 1 << PGHOT_HWHINTS, "hint faults and IBS both feed pghot"),
)}
assert tuple(SETUPS) == SETUP_NAMES  # the command line offers the list in choices.py
DEFAULT_SETUP = "pghot-hwhints"
