"""Scenario files: what `ibs-mprof run` simulates. Schema, defaults, validation, overrides.

A scenario is YAML with the sections of `SCHEMA`; every key is optional and defaults to the
embedded default scenario (the schema defaults: a GUPS-style hot set on a DRAM + CXL machine,
everything starting on CXL). Unknown keys, wrong types and out-of-range values are errors
naming the file, line and key. `--set section.key=value` overrides apply before validation
(the value is read as a YAML scalar).
"""

from __future__ import annotations

import copy
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from generated.ibs_mprof import IbsMprofCtl
from runtime.choices import DRIVER_VARIANTS, ENGINES, SETUP_NAMES
from runtime.decode import shown
from runtime.driver import DriverConfig
from runtime.errors import InputError
from runtime.memory import MIB_PAGES
from runtime.numab.tunables import RANGES as NUMAB_RANGES
from runtime.numab.tunables import NumabTunables
from runtime.pghot.tunables import Tunables, tunable_range
from runtime.pghot.watermarks import SCALE_FACTOR_DEFAULT, SCALE_FACTOR_RANGE
from runtime.setups import DEFAULT_SETUP, SETUPS
from runtime.topology import Topology
from safeio.inputs import reason
from safeio.yamlsafe import YamlProblem, YList, YMap, load_yaml, read_yaml_file


@dataclass(frozen=True)
class Key:
    """One scenario key: type, default, allowed range or choices, and what it means."""

    kind: type
    default: Any
    doc: str
    lo: float | None = None
    hi: float | None = None
    choices: tuple[Any, ...] | None = None
    nullable: bool = False
    kinds: tuple[str, ...] | None = None  # workload keys: the kinds that use it
    step: int | None = None  # an int key's values are multiples of this


def _period_bits() -> list[int]:
    """The bits of profiler.period IBS_MPROF_CTL can hold (its split MaxCnt), from the spec."""
    bits = []
    for bit in range(next(f.width for f in IbsMprofCtl.FIELDS if f.name == "period")):
        try:
            IbsMprofCtl(period=1 << bit)
        except ValueError:
            continue
        bits.append(bit)
    return bits


def _span(name: str, mode: str) -> str:
    low, high = tunable_range(name, mode)
    return f"{low} .. {high}"


_PERIOD_STEP = 1 << min(_period_bits())
_PERIOD_MAX = sum(1 << bit for bit in _period_bits())
"""Periods the hardware holds: multiples of 16 up to 2^27 - 16 (bits 3:0 are always zero)."""
WORKLOAD_KINDS = ("uniform", "gups-hot", "gups-shift", "zipf", "scan", "microbench", "phased",
                  "lackey")
_GUPS = ("gups-hot", "gups-shift")
_SYNTH = ("uniform", "gups-hot", "gups-shift", "zipf", "scan")
_PER_RUN = ("region_mib", "mem_op_fraction", "load_fraction", "kernel_fraction")
"""Workload keys of the whole run (one region, one op mix): not settable per phase."""

