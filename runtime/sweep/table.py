"""The results table: one row per point, in point order, as results.csv and results.parquet.

Columns: `point` (its index in the grid), each key the grid varies (dotted names, the value
from the validated scenario), the headline metrics of its report.json, `status` (ok or
failed), `error` (failed points' one-line error) and `key` (the point's folder under
points/). Phase metrics are the last phase's, as `ibs-mprof run`'s summary shows them: after
a gups-shift's shift, that is the moved hot set. Nothing measured on the clock (wall time,
peak memory) is in the table, so the same grid gives the same table on any cluster.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runtime.scenario import SCHEMA

Row = dict[str, Any]
Report = Mapping[str, Any]


def _dig(report: Report, *path: str | int) -> Any:
    """report[path...], or None where a level is missing (an older or newer report)."""
    node: Any = report
    for step in path:
        try:
            node = node[step]
        except (KeyError, IndexError, TypeError):
            return None
    return node


def _last(*path: str) -> Callable[[Report], Any]:
    return lambda r: _dig(r, "phases", -1, *path)


@dataclass(frozen=True)
class Metric:
    name: str
    kind: type
    read: Callable[[Report], Any]
    what: str  # axis label in plots


METRICS = (
    Metric("fthr", float, lambda r: _dig(r, "final", "fthr"), "fast-tier hit ratio (FTHR)"),
    Metric("fthr_oracle", float, lambda r: _dig(r, "final", "fthr_oracle"), "oracle FTHR"),
    Metric("efficiency", float, lambda r: _dig(r, "final", "placement_efficiency"),
           "placement efficiency (FTHR / oracle)"),
    Metric("precision", float, _last("promoted", "precision"), "precision of promoted pages"),
    Metric("recall", float, _last("promoted", "recall"), "recall of promoted pages"),
    Metric("f1", float, _last("promoted", "f1"), "F1 of promoted pages"),
    Metric("weighted_recall", float, _last("promoted", "weighted_recall"),
           "hot access mass on the fast tier"),
    Metric("ttd_p50_ms", float, _last("time_to_detect_ms", "median"),
           "time to detect, median (ms)"),
    Metric("ttd_p90_ms", float, _last("time_to_detect_ms", "p90"), "time to detect, p90 (ms)"),
    Metric("ttp_p50_ms", float, _last("time_to_promote_ms", "median"),
           "time to promote, median (ms)"),
    Metric("ttp_p90_ms", float, _last("time_to_promote_ms", "p90"),
           "time to promote, p90 (ms)"),
    Metric("ttp_reached", float, _last("time_to_promote_ms", "fraction"),
           "share of hot pages promoted"),
    Metric("recovery_ms", float, _last("recovery_ms"), "recovery after the shift (ms)"),
    Metric("promotions", int, lambda r: _dig(r, "migrations", "promotions"), "promotions"),
    Metric("useful", int, lambda r: _dig(r, "migrations", "useful"), "useful promotions"),
    Metric("wasted", int, lambda r: _dig(r, "migrations", "wasted"), "wasted promotions"),
    Metric("ping_pong", int, lambda r: _dig(r, "migrations", "ping_pong"), "ping-pong pages"),
    Metric("nmi_per_cpu_s", float, lambda r: _dig(r, "sampling", "nmi_per_cpu_per_s"),
           "NMIs per CPU-second"),
    Metric("drop_rate", float, lambda r: _dig(r, "sampling", "drop_rate"), "ring drop rate"),
    Metric("cpu_overhead_pct", float, lambda r: _dig(r, "overhead", "cpu_percent"),
           "modelled CPU overhead (% of all CPUs)"),
    Metric("verdict", str, lambda r: str(_dig(r, "verdict") or "").split(":")[0] or None,
           "verdict"),
)
BY_NAME = {m.name: m for m in METRICS}
LEAD = ("point",)
TAIL = ("status", "error", "key")


def _typed(value: Any, kind: type) -> Any:
    """A value as its column holds it: None stays None; ints and floats as their type."""
    if value is None or kind is str:
        return value
    if kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if kind is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    return None


def key_kind(key: str) -> type:
    """The column type of a scenario key: its schema type (a list is kept as JSON text)."""
    node: Any = SCHEMA
    for part in key.split("."):
        node = node[part]
    kind: type = str if node.kind is list else node.kind
    return kind


def key_value(scenario: Mapping[str, Any], key: str) -> Any:
    node: Any = scenario
    for part in key.split("."):
        node = node[part]
    return json.dumps(node, sort_keys=True) if isinstance(node, list) else node


def make_row(index: int, scenario: Mapping[str, Any], keys: Sequence[str],
             report: Report | None, error: str | None, key: str) -> Row:
    """One point's row: its values of the grid's keys, its metrics (None when it failed)."""
    row: Row = {"point": index}
    for name in keys:
        row[name] = key_value(scenario, name)
    for metric in METRICS:
        row[metric.name] = None if report is None else _typed(metric.read(report), metric.kind)
    row.update(status="failed" if error is not None else "ok", error=error, key=key)
    return row


def columns(keys: Sequence[str]) -> list[tuple[str, type]]:
    return [("point", int), *((k, key_kind(k)) for k in keys),
            *((m.name, m.kind) for m in METRICS), ("status", str), ("error", str),
            ("key", str)]


def csv_text(rows: Sequence[Row], keys: Sequence[str]) -> str:
    """The rows as CSV: floats in Python's shortest exact form, booleans true/false, a
    missing value empty."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    cols = columns(keys)
    writer.writerow([name for name, _ in cols])
    for row in rows:
        writer.writerow([_cell(row[name]) for name, _ in cols])
    return buf.getvalue()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


def write_tables(rows: Sequence[Row], keys: Sequence[str], folder: Path) -> list[Path]:
    """results.csv and results.parquet in folder."""
    import pyarrow as pa  # type: ignore[import-untyped]  # no stubs ship with it
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    arrow = {int: pa.int64(), float: pa.float64(), bool: pa.bool_(), str: pa.string()}
    cols = columns(keys)
    table = pa.table({name: pa.array([row[name] for row in rows], type=arrow[kind])
                      for name, kind in cols})
    (folder / "results.csv").write_text(csv_text(rows, keys), encoding="utf-8")
    pq.write_table(table, folder / "results.parquet")
    return [folder / "results.csv", folder / "results.parquet"]
