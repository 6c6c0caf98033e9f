"""The sweep's plots: each headline metric against each axis with the seeds' spread, and the
trade-off an engineer tunes for (FTHR and time to promote against the modelled CPU
overhead) with the Pareto front marked.

Drawn like the report's plots (runtime/report.py's figure: Agg canvas, default style, PNG
without version or time chunks), so the same results give the same bytes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from matplotlib.axes import Axes

from runtime.report import figure
from runtime.sweep.aggregate import (
    COST,
    SEED,
    TRADEOFFS,
    Config,
    config_keys,
    configs,
    pareto,
    short_names,
)
from runtime.sweep.table import BY_NAME, Row

PANELS = ("fthr", "efficiency", "ttp_p90_ms", "precision", "wasted", COST)
"""The metrics drawn against each axis."""
MAX_SERIES = 8
"""More combinations of the other axes than this are drawn as one band over all of them."""
LOG_RATIO = 8
"""A numeric axis whose largest value is this many times its smallest gets a log scale."""
MAX_TICKS = 10
"""Up to this many swept values each get a tick of their own."""
FRONT = "tab:red"
OTHERS = "tab:grey"


def axis_file(key: str) -> str:
    return f"plots/vs-{key}.png"


TRADEOFF_FILE = "plots/tradeoff.png"


def write_plots(rows: Sequence[Row], keys: Sequence[str], folder: Path) -> list[str]:
    """tradeoff.png and one vs-<key>.png per non-seed key, under folder/plots; returns their
    paths relative to folder."""
    (folder / "plots").mkdir(exist_ok=True)
    short = short_names(keys)
    plot_tradeoff(configs(rows, keys), short, folder / TRADEOFF_FILE)
    written = [TRADEOFF_FILE]
    for key in config_keys(keys):
        plot_axis(rows, keys, key, short, folder / axis_file(key))
        written.append(axis_file(key))
    return written


def _numeric(values: Sequence[Any]) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def plot_axis(rows: Sequence[Row], keys: Sequence[str], key: str, short: dict[str, str],
              path: Path) -> None:
    """Each metric of PANELS against the values of key: a line through the mean over seeds,
    a band from min to max; one line per combination of the other keys (or one band over
    them all when they are many)."""
    xs = list(dict.fromkeys(row[key] for row in rows))
    numeric = _numeric(xs)
    if numeric:
        xs.sort()
    position = {x: (float(x) if numeric else float(i)) for i, x in enumerate(xs)}
    others = [k for k in config_keys(keys) if k != key]
    series = configs(rows, [*others, SEED]) if others else [Config((), tuple(rows))]
    if len(series) > MAX_SERIES:
        series = [Config((), tuple(rows))]
    spread = "seeds" if SEED in keys else "points"
    title = (f"Headline metrics against {key}: mean over {spread}, band min to max"
             + ("" if len(series) > 1 or not others else f" (over all {', '.join(others)})"))
    with figure(path, title) as fig:
        fig.set_size_inches(12, 6.5)
        grid = fig.subplots(2, 3, squeeze=False)
        for ax, metric in zip(grid.flat, PANELS, strict=True):
            for i, config in enumerate(series):
                _series(ax, config, key, xs, position, metric, f"C{i % 10}",
                        config.label(short) if len(series) > 1 else spread)
            ax.set_title(BY_NAME[metric].what, fontsize=9)
            ax.set_xlabel(key, fontsize=8)
            ax.tick_params(labelsize=8)
            ax.grid(alpha=0.3)
            _x_scale(ax, xs, position, numeric)
        if grid.flat[0].get_legend_handles_labels()[0]:
            grid.flat[0].legend(fontsize=7, loc="best")


def _series(ax: Axes, config: Config, key: str, xs: list[Any], position: dict[Any, float],
            metric: str, color: str, label: str) -> None:
    points = []
    for x in xs:
        spread = Config(config.values, tuple(r for r in config.rows if r[key] == x)
                        ).spread(metric)
        if spread is not None:
            points.append((position[x], spread))
    if not points:
        return
    px = [p for p, _ in points]
    ax.plot(px, [s.mean for _, s in points], marker="o", markersize=3, color=color,
            label=label)
    ax.fill_between(px, [s.low for _, s in points], [s.high for _, s in points], color=color,
                    alpha=0.2, linewidth=0)


def _x_scale(ax: Axes, xs: list[Any], position: dict[Any, float], numeric: bool) -> None:
    """Ticks at the swept values (while they are few enough to read); a log scale for a
    numeric axis that spans LOG_RATIO or more."""
    if numeric and min(xs) > 0 and max(xs) >= LOG_RATIO * min(xs):
        ax.set_xscale("log")
    if not numeric or len(xs) <= MAX_TICKS:
        ax.set_xticks([position[x] for x in xs], [f"{x:g}" if numeric else str(x) for x in xs])
        ax.minorticks_off()


def plot_tradeoff(items: Sequence[Config], short: dict[str, str], path: Path) -> None:
    """FTHR (more is better) and the p90 time to promote (less is better) against the
    modelled CPU overhead, each configuration at its mean over seeds with min-max bars, the
    Pareto front in red and labelled."""
    title = ("What tuning costs: each configuration against the modelled CPU overhead\n"
             "(mean over seeds, bars min to max; Pareto front in red)")
    with figure(path, title) as fig:
        fig.set_size_inches(11, 5)
        panels = fig.subplots(1, len(TRADEOFFS), squeeze=False)
        for ax, (metric, more) in zip(panels.flat, TRADEOFFS, strict=True):
            front = pareto(items, metric, more)
            for config in items:
                _bars(ax, config, metric, FRONT if config in front else OTHERS)
            if front:
                xs = [_mean(c, COST) for c in front]
                ys = [_mean(c, metric) for c in front]
                ax.step(xs, ys, where="post", color=FRONT, linewidth=1, alpha=0.7,
                        label="Pareto front" + (" (higher is better)" if more else
                                                " (lower is better)"))
                middle = sum(ax.get_xlim()) / 2
                for config, x, y in zip(front, xs, ys, strict=True):
                    right = x > middle  # labels point inwards: none leaves the panel
                    ax.annotate(config.label(short), (x, y), xytext=(-4 if right else 4, 4),
                                textcoords="offset points", fontsize=7, color=FRONT,
                                ha="right" if right else "left")
                ax.legend(fontsize=8, loc="best")
            else:
                ax.text(0.5, 0.5, "no configuration has both numbers", ha="center",
                        transform=ax.transAxes)
            ax.set_xlabel(BY_NAME[COST].what)
            ax.set_ylabel(BY_NAME[metric].what)
            ax.grid(alpha=0.3)


def _mean(config: Config, metric: str) -> float:
    spread = config.spread(metric)
    return math.nan if spread is None else spread.mean


def _bars(ax: Axes, config: Config, metric: str, color: str) -> None:
    y, x = config.spread(metric), config.spread(COST)
    if x is None or y is None:
        return
    ax.errorbar([x.mean], [y.mean], xerr=[[x.mean - x.low], [x.high - x.mean]],
                yerr=[[y.mean - y.low], [y.high - y.mean]], fmt="o", markersize=4, color=color,
                ecolor=color, elinewidth=0.8, capsize=2)
