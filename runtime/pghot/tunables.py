"""pghot tunables with the kernel's names, defaults and ranges (mm/pghot.c, pghot-tunables.c).

v7 exposes enabled_sources, target_nid, freq_threshold, promote_freq_window_ms and
promote_rate_limit_MBps as sysctls under /proc/sys/vm (prefix `pghot_`), and
kmigrated_sleep_ms / kmigrated_batch_nr in debugfs (docs/kernel-model.md §e). A bad write is
rejected with EINVAL and leaves the old value; here it raises InputError naming the tunable and
its range, both at construction and on later assignment (`tunables.freq_threshold = 9`).

Choices where versions differ (documented, switchable):
- enabled_sources defaults to 0x1 (hint faults only), the post-v7 value; v7 3/7 and v6 had 0.
  The IBS hwhints source (0x2) is therefore OFF unless asked for.
- ready_rule defaults to "recomputed" (post-v7 default mode rebuilds the word, and precise mode
  always did); "sticky" is v6 default mode. Which one v7 as posted used is open
  (docs/kernel-model.md §b.2).
- mode ("default" | "precise") is CONFIG_PGHOT_PRECISE: fixed once the object exists.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from generated.pghot import PGHOT_NID_MAX
from runtime.errors import InputError
from runtime.pghot.records import MODES, freq_max, latency_max_ms
from runtime.topology import Topology

PGHOT_HINTFAULTS = 0
"""Source id: NUMA-balancing tiering-mode hint faults (enable bit 0x1)."""
PGHOT_HWHINTS = 1
"""Source id: hardware hints, the IBS Memory Profiler in v7 (enable bit 0x2)."""
PGHOT_SRC_MAX = 2
SRC_ENABLED_MASK = (1 << PGHOT_SRC_MAX) - 1
"""PGHOT_SRC_ENABLED_MASK: a write with any other bit set is rejected."""

READY_RULES = ("sticky", "recomputed")
FREQ_WINDOW_MIN_MS = 1000
FREQ_WINDOW_DEFAULT_MS = {"default": 3000, "precise": 5000}
FREQ_WINDOW_MAX_MS = {mode: latency_max_ms(mode) for mode in MODES}
INT_MAX = (1 << 31) - 1
"""proc_dointvec_minmax parses into an int, so larger rate limits are rejected."""
FIXED_RANGES = {
    "enabled_sources": (0, SRC_ENABLED_MASK),
    "target_nid": (0, PGHOT_NID_MAX),
    "promote_rate_limit_MBps": (0, INT_MAX),
    "kmigrated_sleep_ms": (50, 1000),
    "kmigrated_batch_nr": (64, 1024),
}
MODE_RANGES = {
    "freq_threshold": {mode: (1, freq_max(mode)) for mode in MODES},
    "promote_freq_window_ms": {mode: (FREQ_WINDOW_MIN_MS, FREQ_WINDOW_MAX_MS[mode])
                               for mode in MODES},
}
"""Ranges that depend on CONFIG_PGHOT_PRECISE: the record word's freq and time fields."""


def tunable_range(name: str, mode: str | None = None) -> tuple[int, int]:
    """The values a write of `name` accepts in `mode`; with no mode, the widest over modes
    (what the scenario schema and README show; Tunables then applies the mode's own)."""
    if name in FIXED_RANGES:
        return FIXED_RANGES[name]
    by_mode = MODE_RANGES[name]
    if mode is not None:
        return by_mode[mode]
    return min(lo for lo, _ in by_mode.values()), max(hi for _, hi in by_mode.values())