SCHEMA: dict[str, Any] = {
    "seed": Key(int, 1, "random seed; same seed + scenario = identical report", 0, 2**63 - 1),
    "duration_s": Key(float, 8.0, "simulated seconds", 0.001, 3600),
    "engine": Key(str, "fast", "which engine runs the pipeline: the event-by-event "
                  "reference or the numpy fast engine (held equal to it)",
                  choices=ENGINES),
    "setup": Key(str, DEFAULT_SETUP, "promotion setup: " + "; ".join(
        f"{s.name}: {s.doc}" for s in SETUPS.values()), choices=SETUP_NAMES),
    "machine": {
        "dram_nodes": Key(int, 1, "top-tier DRAM nodes (each has CPUs)", 1, 64),
        "cxl_nodes": Key(int, 1, "lower-tier CXL nodes (CPU-less)", 1, 64),
        "cpus_per_dram_node": Key(int, 2, "CPUs on each DRAM node", 1, 1024),
        "dram_mib": Key(int, 2048, "memory of each DRAM node, MiB", 128, 1 << 24),
        "cxl_mib": Key(int, 4096, "memory of each CXL node, MiB", 128, 1 << 24),
        "ops_per_cpu_per_s": Key(float, 1e9, "dispatched ops per CPU-second", 1e3, 1e11),
        "cycles_per_op": Key(int, 1, "cycles per op, for CntCtl=0 (cycle counting)", 1, 1000),
        "watermark_scale_factor": Key(int, SCALE_FACTOR_DEFAULT, "vm.watermark_scale_factor: "
                                      "watermark steps in 1/10000 of a node (min from "
                                      "min_free_kbytes)", *SCALE_FACTOR_RANGE),
    },
    "workload": {
        "kind": Key(str, "gups-hot", "workload model", choices=WORKLOAD_KINDS),
        "region_mib": Key(int, 1024, "size of the workload's memory, MiB", 1, 1 << 22,
                          kinds=WORKLOAD_KINDS[:-1]),
        "mem_op_fraction": Key(float, 0.3, "fraction of ops that access memory", 0.0, 1.0,
                               kinds=(*_SYNTH, "phased")),
        "load_fraction": Key(float, 0.5, "fraction of memory ops that are loads", 0.0, 1.0,
                             kinds=(*_SYNTH, "phased")),
        "kernel_fraction": Key(float, 0.0, "fraction of ops with a kernel RIP (bit 63)", 0.0,
                               1.0, kinds=(*_SYNTH, "microbench", "phased")),
        "placement": Key(str, "cxl", "where pages start: cxl, dram (spills to cxl), interleave",
                         choices=("cxl", "dram", "interleave")),
        "hot_fraction": Key(float, 0.0625, "hot set size / region", 1e-6, 1.0, kinds=_GUPS),
        "hot_access_fraction": Key(float, 0.9, "fraction of accesses to the hot set", 0.0, 1.0,
                                   kinds=_GUPS),
        "hot_offset_fraction": Key(float, 0.25, "where the hot set starts / region", 0.0, 1.0,
                                   kinds=_GUPS),
        "shift_at_s": Key(float, 4.0, "gups-shift: when the hot set moves", 0.0, 3600,
                          kinds=("gups-shift",)),
        "shift_fraction": Key(float, 1.0, "gups-shift: fraction of the hot set that moves",
                              0.0, 1.0, kinds=("gups-shift",)),
        "theta": Key(float, 0.99, "zipf exponent", 0.0, 5.0, kinds=("zipf",)),
        "scan_mib_per_s": Key(float, 4096.0, "scan speed per CPU, MiB/s", 1.0, 1e6,
                              kinds=("scan",)),
        "phases": Key(list, None, "phased: list of {kind, duration_s, ...}", nullable=True,
                      kinds=("phased",)),
        "trace": Key(str, None, "lackey: path of a valgrind --tool=lackey --trace-mem=yes log",
                     nullable=True, kinds=("lackey",)),
    },
    "llc": {
        "size_mib": Key(float, 32.0, "last-level cache size, MiB", 0.0625, 4096),
        "line_bytes": Key(int, 64, "cache line size", 16, 4096),
    },
    "profiler": {
        "period": Key(int, 10000, "sample period (ops, or cycles with cnt_ctl false); "
                      "IBS_MPROF_CTL's split MaxCnt holds its bits 26:4 only",
                      _PERIOD_STEP, _PERIOD_MAX, step=_PERIOD_STEP),
        "cnt_ctl": Key(bool, True, "count dispatched ops (true) or cycles (false)"),
        "l3_miss_only": Key(bool, True, "sample only ops that missed L3"),
        "exclude_kernel": Key(bool, True, "drop samples with RIP bit 63 set"),
        "exclude_user": Key(bool, False, "drop samples with RIP bit 63 clear"),
    },
    "driver": {
        "variant": Key(str, "v7", "driver model: the seed (v7) or the repaired one",
                       choices=DRIVER_VARIANTS),
        "work_latency_ms": Key(float, 1.0, "irq_work -> per-CPU work run delay", 0.0, 10000),
    },
    "pghot": {
        "mode": Key(str, "default", "record mode", choices=("default", "precise")),
        "ready_rule": Key(str, "recomputed", "READY bit rule", choices=("sticky", "recomputed")),
        "enabled_sources": Key(int, None, "bit 0 hint faults, bit 1 hwhints (IBS); null = "
                               "what the setup feeds", *tunable_range("enabled_sources"),
                               nullable=True),
        "target_nid": Key(int, 0, "promotion target (default mode)",
                          *tunable_range("target_nid")),
        "freq_threshold": Key(int, 2, "accesses in the window to become ready; default mode "
                              f"allows {_span('freq_threshold', 'default')}",
                              *tunable_range("freq_threshold")),
        "promote_freq_window_ms": Key(int, None, "window; null = 3000 default / 5000 "
                                      "precise; default mode's time buckets hold "
                                      f"{_span('promote_freq_window_ms', 'default')}",
                                      *tunable_range("promote_freq_window_ms"), nullable=True),
        "promote_rate_limit_MBps": Key(int, 65536, "promotion rate limit (the sysctl is an "
                                       "int)", *tunable_range("promote_rate_limit_MBps")),
    },
    "kmigrated": {
        "sleep_ms": Key(int, 100, "kmigrated poll interval",
                        *tunable_range("kmigrated_sleep_ms")),
        "batch_nr": Key(int, 512, "migration batch size (a batch holds batch_nr + 1)",
                        *tunable_range("kmigrated_batch_nr")),
    },
    "numab": {
        "scan_delay_ms": Key(int, 1000, "first scan after this long (numa_balancing_scan_"
                             "delay_ms)", *NUMAB_RANGES["scan_delay_ms"]),
        "scan_period_min_ms": Key(int, 1000, "shortest scan period",
                                  *NUMAB_RANGES["scan_period_min_ms"]),
        "scan_period_max_ms": Key(int, 60000, "longest scan period (and the hot threshold's "
                                  "adjustment period)", *NUMAB_RANGES["scan_period_max_ms"]),
        "scan_size_mb": Key(int, 256, "MB of address space marked per scan pass",
                            *NUMAB_RANGES["scan_size_mb"]),
        "hot_threshold_ms": Key(int, 1000, "numab2: promote a page whose hint-fault latency is "
                                "below this (auto-adjusted)", *NUMAB_RANGES["hot_threshold_ms"]),
        "promote_rate_limit_MBps": Key(int, 65536, "numab2: promotion rate limit",
                                       *NUMAB_RANGES["promote_rate_limit_MBps"]),
    },
    "demotion": {
        "enabled": Key(bool, True, "kswapd-like demotion when the top tier runs short"),
    },
    "metrics": {
        "timeline_ms": Key(float, 100.0, "time-series resolution", 1.0, 60000),
        "hot_rate_ratio": Key(float, 2.0, "a page is hot if its L3-miss rate is this many times "
                              "the mean page rate", 1.0, 1e9),
        "hot_rate_per_s": Key(float, None, "or: hot if at least this many L3-miss accesses/s",
                              0.0, 1e12, nullable=True),
        "nmi_cost_us": Key(float, 2.0, "modelled CPU cost of one NMI", 0.0, 1e6),
        "record_cost_us": Key(float, 0.5, "modelled CPU cost of one pghot_record_access", 0.0,
                              1e6),
        "migrate_cost_us": Key(float, 10.0, "modelled CPU cost of migrating one page", 0.0, 1e6),
        "pte_update_cost_us": Key(float, 0.15, "modelled CPU cost of one PTE a NUMA scan pass "
                                  "changes (with its share of the TLB flush)", 0.0, 1e6),
        "hint_fault_cost_us": Key(float, 1.0, "modelled CPU cost of one NUMA hint fault", 0.0,
                                  1e6),
    },
}


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e13 else f"{x:g}"


