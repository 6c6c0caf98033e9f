"""From rows to what an engineer compares: configurations (the grid's values other than the
seed) with each metric's mean, min and max over their seeds, and the Pareto front of a
metric against the modelled CPU overhead.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from runtime.sweep.table import Row

SEED = "seed"
COST = "cpu_overhead_pct"
TRADEOFFS = (("fthr", True), ("ttp_p90_ms", False))
"""The metrics set against the CPU overhead, and whether more of them is better."""


@dataclass(frozen=True)
class Spread:
    mean: float
    low: float
    high: float
    count: int


@dataclass(frozen=True)
class Config:
    """One combination of the grid's non-seed values and the rows (seeds) that ran it."""

    values: tuple[tuple[str, Any], ...]
    rows: tuple[Row, ...]

    def label(self, short: dict[str, str]) -> str:
        return ", ".join(f"{short[k]}={_shown(v)}" for k, v in self.values) or "base"

    def spread(self, metric: str) -> Spread | None:
        """The metric over the config's ok rows that have it, None when none has."""
        values = [float(r[metric]) for r in self.rows
                  if r["status"] == "ok" and isinstance(r.get(metric), (int, float))
                  and not isinstance(r.get(metric), bool) and math.isfinite(r[metric])]
        if not values:
            return None
        return Spread(sum(values) / len(values), min(values), max(values), len(values))


def _shown(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def config_keys(keys: Sequence[str]) -> list[str]:
    """The keys that make a configuration: every varied key but the seed."""
    return [k for k in keys if k != SEED]


def configs(rows: Sequence[Row], keys: Sequence[str]) -> list[Config]:
    """Rows grouped by their non-seed values, in the order each first appears."""
    groups: dict[tuple[tuple[str, Any], ...], list[Row]] = {}
    for row in rows:
        ident = tuple((k, row[k]) for k in config_keys(keys))
        groups.setdefault(ident, []).append(row)
    return [Config(ident, tuple(members)) for ident, members in groups.items()]


def short_names(keys: Sequence[str]) -> dict[str, str]:
    """Each key by its last part (period, freq_threshold) unless two keys share it."""
    last = [k.rsplit(".", 1)[-1] for k in keys]
    return {k: (s if last.count(s) == 1 else k) for k, s in zip(keys, last, strict=True)}


def pareto(items: Sequence[Config], metric: str, more_is_better: bool) -> list[Config]:
    """The configs no other beats on both the metric (mean) and the CPU overhead (mean):
    by CPU overhead, cheapest first."""
    scored = []
    for config in items:
        value, cost = config.spread(metric), config.spread(COST)
        if value is not None and cost is not None:
            scored.append((cost.mean, -value.mean if more_is_better else value.mean, config))
    scored.sort(key=lambda t: (t[0], t[1]))
    front: list[Config] = []
    best = math.inf
    for _cost, loss, config in scored:
        if loss < best:  # strictly better than every cheaper (or equally cheap) one
            front.append(config)
            best = loss
    return front


def pareto_json(items: Sequence[Config]) -> dict[str, list[dict[str, Any]]]:
    """Each trade-off's front as JSON: the values, the metric's and the overhead's means and
    how many points (seeds) they are the means of."""
    out: dict[str, list[dict[str, Any]]] = {}
    for metric, more in TRADEOFFS:
        out[f"{metric}_vs_{COST}"] = [
            {"values": dict(c.values), metric: _mean(c, metric), COST: _mean(c, COST),
             "points": len(c.rows)} for c in pareto(items, metric, more)]
    return out


def _mean(config: Config, metric: str) -> float | None:
    spread = config.spread(metric)
    return None if spread is None else spread.mean