@dataclass(eq=True)
class Tunables:
    """All pghot knobs; field order matters (mode first, ranges of later fields depend on it)."""

    mode: str = "default"
    ready_rule: str = "recomputed"
    enabled_sources: int = 1 << PGHOT_HINTFAULTS
    target_nid: int = 0
    freq_threshold: int = 2
    promote_freq_window_ms: int | None = None
    """None selects the mode's default (3000 ms default mode, 5000 ms precise)."""
    promote_rate_limit_MBps: int = 65536
    kmigrated_sleep_ms: int = 100
    kmigrated_batch_nr: int = 512

    def __post_init__(self) -> None:
        if self.promote_freq_window_ms is None and self.mode in MODES:
            object.__setattr__(self, "promote_freq_window_ms", FREQ_WINDOW_DEFAULT_MS[self.mode])
        for f in fields(self):
            self._check(f.name, getattr(self, f.name))
        object.__setattr__(self, "_live", True)

    def __setattr__(self, name: str, value: Any) -> None:
        """After construction every assignment is validated like a sysctl write: a rejected
        write raises InputError and keeps the old value (the kernel's -EINVAL)."""
        if getattr(self, "_live", False):
            if name == "mode":
                raise InputError("pghot.mode is a build option (CONFIG_PGHOT_PRECISE) and "
                                 "cannot change at run time")
            self._check(name, value)
            topology = getattr(self, "_topology", None)
            if name == "target_nid" and topology is not None:
                _check_target(value, topology)
        object.__setattr__(self, name, value)

    def attach(self, topology: Topology) -> None:
        """Bind to a machine: target_nid must be an online top-tier node now and at every
        later write, as sysctl_target_nid_handler checks it."""
        _check_target(self.target_nid, topology)
        object.__setattr__(self, "_topology", topology)

    @property
    def window_ms(self) -> int:
        """promote_freq_window_ms, always set after construction."""
        assert self.promote_freq_window_ms is not None
        return self.promote_freq_window_ms

    @property
    def sticky_ready(self) -> bool:
        return self.ready_rule == "sticky"

    def source_enabled(self, src: int) -> bool:
        """The static key pghot_src_<source> follows bit src of enabled_sources."""
        return bool(self.enabled_sources >> src & 1)

    def _check(self, name: str, value: Any) -> None:
        if name == "mode":
            if value not in MODES:
                raise InputError(f"pghot.mode = {value!r} is not one of {', '.join(MODES)}")
            return
        if name == "ready_rule":
            if value not in READY_RULES:
                raise InputError(f"pghot.ready_rule = {value!r} is not one of "
                                 f"{', '.join(READY_RULES)}")
            if value == "sticky" and self.mode == "precise":
                raise InputError("pghot.ready_rule = 'sticky' is not available in precise mode "
                                 "(the record word is rebuilt on every update)")
            return
        if isinstance(value, bool) or not isinstance(value, int):
            raise InputError(f"pghot.{name} = {value!r} is not an integer")
        if name == "enabled_sources":
            if value < 0 or value & ~SRC_ENABLED_MASK:
                raise InputError(f"pghot.enabled_sources = {value:#x} has bits beyond "
                                 f"{SRC_ENABLED_MASK:#x} (0x1 hint faults, 0x2 hwhints)")
            return
        if name in MODE_RANGES:
            self._range(name, value, *tunable_range(name, self.mode), mode_dependent=True)
        elif name in FIXED_RANGES:
            self._range(name, value, *tunable_range(name))
        else:
            raise InputError(f"pghot has no tunable {name!r}")

    def _range(self, name: str, value: int, low: int, high: int,
               mode_dependent: bool = False) -> None:
        if not low <= value <= high:
            where = f" ({self.mode} mode)" if mode_dependent else ""
            raise InputError(f"pghot.{name} = {value} is outside {low}..{high}{where}")

    def check_target_nid(self, topology: Topology) -> None:
        """sysctl_target_nid_handler: the node must exist (be online) and be top tier."""
        _check_target(self.target_nid, topology)


def _check_target(nid: int, topology: Topology) -> None:
    nids = {n.nid for n in topology.nodes}
    if nid not in nids:
        raise InputError(f"pghot.target_nid = {nid} is not an online node "
                         f"(nodes: {sorted(nids)})")
    if not topology.is_toptier(nid):
        tops = sorted(n.nid for n in topology.nodes if n.toptier)
        raise InputError(f"pghot.target_nid = {nid} is not a top-tier node "
                         f"(top tier: {tops})")