def _allowed(item: Key) -> str:
    """The values a key allows, as the README table and error messages say it."""
    if item.choices is not None:
        return " / ".join(str(c) for c in item.choices)
    if item.lo is not None and item.hi is not None:
        allowed = f"{_num(item.lo)} .. {_num(item.hi)}"
        return allowed + (f", a multiple of {item.step}" if item.step else "")
    return item.kind.__name__


def rule(item: Key) -> str:
    """What a key must be, for an error message: 'an int in 1 .. 64', 'one of a, b'."""
    if item.choices is not None:
        return "one of " + ", ".join(str(c) for c in item.choices)
    article = {int: "an int", float: "a float", bool: "true or false", list: "a list",
               str: "a string"}.get(item.kind, item.kind.__name__)
    if item.lo is not None and item.hi is not None:
        return f"{article} in {_bounds(item)}"
    return article + (" or null" if item.nullable else "")


def schema_markdown() -> str:
    """The scenario keys as a Markdown table (README embeds it; a test keeps them in step)."""
    rows = ["| key | default | allowed | meaning |", "|---|---|---|---|"]

    def walk(schema: dict[str, Any], prefix: str) -> None:
        for name, item in schema.items():
            if isinstance(item, dict):
                walk(item, f"{prefix}{name}.")
                continue
            allowed = _allowed(item)
            if item.kinds is not None and len(item.kinds) < len(WORKLOAD_KINDS):
                allowed += f" ({', '.join(item.kinds)})"
            default = "null" if item.default is None else str(item.default).lower() \
                if isinstance(item.default, bool) else _num(item.default) \
                if isinstance(item.default, float) else str(item.default)
            rows.append(f"| `{prefix}{name}` | {default} | {allowed} | {item.doc} |")

    walk(SCHEMA, "")
    return "\n".join(rows)


