"""Tunables: kernel names, defaults per mode, ranges and sysctl-like rejection."""

from __future__ import annotations

import re
from typing import Any

import pytest

from runtime.errors import InputError
from runtime.pghot import Tunables
from runtime.topology import Node, Topology


def make(mode: str, name: str, value: object) -> Tunables:
    kwargs: dict[str, Any] = {"mode": mode, name: value}
    return Tunables(**kwargs)


def test_defaults_follow_the_mode() -> None:
    default = Tunables()
    assert (default.enabled_sources, default.target_nid, default.freq_threshold) == (0x1, 0, 2)
    assert default.window_ms == 3000
    assert (default.promote_rate_limit_MBps, default.kmigrated_sleep_ms,
            default.kmigrated_batch_nr) == (65536, 100, 512)
    assert default.ready_rule == "recomputed"
    assert Tunables(mode="precise").window_ms == 5000


@pytest.mark.parametrize(("mode", "name", "value", "message"), [
    ("default", "freq_threshold", 4, "pghot.freq_threshold = 4 is outside 1..3 (default mode)"),
    ("default", "freq_threshold", 0, "pghot.freq_threshold = 0 is outside 1..3 (default mode)"),
    ("precise", "freq_threshold", 8, "pghot.freq_threshold = 8 is outside 1..7 (precise mode)"),
    ("default", "promote_freq_window_ms", 999, "outside 1000..3968 (default mode)"),
    ("default", "promote_freq_window_ms", 3969, "outside 1000..3968 (default mode)"),
    ("precise", "promote_freq_window_ms", 16384, "outside 1000..16383 (precise mode)"),
    ("default", "kmigrated_sleep_ms", 49, "pghot.kmigrated_sleep_ms = 49 is outside 50..1000"),
    ("default", "kmigrated_sleep_ms", 1001, "outside 50..1000"),
    ("default", "kmigrated_batch_nr", 63, "pghot.kmigrated_batch_nr = 63 is outside 64..1024"),
    ("default", "kmigrated_batch_nr", 1025, "outside 64..1024"),
    ("default", "promote_rate_limit_MBps", -1, "promote_rate_limit_MBps = -1 is outside 0.."),
    ("default", "enabled_sources", 0x4, "pghot.enabled_sources = 0x4 has bits beyond 0x3"),
    ("default", "target_nid", 1024, "pghot.target_nid = 1024 is outside 0..1023"),
    ("default", "kmigrated_batch_nr", True, "is not an integer"),
])
def test_out_of_range_values_are_rejected_with_the_range(mode: str, name: str, value: int,
                                                          message: str) -> None:
    with pytest.raises(InputError, match=re.escape(message)):
        make(mode, name, value)


@pytest.mark.parametrize(("mode", "name", "value"), [
    ("default", "freq_threshold", 3), ("precise", "freq_threshold", 7),
    ("default", "promote_freq_window_ms", 3968), ("precise", "promote_freq_window_ms", 16383),
    ("default", "promote_freq_window_ms", 1000), ("default", "enabled_sources", 0x3),
    ("default", "promote_rate_limit_MBps", 0), ("default", "kmigrated_sleep_ms", 50),
    ("default", "kmigrated_batch_nr", 1024),
])
def test_range_ends_are_accepted(mode: str, name: str, value: int) -> None:
    assert getattr(make(mode, name, value), name) == value


def test_assignment_is_validated_and_a_rejected_write_keeps_the_old_value() -> None:
    tunables = Tunables()
    tunables.freq_threshold = 3
    with pytest.raises(InputError, match=r"freq_threshold = 9 is outside 1\.\.3"):
        tunables.freq_threshold = 9
    assert tunables.freq_threshold == 3
    with pytest.raises(InputError, match="build option"):
        tunables.mode = "precise"
    with pytest.raises(InputError, match="no tunable"):
        tunables.hot_threshold_ms = 1000


def test_sticky_ready_exists_only_in_default_mode() -> None:
    assert Tunables(ready_rule="sticky").sticky_ready
    with pytest.raises(InputError, match="not available in precise mode"):
        Tunables(mode="precise", ready_rule="sticky")
    with pytest.raises(InputError, match="ready_rule = 'lazy'"):
        Tunables(ready_rule="lazy")


def test_target_nid_must_be_an_existing_top_tier_node() -> None:
    topology = Topology((Node(0, "lower", "cxl", 0, 64), Node(2, "top", "dram", 64, 64)), (2,))
    Tunables(target_nid=2).check_target_nid(topology)
    with pytest.raises(InputError, match="target_nid = 0 is not a top-tier node"):
        Tunables(target_nid=0).check_target_nid(topology)
    with pytest.raises(InputError, match="target_nid = 5 is not an online node"):
        Tunables(target_nid=5).check_target_nid(topology)


def test_source_enable_bits() -> None:
    both = Tunables(enabled_sources=0x3)
    assert both.source_enabled(0) and both.source_enabled(1)
    hw_only = Tunables(enabled_sources=0x2)
    assert not hw_only.source_enabled(0) and hw_only.source_enabled(1)