def default_scenario_yaml() -> str:
    """The embedded default scenario, as a YAML file a user can start from (workload keys
    that its kind does not use are left out)."""
    tree = _default_tree(SCHEMA)
    kind = tree["workload"]["kind"]
    keys = SCHEMA["workload"]
    tree["workload"] = {k: v for k, v in tree["workload"].items()
                        if keys[k].kinds is None or kind in keys[k].kinds}
    return yaml.safe_dump(tree, sort_keys=False)


def _default_tree(schema: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, item in schema.items():
        out[name] = _default_tree(item) if isinstance(item, dict) else item.default
    return out


class _Where:
    """Source positions for error messages: file name and the line of each key path, or the
    --set option that gave a key (or a key above it) its value."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.lines: dict[str, int] = {}
        self.overridden: set[str] = set()

    def at(self, path: str) -> str:
        if any(path == key or path.startswith((key + ".", key + "[")) for key in self.overridden):
            return "--set"
        line = self.lines.get(path)
        return f"{self.label}:{line}" if line else self.label


def _collect_lines(node: Any, prefix: str, where: _Where) -> None:
    if isinstance(node, YMap):
        for key, value in node.items():
            path = f"{prefix}{key}"
            where.lines[path] = node.key_lines[key]
            _collect_lines(value, path + ".", where)
    elif isinstance(node, YList):
        for index, (value, line) in enumerate(zip(node, node.item_lines, strict=True)):
            path = f"{prefix[:-1]}[{index}]"
            where.lines[path] = line
            _collect_lines(value, path + ".", where)


_FLOAT_TEXT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
"""A float written as PyYAML leaves it a string (1e9: YAML 1.1 wants a dot), ASCII only."""


def _value_text(value: Any) -> str:
    """A value as an error message shows it: short, whatever the input held (str() of an int
    of more than 4300 digits would raise)."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10 ** 40:
        return f"a number of about {int(value.bit_length() * math.log10(2)) + 1} digits"
    if isinstance(value, str):
        return shown(value)
    return str(value) if isinstance(value, (int, float)) else shown(repr(value))[1:-1]


def _bounds(key: Key) -> str:
    assert key.lo is not None and key.hi is not None
    lo, hi = (int(key.lo), int(key.hi)) if key.kind is int else (key.lo, key.hi)
    text = f"{lo:g}..{hi:g}" if key.kind is float else f"{lo}..{hi}"
    return text + (f" (a multiple of {key.step})" if key.step else "")


def _check_value(key: Key, value: Any, path: str, where: _Where) -> Any:
    if value is None and key.nullable:
        return None
    if key.kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if key.kind is float and isinstance(value, str) and _FLOAT_TEXT.fullmatch(value.strip()):
        value = float(value)  # not float() on any text: it reads other scripts' digits too
    if key.kind is not bool and isinstance(value, bool) or not isinstance(value, key.kind):
        raise InputError(f"{where.at(path)}: {path} must be {rule(key)}, got "
                         f"{_value_text(value)}")
    if key.choices is not None and value not in key.choices:
        raise InputError(f"{where.at(path)}: {path} must be one of "
                         f"{', '.join(map(str, key.choices))}; got {_value_text(value)}")
    if key.lo is not None and key.hi is not None and isinstance(value, (int, float)) and \
            not key.lo <= value <= key.hi:
        raise InputError(f"{where.at(path)}: {path} = {_value_text(value)} is outside "
                         f"{_bounds(key)}")
    if key.step and isinstance(value, int) and value % key.step:
        raise InputError(f"{where.at(path)}: {path} = {value} is not a multiple of {key.step}; "
                         f"{path} must be {rule(key)}")
    return value


def _validate(schema: dict[str, Any], data: Any, path: str, where: _Where) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise InputError(f"{where.at(path)}: {path or 'scenario'} must be a mapping")
    out = {}
    for name, value in data.items():
        sub = f"{path}.{name}" if path else name
        if name not in schema:
            raise InputError(f"{where.at(sub)}: unknown key {_key_text(sub)}; expected one of "
                             f"{', '.join(sorted(schema))}")
        item = schema[name]
        out[name] = (_validate(item, value, sub, where) if isinstance(item, dict)
                     else _check_value(item, value, sub, where))
    return out


def _key_text(path: str) -> str:
    """A key path as typed, or its start and length when it is longer than a real key."""
    return path if len(path) <= 60 else f"{path[:40]}... ({len(path)} characters)"


def _merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for name, value in top.items():
        out[name] = _merge(out[name], value) if isinstance(value, dict) and isinstance(
            out.get(name), dict) else value
    return out


def apply_override(data: dict[str, Any], assignment: str) -> str:
    """`section.key=value` into a raw scenario tree (validated later with everything else);
    returns the key's path."""
    if "=" not in assignment:
        raise InputError(f"--set {shown(assignment)}: expected section.key=value")
    path, text = assignment.split("=", 1)
    if not path.strip():
        raise InputError(f"--set {shown(assignment)}: no key before '='; expected "
                         "section.key=value")
    name = _key_text(path)
    parts = path.strip().split(".")
    schema: Any = SCHEMA
    node = data
    for i, part in enumerate(parts):
        if not isinstance(schema, dict):
            raise InputError(f"--set {name}: {'.'.join(parts[:i])} is a key, not a section")
        if part not in schema:
            raise InputError(f"--set {name}: unknown key {_key_text('.'.join(parts[:i + 1]))}; "
                             f"expected one of {', '.join(schema)}")
        schema = schema[part]
        if i < len(parts) - 1:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise InputError(f"--set {name}: {'.'.join(parts[:i + 1])} is not a section")
    if isinstance(schema, dict):
        raise InputError(f"--set {name}: is a section; set one of its keys")
    try:  # the file's rules: no tags, anchors or deep nesting (a list value is for phases)
        value = _plain(load_yaml(text)) if text.strip() else None
    except YamlProblem as exc:
        raise InputError(f"--set {name}: cannot read value {shown(text)}: {exc.message}; "
                         f"{name} must be {rule(schema)}") from None
    node[parts[-1]] = value
    return ".".join(parts)


def load_scenario(path: Path | None, overrides: list[str]) -> dict[str, Any]:
    """The validated scenario tree: defaults <- file <- --set overrides."""
    label = str(path) if path else "<default scenario>"
    text = ""
    if path is not None:
        try:
            text = read_yaml_file(path).decode("utf-8")
        except OSError as exc:
            raise InputError(f"{path}: cannot read scenario: {reason(exc)}") from None
        except UnicodeDecodeError as exc:
            raise InputError(f"{path}: cannot read scenario: not UTF-8 text ({exc})") from None
        except YamlProblem as exc:
            raise InputError(f"{label}:{exc.line}: {exc.message}") from None
    try:
        raw = load_yaml(text)
    except YamlProblem as exc:
        raise InputError(f"{label}:{exc.line}: {_yaml_problem(exc)}") from None
    if raw is None:
        raw = YMap()
        raw.line, raw.key_lines = 1, {}
    where = _Where(label)
    _collect_lines(raw, "", where)
    tree = _plain(raw)
    if not isinstance(tree, dict):
        raise InputError(f"{label}:1: a scenario must be a mapping of sections")
    for assignment in overrides:
        where.overridden.add(apply_override(tree, assignment))
    checked = _validate(SCHEMA, tree, "", where)
    scenario = _merge(_default_tree(SCHEMA), checked)
    _check_workload(scenario, checked.get("workload", {}), where)
    _check_pghot(scenario, where)
    trace = scenario["workload"].get("trace")
    if trace and path is not None and not Path(trace).is_absolute():
        scenario["workload"]["trace"] = str(path.parent / trace)  # relative to the scenario
    return scenario


def _yaml_problem(exc: YamlProblem) -> str:
    """A YAML problem inside a value names the key, and the key's rule when it has one."""
    if not exc.path:
        return exc.message
    name = "".join(f"[{step}]" if isinstance(step, int) else f".{step}"
                   for step in exc.path).lstrip(".")
    item: Any = SCHEMA
    for step in exc.path:
        item = item.get(step) if isinstance(item, dict) and isinstance(step, str) else None
    text = f"{_key_text(name)}: {exc.message}"
    return text + (f"; {name} must be {rule(item)}" if isinstance(item, Key) else "")


def _plain(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    return node


def _check_workload(scenario: dict[str, Any], given: dict[str, Any], where: _Where) -> None:
    """Kind-specific rules: which keys a kind uses, phases, traces, impossible machines."""
    wl = scenario["workload"]
    kind = wl["kind"]
    for name in given:
        key = SCHEMA["workload"][name]
        if key.kinds is not None and kind not in key.kinds:
            raise InputError(f"{where.at('workload.' + name)}: workload.{name} is not used by "
                             f"kind {kind} (only by {', '.join(key.kinds)})")
    if kind == "phased":
        _check_phases(wl, where)
    if kind == "lackey" and not wl.get("trace"):
        raise InputError(f"{where.at('workload.kind')}: workload kind lackey needs "
                         "workload.trace (a lackey log)")
    machine = scenario["machine"]
    if kind != "lackey":
        total = machine["dram_nodes"] * machine["dram_mib"] + machine["cxl_nodes"] * \
            machine["cxl_mib"]
        where_on = {"cxl": machine["cxl_nodes"] * machine["cxl_mib"], "dram": total,
                    "interleave": total}[wl["placement"]]
        if wl["region_mib"] > where_on:
            raise InputError(f"{where.at('workload.region_mib')}: workload.region_mib = "
                             f"{wl['region_mib']} does not fit: placement {wl['placement']} has "
                             f"{where_on} MiB")
    if kind in _GUPS and wl["hot_fraction"] * wl["region_mib"] * MIB_PAGES < 1:
        raise InputError(f"{where.at('workload.hot_fraction')}: the hot set is smaller than "
                         "one page")


def numab_tunables_of(scenario: dict[str, Any]) -> NumabTunables:
    """The NUMA-balancing sysctls for the scenario's setup (mode from the setup)."""
    return NumabTunables(mode=SETUPS[scenario["setup"]].numa_balancing, **scenario["numab"])


def tunables_of(scenario: dict[str, Any]) -> Tunables:
    """The pghot tunables a validated scenario asks for (pghot and kmigrated sections)."""
    p = scenario["pghot"]
    sources = p["enabled_sources"]
    return Tunables(mode=p["mode"], ready_rule=p["ready_rule"],
                    enabled_sources=SETUPS[scenario["setup"]].sources if sources is None
                    else sources, target_nid=p["target_nid"],
                    freq_threshold=p["freq_threshold"],
                    promote_freq_window_ms=p["promote_freq_window_ms"],
                    promote_rate_limit_MBps=p["promote_rate_limit_MBps"],
                    kmigrated_sleep_ms=scenario["kmigrated"]["sleep_ms"],
                    kmigrated_batch_nr=scenario["kmigrated"]["batch_nr"])


def checked_tunables(scenario: dict[str, Any], topology: Topology) -> Tunables:
    """tunables_of, with target_nid checked online and top tier on this machine (the sysctl
    handler's check), as one scenario error line."""
    tunables = tunables_of(scenario)
    try:
        tunables.check_target_nid(topology)
    except InputError as exc:
        raise InputError(f"scenario: {exc}") from None
    return tunables


def driver_config_of(scenario: dict[str, Any]) -> DriverConfig:
    """What the driver programs into each CPU's profiler (the profiler section)."""
    prof = scenario["profiler"]
    return DriverConfig(period=prof["period"], l3_miss_only=prof["l3_miss_only"],
                        cnt_ctl=prof["cnt_ctl"], exclude_kernel=prof["exclude_kernel"],
                        exclude_user=prof["exclude_user"])


def _check_pghot(scenario: dict[str, Any], where: _Where) -> None:
    """Rules across keys (mode-dependent ranges, the scan period's bounds), checked by the
    pghot and NUMA-balancing models themselves, located in the file."""
    for section, model in (("pghot", tunables_of), ("numab", numab_tunables_of)):
        try:
            model(scenario)
        except InputError as exc:
            text = str(exc)
            key = text.split(" ", 1)[0] if text.startswith(f"{section}.") else section
            raise InputError(f"{where.at(key)}: {text}") from None


def _check_phases(wl: dict[str, Any], where: _Where) -> None:
    phases = wl.get("phases")
    if not phases:
        raise InputError(f"{where.at('workload.kind')}: workload kind phased needs "
                         "workload.phases: a list of {kind, duration_s, ...}")
    allowed = {"kind", "duration_s"} | {
        k for k, key in SCHEMA["workload"].items()
        if key.kinds and set(key.kinds) & set(_SYNTH) and k not in _PER_RUN}
    for i, phase in enumerate(phases):
        path = f"workload.phases[{i}]"
        if not isinstance(phase, dict):
            raise InputError(f"{where.at(path)}: {path} must be a mapping")
        for name in phase:
            if name not in allowed:
                raise InputError(f"{where.at(path + '.' + name)}: unknown key {path}.{name}; "
                                 f"expected one of {', '.join(sorted(allowed))}")
        if phase.get("kind") not in _SYNTH:
            raise InputError(f"{where.at(path)}: {path}.kind must be one of {', '.join(_SYNTH)}")
        merged: dict[str, Any] = {n: SCHEMA["workload"][n].default for n in allowed
                                  if n in SCHEMA["workload"]}
        merged.update(phase)
        for name, value in phase.items():
            key = SCHEMA["workload"].get(name) if name != "duration_s" else \
                Key(float, None, "", 0.001, 3600)
            if key is not None:
                merged[name] = _check_value(key, value, f"{path}.{name}", where)
        if "duration_s" not in phase:
            raise InputError(f"{where.at(path)}: {path} needs duration_s")
        if merged["kind"] == "gups-shift" and merged["shift_at_s"] >= merged["duration_s"]:
            raise InputError(f"{where.at(path + '.shift_at_s')}: {path}.shift_at_s = "
                             f"{merged['shift_at_s']} must fall inside the phase (duration_s "
                             f"{merged['duration_s']}); it counts from the phase's start")
        phases[i] = merged
